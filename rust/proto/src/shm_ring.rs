// SPDX-License-Identifier: GPL-2.0
//! The shared-memory transport: region layout, byte rings, wake-ups and
//! connection generations.
//!
//! Nodes booted as partitions of one host share one region of memory:
//! BAR 2 of QEMU's `ivshmem-doorbell` device, which `cohort
//! ivshmem-server` hands to every node's QEMU. Each ordered pair of nodes
//! (i, j) has a single-producer/single-consumer byte ring in it, written
//! only by node i and read only by node j, and each node has a doorbell
//! (an MSI-X vector) that its peers ring to wake it up. kmsg writes its
//! frames (header ‖ payload ‖ tag) into a ring as a byte stream, exactly as
//! it writes them into a TCP socket: the ring carries bytes, not records,
//! and a frame may cross the ring's end or be written in several pieces.
//!
//! This file holds all the logic: where everything lives in the region,
//! how a producer and a consumer move their positions, when a side has to
//! ring the other's doorbell, and how a node that restarts re-joins. It does
//! no I/O and touches the region only through [`RingMemory`], which the
//! kernel implements on the mapped BAR and the tests on atomics; every
//! function returns what the caller must do (ring the doorbell of node X,
//! drop a half-received frame) as a value.
//!
//! # The region
//!
//! Every word is a little-endian `u64` (the byte order of x86, the only
//! architecture where nodes share the region); offsets are in bytes.
//!
//! | offset                    | size             | what                                  |
//! |---------------------------|------------------|---------------------------------------|
//! | 0                         | 64               | header (below)                        |
//! | [`SLOTS_OFFSET`] = 64     | 64 × nr_nodes    | one slot per node, one cache line each |
//! | `table_off` = 64 + 64 × n | 8 × n², to 64    | ring table: offset of ring (i → j) at entry `i × n + j`, 0 when i = j |
//! | `rings_off`               | n(n−1) × stride  | the rings, in the order of the table  |
//!
//! Header (cache line 0; written once by whoever formats the region, then
//! only read):
//!
//! | offset | word          | value                                          |
//! |-------:|---------------|------------------------------------------------|
//! | 0      | `magic`       | [`MAGIC`] (bytes `COHORTSH`), written last     |
//! | 8      | `version`     | [`VERSION`]                                    |
//! | 16     | `nr_nodes`    | 1..=[`MAX_NODES`]                              |
//! | 24     | `region_size` | bytes in the region (the BAR's size)           |
//! | 32     | `ring_size`   | data bytes per ring, a power of two            |
//! | 40     | `slots_off`   | [`SLOTS_OFFSET`]                               |
//! | 48     | `table_off`   | offset of the ring table                       |
//! | 56     | `rings_off`   | offset of the first ring                       |
//!
//! Slot of node n (at `64 + 64 × n`, written only by node n):
//!
//! | offset | word    | bits                                                        |
//! |-------:|---------|-------------------------------------------------------------|
//! | 0      | `state` | 0..15 incarnation (1..=65535, 0: never joined), 16..31 the node's ivshmem peer id, 32 joined |
//!
//! The ivshmem peer id is what the node's doorbell is rung with; the server
//! assigns it to each QEMU that connects, so it is not the node id and a
//! restarted node gets a new one. One word holds all three fields, so a
//! reader always sees a consistent slot.
//!
//! Ring (i → j), `stride = 128 + ring_size` bytes, 64-aligned:
//!
//! | offset | word / bytes    | written by | what                                   |
//! |-------:|-----------------|------------|----------------------------------------|
//! | 0      | `head`          | producer i | generation (bits 32..63), bytes published so far (bits 0..31, wrapping) |
//! | 8      | `prod_waiting`  | producer i | 1: the producer sleeps until there is room |
//! | 16     | `session`       | producer i | session number (bits 32..63), stream position where it starts (bits 0..31) |
//! | 64     | `tail`          | consumer j | generation (bits 32..63), bytes consumed so far (bits 0..31, wrapping) |
//! | 72     | `cons_waiting`  | consumer j | 1: the consumer sleeps until there are bytes |
//! | 128    | data            | producer i | `ring_size` bytes; byte `p` of the stream at `128 + p mod ring_size` |
//!
//! The producer's words and the consumer's words sit on different cache
//! lines, so the two ends never write the same line: a store by one end
//! costs the other one cache miss when it next looks, not a ping-pong.
//!
//! # The ring protocol
//!
//! Positions are free-running 32-bit byte counts; `head − tail` (wrapping)
//! is the number of bytes in the ring, at most `ring_size`.
//!
//! | side     | step                | how                                                      |
//! |----------|---------------------|----------------------------------------------------------|
//! | producer | [`Producer::free`]  | acquire-load `tail`: same generation, `ring_size − (written − tail)` bytes free |
//! | producer | [`Producer::write`] | copy up to that many bytes at `written mod ring_size`, wrapping round; `written` advances locally |
//! | producer | [`Producer::publish`] | if `tail` is still at this generation: release-store `head = (gen, written)`; fence; load `cons_waiting`: if set, ring the consumer |
//! | consumer | [`Consumer::available`] | acquire-load `head`: same generation, `head − read` bytes to read |
//! | consumer | [`Consumer::read`]  | copy up to that many bytes out; `read` advances locally  |
//! | consumer | [`Consumer::release`] | release-store `tail = (gen, read)`; fence; load `prod_waiting`: if set, ring the producer |
//!
//! The release store of `head` orders the data before it, and the
//! acquire load of `head` orders the reads of the data after it; the
//! release store of `tail` orders the consumer's reads of the data before
//! the producer may overwrite them. A peer's position that says more bytes
//! are in the ring than it holds is [`RingError::Corrupt`]: nothing here
//! trusts the shared memory, and no value found in it can make this code
//! read or write outside the region or panic.
//!
//! # Wake-ups
//!
//! A consumer that finds the ring empty does not sleep at once:
//! [`Consumer::prepare_wait`] sets `cons_waiting`, then a full fence, then
//! looks at `head` again; only if the ring is still empty may it sleep
//! (until its doorbell rings). [`Producer::publish`] stores `head`, then a
//! full fence, then looks at `cons_waiting`, and rings the consumer's
//! doorbell only if it is set. The fences are what makes this correct: each
//! side stores one word and then loads the word the other side stores (the
//! "store buffering" pattern). x86-TSO lets a load overtake an earlier
//! store to another address (the store waits in the CPU's store buffer),
//! the one reordering it allows; without the fences both loads could see
//! the old values, the consumer would sleep on a ring that is not empty
//! and the producer would not ring: a lost wake-up. With them, at least
//! one side sees the other's store: either the consumer sees the bytes and
//! does not sleep, or the producer sees the flag and rings.
//! `rust/proto/tests/shm_ring_tso.rs` checks both claims by enumerating
//! every execution of these very functions on a model of TSO store buffers.
//!
//! A producer out of room does the same the other way round
//! ([`Producer::prepare_wait`] with `prod_waiting`, checked by
//! [`Consumer::release`]). Each side clears its own flag when it wakes
//! ([`Consumer::finish_wait`], [`Producer::finish_wait`]); nobody else
//! writes it, so a doorbell rung twice is harmless and no flag is lost.
//! Under load the consumer finds bytes without waiting and never sets its
//! flag, so the producer never rings: both sides poll the rings, and
//! doorbells (VM exits, interrupts) are spent only on a side that went idle.
//!
//! # Generations: joining, dying, re-joining
//!
//! A node that restarts must get clean rings, and must not be confused by
//! what its dead incarnation left: half a frame in a ring, positions
//! somewhere in the middle. Every node has an *incarnation* in its slot,
//! which [`Layout::join`] increments, and the *generation* of the
//! connection on ring (i → j) is [`Gen::of`]`(incarnation of i,
//! incarnation of j)`; it is 0 ([`Gen::CLOSED`]) unless both slots say
//! joined. Each end of a ring carries the generation it was opened for in
//! the upper half of its position word (`head` or `tail`), so one load
//! gives both, and an end only believes the other's position if the
//! generations are equal.
//!
//! The slots are the single source of truth: each end computes the
//! generation from them ([`Layout::conn_gen`]) and the two ends converge
//! without talking to each other. One ring end moves through these states:
//!
//! ```text
//!                  with_gen(G)               other end opened at G
//!   Closed(gen 0) ────────────▶ Open(G) ───────────────────────────▶ Connected(G)
//!        ▲                        ▲   ◀────────────────────────────────  │
//!        │                        │     other end now at G' ≠ G:         │
//!        │                        │     RingError::Disconnected { G' }   │
//!        │                        │                                      │
//!        │   resync: slots give G'' ≠ G: with_gen(G''), position 0,      │
//!        │   the partial frame is dropped, the peer's doorbell rung      │
//!        └── resync: slots say a side left: closed ◀─────────────────────┘
//! ```
//!
//! * Joining ([`Layout::join`], a node boots or its module loads): close
//!   every ring end the node owns (position 0, generation 0); then
//!   publish its slot with the next incarnation and its ivshmem peer id;
//!   then open its ends towards every joined peer at the generation the
//!   slots give ([`Layout::open_producer`], [`Layout::open_consumer`]) and
//!   ring every joined peer's doorbell ([`Layout::joined`]).
//! * A peer that is rung, or whose ring says
//!   [`RingError::Disconnected`], calls [`Layout::resync_producer`] and
//!   [`Layout::resync_consumer`] for that pair: if the slots give a new
//!   generation, its end is reopened there ([`Resync::Reset`]), what it
//!   had of a half-received frame is dropped, and it rings the other side
//!   in turn. While the other end is not yet at the same generation,
//!   [`Producer::free`] and [`Consumer::available`] say
//!   [`RingError::Disconnected`] and nothing moves.
//! * A node that dies mid-frame leaves its bytes and positions in the
//!   ring. Its peers keep their generation (they see nothing new) until
//!   it re-joins with a new incarnation, hence a new generation: its old
//!   bytes then belong to a generation nobody reads, and the peers' resync
//!   tells them to drop the partial frame. kmsg's heartbeats declare the
//!   dead node down in the meantime, as on TCP.
//! * A write by a dead incarnation that still happens (a stalled QEMU
//!   thought dead) carries the old generation in its position word, and
//!   the other end ignores it ([`RingError::Disconnected`]).
//! * Leaving cleanly ([`Layout::leave`]): close the ends, clear joined.
//!
//! # Sessions: resetting one connection
//!
//! Generations change only when a node joins or leaves, and reset all of
//! its rings. A transport also resets a single connection (a frame it
//! cannot trust, a peer silent too long), as a TCP connection is closed
//! and dialed again, without its other connections noticing. Sessions do
//! that within a generation: a producer starts a session
//! ([`Producer::start_session`]) by release-storing its `session` word,
//! a number that only grows within the generation and the stream position
//! where the session's first byte will be; then it writes that session's
//! bytes. The consumer reads `head` first and then `session`
//! ([`Consumer::session`]; the release/acquire pair on `head` orders a
//! session started before the bytes it published), skips to the
//! session's start once the bytes up to it are published
//! ([`Consumer::skip_to`]; what was left of an older session is dropped),
//! and treats a later change of the number as the connection being reset
//! by the other side. Each side starts a new session of its own whenever
//! it (re)connects, so either side's reset reaches the other.
//!
//! The 16-bit incarnations wrap round after 65,535 restarts of one node
//! (0 is skipped); a generation is two of them, so a stale write could be
//! mistaken for a current one only if it came from exactly 65,535
//! incarnations earlier.
//!
//! # Using it from the kernel
//!
//! `RingMemory` on the BAR: map it write-back (`memremap(MEMREMAP_WB)`,
//! not `ioremap`, whose uncached or write-combining stores do not keep
//! x86-TSO's order); `load_acquire_u64` is `smp_load_acquire`,
//! `store_release_u64` `smp_store_release`, `fence` `smp_mb()` (a locked
//! instruction or `mfence`), `read`/`write` plain copies. Each end is used
//! by one thread at a time (the methods take `&mut self`); kmsg holds the
//! peer's send lock around a producer and its receive work around a
//! consumer. A doorbell for node X is a write of
//! [`Layout::doorbell_value`] to the device's Doorbell register.

