/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _KERNEL_COHORT_INTERNAL_H
#define _KERNEL_COHORT_INTERNAL_H

#include <linux/cohort.h>
#include <linux/percpu.h>
#include <linux/srcu.h>

extern struct srcu_struct cohort_srcu;

/**
 * struct cohort_slot_state - one registered ops table
 * @ops: the table, or NULL; read under cohort_srcu
 */
struct cohort_slot_state {
	const void __rcu *ops;
};

extern struct cohort_slot_state cohort_slots[COHORT_NR_SLOTS];

DECLARE_PER_CPU(unsigned long, cohort_calls[COHORT_NR_SLOTS]);

/* Fetch the ops of @slot inside an SRCU read section and count the call. */
static inline const void *cohort_slot_ops(enum cohort_slot slot)
{
	const void *ops = srcu_dereference(cohort_slots[slot].ops, &cohort_srcu);

	if (ops)
		this_cpu_inc(cohort_calls[slot]);
	return ops;
}

struct kobject;
int cohort_policy_init(struct kobject *kobj);

struct cred;
struct group_info;
int cohort_creds_fill(struct cred *new, const struct cohort_creds *c);
struct group_info *cohort_groups_make(const u32 *gids, unsigned long nr);

#endif /* _KERNEL_COHORT_INTERNAL_H */
