/*
 * Several threads waking together on parameters too old to extrapolate:
 * one updates, the others take the kernel's answer or the lines the
 * updater has staged.  Every reading must be at least the latest one any
 * thread published before it started (the time-warp check, lock-free).
 *
 * The scenario is made to happen, not waited for: a hook at the writer's
 * first point of interest holds an update of stale lines until another
 * thread has read meanwhile (or 20 ms pass), as a preempted writer would.
 */
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "check.h"
#include "internal.h"

#define THREADS 4
#define ROUNDS 400

static pthread_barrier_t barrier;
static uint64_t held_at = UINT64_MAX; /* the update count last held */

static uint64_t readers_meanwhile(void)
{
	return __atomic_load_n(&uclock__global.kernel_fallbacks, __ATOMIC_RELAXED) +
	       __atomic_load_n(&uclock__global.staged_reads, __ATOMIC_RELAXED);
}

/* Runs in the updater, under the update lock. */
static void hold_stale_update(void *ctx)
{
	struct uclock__copy c;
	uint64_t updates = __atomic_load_n(&uclock__global.updates, __ATOMIC_RELAXED);

	(void)ctx;
	uclock__copy_load(uclock__global.page, &c);
	if (updates == held_at || uclock__global.ops.counter(NULL) - c.cycle_last <= c.hard)
		return;
	held_at = updates;
	uint64_t seen = readers_meanwhile();
	int64_t until = vdso_ns(CLOCK_MONOTONIC) + 20000000;
	while (readers_meanwhile() == seen && vdso_ns(CLOCK_MONOTONIC) < until)
		sched_yield();
}
static int64_t latest;        /* highest MONOTONIC reading published */
static long back, off_kernel;

static void publish(int64_t v)
{
	int64_t seen = __atomic_load_n(&latest, __ATOMIC_ACQUIRE);

	while (v > seen &&
	       !__atomic_compare_exchange_n(&latest, &seen, v, 0, __ATOMIC_ACQ_REL,
					    __ATOMIC_ACQUIRE))
		;
}

static void *reader(void *arg)
{
	long bad = 0, far = 0;

	(void)arg;
	for (int r = 0; r < ROUNDS; r++) {
		pthread_barrier_wait(&barrier);
		/* Idle past the interval and 'hard' (2 ms), all at once. */
		if (r % 2 == 0) {
			struct timespec nap = {0, 2500000};
			nanosleep(&nap, NULL);
		}
		pthread_barrier_wait(&barrier);
		for (int i = 0; i < 50; i++) {
			int64_t before = __atomic_load_n(&latest, __ATOMIC_ACQUIRE);
			int64_t k0 = vdso_ns(CLOCK_MONOTONIC);
			int64_t v = i & 1 ? uclock_mono_ns() : ({
				struct timespec ts;
				uclock_gettime(CLOCK_MONOTONIC, &ts);
				ts_ns(&ts);
			});
			int64_t k1 = vdso_ns(CLOCK_MONOTONIC);

			bad += v < before;
			far += v < k0 - test_slack_ns(100) || v > k1 + test_slack_ns(100);
			publish(v);
		}
	}
	__atomic_fetch_add(&back, bad, __ATOMIC_RELAXED);
	__atomic_fetch_add(&off_kernel, far, __ATOMIC_RELAXED);
	return NULL;
}

int main(void)
{
	pthread_t t[THREADS];

	uclock_mono_ns();
	uclock__global.ops.point = hold_stale_update;
	pthread_barrier_init(&barrier, NULL, THREADS);
	for (int i = 0; i < THREADS; i++)
		pthread_create(&t[i], NULL, reader, NULL);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	printf("%d threads, %d wake-ups: %llu updates, %llu kernel answers and %llu "
	       "staged-line reads while another thread updated\n", THREADS, ROUNDS / 2,
	       (unsigned long long)uclock__global.updates,
	       (unsigned long long)uclock__global.kernel_fallbacks,
	       (unsigned long long)uclock__global.staged_reads);
	CHECK(back == 0, "%ld readings before one already published", back);
	CHECK(off_kernel == 0, "%ld readings off the kernel by more than %lld ns",
	      off_kernel, (long long)test_slack_ns(100));
	CHECK(uclock__global.kernel_fallbacks + uclock__global.staged_reads > 0,
	      "no reader ever found another thread updating: scenario not exercised");
	return check_done("stale");
}
