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

mod fault;
mod layout;
mod msg;
mod pcntl;
mod registration;
mod task;

pub use fault::{FaultAction, FaultOps, FaultSlot, Vma};
pub use layout::{LayoutChange, LayoutOp, LayoutOps, LayoutSlot, Mm};
pub use msg::{MsgOps, MsgSlot};
pub use pcntl::{PcntlOps, PcntlSlot};
pub use registration::{Registration, Slot};
pub use task::{pid_exists, TaskOps, TaskSlot};

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

/// Whether `node` is up: this node always is, others when the message
/// transport says so.
pub fn node_online(node: u32) -> bool {
    // SAFETY: Any value is accepted; out-of-range ids are reported offline.
    unsafe { bindings::cohort_node_online(node) }
}
