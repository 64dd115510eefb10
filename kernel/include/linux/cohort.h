/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Cohort hub: the hook points through which Cohort's modules make several
 * kernel instances act as one machine.
 *
 * Modules register one ops table per slot. A hook site whose slot has no
 * table costs one static-key branch and the kernel behaves as stock Linux.
 * Calls into a table run inside an SRCU read section, so they may sleep, and
 * cohort_unregister() returns only once no call is in flight: a module must
 * wake anything it has blocked in its ops before unregistering.
 *
 * See Documentation/hub.rst in the Cohort tree for the design.
 */
#ifndef _LINUX_COHORT_H
#define _LINUX_COHORT_H

#include <linux/jump_label.h>
#include <linux/mm_types.h>
#include <linux/types.h>
#include <linux/wait.h>
#include <uapi/linux/cohort.h>

struct file;
struct module;
struct notifier_block;
struct pollfd;
struct pt_regs;
struct restart_block;
struct task_struct;
struct timespec64;

/**
 * struct cohort_ip - a node's address on the transport's network
 * @family: AF_INET or AF_INET6; every node of a cluster has the same
 * @addr: the address, network byte order: the first 4 bytes for AF_INET,
 *	all 16 for AF_INET6
 */
struct cohort_ip {
	u16 family;
	u8 addr[16];
};

/**
 * enum cohort_slot - the kinds of ops table a module can register
 * @COHORT_SLOT_TASK: task life cycle (&struct cohort_task_ops)
 * @COHORT_SLOT_LAYOUT: address-space layout changes (&struct cohort_layout_ops)
 * @COHORT_SLOT_FAULT: page faults (&struct cohort_fault_ops)
 * @COHORT_SLOT_PCNTL: the pcntl(2) system call (&struct cohort_pcntl_ops)
 * @COHORT_SLOT_MSG: the message transport (&struct cohort_msg_ops)
 * @COHORT_SLOT_MIGRATION: tasks away from their origin
 *	(&struct cohort_migration_ops)
 * @COHORT_SLOT_FILES: proxy files and their watches (&struct cohort_file_ops)
 * @COHORT_NR_SLOTS: number of slots
 */
enum cohort_slot {
	COHORT_SLOT_TASK,
	COHORT_SLOT_LAYOUT,
	COHORT_SLOT_FAULT,
	COHORT_SLOT_PCNTL,
	COHORT_SLOT_MSG,
	COHORT_SLOT_MIGRATION,
	COHORT_SLOT_FILES,
	COHORT_NR_SLOTS,
};

/**
 * struct cohort_task_ops - task life-cycle events
 * @created: @child was created by @parent with @clone_flags and will run;
 *	called at the end of copy_process(), once the fork can no longer fail.
 * @exit: @tsk is exiting with @code; called from do_exit() after
 *	exit_signals(), while the task still has its mm and files.
 * @exec: @tsk passed the point of no return of execve(), is the only thread
 *	of its group and still has its old mm.
 * @fork: current is about to fork or clone with @clone_flags; called at the
 *	start of kernel_clone(), may sleep. A negative errno fails the call.
 */
struct cohort_task_ops {
	void (*created)(struct task_struct *parent, struct task_struct *child,
			u64 clone_flags);
	void (*exit)(struct task_struct *tsk, long code);
	void (*exec)(struct task_struct *tsk);
	int (*fork)(u64 clone_flags);
};

/**
 * enum cohort_layout_op - address-space layout changes
 * @COHORT_LAYOUT_MMAP: mmap(2) and in-kernel vm_mmap()
 * @COHORT_LAYOUT_BRK: brk(2)
 * @COHORT_LAYOUT_MUNMAP: munmap(2) and in-kernel vm_munmap()
 * @COHORT_LAYOUT_MPROTECT: mprotect(2) and pkey_mprotect(2)
 * @COHORT_LAYOUT_MREMAP: mremap(2)
 * @COHORT_LAYOUT_MADVISE: madvise(2) of the caller's own address space (and
 *	io_uring's IORING_OP_MADVISE)
 */
enum cohort_layout_op {
	COHORT_LAYOUT_MMAP,
	COHORT_LAYOUT_BRK,
	COHORT_LAYOUT_MUNMAP,
	COHORT_LAYOUT_MPROTECT,
	COHORT_LAYOUT_MREMAP,
	COHORT_LAYOUT_MADVISE,
};

/**
 * struct cohort_layout_change - one layout change, as the caller asked for it
 * @op: which call
 * @start: mmap: address hint; brk: requested break; others: start address
 * @len: length (mremap: old length)
 * @new_addr: mremap: new address (MREMAP_FIXED)
 * @new_len: mremap: new length
 * @prot: mmap and mprotect: protection
 * @flags: mmap and mremap: flags; madvise: the advice
 * @pgoff: mmap: file offset in pages
 * @file: mmap: the file mapped, or NULL
 * @private: the module's cookie from begin() to end()
 * @srcu_idx: hub internal
 * @begun: hub internal: begin() was called and succeeded
 */
struct cohort_layout_change {
	enum cohort_layout_op op;
	unsigned long start;
	unsigned long len;
	unsigned long new_addr;
	unsigned long new_len;
	unsigned long prot;
	unsigned long flags;
	unsigned long pgoff;
	struct file *file;
	void *private;
	int srcu_idx;
	bool begun;
};

/**
 * struct cohort_layout_ops - address-space layout changes
 * @begin: called before the change, without mmap_lock held, in the calling
 *	task; may sleep (e.g. to take a distributed lock). A negative errno
 *	fails the call with it (brk(2) then returns the old break).
 * @end: called after the change with its result (an address or a negative
 *	errno), without mmap_lock held; always paired with a successful begin().
 */
struct cohort_layout_ops {
	int (*begin)(struct mm_struct *mm, struct cohort_layout_change *chg);
	void (*end)(struct mm_struct *mm, struct cohort_layout_change *chg,
		    long result);
};

/**
 * enum cohort_fault_action - what handle_mm_fault() does after the hook
 * @COHORT_FAULT_LOCAL: handle the fault as stock Linux does
 * @COHORT_FAULT_HANDLED: the module handled it; return its vm_fault_t. A
 *	module returning VM_FAULT_RETRY or VM_FAULT_COMPLETED must have released
 *	the mmap or VMA lock as handle_mm_fault()'s contract says.
 */
enum cohort_fault_action {
	COHORT_FAULT_LOCAL,
	COHORT_FAULT_HANDLED,
};

/**
 * struct cohort_shm_owner - who a SysV segment belongs to
 * @set: the fields below are to be used
 * @uid: owner and creator, in the initial user namespace
 * @gid: group and creator's group, in the initial user namespace
 * @mode: permission bits (0777)
 */
struct cohort_shm_owner {
	bool set;
	u32 uid;
	u32 gid;
	u16 mode;
};

