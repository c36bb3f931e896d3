/*
 * Every served clock against the real kernel: each reading lies between a
 * kernel reading taken just before it and one taken just after (100 ns of
 * slack for the fine clocks, none for the coarse ones), in every mode the
 * library can be in: counter (auto), constant updates, pass-through, and
 * without a vDSO (system calls).
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/time.h>

#include "check.h"
#include "uclock.h"

#define SLACK 100
/* Without a vDSO the kernel is sampled by system calls, whose brackets are
 * wider: a fresh anchor may lead the kernel by half of one. */
#define SYSCALL_SLACK 300
static int64_t slack_ns = SLACK;
#define ROUNDS 100000

static const struct {
	clockid_t id;
	const char *name;
	int coarse;
} clocks[] = {
	{CLOCK_REALTIME, "REALTIME", 0},
	{CLOCK_MONOTONIC, "MONOTONIC", 0},
	{CLOCK_MONOTONIC_RAW, "MONOTONIC_RAW", 0},
	{CLOCK_BOOTTIME, "BOOTTIME", 0},
	{CLOCK_TAI, "TAI", 0},
	{CLOCK_REALTIME_COARSE, "REALTIME_COARSE", 1},
	{CLOCK_MONOTONIC_COARSE, "MONOTONIC_COARSE", 1},
};

static void check_clock(clockid_t id, const char *name, int coarse)
{
	int64_t slack = coarse ? 0 : slack_ns;
	int64_t worst = 0;

	for (int i = 0; i < ROUNDS; i++) {
		struct timespec ts;
		int64_t before = vdso_ns(id);
		int rc = uclock_gettime(id, &ts);
		int64_t after = vdso_ns(id);
		int64_t v = ts_ns(&ts);

		CHECK(rc == 0, "%s: uclock_gettime returned %d", name, rc);
		CHECK(ts.tv_nsec >= 0 && ts.tv_nsec < 1000000000, "%s: tv_nsec %ld",
		      name, ts.tv_nsec);
		CHECK(v >= before - slack && v <= after + slack,
		      "%s: %lld not in [%lld, %lld] (+-%lld)", name, (long long)v,
		      (long long)before, (long long)after, (long long)slack);
		if (v - after > worst)
			worst = v - after;
		if (before - v > worst)
			worst = before - v;
	}
	printf("  %-17s worst outside the bracket: %lld ns\n", name, (long long)worst);
}

static void check_fast(const char *name, int64_t (*fn)(void), clockid_t id)
{
	for (int i = 0; i < ROUNDS; i++) {
		int64_t before = vdso_ns(id), v = fn(), after = vdso_ns(id);

		CHECK(v >= before - slack_ns && v <= after + slack_ns,
		      "%s: %lld not in [%lld, %lld]", name, (long long)v,
		      (long long)before, (long long)after);
	}
}

static int64_t mono(void) { return uclock_mono_ns(); }
static int64_t real(void) { return uclock_real_ns(); }

static void check_gettimeofday(void)
{
	for (int i = 0; i < ROUNDS; i++) {
		struct timeval a, u, b;

		gettimeofday(&a, NULL);
		CHECK(uclock_gettimeofday(&u, NULL) == 0, "uclock_gettimeofday failed");
		gettimeofday(&b, NULL);
		int64_t av = a.tv_sec * 1000000LL + a.tv_usec;
		int64_t uv = u.tv_sec * 1000000LL + u.tv_usec;
		int64_t bv = b.tv_sec * 1000000LL + b.tv_usec;
		CHECK(uv >= av - 1 && uv <= bv + 1, "gettimeofday %lld not in [%lld, %lld] us",
		      (long long)uv, (long long)av, (long long)bv);
		CHECK(u.tv_usec >= 0 && u.tv_usec < 1000000, "tv_usec %ld", (long)u.tv_usec);
	}
}

static void check_time(void)
{
	for (int i = 0; i < ROUNDS; i++) {
		time_t t1 = 0, t2;
		time_t before = time(NULL);
		t2 = uclock_time(&t1);
		int64_t real_after = vdso_ns(CLOCK_REALTIME);

		CHECK(t1 == t2, "uclock_time: stored %lld, returned %lld",
		      (long long)t1, (long long)t2);
		CHECK(t2 >= before, "uclock_time %lld before time() %lld",
		      (long long)t2, (long long)before);
		CHECK(t2 <= real_after / 1000000000,
		      "uclock_time %lld is ahead of CLOCK_REALTIME %lld ns",
		      (long long)t2, (long long)real_after);
	}
}

static int all(void)
{
	struct uclock_stat st = {.size = sizeof(st)};

	uclock_mono_ns();
	uclock_stat(&st);
	slack_ns = test_slack_ns(getenv("UCLOCK_VDSO") ? SYSCALL_SLACK : SLACK);
	printf(" mode %s, source %s, kernel via %s, interval %lld us\n",
	       st.mode_name, st.source_name, st.kernel_path,
	       (long long)st.interval_ns / 1000);
	for (size_t i = 0; i < sizeof(clocks) / sizeof(clocks[0]); i++)
		check_clock(clocks[i].id, clocks[i].name, clocks[i].coarse);
	check_fast("uclock_mono_ns", mono, CLOCK_MONOTONIC);
	check_fast("uclock_real_ns", real, CLOCK_REALTIME);
	check_gettimeofday();
	check_time();
	return check_done("bracket");
}

int main(void)
{
	static const char *const updates[] = {"UCLOCK_INTERVAL_US=20", NULL};
	static const char *const kernel[] = {"UCLOCK_SOURCE=kernel", NULL};
	static const char *const syscalls[] = {"UCLOCK_VDSO=off", NULL};
	static const char *const tsc[] = {"UCLOCK_SOURCE=tsc", "UCLOCK_VDSO=off", NULL};
	int failed = 0;

	printf("default:");
	failed |= in_child(NULL, all);
	printf("updates every 20 us:");
	failed |= in_child(updates, all);
	printf("pass-through:");
	failed |= in_child(kernel, all);
	printf("no vDSO:");
	failed |= in_child(syscalls, all);
	printf("tsc, kernel through system calls:");
	failed |= in_child(tsc, all);
	return failed ? 1 : 0;
}
