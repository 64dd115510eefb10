// SPDX-License-Identifier: GPL-2.0
//! Errors returned by the protocol state machines.
//!
//! Every handler that returns an error leaves its state machine unchanged,
//! so the caller may drop the event or deliver it again later.

/// Why a state machine refused an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// A table is full (or its allocation failed): retry the event later.
    NoSpace,
    /// The caller has too many requests in flight: wait for one to finish.
    Busy,
    /// A peer sent a message that the protocol never sends in this state.
    Protocol,
    /// An argument is out of range (a node id, a handle, a count).
    Invalid,
    /// The object the event names does not exist here.
    NotFound,
}
