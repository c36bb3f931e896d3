/*
 * The ELF dynamic-symbol reader (src/elf.c): the real vDSO is read right
 * (and agrees with objdump -T), and malformed images (truncated, patched,
 * randomly mutated) are rejected or read strictly inside image+size.  Each
 * image is copied into an exact-size heap buffer, so that a sanitizer build
 * catches the first byte read past its end.
 *
 * UCLOCK_ELF_SEED and UCLOCK_ELF_ITERS change the mutation run;
 * UCLOCK_ELF_IMAGE reads a file instead of this process's vDSO (see
 * check.h: under QEMU, a stand-in for the arm64 vDSO).
 */
#include <elf.h>
#include <errno.h>
#include <link.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "internal.h"

typedef ElfW(Ehdr) Ehdr;
typedef ElfW(Phdr) Phdr;
typedef ElfW(Dyn) Dyn;
typedef ElfW(Sym) Sym;
typedef ElfW(Verdef) Verdef;
typedef ElfW(Verdaux) Verdaux;

#if defined(__x86_64__)
#define VDSO_VERSION "LINUX_2.6"
static const char *const vdso_names[] = {
	"__vdso_clock_gettime", "__vdso_gettimeofday", "__vdso_time",
	"__vdso_getcpu", "__vdso_clock_getres",
};
#define CLOCK_GETTIME "__vdso_clock_gettime"
#elif defined(__aarch64__)
#define VDSO_VERSION "LINUX_2.6.39"
static const char *const vdso_names[] = {
	"__kernel_clock_gettime", "__kernel_gettimeofday", "__kernel_clock_getres",
};
#define CLOCK_GETTIME "__kernel_clock_gettime"
#else
/* No names known here: the image is read, its symbols not checked. */
#define KNOWN_VDSO 0
#define VDSO_VERSION ""
static const char *const vdso_names[] = { NULL };
#define CLOCK_GETTIME "__vdso_clock_gettime"
#endif
#ifndef KNOWN_VDSO
#define KNOWN_VDSO 1
#endif

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* The real image, and where its parts are (from the unmodified copy). */
static const unsigned char *vdso;
static size_t vdso_size;
static int from_file;    /* UCLOCK_ELF_IMAGE: not mapped, not callable */
static size_t need;      /* open succeeds on a prefix iff it is this long */
static int need_known;   /* else need is the whole image, an upper bound */
static size_t dyn_off;   /* PT_DYNAMIC */
static size_t load_ph;   /* index of the first PT_LOAD */

static int in_buf(const void *p, uint64_t n, const unsigned char *buf, size_t len)
{
	uintptr_t a = (uintptr_t)p, b = (uintptr_t)buf;

	return a >= b && a - b <= len && n <= len - (a - b);
}

/* A name the reader hands out: a NUL-terminated string inside dynstr. */
static int in_dynstr(const struct uclock_elf *elf, const char *s)
{
	const unsigned char *str = (const unsigned char *)elf->dynstr;
	size_t room;

	if (!in_buf(s, 1, str, elf->dynstr_size))
		return 0;
	room = elf->dynstr_size - (size_t)((const unsigned char *)s - str);
	/* Never strlen(): a plain build would run off the image. */
	return strnlen(s, room) < room;
}

/* An exact-size heap copy of the first len bytes, so overreads are caught. */
static unsigned char *copy(size_t len)
{
	unsigned char *buf = malloc(len ? len : 1);

	if (!buf)
		abort();
	memcpy(buf, vdso, len);
	return buf;
}

static const Phdr *phdr(const unsigned char *img, size_t i)
{
	const Ehdr *eh = (const Ehdr *)img;

	return (const Phdr *)(img + eh->e_phoff) + i;
}

/* File offset of a link-time address, by the real image's first PT_LOAD. */
static size_t file_off(uint64_t vaddr)
{
	const Phdr *ph = phdr(vdso, load_ph);

	return (size_t)(vaddr - ph->p_vaddr + ph->p_offset);
}

/* The dynamic entry with this tag in a (not yet patched) copy. */
static Dyn *dyn_entry(unsigned char *img, ElfW(Sxword) tag)
{
	Dyn *d = (Dyn *)(img + dyn_off);

	for (; d->d_tag != DT_NULL; d++)
		if (d->d_tag == tag)
			return d;
	return NULL;
}

/* Where a table lives in a copy, by its dynamic entry; NULL if none. */
static void *table(unsigned char *img, ElfW(Sxword) tag)
{
	Dyn *d = dyn_entry(img, tag);

	return d ? img + file_off(d->d_un.d_ptr) : NULL;
}

/*
 * Read everything an opened image offers, checking that each pointer the
 * reader hands out lies inside buf[0, len).  Returns the symbols read.
 */
