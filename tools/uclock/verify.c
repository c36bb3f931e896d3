/*
 * uclock verify: uclock against the kernel.  Five checks, each named in
 * the verdict when it fails:
 *  - brackets: every reading of every served clock (and of the inline
 *    readers) lies between a kernel reading of the same clock taken just
 *    before it and one just after, give or take SLACK_NS (none for the
 *    coarse clocks, which are the kernel's own tick);
 *  - p99.9: for each of them, 99.9 % of readings lie within P999_SLACK_NS
 *    plus half the median bracket's width of their bracket's midpoint.  A
 *    reading that ran long (an update inside it) or was interrupted sits
 *    in a wide bracket and passes the first check; this one asks that
 *    such readings stay rare, as they are on a healthy machine;
 *  - errno: every clock id uclock does not serve gives the kernel's return
 *    value and errno;
 *  - time warps: one thread pinned on each CPU, each reading at least the
 *    latest any thread published before it started;
 *  - monotonic: no thread's readings go back.
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
#define P999_SLACK_NS 100
#define HISTOGRAM_NS 65535       /* longer distances count as this */
#define STEERING_EVERY 1000      /* readings between samples of the steering */

static int64_t inject_ns;

enum reader { GETTIME, MONO_NS, REAL_NS };

static const struct served {
	clockid_t id;            /* the kernel's clock it is bracketed by */
	const char *name;
	enum reader reader;
	int coarse;
} served[] = {
	{CLOCK_REALTIME, "CLOCK_REALTIME", GETTIME, 0},
	{CLOCK_MONOTONIC, "CLOCK_MONOTONIC", GETTIME, 0},
	{CLOCK_MONOTONIC_RAW, "CLOCK_MONOTONIC_RAW", GETTIME, 0},
	{CLOCK_BOOTTIME, "CLOCK_BOOTTIME", GETTIME, 0},
	{CLOCK_TAI, "CLOCK_TAI", GETTIME, 0},
	{CLOCK_REALTIME_COARSE, "CLOCK_REALTIME_COARSE", GETTIME, 1},
	{CLOCK_MONOTONIC_COARSE, "CLOCK_MONOTONIC_COARSE", GETTIME, 1},
	{CLOCK_MONOTONIC, "uclock_mono_ns()", MONO_NS, 0},
	{CLOCK_REALTIME, "uclock_real_ns()", REAL_NS, 0},
};
#define SERVED (sizeof(served) / sizeof(served[0]))

struct bracket_result {
	long readings, outside;
	int64_t beyond_ns;       /* how far the furthest outside one was past
				    the slack; 0 if none was */
	int64_t p50_ns, p99_ns, p999_ns;  /* |reading - bracket midpoint| */
	int64_t limit_ns;        /* what p99.9 may reach */
};

/* Distances in whole ns, each counted: exact percentiles of any number of
 * readings in fixed memory. */
struct histogram {
	uint64_t count[HISTOGRAM_NS + 1];
	uint64_t total;
};

static void histogram_add(struct histogram *h, int64_t ns)
{
	h->count[ns < 0 ? 0 : ns > HISTOGRAM_NS ? HISTOGRAM_NS : ns]++;
	h->total++;
}

/* The smallest value at or above which lies no more than 1 - q of them. */
static int64_t histogram_percentile(const struct histogram *h, double q)
{
	uint64_t rank = (uint64_t)(q * (double)h->total), seen = 0;

	for (int64_t ns = 0; ns <= HISTOGRAM_NS; ns++) {
		seen += h->count[ns];
		if (seen > rank || seen == h->total)
			return ns;
	}
	return HISTOGRAM_NS;
}

/* uclock's rate correction over the run: the steering it applies. */
struct steering {
	double min_ppm, max_ppm;
	long samples;
};

