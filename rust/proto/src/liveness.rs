// SPDX-License-Identifier: GPL-2.0

//! The heartbeat failure detector: how long a peer has been silent,
//! counted in time this node ran.
//!
//! kmsg declares a peer down after [`Silence::timeout_ns`] without a frame
//! from it. Counted on the wall clock, that is wrong whenever this node
//! itself did not run: a virtual machine whose host stopped scheduling
//! it (seen here: 1 to 10 s on a loaded host, both nodes of a cluster at
//! once) resumes with every peer apparently silent for that long, and its
//! heartbeat thread wakes before its receivers have read what the peers
//! sent meanwhile. It then declared live peers down and killed the
//! processes that ran there.
//!
//! So the detector counts a peer's silence in this node's running time.
//! It is ticked every `interval_ns`; a sleep that ends much later than
//! that (more than the stall allowance, [`Ticks::new`]) means this node
//! did not run for the excess, which does not count. The thread's own
//! work between two sleeps (a send that blocks) is running time. A peer that really
//! died is still declared down after `timeout_ns` of this node's running
//! time: on a node that runs a fraction `f` of the wall time, after
//! `timeout_ns / f` of wall time.

/// One peer's silence, as the heartbeat thread keeps it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Silence {
    /// The peer's last frame (monotonic ns) at the previous tick.
    heard_ns: u64,
    /// Silence counted so far, in ns of this node's running time.
    silent_ns: u64,
}

/// What a tick says of a peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Heard within the timeout.
    Alive,
    /// Silent for the timeout: declare it down. Given once, at the tick
    /// that crosses the timeout; [`Verdict::StillSilent`] after.
    Silent {
        /// The silence, in ms of this node's running time.
        silent_ms: u64,
    },
    /// Declared silent at an earlier tick and still not heard.
    StillSilent,
}

/// The ticks of one heartbeat thread: how much of each interval this node
/// ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ticks {
    interval_ns: u64,
    stall_ns: u64,
    last_ns: u64,
}

/// A tick: the time it came and the running time since the previous one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tick {
    /// Monotonic time of the tick, ns.
    pub now_ns: u64,
    /// This node's running time since the previous tick, ns.
    pub ran_ns: u64,
    /// Time since the previous tick that this node did not run (0 for an
    /// ordinary tick), ns.
    pub stalled_ns: u64,
}

impl Ticks {
    /// Ticks every `interval_ns`, the first one from `now_ns`; a tick
    /// later than `interval_ns + stall_ns` counts as a stall of this node.
    pub const fn new(interval_ns: u64, stall_ns: u64, now_ns: u64) -> Ticks {
        Ticks {
            interval_ns,
            stall_ns,
            last_ns: now_ns,
        }
    }

    /// The tick at `now_ns` of a thread that slept since the previous one.
    pub fn tick(&mut self, now_ns: u64) -> Tick {
        self.tick_slept(self.last_ns, now_ns)
    }

    /// The tick at `now_ns` of a thread that slept from `slept_from_ns`
    /// (its work since the previous tick, sending heartbeats that may block,
    /// came before). Only a sleep longer than the interval by more than
    /// the stall allowance says that this node did not run, for that
    /// excess; the work is running time. A clock that went backwards
    /// counts as no time.
    pub fn tick_slept(&mut self, slept_from_ns: u64, now_ns: u64) -> Tick {
        let gap = now_ns.saturating_sub(self.last_ns);
        let slept = now_ns.saturating_sub(slept_from_ns.max(self.last_ns));
        self.last_ns = self.last_ns.max(now_ns);
        let late = slept.saturating_sub(self.interval_ns);
        if late > self.stall_ns {
            Tick {
                now_ns,
                ran_ns: gap - late,
                stalled_ns: late,
            }
        } else {
            Tick {
                now_ns,
                ran_ns: gap,
                stalled_ns: 0,
            }
        }
    }
}

impl Silence {
    /// A peer just connected (or was heard) at `now_ns`.
    pub const fn heard(now_ns: u64) -> Silence {
        Silence {
            heard_ns: now_ns,
            silent_ns: 0,
        }
    }

