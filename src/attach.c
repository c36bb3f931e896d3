/*
 * Attaching the process to uclockd's shared page, and leaving it.
 *
 * Readers always read through one pointer (uclock__page): the library's
 * own page, or the shared one.  Handing them over either way must not let
 * any clock go back:
 *  - to the shared page: the process's own timekeeper first converges to
 *    just below the shared page's lines (sampling it instead of the
 *    kernel), then the pointer moves: a step forward of a few ns;
 *  - back from it (its writer stopped, died or hung: its line is older
 *    than 'hard'): the own timekeeper warms up again with the shared
 *    page's floors, the highest values its readers can have had.
 * A process not attached looks for the page again about once a second.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define RETRY_NS 1000000000LL    /* look for a page again after this */
#define DEFAULT_PAGE "/run/uclock/page"

static const struct uclock__page *shared;  /* the page readers are on */
int uclock__attached_flag;
static int enabled;
static char path[256];
static char why[512] = "not looked for";
static int64_t next_try_ns;

/* The library's own reads go through this one (hidden: no GOT), kept
 * equal to the exported uclock__page the header's inline readers use. */


static void set_active(const struct uclock__page *page)
{
	__atomic_store_n(&uclock__active_page, page, __ATOMIC_RELEASE);
	__atomic_store_n((const struct uclock__page **)&uclock__page, page,
			 __ATOMIC_RELEASE);
}

static const struct uclock__page *current(void)
{
	return __atomic_load_n(&shared, __ATOMIC_ACQUIRE);
}

const char *uclock__attach_path(void)
{
	return uclock__attached() ? path : NULL;
}

const char *uclock__attach_reason(void)
{
	return why;
}

int uclock__attach_writer(void)
{
	return uclock__attached() ? current()->writer_pid : 0;
}

static int64_t coarse_now(void)
{
	struct timespec ts;

	if (uclock__kernel_gettime(CLOCK_MONOTONIC_COARSE, &ts) != 0)
		return 0;
	return uclock__ts_to_ns(&ts);
}

/* A page that passes every check and is being kept, or NULL and why. */
static const struct uclock__page *find_page(struct uclock_tk *tk)
{
	const struct uclock__page *page = uclock__shared_map(path, why, sizeof(why));

	if (page && !uclock__shared_fresh(page, tk->ops.counter(tk->ops.ctx))) {
		snprintf(why, sizeof(why), "%.200s is not being updated (uclockd pid %d "
					   "stopped or hung)", path, page->writer_pid);
		uclock__shared_unmap(page);
		page = NULL;
	}
	return page;
}

static void attached_to(const struct uclock__page *page)
{
	__atomic_store_n(&shared, page, __ATOMIC_RELEASE);
	snprintf(why, sizeof(why), "attached to %.200s (uclockd pid %d)", path,
		 page->writer_pid);
	__atomic_store_n(&uclock__attached_flag, 1, __ATOMIC_RELEASE);
	set_active(page);
}

/* At start, before any reading: nothing to converge, attach at once. */
void uclock__attach_init(struct uclock_tk *tk)
{
	const char *env = secure_getenv("UCLOCK_PAGE");

	enabled = !(env && strcmp(env, "off") == 0);
	if (!enabled) {
		snprintf(why, sizeof(why), "UCLOCK_PAGE=off");
		return;
	}
	snprintf(path, sizeof(path), "%s", env && *env ? env : DEFAULT_PAGE);
	const struct uclock__page *page = find_page(tk);
	if (page)
		attached_to(page);
	__atomic_store_n(&next_try_ns, coarse_now() + RETRY_NS, __ATOMIC_RELAXED);
}

/*
 * The shared page's writer is gone: warm up in-process with its floors,
 * then move readers.  One thread does it (the update lock); the others
 * meanwhile take the kernel's answer raised to the same floors.
 */
static int detach(struct uclock_tk *tk, const struct uclock__copy *last)
{
	if (!uclock__tk_take(tk))
		return -1;
	if (uclock__attached()) {
		uclock__tk_adopt(tk, last);
		snprintf(why, sizeof(why), "%.200s stopped being updated (uclockd pid %d); "
					   "in-process until it is again", path,
			 current()->writer_pid);
		__atomic_store_n(&uclock__attached_flag, 0, __ATOMIC_RELEASE);
		set_active(tk->page);
		__atomic_store_n(&next_try_ns, coarse_now() + RETRY_NS, __ATOMIC_RELAXED);
	}
	uclock__tk_give(tk);
	return 0;
}

