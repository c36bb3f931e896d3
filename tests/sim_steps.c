/*
 * The kernel steps REALTIME (settimeofday, leap seconds, TAI offset set):
 * uclock follows at its next update, within one interval; MONOTONIC,
 * MONOTONIC_RAW and BOOTTIME do not move.
 */
#include <stdio.h>

#include "check.h"
#include "sim.h"

#define US 1000LL
#define MS 1000000LL
#define SEC 1000000000LL

/* After a step of the kernel's REALTIME (or TAI) by 'step': each reading
 * is the new time, or the old one until the update that sees the step. */
static void step(struct sim *s, int64_t *offset, int64_t step_ns, enum slot slot)
{
	uint64_t steps = s->tk.realtime_steps;
	int64_t since = 0;
	int followed = 0;

	*offset += step_ns;
	for (int i = 0; i < 500; i++, since += 20 * US) {
		int64_t err = sim_check(s, slot, INT64_MAX, "step");
		int64_t abs_err = err < 0 ? -err : err;
		int64_t old = err + step_ns < 0 ? -(err + step_ns) : err + step_ns;

		if (abs_err <= 20)
			followed = 1;
		else
			CHECK(!followed && old <= 20 && since <= 2 * MS,
			      "%s %+lld ns: reading off by %lld ns, %lld us after the step",
			      slot_name(slot), (long long)step_ns, (long long)err,
			      (long long)(since / US));
		sim_check(s, SLOT_MONO, 20, "MONOTONIC across a REALTIME step");
		sim_check(s, SLOT_BOOT, 20, "BOOTTIME across a REALTIME step");
		sim_check(s, SLOT_RAW, 20, "MONOTONIC_RAW across a REALTIME step");
		sim_advance(s, 20 * US);
	}
	CHECK(followed, "the %+lld ns step was never followed", (long long)step_ns);
	if (slot == SLOT_REAL)
		CHECK(s->tk.realtime_steps == steps + 1, "one REALTIME step counted, not %llu",
		      (unsigned long long)(s->tk.realtime_steps - steps));
}

int main(void)
{
	struct sim s;

	sim_init(&s, 2.9e9, UINT64_MAX, 1 * MS);
	sim_run(&s, 400, 50 * US, 1000, "warm-up");
	sim_run(&s, 200, 20 * US, 20, "settled");
	step(&s, &s.real_off, 3600 * SEC, SLOT_REAL);
	step(&s, &s.real_off, -3600 * SEC, SLOT_REAL);
	step(&s, &s.real_off, SEC, SLOT_REAL);
	step(&s, &s.real_off, -SEC, SLOT_REAL); /* a leap second */
	step(&s, &s.tai_off, SEC, SLOT_TAI);    /* the TAI offset set */
	sim_run(&s, 1000, 20 * US, 20, "after the steps");
	CHECK(s.tk.discontinuities == 0, "a REALTIME step is not a discontinuity");
	printf("steps: %llu REALTIME steps followed\n",
	       (unsigned long long)s.tk.realtime_steps);
	return check_done("sim_steps");
}
