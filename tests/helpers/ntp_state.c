/*
 * The kernel's NTP state, for the tests that set it (root):
 *   ntp_state get                       prints "STATUS MAXERROR ESTERROR"
 *   ntp_state set STATUS MAXERROR ESTERROR
 * STATUS in hex or decimal, the errors in microseconds.  ADJ_STATUS,
 * ADJ_MAXERROR and ADJ_ESTERROR change no clock.  Exit 0, 1 failed, 2 bad
 * usage.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timex.h>

int main(int argc, char **argv)
{
	struct timex tx;

	memset(&tx, 0, sizeof(tx));
	if (argc == 2 && !strcmp(argv[1], "get")) {
		if (adjtimex(&tx) < 0) {
			fprintf(stderr, "ntp_state: adjtimex: %s\n", strerror(errno));
			return 1;
		}
		printf("%#x %ld %ld\n", (unsigned)tx.status, tx.maxerror, tx.esterror);
		return 0;
	}
	if (argc != 5 || strcmp(argv[1], "set")) {
		fprintf(stderr, "usage: ntp_state get | set STATUS MAXERROR ESTERROR\n");
		return 2;
	}
	tx.modes = ADJ_STATUS | ADJ_MAXERROR | ADJ_ESTERROR;
	tx.status = (int)strtol(argv[2], NULL, 0);
	tx.maxerror = strtol(argv[3], NULL, 0);
	tx.esterror = strtol(argv[4], NULL, 0);
	if (adjtimex(&tx) < 0) {
		fprintf(stderr, "ntp_state: adjtimex: %s\n", strerror(errno));
		return 1;
	}
	return 0;
}
