/*
 * What the machine says about its clocks: the kernel (sysfs, procfs,
 * adjtimex), the auxiliary vector and the vDSO it points to and, on x86,
 * CPUID (on arm64, the generic timer's registers).  Anything that cannot
 * be read is left empty or zero: a report shows what it could learn (and
 * JSON writes null).
 */
#include <ctype.h>
#include <elf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/timex.h>
#include <sys/utsname.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define X86 1
#else
#define X86 0
#endif

#include "platform.h"

#define CLOCKSOURCE_DIR "/sys/devices/system/clocksource/clocksource0/"

/* Leading and trailing white space off, in place. */
static void trim(char *s)
{
	size_t start = 0, len = strlen(s);

	while (len > 0 && isspace((unsigned char)s[len - 1]))
		s[--len] = '\0';
	while (isspace((unsigned char)s[start]))
		start++;
	memmove(s, s + start, len - start + 1);
}

/* The first line of a small file, trimmed; "" if unreadable. */
static void read_line(const char *path, char *buf, size_t size)
{
	FILE *f = fopen(path, "r");

	buf[0] = '\0';
	if (!f)
		return;
	if (!fgets(buf, (int)size, f))
		buf[0] = '\0';
	fclose(f);
	trim(buf);
}

/*
 * The [vsyscall] line's permissions tell the kernel's vsyscall= mode:
 * emulate maps it readable, xonly execute-only, none not at all.
 */
static const char *vsyscall_mode(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	const char *mode = "none";
	char line[512], perms[8];

	if (!f)
		return mode;
	while (fgets(line, sizeof(line), f)) {
		if (!strstr(line, "[vsyscall]"))
			continue;
		if (sscanf(line, "%*[0-9a-f]-%*[0-9a-f] %7s", perms) == 1)
			mode = perms[0] == 'r' ? "emulate" : "xonly";
		break;
	}
	fclose(f);
	return mode;
}

/* 1 if flag is one of the space-separated words of flags. */
static int cpuinfo_has(const char *flags, const char *flag)
{
	size_t len = strlen(flag);

	for (const char *p = flags; (p = strstr(p, flag)); p += len)
		if ((p == flags || p[-1] == ' ' || p[-1] == '\t') &&
		    (p[len] == '\0' || isspace((unsigned char)p[len])))
			return 1;
	return 0;
}

/* The kernel's view of the TSC: flags it sets after its own checks. */
static void tsc_kernel_flags(struct platform *p)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	char *line = NULL;
	size_t cap = 0;

	if (!f)
		return;
	while (getline(&line, &cap, f) > 0) {
		if (strncmp(line, "flags", 5) != 0 || !strchr(line, ':'))
			continue;
		const char *flags = strchr(line, ':') + 1;

		p->tsc.constant = cpuinfo_has(flags, "constant_tsc");
		p->tsc.nonstop = cpuinfo_has(flags, "nonstop_tsc");
		p->tsc.known_freq = cpuinfo_has(flags, "tsc_known_freq");
		p->tsc.reliable = cpuinfo_has(flags, "tsc_reliable");
		break;
	}
	free(line);
	fclose(f);
}

#if X86
struct regs {
	unsigned a, b, c, d;
};

/* Leaf 'leaf' (subleaf 0) if the CPU has it, else all zero. */
static struct regs cpuid(unsigned leaf)
{
	struct regs r = {0};
	unsigned range = leaf & 0x80000000u;

	/* (unsigned): gcc declares it so, clang as int. */
	if ((unsigned)__get_cpuid_max(range, NULL) >= leaf)
		__cpuid_count(leaf, 0, r.a, r.b, r.c, r.d);
	return r;
}

static void cpu_strings(struct platform *p)
{
	struct regs r = cpuid(0);

	memcpy(p->cpu_vendor, &r.b, 4);
	memcpy(p->cpu_vendor + 4, &r.d, 4);
	memcpy(p->cpu_vendor + 8, &r.c, 4);
	p->cpu_vendor[12] = '\0';
	if ((unsigned)__get_cpuid_max(0x80000000u, NULL) < 0x80000004u)
		return;
	for (unsigned i = 0; i < 3; i++) {
		r = cpuid(0x80000002u + i);
		memcpy(p->cpu_model + 16 * i, &r, 16);
	}
	p->cpu_model[48] = '\0';
	trim(p->cpu_model);
}

static void tsc_cpuid(struct platform *p)
{
	struct regs r;

	p->tsc.present = (cpuid(1).d >> 4) & 1;
	p->tsc.invariant = (cpuid(0x80000007u).d >> 8) & 1;
	p->tsc.rdtscp = (cpuid(0x80000001u).d >> 27) & 1;
	p->tsc.rdpid = (cpuid(7).c >> 22) & 1;
	/* TSC = crystal * EBX / EAX; no crystal frequency, no answer. */
	r = cpuid(0x15);
	if (r.a && r.b && r.c)
		p->tsc_hz_leaf15 = (uint64_t)r.c * r.b / r.a;
	p->cpu_base_hz_leaf16 = (uint64_t)(cpuid(0x16).a & 0xffff) * 1000000;
}

