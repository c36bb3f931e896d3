/*
 * The x86 time-stamp counter: what the CPU says about it (CPUID, through
 * the C library's copy where it keeps one), whether this process may read
 * it, and which of its two ordered reads is cheaper (the reads themselves
 * are in counter.h).
 */
#include <string.h>

#include "internal.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <sys/prctl.h>

/*
 * glibc reads CPUID leaves 1, 0x80000001 and 0x80000007 at start-up (for
 * its own choice of functions) and keeps the registers as the CPU gave
 * them: asking it costs no CPUID, which traps to the hypervisor in a
 * virtual machine, microseconds each.
 */
#if defined(__GLIBC_PREREQ) && defined(__has_include)
#if __GLIBC_PREREQ(2, 33) && __has_include(<sys/platform/x86.h>)
#define LIBC_CPUID 1
#endif
#endif

#ifdef LIBC_CPUID
#include <sys/platform/x86.h>

static int libc_leaf(unsigned leaf, unsigned r[4])
{
	int index = leaf == 1 ? CPUID_INDEX_1
		    : leaf == 0x80000001 ? CPUID_INDEX_80000001
		    : leaf == 0x80000007 ? CPUID_INDEX_80000007 : -1;

	if (index < 0)
		return 0;
	memcpy(r, __x86_get_cpuid_feature_leaf((unsigned)index)->cpuid_array,
	       4 * sizeof(r[0]));
	return 1;
}
#else
static int libc_leaf(unsigned leaf, unsigned r[4])
{
	(void)leaf;
	(void)r;
	return 0;
}
#endif

/*
 * A CPUID leaf's registers (eax, ebx, ecx, edx), all 0 where the CPU has
 * no such leaf.  glibc's copy where it holds one; where it holds zeros (it
 * reads some leaves on some vendors only, and a feature absent is zeros
 * too), the CPU itself: a bit is never taken as set that CPUID does not
 * set.
 */
static void leaf_registers(unsigned leaf, unsigned r[4])
{
	if (libc_leaf(leaf, r) && (r[0] | r[1] | r[2] | r[3]))
		return;
	memset(r, 0, 4 * sizeof(r[0]));
	if ((unsigned)__get_cpuid_max(leaf & 0x80000000, NULL) >= leaf)
		__cpuid(leaf, r[0], r[1], r[2], r[3]);
}

/* Which hypervisor (its CPUID signature), and what it says of the TSC. */
static void hypervisor(struct uclock_tsc_features *f)
{
	static const struct {
		const char *sig;
		enum uclock_hypervisor hv;
	} known[] = {
		{"KVMKVMKVM\0\0\0", UCLOCK_HV_KVM}, {"XenVMMXenVMM", UCLOCK_HV_XEN},
		{"Microsoft Hv", UCLOCK_HV_HYPERV}, {"VMwareVMware", UCLOCK_HV_VMWARE},
	};
	unsigned max, b, c, d, a;
	char sig[12];

	f->hypervisor_vendor = UCLOCK_HV_OTHER;
	__cpuid(0x40000000, max, b, c, d);
	memcpy(sig, &b, 4);
	memcpy(sig + 4, &c, 4);
	memcpy(sig + 8, &d, 4);
	for (unsigned i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (memcmp(sig, known[i].sig, sizeof(sig)) == 0)
			f->hypervisor_vendor = known[i].hv;
	/* KVM_FEATURE_CLOCKSOURCE_STABLE_BIT: the host keeps the guest's TSC
	 * (and kvm-clock) consistent across vCPUs. */
	if (f->hypervisor_vendor == UCLOCK_HV_KVM && max >= 0x40000001) {
		__cpuid(0x40000001, a, b, c, d);
		f->kvm_stable = (a >> 24) & 1;
	}
}

/*
 * CPUID traps to the hypervisor in a virtual machine (microseconds each,
 * on every call): the leaves are read once, and the hypervisor's only
 * when asked for (the trust policy needs them where the kernel's
 * clocksource is not tsc).
 */
static struct uclock_tsc_features known;
static int known_state; /* 0 not read, 1 read, 2 with the hypervisor's */

void uclock__tsc_features_full(struct uclock_tsc_features *f, int with_hypervisor)
{
	unsigned r[4];
	int state = __atomic_load_n(&known_state, __ATOMIC_ACQUIRE);

	if (state >= (with_hypervisor ? 2 : 1)) {
		*f = known;
		return;
	}
	memset(f, 0, sizeof(*f));
	leaf_registers(1, r);
	f->present = ((r[3] >> 4) & 1) && uclock__tsc_enabled();
	f->hypervisor = (r[2] >> 31) & 1;
	leaf_registers(0x80000001, r);
	f->rdtscp = (r[3] >> 27) & 1;
	leaf_registers(0x80000007, r);
	f->invariant = (r[3] >> 8) & 1;
	if (with_hypervisor && f->hypervisor)
		hypervisor(f);
	/* Racing first callers compute the same: last store wins. */
	known = *f;
	__atomic_store_n(&known_state, with_hypervisor ? 2 : 1, __ATOMIC_RELEASE);
}

void uclock__tsc_features(struct uclock_tsc_features *f)
{
	uclock__tsc_features_full(f, 1);
}

/* rdtsc allowed in this process (PR_SET_TSC may forbid it: SIGSEGV). */
int uclock__tsc_enabled(void)
{
	int mode = 0;

	return UCLOCK__COUNTER == UCLOCK_COUNTER_TSC && !(prctl(PR_GET_TSC, &mode, 0, 0, 0) == 0 &&
				     mode == PR_TSC_SIGSEGV);
}

static volatile uint64_t sink;

static void call_rdtscp(void) { sink += uclock__counter_self_ordered(); }
static void call_lfence(void) { sink += uclock__counter_fenced(); }

int uclock__tsc_prefer_rdtscp(void)
{
	struct uclock_tsc_features f;

	uclock__tsc_features_full(&f, 0);
	/* They cost about the same on most CPUs: keep to rdtscp (as the
	 * kernel's vDSO does) unless lfence+rdtsc is clearly cheaper, so the
	 * choice does not flip between runs on measurement noise. */
	return f.rdtscp && uclock__counter_cost(call_rdtscp, 4, 16) * 10 <=
				   uclock__counter_cost(call_lfence, 4, 16) * 11;
}

#else

void uclock__tsc_features(struct uclock_tsc_features *f)
{
	memset(f, 0, sizeof(*f));
}

int uclock__tsc_prefer_rdtscp(void)
{
	return 0;
}

void uclock__tsc_features_full(struct uclock_tsc_features *f, int with_hypervisor)
{
	(void)with_hypervisor;
	memset(f, 0, sizeof(*f));
}

int uclock__tsc_enabled(void)
{
	return 0;
}

#endif
