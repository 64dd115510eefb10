// SPDX-License-Identifier: GPL-2.0
//! Distributed mutual exclusion for the layout of a distributed address space.
//!
//! One [`LockSpace`] exists per (node, distributed thread group). Its lock
//! names ([`LockKey`]) are the virtual pages of the group's address space and
//! the *heavy* lock, which stands for every page at once. Fault-time mapping
//! retrieval takes the lock of the faulting page; mmap, munmap, mprotect,
//! mremap and brk take the heavy lock: one namespace, as the Popcorn thesis
//! (section 5.7.5) requires.
//!
//! Two algorithms run over the same queues:
//!
//! - [`Algorithm::Lamport`] is Lamport's algorithm as the thesis specifies it
//!   (section 5.7.4): a request is time-stamped and sent to every other
//!   participant, which queues it and acknowledges; a request is granted when
//!   every participant has acknowledged it and it heads its queue; a release
//!   is sent to every participant. 3(N-1) messages per acquisition.
//! - [`Algorithm::RicartAgrawala`] drops the release broadcast: a node holds
//!   back its reply to a conflicting request while it holds the lock or has
//!   an older request of its own, and sends it on release. 2(N-1) messages.
//!   Combined with [`LockSpace::join`], only the nodes that host the thread
//!   group take part (thesis section 8.2.2), so N is the number of hosting
//!   nodes, not the size of the cluster.
//!
//! Queues: the queue of page `p` is the set of pending entries for `p` plus
//! every heavy entry, ordered by time-stamp. It exists (takes room) only while
//! it holds an entry for `p`: it is created by the first request for `p`,
//! local or remote, and collected with its last entry. Heavy entries live once
//! and count in every page queue, which is the thesis' "add the heavy entry to
//! every existing queue and to every new one" without the copies. A page
//! entry heads its queue when no conflicting entry is older; a heavy entry
//! heads every queue when no entry at all is older.
//!
//! Clocks: each lock space keeps its own Lamport clock (nodes share no memory,
//! so there is no shared counter page); every message carries the sender's
//! clock and time-stamps are ordered by (clock, node).
//!
//! Room: entries live in a fixed array of `CAP` slots. Each node may have at
//! most `per_node_limit` requests in the space; a local request beyond it is
//! refused with [`Error::Busy`] and a peer exceeding it is a protocol error, so
//! with `CAP >= cluster_nodes * per_node_limit` (checked by
//! [`LockSpace::new`]) correct peers can never overflow the array.

use super::error::Error;
use super::node::{NodeId, NodeSet};
use super::sink::Sink;

/// A Lamport time-stamp: a clock value and the node that took it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    /// Value of the node's Lamport clock.
    pub clock: u64,
    /// The node that took the time-stamp, which breaks ties.
    pub node: NodeId,
}

/// Name of a lock in one thread group's namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LockKey {
    /// The lock that covers the whole address space.
    Heavy,
    /// The lock of one virtual page (the page frame number).
    Page(u64),
}

impl LockKey {
    /// Returns whether two locks exclude each other.
    pub fn conflicts(self, other: LockKey) -> bool {
        match (self, other) {
            (LockKey::Page(a), LockKey::Page(b)) => a == b,
            _ => true,
        }
    }
}

/// Which mutual exclusion algorithm a lock space runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    /// Lamport's algorithm as the Popcorn thesis specifies it: 3(N-1) messages.
    Lamport,
    /// Ricart and Agrawala's refinement with deferred replies: 2(N-1) messages,
    /// and participants may join.
    RicartAgrawala,
}

/// Handle of one local lock request: its time-stamp.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ticket(pub Timestamp);

/// A message between the lock spaces of one thread group on two nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockMsg {
    /// Asks for `key`; `ts.node` is the sender.
    Request {
        /// Time-stamp of the request.
        ts: Timestamp,
        /// The lock asked for.
        key: LockKey,
    },
    /// Acknowledges (Lamport) or permits (Ricart-Agrawala) request `ts`.
    Reply {
        /// Time-stamp of the request answered.
        ts: Timestamp,
        /// The sender's clock.
        clock: u64,
    },
    /// Lamport only: request `ts` of the sender is over.
    Release {
        /// Time-stamp of the request released.
        ts: Timestamp,
        /// The sender's clock.
        clock: u64,
    },
    /// The sender starts taking part in the namespace.
    Join {
        /// The sender's clock.
        clock: u64,
    },
    /// Answer to [`LockMsg::Join`]: the sender now counts the joiner in.
    JoinAck {
        /// The sender's clock.
        clock: u64,
        /// The participants the sender knows, joiner included.
        members: NodeSet,
    },
}

