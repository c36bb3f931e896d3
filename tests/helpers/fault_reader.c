/*
 * A reader process for tests/faults.sh: THREADS threads read MONOTONIC,
 * MONOTONIC_RAW, BOOTTIME and REALTIME through uclock_gettime(), each
 * reading bracketed by two system calls, for SECONDS, while the test
 * stops, kills, freezes and restarts uclockd under them.
 *   fault_reader SECONDS [THREADS]
 * Prints, per clock, the readings more than SLACK_NS outside their bracket
 * and the backward steps within a thread; the modes the process went
 * through; how many times the page is mapped at the end.  Exit 1 on any
 * reading outside or back.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "uclock.h"

#define SLACK_NS 1000
#define MAX_THREADS 16

static const clockid_t clocks[] = {CLOCK_MONOTONIC, CLOCK_MONOTONIC_RAW, CLOCK_BOOTTIME,
				   CLOCK_REALTIME};
#define NCLOCKS (sizeof(clocks) / sizeof(clocks[0]))

struct result {
	long readings, outside[NCLOCKS], back[NCLOCKS];
	int64_t worst[NCLOCKS];
};

static double seconds;
static struct result results[MAX_THREADS];

static int64_t sys_ns(clockid_t id)
{
	struct timespec ts;

	syscall(SYS_clock_gettime, id, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void *reader(void *arg)
{
	struct result *r = arg;
	int64_t last[NCLOCKS];
	int64_t end = sys_ns(CLOCK_MONOTONIC) + (int64_t)(seconds * 1e9);

	for (unsigned c = 0; c < NCLOCKS; c++)
		last[c] = INT64_MIN;
	while (sys_ns(CLOCK_MONOTONIC) < end) {
		for (int i = 0; i < 200; i++) {
			unsigned c = (unsigned)i % NCLOCKS;
			struct timespec ts;
			int64_t before = sys_ns(clocks[c]);
			int rc = uclock_gettime(clocks[c], &ts);
			int64_t after = sys_ns(clocks[c]);
			int64_t v = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
			int64_t out = rc ? INT64_MAX
				    : v < before - SLACK_NS ? before - v
				    : v > after + SLACK_NS ? v - after : 0;

			r->readings++;
			if (out) {
				r->outside[c]++;
				if (out > r->worst[c])
					r->worst[c] = out;
			}
			/* REALTIME may step back (settimeofday): not here. */
			if (v < last[c])
				r->back[c]++;
			last[c] = v;
		}
	}
	return NULL;
}

/* Mappings of the page: one at most, whatever happened to the daemon. */
static int page_mappings(void)
{
	const char *page = getenv("UCLOCK_PAGE");
	char line[4096];
	int n = 0;
	FILE *f = fopen("/proc/self/maps", "r");

	if (!f || !page)
		return -1;
	while (fgets(line, sizeof(line), f))
		n += strstr(line, page) != NULL;
	fclose(f);
	return n;
}

int main(int argc, char **argv)
{
	pthread_t t[MAX_THREADS];
	int threads = argc > 2 ? atoi(argv[2]) : 4, bad = 0;
	char modes[1024] = "";
	const char *mode = "";

	if (argc < 2 || threads < 1 || threads > MAX_THREADS) {
		fprintf(stderr, "usage: fault_reader SECONDS [THREADS]\n");
		return 2;
	}
	seconds = atof(argv[1]);
	uclock_mono_ns();
	for (int i = 0; i < threads; i++)
		pthread_create(&t[i], NULL, reader, &results[i]);
	/* The main thread notes the modes the process goes through. */
	int64_t end = sys_ns(CLOCK_MONOTONIC) + (int64_t)(seconds * 1e9);
	while (sys_ns(CLOCK_MONOTONIC) < end) {
		struct uclock_stat st = {.size = sizeof(st)};
		struct timespec nap = {0, 2000000};

		uclock_stat(&st);
		if (strcmp(st.mode_name, mode) != 0 && strlen(modes) < sizeof(modes) - 16) {
			mode = st.mode_name;
			strcat(modes, modes[0] ? "," : "");
			strcat(modes, mode);
		}
		nanosleep(&nap, NULL);
	}
	for (int i = 0; i < threads; i++)
		pthread_join(t[i], NULL);
	long readings = 0;
	for (int i = 0; i < threads; i++)
		readings += results[i].readings;
	printf("readings=%ld\n", readings);
	for (unsigned c = 0; c < NCLOCKS; c++) {
		long outside = 0, back = 0;
		int64_t worst = 0;

		for (int i = 0; i < threads; i++) {
			outside += results[i].outside[c];
			back += results[i].back[c];
			if (results[i].worst[c] > worst)
				worst = results[i].worst[c];
		}
		printf("clock%d outside=%ld worst=%lld back=%ld\n", (int)clocks[c], outside,
		       (long long)worst, back);
		bad |= outside || back;
	}
	printf("modes=%s\nmappings=%d\n", modes, page_mappings());
	return bad;
}