/**
 * struct cohort_fault_ops - page faults, and the memory linker's address spaces
 * @fault: called from handle_mm_fault() after the access checks, with the
 *	mmap lock or the VMA lock held (FAULT_FLAG_VMA_LOCK); stores the result
 *	in @ret when it returns COHORT_FAULT_HANDLED.
 * @link: from then on the private memory of @mm is container @container's
 *	pages on this node (cohort_mm_link()); @active: the process uses this
 *	copy, and faults in it get their pages from the container; else a
 *	shadow keeps it, it serves pages and its own faults stay local. Linking
 *	an @mm linked to @container again changes only @active. @container 0
 *	asks for a new container homed at this node: the return is its id
 *	(positive, below 2^31). A negative errno refuses.
 * @unlink: this node's address space linked to @container, if any, leaves
 *	it; with @destroy, the container's pages are released on every node
 *	(cohort_container_unlink()). May sleep.
 * @release: the pages of [@start, @end) of linked @mm are released on
 *	every node, and read as zeros (anonymous) or the file afterwards
 *	(cohort_mm_release()). May sleep.
 * @populate: every page of @container that exists on any node is made
 *	present in current's address space, linked to it, as read copies
 *	(cohort_container_populate()). May sleep.
 * @counts: pages of @container this node received (@fetched) and sent
 *	(@served) since the last call (cohort_container_counts()).
 * @share_link: from then on the anonymous shared region of @file is
 *	container @container's pages on this node (cohort_share_link());
 *	@container 0 asks for a new container homed here. Returns the id or a
 *	negative errno. May sleep.
 * @share_file: the region linked to @container on this node, with a
 *	reference, or NULL (cohort_share_file()).
 * @shmget: shmget(2) of @key (not IPC_PRIVATE) in the initial IPC
 *	namespace, before the local lookup: may set IPC_CREAT in @shmflg and
 *	the cluster's segment's size in @size so that this node's segment is
 *	made for it, or return a negative errno to fail the call. May sleep.
 * @shm_created: this node made segment @shmid of @key, whose shmem file is
 *	@file (a reference held by the caller), under the IPC ids' rwsem; it
 *	may fill @owner with the owner and mode the segment takes (those of
 *	the cluster's segment of that key).
 * @shm_removed: IPC_RMID removed the segment of @file (a reference held by
 *	the caller) on this node. May sleep.
 */
struct cohort_fault_ops {
	enum cohort_fault_action (*fault)(struct vm_area_struct *vma,
					  unsigned long address,
					  unsigned int flags,
					  struct pt_regs *regs,
					  vm_fault_t *ret);
	int (*link)(struct mm_struct *mm, u32 container, bool active);
	void (*unlink)(u32 container, bool destroy);
	int (*release)(struct mm_struct *mm, unsigned long start,
		       unsigned long end);
	int (*populate)(u32 container);
	void (*counts)(u32 container, u64 *fetched, u64 *served);
	int (*share_link)(struct file *file, u32 container);
	struct file *(*share_file)(u32 container);
	int (*shmget)(key_t key, size_t *size, int *shmflg);
	void (*shm_created)(key_t key, int shmid, struct file *file,
			    struct cohort_shm_owner *owner);
	void (*shm_removed)(struct file *file);
};

/**
 * struct cohort_pcntl_ops - the pcntl(2) system call
 * @pcntl: run command @cmd; returns a value or a negative errno.
 */
struct cohort_pcntl_ops {
	long (*pcntl)(unsigned int cmd, unsigned long a0, unsigned long a1,
		      unsigned long a2);
};

/**
 * struct cohort_migration_ops - tasks that run away from their origin
 * @fault: as &cohort_fault_ops.fault, asked first: the process layer
 *	fetches the pages of migrated tasks' address spaces; returning
 *	COHORT_FAULT_LOCAL passes the fault on to the fault slot.
 * @syscall: a task marked with cohort_task_forward() enters system call @nr
 *	with arguments @args; return true, with the result in @ret, to skip
 *	the local system call, false to run it here with @args, which the
 *	module may have changed (a pid translated into this node's).
 */
struct cohort_migration_ops {
	enum cohort_fault_action (*fault)(struct vm_area_struct *vma,
					  unsigned long address,
					  unsigned int flags,
					  struct pt_regs *regs,
					  vm_fault_t *ret);
	bool (*syscall)(long nr, unsigned long *args, long *ret);
};

/* Most bytes a proxy file moves in one request to the file's home. */
#define COHORT_FILE_MAX_DATA	(1U << 20)
/* Most bytes an ioctl forwarded by a proxy file reads or writes. */
#define COHORT_IOCTL_MAX_DATA	256

/**
 * struct cohort_proxy - a proxy file: an open file held by another node
 * @node: in the hub's list of proxies
 * @home: the node holding the file
 * @id: the file's export id there
 * @wq: waiters for a change of the file's poll mask
 * @seq: bumped on every report from the home
 * @mask: the file's poll mask, as last reported
 * @armed: the home reports changes of the mask to this node
 * @dead: the home went down; every operation fails with -EIO
 */
struct cohort_proxy {
	struct list_head node;
	unsigned int home;
	u64 id;
	wait_queue_head_t wq;
	atomic_t seq;
	__poll_t mask;
	bool armed;
	bool dead;
};

/**
 * struct cohort_stat - a file's attributes, as fstat() reports them
 *
 * Devices are new_encode_dev() values, ids are in the initial user
 * namespace, times are seconds and nanoseconds; @result_mask is STATX_*.
 */
struct cohort_stat {
	u64 dev, ino, mode, nlink, uid, gid, rdev, size, blksize, blocks;
	u64 atime, atime_nsec, mtime, mtime_nsec, ctime, ctime_nsec;
	u64 btime, btime_nsec, result_mask;
};

/**
 * struct cohort_dirent - a directory entry, as a proxy reads them
 * @ino: the entry's inode number
 * @pos: the directory position of the entry itself (seeking there reads
 *	it again)
 * @type: its DT_* type
 * @namelen: length of @name, which follows, not NUL-terminated
 *
 * Entries are packed one after another, each starting 8-byte aligned.
 */
struct cohort_dirent {
	u64 ino;
	s64 pos;
	u8 type;
	u8 pad;
	u16 namelen;
	u32 pad2;
	char name[];
};

struct cohort_watch;

/* What a struct cohort_lock asks. */
#define COHORT_LOCK_SET		0	/* take or drop it */
#define COHORT_LOCK_TEST	1	/* F_OFD_GETLK */
/* Which lock: the first two belong to an open file description. */
#define COHORT_LOCK_OFD		0	/* an OFD record lock */
#define COHORT_LOCK_FLOCK	1	/* a flock(2) lock */
#define COHORT_LOCK_POSIX	2	/* a POSIX record lock of @owner */

