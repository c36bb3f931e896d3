/*
 * Where the lines break.  Discontinuities (counter reset, frequency change,
 * suspend with the counter running, the kernel's clock jumping) send the
 * timekeeper back to warm-up, where readers take the kernel's answer raised
 * to a floor: the highest value the old line could have handed out.
 * Warm-up ends when the rate is calibrated and the kernel has passed the
 * floors, so that the first line starts at the kernel, not ahead of it.
 * Hand-overs (leaving a shared page, a new uclockd taking one over, a
 * writer stopping, a counter given up on) leave floors the same way.
 *
 * No clock goes back across any of these unless the kernel's did (its
 * MONOTONIC moved back: a new timeline; its REALTIME set back).  Writer
 * state, under the lock.
 */
#include <stdio.h>
#include <string.h>

#include "timekeeper_internal.h"

#define RAW_TOLERANCE_PPM 1000   /* raw rate change that is a discontinuity */
#define MONO_TOLERANCE_PPM 10000 /* NTP slews at most 500 ppm */
#define WARM_NS 2000000LL
#define JUMP_BACK_NS 10000000LL  /* kernel clock moved back: new timeline */
#define END_MARGIN_NS 500        /* a line ended now: floors this far on */
#define BOUND_LEAD_NS 20000      /* floors at most this ahead of the lines' lead */
#define JUMPS_WINDOW_NS (10 * NSEC_PER_SEC) /* JUMPS_TRUSTED jumps within this:
					       not trusted */

/* Calibration takes an interval, at most WARM_NS: a long interval (a daemon
 * updating once a second) need not keep readers on the kernel that long. */
static int64_t warm_ns(const struct uclock_tk *tk)
{
	return tk->interval_ns < WARM_NS ? tk->interval_ns : WARM_NS;
}

/* |measured - expected| beyond ppm of the interval plus sampling noise. */
static int deviates(const struct tk_sample *a, const struct tk_sample *b,
		    uint64_t rate, uint64_t mask, int64_t ppm)
{
	int64_t dt = tick_diff(b->tick, a->tick, mask);
	i128 expected = ((i128)dt * rate) >> FRAC_BITS;
	i128 noise = ((i128)(a->half + b->half) * rate >> FRAC_BITS) + 100;
	i128 diff = (i128)(b->ns - a->ns) - expected;

	if (diff < 0)
		diff = -diff;
	return diff > expected * ppm / 1000000 + noise;
}

/* A line's value at 'at' ticks from its anchor, as floors for the next. */
void uclock__floors_at(const struct uclock__copy *c, uint64_t at,
		       struct uclock__copy *next)
{
	struct line mono = copy_line(c, 0), raw = copy_line(c, 1);

	next->floor_mono = fx_to_ns(line_at(&mono, (int64_t)at));
	next->floor_raw = fx_to_ns(line_at(&raw, (int64_t)at));
}

/*
 * The highest values the current line can have handed out.  Readers use it
 * only at counter values they have read, never past 'hard', and none after
 * the flip, which follows 'now' within 'window' ticks, or, in processes
 * that keep a copy of a shared page, after the copy's keep.  A counter
 * that went back tells nothing of when the last read was: then 'hard'
 * (bounded by the kernel: see bound_floors()).  Returns 1 if the counter
 * went back.
 */
static int line_floors(const struct uclock__copy *cur, uint64_t now, uint64_t window,
		       struct uclock__copy *next)
{
	int64_t age = tick_diff(now, cur->cycle_last, cur->mask);
	int64_t cap = (int64_t)cur->hard, until = age + (int64_t)window;

	if (until < (int64_t)cur->keep)
		until = (int64_t)cur->keep;
	if (age >= 0 && until < cap)
		cap = until;
	uclock__floors_at(cur, (uint64_t)cap, next);
	return age < 0;
}

/*
 * The counter went back (a reset, another CPU's counter behind): readers
 * went no further ahead of the kernel than the lines' lead over it (their
 * error at the last update) and a margin, whereas 'hard' is a whole span
 * ahead.  Bound the floors by the kernel's value now, from the samples
 * just taken.
 */
