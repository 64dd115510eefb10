// SPDX-License-Identifier: GPL-2.0

//! Which nodes run the container layer (`proto::container_member`).
//!
//! At load, this node says hello to every peer whose transport is up, and
//! to each peer whose transport comes up later (the membership listener);
//! peers answer. A new container layer is undecided: it boots with the
//! first undecided peer it hears from (a cluster booting together), or
//! joins as a fresh incarnation when a synced peer says hello, and that
//! peer runs the join round for it. Loading waits a little for that, so
//! that a process can move as soon as `insmod` returns. At unload it says
//! bye: the peers count it down.

use crate::linker::Linker;
use crate::proto::container_member::{Hello, MSG_CONTAINER_BYE, MSG_CONTAINER_HELLO};
use crate::proto::node::NodeId;
use crate::proto::wire::Payload;
use crate::LINKER;
use kernel::cohort::{
    self,
    msg::{self, Message, MsgHandler},
    thread,
};
use kernel::prelude::*;

/// How long loading waits for the container layer to join or boot with
/// the peers whose transport is up.
const START_WAIT_MS: u32 = 3_000;
/// How often loading looks whether it did.
const START_POLL_MS: u32 = 10;

/// Says hello to every peer that is up, and waits (at most
/// [`START_WAIT_MS`]) until this node's container layer is part of the
/// cluster's view. A node alone in its cluster starts at once.
pub(crate) fn start(linker: &Linker) {
    let me = cohort::node_id();
    if cohort::nr_nodes() == 1 {
        linker.boot_alone();
        return;
    }
    let mut asked = 0;
    for node in 0..cohort::nr_nodes() {
        if node != me && cohort::node_online(node) {
            if let Ok(node) = u8::try_from(node) {
                linker.say_hello(NodeId(node));
                asked += 1;
            }
        }
    }
    if asked == 0 {
        pr_info!(
            "node {} waits for its peers to start the container layer\n",
            me
        );
        return;
    }
    let mut waited = 0;
    while !linker.synced() && waited < START_WAIT_MS {
        thread::sleep_ms(START_POLL_MS);
        waited += START_POLL_MS;
    }
    if !linker.synced() {
        pr_info!(
            "node {}: the container layer is not part of the cluster's view yet (after {} ms)\n",
            me,
            waited
        );
    }
}

/// Says bye to every peer that is up. Before that, the container layer
/// stops saying and answering hellos: a peer that starts afresh on the bye
/// must not join this incarnation, which is going away.
pub(crate) fn stop() {
    if let Some(linker) = LINKER.get() {
        linker.leave();
    }
    for node in 0..cohort::nr_nodes() {
        if node != cohort::node_id() && cohort::node_online(node) {
            let _ = msg::send(node, MSG_CONTAINER_BYE, &[]);
        }
    }
}

pub(crate) fn sender(msg: &Message) -> Option<NodeId> {
    u8::try_from(msg.src())
        .ok()
        .filter(|n| u32::from(*n) < cohort::nr_nodes() && u32::from(*n) != cohort::node_id())
        .map(NodeId)
}

/// `MSG_CONTAINER_HELLO`: a peer's container layer runs.
pub(crate) struct HelloHandler;

impl MsgHandler for HelloHandler {
    const TYPE: u16 = MSG_CONTAINER_HELLO;

    fn handle(msg: &Message) {
        let (Some(linker), Some(node)) = (LINKER.get(), sender(msg)) else {
            return;
        };
        match Hello::decode(msg.data()) {
            Ok(hello) => linker.heard(node, hello),
            Err(e) => pr_warn!("bad hello from node {}: {:?}\n", node.0, e),
        }
    }
}

/// `MSG_CONTAINER_BYE`: a peer's container layer stops.
pub(crate) struct ByeHandler;

impl MsgHandler for ByeHandler {
    const TYPE: u16 = MSG_CONTAINER_BYE;

    fn handle(msg: &Message) {
        if let (Some(linker), Some(node)) = (LINKER.get(), sender(msg)) {
            linker.bye(node);
        }
    }
}