    /// Accounts `tick` for a peer whose last frame came at `last_rx_ns`;
    /// says whether the peer is now silent for `timeout_ns`.
    pub fn tick(&mut self, tick: Tick, last_rx_ns: u64, timeout_ns: u64) -> Verdict {
        let was_silent = self.silent_ns >= timeout_ns;
        if last_rx_ns != self.heard_ns {
            // Heard since the last tick: silent since then, at most for
            // the running time of this tick.
            self.heard_ns = last_rx_ns;
            self.silent_ns = tick.now_ns.saturating_sub(last_rx_ns).min(tick.ran_ns);
        } else {
            self.silent_ns = self.silent_ns.saturating_add(tick.ran_ns);
        }
        if self.silent_ns < timeout_ns {
            Verdict::Alive
        } else if was_silent {
            Verdict::StillSilent
        } else {
            Verdict::Silent {
                silent_ms: self.silent_ns / 1_000_000,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;
    const INTERVAL: u64 = 250 * MS;
    const STALL: u64 = 500 * MS;
    const TIMEOUT: u64 = 2000 * MS;

    /// Ticks at the given times; returns the verdicts for a peer last
    /// heard at `rx(now)`.
    fn run(times: &[u64], rx: impl Fn(u64) -> u64) -> std::vec::Vec<Verdict> {
        let mut ticks = Ticks::new(INTERVAL, STALL, 0);
        let mut silence = Silence::heard(0);
        times
            .iter()
            .map(|&t| silence.tick(ticks.tick(t), rx(t), TIMEOUT))
            .collect()
    }

    #[test]
    fn a_dead_peer_is_silent_after_the_timeout_once() {
        let times: std::vec::Vec<u64> = (1..=12).map(|i| i * INTERVAL).collect();
        let v = run(&times, |_| 0);
        // 2000 ms at the 8th tick.
        assert!(v[..7].iter().all(|v| *v == Verdict::Alive), "{v:?}");
        assert_eq!(v[7], Verdict::Silent { silent_ms: 2000 });
        assert!(v[8..].iter().all(|v| *v == Verdict::StillSilent), "{v:?}");
    }

    #[test]
    fn a_peer_heard_every_tick_stays_alive() {
        let times: std::vec::Vec<u64> = (1..=40).map(|i| i * INTERVAL).collect();
        let v = run(&times, |t| t - 10 * MS);
        assert!(v.iter().all(|v| *v == Verdict::Alive));
    }

    #[test]
    fn a_stall_of_this_node_does_not_count() {
        // Ticks every 250 ms, then this node does not run for 10 s; the
        // peer's frames of that time are read only after the tick.
        let mut times: std::vec::Vec<u64> = (1..=4).map(|i| i * INTERVAL).collect();
        times.push(times[3] + 10_000 * MS);
        let v = run(&times, |t| if t <= 4 * INTERVAL { t } else { 4 * INTERVAL });
        assert!(v.iter().all(|v| *v == Verdict::Alive), "{v:?}");
    }

    #[test]
    fn a_dead_peer_is_found_on_a_node_that_keeps_stalling() {
        // Every tick comes 1 s late: the node runs 250 ms of each 1250.
        let times: std::vec::Vec<u64> = (1..=20).map(|i| i * 1250 * MS).collect();
        let v = run(&times, |_| 0);
        let first = v.iter().position(|v| matches!(v, Verdict::Silent { .. }));
        assert_eq!(first, Some(7), "{v:?}");
    }

    #[test]
    fn a_late_tick_within_the_slack_counts_whole() {
        let mut ticks = Ticks::new(INTERVAL, STALL, 0);
        let t = ticks.tick(INTERVAL + STALL);
        assert_eq!((t.ran_ns, t.stalled_ns), (INTERVAL + STALL, 0));
        let t = ticks.tick(2 * INTERVAL + 2 * STALL + 1);
        assert_eq!((t.ran_ns, t.stalled_ns), (INTERVAL, STALL + 1));
    }

    #[test]
    fn blocking_work_before_the_sleep_is_running_time() {
        // The thread blocked 3 s sending, then slept one interval: no
        // stall, and a dead peer's silence grows by all of it.
        let mut ticks = Ticks::new(INTERVAL, STALL, 0);
        let t = ticks.tick_slept(3000 * MS, 3000 * MS + INTERVAL);
        assert_eq!((t.ran_ns, t.stalled_ns), (3000 * MS + INTERVAL, 0));
        // The same with a late wake-up: only the sleep's excess is a stall.
        let t = ticks.tick_slept(6250 * MS, 6250 * MS + INTERVAL + 2000 * MS);
        assert_eq!((t.ran_ns, t.stalled_ns), (3000 * MS + INTERVAL, 2000 * MS));
    }

    #[test]
    fn a_clock_going_back_counts_as_no_time() {
        let mut ticks = Ticks::new(INTERVAL, STALL, 1000 * MS);
        let t = ticks.tick(900 * MS);
        assert_eq!((t.ran_ns, t.stalled_ns), (0, 0));
        let t = ticks.tick(1000 * MS + INTERVAL);
        assert_eq!(t.ran_ns, INTERVAL);
    }

    #[test]
    fn silence_resumes_from_the_last_frame() {
        let mut ticks = Ticks::new(INTERVAL, STALL, 0);
        let mut s = Silence::heard(0);
        // Heard at 1.9 s, then nothing: down at 1.9 + 2 s, not before.
        let mut t = 0;
        let mut verdicts = std::vec::Vec::new();
        while t < 5000 * MS {
            t += INTERVAL;
            let rx = if t >= 1900 * MS { 1900 * MS } else { t };
            verdicts.push((t, s.tick(ticks.tick(t), rx, TIMEOUT)));
        }
        let down = verdicts
            .iter()
            .find(|(_, v)| matches!(v, Verdict::Silent { .. }))
            .map(|(t, _)| *t / MS);
        assert_eq!(down, Some(4000));
    }
}
