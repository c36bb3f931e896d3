/*
 * The timekeeper: the writer that keeps the counter-to-time lines steered
 * to the kernel's clocks.  Each update samples the kernel's MONOTONIC and
 * MONOTONIC_RAW bracketed by two counter reads and measures its offsets
 * (sampling.c), follows the kernel's rate (rate.c) and publishes new lines
 * anchored at the current counter value (steering.c); at a discontinuity
 * it goes back to warm-up instead (warmup.c).  Readers drive it from their
 * slow path (slow_read.c).
 *
 * This file: the update, the lock it runs under (taken with a CAS, never
 * waited on), publishing (stage, then flip, in the page and in the backup
 * a fork() child restores from), and what a fork() child keeps of the
 * writer.
 */
#include <stdio.h>
#include <string.h>

#include "timekeeper_internal.h"

#define TARGET_MARGIN_NS 20        /* converge this far below a target page */
#define STEADY_MAX_NS 64000000LL /* the interval grows up to this (uclockd's: its own) */

/*
 * Send readers to the staged copy.  A process's own page is wiped in a
 * child made by fork() or clone() (see clock.c): the backup, in ordinary
 * memory, keeps what readers were last sent to, itself a latch, so that a
 * child has a complete copy whenever it was made.
 */
void uclock__flip(struct uclock_tk *tk)
{
	uclock__copy_flip(tk->page);
	if (tk->backup) {
		struct uclock__copy c;

		uclock__copy_load(tk->page, &c);
		uclock__copy_stage(tk->backup, &c);
		uclock__copy_flip(tk->backup);
	}
}

static void publish_now(struct uclock_tk *tk, const struct uclock__copy *next)
{
	uclock__copy_stage(tk->page, next);
	uclock__flip(tk);
}

/* A copy made elsewhere (a mirror of the shared page).  Caller holds the
 * lock. */
void uclock__tk_publish(struct uclock_tk *tk, const struct uclock__copy *next)
{
	publish_now(tk, next);
}

/*
 * A bracket much wider than usual (the writer was interrupted: a signal
 * handler, an interrupt, another thread on its CPU) says little about where
 * the kernel read its counter.  The usual width is the best seen lately;
 * it drifts up slowly when all samples get wider.
 */
static int calm(uint64_t *typical, uint64_t half)
{
	if (*typical == 0 || half < *typical)
		*typical = half;
	else
		*typical += *typical / 64 + 1;
	return half <= 2 * *typical + 8;
}

/*
 * Samples from another page instead of the kernel: exact (no bracket), and
 * a margin below it, so that this timekeeper's lines converge just under
 * those of the page it is about to hand its readers over to.
 */
static int target_samples(struct uclock_tk *tk, const struct uclock__page *target,
			  struct tk_sample *sm, struct tk_sample *sr,
			  struct tk_offsets *off)
{
	struct uclock__copy c;
	uint64_t now;

	if (!uclock__shared_usable(target, &c, &now, tk->ops.counter, tk->ops.ctx, NULL))
		return -1;
	uint64_t delta = now - c.cycle_last;
	*sm = (struct tk_sample){.tick = now, .c0 = now, .half = 0,
				 .ns = uclock__copy_value(&c, SLOT_MONO, delta) - TARGET_MARGIN_NS};
	*sr = (struct tk_sample){.tick = now, .c0 = now, .half = 0,
				 .ns = uclock__copy_value(&c, SLOT_RAW, delta) - TARGET_MARGIN_NS};
	off->real = c.base_real - c.base_mono;
	off->boot = c.base_boot - c.base_mono;
	off->tai = c.base_tai - c.base_real;
	return 0;
}

