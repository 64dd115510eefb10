// SPDX-License-Identifier: GPL-2.0
/*
 * Cohort hub: node identity, the ops registry and its sysfs view.
 *
 * /sys/kernel/cohort/node_id	this node's id (cohort.node_id=)
 * /sys/kernel/cohort/nr_nodes	cluster size (cohort.nr_nodes=)
 * /sys/kernel/cohort/peers	"<node> <IPv4>" per node (cohort.peers=)
 * /sys/kernel/cohort/ops	"<slot> <owner> <calls>" per slot
 */
#define pr_fmt(fmt) "cohort: " fmt

#include <linux/inet.h>
#include <linux/init.h>
#include <linux/kobject.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/mutex.h>
#include <linux/string.h>
#include <linux/sysfs.h>

#include "internal.h"

#undef MODULE_PARAM_PREFIX
#define MODULE_PARAM_PREFIX "cohort."

static unsigned int node_id;
static unsigned int nr_nodes = 1;
module_param(node_id, uint, 0444);
MODULE_PARM_DESC(node_id, "This node's id, 0 to nr_nodes - 1");
module_param(nr_nodes, uint, 0444);
MODULE_PARM_DESC(nr_nodes, "Number of nodes in the cluster");
static char *peers;
module_param(peers, charp, 0444);
MODULE_PARM_DESC(peers, "IPv4 address of every node, in node order, comma-separated");
static ushort port = 7777;
module_param(port, ushort, 0444);
MODULE_PARM_DESC(port, "TCP port the message transport listens on");

/* Parsed cohort.peers=; valid when peers_valid. */
static __be32 peer_addrs[COHORT_MAX_NODES];
static bool peers_valid;

/* False when the command line gave an impossible identity. */
static bool identity_valid = true;

DEFINE_SRCU(cohort_srcu);
struct cohort_slot_state cohort_slots[COHORT_NR_SLOTS];
DEFINE_PER_CPU(unsigned long, cohort_calls[COHORT_NR_SLOTS]);
struct static_key_false cohort_slot_keys[COHORT_NR_SLOTS] = {
	[0 ... COHORT_NR_SLOTS - 1] = STATIC_KEY_FALSE_INIT,
};

/* Serialises registration; owner names are read and written under it. */
static DEFINE_MUTEX(registry_lock);
static char slot_owner[COHORT_NR_SLOTS][MODULE_NAME_LEN];

static const char *const slot_names[COHORT_NR_SLOTS] = {
	[COHORT_SLOT_TASK] = "task",
	[COHORT_SLOT_LAYOUT] = "layout",
	[COHORT_SLOT_FAULT] = "fault",
	[COHORT_SLOT_PCNTL] = "pcntl",
	[COHORT_SLOT_MSG] = "msg",
	[COHORT_SLOT_MIGRATION] = "migration",
	[COHORT_SLOT_FILES] = "files",
};

/**
 * cohort_node_id - this node's id
 */
unsigned int cohort_node_id(void)
{
	return node_id;
}
EXPORT_SYMBOL_GPL(cohort_node_id);

/**
 * cohort_nr_nodes - number of nodes in the cluster
 */
unsigned int cohort_nr_nodes(void)
{
	return nr_nodes;
}
EXPORT_SYMBOL_GPL(cohort_nr_nodes);

/**
 * cohort_peer_addr - a node's IPv4 address, from cohort.peers=
 * @node: node id
 * @addr: where to store the address (network byte order)
 *
 * Return: 0, -EINVAL for a node out of range, -ENOENT when cohort.peers= is
 * missing or invalid.
 */
int cohort_peer_addr(unsigned int node, __be32 *addr)
{
	if (node >= nr_nodes)
		return -EINVAL;
	if (!peers_valid)
		return -ENOENT;
	*addr = peer_addrs[node];
	return 0;
}
EXPORT_SYMBOL_GPL(cohort_peer_addr);

/**
 * cohort_port - TCP port of the message transport, from cohort.port=
 */
