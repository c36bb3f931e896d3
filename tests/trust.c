/*
 * The trust policy, decided at run time and reported: UCLOCK_SOURCE=kernel
 * is a pure pass-through, =counter (or =tsc) forces the counter, anything
 * else is an error that leaves the clock to the kernel; by default the TSC
 * is used exactly when the CPU says it is invariant and the kernel uses it
 * too, and arm64's counter only where the kernel keeps time from it
 * (arch_sys_counter).
 */
#if defined(__x86_64__)
#include <cpuid.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "uclock.h"

static struct uclock_stat stat_now(void)
{
	struct uclock_stat st = {.size = sizeof(st)};

	if (uclock_stat(&st) != 0)
		abort();
	return st;
}

/* Read until warm-up is over (or 200 ms), as a busy program would. */
static struct uclock_stat warmed(void)
{
	int64_t until = vdso_ns(CLOCK_MONOTONIC) + 200000000;
	struct uclock_stat st;

	do {
		uclock_mono_ns();
		st = stat_now();
	} while ((st.mode == UCLOCK_MODE_WARMUP || st.mode == UCLOCK_MODE_UNINIT) &&
		 vdso_ns(CLOCK_MONOTONIC) < until);
	return st;
}

static int kernel_source(void)
{
	struct uclock_stat st = warmed();

	CHECK(st.source == UCLOCK_SOURCE_KERNEL && st.mode == UCLOCK_MODE_KERNEL,
	      "UCLOCK_SOURCE=kernel: source %s, mode %s", st.source_name, st.mode_name);
	CHECK(strstr(st.reason, "UCLOCK_SOURCE=kernel") != NULL, "reason: %s", st.reason);
	CHECK(st.updates == 0 && st.counter_hz == 0,
	      "pass-through must not run the timekeeper (%llu updates)",
	      (unsigned long long)st.updates);
	CHECK(uclock_ticks() > 0, "ticks in kernel mode");
	return check_done("kernel");
}

static int bogus_source(void)
{
	struct uclock_stat st = warmed();

	CHECK(st.mode == UCLOCK_MODE_KERNEL, "UCLOCK_SOURCE=bogus: mode %s", st.mode_name);
	CHECK(strstr(st.reason, "bogus") != NULL, "the reason names the bad value: %s",
	      st.reason);
	return check_done("bogus");
}

/* UCLOCK_SOURCE=tsc or =counter: the counter, named and measured. */
static int forced_source(void)
{
	struct uclock_stat st = warmed();
	const char *env = getenv("UCLOCK_SOURCE") ? getenv("UCLOCK_SOURCE") : "(unset)";

#if !defined(__x86_64__) && !defined(__aarch64__)
	/* No counter here to force: a pass-through that says so. */
	CHECK(st.source == UCLOCK_SOURCE_KERNEL && strcmp(st.counter_name, "none") == 0 &&
	      strstr(st.reason, "no counter"), "UCLOCK_SOURCE=%s: source %s, counter %s: %s",
	      env, st.source_name, st.counter_name, st.reason);
	return check_done(env);
#endif
	CHECK(st.source == UCLOCK_SOURCE_COUNTER && st.mode == UCLOCK_MODE_COUNTER,
	      "UCLOCK_SOURCE=%s: source %s, mode %s", env, st.source_name, st.mode_name);
	CHECK(st.counter_hz > 1000000, "counter frequency %llu Hz",
	      (unsigned long long)st.counter_hz);
	const char *counter = st.counter_name ? st.counter_name : "(null)";

	CHECK(strcmp(st.source_name, counter) == 0, "source %s, counter %s",
	      st.source_name, counter);
#if defined(__x86_64__)
	CHECK(strcmp(counter, "tsc") == 0, "the counter is %s", counter);
#elif defined(__aarch64__)
	/* The rate measured against the kernel is the one the CPU states. */
	CHECK(strcmp(counter, "cntvct") == 0, "the counter is %s", counter);
	CHECK(st.counter_nominal_hz > 0 &&
	      (double)st.counter_hz > 0.99 * (double)st.counter_nominal_hz &&
	      (double)st.counter_hz < 1.01 * (double)st.counter_nominal_hz,
	      "measured %llu Hz, CNTFRQ_EL0 %llu Hz", (unsigned long long)st.counter_hz,
	      (unsigned long long)st.counter_nominal_hz);
	CHECK(strcmp(st.counter_read, "isb+cntvct") == 0 ||
	      strcmp(st.counter_read, "cntvctss") == 0, "ordered read %s", st.counter_read);
#endif
	return check_done(env);
}

static void current_clocksource(char *cs, size_t size)
{
	FILE *f = fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource", "r");

	cs[0] = '\0';
	if (f) {
		if (!fgets(cs, (int)size, f))
			cs[0] = '\0';
		fclose(f);
	}
	cs[strcspn(cs, "\n")] = '\0';
}

/* Whether uclock must use the counter here by default (1), must not (0),
 * or may decline for a reason the test cannot see beforehand: a cost the
 * library measures (-1, and the reason must say so). */
