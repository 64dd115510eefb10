// SPDX-License-Identifier: GPL-2.0

//! Memory pressure: a node low on memory flushes container pages
//! (`ContainerNode::flush_page`): read copies are dropped, and a page whose
//! only copy is here is injected into the peer with the most room
//! (`proto::container_room`). When no peer has room only read copies go;
//! the rest stays, and Linux reclaims or fails as it would without Cohort.
//!
//! - The *flusher*, a thread of its own, wakes every [`TICK_MS`] (or when
//!   reclaim calls the shrinker): below the low watermark it flushes, in
//!   batches of at most [`MAX_IN_FLIGHT`] pages under way, until the high
//!   watermark is reached; every [`ROOM_EVERY_NS`] it tells the peers its
//!   room; every [`SWEEP_NS`] it drops pooled copies whose record went.
//! - The *shrinker* only records how many pages reclaim asked for and wakes
//!   the flusher: reclaim may run in any task holding any lock, and
//!   flushing needs the container layer's lock and the network.
//! - Faults on container memory *wait* (at most [`THROTTLE_MS`]) while the
//!   node is below its critical watermark and the flusher is making room:
//!   a process filling a node faster than its pages can leave would
//!   otherwise meet the OOM killer first.
//!
//! The walk that picks pages goes round the page records from where the
//! last one stopped (container, then index): roughly the oldest pages of a
//! process that fills memory in order go first.

use crate::linker::{Linker, Machine};
use crate::member::sender;
use crate::proto::container::PageId;
use crate::proto::container_room::{Room, Rooms, Watermarks, MSG_CONTAINER_ROOM, ROOM_EVERY_NS};
use crate::proto::table::Table;
use crate::proto::wire::Payload;
use crate::stats::Counter;
use crate::LINKER;
use core::fmt::Write;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use kernel::cohort::{
    self,
    debugfs::{DebugFile, Output},
    manage, migration,
    msg::{self, Message, MsgHandler},
    shrinker::Reclaim,
    thread,
};
use kernel::prelude::*;
use kernel::sync::{new_condvar, new_mutex, Arc, CondVar, Mutex};

/// How often the flusher looks at the node's memory when idle, in ms.
pub(crate) const TICK_MS: u32 = 100;
/// Flushes under way at once, at most.
pub(crate) const MAX_IN_FLIGHT: usize = 128;
/// How often pooled copies without a record are dropped, in ns.
const SWEEP_NS: u64 = 1_000_000_000;
/// How long a fault waits for the flusher at most, in ms.
pub(crate) const THROTTLE_MS: u64 = 2_000;
/// How long a throttled fault sleeps between looks, in ms.
const THROTTLE_STEP_MS: u64 = 10;
/// Minimum time between two "no peer has room" warnings, in ns.
const WARN_EVERY_NS: u64 = 10_000_000_000;

/// The flusher's state, in the [`Linker`].
#[pin_data]
pub(crate) struct Pressure {
    /// This node's memory, in KiB, for its watermarks.
    total_kb: u64,
    /// The low watermark set in debugfs, in KiB (0: from `total_kb`).
    low_override_kb: AtomicU64,
    /// The room the peers last reported. Taken after the linker's
    /// `machine`, never before it.
    #[pin]
    pub(crate) rooms: Mutex<Rooms>,
    /// Pages reclaim asked the shrinker for, not yet handed to the
    /// flusher.
    flush_wanted: AtomicUsize,
    /// Pages of which this node has a copy (refreshed by the flusher), for
    /// the shrinker's count.
    held: AtomicUsize,
    /// Flushes started and not yet finished.
    pub(crate) in_flight: AtomicUsize,
    /// Available memory is below the critical watermark and the flusher is
    /// making room: faults on container memory wait.
    critical: AtomicBool,
    /// With `kick`: where the flusher sleeps.
    #[pin]
    wait: Mutex<()>,
    /// Wakes the flusher (the shrinker was called, or a fault waits).
    #[pin]
    kick: CondVar,
}

