// SPDX-License-Identifier: GPL-2.0
/*
 * Cohort hub: the out-of-line halves of the hooks in <linux/cohort.h>.
 * Each runs only once a module registered for its slot (the inline half
 * tests the slot's static key) and calls the module inside an SRCU read
 * section, so the module may sleep and cannot go away underneath the call.
 */

#include <asm/syscall.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/ipc.h>
#include <linux/ipc_namespace.h>
#include <linux/sched/coredump.h>
#include <linux/shm.h>
#include <uapi/linux/shm.h>

#include "internal.h"

void __cohort_task_created(struct task_struct *parent,
			   struct task_struct *child, u64 clone_flags)
{
	const struct cohort_task_ops *ops;
	int idx;

	idx = srcu_read_lock(&cohort_srcu);
	ops = cohort_slot_ops(COHORT_SLOT_TASK);
	if (ops && ops->created)
		ops->created(parent, child, clone_flags);
	srcu_read_unlock(&cohort_srcu, idx);
}

void __cohort_task_exit(struct task_struct *tsk, long code)
{
	const struct cohort_task_ops *ops;
	int idx;

	idx = srcu_read_lock(&cohort_srcu);
	ops = cohort_slot_ops(COHORT_SLOT_TASK);
	if (ops && ops->exit)
		ops->exit(tsk, code);
	srcu_read_unlock(&cohort_srcu, idx);
}

void __cohort_task_exec(struct task_struct *tsk)
{
	const struct cohort_task_ops *ops;
	int idx;

	idx = srcu_read_lock(&cohort_srcu);
	ops = cohort_slot_ops(COHORT_SLOT_TASK);
	if (ops && ops->exec)
		ops->exec(tsk);
	srcu_read_unlock(&cohort_srcu, idx);
}

int __cohort_task_fork(u64 clone_flags)
{
	const struct cohort_task_ops *ops;
	int idx, ret = 0;

	idx = srcu_read_lock(&cohort_srcu);
	ops = cohort_slot_ops(COHORT_SLOT_TASK);
	if (ops && ops->fork)
		ret = ops->fork(clone_flags);
	srcu_read_unlock(&cohort_srcu, idx);
	return ret;
}

/*
 * The SRCU read section spans begin() to end(), so the module that saw
 * begin() is the one that sees end(), even if it unregisters in between.
 */
int __cohort_layout_begin(struct mm_struct *mm,
			  struct cohort_layout_change *chg)
{
	const struct cohort_layout_ops *ops;
	int ret;

	chg->srcu_idx = srcu_read_lock(&cohort_srcu);
	ops = cohort_slot_ops(COHORT_SLOT_LAYOUT);
	if (!ops || !ops->begin) {
		srcu_read_unlock(&cohort_srcu, chg->srcu_idx);
		return 0;
	}
	chg->private = NULL;
	ret = ops->begin(mm, chg);
	if (ret) {
		srcu_read_unlock(&cohort_srcu, chg->srcu_idx);
		return ret;
	}
	chg->begun = true;
	return 0;
}

void __cohort_layout_end(struct mm_struct *mm,
			 struct cohort_layout_change *chg, long result)
{
	const struct cohort_layout_ops *ops;

	ops = srcu_dereference(cohort_slots[COHORT_SLOT_LAYOUT].ops,
			       &cohort_srcu);
	/* begin() held the section, so the same table is still installed. */
	if (!WARN_ON_ONCE(!ops) && ops->end)
		ops->end(mm, chg, result);
	chg->begun = false;
	srcu_read_unlock(&cohort_srcu, chg->srcu_idx);
}

/*
 * The process layer sees a fault first: a page of a migrated task may have
 * to come from another node before the page layer or stock Linux can run.
 */
enum cohort_fault_action __cohort_fault(struct vm_area_struct *vma,
					unsigned long address,
					unsigned int flags,
					struct pt_regs *regs, vm_fault_t *ret)
{
	enum cohort_fault_action action = COHORT_FAULT_LOCAL;
	const struct cohort_migration_ops *mops;
	const struct cohort_fault_ops *ops;
	int idx;

	idx = srcu_read_lock(&cohort_srcu);
	mops = cohort_slot_ops(COHORT_SLOT_MIGRATION);
	if (mops && mops->fault) {
		action = mops->fault(vma, address, flags, regs, ret);
		if (action == COHORT_FAULT_HANDLED)
			goto out;
	}
	ops = cohort_slot_ops(COHORT_SLOT_FAULT);
	if (ops && ops->fault)
		action = ops->fault(vma, address, flags, regs, ret);
out:
	srcu_read_unlock(&cohort_srcu, idx);
	return action;
}

