/* Every way to read time here: run by bench (cost) and check (syscalls). */
#ifndef UCLOCK_METHODS_H
#define UCLOCK_METHODS_H

enum method_kind {
	KIND_COUNTER,   /* bare counter instructions */
	KIND_SYSCALL,   /* the kernel by system call */
	KIND_VDSO,      /* the kernel's vDSO, called directly */
	KIND_LIBC,      /* the C library (through the vDSO when it can) */
	KIND_VSYSCALL,  /* the legacy fixed-address page */
	KIND_UCLOCK,    /* libuclock */
};

struct method {
	const char *name;
	enum method_kind kind;
	void (*run)(long calls);
	int (*available)(const char **why);  /* NULL: always */
	const char *reference;               /* the vDSO method it is compared with */
};

/* The bare counter read uclock_mono_ns() is compared with. */
#if defined(__aarch64__)
#define METHOD_BARE_COUNTER "counter cntvct"
#define METHOD_BARE_COUNTER_TEXT "a bare mrs of CNTVCT_EL0"
#else
#define METHOD_BARE_COUNTER "counter rdtsc"
#define METHOD_BARE_COUNTER_TEXT "a bare rdtsc"
#endif

extern const struct method methods[];
extern const int method_count;

/* 1 if the method can run here; else 0 and why. */
int method_available(const struct method *m, const char **why);
const char *method_kind_name(enum method_kind kind);
const struct method *method_find(const char *name);
/* The vDSO's own function, found by the ELF reader; NULL if none. */
void *vdso_function(const char *name);

#endif
