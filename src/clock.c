/*
 * The process-wide clock: one page, one timekeeper driven by the TSC and
 * the kernel, set up on first use, and the public POSIX-style calls.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

#define DEFAULT_INTERVAL_NS 1000000LL

static struct uclock__page global_page __attribute__((aligned(64)));
UCLOCK_API const struct uclock__page *uclock__page = &global_page;
struct uclock_tk uclock__global;

enum { INIT_NONE, INIT_RUNNING, INIT_DONE };
static int init_state;
static int use_rdtscp;
static const char *reason = "not initialised";
static char reason_text[192];

static int kernel_clock(void *ctx, clockid_t clock, struct timespec *ts)
{
	(void)ctx;
	return uclock__kernel_gettime(clock, ts);
}

/* The kernel's clocksource, e.g. "tsc", or "" if it cannot be read. */
static void read_clocksource(char *buf, size_t size)
{
	int fd = open("/sys/devices/system/clocksource/clocksource0/"
		      "current_clocksource", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, size - 1) : -1;

	if (fd >= 0)
		close(fd);
	buf[n > 0 ? n : 0] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
}

/* Layered, fail closed: any doubt leaves the clock to the kernel. */
static int trust_tsc(void)
{
	struct uclock_tsc_features f;
	const char *env = secure_getenv("UCLOCK_SOURCE");
	char cs[64];

	if (env && strcmp(env, "kernel") == 0) {
		reason = "UCLOCK_SOURCE=kernel";
		return 0;
	}
	if (env && strcmp(env, "tsc") != 0 && strcmp(env, "auto") != 0) {
		snprintf(reason_text, sizeof(reason_text),
			 "UCLOCK_SOURCE=%.64s is not auto, tsc or kernel", env);
		reason = reason_text;
		return 0;
	}
	uclock__tsc_features(&f);
	if (!UCLOCK__HAVE_TSC || !f.present) {
		reason = "no usable time-stamp counter";
		return 0;
	}
	if (env && strcmp(env, "tsc") == 0) {
		reason = "UCLOCK_SOURCE=tsc";
		return 1;
	}
	if (!f.invariant) {
		reason = "the CPU does not report an invariant TSC";
		return 0;
	}
	read_clocksource(cs, sizeof(cs));
	if (strcmp(cs, "tsc") != 0) {
		snprintf(reason_text, sizeof(reason_text),
			 cs[0] ? "the kernel's clocksource is %s, not tsc"
			       : "the kernel's clocksource cannot be read%s", cs);
		reason = reason_text;
		return 0;
	}
	if (uclock__tsc_slower_than_kernel()) {
		reason = "rdtsc is slower than the kernel's clock (emulated)";
		return 0;
	}
	reason = "invariant TSC, and the kernel's clocksource is tsc";
	return 1;
}

static int64_t interval_ns(void)
{
	const char *env = secure_getenv("UCLOCK_INTERVAL_US");
	char *end;
	long long us;

	if (!env)
		return DEFAULT_INTERVAL_NS;
	errno = 0;
	us = strtoll(env, &end, 10);
	if (errno || *end || end == env || us < 10 || us > 1000000)
		return DEFAULT_INTERVAL_NS;
	return us * 1000;
}

/*
 * First use.  One caller sets up; the others (threads, signal handlers
 * that interrupted it) take the kernel's answer meanwhile.
 */
