// SPDX-License-Identifier: GPL-2.0

//! popcorn: Cohort's process layer.
//!
//! Owns the hub's task, layout, pcntl and migration slots. It serves
//! pcntl(2) and moves single-threaded processes between nodes: the task
//! migrates itself at its next return to user space, its origin keeps a
//! shadow that serves its files and signals, and its memory is linked to
//! a container of gobelins, whose pages follow on demand (see `migrate`,
//! `memory` and `fwd`).

use core::sync::atomic::{AtomicU64, Ordering};
use kernel::c_str;
use kernel::cohort::files::FilesSlot;
use kernel::cohort::{
    self,
    migration::{self, Global, GlobalGuard},
    HandlerRegistration, LayoutChange, LayoutOp, LayoutOps, LayoutSlot, ListenerRegistration,
    MembershipListener, MigrationOps, MigrationSlot, Mm, PcntlOps, PcntlSlot, Registration,
    TaskOps, TaskSlot,
};
use kernel::prelude::*;
use kernel::sync::Arc;
use kernel::task::Task;
use kernel::uaccess::UserSlice;

mod dist;
mod files;
mod fwd;
mod manage;
mod memory;
mod migrate;

/// Protocol logic shared with the host tests (`rust/proto`).
#[forbid(unsafe_code)]
#[path = "../rust/proto/src"]
pub mod proto {
    pub mod auth;
    pub mod container;
    pub mod crc;
    pub mod error;
    pub mod files;
    pub mod fwd;
    pub mod lamport;
    pub mod manage;
    pub mod migration;
    pub mod node;
    pub mod pathcall;
    pub mod pcntl;
    pub mod sink;
    pub mod table;
    pub mod task_msg;
    pub mod wire;
}

use dist::Registry;
use proto::node::NodeId;
use proto::pcntl::{Command, Errno, Gpid, Target};

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
    layout: [AtomicU64; 6],
}

static STATS: Stats = Stats {
    forks: AtomicU64::new(0),
    exits: AtomicU64::new(0),
    execs: AtomicU64::new(0),
    layout: [const { AtomicU64::new(0) }; 6],
};

/// The nodes that are up, bit n for node n, kept from the transport's
/// membership notifications.
static ONLINE: AtomicU64 = AtomicU64::new(0);

/// The distributed tasks of this node, for the hub callbacks and the
/// task work of migrations.
pub(crate) static STATE: Global<Registry> = Global::new();

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
        if let Ok(node) = u8::try_from(node) {
            files::node_down(NodeId(node));
            if let Some(reg) = STATE.get() {
                migrate::node_down(&reg, NodeId(node));
            }
        }
    }
}

/// What a request to a peer waits on top of the heartbeat time-out, in ms
/// (as kmsg's own requests).
const PEER_MARGIN_MS: u32 = 3_000;

/// How long a request to a peer waits, in ms: `at_least`, and no less than
/// the transport's heartbeat time-out (`cohort.heartbeat_timeout_ms`, after
/// which a silent peer is declared down and the request fails with
/// `EHOSTDOWN`) plus [`PEER_MARGIN_MS`]. A peer that is slow but alive, a
/// node whose host did not run it for a while, is waited for rather than
/// failing the request with `ETIMEDOUT`.
pub(crate) fn peer_timeout_ms(at_least: u32) -> u32 {
    at_least.max(cohort::heartbeat_timeout_ms().saturating_add(PEER_MARGIN_MS))
}

/// Whether node `node` is this one or up.
fn node_usable(node: u32) -> bool {
    node == cohort::node_id()
        || (node < cohort::nr_nodes()
            && 1u64
                .checked_shl(node)
                .is_some_and(|bit| ONLINE.load(Ordering::Relaxed) & bit != 0))
}

