/*
 * uclock bench: the cost per call of every way to read time here (the
 * table methods[]), measured by the one engine (measure.c: interleaved
 * rounds in one process, ratios to the kernel's vDSO function in the same
 * rounds), and with --threads how the key ones scale when many threads
 * read the clock at once.  `make bench` runs it.
 */
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "measure.h"
#include "methods.h"
#include "uclock.h"

#define STEP_MIN_NS 100000000    /* each threads step runs at least this */
#define THREADS_MAX 256
#define QUICK_S 0.5              /* --quick: seconds of rounds */

struct options {
	double duration;         /* seconds of interleaved rounds */
	long threads;            /* scaling on up to this many threads */
	int scaling;             /* --threads given */
	int json;
	int help;
};

/* One step of the scaling: a method on k threads at once. */
struct scaling {
	const struct method *m;
	int threads;
	double calls_per_s, ns_per_call, efficiency;
};

/* The methods whose scaling is measured: the kernel's two paths, uclock's. */
static const char *const scaled_methods[] = {
	"vdso clock_gettime(MONOTONIC)",
	"syscall clock_gettime(MONOTONIC)",
	"uclock_gettime(MONOTONIC)",
	"uclock_mono_ns()",
};
#define SCALED (int)(sizeof(scaled_methods) / sizeof(scaled_methods[0]))

static void usage(FILE *out)
{
	fprintf(out,
		"usage: uclock bench [--duration S | --quick] [--threads N] [--json]\n\n"
		"Cost per call (median and p99, ns) of every way to read time here,\n"
		"measured side by side in interleaved rounds (each round ~%d us of\n"
		"calls of every method in turn), with each one's ratio to the\n"
		"kernel's vDSO function for the same clock in the same rounds.\n\n"
		"  --duration S  seconds of measuring rounds (0.1..600, default 2)\n"
		"  --quick       the same as --duration %.1f\n"
		"  --threads N   then throughput of the key methods on 1, 2, 4, ...\n"
		"                up to N pinned threads (1..%d)\n"
		"  --json        one JSON object instead of the table\n"
		"  -h, --help    this help\n\n"
		"Exit status: 0 measured, 2 bad usage.\n",
		MEASURE_BATCH_NS / 1000, QUICK_S, THREADS_MAX);
}

static int parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{"duration", required_argument, NULL, 'd'},
		{"threads", required_argument, NULL, 't'},
		{"quick", no_argument, NULL, 'q'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c;

	*o = (struct options){.duration = 2.0, .threads = 1};
	opterr = 0; /* our messages, in usage_error's form */
	while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (c) {
		case 'd':
			if (parse_seconds(optarg, 0.1, 600, &o->duration))
				return usage_error("bench", "--duration wants seconds "
						   "from 0.1 to 600, not '%s'", optarg);
			break;
		case 't':
			if (parse_long(optarg, 1, THREADS_MAX, &o->threads))
				return usage_error("bench", "--threads wants 1 to %d, "
						   "not '%s'", THREADS_MAX, optarg);
			o->scaling = 1;
			break;
		case 'q':
			o->duration = QUICK_S;
			break;
		case 'j':
			o->json = 1;
			break;
		case 'h':
			o->help = 1;
			return 0;
		default:
			return option_error("bench", c, argv);
		}
	}
	if (optind < argc)
		return usage_error("bench", "unexpected argument '%s'", argv[optind]);
	return 0;
}

static int name_width(void)
{
	int width = 6;

	for (int i = 0; i < method_count; i++)
		if ((int)strlen(methods[i].name) > width)
			width = (int)strlen(methods[i].name);
	return width;
}

static void print_table(const struct costs *b)
{
	int w = name_width();

	printf("%-*s  %-8s  %10s  %10s  %7s\n", w, "method", "kind", "median",
	       "p99", "vs vDSO");
	for (int i = 0; i < method_count; i++) {
		const struct cost *r = &b->cost[i];
		double ratio = cost_ratio(r);

		printf("%-*s  %-8s  ", w, r->m->name, method_kind_name(r->m->kind));
		if (r->why) {
			printf("not available: %s\n", r->why);
			continue;
		}
		printf("%7.2f ns  %7.2f ns  ", r->median, r->p99);
		if (isfinite(ratio))
			printf("%6.2fx\n", ratio);
		else
			printf("%7s\n", "-");
	}
	printf("(median and 99th percentile of each method's cost per call over %d\n"
	       " rounds, each a ~%d us batch of every method in turn; vs vDSO: the\n"
	       " median over that of the kernel's vDSO function for the same clock,\n"
	       " called as a program calls it, in the same rounds)\n",
	       b->rounds, MEASURE_BATCH_NS / 1000);
}

