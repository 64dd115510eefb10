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

#include <linux/types.h>

/* Most nodes a cluster can have; node ids run from 0 to COHORT_MAX_NODES-1. */
#define COHORT_MAX_NODES	64

/*
 * Naming a process. Every pid argument below is one of:
 *  - 0: the caller;
 *  - 1 to PCNTL_PID_MAX - 1: a pid in the caller's pid namespace on the
 *    caller's node (for a process that came here from another node, the
 *    pid it has at its origin, which is the one its programs see);
 *  - a cluster-wide pid, PCNTL_GPID(node, pid): the process whose pid at
 *    its origin node @node is @pid, wherever it runs now. The request goes
 *    to that node, which decides by the same rules with the caller's
 *    credentials (uids are taken to mean the same users on every node).
 */
#define PCNTL_PID_MAX		(1 << 22)	/* PID_MAX_LIMIT on 64-bit */
#define PCNTL_GPID(node, pid)	((int)((((node) + 1) << 22) | (pid)))
#define PCNTL_GPID_NODE(gpid)	((unsigned int)((gpid) >> 22) - 1)
#define PCNTL_GPID_PID(gpid)	((int)((gpid) & (PCNTL_PID_MAX - 1)))
#define PCNTL_IS_GPID(gpid)	((gpid) >= PCNTL_PID_MAX)

/*
 * PCNTL_WHERE: a0 = pid. Returns the id of the node the process runs on.
 * ESRCH: no such process.
 */
#define PCNTL_WHERE		1

/*
 * PCNTL_MIGRATE: a0 = pid, a1 = destination node, a2 = 0 or a pointer to
 * an int that receives, when a member of the process's migration group
 * refuses, that member's pid (its local pid when it runs on the caller's
 * node, else its cluster-wide pid; 0 when no member was at fault).
 * Moves a single-threaded process, and every member of its migration
 * group, to node a1; it goes at its next return to user space (a sleep it
 * is in is interrupted and restarted there). For the caller, returns 0 on
 * the destination; for another process, once it runs there. Errors:
 * Documentation/pcntl.rst (EACCES: the process forbids migration;
 * ECONNREFUSED: the destination refuses processes; EPERM: init of a pid
 * namespace, a kernel thread, or the caller may not signal it; EBUSY:
 * migrating, traced, in an exec or a core dump; ...).
 */
#define PCNTL_MIGRATE		2

/*
 * PCNTL_NODES: a0 = pointer to a __u64 bitmap, a1 = its size in bytes (at
 * least 8). Stores the nodes that are up (bit n for node n, this node
 * included) and returns how many there are. EINVAL: size below 8.
 * EFAULT: the bitmap cannot be written.
 */
#define PCNTL_NODES		3

/*
 * PCNTL_FORBID, PCNTL_ALLOW: a0 = pid. The process may never be migrated
 * (EACCES for every request, its own included), or may be migrated by
 * others under the "opt-in" policy (/sys/kernel/cohort/migration_policy).
 * Inherited across fork, kept across exec; the last call wins.
 * PCNTL_FORBID takes a1 = 0 or PCNTL_FORBID_SELF: this process only, its
 * children start in the default state (a node's agent pins itself so).
 */
#define PCNTL_FORBID		4
#define PCNTL_ALLOW		5
#define PCNTL_FORBID_SELF	0x1

/*
 * PCNTL_DEFAULT: a0 = pid. Forgets PCNTL_FORBID and PCNTL_ALLOW: the node's
 * migration_policy decides again (for the children of a forbidden agent).
 */
#define PCNTL_DEFAULT		12

/*
 * PCNTL_GROUP_JOIN: a0 = pid, a1 = group (1 to 2^31 - 1), a2 = flags
 * (PCNTL_GROUP_FORK: children forked from now on join the group too).
 * Migrating one member moves every member. A process is in one group at
 * most: joining another leaves the first.
 * PCNTL_GROUP_LEAVE: a0 = pid. EINVAL when it is in no group.
 */
#define PCNTL_GROUP_JOIN	6
#define PCNTL_GROUP_LEAVE	7
#define PCNTL_GROUP_FORK	0x1

/*
 * PCNTL_STAT: a0 = pid, a1 = pointer to a struct pcntl_stat, a2 = its size
 * (at least PCNTL_STAT_SIZE_VER0). Fills min(a2, the kernel's size) bytes
 * and returns how many. Later kernels add fields at the end only.
 */
#define PCNTL_STAT		8

