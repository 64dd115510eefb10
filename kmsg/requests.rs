// SPDX-License-Identifier: GPL-2.0

//! The wait station: requests waiting for their replies.
//!
//! A requester parks an entry keyed by request id and deadline, sends, and
//! sleeps on the station's condition variable until the receive path, a
//! peer's death or the heartbeat thread's sweep of overdue entries
//! ([`Requests::expire`]) settles it. Sleeping without a timer of its own
//! keeps timer set-up off the round trip; the sweep runs every heartbeat
//! interval, so a request fails at most that much after its deadline.
//! Deadlines run on this node's running time: time the heartbeat thread
//! found this node not running ([`Requests::stalled`]) does not count, as
//! a reply that came meanwhile may not have been read yet.
//! Replies move their buffer into the entry: nothing is copied on the
//! receive path.

use core::sync::atomic::{AtomicU64, Ordering};
use kernel::alloc::KVVec;
use kernel::cohort::sync_bh::SpinLockBh;
use kernel::cohort::{self, errno};
use kernel::prelude::*;
use kernel::sync::CondVar;
use kernel::{new_condvar, new_spinlock_bh};

/// How a request ended.
pub(crate) type Outcome = core::result::Result<KVVec<u8>, Error>;

struct Pending {
    id: u64,
    node: u32,
    deadline_ns: u64,
    outcome: Option<Outcome>,
}

/// Requests waiting for replies. Replies settle them from the socket's
/// receive callback (softirq), hence the bottom-half-safe lock.
#[pin_data]
pub(crate) struct Requests {
    #[pin]
    pending: SpinLockBh<KVec<Pending>>,
    #[pin]
    settled: CondVar,
    /// Time this node did not run, in ns, since the module loaded.
    stalled_ns: AtomicU64,
}

impl Requests {
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            pending <- new_spinlock_bh!(KVec::new()),
            settled <- new_condvar!(),
            stalled_ns: AtomicU64::new(0),
        })
    }

    /// Parks request `id` to `node`, due within `timeout_ms`; call before
    /// sending it.
    pub(crate) fn park(&self, id: u64, node: u32, timeout_ms: u32) -> Result {
        let deadline_ns = self
            .running_ns(cohort::now_ns())
            .saturating_add(u64::from(timeout_ms) * 1_000_000);
        self.pending.lock().push(
            Pending {
                id,
                node,
                deadline_ns,
                outcome: None,
            },
            GFP_ATOMIC,
        )?;
        Ok(())
    }

    /// The running time at monotonic time `now_ns`: `now_ns` less the
    /// time this node did not run.
    fn running_ns(&self, now_ns: u64) -> u64 {
        now_ns.saturating_sub(self.stalled_ns.load(Ordering::Relaxed))
    }

    /// This node did not run for `ns`: no deadline runs meanwhile.
    pub(crate) fn stalled(&self, ns: u64) {
        self.stalled_ns.fetch_add(ns, Ordering::Relaxed);
    }

    /// Fails the requests whose deadline passed at monotonic time `now_ns`
    /// with `ETIMEDOUT`.
    pub(crate) fn expire(&self, now_ns: u64) {
        let now_ns = self.running_ns(now_ns);
        let mut pending = self.pending.lock();
        let mut expired = false;
        for entry in pending.iter_mut() {
            if entry.outcome.is_none() && entry.deadline_ns <= now_ns {
                entry.outcome = Some(Err(errno::ETIMEDOUT()));
                expired = true;
            }
        }
        drop(pending);
        if expired {
            self.settled.notify_all();
        }
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

    /// Waits until request `id` is settled, then removes it. When
    /// `interruptible`, a signal ends the wait with `EINTR`; otherwise the
    /// heartbeat thread's expiry and peer-death failures bound it.
    pub(crate) fn wait(&self, id: u64, interruptible: bool) -> Outcome {
        let mut pending = self.pending.lock();
        loop {
            let Some(index) = pending.iter().position(|p| p.id == id) else {
                // Only `wait` removes entries, so this cannot happen.
                return Err(EINVAL);
            };
            let settled = pending
                .get_mut(index)
                .and_then(|entry| entry.outcome.take());
            if let Some(outcome) = settled {
                cohort::vec::swap_remove(&mut *pending, index);
                return outcome;
            }
            if !interruptible {
                self.settled.wait(&mut pending);
            } else if self.settled.wait_interruptible(&mut pending) {
                if let Some(index) = pending.iter().position(|p| p.id == id) {
                    cohort::vec::swap_remove(&mut *pending, index);
                }
                return Err(EINTR);
            }
        }
    }
}
