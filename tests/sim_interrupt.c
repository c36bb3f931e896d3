/*
 * A read nested at every point of an update: what a signal handler that
 * interrupts the writer, or another thread running while the writer is
 * stopped there, sees.  It must never wait, must be right, and nothing read
 * after it may be earlier: through regular updates, stale ones (the nested
 * reader takes the kernel's answer, the writer then starts above it), the
 * end of warm-up, and a discontinuity.
 */
#include <stdio.h>

#include "check.h"
#include "sim.h"

#define US 1000LL
#define MS 1000000LL

/* Events in one update, counted on a twin of the simulation. */
static long events_of_next_read(struct sim *s, int64_t idle)
{
	struct sim twin = *s;

	twin.tk.ops.ctx = &twin;
	twin.tk.page = &twin.page;
	sim_advance(&twin, idle);
	long before = twin.events;
	uclock__tk_read(&twin.tk, SLOT_MONO);
	return twin.events - before;
}

/*
 * Slow kernel clock calls that read the counter early in the call: the
 * middle of a bracket is then well after the kernel's read, and a line
 * anchored at the kernel's value there is behind the kernel (by 45 % of
 * the call, here about 90 ns: bounds below allow 150).  A kernel answer
 * handed out just before such a line is published would be ahead of the
 * line: the case the writer's handshake with readers is for.
 */
#define BIAS 150
static void settled(struct sim *s)
{
	sim_init(s, 2.3e9, UINT64_MAX, 1 * MS);
	s->clock_cost = 200;
	s->read_at_percent = 5;
	sim_run(s, 400, 50 * US, 1000, "warm-up");
	sim_run(s, 400, 20 * US, BIAS, "settled");
}

static int interrupt_every_point(const char *what, int64_t idle, int64_t tol,
				 void (*prepare)(struct sim *))
{
	struct sim s;
	long n, nested = 0;

	settled(&s);
	if (prepare)
		prepare(&s);
	n = events_of_next_read(&s, idle);
	for (long k = 0; k < n; k++) {
		settled(&s);
		if (prepare)
			prepare(&s);
		sim_advance(&s, idle);
		s.nested_tol = tol;
		s.nested_done = 0;
		s.interrupt_at = s.events + k;
		sim_check(&s, SLOT_MONO, tol, what);
		nested += s.nested_done;
		sim_run(&s, 200, 20 * US, tol, what);
	}
	CHECK(nested == n, "%s: %ld of %ld nested reads happened", what, nested, n);
	printf("%-40s %ld interruption points\n", what, n);
	return (int)n;
}

static void migrate(struct sim *s)
{
	s->hz *= 1.1;
}

/* Calibration restarted (a migration): the next due read ends warm-up. */
static void into_warmup(struct sim *s)
{
	s->hz *= 1.1;
	sim_advance(s, 1500 * US);
	sim_check(s, SLOT_MONO, 200 * US, "discontinuity");
	CHECK(uclock__copy_at(&s->page, s->page.seq)->mode == UCLOCK_MODE_WARMUP,
	      "warming up again");
}

int main(void)
{
	CHECK(interrupt_every_point("regular update", 1100 * US, BIAS, NULL) > 20,
	      "too few events in a regular update");
	CHECK(interrupt_every_point("stale update", 5 * MS, BIAS, NULL) > 20,
	      "too few events in a stale update");
	/* The old line ran 10 % fast for the interval: its error, then a
	 * floor until the kernel passes it. */
	CHECK(interrupt_every_point("discontinuity (migration)", 1100 * US, 200 * US,
				    migrate) > 20, "too few events in a discontinuity");
	CHECK(interrupt_every_point("end of warm-up", 1100 * US, BIAS, into_warmup) > 20,
	      "too few events at the end of warm-up");
	return check_done("sim_interrupt");
}