bool __cohort_syscall(struct pt_regs *regs, long nr)
{
	const struct cohort_migration_ops *ops;
	unsigned long args[6], orig[6];
	bool served = false;
	long ret = 0;
	int idx;

	syscall_get_arguments(current, regs, args);
	memcpy(orig, args, sizeof(orig));
	idx = srcu_read_lock(&cohort_srcu);
	ops = cohort_slot_ops(COHORT_SLOT_MIGRATION);
	if (ops && ops->syscall)
		served = ops->syscall(nr, args, &ret);
	srcu_read_unlock(&cohort_srcu, idx);
	if (served)
		syscall_set_return_value(current, regs, 0, ret);
	else if (memcmp(orig, args, sizeof(orig)))
		cohort_arch_set_syscall_args(regs, args);
	return served;
}

/*
 * The memory linker's address spaces. The process layer decides which
 * address spaces are linked to containers (those of migrated processes);
 * the page layer owns their pages. These calls reach the page layer
 * through its slot: the process layer cannot call another module.
 */

/**
 * cohort_mm_link - link the private memory of an address space to a container
 * @mm: the address space (a reference held by the caller)
 * @container: the container's cluster-wide id, or 0 for a new container
 *	homed at this node (the page layer chooses its id)
 * @active: the process uses this copy (else a shadow keeps it)
 *
 * Transparent huge pages are turned off in @mm for good: the page layer
 * keeps coherent copies of single pages, and a huge page made by a local
 * fault would map hundreds of pages no other node knows of.
 *
 * Return: the container's id (positive; 0 from a page layer that gave
 * none), -ENOPROTOOPT when no page layer is loaded, or the page layer's
 * errno.
 */
int cohort_mm_link(struct mm_struct *mm, u32 container, bool active)
{
	const struct cohort_fault_ops *ops;
	int idx, ret = -ENOPROTOOPT;

	set_bit(MMF_DISABLE_THP, &mm->flags);
	idx = srcu_read_lock(&cohort_srcu);
	ops = cohort_slot_ops(COHORT_SLOT_FAULT);
	if (ops && ops->link)
		ret = ops->link(mm, container, active);
	srcu_read_unlock(&cohort_srcu, idx);
	return ret;
}
EXPORT_SYMBOL_GPL(cohort_mm_link);

/**
 * cohort_container_unlink - end this node's link to a container
 * @container: the container's cluster-wide id
 * @destroy: release the container's pages on every node too
 *
 * May sleep.
 */
void cohort_container_unlink(u32 container, bool destroy)
{
	const struct cohort_fault_ops *ops;
	int idx;

	idx = srcu_read_lock(&cohort_srcu);
	ops = cohort_slot_ops(COHORT_SLOT_FAULT);
	if (ops && ops->unlink)
		ops->unlink(container, destroy);
	srcu_read_unlock(&cohort_srcu, idx);
}
EXPORT_SYMBOL_GPL(cohort_container_unlink);

/**
 * cohort_mm_release - release the pages of a range of a linked address space
 * @mm: the address space (a reference held by the caller)
 * @start: first address, page aligned
 * @end: one past the last, page aligned
 *
 * Every node drops its copies of the range's pages; a later access reads
 * zeros (anonymous memory) or the file. May sleep.
 *
 * Return: 0 (also for an address space that is not linked), or the page
 * layer's errno (-EHOSTDOWN when a node did not answer).
 */
int cohort_mm_release(struct mm_struct *mm, unsigned long start,
		      unsigned long end)
{
	const struct cohort_fault_ops *ops;
	int idx, ret = 0;

	idx = srcu_read_lock(&cohort_srcu);
	ops = cohort_slot_ops(COHORT_SLOT_FAULT);
	if (ops && ops->release)
		ret = ops->release(mm, start, end);
	srcu_read_unlock(&cohort_srcu, idx);
	return ret;
}
EXPORT_SYMBOL_GPL(cohort_mm_release);

/**
 * cohort_container_populate - bring every page of a container here
 * @container: the container current's address space is linked to
 *
 * Before a fork on a node that is not the container's home, so that the
 * child's copy of the address space is complete. May sleep.
 *
 * Return: 0, -ENOPROTOOPT when no page layer is loaded, or the page
 * layer's errno.
 */
