// SPDX-License-Identifier: GPL-2.0
/*
 * count: print 1, 2, 3, ... one line every INTERVAL_MS milliseconds, each
 * with the node it was printed on, up to LIMIT (default: forever). The
 * demo migrates it while it runs: the numbers must carry on without a gap.
 *
 *	count [LIMIT [INTERVAL_MS]]
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <linux/cohort.h>

#ifndef __NR_pcntl
#define __NR_pcntl 463
#endif

int main(int argc, char **argv)
{
	unsigned long limit = argc > 1 ? strtoul(argv[1], NULL, 10) : 0;
	long interval = argc > 2 ? strtol(argv[2], NULL, 10) : 200;
	struct timespec ts = { interval / 1000, (interval % 1000) * 1000000 };
	unsigned long i;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (i = 1; !limit || i <= limit; i++) {
		long node = syscall(__NR_pcntl, PCNTL_WHERE, 0, 0, 0);

		printf("%lu node %ld\n", i, node);
		nanosleep(&ts, NULL);
	}
	return 0;
}
