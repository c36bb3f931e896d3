/*
 * uclock info: the platform as it bears on reading time.  The kernel,
 * its vDSO, the CPU and its TSC, NTP discipline, the time namespace, and
 * what libuclock chose here; as text or one JSON object.
 */
#include <elf.h>

#include "cli.h"
#include "platform.h"
#include "uclock.h"

struct info {
	struct platform p;
	struct uclock_stat st;
};

static void gather(struct info *in)
{
	struct timespec ts;

	platform_read(&in->p);
	/* The library's steady state (its source chosen, calibrated). */
	uclock_gettime(CLOCK_MONOTONIC, &ts);
	warm_up();
	in->st.size = sizeof(in->st);
	uclock_stat(&in->st);
}

static const char *yes_no(int v)
{
	return v ? "yes" : "no";
}

static const char *or_none(const char *s)
{
	return s && *s ? s : "none";
}

/* ---- text ---- */

static void text_kernel(const struct platform *p)
{
	printf("Kernel\n");
	printf("  release       %s\n", or_none(p->kernel_release));
	printf("  clocksource   %s (available: %s)\n", or_none(p->clocksource),
	       or_none(p->clocksources));
	printf("  vsyscall      %s\n", p->vsyscall);
}

static void text_vdso(const struct platform *p)
{
	struct uclock_elf_symbol sym;
	size_t i = 0;

	printf("\nvDSO\n");
	if (!p->vdso_mapped || !p->vdso_size) {
		printf("  mapped        no\n");
		return;
	}
	printf("  mapped        yes, %zu bytes\n", p->vdso_size);
	if (!p->vdso.nsyms)
		printf("  symbols       unreadable\n");
	while (platform_vdso_symbol(p, &i, &sym))
		printf("  %-24s %-6s %s\n", sym.name,
		       sym.type == STT_FUNC ? "FUNC" : "OBJECT", or_none(sym.version));
}

static void text_cpu(const struct platform *p)
{
	printf("\nCPU\n");
	printf("  vendor        %s\n", or_none(p->cpu_vendor));
	printf("  model         %s\n", or_none(p->cpu_model));
	printf("  hypervisor    %s\n", or_none(p->hypervisor));
}

static void text_hz(const char *leaf, const char *what, uint64_t hz)
{
	if (hz)
		printf("  %-13s %.3f MHz (%s)\n", leaf, (double)hz / 1e6, what);
}

static void text_tsc(const struct platform *p)
{
	printf("\nTSC\n");
	printf("  present %s, invariant %s, constant %s, nonstop %s, "
	       "known_freq %s\n", yes_no(p->tsc.present), yes_no(p->tsc.invariant),
	       yes_no(p->tsc.constant), yes_no(p->tsc.nonstop),
	       yes_no(p->tsc.known_freq));
	printf("  rdtscp %s, rdpid %s\n", yes_no(p->tsc.rdtscp), yes_no(p->tsc.rdpid));
	printf("  vouched for across CPUs: kernel tsc_reliable %s, KVM stable bit %s\n",
	       yes_no(p->tsc.reliable), yes_no(p->tsc.kvm_stable));
	if (!p->tsc_hz_leaf15 && !p->cpu_base_hz_leaf16 && !p->tsc_hz_hypervisor)
		printf("  frequency     not enumerated (CPUID 0x15, 0x16, 0x40000010)\n");
	text_hz("CPUID 0x15", "TSC", p->tsc_hz_leaf15);
	text_hz("CPUID 0x16", "CPU base", p->cpu_base_hz_leaf16);
	text_hz("0x40000010", "TSC, from the hypervisor", p->tsc_hz_hypervisor);
}

static void text_cntvct(const struct platform *p)
{
	printf("\nGeneric timer\n");
	printf("  counter       CNTVCT_EL0, %.6f MHz (CNTFRQ_EL0)\n",
	       (double)p->cntvct.frequency_hz / 1e6);
	printf("  self-synchronized read (CNTVCTSS_EL0, FEAT_ECV) %s\n",
	       yes_no(p->cntvct.self_synchronized));
}

static void text_ntp(const struct platform *p)
{
	printf("\nNTP\n");
	if (!p->ntp.ok) {
		printf("  adjtimex      failed\n");
		return;
	}
	printf("  synchronized  %s (%s)\n", yes_no(p->ntp.synchronized),
	       ntp_state_name(p->ntp.state));
	printf("  frequency     %+.3f ppm\n", p->ntp.freq_ppm);
	printf("  error         estimated %ld us, maximum %ld us\n",
	       p->ntp.esterror_us, p->ntp.maxerror_us);
	printf("  TAI offset    %d s\n", p->ntp.tai);
}

static void text_offset(const char *clock, int64_t ns)
{
	uint64_t mag = ns < 0 ? -(uint64_t)ns : (uint64_t)ns;

	printf("  %-13s %c%llu.%09llu s\n", clock, ns < 0 ? '-' : '+',
	       (unsigned long long)(mag / 1000000000),
	       (unsigned long long)(mag % 1000000000));
}

static void text_timens(const struct platform *p)
{
	printf("\nTime namespace offsets\n");
	if (!p->timens.readable) {
		printf("  unreadable (no time namespaces here)\n");
		return;
	}
	text_offset("monotonic", p->timens.monotonic_ns);
	text_offset("boottime", p->timens.boottime_ns);
}

static void text_uclock(const struct uclock_stat *st)
{
	printf("\nuclock (after one read; 'uclock' alone warms up and measures)\n");
	printf("  source        %s (%s)\n", or_none(st->source_name),
	       or_none(st->reason));
	printf("  mode          %s\n", or_none(st->mode_name));
	if (st->counter_hz)
		printf("  counter       %.6f MHz\n", (double)st->counter_hz / 1e6);
	if (st->counter_nominal_hz)
		printf("  cpu counter   %s, stated %.6f MHz\n", or_none(st->counter_name),
		       (double)st->counter_nominal_hz / 1e6);
	else
		printf("  cpu counter   %s\n", or_none(st->counter_name));
	printf("  ordered read  %s\n", or_none(st->counter_read));
	printf("  kernel path   %s\n", or_none(st->kernel_path));
	printf("  shared page   %s\n", or_none(st->page_reason));
}

static void text(const struct info *in)
{
	text_kernel(&in->p);
	text_vdso(&in->p);
	text_cpu(&in->p);
	if (in->p.cntvct.present)
		text_cntvct(&in->p);
	else
		text_tsc(&in->p);
	text_ntp(&in->p);
	text_timens(&in->p);
	text_uclock(&in->st);
}

/* ---- JSON ---- */

static int json(const struct info *in)
{
	struct json *j = json_open(stdout);

	if (!j)
		return 1;
	json_platform(j, &in->p);
	json_uclock(j, &in->st);
	json_close(j);
	return 0;
}

static int usage(void)
{
	printf("usage: uclock info [--json]\n\n"
	       "The platform as it bears on reading time: kernel and clocksource,\n"
	       "vsyscall mode, the vDSO's symbols, CPU and TSC features, NTP state,\n"
	       "time namespace offsets, and the source libuclock chose.\n\n"
	       "  --json      one JSON object\n"
	       "  -h, --help  this help\n\n"
	       "Exit status: 0, or 2 bad usage.\n");
	return 0;
}

int cmd_info(int argc, char **argv)
{
	struct info in = {0};
	int as_json, status = json_only_options("info", argc, argv, usage, &as_json);

	if (status >= 0)
		return status;
	gather(&in);
	if (as_json)
		return json(&in);
	text(&in);
	return 0;
}
