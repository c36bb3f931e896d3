/*
 * The shared page: uclockd keeps one page of conversion parameters in a
 * file, every process maps it read-only, as the kernel's vvar page.  Here:
 * what a reader checks before it trusts a file, what a copy must satisfy
 * before its lines are used, and whether this process reads the clocks the
 * writer read (time namespaces).
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "internal.h"

#define PROC_SUPER_MAGIC 0x9fa0
/* Lines a copy may be used for: seconds (uclockd's spans are under 4 s). */
#define MAX_HARD_NS (10 * NSEC_PER_SEC)
/* How far the kernel's clocks may be from a usable copy's lines before
 * the process is taken to read other clocks (another time namespace): far
 * beyond any steering error, plus NTP's largest slew over the copy's age. */
#define CLOCKS_APART_NS 20000
#define CLOCKS_APART_PPM 1000

_Static_assert(offsetof(struct uclock__page, copy) == 64,
	       "the header is one cache line");
_Static_assert(sizeof(struct uclock__page) <= UCLOCK__PAGE_BYTES,
	       "the page fits the file");

/*
 * Procfs is mounted at /proc, and this process is visible in it: then a
 * missing timens_offsets file means a kernel without time namespaces.
 */
static int proc_shows_self(void)
{
	struct statfs fs;

	return statfs("/proc", &fs) == 0 && fs.f_type == PROC_SUPER_MAGIC &&
	       access("/proc/self/ns", F_OK) == 0;
}

/*
 * The calling process's time namespace offsets (0, 0 on a kernel without
 * time namespaces); -1 if they cannot be known (no /proc).
 */
