/*
 * Counter values captured earlier (uclock_ticks(), converted later with
 * uclock_ticks_to_ns()): on the lines readers were on when they were
 * captured, not on the current lines extrapolated back, whose steering
 * correction would grow with the value's age.
 *
 * The writer keeps knots, points on its lines at least KNOT_NS apart (the
 * lines' anchors), in a ring in the page (10 s of them: the shared page's
 * are every process's).  Between two knots, or the newest and the current
 * anchor, readers were on lines continuous with each other and within
 * nanoseconds of the kernel, which is a straight line there: the chord is
 * what they read.  Before the oldest knot, the kernel's own rate goes back
 * from it.  Each copy says which knots its lines follow; a discontinuity
 * starts them again.
 */
#include "internal.h"

#define KNOT_NS 100000000LL      /* knots at least this far apart */

static unsigned head_of(uint32_t word)
{
	return word & 0xffff;
}

static unsigned count_of(uint32_t word)
{
	return word >> 16;
}

/*
 * The knots word for 'next', about to be published on the page after
 * 'cur': a new knot at next's anchor when the newest is KNOT_NS behind it,
 * written into the slot readers do not use (the oldest, when the ring is
 * full: see uclock__past_ns()).  Caller holds the writer's lock.
 */
uint32_t uclock__knot_add(struct uclock__page *page, const struct uclock__copy *cur,
			  const struct uclock__copy *next)
{
	uint32_t word = cur->mode == UCLOCK_MODE_COUNTER ? cur->knots : 0;
	unsigned head = head_of(word), count = count_of(word);

	if (count && next->base_mono - page->knots[head].mono < KNOT_NS)
		return word;
	unsigned slot = count ? (head + 1) % UCLOCK__KNOTS : 0;
	struct uclock__knot *k = &page->knots[slot];

	__atomic_store_n(&k->tick, next->cycle_last, __ATOMIC_RELAXED);
	__atomic_store_n(&k->mono, next->base_mono, __ATOMIC_RELAXED);
	__atomic_store_n(&k->raw, next->base_raw, __ATOMIC_RELAXED);
	__atomic_store_n(&k->real, next->base_real - next->base_mono, __ATOMIC_RELAXED);
	if (count < UCLOCK__KNOTS)
		count++;
	return slot | (uint32_t)count << 16;
}

struct point {
	uint64_t tick;
	int64_t ns;
};

/* A clock's value at a knot: REALTIME's offset as it was then, BOOTTIME's
 * and TAI's as now (they change only at a discontinuity or a leap). */
static struct point knot_point(const struct uclock__knot *k, const struct uclock__copy *c,
			       enum slot slot)
{
	struct point p = {__atomic_load_n(&k->tick, __ATOMIC_RELAXED),
			  __atomic_load_n(&k->mono, __ATOMIC_RELAXED)};
	int64_t real = __atomic_load_n(&k->real, __ATOMIC_RELAXED);

	switch (slot) {
	case SLOT_RAW: p.ns = __atomic_load_n(&k->raw, __ATOMIC_RELAXED); break;
	case SLOT_REAL: p.ns += real; break;
	case SLOT_TAI: p.ns += real + (c->base_tai - c->base_real); break;
	case SLOT_BOOT: p.ns += c->base_boot - c->base_mono; break;
	default: break;
	}
	return p;
}

static int64_t slot_base(const struct uclock__copy *c, enum slot slot)
{
	const int64_t base[] = {[SLOT_REAL] = c->base_real, [SLOT_MONO] = c->base_mono,
				[SLOT_RAW] = c->base_raw, [SLOT_BOOT] = c->base_boot,
				[SLOT_TAI] = c->base_tai};
	return base[slot];
}

/*
 * A counter value before copy c's anchor, on page p's knots.  The slot
 * after the newest (the oldest, in a full ring) is the writer's next: not
 * used.  The caller checks the copy was not replaced meanwhile.
 */
int64_t uclock__past_ns(const struct uclock__page *p, const struct uclock__copy *c,
			enum slot slot, uint64_t ticks)
{
	unsigned head = head_of(c->knots), count = count_of(c->knots);
	uint64_t rate = slot == SLOT_RAW ? c->raw_rate : c->rate;
	struct point newer = {c->cycle_last, slot_base(c, slot)};

	if (count == UCLOCK__KNOTS)
		count--;
	for (unsigned i = 0; i < count && head < UCLOCK__KNOTS; i++) {
		struct point k = knot_point(&p->knots[(head + UCLOCK__KNOTS - i) % UCLOCK__KNOTS],
					    c, slot);
		int64_t span = (int64_t)(newer.tick - k.tick), at = (int64_t)(ticks - k.tick);

		if (span <= 0)
			break; /* not a knot of these lines */
		if (at >= 0)
			return k.ns + (int64_t)((__int128)(newer.ns - k.ns) * at / span);
		newer = k;
	}
	return newer.ns - (int64_t)(((unsigned __int128)(newer.tick - ticks) * rate) >> 32);
}
