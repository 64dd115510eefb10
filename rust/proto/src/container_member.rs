// SPDX-License-Identifier: GPL-2.0
//! Which nodes run the container layer: the messages gobelins sends when it
//! loads and unloads, beside the coherence protocol (`super::container`).
//!
//! A node's messaging layer tells the container layer when a peer's
//! *transport* comes and goes; the container layer of a peer may come and go
//! without that (its module loaded or unloaded while the transport stays).
//! So a container layer that starts asks every peer that is up
//! ([`MSG_CONTAINER_HELLO`], no payload): a peer running the container
//! layer answers with a [`HelloReply`] and then treats the asker as a node
//! that died and came back as a fresh incarnation
//! (`ContainerNode::node_down` then `node_up`), which runs the join round
//! of `super::container` ("Rejoin"). The asker starts as a fresh
//! incarnation (`ContainerNode::rejoin`) when some peer answered that it is
//! synced, and as a node of a cluster booting together
//! (`ContainerNode::new`, the peers that did not answer counted down)
//! otherwise. A container layer that stops tells every peer
//! ([`MSG_CONTAINER_BYE`], one-way, no payload), which counts it down.

use super::wire::{Payload, Reader, WireError, Writer};

/// Request, no payload: "my container layer starts"; answered with a
/// [`HelloReply`].
pub const MSG_CONTAINER_HELLO: u16 = 0x182;
/// One-way, no payload: "my container layer stops".
pub const MSG_CONTAINER_BYE: u16 = 0x183;

/// The answer to [`MSG_CONTAINER_HELLO`]. Layout `synced u8` (0 or 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HelloReply {
    /// The answering node's container layer is part of the cluster's view
    /// (not itself joining).
    pub synced: bool,
}

impl Payload for HelloReply {
    const LEN: usize = 1;

    fn write(&self, w: &mut Writer<'_>) -> Result<(), WireError> {
        w.u8(u8::from(self.synced))
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        match r.u8()? {
            0 => Ok(HelloReply { synced: false }),
            1 => Ok(HelloReply { synced: true }),
            _ => Err(WireError::BadPayload),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_reply_round_trip_and_refusals() {
        for synced in [false, true] {
            let mut buf = [0u8; HelloReply::LEN];
            HelloReply { synced }.encode(&mut buf).unwrap();
            assert_eq!(HelloReply::decode(&buf), Ok(HelloReply { synced }));
        }
        assert!(HelloReply::decode(&[2]).is_err());
        assert!(HelloReply::decode(&[]).is_err());
        assert!(HelloReply::decode(&[1, 0]).is_err());
    }
}
