// SPDX-License-Identifier: GPL-2.0
/*
 * Cohort hub: messages between nodes.
 *
 * The transport (kmsg.ko) registers the msg slot; other modules send through
 * it with cohort_msg_send() and cohort_msg_request(), and receive by
 * registering a handler per message type here, in the hub, so that a
 * handler's module can go away without the transport knowing it: unregistering
 * waits until no call into the handler is in flight.
 */
#define pr_fmt(fmt) "cohort: " fmt

#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/notifier.h>

#include "internal.h"

struct msg_handler_slot {
	cohort_msg_handler_t __rcu handler;
	char owner[MODULE_NAME_LEN];
};

static struct msg_handler_slot handlers[COHORT_MSG_NR_TYPES];
static DEFINE_MUTEX(handlers_lock);

/* Notified when another node comes up or goes down. */
SRCU_NOTIFIER_HEAD_STATIC(membership);

/* Run @fn on the transport's ops inside an SRCU section; -ENOTCONN if none. */
#define with_msg_ops(ops, expr)						\
({									\
	const struct cohort_msg_ops *ops;				\
	long __ret = -ENOTCONN;						\
	int __idx = srcu_read_lock(&cohort_srcu);			\
									\
	ops = cohort_slot_ops(COHORT_SLOT_MSG);				\
	if (ops)							\
		__ret = (expr);						\
	srcu_read_unlock(&cohort_srcu, __idx);				\
	__ret;								\
})

static bool node_valid(unsigned int node)
{
	return node < cohort_nr_nodes() && node != cohort_node_id();
}

/**
 * cohort_msg_send - send a message without waiting for an answer
 * @node: destination, another node than this one
 * @type: message type, at least %COHORT_MSG_FIRST_TYPE
 * @data: payload
 * @len: payload length
 *
 * Return: 0 once the message is queued; -EINVAL for a bad node or type,
 * -ENOTCONN without a transport, or the transport's error.
 */
int cohort_msg_send(unsigned int node, u16 type, const void *data, size_t len)
{
	if (!node_valid(node) || type < COHORT_MSG_FIRST_TYPE)
		return -EINVAL;
	return with_msg_ops(ops, ops->send(node, type, data, len));
}
EXPORT_SYMBOL_GPL(cohort_msg_send);

/**
 * cohort_msg_request - send a request and wait for its reply
 * @node: destination, another node than this one
 * @type: message type, at least %COHORT_MSG_FIRST_TYPE
 * @data: payload
 * @len: payload length
 * @reply: buffer for the reply
 * @reply_size: size of @reply
 * @timeout_ms: how long to wait for the reply
 *
 * Sleeps. Return: the reply's length, or a negative errno (see
 * &struct cohort_msg_ops); never waits longer than @timeout_ms, and fails
 * early when @node goes down.
 */
long cohort_msg_request(unsigned int node, u16 type, const void *data,
			size_t len, void *reply, size_t reply_size,
			unsigned int timeout_ms)
{
	return cohort_msg_request_flags(node, type, data, len, reply,
					reply_size, timeout_ms, 0);
}
EXPORT_SYMBOL_GPL(cohort_msg_request);

/**
 * cohort_msg_request_flags - cohort_msg_request() with flags
 * @node: destination, another node than this one
 * @type: message type, at least %COHORT_MSG_FIRST_TYPE
 * @data: payload
 * @len: payload length
 * @reply: buffer for the reply
 * @reply_size: size of @reply
 * @timeout_ms: how long to wait for the reply
 * @flags: COHORT_MSG_NOINTR to wait through signals, for a request whose
 *	reply must not be lost (it moves state, such as a page)
 *
 * Return: as cohort_msg_request().
 */
long cohort_msg_request_flags(unsigned int node, u16 type, const void *data,
			      size_t len, void *reply, size_t reply_size,
			      unsigned int timeout_ms, unsigned int flags)
{
	if (!node_valid(node) || type < COHORT_MSG_FIRST_TYPE ||
	    (flags & ~COHORT_MSG_NOINTR))
		return -EINVAL;
	return with_msg_ops(ops, ops->request(node, type, data, len, reply,
					      reply_size, timeout_ms, flags));
}
EXPORT_SYMBOL_GPL(cohort_msg_request_flags);

/**
 * cohort_msg_reply - answer a request
 * @req: the request, as passed to the handler
 * @error: 0, or a negative errno the requester's cohort_msg_request() returns
 * @data: reply payload
 * @len: reply length
 *
 * Return: 0, -EINVAL when @req is not a request, or the transport's error.
 */
