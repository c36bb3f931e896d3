/*
 * uclock's figures, side by side in one process against the kernel's vDSO:
 * cost per call of every reader, accuracy against kernel brackets, and
 * backward steps across CPUs.  Prints the targets with the measured ratios.
 *
 *   bench [--quick]
 *
 * What limits the inline readers, measured on the project's machine with
 * variants of the loop (median of 200 interleaved rounds): rdtsc alone
 * 1.00x; rdtsc, two loads and a subtraction 1.00x; plus a branch (or a
 * cmov) on the counter value 1.06-1.07x; plus the seq re-check 1.08x; the
 * full reader 1.13x; a 64-bit shift instead of the 128-bit one, or no
 * sub-ns fraction, within noise.  rdtsc there does not overlap work that
 * depends on the previous one: whatever checks the counter value costs.
 */
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "uclock.h"

#define BATCH 10000

static int rounds = 100;
static long accuracy_reads = 2000000;
static double warp_seconds = 1.0;
static volatile uint64_t sink;

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t ts_ns(const struct timespec *ts)
{
	return (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec;
}

/* One loop per method, so that inline readers stay inline. */
#define LOOP(fn_name, body)                                                  \
	static __attribute__((noinline)) void fn_name(void)                  \
	{                                                                    \
		uint64_t acc = 0;                                            \
		for (int i = 0; i < BATCH; i++) {                            \
			body;                                                \
		}                                                            \
		sink += acc;                                                 \
	}

#define VDSO_LOOP(fn_name, id)                                               \
	LOOP(fn_name, struct timespec ts; clock_gettime(id, &ts);            \
	     acc += (uint64_t)ts.tv_nsec)
#define UCLOCK_LOOP(fn_name, id)                                             \
	LOOP(fn_name, struct timespec ts; uclock_gettime(id, &ts);           \
	     acc += (uint64_t)ts.tv_nsec)

LOOP(m_rdtsc, acc += __builtin_ia32_rdtsc())
LOOP(m_rdtscp, unsigned aux; acc += __builtin_ia32_rdtscp(&aux))
LOOP(m_lfence, __builtin_ia32_lfence(); acc += __builtin_ia32_rdtsc())
VDSO_LOOP(m_vdso_mono, CLOCK_MONOTONIC)
VDSO_LOOP(m_vdso_real, CLOCK_REALTIME)
VDSO_LOOP(m_vdso_raw, CLOCK_MONOTONIC_RAW)
VDSO_LOOP(m_vdso_boot, CLOCK_BOOTTIME)
VDSO_LOOP(m_vdso_tai, CLOCK_TAI)
VDSO_LOOP(m_vdso_mono_coarse, CLOCK_MONOTONIC_COARSE)
VDSO_LOOP(m_vdso_real_coarse, CLOCK_REALTIME_COARSE)
LOOP(m_vdso_gtod, struct timeval tv; gettimeofday(&tv, NULL); acc += (uint64_t)tv.tv_usec)
LOOP(m_vdso_time, acc += (uint64_t)time(NULL))
LOOP(m_syscall, struct timespec ts; syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &ts);
     acc += (uint64_t)ts.tv_nsec)
LOOP(m_mono_ns, acc += (uint64_t)uclock_mono_ns())
LOOP(m_real_ns, acc += (uint64_t)uclock_real_ns())
LOOP(m_ticks, acc += uclock_ticks())
UCLOCK_LOOP(m_u_mono, CLOCK_MONOTONIC)
UCLOCK_LOOP(m_u_real, CLOCK_REALTIME)
UCLOCK_LOOP(m_u_raw, CLOCK_MONOTONIC_RAW)
UCLOCK_LOOP(m_u_boot, CLOCK_BOOTTIME)
UCLOCK_LOOP(m_u_tai, CLOCK_TAI)
UCLOCK_LOOP(m_u_mono_coarse, CLOCK_MONOTONIC_COARSE)
UCLOCK_LOOP(m_u_real_coarse, CLOCK_REALTIME_COARSE)
LOOP(m_u_gtod, struct timeval tv; uclock_gettimeofday(&tv, NULL); acc += (uint64_t)tv.tv_usec)
LOOP(m_u_time, acc += (uint64_t)uclock_time(NULL))

struct method {
	const char *name;
	void (*loop)(void);
	int reference;   /* index of the vDSO method it is compared with */
	int batches;     /* slow methods run fewer batches per round */
	double *ns;      /* per-call cost of each round */
	double median, p99;
};

