// SPDX-License-Identifier: GPL-2.0
/*
 * Cohort hub: the out-of-line halves of the hooks in <linux/cohort.h>.
 * Each runs only once a module registered for its slot (the inline half
 * tests the slot's static key) and calls the module inside an SRCU read
 * section, so the module may sleep and cannot go away underneath the call.
 */

#include <asm/syscall.h>

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
