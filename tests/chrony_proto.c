/*
 * The client for chronyd's command socket (src/chrony.c), without
 * chronyd: chrony's 32-bit float on known words and in round trips;
 * replies built here byte by byte from chrony's candm.h layout, good and
 * broken in every field the client checks; a fake chronyd on a Unix
 * datagram socket, in a thread, that checks the request it gets (length,
 * header, padding, a reply socket of mode 0666 next to its own) and answers
 * with good, short, long, stray, refused and odd replies, or not at all;
 * server paths that are not chronyd's socket.  After every call: no
 * descriptor left open, no reply socket left behind, no SIGPIPE.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "check.h"
#include "internal.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* candm.h, protocol version 6: CMD_Reply's header, then RPY_Tracking. */
enum {
	R_VERSION = 0, R_TYPE = 1, R_COMMAND = 4, R_REPLY = 6, R_STATUS = 8,
	R_SEQUENCE = 16, R_REF_ID = 28, R_ADDRESS = 32, R_STRATUM = 52,
	R_LEAP = 54, R_SEC_HIGH = 56, R_SEC_LOW = 60, R_NSEC = 64, R_FLOATS = 68,
	TRACKING_LEN = 104, ERROR_LEN = 32, /* RPY_NULL: the header and EOR */
};
enum { F_CORRECTION, F_LAST, F_RMS, F_FREQ, F_RESID, F_SKEW, F_DELAY, F_DISPERSION,
       F_INTERVAL };
#define SEQUENCE 0x5eed1234u

static void put16(unsigned char *p, unsigned v)
{
	p[0] = (unsigned char)(v >> 8);
	p[1] = (unsigned char)v;
}

static void put32(unsigned char *p, uint32_t v)
{
	put16(p, v >> 16);
	put16(p + 2, v & 0xffff);
}

static uint32_t get32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* chrony's Float from its definition: coefficient (25 bits, signed) times
 * 2^(exponent - 25), exponent 7 bits signed; the coefficient as large as
 * it fits.  For the values used here (no underflow or overflow). */
static uint32_t encode(double x)
{
	int e;
	double m = frexp(x, &e);      /* x = m 2^e, 0.5 <= |m| < 1 */
	long coef = lround(m * (1 << 24));
	int exponent = e + 1;

	if (x == 0)
		return 0;
	if (coef == 1 << 24) {  /* m rounded up to 1; -2^24 fits */
		coef /= 2;
		exponent++;
	}
	return (uint32_t)(exponent & 0x7f) << 25 | (uint32_t)(coef & 0x1ffffff);
}

static const double fed[] = {
	[F_CORRECTION] = 0.001061413, [F_LAST] = -0.001060133, [F_RMS] = 0.001060133,
	[F_FREQ] = -20.0, [F_RESID] = 0.0, [F_SKEW] = 0.011, [F_DELAY] = 1e-9,
	[F_DISPERSION] = 6.51e-7, [F_INTERVAL] = 1.0,
};
#define REF_SEC 1796268350u
#define REF_NSEC 221713792u

/* What chronyd sent in tests/chrony.sh's run, near enough. */
static void good_reply(unsigned char *r, uint32_t sequence)
{
	memset(r, 0, TRACKING_LEN);
	r[R_VERSION] = 6;
	r[R_TYPE] = 2;
	put16(r + R_COMMAND, 33);
	put16(r + R_REPLY, 5);
	put32(r + R_SEQUENCE, sequence);
	put32(r + R_REF_ID, 0x55434c4b);
	put16(r + R_STRATUM, 1);
	put32(r + R_SEC_LOW, REF_SEC);
	put32(r + R_NSEC, REF_NSEC);
	for (size_t i = 0; i < NELEM(fed); i++)
		put32(r + R_FLOATS + 4 * i, encode(fed[i]));
}

static double *field(struct uclock_chrony_tracking *t, int i)
{
	double *f[] = {
		&t->current_correction_s, &t->last_offset_s, &t->rms_offset_s,
		&t->freq_ppm, &t->resid_freq_ppm, &t->skew_ppm, &t->root_delay_s,
		&t->root_dispersion_s, &t->last_update_interval_s,
	};
	return f[i];
}

