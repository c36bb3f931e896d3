/*
 * The descriptor `uclock run --stats` names to the shim, for
 * tests/preload.sh.
 *   stats_fd reuse FD FILE PROGRAM ARGS...
 *       opens FILE read-write on descriptor FD (which a shell cannot do
 *       above 9) and executes PROGRAM: a program that reused the number.
 *   stats_fd fake MODE SHIM PROGRAM ARGS...
 *       makes a counters object as MODE says, names it in UCLOCK_RUN_STATS,
 *       runs PROGRAM with SHIM preloaded, and prints
 *       "MODE: status=S counted=N changed=yes|no": its exit status, the
 *       calls counted, and whether any byte of the object changed.  good is
 *       what `uclock run` makes; every other mode must be refused by the
 *       shim (counted=0 changed=no).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../preload/run_stats.h"

#define SIZE sizeof(struct uclock_run_stats)

static int reuse(int argc, char **argv)
{
	int want, fd;

	if (argc < 5)
		return 2;
	want = atoi(argv[2]);
	fd = open(argv[3], O_RDWR);
	if (fd < 0 || (fd != want && (dup2(fd, want) != want || close(fd) != 0))) {
		perror(argv[3]);
		return 1;
	}
	execvp(argv[4], argv + 4);
	perror(argv[4]);
	return 127;
}

/* Decimal of v + 2^shift (beyond its type: wraps to v if truncated). */
static void plus_pow2(char *out, size_t size, unsigned long long v, int shift)
{
	unsigned __int128 x = (unsigned __int128)v + ((unsigned __int128)1 << shift);
	char digits[48];
	int n = 0;

	do {
		digits[n++] = (char)('0' + (int)(x % 10));
		x /= 10;
	} while (x);
	for (int i = 0; i < n && (size_t)i + 1 < size; i++)
		out[i] = digits[n - 1 - i];
	out[n < (int)size ? n : (int)size - 1] = '\0';
}

static int fake(int argc, char **argv)
{
	const char *mode = argv[2];
	int sealing = strcmp(mode, "no-sealing") != 0;
	int seals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;
	off_t size = SIZE;
	struct uclock_run_stats *s;
	unsigned char before[SIZE], after[SIZE];
	char value[160], big[48];
	unsigned long long dev, ino;
	struct stat st;
	int fd, status;
	pid_t pid;

	if (argc < 5)
		return 2;
	fd = memfd_create("uclock-run-stats", sealing ? MFD_ALLOW_SEALING : 0);
	if (!strcmp(mode, "small"))
		size = SIZE - 64; /* the last stripe beyond the end */
	if (fd < 0 || ftruncate(fd, size) != 0 || fstat(fd, &st) != 0)
		return perror("memfd"), 1;
	s = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (s == MAP_FAILED)
		return perror("mmap"), 1;
	s->magic = strcmp(mode, "wrong-magic") ? UCLOCK_RUN_STATS_MAGIC : 0;
	s->version = UCLOCK_RUN_STATS_VERSION + !strcmp(mode, "wrong-version");
	s->size = SIZE;
	if (!strcmp(mode, "unsealed") || !strcmp(mode, "no-sealing"))
		seals = 0;
	else if (!strcmp(mode, "seals-unsealed"))
		seals = F_SEAL_SHRINK | F_SEAL_GROW; /* the seals could still change */
	if (seals && fcntl(fd, F_ADD_SEALS, seals) != 0)
		return perror("F_ADD_SEALS"), 1;
	dev = st.st_dev;
	ino = st.st_ino;
	snprintf(value, sizeof(value), "%d:%llu:%llu", fd, dev, ino);
	if (!strcmp(mode, "wrong-ino"))
		snprintf(value, sizeof(value), "%d:%llu:%llu", fd, dev, ino + 1);
	else if (!strcmp(mode, "wrong-dev"))
		snprintf(value, sizeof(value), "%d:%llu:%llu", fd, dev + 1, ino);
	else if (!strcmp(mode, "trailing"))
		snprintf(value, sizeof(value), "%d:%llu:%llux", fd, dev, ino);
	else if (!strcmp(mode, "extra"))
		snprintf(value, sizeof(value), "%d:%llu:%llu:0", fd, dev, ino);
	else if (!strcmp(mode, "missing"))
		snprintf(value, sizeof(value), "%d:%llu", fd, dev);
	else if (!strcmp(mode, "empty-field"))
		snprintf(value, sizeof(value), "%d::%llu", fd, ino);
	else if (!strcmp(mode, "space"))
		snprintf(value, sizeof(value), " %d:%llu:%llu", fd, dev, ino);
	else if (!strcmp(mode, "plus"))
		snprintf(value, sizeof(value), "+%d:%llu:%llu", fd, dev, ino);
	else if (!strcmp(mode, "fd-overflow")) {
		plus_pow2(big, sizeof(big), (unsigned)fd, 32);
		snprintf(value, sizeof(value), "%s:%llu:%llu", big, dev, ino);
	} else if (!strcmp(mode, "ino-overflow")) {
		plus_pow2(big, sizeof(big), ino, 64);
		snprintf(value, sizeof(value), "%d:%llu:%s", fd, dev, big);
	} else if (strcmp(mode, "good") && strcmp(mode, "unsealed") && strcmp(mode, "no-sealing") &&
		 strcmp(mode, "seals-unsealed") && strcmp(mode, "small") &&
		 strcmp(mode, "wrong-magic") && strcmp(mode, "wrong-version"))
		return fprintf(stderr, "stats_fd: unknown mode %s\n", mode), 2;
	if (pread(fd, before, SIZE, 0) != size)
		return perror("pread"), 1;
	memset(before + size, 0, SIZE - (size_t)size);

	pid = fork();
	if (pid == 0) {
		setenv(UCLOCK_RUN_STATS_ENV, value, 1);
		setenv("LD_PRELOAD", argv[3], 1);
		execvp(argv[4], argv + 4);
		perror(argv[4]);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return perror("fork"), 1;

	struct uclock_run_totals t = {0, 0, 0, 0};
	memset(after, 0, SIZE);
	if (pread(fd, after, SIZE, 0) != size)
		return perror("pread"), 1;
	if (size == (off_t)SIZE)
		uclock__run_totals(s, &t);
	else
		for (int i = 0; i < UCLOCK_RUN_STRIPES - 1; i++) {
			t.counter += s->stripe[i].counter;
			t.vdso += s->stripe[i].vdso;
			t.syscall += s->stripe[i].syscall;
		}
	printf("%s: status=%d counted=%llu changed=%s\n", mode,
	       WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status),
	       (unsigned long long)(t.counter + t.vdso + t.syscall),
	       memcmp(before, after, SIZE) ? "yes" : "no");
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "reuse"))
		return reuse(argc, argv);
	if (argc >= 2 && !strcmp(argv[1], "fake"))
		return fake(argc, argv);
	fprintf(stderr, "usage: stats_fd reuse FD FILE PROGRAM ARGS...\n"
			"       stats_fd fake MODE SHIM PROGRAM ARGS...\n");
	return 2;
}