/* uclock against what programs call: the C library, and uclock's shim. */
static void print_library_comparisons(const struct costs *b)
{
	const struct cost *coarse = cost_of(b, "uclock_gettime(MONOTONIC_COARSE)");
	const struct cost *libc_coarse =
		cost_of(b, "libc clock_gettime(MONOTONIC_COARSE) (vdso or syscall)");
	const struct cost *shim = cost_of(b, "preload clock_gettime(MONOTONIC)");
	const struct cost *raw = cost_of(b, "syscall clock_gettime(MONOTONIC)");
	const struct cost *libc = cost_of(b, "libc clock_gettime(MONOTONIC) (vdso or syscall)");
	const struct cost *mono = cost_of(b, "uclock_gettime(MONOTONIC)");

	if (libc && raw && mono)
		printf("uclock_gettime(MONOTONIC) is %.2fx the C library's clock_gettime and "
		       "%.1fx faster than a system call\n", mono->median / libc->median,
		       raw->median / mono->median);
	if (isfinite(cost_ratio(coarse)) && libc_coarse)
		printf("uclock_gettime(MONOTONIC_COARSE) is %.2fx the vDSO's function and "
		       "%.2fx the C library's clock_gettime\n", cost_ratio(coarse),
		       coarse->median / libc_coarse->median);
	if (shim && raw)
		printf("through libuclock-preload.so, clock_gettime(MONOTONIC) is %.2fx "
		       "the vDSO and %.1fx faster than a system call\n",
		       cost_ratio(shim), raw->median / shim->median);
}

/* The comparisons people ask for, when both sides could run. */
static void print_verdicts(const struct costs *b)
{
	double u_mono = cost_ratio(cost_of(b, "uclock_gettime(MONOTONIC)"));
	double u_ns = cost_ratio(cost_of(b, "uclock_mono_ns()"));
	double u_real = cost_ratio(cost_of(b, "uclock_gettime(REALTIME)"));
	double u_real_ns = cost_ratio(cost_of(b, "uclock_real_ns()"));
	double sys = cost_ratio(cost_of(b, "syscall clock_gettime(MONOTONIC)"));
	double vsys = cost_ratio(cost_of(b, "vsyscall page gettimeofday"));
	const struct cost *rdtsc = cost_of(b, METHOD_BARE_COUNTER);
	const struct cost *fast = cost_of(b, "uclock_mono_ns()");

	printf("\n");
	if (!cost_of(b, "vdso clock_gettime(MONOTONIC)")) {
		printf("no vDSO clock_gettime here: nothing to compare with\n");
		return;
	}
	if (isfinite(u_mono) && isfinite(u_ns))
		printf("uclock_gettime(MONOTONIC) is %.2fx the vDSO; uclock_mono_ns() "
		       "%.2fx\n", u_mono, u_ns);
	if (isfinite(u_real) && isfinite(u_real_ns))
		printf("uclock_gettime(REALTIME) is %.2fx the vDSO; uclock_real_ns() "
		       "%.2fx\n", u_real, u_real_ns);
	if (rdtsc && fast)
		printf("uclock_mono_ns() is %.2fx " METHOD_BARE_COUNTER_TEXT "\n",
		       fast->median / rdtsc->median);
	const struct cost *real_ns = cost_of(b, "uclock_real_ns()");
	const struct cost *bounds = cost_of(b, "uclock_now_bounds()");

	if (real_ns && bounds)
		printf("uclock_now_bounds() costs uclock_real_ns() + %.2f ns (%.2fx the vDSO's "
		       "REALTIME)\n", bounds->median - real_ns->median, cost_ratio(bounds));
	if (isfinite(sys))
		printf("a system call costs %.1fx the vDSO\n", sys);
	if (isfinite(vsys))
		printf("the vsyscall page's gettimeofday costs %.1fx the vDSO's\n",
		       vsys);
	print_library_comparisons(b);
}

/* ---- Scaling with threads. ---- */

struct worker {
	pthread_t thread;
	const struct method *m;
	long batch;
	int cpu;                  /* -1: not pinned */
	int64_t span_ns;
	const int *go;            /* set once every thread exists */
	long long calls;
	int64_t elapsed_ns;
};

static void *work(void *arg)
{
	struct worker *w = arg;
	int64_t start, now;

	if (w->cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(w->cpu, &set);
		pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	}
	while (!__atomic_load_n(w->go, __ATOMIC_ACQUIRE))
		sched_yield();
	start = clock_ns(CLOCK_MONOTONIC);
	do {
		w->m->run(w->batch);
		w->calls += w->batch;
		now = clock_ns(CLOCK_MONOTONIC);
	} while (now - start < w->span_ns);
	w->elapsed_ns = now - start;
	return NULL;
}

/* The CPUs this process may run on; thread i goes to cpus[i % n]. */
struct cpus {
	int n;
	int id[CPU_SETSIZE];
};

