// SPDX-License-Identifier: GPL-2.0

//! Page faults.

use super::{
    files::File,
    migration::{MmGrab, MmRef},
    share::{SharedRegion, ShmOwner},
    Slot,
};
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

/// What the page table of a [`Vma`] has at an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PteState {
    /// Nothing: the page was never touched here, or was dropped.
    None,
    /// A page is mapped (huge or not).
    Present,
    /// Swapped out, or migrating between NUMA nodes.
    Other,
}

impl Vma {
    /// What the page table has at `address`; called from the fault hook.
    pub fn pte_state(&self, address: usize) -> PteState {
        // SAFETY: The fault hook holds the mmap or VMA lock the walk needs.
        match unsafe { bindings::cohort_vma_pte_state(self.as_raw(), address as _) } as u32 {
            bindings::COHORT_PTE_PRESENT => PteState::Present,
            bindings::COHORT_PTE_OTHER => PteState::Other,
            _ => PteState::None,
        }
    }

    /// Fills `buf` with what a first access to `address` sees: zeros for
    /// anonymous memory, the file's page for a private file mapping.
    pub fn fresh_page(
        &self,
        address: usize,
        buf: &mut [u8; super::migration::PAGE_SIZE],
    ) -> Result {
        // SAFETY: The fault hook holds the lock that keeps the VMA (and its
        // file) alive; `buf` is a whole page.
        crate::error::to_result(unsafe {
            bindings::cohort_vma_fresh_page(self.as_raw(), address as _, buf.as_mut_ptr().cast())
        })
    }

    /// Whether the area is one of the architecture's special mappings (the
    /// vDSO and its data), which hold no process memory.
    pub fn is_special(&self) -> bool {
        // SAFETY: The fault handler holds the lock that keeps the VMA alive.
        unsafe { bindings::cohort_arch_vma_kind(self.as_raw()) >= 0 }
    }

    /// Whether the area is private (not `MAP_SHARED`).
    pub fn is_private(&self) -> bool {
        // SAFETY: The fault handler holds the lock that keeps the VMA alive.
        let flags = unsafe { bindings::cohort_vma_flags(self.as_raw()) } as u64;
        flags & u64::from(bindings::VM_SHARED) == 0
    }
}

