/*
 * What tests/sandbox.sh's two helpers share (sandbox_reader.c, through
 * libuclock; sandbox_libc.c, through the C library and the shim): seccomp
 * filters written by hand, the kernel's own readings, and a loop that
 * checks readings against them.
 *
 * The kernel's readings are system calls into one buffer, 'kts': a strict
 * filter lets clock_gettime(2) write there alone, so that any other
 * clock_gettime system call (the library's own) kills the process.
 */
#ifndef SANDBOX_H
#define SANDBOX_H

#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef SECCOMP_RET_KILL_PROCESS
#define SECCOMP_RET_KILL_PROCESS 0x80000000U
#endif
#ifndef __X32_SYSCALL_BIT
#define __X32_SYSCALL_BIT 0x40000000
#endif

/*
 * In a sanitizer build: no leak check (LeakSanitizer cannot work under
 * ptrace or without /proc, two of these sandboxes; every other test looks
 * for leaks), and the shim, itself instrumented, may be preloaded.  Set
 * here, not in ASAN_OPTIONS, which the runtime reads from /proc.
 */
const char *__asan_default_options(void);
__attribute__((used)) const char *__asan_default_options(void)
{
	return "detect_leaks=0:verify_asan_link_order=0";
}

#define SLACK_NS 1000
#define NS 1000000000LL

static struct timespec kts; /* the kernel's readings land here, only here */

static inline int64_t ts_ns(const struct timespec *ts)
{
	return (int64_t)ts->tv_sec * NS + ts->tv_nsec;
}

/*
 * One reader function a clock, each through 'gettime' (uclock_gettime, or
 * the C library's clock_gettime), and rd_tv through 'gettimeofday': the
 * same checks for the library and for programs under the shim.
 */
#define SANDBOX_GETTIME(fn, id, gettime)                                    \
	static int fn(int64_t *ns)                                          \
	{                                                                   \
		struct timespec ts = {0, 0};                                \
		int rc = gettime(id, &ts);                                  \
		*ns = ts_ns(&ts);                                           \
		return rc;                                                  \
	}
#define SANDBOX_READERS(gettime, gettimeofday)                              \
	SANDBOX_GETTIME(rd_real, CLOCK_REALTIME, gettime)                   \
	SANDBOX_GETTIME(rd_mono, CLOCK_MONOTONIC, gettime)                  \
	SANDBOX_GETTIME(rd_raw, CLOCK_MONOTONIC_RAW, gettime)               \
	SANDBOX_GETTIME(rd_boot, CLOCK_BOOTTIME, gettime)                   \
	SANDBOX_GETTIME(rd_tai, CLOCK_TAI, gettime)                         \
	SANDBOX_GETTIME(rd_real_coarse, CLOCK_REALTIME_COARSE, gettime)     \
	SANDBOX_GETTIME(rd_mono_coarse, CLOCK_MONOTONIC_COARSE, gettime)    \
	static int rd_tv(int64_t *ns)                                       \
	{                                                                   \
		struct timeval tv = {0, 0};                                 \
		int rc = gettimeofday(&tv, NULL);                           \
                                                                            \
		*ns = (int64_t)tv.tv_sec * NS + (int64_t)tv.tv_usec * 1000; \
		return rc;                                                  \
	}

/* The kernel's clock by the system call; INT64_MIN if it fails. */
static inline int64_t sys_ns(clockid_t id)
{
	if (syscall(SYS_clock_gettime, id, &kts) != 0)
		return INT64_MIN;
	return ts_ns(&kts);
}

/* Output without stdio: under a filter, stdio's first use of a stream
 * would fstat it. */
static inline void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline void say(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(buf))
		n = sizeof(buf) - 1;
	for (int off = 0; off < n;) {
		ssize_t w = write(1, buf + off, (size_t)(n - off));
		if (w <= 0)
			return;
		off += (int)w;
	}
}