/**
 * struct cohort_lock - a lock a proxy forwards to its home
 * @cmd: COHORT_LOCK_SET or COHORT_LOCK_TEST
 * @kind: COHORT_LOCK_OFD, COHORT_LOCK_FLOCK (the whole file; never tested)
 *	or COHORT_LOCK_POSIX (of @owner; without one, only tested, as an owner
 *	that holds none)
 * @type: F_RDLCK, F_WRLCK or F_UNLCK; after a test, the conflicting
 *	lock's, F_UNLCK for none
 * @conflict_ofd: after a test, whether the conflicting lock is an OFD lock
 * @start: first byte
 * @end: last byte (OFFSET_MAX: to the end of the file)
 * @pid: the pid the lock is recorded with; after a test, the conflicting
 *	lock's
 * @owner: POSIX, at the home: the owner of the lock, a process's descriptor
 *	table (cohort_task_lock_owner()), only compared, never dereferenced;
 *	NULL for none
 */
struct cohort_lock {
	u8 cmd;
	u8 kind;
	u8 type;
	bool conflict_ofd;
	s32 pid;
	s64 start;
	s64 end;
	const void *owner;
};

/* What a proxy's setattr changes (struct cohort_setattr's @change). */
enum cohort_setattr_change {
	COHORT_SETATTR_MODE = 1,
	COHORT_SETATTR_OWNER = 2,
	COHORT_SETATTR_TIMES = 3,
	COHORT_SETATTR_FLAGS = 4,
};

/**
 * struct cohort_filetime - one time of a futimens(2)
 * @sec: seconds since the epoch
 * @nsec: nanoseconds, or UTIME_NOW or UTIME_OMIT
 */
struct cohort_filetime {
	s64 sec;
	u32 nsec;
};

/**
 * struct cohort_setattr - an fchmod(2), fchown(2), futimens(2) or
 * fcntl(F_SETFL) of a proxy
 * @change: COHORT_SETATTR_*
 * @mode: MODE: the permission bits
 * @uid: OWNER: the new owner, (u32)-1 to leave it
 * @gid: OWNER: the new group, (u32)-1 to leave it
 * @now: TIMES: both times now (futimens with NULL times)
 * @times: TIMES, unless @now: access and modification times
 * @flags: FLAGS: the status flags (O_APPEND, O_NONBLOCK, O_DIRECT and
 *	O_NOATIME; the rest are ignored)
 */
struct cohort_setattr {
	u32 change;
	u32 mode;
	u32 uid;
	u32 gid;
	bool now;
	struct cohort_filetime times[2];
	u32 flags;
};

/**
 * struct cohort_file_ops - proxy files (see kernel/cohort/proxy.c)
 *
 * Every call but release() and fired() is made by the task using the
 * proxy, may sleep and is bounded by the transport's time-outs.
 *
 * @read: read up to @len bytes into @buf at @pos (negative: the file
 *	position); -EAGAIN when the read would block; @flags are the proxy's
 *	status flags.
 * @write: write @len bytes at @pos, likewise; fewer bytes or -EAGAIN when
 *	the file is full.
 * @llseek: lseek(2).
 * @getattr: fstat(2).
 * @fsync: fsync(2) or fdatasync(2).
 * @ioctl: ioctl(2) @cmd with the argument @value (a command without a
 *	buffer), or the @in_len bytes it reads at @in and the @out_len bytes
 *	it writes to @out (at most COHORT_IOCTL_MAX_DATA each).
 * @readdir: read the entries of the directory from its position at the
 *	home into @buf (struct cohort_dirent, at most @len bytes), moving the
 *	position past them; return the bytes written (0 at the end).
 * @truncate: ftruncate(2) to @len bytes.
 * @setattr: fchmod(2), fchown(2) or futimens(2), as @sa says, checked at
 *	the home with the calling task's credentials.
 * @lock: take, drop or test a lock of the home's open file description
 *	(struct cohort_lock) without waiting; -EAGAIN when it is held
 *	elsewhere.
 * @arm: have the home report changes of the file's poll mask; return the
 *	mask now, or a negative errno.
 * @release: the last reference to the proxy file is gone.
 * @fired: the wait queues of the file watched as @cookie were woken
 *	(cohort_watch_new()); runs in a workqueue.
 */
struct cohort_file_ops {
	ssize_t (*read)(struct cohort_proxy *p, void *buf, size_t len,
			loff_t pos, unsigned int flags);
	ssize_t (*write)(struct cohort_proxy *p, const void *buf, size_t len,
			 loff_t pos, unsigned int flags);
	loff_t (*llseek)(struct cohort_proxy *p, loff_t offset, int whence);
	int (*getattr)(struct cohort_proxy *p, struct cohort_stat *st);
	int (*fsync)(struct cohort_proxy *p, int datasync);
	long (*ioctl)(struct cohort_proxy *p, unsigned int cmd,
		      unsigned long value, const void *in, size_t in_len,
		      void *out, size_t out_len);
	ssize_t (*readdir)(struct cohort_proxy *p, void *buf, size_t len);
	int (*truncate)(struct cohort_proxy *p, loff_t len);
	int (*setattr)(struct cohort_proxy *p, const struct cohort_setattr *sa);
	int (*lock)(struct cohort_proxy *p, struct cohort_lock *lk);
	int (*arm)(struct cohort_proxy *p);
	void (*release)(struct cohort_proxy *p);
	void (*fired)(u64 cookie);
};

/* Message types below this are the transport's own; handlers take the rest. */
#define COHORT_MSG_FIRST_TYPE	0x100
/* One past the highest message type a handler can be registered for. */
#define COHORT_MSG_NR_TYPES	0x400
/* kmsg's echo service (a handler like any other), used by its tests. */
#define COHORT_MSG_ECHO		0x100

/**
 * struct cohort_msg - a message delivered to a handler
 * @src: sending node
 * @type: message type
 * @request_id: non-zero when the sender waits for cohort_msg_reply()
 * @data: payload, valid for the duration of the handler call
 * @len: payload length
 */
struct cohort_msg {
	unsigned int src;
	u16 type;
	u64 request_id;
	const void *data;
	size_t len;
};

/*
 * Flag of cohort_msg_request_flags(): wait for the reply even when a signal
 * is pending (the wait stays bounded by the timeout and by peer death).
 */
#define COHORT_MSG_NOINTR	0x1

/* A message handler; runs in process context and may sleep. */
typedef void (*cohort_msg_handler_t)(const struct cohort_msg *msg);

/**
 * enum cohort_membership_event - what a membership notifier is told
 * @COHORT_NODE_UP: the node (notifier data) came up
 * @COHORT_NODE_DOWN: the node went down, or the transport unloads
 */
enum cohort_membership_event {
	COHORT_NODE_UP = 1,
	COHORT_NODE_DOWN = 2,
};

/**
 * struct cohort_msg_ops - the message transport between nodes
 * @peer_online: whether node @node, another node than this one, is up.
 * @send: queue @len bytes of message @type to @node without waiting for an
 *	answer; returns 0 or a negative errno.
 * @request: send a request and wait up to @timeout_ms for the reply, copied
 *	into @reply (at most @reply_size bytes); returns the reply's length,
 *	the errno the replier sent, -EMSGSIZE for a reply that does not fit,
 *	-ETIMEDOUT, or -EHOSTDOWN when @node is or goes down meanwhile. The
 *	wait ends with -EINTR on a signal unless @flags has COHORT_MSG_NOINTR.
 * @reply: answer request @req with @error (0 or a negative errno) and
 *	@len bytes of @data.
 */
