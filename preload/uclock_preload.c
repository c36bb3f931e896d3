/*
 * libuclock-preload.so: uclock for programs that cannot be rebuilt.
 * Loaded with LD_PRELOAD, it answers the C library's clock calls for the
 * clocks uclock serves, and passes every other call to the C library's own
 * function, so that results and errno are glibc's.  No allocation and no
 * system call of its own on a call; safe before constructors have run (it
 * then asks the kernel as glibc would), in threads, signal handlers, fork
 * children, and across exec (LD_PRELOAD is inherited).
 *
 * With UCLOCK_RUN_STATS set (by `uclock run --stats`), each call is counted
 * in a page shared by every process of the run, if the descriptor it names
 * is still that page (see run_stats()).
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/timeb.h>
#include <time.h>

#include "internal.h"
#include "run_stats.h"

#define EXPORT __attribute__((visibility("default")))

/* glibc's internal names, which some libraries bind to. */
int __clock_gettime(clockid_t clock, struct timespec *ts);
int __gettimeofday(struct timeval *tv, void *tz);

typedef int (*gettime_fn)(clockid_t, struct timespec *);
typedef int (*timespec_get_fn)(struct timespec *, int);

/* The C library's own functions, for what uclock does not serve. */
static gettime_fn libc_clock_getres;
static timespec_get_fn libc_timespec_get;
static struct uclock_run_stats *stats;

/*
 * The page `uclock run --stats` made, or NULL.  The descriptor named in
 * UCLOCK_RUN_STATS is inherited by every process of the run, and any of
 * them may since have reused its number (`exec 3<>file`, a lock file):
 * only the object `uclock run` made is mapped, nothing else.  Until the
 * mapping the checks only look (fcntl F_GET_SEALS and fstat change
 * nothing); a descriptor that fails them is left alone, never closed.
 */
static struct uclock_run_stats *run_stats(void)
{
	const int sealed = F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW;
	struct uclock_run_stats *s;
	struct stat st;
	uint64_t dev, ino;
	int fd, seals;

	if (uclock__run_stats_parse(getenv(UCLOCK_RUN_STATS_ENV), &fd, &dev, &ino) != 0)
		return NULL;
	/* Only a memfd created with sealing allowed can carry these seals
	 * (every other file has none, or F_SEAL_SEAL alone).  Sealed first:
	 * the size checked next cannot shrink after, so the mapping cannot
	 * fault.  Writes are not sealed: the counters are written. */
	seals = fcntl(fd, F_GET_SEALS);
	if (seals < 0 || (seals & sealed) != sealed ||
	    (seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE)))
		return NULL;
	/* The very object `uclock run` made, and large enough. */
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_dev != dev ||
	    (uint64_t)st.st_ino != ino || st.st_size < (off_t)sizeof(*s))
		return NULL;
	s = mmap(NULL, sizeof(*s), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (s == MAP_FAILED)
		return NULL;
	/* Laid out as this shim counts (set by `uclock run` before sealing). */
	if (s->magic != UCLOCK_RUN_STATS_MAGIC || s->version != UCLOCK_RUN_STATS_VERSION ||
	    s->size != sizeof(*s)) {
		munmap(s, sizeof(*s));
		return NULL;
	}
	return s;
}

__attribute__((constructor)) static void resolve(void)
{
	libc_clock_getres = (gettime_fn)dlsym(RTLD_NEXT, "clock_getres");
	libc_timespec_get = (timespec_get_fn)dlsym(RTLD_NEXT, "timespec_get");
	__atomic_store_n(&stats, run_stats(), __ATOMIC_RELAXED);
}

static __thread char stripe_anchor;

/* The kernel answered: in user space if uclock reaches its vDSO.  Clock ids
 * the vDSO does not serve (CPU time, others) are system calls even there. */
static void count_kernel(int vdso_serves, int calibrating)
{
	uclock__run_count(stats, &stripe_anchor,
			  vdso_serves && uclock__kernel_has_vdso() ? UCLOCK_RUN_VDSO
								  : UCLOCK_RUN_SYSCALL,
			  calibrating);
}

