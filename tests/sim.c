#include "sim.h"

#include <math.h>
#include <string.h>

#include "check.h"

static uint64_t next_random(struct sim *s)
{
	s->rng ^= s->rng << 13;
	s->rng ^= s->rng >> 7;
	s->rng ^= s->rng << 17;
	return s->rng;
}

/* True time passes: every clock moves at its own rate. */
static void pass(struct sim *s, int64_t ns)
{
	s->now += ns;
	s->ticks += (long double)ns * s->hz / 1e9L;
	s->mono += (long double)ns * (1.0L + s->ntp_ppm * 1e-6L);
	s->raw += (long double)ns * (1.0L + s->raw_ppm * 1e-6L);
	if (s->now / s->tick_ns != s->last_tick) {
		s->last_tick = s->now / s->tick_ns;
		s->mono_at_tick = s->mono;
	}
}

static void event(struct sim *s, int64_t cost);

/* The writer's points of interest: events like any read, at no cost. */
static void sim_point(void *ctx)
{
	event(ctx, 0);
}

static void event(struct sim *s, int64_t cost)
{
	if (s->events++ == s->interrupt_at) {
		s->interrupt_at = -1;
		sim_nested_check(s, s->nested_tol, "nested read");
	}
	int64_t jitter = s->jitter ? (int64_t)(next_random(s) % (uint64_t)s->jitter) : 0;

	int64_t before = (cost + jitter) * s->read_at_percent / 100;

	if (cost && s->stall_percent && (int)(next_random(s) % 100) < s->stall_percent) {
		cost += s->stall_ns;
		if (next_random(s) & 1)
			before += s->stall_ns;
	}

	pass(s, before);
	s->seen_mono = s->mono;
	s->seen_raw = s->raw;
	s->seen_real_off = s->real_off;
	s->seen_boot_off = s->boot_off;
	s->seen_tai_off = s->tai_off;
	pass(s, cost + jitter - before);
}

/*
 * At each flip of the latch, readers still on the old line have used
 * counter values up to the last one read before the flip (the writer's own
 * check): the new line must not be below the old one there, or a reader
 * that comes next would see time go back.  Seen from the simulated counter,
 * which is read on both sides of every flip.  A writer whose copies other
 * processes keep (uclockd): those use the old line up to its keep, so the
 * new line must not be below it there either, nor the floors of a warm-up.
 */
static void check_kept(const struct uclock__copy *old, const struct uclock__copy *cur)
{
	uint64_t end = old->cycle_last + old->keep;
	uint64_t d_new = (end - cur->cycle_last) & cur->mask;

	if (old->keep == 0 || d_new > cur->mask >> 1)
		return; /* none kept, or the new line starts after the keep */
	int64_t kept = uclock__line(old->base_mono, old->frac, old->mult, old->keep);
	int64_t raw_kept = uclock__line(old->base_raw, old->raw_frac, old->raw_mult, old->keep);
	int64_t after = cur->mode == UCLOCK_MODE_COUNTER
				? uclock__line(cur->base_mono, cur->frac, cur->mult, d_new)
				: cur->floor_mono;
	int64_t raw_after = cur->mode == UCLOCK_MODE_COUNTER
				    ? uclock__line(cur->base_raw, cur->raw_frac, cur->raw_mult, d_new)
				    : cur->floor_raw;

	CHECK(after >= kept, "copies kept of the old line reach %lld ns above the new one",
	      (long long)(kept - after));
	CHECK(raw_after >= raw_kept, "copies kept of the old raw line reach %lld ns above "
	      "the new one", (long long)(raw_kept - raw_after));
}

