/*
 * Time with its error bound: uclock_now_bounds().
 *
 * The bound around a CLOCK_REALTIME reading is the sum of three parts:
 *  - the time service's own bound when it last said so (as_of_ns): the
 *    kernel's maxerror (adjtimex(), set by whichever NTP daemon runs), or
 *    chronyd's |system time offset| + root dispersion + root delay / 2 at
 *    its last clock update, read by uclockd;
 *  - what the clock can have drifted since: the age of those figures times
 *    a maximum drift rate (UCLOCK_MAX_DRIFT_PPM or uclockd's --max-drift,
 *    15 ppm by default; for the kernel's maxerror, never less than the
 *    500 ppm the kernel itself grows it by);
 *  - uclock's own error against the kernel's clock: the steering error of
 *    its last update plus the 100 ns every reading is held to against the
 *    kernel's (uclock verify, the tests).
 *
 * The figures are published through a latch of two copies, as the lines
 * are: in uclockd's page for every process, or in this process, where the
 * caller that finds them a second old reads adjtimex() again (under a lock
 * taken with a CAS, never waited on: the others use the figures there are).
 * Readers compare the disruption count of the service's last update with
 * the timekeeper's live one (a REALTIME step, a suspend, a counter
 * discontinuity), and the VM clock's marker where there is one: either
 * changed, the status is DISRUPTED until the service updates again.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timex.h>

#include "bounds.h"
#include "internal.h"


/* ---- the arithmetic ---- */

static int64_t add_sat(int64_t a, int64_t b)
{
	int64_t r;

	if (__builtin_add_overflow(a, b, &r))
		return b > 0 ? INT64_MAX : INT64_MIN;
	return r;
}

/* ppb (below 1e9) as a multiplier of ns << 64, rounded up: exact to
 * well under a nanosecond over any age. */
static uint64_t drift_mult(uint32_t ppb)
{
	if (ppb >= 1000000000u)
		return UINT64_MAX;
	return (uint64_t)((((u128)ppb << 64) + 999999999) / 1000000000);
}

/* What 'age' ns add at 'mult', rounded up; saturated. */
static int64_t grown(int64_t age, uint64_t mult)
{
	if (age <= 0)
		return 0;
	u128 g = ((u128)(uint64_t)age * mult + UINT64_MAX) >> 64;

	return g > INT64_MAX ? INT64_MAX : (int64_t)g;
}

static int valid(const struct uclock__bounds_copy *c)
{
	return c->as_of_ns != 0 && (c->status == UCLOCK_BOUNDS_SYNCHRONIZED ||
				    c->status == UCLOCK_BOUNDS_FREE_RUNNING);
}

/* The whole bound of a copy at 'at'. */
static int64_t total_at(const struct uclock__bounds_copy *c, int64_t at)
{
	return add_sat(add_sat(c->error_ns, c->uclock_error_ns),
		       grown(at - c->as_of_ns, c->drift_mult));
}

/* Inline in uclock_now_bounds(): every field written, nothing cleared
 * twice; its cost is within a few ns of the reading's. */
static inline __attribute__((always_inline)) void
at(const struct uclock__bounds_copy *c, int64_t now, uint64_t disruptions, int vm_ok,
   uint64_t vm_marker, struct uclock_bounds *b)
{
	int status = c->as_of_ns ? (int)c->status : UCLOCK_BOUNDS_UNKNOWN;
	int64_t age = c->as_of_ns && now > c->as_of_ns ? now - c->as_of_ns : 0;
	int64_t drift = grown(age, c->drift_mult);

	b->now_ns = now;
	b->source = (int)c->source;
	b->max_drift_ppb = c->drift_ppb;
	b->reserved0 = 0;
	b->reserved[0] = b->reserved[1] = b->reserved[2] = b->reserved[3] = 0;
	b->service_error_ns = c->error_ns;
	b->uclock_error_ns = c->uclock_error_ns;
	b->age_ns = age;
	b->drift_ns = drift;
	if (valid(c) && (disruptions != c->disruptions ||
			 (vm_ok && (c->flags & UCLOCK__BOUNDS_VM) && vm_marker != c->vm_marker)))
		status = UCLOCK_BOUNDS_DISRUPTED;
	b->status = status;
	if (UCLOCK__UNLIKELY(status != UCLOCK_BOUNDS_SYNCHRONIZED &&
			     status != UCLOCK_BOUNDS_FREE_RUNNING)) {
		b->earliest_ns = INT64_MIN;
		b->latest_ns = INT64_MAX;
		b->error_ns = INT64_MAX;
		return;
	}
	int64_t err = add_sat(add_sat(c->error_ns, c->uclock_error_ns), drift);

	b->error_ns = err;
	b->earliest_ns = add_sat(now, err == INT64_MAX ? INT64_MIN : -err);
	b->latest_ns = add_sat(now, err);
}

