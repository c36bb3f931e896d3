/*
 * The error bound's arithmetic and statuses, with figures made up here
 * (no kernel, no time service):
 *  - the interval: the service's bound, drift at the given rate times the
 *    age (rounded up), uclock's own error; saturated, never wrapped;
 *  - unknown and disrupted give no bound; a disruption is the timekeeper's
 *    count or the VM clock's marker moving since the service's update;
 *  - from one reading to the next: a bound that never shrinks without new
 *    information, a disruption kept until the service updates, free
 *    running from the last figures when the service goes quiet, a source
 *    taking over;
 *  - adjtimex's answers: unsynchronised, TIME_ERROR, failure, and what
 *    counts as the service writing (the kernel only grows maxerror);
 *  - drift rates as text;
 *  - the latch: a reader never sees a copy half written, with a writer
 *    storing as fast as it can.
 */
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/timex.h>

#include "bounds.h"
#include "check.h"
#include "internal.h"

#define US 1000LL
#define MS 1000000LL
#define SEC 1000000000LL
#define T0 (1700000000LL * SEC)   /* a REALTIME in 2023 */

static struct uclock__bounds_reading synced(int source, int64_t as_of, int64_t err,
					    uint32_t ppb, int updated)
{
	return (struct uclock__bounds_reading){.source = source,
					       .status = UCLOCK_BOUNDS_SYNCHRONIZED,
					       .updated = updated, .as_of_ns = as_of,
					       .error_ns = err, .drift_ppb = ppb};
}

static void interval(void)
{
	struct uclock__bounds_copy empty = {0}, c;
	struct uclock__bounds_reading r = synced(UCLOCK_BOUNDS_SOURCE_CHRONY, T0, 2 * MS, 15000, 1);
	struct uclock_bounds b;

	uclock__bounds_at(&empty, T0, 0, 0, 0, &b);
	CHECK(b.status == UCLOCK_BOUNDS_UNKNOWN && b.earliest_ns == INT64_MIN &&
	      b.latest_ns == INT64_MAX && b.error_ns == INT64_MAX,
	      "nothing published: unknown, unbounded (status %d, error %lld)", b.status,
	      (long long)b.error_ns);

	uclock__bounds_next(&empty, &r, T0, 7, 0, 0, 150, &c);
	uclock__bounds_at(&c, T0 + 10 * SEC, 7, 0, 0, &b);
	/* 2 ms + 15 ppm of 10 s (150 us) + 150 ns; drift is rounded up, to
	 * within a nanosecond. */
	CHECK(b.status == UCLOCK_BOUNDS_SYNCHRONIZED, "status %d", b.status);
	CHECK(b.drift_ns - 150 * US == 0 || b.drift_ns - 150 * US == 1,
	      "drift over 10 s at 15 ppm: %lld ns", (long long)b.drift_ns);
	CHECK(b.error_ns == 2 * MS + b.drift_ns + 150, "bound %lld ns", (long long)b.error_ns);
	CHECK(b.earliest_ns == T0 + 10 * SEC - b.error_ns &&
	      b.latest_ns == T0 + 10 * SEC + b.error_ns, "interval not around now");
	CHECK(b.age_ns == 10 * SEC && b.service_error_ns == 2 * MS && b.uclock_error_ns == 150 &&
	      b.max_drift_ppb == 15000 && b.source == UCLOCK_BOUNDS_SOURCE_CHRONY,
	      "parts: age %lld service %lld uclock %lld ppb %u source %d", (long long)b.age_ns,
	      (long long)b.service_error_ns, (long long)b.uclock_error_ns, b.max_drift_ppb,
	      b.source);

	/* Drift rounds up: 1 ns of age at 1 ppb still adds 1 ns. */
	r = synced(UCLOCK_BOUNDS_SOURCE_ADJTIMEX, T0, 0, 1, 1);
	uclock__bounds_next(&empty, &r, T0, 0, 0, 0, 0, &c);
	uclock__bounds_at(&c, T0 + 1, 0, 0, 0, &b);
	CHECK(b.drift_ns == 1, "1 ns at 1 ppb rounds up to 1 ns, not %lld", (long long)b.drift_ns);
	/* A reading before as_of (REALTIME stepped back): no negative drift. */
	uclock__bounds_at(&c, T0 - SEC, 0, 0, 0, &b);
	CHECK(b.drift_ns == 0 && b.age_ns == 0, "negative age: drift %lld", (long long)b.drift_ns);

	/* Saturation: a huge bound, a huge age, a rate of 1e5 ppm. */
	r = synced(UCLOCK_BOUNDS_SOURCE_ADJTIMEX, 1, INT64_MAX - 5, 100000000u, 1);
	uclock__bounds_next(&empty, &r, 1, 0, 0, 0, 100, &c);
	uclock__bounds_at(&c, INT64_MAX - 1, 0, 0, 0, &b);
	CHECK(b.latest_ns == INT64_MAX && b.earliest_ns <= 0 && b.error_ns > 0,
	      "saturated: earliest %lld latest %lld error %lld", (long long)b.earliest_ns,
	      (long long)b.latest_ns, (long long)b.error_ns);
}

