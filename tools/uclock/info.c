/*
 * uclock info: the platform as it bears on reading time.  The kernel,
 * its vDSO, the CPU and its TSC, NTP discipline, the time namespace, and
 * what libuclock chose here; as text or one JSON object.
 */
#include <elf.h>
#include <getopt.h>
#include <string.h>
#include <sys/timex.h>

#include "cli.h"
#include "elf_reader.h"
#include "platform.h"
#include "uclock.h"

enum { OPT_JSON = 256 };  /* long-only: past every short option's char */

struct info {
	struct platform p;
	struct uclock_stat st;
	struct uclock_elf elf;   /* nsyms 0 if no readable vDSO */
	size_t vdso_size;
};

static void gather(struct info *in)
{
	struct timespec ts;
	const void *image;

	platform_read(&in->p);
	/* The library's steady state (its source chosen, calibrated). */
	uclock_gettime(CLOCK_MONOTONIC, &ts);
	warm_up();
	in->st.size = sizeof(in->st);
	uclock_stat(&in->st);
	image = uclock__vdso_image(&in->vdso_size);
	/* A rejected image leaves no symbols: listed as unreadable. */
	if (image)
		(void)uclock__elf_open(&in->elf, image, in->vdso_size);
}

/* What info lists of the vDSO: what it defines for callers. */
static int listed(const struct uclock_elf_symbol *sym)
{
	return sym->shndx != SHN_UNDEF &&
	       (sym->type == STT_FUNC || sym->type == STT_OBJECT);
}

static const char *yes_no(int v)
{
	return v ? "yes" : "no";
}

static const char *or_none(const char *s)
{
	return s && *s ? s : "none";
}