use super::node::{NodeId, NodeSet, MAX_NODES};

/// `magic`: the bytes `C` `O` `H` `O` `R` `T` `S` `H` as a little-endian `u64`.
pub const MAGIC: u64 = u64::from_le_bytes(*b"COHORTSH");
/// The only region layout version this code knows.
pub const VERSION: u64 = 1;
/// A cache line: the unit of alignment of slots and ring control words.
pub const LINE: usize = 64;
/// Bytes of the region header.
pub const HEADER_LEN: usize = LINE;
/// Offset of the first slot.
pub const SLOTS_OFFSET: usize = HEADER_LEN;
/// Bytes of a slot.
pub const SLOT_LEN: usize = LINE;
/// Bytes of a ring's control block (the producer's line, the consumer's line)
/// before its data.
pub const RING_CONTROL_LEN: usize = 2 * LINE;
/// Smallest ring (data bytes).
pub const MIN_RING_SIZE: usize = 256;
/// Largest ring (data bytes): positions are 32-bit, so a ring holds at most
/// 2^31 bytes; 1 GiB is plenty.
pub const MAX_RING_SIZE: usize = 1 << 30;

/// Header word offsets.
const H_MAGIC: usize = 0;
const H_VERSION: usize = 8;
const H_NR_NODES: usize = 16;
const H_REGION_SIZE: usize = 24;
const H_RING_SIZE: usize = 32;
const H_SLOTS_OFF: usize = 40;
const H_TABLE_OFF: usize = 48;
const H_RINGS_OFF: usize = 56;

/// Ring control word offsets, from the ring's base.
const R_HEAD: usize = 0;
const R_PROD_WAITING: usize = 8;
const R_SESSION: usize = 16;
const R_TAIL: usize = LINE;
const R_CONS_WAITING: usize = LINE + 8;

/// Slot `state` bits.
const SLOT_INC_MASK: u64 = 0xffff;
const SLOT_PEER_SHIFT: u32 = 16;
const SLOT_JOINED: u64 = 1 << 32;

/// The shared region, as the kernel maps it (BAR 2) or a test fakes it.
///
/// Offsets are bytes from the start of the region. This module passes only
/// offsets inside the `region_size` its [`Layout`] was made for, `u64`
/// words at multiples of 8; an implementation on memory smaller than that
/// must still not fault (the kernel's checks each range against the BAR).
pub trait RingMemory {
    /// Loads the word at `off`; later loads and stores are not reordered
    /// before it (`smp_load_acquire`).
    fn load_acquire_u64(&self, off: usize) -> u64;
    /// Stores `val` at `off`; earlier loads and stores are not reordered
    /// after it (`smp_store_release`).
    fn store_release_u64(&self, off: usize, val: u64);
    /// Copies `buf.len()` bytes at `off` into `buf` (no ordering of its own).
    fn read(&self, off: usize, buf: &mut [u8]);
    /// Copies `bytes` to `off` (no ordering of its own).
    fn write(&self, off: usize, bytes: &[u8]);
    /// A full fence: no later load is performed before an earlier store is
    /// visible to the other CPUs (`smp_mb()`).
    fn fence(&self);
}

/// Why a region cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayoutError {
    /// `nr_nodes` is 0 or above [`MAX_NODES`], or a node id is out of range.
    Invalid,
    /// The region is too small for the rings (or a ring size is not a power
    /// of two within [`MIN_RING_SIZE`]..=[`MAX_RING_SIZE`], or the region size
    /// not a multiple of [`LINE`]).
    TooSmall,
    /// Nobody formatted the region yet (its magic is 0).
    Blank,
    /// The magic is neither 0 nor [`MAGIC`].
    BadMagic,
    /// Another layout version.
    BadVersion,
    /// The header describes another layout than this node expects (another
    /// node count or region size), or is inconsistent.
    Mismatch,
}

/// What went wrong on one ring end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RingError {
    /// This end is closed (generation 0): nothing to send or receive.
    Closed,
    /// The other end is at generation `peer` (0: closed), not this end's:
    /// it has not opened yet, or it moved on (the peer re-joined) and this
    /// end must [resync](Layout::resync_producer).
    Disconnected {
        /// The generation in the other end's position word.
        peer: Gen,
    },
    /// The other end's position is impossible (more bytes in the ring than
    /// it holds): a bug or a damaged region. Treat as a reset of the
    /// connection.
    Corrupt,
}

/// The generation of a connection on one ring: who (which incarnations)
/// talk on it. 0 is [`Gen::CLOSED`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Gen(pub u32);

impl Gen {
    /// No connection.
    pub const CLOSED: Gen = Gen(0);

