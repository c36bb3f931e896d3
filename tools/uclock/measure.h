/*
 * The one measurement engine: the cost per call of methods[], side by
 * side in one process.  uclock bench (and so make bench) and the report
 * measure with it; measure.c says how, and why.
 */
#ifndef UCLOCK_MEASURE_H
#define UCLOCK_MEASURE_H

#include "methods.h"

#define MEASURE_BATCH_NS 100000  /* one batch: about 100 us of calls */

/* One method's cost. */
struct cost {
	const struct method *m;
	const struct cost *reference;  /* its vDSO reference's, if measured */
	const char *why;               /* NULL if measured; else why not */
	long batch;                    /* calls per batch */
	double *ns;                    /* per-call ns in each round */
	double median, p99;
};

struct costs {
	struct cost *cost;             /* one per method, in methods[] order */
	int rounds, capacity;
	double seconds;                /* the rounds' elapsed time */
};

/*
 * Measures for 'seconds' the methods named in 'names' (NULL-terminated;
 * NULL: every method) that can run here.  On a terminal, progress goes
 * from 0 to 'share' of the bar (0: no progress shown).  0, or -1 when out
 * of memory.  costs_free() in either case.
 */
int costs_measure(struct costs *c, const char *const *names, double seconds,
		  double share);
void costs_free(struct costs *c);
/* The cost of the method so named, NULL if it was not measured. */
const struct cost *cost_of(const struct costs *c, const char *name);
/* Its median over its reference's; NAN if either was not measured. */
double cost_ratio(const struct cost *cost);

#endif