static void check_good(struct uclock_chrony_tracking *t, const char *what)
{
	CHECK(t->ref_id == 0x55434c4b && t->stratum == 1 && t->leap_status == 0,
	      "%s: ref_id %08x stratum %d leap %d", what, t->ref_id, t->stratum,
	      t->leap_status);
	CHECK(t->ref_time_ns == (int64_t)REF_SEC * 1000000000 + REF_NSEC,
	      "%s: ref_time %lld ns", what, (long long)t->ref_time_ns);
	for (size_t i = 0; i < NELEM(fed); i++)
		CHECK(fabs(*field(t, (int)i) - fed[i]) <= fabs(fed[i]) * 0x1p-23,
		      "%s: float %zu: %.12g, sent %.12g", what, i, *field(t, (int)i), fed[i]);
}

/* Words and their values, worked out by hand from the definition. */
static void floats_known(void)
{
	static const struct { uint32_t word; double value; } known[] = {
		{ 0x00000000, 0.0 },
		{ 0x04800000, 1.0 },                   /* 2^23 * 2^(2-25) */
		{ 0x03000000, -1.0 },                  /* -2^24 * 2^(1-25) */
		{ 0x02800000, 0.5 },
		{ 0x06c00000, 3.0 },                   /* 3*2^22 * 2^(3-25) */
		{ 0x05400000, -1.5 },                  /* -3*2^22 * 2^(2-25) */
		{ 0x01ffffff, -0x1p-25 },              /* coefficient -1, exponent 0 */
		{ 0x00000001, 0x1p-25 },
		{ 0x7effffff, 16777215.0 * 0x1p38 },   /* the largest */
		{ 0x7f000000, -0x1p62 },               /* the most negative */
		{ 0x80000001, 0x1p-89 },               /* the smallest above 0 */
		{ 0x81ffffff, -0x1p-89 },
		{ 0xfe000001, 0x1p-26 },               /* exponent -1 */
		{ 0x0a989680, 10000000.0 * 0x1p-20 },  /* exponent 5 */
	};

	for (size_t i = 0; i < NELEM(known); i++) {
		double v = uclock__chrony_float(known[i].word);

		CHECK(v == known[i].value, "float %#010x: %a, not %a", known[i].word, v,
		      known[i].value);
	}
	/* (chrony encodes -1 as 0x03000000, this encoder as 0x05800000:
	 * both are -1.) */
	CHECK(encode(1.0) == 0x04800000 && encode(0.5) == 0x02800000 &&
	      encode(3.0) == 0x06c00000 && uclock__chrony_float(0x05800000) == -1.0,
	      "the test's encoder agrees with the words");
}

static void floats_round_trip(void)
{
	static const double values[] = {
		1e-9, -1e-9, 2.5e-7, 0.001, -0.001061413, 0.333333333, 1.0, 16.0,
		-20.0, 500.0, 86400.0, 1.5e6, -7.25e9, 1e12, 0x1p-60, 123456.789,
	};

	for (size_t i = 0; i < NELEM(values); i++) {
		double v = uclock__chrony_float(encode(values[i]));

		CHECK(fabs(v - values[i]) <= fabs(values[i]) * 0x1p-24,
		      "round trip %.12g: %.12g", values[i], v);
	}
}

struct fault {
	const char *what;
	int offset, width;      /* width 0: no change */
	uint32_t value;
	size_t len;             /* 0: TRACKING_LEN */
	int err;                /* 0: accepted */
	const char *why;
};

static void mutate(unsigned char *r, const struct fault *f)
{
	if (f->width == 1)
		r[f->offset] = (unsigned char)f->value;
	else if (f->width == 2)
		put16(r + f->offset, f->value);
	else if (f->width == 4)
		put32(r + f->offset, f->value);
}

#define FLOAT_AT(i) (R_FLOATS + 4 * (i))

