/*
 * A reader process for tests/uclockd.sh.
 *   page_reader stat             where this process reads time from
 *   page_reader run SECONDS      read and check for SECONDS; report
 *   page_reader ticks TICKS      uclock_ticks_to_ns(MONOTONIC, TICKS)
 *   page_reader now              a counter value to convert elsewhere
 *   page_reader fork             attached parent, then a fork child's check
 * run: every reading of MONOTONIC between the kernel's before and after it
 * (100 ns of slack), never back; and the modes it went through.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "uclock.h"

static int64_t kernel(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static struct uclock_stat stat_now(void)
{
	struct uclock_stat st = {.size = sizeof(st)};

	uclock_stat(&st);
	return st;
}

static int print_stat(void)
{
	struct uclock_stat st;

	uclock_mono_ns();
	st = stat_now();
	printf("mode=%s\npage=%s\nwriter=%d\nreason=%s\nsource=%s\ntrust=%s\n", st.mode_name,
	       st.page ? st.page : "", st.writer_pid, st.page_reason, st.source_name, st.reason);
	return 0;
}

static int run(double seconds)
{
	int64_t end = kernel(CLOCK_MONOTONIC) + (int64_t)(seconds * 1e9);
	int64_t last = INT64_MIN, worst = 0;
	long readings = 0, off = 0, back = 0;
	char modes[256] = "";
	const char *mode = "";

	while (kernel(CLOCK_MONOTONIC) < end) {
		for (int i = 0; i < 1000; i++) {
			struct timespec ts;
			int64_t before = kernel(CLOCK_MONOTONIC);
			uclock_gettime(CLOCK_MONOTONIC, &ts);
			int64_t after = kernel(CLOCK_MONOTONIC);
			int64_t v = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
			int64_t out = v < before - 100 ? before - v
				    : v > after + 100 ? v - after : 0;

			off += out > 0;
			if (out > worst)
				worst = out;
			back += v < last;
			last = v;
			readings++;
		}
		struct uclock_stat st = stat_now();
		if (strcmp(st.mode_name, mode) != 0 && strlen(modes) < 200) {
			mode = st.mode_name;
			strcat(modes, modes[0] ? "," : "");
			strcat(modes, mode);
		}
	}
	printf("readings=%ld\noff=%ld\nworst=%lld\nback=%ld\nmodes=%s\n", readings, off,
	       (long long)worst, back, modes);
	return off || back ? 1 : 0;
}

static int fork_child(void)
{
	int status;
	struct uclock_stat parent;
	pid_t pid;

	uclock_mono_ns();
	parent = stat_now();
	printf("parent=%s\n", parent.mode_name);
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		struct uclock_stat st = stat_now();
		printf("child=%s\n", st.mode_name);
		fflush(stdout);
		_exit(run(0.3));
	}
	waitpid(pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

int main(int argc, char **argv)
{
	if (argc == 2 && !strcmp(argv[1], "stat"))
		return print_stat();
	if (argc == 3 && !strcmp(argv[1], "run"))
		return run(atof(argv[2]));
	if (argc == 2 && !strcmp(argv[1], "now")) {
		printf("%llu\n", (unsigned long long)uclock_ticks());
		return 0;
	}
	if (argc == 3 && !strcmp(argv[1], "ticks")) {
		uclock_mono_ns();
		struct uclock_stat st = stat_now();
		if (st.mode != UCLOCK_MODE_SHARED) {
			fprintf(stderr, "not attached: %s\n", st.page_reason);
			return 1;
		}
		printf("%lld\n", (long long)uclock_ticks_to_ns(CLOCK_MONOTONIC,
							       strtoull(argv[2], NULL, 10)));
		return 0;
	}
	if (argc == 2 && !strcmp(argv[1], "fork"))
		return fork_child();
	fprintf(stderr, "usage: page_reader stat|run S|now|ticks T|fork\n");
	return 2;
}
