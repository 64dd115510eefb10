// SPDX-License-Identifier: GPL-2.0

//! Task life-cycle events: fork, creation, exit and exec.

use super::Slot;
use crate::{bindings, prelude::*, task::Task};
use core::{ffi::c_void, marker::PhantomData};

/// Receives task life-cycle events from the hub.
///
/// Every method runs in the context of the task concerned (the parent for
/// [`TaskOps::created`]) and may sleep.
#[vtable]
pub trait TaskOps {
    /// `child` was created by `parent` with `clone_flags` and is about to
    /// run for the first time; the fork can no longer fail.
    fn created(_parent: &Task, _child: &Task, _clone_flags: u64) {
        crate::build_error(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// `task` is exiting with `code`; it still has its mm and files.
    fn exit(_task: &Task, _code: i64) {
        crate::build_error(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// `task` passed the point of no return of execve(): it is the only
    /// thread of its group and still has its old mm.
    fn exec(_task: &Task) {
        crate::build_error(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// The current task is about to fork or clone with `clone_flags`; an
    /// error fails the call.
    fn fork(_clone_flags: u64) -> Result {
        crate::build_error(crate::error::VTABLE_DEFAULT_ERROR)
    }
}

/// The task slot filled with `T`'s ops.
pub struct TaskSlot<T: TaskOps>(PhantomData<T>);

impl<T: TaskOps> TaskSlot<T> {
    const TABLE: bindings::cohort_task_ops = bindings::cohort_task_ops {
        created: if T::HAS_CREATED {
            Some(Self::created)
        } else {
            None
        },
        exit: if T::HAS_EXIT { Some(Self::exit) } else { None },
        exec: if T::HAS_EXEC { Some(Self::exec) } else { None },
        fork: if T::HAS_FORK { Some(Self::fork) } else { None },
    };

    extern "C" fn fork(clone_flags: u64) -> crate::ffi::c_int {
        match T::fork(clone_flags) {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        }
    }

    /// # Safety
    ///
    /// Called by the hub with valid task pointers.
    unsafe extern "C" fn created(
        parent: *mut bindings::task_struct,
        child: *mut bindings::task_struct,
        clone_flags: u64,
    ) {
        // SAFETY: The hub passes live tasks that outlast the call.
        let (parent, child) = unsafe { (&*parent.cast::<Task>(), &*child.cast::<Task>()) };
        T::created(parent, child, clone_flags);
    }

    /// # Safety
    ///
    /// Called by the hub with a valid task pointer.
    unsafe extern "C" fn exit(task: *mut bindings::task_struct, code: crate::ffi::c_long) {
        // SAFETY: The hub passes the live exiting task.
        T::exit(unsafe { &*task.cast::<Task>() }, code as i64);
    }

    /// # Safety
    ///
    /// Called by the hub with a valid task pointer.
    unsafe extern "C" fn exec(task: *mut bindings::task_struct) {
        // SAFETY: The hub passes the live task doing the exec.
        T::exec(unsafe { &*task.cast::<Task>() });
    }
}

impl<T: TaskOps> Slot for TaskSlot<T> {
    const SLOT: bindings::cohort_slot = bindings::cohort_slot_COHORT_SLOT_TASK;

    fn table() -> *const c_void {
        let table: &'static bindings::cohort_task_ops = &Self::TABLE;
        (table as *const bindings::cohort_task_ops).cast()
    }
}

/// Whether a task with id `pid` exists in the caller's pid namespace.
pub fn pid_exists(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    // SAFETY: `find_get_pid` accepts any number and returns a counted
    // reference or NULL.
    let found = unsafe { bindings::find_get_pid(pid) };
    if found.is_null() {
        return false;
    }
    // SAFETY: `found` is the reference `find_get_pid` just took.
    unsafe { bindings::put_pid(found) };
    true
}
