/* uclock: how this machine's clock calls run, and uclock against the kernel. */
#include <stdio.h>
#include <time.h>

#include "uclock.h"

int main(void)
{
	struct uclock_stat st = {.size = sizeof(st)};
	struct timespec ts;

	uclock_gettime(CLOCK_MONOTONIC, &ts);
	uclock_stat(&st);
	printf("source %s (%s), mode %s\n", st.source_name, st.reason, st.mode_name);
	return 0;
}