static void init(void)
{
	int expected = INIT_NONE;
	struct uclock_tk_ops ops = {.clock = kernel_clock, .mask = UINT64_MAX};

	if (!__atomic_compare_exchange_n(&init_state, &expected, INIT_RUNNING, 0,
					 __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
		return;
	uclock__kernel_init();
	if (trust_tsc()) {
		use_rdtscp = uclock__tsc_prefer_rdtscp();
		ops.counter = use_rdtscp ? uclock__tsc_rdtscp : uclock__tsc_lfence;
		uclock__tk_init(&uclock__global, &global_page, &ops, interval_ns());
		__atomic_store_n(&global_page.source, UCLOCK_SOURCE_TSC,
				 __ATOMIC_RELEASE);
		uclock__tk_try_update(&uclock__global);
	} else {
		ops.counter = uclock__tsc_lfence;
		uclock__tk_init(&uclock__global, &global_page, &ops, interval_ns());
		uclock__tk_set_kernel_mode(&uclock__global);
		__atomic_store_n(&global_page.source, UCLOCK_SOURCE_KERNEL,
				 __ATOMIC_RELAXED);
	}
	__atomic_store_n(&init_state, INIT_DONE, __ATOMIC_RELEASE);
}

int uclock__global_ready(void)
{
	if (__atomic_load_n(&init_state, __ATOMIC_ACQUIRE) != INIT_DONE)
		init();
	return __atomic_load_n(&init_state, __ATOMIC_ACQUIRE) == INIT_DONE;
}

const char *uclock__global_reason(void)
{
	return reason;
}

const char *uclock__global_counter_read(void)
{
	if (global_page.source != UCLOCK_SOURCE_TSC)
		return "none";
	return use_rdtscp ? "rdtscp" : "lfence+rdtsc";
}

static void child_after_fork(void)
{
	int state = __atomic_load_n(&init_state, __ATOMIC_RELAXED);

	if (state == INIT_RUNNING) /* the initialising thread is gone */
		__atomic_store_n(&init_state, INIT_NONE, __ATOMIC_RELAXED);
	else if (state == INIT_DONE && global_page.source == UCLOCK_SOURCE_TSC)
		uclock__tk_after_fork(&uclock__global);
}

__attribute__((constructor)) static void register_fork_handler(void)
{
	pthread_atfork(NULL, NULL, child_after_fork);
}

static int64_t slow_slot(enum slot slot)
{
	if (!uclock__global_ready()) {
		struct timespec ts;
		if (uclock__kernel_gettime(clock_of(slot), &ts) != 0)
			return INT64_MIN;
		return uclock__ts_to_ns(&ts);
	}
	return uclock__tk_read(&uclock__global, slot);
}

UCLOCK_API int64_t uclock__slow_ns(clockid_t clock)
{
	enum slot slot = slot_of(clock);

	return slot == SLOT_NONE ? INT64_MIN : slow_slot(slot);
}

UCLOCK_API uint64_t uclock__ticks_slow(void)
{
	struct timespec ts;

	if (uclock__global_ready() && global_page.source == UCLOCK_SOURCE_TSC)
		return uclock__rdtsc();
	if (uclock__kernel_gettime(CLOCK_MONOTONIC_RAW, &ts) != 0)
		return 0;
	return (uint64_t)uclock__ts_to_ns(&ts);
}

/* Ordered: the counter cannot be read before the page was. */
static inline uint64_t ordered_tsc(void)
{
	if (__atomic_load_n(&use_rdtscp, __ATOMIC_RELAXED))
		return uclock__tsc_rdtscp(NULL);
	return uclock__tsc_lfence(NULL);
}

/* The read path of uclock_gettime(): the header's, with an ordered read
 * and any served clock.  Specialised per slot by the compiler. */
static inline __attribute__((always_inline)) int64_t read_slot(enum slot slot)
{
	const struct uclock__page *p = __atomic_load_n(&uclock__page,
						       __ATOMIC_ACQUIRE);
	for (;;) {
		uint32_t seq = __atomic_load_n(&p->seq, __ATOMIC_ACQUIRE);
		const struct uclock__copy *c = uclock__copy_at(p, seq);
		int raw = slot == SLOT_RAW;
		uint64_t last = __atomic_load_n(&c->cycle_last, __ATOMIC_RELAXED);
		uint64_t limit = __atomic_load_n(&c->limit, __ATOMIC_RELAXED);
		uint64_t mult = raw ? __atomic_load_n(&c->raw_mult, __ATOMIC_RELAXED)
				    : __atomic_load_n(&c->mult, __ATOMIC_RELAXED);
		uint64_t frac = raw ? __atomic_load_n(&c->raw_frac, __ATOMIC_RELAXED)
				    : __atomic_load_n(&c->frac, __ATOMIC_RELAXED);
		int64_t base;

		switch (slot) {
		case SLOT_REAL: base = __atomic_load_n(&c->base_real, __ATOMIC_RELAXED); break;
		case SLOT_RAW: base = __atomic_load_n(&c->base_raw, __ATOMIC_RELAXED); break;
		case SLOT_BOOT: base = __atomic_load_n(&c->base_boot, __ATOMIC_RELAXED); break;
		case SLOT_TAI: base = __atomic_load_n(&c->base_tai, __ATOMIC_RELAXED); break;
		default: base = __atomic_load_n(&c->base_mono, __ATOMIC_RELAXED); break;
		}
		uint64_t delta = ordered_tsc() - last;
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (__atomic_load_n(&p->seq, __ATOMIC_RELAXED) != seq)
			continue;
		if (UCLOCK__LIKELY(delta < limit))
			return uclock__line(base, frac, mult, delta);
		return slow_slot(slot);
	}
}

static int read_into(enum slot slot, struct timespec *ts)
{
	int64_t ns;

	if (!ts) {
		errno = EFAULT;
		return -1;
	}
	ns = read_slot(slot);
	if (ns == INT64_MIN)
		return -1;
	uclock__ns_to_ts(ns, ts);
	return 0;
}

UCLOCK_API int uclock_gettime(clockid_t clock, struct timespec *ts)
{
	/* Pass-through mode: straight to the kernel, no counter read. */
	if (__atomic_load_n(&uclock__page->source, __ATOMIC_RELAXED) ==
	    UCLOCK_SOURCE_KERNEL)
		return uclock__kernel_gettime(clock, ts);
	switch (clock) {
	case CLOCK_REALTIME: return read_into(SLOT_REAL, ts);
	case CLOCK_MONOTONIC: return read_into(SLOT_MONO, ts);
	case CLOCK_MONOTONIC_RAW: return read_into(SLOT_RAW, ts);
	case CLOCK_BOOTTIME: return read_into(SLOT_BOOT, ts);
	case CLOCK_TAI: return read_into(SLOT_TAI, ts);
	case CLOCK_REALTIME_COARSE:
	case CLOCK_MONOTONIC_COARSE:
		/* The last tick's time: only the kernel's page has it, and
		 * its vDSO reads it with one load. */
		if (!ts) {
			errno = EFAULT;
			return -1;
		}
		return uclock__kernel_gettime(clock, ts);
	default:
		return uclock__kernel_gettime(clock, ts);
	}
}

UCLOCK_API int uclock_gettimeofday(struct timeval *tv, struct timezone *tz)
{
	if (tz && uclock__kernel_gettimeofday(NULL, tz) != 0)
		return -1;
	if (tv) {
		int64_t ns = read_slot(SLOT_REAL);
		struct timespec ts;

		if (ns == INT64_MIN)
			return -1;
		uclock__ns_to_ts(ns, &ts);
		tv->tv_sec = ts.tv_sec;
		tv->tv_usec = (suseconds_t)(ts.tv_nsec / 1000);
	}
	return 0;
}

/* The last tick's second, as the kernel's time(): never ahead of
 * CLOCK_REALTIME, which a rounded-down fine reading could be. */
UCLOCK_API time_t uclock_time(time_t *t)
{
	return uclock__kernel_time(t);
}

/*
 * The vDSO answers for the served clocks; every other id goes to the
 * system call, which alone is authoritative (some vDSOs report a
 * resolution for auxiliary clocks the kernel then says are invalid).
 */
UCLOCK_API int uclock_getres(clockid_t clock, struct timespec *res)
{
	if (slot_of(clock) != SLOT_NONE || clock == CLOCK_REALTIME_COARSE ||
	    clock == CLOCK_MONOTONIC_COARSE)
		return uclock__kernel_getres(clock, res);
	return (int)syscall(SYS_clock_getres, clock, res);
}

UCLOCK_API int uclock_getcpu(unsigned *cpu, unsigned *node)
{
	return uclock__kernel_getcpu(cpu, node);
}

/* Kernel-mode ticks are MONOTONIC_RAW ns: move them to the asked clock
 * by its distance from MONOTONIC_RAW now. */
static int64_t raw_ns_to(clockid_t clock, uint64_t ticks)
{
	struct timespec r1, c, r2;

	if (uclock__kernel_gettime(CLOCK_MONOTONIC_RAW, &r1) ||
	    uclock__kernel_gettime(clock, &c) ||
	    uclock__kernel_gettime(CLOCK_MONOTONIC_RAW, &r2))
		return INT64_MIN;
	int64_t raw_mid = uclock__ts_to_ns(&r1) / 2 + uclock__ts_to_ns(&r2) / 2;
	return (int64_t)ticks + (uclock__ts_to_ns(&c) - raw_mid);
}

UCLOCK_API int64_t uclock_ticks_to_ns(clockid_t clock, uint64_t ticks)
{
	enum slot slot = slot_of(clock);

	if (slot == SLOT_NONE) {
		errno = EINVAL;
		return INT64_MIN;
	}
	uclock__global_ready();
	if (__atomic_load_n(&global_page.source, __ATOMIC_ACQUIRE) !=
	    UCLOCK_SOURCE_TSC)
		return raw_ns_to(clock, ticks);
	return uclock__tk_ticks_to_ns(&uclock__global, slot, ticks);
}
