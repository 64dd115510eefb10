/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * Cohort: several kernel instances acting as one machine.
 *
 * User-space ABI of the pcntl(2) system call:
 *
 *	long pcntl(unsigned int cmd, unsigned long a0, unsigned long a1,
 *		   unsigned long a2);
 *
 * Every command fails with ENOSYS until the process layer (popcorn.ko) is
 * loaded; an unknown command then fails with EINVAL.
 */
#ifndef _UAPI_LINUX_COHORT_H
#define _UAPI_LINUX_COHORT_H

/* Most nodes a cluster can have; node ids run from 0 to COHORT_MAX_NODES-1. */
#define COHORT_MAX_NODES	64

/*
 * PCNTL_WHERE: a0 = pid (0 for the caller). Returns the id of the node the
 * process runs on. ESRCH: no such process.
 */
#define PCNTL_WHERE		1

/*
 * PCNTL_MIGRATE: a0 = pid (0 for the caller), a1 = destination node, a2 = 0.
 * Moves a single-threaded process to node a1; it goes at its next return
 * to user space (a sleep it is in is interrupted and restarted there).
 * For the caller, returns 0 on the destination; for another process,
 * once it runs there. ESRCH: no such process. EINVAL: bad node or node
 * down. EPERM: may not signal the process and no CAP_SYS_ADMIN. EBUSY: a
 * migration of it is under way. EAGAIN: it did not reach a safe point in
 * time, or the destination could not take it. EOPNOTSUPP: a process of a
 * kind migration does not handle (threads, shared writable mappings, ...).
 * EHOSTDOWN, ETIMEDOUT: the destination went away; the process stays.
 */
#define PCNTL_MIGRATE		2

/*
 * PCNTL_NODES: a0 = pointer to a __u64 bitmap, a1 = its size in bytes (at
 * least 8). Stores the nodes that are up (bit n for node n, this node
 * included) and returns how many there are. EINVAL: size below 8.
 * EFAULT: the bitmap cannot be written.
 */
#define PCNTL_NODES		3

#endif /* _UAPI_LINUX_COHORT_H */