/* struct pcntl_stat.flags and struct pcntl_proc.flags */
#define PCNTL_F_FORBIDDEN	0x1	/* PCNTL_FORBID said last */
#define PCNTL_F_ALLOWED		0x2	/* PCNTL_ALLOW said last */
#define PCNTL_F_GROUP_FORK	0x4	/* children join its group */
#define PCNTL_F_AWAY		0x8	/* runs away from its origin */
#define PCNTL_F_MIGRATED	0x10	/* migrated at least once */
#define PCNTL_F_SELF_ONLY	0x20	/* forbidden with PCNTL_FORBID_SELF */

struct pcntl_stat {
	__u32 size;		/* the kernel's sizeof(struct pcntl_stat) */
	__u32 flags;		/* PCNTL_F_* */
	__s32 gpid;		/* cluster-wide pid */
	__u32 group;		/* migration group, 0 for none */
	__u32 origin;		/* node it was created on */
	__u32 node;		/* node it runs on */
	__u64 age_ns;		/* time since it was created */
	__u64 resident_ns;	/* time since it arrived where it runs */
	__u64 migrations;	/* times it moved */
	__u64 visited;		/* nodes it ran on, bit n for node n */
	__u64 pages_fetched;	/* pages brought to it from other nodes */
	__u64 pages_served;	/* pages its nodes sent to other nodes */
	__u64 calls_forwarded;	/* system calls run for it at its origin */
	__u64 bytes_moved;	/* migration messages, pages and calls, in bytes */
};
#define PCNTL_STAT_SIZE_VER0	88	/* the first version's size */

/*
 * PCNTL_NODE_INFO: a0 = node, a1 = pointer to a struct pcntl_node_info,
 * a2 = its size (at least PCNTL_NODE_INFO_SIZE_VER0). Asks the node (up to
 * 2 s); fills min(a2, the kernel's size) bytes and returns how many.
 * EINVAL: no such node; EHOSTDOWN: down; EPROTONOSUPPORT: no popcorn there.
 */
#define PCNTL_NODE_INFO		9

/* struct pcntl_node_info.flags */
#define PCNTL_NODE_ACCEPTS	0x1	/* takes incoming processes now */
#define PCNTL_NODE_REFUSE_ADMIN	0x2	/* /sys/kernel/cohort/accept is 0 */
#define PCNTL_NODE_REFUSE_LOAD	0x4	/* nr_running above max_load */
#define PCNTL_NODE_REFUSE_MEM	0x8	/* free memory below min_free_kb */
#define PCNTL_NODE_OPT_IN	0x10	/* migration_policy is "opt-in" */
#define PCNTL_NODE_UID_LIST	0x20	/* accept_uids restricts who comes */

struct pcntl_node_info {
	__u32 size;		/* the kernel's sizeof(struct pcntl_node_info) */
	__u32 flags;		/* PCNTL_NODE_* */
	__u32 node;
	__u32 nr_cpus;		/* online CPUs */
	__u32 nr_running;	/* runnable tasks now */
	__u32 max_load;		/* refuses above this nr_running; 0: no limit */
	__u32 nr_procs;		/* user processes running there */
	__u32 nr_distributed;	/* of those, the ones that migrated */
	__u64 load1_milli;	/* 1-minute load average, x1000 */
	__u64 free_kb;		/* free memory */
	__u64 total_kb;		/* total memory */
	__u64 min_free_kb;	/* refuses below this; 0: no limit */
};
#define PCNTL_NODE_INFO_SIZE_VER0	64

/*
 * PCNTL_PULL: a0 = pid (usually cluster-wide). Receiver-initiated
 * migration: moves the process to the caller's node, as PCNTL_MIGRATE to
 * it would, decided by the node the process runs on (OSF/1 AD).
 */
#define PCNTL_PULL		10

/*
 * PCNTL_PS: a0 = node, a1 = pointer to an array of struct pcntl_proc, a2 =
 * its size in bytes. Lists the user processes running on that node (the
 * node is asked, up to 2 s); stores as many records as fit and returns how
 * many there are, so a caller whose array was too small can retry.
 */
#define PCNTL_PS		11

struct pcntl_proc {
	__s32 gpid;		/* cluster-wide pid */
	__s32 pid;		/* pid on the node it runs on */
	__u32 origin;		/* node it was created on */
	__u32 node;		/* node it runs on */
	__u32 uid;		/* real uid */
	__u32 group;		/* migration group, 0 for none */
	__u32 flags;		/* PCNTL_F_* */
	__u32 threads;		/* its threads on that node */
	__u64 migrations;	/* times it moved */
	__u64 cpu_ns;		/* user + system time on that node */
	__u64 resident_ns;	/* time since it arrived there (or was made) */
	char comm[16];		/* command name, NUL-padded */
};

#endif /* _UAPI_LINUX_COHORT_H */
