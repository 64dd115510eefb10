// SPDX-License-Identifier: GPL-2.0

//! popcorn: Cohort's process layer.
//!
//! Owns the hub's task, layout and pcntl slots. It serves pcntl(2) and
//! watches task and layout events; at this stage no task is distributed,
//! so the events only feed the statistics it reports when unloaded.

use core::sync::atomic::{AtomicU64, Ordering};
use kernel::cohort::{
    self, LayoutChange, LayoutOp, LayoutOps, LayoutSlot, ListenerRegistration, MembershipListener,
    Mm, PcntlOps, PcntlSlot, Registration, TaskOps, TaskSlot,
};
use kernel::uaccess::UserSlice;
use kernel::c_str;
use kernel::prelude::*;
use kernel::task::Task;

/// Protocol logic shared with the host tests (`rust/proto`).
#[forbid(unsafe_code)]
#[path = "../rust/proto/src"]
pub mod proto {
    pub mod container;
    pub mod crc;
    pub mod error;
    pub mod lamport;
    pub mod migration;
    pub mod node;
    pub mod pages;
    pub mod pcntl;
    pub mod sink;
    pub mod table;
    pub mod task_msg;
    pub mod wire;
}

use proto::pcntl::{Command, Errno, Target};

module! {
    type: Popcorn,
    name: "popcorn",
    author: "Cohort Developers",
    description: "Cohort process layer: migration, distributed thread groups, pcntl(2)",
    license: "GPL",
}

/// Counts of the events the hub delivered, reported on unload.
struct Stats {
    forks: AtomicU64,
    exits: AtomicU64,
    execs: AtomicU64,
    layout: [AtomicU64; 5],
}

static STATS: Stats = Stats {
    forks: AtomicU64::new(0),
    exits: AtomicU64::new(0),
    execs: AtomicU64::new(0),
    layout: [const { AtomicU64::new(0) }; 5],
};

/// The nodes that are up, bit n for node n, kept from the transport's
/// membership notifications.
static ONLINE: AtomicU64 = AtomicU64::new(0);

/// Tracks which nodes are up.
struct Membership;

impl MembershipListener for Membership {
    fn node_up(node: u32) {
        if let Some(bit) = 1u64.checked_shl(node) {
            ONLINE.fetch_or(bit, Ordering::Relaxed);
        }
    }

    fn node_down(node: u32) {
        if let Some(bit) = 1u64.checked_shl(node) {
            ONLINE.fetch_and(!bit, Ordering::Relaxed);
        }
    }
}

struct Popcorn {
    _pcntl: Registration<PcntlSlot<Pcntl>>,
    _membership: ListenerRegistration<Membership>,
    _layout: Registration<LayoutSlot<Layout>>,
    _task: Registration<TaskSlot<Tasks>>,
}

/// pcntl(2) commands.
struct Pcntl;

#[vtable]
impl PcntlOps for Pcntl {
    fn pcntl(cmd: u32, args: [usize; 3]) -> Result<isize> {
        let command = proto::pcntl::decode(cmd, args).map_err(|e| match e {
            Errno::Inval => EINVAL,
        })?;
        match command {
            Command::Where(target) => {
                if let Target::Pid(pid) = target {
                    if !cohort::pid_exists(pid) {
                        return Err(ESRCH);
                    }
                }
                // No process has left its node yet: it runs here.
                Ok(cohort::node_id() as isize)
            }
            Command::Nodes { bitmap } => {
                let me = 1u64.checked_shl(cohort::node_id()).unwrap_or(0);
                let online = ONLINE.load(Ordering::Relaxed) | me;
                UserSlice::new(bitmap, proto::pcntl::NODES_BITMAP_LEN)
                    .writer()
                    .write_slice(&online.to_ne_bytes())?;
                Ok(online.count_ones() as isize)
            }
        }
    }
}

/// Task life-cycle events.
struct Tasks;

#[vtable]
impl TaskOps for Tasks {
    fn created(_parent: &Task, _child: &Task, _clone_flags: u64) {
        STATS.forks.fetch_add(1, Ordering::Relaxed);
    }

    fn exit(_task: &Task, _code: i64) {
        STATS.exits.fetch_add(1, Ordering::Relaxed);
    }

    fn exec(_task: &Task) {
        STATS.execs.fetch_add(1, Ordering::Relaxed);
    }
}

/// Address-space layout changes.
struct Layout;

#[vtable]
impl LayoutOps for Layout {
    fn begin(_mm: &Mm, change: &mut LayoutChange) -> Result {
        let index = match change.op() {
            Some(LayoutOp::Mmap) => 0,
            Some(LayoutOp::Brk) => 1,
            Some(LayoutOp::Munmap) => 2,
            Some(LayoutOp::Mprotect) => 3,
            Some(LayoutOp::Mremap) => 4,
            // The hub and this module are built from one header, so this
            // cannot happen; refuse rather than let an unknown change pass.
            None => return Err(EINVAL),
        };
        STATS.layout[index].fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

impl kernel::Module for Popcorn {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        // Listen first, then read the current state, so no change is lost.
        let membership = ListenerRegistration::register()?;
        for node in 0..cohort::nr_nodes() {
            if cohort::node_online(node) {
                Membership::node_up(node);
            }
        }
        let task = Registration::register(c_str!("popcorn"))?;
        let layout = Registration::register(c_str!("popcorn"))?;
        let pcntl = Registration::register(c_str!("popcorn"))?;
        pr_info!(
            "process layer on node {} of {}\n",
            cohort::node_id(),
            cohort::nr_nodes()
        );
        Ok(Popcorn {
            _pcntl: pcntl,
            _membership: membership,
            _layout: layout,
            _task: task,
        })
    }
}

impl Drop for Popcorn {
    fn drop(&mut self) {
        let l = &STATS.layout;
        pr_info!(
            "unloading; saw {} forks, {} exits, {} execs; mmap {} brk {} munmap {} mprotect {} mremap {}\n",
            STATS.forks.load(Ordering::Relaxed),
            STATS.exits.load(Ordering::Relaxed),
            STATS.execs.load(Ordering::Relaxed),
            l[0].load(Ordering::Relaxed),
            l[1].load(Ordering::Relaxed),
            l[2].load(Ordering::Relaxed),
            l[3].load(Ordering::Relaxed),
            l[4].load(Ordering::Relaxed)
        );
    }
}
