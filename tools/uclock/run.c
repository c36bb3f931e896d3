/*
 * uclock run [--stats] -- PROGRAM ARGS...: PROGRAM with libuclock-preload.so
 * preloaded.  Says so when the shim cannot take effect (a statically
 * linked or set-user-ID program) instead of pretending; with --stats,
 * prints on exit how the clock calls were answered (uclock's counter,
 * the kernel's vDSO, system calls).
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "run_stats.h"

#ifndef UCLOCK_PRELOADDIR
#define UCLOCK_PRELOADDIR "/usr/local/lib"
#endif
#define SHIM "libuclock-preload.so"

static int readable(const char *path)
{
	return access(path, R_OK) == 0;
}

/* Beside this program (the build tree), in ../lib (an installed tree), or
 * where it was installed; UCLOCK_PRELOAD names another. */
const char *preload_path(void)
{
	static char path[PATH_MAX];
	char self[PATH_MAX];
	const char *env = getenv("UCLOCK_PRELOAD");
	ssize_t n;

	if (env && *env)
		return readable(env) ? env : NULL;
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		char *dir = dirname(self);
		snprintf(path, sizeof(path), "%s/%s", dir, SHIM);
		if (readable(path))
			return path;
		snprintf(path, sizeof(path), "%s/../lib/%s", dir, SHIM);
		if (readable(path))
			return path;
	}
	snprintf(path, sizeof(path), "%s/%s", UCLOCK_PRELOADDIR, SHIM);
	return readable(path) ? path : NULL;
}

/* PROGRAM as execvp would find it. */
static int find_program(const char *name, char *out, size_t size)
{
	const char *path = getenv("PATH");

	if (strchr(name, '/')) {
		snprintf(out, size, "%s", name);
		return access(out, X_OK) == 0 ? 0 : -1;
	}
	if (!path)
		path = "/usr/bin:/bin";
	for (const char *p = path; *p;) {
		size_t len = strcspn(p, ":");
		snprintf(out, size, "%.*s/%s", (int)len, len ? p : ".", name);
		if (access(out, X_OK) == 0)
			return 0;
		p += len + (p[len] == ':');
	}
	return -1;
}

