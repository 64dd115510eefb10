// SPDX-License-Identifier: GPL-2.0

//! The container layer and the memory linker.
//!
//! One [`ContainerNode`] per node (the protocol of `proto::container`, the
//! state machine `tools/sim` checks) keeps the records of the pages this
//! node manages, owns or holds. The memory linker (Gobelins, section 3;
//! Containers report, section 4) backs each linked address space with a
//! container: the node's copy of page `index` of container `c` is what the
//! linked address space maps at `index << PAGE_SHIFT`, so a page's
//! contents live in the process's own memory and Linux's own paths (fork,
//! swap, reclaim) keep working on them.
//!
//! # Locks and order
//!
//! - [`Linker::machine`] (the state machine, the links, the pending and
//!   lost pages) is taken by faulting tasks, which hold their address
//!   space's mmap or VMA lock, and by message handlers, which hold nothing.
//!   So nothing that takes an address-space lock runs under it: the
//!   actions on address spaces, and every send (a send may carry a page's
//!   contents, which must be read from an address space), are queued, in
//!   order, for the executor thread ([`Linker::ops`]), which runs them
//!   holding no other lock.
//! - A page with queued operations is *pending*: faults on it wait.
//! - [`Linker::epoch`] is bumped, under `machine`, whenever the machine
//!   decides to drop, write-protect or replace a local copy. A fault that
//!   found its access allowed installs its page only if the epoch it saw
//!   is still current, checked under the page table lock (see
//!   `cohort_fault_install_page()`), so that a decision taken meanwhile is
//!   never undone by a fault that finishes late.
//!
//! # What a fault does
//!
//! A fault on a linked private mapping asks the container for a read copy
//! (`get_page`) or the only, writable, copy (`grab_page`), waits until the
//! copy is there (its contents are installed by the executor), then:
//! nothing mapped yet and this node may access the page (it owns a page
//! nobody wrote: first touch) → installs what a first access sees (zeros,
//! or the file's page); a read-only copy mapped and write access granted
//! → replaces it by a writable private copy; swapped out → lets Linux read
//! it in.
//!
//! Faults taken by a task on an address space not its own (the executor
//! reading a page in to send it, `/proc/PID/mem`) run locally: they see
//! this node's copy as it is.

use crate::parked::{Parked, MAX_PARKED};
use crate::pool::Pool;
use crate::pressure::Pressure;
use crate::proto::container::{
    Access, Backing, ContainerNode, Lookup, PageAction, PageId, PageMsg,
};
use crate::proto::container_member::{
    gives_way, must_tell, Hello, Members, Standing, Verdict, MSG_CONTAINER_HELLO,
};
use crate::proto::container_share::{
    answer_lookup, key_manager, KeyAnswer, KeyEntry, Owner, ShareMsg, Sharers,
};
use crate::proto::error::Error as ProtoError;
use crate::proto::node::{NodeId, NodeSet, MAX_NODES};
use crate::proto::sink::Sink;
use crate::proto::table::Table;
use crate::proto::wire::Payload;
use crate::records::Records;
use crate::stats::{Counter, Stats};
use crate::LINKER;
use core::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicUsize, Ordering};
use kernel::bindings;
use kernel::cohort::{
    self,
    fault::PteState,
    migration::{self, MmGrab, MmRef, ModulePin, INSTALL_REPLACE, INSTALL_WRITE, PAGE_SIZE},
    msg::{self, Message, MsgHandler},
    share::{SharedRegion, ShmOwner},
    thread, vec as kvec, FaultAction, Vma,
};
use kernel::prelude::*;
use kernel::sync::{new_condvar, new_mutex, Arc, CondVar, Mutex};

/// Shift from an address to a page index.
const PAGE_SHIFT: u32 = 12;
/// How long a fault waits for its page before it gives up with `SIGBUS`
/// (a dead peer ends the wait within kmsg's heartbeat time-out instead).
const FAULT_TIMEOUT_MS: u64 = 30_000;
/// How long a fault waits before it asks again for a page that was busy
/// (a release or a recovery round under way).
const BUSY_RETRY_MS: u64 = 10;
/// How many times in a row a fault may look at its page again at once
/// (the page's state moved, without the page coming) before it sleeps
/// between looks: on a node of one CPU, a fault that keeps asking would
/// starve the heartbeats that end a dead peer's requests.
const QUICK_LOOKS: u32 = 8;
/// The longest sleep between two looks of such a fault, in ms.
const MAX_BACKOFF_MS: u32 = 32;
/// How long a release may take to complete on every node.
const RELEASE_TIMEOUT_MS: u64 = 20_000;
/// One past the last page index of user space: a release of `0..LAST_INDEX`
/// is the whole container.
const LAST_INDEX: u64 = (crate::USER_END >> PAGE_SHIFT) as u64;
/// Most messages to itself one event may chain (see `carry_out`).
const MAX_LOOPBACK_DEPTH: u32 = 16;
/// How long the executor sleeps with nothing to do before it checks
/// whether it is asked to stop.
const IDLE_MS: u32 = 200;

const VM_FAULT_SIGBUS: u32 = bindings::vm_fault_reason_VM_FAULT_SIGBUS;
const VM_FAULT_NOPAGE: u32 = bindings::vm_fault_reason_VM_FAULT_NOPAGE;
const FAULT_FLAG_WRITE: u32 = bindings::fault_flag_FAULT_FLAG_WRITE;

/// A page's contents.
pub(crate) type PageBuf = KBox<[u8; PAGE_SIZE]>;

/// A fresh incarnation's container layer for node `me` of `nodes`, in the
/// heap. Built in a frame of its own, once, at load: later restarts happen
/// in place (`ContainerNode::restart`).
#[inline(never)]
fn new_node(me: NodeId, nodes: usize) -> Result<KBox<ContainerNode<Records>>> {
    let node = ContainerNode::new(me, nodes, Records::new()).map_err(|_| EINVAL)?;
    let mut node = KBox::new(node, GFP_KERNEL)?;
    node.restart(true);
    Ok(node)
}

/// What a fault found, and does next.
enum Step {
    /// The access is allowed, decided at this epoch: map the page.
    Hit(u64),
    /// A request is under way: wait for the page's state to change.
    Wait,
    /// A release or a recovery round is under way: ask again soon.
    Busy,
    /// The page is lost (or the request failed): `SIGBUS`.
    Lost,
}

/// How long attaching a shared region to its container may wait for the
/// container's home.
const ATTACH_TIMEOUT_MS: u64 = 10_000;

/// Who decides how long a shared container lives (see
/// `proto::container_share`).
enum Sharing {
    /// This node is its home.
    Home {
        sharers: Sharers,
        /// Destroyed: the nodes to tell once its pages are released.
        told: Option<NodeSet>,
        /// The release under way, by id.
        release: Option<u32>,
    },
    /// Another node is; attached (not idle) or not.
    Attached(bool),
}

/// This node's SysV segment of a key the cluster knows.
struct Segment {
    key: i32,
    /// Its id here.
    shmid: i32,
    /// `IPC_RMID` removed it (here, or its key elsewhere).
    removed: bool,
}

/// A SysV key whose segment this node is about to make (`shmget` asked
/// the key's manager; the segment is linked when made).
struct PendingKey {
    key: i32,
    container: u32,
    /// This node makes the container (else it attached to it).
    home: bool,
    /// The manager answered (else the container is only proposed: a
    /// lookup with `IPC_CREAT` waits for its answer).
    confirmed: bool,
    /// For a container this node makes: the nodes that attached to it
    /// before its segment was made here (they found the key at its
    /// manager meanwhile).
    attached: NodeSet,
    /// For a container made elsewhere: the owner and mode the segment
    /// takes here.
    owner: Option<Owner>,
    /// When it was asked, in ns: a segment not made within
    /// [`ATTACH_TIMEOUT_MS`] is given up.
    at_ns: u64,
}

/// A lookup of a SysV key this node waits on.
enum KeyWait {
    Waiting,
    Answered(KeyAnswer),
    /// The key's manager went down.
    Failed,
}

/// What holds a container's pages on this node.
enum Store {
    /// A process's private memory. The link keeps the `mm_struct`, not the
    /// address space: that ends with its process (or an exec), and the
    /// link then serves nothing.
    Mm(MmGrab),
    /// An anonymous shared region or a SysV segment's file (see
    /// `proto::container_share`).
    Region {
        region: SharedRegion,
        sharing: Sharing,
        /// For a SysV segment, which.
        segment: Option<Segment>,
    },
}

/// A reference to a store, taken to use it without `machine`.
enum Local {
    Mm(MmRef),
    Region(SharedRegion),
}

/// A store linked to a container on this node.
struct Link {
    container: u32,
    store: Store,
    /// The process uses this copy; else a shadow keeps it (always true
    /// for a shared region: every fault on it asks the container).
    active: bool,
    /// Pages received for this link since [`Linker::counts`] last took them.
    fetched: u64,
    /// Pages sent from this link since then.
    served: u64,
}

/// What the executor does, in the order the machine decided it.
enum Op {
    /// Send `msg` to `to` (never this node), with the local copy's
    /// contents when [`PageMsg::carries_data`].
    Send { to: NodeId, msg: PageMsg },
    /// Deliver `msg`, which carries data, to this node itself.
    Loopback { msg: PageMsg },
    /// Install `data` as the local copy, read-only.
    Install { page: PageId, data: PageBuf },
    /// Drop the local copy.
    Discard { page: PageId },
    /// Keep the local copy, read-only.
    WriteProtect { page: PageId },
    /// Send `hello` to `to` (see `proto::container_member`).
    Hello { to: NodeId, hello: Hello },
    /// Send `msg` to `to` (see `proto::container_share`).
    Share { to: NodeId, msg: ShareMsg },
    /// Remove this node's SysV segment of `container` (its key was removed
    /// elsewhere).
    RemoveSegment { container: u32 },
    /// Send the messages held back for `to` (its container layer said
    /// hello: its transport is up).
    Flush { to: NodeId },
    /// Drop the messages held back for `to` (it went down).
    Forget { to: NodeId },
    /// Drop pages `first..end` of `container` from the linked address
    /// space (a release, at the container's home).
    DropRange {
        container: u32,
        first: u64,
        end: u64,
    },
}

/// The home's memory, as the protocol asks it: the linked address space
/// holds every page of its container no node took yet (one nobody touched
/// reads as zeros, or the file), so the home adopts the page it is asked
/// for rather than creating it.
struct HomeMemory;

impl Backing for HomeMemory {
    fn holds(&self, _page: PageId) -> bool {
        true
    }
}

impl Op {
    /// The page whose local copy the operation touches, if any.
    fn page(&self) -> Option<PageId> {
        match self {
            Op::Install { page, .. } | Op::Discard { page } | Op::WriteProtect { page } => {
                Some(*page)
            }
            Op::Send { msg, .. } | Op::Loopback { msg } if msg.carries_data() => msg.page(),
            Op::DropRange { .. }
            | Op::Send { .. }
            | Op::Loopback { .. }
            | Op::Hello { .. }
            | Op::Share { .. }
            | Op::RemoveSegment { .. }
            | Op::Flush { .. }
            | Op::Forget { .. } => None,
        }
    }
}