struct cohort_msg_ops {
	bool (*peer_online)(unsigned int node);
	int (*send)(unsigned int node, u16 type, const void *data, size_t len);
	long (*request)(unsigned int node, u16 type, const void *data,
			size_t len, void *reply, size_t reply_size,
			unsigned int timeout_ms, unsigned int flags);
	int (*reply)(const struct cohort_msg *req, int error, const void *data,
		     size_t len);
};

/*
 * Helpers for moving a task between nodes (kernel/cohort/task.c, mm.c,
 * fwd.c and the arch file). They act on current unless they say otherwise.
 */

/**
 * struct cohort_sigaction - one signal's disposition, as migration carries it
 * @handler: sa_handler
 * @flags: sa_flags
 * @restorer: sa_restorer
 * @mask: sa_mask (bit n-1 for signal n)
 */
struct cohort_sigaction {
	u64 handler;
	u64 flags;
	u64 restorer;
	u64 mask;
};

/**
 * struct cohort_signals - a task's signal state
 * @blocked: blocked signals (bit n-1 for signal n)
 * @pending: signals pending for the task or its group
 * @action: dispositions of signals 1 to 64
 */
struct cohort_signals {
	u64 blocked;
	u64 pending;
	struct cohort_sigaction action[64];
};

/**
 * struct cohort_creds - a task's credentials in the initial namespaces
 * @uid: real user id
 * @gid: real group id
 * @suid: saved user id
 * @sgid: saved group id
 * @euid: effective user id
 * @egid: effective group id
 * @fsuid: file-system user id
 * @fsgid: file-system group id
 * @cap_inheritable: inheritable capabilities
 * @cap_permitted: permitted capabilities
 * @cap_effective: effective capabilities
 * @cap_bset: capability bounding set
 * @cap_ambient: ambient capabilities
 * @securebits: SECURE_* bits
 * @umask: file creation mask
 */
struct cohort_creds {
	u32 uid, gid, suid, sgid, euid, egid, fsuid, fsgid;
	u64 cap_inheritable, cap_permitted, cap_effective, cap_bset;
	u64 cap_ambient;
	u32 securebits;
	u32 umask;
};

/**
 * struct cohort_sched - a task's scheduling policy
 * @policy: SCHED_* policy
 * @rt_priority: real-time priority
 * @nice: nice value
 */
struct cohort_sched {
	s32 policy;
	s32 rt_priority;
	s32 nice;
};

/* Longest path of a mapped file that migration carries, with its NUL. */
#define COHORT_VMA_PATH_MAX	256

/**
 * enum cohort_vma_kind - what backs a mapping
 * @COHORT_VMA_ANON: anonymous memory (heap, stack, private anonymous)
 * @COHORT_VMA_FILE: a private mapping of a file, named by path
 * @COHORT_VMA_VDSO: the vDSO text
 * @COHORT_VMA_VVAR: the vDSO data
 * @COHORT_VMA_FILE_ANON: a private mapping of a file no path names (deleted,
 *	or a path too long): anonymous memory filled from the node it left
 * @COHORT_VMA_SHARED: a MAP_SHARED mapping of an anonymous shared region,
 *	whose pages are container @container's (see share.c)
 */
enum cohort_vma_kind {
	COHORT_VMA_ANON,
	COHORT_VMA_FILE,
	COHORT_VMA_VDSO,
	COHORT_VMA_VVAR,
	COHORT_VMA_FILE_ANON,
	COHORT_VMA_SHARED,
};

/**
 * struct cohort_vma - one mapping of an address space
 * @start: first address
 * @end: one past the last address
 * @flags: vm_flags (VM_READ, VM_WRITE, VM_EXEC, VM_GROWSDOWN, ...)
 * @pgoff: file offset in pages
 * @kind: an enum cohort_vma_kind
 * @container: for COHORT_VMA_SHARED, the region's container
 * @size: for COHORT_VMA_SHARED, the region's size in bytes
 * @path: the file's path for COHORT_VMA_FILE, NUL-terminated
 */
struct cohort_vma {
	u64 start;
	u64 end;
	u64 flags;
	u64 pgoff;
	u32 kind;
	u32 container;
	u64 size;
	char path[COHORT_VMA_PATH_MAX];
};

/**
 * struct cohort_mm_layout - the fields of an mm that are not mappings
 * @start_code: start of text
 * @end_code: end of text
 * @start_data: start of data
 * @end_data: end of data
 * @start_brk: start of the heap
 * @brk: current break
 * @start_stack: stack start
 * @arg_start: start of the arguments
 * @arg_end: end of the arguments
 * @env_start: start of the environment
 * @env_end: end of the environment
 */
struct cohort_mm_layout {
	u64 start_code, end_code, start_data, end_data;
	u64 start_brk, brk, start_stack;
	u64 arg_start, arg_end, env_start, env_end;
};

/* Resource limits migration carries: RLIMIT_CPU to RLIMIT_RTTIME. */
#define COHORT_NR_RLIMITS	16

/* Bits of cohort_proc.flags. */
#define COHORT_PROC_SUBREAPER		0x1	/* PR_SET_CHILD_SUBREAPER */
#define COHORT_PROC_NO_NEW_PRIVS	0x2	/* PR_SET_NO_NEW_PRIVS */
#define COHORT_PROC_THP_DISABLE		0x4	/* PR_SET_THP_DISABLE */

/**
 * struct cohort_itimer - an interval timer, relative to when it is read
 * @value_ns: time (real or CPU) to the next expiry, 0 when disarmed
 * @interval_ns: reload value, 0 for a one-shot timer
 */
struct cohort_itimer {
	u64 value_ns;
	u64 interval_ns;
};

/**
 * struct cohort_rlimit - one resource limit
 * @cur: soft limit (RLIM_INFINITY is all ones)
 * @max: hard limit
 */
struct cohort_rlimit {
	u64 cur;
	u64 max;
};

