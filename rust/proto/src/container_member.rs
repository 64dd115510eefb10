// SPDX-License-Identifier: GPL-2.0
//! Which nodes run the container layer: the hellos gobelins exchanges with
//! its peers, beside the coherence protocol (`super::container`).
//!
//! A node's messaging layer tells the container layer when a peer's
//! *transport* comes and goes; the container layer of a peer may come and
//! go without that (its module loaded or unloaded while the transport
//! stays), and a restarted node's transport may connect before or after its
//! container layer starts. So the container layers say hello to each other
//! ([`MSG_CONTAINER_HELLO`], one-way, a [`Hello`]):
//!
//! - when the container layer starts, to every peer whose transport is up;
//! - when the messaging layer reports a peer up, to that peer;
//! - in answer to a hello that is not itself an answer.
//!
//! A hello names the sender's *incarnation* (a number drawn when its
//! container layer starts) and its [`Standing`]. [`Members::heard`] turns
//! each hello into what the container layer does ([`Verdict`]):
//!
//! - A node that just started is [`Standing::Undecided`]. It boots with
//!   the first undecided peer it hears from (a cluster booting together:
//!   every node counts live, generation 0: `ContainerNode::new`), or joins
//!   as a fresh incarnation when it hears from a synced peer
//!   ([`Standing::Joining`] until its first recovery round is over).
//!   A hello from a joining peer decides nothing: that peer's synced peers
//!   will say hello too.
//! - A synced node that hears a new incarnation of a peer counts the peer
//!   dead and back (`ContainerNode::node_down` then `node_up`), which runs
//!   the join round of `super::container` ("Rejoin"); a hello from the
//!   incarnation it knows is a reconnection (`node_up`, nothing if it
//!   counts the peer up already).
//!
//! A container layer that stops tells every peer ([`MSG_CONTAINER_BYE`],
//! one-way, no payload), which counts it down.
//!
//! Limits: two nodes that restart at the same time while the others run
//! may boot together with each other before they hear from a synced peer;
//! their views then differ until the synced peers' join round reaches
//! them. A transport that drops and reconnects without either node
//! restarting counts as a death and a return of the same incarnation (its
//! pages at risk fail, as after a death).

use super::node::{NodeId, MAX_NODES};
use super::wire::{Payload, Reader, WireError, Writer};

/// One-way, a [`Hello`]: "my container layer runs".
pub const MSG_CONTAINER_HELLO: u16 = 0x182;
/// One-way, no payload: "my container layer stops".
pub const MSG_CONTAINER_BYE: u16 = 0x183;

/// Where a node's container layer stands in the cluster's view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Standing {
    /// Started, has heard from no peer that decides how it starts.
    Undecided = 0,
    /// A fresh incarnation whose join round is not over.
    Joining = 1,
    /// Part of the cluster's view.
    Synced = 2,
}

/// A hello. Layout (10 bytes, as `super::wire` writes them):
/// `incarnation u64, standing u8, answer u8` (0 or 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hello {
    /// The sender's incarnation: drawn when its container layer started,
    /// never 0.
    pub incarnation: u64,
    /// The sender's standing when it sent the hello.
    pub standing: Standing,
    /// This hello answers one: it is not answered.
    pub answer: bool,
}

impl Payload for Hello {
    const LEN: usize = 10;

    fn write(&self, w: &mut Writer<'_>) -> Result<(), WireError> {
        w.u64(self.incarnation)?;
        w.u8(self.standing as u8)?;
        w.u8(u8::from(self.answer))
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let incarnation = r.u64()?;
        let standing = match r.u8()? {
            0 => Standing::Undecided,
            1 => Standing::Joining,
            2 => Standing::Synced,
            _ => return Err(WireError::BadPayload),
        };
        let answer = match r.u8()? {
            0 => false,
            1 => true,
            _ => return Err(WireError::BadPayload),
        };
        if incarnation == 0 {
            return Err(WireError::BadPayload);
        }
        Ok(Hello {
            incarnation,
            standing,
            answer,
        })
    }
}

/// What the container layer does on a hello ([`Members::heard`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing changes.
    Nothing,
    /// Start as a node of a cluster booting together (every node live,
    /// generation 0).
    Boot,
    /// Stay a fresh incarnation and wait for the join round.
    Join,
    /// The peer is a new incarnation: count it dead, then up.
    Restarted,
    /// The peer reconnected: count it up (nothing if it is).
    Up,
}

/// The incarnations of the peers this node heard from.
#[derive(Clone, Copy, Debug)]
pub struct Members {
    seen: [u64; MAX_NODES],
}

