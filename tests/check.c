#include "check.h"
#include "elf_reader.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int check_failures;

void check_fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	if (check_failures++ >= 20)
		return; /* enough to see the pattern */
	fprintf(stderr, "FAIL %s:%d: ", file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void check_skip(const char *fmt, ...)
{
	va_list ap;

	fputs("SKIP: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(77);
}

int check_done(const char *name)
{
	if (check_failures)
		fprintf(stderr, "%s: %d check(s) failed\n", name, check_failures);
	return check_failures ? 1 : 0;
}

int64_t ts_ns(const struct timespec *ts)
{
	return (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec;
}

int64_t kernel_ns(clockid_t clock)
{
	struct timespec ts;

	if (syscall(SYS_clock_gettime, clock, &ts) != 0)
		abort();
	return ts_ns(&ts);
}

int64_t vdso_ns(clockid_t clock)
{
	struct timespec ts;

	if (clock_gettime(clock, &ts) != 0)
		abort();
	return ts_ns(&ts);
}

int64_t test_slack_ns(int64_t ns)
{
	const char *env = getenv("UCLOCK_TEST_SLACK_NS");
	int64_t asked = env ? strtoll(env, NULL, 10) : 0;

	return asked > ns ? asked : ns;
}

const unsigned char *test_elf_image(size_t *size, int *from_file)
{
	const char *path = getenv("UCLOCK_ELF_IMAGE");
	unsigned char *image = NULL;
	size_t cap = 0, n;
	FILE *f;

	*from_file = path && *path;
	if (!*from_file)
		return uclock__vdso_image(size);
	f = fopen(path, "rb");
	if (!f)
		return NULL;
	*size = 0;
	do {
		if (*size == cap) {
			cap = cap ? 2 * cap : 65536;
			image = realloc(image, cap);
			if (!image)
				abort();
		}
		n = fread(image + *size, 1, cap - *size, f);
		*size += n;
	} while (n > 0);
	fclose(f);
	return image;
}

double elapsed_s(void)
{
	static int64_t start;
	int64_t now = vdso_ns(CLOCK_MONOTONIC);

	if (!start)
		start = now;
	return (double)(now - start) / 1e9;
}

int in_child(const char *const env[], int (*fn)(void))
{
	int status;
	pid_t pid;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0)
		return 1;
	if (pid == 0) {
		for (int i = 0; env && env[i]; i++)
			putenv(strdup(env[i]));
		int rc = fn();
		fflush(stdout);
		fflush(stderr);
		_exit(rc);
	}
	if (waitpid(pid, &status, 0) != pid)
		return 1;
	if (WIFSIGNALED(status)) {
		fprintf(stderr, "child killed by signal %d\n", WTERMSIG(status));
		return 1;
	}
	return WEXITSTATUS(status);
}
