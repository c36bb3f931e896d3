/*
 * A simulated machine for the timekeeper: a counter and the kernel's clocks
 * driven by one true time, with the events a real machine has (NTP rate
 * changes, REALTIME steps, suspend, migration, a CPU slightly behind, a
 * narrow counter).  Every counter and clock read costs simulated time, with
 * jitter, so brackets behave like real ones.
 */
#ifndef UCLOCK_TEST_SIM_H
#define UCLOCK_TEST_SIM_H

#include <stdint.h>

#include "internal.h"

struct sim {
	/* true time and the costs of reads, ns */
	int64_t now;
	int64_t counter_cost, clock_cost, jitter;
	int read_at_percent;       /* where in a clock call the kernel reads */
	int stall_percent;         /* clock calls held up (an interrupt)... */
	int64_t stall_ns;          /* ...this long, before or after the read */
	uint64_t rng;

	/* the counter */
	long double ticks;         /* unmasked */
	double hz;
	uint64_t mask;
	uint64_t behind;           /* every other call runs on a CPU this far behind */
	unsigned reads;
	int on_behind_cpu;
	uint64_t last_counter;     /* last value read, any reader */
	uint32_t seen_seq;         /* latch flips checked up to here */
	long flips_checked;

	/* A read nested in any read or update, at a chosen event: what a
	 * signal handler, or another thread, could do at that point. */
	long events;
	long interrupt_at;         /* event index, -1 for none */
	int64_t nested_err;
	int nested_done;
	int64_t nested_tol;

	/* the kernel's clocks */
	long double mono, raw;     /* ns */
	double ntp_ppm;            /* MONOTONIC rate vs true time */
	double raw_ppm;            /* MONOTONIC_RAW rate vs true time */
	int64_t real_off, boot_off, tai_off;
	int64_t tick_ns;           /* coarse clocks' tick */
	long clock_calls;          /* kernel clock readings made */
	long double mono_at_tick;
	int64_t last_tick;

	/* the kernel values at the last read event (counter or clock) */
	long double seen_mono, seen_raw;
	int64_t seen_real_off, seen_boot_off, seen_tai_off;

	/* updates: by readers, or also by a writer half a span on (as
	 * uclockd, whose copies processes keep) */
	int writer;

	struct uclock__page page __attribute__((aligned(64)));
	struct uclock_tk tk;

	/* monotonicity and error bookkeeping, per slot */
	int64_t last[SLOT_NONE];
	int64_t max_err[SLOT_NONE];
	long reads_done;
};

/* Defaults: 2.5 GHz 64-bit counter, 1 ms interval, small costs. */
void sim_init(struct sim *s, double hz, uint64_t mask, int64_t interval_ns);
/* Let true time pass without reads. */
void sim_advance(struct sim *s, int64_t ns);
/* Suspend for ns: MONOTONIC and MONOTONIC_RAW stop, BOOTTIME goes on; the
 * counter runs on, or (reset) starts again from zero. */
void sim_suspend(struct sim *s, int64_t ns, int reset);
/* The kernel's value of a clock at the last read event. */
int64_t sim_kernel_seen(const struct sim *s, enum slot slot);
/*
 * Read a clock through the timekeeper; checks it against the kernel at the
 * same instant (|error| <= tol_ns) and, for the monotonic clocks, that it
 * did not go back.  Returns the error.
 */
int64_t sim_check(struct sim *s, enum slot slot, int64_t tol_ns,
		  const char *what);
/* Read every served clock, then let 'gap' ns pass; 'count' times. */
void sim_run(struct sim *s, int count, int64_t gap, int64_t tol_ns,
	     const char *what);
/* Largest |error| seen over 'count' reads 'gap' apart, no bound. */
int64_t sim_worst(struct sim *s, int count, int64_t gap);
const char *slot_name(enum slot slot);
/* Read MONOTONIC as sim_check() does, nested in the read in progress. */
void sim_nested_check(struct sim *s, int64_t tol_ns, const char *what);

#endif
