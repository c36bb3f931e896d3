/*
 * uclock verify: uclock against the kernel.
 *  - brackets: every reading of every served clock between a kernel reading
 *    taken just before it and one just after (100 ns of slack for the fine
 *    clocks, none for the coarse ones);
 *  - errno parity: every clock id uclock does not serve gives the kernel's
 *    return value and errno;
 *  - time warps: one thread pinned on each CPU, each reading at least the
 *    latest any thread published before it started;
 *  - back-to-back: no thread's readings go back.
 * Exits 1 on any failure.  UCLOCK_VERIFY_INJECT_NS adds an error to every
 * uclock reading, so that a test can show a broken clock is caught.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cli.h"
#include "uclock.h"

#define SLACK_NS 100

static int64_t inject_ns;

static const struct served {
	clockid_t id;
	const char *name;
	int coarse;
} served[] = {
	{CLOCK_REALTIME, "CLOCK_REALTIME", 0},
	{CLOCK_MONOTONIC, "CLOCK_MONOTONIC", 0},
	{CLOCK_MONOTONIC_RAW, "CLOCK_MONOTONIC_RAW", 0},
	{CLOCK_BOOTTIME, "CLOCK_BOOTTIME", 0},
	{CLOCK_TAI, "CLOCK_TAI", 0},
	{CLOCK_REALTIME_COARSE, "CLOCK_REALTIME_COARSE", 1},
	{CLOCK_MONOTONIC_COARSE, "CLOCK_MONOTONIC_COARSE", 1},
};
#define SERVED (sizeof(served) / sizeof(served[0]))

struct bracket_result {
	long readings, outside;
	int64_t worst_ns;   /* furthest outside, or inside: 0 */
	int64_t p999_ns;    /* |reading - midpoint| */
};

static int64_t uclock_reading(clockid_t id)
{
	struct timespec ts;

	if (uclock_gettime(id, &ts) != 0)
		return INT64_MIN;
	return timespec_ns(&ts) + inject_ns;
}

static void check_brackets(const struct served *c, double seconds,
			   struct bracket_result *r)
{
	size_t cap = 1 << 20;
	int64_t *err = malloc(cap * sizeof(*err));
	int64_t slack = c->coarse ? 0 : SLACK_NS;
	int64_t end = clock_ns(CLOCK_MONOTONIC) + (int64_t)(seconds * 1e9);

	memset(r, 0, sizeof(*r));
	while (clock_ns(CLOCK_MONOTONIC) < end) {
		for (int i = 0; i < 1000; i++) {
			int64_t before = clock_ns(c->id);
			int64_t v = uclock_reading(c->id);
			int64_t after = clock_ns(c->id);
			int64_t out = v < before - slack ? before - slack - v
				    : v > after + slack ? v - after - slack : 0;

			r->outside += out > 0;
			if (out > r->worst_ns)
				r->worst_ns = out;
			int64_t e = v - (before / 2 + after / 2);
			if (err && (size_t)r->readings < cap)
				err[r->readings] = e < 0 ? -e : e;
			r->readings++;
		}
	}
	if (err) {
		size_t n = (size_t)r->readings < cap ? (size_t)r->readings : cap;
		qsort(err, n, sizeof(*err), compare_i64);
		r->p999_ns = n ? err[n * 999 / 1000] : 0;
		free(err);
	}
}

/* One call each way; a difference in result or errno is described. */
static int differs(const char *call, int id, int (*kernel)(int, struct timespec *),
		   int (*ours)(clockid_t, struct timespec *), int null_ts, char *why,
		   size_t why_size)
{
	struct timespec a, b;
	int k, u, kerr, uerr;

	errno = 0;
	k = kernel(id, null_ts ? NULL : &a);
	kerr = errno;
	errno = 0;
	u = ours(id, null_ts ? NULL : &b);
	uerr = errno;
	if (k == u && (k == 0 || kerr == uerr))
		return 0;
	snprintf(why, why_size, "%s(%d, %s): kernel %d (%s), uclock %d (%s)", call, id,
		 null_ts ? "NULL" : "&ts", k, strerror(kerr), u, strerror(uerr));
	return 1;
}

static int sys_gettime(int id, struct timespec *ts)
{
	return (int)syscall(SYS_clock_gettime, id, ts);
}

static int sys_getres(int id, struct timespec *ts)
{
	return (int)syscall(SYS_clock_getres, id, ts);
}

