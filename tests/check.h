/*
 * Test helpers.  A test is a program: exit 0 pass, 1 fail, 77 skip.
 * CHECK() records a failure and goes on, so one run shows every failure.
 */
#ifndef UCLOCK_TEST_CHECK_H
#define UCLOCK_TEST_CHECK_H

#include <stdint.h>
#include <time.h>

extern int check_failures;

void check_fail(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Exit 77 with a reason: the machine cannot run this test. */
void check_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* 0 if nothing failed, else 1; prints a one-line summary. */
int check_done(const char *name);

#define CHECK(cond, ...)                                                   \
	do {                                                               \
		if (!(cond))                                               \
			check_fail(__FILE__, __LINE__, __VA_ARGS__);       \
	} while (0)

/* The kernel's clock, by system call: the reference no library touches. */
int64_t kernel_ns(clockid_t clock);
/* The same through the vDSO (what glibc's clock_gettime() uses). */
int64_t vdso_ns(clockid_t clock);
int64_t ts_ns(const struct timespec *ts);
/*
 * How far outside a bracket of kernel readings a reading may lie: ns, or
 * UCLOCK_TEST_SLACK_NS where that is more.  Set under emulation: QEMU's
 * CNTVCT_EL0 follows the host's gettimeofday(), so it steps by a
 * microsecond, and no reading from it can be closer to the kernel than
 * that.
 */
int64_t test_slack_ns(int64_t ns);
/*
 * The image the ELF tests read: this process's vDSO, or the file named by
 * UCLOCK_ELF_IMAGE (a stand-in built like another architecture's vDSO:
 * QEMU's user mode maps none), read into memory.  *from_file says which.
 * NULL if neither is there.
 */
const unsigned char *test_elf_image(size_t *size, int *from_file);
/* Wall-clock seconds since the first call, for test durations. */
double elapsed_s(void);

/* Pseudo-random numbers from a fixed seed (xorshift64), for mutation
 * tests that must repeat: *state must start non-zero. */
static inline uint64_t check_rng(uint64_t *state)
{
	uint64_t x = *state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *state = x;
}

/* Uniform enough below n (0 when n is 0). */
static inline uint64_t check_below(uint64_t *state, uint64_t n)
{
	return n ? check_rng(state) % n : 0;
}

/*
 * Run fn in a child process with the given environment additions
 * ("NAME=value" strings, NULL-terminated), before the child touches
 * libuclock, so that the library starts fresh there.  Returns fn's result
 * (0 pass, 1 fail, 77 skip), or 1 if the child died.
 */
int in_child(const char *const env[], int (*fn)(void));

#endif
