/* SPDX-License-Identifier: LGPL-2.1 OR MIT */
/*
 * libpcntl: the pcntl(2) system call of Cohort, from C.
 *
 * Link with -lpcntl (libpcntl.a). Each function returns -1 and sets errno
 * on failure, as the system call's errors say (Documentation/pcntl.rst).
 */
#ifndef _LIBPCNTL_H
#define _LIBPCNTL_H

#include <stdint.h>
#include <sys/types.h>

#include <linux/cohort.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The raw system call: pcntl(cmd, a0, a1, a2). */
long pcntl(unsigned int cmd, unsigned long a0, unsigned long a1,
	   unsigned long a2);

/*
 * Move process @pid (0: the caller) to node @node. For the caller, returns
 * 0 once it runs there; for another process, once that one does.
 */
int pcntl_migrate(pid_t pid, unsigned int node);

/* The node process @pid (0: the caller) runs on. */
int pcntl_where(pid_t pid);

/*
 * The nodes that are up: bit n of *@online for node n. Returns how many.
 */
int pcntl_nodes(uint64_t *online);

#ifdef __cplusplus
}
#endif

#endif /* _LIBPCNTL_H */