/// The message handlers, registered together.
struct Handlers {
    _migrate: HandlerRegistration<migrate::MigrateHandler>,
    _abort: HandlerRegistration<migrate::AbortHandler>,
    _moved: HandlerRegistration<migrate::MovedHandler>,
    _exit: HandlerRegistration<migrate::ExitHandler>,
    _signal: HandlerRegistration<migrate::SignalHandler>,
    _syscall: HandlerRegistration<migrate::SyscallHandler>,
    _intr: HandlerRegistration<migrate::SyscallIntrHandler>,
    _req: HandlerRegistration<migrate::MigrateReqHandler>,
    _file_req: HandlerRegistration<files::ReqHandler>,
    _file_put: HandlerRegistration<files::PutHandler>,
    _file_hold: HandlerRegistration<files::HoldHandler>,
    _file_ready: HandlerRegistration<files::ReadyHandler>,
    _pcntl: HandlerRegistration<manage::PcntlHandler>,
    _node_info: HandlerRegistration<manage::NodeInfoHandler>,
    _ps: HandlerRegistration<manage::PsHandler>,
    _group: HandlerRegistration<manage::GroupHandler>,
}

impl Handlers {
    fn register() -> Result<Handlers> {
        let owner = c_str!("popcorn");
        Ok(Handlers {
            _migrate: HandlerRegistration::register(owner)?,
            _abort: HandlerRegistration::register(owner)?,
            _moved: HandlerRegistration::register(owner)?,
            _exit: HandlerRegistration::register(owner)?,
            _signal: HandlerRegistration::register(owner)?,
            _syscall: HandlerRegistration::register(owner)?,
            _intr: HandlerRegistration::register(owner)?,
            _req: HandlerRegistration::register(owner)?,
            _file_req: HandlerRegistration::register(owner)?,
            _file_put: HandlerRegistration::register(owner)?,
            _file_hold: HandlerRegistration::register(owner)?,
            _file_ready: HandlerRegistration::register(owner)?,
            _pcntl: HandlerRegistration::register(owner)?,
            _node_info: HandlerRegistration::register(owner)?,
            _ps: HandlerRegistration::register(owner)?,
            _group: HandlerRegistration::register(owner)?,
        })
    }
}

// Fields drop in order: callers first, the state last.
struct Popcorn {
    _pcntl: Registration<PcntlSlot<Pcntl>>,
    _migration: Registration<MigrationSlot<Migration>>,
    _files: Registration<FilesSlot<files::Proxies>>,
    _handlers: Handlers,
    _membership: ListenerRegistration<Membership>,
    _layout: Registration<LayoutSlot<Layout>>,
    _task: Registration<TaskSlot<Tasks>>,
    _exports: GlobalGuard<files::Exports>,
    _state: GlobalGuard<Registry>,
}

/// Faults and system calls of migrated tasks.
struct Migration;

#[vtable]
impl MigrationOps for Migration {
    fn syscall(nr: i64, args: &mut [u64; 6]) -> Option<i64> {
        fwd::syscall(nr, args)
    }
}

/// pcntl(2) commands.
struct Pcntl;

#[vtable]
impl PcntlOps for Pcntl {
    fn pcntl(cmd: u32, args: [usize; 3]) -> Result<isize> {
        let command = proto::pcntl::decode(cmd, args).map_err(|e| match e {
            Errno::Inval => EINVAL,
        })?;
        let command = read_pids(command);
        match command {
            Command::Nodes { bitmap } => {
                let me = 1u64.checked_shl(cohort::node_id()).unwrap_or(0);
                let online = ONLINE.load(Ordering::Relaxed) | me;
                UserSlice::new(bitmap, proto::pcntl::NODES_BITMAP_LEN)
                    .writer()
                    .write_slice(&online.to_ne_bytes())?;
                Ok(online.count_ones() as isize)
            }
            command => {
                let reg = STATE.get().ok_or(ENODEV)?;
                manage::pcntl(&reg, command)
            }
        }
    }
}