static void check_flip(struct sim *s)
{
	uint32_t seq = __atomic_load_n(&s->page.seq, __ATOMIC_RELAXED);
	const struct uclock__copy *old = uclock__copy_at(&s->page, seq - UCLOCK__SEQ_STEP);
	const struct uclock__copy *cur = uclock__copy_at(&s->page, seq);

	if (seq == s->seen_seq)
		return;
	s->seen_seq = seq;
	if (old->mode != UCLOCK_MODE_COUNTER)
		return;
	if (cur->mode != UCLOCK_MODE_COUNTER) {
		if (cur->floor_mono != INT64_MIN) /* INT64_MIN: a new timeline */
			check_kept(old, cur);
		return;
	}
	uint64_t t = s->last_counter;
	uint64_t d_old = (t - old->cycle_last) & old->mask;
	uint64_t d_new = (t - cur->cycle_last) & cur->mask;
	if (d_new > cur->mask >> 1)
		d_new = 0; /* readers clamp at the anchor */
	if (d_old > old->mask >> 1)
		d_old = 0;
	if (d_old > old->hard)
		d_old = old->hard; /* no reader used the old line past 'hard' */
	int64_t before = uclock__line(old->base_mono, old->frac, old->mult, d_old);
	int64_t after = uclock__line(cur->base_mono, cur->frac, cur->mult, d_new);
	int64_t raw_before = uclock__line(old->base_raw, old->raw_frac, old->raw_mult, d_old);
	int64_t raw_after = uclock__line(cur->base_raw, cur->raw_frac, cur->raw_mult, d_new);
	/* The fast readers' 64-bit evaluation holds up to the limit. */
	CHECK((unsigned __int128)cur->limit * cur->mult + cur->frac <= UINT64_MAX &&
		      (unsigned __int128)cur->limit * cur->raw_mult + cur->raw_frac <=
			      UINT64_MAX,
	      "limit %llu overflows the 64-bit line", (unsigned long long)cur->limit);
	CHECK(after >= before, "update moved MONOTONIC back by %lld ns",
	      (long long)(before - after));
	CHECK(raw_after >= raw_before, "update moved MONOTONIC_RAW back by %lld ns",
	      (long long)(raw_before - raw_after));
	check_kept(old, cur);
	s->flips_checked++;
}

static uint64_t sim_counter(void *ctx)
{
	struct sim *s = ctx;
	uint64_t v;

	check_flip(s);
	event(s, 0);
	v = (uint64_t)s->ticks;
	if (s->on_behind_cpu)
		v -= s->behind;
	pass(s, s->counter_cost);
	s->last_counter = v & s->mask;
	return v & s->mask;
}

static int64_t floor_ns(long double v)
{
	return (int64_t)floorl(v);
}

int64_t sim_kernel_seen(const struct sim *s, enum slot slot)
{
	int64_t mono = floor_ns(s->seen_mono);

	switch (slot) {
	case SLOT_RAW: return floor_ns(s->seen_raw);
	case SLOT_REAL: return mono + s->seen_real_off;
	case SLOT_BOOT: return mono + s->seen_boot_off;
	case SLOT_TAI: return mono + s->seen_real_off + s->seen_tai_off;
	default: return mono;
	}
}

static int sim_clock(void *ctx, clockid_t clock, struct timespec *ts)
{
	struct sim *s = ctx;
	int64_t coarse = floor_ns(s->mono_at_tick), v;

	s->clock_calls++;
	event(s, s->clock_cost);
	switch (clock) {
	case CLOCK_MONOTONIC: v = sim_kernel_seen(s, SLOT_MONO); break;
	case CLOCK_MONOTONIC_RAW: v = sim_kernel_seen(s, SLOT_RAW); break;
	case CLOCK_REALTIME: v = sim_kernel_seen(s, SLOT_REAL); break;
	case CLOCK_BOOTTIME: v = sim_kernel_seen(s, SLOT_BOOT); break;
	case CLOCK_TAI: v = sim_kernel_seen(s, SLOT_TAI); break;
	case CLOCK_MONOTONIC_COARSE: v = coarse; break;
	case CLOCK_REALTIME_COARSE: v = coarse + s->real_off; break;
	default: return -1;
	}
	uclock__ns_to_ts(v, ts);
	return 0;
}

void sim_init(struct sim *s, double hz, uint64_t mask, int64_t interval_ns)
{
	struct uclock_tk_ops ops = {sim_counter, sim_clock, NULL, mask, sim_point};

	memset(s, 0, sizeof(*s));
	s->counter_cost = 10;
	s->clock_cost = 25;
	s->jitter = 6;
	s->rng = 0x9e3779b97f4a7c15ull;
	s->interrupt_at = -1;
	s->nested_tol = 100;
	s->read_at_percent = 50;
	s->hz = hz;
	s->mask = mask;
	s->ticks = 123456789.0L;
	s->mono = 5e12L;     /* up for a while */
	s->raw = 5e12L - 2e6L;
	s->raw_ppm = -3.5;
	s->ntp_ppm = 12.25;
	s->real_off = 1700000000LL * 1000000000LL;
	s->boot_off = 0;
	s->tai_off = 37LL * 1000000000LL;
	s->tick_ns = 4000000;
	s->mono_at_tick = s->mono;
	for (int i = 0; i < SLOT_NONE; i++)
		s->last[i] = INT64_MIN;
	ops.ctx = s;
	uclock__tk_init(&s->tk, &s->page, &ops, interval_ns);
	/* The scenarios' bounds are in intervals: the interval they set,
	 * never stretched (sim_steady.c tests the stretching). */
	s->tk.interval_fixed = 1;
}

