// SPDX-License-Identifier: GPL-2.0
/*
 * Cohort hub: the node's admission policy for processes that migrate, as
 * OSF/1 AD's destinations that may refuse. Settings in /sys/kernel/cohort:
 *
 * accept		1: take incoming processes; 0: refuse every one
 * max_load		refuse while more tasks than this are runnable (0: no limit)
 * min_free_kb		refuse while less memory than this is available (0: none)
 * accept_uids		uids whose processes may come, space-separated (empty:
 *			any; at most COHORT_MAX_ACCEPT_UIDS)
 * migration_policy	"any": a process that said neither PCNTL_ALLOW nor
 *			PCNTL_FORBID may be moved by whoever may signal it;
 *			"opt-in": only by its own request
 *
 * The process layer asks cohort_admission() when a process arrives and
 * cohort_policy_opt_in() when one is to leave.
 */
#include <linux/capability.h>
#include <linux/cohort.h>
#include <linux/cpumask.h>
#include <linux/kobject.h>
#include <linux/mm.h>
#include <linux/sched/loadavg.h>
#include <linux/sched/signal.h>
#include <linux/sched/stat.h>
#include <linux/spinlock.h>
#include <linux/string.h>
#include <linux/sysfs.h>

#include "internal.h"

/* Most uids accept_uids lists. */
#define COHORT_MAX_ACCEPT_UIDS	32

static DEFINE_SPINLOCK(policy_lock);

/* Protected by policy_lock. */
static bool accept = true;
static bool opt_in;
static unsigned int max_load;
static unsigned long min_free_kb;
static u32 accept_uids[COHORT_MAX_ACCEPT_UIDS];
static unsigned int nr_accept_uids;

static unsigned long available_kb(void)
{
	return si_mem_available() << (PAGE_SHIFT - 10);
}

/**
 * cohort_admission - whether this node takes a process now
 * @uid: the process's real uid (initial user namespace)
 *
 * Return: 0 when it does, else the PCNTL_NODE_REFUSE_* reasons it does
 * not (a uid refused by accept_uids counts as PCNTL_NODE_REFUSE_ADMIN).
 */
u32 cohort_admission(u32 uid)
{
	unsigned int limit, i;
	unsigned long min_kb;
	u32 why = 0;

	spin_lock(&policy_lock);
	if (!accept)
		why |= PCNTL_NODE_REFUSE_ADMIN;
	if (nr_accept_uids) {
		bool listed = false;

		for (i = 0; i < nr_accept_uids; i++)
			listed |= accept_uids[i] == uid;
		if (!listed)
			why |= PCNTL_NODE_REFUSE_ADMIN;
	}
	limit = max_load;
	min_kb = min_free_kb;
	spin_unlock(&policy_lock);
	if (limit && nr_running() > limit)
		why |= PCNTL_NODE_REFUSE_LOAD;
	if (min_kb && available_kb() < min_kb)
		why |= PCNTL_NODE_REFUSE_MEM;
	return why;
}
EXPORT_SYMBOL_GPL(cohort_admission);

/**
 * cohort_policy_opt_in - whether migration_policy is "opt-in"
 *
 * Return: true when only processes that said PCNTL_ALLOW may be moved by
 * others.
 */
bool cohort_policy_opt_in(void)
{
	return READ_ONCE(opt_in);
}
EXPORT_SYMBOL_GPL(cohort_policy_opt_in);

/**
 * cohort_node_info - this node's load and admission state
 * @info: filled in but for nr_distributed, which the process layer knows
 */
void cohort_node_info(struct pcntl_node_info *info)
{
	struct task_struct *p;
	u32 procs = 0;

	memset(info, 0, sizeof(*info));
	info->size = sizeof(*info);
	info->node = cohort_node_id();
	info->flags = cohort_admission(U32_MAX);
	spin_lock(&policy_lock);
	/* U32_MAX is in no list: say whether anyone is refused for a uid. */
	if (nr_accept_uids) {
		info->flags &= ~PCNTL_NODE_REFUSE_ADMIN;
		info->flags |= PCNTL_NODE_UID_LIST;
	}
	if (!accept)
		info->flags |= PCNTL_NODE_REFUSE_ADMIN;
	if (opt_in)
		info->flags |= PCNTL_NODE_OPT_IN;
	info->max_load = max_load;
	info->min_free_kb = min_free_kb;
	spin_unlock(&policy_lock);
	if (!(info->flags & (PCNTL_NODE_REFUSE_ADMIN | PCNTL_NODE_REFUSE_LOAD |
			     PCNTL_NODE_REFUSE_MEM)))
		info->flags |= PCNTL_NODE_ACCEPTS;
	info->nr_cpus = num_online_cpus();
	info->nr_running = nr_running();
	info->load1_milli = ((u64)avenrun[0] * 1000) >> FSHIFT;
	info->free_kb = available_kb();
	info->total_kb = totalram_pages() << (PAGE_SHIFT - 10);
	rcu_read_lock();
	for_each_process(p)
		if (!(p->flags & PF_KTHREAD))
			procs++;
	rcu_read_unlock();
	info->nr_procs = procs;
}
EXPORT_SYMBOL_GPL(cohort_node_info);

