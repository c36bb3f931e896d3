/*
 * A reader in a sandbox, for tests/sandbox.sh: libuclock where system
 * calls are forbidden or fail, without /proc, in another time namespace,
 * under strace.
 *   sandbox_reader probe            seccomp filters permitted here? (77 if not)
 *   sandbox_reader vdso-check       "strict" if the vDSO serves every clock
 *                                   without a system call, else "loose"
 *   sandbox_reader stat             mode and page reason after a first read
 *   sandbox_reader mono             the kernel's MONOTONIC, in seconds
 *   sandbox_reader eperm mono|real counter|warmup|kernel
 *       with UCLOCK_VDSO=off: read until that mode, then clock_gettime(2)
 *       fails with EPERM: reads must come back -1/EPERM (within 2 s, by
 *       alarm), never hang, and no reading that succeeds may go back
 *   sandbox_reader run SECONDS strict|loose [shared]
 *       a first read (shared: and more until on uclockd's page, for 3 s at
 *       most), then a whitelist filter (any other system call kills
 *       the process; strict: clock_gettime only for the test's own
 *       brackets); every served clock, gettimeofday, mono_ns and real_ns,
 *       each reading between two of the kernel's, for SECONDS
 *   sandbox_reader noproc SECONDS   (run with /proc unmounted) not attached,
 *       and the clocks of its own time namespace
 *   sandbox_reader clone            attached, then children in another time
 *       namespace by raw clone() (no atfork handlers) and by fork()
 *   sandbox_reader strace N SLEEP_US
 *       one read, a marker on stderr, N reads of MONOTONIC, another marker:
 *       the system calls between them are the reads' (and the sleeps': the
 *       read i is due SLEEP_US * i after the first marker, and the reader
 *       sleeps until then when its reading says it is early)
 * Exit 0 if right, 1 if not, 77 if the sandbox cannot be made here.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/time.h>

#include "sandbox.h"
#include "uclock.h"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

/* ---- uclock's readers, as kinds to check ---- */

SANDBOX_READERS(uclock_gettime, uclock_gettimeofday)

static int rd_mono_ns(int64_t *ns)
{
	*ns = uclock_mono_ns();
	return *ns == INT64_MIN ? -1 : 0;
}

static int rd_real_ns(int64_t *ns)
{
	*ns = uclock_real_ns();
	return *ns == INT64_MIN ? -1 : 0;
}

#define K(name, kernel, unit, fn) {name, kernel, unit, fn}
static const struct kind all_kinds[] = {
	K("uclock_gettime(REALTIME)", CLOCK_REALTIME, 1, rd_real),
	K("uclock_gettime(MONOTONIC)", CLOCK_MONOTONIC, 1, rd_mono),
	K("uclock_gettime(MONOTONIC_RAW)", CLOCK_MONOTONIC_RAW, 1, rd_raw),
	K("uclock_gettime(BOOTTIME)", CLOCK_BOOTTIME, 1, rd_boot),
	K("uclock_gettime(TAI)", CLOCK_TAI, 1, rd_tai),
	K("uclock_gettime(REALTIME_COARSE)", CLOCK_REALTIME_COARSE, 1, rd_real_coarse),
	K("uclock_gettime(MONOTONIC_COARSE)", CLOCK_MONOTONIC_COARSE, 1, rd_mono_coarse),
	K("uclock_gettimeofday", CLOCK_REALTIME, 1000, rd_tv),
	K("uclock_mono_ns", CLOCK_MONOTONIC, 1, rd_mono_ns),
	K("uclock_real_ns", CLOCK_REALTIME, 1, rd_real_ns),
};
#define NKINDS (int)(sizeof(all_kinds) / sizeof(all_kinds[0]))

/* The clocks a time namespace moves (MONOTONIC, with RAW, and BOOTTIME),
 * and REALTIME, which it does not. */
