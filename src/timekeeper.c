/*
 * The timekeeper: the writer that keeps the counter-to-time lines steered
 * to the kernel's clocks, and the slow read path that drives it.
 *
 * Each update samples the kernel's MONOTONIC and MONOTONIC_RAW bracketed by
 * two counter reads (tightest bracket kept), measures the kernel's offsets
 * (REALTIME, BOOTTIME, TAI), and publishes new lines anchored at the current
 * counter value.  In steady state a line is continuous at the anchor and its
 * rate is chosen so that the error seen now is gone by the next update:
 * MONOTONIC never steps.  Discontinuities (counter reset, frequency change,
 * suspend with the counter running, the kernel's clock jumping) send the
 * timekeeper back to warm-up, where readers take the kernel's answer raised
 * to a floor: the highest value the old line could have handed out.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

#define FRAC_BITS 32
#define BRACKET_TRIES 5          /* brackets per clock, kernel reads cheap */
#define CHEAP_CALL_NS 100         /* a kernel read this cheap: the vDSO */
#define SLOW_CALL_NS 1000         /* this slow: a traced or trapped system call */
#define WINDOW_NS 5000           /* 'now' to publish, else redo */
#define STEP_NS 20000            /* behind the kernel by more: step */
#define RAW_TOLERANCE_PPM 1000   /* raw rate change that is a discontinuity */
#define MONO_TOLERANCE_PPM 10000 /* NTP slews at most 500 ppm */
#define RATE_TRACK_PPM 50        /* rate change followed at once */
#define BASELINE_NS 16000000LL   /* rate measured over up to this */
#define SAMPLE_AGE_NS 50000      /* sample older than this at 'now': again
				    (or than a few kernel reads, if slower) */
#define RESAMPLE 1
#define WARM_NS 2000000LL
#define TARGET_MARGIN_NS 20        /* converge this far below a target page */
#define JUMP_BACK_NS 10000000LL  /* kernel clock moved back: new timeline */
#define BOOT_SLACK_NS 1000000LL  /* BOOTTIME offset noise kept, not undone */
#define END_MARGIN_NS 500        /* a line ended now: floors this far on */
#define WALL_FLOOR_NS 100000     /* REALTIME further below its floor: set back */
#define BOUND_LEAD_NS 20000      /* floors at most this ahead of the lines' lead */
#define UPDATE_SHARE 1000        /* expensive kernel: updates 0.1 % of the time */
#define STEADY_ERR_NS 10         /* updates this close: the interval may grow... */
#define STEADY_MAX_NS 64000000LL /* ...up to this (uclockd's: its own) */
#define JUMPS_TRUSTED 3          /* counter jumps this many times... */
#define JUMPS_WINDOW_NS (10 * NSEC_PER_SEC) /* ...within this: not trusted */

/* A line as the writer sees it: value at the anchor in ns << 32, and rate. */
struct line {
	i128 value;
	uint64_t mult;
};

/* Calibration takes an interval, at most WARM_NS: a long interval (a daemon
 * updating once a second) need not keep readers on the kernel that long. */
static int64_t warm_ns(const struct uclock_tk *tk)
{
	return tk->interval_ns < WARM_NS ? tk->interval_ns : WARM_NS;
}

/* Signed distance a - b on a counter that wraps at mask. */
static int64_t tick_diff(uint64_t a, uint64_t b, uint64_t mask)
{
	uint64_t d = (a - b) & mask;

	if (d > mask >> 1)
		return -(int64_t)((b - a) & mask);
	return (int64_t)d;
}

static i128 max_i128(i128 a, i128 b)
{
	return a > b ? a : b;
}

static i128 line_at(const struct line *l, int64_t ticks)
{
	return l->value + (i128)ticks * (i128)l->mult;
}

/* ns as fixed point; multiplied, as shifting a negative value is not. */
static i128 fx(int64_t ns)
{
	return (i128)ns * ((i128)1 << FRAC_BITS);
}

static int64_t fx_to_ns(i128 v)
{
	return (int64_t)(v >> FRAC_BITS); /* arithmetic: floor */
}

static uint64_t ns_to_ticks(int64_t ns, uint64_t rate)
{
	return (uint64_t)(((u128)ns << FRAC_BITS) / rate);
}

static int kernel_ns(struct uclock_tk *tk, clockid_t clock, int64_t *ns)
{
	struct timespec ts;

	__atomic_store_n(&tk->kernel_readings,
			 __atomic_load_n(&tk->kernel_readings, __ATOMIC_RELAXED) + 1,
			 __ATOMIC_RELAXED);
	if (tk->ops.clock(tk->ops.ctx, clock, &ts) != 0)
		return -1;
	*ns = uclock__ts_to_ns(&ts);
	return 0;
}

