/*
 * chronyd's tracking report (what `chronyc tracking` shows), asked for on
 * its command socket: one request, one reply, in the command protocol's
 * version 6 (chrony 2.x to 4.x; the layouts are candm.h's).
 *
 * The socket is a Unix datagram socket (bindcmdaddress, /run/chrony/
 * chronyd.sock on Debian).  chronyd answers to the address the request
 * came from, so ours is bound to a path, as chronyc's is: in the same
 * directory (chronyd's: only root and chronyd's user may write there), named
 * by pid and a counter, mode 0666 so that a chronyd that dropped root can
 * send to it, removed before returning.  It is connected to chronyd's: the
 * kernel then refuses datagrams from any other socket, so the mode lets
 * nobody else in.
 *
 * Everything on the wire is big-endian.  chronyd drops a request shorter
 * than its reply (no amplification): ours is padded to the report's length.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "internal.h"

#define DEFAULT_PATH "/run/chrony/chronyd.sock"

#define PROTO_VERSION 6
#define PKT_REQUEST 1
#define PKT_REPLY 2
#define REQ_TRACKING 33
#define RPY_TRACKING 5
#define STT_SUCCESS 0
#define STT_UNAUTH 2

/* Byte offsets.  CMD_Request: version, packet type, 2 reserved bytes,
 * command, attempt, sequence, 2 pad words (20 bytes); REQ_TRACKING has no
 * data, only the padding up to the reply's length. */
enum { REQUEST_COMMAND = 4, REQUEST_SEQUENCE = 8 };
/* CMD_Reply: version, packet type, 2 reserved bytes, command, reply code,
 * status, 3 pad halves, sequence, 2 pad words (28 bytes); RPY_Tracking:
 * reference ID, the source's IPAddr (20 bytes, not kept), stratum, leap
 * status, reference time (Timespec), then 9 Floats. */
enum {
	REPLY_VERSION = 0, REPLY_TYPE = 1, REPLY_COMMAND = 4, REPLY_CODE = 6,
	REPLY_STATUS = 8, REPLY_SEQUENCE = 16, REPLY_HEADER = 28,
	TRACKING_REF_ID = 28, TRACKING_STRATUM = 52, TRACKING_LEAP = 54,
	TRACKING_REF_TIME = 56, TRACKING_FLOATS = 68, TRACKING_LENGTH = 104,
};

/* Timespec's tv_sec_high from a chronyd with a 32-bit time_t. */
#define NO_HIGH_SECONDS 0x7fffffffu
#define MAX_STRATUM 16

static unsigned sockets_made;

