// SPDX-License-Identifier: GPL-2.0

//! Address-space layout changes: mmap, brk, munmap, mprotect, mremap.

use super::Slot;
use crate::{bindings, prelude::*, types::Opaque};
use core::{ffi::c_void, marker::PhantomData};

/// An address space (`struct mm_struct`), borrowed for the length of a call.
#[repr(transparent)]
pub struct Mm(Opaque<bindings::mm_struct>);

impl Mm {
    /// The current program break.
    pub fn brk(&self) -> usize {
        // SAFETY: The mm is live for the call.
        unsafe { bindings::cohort_mm_brk(self.0.get()) as usize }
    }

    /// The raw `struct mm_struct` pointer, for other abstractions.
    pub fn as_raw(&self) -> *mut bindings::mm_struct {
        self.0.get()
    }
}

/// Which call changes the layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayoutOp {
    /// mmap(2) or in-kernel vm_mmap().
    Mmap,
    /// brk(2).
    Brk,
    /// munmap(2) or in-kernel vm_munmap().
    Munmap,
    /// mprotect(2) or pkey_mprotect(2).
    Mprotect,
    /// mremap(2).
    Mremap,
    /// madvise(2) of the caller's own address space.
    Madvise,
}

/// One layout change as the caller asked for it (`struct cohort_layout_change`).
#[repr(transparent)]
pub struct LayoutChange(Opaque<bindings::cohort_layout_change>);

impl LayoutChange {
    fn raw(&self) -> &bindings::cohort_layout_change {
        // SAFETY: The hub owns the record for the duration of the call and
        // only the module touches it meanwhile.
        unsafe { &*self.0.get() }
    }

    /// Which call this is; `None` for an op this abstraction does not know.
    pub fn op(&self) -> Option<LayoutOp> {
        #[allow(non_upper_case_globals)]
        match self.raw().op {
            bindings::cohort_layout_op_COHORT_LAYOUT_MMAP => Some(LayoutOp::Mmap),
            bindings::cohort_layout_op_COHORT_LAYOUT_BRK => Some(LayoutOp::Brk),
            bindings::cohort_layout_op_COHORT_LAYOUT_MUNMAP => Some(LayoutOp::Munmap),
            bindings::cohort_layout_op_COHORT_LAYOUT_MPROTECT => Some(LayoutOp::Mprotect),
            bindings::cohort_layout_op_COHORT_LAYOUT_MREMAP => Some(LayoutOp::Mremap),
            bindings::cohort_layout_op_COHORT_LAYOUT_MADVISE => Some(LayoutOp::Madvise),
            _ => None,
        }
    }

    /// Start address (mmap: the hint; brk: the requested break).
    pub fn start(&self) -> usize {
        self.raw().start as usize
    }

    /// Length in bytes (mremap: the old length).
    pub fn len(&self) -> usize {
        self.raw().len as usize
    }

    /// Whether the change covers no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// mremap: the new address (with `MREMAP_FIXED`).
    pub fn new_addr(&self) -> usize {
        self.raw().new_addr as usize
    }

    /// mremap: the new length.
    pub fn new_len(&self) -> usize {
        self.raw().new_len as usize
    }

    /// mmap and mprotect: the protection bits.
    pub fn prot(&self) -> usize {
        self.raw().prot as usize
    }

    /// mmap and mremap: the flags; madvise: the advice (`MADV_*`).
    pub fn flags(&self) -> usize {
        self.raw().flags as usize
    }

    /// mmap: the file offset in pages.
    pub fn pgoff(&self) -> usize {
        self.raw().pgoff as usize
    }

    /// mmap: whether a file is mapped.
    pub fn has_file(&self) -> bool {
        !self.raw().file.is_null()
    }

    /// The cookie the module stored in [`LayoutOps::begin`].
    pub fn cookie(&self) -> usize {
        self.raw().private as usize
    }

    /// Stores a cookie for [`LayoutOps::end`] to find.
    pub fn set_cookie(&mut self, cookie: usize) {
        // SAFETY: As in `raw`; `&mut self` makes this the only access.
        unsafe { (*self.0.get()).private = cookie as *mut c_void };
    }
}

/// Receives layout changes, before and after they happen.
///
/// Both methods run in the calling task without `mmap_lock` held and may
/// sleep; `end` follows every successful `begin`.
#[vtable]
pub trait LayoutOps {
    /// Called before the change; an error fails the call with it.
    fn begin(_mm: &Mm, _change: &mut LayoutChange) -> Result {
        crate::build_error(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// Called after the change with its result (an address or a negative
    /// errno as the syscall returns it).
    fn end(_mm: &Mm, _change: &mut LayoutChange, _result: isize) {
        crate::build_error(crate::error::VTABLE_DEFAULT_ERROR)
    }
}

/// The layout slot filled with `T`'s ops.
pub struct LayoutSlot<T: LayoutOps>(PhantomData<T>);

impl<T: LayoutOps> LayoutSlot<T> {
    const TABLE: bindings::cohort_layout_ops = bindings::cohort_layout_ops {
        begin: if T::HAS_BEGIN {
            Some(Self::begin)
        } else {
            None
        },
        end: if T::HAS_END { Some(Self::end) } else { None },
    };

    /// # Safety
    ///
    /// Called by the hub with a valid mm and change record.
    unsafe extern "C" fn begin(
        mm: *mut bindings::mm_struct,
        change: *mut bindings::cohort_layout_change,
    ) -> crate::ffi::c_int {
        // SAFETY: The hub passes a live mm and a record it owns for the call.
        let (mm, change) = unsafe { (&*mm.cast::<Mm>(), &mut *change.cast::<LayoutChange>()) };
        match T::begin(mm, change) {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        }
    }

    /// # Safety
    ///
    /// Called by the hub with a valid mm and change record.
    unsafe extern "C" fn end(
        mm: *mut bindings::mm_struct,
        change: *mut bindings::cohort_layout_change,
        result: crate::ffi::c_long,
    ) {
        // SAFETY: The hub passes a live mm and a record it owns for the call.
        let (mm, change) = unsafe { (&*mm.cast::<Mm>(), &mut *change.cast::<LayoutChange>()) };
        T::end(mm, change, result);
    }
}

impl<T: LayoutOps> Slot for LayoutSlot<T> {
    const SLOT: bindings::cohort_slot = bindings::cohort_slot_COHORT_SLOT_LAYOUT;

    fn table() -> *const c_void {
        let table: &'static bindings::cohort_layout_ops = &Self::TABLE;
        (table as *const bindings::cohort_layout_ops).cast()
    }
}
