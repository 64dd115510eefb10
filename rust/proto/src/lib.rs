// SPDX-License-Identifier: GPL-2.0
//! Cohort's protocol logic.
//!
//! Everything here is `no_std`, uses no `unsafe` and no allocator, so the
//! same files compile into the kernel modules (through `#[path]` includes)
//! and are tested on the host with cargo. Files refer to each other through
//! `super::`, never `crate::`, because inside a module they are not the
//! crate root.
//!
//! The state machines (`lamport`, `container`, `migration`) are pure: the
//! kernel feeds them events (a fault, a received message, a syscall) and
//! carries out the actions they push into a [`sink::Sink`] (send this, grant
//! that, install this page). They read no clock but their Lamport clocks and
//! do no I/O, so the simulator in `tools/sim` replays any run exactly.
//!
//! Memory: the kernel has no `alloc` crate, so nothing here allocates.
//! Structures the protocol bounds (Lamport queues) are fixed arrays sized by
//! a const generic; structures that grow with the workload (container pages,
//! tasks, groups) live in a [`table::Table`] that the caller provides: the
//! core-only [`table::ArrayMap`] here, `KVec`/`KBox`-backed tables in the
//! modules. Every insertion is fallible, a full table is
//! [`error::Error::NoSpace`], and a handler that fails leaves its state
//! machine unchanged. No handler panics on any input; a malformed or
//! unexpected message is [`error::Error::Protocol`].
#![no_std]
#![forbid(unsafe_code)]

#[cfg(test)]
extern crate std;

#[cfg(any(test, feature = "host"))]
extern crate alloc;

pub mod auth;
pub mod container;
pub mod container_held;
pub mod container_member;
pub mod container_msg;
pub mod container_room;
pub mod container_share;
pub mod crc;
pub mod error;
pub mod files;
pub mod fwd;
pub mod lamport;
pub mod liveness;
pub mod manage;
pub mod migration;
pub mod node;
pub mod pathcall;
pub mod pcntl;
pub mod shm_ring;
pub mod sink;
pub mod table;
pub mod task_msg;
pub mod wire;
