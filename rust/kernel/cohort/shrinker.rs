// SPDX-License-Identifier: GPL-2.0

//! Shrinkers: memory a module can give back when its node runs low.
//!
//! Reclaim (kswapd, or any task allocating in direct reclaim) asks each
//! registered shrinker how many objects it could free and then to free some.
//! Both calls come from contexts that may hold any lock a caller holds
//! while allocating memory, so an implementation must neither take such a
//! lock nor wait for long: Cohort's shrinkers only record the request and
//! wake a thread of their own.
//!
//! C header: [`include/linux/shrinker.h`](srctree/include/linux/shrinker.h)

use crate::ffi::c_ulong;
use crate::{bindings, c_str, prelude::*, str::CStr, sync::Arc};
use core::{marker::PhantomData, ptr::NonNull};

/// What a shrinker does when reclaim calls it.
pub trait Reclaim: Send + Sync + 'static {
    /// How many objects could be freed now (0: none).
    fn count(&self) -> usize;

    /// Frees, or starts freeing, up to `nr` objects. Returns how many were
    /// freed by the time it returns, or `None` to tell reclaim that nothing
    /// more can be done in this call (`SHRINK_STOP`): the objects of a
    /// shrinker that frees them in a thread of its own are freed later.
    fn scan(&self, nr: usize) -> Option<usize>;
}

/// A registered shrinker calling `T`'s [`Reclaim`]; dropping it
/// unregisters it and waits for calls in flight.
///
/// # Invariants
///
/// `ptr` is a shrinker allocated with `shrinker_alloc()` and registered,
/// whose `private_data` is a pointer from `Arc::<T>::into_raw()` owned by
/// this value.
pub struct Shrinker<T: Reclaim> {
    ptr: NonNull<bindings::shrinker>,
    _data: PhantomData<Arc<T>>,
}

// SAFETY: The shrinker is only unregistered through the handle, which any
// thread may do; `T` is `Send + Sync`.
unsafe impl<T: Reclaim> Send for Shrinker<T> {}
// SAFETY: The handle has no `&self` methods.
unsafe impl<T: Reclaim> Sync for Shrinker<T> {}

impl<T: Reclaim> Shrinker<T> {
    /// Registers a shrinker called `name` (shown in debugfs as
    /// `shrinker/<name>-<id>`) over `data`; `seeks` is the cost of
    /// recreating an object relative to the kernel's `DEFAULT_SEEKS` (2).
    ///
    /// # Errors
    ///
    /// `ENOMEM`.
    pub fn register(name: &CStr, data: Arc<T>, seeks: u32) -> Result<Self> {
        // SAFETY: The format is "%s" with a NUL-terminated argument.
        let raw =
            unsafe { bindings::shrinker_alloc(0, c_str!("%s").as_char_ptr(), name.as_char_ptr()) };
        let ptr = NonNull::new(raw).ok_or(ENOMEM)?;
        let s = ptr.as_ptr();
        // SAFETY: `s` was just allocated and is not registered: nothing
        // else uses it. Registering publishes the fields set before it.
        unsafe {
            (*s).count_objects = Some(Self::count_objects);
            (*s).scan_objects = Some(Self::scan_objects);
            (*s).seeks = seeks.min(i32::MAX as u32) as i32;
            (*s).private_data = Arc::into_raw(data).cast_mut().cast();
            bindings::shrinker_register(s);
        }
        // INVARIANT: allocated, registered, `private_data` from `into_raw`.
        Ok(Self {
            ptr,
            _data: PhantomData,
        })
    }

    /// # Safety
    ///
    /// `s` is a shrinker registered by [`Shrinker::register`] over a `T`,
    /// not freed yet.
    unsafe fn data<'a>(s: *mut bindings::shrinker) -> &'a T {
        // SAFETY: By the type invariants `private_data` came from
        // `Arc::<T>::into_raw()`, and `drop` releases it only after
        // `shrinker_free()` waited for every call in flight.
        unsafe { &*(*s).private_data.cast::<T>() }
    }

    unsafe extern "C" fn count_objects(
        s: *mut bindings::shrinker,
        _sc: *mut bindings::shrink_control,
    ) -> c_ulong {
        // SAFETY: Reclaim calls this only for a registered shrinker, ours.
        let data = unsafe { Self::data(s) };
        data.count() as c_ulong
    }

    unsafe extern "C" fn scan_objects(
        s: *mut bindings::shrinker,
        sc: *mut bindings::shrink_control,
    ) -> c_ulong {
        // SAFETY: Reclaim calls this only for a registered shrinker, ours,
        // with a valid `sc`.
        let (data, nr) = unsafe { (Self::data(s), (*sc).nr_to_scan) };
        match data.scan(nr as usize) {
            Some(freed) => freed as c_ulong,
            None => bindings::SHRINK_STOP as c_ulong,
        }
    }
}

impl<T: Reclaim> Drop for Shrinker<T> {
    fn drop(&mut self) {
        let s = self.ptr.as_ptr();
        // SAFETY: By the type invariants `s` is registered and its
        // `private_data` ours; `shrinker_free()` unregisters it and waits
        // for the calls in flight, after which nobody reads `private_data`.
        unsafe {
            let data = (*s).private_data.cast::<T>().cast_const();
            bindings::shrinker_free(s);
            drop(Arc::from_raw(data));
        }
    }
}
