/*
 * Suspend and resume: MONOTONIC and MONOTONIC_RAW stop, BOOTTIME goes on by
 * the time asleep; the counter either ran on or starts again from zero.
 * uclock must notice, re-calibrate, never go back, and BOOTTIME must jump.
 */
#include <stdio.h>

#include "check.h"
#include "sim.h"

#define US 1000LL
#define MS 1000000LL
#define SEC 1000000000LL

static void suspend(int reset, int64_t asleep)
{
	struct sim s;
	uint64_t disc;
	int64_t boot_before;

	sim_init(&s, 2.2e9, UINT64_MAX, 1 * MS);
	sim_run(&s, 400, 50 * US, 1000, "warm-up");
	sim_run(&s, 300, 20 * US, 20, "before suspend");
	disc = s.tk.discontinuities;
	boot_before = s.last[SLOT_BOOT];
	sim_advance(&s, 300 * US); /* the last read was a little before */
	sim_suspend(&s, asleep, reset);

	/* Nothing handed out before can be passed; until the kernel's clock
	 * is there again, readings hold at that floor (two intervals). */
	sim_run(&s, 1, 0, 2 * MS + 50, "first read after resume");
	CHECK(s.last[SLOT_BOOT] - boot_before >= asleep,
	      "BOOTTIME moved by %lld ns, asleep %lld ns",
	      (long long)(s.last[SLOT_BOOT] - boot_before), (long long)asleep);
	sim_run(&s, 200, 20 * US, 2 * MS + 50, "re-calibrating after resume");
	sim_run(&s, 200, 20 * US, 40, "calibrated after resume");
	sim_run(&s, 2000, 20 * US, 20, "settled after resume");
	CHECK(s.tk.discontinuities == disc + 1, "%s: one discontinuity, not %llu",
	      reset ? "counter reset" : "counter ran on",
	      (unsigned long long)(s.tk.discontinuities - disc));
	printf("suspend %.1f s, counter %s: worst MONOTONIC error %lld ns\n",
	       (double)asleep / SEC, reset ? "reset" : "ran on",
	       (long long)s.max_err[SLOT_MONO]);
}

int main(void)
{
	suspend(0, 30 * SEC);
	suspend(1, 30 * SEC);
	suspend(0, 5 * MS);
	suspend(1, 5 * MS);
	return check_done("sim_suspend");
}