static void disruptions(void)
{
	struct uclock__bounds_copy empty = {0}, c, d;
	struct uclock__bounds_reading r = synced(UCLOCK_BOUNDS_SOURCE_ADJTIMEX, T0, MS, 500000, 1);
	struct uclock_bounds b;

	uclock__bounds_next(&empty, &r, T0, 3, 1, 42, 100, &c);
	uclock__bounds_at(&c, T0, 3, 1, 42, &b);
	CHECK(b.status == UCLOCK_BOUNDS_SYNCHRONIZED, "before: status %d", b.status);
	uclock__bounds_at(&c, T0, 4, 1, 42, &b);
	CHECK(b.status == UCLOCK_BOUNDS_DISRUPTED && b.earliest_ns == INT64_MIN &&
	      b.latest_ns == INT64_MAX, "a jump counted: disrupted and unbounded (status %d)",
	      b.status);
	uclock__bounds_at(&c, T0, 3, 1, 43, &b);
	CHECK(b.status == UCLOCK_BOUNDS_DISRUPTED, "the VM clock's marker moved: status %d",
	      b.status);
	uclock__bounds_at(&c, T0, 3, 0, 43, &b);
	CHECK(b.status == UCLOCK_BOUNDS_SYNCHRONIZED,
	      "a marker this reader cannot read is not a disruption: status %d", b.status);

	/* The same service read again, not updated: the disruption stays. */
	r = synced(UCLOCK_BOUNDS_SOURCE_ADJTIMEX, T0 + SEC, MS + 500 * US, 500000, 0);
	uclock__bounds_next(&c, &r, T0 + SEC, 4, 1, 42, 100, &d);
	uclock__bounds_at(&d, T0 + SEC, 4, 1, 42, &b);
	CHECK(b.status == UCLOCK_BOUNDS_DISRUPTED, "not updated since the jump: status %d",
	      b.status);
	/* It updates: synchronised again, the jump behind it. */
	r.updated = 1;
	uclock__bounds_next(&d, &r, T0 + SEC, 4, 1, 42, 100, &c);
	uclock__bounds_at(&c, T0 + SEC, 4, 1, 42, &b);
	CHECK(b.status == UCLOCK_BOUNDS_SYNCHRONIZED, "updated after the jump: status %d",
	      b.status);
	/* Unknown stays unknown whatever jumps: there was no bound to void. */
	r.status = UCLOCK_BOUNDS_UNKNOWN;
	uclock__bounds_next(&c, &r, T0 + SEC, 4, 0, 0, 100, &d);
	uclock__bounds_at(&d, T0 + SEC, 9, 0, 0, &b);
	CHECK(b.status == UCLOCK_BOUNDS_UNKNOWN, "unknown, then a jump: status %d", b.status);
}

