// SPDX-License-Identifier: GPL-2.0

//! Anonymous shared regions as the memory linker's local stores.
//!
//! A `MAP_SHARED | MAP_ANONYMOUS` region (an internal shmem file named
//! `dev/zero`) that a migrated process maps, and a SysV segment whose key
//! the cluster knows, are one container each (Gobelins; Containers report,
//! section 4): on each node the container's local store is such a region
//! (or segment), and the node's copy of page `index` is its page `index`.
//!
//! C header: [`include/linux/cohort.h`](srctree/include/linux/cohort.h),
//! implementation in `kernel/cohort/share.c`.

use super::{fault::Vma, files::File, migration::PAGE_SIZE};
use crate::{bindings, error::to_result, prelude::*};
use core::sync::atomic::AtomicU64;

/// Who a SysV segment belongs to: owner and group in the initial user
/// namespace, and its permission bits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShmOwner {
    /// Owner (and creator).
    pub uid: u32,
    /// Group (and creator's group).
    pub gid: u32,
    /// Permission bits (`S_IRWXUGO`).
    pub mode: u16,
}

impl ShmOwner {
    /// The current task's effective ids, with `mode`.
    pub fn current(mode: u16) -> Self {
        let (mut uid, mut gid) = (0u32, 0u32);
        // SAFETY: Both pointers are valid for writes for the call.
        unsafe { bindings::cohort_current_egids(&mut uid, &mut gid) };
        ShmOwner { uid, gid, mode }
    }

    /// Whether the current task may access a segment so owned with `flag`
    /// (`S_IRUGO`, `S_IWUGO`, or `shmget()`'s permission bits), by the rule
    /// of `ipcperms()`.
    pub fn allows_current(&self, flag: i32) -> bool {
        // SAFETY: No pointers; reads the current task's credentials.
        unsafe { bindings::cohort_ipc_may(self.uid, self.gid, self.mode, flag) }
    }
}

/// An anonymous shared region or a SysV segment's shmem file, held by a
/// file reference.
///
/// # Invariants
///
/// The file is linkable (`cohort_file_is_linkable()`).
pub struct SharedRegion(File);

impl Clone for SharedRegion {
    fn clone(&self) -> Self {
        // The invariant holds for another reference to the same file.
        SharedRegion(self.0.clone())
    }
}

impl SharedRegion {
    /// The region of `file`, or `EINVAL` when `file` is not one.
    pub fn new(file: File) -> Result<Self> {
        // SAFETY: `file` holds a reference for the call.
        if unsafe { bindings::cohort_file_is_linkable(file.as_raw()) } {
            Ok(SharedRegion(file))
        } else {
            Err(EINVAL)
        }
    }

    /// Gives the file reference back.
    pub fn into_file(self) -> File {
        self.0
    }

    /// An identifier of the region, the same for every file open on it
    /// (see [`Vma::shared_region`]).
    pub fn key(&self) -> usize {
        // SAFETY: By the type invariant the file is live.
        unsafe { bindings::cohort_file_key(self.0.as_raw()) as usize }
    }

    /// Whether no mapping on this node maps the region any more (only this
    /// reference holds it).
    pub fn is_unused(&self) -> bool {
        // SAFETY: By the type invariant the file is live.
        unsafe { bindings::cohort_file_unused(self.0.as_raw()) }
    }

    /// Reads page `index` into `buf`, unmapping it from every mapping
    /// first so that no write lands after the read. A page never written
    /// reads as zeros.
    ///
    /// # Errors
    ///
    /// `EINVAL` past the end of the region, `ENOMEM`.
    pub fn read(&self, index: u64, buf: &mut [u8; PAGE_SIZE]) -> Result {
        // SAFETY: The file is live; `buf` is a whole page.
        to_result(unsafe {
            bindings::cohort_share_read(self.0.as_raw(), index, buf.as_mut_ptr().cast())
        })
    }

    /// Stores `data` as page `index` (dropping any mapping of it first).
    ///
    /// # Errors
    ///
    /// `EINVAL` past the end of the region, `ENOSPC`, `ENOMEM`.
    pub fn write(&self, index: u64, data: &[u8; PAGE_SIZE]) -> Result {
        // SAFETY: The file is live; `data` is a whole page.
        to_result(unsafe {
            bindings::cohort_share_write(self.0.as_raw(), index, data.as_ptr().cast())
        })
    }

    /// Unmaps page `index` from every mapping; it stays in the region.
    pub fn zap(&self, index: u64) {
        // SAFETY: The file is live.
        unsafe { bindings::cohort_share_zap(self.0.as_raw(), index) }
    }

    /// Removes this node's SysV segment `shmid`, whose file this is, as
    /// `IPC_RMID` does (its key was removed on another node).
    ///
    /// # Errors
    ///
    /// `EIDRM` when `shmid` is no longer this file's segment or was removed
    /// already, `EINVAL` for an id no segment has.
    pub fn remove_segment(&self, shmid: i32) -> Result {
        // SAFETY: The file is live; the call takes the IPC locks it needs.
        to_result(unsafe { bindings::cohort_shm_remove(shmid, self.0.as_raw()) })
    }

    /// Drops pages `first..end` (clamped to the region's size): the next
    /// access reads zeros.
    pub fn drop_range(&self, first: u64, end: u64) {
        // SAFETY: The file is live.
        unsafe { bindings::cohort_share_drop(self.0.as_raw(), first, end) }
    }
}

impl Vma {
    /// For a `MAP_SHARED` mapping of an anonymous shared region: the
    /// region's key ([`SharedRegion::key`]) and the page `address` maps.
    pub fn shared_region(&self, address: usize) -> Option<(usize, u64)> {
        // SAFETY: The fault handler holds the lock that keeps the VMA (and
        // its file) alive.
        let file = unsafe { bindings::cohort_vma_shared_file(self.as_raw()) };
        if file.is_null() {
            return None;
        }
        // SAFETY: `file` is the VMA's, alive as long as the VMA.
        let key = unsafe { bindings::cohort_file_key(file) } as usize;
        // SAFETY: As above; `address` is in the VMA (the fault's).
        let index = unsafe { bindings::cohort_vma_pgoff(self.as_raw(), address as _) };
        Some((key, index))
    }

    /// Maps the page of the shared region at `address`, read-only or (with
    /// `write`) writable, unless `counter`, read under the page table
    /// lock, is no longer `seen`. Returns the `vm_fault_t`: 0, or
    /// `VM_FAULT_NOPAGE` when the epoch moved (ask again).
    pub fn install_shared(
        &self,
        address: usize,
        flags: u32,
        write: bool,
        counter: &AtomicU64,
        seen: u64,
    ) -> u32 {
        // SAFETY: Called from the fault hook, which holds the lock the
        // install needs; `counter` is a live atomic.
        unsafe {
            bindings::cohort_share_fault_install(
                self.as_raw(),
                address as _,
                flags,
                write,
                counter.as_ptr().cast_const(),
                seen,
            )
        }
    }
}
