/*
 * Counter values captured now and converted later: each must convert to
 * what a reader read when it was captured, within 20 ns of the bracket of
 * kernel readings around the capture, for ages from a millisecond to ten
 * seconds, while the process reads the clock (the lines are updated and
 * steered meanwhile) and while it does not.
 */
#include <stdio.h>
#include <time.h>

#include "check.h"
#include "uclock.h"

#define CAPTURES 4
/*
 * The bound is the production build's.  A sanitizer's instrumentation
 * runs inside the timekeeper's own brackets around its kernel readings:
 * they widen, and the knots the first seconds' conversions rest on are
 * known to tens of ns only (28 ns outside was seen under ASan, about one
 * run in four; 0-7 ns without).  There the bound is what the wider
 * brackets allow.
 */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifdef SANITIZED
#define SLACK_NS 60
#else
#define SLACK_NS 20
#endif

static const int ages_ms[] = {1, 20, 100, 500, 1000, 3000, 10000};
#define AGES (int)(sizeof(ages_ms) / sizeof(ages_ms[0]))

struct capture {
	int64_t before, after;
	uint64_t tick;
	clockid_t clock;
};

static const clockid_t clocks[] = {CLOCK_MONOTONIC, CLOCK_REALTIME, CLOCK_MONOTONIC_RAW,
				   CLOCK_BOOTTIME};

static int run(int reading)
{
	static struct capture c[AGES][CAPTURES];
	int64_t start = vdso_ns(CLOCK_MONOTONIC);

	for (int k = 0; k < CAPTURES; k++)
		for (int a = 0; a < AGES; a++) {
			struct capture *x = &c[a][k];

			x->clock = clocks[(a + k) % 4];
			x->before = vdso_ns(x->clock);
			x->tick = uclock_ticks();
			x->after = vdso_ns(x->clock);
			for (int i = 0; i < 2000; i++)
				uclock_mono_ns();
		}
	for (int a = 0; a < AGES; a++) {
		int64_t due = start + ages_ms[a] * 1000000LL, worst = 0;

		while (vdso_ns(CLOCK_MONOTONIC) < due) {
			if (reading) {
				uclock_mono_ns();
			} else {
				struct timespec nap = {0, 1000000};
				nanosleep(&nap, NULL);
			}
		}
		for (int k = 0; k < CAPTURES; k++) {
			struct capture *x = &c[a][k];
			int64_t v = uclock_ticks_to_ns(x->clock, x->tick);
			int64_t out = v < x->before ? x->before - v : v > x->after ? v - x->after : 0;

			if (out > worst)
				worst = out;
		}
		printf("%s, %5d ms later: worst %lld ns outside the capture's bracket\n",
		       reading ? "reading meanwhile" : "idle meanwhile", ages_ms[a],
		       (long long)worst);
		CHECK(worst <= test_slack_ns(SLACK_NS), "%d ms later (%s): %lld ns outside", ages_ms[a],
		      reading ? "reading" : "idle", (long long)worst);
	}
	return check_done("past");
}

static int reading(void)
{
	struct uclock_stat st = {.size = sizeof(st)};

	for (int i = 0; i < 2000000; i++)
		uclock_mono_ns(); /* past warm-up */
	uclock_stat(&st);
	if (st.source != UCLOCK_SOURCE_TSC)
		check_skip("the counter is not used here: %s", st.reason);
	return run(1);
}

static int idle(void)
{
	for (int i = 0; i < 2000000; i++)
		uclock_mono_ns();
	return run(0);
}

int main(void)
{
	int rc = in_child(NULL, reading);

	return rc == 77 ? 77 : rc | in_child(NULL, idle);
}
