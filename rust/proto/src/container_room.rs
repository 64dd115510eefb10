// SPDX-License-Identifier: GPL-2.0
//! Memory pressure: when a node runs low on memory it flushes container
//! pages (`super::container::ContainerNode::flush_page`) — read copies are
//! dropped, and a page whose only copy is here is injected into another node
//! that has room (Containers, section 3.1.1, `flush_page`: "If the local copy
//! is the only one in the cluster, it is injected in the memory of a remote
//! node"). This module holds what decides it, for the kernel and the host
//! tests:
//!
//! - each node's [`Watermarks`], from its memory size: below `low_kb` of
//!   available memory it flushes until it has `high_kb` again; below
//!   `critical_kb` faults on container memory wait for the flusher;
//! - the *room* each node has ([`Room`], one-way [`MSG_CONTAINER_ROOM`],
//!   sent every [`ROOM_EVERY_NS`] to every peer): what it can take above its
//!   own high watermark plus a margin, so that an injection never pushes the
//!   node it goes to into pressure of its own;
//! - [`Rooms`], what a node last heard from each peer, and the target it
//!   picks: the live peer with the most room, reports older than
//!   [`ROOM_STALE_NS`] ignored, each injection charged against the room it
//!   uses until the next report. When no peer has room, only read copies are
//!   dropped: the owned pages stay, and Linux reclaims (or fails) as it
//!   would without Cohort.

use super::node::{NodeId, NodeSet, MAX_NODES};
use super::wire::{Payload, Reader, WireError, Writer};

/// One-way, a [`Room`]: "this much memory here can take injected pages".
pub const MSG_CONTAINER_ROOM: u16 = 0x185;

/// How often a node tells its peers its room, in ns.
pub const ROOM_EVERY_NS: u64 = 250_000_000;

/// A report older than this (ns) says nothing: its sender may have filled
/// up since (or stopped).
pub const ROOM_STALE_NS: u64 = 2_000_000_000;

/// Size of one page, in KiB, for charging injections.
pub const PAGE_KB: u64 = 4;

/// What a node can take: available memory above its own high watermark
/// plus its low watermark (the margin), in KiB; 0 when it takes nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Room {
    /// Spare memory, in KiB.
    pub spare_kb: u64,
}

impl Payload for Room {
    const LEN: usize = 8;

    fn write(&self, w: &mut Writer<'_>) -> Result<(), WireError> {
        w.u64(self.spare_kb)
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok(Room { spare_kb: r.u64()? })
    }
}

/// The thresholds of one node, in KiB of available memory
/// (`si_mem_available()`): `critical_kb < low_kb < high_kb`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Watermarks {
    /// Faults on container memory wait for the flusher below this.
    pub critical_kb: u64,
    /// The flusher starts below this.
    pub low_kb: u64,
    /// ... and stops once this much is available.
    pub high_kb: u64,
}

/// Smallest low watermark chosen from the memory size, in KiB.
pub const MIN_LOW_KB: u64 = 8 * 1024;
/// Largest low watermark chosen from the memory size, in KiB.
pub const MAX_LOW_KB: u64 = 256 * 1024;

impl Watermarks {
    /// The watermarks of a node with `total_kb` of memory: `low_kb` is
    /// `low_override_kb` when not 0, else 1/16 of the memory within
    /// [`MIN_LOW_KB`]..=[`MAX_LOW_KB`]; `high_kb` is 1.25 × low (as Linux's
    /// own high watermark is 1.25 × its low one: a flusher that frees far
    /// above what it needs sends pages away that the process then fetches
    /// back), `critical_kb` half of low.
    /// An override above `total_kb` is taken as `total_kb` (the node is
    /// then always under pressure).
    pub fn new(total_kb: u64, low_override_kb: u64) -> Self {
        let low = if low_override_kb != 0 {
            low_override_kb.min(total_kb.max(1))
        } else {
            (total_kb / 16).clamp(MIN_LOW_KB, MAX_LOW_KB)
        };
        Watermarks {
            critical_kb: low / 2,
            low_kb: low,
            high_kb: low.saturating_add(low / 4),
        }
    }