static void allowed_cpus(struct cpus *c)
{
	cpu_set_t set;

	c->n = 0;
	if (sched_getaffinity(0, sizeof(set), &set))
		return;
	for (int i = 0; i < CPU_SETSIZE; i++)
		if (CPU_ISSET(i, &set))
			c->id[c->n++] = i;
}

/* Throughput of k threads running the method at once; -1 if they could
 * not all be started. */
static int run_step(const struct cost *r, int k, int64_t span_ns,
		    const struct cpus *cpus, struct scaling *s)
{
	struct worker *w = calloc((size_t)k, sizeof(*w));
	int go = 0, started = 0;
	double rate = 0;

	if (!w)
		return -1;
	for (; started < k; started++) {
		w[started] = (struct worker){
			.m = r->m, .batch = r->batch, .span_ns = span_ns, .go = &go,
			.cpu = cpus->n ? cpus->id[started % cpus->n] : -1,
		};
		if (pthread_create(&w[started].thread, NULL, work, &w[started]))
			break;
	}
	/* All start at once: the first ones created must not run alone. */
	__atomic_store_n(&go, 1, __ATOMIC_RELEASE);
	for (int i = 0; i < started; i++) {
		pthread_join(w[i].thread, NULL);
		rate += (double)w[i].calls * 1e9 / (double)w[i].elapsed_ns;
	}
	free(w);
	*s = (struct scaling){.m = r->m, .threads = k, .calls_per_s = rate,
			      .ns_per_call = k * 1e9 / rate};
	return started == k ? 0 : -1;
}

/* 1, 2, 4, ... and n itself: the steps of the scaling. */
static int next_threads(int k, int n)
{
	return 2 * k < n ? 2 * k : n;
}

static int thread_steps(int n)
{
	int steps = 1;

	for (int k = 1; k < n; k = next_threads(k, n))
		steps++;
	return steps;
}

/* How long each step of the scaling runs. */
static int64_t step_ns(const struct options *o)
{
	int64_t span = (int64_t)(o->duration * 1e9 /
				 (SCALED * thread_steps((int)o->threads)));

	return span < STEP_MIN_NS ? STEP_MIN_NS : span;
}

/* The share of the whole run the interleaved rounds take. */
static double rounds_share(const struct options *o)
{
	double scaling_s;

	if (!o->scaling)
		return 1.0;
	scaling_s = (double)(SCALED * thread_steps((int)o->threads)) *
		    (double)step_ns(o) / 1e9;
	return o->duration / (o->duration + scaling_s);
}

static void step_progress(const struct options *o, int step, const struct cost *r,
			  int k)
{
	double share = rounds_share(o);
	int steps = SCALED * thread_steps((int)o->threads);
	char what[64];

	snprintf(what, sizeof(what), "%s on %d thread%s", r->m->name, k,
		 k == 1 ? "" : "s");
	progress(share + (1 - share) * step / steps, what);
}

/* Fills s[] (room for SCALED * thread_steps(n)); the count, or -1. */
static int scale(const struct costs *b, const struct options *o, struct scaling *s)
{
	struct cpus cpus;
	int n = (int)o->threads, count = 0, step = 0;

	allowed_cpus(&cpus);
	for (int i = 0; i < SCALED; i++) {
		const struct cost *r = cost_of(b, scaled_methods[i]);
		int first = count;

		if (!r)
			continue;
		for (int k = 1;; k = next_threads(k, n)) {
			step_progress(o, step++, r, k);
			if (run_step(r, k, step_ns(o), &cpus, &s[count]))
				return -1;
			s[count].efficiency = s[count].calls_per_s /
					      (k * s[first].calls_per_s);
			count++;
			if (k == n)
				break;
		}
	}
	progress(1.0, "");
	return count;
}

static void print_scaling(const struct scaling *s, int count, long threads)
{
	struct cpus cpus;

	allowed_cpus(&cpus);
	printf("\nthroughput on 1..%ld pinned threads", threads);
	if (cpus.n && threads > cpus.n)
		printf(" (%d CPUs: some threads share one)", cpus.n);
	printf("\n%-34s  %7s  %12s  %10s  %10s\n", "method", "threads", "calls/s",
	       "ns/call", "efficiency");
	for (int i = 0; i < count; i++)
		printf("%-34s  %7d  %10.2f M  %7.2f ns  %9.0f%%\n",
		       i && s[i].m == s[i - 1].m ? "" : s[i].m->name, s[i].threads,
		       s[i].calls_per_s / 1e6, s[i].ns_per_call, 100 * s[i].efficiency);
	printf("(ns/call: per thread; efficiency: throughput over k times one "
	       "thread's)\n");
}

/* ---- Output. ---- */

