// SPDX-License-Identifier: GPL-2.0

//! gobelins: Cohort's cluster-wide pages (containers and linkers).
//!
//! Owns the hub's fault slot. Until containers are linked to VMAs no fault
//! concerns a container, so every fault continues locally; the module
//! counts what it sees by kind and reports it when unloaded.

use core::sync::atomic::{AtomicU64, Ordering};
use kernel::bindings;
use kernel::c_str;
use kernel::cohort::{self, FaultAction, FaultOps, FaultSlot, Registration, Vma};
use kernel::prelude::*;

module! {
    type: Gobelins,
    name: "gobelins",
    author: "Cohort Developers",
    description: "Cohort cluster-wide pages: containers and linkers",
    license: "GPL",
}

static READ_FAULTS: AtomicU64 = AtomicU64::new(0);
static WRITE_FAULTS: AtomicU64 = AtomicU64::new(0);
static EXEC_FAULTS: AtomicU64 = AtomicU64::new(0);

struct Gobelins {
    _fault: Registration<FaultSlot<MemoryLinker>>,
}

/// The memory interface linker: the fault path of linked VMAs.
struct MemoryLinker;

#[vtable]
impl FaultOps for MemoryLinker {
    fn fault(_vma: &Vma, _address: usize, flags: u32) -> FaultAction {
        let counter = if flags & bindings::fault_flag_FAULT_FLAG_WRITE != 0 {
            &WRITE_FAULTS
        } else if flags & bindings::fault_flag_FAULT_FLAG_INSTRUCTION != 0 {
            &EXEC_FAULTS
        } else {
            &READ_FAULTS
        };
        counter.fetch_add(1, Ordering::Relaxed);
        // No VMA is linked to a container yet: the page is local.
        FaultAction::Local
    }
}

impl kernel::Module for Gobelins {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let fault = Registration::register(c_str!("gobelins"))?;
        pr_info!("memory linker on node {}\n", cohort::node_id());
        Ok(Gobelins { _fault: fault })
    }
}

impl Drop for Gobelins {
    fn drop(&mut self) {
        pr_info!(
            "unloading; faults seen: {} read, {} write, {} instruction\n",
            READ_FAULTS.load(Ordering::Relaxed),
            WRITE_FAULTS.load(Ordering::Relaxed),
            EXEC_FAULTS.load(Ordering::Relaxed)
        );
    }
}
