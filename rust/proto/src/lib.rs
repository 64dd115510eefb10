// SPDX-License-Identifier: GPL-2.0
//! Cohort's protocol logic.
//!
//! Everything here is `no_std`, uses no `unsafe` and no allocator, so the
//! same files compile into the kernel modules (through `#[path]` includes)
//! and are tested on the host with cargo. Files refer to each other through
//! `super::`, never `crate::`, because inside a module they are not the
//! crate root.
#![no_std]
#![forbid(unsafe_code)]

#[cfg(test)]
extern crate std;

pub mod pcntl;