enum {
	RDTSC, RDTSCP, LFENCE, V_MONO, V_REAL, V_RAW, V_BOOT, V_TAI, V_MCOARSE,
	V_RCOARSE, V_GTOD, V_TIME, SYSCALL, U_MONO_NS, U_REAL_NS, U_TICKS, U_MONO,
	U_REAL, U_RAW, U_BOOT, U_TAI, U_MCOARSE, U_RCOARSE, U_GTOD, U_TIME, METHODS
};

static struct method methods[METHODS] = {
	[RDTSC] = {"rdtsc", m_rdtsc, RDTSC, 1},
	[RDTSCP] = {"rdtscp", m_rdtscp, RDTSC, 1},
	[LFENCE] = {"lfence+rdtsc", m_lfence, RDTSC, 1},
	[V_MONO] = {"vdso clock_gettime(MONOTONIC)", m_vdso_mono, V_MONO, 1},
	[V_REAL] = {"vdso clock_gettime(REALTIME)", m_vdso_real, V_REAL, 1},
	[V_RAW] = {"vdso clock_gettime(MONOTONIC_RAW)", m_vdso_raw, V_RAW, 1},
	[V_BOOT] = {"vdso clock_gettime(BOOTTIME)", m_vdso_boot, V_BOOT, 1},
	[V_TAI] = {"vdso clock_gettime(TAI)", m_vdso_tai, V_TAI, 1},
	[V_MCOARSE] = {"vdso clock_gettime(MONOTONIC_COARSE)", m_vdso_mono_coarse, V_MCOARSE, 1},
	[V_RCOARSE] = {"vdso clock_gettime(REALTIME_COARSE)", m_vdso_real_coarse, V_RCOARSE, 1},
	[V_GTOD] = {"vdso gettimeofday", m_vdso_gtod, V_GTOD, 1},
	[V_TIME] = {"vdso time", m_vdso_time, V_TIME, 1},
	[SYSCALL] = {"syscall clock_gettime(MONOTONIC)", m_syscall, V_MONO, 1},
	[U_MONO_NS] = {"uclock_mono_ns()", m_mono_ns, V_MONO, 1},
	[U_REAL_NS] = {"uclock_real_ns()", m_real_ns, V_REAL, 1},
	[U_TICKS] = {"uclock_ticks()", m_ticks, RDTSC, 1},
	[U_MONO] = {"uclock_gettime(MONOTONIC)", m_u_mono, V_MONO, 1},
	[U_REAL] = {"uclock_gettime(REALTIME)", m_u_real, V_REAL, 1},
	[U_RAW] = {"uclock_gettime(MONOTONIC_RAW)", m_u_raw, V_RAW, 1},
	[U_BOOT] = {"uclock_gettime(BOOTTIME)", m_u_boot, V_BOOT, 1},
	[U_TAI] = {"uclock_gettime(TAI)", m_u_tai, V_TAI, 1},
	[U_MCOARSE] = {"uclock_gettime(MONOTONIC_COARSE)", m_u_mono_coarse, V_MCOARSE, 1},
	[U_RCOARSE] = {"uclock_gettime(REALTIME_COARSE)", m_u_real_coarse, V_RCOARSE, 1},
	[U_GTOD] = {"uclock_gettimeofday", m_u_gtod, V_GTOD, 1},
	[U_TIME] = {"uclock_time", m_u_time, V_TIME, 1},
};

static int compare_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int compare_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/* Rounds of one batch of every method in turn: drift and noise hit all. */
static void measure_costs(void)
{
	for (int m = 0; m < METHODS; m++)
		methods[m].ns = calloc((size_t)rounds, sizeof(double));
	for (int m = 0; m < METHODS; m++)
		methods[m].loop(); /* warm caches, and uclock's warm-up */
	for (int r = 0; r < rounds; r++) {
		for (int m = 0; m < METHODS; m++) {
			int64_t t0 = now_ns();
			methods[m].loop();
			methods[m].ns[r] = (double)(now_ns() - t0) / BATCH;
		}
	}
	for (int m = 0; m < METHODS; m++) {
		qsort(methods[m].ns, (size_t)rounds, sizeof(double), compare_double);
		methods[m].median = methods[m].ns[rounds / 2];
		methods[m].p99 = methods[m].ns[rounds * 99 / 100];
	}
}

static void print_costs(void)
{
	printf("%-40s %9s %9s %9s\n", "cost per call", "median", "p99", "ratio");
	for (int m = 0; m < METHODS; m++) {
		const struct method *x = &methods[m];

		printf("%-40s %7.2fns %7.2fns %8.2fx %s\n", x->name, x->median, x->p99,
		       x->median / methods[x->reference].median,
		       x->reference == m ? "" : methods[x->reference].name);
	}
}