static void parse_faults(void)
{
	const struct fault faults[] = {
		{ "good", 0, 0, 0, 0, 0, "" },
		{ "1 byte", 0, 0, 0, 1, EPROTO, "shorter than a header" },
		{ "27 bytes", 0, 0, 0, 27, EPROTO, "shorter than a header" },
		{ "a request", R_TYPE, 1, 1, 0, EPROTO, "not a reply" },
		{ "version 5", R_VERSION, 1, 5, 0, EPROTONOSUPPORT, "version 5" },
		{ "version 7", R_VERSION, 1, 7, 0, EPROTONOSUPPORT, "version 7" },
		{ "another sequence", R_SEQUENCE, 4, SEQUENCE ^ 1, 0, EPROTO,
		  "another request" },
		{ "another command", R_COMMAND, 2, 14, 0, EPROTO, "command 14" },
		{ "failed", R_STATUS, 2, 1, ERROR_LEN, EPROTO, "failed" },
		{ "unauthorised", R_STATUS, 2, 2, ERROR_LEN, EACCES, "not authorised" },
		{ "bad length", R_STATUS, 2, 19, ERROR_LEN, EPROTO, "bad packet length" },
		{ "odd status", R_STATUS, 2, 999, 0, EPROTO, "status 999" },
		{ "RPY_NULL", R_REPLY, 2, 1, ERROR_LEN, EPROTO, "reply code 1" },
		{ "sourcestats", R_REPLY, 2, 6, 0, EPROTO, "reply code 6" },
		{ "103 bytes", 0, 0, 0, 103, EPROTO, "103 bytes" },
		{ "105 bytes", 0, 0, 0, 105, EPROTO, "105 bytes" },
		{ "stratum 16", R_STRATUM, 2, 16, 0, 0, "" },
		{ "stratum 17", R_STRATUM, 2, 17, 0, EPROTO, "stratum 17" },
		{ "leap 3", R_LEAP, 2, 3, 0, 0, "" },
		{ "leap 4", R_LEAP, 2, 4, 0, EPROTO, "leap status 4" },
		{ "nsec 1e9", R_NSEC, 4, 1000000000, 0, EPROTO, "reference time" },
		{ "sec high 2", R_SEC_HIGH, 4, 2, 0, EPROTO, "reference time" },
		{ "sec high ~0", R_SEC_HIGH, 4, 0xffffffff, 0, EPROTO, "reference time" },
		{ "no high seconds", R_SEC_HIGH, 4, 0x7fffffff, 0, 0, "" },
		{ "negative rms", FLOAT_AT(F_RMS), 4, 0x03000000, 0, EPROTO, "negative" },
		{ "negative skew", FLOAT_AT(F_SKEW), 4, 0x03000000, 0, EPROTO, "negative" },
		{ "negative delay", FLOAT_AT(F_DELAY), 4, 0x81ffffff, 0, EPROTO, "negative" },
		{ "negative dispersion", FLOAT_AT(F_DISPERSION), 4, 0x7f000000, 0, EPROTO,
		  "negative" },
		{ "negative interval", FLOAT_AT(F_INTERVAL), 4, 0x01ffffff, 0, EPROTO,
		  "negative" },
		{ "largest dispersion", FLOAT_AT(F_DISPERSION), 4, 0x7effffff, 0, 0, "" },
		{ "smallest delay", FLOAT_AT(F_DELAY), 4, 0x80000001, 0, 0, "" },
		{ "negative correction", FLOAT_AT(F_CORRECTION), 4, 0x7f000000, 0, 0, "" },
	};

	for (size_t i = 0; i < NELEM(faults); i++) {
		const struct fault *f = &faults[i];
		unsigned char r[200];
		struct uclock_chrony_tracking t;
		char why[256] = "";
		int rc;

		good_reply(r, SEQUENCE);
		memset(r + TRACKING_LEN, 0, sizeof(r) - TRACKING_LEN);
		mutate(r, f);
		memset(&t, 0xa5, sizeof(t));
		errno = 0;
		rc = uclock__chrony_parse(r, f->len ? f->len : TRACKING_LEN,
					  SEQUENCE, &t, why, sizeof(why));
		if (!f->err) {
			CHECK(rc == 0, "%s: refused: %s", f->what, why);
			continue;
		}
		CHECK(rc == -1 && errno == f->err && strstr(why, f->why),
		      "%s: rc %d errno %d (want %d), why \"%s\" (want \"%s\")",
		      f->what, rc, errno, f->err, why, f->why);
		CHECK(((unsigned char *)&t)[0] == 0xa5, "%s: report written", f->what);
	}
}