static void sample_steering(struct steering *s)
{
	struct uclock_stat st = {.size = sizeof(st)};

	if (uclock_stat(&st) != 0)
		return;
	if (!s->samples || st.rate_correction_ppm < s->min_ppm)
		s->min_ppm = st.rate_correction_ppm;
	if (!s->samples || st.rate_correction_ppm > s->max_ppm)
		s->max_ppm = st.rate_correction_ppm;
	s->samples++;
}

static int64_t uclock_reading(clockid_t id)
{
	struct timespec ts;

	if (uclock_gettime(id, &ts) != 0)
		return INT64_MIN;
	return timespec_ns(&ts) + inject_ns;
}

static int64_t reading(const struct served *c)
{
	switch (c->reader) {
	case MONO_NS: return uclock_mono_ns() + inject_ns;
	case REAL_NS: return uclock_real_ns() + inject_ns;
	default: return uclock_reading(c->id);
	}
}

/* How far v lies outside [before - slack, after + slack]; 0 inside. */
static int64_t outside_by(int64_t v, int64_t before, int64_t after, int64_t slack)
{
	if (v == INT64_MIN)       /* the call failed */
		return INT64_MAX;
	if (v < before - slack)
		return before - slack - v;
	return v > after + slack ? v - after - slack : 0;
}

static void check_brackets(const struct served *c, double seconds,
			   struct histogram *distance, struct histogram *width,
			   struct steering *steering, struct bracket_result *r)
{
	int64_t slack = c->coarse ? 0 : SLACK_NS;
	int64_t end = clock_ns(CLOCK_MONOTONIC) + (int64_t)(seconds * 1e9);

	memset(r, 0, sizeof(*r));
	memset(distance, 0, sizeof(*distance));
	memset(width, 0, sizeof(*width));
	while (clock_ns(CLOCK_MONOTONIC) < end) {
		for (int i = 0; i < STEERING_EVERY; i++) {
			int64_t before = clock_ns(c->id);
			int64_t v = reading(c);
			int64_t after = clock_ns(c->id);
			int64_t out = outside_by(v, before, after, slack);

			r->outside += out > 0;
			if (out > r->beyond_ns)
				r->beyond_ns = out;
			int64_t e = v == INT64_MIN ? INT64_MAX
						   : v - (before + (after - before) / 2);
			histogram_add(distance, e < 0 ? -e : e);
			histogram_add(width, after - before);
		}
		r->readings += STEERING_EVERY;
		sample_steering(steering);
	}
	r->p50_ns = histogram_percentile(distance, 0.5);
	r->p99_ns = histogram_percentile(distance, 0.99);
	r->p999_ns = histogram_percentile(distance, 0.999);
	r->limit_ns = P999_SLACK_NS + histogram_percentile(width, 0.5) / 2;
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
		     "Checks uclock against the kernel, and fails (exit 1) naming the check:\n"
		     "  brackets    every reading between kernel readings just before and\n"
		     "              after it, give or take 100 ns (coarse clocks: 0)\n"
		     "  p99.9       99.9 %% of readings within 100 ns plus half the median\n"
		     "              bracket of the kernel's time (column 'limit')\n"
		     "  errno       the kernel's result and errno for every other clock id\n"
		     "  time warps  no reading below one another CPU made before it\n"
		     "  monotonic   no reading going back within a thread\n"
		     "uclock(1) defines the columns.\n\n"
		     "  --duration S  seconds of readings in all (0.05..3600, default 2)\n"
		     "  --json        one JSON object instead of the tables\n"
		     "  -h, --help    this help\n\n"
		     "Exit status: 0 passed, 1 a check failed, 2 bad usage.\n");
}

/* The checks, in the order they are reported. */
enum check { BRACKETS, P999, ERRNO, WARPS, MONOTONIC, CHECKS };
static const char *const check_names[CHECKS] = {
	[BRACKETS] = "brackets", [P999] = "p99.9", [ERRNO] = "errno",
	[WARPS] = "time warps", [MONOTONIC] = "monotonic",
};