impl Default for Members {
    fn default() -> Self {
        Self::new()
    }
}

impl Members {
    /// Knows no peer yet.
    pub const fn new() -> Self {
        Members {
            seen: [0; MAX_NODES],
        }
    }

    /// Takes `hello` from `from`, this node being `me` (its standing now),
    /// and says what to do. An id out of range is [`Verdict::Nothing`].
    pub fn heard(&mut self, from: NodeId, me: Standing, hello: Hello) -> Verdict {
        let Some(seen) = self.seen.get_mut(from.index()) else {
            return Verdict::Nothing;
        };
        let new = *seen != hello.incarnation;
        *seen = hello.incarnation;
        match me {
            Standing::Undecided => match hello.standing {
                Standing::Undecided => Verdict::Boot,
                Standing::Synced => Verdict::Join,
                Standing::Joining => Verdict::Nothing,
            },
            Standing::Joining => Verdict::Nothing,
            Standing::Synced if new => Verdict::Restarted,
            Standing::Synced => Verdict::Up,
        }
    }

    /// Forgets `node` (its container layer said bye): its next hello is
    /// a new incarnation's.
    pub fn forget(&mut self, node: NodeId) {
        if let Some(seen) = self.seen.get_mut(node.index()) {
            *seen = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello(incarnation: u64, standing: Standing) -> Hello {
        Hello {
            incarnation,
            standing,
            answer: false,
        }
    }

    #[test]
    fn hello_round_trip_and_refusals() {
        for standing in [Standing::Undecided, Standing::Joining, Standing::Synced] {
            for answer in [false, true] {
                let h = Hello {
                    incarnation: 0x0102_0304_0506_0708,
                    standing,
                    answer,
                };
                let mut buf = [0u8; Hello::LEN];
                h.encode(&mut buf).unwrap();
                assert_eq!(Hello::decode(&buf), Ok(h));
            }
        }
        let mut buf = [0u8; Hello::LEN];
        hello(7, Standing::Synced).encode(&mut buf).unwrap();
        let mut bad = buf;
        bad[8] = 3;
        assert!(Hello::decode(&bad).is_err());
        let mut bad = buf;
        bad[9] = 2;
        assert!(Hello::decode(&bad).is_err());
        let mut zero = [0u8; Hello::LEN];
        zero[8] = 2;
        assert!(Hello::decode(&zero).is_err());
        assert!(Hello::decode(&buf[..9]).is_err());
        assert!(Hello::decode(&[0u8; Hello::LEN + 1]).is_err());
    }

    #[test]
    fn undecided_boots_with_undecided_and_joins_synced() {
        let mut m = Members::default();
        let (a, b, c) = (NodeId(1), NodeId(2), NodeId(3));
        assert_eq!(
            m.heard(a, Standing::Undecided, hello(5, Standing::Joining)),
            Verdict::Nothing
        );
        assert_eq!(
            m.heard(b, Standing::Undecided, hello(6, Standing::Undecided)),
            Verdict::Boot
        );
        assert_eq!(
            m.heard(c, Standing::Undecided, hello(9, Standing::Synced)),
            Verdict::Join
        );
        // A joining node waits for its round whatever it hears.
        for s in [Standing::Undecided, Standing::Joining, Standing::Synced] {
            assert_eq!(
                m.heard(c, Standing::Joining, hello(10, s)),
                Verdict::Nothing
            );
        }
    }

    #[test]
    fn synced_node_tells_a_restart_from_a_reconnection() {
        let mut m = Members::default();
        let a = NodeId(1);
        // Booted together: the peer's incarnation was seen while undecided.
        assert_eq!(
            m.heard(a, Standing::Undecided, hello(5, Standing::Undecided)),
            Verdict::Boot
        );
        assert_eq!(
            m.heard(a, Standing::Synced, hello(5, Standing::Synced)),
            Verdict::Up
        );
        assert_eq!(
            m.heard(a, Standing::Synced, hello(8, Standing::Undecided)),
            Verdict::Restarted
        );
        assert_eq!(
            m.heard(a, Standing::Synced, hello(8, Standing::Joining)),
            Verdict::Up
        );
        m.forget(a);
        assert_eq!(
            m.heard(a, Standing::Synced, hello(8, Standing::Undecided)),
            Verdict::Restarted
        );
        // Out of range.
        assert_eq!(
            m.heard(
                NodeId(MAX_NODES as u8),
                Standing::Synced,
                hello(1, Standing::Synced)
            ),
            Verdict::Nothing
        );
    }
}