impl Pressure {
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Pressure {
            total_kb: manage::node_info().total_kb,
            low_override_kb: AtomicU64::new(0),
            rooms <- new_mutex!(Rooms::new()),
            flush_wanted: AtomicUsize::new(0),
            held: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            critical: AtomicBool::new(false),
            wait <- new_mutex!(()),
            kick <- new_condvar!(),
        })
    }
}

impl Linker {
    /// This node's watermarks now.
    pub(crate) fn marks(&self) -> Watermarks {
        Watermarks::new(
            self.pressure.total_kb,
            self.pressure.low_override_kb.load(Ordering::Relaxed),
        )
    }

    /// Wakes the flusher.
    fn kick_flusher(&self) {
        self.pressure.kick.notify_all();
    }

    /// The flusher thread (see the module documentation).
    pub(crate) fn run_flusher(self: Arc<Self>) {
        let mut cursor = PageId {
            container: 0,
            index: 0,
        };
        let mut last_room = 0u64;
        let mut last_sweep = 0u64;
        let mut warned_at = 0u64;
        let mut active = false;
        while !thread::should_stop() {
            let now = cohort::now_ns();
            if now.saturating_sub(last_room) >= ROOM_EVERY_NS {
                self.send_rooms();
                last_room = now;
            }
            if now.saturating_sub(last_sweep) >= SWEEP_NS {
                self.sweep();
                last_sweep = now;
            }
            let marks = self.marks();
            let available = manage::available_kb();
            if marks.pressure(available) {
                active = true;
            } else if available >= marks.high_kb {
                active = false;
            }
            let asked = self.pressure.flush_wanted.swap(0, Ordering::AcqRel);
            let mut want = if active {
                marks.pages_to_free(available) as usize
            } else {
                0
            };
            want = want.max(asked);
            let room =
                MAX_IN_FLIGHT.saturating_sub(self.pressure.in_flight.load(Ordering::Acquire));
            want = want.min(room);
            let (started, stuck) = if want > 0 {
                self.flush_some(want, &mut cursor)
            } else {
                (0, false)
            };
            let progress = started > 0 || self.pressure.in_flight.load(Ordering::Acquire) > 0;
            self.pressure
                .critical
                .store(marks.critical(available) && progress, Ordering::Release);
            if active && stuck && now.saturating_sub(warned_at) >= WARN_EVERY_NS {
                warned_at = now;
                pr_warn!(
                    "node {} low on memory ({} KiB available, low watermark {} KiB) and no peer has room: its container pages stay\n",
                    self.me().0,
                    available,
                    marks.low_kb
                );
            }
            if started > 0 {
                self.stats.bump(Counter::FlushRounds);
            }
            // Throttled faults look again.
            self.wake();
            let ms = if active && progress { 5 } else { TICK_MS };
            let mut guard = self.pressure.wait.lock();
            if self.pressure.flush_wanted.load(Ordering::Acquire) == 0 {
                let _ = self
                    .pressure
                    .kick
                    .wait_interruptible_timeout(&mut guard, kernel::time::msecs_to_jiffies(ms));
            }
        }
        self.pressure.critical.store(false, Ordering::Release);
        self.wake();
    }