static ssize_t accept_show(struct kobject *kobj, struct kobj_attribute *attr,
			   char *buf)
{
	return sysfs_emit(buf, "%d\n", READ_ONCE(accept));
}

static ssize_t accept_store(struct kobject *kobj, struct kobj_attribute *attr,
			    const char *buf, size_t len)
{
	bool v;
	int ret = kstrtobool(buf, &v);

	if (ret)
		return ret;
	spin_lock(&policy_lock);
	accept = v;
	spin_unlock(&policy_lock);
	pr_info("node %s incoming processes\n", v ? "accepts" : "refuses");
	return len;
}

static ssize_t max_load_show(struct kobject *kobj, struct kobj_attribute *attr,
			     char *buf)
{
	return sysfs_emit(buf, "%u\n", READ_ONCE(max_load));
}

static ssize_t max_load_store(struct kobject *kobj,
			      struct kobj_attribute *attr, const char *buf,
			      size_t len)
{
	unsigned int v;
	int ret = kstrtouint(buf, 0, &v);

	if (ret)
		return ret;
	spin_lock(&policy_lock);
	max_load = v;
	spin_unlock(&policy_lock);
	return len;
}

static ssize_t min_free_kb_show(struct kobject *kobj,
				struct kobj_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%lu\n", READ_ONCE(min_free_kb));
}

static ssize_t min_free_kb_store(struct kobject *kobj,
				 struct kobj_attribute *attr, const char *buf,
				 size_t len)
{
	unsigned long v;
	int ret = kstrtoul(buf, 0, &v);

	if (ret)
		return ret;
	spin_lock(&policy_lock);
	min_free_kb = v;
	spin_unlock(&policy_lock);
	return len;
}

static ssize_t accept_uids_show(struct kobject *kobj,
				struct kobj_attribute *attr, char *buf)
{
	u32 uids[COHORT_MAX_ACCEPT_UIDS];
	unsigned int n, i;
	ssize_t len = 0;

	spin_lock(&policy_lock);
	n = nr_accept_uids;
	memcpy(uids, accept_uids, n * sizeof(uids[0]));
	spin_unlock(&policy_lock);
	for (i = 0; i < n; i++)
		len += sysfs_emit_at(buf, len, "%s%u", i ? " " : "", uids[i]);
	return len + sysfs_emit_at(buf, len, "\n");
}

/* "uid uid ..." (spaces, commas or newlines between); empty clears. */
static ssize_t accept_uids_store(struct kobject *kobj,
				 struct kobj_attribute *attr, const char *buf,
				 size_t len)
{
	u32 uids[COHORT_MAX_ACCEPT_UIDS];
	char word[12];
	unsigned int n = 0;
	const char *p = buf, *end = buf + len;

	while (p < end) {
		size_t w = 0;

		while (p < end && (*p == ' ' || *p == ',' || *p == '\n' ||
				   *p == '\t'))
			p++;
		while (p + w < end && !strchr(" ,\n\t", p[w]))
			w++;
		if (!w)
			break;
		if (w >= sizeof(word) || n == COHORT_MAX_ACCEPT_UIDS)
			return -EINVAL;
		memcpy(word, p, w);
		word[w] = '\0';
		if (kstrtou32(word, 10, &uids[n]) || uids[n] == U32_MAX)
			return -EINVAL;
		n++;
		p += w;
	}
	spin_lock(&policy_lock);
	memcpy(accept_uids, uids, n * sizeof(uids[0]));
	nr_accept_uids = n;
	spin_unlock(&policy_lock);
	return len;
}

static ssize_t migration_policy_show(struct kobject *kobj,
				     struct kobj_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%s\n", READ_ONCE(opt_in) ? "opt-in" : "any");
}

static ssize_t migration_policy_store(struct kobject *kobj,
				      struct kobj_attribute *attr,
				      const char *buf, size_t len)
{
	bool v;

	if (sysfs_streq(buf, "any"))
		v = false;
	else if (sysfs_streq(buf, "opt-in"))
		v = true;
	else
		return -EINVAL;
	WRITE_ONCE(opt_in, v);
	pr_info("migration policy: %s\n", v ? "opt-in" : "any");
	return len;
}

static struct kobj_attribute accept_attr = __ATTR_RW_MODE(accept, 0644);
static struct kobj_attribute max_load_attr = __ATTR_RW_MODE(max_load, 0644);
static struct kobj_attribute min_free_kb_attr =
	__ATTR_RW_MODE(min_free_kb, 0644);
static struct kobj_attribute accept_uids_attr =
	__ATTR_RW_MODE(accept_uids, 0644);
static struct kobj_attribute migration_policy_attr =
	__ATTR_RW_MODE(migration_policy, 0644);

static struct attribute *policy_attrs[] = {
	&accept_attr.attr,
	&max_load_attr.attr,
	&min_free_kb_attr.attr,
	&accept_uids_attr.attr,
	&migration_policy_attr.attr,
	NULL,
};

static const struct attribute_group policy_attr_group = {
	.attrs = policy_attrs,
};

/**
 * cohort_policy_init - add the policy's files to /sys/kernel/cohort
 * @kobj: the hub's kobject
 *
 * Return: 0 or a negative errno.
 */
int __init cohort_policy_init(struct kobject *kobj)
{
	return sysfs_create_group(kobj, &policy_attr_group);
}
