/*
 * The error bound against the real kernel's NTP state, set by this test
 * with adjtimex() (root only): ADJ_MAXERROR, ADJ_ESTERROR and ADJ_STATUS
 * change no clock.  The state it found is put back at exit, also when
 * killed by SIGTERM, SIGINT or an alarm.  Where a time service keeps the
 * kernel synchronised, the test leaves its state alone and skips.
 *  - unsynchronised (STA_UNSYNC): unknown, no bound;
 *  - synchronised with maxerror 50 ms: the interval holds the kernel's
 *    REALTIME and is the kernel's maxerror (which it grows by 500 us a
 *    second), drift and uclock's part; it never shrinks over seconds;
 *  - the service writes a lower maxerror: the bound follows it down;
 *  - a jump counted by the timekeeper: disrupted, and still disrupted
 *    after the kernel's figure is read again, until the service writes;
 *  - the same when a VM clock device's disruption marker moves (a file
 *    laid out as the device, named by UCLOCK_VMCLOCK);
 *  - UCLOCK_MAX_DRIFT_PPM: a rate above the kernel's own is used, one
 *    that is not a rate gives no bound;
 *  - unsynchronised again: unknown.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timex.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bounds.h"
#include "check.h"
#include "internal.h"

#define MS 1000000LL
#define SEC 1000000000LL

extern char **environ;
static struct timex found;
static char vm_path[64];
static int vm_fd = -1;

/* A VM clock device's first 32 bytes (include/uapi/linux/vmclock-abi.h):
 * magic "VCLK", size, version 1, seq_count, disruption_marker. */
static void vm_write(uint64_t marker)
{
	unsigned char abi[32] = {0x56, 0x43, 0x4c, 0x4b, 32, 0, 0, 0, 1, 0};

	for (int i = 0; i < 8; i++)
		abi[16 + i] = (unsigned char)(marker >> (8 * i));
	if (pwrite(vm_fd, abi, sizeof(abi), 0) != (ssize_t)sizeof(abi))
		check_fail(__FILE__, __LINE__, "cannot write %s", vm_path);
}

static void vm_remove(void)
{
	if (vm_path[0])
		unlink(vm_path);
}

static void put_back(void)
{
	struct timex tx = {.modes = ADJ_STATUS | ADJ_MAXERROR | ADJ_ESTERROR,
			   .status = found.status, .maxerror = found.maxerror,
			   .esterror = found.esterror};

	adjtimex(&tx);
}

static void on_signal(int sig)
{
	put_back();
	signal(sig, SIG_DFL);
	raise(sig);
}

static void set(int unsync, long maxerror_us, long esterror_us)
{
	struct timex tx = {.modes = ADJ_STATUS | ADJ_MAXERROR | ADJ_ESTERROR,
			   .status = unsync ? (found.status | STA_UNSYNC) : (found.status & ~STA_UNSYNC),
			   .maxerror = maxerror_us, .esterror = esterror_us};

	if (adjtimex(&tx) < 0) {
		fprintf(stderr, "adjtimex: %s\n", strerror(errno));
		put_back();
		exit(1);
	}
}

/* The bound, read until 'done' says it shows what was set (the figures
 * are read again at most once a second), for 5 s at most. */
static int wait_for(struct uclock_bounds *b, int (*done)(const struct uclock_bounds *),
		    const char *what)
{
	double end = elapsed_s() + 5;

	do {
		uclock_now_bounds(b);
		if (done(b))
			return 1;
		usleep(20000);
	} while (elapsed_s() < end);
	check_fail(__FILE__, __LINE__, "%s: not seen within 5 s (status %s, service %lld ns)",
		   what, uclock__bounds_status_name(b->status), (long long)b->service_error_ns);
	return 0;
}

static int is_unknown(const struct uclock_bounds *b)
{
	return b->status == UCLOCK_BOUNDS_UNKNOWN;
}

static int is_synced(const struct uclock_bounds *b)
{
	return b->status == UCLOCK_BOUNDS_SYNCHRONIZED;
}