static void never_shrinks(void)
{
	struct uclock__bounds_copy empty = {0}, c, d;
	struct uclock__bounds_reading r;
	struct uclock_bounds b;
	int64_t last = 0;

	/* The kernel's maxerror, read every second: it grows by 500 us at
	 * each second's tick, the bound linearly in between.  Read just after
	 * a tick the kernel's figure is below the bound grown since: the
	 * bound must not fall back to it. */
	r = synced(UCLOCK_BOUNDS_SOURCE_ADJTIMEX, T0, 10 * MS, 500000, 1);
	uclock__bounds_next(&empty, &r, T0, 0, 0, 0, 100, &c);
	for (int i = 1; i <= 20; i++) {
		int64_t at = T0 + i * 900 * MS;
		long ticks = (long)(i * 900 / 1000);

		for (int64_t t = at - 900 * MS; t < at; t += 100 * MS) {
			uclock__bounds_at(&c, t, 0, 0, 0, &b);
			CHECK(b.error_ns >= last, "bound shrank to %lld from %lld at %lld ms",
			      (long long)b.error_ns, (long long)last, (long long)((t - T0) / MS));
			last = b.error_ns;
		}
		r = synced(UCLOCK_BOUNDS_SOURCE_ADJTIMEX, at, 10 * MS + ticks * 500 * US, 500000, 0);
		/* uclock's own part moves too: 100, then 40, 160 ns... */
		uclock__bounds_next(&c, &r, at, 0, 0, 0, 100 + 60 * (i % 3 - 1), &d);
		c = d;
	}
	uclock__bounds_at(&c, T0 + 18 * SEC, 0, 0, 0, &b);
	CHECK(b.error_ns >= 10 * MS + 18 * 500 * US, "after 18 s: %lld ns", (long long)b.error_ns);

	/* New information may shrink it: the service updated. */
	r = synced(UCLOCK_BOUNDS_SOURCE_ADJTIMEX, T0 + 19 * SEC, 2 * MS, 500000, 1);
	uclock__bounds_next(&c, &r, T0 + 19 * SEC, 0, 0, 0, 100, &d);
	uclock__bounds_at(&d, T0 + 19 * SEC, 0, 0, 0, &b);
	CHECK(b.error_ns == 2 * MS + 100, "updated: %lld ns", (long long)b.error_ns);
	/* So may another source taking over. */
	r = synced(UCLOCK_BOUNDS_SOURCE_CHRONY, T0 + 19 * SEC, 50 * US, 15000, 0);
	uclock__bounds_next(&d, &r, T0 + 19 * SEC, 0, 0, 0, 100, &c);
	uclock__bounds_at(&c, T0 + 19 * SEC, 0, 0, 0, &b);
	CHECK(b.error_ns == 50 * US + 100 && b.source == UCLOCK_BOUNDS_SOURCE_CHRONY,
	      "chronyd took over: %lld ns from source %d", (long long)b.error_ns, b.source);
}

static void free_running(void)
{
	struct uclock__bounds_copy empty = {0}, c, d;
	struct uclock__bounds_reading r = synced(UCLOCK_BOUNDS_SOURCE_CHRONY, T0, MS, 15000, 1);
	struct uclock__bounds_reading quiet = {.source = UCLOCK_BOUNDS_SOURCE_NONE,
					       .status = UCLOCK_BOUNDS_FREE_RUNNING};
	struct uclock_bounds b;

	/* Nothing ever heard: free running is unknown. */
	uclock__bounds_next(&empty, &quiet, T0, 0, 0, 0, 100, &c);
	uclock__bounds_at(&c, T0, 0, 0, 0, &b);
	CHECK(b.status == UCLOCK_BOUNDS_UNKNOWN, "quiet from the start: status %d", b.status);

	uclock__bounds_next(&empty, &r, T0, 0, 0, 0, 100, &c);
	for (int i = 1; i <= 600; i++) {  /* ten minutes without an answer */
		quiet.as_of_ns = T0 + i * SEC;
		uclock__bounds_next(&c, &quiet, T0 + i * SEC, 0, 0, 0, 100, &d);
		c = d;
	}
	uclock__bounds_at(&c, T0 + 600 * SEC, 0, 0, 0, &b);
	CHECK(b.status == UCLOCK_BOUNDS_FREE_RUNNING && b.source == UCLOCK_BOUNDS_SOURCE_CHRONY,
	      "ten minutes quiet: status %d, source %d", b.status, b.source);
	CHECK(b.error_ns - (MS + 100 + 9 * MS) == 0 || b.error_ns - (MS + 100 + 9 * MS) == 1,
	      "grown from the last figures at 15 ppm: %lld ns", (long long)b.error_ns);
	CHECK(b.age_ns == 600 * SEC, "age %lld", (long long)b.age_ns);
	/* A jump while free running: disrupted. */
	uclock__bounds_at(&c, T0 + 600 * SEC, 1, 0, 0, &b);
	CHECK(b.status == UCLOCK_BOUNDS_DISRUPTED, "a jump while free running: %d", b.status);
}

