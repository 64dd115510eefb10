// SPDX-License-Identifier: GPL-2.0
//! Where a state machine puts the actions an event produced.
//!
//! The state machines are pure: they take an event and push the actions it
//! causes ("send this message to these nodes", "the lock is granted") into a
//! [`Sink`] owned by the caller, who then carries them out. Pushing cannot
//! fail; a kernel caller that runs out of memory while recording actions
//! treats the affected peers as failed, as it would a broken connection.

/// Receiver of the actions of type `A` produced by one event.
pub trait Sink<A> {
    /// Records one action.
    fn push(&mut self, action: A);
}

#[cfg(test)]
impl<A> Sink<A> for std::vec::Vec<A> {
    fn push(&mut self, action: A) {
        std::vec::Vec::push(self, action);
    }
}
