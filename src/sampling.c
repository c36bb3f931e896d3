/*
 * The kernel's clocks as the timekeeper samples them: each reading taken
 * between two counter reads, so that a sample says between which counter
 * values the kernel read its own (of several brackets, the median of the
 * tightest); the kernel's offsets from MONOTONIC (REALTIME, BOOTTIME,
 * TAI); and what a kernel reading costs, which decides how many readings
 * an update takes.
 *
 * uclock__kernel_ns() and uclock__sample() change nothing but relaxed
 * statistics: readers call them too, without the lock (slow_read.c).  The
 * offsets are the writer's, under the lock.
 */
#include "timekeeper_internal.h"

#define BRACKET_TRIES 5          /* brackets per clock, kernel reads cheap */
#define CHEAP_CALL_NS 100         /* a kernel read this cheap: the vDSO */
#define SLOW_CALL_NS 1000         /* this slow: a traced or trapped system call */
#define BOOT_SLACK_NS 1000000LL  /* BOOTTIME offset noise kept, not undone */

int uclock__kernel_ns(struct uclock_tk *tk, clockid_t clock, int64_t *ns)
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

int64_t uclock__call_ns(const struct uclock_tk *tk)
{
	return __atomic_load_n(&tk->call_ns, __ATOMIC_RELAXED);
}

int uclock__cheap_calls(const struct uclock_tk *tk)
{
	return uclock__call_ns(tk) <= CHEAP_CALL_NS;
}

int uclock__bracket_tries(const struct uclock_tk *tk)
{
	return uclock__cheap_calls(tk) ? BRACKET_TRIES
				       : uclock__call_ns(tk) <= SLOW_CALL_NS ? 3 : 2;
}

/* One kernel reading between two counter reads: 0, 1 if the second read
 * was behind the first (another CPU), -1 if the kernel failed. */
static int one_bracket(struct uclock_tk *tk, clockid_t clock, struct tk_sample *out)
{
	uint64_t mask = tk->ops.mask;
	uint64_t c0 = tk->ops.counter(tk->ops.ctx);
	int64_t ns;
	int err = uclock__kernel_ns(tk, clock, &ns);
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
int uclock__sample(struct uclock_tk *tk, clockid_t clock, uint64_t rate,
		   struct tk_sample *out)
{
	uint64_t mask = tk->ops.mask, best = UINT64_MAX;
	struct tk_sample all[BRACKET_TRIES];
	int n = 0, tries = uclock__bracket_tries(tk);
	/* Brackets in a chain: each one's closing counter read opens the
	 * next (an ordered read costs as much as a vDSO call). */
	uint64_t c0 = tk->ops.counter(tk->ops.ctx);

	for (int i = 0; i < tries; i++) {
		int64_t ns;
		int err = uclock__kernel_ns(tk, clock, &ns);
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

		if (uclock__kernel_ns(tk, CLOCK_MONOTONIC_COARSE, &m1) ||
		    uclock__kernel_ns(tk, CLOCK_REALTIME_COARSE, &r) ||
		    uclock__kernel_ns(tk, CLOCK_MONOTONIC_COARSE, &m2))
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
	for (int i = 0; i < n && (i == 0 || uclock__cheap_calls(tk)); i++) {
		int64_t b1, c, b2;

		if (uclock__kernel_ns(tk, base, &b1) || uclock__kernel_ns(tk, clock, &c) ||
		    uclock__kernel_ns(tk, base, &b2))
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

int uclock__measure_offsets(struct uclock_tk *tk, struct tk_offsets *off)
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
int uclock__lean_offsets(struct uclock_tk *tk, const struct tk_sample *sm,
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
			return uclock__measure_offsets(tk, off);
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

void uclock__take_offsets(struct uclock_tk *tk, const struct tk_offsets *off)
{
	if (tk->have_off && off->real != tk->off.real) {
		__atomic_fetch_add(&tk->realtime_steps, 1, __ATOMIC_RELAXED);
		uclock__tk_disrupted(tk);
	}
	tk->off = *off;
	tk->have_off = 1;
}
