// SPDX-License-Identifier: LGPL-2.1 OR MIT
/*
 * libpcntl: the pcntl(2) system call of Cohort, from C.
 */
#include <sys/syscall.h>
#include <unistd.h>

#include "libpcntl.h"

#ifndef __NR_pcntl
#define __NR_pcntl 463
#endif

long pcntl(unsigned int cmd, unsigned long a0, unsigned long a1,
	   unsigned long a2)
{
	return syscall(__NR_pcntl, cmd, a0, a1, a2);
}

int pcntl_migrate(pid_t pid, unsigned int node)
{
	return pcntl(PCNTL_MIGRATE, pid, node, 0) < 0 ? -1 : 0;
}

int pcntl_where(pid_t pid)
{
	return pcntl(PCNTL_WHERE, pid, 0, 0);
}

int pcntl_nodes(uint64_t *online)
{
	return pcntl(PCNTL_NODES, (unsigned long)online, sizeof(*online), 0);
}
