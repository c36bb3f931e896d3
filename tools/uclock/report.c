/*
 * uclock with no command: the report a newcomer wants.  What this machine
 * is, which path each clock call takes here, what each way of reading the
 * time costs, and what to do about it; as text or, with --json, one JSON
 * object.  Everything is measured first, then written one way or the other.
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "measure.h"
#include "methods.h"
#include "platform.h"
#include "uclock.h"

/* Clocksources the vDSO can read in user space (arch/x86, arm64). */
static int vdso_capable(const char *clocksource)
{
	static const char *const capable[] = {"tsc", "kvm-clock", "hyperv_clocksource_tsc_page",
					      "arch_sys_counter", NULL};

	for (int i = 0; capable[i]; i++)
		if (!strcmp(clocksource, capable[i]))
			return 1;
	return 0;
}

/* The counter as the report names it: the TSC, or arm64's. */
static const char *the_counter(const struct uclock_stat *st)
{
	return st->counter_name && !strcmp(st->counter_name, "cntvct")
		       ? "the counter (CNTVCT_EL0)" : "the TSC";
}

struct median {
	const char *method;
	double ns;       /* median per call, 0 if not available */
};

/* The methods the report compares; the indexes name them below. */
enum { RDTSC, SYSCALL, VDSO, LIBC_GTOD, UCLOCK, UCLOCK_FAST, COSTS };
static const char *const compared[COSTS + 1] = {
	METHOD_BARE_COUNTER,
	"syscall clock_gettime(MONOTONIC)",
	"vdso clock_gettime(MONOTONIC)",
	"libc gettimeofday (vdso or syscall)",
	"uclock_gettime(MONOTONIC)",
	"uclock_mono_ns()",
	NULL,
};

/* uclock's clocks against the kernel's: uclock - kernel, bracketed. */
enum { OFFSET_READS = 4001, OFFSET_CLOCKS = 5 };
static const struct {
	clockid_t id;
	const char *name;
} offset_clocks[OFFSET_CLOCKS] = {
	{CLOCK_REALTIME, "CLOCK_REALTIME"},
	{CLOCK_MONOTONIC, "CLOCK_MONOTONIC"},
	{CLOCK_MONOTONIC_RAW, "CLOCK_MONOTONIC_RAW"},
	{CLOCK_BOOTTIME, "CLOCK_BOOTTIME"},
	{CLOCK_TAI, "CLOCK_TAI"},
};

struct offset {
	int64_t median_ns, p1_ns, p99_ns;
};

/* Paragraphs of the verdict or the advice: '\n' where the text breaks
 * its lines; JSON has each paragraph as one string. */
struct prose {
	int n;
	char text[4][512];
};

struct report {
	struct platform p;
	struct uclock_stat st;
	struct median costs[COSTS];
	int vdso_user;        /* measured: the vDSO answers in user space */
	struct prose verdict, advice;
	struct offset offsets[OFFSET_CLOCKS];
	struct uclock_bounds bounds;
};

/* Median per-call cost, a quick look with the engine uclock bench uses.
 * -1 when out of memory. */
static int measure(struct median *out, double seconds)
{
	struct costs c;
	int rc = costs_measure(&c, compared, seconds, 0);

	for (int i = 0; i < COSTS; i++) {
		const struct cost *x = rc ? NULL : cost_of(&c, compared[i]);

		out[i].method = compared[i];
		out[i].ns = x ? x->median : 0;
	}
	costs_free(&c);
	return rc;
}

/* A vDSO that costs like a system call is making one: measured, not
 * assumed. */
static int vdso_in_user_space(const struct report *r)
{
	double vdso_ns = r->costs[VDSO].ns, syscall_ns = r->costs[SYSCALL].ns;

	return r->p.vdso_mapped && vdso_ns > 0 && vdso_ns < syscall_ns / 2;
}

/* "tsc" among the kernel's clocksources, but not the one in use. */
static int tsc_available(const struct platform *p)
{
	char list[sizeof(p->clocksources) + 2];

	snprintf(list, sizeof(list), " %s ", p->clocksources);
	return strcmp(p->clocksource, "tsc") != 0 && strstr(list, " tsc ") != NULL;
}