void uclock__bounds_at(const struct uclock__bounds_copy *c, int64_t now,
		       uint64_t disruptions, int vm_ok, uint64_t vm_marker,
		       struct uclock_bounds *b)
{
	at(c, now, disruptions, vm_ok, vm_marker, b);
}

void uclock__bounds_next(const struct uclock__bounds_copy *prev,
			 const struct uclock__bounds_reading *r, int64_t now,
			 uint64_t disruptions, int vm_ok, uint64_t vm_marker,
			 int64_t uclock_error_ns, struct uclock__bounds_copy *next)
{
	int had = valid(prev);

	if (r->status == UCLOCK_BOUNDS_FREE_RUNNING && had) {
		/* The last figures, growing; the source is the one they are from. */
		*next = *prev;
		next->status = UCLOCK_BOUNDS_FREE_RUNNING;
		return;
	}
	memset(next, 0, sizeof(*next));
	next->as_of_ns = r->as_of_ns ? r->as_of_ns : now;
	next->error_ns = r->error_ns;
	next->uclock_error_ns = uclock_error_ns;
	next->drift_ppb = r->drift_ppb;
	next->drift_mult = drift_mult(r->drift_ppb);
	next->source = (uint32_t)r->source;
	next->status = r->status == UCLOCK_BOUNDS_SYNCHRONIZED ? UCLOCK_BOUNDS_SYNCHRONIZED
							      : UCLOCK_BOUNDS_UNKNOWN;
	next->disruptions = disruptions;
	next->vm_marker = vm_ok ? vm_marker : 0;
	next->flags = vm_ok ? UCLOCK__BOUNDS_VM : 0;
	if (next->status != UCLOCK_BOUNDS_SYNCHRONIZED || !had || r->updated ||
	    prev->source != (uint32_t)r->source)
		return;
	/* The same service, not updated: nothing new. A disruption since its
	 * last update stays, and the bound is at least the old one, grown. */
	next->disruptions = prev->disruptions;
	next->vm_marker = prev->vm_marker;
	next->flags = prev->flags;
	int64_t old = total_at(prev, next->as_of_ns);
	int64_t mine = add_sat(next->error_ns, uclock_error_ns);

	if (mine < old)
		next->error_ns = old - uclock_error_ns;
}

/* ---- the latch ---- */

#define BOUNDS_FIELDS(X)                                                   \
	X(as_of_ns) X(error_ns) X(uclock_error_ns) X(drift_mult) X(disruptions) \
	X(vm_marker) X(status) X(source) X(drift_ppb) X(flags)

/* Field by field into registers: no copy through memory on the way. */
static inline __attribute__((always_inline)) void
load(const struct uclock__bounds *bs, struct uclock__bounds_copy *out)
{
	for (;;) {
		uint32_t seq = __atomic_load_n(&bs->seq, __ATOMIC_ACQUIRE);
		const struct uclock__bounds_copy *c = &bs->copy[seq & 1];

#define X(f) out->f = __atomic_load_n(&c->f, UCLOCK__FIELD);
		BOUNDS_FIELDS(X)
#undef X
		UCLOCK__READ_FENCE();
		if (__atomic_load_n(&bs->seq, __ATOMIC_RELAXED) == seq)
			return;
	}
}

void uclock__bounds_load(const struct uclock__bounds *bs, struct uclock__bounds_copy *out)
{
	load(bs, out);
}