static size_t exercise(const struct uclock_elf *elf, const unsigned char *buf,
		       size_t len, const char *what)
{
	struct uclock_elf_symbol sym;
	const char *some_name = NULL, *some_version = NULL;
	size_t ok = 0;

	CHECK(in_buf(elf->dynsym, (uint64_t)elf->nsyms * sizeof(Sym), buf, len),
	      "%s: dynsym (%zu symbols) outside the image", what, elf->nsyms);
	CHECK(in_buf(elf->dynstr, elf->dynstr_size, buf, len),
	      "%s: dynstr (%zu bytes) outside the image", what, elf->dynstr_size);
	CHECK(!elf->versym || in_buf(elf->versym, elf->nsyms * 2, buf, len),
	      "%s: versym outside the image", what);
	CHECK(!elf->verdef || in_buf(elf->verdef, sizeof(Verdef), buf, len),
	      "%s: verdef outside the image", what);
	for (size_t i = 0; i < elf->nsyms; i++) {
		if (uclock__elf_symbol(elf, i, &sym) != 0)
			continue;
		ok++;
		if (!in_dynstr(elf, sym.name)) {
			CHECK(0, "%s: symbol %zu name not a string in dynstr", what, i);
			continue;
		}
		if (sym.version && !in_dynstr(elf, sym.version)) {
			CHECK(0, "%s: symbol %zu version not a string in dynstr", what, i);
			continue;
		}
		if (sym.shndx != SHN_UNDEF && sym.type == STT_FUNC) {
			some_name = sym.name;
			some_version = sym.version;
		}
	}
	CHECK(uclock__elf_symbol(elf, elf->nsyms, &sym) == -ERANGE,
	      "%s: symbol past the table not -ERANGE", what);

	const char *names[] = { CLOCK_GETTIME, "__vdso_time", "", "no_such_symbol" };
	for (size_t i = 0; i < NELEM(names); i++) {
		if (!names[i])
			continue;
		void *f = uclock__elf_lookup(elf, names[i], VDSO_VERSION);
		CHECK(!f || in_buf(f, 1, buf, len), "%s: lookup(%s) outside the image",
		      what, names[i]);
		f = uclock__elf_lookup(elf, names[i], NULL);
		CHECK(!f || in_buf(f, 1, buf, len), "%s: lookup(%s) outside the image",
		      what, names[i]);
	}
	if (some_name) {
		/* Copied: the name must not alias what the lookup compares. */
		char name[256], version[256];

		snprintf(name, sizeof(name), "%s", some_name);
		snprintf(version, sizeof(version), "%s", some_version ? some_version : "");
		void *f = uclock__elf_lookup(elf, name, some_version ? version : NULL);
		CHECK(!f || in_buf(f, 1, buf, len), "%s: lookup(%s) outside the image",
		      what, name);
	}
	return ok;
}

/* A rejected image must leave a reader with nothing in it. */
static void check_empty(const struct uclock_elf *elf, const char *what)
{
	struct uclock_elf_symbol sym;

	CHECK(elf->nsyms == 0 && !elf->dynsym && !elf->dynstr,
	      "%s: rejected, yet the reader holds %zu symbols", what, elf->nsyms);
	if (elf->nsyms == 0) {
		CHECK(uclock__elf_symbol(elf, 0, &sym) == -ERANGE,
		      "%s: symbol 0 of a rejected image", what);
		CHECK(!uclock__elf_lookup(elf, CLOCK_GETTIME, NULL),
		      "%s: lookup in a rejected image", what);
	}
}

static void expect_reject(const char *what, const unsigned char *buf, size_t len)
{
	struct uclock_elf elf;

	if (uclock__elf_open(&elf, buf, len) == 0) {
		CHECK(0, "%s: accepted", what);
		exercise(&elf, buf, len, what);
	} else {
		check_empty(&elf, what);
	}
}

/* Open may succeed or not; whatever it hands out stays inside. */
static int expect_safe(const char *what, const unsigned char *buf, size_t len)
{
	struct uclock_elf elf;

	if (uclock__elf_open(&elf, buf, len) != 0) {
		check_empty(&elf, what);
		return -1;
	}
	exercise(&elf, buf, len, what);
	return 0;
}

/* Part 1: the real vDSO. */
static void real_vdso(void)
{
	struct uclock_elf elf;
	struct uclock_elf_symbol sym;
	size_t found[NELEM(vdso_names)] = { 0 };
	int r;

	r = uclock__elf_open(&elf, vdso, vdso_size);
	CHECK(r == 0, "open(real vDSO) = %d", r);
	if (r != 0)
		return;
	CHECK(elf.nsyms > 1, "real vDSO: %zu symbols", elf.nsyms);
	for (size_t i = 0; i < elf.nsyms; i++) {
		r = uclock__elf_symbol(&elf, i, &sym);
		CHECK(r == 0, "real vDSO: symbol %zu: %d", i, r);
		if (r != 0)
			continue;
		for (size_t k = 0; k < NELEM(vdso_names); k++) {
			if (!vdso_names[k] || strcmp(sym.name, vdso_names[k]) != 0)
				continue;
			found[k]++;
			CHECK(sym.version && strcmp(sym.version, VDSO_VERSION) == 0,
			      "%s: version %s, want %s", sym.name,
			      sym.version ? sym.version : "(none)", VDSO_VERSION);
			CHECK(sym.type == STT_FUNC && sym.shndx != SHN_UNDEF,
			      "%s: type %u shndx %u", sym.name, sym.type, sym.shndx);
		}
	}
	exercise(&elf, vdso, vdso_size, "real vDSO");
	for (size_t k = 0; k < NELEM(vdso_names); k++)
		CHECK(!vdso_names[k] || found[k] == 1, "%s found %zu times",
		      vdso_names[k], found[k]);
	if (!KNOWN_VDSO)
		return;
	/* What the library looks up (kernel.c), by name and version. */
	CHECK(uclock__elf_lookup(&elf, CLOCK_GETTIME, VDSO_VERSION),
	      "lookup(%s, %s) failed", CLOCK_GETTIME, VDSO_VERSION);

	int (*gettime)(clockid_t, struct timespec *) =
		(int (*)(clockid_t, struct timespec *))uclock__elf_lookup(
			&elf, CLOCK_GETTIME, VDSO_VERSION);
	CHECK(gettime, "lookup(%s, %s) failed", CLOCK_GETTIME, VDSO_VERSION);
	CHECK(uclock__elf_lookup(&elf, CLOCK_GETTIME, NULL) == (void *)gettime,
	      "lookup(%s) without a version differs", CLOCK_GETTIME);
	CHECK(!uclock__elf_lookup(&elf, "__vdso_no_such_function", VDSO_VERSION),
	      "lookup of a missing name succeeded");
	CHECK(!uclock__elf_lookup(&elf, CLOCK_GETTIME, "LINUX_0.0"),
	      "lookup with a wrong version succeeded");
	CHECK(!uclock__elf_lookup(&elf, VDSO_VERSION, NULL),
	      "lookup found the version's own (non-function) symbol");
	if (!gettime || from_file)
		return;
	static const clockid_t clocks[] = { CLOCK_MONOTONIC, CLOCK_REALTIME };
	for (size_t i = 0; i < NELEM(clocks); i++) {
		struct timespec ts;
		int64_t before = kernel_ns(clocks[i]);

		r = gettime(clocks[i], &ts);
		int64_t after = kernel_ns(clocks[i]);
		CHECK(r == 0, "vDSO clock_gettime(%d) = %d", (int)clocks[i], r);
		CHECK(before <= ts_ns(&ts) && ts_ns(&ts) <= after,
		      "vDSO clock_gettime(%d): %lld not within [%lld, %lld]",
		      (int)clocks[i], (long long)ts_ns(&ts), (long long)before,
		      (long long)after);
	}
}

