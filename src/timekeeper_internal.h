/*
 * The timekeeper's files as they call on each other: the writer's fixed
 * point and lines, and what one file lends the others.  The rest of the
 * library reaches the timekeeper through internal.h only.
 *
 *   timekeeper.c  the update: its driver, its lock, publishing
 *   sampling.c    the kernel's clocks between counter reads; its offsets
 *   rate.c        the kernel's rate against the counter
 *   steering.c    the next lines from the samples; the update interval
 *   warmup.c      where the lines break: warm-up, discontinuities, floors,
 *                 hand-overs
 *   slow_read.c   readers the inline path cannot answer; ticks to time
 */
#ifndef UCLOCK_TIMEKEEPER_INTERNAL_H
#define UCLOCK_TIMEKEEPER_INTERNAL_H

#include "internal.h"

#define FRAC_BITS 32
#define RESAMPLE 1               /* samples too old or doubtful: take new ones */
#define JUMPS_TRUSTED 3          /* counter jumps this many times (within
				    JUMPS_WINDOW_NS): not trusted */

/* A line as the writer sees it: value at the anchor in ns << 32, and rate. */
struct line {
	i128 value;
	uint64_t mult;
};

/* Signed distance a - b on a counter that wraps at mask. */
static inline int64_t tick_diff(uint64_t a, uint64_t b, uint64_t mask)
{
	uint64_t d = (a - b) & mask;

	if (d > mask >> 1)
		return -(int64_t)((b - a) & mask);
	return (int64_t)d;
}

static inline i128 line_at(const struct line *l, int64_t ticks)
{
	return l->value + (i128)ticks * (i128)l->mult;
}

/* ns as fixed point; multiplied, as shifting a negative value is not. */
static inline i128 fx(int64_t ns)
{
	return (i128)ns * ((i128)1 << FRAC_BITS);
}

static inline int64_t fx_to_ns(i128 v)
{
	return (int64_t)(v >> FRAC_BITS); /* arithmetic: floor */
}

static inline struct line copy_line(const struct uclock__copy *c, int raw)
{
	int64_t base = raw ? c->base_raw : c->base_mono;
	uint64_t frac = raw ? c->raw_frac : c->frac;

	return (struct line){.value = fx(base) + frac,
			     .mult = raw ? c->raw_mult : c->mult};
}

static inline void bump(uint64_t *counter)
{
	__atomic_store_n(counter, __atomic_load_n(counter, __ATOMIC_RELAXED) + 1,
			 __ATOMIC_RELAXED);
}

/* sampling.c */
int uclock__kernel_ns(struct uclock_tk *tk, clockid_t clock, int64_t *ns);
int64_t uclock__call_ns(const struct uclock_tk *tk);
int uclock__cheap_calls(const struct uclock_tk *tk);
int uclock__bracket_tries(const struct uclock_tk *tk);
int uclock__sample(struct uclock_tk *tk, clockid_t clock, uint64_t rate,
		   struct tk_sample *out);
int uclock__measure_offsets(struct uclock_tk *tk, struct tk_offsets *off);
int uclock__lean_offsets(struct uclock_tk *tk, const struct tk_sample *sm,
			 struct tk_offsets *off);
void uclock__take_offsets(struct uclock_tk *tk, const struct tk_offsets *off);

/* rate.c */
uint64_t uclock__rate_between(const struct tk_sample *a,
			      const struct tk_sample *b, uint64_t mask);
void uclock__history_start(struct tk_history *h, const struct tk_sample *first);
void uclock__history_add(struct tk_history *h, const struct tk_sample *s);
uint64_t uclock__follow_rate(struct tk_history *h, const struct tk_sample *prev,
			     const struct tk_sample *now, uint64_t est, uint64_t mask);

/* steering.c */
void uclock__settle(struct uclock_tk *tk, int steady, int64_t mono_err, int64_t raw_err);
void uclock__split_bases(struct uclock__copy *c);
/* 0 published, RESAMPLE, or -1. */
int uclock__steer(struct uclock_tk *tk, const struct uclock__copy *cur,
		  const struct tk_sample *sm_in, const struct tk_sample *sr_in, int good);

/* warmup.c */
void uclock__floors_at(const struct uclock__copy *c, uint64_t at,
		       struct uclock__copy *next);
void uclock__enter_warmup(struct uclock_tk *tk, const struct uclock__copy *cur,
			  const struct tk_sample *sm, const struct tk_sample *sr,
			  int keep_floor);
int uclock__warm_step(struct uclock_tk *tk, const struct uclock__copy *cur,
		      const struct tk_sample *sm, const struct tk_sample *sr);
const char *uclock__discontinuity(struct uclock_tk *tk,
				  const struct tk_sample *sm,
				  const struct tk_sample *sr, int *keep_floor, int *counter);
int uclock__counter_unstable(struct uclock_tk *tk, int64_t when);

/* timekeeper.c */
void uclock__flip(struct uclock_tk *tk);
/* The clock jumped (see uclock__bounds_at()): counted here and in the page. */
void uclock__tk_disrupted(struct uclock_tk *tk);
/* The lock alone, no owner noted (see uclock__tk_take()). */
int uclock__take_lock(struct uclock_tk *tk);

#endif
