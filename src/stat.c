/* uclock_stat(): what the process-wide clock is doing, for diagnostics. */
#include <errno.h>
#include <string.h>

#include "internal.h"

static const char *mode_name(int mode)
{
	switch (mode) {
	case UCLOCK_MODE_WARMUP: return "warmup";
	case UCLOCK_MODE_COUNTER: return "counter";
	case UCLOCK_MODE_KERNEL: return "kernel";
	case UCLOCK_MODE_SHARED: return "shared";
	default: return "uninit";
	}
}

static const char *source_name(int source)
{
	switch (source) {
	case UCLOCK_SOURCE_COUNTER: return UCLOCK__COUNTER_NAME;
	case UCLOCK_SOURCE_KERNEL: return "kernel";
	default: return "none";
	}
}

#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)

static void fill_rates(struct uclock_stat *st, const struct uclock__copy *c)
{
	if (c->mode != UCLOCK_MODE_COUNTER || !c->raw_mult || !c->mult)
		return;
	st->counter_hz = (uint64_t)(((u128)NSEC_PER_SEC << 32) / c->raw_mult);
	st->kernel_rate_ppm = ((double)c->mult / (double)c->raw_mult - 1.0) * 1e6;
}

UCLOCK_API int uclock_stat(struct uclock_stat *st)
{
	const struct uclock_tk *tk = &uclock__global;
	struct uclock_stat out;
	struct uclock__copy c;
	uint64_t now;

	if (!st || st->size < sizeof(size_t)) {
		errno = EINVAL;
		return -1;
	}
	uclock__global_ready();
	memset(&out, 0, sizeof(out));
	out.size = st->size < sizeof(out) ? st->size : sizeof(out);
	const struct uclock__page *page = uclock__page;
	int shared = uclock__attached();

	uclock__copy_load(page, &c);
	now = page->source == UCLOCK_SOURCE_COUNTER ? uclock__counter_fenced() : 0;

	out.mode = shared ? UCLOCK_MODE_SHARED : (int)c.mode;
	out.source = (int)page->source;
	out.mode_name = mode_name(out.mode);
	out.source_name = source_name(out.source);
	out.reason = uclock__global_reason();
	out.counter_read = uclock__global_counter_read();
	out.kernel_path = uclock__kernel_has_vdso() ? "vdso" : "syscall";
	out.interval_ns = uclock__tk_interval(tk);
	/* On the shared page, the writer's figures travel with each copy. */
	out.mono_offset_ns = shared ? c.mono_err_ns : LOAD(tk->mono_err_ns);
	out.raw_offset_ns = shared ? c.raw_err_ns : LOAD(tk->raw_err_ns);
	out.real_offset_ns = c.base_real - c.base_mono;
	out.boot_offset_ns = c.base_boot - c.base_mono;
	out.tai_offset_ns = c.base_tai - c.base_real;
	out.rate_correction_ppm =
		(double)(shared ? c.rate_corr_ppb : LOAD(tk->rate_corr_ppb)) / 1000.0;
	out.updates = shared ? c.updates : LOAD(tk->updates);
	out.warmups = LOAD(tk->warmups);
	out.discontinuities = shared ? c.discontinuities : LOAD(tk->discontinuities);
	out.page = uclock__attach_path();
	out.page_reason = uclock__attach_reason();
	out.writer_pid = uclock__attach_writer();
	out.realtime_steps = LOAD(tk->realtime_steps);
	out.kernel_readings = LOAD(tk->kernel_readings);
	out.update_time_ns = LOAD(tk->update_ns_total);
	out.counter_name = UCLOCK__COUNTER_NAME;
	out.counter_nominal_hz = uclock__counter_nominal_hz();
	fill_rates(&out, &c);
	if (c.mode == UCLOCK_MODE_COUNTER)
		out.age_ns = (int64_t)((((u128)((now - c.cycle_last) & c.mask)) *
					c.raw_mult) >> 32);
	memcpy(st, &out, out.size);
	return 0;
}
