/*
 * The VM clock reader on stand-in files laid out as the kernel's struct
 * vmclock_abi (written here from include/uapi/linux/vmclock-abi.h, not
 * from the library's offsets): marker changes are seen, a write in
 * progress is retried and then reported (never spun on), a marker written
 * in two halves under seq_count is never seen torn, a truncated file gives
 * an error and no SIGBUS, and every odd thing where the device should be is
 * refused with a reason.  /dev/vmclock0 itself is opened where it exists.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include "check.h"
#include "internal.h"

/* struct vmclock_abi, as far as the reader goes. */
#define ABI_MAGIC 0x4b4c4356u /* "VCLK" */
#define AT_MAGIC 0            /* le32 */
#define AT_SIZE 4             /* le32, the region's */
#define AT_VERSION 8          /* le16 */
#define AT_SEQ 12             /* le32, odd while written */
#define AT_MARKER 16          /* le64 */
#define AT_FLAGS 24           /* le64: the last field the driver requires */
#define FILE_BYTES 4096       /* a device's region: one page */

static char dir[256];
static char paths[32][300];
static int npaths;

static const char *path_of(const char *name)
{
	char *p = paths[npaths++];

	snprintf(p, sizeof(paths[0]), "%s/%s", dir, name);
	return p;
}

static void put_le(unsigned char *b, size_t at, uint64_t v, int bytes)
{
	for (int i = 0; i < bytes; i++)
		b[at + i] = (unsigned char)(v >> (8 * i));
}

struct layout {
	uint32_t magic, size;
	uint16_t version;
	uint32_t seq;
	uint64_t marker;
	size_t bytes; /* of the file */
};

static const struct layout good = { ABI_MAGIC, FILE_BYTES, 1, 2, 0x1111, FILE_BYTES };

static const char *write_file(const char *name, struct layout l)
{
	static unsigned char b[FILE_BYTES];
	const char *path = path_of(name);
	FILE *f = fopen(path, "wb");

	memset(b, 0, sizeof(b));
	put_le(b, AT_MAGIC, l.magic, 4);
	put_le(b, AT_SIZE, l.size, 4);
	put_le(b, AT_VERSION, l.version, 2);
	put_le(b, AT_SEQ, l.seq, 4);
	put_le(b, AT_MARKER, l.marker, 8);
	put_le(b, AT_FLAGS, 0, 8);
	if (!f || fwrite(b, 1, l.bytes, f) != l.bytes || fclose(f) != 0) {
		fprintf(stderr, "cannot write %s: %s\n", path, strerror(errno));
		exit(1);
	}
	return path;
}

/* The hypervisor's side, through the file. */
static void set_le(const char *path, size_t at, uint64_t v, int bytes)
{
	unsigned char b[8];
	int fd = open(path, O_WRONLY);

	put_le(b, 0, v, bytes);
	if (fd < 0 || pwrite(fd, b, (size_t)bytes, (off_t)at) != bytes) {
		fprintf(stderr, "cannot write %s: %s\n", path, strerror(errno));
		exit(1);
	}
	close(fd);
}

static void marker_changes(void)
{
	const char *path = write_file("good", good);
	struct uclock_vmclock vm;
	char why[512];
	uint64_t m = 0;

	CHECK(uclock__vmclock_open(path, &vm, why, sizeof(why)) == 0, "good file refused: %s",
	      why);
	if (!vm.abi)
		return;
	printf("good file: %s\n", why);
	CHECK(uclock__vmclock_marker(&vm, &m) == 0 && m == 0x1111,
	      "marker %#llx, not 0x1111", (unsigned long long)m);
	set_le(path, AT_SEQ, 3, 4);
	set_le(path, AT_MARKER, 0xfedcba9876543210ull, 8);
	set_le(path, AT_SEQ, 4, 4);
	CHECK(uclock__vmclock_marker(&vm, &m) == 0 && m == 0xfedcba9876543210ull,
	      "marker after a disruption %#llx, not 0xfedcba9876543210", (unsigned long long)m);

	/* A write in progress that never ends: retried, then reported. */
	set_le(path, AT_SEQ, 5, 4);
	double start = elapsed_s();
	errno = 0;
	int rc = uclock__vmclock_marker(&vm, &m);
	double took = elapsed_s() - start;
	CHECK(rc == -1 && errno == EAGAIN, "odd seq_count: %d (%s), not -1 (EAGAIN)", rc,
	      strerror(errno));
	CHECK(took < 1.0, "odd seq_count: gave up after %.3f s", took);
	printf("odd seq_count: gave up after %.0f us\n", took * 1e6);
	set_le(path, AT_SEQ, 6, 4);
	CHECK(uclock__vmclock_marker(&vm, &m) == 0, "seq_count even again: still refused");
	uclock__vmclock_close(&vm);
	CHECK(vm.abi == NULL && vm.file == -1, "closed, yet still mapped or open");
}

