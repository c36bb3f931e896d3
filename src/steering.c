/*
 * The lines: from the kernel's samples, the next MONOTONIC and
 * MONOTONIC_RAW lines anchored at the current counter value, the copy
 * readers get of them, and how long they are to serve (the interval).
 *
 * In steady state a line is continuous at the anchor and its rate is chosen
 * so that the error seen now is gone by the next update: MONOTONIC never
 * steps.  A new line never starts below what the old one can have handed
 * out (its floor), nor below lines already shown to readers (see
 * line_next() and uclock__steer()).  Writer state, under the lock.
 */
#include <string.h>

#include "timekeeper_internal.h"

#define WINDOW_NS 5000           /* 'now' to publish, else redo */
#define STEP_NS 20000            /* behind the kernel by more: step */
#define SAMPLE_AGE_NS 50000      /* sample older than this at 'now': again
				    (or than a few kernel reads, if slower) */
#define UPDATE_SHARE 1000        /* expensive kernel: updates 0.1 % of the time */
#define STEADY_ERR_NS 10         /* updates this close: the interval may grow */

static i128 max_i128(i128 a, i128 b)
{
	return a > b ? a : b;
}

static uint64_t ns_to_ticks(int64_t ns, uint64_t rate)
{
	return (uint64_t)(((u128)ns << FRAC_BITS) / rate);
}

/*
 * The update interval: as configured, but where kernel readings are
 * expensive, long enough that updates take at most 1/UPDATE_SHARE of a
 * continuously reading thread's time (up to a second): a longer interval
 * costs accuracy only by the rate's error over it.  An interval asked for
 * (UCLOCK_INTERVAL_US, uclockd's period) is kept as it is.
 */
static int64_t interval(const struct uclock_tk *tk)
{
	int64_t budget = __atomic_load_n(&tk->update_ns, __ATOMIC_RELAXED) * UPDATE_SHARE;
	int64_t steady = __atomic_load_n(&tk->steady_ns, __ATOMIC_RELAXED);

	if (tk->interval_fixed)
		return tk->interval_ns;
	if (uclock__cheap_calls(tk) || budget < tk->interval_ns)
		budget = tk->interval_ns;
	if (budget > NSEC_PER_SEC)
		budget = NSEC_PER_SEC;
	return steady > budget ? steady : budget;
}

int64_t uclock__tk_interval(const struct uclock_tk *tk)
{
	return interval(tk);
}

/*
 * A rate that holds needs no update every millisecond: the error a longer
 * span adds is the rate's error over it.  After an update that continued
 * the lines and found them within STEADY_ERR_NS of the kernel, the
 * interval may double (up to STEADY_MAX_NS); anything else (an anchor, a
 * doubtful sample, a larger error: a frequency change, a step) takes it
 * back to the one configured.  A longer interval delays noticing a new
 * frequency (a migration) by as much.
 */
void uclock__settle(struct uclock_tk *tk, int steady, int64_t mono_err, int64_t raw_err)
{
	int64_t next = tk->interval_ns;

	if (steady && mono_err <= STEADY_ERR_NS && mono_err >= -STEADY_ERR_NS &&
	    raw_err <= STEADY_ERR_NS && raw_err >= -STEADY_ERR_NS &&
	    !__atomic_load_n(&tk->target, __ATOMIC_RELAXED)) {
		next = 2 * __atomic_load_n(&tk->steady_ns, __ATOMIC_RELAXED);
		if (next > tk->steady_max_ns)
			next = tk->steady_max_ns;
		if (next < tk->interval_ns)
			next = tk->interval_ns;
	}
	__atomic_store_n(&tk->steady_ns, next, __ATOMIC_RELAXED);
}

/*
 * The next line from 'now'.
 *   CONTINUE: continuous with the old line (steady state).
 *   KERNEL: at the kernel's value, for a stale line no reader may have
 *     handed kernel answers against (see uclock__steer()).
 *   UPPER: at an upper bound of the kernel's value, so that no kernel
 *     answer handed out meanwhile is above the line: ahead by about half a
 *     bracket (warm-up, discontinuities, stale lines with fallbacks).
 * Never below 'floor' (the highest value the old line can have handed
 * out) nor below a line already shown to readers ('shown').  The rate is
 * chosen to remove the error from the kernel over the next span.
 */
enum anchor { CONTINUE, KERNEL, UPPER };

struct next_line {
	enum anchor anchor;
	const struct line *old;
	int64_t since_anchor;    /* now - old anchor, ticks */
	const struct tk_sample *s;
	uint64_t rate;
	i128 floor;
	const struct line *shown; /* NULL, or a line readers saw, at 'now' */
	uint64_t lead;           /* ticks from 'now' readers may stay on 'old' */
	int64_t span_ns;
	int good;                /* sample from a calm bracket: steer by it */
};

