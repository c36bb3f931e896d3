/*
 * The process-wide clock: one page, one timekeeper driven by the CPU's
 * counter and the kernel, set up on first use, and the public POSIX-style
 * calls.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "bounds.h"
#include "internal.h"

#define DEFAULT_INTERVAL_NS 1000000LL
#define PAGE_BYTES 4096

/*
 * The page every reader reads, alone in a page of memory so that it can
 * be wiped in a child (MADV_WIPEONFORK): a process made by fork() or
 * clone() then finds it empty, and takes the slow path, which restores it
 * from the backup and checks it against the child's own clocks (it may be
 * in another time namespace) before any reading.
 */
static union {
	struct uclock__page page;
	char bytes[PAGE_BYTES];
} own __attribute__((aligned(PAGE_BYTES)));
#define global_page own.page
static struct uclock__page backup_page __attribute__((aligned(64)));
UCLOCK_API const struct uclock__page *uclock__page = &global_page;
struct uclock_tk uclock__global;

enum { INIT_NONE, INIT_RUNNING, INIT_DONE };
static int init_state;
/* The self-ordered read (rdtscp, CNTVCTSS_EL0), else the fenced one
 * (lfence; rdtsc, isb; mrs CNTVCT_EL0): see counter.h. */
static int use_self_ordered;
static uint32_t own_source;       /* what the page says, for a restore */
static const char *reason = "not initialised";
static char reason_text[192];
/* uclockd vouched for the counter: its words, put into text when asked (the
 * first read does no formatting; see page_reason()). */
static struct {
	int pid, cpus, in_step;
	int text;                     /* 0 none, 1 being written, 2 written */
} vouched;

static int kernel_clock(void *ctx, clockid_t clock, struct timespec *ts)
{
	(void)ctx;
	return uclock__kernel_gettime(clock, ts);
}

/* UCLOCK_INTERVAL_US, or the default; a bad value is named here, and the
 * trust policy refuses the counter for it (as for a bad UCLOCK_SOURCE). */
static const char *bad_interval;
static int interval_asked;

static int64_t interval_ns(void)
{
	const char *env = secure_getenv("UCLOCK_INTERVAL_US");
	char *end;
	long long us;

	if (!env || !*env)
		return DEFAULT_INTERVAL_NS;
	errno = 0;
	us = strtoll(env, &end, 10);
	if (errno || *end || *env < '0' || *env > '9' || us < 10 || us > 1000000) {
		bad_interval = env;
		return DEFAULT_INTERVAL_NS;
	}
	interval_asked = 1;
	return us * 1000;
}

/*
 * The counter a timekeeper on this machine reads (ordered: the way chosen,
 * see counter.h) and the kernel's clocks.  uclockd uses it too.
 */
void uclock__counter_ops(struct uclock_tk_ops *ops)
{
	uclock__kernel_init();
	*ops = (struct uclock_tk_ops){
		.counter = use_self_ordered ? uclock__read_self_ordered : uclock__read_fenced,
		.clock = kernel_clock,
		.mask = UINT64_MAX,
	};
}

/* uclockd: which ordered read to use here (its page carries the choice to
 * every reader), as enum uclock_ordered_read. */
int uclock__counter_pick(void)
{
	int ordered = uclock__counter_choose();

	use_self_ordered = ordered == UCLOCK__READ_SELF;
	return ordered;
}

/*
 * Whether the counter may serve time here (see trust.c), with uclockd's
 * verdict if its page is found; the reason is kept for uclock_stat().
 */