/// Everything `machine` protects.
pub(crate) struct Machine {
    /// In the heap: a node is several kilobytes (see `restart`).
    pub(crate) node: KBox<ContainerNode<Records>>,
    links: KVec<Link>,
    /// Pages with queued operations, and how many.
    pending: KVec<(PageId, u32)>,
    /// Pages whose every copy was lost with a node: faults on them get
    /// `SIGBUS` until the page is released.
    lost: KVec<PageId>,
    /// Releases this node asked for that completed, by id.
    released: KVec<u32>,
    /// Held while this node keeps any page record or link: unloaded, the
    /// container layer would lose pages other nodes count on it for.
    pin: Option<ModulePin>,
    /// Messages to this node being delivered within one event, nested.
    loopback_depth: u32,
    /// Peers whose container layer said hello since its transport last
    /// went down: their page messages are delivered.
    heard: NodeSet,
    /// Page messages from peers not heard yet, in arrival order.
    early: Parked,
    /// The incarnations of the peers' container layers heard from.
    members: Members,
    /// A synced peer said hello to this fresh incarnation: it joins (and
    /// does not boot with an undecided peer).
    joins: bool,
    /// The serial of the last container homed here that this node made.
    serial: u16,
    /// Attach requests this node waits on: (request, home, answer).
    attaches: KVec<(u32, NodeId, Option<bool>)>,
    /// The last attach or key request id.
    attach_req: u32,
    /// The SysV keys this node manages (`proto::container_share`).
    keys: KVec<KeyEntry>,
    /// SysV segments about to be made here.
    pending_keys: KVec<PendingKey>,
    /// Key lookups this node waits on: (request, manager, state).
    key_waits: KVec<(u32, NodeId, KeyWait)>,
    /// Releases nobody waits for (of shared containers whose home died),
    /// by id: their completion is dropped.
    unwaited: KVec<u32>,
}

impl Machine {
    /// The page records.
    pub(crate) fn records(&self) -> &Records {
        self.node.records()
    }

    /// Number of address spaces linked here.
    pub(crate) fn links_len(&self) -> usize {
        self.links.len()
    }

    /// Whether this node's container layer is part of the cluster's view.
    pub(crate) fn is_synced(&self) -> bool {
        !self.node.is_joining()
    }

    fn link_of(&self, mm_id: usize) -> Option<&Link> {
        self.links
            .iter()
            .find(|l| matches!(&l.store, Store::Mm(mm) if mm.id() == mm_id))
    }

    fn link_mut(&mut self, container: u32) -> Option<&mut Link> {
        self.links.iter_mut().find(|l| l.container == container)
    }

    fn mm_of(&self, container: u32) -> Option<&MmGrab> {
        self.links
            .iter()
            .find(|l| l.container == container)
            .and_then(|l| match &l.store {
                Store::Mm(mm) => Some(mm),
                Store::Region { .. } => None,
            })
    }

    /// The container the shared region `key` is linked to here.
    fn region_container(&self, key: usize) -> Option<u32> {
        self.links
            .iter()
            .find(|l| matches!(&l.store, Store::Region { region, .. } if region.key() == key))
            .map(|l| l.container)
    }

    /// Whether a link here uses `container` (or a segment about to be
    /// made here will).
    fn is_linked(&self, container: u32) -> bool {
        self.links.iter().any(|l| l.container == container)
            || self.pending_keys.iter().any(|p| p.container == container)
    }

    /// The home of `container` if the incarnation that made it is up.
    fn live_home(&self, container: u32) -> Option<NodeId> {
        let home = crate::proto::container::home_of(container)?;
        let gen = crate::proto::container::home_gen_of(container);
        (self.node.live().contains(home) && self.node.gens().get(home) == gen).then_some(home)
    }

    fn next_req(&mut self) -> u32 {
        self.attach_req = self.attach_req.wrapping_add(1).max(1);
        self.attach_req
    }

    /// Ends the link to `container`, if any.
    fn remove_link(&mut self, container: u32) -> Option<Link> {
        let i = self.links.iter().position(|l| l.container == container)?;
        kvec::swap_remove(&mut self.links, i)
    }

    pub(crate) fn is_pending(&self, page: PageId) -> bool {
        self.pending.iter().any(|(p, _)| *p == page)
    }

    fn add_pending(&mut self, page: PageId) -> Result {
        if let Some(entry) = self.pending.iter_mut().find(|(p, _)| *p == page) {
            entry.1 += 1;
            return Ok(());
        }
        self.pending.push((page, 1), GFP_KERNEL)?;
        Ok(())
    }

    fn end_pending(&mut self, page: PageId) {
        let slice = self.pending.as_mut_slice();
        if let Some(i) = slice.iter().position(|(p, _)| *p == page) {
            slice[i].1 -= 1;
            if slice[i].1 == 0 {
                kvec::swap_remove(&mut self.pending, i);
            }
        }
    }
}

/// The actions of one event, collected for [`Linker::carry_out`].
pub(crate) struct Actions {
    /// A vmalloc fallback: a release of a large range records thousands
    /// (an order-6 kmalloc failed under memory pressure).
    list: KVVec<PageAction>,
    /// An action could not be recorded (no memory).
    overflow: bool,
}

impl Actions {
    pub(crate) fn new() -> Self {
        Actions {
            list: KVVec::new(),
            overflow: false,
        }
    }
}

impl Sink<PageAction> for Actions {
    fn push(&mut self, action: PageAction) {
        if self.list.push(action, GFP_KERNEL).is_err() {
            self.overflow = true;
        }
    }
}

/// The container layer of this node, with its memory linker.
#[pin_data]
pub(crate) struct Linker {
    /// The state machine and the links.
    #[pin]
    pub(crate) machine: Mutex<Machine>,
    /// Operations for the executor, oldest first.
    #[pin]
    ops: Mutex<KVec<Op>>,
    /// Signalled when `ops` gets work.
    #[pin]
    ops_ready: CondVar,
    /// Bumped, under its own lock, whenever a page's state may have
    /// changed: faulting tasks wait for it to move.
    #[pin]
    generation: Mutex<u64>,
    /// Signalled with `generation`.
    #[pin]
    changed: CondVar,
    /// See the module documentation.
    epoch: AtomicU64,
    /// Number of links, read by every fault without a lock.
    nr_links: AtomicUsize,
    /// Pid of the executor thread, whose faults are local.
    executor: AtomicI32,
    /// Number of nodes in the cluster.
    nodes: usize,
    /// Encoded page messages to nodes whose transport was down when they
    /// were sent, oldest first, with their destination: sent when the
    /// node's container layer says hello, dropped when it goes down. Only
    /// the executor touches it.
    #[pin]
    held_back: Mutex<Parked>,
    /// This incarnation of the container layer (random, never 0; a new
    /// one when the layer starts afresh).
    incarnation: AtomicU64,
    /// Set when the container layer says bye (the module unloads): from
    /// then on it neither says hello nor answers one, so that no peer
    /// joins an incarnation that is going away.
    leaving: AtomicBool,
    /// Counters, shown in debugfs.
    pub(crate) stats: Stats,
    /// Pages injected here that no store here holds (see `pool`). Taken
    /// after `machine` when both are held; nothing else is taken while
    /// holding it.
    #[pin]
    pub(crate) pool: Mutex<Pool>,
    /// Memory pressure: the flusher's state (see `pressure`).
    #[pin]
    pub(crate) pressure: Pressure,
}

impl Linker {
    /// The container layer of node `me` in a cluster of `nodes`, a fresh
    /// incarnation joining the others (see `proto::container_member`); it
    /// becomes a node of a cluster booting together with [`Linker::boot`].
    pub(crate) fn new(me: NodeId, nodes: usize) -> Result<Arc<Self>> {
        let node = new_node(me, nodes)?;
        Arc::pin_init(
            pin_init!(Linker {
                machine <- new_mutex!(Machine {
                    node,
                    links: KVec::new(),
                    pending: KVec::new(),
                    lost: KVec::new(),
                    released: KVec::new(),
                    pin: None,
                    loopback_depth: 0,
                    heard: NodeSet::EMPTY,
                    early: Parked::new(),
                    members: Members::new(),
                    joins: false,
                    serial: 0,
                    attaches: KVec::new(),
                    attach_req: 0,
                    keys: KVec::new(),
                    pending_keys: KVec::new(),
                    key_waits: KVec::new(),
                    unwaited: KVec::new(),
                }),
                ops <- new_mutex!(KVec::new()),
                held_back <- new_mutex!(Parked::new()),
                ops_ready <- new_condvar!(),
                generation <- new_mutex!(0),
                changed <- new_condvar!(),
                epoch: AtomicU64::new(0),
                nr_links: AtomicUsize::new(0),
                executor: AtomicI32::new(-1),
                nodes,
                incarnation: AtomicU64::new(cohort::random_u64().max(1)),
                leaving: AtomicBool::new(false),
                stats: Stats::new(),
                pool <- new_mutex!(Pool::new()),
                pressure <- Pressure::new(),
            }),
            GFP_KERNEL,
        )
    }

    pub(crate) fn me(&self) -> NodeId {
        NodeId(cohort::node_id() as u8)
    }

    /// The address space linked to `container` here, unless it ended.
    pub(crate) fn mm_of(&self, container: u32) -> Option<MmRef> {
        self.machine.lock().mm_of(container)?.get()
    }

    /// The store of `container` here, unless it ended.
    fn local(&self, container: u32) -> Option<Local> {
        let m = self.machine.lock();
        let link = m.links.iter().find(|l| l.container == container)?;
        match &link.store {
            Store::Mm(mm) => mm.get().map(Local::Mm),
            Store::Region { region, .. } => Some(Local::Region(region.clone())),
        }
    }

    /// Adds to `pages` the indexes of the pages of `container` of which
    /// this node has a copy.
    pub(crate) fn held_copies(&self, container: u32, pages: &mut KVVec<u64>) -> Result {
        let m = self.machine.lock();
        let mut failed = false;
        Table::for_each(m.node.records(), &mut |page, rec| {
            if page.container == container
                && rec.present
                && pages.push(page.index, GFP_KERNEL).is_err()
            {
                failed = true;
            }
        });
        if failed {
            return Err(ENOMEM);
        }
        Ok(())
    }

    /// Tells faulting tasks to look again.
    pub(crate) fn wake(&self) {
        *self.generation.lock() += 1;
        self.changed.notify_all();
    }

    pub(crate) fn generation(&self) -> u64 {
        *self.generation.lock()
    }

    /// Waits until the generation moves past `seen` or `deadline_ns`;
    /// false on a time-out or a fatal signal.
    pub(crate) fn wait_change(&self, seen: u64, deadline_ns: u64) -> bool {
        let mut gen = self.generation.lock();
        while *gen == seen {
            let now = cohort::now_ns();
            if now >= deadline_ns || migration::fatal_signal_pending() {
                return false;
            }
            let ms = ((deadline_ns - now) / 1_000_000 + 1).min(u64::from(u32::MAX)) as u32;
            let _ = self
                .changed
                .wait_interruptible_timeout(&mut gen, kernel::time::msecs_to_jiffies(ms));
        }
        true
    }

