// SPDX-License-Identifier: GPL-2.0

//! Which nodes run the container layer (`proto::container_member`).
//!
//! At load, this node says hello to every peer that is up. A peer running
//! the container layer answers, then counts this node as one that died and
//! came back fresh, and runs the join round; this node started as such a
//! fresh incarnation. When no peer answers that it is synced, this node is
//! one of a cluster booting together: every node counts live. At unload it
//! says bye: the peers count it down.

use crate::linker::Linker;
use crate::proto::container_member::{HelloReply, MSG_CONTAINER_BYE, MSG_CONTAINER_HELLO};
use crate::proto::node::NodeId;
use crate::proto::wire::Payload;
use crate::LINKER;
use kernel::cohort::{
    self,
    msg::{self, Message, MsgHandler},
};
use kernel::prelude::*;

/// How long a peer may take to answer a hello.
const HELLO_TIMEOUT_MS: u32 = 2_000;

/// Says hello to every peer that is up and starts this node's container
/// layer accordingly.
pub(crate) fn start(linker: &Linker) {
    let me = cohort::node_id();
    let mut synced = false;
    for node in 0..cohort::nr_nodes() {
        if node == me {
            continue;
        }
        let mut reply = [0u8; HelloReply::LEN];
        let answer = if cohort::node_online(node) {
            msg::request_nointr(node, MSG_CONTAINER_HELLO, &[], &mut reply, HELLO_TIMEOUT_MS)
                .ok()
                .and_then(|n| HelloReply::decode(reply.get(..n)?).ok())
        } else {
            None
        };
        synced |= answer.is_some_and(|r| r.synced);
    }
    if synced {
        pr_info!("node {} joins the container layer of its peers\n", me);
    } else {
        // Booting together: every node counts live. A peer that loads the
        // container layer later says hello and joins; until then requests
        // it manages go unanswered (the faults end with SIGBUS after
        // their time-out), a documented limit.
        linker.boot();
    }
}

/// Says bye to every peer that is up.
pub(crate) fn stop() {
    for node in 0..cohort::nr_nodes() {
        if node != cohort::node_id() && cohort::node_online(node) {
            let _ = msg::send(node, MSG_CONTAINER_BYE, &[]);
        }
    }
}

fn sender(msg: &Message) -> Option<NodeId> {
    u8::try_from(msg.src())
        .ok()
        .filter(|n| u32::from(*n) < cohort::nr_nodes() && u32::from(*n) != cohort::node_id())
        .map(NodeId)
}

/// `MSG_CONTAINER_HELLO`: a peer's container layer starts.
pub(crate) struct HelloHandler;

impl MsgHandler for HelloHandler {
    const TYPE: u16 = MSG_CONTAINER_HELLO;

    fn handle(msg: &Message) {
        let (Some(linker), Some(node)) = (LINKER.get(), sender(msg)) else {
            let _ = msg.reply_error(EINVAL);
            return;
        };
        let mut reply = [0u8; HelloReply::LEN];
        let synced = linker.synced();
        if (HelloReply { synced }).encode(&mut reply).is_err() {
            let _ = msg.reply_error(EINVAL);
            return;
        }
        let _ = msg.reply(&reply);
        linker.restarted(node);
    }
}

/// `MSG_CONTAINER_BYE`: a peer's container layer stops.
pub(crate) struct ByeHandler;

impl MsgHandler for ByeHandler {
    const TYPE: u16 = MSG_CONTAINER_BYE;

    fn handle(msg: &Message) {
        if let (Some(linker), Some(node)) = (LINKER.get(), sender(msg)) {
            linker.node_down(node);
        }
    }
}
