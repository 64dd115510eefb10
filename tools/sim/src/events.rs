// SPDX-License-Identifier: GPL-2.0
//! What the simulators share to run: a queue of timed events, and the
//! trace of the last events a failure prints (`world` keeps its own,
//! typed).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

/// Events by time; events of one time come in the order they were pushed,
/// so that a seed replays exactly.
pub struct Queue<E> {
    heap: BinaryHeap<Reverse<(u64, u64, usize)>>,
    slots: Vec<Option<E>>,
    free: Vec<usize>,
    seq: u64,
}

impl<E> Default for Queue<E> {
    fn default() -> Self {
        Queue {
            heap: BinaryHeap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            seq: 0,
        }
    }
}

impl<E> Queue<E> {
    /// `event` at time `at`.
    pub fn push(&mut self, at: u64, event: E) {
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot] = Some(event);
                slot
            }
            None => {
                self.slots.push(Some(event));
                self.slots.len() - 1
            }
        };
        self.seq += 1;
        self.heap.push(Reverse((at, self.seq, slot)));
    }

    /// The next event and its time.
    pub fn pop(&mut self) -> Option<(u64, E)> {
        loop {
            let Reverse((at, _, slot)) = self.heap.pop()?;
            if let Some(event) = self.slots[slot].take() {
                self.free.push(slot);
                return Some((at, event));
            }
        }
    }

    /// The events waiting, in no order.
    pub fn pending(&self) -> impl Iterator<Item = &E> {
        self.slots.iter().flatten()
    }
}

/// The last events of a run (`COHORT_SIM_TRACE` of them, else the
/// default), for the failure it may end with.
pub struct Trace {
    lines: VecDeque<String>,
    len: usize,
}

impl Trace {
    /// Keeps the last `default` events, or `COHORT_SIM_TRACE`.
    pub fn new(default: usize) -> Trace {
        let len = std::env::var("COHORT_SIM_TRACE")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(default);
        Trace {
            lines: VecDeque::new(),
            len,
        }
    }

    /// Notes `line` at time `now`.
    pub fn note(&mut self, now: u64, line: String) {
        if self.len == 0 {
            return;
        }
        if self.lines.len() >= self.len {
            self.lines.pop_front();
        }
        self.lines.push_back(format!("t={now} {line}"));
    }

    /// The events kept, oldest first.
    pub fn lines(&self) -> Vec<String> {
        self.lines.iter().cloned().collect()
    }
}
