/*
 * A small ELF dynamic-symbol reader, enough to find the kernel's vDSO
 * functions (as glibc and musl do) and to list the vDSO's symbols.  Every
 * offset is checked against the image size: a malformed image is rejected,
 * never followed.
 */
#include <elf.h>
#include <errno.h>
#include <link.h>
#include <string.h>
#include <sys/auxv.h>

#include "elf_reader.h"

#if __SIZEOF_POINTER__ == 8
#define NATIVE_CLASS ELFCLASS64
#else
#define NATIVE_CLASS ELFCLASS32
#endif

typedef ElfW(Ehdr) Ehdr;
typedef ElfW(Phdr) Phdr;
typedef ElfW(Dyn) Dyn;
typedef ElfW(Sym) Sym;

static int in_range(size_t size, uint64_t off, uint64_t len)
{
	return off <= size && len <= size - off;
}

static const Phdr *phdrs(const unsigned char *image, size_t size, size_t *n)
{
	const Ehdr *eh = (const Ehdr *)image;

	if (eh->e_phentsize != sizeof(Phdr) ||
	    !in_range(size, eh->e_phoff, (uint64_t)eh->e_phnum * sizeof(Phdr)) ||
	    eh->e_phoff % _Alignof(Phdr) != 0)
		return NULL;
	*n = eh->e_phnum;
	return (const Phdr *)(image + eh->e_phoff);
}

/* File offset of a link-time address, through the PT_LOAD holding it. */
static int vaddr_offset(const unsigned char *image, size_t size, uint64_t vaddr,
			uint64_t len, uint64_t *off)
{
	size_t n;
	const Phdr *ph = phdrs(image, size, &n);

	for (size_t i = 0; ph && i < n; i++) {
		if (ph[i].p_type != PT_LOAD || vaddr < ph[i].p_vaddr ||
		    vaddr - ph[i].p_vaddr >= ph[i].p_filesz ||
		    len > ph[i].p_filesz - (vaddr - ph[i].p_vaddr))
			continue;
		*off = vaddr - ph[i].p_vaddr + ph[i].p_offset;
		return in_range(size, *off, len) ? 0 : -1;
	}
	return -1;
}

static const void *at_vaddr(const struct uclock_elf *elf, uint64_t vaddr,
			    uint64_t len, size_t align)
{
	uint64_t off;

	if (vaddr_offset(elf->image, elf->size, vaddr, len, &off) != 0 ||
	    off % align != 0)
		return NULL;
	return elf->image + off;
}

struct dyn_info {
	uint64_t symtab, strtab, strsz, hash, gnu_hash, versym, verdef;
	uint64_t verdefnum, syment;
	int have_symtab, have_strtab, have_hash, have_gnu_hash;
};

static int read_dynamic(const unsigned char *image, size_t size,
			struct dyn_info *d)
{
	size_t n;
	const Phdr *ph = phdrs(image, size, &n);
	const Dyn *dyn = NULL;
	size_t count = 0;

	memset(d, 0, sizeof(*d));
	for (size_t i = 0; ph && i < n; i++) {
		if (ph[i].p_type != PT_DYNAMIC)
			continue;
		if (!in_range(size, ph[i].p_offset, ph[i].p_filesz) ||
		    ph[i].p_offset % _Alignof(Dyn) != 0)
			return -1;
		dyn = (const Dyn *)(image + ph[i].p_offset);
		count = ph[i].p_filesz / sizeof(Dyn);
	}
	if (!dyn)
		return -1;
	for (size_t i = 0; i < count && dyn[i].d_tag != DT_NULL; i++) {
		uint64_t v = dyn[i].d_un.d_val;

		switch (dyn[i].d_tag) {
		case DT_SYMTAB: d->symtab = v; d->have_symtab = 1; break;
		case DT_STRTAB: d->strtab = v; d->have_strtab = 1; break;
		case DT_STRSZ: d->strsz = v; break;
		case DT_SYMENT: d->syment = v; break;
		case DT_HASH: d->hash = v; d->have_hash = 1; break;
		case DT_GNU_HASH: d->gnu_hash = v; d->have_gnu_hash = 1; break;
		case DT_VERSYM: d->versym = v; break;
		case DT_VERDEF: d->verdef = v; break;
		case DT_VERDEFNUM: d->verdefnum = v; break;
		default: break;
		}
	}
	if (!d->have_symtab || !d->have_strtab || d->strsz == 0 ||
	    (d->syment && d->syment != sizeof(Sym)))
		return -1;
	return 0;
}

