/*
 * This machine's counter, whichever it is (the TSC, CNTVCT_EL0, or none):
 * its ordered reads as the timekeeper calls them, the choice between
 * them, and what reading it costs against asking the kernel.  The
 * instructions are in counter.h; what the CPU says of its counter, in
 * tsc.c and cntvct.c.
 */
#include <string.h>

#include "internal.h"

uint64_t uclock__read_self_ordered(void *ctx)
{
	(void)ctx;
	return uclock__counter_self_ordered();
}

uint64_t uclock__read_fenced(void *ctx)
{
	(void)ctx;
	return uclock__counter_fenced();
}

/* Whether this process may read the counter at all. */
int uclock__counter_enabled(void)
{
	switch (UCLOCK__COUNTER) {
	case UCLOCK_COUNTER_TSC: return uclock__tsc_enabled();
	/* The kernel lets every process read it (or traps and emulates the
	 * read, for an erratum: the trust policy sees that). */
	case UCLOCK_COUNTER_CNTVCT: return 1;
	default: return 0;
	}
}

/*
 * The ordered read to use here: on x86-64 rdtscp unless lfence; rdtsc
 * is clearly cheaper, on arm64 CNTVCTSS_EL0 where the CPU has it (it
 * saves the isb).
 */
int uclock__counter_choose(void)
{
	struct uclock_cntvct_features f;

	switch (UCLOCK__COUNTER) {
	case UCLOCK_COUNTER_TSC:
		return uclock__tsc_prefer_rdtscp() ? UCLOCK_READ_RDTSCP : UCLOCK_READ_LFENCE;
	case UCLOCK_COUNTER_CNTVCT:
		uclock__cntvct_features(&f);
		return f.self_synchronized ? UCLOCK_READ_CNTVCTSS : UCLOCK_READ_ISB;
	default:
		return UCLOCK_READ_NONE;
	}
}

const char *uclock__ordered_read_name(int read)
{
	switch (read) {
	case UCLOCK_READ_RDTSCP: return "rdtscp";
	case UCLOCK_READ_LFENCE: return "lfence+rdtsc";
	case UCLOCK_READ_CNTVCTSS: return "cntvctss";
	case UCLOCK_READ_ISB: return "isb+cntvct";
	default: return "none";
	}
}

/* The frequency the CPU states for its counter; 0 where it states none
 * that a process can read (the TSC's, in CPUID 0x15, rarely). */
uint64_t uclock__counter_nominal_hz(void)
{
	struct uclock_cntvct_features f;

	if (UCLOCK__COUNTER != UCLOCK_COUNTER_CNTVCT)
		return 0;
	uclock__cntvct_features(&f);
	return f.frequency_hz;
}

#define ROUNDS 7
#define CALLS 32

/* Fewest counter ticks seen for 'calls' calls of fn, over 'rounds'. */
uint64_t uclock__counter_cost(void (*fn)(void), int rounds, int calls)
{
	uint64_t best = UINT64_MAX;

	for (int r = 0; r < rounds; r++) {
		uint64_t t0 = uclock__counter_fenced();
		for (int i = 0; i < calls; i++)
			fn();
		uint64_t t1 = uclock__counter_fenced();
		if (t1 - t0 < best)
			best = t1 - t0;
	}
	return best;
}

static volatile uint64_t sink;

static void call_counter(void) { sink += uclock__counter(); }
static void call_kernel(void)
{
	struct timespec ts;

	uclock__kernel_gettime(CLOCK_MONOTONIC, &ts);
	sink += (uint64_t)ts.tv_nsec;
}

/* A few kernel readings only: each may be a system call (no vDSO), and a
 * process under strace pays tens of microseconds for one. */
int uclock__counter_slower_than_kernel(void)
{
	return uclock__counter_cost(call_counter, ROUNDS, CALLS) / CALLS >=
	       uclock__counter_cost(call_kernel, 3, 2) / 2;
}

static int (*vdso_gettime)(clockid_t, struct timespec *);

static void call_vdso(void)
{
	struct timespec ts;

	vdso_gettime(CLOCK_MONOTONIC, &ts);
	sink += (uint64_t)ts.tv_nsec;
}

static void call_syscall(void)
{
	struct timespec ts;

	uclock__kernel_syscall_gettime(CLOCK_MONOTONIC, &ts);
	sink += (uint64_t)ts.tv_nsec;
}

/*
 * Whether the kernel's vDSO answers clock_gettime(CLOCK_MONOTONIC) in
 * user space: 1 if a call costs less than half a system call, 0 if not
 * (the vDSO makes the system call itself: the kernel's clocksource cannot
 * be read from user space, or the kernel will not let it be), -1 if this
 * process has no vDSO.  Timed on the counter, calls in equal batches so
 * that the cost of reading the counter (a trap, if it traps) weighs the
 * same on both; the fewest ticks of three batches each.  A system call
 * costs ten times the vDSO's user-space answer or more, and a vDSO that
 * makes one costs it and more: noise, which only adds, cannot turn one
 * into the other.  The vDSO as mapped, whatever UCLOCK_VDSO says.
 */
int uclock__vdso_in_user_space(void)
{
	vdso_gettime = uclock__kernel_vdso_gettime();
	if (!vdso_gettime)
		return -1;
	call_vdso(); /* its data page's first touch */
	uint64_t vdso = uclock__counter_cost(call_vdso, 3, 4);
	uint64_t syscall = uclock__counter_cost(call_syscall, 3, 4);
	return vdso * 2 < syscall;
}