    /// Carries out the actions of one event of the machine, holding
    /// `machine`: queues the operations, delivers messages to this node
    /// at once, wakes faulting tasks. `data` is the page carried by the
    /// message being handled, for [`PageAction::Install`].
    pub(crate) fn carry_out(
        &self,
        m: &mut Machine,
        actions: Actions,
        data: Option<&[u8; PAGE_SIZE]>,
    ) {
        if actions.overflow {
            pr_err!("out of memory recording the actions of a page event\n");
        }
        let mut wake = false;
        for action in actions.list {
            match action {
                PageAction::Send { to, msg } if to == self.me() => {
                    if msg.carries_data() {
                        self.queue(m, Op::Loopback { msg });
                    } else if m.loopback_depth >= MAX_LOOPBACK_DEPTH {
                        // The protocol never chains this many messages to
                        // itself: a loop would hold the CPU (and the
                        // stack) for good. Drop it; the request it served
                        // times out.
                        self.stats.bump(Counter::BadMessages);
                        pr_err!(
                            "page message {:?} to this node dropped: {} chained to itself\n",
                            msg,
                            MAX_LOOPBACK_DEPTH
                        );
                    } else {
                        m.loopback_depth += 1;
                        self.deliver(m, to, msg, None);
                        m.loopback_depth -= 1;
                    }
                }
                PageAction::Send { to, msg } => {
                    if msg.carries_data() {
                        self.epoch.fetch_add(1, Ordering::AcqRel);
                    }
                    self.queue(m, Op::Send { to, msg });
                }
                PageAction::FirstTouch { .. } => {
                    // The first copy is what a first access to the linked
                    // address space sees: nothing to make in advance.
                    self.stats.bump(Counter::FirstTouches);
                }
                PageAction::Install { page } => match data {
                    Some(data) => match KBox::new(*data, GFP_KERNEL) {
                        Ok(data) => {
                            self.epoch.fetch_add(1, Ordering::AcqRel);
                            self.queue(m, Op::Install { page, data });
                        }
                        Err(_) => {
                            pr_err!("out of memory installing a page of {}\n", page.container)
                        }
                    },
                    None => pr_err!(
                        "a page of container {} came without its contents\n",
                        page.container
                    ),
                },
                PageAction::Discard { page } => {
                    self.epoch.fetch_add(1, Ordering::AcqRel);
                    self.stats.bump(Counter::Discards);
                    self.queue(m, Op::Discard { page });
                }
                PageAction::WriteProtect { page } => {
                    self.epoch.fetch_add(1, Ordering::AcqRel);
                    self.queue(m, Op::WriteProtect { page });
                }
                PageAction::Adopt { .. } => self.stats.bump(Counter::Adoptions),
                PageAction::DropBacking {
                    container,
                    first,
                    end,
                } => {
                    self.epoch.fetch_add(1, Ordering::AcqRel);
                    self.queue(
                        m,
                        Op::DropRange {
                            container,
                            first,
                            end,
                        },
                    );
                }
                PageAction::Failed { page } => {
                    pr_warn!(
                        "page {}:{:#x} was lost with the node that held it\n",
                        page.container,
                        page.index
                    );
                    if m.lost.push(page, GFP_KERNEL).is_err() {
                        pr_err!("out of memory recording a lost page\n");
                    }
                    wake = true;
                }
                PageAction::Released { origin, id, .. } => {
                    if origin == self.me() && m.released.push(id, GFP_KERNEL).is_err() {
                        pr_err!("out of memory recording a release\n");
                    }
                    wake = true;
                }
                PageAction::Flushed { .. } => {
                    let _ = self.pressure.in_flight.fetch_update(
                        Ordering::AcqRel,
                        Ordering::Acquire,
                        |n| n.checked_sub(1),
                    );
                    wake = true;
                }
                PageAction::Ready { .. } => wake = true,
            }
        }
        if wake {
            self.wake();
        }
        Self::update_pin(m);
    }

    /// Pins the module while this node keeps page records or links.
    fn update_pin(m: &mut Machine) {
        let busy = m.node.records().len() != 0 || !m.links.is_empty();
        if busy && m.pin.is_none() {
            m.pin = ModulePin::new(&crate::THIS_MODULE).ok();
        } else if !busy {
            m.pin = None;
        }
    }

    /// Where this node's container layer stands (see
    /// `proto::container_member`).
    fn standing(m: &Machine) -> Standing {
        if !m.node.is_joining() {
            Standing::Synced
        } else if m.joins {
            Standing::Joining
        } else {
            Standing::Undecided
        }
    }

    /// Number of nodes in the cluster.
    pub(crate) fn nr_nodes(&self) -> usize {
        self.nodes
    }

    /// The peers whose container layer said hello since their transport
    /// last came up.
    pub(crate) fn heard_peers(&self) -> NodeSet {
        self.machine.lock().heard
    }

    /// Whether this node is synced and counts every peer dead (it carried
    /// on alone).
    fn alone(&self, m: &Machine) -> bool {
        self.nodes > 1
            && Self::standing(m) == Standing::Synced
            && m.node.live() == NodeSet::single(self.me())
    }

    /// The peers whose transport is up.
    fn online_peers(&self) -> NodeSet {
        let mut online = NodeSet::EMPTY;
        for n in 0..self.nodes {
            if n as u32 != cohort::node_id() && cohort::node_online(n as u32) {
                online.insert(NodeId(n as u8));
            }
        }
        online
    }

    /// An undecided node whose silent peers had their time boots with the
    /// undecided peers it heard (`proto::container_member::BOOT_WAIT_NS`).
    /// Called by the executor when idle.
    fn tick(&self) {
        let mut guard = self.machine.lock();
        let m = &mut *guard;
        self.drop_dead_links(m);
        self.share_tick(m);
        if Self::standing(m) == Standing::Undecided
            && m.members.may_boot(
                NodeSet::first(self.nodes).without(self.me()),
                cohort::now_ns(),
            )
        {
            pr_info!(
                "node {} boots the container layer with the peers that answered\n",
                self.me().0
            );
            self.boot(m);
        }
    }

    /// Drops the links whose address space ended although the process
    /// layer did not unlink them (a path that forgot to): they serve
    /// nothing, and would keep the module pinned. Logged, with the
    /// container, so that the path can be found.
    fn drop_dead_links(&self, m: &mut Machine) {
        let mut i = 0;
        let mut dropped = false;
        while i < m.links.len() {
            let Some(link) = m.links.get(i) else {
                break;
            };
            let Store::Mm(mm) = &link.store else {
                i += 1;
                continue;
            };
            if mm.get().is_some() {
                i += 1;
                continue;
            }
            pr_warn!(
                "container {:#x}: the {} address space linked here ended without an unlink; link dropped\n",
                link.container,
                if link.active { "running" } else { "shadow's" }
            );
            let link = kvec::swap_remove(&mut m.links, i);
            self.nr_links.fetch_sub(1, Ordering::Relaxed);
            drop(link);
            dropped = true;
        }
        if dropped {
            Self::update_pin(m);
        }
    }

    /// Starts this node's container layer afresh, as a new undecided
    /// incarnation, and says hello to every peer that is up.
    fn start_afresh(&self, m: &mut Machine) {
        m.node.restart(true);
        // The records that said where these copies are went.
        self.pool.lock().clear();
        m.lost = KVec::new();
        m.joins = false;
        m.members.restart();
        m.heard = NodeSet::EMPTY;
        m.early = Parked::new();
        self.incarnation
            .store(cohort::random_u64().max(1), Ordering::Relaxed);
        Self::update_pin(m);
        for node in self.online_peers().iter() {
            let hello = Hello {
                incarnation: self.incarnation.load(Ordering::Relaxed),
                standing: Standing::Undecided,
                answer: false,
                alone: false,
            };
            self.queue(m, Op::Hello { to: node, hello });
        }
    }

    /// Whether this node's container layer is part of the cluster's view.
    pub(crate) fn synced(&self) -> bool {
        !self.machine.lock().node.is_joining()
    }

    /// Says hello to `to` (its transport came up, or this layer started).
    pub(crate) fn say_hello(&self, to: NodeId) {
        if self.leaving.load(Ordering::Acquire) {
            return;
        }
        let mut guard = self.machine.lock();
        let m = &mut *guard;
        let hello = Hello {
            incarnation: self.incarnation.load(Ordering::Relaxed),
            standing: Self::standing(m),
            answer: false,
            alone: self.alone(m),
        };
        self.queue(m, Op::Hello { to, hello });
    }

    /// The container layer says bye: it neither says hello nor answers
    /// one from now on (see `member::stop`).
    pub(crate) fn leave(&self) {
        self.leaving.store(true, Ordering::Release);
    }

    /// Starts as the only node of the cluster.
    pub(crate) fn boot_alone(&self) {
        let mut guard = self.machine.lock();
        self.boot(&mut guard);
    }

    /// Node `from` said `hello`: answers it unless it is an answer, then
    /// boots, joins or counts the peer up, as `proto::container_member`
    /// says. The answer carries this node's standing before the hello.
    pub(crate) fn heard(&self, from: NodeId, hello: Hello) {
        if self.leaving.load(Ordering::Acquire) {
            return;
        }
        let mut guard = self.machine.lock();
        let m = &mut *guard;
        if gives_way(self.me(), self.alone(m), from, &hello) {
            // This node lost every peer and carried on alone; the peer
            // kept a view too (it counts this node dead). The two views
            // cannot be merged: this node starts afresh and joins the
            // peer's.
            pr_warn!(
                "node {} was alone and node {} is synced: the container layer starts afresh ({} address spaces linked here lose their pages held elsewhere)\n",
                self.me().0,
                from.0,
                m.links.len()
            );
            self.start_afresh(m);
        }
        let standing = Self::standing(m);
        if !hello.answer || must_tell(standing, self.alone(m), &hello) {
            let answer = Hello {
                incarnation: self.incarnation.load(Ordering::Relaxed),
                standing,
                answer: true,
                alone: self.alone(m),
            };
            self.queue(
                m,
                Op::Hello {
                    to: from,
                    hello: answer,
                },
            );
        }
        // Whatever it decides, the peer's container layer runs and is
        // connected: a joining node learns the view from its markers.
        let peers = NodeSet::first(self.nodes).without(self.me());
        let now = cohort::now_ns();
        let mut verdict = m.members.heard(from, standing, hello, peers, now);
        if verdict == Verdict::Afresh {
            pr_info!(
                "node {}: node {} restarted while this node joined: the container layer starts afresh\n",
                self.me().0,
                from.0
            );
            self.start_afresh(m);
            verdict = m
                .members
                .heard(from, Standing::Undecided, hello, peers, now);
        }
        match verdict {
            Verdict::Boot => {
                pr_info!(
                    "node {} boots the container layer with node {}\n",
                    self.me().0,
                    from.0
                );
                self.boot(m);
            }
            Verdict::Join => {
                pr_info!(
                    "node {} joins the container layer of node {}\n",
                    self.me().0,
                    from.0
                );
                m.joins = true;
                self.node_up_locked(m, from);
            }
            Verdict::Restarted => {
                self.node_down_locked(m, from);
                self.node_up_locked(m, from);
            }
            Verdict::Up | Verdict::Nothing | Verdict::Afresh => self.node_up_locked(m, from),
        }
        if !m.heard.contains(from) {
            m.heard.insert(from);
            self.deliver_early(m, from);
        }
    }

    /// Keeps a page message from `from`, not heard yet (at most
    /// [`MAX_PARKED`]).
    fn hold_early(m: &mut Machine, from: NodeId, bytes: &[u8]) {
        match m.early.park_copy(from, bytes) {
            Ok(()) => {}
            Err(e) if e == ENOSPC => pr_err!(
                "page message from node {} dropped: {} wait for their senders' hello\n",
                from.0,
                MAX_PARKED
            ),
            Err(_) => pr_err!(
                "out of memory keeping a page message from node {}\n",
                from.0
            ),
        }
    }

