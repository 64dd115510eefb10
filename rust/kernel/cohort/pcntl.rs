// SPDX-License-Identifier: GPL-2.0

//! The pcntl(2) system call.

use super::Slot;
use crate::{bindings, prelude::*};
use core::{ffi::c_void, marker::PhantomData};

/// Serves pcntl(2).
#[vtable]
pub trait PcntlOps {
    /// Runs command `cmd` with its three arguments in the calling task;
    /// the value is returned to user space, an error as `-errno`.
    fn pcntl(_cmd: u32, _args: [usize; 3]) -> Result<isize> {
        crate::build_error(crate::error::VTABLE_DEFAULT_ERROR)
    }
}

/// The pcntl slot filled with `T`'s ops.
pub struct PcntlSlot<T: PcntlOps>(PhantomData<T>);

impl<T: PcntlOps> PcntlSlot<T> {
    const TABLE: bindings::cohort_pcntl_ops = bindings::cohort_pcntl_ops {
        pcntl: if T::HAS_PCNTL {
            Some(Self::pcntl)
        } else {
            None
        },
    };

    extern "C" fn pcntl(
        cmd: crate::ffi::c_uint,
        a0: crate::ffi::c_ulong,
        a1: crate::ffi::c_ulong,
        a2: crate::ffi::c_ulong,
    ) -> crate::ffi::c_long {
        match T::pcntl(cmd, [a0 as usize, a1 as usize, a2 as usize]) {
            Ok(value) => value,
            Err(e) => e.to_errno() as isize,
        }
    }
}

impl<T: PcntlOps> Slot for PcntlSlot<T> {
    const SLOT: bindings::cohort_slot = bindings::cohort_slot_COHORT_SLOT_PCNTL;

    fn table() -> *const c_void {
        let table: &'static bindings::cohort_pcntl_ops = &Self::TABLE;
        (table as *const bindings::cohort_pcntl_ops).cast()
    }
}