/* ---- Filters ---- */

struct filter {
	struct sock_filter insn[64];
	unsigned short n;
};

static inline void emit(struct filter *f, unsigned short code, uint32_t k, uint8_t jt,
			uint8_t jf)
{
	if (f->n < sizeof(f->insn) / sizeof(f->insn[0]))
		f->insn[f->n++] = (struct sock_filter)BPF_JUMP(code, k, jt, jf);
}

static inline void ret(struct filter *f, uint32_t action)
{
	emit(f, BPF_RET | BPF_K, action, 0, 0);
}

/* Not x86-64 (or its x32 calls): killed.  Leaves the call's number in A. */
static inline void prologue(struct filter *f)
{
	emit(f, BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch), 0, 0);
	emit(f, BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0);
	ret(f, SECCOMP_RET_KILL_PROCESS);
	emit(f, BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr), 0, 0);
	emit(f, BPF_JMP | BPF_JGE | BPF_K, __X32_SYSCALL_BIT, 0, 1);
	ret(f, SECCOMP_RET_KILL_PROCESS);
}

static inline void allow(struct filter *f, long nr)
{
	emit(f, BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)nr, 0, 1);
	ret(f, SECCOMP_RET_ALLOW);
}

/* 0, or -1 with errno (seccomp not permitted, or no such kernel). */
static inline int install(struct filter *f)
{
	struct sock_fprog prog = {.len = f->n, .filter = f->insn};

	if (f->n >= sizeof(f->insn) / sizeof(f->insn[0])) {
		errno = E2BIG;
		return -1;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		return -1;
	return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0);
}

/* One call answers errno 'err'; everything else allowed. */
static inline int install_errno(long nr, int err)
{
	struct filter f = {.n = 0};

	prologue(&f);
	emit(&f, BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)nr, 0, 1);
	ret(&f, SECCOMP_RET_ERRNO | ((uint32_t)err & SECCOMP_RET_DATA));
	ret(&f, SECCOMP_RET_ALLOW);
	return install(&f);
}

/*
 * What a reading program needs, nothing else: any other system call kills
 * the process.  strict: clock_gettime only into 'kts' (the vDSO serves
 * every clock here, and so must the library); else any clock_gettime.
 */
static inline int install_whitelist(int strict)
{
	static const long allowed[] = {
		SYS_clock_nanosleep, SYS_nanosleep, SYS_write,   SYS_exit_group,
		SYS_exit,            SYS_rt_sigreturn, SYS_futex, SYS_getpid,
	};
	struct filter f = {.n = 0};
	uint64_t at = (uint64_t)(uintptr_t)&kts;

	prologue(&f);
	if (strict) {
		/* nr != clock_gettime: on to the list, A still the number. */
		emit(&f, BPF_JMP | BPF_JEQ | BPF_K, SYS_clock_gettime, 0, 6);
		emit(&f, BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[1]), 0, 0);
		emit(&f, BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)at, 0, 3);
		emit(&f, BPF_LD | BPF_W | BPF_ABS,
		     offsetof(struct seccomp_data, args[1]) + 4, 0, 0);
		emit(&f, BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)(at >> 32), 0, 1);
		ret(&f, SECCOMP_RET_ALLOW);
		ret(&f, SECCOMP_RET_KILL_PROCESS);
	} else {
		allow(&f, SYS_clock_gettime);
	}
	for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
		allow(&f, allowed[i]);
	ret(&f, SECCOMP_RET_KILL_PROCESS);
	return install(&f);
}

/* ---- Readings against the kernel's ---- */

/*
 * One way to read a clock: its value in ns (a coarser unit is scaled up),
 * the kernel clock that brackets it, and the unit (a reading truncated to
 * microseconds or seconds may lie that much below its bracket).
 */
struct kind {
	const char *name;
	clockid_t kernel;
	int64_t unit;
	int (*read)(int64_t *ns); /* 0, or -1 with errno */
};