static struct line line_next(const struct uclock_tk *tk,
			     const struct next_line *in, uint64_t now,
			     int64_t *err_ns, int64_t *corr_ppb)
{
	uint64_t mask = tk->ops.mask;
	i128 rate = (i128)in->rate;
	i128 kernel = fx(in->s->ns) +
		      tick_diff(now, in->s->tick, mask) * rate;
	i128 v;

	if (in->anchor == CONTINUE) {
		v = line_at(in->old, in->since_anchor);
		if (v < kernel - fx(STEP_NS))
			v = kernel;
	} else {
		v = in->anchor == KERNEL ? kernel
					 : fx(in->s->ns + 2) +
						   tick_diff(now, in->s->c0, mask) * rate;
		v = max_i128(v, in->floor);
		if (in->shown)
			v = max_i128(v, in->shown->value);
	}

	i128 err = v - kernel;
	i128 span = (i128)ns_to_ticks(in->span_ns, in->rate);
	/* A continued line is not steered by a doubtful sample: the rate
	 * carries it to the next update. */
	i128 corr = in->anchor == CONTINUE && !in->good ? 0 : err / (span > 0 ? span : 1);
	if (corr > rate / 8)
		corr = rate / 8;
	if (corr < -rate / 8)
		corr = -rate / 8;

	struct line next = {.value = v, .mult = (uint64_t)(rate - corr)};
	/* Slowing down: readers still on the old line (until the flip, or
	 * the old copy's keep) must not be ahead of the new one. */
	if (in->anchor == CONTINUE && next.mult < in->old->mult)
		next.value += (i128)(in->old->mult - next.mult) * (i128)in->lead;
	*err_ns = fx_to_ns(err);
	*corr_ppb = (int64_t)(-corr * 1000000000 / rate);
	return next;
}

static void set_line(int64_t *base, uint64_t *frac, uint64_t *mult,
		     const struct line *l)
{
	*base = fx_to_ns(l->value);
	*frac = (uint64_t)(l->value - fx(*base));
	*mult = l->mult;
}

/* The bases as seconds and nanoseconds, indexed by slot. */
void uclock__split_bases(struct uclock__copy *c)
{
	const int64_t base[] = {[SLOT_REAL] = c->base_real, [SLOT_MONO] = c->base_mono,
				[SLOT_RAW] = c->base_raw, [SLOT_BOOT] = c->base_boot,
				[SLOT_TAI] = c->base_tai};
	struct timespec ts;

	for (int i = 0; i < SLOT_NONE; i++) {
		uclock__ns_to_ts(base[i], &ts);
		c->sec[i] = ts.tv_sec;
		c->nsec[i] = (uint32_t)ts.tv_nsec;
	}
}

/*
 * The fast readers evaluate the line in 64 bits (uclock__line_near): below
 * the limit, delta * mult + frac must not overflow, for either slope.
 * Spans of seconds come near that; past it, readers take the slow path.
 */
static uint64_t near_limit(uint64_t limit, const struct line *mono,
			   const struct line *raw)
{
	uint64_t mult = mono->mult > raw->mult ? mono->mult : raw->mult;
	uint64_t cap = (UINT64_MAX - UINT32_MAX) / (mult ? mult : 1);

	return limit < cap ? limit : cap;
}

static struct uclock__copy build_copy(const struct uclock_tk *tk, uint64_t now,
				      const struct line *mono,
				      const struct line *raw, int64_t span_ns)
{
	struct uclock__copy c;
	uint64_t limit = ns_to_ticks(span_ns, mono->mult);

	memset(&c, 0, sizeof(c));
	c.cycle_last = now;
	c.mask = tk->ops.mask;
	/* The inline readers do not mask: a narrower counter is read by the
	 * slow path only, which uses hard / 2. */
	c.limit = tk->ops.mask == UINT64_MAX ? near_limit(limit, mono, raw) : 0;
	c.hard = 2 * limit;
	c.mode = UCLOCK_MODE_COUNTER;
	set_line(&c.base_mono, &c.frac, &c.mult, mono);
	set_line(&c.base_raw, &c.raw_frac, &c.raw_mult, raw);
	c.base_real = c.base_mono + tk->off.real;
	c.base_boot = c.base_mono + tk->off.boot;
	c.base_tai = c.base_real + tk->off.tai;
	c.floor_mono = fx_to_ns(line_at(mono, (int64_t)c.hard));
	c.floor_raw = fx_to_ns(line_at(raw, (int64_t)c.hard));
	/* A writer that lets readers of a shared page keep a copy of these
	 * lines (uclockd; see attach.c) updates half a span on, and lines it
	 * makes before 'keep' are never below these until then (see
	 * line_next()): a copy may serve a sixteenth of a span longer, so
	 * that a writer a little late leaves no gap. */
	int64_t keep_ns = span_ns / 2 + span_ns / 16;
	c.keep = ns_to_ticks(tk->keep_ns < keep_ns ? tk->keep_ns : keep_ns, mono->mult);
	if (c.keep > c.limit)
		c.keep = c.limit;
	c.rate = tk->rate;
	c.raw_rate = tk->raw_rate;
	uclock__split_bases(&c);
	return c;
}