    /// Whether a node with `available_kb` should start flushing.
    pub fn pressure(&self, available_kb: u64) -> bool {
        available_kb < self.low_kb
    }

    /// How many pages a flusher that started should flush with
    /// `available_kb` left: up to the high watermark (0 once there).
    pub fn pages_to_free(&self, available_kb: u64) -> u64 {
        self.high_kb.saturating_sub(available_kb) / PAGE_KB
    }

    /// Whether faults on container memory should wait for the flusher.
    pub fn critical(&self, available_kb: u64) -> bool {
        available_kb < self.critical_kb
    }

    /// The room a node with `available_kb` reports: what it can take
    /// without falling below its high watermark plus its low one.
    pub fn room(&self, available_kb: u64) -> Room {
        Room {
            spare_kb: available_kb.saturating_sub(self.high_kb.saturating_add(self.low_kb)),
        }
    }
}

/// What this node last heard of its peers' room.
#[derive(Clone, Debug)]
pub struct Rooms {
    /// Per node: the room left (reports minus injections since), and when
    /// the report came (ns; 0: never).
    heard: [(u64, u64); MAX_NODES],
}

impl Default for Rooms {
    fn default() -> Self {
        Self::new()
    }
}

impl Rooms {
    /// Nothing heard.
    pub const fn new() -> Self {
        Rooms {
            heard: [(0, 0); MAX_NODES],
        }
    }

    /// `from` reported `room` at `now_ns`.
    pub fn heard(&mut self, from: NodeId, room: Room, now_ns: u64) {
        if let Some(slot) = self.heard.get_mut(from.index()) {
            *slot = (room.spare_kb, now_ns.max(1));
        }
    }

    /// `node` went down: its room is not known until it reports again.
    pub fn forget(&mut self, node: NodeId) {
        if let Some(slot) = self.heard.get_mut(node.index()) {
            *slot = (0, 0);
        }
    }

    /// The room `node` has as far as this node knows at `now_ns`, in KiB
    /// (0: none, or not heard lately).
    pub fn spare_kb(&self, node: NodeId, now_ns: u64) -> u64 {
        match self.heard.get(node.index()) {
            Some(&(spare, at)) if at != 0 && now_ns.saturating_sub(at) < ROOM_STALE_NS => spare,
            _ => 0,
        }
    }

    /// The node among `live` (this node `me` excluded) with the most room
    /// for one more page at `now_ns`, ties to the lowest id; `None` when
    /// none has room.
    pub fn target(&self, live: NodeSet, me: NodeId, now_ns: u64) -> Option<NodeId> {
        let mut best: Option<(NodeId, u64)> = None;
        for node in live.without(me).iter() {
            let spare = self.spare_kb(node, now_ns);
            if spare < PAGE_KB {
                continue;
            }
            let better = match best {
                Some((_, most)) => spare > most,
                None => true,
            };
            if better {
                best = Some((node, spare));
            }
        }
        best.map(|(node, _)| node)
    }

