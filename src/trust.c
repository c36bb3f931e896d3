/*
 * The trust policy: whether the CPU's counter may serve time here.
 * Decided at run time, reported with its reason either way, and failing
 * closed: any doubt leaves the clock to the kernel.
 *
 * The decision is a pure function of facts (uclock__trust_decide(), driven
 * case by case by tests/trust_policy.c, for every architecture on any
 * machine); gathering them is the only part that looks at the machine.
 *
 * The x86-64 TSC is trusted when:
 *  - the CPU calls it invariant, reading it is cheaper than asking the
 *    kernel (an emulated rdtsc is not), and uclockd, if it checked, did not
 *    find it out of step across CPUs; and
 *  - the kernel's clocksource is tsc (the kernel checked it at boot and
 *    watches it), or the kernel still lists tsc among its clocksources (its
 *    watchdog drops a TSC it finds unstable) and something vouches for the
 *    TSC across CPUs: uclockd's check of every CPU, KVM's stable bit (the
 *    host keeps the TSC consistent across vCPUs), or the kernel's
 *    tsc_reliable flag (set for VMware, for Hyper-V with its invariant TSC,
 *    and for confidential guests whose TSC the host cannot move).  Xen
 *    says nothing of the kind to a process: there, and on machines whose
 *    kernel chose another clocksource, uclockd must check.
 *
 * The arm64 generic timer's counter (CNTVCT_EL0) is one system counter
 * for every CPU at a constant rate, by the architecture; what can make it
 * unsafe is a timer erratum (Freescale A-008585, Hisilicon 161010101,
 * Cortex-A73 858921, Allwinner A64): the kernel then reads it with a
 * workaround, traps user-space reads of it, and sets its vDSO's clock mode
 * to none, so that the vDSO's clock_gettime makes the system call.  That
 * is the signal: the counter is trusted when the kernel keeps time from it
 * (clocksource arch_sys_counter, where /sys tells) and the kernel's own
 * vDSO answers clock_gettime in user space (a call costs less than half a
 * system call: uclock__vdso_in_user_space()), reading it is cheaper than
 * asking the kernel (not trapped), and uclockd, if it checked, did not
 * find it out of step.  Without a vDSO nothing shows it: the kernel.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#define CLOCKSOURCE_DIR "/sys/devices/system/clocksource/clocksource0/"

static const char *hypervisor_name(enum uclock_hypervisor h)
{
	switch (h) {
	case UCLOCK_HV_KVM: return "KVM";
	case UCLOCK_HV_XEN: return "Xen";
	case UCLOCK_HV_HYPERV: return "Hyper-V";
	case UCLOCK_HV_VMWARE: return "VMware";
	case UCLOCK_HV_OTHER: return "a hypervisor";
	default: return "bare metal";
	}
}

#define SAY(...) (snprintf(why, size, __VA_ARGS__), 0)
#define TRUST(...) (snprintf(why, size, __VA_ARGS__), 1)

static int decide_tsc(const struct uclock_trust_facts *f, char *why, size_t size)
{
	const char *cs = f->clocksource;

	if (!f->invariant)
		return SAY("the CPU does not report an invariant TSC");
	if (f->counter_slower)
		return SAY("rdtsc is slower than the kernel's clock (emulated)");
	if (f->sync == UCLOCK_SYNC_NO)
		return SAY("uclockd found the TSC out of step across CPUs (%d CPUs, up to "
			   "%lld ns apart)", f->sync_cpus, (long long)f->sync_warp_ns);
	if (strcmp(cs, "tsc") == 0)
		return TRUST("invariant TSC, and the kernel's clocksource is tsc");
	if (!f->available_known && f->sync != UCLOCK_SYNC_YES)
		return SAY("the kernel's clocksources cannot be read (no /sys): "
			   "run uclockd to check the TSC across CPUs");
	if (f->available_known && !f->tsc_listed)
		return SAY("the kernel gave up on the TSC (tsc is not among its "
			   "clocksources: marked unstable)");
	if (f->sync == UCLOCK_SYNC_YES)
		return TRUST("invariant TSC, found in step on all %d CPUs by uclockd; the "
			     "kernel's clocksource is %s", f->sync_cpus, cs[0] ? cs : "unknown");
	if (f->hypervisor == UCLOCK_HV_KVM && f->kvm_stable)
		return TRUST("invariant TSC, and KVM keeps it stable across vCPUs (its "
			     "clocksource stable bit); the kernel's clocksource is %s", cs);
	if (f->tsc_reliable)
		return TRUST("invariant TSC, and the kernel marks it reliable (%s); the "
			     "kernel's clocksource is %s", hypervisor_name(f->hypervisor), cs);
	return SAY("the kernel's clocksource is %s, not tsc, and nothing vouches for the "
		   "TSC across CPUs on %s: run uclockd to check it", cs,
		   hypervisor_name(f->hypervisor));
}

/* The vDSO's answer in user space implies the arch timer: it is the one
 * clocksource the arm64 vDSO reads.  So /sys, when it cannot be read, is
 * not needed. */
