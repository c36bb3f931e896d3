/* Small helpers shared by the commands. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uclock.h>

#include "cli.h"

int usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "uclock%s%s: ", cmd ? " " : "", cmd ? cmd : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (see 'uclock%s%s --help')\n", cmd ? " " : "", cmd ? cmd : "");
	return 2;
}

int option_error(const char *cmd, int c, char **argv)
{
	const char *arg = argv[optind - 1];

	if (c == ':')
		return usage_error(cmd, "option '%s' needs a value", arg);
	/* Unknown short options are in optopt; long ones only in argv. */
	if (optopt > 0 && optopt < 128 && arg[0] == '-' && arg[1] != '-')
		return usage_error(cmd, "unknown option '-%c'", optopt);
	return usage_error(cmd, "unknown option '%s'", arg);
}

int json_only_options(const char *cmd, int argc, char **argv, int (*usage)(void),
		      int *as_json)
{
	enum { JSON = 256 };  /* long-only: past every short option's char */
	static const struct option options[] = {
		{"json", no_argument, NULL, JSON},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c;

	*as_json = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
		switch (c) {
		case JSON: *as_json = 1; break;
		case 'h': return usage();
		default: return option_error(cmd, c, argv);
		}
	}
	if (optind < argc)
		return usage_error(cmd, "unexpected argument '%s'", argv[optind]);
	return -1;
}

int parse_seconds(const char *s, double min, double max, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(v) || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

int parse_long(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

int64_t timespec_ns(const struct timespec *ts)
{
	return (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec;
}

int64_t clock_ns(clockid_t clock)
{
	struct timespec ts;

	if (clock_gettime(clock, &ts) != 0)
		return 0;
	return timespec_ns(&ts);
}

int compare_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

void uclock_offsets(clockid_t id, int64_t *err, int n)
{
	for (int i = 0; i < n; i++) {
		struct timespec u;
		int64_t before = clock_ns(id);

		uclock_gettime(id, &u);
		err[i] = timespec_ns(&u) - (before / 2 + clock_ns(id) / 2);
	}
	qsort(err, (size_t)n, sizeof(err[0]), compare_i64);
}

int compare_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

void warm_up(void)
{
	int64_t start = clock_ns(CLOCK_MONOTONIC), now;
	struct uclock_stat st = {.size = sizeof(st)};

	do {
		uclock_mono_ns();
		uclock_stat(&st);
		now = clock_ns(CLOCK_MONOTONIC);
	} while ((st.mode == UCLOCK_MODE_WARMUP || now - start < 50000000) &&
		 now - start < 250000000);
}

void progress(double done, const char *what)
{
	static int tty = -1, shown = -1;
	static char last[48];
	enum { WIDTH = 30, LINE = 79 };  /* a line of an 80-column terminal */
	int percent = (int)(done * 100), filled = (int)(done * WIDTH);

	if (tty < 0)
		tty = isatty(STDERR_FILENO);
	if (!tty)
		return;
	if (done >= 1.0) {
		if (shown >= 0)
			fprintf(stderr, "\r%*s\r", LINE, "");
		shown = -1;
		fflush(stderr);
		return;
	}
	if (percent == shown && !strncmp(what, last, sizeof(last) - 1))
		return;
	shown = percent;
	snprintf(last, sizeof(last), "%s", what);
	fprintf(stderr, "\r[%.*s%*s] %3d%% %-40.40s", filled,
		"##############################", WIDTH - filled, "", percent, what);
	fflush(stderr);
}
