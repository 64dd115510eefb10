// SPDX-License-Identifier: GPL-2.0
/*
 * shmkey: a SysV segment used by key from several nodes, for
 * selftests/cluster/22-shared-node-dies.sh. Run natively on a node (with
 * `cohort exec`), each command finds the cluster's segment by key:
 *
 *	shmkey make KEY PAGES	make it (IPC_CREAT | IPC_EXCL), write 'a' over
 *				every page, print "made", stay attached until
 *				killed
 *	shmkey write KEY FIRST END
 *				find it (shmget(KEY, 0, 0)), write 'b' over
 *				pages FIRST..END-1, print "wrote", stay
 *				attached until killed
 *	shmkey check KEY SPEC	find it and read each page: SPEC has one
 *				letter per page, the byte every byte of the page
 *				must be ('a', 'b'), or 'x' for a page lost with
 *				a node, which must raise SIGBUS; prints one
 *				line, "ok ..." or "FAIL ...", exits 0 or 1
 *	shmkey rm KEY		IPC_RMID
 *	shmkey manager KEY NODES
 *				print the node that manages KEY when nodes
 *				0..NODES-1 are live (proto::container_share::
 *				key_manager, the same hash)
 *
 * Every line it prints ends with the node it runs on.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/cohort.h>

#ifndef __NR_pcntl
#define __NR_pcntl 463
#endif

#define PAGE 4096

static sigjmp_buf on_bus;

static long node(void)
{
	return syscall(__NR_pcntl, PCNTL_WHERE, 0, 0, 0);
}

static void die(const char *what)
{
	printf("FAIL %s: %s on node %ld\n", what, strerror(errno), node());
	exit(1);
}

static void bus(int sig)
{
	(void)sig;
	siglongjmp(on_bus, 1);
}

static char *attach(key_t key, size_t *size)
{
	struct shmid_ds ds;
	char *p;
	int id;

	id = shmget(key, 0, 0600);
	if (id < 0)
		die("shmget");
	if (shmctl(id, IPC_STAT, &ds))
		die("IPC_STAT");
	p = shmat(id, NULL, 0);
	if (p == (void *)-1)
		die("shmat");
	*size = ds.shm_segsz;
	return p;
}

static void __attribute__((noreturn)) stay(const char *what)
{
	printf("%s on node %ld\n", what, node());
	fflush(stdout);
	for (;;)
		pause();
}

/* Reads page @i; 1 when it raised SIGBUS. */
static int lost(volatile char *page, char *first)
{
	if (sigsetjmp(on_bus, 1))
		return 1;
	*first = page[0];
	return 0;
}

static int check(key_t key, const char *spec)
{
	size_t size, pages = strlen(spec), i, j, nlost = 0, nread = 0;
	char *p = attach(key, &size), c;

	if (pages * PAGE > size) {
		printf("FAIL %zu pages checked, the segment has %zu bytes on node %ld\n",
		       pages, size, node());
		return 1;
	}
	signal(SIGBUS, bus);
	for (i = 0; i < pages; i++) {
		if (lost(p + i * PAGE, &c)) {
			if (spec[i] != 'x') {
				printf("FAIL page %zu raised SIGBUS, expected '%c' on node %ld\n",
				       i, spec[i], node());
				return 1;
			}
			nlost++;
			continue;
		}
		if (spec[i] == 'x') {
			printf("FAIL page %zu reads '%c', expected SIGBUS on node %ld\n",
			       i, c, node());
			return 1;
		}
		for (j = 0; j < PAGE; j++)
			if (p[i * PAGE + j] != spec[i]) {
				printf("FAIL page %zu byte %zu is %#x, expected '%c' on node %ld\n",
				       i, j, p[i * PAGE + j] & 0xff, spec[i], node());
				return 1;
			}
		nread++;
	}
	printf("ok %zu pages read, %zu lost on node %ld\n", nread, nlost, node());
	return 0;
}

/* proto::container_share::key_manager() over nodes 0..@nodes-1. */
static unsigned int key_manager(key_t key, unsigned int nodes)
{
	uint64_t best = 0, x;
	unsigned int n, manager = 0;

	for (n = 0; n < nodes; n++) {
		x = ((uint64_t)(uint32_t)key << 8 | n) + 0x9e3779b97f4a7c15ULL;
		x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
		x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
		x ^= x >> 31;
		/* The highest score, the highest node on a tie. */
		if (!n || x >= best) {
			best = x;
			manager = n;
		}
	}
	return manager;
}

int main(int argc, char **argv)
{
	key_t key;
	size_t size;
	char *p;
	int id;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 3)
		goto usage;
	key = (key_t)strtol(argv[2], NULL, 0);
	if (!strcmp(argv[1], "make") && argc == 4) {
		size = strtoul(argv[3], NULL, 0) * PAGE;
		id = shmget(key, size, IPC_CREAT | IPC_EXCL | 0600);
		if (id < 0)
			die("shmget");
		p = shmat(id, NULL, 0);
		if (p == (void *)-1)
			die("shmat");
		memset(p, 'a', size);
		stay("made");
	}
	if (!strcmp(argv[1], "write") && argc == 5) {
		size_t first = strtoul(argv[3], NULL, 0), end = strtoul(argv[4], NULL, 0);

		p = attach(key, &size);
		if (end * PAGE > size || first > end) {
			printf("FAIL pages %zu..%zu of %zu bytes\n", first, end, size);
			return 1;
		}
		memset(p + first * PAGE, 'b', (end - first) * PAGE);
		stay("wrote");
	}
	if (!strcmp(argv[1], "check") && argc == 4)
		return check(key, argv[3]);
	if (!strcmp(argv[1], "manager") && argc == 4) {
		printf("%u\n", key_manager(key, strtoul(argv[3], NULL, 0)));
		return 0;
	}
	if (!strcmp(argv[1], "rm") && argc == 3) {
		id = shmget(key, 0, 0600);
		if (id < 0 || shmctl(id, IPC_RMID, NULL))
			die("IPC_RMID");
		printf("removed on node %ld\n", node());
		return 0;
	}
usage:
	fprintf(stderr, "usage: shmkey make KEY PAGES | write KEY FIRST END | check KEY SPEC | rm KEY | manager KEY NODES\n");
	return 2;
}
