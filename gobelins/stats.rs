// SPDX-License-Identifier: GPL-2.0

//! Counters of the container layer, shown in `/sys/kernel/debug/gobelins/stats`.

use crate::linker::Linker;
use crate::proto::container::PageMsg;
use crate::proto::container_msg::Kind;
use core::fmt::Write;
use core::sync::atomic::{AtomicU64, Ordering};
use kernel::cohort::debugfs::{DebugFile, Output};

/// An event counted once per occurrence.
#[derive(Clone, Copy)]
pub(crate) enum Counter {
    /// Faults on linked memory that needed read access.
    ReadFaults,
    /// Faults on linked memory that needed write access.
    WriteFaults,
    /// Faults that waited for another node.
    RemoteFaults,
    /// First copies of pages nobody had touched, made here.
    FirstTouches,
    /// Copies that arrived and were installed.
    Installs,
    /// Local copies dropped (invalidated, given away, released).
    Discards,
    /// Page messages refused (malformed, or unexpected in the page's state).
    BadMessages,
    /// Pages of the home's memory that became the container's copy.
    Adoptions,
    /// Local copies the flusher started to give up (memory pressure).
    Flushes,
    /// Rounds of the flusher that started flushes.
    FlushRounds,
    /// Faults that waited for the flusher.
    Throttled,
}

const COUNTERS: usize = 11;
const COUNTER_NAMES: [&str; COUNTERS] = [
    "read_faults",
    "write_faults",
    "remote_faults",
    "first_touches",
    "installs",
    "discards",
    "bad_messages",
    "adoptions",
    "flushes",
    "flush_rounds",
    "throttled",
];

/// Kinds of page messages, by `Kind` value (0 unused).
const KINDS: [&str; 26] = [
    "",
    "get",
    "forward",
    "create",
    "copy",
    "transfer",
    "invalidate",
    "invalidate_ack",
    "flush_request",
    "flush_go",
    "flush_cancel",
    "inject",
    "inject_ack",
    "retry",
    "failed",
    "release",
    "release_ack",
    "release_done",
    "release_resume",
    "marker",
    "report",
    "report_end",
    "resolved",
    "promote",
    "promote_ack",
    "transfer_ack",
];

// A kind added to the protocol needs its name here.
const _: () = assert!(KINDS.len() == Kind::TransferAck as usize + 1);

fn kind(msg: &PageMsg) -> usize {
    Kind::of(msg) as usize
}

/// The counters; each is updated without a lock.
pub(crate) struct Stats {
    events: [AtomicU64; COUNTERS],
    /// Pages asked for by `populate` (before forks).
    populated: AtomicU64,
    sent: [AtomicU64; KINDS.len()],
    received: [AtomicU64; KINDS.len()],
}

impl Stats {
    pub(crate) const fn new() -> Self {
        Stats {
            events: [const { AtomicU64::new(0) }; COUNTERS],
            populated: AtomicU64::new(0),
            sent: [const { AtomicU64::new(0) }; KINDS.len()],
            received: [const { AtomicU64::new(0) }; KINDS.len()],
        }
    }

    pub(crate) fn bump(&self, c: Counter) {
        self.events[c as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn populated(&self, pages: usize) {
        self.populated.fetch_add(pages as u64, Ordering::Relaxed);
    }

    pub(crate) fn sent(&self, msg: &PageMsg) {
        if let Some(c) = self.sent.get(kind(msg)) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn received(&self, msg: &PageMsg) {
        if let Some(c) = self.received.get(kind(msg)) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// `stats`: one `name value` line per counter; `sent_KIND` and
/// `received_KIND` per page message kind; then the state now: `records`
/// (page records kept here), `pages_held` (of which a copy is here),
/// `links` (address spaces linked here), `pooled` (copies kept by
/// gobelins itself, see `pool`) and `synced` (1 once this node's
/// container layer is part of the cluster's view).
pub(crate) struct StatsFile;

impl DebugFile for StatsFile {
    type Data = Linker;

    fn show(l: &Linker, out: &mut Output) -> core::fmt::Result {
        let s = &l.stats;
        for (name, v) in COUNTER_NAMES.iter().zip(s.events.iter()) {
            writeln!(out, "{} {}", name, v.load(Ordering::Relaxed))?;
        }
        writeln!(out, "populated {}", s.populated.load(Ordering::Relaxed))?;
        for (name, v) in KINDS.iter().zip(s.sent.iter()).skip(1) {
            writeln!(out, "sent_{} {}", name, v.load(Ordering::Relaxed))?;
        }
        for (name, v) in KINDS.iter().zip(s.received.iter()).skip(1) {
            writeln!(out, "received_{} {}", name, v.load(Ordering::Relaxed))?;
        }
        let m = l.machine.lock();
        writeln!(
            out,
            "records {}",
            crate::proto::table::Table::len(m.records())
        )?;
        let mut held = 0u64;
        crate::proto::table::Table::for_each(m.records(), &mut |_, rec| {
            if rec.present {
                held += 1;
            }
        });
        writeln!(out, "pages_held {}", held)?;
        writeln!(out, "links {}", m.links_len())?;
        let synced = m.is_synced();
        drop(m);
        writeln!(out, "pooled {}", l.pool.lock().len())?;
        writeln!(out, "synced {}", u8::from(synced))
    }
}
