/*
 * The inline readers as functions, for callers that cannot compile C
 * inline functions: Python's ctypes, Rust and Go through FFI.  Same names
 * and results as the header's readers; a call costs a function call more.
 * C and C++ programs get the inline readers from the header, whose static
 * definitions shadow these.
 */
#define uclock_mono_ns uclock__inline_mono_ns
#define uclock_real_ns uclock__inline_real_ns
#define uclock_ticks uclock__inline_ticks
#include "uclock.h"
#undef uclock_mono_ns
#undef uclock_real_ns
#undef uclock_ticks

UCLOCK_API int64_t uclock_mono_ns(void);
UCLOCK_API int64_t uclock_real_ns(void);
UCLOCK_API uint64_t uclock_ticks(void);

int64_t uclock_mono_ns(void)
{
	return uclock__inline_mono_ns();
}

int64_t uclock_real_ns(void)
{
	return uclock__inline_real_ns();
}

uint64_t uclock_ticks(void)
{
	return uclock__inline_ticks();
}