/// Receives page faults, and (as the memory linker) hears which address
/// spaces are linked to containers.
#[vtable]
pub trait FaultOps {
    /// A fault at `address` in `vma` with `FAULT_FLAG_*` `flags`, called
    /// with the mmap lock or (with `FAULT_FLAG_VMA_LOCK`) the VMA lock held.
    fn fault(_vma: &Vma, _address: usize, _flags: u32) -> FaultAction {
        crate::build_error(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// The private memory of `mm` is container `container`'s pages on this
    /// node from now on; `active` when the process uses this copy, else a
    /// shadow keeps it ([`link`]). `container` 0 asks for a new container
    /// homed at this node. Returns the container's id, below `1 << 31`.
    fn link(_mm: MmGrab, _container: u32, _active: bool) -> Result<u32> {
        crate::build_error(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// This node's address space linked to `container`, if any, leaves it;
    /// with `destroy`, the container's pages go on every node ([`unlink`]).
    /// May sleep.
    fn unlink(_container: u32, _destroy: bool) {
        crate::build_error(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// The pages of `[start, end)` of the linked address space `mm_id`
    /// are released on every node ([`release`]). May sleep.
    fn release(_mm_id: usize, _start: usize, _end: usize) -> Result {
        crate::build_error(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// Every page of `container` that exists anywhere is made present, as
    /// a read copy, in the current task's address space ([`populate`]).
    fn populate(_container: u32) -> Result {
        crate::build_error(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// Pages of `container` this node received and sent since the last call
    /// ([`counts`]).
    fn counts(_container: u32) -> (u64, u64) {
        crate::build_error(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// From now on `region` is container `container`'s pages on this node
    /// (0: a new container homed here). Returns the container's id, below
    /// `1 << 31`. May sleep.
    fn share_link(_region: SharedRegion, _container: u32) -> Result<u32> {
        crate::build_error(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// The region linked to `container` on this node, if any.
    fn share_file(_container: u32) -> Option<SharedRegion> {
        crate::build_error(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// `shmget(2)` of `key` (not `IPC_PRIVATE`) in the initial IPC
    /// namespace, before the local lookup: may set `IPC_CREAT` in `shmflg`
    /// and the cluster's segment's size in `size`, or fail the call. May
    /// sleep.
    fn shmget(_key: i32, _size: &mut usize, _shmflg: &mut i32) -> Result {
        crate::build_error(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// This node made SysV segment `shmid` of `key`, whose shmem file is
    /// `region`; returns the owner and mode the segment takes, if not its
    /// creator's.
    fn shm_created(_key: i32, _shmid: i32, _region: SharedRegion) -> Option<ShmOwner> {
        crate::build_error(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// `IPC_RMID` removed the segment whose shmem file is `region`. May
    /// sleep.
    fn shm_removed(_region: SharedRegion) {
        crate::build_error(crate::error::VTABLE_DEFAULT_ERROR)
    }
}

/// Takes a reference of our own on a linkable file the caller holds one
/// on, as a [`SharedRegion`].
///
/// # Safety
///
/// `file` is a live file the caller holds a reference on for the call.
unsafe fn region_of(file: *mut bindings::file) -> Result<SharedRegion> {
    // SAFETY: The caller holds a reference: take one of our own.
    unsafe { bindings::cohort_file_get(file) };
    // SAFETY: The reference just taken passes to the `File`.
    let file = unsafe { File::from_raw(file) }?;
    SharedRegion::new(file)
}

/// Brings every page of `container`, which the current task's address
/// space is linked to, into it (before a fork). May sleep.
///
/// # Errors
///
/// `ENOPROTOOPT` when no page layer is loaded, or the page layer's error.
pub fn populate(container: u32) -> Result {
    // SAFETY: No pointers.
    crate::error::to_result(unsafe { bindings::cohort_container_populate(container) })
}

/// Pages of `container` this node received and sent since the last call:
/// `(fetched, served)`.
pub fn counts(container: u32) -> (u64, u64) {
    let (mut fetched, mut served) = (0u64, 0u64);
    // SAFETY: Both pointers are valid for writes for the call.
    unsafe { bindings::cohort_container_counts(container, &mut fetched, &mut served) };
    (fetched, served)
}

/// Links the private memory of `mm` to container `container` (the page
/// layer's [`FaultOps::link`]): `active` when the process uses this copy
/// (its faults get pages from the container), else a shadow keeps it (it
/// serves pages; its own faults stay local). Linking `mm` to its container
/// again changes only `active`. `container` 0 makes a new container homed
/// at this node. Returns the container's id.
///
/// # Errors
///
/// `ENOPROTOOPT` when no page layer is loaded, or the page layer's error
/// (`EEXIST`: another address space here is linked to `container`;
/// `EAGAIN`: the page layer is not part of the cluster's view yet).
pub fn link(mm: &MmRef, container: u32, active: bool) -> Result<u32> {
    // SAFETY: `mm` holds a reference for the call.
    let ret = unsafe { bindings::cohort_mm_link(mm.as_raw(), container, active) };
    crate::error::to_result(ret)?;
    // A non-negative return is the container's id (0 only for a page
    // layer that answered with no id: keep the one asked for).
    Ok(if ret > 0 { ret as u32 } else { container })
}

/// Ends this node's link to `container`; with `destroy`, the container's
/// pages are released on every node. May sleep.
pub fn unlink(container: u32, destroy: bool) {
    // SAFETY: No pointers.
    unsafe { bindings::cohort_container_unlink(container, destroy) }
}

/// Releases the pages of `[start, end)` of `mm` on every node (nothing
/// for an address space that is not linked). May sleep.
///
/// # Errors
///
/// The page layer's: `EHOSTDOWN` when a node did not answer in time.
pub fn release(mm: &MmRef, start: usize, end: usize) -> Result {
    // SAFETY: `mm` holds a reference for the call.
    crate::error::to_result(unsafe {
        bindings::cohort_mm_release(mm.as_raw(), start as _, end as _)
    })
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
        link: if T::HAS_LINK { Some(Self::link) } else { None },
        unlink: if T::HAS_UNLINK {
            Some(Self::unlink)
        } else {
            None
        },
        release: if T::HAS_RELEASE {
            Some(Self::release)
        } else {
            None
        },
        populate: if T::HAS_POPULATE {
            Some(Self::populate)
        } else {
            None
        },
        counts: if T::HAS_COUNTS {
            Some(Self::counts)
        } else {
            None
        },
        share_link: if T::HAS_SHARE_LINK {
            Some(Self::share_link)
        } else {
            None
        },
        share_file: if T::HAS_SHARE_FILE {
            Some(Self::share_file)
        } else {
            None
        },
        shmget: if T::HAS_SHMGET {
            Some(Self::shmget)
        } else {
            None
        },
        shm_created: if T::HAS_SHM_CREATED {
            Some(Self::shm_created)
        } else {
            None
        },
        shm_removed: if T::HAS_SHM_REMOVED {
            Some(Self::shm_removed)
        } else {
            None
        },
    };

    /// # Safety
    ///
    /// Called by the hub with two pointers valid for reads and writes.
    unsafe extern "C" fn shmget(
        key: bindings::key_t,
        size: *mut usize,
        shmflg: *mut crate::ffi::c_int,
    ) -> crate::ffi::c_int {
        // SAFETY: The hub passes pointers to its locals, valid for the call.
        let (size, shmflg) = unsafe { (&mut *size, &mut *shmflg) };
        match T::shmget(key, size, shmflg) {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        }
    }

    /// # Safety
    ///
    /// Called by the hub with a file the caller holds a reference on.
    unsafe extern "C" fn shm_created(
        key: bindings::key_t,
        shmid: crate::ffi::c_int,
        file: *mut bindings::file,
        owner: *mut bindings::cohort_shm_owner,
    ) {
        // SAFETY: The caller holds a reference for the call.
        let Ok(region) = (unsafe { region_of(file) }) else {
            return;
        };
        if let Some(o) = T::shm_created(key, shmid, region) {
            // SAFETY: The hub passes a pointer to its local, valid for the
            // call.
            unsafe {
                *owner = bindings::cohort_shm_owner {
                    set: true,
                    uid: o.uid,
                    gid: o.gid,
                    mode: o.mode,
                }
            };
        }
    }

    /// # Safety
    ///
    /// Called by the hub with a file the caller holds a reference on.
    unsafe extern "C" fn shm_removed(file: *mut bindings::file) {
        // SAFETY: The caller holds a reference for the call.
        if let Ok(region) = unsafe { region_of(file) } {
            T::shm_removed(region);
        }
    }

    /// # Safety
    ///
    /// Called by the hub with a file the caller holds a reference on.
    unsafe extern "C" fn share_link(
        file: *mut bindings::file,
        container: u32,
    ) -> crate::ffi::c_int {
        // SAFETY: The caller holds a reference for the call.
        let region = match unsafe { region_of(file) } {
            Ok(region) => region,
            Err(e) => return e.to_errno(),
        };
        match T::share_link(region, container) {
            // Ids are below `1 << 31` (`FaultOps::share_link`).
            Ok(id) => crate::ffi::c_int::try_from(id).unwrap_or(EINVAL.to_errno()),
            Err(e) => e.to_errno(),
        }
    }

    /// # Safety
    ///
    /// Called by the hub; the returned reference passes to the caller.
    unsafe extern "C" fn share_file(container: u32) -> *mut bindings::file {
        match T::share_file(container) {
            Some(region) => {
                let file = region.into_file();
                let raw = file.as_raw();
                // The caller drops this reference with fput().
                core::mem::forget(file);
                raw
            }
            None => core::ptr::null_mut(),
        }
    }

    /// # Safety
    ///
    /// Called by the hub; no pointers.
    unsafe extern "C" fn populate(container: u32) -> crate::ffi::c_int {
        match T::populate(container) {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        }
    }

    /// # Safety
    ///
    /// Called by the hub with two pointers valid for writes.
    unsafe extern "C" fn counts(container: u32, fetched: *mut u64, served: *mut u64) {
        let (f, s) = T::counts(container);
        // SAFETY: The hub passes pointers valid for writes.
        unsafe {
            *fetched = f;
            *served = s;
        }
    }

    /// # Safety
    ///
    /// Called by the hub with an address space the caller holds a reference on.
    unsafe extern "C" fn link(
        mm: *mut bindings::mm_struct,
        container: u32,
        active: bool,
    ) -> crate::ffi::c_int {
        // SAFETY: The caller holds a reference for the call; `from_raw`
        // takes one of its own.
        let Some(mm) = (unsafe { MmGrab::from_raw(mm) }) else {
            return EINVAL.to_errno();
        };
        match T::link(mm, container, active) {
            // Ids are below `1 << 31` (`FaultOps::link`).
            Ok(id) => crate::ffi::c_int::try_from(id).unwrap_or(EINVAL.to_errno()),
            Err(e) => e.to_errno(),
        }
    }

    /// # Safety
    ///
    /// Called by the hub; no pointers.
    unsafe extern "C" fn unlink(container: u32, destroy: bool) {
        T::unlink(container, destroy)
    }

    /// # Safety
    ///
    /// Called by the hub with an address space the caller holds a reference on.
    unsafe extern "C" fn release(
        mm: *mut bindings::mm_struct,
        start: crate::ffi::c_ulong,
        end: crate::ffi::c_ulong,
    ) -> crate::ffi::c_int {
        match T::release(mm as usize, start as usize, end as usize) {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        }
    }

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
