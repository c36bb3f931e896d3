/* What the machine says about its clocks: gathered once, printed by info
 * and the report. */
#ifndef UCLOCK_PLATFORM_H
#define UCLOCK_PLATFORM_H

#include <stdint.h>

#include "elf_reader.h"

struct platform {
	char kernel_release[128];
	char clocksource[64];          /* current, "" if unreadable */
	char clocksources[256];        /* available, space separated */
	const char *vsyscall;          /* "emulate", "xonly", "none" */
	int vdso_mapped;
	size_t vdso_size;              /* the image's, 0 if not found */
	struct uclock_elf vdso;        /* nsyms 0: no image this reader accepts */
	char cpu_vendor[16];           /* "GenuineIntel", ... */
	char cpu_model[64];            /* brand string */
	struct {
		int present, invariant, constant, nonstop, known_freq, rdtscp, rdpid;
		int reliable;          /* the kernel's tsc_reliable flag */
		int kvm_stable;        /* KVM's clocksource stable bit */
	} tsc;
	struct {
		int present;           /* arm64: the generic timer's CNTVCT_EL0 */
		uint64_t frequency_hz; /* CNTFRQ_EL0, as the firmware set it */
		int self_synchronized; /* HWCAP2_ECV: CNTVCTSS_EL0 readable */
	} cntvct;
	char hypervisor[16];           /* CPUID 0x40000000 signature, "" if none */
	uint64_t tsc_hz_leaf15;        /* CPUID 0x15, 0 if not reported */
	uint64_t cpu_base_hz_leaf16;   /* CPUID 0x16 base frequency */
	uint64_t tsc_hz_hypervisor;    /* CPUID 0x40000010, 0 if none */
	struct {
		int ok;                /* adjtimex answered */
		int synchronized;      /* not TIME_ERROR, STA_UNSYNC clear */
		double freq_ppm;       /* frequency offset */
		long esterror_us, maxerror_us;
		int tai;               /* TAI - UTC, seconds */
		int state;             /* adjtimex return: TIME_OK, ... */
	} ntp;
	struct {
		int readable;          /* /proc/self/timens_offsets */
		int64_t monotonic_ns, boottime_ns;
	} timens;
};

void platform_read(struct platform *p);
/* The vDSO's symbols that info lists, those it defines for callers
 * (functions and objects): the one after *i, 0 past the last. */
int platform_vdso_symbol(const struct platform *p, size_t *i,
			 struct uclock_elf_symbol *sym);
/* adjtimex's return as <sys/timex.h> names it: "TIME_OK", ... */
const char *ntp_state_name(int state);

#endif
