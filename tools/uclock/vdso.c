/*
 * uclock vdso: the kernel's vDSO as mapped here.  Lists the dynamic
 * symbols it defines (what objdump -T shows for the image), and --dump
 * writes the image to a file that objdump and readelf can read.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "elf_reader.h"

enum { OPT_JSON = 256, OPT_DUMP };  /* long-only: past every short option */

struct vdso {
	const void *image;
	size_t size;
	struct uclock_elf elf;
	int readable;       /* elf holds the image's symbols */
};

/* STT_* and STB_* as readelf spells them; numbers for the rest. */
static const char *type_name(unsigned type, char *buf, size_t size)
{
	static const char *const names[] = {
		[STT_NOTYPE] = "NOTYPE", [STT_OBJECT] = "OBJECT", [STT_FUNC] = "FUNC",
		[STT_SECTION] = "SECTION", [STT_FILE] = "FILE", [STT_COMMON] = "COMMON",
		[STT_TLS] = "TLS", [STT_GNU_IFUNC] = "IFUNC",
	};

	if (type < sizeof(names) / sizeof(names[0]) && names[type])
		return names[type];
	snprintf(buf, size, "%u", type);
	return buf;
}

static const char *bind_name(unsigned bind, char *buf, size_t size)
{
	static const char *const names[] = {
		[STB_LOCAL] = "LOCAL", [STB_GLOBAL] = "GLOBAL", [STB_WEAK] = "WEAK",
		[STB_GNU_UNIQUE] = "UNIQUE",
	};

	if (bind < sizeof(names) / sizeof(names[0]) && names[bind])
		return names[bind];
	snprintf(buf, size, "%u", bind);
	return buf;
}

/*
 * The symbols objdump -T lists for the image: all but the null entry and
 * undefined references (a vDSO has none, but a dump might be edited).
 */
static int next_symbol(const struct vdso *v, size_t *i, struct uclock_elf_symbol *sym)
{
	while (++*i < v->elf.nsyms)
		if (uclock__elf_symbol(&v->elf, *i, sym) == 0 && sym->shndx != SHN_UNDEF)
			return 1;
	return 0;
}

static void text(const struct vdso *v)
{
	struct uclock_elf_symbol sym;
	char tbuf[8], bbuf[8], version[80];
	size_t i = 0;

	printf("vDSO at %p, %zu bytes\n\n", v->image, v->size);
	printf("%-16s %6s  %-7s %-7s %-12s %s\n", "address", "size", "type", "bind",
	       "version", "name");
	while (next_symbol(v, &i, &sym)) {
		/* objdump's convention: a hidden version in parentheses. */
		snprintf(version, sizeof(version), sym.hidden_version ? "(%s)" : "%s",
			 sym.version ? sym.version : "-");
		printf("%016llx %6llu  %-7s %-7s %-12s %s\n",
		       (unsigned long long)sym.value, (unsigned long long)sym.size,
		       type_name(sym.type, tbuf, sizeof(tbuf)),
		       bind_name(sym.bind, bbuf, sizeof(bbuf)), version, sym.name);
	}
}

/* Symbols null when there is no image, or none this reader accepts. */
static int json(const struct vdso *v)
{
	struct json *j = json_open(stdout);
	struct uclock_elf_symbol sym;
	char tbuf[8], bbuf[8];
	size_t i = 0;

	if (!j)
		return 1;
	json_bool(j, "mapped", v->image != NULL);
	if (v->image) {
		json_address(j, "address", (uintptr_t)v->image);
		json_uint(j, "size_bytes", v->size);
	} else {
		json_null(j, "address");
		json_null(j, "size_bytes");
	}
	if (!v->readable) {
		json_null(j, "symbols");
		json_close(j);
		return 0;
	}
	json_array(j, "symbols");
	while (next_symbol(v, &i, &sym)) {
		json_object(j, NULL);
		json_string(j, "name", sym.name);
		json_string(j, "version", sym.version);
		json_bool(j, "hidden_version", sym.hidden_version);
		json_address(j, "address", sym.value);
		json_uint(j, "size_bytes", sym.size);
		json_string(j, "type", type_name(sym.type, tbuf, sizeof(tbuf)));
		json_string(j, "bind", bind_name(sym.bind, bbuf, sizeof(bbuf)));
		json_end(j);
	}
	json_close(j);
	return 0;
}

static int write_all(int fd, const unsigned char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* The image as mapped: the kernel maps the whole file, headers included. */
static int dump(const struct vdso *v, const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	int err = 0;

	if (fd < 0)
		err = errno;
	else if (write_all(fd, v->image, v->size) != 0)
		err = errno;
	if (fd >= 0 && close(fd) != 0 && !err)
		err = errno;
	if (!err)
		return 0;
	fprintf(stderr, "uclock vdso: %s: %s\n", path, strerror(err));
	if (fd >= 0)
		unlink(path);  /* no half image for objdump to misread */
	return 1;
}

static int usage(void)
{
	printf("usage: uclock vdso [--dump FILE] [--json]\n\n"
	       "The dynamic symbols the kernel's vDSO defines here, as objdump -T\n"
	       "lists them: address, size, type, binding, version, name.\n\n"
	       "  --dump FILE  write the mapped image to FILE (for objdump, readelf)\n"
	       "               instead of the listing; with --json, both\n"
	       "  --json       the listing as one JSON object\n"
	       "  -h, --help   this help\n\n"
	       "Exit status: 0 listed or written, 1 no vDSO or not readable,\n"
	       "2 bad usage.\n");
	return 0;
}

static int run(const char *dump_path, int as_json)
{
	struct vdso v = {0};

	v.image = uclock__vdso_image(&v.size);
	if (!v.image) {
		fprintf(stderr, "no vDSO mapped in this process\n");
		if (as_json)
			json(&v);
		return 1;
	}
	if (dump_path && dump(&v, dump_path) != 0)
		return 1;
	if (dump_path && !as_json) {
		printf("wrote the vDSO image (%zu bytes) to %s\n", v.size, dump_path);
		return 0;
	}
	v.readable = uclock__elf_open(&v.elf, v.image, v.size) == 0;
	if (!v.readable)
		fprintf(stderr, "uclock vdso: the vDSO image is not an ELF file "
				"this reader accepts\n");
	if (as_json)
		json(&v);
	else if (v.readable)
		text(&v);
	return v.readable ? 0 : 1;
}

int cmd_vdso(int argc, char **argv)
{
	static const struct option options[] = {
		{"dump", required_argument, NULL, OPT_DUMP},
		{"json", no_argument, NULL, OPT_JSON},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *dump_path = NULL;
	int as_json = 0, c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
		switch (c) {
		case OPT_DUMP: dump_path = optarg; break;
		case OPT_JSON: as_json = 1; break;
		case 'h': return usage();
		default: return option_error("vdso", c, argv);
		}
	}
	if (optind < argc)
		return usage_error("vdso", "unexpected argument '%s'", argv[optind]);
	return run(dump_path, as_json);
}