/*
 * What a kernel reading costs decides how many an update takes: through
 * the vDSO, enough for tight brackets; by system call (no vDSO, a
 * hypervisor's clock, a process under strace), as few as will do, so that
 * an update stays a handful of calls.  The cost is the typical time
 * between two readings, the lowest seen lately, drifting up slowly.
 */
static void note_call_cost(struct uclock_tk *tk, int64_t ns)
{
	int64_t cost = __atomic_load_n(&tk->call_ns, __ATOMIC_RELAXED);

	if (ns <= 0)
		return;
	/* Relaxed stores: uclock_stat() reads them, without the lock. */
	__atomic_store_n(&tk->call_ns, cost == 0 || ns < cost ? ns : cost + cost / 16 + 1,
			 __ATOMIC_RELAXED);
}

static int64_t call_ns(const struct uclock_tk *tk)
{
	return __atomic_load_n(&tk->call_ns, __ATOMIC_RELAXED);
}

static int cheap_calls(const struct uclock_tk *tk)
{
	return call_ns(tk) <= CHEAP_CALL_NS;
}

static int bracket_tries(const struct uclock_tk *tk)
{
	return cheap_calls(tk) ? BRACKET_TRIES : call_ns(tk) <= SLOW_CALL_NS ? 3 : 2;
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
	if (cheap_calls(tk) || budget < tk->interval_ns)
		budget = tk->interval_ns;
	if (budget > NSEC_PER_SEC)
		budget = NSEC_PER_SEC;
	return steady > budget ? steady : budget;
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
static void settle(struct uclock_tk *tk, int steady, int64_t mono_err, int64_t raw_err)
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

/* One kernel reading between two counter reads: 0, 1 if the second read
 * was behind the first (another CPU), -1 if the kernel failed. */
static int one_bracket(struct uclock_tk *tk, clockid_t clock, struct tk_sample *out)
{
	uint64_t mask = tk->ops.mask;
	uint64_t c0 = tk->ops.counter(tk->ops.ctx);
	int64_t ns;
	int err = kernel_ns(tk, clock, &ns);
	uint64_t c1 = tk->ops.counter(tk->ops.ctx);
	uint64_t width = (c1 - c0) & mask;

	if (err)
		return -1;
	if (width > mask >> 1)
		return 1;
	*out = (struct tk_sample){.tick = (c0 + width / 2) & mask, .c0 = c0,
				  .half = width / 2, .ns = ns};
	return 0;
}

/*
 * The kernel clock bracketed by two counter reads.  Of the tightest
 * brackets (within a quarter of the best width) take the median one, by
 * where it puts the kernel's time at a common tick: one bracket whose kernel
 * read fell near an edge does not move the estimate.  Without a rate yet,
 * the tightest.
 */
static int sample(struct uclock_tk *tk, clockid_t clock, uint64_t rate,
		  struct tk_sample *out)
{
	uint64_t mask = tk->ops.mask, best = UINT64_MAX;
	struct tk_sample all[BRACKET_TRIES];
	int n = 0, tries = bracket_tries(tk);
	/* Brackets in a chain: each one's closing counter read opens the
	 * next (an ordered read costs as much as a vDSO call). */
	uint64_t c0 = tk->ops.counter(tk->ops.ctx);

	for (int i = 0; i < tries; i++) {
		int64_t ns;
		int err = kernel_ns(tk, clock, &ns);
		uint64_t c1 = tk->ops.counter(tk->ops.ctx);
		uint64_t width = (c1 - c0) & mask;

		if (err)
			return -1;
		if (width <= mask >> 1) { /* else moved to a CPU behind */
			all[n++] = (struct tk_sample){.tick = (c0 + width / 2) & mask,
						      .c0 = c0, .half = width / 2, .ns = ns};
			if (width < best)
				best = width;
		}
		c0 = c1;
	}
	if (n == 0)
		return -1;

	i128 key[BRACKET_TRIES];
	int keep[BRACKET_TRIES], k = 0;
	uint64_t ref = all[0].tick;
	for (int i = 0; i < n; i++) {
		if (2 * all[i].half > best + best / 4 + 4)
			continue;
		keep[k] = i;
		key[k++] = fx(all[i].ns) -
			   (i128)tick_diff(all[i].tick, ref, mask) * (i128)rate;
	}
	/* Selection of the median index by key: k is tiny. */
	for (int i = 0; i < k; i++) {
		int below = 0, equal = 0;
		for (int j = 0; j < k; j++) {
			below += key[j] < key[i];
			equal += key[j] == key[i];
		}
		if (below <= k / 2 && below + equal > k / 2) {
			*out = all[keep[i]];
			return 0;
		}
	}
	*out = all[keep[0]];
	return 0;
}

/*
 * REALTIME - MONOTONIC exactly: the coarse clocks are both the last tick's
 * time, so their difference is the kernel's offset itself when read within
 * one tick (MONOTONIC_COARSE unchanged on both sides).
 */
static int real_offset(struct uclock_tk *tk, int64_t *out)
{
	for (int i = 0; i < 8; i++) {
		int64_t m1, r, m2;

		if (kernel_ns(tk, CLOCK_MONOTONIC_COARSE, &m1) ||
		    kernel_ns(tk, CLOCK_REALTIME_COARSE, &r) ||
		    kernel_ns(tk, CLOCK_MONOTONIC_COARSE, &m2))
			return -1;
		if (m1 == m2) {
			*out = r - m1;
			return 0;
		}
	}
	return -1;
}

/*
 * [lo, hi] that must hold 'clock - base', from readings of base on both
 * sides of one of clock: intersect up to n such brackets (one when kernel
 * readings are expensive).  Also what a kernel reading costs.
 */
static int offset_range(struct uclock_tk *tk, clockid_t clock, clockid_t base,
			int n, int64_t *lo, int64_t *hi)
{
	*lo = INT64_MIN;
	*hi = INT64_MAX;
	for (int i = 0; i < n && (i == 0 || cheap_calls(tk)); i++) {
		int64_t b1, c, b2;

		if (kernel_ns(tk, base, &b1) || kernel_ns(tk, clock, &c) ||
		    kernel_ns(tk, base, &b2))
			return -1;
		note_call_cost(tk, (b2 - b1) / 2);
		if (c - b2 > *lo)
			*lo = c - b2;
		if (c - b1 < *hi)
			*hi = c - b1;
	}
	return *lo <= *hi ? 0 : -1;
}

static int64_t floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;

	return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/*
 * BOOTTIME - MONOTONIC: the old value while the brackets still allow it (so
 * it does not wander with noise); else a whole millisecond in range (zero
 * on a machine never suspended); else the middle.
 */
static int boot_offset(struct uclock_tk *tk, int64_t *out)
{
	for (int i = 0; i < 3; i++) {
		int64_t lo, hi, ms;

		if (offset_range(tk, CLOCK_BOOTTIME, CLOCK_MONOTONIC, 3, &lo, &hi))
			continue;
		if (tk->have_off && tk->off.boot >= lo && tk->off.boot <= hi) {
			*out = tk->off.boot;
			return 0;
		}
		ms = floor_div(hi, 1000000) * 1000000;
		*out = ms >= lo ? ms : lo + (hi - lo) / 2;
		return 0;
	}
	return -1;
}

/* CLOCK_TAI - REALTIME is whole seconds. */
static int tai_offset(struct uclock_tk *tk, int64_t *out)
{
	int64_t lo, hi;

	for (int i = 0; i < 3; i++) {
		if (offset_range(tk, CLOCK_TAI, CLOCK_REALTIME, 1, &lo, &hi))
			continue;
		*out = floor_div(lo + (hi - lo) / 2 + NSEC_PER_SEC / 2,
				 NSEC_PER_SEC) * NSEC_PER_SEC;
		return 0;
	}
	return -1;
}

static int measure_offsets(struct uclock_tk *tk, struct tk_offsets *off)
{
	if (real_offset(tk, &off->real) || boot_offset(tk, &off->boot) ||
	    tai_offset(tk, &off->tai))
		return -1;
	/* BOOTTIME must not go back by the noise of one estimate. */
	if (tk->have_off && off->boot < tk->off.boot &&
	    tk->off.boot - off->boot < BOOT_SLACK_NS)
		off->boot = tk->off.boot;
	return 0;
}

/*
 * The offsets in steady state: REALTIME's, BOOTTIME's and TAI's from one
 * bracketed reading each, set against the MONOTONIC sample; the old
 * offsets kept while they agree within the brackets, else measured
 * exactly (a step, a suspend, a leap second).  Three kernel readings
 * instead of nine.
 */
static int lean_offsets(struct uclock_tk *tk, const struct tk_sample *sm,
			struct tk_offsets *off)
{
	static const clockid_t clocks[] = {CLOCK_REALTIME, CLOCK_BOOTTIME, CLOCK_TAI};
	int64_t *offset[] = {&off->real, &off->boot, &off->tai};
	int (*exactly[])(struct uclock_tk *, int64_t *) = {real_offset, boot_offset,
							    tai_offset};

	*off = tk->off;
	for (int i = 0; i < 3; i++) {
		struct tk_sample k;

		if (one_bracket(tk, clocks[i], &k) != 0)
			return measure_offsets(tk, off);
		int64_t mono = sm->ns + fx_to_ns((i128)tick_diff(k.tick, sm->tick, tk->ops.mask) *
						 tk->rate);
		int64_t slack = fx_to_ns((i128)(k.half + sm->half) * tk->rate) + 100;
		/* TAI's offset is from REALTIME, measured just before it. */
		int64_t d = k.ns - mono - *offset[i] - (i == 2 ? off->real : 0);

		if ((d > slack || d < -slack) && exactly[i](tk, offset[i]) != 0)
			return -1;
	}
	return 0;
}

static void take_offsets(struct uclock_tk *tk, const struct tk_offsets *off)
{
	if (tk->have_off && off->real != tk->off.real)
		__atomic_fetch_add(&tk->realtime_steps, 1, __ATOMIC_RELAXED);
	tk->off = *off;
	tk->have_off = 1;
}

static void bump(uint64_t *counter)
{
	__atomic_store_n(counter, __atomic_load_n(counter, __ATOMIC_RELAXED) + 1,
			 __ATOMIC_RELAXED);
}

/*
 * Send readers to the staged copy.  A process's own page is wiped in a
 * child made by fork() or clone() (see clock.c): the backup, in ordinary
 * memory, keeps what readers were last sent to, itself a latch, so that a
 * child has a complete copy whenever it was made.
 */
static void flip(struct uclock_tk *tk)
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
	flip(tk);
}

