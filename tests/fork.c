/*
 * A child forked while another thread is in the middle of an update gets
 * correct time at once and goes on updating (the lock it inherited is
 * released in the child).  A thread reads (and updates every 20 us) in a
 * loop; the main thread forks, and each child checks every clock against
 * the kernel, against its parent's last reading, and that it reaches
 * counter mode again.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "internal.h"

#define FORKS 300

static int done;
static int64_t parent_last;

static void *reader(void *arg)
{
	(void)arg;
	while (!__atomic_load_n(&done, __ATOMIC_RELAXED))
		__atomic_store_n(&parent_last, uclock_mono_ns(), __ATOMIC_RELAXED);
	return NULL;
}

static int child(int64_t floor, int locked)
{
	static const clockid_t ids[] = {CLOCK_REALTIME, CLOCK_MONOTONIC,
					CLOCK_MONOTONIC_RAW, CLOCK_BOOTTIME,
					CLOCK_TAI};
	int bad = 0;

	for (unsigned i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		struct timespec ts;
		int64_t before = vdso_ns(ids[i]);
		int rc = uclock_gettime(ids[i], &ts);
		int64_t after = vdso_ns(ids[i]);

		if (rc || ts_ns(&ts) < before - test_slack_ns(100) ||
		    ts_ns(&ts) > after + test_slack_ns(100)) {
			fprintf(stderr, "child: clock %d %lld not in [%lld, %lld]\n",
				(int)ids[i], (long long)ts_ns(&ts), (long long)before,
				(long long)after);
			bad = 1;
		}
	}
	if (uclock_mono_ns() < floor) {
		fprintf(stderr, "child: MONOTONIC before the parent's reading\n");
		bad = 1;
	}
	/* The child's own updates go on: a lost lock would stop them. */
	uint64_t updates = uclock__global.updates;
	int64_t until = vdso_ns(CLOCK_MONOTONIC) + 20000000 + 20 * uclock__global.interval_ns;
	while (vdso_ns(CLOCK_MONOTONIC) < until && uclock__global.updates < updates + 5)
		uclock_mono_ns();
	if (uclock__global.updates < updates + 5) {
		struct uclock_stat st = {.size = sizeof(st)};

		uclock_stat(&st);
		fprintf(stderr, "child: %llu updates after fork (lock held at fork: %d); "
			"mode %s, %llu warm-ups, %llu discontinuities: %s\n",
			(unsigned long long)(uclock__global.updates - updates), locked,
			st.mode_name, (unsigned long long)st.warmups,
			(unsigned long long)st.discontinuities, st.reason);
		bad = 1;
	}
	return bad;
}

int main(void)
{
	pthread_t t;
	int failed = 0, locked_forks = 0;

	/* Unless asked for another: under emulation, a counter that steps by a
	 * microsecond cannot be followed every 20 us (tests/run.sh). */
	setenv("UCLOCK_INTERVAL_US", "20", 0);
	uclock_mono_ns();
	pthread_create(&t, NULL, reader, NULL);
	for (int i = 0; i < FORKS; i++) {
		int64_t floor = __atomic_load_n(&parent_last, __ATOMIC_RELAXED);
		int locked = __atomic_load_n(&uclock__global.lock, __ATOMIC_RELAXED);
		pid_t pid = fork();
		int status;

		if (pid == 0)
			_exit(child(floor, locked));
		locked_forks += locked;
		if (pid < 0 || waitpid(pid, &status, 0) != pid ||
		    !WIFEXITED(status) || WEXITSTATUS(status) != 0)
			failed++;
		usleep(100);
	}
	__atomic_store_n(&done, 1, __ATOMIC_RELAXED);
	pthread_join(t, NULL);
	printf("%d forks, %d with the update lock held, %d children failed\n", FORKS,
	       locked_forks, failed);
	CHECK(failed == 0, "%d of %d children failed", failed, FORKS);
	return check_done("fork");
}
