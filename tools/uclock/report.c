/*
 * uclock with no command: the report a newcomer wants.  What this machine
 * is, which path each clock call takes here, what each way of reading the
 * time costs, and what to do about it.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
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

struct cost {
	const char *method;
	double ns;       /* median per call, 0 if not available */
};

/* Median per-call cost over interleaved rounds, a quick look. */
static void measure(struct cost *costs, int n, double seconds)
{
	enum { ROUNDS = 15 };
	double samples[16][ROUNDS];
	const struct method *m[16];
	long batch[16];

	for (int i = 0; i < n; i++) {
		const char *why;

		m[i] = method_find(costs[i].method);
		costs[i].ns = 0;
		if (!m[i] || !method_available(m[i], &why)) {
			m[i] = NULL;
			continue;
		}
		int64_t t0 = clock_ns(CLOCK_MONOTONIC);
		m[i]->run(100);
		double per = (double)(clock_ns(CLOCK_MONOTONIC) - t0) / 100;
		batch[i] = (long)(seconds * 1e9 / ROUNDS / n / (per > 1 ? per : 1));
		if (batch[i] < 10)
			batch[i] = 10;
	}
	for (int r = 0; r < ROUNDS; r++)
		for (int i = 0; i < n; i++) {
			if (!m[i])
				continue;
			int64_t t0 = clock_ns(CLOCK_MONOTONIC);
			m[i]->run(batch[i]);
			samples[i][r] = (double)(clock_ns(CLOCK_MONOTONIC) - t0) / batch[i];
		}
	for (int i = 0; i < n; i++) {
		if (!m[i])
			continue;
		qsort(samples[i], ROUNDS, sizeof(double), compare_double);
		costs[i].ns = samples[i][ROUNDS / 2];
	}
}

static void platform_summary(const struct platform *p)
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

static void paths(const struct platform *p, const struct uclock_stat *st,
		  double vdso_ns, double syscall_ns)
{
	/* Measured, not assumed: a vDSO that costs like a system call is
	 * making one. */
	int vdso_user = p->vdso_mapped && vdso_ns > 0 && vdso_ns < syscall_ns / 2;

	printf("\nWhich path each call takes here\n");
	printf("  clock_gettime, gettimeofday   %s\n",
	       vdso_user ? "vDSO, in user space" : "a system call every time");
	printf("  *_COARSE clocks, time()        %s\n",
	       p->vdso_mapped ? "vDSO, in user space (the last tick)" : "a system call");
	if (st->source == UCLOCK_SOURCE_COUNTER)
		printf("  uclock                        user space, from %s\n", the_counter(st));
	else
		printf("  uclock                        %s\n", vdso_user
		       ? "passes through to the vDSO" : "passes through to the kernel");
	if (p->clocksource[0])
		printf("  (the kernel's clocksource %s %s be read from user space)\n",
		       p->clocksource, vdso_capable(p->clocksource) ? "can" : "cannot");
}

static void costs_table(const struct cost *c, int n)
{
	printf("\nCost per call (median, quick look; 'uclock bench' for more)\n");
	for (int i = 0; i < n; i++) {
		if (c[i].ns > 0)
			printf("  %-36s %8.1f ns\n", c[i].method, c[i].ns);
		else
			printf("  %-36s %11s\n", c[i].method, "n/a");
	}
}

/* "tsc" among the kernel's clocksources, but not the one in use. */
static int tsc_available(const struct platform *p)
{
	char list[sizeof(p->clocksources) + 2];

	snprintf(list, sizeof(list), " %s ", p->clocksources);
	return strcmp(p->clocksource, "tsc") != 0 && strstr(list, " tsc ") != NULL;
}

