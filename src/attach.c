/*
 * The process and uclockd's shared page.
 *
 * Readers always read the process's own page (uclock__page).  Attached,
 * the own page mirrors the shared one: the slow path copies the shared
 * page's current copy in, and readers use it until the copy's keep (the
 * writer updates sooner, with lines not below these until then) and for at
 * most REFRESH_NS (to follow a REALTIME step); then the slow path takes
 * the next copy, or, while there is none (a writer late), reads the shared
 * page itself.  Every new copy is checked before it is mirrored: lines
 * that can be right, and this process's own kernel clocks on them (the
 * same time namespace).
 *
 * The page is found at the first read, the only time this file makes
 * system calls (lstat, open, fstat, mmap, close, and a read of
 * /proc/self/timens_offsets), and kept mapped for the life of the process:
 * uclockd keeps the same file across restarts, so a process follows a
 * restarted daemon by looking at memory, never by opening anything again.
 *
 * Handing readers over either way must not let any clock go back:
 *  - onto the page: the own timekeeper first converges to just below the
 *    page's lines (sampling it instead of the kernel), then the copy is
 *    mirrored: a step forward of a few ns;
 *  - off it (its writer stopped, died or hung, or a copy that cannot be
 *    right): the own timekeeper warms up again with floors at the highest
 *    values the process can have read from the page: its lines at the
 *    moment one thread moves readers off (every reading from the page by
 *    another thread came before; see uclock__shared_usable()).  Threads
 *    that come meanwhile take the kernel's answer raised to the lines where
 *    they are themselves, valid only if readers were not moved meanwhile;
 *  - this process's clocks are not the page's (it moved to another time
 *    namespace): the kernel's clocks jumped for it; no floors.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define REFRESH_NS 10000000LL    /* a mirrored copy is taken again after this */
#define LOOK_NS 1000000000LL     /* not attached: look at the page after this */
#define DEFAULT_DIR "/run/uclock"
#define DEFAULT_PAGE DEFAULT_DIR "/page"

static const struct uclock__page *mapped; /* found at the first read; for life */
int uclock__attached_flag;
static int looking;                      /* mapped, and worth looking at */
static char path[PATH_MAX];
static char why[512] = "not looked for";
static int64_t next_look_ns;
static uint32_t mirrored_seq;            /* the shared page's seq last mirrored */
/* The first look: the copy (its seq) this process's clocks were on. */
static struct {
	uint32_t seq;
	int on_lines;
} looked;
/* Attached: 'why' says so once asked (the first read does no formatting).
 * Each attach is a generation; the text is of the one it names. */
static struct {
	unsigned gen, text_gen;
	int pid;
} attach_text;

const char *uclock__attach_path(void)
{
	return uclock__attached() ? path : NULL;
}

const char *uclock__attach_reason(void)
{
	if (!uclock__attached())
		return why;
	if (!uclock__tk_take(&uclock__global))
		return "attached to uclockd's page";
	if (uclock__attached() && attach_text.text_gen != attach_text.gen) {
		snprintf(why, sizeof(why), "attached to %.200s (uclockd pid %d)", path,
			 attach_text.pid);
		attach_text.text_gen = attach_text.gen;
	}
	uclock__tk_give(&uclock__global);
	return why;
}

int uclock__attach_writer(void)
{
	return uclock__attached() ? mapped->writer_pid : 0;
}

const struct uclock__page *uclock__attach_page(void)
{
	return uclock__attached() ? mapped : NULL;
}

static int64_t coarse_now(void)
{
	struct timespec ts;

	if (uclock__kernel_gettime(CLOCK_MONOTONIC_COARSE, &ts) != 0)
		return 0;
	return uclock__ts_to_ns(&ts);
}

static int usable(struct uclock_tk *tk, struct uclock__copy *s, uint64_t *now,
		  uint32_t *seq)
{
	return uclock__shared_usable(mapped, s, now, tk->ops.counter, tk->ops.ctx, seq);
}

/* The own page holds this copy of the shared page already. */
static int same_copy(const struct uclock__copy *a, const struct uclock__copy *b)
{
	return a->mode == b->mode && a->cycle_last == b->cycle_last &&
	       a->mult == b->mult && a->frac == b->frac && a->raw_mult == b->raw_mult &&
	       a->raw_frac == b->raw_frac && a->base_mono == b->base_mono &&
	       a->base_raw == b->base_raw && a->base_real == b->base_real &&
	       a->base_boot == b->base_boot && a->base_tai == b->base_tai &&
	       a->hard == b->hard && a->keep == b->keep;
}

