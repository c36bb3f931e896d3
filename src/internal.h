/*
 * Library-internal interfaces.  Nothing here is exported from the shared
 * object; the static archive carries the symbols for the tools and tests.
 */
#ifndef UCLOCK_INTERNAL_H
#define UCLOCK_INTERNAL_H

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "latch.h"
#include "uclock.h"

#define UCLOCK_PAGE_MAGIC 0x4b4c4355u /* "UCLK" */
#define UCLOCK_PAGE_VERSION 3u

#define NSEC_PER_SEC 1000000000LL
/* ns << 32 per tick of a counter that can be right: 1 kHz .. 100 GHz. */
#define UCLOCK__MULT_MIN (((uint64_t)1 << 32) / 100)
#define UCLOCK__MULT_MAX (((uint64_t)1 << 32) * 1000000)

typedef __int128 i128;              /* fixed-point ns << 32 in the writer */
typedef unsigned __int128 u128;

static inline int64_t uclock__ts_to_ns(const struct timespec *ts)
{
	return (int64_t)ts->tv_sec * NSEC_PER_SEC + ts->tv_nsec;
}

/* tv_nsec always in [0, 1e9), also before the epoch. */
static inline void uclock__ns_to_ts(int64_t ns, struct timespec *ts)
{
	if (__builtin_expect(ns >= 0, 1)) {
		/* Unsigned division by a constant: a multiply and a shift. */
		uint64_t sec = (uint64_t)ns / NSEC_PER_SEC;

		ts->tv_sec = (time_t)sec;
		ts->tv_nsec = (long)((uint64_t)ns - sec * NSEC_PER_SEC);
		return;
	}
	int64_t sec = ns / NSEC_PER_SEC, rem = ns % NSEC_PER_SEC;

	if (rem < 0) {
		rem += NSEC_PER_SEC;
		sec--;
	}
	ts->tv_sec = (time_t)sec;
	ts->tv_nsec = (long)rem;
}

/* Served clocks, as slots of a copy. */
enum slot { SLOT_REAL, SLOT_MONO, SLOT_RAW, SLOT_BOOT, SLOT_TAI, SLOT_NONE };

static inline enum slot slot_of(clockid_t clock)
{
	switch (clock) {
	case CLOCK_REALTIME: return SLOT_REAL;
	case CLOCK_MONOTONIC: return SLOT_MONO;
	case CLOCK_MONOTONIC_RAW: return SLOT_RAW;
	case CLOCK_BOOTTIME: return SLOT_BOOT;
	case CLOCK_TAI: return SLOT_TAI;
	default: return SLOT_NONE;
	}
}

static inline clockid_t clock_of(enum slot slot)
{
	static const clockid_t clocks[] = {
		[SLOT_REAL] = CLOCK_REALTIME, [SLOT_MONO] = CLOCK_MONOTONIC,
		[SLOT_RAW] = CLOCK_MONOTONIC_RAW, [SLOT_BOOT] = CLOCK_BOOTTIME,
		[SLOT_TAI] = CLOCK_TAI,
	};
	return clocks[slot];
}

/*
 * What the timekeeper is driven by: a counter (ordered read) and the
 * reference clocks.  The real ones are the TSC and the kernel; the tests
 * plug in a simulated counter and simulated kernel clocks.
 */
struct uclock_tk_ops {
	uint64_t (*counter)(void *ctx);
	/* 0, or -1 with errno; like clock_gettime(2). */
	int (*clock)(void *ctx, clockid_t clock, struct timespec *ts);
	void *ctx;
	uint64_t mask;
	/* Optional: called at the writer's points of interest, so that tests
	 * can run a reader there (what another thread could do). */
	void (*point)(void *ctx);
};

struct tk_sample {
	uint64_t tick;   /* bracket midpoint */
	uint64_t c0;     /* bracket start: the kernel read no earlier */
	uint64_t half;   /* half the bracket width, ticks */
	int64_t ns;      /* kernel reading */
};

/* Samples kept for measuring the kernel's rate over a long baseline. */
#define TK_HISTORY 8
struct tk_history {
	struct tk_sample s[TK_HISTORY];
	int n;
};

