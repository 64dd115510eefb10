// SPDX-License-Identifier: GPL-2.0

//! Cohort: several kernel instances acting as one machine.
//!
//! Safe access to the Cohort hub (`include/linux/cohort.h`): this node's
//! identity, and registration of the ops tables through which Cohort's
//! modules receive task, layout, fault, pcntl and message events.
//!
//! A module implements one of the ops traits ([`TaskOps`], [`LayoutOps`],
//! [`FaultOps`], [`PcntlOps`], [`MsgOps`]) on a type of its own and keeps a
//! [`Registration`] for as long as the table must stay installed; dropping it
//! unregisters the table and waits for calls in flight.
//!
//! C header: [`include/linux/cohort.h`](srctree/include/linux/cohort.h)

pub mod debugfs;
pub mod errno;
pub mod fault;
pub mod files;
mod layout;
pub mod mac;
pub mod manage;
pub mod migration;
pub mod msg;
pub mod net;
mod pcntl;
mod registration;
pub mod share;
pub mod shm;
pub mod shrinker;
pub mod sync_bh;
mod task;
pub mod thread;
pub mod vec;

pub use fault::{FaultAction, FaultOps, FaultSlot, PteState, Vma};
pub use layout::{LayoutChange, LayoutOp, LayoutOps, LayoutSlot, Mm};
pub use migration::{MigrationOps, MigrationSlot};
pub use msg::{
    HandlerRegistration, ListenerRegistration, MembershipListener, Message, MsgHandler, MsgOps,
    MsgSlot, TransportRegistration,
};
pub use pcntl::{PcntlOps, PcntlSlot};
pub use registration::{Registration, Slot};
pub use task::{pid_exists, TaskOps, TaskSlot};

use crate::prelude::*;

/// Most nodes a cluster can have.
pub const MAX_NODES: u32 = bindings::COHORT_MAX_NODES;

/// This node's id, from `cohort.node_id=` (the kernel command line, or set
/// at run time before any module registered).
pub fn node_id() -> u32 {
    // SAFETY: The hub is built in and this function has no preconditions.
    unsafe { bindings::cohort_node_id() }
}

/// Number of nodes in the cluster, from `cohort.nr_nodes=`.
pub fn nr_nodes() -> u32 {
    // SAFETY: The hub is built in and this function has no preconditions.
    unsafe { bindings::cohort_nr_nodes() }
}

/// Node `node`'s address (IPv4 or IPv6; one family for the whole cluster),
/// from `cohort.peers=`.
///
/// Fails with `EINVAL` for a node out of range and `ENOENT` when
/// `cohort.peers=` does not name one address per node.
pub fn peer_addr(node: u32) -> Result<net::IpAddr> {
    // SAFETY: All-zero is a valid `cohort_ip`.
    let mut ip: bindings::cohort_ip = unsafe { core::mem::zeroed() };
    // SAFETY: `ip` is a valid place for the result.
    crate::error::to_result(unsafe { bindings::cohort_peer_addr(node, &mut ip) })?;
    net::IpAddr::from_raw(&ip).ok_or(EINVAL)
}

/// TCP port of the message transport, from `cohort.port=`.
pub fn port() -> u16 {
    // SAFETY: No preconditions.
    unsafe { bindings::cohort_port() }
}

/// Silence, in ms of this node's running time, after which the transport
/// declares a peer down, from `cohort.heartbeat_timeout_ms=` (1000 to
/// 600000, default 2000). The parameter cannot change while the transport
/// is loaded.
pub fn heartbeat_timeout_ms() -> u32 {
    // SAFETY: No preconditions.
    unsafe { bindings::cohort_heartbeat_timeout_ms() }
}

/// Nanoseconds of the monotonic clock.
pub fn now_ns() -> u64 {
    // SAFETY: No preconditions.
    unsafe { bindings::ktime_get() as u64 }
}

/// A random 64-bit number from the kernel's random number generator
/// (`get_random_u64()`: cryptographically secure once the generator is
/// seeded).
pub fn random_u64() -> u64 {
    // SAFETY: No arguments; callable from any context.
    unsafe { bindings::get_random_u64() }
}

/// Whether `node` is up: this node always is, others when the message
/// transport says so.
pub fn node_online(node: u32) -> bool {
    // SAFETY: Any value is accepted; out-of-range ids are reported offline.
    unsafe { bindings::cohort_node_online(node) }
}