/**
 * struct cohort_proc - a process's state besides its signals, credentials,
 *	scheduling and address space
 * @sas_sp: alternate signal stack base (sigaltstack(2))
 * @sas_size: its size
 * @sas_flags: its flags (SS_DISABLE, SS_AUTODISARM)
 * @personality: personality(2)
 * @itimer: ITIMER_REAL, ITIMER_VIRTUAL and ITIMER_PROF (alarm(2) is the
 *	first)
 * @rlim: resource limits, indexed by RLIMIT_*
 * @timer_slack_ns: PR_SET_TIMERSLACK
 * @pdeath_signal: PR_SET_PDEATHSIG
 * @flags: COHORT_PROC_* bits
 * @dumpable: PR_SET_DUMPABLE (SUID_DUMP_*)
 * @robust_list: set_robust_list(2) head
 * @clear_child_tid: set_tid_address(2)
 * @rseq: rseq(2) area, 0 when not registered
 * @rseq_len: its length
 * @rseq_sig: its signature
 * @monotonic_ns: CLOCK_MONOTONIC as the process saw it when it was saved
 * @boottime_ns: CLOCK_BOOTTIME likewise
 * @restart: the call that a migration interrupted and that the task goes
 *	on with through restart_syscall(2): %COHORT_RESTART_SLEEP,
 *	%COHORT_RESTART_POLL, or %COHORT_RESTART_NONE (the three fields
 *	below are then 0)
 * @restart_arg: a sleep's clock (CLOCK_REALTIME, CLOCK_MONOTONIC,
 *	CLOCK_BOOTTIME or CLOCK_TAI); a poll's number of descriptors
 * @restart_addr: where a sleep reports its time left if a handler
 *	interrupts it (the call's rmtp, 0 for none); a poll's array of
 *	struct pollfd
 * @restart_ns: the time the call has left, in nanoseconds: never negative
 *	for a sleep, -1 for a poll without a time-out (the nodes' clocks
 *	differ, so the call keeps the length it has left)
 */
struct cohort_proc {
	u64 sas_sp;
	u64 sas_size;
	u32 sas_flags;
	u32 personality;
	struct cohort_itimer itimer[3];
	struct cohort_rlimit rlim[COHORT_NR_RLIMITS];
	u64 timer_slack_ns;
	u32 pdeath_signal;
	u32 flags;
	u32 dumpable;
	u32 rseq_len;
	u64 robust_list;
	u64 clear_child_tid;
	u64 rseq;
	u32 rseq_sig;
	u32 pad;
	s64 monotonic_ns;
	s64 boottime_ns;
	u32 restart;
	u32 restart_arg;
	u64 restart_addr;
	s64 restart_ns;
};

/* What struct cohort_proc's restart says the task goes on with. */
#define COHORT_RESTART_NONE	0
#define COHORT_RESTART_SLEEP	1
#define COHORT_RESTART_POLL	2

/* Room for a struct kernel_siginfo in struct cohort_sigq. */
#define COHORT_SIGINFO_SIZE	48

/**
 * struct cohort_sigq - one queued signal with its siginfo
 * @signo: the signal
 * @shared: queued for the whole process rather than the thread
 * @info: the kernel_siginfo as queued
 */
struct cohort_sigq {
	u32 signo;
	u32 shared;
	u8 info[COHORT_SIGINFO_SIZE];
};

/*
 * A function run in a task by cohort_task_work() or cohort_spawn(). It
 * returns COHORT_WORK_RESUME to let the task go on to user space, or a wait
 * status (exit code << 8, or a signal number) to end the task with, once
 * the function and the module that owns it are out of the way.
 */
typedef long (*cohort_work_fn)(void *data, bool exiting);

/* What a cohort_work_fn returns to let the task go on. */
#define COHORT_WORK_RESUME	(-1L)

/* Work flags of cohort_task_work(). */
#define COHORT_WORK_INTERRUPT	0x1	/* interrupt a sleep to get there */

#ifdef CONFIG_COHORT

extern struct static_key_false cohort_slot_keys[COHORT_NR_SLOTS];

static __always_inline bool cohort_slot_active(enum cohort_slot slot)
{
	return static_branch_unlikely(&cohort_slot_keys[slot]);
}

int cohort_register(enum cohort_slot slot, const void *ops, const char *owner);
void cohort_unregister(enum cohort_slot slot, const void *ops);
unsigned int cohort_node_id(void);
unsigned int cohort_nr_nodes(void);
int cohort_peer_addr(unsigned int node, struct cohort_ip *addr);
u16 cohort_port(void);
#define COHORT_HEARTBEAT_TIMEOUT_DEFAULT_MS	2000
#define COHORT_HEARTBEAT_TIMEOUT_MIN_MS		1000
#define COHORT_HEARTBEAT_TIMEOUT_MAX_MS		600000
unsigned int cohort_heartbeat_timeout_ms(void);
bool cohort_node_online(unsigned int node);

/* Authenticating the transport's peers (kernel/cohort/auth.c). */
#define COHORT_MAC_LEN	32	/* bytes of a hmac(sha256) */
#define COHORT_TAG_KEY_LEN	32	/* bytes of a frame tags' key */
#define COHORT_TAG_LEN	16	/* bytes of a frame tag (Poly1305) */
struct cohort_mac;
struct cohort_tagger;
struct kvec;
bool cohort_auth_enabled(void);
ssize_t cohort_read_key_file(u8 *buf, size_t size, char *path,
			     size_t path_size);
struct cohort_mac *cohort_mac_new(const u8 *key, unsigned int len);
void cohort_mac_free(struct cohort_mac *mac);
int cohort_mac_digest(struct cohort_mac *mac, const struct kvec *parts,
		      unsigned int nr, u8 *out);
struct cohort_tagger *cohort_tagger_new(const u8 *key, unsigned int len);
void cohort_tagger_free(struct cohort_tagger *tagger);
void cohort_tagger_begin(struct cohort_tagger *tagger, u64 seq);
void cohort_tagger_update(struct cohort_tagger *tagger, const void *data,
			  size_t len);
void cohort_tagger_finish(struct cohort_tagger *tagger, u8 *tag);
void cohort_random_bytes(void *buf, size_t len);
void cohort_wipe(void *buf, size_t len);

/* Memory shared by partitions of one host (kernel/cohort/ivshmem.c). */

/**
 * struct cohort_shm_client - the user of the shared memory
 * @doorbell: called in interrupt context when a peer rings this node
 * @data: passed to @doorbell
 */
struct cohort_shm_client {
	void (*doorbell)(void *data);
	void *data;
};

/**
 * struct cohort_shm_info - the shared memory, as attached
 * @size: bytes of the region
 * @position: this node's ivshmem peer id (what peers ring it with)
 */
struct cohort_shm_info {
	size_t size;
	u16 position;
};

int cohort_shm_attach(struct cohort_shm_client *client,
		      struct cohort_shm_info *info);
void cohort_shm_detach(struct cohort_shm_client *client);
u64 cohort_shm_poll_ns(void);
void cohort_shm_ring(u32 value);
u64 cohort_shm_load_acquire(size_t off);
void cohort_shm_store_release(size_t off, u64 val);
void cohort_shm_read(size_t off, void *buf, size_t len);
void cohort_shm_write(size_t off, const void *buf, size_t len);
void cohort_shm_fence(void);

int cohort_msg_send(unsigned int node, u16 type, const void *data, size_t len);
long cohort_msg_request(unsigned int node, u16 type, const void *data,
			size_t len, void *reply, size_t reply_size,
			unsigned int timeout_ms);
long cohort_msg_request_flags(unsigned int node, u16 type, const void *data,
			      size_t len, void *reply, size_t reply_size,
			      unsigned int timeout_ms, unsigned int flags);