struct accuracy {
	long outside;        /* readings outside [before - 100, after + 100] */
	int64_t p50, p99, p999, max;  /* |reading - midpoint|, calm brackets */
	int64_t all_p999;    /* the same over every bracket */
	double kept;
};

static void accuracy_of(clockid_t id, int fast, struct accuracy *a)
{
	long n = accuracy_reads;
	int64_t *err = malloc(sizeof(int64_t) * (size_t)n);
	int64_t *width = malloc(sizeof(int64_t) * (size_t)n);
	int64_t *calm = malloc(sizeof(int64_t) * (size_t)n);
	long kept = 0;

	memset(a, 0, sizeof(*a));
	for (long i = 0; i < n; i++) {
		struct timespec b, u, e;
		int64_t v;

		clock_gettime(id, &b);
		if (fast)
			v = id == CLOCK_REALTIME ? uclock_real_ns() : uclock_mono_ns();
		else {
			uclock_gettime(id, &u);
			v = ts_ns(&u);
		}
		clock_gettime(id, &e);
		int64_t before = ts_ns(&b), after = ts_ns(&e);
		a->outside += v < before - 100 || v > after + 100;
		err[i] = v - before / 2 - after / 2;
		width[i] = after - before;
	}
	int64_t *sorted = malloc(sizeof(int64_t) * (size_t)n);
	memcpy(sorted, width, sizeof(int64_t) * (size_t)n);
	qsort(sorted, (size_t)n, sizeof(int64_t), compare_i64);
	int64_t median_width = sorted[n / 2];
	for (long i = 0; i < n; i++) {
		int64_t e = err[i] < 0 ? -err[i] : err[i];
		sorted[i] = e;
		/* Calm: not widened by an interrupt or a preemption. */
		if (width[i] * 4 <= median_width * 5)
			calm[kept++] = e;
	}
	qsort(sorted, (size_t)n, sizeof(int64_t), compare_i64);
	qsort(calm, (size_t)kept, sizeof(int64_t), compare_i64);
	a->all_p999 = sorted[n * 999 / 1000];
	a->p50 = calm[kept / 2];
	a->p99 = calm[kept * 99 / 100];
	a->p999 = calm[kept * 999 / 1000];
	a->max = calm[kept - 1];
	a->kept = 100.0 * (double)kept / (double)n;
	free(err);
	free(width);
	free(calm);
	free(sorted);
}

static const struct {
	clockid_t id;
	const char *name;
	int fast;
} accuracy_clocks[] = {
	{CLOCK_REALTIME, "uclock_gettime(REALTIME)", 0},
	{CLOCK_MONOTONIC, "uclock_gettime(MONOTONIC)", 0},
	{CLOCK_MONOTONIC_RAW, "uclock_gettime(MONOTONIC_RAW)", 0},
	{CLOCK_BOOTTIME, "uclock_gettime(BOOTTIME)", 0},
	{CLOCK_TAI, "uclock_gettime(TAI)", 0},
	{CLOCK_MONOTONIC, "uclock_mono_ns()", 1},
	{CLOCK_REALTIME, "uclock_real_ns()", 1},
};
#define ACCURACY_CLOCKS (sizeof(accuracy_clocks) / sizeof(accuracy_clocks[0]))
static struct accuracy accuracies[ACCURACY_CLOCKS];

static void print_accuracy(void)
{
	printf("\n%-32s %8s %6s %6s %6s %6s %9s\n",
	       "accuracy vs kernel brackets", "outside", "p50", "p99", "p99.9", "max",
	       "all p99.9");
	for (size_t i = 0; i < ACCURACY_CLOCKS; i++) {
		struct accuracy *a = &accuracies[i];

		accuracy_of(accuracy_clocks[i].id, accuracy_clocks[i].fast, a);
		printf("%-32s %8ld %4lldns %4lldns %4lldns %4lldns %7lldns\n",
		       accuracy_clocks[i].name, a->outside, (long long)a->p50,
		       (long long)a->p99, (long long)a->p999, (long long)a->max,
		       (long long)a->all_p999);
	}
	printf("(outside: readings beyond [before-100ns, after+100ns]; percentiles of\n"
	       " |reading - bracket midpoint| over brackets no wider than 1.25x the\n"
	       " median, %.0f%%-%.0f%% of them; 'all' over every bracket)\n",
	       accuracies[0].kept, accuracies[ACCURACY_CLOCKS - 1].kept);
}

/* The time-warp test: readings handed over under a lock, one thread per CPU. */
static pthread_mutex_t warp_lock = PTHREAD_MUTEX_INITIALIZER;
static int64_t warp_last, warp_last_fast;
static long warp_back, warp_reads;

