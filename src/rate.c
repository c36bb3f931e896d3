/*
 * The kernel's rate against the counter, kernel ns << 32 per tick, as the
 * lines follow it: over the longest baseline a history of samples holds
 * (up to BASELINE_NS), which divides the samples' noise, unless the last
 * interval alone shows a new frequency (NTP set one), followed at once.
 * A rate no counter can have (outside UCLOCK__MULT_MIN..MAX) is none.
 *
 * uclock__rate_between() only reads its samples; the histories are the
 * writer's, under the lock.
 */
#include <string.h>

#include "timekeeper_internal.h"

#define RATE_TRACK_PPM 50        /* rate change followed at once */
#define BASELINE_NS 16000000LL   /* rate measured over up to this */

/* Kernel ns << 32 per counter tick between two samples; 0 if unusable. */
uint64_t uclock__rate_between(const struct tk_sample *a,
			      const struct tk_sample *b, uint64_t mask)
{
	int64_t dt = tick_diff(b->tick, a->tick, mask);
	int64_t dk = b->ns - a->ns;

	if (dt <= 0 || dk <= 0)
		return 0;
	i128 r = fx(dk) / dt;
	if (r < UCLOCK__MULT_MIN || r > UCLOCK__MULT_MAX)
		return 0;
	return (uint64_t)r;
}

void uclock__history_start(struct tk_history *h, const struct tk_sample *first)
{
	h->s[0] = *first;
	h->n = 1;
}

/* Keep samples at least BASELINE_NS / TK_HISTORY apart, the oldest going. */
void uclock__history_add(struct tk_history *h, const struct tk_sample *s)
{
	if (h->n && s->ns - h->s[h->n - 1].ns < BASELINE_NS / TK_HISTORY)
		return;
	if (h->n == TK_HISTORY) {
		memmove(&h->s[0], &h->s[1], sizeof(h->s[0]) * (TK_HISTORY - 1));
		h->n--;
	}
	h->s[h->n++] = *s;
}

/*
 * The kernel's rate, over the longest baseline the history holds (sample
 * noise divided by tens of ms), unless the last interval alone shows a
 * change beyond its own noise (NTP set a new frequency): then that, and
 * the baseline starts again from the previous sample.
 */
uint64_t uclock__follow_rate(struct tk_history *h, const struct tk_sample *prev,
			     const struct tk_sample *now, uint64_t est, uint64_t mask)
{
	uint64_t recent = uclock__rate_between(prev, now, mask);
	int64_t dt = tick_diff(now->tick, prev->tick, mask);

	if (recent && dt > 0) {
		i128 d = (i128)recent - (i128)est;
		i128 tolerance = (i128)est * RATE_TRACK_PPM / 1000000 +
				 (i128)est * (i128)(prev->half + now->half + 4) / dt;

		if (d > tolerance || -d > tolerance) {
			uclock__history_start(h, prev);
			uclock__history_add(h, now);
			return recent;
		}
	}
	/* A narrow counter wraps: nothing older than a quarter turn. */
	i128 span = ((i128)(mask >> 2) * est) >> FRAC_BITS;
	while (h->n && (i128)(now->ns - h->s[0].ns) > span) {
		memmove(&h->s[0], &h->s[1], sizeof(h->s[0]) * (size_t)(h->n - 1));
		h->n--;
	}
	if (h->n == 0)
		uclock__history_start(h, prev);
	uint64_t longer = uclock__rate_between(&h->s[0], now, mask);
	uclock__history_add(h, now);
	return longer ? longer : est;
}