struct verdict {
	struct bracket_result clocks[SERVED];
	long ids, mismatches;
	char first_mismatch[160];
	struct warp warp;
	struct steering steering;
	long cpus;
	int failed[CHECKS];
	int passed;
};

static void judge(struct verdict *v)
{
	for (size_t i = 0; i < SERVED; i++) {
		const struct bracket_result *r = &v->clocks[i];

		v->failed[BRACKETS] |= r->outside > 0 || r->readings == 0;
		v->failed[P999] |= r->p999_ns > r->limit_ns;
	}
	v->failed[ERRNO] = v->mismatches > 0;
	v->failed[WARPS] = v->warp.backward > 0;
	v->failed[MONOTONIC] = v->warp.own_backward > 0;
	v->passed = 1;
	for (int c = 0; c < CHECKS; c++)
		v->passed &= !v->failed[c];
}

static void print_distance(int64_t ns)
{
	if (ns >= HISTOGRAM_NS)
		printf(" %6s", ">65us");
	else
		printf(" %4lldns", (long long)ns);
}

static void print_clocks(const struct verdict *v)
{
	printf("%-24s %10s %8s %8s %6s %6s %6s %6s\n", "clock", "readings", "outside",
	       "beyond", "p50", "p99", "p99.9", "limit");
	for (size_t i = 0; i < SERVED; i++) {
		const struct bracket_result *r = &v->clocks[i];

		printf("%-24s %10ld %8ld ", served[i].name, r->readings, r->outside);
		if (r->outside)
			printf("%6lldns", (long long)r->beyond_ns);
		else
			printf("%8s", "-");
		print_distance(r->p50_ns);
		print_distance(r->p99_ns);
		print_distance(r->p999_ns);
		printf(" %4lldns%s\n", (long long)r->limit_ns,
		       r->p999_ns > r->limit_ns ? "  over" : "");
	}
	printf("(outside: readings not within [before - %d ns, after + %d ns] of the\n"
	       " kernel's readings around them, coarse clocks [before, after]; beyond:\n"
	       " the furthest of those, past that; p50..p99.9: |reading - bracket\n"
	       " midpoint|; limit: what p99.9 may reach, %d ns + half the median bracket)\n",
	       SLACK_NS, SLACK_NS, P999_SLACK_NS);
}

/* The clocks that failed a bracket check, on one line. */
static void print_clock_failures(const struct verdict *v, enum check c)
{
	const char *sep = " ";

	printf("failed: %s:", check_names[c]);
	for (size_t i = 0; i < SERVED; i++) {
		const struct bracket_result *r = &v->clocks[i];

		if (c == BRACKETS && (r->outside || !r->readings))
			printf("%s%s %ld of %ld outside", sep, served[i].name,
			       r->outside, r->readings);
		else if (c == P999 && r->p999_ns > r->limit_ns)
			printf("%s%s %lld ns over %lld", sep, served[i].name,
			       (long long)r->p999_ns, (long long)r->limit_ns);
		else
			continue;
		sep = ", ";
	}
	printf("\n");
}

/* What went wrong, one line per failed check. */
static void print_failures(const struct verdict *v)
{
	if (v->failed[BRACKETS])
		print_clock_failures(v, BRACKETS);
	if (v->failed[P999])
		print_clock_failures(v, P999);
	if (v->failed[ERRNO])
		printf("failed: errno: %ld mismatches; first: %s\n", v->mismatches,
		       v->first_mismatch);
	if (v->failed[WARPS])
		printf("failed: time warps: %ld readings below one made earlier on "
		       "another CPU\n", v->warp.backward);
	if (v->failed[MONOTONIC])
		printf("failed: monotonic: %ld readings back within a thread\n",
		       v->warp.own_backward);
}