void uclock__bounds_store(struct uclock__bounds *bs, const struct uclock__bounds_copy *c)
{
	uint32_t seq = __atomic_load_n(&bs->seq, __ATOMIC_RELAXED);

	/* Readers are on copy[seq & 1]: write the other, point them at it,
	 * then bring the first up to date for the next time. */
	for (int pass = 0; pass < 2; pass++) {
		struct uclock__bounds_copy *to = &bs->copy[(seq + 1) & 1];

#define X(f) __atomic_store_n(&to->f, c->f, UCLOCK__STORE);
		BOUNDS_FIELDS(X)
#undef X
		UCLOCK__WRITE_FENCE();
		__atomic_store_n(&bs->seq, ++seq, __ATOMIC_RELEASE);
	}
}

/* ---- the kernel's NTP state ---- */

void uclock__bounds_from_timex(struct uclock__adjtimex_state *state, int ret,
			       int status, long maxerror_us, long esterror_us,
			       int64_t now, uint32_t drift_ppb,
			       struct uclock__bounds_reading *r)
{
	memset(r, 0, sizeof(*r));
	r->as_of_ns = now;
	r->drift_ppb = drift_ppb > UCLOCK__BOUNDS_KERNEL_PPB ? drift_ppb
							     : UCLOCK__BOUNDS_KERNEL_PPB;
	if (ret < 0) {
		/* Not allowed here (seccomp) or failed: nothing new is known. */
		r->source = UCLOCK_BOUNDS_SOURCE_NONE;
		r->status = state->have ? UCLOCK_BOUNDS_FREE_RUNNING : UCLOCK_BOUNDS_UNKNOWN;
		return;
	}
	int synced = ret != TIME_ERROR && !(status & STA_UNSYNC) && maxerror_us >= 0;

	r->source = UCLOCK_BOUNDS_SOURCE_ADJTIMEX;
	r->error_ns = maxerror_us < 0 ? 0 : (int64_t)maxerror_us * 1000;
	r->status = synced ? UCLOCK_BOUNDS_SYNCHRONIZED : UCLOCK_BOUNDS_UNKNOWN;
	/* The kernel only ever grows maxerror (500 us a second) and leaves
	 * esterror and the status alone: a change otherwise is the service's. */
	r->updated = !state->have || maxerror_us < state->maxerror_us ||
		     esterror_us != state->esterror_us || status != state->status;
	state->have = 1;
	state->status = status;
	state->maxerror_us = maxerror_us;
	state->esterror_us = esterror_us;
}

void uclock__bounds_adjtimex(struct uclock__adjtimex_state *state, int64_t now,
			     uint32_t drift_ppb, struct uclock__bounds_reading *r)
{
	struct timex tx;

	memset(&tx, 0, sizeof(tx));  /* modes 0: read only */
	int ret = adjtimex(&tx);

	uclock__bounds_from_timex(state, ret, tx.status, tx.maxerror, tx.esterror, now,
				  drift_ppb, r);
}

/* ---- chronyd ---- */

void uclock__bounds_from_chrony(const struct uclock_chrony_tracking *t, int64_t *ref_seen,
				uint32_t drift_ppb, struct uclock__bounds_reading *r)
{
	double offset = t->current_correction_s < 0 ? -t->current_correction_s
						    : t->current_correction_s;
	double err = offset + t->root_dispersion_s + t->root_delay_s / 2;

	memset(r, 0, sizeof(r[0]));
	r->source = UCLOCK_BOUNDS_SOURCE_CHRONY;
	r->drift_ppb = drift_ppb;
	r->as_of_ns = t->ref_time_ns;
	/* Unsynchronised, or figures no bound can come from (a stratum of 16
	 * or more, no reference time, a dispersion that is not a number):
	 * chronyd has lost its sources. */
	if (t->leap_status == 3 || t->stratum < 1 || t->stratum >= 16 || t->ref_time_ns <= 0 ||
	    !(err >= 0 && err < 1e6) || t->root_dispersion_s < 0 || t->root_delay_s < 0) {
		r->status = UCLOCK_BOUNDS_FREE_RUNNING;
		return;
	}
	r->status = UCLOCK_BOUNDS_SYNCHRONIZED;
	r->error_ns = (int64_t)(err * 1e9);
	if ((double)r->error_ns < err * 1e9)  /* rounded up, without libm */
		r->error_ns++;
	r->updated = t->ref_time_ns != *ref_seen;
	*ref_seen = t->ref_time_ns;
}

/* ---- names and settings ---- */