/* The vDSO's size from its headers fits inside its mapping. */
static void image_in_mapping(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	int seen = 0;

	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;

		if (!strstr(line, "[vdso]") || sscanf(line, "%lx-%lx", &lo, &hi) != 2)
			continue;
		seen = 1;
		CHECK((uintptr_t)vdso == lo && vdso_size <= hi - lo,
		      "vDSO image %p+%zu outside its mapping %lx-%lx", (void *)vdso,
		      vdso_size, lo, hi);
	}
	fclose(f);
	CHECK(seen, "no [vdso] in /proc/self/maps");
}

/* Part 2: the same symbols as objdump -T (defined ones, with versions). */
struct name_set {
	char **v;
	size_t n, cap;
};

static void set_add(struct name_set *s, const char *name, const char *version,
		    int hidden)
{
	char buf[512];

	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 32;
		s->v = realloc(s->v, s->cap * sizeof(*s->v));
		if (!s->v)
			abort();
	}
	snprintf(buf, sizeof(buf), "%s@%s%s%s", name, hidden ? "(" : "",
		 version ? version : "", hidden ? ")" : "");
	s->v[s->n++] = strdup(buf);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void set_free(struct name_set *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
}

/*
 * One line of objdump -T: "addr flags section\tsize [version] name", the
 * version "(v)" when hidden and "Base" for the base definition.
 */
static int parse_objdump(char *line, struct name_set *s)
{
	char *tab = strchr(line, '\t'), *tok[4], *save;
	size_t n = 0;

	if (!tab || strlen(line) < 17)
		return 0;
	*tab = '\0';
	char *sect = strrchr(line, ' ');
	if (!sect || strcmp(sect + 1, "*UND*") == 0)
		return 0;
	for (char *t = strtok_r(tab + 1, " \t\n", &save); t && n < NELEM(tok);
	     t = strtok_r(NULL, " \t\n", &save))
		tok[n++] = t;
	if (n == 2) {
		set_add(s, tok[1], NULL, 0);
		return 1;
	}
	if (n != 3)
		return 0;
	char *v = tok[1];
	int hidden = v[0] == '(';
	if (hidden) {
		v++;
		v[strcspn(v, ")")] = '\0';
	}
	if (strcmp(v, "Base") == 0 || strcmp(v, "*local*") == 0 ||
	    strcmp(v, "*global*") == 0)
		v = NULL;
	set_add(s, tok[2], v, hidden);
	return 1;
}

