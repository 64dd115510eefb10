// SPDX-License-Identifier: GPL-2.0
/*
 * migbench: migration figures, all from one run on the origin node.
 *
 *	migbench NODE [REPS]
 *
 * With kmsg and popcorn loaded on this node and on NODE, measures:
 *  - kmsg's round trip to NODE (debugfs ping), the yardstick;
 *  - for processes with 1 MiB and with 64 MiB resident: the first
 *    migration here -> NODE (a task is created there; median of 5 new
 *    processes), then REPS times here -> NODE (its shadow there is reused)
 *    and NODE -> here (back to the shadow here); each timed on this node's
 *    clock from the pcntl(PCNTL_MIGRATE) call of a controlling process to
 *    its return (medians);
 *  - the remote page fault: a process migrated to NODE touches pages that
 *    are still here, timed on NODE's clock by the process itself.
 * Prints key=value lines, then the ratios to the round trip.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "libpcntl.h"

#define MIB		(1UL << 20)
#define PAGE		4096UL
#define FAULT_PAGES	512
#define FRESH		5
#define PING		"/sys/kernel/debug/kmsg/ping"

static unsigned int here, there;

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static void die(const char *what)
{
	fprintf(stderr, "migbench: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* kmsg's average round trip to @node over @count pings, in ns. */
static double kmsg_rtt(unsigned int node, unsigned int count)
{
	char buf[512], *p;
	int fd;
	ssize_t n;

	fd = open(PING, O_WRONLY);
	if (fd < 0)
		die("open " PING);
	n = snprintf(buf, sizeof(buf), "%u %u\n", node, count);
	if (write(fd, buf, n) != n)
		die("ping");
	close(fd);
	fd = open(PING, O_RDONLY);
	if (fd < 0)
		die("open " PING);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		die("read " PING);
	buf[n] = '\0';
	p = strstr(buf, "avg_ns=");
	if (!p) {
		fprintf(stderr, "migbench: no avg_ns in '%s'\n", buf);
		exit(1);
	}
	return strtod(p + 7, NULL);
}

/* A child holding @mib MiB, touched, sleeping until killed. */
static pid_t holder(unsigned long mib)
{
	pid_t pid = fork();
	unsigned long i;
	char *mem;

	if (pid < 0)
		die("fork");
	if (pid)
		return pid;
	mem = mmap(NULL, mib * MIB, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		_exit(2);
	for (i = 0; i < mib * MIB; i += PAGE)
		mem[i] = (char)i;
	for (;;)
		pause();
}

static double timed_migrate(pid_t pid, unsigned int node)
{
	double t0 = now_ns();

	if (pcntl_migrate(pid, node))
		die("pcntl_migrate");
	return now_ns() - t0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

struct moves {
	double first, out, back;
};

static struct moves measure_moves(unsigned long mib, int reps)
{
	double *out = calloc(reps, sizeof(double));
	double *back = calloc(reps, sizeof(double));
	double first[FRESH];
	struct moves m;
	pid_t pid = 0;
	int i;

	if (!out || !back)
		die("calloc");
	/* A new process each time: the first migration creates its task. */
	for (i = 0; i < FRESH; i++) {
		if (pid) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
		}
		pid = holder(mib);
		usleep(300000 + mib * 20000);	/* let it touch its memory */
		first[i] = timed_migrate(pid, there);
		back[0] = timed_migrate(pid, here);
	}
	/* Then back and forth: the shadows are reused on both sides. */
	for (i = 0; i < reps; i++) {
		out[i] = timed_migrate(pid, there);
		back[i] = timed_migrate(pid, here);
	}
	m.first = median(first, FRESH);
	m.out = median(out, reps);
	m.back = median(back, reps);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	free(out);
	free(back);
	return m;
}

/* Per-page time of remote faults, measured on the other node. */
static double fault_ns(void)
{
	int fds[2];
	double ns = -1;
	pid_t pid;

	if (pipe(fds))
		die("pipe");
	pid = fork();
	if (pid < 0)
		die("fork");
	if (!pid) {
		char *mem = mmap(NULL, FAULT_PAGES * PAGE,
				 PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		double t0, t;
		int i;

		if (mem == MAP_FAILED)
			_exit(2);
		for (i = 0; i < FAULT_PAGES; i++)
			mem[i * PAGE] = (char)i;
		if (pcntl_migrate(0, there))
			_exit(3);
		t0 = now_ns();
		for (i = 0; i < FAULT_PAGES; i++)
			mem[i * PAGE] += 1;
		t = (now_ns() - t0) / FAULT_PAGES;
		if (write(fds[1], &t, sizeof(t)) != sizeof(t))
			_exit(4);
		for (i = 0; i < FAULT_PAGES; i++)
			if (mem[i * PAGE] != (char)(i + 1))
				_exit(5);
		_exit(0);
	}
	close(fds[1]);
	if (read(fds[0], &ns, sizeof(ns)) != sizeof(ns))
		ns = -1;
	close(fds[0]);
	waitpid(pid, NULL, 0);
	return ns;
}

int main(int argc, char **argv)
{
	int reps = argc > 2 ? atoi(argv[2]) : 10;
	struct moves small, big;
	double rtt, fault;

	if (argc < 2 || reps < 1) {
		fprintf(stderr, "usage: migbench NODE [REPS]\n");
		return 2;
	}
	there = atoi(argv[1]);
	here = pcntl_where(0);
	setvbuf(stdout, NULL, _IOLBF, 0);

	rtt = kmsg_rtt(there, 1000);
	small = measure_moves(1, reps);
	big = measure_moves(64, reps);
	fault = fault_ns();
	rtt = (rtt + kmsg_rtt(there, 1000)) / 2;

	printf("kmsg_rtt_ns=%.0f\n", rtt);
	printf("first_1mib_ns=%.0f\nout_1mib_ns=%.0f\nback_1mib_ns=%.0f\n",
	       small.first, small.out, small.back);
	printf("first_64mib_ns=%.0f\nout_64mib_ns=%.0f\nback_64mib_ns=%.0f\n",
	       big.first, big.out, big.back);
	printf("fault_ns=%.0f\n", fault);
	printf("\n%-40s %12s %10s\n", "", "ms", "x kmsg RTT");
	printf("%-40s %12.3f %10.1f\n", "kmsg round trip", rtt / 1e6, 1.0);
	printf("%-40s %12.3f %10.1f\n", "migrate, new task (1 MiB)",
	       small.first / 1e6, small.first / rtt);
	printf("%-40s %12.3f %10.1f\n", "migrate, new task (64 MiB)",
	       big.first / 1e6, big.first / rtt);
	printf("%-40s %12.3f %10.1f\n", "migrate to its shadow there (1 MiB)",
	       small.out / 1e6, small.out / rtt);
	printf("%-40s %12.3f %10.1f\n", "migrate to its shadow there (64 MiB)",
	       big.out / 1e6, big.out / rtt);
	printf("%-40s %12.3f %10.1f\n", "back to the shadow here (1 MiB)",
	       small.back / 1e6, small.back / rtt);
	printf("%-40s %12.3f %10.1f\n", "back to the shadow here (64 MiB)",
	       big.back / 1e6, big.back / rtt);
	printf("%-40s %12.3f %10.1f\n", "remote page fault", fault / 1e6,
	       fault / rtt);
	printf("64 MiB / 1 MiB: new task %.2f, to shadow %.2f, back %.2f\n",
	       big.first / small.first, big.out / small.out,
	       big.back / small.back);
	return fault < 0;
}
