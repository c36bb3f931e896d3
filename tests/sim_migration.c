/*
 * The counter's frequency changes by 10 % (a VM migrated to another host):
 * the interval in which it happens is off by at most 10 % of it; then the
 * timekeeper re-calibrates and is exact again, never going back.  Also
 * for a writer whose copies other processes keep (sim.c checks the floors
 * at every flip).
 */
#include <stdio.h>

#include "check.h"
#include "sim.h"

#define US 1000LL
#define MS 1000000LL

static void migrate(double factor, int kept)
{
	struct sim s;

	sim_init(&s, 2.6e9, UINT64_MAX, 1 * MS);
	if (kept) { /* as uclockd: floors also above the copies processes keep */
		s.tk.keep_ns = INT64_MAX;
		s.writer = 1;
	}
	sim_run(&s, 400, 50 * US, 1000, "warm-up");
	sim_run(&s, 300, 20 * US, 20, "before migration");
	s.hz *= factor;
	/* 10 % of at most two intervals, then a floor until the kernel's
	 * clock is there again. */
	sim_run(&s, 300, 20 * US, 2 * MS / 10 + 50, "migrating");
	sim_run(&s, 100, 20 * US, 40, "re-calibrated");
	sim_run(&s, 2000, 20 * US, 20, "settled on the new host");
	CHECK(s.tk.discontinuities >= 1, "the frequency change was not noticed");
	printf("frequency x%.2f%s: worst MONOTONIC error %lld ns\n", factor,
	       kept ? ", copies kept" : "", (long long)s.max_err[SLOT_MONO]);
}

/*
 * Rates that cannot be right are refused: a counter that does not move
 * while calibrating, and one that suddenly runs a thousand times faster.
 * Readers then get the kernel's time (raised to the floor), never a
 * conversion at such a rate.
 */
static void absurd_rates(void)
{
	struct sim s;

	sim_init(&s, 0, UINT64_MAX, 1 * MS);
	sim_run(&s, 400, 50 * US, 0, "counter stopped from the start");
	CHECK(uclock__copy_at(&s.page, s.page.seq)->mode == UCLOCK_MODE_WARMUP,
	      "a stopped counter is never calibrated");

	sim_init(&s, 2.6e9, UINT64_MAX, 1 * MS);
	sim_run(&s, 400, 50 * US, 1000, "warm-up");
	sim_run(&s, 300, 20 * US, 20, "before");
	s.hz *= 1000;
	sim_run(&s, 2000, 20 * US, 2 * MS + 50, "counter a thousand times faster");
	CHECK(uclock__copy_at(&s.page, s.page.seq)->mode == UCLOCK_MODE_WARMUP,
	      "a 2.6 THz counter is not used");
	s.hz /= 1000;
	sim_run(&s, 300, 20 * US, 2 * MS + 50, "counter back to its rate");
	sim_run(&s, 1000, 20 * US, 20, "calibrated again");
	CHECK(uclock__copy_at(&s.page, s.page.seq)->mode == UCLOCK_MODE_COUNTER,
	      "back to the counter");
}

int main(void)
{
	absurd_rates();
	migrate(1.10, 0);
	migrate(0.90, 0);
	migrate(1.10, 1);
	migrate(0.90, 1);
	return check_done("sim_migration");
}
