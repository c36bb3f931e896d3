/*
 * A program that calls the C library's clock functions, for
 * tests/preload.sh.  It knows nothing of uclock: the shim, when preloaded,
 * answers its calls.
 *   clock_calls check        every interposed call, within raw system calls
 *   clock_calls errno        result and errno of clock_gettime and
 *                            clock_getres for many ids (compare with and
 *                            without the shim)
 *   clock_calls null         NULL results: the system call's answer
 *   clock_calls count N      warm up 20 ms, then N calls; prints the total
 *   clock_calls threads      four threads, each checks its own readings
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/timeb.h>
#include <time.h>
#include <unistd.h>

/* Through pointers: glibc's headers declare the arguments non-null, and
 * these calls pass NULL on purpose. */
static int (*volatile call_gettime)(clockid_t, struct timespec *) = clock_gettime;
static int (*volatile call_getres)(clockid_t, struct timespec *) = clock_getres;
static int (*volatile call_gettimeofday)(struct timeval *, void *) =
	(int (*)(struct timeval *, void *))gettimeofday;

static int64_t raw(clockid_t id)
{
	struct timespec ts;

	syscall(SYS_clock_gettime, id, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t ns(const struct timespec *ts)
{
	return (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec;
}

static int bad;

static void within(const char *what, int64_t before, int64_t v, int64_t after,
		   int64_t slack)
{
	if (v < before - slack || v > after + slack) {
		printf("FAIL %s: %lld not in [%lld, %lld] (+-%lld)\n", what, (long long)v,
		       (long long)before, (long long)after, (long long)slack);
		bad = 1;
	}
}

static int check(void)
{
	static const clockid_t ids[] = {CLOCK_REALTIME, CLOCK_MONOTONIC,
					CLOCK_MONOTONIC_RAW, CLOCK_BOOTTIME, CLOCK_TAI};
	for (int round = 0; round < 20000; round++) {
		for (unsigned i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
			struct timespec ts;
			int64_t a = raw(ids[i]);
			int rc = clock_gettime(ids[i], &ts);
			within("clock_gettime", a, rc ? 0 : ns(&ts), raw(ids[i]), 100);
		}
		struct timespec ts;
		int64_t a = raw(CLOCK_MONOTONIC_COARSE);
		clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
		within("clock_gettime(MONOTONIC_COARSE)", a, ns(&ts),
		       raw(CLOCK_MONOTONIC_COARSE), 0);
		struct timeval tv;
		a = raw(CLOCK_REALTIME);
		gettimeofday(&tv, NULL);
		within("gettimeofday", a / 1000, (int64_t)tv.tv_sec * 1000000 + tv.tv_usec,
		       raw(CLOCK_REALTIME) / 1000, 1);
		time_t t = time(NULL);
		if (t > raw(CLOCK_REALTIME) / 1000000000) {
			printf("FAIL time() %lld ahead of REALTIME\n", (long long)t);
			bad = 1;
		}
		a = raw(CLOCK_REALTIME);
		if (timespec_get(&ts, TIME_UTC) != TIME_UTC) {
			printf("FAIL timespec_get\n");
			bad = 1;
		}
		within("timespec_get", a, ns(&ts), raw(CLOCK_REALTIME), 100);
		struct timeb tb;
		a = raw(CLOCK_REALTIME) / 1000000;
		/* Deprecated, but programs still call it. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
		ftime(&tb);
#pragma GCC diagnostic pop
		within("ftime", a, (int64_t)tb.time * 1000 + tb.millitm,
		       raw(CLOCK_REALTIME) / 1000000, 1);
	}
	struct timezone tz, ktz;
	syscall(SYS_gettimeofday, NULL, &ktz);
	call_gettimeofday(NULL, &tz);
	if (tz.tz_minuteswest != ktz.tz_minuteswest || tz.tz_dsttime != ktz.tz_dsttime) {
		printf("FAIL timezone\n");
		bad = 1;
	}
	printf(bad ? "check: failed\n" : "check: every call within raw system calls\n");
	return bad;
}

static void show(const char *call, int id, int null_ptr, int rc, int err,
		 const struct timespec *ts, int with_value)
{
	printf("%s %d %s rc=%d errno=%d", call, id, null_ptr ? "NULL" : "&ts", rc,
	       rc ? err : 0);
	if (with_value && rc == 0 && !null_ptr)
		printf(" value=%ld.%09ld", (long)ts->tv_sec, ts->tv_nsec);
	printf("\n");
}

/* Without the shim, glibc stores through a NULL result for the clocks its
 * vDSO serves (a crash): the table has real pointers only. */
static int errno_table(void)
{
	for (int id = -20; id < 40; id++) {
		struct timespec ts = {0, 0};
		int rc;

		/* Fine clocks' values differ between calls: shown only for
		 * getres, whose answer is fixed. */
		errno = 0;
		rc = call_gettime(id, &ts);
		show("clock_gettime", id, 0, rc, errno, &ts, 0);
		errno = 0;
		rc = call_getres(id, &ts);
		show("clock_getres", id, 0, rc, errno, &ts, 1);
	}
	return 0;
}

/* With the shim, a NULL result gets the system call's answer (EFAULT for
 * a valid clock, EINVAL for an invalid one), not a crash. */
static int null_results(void)
{
	int mismatches = 0;

	for (int id = -20; id < 40; id++) {
		int rc, err, krc, kerr;

		errno = 0;
		rc = call_gettime(id, NULL);
		err = errno;
		errno = 0;
		krc = (int)syscall(SYS_clock_gettime, id, NULL);
		kerr = errno;
		if (rc != krc || (rc && err != kerr)) {
			printf("FAIL clock_gettime(%d, NULL): %d/%d, kernel %d/%d\n", id, rc,
			       err, krc, kerr);
			mismatches++;
		}
	}
	printf("null results: %d mismatches\n", mismatches);
	return mismatches != 0;
}

static int count(long n)
{
	struct timespec ts;
	long calls = 0;
	int64_t end;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	calls++;
	end = ns(&ts) + 20000000;
	do {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		calls++;
	} while (ns(&ts) < end);
	for (long i = 0; i < n; i++)
		clock_gettime(CLOCK_MONOTONIC, &ts);
	printf("calls=%ld\n", calls + n);
	return 0;
}

static void *thread_reads(void *arg)
{
	int64_t last = 0;
	long back = 0;

	(void)arg;
	for (int i = 0; i < 200000; i++) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		back += ns(&ts) < last;
		last = ns(&ts);
	}
	return (void *)back;
}

static int threads(void)
{
	pthread_t t[4];
	long back = 0;

	for (int i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, thread_reads, NULL);
	for (int i = 0; i < 4; i++) {
		void *r;
		pthread_join(t[i], &r);
		back += (long)r;
	}
	printf("threads: %ld readings went back\n", back);
	return back != 0;
}

int main(int argc, char **argv)
{
	if (argc == 2 && !strcmp(argv[1], "check"))
		return check();
	if (argc == 2 && !strcmp(argv[1], "errno"))
		return errno_table();
	if (argc == 2 && !strcmp(argv[1], "null"))
		return null_results();
	if (argc == 3 && !strcmp(argv[1], "count"))
		return count(atol(argv[2]));
	if (argc == 2 && !strcmp(argv[1], "threads"))
		return threads();
	fprintf(stderr, "usage: clock_calls check|errno|count N|threads\n");
	return 2;
}