static void bound_floors(const struct uclock_tk *tk, const struct tk_sample *sm,
			 const struct tk_sample *sr, uint64_t now, struct uclock__copy *next)
{
	int64_t lead = __atomic_load_n(&tk->mono_err_ns, __ATOMIC_RELAXED);
	int64_t raw_lead = __atomic_load_n(&tk->raw_err_ns, __ATOMIC_RELAXED);
	int64_t mono = sm->ns + fx_to_ns((i128)tick_diff(now, sm->tick, tk->ops.mask) * tk->rate);
	int64_t raw = sr->ns + fx_to_ns((i128)tick_diff(now, sr->tick, tk->ops.mask) * tk->raw_rate);

	mono += (lead > 0 ? lead : 0) + BOUND_LEAD_NS;
	raw += (raw_lead > 0 ? raw_lead : 0) + BOUND_LEAD_NS;
	if (next->floor_mono > mono)
		next->floor_mono = mono;
	if (next->floor_raw > raw)
		next->floor_raw = raw;
}

/*
 * When warm-up can end: calibrated for warm_ns, and the kernel past both
 * floors.  Kept per clock, so that a reader in warm-up tells from the one
 * kernel reading it takes anyway whether to try an update.
 */
static void set_warm_deadline(struct uclock_tk *tk, const struct tk_sample *sm,
			      const struct tk_sample *sr, int64_t floor_mono,
			      int64_t floor_raw)
{
	int64_t mono = tk->warm_mono.ns + warm_ns(tk), raw_mono = INT64_MIN;

	if (floor_mono != INT64_MIN && floor_mono + 1 > mono)
		mono = floor_mono + 1;
	/* The raw floor, in MONOTONIC terms: they run together to ppm. */
	if (floor_raw != INT64_MIN)
		raw_mono = floor_raw + 1 - (sr->ns - sm->ns);
	if (raw_mono > mono)
		mono = raw_mono;
	int64_t due[SLOT_NONE] = {
		[SLOT_MONO] = mono,
		[SLOT_RAW] = mono + (sr->ns - sm->ns),
		[SLOT_REAL] = mono + tk->off.real,
		[SLOT_BOOT] = mono + tk->off.boot,
		[SLOT_TAI] = mono + tk->off.real + tk->off.tai,
	};
	for (int i = 0; i < SLOT_NONE; i++)
		__atomic_store_n(&tk->warm_due[i], due[i], __ATOMIC_RELAXED);
}

/*
 * Start (or restart) calibration; readers get the kernel's answer, raised
 * to the floors (unless the kernel's own clock went back: a new timeline).
 */
void uclock__enter_warmup(struct uclock_tk *tk, const struct uclock__copy *cur,
			  const struct tk_sample *sm, const struct tk_sample *sr,
			  int keep_floor)
{
	struct uclock__copy next = *cur;
	uint64_t mask = tk->ops.mask;

	next.mode = UCLOCK_MODE_WARMUP;
	next.limit = 0;
	if (!keep_floor) {
		next.floor_mono = INT64_MIN;
		next.floor_raw = INT64_MIN;
	}
	/* The flip must come within the window of 'now': else again, with a
	 * window twice as wide (a writer preempted again and again). */
	for (uint64_t window = tk->window_ticks;; window *= 2) {
		uint64_t now = tk->ops.counter(tk->ops.ctx);

		if (keep_floor && cur->mode == UCLOCK_MODE_COUNTER &&
		    line_floors(cur, now, window, &next))
			bound_floors(tk, sm, sr, now, &next);
		uclock__copy_stage(tk->page, &next);
		if (cur->mode != UCLOCK_MODE_COUNTER || window >= cur->hard ||
		    ((tk->ops.counter(tk->ops.ctx) - now) & mask) <= window)
			break;
	}
	uclock__flip(tk);
	tk->warm_mono = *sm;
	tk->warm_raw = *sr;
	tk->have_warm = 1;
	tk->have_prev = 0;
	tk->mono_hist.n = 0;
	tk->raw_hist.n = 0;
	set_warm_deadline(tk, sm, sr, next.floor_mono, next.floor_raw);
	uclock__settle(tk, 0, 0, 0);
	bump(&tk->warmups);
}