static void against_objdump(void)
{
	const char *objdump = getenv("OBJDUMP") ? getenv("OBJDUMP") : "objdump";
	const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	struct name_set ours = { 0 }, theirs = { 0 };
	struct uclock_elf elf;
	struct uclock_elf_symbol sym;
	char path[4096], cmd[8192], line[1024];
	int fd, table_seen = 0;
	FILE *p;

	snprintf(cmd, sizeof(cmd), "%s --version >/dev/null 2>&1", objdump);
	if (system(cmd) != 0) {
		fprintf(stderr, "note: %s not available, objdump comparison skipped\n",
			objdump);
		return;
	}
	snprintf(path, sizeof(path), "%s/uclock-vdso-XXXXXX", tmp);
	fd = mkstemp(path);
	CHECK(fd >= 0, "mkstemp(%s) failed", path);
	if (fd < 0)
		return;
	CHECK(write(fd, vdso, vdso_size) == (ssize_t)vdso_size, "writing %s", path);
	close(fd);
	snprintf(cmd, sizeof(cmd), "%s -T '%s' 2>&1", objdump, path);
	p = popen(cmd, "r");
	CHECK(p, "popen(%s)", cmd);
	while (p && fgets(line, sizeof(line), p)) {
		if (strstr(line, "DYNAMIC SYMBOL TABLE"))
			table_seen = 1;
		else if (table_seen)
			parse_objdump(line, &theirs);
	}
	int status = p ? pclose(p) : -1;
	unlink(path);
	CHECK(status == 0 && table_seen, "%s -T failed (status %d)", objdump, status);

	if (uclock__elf_open(&elf, vdso, vdso_size) == 0)
		for (size_t i = 1; i < elf.nsyms; i++)
			if (uclock__elf_symbol(&elf, i, &sym) == 0 &&
			    sym.shndx != SHN_UNDEF)
				set_add(&ours, sym.name, sym.version, sym.hidden_version);
	qsort(ours.v, ours.n, sizeof(*ours.v), cmp_str);
	qsort(theirs.v, theirs.n, sizeof(*theirs.v), cmp_str);
	CHECK(ours.n == theirs.n, "%zu symbols, objdump -T lists %zu", ours.n,
	      theirs.n);
	for (size_t i = 0, j = 0; i < ours.n || j < theirs.n;) {
		int c = i == ours.n ? 1 : j == theirs.n ? -1 :
			strcmp(ours.v[i], theirs.v[j]);

		CHECK(c >= 0, "%s: not in objdump -T", ours.v[i]);
		CHECK(c <= 0, "%s: in objdump -T, not found", theirs.v[j]);
		i += c <= 0;
		j += c >= 0;
	}
	printf("objdump -T: %zu defined symbols, reader: %zu\n", theirs.n, ours.n);
	set_free(&ours);
	set_free(&theirs);
}

/* Part 3: truncated copies, every length up to the whole. */
static void truncated(void)
{
	char what[64];
	struct uclock_elf full, elf;
	struct uclock_elf_symbol a, b;

	if (uclock__elf_open(&full, vdso, vdso_size) != 0)
		return;
	for (size_t len = 0; len <= vdso_size; len++) {
		/* Every length near the threshold, a sampling elsewhere. */
		if (len % 7 && len != vdso_size && len != sizeof(Ehdr) &&
		    (len + 16 < need || len > need + 16))
			continue;
		unsigned char *buf = copy(len);
		snprintf(what, sizeof(what), "truncated to %zu", len);
		if (len < need && !need_known) {
			expect_safe(what, buf, len);
		} else if (len < need) {
			expect_reject(what, buf, len);
		} else if (uclock__elf_open(&elf, buf, len) != 0) {
			CHECK(0, "%s (need %zu): rejected", what, need);
		} else {
			CHECK(elf.nsyms == full.nsyms, "%s: %zu symbols", what, elf.nsyms);
			exercise(&elf, buf, len, what);
			for (size_t i = 0; i < elf.nsyms; i++) {
				if (uclock__elf_symbol(&elf, i, &b) != 0 ||
				    uclock__elf_symbol(&full, i, &a) != 0) {
					CHECK(0, "%s: symbol %zu unreadable", what, i);
					continue;
				}
				CHECK(strcmp(a.name, b.name) == 0 &&
				      (!b.version || strcmp(a.version, b.version) == 0),
				      "%s: symbol %zu differs", what, i);
			}
		}
		free(buf);
	}
}

/* Part 3: one field patched at a time. */
#define PATCH(what, expect, ...)                                            \
	do {                                                               \
		unsigned char *img = copy(vdso_size);                      \
		Ehdr *eh = (Ehdr *)img;                                    \
		Phdr *ph = (Phdr *)(img + eh->e_phoff);                    \
		(void)ph;                                                  \
		__VA_ARGS__;                                               \
		expect(what, img, vdso_size);                              \
		free(img);                                                 \
	} while (0)

#define REJECT(what, ...) PATCH(what, expect_reject, __VA_ARGS__)
#define SAFE(what, ...) PATCH(what, (void)expect_safe, __VA_ARGS__)

static void no_expect(const char *what, const unsigned char *buf, size_t len)
{
	(void)what, (void)buf, (void)len;
}

static int has_dyn(ElfW(Sxword) tag)
{
	return dyn_entry((unsigned char *)(uintptr_t)vdso, tag) != NULL;
}

static size_t ph_index(uint32_t type)
{
	const Ehdr *eh = (const Ehdr *)vdso;

	for (size_t i = 0; i < eh->e_phnum; i++)
		if (phdr(vdso, i)->p_type == type)
			return i;
	return (size_t)-1;
}

static void set_dyn(unsigned char *img, ElfW(Sxword) tag, uint64_t v)
{
	Dyn *d = dyn_entry(img, tag);

	if (d)
		d->d_un.d_val = v;
}

/* Make a dynamic entry vanish: it becomes DT_DEBUG, which is ignored. */
static void drop_dyn(unsigned char *img, ElfW(Sxword) tag)
{
	Dyn *d = dyn_entry(img, tag);

	if (d)
		d->d_tag = DT_DEBUG;
}