/* What the timekeeper cost this process over the run: its updates. */
static void print_updates(const struct uclock_stat *before, const struct uclock_stat *after,
			  double seconds)
{
	uint64_t n = after->updates - before->updates;

	if (!n || after->mode == UCLOCK_MODE_SHARED)
		return;
	double us = (double)(after->update_time_ns - before->update_time_ns) / 1e3;
	printf("updates: %llu in %.2f s (every %.2f ms), %.2f us each, %.3f %% of the run; "
	       "%.1f kernel readings each\n", (unsigned long long)n, seconds,
	       seconds * 1e3 / (double)n, us / (double)n, us / 1e4 / seconds,
	       (double)(after->kernel_readings - before->kernel_readings) / (double)n);
}

static void print_human(const struct costs *b, const struct uclock_stat *st,
			const struct uclock_stat *after)
{
	printf("uclock bench: %d rounds in %.2f s\n", b->rounds, b->seconds);
	printf("uclock: source %s, mode %s (%s)\n\n", st->source_name,
	       st->mode_name, st->reason);
	print_table(b);
	print_verdicts(b);
	print_updates(st, after, b->seconds);
}

/* Every key in every row; what could not be measured is null. */
static void json_method(struct json *j, const struct cost *r)
{
	json_object(j, NULL);
	json_string(j, "name", r->m->name);
	json_string(j, "kind", method_kind_name(r->m->kind));
	json_string(j, "reference", r->m->reference);
	json_bool(j, "available", !r->why);
	json_string(j, "reason", r->why);
	if (r->why) {
		json_null(j, "median_ns");
		json_null(j, "p99_ns");
		json_null(j, "ratio_to_vdso");
		json_null(j, "calls_per_batch");
	} else {
		json_double(j, "median_ns", r->median);
		json_double(j, "p99_ns", r->p99);
		json_double(j, "ratio_to_vdso", cost_ratio(r));
		json_int(j, "calls_per_batch", r->batch);
	}
	json_end(j);
}

/* Null without --threads: not measured. */
static void json_scaling(struct json *j, const struct scaling *s, int count)
{
	if (!s) {
		json_null(j, "scaling");
		return;
	}
	json_array(j, "scaling");
	for (int i = 0; i < count; i++) {
		json_object(j, NULL);
		json_string(j, "name", s[i].m->name);
		json_int(j, "threads", s[i].threads);
		json_double(j, "calls_per_s", s[i].calls_per_s);
		json_double(j, "ns_per_call", s[i].ns_per_call);
		json_double(j, "efficiency", s[i].efficiency);
		json_end(j);
	}
	json_end(j);
}

static int print_json(const struct costs *b, const struct uclock_stat *st,
		      const struct scaling *s, int count)
{
	struct json *j = json_open(stdout);

	if (!j)
		return -1;
	json_double(j, "duration_s", b->seconds);
	json_int(j, "rounds", b->rounds);
	json_uclock(j, st);
	json_array(j, "methods");
	for (int i = 0; i < method_count; i++)
		json_method(j, &b->cost[i]);
	json_end(j);
	json_scaling(j, s, count);
	json_close(j);
	return 0;
}

static int fail(const char *what)
{
	fprintf(stderr, "uclock bench: %s\n", what);
	return 1;
}

/* After the table: the scaling, printed or handed back for the JSON. */
static int measure_scaling(const struct costs *b, const struct options *o,
			   struct scaling **s, int *count)
{
	*s = calloc((size_t)(SCALED * thread_steps((int)o->threads)), sizeof(**s));
	if (!*s)
		return fail("out of memory");
	*count = scale(b, o, *s);
	if (*count < 0)
		return fail("could not start the threads");
	if (!o->json)
		print_scaling(*s, *count, o->threads);
	return 0;
}

int cmd_bench(int argc, char **argv)
{
	struct uclock_stat st = {.size = sizeof(st)};
	struct options o;
	struct costs b;
	struct scaling *s = NULL;
	int count = 0, status;

	status = parse_options(argc, argv, &o);
	if (status || o.help) {
		if (o.help)
			usage(stdout);
		return status;
	}
	warm_up();
	uclock_stat(&st);
	if (costs_measure(&b, NULL, o.duration, rounds_share(&o))) {
		progress(1.0, "");
		costs_free(&b);
		return fail("out of memory");
	}
	if (!o.scaling || !o.json)
		progress(1.0, "");
	struct uclock_stat after = {.size = sizeof(after)};
	uclock_stat(&after);
	if (!o.json) {
		print_human(&b, &st, &after);
		fflush(stdout);
	}
	status = o.scaling ? measure_scaling(&b, &o, &s, &count) : 0;
	if (!status && o.json && print_json(&b, &st, s, count))
		status = fail("out of memory");
	free(s);
	costs_free(&b);
	return status;
}
