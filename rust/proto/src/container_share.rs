// SPDX-License-Identifier: GPL-2.0
//! How long a shared container lives: the messages gobelins exchanges about
//! the anonymous shared regions (`mmap(MAP_SHARED | MAP_ANONYMOUS)`) that
//! are containers cluster-wide, beside the coherence protocol
//! (`super::container`, which keeps their pages).
//!
//! A region becomes a container at its *home*, the node where it was made,
//! when a process mapping it migrates; every node a process mapping it goes
//! to *attaches* its own region to the container. The pages live in those
//! regions, so the container must outlive every mapping of it on every node,
//! and no longer. The home decides ([`Sharers`]):
//!
//! - A node that is not the home attaches before any process there maps the
//!   region: it asks the home ([`ShareMsg::Attach`]) and waits for the
//!   answer ([`ShareMsg::Attached`]); a container the home destroyed (or
//!   never knew) is refused. Attaching is synchronous so that a node that
//!   goes idle after a process left it for another node cannot make the
//!   home destroy the container before the other node's attach arrived: the
//!   process's new node attached before the old node let it go.
//! - A node on which no mapping of the region is left says so
//!   ([`ShareMsg::Idle`]) and keeps its region, whose pages the container
//!   may still ask it for; it attaches again before it maps the region
//!   again.
//! - When the home's own region is unmapped too and every attached node is
//!   idle (or dead), the home releases the container's pages on every node
//!   and tells the nodes that attached ([`ShareMsg::Destroyed`]): each drops
//!   its region.
//!
//! Limits: a home that dies takes the container's lifetime with it: the
//! other nodes keep their regions while they map them and drop them when
//! idle, without releasing pages elsewhere (their records go with the
//! regions' links).

use super::node::{NodeId, NodeSet};
use super::wire::{Payload, Reader, WireError, Writer};

/// One-way, a [`ShareMsg`].
pub const MSG_CONTAINER_SHARE: u16 = 0x184;

/// A message about a shared container's lifetime.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShareMsg {
    /// To the home: "a process here is about to map `container`"; request
    /// `req` (the sender's, not 0) waits for [`ShareMsg::Attached`].
    Attach {
        /// The container.
        container: u32,
        /// The sender's request id.
        req: u32,
    },
    /// From the home: the answer to [`ShareMsg::Attach`] `req`.
    Attached {
        /// The container.
        container: u32,
        /// The request answered.
        req: u32,
        /// The container lives (else it was destroyed, or is unknown).
        live: bool,
    },
    /// To the home: no mapping of `container`'s region is left here.
    Idle {
        /// The container.
        container: u32,
    },
    /// From the home: `container` was released everywhere; drop its region.
    Destroyed {
        /// The container.
        container: u32,
    },
}

impl ShareMsg {
    /// The container the message is about.
    pub fn container(&self) -> u32 {
        match *self {
            ShareMsg::Attach { container, .. }
            | ShareMsg::Attached { container, .. }
            | ShareMsg::Idle { container }
            | ShareMsg::Destroyed { container } => container,
        }
    }
}

/// Layout `kind u8, container u32, req u32, live u8` (10 bytes; `req` and
/// `live` 0 where the kind has none). A container id is never 0, nor is an
/// [`ShareMsg::Attach`] request id.
impl Payload for ShareMsg {
    const LEN: usize = 10;

    fn write(&self, w: &mut Writer<'_>) -> Result<(), WireError> {
        let (kind, req, live) = match *self {
            ShareMsg::Attach { req, .. } => (0u8, req, false),
            ShareMsg::Attached { req, live, .. } => (1, req, live),
            ShareMsg::Idle { .. } => (2, 0, false),
            ShareMsg::Destroyed { .. } => (3, 0, false),
        };
        w.u8(kind)?;
        w.u32(self.container())?;
        w.u32(req)?;
        w.u8(u8::from(live))
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let kind = r.u8()?;
        let container = r.u32()?;
        let req = r.u32()?;
        let live = match r.u8()? {
            0 => false,
            1 => true,
            _ => return Err(WireError::BadPayload),
        };
        if container == 0 {
            return Err(WireError::BadPayload);
        }
        let msg = match kind {
            0 if req != 0 && !live => ShareMsg::Attach { container, req },
            1 if req != 0 => ShareMsg::Attached {
                container,
                req,
                live,
            },
            2 if req == 0 && !live => ShareMsg::Idle { container },
            3 if req == 0 && !live => ShareMsg::Destroyed { container },
            _ => return Err(WireError::BadPayload),
        };
        Ok(msg)
    }
}

/// What the home knows of one of its shared containers: who uses it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sharers {
    /// Nodes other than the home that attached and are not idle.
    users: NodeSet,
    /// Nodes other than the home that ever attached: told when it goes.
    attached: NodeSet,
    /// The home's own region is mapped.
    home_busy: bool,
    /// Released: every attach from now on is refused.
    destroyed: bool,
}

impl Sharers {
    /// A container just made at its home, whose region the home maps.
    pub const fn new() -> Self {
        Sharers {
            users: NodeSet::EMPTY,
            attached: NodeSet::EMPTY,
            home_busy: true,
            destroyed: false,
        }
    }