static void advice(const struct platform *p, const struct uclock_stat *st,
		   double vdso_ns, double syscall_ns, double uclock_ns, double fast_ns)
{
	int vdso_user = p->vdso_mapped && vdso_ns > 0 && vdso_ns < syscall_ns / 2;
	int tsc = st->source == UCLOCK_SOURCE_TSC;

	printf("\nVerdict\n");
	if (!vdso_user)
		printf("  The clocksource is %s: every clock_gettime and gettimeofday\n"
		       "  enters the kernel (%.0f ns a call).\n",
		       p->clocksource[0] ? p->clocksource : "not readable from user space",
		       syscall_ns);
	else
		printf("  The vDSO serves clock_gettime in user space (%.1f ns a call;\n"
		       "  a system call would cost %.0f ns).\n", vdso_ns, syscall_ns);
	if (tsc)
		printf("  uclock serves time from %s in user space: uclock_gettime\n"
		       "  %.1f ns (%.2fx the %s), uclock_mono_ns() %.1f ns.\n"
		       "  Trusted because: %s.\n", the_counter(st),
		       uclock_ns, uclock_ns / (vdso_user ? vdso_ns : syscall_ns),
		       vdso_user ? "vDSO" : "system call", fast_ns, st->reason);
	else
		printf("  uclock passes through to the kernel: %s.\n", st->reason);

	printf("\nAdvice\n");
	if (!vdso_user && tsc)
		printf("  Use uclock (or 'uclock run' for programs you cannot rebuild): it\n"
		       "  reads %s where the kernel makes a system call.\n", the_counter(st));
	else if (!vdso_user && strstr(st->reason, "run uclockd"))
		printf("  Start uclockd: it checks the TSC across every CPU, and where it is\n"
		       "  in step, uclock serves time from it in every process.\n");
	else if (!vdso_user)
		printf("  No trusted counter: clock calls stay system calls here; call the\n"
		       "  clock less often, or use the *_COARSE clocks where a tick will do.\n");
	else if (tsc)
		printf("  Clock calls are already cheap here; uclock_mono_ns() and\n"
		       "  uclock_real_ns() are the fastest way to read the time.\n");
	else
		printf("  The vDSO is as good as it gets on this machine.\n");
	if (tsc_available(p) && (!vdso_user || tsc))
		printf("  The kernel still lists tsc: switching its clocksource to it makes\n"
		       "  every program's clock calls cheap (as root: echo tsc >\n"
		       "  /sys/devices/system/clocksource/clocksource0/current_clocksource,\n"
		       "  or clocksource=tsc on the kernel's command line).\n");
}

static void offsets(void)
{
	static const struct {
		clockid_t id;
		const char *name;
	} clocks[] = {
		{CLOCK_REALTIME, "CLOCK_REALTIME"},
		{CLOCK_MONOTONIC, "CLOCK_MONOTONIC"},
		{CLOCK_MONOTONIC_RAW, "CLOCK_MONOTONIC_RAW"},
		{CLOCK_BOOTTIME, "CLOCK_BOOTTIME"},
		{CLOCK_TAI, "CLOCK_TAI"},
	};
	enum { READS = 4001 };
	static int64_t err[READS];

	printf("\nuclock against the kernel (uclock - kernel, %d bracketed reads)\n", READS);
	for (size_t c = 0; c < sizeof(clocks) / sizeof(clocks[0]); c++) {
		for (int i = 0; i < READS; i++) {
			struct timespec u;
			int64_t before = clock_ns(clocks[c].id);

			uclock_gettime(clocks[c].id, &u);
			err[i] = timespec_ns(&u) - (before / 2 + clock_ns(clocks[c].id) / 2);
		}
		qsort(err, READS, sizeof(err[0]), compare_i64);
		printf("  %-20s median %+4lld ns, 1st..99th percentile %+lld..%+lld ns\n",
		       clocks[c].name, (long long)err[READS / 2], (long long)err[READS / 100],
		       (long long)err[READS - 1 - READS / 100]);
	}
}

static void status(const struct uclock_stat *st)
{
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
}

/* Reading the clock as a program would, past warm-up (50 ms at least). */
int cmd_report(int argc, char **argv)
{
	struct cost costs[] = {
		{METHOD_BARE_COUNTER, 0},
		{"syscall clock_gettime(MONOTONIC)", 0},
		{"vdso clock_gettime(MONOTONIC)", 0},
		{"libc gettimeofday (vdso or syscall)", 0},
		{"uclock_gettime(MONOTONIC)", 0},
		{"uclock_mono_ns()", 0},
	};
	enum { N = sizeof(costs) / sizeof(costs[0]) };
	struct uclock_stat st = {.size = sizeof(st)};
	struct platform p;

	if (argc > 1)
		return usage_error(NULL, "unknown option '%s'", argv[1]);
	platform_read(&p);
	warm_up();
	uclock_stat(&st);
	measure(costs, N, 0.3);

	platform_summary(&p);
	paths(&p, &st, costs[2].ns, costs[1].ns);
	costs_table(costs, N);
	advice(&p, &st, costs[2].ns, costs[1].ns, costs[4].ns, costs[5].ns);
	status(&st);
	offsets();
	return 0;
}
