/*
 * uclockd: one shared, read-only time page for every process, as the
 * kernel's vvar page.  It keeps the conversion parameters in a file that
 * libuclock maps in each process, updates them on a fixed interval, at once
 * when the kernel's REALTIME is set, and after a suspend; on a clean stop
 * it marks the page stopped.  It runs in the foreground and logs to stderr,
 * for a service manager.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define DEFAULT_PATH "/run/uclock/page"
#define MIN_SPAN_NS 10000000LL

struct daemon {
	const char *path;
	int64_t period_ns;          /* between updates */
	struct uclock__page *page;
	struct uclock_tk tk;
	int tick_fd, settime_fd, signal_fd;
	uint64_t last_disc, last_steps;
};

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	va_list ap;

	fputs("uclockd: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void usage(FILE *out)
{
	fprintf(out, "usage: uclockd [--path FILE] [--interval S]\n"
		     "  Keeps uclock's shared time page in FILE (default %s),\n"
		     "  updated every S seconds (default 0.001).  Runs in the "
		     "foreground;\n  logs to stderr; SIGTERM or SIGINT stops it and "
		     "marks the page stopped.\n", DEFAULT_PATH);
}

static int parse(struct daemon *d, int argc, char **argv)
{
	static const struct option options[] = {
		{"path", required_argument, NULL, 'p'},
		{"interval", required_argument, NULL, 'i'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	int c;

	d->path = DEFAULT_PATH;
	d->period_ns = 1000000;
	while ((c = getopt_long(argc, argv, "p:i:h", options, NULL)) != -1) {
		char *end;
		double s;

		switch (c) {
		case 'p':
			d->path = optarg;
			break;
		case 'i':
			errno = 0;
			s = strtod(optarg, &end);
			if (errno || *end || end == optarg || !(s >= 0.0001 && s <= 1)) {
				fprintf(stderr, "uclockd: bad interval '%s' (seconds, "
						"0.0001 to 1)\nTry 'uclockd --help'.\n", optarg);
				return 2;
			}
			d->period_ns = (int64_t)(s * 1e9);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			fprintf(stderr, "Try 'uclockd --help'.\n");
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "uclockd: unexpected argument '%s'\nTry 'uclockd "
				"--help'.\n", argv[optind]);
		return 2;
	}
	if (strlen(d->path) > 200) {
		fprintf(stderr, "uclockd: path too long\n");
		return 2;
	}
	return -1;
}

/*
 * A new file beside the old one, renamed over it when ready: a reader of
 * the old page keeps its (now unlinked) file and sees it go stale; no
 * reader ever sees a short or half-made page.
 */
static int create_page(struct daemon *d, char *tmp, size_t tmp_size)
{
	char dir[256];
	char *slash;
	int fd;

	snprintf(dir, sizeof(dir), "%s", d->path);
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
			say("cannot create %s: %s", dir, strerror(errno));
			return -1;
		}
	}
	snprintf(tmp, tmp_size, "%s.%d.tmp", d->path, (int)getpid());
	fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0) {
		say("cannot create %s: %s", tmp, strerror(errno));
		return -1;
	}
	/* Readers require: writable by its owner alone, whatever the umask. */
	if (fchmod(fd, 0644) != 0 || ftruncate(fd, UCLOCK__PAGE_BYTES) != 0) {
		say("cannot size %s: %s", tmp, strerror(errno));
		close(fd);
		unlink(tmp);
		return -1;
	}
	d->page = mmap(NULL, UCLOCK__PAGE_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (d->page == MAP_FAILED) {
		say("cannot map %s: %s", tmp, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

static int start_keeping(struct daemon *d)
{
	struct uclock_tk_ops ops;
	char tmp[300];
	int64_t mono, boot;

	if (!uclock__counter_ops(&ops)) {
		say("the TSC cannot be trusted here: %s", uclock__global_reason());
		return -1;
	}
	if (uclock__timens_offsets(&mono, &boot) != 0) {
		say("cannot read this process's time namespace offsets");
		return -1;
	}
	if (create_page(d, tmp, sizeof(tmp)) != 0)
		return -1;
	/* Readers use the parameters for a span (the slow path then) and
	 * leave the page after two: at least 10 ms, so that a daemon kept
	 * off its CPU a few scheduler slices by a busy machine is not taken
	 * for dead.  The lines are steered over the span. */
	int64_t span = 2 * d->period_ns > MIN_SPAN_NS ? 2 * d->period_ns : MIN_SPAN_NS;
	uclock__tk_init(&d->tk, d->page, &ops, span);
	d->page->source = UCLOCK_SOURCE_TSC;
	d->page->writer_pid = (int32_t)getpid();
	d->page->timens_monotonic_ns = mono;
	d->page->timens_boottime_ns = boot;
	uclock__tk_update(&d->tk);
	__atomic_store_n(&d->page->state, UCLOCK__LIVE, __ATOMIC_RELEASE);
	if (rename(tmp, d->path) != 0) {
		say("cannot put the page at %s: %s", d->path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	say("keeping %s (pid %d): every %.3f ms, %s", d->path, (int)getpid(),
	    (double)d->period_ns / 1e6, uclock__global_reason());
	return 0;
}

/* The next update: a period away, sooner while the timekeeper's span is
 * short (after an anchor), so that readers never find it stale. */
static void arm_tick(struct daemon *d)
{
	int64_t next = d->period_ns;
	struct itimerspec when = {{0, 0}, {0, 0}};

	struct uclock__copy c;

	uclock__copy_load(d->page, &c);
	if (d->tk.span_ns / 2 < next)
		next = d->tk.span_ns / 2;
	/* Warming up: calibrated within milliseconds, whatever the period. */
	if (c.mode != UCLOCK_MODE_COUNTER && next > 1000000)
		next = 1000000;
	if (next < 20000)
		next = 20000;
	when.it_value.tv_sec = next / 1000000000;
	when.it_value.tv_nsec = next % 1000000000;
	timerfd_settime(d->tick_fd, 0, &when, NULL);
}

/* Read returns ECANCELED when the kernel's REALTIME is set. */
static void arm_settime(struct daemon *d)
{
	struct itimerspec far = {{0, 0}, {INT32_MAX, 0}};

	timerfd_settime(d->settime_fd, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, &far,
			NULL);
}

static int open_events(struct daemon *d)
{
	sigset_t stop;

	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGHUP);
	sigprocmask(SIG_BLOCK, &stop, NULL);
	/* BOOTTIME runs during a suspend: after a resume the tick is overdue
	 * and fires at once. */
	d->tick_fd = timerfd_create(CLOCK_BOOTTIME, TFD_CLOEXEC);
	d->settime_fd = timerfd_create(CLOCK_REALTIME, TFD_CLOEXEC);
	d->signal_fd = signalfd(-1, &stop, SFD_CLOEXEC);
	if (d->tick_fd < 0 || d->settime_fd < 0 || d->signal_fd < 0) {
		say("cannot set up timers and signals: %s", strerror(errno));
		return -1;
	}
	arm_tick(d);
	arm_settime(d);
	return 0;
}

static void update(struct daemon *d)
{
	if (uclock__tk_take(&d->tk)) {
		uclock__tk_update(&d->tk);
		uclock__tk_give(&d->tk);
	}
	if (d->tk.discontinuities != d->last_disc) {
		d->last_disc = d->tk.discontinuities;
		say("discontinuity (suspend, migration, counter reset): "
		    "calibrating again");
	}
	if (d->tk.realtime_steps != d->last_steps) {
		d->last_steps = d->tk.realtime_steps;
		say("REALTIME was stepped: followed");
	}
}

/* Readers leave a stopped page at their next slow read: make that now. */
static void stop_keeping(struct daemon *d)
{
	struct uclock__copy c;

	__atomic_store_n(&d->page->state, UCLOCK__STOPPED, __ATOMIC_RELEASE);
	uclock__copy_load(d->page, &c);
	c.limit = 0;
	uclock__copy_stage(d->page, &c);
	uclock__copy_flip(d->page);
	msync(d->page, UCLOCK__PAGE_BYTES, MS_ASYNC);
	say("stopped; %s marked stopped", d->path);
}

static int run(struct daemon *d)
{
	struct pollfd fds[] = {
		{.fd = d->tick_fd, .events = POLLIN},
		{.fd = d->settime_fd, .events = POLLIN},
		{.fd = d->signal_fd, .events = POLLIN},
	};

	for (;;) {
		uint64_t expirations;

		if (poll(fds, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			say("poll: %s", strerror(errno));
			return 1;
		}
		if (fds[2].revents & POLLIN) {
			struct signalfd_siginfo si;
			if (read(d->signal_fd, &si, sizeof(si)) == sizeof(si))
				say("signal %u: stopping", si.ssi_signo);
			return 0;
		}
		if (fds[1].revents & POLLIN) {
			if (read(d->settime_fd, &expirations, sizeof(expirations)) < 0 &&
			    errno == ECANCELED)
				update(d);
			arm_settime(d);
		}
		if (fds[0].revents & POLLIN) {
			if (read(d->tick_fd, &expirations, sizeof(expirations)) > 0)
				update(d);
			arm_tick(d);
		}
	}
}

int main(int argc, char **argv)
{
	static struct daemon d;
	int status = parse(&d, argc, argv);

	if (status >= 0)
		return status;
	if (start_keeping(&d) != 0 || open_events(&d) != 0)
		return 1;
	status = run(&d);
	stop_keeping(&d);
	return status;
}
