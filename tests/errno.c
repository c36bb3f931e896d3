/*
 * Every clock id uclock does not serve goes to the kernel: return value and
 * errno are exactly the kernel's (system call), for clock_gettime with and
 * without a result pointer, and for clock_getres.  Also with no vDSO.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "check.h"
#include "uclock.h"

/* Kernel encodings of CPU-time clocks (include/linux/posix-timers.h). */
#define CPUCLOCK(pid, type) (clockid_t)((~(unsigned)(pid) << 3) | (unsigned)(type))
#define FD_CLOCK(fd) (clockid_t)((~(unsigned)(fd) << 3) | 3u)

static void compare(clockid_t id, int null_ts)
{
	struct timespec a, b;
	int ra, rb, ea, eb;

	errno = 0;
	ra = (int)syscall(SYS_clock_gettime, id, null_ts ? NULL : &a);
	ea = errno;
	errno = 0;
	rb = uclock_gettime(id, null_ts ? NULL : &b);
	eb = errno;
	CHECK(ra == rb && (ra == 0 || ea == eb),
	      "clock_gettime(%d, %s): kernel %d/%d, uclock %d/%d", (int)id,
	      null_ts ? "NULL" : "&ts", ra, ea, rb, eb);

	errno = 0;
	ra = (int)syscall(SYS_clock_getres, id, null_ts ? NULL : &a);
	ea = errno;
	errno = 0;
	rb = uclock_getres(id, null_ts ? NULL : &b);
	eb = errno;
	CHECK(ra == rb && (ra == 0 || ea == eb),
	      "clock_getres(%d, %s): kernel %d/%d, uclock %d/%d", (int)id,
	      null_ts ? "NULL" : "&ts", ra, ea, rb, eb);
	if (ra == 0 && !null_ts)
		CHECK(a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec,
		      "clock_getres(%d): kernel %ld ns, uclock %ld ns", (int)id,
		      a.tv_nsec, b.tv_nsec);
}

static int all(void)
{
	clockid_t ids[128];
	int n = 0;
	clockid_t cpu;

	for (clockid_t id = -16; id < 40; id++)
		ids[n++] = id;
	ids[n++] = INT_MIN;
	ids[n++] = INT_MAX;
	ids[n++] = CPUCLOCK(getpid(), 0);     /* process CPU time, profiling */
	ids[n++] = CPUCLOCK(getpid(), 2);     /* sched */
	ids[n++] = CPUCLOCK(gettid(), 6);     /* thread */
	ids[n++] = CPUCLOCK(99999999, 2);    /* no such process */
	ids[n++] = CPUCLOCK(getpid(), 3);     /* invalid type */
	ids[n++] = FD_CLOCK(0);               /* stdin is no clock */
	ids[n++] = FD_CLOCK(12345);           /* no such fd */
	if (pthread_getcpuclockid(pthread_self(), &cpu) == 0)
		ids[n++] = cpu;
	if (clock_getcpuclockid(getpid(), &cpu) == 0)
		ids[n++] = cpu;
	for (int i = 0; i < n; i++) {
		compare(ids[i], 0);
		compare(ids[i], 1);
	}
	return check_done("errno");
}

int main(void)
{
	static const char *const syscalls[] = {"UCLOCK_VDSO=off", NULL};
	static const char *const kernel[] = {"UCLOCK_SOURCE=kernel", NULL};

	return in_child(NULL, all) | in_child(syscalls, all) | in_child(kernel, all);
}