/* How far readers may use a copy of s, read at 'age': its keep, and
 * REFRESH_NS at most; 0 if past its keep already. */
static uint64_t mirror_limit(const struct uclock__copy *s, uint64_t age)
{
	uint64_t until = age + (uint64_t)(((u128)REFRESH_NS << 32) / s->raw_mult);

	if (until > s->keep)
		until = s->keep;
	return until > age ? until : 0;
}

/*
 * Put a copy of the shared page (read at 'now', its seq 'seq') on the own
 * page, for readers to use until mirror_limit(); past its keep already,
 * with limit 0: readers then read the shared page itself.  Caller holds
 * the update lock.
 */
static void mirror(struct uclock_tk *tk, const struct uclock__copy *s, uint32_t seq,
		   uint64_t now)
{
	struct uclock__copy own, m = *s;

	m.limit = mirror_limit(s, now - s->cycle_last);
	m.flags = 0;
	m.knots = 0; /* the shared page's: conversions go there (clock.c) */
	__atomic_store_n(&mirrored_seq, seq, __ATOMIC_RELAXED);
	uclock__copy_load(tk->page, &own);
	if (m.limit == 0 && own.limit == 0 && !(own.flags & UCLOCK__CHECK) &&
	    same_copy(&own, s))
		return;
	uclock__tk_publish(tk, &m);
}

static void attached_to(struct uclock_tk *tk, const struct uclock__copy *s, uint32_t seq,
			uint64_t now)
{
	mirror(tk, s, seq, now);
	attach_text.pid = mapped->writer_pid;
	attach_text.gen++;
	__atomic_store_n(&uclock__attached_flag, 1, __ATOMIC_RELEASE);
}

/* Readers off the page, onto the own timekeeper.  Caller holds the lock. */
static void detached(struct uclock_tk *tk, const struct uclock__copy *from,
		     const char *reason)
{
	uclock__tk_adopt(tk, from, UCLOCK_LEAVING);
	snprintf(why, sizeof(why), "%.200s %s (uclockd pid %d)", path, reason,
		 mapped->writer_pid);
	__atomic_store_n(&uclock__attached_flag, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&next_look_ns, coarse_now() + LOOK_NS, __ATOMIC_RELAXED);
}

/*
 * This process reads the clocks the writer read: 1 if so, 0 if not, -1 if
 * it cannot be told.  By the clocks themselves, with a usable copy 's'
 * whose lines this process's MONOTONIC and BOOTTIME lie on (else NULL):
 * the kernel's REALTIME - MONOTONIC, exact from the coarse clocks
 * (one tick's time), equal to the copy's (another namespace moves
 * MONOTONIC, not REALTIME).  Else, or if they disagree (REALTIME set since
 * the copy), the offsets in /proc/self/timens_offsets against the
 * writer's.
 */
static int same_namespace(const struct uclock__page *page, const struct uclock__copy *s)
{
	int64_t mono, boot;

	if (s) {
		for (int i = 0; i < 4; i++) {
			struct timespec m1, r, m2;

			if (uclock__kernel_gettime(CLOCK_MONOTONIC_COARSE, &m1) ||
			    uclock__kernel_gettime(CLOCK_REALTIME_COARSE, &r) ||
			    uclock__kernel_gettime(CLOCK_MONOTONIC_COARSE, &m2))
				break;
			if (uclock__ts_to_ns(&m1) != uclock__ts_to_ns(&m2))
				continue;
			if (uclock__ts_to_ns(&r) - uclock__ts_to_ns(&m1) ==
			    s->base_real - s->base_mono)
				return 1;
			break;
		}
	}
	if (uclock__timens_offsets(&mono, &boot) != 0)
		return -1;
	return mono == page->timens_monotonic_ns && boot == page->timens_boottime_ns;
}

/*
 * At the first read, before the trust policy decides: find the page and
 * map it, and pass on uclockd's verdict on the counter across CPUs if it keeps
 * the page (it checked every CPU; this process cannot).
 */
