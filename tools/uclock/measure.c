/*
 * The cost per call of methods[], side by side in one process: the one
 * measurement engine (uclock bench, make bench, the report).
 *
 * The method, and why:
 *  - Interleaved rounds: each round runs one batch of every method in
 *    turn (about MEASURE_BATCH_NS of calls, sized by a probe: a system
 *    call gets far fewer calls than rdtsc), so that frequency changes,
 *    interrupts and neighbours hit all methods alike.  A method's cost is
 *    its median over the rounds; its ratio, that median over the median
 *    of its reference measured in the same rounds.  Nothing is pinned: a
 *    migration hits every method of its round alike.
 *  - The reference is the kernel's vDSO function for the same clock, found
 *    by the ELF reader and called as a program calls into a shared object
 *    (methods.c): the least a program can pay for the kernel's answer.
 *    The C library's calls are rows of their own: its clock_gettime wraps
 *    the vDSO's (a check of the pointer, an indirect call, a check of the
 *    result), a small part of a fine clock's cost but about half a coarse
 *    clock's.
 *  - Each batch follows one untimed call of the same method: the cost is
 *    that of a program calling steadily, not the update a uclock reader
 *    pays once after the other methods' batches left it idle.
 *  - Nothing is subtracted: a loop's own work (an add, a compare, a
 *    branch) overlaps the call on an out-of-order CPU, so an empty loop
 *    timed alone would not say how much of it to take away.  Every method
 *    runs in the same loop, timed by two clock_gettime calls a batch
 *    (tens of ns in 100 us).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "measure.h"

#define PROBE_CALLS 100          /* the batch timed to size the real ones */
#define BATCH_MAX 10000000L

static int64_t time_calls(const struct method *m, long calls)
{
	int64_t start = clock_ns(CLOCK_MONOTONIC);

	m->run(calls);
	return clock_ns(CLOCK_MONOTONIC) - start;
}

/*
 * Calls per batch so that one batch takes about MEASURE_BATCH_NS.  The
 * probe is the best of three, so that an interrupt does not shrink it.
 */
static long batch_size(const struct method *m)
{
	int64_t best = INT64_MAX;
	double calls;

	m->run(PROBE_CALLS); /* first calls: page faults, symbol lookups */
	for (int i = 0; i < 3; i++) {
		int64_t t = time_calls(m, PROBE_CALLS);

		if (t < best)
			best = t;
	}
	calls = (double)PROBE_CALLS * MEASURE_BATCH_NS / (double)(best > 0 ? best : 1);
	if (calls < 1)
		return 1;
	return calls > BATCH_MAX ? BATCH_MAX : (long)calls;
}

static int named(const char *const *names, const char *name)
{
	if (!names)
		return 1;
	for (; *names; names++)
		if (!strcmp(*names, name))
			return 1;
	return 0;
}

static int prepare(struct costs *c, const char *const *names)
{
	c->cost = calloc((size_t)method_count, sizeof(*c->cost));
	if (!c->cost)
		return -1;
	for (int i = 0; i < method_count; i++) {
		struct cost *r = &c->cost[i];
		const char *why;

		r->m = &methods[i];
		if (!named(names, r->m->name))
			r->why = "not measured";
		else if (!method_available(r->m, &why))
			r->why = why;
	}
	for (int i = 0; i < method_count; i++) {
		struct cost *r = &c->cost[i];
		const struct method *ref = method_find(r->m->reference);

		if (ref && !c->cost[ref - methods].why)
			r->reference = &c->cost[ref - methods];
		if (!r->why)
			r->batch = batch_size(r->m);
	}
	return 0;
}

static int grow(struct costs *c)
{
	int capacity = c->capacity ? 2 * c->capacity : 256;

	for (int i = 0; i < method_count; i++) {
		struct cost *r = &c->cost[i];
		double *ns;

		if (r->why)
			continue;
		ns = realloc(r->ns, (size_t)capacity * sizeof(*ns));
		if (!ns)
			return -1;
		r->ns = ns;
	}
	c->capacity = capacity;
	return 0;
}

/* One batch of every measured method in turn, until the time is up. */
static int run_rounds(struct costs *c, double seconds, double share)
{
	int64_t start = clock_ns(CLOCK_MONOTONIC), now;

	do {
		if (c->rounds == c->capacity && grow(c))
			return -1;
		for (int i = 0; i < method_count; i++) {
			struct cost *r = &c->cost[i];

			if (r->why)
				continue;
			r->m->run(1);
			r->ns[c->rounds] = (double)time_calls(r->m, r->batch) /
					   (double)r->batch;
		}
		c->rounds++;
		now = clock_ns(CLOCK_MONOTONIC);
		if (share > 0)
			progress(share * (double)(now - start) / (seconds * 1e9),
				 "interleaved rounds of every method");
	} while ((double)(now - start) < seconds * 1e9);
	c->seconds = (double)(now - start) / 1e9;
	return 0;
}

static void summarize(struct costs *c)
{
	size_t n = (size_t)c->rounds;

	for (int i = 0; i < method_count; i++) {
		struct cost *r = &c->cost[i];

		if (r->why)
			continue;
		qsort(r->ns, n, sizeof(double), compare_double);
		r->median = r->ns[n / 2];
		r->p99 = r->ns[(n * 99 + 99) / 100 - 1]; /* nearest rank */
	}
}

int costs_measure(struct costs *c, const char *const *names, double seconds,
		  double share)
{
	memset(c, 0, sizeof(*c));
	if (prepare(c, names) || run_rounds(c, seconds, share))
		return -1;
	summarize(c);
	return 0;
}

void costs_free(struct costs *c)
{
	for (int i = 0; c->cost && i < method_count; i++)
		free(c->cost[i].ns);
	free(c->cost);
	c->cost = NULL;
}

const struct cost *cost_of(const struct costs *c, const char *name)
{
	const struct method *m = method_find(name);

	if (!m || c->cost[m - methods].why)
		return NULL;
	return &c->cost[m - methods];
}

double cost_ratio(const struct cost *cost)
{
	if (!cost || cost->why || !cost->reference)
		return NAN;
	return cost->median / cost->reference->median;
}
