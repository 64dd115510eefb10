// SPDX-License-Identifier: GPL-2.0
//! Which nodes run the container layer: the hellos gobelins exchanges with
//! its peers, beside the coherence protocol (`super::container`).
//!
//! A node's messaging layer tells the container layer when a peer's
//! *transport* comes and goes; the container layer of a peer may come and
//! go without that (its module loaded or unloaded while the transport
//! stays), and a restarted node's transport may connect before or after its
//! container layer starts. So the container layers say hello to each other
//! ([`MSG_CONTAINER_HELLO`], one-way, a [`Hello`]):
//!
//! - when the container layer starts, to every peer whose transport is up;
//! - when the messaging layer reports a peer up, to that peer;
//! - in answer to a hello that is not itself an answer.
//!
//! A hello names the sender's *incarnation* (a number drawn when its
//! container layer starts) and its [`Standing`]. [`Members::heard`] turns
//! each hello into what the container layer does ([`Verdict`]):
//!
//! - A node that just started is [`Standing::Undecided`]. It joins as a
//!   fresh incarnation when it hears from a synced peer
//!   ([`Standing::Joining`] until its first recovery round is over). It
//!   boots as one of a cluster booting together (every node live,
//!   generation 0: `ContainerNode::new`) once every other node of the
//!   cluster said hello and each is undecided too ([`Members::may_boot`]),
//!   or, when some stay silent (down, or no container layer there),
//!   [`BOOT_WAIT_NS`] after the first undecided peer said hello. A joining
//!   peer means a synced node exists: an undecided node then never boots,
//!   and waits for that node's hello. The undecided peers it heard may be
//!   synced by now (they booted on their own wait, without it) and say no
//!   more hellos: the first time it hears a joining peer after an
//!   undecided one, it starts afresh ([`Verdict::Afresh`]), so that its
//!   new incarnation's hellos reach the synced nodes, which answer them
//!   and count it in (it waited forever before).
//! - A joining node that hears a new incarnation of a peer whose previous
//!   incarnation said it was synced starts afresh ([`Verdict::Afresh`]),
//!   as when a peer dies while it joins: the old incarnation may have been
//!   the synced node that would run its join round (for example a container
//!   layer that answered its hello while unloading), and waiting for it
//!   would be waiting forever. A peer last heard undecided or joining ran
//!   no join round: its restart changes nothing (two joining nodes that
//!   restarted each other did so forever).
//! - A synced node that hears a new incarnation of a peer counts the peer
//!   dead and back (`ContainerNode::node_down` then `node_up`), which runs
//!   the join round of `super::container` ("Rejoin"); a hello from the
//!   incarnation it knows is a reconnection (`node_up`, nothing if it
//!   counts the peer up already).
//!
//! A container layer that stops tells every peer ([`MSG_CONTAINER_BYE`],
//! one-way, no payload), which counts it down.
//!
//! Limits: the silent nodes are counted dead at the boot when their
//! transport is down then, live otherwise; nodes that boot at different
//! moments of [`BOOT_WAIT_NS`] while a transport is still coming up may
//! count a node differently, and a node whose transport to the synced
//! nodes is not up, that hears only from undecided peers for
//! [`BOOT_WAIT_NS`], boots with them while the synced nodes run on: their
//! views then differ until the synced peers' join round reaches them. A transport that drops and
//! reconnects while neither node restarts counts as a death and a return
//! of the same incarnation (its pages at risk fail, as after a death).

use super::node::{NodeId, NodeSet, MAX_NODES};
use super::wire::{Payload, Reader, WireError, Writer};

/// One-way, a [`Hello`]: "my container layer runs".
pub const MSG_CONTAINER_HELLO: u16 = 0x182;
/// One-way, no payload: "my container layer stops".
pub const MSG_CONTAINER_BYE: u16 = 0x183;

/// Where a node's container layer stands in the cluster's view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Standing {
    /// Started, has heard from no peer that decides how it starts.
    Undecided = 0,
    /// A fresh incarnation whose join round is not over.
    Joining = 1,
    /// Part of the cluster's view.
    Synced = 2,
}