struct tk_offsets {
	int64_t real;    /* REALTIME - MONOTONIC */
	int64_t boot;    /* BOOTTIME - MONOTONIC */
	int64_t tai;     /* CLOCK_TAI - REALTIME */
};

struct uclock_tk {
	struct uclock__page *page;
	struct uclock__page *backup; /* NULL, or kept equal to page (a child's
					page is wiped: see clock.c) */
	struct uclock_tk_ops ops;
	int64_t interval_ns;
	int interval_fixed;         /* asked for: not stretched (see interval()) */
	int64_t steady_ns;          /* the interval while the rate holds... */
	int64_t steady_max_ns;      /* ...up to this */
	int64_t keep_ns;            /* the writer's promise: copies' keep */
	int64_t span_ns;            /* this interval: shorter after an anchor */

	/* The update lock: taken with a CAS, never waited on. */
	int lock;
	pthread_t owner;

	/* Writer state, touched only under the lock. */
	int have_prev;
	struct tk_sample prev_mono, prev_raw;
	struct tk_history mono_hist, raw_hist;
	struct tk_sample warm_mono, warm_raw;
	int have_warm;
	uint64_t rate, raw_rate;    /* kernel ns << 32 per tick, estimated */
	uint64_t typical_half[2];   /* usual bracket half-width, MONO and RAW */
	int64_t call_ns;            /* usual cost of a kernel reading */
	int64_t update_ns;          /* usual cost of an update */
	struct tk_offsets off;
	int have_off;

	/* A page to converge to before handing readers over to it. */
	const struct uclock__page *target;
	int target_close;           /* updates in a row within 3 ns of it */

	/* Read by the slow path without the lock. */
	int fallback_seen;          /* a reader took the kernel's answer */
	uint32_t staged_seq;        /* seq of a staged copy readers may use */
	int64_t warm_due[SLOT_NONE];/* each kernel clock's value when warm-up
				       may end */
	uint64_t window_ticks;      /* publish must follow 'now' within this */
	uint64_t sample_age_ticks;  /* samples older than this are taken again */

	/* The counter given up on (see uclock__tk_give_up()). */
	int64_t jumps[3];           /* kernel MONOTONIC at the last counter jumps */
	int njumps;
	int gave_up;
	char gave_up_why[160];

	/* Statistics, written under the lock, read relaxed. */
	uint64_t updates, warmups, discontinuities, realtime_steps;
	uint64_t disruptions;       /* REALTIME steps, suspends, discontinuities:
				       what voids a time service's bound */
	uint64_t staged_reads, kernel_fallbacks;
	uint64_t kernel_readings;   /* by the timekeeper and readers */
	uint64_t update_ns_total;   /* time spent in updates */
	int64_t mono_err_ns, raw_err_ns;
	int64_t rate_corr_ppb;
};

/* The timekeeper (its files: see timekeeper_internal.h). */
/* timekeeper.c: the update, its lock, publishing. */
void uclock__tk_init(struct uclock_tk *tk, struct uclock__page *page,
		     const struct uclock_tk_ops *ops, int64_t interval_ns);
void uclock__tk_set_kernel_mode(struct uclock_tk *tk);
int uclock__tk_update(struct uclock_tk *tk);
int uclock__tk_try_update(struct uclock_tk *tk);
int uclock__tk_update_offsets(struct uclock_tk *tk);
void uclock__tk_publish(struct uclock_tk *tk, const struct uclock__copy *next);
int uclock__tk_take(struct uclock_tk *tk);
void uclock__tk_give(struct uclock_tk *tk);
void uclock__tk_after_fork(struct uclock_tk *tk);
/* steering.c */
int64_t uclock__tk_interval(const struct uclock_tk *tk);
/* warmup.c: hand-overs. */
enum uclock_floored { UCLOCK_LEAVING, UCLOCK_TAKING_OVER, UCLOCK_ENDING };
void uclock__tk_adopt(struct uclock_tk *tk, const struct uclock__copy *from,
		      enum uclock_floored how);
