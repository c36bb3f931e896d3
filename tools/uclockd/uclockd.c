/*
 * uclockd: one shared, read-only time page for every process, as the
 * kernel's vvar page.  It keeps the conversion parameters in a file that
 * libuclock maps in each process, updates them often at first and after
 * any change (every --interval, or 5 ms if that is longer; every
 * millisecond while calibrating), every 100 ms while the rate holds, at once when the
 * kernel's REALTIME is set, and after a suspend; on a clean stop it marks
 * the page stopped.  It runs in the foreground, logs to stderr and tells a
 * service manager (systemd's NOTIFY_SOCKET) when the page is ready.
 *
 * One daemon a page: it holds a lock on PATH.lock for its life.  It keeps
 * the same file across restarts (processes map it once, at their first
 * read, and follow it by looking at memory): a new daemon takes over the
 * page it finds, with floors at what the old one's readers can have read.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "bounds.h"
#include "internal.h"

#define DEFAULT_PATH "/run/uclock/page"
#define DEFAULT_CHRONY "/run/chrony/chronyd.sock"
#define CHRONY_TIMEOUT_MS 200
#define MIN_SPAN_NS 10000000LL
#define SYNC_CHECK_NS 10000000LL                /* the check across CPUs: 10 ms */
/* The span while the rate holds: an update every 100 ms, ten wakeups a
 * second; readers notice a daemon gone within two spans (400 ms then). */
#define STEADY_SPAN_NS 200000000LL
#define SYNC_RECHECK_NS (600 * 1000000000LL)    /* again every 10 minutes */

struct daemon {
	const char *path;
	int64_t period_ns;          /* between updates */
	struct uclock__page *page;
	struct uclock_tk tk;
	int tick_fd, settime_fd, signal_fd, lock_fd, house_fd;
	char reason[256];           /* why the TSC is trusted */
	char online[256];           /* the online CPUs, when last checked */
	int64_t last_sync_ns;       /* MONOTONIC at the last check across CPUs */
	int last_sync;              /* its verdict, -1 before the first */
	uint64_t last_disc, last_steps;
	int ready;                  /* told the service manager */
	/* Error bounds: the time service's figures, read once a second by a
	 * thread of their own (a slow chronyd never delays an update). */
	uint32_t drift_ppb;         /* --max-drift */
	const char *chrony;         /* --chrony: its socket; NULL none */
	int chrony_asked;           /* given on the command line */
	struct uclock__adjtimex_state adj;
	int64_t chrony_ref_ns;      /* chronyd's last update seen */
	int chrony_ok;              /* it has been synchronised */
	char chrony_why[256];       /* why it did not answer, last said */
	int last_bounds_status, last_bounds_source;
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

/*
 * Tell the service manager (systemd's notify protocol: a datagram to the
 * socket NOTIFY_SOCKET names; '@' for the abstract namespace).  Without
 * one, nothing.  A failure is logged, never fatal: the page is kept
 * whoever listens.
 */
static void notify(const char *state)
{
	const char *name = getenv("NOTIFY_SOCKET");
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	size_t len = name ? strlen(name) : 0;

	if (len == 0)
		return;
	if ((name[0] != '/' && name[0] != '@') || len >= sizeof(addr.sun_path)) {
		say("NOTIFY_SOCKET is not a socket path: not notifying");
		return;
	}
	memcpy(addr.sun_path, name, len);
	if (name[0] == '@')
		addr.sun_path[0] = '\0';
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&addr,
			     (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)) < 0)
		say("cannot notify %s: %s", name, strerror(errno));
	if (fd >= 0)
		close(fd);
}

static void usage(FILE *out)
{
	fprintf(out, "usage: uclockd [--path FILE] [--interval S] [--max-drift PPM]\n"
		     "               [--chrony SOCKET|none]\n"
		     "       uclockd --version\n\n"
		     "Keeps uclock's shared time page in FILE, for every process using\n"
		     "libuclock: updated often at first and after any change (every S\n"
		     "seconds, or 5 ms if that is longer), every 100 ms while the rate\n"
		     "holds.  Runs in the foreground, logs to stderr, tells systemd\n"
		     "when the page is ready; SIGTERM or SIGINT stops it and marks the\n"
		     "page stopped.  Once a second it also reads the time service's\n"
		     "error (chronyd's tracking, else the kernel's maxerror) into the\n"
		     "page, for uclock_now_bounds() in every process.\n\n"
		     "  --path FILE        the page (default %s)\n"
		     "  --interval S       seconds, 0.0001..1 (default 0.001)\n"
		     "  --max-drift PPM    the clock's maximum drift rate between the\n"
		     "                     service's updates (default 15)\n"
		     "  --chrony SOCKET    chronyd's command socket (default %s,\n"
		     "                     when it exists); none: do not ask chronyd\n"
		     "  -h, --help         this help\n"
		     "  --version          the version\n\n"
		     "Exit status: 0 stopped by a signal, 1 cannot keep the page,\n"
		     "2 bad usage.\n", DEFAULT_PATH, DEFAULT_CHRONY);
}

