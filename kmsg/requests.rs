// SPDX-License-Identifier: GPL-2.0

//! The wait station: requests waiting for their replies.
//!
//! A requester parks an entry keyed by request id, sends, and sleeps on the
//! station's condition variable until the receive path (or a peer's death,
//! or its own deadline) settles the entry. Replies move their buffer into
//! the entry: nothing is copied on the receive path.

use kernel::alloc::KVVec;
use kernel::cohort::{self, errno};
use kernel::new_condvar;
use kernel::new_mutex;
use kernel::prelude::*;
use kernel::sync::{CondVar, CondVarTimeoutResult, Mutex};
use kernel::time::msecs_to_jiffies;

/// How a request ended.
pub(crate) type Outcome = core::result::Result<KVVec<u8>, Error>;

struct Pending {
    id: u64,
    node: u32,
    outcome: Option<Outcome>,
}

/// Requests waiting for replies.
#[pin_data]
pub(crate) struct Requests {
    #[pin]
    pending: Mutex<KVec<Pending>>,
    #[pin]
    settled: CondVar,
}

impl Requests {
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            pending <- new_mutex!(KVec::new()),
            settled <- new_condvar!(),
        })
    }

    /// Parks request `id` to `node`; call before sending it.
    pub(crate) fn park(&self, id: u64, node: u32) -> Result {
        self.pending.lock().push(
            Pending {
                id,
                node,
                outcome: None,
            },
            GFP_KERNEL,
        )?;
        Ok(())
    }

    /// Settles request `id` from `node`; a reply nobody waits for (late,
    /// or from the wrong node) is dropped and `false` returned.
    pub(crate) fn settle(&self, id: u64, node: u32, outcome: Outcome) -> bool {
        let mut pending = self.pending.lock();
        let found = pending
            .iter_mut()
            .find(|p| p.id == id && p.node == node && p.outcome.is_none());
        match found {
            Some(entry) => {
                entry.outcome = Some(outcome);
                drop(pending);
                self.settled.notify_all();
                true
            }
            None => false,
        }
    }

    /// Fails every request waiting on `node` (or on any node for `None`).
    pub(crate) fn fail(&self, node: Option<u32>, error: Error) {
        let mut pending = self.pending.lock();
        for entry in pending.iter_mut() {
            if entry.outcome.is_none() && node.is_none_or(|n| n == entry.node) {
                entry.outcome = Some(Err(error));
            }
        }
        drop(pending);
        self.settled.notify_all();
    }

    /// Waits until request `id` is settled or `timeout_ms` passed, then
    /// removes it. A signal ends the wait with `EINTR`.
    pub(crate) fn wait(&self, id: u64, timeout_ms: u32) -> Outcome {
        let deadline = cohort::now_ns().saturating_add(u64::from(timeout_ms) * 1_000_000);
        let mut pending = self.pending.lock();
        loop {
            let index = pending.iter().position(|p| p.id == id);
            let Some(index) = index else {
                // Only `wait` removes entries, so this cannot happen.
                return Err(EINVAL);
            };
            let settled = pending
                .get_mut(index)
                .and_then(|entry| entry.outcome.take());
            let now = cohort::now_ns();
            let outcome = match settled {
                Some(outcome) => Some(outcome),
                None if now >= deadline => Some(Err(errno::ETIMEDOUT())),
                None => None,
            };
            if let Some(outcome) = outcome {
                cohort::vec::swap_remove(&mut *pending, index);
                return outcome;
            }
            let left_ms = ((deadline - now) / 1_000_000).max(1) as u32;
            if let CondVarTimeoutResult::Signal { .. } =
                self.settled
                    .wait_interruptible_timeout(&mut pending, msecs_to_jiffies(left_ms))
            {
                if let Some(index) = pending.iter().position(|p| p.id == id) {
                    cohort::vec::swap_remove(&mut *pending, index);
                }
                return Err(EINTR);
            }
        }
    }
}