/*
 * A writer thread updates the marker as (k << 32 | k), its two halves
 * stored apart inside the seqcount: a reader that disregarded an odd
 * seq_count would see halves that differ.  (One that skipped the check
 * after the load would too, but only if an update began within the
 * nanoseconds between its two loads: too seldom to count on here.)  Stores
 * as a seqcount writer makes them: seq odd, a release fence, the fields,
 * then seq even with release.
 */
static volatile unsigned char *writable;
static int writer_done;
static long torn_raw; /* halves seen apart without the protocol: the test can fail */

static void spin(int n)
{
	for (volatile int i = 0; i < n; i++)
		;
}

static void *writer(void *arg)
{
	volatile uint32_t *seq = (volatile uint32_t *)(writable + AT_SEQ);
	volatile uint32_t *half = (volatile uint32_t *)(writable + AT_MARKER);
	double until = elapsed_s() + 0.5;
	uint32_t s = __atomic_load_n(seq, __ATOMIC_RELAXED);

	(void)arg;
	for (uint32_t k = 1; k < 200000 && elapsed_s() < until; k++) {
		__atomic_store_n(seq, ++s, __ATOMIC_RELAXED);
		/* The odd count before the marker's halves (under TSan, which
		 * has no fences, the stores themselves are release). */
		UCLOCK__WRITE_FENCE();
		__atomic_store_n(&half[1], k, UCLOCK__STORE); /* high (little-endian) */
		spin(200);
		__atomic_store_n(&half[0], k, UCLOCK__STORE);
		__atomic_store_n(seq, ++s, __ATOMIC_RELEASE);
		spin(2000);
	}
	__atomic_store_n(&writer_done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void concurrent_writer(void)
{
	if (__BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__) {
		printf("concurrent writer: not run (the test writes halves little-endian)\n");
		return;
	}
	const char *path = write_file("concurrent", (struct layout){ ABI_MAGIC, FILE_BYTES, 1,
								     0, 0, FILE_BYTES });
	int fd = open(path, O_RDWR);
	void *map = mmap(NULL, FILE_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	struct uclock_vmclock vm;
	char why[512];
	pthread_t thread;

	CHECK(fd >= 0 && map != MAP_FAILED, "cannot map %s: %s", path, strerror(errno));
	CHECK(uclock__vmclock_open(path, &vm, why, sizeof(why)) == 0, "refused: %s", why);
	if (fd < 0 || map == MAP_FAILED || !vm.abi)
		return;
	writable = map;
	pthread_create(&thread, NULL, writer, NULL);
	long ok = 0, gave_up = 0, torn = 0, back = 0;
	uint64_t last = 0, m;
	while (!__atomic_load_n(&writer_done, __ATOMIC_ACQUIRE)) {
		const volatile uint32_t *raw = (const volatile uint32_t *)
			((const volatile char *)vm.abi + AT_MARKER);
		if (__atomic_load_n(&raw[0], __ATOMIC_RELAXED) !=
		    __atomic_load_n(&raw[1], __ATOMIC_RELAXED))
			torn_raw++;
		if (uclock__vmclock_marker(&vm, &m) != 0) {
			gave_up++;
			continue;
		}
		ok++;
		torn += (uint32_t)m != (uint32_t)(m >> 32);
		back += m < last;
		last = m;
	}
	pthread_join(thread, NULL);
	printf("concurrent writer: %ld markers read, %ld gave up, %ld torn (%ld torn "
	       "without seq_count), last %#llx\n", ok, gave_up, torn, torn_raw,
	       (unsigned long long)last);
	CHECK(torn == 0, "%ld markers read torn under seq_count", torn);
	CHECK(back == 0, "the marker went back %ld times", back);
	CHECK(ok > 0, "no marker read while the writer ran");
	uclock__vmclock_close(&vm);
	munmap(map, FILE_BYTES);
	close(fd);
}

/* A stand-in file truncated while mapped: an error, not SIGBUS. */
static void truncated(void)
{
	const char *path = write_file("truncated", good);
	struct uclock_vmclock vm;
	char why[512];
	uint64_t m;

	CHECK(uclock__vmclock_open(path, &vm, why, sizeof(why)) == 0, "refused: %s", why);
	if (!vm.abi)
		return;
	static const off_t lengths[] = { 0, 20 };
	for (int i = 0; i < 2; i++) {
		CHECK(truncate(path, lengths[i]) == 0, "truncate: %s", strerror(errno));
		errno = 0;
		int rc = uclock__vmclock_marker(&vm, &m);
		CHECK(rc == -1 && errno == ENODEV, "truncated to %lld bytes: %d (%s), not -1 "
		      "(ENODEV)", (long long)lengths[i], rc, strerror(errno));
	}
	write_file("truncated", good);
	CHECK(uclock__vmclock_marker(&vm, &m) == 0 && m == good.marker,
	      "written again: no marker read");
	uclock__vmclock_close(&vm);
}

static void refused(const char *what, const char *path, int error, const char *says)
{
	struct uclock_vmclock vm;
	char why[512] = "";

	errno = 0;
	int rc = uclock__vmclock_open(path, &vm, why, sizeof(why));
	int e = errno;
	printf("%-22s %s\n", what, why);
	CHECK(rc == -1 && e == error, "%s: %d (%s), not -1 (%s)", what, rc, strerror(e),
	      strerror(error));
	CHECK(strstr(why, path) && strstr(why, says), "%s: reason \"%s\" lacks the path or "
	      "\"%s\"", what, why, says);
	CHECK(vm.abi == NULL && vm.file == -1, "%s: left mapped or open", what);
	if (rc == 0)
		uclock__vmclock_close(&vm);
}

static const char *make_fifo(const char *name)
{
	const char *path = path_of(name);

	if (mkfifo(path, 0600) != 0) {
		fprintf(stderr, "mkfifo %s: %s\n", path, strerror(errno));
		exit(1);
	}
	return path;
}

static const char *make_socket(const char *name)
{
	const char *path = path_of(name);
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int s = socket(AF_UNIX, SOCK_STREAM, 0);

	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) != 0) {
		fprintf(stderr, "socket %s: %s\n", path, strerror(errno));
		exit(1);
	}
	close(s);
	return path;
}

static void odd_files(void)
{
	struct layout l;
	const char *fifo = make_fifo("fifo");
	const char *link = path_of("link-to-fifo");
	const char *subdir = path_of("directory");

	CHECK(symlink(fifo, link) == 0 && mkdir(subdir, 0700) == 0, "cannot make: %s",
	      strerror(errno));
	refused("FIFO", fifo, ENODEV, "FIFO");
	refused("symlink to a FIFO", link, ENODEV, "FIFO");
	refused("directory", subdir, ENODEV, "directory");
	refused("socket", make_socket("socket"), ENXIO, "cannot open");
	refused("missing", path_of("missing"), ENOENT, "cannot open");
	l = good, l.bytes = 0;
	refused("empty", write_file("empty", l), ENODEV, "0 bytes");
	l = good, l.bytes = AT_FLAGS + 4;
	refused("short", write_file("short", l), ENODEV, "28 bytes");
	l = good, l.magic = 0x4b4c4355; /* uclock's own page */
	refused("wrong magic", write_file("magic", l), ENODEV, "magic");
	l = good, l.version = 2;
	refused("version 2", write_file("version2", l), ENOTSUP, "version 2");
	l = good, l.version = 0;
	refused("version 0", write_file("version0", l), ENOTSUP, "version 0");
	l = good, l.size = FILE_BYTES + 1;
	refused("size field too big", write_file("big", l), ENODEV, "4097 bytes");
	l = good, l.size = 64, l.bytes = 48;
	refused("size beyond the file", write_file("beyond", l), ENODEV, "64 bytes");
	l = good, l.size = AT_MARKER;
	refused("size field too small", write_file("small", l), ENODEV, "16 bytes");
	/* Character devices that are no VM clock: a page of zeros, and one
	 * that cannot be mapped. */
	refused("/dev/zero", "/dev/zero", ENODEV, "magic");
	refused("/dev/null", "/dev/null", ENODEV, "cannot map");
}

/* The path from the environment, which may name a regular file too. */
static int from_environment(void)
{
	struct uclock_vmclock vm;
	char why[512];

	check_failures = 0; /* the child's own */
	CHECK(uclock__vmclock_open(NULL, &vm, why, sizeof(why)) == 0,
	      "UCLOCK_VMCLOCK=%s refused: %s", getenv("UCLOCK_VMCLOCK"), why);
	if (vm.abi)
		uclock__vmclock_close(&vm);
	return check_failures ? 1 : 0;
}

static int fifo_from_environment(void)
{
	check_failures = 0;
	refused("UCLOCK_VMCLOCK=FIFO", getenv("UCLOCK_VMCLOCK"), ENODEV, "FIFO");
	return check_failures ? 1 : 0;
}

/*
 * The default path must be a character device: in a mount namespace of its
 * own, with a tmpfs on /dev, a valid stand-in at /dev/vmclock0 is refused,
 * and a character device there is mapped (its one page) and checked.
 */
static int default_path_rules(void)
{
	struct uclock_vmclock vm;
	char why[512];

	check_failures = 0;
	if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
	    mount("tmpfs", "/dev", "tmpfs", 0, "mode=0755") != 0) {
		printf("default path: not tested (no mount namespace: %s)\n", strerror(errno));
		return 0;
	}
	snprintf(dir, sizeof(dir), "/dev");
	npaths = 0;
	write_file("vmclock0", good);
	CHECK(uclock__vmclock_open(NULL, &vm, why, sizeof(why)) == -1 && errno == ENODEV &&
	      strstr(why, "regular file"), "a regular file at /dev/vmclock0: %s", why);
	printf("default path, a file:  %s\n", why);
	unlink("/dev/vmclock0");
	if (mknod("/dev/vmclock0", S_IFCHR | 0600, makedev(1, 5)) != 0) { /* /dev/zero's */
		printf("default path: a character device not tested (%s)\n", strerror(errno));
		return check_failures ? 1 : 0;
	}
	CHECK(uclock__vmclock_open(NULL, &vm, why, sizeof(why)) == -1 && errno == ENODEV &&
	      strstr(why, "magic"), "a character device of zeros at /dev/vmclock0: %s", why);
	printf("default path, zeros:   %s\n", why);
	return check_failures ? 1 : 0;
}