static const struct kind ns_kinds[] = {
	K("uclock_mono_ns", CLOCK_MONOTONIC, 1, rd_mono_ns),
	K("uclock_gettime(MONOTONIC)", CLOCK_MONOTONIC, 1, rd_mono),
	K("uclock_gettime(BOOTTIME)", CLOCK_BOOTTIME, 1, rd_boot),
	K("uclock_gettime(MONOTONIC_RAW)", CLOCK_MONOTONIC_RAW, 1, rd_raw),
	K("uclock_gettime(REALTIME)", CLOCK_REALTIME, 1, rd_real),
};
#define NS_KINDS (int)(sizeof(ns_kinds) / sizeof(ns_kinds[0]))

static struct uclock_stat stat_now(void)
{
	struct uclock_stat st = {.size = sizeof(st)};

	uclock_stat(&st);
	return st;
}

static const char *mode_name(void)
{
	return stat_now().mode_name;
}

static void say_stat(const char *who)
{
	struct uclock_stat st = stat_now();

	say("%s mode=%s\n%s reason=%s\n", who, st.mode_name, who,
	    st.page_reason ? st.page_reason : "");
}

/* ---- probes ---- */

static int vdso_check(void)
{
	static const clockid_t ids[] = {CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_MONOTONIC_RAW,
					CLOCK_BOOTTIME, CLOCK_TAI, CLOCK_REALTIME_COARSE,
					CLOCK_MONOTONIC_COARSE};
	int status;
	pid_t pid = fork();

	if (pid == 0) {
		if (install_errno(SYS_clock_gettime, EXFULL) != 0)
			_exit(100);
		for (unsigned i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
			struct timespec ts;
			if (clock_gettime(ids[i], &ts) != 0)
				_exit(1 + (int)i);
		}
		_exit(0);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
	    WEXITSTATUS(status) == 100) {
		say("loose (cannot tell)\n");
		return 0;
	}
	if (WEXITSTATUS(status) == 0)
		say("strict\n");
	else
		say("loose (the vDSO makes a system call for clock id %d)\n",
		    (int)ids[WEXITSTATUS(status) - 1]);
	return 0;
}

/* ---- case 1: clock_gettime(2) fails with EPERM ---- */

static volatile sig_atomic_t expired;

static void on_alarm(int sig)
{
	(void)sig;
	expired = 1;
}

