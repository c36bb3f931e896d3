/*
 * uclock: how this machine's clock calls run, and uclock against the kernel.
 * Uses only libuclock's public API.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "uclock.h"

#define OFFSET_READS 20000

#define ns_of timespec_ns

/* Busy reading until warm-up is over and the rate has settled (50 ms), as
 * a program using the clock would. */
static void warm_up(void)
{
	struct uclock_stat st = {.size = sizeof(st)};
	struct timespec start, now;

	clock_gettime(CLOCK_MONOTONIC, &start);
	do {
		uclock_mono_ns();
		uclock_stat(&st);
		clock_gettime(CLOCK_MONOTONIC, &now);
	} while ((st.mode == UCLOCK_MODE_WARMUP || ns_of(&now) - ns_of(&start) < 50000000) &&
		 ns_of(&now) - ns_of(&start) < 250000000);
}

/*
 * uclock's reading minus the middle of two kernel readings around it:
 * median and the 99th percentile of its magnitude.
 */
static void offset_of(clockid_t id, int64_t *median, int64_t *p99)
{
	static int64_t err[OFFSET_READS], mag[OFFSET_READS];

	for (int i = 0; i < OFFSET_READS; i++) {
		struct timespec a, u, b;

		clock_gettime(id, &a);
		uclock_gettime(id, &u);
		clock_gettime(id, &b);
		err[i] = ns_of(&u) - (ns_of(&a) / 2 + ns_of(&b) / 2);
		mag[i] = err[i] < 0 ? -err[i] : err[i];
	}
	qsort(err, OFFSET_READS, sizeof(err[0]), compare_i64);
	qsort(mag, OFFSET_READS, sizeof(mag[0]), compare_i64);
	*median = err[OFFSET_READS / 2];
	*p99 = mag[OFFSET_READS * 99 / 100];
}

static void report(void)
{
	static const struct {
		clockid_t id;
		const char *name;
	} clocks[] = {
		{CLOCK_REALTIME, "CLOCK_REALTIME"},
		{CLOCK_MONOTONIC, "CLOCK_MONOTONIC"},
		{CLOCK_MONOTONIC_RAW, "CLOCK_MONOTONIC_RAW"},
		{CLOCK_BOOTTIME, "CLOCK_BOOTTIME"},
		{CLOCK_TAI, "CLOCK_TAI"},
	};
	struct uclock_stat st = {.size = sizeof(st)};

	warm_up();
	uclock_stat(&st);
	printf("uclock %d.%d\n", UCLOCK_VERSION_MAJOR, UCLOCK_VERSION_MINOR);
	printf("  source        %s (%s)\n", st.source_name, st.reason);
	printf("  mode          %s\n", st.mode_name);
	if (st.counter_hz)
		printf("  counter       %.6f MHz, ordered read %s\n",
		       (double)st.counter_hz / 1e6, st.counter_read);
	printf("  kernel path   %s\n", st.kernel_path);
	printf("  interval      %lld us, %llu updates, %llu calibrations, "
	       "%llu discontinuities\n",
	       (long long)(st.interval_ns / 1000), (unsigned long long)st.updates,
	       (unsigned long long)st.warmups,
	       (unsigned long long)st.discontinuities);
	if (st.mode == UCLOCK_MODE_COUNTER)
		printf("  steering      %+.3f ppm; kernel MONOTONIC runs %+.3f ppm "
		       "off MONOTONIC_RAW\n",
		       st.rate_correction_ppm, st.kernel_rate_ppm);
	printf("\n  offset to the kernel (uclock - kernel, %d bracketed reads)\n",
	       OFFSET_READS);
	for (size_t i = 0; i < sizeof(clocks) / sizeof(clocks[0]); i++) {
		int64_t median, p99;

		offset_of(clocks[i].id, &median, &p99);
		printf("  %-20s median %+4lld ns, |p99| %3lld ns\n", clocks[i].name,
		       (long long)median, (long long)p99);
	}
}

int cmd_report(int argc, char **argv)
{
	if (argc > 1)
		return usage_error(NULL, "unknown option '%s'", argv[1]);
	report();
	return 0;
}