int cohort_msg_reply(const struct cohort_msg *req, int error,
		     const void *data, size_t len)
{
	if (!req->request_id || error > 0)
		return -EINVAL;
	return with_msg_ops(ops, ops->reply(req, error, data, len));
}
EXPORT_SYMBOL_GPL(cohort_msg_reply);

/**
 * cohort_msg_register_handler - receive the messages of one type
 * @type: %COHORT_MSG_FIRST_TYPE to %COHORT_MSG_NR_TYPES - 1
 * @handler: called in process context for each message; may sleep
 * @owner: the registering module's name, for the log
 *
 * Return: 0, -EINVAL for a bad type, -EBUSY when the type has a handler.
 */
int cohort_msg_register_handler(u16 type, cohort_msg_handler_t handler,
				const char *owner)
{
	struct msg_handler_slot *slot;
	int ret = 0;

	if (type < COHORT_MSG_FIRST_TYPE || type >= COHORT_MSG_NR_TYPES ||
	    !handler || !owner)
		return -EINVAL;
	slot = &handlers[type];
	mutex_lock(&handlers_lock);
	if (rcu_access_pointer(slot->handler)) {
		pr_err("%s: message type %#x already handled by %s\n", owner,
		       type, slot->owner);
		ret = -EBUSY;
	} else {
		strscpy(slot->owner, owner, sizeof(slot->owner));
		rcu_assign_pointer(slot->handler, handler);
	}
	mutex_unlock(&handlers_lock);
	return ret;
}
EXPORT_SYMBOL_GPL(cohort_msg_register_handler);

/**
 * cohort_msg_unregister_handler - stop receiving a message type
 * @type: the type passed to cohort_msg_register_handler()
 * @handler: the handler passed to it
 *
 * Waits until no call into @handler is in flight; may sleep.
 */
void cohort_msg_unregister_handler(u16 type, cohort_msg_handler_t handler)
{
	if (type < COHORT_MSG_FIRST_TYPE || type >= COHORT_MSG_NR_TYPES)
		return;
	mutex_lock(&handlers_lock);
	if (rcu_access_pointer(handlers[type].handler) == handler) {
		rcu_assign_pointer(handlers[type].handler, NULL);
		synchronize_srcu(&cohort_srcu);
		handlers[type].owner[0] = '\0';
	}
	mutex_unlock(&handlers_lock);
}
EXPORT_SYMBOL_GPL(cohort_msg_unregister_handler);

/**
 * cohort_msg_deliver - hand a received message to its type's handler
 * @msg: the message; called by the transport in process context
 *
 * Return: 0, or -EPROTONOSUPPORT when no handler takes @msg's type (the
 * transport then answers a request with that error).
 */
int cohort_msg_deliver(const struct cohort_msg *msg)
{
	cohort_msg_handler_t handler;
	int ret = -EPROTONOSUPPORT;
	int idx;

	if (msg->type < COHORT_MSG_FIRST_TYPE ||
	    msg->type >= COHORT_MSG_NR_TYPES)
		return ret;
	idx = srcu_read_lock(&cohort_srcu);
	handler = srcu_dereference(handlers[msg->type].handler, &cohort_srcu);
	if (handler) {
		handler(msg);
		ret = 0;
	}
	srcu_read_unlock(&cohort_srcu, idx);
	return ret;
}
EXPORT_SYMBOL_GPL(cohort_msg_deliver);

/**
 * cohort_membership_register - learn when other nodes come up or go down
 * @nb: notifier, called in process context (it may sleep) with
 *	&enum cohort_membership_event and the node id as data
 *
 * Events before the registration are not replayed: ask
 * cohort_node_online() for the current state after registering.
 *
 * Return: 0 or a negative errno.
 */
int cohort_membership_register(struct notifier_block *nb)
{
	return srcu_notifier_chain_register(&membership, nb);
}
EXPORT_SYMBOL_GPL(cohort_membership_register);

/**
 * cohort_membership_unregister - stop learning about other nodes
 * @nb: the notifier passed to cohort_membership_register()
 *
 * Waits until no call into @nb is in flight.
 */
void cohort_membership_unregister(struct notifier_block *nb)
{
	srcu_notifier_chain_unregister(&membership, nb);
}
EXPORT_SYMBOL_GPL(cohort_membership_unregister);

/**
 * cohort_membership_notify - tell the listeners a node came up or went down
 * @node: the node
 * @up: whether it is up now
 *
 * Called by the transport, in process context.
 */
void cohort_membership_notify(unsigned int node, bool up)
{
	srcu_notifier_call_chain(&membership, up ? COHORT_NODE_UP : COHORT_NODE_DOWN,
				 (void *)(unsigned long)node);
}
EXPORT_SYMBOL_GPL(cohort_membership_notify);