    /// `node` asks to attach: true (it uses the container from now on)
    /// unless the container was destroyed.
    pub fn attach(&mut self, node: NodeId) -> bool {
        if self.destroyed {
            return false;
        }
        self.users.insert(node);
        self.attached.insert(node);
        true
    }

    /// `node` maps the region no more.
    pub fn idle(&mut self, node: NodeId) {
        self.users.remove(node);
    }

    /// `node` died: it uses nothing, and is told nothing.
    pub fn node_down(&mut self, node: NodeId) {
        self.users.remove(node);
        self.attached.remove(node);
    }

    /// The home's own region is mapped (`busy`) or not. A destroyed
    /// container cannot be used again: false then.
    pub fn home_use(&mut self, busy: bool) -> bool {
        if self.destroyed {
            return !busy;
        }
        self.home_busy = busy;
        true
    }

    /// Whether the container is destroyed.
    pub fn is_destroyed(&self) -> bool {
        self.destroyed
    }

    /// Nobody uses the container any more: marks it destroyed and returns
    /// the nodes to tell ([`ShareMsg::Destroyed`]) once its pages are
    /// released everywhere. `None` while anyone uses it (or when it is
    /// destroyed already).
    pub fn destroy(&mut self) -> Option<NodeSet> {
        if self.destroyed || self.home_busy || !self.users.is_empty() {
            return None;
        }
        self.destroyed = true;
        Some(self.attached)
    }
}

impl Default for Sharers {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(m: ShareMsg) {
        let mut buf = [0u8; ShareMsg::LEN];
        assert_eq!(m.encode(&mut buf), Ok(ShareMsg::LEN));
        assert_eq!(ShareMsg::decode(&buf), Ok(m));
    }

    #[test]
    fn messages_round_trip() {
        round_trip(ShareMsg::Attach {
            container: 0x0201_0003,
            req: 7,
        });
        round_trip(ShareMsg::Attached {
            container: 5,
            req: u32::MAX,
            live: true,
        });
        round_trip(ShareMsg::Attached {
            container: 5,
            req: 1,
            live: false,
        });
        round_trip(ShareMsg::Idle { container: 9 });
        round_trip(ShareMsg::Destroyed { container: 9 });
    }

    #[test]
    fn malformed_messages_are_refused() {
        let mut buf = [0u8; ShareMsg::LEN];
        ShareMsg::Attach {
            container: 1,
            req: 1,
        }
        .encode(&mut buf)
        .unwrap();
        for (at, value) in [(0, 4u8), (9, 2), (9, 1)] {
            let mut bad = buf;
            bad[at] = value;
            assert_eq!(ShareMsg::decode(&bad), Err(WireError::BadPayload), "{at}");
        }
        // Container 0, request 0 for an attach, a request on an idle.
        let mut bad = buf;
        bad[1..5].copy_from_slice(&[0; 4]);
        assert_eq!(ShareMsg::decode(&bad), Err(WireError::BadPayload));
        let mut bad = buf;
        bad[5..9].copy_from_slice(&[0; 4]);
        assert_eq!(ShareMsg::decode(&bad), Err(WireError::BadPayload));
        let mut bad = buf;
        bad[0] = 2;
        assert_eq!(ShareMsg::decode(&bad), Err(WireError::BadPayload));
        assert_eq!(ShareMsg::decode(&buf[..9]), Err(WireError::BadPayload));
    }

    #[test]
    fn the_home_destroys_once_nobody_uses_it() {
        let (a, b) = (NodeId(1), NodeId(2));
        let mut s = Sharers::new();
        assert!(s.attach(a));
        assert!(s.attach(b));
        assert_eq!(s.destroy(), None);
        assert!(s.home_use(false));
        assert_eq!(s.destroy(), None, "a and b map it");
        s.idle(a);
        assert_eq!(s.destroy(), None, "b maps it");
        // b idle, then a process moves to a: a attaches again first.
        assert!(s.attach(a));
        s.idle(b);
        assert_eq!(s.destroy(), None, "a maps it again");
        s.idle(a);
        let told = s.destroy().expect("nobody uses it");
        assert!(told.contains(a) && told.contains(b));
        assert!(s.is_destroyed());
        assert_eq!(s.destroy(), None, "destroyed once");
        assert!(!s.attach(a), "a destroyed container is never attached");
        assert!(!s.home_use(true), "nor used again at its home");
        assert!(s.home_use(false));
    }

    #[test]
    fn a_dead_node_uses_nothing_and_is_told_nothing() {
        let (a, b) = (NodeId(1), NodeId(3));
        let mut s = Sharers::new();
        assert!(s.attach(a));
        assert!(s.attach(b));
        assert!(s.home_use(false));
        s.node_down(a);
        assert_eq!(s.destroy(), None, "b maps it");
        s.idle(b);
        let told = s.destroy().unwrap();
        assert!(!told.contains(a));
        assert!(told.contains(b));
    }

    #[test]
    fn the_home_keeps_it_while_it_maps_it() {
        let mut s = Sharers::new();
        assert_eq!(s.destroy(), None);
        assert!(s.home_use(false));
        assert!(s.home_use(true), "mapped at home again before any check");
        assert_eq!(s.destroy(), None);
        assert!(s.home_use(false));
        assert_eq!(s.destroy(), Some(NodeSet::EMPTY));
    }
}