void uclock__tk_end(struct uclock_tk *tk);
void uclock__tk_give_up(struct uclock_tk *tk, const char *why);
const char *uclock__tk_gave_up(const struct uclock_tk *tk);
/* slow_read.c: the readers' slow path. */
int64_t uclock__tk_read(struct uclock_tk *tk, enum slot slot);
int64_t uclock__tk_ticks_to_ns(struct uclock_tk *tk, enum slot slot,
			       uint64_t ticks);
int64_t uclock__copy_ticks_to_ns(const struct uclock__page *p, const struct uclock__copy *c,
				 enum slot slot, uint64_t ticks);
/* A served clock's time at 'delta' ticks from a copy's anchor. */
int64_t uclock__copy_value(const struct uclock__copy *c, enum slot slot,
			   uint64_t delta);
int64_t uclock__copy_floor(const struct uclock__copy *c, enum slot slot);
int64_t uclock__floored(int64_t k, int64_t floor, enum slot slot);

/* past.c: counter values from before the current lines. */
uint32_t uclock__knot_add(struct uclock__page *page, const struct uclock__copy *cur,
			  const struct uclock__copy *next);
int64_t uclock__past_ns(const struct uclock__page *p, const struct uclock__copy *c,
			enum slot slot, uint64_t ticks);

/* shared.c: the shared page, as a reader sees it. */
int uclock__timens_offsets(int64_t *monotonic, int64_t *boottime);
int uclock__copy_plausible(const struct uclock__copy *c);
int uclock__shared_usable(const struct uclock__page *page, struct uclock__copy *c,
			  uint64_t *now, uint64_t (*counter)(void *), void *ctx,
			  uint32_t *seq);
int uclock__copy_matches_kernel(const struct uclock__copy *c,
				uint64_t (*counter)(void *), void *ctx);
const struct uclock__page *uclock__shared_open(const char *path, char *why,
					       size_t size);
int uclock__trusted_dir(const char *dir, const char *page, char *why, size_t size);
void uclock__shared_unmap(const struct uclock__page *page);


/* kernel.c: the kernel's own answers, through its vDSO when it has one. */
struct uclock_kernel {
	int (*clock_gettime)(clockid_t, struct timespec *);
	int (*gettimeofday)(struct timeval *, struct timezone *);
	time_t (*time)(time_t *);
	int (*clock_getres)(clockid_t, struct timespec *);
	int (*getcpu)(unsigned *, unsigned *, void *);
};
void uclock__kernel_init(void);
extern struct uclock_kernel uclock__kernel;
int uclock__kernel_gettime_slow(clockid_t clock, struct timespec *ts);
time_t uclock__kernel_time_slow(time_t *t);
int uclock__kernel_gettimeofday(struct timeval *tv, struct timezone *tz);

/* The vDSO returns the system call's result: -errno on failure. */
static inline int uclock__vdso_result(long r)
{
	if (__builtin_expect(r < 0 && r > -4096, 0)) {
		errno = (int)-r;
		return -1;
	}
	return (int)r;
}

/* Inline: on the path of the coarse clocks and time(), one load and an
 * indirect call, as glibc's own wrappers. */
static inline int uclock__kernel_gettime(clockid_t clock, struct timespec *ts)
{
	int (*fn)(clockid_t, struct timespec *) =
		__atomic_load_n(&uclock__kernel.clock_gettime, __ATOMIC_RELAXED);

	/* NULL goes to the kernel itself, which answers EFAULT or EINVAL;
	 * the vDSO would store through it. */
	if (__builtin_expect(fn != NULL && ts != NULL, 1))
		return uclock__vdso_result(fn(clock, ts));
	return uclock__kernel_gettime_slow(clock, ts);
}

static inline time_t uclock__kernel_time(time_t *t)
{
	time_t (*fn)(time_t *) = __atomic_load_n(&uclock__kernel.time, __ATOMIC_RELAXED);

	if (__builtin_expect(fn != NULL, 1))
		return fn(t);
	return uclock__kernel_time_slow(t);
}
int uclock__kernel_getres(clockid_t clock, struct timespec *res);
int uclock__kernel_getcpu(unsigned *cpu, unsigned *node);
int uclock__kernel_has_vdso(void);
/* The vDSO's clock_gettime as mapped, whatever UCLOCK_VDSO says; NULL if
 * there is none.  And the system call itself. */
