// SPDX-License-Identifier: GPL-2.0
/*
 * Cohort hub: node identity, the ops registry and its sysfs view.
 *
 * /sys/kernel/cohort/node_id	this node's id (cohort.node_id=)
 * /sys/kernel/cohort/nr_nodes	cluster size (cohort.nr_nodes=)
 * /sys/kernel/cohort/peers	"<node> <address>" per node (cohort.peers=)
 * /sys/kernel/cohort/port	the transport's TCP port (cohort.port=)
 * /sys/kernel/cohort/ops	"<slot> <owner> <calls>" per slot
 *
 * The identity comes from the kernel command line, or is written at run
 * time by root to /sys/module/cohort/parameters/{node_id,nr_nodes,peers,
 * port} (the cohort-node tool applies /etc/cohort/cohort.conf so), while
 * no module has an ops table registered: modules read it when they load,
 * so a write then fails with EBUSY. Each value is checked when written;
 * node_id < nr_nodes when a module registers, one address per node when
 * the transport asks for one.
 */
#define pr_fmt(fmt) "cohort: " fmt

#include <linux/inet.h>
#include <linux/init.h>
#include <linux/kobject.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/mutex.h>
#include <linux/socket.h>
#include <linux/spinlock.h>
#include <linux/string.h>
#include <linux/sysfs.h>

#include "internal.h"

#undef MODULE_PARAM_PREFIX
#define MODULE_PARAM_PREFIX "cohort."

/* Longest cohort.peers=: every node a bracketed IPv6 address and a comma. */
#define PEERS_TEXT_LEN	(COHORT_MAX_NODES * (INET6_ADDRSTRLEN + 3))

/*
 * Protects the identity below and identity_users. A spinlock: the command
 * line sets the identity before the scheduler runs.
 */
static DEFINE_SPINLOCK(identity_lock);
/* Ops tables registered; the identity is fixed while there are any. */
static unsigned int identity_users;
static unsigned int node_id;
static unsigned int nr_nodes = 1;
static u16 port = 7777;
/* How long a peer may stay silent before the transport declares it down. */
static unsigned int heartbeat_timeout_ms = COHORT_HEARTBEAT_TIMEOUT_DEFAULT_MS;
/* cohort.peers= as given, and parsed: nr_peers addresses of one family. */
static char peers_text[PEERS_TEXT_LEN];
static struct cohort_ip peer_addrs[COHORT_MAX_NODES];
static unsigned int nr_peers;
/* Set once the hub is up: later changes are logged. */
static bool identity_booted;
/*
 * The parameters (IDENTITY_*) the command line gave a bad value for: the
 * identity is invalid until each is written right at run time.
 */
static unsigned int identity_bad;
#define IDENTITY_NODE_ID	BIT(0)
#define IDENTITY_NR_NODES	BIT(1)
#define IDENTITY_PEERS		BIT(2)
#define IDENTITY_PORT		BIT(3)

/* A value for @bit was refused: at boot, the identity stays invalid. */
static int identity_refused(unsigned int bit)
{
	if (!READ_ONCE(identity_booted)) {
		spin_lock(&identity_lock);
		identity_bad |= bit;
		spin_unlock(&identity_lock);
	}
	return -EINVAL;
}

/*
 * identity_busy - whether the identity is in use; logs the refusal.
 * Called with identity_lock held.
 */
static int identity_busy(const char *name)
{
	lockdep_assert_held(&identity_lock);
	if (!identity_users)
		return 0;
	pr_warn("cannot change cohort.%s while %u ops table(s) are registered: unload kmsg and the modules above it first\n",
		name, identity_users);
	return -EBUSY;
}

/* Parse a number for @name in [@min, @max]; logs a bad value. */
static int identity_uint(const char *name, const char *val, unsigned int min,
			 unsigned int max, unsigned int *out)
{
	int ret = kstrtouint(val, 0, out);

	if (ret || *out < min || *out > max) {
		pr_err("invalid cohort.%s=%.*s: need %u to %u\n", name,
		       (int)strcspn(val, "\n"), val, min, max);
		return -EINVAL;
	}
	return 0;
}

static int node_id_set(const char *val, const struct kernel_param *kp)
{
	unsigned int v;
	int ret;

	ret = identity_uint("node_id", val, 0, COHORT_MAX_NODES - 1, &v);
	if (ret)
		return identity_refused(IDENTITY_NODE_ID);
	spin_lock(&identity_lock);
	ret = identity_busy("node_id");
	if (!ret) {
		identity_bad &= ~IDENTITY_NODE_ID;
		WRITE_ONCE(node_id, v);
	}
	spin_unlock(&identity_lock);
	if (!ret && READ_ONCE(identity_booted))
		pr_info("cohort.node_id set to %u\n", v);
	return ret;
}

