/*
 * A stand-in for the arm64 kernel's vDSO, for the ELF reader's tests
 * under QEMU's user mode (which maps no vDSO): the same symbols, version
 * (LINUX_2.6.39, vdso_arm64.map) and hash style (DT_HASH), linked as the
 * kernel links its own (shared, -Bsymbolic, soname linux-vdso.so.1).  The
 * tests read it, look its functions up, and never call them.
 */
struct timespec;
struct timeval;
struct timezone;

#define ENOSYS 38

int __kernel_clock_gettime(int clock, struct timespec *ts);
int __kernel_gettimeofday(struct timeval *tv, struct timezone *tz);
int __kernel_clock_getres(int clock, struct timespec *res);
void __kernel_rt_sigreturn(void);

int __kernel_clock_gettime(int clock, struct timespec *ts)
{
	(void)clock;
	(void)ts;
	return -ENOSYS;
}

int __kernel_gettimeofday(struct timeval *tv, struct timezone *tz)
{
	(void)tv;
	(void)tz;
	return -ENOSYS;
}

int __kernel_clock_getres(int clock, struct timespec *res)
{
	(void)clock;
	(void)res;
	return -ENOSYS;
}

void __kernel_rt_sigreturn(void)
{
}
