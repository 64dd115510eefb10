// SPDX-License-Identifier: GPL-2.0

//! How long a shared container lives (`proto::container_share`): the
//! messages about the anonymous shared regions linked to containers. The
//! decisions are in `linker` (`Linker::share_link`, `Linker::on_share`,
//! the executor's tick).

use crate::member::sender;
use crate::proto::container_share::{Owner, ShareMsg, MSG_CONTAINER_SHARE};
use crate::proto::node::NodeId;
use crate::proto::wire::Payload;
use crate::stats::Counter;
use crate::LINKER;
use kernel::cohort::{
    msg::{self, Message, MsgHandler},
    share::ShmOwner,
};
use kernel::prelude::*;

/// A key's owner as the protocol carries it, from the kernel's.
impl From<ShmOwner> for Owner {
    fn from(o: ShmOwner) -> Self {
        Owner {
            uid: o.uid,
            gid: o.gid,
            mode: o.mode,
        }
    }
}

/// A key's owner as the kernel takes it, from the protocol's.
impl From<Owner> for ShmOwner {
    fn from(o: Owner) -> Self {
        ShmOwner {
            uid: o.uid,
            gid: o.gid,
            mode: o.mode,
        }
    }
}

/// Sends `share` to `to`; a node that is down is dealt with by the
/// membership listener (an attach waiting on it fails).
pub(crate) fn send(to: NodeId, share: &ShareMsg) {
    let mut buf = [0u8; ShareMsg::LEN];
    let sent = share
        .encode(&mut buf)
        .map_err(|_| EINVAL)
        .and_then(|_| msg::send(u32::from(to.0), MSG_CONTAINER_SHARE, &buf));
    if let Err(e) = sent {
        pr_warn!("{:?} to node {} not sent: {:?}\n", share, to.0, e);
    }
}

/// `MSG_CONTAINER_SHARE`: a shared container's lifetime.
pub(crate) struct ShareHandler;

impl MsgHandler for ShareHandler {
    const TYPE: u16 = MSG_CONTAINER_SHARE;

    fn handle(msg: &Message) {
        let (Some(linker), Some(node)) = (LINKER.get(), sender(msg)) else {
            return;
        };
        match ShareMsg::decode(msg.data()) {
            Ok(share) => linker.on_share(node, share),
            Err(e) => {
                linker.stats.bump(Counter::BadMessages);
                pr_warn!("malformed share message from node {}: {:?}\n", node.0, e);
            }
        }
    }
}