static int update_once(struct uclock_tk *tk, int last_try)
{
	struct uclock__copy cur;
	struct tk_sample sm, sr;
	struct tk_offsets off;
	int keep_floor, counter;

	uclock__copy_load(tk->page, &cur);
	if (cur.mode == UCLOCK_MODE_KERNEL)
		return 0;
	const struct uclock__page *target = __atomic_load_n(&tk->target, __ATOMIC_ACQUIRE);
	int good = 1;

	if (target && target_samples(tk, target, &sm, &sr, &off) != 0) {
		/* The page to converge to went stale: back to the kernel. */
		__atomic_store_n(&tk->target, NULL, __ATOMIC_RELEASE);
		target = NULL;
	}
	/* Offsets first, exactly, while warming up (the samples are then
	 * fresh when the lines are set); then from the samples, after them,
	 * in a few readings (see uclock__lean_offsets()). */
	if (!target) {
		int lean = tk->have_off && tk->rate && cur.mode == UCLOCK_MODE_COUNTER;

		if ((!lean && uclock__measure_offsets(tk, &off)) ||
		    uclock__sample(tk, CLOCK_MONOTONIC, tk->rate, &sm) ||
		    uclock__sample(tk, CLOCK_MONOTONIC_RAW, tk->raw_rate, &sr) ||
		    (lean && uclock__lean_offsets(tk, &sm, &off)))
			return -1;
		good = calm(&tk->typical_half[0], sm.half) &
		       calm(&tk->typical_half[1], sr.half);
		/* Expensive kernel readings are not taken again: their brackets
		 * are wide anyway, and an update must stay a few calls. */
		if (!good && !last_try && uclock__cheap_calls(tk))
			return RESAMPLE;
	}
	/* BOOTTIME moved on without MONOTONIC: the interval held a suspend,
	 * and says nothing about the rate. */
	int suspended = tk->have_off && off.boot > tk->off.boot;

	if (suspended)
		uclock__tk_disrupted(tk);
	uclock__take_offsets(tk, &off);
	if (cur.mode != UCLOCK_MODE_COUNTER)
		return good || !uclock__cheap_calls(tk)
			       ? uclock__warm_step(tk, &cur, &sm, &sr) : -1;

	if (uclock__discontinuity(tk, &sm, &sr, &keep_floor, &counter)) {
		bump(&tk->discontinuities);
		if (!suspended)
			uclock__tk_disrupted(tk);
		if (counter && uclock__counter_unstable(tk, sm.ns)) {
			char why[160];

			snprintf(why, sizeof(why), "the " UCLOCK__COUNTER_TEXT " jumped against the kernel's clock %d "
				 "times in %lld ms (out of step across CPUs, or unstable): "
				 "passing through to the kernel", JUMPS_TRUSTED,
				 (long long)(sm.ns - tk->jumps[JUMPS_TRUSTED - 1]) / 1000000);
			uclock__tk_give_up(tk, why);
			return 0;
		}
		uclock__enter_warmup(tk, &cur, &sm, &sr, keep_floor);
		return 0;
	}
	if (suspended) {
		uclock__history_start(&tk->mono_hist, &sm);
		uclock__history_start(&tk->raw_hist, &sr);
	} else if (good) {
		tk->rate = uclock__follow_rate(&tk->mono_hist, &tk->prev_mono, &sm, tk->rate,
					       tk->ops.mask);
		tk->raw_rate = uclock__follow_rate(&tk->raw_hist, &tk->prev_raw, &sr,
						   tk->raw_rate, tk->ops.mask);
	}
	return uclock__steer(tk, &cur, &sm, &sr, good);
}

/*
 * An update, timed: its cost sets the interval where kernel readings are
 * expensive (see interval(), steering.c), and is reported.
 */
int uclock__tk_update(struct uclock_tk *tk)
{
	uint64_t t0 = tk->ops.counter(tk->ops.ctx);
	int rc = RESAMPLE;

	for (int attempt = 0; attempt < 4 && rc == RESAMPLE; attempt++)
		rc = update_once(tk, attempt == 3);
	uint64_t ticks = (tk->ops.counter(tk->ops.ctx) - t0) & tk->ops.mask;
	if (tk->rate && ticks <= tk->ops.mask >> 1) {
		int64_t ns = fx_to_ns((i128)ticks * tk->rate), was = tk->update_ns;

		__atomic_store_n(&tk->update_ns, was ? (7 * was + ns) / 8 : ns,
				 __ATOMIC_RELAXED);
		__atomic_store_n(&tk->update_ns_total,
				 __atomic_load_n(&tk->update_ns_total, __ATOMIC_RELAXED) +
					 (uint64_t)ns,
				 __ATOMIC_RELAXED);
	}
	return rc == 0 ? 0 : -1;
}