/* The accepted odd ones read as sent. */
static void parse_values(void)
{
	unsigned char r[TRACKING_LEN];
	struct uclock_chrony_tracking t;
	char why[256];

	good_reply(r, SEQUENCE);
	CHECK(uclock__chrony_parse(r, sizeof(r), SEQUENCE, &t, why, sizeof(why)) == 0,
	      "good: %s", why);
	check_good(&t, "parsed");
	put32(r + R_SEC_HIGH, 0x7fffffff);
	CHECK(uclock__chrony_parse(r, sizeof(r), SEQUENCE, &t, NULL, 0) == 0 &&
	      t.ref_time_ns == (int64_t)REF_SEC * 1000000000 + REF_NSEC,
	      "TV_NOHIGHSEC: %lld", (long long)t.ref_time_ns);
	put32(r + R_SEC_HIGH, 1);
	CHECK(uclock__chrony_parse(r, sizeof(r), SEQUENCE, &t, NULL, 0) == 0 &&
	      t.ref_time_ns == ((int64_t)1 << 32 | REF_SEC) * 1000000000 + REF_NSEC,
	      "high seconds 1: %lld", (long long)t.ref_time_ns);
	good_reply(r, SEQUENCE);
	put32(r + FLOAT_AT(F_DISPERSION), 0x7effffff);
	put32(r + FLOAT_AT(F_DELAY), 0x80000001);
	CHECK(uclock__chrony_parse(r, sizeof(r), SEQUENCE, &t, why, sizeof(why)) == 0 &&
	      t.root_dispersion_s == 16777215.0 * 0x1p38 && t.root_delay_s == 0x1p-89,
	      "extremes: %a %a", t.root_dispersion_s, t.root_delay_s);
	/* What chronyd sends before it is synchronised. */
	memset(r + R_REF_ID, 0, TRACKING_LEN - R_REF_ID);
	put16(r + R_LEAP, 3);
	put32(r + FLOAT_AT(F_DELAY), 0x04800000);
	put32(r + FLOAT_AT(F_DISPERSION), 0x04800000);
	CHECK(uclock__chrony_parse(r, sizeof(r), SEQUENCE, &t, why, sizeof(why)) == 0 &&
	      t.stratum == 0 && t.leap_status == 3 && t.ref_time_ns == 0 &&
	      t.root_dispersion_s == 1.0, "unsynchronised: %s", why);
}

/* The fake chronyd. */
enum answer { GOOD, SHORT, LONG, STRAY, NULL_REPLY, REFUSED, OLD_VERSION,
	      NEGATIVE, HUGE, TWO, SILENT };

struct server {
	int fd;
	char dir[64];
	enum answer answer;
	/* What it saw. */
	int got, request_ok, reply_mode, reply_dir_ok;
	char request_why[128];
};

static const char *request_fault(const unsigned char *q, ssize_t n)
{
	if (n != TRACKING_LEN)
		return "not 104 bytes (chronyd drops a request shorter than its reply)";
	if (q[0] != 6 || q[1] != 1 || q[2] || q[3])
		return "version, type or reserved bytes";
	if (q[4] != 0 || q[5] != 33 || q[6] || q[7])
		return "command or attempt";
	for (int i = 12; i < TRACKING_LEN; i++)
		if (q[i])
			return "padding not zero";
	return NULL;
}

