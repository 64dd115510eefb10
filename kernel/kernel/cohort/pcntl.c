// SPDX-License-Identifier: GPL-2.0
/*
 * Cohort hub: the pcntl(2) system call, served by the module that registered
 * the pcntl slot (the process layer, popcorn.ko).
 */
#include <linux/syscalls.h>

#include "internal.h"

/**
 * sys_pcntl - control where processes run in a Cohort cluster
 * @cmd: a PCNTL_* command from <uapi/linux/cohort.h>
 * @a0: first argument of @cmd
 * @a1: second argument of @cmd
 * @a2: third argument of @cmd
 *
 * Return: as the command says; -ENOSYS while no process layer is loaded.
 */
SYSCALL_DEFINE4(pcntl, unsigned int, cmd, unsigned long, a0,
		unsigned long, a1, unsigned long, a2)
{
	const struct cohort_pcntl_ops *ops;
	long ret = -ENOSYS;
	int idx;

	idx = srcu_read_lock(&cohort_srcu);
	ops = cohort_slot_ops(COHORT_SLOT_PCNTL);
	if (ops && ops->pcntl)
		ret = ops->pcntl(cmd, a0, a1, a2);
	srcu_read_unlock(&cohort_srcu, idx);
	return ret;
}