int uclock__warm_step(struct uclock_tk *tk, const struct uclock__copy *cur,
		      const struct tk_sample *sm, const struct tk_sample *sr)
{
	uint64_t mask = tk->ops.mask;

	if (!tk->have_warm) {
		uclock__enter_warmup(tk, cur, sm, sr, cur->mode == UCLOCK_MODE_WARMUP);
		return 0;
	}
	/* Calibrated long enough, and the kernel has passed the floors: a line
	 * anchored now starts at the kernel, not ahead of it. */
	if (sm->ns - tk->warm_mono.ns < warm_ns(tk) || sm->ns <= cur->floor_mono ||
	    sr->ns <= cur->floor_raw) {
		set_warm_deadline(tk, sm, sr, cur->floor_mono, cur->floor_raw);
		return 0;
	}

	uint64_t rate = uclock__rate_between(&tk->warm_mono, sm, mask);
	uint64_t raw_rate = uclock__rate_between(&tk->warm_raw, sr, mask);
	/* MONOTONIC may run off MONOTONIC_RAW by NTP's slew and the tick
	 * adjustment (10 %); more means the samples are not one timeline. */
	if (!rate || !raw_rate ||
	    (i128)rate * 10 > (i128)raw_rate * 11 ||
	    (i128)rate * 11 < (i128)raw_rate * 10) {
		uclock__enter_warmup(tk, cur, sm, sr, 1);
		return 0;
	}
	tk->rate = rate;
	tk->raw_rate = raw_rate;
	uclock__history_start(&tk->mono_hist, &tk->warm_mono);
	uclock__history_add(&tk->mono_hist, sm);
	uclock__history_start(&tk->raw_hist, &tk->warm_raw);
	uclock__history_add(&tk->raw_hist, sr);
	return uclock__steer(tk, cur, sm, sr, 1);
}

/* Why the new samples cannot continue the old lines, or NULL. */
const char *uclock__discontinuity(struct uclock_tk *tk,
				  const struct tk_sample *sm,
				  const struct tk_sample *sr, int *keep_floor, int *counter)
{
	uint64_t mask = tk->ops.mask;

	*keep_floor = 1;
	*counter = 1;
	if (!tk->have_prev)
		return "no previous sample";
	if (sm->ns < tk->prev_mono.ns - JUMP_BACK_NS) {
		*keep_floor = 0;
		return "kernel MONOTONIC moved back (time namespace, restore)";
	}
	if (tick_diff(sm->tick, tk->prev_mono.tick, mask) <= 0)
		return "counter went back (reset)";
	if (deviates(&tk->prev_raw, sr, tk->raw_rate, mask, RAW_TOLERANCE_PPM))
		return "counter rate changed (suspend, migration)";
	*counter = 0;
	if (deviates(&tk->prev_mono, sm, tk->rate, mask, MONO_TOLERANCE_PPM))
		return "kernel MONOTONIC rate changed";
	return NULL;
}

/*
 * The counter jumped against the kernel's clock again (noted at the
 * kernel's MONOTONIC 'when').  Once is a suspend, a migration, a restore;
 * JUMPS_TRUSTED times within JUMPS_WINDOW_NS only a counter out of step across
 * CPUs (the timekeeper's samples taken on one, then another) or an
 * unstable one explains.
 */
int uclock__counter_unstable(struct uclock_tk *tk, int64_t when)
{
	memmove(&tk->jumps[1], &tk->jumps[0], sizeof(tk->jumps) - sizeof(tk->jumps[0]));
	tk->jumps[0] = when;
	if (tk->njumps < JUMPS_TRUSTED)
		tk->njumps++;
	return tk->njumps == JUMPS_TRUSTED &&
	       when - tk->jumps[JUMPS_TRUSTED - 1] < JUMPS_WINDOW_NS;
}

/*
 * Stage 'next' with floors on c's lines where its readers can have
 * stopped using them, and flip: at the counter value now, plus a margin
 * for CPUs whose counters differ a little (at most at 'hard', where readers
 * stop extrapolating).
 *  UCLOCK_LEAVING: a process leaves a shared page.  Its own page holds no
 *    copy of c that a reader may still use (it left because its copy ran
 *    out), and its threads' readings of c are earlier than this (see
 *    attach.c).  A writer giving up on its page lets other processes'
 *    copies run out: floors at c's keep at least.
 *  UCLOCK_TAKING_OVER: a new writer on a page whose old lines readers may
 *    read until this flip, and other processes keep a copy of until c's
 *    keep: the flip must come within the margin of 'now' (else again, with
 *    a margin twice as wide).
 *  UCLOCK_ENDING: the writer ends c's lines now (its hard cut there).
 */
static void stage_floored(struct uclock_tk *tk, const struct uclock__copy *c,
			  enum uclock_floored how, struct uclock__copy *next)
{
	uint64_t margin = ((u128)END_MARGIN_NS << FRAC_BITS) / c->raw_mult;