static void malformed(void)
{
	const size_t size = vdso_size;
	const size_t dyn = ph_index(PT_DYNAMIC), load = load_ph;
	const Ehdr *reh = (const Ehdr *)vdso;
	const uint64_t huge[] = { size, size + 1, UINT32_MAX, (uint64_t)1 << 32,
				  UINT64_MAX, UINT64_MAX - 7, (uint64_t)1 << 63 };
	char what[96];
	struct uclock_elf elf;
	unsigned char *buf;

	memset(&elf, 0xa5, sizeof(elf));
	CHECK(uclock__elf_open(&elf, NULL, 0) != 0, "NULL, 0 accepted");
	check_empty(&elf, "NULL, 0");
	CHECK(uclock__elf_open(&elf, NULL, size) != 0, "NULL, size accepted");
	check_empty(&elf, "NULL, size");
	CHECK(uclock__elf_open(&elf, vdso, 0) != 0, "size 0 accepted");
	check_empty(&elf, "size 0");

	/* Misaligned: the same bytes one past an aligned address. */
	buf = malloc(size + 1);
	if (!buf)
		abort();
	memcpy(buf + 1, vdso, size);
	expect_reject("misaligned image", buf + 1, size);
	free(buf);

	for (int i = 0; i < SELFMAG; i++) {
		snprintf(what, sizeof(what), "bad magic byte %d", i);
		REJECT(what, img[i] ^= 0x20);
	}
	REJECT("class NONE", img[EI_CLASS] = ELFCLASSNONE);
	REJECT("wrong class", img[EI_CLASS] = img[EI_CLASS] == ELFCLASS64 ?
					     ELFCLASS32 : ELFCLASS64);
	REJECT("class 3", img[EI_CLASS] = 3);
	REJECT("version 0", img[EI_VERSION] = EV_NONE);

	/* Program headers. */
	for (size_t i = 0; i < NELEM(huge); i++) {
		snprintf(what, sizeof(what), "e_phoff %#llx", (unsigned long long)huge[i]);
		REJECT(what, eh->e_phoff = huge[i]);
	}
	REJECT("e_phoff: last header runs off the end",
	       eh->e_phoff = (size - eh->e_phnum * sizeof(Phdr) + 8) & ~(uint64_t)7);
	REJECT("e_phoff misaligned", eh->e_phoff += 4);
	REJECT("e_phnum 0xffff", eh->e_phnum = 0xffff);
	REJECT("e_phnum past the end",
	       eh->e_phnum = (size - eh->e_phoff) / sizeof(Phdr) + 1);
	SAFE("e_phnum to the end", eh->e_phnum = (size - eh->e_phoff) / sizeof(Phdr));
	REJECT("e_phnum 0", eh->e_phnum = 0);
	REJECT("e_phentsize 0", eh->e_phentsize = 0);
	REJECT("e_phentsize - 1", eh->e_phentsize--);
	REJECT("e_phentsize + 8", eh->e_phentsize += 8);
	REJECT("e_phentsize 32-bit", eh->e_phentsize = sizeof(Elf32_Phdr));

	/* PT_DYNAMIC. */
	REJECT("no PT_DYNAMIC", ph[dyn].p_type = PT_NULL);
	for (size_t i = 0; i < NELEM(huge); i++) {
		snprintf(what, sizeof(what), "PT_DYNAMIC p_offset %#llx",
			 (unsigned long long)huge[i]);
		REJECT(what, ph[dyn].p_offset = huge[i]);
		snprintf(what, sizeof(what), "PT_DYNAMIC p_filesz %#llx",
			 (unsigned long long)huge[i]);
		REJECT(what, ph[dyn].p_filesz = huge[i]);
	}
	REJECT("PT_DYNAMIC one past the end", ph[dyn].p_offset = size - ph[dyn].p_filesz + 8);
	REJECT("PT_DYNAMIC misaligned", ph[dyn].p_offset += 4);
	REJECT("PT_DYNAMIC empty", ph[dyn].p_filesz = 0);
	REJECT("PT_DYNAMIC partial entry", ph[dyn].p_filesz = sizeof(Dyn) - 1);
	SAFE("PT_DYNAMIC at the end of the image",
	     ph[dyn].p_offset = (size - ph[dyn].p_filesz) & ~(uint64_t)7);
	/* Without DT_NULL the walk stops at p_filesz. */
	SAFE("dynamic without DT_NULL", {
		Dyn *d = (Dyn *)(img + ph[dyn].p_offset);
		size_t n = ph[dyn].p_filesz / sizeof(Dyn);
		for (size_t i = 0; i < n; i++)
			if (d[i].d_tag == DT_NULL)
				d[i].d_tag = DT_DEBUG;
	});
	SAFE("two PT_DYNAMIC", ph[reh->e_phnum - 1] = ph[dyn]);

	/* PT_LOAD: the map from addresses to the file. */
	REJECT("no PT_LOAD", ph[load].p_type = PT_NULL);
	REJECT("PT_LOAD p_filesz 0", ph[load].p_filesz = 0);
	REJECT("PT_LOAD p_offset past the end", ph[load].p_offset = size);
	for (size_t i = 0; i < NELEM(huge); i++) {
		snprintf(what, sizeof(what), "PT_LOAD p_offset %#llx",
			 (unsigned long long)huge[i]);
		SAFE(what, ph[load].p_offset = huge[i]);
		snprintf(what, sizeof(what), "PT_LOAD p_vaddr %#llx",
			 (unsigned long long)huge[i]);
		REJECT(what, ph[load].p_vaddr = huge[i]);
		snprintf(what, sizeof(what), "PT_LOAD p_filesz %#llx",
			 (unsigned long long)huge[i]);
		SAFE(what, ph[load].p_filesz = huge[i]);
	}

	/* The dynamic entries. */
	static const ElfW(Sxword) tags[] = { DT_SYMTAB, DT_STRTAB, DT_HASH,
					     DT_GNU_HASH, DT_VERSYM, DT_VERDEF };
	for (size_t t = 0; t < NELEM(tags); t++) {
		if (!has_dyn(tags[t]))
			continue;
		for (size_t i = 0; i < NELEM(huge); i++) {
			snprintf(what, sizeof(what), "dynamic tag %#llx = %#llx",
				 (unsigned long long)tags[t], (unsigned long long)huge[i]);
			if (tags[t] == DT_GNU_HASH)
				SAFE(what, set_dyn(img, tags[t], huge[i])); /* DT_HASH wins */
			else
				REJECT(what, set_dyn(img, tags[t], huge[i]));
		}
		snprintf(what, sizeof(what), "dynamic tag %#llx misaligned",
			 (unsigned long long)tags[t]);
		if (tags[t] == DT_SYMTAB || tags[t] == DT_HASH || tags[t] == DT_VERSYM ||
		    tags[t] == DT_VERDEF)
			REJECT(what, dyn_entry(img, tags[t])->d_un.d_val += 1);
	}
	REJECT("DT_SYMTAB at the end of the load",
	       set_dyn(img, DT_SYMTAB, ph[load].p_vaddr + ph[load].p_filesz - sizeof(Sym)));
	REJECT("DT_STRTAB at the end of the load",
	       set_dyn(img, DT_STRTAB, ph[load].p_vaddr + ph[load].p_filesz - 1));
	REJECT("DT_HASH at the end of the load",
	       set_dyn(img, DT_HASH, ph[load].p_vaddr + ph[load].p_filesz - 4));
	REJECT("no DT_SYMTAB", drop_dyn(img, DT_SYMTAB));
	REJECT("no DT_STRTAB", drop_dyn(img, DT_STRTAB));
	REJECT("no DT_STRSZ", drop_dyn(img, DT_STRSZ));
	REJECT("DT_STRSZ huge", set_dyn(img, DT_STRSZ, UINT64_MAX));
	REJECT("DT_STRSZ past the image", set_dyn(img, DT_STRSZ, size));
	REJECT("DT_SYMENT 16", set_dyn(img, DT_SYMENT, 16));
	REJECT("no hash tables", { drop_dyn(img, DT_HASH); drop_dyn(img, DT_GNU_HASH); });
	REJECT("DT_VERDEF without a Verdef in reach",
	       set_dyn(img, DT_VERDEF, ph[load].p_vaddr + ph[load].p_filesz - 4));

	/* DT_HASH's nchain is the symbol count. */
	if (has_dyn(DT_HASH)) {
		const uint32_t bad[] = { UINT32_MAX, 0x80000000u, size / sizeof(Sym) + 1,
					 (uint32_t)(size / sizeof(Sym)) };
		for (size_t i = 0; i < NELEM(bad); i++) {
			snprintf(what, sizeof(what), "DT_HASH nchain %#x", bad[i]);
			if (bad[i] * sizeof(Sym) <= size)
				SAFE(what, ((uint32_t *)table(img, DT_HASH))[1] = bad[i]);
			else
				REJECT(what, ((uint32_t *)table(img, DT_HASH))[1] = bad[i]);
		}
		SAFE("DT_HASH nchain 0", ((uint32_t *)table(img, DT_HASH))[1] = 0);
	}

	/* DT_GNU_HASH alone: the count comes from its chains. */
	if (has_dyn(DT_GNU_HASH)) {
		struct uclock_elf full;
		unsigned char *g = copy(size);

		drop_dyn(g, DT_HASH);
		CHECK(uclock__elf_open(&full, vdso, size) == 0 &&
		      uclock__elf_open(&elf, g, size) == 0 && elf.nsyms == full.nsyms,
		      "GNU hash only: %zu symbols, want %zu", elf.nsyms, full.nsyms);
		free(g);
#define GNU(...) { drop_dyn(img, DT_HASH); uint32_t *gh = table(img, DT_GNU_HASH); __VA_ARGS__; }
		REJECT("GNU hash nbuckets huge", GNU(gh[0] = UINT32_MAX));
		REJECT("GNU hash bloom huge", GNU(gh[2] = UINT32_MAX));
		SAFE("GNU hash symoffset huge", GNU(gh[1] = UINT32_MAX));
		SAFE("GNU hash nbuckets 0", GNU(gh[0] = 0));
		SAFE("GNU hash buckets huge", GNU({
			uint32_t *b = gh + 4 + gh[2] * (sizeof(ElfW(Addr)) / 4);
			for (uint32_t i = 0; i < gh[0]; i++)
				b[i] = UINT32_MAX - i;
		}));
		/* The walk then runs on past the chains, into what follows. */
		SAFE("GNU hash chain without end", GNU({
			uint32_t *b = gh + 4 + gh[2] * (sizeof(ElfW(Addr)) / 4);
			uint32_t *c = b + gh[0];
			uint32_t *end = (uint32_t *)table(img, DT_SYMTAB);
			for (; c < end; c++)
				*c &= ~1u;
		}));
#undef GNU
	}

	/* Symbols whose names are not in the string table. */
	static const uint32_t names[] = { 0, 1, UINT32_MAX };
	for (size_t i = 0; i < NELEM(names); i++) {
		snprintf(what, sizeof(what), "st_name %#x past dynstr", names[i]);
		SAFE(what, {
			Dyn *d = dyn_entry(img, DT_STRSZ);
			((Sym *)table(img, DT_SYMTAB))[1].st_name =
				(uint32_t)(d->d_un.d_val + names[i]);
		});
	}
	PATCH("st_name past dynstr", no_expect, {
		Dyn *d = dyn_entry(img, DT_STRSZ);
		Sym *s = table(img, DT_SYMTAB);
		struct uclock_elf_symbol sym;
		s[1].st_name = (uint32_t)d->d_un.d_val;
		CHECK(uclock__elf_open(&elf, img, size) == 0, "st_name: open failed");
		CHECK(uclock__elf_symbol(&elf, 1, &sym) == -EINVAL,
		      "symbol with st_name past dynstr read");
		CHECK(uclock__elf_symbol(&elf, 2, &sym) == 0, "its neighbour unreadable");
	});
	/* DT_STRSZ cut so the last string has no NUL inside it. */
	SAFE("dynstr unterminated", {
		Dyn *d = dyn_entry(img, DT_STRSZ);
		d->d_un.d_val -= 1;
	});
	SAFE("dynstr one byte", set_dyn(img, DT_STRSZ, 1));
	/*
	 * The same with dynstr moved to the last bytes of an image cut at
	 * the end of its PT_LOAD: a sanitizer sees any read past a string.
	 */
	const Phdr *rload = phdr(vdso, load);
	size_t end = rload->p_offset + rload->p_filesz;
	if (uclock__elf_open(&elf, vdso, size) == 0 && end <= size &&
	    need + elf.dynstr_size <= end) {
		size_t strsz = elf.dynstr_size, at = end - strsz;

		buf = copy(end);
		memcpy(buf + at, elf.dynstr, strsz);
		set_dyn(buf, DT_STRTAB, rload->p_vaddr + at - rload->p_offset);
		CHECK(expect_safe("dynstr at the end of the image", buf, end) == 0,
		      "dynstr at the end of the image: rejected");
		buf[end - 1] = 'x';
		expect_safe("dynstr unterminated at the end of the image", buf, end);
		memset(buf + at, 'x', strsz);
		expect_safe("dynstr without a NUL at the end of the image", buf, end);
		free(buf);
	}

	/* Versions. */
	if (!has_dyn(DT_VERDEF) || !has_dyn(DT_VERSYM))
		return;
#define VD(...) { Verdef *vd = table(img, DT_VERDEF); __VA_ARGS__; }
	SAFE("DT_VERDEFNUM huge", set_dyn(img, DT_VERDEFNUM, UINT64_MAX));
	SAFE("vd_next 0 (itself), count huge",
	     { set_dyn(img, DT_VERDEFNUM, UINT64_MAX); VD(vd->vd_next = 0); });
	SAFE("vd_next loops to itself, every entry", {
		set_dyn(img, DT_VERDEFNUM, UINT64_MAX);
		VD({
			for (Verdef *v = vd, *next; v; v = next) {
				next = v->vd_next ? (Verdef *)((char *)v + v->vd_next) : NULL;
				v->vd_next = 0;
			}
		});
	});
	for (size_t i = 0; i < NELEM(huge); i++) {
		snprintf(what, sizeof(what), "vd_next %#x", (uint32_t)huge[i]);
		SAFE(what, { set_dyn(img, DT_VERDEFNUM, UINT64_MAX);
			     VD(vd->vd_next = (uint32_t)huge[i]); });
		snprintf(what, sizeof(what), "vd_aux %#x", (uint32_t)huge[i]);
		SAFE(what, VD({
			for (Verdef *v = vd;; v = (Verdef *)((char *)v + v->vd_next)) {
				v->vd_aux = (uint32_t)huge[i];
				if (!v->vd_next)
					break;
			}
		}));
	}
	SAFE("vd_next misaligned", VD(vd->vd_next += 1));
	SAFE("vd_next to the last bytes",
	     VD(vd->vd_next = (uint32_t)(img + size - 8 - (unsigned char *)vd)));
	SAFE("vda_name past dynstr", VD({
		for (Verdef *v = vd;; v = (Verdef *)((char *)v + v->vd_next)) {
			((Verdaux *)((char *)v + v->vd_aux))->vda_name = UINT32_MAX;
			if (!v->vd_next)
				break;
		}
	}));
	SAFE("versym index 0x7fff", ((uint16_t *)table(img, DT_VERSYM))[1] = 0x7fff);
	SAFE("versym hidden", ((uint16_t *)table(img, DT_VERSYM))[1] |= 0x8000);
	REJECT("DT_VERSYM past the end",
	       set_dyn(img, DT_VERSYM, ph[load].p_vaddr + ph[load].p_filesz - 2));
#undef VD
}

