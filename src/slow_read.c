/*
 * The slow read path: what readers do when the inline path in uclock.h
 * cannot answer (lines too old, warm-up, a counter given up on), and
 * counter values converted to time.  It drives the timekeeper: a reader
 * that finds the lines too old runs an update; one that finds another
 * thread updating takes the lines it has staged, or the kernel's answer.
 *
 * A kernel answer is raised to the floor the lines leave (see
 * uclock__floored()), and holds only if no new copy was published
 * meanwhile (the new lines are then above it).  A reader and an updater
 * hand over through fallback_seen and staged_seq (see uclock__steer()).
 */
#include "timekeeper_internal.h"

#define WALL_FLOOR_NS 100000     /* REALTIME further below its floor: set back */

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
		uclock__floors_at(c, c->hard, &f);
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

	if (uclock__kernel_ns(tk, clock_of(slot), &k) != 0)
		return -1;
	if (uclock__seq_changed(tk->page, seq))
		return RETRY;
	*ns = uclock__floored(k, floor, slot);
	*kernel = k;
	return 0;
}

/* The lines an updater has staged and shown (see uclock__steer()), read
 * before their flip: valid while they are still shown. */
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

	if (uclock__sample(tk, clock_of(slot), tk->rate, &s) != 0)
		return INT64_MIN;
	for (int i = 0; i < 1000 && !rate; i++) {
		if (!uclock__take_lock(tk))
			continue;
		if (tk->have_warm)
			rate = uclock__rate_between(&tk->warm_mono, &s, tk->ops.mask);
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