/// A hello. Layout (10 bytes, as `super::wire` writes them):
/// `incarnation u64, standing u8, flags u8` (bit 0: `answer`, bit 1:
/// `alone`; no other bit).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hello {
    /// The sender's incarnation: drawn when its container layer started,
    /// never 0.
    pub incarnation: u64,
    /// The sender's standing when it sent the hello.
    pub standing: Standing,
    /// This hello answers one: it is not answered.
    pub answer: bool,
    /// The sender is synced and counts every peer dead: it carried on
    /// alone (see [`gives_way`]).
    pub alone: bool,
}

/// Whether a synced node that carried on alone (`alone`: it counts every
/// peer dead) must start afresh and join the view of `from`, which said
/// `hello`: the two views cannot be merged, so one side gives way. It does
/// when the peer is synced and either kept the view with other nodes (not
/// alone), or is alone too and has the lower id: of two nodes that lost
/// each other, exactly one gives way (both did once, and each then waited
/// for the other's view forever).
pub fn gives_way(me: NodeId, alone: bool, from: NodeId, hello: &Hello) -> bool {
    alone && hello.standing == Standing::Synced && (!hello.alone || from.0 < me.0)
}

/// Whether a node standing `me` (synced or not), `alone` or not, that heard
/// `hello` must tell the peer where it stands now (a hello of its own, even
/// in answer to an answer): the peer is synced and alone, and this node is
/// synced and no longer alone. The peer may have kept its view on an older
/// hello of this node, sent while this node was alone too with a higher
/// id; a node that came back and joined this one since would leave the two
/// views apart for good. Told, the peer gives way ([`gives_way`]).
pub fn must_tell(me: Standing, alone: bool, hello: &Hello) -> bool {
    me == Standing::Synced && !alone && hello.standing == Standing::Synced && hello.alone
}

impl Payload for Hello {
    const LEN: usize = 10;

    fn write(&self, w: &mut Writer<'_>) -> Result<(), WireError> {
        w.u64(self.incarnation)?;
        w.u8(self.standing as u8)?;
        w.u8(u8::from(self.answer) | u8::from(self.alone) << 1)
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let incarnation = r.u64()?;
        let standing = match r.u8()? {
            0 => Standing::Undecided,
            1 => Standing::Joining,
            2 => Standing::Synced,
            _ => return Err(WireError::BadPayload),
        };
        let flags = r.u8()?;
        if flags & !3 != 0 {
            return Err(WireError::BadPayload);
        }
        if incarnation == 0 {
            return Err(WireError::BadPayload);
        }
        Ok(Hello {
            incarnation,
            standing,
            answer: flags & 1 != 0,
            alone: flags & 2 != 0,
        })
    }
}

// Deliberate faults for the simulator's mutation checks; see `mutants`.
const MUTANT_RESTART_AS_UP: u8 = 16;
const MUTANT_AFRESH_ON_ANY_RESTART: u8 = 17;
const MUTANT_NEVER_ASK_AGAIN: u8 = 18;

/// Broken variants of the membership decisions for the simulator's
/// mutation checks (feature `mutants`, never built into the kernel),
/// selected with `container::mutants::set` like the container protocol's.
#[cfg(feature = "mutants")]
pub mod mutants {
    /// A synced node takes a peer's new incarnation for a reconnection: it
    /// does not count it dead and back.
    pub const RESTART_AS_UP: u8 = super::MUTANT_RESTART_AS_UP;
    /// A joining node starts afresh on any known peer's new incarnation,
    /// joining peers' included (the rule before the simulator found two
    /// joining nodes restarting each other forever).
    pub const AFRESH_ON_ANY_RESTART: u8 = super::MUTANT_AFRESH_ON_ANY_RESTART;
    /// An undecided node that heard undecided peers, then a joining one,
    /// waits for a synced node's hello (the rule before the simulator found
    /// it waiting forever).
    pub const NEVER_ASK_AGAIN: u8 = super::MUTANT_NEVER_ASK_AGAIN;
}

/// Whether mutant `which` is selected (never, without feature `mutants`);
/// `container_share`'s too.
#[inline]
pub(super) fn mutant(which: u8) -> bool {
    #[cfg(feature = "mutants")]
    {
        super::container::mutants::active() == which
    }
    #[cfg(not(feature = "mutants"))]
    {
        let _ = which;
        false
    }
}

