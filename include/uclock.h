/*
 * uclock.h - a user-space vDSO: the kernel's clocks, read from the CPU's
 * counter with conversion parameters kept in a seqcount-latched page.
 *
 * Slow paths are out of line in libuclock; the fast readers below are
 * static inline so that a call costs little more than reading the counter.
 */
#ifndef UCLOCK_H
#define UCLOCK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/time.h>
#include <sys/types.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(UCLOCK_BUILDING) && defined(__GNUC__)
#define UCLOCK_API __attribute__((visibility("default")))
#else
#define UCLOCK_API
#endif

/* The one version of the project: the library, the tools, the packages
 * (the Makefile reads it from here). */
#define UCLOCK_VERSION_MAJOR 0
#define UCLOCK_VERSION_MINOR 1
#define UCLOCK_VERSION_PATCH 0
#define UCLOCK_VERSION_STRING "0.1.0"

/* ---- POSIX-compatible calls: same results and errno as the kernel. ---- */

/*
 * Declared at file scope so that the prototypes below refer to the caller's
 * struct timespec even where <time.h> does not define it (strict C99).
 */
struct timespec;
UCLOCK_API int uclock_gettime(clockid_t clock, struct timespec *ts);
UCLOCK_API int uclock_getres(clockid_t clock, struct timespec *res);
struct timezone;
UCLOCK_API int uclock_gettimeofday(struct timeval *tv, struct timezone *tz);
UCLOCK_API time_t uclock_time(time_t *t);
UCLOCK_API int uclock_getcpu(unsigned *cpu, unsigned *node);

/* ---- What the library is doing, for diagnostics. ---- */

enum uclock_mode {
	UCLOCK_MODE_UNINIT = 0,  /* nothing read yet */
	UCLOCK_MODE_WARMUP = 1,  /* rate not known yet: kernel answers */
	UCLOCK_MODE_COUNTER = 2, /* time from the counter, steered */
	UCLOCK_MODE_KERNEL = 3,  /* counter not trusted: kernel answers */
	UCLOCK_MODE_SHARED = 4,  /* reading uclockd's shared page */
};

enum uclock_source {
	UCLOCK_SOURCE_NONE = 0,    /* not decided yet */
	UCLOCK_SOURCE_COUNTER = 1, /* the CPU's counter: the TSC on x86-64,
				      CNTVCT_EL0 on arm64 */
	UCLOCK_SOURCE_TSC = UCLOCK_SOURCE_COUNTER, /* its name on x86-64 */
	UCLOCK_SOURCE_KERNEL = 2,  /* pass-through to the kernel */
};

/*
 * Filled by uclock_stat().  The caller sets .size = sizeof(struct
 * uclock_stat) so that the structure can grow without breaking old callers.
 */
struct uclock_stat {
	size_t size;
	int mode;                  /* enum uclock_mode */
	int source;                /* enum uclock_source */
	const char *mode_name;     /* "counter", "warmup", "kernel", ... */
	const char *source_name;   /* "tsc" or "cntvct" (the counter), "kernel" */
	const char *reason;        /* why this source was chosen */
	const char *counter_read;  /* ordered read: "rdtscp", "lfence+rdtsc",
				      "cntvctss", "isb+cntvct" or "none" */
	const char *kernel_path;   /* fallback: "vdso" or "syscall" */
	uint64_t counter_hz;       /* measured counter frequency, 0 if none */
	int64_t interval_ns;       /* update interval */
	int64_t mono_offset_ns;    /* last measured MONOTONIC - kernel */
	int64_t raw_offset_ns;     /* last measured MONOTONIC_RAW - kernel */
	int64_t real_offset_ns;    /* kernel's REALTIME - MONOTONIC */
	int64_t boot_offset_ns;    /* kernel's BOOTTIME - MONOTONIC */
	int64_t tai_offset_ns;     /* kernel's CLOCK_TAI - REALTIME */
	double rate_correction_ppm;/* steering applied to MONOTONIC's rate */
	double kernel_rate_ppm;    /* kernel MONOTONIC rate vs MONOTONIC_RAW */
	uint64_t updates;          /* parameter updates published */
	uint64_t warmups;          /* (re)calibrations, the first included */
	uint64_t discontinuities;  /* suspend, migration, counter reset... */
	uint64_t realtime_steps;   /* kernel REALTIME steps followed */
	int64_t age_ns;            /* age of the parameters now */
	const char *page;          /* shared page attached, or NULL */
	const char *page_reason;   /* why attached, or why not */
	int writer_pid;            /* uclockd's pid when attached */
	uint64_t kernel_readings;  /* kernel clock readings made by updates and
				      by reads answered from the kernel */
	uint64_t update_time_ns;   /* time spent in updates, in this process */
	const char *counter_name;  /* this CPU's counter, used or not: "tsc",
				      "cntvct", or "none" where there is none */
	uint64_t counter_nominal_hz; /* its frequency as the CPU states it
				      (CNTFRQ_EL0 on arm64), 0 if it does not */
};

