/*
 * The JSON objects more than one command writes, written here once so that
 * one thing has one name in every command: the platform (info and the
 * report) and libuclock's state (info, the report, bench, watch).
 * man/uclock.1 lists their keys once, as "The platform object" and "The
 * uclock object".  What the machine did not say, or what does not apply,
 * is null: never 0 or "", which a script would take for a value.
 */
#include <elf.h>
#include <string.h>

#include "cli.h"
#include "platform.h"
#include "uclock.h"

/* Strings the machine did not give are null, not "". */
static void json_text(struct json *j, const char *key, const char *s)
{
	json_string(j, key, s && *s ? s : NULL);
}

/* A frequency nobody reported is null, not 0. */
static void json_hz(struct json *j, const char *key, uint64_t hz)
{
	if (hz)
		json_uint(j, key, hz);
	else
		json_null(j, key);
}

/* A space-separated list as an array; null if the list could not be read. */
static void json_words(struct json *j, const char *key, const char *words)
{
	char copy[256], *save, *w;

	if (!*words) {
		json_null(j, key);
		return;
	}
	snprintf(copy, sizeof(copy), "%s", words);
	json_array(j, key);
	for (w = strtok_r(copy, " \t", &save); w; w = strtok_r(NULL, " \t", &save))
		json_string(j, NULL, w);
	json_end(j);
}

static void json_cpu(struct json *j, const struct platform *p)
{
	json_object(j, "cpu");
	json_text(j, "vendor", p->cpu_vendor);
	json_text(j, "model", p->cpu_model);
	json_text(j, "hypervisor", p->hypervisor);
	/* CPUID 0x16: the CPU's base frequency, not the TSC's. */
	json_hz(j, "base_frequency_hz", p->cpu_base_hz_leaf16);
	json_end(j);
}

static void json_tsc(struct json *j, const struct platform *p)
{
	json_object(j, "tsc");
	json_bool(j, "present", p->tsc.present);
	json_bool(j, "invariant", p->tsc.invariant);
	json_bool(j, "constant", p->tsc.constant);
	json_bool(j, "nonstop", p->tsc.nonstop);
	json_bool(j, "known_freq", p->tsc.known_freq);
	json_bool(j, "rdtscp", p->tsc.rdtscp);
	json_bool(j, "rdpid", p->tsc.rdpid);
	json_bool(j, "reliable", p->tsc.reliable);
	json_bool(j, "kvm_stable", p->tsc.kvm_stable);
	json_hz(j, "cpuid_frequency_hz", p->tsc_hz_leaf15);
	json_hz(j, "hypervisor_frequency_hz", p->tsc_hz_hypervisor);
	json_end(j);
}

/* arm64's generic timer; present false (and the rest null) elsewhere. */
static void json_cntvct(struct json *j, const struct platform *p)
{
	json_object(j, "cntvct");
	json_bool(j, "present", p->cntvct.present);
	if (p->cntvct.present) {
		json_hz(j, "frequency_hz", p->cntvct.frequency_hz);
		json_bool(j, "self_synchronized", p->cntvct.self_synchronized);
	} else {
		json_null(j, "frequency_hz");
		json_null(j, "self_synchronized");
	}
	json_end(j);
}

/* The vDSO's symbols null when there is no image this reader accepts. */
static void json_vdso(struct json *j, const struct platform *p)
{
	struct uclock_elf_symbol sym;
	int mapped = p->vdso_mapped && p->vdso_size;
	size_t i = 0;

	json_object(j, "vdso");
	json_bool(j, "mapped", mapped);
	if (mapped)
		json_uint(j, "size_bytes", p->vdso_size);
	else
		json_null(j, "size_bytes");
	if (!p->vdso.nsyms) {
		json_null(j, "symbols");
		json_end(j);
		return;
	}
	json_array(j, "symbols");
	while (platform_vdso_symbol(p, &i, &sym)) {
		json_object(j, NULL);
		json_string(j, "name", sym.name);
		json_string(j, "version", sym.version);
		json_string(j, "type", sym.type == STT_FUNC ? "FUNC" : "OBJECT");
		json_end(j);
	}
	json_end(j);
	json_end(j);
}

/* adjtimex failed: nothing about NTP is known. */
static void json_ntp(struct json *j, const struct platform *p)
{
	json_object(j, "ntp");
	if (p->ntp.ok) {
		json_bool(j, "synchronized", p->ntp.synchronized);
		json_string(j, "state", ntp_state_name(p->ntp.state));
		json_double(j, "frequency_ppm", p->ntp.freq_ppm);
		json_int(j, "estimated_error_us", p->ntp.esterror_us);
		json_int(j, "maximum_error_us", p->ntp.maxerror_us);
		json_int(j, "tai_offset_s", p->ntp.tai);
	} else {
		json_null(j, "synchronized");
		json_null(j, "state");
		json_null(j, "frequency_ppm");
		json_null(j, "estimated_error_us");
		json_null(j, "maximum_error_us");
		json_null(j, "tai_offset_s");
	}
	json_end(j);
}

static void json_time_namespace(struct json *j, const struct platform *p)
{
	json_object(j, "time_namespace");
	if (p->timens.readable) {
		json_int(j, "monotonic_offset_ns", p->timens.monotonic_ns);
		json_int(j, "boottime_offset_ns", p->timens.boottime_ns);
	} else {
		json_null(j, "monotonic_offset_ns");
		json_null(j, "boottime_offset_ns");
	}
	json_end(j);
}

void json_platform(struct json *j, const struct platform *p)
{
	json_object(j, "platform");
	json_object(j, "kernel");
	json_text(j, "release", p->kernel_release);
	json_end(j);
	json_object(j, "clocksource");
	json_text(j, "current", p->clocksource);
	json_words(j, "available", p->clocksources);
	json_end(j);
	json_string(j, "vsyscall", p->vsyscall);
	json_vdso(j, p);
	json_cpu(j, p);
	json_tsc(j, p);
	json_cntvct(j, p);
	json_ntp(j, p);
	json_time_namespace(j, p);
	json_end(j);
}

/*
 * The frequency and the rates are the counter's: known in counter mode
 * (and on a page whose writer is in it), where uclock_stat() fills
 * counter_hz; elsewhere there is no counter to have a rate.
 */
void json_uclock(struct json *j, const struct uclock_stat *st)
{
	int rates = st->counter_hz != 0;

	json_object(j, "uclock");
	json_string(j, "version", UCLOCK_VERSION_STRING);
	json_text(j, "source", st->source_name);
	json_text(j, "mode", st->mode_name);
	json_text(j, "reason", st->reason);
	json_hz(j, "counter_hz", st->counter_hz);
	json_text(j, "counter", st->counter_name);
	json_hz(j, "counter_nominal_hz", st->counter_nominal_hz);
	json_string(j, "counter_read", st->source == UCLOCK_SOURCE_TSC ?
		    st->counter_read : NULL);
	json_text(j, "kernel_path", st->kernel_path);
	if (rates) {
		json_double(j, "rate_correction_ppm", st->rate_correction_ppm);
		json_double(j, "kernel_rate_ppm", st->kernel_rate_ppm);
	} else {
		json_null(j, "rate_correction_ppm");
		json_null(j, "kernel_rate_ppm");
	}
	json_text(j, "page", st->page);
	json_text(j, "page_reason", st->page_reason);
	if (st->writer_pid)
		json_int(j, "writer_pid", st->writer_pid);
	else
		json_null(j, "writer_pid");
	json_end(j);
}
