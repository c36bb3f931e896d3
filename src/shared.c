/*
 * The shared page: uclockd keeps one page of conversion parameters in a
 * file, every process maps it read-only, as the kernel's vvar page.  Here:
 * the reader's checks before it trusts a file, and what both sides need to
 * agree on (layout, liveness, time namespace).
 */
#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

_Static_assert(offsetof(struct uclock__page, copy) == 64,
	       "the header is one cache line");
_Static_assert(sizeof(struct uclock__page) <= UCLOCK__PAGE_BYTES,
	       "the page fits the file");

/* The calling process's time namespace offsets: 0 on a kernel without. */
int uclock__timens_offsets(int64_t *monotonic, int64_t *boottime)
{
	char buf[256];
	int fd = open("/proc/self/timens_offsets", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;

	if (fd >= 0)
		close(fd);
	*monotonic = *boottime = 0;
	if (n < 0)
		return errno == ENOENT ? 0 : -1;
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

/* Its active copy is fresh: the writer published within 'hard'. */
int uclock__shared_fresh(const struct uclock__page *page, uint64_t now)
{
	struct uclock__copy c;

	if (__atomic_load_n(&page->state, __ATOMIC_ACQUIRE) != UCLOCK__LIVE)
		return 0;
	uclock__copy_load(page, &c);
	return c.mode == UCLOCK_MODE_COUNTER && now - c.cycle_last <= c.hard;
}

/*
 * Trust a file only if it is a regular file owned by root or by us,
 * writable by its owner alone, of the page's size: then map it read-only
 * and check magic, layout version, writer, counter and time namespace.  A
 * short file is refused before it is mapped: no SIGBUS.
 */
const struct uclock__page *uclock__shared_map(const char *path, char *why,
					      size_t size)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);

	if (fd < 0) {
		snprintf(why, size, "no page at %.200s (%s)", path, strerror(errno));
		return NULL;
	}
	int refused = 1;

	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
		snprintf(why, size, "%.200s is not a regular file", path);
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
		snprintf(why, size, "cannot map %s (%s)", path, strerror(errno));
		return NULL;
	}
	const struct uclock__page *page = map;
	int64_t mono, boot;

	if (page->magic != UCLOCK_PAGE_MAGIC)
		snprintf(why, size, "%.200s is not a uclock page (magic %#x)", path,
			 page->magic);
	else if (page->version != UCLOCK_PAGE_VERSION || page->size != sizeof(*page))
		snprintf(why, size, "%.200s has layout version %u, this library reads %u",
			 path, page->version, UCLOCK_PAGE_VERSION);
	else if (page->source != UCLOCK_SOURCE_TSC)
		snprintf(why, size, "%.200s is not kept from the TSC", path);
	else if (__atomic_load_n(&page->state, __ATOMIC_ACQUIRE) != UCLOCK__LIVE)
		snprintf(why, size, "%.200s is marked stopped (uclockd pid %d exited)", path,
			 page->writer_pid);
	else if (uclock__timens_offsets(&mono, &boot) != 0 ||
		 mono != page->timens_monotonic_ns || boot != page->timens_boottime_ns)
		snprintf(why, size, "%.200s: this process is in another time namespace than "
				    "uclockd (pid %d)", path, page->writer_pid);
	else
		return page;
	munmap(map, UCLOCK__PAGE_BYTES);
	return NULL;
}

void uclock__shared_unmap(const struct uclock__page *page)
{
	munmap((void *)page, UCLOCK__PAGE_BYTES);
}
