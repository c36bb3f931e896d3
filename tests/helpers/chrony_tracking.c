/*
 * chronyd's tracking report through libuclock, for tests/chrony.sh.
 *   chrony_tracking SOCKET [TIMEOUT_MS]
 * prints one "name=value" line a field (the units in the names, the
 * floats with %.9g, as many digits as chronyc's CSV shows or more) and
 * exits 0; or prints "error=WHY" and "errno=NAME" and exits 1.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int main(int argc, char **argv)
{
	struct uclock_chrony_tracking t;
	char why[256];
	int timeout_ms = argc > 2 ? atoi(argv[2]) : 1000;

	if (argc < 2) {
		fprintf(stderr, "usage: chrony_tracking SOCKET [TIMEOUT_MS]\n");
		return 2;
	}
	if (uclock__chrony_tracking(argv[1], timeout_ms, &t, why, sizeof(why)) != 0) {
		int err = errno;

		printf("error=%s\nerrno=%s\n", why, strerrorname_np(err));
		return 1;
	}
	printf("ref_id=%08" PRIX32 "\nstratum=%d\nleap_status=%d\n"
	       "ref_time_ns=%" PRId64 "\n", t.ref_id, t.stratum, t.leap_status,
	       t.ref_time_ns);
	printf("current_correction_s=%.9g\nlast_offset_s=%.9g\nrms_offset_s=%.9g\n"
	       "freq_ppm=%.9g\nresid_freq_ppm=%.9g\nskew_ppm=%.9g\n"
	       "root_delay_s=%.9g\nroot_dispersion_s=%.9g\n"
	       "last_update_interval_s=%.9g\n", t.current_correction_s,
	       t.last_offset_s, t.rms_offset_s, t.freq_ppm, t.resid_freq_ppm,
	       t.skew_ppm, t.root_delay_s, t.root_dispersion_s,
	       t.last_update_interval_s);
	return 0;
}
