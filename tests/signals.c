/*
 * A signal handler that interrupts the writer in the middle of an update
 * (same thread) must still get correct time at once: the latch always
 * leaves it a complete copy, and it never waits for the update it
 * interrupted.  The main thread reads (and so updates, every 20 us) in a
 * loop; another thread signals it as fast as it can.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "internal.h"

#define SECONDS 1.5
#define AT_MOST 8.0

static volatile int64_t main_last;   /* main's last MONOTONIC reading */
static volatile long handled, mid_update, bad_bracket, went_back;
static int done;
static volatile int64_t bad_by, bad_width;
static volatile clockid_t bad_clock;
static pthread_t main_thread;

static void handler(int sig)
{
	static const clockid_t ids[] = {CLOCK_REALTIME, CLOCK_MONOTONIC,
					CLOCK_MONOTONIC_RAW, CLOCK_BOOTTIME,
					CLOCK_TAI};
	int saved = errno;

	(void)sig;
	if (__atomic_load_n(&uclock__global.lock, __ATOMIC_RELAXED) &&
	    pthread_equal(uclock__global.owner, pthread_self()))
		mid_update++;
	int64_t floor = main_last;
	for (unsigned i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		struct timespec ts;
		int64_t before = vdso_ns(ids[i]);
		int rc = uclock_gettime(ids[i], &ts);
		int64_t after = vdso_ns(ids[i]);

		if (rc != 0 || ts_ns(&ts) < before - test_slack_ns(100) ||
		    ts_ns(&ts) > after + test_slack_ns(100)) {
			bad_bracket++;
			bad_clock = ids[i];
			bad_by = ts_ns(&ts) < before ? ts_ns(&ts) - before : ts_ns(&ts) - after;
			bad_width = after - before;
		}
		if (ids[i] == CLOCK_MONOTONIC && ts_ns(&ts) < floor)
			went_back++;
	}
	if (uclock_mono_ns() < floor)
		went_back++;
	handled++;
	errno = saved;
}

static void *signaller(void *arg)
{
	(void)arg;
	while (!__atomic_load_n(&done, __ATOMIC_RELAXED)) {
		pthread_kill(main_thread, SIGUSR1);
		for (volatile int i = 0; i < 200; i++)
			;
	}
	return NULL;
}

int main(void)
{
	struct sigaction sa = {.sa_handler = handler};
	pthread_t t;

	/* Unless asked for another: under emulation, a counter that steps by a
	 * microsecond cannot be followed every 20 us (tests/run.sh). */
	setenv("UCLOCK_INTERVAL_US", "20", 0);
	sigaction(SIGUSR1, &sa, NULL);
	main_thread = pthread_self();
	uclock_mono_ns();
	elapsed_s();
	pthread_create(&t, NULL, signaller, NULL);
	/* Long enough, and until some signals landed inside updates. */
	while (elapsed_s() < AT_MOST && (elapsed_s() < SECONDS || mid_update < 5)) {
		struct timespec ts;
		uclock_gettime(CLOCK_MONOTONIC, &ts);
		main_last = ts_ns(&ts);
	}
	__atomic_store_n(&done, 1, __ATOMIC_RELAXED);
	pthread_join(t, NULL);
	printf("%ld signals handled, %ld in the middle of an update\n", handled,
	       mid_update);
	CHECK(bad_bracket == 0, "%ld handler readings off the kernel (last: clock %d by %lld ns, bracket %lld ns)",
	      bad_bracket, (int)bad_clock, (long long)bad_by, (long long)bad_width);
	CHECK(went_back == 0, "%ld handler readings before the interrupted thread's",
	      went_back);
	CHECK(handled > 100, "only %ld signals handled", handled);
	CHECK(mid_update > 0, "no signal landed in an update: scenario not exercised");
	return check_done("signals");
}
