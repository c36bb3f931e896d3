/*
 * Whether the counter (the TSC; CNTVCT_EL0 on arm64) is in step across
 * CPUs: one thread pinned on each online CPU, each reading the counter
 * (ordered: after the load before it) and comparing it with the highest
 * value any thread has published.  A counter
 * in step is never below a value another CPU published before it looked;
 * one below it is behind that CPU's by at least the difference (the
 * kernel's own check at CPU bring-up, without its lock).  uclockd runs it;
 * it vouches for the TSC where the kernel's clocksource is another.
 */
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#define MAX_CHECKED 4096

struct sync_run {
	uint64_t latest;          /* highest counter value published */
	uint64_t worst;           /* largest step back seen, ticks */
	uint64_t end;             /* counter value at which to stop */
	uint64_t readings;
	int checked;
};

struct sync_thread {
	struct sync_run *run;
	int cpu;
	pthread_t thread;
};

static void raise_to(uint64_t *v, uint64_t x)
{
	uint64_t seen = __atomic_load_n(v, __ATOMIC_ACQUIRE);

	while (x > seen &&
	       !__atomic_compare_exchange_n(v, &seen, x, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		;
}

static void *check_cpu(void *arg)
{
	struct sync_thread *t = arg;
	struct sync_run *run = t->run;
	cpu_set_t set;
	uint64_t worst = 0, readings = 0;

	CPU_ZERO(&set);
	CPU_SET(t->cpu, &set);
	if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set) != 0)
		return NULL;
	__atomic_fetch_add(&run->checked, 1, __ATOMIC_RELAXED);
	for (;;) {
		uint64_t before = __atomic_load_n(&run->latest, __ATOMIC_ACQUIRE);
		/* Fenced: the counter is read after the load above completed. */
		uint64_t now = uclock__counter_fenced();

		readings++;
		if (now < before && before - now > worst)
			worst = before - now;
		if (now >= run->end)
			break;
		raise_to(&run->latest, now);
	}
	raise_to(&run->worst, worst);
	__atomic_fetch_add(&run->readings, readings, __ATOMIC_RELAXED);
	return NULL;
}

/* The online CPUs, from the kernel's list ("0-3,8-11"); -1 if unreadable. */
static int online_cpus(int *cpus, int max)
{
	char list[1024];
	int n = 0;
	FILE *f = fopen("/sys/devices/system/cpu/online", "re");

	if (!f)
		return -1;
	if (!fgets(list, sizeof(list), f)) {
		fclose(f);
		return -1;
	}
	fclose(f);
	for (char *p = list; *p && *p != '\n';) {
		char *end;
		long lo = strtol(p, &end, 10), hi = lo;

		if (end == p)
			return -1;
		if (*end == '-')
			hi = strtol(end + 1, &end, 10);
		for (long c = lo; c <= hi && n < max; c++)
			cpus[n++] = (int)c;
		p = *end == ',' ? end + 1 : end;
	}
	return n;
}

/*
 * Run the check for about duration_ns on every online CPU.  0, or -1 if it
 * could not run (the CPU list unreadable, threads refused).  out->in_step:
 * 1 if a thread ran on every online CPU and none saw a step back, 0 if one
 * did, -1 if some CPU could not be checked (a cpuset) and none did.
 */
int uclock__tsc_sync_check(int64_t duration_ns, struct uclock_tsc_sync *out)
{
	static int cpus[MAX_CHECKED];
	struct sync_run run;
	struct sync_thread *t;
	struct timespec k0, k1;
	int n = online_cpus(cpus, MAX_CHECKED);

	memset(out, 0, sizeof(*out));
	if (!UCLOCK__HAVE_COUNTER || n < 1 || !(t = calloc((size_t)n, sizeof(*t))))
		return -1;
	memset(&run, 0, sizeof(run));
	uclock__kernel_gettime(CLOCK_MONOTONIC_RAW, &k0);
	uint64_t c0 = uclock__counter_fenced();
	/* The counter's rate, roughly, over half a millisecond: to stop the
	 * threads by the counter they read anyway. */
	do
		uclock__kernel_gettime(CLOCK_MONOTONIC_RAW, &k1);
	while (uclock__ts_to_ns(&k1) - uclock__ts_to_ns(&k0) < 500000);
	uint64_t per_ms = (uclock__counter_fenced() - c0) * 2;
	run.end = c0 + (uint64_t)((u128)per_ms * (uint64_t)duration_ns / 1000000);
	/* Ordinary threads, whatever the caller's policy (uclockd may run
	 * at real-time priority): a spinning check must not starve a CPU. */
	pthread_attr_t attr;
	struct sched_param none = {0};
	pthread_attr_init(&attr);
	pthread_attr_setinheritsched(&attr, PTHREAD_EXPLICIT_SCHED);
	pthread_attr_setschedpolicy(&attr, SCHED_OTHER);
	pthread_attr_setschedparam(&attr, &none);
	int started = 0;
	for (int i = 0; i < n; i++) {
		t[i].run = &run;
		t[i].cpu = cpus[i];
		if (pthread_create(&t[i].thread, &attr, check_cpu, &t[i]) == 0)
			started++;
		else
			t[i].cpu = -1;
	}
	pthread_attr_destroy(&attr);
	for (int i = 0; i < n; i++)
		if (t[i].cpu >= 0)
			pthread_join(t[i].thread, NULL);
	free(t);
	uint64_t c1 = uclock__counter_fenced();
	uclock__kernel_gettime(CLOCK_MONOTONIC_RAW, &k1);
	int64_t ns = uclock__ts_to_ns(&k1) - uclock__ts_to_ns(&k0);
	out->cpus = n;
	out->checked = run.checked;
	out->readings = run.readings;
	out->worst_ns = ns > 0 && c1 > c0
				? (int64_t)((u128)run.worst * (u128)ns / (c1 - c0))
				: (int64_t)run.worst;
	out->in_step = run.worst == 0 && run.checked == n ? 1 : run.worst ? 0 : -1;
	return started ? 0 : -1;
}