static int decide_cntvct(const struct uclock_trust_facts *f, char *why, size_t size)
{
	const char *cs = f->clocksource;

	if (f->sync == UCLOCK_SYNC_NO)
		return SAY("uclockd found the counter out of step across CPUs (%d CPUs, up "
			   "to %lld ns apart)", f->sync_cpus, (long long)f->sync_warp_ns);
	if (cs[0] && strcmp(cs, "arch_sys_counter") != 0)
		return SAY("the kernel's clocksource is %s, not arch_sys_counter", cs);
	if (f->vdso_user_space < 0)
		return SAY("no vDSO: nothing shows that the kernel lets user space read "
			   "the counter");
	if (f->vdso_user_space == 0)
		return SAY("the kernel's vDSO makes a system call for clock_gettime (a "
			   "timer erratum workaround: CNTVCT_EL0 is not read in user space)");
	if (f->counter_slower)
		return SAY("reading CNTVCT_EL0 is slower than the kernel's clock (trapped)");
	return TRUST("the kernel's vDSO reads the counter in user space; the kernel's "
		     "clocksource is %s", cs[0] ? cs : "unknown (no /sys)");
}

/* 1 if the counter may serve time, with the reason in why (either way). */
int uclock__trust_decide(const struct uclock_trust_facts *f, char *why, size_t size)
{
	const char *env = f->source_env;

	if (env && strcmp(env, "kernel") == 0)
		return SAY("UCLOCK_SOURCE=kernel");
	if (env && strcmp(env, "tsc") && strcmp(env, "counter") && strcmp(env, "auto"))
		return SAY("UCLOCK_SOURCE=%.64s is not auto, counter (tsc) or kernel", env);
	if (f->bad_interval)
		return SAY("UCLOCK_INTERVAL_US=%.32s is not a whole number of microseconds "
			   "from 10 to 1000000", f->bad_interval);
	if (f->counter == UCLOCK_COUNTER_NONE)
		return SAY("no counter uclock can read on this architecture");
	if (!f->counter_usable)
		return SAY(f->counter == UCLOCK_COUNTER_TSC ? "no usable time-stamp counter"
							    : "no usable counter");
	if (env && strcmp(env, "auto") != 0)
		return TRUST("UCLOCK_SOURCE=%s", env);
	if (f->counter == UCLOCK_COUNTER_CNTVCT)
		return decide_cntvct(f, why, size);
	return decide_tsc(f, why, size);
}

/* A one-line file under /sys, or "" if it cannot be read. */
static int read_line(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, size - 1) : -1;

	if (fd >= 0)
		close(fd);
	buf[n > 0 ? n : 0] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return n > 0 ? 0 : -1;
}

/* A word in a space-separated list. */
static int listed(const char *list, const char *word)
{
	size_t len = strlen(word);

	for (const char *p = list; (p = strstr(p, word)) != NULL; p += len)
		if ((p == list || p[-1] == ' ') && (p[len] == ' ' || p[len] == '\0'))
			return 1;
	return 0;
}

