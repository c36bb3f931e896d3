/*
 * What the timekeeper costs readers, measured (bench/timekeeper.sh runs
 * it; figures only, no pass or fail):
 *   bench-timekeeper tail          each read timed with rdtscp, ~1 us of
 *                                  other work between reads, 2 M reads a
 *                                  method, methods interleaved: p50..p99.99
 *   bench-timekeeper update        an update's cost, every 1 ms and every
 *                                  64 ms (the interval while the rate
 *                                  holds): median and p99
 *   bench-timekeeper first-read    this process's first clock read, ns
 *   bench-timekeeper past SECONDS  values captured, converted SECONDS later
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

#define ROUNDS 20
#define READS 100000

static volatile uint64_t sink;

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int compare_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void work(void)
{
	for (int i = 0; i < 300; i++)
		sink += (uint64_t)i;
}

enum { VDSO, MONO_NS, GETTIME, METHODS };
static const char *const names[METHODS] = {"vDSO clock_gettime(MONOTONIC)",
					   "uclock_mono_ns()",
					   "uclock_gettime(MONOTONIC)"};

static uint64_t read_once(int method)
{
	struct timespec ts;
	uint64_t t0 = uclock__counter_self_ordered();

	switch (method) {
	case VDSO: clock_gettime(CLOCK_MONOTONIC, &ts); break;
	case MONO_NS: sink += (uint64_t)uclock_mono_ns(); break;
	default: uclock_gettime(CLOCK_MONOTONIC, &ts); break;
	}
	return uclock__counter_self_ordered() - t0;
}

static int tail(void)
{
	static uint64_t cycles[METHODS][ROUNDS * READS];
	struct uclock_stat before = {.size = sizeof(before)}, after = {.size = sizeof(after)};

	for (int i = 0; i < 3000000; i++)
		uclock_mono_ns();
	uclock_stat(&before);
	int64_t t0 = now_ns();
	for (int r = 0; r < ROUNDS; r++)
		for (int m = 0; m < METHODS; m++)
			for (int i = 0; i < READS; i++) {
				work();
				cycles[m][r * READS + i] = read_once(m);
			}
	uclock_stat(&after);
	double seconds = (double)(now_ns() - t0) / 1e9;
	printf("read latency, cycles (rdtscp around each read; ~1 us of work between; %d "
	       "reads a method, interleaved)\n", ROUNDS * READS);
	printf("%-32s %6s %6s %7s %8s   %s\n", "method", "p50", "p99", "p99.9", "p99.99",
	       "p99.9 / p99.99 against the vDSO");
	uint64_t v999 = 0, v9999 = 0;
	for (int m = 0; m < METHODS; m++) {
		uint64_t *c = cycles[m], n = ROUNDS * READS;

		qsort(c, n, sizeof(c[0]), compare_u64);
		uint64_t p999 = c[n * 999 / 1000], p9999 = c[n * 9999 / 10000];
		if (m == VDSO) {
			v999 = p999;
			v9999 = p9999;
		}
		printf("%-32s %6llu %6llu %7llu %8llu   %.2fx / %.2fx\n", names[m],
		       (unsigned long long)c[n / 2], (unsigned long long)c[n * 99 / 100],
		       (unsigned long long)p999, (unsigned long long)p9999,
		       (double)p999 / (double)v999, (double)p9999 / (double)v9999);
	}
	uint64_t n = after.updates - before.updates;
	if (after.mode == UCLOCK_MODE_SHARED) {
		printf("uclockd's updates meanwhile: %llu in %.1f s (none by this process)\n",
		       (unsigned long long)n, seconds);
		return 0;
	}
	printf("updates meanwhile: %llu in %.1f s (interval now %.1f ms), %.2f us each\n",
	       (unsigned long long)n, seconds, (double)after.interval_ns / 1e6,
	       n ? (double)(after.update_time_ns - before.update_time_ns) / 1e3 / (double)n : 0);
	return 0;
}

/* Updates forced every 'gap_ns', each timed: median and p99. */
static void update_cost(int64_t gap_ns, int count)
{
	static uint64_t ns[1000];
	struct uclock_stat before = {.size = sizeof(before)}, after = {.size = sizeof(after)};

	uclock_stat(&before);
	for (int i = 0; i < count; i++) {
		int64_t due = now_ns() + gap_ns;

		while (now_ns() < due)
			sink += (uint64_t)uclock_mono_ns();
		int64_t t0 = now_ns();
		uclock__tk_try_update(&uclock__global);
		ns[i] = (uint64_t)(now_ns() - t0);
	}
	uclock_stat(&after);
	qsort(ns, (size_t)count, sizeof(ns[0]), compare_u64);
	uint64_t n = after.updates - before.updates;
	printf("an update every %5.1f ms: median %.2f us, p99 %.2f us (%d updates, "
	       "%.1f kernel readings each)\n",
	       (double)gap_ns / 1e6, (double)ns[count / 2] / 1e3,
	       (double)ns[count * 99 / 100] / 1e3, count,
	       n ? (double)(after.kernel_readings - before.kernel_readings) / (double)n : 0);
}

static int update(void)
{
	struct uclock_stat st = {.size = sizeof(st)};

	for (int i = 0; i < 3000000; i++)
		uclock_mono_ns();
	uclock_stat(&st);
	if (st.mode != UCLOCK_MODE_COUNTER) {
		printf("updates: not in-process on the counter here (%s, %s)\n", st.mode_name,
		       st.reason);
		return 0;
	}
	printf("update cost:\n");
	update_cost(1000000, 1000);
	update_cost(64000000, 60);
	return 0;
}

static int first_read(void)
{
	struct timespec ts;
	int64_t t0 = now_ns();

	uclock_gettime(CLOCK_MONOTONIC, &ts);
	printf("%lld\n", (long long)(now_ns() - t0));
	return 0;
}

/* Values of MONOTONIC captured now, converted 'seconds' later (reading
 * meanwhile): how far outside the capture's bracket. */
static int past(double seconds)
{
	enum { N = 20 };
	struct {
		int64_t before, after;
		uint64_t tick;
	} c[N];

	for (int i = 0; i < 3000000; i++)
		uclock_mono_ns();
	for (int i = 0; i < N; i++) {
		c[i].before = now_ns();
		c[i].tick = uclock_ticks();
		c[i].after = now_ns();
		for (int j = 0; j < 100000; j++)
			uclock_mono_ns();
	}
	int64_t due = now_ns() + (int64_t)(seconds * 1e9), worst = 0;
	while (now_ns() < due)
		uclock_mono_ns();
	for (int i = 0; i < N; i++) {
		int64_t v = uclock_ticks_to_ns(CLOCK_MONOTONIC, c[i].tick);
		int64_t out = v < c[i].before ? c[i].before - v : v > c[i].after ? v - c[i].after : 0;

		if (out > worst)
			worst = out;
	}
	printf("values captured, converted %.0f s later: worst %lld ns outside the "
	       "capture's bracket (%d values)\n", seconds, (long long)worst, N);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 2 && !strcmp(argv[1], "tail"))
		return tail();
	if (argc == 2 && !strcmp(argv[1], "update"))
		return update();
	if (argc == 2 && !strcmp(argv[1], "first-read"))
		return first_read();
	if (argc == 3 && !strcmp(argv[1], "past"))
		return past(atof(argv[2]));
	fprintf(stderr, "usage: bench-timekeeper tail|update|first-read|past SECONDS\n");
	return 2;
}