/* Symbol count from DT_GNU_HASH: past the highest chain's end. */
static int gnu_hash_count(const struct uclock_elf *elf, uint64_t addr,
			  size_t *count)
{
	const uint32_t *h = at_vaddr(elf, addr, 16, 4);

	if (!h)
		return -1;
	uint32_t nbuckets = h[0], symoffset = h[1], bloom = h[2];
	uint64_t buckets = addr + 16 + (uint64_t)bloom * sizeof(ElfW(Addr));
	const uint32_t *b = at_vaddr(elf, buckets, (uint64_t)nbuckets * 4, 4);

	if (!b)
		return -1;
	uint32_t last = 0;
	for (uint32_t i = 0; i < nbuckets; i++)
		if (b[i] > last)
			last = b[i];
	if (last < symoffset) {
		*count = symoffset;
		return 0;
	}
	uint64_t chain = buckets + (uint64_t)nbuckets * 4;
	for (uint32_t guard = 0; guard < 1u << 20; guard++, last++) {
		const uint32_t *c = at_vaddr(elf, chain + (uint64_t)(last - symoffset) * 4,
					     4, 4);
		if (!c)
			return -1;
		if (*c & 1) {
			*count = (size_t)last + 1;
			return 0;
		}
	}
	return -1;
}

static int elf_parse(struct uclock_elf *elf, const void *image, size_t size)
{
	const unsigned char *p = image;
	struct dyn_info d;

	if (!image || size < sizeof(Ehdr) || memcmp(p, ELFMAG, SELFMAG) != 0 ||
	    p[EI_CLASS] != NATIVE_CLASS || p[EI_VERSION] != EV_CURRENT ||
	    ((uintptr_t)image % _Alignof(Ehdr)) != 0)
		return -EINVAL;
	elf->image = p;
	elf->size = size;
	if (read_dynamic(p, size, &d) != 0)
		return -EINVAL;

	if (d.have_hash) {
		const uint32_t *h = at_vaddr(elf, d.hash, 8, 4);
		if (!h)
			return -EINVAL;
		elf->nsyms = h[1];
	} else if (!d.have_gnu_hash || gnu_hash_count(elf, d.gnu_hash, &elf->nsyms)) {
		return -EINVAL;
	}
	if (elf->nsyms > size / sizeof(Sym))
		return -EINVAL;
	elf->dynsym = at_vaddr(elf, d.symtab, (uint64_t)elf->nsyms * sizeof(Sym),
			       _Alignof(Sym));
	elf->dynstr = at_vaddr(elf, d.strtab, d.strsz, 1);
	elf->dynstr_size = d.strsz;
	if (!elf->dynsym || !elf->dynstr)
		return -EINVAL;
	if (d.versym) {
		elf->versym = at_vaddr(elf, d.versym, (uint64_t)elf->nsyms * 2, 2);
		if (!elf->versym)
			return -EINVAL;
	}
	if (d.verdef && d.verdefnum) {
		elf->verdef = at_vaddr(elf, d.verdef, sizeof(ElfW(Verdef)),
				       _Alignof(ElfW(Verdef)));
		elf->verdef_count = d.verdefnum;
		if (!elf->verdef)
			return -EINVAL;
	}
	return 0;
}

int uclock__elf_open(struct uclock_elf *elf, const void *image, size_t size)
{
	int err;

	memset(elf, 0, sizeof(*elf));
	err = elf_parse(elf, image, size);
	/*
	 * The parse fills the reader as it goes (a symbol count before the
	 * table it counts is found): a rejected image must leave no symbols
	 * behind, or a symbol walk on it would follow a NULL table.
	 */
	if (err)
		memset(elf, 0, sizeof(*elf));
	return err;
}

