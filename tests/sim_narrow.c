/*
 * A 32-bit counter at 1 GHz wraps every 4.3 s: conversions stay right across
 * wraps; after an idle longer than a wrap the timekeeper notices and
 * re-calibrates instead of trusting the wrapped value.
 */
#include <stdio.h>

#include "check.h"
#include "sim.h"

#define US 1000LL
#define MS 1000000LL
#define SEC 1000000000LL

int main(void)
{
	struct sim s;

	sim_init(&s, 1e9, 0xffffffffu, 1 * MS);
	s.ticks = 4294967296.0L - 3e6L; /* wraps 3 ms from now */
	sim_run(&s, 400, 50 * US, 1000, "warm-up across a wrap");
	sim_run(&s, 100, 20 * US, 40, "settling");
	sim_run(&s, 200000, 50 * US, 20, "ten seconds, two wraps");
	sim_run(&s, 10, 1500 * MS, 40, "a read every 1.5 s");
	sim_advance(&s, 6 * SEC); /* longer than a wrap */
	sim_run(&s, 1, 0, 20, "first read after 6 s idle");
	sim_run(&s, 200, 20 * US, 1000, "re-calibrating");
	sim_run(&s, 2000, 20 * US, 20, "settled");
	printf("narrow counter: worst MONOTONIC error %lld ns, %llu updates\n",
	       (long long)s.max_err[SLOT_MONO], (unsigned long long)s.tk.updates);
	return check_done("sim_narrow");
}