/* 0 on success, -1 with errno EINVAL if st is NULL or st->size too small. */
UCLOCK_API int uclock_stat(struct uclock_stat *st);

/* ---- Time with its error bound. ---- */

enum uclock_bounds_status {
	UCLOCK_BOUNDS_UNKNOWN = 0,      /* no time service vouches for the clock */
	UCLOCK_BOUNDS_SYNCHRONIZED,     /* the service is in sync; the bound holds */
	UCLOCK_BOUNDS_FREE_RUNNING,     /* it was, and has not updated since: the
					   bound grows from its last figures */
	UCLOCK_BOUNDS_DISRUPTED,        /* the clock jumped (suspend, a step, a
					   counter reset, a VM's migration) since
					   the service last updated */
};

enum uclock_bounds_source {
	UCLOCK_BOUNDS_SOURCE_NONE = 0,  /* nothing could be read */
	UCLOCK_BOUNDS_SOURCE_ADJTIMEX,  /* the kernel's NTP state (maxerror) */
	UCLOCK_BOUNDS_SOURCE_CHRONY,    /* chronyd's tracking, read by uclockd */
};

/*
 * CLOCK_REALTIME as an interval that holds true time: earliest_ns <=
 * true time <= latest_ns, when status is SYNCHRONIZED or FREE_RUNNING.
 * With UNKNOWN or DISRUPTED nothing bounds the error: earliest_ns is
 * INT64_MIN and latest_ns INT64_MAX.  libuclock(7) says what the bound
 * is made of; the parts are below.
 */
struct uclock_bounds {
	int64_t earliest_ns;       /* CLOCK_REALTIME, ns since the epoch */
	int64_t latest_ns;
	int status;                /* enum uclock_bounds_status */
	int source;                /* enum uclock_bounds_source */
	int64_t now_ns;            /* the reading the interval is around */
	int64_t error_ns;          /* now_ns - earliest_ns, latest_ns - now_ns;
				      INT64_MAX when nothing bounds it */
	int64_t service_error_ns;  /* the time service's bound at its last update */
	int64_t drift_ns;          /* what drift can have added since */
	int64_t uclock_error_ns;   /* uclock's own error against the kernel */
	int64_t age_ns;            /* since the service's figures held */
	uint32_t max_drift_ppb;    /* the drift rate assumed, parts per billion */
	uint32_t reserved0;
	int64_t reserved[4];       /* zero; room to grow */
};

/*
 * Fills *b.  0, or -1 with errno EINVAL if b is NULL.  Thread-safe and
 * async-signal-safe; no allocation, no lock waited on.  Attached to
 * uclockd's page it makes no system call; in-process it reads the
 * kernel's NTP state with adjtimex() at most once a second.
 */
UCLOCK_API int uclock_now_bounds(struct uclock_bounds *b);

/* ---- Conversion of captured counter values. ---- */

/*
 * Convert a value of uclock_ticks() to CLOCK_REALTIME, MONOTONIC,
 * MONOTONIC_RAW, BOOTTIME or TAI, in nanoseconds: what a reader of that
 * clock would have read when the value was captured (within 20 ns of
 * it for values up to 10 s old; older ones at the kernel's measured rate,
 * well under 1 ppm of their age).  With the counter not trusted (ticks
 * are then MONOTONIC_RAW ns), the clocks' distance from MONOTONIC_RAW
 * now.  Returns INT64_MIN with errno EINVAL for other clocks.
 */
UCLOCK_API int64_t uclock_ticks_to_ns(clockid_t clock, uint64_t ticks);

/* Wrap-safe comparisons of counter values, as the kernel's time_after(). */
static inline int uclock_ticks_after(uint64_t a, uint64_t b)
{
	return (int64_t)(b - a) < 0;
}

