/*
 * The counters `uclock run --stats` shares with the preloaded shim in every
 * process of the run: one page, striped so that threads rarely share a
 * cache line.
 */
#ifndef UCLOCK_RUN_STATS_H
#define UCLOCK_RUN_STATS_H

#include <stdint.h>

#define UCLOCK_RUN_STRIPES 64

struct uclock_run_stats {
	struct {
		uint64_t user_space;
		uint64_t kernel;
		char pad[48];
	} stripe[UCLOCK_RUN_STRIPES];
};

/* The stripe of the calling thread: the address of one of its own
 * thread-local variables, hashed. */
static inline void uclock__run_count(struct uclock_run_stats *s, const void *tls,
				     int user_space)
{
	uint32_t h = (uint32_t)((uintptr_t)tls >> 6) * 0x9e3779b1u;
	unsigned i = h >> (32 - 6);

	__atomic_fetch_add(user_space ? &s->stripe[i].user_space : &s->stripe[i].kernel,
			   1, __ATOMIC_RELAXED);
}

static inline void uclock__run_totals(const struct uclock_run_stats *s,
				      uint64_t *user_space, uint64_t *kernel)
{
	*user_space = *kernel = 0;
	for (int i = 0; i < UCLOCK_RUN_STRIPES; i++) {
		*user_space += __atomic_load_n(&s->stripe[i].user_space, __ATOMIC_RELAXED);
		*kernel += __atomic_load_n(&s->stripe[i].kernel, __ATOMIC_RELAXED);
	}
}

#endif