static void answer(struct server *s, const unsigned char *q, const struct sockaddr *to,
		   socklen_t tolen)
{
	unsigned char r[600];
	uint32_t seq = get32(q + 8);
	size_t len = TRACKING_LEN;

	memset(r, 0, sizeof(r));
	good_reply(r, seq);
	switch (s->answer) {
	case GOOD: case TWO: case SILENT: break;
	case SHORT: len = 20; break;
	case LONG: len = sizeof(r); break;
	case STRAY: put32(r + R_SEQUENCE, seq + 1); break;
	case NULL_REPLY: put16(r + R_REPLY, 1); len = ERROR_LEN; break;
	case REFUSED: put16(r + R_REPLY, 1); put16(r + R_STATUS, 2); len = ERROR_LEN; break;
	case OLD_VERSION: r[0] = 5; put16(r + R_REPLY, 1); put16(r + R_STATUS, 18);
		len = ERROR_LEN; break;
	case NEGATIVE: put32(r + FLOAT_AT(F_DISPERSION), encode(-1e-6)); break;
	case HUGE: put32(r + FLOAT_AT(F_DISPERSION), 0x7effffff); break;
	}
	if (s->answer == SILENT)
		return;
	sendto(s->fd, r, len, MSG_NOSIGNAL, to, tolen);
	if (s->answer == TWO)
		sendto(s->fd, r, len, MSG_NOSIGNAL, to, tolen);
}

static void *serve(void *arg)
{
	struct server *s = arg;
	struct pollfd pfd = { .fd = s->fd, .events = POLLIN };
	unsigned char q[1024];
	struct sockaddr_un from;
	socklen_t fromlen = sizeof(from);
	const char *fault;
	struct stat st;
	ssize_t n;

	if (poll(&pfd, 1, 10000) != 1)
		return NULL;
	n = recvfrom(s->fd, q, sizeof(q), MSG_TRUNC, (struct sockaddr *)&from, &fromlen);
	s->got = 1;
	fault = request_fault(q, n);
	s->request_ok = !fault;
	snprintf(s->request_why, sizeof(s->request_why), "%s", fault ? fault : "");
	/* The reply socket: next to ours (or relative, where ours is), 0666. */
	if (fromlen > offsetof(struct sockaddr_un, sun_path) &&
	    stat(from.sun_path, &st) == 0 && S_ISSOCK(st.st_mode))
		s->reply_mode = st.st_mode & 07777;
	s->reply_dir_ok = strncmp(from.sun_path, s->dir, strlen(s->dir)) == 0 ||
			  strncmp(from.sun_path, "uclock.", 7) == 0;
	answer(s, q, (struct sockaddr *)&from, fromlen);
	return NULL;
}

static int open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	if (!d)
		return -1;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

/* Nothing of ours left in dir. */
static int leftovers(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		n += strncmp(e->d_name, "uclock.", 7) == 0;
	closedir(d);
	return n;
}

/* One call; 0 or the errno.  Checks what every call must leave. */
static int call(const char *path, int timeout_ms, struct uclock_chrony_tracking *t,
		char *why, size_t size, const char *dir, const char *what)
{
	int before = open_fds(), rc, err;

	errno = 0;
	rc = uclock__chrony_tracking(path, timeout_ms, t, why, size);
	err = errno;
	CHECK(open_fds() == before, "%s: %d descriptors open, %d before", what,
	      open_fds(), before);
	CHECK(leftovers(dir) == 0, "%s: a reply socket left in %s", what, dir);
	CHECK(rc == 0 || rc == -1, "%s: returned %d", what, rc);
	CHECK(rc == 0 || err != 0, "%s: -1 without errno", what);
	return rc == 0 ? 0 : err;
}

static int bound_socket(const char *path, int type)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		check_skip("cannot bind a Unix socket at %s: %s", path, strerror(errno));
	return fd;
}