int cohort_msg_reply(const struct cohort_msg *req, int error,
		     const void *data, size_t len);
int cohort_msg_register_handler(u16 type, cohort_msg_handler_t handler,
				const char *owner);
void cohort_msg_unregister_handler(u16 type, cohort_msg_handler_t handler);
int cohort_msg_deliver(const struct cohort_msg *msg);
int cohort_membership_register(struct notifier_block *nb);
void cohort_membership_unregister(struct notifier_block *nb);
void cohort_membership_notify(unsigned int node, bool up);

void cohort_signals_save(struct cohort_signals *sig);
void cohort_signals_load(const struct cohort_signals *sig);
void cohort_signals_shadow(u64 sent);
int cohort_signal_next(void);
int cohort_proc_save(struct cohort_proc *proc);
int cohort_proc_load(const struct cohort_proc *proc);
void cohort_proc_shadow(void);
long cohort_sigqueue_save(struct cohort_sigq *q, unsigned long max);
void cohort_sigqueue_load(const struct cohort_sigq *q, unsigned long nr,
			  u64 pending);
long cohort_groups_save(u32 *gids, unsigned long max);
int cohort_groups_load(const u32 *gids, unsigned long nr);
int cohort_exe_save(char *buf, size_t size);
int cohort_exe_load(const char *path);
bool cohort_fatal_signal_pending(void);
void cohort_task_interrupt(struct task_struct *tsk);
void cohort_interrupt_clear(void);
bool cohort_task_has_mm(struct task_struct *tsk, struct mm_struct *mm);
pid_t cohort_parent_tgid(void);
pid_t cohort_task_pid(struct task_struct *tsk, pid_t *tgid);
void cohort_creds_save(struct cohort_creds *creds);
int cohort_creds_load(const struct cohort_creds *creds);
void cohort_sched_save(struct cohort_sched *sched);
int cohort_sched_load(const struct cohort_sched *sched);
void cohort_set_comm(const char *comm);
int cohort_task_work(struct module *owner, struct task_struct *tsk,
		     cohort_work_fn fn, void *data, unsigned int flags);
int cohort_spawn(struct module *owner, const struct cohort_creds *creds,
		 cohort_work_fn fn, void *data);
int cohort_exec_fresh_mm(void);
void cohort_arch_fresh_user(void);
bool cohort_module_pin(struct module *owner);
void cohort_module_unpin(struct module *owner);
void cohort_rcu_read_lock(void);
void cohort_rcu_read_unlock(void);
void cohort_task_forward(struct task_struct *tsk, bool on);
bool cohort_may_migrate(struct task_struct *tsk);
int cohort_await_lone_thread(unsigned int timeout_ms);
bool cohort_may_control(struct task_struct *tsk);
void cohort_get_comm(char *comm);
void cohort_set_syscall_return(long value);

int cohort_mm_describe(struct cohort_mm_layout *layout,
		       struct cohort_vma *vmas, unsigned int max);
int cohort_mm_install(const struct cohort_mm_layout *layout,
		      const struct cohort_vma *vmas, unsigned int nr, bool fresh);
int cohort_mprotect(unsigned long start, size_t len, unsigned long prot);
bool cohort_mm_get(struct mm_struct *mm);
void cohort_mm_zap(struct mm_struct *mm, unsigned long start,
		   unsigned long end);
int cohort_mm_fault_in(unsigned long addr);
long cohort_mm_present(struct mm_struct *mm, u64 *pages, unsigned long max);
unsigned long cohort_vma_flags(struct vm_area_struct *vma);
unsigned long cohort_mm_brk(struct mm_struct *mm);
/* How cohort_fault_install_page() installs */
#define COHORT_INSTALL_WRITE	0x1	/* writable, when the VMA is */
#define COHORT_INSTALL_REPLACE	0x2	/* a copy of the page mapped there */

vm_fault_t cohort_fault_install_page(struct vm_area_struct *vma,
				     unsigned long address, unsigned int flags,
				     unsigned int how, const void *data,
				     const u64 *epoch, u64 seen);
int cohort_mm_install_page(struct mm_struct *mm, unsigned long addr,
			   bool writable, const void *data);
int cohort_mm_wrprotect(struct mm_struct *mm, unsigned long addr);
/* What cohort_vma_pte_state() found */
#define COHORT_PTE_NONE		0
#define COHORT_PTE_PRESENT	1
#define COHORT_PTE_OTHER	2

int cohort_mm_link(struct mm_struct *mm, u32 container, bool active);
void cohort_container_unlink(u32 container, bool destroy);
int cohort_container_populate(u32 container);
void cohort_container_counts(u32 container, u64 *fetched, u64 *served);
void cohort_mm_grab(struct mm_struct *mm);
void cohort_mm_drop(struct mm_struct *mm);
int cohort_mm_release(struct mm_struct *mm, unsigned long start,
		      unsigned long end);
int cohort_mm_read_page(struct mm_struct *mm, unsigned long addr, void *buf);
int cohort_vma_pte_state(struct vm_area_struct *vma, unsigned long addr);
int cohort_vma_fresh_page(struct vm_area_struct *vma, unsigned long addr,
			  void *buf);
int cohort_share_link(struct file *file, u32 container);
struct file *cohort_share_file(u32 container);
bool cohort_file_is_shared_anon(struct file *file);
bool cohort_file_is_linkable(struct file *file);
void cohort_current_egids(u32 *uid, u32 *gid);
bool cohort_ipc_may(u32 uid, u32 gid, u16 mode, int flag);
int cohort_shm_remove(int shmid, struct file *file);
struct file *cohort_vma_shared_file(struct vm_area_struct *vma);
u64 cohort_vma_pgoff(struct vm_area_struct *vma, unsigned long address);
unsigned long cohort_file_key(struct file *file);
bool cohort_file_unused(struct file *file);
struct file *cohort_share_new(u64 size, unsigned long vm_flags);
void cohort_share_zap(struct file *file, u64 index);
int cohort_share_read(struct file *file, u64 index, void *buf);
int cohort_share_write(struct file *file, u64 index, const void *data);
void cohort_share_drop(struct file *file, u64 first, u64 end);
vm_fault_t cohort_share_fault_install(struct vm_area_struct *vma,
				      unsigned long address, unsigned int flags,
				      bool write, const u64 *epoch, u64 seen);

long cohort_shadow_wait4(pid_t pid, int options, int *status, void *ru);
int cohort_kill(pid_t pid, int sig);
int cohort_tgkill(pid_t tgid, pid_t tid, int sig);
pid_t cohort_getpgid(pid_t pid, bool session);
bool cohort_has_child(pid_t pid);
long cohort_wait4_local(pid_t pid, void __user *status, int options,
			void __user *ru);
long cohort_scratch_map(size_t len);
void cohort_scratch_unmap(unsigned long addr, size_t len);