/// Reads the pids of a pcntl(2) command in the caller's pid space.
///
/// A migrated process away from its origin, and a child it forked here,
/// know the processes of their origin by their pids there: a pid they give
/// names the process with that pid at the origin (`Target::Global`),
/// wherever it runs now; the caller's own pids name the caller, and a child
/// forked here is named by its pid here, as for `kill(2)` (see `fwd`). Any
/// other caller's pids are this node's: a process that came here from
/// another node is not named by the pid it had there, which may be the pid
/// of another process here.
fn read_pids(command: Command) -> Command {
    let Some(reg) = STATE.get() else {
        return command;
    };
    let (origin, dist) = match dist::current_running(&reg) {
        Some(dist) if !dist.at_origin() => (dist.id.origin, Some(dist)),
        Some(_) => return command,
        None => match reg.find_by_local_tgid(migration::parent_tgid()) {
            Some(parent)
                if parent.inner.lock().role == dist::Role::Running && !parent.at_origin() =>
            {
                (parent.id.origin, None)
            }
            _ => return command,
        },
    };
    let here = migration::task_ids(kernel::current!()).1;
    let me = |target: Target| match target {
        Target::Pid(pid)
            if pid == here
                || dist
                    .as_ref()
                    .is_some_and(|d| pid as u32 == d.tgid || pid as u32 == d.id.pid) =>
        {
            Target::Caller
        }
        Target::Pid(pid) if pid > 0 && !migration::has_child(pid) => Target::Global(Gpid {
            node: origin,
            pid: pid as u32,
        }),
        other => other,
    };
    match command {
        Command::Where(t) => Command::Where(me(t)),
        Command::Migrate {
            target,
            node,
            refused,
        } => Command::Migrate {
            target: me(target),
            node,
            refused,
        },
        Command::Permit(t, permit) => Command::Permit(me(t), permit),
        Command::GroupJoin {
            target,
            group,
            fork,
        } => Command::GroupJoin {
            target: me(target),
            group,
            fork,
        },
        Command::GroupLeave(t) => Command::GroupLeave(me(t)),
        Command::Stat { target, buf, size } => Command::Stat {
            target: me(target),
            buf,
            size,
        },
        Command::Pull { target, refused } => Command::Pull {
            target: me(target),
            refused,
        },
        other => other,
    }
}

/// Task life-cycle events.
struct Tasks;

#[vtable]
impl TaskOps for Tasks {
    fn created(parent: &Task, child: &Task, _clone_flags: u64) {
        STATS.forks.fetch_add(1, Ordering::Relaxed);
        // A child of a migrated task starts here as a local process of its
        // own: its system calls run here, but for `getppid`, which names
        // its parent by the pid the parent knows (see `fwd`).
        let away = STATE
            .get()
            .and_then(|reg| reg.find_task(parent))
            .is_some_and(|d| d.inner.lock().role == dist::Role::Running && !d.at_origin());
        migration::forward(child, away);
    }

    fn exit(task: &Task, code: i64) {
        STATS.exits.fetch_add(1, Ordering::Relaxed);
        if let Some(reg) = STATE.get() {
            migrate::exited(&reg, task, code);
        }
    }

    fn fork(_clone_flags: u64) -> Result {
        // The kernel copies what is here: bring the rest here first.
        match STATE.get().and_then(|reg| dist::current_running(&reg)) {
            Some(dist) => memory::complete(&dist),
            None => Ok(()),
        }
    }

    fn exec(_task: &Task) {
        STATS.execs.fetch_add(1, Ordering::Relaxed);
        // A distributed task starts a new program where it is: the pages
        // of the old one go everywhere; the new one's are local until it
        // leaves again.
        if let Some(dist) = STATE.get().and_then(|reg| dist::current_running(&reg)) {
            memory::executed(&dist);
        }
    }
}

/// Address-space layout changes.
struct Layout;

