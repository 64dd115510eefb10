// SPDX-License-Identifier: GPL-2.0

//! Kernel threads.

use crate::{bindings, c_str, prelude::*, str::CStr};
use core::ffi::c_void;

/// A kernel thread running a closure; dropping the handle stops it.
///
/// The closure should return when [`should_stop`] says so (checking it at
/// least every few hundred milliseconds, or being woken by whatever it
/// blocks on); stopping waits for it to return.
pub struct Thread {
    task: *mut bindings::task_struct,
}

// SAFETY: The handle only stops the thread, which any thread may do.
unsafe impl Send for Thread {}
// SAFETY: The handle has no `&self` methods that mutate.
unsafe impl Sync for Thread {}

/// Whether the current kernel thread has been asked to stop.
pub fn should_stop() -> bool {
    // SAFETY: Callable from any kernel thread.
    unsafe { bindings::kthread_should_stop() }
}

/// Sleeps about `ms` milliseconds (less if the thread is asked to stop).
pub fn sleep_ms(ms: u32) {
    // SAFETY: Callable from process context; a wake-up ends it early.
    unsafe { bindings::schedule_timeout_interruptible(crate::time::msecs_to_jiffies(ms) as _) };
}

/// Sleeps at least `ms` milliseconds whatever signals are pending
/// (`msleep()`): a task that must not spin gives the CPU away. Process
/// context only.
pub fn msleep(ms: u32) {
    // SAFETY: Callable from process context.
    unsafe { bindings::msleep(ms) };
}

impl Thread {
    /// Starts a kernel thread called `name` that runs `f`.
    pub fn spawn<F: FnOnce() + Send + 'static>(name: &CStr, f: F) -> Result<Self> {
        let data = KBox::into_raw(KBox::new(f, GFP_KERNEL)?);
        // SAFETY: `run::<F>` takes ownership of `data`; the format is "%s"
        // with a NUL-terminated argument.
        let task = unsafe {
            bindings::kthread_create_on_node(
                Some(Self::run::<F>),
                data.cast(),
                bindings::NUMA_NO_NODE,
                c_str!("%s").as_char_ptr(),
                name.as_char_ptr(),
            )
        };
        if let Err(e) = crate::error::from_err_ptr(task) {
            // SAFETY: The thread was not created, so `data` is still ours.
            drop(unsafe { KBox::from_raw(data) });
            return Err(e);
        }
        // SAFETY: `task` is a new kthread; the reference keeps its
        // task_struct valid for `kthread_stop` even after it exits.
        unsafe {
            bindings::get_task_struct(task);
            bindings::wake_up_process(task);
        }
        Ok(Self { task })
    }

    unsafe extern "C" fn run<F: FnOnce() + Send + 'static>(data: *mut c_void) -> core::ffi::c_int {
        // SAFETY: `spawn` passed ownership of a `KBox<F>`.
        let f = unsafe { KBox::from_raw(data.cast::<F>()) };
        KBox::into_inner(f)();
        // `kthread_stop` expects the thread to be there until it is asked.
        while !should_stop() {
            sleep_ms(100);
        }
        0
    }
}

impl Drop for Thread {
    fn drop(&mut self) {
        // SAFETY: `spawn` holds a task reference, so `kthread_stop` is valid
        // whether or not the thread still runs; the reference is dropped
        // after it.
        unsafe {
            bindings::kthread_stop(self.task);
            bindings::put_task_struct(self.task);
        }
    }
}
