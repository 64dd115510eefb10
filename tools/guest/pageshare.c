// SPDX-License-Identifier: GPL-2.0
/*
 * pageshare: one page read on several nodes, then written on the last,
 * for selftests/cluster/17-containers.sh. The process writes 'A' over a
 * page, moves to each NODE in turn and checks the page there (each node
 * keeps a read copy), says "ready" and waits for SIGUSR1; then it writes
 * 'B' over the page on the last NODE (the other copies are invalidated),
 * says "wrote" and waits for SIGUSR1 again; then it goes back through the
 * NODEs and its own node and checks it reads 'B' everywhere. Every line
 * it prints names the node it runs on; it exits 0 when every check held,
 * 1 (with a FAIL line) otherwise.
 *
 *	pageshare NODE...
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/cohort.h>

#ifndef __NR_pcntl
#define __NR_pcntl 463
#endif

#define PAGE 4096

static long where(void)
{
	return syscall(__NR_pcntl, PCNTL_WHERE, 0, 0, 0);
}

static void move_to(long node)
{
	if (syscall(__NR_pcntl, PCNTL_MIGRATE, 0, node, 0)) {
		printf("FAIL migrating to node %ld: %s\n", node, strerror(errno));
		exit(1);
	}
	if (where() != node) {
		printf("FAIL on node %ld after migrating to node %ld\n", where(), node);
		exit(1);
	}
}

static void expect(const volatile char *page, char c)
{
	int i;

	for (i = 0; i < PAGE; i++) {
		if (page[i] != c) {
			printf("FAIL node %ld: byte %d is %#x, expected '%c'\n", where(), i,
			       page[i] & 0xff, c);
			exit(1);
		}
	}
}

/* Waits for SIGUSR1, blocked meanwhile so that none is missed. */
static void wait_usr1(const sigset_t *set)
{
	int sig;

	if (sigwait(set, &sig)) {
		printf("FAIL sigwait\n");
		exit(1);
	}
}

int main(int argc, char **argv)
{
	long home = where(), nodes[16];
	volatile char *page;
	int i, n = argc - 1;
	sigset_t set;

	if (n < 1 || n > 16) {
		fprintf(stderr, "usage: pageshare NODE... (1 to 16 nodes)\n");
		return 2;
	}
	for (i = 0; i < n; i++)
		nodes[i] = strtol(argv[i + 1], NULL, 10);
	setvbuf(stdout, NULL, _IOLBF, 0);
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigprocmask(SIG_BLOCK, &set, NULL);
	page = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (page == MAP_FAILED) {
		printf("FAIL mmap: %s\n", strerror(errno));
		return 1;
	}
	memset((char *)page, 'A', PAGE);
	for (i = 0; i < n; i++) {
		move_to(nodes[i]);
		expect(page, 'A');
		printf("read A on node %ld\n", nodes[i]);
	}
	printf("ready on node %ld\n", where());
	wait_usr1(&set);
	memset((char *)page, 'B', PAGE);
	printf("wrote B on node %ld\n", where());
	wait_usr1(&set);
	for (i = n - 2; i >= 0; i--) {
		move_to(nodes[i]);
		expect(page, 'B');
		printf("read B on node %ld\n", nodes[i]);
	}
	move_to(home);
	expect(page, 'B');
	printf("read B on node %ld\n", home);
	return 0;
}