/* Part 4: random mutations, from a fixed seed. */
static uint64_t rng_state;
#define rng() check_rng(&rng_state)
#define below(n) check_below(&rng_state, (n))

static uint64_t interesting(uint64_t old)
{
	const uint64_t v[] = { 0, 1, 2, 4, 7, 8, 16, 24, 0x7f, 0x80, 0xff, 0xffff,
			       0x7fffffff, 0x80000000, 0xffffffff, (uint64_t)1 << 32,
			       UINT64_MAX, UINT64_MAX - 7, (uint64_t)1 << 63, vdso_size,
			       vdso_size - 1, vdso_size + 1, need, need - 1 };
	switch (below(3)) {
	case 0: return v[below(NELEM(v))];
	case 1: return old + below(65) - 32;
	default: return rng();
	}
}

static void mutate(unsigned char *buf, size_t len)
{
	/* Mostly the headers and tables: that is where the reader looks. */
	size_t hot = need < len ? need : len;
	int n = 1 + (int)below(8);

	while (n--) {
		size_t where = below(8) == 0 ? len : hot;
		size_t at = below(where);

		switch (below(5)) {
		case 0:
			buf[at] ^= (unsigned char)(1u << below(8));
			break;
		case 1:
			buf[at] = (unsigned char)rng();
			break;
		case 2:
			at &= ~(size_t)3;
			if (at + 4 <= len) {
				uint32_t w;
				memcpy(&w, buf + at, 4);
				w = (uint32_t)interesting(w);
				memcpy(buf + at, &w, 4);
			}
			break;
		case 3:
			at &= ~(size_t)7;
			if (at + 8 <= len) {
				uint64_t w;
				memcpy(&w, buf + at, 8);
				w = interesting(w);
				memcpy(buf + at, &w, 8);
			}
			break;
		default: {
			/* A field the reader uses: a dynamic entry's value. */
			size_t k = below(16);
			at = dyn_off + k * sizeof(Dyn) + offsetof(Dyn, d_un);
			if (at + 8 <= len) {
				uint64_t w;
				memcpy(&w, buf + at, 8);
				w = interesting(w);
				memcpy(buf + at, &w, 8);
			}
		}
		}
	}
}