static const char *ntp_state(int state)
{
	static const char *const names[] = {
		[TIME_OK] = "TIME_OK", [TIME_INS] = "TIME_INS",
		[TIME_DEL] = "TIME_DEL", [TIME_OOP] = "TIME_OOP",
		[TIME_WAIT] = "TIME_WAIT", [TIME_ERROR] = "TIME_ERROR",
	};

	if (state < 0 || state >= (int)(sizeof(names) / sizeof(names[0])))
		return "unknown";
	return names[state];
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

static void text_vdso(const struct info *in)
{
	struct uclock_elf_symbol sym;

	printf("\nvDSO\n");
	if (!in->p.vdso_mapped || !in->vdso_size) {
		printf("  mapped        no\n");
		return;
	}
	printf("  mapped        yes, %zu bytes\n", in->vdso_size);
	if (!in->elf.nsyms)
		printf("  symbols       unreadable\n");
	for (size_t i = 1; i < in->elf.nsyms; i++)
		if (uclock__elf_symbol(&in->elf, i, &sym) == 0 && listed(&sym))
			printf("  %-24s %-6s %s\n", sym.name,
			       sym.type == STT_FUNC ? "FUNC" : "OBJECT",
			       or_none(sym.version));
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
	       ntp_state(p->ntp.state));
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
	text_vdso(in);
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

/* Strings the machine did not give are null, not "". */
static void json_text(struct json *j, const char *key, const char *s)
{
	json_string(j, key, s && *s ? s : NULL);
}

static void json_words(struct json *j, const char *key, const char *words)
{
	char copy[256], *save, *w;

	snprintf(copy, sizeof(copy), "%s", words);
	json_array(j, key);
	for (w = strtok_r(copy, " \t", &save); w; w = strtok_r(NULL, " \t", &save))
		json_string(j, NULL, w);
	json_end(j);
}

static void json_kernel(struct json *j, const struct platform *p)
{
	json_object(j, "kernel");
	json_text(j, "release", p->kernel_release);
	json_end(j);
	json_object(j, "clocksource");
	json_text(j, "current", p->clocksource);
	json_words(j, "available", p->clocksources);
	json_end(j);
	json_string(j, "vsyscall", p->vsyscall);
}

static void json_vdso(struct json *j, const struct info *in)
{
	struct uclock_elf_symbol sym;

	json_object(j, "vdso");
	json_bool(j, "mapped", in->p.vdso_mapped && in->vdso_size);
	json_uint(j, "size", in->vdso_size);
	json_array(j, "symbols");
	for (size_t i = 1; i < in->elf.nsyms; i++) {
		if (uclock__elf_symbol(&in->elf, i, &sym) != 0 || !listed(&sym))
			continue;
		json_object(j, NULL);
		json_string(j, "name", sym.name);
		json_string(j, "version", sym.version);
		json_string(j, "type", sym.type == STT_FUNC ? "FUNC" : "OBJECT");
		json_end(j);
	}
	json_end(j);
	json_end(j);
}

static void json_cpu(struct json *j, const struct platform *p)
{
	json_object(j, "cpu");
	json_text(j, "vendor", p->cpu_vendor);
	json_text(j, "model", p->cpu_model);
	json_end(j);
	json_text(j, "hypervisor", p->hypervisor);
	json_object(j, "tsc");
	json_bool(j, "present", p->tsc.present);
	json_bool(j, "invariant", p->tsc.invariant);
	json_bool(j, "constant", p->tsc.constant);
	json_bool(j, "nonstop", p->tsc.nonstop);
	json_bool(j, "known_freq", p->tsc.known_freq);
	json_bool(j, "rdtscp", p->tsc.rdtscp);
	json_bool(j, "rdpid", p->tsc.rdpid);
	json_bool(j, "reliable", p->tsc.reliable);
	json_bool(j, "kvm_stable", p->tsc.kvm_stable);
	json_object(j, "frequency_hz");
	json_uint(j, "leaf15", p->tsc_hz_leaf15);
	json_uint(j, "leaf16", p->cpu_base_hz_leaf16);
	json_uint(j, "hypervisor", p->tsc_hz_hypervisor);
	json_end(j);
	json_end(j);
	json_object(j, "cntvct");
	json_bool(j, "present", p->cntvct.present);
	json_uint(j, "frequency_hz", p->cntvct.frequency_hz);
	json_bool(j, "self_synchronized", p->cntvct.self_synchronized);
	json_end(j);
}

static void json_ntp(struct json *j, const struct platform *p)
{
	json_object(j, "ntp");
	json_bool(j, "synchronized", p->ntp.ok && p->ntp.synchronized);
	if (p->ntp.ok) {
		json_string(j, "state", ntp_state(p->ntp.state));
		json_double(j, "frequency_ppm", p->ntp.freq_ppm);
		json_int(j, "esterror_us", p->ntp.esterror_us);
		json_int(j, "maxerror_us", p->ntp.maxerror_us);
		json_int(j, "tai_offset_s", p->ntp.tai);
	} else {
		json_null(j, "state");
		json_null(j, "frequency_ppm");
		json_null(j, "esterror_us");
		json_null(j, "maxerror_us");
		json_null(j, "tai_offset_s");
	}
	json_end(j);
}

static void json_timens(struct json *j, const struct platform *p)
{
	json_object(j, "timens");
	if (p->timens.readable) {
		json_int(j, "monotonic_ns", p->timens.monotonic_ns);
		json_int(j, "boottime_ns", p->timens.boottime_ns);
	} else {
		json_null(j, "monotonic_ns");
		json_null(j, "boottime_ns");
	}
	json_end(j);
}

static void json_uclock(struct json *j, const struct uclock_stat *st)
{
	json_object(j, "uclock");
	json_string(j, "source", st->source_name);
	json_string(j, "mode", st->mode_name);
	json_string(j, "reason", st->reason);
	json_uint(j, "counter_hz", st->counter_hz);
	json_string(j, "counter", st->counter_name);
	json_uint(j, "counter_nominal_hz", st->counter_nominal_hz);
	json_string(j, "counter_read", st->counter_read);
	json_string(j, "kernel_path", st->kernel_path);
	json_string(j, "page", st->page);
	json_string(j, "page_reason", st->page_reason);
	if (st->writer_pid)
		json_int(j, "writer_pid", st->writer_pid);
	else
		json_null(j, "writer_pid");
	json_end(j);
}

static int json(const struct info *in)
{
	struct json *j = json_open(stdout);

	if (!j)
		return 1;
	json_object(j, NULL);
	json_kernel(j, &in->p);
	json_vdso(j, in);
	json_cpu(j, &in->p);
	json_ntp(j, &in->p);
	json_timens(j, &in->p);
	json_uclock(j, &in->st);
	json_end(j);
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
	static const struct option options[] = {
		{"json", no_argument, NULL, OPT_JSON},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct info in = {0};
	int as_json = 0, c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
		switch (c) {
		case OPT_JSON: as_json = 1; break;
		case 'h': return usage();
		default: return option_error("info", c, argv);
		}
	}
	if (optind < argc)
		return usage_error("info", "unexpected argument '%s'", argv[optind]);
	gather(&in);
	if (as_json)
		return json(&in);
	text(&in);
	return 0;
}