static void writer_point(struct uclock_tk *tk)
{
	if (tk->ops.point)
		tk->ops.point(tk->ops.ctx);
}

/* How far a line is from the kernel's sample, at 'now' (ns). */
static int64_t drift(const struct uclock_tk *tk, const struct line *l, int64_t age,
		     const struct tk_sample *s, uint64_t rate, uint64_t now)
{
	i128 kernel = fx(s->ns) + (i128)tick_diff(now, s->tick, tk->ops.mask) * (i128)rate;

	return fx_to_ns(line_at(l, age) - kernel);
}

/* A line shown to readers at its anchor, moved to 'now'. */
static struct line moved(const struct line *l, uint64_t anchor, uint64_t now,
			 uint64_t mask)
{
	return (struct line){line_at(l, tick_diff(now, anchor, mask)), l->mult};
}

static void published(struct uclock_tk *tk, const struct tk_sample *sm,
		      const struct tk_sample *sr, int64_t span_ns, int64_t mono_err,
		      int64_t raw_err, int64_t corr)
{
	__atomic_store_n(&tk->staged_seq, 0, __ATOMIC_SEQ_CST);
	__atomic_store_n(&tk->fallback_seen, 0, __ATOMIC_SEQ_CST);
	__atomic_store_n(&tk->mono_err_ns, mono_err, __ATOMIC_RELAXED);
	__atomic_store_n(&tk->raw_err_ns, raw_err, __ATOMIC_RELAXED);
	__atomic_store_n(&tk->rate_corr_ppb, corr, __ATOMIC_RELAXED);
	bump(&tk->updates);
	/* Converging to a target page: how many updates in a row were close. */
	if (__atomic_load_n(&tk->target, __ATOMIC_RELAXED) && mono_err <= 3 &&
	    mono_err >= -3 && raw_err <= 3 && raw_err >= -3)
		__atomic_store_n(&tk->target_close,
				 __atomic_load_n(&tk->target_close, __ATOMIC_RELAXED) + 1,
				 __ATOMIC_RELAXED);
	else
		__atomic_store_n(&tk->target_close, 0, __ATOMIC_RELAXED);
	tk->span_ns = span_ns;
	tk->prev_mono = *sm;
	tk->prev_raw = *sr;
	tk->have_prev = 1;
	tk->have_warm = 0;
}

/*
 * Compute and publish new lines.
 *
 * Regular: continuous with the old lines; the flip must follow the counter
 * value they are anchored at within the window (else again), so that
 * readers still on the old lines are never ahead of the new ones.
 *
 * Stale (the old lines are past 'hard'): readers meanwhile took the
 * kernel's answer while this update ran, and the new lines must start
 * above anything they handed out.  When no reader did, they start at the
 * kernel itself.  To know, readers and writer shake hands (Dekker): a
 * reader about to take the kernel's answer first sets fallback_seen, then
 * looks at staged_seq; the writer first sets staged_seq (its new copy is
 * complete), then looks at fallback_seen.  One of them sees the other: the
 * writer re-anchors at an upper bound of the kernel, or the reader uses the
 * staged lines instead of the kernel.  Once shown, the staged lines are
 * published, never dropped, and what follows them starts above them.
 *
 * Warm-up and discontinuities: kernel answers were handed out: upper bound.
 */