static void timex(void)
{
	struct uclock__adjtimex_state st = {0};
	struct uclock__bounds_reading r;

	uclock__bounds_from_timex(&st, TIME_ERROR, STA_UNSYNC, 16000000, 16000000, T0, 15000, &r);
	CHECK(r.status == UCLOCK_BOUNDS_UNKNOWN && r.source == UCLOCK_BOUNDS_SOURCE_ADJTIMEX &&
	      r.error_ns == 16 * SEC, "STA_UNSYNC: status %d error %lld", r.status,
	      (long long)r.error_ns);
	CHECK(r.drift_ppb == 500000, "the kernel's figure grows at 500 ppm at least: %u",
	      r.drift_ppb);
	uclock__bounds_from_timex(&st, TIME_OK, 0, 20000, 100, T0, 15000, &r);
	CHECK(r.status == UCLOCK_BOUNDS_SYNCHRONIZED && r.updated && r.error_ns == 20 * MS,
	      "synchronised: status %d updated %d error %lld", r.status, r.updated,
	      (long long)r.error_ns);
	uclock__bounds_from_timex(&st, TIME_OK, 0, 20500, 100, T0 + SEC, 15000, &r);
	CHECK(!r.updated, "the kernel growing maxerror is not the service writing");
	uclock__bounds_from_timex(&st, TIME_OK, 0, 3000, 100, T0 + 2 * SEC, 15000, &r);
	CHECK(r.updated, "maxerror fell: the service wrote it");
	uclock__bounds_from_timex(&st, TIME_OK, 0, 3500, 80, T0 + 3 * SEC, 15000, &r);
	CHECK(r.updated, "esterror changed: the service wrote it");
	uclock__bounds_from_timex(&st, TIME_ERROR, 0, 3500, 80, T0 + 3 * SEC, 15000, &r);
	CHECK(r.status == UCLOCK_BOUNDS_UNKNOWN, "TIME_ERROR: status %d", r.status);
	uclock__bounds_from_timex(&st, -1, 0, 0, 0, T0 + 4 * SEC, 2000000, &r);
	CHECK(r.source == UCLOCK_BOUNDS_SOURCE_NONE && r.status == UCLOCK_BOUNDS_FREE_RUNNING &&
	      r.drift_ppb == 2000000, "adjtimex failing after answers: free running (%d, %d)",
	      r.source, r.status);
	struct uclock__adjtimex_state fresh = {0};
	uclock__bounds_from_timex(&fresh, -1, 0, 0, 0, T0, 15000, &r);
	CHECK(r.status == UCLOCK_BOUNDS_UNKNOWN, "adjtimex failing from the start: %d", r.status);
}

static void rates(void)
{
	static const struct {
		const char *text;
		uint32_t ppb;
	} cases[] = {
		{"15", 15000}, {"2.5", 2500}, {"0.0001", 1}, {"100000", 100000000u}, {"100001", 0},
		{"0", 0}, {"-1", 0}, {"+1", 0}, {"1e7", 0}, {"abc", 0}, {"", 0},
		{"15ppm", 0}, {"nan", 0}, {"inf", 0}, {" 5", 0},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint32_t got = uclock__bounds_parse_ppm(cases[i].text);

		CHECK(got == cases[i].ppb, "'%s' ppm: %u ppb, want %u", cases[i].text, got,
		      cases[i].ppb);
	}
}

/* ---- the latch under a writer ---- */

static struct uclock__bounds shared;
static int done;

/* Every copy the writer stores has its fields tied to one number. */
static void copy_for(uint64_t n, struct uclock__bounds_copy *c)
{
	memset(c, 0, sizeof(*c));
	c->as_of_ns = (int64_t)n;
	c->error_ns = (int64_t)n * 3;
	c->uclock_error_ns = (int64_t)n + 7;
	c->drift_mult = n ^ 0x5555;
	c->disruptions = n * 11;
	c->vm_marker = ~n;
	c->status = (uint32_t)n;
	c->source = (uint32_t)(n >> 32);
	c->drift_ppb = (uint32_t)n * 5;
	c->flags = (uint32_t)n ^ 1;
}

static void *writer(void *arg)
{
	struct uclock__bounds_copy c;

	(void)arg;
	for (uint64_t n = 1; !__atomic_load_n(&done, __ATOMIC_RELAXED); n++) {
		copy_for(n * 0x100000001ull, &c);
		uclock__bounds_store(&shared, &c);
	}
	return NULL;
}

static void latch(void)
{
	pthread_t t;
	struct uclock__bounds_copy got, want;
	long torn = 0, reads = 0;
	uint64_t last = 0, back = 0;

	copy_for(0x100000001ull, &want);
	uclock__bounds_store(&shared, &want);
	pthread_create(&t, NULL, writer, NULL);
	double end = elapsed_s() + 0.5;
	while (elapsed_s() < end) {
		for (int i = 0; i < 1000; i++, reads++) {
			uclock__bounds_load(&shared, &got);
			copy_for((uint64_t)got.as_of_ns, &want);
			torn += memcmp(&got, &want, sizeof(got)) != 0;
			back += (uint64_t)got.as_of_ns < last;
			last = (uint64_t)got.as_of_ns;
		}
	}
	__atomic_store_n(&done, 1, __ATOMIC_RELAXED);
	pthread_join(t, NULL);
	CHECK(torn == 0, "%ld of %ld copies read half written", torn, reads);
	CHECK(back == 0, "%llu reads older than one before", (unsigned long long)back);
	printf("latch: %ld reads against a writer, none torn\n", reads);
}

int main(void)
{
	interval();
	disruptions();
	never_shrinks();
	free_running();
	timex();
	rates();
	latch();
	return check_done("bounds");
}