void uclock__attach_look(struct uclock_trust_facts *facts)
{
	const char *env = secure_getenv("UCLOCK_PAGE");

	if (env && strcmp(env, "off") == 0) {
		snprintf(why, sizeof(why), "UCLOCK_PAGE=off");
		return;
	}
	if (env && *env) {
		if (strlen(env) >= sizeof(path)) {
			snprintf(why, sizeof(why), "UCLOCK_PAGE is longer than %zu bytes: "
				 "no page looked for", sizeof(path) - 1);
			return;
		}
		strcpy(path, env);
	} else {
		strcpy(path, DEFAULT_PAGE);
		if (!uclock__trusted_dir(DEFAULT_DIR, path, why, sizeof(why)))
			return;
	}
	const struct uclock__page *page = uclock__shared_open(path, why, sizeof(why));
	if (!page)
		return;
	struct uclock__copy s;
	uint64_t now;
	uint32_t seq;
	int fresh = uclock__shared_usable(page, &s, &now, uclock__read_fenced, NULL, &seq);
	int on_lines = fresh && uclock__copy_matches_kernel(&s, uclock__read_fenced, NULL) == 1;
	int ns = same_namespace(page, on_lines ? &s : NULL);
	if (ns <= 0) {
		snprintf(why, sizeof(why), ns < 0 ? "%.200s: this process's time namespace "
						    "cannot be checked (no /proc): in-process"
						  : "%.200s: this process is in another time "
						    "namespace than uclockd (pid %d)",
			 path, page->writer_pid);
		uclock__shared_unmap(page);
		return;
	}
	mapped = page;
	if (on_lines) {
		looked.seq = seq;
		looked.on_lines = 1;
	}
	if (__atomic_load_n(&page->state, __ATOMIC_ACQUIRE) == UCLOCK__LIVE) {
		facts->sync = (enum uclock_tsc_sync_verdict)__atomic_load_n(&page->tsc_sync,
									     __ATOMIC_RELAXED);
		facts->sync_cpus = (int)page->tsc_cpus;
		facts->sync_warp_ns = page->tsc_warp_ns;
		if (fresh && facts->sync != UCLOCK_SYNC_NO && page->ordered_read) {
			facts->page_pid = page->writer_pid;
			facts->page_read = (int)page->ordered_read;
		}
	}
}

/* The counter is not used here: no page either. */
void uclock__attach_drop(void)
{
	if (!mapped)
		return;
	uclock__shared_unmap(mapped);
	mapped = NULL;
	snprintf(why, sizeof(why), "the " UCLOCK__COUNTER_TEXT " is not used: no page");
}

/* After the look, the counter trusted: attach at once if the page is usable
 * (nothing read yet: nothing to converge to), else keep looking at it. */
void uclock__attach_init(struct uclock_tk *tk)
{
	const struct uclock__page *page = mapped;

	if (!page)
		return;
	looking = 1;
	__atomic_store_n(&next_look_ns, coarse_now() + LOOK_NS, __ATOMIC_RELAXED);

	struct uclock__copy s;
	uint64_t now;
	uint32_t seq;
	int fresh = usable(tk, &s, &now, &seq);
	/* The copy the look found this process's clocks on (the same seq:
	 * the same lines, not rewritten since), else check this one. */
	int ours = fresh && ((looked.on_lines && seq == looked.seq) ||
			     uclock__copy_matches_kernel(&s, tk->ops.counter, tk->ops.ctx) == 1);
	if (ours && uclock__tk_take(tk)) {
		attached_to(tk, &s, seq, now);
		uclock__tk_give(tk);
		return;
	}
	const char *state =
		__atomic_load_n(&page->state, __ATOMIC_ACQUIRE) == UCLOCK__STOPPED
			? "is marked stopped (uclockd pid %d exited)"
		: s.mode == UCLOCK_MODE_COUNTER && !uclock__copy_plausible(&s)
			? "holds lines that cannot be right (rate or spans; uclockd pid %d)"
		: fresh ? "has lines this process's clocks are not on (uclockd pid %d "
			  "reads other clocks)"
			: "is not being updated (uclockd pid %d stopped or hung)";
	char text[128];

	snprintf(text, sizeof(text), state, page->writer_pid);
	snprintf(why, sizeof(why), "%.200s %s: in-process, looking at it again", path, text);
}

/*
 * uclockd's latest check found the counter out of step across CPUs: stop
 * reading it, here too (raised to floors: no clock goes back), and stop
 * looking at the page.  1 if so.  Caller holds the lock.
 */
static int out_of_step(struct uclock_tk *tk)
{
	char text[200];

	if (__atomic_load_n(&mapped->tsc_sync, __ATOMIC_ACQUIRE) != UCLOCK_SYNC_NO)
		return 0;
	snprintf(text, sizeof(text), "uclockd (pid %d) found the " UCLOCK__COUNTER_TEXT
		 " out of step across CPUs (%lld ns apart): passing through to the kernel",
		 mapped->writer_pid, (long long)mapped->tsc_warp_ns);
	uclock__tk_give_up(tk, text);
	snprintf(why, sizeof(why), "%.200s: left, the " UCLOCK__COUNTER_TEXT " out of step",
		 path);
	looking = 0;
	__atomic_store_n(&uclock__attached_flag, 0, __ATOMIC_RELEASE);
	return 1;
}

