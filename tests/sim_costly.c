/*
 * Machines the kernel's clock is expensive on, and one whose TSC is out of
 * step across CPUs, simulated.
 *  - Each kernel reading a microsecond, give or take half (a system call on
 *    a machine without a usable vDSO, a hypervisor exit): the timekeeper
 *    calibrates, stays within its brackets, and takes a handful of readings
 *    an update, not dozens.
 *  - Two CPUs whose counters are 50 us apart, reads alternating between
 *    them: the counter jumps against the kernel's clock at every other
 *    update; within milliseconds the timekeeper gives the counter up and
 *    passes through to the kernel, and from then on no clock goes back.
 */
#include <stdio.h>

#include "check.h"
#include "sim.h"

#define US 1000LL
#define MS 1000000LL

static void expensive_kernel(void)
{
	struct sim s;

	sim_init(&s, 2.6e9, UINT64_MAX, 1 * MS);
	s.tk.interval_fixed = 0; /* stretched by the updates' cost */
	s.clock_cost = 500;
	s.jitter = 1000;
	sim_run(&s, 200, 50 * US, 2000, "warm-up, expensive kernel");
	CHECK(uclock__copy_at(&s.page, s.page.seq)->mode == UCLOCK_MODE_COUNTER,
	      "calibrated with 1 us +- 50 %% kernel readings");
	long calls = s.clock_calls;
	uint64_t updates = s.tk.updates;
	long reads = s.reads_done;
	/* The error is the brackets' (a microsecond wide), not more. */
	sim_run(&s, 20000, 20 * US, 1500, "dense readers, expensive kernel");
	sim_run(&s, 500, 700 * US, 1500, "a read every 0.7 ms, expensive kernel");
	double per_update = (double)(s.clock_calls - calls) / (double)(s.tk.updates - updates);
	double per_read = (double)(s.clock_calls - calls) / (double)(s.reads_done - reads);
	printf("expensive kernel: worst MONOTONIC error %lld ns; %.1f kernel readings an "
	       "update, %.3f a read (%llu updates)\n", (long long)s.max_err[SLOT_MONO],
	       per_update, per_read, (unsigned long long)(s.tk.updates - updates));
	CHECK(per_update <= 10, "%.1f kernel readings an update", per_update);
	CHECK(per_read <= 0.01, "%.3f kernel readings a read", per_read);
}

static void out_of_step(void)
{
	struct sim s;

	sim_init(&s, 2.6e9, UINT64_MAX, 1 * MS);
	sim_run(&s, 400, 50 * US, 1000, "warm-up");
	sim_run(&s, 300, 20 * US, 20, "one CPU");
	/* Every other read on a CPU 50 us behind.  Until the timekeeper gives
	 * up, readings on the two CPUs are that far apart (as the vDSO's would
	 * be, if the kernel used such a TSC), with no order between reads on
	 * different CPUs; a counter gone back says nothing of how far readers
	 * went, so the floor is the line's end ('hard', 2 ms). */
	s.behind = (uint64_t)(50e-6 * s.hz);
	int reads = 0;
	while (!uclock__tk_gave_up(&s.tk) && reads < 5000) {
		sim_check(&s, SLOT_MONO, 2 * MS + 50 * US, "CPUs out of step");
		s.last[SLOT_MONO] = INT64_MIN;
		sim_advance(&s, 20 * US);
		reads++;
	}
	const char *why = uclock__tk_gave_up(&s.tk);
	CHECK(why && *why, "the counter given up, a reason given");
	CHECK(uclock__copy_at(&s.page, s.page.seq)->mode == UCLOCK_MODE_KERNEL,
	      "the page passes through");
	CHECK(reads * 20 * US <= 20 * MS, "given up after %d ms", (int)(reads * 20 * US / MS));
	/* Then held at the floor until the kernel has passed it, never back,
	 * then the kernel's own. */
	sim_run(&s, 200, 20 * US, 2 * MS + 50 * US, "giving up");
	sim_run(&s, 1000, 20 * US, 0, "passing through");
	printf("out of step: given up after %d reads, %llu discontinuities: %s\n", reads,
	       (unsigned long long)s.tk.discontinuities, why ? why : "(none)");
}

int main(void)
{
	expensive_kernel();
	out_of_step();
	return check_done("sim_costly");
}