    /// Delivers, in order, the page messages `from` sent before its hello.
    fn deliver_early(&self, m: &mut Machine, from: NodeId) {
        for bytes in m.early.take(from) {
            match crate::proto::container_msg::decode(&bytes) {
                Ok((pm, data)) => self.deliver(m, from, pm, data),
                Err(e) => pr_warn!("malformed page message from node {}: {:?}\n", from.0, e),
            }
        }
    }

    /// Node `node`'s container layer said bye: it is down, and its next
    /// hello is a new incarnation's.
    pub(crate) fn bye(&self, node: NodeId) {
        self.machine.lock().members.forget(node);
        self.node_down(node);
    }

    /// Starts as a node of a cluster booting together: every node is live
    /// at generation 0, then the nodes whose transport is down count dead.
    fn boot(&self, m: &mut Machine) {
        m.node.restart(false);
        self.pool.lock().clear();
        m.lost = KVec::new();
        m.joins = false;
        for n in 0..self.nodes {
            let node = NodeId(n as u8);
            if node != self.me() && !cohort::node_online(n as u32) {
                self.node_down_locked(m, node);
            }
        }
        Self::update_pin(m);
    }

    /// Node `node`'s container layer is up (it said hello).
    fn node_up_locked(&self, m: &mut Machine, node: NodeId) {
        self.queue(m, Op::Flush { to: node });
        let mut actions = Actions::new();
        if let Err(e) = m.node.node_up(node, &mut actions) {
            pr_err!("node {} up: {:?}\n", node.0, e);
        }
        self.carry_out(m, actions, None);
    }

    /// Queues `op` for the executor; its page is pending until it ran.
    fn queue(&self, m: &mut Machine, op: Op) {
        if let Some(page) = op.page() {
            if m.add_pending(page).is_err() {
                pr_err!("out of memory queueing a page operation\n");
                return;
            }
        }
        let mut ops = self.ops.lock();
        if ops.push(op, GFP_KERNEL).is_err() {
            pr_err!("out of memory queueing a page operation\n");
            return;
        }
        drop(ops);
        self.ops_ready.notify_one();
    }

    /// Hands `msg` from `from` to the machine, with the page it carries.
    fn deliver(&self, m: &mut Machine, from: NodeId, msg: PageMsg, data: Option<&[u8; PAGE_SIZE]>) {
        let mut actions = Actions::new();
        if let Err(e) = m.node.on_message(from, msg, &HomeMemory, &mut actions) {
            self.stats.bump(Counter::BadMessages);
            pr_warn!(
                "page message {:?} from node {} refused: {:?}\n",
                msg,
                from.0,
                e
            );
        }
        self.carry_out(m, actions, data);
    }

    /// The executor thread: runs the queued operations in order.
    pub(crate) fn run(self: Arc<Self>) {
        self.executor
            .store(migration::task_ids(kernel::current!()).0, Ordering::Relaxed);
        while !thread::should_stop() {
            let batch = {
                let mut ops = self.ops.lock();
                if ops.is_empty() {
                    let _ = self.ops_ready.wait_interruptible_timeout(
                        &mut ops,
                        kernel::time::msecs_to_jiffies(IDLE_MS),
                    );
                    if ops.is_empty() {
                        drop(ops);
                        self.tick();
                        continue;
                    }
                }
                core::mem::replace(&mut *ops, KVec::new())
            };
            for op in batch {
                let page = op.page();
                self.execute(op);
                if let Some(page) = page {
                    self.machine.lock().end_pending(page);
                }
                self.wake();
            }
        }
    }

    fn address(page: PageId) -> usize {
        (page.index << PAGE_SHIFT) as usize
    }

    /// Reads the local copy of `page`, write-protecting it first so that
    /// no write can land after the read.
    fn read_local(&self, page: PageId) -> Result<PageBuf> {
        if let Some(copy) = self.pool.lock().copy(page) {
            return copy;
        }
        let mut buf = KBox::new([0u8; PAGE_SIZE], GFP_KERNEL)?;
        match self.local(page.container).ok_or(ENOENT)? {
            Local::Mm(mm) => {
                let addr = Self::address(page);
                mm.wrprotect(addr)?;
                mm.read_page(addr, &mut buf)?;
            }
            Local::Region(region) => region.read(page.index, &mut buf)?,
        }
        Ok(buf)
    }

    /// The contents of the local copy of `page`, to send. The protocol
    /// counts on them: a copy that cannot be read (its address space
    /// ended, no memory) goes as zeros, with a log line.
    fn contents(&self, page: PageId) -> Option<PageBuf> {
        match self.read_local(page) {
            Ok(buf) => Some(buf),
            // No mapping at the page's address in the address space linked
            // here (a shadow's lacks the mappings its process made after it
            // left): the page was never written here, and zeros are what
            // the home's memory holds for it.
            Err(e) if e == EFAULT => KBox::new([0u8; PAGE_SIZE], GFP_KERNEL).ok(),
            Err(e) => {
                pr_err!(
                    "page {}:{:#x} unreadable here ({:?}): sending zeros\n",
                    page.container,
                    page.index,
                    e
                );
                KBox::new([0u8; PAGE_SIZE], GFP_KERNEL).ok()
            }
        }
    }

    fn execute(&self, op: Op) {
        match op {
            Op::Send { to, msg } => match msg.page().filter(|_| msg.carries_data()) {
                Some(page) => {
                    let Some(data) = self.contents(page) else {
                        return;
                    };
                    if let Some(link) = self.machine.lock().link_mut(page.container) {
                        link.served += 1;
                    }
                    self.send(to, &msg, Some(&data));
                }
                None => self.send(to, &msg, None),
            },
            Op::Loopback { msg } => {
                let Some(data) = msg.page().and_then(|page| self.contents(page)) else {
                    return;
                };
                let mut m = self.machine.lock();
                self.deliver(&mut m, self.me(), msg, Some(&data));
            }
            Op::Flush { to } => self.flush_held(to),
            Op::Forget { to } => self.forget_held(to),
            Op::Share { to, msg } => crate::share::send(to, &msg),
            Op::RemoveSegment { container } => {
                let found = {
                    let m = self.machine.lock();
                    m.links
                        .iter()
                        .find(|l| l.container == container)
                        .and_then(|l| match &l.store {
                            Store::Region {
                                region,
                                segment: Some(seg),
                                ..
                            } => Some((region.clone(), seg.shmid)),
                            _ => None,
                        })
                };
                if let Some((region, shmid)) = found {
                    match region.remove_segment(shmid) {
                        Ok(()) => {}
                        Err(e) if e == EINVAL || e == cohort::errno::EIDRM() => {}
                        Err(e) => pr_warn!("SysV segment {} not removed: {:?}\n", shmid, e),
                    }
                }
            }
            Op::Hello { to, hello } => {
                let mut buf = [0u8; Hello::LEN];
                let sent = hello
                    .encode(&mut buf)
                    .map_err(|_| EINVAL)
                    .and_then(|_| msg::send(u32::from(to.0), MSG_CONTAINER_HELLO, &buf));
                if let Err(e) = sent {
                    pr_warn!("hello to node {} not sent: {:?}\n", to.0, e);
                }
            }
            Op::DropRange {
                container,
                first,
                end,
            } => {
                self.pool.lock().remove_range(container, first, end);
                match self.local(container) {
                    Some(Local::Mm(mm)) => {
                        let to_addr = |index: u64| -> usize {
                            usize::try_from(index.saturating_mul(PAGE_SIZE as u64))
                                .unwrap_or(usize::MAX)
                                .min(crate::USER_END)
                        };
                        mm.zap(to_addr(first), to_addr(end));
                    }
                    Some(Local::Region(region)) => region.drop_range(first, end),
                    None => {}
                }
            }
            Op::Install { page, data } => {
                if let Some(link) = self.machine.lock().link_mut(page.container) {
                    link.fetched += 1;
                }
                let installed = match self.local(page.container) {
                    Some(Local::Mm(mm)) => mm.install_page(Self::address(page), false, &data),
                    Some(Local::Region(region)) => region.write(page.index, &data),
                    // Injected here, where nothing is linked to it.
                    None => Err(ENOENT),
                };
                self.stats.bump(Counter::Installs);
                let mut pool = self.pool.lock();
                match installed {
                    Ok(()) => {
                        pool.remove(page);
                    }
                    // No store here holds the page (none linked, or no
                    // mapping at its address in a shadow's address
                    // space): the pool does, as the record says.
                    Err(e) if e == ENOENT || e == EFAULT => {
                        if pool.insert(page, data).is_err() {
                            pr_err!(
                                "page {}:{:#x} lost: no memory to keep it\n",
                                page.container,
                                page.index
                            );
                        }
                    }
                    Err(e) => pr_warn!(
                        "page {}:{:#x} not installed: {:?}\n",
                        page.container,
                        page.index,
                        e
                    ),
                }
            }
            Op::Discard { page } => {
                self.pool.lock().remove(page);
                match self.local(page.container) {
                    Some(Local::Mm(mm)) => {
                        let addr = Self::address(page);
                        mm.zap(addr, addr + PAGE_SIZE);
                    }
                    Some(Local::Region(region)) => region.drop_range(page.index, page.index + 1),
                    None => {}
                }
            }
            Op::WriteProtect { page } => match self.local(page.container) {
                Some(Local::Mm(mm)) => {
                    let _ = mm.wrprotect(Self::address(page));
                }
                Some(Local::Region(region)) => region.zap(page.index),
                None => {}
            },
        }
    }

    /// Sends `msg` (and `data`) to node `to`; a node that is down is
    /// dealt with by the membership listener.
    fn send(&self, to: NodeId, msg: &PageMsg, data: Option<&[u8; PAGE_SIZE]>) {
        let mut buf = [0u8; crate::proto::container_msg::MAX_LEN];
        let len = match crate::proto::container_msg::encode(msg, data, &mut buf) {
            Ok(len) => len,
            Err(e) => {
                pr_err!("page message {:?} not encoded: {:?}\n", msg, e);
                return;
            }
        };
        self.stats.sent(msg);
        let mut held = self.held_back.lock();
        // After one held back, the later ones to that node wait too: the
        // protocol counts on each channel keeping its order.
        if held.has(to) {
            Self::hold(&mut held, to, &buf[..len]);
            return;
        }
        match msg::send(
            u32::from(to.0),
            crate::proto::container_msg::MSG_CONTAINER,
            &buf[..len],
        ) {
            Ok(()) => {}
            Err(e) if e == cohort::errno::EHOSTDOWN() || e == cohort::errno::ENOTCONN() => {
                Self::hold(&mut held, to, &buf[..len]);
            }
            Err(e) => pr_warn!("page message to node {} not sent: {:?}\n", to.0, e),
        }
    }

    /// Holds `bytes` back for `to` (at most [`MAX_PARKED`] messages).
    fn hold(held: &mut Parked, to: NodeId, bytes: &[u8]) {
        match held.park_copy(to, bytes) {
            Ok(()) => {}
            Err(e) if e == ENOSPC => pr_err!(
                "page message to node {} dropped: {} held back for nodes not connected\n",
                to.0,
                MAX_PARKED
            ),
            Err(_) => pr_err!(
                "out of memory holding a page message to node {} back\n",
                to.0
            ),
        }
    }