/*
 * Take the shared page's copy onto the own page, after checking that this
 * process still reads the clocks it was made from.  1 if the process left
 * the page instead.  Caller holds the lock.
 */
static int refresh(struct uclock_tk *tk, const struct uclock__copy *s, uint32_t seq,
		   uint64_t now)
{
	struct uclock__copy own;

	if (out_of_step(tk))
		return 1;
	uclock__copy_load(tk->page, &own);
	/* The same lines again (a REFRESH_NS look): checked already. */
	int known = !(own.flags & UCLOCK__CHECK) && same_copy(&own, s);
	switch (known ? 1 : uclock__copy_matches_kernel(s, tk->ops.counter, tk->ops.ctx)) {
	case 1:
		mirror(tk, s, seq, now);
		return 0;
	case 0:
		detached(tk, NULL, "is kept in another time namespace than this "
				   "process's: in-process");
		looking = 0;
		return 1;
	default:
		return 0; /* the kernel's clock failed: read the page itself */
	}
}

/*
 * A copy readers leave may be believed for floors: lines that can be right
 * (or a warm-up copy, which carries floors), on which this process's own
 * clocks lie, extrapolated as far as they must be (see
 * uclock__copy_matches_kernel(): the slack grows with the copy's age).
 */
static int believable(struct uclock_tk *tk, const struct uclock__copy *s)
{
	if (s->mode == UCLOCK_MODE_COUNTER ? !uclock__copy_plausible(s)
					   : s->mode != UCLOCK_MODE_WARMUP)
		return 0;
	return uclock__copy_matches_kernel(s, tk->ops.counter, tk->ops.ctx) == 1;
}

/*
 * What a thread gets while another moves readers off the page: the
 * kernel's answer raised to the page's lines where this thread is (at most
 * at 'hard'), or to the floors a warm-up copy carries.  The one moving
 * readers sets floors at least that high, if it flips the own page after
 * this thread looked at it; if it flipped before, read again, there.
 */
static int64_t floored_kernel(struct uclock_tk *tk, uint32_t own_seq,
			      const struct uclock__copy *from, uint64_t now, enum slot slot)
{
	struct timespec ts;
	int64_t k, floor = INT64_MIN;

	if (uclock__kernel_gettime(clock_of(slot), &ts) != 0)
		return INT64_MIN;
	k = uclock__ts_to_ns(&ts);
	if (from && from->mode == UCLOCK_MODE_COUNTER) {
		uint64_t delta = now - from->cycle_last;
		floor = uclock__copy_value(from, slot, delta < from->hard ? delta : from->hard);
	} else if (from) {
		floor = uclock__copy_floor(from, slot);
	}
	if (uclock__seq_changed(tk->page, own_seq))
		return uclock__tk_read(tk, slot);
	return uclock__floored(k, floor, slot);
}

/*
 * The own copy ran out at REFRESH_NS while the shared page still holds the
 * copy it was made from, live, before the copy's keep: let it serve on
 * (its limit raised in place; nothing else to check).  1 if it does.
 */
static int serve_on(struct uclock_tk *tk, uint32_t own_seq, const struct uclock__copy *own,
		    uint64_t delta)
{
	uint32_t seq = __atomic_load_n(&mapped->seq, __ATOMIC_ACQUIRE);
	uint64_t limit = mirror_limit(own, delta);

	if (limit == 0 || seq != __atomic_load_n(&mirrored_seq, __ATOMIC_RELAXED) ||
	    __atomic_load_n(&mapped->state, __ATOMIC_ACQUIRE) != UCLOCK__LIVE ||
	    __atomic_load_n(&mapped->tsc_sync, __ATOMIC_ACQUIRE) == UCLOCK_SYNC_NO ||
	    !uclock__tk_take(tk))
		return 0;
	int ok = !uclock__seq_changed(tk->page, own_seq) &&
		 !uclock__seq_changed(mapped, seq);
	if (ok)
		uclock__copy_raise_limit(tk->page, own_seq, limit);
	uclock__tk_give(tk);
	return ok;
}

/*
 * The slow path, attached: the own copy has run out (or was made in a
 * parent process: check it).  Take the page's current copy if there is a
 * usable one, and read it; otherwise leave the page.
 */