struct tally {
	long readings, outside, back, failed;
	int64_t worst, last;
	int err;
};

#define MAX_KINDS 16

/*
 * Read every kind in turn for 'seconds' (by the kernel's MONOTONIC), each
 * reading between two of the kernel's: none more than SLACK_NS (plus its
 * unit) outside, none back, none failed.  mode(): the library's mode,
 * noted whenever it changes (NULL: not known).  Prints a report; 0 if
 * every reading was right.
 */
static inline int bracket_loop(const char *who, const struct kind *kinds, int nkinds,
			       double seconds, const char *(*mode)(void))
{
	struct tally t[MAX_KINDS];
	char modes[256] = "";
	const char *last_mode = "";
	int64_t end = sys_ns(CLOCK_MONOTONIC) + (int64_t)(seconds * 1e9);
	long total = 0;
	int bad = 0;

	memset(t, 0, sizeof(t));
	for (int k = 0; k < nkinds; k++)
		t[k].last = INT64_MIN;
	do {
		for (int round = 0; round < 50; round++) {
			for (int k = 0; k < nkinds; k++) {
				int64_t v = 0, before = sys_ns(kinds[k].kernel);
				int rc = kinds[k].read(&v);
				int err = errno;
				int64_t after = sys_ns(kinds[k].kernel);
				int64_t out = 0;

				t[k].readings++;
				if (rc != 0 || before == INT64_MIN || after == INT64_MIN) {
					t[k].failed++;
					t[k].err = rc != 0 ? err : 0;
					continue;
				}
				if (v < before - SLACK_NS - (kinds[k].unit - 1))
					out = before - v;
				else if (v > after + SLACK_NS)
					out = v - after;
				if (out) {
					t[k].outside++;
					if (out > t[k].worst)
						t[k].worst = out;
				}
				t[k].back += v < t[k].last;
				t[k].last = v;
			}
		}
		if (mode) {
			const char *m = mode();
			if (strcmp(m, last_mode) != 0 && strlen(modes) + strlen(m) + 2 < sizeof(modes)) {
				strcat(modes, modes[0] ? "," : "");
				strcat(modes, m);
				last_mode = m;
			}
		}
	} while (sys_ns(CLOCK_MONOTONIC) < end);

	for (int k = 0; k < nkinds; k++) {
		total += t[k].readings;
		if (t[k].outside || t[k].back || t[k].failed) {
			bad = 1;
			say("%s %s: %ld readings, %ld outside the kernel's brackets "
			    "(worst %lld ns), %ld back, %ld failed (errno %d)\n",
			    who, kinds[k].name, t[k].readings, t[k].outside,
			    (long long)t[k].worst, t[k].back, t[k].failed, t[k].err);
		}
	}
	say("%s readings=%ld\n%s kinds=%d\n%s bad=%d\n", who, total, who, nkinds, who, bad);
	if (mode)
		say("%s modes=%s\n", who, modes);
	return bad || total == 0;
}

/* ---- Probes ---- */

/*
 * In a child (a filter cannot be removed): is seccomp permitted here, and
 * does a filter take effect?  0 if so; else prints why.
 */
static inline int probe_seccomp(void)
{
	pid_t pid = fork();
	int status;

	if (pid < 0)
		return -1;
	if (pid == 0) {
		if (install_errno(SYS_getppid, EXFULL) != 0)
			_exit(10 + (errno < 200 ? errno : 0));
		_exit(syscall(SYS_getppid) == -1 && errno == EXFULL ? 0 : 2);
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1;
	if (WEXITSTATUS(status) >= 10) {
		say("seccomp filters not permitted here (%s)\n",
		    strerror(WEXITSTATUS(status) - 10));
		return -1;
	}
	if (WEXITSTATUS(status) != 0) {
		say("a seccomp filter did not take effect\n");
		return -1;
	}
	return 0;
}

#endif