static const char *string_at(const struct uclock_elf *elf, uint64_t off)
{
	if (off >= elf->dynstr_size ||
	    !memchr(elf->dynstr + off, '\0', elf->dynstr_size - off))
		return NULL;
	return elf->dynstr + off;
}

/* The name of version index ndx, from the Verdef chain. */
static const char *version_name(const struct uclock_elf *elf, unsigned ndx)
{
	const unsigned char *vd = elf->verdef;

	for (size_t i = 0; vd && i < elf->verdef_count; i++) {
		const ElfW(Verdef) *def = (const ElfW(Verdef) *)vd;
		uint64_t off = (uint64_t)(vd - elf->image);

		if (!in_range(elf->size, off, sizeof(*def)))
			return NULL;
		if ((def->vd_ndx & 0x7fff) == ndx && def->vd_cnt > 0) {
			uint64_t aux = off + def->vd_aux;
			if (!in_range(elf->size, aux, sizeof(ElfW(Verdaux))) ||
			    aux % _Alignof(ElfW(Verdaux)))
				return NULL;
			return string_at(elf, ((const ElfW(Verdaux) *)(elf->image + aux))
						      ->vda_name);
		}
		if (def->vd_next == 0 || def->vd_next % _Alignof(ElfW(Verdef)) ||
		    !in_range(elf->size, off + def->vd_next, sizeof(*def)))
			return NULL;
		vd += def->vd_next;
	}
	return NULL;
}

int uclock__elf_symbol(const struct uclock_elf *elf, size_t index,
		       struct uclock_elf_symbol *sym)
{
	const Sym *s;

	if (index >= elf->nsyms)
		return -ERANGE;
	s = (const Sym *)elf->dynsym + index;
	memset(sym, 0, sizeof(*sym));
	sym->name = string_at(elf, s->st_name);
	if (!sym->name)
		return -EINVAL;
	sym->value = s->st_value;
	sym->size = s->st_size;
	sym->type = ELF64_ST_TYPE(s->st_info);
	sym->bind = ELF64_ST_BIND(s->st_info);
	sym->shndx = s->st_shndx;
	if (elf->versym) {
		unsigned v = elf->versym[index];

		sym->hidden_version = (v & 0x8000) != 0;
		if ((v & 0x7fff) > 1)
			sym->version = version_name(elf, v & 0x7fff);
	}
	return 0;
}

void *uclock__elf_lookup(const struct uclock_elf *elf, const char *name,
			 const char *version)
{
	struct uclock_elf_symbol sym;

	for (size_t i = 1; i < elf->nsyms; i++) {
		uint64_t off;

		if (uclock__elf_symbol(elf, i, &sym) != 0 ||
		    strcmp(sym.name, name) != 0 || sym.shndx == SHN_UNDEF ||
		    sym.type != STT_FUNC)
			continue;
		if (version && (!sym.version || strcmp(sym.version, version)))
			continue;
		if (vaddr_offset(elf->image, elf->size, sym.value, 1, &off) != 0)
			continue;
		return (void *)(uintptr_t)(elf->image + off);
	}
	return NULL;
}

/*
 * The vDSO as mapped in this process: its headers say how far the image
 * goes (loadable part and section headers; the kernel maps it whole).
 */
const void *uclock__vdso_image(size_t *size)
{
	const unsigned char *p = (const unsigned char *)getauxval(AT_SYSINFO_EHDR);
	const Ehdr *eh = (const Ehdr *)p;
	size_t n, end = 0, first_page = 4096;

	if (!p || memcmp(p, ELFMAG, SELFMAG) != 0 || p[EI_CLASS] != NATIVE_CLASS)
		return NULL;
	const Phdr *ph = phdrs(p, first_page, &n);
	for (size_t i = 0; ph && i < n; i++)
		if (ph[i].p_type == PT_LOAD && ph[i].p_offset + ph[i].p_filesz > end)
			end = ph[i].p_offset + ph[i].p_filesz;
	if (eh->e_shoff && eh->e_shentsize)
		if (eh->e_shoff + (uint64_t)eh->e_shnum * eh->e_shentsize > end)
			end = eh->e_shoff + (size_t)eh->e_shnum * eh->e_shentsize;
	if (end < sizeof(Ehdr))
		return NULL;
	*size = end;
	return p;
}
