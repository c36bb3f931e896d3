/*
 * The VM clock device's disruption marker.
 *
 * Linux 6.13 and later (drivers/ptp/ptp_vmclock.c) make a hypervisor's VM
 * clock region a misc device, /dev/vmclockN, of which exactly one page,
 * from offset 0, maps read-only.  The region starts with struct
 * vmclock_abi (include/uapi/linux/vmclock-abi.h), whose disruption_marker
 * the hypervisor changes to a value it never used before whenever the
 * guest's counter was disrupted (live migration, a restored snapshot): a
 * reader that saw another marker before knows that whatever it measured of
 * the counter since is void.
 *
 * The fields read here, all little-endian:
 *    0  le32 magic       0x4b4c4356 ("VCLK")
 *    4  le32 size        of the region that holds the structure
 *    8  le16 version     1, the only one (the driver refuses any other)
 *   12  le32 seq_count   odd while the hypervisor updates what follows
 *   16  le64 disruption_marker
 *   24  le64 flags
 * The driver registers a region only if it holds the fields through flags
 * (32 bytes), and the misc device only if the region is a page or more.
 * A device's region may be larger than the page that maps: fields past
 * offset 32 are optional and not read here, so a device's size field is
 * checked against the 32 bytes, not against the mapping.
 *
 * A regular file (a stand-in for tests) is accepted only where the path
 * was given, by the caller or by UCLOCK_VMCLOCK.  A file can be truncated
 * while it is mapped, and a load from a page wholly past its end raises
 * SIGBUS, which a library cannot catch.  So only what fstat() said the
 * file holds is mapped (at most its first page), the descriptor is kept,
 * and each read of the marker first checks with fstat() that the file
 * still holds the 32 bytes (then the page exists): a read after a
 * truncation fails instead.  A truncation between that check and the loads
 * (or between open's fstat() and its look at the header) is not ruled out,
 * only made unlikely; a file is a stand-in that its tester controls.  The
 * device cannot shrink: its page is the hypervisor's memory, mapped as is.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define DEFAULT_PATH "/dev/vmclock0"
#define VMCLOCK_MAGIC 0x4b4c4356u
#define VMCLOCK_VERSION 1u
#define OFFSET_MAGIC 0
#define OFFSET_SIZE 4
#define OFFSET_VERSION 8
#define OFFSET_SEQ 12
#define OFFSET_MARKER 16
#define HEADER_BYTES 32 /* through flags: what the driver requires */
/*
 * A hypervisor's update is a few stores, but its thread can be preempted
 * in the middle, and a reader here may be a signal handler: it gives up
 * after this many tries, each an odd or changed seq_count and a pause
 * (from tens of microseconds to a few milliseconds, as the processor's
 * pause lasts), where the kernel's own reader waits up to 100 ms.
 */
#define TRIES 65536

/* A spinning reader yields the core's pipeline to its sibling thread. */
static inline void relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

static int refuse(char *why, size_t size, int error, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int refuse(char *why, size_t size, int error, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, size, fmt, ap);
	va_end(ap);
	errno = error;
	return -1;
}

static const char *kind_of(mode_t mode)
{
	if (S_ISFIFO(mode))
		return "a FIFO";
	if (S_ISDIR(mode))
		return "a directory";
	if (S_ISSOCK(mode))
		return "a socket";
	if (S_ISBLK(mode))
		return "a block device";
	if (S_ISREG(mode))
		return "a regular file, allowed only where the path is given";
	return "not a character device";
}

/* What may be mapped: a character device (its one page), or a regular file
 * as long as the header where the path was given (as much of its first
 * page as it holds).  Its length in *length. */
static int check_kind(const char *path, const struct stat *st, int given, size_t *length,
		      char *why, size_t size)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);

	if (S_ISCHR(st->st_mode)) {
		*length = page;
		return 0;
	}
	if (!S_ISREG(st->st_mode) || !given)
		return refuse(why, size, ENODEV, "%.200s is %s", path, kind_of(st->st_mode));
	if (st->st_size < HEADER_BYTES)
		return refuse(why, size, ENODEV, "%.200s is %lld bytes, shorter than the %d "
			      "of a VM clock's header", path, (long long)st->st_size,
			      HEADER_BYTES);
	*length = (uint64_t)st->st_size < page ? (size_t)st->st_size : page;
	return 0;
}

static uint32_t load32(const volatile void *abi, size_t offset)
{
	return le32toh(*(const volatile uint32_t *)((const volatile char *)abi + offset));
}

/* The constant fields, read once: nothing later depends on the size field.
 * 'holds': a file's length, or 0 for a device (the driver checked its
 * size field against the region). */
