/*
 * uclock check: the system calls each way of reading time really makes,
 * counted as strace counts them.  Each method runs in its own child, traced
 * with ptrace and stepped from system call to system call; two marker
 * system calls bracket the measured calls, so that the method's first-call
 * setup and the child's own plumbing are not counted.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "methods.h"

#define DEFAULT_CALLS 20000
#define MIN_CALLS 100
#define MAX_CALLS 10000000

/* Fewer system calls per call than this is user space: a rare slow path
 * (uclock re-reading the kernel) may make one now and then. */
#define USER_SPACE_LIMIT 0.01
/* Kernel time per call, with no system call seen, that means a trap: the
 * emulated vsyscall page costs hundreds of ns where a read costs tens. */
#define TRAP_LIMIT_NS 50.0

/*
 * The marker: getppid() ignores its arguments, so they carry a tag the
 * tracer reads from the registers ("uclock" in ASCII) and which end of
 * the window this is.  Nothing else calls getppid() with such arguments.
 */
#define MARKER_NR SYS_getppid
#define MARKER_TAG 0x75636c6f636bULL
enum marker { MARKER_NONE, MARKER_BEGIN, MARKER_END };

/*
 * The registers of a system call entry: read with PTRACE_GETREGS on
 * x86_64, with PTRACE_GET_SYSCALL_INFO elsewhere.  Without either, the
 * markers cannot be told apart and every system call is counted.
 */
#if defined(__x86_64__) || defined(PTRACE_GET_SYSCALL_INFO)
#define MARKERS_VISIBLE 1
#else
#define MARKERS_VISIBLE 0
#endif

/* What the child sends back through its pipe once it is done. */
struct child_report {
	int trace_error;    /* errno of PTRACE_TRACEME; 0: traced */
	double user_s;      /* CPU time of the window */
	double system_s;
};

struct result {
	const struct method *method;
	const struct result *reference;  /* the vDSO's same call, if measured */
	unsigned long syscalls;
	double user_s;
	double system_s;
	char error[128];    /* empty if measured */
};

enum outcome { MEASURED, METHOD_FAILED, CANNOT_TRACE };

static void marker(enum marker which)
{
	syscall(MARKER_NR, MARKER_TAG, (unsigned long)which);
}

static double seconds(const struct timeval *tv)
{
	return (double)tv->tv_sec + (double)tv->tv_usec / 1e6;
}

static void send_report(int fd, const struct child_report *report)
{
	/* A short write shows as a missing report in the parent. */
	if (write(fd, report, sizeof(*report)) != sizeof(*report))
		_exit(1);
}

/*
 * The traced child: stop for the tracer, warm the method up (uclock's
 * first call sets it up, with system calls of its own), then the window.
 * It leaves by _exit only: the parent's stdio buffers are not its own.
 */