static inline int uclock_ticks_before(uint64_t a, uint64_t b)
{
	return uclock_ticks_after(b, a);
}

/* ------------------------------------------------------------------------
 * Below: the data page and the inline readers.  The layout is internal
 * (names start with uclock__) and may change between versions.
 * ------------------------------------------------------------------------ */

/*
 * One published set of conversion parameters.  Time at counter value t is
 *   base + ((((t - cycle_last) & mask) * mult + frac) >> 32)
 * and the inline readers use it while t - cycle_last is below limit;
 * anything else (stale parameters, a counter behind cycle_last, warm-up,
 * kernel mode, a counter narrower than 64 bits: limit 0) goes to the
 * out-of-line slow path.  First cache line: what MONOTONIC and
 * REALTIME need.
 */
struct uclock__copy {
	uint64_t cycle_last;
	uint64_t mask;
	uint64_t limit;       /* 0 forces the slow path */
	uint64_t mult;        /* ns per tick << 32, MONOTONIC family */
	uint64_t frac;        /* sub-ns part of the MONOTONIC family bases */
	int64_t base_mono;
	int64_t base_real;
	uint32_t mode;        /* enum uclock_mode */
	uint32_t flags;       /* UCLOCK__CHECK: next reader updates */
	/* second cache line */
	uint64_t raw_mult;
	uint64_t raw_frac;
	int64_t base_raw;
	int64_t base_boot;
	int64_t base_tai;
	uint64_t hard;        /* twice the span; the slow path extrapolates
				 up to here */
	int64_t floor_mono;   /* nothing handed out above these... */
	int64_t floor_raw;    /* ...so kernel answers are raised to them */
	/* third cache line: the bases split as a timespec, so that
	 * uclock_gettime() needs no division (REALTIME, MONOTONIC,
	 * MONOTONIC_RAW, BOOTTIME, TAI) */
	int64_t sec[5];
	uint32_t nsec[5];
	uint32_t knots;       /* the page's knots these lines follow: the
				 newest's index | their count << 16 */
	/* fourth: the writer's figures, for uclock_stat() in every reader */
	int64_t mono_err_ns;
	int64_t raw_err_ns;
	int64_t rate_corr_ppb;
	uint64_t updates;
	uint64_t discontinuities;
	uint64_t keep;        /* shared: a process may keep a copy of these
				 lines up to cycle_last + keep (the writer's
				 next ones are not below them until then) */
	uint64_t rate;        /* the kernel's own rates, unsteered (ns << 32 */
	uint64_t raw_rate;    /* per tick): counter values before the anchor */
};

/*
 * A point on earlier lines, for counter values captured before the current
 * lines' anchor: uclock_ticks_to_ns() converts them on the lines readers
 * were on then, going from knot to knot.
 */
struct uclock__knot {
	uint64_t tick;
	int64_t mono;         /* MONOTONIC there, ns */
	int64_t raw;          /* MONOTONIC_RAW */
	int64_t real;         /* REALTIME - MONOTONIC then */
};

#define UCLOCK__KNOTS 104

/*
 * What the time service said, for uclock_now_bounds(): written by one
 * writer (uclockd's, or in-process the caller that refreshes it), read
 * through a latch of two copies as the lines are.
 */
struct uclock__bounds_copy {
	int64_t as_of_ns;         /* REALTIME at which error_ns held; 0: none */
	int64_t error_ns;         /* the service's bound then */
	int64_t uclock_error_ns;  /* uclock's own error against the kernel */
	uint64_t drift_mult;      /* growth of the bound per ns of age, << 64 */
	uint64_t disruptions;     /* the writer's disruption count when the
				     service last updated */
	uint64_t vm_marker;       /* the VM clock's disruption marker then */
	uint32_t status;          /* enum uclock_bounds_status */
	uint32_t source;          /* enum uclock_bounds_source */
	uint32_t drift_ppb;
	uint32_t flags;           /* UCLOCK__BOUNDS_VM: vm_marker is set */
};
#define UCLOCK__BOUNDS_VM 1u

struct uclock__bounds {
	uint32_t seq;             /* readers use copy[seq & 1] */
	uint32_t pad;
	uint64_t disruptions;     /* counted by the page's timekeeper: a REALTIME
				     step, a suspend, a counter discontinuity */
	struct uclock__bounds_copy copy[2];
};

/*
 * The page: a header and the two copies.  In-process it is the library's
 * own; shared, it is a file uclockd keeps and every process maps
 * read-only (UCLOCK__PAGE_BYTES long, so that a reader can check the
 * size before it maps).
 */
