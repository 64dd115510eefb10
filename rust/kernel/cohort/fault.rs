// SPDX-License-Identifier: GPL-2.0

//! Page faults.

use super::Slot;
use crate::{bindings, prelude::*, types::Opaque};
use core::{ffi::c_void, marker::PhantomData};

/// A virtual memory area (`struct vm_area_struct`), borrowed for a fault.
#[repr(transparent)]
pub struct Vma(Opaque<bindings::vm_area_struct>);

impl Vma {
    fn raw(&self) -> &bindings::vm_area_struct {
        // SAFETY: The fault handler holds the mmap or VMA lock for the call,
        // which keeps the VMA alive and its bounds stable.
        unsafe { &*self.0.get() }
    }

    /// First address of the area.
    pub fn start(&self) -> usize {
        // SAFETY: `vm_start` is a plain field of a live VMA.
        unsafe { self.raw().__bindgen_anon_1.__bindgen_anon_1.vm_start as usize }
    }

    /// One past the last address of the area.
    pub fn end(&self) -> usize {
        // SAFETY: `vm_end` is a plain field of a live VMA.
        unsafe { self.raw().__bindgen_anon_1.__bindgen_anon_1.vm_end as usize }
    }

    /// The raw pointer, for other abstractions.
    pub fn as_raw(&self) -> *mut bindings::vm_area_struct {
        self.0.get()
    }
}

/// What `handle_mm_fault()` does after the hook.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultAction {
    /// Handle the fault as stock Linux does.
    Local,
    /// The module handled it; return this `vm_fault_t`. Returning
    /// `VM_FAULT_RETRY` or `VM_FAULT_COMPLETED` requires having released the
    /// mmap or VMA lock as `handle_mm_fault()`'s contract says.
    Handled(u32),
}

/// Receives page faults.
#[vtable]
pub trait FaultOps {
    /// A fault at `address` in `vma` with `FAULT_FLAG_*` `flags`, called
    /// with the mmap lock or (with `FAULT_FLAG_VMA_LOCK`) the VMA lock held.
    fn fault(_vma: &Vma, _address: usize, _flags: u32) -> FaultAction {
        crate::build_error(crate::error::VTABLE_DEFAULT_ERROR)
    }
}

/// The fault slot filled with `T`'s ops.
pub struct FaultSlot<T: FaultOps>(PhantomData<T>);

impl<T: FaultOps> FaultSlot<T> {
    const TABLE: bindings::cohort_fault_ops = bindings::cohort_fault_ops {
        fault: if T::HAS_FAULT {
            Some(Self::fault)
        } else {
            None
        },
    };

    /// # Safety
    ///
    /// Called by the hub from `handle_mm_fault()` with a locked VMA and a
    /// writable `ret`.
    unsafe extern "C" fn fault(
        vma: *mut bindings::vm_area_struct,
        address: crate::ffi::c_ulong,
        flags: crate::ffi::c_uint,
        _regs: *mut bindings::pt_regs,
        ret: *mut bindings::vm_fault_t,
    ) -> bindings::cohort_fault_action {
        // SAFETY: The VMA is locked for the duration of the call.
        let vma = unsafe { &*vma.cast::<Vma>() };
        match T::fault(vma, address as usize, flags) {
            FaultAction::Local => bindings::cohort_fault_action_COHORT_FAULT_LOCAL,
            FaultAction::Handled(code) => {
                // SAFETY: `ret` points to the caller's `vm_fault_t`.
                unsafe { *ret = code };
                bindings::cohort_fault_action_COHORT_FAULT_HANDLED
            }
        }
    }
}

impl<T: FaultOps> Slot for FaultSlot<T> {
    const SLOT: bindings::cohort_slot = bindings::cohort_slot_COHORT_SLOT_FAULT;

    fn table() -> *const c_void {
        let table: &'static bindings::cohort_fault_ops = &Self::TABLE;
        (table as *const bindings::cohort_fault_ops).cast()
    }
}