u16 cohort_port(void)
{
	return port;
}
EXPORT_SYMBOL_GPL(cohort_port);

/**
 * cohort_node_online - whether a node is up
 * @node: node id
 *
 * This node is always up; others are up when the message transport says so.
 */
bool cohort_node_online(unsigned int node)
{
	const struct cohort_msg_ops *ops;
	bool online = false;
	int idx;

	if (node >= nr_nodes)
		return false;
	if (node == node_id)
		return true;
	idx = srcu_read_lock(&cohort_srcu);
	ops = srcu_dereference(cohort_slots[COHORT_SLOT_MSG].ops, &cohort_srcu);
	if (ops && ops->peer_online)
		online = ops->peer_online(node);
	srcu_read_unlock(&cohort_srcu, idx);
	return online;
}
EXPORT_SYMBOL_GPL(cohort_node_online);

/*
 * Whether this kernel ever calls into @slot: the hook sites and pcntl(2) can
 * be configured out, and a module registered where nothing calls it would
 * believe it works.
 */
static bool slot_built(enum cohort_slot slot)
{
	switch (slot) {
	case COHORT_SLOT_TASK:
	case COHORT_SLOT_LAYOUT:
	case COHORT_SLOT_FAULT:
	case COHORT_SLOT_MIGRATION:
		return IS_ENABLED(CONFIG_COHORT_HOOKS);
	case COHORT_SLOT_PCNTL:
		return IS_ENABLED(CONFIG_COHORT_PCNTL);
	default:
		return true;
	}
}

/**
 * cohort_register - install an ops table in a slot
 * @slot: which slot
 * @ops: the table, of the type the slot takes; must outlive the registration
 * @owner: the registering module's name, shown in /sys/kernel/cohort/ops
 *
 * Return: 0, -EINVAL for a bad argument or an invalid node identity, -EBUSY
 * when another table holds the slot, -EOPNOTSUPP when this kernel was built
 * without what calls into the slot (CONFIG_COHORT_HOOKS, CONFIG_COHORT_PCNTL).
 */
int cohort_register(enum cohort_slot slot, const void *ops, const char *owner)
{
	int ret = 0;

	if (slot >= COHORT_NR_SLOTS || !ops || !owner || !*owner)
		return -EINVAL;
	if (!slot_built(slot)) {
		pr_err("%s: refusing %s ops: this kernel never calls them\n",
		       owner, slot_names[slot]);
		return -EOPNOTSUPP;
	}
	if (!identity_valid) {
		pr_err("%s: refusing %s ops: invalid node identity %u of %u\n",
		       owner, slot_names[slot], node_id, nr_nodes);
		return -EINVAL;
	}

	mutex_lock(&registry_lock);
	if (rcu_access_pointer(cohort_slots[slot].ops)) {
		pr_err("%s: %s ops already registered by %s\n", owner,
		       slot_names[slot], slot_owner[slot]);
		ret = -EBUSY;
		goto out;
	}
	strscpy(slot_owner[slot], owner, sizeof(slot_owner[slot]));
	rcu_assign_pointer(cohort_slots[slot].ops, ops);
	static_branch_enable(&cohort_slot_keys[slot]);
	pr_info("%s registered %s ops\n", owner, slot_names[slot]);
out:
	mutex_unlock(&registry_lock);
	return ret;
}
EXPORT_SYMBOL_GPL(cohort_register);

/**
 * cohort_unregister - remove an ops table from its slot
 * @slot: the slot it was registered in
 * @ops: the table passed to cohort_register()
 *
 * Waits until no call into @ops is in flight; may sleep.
 */
void cohort_unregister(enum cohort_slot slot, const void *ops)
{
	if (slot >= COHORT_NR_SLOTS)
		return;

	mutex_lock(&registry_lock);
	if (rcu_access_pointer(cohort_slots[slot].ops) != ops) {
		pr_err("unregistering %s ops that are not registered\n",
		       slot_names[slot]);
		goto out;
	}
	static_branch_disable(&cohort_slot_keys[slot]);
	rcu_assign_pointer(cohort_slots[slot].ops, NULL);
	synchronize_srcu(&cohort_srcu);
	pr_info("%s unregistered %s ops\n", slot_owner[slot], slot_names[slot]);
	slot_owner[slot][0] = '\0';
out:
	mutex_unlock(&registry_lock);
}
EXPORT_SYMBOL_GPL(cohort_unregister);