static int eperm(const char *which, const char *phase)
{
	clockid_t id = strcmp(which, "real") == 0 ? CLOCK_REALTIME : CLOCK_MONOTONIC;
	int64_t end = sys_ns(CLOCK_MONOTONIC) + 3 * NS, last = INT64_MIN;
	struct timespec ts;
	struct uclock_stat st;
	struct sigaction sa;
	long before = 0, failed = 0, after = 0, back = 0, other = 0;
	int other_errno = 0;

	if (uclock_gettime(id, &ts) != 0) {
		say("first read failed: %s\n", strerror(errno));
		return 1;
	}
	last = ts_ns(&ts);
	if (strcmp(phase, "counter") == 0) {
		while (strcmp(stat_now().mode_name, "counter") != 0 &&
		       sys_ns(CLOCK_MONOTONIC) < end) {
			if (uclock_gettime(id, &ts) != 0) {
				say("read failed before the filter: %s\n", strerror(errno));
				return 1;
			}
			back += ts_ns(&ts) < last;
			last = ts_ns(&ts);
		}
	}
	st = stat_now();
	say("mode_at_filter=%s\n", st.mode_name);
	if (strcmp(st.mode_name, phase) != 0) {
		say("not in mode %s when the filter was to be installed\n", phase);
		return 1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sigaction(SIGALRM, &sa, NULL);
	if (install_errno(SYS_clock_gettime, EPERM) != 0) {
		say("SKIP seccomp not permitted: %s\n", strerror(errno));
		return 77;
	}
	alarm(2);
	while (!expired && failed < 1000) {
		if (uclock_gettime(id, &ts) == 0) {
			back += ts_ns(&ts) < last;
			last = ts_ns(&ts);
			if (failed)
				after++;
			else
				before++;
		} else if (errno == EPERM) {
			failed++;
		} else {
			other++;
			other_errno = errno;
		}
	}
	alarm(0);
	say("read_before_eperm=%ld\neperm=%ld\nread_after_eperm=%ld\nback=%ld\n"
	    "other_errors=%ld (errno %d)\nexpired=%d\n", before, failed, after, back, other,
	    other_errno, (int)expired);
	/* In warm-up (and pass-through) every answer is the kernel's: none
	 * without it. */
	int kernel_only = strcmp(phase, "counter") != 0;
	if (kernel_only && before)
		say("readings succeeded in %s mode with the kernel's clock failing\n", phase);
	return failed && !back && !other && !(kernel_only && before) ? 0 : 1;
}

/* ---- case 2: a whitelist; anything else kills ---- */

/* Read until on uclockd's page (a busy daemon may have left it stale at
 * the first read: the page is looked at again after a second). */
static void until_shared(void)
{
	int64_t v, end = sys_ns(CLOCK_MONOTONIC) + 3 * NS;

	while (stat_now().mode != UCLOCK_MODE_SHARED && sys_ns(CLOCK_MONOTONIC) < end)
		rd_mono(&v);
}

static int run(double seconds, int strict, int shared)
{
	int64_t v;
	int rc;

	say("pid=%d\n", (int)getpid());
	rd_mono(&v); /* the first read: files opened, the page mapped */
	if (shared)
		until_shared();
	say_stat("first");
	if (install_whitelist(strict) != 0) {
		say("SKIP seccomp not permitted: %s\n", strerror(errno));
		return 77;
	}
	say("filtered=%s\n", strict ? "strict" : "loose");
	rc = bracket_loop("run", all_kinds, NKINDS, seconds, mode_name);
	say_stat("last");
	return rc;
}

/* ---- case 3: no /proc ---- */

static int noproc(double seconds)
{
	int64_t v;
	int rc;

	rd_mono(&v);
	say_stat("noproc");
	say("proc=%s\n", access("/proc/self/ns", F_OK) == 0 ? "present" : "absent");
	say("mono_s=%lld\n", (long long)(sys_ns(CLOCK_MONOTONIC) / NS));
	rc = bracket_loop("noproc", ns_kinds, NS_KINDS, seconds, mode_name);
	say_stat("noproc_last");
	return rc;
}

/* ---- case 4: children in another time namespace ---- */

#define AHEAD_S 100000

/* A new time namespace for this process's children, its clocks ahead. */
static int new_timens(long long seconds)
{
	char text[128];
	int fd, n;

	if (unshare(CLONE_NEWTIME) != 0)
		return -1;
	n = snprintf(text, sizeof(text), "monotonic %lld 0\nboottime %lld 0\n", seconds,
		     seconds);
	fd = open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (write(fd, text, (size_t)n) != n) {
		int err = errno;
		close(fd);
		errno = err;
		return -1;
	}
	return close(fd);
}

/* ...and this process in it (single-threaded: setns permits it). */
static int enter_new_timens(long long seconds)
{
	int fd;

	if (new_timens(seconds) != 0)
		return -1;
	fd = open("/proc/self/ns/time_for_children", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (setns(fd, CLONE_NEWTIME) != 0) {
		int err = errno;
		close(fd);
		errno = err;
		return -1;
	}
	return close(fd);
}

/*
 * A child's check: its kernel clocks moved, and uclock's with them, from
 * its first reading on (the parent's page, copied into it, is fresh).
 */
static int child_check(const char *who, int64_t base, const struct kind *kinds,
		       int nkinds)
{
	int64_t mono = sys_ns(CLOCK_MONOTONIC);
	int rc;

	if (mono - base < (int64_t)(AHEAD_S - 10) * NS) {
		say("%s: the child's MONOTONIC is not %d s ahead (%+lld ns): no new namespace\n",
		    who, AHEAD_S, (long long)(mono - base));
		return 1;
	}
	rc = bracket_loop(who, kinds, nkinds, 0.1, mode_name);
	struct uclock_stat st = stat_now();
	say("%s mode=%s\n%s reason=%s\n", who, st.mode_name, who, st.page_reason);
	if (st.mode == UCLOCK_MODE_SHARED) {
		say("%s: still on the page of another time namespace\n", who);
		rc = 1;
	}
	return rc;
}

static int waited(const char *who, pid_t pid)
{
	int status;

	if (pid < 0) {
		say("%s: cannot make a child: %s\n", who, strerror(errno));
		return 1;
	}
	if (waitpid(pid, &status, 0) != pid) {
		say("%s: waitpid: %s\n", who, strerror(errno));
		return 1;
	}
	if (WIFSIGNALED(status)) {
		say("%s: child killed by signal %d\n", who, WTERMSIG(status));
		return 1;
	}
	return WEXITSTATUS(status);
}

static pid_t raw_clone(void)
{
	return (pid_t)syscall(SYS_clone, (long)SIGCHLD, 0L, 0L, 0L, 0L);
}

/* The kinds in another order: each child's first reading another reader. */
static void rotate(struct kind *out, int by)
{
	for (int i = 0; i < NS_KINDS; i++)
		out[i] = ns_kinds[(i + by) % NS_KINDS];
}

enum how {
	CLONE_ENTER, /* raw clone; the child makes a namespace and enters it */
	CLONE_BORN,  /* raw clone into the parent's namespace for children */
	FORK_BORN,   /* fork() into it */
	FORK_ENTER,  /* fork(); the child makes one of its own, enters it */
};

/*
 * Children made one way, one after another: each is made right after a
 * reading of the parent (its copy of the page is then fresh, and would be
 * read if the child did not find it wiped), at a different moment of the
 * page's life.
 */
#define CHILDREN 5

static int children(const char *who, enum how how)
{
	int bad = 0;

	for (int i = 0; i < CHILDREN; i++) {
		struct kind kinds[NS_KINDS];
		int64_t v, base;
		pid_t pid;
		int rc;

		rotate(kinds, i);
		base = sys_ns(CLOCK_MONOTONIC);
		rd_mono(&v);
		pid = how == CLONE_ENTER || how == CLONE_BORN ? raw_clone() : fork();
		if (pid == 0) {
			if (how == FORK_ENTER) {
				/* Born AHEAD_S ahead; offsets count from the
				 * host's clocks: this one is AHEAD_S further. */
				base = sys_ns(CLOCK_MONOTONIC);
				if (enter_new_timens(2 * AHEAD_S) != 0) {
					say("%s: %s\n", who, strerror(errno));
					_exit(1);
				}
			} else if (how == CLONE_ENTER && enter_new_timens(AHEAD_S) != 0) {
				say("SKIP no time namespace for a child: %s\n", strerror(errno));
				_exit(77);
			}
			_exit(child_check(who, base, kinds, NS_KINDS));
		}
		rc = waited(who, pid);
		if (rc == 77)
			return 77;
		bad |= rc;
	}
	say("%s=%s\n", who, bad ? "FAIL" : "ok");
	return bad;
}

static int parent_reads(const char *who)
{
	int rc = bracket_loop(who, ns_kinds, NS_KINDS, 0.2, mode_name);

	say("%s=%s\n", who, rc ? "FAIL" : "ok");
	say_stat(who);
	return rc;
}

static int clones(void)
{
	int64_t v;
	int bad = 0, rc;

	rd_mono(&v);
	until_shared();
	say_stat("parent");
	if (stat_now().mode != UCLOCK_MODE_SHARED) {
		say("the parent is not attached\n");
		return 1;
	}
	/* (a) */
	rc = children("clone_enter", CLONE_ENTER);
	if (rc == 77)
		return 77;
	bad |= rc;
	bad |= parent_reads("parent_a");
	/* (b) the parent makes a namespace for its children (its own clocks
	 * stay): they are born in it. */
	if (new_timens(AHEAD_S) != 0) {
		say("SKIP no time namespace: %s\n", strerror(errno));
		return 77;
	}
	bad |= children("clone_born", CLONE_BORN);
	bad |= parent_reads("parent_b");
	/* (c) fork(): the atfork handlers run too. */
	bad |= children("fork_born", FORK_BORN);
	bad |= children("fork_enter", FORK_ENTER);
	bad |= parent_reads("parent_c");
	return bad;
}

/* ---- case 5: system calls per read, under strace ---- */

static void ns_to_ts(int64_t ns, struct timespec *ts)
{
	ts->tv_sec = (time_t)(ns / NS);
	ts->tv_nsec = (long)(ns % NS);
}

static int traced(long n, long sleep_us)
{
	struct timespec ts, nap;
	int64_t last = INT64_MIN, t0, t1;
	long failed = 0, back = 0;
	static const char begin[] = "sandbox: steady reads begin\n";
	static const char end[] = "sandbox: steady reads end\n";

	uclock_gettime(CLOCK_MONOTONIC, &ts); /* the first read: files, warm-up */
	uint64_t updates = stat_now().updates;
	t0 = sys_ns(CLOCK_MONOTONIC);
	if (write(2, begin, sizeof(begin) - 1) < 0)
		return 1;
	/* Spread: read i at t0 + i * SLEEP_US, sleeping until then if the
	 * reading says it is not yet time (a traced sleep takes longer than
	 * asked: the reads still span about N * SLEEP_US). */
	for (long i = 0; i < n; i++) {
		if (uclock_gettime(CLOCK_MONOTONIC, &ts) != 0) {
			failed++;
		} else {
			back += ts_ns(&ts) < last;
			last = ts_ns(&ts);
		}
		int64_t due = t0 + (i + 1) * sleep_us * 1000;
		if (sleep_us && last < due) {
			ns_to_ts(due, &nap);
			clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &nap, NULL);
		}
	}
	if (write(2, end, sizeof(end) - 1) < 0)
		return 1;
	t1 = sys_ns(CLOCK_MONOTONIC);
	updates = stat_now().updates - updates;
	say("reads=%ld\nelapsed_us=%lld\nupdates=%llu\nfailed=%ld\nback=%ld\n", n,
	    (long long)((t1 - t0) / 1000), (unsigned long long)updates, failed, back);
	say_stat("strace");
	return failed || back;
}

int main(int argc, char **argv)
{
	const char *m = argc > 1 ? argv[1] : "";

	if (argc == 2 && !strcmp(m, "probe")) {
		if (probe_seccomp() != 0) {
			say("SKIP seccomp filters cannot be installed here\n");
			return 77;
		}
		say("seccomp=ok\n");
		return 0;
	}
	if (argc == 2 && !strcmp(m, "vdso-check"))
		return vdso_check();
	if (argc == 2 && !strcmp(m, "stat")) {
		int64_t v;
		rd_mono(&v);
		say_stat("stat");
		say("stat source=%s\n", stat_now().source_name);
		return 0;
	}
	if (argc == 2 && !strcmp(m, "mono")) {
		say("%lld\n", (long long)(sys_ns(CLOCK_MONOTONIC) / NS));
		return 0;
	}
	if (argc == 4 && !strcmp(m, "eperm"))
		return eperm(argv[2], argv[3]);
	if ((argc == 4 || (argc == 5 && !strcmp(argv[4], "shared"))) && !strcmp(m, "run"))
		return run(atof(argv[2]), !strcmp(argv[3], "strict"), argc == 5);
	if (argc == 3 && !strcmp(m, "noproc"))
		return noproc(atof(argv[2]));
	if (argc == 2 && !strcmp(m, "clone"))
		return clones();
	if (argc == 4 && !strcmp(m, "strace"))
		return traced(atol(argv[2]), atol(argv[3]));
	fprintf(stderr, "usage: sandbox_reader probe|vdso-check|stat|mono|"
			"eperm mono|real counter|warmup|kernel|run S strict|loose [shared]|"
			"noproc S|clone|"
			"strace N SLEEP_US\n");
	return 2;
}
