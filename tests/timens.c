/*
 * Time namespaces: a process in a new time namespace (MONOTONIC and
 * BOOTTIME offset, REALTIME not) gets its own namespace's clocks from
 * uclock, both when it starts uclock there and when it inherited a running
 * timekeeper from a parent in the old namespace (fork).
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "uclock.h"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

static int in_bracket(clockid_t id)
{
	int bad = 0;

	for (int i = 0; i < 1000; i++) {
		struct timespec ts;
		int64_t before = vdso_ns(id);
		int rc = uclock_gettime(id, &ts);
		int64_t after = vdso_ns(id);

		if (rc || ts_ns(&ts) < before - test_slack_ns(100) ||
		    ts_ns(&ts) > after + test_slack_ns(100)) {
			if (!bad)
				fprintf(stderr, "clock %d: %lld not in [%lld, %lld]\n", (int)id,
					(long long)ts_ns(&ts), (long long)before,
					(long long)after);
			bad = 1;
		}
	}
	return bad;
}

static int child_checks(void)
{
	static const clockid_t ids[] = {CLOCK_MONOTONIC, CLOCK_MONOTONIC_RAW,
					CLOCK_BOOTTIME, CLOCK_REALTIME, CLOCK_TAI,
					CLOCK_MONOTONIC_COARSE};
	int bad = 0;

	for (unsigned i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
		bad |= in_bracket(ids[i]);
	return bad;
}

static int run_child(void)
{
	int status;
	pid_t pid = fork();

	if (pid == 0)
		_exit(child_checks());
	return pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status)
		       ? WEXITSTATUS(status)
		       : 1;
}

/* A program that starts uclock only in the namespace: this one, again.
 * Under an emulator without binfmt_misc the kernel cannot run it (ENOEXEC):
 * said, and not counted as a failure. */
#define CANNOT_EXEC 126
static int fresh_process(void)
{
	int status;
	pid_t pid = fork();

	if (pid == 0) {
		execl("/proc/self/exe", "timens", "child", (char *)NULL);
		_exit(errno == ENOEXEC ? CANNOT_EXEC : 127);
	}
	if (pid <= 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return 1;
	if (WEXITSTATUS(status) == CANNOT_EXEC) {
		printf("note: this program cannot be run again here (ENOEXEC: an "
		       "emulator): a new program in the namespace not checked\n");
		return 0;
	}
	return WEXITSTATUS(status);
}

int main(int argc, char **argv)
{
	int fd;
	int64_t parent_mono, child_mono;

	if (argc > 1 && strcmp(argv[1], "child") == 0)
		return child_checks();
	/* The parent's timekeeper runs before the namespace exists. */
	for (int i = 0; i < 100000; i++)
		uclock_mono_ns();
	parent_mono = uclock_mono_ns();
	if (unshare(CLONE_NEWTIME) != 0)
		check_skip("unshare(CLONE_NEWTIME): %s", strerror(errno));
	fd = open("/proc/self/timens_offsets", O_WRONLY);
	if (fd < 0)
		check_skip("/proc/self/timens_offsets: %s", strerror(errno));
	/* A day ahead for MONOTONIC, two for BOOTTIME. */
	const char *offsets = "monotonic 86400 0\nboottime 172800 0\n";
	if (write(fd, offsets, strlen(offsets)) != (ssize_t)strlen(offsets))
		check_skip("writing time namespace offsets: %s", strerror(errno));
	close(fd);

	/* Children are in the new namespace; the parent is not. */
	CHECK(run_child() == 0, "child inheriting the parent's timekeeper");
	CHECK(in_bracket(CLOCK_MONOTONIC) == 0, "parent after the children");
	child_mono = parent_mono; /* the child's clock is a day ahead: */
	{
		int pipefd[2];
		pid_t pid;
		int64_t v = 0;

		CHECK(pipe(pipefd) == 0, "pipe");
		pid = fork();
		if (pid == 0) {
			v = uclock_mono_ns();
			_exit(write(pipefd[1], &v, sizeof(v)) == sizeof(v) ? 0 : 1);
		}
		waitpid(pid, NULL, 0);
		CHECK(read(pipefd[0], &v, sizeof(v)) == sizeof(v), "read child value");
		child_mono = v;
	}
	CHECK(child_mono - parent_mono > 86400LL * 1000000000,
	      "child MONOTONIC %lld is not a day ahead of the parent's %lld",
	      (long long)child_mono, (long long)parent_mono);
	CHECK(fresh_process() == 0, "a new program in the namespace");
	return check_done("timens");
}