/* Bad usage, in one line naming what was wrong; returns 2. */
static int usage_error(const char *fmt, const char *what)
{
	fputs("uclockd: ", stderr);
	fprintf(stderr, fmt, what);
	fputs(" (see 'uclockd --help')\n", stderr);
	return 2;
}

static int parse(struct daemon *d, int argc, char **argv)
{
	static const struct option options[] = {
		{"path", required_argument, NULL, 'p'},
		{"interval", required_argument, NULL, 'i'},
		{"max-drift", required_argument, NULL, 'd'},
		{"chrony", required_argument, NULL, 'c'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{0},
	};
	int c;

	d->path = DEFAULT_PATH;
	d->period_ns = 1000000;
	d->drift_ppb = UCLOCK__BOUNDS_DRIFT_PPB;
	d->chrony = DEFAULT_CHRONY;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
		char *end;
		double s;

		switch (c) {
		case 'p':
			d->path = optarg;
			break;
		case 'i':
			errno = 0;
			s = strtod(optarg, &end);
			if (errno || *end || end == optarg || !(s >= 0.0001 && s <= 1))
				return usage_error("bad interval '%s' (seconds, 0.0001 to 1)",
						   optarg);
			d->period_ns = (int64_t)(s * 1e9);
			break;
		case 'd':
			d->drift_ppb = uclock__bounds_parse_ppm(optarg);
			if (!d->drift_ppb)
				return usage_error("bad drift rate '%s' (ppm, above 0, at most 100000)",
						   optarg);
			break;
		case 'c':
			d->chrony = strcmp(optarg, "none") ? optarg : NULL;
			d->chrony_asked = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("uclockd (uclock) %s\n", UCLOCK_VERSION_STRING);
			return 0;
		case ':':
			return usage_error("option '%s' needs a value", argv[optind - 1]);
		default:
			return usage_error("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	if (strlen(d->path) > 200) {
		fprintf(stderr, "uclockd: path too long\n");
		return 2;
	}
	return -1;
}

/* The page's directory, made if missing: 0755 whatever the umask, so that
 * every user's readers can reach the page. */
static int make_dir(const char *path)
{
	char dir[256], why[512];
	char *slash;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return 0;
	*slash = '\0';
	if (mkdir(dir, 0755) == 0) {
		if (chmod(dir, 0755) != 0) {
			say("cannot set the mode of %s: %s", dir, strerror(errno));
			return -1;
		}
	} else if (errno != EEXIST) {
		say("cannot create %s: %s", dir, strerror(errno));
		return -1;
	}
	if (!uclock__trusted_dir(dir, path, why, sizeof(why)))
		say("warning: readers looking in %s by default will not trust it: %s", dir,
		    why);
	return 0;
}

/*
 * PATH.lock, locked for the daemon's life: a second daemon on the same
 * page refuses to start, and says which one keeps it.
 */
static int take_lock(struct daemon *d)
{
	char lock[300], pid[32];
	ssize_t n;

	snprintf(lock, sizeof(lock), "%s.lock", d->path);
	d->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (d->lock_fd < 0) {
		say("cannot open %s: %s", lock, strerror(errno));
		return -1;
	}
	/* A daemon killed an instant ago may still hold it: a moment's grace. */
	for (int i = 0; i < 50 && flock(d->lock_fd, LOCK_EX | LOCK_NB) != 0; i++)
		usleep(20000);
	if (flock(d->lock_fd, LOCK_EX | LOCK_NB) != 0) {
		n = pread(d->lock_fd, pid, sizeof(pid) - 1, 0);
		pid[n > 0 ? n : 0] = '\0';
		pid[strcspn(pid, "\n")] = '\0';
		say("another uclockd (pid %s) keeps %s; not starting", pid[0] ? pid : "?",
		    d->path);
		return -1;
	}
	n = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	if (ftruncate(d->lock_fd, 0) != 0 || pwrite(d->lock_fd, pid, (size_t)n, 0) != n)
		say("warning: cannot write the pid into %s: %s", lock, strerror(errno));
	return 0;
}

/*
 * The page a previous daemon left, if it is one this daemon may keep: a
 * regular file of ours, writable by us alone, of the page's size and
 * layout.  Mapped for writing, or NULL.
 */
static struct uclock__page *reuse_page(struct daemon *d)
{
	struct stat st;
	struct uclock__page *page;
	int fd = open(d->path, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
	    (st.st_mode & (S_IWGRP | S_IWOTH)) || st.st_size != UCLOCK__PAGE_BYTES) {
		close(fd);
		return NULL;
	}
	page = mmap(NULL, UCLOCK__PAGE_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (page == MAP_FAILED)
		return NULL;
	if (page->magic != UCLOCK_PAGE_MAGIC || page->version != UCLOCK_PAGE_VERSION ||
	    page->size != sizeof(*page) || page->source != UCLOCK_SOURCE_TSC) {
		munmap(page, UCLOCK__PAGE_BYTES);
		return NULL;
	}
	return page;
}

/*
 * A new file beside the old one, renamed over it when ready: no reader
 * ever sees a short or half-made page.  Only when there is no page this
 * daemon can keep: processes that mapped another file do not follow.
 */
static struct uclock__page *create_page(struct daemon *d, char *tmp, size_t tmp_size)
{
	struct uclock__page *page;
	int fd;

	snprintf(tmp, tmp_size, "%s.%d.tmp", d->path, (int)getpid());
	fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0) {
		say("cannot create %s: %s", tmp, strerror(errno));
		return NULL;
	}
	/* Readers require: writable by its owner alone, whatever the umask. */
	if (fchmod(fd, 0644) != 0 || ftruncate(fd, UCLOCK__PAGE_BYTES) != 0) {
		say("cannot size %s: %s", tmp, strerror(errno));
		close(fd);
		unlink(tmp);
		return NULL;
	}
	page = mmap(NULL, UCLOCK__PAGE_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (page == MAP_FAILED) {
		say("cannot map %s: %s", tmp, strerror(errno));
		unlink(tmp);
		return NULL;
	}
	return page;
}

/* Until no process may still read its own copy of c's lines (c's keep). */
static void wait_keep(struct daemon *d, const struct uclock__copy *c)
{
	for (;;) {
		uint64_t age = d->tk.ops.counter(d->tk.ops.ctx) - c->cycle_last;
		if ((int64_t)age < 0 || age > c->keep)
			return;
		int64_t left = (int64_t)(((unsigned __int128)(c->keep - age) * c->raw_mult) >> 32) +
			       1000;
		struct timespec nap = {left / 1000000000, left % 1000000000};
		nanosleep(&nap, NULL);
	}
}

/*
 * Take over a page a previous daemon kept: its readers may still be
 * reading its last lines, now, and processes may keep a copy of them until
 * their keep.  Warm up with floors at those lines' value then (see
 * uclock__tk_adopt()), on the same page: readers then leave its lines for
 * the kernel's answer raised to the floors, and come back.
 */
static void take_over(struct daemon *d)
{
	struct uclock__copy last;

	uclock__copy_load(d->page, &last);
	/* Processes may keep a copy of those lines until their keep: let it
	 * pass (half a span at most), rather than raise the floors that far. */
	if (uclock__copy_plausible(&last))
		wait_keep(d, &last);
	if (uclock__tk_take(&d->tk)) {
		uclock__tk_adopt(&d->tk, &last, UCLOCK_TAKING_OVER);
		uclock__tk_give(&d->tk);
	}
	say("took over %s (last kept by pid %d)", d->path, d->page->writer_pid);
}

/* The kernel's list of online CPUs ("0-3"), "" if unreadable. */
static void read_online(char *buf, size_t size)
{
	int fd = open("/sys/devices/system/cpu/online", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, size - 1) : -1;

	if (fd >= 0)
		close(fd);
	buf[n > 0 ? n : 0] = '\0';
}

/*
 * The TSC across every online CPU (see tsc_sync.c), into the facts and the
 * page: readers of the page take the verdict where the kernel's
 * clocksource is not tsc.  Again every SYNC_RECHECK_NS, and when CPUs come
 * or go.
 */
static void check_sync(struct daemon *d, struct uclock_trust_facts *facts)
{
	struct uclock_tsc_sync sync;

	facts->sync = UCLOCK_SYNC_UNKNOWN;
	if (uclock__tsc_sync_check(SYNC_CHECK_NS, &sync) != 0)
		return;
	facts->sync = sync.in_step > 0 ? UCLOCK_SYNC_YES
		    : sync.in_step == 0 ? UCLOCK_SYNC_NO : UCLOCK_SYNC_UNKNOWN;
	facts->sync_cpus = sync.checked;
	facts->sync_warp_ns = sync.worst_ns;
	if (d->page) {
		d->page->tsc_cpus = (uint32_t)sync.checked;
		d->page->tsc_warp_ns = sync.worst_ns;
		__atomic_store_n(&d->page->tsc_sync, (uint32_t)facts->sync, __ATOMIC_RELEASE);
	}
	if ((int)facts->sync == d->last_sync)
		return;
	d->last_sync = (int)facts->sync;
	if (facts->sync == UCLOCK_SYNC_NO)
		say("the " UCLOCK__COUNTER_TEXT " is out of step across CPUs: %lld ns apart (%d of %d CPUs "
		    "checked)", (long long)sync.worst_ns, sync.checked, sync.cpus);
	else if (facts->sync == UCLOCK_SYNC_UNKNOWN)
		say("the " UCLOCK__COUNTER_TEXT " could be checked on %d of %d CPUs only", sync.checked, sync.cpus);
	else
		say("the " UCLOCK__COUNTER_TEXT " is in step on all %d CPUs (%llu readings)", sync.checked,
		    (unsigned long long)sync.readings);
}

static int start_keeping(struct daemon *d)
{
	struct uclock_tk_ops ops;
	struct uclock_trust_facts facts = {0};
	char tmp[300] = "";
	int64_t mono, boot;

	uclock__kernel_init();
	uclock__trust_gather(&facts);
	check_sync(d, &facts);
	if (!uclock__trust_decide(&facts, d->reason, sizeof(d->reason))) {
		say("the " UCLOCK__COUNTER_TEXT " cannot be trusted here: %s", d->reason);
		return -1;
	}
	int ordered = uclock__counter_pick();
	uclock__counter_ops(&ops);
	if (uclock__timens_offsets(&mono, &boot) != 0) {
		say("cannot read this process's time namespace offsets (is /proc mounted?)");
		return -1;
	}
	if (make_dir(d->path) != 0 || take_lock(d) != 0)
		return -1;
	d->page = reuse_page(d);
	int reused = d->page != NULL;
	if (!reused && !(d->page = create_page(d, tmp, sizeof(tmp))))
		return -1;
	/* Readers use the parameters for a span (the slow path then) and
	 * leave the page after two: at least 10 ms, so that a daemon kept
	 * off its CPU a few scheduler slices by a busy machine is not taken
	 * for dead.  The lines are steered over the span. */
	int64_t span = 2 * d->period_ns > MIN_SPAN_NS ? 2 * d->period_ns : MIN_SPAN_NS;
	uclock__tk_init(&d->tk, d->page, &ops, span);
	/* The timekeeper stretches the span while the rate holds; the timer
	 * follows it (arm_tick()), and so does the copies' keep. */
	d->tk.keep_ns = INT64_MAX;
	d->tk.steady_max_ns = STEADY_SPAN_NS;
	if (reused)
		take_over(d);
	d->page->source = UCLOCK_SOURCE_TSC;
	d->page->ordered_read = (uint32_t)ordered;
	d->page->tsc_cpus = (uint32_t)facts.sync_cpus;
	d->page->tsc_warp_ns = facts.sync_warp_ns;
	__atomic_store_n(&d->page->tsc_sync, (uint32_t)facts.sync, __ATOMIC_RELEASE);
	d->page->writer_pid = (int32_t)getpid();
	d->page->timens_monotonic_ns = mono;
	d->page->timens_boottime_ns = boot;
	uclock__tk_update(&d->tk);
	__atomic_store_n(&d->page->state, UCLOCK__LIVE, __ATOMIC_RELEASE);
	if (!reused && rename(tmp, d->path) != 0) {
		say("cannot put the page at %s: %s", d->path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	read_online(d->online, sizeof(d->online));
	say("keeping %s (pid %d): every %.3f ms, %s", d->path, (int)getpid(),
	    (double)d->period_ns / 1e6, d->reason);
	return 0;
}

/*
 * The next update: half the timekeeper's span away, so that readers never
 * find the page stale.  The span is the period's at first, a short one
 * after an anchor, and grows while the rate holds (tens of milliseconds:
 * a quiet daemon).  Processes keep their own copy of the lines a little
 * longer (the copy's keep), so that a late tick leaves no gap.
 */
static void arm_tick(struct daemon *d)
{
	int64_t next = d->tk.span_ns / 2;
	struct itimerspec when = {{0, 0}, {0, 0}};

	struct uclock__copy c;

	uclock__copy_load(d->page, &c);
	/* Warming up: calibrated within milliseconds, whatever the period. */
	if (c.mode != UCLOCK_MODE_COUNTER && next > 1000000)
		next = 1000000;
	if (next < 20000)
		next = 20000;
	when.it_value.tv_sec = next / 1000000000;
	when.it_value.tv_nsec = next % 1000000000;
	timerfd_settime(d->tick_fd, 0, &when, NULL);
}

static int64_t clock_ns(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Once a second: a CPU come or gone, or the time for the periodic check,
 * and the TSC is checked across CPUs again. */
static void housekeeping(struct daemon *d)
{
	struct uclock_trust_facts facts;
	char online[sizeof(d->online)];

	read_online(online, sizeof(online));
	int changed = strcmp(online, d->online) != 0;
	if (!changed && clock_ns(CLOCK_MONOTONIC) - d->last_sync_ns < SYNC_RECHECK_NS)
		return;
	if (changed)
		say("online CPUs now %s: checking the " UCLOCK__COUNTER_TEXT " across them", online);
	memcpy(d->online, online, sizeof(online));
	check_sync(d, &facts);
	d->last_sync_ns = clock_ns(CLOCK_MONOTONIC);
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
	d->house_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
	if (d->tick_fd < 0 || d->settime_fd < 0 || d->signal_fd < 0 || d->house_fd < 0) {
		say("cannot set up timers and signals: %s", strerror(errno));
		return -1;
	}
	struct itimerspec second = {{1, 0}, {1, 0}};
	timerfd_settime(d->house_fd, 0, &second, NULL);
	d->last_sync_ns = clock_ns(CLOCK_MONOTONIC);
	arm_tick(d);
	arm_settime(d);
	return 0;
}

/* offsets_only: REALTIME was set; the lines stay (readers' mirrors of
 * them are good until their keep), the offsets follow the kernel. */
static void update(struct daemon *d, int offsets_only)
{
	if (uclock__tk_take(&d->tk)) {
		if (offsets_only)
			uclock__tk_update_offsets(&d->tk);
		else
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
	/* Ready once calibrated (or given up to the kernel): processes
	 * started after this read the page from their first call. */
	struct uclock__copy c;
	uclock__copy_load(d->page, &c);
	if (!d->ready && c.mode != UCLOCK_MODE_WARMUP) {
		d->ready = 1;
		notify("READY=1");
	}
}

/* ---- error bounds ---- */

/* chronyd's figures as a reading; -1 if it gave none (not asked, its
 * default socket absent, no answer: said once, when it changes). */
static int read_chrony(struct daemon *d, struct uclock__bounds_reading *r)
{
	struct uclock_chrony_tracking t;
	struct stat st;
	char why[256];

	if (!d->chrony || (!d->chrony_asked && lstat(d->chrony, &st) != 0))
		return -1;
	if (uclock__chrony_tracking(d->chrony, CHRONY_TIMEOUT_MS, &t, why, sizeof(why)) != 0) {
		if (strcmp(why, d->chrony_why) != 0) {
			say("chronyd: %s", why);
			snprintf(d->chrony_why, sizeof(d->chrony_why), "%s", why);
		}
		return -1;
	}
	if (d->chrony_why[0]) {
		say("chronyd answers on %s", d->chrony);
		d->chrony_why[0] = '\0';
	}
	uclock__bounds_from_chrony(&t, &d->chrony_ref_ns, d->drift_ppb, r);
	return 0;
}

/*
 * The figures: chronyd's while it is synchronised (tighter than the
 * kernel's maxerror, which grows by 500 us a second); else the kernel's
 * if a service keeps it synchronised; else, chronyd having been, its last
 * figures growing (free running); else the kernel's (unknown).
 */
static void read_bounds(struct daemon *d)
{
	struct uclock__bounds_copy prev, next;
	struct uclock__bounds_reading r;
	int64_t now = clock_ns(CLOCK_REALTIME);

	if (read_chrony(d, &r) == 0 && r.status == UCLOCK_BOUNDS_SYNCHRONIZED) {
		d->chrony_ok = 1;
	} else {
		struct uclock__bounds_reading k;

		uclock__bounds_adjtimex(&d->adj, now, d->drift_ppb, &k);
		if (k.status == UCLOCK_BOUNDS_SYNCHRONIZED || !d->chrony_ok) {
			r = k;
		} else {
			memset(&r, 0, sizeof(r));
			r.source = UCLOCK_BOUNDS_SOURCE_CHRONY;
			r.status = UCLOCK_BOUNDS_FREE_RUNNING;
		}
	}
	uint64_t marker;
	int moved, vm_ok = uclock__bounds_vm_poll(&marker, &moved);

	/* A migration the VM clock reports: a jump for every reader, also
	 * those that cannot map the device themselves. */
	if (moved) {
		__atomic_fetch_add(&d->page->bounds.disruptions, 1, __ATOMIC_RELAXED);
		say("the VM clock's disruption marker moved: bounds disrupted until the "
		    "time service updates");
	}
	uclock__bounds_load(&d->page->bounds, &prev);
	uclock__bounds_next(&prev, &r, now,
			    __atomic_load_n(&d->page->bounds.disruptions, __ATOMIC_RELAXED), vm_ok,
			    marker,
			    uclock__bounds_uclock_error(__atomic_load_n(&d->tk.mono_err_ns,
									 __ATOMIC_RELAXED)),
			    &next);
	uclock__bounds_store(&d->page->bounds, &next);
	if ((int)next.status != d->last_bounds_status || (int)next.source != d->last_bounds_source) {
		d->last_bounds_status = (int)next.status;
		d->last_bounds_source = (int)next.source;
		say("error bound: %s, from %s (%.3f ms at the last update)",
		    uclock__bounds_status_name((int)next.status),
		    uclock__bounds_source_name((int)next.source), (double)next.error_ns / 1e6);
	}
}

static void *bounds_thread(void *arg)
{
	struct daemon *d = arg;
	struct timespec next;

	clock_gettime(CLOCK_MONOTONIC, &next);
	for (;;) {
		read_bounds(d);
		next.tv_sec++;
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR)
			;
	}
	return NULL;
}

static int start_bounds(struct daemon *d)
{
	pthread_t t;
	sigset_t all, old;
	int err;

	d->last_bounds_status = d->last_bounds_source = -1;
	/* The thread takes no signal: the main loop reads them. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	err = pthread_create(&t, NULL, bounds_thread, d);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err) {
		say("cannot start the thread that reads the time service: %s", strerror(err));
		return -1;
	}
	pthread_detach(t);
	return 0;
}

/*
 * A clean stop.  Processes keep their own mirror of the last copy until
 * its keep: wait that out (a period at most), then end the lines now and
 * mark the page stopped.  Readers then leave it at their next read, with
 * floors at what they can have read, not a span ahead.
 */
static void stop_keeping(struct daemon *d)
{
	struct uclock__copy c;

	notify("STOPPING=1");
	uclock__copy_load(d->page, &c);
	if (c.mode == UCLOCK_MODE_COUNTER)
		wait_keep(d, &c);
	if (uclock__tk_take(&d->tk)) {
		uclock__tk_end(&d->tk);
		uclock__tk_give(&d->tk);
	}
	__atomic_store_n(&d->page->state, UCLOCK__STOPPED, __ATOMIC_RELEASE);
	msync(d->page, UCLOCK__PAGE_BYTES, MS_ASYNC);
	say("stopped; %s marked stopped", d->path);
}

static int run(struct daemon *d)
{
	struct pollfd fds[] = {
		{.fd = d->tick_fd, .events = POLLIN},
		{.fd = d->settime_fd, .events = POLLIN},
		{.fd = d->signal_fd, .events = POLLIN},
		{.fd = d->house_fd, .events = POLLIN},
	};

	for (;;) {
		uint64_t expirations;

		if (poll(fds, 4, -1) < 0) {
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
				update(d, 1);
			arm_settime(d);
		}
		if (fds[0].revents & POLLIN) {
			if (read(d->tick_fd, &expirations, sizeof(expirations)) > 0)
				update(d, 0);
			arm_tick(d);
		}
		if ((fds[3].revents & POLLIN) &&
		    read(d->house_fd, &expirations, sizeof(expirations)) > 0)
			housekeeping(d);
	}
}

int main(int argc, char **argv)
{
	static struct daemon d = {.last_sync = -1};
	int status = parse(&d, argc, argv);

	if (status >= 0)
		return status;
	if (start_keeping(&d) != 0 || open_events(&d) != 0 || start_bounds(&d) != 0)
		return 1;
	status = run(&d);
	stop_keeping(&d);
	return status;
}