    /// The generation of ring (i → j) when node i is at incarnation
    /// `producer` and node j at `consumer` (both non-zero, so the
    /// generation is too).
    pub const fn of(producer: u16, consumer: u16) -> Gen {
        Gen(((producer as u32) << 16) | consumer as u32)
    }

    /// Whether this is [`Gen::CLOSED`].
    pub const fn is_closed(self) -> bool {
        self.0 == 0
    }
}

/// A position word: generation in the upper half, position in the lower.
const fn pack(gen: Gen, pos: u32) -> u64 {
    ((gen.0 as u64) << 32) | pos as u64
}

/// The generation and position of a position word.
const fn unpack(word: u64) -> (Gen, u32) {
    (Gen((word >> 32) as u32), word as u32)
}

/// "Ring the doorbell of `node`": wake it up. The value of its Doorbell
/// register write is [`Layout::doorbell_value`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Doorbell {
    /// The node to wake.
    pub node: NodeId,
}

/// What [`Producer::prepare_wait`] and [`Consumer::prepare_wait`] decide.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// The waiting flag is set and the ring still has no room (no bytes):
    /// sleep until the doorbell rings, then call `finish_wait`.
    Sleep,
    /// Something changed meanwhile (or this end had something to publish or
    /// release first): the flag is cleared again, do not sleep.
    Ready,
}

/// One node's slot, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    /// 1..=65535 once the node joined; 0 if it never did.
    pub incarnation: u16,
    /// The node's ivshmem peer id (its doorbell), valid while `joined`.
    pub peer_id: u16,
    /// Whether the node is joined (its rings may be opened).
    pub joined: bool,
}

impl Slot {
    const fn decode(word: u64) -> Slot {
        Slot {
            incarnation: (word & SLOT_INC_MASK) as u16,
            peer_id: (word >> SLOT_PEER_SHIFT) as u16,
            joined: word & SLOT_JOINED != 0,
        }
    }

    const fn encode(self) -> u64 {
        let joined = if self.joined { SLOT_JOINED } else { 0 };
        joined | ((self.peer_id as u64) << SLOT_PEER_SHIFT) | self.incarnation as u64
    }
}

/// The incarnation after `inc`: 1, 2, ..., 65535, 1, ... (never 0).
pub const fn next_incarnation(inc: u16) -> u16 {
    if inc == u16::MAX {
        1
    } else {
        inc + 1
    }
}

/// Rounds `n` up to a multiple of [`LINE`] (`None` on overflow).
const fn line_up(n: usize) -> Option<usize> {
    match n.checked_add(LINE - 1) {
        Some(v) => Some(v & !(LINE - 1)),
        None => None,
    }
}

/// Where everything is in a region of `region_size` bytes shared by
/// `nr_nodes` nodes. Pure arithmetic, checked once in the constructors:
/// every offset it hands out lies inside the region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    nr_nodes: usize,
    region_size: usize,
    ring_size: usize,
    table_off: usize,
    rings_off: usize,
}

impl Layout {
    /// The layout with the largest power-of-two ring (at most
    /// [`MAX_RING_SIZE`]) that fits.
    pub fn new(nr_nodes: usize, region_size: usize) -> Result<Layout, LayoutError> {
        let mut ring = MAX_RING_SIZE;
        while ring >= MIN_RING_SIZE {
            match Layout::with_ring_size(nr_nodes, region_size, ring) {
                Err(LayoutError::TooSmall) => ring /= 2,
                other => return other,
            }
        }
        Err(LayoutError::TooSmall)
    }

    /// The layout with rings of `ring_size` data bytes.
    pub fn with_ring_size(
        nr_nodes: usize,
        region_size: usize,
        ring_size: usize,
    ) -> Result<Layout, LayoutError> {
        if nr_nodes == 0 || nr_nodes > MAX_NODES {
            return Err(LayoutError::Invalid);
        }
        if !ring_size.is_power_of_two()
            || !(MIN_RING_SIZE..=MAX_RING_SIZE).contains(&ring_size)
            || region_size & (LINE - 1) != 0
        {
            return Err(LayoutError::TooSmall);
        }
        let (table_off, rings_off, end) =
            Self::extent(nr_nodes, ring_size).ok_or(LayoutError::TooSmall)?;
        if end > region_size {
            return Err(LayoutError::TooSmall);
        }
        Ok(Layout {
            nr_nodes,
            region_size,
            ring_size,
            table_off,
            rings_off,
        })
    }

    /// The table offset, first ring offset and end of the last ring.
    fn extent(nr_nodes: usize, ring_size: usize) -> Option<(usize, usize, usize)> {
        let table_off = SLOTS_OFFSET + SLOT_LEN * nr_nodes;
        let rings_off = line_up(table_off + 8 * nr_nodes * nr_nodes)?;
        let stride = RING_CONTROL_LEN.checked_add(ring_size)?;
        let rings = nr_nodes * (nr_nodes - 1);
        let end = stride.checked_mul(rings)?.checked_add(rings_off)?;
        Some((table_off, rings_off, end))
    }

    /// The smallest region, a power of two (as a PCI BAR must be), that
    /// holds rings of `ring_size` bytes for `nr_nodes` nodes.
    pub fn region_size_for(nr_nodes: usize, ring_size: usize) -> Option<usize> {
        if nr_nodes == 0 || nr_nodes > MAX_NODES {
            return None;
        }
        let (_, _, end) = Self::extent(nr_nodes, ring_size)?;
        end.checked_next_power_of_two()
    }

    /// Number of nodes.
    pub const fn nr_nodes(&self) -> usize {
        self.nr_nodes
    }

    /// Bytes in the region.
    pub const fn region_size(&self) -> usize {
        self.region_size
    }

    /// Data bytes of each ring.
    pub const fn ring_size(&self) -> usize {
        self.ring_size
    }

    /// Offset of the ring table.
    pub const fn table_off(&self) -> usize {
        self.table_off
    }

    /// Offset of the first ring.
    pub const fn rings_off(&self) -> usize {
        self.rings_off
    }

    /// Bytes from one ring to the next.
    pub const fn ring_stride(&self) -> usize {
        RING_CONTROL_LEN + self.ring_size
    }

    /// Offset of node `node`'s slot.
    pub fn slot_off(&self, node: NodeId) -> Result<usize, LayoutError> {
        self.check_node(node)?;
        Ok(SLOTS_OFFSET + SLOT_LEN * node.index())
    }

    fn check_node(&self, node: NodeId) -> Result<(), LayoutError> {
        if node.index() < self.nr_nodes {
            Ok(())
        } else {
            Err(LayoutError::Invalid)
        }
    }

    /// Offset of ring (`from` → `to`); `from == to` has none.
    pub fn ring_off(&self, from: NodeId, to: NodeId) -> Result<usize, LayoutError> {
        self.check_node(from)?;
        self.check_node(to)?;
        let (i, j) = (from.index(), to.index());
        if i == j {
            return Err(LayoutError::Invalid);
        }
        // Ring index: node i's n−1 rings in order of j, skipping i itself.
        let k = i * (self.nr_nodes - 1) + if j < i { j } else { j - 1 };
        Ok(self.rings_off + k * self.ring_stride())
    }

    /// Ring (`from` → `to`).
    pub fn ring(&self, from: NodeId, to: NodeId) -> Result<Ring, LayoutError> {
        Ok(Ring {
            from,
            to,
            base: self.ring_off(from, to)?,
            size: self.ring_size as u32,
        })
    }

    /// Writes the header and the ring table of a zeroed region (all slots
    /// and rings are then closed); the magic last, so that a node that sees
    /// it sees the rest. Idempotent: formatting twice with the same layout
    /// writes the same values.
    pub fn format<M: RingMemory>(&self, mem: &M) {
        let n = self.nr_nodes;
        for i in 0..n {
            for j in 0..n {
                let off = match self.ring_off(NodeId(i as u8), NodeId(j as u8)) {
                    Ok(off) => off as u64,
                    Err(_) => 0,
                };
                mem.store_release_u64(self.table_off + 8 * (i * n + j), off);
            }
        }
        let words = [
            (H_VERSION, VERSION),
            (H_NR_NODES, n as u64),
            (H_REGION_SIZE, self.region_size as u64),
            (H_RING_SIZE, self.ring_size as u64),
            (H_SLOTS_OFF, SLOTS_OFFSET as u64),
            (H_TABLE_OFF, self.table_off as u64),
            (H_RINGS_OFF, self.rings_off as u64),
        ];
        for (off, val) in words {
            mem.store_release_u64(off, val);
        }
        mem.store_release_u64(H_MAGIC, MAGIC);
    }