static void fuzz(void)
{
	const char *s = getenv("UCLOCK_ELF_SEED"), *it = getenv("UCLOCK_ELF_ITERS");
	uint64_t seed = s ? strtoull(s, NULL, 0) : 0x9e3779b97f4a7c15ull;
	long iters = it ? strtol(it, NULL, 0) : 50000;
	long opened = 0, syms = 0;
	int failures = check_failures;
	char what[64];

	rng_state = seed ? seed : 1;
	for (long i = 0; i < iters && check_failures == failures; i++) {
		size_t len = below(8) == 0 ? 1 + below(vdso_size) : vdso_size;
		unsigned char *buf = copy(len);
		struct uclock_elf elf;

		/* A quarter without DT_HASH: the count from the GNU hash. */
		if (len == vdso_size && below(4) == 0)
			drop_dyn(buf, DT_HASH);
		mutate(buf, len);
		snprintf(what, sizeof(what), "mutation %ld (seed %#llx)", i,
			 (unsigned long long)seed);
		if (uclock__elf_open(&elf, buf, len) == 0) {
			opened++;
			syms += (long)exercise(&elf, buf, len, what);
		} else {
			check_empty(&elf, what);
		}
		free(buf);
	}
	printf("fuzz: %ld mutations (seed %#llx): %ld opened, %ld symbols read\n",
	       iters, (unsigned long long)seed, opened, syms);
}