    /// Sends what was held back for `to`, in order (`Op::Flush`).
    fn flush_held(&self, to: NodeId) {
        let mut held = self.held_back.lock();
        let mut down = false;
        for bytes in held.take(to) {
            if !down {
                match msg::send(
                    u32::from(to.0),
                    crate::proto::container_msg::MSG_CONTAINER,
                    &bytes,
                ) {
                    Ok(()) => continue,
                    // Down again: this one and the rest wait for the next
                    // hello.
                    Err(e) if e == cohort::errno::EHOSTDOWN() || e == cohort::errno::ENOTCONN() => {
                        down = true
                    }
                    Err(e) => {
                        pr_warn!("held page message to node {} not sent: {:?}\n", to.0, e);
                        continue;
                    }
                }
            }
            // It was parked a moment ago: there is room for it.
            if held.park(to, bytes).is_err() {
                pr_err!("out of memory keeping a page message held back\n");
            }
        }
    }

    /// Drops what was held back for `to` (`Op::Forget`).
    fn forget_held(&self, to: NodeId) {
        self.held_back.lock().take(to);
    }

    /// Links the private memory of `mm` to `container` on this node (0: a
    /// new container homed here), or changes whether the process uses it
    /// (`active`) when it is linked. Returns the container's id.
    ///
    /// # Errors
    ///
    /// `EBUSY`: `mm` is linked to another container; `EEXIST`: another
    /// address space here is linked to `container`; `EAGAIN`: this node's
    /// container layer has not joined the cluster's view yet; `ENOSPC`:
    /// every container id of this node is in use; `ENOMEM`.
    pub(crate) fn link(&self, mm: MmGrab, container: u32, active: bool) -> Result<u32> {
        let mut guard = self.machine.lock();
        let m = &mut *guard;
        if let Some(link) = m.link_of(mm.id()) {
            if container != 0 && link.container != container {
                return Err(EBUSY);
            }
            let container = link.container;
            if let Some(link) = m.link_mut(container) {
                link.active = active;
            }
            return Ok(container);
        }
        if m.node.is_joining() {
            // Its faults would wait for the join round.
            return Err(EAGAIN);
        }
        let container = if container == 0 {
            Self::new_container(m)?
        } else if m.is_linked(container) {
            return Err(EEXIST);
        } else {
            container
        };
        self.add_link(m, container, Store::Mm(mm), active)?;
        Ok(container)
    }

    /// Links `store` to `container` here.
    fn add_link(&self, m: &mut Machine, container: u32, store: Store, active: bool) -> Result {
        let link = Link {
            container,
            store,
            active,
            fetched: 0,
            served: 0,
        };
        m.links.push(link, GFP_KERNEL)?;
        self.nr_links.fetch_add(1, Ordering::Relaxed);
        Self::update_pin(m);
        Ok(())
    }

    /// The id of a new container homed here: the next serial that no
    /// container linked here uses, with this incarnation's generation.
    /// `ENOSPC` when every serial is in use, `EAGAIN` while joining.
    fn new_container(m: &mut Machine) -> Result<u32> {
        for _ in 0..=u16::MAX {
            m.serial = m.serial.wrapping_add(1).max(1);
            let id = m.node.new_container_id(m.serial).map_err(|_| EAGAIN)?;
            if !m.is_linked(id) {
                return Ok(id);
            }
        }
        Err(ENOSPC)
    }

    /// Pages of `container` received and sent here since the last call.
    pub(crate) fn counts(&self, container: u32) -> (u64, u64) {
        let mut m = self.machine.lock();
        match m.link_mut(container) {
            Some(link) => (
                core::mem::take(&mut link.fetched),
                core::mem::take(&mut link.served),
            ),
            None => (0, 0),
        }
    }

    /// Ends this node's link to `container`; with `destroy`, releases all
    /// its pages on every node first.
    pub(crate) fn unlink(&self, container: u32, destroy: bool) {
        if destroy {
            if let Err(e) = self.release(container, 0, LAST_INDEX) {
                pr_warn!(
                    "container {:#x} not released everywhere: {:?}\n",
                    container,
                    e
                );
            }
        }
        let mut m = self.machine.lock();
        let Some(i) = m.links.iter().position(|l| l.container == container) else {
            return;
        };
        let link = kvec::swap_remove(&mut m.links, i);
        self.nr_links.fetch_sub(1, Ordering::Relaxed);
        Self::update_pin(&mut m);
        drop(m);
        drop(link);
    }

    /// Releases `[start, end)` of the linked address space `mm_id` on every
    /// node (nothing for an address space that is not linked).
    pub(crate) fn release_mm(&self, mm_id: usize, start: usize, end: usize) -> Result {
        let Some(container) = self.machine.lock().link_of(mm_id).map(|l| l.container) else {
            return Ok(());
        };
        let first = (start >> PAGE_SHIFT) as u64;
        let end = (end.div_ceil(PAGE_SIZE)) as u64;
        if first >= end {
            return Ok(());
        }
        self.release(container, first, end)
    }

    /// Releases pages `first..end` of `container` on every node, and waits
    /// until every node has dropped them.
    ///
    /// # Errors
    ///
    /// `ETIMEDOUT` when the release did not complete within
    /// [`RELEASE_TIMEOUT_MS`] (a node that died is dealt with by the
    /// protocol: the release completes without it), `EINTR` on a fatal
    /// signal, or the protocol's refusal.
    fn release(&self, container: u32, first: u64, end: u64) -> Result {
        let deadline = cohort::now_ns().saturating_add(RELEASE_TIMEOUT_MS * 1_000_000);
        let id = {
            let mut guard = self.machine.lock();
            let m = &mut *guard;
            let mut actions = Actions::new();
            let id = m.node.release(container, first, end, &mut actions);
            self.carry_out(m, actions, None);
            // Pages lost in the range are fresh afterwards.
            let range = first..end;
            let mut i = 0;
            while i < m.lost.len() {
                let p = m.lost[i];
                if p.container == container && range.contains(&p.index) {
                    kvec::swap_remove(&mut m.lost, i);
                } else {
                    i += 1;
                }
            }
            id.map_err(|e| {
                pr_err!("release of container {:#x}: {:?}\n", container, e);
                EINVAL
            })?
        };
        self.await_answer(
            deadline,
            |m| {
                let i = m.released.iter().position(|r| *r == id)?;
                kvec::swap_remove(&mut m.released, i);
                Some(Ok(()))
            },
            |_| {},
        )
    }

    /// Waits, until `deadline`, for `answer` to give the outcome of a
    /// request, looking again whenever the state of a page or a request
    /// moves. On a time-out or a fatal signal `cancel` forgets the request,
    /// and the result is `ETIMEDOUT` or `EINTR`.
    fn await_answer<T>(
        &self,
        deadline: u64,
        mut answer: impl FnMut(&mut Machine) -> Option<Result<T>>,
        cancel: impl FnOnce(&mut Machine),
    ) -> Result<T> {
        loop {
            let gen = self.generation();
            if let Some(outcome) = answer(&mut self.machine.lock()) {
                return outcome;
            }
            if !self.wait_change(gen, deadline) {
                cancel(&mut self.machine.lock());
                return Err(if migration::fatal_signal_pending() {
                    EINTR
                } else {
                    cohort::errno::ETIMEDOUT()
                });
            }
        }
    }

    /// The messaging layer reports node `dead` down (or its container
    /// layer said bye).
    ///
    /// A node that is not synced yet starts afresh (a peer it heard from,
    /// maybe the one running its join round, is gone). A synced node that
    /// this leaves alone (every peer died, or its own transport went and
    /// every peer counts it dead now) starts afresh too, unless address
    /// spaces are linked here: their pages held elsewhere are lost, which
    /// is logged, and the node stays as it is.
    pub(crate) fn node_down(&self, dead: NodeId) {
        let mut guard = self.machine.lock();
        let m = &mut *guard;
        // What it sent from now on is a later incarnation's, or comes
        // over a new transport: delivered after its next hello.
        m.heard.remove(dead);
        m.early.take(dead);
        self.pressure.rooms.lock().forget(dead);
        self.shares_node_down(m, dead);
        self.node_down_locked(m, dead);
        let me = self.me();
        if self.nodes == 1 {
            return;
        }
        if m.node.is_joining() {
            if Self::standing(m) == Standing::Joining {
                pr_info!(
                    "node {}: node {} went down while this node joined: the container layer starts afresh\n",
                    me.0,
                    dead.0
                );
            }
            self.start_afresh(m);
        } else if m.node.live() == NodeSet::single(me) {
            if m.links.is_empty() {
                pr_info!(
                    "node {} lost every peer: its container layer starts afresh\n",
                    me.0
                );
                self.start_afresh(m);
            } else {
                pr_warn!(
                    "node {} lost every peer with {} address spaces linked: their pages held elsewhere are lost\n",
                    me.0,
                    m.links.len()
                );
            }
        }
    }

    fn node_down_locked(&self, m: &mut Machine, dead: NodeId) {
        self.queue(m, Op::Forget { to: dead });
        let mut actions = Actions::new();
        if let Err(e) = m.node.node_down(dead, &mut actions) {
            pr_err!("node {} down: {:?}\n", dead.0, e);
        }
        self.carry_out(m, actions, None);
    }

    /// The fault hook's work for a fault in `vma` at `address`.
    pub(crate) fn fault(&self, vma: &Vma, address: usize, flags: u32) -> FaultAction {
        if self.nr_links.load(Ordering::Relaxed) == 0 || vma.is_special() {
            return FaultAction::Local;
        }
        if let Some((key, index)) = vma.shared_region(address) {
            let Some(container) = self.machine.lock().region_container(key) else {
                return FaultAction::Local;
            };
            return self.fault_shared(vma, address, flags, PageId { container, index });
        }
        if !vma.is_private() {
            return FaultAction::Local;
        }
        let current = kernel::current!();
        if migration::task_ids(&current).0 == self.executor.load(Ordering::Relaxed) {
            // Reading in a page this node serves: it is this node's copy.
            return FaultAction::Local;
        }
        let (container, active) = match self.machine.lock().link_of(vma.mm_id()) {
            Some(link) => (link.container, link.active),
            None => return FaultAction::Local,
        };
        if !active {
            // A shadow's copy: the shadow's own accesses (to the buffers of
            // the calls it runs) are local; another task's (a read of its
            // /proc files) would map a stale page where none may be.
            return if migration::task_has_mm(&current, vma.mm_id()) {
                FaultAction::Local
            } else {
                FaultAction::Handled(VM_FAULT_SIGBUS)
            };
        }
        let page = PageId {
            container,
            index: (address >> PAGE_SHIFT) as u64,
        };
        self.throttle();
        self.serve(page, flags, |write, seen| {
            self.finish(vma, address, flags, write, seen, page)
        })
    }

    /// Gets `page` the access a fault with `flags` needs, then `map(write,
    /// seen)` maps it: `None` lets Linux do it, `VM_FAULT_NOPAGE` asks the
    /// container again (the epoch moved), any other value is the fault's.
    fn serve(
        &self,
        page: PageId,
        flags: u32,
        mut map: impl FnMut(bool, u64) -> Option<u32>,
    ) -> FaultAction {
        let write = flags & FAULT_FLAG_WRITE != 0;
        self.stats.bump(if write {
            Counter::WriteFaults
        } else {
            Counter::ReadFaults
        });
        let deadline = cohort::now_ns().saturating_add(FAULT_TIMEOUT_MS * 1_000_000);
        let mut remote = false;
        loop {
            let seen = match self.acquire(page, write, deadline, &mut remote) {
                Ok(seen) => seen,
                Err(action) => return action,
            };
            match map(write, seen) {
                Some(ret) if ret == VM_FAULT_NOPAGE => continue,
                Some(ret) => return FaultAction::Handled(ret),
                None => return FaultAction::Local,
            }
        }
    }

