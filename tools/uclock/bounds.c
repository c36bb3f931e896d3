/*
 * uclock bounds: CLOCK_REALTIME as an interval that holds true time, as
 * uclock_now_bounds() gives it, with its status, its source and its parts;
 * as text or one JSON object.  The report and watch show it in a line.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "bounds.h"
#include "cli.h"
#include "uclock.h"

static int bounded(const struct uclock_bounds *b)
{
	return b->error_ns != INT64_MAX;
}

const char *bounds_why(const struct uclock_bounds *b)
{
	switch (b->status) {
	case UCLOCK_BOUNDS_SYNCHRONIZED:
		return "the time service is synchronised";
	case UCLOCK_BOUNDS_FREE_RUNNING:
		return "the time service has not updated since; the bound grows from its "
		       "last figures";
	case UCLOCK_BOUNDS_DISRUPTED:
		return "the clock jumped (a step, a suspend, a counter reset, a migration) "
		       "since the time service's last update: no bound until it updates";
	default:
		return b->source == UCLOCK_BOUNDS_SOURCE_NONE
			       ? "no time service could be read"
			       : "the time service is not synchronised: nothing bounds the error";
	}
}

/* "+-1.234 ms"-style, the unit chosen for the size. */
static void duration(char *out, size_t size, int64_t ns)
{
	if (ns == INT64_MAX)
		snprintf(out, size, "unbounded");
	else if (ns < 10000)
		snprintf(out, size, "%" PRId64 " ns", ns);
	else if (ns < 10000000)
		snprintf(out, size, "%.3f us", (double)ns / 1e3);
	else if (ns < 10000000000LL)
		snprintf(out, size, "%.3f ms", (double)ns / 1e6);
	else
		snprintf(out, size, "%.3f s", (double)ns / 1e9);
}

void bounds_line(char *out, size_t size, const struct uclock_bounds *b)
{
	char err[32];

	duration(err, sizeof(err), b->error_ns);
	if (bounded(b))
		snprintf(out, size, "+-%s, %s, from %s", err,
			 uclock__bounds_status_name(b->status),
			 uclock__bounds_source_name(b->source));
	else
		snprintf(out, size, "none (%s, from %s)", uclock__bounds_status_name(b->status),
			 uclock__bounds_source_name(b->source));
}

/* What nothing bounds is null, never a number a script would use. */
static void json_ns(struct json *j, const char *key, int64_t v, int known)
{
	if (known)
		json_int(j, key, v);
	else
		json_null(j, key);
}

void json_bounds(struct json *j, const char *key, const struct uclock_bounds *b)
{
	int known = b->source != UCLOCK_BOUNDS_SOURCE_NONE;

	json_object(j, key);
	json_string(j, "status", uclock__bounds_status_name(b->status));
	json_string(j, "source", uclock__bounds_source_name(b->source));
	json_int(j, "now_ns", b->now_ns);
	json_ns(j, "earliest_ns", b->earliest_ns, bounded(b));
	json_ns(j, "latest_ns", b->latest_ns, bounded(b));
	json_ns(j, "error_ns", b->error_ns, bounded(b));
	json_ns(j, "service_error_ns", b->service_error_ns, known);
	json_ns(j, "age_ns", b->age_ns, known);
	json_ns(j, "drift_ns", b->drift_ns, known);
	if (known)
		json_double(j, "max_drift_ppm", b->max_drift_ppb / 1e3);
	else
		json_null(j, "max_drift_ppm");
	json_int(j, "uclock_error_ns", b->uclock_error_ns);
	json_end(j);
}

static void text(const struct uclock_bounds *b, const struct uclock_stat *st)
{
	char when[64], d[32];
	time_t sec = (time_t)(b->now_ns / 1000000000);
	struct tm tm;

	gmtime_r(&sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
	printf("now           %s.%09lld UTC (CLOCK_REALTIME)\n", when,
	       (long long)(b->now_ns % 1000000000));
	duration(d, sizeof(d), b->error_ns);
	if (bounded(b))
		printf("interval      now -%s .. now +%s\n", d, d);
	else
		printf("interval      none: nothing bounds the error\n");
	printf("status        %s: %s\n", uclock__bounds_status_name(b->status), bounds_why(b));
	printf("source        %s%s\n",
	       b->source == UCLOCK_BOUNDS_SOURCE_CHRONY ? "chronyd's tracking"
	       : b->source == UCLOCK_BOUNDS_SOURCE_ADJTIMEX ? "the kernel's NTP state (adjtimex)"
							   : "none",
	       st->writer_pid ? ", read by uclockd" : ", read in this process");
	if (b->source == UCLOCK_BOUNDS_SOURCE_NONE)
		return;
	printf("parts\n");
	duration(d, sizeof(d), b->service_error_ns);
	printf("  service     %s at its last figures, %.3f s ago\n", d, (double)b->age_ns / 1e9);
	duration(d, sizeof(d), b->drift_ns);
	printf("  drift       %s (%.3f ppm times that age)\n", d, b->max_drift_ppb / 1e3);
	duration(d, sizeof(d), b->uclock_error_ns);
	printf("  uclock      %s (its steering error and a reading's allowance)\n", d);
}

static int usage(void)
{
	printf("usage: uclock bounds [--json]\n\n"
	       "CLOCK_REALTIME as an interval that holds true time (what\n"
	       "uclock_now_bounds() returns): the interval, its status, its source\n"
	       "and its parts: the time service's error at its last update, the\n"
	       "drift since (UCLOCK_MAX_DRIFT_PPM, default 15 ppm, or uclockd's\n"
	       "rate when attached), and uclock's own error.\n\n"
	       "  --json      one JSON object\n"
	       "  -h, --help  this help\n\n"
	       "Exit status: 0, 1 if the bound could not be read, or 2 bad usage.\n");
	return 0;
}

int cmd_bounds(int argc, char **argv)
{
	struct uclock_stat st = {.size = sizeof(st)};
	struct uclock_bounds b;
	char why[160] = "";
	int as_json, status = json_only_options("bounds", argc, argv, usage, &as_json);

	if (status >= 0)
		return status;
	if (!uclock__bounds_drift_env(why, sizeof(why)))
		fprintf(stderr, "uclock: %s: no bound is given\n", why);
	warm_up();
	if (uclock_now_bounds(&b) != 0 || uclock_stat(&st) != 0) {
		fprintf(stderr, "uclock: cannot read the bound: %s\n", strerror(errno));
		return 1;
	}
	if (!as_json) {
		text(&b, &st);
		return 0;
	}
	struct json *j = json_open(stdout);

	if (!j)
		return 1;
	json_bounds(j, "bounds", &b);
	if (st.writer_pid)
		json_int(j, "writer_pid", st.writer_pid);
	else
		json_null(j, "writer_pid");
	json_close(j);
	return 0;
}
