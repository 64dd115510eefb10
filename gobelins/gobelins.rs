// SPDX-License-Identifier: GPL-2.0

//! gobelins: Cohort's cluster-wide pages (containers and linkers).
//!
//! Runs the container protocol of `rust/proto` (`proto::container`, the
//! state machine `tools/sim` checks) over kmsg, and the memory linker: the
//! private memory of the address spaces that the process layer links
//! (those of migrated processes), and the anonymous shared regions they
//! map, are containers' pages, kept coherent
//! between nodes (sequential consistency, write-invalidate, a fixed
//! distributed manager). See `linker` and Documentation/gobelins.rst.

// The pin-initializer of `Linker` has more fields than the default macro
// recursion limit allows.
#![recursion_limit = "256"]

use kernel::c_str;
use kernel::cohort::{
    self,
    debugfs::Dir,
    migration::{Global, GlobalGuard, MmGrab},
    share::{SharedRegion, ShmOwner},
    shrinker::Shrinker,
    thread::Thread,
    FaultAction, FaultOps, FaultSlot, HandlerRegistration, ListenerRegistration,
    MembershipListener, Registration, Vma,
};
use kernel::prelude::*;

mod held;
mod linker;
mod member;
mod parked;
mod pool;
mod pressure;
mod records;
mod share;
mod stats;

/// Protocol logic shared with the host tests and the simulator (`rust/proto`).
#[forbid(unsafe_code)]
#[path = "../rust/proto/src"]
pub mod proto {
    pub mod auth;
    pub mod container;
    pub mod container_held;
    pub mod container_member;
    pub mod container_msg;
    pub mod container_room;
    pub mod container_share;
    pub mod crc;
    pub mod error;
    pub mod node;
    pub mod sink;
    pub mod table;
    pub mod wire;
}

use linker::{ContainerHandler, Linker};
use proto::node::NodeId;

module! {
    type: Gobelins,
    name: "gobelins",
    author: "Cohort Developers",
    description: "Cohort cluster-wide pages: containers and linkers",
    license: "GPL",
}

/// End of user space (x86-64, 4-level page tables).
pub(crate) const USER_END: usize = 1 << 47;

/// The container layer of this node, for the hub callbacks and handlers.
pub(crate) static LINKER: Global<Linker> = Global::new();

/// Fields drop in declaration order: the debugfs files and the hub's
/// calls go first, then the executor, and the state last.
struct Gobelins {
    _debugfs: Dir<Linker>,
    _shrinker: Shrinker<Linker>,
    _fault: Registration<FaultSlot<MemoryLinker>>,
    _handler: HandlerRegistration<ContainerHandler>,
    _held: HandlerRegistration<held::HeldHandler>,
    _hello: HandlerRegistration<member::HelloHandler>,
    _bye: HandlerRegistration<member::ByeHandler>,
    _share: HandlerRegistration<share::ShareHandler>,
    _room: HandlerRegistration<pressure::RoomHandler>,
    _membership: ListenerRegistration<Membership>,
    _flusher: Thread,
    _executor: Thread,
    _state: GlobalGuard<Linker>,
}

/// The memory interface linker: the fault path of linked address spaces.
struct MemoryLinker;

#[vtable]
impl FaultOps for MemoryLinker {
    fn fault(vma: &Vma, address: usize, flags: u32) -> FaultAction {
        match LINKER.get() {
            Some(linker) => linker.fault(vma, address, flags),
            None => FaultAction::Local,
        }
    }

    fn link(mm: MmGrab, container: u32, active: bool) -> Result<u32> {
        LINKER
            .get()
            .ok_or_else(cohort::errno::ESHUTDOWN)?
            .link(mm, container, active)
    }

    fn populate(container: u32) -> Result {
        let linker = LINKER.get().ok_or_else(cohort::errno::ESHUTDOWN)?;
        held::populate(&linker, container)
    }

    fn counts(container: u32) -> (u64, u64) {
        LINKER.get().map_or((0, 0), |l| l.counts(container))
    }

