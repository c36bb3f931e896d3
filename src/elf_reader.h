/*
 * A small ELF dynamic-symbol reader: the kernel's vDSO as mapped in this
 * process, or any image in memory.  Every offset is checked against the
 * image size.  Shared by the library (to call the vDSO) and the CLI (to
 * list it).
 */
#ifndef UCLOCK_ELF_READER_H
#define UCLOCK_ELF_READER_H

#include <stddef.h>
#include <stdint.h>

struct uclock_elf_symbol {
	const char *name;
	const char *version;   /* NULL if unversioned */
	uint64_t value;        /* st_value (link-time address) */
	uint64_t size;
	unsigned char type;    /* STT_* */
	unsigned char bind;    /* STB_* */
	uint16_t shndx;
	int hidden_version;    /* versym bit 15 */
};

struct uclock_elf {
	const unsigned char *image;
	size_t size;
	uintptr_t bias;        /* image address minus link-time address */
	const void *dynsym;
	const char *dynstr;
	size_t dynstr_size;
	size_t nsyms;
	const uint16_t *versym;
	const void *verdef;
	size_t verdef_count;
};

int uclock__elf_open(struct uclock_elf *elf, const void *image, size_t size);
int uclock__elf_symbol(const struct uclock_elf *elf, size_t index,
		       struct uclock_elf_symbol *sym);
void *uclock__elf_lookup(const struct uclock_elf *elf, const char *name,
			 const char *version);
const void *uclock__vdso_image(size_t *size);

#endif
