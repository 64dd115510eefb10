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
pub mod manage;
pub mod migration;
pub mod msg;
pub mod net;
mod pcntl;
mod registration;
pub mod share;
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

/// This node's id, from `cohort.node_id=` on the kernel command line.
pub fn node_id() -> u32 {
    // SAFETY: The hub is built in and this function has no preconditions.
    unsafe { bindings::cohort_node_id() }
}

/// Number of nodes in the cluster, from `cohort.nr_nodes=`.
pub fn nr_nodes() -> u32 {
    // SAFETY: The hub is built in and this function has no preconditions.
    unsafe { bindings::cohort_nr_nodes() }
}

/// Node `node`'s IPv4 address (network byte order), from `cohort.peers=`.
///
/// Fails with `EINVAL` for a node out of range and `ENOENT` when the
/// command line gave no valid address list.
pub fn peer_addr(node: u32) -> Result<net::Ipv4> {
    let mut addr = 0;
    // SAFETY: `addr` is a valid place for the result.
    crate::error::to_result(unsafe { bindings::cohort_peer_addr(node, &mut addr) })?;
    Ok(addr)
}

/// TCP port of the message transport, from `cohort.port=`.
pub fn port() -> u16 {
    // SAFETY: No preconditions.
    unsafe { bindings::cohort_port() }
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
