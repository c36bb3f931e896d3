/*
 * The x86 time-stamp counter: what the CPU says about it, the two ordered
 * ways to read it, and whether reading it is cheaper than asking the
 * kernel (an emulated rdtsc traps to the hypervisor on every read).
 */
#include <string.h>

#include "internal.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <sys/prctl.h>

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
	unsigned a, b, c, d, max_ext;
	int state = __atomic_load_n(&known_state, __ATOMIC_ACQUIRE);

	if (state >= (with_hypervisor ? 2 : 1)) {
		*f = known;
		return;
	}
	memset(f, 0, sizeof(*f));
	if (!__get_cpuid(1, &a, &b, &c, &d))
		return;
	f->present = (d >> 4) & 1;
	f->hypervisor = (c >> 31) & 1;
	if (!uclock__tsc_enabled())
		f->present = 0;
	max_ext = __get_cpuid_max(0x80000000, NULL);
	if (max_ext >= 0x80000001 && __get_cpuid(0x80000001, &a, &b, &c, &d))
		f->rdtscp = (d >> 27) & 1;
	if (max_ext >= 0x80000007 && __get_cpuid(0x80000007, &a, &b, &c, &d))
		f->invariant = (d >> 8) & 1;
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

	return UCLOCK__HAVE_TSC && !(prctl(PR_GET_TSC, &mode, 0, 0, 0) == 0 &&
				     mode == PR_TSC_SIGSEGV);
}

uint64_t uclock__tsc_rdtscp(void *ctx)
{
	(void)ctx;
	return uclock__rdtscp();
}

uint64_t uclock__tsc_lfence(void *ctx)
{
	(void)ctx;
	return uclock__rdtsc_lfence();
}

#define ROUNDS 7
#define CALLS 32

/* Fewest counter ticks seen for 'calls' calls of fn, over 'rounds'. */
static uint64_t cost(void (*fn)(void), int rounds, int calls)
{
	uint64_t best = UINT64_MAX;

	for (int r = 0; r < rounds; r++) {
		uint64_t t0 = uclock__tsc_lfence(NULL);
		for (int i = 0; i < calls; i++)
			fn();
		uint64_t t1 = uclock__tsc_lfence(NULL);
		if (t1 - t0 < best)
			best = t1 - t0;
	}
	return best;
}

static volatile uint64_t sink;

static void call_rdtscp(void) { sink += uclock__tsc_rdtscp(NULL); }
static void call_lfence(void) { sink += uclock__tsc_lfence(NULL); }
static void call_rdtsc(void) { sink += __builtin_ia32_rdtsc(); }
static void call_kernel(void)
{
	struct timespec ts;

	uclock__kernel_gettime(CLOCK_MONOTONIC, &ts);
	sink += (uint64_t)ts.tv_nsec;
}

int uclock__tsc_prefer_rdtscp(void)
{
	struct uclock_tsc_features f;

	uclock__tsc_features_full(&f, 0);
	/* They cost about the same on most CPUs: keep to rdtscp (as the
	 * kernel's vDSO does) unless lfence+rdtsc is clearly cheaper, so the
	 * choice does not flip between runs on measurement noise. */
	return f.rdtscp && cost(call_rdtscp, 4, 16) * 10 <= cost(call_lfence, 4, 16) * 11;
}

/* A few kernel readings only: each may be a system call (no vDSO), and a
 * process under strace pays tens of microseconds for one. */
int uclock__tsc_slower_than_kernel(void)
{
	return cost(call_rdtsc, ROUNDS, CALLS) / CALLS >= cost(call_kernel, 3, 2) / 2;
}

#else

void uclock__tsc_features(struct uclock_tsc_features *f)
{
	memset(f, 0, sizeof(*f));
}

uint64_t uclock__tsc_rdtscp(void *ctx)
{
	(void)ctx;
	return 0;
}

uint64_t uclock__tsc_lfence(void *ctx)
{
	(void)ctx;
	return 0;
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

int uclock__tsc_slower_than_kernel(void)
{
	return 1;
}

#endif