static int trusted(void)
{
	struct uclock_trust_facts facts;
	const char *env = secure_getenv("UCLOCK_SOURCE");

	memset(&facts, 0, sizeof(facts));
	uclock__kernel_init();
	facts.bad_interval = bad_interval;
	facts.source_env = env && *env ? env : NULL;
	int looked = 0;
	if (!facts.bad_interval && (!facts.source_env || !strcmp(facts.source_env, "auto")) &&
	    uclock__counter_enabled()) {
		/* uclockd keeps a page from the counter this process can read now:
		 * the machine's facts are checked already, by it. */
		uclock__attach_look(&facts);
		looked = 1;
		if (facts.page_pid) {
			vouched.pid = facts.page_pid;
			vouched.cpus = facts.sync_cpus;
			vouched.in_step = facts.sync == UCLOCK_SYNC_YES;
			reason = NULL;
			use_self_ordered = facts.page_read == UCLOCK__READ_SELF;
			return 1;
		}
	}
	uclock__trust_gather(&facts);
	int yes = uclock__trust_decide(&facts, reason_text, sizeof(reason_text));
	reason = reason_text;
	use_self_ordered = yes && uclock__counter_choose() == UCLOCK__READ_SELF;
	if (yes && !looked)
		uclock__attach_look(&facts);
	return yes;
}

/*
 * The page wiped in children (see own), before any line is on it.  Kernels
 * before 4.14 refuse it: then fork() children are still put right by the
 * pthread_atfork handler, clone() ones not.  Done at load (see at_load()),
 * or by the first read if it comes first (another library's constructor):
 * twice is harmless.
 */
static int marked;

static void mark_page(void)
{
	madvise(&own, sizeof(own), MADV_WIPEONFORK);
	/* Release: a first read that finds it set comes after the call. */
	__atomic_store_n(&marked, 1, __ATOMIC_RELEASE);
}

/*
 * First use.  One caller sets up; the others (threads, signal handlers
 * that interrupted it) take the kernel's answer meanwhile.  A process that
 * finds uclockd's page reads it at once; one that does not calibrates its
 * own lines.
 */