static int below_10ms(const struct uclock_bounds *b)
{
	return b->status == UCLOCK_BOUNDS_SYNCHRONIZED && b->service_error_ns < 10 * MS;
}

/* The kernel's REALTIME just before and just after lies in the interval. */
static void holds_kernel(const char *what)
{
	struct uclock_bounds b;
	int64_t k0 = vdso_ns(CLOCK_REALTIME);

	uclock_now_bounds(&b);
	int64_t k1 = vdso_ns(CLOCK_REALTIME);

	CHECK(b.earliest_ns <= k0 && k1 <= b.latest_ns,
	      "%s: [%lld, %lld] misses the kernel's [%lld, %lld]", what,
	      (long long)b.earliest_ns, (long long)b.latest_ns, (long long)k0, (long long)k1);
	CHECK(b.error_ns >= b.service_error_ns + b.uclock_error_ns + b.drift_ns &&
	      b.latest_ns - b.now_ns == b.error_ns && b.now_ns - b.earliest_ns == b.error_ns,
	      "%s: the parts do not add up", what);
}

/* A child run with UCLOCK_MAX_DRIFT_PPM=value prints its bound's status,
 * source and rate. */
static void child(const char *value, char *out, size_t size)
{
	char *argv[] = {"/proc/self/exe", "child", NULL};
	char path[64];
	int pipefd[2], status;
	pid_t pid;
	posix_spawn_file_actions_t fa;

	setenv("UCLOCK_MAX_DRIFT_PPM", value, 1);
	snprintf(path, sizeof(path), "/proc/%d/exe", (int)getpid());
	argv[0] = path;
	if (pipe(pipefd) != 0)
		return;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
	posix_spawn_file_actions_addclose(&fa, pipefd[0]);
	if (posix_spawn(&pid, path, &fa, NULL, argv, environ) != 0)
		pid = -1;
	posix_spawn_file_actions_destroy(&fa);
	unsetenv("UCLOCK_MAX_DRIFT_PPM");
	close(pipefd[1]);
	ssize_t n = read(pipefd[0], out, size - 1);
	out[n > 0 ? n : 0] = '\0';
	close(pipefd[0]);
	if (pid > 0)
		waitpid(pid, &status, 0);
}