int (*uclock__kernel_vdso_gettime(void))(clockid_t, struct timespec *);
int uclock__kernel_syscall_gettime(clockid_t clock, struct timespec *ts);

#include "elf_reader.h"

#include "counter.h"

/* tsc.c: the x86 time-stamp counter, as CPUID describes it. */
enum uclock_hypervisor {
	UCLOCK_HV_NONE, UCLOCK_HV_KVM, UCLOCK_HV_XEN, UCLOCK_HV_HYPERV,
	UCLOCK_HV_VMWARE, UCLOCK_HV_OTHER,
};

struct uclock_tsc_features {
	int present;        /* rdtsc usable at all */
	int invariant;      /* CPUID 0x80000007 EDX bit 8 */
	int rdtscp;         /* CPUID 0x80000001 EDX bit 27 */
	int hypervisor;     /* CPUID 1 ECX bit 31 */
	enum uclock_hypervisor hypervisor_vendor; /* CPUID 0x40000000 */
	int kvm_stable;     /* CPUID 0x40000001 EAX bit 24 (KVM) */
};
void uclock__tsc_features(struct uclock_tsc_features *f);
void uclock__tsc_features_full(struct uclock_tsc_features *f, int with_hypervisor);
int uclock__tsc_enabled(void);
int uclock__tsc_prefer_rdtscp(void);

/* cntvct.c: the arm64 generic timer's virtual counter. */
struct uclock_cntvct_features {
	uint64_t frequency_hz;  /* CNTFRQ_EL0, as the firmware set it */
	int self_synchronized;  /* HWCAP2_ECV: CNTVCTSS_EL0 can be read */
};
void uclock__cntvct_features(struct uclock_cntvct_features *f);

/* counter.c: this machine's counter, whichever it is. */
uint64_t uclock__read_self_ordered(void *ctx);
uint64_t uclock__read_fenced(void *ctx);
int uclock__counter_enabled(void);
int uclock__counter_choose(void);
const char *uclock__ordered_read_name(int read);
uint64_t uclock__counter_nominal_hz(void);
uint64_t uclock__counter_cost(void (*fn)(void), int rounds, int calls);
int uclock__counter_slower_than_kernel(void);
int uclock__vdso_in_user_space(void);

/* tsc_sync.c: whether the counter is in step across CPUs (uclockd checks). */
struct uclock_tsc_sync {
	int cpus;           /* online CPUs */
	int checked;        /* CPUs a thread ran on */
	int in_step;        /* 1 all checked, none behind another; 0 one was;
			       -1 not all could be checked */
	int64_t worst_ns;   /* the largest step back seen between CPUs */
	uint64_t readings;
};
int uclock__tsc_sync_check(int64_t duration_ns, struct uclock_tsc_sync *out);

/* trust.c: whether the counter may serve time here, and why. */
enum uclock_tsc_sync_verdict { UCLOCK_SYNC_UNKNOWN, UCLOCK_SYNC_YES, UCLOCK_SYNC_NO };

struct uclock_trust_facts {
	const char *source_env;     /* UCLOCK_SOURCE, NULL if unset or empty */
	const char *bad_interval;   /* a refused UCLOCK_INTERVAL_US, or NULL */
	enum uclock_counter_kind counter; /* which policy: the TSC's, CNTVCT's */
	int counter_usable;         /* the counter can be read here */
	int counter_slower;         /* than the kernel's clock: emulated, trapped */
	char clocksource[32];       /* the kernel's, "" if unreadable */
	enum uclock_tsc_sync_verdict sync; /* uclockd's check across CPUs */
	int sync_cpus;
	int64_t sync_warp_ns;
	int page_pid;               /* uclockd keeps a page from the counter that
				       this process can read now: its pid */
	int page_read;              /* its ordered read (enum uclock_ordered_read) */
	/* x86-64 */
	int invariant;              /* the CPU says so */
	int available_known;        /* available_clocksource was read... */
	int tsc_listed;             /* ...and lists tsc */
	enum uclock_hypervisor hypervisor;
	int kvm_stable;             /* KVM keeps the TSC stable across vCPUs */
	int tsc_reliable;           /* the kernel's tsc_reliable flag */
	/* arm64 */
	int vdso_user_space;        /* the kernel's vDSO answers clock_gettime
				       in user space: 1, with a system call: 0,
				       no vDSO: -1 */
};
int uclock__trust_decide(const struct uclock_trust_facts *f, char *why, size_t size);
void uclock__trust_gather(struct uclock_trust_facts *f);