unsigned int cohort_proxy_home(const struct cohort_proxy *p);
u64 cohort_proxy_id(const struct cohort_proxy *p);
void cohort_proxy_set_mask(struct cohort_proxy *p, __poll_t mask);
void cohort_proxy_ready(unsigned int home, u64 id, __poll_t mask);
void cohort_proxy_node_down(unsigned int home);
struct file *cohort_proxy_new(unsigned int home, u64 id, u32 f_flags,
			      u32 f_mode, u32 i_mode);
struct cohort_proxy *cohort_file_proxy(struct file *file);
void cohort_proxy_disown(struct file *file);
void cohort_file_info(struct file *file, u32 *f_flags, u32 *f_mode,
		      u32 *i_mode);
void cohort_file_get(struct file *file);
void cohort_file_put(struct file *file);
struct file *cohort_fd_next(unsigned int *fd, bool *cloexec);
int cohort_fd_install_at(unsigned int fd, struct file *file, bool cloexec);
int cohort_fd_install_new(struct file *file, bool cloexec);
int cohort_files_close_all(void);
int cohort_files_leave_all(void);
struct file *cohort_file_open(const char *path, int flags, umode_t mode);
__poll_t cohort_file_poll_mask(struct file *file);
ssize_t cohort_file_read(struct file *file, void *buf, size_t len, loff_t pos);
ssize_t cohort_file_write(struct file *file, const void *buf, size_t len,
			  loff_t pos, unsigned int flags);
loff_t cohort_file_llseek(struct file *file, loff_t offset, int whence);
int cohort_file_getattr(struct file *file, struct cohort_stat *st);
int cohort_file_fsync(struct file *file, int datasync);
ssize_t cohort_file_readdir(struct file *file, void *buf, size_t len);
int cohort_file_truncate(struct file *file, loff_t len);
int cohort_file_setattr(struct file *file, const struct cohort_setattr *sa,
			const struct cohort_creds *creds, const u32 *gids,
			unsigned int ngroups);
int cohort_file_lock(struct file *file, struct cohort_lock *lk);
bool cohort_task_posix_locks(struct task_struct *tsk);
const void *cohort_task_lock_owner(struct task_struct *tsk);
void cohort_file_unlock_owner(struct file *file, const void *owner);
long cohort_file_ioctl(struct file *file, unsigned int cmd,
		       unsigned long value, const void *in, size_t in_len,
		       void *out, size_t out_len);
struct cohort_watch *cohort_watch_new(struct file *file, u64 cookie);
void cohort_watch_free(struct cohort_watch *w);

size_t cohort_arch_state_size(void);
long cohort_arch_save(void *buf, size_t size);
int cohort_arch_load(const void *buf, size_t len);
int cohort_arch_map_vdso(unsigned long addr);
int cohort_arch_vma_kind(struct vm_area_struct *vma);
bool cohort_arch_in_vdso(struct pt_regs *regs);
bool cohort_arch_in_restart(void);
bool cohort_restart_travels(void);
/* kernel/time/hrtimer.c (patch 0018) */
bool hrtimer_nanosleep_restart_get(const struct restart_block *restart,
				   clockid_t *clockid, ktime_t *expires);
void hrtimer_nanosleep_restart_set(struct restart_block *restart,
				   clockid_t clockid, ktime_t expires);
/* fs/fcntl.c (patch 0020) */
int file_setfl(struct file *filp, unsigned int arg);
/* fs/select.c (patch 0019) */
bool poll_restart_get(const struct restart_block *restart,
		      struct pollfd __user **ufds, int *nfds,
		      bool *has_timeout, struct timespec64 *end);
void poll_restart_set(struct restart_block *restart,
		      struct pollfd __user *ufds, int nfds,
		      const struct timespec64 *end);
void cohort_arch_set_syscall_args(struct pt_regs *regs,
				  const unsigned long *args);
long cohort_arch_run_syscall(unsigned int nr, const unsigned long *args);

/* Migration settings of a process (pcntl(2) PCNTL_FORBID, ALLOW, GROUP_*) */
#define COHORT_PROC_FLAGS	(PCNTL_F_FORBIDDEN | PCNTL_F_ALLOWED | \
				 PCNTL_F_GROUP_FORK | PCNTL_F_SELF_ONLY)
u32 cohort_proc_settings(struct task_struct *tsk, u32 *group);
int cohort_proc_update(struct task_struct *tsk, u32 clear, u32 set,
		       const u32 *group);
int cohort_migration_refusal(struct task_struct *tsk);
bool cohort_may_control_as(struct task_struct *tsk, u32 uid, u32 euid,
			   bool admin);
void cohort_current_ids(u32 *uid, u32 *euid, bool *admin);
u64 cohort_task_age_ns(struct task_struct *tsk);

/**
 * struct cohort_ps_entry - a user process of this node, for PCNTL_PS
 * @pid: its pid in the caller's pid namespace
 * @uid: its real uid (initial user namespace)
 * @flags: its migration settings (COHORT_PROC_FLAGS)
 * @group: its migration group, 0 for none
 * @threads: its threads
 * @cpu_ns: user + system time of all its threads
 * @age_ns: time since it was created
 * @comm: its name, NUL-padded
 */
struct cohort_ps_entry {
	s32 pid;
	u32 uid;
	u32 flags;
	u32 group;
	u32 threads;
	u64 cpu_ns;
	u64 age_ns;
	char comm[16];		/* TASK_COMM_LEN */
};

unsigned int cohort_ps(struct cohort_ps_entry *out, unsigned int max);

/* Admission of incoming processes (kernel/cohort/policy.c) */
u32 cohort_admission(u32 uid);
bool cohort_policy_opt_in(void);
void cohort_node_info(struct pcntl_node_info *info);

#endif /* CONFIG_COHORT */

/*
 * The hook sites of the core kernel (CONFIG_COHORT_HOOKS). Each tests its
 * slot's static key; the out-of-line halves in kernel/cohort/hooks.c call
 * the module.
 */
#ifdef CONFIG_COHORT_HOOKS

void __cohort_task_created(struct task_struct *parent,
			   struct task_struct *child, u64 clone_flags);
void __cohort_task_exit(struct task_struct *tsk, long code);
void __cohort_task_exec(struct task_struct *tsk);
int __cohort_task_fork(u64 clone_flags);
int __cohort_layout_begin(struct mm_struct *mm,
			  struct cohort_layout_change *chg);
void __cohort_layout_end(struct mm_struct *mm,
			 struct cohort_layout_change *chg, long result);
bool __cohort_syscall(struct pt_regs *regs, long nr);
enum cohort_fault_action __cohort_fault(struct vm_area_struct *vma,
					unsigned long address,
					unsigned int flags,
					struct pt_regs *regs, vm_fault_t *ret);
struct ipc_namespace;
int __cohort_shmget(struct ipc_namespace *ns, key_t key, size_t *size,
		    int *shmflg);
struct kern_ipc_perm;
void __cohort_shm_created(struct ipc_namespace *ns, key_t key, int shmid,
			  struct file *file, struct kern_ipc_perm *perm);
struct file *__cohort_shm_removing(struct ipc_namespace *ns,
				   struct file *file);