struct uclock__page {
	uint32_t magic;
	uint32_t version;
	uint32_t size;
	uint32_t source;      /* enum uclock_source, set once */
	uint32_t seq;         /* latch: readers use uclock__copy_at(seq) */
	uint32_t state;       /* shared: UCLOCK__LIVE while the writer runs */
	int32_t writer_pid;
	uint32_t tsc_cpus;    /* shared: CPUs the writer checked the counter on */
	int64_t timens_monotonic_ns;  /* the writer's time namespace */
	int64_t timens_boottime_ns;
	uint32_t tsc_sync;    /* shared: 1 in step across CPUs, 2 not, 0 unknown */
	uint32_t ordered_read;/* shared: the writer's ordered read, which names
				 its counter too: 1 rdtscp, 2 lfence+rdtsc,
				 3 cntvctss, 4 isb+cntvct */
	int64_t tsc_warp_ns;  /* shared: the largest step back between CPUs seen */
	struct uclock__copy copy[2];
	struct uclock__knot knots[UCLOCK__KNOTS]; /* a ring, 10 s of them */
	struct uclock__bounds bounds;
};

#define UCLOCK__PAGE_BYTES 4096u
#define UCLOCK__LIVE 1u
#define UCLOCK__STOPPED 2u

extern UCLOCK_API const struct uclock__page *uclock__page;
UCLOCK_API int64_t uclock__slow_ns(clockid_t clock);
UCLOCK_API uint64_t uclock__ticks_slow(void);

/*
 * The CPU's counter, read unordered: it may be read a little before the
 * instructions that precede it; the readers tolerate that.  The TSC on
 * x86-64, the generic timer's virtual counter on arm64 (no isb, as a bare
 * rdtsc; the ordered reads are the library's, in src/counter.h).  Other
 * architectures have none here: the library passes every call through to
 * the kernel there, and this is never called.
 */
#if defined(__x86_64__) && defined(__GNUC__)
#define UCLOCK__HAVE_COUNTER 1
static inline uint64_t uclock__counter(void)
{
	return __builtin_ia32_rdtsc();
}
#elif defined(__aarch64__) && defined(__GNUC__)
#define UCLOCK__HAVE_COUNTER 1
static inline uint64_t uclock__counter(void)
{
	uint64_t ticks;

	/* volatile: two reads are two reads, never merged or hoisted. */
	__asm__ volatile("mrs %0, cntvct_el0" : "=r"(ticks));
	return ticks;
}
#else
#define UCLOCK__HAVE_COUNTER 0
static inline uint64_t uclock__counter(void)
{
	return 0;
}
#endif

/*
 * The latch is read with relaxed loads and an acquire fence, written with
 * a release fence and relaxed stores.  ThreadSanitizer does not model
 * fences, so under it the same orderings are carried by the accesses
 * themselves (acquire loads, release stores): stronger, and visible to it.
 */
#if defined(__SANITIZE_THREAD__)
#define UCLOCK__TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UCLOCK__TSAN 1
#endif
#endif
#ifdef UCLOCK__TSAN
#define UCLOCK__FIELD __ATOMIC_ACQUIRE
#define UCLOCK__STORE __ATOMIC_RELEASE
#define UCLOCK__READ_FENCE() ((void)0)
#define UCLOCK__WRITE_FENCE() ((void)0)
#else
#define UCLOCK__FIELD __ATOMIC_RELAXED
#define UCLOCK__STORE __ATOMIC_RELAXED
#define UCLOCK__READ_FENCE() __atomic_thread_fence(__ATOMIC_ACQUIRE)
#define UCLOCK__WRITE_FENCE() __atomic_thread_fence(__ATOMIC_RELEASE)
#endif

#if defined(__GNUC__)
#define UCLOCK__LIKELY(x) __builtin_expect(!!(x), 1)
#define UCLOCK__UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define UCLOCK__LIKELY(x) (x)
#define UCLOCK__UNLIKELY(x) (x)
#endif

/*
 * seq advances by the size of a copy at each flip, so that seq & that size
 * is the byte offset of the copy readers use: one AND on the read path.
 */
#define UCLOCK__SEQ_STEP 256u
#define UCLOCK__CHECK 1u

