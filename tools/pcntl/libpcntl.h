/* SPDX-License-Identifier: LGPL-2.1 OR MIT */
/*
 * libpcntl: the pcntl(2) system call of Cohort, from C.
 *
 * Link with -lpcntl (libpcntl.a). Each function returns -1 and sets errno
 * on failure, as the system call's errors say (Documentation/pcntl.rst).
 *
 * Every pid argument is 0 (the caller), a pid on the caller's node, or a
 * cluster-wide pid PCNTL_GPID(node, pid) (<linux/cohort.h>): the process
 * whose pid at its origin @node is @pid, wherever it runs now.
 */
#ifndef _LIBPCNTL_H
#define _LIBPCNTL_H

#include <stddef.h>
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
 * Move process @pid (0: the caller) to node @node, with every member of
 * its migration group. For the caller, returns 0 once it runs there; for
 * another process, once that one does. Errors: EACCES (it, or a member
 * of its group, forbids migration, or the node's policy is "opt-in" and
 * it never said PCNTL_ALLOW), ECONNREFUSED (the destination refuses
 * processes), EPERM (init of a pid namespace, a kernel thread, or a
 * process the caller may not signal), EBUSY (traced, in an exec or a core
 * dump, or already migrating), ESRCH, EINVAL, and the others of
 * Documentation/pcntl.rst.
 */
int pcntl_migrate(pid_t pid, unsigned int node);

/*
 * pcntl_migrate() that says which member of @pid's migration group
 * refused: when @refused is not NULL, *@refused is set to 0 first and, on
 * a failure a member caused, to that member's pid (its pid on the
 * caller's node when it runs here, else its cluster-wide pid; test with
 * PCNTL_IS_GPID()). Nothing moved when it fails. Errors: pcntl_migrate()'s.
 */
int pcntl_migrate_group(pid_t pid, unsigned int node, int *refused);

/* The node process @pid (0: the caller) runs on. ESRCH, EINVAL. */
int pcntl_where(pid_t pid);

/*
 * The nodes that are up: bit n of *@online for node n. Returns how many.
 */
int pcntl_nodes(uint64_t *online);

/*
 * Forbid (pcntl_forbid) or allow (pcntl_allow) the migration of process
 * @pid (0: the caller). A forbidden process is never migrated: every
 * request fails with EACCES, its own and root's included. An allowed one
 * may be moved by others on a node whose migration_policy is "opt-in".
 * Inherited across fork, kept across exec; the last call wins. Returns 0.
 * Errors: ESRCH; EPERM (the caller may not signal @pid and lacks
 * CAP_SYS_ADMIN); EINVAL (a malformed pid).
 */
int pcntl_forbid(pid_t pid);
int pcntl_allow(pid_t pid);

/*
 * Forget pcntl_forbid() and pcntl_allow() for process @pid (0: the
 * caller): the policy of the node it runs on decides again. Returns 0.
 * Errors as pcntl_forbid().
 */
int pcntl_default(pid_t pid);

/*
 * Put process @pid (0: the caller) in migration group @group (1 to
 * 2^31 - 1), leaving the group it was in. @flags: 0 or PCNTL_GROUP_FORK
 * (children it forks from now on join the group too). Migrating one
 * member moves them all, or none. Returns 0. Errors: EINVAL (@group out
 * of range, an unknown flag), ESRCH, EPERM (as pcntl_forbid()).
 */
int pcntl_group_join(pid_t pid, unsigned int group, unsigned int flags);

/* Take process @pid out of its group. EINVAL: it is in none; ESRCH, EPERM. */
int pcntl_group_leave(pid_t pid);

/*
 * Statistics of process @pid: fills *@st (zeroed first, so that fields a
 * kernel older than this header does not know read 0) and returns how
 * many bytes the kernel filled (st->size is the kernel's own size).
 * Errors: ESRCH, EINVAL, EFAULT.
 */
int pcntl_stat(pid_t pid, struct pcntl_stat *st);

/*
 * What node @node says about itself (asked over the network, up to 2 s):
 * fills *@info (zeroed first) and returns how many bytes the kernel
 * filled. Errors: EINVAL (no such node), EHOSTDOWN (it is down),
 * EPROTONOSUPPORT (no popcorn.ko there), ETIMEDOUT.
 */
int pcntl_node_info(unsigned int node, struct pcntl_node_info *info);

/*
 * Receiver-initiated migration: move process @pid (usually a cluster-wide
 * pid) to the caller's node, decided by the node it runs on with the
 * rules of pcntl_migrate(). 0 at once for a process already here.
 * Errors: pcntl_migrate()'s.
 */
int pcntl_pull(pid_t pid);

/*
 * pcntl_pull() that says which member of @pid's migration group refused,
 * as pcntl_migrate_group() does: when @refused is not NULL, *@refused is
 * set to 0 first and, on a failure a member caused, to that member's pid
 * (its pid on the caller's node when it runs here, else its cluster-wide
 * pid). Nothing moved when it fails. Errors: pcntl_pull()'s.
 */
int pcntl_pull_group(pid_t pid, int *refused);

/*
 * The user processes running on node @node: *@out gets an array of *@n
 * records, allocated with malloc() (free() it; it is never NULL on
 * success). The count can change between the calls this makes: it asks
 * again with a larger array while the node has more processes than fit.
 * Returns 0; *@n is never more than the records stored. Errors: EINVAL
 * (no such node), EHOSTDOWN, EPROTONOSUPPORT, ETIMEDOUT, ENOMEM; EAGAIN
 * when the count kept growing; E2BIG when the node has more than 16384
 * user processes (what one PCNTL_PS answer carries).
 */
int pcntl_ps(unsigned int node, struct pcntl_proc **out, size_t *n);

#ifdef __cplusplus
}
#endif

#endif /* _LIBPCNTL_H */
