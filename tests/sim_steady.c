/*
 * Steady state on a simulated machine: warm-up hands out the kernel's time,
 * then the counter serves every clock within a few ns of the kernel, with
 * dense and sparse readers, a CPU slightly behind, after hours idle, and
 * with updates seconds apart.
 */
#include <stdio.h>

#include "check.h"
#include "sim.h"

#define US 1000LL
#define MS 1000000LL

static void warm_up(struct sim *s)
{
	/* The kernel's own answer until the rate is known: exact. */
	sim_check(s, SLOT_MONO, 0, "first read");
	CHECK(uclock__copy_at(&s->page, s->page.seq)->mode == UCLOCK_MODE_WARMUP,
	      "first read leaves the timekeeper warming up");
	sim_run(s, 100, 50 * US, 100, "warm-up");
	CHECK(uclock__copy_at(&s->page, s->page.seq)->mode == UCLOCK_MODE_COUNTER,
	      "counter mode after 5 ms of reads");
}

static void dense_and_sparse(void)
{
	struct sim s;

	sim_init(&s, 2.5e9, UINT64_MAX, 1 * MS);
	warm_up(&s);
	sim_run(&s, 200, 50 * US, 40, "settling");
	sim_run(&s, 20000, 10 * US, 20, "dense readers");
	sim_run(&s, 2000, 1700 * US, 20, "one read per 1.7 ms");
	/* A reader that finds the parameters stale re-anchors them at an upper
	 * bound of the kernel's time: ahead by about half a bracket. */
	sim_run(&s, 200, 37 * MS, 40, "one read per 37 ms");
	sim_run(&s, 100, 20 * US, 40, "dense again, first interval");
	sim_run(&s, 2000, 20 * US, 20, "dense again");
	printf("steady: worst error %lld ns (MONOTONIC), %lld ns (RAW), %ld reads, %llu updates\n",
	       (long long)s.max_err[SLOT_MONO], (long long)s.max_err[SLOT_RAW],
	       s.reads_done, (unsigned long long)s.tk.updates);
}

static void cpu_behind(void)
{
	struct sim s;

	sim_init(&s, 3.0e9, UINT64_MAX, 1 * MS);
	warm_up(&s);
	sim_run(&s, 1000, 20 * US, 20, "settling");
	/* Every other call on a CPU whose counter is 20 ns behind: readers
	 * there clamp at the anchor, never wrap; the lines may be anchored
	 * on either CPU, so readings are as far off as the CPUs are apart. */
	s.behind = 60;
	sim_run(&s, 20000, 3 * US, 60, "a CPU behind");
	/* Just after an update anchored on the first CPU, a read on one 1 us
	 * behind finds the counter before cycle_last: clamped to the anchor. */
	s.behind = 3000;
	for (int i = 0; i < 100; i++) {
		s.on_behind_cpu = 0;
		uclock__tk_try_update(&s.tk);
		s.reads = 1;
		int64_t before = s.last[SLOT_MONO];
		sim_check(&s, SLOT_MONO, 60, "right after an update, CPU behind");
		CHECK(s.last[SLOT_MONO] >= before, "clamped read went back");
		sim_advance(&s, 20 * US);
	}
	s.behind = 0;
	sim_run(&s, 200, 20 * US, 60, "CPUs agree again, first interval");
	sim_run(&s, 1000, 20 * US, 20, "CPUs agree again");
}

static void hours_idle(void)
{
	struct sim s;

	sim_init(&s, 2.0e9, UINT64_MAX, 1 * MS);
	warm_up(&s);
	sim_run(&s, 1000, 20 * US, 20, "settling");
	s.ntp_ppm += 0.8; /* NTP moved the rate a little meanwhile */
	sim_advance(&s, 3LL * 3600 * 1000 * MS);
	sim_run(&s, 1, 0, 40, "first read after three hours");
	sim_run(&s, 5000, 20 * US, 40, "after three hours");
	CHECK(s.tk.discontinuities == 0, "idle is not a discontinuity (%llu)",
	      (unsigned long long)s.tk.discontinuities);
}

/*
 * Reads back to back, a nanosecond apart, across hundreds of updates: an
 * update that moved the line back by even a nanosecond shows here.
 */
static void back_to_back(void)
{
	struct sim s;

	sim_init(&s, 2.7e9, UINT64_MAX, 50 * US);
	warm_up(&s);
	sim_run(&s, 1000, 5 * US, 40, "settling");
	/* Reads cost 0-20 ns (jitter only); the brackets of the samples are
	 * as noisy, so the updates have something to smooth over. */
	s.counter_cost = 0;
	s.jitter = 20;
	for (int i = 0; i < 2000000; i++)
		sim_check(&s, SLOT_MONO, 40, "back to back");
	printf("back to back: %llu updates (%ld flips checked), worst %lld ns\n",
	       (unsigned long long)s.tk.updates, s.flips_checked,
	       (long long)s.max_err[SLOT_MONO]);
	CHECK(s.flips_checked > 100, "only %ld flips checked", s.flips_checked);
}