static void init(void)
{
	int expected = INIT_NONE;
	struct uclock_tk_ops ops;
	int64_t interval;

	if (!__atomic_compare_exchange_n(&init_state, &expected, INIT_RUNNING, 0,
					 __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
		return;
	if (!__atomic_load_n(&marked, __ATOMIC_ACQUIRE))
		mark_page();
	interval = interval_ns();
	own_source = trusted() ? UCLOCK_SOURCE_COUNTER : UCLOCK_SOURCE_KERNEL;
	if (own_source == UCLOCK_SOURCE_COUNTER)
		uclock__counter_ops(&ops);
	else
		ops = (struct uclock_tk_ops){.counter = uclock__read_fenced,
					     .clock = kernel_clock, .mask = UINT64_MAX};
	uclock__tk_init(&uclock__global, &global_page, &ops, interval);
	uclock__global.backup = &backup_page;
	uclock__global.interval_fixed = interval_asked;
	if (own_source == UCLOCK_SOURCE_COUNTER) {
		__atomic_store_n(&global_page.source, UCLOCK_SOURCE_COUNTER, __ATOMIC_RELEASE);
		uclock__attach_init(&uclock__global);
		if (!uclock__attached())
			uclock__tk_try_update(&uclock__global);
	} else {
		uclock__attach_drop();
		uclock__tk_set_kernel_mode(&uclock__global);
		__atomic_store_n(&global_page.source, UCLOCK_SOURCE_KERNEL,
				 __ATOMIC_RELAXED);
	}
	__atomic_store_n(&init_state, INIT_DONE, __ATOMIC_RELEASE);
}

/* The page was set up, and is empty: this is a child, its page wiped. */
static int wiped(void)
{
	return __atomic_load_n(&init_state, __ATOMIC_ACQUIRE) == INIT_DONE &&
	       __atomic_load_n(&global_page.magic, __ATOMIC_ACQUIRE) == 0;
}

/*
 * In a child, restore the page from the backup (what readers were last
 * sent to) and make the next read check it against this process's own
 * clocks: an update against the kernel, or, on the shared page, a look at
 * whether the child reads the clocks it was made from.  One thread does it
 * (it claims the wiped page's state word); others meanwhile read the
 * backup.  An update interrupted by the fork is lost (its lock freed),
 * unless this very thread was making it, deeper in its own stack.
 */
static void restore_child(void)
{
	uint32_t unclaimed = 0;
	struct uclock__copy c;

	if (!__atomic_compare_exchange_n(&global_page.state, &unclaimed, 1, 0,
					 __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
		return;
	uclock__copy_load(&backup_page, &c);
	c.knots = 0; /* they were in the wiped page */
	global_page.seq = 0;
	uclock__copy_stage(&global_page, &c);
	uclock__copy_flip(&global_page);
	global_page.version = UCLOCK_PAGE_VERSION;
	global_page.size = sizeof(global_page);
	__atomic_store_n(&global_page.source, own_source, __ATOMIC_RELAXED);
	__atomic_store_n(&global_page.magic, UCLOCK_PAGE_MAGIC, __ATOMIC_RELEASE);
	if (own_source == UCLOCK_SOURCE_COUNTER)
		uclock__tk_after_fork(&uclock__global);
	uclock__bounds_after_fork();
}

int uclock__global_ready(void)
{
	int state = __atomic_load_n(&init_state, __ATOMIC_ACQUIRE);

	if (state != INIT_DONE)
		init();
	else if (UCLOCK__UNLIKELY(wiped()))
		restore_child();
	return __atomic_load_n(&init_state, __ATOMIC_ACQUIRE) == INIT_DONE && !wiped();
}

/* The reason when uclockd vouched for the counter: written by the first
 * to ask; others meanwhile get it in fewer words. */
static const char *page_reason(void)
{
	int none = 0;

	if (__atomic_compare_exchange_n(&vouched.text, &none, 1, 0, __ATOMIC_ACQUIRE,
					__ATOMIC_RELAXED)) {
		if (vouched.in_step)
			snprintf(reason_text, sizeof(reason_text), "uclockd (pid %d) keeps "
				 "its page from the %s, found in step on all %d CPUs",
				 vouched.pid, UCLOCK__COUNTER_TEXT, vouched.cpus);
		else
			snprintf(reason_text, sizeof(reason_text), "uclockd (pid %d) keeps "
				 "its page from the %s, having checked this machine",
				 vouched.pid, UCLOCK__COUNTER_TEXT);
		__atomic_store_n(&vouched.text, 2, __ATOMIC_RELEASE);
	}
	return __atomic_load_n(&vouched.text, __ATOMIC_ACQUIRE) == 2
		       ? reason_text
		       : "uclockd keeps its page from the " UCLOCK__COUNTER_TEXT;
}

const char *uclock__global_reason(void)
{
	const char *gave_up = uclock__tk_gave_up(&uclock__global);

	if (gave_up)
		return gave_up;
	if (__atomic_load_n(&init_state, __ATOMIC_ACQUIRE) == INIT_DONE && !reason)
		return page_reason();
	return reason ? reason : "not initialised";
}

const char *uclock__global_counter_read(void)
{
	if (own_source != UCLOCK_SOURCE_COUNTER)
		return "none";
	return uclock__ordered_read_name(use_self_ordered ? UCLOCK__READ_SELF
							   : UCLOCK__READ_FENCED);
}

/* A fork() child: its page wiped (restore it), or, where the kernel does
 * not wipe (before 4.14), the same checks on the page as it is. */
static void child_after_fork(void)
{
	int state = __atomic_load_n(&init_state, __ATOMIC_RELAXED);

	if (state == INIT_RUNNING) /* the initialising thread is gone */
		__atomic_store_n(&init_state, INIT_NONE, __ATOMIC_RELAXED);
	else if (state == INIT_DONE && wiped())
		restore_child();
	else if (state == INIT_DONE && own_source == UCLOCK_SOURCE_COUNTER)
		uclock__tk_after_fork(&uclock__global);
	uclock__bounds_after_fork();
}

/* At load: the fork handler, and the page marked, so that the first read
 * does not pay for the system call (a few microseconds). */
__attribute__((constructor)) static void at_load(void)
{
	mark_page();
	pthread_atfork(NULL, NULL, child_after_fork);
}

/* A child's page being restored by another thread: what it will hold. */
static int64_t backup_slot(enum slot slot)
{
	struct uclock__copy c;
	struct timespec ts;
	uint64_t now;

	uclock__copy_load_at(&backup_page, &c, uclock__global.ops.counter,
			     uclock__global.ops.ctx, &now);
	if (c.mode == UCLOCK_MODE_COUNTER && now - c.cycle_last <= c.hard)
		return uclock__copy_value(&c, slot, now - c.cycle_last);
	if (uclock__kernel_gettime(clock_of(slot), &ts) != 0)
		return INT64_MIN;
	return uclock__floored(uclock__ts_to_ns(&ts), uclock__copy_floor(&c, slot), slot);
}

static __attribute__((noinline)) int64_t slow_slot(enum slot slot)
{
	struct timespec ts;

	if (UCLOCK__UNLIKELY(!uclock__global_ready())) {
		if (wiped())
			return backup_slot(slot);
	} else if (own_source == UCLOCK_SOURCE_COUNTER) {
		if (uclock__attached())
			return uclock__shared_slot(&uclock__global, slot);
		int64_t ns = uclock__tk_read(&uclock__global, slot);
		int err = errno;
		uclock__reattach_maybe(&uclock__global);
		errno = err;
		return ns;
	}
	if (uclock__kernel_gettime(clock_of(slot), &ts) != 0)
		return INT64_MIN;
	return uclock__ts_to_ns(&ts);
}

UCLOCK_API int64_t uclock__slow_ns(clockid_t clock)
{
	enum slot slot = slot_of(clock);

	return slot == SLOT_NONE ? INT64_MIN : slow_slot(slot);
}

UCLOCK_API uint64_t uclock__ticks_slow(void)
{
	struct timespec ts;

	if ((uclock__global_ready() || wiped()) && own_source == UCLOCK_SOURCE_COUNTER)
		return uclock__counter();
	if (uclock__kernel_gettime(CLOCK_MONOTONIC_RAW, &ts) != 0)
		return 0;
	return (uint64_t)uclock__ts_to_ns(&ts);
}

/* Ordered: the counter cannot be read before the page was (nor, on
 * arm64, the re-check of seq before the counter: see counter.h). */
static inline uint64_t ordered_counter(void)
{
	if (__atomic_load_n(&use_self_ordered, __ATOMIC_RELAXED))
		return uclock__counter_self_ordered();
	return uclock__counter_fenced();
}

/* Out of line: warm-up, kernel mode, stale parameters, failures. */
static __attribute__((noinline)) int slow_ts(enum slot slot, struct timespec *ts)
{
	int64_t ns = slow_slot(slot);

	if (ns == INT64_MIN)
		return -1;
	uclock__ns_to_ts(ns, ts);
	return 0;
}

/* Out of line, for gettimeofday: warm-up, kernel mode, stale parameters. */
static __attribute__((noinline)) int slow_tv(struct timeval *tv)
{
	struct timespec ts;

	if (slow_ts(SLOT_REAL, &ts) != 0)
		return -1;
	tv->tv_sec = ts.tv_sec;
	tv->tv_usec = (suseconds_t)((uint32_t)ts.tv_nsec / 1000);
	return 0;
}

/*
 * The read path of uclock_gettime() and uclock_gettimeofday(): the
 * header's, with an ordered counter read, any served clock, and the base
 * kept as a timespec so that nothing but a multiply follows the counter
 * read (rdtscp waits for the previous call's arithmetic: a long chain
 * there costs every call).  The line's slope and base are loaded after the
 * counter read (they still come before the re-check), and a stale counter
 * is sent out of line at once, so that few values are live at a time: the
 * fast path saves no register.  Every way out of line is a tail call.  Specialised per slot, and for a timeval, by the
 * compiler.
 */
static inline __attribute__((always_inline)) int
read_page(const struct uclock__page *p, enum slot slot, struct timespec *ts,
	  struct timeval *tv)
{
	for (;;) {
		uint32_t seq = __atomic_load_n(&p->seq, __ATOMIC_ACQUIRE);
		const struct uclock__copy *c = uclock__copy_at(p, seq);
		int raw = slot == SLOT_RAW;
		uint64_t last = __atomic_load_n(&c->cycle_last, UCLOCK__FIELD);
		uint64_t limit = __atomic_load_n(&c->limit, UCLOCK__FIELD);

		/* Kernel mode, warm-up: no counter read at all. */
		if (UCLOCK__UNLIKELY(limit == 0))
			break;
		uint64_t delta = ordered_counter() - last;
		/* Stale (or torn: the slow path is right either way). */
		if (UCLOCK__UNLIKELY(delta >= limit))
			break;
		uint64_t mult = raw ? __atomic_load_n(&c->raw_mult, UCLOCK__FIELD)
				    : __atomic_load_n(&c->mult, UCLOCK__FIELD);
		uint64_t frac = raw ? __atomic_load_n(&c->raw_frac, UCLOCK__FIELD)
				    : __atomic_load_n(&c->frac, UCLOCK__FIELD);
		int64_t sec = __atomic_load_n(&c->sec[slot], UCLOCK__FIELD);
		uint64_t nsec = __atomic_load_n(&c->nsec[slot], UCLOCK__FIELD);
		UCLOCK__READ_FENCE();
		if (__atomic_load_n(&p->seq, __ATOMIC_RELAXED) != seq)
			continue;
		nsec += (uint64_t)uclock__line_near(0, frac, mult, delta);
		/* At most a span past the base: a subtraction or two. */
		while (UCLOCK__UNLIKELY(nsec >= NSEC_PER_SEC)) {
			nsec -= NSEC_PER_SEC;
			sec++;
		}
		if (tv) {
			tv->tv_sec = (time_t)sec;
			tv->tv_usec = (suseconds_t)((uint32_t)nsec / 1000);
		} else {
			ts->tv_sec = (time_t)sec;
			ts->tv_nsec = (long)nsec;
		}
		return 0;
	}
	return tv ? slow_tv(tv) : slow_ts(slot, ts);
}

/*
 * One reader per clock (and one for gettimeofday), so that each path keeps
 * only what it uses and uclock_gettime() itself is a jump.  The page is
 * always the process's own, at a constant address (attached to uclockd's,
 * it holds a mirror of it: see attach.c).
 */
#define READER(name, slot, arg_type, ts_arg, tv_arg)                          \
	static __attribute__((noinline)) int name(arg_type *a)               \
	{                                                                    \
		if (UCLOCK__UNLIKELY(!a)) {                                  \
			errno = EFAULT;                                      \
			return -1;                                           \
		}                                                            \
		return read_page(&global_page, slot, ts_arg, tv_arg);        \
	}
#define GETTIME(name, slot) READER(name, slot, struct timespec, a, NULL)
GETTIME(gettime_real, SLOT_REAL)
GETTIME(gettime_mono, SLOT_MONO)
GETTIME(gettime_raw, SLOT_RAW)
GETTIME(gettime_boot, SLOT_BOOT)
GETTIME(gettime_tai, SLOT_TAI)

/*
 * The last tick's time: only the kernel's page has it, and its vDSO reads
 * it with one load.  For these two ids the vDSO never fails (it has no
 * counter to distrust), so its answer is returned as is: a tail call.
 */
static inline __attribute__((always_inline)) int gettime_coarse(clockid_t clock,
								struct timespec *ts)
{
	int (*fn)(clockid_t, struct timespec *) =
		__atomic_load_n(&uclock__kernel.clock_gettime, __ATOMIC_RELAXED);

	if (UCLOCK__LIKELY(fn != NULL && ts != NULL))
		return fn(clock, ts);
	/* No vDSO (a system call), or NULL: the kernel's EFAULT. */
	return uclock__kernel_gettime_slow(clock, ts);
}

/* The coarse ids are tested first: they are the cheapest calls, and a
 * jump through the switch's table would be a fifth of their cost. */
UCLOCK_API int uclock_gettime(clockid_t clock, struct timespec *ts)
{
	if ((unsigned)clock - CLOCK_REALTIME_COARSE <= 1u)
		return gettime_coarse(clock, ts);
	switch (clock) {
	case CLOCK_REALTIME: return gettime_real(ts);
	case CLOCK_MONOTONIC: return gettime_mono(ts);
	case CLOCK_MONOTONIC_RAW: return gettime_raw(ts);
	case CLOCK_BOOTTIME: return gettime_boot(ts);
	case CLOCK_TAI: return gettime_tai(ts);
	default: return uclock__kernel_gettime(clock, ts);
	}
}

READER(gettimeofday_tv, SLOT_REAL, struct timeval, NULL, a)

static __attribute__((noinline)) int gettimeofday_tz(struct timeval *tv,
						     struct timezone *tz)
{
	if (uclock__kernel_gettimeofday(NULL, tz) != 0)
		return -1;
	return tv ? gettimeofday_tv(tv) : 0;
}

/* The timezone is the kernel's (settimeofday may change it): asked only
 * when wanted.  The common call is the reader itself, inlined here: the
 * vDSO's gettimeofday is called straight (glibc resolves it to the vDSO),
 * so there is no jump to spare. */
UCLOCK_API int uclock_gettimeofday(struct timeval *tv, struct timezone *tz)
{
	if (UCLOCK__UNLIKELY(tz != NULL))
		return gettimeofday_tz(tv, tz);
	if (UCLOCK__UNLIKELY(tv == NULL))
		return 0;
	return read_page(&global_page, SLOT_REAL, NULL, tv);
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

/* The vDSO's answer, called straight once it has been found. */
UCLOCK_API int uclock_getcpu(unsigned *cpu, unsigned *node)
{
	int (*fn)(unsigned *, unsigned *, void *) =
		__atomic_load_n(&uclock__kernel.getcpu, __ATOMIC_RELAXED);

	if (UCLOCK__LIKELY(fn != NULL))
		return fn(cpu, node, NULL);
	return uclock__kernel_getcpu(cpu, node);
}

/* Kernel-mode ticks are MONOTONIC_RAW ns: move them to the asked clock
 * by its distance from MONOTONIC_RAW now, read between two MONOTONIC_RAW
 * readings: the tightest of three such brackets (an interrupt in one
 * would put the distance off by its length). */
static int64_t raw_ns_to(clockid_t clock, uint64_t ticks)
{
	int64_t best = INT64_MAX, distance = 0;

	for (int i = 0; i < 3; i++) {
		struct timespec r1, c, r2;

		if (uclock__kernel_gettime(CLOCK_MONOTONIC_RAW, &r1) ||
		    uclock__kernel_gettime(clock, &c) ||
		    uclock__kernel_gettime(CLOCK_MONOTONIC_RAW, &r2))
			return INT64_MIN;
		int64_t a = uclock__ts_to_ns(&r1), b = uclock__ts_to_ns(&r2);
		if (b - a < best) {
			best = b - a;
			distance = uclock__ts_to_ns(&c) - (a + (b - a) / 2);
		}
	}
	return (int64_t)ticks + distance;
}

UCLOCK_API int64_t uclock_ticks_to_ns(clockid_t clock, uint64_t ticks)
{
	enum slot slot = slot_of(clock);

	if (slot == SLOT_NONE) {
		errno = EINVAL;
		return INT64_MIN;
	}
	if (!uclock__global_ready() || own_source != UCLOCK_SOURCE_COUNTER)
		return raw_ns_to(clock, ticks);
	/* Attached: on the shared page's current copy, as every process. */
	const struct uclock__page *shared = uclock__attach_page();
	if (shared) {
		struct uclock__copy c;
		uint64_t now;

		uint32_t seq;

		if (uclock__shared_usable(shared, &c, &now, uclock__global.ops.counter,
					  uclock__global.ops.ctx, &seq)) {
			int64_t ns = uclock__copy_ticks_to_ns(shared, &c, slot, ticks);
			if (!uclock__seq_changed(shared, seq))
				return ns;
		}
	}
	return uclock__tk_ticks_to_ns(&uclock__global, slot, ticks);
}