/* attach.c: the process on uclockd's shared page, or not. */
void uclock__attach_look(struct uclock_trust_facts *facts);
void uclock__attach_init(struct uclock_tk *tk);
void uclock__attach_drop(void);
extern int uclock__attached_flag;

static inline int uclock__attached(void)
{
	return __atomic_load_n(&uclock__attached_flag, __ATOMIC_ACQUIRE);
}
int64_t uclock__shared_slot(struct uclock_tk *tk, enum slot slot);
void uclock__reattach_maybe(struct uclock_tk *tk);
const char *uclock__attach_path(void);
const char *uclock__attach_reason(void);
int uclock__attach_writer(void);
const struct uclock__page *uclock__attach_page(void);

/* clock.c: the process-wide instance. */
extern struct uclock_tk uclock__global;
int uclock__global_ready(void);
void uclock__counter_ops(struct uclock_tk_ops *ops);
int uclock__counter_pick(void);
const char *uclock__global_reason(void);
const char *uclock__global_counter_read(void);

/* vmclock.c: the VM clock device's disruption marker (Linux 6.13+). */
struct uclock_vmclock {
	const volatile void *abi;   /* struct vmclock_abi, mapped read-only */
	size_t size;                /* the mapping's length */
	int file;                   /* a regular file's descriptor, checked for
				       truncation at each read; -1 for a device */
};
/* Maps 'path' (NULL: $UCLOCK_VMCLOCK if set, else /dev/vmclock0, which
 * must be a character device; a regular file only where the path is given)
 * and checks its header.  0 (and in 'why' what was found), or -1 with errno
 * and the reason in 'why'. */
int uclock__vmclock_open(const char *path, struct uclock_vmclock *vm, char *why, size_t size);
/* The disruption marker, read consistently under the device's seq_count.
 * Never waits long: gives up after a bounded number of tries while an
 * update is in progress (-1, EAGAIN); -1 with ENODEV if a regular file no
 * longer holds the header.  Async-signal-safe. */
int uclock__vmclock_marker(const struct uclock_vmclock *vm, uint64_t *marker);
void uclock__vmclock_close(struct uclock_vmclock *vm);

/* chrony.c: chronyd's tracking report, over its command socket. */
struct uclock_chrony_tracking {
	uint32_t ref_id;
	int stratum;
	int leap_status;             /* 0 normal, 1 insert, 2 delete, 3 unsynchronised */
	int64_t ref_time_ns;         /* REALTIME, ns since the epoch, of its last clock update */
	double current_correction_s; /* "System time": the system clock's offset from chronyd's
					estimate of true time, as chronyd reports it (> 0: the
					system clock is slow) */
	double last_offset_s, rms_offset_s;
	double freq_ppm, resid_freq_ppm, skew_ppm;
	double root_delay_s, root_dispersion_s;
	double last_update_interval_s;
};
/* 0, or -1 with errno set and 'why' saying what failed (no socket,
 * permission, timeout, a reply that is not a tracking report...).
 * server_path NULL: /run/chrony/chronyd.sock.  The reply socket is made in
 * the same directory (see chrony.c): the caller must be able to write there. */
int uclock__chrony_tracking(const char *server_path, int timeout_ms,
			    struct uclock_chrony_tracking *out, char *why, size_t size);
/* The parts, for tests: a reply to the request with this sequence number,
 * and chrony's 32-bit floating-point word (host order). */
int uclock__chrony_parse(const unsigned char *reply, size_t len, uint32_t sequence,
			 struct uclock_chrony_tracking *out, char *why, size_t size);
double uclock__chrony_float(uint32_t word);

#endif