    /// Reads and checks the header of a formatted region of `region_size`
    /// bytes (the BAR's size): every field, and the ring table.
    pub fn read<M: RingMemory>(mem: &M, region_size: usize) -> Result<Layout, LayoutError> {
        if region_size < HEADER_LEN {
            return Err(LayoutError::TooSmall);
        }
        match mem.load_acquire_u64(H_MAGIC) {
            MAGIC => {}
            0 => return Err(LayoutError::Blank),
            _ => return Err(LayoutError::BadMagic),
        }
        if mem.load_acquire_u64(H_VERSION) != VERSION {
            return Err(LayoutError::BadVersion);
        }
        let word = |off| usize::try_from(mem.load_acquire_u64(off)).ok();
        let nr_nodes = word(H_NR_NODES).ok_or(LayoutError::Mismatch)?;
        let ring_size = word(H_RING_SIZE).ok_or(LayoutError::Mismatch)?;
        if word(H_REGION_SIZE) != Some(region_size) {
            return Err(LayoutError::Mismatch);
        }
        let layout = match Layout::with_ring_size(nr_nodes, region_size, ring_size) {
            Ok(l) => l,
            Err(LayoutError::Invalid | LayoutError::TooSmall) => return Err(LayoutError::Mismatch),
            Err(e) => return Err(e),
        };
        if word(H_SLOTS_OFF) != Some(SLOTS_OFFSET)
            || word(H_TABLE_OFF) != Some(layout.table_off)
            || word(H_RINGS_OFF) != Some(layout.rings_off)
        {
            return Err(LayoutError::Mismatch);
        }
        for i in 0..nr_nodes {
            for j in 0..nr_nodes {
                let want = layout
                    .ring_off(NodeId(i as u8), NodeId(j as u8))
                    .unwrap_or(0);
                if word(layout.table_off + 8 * (i * nr_nodes + j)) != Some(want) {
                    return Err(LayoutError::Mismatch);
                }
            }
        }
        Ok(layout)
    }

    /// The layout of a region a node maps: formats it if it is blank (the
    /// server normally did), then reads it back; fails unless it is for
    /// `nr_nodes` nodes.
    pub fn attach<M: RingMemory>(
        mem: &M,
        nr_nodes: usize,
        region_size: usize,
    ) -> Result<Layout, LayoutError> {
        let layout = match Layout::read(mem, region_size) {
            Err(LayoutError::Blank) => {
                let l = Layout::new(nr_nodes, region_size)?;
                l.format(mem);
                Layout::read(mem, region_size)?
            }
            other => other?,
        };
        if layout.nr_nodes != nr_nodes {
            return Err(LayoutError::Mismatch);
        }
        Ok(layout)
    }

    /// Node `node`'s slot.
    pub fn slot<M: RingMemory>(&self, mem: &M, node: NodeId) -> Result<Slot, LayoutError> {
        Ok(Slot::decode(mem.load_acquire_u64(self.slot_off(node)?)))
    }

    /// The nodes whose slot says joined.
    pub fn joined<M: RingMemory>(&self, mem: &M) -> NodeSet {
        let mut set = NodeSet::EMPTY;
        for n in 0..self.nr_nodes {
            let node = NodeId(n as u8);
            if self.slot(mem, node).is_ok_and(|s| s.joined) {
                set.insert(node);
            }
        }
        set
    }

    /// Joins node `me` with ivshmem peer id `peer_id` (its IVPosition
    /// register): closes every ring end it owns, then publishes its slot
    /// with its next incarnation, which it returns. Then open the ends
    /// ([`Layout::open_producer`], [`Layout::open_consumer`]) and ring every
    /// joined peer ([`Layout::joined`]).
    pub fn join<M: RingMemory>(
        &self,
        mem: &M,
        me: NodeId,
        peer_id: u16,
    ) -> Result<u16, LayoutError> {
        let old = self.slot(mem, me)?;
        self.close_ends(mem, me)?;
        let incarnation = next_incarnation(old.incarnation);
        let slot = Slot {
            incarnation,
            peer_id,
            joined: true,
        };
        mem.store_release_u64(self.slot_off(me)?, slot.encode());
        Ok(incarnation)
    }

    /// Leaves cleanly: closes every ring end of `me`, then clears joined
    /// (the incarnation stays, so the next join goes on from it). Ring the
    /// joined peers afterwards so that they close their ends.
    pub fn leave<M: RingMemory>(&self, mem: &M, me: NodeId) -> Result<(), LayoutError> {
        let old = self.slot(mem, me)?;
        self.close_ends(mem, me)?;
        let slot = Slot {
            joined: false,
            ..old
        };
        mem.store_release_u64(self.slot_off(me)?, slot.encode());
        Ok(())
    }

    /// Closes the producer end of `me`'s outgoing rings and the consumer
    /// end of its incoming ones.
    fn close_ends<M: RingMemory>(&self, mem: &M, me: NodeId) -> Result<(), LayoutError> {
        self.check_node(me)?;
        for n in 0..self.nr_nodes {
            let peer = NodeId(n as u8);
            if peer == me {
                continue;
            }
            Producer::with_gen(mem, self.ring(me, peer)?, Gen::CLOSED);
            Consumer::with_gen(mem, self.ring(peer, me)?, Gen::CLOSED);
        }
        Ok(())
    }

    /// The generation of ring (`from` → `to`) as the slots give it:
    /// [`Gen::of`] their incarnations if both are joined, else closed.
    pub fn conn_gen<M: RingMemory>(
        &self,
        mem: &M,
        from: NodeId,
        to: NodeId,
    ) -> Result<Gen, LayoutError> {
        let (p, c) = (self.slot(mem, from)?, self.slot(mem, to)?);
        if from == to || !p.joined || !c.joined || p.incarnation == 0 || c.incarnation == 0 {
            return Ok(Gen::CLOSED);
        }
        Ok(Gen::of(p.incarnation, c.incarnation))
    }

    /// `me`'s end of ring (`me` → `peer`), opened at the generation the
    /// slots give (closed if either is not joined).
    pub fn open_producer<M: RingMemory>(
        &self,
        mem: &M,
        me: NodeId,
        peer: NodeId,
    ) -> Result<Producer, LayoutError> {
        let gen = self.conn_gen(mem, me, peer)?;
        Ok(Producer::with_gen(mem, self.ring(me, peer)?, gen))
    }

    /// `me`'s end of ring (`peer` → `me`), opened at the generation the
    /// slots give (closed if either is not joined).
    pub fn open_consumer<M: RingMemory>(
        &self,
        mem: &M,
        peer: NodeId,
        me: NodeId,
    ) -> Result<Consumer, LayoutError> {
        let gen = self.conn_gen(mem, peer, me)?;
        Ok(Consumer::with_gen(mem, self.ring(peer, me)?, gen))
    }

    /// Brings a producer end to the generation the slots give now: if that
    /// is another one, the end is reopened there (bytes written and not yet
    /// consumed are lost: the caller drops what it was sending).
    pub fn resync_producer<M: RingMemory>(
        &self,
        mem: &M,
        p: &mut Producer,
    ) -> Result<Resync, LayoutError> {
        let gen = self.conn_gen(mem, p.ring.from, p.ring.to)?;
        if gen == p.gen {
            return Ok(Resync::Unchanged);
        }
        *p = Producer::with_gen(mem, p.ring, gen);
        Ok(Resync::reset(gen, p.ring.to))
    }

    /// Brings a consumer end to the generation the slots give now: if that
    /// is another one, the end is reopened there and the caller drops any
    /// partial frame it had read.
    pub fn resync_consumer<M: RingMemory>(
        &self,
        mem: &M,
        c: &mut Consumer,
    ) -> Result<Resync, LayoutError> {
        let gen = self.conn_gen(mem, c.ring.from, c.ring.to)?;
        if gen == c.gen {
            return Ok(Resync::Unchanged);
        }
        *c = Consumer::with_gen(mem, c.ring, gen);
        Ok(Resync::reset(gen, c.ring.from))
    }

