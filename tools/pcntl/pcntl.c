// SPDX-License-Identifier: GPL-2.0
/*
 * pcntl: the pcntl(2) system call from the shell.
 *
 *	pcntl where [PID]	the node PID (default: this shell's parent) runs on
 *	pcntl migrate PID NODE	move process PID to node NODE
 *	pcntl nodes		the nodes that are up, one id per line
 *
 * Exits 0 on success; on failure prints the errno's meaning and exits 1
 * (2 for bad usage). See Documentation/pcntl.rst.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "libpcntl.h"

static int usage(void)
{
	fprintf(stderr,
		"usage: pcntl where [PID]\n       pcntl migrate PID NODE\n       pcntl nodes\n");
	return 2;
}

static int fail(const char *what)
{
	fprintf(stderr, "pcntl %s: %s%s\n", what, strerror(errno),
		errno == ENOSYS ? " (is popcorn.ko loaded?)" : "");
	return 1;
}

static int parse_pid(const char *s, pid_t *pid)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v <= 0 || v > INT_MAX)
		return -1;
	*pid = v;
	return 0;
}

static int cmd_where(int argc, char **argv)
{
	pid_t pid = getppid();
	long node;

	if (argc > 3 || (argc == 3 && parse_pid(argv[2], &pid))) {
		fprintf(stderr, "pcntl where: '%s' is not a pid\n", argv[2]);
		return 2;
	}
	node = pcntl_where(pid);
	if (node < 0)
		return fail("where");
	printf("%ld\n", node);
	return 0;
}

static int cmd_migrate(int argc, char **argv)
{
	unsigned long node;
	char *end;
	pid_t pid;

	if (argc != 4)
		return usage();
	if (parse_pid(argv[2], &pid)) {
		fprintf(stderr, "pcntl migrate: '%s' is not a pid\n", argv[2]);
		return 2;
	}
	errno = 0;
	node = strtoul(argv[3], &end, 10);
	if (errno || end == argv[3] || *end || node >= COHORT_MAX_NODES) {
		fprintf(stderr, "pcntl migrate: '%s' is not a node id\n", argv[3]);
		return 2;
	}
	if (pcntl_migrate(pid, node))
		return fail("migrate");
	return 0;
}

static int cmd_nodes(int argc)
{
	uint64_t online = 0;
	unsigned int node;
	long count;

	if (argc != 2)
		return usage();
	count = pcntl_nodes(&online);
	if (count < 0)
		return fail("nodes");
	for (node = 0; node < COHORT_MAX_NODES; node++)
		if (online & (UINT64_C(1) << node))
			printf("%u\n", node);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return usage();
	if (!strcmp(argv[1], "where"))
		return cmd_where(argc, argv);
	if (!strcmp(argv[1], "migrate"))
		return cmd_migrate(argc, argv);
	if (!strcmp(argv[1], "nodes"))
		return cmd_nodes(argc);
	return usage();
}
