// SPDX-License-Identifier: GPL-2.0

//! Kernel threads.

use crate::{bindings, c_str, prelude::*, str::CStr};
use core::ffi::c_void;

/// A kernel thread running a closure; dropping the handle stops it.
///
/// The closure should return when [`should_stop`] says so (checking it at
/// least every few hundred milliseconds, or being woken by whatever it
/// blocks on); stopping waits for it to return. A thread stopped before it
/// ever ran never calls the closure: the closure is then dropped when the
/// handle is, so that what it owns (references counted, a device
/// attachment) is released either way.
///
/// # Invariants
///
/// `task` is a kthread created by [`Thread::spawn`] whose task reference
/// the handle holds. `data` is the `KBox<F>` the thread's function takes
/// ownership of when it runs, and `drop_data` frees it as that type; the
/// thread's function never returns `-EINTR`, which `kthread_stop` returns
/// only for a thread stopped before its function was called.
pub struct Thread {
    task: *mut bindings::task_struct,
    data: *mut c_void,
    drop_data: unsafe fn(*mut c_void),
}

// SAFETY: The handle only stops the thread, which any thread may do, and
// may drop the closure, which is `Send`.
unsafe impl Send for Thread {}
// SAFETY: The handle has no `&self` methods.
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

/// Gives the CPU to another task that needs it, if one does
/// (`cond_resched()`). Process context only. A kernel thread that loops
/// without sleeping (a receiver that always finds bytes) calls it on each
/// turn: on a kernel without preemption nothing else runs on its CPU until
/// it does, not even the heartbeats that say the node is alive.
pub fn cond_resched() {
    // Under full preemption the scheduler preempts the loop itself, and
    // there is no `__cond_resched()` to call.
    #[cfg(any(not(CONFIG_PREEMPTION), CONFIG_PREEMPT_DYNAMIC))]
    // SAFETY: Callable from process context, which the caller is in.
    unsafe {
        bindings::__cond_resched()
    };
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
        // INVARIANT: `data` is the `KBox<F>` that `run::<F>` takes, and
        // `drop_box::<F>` frees it as that type.
        Ok(Self {
            task,
            data: data.cast(),
            drop_data: Self::drop_box::<F>,
        })
    }

    /// Frees the closure of a thread that never ran.
    ///
    /// # Safety
    ///
    /// `data` is a `KBox<F>` turned into a raw pointer, owned by the caller.
    unsafe fn drop_box<F>(data: *mut c_void) {
        // SAFETY: As the function's safety requirements say.
        drop(unsafe { KBox::from_raw(data.cast::<F>()) });
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
        let ret = unsafe {
            let ret = bindings::kthread_stop(self.task);
            bindings::put_task_struct(self.task);
            ret
        };
        if ret == -(bindings::EINTR as i32) {
            // SAFETY: By the type invariants, `-EINTR` means the thread was
            // stopped before `run` took `data`: it is still the handle's.
            unsafe { (self.drop_data)(self.data) };
        }
    }
}
