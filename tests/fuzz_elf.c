/*
 * The ELF reader under a fuzzer.  LLVMFuzzerTestOneInput() opens any input
 * as a vDSO image, reads every symbol and looks one up; whatever the input,
 * nothing it hands out may point outside the image.  Each input is copied
 * into an exact-size heap buffer so that AddressSanitizer catches the first
 * byte read past its end.
 *
 * Built with -fsanitize=fuzzer -DUCLOCK_LIBFUZZER it is a libFuzzer target:
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -DUCLOCK_LIBFUZZER \
 *	-Iinclude -Isrc tests/fuzz_elf.c src/elf_reader.c -o fuzz_elf
 *   uclock vdso --dump corpus/vdso.so && ./fuzz_elf corpus
 * Without it, a test program: the real vDSO (or UCLOCK_ELF_IMAGE's file),
 * a fixed run of mutations of it (UCLOCK_FUZZ_ITERS, UCLOCK_FUZZ_SEED) and
 * any files or directories named on the command line (a corpus, crashes to
 * replay).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "elf_reader.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static long opened;  /* inputs the reader accepted: the driver reports it */

/* Not assert(): the invariants must hold in every build. */
#define MUST(cond)                                                          \
	do {                                                                \
		if (!(cond)) {                                              \
			fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__,  \
				#cond);                                     \
			abort();                                            \
		}                                                           \
	} while (0)

static int inside(const void *p, size_t len, const unsigned char *buf, size_t size)
{
	uintptr_t a = (uintptr_t)p, b = (uintptr_t)buf;

	return a >= b && a - b <= size && len <= size - (a - b);
}

/* A string the reader hands out: in the image, and ending there. */
static void check_string(const char *s, const unsigned char *buf, size_t size)
{
	MUST(inside(s, 1, buf, size));
	MUST(inside(s, strlen(s) + 1, buf, size));
}