    /// Starts flushing up to `want` pages, going round the records from
    /// `cursor` (moved past the last page looked at). Returns how many
    /// flushes started, and whether owned pages stayed for lack of a peer
    /// with room.
    fn flush_some(&self, want: usize, cursor: &mut PageId) -> (usize, bool) {
        let now = cohort::now_ns();
        let me = self.me();
        let mut guard = self.machine.lock();
        let m = &mut *guard;
        if !m.is_synced() {
            return (0, false);
        }
        // The next `want` pages with a copy here, from the cursor on, then
        // from the start.
        let mut after = KVec::new();
        let mut before = KVec::new();
        let mut failed = false;
        Table::for_each(m.records(), &mut |page, rec| {
            if !rec.present || rec.flushing {
                return;
            }
            let list = if *page >= *cursor {
                &mut after
            } else {
                &mut before
            };
            if list.len() < want && list.push(*page, GFP_KERNEL).is_err() {
                failed = true;
            }
        });
        if failed {
            pr_err!("out of memory choosing pages to flush\n");
        }
        let live = m.node.live();
        let mut rooms = self.pressure.rooms.lock();
        let mut actions = crate::linker::Actions::new();
        let mut started = 0usize;
        let mut stuck = false;
        for page in Iterator::chain(after.iter(), before.iter()).take(want) {
            *cursor = PageId {
                container: page.container,
                index: page.index.saturating_add(1),
            };
            if m.is_pending(*page) {
                continue;
            }
            let Some(rec) = m.records().get(page).copied() else {
                continue;
            };
            let alone = rec.is_owner && rec.copyset.without(me).is_empty();
            let fallback = if alone {
                match rooms.target(live, me, now) {
                    Some(node) => node,
                    None => {
                        stuck = true;
                        continue;
                    }
                }
            } else {
                // Not used: another copy exists.
                me
            };
            match m.node.flush_page(*page, fallback, &mut actions) {
                Ok(()) => {
                    started += 1;
                    self.pressure.in_flight.fetch_add(1, Ordering::AcqRel);
                    self.stats.bump(Counter::Flushes);
                    if alone {
                        rooms.charge(fallback);
                    }
                }
                // Busy (a request or a recovery under way): another time.
                Err(_) => {}
            }
        }
        drop(rooms);
        self.carry_out(m, actions, None);
        (started, stuck)
    }

    /// Tells the peers whose container layer runs this node's room.
    fn send_rooms(&self) {
        let room = self.marks().room(manage::available_kb());
        let mut buf = [0u8; Room::LEN];
        if room.encode(&mut buf).is_err() {
            return;
        }
        let peers = self.heard_peers();
        for node in peers.iter() {
            // A peer that went down meanwhile misses one report: the next
            // comes soon, and stale ones are ignored.
            let _ = msg::send(u32::from(node.0), MSG_CONTAINER_ROOM, &buf);
        }
    }

    /// Drops pooled copies whose record says this node has none (the
    /// record went with a restart, a release, a lost node) and that no
    /// queued operation still needs (a copy given away is sent from the
    /// pool by the executor after the record changed), refreshes the
    /// count the shrinker gives and the number of flushes under way.
    fn sweep(&self) {
        let mut pooled = KVec::new();
        let mut from = PageId {
            container: 0,
            index: 0,
        };
        loop {
            cohort::vec::clear(&mut pooled);
            if self
                .pool
                .lock()
                .pages_from(from, 1024, &mut pooled)
                .is_err()
            {
                return;
            }
            let Some(last) = pooled.last().copied() else {
                break;
            };
            let mut stale = KVec::new();
            {
                let m = self.machine.lock();
                for page in pooled.iter() {
                    if Self::unneeded(&m, *page) && stale.push(*page, GFP_KERNEL).is_err() {
                        break;
                    }
                }
            }
            if !stale.is_empty() {
                // `machine` before `pool`, as everywhere. A copy installed
                // since the records were looked at has a record that says
                // so.
                let m = self.machine.lock();
                let mut pool = self.pool.lock();
                for page in stale.iter() {
                    if Self::unneeded(&m, *page) {
                        pool.remove(*page);
                    }
                }
            }
            if pooled.len() < 1024 {
                break;
            }
            from = PageId {
                container: last.container,
                index: last.index.saturating_add(1),
            };
        }
        let (mut held, mut flushing) = (0usize, 0usize);
        {
            let m = self.machine.lock();
            Table::for_each(m.records(), &mut |_, rec| {
                held += usize::from(rec.present);
                flushing += usize::from(rec.flushing);
            });
        }
        self.pressure.held.store(held, Ordering::Relaxed);
        // A flush that a node's death cancelled says nothing more.
        self.pressure.in_flight.store(flushing, Ordering::Release);
    }

    /// Whether a pooled copy of `page` is of no use: its record says this
    /// node has no copy, and no queued operation reads or drops it.
    fn unneeded(m: &Machine, page: PageId) -> bool {
        !m.records().get(&page).is_some_and(|r| r.present) && !m.is_pending(page)
    }

