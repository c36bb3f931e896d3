/*
 * A reference clock for chronyd, for tests/chrony.sh: samples on the
 * socket of a `refclock SOCK PATH` source.
 *   chrony_refclock PATH OFFSET_S DRIFT_PPM RATE_HZ SECONDS
 * sends RATE_HZ samples a second for SECONDS (then exits, so that nothing
 * outlives a test that failed to stop it): the system time now and the
 * reference's time minus the system's, OFFSET_S at the start and moving
 * by DRIFT_PPM (a reference that runs that much faster than the system's
 * clock).  Samples sent while chronyd is not there yet are lost, as they
 * would be from a real clock.
 *
 * The sample is chrony's (refclock_sock.c): a struct timeval, the offset
 * as a double, pulse, leap, padding and the magic "SOCK", in the host's
 * byte order and layout.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define SOCK_MAGIC 0x534f434b

struct sock_sample {
	struct timeval tv;
	double offset;
	int pulse;
	int leap;   /* 0: none */
	int pad;
	int magic;
};

int main(int argc, char **argv)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct sock_sample s = { .magic = SOCK_MAGIC };
	struct timeval start = { 0, 0 };
	double offset, drift;
	int fd, rate, n;

	if (argc != 6 || strlen(argv[1]) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "usage: chrony_refclock PATH OFFSET_S DRIFT_PPM RATE_HZ SECONDS\n");
		return 2;
	}
	strcpy(sa.sun_path, argv[1]);
	offset = atof(argv[2]);
	drift = atof(argv[3]) * 1e-6;
	rate = atoi(argv[4]);
	n = rate * atoi(argv[5]);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || rate <= 0) {
		perror("chrony_refclock");
		return 1;
	}
	for (int i = 0; i < n; i++) {
		struct timespec pause = { 0, 1000000000L / rate };

		gettimeofday(&s.tv, NULL);
		if (i == 0)
			start = s.tv;
		s.offset = offset + drift * ((double)(s.tv.tv_sec - start.tv_sec) +
					     (s.tv.tv_usec - start.tv_usec) * 1e-6);
		sendto(fd, &s, sizeof(s), MSG_DONTWAIT | MSG_NOSIGNAL,
		       (struct sockaddr *)&sa, sizeof(sa));
		nanosleep(&pause, NULL);
	}
	close(fd);
	return 0;
}
