/*
 * The arm64 generic timer's virtual counter, CNTVCT_EL0: what the CPU and
 * the kernel say about it.  The architecture gives every CPU one system
 * counter, at a constant rate; the firmware writes that rate into
 * CNTFRQ_EL0 (reported; the timekeeper measures the rate against the
 * kernel's clocks all the same, as for the TSC).  HWCAP2_ECV says the CPU
 * has CNTVCTSS_EL0, the same counter read self-synchronized: no isb.
 * Whether the kernel lets user space read it is the trust policy's
 * question (trust.c).
 */
#include <string.h>
#include <sys/auxv.h>

#include "internal.h"

#if defined(__aarch64__) && defined(__GNUC__)
#ifndef HWCAP2_ECV
#define HWCAP2_ECV (1UL << 19)
#endif

void uclock__cntvct_features(struct uclock_cntvct_features *f)
{
	uint64_t hz;

	memset(f, 0, sizeof(*f));
	__asm__ volatile("mrs %0, cntfrq_el0" : "=r"(hz));
	/* The upper half is reserved. */
	f->frequency_hz = hz & 0xffffffffu;
	f->self_synchronized = (getauxval(AT_HWCAP2) & HWCAP2_ECV) != 0;
}

#else

void uclock__cntvct_features(struct uclock_cntvct_features *f)
{
	memset(f, 0, sizeof(*f));
}

#endif
