// SPDX-License-Identifier: GPL-2.0

//! Installing an ops table in a hub slot.

use crate::{bindings, error::to_result, prelude::*, str::CStr};
use core::{ffi::c_void, marker::PhantomData};

/// A hub slot together with the ops table that fills it.
///
/// Implemented by the `*Slot` types of this module (for example
/// [`super::TaskSlot`]), each generic over the module's ops type.
pub trait Slot {
    /// The slot's number in `enum cohort_slot`.
    const SLOT: bindings::cohort_slot;

    /// The C ops table, which lives for the whole program.
    fn table() -> *const c_void;
}

/// An ops table installed in its hub slot; dropping it unregisters the table.
///
/// Unregistering waits until no call into the table is in flight, so the
/// module must first wake anything its ops may be blocked on.
pub struct Registration<S: Slot> {
    _slot: PhantomData<S>,
}

impl<S: Slot> Registration<S> {
    /// Installs `S`'s table, shown in `/sys/kernel/cohort/ops` as owned by
    /// `owner`.
    ///
    /// Fails with `EBUSY` when another module holds the slot and with
    /// `EINVAL` when this node's identity is invalid.
    pub fn register(owner: &CStr) -> Result<Self> {
        // SAFETY: `S::table()` points to a table of the type `S::SLOT` takes
        // that lives forever; the hub copies `owner`.
        to_result(unsafe { bindings::cohort_register(S::SLOT, S::table(), owner.as_char_ptr()) })?;
        Ok(Self { _slot: PhantomData })
    }
}

impl<S: Slot> Drop for Registration<S> {
    fn drop(&mut self) {
        // SAFETY: `register` installed exactly this table in this slot.
        unsafe { bindings::cohort_unregister(S::SLOT, S::table()) };
    }
}

// SAFETY: A registration holds no data; the hub serialises (un)registration.
unsafe impl<S: Slot> Send for Registration<S> {}
// SAFETY: A registration has no methods that take `&self`.
unsafe impl<S: Slot> Sync for Registration<S> {}