int cohort_container_populate(u32 container)
{
	const struct cohort_fault_ops *ops;
	int idx, ret = -ENOPROTOOPT;

	idx = srcu_read_lock(&cohort_srcu);
	ops = cohort_slot_ops(COHORT_SLOT_FAULT);
	if (ops && ops->populate)
		ret = ops->populate(container);
	srcu_read_unlock(&cohort_srcu, idx);
	return ret;
}
EXPORT_SYMBOL_GPL(cohort_container_populate);

/**
 * cohort_container_counts - pages of a container this node moved
 * @container: the container
 * @fetched: set to the pages it received since the last call
 * @served: set to the pages it sent since the last call
 *
 * Both are 0 when no page layer is loaded or nothing is linked.
 */
void cohort_container_counts(u32 container, u64 *fetched, u64 *served)
{
	const struct cohort_fault_ops *ops;
	int idx;

	*fetched = 0;
	*served = 0;
	idx = srcu_read_lock(&cohort_srcu);
	ops = cohort_slot_ops(COHORT_SLOT_FAULT);
	if (ops && ops->counts)
		ops->counts(container, fetched, served);
	srcu_read_unlock(&cohort_srcu, idx);
}
EXPORT_SYMBOL_GPL(cohort_container_counts);

/*
 * SysV shared memory: only the initial IPC namespace is the cluster's, and
 * only segments in shmem (not SHM_HUGETLB) can be linked.
 */
int __cohort_shmget(struct ipc_namespace *ns, key_t key, size_t *size,
		    int *shmflg)
{
	const struct cohort_fault_ops *ops;
	int idx, ret = 0;

	if (ns != &init_ipc_ns || key == IPC_PRIVATE || (*shmflg & SHM_HUGETLB))
		return 0;
	idx = srcu_read_lock(&cohort_srcu);
	ops = cohort_slot_ops(COHORT_SLOT_FAULT);
	if (ops && ops->shmget)
		ret = ops->shmget(key, size, shmflg);
	srcu_read_unlock(&cohort_srcu, idx);
	return ret;
}

void __cohort_shm_created(struct ipc_namespace *ns, key_t key, int shmid,
			  struct file *file, struct kern_ipc_perm *perm)
{
	struct cohort_shm_owner owner = {};
	const struct cohort_fault_ops *ops;
	kuid_t uid;
	kgid_t gid;
	int idx;

	if (ns != &init_ipc_ns || key == IPC_PRIVATE ||
	    !cohort_file_is_linkable(file))
		return;
	idx = srcu_read_lock(&cohort_srcu);
	ops = cohort_slot_ops(COHORT_SLOT_FAULT);
	if (ops && ops->shm_created)
		ops->shm_created(key, shmid, file, &owner);
	srcu_read_unlock(&cohort_srcu, idx);
	if (!owner.set)
		return;
	/* The segment of the key elsewhere: its owner and mode here too. */
	uid = make_kuid(&init_user_ns, owner.uid);
	gid = make_kgid(&init_user_ns, owner.gid);
	if (!uid_valid(uid) || !gid_valid(gid))
		return;
	spin_lock(&perm->lock);
	perm->uid = uid;
	perm->cuid = uid;
	perm->gid = gid;
	perm->cgid = gid;
	perm->mode = (perm->mode & ~0777) | (owner.mode & 0777);
	spin_unlock(&perm->lock);
}

struct file *__cohort_shm_removing(struct ipc_namespace *ns,
				   struct file *file)
{
	if (ns != &init_ipc_ns || !cohort_file_is_linkable(file))
		return NULL;
	return get_file(file);
}

void __cohort_shm_removed(struct file *file)
{
	const struct cohort_fault_ops *ops;
	int idx;

	idx = srcu_read_lock(&cohort_srcu);
	ops = cohort_slot_ops(COHORT_SLOT_FAULT);
	if (ops && ops->shm_removed)
		ops->shm_removed(file);
	srcu_read_unlock(&cohort_srcu, idx);
	fput(file);
}

/**
 * cohort_vma_wants_writenotify - whether a shared mapping must write-fault
 * @vma: a shared writable mapping (vma_wants_writenotify())
 *
 * Pages of anonymous shared regions and SysV segments may be copies the
 * page layer keeps coherent between nodes: a read copy must never become
 * writable without a fault (mprotect() rebuilds PTEs from vm_page_prot).
 * True for every such mapping, with or without a page layer loaded, so
 * that vm_page_prot does not depend on when the mapping was made.
 *
 * Return: true when @vma maps such memory.
 */
bool cohort_vma_wants_writenotify(struct vm_area_struct *vma)
{
	return cohort_vma_shared_file(vma);
}