/* The prefix an open needs: headers, PT_DYNAMIC and each table it checks. */
static size_t needed(void)
{
	const Ehdr *eh = (const Ehdr *)vdso;
	unsigned char *img = copy(vdso_size);
	struct uclock_elf elf;
	size_t n = eh->e_phoff + eh->e_phnum * sizeof(Phdr), end;
	const Phdr *dyn = phdr(vdso, ph_index(PT_DYNAMIC));

#define UPTO(p, len) do { end = (size_t)((const unsigned char *)(p) - vdso) + (len); \
			  if (end > n) n = end; } while (0)
	UPTO(vdso + dyn->p_offset, dyn->p_filesz);
	if (!dyn_entry(img, DT_HASH) || uclock__elf_open(&elf, vdso, vdso_size) != 0) {
		free(img);
		return vdso_size; /* the GNU hash's reach: not worth working out */
	}
	need_known = 1;
	UPTO(vdso + ((unsigned char *)table(img, DT_HASH) - img), 8);
	UPTO(elf.dynsym, elf.nsyms * sizeof(Sym));
	UPTO(elf.dynstr, elf.dynstr_size);
	if (elf.versym)
		UPTO(elf.versym, elf.nsyms * 2);
	if (elf.verdef)
		UPTO(elf.verdef, sizeof(Verdef));
#undef UPTO
	free(img);
	return n;
}

int main(void)
{
	elapsed_s();
	vdso = test_elf_image(&vdso_size, &from_file);
	if (!vdso)
		check_skip(from_file ? "UCLOCK_ELF_IMAGE cannot be read"
				     : "no vDSO in this process");
	if (from_file)
		printf("the image in %s, not this process's vDSO\n",
		       getenv("UCLOCK_ELF_IMAGE"));
	else if (!getauxval(AT_SYSINFO_EHDR) ||
		 (uintptr_t)vdso != getauxval(AT_SYSINFO_EHDR))
		CHECK(0, "vDSO image %p is not AT_SYSINFO_EHDR", (void *)vdso);
	load_ph = ph_index(PT_LOAD);
	if (load_ph == (size_t)-1 || ph_index(PT_DYNAMIC) == (size_t)-1)
		check_skip("vDSO without PT_LOAD or PT_DYNAMIC");
	dyn_off = phdr(vdso, ph_index(PT_DYNAMIC))->p_offset;
	need = needed();
	printf("vDSO: %zu bytes, open needs the first %zu\n", vdso_size, need);

	if (!from_file)
		image_in_mapping();
	real_vdso();
	against_objdump();
	truncated();
	malformed();
	fuzz();
	printf("%.2fs\n", elapsed_s());
	return check_done("elf");
}