static void say(struct prose *prose, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void say(struct prose *prose, const char *fmt, ...)
{
	va_list ap;

	if (prose->n >= (int)(sizeof(prose->text) / sizeof(prose->text[0])))
		return;
	va_start(ap, fmt);
	vsnprintf(prose->text[prose->n++], sizeof(prose->text[0]), fmt, ap);
	va_end(ap);
}

static void judge(struct report *r)
{
	const struct platform *p = &r->p;
	const struct uclock_stat *st = &r->st;
	double vdso_ns = r->costs[VDSO].ns, syscall_ns = r->costs[SYSCALL].ns;
	double uclock_ns = r->costs[UCLOCK].ns, fast_ns = r->costs[UCLOCK_FAST].ns;
	int vdso_user = r->vdso_user, tsc = st->source == UCLOCK_SOURCE_TSC;

	if (!vdso_user)
		say(&r->verdict, "The clocksource is %s: every clock_gettime and gettimeofday\n"
			"enters the kernel (%.0f ns a call).",
		    p->clocksource[0] ? p->clocksource : "not readable from user space",
		    syscall_ns);
	else
		say(&r->verdict, "The vDSO serves clock_gettime in user space (%.1f ns a call;\n"
			"a system call would cost %.0f ns).", vdso_ns, syscall_ns);
	if (tsc)
		say(&r->verdict, "uclock serves time from %s in user space: uclock_gettime\n"
			"%.1f ns (%.2fx the %s), uclock_mono_ns() %.1f ns.\n"
			"Trusted because: %s.", the_counter(st),
		    uclock_ns, uclock_ns / (vdso_user ? vdso_ns : syscall_ns),
		    vdso_user ? "vDSO" : "system call", fast_ns, st->reason);
	else
		say(&r->verdict, "uclock passes through to the kernel: %s.", st->reason);

	if (!vdso_user && tsc)
		say(&r->advice, "Use uclock (or 'uclock run' for programs you cannot rebuild): it\n"
			"reads %s where the kernel makes a system call.", the_counter(st));
	else if (!vdso_user && strstr(st->reason, "run uclockd"))
		say(&r->advice, "Start uclockd: it checks the TSC across every CPU, and where it is\n"
			"in step, uclock serves time from it in every process.");
	else if (!vdso_user)
		say(&r->advice, "No trusted counter: clock calls stay system calls here; call the\n"
			"clock less often, or use the *_COARSE clocks where a tick will do.");
	else if (tsc)
		say(&r->advice, "Clock calls are already cheap here; uclock_mono_ns() and\n"
			"uclock_real_ns() are the fastest way to read the time.");
	else
		say(&r->advice, "The vDSO is as good as it gets on this machine.");
	if (tsc_available(p) && (!vdso_user || tsc))
		say(&r->advice, "The kernel still lists tsc: switching its clocksource to it makes\n"
			"every program's clock calls cheap (as root: echo tsc >\n"
			"/sys/devices/system/clocksource/clocksource0/current_clocksource,\n"
			"or clocksource=tsc on the kernel's command line).");
}

static void measure_offsets(struct offset *out)
{
	static int64_t err[OFFSET_READS];

	for (int c = 0; c < OFFSET_CLOCKS; c++) {
		uclock_offsets(offset_clocks[c].id, err, OFFSET_READS);
		out[c].median_ns = err[OFFSET_READS / 2];
		out[c].p1_ns = err[OFFSET_READS / 100];
		out[c].p99_ns = err[OFFSET_READS - 1 - OFFSET_READS / 100];
	}
}

/* Reading the clock as a program would, past warm-up (50 ms at least).
 * -1 when out of memory. */
static int gather(struct report *r)
{
	r->st.size = sizeof(r->st);
	platform_read(&r->p);
	warm_up();
	uclock_stat(&r->st);
	if (measure(r->costs, 0.3))
		return -1;
	r->vdso_user = vdso_in_user_space(r);
	judge(r);
	measure_offsets(r->offsets);
	uclock_now_bounds(&r->bounds);
	return 0;
}

/* ---- text ---- */

static void text_platform(const struct platform *p)
{
	printf("This machine\n");
	printf("  kernel        Linux %s\n", p->kernel_release);
	printf("  cpu           %s%s%s%s\n", p->cpu_model[0] ? p->cpu_model : p->cpu_vendor,
	       p->hypervisor[0] ? " (virtual machine: " : "", p->hypervisor,
	       p->hypervisor[0] ? ")" : "");
	printf("  clocksource   %s (available: %s)\n",
	       p->clocksource[0] ? p->clocksource : "unknown",
	       p->clocksources[0] ? p->clocksources : "unknown");
	if (p->cntvct.present)
		printf("  counter       CNTVCT_EL0, %.3f MHz (CNTFRQ_EL0)%s\n",
		       (double)p->cntvct.frequency_hz / 1e6,
		       p->cntvct.self_synchronized ? ", self-synchronized read" : "");
	else
		printf("  TSC           %s%s%s%s%s\n", p->tsc.present ? "present" : "absent",
		       p->tsc.invariant ? ", invariant" : ", not invariant",
		       p->tsc.rdtscp ? ", rdtscp" : "",
		       p->tsc.kvm_stable ? ", KVM stable bit" : "",
		       p->tsc.reliable ? ", the kernel's tsc_reliable" : "");
	printf("  vDSO          %s; vsyscall page: %s\n",
	       p->vdso_mapped ? "mapped" : "not mapped", p->vsyscall);
}

static void text_paths(const struct report *r)
{
	const struct platform *p = &r->p;

	printf("\nWhich path each call takes here\n");
	printf("  clock_gettime, gettimeofday   %s\n",
	       r->vdso_user ? "vDSO, in user space" : "a system call every time");
	printf("  *_COARSE clocks, time()        %s\n",
	       p->vdso_mapped ? "vDSO, in user space (the last tick)" : "a system call");
	if (r->st.source == UCLOCK_SOURCE_COUNTER)
		printf("  uclock                        user space, from %s\n", the_counter(&r->st));
	else
		printf("  uclock                        %s\n", r->vdso_user
		       ? "passes through to the vDSO" : "passes through to the kernel");
	if (p->clocksource[0])
		printf("  (the kernel's clocksource %s %s be read from user space)\n",
		       p->clocksource, vdso_capable(p->clocksource) ? "can" : "cannot");
}

static void text_costs(const struct median *c)
{
	printf("\nCost per call (median, quick look; 'uclock bench' for more)\n");
	for (int i = 0; i < COSTS; i++) {
		if (c[i].ns > 0)
			printf("  %-36s %8.1f ns\n", c[i].method, c[i].ns);
		else
			printf("  %-36s %11s\n", c[i].method, "n/a");
	}
}

/* Each line of each paragraph indented by two spaces. */
static void text_prose(const char *title, const struct prose *prose)
{
	printf("\n%s\n", title);
	for (int i = 0; i < prose->n; i++) {
		const char *line = prose->text[i];

		for (;;) {
			size_t len = strcspn(line, "\n");

			printf("  %.*s\n", (int)len, line);
			if (!line[len])
				break;
			line += len + 1;
		}
	}
}

static void text_status(const struct uclock_stat *st, const struct uclock_bounds *b)
{
	char bound[160];

	printf("\nuclock %s\n", UCLOCK_VERSION_STRING);
	printf("  source        %s (%s)\n", st->source_name, st->reason);
	printf("  mode          %s; kernel reached through %s\n", st->mode_name,
	       st->kernel_path);
	printf("  shared page   %s\n", st->page_reason);
	if (st->counter_hz)
		printf("  counter       %.6f MHz, ordered read %s\n",
		       (double)st->counter_hz / 1e6, st->counter_read);
	if (st->mode == UCLOCK_MODE_COUNTER)
		printf("  steering      %+.3f ppm; the kernel's MONOTONIC runs %+.3f ppm "
		       "off MONOTONIC_RAW\n",
		       st->rate_correction_ppm, st->kernel_rate_ppm);
	bounds_line(bound, sizeof(bound), b);
	printf("  time bound    %s ('uclock bounds')\n", bound);
}

static void text_offsets(const struct offset *o)
{
	printf("\nuclock against the kernel (uclock - kernel, %d bracketed reads)\n",
	       OFFSET_READS);
	for (int c = 0; c < OFFSET_CLOCKS; c++)
		printf("  %-20s median %+4lld ns, 1st..99th percentile %+lld..%+lld ns\n",
		       offset_clocks[c].name, (long long)o[c].median_ns,
		       (long long)o[c].p1_ns, (long long)o[c].p99_ns);
}

static void text(const struct report *r)
{
	text_platform(&r->p);
	text_paths(r);
	text_costs(r->costs);
	text_prose("Verdict", &r->verdict);
	text_prose("Advice", &r->advice);
	text_status(&r->st, &r->bounds);
	text_offsets(r->offsets);
}

/* ---- JSON ---- */

static void json_paths(struct json *j, const struct report *r)
{
	const struct platform *p = &r->p;

	json_object(j, "paths");
	json_string(j, "clock_gettime", r->vdso_user ? "vdso" : "syscall");
	json_string(j, "coarse", p->vdso_mapped ? "vdso" : "syscall");
	json_string(j, "uclock", r->st.source == UCLOCK_SOURCE_COUNTER ? "counter"
				 : r->vdso_user ? "vdso" : "syscall");
	if (p->clocksource[0])
		json_bool(j, "clocksource_user_readable", vdso_capable(p->clocksource));
	else
		json_null(j, "clocksource_user_readable");
	json_end(j);
}

static void json_costs(struct json *j, const struct median *c)
{
	json_array(j, "costs");
	for (int i = 0; i < COSTS; i++) {
		json_object(j, NULL);
		json_string(j, "name", c[i].method);
		if (c[i].ns > 0)
			json_double(j, "median_ns", c[i].ns);
		else
			json_null(j, "median_ns");
		json_end(j);
	}
	json_end(j);
}

/* A paragraph as one line: its line breaks are spaces. */
static void json_prose(struct json *j, const char *key, const struct prose *prose)
{
	json_array(j, key);
	for (int i = 0; i < prose->n; i++) {
		char line[sizeof(prose->text[0])];

		snprintf(line, sizeof(line), "%s", prose->text[i]);
		for (char *c = line; (c = strchr(c, '\n')); c++)
			*c = ' ';
		json_string(j, NULL, line);
	}
	json_end(j);
}

static void json_offsets(struct json *j, const struct offset *o)
{
	json_object(j, "offsets");
	json_int(j, "reads", OFFSET_READS);
	json_array(j, "clocks");
	for (int c = 0; c < OFFSET_CLOCKS; c++) {
		json_object(j, NULL);
		json_string(j, "name", offset_clocks[c].name);
		json_int(j, "median_ns", o[c].median_ns);
		json_int(j, "p1_ns", o[c].p1_ns);
		json_int(j, "p99_ns", o[c].p99_ns);
		json_end(j);
	}
	json_end(j);
	json_end(j);
}

static int json(const struct report *r)
{
	struct json *j = json_open(stdout);

	if (!j)
		return 1;
	json_platform(j, &r->p);
	json_paths(j, r);
	json_costs(j, r->costs);
	json_prose(j, "verdict", &r->verdict);
	json_prose(j, "advice", &r->advice);
	json_uclock(j, &r->st);
	json_bounds(j, "bounds", &r->bounds);
	json_offsets(j, r->offsets);
	json_close(j);
	return 0;
}

/* argv[0] is "uclock": main() sends here what starts with an option. */
int cmd_report(int argc, char **argv)
{
	static const struct option options[] = {
		{"json", no_argument, NULL, 'j'},
		{NULL, 0, NULL, 0},
	};
	static struct report r;
	int as_json = 0, c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":", options, NULL)) != -1) {
		if (c != 'j')
			return option_error(NULL, c, argv);
		as_json = 1;
	}
	if (optind < argc)
		return usage_error(NULL, "unexpected argument '%s'", argv[optind]);
	if (gather(&r)) {
		fprintf(stderr, "uclock: out of memory\n");
		return 1;
	}
	if (as_json)
		return json(&r);
	text(&r);
	return 0;
}
