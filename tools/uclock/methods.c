/*
 * Every way to read time on this machine, each as a loop of n calls: bare
 * counter reads, system calls, the vDSO called directly, the C library,
 * the legacy vsyscall page, and every uclock reader.
 */
#include <dlfcn.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "elf_reader.h"
#include "cli.h"
#include "methods.h"
#include "uclock.h"

#if defined(__x86_64__)
#include <cpuid.h>
#endif
#if defined(__aarch64__)
#include <sys/auxv.h>
#ifndef HWCAP2_ECV
#define HWCAP2_ECV (1UL << 19)
#endif
#endif

static volatile uint64_t sink;

#if defined(__x86_64__)
#define X86 1
#else
#define X86 0
#endif

void *vdso_function(const char *name)
{
	static struct uclock_elf elf;
	static int state; /* 0 not tried, 1 open, -1 none */
	size_t size;

	if (state == 0) {
		const void *image = uclock__vdso_image(&size);

		state = image && uclock__elf_open(&elf, image, size) == 0 ? 1 : -1;
	}
	if (state < 0)
		return NULL;
	return uclock__elf_lookup(&elf, name, NULL);
}

typedef int (*gettime_fn)(clockid_t, struct timespec *);
typedef int (*gettimeofday_fn)(struct timeval *, void *);
typedef time_t (*time_fn)(time_t *);
typedef long (*getcpu_fn)(unsigned *, unsigned *, void *);

#if defined(__aarch64__)
#define VDSO_NAME(x) "__kernel_" x
#else
#define VDSO_NAME(x) "__vdso_" x
#endif

static gettime_fn vdso_gettime_fn;

static gettime_fn vdso_gettime(void)
{
	if (!vdso_gettime_fn)
		vdso_gettime_fn = (gettime_fn)vdso_function(VDSO_NAME("clock_gettime"));
	return vdso_gettime_fn;
}

static int have_vdso_gettime(const char **why)
{
	*why = "no vDSO clock_gettime";
	return vdso_gettime() != NULL;
}

static int have_vdso(const char *name, const char **why)
{
	*why = "not in this vDSO";
	return vdso_function(name) != NULL;
}

static int have_vdso_gettimeofday(const char **why)
{
	return have_vdso(VDSO_NAME("gettimeofday"), why);
}

static int have_vdso_time(const char **why)
{
	return have_vdso(VDSO_NAME("time"), why);
}

static int have_vdso_getcpu(const char **why)
{
	return have_vdso(VDSO_NAME("getcpu"), why);
}

#if !defined(__aarch64__)
static int have_counter(const char **why)
{
	*why = "no time-stamp counter on this architecture";
	return X86;
}

static int have_rdtscp(const char **why)
{
#if defined(__x86_64__)
	unsigned a, b, c, d;

	*why = "the CPU has no rdtscp";
	return __get_cpuid(0x80000001, &a, &b, &c, &d) && (d >> 27 & 1);
#else
	return have_counter(why);
#endif
}

static int have_rdpid(const char **why)
{
#if defined(__x86_64__)
	unsigned a, b, c, d;

	*why = "the CPU has no rdpid";
	return __get_cpuid_count(7, 0, &a, &b, &c, &d) && (c >> 22 & 1);
#else
	return have_counter(why);
#endif
}
#else
static int have_cntvctss(const char **why)
{
	*why = "the CPU has no CNTVCTSS_EL0 (FEAT_ECV)";
	return (getauxval(AT_HWCAP2) & HWCAP2_ECV) != 0;
}
#endif

/* The legacy page is callable when mapped executable (emulated or not). */
static int have_vsyscall(const char **why)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[256];
	int executable = 0;

	*why = "no executable vsyscall page (vsyscall=none)";
	while (f && fgets(line, sizeof(line), f))
		if (strstr(line, "[vsyscall]")) {
			char perms[8] = "";
			if (sscanf(line, "%*s %7s", perms) == 1 && perms[2] == 'x')
				executable = 1;
		}
	if (f)
		fclose(f);
	return X86 && executable;
}

#define LOOP(fn_name, body)                                                  \
	static void fn_name(long calls)                                      \
	{                                                                    \
		uint64_t acc = 0;                                            \
		for (long i = 0; i < calls; i++) {                           \
			body;                                                \
		}                                                            \
		sink += acc;                                                 \
	}
#define TIMESPEC(call) struct timespec ts; call; acc += (uint64_t)ts.tv_nsec
#define TIMEVAL(call) struct timeval tv; call; acc += (uint64_t)tv.tv_usec