int64_t uclock__shared_slot(struct uclock_tk *tk, enum slot slot)
{
	struct uclock__copy own, s;
	uint64_t now;
	uint32_t seq, own_seq = uclock__copy_load_at(tk->page, &own, tk->ops.counter,
						     tk->ops.ctx, &now);
	uint64_t delta = now - own.cycle_last;
	if (own.mode == UCLOCK_MODE_COUNTER && delta < own.limit &&
	    !(own.flags & UCLOCK__CHECK))
		return uclock__copy_value(&own, slot, delta); /* refreshed meanwhile */
	if (!uclock__attached())
		return uclock__tk_read(tk, slot);
	if (own.mode == UCLOCK_MODE_COUNTER && !(own.flags & UCLOCK__CHECK) &&
	    serve_on(tk, own_seq, &own, delta))
		return uclock__copy_value(&own, slot, delta);
	if (usable(tk, &s, &now, &seq)) {
		int left = 0;

		/* Past its keep, mirrored and checked: the writer is late. */
		if (own.mode == UCLOCK_MODE_COUNTER && own.limit == 0 &&
		    !(own.flags & UCLOCK__CHECK) && same_copy(&own, &s))
			return uclock__copy_value(&s, slot, now - s.cycle_last);

		if (uclock__tk_take(tk)) {
			left = uclock__attached() && refresh(tk, &s, seq, now);
			uclock__tk_give(tk);
		}
		if (left)
			return uclock__tk_read(tk, slot);
		return uclock__copy_value(&s, slot, now - s.cycle_last);
	}
	/* Stopped, stale, or not plausible: floors from its copy if it can
	 * be believed, none if not (nor if this process is not in the
	 * writer's time namespace: a child that moved since it last looked). */
	const struct uclock__copy *from = believable(tk, &s) ? &s : NULL;
	if (!uclock__tk_take(tk))
		return floored_kernel(tk, own_seq, from, now, slot);
	if (uclock__attached())
		detached(tk, from,
			 __atomic_load_n(&mapped->state, __ATOMIC_ACQUIRE) == UCLOCK__STOPPED
				 ? "was stopped: in-process until it is kept again"
			 : s.mode == UCLOCK_MODE_COUNTER && !uclock__copy_plausible(&s)
				 ? "holds lines that cannot be right: in-process"
				 : "stopped being updated: in-process until it is again");
	uclock__tk_give(tk);
	return uclock__tk_read(tk, slot);
}

/*
 * Not attached, the page mapped: now and then look at it (memory only);
 * once it is kept again, converge to it, and hand readers over when the
 * own lines are just below its.
 */
void uclock__reattach_maybe(struct uclock_tk *tk)
{
	const struct uclock__page *target;
	struct uclock__copy s;
	uint64_t now;
	uint32_t seq;

	if (!looking || uclock__attached())
		return;
	target = __atomic_load_n(&tk->target, __ATOMIC_ACQUIRE);
	if (target && __atomic_load_n(&tk->target_close, __ATOMIC_RELAXED) >= 2) {
		if (!uclock__tk_take(tk))
			return;
		if (__atomic_load_n(&tk->target, __ATOMIC_RELAXED) == target &&
		    __atomic_load_n(&tk->target_close, __ATOMIC_RELAXED) >= 2 &&
		    usable(tk, &s, &now, &seq) &&
		    uclock__copy_matches_kernel(&s, tk->ops.counter, tk->ops.ctx) == 1) {
			__atomic_store_n(&tk->target, NULL, __ATOMIC_RELEASE);
			attached_to(tk, &s, seq, now);
		}
		uclock__tk_give(tk);
		return;
	}
	if (target)
		return;
	int64_t t = coarse_now();
	if (t < __atomic_load_n(&next_look_ns, __ATOMIC_RELAXED) || !uclock__tk_take(tk))
		return;
	__atomic_store_n(&next_look_ns, t + LOOK_NS, __ATOMIC_RELAXED);
	if (out_of_step(tk)) {
		uclock__tk_give(tk);
		return;
	}
	if (!__atomic_load_n(&tk->target, __ATOMIC_RELAXED) && usable(tk, &s, &now, NULL) &&
	    uclock__copy_matches_kernel(&s, tk->ops.counter, tk->ops.ctx) == 1) {
		__atomic_store_n(&tk->target_close, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&tk->target, mapped, __ATOMIC_RELEASE);
		snprintf(why, sizeof(why), "found %.200s kept again (uclockd pid %d): "
					   "converging before attaching", path,
			 mapped->writer_pid);
	}
	uclock__tk_give(tk);
}