/*
 * The hypervisor leaves are outside both CPUID ranges: ask them only when
 * CPUID 1 says a hypervisor is there, and 0x40000010 (VMware's and KVM's
 * TSC frequency leaf) only when the range the hypervisor reports covers it.
 */
static void hypervisor(struct platform *p)
{
	unsigned a, b, c, d;

	if (!((cpuid(1).c >> 31) & 1))
		return;
	__cpuid(0x40000000u, a, b, c, d);
	memcpy(p->hypervisor, &b, 4);
	memcpy(p->hypervisor + 4, &c, 4);
	memcpy(p->hypervisor + 8, &d, 4);
	p->hypervisor[12] = '\0';
	unsigned max = a;
	/* KVM_FEATURE_CLOCKSOURCE_STABLE_BIT: the host keeps the TSC
	 * consistent across vCPUs. */
	if (!strcmp(p->hypervisor, "KVMKVMKVM") && max >= 0x40000001u) {
		__cpuid(0x40000001u, a, b, c, d);
		p->tsc.kvm_stable = (a >> 24) & 1;
	}
	a = max;
	if (a >= 0x40000010u && a < 0x40010000u) {
		__cpuid(0x40000010u, a, b, c, d);
		p->tsc_hz_hypervisor = (uint64_t)a * 1000;
	}
}

static void cpu_read(struct platform *p)
{
	cpu_strings(p);
	tsc_cpuid(p);
	hypervisor(p);
}
#elif defined(__aarch64__)
#ifndef HWCAP2_ECV
#define HWCAP2_ECV (1UL << 19)
#endif

static void cpu_read(struct platform *p)
{
	uint64_t hz;

	__asm__ volatile("mrs %0, cntfrq_el0" : "=r"(hz));
	p->cntvct.present = 1;
	p->cntvct.frequency_hz = hz & 0xffffffffu;
	p->cntvct.self_synchronized = (getauxval(AT_HWCAP2) & HWCAP2_ECV) != 0;
}
#else
static void cpu_read(struct platform *p)
{
	(void)p;
}
#endif

static void ntp_read(struct platform *p)
{
	struct timex tx = {.modes = 0};
	int state = adjtimex(&tx);

	if (state < 0)
		return;
	p->ntp.ok = 1;
	p->ntp.state = state;
	p->ntp.synchronized = state != TIME_ERROR && !(tx.status & STA_UNSYNC);
	p->ntp.freq_ppm = (double)tx.freq / 65536.0;
	p->ntp.esterror_us = tx.esterror;
	p->ntp.maxerror_us = tx.maxerror;
	p->ntp.tai = tx.tai;
}

const char *ntp_state_name(int state)
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

/* Clocks by name, or by clock id on kernels that print numbers. */
static int64_t *timens_slot(struct platform *p, const char *clock)
{
	if (!strcmp(clock, "monotonic") || !strcmp(clock, "1"))
		return &p->timens.monotonic_ns;
	if (!strcmp(clock, "boottime") || !strcmp(clock, "7"))
		return &p->timens.boottime_ns;
	return NULL;
}

static void timens_read(struct platform *p)
{
	FILE *f = fopen("/proc/self/timens_offsets", "r");
	char line[256], clock[32];
	long long sec, nsec;

	if (!f)
		return;
	p->timens.readable = 1;
	while (fgets(line, sizeof(line), f)) {
		int64_t *slot;

		if (sscanf(line, "%31s %lld %lld", clock, &sec, &nsec) != 3)
			continue;
		slot = timens_slot(p, clock);
		if (slot)
			*slot = (int64_t)sec * 1000000000 + nsec;
	}
	fclose(f);
}

/* A rejected image leaves no symbols: listed as unreadable. */
static void vdso_read(struct platform *p)
{
	const void *image = uclock__vdso_image(&p->vdso_size);

	if (!image) {
		p->vdso_size = 0;
		return;
	}
	if (uclock__elf_open(&p->vdso, image, p->vdso_size) != 0)
		memset(&p->vdso, 0, sizeof(p->vdso));
}

int platform_vdso_symbol(const struct platform *p, size_t *i,
			 struct uclock_elf_symbol *sym)
{
	while (++*i < p->vdso.nsyms)
		if (uclock__elf_symbol(&p->vdso, *i, sym) == 0 &&
		    sym->shndx != SHN_UNDEF &&
		    (sym->type == STT_FUNC || sym->type == STT_OBJECT))
			return 1;
	return 0;
}

void platform_read(struct platform *p)
{
	struct utsname u;

	memset(p, 0, sizeof(*p));
	if (uname(&u) == 0)
		snprintf(p->kernel_release, sizeof(p->kernel_release), "%s", u.release);
	read_line(CLOCKSOURCE_DIR "current_clocksource", p->clocksource,
		  sizeof(p->clocksource));
	read_line(CLOCKSOURCE_DIR "available_clocksource", p->clocksources,
		  sizeof(p->clocksources));
	p->vsyscall = vsyscall_mode();
	p->vdso_mapped = getauxval(AT_SYSINFO_EHDR) != 0;
	vdso_read(p);
	cpu_read(p);
	tsc_kernel_flags(p);
	ntp_read(p);
	timens_read(p);
}