static void print_human(const struct verdict *v)
{
	print_clocks(v);
	printf("errno parity: %ld clock ids, %ld mismatches%s%s\n", v->ids,
	       v->mismatches, v->mismatches ? "; first: " : "", v->first_mismatch);
	printf("time warps: %ld readings on %ld CPUs, %ld before an earlier one, "
	       "%ld back within a thread\n",
	       v->warp.readings, v->cpus, v->warp.backward, v->warp.own_backward);
	if (v->steering.samples)
		printf("steering: %+.3f..%+.3f ppm (uclock's rate correction, %ld samples)\n",
		       v->steering.min_ppm, v->steering.max_ppm, v->steering.samples);
	print_failures(v);
	if (v->passed) {
		printf("verdict: PASS: uclock agrees with the kernel\n");
		return;
	}
	printf("verdict: FAIL (");
	for (int c = 0, n = 0; c < CHECKS; c++)
		if (v->failed[c])
			printf("%s%s", n++ ? ", " : "", check_names[c]);
	printf("): uclock disagrees with the kernel\n");
}

static void print_json(const struct verdict *v, double seconds)
{
	struct json *j = json_open(stdout);

	if (!j)
		return;
	json_double(j, "duration_s", seconds);
	json_bool(j, "passed", v->passed);
	json_array(j, "failed");
	for (int c = 0; c < CHECKS; c++)
		if (v->failed[c])
			json_string(j, NULL, check_names[c]);
	json_end(j);
	json_array(j, "clocks");
	for (size_t i = 0; i < SERVED; i++) {
		const struct bracket_result *c = &v->clocks[i];

		json_object(j, NULL);
		json_string(j, "name", served[i].name);
		json_int(j, "readings", c->readings);
		json_int(j, "outside", c->outside);
		/* No readings: nothing known of how far they are. */
		if (c->readings) {
			json_int(j, "beyond_ns", c->beyond_ns);
			json_int(j, "p50_ns", c->p50_ns);
			json_int(j, "p99_ns", c->p99_ns);
			json_int(j, "p999_ns", c->p999_ns);
		} else {
			json_null(j, "beyond_ns");
			json_null(j, "p50_ns");
			json_null(j, "p99_ns");
			json_null(j, "p999_ns");
		}
		json_int(j, "p999_limit_ns", c->limit_ns);
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
	json_object(j, "steering");
	json_int(j, "samples", v->steering.samples);
	if (v->steering.samples) {
		json_double(j, "min_ppm", v->steering.min_ppm);
		json_double(j, "max_ppm", v->steering.max_ppm);
	} else {
		json_null(j, "min_ppm");
		json_null(j, "max_ppm");
	}
	json_end(j);
	json_close(j);
}

/* The readings, the errno parity and the time warps; progress meanwhile. */
static int measure(struct verdict *v, double seconds)
{
	struct histogram *distance = malloc(sizeof(*distance));
	struct histogram *width = malloc(sizeof(*width));
	double share = seconds * 0.6 / SERVED;

	if (!distance || !width) {
		free(distance);
		free(width);
		fprintf(stderr, "uclock verify: out of memory\n");
		return -1;
	}
	memset(v, 0, sizeof(*v));
	warm_up();
	for (size_t i = 0; i < SERVED; i++) {
		progress((double)i / (SERVED + 2), served[i].name);
		check_brackets(&served[i], share, distance, width, &v->steering,
			       &v->clocks[i]);
	}
	free(distance);
	free(width);
	progress((double)SERVED / (SERVED + 2), "errno parity");
	v->mismatches = errno_parity(&v->ids, v->first_mismatch, sizeof(v->first_mismatch));
	progress((double)(SERVED + 1) / (SERVED + 2), "time warps across CPUs");
	v->cpus = time_warps(seconds * 0.4, &v->warp);
	progress(1.0, "");
	judge(v);
	return 0;
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
	static struct verdict v;

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
	if (measure(&v, seconds))
		return 1;
	if (json)
		print_json(&v, seconds);
	else
		print_human(&v);
	return v.passed ? 0 : 1;
}
