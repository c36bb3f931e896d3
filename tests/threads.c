/*
 * Monotonicity across threads and CPUs while the parameters are updated
 * all the time (20 us interval): the time-warp test.  One thread per CPU,
 * each pinned; a reading taken under a lock is compared with the last one
 * any thread took, so a value from one CPU is seen to precede the next
 * reading on another.  Without the lock, each thread checks its own
 * readings (fast and ordered readers).
 */
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "uclock.h"

#define SECONDS 1.5

static const clockid_t clocks[] = {CLOCK_MONOTONIC, CLOCK_MONOTONIC_RAW,
				   CLOCK_BOOTTIME};
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int64_t shared_last[3];
static int64_t shared_fast;
static long warps, own_back, reads;

static int64_t read_clock(clockid_t id)
{
	struct timespec ts;

	if (uclock_gettime(id, &ts) != 0)
		abort();
	return ts_ns(&ts);
}

static void *reader(void *arg)
{
	long cpu = (long)arg;
	int64_t own[3] = {0}, own_fast = 0;
	long n = 0, back = 0, warp = 0;
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET((int)cpu, &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	while (elapsed_s() < SECONDS) {
		for (int i = 0; i < 3; i++) {
			int64_t v = read_clock(clocks[i]);
			back += v < own[i];
			own[i] = v;
		}
		int64_t f = uclock_mono_ns();
		back += f < own_fast;
		own_fast = f;

		pthread_mutex_lock(&lock);
		for (int i = 0; i < 3; i++) {
			int64_t v = read_clock(clocks[i]);
			warp += v < shared_last[i];
			shared_last[i] = v;
		}
		f = uclock_mono_ns();
		warp += f < shared_fast;
		shared_fast = f;
		pthread_mutex_unlock(&lock);
		n++;
	}
	pthread_mutex_lock(&lock);
	warps += warp;
	own_back += back;
	reads += n;
	pthread_mutex_unlock(&lock);
	return NULL;
}

int main(void)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	long threads = ncpu < 2 ? 2 : ncpu;
	pthread_t t[64];
	struct uclock_stat st = {.size = sizeof(st)};

	if (threads > 64)
		threads = 64;
	/* Unless asked for another: under emulation, a counter that steps by a
	 * microsecond cannot be followed every 20 us (tests/run.sh). */
	setenv("UCLOCK_INTERVAL_US", "20", 0);
	elapsed_s();
	for (long i = 0; i < threads; i++)
		pthread_create(&t[i], NULL, reader, (void *)(i % ncpu));
	for (long i = 0; i < threads; i++)
		pthread_join(t[i], NULL);
	uclock_stat(&st);
	printf("%ld threads on %ld CPUs: %ld rounds, %llu updates, mode %s\n",
	       threads, ncpu, reads, (unsigned long long)st.updates, st.mode_name);
	CHECK(warps == 0, "%ld readings before one taken earlier on another CPU", warps);
	CHECK(own_back == 0, "%ld readings went back within a thread", own_back);
	CHECK(st.mode == UCLOCK_MODE_COUNTER || st.mode == UCLOCK_MODE_KERNEL ||
	      st.mode == UCLOCK_MODE_SHARED, "ended in mode %s", st.mode_name);
	/* Hundreds at least: under ThreadSanitizer an update takes
	 * milliseconds, not 20 us, so the count there is in the hundreds. */
	CHECK(st.mode != UCLOCK_MODE_COUNTER || st.updates > 100,
	      "only %llu updates: the readers did not race the writer",
	      (unsigned long long)st.updates);
	return check_done("threads");
}
