/*
 * The rest of the public API: uclock_stat's contract, counter capture and
 * later conversion, wrap-safe comparisons, gettimeofday's timezone, time(),
 * getcpu, getres for the served clocks.
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

#include "check.h"
#include "uclock.h"

static void stat_contract(void)
{
	struct uclock_stat st;
	struct {
		size_t size;
		int mode;
	} old = {sizeof(old), -1};

	errno = 0;
	CHECK(uclock_stat(NULL) == -1 && errno == EINVAL, "uclock_stat(NULL)");
	st.size = 1;
	errno = 0;
	CHECK(uclock_stat(&st) == -1 && errno == EINVAL, "size 1 refused");
	/* An older, smaller caller's structure: only its part is written. */
	CHECK(uclock_stat((struct uclock_stat *)(void *)&old) == 0, "small stat");
	CHECK(old.size == sizeof(old) && old.mode >= 0, "small stat filled");
	memset(&st, 0xa5, sizeof(st));
	st.size = sizeof(st);
	CHECK(uclock_stat(&st) == 0, "uclock_stat");
	CHECK(st.mode_name && st.source_name && st.reason && st.counter_read &&
	      st.kernel_path, "names filled");
}

static void ticks(void)
{
	static const clockid_t ids[] = {CLOCK_REALTIME, CLOCK_MONOTONIC,
					CLOCK_MONOTONIC_RAW, CLOCK_BOOTTIME, CLOCK_TAI};

	for (int i = 0; i < 200000; i++)
		uclock_mono_ns(); /* past warm-up */
	for (unsigned i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		int64_t before = vdso_ns(ids[i]);
		uint64_t t = uclock_ticks();
		int64_t after = vdso_ns(ids[i]);
		int64_t v = uclock_ticks_to_ns(ids[i], t);

		CHECK(v >= before - test_slack_ns(100) && v <= after + test_slack_ns(100),
		      "ticks_to_ns(%d): %lld not in [%lld, %lld]", (int)ids[i],
		      (long long)v, (long long)before, (long long)after);
	}
	/* Captured now, converted 20 ms later: still the capture's time. */
	int64_t before = vdso_ns(CLOCK_MONOTONIC);
	uint64_t t = uclock_ticks();
	int64_t after = vdso_ns(CLOCK_MONOTONIC);
	usleep(20000);
	int64_t v = uclock_ticks_to_ns(CLOCK_MONOTONIC, t);
	CHECK(v >= before - test_slack_ns(100) && v <= after + test_slack_ns(100),
	      "converted later: %lld not in [%lld, %lld]", (long long)v,
	      (long long)before, (long long)after);

	errno = 0;
	CHECK(uclock_ticks_to_ns(CLOCK_MONOTONIC_COARSE, t) == INT64_MIN &&
	      errno == EINVAL, "ticks_to_ns of a coarse clock: EINVAL");
	errno = 0;
	CHECK(uclock_ticks_to_ns(CLOCK_PROCESS_CPUTIME_ID, t) == INT64_MIN &&
	      errno == EINVAL, "ticks_to_ns of a CPU clock: EINVAL");
	uint64_t a = uclock_ticks(), b = uclock_ticks();
	CHECK(!uclock_ticks_after(a, b) && uclock_ticks_before(a, b) == (a != b),
	      "ticks in order");
}

static void comparisons(void)
{
	CHECK(uclock_ticks_after(5, UINT64_MAX - 5), "5 is after 2^64-6 (wrapped)");
	CHECK(uclock_ticks_before(UINT64_MAX - 5, 5), "and 2^64-6 before 5");
	CHECK(!uclock_ticks_after(7, 7) && !uclock_ticks_before(7, 7), "equal");
	CHECK(uclock_ticks_after(1ull << 40, 1), "plain order");
}

static void timezone_and_time(void)
{
	struct timezone kz, uz;
	struct timeval tv;

	memset(&uz, 0x5a, sizeof(uz));
	struct timeval ktv;
	CHECK(gettimeofday(&ktv, &kz) == 0, "kernel timezone");
	CHECK(uclock_gettimeofday(NULL, &uz) == 0, "NULL tv is allowed");
	CHECK(kz.tz_minuteswest == uz.tz_minuteswest && kz.tz_dsttime == uz.tz_dsttime,
	      "timezone: kernel %d/%d, uclock %d/%d", kz.tz_minuteswest, kz.tz_dsttime,
	      uz.tz_minuteswest, uz.tz_dsttime);
	CHECK(uclock_gettimeofday(&tv, &uz) == 0 && tv.tv_sec > 0, "tv and tz");
	CHECK(uclock_gettimeofday(NULL, NULL) == 0, "both NULL");
	CHECK(uclock_time(NULL) > 0, "time(NULL)");
}

static void cpu_and_node(void)
{
	unsigned cpu = ~0u, node = ~0u;
	long n = sysconf(_SC_NPROCESSORS_CONF);

	CHECK(uclock_getcpu(&cpu, &node) == 0, "getcpu");
	CHECK((long)cpu < n, "cpu %u of %ld", cpu, n);
	CHECK(uclock_getcpu(NULL, NULL) == 0, "getcpu with NULLs");
	/* Pinned: the answer is that CPU. */
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(0, &set);
	if (sched_setaffinity(0, sizeof(set), &set) == 0) {
		CHECK(uclock_getcpu(&cpu, NULL) == 0 && cpu == 0, "pinned to 0: %u", cpu);
	}
}

static void getres(void)
{
	static const clockid_t ids[] = {CLOCK_REALTIME, CLOCK_MONOTONIC,
					CLOCK_MONOTONIC_RAW, CLOCK_BOOTTIME, CLOCK_TAI,
					CLOCK_REALTIME_COARSE, CLOCK_MONOTONIC_COARSE};

	for (unsigned i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		struct timespec k, u;

		CHECK(clock_getres(ids[i], &k) == 0 && uclock_getres(ids[i], &u) == 0,
		      "getres(%d)", (int)ids[i]);
		CHECK(k.tv_sec == u.tv_sec && k.tv_nsec == u.tv_nsec,
		      "getres(%d): kernel %ld, uclock %ld", (int)ids[i], k.tv_nsec,
		      u.tv_nsec);
		CHECK(uclock_getres(ids[i], NULL) == 0, "getres(%d, NULL)", (int)ids[i]);
		errno = 0;
		CHECK(uclock_gettime(ids[i], NULL) == -1 && errno == EFAULT,
		      "gettime(%d, NULL): EFAULT", (int)ids[i]);
	}
}

static int all(void)
{
	stat_contract();
	ticks();
	comparisons();
	timezone_and_time();
	cpu_and_node();
	getres();
	return check_done("api");
}

int main(void)
{
	static const char *const kernel[] = {"UCLOCK_SOURCE=kernel", NULL};

	return in_child(NULL, all) | in_child(kernel, all);
}