	for (;; margin *= 2) {
		uint64_t now = tk->ops.counter(tk->ops.ctx);
		int64_t age = tick_diff(now, c->cycle_last, c->mask);
		uint64_t at = age > 0 ? (uint64_t)age : 0;

		/* Other processes may read their copy of c until its keep. */
		if ((how == UCLOCK_TAKING_OVER || tk->keep_ns) && at < c->keep)
			at = c->keep;
		at = at + margin < c->hard ? at + margin : c->hard;
		uclock__floors_at(c, at, next);
		if (how == UCLOCK_ENDING)
			next->hard = at;
		uclock__copy_stage(tk->page, next);
		if (how == UCLOCK_LEAVING || at == c->hard ||
		    ((tk->ops.counter(tk->ops.ctx) - now) & c->mask) <= margin / 2)
			return;
	}
}

/*
 * Take over from another page's lines ('from': the shared page a process
 * leaves, or the page a new uclockd finds): warm up again, with floors at
 * the highest values that page's readers can have handed out, so that no
 * clock goes back.  A counter copy: its lines where readers stop using
 * them (see stage_floored); a warm-up copy: the floors it carries; NULL or
 * anything else: none (a new timeline).  Caller holds the lock.
 */
void uclock__tk_adopt(struct uclock_tk *tk, const struct uclock__copy *from,
		      enum uclock_floored how)
{
	struct uclock__copy next;

	uclock__copy_load(tk->page, &next);
	next.mode = UCLOCK_MODE_WARMUP;
	next.limit = 0;
	next.keep = 0;
	next.floor_mono = INT64_MIN;
	next.floor_raw = INT64_MIN;
	if (from && (from->mode == UCLOCK_MODE_COUNTER || from->mode == UCLOCK_MODE_WARMUP)) {
		next.base_mono = from->base_mono;
		next.base_boot = from->base_boot;
		next.base_real = from->base_real;
		next.base_tai = from->base_tai;
	}
	if (from && from->mode == UCLOCK_MODE_WARMUP) {
		next.floor_mono = from->floor_mono;
		next.floor_raw = from->floor_raw;
	}
	if (from && from->mode == UCLOCK_MODE_COUNTER)
		stage_floored(tk, from, how, &next);
	else
		uclock__copy_stage(tk->page, &next);
	uclock__flip(tk);
	tk->have_warm = 0;
	tk->have_prev = 0;
	__atomic_store_n(&tk->target, NULL, __ATOMIC_RELEASE);
	for (int i = 0; i < SLOT_NONE; i++)
		__atomic_store_n(&tk->warm_due[i], INT64_MIN, __ATOMIC_RELAXED);
}

/*
 * A writer that stops (uclockd's clean exit): readers leave the page at
 * their next read (limit and keep 0), and its lines end now: 'hard' is cut
 * to this moment plus the margin, so that no reader goes on past it.
 * Caller holds the lock and has waited out the last copy's keep: no
 * process still reads its own copy of it.
 */
void uclock__tk_end(struct uclock_tk *tk)
{
	struct uclock__copy c, next;

	uclock__copy_load(tk->page, &c);
	next = c;
	next.limit = 0;
	next.keep = 0;
	if (c.mode == UCLOCK_MODE_COUNTER)
		stage_floored(tk, &c, UCLOCK_ENDING, &next);
	else
		uclock__copy_stage(tk->page, &next);
	uclock__flip(tk);
}

/*
 * Stop reading the counter for good: readers take the kernel's answer,
 * raised to floors at the lines' value now (no clock goes back), and
 * uclock_stat() says why.  Caller holds the lock.
 */
void uclock__tk_give_up(struct uclock_tk *tk, const char *why)
{
	struct uclock__copy cur, next;

	uclock__copy_load(tk->page, &cur);
	next = cur;
	next.mode = UCLOCK_MODE_KERNEL;
	next.limit = 0;
	next.keep = 0;
	if (cur.mode == UCLOCK_MODE_COUNTER)
		stage_floored(tk, &cur, UCLOCK_LEAVING, &next);
	else
		uclock__copy_stage(tk->page, &next);
	uclock__flip(tk);
	snprintf(tk->gave_up_why, sizeof(tk->gave_up_why), "%s", why);
	__atomic_store_n(&tk->gave_up, 1, __ATOMIC_RELEASE);
}

const char *uclock__tk_gave_up(const struct uclock_tk *tk)
{
	return __atomic_load_n(&tk->gave_up, __ATOMIC_ACQUIRE) ? tk->gave_up_why : NULL;
}