void __cohort_shm_removed(struct file *file);
bool cohort_vma_wants_writenotify(struct vm_area_struct *vma);
int __cohort_file_setfl(struct file *file, unsigned int flags);
int __cohort_file_lock_base(struct file *file, int whence, loff_t *base);

void cohort_proc_inherit(struct task_struct *parent,
			 struct task_struct *child, u64 clone_flags);

static inline void cohort_task_created(struct task_struct *parent,
				       struct task_struct *child,
				       u64 clone_flags)
{
	/* Migration settings are the process's, module or not. */
	cohort_proc_inherit(parent, child, clone_flags);
	if (cohort_slot_active(COHORT_SLOT_TASK))
		__cohort_task_created(parent, child, clone_flags);
}

static inline void cohort_task_exit(struct task_struct *tsk, long code)
{
	if (cohort_slot_active(COHORT_SLOT_TASK))
		__cohort_task_exit(tsk, code);
}

static inline void cohort_task_exec(struct task_struct *tsk)
{
	if (cohort_slot_active(COHORT_SLOT_TASK))
		__cohort_task_exec(tsk);
}

static inline int cohort_task_fork(u64 clone_flags)
{
	if (cohort_slot_active(COHORT_SLOT_TASK))
		return __cohort_task_fork(clone_flags);
	return 0;
}

/**
 * cohort_layout_begin - announce a layout change of @mm
 * @mm: the address space
 * @chg: storage for the change, passed to cohort_layout_end() afterwards
 * @...: designated initialisers of &struct cohort_layout_change
 *
 * The record is filled in only when a module listens, so an idle hook
 * costs one branch and one store.
 *
 * Return: 0 to go ahead, or a negative errno to fail the call with.
 */
#define cohort_layout_begin(mm, chg, ...)				\
({									\
	int __ret = 0;							\
									\
	(chg)->begun = false;						\
	if (cohort_slot_active(COHORT_SLOT_LAYOUT)) {			\
		*(chg) = (struct cohort_layout_change){ __VA_ARGS__ };	\
		__ret = __cohort_layout_begin(mm, chg);			\
	}								\
	__ret;								\
})

static inline void cohort_layout_end(struct mm_struct *mm,
				     struct cohort_layout_change *chg,
				     long result)
{
	if (chg->begun)
		__cohort_layout_end(mm, chg, result);
}

static inline enum cohort_fault_action
cohort_fault(struct vm_area_struct *vma, unsigned long address,
	     unsigned int flags, struct pt_regs *regs, vm_fault_t *ret)
{
	if (cohort_slot_active(COHORT_SLOT_FAULT) ||
	    cohort_slot_active(COHORT_SLOT_MIGRATION))
		return __cohort_fault(vma, address, flags, regs, ret);
	return COHORT_FAULT_LOCAL;
}

/*
 * SysV shared memory (ipc/shm.c): a segment's key names one segment on
 * every node, whose pages the page layer keeps coherent.
 */
static inline int cohort_shmget(struct ipc_namespace *ns, key_t key,
				size_t *size, int *shmflg)
{
	if (cohort_slot_active(COHORT_SLOT_FAULT))
		return __cohort_shmget(ns, key, size, shmflg);
	return 0;
}

static inline void cohort_shm_created(struct ipc_namespace *ns, key_t key,
				      int shmid, struct file *file,
				      struct kern_ipc_perm *perm)
{
	if (cohort_slot_active(COHORT_SLOT_FAULT))
		__cohort_shm_created(ns, key, shmid, file, perm);
}

/*
 * Under the segment's spinlock: only takes a reference on @file, for
 * cohort_shm_removed() to hand to the page layer once it is dropped.
 */
static inline struct file *cohort_shm_removing(struct ipc_namespace *ns,
					       struct file *file)
{
	if (cohort_slot_active(COHORT_SLOT_FAULT))
		return __cohort_shm_removing(ns, file);
	return NULL;
}

static inline void cohort_shm_removed(struct file *file)
{
	if (file)
		__cohort_shm_removed(file);
}

/*
 * Called on system call entry of a task marked with cohort_task_forward();
 * true when the process layer served the call and set its return value.
 */
static inline bool cohort_syscall(struct pt_regs *regs, long nr)
{
	return __cohort_syscall(regs, nr);
}

/*
 * From setfl() (fs/fcntl.c), once @flags passed its checks: a proxy file's
 * status flags change at its home first; other files' are not Cohort's.
 * 0 or a negative errno. Not inline: F_SETFL is rare, and this header
 * does not know struct file.
 */
static inline int cohort_file_setfl(struct file *file, unsigned int flags)
{
	return __cohort_file_setfl(file, flags);
}

/*
 * From flock64_to_posix_lock() (fs/locks.c), for a lock given relative to
 * the file position (SEEK_CUR) or to its end (SEEK_END): a proxy file's
 * @base is its home's position or size. 0 or a negative errno.
 */
static inline int cohort_file_lock_base(struct file *file, int whence,
					loff_t *base)
{
	return __cohort_file_lock_base(file, whence, base);
}

#else /* !CONFIG_COHORT_HOOKS */

static inline int cohort_file_setfl(struct file *file, unsigned int flags)
{
	return 0;
}

static inline int cohort_file_lock_base(struct file *file, int whence,
					loff_t *base)
{
	return 0;
}

static inline bool cohort_syscall(struct pt_regs *regs, long nr)
{
	return false;
}

static inline void cohort_task_created(struct task_struct *parent,
				       struct task_struct *child,
				       u64 clone_flags) { }
static inline void cohort_task_exit(struct task_struct *tsk, long code) { }
static inline void cohort_task_exec(struct task_struct *tsk) { }
static inline int cohort_task_fork(u64 clone_flags) { return 0; }
#define cohort_layout_begin(mm, chg, ...)	\
	({ (void)(mm); (chg)->begun = false; 0; })
static inline void cohort_layout_end(struct mm_struct *mm,
				     struct cohort_layout_change *chg,
				     long result) { }
static inline enum cohort_fault_action
cohort_fault(struct vm_area_struct *vma, unsigned long address,
	     unsigned int flags, struct pt_regs *regs, vm_fault_t *ret)
{
	return COHORT_FAULT_LOCAL;
}
struct ipc_namespace;
static inline int cohort_shmget(struct ipc_namespace *ns, key_t key,
				size_t *size, int *shmflg) { return 0; }
struct kern_ipc_perm;
static inline void cohort_shm_created(struct ipc_namespace *ns, key_t key,
				      int shmid, struct file *file,
				      struct kern_ipc_perm *perm) { }
static inline struct file *cohort_shm_removing(struct ipc_namespace *ns,
					       struct file *file)
{
	return NULL;
}
static inline void cohort_shm_removed(struct file *file) { }
static inline bool cohort_vma_wants_writenotify(struct vm_area_struct *vma)
{
	return false;
}

#endif /* CONFIG_COHORT_HOOKS */

#endif /* _LINUX_COHORT_H */