    /// A fault on a mapping of a shared region linked to a container: every
    /// access asks the container first, whoever takes it. The page is then
    /// mapped read-only, or writable when this node has the only copy; a
    /// write to a read-only page the node now owns lets Linux make it
    /// writable (the page is shared: no copy to make).
    fn fault_shared(&self, vma: &Vma, address: usize, flags: u32, page: PageId) -> FaultAction {
        self.throttle();
        self.serve(page, flags, |write, seen| {
            if vma.pte_state(address) != PteState::None {
                return None;
            }
            // A copy injected before the region was linked here goes into
            // the region first.
            if let Err(e) = self.unpool_region(page) {
                return Some(e);
            }
            Some(vma.install_shared(address, flags, write, &self.epoch, seen))
        })
    }

    /// Moves the pooled copy of `page`, if any, into the shared region
    /// linked here; `Err` is what the fault returns.
    fn unpool_region(&self, page: PageId) -> core::result::Result<(), u32> {
        let Some(copy) = self.pool.lock().copy(page) else {
            return Ok(());
        };
        let data = copy.map_err(|_| bindings::vm_fault_reason_VM_FAULT_OOM)?;
        if let Some(Local::Region(region)) = self.local(page.container) {
            if region.write(page.index, &data).is_ok() {
                self.pool.lock().remove(page);
            }
        }
        Ok(())
    }

    /// Waits until this node holds `page` with the access a fault needs:
    /// the epoch at which it was decided, or what the fault returns
    /// (`SIGBUS` for a lost page, a time-out, a fatal signal).
    fn acquire(
        &self,
        page: PageId,
        write: bool,
        deadline: u64,
        remote: &mut bool,
    ) -> core::result::Result<u64, FaultAction> {
        let mut quick = 0u32;
        loop {
            let looked = cohort::now_ns();
            if quick > QUICK_LOOKS {
                // Backing off: 1, 2, 4 ... MAX_BACKOFF_MS ms.
                thread::msleep((1u32 << (quick - QUICK_LOOKS - 1).min(5)).min(MAX_BACKOFF_MS));
            }
            let gen = self.generation();
            let step = {
                let mut guard = self.machine.lock();
                let m = &mut *guard;
                if m.lost.iter().any(|p| *p == page) {
                    Step::Lost
                } else if m.is_pending(page) {
                    Step::Wait
                } else {
                    let mut actions = Actions::new();
                    let lookup = if write {
                        m.node.grab_page(page, &mut actions)
                    } else {
                        m.node.get_page(page, &mut actions)
                    };
                    let seen = self.epoch.load(Ordering::Acquire);
                    self.carry_out(m, actions, None);
                    match lookup {
                        Ok(Lookup::Hit) => Step::Hit(seen),
                        Ok(Lookup::Wait) => Step::Wait,
                        // A release or a recovery round is under way:
                        // nothing will say when it ends, ask again soon.
                        Err(ProtoError::Busy) => Step::Busy,
                        Err(e) => {
                            pr_err!("page {}:{:#x}: {:?}\n", page.container, page.index, e);
                            Step::Lost
                        }
                    }
                }
            };
            match step {
                Step::Busy => {
                    *remote = true;
                    let soon = cohort::now_ns().saturating_add(BUSY_RETRY_MS * 1_000_000);
                    if !self.wait_change(gen, soon.min(deadline)) && cohort::now_ns() >= deadline {
                        pr_warn!(
                            "page {}:{:#x} stayed busy for {} ms: SIGBUS\n",
                            page.container,
                            page.index,
                            FAULT_TIMEOUT_MS
                        );
                        return Err(FaultAction::Handled(VM_FAULT_SIGBUS));
                    }
                    if migration::fatal_signal_pending() {
                        return Err(FaultAction::Handled(VM_FAULT_SIGBUS));
                    }
                }
                Step::Hit(seen) => {
                    if *remote {
                        self.stats.bump(Counter::RemoteFaults);
                    }
                    return Ok(seen);
                }
                Step::Wait => {
                    *remote = true;
                    if !self.wait_change(gen, deadline) {
                        if !migration::fatal_signal_pending() {
                            pr_warn!(
                                "page {}:{:#x} did not come within {} ms: SIGBUS\n",
                                page.container,
                                page.index,
                                FAULT_TIMEOUT_MS
                            );
                        }
                        return Err(FaultAction::Handled(VM_FAULT_SIGBUS));
                    }
                }
                Step::Lost => {
                    pr_warn!(
                        "page {}:{:#x} was lost with the node that held it: SIGBUS\n",
                        page.container,
                        page.index
                    );
                    return Err(FaultAction::Handled(VM_FAULT_SIGBUS));
                }
            }
            if cohort::now_ns().saturating_sub(looked) < 1_000_000 {
                quick = quick.saturating_add(1);
            } else {
                quick = 0;
            }
        }
    }

    /// Maps the page once the container gave this node the access a fault
    /// needs (see the module documentation); `None`: let Linux do it.
    fn finish(
        &self,
        vma: &Vma,
        address: usize,
        flags: u32,
        write: bool,
        seen: u64,
        page: PageId,
    ) -> Option<u32> {
        let epoch = Some((&self.epoch, seen));
        match vma.pte_state(address) {
            PteState::Other => None,
            PteState::Present if !write => None,
            PteState::Present => {
                Some(vma.install_page(address, flags, INSTALL_WRITE | INSTALL_REPLACE, None, epoch))
            }
            PteState::None => {
                let how = if write { INSTALL_WRITE } else { 0 };
                // The copy may be in the pool (injected before the process
                // came, or where its shadow had no mapping).
                let pooled = self.pool.lock().copy(page);
                let buf = match pooled {
                    Some(Ok(buf)) => {
                        let ret = vma.install_page(address, flags, how, Some(&buf), epoch);
                        // Only once mapped: a fault retried (the epoch
                        // moved, no anon_vma without the mmap lock, no
                        // memory) finds the copy still here.
                        if ret == 0 {
                            self.pool.lock().remove(page);
                        }
                        return Some(ret);
                    }
                    Some(Err(_)) => return Some(bindings::vm_fault_reason_VM_FAULT_OOM),
                    None => KBox::new([0u8; PAGE_SIZE], GFP_KERNEL),
                };
                let Ok(mut buf) = buf else {
                    return Some(bindings::vm_fault_reason_VM_FAULT_OOM);
                };
                if vma.fresh_page(address, &mut buf).is_err() {
                    return Some(VM_FAULT_SIGBUS);
                }
                Some(vma.install_page(address, flags, how, Some(&buf), epoch))
            }
        }
    }

    /// Links the shared region `region` to `container` on this node (0: a
    /// new container homed here) and makes sure the container's home
    /// counts this node as a user. Returns the container's id.
    ///
    /// # Errors
    ///
    /// `EBUSY`: the region is linked to another container; `EEXIST`:
    /// another store here is linked to `container`; `ENOENT`: the home
    /// destroyed the container (or it was homed at an earlier incarnation
    /// of this node); `EHOSTDOWN`/`ETIMEDOUT`: its home did not answer;
    /// `EAGAIN`: this node's container layer has not joined yet; `ENOMEM`.
    pub(crate) fn share_link(&self, region: SharedRegion, container: u32) -> Result<u32> {
        let key = region.key();
        let (id, fresh) = {
            let mut guard = self.machine.lock();
            let m = &mut *guard;
            if let Some(linked) = m.region_container(key) {
                if container != 0 && linked != container {
                    return Err(EBUSY);
                }
                (linked, false)
            } else {
                if m.node.is_joining() {
                    return Err(EAGAIN);
                }
                let (id, sharing) = if container == 0 {
                    let id = Self::new_container(m)?;
                    let sharing = Sharing::Home {
                        sharers: Sharers::new(),
                        told: None,
                        release: None,
                    };
                    (id, sharing)
                } else if m.is_linked(container) {
                    return Err(EEXIST);
                } else if crate::proto::container::home_of(container) == Some(self.me()) {
                    // Homed here but not linked: destroyed, or an earlier
                    // incarnation's.
                    return Err(ENOENT);
                } else {
                    (container, Sharing::Attached(false))
                };
                let store = Store::Region {
                    region,
                    sharing,
                    segment: None,
                };
                self.add_link(m, id, store, true)?;
                (id, true)
            }
        };
        if let Err(e) = self.attach(id) {
            if fresh {
                let mut m = self.machine.lock();
                let link = m.remove_link(id);
                self.nr_links.fetch_sub(1, Ordering::Relaxed);
                Self::update_pin(&mut m);
                drop(m);
                drop(link);
            }
            return Err(e);
        }
        Ok(id)
    }

    /// The shared region linked to `container` here, once the container's
    /// home counts this node as a user again; `None` when there is none,
    /// or the home refused (the link is then dropped).
    pub(crate) fn share_file(&self, container: u32) -> Option<SharedRegion> {
        let region = {
            let m = self.machine.lock();
            match m.links.iter().find(|l| l.container == container)?.store {
                Store::Region { ref region, .. } => region.clone(),
                Store::Mm(_) => return None,
            }
        };
        match self.attach(container) {
            Ok(()) => Some(region),
            Err(e) => {
                pr_warn!(
                    "shared container {:#x} not attached again: {:?}\n",
                    container,
                    e
                );
                let mut m = self.machine.lock();
                let link = m.remove_link(container);
                if link.is_some() {
                    self.nr_links.fetch_sub(1, Ordering::Relaxed);
                }
                Self::update_pin(&mut m);
                None
            }
        }
    }

    /// Makes the home of shared `container` count this node as a user
    /// (`proto::container_share`): at the home, marks it used; elsewhere,
    /// asks the home unless attached already, and waits for the answer.
    fn attach(&self, container: u32) -> Result {
        {
            let mut guard = self.machine.lock();
            let m = &mut *guard;
            let Some(link) = m.link_mut(container) else {
                return Err(ENOENT);
            };
            let Store::Region { sharing, .. } = &mut link.store else {
                return Err(EINVAL);
            };
            match sharing {
                Sharing::Home { sharers, .. } => {
                    return if sharers.home_use(true) {
                        Ok(())
                    } else {
                        Err(ENOENT)
                    };
                }
                Sharing::Attached(true) => return Ok(()),
                Sharing::Attached(false) => {}
            }
        }
        self.attach_remote(container)?;
        if let Some(Link {
            store:
                Store::Region {
                    sharing: Sharing::Attached(attached),
                    ..
                },
            ..
        }) = self.machine.lock().link_mut(container)
        {
            *attached = true;
        }
        Ok(())
    }

    /// Asks the home of `container` to count this node as a user, and
    /// waits (at most [`ATTACH_TIMEOUT_MS`]) for its answer.
    fn attach_remote(&self, container: u32) -> Result {
        let deadline = cohort::now_ns().saturating_add(ATTACH_TIMEOUT_MS * 1_000_000);
        let (home, req) = {
            let mut guard = self.machine.lock();
            let m = &mut *guard;
            let home = crate::proto::container::home_of(container).ok_or(EINVAL)?;
            if home == self.me() {
                return Err(ENOENT);
            }
            if m.live_home(container).is_none() {
                // Down, or back as a new incarnation: the container died.
                return Err(cohort::errno::EHOSTDOWN());
            }
            let req = m.next_req();
            m.attaches.push((req, home, None), GFP_KERNEL)?;
            (home, req)
        };
        crate::share::send(home, &ShareMsg::Attach { container, req });
        self.await_answer(
            deadline,
            |m| {
                let Some(i) = m.attaches.iter().position(|a| a.0 == req) else {
                    return Some(Err(EINVAL));
                };
                let live = m.attaches[i].2?;
                kvec::swap_remove(&mut m.attaches, i);
                Some(if live { Ok(()) } else { Err(ENOENT) })
            },
            |m| {
                if let Some(i) = m.attaches.iter().position(|a| a.0 == req) {
                    kvec::swap_remove(&mut m.attaches, i);
                }
            },
        )
    }