static int nr_nodes_set(const char *val, const struct kernel_param *kp)
{
	unsigned int v;
	int ret;

	ret = identity_uint("nr_nodes", val, 1, COHORT_MAX_NODES, &v);
	if (ret)
		return identity_refused(IDENTITY_NR_NODES);
	spin_lock(&identity_lock);
	ret = identity_busy("nr_nodes");
	if (!ret) {
		identity_bad &= ~IDENTITY_NR_NODES;
		WRITE_ONCE(nr_nodes, v);
	}
	spin_unlock(&identity_lock);
	if (!ret && READ_ONCE(identity_booted))
		pr_info("cohort.nr_nodes set to %u\n", v);
	return ret;
}

static int port_set(const char *val, const struct kernel_param *kp)
{
	unsigned int v;
	int ret;

	ret = identity_uint("port", val, 1, U16_MAX, &v);
	if (ret)
		return identity_refused(IDENTITY_PORT);
	spin_lock(&identity_lock);
	ret = identity_busy("port");
	if (!ret) {
		identity_bad &= ~IDENTITY_PORT;
		WRITE_ONCE(port, v);
	}
	spin_unlock(&identity_lock);
	if (!ret && READ_ONCE(identity_booted))
		pr_info("cohort.port set to %u\n", v);
	return ret;
}

/*
 * parse_ip - one address of cohort.peers=, @len bytes at @s: dotted IPv4,
 * or IPv6, bracketed or not.
 */
static bool parse_ip(const char *s, size_t len, struct cohort_ip *ip)
{
	const char *end;

	memset(ip, 0, sizeof(*ip));
	if (len >= 2 && s[0] == '[' && s[len - 1] == ']') {
		s++;
		len -= 2;
		ip->family = AF_INET6;
	} else if (memchr(s, ':', len)) {
		ip->family = AF_INET6;
	} else {
		ip->family = AF_INET;
	}
	if (!len)
		return false;
	if (ip->family == AF_INET6)
		return in6_pton(s, len, ip->addr, -1, &end) && end == s + len;
	return in4_pton(s, len, ip->addr, -1, &end) && end == s + len;
}

/*
 * parse_peers - parse @text into @addrs: up to COHORT_MAX_NODES addresses
 * of one family, comma-separated; "" is no list.
 * Return: the number of addresses, or a negative errno (logged).
 */
static int parse_peers(const char *text, struct cohort_ip *addrs)
{
	const char *p = text, *comma;
	unsigned int n = 0;
	size_t len;

	if (!*text)
		return 0;
	for (;;) {
		comma = strchr(p, ',');
		len = comma ? comma - p : strlen(p);
		if (n == COHORT_MAX_NODES) {
			pr_err("invalid cohort.peers=%s: more than %u addresses\n",
			       text, COHORT_MAX_NODES);
			return -EINVAL;
		}
		if (!parse_ip(p, len, &addrs[n])) {
			pr_err("invalid cohort.peers=%s: '%.*s' is not an IPv4 or IPv6 address\n",
			       text, (int)len, p);
			return -EINVAL;
		}
		if (addrs[n].family != addrs[0].family) {
			pr_err("invalid cohort.peers=%s: IPv4 and IPv6 addresses mixed\n",
			       text);
			return -EINVAL;
		}
		n++;
		if (!comma)
			return n;
		p = comma + 1;
	}
}

static int peers_set(const char *val, const struct kernel_param *kp)
{
	/* Parsed here before taking the lock; writes are serialised by the
	 * kernel's parameter lock (and happen one at a time at boot).
	 */
	static struct cohort_ip parsed[COHORT_MAX_NODES];
	static char text[PEERS_TEXT_LEN];
	char *t;
	int n, ret;

	if (strscpy(text, val, sizeof(text)) < 0) {
		pr_err("invalid cohort.peers=: longer than %zu bytes\n",
		       sizeof(text) - 1);
		return identity_refused(IDENTITY_PEERS);
	}
	t = strim(text);
	n = parse_peers(t, parsed);
	if (n < 0)
		return identity_refused(IDENTITY_PEERS);
	spin_lock(&identity_lock);
	ret = identity_busy("peers");
	if (!ret) {
		identity_bad &= ~IDENTITY_PEERS;
		strscpy(peers_text, t, sizeof(peers_text));
		memcpy(peer_addrs, parsed, sizeof(peer_addrs));
		nr_peers = n;
	}
	spin_unlock(&identity_lock);
	if (!ret && READ_ONCE(identity_booted))
		pr_info("cohort.peers set to %s (%d addresses)\n", t, n);
	return ret;
}

