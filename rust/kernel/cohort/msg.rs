// SPDX-License-Identifier: GPL-2.0

//! The message transport between nodes.

use super::Slot;
use crate::{bindings, prelude::*};
use core::{ffi::c_void, marker::PhantomData};

/// Provides the message transport to the rest of the cluster.
#[vtable]
pub trait MsgOps {
    /// Whether node `node` (never this node) is up.
    fn peer_online(_node: u32) -> bool {
        crate::build_error(crate::error::VTABLE_DEFAULT_ERROR)
    }
}

/// The message slot filled with `T`'s ops.
pub struct MsgSlot<T: MsgOps>(PhantomData<T>);

impl<T: MsgOps> MsgSlot<T> {
    const TABLE: bindings::cohort_msg_ops = bindings::cohort_msg_ops {
        peer_online: if T::HAS_PEER_ONLINE { Some(Self::peer_online) } else { None },
    };

    extern "C" fn peer_online(node: crate::ffi::c_uint) -> bool {
        T::peer_online(node)
    }
}

impl<T: MsgOps> Slot for MsgSlot<T> {
    const SLOT: bindings::cohort_slot = bindings::cohort_slot_COHORT_SLOT_MSG;

    fn table() -> *const c_void {
        let table: &'static bindings::cohort_msg_ops = &Self::TABLE;
        (table as *const bindings::cohort_msg_ops).cast()
    }
}
