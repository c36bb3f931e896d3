/*
 * A program that reads the time through the C library only, for
 * tests/sandbox.sh: run with LD_PRELOAD=libuclock-preload.so, the shim
 * answers its calls.  It calls nothing of libuclock (the static archive it
 * is linked with contributes nothing).
 *   sandbox_libc run SECONDS strict|loose
 *       a first read, then the whitelist filter of sandbox.h (any other
 *       system call kills the process); clock_gettime for every clock the
 *       shim serves, gettimeofday and time, each between two of the
 *       kernel's readings, for SECONDS
 * Prints whether clock_gettime is the shim's ("interposed=yes").
 */
#include <sys/time.h>

#include "sandbox.h"

SANDBOX_READERS(clock_gettime, gettimeofday)

/* time(): the last tick's second, as REALTIME_COARSE's. */
static int rd_time(int64_t *ns)
{
	time_t t = time(NULL);

	*ns = (int64_t)t * NS;
	return t == (time_t)-1 ? -1 : 0;
}

#define K(name, kernel, unit, fn) {name, kernel, unit, fn}
static const struct kind kinds[] = {
	K("clock_gettime(REALTIME)", CLOCK_REALTIME, 1, rd_real),
	K("clock_gettime(MONOTONIC)", CLOCK_MONOTONIC, 1, rd_mono),
	K("clock_gettime(MONOTONIC_RAW)", CLOCK_MONOTONIC_RAW, 1, rd_raw),
	K("clock_gettime(BOOTTIME)", CLOCK_BOOTTIME, 1, rd_boot),
	K("clock_gettime(TAI)", CLOCK_TAI, 1, rd_tai),
	K("clock_gettime(REALTIME_COARSE)", CLOCK_REALTIME_COARSE, 1, rd_real_coarse),
	K("clock_gettime(MONOTONIC_COARSE)", CLOCK_MONOTONIC_COARSE, 1, rd_mono_coarse),
	K("gettimeofday", CLOCK_REALTIME, 1000, rd_tv),
	K("time", CLOCK_REALTIME_COARSE, NS, rd_time),
};

/*
 * Is the clock_gettime this program calls the shim's?  Its address lies
 * in a mapping of libuclock-preload.so (read before the filter).
 */
static int interposed(void)
{
	uintptr_t fn = (uintptr_t)&clock_gettime;
	char line[512];
	FILE *maps = fopen("/proc/self/maps", "r");
	int found = 0;

	if (!maps)
		return -1;
	while (!found && fgets(line, sizeof(line), maps)) {
		unsigned long lo, hi;

		if (strstr(line, "libuclock-preload") &&
		    sscanf(line, "%lx-%lx", &lo, &hi) == 2 && fn >= lo && fn < hi)
			found = 1;
	}
	fclose(maps);
	return found;
}

int main(int argc, char **argv)
{
	int64_t v;
	int rc;

	if (argc != 4 || strcmp(argv[1], "run") != 0) {
		fprintf(stderr, "usage: sandbox_libc run SECONDS strict|loose\n");
		return 2;
	}
	say("pid=%d\n", (int)getpid());
	rd_mono(&v); /* the first read: the shim's library sets up */
	rc = interposed();
	say("interposed=%s\n", rc > 0 ? "yes" : rc == 0 ? "no" : "unknown");
	if (install_whitelist(!strcmp(argv[3], "strict")) != 0) {
		say("SKIP seccomp not permitted: %s\n", strerror(errno));
		return 77;
	}
	say("filtered=%s\n", argv[3]);
	return bracket_loop("libc", kinds, (int)(sizeof(kinds) / sizeof(kinds[0])),
			    atof(argv[2]), NULL);
}
