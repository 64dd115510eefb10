// SPDX-License-Identifier: GPL-2.0
//! Message and operation counts of simulated runs.

use crate::world::Payload;
use cohort_proto::container::PageMsg;
use cohort_proto::lamport::{LockKey, LockMsg, Timestamp};
use std::collections::HashMap;

/// Counts of one or more runs. Messages to self are local calls, not counted.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// Lock messages for page locks (request, reply, release).
    pub page_lock_msgs: u64,
    /// Lock messages for the heavy lock.
    pub heavy_lock_msgs: u64,
    /// Join and join-acknowledge messages.
    pub join_msgs: u64,
    /// Mapping queries and their answers.
    pub query_msgs: u64,
    /// Container requests, forwards, creates, copies and transfers.
    pub page_msgs: u64,
    /// Invalidations and their acknowledgements.
    pub invalidation_msgs: u64,
    /// Flush requests, answers and injections.
    pub flush_msgs: u64,
    /// Release messages (release, acknowledgements, done, resume).
    pub release_msgs: u64,
    /// Recovery messages after a death (markers, reports, resolutions,
    /// promotions).
    pub recovery_msgs: u64,
    /// Migration, exit and membership messages.
    pub task_msgs: u64,
    /// Layout changes under the heavy lock and their acknowledgements.
    pub layout_msgs: u64,
    /// Page lock acquisitions.
    pub page_acquisitions: u64,
    /// Heavy lock acquisitions.
    pub heavy_acquisitions: u64,
    /// Mapping fetches (page lock held, nodes asked).
    pub fetches: u64,
    /// Accesses that missed locally (needed a mapping or a page).
    pub faults: u64,
    /// Faults that sent a container request or invalidation.
    pub container_faults: u64,
    /// Reads checked against the reference.
    pub reads: u64,
    /// Writes.
    pub writes: u64,
    /// Accesses refused for a missing or read-only mapping.
    pub segv: u64,
    /// mmap/munmap/mprotect completed.
    pub layout_ops: u64,
    /// Migrations.
    pub migrations: u64,
    /// Lock space joins.
    pub joins: u64,
    /// Flushes started.
    pub flushes: u64,
    /// First touches (page creations).
    pub first_touches: u64,
    /// Pages a home adopted from its memory.
    pub adoptions: u64,
    /// Releases started.
    pub releases: u64,
    /// Runs added up.
    pub runs: u64,
}

fn ratio(num: u64, den: u64) -> String {
    if den == 0 {
        return "-".into();
    }
    let hundredths = (num * 100 + den / 2) / den;
    format!("{}.{:02}", hundredths / 100, hundredths % 100)
}

impl Stats {
    /// Empty counts for a cluster of `_nodes` nodes.
    pub fn new(_nodes: usize) -> Stats {
        Stats {
            runs: 1,
            ..Stats::default()
        }
    }