/* The ids uclock passes to the kernel: CPU-time clocks, ALARM and AUX
 * ids, invalid ones; with and without a result pointer. */
static int errno_parity(long *ids_checked, char *first, size_t first_size)
{
	int mismatches = 0;
	char why[160];

	*ids_checked = 0;
	for (int id = -40; id < 64; id++) {
		int served_id = 0;

		for (size_t i = 0; i < SERVED; i++)
			served_id |= served[i].id == id;
		if (served_id)
			continue;
		for (int null_ts = 0; null_ts < 2; null_ts++) {
			int d = differs("clock_gettime", id, sys_gettime, uclock_gettime,
					null_ts, why, sizeof(why)) +
				differs("clock_getres", id, sys_getres, uclock_getres,
					null_ts, why, sizeof(why));
			if (d && !mismatches)
				snprintf(first, first_size, "%s", why);
			mismatches += d;
		}
		(*ids_checked)++;
	}
	return mismatches;
}

/* Time warps: the lock-free form of the classic test.  'latest' is the
 * highest MONOTONIC reading any thread published; a reading that started
 * after it was published must not be lower. */
struct warp {
	int64_t latest;
	int64_t end;
	long readings, backward, own_backward;
};

static void publish(struct warp *w, int64_t v)
{
	int64_t seen = __atomic_load_n(&w->latest, __ATOMIC_ACQUIRE);

	while (v > seen && !__atomic_compare_exchange_n(&w->latest, &seen, v, 0,
							 __ATOMIC_ACQ_REL,
							 __ATOMIC_ACQUIRE))
		;
}

struct warp_thread {
	struct warp *w;
	long cpu;
	pthread_t thread;
};

static void *warp_reader(void *arg)
{
	struct warp_thread *t = arg;
	struct warp *w = t->w;
	cpu_set_t set;
	long readings = 0, backward = 0, own = 0;
	int64_t mine = INT64_MIN;

	CPU_ZERO(&set);
	CPU_SET((int)t->cpu, &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	while (clock_ns(CLOCK_MONOTONIC) < w->end) {
		for (int i = 0; i < 256; i++) {
			int64_t before = __atomic_load_n(&w->latest, __ATOMIC_ACQUIRE);
			int64_t v = uclock_reading(CLOCK_MONOTONIC);
			/* The inline reader's counter read is not ordered after
			 * the load above (rdtsc may run early), so it is checked
			 * within the thread only, as promised. */
			int64_t fast = uclock_mono_ns() + inject_ns;

			backward += v < before;
			own += v < mine || fast < v;
			mine = fast;
			publish(w, v);
			readings += 2;
		}
	}
	__atomic_fetch_add(&w->readings, readings, __ATOMIC_RELAXED);
	__atomic_fetch_add(&w->backward, backward, __ATOMIC_RELAXED);
	__atomic_fetch_add(&w->own_backward, own, __ATOMIC_RELAXED);
	return NULL;
}

static long time_warps(double seconds, struct warp *w)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	struct warp_thread *t;

	if (cpus < 1)
		cpus = 1;
	t = calloc((size_t)cpus, sizeof(*t));
	memset(w, 0, sizeof(*w));
	w->latest = INT64_MIN;
	w->end = clock_ns(CLOCK_MONOTONIC) + (int64_t)(seconds * 1e9);
	for (long i = 0; t && i < cpus; i++) {
		t[i].w = w;
		t[i].cpu = i;
		pthread_create(&t[i].thread, NULL, warp_reader, &t[i]);
	}
	for (long i = 0; t && i < cpus; i++)
		pthread_join(t[i].thread, NULL);
	free(t);
	return cpus;
}

static void usage(FILE *out)
{
	fprintf(out, "usage: uclock verify [--duration S] [--json]\n\n"
		     "Checks uclock against the kernel: every served clock's readings\n"
		     "inside brackets of the kernel's, the same result and errno as the\n"
		     "kernel for every other clock id, no time warp across CPUs, no\n"
		     "reading going back (see uclock(1) for the thresholds).\n\n"
		     "  --duration S  seconds of readings per check (0.05..3600, default 2)\n"
		     "  --json        one JSON object instead of the tables\n"
		     "  -h, --help    this help\n\n"
		     "Exit status: 0 passed, 1 a check failed, 2 bad usage.\n");
}