static int check_header(const volatile void *abi, const char *path, uint64_t holds,
			char *why, size_t size)
{
	uint32_t magic = load32(abi, OFFSET_MAGIC);
	uint32_t region = load32(abi, OFFSET_SIZE);
	unsigned version = le16toh(*(const volatile uint16_t *)
				   ((const volatile char *)abi + OFFSET_VERSION));

	if (magic != VMCLOCK_MAGIC)
		return refuse(why, size, ENODEV, "%.200s is not a VM clock (magic %#x, not %#x)",
			      path, magic, VMCLOCK_MAGIC);
	if (version != VMCLOCK_VERSION)
		return refuse(why, size, ENOTSUP, "%.200s has VM clock version %u; this library "
			      "reads version %u", path, version, VMCLOCK_VERSION);
	if (region < HEADER_BYTES)
		return refuse(why, size, ENODEV, "%.200s: its size field says %u bytes, fewer "
			      "than the %d of the header", path, region, HEADER_BYTES);
	if (holds && region > holds)
		return refuse(why, size, ENODEV, "%.200s: its size field says %u bytes, more "
			      "than the %llu of the file", path, region,
			      (unsigned long long)holds);
	snprintf(why, size, "%.200s: VM clock version %u, a region of %u bytes", path,
		 version, region);
	return 0;
}

/* Open, look, map, check; fd is kept only for a regular file. */
static int map_checked(const char *path, int given, struct uclock_vmclock *vm, char *why,
		       size_t size)
{
	/* O_NONBLOCK: a FIFO opens at once (to be refused), no writer needed. */
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	struct stat st;
	size_t length = 0;

	if (fd < 0)
		return refuse(why, size, errno, "cannot open %.200s (%s)", path, strerror(errno));
	if (fstat(fd, &st) != 0) {
		refuse(why, size, errno, "cannot stat %.200s (%s)", path, strerror(errno));
	} else if (check_kind(path, &st, given, &length, why, size) == 0) {
		void *map = mmap(NULL, length, PROT_READ, MAP_SHARED, fd, 0);

		if (map == MAP_FAILED) {
			refuse(why, size, errno, "cannot map %.200s (%s)", path, strerror(errno));
		} else {
			vm->abi = map;
			vm->size = length;
			if (!S_ISREG(st.st_mode))
				close(fd); /* the mapping outlives it */
			else
				vm->file = fd;
			return check_header(map, path, S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0,
					    why, size);
		}
	}
	int error = errno;
	close(fd);
	errno = error;
	return -1;
}

int uclock__vmclock_open(const char *path, struct uclock_vmclock *vm, char *why, size_t size)
{
	int given = path != NULL;

	if (!path) {
		const char *env = secure_getenv("UCLOCK_VMCLOCK");

		given = env && *env;
		path = given ? env : DEFAULT_PATH;
	}
	vm->abi = NULL;
	vm->size = 0;
	vm->file = -1;
	if (map_checked(path, given, vm, why, size) == 0)
		return 0;
	int error = errno;
	uclock__vmclock_close(vm);
	errno = error;
	return -1;
}

int uclock__vmclock_marker(const struct uclock_vmclock *vm, uint64_t *marker)
{
	const volatile char *abi = vm->abi;
	const volatile uint32_t *seq = (const volatile uint32_t *)(abi + OFFSET_SEQ);
	const volatile uint64_t *mark = (const volatile uint64_t *)(abi + OFFSET_MARKER);
	struct stat st;

	if (vm->file >= 0 && (fstat(vm->file, &st) != 0 || st.st_size < HEADER_BYTES)) {
		errno = ENODEV;
		return -1;
	}
	for (int i = 0; i < TRIES; i++) {
		/* Acquire: the marker is loaded after seq_count, so an even
		 * count shows at least the update that ended with it (pairs
		 * with the hypervisor's barrier before it makes it even). */
		uint32_t before = __atomic_load_n(seq, __ATOMIC_ACQUIRE);

		if (!(le32toh(before) & 1)) { /* else an update in progress */
			uint64_t value = __atomic_load_n(mark, UCLOCK__FIELD);
			/* The marker is loaded before seq_count is checked
			 * again, so a marker from an update that has begun
			 * shows as a changed count (pairs with the barrier
			 * after the hypervisor makes it odd). */
			UCLOCK__READ_FENCE();
			if (__atomic_load_n(seq, __ATOMIC_RELAXED) == before) {
				*marker = le64toh(value);
				return 0;
			}
		}
		relax();
	}
	errno = EAGAIN;
	return -1;
}

void uclock__vmclock_close(struct uclock_vmclock *vm)
{
	if (vm->abi)
		munmap((void *)(uintptr_t)vm->abi, vm->size);
	if (vm->file >= 0)
		close(vm->file);
	vm->abi = NULL;
	vm->size = 0;
	vm->file = -1;
}