/// What the caller must do after an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockAction {
    /// Send `msg` to every node of `to`.
    Send {
        /// Destination nodes (never this node).
        to: NodeSet,
        /// The message.
        msg: LockMsg,
    },
    /// The local request `ticket` now holds `key`: wake its waiter.
    Granted {
        /// The request granted.
        ticket: Ticket,
        /// The lock it holds.
        key: LockKey,
    },
    /// [`LockSpace::join`] has completed: local requests may start.
    Joined,
}

/// State of one queued request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryState {
    /// A local request still waiting.
    Waiting,
    /// A local request that holds its lock.
    Held,
    /// A remote request (Lamport: queued; Ricart-Agrawala: reply held back).
    Remote,
}

/// One request in the queues.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Time-stamp, unique in the namespace.
    pub ts: Timestamp,
    /// The lock requested.
    pub key: LockKey,
    /// Where the request stands.
    pub state: EntryState,
    /// For a local request: the nodes whose reply is still missing.
    pub awaiting: NodeSet,
}

/// The lock namespace of one thread group on one node.
#[derive(Clone, Debug)]
pub struct LockSpace<const CAP: usize> {
    me: NodeId,
    algorithm: Algorithm,
    clock: u64,
    members: NodeSet,
    joined: bool,
    join_waiting: NodeSet,
    per_node_limit: usize,
    entries: [Option<Entry>; CAP],
}

impl<const CAP: usize> LockSpace<CAP> {
    /// Creates the lock space of node `me`, taking part with `members`.
    ///
    /// `members` must contain `me`; `cluster_nodes` is the largest number of
    /// nodes that may ever take part. With [`Algorithm::Lamport`] the set of
    /// members is fixed: the thesis uses every booted node.
    pub fn new(
        me: NodeId,
        algorithm: Algorithm,
        members: NodeSet,
        cluster_nodes: usize,
        per_node_limit: usize,
    ) -> Result<Self, Error> {
        if !members.contains(me)
            || per_node_limit == 0
            || cluster_nodes == 0
            || cluster_nodes > super::node::MAX_NODES
            || CAP / cluster_nodes < per_node_limit
        {
            return Err(Error::Invalid);
        }
        Ok(LockSpace {
            me,
            algorithm,
            clock: 0,
            members,
            joined: true,
            join_waiting: NodeSet::EMPTY,
            per_node_limit,
            entries: [None; CAP],
        })
    }

    /// Creates the lock space of a node that must [`join`](Self::join)
    /// before it takes locks (Ricart-Agrawala only).
    pub fn new_joining(
        me: NodeId,
        cluster_nodes: usize,
        per_node_limit: usize,
    ) -> Result<Self, Error> {
        let mut space = Self::new(
            me,
            Algorithm::RicartAgrawala,
            NodeSet::single(me),
            cluster_nodes,
            per_node_limit,
        )?;
        space.joined = false;
        Ok(space)
    }

    /// Starts taking part: `known` are members learnt from the migration
    /// that brought the group here. [`LockAction::Joined`] tells when done.
    ///
    /// Every member answers with the members it knows; the joiner asks the
    /// new ones too, so concurrent joiners always learn about each other
    /// before either of them takes a lock.
    pub fn join(&mut self, known: NodeSet, out: &mut dyn Sink<LockAction>) -> Result<(), Error> {
        if self.joined
            || self.algorithm != Algorithm::RicartAgrawala
            || !self.join_waiting.is_empty()
        {
            return Err(Error::Invalid);
        }
        let ask = known.without(self.me);
        if ask.is_empty() {
            self.joined = true;
            out.push(LockAction::Joined);
            return Ok(());
        }
        self.join_waiting = ask;
        let clock = self.tick();
        out.push(LockAction::Send {
            to: ask,
            msg: LockMsg::Join { clock },
        });
        Ok(())
    }