static void walk(const struct uclock_elf *elf, const unsigned char *buf, size_t size)
{
	struct uclock_elf_symbol sym;
	const char *first = NULL, *first_version = NULL;

	for (size_t i = 0; i < elf->nsyms; i++) {
		if (uclock__elf_symbol(elf, i, &sym) != 0)
			continue;
		check_string(sym.name, buf, size);
		if (sym.version)
			check_string(sym.version, buf, size);
		if (!first && i > 0 && sym.name[0]) {
			first = sym.name;
			first_version = sym.version;
		}
	}
	MUST(uclock__elf_symbol(elf, elf->nsyms, &sym) != 0);
	/* A lookup returns code inside the image or nothing. */
	const char *names[] = { "__vdso_clock_gettime", "__kernel_clock_gettime", first };
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		void *fn;

		if (!names[i])
			continue;
		fn = uclock__elf_lookup(elf, names[i], NULL);
		MUST(!fn || inside(fn, 1, buf, size));
		fn = uclock__elf_lookup(elf, names[i], first_version ? first_version
								     : "LINUX_2.6");
		MUST(!fn || inside(fn, 1, buf, size));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* malloc's alignment is the reader's requirement (an Ehdr's). */
	unsigned char *buf = malloc(size ? size : 1);
	struct uclock_elf elf;

	if (!buf)
		return 0;
	if (size)
		memcpy(buf, data, size);
	if (uclock__elf_open(&elf, buf, size) == 0) {
		opened++;
		walk(&elf, buf, size);
	} else {
		MUST(elf.nsyms == 0 && !elf.dynsym);
	}
	free(buf);
	return 0;
}

#ifndef UCLOCK_LIBFUZZER
#include <dirent.h>
#include <elf.h>
#include <link.h>
#include <sys/stat.h>

#include "check.h"

static uint64_t rng_state;
#define rng() check_rng(&rng_state)
#define below(n) check_below(&rng_state, (n))

/* Values that make offsets and counts go wrong: edges and near misses. */
static uint64_t interesting(uint64_t old, size_t size)
{
	static const uint64_t edges[] = { 0, 1, 2, 7, 8, 0x7f, 0x80, 0xff, 0xffff,
					  0x7fffffff, 0x80000000, 0xffffffff,
					  (uint64_t)1 << 32, UINT64_MAX, UINT64_MAX - 7,
					  (uint64_t)1 << 63 };

	switch (below(4)) {
	case 0: return edges[below(sizeof(edges) / sizeof(edges[0]))];
	case 1: return old + below(65) - 32;
	case 2: return size - below(16);
	default: return rng();
	}
}

/* The real image's PT_DYNAMIC: the headers and tables all come before
 * its end, and the DT_HASH entry in it. */
static const ElfW(Phdr) *dynamic_phdr(const unsigned char *image)
{
	const ElfW(Ehdr) *eh = (const void *)image;
	const ElfW(Phdr) *ph = (const void *)(image + eh->e_phoff);

	for (size_t i = 0; i < eh->e_phnum; i++)
		if (ph[i].p_type == PT_DYNAMIC)
			return &ph[i];
	return NULL;
}

/* Without DT_HASH the reader counts symbols from DT_GNU_HASH. */
static void drop_hash(unsigned char *buf, size_t size, const ElfW(Phdr) *dyn)
{
	ElfW(Dyn) *d = (void *)(buf + dyn->p_offset);

	if (dyn->p_offset + dyn->p_filesz > size)
		return;
	for (size_t i = 0; i < dyn->p_filesz / sizeof(*d); i++)
		if (d[i].d_tag == DT_HASH)
			d[i].d_tag = DT_DEBUG;
}

/* Mostly where the reader looks (hot bytes), sometimes anywhere. */
static void mutate(unsigned char *buf, size_t size, size_t hot)
{
	if (hot > size)
		hot = size;
	for (int n = 1 + (int)below(8); size && n > 0; n--) {
		size_t at = below(below(8) ? hot : size);
		uint64_t w = 0;
		size_t width = (size_t)1 << below(4);  /* 1, 2, 4 or 8 bytes */

		if (below(2)) {
			buf[at] ^= (unsigned char)(1u << below(8));
			continue;
		}
		at &= ~(width - 1);
		if (at + width > size)
			continue;
		memcpy(&w, buf + at, width);
		w = interesting(w, size);
		memcpy(buf + at, &w, width);
	}
}

static void mutations(const unsigned char *image, size_t size)
{
	const char *it = getenv("UCLOCK_FUZZ_ITERS"), *s = getenv("UCLOCK_FUZZ_SEED");
	long iters = it ? strtol(it, NULL, 0) : 5000;
	uint64_t seed = s ? strtoull(s, NULL, 0) : 0x2545f4914f6cdd1dull;
	const ElfW(Phdr) *dyn = dynamic_phdr(image);
	size_t hot = dyn ? dyn->p_offset + dyn->p_filesz : size;
	unsigned char *buf = malloc(size);
	long before = opened;

	if (!buf)
		abort();
	rng_state = seed ? seed : 1;
	for (long i = 0; i < iters; i++) {
		/* One in eight cut short: tables that run off the end. */
		size_t len = below(8) == 0 ? below(size + 1) : size;

		memcpy(buf, image, size);
		if (dyn && below(4) == 0)
			drop_hash(buf, len, dyn);
		mutate(buf, len, hot);
		LLVMFuzzerTestOneInput(buf, len);
	}
	free(buf);
	printf("%ld mutations of the vDSO (seed %#llx): %ld opened\n", iters,
	       (unsigned long long)seed, opened - before);
}

static void run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	unsigned char *data = NULL;
	size_t size = 0, cap = 0, n;

	CHECK(f, "%s: cannot open", path);
	if (!f)
		return;
	do {
		if (size == cap) {
			cap = cap ? 2 * cap : 65536;
			data = realloc(data, cap);
			if (!data)
				abort();
		}
		n = fread(data + size, 1, cap - size, f);
		size += n;
	} while (n > 0);
	fclose(f);
	LLVMFuzzerTestOneInput(data, size);
	free(data);
}

/* A file, or every file in a directory (a libFuzzer corpus). */
static long run_path(const char *path)
{
	struct stat st;
	struct dirent *e;
	char sub[4096];
	long count = 0;
	DIR *d;

	if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
		run_file(path);
		return 1;
	}
	d = opendir(path);
	CHECK(d, "%s: cannot read the directory", path);
	while (d && (e = readdir(d))) {
		snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
		if (stat(sub, &st) == 0 && S_ISREG(st.st_mode)) {
			run_file(sub);
			count++;
		}
	}
	if (d)
		closedir(d);
	return count;
}

int main(int argc, char **argv)
{
	size_t size;
	int from_file;
	const unsigned char *image = test_elf_image(&size, &from_file);
	struct uclock_elf elf;
	long files = 0;

	for (int i = 1; i < argc; i++)
		files += run_path(argv[i]);
	if (argc > 1)
		printf("%ld input file(s)\n", files);
	if (!image) {
		if (argc > 1)
			return check_done("fuzz_elf");
		check_skip("no vDSO in this process");
	}
	/* The fuzzer must see a real image open, or it tests only rejection. */
	CHECK(uclock__elf_open(&elf, image, size) == 0 && elf.nsyms > 1,
	      "the %s (%zu bytes) does not open", from_file ? "image" : "real vDSO", size);
	LLVMFuzzerTestOneInput(image, size);
	mutations(image, size);
	return check_done("fuzz_elf");
}
#endif