/* Why the dynamic linker will not load the shim into PROGRAM, or NULL. */
static const char *why_not_interposed(const char *program)
{
	Elf64_Ehdr eh;
	struct stat st;
	int fd = open(program, O_RDONLY | O_CLOEXEC);
	const char *why = NULL;

	if (fd < 0 || fstat(fd, &st) != 0) {
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	if ((st.st_mode & (S_ISUID | S_ISGID)) && geteuid() != 0)
		why = "is set-user-ID or set-group-ID: the dynamic linker ignores "
		      "LD_PRELOAD for it";
	else if (pread(fd, &eh, sizeof(eh), 0) == (ssize_t)sizeof(eh) &&
		 !memcmp(eh.e_ident, ELFMAG, SELFMAG) && eh.e_ident[EI_CLASS] == ELFCLASS64 &&
		 eh.e_phentsize == sizeof(Elf64_Phdr)) {
		int interp = 0;

		for (int i = 0; i < eh.e_phnum && i < 256; i++) {
			Elf64_Phdr ph;
			if (pread(fd, &ph, sizeof(ph), (off_t)(eh.e_phoff + (uint64_t)i * sizeof(ph))) !=
			    (ssize_t)sizeof(ph))
				break;
			interp |= ph.p_type == PT_INTERP;
		}
		if (!interp)
			why = "is statically linked: its clock calls cannot be interposed";
	}
	close(fd);
	return why;
}

static int set_preload(const char *shim)
{
	const char *old = getenv("LD_PRELOAD");
	char *value;

	if (old && *old) {
		if (asprintf(&value, "%s:%s", shim, old) < 0)
			return -1;
	} else if (!(value = strdup(shim))) {
		return -1;
	}
	return setenv("LD_PRELOAD", value, 1);
}

/*
 * The page every process of the run counts into: a memfd, its header
 * written and then sealed so that its size (and the seals) can no longer
 * change, on an inherited descriptor above those programs use.
 * UCLOCK_RUN_STATS=FD:DEV:INO names the descriptor and the object, so that
 * the shim maps it only while that descriptor is still this object.
 */
static struct uclock_run_stats *share_stats(void)
{
	char value[64];
	struct uclock_run_stats *stats = MAP_FAILED;
	struct stat st;
	int fd, saved, memfd = memfd_create("uclock-run-stats", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	if (memfd < 0)
		return NULL;
	/* F_DUPFD clears close-on-exec: every process of the run inherits it.
	 * Below the descriptor limit, at least: then as low as it comes. */
	fd = fcntl(memfd, F_DUPFD, UCLOCK_RUN_STATS_MIN_FD);
	if (fd < 0)
		fd = fcntl(memfd, F_DUPFD, 0);
	saved = errno;
	close(memfd);
	errno = saved;
	if (fd < 0)
		return NULL;
	if (ftruncate(fd, sizeof(*stats)) != 0)
		goto fail;
	stats = mmap(NULL, sizeof(*stats), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (stats == MAP_FAILED)
		goto fail;
	stats->magic = UCLOCK_RUN_STATS_MAGIC;
	stats->version = UCLOCK_RUN_STATS_VERSION;
	stats->size = sizeof(*stats);
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0 ||
	    fstat(fd, &st) != 0)
		goto fail;
	snprintf(value, sizeof(value), "%d:%llu:%llu", fd, (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino);
	if (setenv(UCLOCK_RUN_STATS_ENV, value, 1) != 0)
		goto fail;
	return stats;
fail:
	saved = errno;
	if (stats != MAP_FAILED)
		munmap(stats, sizeof(*stats));
	close(fd);
	errno = saved;
	return NULL;
}

/*
 * How the program's clock calls were answered, on one line, and a hint
 * when most of them came while uclock was still calibrating (a short
 * program: uclockd's page would serve it from the first call).
 */
static void report(const struct uclock_run_stats *stats)
{
	struct uclock_run_totals t;
	unsigned long long n;

	uclock__run_totals(stats, &t);
	n = t.counter + t.vdso + t.syscall;
	fprintf(stderr, "uclock: %llu clock call%s: %llu from uclock's counter, %llu by the "
			"kernel's vDSO, %llu by system calls\n",
		n, n == 1 ? "" : "s", (unsigned long long)t.counter, (unsigned long long)t.vdso,
		(unsigned long long)t.syscall);
	if (t.calibrating > 0 && t.calibrating >= t.counter)
		fprintf(stderr, "uclock: %llu of them while uclock was calibrating (the kernel "
				"answers meanwhile): start uclockd, so that short programs read "
				"its page from their first call\n",
			(unsigned long long)t.calibrating);
}

static void usage(FILE *out)
{
	fprintf(out, "usage: uclock run [--stats] [--] PROGRAM [ARGS...]\n\n"
		     "Runs PROGRAM with libuclock-preload.so preloaded: its\n"
		     "clock_gettime, gettimeofday and time are served by uclock.\n"
		     "Options end at PROGRAM: what follows is its own.\n\n"
		     "  --stats     on exit, how its calls were answered, on stderr\n"
		     "  -h, --help  this help\n\n"
		     "Exit status: PROGRAM's; 127 not found, 126 not runnable,\n"
		     "1 no preload library, 2 bad usage.\n");
}

/* The parent waits, as system() does: ^C is for the program. */
static int wait_for(pid_t pid)
{
	int status;

	signal(SIGINT, SIG_IGN);
	signal(SIGQUIT, SIG_IGN);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return 1;
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

int cmd_run(int argc, char **argv)
{
	static const struct option options[] = {
		{"stats", no_argument, NULL, 's'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	int stats_wanted = 0, c;
	char program[PATH_MAX];
	const char *shim, *why;
	struct uclock_run_stats *stats = NULL;

	/* Options end at the program: its own options are its own. */
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:h", options, NULL)) != -1) {
		switch (c) {
		case 's':
			stats_wanted = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			return option_error("run", c, argv);
		}
	}
	if (optind >= argc)
		return usage_error("run", "no program to run");
	if (find_program(argv[optind], program, sizeof(program)) != 0) {
		fprintf(stderr, "uclock run: %s: command not found\n", argv[optind]);
		return 127;
	}
	shim = preload_path();
	if (!shim) {
		fprintf(stderr, "uclock run: cannot find %s (set UCLOCK_PRELOAD)\n", SHIM);
		return 1;
	}
	why = why_not_interposed(program);
	if (why)
		fprintf(stderr, "uclock run: %s %s; running it without uclock\n",
			argv[optind], why);
	if (set_preload(shim) != 0 || (stats_wanted && !(stats = share_stats()))) {
		fprintf(stderr, "uclock run: %s\n", strerror(errno));
		return 1;
	}
	if (!stats) {
		execv(program, argv + optind);
		fprintf(stderr, "uclock run: %s: %s\n", program, strerror(errno));
		return 126;
	}
	pid_t pid = fork();
	if (pid == 0) {
		execv(program, argv + optind);
		fprintf(stderr, "uclock run: %s: %s\n", program, strerror(errno));
		_exit(126);
	}
	if (pid < 0) {
		fprintf(stderr, "uclock run: fork: %s\n", strerror(errno));
		return 1;
	}
	int status = wait_for(pid);
	report(stats);
	return status;
}
