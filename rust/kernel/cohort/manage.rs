// SPDX-License-Identifier: GPL-2.0

//! Process management: a process's migration settings, the kinds of task
//! that never move, permission for requests from other nodes, the node's
//! admission policy and its process list (pcntl(2)'s management commands).
//!
//! C header: [`include/linux/cohort.h`](srctree/include/linux/cohort.h)

use crate::{bindings, error::to_result, prelude::*, task::Task};

/// `PCNTL_F_*` settings a process keeps (forbidden, allowed, group-fork,
/// self-only).
pub const SETTINGS: u32 = bindings::PCNTL_F_FORBIDDEN
    | bindings::PCNTL_F_ALLOWED
    | bindings::PCNTL_F_GROUP_FORK
    | bindings::PCNTL_F_SELF_ONLY;

/// A process's migration settings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    /// Bits of [`SETTINGS`].
    pub flags: u32,
    /// Migration group, 0 for none.
    pub group: u32,
}

/// `task`'s process's settings.
pub fn settings(task: &Task) -> Settings {
    let mut group = 0;
    // SAFETY: `task` is live; `group` is valid for writes.
    let flags = unsafe { bindings::cohort_proc_settings(task.0.get(), &mut group) };
    Settings { flags, group }
}

/// Changes `task`'s process's settings: clears `clear`, sets `set` (bits of
/// [`SETTINGS`]) and, when given, sets its group.
///
/// Fails with `EINVAL` for other bits, `ESRCH` when the process is exiting.
pub fn update(task: &Task, clear: u32, set: u32, group: Option<u32>) -> Result {
    let group_ptr = group
        .as_ref()
        .map_or(core::ptr::null(), |g| g as *const u32);
    // SAFETY: `task` is live; `group_ptr` is NULL or points to a `u32` that
    // outlives the call.
    to_result(unsafe { bindings::cohort_proc_update(task.0.get(), clear, set, group_ptr) })
}

/// Whether `task` is of a kind that stays on its node: `EPERM` for the init
/// of a pid namespace or a kernel thread, `EBUSY` while it is traced, in an
/// `execve()` or dumping core.
pub fn refusal(task: &Task) -> Result {
    // SAFETY: `task` is live.
    to_result(unsafe { bindings::cohort_migration_refusal(task.0.get()) })
}

/// The ids of whoever asks for a command, as kill(2)'s permission rule
/// takes them (initial user namespace).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caller {
    /// Real uid.
    pub uid: u32,
    /// Effective uid.
    pub euid: u32,
    /// Has `CAP_SYS_ADMIN`.
    pub admin: bool,
}

impl Caller {
    /// The current task's ids.
    pub fn current() -> Caller {
        let (mut uid, mut euid, mut admin) = (0, 0, false);
        // SAFETY: The three pointers are valid for writes.
        unsafe { bindings::cohort_current_ids(&mut uid, &mut euid, &mut admin) };
        Caller { uid, euid, admin }
    }

    /// Whether this caller may act on `task` (kill(2)'s rule, or
    /// `CAP_SYS_ADMIN`).
    pub fn may_control(&self, task: &Task) -> bool {
        // SAFETY: `task` is live.
        unsafe { bindings::cohort_may_control_as(task.0.get(), self.uid, self.euid, self.admin) }
    }
}

/// Nanoseconds since `task`'s process was created on this node.
pub fn age_ns(task: &Task) -> u64 {
    // SAFETY: `task` is live.
    unsafe { bindings::cohort_task_age_ns(task.0.get()) }
}

/// Nanoseconds of `CLOCK_BOOTTIME`.
pub fn boottime_ns() -> u64 {
    // SAFETY: No preconditions.
    unsafe { bindings::ktime_get_boot_fast_ns() }
}

/// Whether this node takes a process of `uid` now: `0`, or the
/// `PCNTL_NODE_REFUSE_*` reasons it does not.
pub fn admission(uid: u32) -> u32 {
    // SAFETY: No preconditions.
    unsafe { bindings::cohort_admission(uid) }
}

/// Whether the node's `migration_policy` is `opt-in`.
pub fn opt_in() -> bool {
    // SAFETY: No preconditions.
    unsafe { bindings::cohort_policy_opt_in() }
}

/// Memory available on this node for new allocations without swapping
/// (`si_mem_available()`, as `MemAvailable` in `/proc/meminfo`), in KiB.
/// Cheap: a few counters, no walk.
pub fn available_kb() -> u64 {
    // SAFETY: No preconditions.
    let pages = unsafe { bindings::si_mem_available() };
    (pages.max(0) as u64) * (crate::page::PAGE_SIZE as u64 / 1024)
}

/// This node's load and admission state (`nr_distributed` left 0).
pub fn node_info() -> bindings::pcntl_node_info {
    let mut info = bindings::pcntl_node_info::default();
    // SAFETY: `info` is valid for writes.
    unsafe { bindings::cohort_node_info(&mut info) };
    info
}

/// A user process of this node (`struct cohort_ps_entry`).
pub type PsEntry = bindings::cohort_ps_entry;

/// Lists this node's user processes into `out` (cleared first; at most its
/// capacity). Returns how many there are, which may be more.
pub fn ps(out: &mut KVVec<PsEntry>) -> u32 {
    // SAFETY: `PsEntry` is plain data: forgetting entries drops nothing.
    unsafe { out.set_len(0) };
    let max = u32::try_from(out.capacity()).unwrap_or(u32::MAX);
    // SAFETY: `out` has room for `max` entries.
    let total = unsafe { bindings::cohort_ps(out.as_mut_ptr(), max) };
    // SAFETY: `cohort_ps` initialised the first `min(total, max)` entries.
    unsafe { out.set_len(total.min(max) as usize) };
    total
}