    /// The value to write to the ivshmem Doorbell register to ring
    /// `bell.node` on `vector`: its peer id in bits 16..31, the vector in
    /// 0..15. `None` if the node is not joined (nobody to wake).
    pub fn doorbell_value<M: RingMemory>(
        &self,
        mem: &M,
        bell: Doorbell,
        vector: u16,
    ) -> Option<u32> {
        let slot = self.slot(mem, bell.node).ok()?;
        slot.joined
            .then_some(((slot.peer_id as u32) << 16) | vector as u32)
    }
}

/// What a resync did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resync {
    /// The end was already at the slots' generation.
    Unchanged,
    /// The end was reopened at `gen` (closed if [`Gen::CLOSED`]): drop the
    /// partial frame, and ring `doorbell` (the other side, if the new
    /// connection is open) so that it resyncs too.
    Reset {
        /// The new generation.
        gen: Gen,
        /// The other side's doorbell, when `gen` is open.
        doorbell: Option<Doorbell>,
    },
}

impl Resync {
    fn reset(gen: Gen, other: NodeId) -> Resync {
        Resync::Reset {
            gen,
            doorbell: (!gen.is_closed()).then_some(Doorbell { node: other }),
        }
    }
}

/// One ring of a [`Layout`]: where it is and who writes and reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ring {
    from: NodeId,
    to: NodeId,
    base: usize,
    size: u32,
}

impl Ring {
    /// The producer's node.
    pub const fn from(&self) -> NodeId {
        self.from
    }

    /// The consumer's node.
    pub const fn to(&self) -> NodeId {
        self.to
    }

    /// Offset of the ring's control block in the region.
    pub const fn base(&self) -> usize {
        self.base
    }

    /// Data bytes.
    pub const fn size(&self) -> usize {
        self.size as usize
    }

    /// Offset in the region of the stream's byte at `pos`.
    const fn data_off(&self, pos: u32) -> usize {
        self.base + RING_CONTROL_LEN + (pos & (self.size - 1)) as usize
    }

    /// Bytes from `pos` to the end of the data area.
    const fn bytes_to_end(&self, pos: u32) -> usize {
        (self.size - (pos & (self.size - 1))) as usize
    }

    /// Copies `bytes` (at most `size` of them) into the stream at `pos`.
    fn copy_in<M: RingMemory>(&self, mem: &M, pos: u32, bytes: &[u8]) {
        let (first, second) = bytes.split_at(bytes.len().min(self.bytes_to_end(pos)));
        mem.write(self.data_off(pos), first);
        if !second.is_empty() {
            mem.write(self.base + RING_CONTROL_LEN, second);
        }
    }

    /// Copies `buf.len()` bytes (at most `size`) of the stream at `pos` out.
    fn copy_out<M: RingMemory>(&self, mem: &M, pos: u32, buf: &mut [u8]) {
        let split = buf.len().min(self.bytes_to_end(pos));
        let (first, second) = buf.split_at_mut(split);
        mem.read(self.data_off(pos), first);
        if !second.is_empty() {
            mem.read(self.base + RING_CONTROL_LEN, second);
        }
    }
}

/// The producer end of a ring: the only writer of its data, `head` and
/// `prod_waiting`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Producer {
    ring: Ring,
    gen: Gen,
    /// Bytes published (the `head` this end stored last).
    head: u32,
    /// Bytes written, published or not.
    written: u32,
    /// The last session started in this generation (0: none).
    session: u32,
}

impl Producer {
    /// A closed producer end that has not touched the region.
    pub const fn closed(ring: Ring) -> Producer {
        Producer {
            ring,
            gen: Gen::CLOSED,
            head: 0,
            written: 0,
            session: 0,
        }
    }

    /// Opens the end at generation `gen` (closes it if [`Gen::CLOSED`]):
    /// clears `prod_waiting` and release-stores `head = (gen, 0)`. Never
    /// reopen an end at the generation it has: the other end would see its
    /// position go back (which is [`RingError::Corrupt`]).
    pub fn with_gen<M: RingMemory>(mem: &M, ring: Ring, gen: Gen) -> Producer {
        mem.store_release_u64(ring.base + R_PROD_WAITING, 0);
        mem.store_release_u64(ring.base + R_SESSION, 0);
        mem.store_release_u64(ring.base + R_HEAD, pack(gen, 0));
        Producer {
            gen,
            ..Producer::closed(ring)
        }
    }

    /// The ring.
    pub const fn ring(&self) -> Ring {
        self.ring
    }

    /// The generation this end is open at.
    pub const fn gen(&self) -> Gen {
        self.gen
    }

    /// Bytes written but not yet published.
    pub const fn unpublished(&self) -> usize {
        self.written.wrapping_sub(self.head) as usize
    }

    /// Starts a new session at the current stream position: what this end
    /// writes from now on belongs to it, and the consumer drops whatever
    /// it has not read of the sessions before. Returns the session's
    /// number (1, 2, ... within the generation). Whatever was written and
    /// not published is dropped (not published: the new session starts
    /// where the published stream ends).
    pub fn start_session<M: RingMemory>(&mut self, mem: &M) -> Result<u32, RingError> {
        if self.gen.is_closed() {
            return Err(RingError::Closed);
        }
        self.written = self.head;
        self.session = self.session.checked_add(1).ok_or(RingError::Corrupt)?;
        mem.store_release_u64(
            self.ring.base + R_SESSION,
            pack(Gen(self.session), self.written),
        );
        Ok(self.session)
    }

    /// The last session started (0: none in this generation).
    pub const fn session(&self) -> u32 {
        self.session
    }

    /// The consumer's `tail`, if it is at this end's generation and sane.
    fn tail<M: RingMemory>(&self, mem: &M) -> Result<u32, RingError> {
        if self.gen.is_closed() {
            return Err(RingError::Closed);
        }
        let (gen, tail) = unpack(mem.load_acquire_u64(self.ring.base + R_TAIL));
        if gen != self.gen {
            return Err(RingError::Disconnected { peer: gen });
        }
        if self.written.wrapping_sub(tail) > self.ring.size {
            return Err(RingError::Corrupt);
        }
        Ok(tail)
    }

    /// Bytes that [`Producer::write`] can take now.
    pub fn free<M: RingMemory>(&self, mem: &M) -> Result<usize, RingError> {
        let tail = self.tail(mem)?;
        Ok((self.ring.size - self.written.wrapping_sub(tail)) as usize)
    }

    /// Copies as much of `bytes` as there is room for into the ring
    /// (wrapping round its end) and returns how much; the consumer sees it
    /// only after [`Producer::publish`].
    pub fn write<M: RingMemory>(&mut self, mem: &M, bytes: &[u8]) -> Result<usize, RingError> {
        let n = self.free(mem)?.min(bytes.len());
        self.ring.copy_in(mem, self.written, &bytes[..n]);
        self.written = self.written.wrapping_add(n as u32);
        Ok(n)
    }

    /// Publishes what was written: release-stores `head`, then a full
    /// fence, then reads `cons_waiting`: returns the consumer's doorbell if
    /// it sleeps (or is about to). Nothing to publish, nothing done; nor if
    /// the consumer end left this generation since the bytes were written
    /// (they belong to a dead connection, and a `head` stored now would
    /// only hide the new producer's: the next [`Producer::free`] says
    /// [`RingError::Disconnected`]).
    pub fn publish<M: RingMemory>(&mut self, mem: &M) -> Option<Doorbell> {
        if self.gen.is_closed() || self.written == self.head {
            return None;
        }
        let (gen, _) = unpack(mem.load_acquire_u64(self.ring.base + R_TAIL));
        if gen != self.gen {
            return None;
        }
        mem.store_release_u64(self.ring.base + R_HEAD, pack(self.gen, self.written));
        self.head = self.written;
        // Store→load: `head` must be visible before `cons_waiting` is read,
        // or both sides may miss each other (see the module's Wake-ups).
        mem.fence();
        (mem.load_acquire_u64(self.ring.base + R_CONS_WAITING) != 0)
            .then_some(Doorbell { node: self.ring.to })
    }

    /// [`Producer::write`] then [`Producer::publish`].
    pub fn send<M: RingMemory>(
        &mut self,
        mem: &M,
        bytes: &[u8],
    ) -> Result<(usize, Option<Doorbell>), RingError> {
        let n = self.write(mem, bytes)?;
        Ok((n, self.publish(mem)))
    }