int uclock__steer(struct uclock_tk *tk, const struct uclock__copy *cur,
		  const struct tk_sample *sm_in, const struct tk_sample *sr_in, int good)
{
	struct tk_sample sm_now = *sm_in, sr_now = *sr_in;
	const struct tk_sample *sm = &sm_now, *sr = &sr_now;
	uint64_t mask = tk->ops.mask;
	int had_line = cur->mode == UCLOCK_MODE_COUNTER;
	struct line old_mono = copy_line(cur, 0), old_raw = copy_line(cur, 1);
	struct line shown_mono = {0, 0}, shown_raw = {0, 0};
	uint64_t shown_at = 0;
	int shown = 0;

	int64_t age_ns = 8 * uclock__bracket_tries(tk) * uclock__call_ns(tk);

	tk->window_ticks = ns_to_ticks(WINDOW_NS, tk->rate);
	tk->sample_age_ticks = ns_to_ticks(age_ns > SAMPLE_AGE_NS ? age_ns : SAMPLE_AGE_NS,
					   tk->rate);
	for (int attempt = 0; attempt < 8 || shown; attempt++) {
		uint64_t now = tk->ops.counter(tk->ops.ctx);
		uint64_t age = (now - cur->cycle_last) & mask;

		/* The writer was held up since it sampled the kernel: do not
		 * extrapolate the samples that far (the rate's error would
		 * grow with it, and an upper bound of the kernel now could fall
		 * below answers readers took meanwhile): take new ones; here,
		 * once lines were shown, which must be published. */
		if (tick_diff(now, sm->tick, mask) > (int64_t)tk->sample_age_ticks) {
			if (!shown)
				return RESAMPLE;
			if (uclock__sample(tk, CLOCK_MONOTONIC, tk->rate, &sm_now) == 0 &&
			    uclock__sample(tk, CLOCK_MONOTONIC_RAW, tk->raw_rate, &sr_now) == 0)
				continue;
		}
		int regular = had_line && age <= mask >> 1 &&
			      age + tk->window_ticks <= cur->hard;

		/* Close to 'hard': readers may still extrapolate the old line
		 * up to there.  Let that pass rather than jump over it. */
		if (had_line && !regular && age <= cur->hard) {
			while (((tk->ops.counter(tk->ops.ctx) - cur->cycle_last) &
				mask) <= cur->hard)
				;
			continue;
		}

		enum anchor anchor = regular ? CONTINUE : UPPER;
		if (!regular && had_line &&
		    !__atomic_load_n(&tk->fallback_seen, __ATOMIC_SEQ_CST))
			anchor = KERNEL;
		/* The interval for these lines: longer while they hold, back to
		 * the one configured when they do not (see uclock__settle()). */
		if (attempt == 0)
			uclock__settle(tk, anchor == CONTINUE && good,
				       drift(tk, &old_mono, (int64_t)age, sm, tk->rate, now),
				       drift(tk, &old_raw, (int64_t)age, sr, tk->raw_rate, now));
		/* After an anchor above the kernel the next updates come sooner,
		 * so that the lead is steered away quickly; then the span
		 * doubles back to the interval.  An anchor at the kernel itself
		 * has no lead: its span doubles too, else a reader every few
		 * hundred microseconds would find each short span stale and
		 * make every read an update. */
		int64_t span = anchor == UPPER ? interval(tk) / 8 : tk->span_ns * 2;
		if (span < 8 * WINDOW_NS) /* room for regular updates */
			span = 8 * WINDOW_NS;
		if (span > interval(tk))
			span = interval(tk);

		struct line at_mono = {0, 0}, at_raw = {0, 0};
		if (shown) {
			at_mono = moved(&shown_mono, shown_at, now, mask);
			at_raw = moved(&shown_raw, shown_at, now, mask);
		}
		uint64_t lead = had_line && cur->keep > age + tk->window_ticks
					? cur->keep - age : tk->window_ticks;
		struct next_line m = {anchor, &old_mono, (int64_t)age, sm, tk->rate,
				      fx(cur->floor_mono), shown ? &at_mono : NULL, lead,
				      span, good};
		struct next_line r = {anchor, &old_raw, (int64_t)age, sr, tk->raw_rate,
				      fx(cur->floor_raw), shown ? &at_raw : NULL, lead,
				      span, good};
		int64_t mono_err, raw_err, corr, raw_corr;
		struct line mono = line_next(tk, &m, now, &mono_err, &corr);
		struct line raw = line_next(tk, &r, now, &raw_err, &raw_corr);
		struct uclock__copy next = build_copy(tk, now, &mono, &raw, span);
		next.knots = uclock__knot_add(tk->page, cur, &next);
		next.mono_err_ns = mono_err;
		next.raw_err_ns = raw_err;
		next.rate_corr_ppb = corr;
		next.updates = tk->updates + 1;
		next.discontinuities = tk->discontinuities;

		uclock__copy_stage(tk->page, &next);
		writer_point(tk);
		if (anchor == KERNEL) {
			uint32_t next_seq = __atomic_load_n(&tk->page->seq, __ATOMIC_RELAXED) +
					    UCLOCK__SEQ_STEP;

			__atomic_store_n(&tk->staged_seq, next_seq, __ATOMIC_SEQ_CST);
			writer_point(tk);
			shown = 1;
			shown_mono = mono;
			shown_raw = raw;
			shown_at = now;
			if (__atomic_load_n(&tk->fallback_seen, __ATOMIC_SEQ_CST)) {
				/* A reader may have handed out the kernel's time. */
				__atomic_store_n(&tk->staged_seq, 0, __ATOMIC_SEQ_CST);
				continue;
			}
			/* Readers who came after use these lines: no window. */
		} else if (((tk->ops.counter(tk->ops.ctx) - now) & mask) > tk->window_ticks) {
			continue;
		}
		writer_point(tk);
		uclock__flip(tk);
		published(tk, sm, sr, span, mono_err, raw_err, corr);
		return 0;
	}
	return -1;
}