/* A copy made elsewhere (a mirror of the shared page).  Caller holds the
 * lock. */
void uclock__tk_publish(struct uclock_tk *tk, const struct uclock__copy *next)
{
	publish_now(tk, next);
}

/* Kernel ns << 32 per counter tick between two samples; 0 if unusable. */
static uint64_t rate_between(const struct tk_sample *a,
			     const struct tk_sample *b, uint64_t mask)
{
	int64_t dt = tick_diff(b->tick, a->tick, mask);
	int64_t dk = b->ns - a->ns;

	if (dt <= 0 || dk <= 0)
		return 0;
	i128 r = fx(dk) / dt;
	if (r < UCLOCK__MULT_MIN || r > UCLOCK__MULT_MAX)
		return 0;
	return (uint64_t)r;
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

/*
 * The next line from 'now'.
 *   CONTINUE: continuous with the old line (steady state).
 *   KERNEL: at the kernel's value, for a stale line no reader may have
 *     handed kernel answers against (see steer()).
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
static void split_bases(struct uclock__copy *c)
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
	split_bases(&c);
	return c;
}

static struct line copy_line(const struct uclock__copy *c, int raw)
{
	int64_t base = raw ? c->base_raw : c->base_mono;
	uint64_t frac = raw ? c->raw_frac : c->frac;

	return (struct line){.value = fx(base) + frac,
			     .mult = raw ? c->raw_mult : c->mult};
}

/* A line's value at 'at' ticks from its anchor, as floors for the next. */
static void floors_at(const struct uclock__copy *c, uint64_t at,
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
	floors_at(cur, (uint64_t)cap, next);
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
static void enter_warmup(struct uclock_tk *tk, const struct uclock__copy *cur,
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
	flip(tk);
	tk->warm_mono = *sm;
	tk->warm_raw = *sr;
	tk->have_warm = 1;
	tk->have_prev = 0;
	tk->mono_hist.n = 0;
	tk->raw_hist.n = 0;
	set_warm_deadline(tk, sm, sr, next.floor_mono, next.floor_raw);
	settle(tk, 0, 0, 0);
	bump(&tk->warmups);
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
static int steer(struct uclock_tk *tk, const struct uclock__copy *cur,
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

	int64_t age_ns = 8 * bracket_tries(tk) * call_ns(tk);

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
			if (sample(tk, CLOCK_MONOTONIC, tk->rate, &sm_now) == 0 &&
			    sample(tk, CLOCK_MONOTONIC_RAW, tk->raw_rate, &sr_now) == 0)
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
		 * the one configured when they do not (see settle()). */
		if (attempt == 0)
			settle(tk, anchor == CONTINUE && good,
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
		flip(tk);
		published(tk, sm, sr, span, mono_err, raw_err, corr);
		return 0;
	}
	return -1;
}

static void history_start(struct tk_history *h, const struct tk_sample *first)
{
	h->s[0] = *first;
	h->n = 1;
}

/* Keep samples at least BASELINE_NS / TK_HISTORY apart, the oldest going. */
static void history_add(struct tk_history *h, const struct tk_sample *s)
{
	if (h->n && s->ns - h->s[h->n - 1].ns < BASELINE_NS / TK_HISTORY)
		return;
	if (h->n == TK_HISTORY) {
		memmove(&h->s[0], &h->s[1], sizeof(h->s[0]) * (TK_HISTORY - 1));
		h->n--;
	}
	h->s[h->n++] = *s;
}

/*
 * The kernel's rate, over the longest baseline the history holds (sample
 * noise divided by tens of ms), unless the last interval alone shows a
 * change beyond its own noise (NTP set a new frequency): then that, and
 * the baseline starts again from the previous sample.
 */
static uint64_t follow_rate(struct tk_history *h, const struct tk_sample *prev,
			    const struct tk_sample *now, uint64_t est, uint64_t mask)
{
	uint64_t recent = rate_between(prev, now, mask);
	int64_t dt = tick_diff(now->tick, prev->tick, mask);

	if (recent && dt > 0) {
		i128 d = (i128)recent - (i128)est;
		i128 tolerance = (i128)est * RATE_TRACK_PPM / 1000000 +
				 (i128)est * (i128)(prev->half + now->half + 4) / dt;

		if (d > tolerance || -d > tolerance) {
			history_start(h, prev);
			history_add(h, now);
			return recent;
		}
	}
	/* A narrow counter wraps: nothing older than a quarter turn. */
	i128 span = ((i128)(mask >> 2) * est) >> FRAC_BITS;
	while (h->n && (i128)(now->ns - h->s[0].ns) > span) {
		memmove(&h->s[0], &h->s[1], sizeof(h->s[0]) * (size_t)(h->n - 1));
		h->n--;
	}
	if (h->n == 0)
		history_start(h, prev);
	uint64_t longer = rate_between(&h->s[0], now, mask);
	history_add(h, now);
	return longer ? longer : est;
}

static int warm_step(struct uclock_tk *tk, const struct uclock__copy *cur,
		     const struct tk_sample *sm, const struct tk_sample *sr)
{
	uint64_t mask = tk->ops.mask;

	if (!tk->have_warm) {
		enter_warmup(tk, cur, sm, sr, cur->mode == UCLOCK_MODE_WARMUP);
		return 0;
	}
	/* Calibrated long enough, and the kernel has passed the floors: a line
	 * anchored now starts at the kernel, not ahead of it. */
	if (sm->ns - tk->warm_mono.ns < warm_ns(tk) || sm->ns <= cur->floor_mono ||
	    sr->ns <= cur->floor_raw) {
		set_warm_deadline(tk, sm, sr, cur->floor_mono, cur->floor_raw);
		return 0;
	}

	uint64_t rate = rate_between(&tk->warm_mono, sm, mask);
	uint64_t raw_rate = rate_between(&tk->warm_raw, sr, mask);
	/* MONOTONIC may run off MONOTONIC_RAW by NTP's slew and the tick
	 * adjustment (10 %); more means the samples are not one timeline. */
	if (!rate || !raw_rate ||
	    (i128)rate * 10 > (i128)raw_rate * 11 ||
	    (i128)rate * 11 < (i128)raw_rate * 10) {
		enter_warmup(tk, cur, sm, sr, 1);
		return 0;
	}
	tk->rate = rate;
	tk->raw_rate = raw_rate;
	history_start(&tk->mono_hist, &tk->warm_mono);
	history_add(&tk->mono_hist, sm);
	history_start(&tk->raw_hist, &tk->warm_raw);
	history_add(&tk->raw_hist, sr);
	return steer(tk, cur, sm, sr, 1);
}

/* Why the new samples cannot continue the old lines, or NULL. */
static const char *discontinuity(struct uclock_tk *tk,
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
 * JUMPS_TRUSTED times within JUMPS_WINDOW_NS only a TSC out of step across
 * CPUs (the timekeeper's samples taken on one, then another) or an
 * unstable one explains.
 */
static int counter_unstable(struct uclock_tk *tk, int64_t when)
{
	memmove(&tk->jumps[1], &tk->jumps[0], sizeof(tk->jumps) - sizeof(tk->jumps[0]));
	tk->jumps[0] = when;
	if (tk->njumps < JUMPS_TRUSTED)
		tk->njumps++;
	return tk->njumps == JUMPS_TRUSTED &&
	       when - tk->jumps[JUMPS_TRUSTED - 1] < JUMPS_WINDOW_NS;
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
	 * in a few readings (see lean_offsets()). */
	if (!target) {
		int lean = tk->have_off && tk->rate && cur.mode == UCLOCK_MODE_COUNTER;

		if ((!lean && measure_offsets(tk, &off)) ||
		    sample(tk, CLOCK_MONOTONIC, tk->rate, &sm) ||
		    sample(tk, CLOCK_MONOTONIC_RAW, tk->raw_rate, &sr) ||
		    (lean && lean_offsets(tk, &sm, &off)))
			return -1;
		good = calm(&tk->typical_half[0], sm.half) &
		       calm(&tk->typical_half[1], sr.half);
		/* Expensive kernel readings are not taken again: their brackets
		 * are wide anyway, and an update must stay a few calls. */
		if (!good && !last_try && cheap_calls(tk))
			return RESAMPLE;
	}
	/* BOOTTIME moved on without MONOTONIC: the interval held a suspend,
	 * and says nothing about the rate. */
	int suspended = tk->have_off && off.boot > tk->off.boot;
	take_offsets(tk, &off);
	if (cur.mode != UCLOCK_MODE_COUNTER)
		return good || !cheap_calls(tk) ? warm_step(tk, &cur, &sm, &sr) : -1;

	if (discontinuity(tk, &sm, &sr, &keep_floor, &counter)) {
		bump(&tk->discontinuities);
		if (counter && counter_unstable(tk, sm.ns)) {
			char why[160];

			snprintf(why, sizeof(why), "the TSC jumped against the kernel's clock %d "
				 "times in %lld ms (out of step across CPUs, or unstable): "
				 "passing through to the kernel", JUMPS_TRUSTED,
				 (long long)(sm.ns - tk->jumps[JUMPS_TRUSTED - 1]) / 1000000);
			uclock__tk_give_up(tk, why);
			return 0;
		}
		enter_warmup(tk, &cur, &sm, &sr, keep_floor);
		return 0;
	}
	if (suspended) {
		history_start(&tk->mono_hist, &sm);
		history_start(&tk->raw_hist, &sr);
	} else if (good) {
		tk->rate = follow_rate(&tk->mono_hist, &tk->prev_mono, &sm, tk->rate,
				       tk->ops.mask);
		tk->raw_rate = follow_rate(&tk->raw_hist, &tk->prev_raw, &sr,
					   tk->raw_rate, tk->ops.mask);
	}
	return steer(tk, &cur, &sm, &sr, good);
}

/*
 * An update, timed: its cost sets the interval where kernel readings are
 * expensive (see interval()), and is reported.
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

int64_t uclock__tk_interval(const struct uclock_tk *tk)
{
	return interval(tk);
}

static int take_lock(struct uclock_tk *tk)
{
	int expected = 0;

	return __atomic_compare_exchange_n(&tk->lock, &expected, 1, 0,
					   __ATOMIC_ACQUIRE, __ATOMIC_RELAXED);
}

/* The update lock, for callers outside: 1 if taken.  Never waits. */
int uclock__tk_take(struct uclock_tk *tk)
{
	/* Look before the CAS: readers arriving during an update do not
	 * all write the lock's cache line. */
	if (__atomic_load_n(&tk->lock, __ATOMIC_RELAXED) || !take_lock(tk))
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
		floors_at(c, at, next);
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
	flip(tk);
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
	flip(tk);
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
	flip(tk);
	snprintf(tk->gave_up_why, sizeof(tk->gave_up_why), "%s", why);
	__atomic_store_n(&tk->gave_up, 1, __ATOMIC_RELEASE);
}

const char *uclock__tk_gave_up(const struct uclock_tk *tk)
{
	return __atomic_load_n(&tk->gave_up, __ATOMIC_ACQUIRE) ? tk->gave_up_why : NULL;
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
	if (measure_offsets(tk, &off) != 0)
		return -1;
	take_offsets(tk, &off);
	c.base_real = c.base_mono + off.real;
	c.base_tai = c.base_real + off.tai;
	split_bases(&c);
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

int64_t uclock__copy_value(const struct uclock__copy *c, enum slot slot,
			  uint64_t delta)
{
	switch (slot) {
	case SLOT_RAW:
		return uclock__line(c->base_raw, c->raw_frac, c->raw_mult, delta);
	case SLOT_REAL:
		return uclock__line(c->base_real, c->frac, c->mult, delta);
	case SLOT_BOOT:
		return uclock__line(c->base_boot, c->frac, c->mult, delta);
	case SLOT_TAI:
		return uclock__line(c->base_tai, c->frac, c->mult, delta);
	default:
		return uclock__line(c->base_mono, c->frac, c->mult, delta);
	}
}

/*
 * The highest value the last line can have handed out for this clock.
 * REALTIME and TAI have one too (MONOTONIC's, moved by their offset), but
 * it holds them only against a reading a little below it (see
 * uclock__floored()): further, the kernel's wall clock was set back.
 */
static int64_t slot_floor(const struct uclock__copy *c, enum slot slot)
{
	static const int64_t none = INT64_MIN;

	if (slot == SLOT_RAW)
		return c->floor_raw;
	if (c->floor_mono == none)
		return none;
	switch (slot) {
	case SLOT_BOOT: return c->floor_mono + (c->base_boot - c->base_mono);
	case SLOT_REAL: return c->floor_mono + (c->base_real - c->base_mono);
	case SLOT_TAI: return c->floor_mono + (c->base_tai - c->base_mono);
	default: return c->floor_mono;
	}
}

/* A kernel reading k raised to a floor (see slot_floor()). */
int64_t uclock__floored(int64_t k, int64_t floor, enum slot slot)
{
	if (k >= floor)
		return k;
	if ((slot == SLOT_REAL || slot == SLOT_TAI) && floor - k > WALL_FLOOR_NS)
		return k;
	return floor;
}

/*
 * The floor a copy leaves for a clock when readers stop using it: a
 * counter copy's lines at 'hard' (readers go no further), a warm-up copy's
 * own floors; none for anything else.  As uclock__tk_adopt() sets them.
 */
int64_t uclock__copy_floor(const struct uclock__copy *c, enum slot slot)
{
	struct uclock__copy f;

	if (!c || (c->mode != UCLOCK_MODE_COUNTER && c->mode != UCLOCK_MODE_WARMUP))
		return INT64_MIN;
	f = *c;
	if (c->mode == UCLOCK_MODE_COUNTER)
		floors_at(c, c->hard, &f);
	return slot_floor(&f, slot);
}

/*
 * Read the kernel for a clock, raised to the floor.  Valid only if no new
 * copy was published meanwhile: then the kernel read came before the flip
 * and the new line is above it.  RETRY means read again; -1 that the
 * kernel clock failed (errno is the kernel's).  *kernel: its own reading.
 */
#define RETRY 1

static int fallback(struct uclock_tk *tk, const struct uclock__copy *c,
		    uint32_t seq, enum slot slot, int64_t *ns, int64_t *kernel)
{
	int64_t k, floor = slot_floor(c, slot);

	if (kernel_ns(tk, clock_of(slot), &k) != 0)
		return -1;
	if (uclock__seq_changed(tk->page, seq))
		return RETRY;
	*ns = uclock__floored(k, floor, slot);
	*kernel = k;
	return 0;
}

/* The lines an updater has staged and shown (see steer()), read before
 * their flip: valid while they are still shown. */
static int staged_read(struct uclock_tk *tk, uint32_t next, enum slot slot, int64_t *ns)
{
	struct uclock__copy c;
	uint64_t now;

	uclock__copy_load_one(tk->page, next, &c, tk->ops.counter, tk->ops.ctx, &now);
	/* Still shown after the loads: the copy read is the one shown.  The
	 * writer takes it back (staged_seq 0) before it stages another there,
	 * and a flip alone does not vouch for it: the copy flipped may be
	 * that other one, half of which this reader may have loaded. */
	if (__atomic_load_n(&tk->staged_seq, __ATOMIC_SEQ_CST) != next)
		return -1;
	uint64_t delta = (now - c.cycle_last) & c.mask;
	*ns = uclock__copy_value(&c, slot, delta > c.mask >> 1 ? 0 : delta);
	return 0;
}

/*
 * The line is too old to extrapolate and another thread is updating it:
 * say a kernel answer is coming, then take the staged lines if the updater
 * has shown them, else the kernel's (the updater will then start above).
 */
static int stale_fallback(struct uclock_tk *tk, const struct uclock__copy *c,
			  uint32_t seq, enum slot slot, int64_t *ns)
{
	uint32_t next = seq + UCLOCK__SEQ_STEP;
	int64_t kernel;

	__atomic_store_n(&tk->fallback_seen, 1, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&tk->staged_seq, __ATOMIC_SEQ_CST) == next) {
		bump(&tk->staged_reads);
		return staged_read(tk, next, slot, ns) == 0 ? 0 : RETRY;
	}
	bump(&tk->kernel_fallbacks);
	return fallback(tk, c, seq, slot, ns, &kernel);
}

/*
 * The slow read path.  Every way out either returns a reading or, when the
 * kernel's clock fails (a sandbox forbids it), INT64_MIN with the kernel's
 * errno: it never spins on a kernel that keeps failing.
 */
int64_t uclock__tk_read(struct uclock_tk *tk, enum slot slot)
{
	for (int attempt = 0;; attempt++) {
		struct uclock__copy c;
		uint64_t now;
		uint32_t seq = uclock__copy_load_at(tk->page, &c, tk->ops.counter,
						    tk->ops.ctx, &now);
		uint64_t delta = (now - c.cycle_last) & c.mask;
		int64_t ns, kernel;
		int rc;

		switch (c.mode) {
		case UCLOCK_MODE_COUNTER:
			if (delta < c.hard / 2 && !(c.flags & UCLOCK__CHECK))
				return uclock__copy_value(&c, slot, delta);
			/* A CPU slightly behind the anchor: clamp, never wrap. */
			if (delta > c.mask >> 1 &&
			    ((c.cycle_last - now) & c.mask) <= tk->window_ticks)
				return uclock__copy_value(&c, slot, 0);
			if (attempt == 0 && uclock__tk_try_update(tk))
				continue;
			if (delta <= c.hard)
				return uclock__copy_value(&c, slot, delta);
			rc = stale_fallback(tk, &c, seq, slot, &ns);
			break;
		case UCLOCK_MODE_WARMUP:
		case UCLOCK_MODE_UNINIT:
			/* The kernel's answer; an update when it says warm-up
			 * may be over (one kernel reading a read). */
			rc = fallback(tk, &c, seq, slot, &ns, &kernel);
			if (rc == 0 && attempt == 0 &&
			    (c.mode == UCLOCK_MODE_UNINIT ||
			     kernel >= __atomic_load_n(&tk->warm_due[slot], __ATOMIC_RELAXED)) &&
			    uclock__tk_try_update(tk))
				continue;
			break;
		default:
			rc = fallback(tk, &c, seq, slot, &ns, &kernel);
			break;
		}
		if (rc == 0)
			return ns;
		if (rc < 0)
			return INT64_MIN;
	}
}

/* Warm-up: the kernel's value now, moved back by the counter distance at
 * the rate seen since warm-up began (when the writer state is free). */
static int64_t warm_ticks_to_ns(struct uclock_tk *tk, enum slot slot,
				uint64_t ticks)
{
	struct tk_sample s;
	uint64_t rate = 0;

	if (sample(tk, clock_of(slot), tk->rate, &s) != 0)
		return INT64_MIN;
	for (int i = 0; i < 1000 && !rate; i++) {
		if (!take_lock(tk))
			continue;
		if (tk->have_warm)
			rate = rate_between(&tk->warm_mono, &s, tk->ops.mask);
		if (!rate)
			rate = tk->rate;
		__atomic_store_n(&tk->lock, 0, __ATOMIC_RELEASE);
		break;
	}
	return s.ns + fx_to_ns((i128)tick_diff(ticks, s.tick, tk->ops.mask) *
			       (i128)rate);
}

/* A counter value before or after the anchor, on a copy's lines. */
/*
 * A counter value on page p's lines (copy c): what a reader would have
 * read then.  Within the span the copy was steered for, its line; before
 * its anchor, the lines readers were on then (see past.c); past its span,
 * the kernel's own rate (measured over a long baseline) from the span's
 * end, closer than the steered slope, whose correction would grow with
 * the distance.
 */
int64_t uclock__copy_ticks_to_ns(const struct uclock__page *p, const struct uclock__copy *c,
				 enum slot slot, uint64_t ticks)
{
	struct line l = copy_line(c, slot == SLOT_RAW);
	uint64_t rate = slot == SLOT_RAW ? c->raw_rate : c->rate;
	int64_t d = tick_diff(ticks, c->cycle_last, c->mask), span = (int64_t)(c->hard / 2);
	int64_t off = 0;
	i128 v;

	if (d < 0)
		return uclock__past_ns(p, c, slot, ticks);
	if (d > span && rate)
		v = line_at(&l, span) + (i128)(d - span) * (i128)rate;
	else
		v = line_at(&l, d);
	if (slot == SLOT_REAL)
		off = c->base_real - c->base_mono;
	else if (slot == SLOT_BOOT)
		off = c->base_boot - c->base_mono;
	else if (slot == SLOT_TAI)
		off = c->base_tai - c->base_mono;
	return fx_to_ns(v) + off;
}

int64_t uclock__tk_ticks_to_ns(struct uclock_tk *tk, enum slot slot,
			       uint64_t ticks)
{
	for (;;) {
		struct uclock__copy c;
		uint32_t seq = uclock__copy_load(tk->page, &c);

		if (c.mode != UCLOCK_MODE_COUNTER) {
			/* No line yet: take the kernel's value now, moved by the
			 * counter distance at the rate measured since warm-up
			 * began. */
			return warm_ticks_to_ns(tk, slot, ticks);
		}
		int64_t ns = uclock__copy_ticks_to_ns(tk->page, &c, slot, ticks);
		if (!uclock__seq_changed(tk->page, seq))
			return ns;
	}
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