static __attribute__((noreturn)) void child(const struct method *m, long calls,
					    int fd)
{
	struct child_report report = {0};
	struct rusage before, after;
	pid_t parent = getppid();

	/* Until the tracer sets PTRACE_O_EXITKILL: a stopped orphan would stay. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(1);
	if (ptrace(PTRACE_TRACEME, 0, NULL, NULL) != 0) {
		report.trace_error = errno;
		send_report(fd, &report);
		_exit(1);
	}
	raise(SIGSTOP);
	m->run(1);
	getrusage(RUSAGE_SELF, &before);
	marker(MARKER_BEGIN);
	m->run(calls);
	marker(MARKER_END);
	getrusage(RUSAGE_SELF, &after);
	report.user_s = seconds(&after.ru_utime) - seconds(&before.ru_utime);
	report.system_s = seconds(&after.ru_stime) - seconds(&before.ru_stime);
	send_report(fd, &report);
	_exit(0);
}

static int wait_for(pid_t pid, int *status)
{
	pid_t got;

	do
		got = waitpid(pid, status, 0);
	while (got < 0 && errno == EINTR);
	return got == pid ? 0 : -1;
}

/* SIGKILL ends a child even when it is stopped under ptrace. */
static void kill_and_reap(pid_t pid)
{
	int status;

	kill(pid, SIGKILL);
	while (wait_for(pid, &status) == 0 && !WIFEXITED(status) &&
	       !WIFSIGNALED(status))
		;
}

/* The marker the stopped child is entering, if any. */
static enum marker marker_at(pid_t pid)
{
	unsigned long long nr, tag, which;

#if defined(__x86_64__)
	struct user_regs_struct regs;

	if (ptrace(PTRACE_GETREGS, pid, NULL, &regs) != 0)
		return MARKER_NONE;
	nr = regs.orig_rax;
	tag = regs.rdi;
	which = regs.rsi;
#elif defined(PTRACE_GET_SYSCALL_INFO)
	struct __ptrace_syscall_info info;

	if (ptrace(PTRACE_GET_SYSCALL_INFO, pid, (void *)sizeof(info), &info) <= 0 ||
	    info.op != PTRACE_SYSCALL_INFO_ENTRY)
		return MARKER_NONE;
	nr = info.entry.nr;
	tag = info.entry.args[0];
	which = info.entry.args[1];
#else
	(void)pid;
	return MARKER_NONE;
#endif
	if (nr != MARKER_NR || tag != MARKER_TAG)
		return MARKER_NONE;
	return which == MARKER_BEGIN || which == MARKER_END ? (enum marker)which
							     : MARKER_NONE;
}

/*
 * The signal to pass on at a stop that is not a system call's.  A
 * group-stop (the child was stopped from outside) has no siginfo and
 * passes nothing on, which resumes the child.
 */
static int signal_to_deliver(pid_t pid, int sig)
{
	siginfo_t info;

	return ptrace(PTRACE_GETSIGINFO, pid, NULL, &info) == 0 ? sig : 0;
}

/*
 * Steps the child from system call to system call until it ends, counting
 * entries between the markers.  Stops alternate entry and exit, as in
 * strace; the markers themselves are not counted.  0 when the child has
 * ended (its status in *status), -1 if ptrace failed.
 */
static int count_syscalls(pid_t pid, unsigned long *syscalls, int *status)
{
	int entering = 0, inside = !MARKERS_VISIBLE, sig = 0;

	for (;;) {
		if (ptrace(PTRACE_SYSCALL, pid, NULL, (void *)(long)sig) != 0 ||
		    wait_for(pid, status) != 0)
			return -1;
		if (WIFEXITED(*status) || WIFSIGNALED(*status))
			return 0;
		sig = WSTOPSIG(*status);
		if (sig != (SIGTRAP | 0x80)) {
			sig = signal_to_deliver(pid, sig);
			continue;
		}
		sig = 0;
		entering = !entering;
		if (!entering)
			continue;
		switch (marker_at(pid)) {
		case MARKER_BEGIN:
			inside = 1;
			break;
		case MARKER_END:
			inside = 0;
			break;
		case MARKER_NONE:
			*syscalls += inside;
			break;
		}
	}
}

/* What ended a child that sent no report. */
static void describe_end(struct result *r, int status)
{
	if (WIFSIGNALED(status))
		snprintf(r->error, sizeof(r->error), "the child was killed by %s",
			 strsignal(WTERMSIG(status)));
	else
		snprintf(r->error, sizeof(r->error),
			 "the child exited with status %d before its report",
			 WEXITSTATUS(status));
}

/*
 * Forks the child and waits for it to stop under trace; its pid, or -1
 * with why in r->error (the child is gone then).
 */
static pid_t start_child(struct result *r, long calls, int fds[2],
			 enum outcome *outcome)
{
	struct child_report report;
	int status;
	pid_t pid;

	pid = fork();
	if (pid == 0) {
		close(fds[0]);
		child(r->method, calls, fds[1]);
	}
	close(fds[1]);
	*outcome = METHOD_FAILED;
	if (pid < 0) {
		snprintf(r->error, sizeof(r->error), "fork: %s", strerror(errno));
		return -1;
	}
	if (wait_for(pid, &status) != 0) {
		snprintf(r->error, sizeof(r->error), "waitpid: %s", strerror(errno));
		kill_and_reap(pid);
		return -1;
	}
	if (!WIFSTOPPED(status)) {
		/* Refused PTRACE_TRACEME: the child said why and left. */
		if (read(fds[0], &report, sizeof(report)) == sizeof(report) &&
		    report.trace_error) {
			*outcome = CANNOT_TRACE;
			snprintf(r->error, sizeof(r->error), "%s",
				 strerror(report.trace_error));
		} else {
			describe_end(r, status);
		}
		return -1;
	}
	if (ptrace(PTRACE_SETOPTIONS, pid, NULL,
		   (void *)(long)(PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL)) != 0) {
		*outcome = CANNOT_TRACE;
		snprintf(r->error, sizeof(r->error), "PTRACE_SETOPTIONS: %s",
			 strerror(errno));
		kill_and_reap(pid);
		return -1;
	}
	return pid;
}

static enum outcome measure(struct result *r, long calls)
{
	struct child_report report;
	enum outcome outcome;
	int fds[2], status;
	pid_t pid;

	if (pipe(fds) != 0) {
		snprintf(r->error, sizeof(r->error), "pipe: %s", strerror(errno));
		return METHOD_FAILED;
	}
	pid = start_child(r, calls, fds, &outcome);
	if (pid < 0) {
		close(fds[0]);
		return outcome;
	}
	if (count_syscalls(pid, &r->syscalls, &status) != 0) {
		snprintf(r->error, sizeof(r->error), "ptrace: %s", strerror(errno));
		kill_and_reap(pid);
		close(fds[0]);
		return METHOD_FAILED;
	}
	/* The child has been reaped; its report waits in the pipe. */
	if (read(fds[0], &report, sizeof(report)) != sizeof(report)) {
		describe_end(r, status);
		close(fds[0]);
		return METHOD_FAILED;
	}
	close(fds[0]);
	r->user_s = report.user_s;
	r->system_s = report.system_s;
	return MEASURED;
}

static int traced_kind(enum method_kind kind)
{
	return kind == KIND_SYSCALL || kind == KIND_VDSO || kind == KIND_LIBC ||
	       kind == KIND_VSYSCALL || kind == KIND_UCLOCK;
}

static double per_call(const struct result *r, long calls)
{
	return (double)r->syscalls / (double)calls;
}

static double kernel_ns_per_call(const struct result *r, long calls)
{
	return r->system_s * 1e9 / (double)calls;
}

static double cpu_ns_per_call(const struct result *r, long calls)
{
	return (r->user_s + r->system_s) * 1e9 / (double)calls;
}

/*
 * CPU time per call beyond the vDSO's for the same call.  User and system
 * time together are exact, but the kernel splits them by sampling at the
 * timer tick (without VIRT_CPU_ACCOUNTING_GEN): a window of a few
 * milliseconds can show no system time at all however long it trapped.
 */
static double extra_ns_per_call(const struct result *r, long calls)
{
	if (!r->reference || r->reference->error[0])
		return 0;
	return cpu_ns_per_call(r, calls) - cpu_ns_per_call(r->reference, calls);
}

/* The emulated vsyscall page traps into the kernel without a system call
 * that ptrace could see: only the time shows it. */
static int trapped(const struct result *r, long calls)
{
	return r->method->kind == KIND_VSYSCALL &&
	       (kernel_ns_per_call(r, calls) > TRAP_LIMIT_NS ||
		extra_ns_per_call(r, calls) > TRAP_LIMIT_NS);
}

static const char *verdict(const struct result *r, long calls)
{
	if (r->error[0])
		return "failed";
	if (per_call(r, calls) >= USER_SPACE_LIMIT)
		return "system call";
	return trapped(r, calls) ? "trap (emulated)" : "user space";
}

static const struct result *find_result(const struct result *results, int count,
					const char *name)
{
	for (int i = 0; i < count; i++)
		if (!strcmp(results[i].method->name, name))
			return &results[i];
	return NULL;
}

static int user_space(const struct result *r, long calls)
{
	return r && !r->error[0] && per_call(r, calls) < USER_SPACE_LIMIT;
}

/* "the vDSO runs in user space", "uclock makes 1.00 system calls per call" */
static void describe(const char *who, const struct result *r, long calls)
{
	if (!r || r->error[0])
		printf("%s was not measured", who);
	else if (user_space(r, calls))
		printf("%s runs in user space", who);
	else
		printf("%s makes %.2f system calls per call", who, per_call(r, calls));
}

/* The answer to the seeds' question, for CLOCK_MONOTONIC. */
static void summarize_monotonic(const struct result *results, int count, long calls)
{
	const struct result *sys, *vdso, *uclock;

	sys = find_result(results, count, "syscall clock_gettime(MONOTONIC)");
	vdso = find_result(results, count, "vdso clock_gettime(MONOTONIC)");
	uclock = find_result(results, count, "uclock_gettime(MONOTONIC)");
	printf("clock_gettime(MONOTONIC): ");
	if (user_space(vdso, calls) && user_space(uclock, calls)) {
		printf("the vDSO and uclock run in user space");
	} else {
		describe("the vDSO", vdso, calls);
		printf("; ");
		describe("uclock", uclock, calls);
	}
	if (sys && !sys->error[0])
		printf("; a raw system call makes %.2f per call", per_call(sys, calls));
	printf(".\n");
}

/* The legacy page, which ptrace cannot see when the kernel emulates it. */
static void summarize_vsyscall(const struct result *results, int count, long calls)
{
	for (int i = 0; i < count; i++) {
		const struct result *r = &results[i];

		if (r->method->kind != KIND_VSYSCALL || r->error[0])
			continue;
		if (!user_space(r, calls))
			return;
		printf("vsyscall page: no system call that ptrace sees; %.0f ns of "
		       "system time and %.0f ns more CPU\nthan the vDSO per call",
		       kernel_ns_per_call(r, calls), extra_ns_per_call(r, calls));
		if (trapped(r, calls))
			printf(": the kernel emulates the page (a trap, not a "
			       "system call).\n");
		else
			printf(".\n");
		return;
	}
}

/* uclock's readers that did not stay in user space, if any. */
static void summarize_uclock(const struct result *results, int count, long calls)
{
	int listed = 0;

	for (int i = 0; i < count; i++) {
		const struct result *r = &results[i];

		if (r->method->kind != KIND_UCLOCK || r->error[0] ||
		    user_space(r, calls))
			continue;
		printf("%s%s", listed++ ? ", " : "uclock calls that made system calls: ",
		       r->method->name);
	}
	if (listed)
		printf(".\n");
}

static void print_row(const struct result *r, long calls)
{
	if (r->error[0]) {
		printf("%-48s %8ld  failed: %s\n", r->method->name, calls, r->error);
		return;
	}
	printf("%-48s %8ld %14.2f %9.2f %9.2f  %s\n", r->method->name, calls,
	       per_call(r, calls), r->user_s * 1e3, r->system_s * 1e3,
	       verdict(r, calls));
}

static void print_table(const struct result *results, int count, long calls)
{
	printf("System calls per call, counted with ptrace as strace counts them "
	       "(%ld calls each):\n\n", calls);
	printf("%-48s %8s %14s %9s %9s  %s\n", "method", "calls", "syscalls/call",
	       "user ms", "sys ms", "verdict");
	for (int i = 0; i < count; i++)
		print_row(&results[i], calls);
	for (int i = 0; i < method_count; i++) {
		const char *why;

		if (traced_kind(methods[i].kind) && !method_available(&methods[i], &why))
			printf("not run: %s (%s)\n", methods[i].name, why);
	}
	/* Without VIRT_CPU_ACCOUNTING_GEN the kernel samples the user/system
	 * split at the timer tick: total CPU time is exact, the split is not. */
	printf("\nTimes are CPU time inside the window, under ptrace: each system "
	       "call stops\nthe child twice.  The user/system split is sampled "
	       "at the timer tick.\n\n");
	summarize_monotonic(results, count, calls);
	summarize_uclock(results, count, calls);
	summarize_vsyscall(results, count, calls);
}

/* Every key in every row; what a failed method did not measure is null. */
static void json_result(struct json *j, const struct result *r, long calls)
{
	json_object(j, NULL);
	json_string(j, "name", r->method->name);
	json_string(j, "kind", method_kind_name(r->method->kind));
	json_uint(j, "calls", (unsigned long long)calls);
	if (r->error[0]) {
		json_null(j, "syscalls");
		json_null(j, "syscalls_per_call");
		json_null(j, "user_time_s");
		json_null(j, "system_time_s");
		json_null(j, "system_time_per_call_ns");
		json_null(j, "cpu_time_per_call_ns");
	} else {
		json_uint(j, "syscalls", r->syscalls);
		json_double(j, "syscalls_per_call", per_call(r, calls));
		json_double(j, "user_time_s", r->user_s);
		json_double(j, "system_time_s", r->system_s);
		json_double(j, "system_time_per_call_ns", kernel_ns_per_call(r, calls));
		json_double(j, "cpu_time_per_call_ns", cpu_ns_per_call(r, calls));
	}
	json_string(j, "verdict", verdict(r, calls));
	json_string(j, "error", r->error[0] ? r->error : NULL);
	json_end(j);
}

static void json_skipped(struct json *j)
{
	json_array(j, "skipped");
	for (int i = 0; i < method_count; i++) {
		const char *why;

		if (!traced_kind(methods[i].kind) || method_available(&methods[i], &why))
			continue;
		json_object(j, NULL);
		json_string(j, "name", methods[i].name);
		json_string(j, "reason", why);
		json_end(j);
	}
	json_end(j);
}

/* 'error' is NULL when tracing worked; else nothing was measured. */
static int print_json(const struct result *results, int count, long calls,
		      const char *error)
{
	struct json *j = json_open(stdout);

	if (!j)
		return 1;
	json_uint(j, "calls", (unsigned long long)calls);
	json_string(j, "error", error);
	if (error) {
		json_null(j, "methods");
		json_null(j, "skipped");
	} else {
		json_array(j, "methods");
		for (int i = 0; i < count; i++)
			json_result(j, &results[i], calls);
		json_end(j);
		json_skipped(j);
	}
	json_close(j);
	return 0;
}

/* Runs every traced kind of method that is available, with progress on a
 * terminal; the number run, or -1 if no child can be traced here (why in
 * results[0].error). */
static int run_all(struct result *results, long calls, int *failed)
{
	int count = 0;

	for (int i = 0; i < method_count; i++) {
		const char *why;
		struct result *r = &results[count];

		if (!traced_kind(methods[i].kind) || !method_available(&methods[i], &why))
			continue;
		memset(r, 0, sizeof(*r));
		r->method = &methods[i];
		progress((double)i / method_count, methods[i].name);
		switch (measure(r, calls)) {
		case CANNOT_TRACE:
			progress(1.0, "");
			memmove(&results[0], r, sizeof(*r));
			return -1;
		case METHOD_FAILED:
			*failed = 1;
			break;
		case MEASURED:
			break;
		}
		count++;
	}
	progress(1.0, "");
	for (int i = 0; i < count; i++)
		results[i].reference = find_result(results, count,
						   results[i].method->reference);
	return count;
}

static int help(void)
{
	printf("usage: uclock check [--json] [--calls N]\n\n"
	       "Runs each way of reading time N times (default %d, from %d to %d)\n"
	       "in a child traced with ptrace, as strace does, and counts the\n"
	       "system calls it really makes per call, with the CPU time it used.\n"
	       "A method making fewer than %.2f per call runs in user space.\n\n"
	       "  --calls N   calls per method\n"
	       "  --json      one JSON object instead of the table\n"
	       "  -h, --help  this help\n\n"
	       "Exit status: 0 measured, 1 no child could be traced or a method\n"
	       "failed, 2 bad usage.\n",
	       DEFAULT_CALLS, MIN_CALLS, MAX_CALLS, USER_SPACE_LIMIT);
	return 0;
}

/* -1 to go on, or the exit status: 0 after --help, 2 for bad usage. */
static int parse_options(int argc, char **argv, int *json, long *calls)
{
	static const struct option options[] = {
		{"json", no_argument, NULL, 'j'},
		{"calls", required_argument, NULL, 'n'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
		switch (c) {
		case 'j':
			*json = 1;
			break;
		case 'n':
			if (parse_long(optarg, MIN_CALLS, MAX_CALLS, calls) != 0)
				return usage_error("check", "--calls wants a whole number "
						   "from %d to %d, not '%s'",
						   MIN_CALLS, MAX_CALLS, optarg);
			break;
		case 'h':
			return help();
		default:
			return option_error("check", c, argv);
		}
	}
	if (optind < argc)
		return usage_error("check", "unexpected argument '%s'", argv[optind]);
	return -1;
}

int cmd_check(int argc, char **argv)
{
	struct result *results;
	long calls = DEFAULT_CALLS;
	int json = 0, failed = 0, count, status;

	status = parse_options(argc, argv, &json, &calls);
	if (status >= 0)
		return status;
	results = calloc((size_t)method_count, sizeof(*results));
	if (!results) {
		fprintf(stderr, "uclock check: out of memory\n");
		return 1;
	}
	count = run_all(results, calls, &failed);
	if (count < 0) {
		char error[160];

		snprintf(error, sizeof(error), "cannot trace a child: %s",
			 results[0].error);
		fprintf(stderr, "uclock check: %s\n", error);
		if (json)
			print_json(results, 0, calls, error);
		free(results);
		return 1;
	}
	if (json)
		print_json(results, count, calls, NULL);
	else
		print_table(results, count, calls);
	free(results);
	return failed;
}