static void real_device(void)
{
	struct uclock_vmclock vm;
	char why[512];
	uint64_t m;

	if (access("/dev/vmclock0", F_OK) != 0) {
		CHECK(uclock__vmclock_open(NULL, &vm, why, sizeof(why)) == -1 && errno == ENOENT &&
		      strstr(why, "/dev/vmclock0"), "no /dev/vmclock0: %s", why);
		printf("/dev/vmclock0 not found: the real device not opened (%s)\n", why);
		return;
	}
	if (uclock__vmclock_open(NULL, &vm, why, sizeof(why)) != 0) {
		CHECK(errno == EACCES, "/dev/vmclock0 refused: %s", why);
		printf("/dev/vmclock0: %s\n", why);
		return;
	}
	printf("/dev/vmclock0: %s\n", why);
	CHECK(uclock__vmclock_marker(&vm, &m) == 0, "/dev/vmclock0: no marker (%s)",
	      strerror(errno));
	printf("/dev/vmclock0: disruption marker %#llx\n", (unsigned long long)m);
	uclock__vmclock_close(&vm);
}

static void remove_all(void)
{
	for (int i = npaths - 1; i >= 0; i--)
		if (unlink(paths[i]) != 0)
			rmdir(paths[i]);
	rmdir(dir);
}

int main(void)
{
	static char env[400];
	const char *tmp = getenv("TMPDIR");

	alarm(60); /* a FIFO opened blocking would hang: fail instead */
	unsetenv("UCLOCK_VMCLOCK");
	snprintf(dir, sizeof(dir), "%s/uclock-vmclock-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(dir))
		check_skip("mkdtemp %s: %s", dir, strerror(errno));

	marker_changes();
	concurrent_writer();
	truncated();
	odd_files();
	snprintf(env, sizeof(env), "UCLOCK_VMCLOCK=%s", paths[0]); /* "good" */
	CHECK(in_child((const char *const[]){ env, NULL }, from_environment) == 0,
	      "UCLOCK_VMCLOCK");
	snprintf(env, sizeof(env), "UCLOCK_VMCLOCK=%s/fifo", dir);
	CHECK(in_child((const char *const[]){ env, NULL }, fifo_from_environment) == 0,
	      "UCLOCK_VMCLOCK names a FIFO");
	CHECK(in_child(NULL, default_path_rules) == 0, "the default path's rules");
	real_device();
	remove_all();
	return check_done("vmclock");
}
