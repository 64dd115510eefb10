// SPDX-License-Identifier: GPL-2.0

//! Moving tasks between nodes: the migration slot and the hub's helpers.
//!
//! The process layer registers a [`MigrationOps`] table to see the faults of
//! migrated tasks' address spaces and the system calls of tasks it marked
//! with [`forward`]. The helpers save a task's state on the node it leaves
//! and load it on the node it reaches; most act on the current task.

use super::fault::{FaultAction, Vma};
use super::Slot;
use crate::{
    bindings,
    error::to_result,
    prelude::*,
    str::CStr,
    sync::{Arc, ArcBorrow},
    task::Task,
    types::ARef,
    ThisModule,
};
use core::{
    ffi::c_void,
    marker::PhantomData,
    ptr::NonNull,
    sync::atomic::{AtomicPtr, Ordering},
};

/// A task's signal dispositions, blocked and pending sets.
pub type Signals = bindings::cohort_signals;
/// One signal's disposition.
pub type SigAction = bindings::cohort_sigaction;
/// A task's credentials.
pub type Creds = bindings::cohort_creds;
/// A task's scheduling policy.
pub type Sched = bindings::cohort_sched;
/// The fields of an address space that are not mappings.
pub type MmLayout = bindings::cohort_mm_layout;
/// One mapping of an address space.
pub type VmaDesc = bindings::cohort_vma;

/// A process's state besides signals, credentials, scheduling and mm:
/// alternate signal stack, interval timers, resource limits, personality,
/// prctl settings, futex and rseq registrations, its view of the clocks.
pub type Proc = bindings::cohort_proc;
/// One queued signal with its siginfo.
pub type SigQueued = bindings::cohort_sigq;
/// Number of resource limits in [`Proc`].
pub const NR_RLIMITS: usize = bindings::COHORT_NR_RLIMITS as usize;
/// Size of the siginfo in [`SigQueued`].
pub const SIGINFO_SIZE: usize = bindings::COHORT_SIGINFO_SIZE as usize;
/// [`Proc::flags`]: a child subreaper.
pub const PROC_SUBREAPER: u32 = bindings::COHORT_PROC_SUBREAPER;
/// [`Proc::flags`]: no new privileges.
pub const PROC_NO_NEW_PRIVS: u32 = bindings::COHORT_PROC_NO_NEW_PRIVS;
/// [`Proc::flags`]: transparent huge pages disabled.
pub const PROC_THP_DISABLE: u32 = bindings::COHORT_PROC_THP_DISABLE;
/// Room for a mapped file's path in [`VmaDesc`], with its NUL.
pub const VMA_PATH_MAX: usize = bindings::COHORT_VMA_PATH_MAX as usize;
/// [`VmaDesc::kind`]: anonymous memory.
pub const VMA_ANON: u32 = bindings::cohort_vma_kind_COHORT_VMA_ANON;
/// [`VmaDesc::kind`]: a private mapping of a file.
pub const VMA_FILE: u32 = bindings::cohort_vma_kind_COHORT_VMA_FILE;
/// [`VmaDesc::kind`]: the vDSO text.
pub const VMA_VDSO: u32 = bindings::cohort_vma_kind_COHORT_VMA_VDSO;
/// [`VmaDesc::kind`]: the vDSO data.
pub const VMA_VVAR: u32 = bindings::cohort_vma_kind_COHORT_VMA_VVAR;
/// [`VmaDesc::kind`]: a private mapping of a file no path names.
pub const VMA_FILE_ANON: u32 = bindings::cohort_vma_kind_COHORT_VMA_FILE_ANON;
/// [`VmaDesc::kind`]: a `MAP_SHARED` mapping of an anonymous shared region,
/// whose pages are container [`VmaDesc::container`]'s.
pub const VMA_SHARED: u32 = bindings::cohort_vma_kind_COHORT_VMA_SHARED;
/// `VM_SHARED` of a mapping's flags.
pub const VM_SHARED: u64 = bindings::VM_SHARED as u64;
/// Size of a page.
pub const PAGE_SIZE: usize = bindings::PAGE_SIZE;