#[vtable]
impl LayoutOps for Layout {
    fn begin(mm: &Mm, change: &mut LayoutChange) -> Result {
        let index = match change.op() {
            Some(LayoutOp::Mmap) => 0,
            Some(LayoutOp::Brk) => 1,
            Some(LayoutOp::Munmap) => 2,
            Some(LayoutOp::Mprotect) => 3,
            Some(LayoutOp::Mremap) => 4,
            Some(LayoutOp::Madvise) => 5,
            // The hub and this module are built from one header, so this
            // cannot happen; refuse rather than let an unknown change pass.
            None => return Err(EINVAL),
        };
        STATS.layout[index].fetch_add(1, Ordering::Relaxed);
        let Some(dist) = STATE.get().and_then(|reg| dist::current_running(&reg)) else {
            return Ok(());
        };
        match change.op() {
            // A container's pages are indexed by address: moving a mapping
            // would move them to other indices on every node, which is not
            // done yet. Growing or shrinking in place is fine. A process
            // that never left has no container.
            Some(LayoutOp::Mremap) => {
                const MAY_MOVE: usize = 0x1 | 0x2 | 0x4; // MAYMOVE, FIXED, DONTUNMAP
                if dist.inner.lock().container != 0 && change.flags() & MAY_MOVE != 0 {
                    Err(cohort::errno::EOPNOTSUPP())
                } else {
                    Ok(())
                }
            }
            Some(LayoutOp::Brk) => {
                change.set_cookie(mm.brk());
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn end(_mm: &Mm, change: &mut LayoutChange, result: isize) {
        if result < 0 {
            return;
        }
        let Some(dist) = STATE.get().and_then(|reg| dist::current_running(&reg)) else {
            return;
        };
        const MAP_FIXED: usize = 0x10;
        const MADV_DONTNEED: usize = 4;
        const MADV_FREE: usize = 8;
        const MADV_DONTNEED_LOCKED: usize = 24;
        let result = result as usize;
        match change.op() {
            Some(LayoutOp::Munmap) => {
                memory::unmapped(&dist, change.start(), change.start() + change.len())
            }
            Some(LayoutOp::Mmap) if change.flags() & MAP_FIXED != 0 => {
                memory::unmapped(&dist, result, result + change.len())
            }
            // Shrunk in place: the tail is unmapped.
            Some(LayoutOp::Mremap)
                if result == change.start() && change.new_len() < change.len() =>
            {
                memory::unmapped(&dist, result + change.new_len(), result + change.len())
            }
            Some(LayoutOp::Brk) if result < change.cookie() => {
                let page = migration::PAGE_SIZE;
                memory::unmapped(&dist, (result + page - 1) & !(page - 1), change.cookie())
            }
            // The range's pages are dropped: the next access sees zeros (or
            // the file) on every node.
            Some(LayoutOp::Madvise)
                if matches!(
                    change.flags(),
                    MADV_DONTNEED | MADV_FREE | MADV_DONTNEED_LOCKED
                ) =>
            {
                let page = migration::PAGE_SIZE;
                let end = change.start().saturating_add(change.len());
                memory::unmapped(&dist, change.start(), (end + page - 1) & !(page - 1))
            }
            _ => {}
        }
    }
}

impl kernel::Module for Popcorn {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let state = STATE.install(Arc::pin_init(Registry::new(), GFP_KERNEL)?)?;
        let exports = files::install_exports()?;
        // Listen first, then read the current state, so no change is lost.
        let membership = ListenerRegistration::register()?;
        for node in 0..cohort::nr_nodes() {
            if cohort::node_online(node) {
                Membership::node_up(node);
            }
        }
        let task = Registration::register(c_str!("popcorn"))?;
        let layout = Registration::register(c_str!("popcorn"))?;
        let handlers = Handlers::register()?;
        let files_slot = Registration::register(c_str!("popcorn"))?;
        let migration = Registration::register(c_str!("popcorn"))?;
        let pcntl = Registration::register(c_str!("popcorn"))?;
        pr_info!(
            "process layer on node {} of {}\n",
            cohort::node_id(),
            cohort::nr_nodes()
        );
        Ok(Popcorn {
            _pcntl: pcntl,
            _migration: migration,
            _files: files_slot,
            _handlers: handlers,
            _membership: membership,
            _layout: layout,
            _task: task,
            _exports: exports,
            _state: state,
        })
    }
}

impl Drop for Popcorn {
    fn drop(&mut self) {
        let l = &STATS.layout;
        pr_info!(
            "unloading; saw {} forks, {} exits, {} execs; mmap {} brk {} munmap {} mprotect {} mremap {} madvise {}\n",
            STATS.forks.load(Ordering::Relaxed),
            STATS.exits.load(Ordering::Relaxed),
            STATS.execs.load(Ordering::Relaxed),
            l[0].load(Ordering::Relaxed),
            l[1].load(Ordering::Relaxed),
            l[2].load(Ordering::Relaxed),
            l[3].load(Ordering::Relaxed),
            l[4].load(Ordering::Relaxed),
            l[5].load(Ordering::Relaxed)
        );
    }
}