/* As uclockd: an update half a span after the last, ahead of readers. */
static void writer_tick(struct sim *s)
{
	struct uclock__copy c;

	if (!s->writer)
		return;
	uclock__copy_load(&s->page, &c);
	uint64_t age = ((uint64_t)s->ticks - c.cycle_last) & s->mask;
	if (c.mode != UCLOCK_MODE_COUNTER ||
	    (double)age / s->hz * 1e9 >= (double)s->tk.span_ns / 2)
		uclock__tk_update(&s->tk);
}

void sim_advance(struct sim *s, int64_t ns)
{
	pass(s, ns);
	writer_tick(s);
}

void sim_suspend(struct sim *s, int64_t ns, int reset)
{
	long double mono = s->mono, raw = s->raw, ticks = s->ticks;

	pass(s, ns);
	s->mono = mono;
	s->raw = raw;
	s->mono_at_tick = mono;
	s->boot_off += ns;
	s->ticks = reset ? 1000.0L : s->ticks;
	(void)ticks;
}

const char *slot_name(enum slot slot)
{
	static const char *names[] = {"REALTIME", "MONOTONIC", "MONOTONIC_RAW",
				      "BOOTTIME", "TAI"};
	return slot < SLOT_NONE ? names[slot] : "?";
}

int64_t sim_check(struct sim *s, enum slot slot, int64_t tol_ns, const char *what)
{
	int64_t v;

	/* Alternate between two CPUs; the whole call runs on one. */
	s->on_behind_cpu = s->behind && (s->reads++ & 1);
	v = uclock__tk_read(&s->tk, slot);
	int64_t err = v - sim_kernel_seen(s, slot);
	int64_t abs_err = err < 0 ? -err : err;

	s->reads_done++;
	if (abs_err > s->max_err[slot])
		s->max_err[slot] = abs_err;
	CHECK(abs_err <= tol_ns, "%s: %s off the kernel by %lld ns (bound %lld)",
	      what, slot_name(slot), (long long)err, (long long)tol_ns);
	if (slot != SLOT_REAL && slot != SLOT_TAI)
		CHECK(v >= s->last[slot], "%s: %s went back by %lld ns", what,
		      slot_name(slot), (long long)(s->last[slot] - v));
	s->last[slot] = v;
	return err;
}

void sim_nested_check(struct sim *s, int64_t tol_ns, const char *what)
{
	/* The outer read's kernel snapshot is restored after: it is what the
	 * outer read will be compared with. */
	long double mono = s->seen_mono, raw = s->seen_raw;
	int64_t real = s->seen_real_off, boot = s->seen_boot_off, tai = s->seen_tai_off;

	s->nested_err = sim_check(s, SLOT_MONO, tol_ns, what);
	s->nested_done = 1;
	s->seen_mono = mono;
	s->seen_raw = raw;
	s->seen_real_off = real;
	s->seen_boot_off = boot;
	s->seen_tai_off = tai;
}

void sim_run(struct sim *s, int count, int64_t gap, int64_t tol_ns, const char *what)
{
	for (int i = 0; i < count; i++) {
		for (int slot = 0; slot < SLOT_NONE; slot++)
			sim_check(s, slot, tol_ns, what);
		pass(s, gap);
		writer_tick(s);
	}
}

int64_t sim_worst(struct sim *s, int count, int64_t gap)
{
	int64_t worst = 0;

	for (int i = 0; i < count; i++) {
		for (int slot = 0; slot < SLOT_NONE; slot++) {
			int64_t e = sim_check(s, slot, INT64_MAX, "worst");
			if (e < 0)
				e = -e;
			if (e > worst)
				worst = e;
		}
		pass(s, gap);
	}
	return worst;
}