/*
 * A bad value is refused and the previous one kept: unlike the identity, a
 * default is always valid.
 */
static int heartbeat_timeout_set(const char *val, const struct kernel_param *kp)
{
	unsigned int v;
	int ret;

	ret = identity_uint("heartbeat_timeout_ms", val,
			    COHORT_HEARTBEAT_TIMEOUT_MIN_MS,
			    COHORT_HEARTBEAT_TIMEOUT_MAX_MS, &v);
	if (ret)
		return ret;
	spin_lock(&identity_lock);
	ret = identity_busy("heartbeat_timeout_ms");
	if (!ret)
		WRITE_ONCE(heartbeat_timeout_ms, v);
	spin_unlock(&identity_lock);
	if (!ret && READ_ONCE(identity_booted))
		pr_info("cohort.heartbeat_timeout_ms set to %u\n", v);
	return ret;
}

static int uint_get(char *buf, const struct kernel_param *kp)
{
	return scnprintf(buf, PAGE_SIZE, "%u\n", READ_ONCE(*(unsigned int *)kp->arg));
}

static int port_get(char *buf, const struct kernel_param *kp)
{
	return scnprintf(buf, PAGE_SIZE, "%u\n", READ_ONCE(port));
}

static int peers_get(char *buf, const struct kernel_param *kp)
{
	int len;

	spin_lock(&identity_lock);
	len = scnprintf(buf, PAGE_SIZE, "%s\n", peers_text);
	spin_unlock(&identity_lock);
	return len;
}

static const struct kernel_param_ops node_id_ops = {
	.set = node_id_set,
	.get = uint_get,
};

static const struct kernel_param_ops nr_nodes_ops = {
	.set = nr_nodes_set,
	.get = uint_get,
};

static const struct kernel_param_ops port_ops = {
	.set = port_set,
	.get = port_get,
};

static const struct kernel_param_ops heartbeat_timeout_ops = {
	.set = heartbeat_timeout_set,
	.get = uint_get,
};

static const struct kernel_param_ops peers_ops = {
	.set = peers_set,
	.get = peers_get,
};

module_param_cb(node_id, &node_id_ops, &node_id, 0644);
MODULE_PARM_DESC(node_id, "This node's id, 0 to nr_nodes - 1");
module_param_cb(nr_nodes, &nr_nodes_ops, &nr_nodes, 0644);
MODULE_PARM_DESC(nr_nodes, "Number of nodes in the cluster");
module_param_cb(peers, &peers_ops, NULL, 0644);
MODULE_PARM_DESC(peers, "Address of every node, in node order, comma-separated: all IPv4, or all IPv6 (bracketed or not)");
module_param_cb(port, &port_ops, NULL, 0644);
MODULE_PARM_DESC(port, "TCP port the message transport listens on and dials");
module_param_cb(heartbeat_timeout_ms, &heartbeat_timeout_ops,
		&heartbeat_timeout_ms, 0644);
MODULE_PARM_DESC(heartbeat_timeout_ms, "Silence, in ms of this node's running time, after which the transport declares a peer down (default 2000, 1000 to 600000)");

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
	return READ_ONCE(node_id);
}
EXPORT_SYMBOL_GPL(cohort_node_id);

/**
 * cohort_nr_nodes - number of nodes in the cluster
 */
unsigned int cohort_nr_nodes(void)
{
	return READ_ONCE(nr_nodes);
}
EXPORT_SYMBOL_GPL(cohort_nr_nodes);

/**
 * cohort_peer_addr - a node's address, from cohort.peers=
 * @node: node id
 * @addr: where to store the address
 *
 * Return: 0, -EINVAL for a node out of range, -ENOENT when cohort.peers=
 * is missing or does not name one address per node.
 */
int cohort_peer_addr(unsigned int node, struct cohort_ip *addr)
{
	int ret = 0;

	spin_lock(&identity_lock);
	if (node >= nr_nodes)
		ret = -EINVAL;
	else if (nr_peers != nr_nodes)
		ret = -ENOENT;
	else
		*addr = peer_addrs[node];
	spin_unlock(&identity_lock);
	return ret;
}
EXPORT_SYMBOL_GPL(cohort_peer_addr);

/**
 * cohort_port - TCP port of the message transport, from cohort.port=
 */
u16 cohort_port(void)
{
	return READ_ONCE(port);
}
EXPORT_SYMBOL_GPL(cohort_port);

