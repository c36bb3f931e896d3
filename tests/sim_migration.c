/*
 * The counter's frequency changes by 10 % (a VM migrated to another host):
 * the interval in which it happens is off by at most 10 % of it; then the
 * timekeeper re-calibrates and is exact again, never going back.
 */
#include <stdio.h>

#include "check.h"
#include "sim.h"

#define US 1000LL
#define MS 1000000LL

static void migrate(double factor)
{
	struct sim s;

	sim_init(&s, 2.6e9, UINT64_MAX, 1 * MS);
	sim_run(&s, 400, 50 * US, 1000, "warm-up");
	sim_run(&s, 300, 20 * US, 20, "before migration");
	s.hz *= factor;
	/* 10 % of at most two intervals, then a floor until the kernel's
	 * clock is there again. */
	sim_run(&s, 300, 20 * US, 2 * MS / 10 + 50, "migrating");
	sim_run(&s, 100, 20 * US, 40, "re-calibrated");
	sim_run(&s, 2000, 20 * US, 20, "settled on the new host");
	CHECK(s.tk.discontinuities >= 1, "the frequency change was not noticed");
	printf("frequency x%.2f: worst MONOTONIC error %lld ns\n", factor,
	       (long long)s.max_err[SLOT_MONO]);
}

int main(void)
{
	migrate(1.10);
	migrate(0.90);
	return check_done("sim_migration");
}