    fn unlink(container: u32, destroy: bool) {
        if let Some(linker) = LINKER.get() {
            linker.unlink(container, destroy);
        }
    }

    fn share_link(region: SharedRegion, container: u32) -> Result<u32> {
        LINKER
            .get()
            .ok_or_else(cohort::errno::ESHUTDOWN)?
            .share_link(region, container)
    }

    fn share_file(container: u32) -> Option<SharedRegion> {
        LINKER.get()?.share_file(container)
    }

    fn shmget(key: i32, size: &mut usize, shmflg: &mut i32) -> Result {
        match LINKER.get() {
            Some(linker) => linker.shmget(key, size, shmflg),
            None => Ok(()),
        }
    }

    fn shm_created(key: i32, shmid: i32, region: SharedRegion) -> Option<ShmOwner> {
        LINKER.get()?.shm_created(key, shmid, region)
    }

    fn shm_removed(region: SharedRegion) {
        if let Some(linker) = LINKER.get() {
            linker.shm_removed(region);
        }
    }

    fn release(mm_id: usize, start: usize, end: usize) -> Result {
        match LINKER.get() {
            Some(linker) => linker.release_mm(mm_id, start, end),
            None => Ok(()),
        }
    }
}

/// Hears of peers' transports coming up and going down.
struct Membership;

impl MembershipListener for Membership {
    /// A peer's transport is up: its container layer hears this one's
    /// hello (and answers it, if it runs).
    fn node_up(node: u32) {
        if let (Some(linker), Ok(node)) = (LINKER.get(), u8::try_from(node)) {
            linker.say_hello(NodeId(node));
        }
    }

    fn node_down(node: u32) {
        if let (Some(linker), Ok(node)) = (LINKER.get(), u8::try_from(node)) {
            linker.node_down(NodeId(node));
        }
    }
}

impl Drop for Gobelins {
    fn drop(&mut self) {
        // Before the handlers go: the keys it manages go to the others,
        // then the peers count this node down.
        if let Some(linker) = LINKER.get() {
            linker.hand_over_keys();
        }
        member::stop();
    }
}

impl kernel::Module for Gobelins {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let me = NodeId(u8::try_from(cohort::node_id()).map_err(|_| EINVAL)?);
        let nodes = cohort::nr_nodes() as usize;
        let linker = Linker::new(me, nodes)?;
        let state = LINKER.install(linker.clone())?;
        let executor = {
            let linker = linker.clone();
            Thread::spawn(c_str!("gobelins"), move || linker.run())?
        };
        let flusher = {
            let linker = linker.clone();
            Thread::spawn(c_str!("gobelins-flush"), move || linker.run_flusher())?
        };
        let membership = ListenerRegistration::register()?;
        let handler = HandlerRegistration::register(c_str!("gobelins"))?;
        let held = HandlerRegistration::register(c_str!("gobelins"))?;
        let hello = HandlerRegistration::register(c_str!("gobelins"))?;
        let bye = HandlerRegistration::register(c_str!("gobelins"))?;
        let share = HandlerRegistration::register(c_str!("gobelins"))?;
        let room = HandlerRegistration::register(c_str!("gobelins"))?;
        member::start(&linker);
        let fault = Registration::register(c_str!("gobelins"))?;
        let debugfs = Dir::new(c_str!("gobelins"), linker.clone())?;
        debugfs.file::<stats::StatsFile>(c_str!("stats"), 0o444)?;
        debugfs.file::<pressure::PressureFile>(c_str!("pressure"), 0o644)?;
        let shrinker = Shrinker::register(c_str!("gobelins"), linker.clone(), 2)?;
        pr_info!(
            "containers and memory linker on node {} of {}\n",
            me.0,
            nodes
        );
        Ok(Gobelins {
            _debugfs: debugfs,
            _shrinker: shrinker,
            _fault: fault,
            _handler: handler,
            _held: held,
            _hello: hello,
            _bye: bye,
            _share: share,
            _room: room,
            _membership: membership,
            _flusher: flusher,
            _executor: executor,
            _state: state,
        })
    }
}
