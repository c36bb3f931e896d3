/*
 * The kernel's MONOTONIC itself jumps for this process: a child entering
 * another time namespace, or a process restored from a checkpoint.  uclock
 * follows the kernel (it must agree with the calling process's clocks), and
 * a fork child checks at its first read.
 */
#include <stdio.h>

#include "check.h"
#include "sim.h"

#define US 1000LL
#define MS 1000000LL
#define SEC 1000000000LL

static void forget_history(struct sim *s)
{
	for (int i = 0; i < SLOT_NONE; i++)
		s->last[i] = INT64_MIN;
}

static void jump(int64_t by, int after_fork)
{
	struct sim s;

	sim_init(&s, 2.0e9, UINT64_MAX, 1 * MS);
	sim_run(&s, 400, 50 * US, 1000, "warm-up");
	sim_run(&s, 300, 20 * US, 20, "before the jump");
	if (after_fork)
		uclock__tk_after_fork(&s.tk);
	s.mono += by;
	s.raw += by;
	s.mono_at_tick += by;
	forget_history(&s);
	/* A fork child's first read is checked against the kernel at once;
	 * otherwise the old parameters may be used up to an interval. */
	if (after_fork)
		sim_run(&s, 1, 0, 20, "first read in the new namespace");
	/* Until the update that sees the jump, the old timeline; across the
	 * switch the kernel's own clock is not monotonic for this process. */
	for (int i = 0; i < 100; i++) {
		if (!after_fork)
			forget_history(&s);
		sim_run(&s, 1, 20 * US, after_fork ? 40 : (by < 0 ? -by : by) + 40,
			"after the jump");
	}
	sim_run(&s, 300, 20 * US, 40, "re-calibrated");
	sim_run(&s, 1000, 20 * US, 20, "settled");
	printf("MONOTONIC %+lld s%s: worst error after the first interval ok\n",
	       (long long)(by / SEC), after_fork ? " (fork child)" : "");
}

/* A fork child in the same namespace: one regular check, no re-warm. */
static void plain_fork(void)
{
	struct sim s;

	sim_init(&s, 2.0e9, UINT64_MAX, 1 * MS);
	sim_run(&s, 400, 50 * US, 1000, "warm-up");
	sim_run(&s, 300, 20 * US, 20, "parent");
	uint64_t updates = s.tk.updates, warmups = s.tk.warmups;
	uclock__tk_after_fork(&s.tk);
	sim_run(&s, 1, 0, 20, "child, first read");
	CHECK(s.tk.updates == updates + 1, "the child's first read checks the kernel");
	CHECK(s.tk.warmups == warmups, "same namespace: no re-calibration");
	sim_run(&s, 1000, 20 * US, 20, "child");
}

int main(void)
{
	jump(1000 * SEC, 1);
	jump(-1000 * SEC, 1);
	jump(86400 * SEC, 0);
	jump(-86400 * SEC, 0);
	plain_fork();
	return check_done("sim_jumps");
}