/// How long an undecided node waits for silent peers after the first
/// undecided peer said hello, before it boots with the peers it heard.
pub const BOOT_WAIT_NS: u64 = 5_000_000_000;

/// What the container layer does on a hello ([`Members::heard`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing changes.
    Nothing,
    /// Start as a node of a cluster booting together (every node live,
    /// generation 0; the nodes whose transport is down count dead).
    Boot,
    /// Stay a fresh incarnation and wait for the join round.
    Join,
    /// The peer is a new incarnation: count it dead, then up.
    Restarted,
    /// This node was joining and the peer, last heard synced, came back as
    /// a new incarnation: the view this node was joining may have gone with
    /// the old one (it may even have been the node that would run the join
    /// round). Or this node is undecided, heard undecided peers, then a
    /// joining one: they may have booted without it. Start afresh, as after
    /// a peer's death while joining, then take the hello again as an
    /// undecided node.
    Afresh,
    /// The peer reconnected: count it up (nothing if it is).
    Up,
}

/// The incarnations of the peers this node heard from, and what the peers
/// said since this node's container layer started.
#[derive(Clone, Copy, Debug)]
pub struct Members {
    seen: [u64; MAX_NODES],
    /// The standing each peer said in its latest hello since this node
    /// started (see [`Members::restart`]).
    said: [Option<Standing>; MAX_NODES],
    /// When the first undecided peer said hello (ns, the caller's clock).
    first_undecided: Option<u64>,
    /// This undecided node started afresh on a joining peer's hello (once
    /// until it is synced; see [`Members::heard`]).
    asked_again: bool,
}

impl Default for Members {
    fn default() -> Self {
        Self::new()
    }
}

impl Members {
    /// Knows no peer yet.
    pub const fn new() -> Self {
        Members {
            seen: [0; MAX_NODES],
            said: [None; MAX_NODES],
            first_undecided: None,
            asked_again: false,
        }
    }

    /// This node's container layer starts afresh: what peers said before
    /// no longer decides how it starts (their incarnations stay known, and
    /// whether it started afresh on a joining peer's hello).
    pub fn restart(&mut self) {
        self.said = [None; MAX_NODES];
        self.first_undecided = None;
    }

    /// Takes `hello` from `from`, this node being `me` (its standing now)
    /// at `now_ns`, with `peers` every other node of the cluster, and says
    /// what to do. An id out of range is [`Verdict::Nothing`].
    pub fn heard(
        &mut self,
        from: NodeId,
        me: Standing,
        hello: Hello,
        peers: NodeSet,
        now_ns: u64,
    ) -> Verdict {
        let Some(seen) = self.seen.get_mut(from.index()) else {
            return Verdict::Nothing;
        };
        let new = *seen != hello.incarnation;
        // A peer this node knew under another incarnation restarted.
        let restarted = new && *seen != 0;
        *seen = hello.incarnation;
        let mut was_synced = false;
        if let Some(said) = self.said.get_mut(from.index()) {
            was_synced = *said == Some(Standing::Synced);
            *said = Some(hello.standing);
        }
        if me == Standing::Synced {
            self.asked_again = false;
        }
        match me {
            Standing::Undecided if hello.standing == Standing::Synced => Verdict::Join,
            Standing::Undecided
                if hello.standing == Standing::Joining
                    && self.first_undecided.is_some()
                    && !self.asked_again
                    && !mutant(MUTANT_NEVER_ASK_AGAIN) =>
            {
                // The undecided peers heard may have booted without this
                // node: its new incarnation's hellos reach them.
                self.asked_again = true;
                Verdict::Afresh
            }
            Standing::Undecided => {
                if hello.standing == Standing::Undecided && self.first_undecided.is_none() {
                    self.first_undecided = Some(now_ns);
                }
                if self.may_boot(peers, now_ns) {
                    Verdict::Boot
                } else {
                    Verdict::Nothing
                }
            }
            Standing::Joining
                if restarted && (was_synced || mutant(MUTANT_AFRESH_ON_ANY_RESTART)) =>
            {
                Verdict::Afresh
            }
            Standing::Joining => Verdict::Nothing,
            Standing::Synced if new && !mutant(MUTANT_RESTART_AS_UP) => Verdict::Restarted,
            Standing::Synced => Verdict::Up,
        }
    }