uint32_t uclock__bounds_parse_ppm(const char *text)
{
	char *end;

	if (!text || !((*text >= '0' && *text <= '9') || *text == '.'))
		return 0;
	errno = 0;
	double ppm = strtod(text, &end);

	if (errno || *end || end == text || !(ppm > 0) || ppm > 100000)
		return 0;
	double ppb = ppm * 1000;

	return ppb < 1 ? 1 : (uint32_t)(ppb + 0.5);
}

uint32_t uclock__bounds_drift_env(char *why, size_t size)
{
	const char *text = secure_getenv("UCLOCK_MAX_DRIFT_PPM");
	uint32_t ppb;

	if (!text || !*text)
		return UCLOCK__BOUNDS_DRIFT_PPB;
	ppb = uclock__bounds_parse_ppm(text);
	if (!ppb && why && size)
		snprintf(why, size, "UCLOCK_MAX_DRIFT_PPM='%s' is not a rate in ppm "
			 "(above 0, at most 100000)", text);
	return ppb;
}

const char *uclock__bounds_status_name(int status)
{
	switch (status) {
	case UCLOCK_BOUNDS_SYNCHRONIZED: return "synchronized";
	case UCLOCK_BOUNDS_FREE_RUNNING: return "free-running";
	case UCLOCK_BOUNDS_DISRUPTED: return "disrupted";
	default: return "unknown";
	}
}

const char *uclock__bounds_source_name(int source)
{
	switch (source) {
	case UCLOCK_BOUNDS_SOURCE_ADJTIMEX: return "adjtimex";
	case UCLOCK_BOUNDS_SOURCE_CHRONY: return "chrony";
	default: return "none";
	}
}

/* ---- this process ---- */

static struct uclock__bounds local;
static int lock;
static pthread_t owner;
static int64_t due_ns;                   /* the figures are read again after */
static struct uclock__adjtimex_state adj;
static uint32_t drift_ppb;               /* resolved at the first refresh */
static int drift_bad;
/* Jumps seen between refreshes, for when no timekeeper runs here (the
 * counter not trusted: kernel answers) to count them. */
static uint64_t jumps;
static int64_t last_real_off, last_boot_off;
#define JUMP_NS 10000                    /* a step of REALTIME or BOOTTIME */

static int64_t kernel_ns(clockid_t clock)
{
	struct timespec ts;

	if (uclock__kernel_gettime(clock, &ts) != 0)
		return 0;
	return uclock__ts_to_ns(&ts);
}

/* REALTIME and BOOTTIME against MONOTONIC: a step of either since the
 * last refresh is a jump (a step of REALTIME, a suspend). */
static void look_for_jumps(void)
{
	int64_t m0 = kernel_ns(CLOCK_MONOTONIC);
	int64_t real = kernel_ns(CLOCK_REALTIME), boot = kernel_ns(CLOCK_BOOTTIME);
	int64_t m1 = kernel_ns(CLOCK_MONOTONIC);
	int64_t mid = m0 / 2 + m1 / 2, slack = JUMP_NS + (m1 - m0);

	if (!m0 || !m1 || !real || !boot)
		return;
	int64_t real_off = real - mid, boot_off = boot - mid;

	if (last_real_off && (llabs(real_off - last_real_off) > slack ||
			      llabs(boot_off - last_boot_off) > slack))
		__atomic_store_n(&jumps, jumps + 1, __ATOMIC_RELAXED);
	last_real_off = real_off;
	last_boot_off = boot_off;
}

static uint64_t live_disruptions(void)
{
	return __atomic_load_n(&uclock__global.disruptions, __ATOMIC_RELAXED) +
	       __atomic_load_n(&jumps, __ATOMIC_RELAXED);
}

static int64_t abs64(int64_t v)
{
	return v < 0 ? (v == INT64_MIN ? INT64_MAX : -v) : v;
}

/* uclock's own error against the kernel's clock (see the top). */
int64_t uclock__bounds_uclock_error(int64_t steering_err_ns)
{
	return add_sat(abs64(steering_err_ns), UCLOCK__BOUNDS_READ_NS);
}