    /// Before sleeping for room for `want` bytes (clamped to `1..=size`):
    /// sets `prod_waiting`, a full fence, then looks at the room again.
    /// [`Wait::Sleep`]: sleep until the doorbell rings, then
    /// [`Producer::finish_wait`]. [`Wait::Ready`] (room came, or something
    /// is still unpublished and must be published first): the flag is
    /// cleared, go on. On an error the flag is cleared too.
    pub fn prepare_wait<M: RingMemory>(&mut self, mem: &M, want: usize) -> Result<Wait, RingError> {
        if self.gen.is_closed() {
            return Err(RingError::Closed);
        }
        if self.unpublished() != 0 {
            return Ok(Wait::Ready);
        }
        let want = want.clamp(1, self.ring.size());
        mem.store_release_u64(self.ring.base + R_PROD_WAITING, 1);
        // Store→load, as in `publish`: the flag before the second look.
        mem.fence();
        match self.free(mem) {
            Ok(free) if free < want => Ok(Wait::Sleep),
            other => {
                self.finish_wait(mem);
                other.map(|_| Wait::Ready)
            }
        }
    }

    /// Clears `prod_waiting` (after waking up).
    pub fn finish_wait<M: RingMemory>(&mut self, mem: &M) {
        mem.store_release_u64(self.ring.base + R_PROD_WAITING, 0);
    }
}

/// The consumer end of a ring: the only writer of its `tail` and
/// `cons_waiting`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Consumer {
    ring: Ring,
    gen: Gen,
    /// Bytes released (the `tail` this end stored last).
    tail: u32,
    /// Bytes read, released or not.
    read: u32,
}

impl Consumer {
    /// A closed consumer end that has not touched the region.
    pub const fn closed(ring: Ring) -> Consumer {
        Consumer {
            ring,
            gen: Gen::CLOSED,
            tail: 0,
            read: 0,
        }
    }

    /// Opens the end at generation `gen` (closes it if [`Gen::CLOSED`]):
    /// clears `cons_waiting` and release-stores `tail = (gen, 0)`. Never
    /// reopen an end at the generation it has.
    pub fn with_gen<M: RingMemory>(mem: &M, ring: Ring, gen: Gen) -> Consumer {
        mem.store_release_u64(ring.base + R_CONS_WAITING, 0);
        mem.store_release_u64(ring.base + R_TAIL, pack(gen, 0));
        Consumer {
            gen,
            ..Consumer::closed(ring)
        }
    }

    /// The ring.
    pub const fn ring(&self) -> Ring {
        self.ring
    }

    /// The generation this end is open at.
    pub const fn gen(&self) -> Gen {
        self.gen
    }

    /// Bytes read but not yet released.
    pub const fn unreleased(&self) -> usize {
        self.read.wrapping_sub(self.tail) as usize
    }

    /// The producer's `head`, if it is at this end's generation and sane.
    fn head<M: RingMemory>(&self, mem: &M) -> Result<u32, RingError> {
        if self.gen.is_closed() {
            return Err(RingError::Closed);
        }
        let (gen, head) = unpack(mem.load_acquire_u64(self.ring.base + R_HEAD));
        if gen != self.gen {
            return Err(RingError::Disconnected { peer: gen });
        }
        if head.wrapping_sub(self.tail) > self.ring.size
            || head.wrapping_sub(self.read) > self.ring.size
        {
            return Err(RingError::Corrupt);
        }
        Ok(head)
    }

    /// Bytes that [`Consumer::read`] can return now.
    pub fn available<M: RingMemory>(&self, mem: &M) -> Result<usize, RingError> {
        Ok(self.head(mem)?.wrapping_sub(self.read) as usize)
    }

    /// Copies up to `buf.len()` available bytes out of the ring (wrapping
    /// round its end) and returns how many; their room goes back to the
    /// producer at [`Consumer::release`].
    pub fn read<M: RingMemory>(&mut self, mem: &M, buf: &mut [u8]) -> Result<usize, RingError> {
        let n = self.available(mem)?.min(buf.len());
        self.ring.copy_out(mem, self.read, &mut buf[..n]);
        self.read = self.read.wrapping_add(n as u32);
        Ok(n)
    }

    /// The producer's current session: its number (0: none yet) and the
    /// stream position where it starts. Loads `head` first, so that a
    /// session started before bytes this end can see is seen too.
    pub fn session<M: RingMemory>(&self, mem: &M) -> Result<(u32, u32), RingError> {
        self.head(mem)?;
        let (number, start) = unpack(mem.load_acquire_u64(self.ring.base + R_SESSION));
        Ok((number.0, start))
    }

    /// Moves this end to stream position `start` (a session's), dropping
    /// the bytes before it: `Ok(true)` once done, `Ok(false)` while the
    /// bytes up to `start` are not all published yet. A `start` behind
    /// what this end already read, or beyond what the ring can hold, is
    /// [`RingError::Corrupt`].
    pub fn skip_to<M: RingMemory>(&mut self, mem: &M, start: u32) -> Result<bool, RingError> {
        let head = self.head(mem)?;
        let ahead = start.wrapping_sub(self.read);
        if ahead > self.ring.size {
            return Err(RingError::Corrupt);
        }
        if ahead > head.wrapping_sub(self.read) {
            return Ok(false);
        }
        self.read = start;
        Ok(true)
    }

    /// Skips up to `n` available bytes without copying them (a frame being
    /// dropped) and returns how many.
    pub fn skip<M: RingMemory>(&mut self, mem: &M, n: usize) -> Result<usize, RingError> {
        let n = self.available(mem)?.min(n);
        self.read = self.read.wrapping_add(n as u32);
        Ok(n)
    }

    /// Gives the bytes read back to the producer: release-stores `tail`
    /// (after the reads of those bytes), a full fence, then reads
    /// `prod_waiting`: returns the producer's doorbell if it sleeps for
    /// room. Nothing to release, nothing done.
    pub fn release<M: RingMemory>(&mut self, mem: &M) -> Option<Doorbell> {
        if self.gen.is_closed() || self.read == self.tail {
            return None;
        }
        mem.store_release_u64(self.ring.base + R_TAIL, pack(self.gen, self.read));
        self.tail = self.read;
        // Store→load: see `Producer::publish`.
        mem.fence();
        (mem.load_acquire_u64(self.ring.base + R_PROD_WAITING) != 0).then_some(Doorbell {
            node: self.ring.from,
        })
    }

    /// [`Consumer::read`] then [`Consumer::release`].
    pub fn recv<M: RingMemory>(
        &mut self,
        mem: &M,
        buf: &mut [u8],
    ) -> Result<(usize, Option<Doorbell>), RingError> {
        let n = self.read(mem, buf)?;
        Ok((n, self.release(mem)))
    }

    /// Before sleeping for bytes: sets `cons_waiting`, a full fence, then
    /// looks at `head` again. [`Wait::Sleep`]: sleep until the doorbell
    /// rings, then [`Consumer::finish_wait`]. [`Wait::Ready`] (bytes came,
    /// or something read is still unreleased and must be released first):
    /// the flag is cleared, go on. On an error the flag is cleared too.
    pub fn prepare_wait<M: RingMemory>(&mut self, mem: &M) -> Result<Wait, RingError> {
        if self.gen.is_closed() {
            return Err(RingError::Closed);
        }
        if self.unreleased() != 0 {
            return Ok(Wait::Ready);
        }
        mem.store_release_u64(self.ring.base + R_CONS_WAITING, 1);
        // Store→load: the flag must be visible before `head` is read again.
        mem.fence();
        match self.available(mem) {
            Ok(0) => Ok(Wait::Sleep),
            other => {
                self.finish_wait(mem);
                other.map(|_| Wait::Ready)
            }
        }
    }

