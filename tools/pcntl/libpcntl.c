// SPDX-License-Identifier: LGPL-2.1 OR MIT
/*
 * libpcntl: the pcntl(2) system call of Cohort, from C.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "libpcntl.h"

#ifndef __NR_pcntl
#define __NR_pcntl 463
#endif

/* pcntl_ps(): asks again at most this many times while the count grows. */
#define PS_TRIES	16

long pcntl(unsigned int cmd, unsigned long a0, unsigned long a1,
	   unsigned long a2)
{
	return syscall(__NR_pcntl, cmd, a0, a1, a2);
}

/* A pid_t as the system call reads it: sign-extended, never truncated. */
static unsigned long pid_arg(pid_t pid)
{
	return (unsigned long)(long)pid;
}

int pcntl_migrate(pid_t pid, unsigned int node)
{
	return pcntl(PCNTL_MIGRATE, pid_arg(pid), node, 0) < 0 ? -1 : 0;
}

int pcntl_migrate_group(pid_t pid, unsigned int node, int *refused)
{
	if (refused)
		*refused = 0;
	return pcntl(PCNTL_MIGRATE, pid_arg(pid), node,
		     (unsigned long)refused) < 0 ? -1 : 0;
}

int pcntl_where(pid_t pid)
{
	return pcntl(PCNTL_WHERE, pid_arg(pid), 0, 0);
}

int pcntl_nodes(uint64_t *online)
{
	return pcntl(PCNTL_NODES, (unsigned long)online, sizeof(*online), 0);
}

int pcntl_forbid(pid_t pid)
{
	return pcntl(PCNTL_FORBID, pid_arg(pid), 0, 0) < 0 ? -1 : 0;
}

int pcntl_allow(pid_t pid)
{
	return pcntl(PCNTL_ALLOW, pid_arg(pid), 0, 0) < 0 ? -1 : 0;
}

int pcntl_default(pid_t pid)
{
	return pcntl(PCNTL_DEFAULT, pid_arg(pid), 0, 0) < 0 ? -1 : 0;
}

int pcntl_group_join(pid_t pid, unsigned int group, unsigned int flags)
{
	return pcntl(PCNTL_GROUP_JOIN, pid_arg(pid), group, flags) < 0 ? -1 : 0;
}

int pcntl_group_leave(pid_t pid)
{
	return pcntl(PCNTL_GROUP_LEAVE, pid_arg(pid), 0, 0) < 0 ? -1 : 0;
}

int pcntl_stat(pid_t pid, struct pcntl_stat *st)
{
	memset(st, 0, sizeof(*st));
	return pcntl(PCNTL_STAT, pid_arg(pid), (unsigned long)st, sizeof(*st));
}

int pcntl_node_info(unsigned int node, struct pcntl_node_info *info)
{
	memset(info, 0, sizeof(*info));
	return pcntl(PCNTL_NODE_INFO, node, (unsigned long)info, sizeof(*info));
}

int pcntl_pull(pid_t pid)
{
	return pcntl(PCNTL_PULL, pid_arg(pid), 0, 0) < 0 ? -1 : 0;
}

int pcntl_pull_group(pid_t pid, int *refused)
{
	if (refused)
		*refused = 0;
	return pcntl(PCNTL_PULL, pid_arg(pid), 0, (unsigned long)refused) < 0 ? -1 : 0;
}

int pcntl_ps(unsigned int node, struct pcntl_proc **out, size_t *n)
{
	struct pcntl_proc *buf = NULL, *bigger;
	size_t cap;
	long count;
	int tries, err;

	/* How many there are now; then ask with room for a few more. */
	count = pcntl(PCNTL_PS, node, 0, 0);
	for (tries = 0; count >= 0 && tries < PS_TRIES; tries++) {
		cap = count + count / 4 + 8;
		bigger = realloc(buf, cap * sizeof(*buf));
		if (!bigger) {
			free(buf);
			errno = ENOMEM;
			return -1;
		}
		buf = bigger;
		count = pcntl(PCNTL_PS, node, (unsigned long)buf,
			      cap * sizeof(*buf));
		if (count >= 0 && (size_t)count <= cap) {
			*out = buf;
			*n = count;
			return 0;
		}
	}
	err = count < 0 ? errno : EAGAIN;
	free(buf);
	errno = err;
	return -1;
}
