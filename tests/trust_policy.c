/*
 * The trust policy as a function of its facts, case by case: every "yes"
 * and every "no", with the reason each gives, for the TSC and for arm64's
 * CNTVCT_EL0 (whatever machine runs the test).  The facts are what
 * uclock__trust_gather() reads off a machine, and uclockd's verdict.
 */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "internal.h"

/* A machine that gives no reason for doubt: invariant TSC, clocksource tsc. */
static struct uclock_trust_facts good(void)
{
	struct uclock_trust_facts f;

	memset(&f, 0, sizeof(f));
	f.counter = UCLOCK_COUNTER_TSC;
	f.counter_usable = 1;
	f.invariant = 1;
	strcpy(f.clocksource, "tsc");
	f.available_known = 1;
	f.tsc_listed = 1;
	return f;
}

/* A KVM guest on kvm-clock, the TSC still listed. */
static struct uclock_trust_facts kvm_clock(int stable)
{
	struct uclock_trust_facts f = good();

	strcpy(f.clocksource, "kvm-clock");
	f.hypervisor = UCLOCK_HV_KVM;
	f.kvm_stable = stable;
	return f;
}

static struct uclock_trust_facts on(const char *cs, enum uclock_hypervisor hv)
{
	struct uclock_trust_facts f = good();

	strcpy(f.clocksource, cs);
	f.hypervisor = hv;
	return f;
}

static struct uclock_trust_facts with_sync(struct uclock_trust_facts f,
					   enum uclock_tsc_sync_verdict v, int64_t warp)
{
	f.sync = v;
	f.sync_cpus = 8;
	f.sync_warp_ns = warp;
	return f;
}

static struct uclock_trust_facts with_env(struct uclock_trust_facts f, const char *source)
{
	f.source_env = source;
	return f;
}

/* An arm64 machine that gives no reason for doubt: the kernel keeps time
 * from the generic timer, and its vDSO reads the counter in user space. */
static struct uclock_trust_facts arm64(void)
{
	struct uclock_trust_facts f;

	memset(&f, 0, sizeof(f));
	f.counter = UCLOCK_COUNTER_CNTVCT;
	f.counter_usable = 1;
	strcpy(f.clocksource, "arch_sys_counter");
	f.vdso_user_space = 1;
	return f;
}

#define FACT(expr) ({ struct uclock_trust_facts f_ = good(); expr; f_; })
#define ARM64(expr) ({ struct uclock_trust_facts f_ = arm64(); expr; f_; })

struct row {
	const char *name;
	struct uclock_trust_facts facts;
	int trusted;
	const char *reason;      /* a part of the reason given */
};