static void against_server(const char *dir)
{
	static const struct { enum answer answer; int err; const char *why; } cases[] = {
		{ GOOD, 0, "" },
		{ TWO, 0, "" },
		{ HUGE, 0, "" },
		{ SHORT, EPROTO, "shorter than a header" },
		{ LONG, EPROTO, "600 bytes" },
		{ STRAY, EPROTO, "another request" },
		{ NULL_REPLY, EPROTO, "reply code 1" },
		{ REFUSED, EACCES, "not authorised" },
		{ OLD_VERSION, EPROTONOSUPPORT, "version 5" },
		{ NEGATIVE, EPROTO, "negative" },
		{ SILENT, ETIMEDOUT, "within 300 ms" },
	};
	struct server s;
	char path[128], why[256];
	struct uclock_chrony_tracking t;

	snprintf(path, sizeof(path), "%s/chronyd.sock", dir);
	memset(&s, 0, sizeof(s));
	s.fd = bound_socket(path, SOCK_DGRAM);
	snprintf(s.dir, sizeof(s.dir), "%s/", dir);
	for (size_t i = 0; i < NELEM(cases) + 1; i++) {
		/* Last: the same through a relative path, from its directory. */
		int relative = i == NELEM(cases);
		pthread_t thread;
		double start = elapsed_s();
		char what[64];
		int err;

		s.answer = relative ? GOOD : cases[i].answer;
		s.got = s.request_ok = s.reply_mode = s.reply_dir_ok = 0;
		snprintf(what, sizeof(what), relative ? "relative path" : "answer %zu", i);
		if (relative && chdir(dir) != 0)
			check_skip("chdir %s: %s", dir, strerror(errno));
		pthread_create(&thread, NULL, serve, &s);
		why[0] = 0;
		err = call(relative ? "chronyd.sock" : path, relative ? 5000 :
			   s.answer == SILENT ? 300 : 5000, &t, why, sizeof(why), dir, what);
		pthread_join(thread, NULL);
		if (relative && chdir("/") != 0)
			check_skip("chdir /: %s", strerror(errno));
		CHECK(s.got && s.request_ok, "%s: request: %s", what,
		      s.got ? s.request_why : "none came");
		CHECK(s.reply_mode == 0666 && s.reply_dir_ok,
		      "%s: reply socket mode %o, in the server's directory: %d", what,
		      s.reply_mode, s.reply_dir_ok);
		if (relative || !cases[i].err) {
			CHECK(err == 0, "%s: %s", what, why);
			if (err == 0 && s.answer != HUGE)
				check_good(&t, what);
			continue;
		}
		CHECK(err == cases[i].err && strstr(why, cases[i].why),
		      "%s: errno %d (want %d), why \"%s\" (want \"%s\")", what, err,
		      cases[i].err, why, cases[i].why);
		if (s.answer == SILENT)
			CHECK(elapsed_s() - start >= 0.25, "%s: gave up after %.3f s, "
			      "before the 300 ms asked", what, elapsed_s() - start);
	}
	close(s.fd);
	unlink(path);
}

/* A directory whose path leaves no room for "/uclock.PID.N.sock" in a
 * sockaddr_un, where "/s" fits (with the test's directory, 24 bytes). */
static const char long_dir[] =
	"dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd";
static const char *const made[] = { "file", "fifo", "stale", "stream" };