#if defined(__x86_64__)
LOOP(m_rdtsc, acc += __builtin_ia32_rdtsc())
LOOP(m_rdtscp, unsigned aux; acc += __builtin_ia32_rdtscp(&aux))
LOOP(m_lfence, __builtin_ia32_lfence(); acc += __builtin_ia32_rdtsc())
LOOP(m_rdpid, uint64_t id; __asm__ volatile("rdpid %0" : "=r"(id)); acc += id)
LOOP(m_vsys_gtod, TIMEVAL(((gettimeofday_fn)0xffffffffff600000ul)(&tv, NULL)))
LOOP(m_vsys_time, acc += (uint64_t)((time_fn)0xffffffffff600400ul)(NULL))
#else
#if defined(__aarch64__)
/* The generic timer's counter: bare, after an isb, self-synchronized (its
 * encoding: assemblers before Armv8.6 lack the name). */
#define MRS(reg) ({ uint64_t v_; __asm__ volatile("mrs %0, " reg : "=r"(v_)); v_; })
LOOP(m_cntvct, acc += MRS("cntvct_el0"))
LOOP(m_isb_cntvct, __asm__ volatile("isb" ::: "memory"); acc += MRS("cntvct_el0"))
LOOP(m_cntvctss, acc += MRS("s3_3_c14_c0_6"))
#else
LOOP(m_rdtsc, (void)0)
LOOP(m_rdtscp, (void)0)
LOOP(m_lfence, (void)0)
LOOP(m_rdpid, (void)0)
#endif
LOOP(m_vsys_gtod, (void)0)
LOOP(m_vsys_time, (void)0)
#endif

LOOP(m_sys_mono, TIMESPEC(syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &ts)))
LOOP(m_sys_real, TIMESPEC(syscall(SYS_clock_gettime, CLOCK_REALTIME, &ts)))
LOOP(m_sys_gtod, TIMEVAL(syscall(SYS_gettimeofday, &tv, NULL)))

/*
 * Calls into another object (the vDSO, the shim), made as a program makes
 * them: a direct call to code that jumps through a pointer in memory, as a
 * PLT entry does; here a function that tail-calls the pointer.  An
 * indirect call costs more on some CPUs: the vDSO's time() took 1.45 ns
 * called through a register, 0.72 ns through glibc's PLT entry, on the
 * project's machine (KVM, Intel Xeon).  The least a program pays.
 */
static gettimeofday_fn vdso_gtod;
static time_fn vdso_time;
static getcpu_fn vdso_getcpu;
static gettime_fn preload_gettime;

#define ENTRY(name, type, params, args, target)                              \
	static __attribute__((noinline)) type name params                    \
	{                                                                    \
		return target args;                                          \
	}
ENTRY(call_vdso_gettime, int, (clockid_t id, struct timespec *ts), (id, ts),
      vdso_gettime_fn)
ENTRY(call_vdso_gtod, int, (struct timeval *tv, void *tz), (tv, tz), vdso_gtod)
ENTRY(call_vdso_time, time_t, (time_t *t), (t), vdso_time)
ENTRY(call_vdso_getcpu, long, (unsigned *cpu, unsigned *node, void *cache),
      (cpu, node, cache), vdso_getcpu)
ENTRY(call_preload_gettime, int, (clockid_t id, struct timespec *ts), (id, ts),
      preload_gettime)

#define VDSO_LOOP(fn_name, id) LOOP(fn_name, TIMESPEC(call_vdso_gettime(id, &ts)))
VDSO_LOOP(m_vdso_real, CLOCK_REALTIME)
VDSO_LOOP(m_vdso_mono, CLOCK_MONOTONIC)
VDSO_LOOP(m_vdso_raw, CLOCK_MONOTONIC_RAW)
VDSO_LOOP(m_vdso_boot, CLOCK_BOOTTIME)
VDSO_LOOP(m_vdso_tai, CLOCK_TAI)
VDSO_LOOP(m_vdso_real_coarse, CLOCK_REALTIME_COARSE)
VDSO_LOOP(m_vdso_mono_coarse, CLOCK_MONOTONIC_COARSE)
LOOP(m_vdso_gtod, TIMEVAL(call_vdso_gtod(&tv, NULL)))
LOOP(m_vdso_time, acc += (uint64_t)call_vdso_time(NULL))
LOOP(m_vdso_getcpu, unsigned cpu; call_vdso_getcpu(&cpu, NULL, NULL); acc += cpu)

LOOP(m_libc_mono, TIMESPEC(clock_gettime(CLOCK_MONOTONIC, &ts)))
LOOP(m_libc_mono_coarse, TIMESPEC(clock_gettime(CLOCK_MONOTONIC_COARSE, &ts)))
LOOP(m_libc_gtod, TIMEVAL(gettimeofday(&tv, NULL)))
LOOP(m_libc_time, acc += (uint64_t)time(NULL))
LOOP(m_libc_getcpu, acc += (uint64_t)sched_getcpu())