    /// This node's id.
    pub fn node(&self) -> NodeId {
        self.me
    }

    /// The algorithm run.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The nodes taking part, this one included.
    pub fn members(&self) -> NodeSet {
        self.members
    }

    /// Returns whether local requests may be made.
    pub fn is_joined(&self) -> bool {
        self.joined
    }

    /// Current value of the Lamport clock.
    pub fn clock(&self) -> u64 {
        self.clock
    }

    /// Returns whether no request is queued, local or remote.
    pub fn is_idle(&self) -> bool {
        self.entries.iter().all(|e| e.is_none())
    }

    /// The queued requests, in no particular order.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter().flatten()
    }

    /// Number of per-page queues that exist now (pages with a queued request).
    pub fn page_queue_count(&self) -> usize {
        let mut count = 0;
        for (i, entry) in self.entries.iter().enumerate() {
            if let Some(Entry {
                key: LockKey::Page(page),
                ..
            }) = entry
            {
                let seen = self
                    .entries
                    .iter()
                    .take(i)
                    .flatten()
                    .any(|e| e.key == LockKey::Page(*page));
                if !seen {
                    count += 1;
                }
            }
        }
        count
    }

    /// Returns whether a local request holds `key`.
    pub fn holds(&self, key: LockKey) -> bool {
        self.entries()
            .any(|e| e.state == EntryState::Held && e.key == key)
    }

    /// Requests `key` for a local thread; [`LockAction::Granted`] with the
    /// returned ticket tells when it is held (possibly during this call).
    pub fn acquire(
        &mut self,
        key: LockKey,
        out: &mut dyn Sink<LockAction>,
    ) -> Result<Ticket, Error> {
        if !self.joined {
            return Err(Error::Invalid);
        }
        if self.count_from(self.me) >= self.per_node_limit {
            return Err(Error::Busy);
        }
        let slot = self.free_slot()?;
        let ts = Timestamp {
            clock: self.tick(),
            node: self.me,
        };
        let awaiting = self.members.without(self.me);
        if let Some(slot) = self.entries.get_mut(slot) {
            *slot = Some(Entry {
                ts,
                key,
                state: EntryState::Waiting,
                awaiting,
            });
        }
        if !awaiting.is_empty() {
            out.push(LockAction::Send {
                to: awaiting,
                msg: LockMsg::Request { ts, key },
            });
        }
        self.grant_ready(out);
        Ok(Ticket(ts))
    }

    /// Releases a lock that `ticket` holds.
    pub fn release(&mut self, ticket: Ticket, out: &mut dyn Sink<LockAction>) -> Result<(), Error> {
        let pos = self.find(ticket.0).ok_or(Error::NotFound)?;
        match self.entries.get(pos).copied().flatten() {
            Some(entry) if entry.state == EntryState::Held => {}
            _ => return Err(Error::Invalid),
        }
        if let Some(slot) = self.entries.get_mut(pos) {
            *slot = None;
        }
        match self.algorithm {
            Algorithm::Lamport => {
                let to = self.members.without(self.me);
                if !to.is_empty() {
                    let clock = self.tick();
                    out.push(LockAction::Send {
                        to,
                        msg: LockMsg::Release {
                            ts: ticket.0,
                            clock,
                        },
                    });
                }
            }
            Algorithm::RicartAgrawala => self.send_deferred_replies(out),
        }
        self.grant_ready(out);
        Ok(())
    }

    /// Handles a message from node `from`.
    pub fn on_message(
        &mut self,
        from: NodeId,
        msg: LockMsg,
        out: &mut dyn Sink<LockAction>,
    ) -> Result<(), Error> {
        if !from.is_valid() || from == self.me {
            return Err(Error::Protocol);
        }
        match msg {
            LockMsg::Request { ts, key } => self.on_request(from, ts, key, out),
            LockMsg::Reply { ts, clock } => {
                let pos = self.find(ts).ok_or(Error::Protocol)?;
                let entry = self
                    .entries
                    .get_mut(pos)
                    .and_then(|e| e.as_mut())
                    .ok_or(Error::Protocol)?;
                if entry.state != EntryState::Waiting || !entry.awaiting.contains(from) {
                    return Err(Error::Protocol);
                }
                entry.awaiting.remove(from);
                self.observe(clock);
                self.grant_ready(out);
                Ok(())
            }
            LockMsg::Release { ts, clock } => {
                if self.algorithm != Algorithm::Lamport || ts.node != from {
                    return Err(Error::Protocol);
                }
                let pos = self.find(ts).ok_or(Error::Protocol)?;
                if let Some(slot) = self.entries.get_mut(pos) {
                    *slot = None;
                }
                self.observe(clock);
                self.grant_ready(out);
                Ok(())
            }
            LockMsg::Join { clock } => {
                if self.algorithm != Algorithm::RicartAgrawala {
                    return Err(Error::Protocol);
                }
                self.observe(clock);
                self.members.insert(from);
                let clock = self.tick();
                out.push(LockAction::Send {
                    to: NodeSet::single(from),
                    msg: LockMsg::JoinAck {
                        clock,
                        members: self.members,
                    },
                });
                Ok(())
            }
            LockMsg::JoinAck { clock, members } => {
                if self.joined || !self.join_waiting.contains(from) {
                    return Err(Error::Protocol);
                }
                self.observe(clock);
                self.join_waiting.remove(from);
                self.members.insert(from);
                let new = members
                    .minus(self.members)
                    .without(self.me)
                    .minus(self.join_waiting);
                if !new.is_empty() {
                    self.join_waiting = self.join_waiting.union(new);
                    let clock = self.tick();
                    out.push(LockAction::Send {
                        to: new,
                        msg: LockMsg::Join { clock },
                    });
                }
                if self.join_waiting.is_empty() {
                    self.joined = true;
                    out.push(LockAction::Joined);
                }
                Ok(())
            }
        }
    }

    fn on_request(
        &mut self,
        from: NodeId,
        ts: Timestamp,
        key: LockKey,
        out: &mut dyn Sink<LockAction>,
    ) -> Result<(), Error> {
        if ts.node != from || !self.members.contains(from) || self.find(ts).is_some() {
            return Err(Error::Protocol);
        }
        let must_queue = match self.algorithm {
            Algorithm::Lamport => true,
            Algorithm::RicartAgrawala => self.blocked_by_local(ts, key),
        };
        if must_queue {
            if self.count_from(from) >= self.per_node_limit {
                return Err(Error::Protocol);
            }
            let slot = self.free_slot()?;
            if let Some(slot) = self.entries.get_mut(slot) {
                *slot = Some(Entry {
                    ts,
                    key,
                    state: EntryState::Remote,
                    awaiting: NodeSet::EMPTY,
                });
            }
        }
        self.observe(ts.clock);
        if self.algorithm == Algorithm::Lamport || !must_queue {
            let clock = self.tick();
            out.push(LockAction::Send {
                to: NodeSet::single(from),
                msg: LockMsg::Reply { ts, clock },
            });
        }
        Ok(())
    }

    /// Ricart-Agrawala: a local request that holds a conflicting lock, or waits
    /// for one with an older time-stamp, holds back the reply to `ts`.
    fn blocked_by_local(&self, ts: Timestamp, key: LockKey) -> bool {
        self.entries().any(|e| {
            e.key.conflicts(key)
                && match e.state {
                    EntryState::Held => true,
                    EntryState::Waiting => e.ts < ts,
                    EntryState::Remote => false,
                }
        })
    }

    fn send_deferred_replies(&mut self, out: &mut dyn Sink<LockAction>) {
        for i in 0..CAP {
            let Some(Some(entry)) = self.entries.get(i).copied() else {
                continue;
            };
            if entry.state != EntryState::Remote || self.blocked_by_local(entry.ts, entry.key) {
                continue;
            }
            if let Some(slot) = self.entries.get_mut(i) {
                *slot = None;
            }
            let clock = self.tick();
            out.push(LockAction::Send {
                to: NodeSet::single(entry.ts.node),
                msg: LockMsg::Reply {
                    ts: entry.ts,
                    clock,
                },
            });
        }
    }

    /// Grants every local request whose turn has come.
    fn grant_ready(&mut self, out: &mut dyn Sink<LockAction>) {
        for i in 0..CAP {
            let Some(Some(entry)) = self.entries.get(i).copied() else {
                continue;
            };
            if entry.state != EntryState::Waiting || !entry.awaiting.is_empty() {
                continue;
            }
            let ahead = self.entries().any(|other| {
                other.ts != entry.ts
                    && other.key.conflicts(entry.key)
                    && match self.algorithm {
                        // Lamport: the entry must head its queue(s).
                        Algorithm::Lamport => other.ts < entry.ts,
                        // Ricart-Agrawala: only local requests compete here.
                        Algorithm::RicartAgrawala => match other.state {
                            EntryState::Held => true,
                            EntryState::Waiting => other.ts < entry.ts,
                            EntryState::Remote => false,
                        },
                    }
            });
            if ahead {
                continue;
            }
            if let Some(Some(slot)) = self.entries.get_mut(i) {
                slot.state = EntryState::Held;
            }
            out.push(LockAction::Granted {
                ticket: Ticket(entry.ts),
                key: entry.key,
            });
        }
    }

    fn tick(&mut self) -> u64 {
        self.clock = self.clock.saturating_add(1);
        self.clock
    }

    fn observe(&mut self, clock: u64) {
        if clock > self.clock {
            self.clock = clock;
        }
    }

    fn find(&self, ts: Timestamp) -> Option<usize> {
        self.entries
            .iter()
            .position(|e| matches!(e, Some(entry) if entry.ts == ts))
    }

    fn free_slot(&self) -> Result<usize, Error> {
        self.entries
            .iter()
            .position(|e| e.is_none())
            .ok_or(Error::NoSpace)
    }

    fn count_from(&self, node: NodeId) -> usize {
        self.entries().filter(|e| e.ts.node == node).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    type Space = LockSpace<64>;

    /// Delivers every message, FIFO per channel, oldest first; returns the
    /// grants and the number of messages that crossed nodes.
    fn settle(
        spaces: &mut [Space],
        mut pending: Vec<(NodeId, LockAction)>,
    ) -> (Vec<(NodeId, Ticket)>, usize) {
        let mut granted = Vec::new();
        let mut sent = 0;
        while !pending.is_empty() {
            let (node, action) = pending.remove(0);
            match action {
                LockAction::Send { to, msg } => {
                    for dst in to.iter() {
                        sent += 1;
                        let mut out = Vec::new();
                        spaces[dst.index()].on_message(node, msg, &mut out).unwrap();
                        pending.extend(out.into_iter().map(|a| (dst, a)));
                    }
                }
                LockAction::Granted { ticket, .. } => granted.push((node, ticket)),
                LockAction::Joined => {}
            }
        }
        (granted, sent)
    }

    fn cluster(algorithm: Algorithm, n: usize) -> Vec<Space> {
        (0..n)
            .map(|i| Space::new(NodeId(i as u8), algorithm, NodeSet::first(n), n, 4).unwrap())
            .collect()
    }

    fn acquire(
        spaces: &mut [Space],
        node: u8,
        key: LockKey,
    ) -> (Ticket, Vec<(NodeId, LockAction)>) {
        let mut out = Vec::new();
        let ticket = spaces[node as usize].acquire(key, &mut out).unwrap();
        (ticket, out.into_iter().map(|a| (NodeId(node), a)).collect())
    }

    #[test]
    fn lamport_costs_three_messages_per_peer() {
        let mut spaces = cluster(Algorithm::Lamport, 4);
        let (ticket, out) = acquire(&mut spaces, 1, LockKey::Page(7));
        let (granted, sent) = settle(&mut spaces, out);
        assert_eq!(granted, [(NodeId(1), ticket)]);
        assert_eq!(sent, 6);
        assert_eq!(spaces[0].page_queue_count(), 1);
        let mut out = Vec::new();
        spaces[1].release(ticket, &mut out).unwrap();
        let out = out.into_iter().map(|a| (NodeId(1), a)).collect();
        assert_eq!(settle(&mut spaces, out).1, 3);
        assert!(spaces
            .iter()
            .all(|s| s.is_idle() && s.page_queue_count() == 0));
    }

    #[test]
    fn heavy_lock_waits_for_every_page_and_blocks_new_ones() {
        for algorithm in [Algorithm::Lamport, Algorithm::RicartAgrawala] {
            let mut spaces = cluster(algorithm, 3);
            let (page, out) = acquire(&mut spaces, 0, LockKey::Page(1));
            let (granted, _) = settle(&mut spaces, out);
            assert_eq!(granted, [(NodeId(0), page)]);
            let (heavy, out) = acquire(&mut spaces, 2, LockKey::Heavy);
            assert!(settle(&mut spaces, out).0.is_empty(), "{algorithm:?}");
            let (other, out) = acquire(&mut spaces, 1, LockKey::Page(2));
            assert!(settle(&mut spaces, out).0.is_empty(), "{algorithm:?}");
            let mut out = Vec::new();
            spaces[0].release(page, &mut out).unwrap();
            let out = out.into_iter().map(|a| (NodeId(0), a)).collect();
            assert_eq!(settle(&mut spaces, out).0, [(NodeId(2), heavy)]);
            let mut out = Vec::new();
            spaces[2].release(heavy, &mut out).unwrap();
            let out = out.into_iter().map(|a| (NodeId(2), a)).collect();
            assert_eq!(settle(&mut spaces, out).0, [(NodeId(1), other)]);
        }
    }

    #[test]
    fn ricart_agrawala_joins_and_costs_two_messages_per_peer() {
        let mut spaces = std::vec![Space::new(
            NodeId(0),
            Algorithm::RicartAgrawala,
            NodeSet::single(NodeId(0)),
            3,
            4,
        )
        .unwrap()];
        for i in 1..3u8 {
            spaces.push(Space::new_joining(NodeId(i), 3, 4).unwrap());
        }
        let mut out = Vec::new();
        spaces[1]
            .join(NodeSet::single(NodeId(0)), &mut out)
            .unwrap();
        settle(
            &mut spaces,
            out.into_iter().map(|a| (NodeId(1), a)).collect(),
        );
        let mut out = Vec::new();
        spaces[2]
            .join(NodeSet::single(NodeId(1)), &mut out)
            .unwrap();
        settle(
            &mut spaces,
            out.into_iter().map(|a| (NodeId(2), a)).collect(),
        );
        assert!(spaces
            .iter()
            .all(|s| s.is_joined() && s.members() == NodeSet::first(3)));
        let (ticket, out) = acquire(&mut spaces, 2, LockKey::Heavy);
        let (granted, sent) = settle(&mut spaces, out);
        assert_eq!((granted, sent), (std::vec![(NodeId(2), ticket)], 4));
    }

    #[test]
    fn bad_messages_and_limits_are_errors() {
        let mut spaces = cluster(Algorithm::Lamport, 2);
        let mut out = Vec::new();
        let bogus = Timestamp {
            clock: 9,
            node: NodeId(0),
        };
        assert_eq!(
            spaces[1].on_message(
                NodeId(0),
                LockMsg::Reply {
                    ts: bogus,
                    clock: 1
                },
                &mut out
            ),
            Err(Error::Protocol)
        );
        assert_eq!(
            spaces[1].on_message(
                NodeId(0),
                LockMsg::Release {
                    ts: bogus,
                    clock: 1
                },
                &mut out
            ),
            Err(Error::Protocol)
        );
        assert_eq!(
            spaces[1].on_message(NodeId(1), LockMsg::Join { clock: 1 }, &mut out),
            Err(Error::Protocol)
        );
        assert_eq!(
            spaces[1].on_message(NodeId(70), LockMsg::Join { clock: 1 }, &mut out),
            Err(Error::Protocol)
        );
        let forged = LockMsg::Request {
            ts: Timestamp {
                clock: 1,
                node: NodeId(1),
            },
            key: LockKey::Heavy,
        };
        assert_eq!(
            spaces[1].on_message(NodeId(0), forged, &mut out),
            Err(Error::Protocol)
        );
        for _ in 0..4 {
            spaces[0].acquire(LockKey::Page(3), &mut out).unwrap();
        }
        assert_eq!(
            spaces[0].acquire(LockKey::Page(3), &mut out),
            Err(Error::Busy)
        );
        assert!(Space::new(NodeId(0), Algorithm::Lamport, NodeSet::first(2), 32, 4).is_err());
        assert!(
            out.iter().all(|a| !matches!(a, LockAction::Granted { .. }))
                || spaces[0].holds(LockKey::Page(3))
        );
    }
}
