/*
 * The counter's ordered reads: with the header's unordered
 * uclock__counter(), the only code in the library that knows which CPU
 * it runs on.  Everything else reads the counter through these.
 *
 * An ordered read is not performed before the loads that precede it (the
 * page's seq and lines, a value another thread published), as the
 * kernel's vDSO reads its counter.  Each architecture has two ways; the
 * library picks one at its first read (see uclock__counter_choose()) and
 * uclockd's page carries the daemon's choice to every reader:
 *  - self-ordered: rdtscp on x86-64 (it waits for earlier instructions
 *    and loads); CNTVCTSS_EL0 on arm64 (self-synchronized, FEAT_ECV);
 *  - fenced: lfence; rdtsc on x86-64; isb; mrs CNTVCT_EL0 on arm64.
 * On arm64 both also hold back later loads until the counter value is
 * known: a dummy load whose address depends on it (the kernel's
 * arch_counter_enforce_ordering()), so that a load after an acquire
 * fence (the re-check of seq) cannot be performed before the read.  On
 * x86-64, loads are not performed ahead of earlier loads, and
 * uclock__counter_then_loads() is an lfence where it matters.
 */
#ifndef UCLOCK_COUNTER_H
#define UCLOCK_COUNTER_H

#include <stdint.h>

#include "uclock.h"

/* Which ordered read, as uclockd's page records it: it names the
 * counter too, so that a page kept from another counter is refused. */
enum uclock_ordered_read {
	UCLOCK_READ_NONE = 0,
	UCLOCK_READ_RDTSCP = 1,
	UCLOCK_READ_LFENCE = 2,     /* lfence; rdtsc */
	UCLOCK_READ_CNTVCTSS = 3,
	UCLOCK_READ_ISB = 4,        /* isb; mrs cntvct_el0 */
};

/* The counters uclock knows (the trust policy has one branch each). */
enum uclock_counter_kind { UCLOCK_COUNTER_NONE, UCLOCK_COUNTER_TSC, UCLOCK_COUNTER_CNTVCT };

#if defined(__x86_64__) && defined(__GNUC__)
#define UCLOCK__COUNTER UCLOCK_COUNTER_TSC
#define UCLOCK__COUNTER_NAME "tsc"         /* uclock_stat()'s source_name */
#define UCLOCK__COUNTER_TEXT "TSC"         /* in reasons: "the TSC" */
#define UCLOCK__READ_SELF UCLOCK_READ_RDTSCP
#define UCLOCK__READ_FENCED UCLOCK_READ_LFENCE

static inline uint64_t uclock__counter_self_ordered(void)
{
	uint32_t lo, hi;

	/* Not the builtin: it stores the CPU number (ecx) to memory. */
	__asm__ volatile("rdtscp" : "=a"(lo), "=d"(hi) : : "rcx");
	return (uint64_t)hi << 32 | lo;
}

static inline uint64_t uclock__counter_fenced(void)
{
	__builtin_ia32_lfence();
	return __builtin_ia32_rdtsc();
}

/* Later loads wait for the counter read before (lfence waits for it). */
static inline void uclock__counter_then_loads(void)
{
	__builtin_ia32_lfence();
}

#elif defined(__aarch64__) && defined(__GNUC__)
#define UCLOCK__COUNTER UCLOCK_COUNTER_CNTVCT
#define UCLOCK__COUNTER_NAME "cntvct"
#define UCLOCK__COUNTER_TEXT "counter (CNTVCT_EL0)"
#define UCLOCK__READ_SELF UCLOCK_READ_CNTVCTSS
#define UCLOCK__READ_FENCED UCLOCK_READ_ISB

/* A load that depends on the value: an acquire fence after it then keeps
 * later loads behind the counter read. */
static inline void uclock__counter_depend(uint64_t ticks)
{
	uint64_t address;

	__asm__ volatile("eor %0, %1, %1\n\t"
			 "add %0, sp, %0\n\t"
			 "ldr xzr, [%0]"
			 : "=&r"(address) : "r"(ticks) : "memory");
}

/* CNTVCTSS_EL0 by its encoding: assemblers before Armv8.6 lack the name.
 * "memory": the compiler keeps the page's loads on their side of it. */
static inline uint64_t uclock__counter_self_ordered(void)
{
	uint64_t ticks;

	__asm__ volatile("mrs %0, s3_3_c14_c0_6" : "=r"(ticks) : : "memory");
	uclock__counter_depend(ticks);
	return ticks;
}

static inline uint64_t uclock__counter_fenced(void)
{
	uint64_t ticks;

	__asm__ volatile("isb\n\tmrs %0, cntvct_el0" : "=r"(ticks) : : "memory");
	uclock__counter_depend(ticks);
	return ticks;
}

/* The ordered reads made later loads depend on them: an acquire fence. */
static inline void uclock__counter_then_loads(void)
{
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
}

#else
/* No counter: every call passes through to the kernel; never called. */
#define UCLOCK__COUNTER UCLOCK_COUNTER_NONE
#define UCLOCK__COUNTER_NAME "none"
#define UCLOCK__COUNTER_TEXT "counter"
#define UCLOCK__READ_SELF UCLOCK_READ_NONE
#define UCLOCK__READ_FENCED UCLOCK_READ_NONE

static inline uint64_t uclock__counter_self_ordered(void) { return 0; }
static inline uint64_t uclock__counter_fenced(void) { return 0; }
static inline void uclock__counter_then_loads(void) { }
#endif

#endif
