/*
 * The seqcount latch over the two parameter copies.
 *
 * The writer only ever writes the copy that readers are not pointed at and
 * then flips seq, so a reader (a signal handler that interrupted the writer,
 * a child forked mid-update) always has a complete copy and never waits.
 * A reader that raced a flip sees seq changed and reads again.
 */
#include "latch.h"

_Static_assert(sizeof(struct uclock__copy) == UCLOCK__SEQ_STEP,
	       "seq steps by the size of a copy");

#define COPY_FIELDS(X)                                                       \
	X(cycle_last) X(mask) X(limit) X(mult) X(frac) X(base_mono)          \
	X(base_real) X(mode) X(flags) X(raw_mult) X(raw_frac) X(base_raw)     \
	X(base_boot) X(base_tai) X(hard) X(floor_mono) X(floor_raw)       \
	X(sec[0]) X(sec[1]) X(sec[2]) X(sec[3]) X(sec[4])                    \
	X(nsec[0]) X(nsec[1]) X(nsec[2]) X(nsec[3]) X(nsec[4]) X(knots)      \
	X(mono_err_ns) X(raw_err_ns) X(rate_corr_ppb) X(updates)             \
	X(discontinuities) X(keep) X(rate) X(raw_rate)

/* Relaxed atomics: a stale reader may be reading the copy being written;
 * it will discard what it read, but the accesses must not tear. */
static void load_fields(const struct uclock__copy *c, struct uclock__copy *out)
{
#define X(f) out->f = __atomic_load_n(&c->f, UCLOCK__FIELD);
	COPY_FIELDS(X)
#undef X
}

static uint64_t no_counter(void *ctx)
{
	(void)ctx;
	return 0;
}

uint32_t uclock__copy_load(const struct uclock__page *page,
			   struct uclock__copy *out)
{
	uint64_t unused;

	return uclock__copy_load_at(page, out, no_counter, NULL, &unused);
}

uint32_t uclock__copy_load_at(const struct uclock__page *page,
			      struct uclock__copy *out,
			      uint64_t (*counter)(void *), void *ctx,
			      uint64_t *now)
{
	for (;;) {
		uint32_t seq = __atomic_load_n(&page->seq, __ATOMIC_ACQUIRE);
		load_fields(uclock__copy_at(page, seq), out);
		/* The counter read is ordered (see counter.h), so it cannot
		 * be satisfied before the loads above, nor (arm64) the
		 * re-check after the fence before it. */
		*now = counter(ctx);
		UCLOCK__READ_FENCE();
		if (__atomic_load_n(&page->seq, __ATOMIC_RELAXED) == seq)
			return seq;
	}
}

void uclock__copy_load_one(const struct uclock__page *page, uint32_t seq,
			   struct uclock__copy *out, uint64_t (*counter)(void *),
			   void *ctx, uint64_t *now)
{
	load_fields(uclock__copy_at(page, seq), out);
	*now = counter(ctx);
	UCLOCK__READ_FENCE();
}

int uclock__seq_changed(const struct uclock__page *page, uint32_t seq)
{
	UCLOCK__READ_FENCE();
	return __atomic_load_n(&page->seq, __ATOMIC_RELAXED) != seq;
}

void uclock__copy_stage(struct uclock__page *page,
			const struct uclock__copy *next)
{
	uint32_t seq = __atomic_load_n(&page->seq, __ATOMIC_RELAXED);
	struct uclock__copy *dst = (struct uclock__copy *)uclock__copy_at(
		page, seq + UCLOCK__SEQ_STEP);

	/* Orders the previous flip before these stores: a reader still on
	 * the old seq that observes any of them then also sees seq moved. */
	UCLOCK__WRITE_FENCE();
#define X(f) __atomic_store_n(&dst->f, next->f, UCLOCK__STORE);
	COPY_FIELDS(X)
#undef X
}

void uclock__copy_raise_limit(struct uclock__page *page, uint32_t seq, uint64_t limit)
{
	struct uclock__copy *c = (struct uclock__copy *)uclock__copy_at(page, seq);

	__atomic_store_n(&c->limit, limit, UCLOCK__STORE);
}

void uclock__copy_flip(struct uclock__page *page)
{
	uint32_t seq = __atomic_load_n(&page->seq, __ATOMIC_RELAXED);

	/* Release: the staged copy is complete before readers are sent to it. */
	__atomic_store_n(&page->seq, seq + UCLOCK__SEQ_STEP, __ATOMIC_RELEASE);
}