int uclock__timens_offsets(int64_t *monotonic, int64_t *boottime)
{
	char buf[256];
	int fd = open("/proc/self/timens_offsets", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
	int err = errno;

	if (fd >= 0)
		close(fd);
	*monotonic = *boottime = 0;
	if (n < 0)
		return err == ENOENT && proc_shows_self() ? 0 : -1;
	buf[n] = '\0';
	for (char *line = buf; line && *line;) {
		char name[32];
		long long sec, nsec;

		/* Names on recent kernels, clock ids on older ones. */
		if (sscanf(line, "%31s %lld %lld", name, &sec, &nsec) == 3) {
			int64_t ns = (int64_t)sec * NSEC_PER_SEC + nsec;
			if (!strcmp(name, "monotonic") || !strcmp(name, "1"))
				*monotonic = ns;
			else if (!strcmp(name, "boottime") || !strcmp(name, "7"))
				*boottime = ns;
		}
		line = strchr(line, '\n');
		line = line ? line + 1 : NULL;
	}
	return 0;
}

/*
 * Lines that can be right: a counter between 1 kHz and 100 GHz (the bounds
 * calibration uses) for both slopes, within 10 % of each other, spans of
 * seconds at most, a limit the fast readers' 64-bit arithmetic holds, and
 * the split bases equal to the bases.  A copy that fails is never used:
 * no clock is held still, or run wild, by a page that says so.
 */
int uclock__copy_plausible(const struct uclock__copy *c)
{
	const int64_t base[] = {[SLOT_REAL] = c->base_real, [SLOT_MONO] = c->base_mono,
				[SLOT_RAW] = c->base_raw, [SLOT_BOOT] = c->base_boot,
				[SLOT_TAI] = c->base_tai};

	if (c->mode != UCLOCK_MODE_COUNTER || c->mask != UINT64_MAX)
		return 0;
	if (c->mult < UCLOCK__MULT_MIN || c->mult > UCLOCK__MULT_MAX ||
	    c->raw_mult < UCLOCK__MULT_MIN || c->raw_mult > UCLOCK__MULT_MAX ||
	    (u128)c->mult * 10 > (u128)c->raw_mult * 11 ||
	    (u128)c->mult * 11 < (u128)c->raw_mult * 10)
		return 0;
	if (c->frac > UINT32_MAX || c->raw_frac > UINT32_MAX || c->keep > c->limit ||
	    c->limit > c->hard || ((u128)c->hard * c->raw_mult >> 32) > (u128)MAX_HARD_NS)
		return 0;
	if ((u128)c->limit * c->mult + c->frac > UINT64_MAX ||
	    (u128)c->limit * c->raw_mult + c->raw_frac > UINT64_MAX)
		return 0;
	for (int i = 0; i < SLOT_NONE; i++) {
		if (c->nsec[i] >= NSEC_PER_SEC ||
		    (i128)c->sec[i] * NSEC_PER_SEC + c->nsec[i] != base[i])
			return 0;
	}
	return 1;
}

/*
 * A copy of a live page, its counter value, and whether readers may use
 * it now: plausible, and no older than 'hard' (a CPU slightly behind its
 * anchor reads it at the anchor).  The page's state is read after the
 * counter, so that a reader which finds it live used the copy no later
 * than any thread that finds it stopped.  'seq' (if not NULL): the page's
 * seq for that copy.
 */
int uclock__shared_usable(const struct uclock__page *page, struct uclock__copy *c,
			  uint64_t *now, uint64_t (*counter)(void *), void *ctx,
			  uint32_t *seq)
{
	uint32_t at = uclock__copy_load_at(page, c, counter, ctx, now);

	if (seq)
		*seq = at;
	uclock__counter_then_loads();
	if (__atomic_load_n(&page->state, __ATOMIC_ACQUIRE) != UCLOCK__LIVE ||
	    !uclock__copy_plausible(c))
		return 0;
	uint64_t delta = *now - c->cycle_last;
	if ((int64_t)delta < 0 && c->cycle_last - *now <= c->hard / 256)
		*now = c->cycle_last;
	return *now - c->cycle_last <= c->hard;
}

/*
 * This process reads the clocks the copy was made from: the kernel's
 * MONOTONIC and BOOTTIME, each read between two counter values, lie on the
 * copy's lines.  Another time namespace puts them seconds away.  1 if they
 * do, 0 if not, -1 if the kernel's clock failed.
 */
int uclock__copy_matches_kernel(const struct uclock__copy *c,
				uint64_t (*counter)(void *), void *ctx)
{
	static const enum slot slots[] = {SLOT_MONO, SLOT_BOOT};

	for (unsigned i = 0; i < sizeof(slots) / sizeof(slots[0]); i++) {
		struct timespec ts;
		uint64_t c0 = counter(ctx);
		int rc = uclock__kernel_gettime(clock_of(slots[i]), &ts);
		uint64_t c1 = counter(ctx);

		if (rc != 0)
			return -1;
		uint64_t d0 = c0 - c->cycle_last, d1 = c1 - c->cycle_last;
		if ((int64_t)d0 < 0)
			d0 = 0;
		if ((int64_t)d1 < 0)
			d1 = 0;
		int64_t age = (int64_t)((u128)d1 * c->raw_mult >> 32);
		int64_t slack = CLOCKS_APART_NS + age / (1000000 / CLOCKS_APART_PPM);
		int64_t k = uclock__ts_to_ns(&ts);

		if (k < uclock__copy_value(c, slots[i], d0) - slack ||
		    k > uclock__copy_value(c, slots[i], d1) + slack)
			return 0;
	}
	return 1;
}

/*
 * Open a page file without blocking or side effects: only a regular file
 * is opened at all (a FIFO would block, a device might act), and the file
 * opened must be the one examined.  Then trust it only if it is owned by
 * root or by us, writable by its owner alone, of the page's size (a short
 * file is refused before it is mapped: no SIGBUS), and map it read-only
 * and check magic, layout version and counter.
 */
const struct uclock__page *uclock__shared_open(const char *path, char *why,
					       size_t size)
{
	struct stat seen, st;
	int fd;

	if (lstat(path, &seen) != 0) {
		snprintf(why, size, "no page at %.200s (%s)", path, strerror(errno));
		return NULL;
	}
	if (!S_ISREG(seen.st_mode)) {
		snprintf(why, size, "%.200s is not a regular file", path);
		return NULL;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		snprintf(why, size, "cannot open %.200s (%s)", path, strerror(errno));
		return NULL;
	}
	int refused = 1;

	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_dev != seen.st_dev ||
	    st.st_ino != seen.st_ino)
		snprintf(why, size, "%.200s changed while it was opened", path);
	else if (st.st_uid != 0 && st.st_uid != geteuid())
		snprintf(why, size, "%.200s is owned by uid %u, neither root nor uid %u", path,
			 (unsigned)st.st_uid, (unsigned)geteuid());
	else if (st.st_mode & (S_IWGRP | S_IWOTH))
		snprintf(why, size, "%.200s is writable by others than its owner (mode %o)",
			 path, (unsigned)(st.st_mode & 07777));
	else if (st.st_size != UCLOCK__PAGE_BYTES)
		snprintf(why, size, "%.200s is %lld bytes, not %u", path, (long long)st.st_size,
			 UCLOCK__PAGE_BYTES);
	else
		refused = 0;
	if (refused) {
		close(fd);
		return NULL;
	}
	void *map = mmap(NULL, UCLOCK__PAGE_BYTES, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (map == MAP_FAILED) {
		snprintf(why, size, "cannot map %.200s (%s)", path, strerror(errno));
		return NULL;
	}
	const struct uclock__page *page = map;

	if (page->magic != UCLOCK_PAGE_MAGIC)
		snprintf(why, size, "%.200s is not a uclock page (magic %#x)", path,
			 page->magic);
	else if (page->version != UCLOCK_PAGE_VERSION || page->size != sizeof(*page))
		snprintf(why, size, "%.200s has layout version %u, this library reads %u",
			 path, page->version, UCLOCK_PAGE_VERSION);
	else if (page->source != UCLOCK_SOURCE_COUNTER)
		snprintf(why, size, "%.200s is not kept from the " UCLOCK__COUNTER_TEXT, path);
	else if (page->ordered_read != UCLOCK__READ_SELF &&
		 page->ordered_read != UCLOCK__READ_FENCED)
		snprintf(why, size, "%.200s is kept from another counter (its ordered read "
			 "is %s)", path, uclock__ordered_read_name((int)page->ordered_read));
	else
		return page;
	munmap(map, UCLOCK__PAGE_BYTES);
	return NULL;
}

/*
 * The directory of the default page: trusted only if no one but root or
 * this user can change it (else another user could put any file there, or
 * swap it under the reader).
 */
int uclock__trusted_dir(const char *dir, const char *page, char *why, size_t size)
{
	struct stat st;

	if (lstat(dir, &st) != 0) {
		snprintf(why, size, "no page at %.200s (%s)", page, strerror(errno));
		return 0;
	}
	if (!S_ISDIR(st.st_mode))
		snprintf(why, size, "%.200s is not a directory", dir);
	else if (st.st_uid != 0 && st.st_uid != geteuid())
		snprintf(why, size, "%.200s belongs to uid %u, neither root nor uid %u", dir,
			 (unsigned)st.st_uid, (unsigned)geteuid());
	else if (st.st_mode & (S_IWGRP | S_IWOTH))
		snprintf(why, size, "%.200s is writable by others than its owner (mode %o)",
			 dir, (unsigned)(st.st_mode & 07777));
	else
		return 1;
	return 0;
}

void uclock__shared_unmap(const struct uclock__page *page)
{
	munmap((void *)page, UCLOCK__PAGE_BYTES);
}
