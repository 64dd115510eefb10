// SPDX-License-Identifier: GPL-2.0
//! Deterministic multi-node simulator for Cohort's protocol state machines.
//!
//! Each simulated node runs the `cohort-proto` lock space, container layer
//! and migration layer; messages cross FIFO channels with random delays;
//! threads run a seeded random workload (reads and writes, mmap, munmap,
//! mprotect under the heavy lock, clones, migrations, exits, page flushes).
//! Every step is checked against a reference model, and a failing seed
//! prints the events that led to the failure. The same seed always replays
//! the same run.
//!
//! [`containers`] runs the container layers alone, with homed containers,
//! releases and node deaths, every message through the wire codec.
//! [`members`] runs which nodes run the container layer and how long
//! shared containers live, under deaths, reloads and transports that drop.

pub mod containers;
pub mod events;
pub mod failure;
pub mod members;
pub mod rng;
pub mod stats;
pub mod table;
pub mod world;