static __attribute__((noinline, cold)) void refresh(int64_t now)
{
	struct uclock__bounds_copy prev, next;
	struct uclock__bounds_reading r;
	uint64_t marker = 0;
	int moved, vm_ok = uclock__bounds_vm_poll(&marker, &moved);

	/* Counted as a jump too, for the readers that compare no marker. */
	if (moved)
		__atomic_store_n(&jumps, jumps + 1, __ATOMIC_RELAXED);
	if (!drift_ppb && !drift_bad) {
		drift_ppb = uclock__bounds_drift_env(NULL, 0);
		drift_bad = !drift_ppb;
	}
	look_for_jumps();
	uclock__bounds_load(&local, &prev);
	if (drift_bad) {
		/* A rate asked for that is not one: no bound, rather than a guess. */
		memset(&r, 0, sizeof(r));
		r.as_of_ns = now;
	} else {
		uclock__bounds_adjtimex(&adj, now, drift_ppb, &r);
	}
	uclock__bounds_next(&prev, &r, now, live_disruptions(), vm_ok, marker,
			    uclock__bounds_uclock_error(__atomic_load_n(&uclock__global.mono_err_ns,
									 __ATOMIC_RELAXED)),
			    &next);
	uclock__bounds_store(&local, &next);
	__atomic_store_n(&due_ns, now + UCLOCK__BOUNDS_REFRESH_NS, __ATOMIC_RELEASE);
}

void uclock__bounds_after_fork(void)
{
	if (__atomic_load_n(&lock, __ATOMIC_RELAXED) && !pthread_equal(owner, pthread_self()))
		__atomic_store_n(&lock, 0, __ATOMIC_RELEASE);
}

/* The figures this process reads: uclockd's, or its own, refreshed when due. */
static const struct uclock__bounds *figures(int64_t now, uint64_t *disruptions)
{
	const struct uclock__page *shared = uclock__attach_page();

	if (shared && __atomic_load_n(&shared->bounds.seq, __ATOMIC_ACQUIRE)) {
		*disruptions = __atomic_load_n(&shared->bounds.disruptions, __ATOMIC_RELAXED);
		return &shared->bounds;
	}
	int64_t due = __atomic_load_n(&due_ns, __ATOMIC_ACQUIRE);

	if ((now >= due || now < due - 2 * UCLOCK__BOUNDS_REFRESH_NS) &&
	    !__atomic_load_n(&lock, __ATOMIC_RELAXED) &&
	    !__atomic_exchange_n(&lock, 1, __ATOMIC_ACQUIRE)) {
		owner = pthread_self();
		refresh(now);
		__atomic_store_n(&lock, 0, __ATOMIC_RELEASE);
	}
	*disruptions = live_disruptions();
	return &local;
}

/* The VM clock device, opened once by whoever writes the figures here
 * (uclock__bounds_vm_poll()); readers use it once it is open. */
static struct uclock_vmclock vm;
static int vm_state;                     /* 0 not tried, 1 open, -1 none */
static uint64_t vm_last;
static int vm_have_last;

int uclock__bounds_vm_marker(uint64_t *marker)
{
	*marker = 0;
	return __atomic_load_n(&vm_state, __ATOMIC_ACQUIRE) == 1 &&
	       uclock__vmclock_marker(&vm, marker) == 0;
}

int uclock__bounds_vm_poll(uint64_t *marker, int *moved)
{
	*moved = 0;
	if (!vm_state) {
		char why[160];

		int ok = uclock__vmclock_open(NULL, &vm, why, sizeof(why)) == 0;
		__atomic_store_n(&vm_state, ok ? 1 : -1, __ATOMIC_RELEASE);
	}
	if (!uclock__bounds_vm_marker(marker))
		return 0;
	*moved = vm_have_last && *marker != vm_last;
	vm_last = *marker;
	vm_have_last = 1;
	return 1;
}

UCLOCK_API int uclock_now_bounds(struct uclock_bounds *b)
{
	struct uclock__bounds_copy c;
	uint64_t disruptions, marker = 0;

	if (!b) {
		errno = EINVAL;
		return -1;
	}
	int64_t now = uclock_real_ns();
	const struct uclock__bounds *bs = figures(now, &disruptions);

	load(bs, &c);
	int vm_ok = (c.flags & UCLOCK__BOUNDS_VM) && uclock__bounds_vm_marker(&marker);

	at(&c, now, disruptions, vm_ok, marker, b);
	return 0;
}
