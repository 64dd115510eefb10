// SPDX-License-Identifier: GPL-2.0
/*
 * memfill: fill a node past its memory with a migrated process's pages,
 * for selftests/cluster/23-memory-pressure.sh.
 *
 *	memfill hog KIB_LEFT
 *		Locks anonymous memory until the node has about KIB_LEFT KiB
 *		available (MemAvailable), says "hog MIB MiB, KIB KiB left" and
 *		waits to be killed. It asks the OOM killer to spare it, so that
 *		a node that runs out kills the filler instead.
 *
 *	memfill fill NODE MIB [EVERY]
 *		Maps MIB MiB of private anonymous memory, moves to NODE, maps
 *		MIB / 4 MiB more there (a mapping its shadow does not have),
 *		writes a pattern that names every 8-byte word of every page of
 *		both, checks every EVERY-th page (default 1: all) on NODE, moves
 *		back and checks every page. Prints its progress, then "ok PAGES
 *		pages checked on node HOME" (and how many on NODE); exits 1 with
 *		a FAIL line naming the first wrong word otherwise.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "libpcntl.h"

#define PAGE 4096
#define WORDS (PAGE / sizeof(uint64_t))

static long where(void)
{
	return pcntl_where(0);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void move_to(long node)
{
	if (pcntl_migrate(0, node) || where() != node) {
		printf("FAIL migrating to node %ld: %s (on node %ld)\n", node, strerror(errno),
		       where());
		exit(1);
	}
}

/* MemAvailable in KiB, or -1. */
static long available_kb(void)
{
	char line[128];
	long kb = -1;
	FILE *f = fopen("/proc/meminfo", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "MemAvailable: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

static int hog(long left_kb)
{
	long have = available_kb(), total = 0;
	const long chunk = 4 << 20;
	FILE *f;

	if (have < 0) {
		printf("FAIL cannot read MemAvailable\n");
		return 1;
	}
	f = fopen("/proc/self/oom_score_adj", "w");
	if (!f || fprintf(f, "-1000\n") < 0 || fclose(f)) {
		printf("FAIL cannot set oom_score_adj: %s\n", strerror(errno));
		return 1;
	}
	while ((have = available_kb()) > left_kb + chunk / 1024) {
		void *p = mmap(NULL, chunk, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE | MAP_LOCKED, -1, 0);

		if (p == MAP_FAILED) {
			printf("FAIL mmap after %ld MiB: %s\n", total >> 20, strerror(errno));
			return 1;
		}
		total += chunk;
	}
	printf("hog %ld MiB, %ld KiB left\n", total >> 20, available_kb());
	fflush(stdout);
	for (;;)
		pause();
}

static uint64_t word(uint64_t page, uint64_t i)
{
	return (page << 20 | i) ^ 0x5a17c0de00000000ull;
}

static void fill(uint64_t *p, uint64_t first, uint64_t pages)
{
	uint64_t n, i;

	for (n = 0; n < pages; n++)
		for (i = 0; i < WORDS; i++)
			p[n * WORDS + i] = word(first + n, i);
}

static void check(const uint64_t *p, uint64_t first, uint64_t pages, uint64_t every,
		  const char *when)
{
	uint64_t n, i;

	for (n = 0; n < pages; n += every)
		for (i = 0; i < WORDS; i++)
			if (p[n * WORDS + i] != word(first + n, i)) {
				printf("FAIL %s, on node %ld: page %llu word %llu is %#llx, expected %#llx\n",
				       when, where(), (unsigned long long)(first + n),
				       (unsigned long long)i,
				       (unsigned long long)p[n * WORDS + i],
				       (unsigned long long)word(first + n, i));
				exit(1);
			}
}

static int fill_on(long node, long mib, long every)
{
	uint64_t pages = (uint64_t)mib << 20 >> 12, more = pages / 4;
	long home = where();
	uint64_t *a, *b;
	double t;

	if (home < 0 || mib < 1 || every < 1) {
		printf("FAIL PCNTL_WHERE (%s), or MIB or EVERY below 1\n", strerror(errno));
		return 1;
	}
	a = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		 -1, 0);
	if (a == MAP_FAILED) {
		printf("FAIL mmap: %s\n", strerror(errno));
		return 1;
	}
	move_to(node);
	b = mmap(NULL, more * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		 -1, 0);
	if (b == MAP_FAILED) {
		printf("FAIL mmap on node %ld: %s\n", node, strerror(errno));
		return 1;
	}
	/* No MemAvailable here: /proc resolves at the origin once moved. */
	printf("on node %ld: writing %llu pages\n", node, (unsigned long long)(pages + more));
	fflush(stdout);
	t = now_s();
	fill(a, 0, pages);
	fill(b, pages, more);
	printf("wrote in %.1f s\n", now_s() - t);
	fflush(stdout);
	t = now_s();
	check(a, 0, pages, every, "after writing");
	check(b, pages, more, every, "after writing");
	printf("checked every %ld%s page on node %ld in %.1f s\n", every,
	       every == 1 ? "st" : "th", node, now_s() - t);
	fflush(stdout);
	move_to(home);
	t = now_s();
	check(a, 0, pages, 1, "back home");
	check(b, pages, more, 1, "back home");
	printf("checked on node %ld in %.1f s\n", home, now_s() - t);
	printf("ok %llu pages checked on node %ld (every %ld%s on node %ld)\n",
	       (unsigned long long)(pages + more), home, every, every == 1 ? "st" : "th",
	       node);
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 3 && !strcmp(argv[1], "hog"))
		return hog(atol(argv[2]));
	if ((argc == 4 || argc == 5) && !strcmp(argv[1], "fill"))
		return fill_on(atol(argv[2]), atol(argv[3]), argc == 5 ? atol(argv[4]) : 1);
	fprintf(stderr, "usage: memfill hog KIB_LEFT | memfill fill NODE MIB [EVERY]\n");
	return 2;
}
