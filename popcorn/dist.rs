// SPDX-License-Identifier: GPL-2.0

//! The distributed tasks this node knows: the ones that migrated here and
//! the shadows of the ones that left.

use crate::proto::fwd::Calls;
use crate::proto::migration::TaskId;
use crate::proto::node::{NodeId, NodeSet};
use crate::proto::pcntl::Counts;
use core::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use kernel::cohort::{self, manage, migration, msg::ReplyTo, vec as kvec};
use kernel::prelude::*;
use kernel::sync::{new_condvar, new_mutex, Arc, CondVar, Mutex};
use kernel::task::Task;
use kernel::types::ARef;

/// What a distributed task is on this node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// It runs here.
    Running,
    /// It runs elsewhere; the local task is its shadow.
    Shadow,
}

/// Work for a shadow, done in its own context.
pub(crate) enum Event {
    /// A forwarded system call (a `MSG_SYSCALL` payload).
    Syscall(ReplyTo, KVVec<u8>),
    /// The task migrates back here (a `MSG_MIGRATE` payload).
    Return(ReplyTo, KVVec<u8>),
    /// The task exited elsewhere with this wait status.
    Exit(i64),
    /// The node the task ran on went down.
    Lost(NodeId),
}

/// A shadow's answer to a forwarded call: an encoded `SyscallReply`, or
/// the error the request is answered with.
pub(crate) type Answer = core::result::Result<KVVec<u8>, Error>;

/// The mutable part of a [`Dist`].
pub(crate) struct Inner {
    /// Whether it runs here.
    pub(crate) role: Role,
    /// Where it runs, as far as this node knows.
    pub(crate) location: NodeId,
    /// Nodes it ran on.
    pub(crate) visited: NodeSet,
    /// Work queued for the shadow.
    pub(crate) events: KVec<Event>,
    /// The container its private memory is linked to (Gobelins' memory
    /// linker), 0 until it first leaves its origin; a new one after it
    /// executes a new program away from the node that made the old one.
    pub(crate) container: u32,
    /// A migration of the task is under way.
    pub(crate) leaving: bool,
    /// The forwarded calls posted to the shadow (see `proto::fwd`).
    pub(crate) calls: Calls,
    /// The interruption (`MSG_SYSCALL_INTR`) waiting for a call's answer.
    pub(crate) intr_reply: Option<ReplyTo>,
    /// The shadow's last answer, sent again to an interruption that
    /// crossed it.
    pub(crate) last_answer: Option<Arc<Answer>>,
}

/// One distributed task on this node.
#[pin_data]
pub(crate) struct Dist {
    /// Its cluster-wide identity.
    pub(crate) id: TaskId,
    /// Its thread group id at the origin.
    pub(crate) tgid: u32,
    /// Its parent's pid at the origin.
    pub(crate) parent_pid: u32,
    /// The local task, running or shadow: the same task for as long as
    /// the record lives on this node.
    pub(crate) task: ARef<Task>,
    /// Mutable state.
    #[pin]
    pub(crate) inner: Mutex<Inner>,
    /// Signalled when a shadow has work or a migration settles.
    #[pin]
    pub(crate) cond: CondVar,
    /// What this node counted for the task since the task last left it
    /// (`PCNTL_STAT`); the node it runs on also carries what the nodes it
    /// left counted.
    pub(crate) counts: Counters,
    /// `CLOCK_BOOTTIME` of this node when the process was created, in
    /// nanoseconds (negative when that was before this node booted).
    pub(crate) born_ns: AtomicI64,
    /// `CLOCK_BOOTTIME` when it last arrived here (or was created).
    pub(crate) arrived_ns: AtomicU64,
    /// popcorn stays loaded while the task is distributed.
    _pin: migration::ModulePin,
}

/// A task's migration statistics, counted lock-free on the hot paths.
#[derive(Default)]
pub(crate) struct Counters {
    migrations: AtomicU64,
    pages_fetched: AtomicU64,
    pages_served: AtomicU64,
    calls_forwarded: AtomicU64,
    bytes_moved: AtomicU64,
}