    /// `shmget(2)` of SysV `key` with `shmflg` and `size` (see
    /// `proto::container_share`): unless this node has a segment of the
    /// key, asks the key's manager. A segment elsewhere makes this node
    /// attach to its container and make its own segment of the same size
    /// (`IPC_CREAT` set); a key unknown with `IPC_CREAT` is this node's.
    ///
    /// # Errors
    ///
    /// `EEXIST` for `IPC_EXCL` and a key the cluster has, `EINVAL` for a
    /// size larger than its segment's, `EHOSTDOWN`/`ETIMEDOUT` when the
    /// manager or the container's home did not answer, `ENOENT` when the
    /// home no longer has the container, `EAGAIN` while this node's
    /// container layer joins, `ENOMEM`.
    pub(crate) fn shmget(&self, key: i32, size: &mut usize, shmflg: &mut i32) -> Result {
        let create = *shmflg & bindings::IPC_CREAT as i32 != 0;
        let excl = *shmflg & bindings::IPC_EXCL as i32 != 0;
        let deadline = cohort::now_ns().saturating_add(ATTACH_TIMEOUT_MS * 1_000_000);
        let (manager, req, candidate) = {
            let mut guard = self.machine.lock();
            let m = &mut *guard;
            let here = m.links.iter().any(|l| {
                matches!(&l.store, Store::Region { segment: Some(s), .. } if s.key == key && !s.removed)
            });
            if here || m.pending_keys.iter().any(|p| p.key == key && p.confirmed) {
                // Linux finds this node's segment.
                return Ok(());
            }
            if m.node.is_joining() {
                return Err(EAGAIN);
            }
            let candidate = if create { Self::new_container(m)? } else { 0 };
            let manager = key_manager(key, m.node.live()).ok_or(EINVAL)?;
            let req = m.next_req();
            m.key_waits
                .push((req, manager, KeyWait::Waiting), GFP_KERNEL)?;
            if create {
                // Reserved until the manager answers: a node that finds
                // the key there may attach before the answer arrives.
                let reserved = PendingKey {
                    key,
                    container: candidate,
                    home: true,
                    confirmed: false,
                    attached: NodeSet::EMPTY,
                    owner: None,
                    at_ns: cohort::now_ns(),
                };
                if let Err(e) = m.pending_keys.push(reserved, GFP_KERNEL) {
                    if let Some(i) = m.key_waits.iter().position(|w| w.0 == req) {
                        kvec::swap_remove(&mut m.key_waits, i);
                    }
                    return Err(e.into());
                }
            }
            (manager, req, candidate)
        };
        let owner = if create {
            Owner::from(ShmOwner::current((*shmflg & 0o777) as u16))
        } else {
            Owner::default()
        };
        let lookup = ShareMsg::KeyLookup {
            key,
            req,
            size: *size as u64,
            create,
            container: candidate,
            owner,
        };
        if manager == self.me() {
            self.on_share(manager, lookup);
        } else {
            crate::share::send(manager, &lookup);
        }
        let answer = self.key_answer(req, manager, key, deadline);
        let confirmed = matches!(answer, Ok(KeyAnswer::Created));
        {
            let mut m = self.machine.lock();
            if let Some(p) = m
                .pending_keys
                .iter()
                .position(|p| create && p.container == candidate && !p.confirmed)
            {
                if confirmed {
                    m.pending_keys[p].confirmed = true;
                } else {
                    kvec::swap_remove(&mut m.pending_keys, p);
                }
            }
        }
        let (container, found, owner) = match answer? {
            KeyAnswer::NotFound | KeyAnswer::Created => return Ok(()),
            KeyAnswer::Found {
                container,
                size,
                owner,
            } => (container, size, owner),
        };
        if create && excl {
            return Err(EEXIST);
        }
        if !ShmOwner::from(owner).allows_current(*shmflg & 0o777) {
            // As shmget() of a segment of this node so owned.
            return Err(EACCES);
        }
        if *size as u64 > found {
            return Err(EINVAL);
        }
        if crate::proto::container::home_of(container) == Some(self.me()) {
            // Another shmget here made the key this node's a moment ago
            // (Linux finds the segment, or this call makes it for that
            // pending key); else this node's segment of the key was
            // removed and the manager has not heard yet.
            let m = self.machine.lock();
            return if m.is_linked(container) {
                Ok(())
            } else {
                Err(EAGAIN)
            };
        }
        self.attach_remote(container)?;
        *size = usize::try_from(found).map_err(|_| EINVAL)?;
        *shmflg |= bindings::IPC_CREAT as i32;
        let mut m = self.machine.lock();
        if m.pending_keys.iter().any(|p| p.key == key && p.confirmed) {
            // Another shmget here got there first: its pending key stands
            // for this one too (this node attached once more, which the
            // home counts once).
            return Ok(());
        }
        let pending = PendingKey {
            key,
            container,
            home: false,
            confirmed: true,
            attached: NodeSet::EMPTY,
            owner: Some(owner),
            at_ns: cohort::now_ns(),
        };
        if let Err(e) = m.pending_keys.push(pending, GFP_KERNEL) {
            drop(m);
            self.give_up_key(key, container, false);
            return Err(e.into());
        }
        Ok(())
    }

    /// Waits (until `deadline`) for the answer of `manager` to key lookup
    /// `req` about `key`.
    fn key_answer(&self, req: u32, manager: NodeId, key: i32, deadline: u64) -> Result<KeyAnswer> {
        self.await_answer(
            deadline,
            |m| {
                let Some(i) = m.key_waits.iter().position(|w| w.0 == req) else {
                    return Some(Err(EINVAL));
                };
                let outcome = match m.key_waits[i].2 {
                    KeyWait::Waiting => return None,
                    KeyWait::Answered(answer) => Ok(answer),
                    KeyWait::Failed => Err(cohort::errno::EHOSTDOWN()),
                };
                kvec::swap_remove(&mut m.key_waits, i);
                Some(outcome)
            },
            |m| {
                if let Some(i) = m.key_waits.iter().position(|w| w.0 == req) {
                    kvec::swap_remove(&mut m.key_waits, i);
                }
                pr_warn!("SysV key {:#x}: node {} did not answer\n", key, manager.0);
            },
        )
    }

    /// A segment this node was to make for `key` was not: the manager
    /// forgets the key if it was this node's, the home counts this node
    /// idle otherwise.
    fn give_up_key(&self, key: i32, container: u32, home: bool) {
        let mut guard = self.machine.lock();
        self.give_up_key_locked(&mut guard, key, container, home);
    }

    fn give_up_key_locked(&self, m: &mut Machine, key: i32, container: u32, home: bool) {
        if home {
            self.remove_key(m, key, container);
        } else if let Some(home) = crate::proto::container::home_of(container) {
            self.queue(
                m,
                Op::Share {
                    to: home,
                    msg: ShareMsg::Idle { container },
                },
            );
        }
    }

    /// Tells the manager of `key` to forget it (as `container`).
    fn remove_key(&self, m: &mut Machine, key: i32, container: u32) {
        match key_manager(key, m.node.live()) {
            Some(manager) if manager == self.me() => Self::forget_key(m, key, container),
            Some(manager) => self.queue(
                m,
                Op::Share {
                    to: manager,
                    msg: ShareMsg::KeyRemove { key, container },
                },
            ),
            None => {}
        }
    }

    /// The manager forgets `key` if it names `container`.
    fn forget_key(m: &mut Machine, key: i32, container: u32) {
        if let Some(i) = m
            .keys
            .iter()
            .position(|e| e.key == key && e.container == container)
        {
            kvec::swap_remove(&mut m.keys, i);
        }
    }

    /// This node made SysV segment `shmid` of `key`: links its file to the
    /// container `shmget` decided on (nothing for a segment the cluster
    /// does not share: `shmget` did not ask, or found nothing). Returns the
    /// owner and mode the segment takes: those of the key's segment on the
    /// other nodes, for a segment made for a key found there.
    pub(crate) fn shm_created(
        &self,
        key: i32,
        shmid: i32,
        region: SharedRegion,
    ) -> Option<ShmOwner> {
        let mut guard = self.machine.lock();
        let m = &mut *guard;
        let i = m
            .pending_keys
            .iter()
            .position(|p| p.key == key && p.confirmed)?;
        let pending = kvec::swap_remove(&mut m.pending_keys, i)?;
        let owner = pending.owner.map(ShmOwner::from);
        let sharing = if pending.home {
            let mut sharers = Sharers::new();
            for node in pending.attached.iter() {
                sharers.attach(node);
            }
            Sharing::Home {
                sharers,
                told: None,
                release: None,
            }
        } else {
            Sharing::Attached(true)
        };
        let store = Store::Region {
            region,
            sharing,
            segment: Some(Segment {
                key,
                shmid,
                removed: false,
            }),
        };
        if m.links.iter().any(|l| l.container == pending.container)
            || self.add_link(m, pending.container, store, true).is_err()
        {
            pr_err!(
                "SysV segment {} (key {:#x}) not linked to container {:#x}: it stays this node's own\n",
                shmid,
                key,
                pending.container
            );
            self.give_up_key_locked(m, key, pending.container, pending.home);
            return None;
        }
        owner
    }

    /// `IPC_RMID` removed this node's segment whose file is `region`: the
    /// key goes cluster-wide (the manager forgets it, every node removes
    /// its segment).
    pub(crate) fn shm_removed(&self, region: SharedRegion) {
        let key = region.key();
        let mut guard = self.machine.lock();
        let m = &mut *guard;
        let mut found = None;
        for link in m.links.iter_mut() {
            if let Store::Region {
                region: r,
                segment: Some(seg),
                ..
            } = &mut link.store
            {
                if r.key() == key && !seg.removed {
                    seg.removed = true;
                    found = Some((seg.key, link.container));
                    break;
                }
            }
        }
        let Some((shm_key, container)) = found else {
            return;
        };
        self.remove_key(m, shm_key, container);
        for node in m.node.live().without(self.me()).iter() {
            self.queue(
                m,
                Op::Share {
                    to: node,
                    msg: ShareMsg::Remove { container },
                },
            );
        }
    }