LOOP(m_u_mono_ns, acc += (uint64_t)uclock_mono_ns())
LOOP(m_u_real_ns, acc += (uint64_t)uclock_real_ns())
LOOP(m_u_ticks, acc += uclock_ticks())
LOOP(m_u_bounds, struct uclock_bounds b; uclock_now_bounds(&b); acc += (uint64_t)b.latest_ns)
#define UCLOCK_LOOP(fn_name, id) LOOP(fn_name, TIMESPEC(uclock_gettime(id, &ts)))
UCLOCK_LOOP(m_u_real, CLOCK_REALTIME)
UCLOCK_LOOP(m_u_mono, CLOCK_MONOTONIC)
UCLOCK_LOOP(m_u_raw, CLOCK_MONOTONIC_RAW)
UCLOCK_LOOP(m_u_boot, CLOCK_BOOTTIME)
UCLOCK_LOOP(m_u_tai, CLOCK_TAI)
UCLOCK_LOOP(m_u_real_coarse, CLOCK_REALTIME_COARSE)
UCLOCK_LOOP(m_u_mono_coarse, CLOCK_MONOTONIC_COARSE)
LOOP(m_u_gtod, TIMEVAL(uclock_gettimeofday(&tv, NULL)))
LOOP(m_u_time, acc += (uint64_t)uclock_time(NULL))
LOOP(m_u_getcpu, unsigned cpu; uclock_getcpu(&cpu, NULL); acc += cpu)

/* The shim's own clock_gettime, as a program it is preloaded into calls it
 * (through its PLT). */
static int have_preload(const char **why)
{
	const char *path = preload_path();
	void *shim;

	*why = "libuclock-preload.so not found";
	if (preload_gettime)
		return 1;
	if (!path || !(shim = dlopen(path, RTLD_NOW | RTLD_LOCAL)))
		return 0;
	preload_gettime = (gettime_fn)dlsym(shim, "clock_gettime");
	return preload_gettime != NULL;
}

LOOP(m_preload_mono, TIMESPEC(call_preload_gettime(CLOCK_MONOTONIC, &ts)))

static int resolve_vdso_extras(const char **why)
{
	vdso_gtod = (gettimeofday_fn)vdso_function(VDSO_NAME("gettimeofday"));
	vdso_time = (time_fn)vdso_function(VDSO_NAME("time"));
	vdso_getcpu = (getcpu_fn)vdso_function(VDSO_NAME("getcpu"));
	(void)why;
	return 1;
}

/* Each method is compared with the vDSO's call for the same clock. */
#define R_MONO "vdso clock_gettime(MONOTONIC)"
#define R_REAL "vdso clock_gettime(REALTIME)"
#define R_RAW "vdso clock_gettime(MONOTONIC_RAW)"
#define R_BOOT "vdso clock_gettime(BOOTTIME)"
#define R_TAI "vdso clock_gettime(TAI)"
#define R_RCOARSE "vdso clock_gettime(REALTIME_COARSE)"
#define R_MCOARSE "vdso clock_gettime(MONOTONIC_COARSE)"
#define R_GTOD "vdso gettimeofday"
#define R_TIME "vdso time"
#define R_GETCPU "vdso getcpu"

