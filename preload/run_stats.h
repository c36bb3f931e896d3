/*
 * The counters `uclock run --stats` shares with the preloaded shim in every
 * process of the run: a header line, then one page of counters, striped so
 * that threads rarely share a cache line.
 *
 * `uclock run` creates the object as a memfd, writes the header, seals it
 * against shrinking and growing (and against changing the seals), and puts
 * it on an inherited descriptor named, with the object's identity, by
 * UCLOCK_RUN_STATS=FD:DEV:INO (decimal st_dev and st_ino).  The shim maps
 * it only when that descriptor is still this object (see
 * uclock__run_stats_parse below and run_stats() in uclock_preload.c).
 */
#ifndef UCLOCK_RUN_STATS_H
#define UCLOCK_RUN_STATS_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#define UCLOCK_RUN_STATS_ENV "UCLOCK_RUN_STATS"
#define UCLOCK_RUN_STRIPES 64
/* "uclkrun\0", little-endian, and the layout's version. */
#define UCLOCK_RUN_STATS_MAGIC 0x006e75726b6c6375ull
#define UCLOCK_RUN_STATS_VERSION 2u
/* Where `uclock run` puts the descriptor: above those programs use. */
#define UCLOCK_RUN_STATS_MIN_FD 100

struct uclock_run_stats {
	/* Written by `uclock run` before it seals the object; read only. */
	uint64_t magic;		/* UCLOCK_RUN_STATS_MAGIC */
	uint32_t version;	/* UCLOCK_RUN_STATS_VERSION */
	uint32_t size;		/* sizeof(struct uclock_run_stats) */
	char header_pad[48];
	struct {
		uint64_t counter;    /* from uclock's lines (own, or uclockd's) */
		uint64_t vdso;       /* by the kernel's vDSO, in user space */
		uint64_t syscall;    /* by a system call */
		uint64_t calibrating; /* of the last two: uclock still warming up */
		char pad[32];
	} stripe[UCLOCK_RUN_STRIPES];
};

/* Where a call was answered. */
enum uclock_run_answer { UCLOCK_RUN_COUNTER, UCLOCK_RUN_VDSO, UCLOCK_RUN_SYSCALL };

struct uclock_run_totals {
	uint64_t counter, vdso, syscall, calibrating;
};

_Static_assert(offsetof(struct uclock_run_stats, stripe) == 64,
	       "the stripes start on their own cache line");
_Static_assert(sizeof(struct uclock_run_stats) == 64 + 64 * UCLOCK_RUN_STRIPES,
	       "one line per stripe");

/* The stripe of the calling thread: the address of one of its own
 * thread-local variables, hashed. */
static inline void uclock__run_count(struct uclock_run_stats *s, const void *tls,
				     enum uclock_run_answer answer, int calibrating)
{
	uint32_t h = (uint32_t)((uintptr_t)tls >> 6) * 0x9e3779b1u;
	unsigned i = h >> (32 - 6);
	uint64_t *n = answer == UCLOCK_RUN_COUNTER ? &s->stripe[i].counter
		      : answer == UCLOCK_RUN_VDSO  ? &s->stripe[i].vdso
						   : &s->stripe[i].syscall;

	__atomic_fetch_add(n, 1, __ATOMIC_RELAXED);
	if (calibrating)
		__atomic_fetch_add(&s->stripe[i].calibrating, 1, __ATOMIC_RELAXED);
}

static inline void uclock__run_totals(const struct uclock_run_stats *s,
				      struct uclock_run_totals *t)
{
	*t = (struct uclock_run_totals){0, 0, 0, 0};
	for (int i = 0; i < UCLOCK_RUN_STRIPES; i++) {
		t->counter += __atomic_load_n(&s->stripe[i].counter, __ATOMIC_RELAXED);
		t->vdso += __atomic_load_n(&s->stripe[i].vdso, __ATOMIC_RELAXED);
		t->syscall += __atomic_load_n(&s->stripe[i].syscall, __ATOMIC_RELAXED);
		t->calibrating += __atomic_load_n(&s->stripe[i].calibrating, __ATOMIC_RELAXED);
	}
}

/* One decimal field of at most max, ended by end: digits only (no sign, no
 * space, not empty), no overflow.  The position after end, or NULL. */
static inline const char *uclock__run_field(const char *p, char end, uint64_t max,
					    uint64_t *out)
{
	uint64_t v = 0;

	if (*p < '0' || *p > '9')
		return NULL;
	for (; *p >= '0' && *p <= '9'; p++) {
		unsigned d = (unsigned)(*p - '0');
		if (v > (max - d) / 10)
			return NULL;
		v = v * 10 + d;
	}
	if (*p != end)
		return NULL;
	*out = v;
	return p + 1;
}

/* UCLOCK_RUN_STATS's value, "FD:DEV:INO", strictly: 0 if it is well
 * formed.  No allocation, no library call: the shim runs it early. */
static inline int uclock__run_stats_parse(const char *text, int *fd, uint64_t *dev,
					  uint64_t *ino)
{
	uint64_t f;

	if (!text || !(text = uclock__run_field(text, ':', INT_MAX, &f)) ||
	    !(text = uclock__run_field(text, ':', UINT64_MAX, dev)) ||
	    !uclock__run_field(text, '\0', UINT64_MAX, ino))
		return -1;
	*fd = (int)f;
	return 0;
}

#endif