static inline const struct uclock__copy *
uclock__copy_at(const struct uclock__page *p, uint32_t seq)
{
	return (const struct uclock__copy *)(const void *)((const char *)p->copy +
							    (seq & UCLOCK__SEQ_STEP));
}

/*
 * Fixed-point line evaluation.  The 64x64 multiply is done in 128 bits so
 * that no delta the readers accept can overflow it.
 */
static inline int64_t uclock__line(int64_t base, uint64_t frac, uint64_t mult,
				   uint64_t delta)
{
#if defined(__SIZEOF_INT128__)
	__extension__ typedef unsigned __int128 u128;
	return base + (int64_t)((((u128)delta * mult) + frac) >> 32);
#else
	uint64_t lo = (delta & 0xffffffffu) * mult;
	uint64_t hi = (delta >> 32) * mult;
	uint64_t low_sum = (lo & 0xffffffffu) + (frac & 0xffffffffu);
	return base + (int64_t)(hi + (lo >> 32) + (frac >> 32) +
				(low_sum >> 32));
#endif
}

/*
 * The same for a delta below the copy's limit: the writer keeps
 * limit * mult + frac within 64 bits, so one 64-bit multiply does (its
 * latency is on every reader's critical path; the 128-bit one is longer).
 */
static inline int64_t uclock__line_near(int64_t base, uint64_t frac, uint64_t mult,
					uint64_t delta)
{
	return base + (int64_t)((delta * mult + frac) >> 32);
}

/*
 * The read path for the two hottest clocks.  The latch gives a consistent
 * copy without waiting: the writer only ever writes the copy readers are
 * not told to use, then flips seq.  Acquire on seq orders the copy's loads
 * after it; the acquire fence orders them before the re-check.
 */
/* The kernel's ids, spelled out so the header needs no feature macros. */
#define UCLOCK__REALTIME 0
#define UCLOCK__MONOTONIC 1

static inline int64_t uclock__read_fast(clockid_t clock)
{
	const struct uclock__page *p = __atomic_load_n(&uclock__page,
						       __ATOMIC_ACQUIRE);
	for (;;) {
		uint32_t seq = __atomic_load_n(&p->seq, __ATOMIC_ACQUIRE);
		const struct uclock__copy *c = uclock__copy_at(p, seq);
		uint64_t last = __atomic_load_n(&c->cycle_last, UCLOCK__FIELD);
		uint64_t limit = __atomic_load_n(&c->limit, UCLOCK__FIELD);
		uint64_t mult = __atomic_load_n(&c->mult, UCLOCK__FIELD);
		uint64_t frac = __atomic_load_n(&c->frac, UCLOCK__FIELD);
		int64_t base = clock == UCLOCK__REALTIME
				       ? __atomic_load_n(&c->base_real, UCLOCK__FIELD)
				       : __atomic_load_n(&c->base_mono, UCLOCK__FIELD);
		uint64_t delta = uclock__counter() - last;
		UCLOCK__READ_FENCE();
		if (__atomic_load_n(&p->seq, __ATOMIC_RELAXED) != seq)
			continue;
		if (UCLOCK__LIKELY(delta < limit))
			return uclock__line_near(base, frac, mult, delta);
		return uclock__slow_ns(clock);
	}
}

/*
 * CLOCK_MONOTONIC in nanoseconds; never goes backwards within a thread.
 * The counter read is not ordered after earlier instructions (as a bare
 * rdtsc, or an mrs of CNTVCT_EL0 without isb): to order readings across
 * threads, use uclock_gettime().
 */
static inline int64_t uclock_mono_ns(void)
{
	return uclock__read_fast(UCLOCK__MONOTONIC);
}

/* CLOCK_REALTIME in nanoseconds since the epoch. */
static inline int64_t uclock_real_ns(void)
{
	return uclock__read_fast(UCLOCK__REALTIME);
}

/*
 * The raw counter, for capture-now-convert-later with uclock_ticks_to_ns().
 * When the counter is not trusted, the kernel's MONOTONIC_RAW in ns.
 */
static inline uint64_t uclock_ticks(void)
{
	const struct uclock__page *p = __atomic_load_n(&uclock__page,
						       __ATOMIC_ACQUIRE);
	if (UCLOCK__LIKELY(__atomic_load_n(&p->source, __ATOMIC_RELAXED) ==
			   UCLOCK_SOURCE_COUNTER))
		return uclock__counter();
	return uclock__ticks_slow();
}

#ifdef __cplusplus
}
#endif

#endif /* UCLOCK_H */
