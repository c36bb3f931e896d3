#ifndef UCLOCK_LATCH_H
#define UCLOCK_LATCH_H

#include <stdint.h>

#include "uclock.h"

uint32_t uclock__copy_load(const struct uclock__page *page,
			   struct uclock__copy *out);
/* As above, with an ordered counter read inside the read section. */
uint32_t uclock__copy_load_at(const struct uclock__page *page,
			      struct uclock__copy *out,
			      uint64_t (*counter)(void *), void *ctx,
			      uint64_t *now);
/* One given copy, no retry: the caller validates it (staged copies). */
void uclock__copy_load_one(const struct uclock__page *page, uint32_t seq,
			   struct uclock__copy *out, uint64_t (*counter)(void *),
			   void *ctx, uint64_t *now);
int uclock__seq_changed(const struct uclock__page *page, uint32_t seq);
/* Writer side: the current copy ('seq') serves further, its lines
 * unchanged: its limit raised in place.  A reader sees the old limit or the
 * new one, either right for the same lines. */
void uclock__copy_raise_limit(struct uclock__page *page, uint32_t seq, uint64_t limit);
/* Writer side: stage into the inactive copy, then flip.  One writer. */
void uclock__copy_stage(struct uclock__page *page,
			const struct uclock__copy *next);
void uclock__copy_flip(struct uclock__page *page);

#endif