/**
 * cohort_heartbeat_timeout_ms - the failure detector's bound
 *
 * From cohort.heartbeat_timeout_ms=; the transport reads it when it loads
 * (the parameter cannot change while it is loaded).
 *
 * Return: the silence, in ms, after which a peer is declared down.
 */
unsigned int cohort_heartbeat_timeout_ms(void)
{
	return READ_ONCE(heartbeat_timeout_ms);
}
EXPORT_SYMBOL_GPL(cohort_heartbeat_timeout_ms);

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

	if (node >= cohort_nr_nodes())
		return false;
	if (node == cohort_node_id())
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
 * The node's identity cannot change while the table is registered.
 *
 * Return: 0, -EINVAL for a bad argument or an invalid node identity
 * (cohort.node_id not below cohort.nr_nodes), -EBUSY when another table
 * holds the slot, -EOPNOTSUPP when this kernel was built
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

	mutex_lock(&registry_lock);
	if (rcu_access_pointer(cohort_slots[slot].ops)) {
		pr_err("%s: %s ops already registered by %s\n", owner,
		       slot_names[slot], slot_owner[slot]);
		ret = -EBUSY;
		goto out;
	}
	/* From here until it is unregistered, the table fixes the identity. */
	spin_lock(&identity_lock);
	if (node_id >= nr_nodes || identity_bad) {
		pr_err("%s: refusing %s ops: invalid node identity: cohort.node_id=%u, cohort.nr_nodes=%u%s\n",
		       owner, slot_names[slot], node_id, nr_nodes,
		       identity_bad ? ", and the command line gave a bad value (logged at boot)" : "");
		ret = -EINVAL;
	} else {
		identity_users++;
	}
	spin_unlock(&identity_lock);
	if (ret)
		goto out;
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
	spin_lock(&identity_lock);
	identity_users--;
	spin_unlock(&identity_lock);
out:
	mutex_unlock(&registry_lock);
}
EXPORT_SYMBOL_GPL(cohort_unregister);

static ssize_t node_id_show(struct kobject *kobj, struct kobj_attribute *attr,
			    char *buf)
{
	return sysfs_emit(buf, "%u\n", cohort_node_id());
}

static ssize_t nr_nodes_show(struct kobject *kobj, struct kobj_attribute *attr,
			     char *buf)
{
	return sysfs_emit(buf, "%u\n", cohort_nr_nodes());
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

/* Every node's address, or nothing while cohort.peers= is not one per node. */
static ssize_t peers_show(struct kobject *kobj, struct kobj_attribute *attr,
			  char *buf)
{
	ssize_t len = 0;
	unsigned int node;

	spin_lock(&identity_lock);
	for (node = 0; nr_peers == nr_nodes && node < nr_peers; node++) {
		const struct cohort_ip *ip = &peer_addrs[node];

		if (ip->family == AF_INET6)
			len += sysfs_emit_at(buf, len, "%u %pI6c\n", node, ip->addr);
		else
			len += sysfs_emit_at(buf, len, "%u %pI4\n", node, ip->addr);
	}
	spin_unlock(&identity_lock);
	return len;
}

static ssize_t port_show(struct kobject *kobj, struct kobj_attribute *attr,
			 char *buf)
{
	return sysfs_emit(buf, "%u\n", cohort_port());
}

static struct kobj_attribute node_id_attr = __ATTR_RO(node_id);
static struct kobj_attribute nr_nodes_attr = __ATTR_RO(nr_nodes);
static struct kobj_attribute peers_attr = __ATTR_RO(peers);
static struct kobj_attribute port_attr = __ATTR_RO(port);
static struct kobj_attribute ops_attr = __ATTR_RO(ops);

static struct attribute *cohort_attrs[] = {
	&node_id_attr.attr,
	&nr_nodes_attr.attr,
	&peers_attr.attr,
	&port_attr.attr,
	&ops_attr.attr,
	NULL,
};

static const struct attribute_group cohort_attr_group = {
	.attrs = cohort_attrs,
};

static int __init cohort_init(void)
{
	struct kobject *kobj;
	int ret;

	/* The command line is parsed; it set what it names. */
	WRITE_ONCE(identity_booted, true);
	if (node_id >= nr_nodes || identity_bad)
		pr_err("invalid identity: cohort.node_id=%u cohort.nr_nodes=%u (at most %u nodes)%s; modules will not register until it is set right\n",
		       node_id, nr_nodes, COHORT_MAX_NODES,
		       identity_bad ? ", bad values above" : "");
	else
		pr_info("node %u of %u\n", node_id, nr_nodes);
	if (nr_peers && nr_peers != nr_nodes)
		pr_err("cohort.peers= names %u addresses for %u nodes\n",
		       nr_peers, nr_nodes);

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