int main(void)
{
	struct row rows[] = {
		{"clocksource tsc", good(), 1, "the kernel's clocksource is tsc"},
		{"UCLOCK_SOURCE=kernel", with_env(good(), "kernel"), 0, "UCLOCK_SOURCE=kernel"},
		{"UCLOCK_SOURCE=bogus", with_env(good(), "bogus"), 0, "bogus"},
		{"UCLOCK_SOURCE=auto", with_env(good(), "auto"), 1, "clocksource is tsc"},
		{"UCLOCK_SOURCE=tsc forces", with_env(kvm_clock(0), "tsc"), 1, "UCLOCK_SOURCE=tsc"},
		{"UCLOCK_SOURCE=counter forces", with_env(on("hpet", UCLOCK_HV_NONE), "counter"),
		 1, "UCLOCK_SOURCE=counter"},
		{"forced, but no TSC", FACT(f_.source_env = "tsc"; f_.counter_usable = 0), 0,
		 "no usable time-stamp counter"},
		{"bad interval", FACT(f_.bad_interval = "12x"), 0, "UCLOCK_INTERVAL_US=12x"},
		{"no TSC", FACT(f_.counter_usable = 0), 0, "no usable"},
		{"not invariant", FACT(f_.invariant = 0), 0, "invariant"},
		{"emulated rdtsc", FACT(f_.counter_slower = 1), 0, "emulated"},
		{"uclockd: out of step, even on tsc", with_sync(good(), UCLOCK_SYNC_NO, 4000), 0,
		 "out of step across CPUs (8 CPUs, up to 4000 ns apart)"},
		{"kvm-clock, stable bit", kvm_clock(1), 1, "KVM keeps it stable"},
		{"kvm-clock, no stable bit", kvm_clock(0), 0, "run uclockd"},
		{"kvm-clock, no stable bit, uclockd in step",
		 with_sync(kvm_clock(0), UCLOCK_SYNC_YES, 0), 1, "found in step on all 8 CPUs by uclockd"},
		{"kvm-clock, stable bit, uclockd out of step",
		 with_sync(kvm_clock(1), UCLOCK_SYNC_NO, 900), 0, "out of step"},
		{"kvm-clock, the kernel gave up on tsc",
		 FACT(f_ = kvm_clock(1); f_.tsc_listed = 0), 0, "gave up on the TSC"},
		{"gave up on tsc, uclockd in step",
		 FACT(f_ = with_sync(on("hpet", UCLOCK_HV_NONE), UCLOCK_SYNC_YES, 0);
		      f_.tsc_listed = 0), 0, "gave up on the TSC"},
		{"hpet, bare metal", on("hpet", UCLOCK_HV_NONE), 0, "run uclockd"},
		{"acpi_pm, bare metal, uclockd in step",
		 with_sync(on("acpi_pm", UCLOCK_HV_NONE), UCLOCK_SYNC_YES, 0), 1,
		 "the kernel's clocksource is acpi_pm"},
		{"hpet, uclockd could not check all", with_sync(on("hpet", UCLOCK_HV_NONE),
								UCLOCK_SYNC_UNKNOWN, 0),
		 0, "run uclockd"},
		{"xen, no vouch", on("xen", UCLOCK_HV_XEN), 0, "nothing vouches for the TSC across CPUs on Xen"},
		{"xen, uclockd in step", with_sync(on("xen", UCLOCK_HV_XEN), UCLOCK_SYNC_YES, 0), 1,
		 "in step on all 8 CPUs"},
		{"Hyper-V, tsc_reliable", FACT(f_ = on("hyperv_clocksource_tsc_page", UCLOCK_HV_HYPERV);
					       f_.tsc_reliable = 1), 1, "marks it reliable (Hyper-V)"},
		{"VMware, tsc_reliable", FACT(f_ = on("hpet", UCLOCK_HV_VMWARE); f_.tsc_reliable = 1),
		 1, "reliable (VMware)"},
		{"Hyper-V, no flag", on("hyperv_clocksource_tsc_page", UCLOCK_HV_HYPERV), 0,
		 "run uclockd"},
		{"KVM stable bit on another hypervisor's word", FACT(f_ = on("xen", UCLOCK_HV_XEN);
								      f_.kvm_stable = 1),
		 0, "run uclockd"},
		{"no /sys", FACT(f_.clocksource[0] = '\0'; f_.available_known = 0), 0,
		 "cannot be read"},
		{"no /sys, uclockd in step",
		 FACT(f_ = with_sync(good(), UCLOCK_SYNC_YES, 0); f_.clocksource[0] = '\0';
		      f_.available_known = 0), 1, "in step on all 8 CPUs"},
		{"no /sys, KVM stable bit", FACT(f_ = kvm_clock(1); f_.clocksource[0] = '\0';
						 f_.available_known = 0), 0, "cannot be read"},
		{"another architecture", FACT(f_.counter = UCLOCK_COUNTER_NONE), 0,
		 "no counter uclock can read on this architecture"},
		{"another architecture, forced",
		 FACT(f_.counter = UCLOCK_COUNTER_NONE; f_.source_env = "counter"), 0,
		 "no counter"},
		/* arm64 */
		{"arm64: arch_sys_counter, vDSO in user space", arm64(), 1,
		 "the kernel's vDSO reads the counter in user space; the kernel's "
		 "clocksource is arch_sys_counter"},
		{"arm64: UCLOCK_SOURCE=auto", with_env(arm64(), "auto"), 1, "in user space"},
		{"arm64: UCLOCK_SOURCE=kernel", with_env(arm64(), "kernel"), 0,
		 "UCLOCK_SOURCE=kernel"},
		{"arm64: timer erratum, the vDSO makes system calls",
		 ARM64(f_.vdso_user_space = 0), 0,
		 "vDSO makes a system call for clock_gettime (a timer erratum"},
		{"arm64: timer erratum, forced", ARM64(f_.vdso_user_space = 0;
						      f_.source_env = "counter"), 1,
		 "UCLOCK_SOURCE=counter"},
		{"arm64: tsc is an alias", ARM64(f_.vdso_user_space = 0; f_.source_env = "tsc"), 1,
		 "UCLOCK_SOURCE=tsc"},
		{"arm64: no vDSO", ARM64(f_.vdso_user_space = -1), 0, "no vDSO"},
		{"arm64: trapped counter", ARM64(f_.counter_slower = 1), 0,
		 "CNTVCT_EL0 is slower than the kernel's clock (trapped)"},
		{"arm64: another clocksource", ARM64(strcpy(f_.clocksource, "jiffies")), 0,
		 "clocksource is jiffies, not arch_sys_counter"},
		{"arm64: another clocksource, uclockd in step",
		 ARM64(strcpy(f_.clocksource, "jiffies"); f_.sync = UCLOCK_SYNC_YES), 0,
		 "not arch_sys_counter"},
		{"arm64: no /sys, vDSO in user space", ARM64(f_.clocksource[0] = '\0'), 1,
		 "clocksource is unknown (no /sys)"},
		{"arm64: no /sys, vDSO makes system calls",
		 ARM64(f_.clocksource[0] = '\0'; f_.vdso_user_space = 0), 0, "timer erratum"},
		{"arm64: uclockd out of step", with_sync(arm64(), UCLOCK_SYNC_NO, 300), 0,
		 "counter out of step across CPUs (8 CPUs, up to 300 ns apart)"},
		{"arm64: uclockd in step", with_sync(arm64(), UCLOCK_SYNC_YES, 0), 1,
		 "in user space"},
		{"arm64: no counter", ARM64(f_.counter_usable = 0), 0, "no usable counter"},
		{"arm64: bad interval", ARM64(f_.bad_interval = "0"), 0, "UCLOCK_INTERVAL_US=0"},
	};

	for (unsigned i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char why[256];
		int got = uclock__trust_decide(&rows[i].facts, why, sizeof(why));

		printf("%-48s %-3s %s\n", rows[i].name, got ? "yes" : "no", why);
		CHECK(got == rows[i].trusted, "%s: %s, expected %s", rows[i].name,
		      got ? "trusted" : "refused", rows[i].trusted ? "trusted" : "refused");
		CHECK(strstr(why, rows[i].reason) != NULL, "%s: reason '%s' lacks '%s'",
		      rows[i].name, why, rows[i].reason);
	}
	/* A reason never overflows: the longest facts. */
	struct uclock_trust_facts f = with_env(good(), "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
	char tiny[16];
	CHECK(uclock__trust_decide(&f, tiny, sizeof(tiny)) == 0 && strlen(tiny) == 15,
	      "a reason cut to its buffer");
	return check_done("trust_policy");
}
