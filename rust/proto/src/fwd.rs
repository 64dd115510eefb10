// SPDX-License-Identifier: GPL-2.0

//! The origin's side of a migrated task's forwarded system calls: which
//! call is queued or running in the shadow, and what a signal that reaches
//! the task on its node does to it.
//!
//! The node running the task never abandons a call it forwarded. When a
//! signal ends its wait for the reply, it sends
//! [`MSG_SYSCALL_INTR`](super::task_msg::MSG_SYSCALL_INTR) and waits for
//! that request's reply, which is the call's own answer: the shadow
//! interrupts the call if it runs, answers it with `-ERESTARTSYS` without
//! running it if it is still queued (the task's node restarts it or ends it
//! with `EINTR`, as its signal code decides for a call of its own), or
//! sends the answer again if it had already answered (the reply crossed
//! the interruption). So a call whose waiter
//! went away never keeps the shadow blocked (a pipe read nobody writes),
//! the calls queued behind it (the signal handler's own) are served, and a
//! result (bytes read, bytes written, a descriptor opened) is never lost.
//!
//! A task makes one call at a time, and messages from one node are handled
//! in the order they were sent, so an interruption always concerns the
//! latest call posted; the counters also cope with a node that moved on
//! to a new call without waiting (a late or failed interruption).

/// What to do with an interruption ([`Calls::interrupt`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interrupt {
    /// No call is in flight: its answer crossed the interruption. Send the
    /// last answer again.
    AnswerLast,
    /// The call is queued: answer the interruption with the call's answer
    /// (`-ERESTARTSYS`, since it will not run).
    Hold,
    /// The call runs: interrupt the shadow, and answer the interruption with
    /// the call's answer.
    Kick,
}

/// One task's forwarded calls at its origin. Calls are numbered from 1 in
/// the order they are posted, and the shadow starts them in that order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Calls {
    /// Calls posted.
    posted: u64,
    /// Calls started (or skipped).
    started: u64,
    /// The call the shadow runs, if any.
    running: Option<u64>,
    /// Calls up to this one were interrupted.
    interrupted: u64,
    /// The call whose answer the interruption waits for.
    waiter: Option<u64>,
    /// The shadow was interrupted for the call it runs.
    kicked: bool,
}

/// How the shadow starts a call ([`Calls::start`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Start {
    /// The call's number, for [`Calls::finish`].
    pub seq: u64,
    /// Run it; otherwise answer it with `-ERESTARTSYS` without running it.
    pub run: bool,
}

/// What the shadow does once a call is answered ([`Calls::finish`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Finish {
    /// Send the answer to the waiting interruption too.
    pub answer_waiter: bool,
    /// Clear the interruption of the shadow itself.
    pub clear_kick: bool,
}

impl Calls {
    /// No call yet.
    pub const fn new() -> Calls {
        Calls {
            posted: 0,
            started: 0,
            running: None,
            interrupted: 0,
            waiter: None,
            kicked: false,
        }
    }

    /// A call is posted to the shadow.
    pub fn post(&mut self) {
        self.posted += 1;
    }

    /// Whether any call is posted and not yet answered.
    pub fn in_flight(&self) -> bool {
        self.running.is_some() || self.started < self.posted
    }

    /// The task was interrupted waiting for its latest call.
    pub fn interrupt(&mut self) -> Interrupt {
        if !self.in_flight() {
            return Interrupt::AnswerLast;
        }
        self.interrupted = self.posted;
        self.waiter = Some(self.posted);
        match self.running {
            Some(_) if !self.kicked => {
                self.kicked = true;
                Interrupt::Kick
            }
            _ => Interrupt::Hold,
        }
    }

    /// The shadow takes the next call it was posted. `None` when none is
    /// queued (an event was lost: nothing to start).
    pub fn start(&mut self) -> Option<Start> {
        if self.started >= self.posted {
            return None;
        }
        self.started += 1;
        let seq = self.started;
        self.running = Some(seq);
        Some(Start {
            seq,
            run: seq > self.interrupted,
        })
    }

    /// The shadow answered call `seq`.
    pub fn finish(&mut self, seq: u64) -> Finish {
        if self.running == Some(seq) {
            self.running = None;
        }
        let answer_waiter = self.waiter == Some(seq);
        if answer_waiter {
            self.waiter = None;
        }
        let clear_kick = core::mem::take(&mut self.kicked);
        Finish {
            answer_waiter,
            clear_kick,
        }
    }

    /// The task's interruption waits for a call the shadow will not answer
    /// (it ends): forget it.
    pub fn take_waiter(&mut self) -> bool {
        self.waiter.take().is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_without_interruption_runs() {
        let mut c = Calls::new();
        c.post();
        assert!(c.in_flight());
        let s = c.start().unwrap();
        assert!(s.run);
        assert_eq!(
            c.finish(s.seq),
            Finish {
                answer_waiter: false,
                clear_kick: false
            }
        );
        assert!(!c.in_flight());
        assert_eq!(c.start(), None);
    }

    #[test]
    fn interrupted_while_queued_does_not_run() {
        let mut c = Calls::new();
        c.post();
        assert_eq!(c.interrupt(), Interrupt::Hold);
        let s = c.start().unwrap();
        assert!(!s.run);
        assert!(c.finish(s.seq).answer_waiter);
        // The next call runs.
        c.post();
        let s = c.start().unwrap();
        assert!(s.run);
        assert!(!c.finish(s.seq).answer_waiter);
    }

    #[test]
    fn interrupted_while_running_kicks_once() {
        let mut c = Calls::new();
        c.post();
        let s = c.start().unwrap();
        assert_eq!(c.interrupt(), Interrupt::Kick);
        // A second interruption of the same call: already kicked.
        assert_eq!(c.interrupt(), Interrupt::Hold);
        assert_eq!(
            c.finish(s.seq),
            Finish {
                answer_waiter: true,
                clear_kick: true
            }
        );
    }

    #[test]
    fn interruption_after_the_answer_gets_it_again() {
        let mut c = Calls::new();
        c.post();
        let s = c.start().unwrap();
        c.finish(s.seq);
        assert_eq!(c.interrupt(), Interrupt::AnswerLast);
        // And it does not touch the next call.
        c.post();
        assert!(c.start().unwrap().run);
    }

    #[test]
    fn a_newer_call_behind_an_interrupted_one() {
        let mut c = Calls::new();
        c.post();
        let first = c.start().unwrap();
        assert_eq!(c.interrupt(), Interrupt::Kick);
        // The node gave up on the interruption and made a new call.
        c.post();
        let f = c.finish(first.seq);
        assert!(f.answer_waiter);
        assert!(f.clear_kick);
        let second = c.start().unwrap();
        assert!(second.run);
        assert!(!c.finish(second.seq).answer_waiter);
    }

    #[test]
    fn start_without_a_post_is_none() {
        let mut c = Calls::new();
        assert_eq!(c.start(), None);
        assert!(!c.take_waiter());
    }
}