static int64_t floored_kernel(const struct uclock__copy *c, enum slot slot)
{
	struct timespec ts;
	int64_t k, floor = INT64_MIN;

	if (uclock__kernel_gettime(clock_of(slot), &ts) != 0)
		return INT64_MIN;
	k = uclock__ts_to_ns(&ts);
	if (c->mode == UCLOCK_MODE_COUNTER && slot != SLOT_REAL && slot != SLOT_TAI) {
		uint64_t mult = slot == SLOT_RAW ? c->raw_mult : c->mult;
		uint64_t frac = slot == SLOT_RAW ? c->raw_frac : c->frac;
		int64_t base = slot == SLOT_RAW ? c->base_raw
			     : slot == SLOT_BOOT ? c->base_boot : c->base_mono;
		floor = uclock__line(base, frac, mult, c->hard);
	}
	return k > floor ? k : floor;
}

/*
 * The slow path on the shared page.  Readers cannot update it: up to
 * 'hard' they extrapolate its line; past that, or when it is marked
 * stopped, the process takes over.
 */
int64_t uclock__shared_slot(struct uclock_tk *tk, enum slot slot)
{
	const struct uclock__page *page = current();
	struct uclock__copy c;
	uint64_t now;

	uclock__copy_load_at(page, &c, tk->ops.counter, tk->ops.ctx, &now);
	uint64_t delta = now - c.cycle_last;
	if (__atomic_load_n(&page->state, __ATOMIC_ACQUIRE) == UCLOCK__LIVE &&
	    c.mode == UCLOCK_MODE_COUNTER) {
		/* A CPU a little behind the anchor: clamp, as in-process. */
		if ((int64_t)delta < 0 && c.cycle_last - now <= c.hard / 256)
			delta = 0;
		if (delta <= c.hard)
			return uclock__copy_value(&c, slot, delta);
	}
	if (detach(tk, &c) != 0 && uclock__attached())
		return floored_kernel(&c, slot);
	return uclock__tk_read(tk, slot);
}

/*
 * Not attached: now and then look for the page; once found, converge to
 * it, and hand readers over when the own lines are just below its.
 */
void uclock__reattach_maybe(struct uclock_tk *tk)
{
	const struct uclock__page *target;

	if (!enabled || uclock__attached())
		return;
	target = __atomic_load_n(&tk->target, __ATOMIC_ACQUIRE);
	if (target && __atomic_load_n(&tk->target_close, __ATOMIC_RELAXED) >= 2) {
		if (!uclock__tk_take(tk))
			return;
		if (__atomic_load_n(&tk->target, __ATOMIC_RELAXED) == target &&
		    __atomic_load_n(&tk->target_close, __ATOMIC_RELAXED) >= 2 &&
		    uclock__shared_fresh(target, tk->ops.counter(tk->ops.ctx))) {
			__atomic_store_n(&tk->target, NULL, __ATOMIC_RELEASE);
			attached_to(target);
		}
		uclock__tk_give(tk);
		return;
	}
	if (target)
		return;
	int64_t now = coarse_now();
	if (now < __atomic_load_n(&next_try_ns, __ATOMIC_RELAXED) || !uclock__tk_take(tk))
		return;
	__atomic_store_n(&next_try_ns, now + RETRY_NS, __ATOMIC_RELAXED);
	if (!__atomic_load_n(&tk->target, __ATOMIC_RELAXED)) {
		const struct uclock__page *page = find_page(tk);
		if (page) {
			__atomic_store_n(&tk->target_close, 0, __ATOMIC_RELAXED);
			__atomic_store_n(&tk->target, page, __ATOMIC_RELEASE);
			snprintf(why, sizeof(why), "found %.200s (uclockd pid %d): converging "
						   "before attaching", path, page->writer_pid);
		}
	}
	uclock__tk_give(tk);
}

/*
 * A fork child shares the mapping; it may be in another time namespace
 * (unshare then fork), and then its clocks are not the page's: it leaves
 * the page, without floors (the kernel's clocks jumped for it).
 */
void uclock__attach_after_fork(struct uclock_tk *tk)
{
	int64_t mono, boot;
	struct uclock__copy none;

	if (!uclock__attached())
		return;
	if (uclock__timens_offsets(&mono, &boot) == 0 &&
	    mono == current()->timens_monotonic_ns &&
	    boot == current()->timens_boottime_ns)
		return;
	memset(&none, 0, sizeof(none));
	uclock__tk_adopt(tk, &none);
	snprintf(why, sizeof(why), "%.200s: this process is in another time namespace "
				   "than uclockd", path);
	enabled = 0;
	__atomic_store_n(&uclock__attached_flag, 0, __ATOMIC_RELEASE);
	set_active(tk->page);
}