impl Counters {
    /// `fetched` pages came here for the task and `served` went from here
    /// to other nodes.
    pub(crate) fn pages(&self, fetched: u64, served: u64) {
        self.pages_fetched.fetch_add(fetched, Ordering::Relaxed);
        self.pages_served.fetch_add(served, Ordering::Relaxed);
        let bytes = fetched
            .saturating_add(served)
            .saturating_mul(migration::PAGE_SIZE as u64);
        self.bytes_moved.fetch_add(bytes, Ordering::Relaxed);
    }

    /// A system call was forwarded, `bytes` both ways.
    pub(crate) fn forwarded(&self, bytes: usize) {
        self.calls_forwarded.fetch_add(1, Ordering::Relaxed);
        self.moved(bytes);
    }

    /// `bytes` crossed the network for the task.
    pub(crate) fn moved(&self, bytes: usize) {
        self.bytes_moved.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// The counts now.
    pub(crate) fn get(&self) -> Counts {
        Counts {
            migrations: self.migrations.load(Ordering::Relaxed),
            pages_fetched: self.pages_fetched.load(Ordering::Relaxed),
            pages_served: self.pages_served.load(Ordering::Relaxed),
            calls_forwarded: self.calls_forwarded.load(Ordering::Relaxed),
            bytes_moved: self.bytes_moved.load(Ordering::Relaxed),
        }
    }

    /// Adds `c` (what the task brought from the node it left).
    pub(crate) fn add(&self, c: &Counts) {
        self.migrations.fetch_add(c.migrations, Ordering::Relaxed);
        self.pages_fetched
            .fetch_add(c.pages_fetched, Ordering::Relaxed);
        self.pages_served
            .fetch_add(c.pages_served, Ordering::Relaxed);
        self.calls_forwarded
            .fetch_add(c.calls_forwarded, Ordering::Relaxed);
        self.bytes_moved.fetch_add(c.bytes_moved, Ordering::Relaxed);
    }

    /// Takes the counts out (the task leaves with them), leaving 0.
    pub(crate) fn take(&self) -> Counts {
        Counts {
            migrations: self.migrations.swap(0, Ordering::Relaxed),
            pages_fetched: self.pages_fetched.swap(0, Ordering::Relaxed),
            pages_served: self.pages_served.swap(0, Ordering::Relaxed),
            calls_forwarded: self.calls_forwarded.swap(0, Ordering::Relaxed),
            bytes_moved: self.bytes_moved.swap(0, Ordering::Relaxed),
        }
    }
}

impl Dist {
    /// A record for `task`, which runs here or is `role`.
    pub(crate) fn new(
        id: TaskId,
        tgid: u32,
        parent_pid: u32,
        task: ARef<Task>,
        role: Role,
        visited: NodeSet,
    ) -> Result<Arc<Dist>> {
        let me = me();
        let pin = migration::ModulePin::new(&crate::THIS_MODULE)?;
        Arc::pin_init(
            pin_init!(Dist {
                id,
                tgid,
                parent_pid,
                task,
                inner <- new_mutex!(Inner {
                    role,
                    location: me,
                    visited,
                    events: KVec::new(),
                    container: 0,
                    leaving: false,
                    calls: Calls::new(),
                    intr_reply: None,
                    last_answer: None,
                }),
                cond <- new_condvar!(),
                counts: Counters::default(),
                born_ns: AtomicI64::new(0),
                arrived_ns: AtomicU64::new(manage::boottime_ns()),
                _pin: pin,
            }),
            GFP_KERNEL,
        )
    }

    /// Whether this node is the task's origin.
    pub(crate) fn at_origin(&self) -> bool {
        self.id.origin == me()
    }

    /// Queues work for the shadow and wakes it.
    pub(crate) fn post(&self, event: Event) -> Result {
        let mut inner = self.inner.lock();
        let call = matches!(event, Event::Syscall(..));
        inner.events.push(event, GFP_KERNEL)?;
        if call {
            inner.calls.post();
        }
        drop(inner);
        self.cond.notify_all();
        Ok(())
    }
}

/// Every distributed task on this node.
#[pin_data]
pub(crate) struct Registry {
    #[pin]
    tasks: Mutex<KVec<Arc<Dist>>>,
    count: AtomicUsize,
    /// Tasks with a migration queued and not yet settled (by address).
    #[pin]
    pending: Mutex<KVec<usize>>,
}

impl Registry {
    /// An empty registry.
    pub(crate) fn new() -> impl PinInit<Registry> {
        pin_init!(Registry {
            tasks <- new_mutex!(KVec::new()),
            count: AtomicUsize::new(0),
            pending <- new_mutex!(KVec::new()),
        })
    }

