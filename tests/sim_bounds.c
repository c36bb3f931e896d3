/*
 * The error bound on the simulated machine, where true time is known:
 *  - drift: the kernel's REALTIME runs 12.25 ppm off true time; a time
 *    service's figures taken once, then nothing (missing updates): with
 *    a maximum drift rate above the real one, every reading's interval
 *    holds true time for ten minutes, free running; with a rate below
 *    it, it does not (the check can fail);
 *  - disruptions the timekeeper itself sees: a REALTIME step, a suspend
 *    (the counter running on, or reset), MONOTONIC jumping: each makes the
 *    status disrupted until the service updates again, and only then;
 *  - a quiet machine: an hour of updates without a jump counts none.
 */
#include <stdio.h>

#include "bounds.h"
#include "check.h"
#include "sim.h"

#define US 1000LL
#define MS 1000000LL
#define SEC 1000000000LL

static struct sim s;

static void warm(void)
{
	sim_init(&s, 2.4e9, UINT64_MAX, 1 * MS);
	sim_run(&s, 400, 50 * US, 1000, "warm-up");
	sim_run(&s, 300, 20 * US, 20, "steady");
}

/* True REALTIME: the simulator's true time on the epoch the kernel's
 * REALTIME started from. */
static int64_t true_real(int64_t start_true, int64_t start_real)
{
	return start_real + (s.now - start_true);
}

/* The figures a service gives at 'now', with an error bound it got right:
 * the kernel's REALTIME off true time by 'off', bound |off| + 2 us. */
static struct uclock__bounds_reading service(int64_t real_now, int64_t off, uint32_t ppb,
					     int updated)
{
	return (struct uclock__bounds_reading){
		.source = UCLOCK_BOUNDS_SOURCE_CHRONY, .status = UCLOCK_BOUNDS_SYNCHRONIZED,
		.updated = updated, .as_of_ns = real_now, .error_ns = (off < 0 ? -off : off) + 2 * US,
		.drift_ppb = ppb};
}

/* Readings for ten simulated minutes after one set of figures; how many
 * intervals missed true time. */
static long drift_run(uint32_t ppb)
{
	struct uclock__bounds_copy none = {0}, c;
	struct uclock_bounds b;
	long missed = 0;

	warm();
	int64_t start_true = s.now, start_real = uclock__tk_read(&s.tk, SLOT_REAL);
	/* The service at the start: the kernel's REALTIME is right now. */
	struct uclock__bounds_reading r = service(start_real, 0, ppb, 1);

	uclock__bounds_next(&none, &r, start_real, s.tk.disruptions, 0, 0,
			    uclock__bounds_uclock_error(s.tk.mono_err_ns), &c);
	for (int i = 0; i < 600; i++) {
		sim_run(&s, 20, 50 * MS, 20, "free running");
		int64_t now = uclock__tk_read(&s.tk, SLOT_REAL);

		uclock__bounds_at(&c, now, s.tk.disruptions, 0, 0, &b);
		CHECK(b.status == UCLOCK_BOUNDS_SYNCHRONIZED, "no jump, status %d", b.status);
		int64_t t = true_real(start_true, start_real);
		missed += !(b.earliest_ns <= t && t <= b.latest_ns);
	}
	return missed;
}

static void drift(void)
{
	long missed = drift_run(15000);

	CHECK(missed == 0, "15 ppm over a real 12.25: %ld of 600 intervals missed true time",
	      missed);
	missed = drift_run(5000);
	CHECK(missed > 0, "5 ppm under a real 12.25: every interval held true time");
	printf("drift: 15 ppm held true time for 10 min; 5 ppm missed it %ld times of 600\n",
	       missed);
}

enum jump { STEP, SUSPEND, SUSPEND_RESET, MONO_JUMP };

static void disruption(enum jump what, const char *name)
{
	struct uclock__bounds_copy none = {0}, c, d;
	struct uclock_bounds b;

	warm();
	int64_t now = uclock__tk_read(&s.tk, SLOT_REAL);
	struct uclock__bounds_reading r = service(now, 0, 15000, 1);

	uclock__bounds_next(&none, &r, now, s.tk.disruptions, 0, 0, 100, &c);
	switch (what) {
	case STEP:
		s.real_off += SEC;
		break;
	case SUSPEND:
	case SUSPEND_RESET:
		sim_suspend(&s, 30 * SEC, what == SUSPEND_RESET);
		break;
	case MONO_JUMP:
		s.mono += 1000 * SEC;
		s.raw += 1000 * SEC;
		s.mono_at_tick += 1000 * SEC;
		break;
	}
	sim_run(&s, 400, 50 * US, INT64_MAX / 4, "after the jump");
	now = uclock__tk_read(&s.tk, SLOT_REAL);
	uclock__bounds_at(&c, now, s.tk.disruptions, 0, 0, &b);
	CHECK(b.status == UCLOCK_BOUNDS_DISRUPTED, "%s: status %s", name,
	      uclock__bounds_status_name(b.status));
	/* The service read again without an update: still disrupted. */
	r = service(now, 0, 15000, 0);
	uclock__bounds_next(&c, &r, now, s.tk.disruptions, 0, 0, 100, &d);
	uclock__bounds_at(&d, now, s.tk.disruptions, 0, 0, &b);
	CHECK(b.status == UCLOCK_BOUNDS_DISRUPTED, "%s, service not updated: status %s", name,
	      uclock__bounds_status_name(b.status));
	r.updated = 1;
	uclock__bounds_next(&d, &r, now, s.tk.disruptions, 0, 0, 100, &c);
	sim_run(&s, 100, 50 * US, 40, "after the service's update");
	now = uclock__tk_read(&s.tk, SLOT_REAL);
	uclock__bounds_at(&c, now, s.tk.disruptions, 0, 0, &b);
	CHECK(b.status == UCLOCK_BOUNDS_SYNCHRONIZED, "%s, service updated: status %s", name,
	      uclock__bounds_status_name(b.status));
	printf("%s: disrupted until the service updated\n", name);
}

static void quiet(void)
{
	warm();
	uint64_t before = s.tk.disruptions;

	for (int i = 0; i < 3600; i++)
		sim_run(&s, 5, 200 * MS, 40, "an hour");
	CHECK(s.tk.disruptions == before, "an hour with no jump counted %llu disruptions",
	      (unsigned long long)(s.tk.disruptions - before));
}

int main(void)
{
	drift();
	disruption(STEP, "REALTIME stepped by 1 s");
	disruption(SUSPEND, "suspend, counter ran on");
	disruption(SUSPEND_RESET, "suspend, counter reset");
	disruption(MONO_JUMP, "MONOTONIC jumped 1000 s");
	quiet();
	return check_done("sim_bounds");
}