/*
 * The writer interrupted inside a third of its brackets for 2 us: those
 * samples say little about where the kernel read its counter.  Steering by
 * them would move the line by up to a microsecond; it must not.
 */
static void interrupted_writer(void)
{
	struct sim s;

	sim_init(&s, 2.4e9, UINT64_MAX, 1 * MS);
	warm_up(&s);
	sim_run(&s, 400, 20 * US, 40, "settling");
	s.stall_percent = 33;
	s.stall_ns = 2000;
	sim_run(&s, 20000, 20 * US, 40, "writer interrupted");
	s.stall_percent = 90;
	sim_run(&s, 5000, 20 * US, 60, "writer interrupted nearly always");
	printf("interrupted writer: worst %lld ns over %llu updates\n",
	       (long long)s.max_err[SLOT_MONO], (unsigned long long)s.tk.updates);
}

/*
 * Updates seconds apart on a fast counter: a span's worth of ticks times
 * the slope no longer fits the fast readers' 64-bit evaluation, so the
 * limit is cut short of the span (check_flip() checks every copy).
 */
static void long_interval(void)
{
	struct sim s;

	sim_init(&s, 5.0e9, UINT64_MAX, 8000 * MS);
	warm_up(&s);
	/* Accuracy is not the point here (the line is extrapolated over
	 * seconds from a rate measured over milliseconds): the bound is loose. */
	int64_t worst = sim_worst(&s, 60, 1000 * MS);
	printf("8 s interval: worst %lld ns over %llu updates\n", (long long)worst,
	       (unsigned long long)s.tk.updates);
	CHECK(worst < 5000, "8 s interval: %lld ns off the kernel", (long long)worst);
	const struct uclock__copy *c = uclock__copy_at(&s.page, s.page.seq);
	CHECK(c->mode == UCLOCK_MODE_COUNTER && c->limit > 0 && c->limit < c->hard / 2,
	      "limit cut short of the span: %llu of %llu ticks",
	      (unsigned long long)c->limit, (unsigned long long)c->hard / 2);
	CHECK(s.flips_checked > 0, "flips checked");
}

/*
 * While the rate holds, the interval doubles up to 64 ms (fewer updates on
 * readers' paths), the error staying within its bound; a frequency change
 * (NTP) takes it back to the one configured until the rate holds again; a
 * counter reset with a long span holds MONOTONIC no more than the bound on
 * floors, not the span.
 */
static void stretching(void)
{
	struct sim s;

	sim_init(&s, 2.6e9, UINT64_MAX, 1 * MS);
	s.tk.interval_fixed = 0;
	warm_up(&s);
	sim_run(&s, 200, 50 * US, 40, "settling");
	uint64_t updates = s.tk.updates;
	sim_run(&s, 20000, 100 * US, 20, "two seconds, the rate holding");
	CHECK(s.tk.steady_ns == 64 * MS, "the interval grew to %lld ms",
	      (long long)(s.tk.steady_ns / MS));
	uint64_t steady_updates = s.tk.updates - updates;
	CHECK(steady_updates < 100, "%llu updates in 2 s", (unsigned long long)steady_updates);
	/* NTP sets a new frequency: off by 100 ppm of the span until the next
	 * update notices; then short spans again until it holds. */
	s.ntp_ppm += 100;
	sim_run(&s, 700, 100 * US, 64 * MS / 10000 + 100, "frequency changed");
	CHECK(s.tk.steady_ns < 64 * MS || s.tk.updates - updates > steady_updates + 5,
	      "the change was followed with short intervals");
	sim_run(&s, 20000, 100 * US, 20, "the new rate holding");
	/* A counter reset after a long span: floors bounded by the kernel. */
	sim_suspend(&s, 5 * MS, 1);
	sim_run(&s, 200, 100 * US, 20000 + 100, "after a counter reset");
	sim_run(&s, 2000, 100 * US, 40, "settled again");
	printf("stretching: %llu updates in 2 s while the rate held (interval %lld ms), "
	       "worst MONOTONIC error %lld ns\n", (unsigned long long)steady_updates,
	       (long long)(s.tk.steady_ns / MS), (long long)s.max_err[SLOT_MONO]);
}

int main(void)
{
	stretching();
	long_interval();
	interrupted_writer();
	back_to_back();
	dense_and_sparse();
	cpu_behind();
	hours_idle();
	return check_done("sim_steady");
}
