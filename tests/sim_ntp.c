/*
 * NTP changes the kernel's MONOTONIC rate (up to 500 ppm): the error of the
 * interval in which it happens is bounded by the change times the interval,
 * and is removed by rate, never by a step: MONOTONIC never goes back.
 * MONOTONIC_RAW is not steered by NTP and must not move with it.  A change
 * too small to tell from one interval's noise is followed as the rate's
 * baseline (16 ms) moves past it.  The same for a writer whose copies
 * other processes keep (uclockd): its new lines are not below the old
 * ones up to their keep (checked at every flip: sim.c).
 */
#include <stdio.h>

#include "check.h"
#include "sim.h"

#define US 1000LL
#define MS 1000000LL

static void settle(struct sim *s)
{
	sim_run(s, 400, 50 * US, 1000, "warm-up");
	sim_run(s, 200, 20 * US, 20, "settled");
}

static void rate_change(double ppm, int kept)
{
	struct sim s;
	char what[64];

	sim_init(&s, 2.4e9, UINT64_MAX, 1 * MS);
	if (kept) { /* as uclockd: processes keep copies */
		s.tk.keep_ns = INT64_MAX;
		s.writer = 1;
	}
	settle(&s);
	s.ntp_ppm += ppm;
	/* Until the updates see it: |ppm| x at most two intervals. */
	snprintf(what, sizeof(what), "%+.0f ppm, first intervals", ppm);
	for (int i = 0; i < 1000; i++) {
		sim_check(&s, SLOT_MONO, (int64_t)(2 * MS * (ppm < 0 ? -ppm : ppm) / 1e6) + 40,
			  what);
		sim_check(&s, SLOT_RAW, 20, what);
		sim_advance(&s, 20 * US);
	}
	snprintf(what, sizeof(what), "%+.0f ppm, settled", ppm);
	sim_run(&s, 5000, 20 * US, 20, what);
	CHECK(s.tk.discontinuities == 0, "an NTP slew is not a discontinuity");
	printf("%+.0f ppm%s: worst MONOTONIC error %lld ns\n", ppm,
	       kept ? ", copies kept" : "", (long long)s.max_err[SLOT_MONO]);
}

/* A slow NTP wander: many small changes, the error stays small. */
static void wander(void)
{
	struct sim s;

	sim_init(&s, 3.1e9, UINT64_MAX, 1 * MS);
	settle(&s);
	for (int i = 0; i < 400; i++) {
		s.ntp_ppm += (i % 7 - 3) * 0.05;
		sim_run(&s, 20, 50 * US, 20, "wandering rate");
	}
}

int main(void)
{
	rate_change(500, 0);
	rate_change(-500, 0);
	rate_change(37.5, 0);
	rate_change(-500, 1);
	rate_change(500, 1);
	wander();
	return check_done("sim_ntp");
}