int uclock__take_lock(struct uclock_tk *tk)
{
	int expected = 0;

	return __atomic_compare_exchange_n(&tk->lock, &expected, 1, 0,
					   __ATOMIC_ACQUIRE, __ATOMIC_RELAXED);
}

/* The update lock, for callers outside: 1 if taken.  Never waits. */
void uclock__tk_disrupted(struct uclock_tk *tk)
{
	bump(&tk->disruptions);
	/* uclockd's thread that reads the time service adds to it too. */
	__atomic_fetch_add(&tk->page->bounds.disruptions, 1, __ATOMIC_RELAXED);
}

int uclock__tk_take(struct uclock_tk *tk)
{
	/* Look before the CAS: readers arriving during an update do not
	 * all write the lock's cache line. */
	if (__atomic_load_n(&tk->lock, __ATOMIC_RELAXED) || !uclock__take_lock(tk))
		return 0;
	tk->owner = pthread_self();
	return 1;
}

void uclock__tk_give(struct uclock_tk *tk)
{
	__atomic_store_n(&tk->lock, 0, __ATOMIC_RELEASE);
}

/* 1 if this call ran an update, 0 if another is running. */
int uclock__tk_try_update(struct uclock_tk *tk)
{
	if (!uclock__tk_take(tk))
		return 0;
	uclock__tk_update(tk);
	uclock__tk_give(tk);
	return 1;
}

void uclock__tk_init(struct uclock_tk *tk, struct uclock__page *page,
		     const struct uclock_tk_ops *ops, int64_t interval_ns)
{
	memset(tk, 0, sizeof(*tk));
	tk->page = page;
	tk->ops = *ops;
	tk->interval_ns = interval_ns;
	tk->steady_ns = interval_ns;
	tk->steady_max_ns = STEADY_MAX_NS;
	tk->span_ns = interval_ns;
	page->magic = UCLOCK_PAGE_MAGIC;
	page->version = UCLOCK_PAGE_VERSION;
	page->size = sizeof(*page);
}

/*
 * The kernel's REALTIME was set: take its new offsets, keeping the lines
 * as they are, so that readers still on a copy of the old ones (until its
 * keep) are never ahead of the new copy.  Caller holds the lock.
 */
int uclock__tk_update_offsets(struct uclock_tk *tk)
{
	struct uclock__copy c;
	struct tk_offsets off;

	uclock__copy_load(tk->page, &c);
	if (c.mode != UCLOCK_MODE_COUNTER)
		return uclock__tk_update(tk);
	if (uclock__measure_offsets(tk, &off) != 0)
		return -1;
	uclock__take_offsets(tk, &off);
	c.base_real = c.base_mono + off.real;
	c.base_tai = c.base_real + off.tai;
	uclock__split_bases(&c);
	publish_now(tk, &c);
	return 0;
}

void uclock__tk_set_kernel_mode(struct uclock_tk *tk)
{
	struct uclock__copy next;

	memset(&next, 0, sizeof(next));
	next.mode = UCLOCK_MODE_KERNEL;
	next.floor_mono = INT64_MIN;
	next.floor_raw = INT64_MIN;
	publish_now(tk, &next);
}

/*
 * In a child: an update interrupted by fork is lost (unless this very
 * thread was doing it, deeper in its own stack), and the child may live in
 * another time namespace, so its first read checks against the kernel.
 */
void uclock__tk_after_fork(struct uclock_tk *tk)
{
	struct uclock__copy c;

	if (__atomic_load_n(&tk->lock, __ATOMIC_RELAXED)) {
		if (pthread_equal(tk->owner, pthread_self()))
			return;
		__atomic_store_n(&tk->lock, 0, __ATOMIC_RELAXED);
	}
	uclock__copy_load(tk->page, &c);
	if (c.mode != UCLOCK_MODE_COUNTER)
		return;
	c.limit = 0;
	c.flags |= UCLOCK__CHECK;
	publish_now(tk, &c);
}
