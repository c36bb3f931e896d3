/*
 * hello.c - the smallest useful libuclock program.
 *
 * Reads CLOCK_MONOTONIC through the POSIX-style call and through the inline
 * fast readers, reads CLOCK_REALTIME, and asks the library what it is doing.
 * Prints one line per call and a last line "uclock works" (or "uclock FAILED").
 * Exit status: 0 if every call succeeded, 1 otherwise.
 *
 * Build against an installed library:
 *   cc -std=c11 hello.c $(pkg-config --cflags --libs uclock) -o hello
 * or statically:
 *   cc -std=c11 -static hello.c $(pkg-config --static --cflags --libs uclock)
 */
#define _POSIX_C_SOURCE 200809L /* CLOCK_MONOTONIC, struct timespec */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <uclock.h>

int main(void)
{
	struct timespec ts;
	struct uclock_stat st;
	int64_t mono, real;
	int ok = 1;

	/* Same contract as clock_gettime(): 0, or -1 with errno set. */
	if (uclock_gettime(CLOCK_MONOTONIC, &ts) == 0) {
		printf("uclock_gettime(CLOCK_MONOTONIC): %lld.%09ld s\n",
		       (long long)ts.tv_sec, (long)ts.tv_nsec);
	} else {
		fprintf(stderr, "uclock_gettime(CLOCK_MONOTONIC) failed: %s\n",
			strerror(errno));
		ok = 0;
	}

	/* The inline readers return nanoseconds, INT64_MIN on failure. */
	mono = uclock_mono_ns();
	if (mono != INT64_MIN && mono >= 0) {
		printf("uclock_mono_ns(): %" PRId64 " ns\n", mono);
	} else {
		fprintf(stderr, "uclock_mono_ns() failed: %" PRId64 "\n", mono);
		ok = 0;
	}

	real = uclock_real_ns();
	if (real != INT64_MIN && real > 0) {
		printf("uclock_real_ns(): %" PRId64 " ns since the epoch\n", real);
	} else {
		fprintf(stderr, "uclock_real_ns() failed: %" PRId64 "\n", real);
		ok = 0;
	}

	/* .size tells the library which version of the structure we have.
	 * Right after a process's first reads the mode is usually "warmup"
	 * (the counter's rate is being measured: the kernel answers); a
	 * process reading steadily is on "counter" within milliseconds, or
	 * "shared" from the first read where uclockd runs. */
	memset(&st, 0, sizeof(st));
	st.size = sizeof(st);
	if (uclock_stat(&st) == 0) {
		printf("uclock_stat() after the first reads: mode %s, source %s (%s)\n",
		       st.mode_name ? st.mode_name : "?",
		       st.source_name ? st.source_name : "?",
		       st.reason ? st.reason : "no reason given");
	} else {
		fprintf(stderr, "uclock_stat() failed: %s\n", strerror(errno));
		ok = 0;
	}

	puts(ok ? "uclock works" : "uclock FAILED");
	return ok ? 0 : 1;
}