/* The kernel's tsc_reliable flag, from the first CPU's flags. */
static int kernel_tsc_reliable(void)
{
	char buf[8192];
	int fd = open("/proc/cpuinfo", O_RDONLY | O_CLOEXEC);
	ssize_t n = 0, got;

	if (fd < 0)
		return 0;
	while (n < (ssize_t)sizeof(buf) - 1 &&
	       (got = read(fd, buf + n, sizeof(buf) - 1 - (size_t)n)) > 0)
		n += got;
	close(fd);
	buf[n] = '\0';
	char *flags = strstr(buf, "\nflags");
	char *colon = flags ? strchr(flags, ':') : NULL;
	char *end = colon ? strchr(colon, '\n') : NULL;
	if (!end)
		return 0;
	*end = '\0';
	return listed(colon + 1, "tsc_reliable");
}

/* What vouches for a TSC the kernel does not use itself; whether an
 * invariant one is cheaper to read than the kernel's clock. */
static void gather_tsc(struct uclock_trust_facts *f)
{
	struct uclock_tsc_features tsc;
	char available[256];

	uclock__tsc_features_full(&tsc, 0);
	f->counter_usable = tsc.present;
	f->invariant = tsc.invariant;
	if (f->counter_usable && f->invariant && strcmp(f->clocksource, "tsc") != 0) {
		uclock__tsc_features_full(&tsc, 1);
		f->hypervisor = tsc.hypervisor_vendor;
		f->kvm_stable = tsc.kvm_stable;
		f->available_known = read_line(CLOCKSOURCE_DIR "available_clocksource",
					       available, sizeof(available)) == 0;
		f->tsc_listed = listed(available, "tsc");
		/* Where KVM's stable bit vouches, the flag cannot change the
		 * decision (see decide_tsc()): /proc/cpuinfo costs tens of
		 * microseconds to read. */
		if (!(f->hypervisor == UCLOCK_HV_KVM && f->kvm_stable))
			f->tsc_reliable = kernel_tsc_reliable();
	} else {
		f->available_known = f->tsc_listed = f->clocksource[0] != '\0';
	}
	if (f->counter_usable && f->invariant &&
	    !(f->source_env && strcmp(f->source_env, "auto")))
		f->counter_slower = uclock__counter_slower_than_kernel();
}

/* The vDSO timed against a system call; then the counter against the
 * kernel's clock, only where the rest holds (a trapped read costs a
 * microsecond or more). */
static void gather_cntvct(struct uclock_trust_facts *f)
{
	f->counter_usable = uclock__counter_enabled();
	if (!f->counter_usable || (f->source_env && strcmp(f->source_env, "auto")))
		return;
	if (f->clocksource[0] && strcmp(f->clocksource, "arch_sys_counter") != 0)
		return;
	f->vdso_user_space = uclock__vdso_in_user_space();
	if (f->vdso_user_space > 0)
		f->counter_slower = uclock__counter_slower_than_kernel();
}

/*
 * The facts of this machine, into f (the caller cleared it, and may have
 * put uclockd's verdict in it: see attach.c).  Files under /sys and /proc,
 * what the CPU says of its counter, and the relative cost of reading it
 * and of the kernel's clock; the rest only where it can matter.
 */
void uclock__trust_gather(struct uclock_trust_facts *f)
{
	const char *env = secure_getenv("UCLOCK_SOURCE");

	f->source_env = env && *env ? env : NULL;
	f->counter = UCLOCK__COUNTER;
	read_line(CLOCKSOURCE_DIR "current_clocksource", f->clocksource,
		  sizeof(f->clocksource));
	if (f->counter == UCLOCK_COUNTER_TSC)
		gather_tsc(f);
	else if (f->counter == UCLOCK_COUNTER_CNTVCT)
		gather_cntvct(f);
}