int main(int argc, char **argv)
{
	struct uclock_bounds b;
	char out[128];

	setenv("UCLOCK_PAGE", "off", 1);  /* this process's own figures */
	if (argc > 1 && !strcmp(argv[1], "child")) {
		uclock_now_bounds(&b);
		printf("%s %s %u\n", uclock__bounds_status_name(b.status),
		       uclock__bounds_source_name(b.source), b.max_drift_ppb);
		return 0;
	}
	if (geteuid() != 0)
		check_skip("setting the kernel's NTP state needs root");
	if (adjtimex(&found) < 0)
		check_skip("adjtimex: %s", strerror(errno));
	if (!(found.status & STA_UNSYNC))
		check_skip("a time service keeps the kernel synchronised here; "
			   "its state is left alone");
	struct timex same = {.modes = ADJ_MAXERROR, .maxerror = found.maxerror};
	if (adjtimex(&same) < 0)
		check_skip("cannot set the kernel's NTP state: %s", strerror(errno));
	atexit(put_back);
	snprintf(vm_path, sizeof(vm_path), "/tmp/uclock-vmclock.%d", (int)getpid());
	vm_fd = open(vm_path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (vm_fd >= 0) {
		atexit(vm_remove);
		vm_write(7);
		setenv("UCLOCK_VMCLOCK", vm_path, 1);
	}
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	signal(SIGALRM, on_signal);
	alarm(60);

	uclock_now_bounds(&b);
	CHECK(b.status == UCLOCK_BOUNDS_UNKNOWN && b.source == UCLOCK_BOUNDS_SOURCE_ADJTIMEX &&
	      b.earliest_ns == INT64_MIN && b.latest_ns == INT64_MAX,
	      "unsynchronised: status %s, source %s", uclock__bounds_status_name(b.status),
	      uclock__bounds_source_name(b.source));

	set(0, 50000, 1000);
	double t0 = elapsed_s();
	if (wait_for(&b, is_synced, "synchronised, maxerror 50 ms")) {
		CHECK(b.source == UCLOCK_BOUNDS_SOURCE_ADJTIMEX, "source %d", b.source);
		/* The kernel grows it by 500 us a second from the 50 ms set. */
		int64_t most = 50 * MS + (int64_t)((elapsed_s() - t0 + 2) * 500000);
		CHECK(b.service_error_ns >= 50 * MS && b.service_error_ns <= most,
		      "service error %lld ns, set 50 ms", (long long)b.service_error_ns);
		CHECK(b.max_drift_ppb == 500000, "drift %u ppb: the kernel's 500 ppm",
		      b.max_drift_ppb);
		holds_kernel("synchronised");
	}
	/* Over 2.5 s (two or three readings of the kernel's figure, which
	 * rises in 500 us steps), the bound only grows. */
	int64_t last = 0;
	long reads = 0;
	for (double end = elapsed_s() + 2.5; elapsed_s() < end; reads++) {
		uclock_now_bounds(&b);
		CHECK(b.status == UCLOCK_BOUNDS_SYNCHRONIZED, "status %d", b.status);
		CHECK(b.error_ns >= last, "bound shrank to %lld from %lld ns without new figures",
		      (long long)b.error_ns, (long long)last);
		last = b.error_ns;
		usleep(5000);
	}
	holds_kernel("after 2.5 s");

	child("700", out, sizeof(out));
	CHECK(!strcmp(out, "synchronized adjtimex 700000\n"),
	      "UCLOCK_MAX_DRIFT_PPM=700: '%s'", out);
	child("seven", out, sizeof(out));
	CHECK(!strcmp(out, "unknown none 0\n"), "UCLOCK_MAX_DRIFT_PPM=seven: '%s'", out);

	set(0, 5000, 1000);
	if (wait_for(&b, below_10ms, "the service lowers maxerror to 5 ms"))
		holds_kernel("maxerror 5 ms");

	/* A jump the timekeeper counted (a REALTIME step, a suspend). */
	__atomic_fetch_add(&uclock__global.disruptions, 1, __ATOMIC_RELAXED);
	uclock_now_bounds(&b);
	CHECK(b.status == UCLOCK_BOUNDS_DISRUPTED && b.earliest_ns == INT64_MIN,
	      "after a jump: status %s", uclock__bounds_status_name(b.status));
	usleep(1500000);  /* the kernel's figure read again: not an update */
	uclock_now_bounds(&b);
	CHECK(b.status == UCLOCK_BOUNDS_DISRUPTED, "1.5 s after a jump, no update: status %s",
	      uclock__bounds_status_name(b.status));
	set(0, 4000, 900);
	if (wait_for(&b, is_synced, "the service updates after the jump"))
		holds_kernel("updated after the jump");

	if (vm_fd >= 0) {
		vm_write(8);  /* the hypervisor says: migrated */
		uclock_now_bounds(&b);
		CHECK(b.status == UCLOCK_BOUNDS_DISRUPTED,
		      "the VM clock's marker moved: status %s",
		      uclock__bounds_status_name(b.status));
		set(0, 3000, 800);
		if (wait_for(&b, is_synced, "the service updates after the VM clock's marker moved"))
			holds_kernel("updated after the migration");
	} else {
		check_fail(__FILE__, __LINE__, "cannot create %s", vm_path);
	}

	set(1, 16000000, 16000000);
	wait_for(&b, is_unknown, "unsynchronised again");
	printf("adjtimex: unknown, synchronised at 50 ms and 5 ms, disrupted, unknown; "
	       "%ld readings never shrank\n", reads);
	return check_done("bounds_kernel");
}