    /// Counts one message sent between two different nodes.
    pub fn count_message(&mut self, payload: &Payload, keys: &HashMap<Timestamp, LockKey>) {
        match payload {
            Payload::Lock(msg) => {
                let key = match msg {
                    LockMsg::Request { key, .. } => Some(*key),
                    LockMsg::Reply { ts, .. } | LockMsg::Release { ts, .. } => {
                        keys.get(ts).copied()
                    }
                    LockMsg::Join { .. } | LockMsg::JoinAck { .. } => None,
                };
                match key {
                    Some(LockKey::Heavy) => self.heavy_lock_msgs += 1,
                    Some(LockKey::Page(_)) => self.page_lock_msgs += 1,
                    None => self.join_msgs += 1,
                }
            }
            Payload::Page(msg, _) => match msg {
                PageMsg::Invalidate { .. } | PageMsg::InvalidateAck { .. } => {
                    self.invalidation_msgs += 1
                }
                // Off the fault's path, like the invalidation acknowledgements
                // it follows.
                PageMsg::TransferAck { .. } => self.invalidation_msgs += 1,
                PageMsg::FlushRequest { .. }
                | PageMsg::FlushGo { .. }
                | PageMsg::FlushCancel { .. }
                | PageMsg::Inject { .. }
                | PageMsg::InjectAck { .. } => self.flush_msgs += 1,
                PageMsg::Release { .. }
                | PageMsg::ReleaseAck { .. }
                | PageMsg::ReleaseDone { .. }
                | PageMsg::ReleaseResume { .. } => self.release_msgs += 1,
                PageMsg::Marker { .. }
                | PageMsg::Report { .. }
                | PageMsg::ReportEnd { .. }
                | PageMsg::Resolved { .. }
                | PageMsg::Promote { .. }
                | PageMsg::PromoteAck { .. } => self.recovery_msgs += 1,
                _ => self.page_msgs += 1,
            },
            Payload::Task(..) => self.task_msgs += 1,
            Payload::Query(..) | Payload::QueryReply(..) => self.query_msgs += 1,
            Payload::Layout(..) | Payload::LayoutAck(..) => self.layout_msgs += 1,
        }
    }

    /// Counts one lock acquisition.
    pub fn acquisition(&mut self, key: LockKey) {
        match key {
            LockKey::Heavy => self.heavy_acquisitions += 1,
            LockKey::Page(_) => self.page_acquisitions += 1,
        }
    }

    /// Adds the counts of another run.
    pub fn add(&mut self, o: &Stats) {
        self.page_lock_msgs += o.page_lock_msgs;
        self.heavy_lock_msgs += o.heavy_lock_msgs;
        self.join_msgs += o.join_msgs;
        self.query_msgs += o.query_msgs;
        self.page_msgs += o.page_msgs;
        self.invalidation_msgs += o.invalidation_msgs;
        self.flush_msgs += o.flush_msgs;
        self.release_msgs += o.release_msgs;
        self.recovery_msgs += o.recovery_msgs;
        self.adoptions += o.adoptions;
        self.releases += o.releases;
        self.task_msgs += o.task_msgs;
        self.layout_msgs += o.layout_msgs;
        self.page_acquisitions += o.page_acquisitions;
        self.heavy_acquisitions += o.heavy_acquisitions;
        self.fetches += o.fetches;
        self.faults += o.faults;
        self.container_faults += o.container_faults;
        self.reads += o.reads;
        self.writes += o.writes;
        self.segv += o.segv;
        self.layout_ops += o.layout_ops;
        self.migrations += o.migrations;
        self.joins += o.joins;
        self.flushes += o.flushes;
        self.first_touches += o.first_touches;
        self.runs += o.runs;
    }

    /// Lock messages per acquisition (page and heavy locks together).
    pub fn per_acquisition(&self) -> String {
        ratio(
            self.page_lock_msgs + self.heavy_lock_msgs,
            self.page_acquisitions + self.heavy_acquisitions,
        )
    }

    /// Join messages per lock acquisition.
    pub fn joins_per_acquisition(&self) -> String {
        ratio(
            self.join_msgs,
            self.page_acquisitions + self.heavy_acquisitions,
        )
    }

    /// Messages per mapping fetch: page lock plus queries.
    pub fn per_fetch(&self) -> String {
        ratio(self.page_lock_msgs + self.query_msgs, self.fetches)
    }

    /// Container messages per container fault, without invalidations.
    pub fn per_container_fault(&self) -> String {
        ratio(self.page_msgs, self.container_faults)
    }

    /// Invalidation messages per container fault.
    pub fn invalidations_per_container_fault(&self) -> String {
        ratio(self.invalidation_msgs, self.container_faults)
    }

    /// Every message a fault causes (lock, query, container, invalidation)
    /// per fault.
    pub fn per_fault(&self) -> String {
        ratio(
            self.page_lock_msgs + self.query_msgs + self.page_msgs + self.invalidation_msgs,
            self.faults,
        )
    }
}
