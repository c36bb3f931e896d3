/*
 * A library whose constructor reads the clock: preloaded after the shim,
 * it runs before the shim's own constructor, so the shim answers it before
 * it has set itself up (tests/preload.sh).
 */
#include <stdio.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

__attribute__((constructor)) static void early(void)
{
	struct timespec a, v, b, res;
	int bad;

	syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &a);
	bad = clock_gettime(CLOCK_MONOTONIC, &v) != 0;
	syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &b);
	bad |= v.tv_sec * 1000000000L + v.tv_nsec < a.tv_sec * 1000000000L + a.tv_nsec - 100;
	bad |= v.tv_sec * 1000000000L + v.tv_nsec > b.tv_sec * 1000000000L + b.tv_nsec + 100;
	bad |= clock_getres(CLOCK_PROCESS_CPUTIME_ID, &res) != 0;
	fprintf(stderr, "early constructor: %s\n", bad ? "WRONG" : "right");
}