static uint16_t get16(const unsigned char *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static int fail(int err, char *why, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fail(int err, char *why, size_t size, const char *fmt, ...)
{
	va_list ap;

	if (why && size) {
		va_start(ap, fmt);
		vsnprintf(why, size, fmt, ap);
		va_end(ap);
	}
	errno = err;
	return -1;
}

/* 2^e, exactly, for e in a double's normal range (no libm). */
static double pow2(int e)
{
	uint64_t bits = (uint64_t)(e + 1023) << 52;
	double d;

	memcpy(&d, &bits, sizeof(d));
	return d;
}

/*
 * chrony's Float: a 7-bit signed exponent over a 25-bit signed coefficient
 * (two's complement, no hidden bit): coefficient * 2^(exponent - 25).
 * Every word is a number; none is infinite or NaN.
 */
double uclock__chrony_float(uint32_t word)
{
	int exponent = (int)(word >> 25);
	int32_t coefficient = (int32_t)(word & 0x1ffffff);

	if (exponent >= 64)
		exponent -= 128;
	if (coefficient >= 1 << 24)
		coefficient -= 1 << 25;
	return coefficient * pow2(exponent - 25);
}

static const char *status_name(unsigned status)
{
	switch (status) {
	case 1: return "failed";
	case 2: return "not authorised";
	case 3: return "invalid command";
	case 18: return "bad packet version";
	case 19: return "bad packet length";
	default: return "error";
	}
}

/* The header: a reply to this request, and a success. */
static int check_header(const unsigned char *p, size_t len, uint32_t sequence,
			char *why, size_t size)
{
	unsigned status;

	if (len < REPLY_HEADER)
		return fail(EPROTO, why, size, "a reply of %zu bytes, shorter than "
			    "a header (%d)", len, REPLY_HEADER);
	if (p[REPLY_TYPE] != PKT_REPLY)
		return fail(EPROTO, why, size, "not a reply (packet type %u)",
			    p[REPLY_TYPE]);
	if (p[REPLY_VERSION] != PROTO_VERSION)
		return fail(EPROTONOSUPPORT, why, size, "chronyd speaks protocol "
			    "version %u, not %d", p[REPLY_VERSION], PROTO_VERSION);
	if (get32(p + REPLY_SEQUENCE) != sequence)
		return fail(EPROTO, why, size, "a reply to another request "
			    "(sequence %#x, not %#x)", get32(p + REPLY_SEQUENCE), sequence);
	if (get16(p + REPLY_COMMAND) != REQ_TRACKING)
		return fail(EPROTO, why, size, "a reply to command %u, not "
			    "tracking (%d)", get16(p + REPLY_COMMAND), REQ_TRACKING);
	status = get16(p + REPLY_STATUS);
	if (status != STT_SUCCESS)
		return fail(status == STT_UNAUTH ? EACCES : EPROTO, why, size,
			    "chronyd refused the request: %s (status %u)",
			    status_name(status), status);
	if (get16(p + REPLY_CODE) != RPY_TRACKING)
		return fail(EPROTO, why, size, "not a tracking report (reply code "
			    "%u)", get16(p + REPLY_CODE));
	if (len != TRACKING_LENGTH)
		return fail(EPROTO, why, size, "a tracking report of %zu bytes, "
			    "not %d", len, TRACKING_LENGTH);
	return 0;
}

/* RPY_Tracking's Timespec: seconds in two words, then nanoseconds. */
static int ref_time(const unsigned char *p, int64_t *ns, char *why, size_t size)
{
	uint32_t high = get32(p), nsec = get32(p + 8);
	uint64_t sec = (uint64_t)(high == NO_HIGH_SECONDS ? 0 : high) << 32 | get32(p + 4);

	if (nsec >= NSEC_PER_SEC || sec > INT64_MAX / NSEC_PER_SEC - 1)
		return fail(EPROTO, why, size, "a reference time out of range "
			    "(%#x %#x s, %u ns)", high, get32(p + 4), nsec);
	*ns = (int64_t)sec * NSEC_PER_SEC + nsec;
	return 0;
}

int uclock__chrony_parse(const unsigned char *reply, size_t len, uint32_t sequence,
			 struct uclock_chrony_tracking *out, char *why, size_t size)
{
	struct uclock_chrony_tracking t;
	/* The floats in their order on the wire. */
	double *floats[] = {
		&t.current_correction_s, &t.last_offset_s, &t.rms_offset_s,
		&t.freq_ppm, &t.resid_freq_ppm, &t.skew_ppm, &t.root_delay_s,
		&t.root_dispersion_s, &t.last_update_interval_s,
	};

	_Static_assert(TRACKING_FLOATS + 4 * sizeof(floats) / sizeof(floats[0]) ==
		       TRACKING_LENGTH, "the floats end the report");

	if (check_header(reply, len, sequence, why, size) != 0)
		return -1;
	memset(&t, 0, sizeof(t));
	t.ref_id = get32(reply + TRACKING_REF_ID);
	t.stratum = get16(reply + TRACKING_STRATUM);
	t.leap_status = get16(reply + TRACKING_LEAP);
	if (t.stratum > MAX_STRATUM || t.leap_status > 3)
		return fail(EPROTO, why, size, "stratum %d, leap status %d: not "
			    "NTP's", t.stratum, t.leap_status);
	if (ref_time(reply + TRACKING_REF_TIME, &t.ref_time_ns, why, size) != 0)
		return -1;
	for (size_t i = 0; i < sizeof(floats) / sizeof(floats[0]); i++)
		*floats[i] = uclock__chrony_float(get32(reply + TRACKING_FLOATS + 4 * i));
	/* Sizes chronyd never reports below zero: an error bound built on
	 * a negative one would be too narrow. */
	if (t.rms_offset_s < 0 || t.skew_ppm < 0 || t.root_delay_s < 0 ||
	    t.root_dispersion_s < 0 || t.last_update_interval_s < 0)
		return fail(EPROTO, why, size, "a negative size (rms offset %g s, "
			    "skew %g ppm, root delay %g s, root dispersion %g s, "
			    "update interval %g s)", t.rms_offset_s, t.skew_ppm,
			    t.root_delay_s, t.root_dispersion_s, t.last_update_interval_s);
	*out = t;
	return 0;
}

/* Ours: "uclock.PID.N.sock" in the directory of chronyd's socket. */
static int reply_path(const char *server, struct sockaddr_un *sa, char *why, size_t size)
{
	const char *slash = strrchr(server, '/');
	int dir = slash ? (int)(slash - server) + 1 : 0;
	unsigned n = __atomic_fetch_add(&sockets_made, 1, __ATOMIC_RELAXED);
	int len;

	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	len = snprintf(sa->sun_path, sizeof(sa->sun_path), "%.*suclock.%d.%u.sock",
		       dir, server, (int)getpid(), n);
	if (len < 0 || (size_t)len >= sizeof(sa->sun_path))
		return fail(ENAMETOOLONG, why, size, "a reply socket next to %.200s "
			    "would have too long a path", server);
	return 0;
}

static const char *kind(mode_t mode)
{
	return S_ISDIR(mode) ? "a directory" : S_ISREG(mode) ? "a regular file" :
	       S_ISFIFO(mode) ? "a FIFO" : S_ISCHR(mode) || S_ISBLK(mode) ? "a device" :
	       "another kind of file";
}

/* A socket at 'server' (never opened otherwise: a FIFO would block). */
static int server_address(const char *server, struct sockaddr_un *sa, char *why,
			  size_t size)
{
	struct stat st;

	if (strlen(server) >= sizeof(sa->sun_path))
		return fail(ENAMETOOLONG, why, size, "%.200s: too long a path for a "
			    "Unix socket", server);
	if (stat(server, &st) != 0)
		return fail(errno, why, size, "no chronyd command socket at %.200s "
			    "(%s)", server, strerror(errno));
	if (!S_ISSOCK(st.st_mode))
		return fail(ENOTSOCK, why, size, "%.200s is %s, not chronyd's command "
			    "socket", server, kind(st.st_mode));
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	strcpy(sa->sun_path, server);
	return 0;
}

/* Bound to 'ours' (0666), connected to 'server'; -1 after removing it. */
static int open_socket(const struct sockaddr_un *ours, const struct sockaddr_un *server,
		       char *why, size_t size)
{
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0), err;
	unsigned char drop;

	if (fd < 0)
		return fail(errno, why, size, "no socket (%s)", strerror(errno));
	unlink(ours->sun_path);  /* our name: left by a process of our pid */
	if (bind(fd, (const struct sockaddr *)ours, sizeof(*ours)) != 0) {
		err = errno;
		close(fd);
		return fail(err, why, size, "cannot bind a reply socket at %.200s "
			    "(%s)", ours->sun_path, strerror(err));
	}
	if (chmod(ours->sun_path, 0666) != 0 ||
	    connect(fd, (const struct sockaddr *)server, sizeof(*server)) != 0) {
		err = errno;
		close(fd);
		unlink(ours->sun_path);
		return fail(err, why, size, "cannot reach chronyd at %.200s (%s%s)",
			    server->sun_path, strerror(err),
			    err == ECONNREFUSED ? ": nothing receives there" :
			    err == EPROTOTYPE ? ": not a datagram socket" : "");
	}
	/* Whatever came before the socket was connected is not chronyd's. */
	while (recv(fd, &drop, 1, MSG_DONTWAIT) >= 0)
		;
	return fd;
}

static int64_t monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One datagram within timeout_ms; its length (MSG_TRUNC: whole). */
static ssize_t receive(int fd, unsigned char *buf, size_t cap, int timeout_ms,
		       const char *server, char *why, size_t size)
{
	int64_t deadline = monotonic_ms() + timeout_ms;
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	for (;;) {
		int64_t left = deadline - monotonic_ms();
		int r = poll(&pfd, 1, left > 0 ? (int)left : 0);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return fail(errno, why, size, "poll (%s)", strerror(errno));
		if (r == 0)
			return fail(ETIMEDOUT, why, size, "no reply from chronyd at "
				    "%.200s within %d ms", server, timeout_ms);
		ssize_t n = recv(fd, buf, cap, MSG_DONTWAIT | MSG_TRUNC);

		if (n >= 0)
			return n;
		if (errno != EAGAIN && errno != EINTR)
			return fail(errno, why, size, "receiving from chronyd at "
				    "%.200s (%s)", server, strerror(errno));
	}
}

static uint32_t new_sequence(void)
{
	uint32_t s;

	if (getrandom(&s, sizeof(s), GRND_NONBLOCK) == (ssize_t)sizeof(s))
		return s;
	return (uint32_t)monotonic_ms() * 2654435761u ^ (uint32_t)getpid();
}

static int exchange(int fd, const char *server, int timeout_ms,
		    struct uclock_chrony_tracking *out, char *why, size_t size)
{
	unsigned char request[TRACKING_LENGTH] = { PROTO_VERSION, PKT_REQUEST };
	unsigned char reply[512];
	uint32_t sequence = new_sequence();
	ssize_t n;

	request[REQUEST_COMMAND + 1] = REQ_TRACKING;  /* 16 bits, big-endian */
	put32(request + REQUEST_SEQUENCE, sequence);
	/* Never blocks: a chronyd that is stopped and whose queue is full
	 * is an error now, not a hang. */
	n = send(fd, request, sizeof(request), MSG_DONTWAIT | MSG_NOSIGNAL);
	if (n != (ssize_t)sizeof(request))
		return fail(n < 0 ? errno : EIO, why, size, "cannot send to chronyd "
			    "at %.200s (%s)", server, n < 0 ? strerror(errno) : "short");
	n = receive(fd, reply, sizeof(reply), timeout_ms, server, why, size);
	if (n < 0)
		return -1;
	if ((size_t)n > sizeof(reply))
		return fail(EPROTO, why, size, "a reply of %zd bytes, not a tracking "
			    "report", n);
	return uclock__chrony_parse(reply, (size_t)n, sequence, out, why, size);
}

int uclock__chrony_tracking(const char *server_path, int timeout_ms,
			    struct uclock_chrony_tracking *out, char *why, size_t size)
{
	struct sockaddr_un server, ours;
	int fd, r, err;

	if (!server_path)
		server_path = DEFAULT_PATH;
	if (timeout_ms <= 0 || !out)
		return fail(EINVAL, why, size, "a timeout of %d ms, or no report to "
			    "fill", timeout_ms);
	if (server_address(server_path, &server, why, size) != 0 ||
	    reply_path(server_path, &ours, why, size) != 0)
		return -1;
	fd = open_socket(&ours, &server, why, size);
	if (fd < 0)
		return -1;
	r = exchange(fd, server_path, timeout_ms, out, why, size);
	err = errno;
	close(fd);
	unlink(ours.sun_path);
	errno = err;
	return r;
}