struct verdict {
	struct bracket_result clocks[SERVED];
	long ids, mismatches;
	char first_mismatch[160];
	struct warp warp;
	long cpus;
	int passed;
};

static void print_human(const struct verdict *v)
{
	printf("%-24s %10s %8s %10s %10s\n", "clock", "readings", "outside",
	       "worst", "p99.9");
	for (size_t i = 0; i < SERVED; i++)
		printf("%-24s %10ld %8ld %8lldns %8lldns\n", served[i].name,
		       v->clocks[i].readings, v->clocks[i].outside,
		       (long long)v->clocks[i].worst_ns, (long long)v->clocks[i].p999_ns);
	printf("errno parity: %ld clock ids, %ld mismatches%s%s\n", v->ids,
	       v->mismatches, v->mismatches ? "; first: " : "", v->first_mismatch);
	printf("time warps: %ld readings on %ld CPUs, %ld before an earlier one, "
	       "%ld back within a thread\n",
	       v->warp.readings, v->cpus, v->warp.backward, v->warp.own_backward);
	printf("verdict: %s\n", v->passed ? "PASS: uclock agrees with the kernel"
					  : "FAIL: uclock disagrees with the kernel");
}

static void print_json(const struct verdict *v, double seconds)
{
	struct json *j = json_open(stdout);

	json_object(j, NULL);
	json_double(j, "duration_s", seconds);
	json_bool(j, "passed", v->passed);
	json_array(j, "clocks");
	for (size_t i = 0; i < SERVED; i++) {
		json_object(j, NULL);
		json_string(j, "name", served[i].name);
		json_int(j, "readings", v->clocks[i].readings);
		json_int(j, "outside", v->clocks[i].outside);
		json_int(j, "worst_ns", v->clocks[i].worst_ns);
		json_int(j, "p999_ns", v->clocks[i].p999_ns);
		json_end(j);
	}
	json_end(j);
	json_object(j, "errno");
	json_int(j, "ids", v->ids);
	json_int(j, "mismatches", v->mismatches);
	json_string(j, "first", v->mismatches ? v->first_mismatch : NULL);
	json_end(j);
	json_object(j, "warp");
	json_int(j, "cpus", v->cpus);
	json_int(j, "readings", v->warp.readings);
	json_int(j, "backward", v->warp.backward);
	json_end(j);
	json_object(j, "monotonic");
	json_int(j, "readings", v->warp.readings);
	json_int(j, "backward", v->warp.own_backward);
	json_end(j);
	json_end(j);
	json_close(j);
}

int cmd_verify(int argc, char **argv)
{
	static const struct option options[] = {
		{"duration", required_argument, NULL, 'd'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	double seconds = 2;
	int json = 0, c;
	const char *inject = getenv("UCLOCK_VERIFY_INJECT_NS");
	struct verdict v;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
		switch (c) {
		case 'd':
			if (parse_seconds(optarg, 0.05, 3600, &seconds))
				return usage_error("verify", "bad duration '%s' (seconds, "
							     "0.05 to 3600)", optarg);
			break;
		case 'j':
			json = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			return option_error("verify", c, argv);
		}
	}
	if (optind < argc)
		return usage_error("verify", "unexpected argument '%s'", argv[optind]);
	if (inject)
		inject_ns = strtoll(inject, NULL, 10);

	memset(&v, 0, sizeof(v));
	warm_up();
	double share = seconds * 0.6 / SERVED;
	for (size_t i = 0; i < SERVED; i++) {
		progress((double)i / (SERVED + 2), served[i].name);
		check_brackets(&served[i], share, &v.clocks[i]);
	}
	progress((double)SERVED / (SERVED + 2), "errno parity");
	v.mismatches = errno_parity(&v.ids, v.first_mismatch, sizeof(v.first_mismatch));
	progress((double)(SERVED + 1) / (SERVED + 2), "time warps across CPUs");
	v.cpus = time_warps(seconds * 0.4, &v.warp);
	progress(1.0, "");

	v.passed = v.mismatches == 0 && v.warp.backward == 0 && v.warp.own_backward == 0;
	for (size_t i = 0; i < SERVED; i++)
		v.passed &= v.clocks[i].outside == 0 && v.clocks[i].readings > 0;
	if (json)
		print_json(&v, seconds);
	else
		print_human(&v);
	return v.passed ? 0 : 1;
}
