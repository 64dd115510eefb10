// SPDX-License-Identifier: GPL-2.0

//! Page messages parked per node, in order: sends to a node whose
//! transport is down (sent after its hello), and messages from a peer not
//! heard yet (delivered after its hello). See `linker`.

use crate::proto::node::NodeId;
use kernel::prelude::*;

/// Most page messages one list parks.
pub(crate) const MAX_PARKED: usize = 4096;

/// Encoded page messages with the node each is for (or from), oldest
/// first. Each node's messages keep their order.
pub(crate) struct Parked {
    list: KVec<(NodeId, KVec<u8>)>,
}

impl Parked {
    /// An empty list.
    pub(crate) const fn new() -> Self {
        Parked { list: KVec::new() }
    }

    /// Whether a message of `node` is parked.
    pub(crate) fn has(&self, node: NodeId) -> bool {
        self.list.iter().any(|(n, _)| *n == node)
    }

    /// Parks `bytes` for `node`, after its others. `ENOSPC` when
    /// [`MAX_PARKED`] are parked already, `ENOMEM`.
    pub(crate) fn park(&mut self, node: NodeId, bytes: KVec<u8>) -> Result {
        if self.list.len() >= MAX_PARKED {
            return Err(ENOSPC);
        }
        self.list.push((node, bytes), GFP_KERNEL)?;
        Ok(())
    }

    /// Parks a copy of `bytes` for `node` (see [`Parked::park`]).
    pub(crate) fn park_copy(&mut self, node: NodeId, bytes: &[u8]) -> Result {
        let mut copy = KVec::new();
        copy.extend_from_slice(bytes, GFP_KERNEL)?;
        self.park(node, copy)
    }

    /// Takes out the messages of `node`, oldest first; the others stay
    /// (one that finds no memory to stay in is dropped, logged).
    pub(crate) fn take(&mut self, node: NodeId) -> KVec<KVec<u8>> {
        let all = core::mem::replace(&mut self.list, KVec::new());
        let mut taken = KVec::new();
        for (n, bytes) in all {
            let kept = if n == node {
                taken.push(bytes, GFP_KERNEL).is_ok()
            } else {
                self.list.push((n, bytes), GFP_KERNEL).is_ok()
            };
            if !kept {
                pr_err!(
                    "out of memory: a page message parked for node {} dropped\n",
                    n.0
                );
            }
        }
        taken
    }
}