const struct method methods[] = {
#if defined(__aarch64__)
	{"counter cntvct", KIND_COUNTER, m_cntvct, NULL, R_MONO},
	{"counter isb+cntvct", KIND_COUNTER, m_isb_cntvct, NULL, R_MONO},
	{"counter cntvctss", KIND_COUNTER, m_cntvctss, have_cntvctss, R_MONO},
#else
	{"counter rdtsc", KIND_COUNTER, m_rdtsc, have_counter, R_MONO},
	{"counter rdtscp", KIND_COUNTER, m_rdtscp, have_rdtscp, R_MONO},
	{"counter lfence+rdtsc", KIND_COUNTER, m_lfence, have_counter, R_MONO},
	{"counter rdpid (cpu number)", KIND_COUNTER, m_rdpid, have_rdpid, R_GETCPU},
#endif
	{"syscall clock_gettime(MONOTONIC)", KIND_SYSCALL, m_sys_mono, NULL, R_MONO},
	{"syscall clock_gettime(REALTIME)", KIND_SYSCALL, m_sys_real, NULL, R_REAL},
	{"vdso clock_gettime(REALTIME)", KIND_VDSO, m_vdso_real, have_vdso_gettime, R_REAL},
	{"vdso clock_gettime(MONOTONIC)", KIND_VDSO, m_vdso_mono, have_vdso_gettime, R_MONO},
	{"vdso clock_gettime(MONOTONIC_RAW)", KIND_VDSO, m_vdso_raw, have_vdso_gettime, R_RAW},
	{"vdso clock_gettime(BOOTTIME)", KIND_VDSO, m_vdso_boot, have_vdso_gettime, R_BOOT},
	{"vdso clock_gettime(TAI)", KIND_VDSO, m_vdso_tai, have_vdso_gettime, R_TAI},
	{"vdso clock_gettime(REALTIME_COARSE)", KIND_VDSO, m_vdso_real_coarse,
	 have_vdso_gettime, R_RCOARSE},
	{"vdso clock_gettime(MONOTONIC_COARSE)", KIND_VDSO, m_vdso_mono_coarse,
	 have_vdso_gettime, R_MCOARSE},
	{"vdso gettimeofday", KIND_VDSO, m_vdso_gtod, have_vdso_gettimeofday, R_GTOD},
	{"vdso time", KIND_VDSO, m_vdso_time, have_vdso_time, R_TIME},
	{"vdso getcpu", KIND_VDSO, m_vdso_getcpu, have_vdso_getcpu, R_GETCPU},
	{"syscall gettimeofday", KIND_SYSCALL, m_sys_gtod, NULL, R_GTOD},
	{"libc clock_gettime(MONOTONIC) (vdso or syscall)", KIND_LIBC, m_libc_mono, NULL, R_MONO},
	{"libc clock_gettime(MONOTONIC_COARSE) (vdso or syscall)", KIND_LIBC,
	 m_libc_mono_coarse, NULL, R_MCOARSE},
	{"libc gettimeofday (vdso or syscall)", KIND_LIBC, m_libc_gtod, NULL, R_GTOD},
	{"libc time (vdso or syscall)", KIND_LIBC, m_libc_time, NULL, R_TIME},
	{"libc sched_getcpu (vdso or syscall)", KIND_LIBC, m_libc_getcpu, NULL, R_GETCPU},
	{"vsyscall page gettimeofday", KIND_VSYSCALL, m_vsys_gtod, have_vsyscall, R_GTOD},
	{"vsyscall page time", KIND_VSYSCALL, m_vsys_time, have_vsyscall, R_TIME},
	{"uclock_mono_ns()", KIND_UCLOCK, m_u_mono_ns, NULL, R_MONO},
	{"uclock_real_ns()", KIND_UCLOCK, m_u_real_ns, NULL, R_REAL},
	{"uclock_ticks()", KIND_UCLOCK, m_u_ticks, NULL, R_MONO},
	{"uclock_now_bounds()", KIND_UCLOCK, m_u_bounds, NULL, R_REAL},
	{"uclock_gettime(REALTIME)", KIND_UCLOCK, m_u_real, NULL, R_REAL},
	{"uclock_gettime(MONOTONIC)", KIND_UCLOCK, m_u_mono, NULL, R_MONO},
	{"uclock_gettime(MONOTONIC_RAW)", KIND_UCLOCK, m_u_raw, NULL, R_RAW},
	{"uclock_gettime(BOOTTIME)", KIND_UCLOCK, m_u_boot, NULL, R_BOOT},
	{"uclock_gettime(TAI)", KIND_UCLOCK, m_u_tai, NULL, R_TAI},
	{"uclock_gettime(REALTIME_COARSE)", KIND_UCLOCK, m_u_real_coarse, NULL, R_RCOARSE},
	{"uclock_gettime(MONOTONIC_COARSE)", KIND_UCLOCK, m_u_mono_coarse, NULL, R_MCOARSE},
	{"uclock_gettimeofday", KIND_UCLOCK, m_u_gtod, NULL, R_GTOD},
	{"uclock_time", KIND_UCLOCK, m_u_time, NULL, R_TIME},
	{"uclock_getcpu", KIND_UCLOCK, m_u_getcpu, NULL, R_GETCPU},
	{"preload clock_gettime(MONOTONIC)", KIND_UCLOCK, m_preload_mono, have_preload, R_MONO},
};
const int method_count = sizeof(methods) / sizeof(methods[0]);

int method_available(const struct method *m, const char **why)
{
	static const char *none = "";

	*why = none;
	resolve_vdso_extras(why);
	return !m->available || m->available(why);
}

const struct method *method_find(const char *name)
{
	for (int i = 0; i < method_count; i++)
		if (!strcmp(methods[i].name, name))
			return &methods[i];
	return NULL;
}

const char *method_kind_name(enum method_kind kind)
{
	static const char *names[] = {"counter", "syscall", "vdso", "libc",
				      "vsyscall", "uclock"};
	return names[kind];
}