static ssize_t node_id_show(struct kobject *kobj, struct kobj_attribute *attr,
			    char *buf)
{
	return sysfs_emit(buf, "%u\n", node_id);
}

static ssize_t nr_nodes_show(struct kobject *kobj, struct kobj_attribute *attr,
			     char *buf)
{
	return sysfs_emit(buf, "%u\n", nr_nodes);
}

static ssize_t ops_show(struct kobject *kobj, struct kobj_attribute *attr,
			char *buf)
{
	ssize_t len = 0;
	int slot, cpu;

	mutex_lock(&registry_lock);
	for (slot = 0; slot < COHORT_NR_SLOTS; slot++) {
		unsigned long calls = 0;

		for_each_possible_cpu(cpu)
			calls += per_cpu(cohort_calls[slot], cpu);
		len += sysfs_emit_at(buf, len, "%s %s %lu\n", slot_names[slot],
				     slot_owner[slot][0] ? slot_owner[slot] : "-",
				     calls);
	}
	mutex_unlock(&registry_lock);
	return len;
}

static ssize_t peers_show(struct kobject *kobj, struct kobj_attribute *attr,
			  char *buf)
{
	ssize_t len = 0;
	unsigned int node;

	if (!peers_valid)
		return 0;
	for (node = 0; node < nr_nodes; node++)
		len += sysfs_emit_at(buf, len, "%u %pI4\n", node,
				     &peer_addrs[node]);
	return len;
}

static struct kobj_attribute node_id_attr = __ATTR_RO(node_id);
static struct kobj_attribute nr_nodes_attr = __ATTR_RO(nr_nodes);
static struct kobj_attribute peers_attr = __ATTR_RO(peers);
static struct kobj_attribute ops_attr = __ATTR_RO(ops);

static struct attribute *cohort_attrs[] = {
	&node_id_attr.attr,
	&nr_nodes_attr.attr,
	&peers_attr.attr,
	&ops_attr.attr,
	NULL,
};

static const struct attribute_group cohort_attr_group = {
	.attrs = cohort_attrs,
};

/* Parse cohort.peers=: exactly nr_nodes dotted-quad addresses. */
static void __init parse_peers(void)
{
	const char *p = peers, *end = "";
	unsigned int node = 0;

	if (!p || !*p)
		return;
	while (node < nr_nodes) {
		if (!in4_pton(p, -1, (u8 *)&peer_addrs[node], ',', &end))
			goto bad;
		node++;
		if (*end == '\0')
			break;
		p = end + 1;
	}
	if (node != nr_nodes || *end != '\0')
		goto bad;
	peers_valid = true;
	return;
bad:
	pr_err("invalid cohort.peers=%s: need %u comma-separated IPv4 addresses\n",
	       peers, nr_nodes);
}

static int __init cohort_init(void)
{
	struct kobject *kobj;
	int ret;

	if (nr_nodes == 0 || nr_nodes > COHORT_MAX_NODES ||
	    node_id >= nr_nodes) {
		pr_err("invalid identity: cohort.node_id=%u cohort.nr_nodes=%u (at most %u nodes); modules will not register\n",
		       node_id, nr_nodes, COHORT_MAX_NODES);
		identity_valid = false;
	} else {
		pr_info("node %u of %u\n", node_id, nr_nodes);
		parse_peers();
	}

	kobj = kobject_create_and_add("cohort", kernel_kobj);
	if (!kobj)
		return -ENOMEM;
	ret = sysfs_create_group(kobj, &cohort_attr_group);
	if (!ret)
		ret = cohort_policy_init(kobj);
	if (ret)
		kobject_put(kobj);
	return ret;
}
subsys_initcall(cohort_init);