    /// Whether any task is distributed (a cheap test for the hot paths).
    pub(crate) fn is_empty(&self) -> bool {
        self.count.load(Ordering::Relaxed) == 0
    }

    /// Adds `dist`.
    pub(crate) fn add(&self, dist: Arc<Dist>) -> Result {
        let mut tasks = self.tasks.lock();
        tasks.push(dist, GFP_KERNEL)?;
        self.count.store(tasks.len(), Ordering::Relaxed);
        Ok(())
    }

    /// Removes the record of `id`.
    pub(crate) fn remove(&self, id: TaskId) -> Option<Arc<Dist>> {
        let mut tasks = self.tasks.lock();
        let index = tasks.iter().position(|d| d.id == id)?;
        let dist = kvec::swap_remove(&mut tasks, index);
        self.count.store(tasks.len(), Ordering::Relaxed);
        dist
    }

    /// The record of `id`.
    pub(crate) fn find(&self, id: TaskId) -> Option<Arc<Dist>> {
        self.tasks.lock().iter().find(|d| d.id == id).cloned()
    }

    /// The record whose local task is `task`.
    ///
    /// Takes only the registry's lock: the fault path calls it, also from
    /// page service that holds a record's lock.
    pub(crate) fn find_task(&self, task: &Task) -> Option<Arc<Dist>> {
        let tasks = self.tasks.lock();
        tasks
            .iter()
            .find(|dist| core::ptr::eq(&*dist.task, task))
            .cloned()
    }

    /// Marks a migration of `task` as queued; `EBUSY` if one already is.
    pub(crate) fn start_migration(&self, task: &Task) -> Result {
        let key = task as *const Task as usize;
        let mut pending = self.pending.lock();
        if pending.iter().any(|p| *p == key) {
            return Err(EBUSY);
        }
        pending.push(key, GFP_KERNEL)?;
        Ok(())
    }

    /// Whether a migration of `task` is queued.
    pub(crate) fn migrating(&self, task: &Task) -> bool {
        let key = task as *const Task as usize;
        self.pending.lock().iter().any(|p| *p == key)
    }

    /// The queued migration of `task` settled.
    pub(crate) fn end_migration(&self, task: &Task) {
        let key = task as *const Task as usize;
        let mut pending = self.pending.lock();
        if let Some(i) = pending.iter().position(|p| *p == key) {
            kvec::swap_remove(&mut pending, i);
        }
    }

    /// The record of the task whose thread group here is `tgid`.
    pub(crate) fn find_by_local_tgid(&self, tgid: i32) -> Option<Arc<Dist>> {
        self.tasks
            .lock()
            .iter()
            .find(|d| migration::task_ids(&d.task).1 == tgid)
            .cloned()
    }

    /// Calls `f` on every record.
    pub(crate) fn for_each(&self, mut f: impl FnMut(&Arc<Dist>)) {
        let tasks = self.tasks.lock();
        for dist in tasks.iter() {
            f(dist);
        }
    }
}

/// This node.
pub(crate) fn me() -> NodeId {
    NodeId(cohort::node_id() as u8)
}

/// The record of the current task, when it runs here distributed.
pub(crate) fn current_running(reg: &Registry) -> Option<Arc<Dist>> {
    if reg.is_empty() {
        return None;
    }
    let task = kernel::current!();
    let dist = reg.find_task(&task)?;
    let running = dist.inner.lock().role == Role::Running;
    running.then_some(dist)
}

/// Kills the local task of `dist` with a log line saying why.
pub(crate) fn kill_local(dist: &Dist, why: &str) {
    pr_warn!(
        "task {}:{} (local pid {}): {}; killing it\n",
        dist.id.origin.0,
        dist.id.pid,
        migration::task_ids(&dist.task).0,
        why
    );
    migration::kill(&dist.task, 9);
}
