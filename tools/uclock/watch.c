/*
 * uclock watch: once an interval, the offset of each of uclock's clocks to
 * the kernel's (median of bracketed readings), the rate correction uclock
 * applies, and the kernel's own NTP frequency.  A line each; CSV for
 * plotting.
 */
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timex.h>
#include <unistd.h>

#include "cli.h"
#include "uclock.h"

#define READS 201

static const struct {
	clockid_t id;
	const char *name;
	const char *column;
} clocks[] = {
	{CLOCK_REALTIME, "REALTIME", "realtime_ns"},
	{CLOCK_MONOTONIC, "MONOTONIC", "monotonic_ns"},
	{CLOCK_MONOTONIC_RAW, "RAW", "monotonic_raw_ns"},
	{CLOCK_BOOTTIME, "BOOTTIME", "boottime_ns"},
	{CLOCK_TAI, "TAI", "tai_ns"},
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

	for (int i = 0; i < READS; i++) {
		struct timespec u;
		int64_t before = clock_ns(id);

		uclock_gettime(id, &u);
		err[i] = timespec_ns(&u) - (before / 2 + clock_ns(id) / 2);
	}
	qsort(err, READS, sizeof(err[0]), compare_i64);
	return err[READS / 2];
}

static double ntp_frequency_ppm(void)
{
	struct timex tx = {0};

	if (adjtimex(&tx) < 0)
		return 0;
	return (double)tx.freq / 65536.0;
}

static void usage(FILE *out)
{
	fprintf(out, "usage: uclock watch [--interval S] [--count N] [--csv]\n\n"
		     "Every interval, the offset of each of uclock's clocks to the\n"
		     "kernel's, uclock's rate correction and the kernel's NTP\n"
		     "frequency, one line each time, until interrupted.\n\n"
		     "  --interval S  seconds between lines (0.01..86400, default 1)\n"
		     "  --count N     stop after N lines\n"
		     "  --csv         comma-separated values, with a header line\n"
		     "  -h, --help    this help\n\n"
		     "Exit status: 0 done or interrupted, 2 bad usage.\n");
}

static void line(int csv, double t)
{
	struct uclock_stat st = {.size = sizeof(st)};
	int64_t off[CLOCKS];

	for (size_t i = 0; i < CLOCKS; i++)
		off[i] = offset_ns(clocks[i].id);
	uclock_stat(&st);
	if (csv) {
		printf("%.3f", t);
		for (size_t i = 0; i < CLOCKS; i++)
			printf(",%lld", (long long)off[i]);
		printf(",%.4f,%.4f,%.4f,%s\n", st.rate_correction_ppm, st.kernel_rate_ppm,
		       ntp_frequency_ppm(), st.mode_name);
	} else {
		printf("%8.3fs ", t);
		for (size_t i = 0; i < CLOCKS; i++)
			printf(" %s %+4lldns", clocks[i].name, (long long)off[i]);
		printf("  steer %+8.3fppm  ntp %+8.3fppm  %s\n", st.rate_correction_ppm,
		       ntp_frequency_ppm(), st.mode_name);
	}
	fflush(stdout);
}

int cmd_watch(int argc, char **argv)
{
	static const struct option options[] = {
		{"interval", required_argument, NULL, 'i'},
		{"count", required_argument, NULL, 'n'},
		{"csv", no_argument, NULL, 'c'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	double interval = 1;
	long count = -1;
	int csv = 0, c;

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
		case 'h':
			usage(stdout);
			return 0;
		default:
			return option_error("watch", c, argv);
		}
	}
	if (optind < argc)
		return usage_error("watch", "unexpected argument '%s'", argv[optind]);

	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	warm_up();
	if (csv) {
		printf("time_s");
		for (size_t i = 0; i < CLOCKS; i++)
			printf(",%s", clocks[i].column);
		printf(",rate_correction_ppm,kernel_rate_ppm,ntp_frequency_ppm,mode\n");
	}
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
		line(csv, (double)(clock_ns(CLOCK_MONOTONIC) - start) / 1e9);
	}
	return 0;
}
