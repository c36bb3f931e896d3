/*
 * The kernel's own answers: through its vDSO when the process has one
 * (resolved once by walking the vDSO's symbol table, not through libc, so
 * that a preloaded clock_gettime cannot call back into us), else by system
 * calls.  Results and errno are the kernel's.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

struct uclock_kernel uclock__kernel;
static int resolved;

#if defined(__x86_64__)
#define VDSO_VERSION "LINUX_2.6"
#define VDSO_PREFIX "__vdso_"
#elif defined(__aarch64__)
#define VDSO_VERSION "LINUX_2.6.39"
#define VDSO_PREFIX "__kernel_"
#else
#define VDSO_VERSION NULL
#define VDSO_PREFIX "__vdso_"
#endif

static void *vdso_function(const struct uclock_elf *elf, const char *name)
{
	char full[64];

	strcpy(full, VDSO_PREFIX);
	strcat(full, name);
	return uclock__elf_lookup(elf, full, VDSO_VERSION);
}

/* The vDSO's own, found in its symbol table; NULL if there is none. */
static void *vdso_lookup(const char *name)
{
	struct uclock_elf elf;
	size_t size;
	const void *image = uclock__vdso_image(&size);

	if (!image || uclock__elf_open(&elf, image, size) != 0)
		return NULL;
	return vdso_function(&elf, name);
}

int (*uclock__kernel_vdso_gettime(void))(clockid_t, struct timespec *)
{
	return (int (*)(clockid_t, struct timespec *))vdso_lookup("clock_gettime");
}

int uclock__kernel_syscall_gettime(clockid_t clock, struct timespec *ts)
{
	return (int)syscall(SYS_clock_gettime, clock, ts);
}

/* Idempotent and race-free: every caller resolves the same pointers. */
void uclock__kernel_init(void)
{
	struct uclock_elf elf;
	const void *image;
	size_t size;
	const char *env;

	if (__atomic_load_n(&resolved, __ATOMIC_ACQUIRE))
		return;
	env = secure_getenv("UCLOCK_VDSO");
	image = uclock__vdso_image(&size);
	if (image && !(env && strcmp(env, "off") == 0) &&
	    uclock__elf_open(&elf, image, size) == 0) {
		__atomic_store_n(&uclock__kernel.clock_gettime,
				 vdso_function(&elf, "clock_gettime"), __ATOMIC_RELAXED);
		__atomic_store_n(&uclock__kernel.gettimeofday,
				 vdso_function(&elf, "gettimeofday"), __ATOMIC_RELAXED);
		__atomic_store_n(&uclock__kernel.time, vdso_function(&elf, "time"),
				 __ATOMIC_RELAXED);
		__atomic_store_n(&uclock__kernel.clock_getres,
				 vdso_function(&elf, "clock_getres"), __ATOMIC_RELAXED);
		__atomic_store_n(&uclock__kernel.getcpu, vdso_function(&elf, "getcpu"),
				 __ATOMIC_RELAXED);
	}
	__atomic_store_n(&resolved, 1, __ATOMIC_RELEASE);
}

int uclock__kernel_has_vdso(void)
{
	uclock__kernel_init();
	return __atomic_load_n(&uclock__kernel.clock_gettime, __ATOMIC_RELAXED) != NULL;
}


#define VDSO(fn) __atomic_load_n(&uclock__kernel.fn, __ATOMIC_RELAXED)

/*
 * The first call of a process may come before anything else looked for
 * the vDSO: look now (once), then use it, else the system call.
 */
int uclock__kernel_gettime_slow(clockid_t clock, struct timespec *ts)
{
	int (*fn)(clockid_t, struct timespec *);

	uclock__kernel_init();
	fn = VDSO(clock_gettime);
	/* NULL goes to the kernel itself, which answers EFAULT or EINVAL;
	 * the vDSO would store through it. */
	if (fn && ts)
		return uclock__vdso_result(fn(clock, ts));
	return (int)syscall(SYS_clock_gettime, clock, ts);
}

int uclock__kernel_gettimeofday(struct timeval *tv, struct timezone *tz)
{
	int (*fn)(struct timeval *, struct timezone *);

	uclock__kernel_init();
	fn = VDSO(gettimeofday);
	if (fn)
		return uclock__vdso_result(fn(tv, tz));
	return (int)syscall(SYS_gettimeofday, tv, tz);
}

time_t uclock__kernel_time_slow(time_t *t)
{
	time_t (*fn)(time_t *);

	uclock__kernel_init();
	fn = VDSO(time);
	if (fn)
		return fn(t);
#ifdef SYS_time
	return (time_t)syscall(SYS_time, t);
#else
	struct timespec ts;
	if (uclock__kernel_gettime(CLOCK_REALTIME_COARSE, &ts) != 0)
		return (time_t)-1;
	if (t)
		*t = ts.tv_sec;
	return ts.tv_sec;
#endif
}

int uclock__kernel_getres(clockid_t clock, struct timespec *res)
{
	int (*fn)(clockid_t, struct timespec *);

	uclock__kernel_init();
	fn = VDSO(clock_getres);
	if (fn)
		return uclock__vdso_result(fn(clock, res));
	return (int)syscall(SYS_clock_getres, clock, res);
}

int uclock__kernel_getcpu(unsigned *cpu, unsigned *node)
{
	int (*fn)(unsigned *, unsigned *, void *);

	uclock__kernel_init();
	fn = VDSO(getcpu);
	if (fn)
		return uclock__vdso_result(fn(cpu, node, NULL));
	return (int)syscall(SYS_getcpu, cpu, node, NULL);
}