    /// Clears `cons_waiting` (after waking up).
    pub fn finish_wait<M: RingMemory>(&mut self, mem: &M) {
        mem.store_release_u64(self.ring.base + R_CONS_WAITING, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::cell::RefCell;
    use std::vec;
    use std::vec::Vec;

    /// A region in a `Vec`, for single-threaded tests.
    struct Mem(RefCell<Vec<u8>>);

    impl Mem {
        fn new(size: usize) -> Mem {
            Mem(RefCell::new(vec![0; size]))
        }
    }

    impl RingMemory for Mem {
        fn load_acquire_u64(&self, off: usize) -> u64 {
            let m = self.0.borrow();
            u64::from_le_bytes(m[off..off + 8].try_into().unwrap())
        }
        fn store_release_u64(&self, off: usize, val: u64) {
            self.0.borrow_mut()[off..off + 8].copy_from_slice(&val.to_le_bytes());
        }
        fn read(&self, off: usize, buf: &mut [u8]) {
            buf.copy_from_slice(&self.0.borrow()[off..off + buf.len()]);
        }
        fn write(&self, off: usize, bytes: &[u8]) {
            self.0.borrow_mut()[off..off + bytes.len()].copy_from_slice(bytes);
        }
        fn fence(&self) {}
    }

    const N: fn(u8) -> NodeId = NodeId;

    #[test]
    fn layout_offsets() {
        let l = Layout::new(3, 8 << 20).unwrap();
        assert_eq!(l.ring_size(), 1 << 20);
        assert_eq!(l.table_off(), 64 + 3 * 64);
        assert_eq!(l.rings_off(), 256 + 128); // 9 table words, up to a line
        assert_eq!(l.slot_off(N(2)), Ok(64 + 128));
        let stride = 128 + (1 << 20);
        let mut seen = vec![];
        for i in 0..3 {
            for j in 0..3 {
                match l.ring_off(N(i), N(j)) {
                    Ok(off) => {
                        assert_ne!(i, j);
                        assert_eq!((off - l.rings_off()) % stride, 0);
                        assert_eq!(off % LINE, 0);
                        assert!(off + stride <= l.region_size());
                        seen.push(off);
                    }
                    Err(e) => {
                        assert_eq!(i, j);
                        assert_eq!(e, LayoutError::Invalid);
                    }
                }
            }
        }
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), 6);
        assert_eq!(l.ring_off(N(3), N(0)), Err(LayoutError::Invalid));
        assert_eq!(l.slot_off(N(3)), Err(LayoutError::Invalid));
    }

    #[test]
    fn a_session_resets_one_connection_without_a_new_generation() {
        let mem = Mem::new(1 << 16);
        let l = Layout::with_ring_size(2, 1 << 16, 256).unwrap();
        l.format(&mem);
        l.join(&mem, N(0), 7).unwrap();
        l.join(&mem, N(1), 8).unwrap();
        let mut p = l.open_producer(&mem, N(0), N(1)).unwrap();
        let mut c = l.open_consumer(&mem, N(0), N(1)).unwrap();
        assert_eq!(c.session(&mem), Ok((0, 0)));
        assert_eq!(p.start_session(&mem), Ok(1));
        p.send(&mem, b"hello, old").unwrap();
        assert_eq!(c.session(&mem), Ok((1, 0)));
        assert_eq!(c.skip_to(&mem, 0), Ok(true));
        let mut buf = [0u8; 6];
        assert_eq!(c.read(&mem, &mut buf), Ok(6));
        assert_eq!(&buf, b"hello,");
        // A reset: half of "hello, old" is unread; a written but unpublished
        // tail is dropped with it.
        p.write(&mem, b"never published").unwrap();
        assert_eq!(p.start_session(&mem), Ok(2));
        assert_eq!(c.session(&mem), Ok((2, 10)));
        assert_eq!(c.skip_to(&mem, 10), Ok(true));
        p.send(&mem, b"new").unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(c.read(&mem, &mut buf), Ok(3));
        assert_eq!(&buf[..3], b"new");
        // A session whose start is not published yet: wait.
        let gen = p.gen();
        p.write(&mem, b"x").unwrap();
        assert_eq!(p.start_session(&mem), Ok(3));
        assert_eq!(c.session(&mem), Ok((3, 13)));
        assert_eq!(c.skip_to(&mem, 13), Ok(true));
        assert_eq!(c.skip_to(&mem, 14), Ok(false));
        // A start behind what was read, or beyond the ring, is corrupt.
        assert_eq!(c.skip_to(&mem, 12), Err(RingError::Corrupt));
        assert_eq!(c.skip_to(&mem, 13 + 257), Err(RingError::Corrupt));
        // A new generation zeroes the session word.
        let p2 = Producer::with_gen(&mem, p.ring(), Gen(gen.0 + 1));
        assert_eq!(p2.session(), 0);
        let c2 = Consumer::with_gen(&mem, c.ring(), Gen(gen.0 + 1));
        assert_eq!(c2.session(&mem), Ok((0, 0)));
    }

    #[test]
    fn layout_limits() {
        assert_eq!(Layout::new(0, 8 << 20), Err(LayoutError::Invalid));
        assert_eq!(Layout::new(65, 8 << 20), Err(LayoutError::Invalid));
        assert_eq!(Layout::new(64, 8 << 20).unwrap().ring_size(), 1024);
        assert_eq!(Layout::new(64, 1 << 20), Err(LayoutError::TooSmall));
        assert_eq!(Layout::new(2, 100), Err(LayoutError::TooSmall));
        assert_eq!(
            Layout::with_ring_size(2, 8 << 20, 1000),
            Err(LayoutError::TooSmall)
        );
        // One node has no rings at all.
        assert_eq!(Layout::new(1, 4096).unwrap().ring_size(), MAX_RING_SIZE);
        let size = Layout::region_size_for(64, 64 << 10).unwrap();
        assert!(size.is_power_of_two());
        let l = Layout::with_ring_size(64, size, 64 << 10).unwrap();
        assert_eq!(Layout::new(64, size).unwrap().ring_size(), 64 << 10);
        let last = l.ring_off(N(63), N(62)).unwrap();
        assert!(last + l.ring_stride() <= size);
        assert_eq!(Layout::region_size_for(2, 1 << 20), Some(4 << 20));
        assert_eq!(Layout::region_size_for(0, 1 << 20), None);
        assert_eq!(Layout::region_size_for(2, usize::MAX), None);
    }

    #[test]
    fn format_read_attach() {
        let mem = Mem::new(1 << 20);
        assert_eq!(Layout::read(&mem, 1 << 20), Err(LayoutError::Blank));
        let l = Layout::attach(&mem, 4, 1 << 20).unwrap();
        assert_eq!(Layout::read(&mem, 1 << 20), Ok(l));
        assert_eq!(Layout::attach(&mem, 4, 1 << 20), Ok(l));
        assert_eq!(Layout::attach(&mem, 3, 1 << 20), Err(LayoutError::Mismatch));
        assert_eq!(Layout::read(&mem, 1 << 19), Err(LayoutError::Mismatch));
        // Any damaged header word is refused.
        for off in (0..HEADER_LEN).step_by(8) {
            let saved = mem.load_acquire_u64(off);
            mem.store_release_u64(off, saved ^ 0x40);
            let r = Layout::read(&mem, 1 << 20);
            assert!(r.is_err(), "word {off}: {r:?}");
            mem.store_release_u64(off, saved);
        }
        // And so is a damaged ring table.
        let t = l.table_off() + 8 * 5;
        mem.store_release_u64(t, 1);
        assert_eq!(Layout::read(&mem, 1 << 20), Err(LayoutError::Mismatch));
        mem.store_release_u64(t, 0xffff_ffff_ffff_ffff);
        assert_eq!(Layout::read(&mem, 1 << 20), Err(LayoutError::Mismatch));
    }