    /// Waits, at most [`THROTTLE_MS`], while this node is below its
    /// critical watermark and the flusher is making room (see the module
    /// documentation). A fatal signal ends the wait.
    pub(crate) fn throttle(&self) {
        if !self.pressure.critical.load(Ordering::Acquire) {
            return;
        }
        self.stats.bump(Counter::Throttled);
        let start = cohort::now_ns();
        let deadline = start.saturating_add(THROTTLE_MS * 1_000_000);
        while self.pressure.critical.load(Ordering::Acquire) && !migration::fatal_signal_pending() {
            let now = cohort::now_ns();
            if now >= deadline {
                break;
            }
            self.kick_flusher();
            let seen = self.generation();
            let soon = now.saturating_add(THROTTLE_STEP_MS * 1_000_000);
            self.wait_change(seen, soon.min(deadline));
        }
    }
}

/// The shrinker: reclaim asks for pages, the flusher frees them.
impl Reclaim for Linker {
    fn count(&self) -> usize {
        self.pressure.held.load(Ordering::Relaxed)
    }

    /// Only below the high watermark: reclaim also calls shrinkers when
    /// nothing presses (`drop_caches`), and a process's pages are no cache.
    fn scan(&self, nr: usize) -> Option<usize> {
        if !self.marks().pressure(manage::available_kb()) {
            return None;
        }
        self.pressure.flush_wanted.fetch_add(nr, Ordering::AcqRel);
        self.kick_flusher();
        None
    }
}

/// `MSG_CONTAINER_ROOM`: a peer's room.
pub(crate) struct RoomHandler;

impl MsgHandler for RoomHandler {
    const TYPE: u16 = MSG_CONTAINER_ROOM;

    fn handle(msg: &Message) {
        let (Some(linker), Some(node)) = (LINKER.get(), sender(msg)) else {
            return;
        };
        match Room::decode(msg.data()) {
            Ok(room) => linker
                .pressure
                .rooms
                .lock()
                .heard(node, room, cohort::now_ns()),
            Err(e) => {
                linker.stats.bump(Counter::BadMessages);
                pr_warn!("malformed room message from node {}: {:?}\n", node.0, e);
            }
        }
    }
}

/// `pressure`: the node's memory and watermarks (KiB), the pages pooled
/// here and the flushes under way, then `room_N` for each peer (KiB it
/// can take, as last heard). Writing `low_kb N` sets the low watermark
/// (the others follow from it; 0: chosen from the memory size; `EINVAL`
/// above the node's memory).
pub(crate) struct PressureFile;

impl DebugFile for PressureFile {
    type Data = Linker;

    fn show(l: &Linker, out: &mut Output) -> core::fmt::Result {
        let marks = l.marks();
        writeln!(out, "available_kb {}", manage::available_kb())?;
        writeln!(out, "critical_kb {}", marks.critical_kb)?;
        writeln!(out, "low_kb {}", marks.low_kb)?;
        writeln!(out, "high_kb {}", marks.high_kb)?;
        writeln!(out, "pooled {}", l.pool.lock().len())?;
        writeln!(
            out,
            "in_flight {}",
            l.pressure.in_flight.load(Ordering::Relaxed)
        )?;
        writeln!(
            out,
            "critical {}",
            u8::from(l.pressure.critical.load(Ordering::Relaxed))
        )?;
        let now = cohort::now_ns();
        let rooms = l.pressure.rooms.lock();
        for n in 0..l.nr_nodes() {
            let node = crate::proto::node::NodeId(n as u8);
            if node != l.me() {
                writeln!(out, "room_{} {}", n, rooms.spare_kb(node, now))?;
            }
        }
        Ok(())
    }

    fn store(l: &Linker, input: &[u8]) -> Result {
        let text = core::str::from_utf8(input).map_err(|_| EINVAL)?.trim();
        let mut words = text.split_ascii_whitespace();
        if words.next() != Some("low_kb") {
            return Err(EINVAL);
        }
        let kb: u64 = words.next().ok_or(EINVAL)?.parse().map_err(|_| EINVAL)?;
        if words.next().is_some() || kb > l.pressure.total_kb {
            return Err(EINVAL);
        }
        l.pressure.low_override_kb.store(kb, Ordering::Relaxed);
        pr_info!(
            "node {}: low watermark {} KiB\n",
            l.me().0,
            l.marks().low_kb
        );
        l.kick_flusher();
        Ok(())
    }
}