/// Receives the events of tasks away from their origin.
#[vtable]
pub trait MigrationOps {
    /// A fault in `vma`, asked before the fault slot; [`FaultAction::Local`]
    /// passes it on. Same locking as [`super::FaultOps::fault`].
    fn fault(_vma: &Vma, _address: usize, _flags: u32) -> FaultAction {
        crate::build_error(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// The current task, marked with [`forward`], enters system call `nr`
    /// with `args`: `Some(value)` serves it (the value, or `-errno`, is
    /// returned to user space), `None` runs it here with `args`, which the
    /// module may change.
    fn syscall(_nr: i64, _args: &mut [u64; 6]) -> Option<i64> {
        crate::build_error(crate::error::VTABLE_DEFAULT_ERROR)
    }
}

/// The migration slot filled with `T`'s ops.
pub struct MigrationSlot<T: MigrationOps>(PhantomData<T>);

impl<T: MigrationOps> MigrationSlot<T> {
    const TABLE: bindings::cohort_migration_ops = bindings::cohort_migration_ops {
        fault: if T::HAS_FAULT {
            Some(Self::fault)
        } else {
            None
        },
        syscall: if T::HAS_SYSCALL {
            Some(Self::syscall)
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

    /// # Safety
    ///
    /// Called by the hub with six readable arguments and a writable `ret`.
    unsafe extern "C" fn syscall(
        nr: crate::ffi::c_long,
        args: *mut crate::ffi::c_ulong,
        ret: *mut crate::ffi::c_long,
    ) -> bool {
        // SAFETY: The hub passes an array of six arguments it owns.
        let raw = unsafe { core::slice::from_raw_parts_mut(args, 6) };
        let mut args = [0u64; 6];
        for (out, arg) in args.iter_mut().zip(raw.iter()) {
            *out = *arg as u64;
        }
        match T::syscall(nr as i64, &mut args) {
            Some(value) => {
                // SAFETY: `ret` points to the hub's result.
                unsafe { *ret = value as crate::ffi::c_long };
                true
            }
            None => {
                for (out, arg) in raw.iter_mut().zip(args) {
                    *out = arg as crate::ffi::c_ulong;
                }
                false
            }
        }
    }
}

impl<T: MigrationOps> Slot for MigrationSlot<T> {
    const SLOT: bindings::cohort_slot = bindings::cohort_slot_COHORT_SLOT_MIGRATION;

    fn table() -> *const c_void {
        let table: &'static bindings::cohort_migration_ops = &Self::TABLE;
        (table as *const bindings::cohort_migration_ops).cast()
    }
}

impl Vma {
    /// The address space this area belongs to, to compare with [`MmRef::id`].
    pub fn mm_id(&self) -> usize {
        // SAFETY: `vm_mm` is set at creation and never changes.
        unsafe { (*self.as_raw()).vm_mm as usize }
    }

    /// The area's `vm_flags`.
    pub fn flags(&self) -> u64 {
        // SAFETY: The fault handler holds the lock that keeps the VMA alive.
        unsafe { bindings::cohort_vma_flags(self.as_raw()) as u64 }
    }

    /// Installs a private page at `address`, from the fault hook; returns
    /// the `vm_fault_t` to give back.
    ///
    /// `how` is [`INSTALL_WRITE`] (writable when the area is; else
    /// read-only) and [`INSTALL_REPLACE`]: the page mapped there is
    /// replaced by a copy of itself, and `data` is not used (`None`);
    /// otherwise the page holds `data`, and a page mapped meanwhile is
    /// kept.
    ///
    /// With `epoch` = `Some((counter, seen))`, nothing changes, and
    /// `VM_FAULT_NOPAGE` is returned, when `counter`, read under the page
    /// table lock, is no longer `seen`: a page layer bumps it before it
    /// drops or write-protects pages, so that a decision taken before
    /// cannot be undone by an install after.
    pub fn install_page(
        &self,
        address: usize,
        flags: u32,
        how: u32,
        data: Option<&[u8; PAGE_SIZE]>,
        epoch: Option<(&core::sync::atomic::AtomicU64, u64)>,
    ) -> u32 {
        if (how & INSTALL_REPLACE == 0) != data.is_some() {
            return bindings::vm_fault_reason_VM_FAULT_SIGBUS;
        }
        let (counter, seen) = match epoch {
            Some((counter, seen)) => (counter.as_ptr().cast_const(), seen),
            None => (core::ptr::null(), 0),
        };
        let data = data.map_or(core::ptr::null(), |d| d.as_ptr().cast());
        // SAFETY: Called from the fault hook, which holds the lock
        // `cohort_fault_install_page` needs; `data` is a whole page or NULL
        // with `INSTALL_REPLACE`; `counter` is NULL or a live atomic.
        unsafe {
            bindings::cohort_fault_install_page(
                self.as_raw(),
                address as crate::ffi::c_ulong,
                flags,
                how,
                data,
                counter,
                seen,
            )
        }
    }
}

/// [`Vma::install_page`]: map the page writable when the area is.
pub const INSTALL_WRITE: u32 = bindings::COHORT_INSTALL_WRITE;
/// [`Vma::install_page`]: replace the page mapped there by a copy of it.
pub const INSTALL_REPLACE: u32 = bindings::COHORT_INSTALL_REPLACE;

/// A counted reference to an address space (`mmget`/`mmput`).
pub struct MmRef(NonNull<bindings::mm_struct>);

// SAFETY: An mm reference may be used and dropped from any thread.
unsafe impl Send for MmRef {}
// SAFETY: The methods taking `&self` lock the mm as they need.
unsafe impl Sync for MmRef {}

impl MmRef {
    /// The address space of `task`, if it has one.
    pub fn of(task: &Task) -> Option<MmRef> {
        // SAFETY: `task` is live; `get_task_mm` returns a counted reference
        // or NULL.
        NonNull::new(unsafe { bindings::get_task_mm(task.0.get()) }).map(MmRef)
    }

    /// Takes a reference of its own on `mm` (`mmget`).
    ///
    /// # Safety
    ///
    /// `mm` is NULL or an address space the caller holds a reference on
    /// (`mm_users` or `mm_count`) for the call.
    pub unsafe fn from_raw_get(mm: *mut bindings::mm_struct) -> Option<MmRef> {
        let mm = NonNull::new(mm)?;
        // SAFETY: The caller keeps `mm` alive for the call; the hub takes an
        // `mm_users` reference unless the address space is already gone.
        if unsafe { bindings::cohort_mm_get(mm.as_ptr()) } {
            Some(MmRef(mm))
        } else {
            None
        }
    }

    /// An identifier to compare with [`Vma::mm_id`].
    pub fn id(&self) -> usize {
        self.0.as_ptr() as usize
    }

    /// The raw pointer, for other abstractions; valid while `self` lives.
    pub fn as_raw(&self) -> *mut bindings::mm_struct {
        self.0.as_ptr()
    }

    /// Copies the page at `addr` into `buf`, leaving it mapped; a page not
    /// mapped is faulted in first. Not from a task of this address space.
    ///
    /// # Errors
    ///
    /// `EFAULT` when no mapping covers `addr`, `EINTR` on a fatal signal.
    pub fn read_page(&self, addr: usize, buf: &mut [u8; PAGE_SIZE]) -> Result {
        // SAFETY: `self` holds a reference; `buf` is a whole page.
        to_result(unsafe {
            bindings::cohort_mm_read_page(self.0.as_ptr(), addr as _, buf.as_mut_ptr().cast())
        })
    }

    /// Replaces whatever is mapped at `addr` by a private page holding
    /// `data`, writable when `writable` and the mapping allow it. Not from
    /// a task of this address space.
    ///
    /// # Errors
    ///
    /// `EFAULT` when no private mapping covers `addr`, `ENOMEM`, `EINTR`.
    pub fn install_page(&self, addr: usize, writable: bool, data: &[u8; PAGE_SIZE]) -> Result {
        // SAFETY: `self` holds a reference; `data` is a whole page.
        to_result(unsafe {
            bindings::cohort_mm_install_page(
                self.0.as_ptr(),
                addr as _,
                writable,
                data.as_ptr().cast(),
            )
        })
    }

    /// Makes the page at `addr`, if any, read-only: reads go on, the next
    /// write faults. Not from a task of this address space.
    ///
    /// # Errors
    ///
    /// `EINTR` on a fatal signal.
    pub fn wrprotect(&self, addr: usize) -> Result {
        // SAFETY: `self` holds a reference.
        to_result(unsafe { bindings::cohort_mm_wrprotect(self.0.as_ptr(), addr as _) })
    }

    /// Stores in `pages` the page numbers of the pages the address space
    /// has (replacing what was there).
    pub fn present(&self, pages: &mut KVec<u64>) -> Result {
        super::vec::clear(pages);
        loop {
            let room = pages.capacity();
            // SAFETY: `self` holds a reference; `pages` has room for `room`.
            let n = unsafe {
                bindings::cohort_mm_present(self.0.as_ptr(), pages.as_mut_ptr(), room as _)
            };
            if n < 0 {
                return Err(Error::from_errno(n as i32));
            }
            let n = n as usize;
            if n <= room {
                // SAFETY: The hub initialised the first `n` entries.
                unsafe { pages.set_len(n) };
                return Ok(());
            }
            pages.reserve(n, GFP_KERNEL)?;
        }
    }

    /// Drops the pages of `[start, end)`, keeping the mappings.
    pub fn zap(&self, start: usize, end: usize) {
        // SAFETY: `self` holds a reference.
        unsafe { bindings::cohort_mm_zap(self.0.as_ptr(), start as _, end as _) };
    }
}

/// An `mm_struct` kept (`mmgrab`) without its address space: the address
/// space may end (its task exits or executes a new program) while the
/// struct stays, so that its identity cannot be reused; [`MmGrab::get`]
/// reaches the address space while it lasts.
///
/// # Invariants
///
/// `self.0` is an `mm_struct` this value holds an `mm_count` reference on.
pub struct MmGrab(NonNull<bindings::mm_struct>);

// SAFETY: An `mm_count` reference may be used and dropped from any thread.
unsafe impl Send for MmGrab {}
// SAFETY: `&self` methods only read the pointer or take references.
unsafe impl Sync for MmGrab {}

impl MmGrab {
    /// Keeps `mm`.
    ///
    /// # Safety
    ///
    /// `mm` is NULL or an `mm_struct` the caller holds a reference on for
    /// the call.
    pub unsafe fn from_raw(mm: *mut bindings::mm_struct) -> Option<MmGrab> {
        let mm = NonNull::new(mm)?;
        // SAFETY: The caller keeps `mm` alive for the call.
        unsafe { bindings::cohort_mm_grab(mm.as_ptr()) };
        // INVARIANT: The reference was just taken.
        Some(MmGrab(mm))
    }

    /// An identifier to compare with [`Vma::mm_id`] and [`MmRef::id`].
    pub fn id(&self) -> usize {
        self.0.as_ptr() as usize
    }

    /// The address space, unless it ended.
    pub fn get(&self) -> Option<MmRef> {
        // SAFETY: By the type invariant the struct is alive.
        unsafe { MmRef::from_raw_get(self.0.as_ptr()) }
    }
}

impl Drop for MmGrab {
    fn drop(&mut self) {
        // SAFETY: By the type invariant `self` owns one `mm_count` reference.
        unsafe { bindings::cohort_mm_drop(self.0.as_ptr()) };
    }
}

impl Drop for MmRef {
    fn drop(&mut self) {
        // SAFETY: `self` owns one reference.
        unsafe { bindings::mmput(self.0.as_ptr()) };
    }
}

/// A value of the current task's that the hub reads, as `Ok` or `-errno`.
fn errno_or<T>(ret: i64, value: T) -> Result<T> {
    if ret < 0 {
        Err(Error::from_errno(ret as i32))
    } else {
        Ok(value)
    }
}

/// Reads the current task's signal state into `out`.
pub fn signals_save(out: &mut Signals) {
    // SAFETY: `out` is valid for writes.
    unsafe { bindings::cohort_signals_save(out) };
}

/// Installs a signal state into the current task.
pub fn signals_load(sig: &Signals) {
    // SAFETY: `sig` is valid for reads.
    unsafe { bindings::cohort_signals_load(sig) };
}

/// Makes the current task a shadow for signals, dropping the pending
/// signals in `sent` (they travelled with the task).
pub fn signals_shadow(sent: u64) {
    // SAFETY: Acts on the current task only.
    unsafe { bindings::cohort_signals_shadow(sent) };
}

/// Reads the current task's process state into `out`; `EOPNOTSUPP` when
/// it has POSIX timers, which cannot travel.
pub fn proc_save(out: &mut Proc) -> Result {
    // SAFETY: `out` is valid for writes.
    to_result(unsafe { bindings::cohort_proc_save(out) })
}

/// Installs a process state into the current task, once its address space
/// is installed.
pub fn proc_load(proc: &Proc) -> Result {
    // SAFETY: `proc` is valid for reads.
    to_result(unsafe { bindings::cohort_proc_load(proc) })
}

/// Disarms the current task's interval timers: it became a shadow.
pub fn proc_shadow() {
    // SAFETY: Acts on the current task only.
    unsafe { bindings::cohort_proc_shadow() };
}

/// Stores the current task's queued signals with their siginfo in `out`
/// (replacing what was there).
pub fn sigqueue_save(out: &mut KVVec<SigQueued>) -> Result {
    super::vec::clear(out);
    loop {
        let room = out.capacity();
        // SAFETY: `out` has room for `room` entries at its pointer.
        let n = unsafe { bindings::cohort_sigqueue_save(out.as_mut_ptr(), room as _) };
        let n = usize::try_from(n).map_err(|_| EINVAL)?;
        if n <= room {
            // SAFETY: The hub initialised the first `n` entries.
            unsafe { out.set_len(n) };
            return Ok(());
        }
        out.reserve(n, GFP_KERNEL | __GFP_NOWARN)?;
    }
}

/// Queues signals that travelled on the current task; pending signals in
/// `pending` without an entry in `queue` are raised as sent by the kernel.
pub fn sigqueue_load(queue: &[SigQueued], pending: u64) {
    // SAFETY: `queue` is valid for reads of its length.
    unsafe { bindings::cohort_sigqueue_load(queue.as_ptr(), queue.len() as _, pending) };
}

/// Stores the current task's supplementary groups in `out` (replacing what
/// was there).
pub fn groups_save(out: &mut KVVec<u32>) -> Result {
    super::vec::clear(out);
    loop {
        let room = out.capacity();
        // SAFETY: `out` has room for `room` entries at its pointer.
        let n = unsafe { bindings::cohort_groups_save(out.as_mut_ptr(), room as _) };
        let n = usize::try_from(n).map_err(|_| EINVAL)?;
        if n <= room {
            // SAFETY: The hub initialised the first `n` entries.
            unsafe { out.set_len(n) };
            return Ok(());
        }
        out.reserve(n, GFP_KERNEL | __GFP_NOWARN)?;
    }
}

/// Gives the current task supplementary groups.
pub fn groups_load(gids: &[u32]) -> Result {
    // SAFETY: `gids` is valid for reads of its length.
    to_result(unsafe { bindings::cohort_groups_load(gids.as_ptr(), gids.len() as _) })
}

/// Stores the path of the current task's executable in `buf`; returns its
/// length, 0 when it has none that a path names.
pub fn exe_save(buf: &mut [u8]) -> usize {
    // SAFETY: `buf` is valid for writes of its length.
    let n = unsafe { bindings::cohort_exe_save(buf.as_mut_ptr().cast(), buf.len()) };
    usize::try_from(n).unwrap_or(0)
}

/// Makes `path` the executable of the current task, which just arrived.
pub fn exe_load(path: &CStr) -> Result {
    // SAFETY: `path` is NUL-terminated.
    to_result(unsafe { bindings::cohort_exe_load(path.as_char_ptr()) })
}

/// Takes one pending signal (never SIGKILL) off the current task.
pub fn signal_next() -> Option<u32> {
    // SAFETY: Acts on the current task only.
    let sig = unsafe { bindings::cohort_signal_next() };
    u32::try_from(sig).ok().filter(|s| *s != 0)
}

/// Whether the current task has been killed.
pub fn fatal_signal_pending() -> bool {
    // SAFETY: Reads the current task's flags.
    unsafe { bindings::cohort_fatal_signal_pending() }
}

/// Ends `task`'s interruptible sleep as a signal would, without queueing
/// one (`TIF_NOTIFY_SIGNAL`); `task` clears it with [`interrupt_clear`].
pub fn interrupt(task: &Task) {
    // SAFETY: `task` is live; setting a thread flag and waking it is valid
    // in any context that may sleep or not.
    unsafe { bindings::cohort_task_interrupt(task.0.get()) };
}

/// Clears what [`interrupt`] set on the current task.
pub fn interrupt_clear() {
    // SAFETY: Acts on the current task only.
    unsafe { bindings::cohort_interrupt_clear() };
}

/// Whether `task`'s address space is the one [`Vma::mm_id`] and
/// [`MmRef::id`] name as `mm_id`, which the caller keeps alive (it faults
/// in it).
pub fn task_has_mm(task: &Task, mm_id: usize) -> bool {
    // SAFETY: `task` is live; the hub only compares the pointer with the
    // task's, under the task's lock.
    unsafe { bindings::cohort_task_has_mm(task.0.get(), mm_id as *mut bindings::mm_struct) }
}

/// The process id of the current task's parent.
pub fn parent_tgid() -> i32 {
    // SAFETY: Reads the current task's parent under RCU.
    unsafe { bindings::cohort_parent_tgid() }
}

/// The current task's credentials.
pub fn creds_save() -> Creds {
    let mut creds = Creds::default();
    // SAFETY: `creds` is valid for writes.
    unsafe { bindings::cohort_creds_save(&mut creds) };
    creds
}

/// Gives the current task credentials.
pub fn creds_load(creds: &Creds) -> Result {
    // SAFETY: `creds` is valid for reads.
    to_result(unsafe { bindings::cohort_creds_load(creds) })
}

/// The current task's scheduling policy.
pub fn sched_save() -> Sched {
    let mut sched = Sched::default();
    // SAFETY: `sched` is valid for writes.
    unsafe { bindings::cohort_sched_save(&mut sched) };
    sched
}

/// Gives the current task a scheduling policy.
pub fn sched_load(sched: &Sched) -> Result {
    // SAFETY: `sched` is valid for reads.
    to_result(unsafe { bindings::cohort_sched_load(sched) })
}

/// Names the current task (at most 15 bytes are kept).
pub fn set_comm(comm: &[u8; 16]) {
    let mut name = [0u8; 17];
    name[..16].copy_from_slice(comm);
    // SAFETY: `name` is NUL-terminated.
    unsafe { bindings::cohort_set_comm(name.as_ptr()) };
}

/// Routes `task`'s system calls through [`MigrationOps::syscall`] or stops.
pub fn forward(task: &Task, on: bool) {
    // SAFETY: `task` is live.
    unsafe { bindings::cohort_task_forward(task.0.get(), on) };
}

/// Whether `task`'s process holds POSIX record locks (`fcntl(2)`
/// `F_SETLK`, `lockf(3)`) that cannot move with it: they belong to its
/// descriptor table, which stays with its shadow when it leaves
/// ([`super::files::leave_all`]), unless the table is shared with another
/// process (`CLONE_FILES`), whose they would stay.
pub fn holds_posix_locks(task: &Task) -> bool {
    // SAFETY: `task` is live.
    unsafe { bindings::cohort_task_posix_locks(task.0.get()) }
}

/// Whether `task` is a user process with one live thread, of a kind
/// migration handles; threads that began to exit (joined ones) do not count.
pub fn may_migrate(task: &Task) -> bool {
    // SAFETY: `task` is live.
    unsafe { bindings::cohort_may_migrate(task.0.get()) }
}

/// Waits, at most `timeout_ms`, until the current task is the only thread of
/// its process: threads that began to exit are released soon after.
///
/// # Errors
///
/// `EOPNOTSUPP` if a live thread appeared, `EINTR` on a fatal signal,
/// `EAGAIN` after `timeout_ms`.
pub fn await_lone_thread(timeout_ms: u32) -> Result {
    // SAFETY: acts on the current task only; no pointers.
    to_result(unsafe { bindings::cohort_await_lone_thread(timeout_ms) })
}

/// What a task does once its [`TaskWork`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AfterWork {
    /// Go on to user space.
    Resume,
    /// End with this wait status (exit code `<< 8`, or a signal number);
    /// the hub does it once the work and its module's pin are released.
    Exit(i64),
}

/// Work run in a task on its way back to user space.
pub trait TaskWork: Send + Sync + Sized {
    /// Runs in the task; `exiting` when the task is exiting instead (what
    /// it returns is then ignored).
    fn run(this: Arc<Self>, exiting: bool) -> AfterWork;
}

unsafe extern "C" fn run_work<W: TaskWork>(data: *mut c_void, exiting: bool) -> crate::ffi::c_long {
    // SAFETY: `data` came from `Arc::into_raw` in `queue_work` or `spawn`,
    // and the hub calls this exactly once.
    let work = unsafe { Arc::from_raw(data.cast::<W>()) };
    match W::run(work, exiting) {
        // COHORT_WORK_RESUME
        AfterWork::Resume => -1,
        AfterWork::Exit(status) => status.max(0) as crate::ffi::c_long,
    }
}

/// Runs `work` in `task` at its next return to user space; with
/// `interrupt`, an interruptible sleep is interrupted to get there. The
/// module stays loaded until the work ran.
pub fn queue_work<W: TaskWork>(
    module: &'static ThisModule,
    task: &Task,
    work: Arc<W>,
    interrupt: bool,
) -> Result {
    let raw = Arc::into_raw(work);
    let flags = if interrupt {
        bindings::COHORT_WORK_INTERRUPT
    } else {
        0
    };
    // SAFETY: `run_work::<W>` takes back the reference in `raw` when the
    // hub runs it; on error the hub does not.
    let ret = unsafe {
        bindings::cohort_task_work(
            module.as_ptr(),
            task.0.get(),
            Some(run_work::<W>),
            raw as *mut c_void,
            flags,
        )
    };
    if ret != 0 {
        // SAFETY: The hub did not take the reference.
        drop(unsafe { Arc::from_raw(raw) });
    }
    to_result(ret)
}

/// Creates a user task with `creds` and an empty address space (no
/// program is executed) that runs `work` on its first way to user space.
/// `work` runs exactly once, with `exiting` when no task could start.
pub fn spawn<W: TaskWork>(module: &'static ThisModule, creds: &Creds, work: Arc<W>) -> Result {
    let raw = Arc::into_raw(work);
    // SAFETY: The hub calls `run_work::<W>` exactly once with `raw`.
    to_result(unsafe {
        bindings::cohort_spawn(
            module.as_ptr(),
            creds,
            Some(run_work::<W>),
            raw as *mut c_void,
        )
    })
}

/// Describes the current task's address space: its fields into `layout`,
/// its mappings into `vmas` (replacing what was there).
pub fn mm_describe(layout: &mut MmLayout, vmas: &mut KVVec<VmaDesc>) -> Result {
    super::vec::clear(vmas);
    loop {
        let room = vmas.capacity();
        // SAFETY: `vmas` has room for `room` entries at its pointer.
        let n = unsafe { bindings::cohort_mm_describe(layout, vmas.as_mut_ptr(), room as u32) };
        to_result(n)?;
        let n = n as usize;
        if n <= room {
            // SAFETY: The hub initialised the first `n` entries.
            unsafe { vmas.set_len(n) };
            return Ok(());
        }
        vmas.reserve(n, GFP_KERNEL | __GFP_NOWARN)?;
    }
}

/// Faults in the page at `addr` of the current task (through the fault
/// hooks, so a migrated task fetches it).
pub fn mm_fault_in(addr: usize) -> Result {
    // SAFETY: Acts on the current task's address space.
    to_result(unsafe { bindings::cohort_mm_fault_in(addr as _) })
}

/// Gives the current task the address space described by `layout` and
/// `vmas`; `fresh` drops all its mappings first.
pub fn mm_install(layout: &MmLayout, vmas: &[VmaDesc], fresh: bool) -> Result {
    // SAFETY: `vmas` is valid for reads of its length.
    to_result(unsafe {
        bindings::cohort_mm_install(layout, vmas.as_ptr(), vmas.len() as u32, fresh)
    })
}

/// Size of `struct rusage`.
pub const RUSAGE_SIZE: usize = core::mem::size_of::<bindings::rusage>();

/// `wait4(2)` in the current task, a shadow, for its children: the pid
/// reaped (0 with `WNOHANG`), its status and its resource usage.
pub fn shadow_wait4(pid: i32, options: i32, ru: &mut [u8; RUSAGE_SIZE]) -> Result<(i32, i32)> {
    let mut status = 0;
    // SAFETY: `status` and `ru` are writable; `ru` has the size of a
    // `struct rusage`.
    let r =
        unsafe { bindings::cohort_shadow_wait4(pid, options, &mut status, ru.as_mut_ptr().cast()) };
    errno_or(r as i64, (r as i32, status))
}

/// `kill(2)` from the current task (`pid` -1 is refused with `EINVAL`).
pub fn kill_pid(pid: i32, sig: i32) -> Result {
    // SAFETY: Plain values.
    to_result(unsafe { bindings::cohort_kill(pid, sig) })
}

/// `tgkill(2)` from the current task.
pub fn tgkill(tgid: i32, tid: i32, sig: i32) -> Result {
    // SAFETY: Plain values.
    to_result(unsafe { bindings::cohort_tgkill(tgid, tid, sig) })
}

/// `getpgid(2)`, or `getsid(2)` with `session`, from the current task.
pub fn getpgid(pid: i32, session: bool) -> Result<i32> {
    // SAFETY: Plain values.
    let r = unsafe { bindings::cohort_getpgid(pid, session) };
    errno_or(i64::from(r), r)
}

/// Whether the current task has a child on this node (with pid `pid`
/// here, or any for `pid` 0 or less).
pub fn has_child(pid: i32) -> bool {
    // SAFETY: Plain values.
    unsafe { bindings::cohort_has_child(pid) }
}

/// `wait4(2)` of the current task for its children on this node, with the
/// caller's user pointers (0 for none).
pub fn wait4_local(pid: i32, status: usize, options: i32, ru: usize) -> Result<i64> {
    // SAFETY: The pointers are user addresses, checked by the copy
    // routines.
    let r = unsafe {
        bindings::cohort_wait4_local(pid, status as *mut c_void, options, ru as *mut c_void)
    };
    errno_or(r as i64, r as i64)
}

/// A private anonymous area of the current task's address space, unmapped
/// when dropped; for a shadow that passes a call's buffers to the kernel as
/// user memory.
///
/// # Invariants
///
/// `addr..addr + len` was mapped by `cohort_scratch_map` in the mm of the
/// task that made this value, which drops it (it is not `Send`).
pub struct Scratch {
    addr: usize,
    len: usize,
    _not_send: PhantomData<*mut u8>,
}

impl Scratch {
    /// Maps `len` bytes (rounded up to pages).
    pub fn new(len: usize) -> Result<Scratch> {
        let len = len
            .max(1)
            .checked_next_multiple_of(PAGE_SIZE)
            .ok_or(EINVAL)?;
        // SAFETY: Maps in the current task's mm.
        let addr = unsafe { bindings::cohort_scratch_map(len) };
        if addr < 0 {
            return Err(Error::from_errno(addr as i32));
        }
        Ok(Scratch {
            addr: addr as usize,
            len,
            _not_send: PhantomData,
        })
    }

    /// Its address.
    pub fn addr(&self) -> usize {
        self.addr
    }

    /// Its size.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it is empty (never: it has at least a page).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // SAFETY: By the type invariant the area is ours, in this mm.
        unsafe { bindings::cohort_scratch_unmap(self.addr as _, self.len) };
    }
}

/// Runs system call `nr` in the current task with `args` (pointers are
/// user addresses of its mm, such as a [`Scratch`]); returns its result.
pub fn run_syscall(nr: u32, args: &[u64; 6]) -> i64 {
    let mut raw = [0 as crate::ffi::c_ulong; 6];
    for (out, arg) in raw.iter_mut().zip(args) {
        *out = *arg as crate::ffi::c_ulong;
    }
    // SAFETY: `raw` holds six arguments; the kernel checks every pointer.
    unsafe { bindings::cohort_arch_run_syscall(nr, raw.as_ptr()) as i64 }
}

/// Sleeps `ms` milliseconds or until a signal; true if a signal came.
pub fn msleep_interruptible(ms: u32) -> bool {
    // SAFETY: Plain value; sleeps in the current task.
    unsafe { bindings::msleep_interruptible(ms) != 0 }
}

/// Size of the blob [`arch_save`] writes.
pub fn arch_state_size() -> usize {
    // SAFETY: No arguments.
    unsafe { bindings::cohort_arch_state_size() }
}

/// Saves the current task's user registers and FPU state into `buf`.
pub fn arch_save(buf: &mut [u8]) -> Result<usize> {
    // SAFETY: `buf` is valid for writes of its length.
    let n = unsafe { bindings::cohort_arch_save(buf.as_mut_ptr().cast(), buf.len()) };
    errno_or(n as i64, n as usize)
}

/// Loads a blob from [`arch_save`] into the current task.
pub fn arch_load(buf: &[u8]) -> Result {
    // SAFETY: `buf` is valid for reads of its length.
    to_result(unsafe { bindings::cohort_arch_load(buf.as_ptr().cast(), buf.len()) })
}

/// A module's state, reachable from its hub callbacks and task work.
///
/// Installed before the module registers its tables and removed after it
/// unregistered them; [`Global::get`] is safe at any time and returns
/// `None` once removal began.
pub struct Global<T> {
    ptr: AtomicPtr<T>,
}

impl<T: Send + Sync> Global<T> {
    /// An empty slot.
    pub const fn new() -> Self {
        Global {
            ptr: AtomicPtr::new(core::ptr::null_mut()),
        }
    }

    /// Installs `data`; the returned guard removes it when dropped.
    pub fn install(&'static self, data: Arc<T>) -> Result<GlobalGuard<T>> {
        let raw = Arc::into_raw(data) as *mut T;
        if self
            .ptr
            .compare_exchange(
                core::ptr::null_mut(),
                raw,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_err()
        {
            // SAFETY: `raw` was not published.
            drop(unsafe { Arc::from_raw(raw) });
            return Err(EBUSY);
        }
        Ok(GlobalGuard { global: self })
    }

    /// The installed state, if any.
    pub fn get(&self) -> Option<Arc<T>> {
        // SAFETY: Enters an RCU read section, left below.
        unsafe { bindings::cohort_rcu_read_lock() };
        let raw = self.ptr.load(Ordering::Acquire);
        let data = if raw.is_null() {
            None
        } else {
            // SAFETY: The guard holds a reference and drops it only after
            // clearing the pointer and waiting for RCU readers like this one.
            Some(Arc::from(unsafe { ArcBorrow::from_raw(raw) }))
        };
        // SAFETY: Leaves the section entered above.
        unsafe { bindings::cohort_rcu_read_unlock() };
        data
    }
}

/// Removes a [`Global`]'s state when dropped.
pub struct GlobalGuard<T: Send + Sync + 'static> {
    global: &'static Global<T>,
}

impl<T: Send + Sync + 'static> Drop for GlobalGuard<T> {
    fn drop(&mut self) {
        let raw = self
            .global
            .ptr
            .swap(core::ptr::null_mut(), Ordering::AcqRel);
        // SAFETY: Waits for readers that may have loaded the old pointer.
        unsafe { bindings::synchronize_rcu() };
        if !raw.is_null() {
            // SAFETY: `install` leaked this reference into the slot.
            drop(unsafe { Arc::from_raw(raw) });
        }
    }
}

/// The task with process id `pid` in the caller's namespace.
pub fn task_by_pid(pid: i32) -> Option<ARef<Task>> {
    if pid <= 0 {
        return None;
    }
    // SAFETY: `find_get_pid` accepts any number and returns a counted
    // reference or NULL.
    let found = unsafe { bindings::find_get_pid(pid) };
    if found.is_null() {
        return None;
    }
    // SAFETY: `found` is a live pid; `get_pid_task` returns a counted task
    // reference or NULL.
    let task = unsafe { bindings::get_pid_task(found, bindings::pid_type_PIDTYPE_PID) };
    // SAFETY: `found` is the reference taken above.
    unsafe { bindings::put_pid(found) };
    // SAFETY: `task` is a counted reference that the `ARef` now owns.
    NonNull::new(task.cast::<Task>()).map(|t| unsafe { ARef::from_raw(t) })
}

/// Whether the current task may migrate `task` (kill(2)'s rule, or
/// `CAP_SYS_ADMIN`).
pub fn may_control(task: &Task) -> bool {
    // SAFETY: `task` is live.
    unsafe { bindings::cohort_may_control(task.0.get()) }
}

/// Sends signal `sig` to `task`, as the kernel.
pub fn kill(task: &Task, sig: u32) {
    // SAFETY: `task` is live; `send_sig` validates the number.
    unsafe { bindings::send_sig(sig as _, task.0.get(), 1) };
}

/// The current task's name, NUL-padded.
pub fn comm() -> [u8; 16] {
    let mut comm = [0u8; 16];
    // SAFETY: `comm` has room for `TASK_COMM_LEN` bytes.
    unsafe { bindings::cohort_get_comm(comm.as_mut_ptr()) };
    comm
}

/// Changes the return value of the system call the current task returns
/// from (for work queued by that call).
pub fn set_syscall_return(value: i64) {
    // SAFETY: Acts on the current task's registers.
    unsafe { bindings::cohort_set_syscall_return(value as _) };
}

/// `task`'s thread id and process id, in the caller's pid namespace.
///
/// (6.12's `Task::pid` does not read the right field on this build.)
pub fn task_ids(task: &Task) -> (i32, i32) {
    let mut tgid = 0;
    // SAFETY: `task` is live; `tgid` is valid for writes.
    let pid = unsafe { bindings::cohort_task_pid(task.0.get(), &mut tgid) };
    (pid, tgid)
}

/// Keeps a module loaded while it lives: rmmod fails with `EBUSY`.
pub struct ModulePin(&'static ThisModule);

impl ModulePin {
    /// Pins `module`; fails with `ENODEV` when it is already unloading.
    pub fn new(module: &'static ThisModule) -> Result<ModulePin> {
        // SAFETY: `module` is the caller's own, live module.
        if unsafe { bindings::cohort_module_pin(module.as_ptr()) } {
            Ok(ModulePin(module))
        } else {
            Err(ENODEV)
        }
    }
}

impl Drop for ModulePin {
    fn drop(&mut self) {
        // SAFETY: `new` took this reference.
        unsafe { bindings::cohort_module_unpin(self.0.as_ptr()) };
    }
}