    /// A [`ShareMsg`] from node `from`.
    pub(crate) fn on_share(&self, from: NodeId, msg: ShareMsg) {
        let mut guard = self.machine.lock();
        let m = &mut *guard;
        match msg {
            ShareMsg::Attach { container, req } => {
                let live = match m.link_mut(container) {
                    Some(Link {
                        store:
                            Store::Region {
                                sharing: Sharing::Home { sharers, .. },
                                ..
                            },
                        ..
                    }) => sharers.attach(from),
                    Some(_) => false,
                    // Its segment is being made here: counted once it is.
                    None => match m
                        .pending_keys
                        .iter_mut()
                        .find(|p| p.home && p.container == container)
                    {
                        Some(p) => {
                            p.attached.insert(from);
                            true
                        }
                        None => false,
                    },
                };
                let msg = ShareMsg::Attached {
                    container,
                    req,
                    live,
                };
                self.queue(m, Op::Share { to: from, msg });
            }
            ShareMsg::Attached { req, live, .. } => {
                if let Some(a) = m.attaches.iter_mut().find(|a| a.0 == req && a.1 == from) {
                    a.2 = Some(live);
                }
                drop(guard);
                self.wake();
            }
            ShareMsg::Idle { container } => {
                if let Some(Link {
                    store:
                        Store::Region {
                            sharing: Sharing::Home { sharers, .. },
                            ..
                        },
                    ..
                }) = m.link_mut(container)
                {
                    sharers.idle(from);
                }
            }
            ShareMsg::KeyLookup {
                key,
                req,
                size,
                create,
                container,
                owner,
            } => {
                let found = m.keys.iter().find(|e| e.key == key).copied();
                let (answer, entry) = answer_lookup(found, key, create, container, size, owner);
                if let Some(entry) = entry {
                    if m.keys.push(entry, GFP_KERNEL).is_err() {
                        pr_err!("out of memory recording SysV key {:#x}\n", key);
                    }
                }
                if from == self.me() {
                    Self::key_answered(m, from, req, answer);
                    drop(guard);
                    self.wake();
                } else {
                    let msg = ShareMsg::KeyAnswer { key, req, answer };
                    self.queue(m, Op::Share { to: from, msg });
                }
            }
            ShareMsg::KeyAnswer { req, answer, .. } => {
                Self::key_answered(m, from, req, answer);
                drop(guard);
                self.wake();
            }
            ShareMsg::KeyRemove { key, container } => Self::forget_key(m, key, container),
            ShareMsg::KeyHandover { entry } => match m.keys.iter().find(|e| e.key == entry.key) {
                Some(e) if e.container != entry.container => pr_warn!(
                    "SysV key {:#x}: node {} handed over container {:#x}, this node has {:#x}: kept\n",
                    entry.key,
                    from.0,
                    entry.container,
                    e.container
                ),
                Some(_) => {}
                None => {
                    if m.keys.push(entry, GFP_KERNEL).is_err() {
                        pr_err!("out of memory recording SysV key {:#x}\n", entry.key);
                    }
                }
            },
            ShareMsg::Remove { container } => {
                let mut remove = false;
                if let Some(Link {
                    store:
                        Store::Region {
                            segment: Some(seg), ..
                        },
                    ..
                }) = m.link_mut(container)
                {
                    remove = !seg.removed;
                    seg.removed = true;
                }
                if remove {
                    self.queue(m, Op::RemoveSegment { container });
                }
            }
            ShareMsg::Destroyed { container } => {
                let busy = match m.link_mut(container) {
                    Some(Link {
                        store:
                            Store::Region {
                                region, sharing, ..
                            },
                        ..
                    }) if crate::proto::container::home_of(container) == Some(from) => {
                        matches!(sharing, Sharing::Attached(true)) && !region.is_unused()
                    }
                    _ => return,
                };
                if busy {
                    pr_warn!(
                        "shared container {:#x} destroyed by node {} while mapped here: the region keeps what it holds, unshared\n",
                        container,
                        from.0
                    );
                }
                let link = m.remove_link(container);
                self.nr_links.fetch_sub(1, Ordering::Relaxed);
                Self::update_pin(m);
                drop(guard);
                drop(link);
            }
        }
    }

    /// The shared regions' lifetimes, from the executor when idle: a node
    /// whose region is mapped no more says so to the home (or, with the
    /// home dead, drops it); the home destroys a container nobody uses
    /// (releases its pages everywhere, then tells the nodes that attached).
    fn share_tick(&self, m: &mut Machine) {
        let live = m.node.live();
        let me = self.me();
        let now = cohort::now_ns();
        // The keys the hash gives another node since the live nodes
        // changed go there.
        let mut k = 0;
        while k < m.keys.len() {
            let entry = m.keys[k];
            match key_manager(entry.key, live) {
                Some(manager) if manager != me => {
                    kvec::swap_remove(&mut m.keys, k);
                    self.queue(
                        m,
                        Op::Share {
                            to: manager,
                            msg: ShareMsg::KeyHandover { entry },
                        },
                    );
                }
                _ => k += 1,
            }
        }
        let mut j = 0;
        while j < m.pending_keys.len() {
            let p = &m.pending_keys[j];
            if now.saturating_sub(p.at_ns) < ATTACH_TIMEOUT_MS * 1_000_000 {
                j += 1;
                continue;
            }
            let (key, container, home, attached) = (p.key, p.container, p.home, p.attached);
            kvec::swap_remove(&mut m.pending_keys, j);
            if m.links.iter().any(|l| l.container == container) {
                // Linked all the same: the link's lifetime rules.
                continue;
            }
            for node in attached.iter().filter(|n| live.contains(*n)) {
                // They attached to a segment that was never made here.
                self.queue(
                    m,
                    Op::Share {
                        to: node,
                        msg: ShareMsg::Destroyed { container },
                    },
                );
            }
            pr_info!(
                "SysV key {:#x}: no segment made here for container {:#x}; given up\n",
                key,
                container
            );
            self.give_up_key_locked(m, key, container, home);
        }
        // Releases nobody waits for: their completion is dropped.
        let mut r = 0;
        while r < m.unwaited.len() {
            let id = m.unwaited[r];
            match m.released.iter().position(|x| *x == id) {
                Some(j) => {
                    kvec::swap_remove(&mut m.released, j);
                    kvec::swap_remove(&mut m.unwaited, r);
                }
                None => r += 1,
            }
        }
        let mut i = 0;
        while i < m.links.len() {
            let container = m.links[i].container;
            let home = m.live_home(container);
            let Store::Region {
                region, sharing, ..
            } = &mut m.links[i].store
            else {
                i += 1;
                continue;
            };
            let unused = region.is_unused();
            let mut drop_link = false;
            let mut to_send: Option<(NodeId, ShareMsg)> = None;
            let mut start_release = false;
            match sharing {
                Sharing::Attached(attached) => match home {
                    Some(home) => {
                        if *attached && unused {
                            *attached = false;
                            to_send = Some((home, ShareMsg::Idle { container }));
                        }
                    }
                    None if unused => {
                        pr_info!(
                            "shared container {:#x}: its home is gone and nothing maps it here; dropped, with its pages\n",
                            container
                        );
                        // Nobody else will release its pages: this node
                        // drops its records, and every node its copies.
                        start_release = true;
                        drop_link = true;
                    }
                    None => {}
                },
                Sharing::Home {
                    sharers,
                    told,
                    release,
                } => {
                    for node in NodeSet::first(self.nodes).without(me).iter() {
                        if !live.contains(node) {
                            sharers.node_down(node);
                        }
                    }
                    if !sharers.is_destroyed() {
                        sharers.home_use(!unused);
                        *told = sharers.destroy();
                    }
                    match release {
                        Some(id) => {
                            if let Some(j) = m.released.iter().position(|r| *r == *id) {
                                kvec::swap_remove(&mut m.released, j);
                                drop_link = true;
                            }
                        }
                        None if told.is_some() => start_release = true,
                        None => {}
                    }
                }
            }
            if start_release {
                let mut actions = Actions::new();
                match m.node.release(container, 0, LAST_INDEX, &mut actions) {
                    Ok(id) => {
                        if let Store::Region {
                            sharing: Sharing::Home { release, .. },
                            ..
                        } = &mut m.links[i].store
                        {
                            *release = Some(id);
                        } else if m.unwaited.push(id, GFP_KERNEL).is_err() {
                            pr_err!("out of memory recording a release\n");
                        }
                    }
                    // Busy: tried again at the next tick.
                    Err(e) => {
                        pr_debug!("shared container {:#x}: release: {:?}\n", container, e);
                        drop_link = false;
                    }
                }
                self.carry_out(m, actions, None);
            }
            if let Some((to, msg)) = to_send {
                self.queue(m, Op::Share { to, msg });
            }
            if drop_link {
                if let Store::Region {
                    sharing:
                        Sharing::Home {
                            told: Some(told), ..
                        },
                    ..
                } = &m.links[i].store
                {
                    for node in told.iter().filter(|n| live.contains(*n)) {
                        self.queue(
                            m,
                            Op::Share {
                                to: node,
                                msg: ShareMsg::Destroyed { container },
                            },
                        );
                    }
                }
                let link = kvec::swap_remove(&mut m.links, i);
                self.nr_links.fetch_sub(1, Ordering::Relaxed);
                drop(link);
                Self::update_pin(m);
                continue;
            }
            i += 1;
        }
    }

    /// Records the answer of `from` to key lookup `req`.
    fn key_answered(m: &mut Machine, from: NodeId, req: u32, answer: KeyAnswer) {
        if let Some(w) = m.key_waits.iter_mut().find(|w| w.0 == req && w.1 == from) {
            w.2 = KeyWait::Answered(answer);
        }
    }

    /// Hands the SysV keys this node manages to the managers the hash
    /// names without it: its container layer stops (module unload).
    pub(crate) fn hand_over_keys(&self) {
        let mut m = self.machine.lock();
        let others = m.node.live().without(self.me());
        for entry in core::mem::replace(&mut m.keys, KVec::new()) {
            match key_manager(entry.key, others) {
                Some(manager) => crate::share::send(manager, &ShareMsg::KeyHandover { entry }),
                None => pr_info!("SysV key {:#x}: no other node to manage it\n", entry.key),
            }
        }
    }

    /// Shared memory forgets `dead`: the attach requests and key lookups
    /// waiting on it fail, and the keys of containers homed there go.
    fn shares_node_down(&self, m: &mut Machine, dead: NodeId) {
        let mut any = false;
        for a in m
            .attaches
            .iter_mut()
            .filter(|a| a.1 == dead && a.2.is_none())
        {
            a.2 = Some(false);
            any = true;
        }
        for w in m.key_waits.iter_mut().filter(|w| w.1 == dead) {
            if let KeyWait::Waiting = w.2 {
                w.2 = KeyWait::Failed;
                any = true;
            }
        }
        // The keys of containers homed there: their memory died with it.
        let mut i = 0;
        while i < m.keys.len() {
            if crate::proto::container::home_of(m.keys[i].container) == Some(dead) {
                kvec::swap_remove(&mut m.keys, i);
            } else {
                i += 1;
            }
        }
        if any {
            self.wake();
        }
    }

    /// Whether this node holds `page` with at least `access`.
    #[allow(dead_code)]
    pub(crate) fn access(&self, page: PageId) -> Access {
        self.machine.lock().node.find_page(page)
    }
}

/// `MSG_CONTAINER`: a page message from another node.
pub(crate) struct ContainerHandler;

impl MsgHandler for ContainerHandler {
    const TYPE: u16 = crate::proto::container_msg::MSG_CONTAINER;

    fn handle(msg: &Message) {
        let Some(linker) = LINKER.get() else {
            return;
        };
        let src = msg.src();
        if src as usize >= MAX_NODES {
            return;
        }
        let (pm, data) = match crate::proto::container_msg::decode(msg.data()) {
            Ok(decoded) => decoded,
            Err(e) => {
                linker.stats.bump(Counter::BadMessages);
                pr_warn!("malformed page message from node {}: {:?}\n", src, e);
                return;
            }
        };
        linker.stats.received(&pm);
        let from = NodeId(src as u8);
        let mut m = linker.machine.lock();
        if !m.heard.contains(from) {
            // Sent before this node heard the sender's hello (its own
            // went out after): delivered once it is heard, so that the
            // machine knows the sender's incarnation first.
            Linker::hold_early(&mut m, from, msg.data());
            return;
        }
        linker.deliver(&mut m, from, pm, data);
    }
}