    /// Whether an undecided node may boot with the peers it heard, at
    /// `now_ns`, `peers` being every other node of the cluster: when no
    /// peer said it is joining or synced, and either every node of `peers`
    /// said hello (undecided), or an undecided one did [`BOOT_WAIT_NS`] ago
    /// or more.
    pub fn may_boot(&self, peers: NodeSet, now_ns: u64) -> bool {
        let all_heard = peers
            .iter()
            .all(|node| self.said.get(node.index()).copied().flatten().is_some());
        if self
            .said
            .iter()
            .any(|s| matches!(s, Some(Standing::Joining | Standing::Synced)))
        {
            return false;
        }
        match self.first_undecided {
            None => false,
            Some(first) => all_heard || now_ns.saturating_sub(first) >= BOOT_WAIT_NS,
        }
    }

    /// Forgets `node` (its container layer said bye): its next hello is
    /// a new incarnation's.
    pub fn forget(&mut self, node: NodeId) {
        if let Some(seen) = self.seen.get_mut(node.index()) {
            *seen = 0;
        }
        if let Some(said) = self.said.get_mut(node.index()) {
            *said = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello(incarnation: u64, standing: Standing) -> Hello {
        Hello {
            incarnation,
            standing,
            answer: false,
            alone: false,
        }
    }

    #[test]
    fn hello_round_trip_and_refusals() {
        for standing in [Standing::Undecided, Standing::Joining, Standing::Synced] {
            for (answer, alone) in [(false, false), (true, false), (false, true), (true, true)] {
                let h = Hello {
                    incarnation: 0x0102_0304_0506_0708,
                    standing,
                    answer,
                    alone,
                };
                let mut buf = [0u8; Hello::LEN];
                h.encode(&mut buf).unwrap();
                assert_eq!(Hello::decode(&buf), Ok(h));
            }
        }
        let mut buf = [0u8; Hello::LEN];
        hello(7, Standing::Synced).encode(&mut buf).unwrap();
        let mut bad = buf;
        bad[8] = 3;
        assert!(Hello::decode(&bad).is_err());
        let mut bad = buf;
        bad[9] = 4;
        assert!(Hello::decode(&bad).is_err());
        let mut zero = [0u8; Hello::LEN];
        zero[8] = 2;
        assert!(Hello::decode(&zero).is_err());
        assert!(Hello::decode(&buf[..9]).is_err());
        assert!(Hello::decode(&[0u8; Hello::LEN + 1]).is_err());
    }

    const S: u64 = 1_000_000_000;

    #[test]
    fn of_two_nodes_that_lost_each_other_exactly_one_gives_way() {
        let synced = |alone| Hello {
            alone,
            ..hello(9, Standing::Synced)
        };
        // Two nodes, each alone: the higher id gives way, whichever hears
        // first (before: both did, and neither was synced again).
        let (a, b) = (NodeId(0), NodeId(1));
        assert!(!gives_way(a, true, b, &synced(true)));
        assert!(gives_way(b, true, a, &synced(true)));
        // A node alone meeting nodes that kept the view gives way, even
        // with the lower id; they never do.
        assert!(gives_way(a, true, b, &synced(false)));
        assert!(!gives_way(b, false, a, &synced(true)));
        // Node 1 said "alone" to node 0, which kept its view (lower id);
        // node 2 then joined node 1: node 1, no longer alone, must tell
        // node 0, which then gives way. Nobody tells a node that is not
        // alone, and a node alone tells nobody.
        assert!(must_tell(Standing::Synced, false, &synced(true)));
        assert!(gives_way(a, true, b, &synced(false)));
        assert!(!must_tell(Standing::Synced, false, &synced(false)));
        assert!(!must_tell(Standing::Synced, true, &synced(true)));
        assert!(!must_tell(Standing::Joining, false, &synced(true)));
        // Only synced peers are given way to.
        for standing in [Standing::Undecided, Standing::Joining] {
            let h = Hello {
                alone: true,
                ..hello(9, standing)
            };
            assert!(!gives_way(b, true, a, &h));
        }
    }

    fn set(nodes: &[u8]) -> NodeSet {
        let mut s = NodeSet::EMPTY;
        for &n in nodes {
            s.insert(NodeId(n));
        }
        s
    }

    #[test]
    fn undecided_boots_once_every_peer_is_undecided() {
        let mut m = Members::new();
        let online = set(&[1, 2]);
        let u = Standing::Undecided;
        // One of two online peers heard: wait.
        assert_eq!(
            m.heard(NodeId(1), u, hello(5, u), online, 0),
            Verdict::Nothing
        );
        // Both: boot.
        assert_eq!(m.heard(NodeId(2), u, hello(6, u), online, S), Verdict::Boot);
    }

    #[test]
    fn undecided_joins_a_synced_peer_and_never_boots_past_a_joining_one() {
        let mut m = Members::new();
        let online = set(&[1, 2, 3]);
        let u = Standing::Undecided;
        assert_eq!(
            m.heard(NodeId(1), u, hello(5, u), online, 0),
            Verdict::Nothing
        );
        // After an undecided peer, a joining one: asks again, once (see
        // `undecided_node_left_out_of_a_boot_asks_again_once`).
        assert_eq!(
            m.heard(NodeId(2), u, hello(6, Standing::Joining), online, 0),
            Verdict::Afresh
        );
        m.restart();
        assert_eq!(
            m.heard(NodeId(1), u, hello(5, u), online, 0),
            Verdict::Nothing
        );
        assert_eq!(
            m.heard(NodeId(2), u, hello(6, Standing::Joining), online, 0),
            Verdict::Nothing
        );
        // Everyone heard, long after: a joining peer means a synced node.
        assert_eq!(
            m.heard(NodeId(3), u, hello(7, u), online, 10 * S),
            Verdict::Nothing
        );
        assert!(!m.may_boot(online, 100 * S));
        assert_eq!(
            m.heard(NodeId(3), u, hello(7, Standing::Synced), online, 10 * S),
            Verdict::Join
        );
        // A joining node waits for its round whatever the incarnations it
        // knows say, and whatever new peers say.
        for st in [Standing::Undecided, Standing::Joining, Standing::Synced] {
            assert_eq!(
                m.heard(NodeId(3), Standing::Joining, hello(7, st), online, 0),
                Verdict::Nothing
            );
        }
        let mut fresh = m;
        fresh.forget(NodeId(3));
        assert_eq!(
            fresh.heard(NodeId(3), Standing::Joining, hello(10, u), online, 0),
            Verdict::Nothing
        );
    }

    #[test]
    fn joining_node_starts_afresh_when_a_known_peer_restarts() {
        // Node 1's container layer said bye (forgotten), node 0 started
        // afresh and heard the unloading layer's answer (incarnation 5,
        // synced): it joins. Node 1 comes back as incarnation 8, undecided:
        // nobody will run node 0's join round, so it starts afresh.
        let mut m = Members::new();
        let online = set(&[1]);
        let (u, sy, j) = (Standing::Undecided, Standing::Synced, Standing::Joining);
        m.forget(NodeId(1));
        assert_eq!(
            m.heard(NodeId(1), u, hello(5, sy), online, 0),
            Verdict::Join
        );
        assert_eq!(
            m.heard(NodeId(1), j, hello(5, sy), online, 0),
            Verdict::Nothing
        );
        assert_eq!(
            m.heard(NodeId(1), j, hello(8, u), online, S),
            Verdict::Afresh
        );
        // Afresh, the same hello boots the two undecided nodes together.
        m.restart();
        assert_eq!(m.heard(NodeId(1), u, hello(8, u), online, S), Verdict::Boot);
    }

    #[test]
    fn joining_nodes_do_not_restart_each_other() {
        // Nodes 1 and 2 both join (the simulator's seed 34 on 8 nodes):
        // node 1 restarts (a peer of its went down) and says hello as a new
        // incarnation. Node 2 heard it joining, not synced: it was not the
        // node running node 2's join round, so node 2 waits on (before:
        // it started afresh, its new incarnation made node 1 start afresh,
        // and so on forever, every synced node counting both dead and back
        // each time).
        let (u, sy, j) = (Standing::Undecided, Standing::Synced, Standing::Joining);
        let online = set(&[0, 1]);
        let mut m = Members::new();
        assert_eq!(
            m.heard(NodeId(0), u, hello(3, sy), online, 0),
            Verdict::Join
        );
        assert_eq!(
            m.heard(NodeId(1), j, hello(5, j), online, 0),
            Verdict::Nothing
        );
        assert_eq!(
            m.heard(NodeId(1), j, hello(6, u), online, S),
            Verdict::Nothing
        );
        assert_eq!(
            m.heard(NodeId(1), j, hello(7, j), online, S),
            Verdict::Nothing
        );
        // A restart of the synced node it heard still starts it afresh.
        assert_eq!(
            m.heard(NodeId(0), j, hello(4, u), online, S),
            Verdict::Afresh
        );
    }

    #[test]
    fn undecided_node_left_out_of_a_boot_asks_again_once() {
        // The simulator's seed 227 on 5 nodes: node 0 heard nodes 1 and 2
        // undecided; they booted on their own wait, synced, and say no
        // more hellos; node 3 joined them and says it is joining. Node 0
        // would wait forever for a synced node's hello: it starts afresh
        // (its new incarnation's hellos reach the synced nodes, which
        // answer), once.
        let (u, sy, j) = (Standing::Undecided, Standing::Synced, Standing::Joining);
        let online = set(&[1, 2, 3]);
        let mut m = Members::new();
        assert_eq!(
            m.heard(NodeId(1), u, hello(5, u), online, 0),
            Verdict::Nothing
        );
        assert_eq!(
            m.heard(NodeId(2), u, hello(6, u), online, 0),
            Verdict::Nothing
        );
        assert_eq!(
            m.heard(NodeId(3), u, hello(7, j), online, S),
            Verdict::Afresh
        );
        // Afresh: the joining node's answer to the new hello, then an
        // undecided peer's, then the joining node again: it waits.
        m.restart();
        assert_eq!(
            m.heard(NodeId(3), u, hello(7, j), online, S),
            Verdict::Nothing
        );
        assert_eq!(
            m.heard(NodeId(1), u, hello(5, u), online, S),
            Verdict::Nothing
        );
        assert_eq!(
            m.heard(NodeId(3), u, hello(7, j), online, S),
            Verdict::Nothing
        );
        // A synced node's answer: it joins.
        assert_eq!(
            m.heard(NodeId(2), u, hello(6, sy), online, S),
            Verdict::Join
        );
        // Without an undecided peer heard first, a joining peer means wait.
        let mut fresh = Members::new();
        assert_eq!(
            fresh.heard(NodeId(3), u, hello(7, j), online, 0),
            Verdict::Nothing
        );
    }

    #[test]
    fn a_silent_peer_delays_the_boot_by_the_wait_only() {
        let mut m = Members::new();
        let online = set(&[1, 2]);
        let u = Standing::Undecided;
        assert_eq!(
            m.heard(NodeId(1), u, hello(5, u), online, S),
            Verdict::Nothing
        );
        assert!(!m.may_boot(online, S + BOOT_WAIT_NS - 1));
        assert!(m.may_boot(online, S + BOOT_WAIT_NS));
        // A restart forgets what the peers said.
        m.restart();
        assert!(!m.may_boot(online, 100 * S));
        // Nobody online, nobody heard: never.
        assert!(!Members::new().may_boot(NodeSet::EMPTY, 100 * S));
    }

    #[test]
    fn synced_node_tells_a_restart_from_a_reconnection() {
        let mut m = Members::new();
        let a = NodeId(1);
        let online = set(&[1]);
        let (u, sy) = (Standing::Undecided, Standing::Synced);
        assert_eq!(m.heard(a, u, hello(5, u), online, 0), Verdict::Boot);
        assert_eq!(m.heard(a, sy, hello(5, sy), online, 0), Verdict::Up);
        assert_eq!(m.heard(a, sy, hello(8, u), online, 0), Verdict::Restarted);
        assert_eq!(
            m.heard(a, sy, hello(8, Standing::Joining), online, 0),
            Verdict::Up
        );
        m.forget(a);
        assert_eq!(m.heard(a, sy, hello(8, u), online, 0), Verdict::Restarted);
        // Out of range.
        assert_eq!(
            m.heard(NodeId(MAX_NODES as u8), sy, hello(1, sy), online, 0),
            Verdict::Nothing
        );
    }
}