    /// A page is being injected into `node`: it has that much less room
    /// until its next report.
    pub fn charge(&mut self, node: NodeId) {
        if let Some(slot) = self.heard.get_mut(node.index()) {
            slot.0 = slot.0.saturating_sub(PAGE_KB);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024;

    #[test]
    fn room_round_trips() {
        let room = Room {
            spare_kb: 0x0123_4567_89ab,
        };
        let mut buf = [0u8; Room::LEN];
        room.encode(&mut buf).unwrap();
        assert_eq!(Room::decode(&buf).unwrap(), room);
        assert!(Room::decode(&buf[..7]).is_err());
    }

    #[test]
    fn watermarks_follow_memory_size() {
        // 512 MiB: low 32 MiB, high 40, critical 16.
        let w = Watermarks::new(512 * MIB, 0);
        assert_eq!(w.low_kb, 32 * MIB);
        assert_eq!(w.high_kb, 40 * MIB);
        assert_eq!(w.critical_kb, 16 * MIB);
        // Small and large nodes are clamped.
        assert_eq!(Watermarks::new(64 * MIB, 0).low_kb, MIN_LOW_KB);
        assert_eq!(Watermarks::new(64 * 1024 * MIB, 0).low_kb, MAX_LOW_KB);
        // An override wins, up to the memory size; no overflow anywhere
        // (a debugfs write of u64::MAX panicked a node).
        assert_eq!(Watermarks::new(512 * MIB, 10 * MIB).low_kb, 10 * MIB);
        assert_eq!(Watermarks::new(512 * MIB, u64::MAX).low_kb, 512 * MIB);
        for total in [0, 1, u64::MAX] {
            let w = Watermarks::new(total, u64::MAX);
            assert!(w.critical_kb <= w.low_kb && w.low_kb <= w.high_kb);
            let _ = (w.room(u64::MAX), w.pages_to_free(0), w.pressure(0));
        }
    }

    #[test]
    fn pressure_starts_below_low_and_frees_up_to_high() {
        let w = Watermarks::new(512 * MIB, 0);
        assert!(!w.pressure(32 * MIB));
        assert!(w.pressure(32 * MIB - 1));
        assert_eq!(w.pages_to_free(36 * MIB), 4 * MIB / PAGE_KB);
        assert_eq!(w.pages_to_free(40 * MIB), 0);
        assert!(w.critical(16 * MIB - 1));
        assert!(!w.critical(16 * MIB));
    }

    #[test]
    fn room_keeps_the_receivers_own_margin() {
        let w = Watermarks::new(512 * MIB, 0);
        // high 40 + low 32: 72 MiB before it takes anything.
        assert_eq!(w.room(72 * MIB).spare_kb, 0);
        assert_eq!(w.room(10 * MIB).spare_kb, 0);
        assert_eq!(w.room(100 * MIB).spare_kb, 28 * MIB);
    }

    #[test]
    fn target_is_the_live_peer_with_most_room() {
        let mut rooms = Rooms::new();
        let now = 10 * ROOM_STALE_NS;
        let live = NodeSet::first(4);
        assert_eq!(rooms.target(live, NodeId(0), now), None);
        rooms.heard(NodeId(1), Room { spare_kb: 100 }, now);
        rooms.heard(NodeId(2), Room { spare_kb: 500 }, now);
        rooms.heard(NodeId(3), Room { spare_kb: 500 }, now);
        // Ties go to the lowest id; never this node.
        assert_eq!(rooms.target(live, NodeId(0), now), Some(NodeId(2)));
        rooms.heard(NodeId(0), Room { spare_kb: 9999 }, now);
        assert_eq!(rooms.target(live, NodeId(0), now), Some(NodeId(2)));
        // Dead nodes are not targets.
        assert_eq!(
            rooms.target(live.without(NodeId(2)), NodeId(0), now),
            Some(NodeId(3))
        );
        // Stale reports say nothing.
        assert_eq!(rooms.target(live, NodeId(0), now + ROOM_STALE_NS), None);
        // A forgotten node has no room.
        rooms.forget(NodeId(2));
        assert_eq!(rooms.target(live, NodeId(0), now), Some(NodeId(3)));
    }

    #[test]
    fn injections_use_up_room_until_the_next_report() {
        let mut rooms = Rooms::new();
        let now = 1;
        let live = NodeSet::first(3);
        rooms.heard(
            NodeId(1),
            Room {
                spare_kb: 3 * PAGE_KB,
            },
            now,
        );
        rooms.heard(NodeId(2), Room { spare_kb: PAGE_KB }, now);
        let mut sent = [0u32; 3];
        while let Some(node) = rooms.target(live, NodeId(0), now) {
            sent[node.index()] += 1;
            rooms.charge(node);
        }
        // 3 pages to node 1, 1 to node 2, then no room anywhere.
        assert_eq!(sent, [0, 3, 1]);
        rooms.heard(NodeId(2), Room { spare_kb: PAGE_KB }, now);
        assert_eq!(rooms.target(live, NodeId(0), now), Some(NodeId(2)));
    }
}