    #[test]
    fn garbage_header_never_panics() {
        let mut x = 0x1234_5678_9abc_def1u64;
        for _ in 0..2000 {
            let mem = Mem::new(4096);
            Layout::new(2, 4096).unwrap().format(&mem);
            for _ in 0..3 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let off = (x as usize % (HEADER_LEN / 8)) * 8;
                let val = match x >> 60 {
                    0 => 0,
                    1 => u64::MAX,
                    2 => x >> 40,
                    _ => x,
                };
                if off != 0 || x & 1 == 0 {
                    mem.store_release_u64(off, val);
                }
            }
            if let Ok(l) = Layout::read(&mem, 4096) {
                assert!(l.ring_off(N(1), N(0)).unwrap() + l.ring_stride() <= 4096);
            }
        }
    }

    #[test]
    fn slots_and_generations() {
        let mem = Mem::new(1 << 16);
        let l = Layout::attach(&mem, 3, 1 << 16).unwrap();
        assert_eq!(l.joined(&mem), NodeSet::EMPTY);
        assert_eq!(l.join(&mem, N(0), 7), Ok(1));
        assert_eq!(l.conn_gen(&mem, N(0), N(1)), Ok(Gen::CLOSED));
        assert_eq!(l.join(&mem, N(1), 9), Ok(1));
        assert_eq!(l.conn_gen(&mem, N(0), N(1)), Ok(Gen::of(1, 1)));
        assert_eq!(
            l.slot(&mem, N(1)),
            Ok(Slot {
                incarnation: 1,
                peer_id: 9,
                joined: true
            })
        );
        assert_eq!(
            l.doorbell_value(&mem, Doorbell { node: N(1) }, 0),
            Some(9 << 16)
        );
        assert_eq!(l.doorbell_value(&mem, Doorbell { node: N(2) }, 0), None);
        // Node 1 restarts with another ivshmem id.
        assert_eq!(l.join(&mem, N(1), 12), Ok(2));
        assert_eq!(l.conn_gen(&mem, N(0), N(1)), Ok(Gen::of(1, 2)));
        assert_eq!(l.conn_gen(&mem, N(1), N(0)), Ok(Gen::of(2, 1)));
        assert_eq!(
            l.doorbell_value(&mem, Doorbell { node: N(1) }, 3),
            Some(12 << 16 | 3)
        );
        assert_eq!(l.joined(&mem), NodeSet(0b011));
        l.leave(&mem, N(1)).unwrap();
        assert_eq!(l.joined(&mem), NodeSet(0b001));
        assert_eq!(l.conn_gen(&mem, N(0), N(1)), Ok(Gen::CLOSED));
        assert_eq!(l.join(&mem, N(1), 13), Ok(3));
        assert_eq!(next_incarnation(u16::MAX), 1);
        assert_eq!(l.join(&mem, N(3), 1), Err(LayoutError::Invalid));
    }

    /// Two joined nodes and their ends of ring (0 → 1).
    fn pair(ring_size: usize) -> (Mem, Layout, Producer, Consumer) {
        let size = Layout::region_size_for(2, ring_size).unwrap();
        let mem = Mem::new(size);
        let l = Layout::with_ring_size(2, size, ring_size).unwrap();
        l.format(&mem);
        l.join(&mem, N(0), 0).unwrap();
        l.join(&mem, N(1), 1).unwrap();
        let p = l.open_producer(&mem, N(0), N(1)).unwrap();
        let c = l.open_consumer(&mem, N(0), N(1)).unwrap();
        (mem, l, p, c)
    }

    #[test]
    fn bytes_wrap_round() {
        let (mem, _, mut p, mut c) = pair(256);
        let mut out = [0u8; 300];
        let mut next_in = 0u8;
        let mut next_out = 0u8;
        for round in 0..100usize {
            let chunk: Vec<u8> = (0..(round * 37) % 300)
                .map(|_| {
                    next_in = next_in.wrapping_add(1);
                    next_in
                })
                .collect();
            let mut done = 0;
            while done < chunk.len() {
                let (n, _) = p.send(&mem, &chunk[done..]).unwrap();
                done += n;
                let (m, _) = c.recv(&mem, &mut out[..(round % 7 + 1) * 40]).unwrap();
                for &b in &out[..m] {
                    next_out = next_out.wrapping_add(1);
                    assert_eq!(b, next_out);
                }
            }
        }
        loop {
            let (m, _) = c.recv(&mem, &mut out).unwrap();
            if m == 0 {
                break;
            }
            for &b in &out[..m] {
                next_out = next_out.wrapping_add(1);
                assert_eq!(b, next_out);
            }
        }
        assert_eq!(next_in, next_out);
    }

    #[test]
    fn full_and_empty() {
        let (mem, _, mut p, mut c) = pair(256);
        assert_eq!(p.free(&mem), Ok(256));
        assert_eq!(c.available(&mem), Ok(0));
        assert_eq!(p.write(&mem, &[1; 300]), Ok(256));
        // Not published yet: invisible.
        assert_eq!(c.available(&mem), Ok(0));
        assert_eq!(p.unpublished(), 256);
        assert_eq!(p.publish(&mem), None);
        assert_eq!(p.publish(&mem), None);
        assert_eq!(c.available(&mem), Ok(256));
        assert_eq!(p.write(&mem, &[2; 10]), Ok(0));
        assert_eq!(c.skip(&mem, 100), Ok(100));
        // Not released yet: no room.
        assert_eq!(p.free(&mem), Ok(0));
        assert_eq!(c.release(&mem), None);
        assert_eq!(p.free(&mem), Ok(100));
    }

    #[test]
    fn wake_up_flags() {
        let (mem, _, mut p, mut c) = pair(256);
        // Empty ring: the consumer may sleep; the producer's publish rings it.
        assert_eq!(c.prepare_wait(&mem), Ok(Wait::Sleep));
        assert_eq!(p.write(&mem, b"x"), Ok(1));
        assert_eq!(p.publish(&mem), Some(Doorbell { node: N(1) }));
        c.finish_wait(&mem);
        assert_eq!(p.write(&mem, b"y"), Ok(1));
        assert_eq!(p.publish(&mem), None, "nobody waits: no doorbell");
        // Bytes there: no sleep, flag cleared.
        assert_eq!(c.prepare_wait(&mem), Ok(Wait::Ready));
        assert_eq!(p.write(&mem, b"z"), Ok(1));
        assert_eq!(p.publish(&mem), None);
        // Full ring: the producer may sleep; the consumer's release rings it.
        assert_eq!(p.write(&mem, &[0; 253]), Ok(253));
        assert_eq!(
            p.prepare_wait(&mem, 1),
            Ok(Wait::Ready),
            "unpublished first"
        );
        assert_eq!(p.publish(&mem), None);
        assert_eq!(p.prepare_wait(&mem, 1), Ok(Wait::Sleep));
        let mut buf = [0u8; 3];
        assert_eq!(c.read(&mem, &mut buf), Ok(3));
        assert_eq!(&buf, b"xyz");
        assert_eq!(c.prepare_wait(&mem), Ok(Wait::Ready), "unreleased first");
        assert_eq!(c.release(&mem), Some(Doorbell { node: N(0) }));
        p.finish_wait(&mem);
        assert_eq!(c.skip(&mem, 1), Ok(1));
        assert_eq!(c.release(&mem), None);
        // Room for 4, wants 10: sleeps.
        assert_eq!(p.prepare_wait(&mem, 10), Ok(Wait::Sleep));
        assert_eq!(p.prepare_wait(&mem, 4), Ok(Wait::Ready));
    }

    #[test]
    fn generations_gate_both_ends() {
        let mem = Mem::new(1 << 16);
        let l = Layout::attach(&mem, 2, 1 << 16).unwrap();
        let ring = l.ring(N(0), N(1)).unwrap();
        let mut p = Producer::closed(ring);
        assert_eq!(p.free(&mem), Err(RingError::Closed));
        assert_eq!(p.publish(&mem), None);
        assert_eq!(p.prepare_wait(&mem, 1), Err(RingError::Closed));
        l.join(&mem, N(0), 0).unwrap();
        p = l.open_producer(&mem, N(0), N(1)).unwrap();
        assert_eq!(p.gen(), Gen::CLOSED, "node 1 is not joined");
        l.join(&mem, N(1), 1).unwrap();
        assert_eq!(
            l.resync_producer(&mem, &mut p),
            Ok(Resync::Reset {
                gen: Gen::of(1, 1),
                doorbell: Some(Doorbell { node: N(1) })
            })
        );
        assert_eq!(l.resync_producer(&mem, &mut p), Ok(Resync::Unchanged));
        // Opened, but the consumer end is not yet: no room, nothing moves.
        assert_eq!(
            p.free(&mem),
            Err(RingError::Disconnected { peer: Gen::CLOSED })
        );
        let c = l.open_consumer(&mem, N(0), N(1)).unwrap();
        assert_eq!(p.free(&mem), Ok(l.ring_size()));
        assert_eq!(p.send(&mem, b"hello"), Ok((5, None)));
        assert_eq!(c.available(&mem), Ok(5));
        // A damaged head is refused, not believed.
        let head = ring.base() + R_HEAD;
        let saved = mem.load_acquire_u64(head);
        mem.store_release_u64(head, pack(c.gen(), l.ring_size() as u32 + 1));
        assert_eq!(c.available(&mem), Err(RingError::Corrupt));
        mem.store_release_u64(head, pack(c.gen(), u32::MAX));
        assert_eq!(c.available(&mem), Err(RingError::Corrupt));
        mem.store_release_u64(head, saved);
        let tail = ring.base() + R_TAIL;
        mem.store_release_u64(tail, pack(c.gen(), 6));
        assert_eq!(p.free(&mem), Err(RingError::Corrupt));
        mem.store_release_u64(tail, pack(c.gen(), 0));
        assert_eq!(p.free(&mem), Ok(l.ring_size() - 5));
    }
}
