// SPDX-License-Identifier: GPL-2.0

//! A spinlock that also keeps softirqs off (`spin_lock_bh`), for state
//! shared between process context and softirq context (socket callbacks).

use crate::{bindings, sync::lock::Backend};

#[cfg(CONFIG_PREEMPT_RT)]
compile_error!("SpinLockBh assumes spinlock_t wraps a raw_spinlock_t (no PREEMPT_RT)");

/// A `spinlock_t` taken with `spin_lock_bh()`: usable from process context
/// for data that softirq code (taking it too) also touches.
pub type SpinLockBh<T> = crate::sync::lock::Lock<T, SpinLockBhBackend>;

/// Creates a [`SpinLockBh`] initialiser with a static lock class.
#[macro_export]
macro_rules! new_spinlock_bh {
    ($inner:expr $(, $name:literal)? $(,)?) => {
        $crate::cohort::sync_bh::SpinLockBh::new(
            $inner, $crate::optional_name!($($name)?), $crate::static_lock_class!())
    };
}
pub use new_spinlock_bh;

/// The [`SpinLockBh`] backend.
pub struct SpinLockBhBackend;

// SAFETY: The kernel's `spinlock_t` provides mutual exclusion; disabling
// bottom halves while it is held keeps a softirq on the same CPU from
// spinning on it. `relock` uses the default, the same lock method.
unsafe impl Backend for SpinLockBhBackend {
    type State = bindings::spinlock_t;
    type GuardState = ();

    unsafe fn init(
        ptr: *mut Self::State,
        name: *const crate::ffi::c_char,
        key: *mut bindings::lock_class_key,
    ) {
        // SAFETY: `ptr` is valid for writes; `name` and `key` live forever.
        unsafe { bindings::__spin_lock_init(ptr, name, key) }
    }

    unsafe fn lock(ptr: *mut Self::State) -> Self::GuardState {
        // SAFETY: `ptr` points to an initialised lock. Without PREEMPT_RT
        // (which Cohort's config does not set) a `spinlock_t` is a union
        // whose first member is its `raw_spinlock_t`.
        unsafe { bindings::_raw_spin_lock_bh(ptr.cast::<bindings::raw_spinlock_t>()) }
    }

    unsafe fn unlock(ptr: *mut Self::State, _guard_state: &Self::GuardState) {
        // SAFETY: The caller holds the lock taken by `lock`.
        unsafe { bindings::_raw_spin_unlock_bh(ptr.cast::<bindings::raw_spinlock_t>()) }
    }
}