/* Paths where chronyd's socket is not: an error at once, never a hang. */
static void odd_paths(const char *dir)
{
	char path[256], why[256];
	struct uclock_chrony_tracking t;
	struct { const char *name; int err; const char *why; } cases[] = {
		{ "missing", ENOENT, "no chronyd command socket" },
		{ "file", ENOTSOCK, "a regular file" },
		{ "fifo", ENOTSOCK, "a FIFO" },
		{ "dir", ENOTSOCK, "a directory" },
		{ "stale", ECONNREFUSED, "nothing receives there" },
		{ "stream", EPROTOTYPE, "not a datagram socket" },
	};
	int fd, listener;

	snprintf(path, sizeof(path), "%s/file", dir);
	fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	close(fd);
	snprintf(path, sizeof(path), "%s/fifo", dir);
	mkfifo(path, 0600);
	snprintf(path, sizeof(path), "%s/dir", dir);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/stale", dir);
	close(bound_socket(path, SOCK_DGRAM));
	snprintf(path, sizeof(path), "%s/stream", dir);
	listener = bound_socket(path, SOCK_STREAM);
	listen(listener, 1);
	for (size_t i = 0; i < NELEM(cases); i++) {
		int err;

		snprintf(path, sizeof(path), "%s/%s", dir, cases[i].name);
		why[0] = 0;
		err = call(path, 300, &t, why, sizeof(why), dir, cases[i].name);
		CHECK(err == cases[i].err && strstr(why, cases[i].why),
		      "%s: errno %d (want %d), why \"%s\" (want \"%s\")", cases[i].name,
		      err, cases[i].err, why, cases[i].why);
	}
	close(listener);
	CHECK(call("/dev/null", 300, &t, why, sizeof(why), dir, "device") == ENOTSOCK &&
	      strstr(why, "a device"), "/dev/null: %s", why);

	/* Too long for sockaddr_un; and a server path that fits where ours
	 * (uclock.PID.N.sock) would not. */
	memset(path, 'x', 200);
	path[0] = '/';
	path[200] = 0;
	CHECK(call(path, 300, &t, why, sizeof(why), dir, "long") == ENAMETOOLONG,
	      "a 200-byte path: %s", why);
	snprintf(path, sizeof(path), "%s/%s", dir, long_dir);
	mkdir(path, 0700);
	strcat(path, "/s");
	close(bound_socket(path, SOCK_DGRAM));
	CHECK(call(path, 300, &t, why, sizeof(why), dir, "long reply path") == ENAMETOOLONG &&
	      strstr(why, "reply socket"), "no room for the reply socket: %s", why);

	snprintf(path, sizeof(path), "%s/stale", dir);
	CHECK(call(path, 0, &t, why, sizeof(why), dir, "timeout 0") == EINVAL,
	      "timeout 0: %s", why);
	CHECK(call(path, -1, &t, why, sizeof(why), dir, "timeout -1") == EINVAL,
	      "timeout -1: %s", why);
	CHECK(call(path, 300, NULL, why, sizeof(why), dir, "no report") == EINVAL,
	      "no report: %s", why);
	/* No room for a reason: the errno alone. */
	CHECK(call(path, 300, &t, NULL, 0, dir, "no why") == ECONNREFUSED, "no why");
	/* NULL: Debian's path; chronyd may or may not run here. */
	if (call(NULL, 300, &t, why, sizeof(why), dir, "default") != 0)
		CHECK(strstr(why, "/run/chrony/chronyd.sock") != NULL,
		      "default path: %s", why);
}

/* What the test made, and what a failing client left. */
static void remove_made(const char *dir)
{
	char path[512];
	DIR *d = opendir(dir);
	struct dirent *e;

	while (d && (e = readdir(d))) {
		if (strncmp(e->d_name, "uclock.", 7) == 0) {
			snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
			unlink(path);
		}
	}
	if (d)
		closedir(d);
	for (size_t i = 0; i < NELEM(made); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, made[i]);
		unlink(path);
	}
	snprintf(path, sizeof(path), "%s/%s/s", dir, long_dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/%s", dir, long_dir);
	rmdir(path);
	snprintf(path, sizeof(path), "%s/dir", dir);
	rmdir(path);
	CHECK(rmdir(dir) == 0, "%s not empty at the end: %s", dir, strerror(errno));
}

int main(void)
{
	char dir[] = "/tmp/chrony_proto.XXXXXX";

	/* A SIGPIPE would end the test: the client must never raise one. */
	signal(SIGPIPE, SIG_DFL);
	floats_known();
	floats_round_trip();
	parse_faults();
	parse_values();
	if (!mkdtemp(dir))
		check_skip("mkdtemp: %s", strerror(errno));
	against_server(dir);
	odd_paths(dir);
	remove_made(dir);
	return check_done("chrony_proto");
}
