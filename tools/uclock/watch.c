/*
 * uclock watch: once an interval, the offset of each of uclock's clocks to
 * the kernel's (median of bracketed readings), the rate correction uclock
 * applies, and the kernel's own NTP frequency.  A line each; CSV for
 * plotting, JSON lines for scripts.
 */
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timex.h>
#include <unistd.h>

#include "bounds.h"
#include "cli.h"
#include "uclock.h"

#define READS 201

enum format { TEXT, CSV, JSON };

/* The clock's name on a line, in the CSV header, and in JSON. */
static const struct {
	clockid_t id;
	const char *name;
	const char *column;
	const char *json_name;
} clocks[] = {
	{CLOCK_REALTIME, "REALTIME", "realtime_ns", "CLOCK_REALTIME"},
	{CLOCK_MONOTONIC, "MONOTONIC", "monotonic_ns", "CLOCK_MONOTONIC"},
	{CLOCK_MONOTONIC_RAW, "RAW", "monotonic_raw_ns", "CLOCK_MONOTONIC_RAW"},
	{CLOCK_BOOTTIME, "BOOTTIME", "boottime_ns", "CLOCK_BOOTTIME"},
	{CLOCK_TAI, "TAI", "tai_ns", "CLOCK_TAI"},
};
#define CLOCKS (sizeof(clocks) / sizeof(clocks[0]))

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

/* uclock minus the middle of the kernel's readings around it: median. */
static int64_t offset_ns(clockid_t id)
{
	int64_t err[READS];

	uclock_offsets(id, err, READS);
	return err[READS / 2];
}

/* NAN when adjtimex fails: not known, not 0. */
static double ntp_frequency_ppm(void)
{
	struct timex tx = {0};

	if (adjtimex(&tx) < 0)
		return NAN;
	return (double)tx.freq / 65536.0;
}

static void usage(FILE *out)
{
	fprintf(out, "usage: uclock watch [--interval S] [--count N] [--csv | --json]\n\n"
		     "Every interval, the offset of each of uclock's clocks to the\n"
		     "kernel's, uclock's rate correction and the kernel's NTP\n"
		     "frequency and the error bound (uclock bounds), one line each time,\n"
		     "until interrupted.\n\n"
		     "  --interval S  seconds between lines (0.01..86400, default 1)\n"
		     "  --count N     stop after N lines\n"
		     "  --csv         comma-separated values, with a header line\n"
		     "  --json        one JSON object a line (JSON lines)\n"
		     "  -h, --help    this help\n\n"
		     "Exit status: 0 done or interrupted, 2 bad usage.\n");
}

struct sample {
	double t;                       /* seconds since the first */
	int64_t offset_ns[CLOCKS];
	double ntp_ppm;
	struct uclock_stat st;
	struct uclock_bounds bounds;
};

static void print_text(const struct sample *s)
{
	printf("%8.3fs ", s->t);
	for (size_t i = 0; i < CLOCKS; i++)
		printf(" %s %+4lldns", clocks[i].name, (long long)s->offset_ns[i]);
	char bound[160];

	bounds_line(bound, sizeof(bound), &s->bounds);
	printf("  steer %+8.3fppm  ntp %+8.3fppm  %s  bound %s\n", s->st.rate_correction_ppm,
	       s->ntp_ppm, s->st.mode_name, bound);
}

static void print_csv_header(void)
{
	printf("time_s");
	for (size_t i = 0; i < CLOCKS; i++)
		printf(",%s", clocks[i].column);
	printf(",rate_correction_ppm,kernel_rate_ppm,ntp_frequency_ppm,mode,"
	       "bound_error_ns,bound_status\n");
}

static void print_csv(const struct sample *s)
{
	printf("%.3f", s->t);
	for (size_t i = 0; i < CLOCKS; i++)
		printf(",%lld", (long long)s->offset_ns[i]);
	printf(",%.4f,%.4f,%.4f,%s,", s->st.rate_correction_ppm, s->st.kernel_rate_ppm,
	       s->ntp_ppm, s->st.mode_name);
	/* Unbounded: an empty field, as CSV says "no value". */
	if (s->bounds.error_ns != INT64_MAX)
		printf("%lld", (long long)s->bounds.error_ns);
	printf(",%s\n", uclock__bounds_status_name(s->bounds.status));
}

/* The offsets as the report has them, with one statistic: the median. */
static void print_json(const struct sample *s)
{
	struct json *j = json_open(stdout);

	if (!j)
		return;
	json_double(j, "time_s", s->t);
	json_object(j, "offsets");
	json_int(j, "reads", READS);
	json_array(j, "clocks");
	for (size_t i = 0; i < CLOCKS; i++) {
		json_object(j, NULL);
		json_string(j, "name", clocks[i].json_name);
		json_int(j, "median_ns", s->offset_ns[i]);
		json_end(j);
	}
	json_end(j);
	json_end(j);
	json_object(j, "ntp");
	json_double(j, "frequency_ppm", s->ntp_ppm);
	json_end(j);
	json_uclock(j, &s->st);
	json_bounds(j, "bounds", &s->bounds);
	json_close(j);
}

static void line(enum format format, double t)
{
	struct sample s = {.t = t, .st = {.size = sizeof(s.st)}};

	for (size_t i = 0; i < CLOCKS; i++)
		s.offset_ns[i] = offset_ns(clocks[i].id);
	uclock_stat(&s.st);
	uclock_now_bounds(&s.bounds);
	s.ntp_ppm = ntp_frequency_ppm();
	if (format == CSV)
		print_csv(&s);
	else if (format == JSON)
		print_json(&s);
	else
		print_text(&s);
	fflush(stdout);
}

int cmd_watch(int argc, char **argv)
{
	static const struct option options[] = {
		{"interval", required_argument, NULL, 'i'},
		{"count", required_argument, NULL, 'n'},
		{"csv", no_argument, NULL, 'c'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	double interval = 1;
	long count = -1;
	int csv = 0, json = 0, c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
		switch (c) {
		case 'i':
			if (parse_seconds(optarg, 0.01, 86400, &interval))
				return usage_error("watch", "bad interval '%s' (seconds, "
							    "0.01 to 86400)", optarg);
			break;
		case 'n':
			if (parse_long(optarg, 1, 1000000000, &count))
				return usage_error("watch", "bad count '%s'", optarg);
			break;
		case 'c':
			csv = 1;
			break;
		case 'j':
			json = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			return option_error("watch", c, argv);
		}
	}
	if (optind < argc)
		return usage_error("watch", "unexpected argument '%s'", argv[optind]);
	if (csv && json)
		return usage_error("watch", "'--csv' and '--json' cannot go together");

	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	warm_up();
	if (csv)
		print_csv_header();
	int64_t start = clock_ns(CLOCK_MONOTONIC);
	for (long n = 0; !stop && (count < 0 || n < count); n++) {
		if (n > 0) {
			int64_t next = start + (int64_t)(n * interval * 1e9);
			struct timespec wait;
			int64_t left = next - clock_ns(CLOCK_MONOTONIC);

			if (left > 0) {
				wait.tv_sec = left / 1000000000;
				wait.tv_nsec = left % 1000000000;
				nanosleep(&wait, NULL);
			}
			if (stop)
				break;
		}
		line(csv ? CSV : json ? JSON : TEXT, (double)(clock_ns(CLOCK_MONOTONIC) - start) / 1e9);
	}
	return 0;
}