static int machine_trusts_counter(char *why, size_t size)
{
	char cs[64];

	current_clocksource(cs, sizeof(cs));
#if defined(__x86_64__)
	unsigned a, b, c, d;

	if ((unsigned)__get_cpuid_max(0x80000000, NULL) < 0x80000007u ||
	    !__get_cpuid(0x80000007, &a, &b, &c, &d) || !(d & (1u << 8))) {
		snprintf(why, size, "no invariant TSC");
		return 0;
	}
	snprintf(why, size, "clocksource %s", cs);
	return strcmp(cs, "tsc") == 0;
#elif defined(__aarch64__)
	/* Under emulation the clocksource is the host's: never this counter. */
	snprintf(why, size, "clocksource %s", cs);
	return strcmp(cs, "arch_sys_counter") == 0 ? -1 : 0;
#else
	snprintf(why, size, "no counter on this architecture");
	return 0;
#endif
}

/* The reasons a trusted-looking machine may still be declined for. */
static int measured_refusal(const char *reason)
{
	return strstr(reason, "slower") || strstr(reason, "vDSO");
}

static int auto_source(void)
{
	char why[128];
	int expect = machine_trusts_counter(why, sizeof(why));
	struct uclock_stat st = warmed();

	printf("auto: source %s, mode %s: %s (machine: %s)\n", st.source_name,
	       st.mode_name, st.reason, why);
	/* An emulated rdtsc may still turn it down; never the other way. */
	if (!expect)
		CHECK(st.source == UCLOCK_SOURCE_KERNEL, "counter used although %s", why);
	else
		CHECK(st.source == UCLOCK_SOURCE_COUNTER || measured_refusal(st.reason),
		      "counter not used on a machine that trusts it: %s", st.reason);
	CHECK(st.reason && st.reason[0], "a reason is always given");
	return check_done("auto");
}

static int interval(void)
{
	struct uclock_stat st = stat_now();

	CHECK(st.interval_ns == 250000, "UCLOCK_INTERVAL_US=250: interval %lld ns",
	      (long long)st.interval_ns);
	return check_done("interval");
}

/* A bad value is refused as a bad UCLOCK_SOURCE is: pass-through, and the
 * reason names it. */
static int bad_interval(void)
{
	struct uclock_stat st = warmed();
	const char *value = getenv("UCLOCK_INTERVAL_US");

	CHECK(st.mode == UCLOCK_MODE_KERNEL, "UCLOCK_INTERVAL_US=%s: mode %s", value,
	      st.mode_name);
	CHECK(strstr(st.reason, "UCLOCK_INTERVAL_US") && strstr(st.reason, value),
	      "the reason names the bad value '%s': %s", value, st.reason);
	return check_done("bad interval");
}

/* Set but empty: as if unset. */
static int empty_values(void)
{
	struct uclock_stat st = warmed();
	char why[128];

	if (machine_trusts_counter(why, sizeof(why)))
		CHECK(st.source == UCLOCK_SOURCE_COUNTER || measured_refusal(st.reason),
		      "UCLOCK_SOURCE= (empty) is auto: %s", st.reason);
	CHECK(!strstr(st.reason, "UCLOCK_"), "empty values are no error: %s", st.reason);
	CHECK(st.interval_ns == 1000000, "UCLOCK_INTERVAL_US= (empty): %lld ns",
	      (long long)st.interval_ns);
	return check_done("empty");
}

/* A page path too long is not cut short and opened: not looked for. */
static int long_page(void)
{
	struct uclock_stat st = warmed();

	/* Without a counter no page is looked for at all. */
	CHECK(st.page == NULL && (strstr(st.page_reason, "longer than") ||
				  strcmp(st.counter_name, "none") == 0),
	      "UCLOCK_PAGE of 5000 bytes: %s", st.page_reason);
	return check_done("long page");
}

int main(void)
{
	static const char *const kernel[] = {"UCLOCK_SOURCE=kernel", NULL};
	static const char *const bogus[] = {"UCLOCK_SOURCE=bogus", NULL};
	static const char *const tsc[] = {"UCLOCK_SOURCE=tsc", NULL};
	static const char *const counter[] = {"UCLOCK_SOURCE=counter", NULL};
	static const char *const autos[] = {"UCLOCK_SOURCE=auto", NULL};
	static const char *const iv[] = {"UCLOCK_INTERVAL_US=250", NULL};
	static const char *const bad_ivs[][2] = {
		{"UCLOCK_INTERVAL_US=12x", NULL}, {"UCLOCK_INTERVAL_US=5", NULL},
		{"UCLOCK_INTERVAL_US=1000001", NULL}, {"UCLOCK_INTERVAL_US=-100", NULL},
		{"UCLOCK_INTERVAL_US=99999999999999999999", NULL},
		{"UCLOCK_INTERVAL_US= 100", NULL},
	};
	static const char *const empty[] = {"UCLOCK_SOURCE=", "UCLOCK_INTERVAL_US=", NULL};
	static char long_path[5100] = "UCLOCK_PAGE=/";
	const char *long_env[] = {long_path, "UCLOCK_SOURCE=tsc", NULL};
	int rc = 0;

	memset(long_path + strlen(long_path), 'a', 5000);

	rc |= in_child(kernel, kernel_source);
	rc |= in_child(bogus, bogus_source);
	rc |= in_child(tsc, forced_source);
	rc |= in_child(counter, forced_source);
	rc |= in_child(autos, auto_source);
	rc |= in_child(NULL, auto_source);
	rc |= in_child(iv, interval);
	for (unsigned i = 0; i < sizeof(bad_ivs) / sizeof(bad_ivs[0]); i++)
		rc |= in_child(bad_ivs[i], bad_interval);
	rc |= in_child(empty, empty_values);
	rc |= in_child(long_env, long_page);
	return rc ? 1 : 0;
}