/* A clock uclock serves from its lines: from them, or, while it warms up or
 * passes through, from the kernel. */
static void count_served(void)
{
	struct uclock__copy c;

	uclock__copy_load(uclock__page, &c);
	if (c.mode == UCLOCK_MODE_COUNTER)
		uclock__run_count(stats, &stripe_anchor, UCLOCK_RUN_COUNTER, 0);
	else
		count_kernel(1, c.mode == UCLOCK_MODE_WARMUP || c.mode == UCLOCK_MODE_UNINIT);
}

static int served_fine(clockid_t clock)
{
	return slot_of(clock) != SLOT_NONE;
}

static int served(clockid_t clock)
{
	return served_fine(clock) || clock == CLOCK_REALTIME_COARSE ||
	       clock == CLOCK_MONOTONIC_COARSE;
}

/*
 * Counted calls go out of line, so that an uncounted one is a test and a
 * jump into uclock: nothing of the shim's own stays on the stack.
 */
static __attribute__((noinline)) int counted_gettime(clockid_t clock,
						     struct timespec *ts)
{
	/* uclock passes the ids it does not serve to the kernel as glibc
	 * does (its vDSO, else the system call), errno included. */
	int rc = uclock_gettime(clock, ts);

	if (served_fine(clock))
		count_served();
	else
		count_kernel(served(clock), 0); /* coarse: the vDSO's tick */
	return rc;
}

static __attribute__((noinline)) int counted_gettimeofday(struct timeval *tv,
							  void *tz)
{
	int rc = uclock_gettimeofday(tv, tz);

	count_served();
	return rc;
}

static __attribute__((noinline)) time_t counted_time(time_t *t)
{
	/* The kernel's tick, read by its vDSO. */
	count_kernel(1, 0);
	return uclock_time(t);
}

#define COUNTED() __builtin_expect(__atomic_load_n(&stats, __ATOMIC_RELAXED) != NULL, 0)

EXPORT int clock_gettime(clockid_t clock, struct timespec *ts)
{
	if (COUNTED())
		return counted_gettime(clock, ts);
	return uclock_gettime(clock, ts);
}

EXPORT int __clock_gettime(clockid_t clock, struct timespec *ts)
{
	return clock_gettime(clock, ts);
}

EXPORT int gettimeofday(struct timeval *tv, void *tz)
{
	if (COUNTED())
		return counted_gettimeofday(tv, tz);
	return uclock_gettimeofday(tv, tz);
}

EXPORT int __gettimeofday(struct timeval *tv, void *tz)
{
	return gettimeofday(tv, tz);
}

EXPORT time_t time(time_t *t)
{
	if (COUNTED())
		return counted_time(t);
	return uclock_time(t);
}

/* Not faster through uclock, but the same answer either way: served ids
 * through uclock (the vDSO), the others through the C library, whose
 * answer for some ids differs from the kernel's system call. */
EXPORT int clock_getres(clockid_t clock, struct timespec *res)
{
	if (served(clock) || !libc_clock_getres)
		return uclock_getres(clock, res);
	return libc_clock_getres(clock, res);
}

/* C11: TIME_UTC is CLOCK_REALTIME; other bases are the C library's. */
EXPORT int timespec_get(struct timespec *ts, int base)
{
	if (base != TIME_UTC && libc_timespec_get)
		return libc_timespec_get(ts, base);
	if (base != TIME_UTC || clock_gettime(CLOCK_REALTIME, ts) != 0)
		return 0;
	return base;
}

/* Deprecated, but a program may still call it: as glibc, from REALTIME. */
EXPORT int ftime(struct timeb *tb)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	tb->time = ts.tv_sec;
	tb->millitm = (unsigned short)(ts.tv_nsec / 1000000);
	tb->timezone = 0;
	tb->dstflag = 0;
	return 0;
}