static void *warp_thread(void *arg)
{
	cpu_set_t set;
	int64_t end = now_ns() + (int64_t)(warp_seconds * 1e9);
	long back = 0, reads = 0;

	CPU_ZERO(&set);
	CPU_SET((int)(long)arg, &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	while (now_ns() < end) {
		struct timespec ts;

		pthread_mutex_lock(&warp_lock);
		uclock_gettime(CLOCK_MONOTONIC, &ts);
		back += ts_ns(&ts) < warp_last;
		warp_last = ts_ns(&ts);
		int64_t f = uclock_mono_ns();
		back += f < warp_last_fast;
		warp_last_fast = f;
		pthread_mutex_unlock(&warp_lock);
		reads += 2;
	}
	pthread_mutex_lock(&warp_lock);
	warp_back += back;
	warp_reads += reads;
	pthread_mutex_unlock(&warp_lock);
	return NULL;
}

static long ncpu;

static void time_warp(void)
{
	pthread_t t[256];

	for (long i = 0; i < ncpu && i < 256; i++)
		pthread_create(&t[i], NULL, warp_thread, (void *)i);
	for (long i = 0; i < ncpu && i < 256; i++)
		pthread_join(t[i], NULL);
	printf("\ncross-CPU time warp: %ld readings on %ld pinned threads, %ld backward\n",
	       warp_reads, ncpu, warp_back);
}

static int verdict(const char *what, double value, double limit, const char *unit)
{
	int ok = value <= limit;

	printf("  %-58s %7.2f%s (target <= %.2f%s) %s\n", what, value, unit, limit, unit,
	       ok ? "met" : "MISSED");
	return ok;
}

static double ratio(int a, int b)
{
	return methods[a].median / methods[b].median;
}

static int targets(void)
{
	int ok = 1;
	int64_t worst = 0;

	printf("\ntargets\n");
	ok &= verdict("uclock_mono_ns / vdso MONOTONIC", ratio(U_MONO_NS, V_MONO), 0.6, "x");
	ok &= verdict("uclock_real_ns / vdso REALTIME", ratio(U_REAL_NS, V_REAL), 0.6, "x");
	ok &= verdict("uclock_mono_ns / rdtsc", ratio(U_MONO_NS, RDTSC), 1.2, "x");
	ok &= verdict("uclock_real_ns / rdtsc", ratio(U_REAL_NS, RDTSC), 1.2, "x");
	ok &= verdict("uclock_gettime(MONOTONIC) / vdso", ratio(U_MONO, V_MONO), 1.0, "x");
	ok &= verdict("uclock_gettime(REALTIME) / vdso", ratio(U_REAL, V_REAL), 1.0, "x");
	ok &= verdict("uclock_gettimeofday / vdso", ratio(U_GTOD, V_GTOD), 1.0, "x");
	ok &= verdict("uclock_gettime(MONOTONIC_COARSE) / vdso", ratio(U_MCOARSE, V_MCOARSE),
		      1.0, "x");
	ok &= verdict("uclock_gettime(REALTIME_COARSE) / vdso", ratio(U_RCOARSE, V_RCOARSE),
		      1.0, "x");
	for (size_t i = 0; i < ACCURACY_CLOCKS; i++) {
		if (accuracies[i].p999 > worst)
			worst = accuracies[i].p999;
		ok &= accuracies[i].outside == 0;
	}
	ok &= verdict("worst p99.9 |reading - midpoint|, every served clock", (double)worst,
		      20, "ns");
	printf("  %-58s %7ld   (target 0) %s\n", "readings outside the brackets (+-100 ns)",
	       accuracies[0].outside, accuracies[0].outside ? "MISSED" : "met");
	ok &= warp_back == 0;
	printf("  %-58s %7ld   (target 0) %s\n", "backward steps across CPUs", warp_back,
	       warp_back ? "MISSED" : "met");
	return ok;
}

int main(int argc, char **argv)
{
	struct uclock_stat st = {.size = sizeof(st)};
	int64_t start;

	if (argc > 1 && strcmp(argv[1], "--quick") == 0) {
		rounds = 20;
		accuracy_reads = 200000;
		warp_seconds = 0.3;
	}
	ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	/* Past warm-up before anything is measured. */
	start = now_ns();
	while (now_ns() - start < 100000000)
		uclock_mono_ns();
	uclock_stat(&st);
	printf("uclock bench: source %s, mode %s (%s), ordered read %s, %.3f MHz counter\n\n",
	       st.source_name, st.mode_name, st.reason, st.counter_read,
	       (double)st.counter_hz / 1e6);
	measure_costs();
	print_costs();
	print_accuracy();
	time_warp();
	return targets() ? 0 : 1;
}
