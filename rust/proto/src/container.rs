// SPDX-License-Identifier: GPL-2.0
//! Container coherence: cluster-wide pages, sequentially consistent,
//! write-invalidate, with a fixed distributed manager; homed containers,
//! cluster-wide release of ranges, survival of node deaths, and nodes that
//! come back.
//!
//! This is the protocol of the Containers report (Lottiaux, Morin, Vallee,
//! INRIA RR-4384, sections 3.1 and 5.2) over Li and Hudak's fixed
//! distributed manager:
//!
//! - A container is a set of pages; page ([`PageId`]) has a manager node fixed
//!   by a hash ([`manager_of`]; [`manager_of_live`] once nodes died), one
//!   owner holding the master copy, and a copyset of nodes holding read
//!   copies (kept by the owner).
//! - [`ContainerNode::get_page`] gives a read copy, [`ContainerNode::grab_page`]
//!   a unique writable copy (every other copy invalidated), and
//!   [`ContainerNode::flush_page`] drops a copy, injecting the last one into
//!   another node instead of losing it.
//! - Requests go to the manager, which forwards them to the owner. The manager
//!   records the new owner as soon as it forwards a write request, so a read
//!   fault takes at most 3 messages (request, forward, copy) whatever the
//!   number of nodes; a write fault takes 3 plus 2 per read copy invalidated
//!   (plus a [`PageMsg::TransferAck`] to the old owner, off the fault's path).
//!   Requests that reach a designated owner before its page does wait there.
//! - When no copy exists anywhere, the manager tells the requester to create
//!   it ([`PageAction::FirstTouch`], the I/O linker's `first_touch`): this runs
//!   once cluster-wide because the manager serialises it.
//!
//! A node has at most one request per page in flight, and every request
//! gets exactly one answer ([`PageMsg::Copy`], [`PageMsg::Create`],
//! [`PageMsg::Transfer`], [`PageMsg::Retry`], [`PageMsg::Failed`], or a
//! [`PageMsg::Resolved`] after a death); the record lives until it has come.
//! Requests carry a tag, fresh for each request a node sends, that the
//! answers echo (an owner keeps the tags of the requests queued at it; a
//! read beyond [`READ_TAGS`] queued ones is answered with tag 0, which
//! stands for the request in flight). An answer with another tag is stale
//! and ignored, except ownership, which is always taken.
//!
//! Versions: each write ownership transfer bumps the page version;
//! invalidations carry the new version, and a read copy older than the last
//! invalidation seen is stale (it crossed the invalidation on another
//! channel): it is dropped and the request sent again.
//!
//! # Homed containers
//!
//! A container id ([`homed`], [`home_of`]) may name a home node: the node
//! whose memory already holds the pages (a process's address space made a
//! container without shipping anything, like the file containers of section
//! 5.2.1 whose pages come from the node hosting the file). The id also
//! carries the home's generation when it was made ([`home_gen_of`]; a node
//! makes its ids with [`ContainerNode::new_container_id`]): the container is
//! homed at that incarnation of the node only. A page no node
//! has a record of is held by the home if its [`Backing`] holds it, and does
//! not exist yet otherwise. A manager with no record of a page of a homed
//! container records the home as owner and forwards the request there
//! (request, forward, copy: still 3 messages). The home, on a forward for a
//! page it never materialised, adopts the page of its backing
//! ([`PageAction::Adopt`]) or creates it ([`PageAction::FirstTouch`]), then
//! serves the request. The home remembers every page it materialised until
//! the page is released, so it never materialises a page twice.
//!
//! # Release
//!
//! [`ContainerNode::release`] drops a range of pages cluster-wide (munmap,
//! `MADV_DONTNEED`, brk shrink, exec, destroy). Flow, for a release
//! `(origin, id)` of `container`, `first..end`:
//!
//! 1. the origin sends [`PageMsg::Release`] to every live node (and applies it
//!    itself). Each node raises a fence over the range, discards its copies
//!    ([`PageAction::Discard`]), forgets its records (manager, owner,
//!    copyset), answers the requests queued at it with [`PageMsg::Retry`],
//!    and wakes its own waiting requests with [`PageAction::Ready`] (they
//!    retry). The home also tells its backing to drop the range
//!    ([`PageAction::DropBacking`]), so that the page is fresh afterwards.
//!    A record still expecting a message (an answer, an acknowledgement, a
//!    page in flight) stays as a *zombie* until that message has come and
//!    been dropped.
//! 2. when no zombie is left in the range, the node answers
//!    [`PageMsg::ReleaseAck`].
//! 3. with every live node's acknowledgement, the release is complete
//!    ([`PageAction::Released`] at the node that completes it) and the
//!    origin sends [`PageMsg::ReleaseDone`], which lowers the fences: first
//!    to the container's home, which acknowledges it, then to the others.
//!    So no manager forwards a request for the new page to a home that
//!    still refuses it.
//!
//! While a node's fence is up, faults in the range are [`Error::Busy`] (the
//! caller retries after the release), and a request reaching it as manager
//! or owner is answered [`PageMsg::Retry`]; a page or answer arriving for the
//! range is dropped. Every message of the old incarnation of a page is
//! awaited by some zombie, so none survives the fences: a fault after the
//! release sees a fresh page. Page contents never travel for a release.
//!
//! A release whose coordinator dies is resumed by the lowest live node
//! ([`PageMsg::ReleaseResume`]): it sends the release again under the same
//! `(origin, id)`; a node that already lowered that fence only acknowledges
//! (it applied the release, and everyone else had too), one that never saw
//! it applies it.
//!
//! # Node death
//!
//! [`ContainerNode::node_down`] is called once on every survivor (the
//! messaging layer drops the dead node's messages from then on; so does
//! this module). The survivor removes the dead node from its copysets,
//! awaited acknowledgements, queues, flushes and injections, and starts a
//! recovery round for its new *view* (see [`Gens`]: how many times each
//! node was seen to die or come back; rounds are named by the view's
//! [`Gens::digest`], so a round is never taken for an earlier one):
//!
//! 1. it sends [`PageMsg::Marker`], carrying its view, to every live node,
//!    itself included (so its own messages in flight are part of the
//!    round). A marker telling the death of a node's first incarnation
//!    (generation 0 to 1: 0 names it on every node) counts as its
//!    `node_down`; later deaths are learnt from the messaging layer only (a
//!    marker's generation may name another incarnation than the one the
//!    receiver is connected to). While a live node's latest marker is of
//!    another view, the hand-offs this node sent stay part of its snapshot
//!    even once acknowledged. From its marker on,
//!    the node as manager answers requests with [`PageMsg::Retry`] and
//!    flushes with
//!    [`PageMsg::FlushCancel`]; its own flushes are [`Error::Busy`]. A
//!    request reaching a node that is not the page's manager in its view
//!    (the two views differ) is answered [`PageMsg::Retry`] too.
//! 2. with every live node's latest marker of its own view (so every
//!    message sent before the senders' markers has arrived), it sends one
//!    [`PageMsg::Report`] per
//!    page it knows something of to the page's live manager: what it holds
//!    ([`Holding`]), the hand-off it sent and has not had acknowledged
//!    ([`PageMsg::TransferAck`], [`PageMsg::InjectAck`]) with its version,
//!    the writes queued at it, whether it waits, whether it is the page's
//!    home and materialised it. Then [`PageMsg::ReportEnd`] to every live
//!    node, itself included.
//! 3. with every live node's report end, each manager rebuilds its records:
//!    the owner is the end of the ownership chain that starts at the node
//!    holding the master copy (or at the target of the latest hand-off in
//!    flight) and follows the writes queued at each node, each once; if the
//!    chain ends at a dead node, a survivor's read copy is promoted
//!    ([`PageMsg::Promote`], [`PageMsg::PromoteAck`]; it takes a version
//!    above any the lost owner could have issued); with no copy left the
//!    page is lost. Each waiting reporter gets [`PageMsg::Resolved`]: keep
//!    waiting (ownership is on its way to it), or its request is cancelled
//!    (its threads retry) or failed ([`PageAction::Failed`]: the kernel
//!    raises SIGBUS for that page only); a node the page will not reach
//!    answers the requests queued at it with retries. A page being released
//!    anywhere during the round is rebuilt as released.
//!
//! Pages whose manager died are managed by [`manager_of_live`]. A lost page
//! answers every later request with [`PageMsg::Failed`] until it is
//! released. A node that dies or comes back during a round restarts it
//! (the view changed).
//!
//! # Rejoin
//!
//! A node that died may come back as a fresh incarnation: the kernel module
//! creates it with [`ContainerNode::rejoin`] (no records, no copies; its
//! memory, and so its homes' backings, are gone). The messaging layer
//! reports each node up to it ([`ContainerNode::node_up`]), and it up to
//! every survivor. The module assumes of the messaging layer that it
//! reports each peer's deaths and returns to every node in order, a
//! peer's messages after its `node_up` and before its `node_down`, and
//! that a message sent to a node up but not yet connected waits for the
//! connection.
//!
//! *Views.* Each node keeps a generation per node ([`Gens`]): even while
//! an incarnation is up, odd once it died; a boot node starts with 0 for
//! every node ([`ContainerNode::new`]: all live and connected, so the
//! `node_up` of every peer at module load changes nothing). `node_down`
//! makes an even generation odd, `node_up` an odd one even. A marker
//! carries its sender's view; generations only grow, and a node takes a
//! higher one from a marker when it agrees with what its messaging layer
//! says of that node (up if connected, down if not), and when its messaging
//! layer reports a node up or down it takes the highest generation a
//! marker carried if that agrees; so every node ends with the highest
//! generation of each node. The fresh node knows nothing:
//! it sends nothing until a marker reaches it (a survivor sends one when
//! told the newcomer is up), learns its own generation from it, and the
//! other nodes' as above (a node that died before it came, and that it is
//! not connected to, is learnt dead from the markers; its zeros are no
//! knowledge until learnt, so it takes no first death from them). So it
//! never counts
//! live a node the others count dead once their views agree, and no round
//! completes before they do.
//!
//! *Flow.* With nodes `S` (survivors) and `J` (the newcomer):
//!
//! 1. each survivor is told `node_up(J)`: `J` becomes live, and a round
//!    starts: [`PageMsg::Marker`] to every live node, `J` included (first,
//!    then a [`PageMsg::Release`] of each release the survivor coordinates,
//!    which now awaits `J` too).
//! 2. `J` takes its view from the first marker and sends its own markers.
//!    Its faults and releases are [`Error::Busy`] until its first round is
//!    over; as manager it answers [`PageMsg::Retry`] while recovering.
//! 3. with every live node's marker of the same view, each node reports as
//!    after a death; a node that managed a page the join moves to `J`
//!    ([`manager_of_live`]: `J`'s own pages, and any the rendezvous now
//!    gives it) reports that the page exists (`known`) if it had an owner
//!    of record or had lost it. `J` reports nothing.
//! 4. with every report end, the page's new manager (`J` or a survivor)
//!    rebuilds it from the reports; old managers drop their manager records
//!    of the pages they no longer manage. Requests in flight were answered
//!    by recovering managers with retries, or are resolved like after a
//!    death.
//!
//! A join racing a death, or two joins, change the view again: the round
//! restarts for the new view (every node waits for every live node's
//! marker of one view). A node that came back is no home of its earlier
//! incarnations' containers and no original manager: the pages no node
//! took of a container whose id names an earlier generation of its home
//! ([`home_gen_of`] below the home's generation in the view), and the pages
//! no node knows of an unhomed container whose [`manager_of`] node ever
//! died, fail as after its death (its memory is gone). It is the home of
//! the containers it makes once it finished joining: their ids carry its
//! new generation ([`ContainerNode::new_container_id`], [`Error::Busy`]
//! until then), which every live node's view holds by then. The new
//! incarnation's release ids start at its generation times `1 << 24`.
//!
//! Limits: the reports are taken when a node has every marker, not at its
//! marker with the channel states recorded (a full Chandy-Lamport
//! snapshot), so a hand-off racing the round can still be missed, notably
//! when a death or a return restarts a round some nodes had finished: the
//! container simulator finds rare seeds (12 in 100,000 with up to 16 nodes,
//! 4 of them with deaths only, none on 2 to 9 nodes in 30,000) where a
//! request is left waiting or a page not at risk is failed. An unhomed container's
//! pages whose manager died are known only through the reports; one that
//! no survivor knows of is failed (it may have existed only on the dead
//! node), so its never-touched pages fail too; a homed container whose
//! home's incarnation that made it lives has no such limit. A flush may
//! inject into a node whose fence is still up just after a release
//! completed; the page is then dropped. Generations wrap after 256 changes
//! of one node (128 returns); a view could then repeat, and a container id
//! name a later incarnation of its home.
//!
//! Page contents never pass through this module: a [`PageAction::Send`] of
//! a message whose [`PageMsg::carries_data`] is true carries the local copy,
//! and [`PageAction::Install`] installs the copy of the message being
//! handled. Actions must be carried out in order: the threads woken by
//! [`PageAction::Ready`] complete their access before a later action of the
//! same event may send the page away. The wire format is in
//! [`super::container_msg`].

use super::error::Error;
use super::node::{NodeId, NodeSet, MAX_NODES};
use super::sink::Sink;
use super::table::Table;

/// One page of one container.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PageId {
    /// Cluster-wide container id (see [`homed`]).
    pub container: u32,
    /// Index of the page in the container.
    pub index: u64,
}

/// Shift of the home field of a container id: bits 24..32 hold the home
/// node plus one (0: no home).
pub const HOME_SHIFT: u32 = 24;
/// Shift of the generation field of a homed container id: bits 16..24 hold
/// the home's generation ([`Gens::get`]) when the container was made.
pub const GEN_SHIFT: u32 = 16;
/// The serial bits of a homed container id (bits 0..16).
pub const SERIAL_MASK: u32 = (1 << GEN_SHIFT) - 1;

/// The id of the container `serial` homed at incarnation `gen` of `home`
/// (its generation in the view of the node making it, [`Gens::get`]): the
/// home's memory holds its pages at first. Layout: bits 24..32 the home
/// plus one, bits 16..24 `gen`, bits 0..16 `serial`. So the containers of
/// a node that died and came back are not those of its earlier
/// incarnations. An invalid `home` gives the unhomed id `serial`. A node
/// makes the ids of its own containers with
/// [`ContainerNode::new_container_id`].
pub fn homed(home: NodeId, gen: u8, serial: u16) -> u32 {
    if !home.is_valid() {
        return u32::from(serial);
    }
    ((u32::from(home.0) + 1) << HOME_SHIFT) | (u32::from(gen) << GEN_SHIFT) | u32::from(serial)
}

/// The home node of `container`, if it has one (ids below `1 << 24` have
/// none, nor do ids whose home field is above [`MAX_NODES`]).
pub fn home_of(container: u32) -> Option<NodeId> {
    let field = container >> HOME_SHIFT;
    if field == 0 || field as usize > MAX_NODES {
        None
    } else {
        Some(NodeId((field - 1) as u8))
    }
}

/// The generation of the home of `container` when the container was made
/// (bits 16..24; meaningful only if [`home_of`] names a home): the
/// container's pages are its home's only while that incarnation lives.
pub fn home_gen_of(container: u32) -> u8 {
    (container >> GEN_SHIFT) as u8
}

fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

/// The manager of `page` in a cluster of `nodes` nodes, all alive (a fixed
/// hash).
pub fn manager_of(page: PageId, nodes: usize) -> NodeId {
    let mut x = (page.container as u64) ^ page.index.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    let n = if nodes == 0 || nodes > MAX_NODES {
        MAX_NODES as u64
    } else {
        nodes as u64
    };
    NodeId((x % n) as u8)
}

/// The manager of `page` when only the nodes of `live` are alive: its
/// [`manager_of`] node while that one lives, otherwise the live node of
/// highest rendezvous weight for the page. So a death moves only the pages
/// the dead node managed, every survivor computes the same manager, and a
/// page's manager changes only when its manager dies.
pub fn manager_of_live(page: PageId, nodes: usize, live: NodeSet) -> NodeId {
    let first = manager_of(page, nodes);
    let live = NodeSet(live.0 & NodeSet::first(nodes).0);
    if live.contains(first) || live.is_empty() {
        return first;
    }
    let key = mix((page.container as u64) << 32 ^ page.index.rotate_left(17));
    let mut best = first;
    let mut best_weight = 0;
    for (i, node) in live.iter().enumerate() {
        let weight = mix(key ^ (u64::from(node.0) + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        if i == 0 || weight > best_weight {
            best = node;
            best_weight = weight;
        }
    }
    best
}

/// What this node may do with its local copy of a page.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Access {
    /// No valid copy.
    None,
    /// A read-only copy.
    Read,
    /// The only copy, writable.
    Write,
}

/// The home's memory, as the protocol asks it (see [`ContainerNode::on_message`]).
pub trait Backing {
    /// Returns whether the local memory holds `page`, a page of a container
    /// homed here that the container layer has not materialised yet.
    fn holds(&self, page: PageId) -> bool;
}

/// A [`Backing`] that holds nothing: for nodes that are no home, or
/// containers whose home memory starts empty.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoBacking;

impl Backing for NoBacking {
    fn holds(&self, _page: PageId) -> bool {
        false
    }
}

/// A range of pages of one container: indexes `first..end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageRange {
    /// The container.
    pub container: u32,
    /// First index.
    pub first: u64,
    /// End index (excluded), above `first`.
    pub end: u64,
}

impl PageRange {
    /// Returns whether `page` is in the range.
    pub fn contains(&self, page: PageId) -> bool {
        page.container == self.container && page.index >= self.first && page.index < self.end
    }

    /// Returns whether the range is not empty.
    pub fn is_valid(&self) -> bool {
        self.first < self.end
    }

    fn start(&self) -> PageId {
        PageId {
            container: self.container,
            index: self.first,
        }
    }
}

/// What a node reports it holds of a page after a death.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Holding {
    /// No valid copy.
    Nothing,
    /// A read copy.
    Read,
    /// The master copy.
    Owner,
    /// Nothing: a release of the page is under way here (what others
    /// report may be gone with it).
    Released,
}

/// A membership view: for each node, how many times it was seen to die or
/// come back (its *generation*): even while an incarnation of the node is
/// up, odd once it died. Every node starts at 0 (see the module docs,
/// "Rejoin"); a generation wraps after 256 changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gens(pub [u8; MAX_NODES]);

impl Default for Gens {
    fn default() -> Self {
        Gens([0; MAX_NODES])
    }
}

impl Gens {
    /// The generation of `node` (0 for an id out of range).
    pub fn get(&self, node: NodeId) -> u8 {
        self.0.get(node.index()).copied().unwrap_or(0)
    }

    fn set(&mut self, node: NodeId, gen: u8) {
        if let Some(g) = self.0.get_mut(node.index()) {
            *g = gen;
        }
    }

    /// Returns whether an incarnation of `node` is up in this view.
    pub fn is_up(&self, node: NodeId) -> bool {
        // (no `is_multiple_of`: the kernel's rustc predates it)
        self.get(node) & 1 == 0
    }

    /// The nodes up among the first `nodes`.
    pub fn live(&self, nodes: usize) -> NodeSet {
        let mut set = NodeSet::EMPTY;
        for i in 0..nodes.min(MAX_NODES) {
            if self.is_up(NodeId(i as u8)) {
                set.insert(NodeId(i as u8));
            }
        }
        set
    }

    /// A 64-bit digest naming the view (rounds are told apart by it).
    pub fn digest(&self) -> u64 {
        let mut h = 0x6a09_e667_f3bc_c908u64;
        for chunk in self.0.chunks_exact(8) {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            h = mix(h ^ u64::from_le_bytes(word)).wrapping_add(0x9e37_79b9_7f4a_7c15);
        }
        h
    }
}

/// Returns whether generation `a` comes after `b` (wrapping).
fn later(a: u8, b: u8) -> bool {
    let d = a.wrapping_sub(b);
    d != 0 && d < 128
}

/// A message between the container layers of two nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageMsg {
    /// Requester to manager: wants a copy (`write`: a unique writable one).
    Get {
        /// The page.
        page: PageId,
        /// Whether a writable copy is wanted.
        write: bool,
        /// The request's tag, not 0.
        tag: u32,
    },
    /// Manager to owner: serve `requester`.
    Forward {
        /// The page.
        page: PageId,
        /// The node that asked.
        requester: NodeId,
        /// Whether it wants a writable copy.
        write: bool,
        /// The request's tag.
        tag: u32,
    },
    /// Manager to requester: no copy exists anywhere, create the first one.
    Create {
        /// The page.
        page: PageId,
        /// The request's tag.
        tag: u32,
    },
    /// Owner to requester: a read copy (carries the page contents).
    Copy {
        /// The page.
        page: PageId,
        /// Version of the contents.
        version: u64,
        /// The request's tag.
        tag: u32,
    },
    /// Old owner to new owner: the page and its ownership (carries contents).
    Transfer {
        /// The page.
        page: PageId,
        /// Version the new owner writes under.
        version: u64,
        /// Nodes holding read copies, to invalidate.
        copyset: NodeSet,
        /// The request's tag.
        tag: u32,
    },
    /// New owner to old owner: the transfer arrived (so a transfer to a
    /// node that dies is known to its sender).
    TransferAck {
        /// The page.
        page: PageId,
    },
    /// New writer to a copy holder: drop your copy.
    Invalidate {
        /// The page.
        page: PageId,
        /// Version of the write that invalidates.
        version: u64,
    },
    /// Copy holder to writer: copy dropped.
    InvalidateAck {
        /// The page.
        page: PageId,
    },
    /// Owner to manager: wants to flush its copy into `target`.
    FlushRequest {
        /// The page.
        page: PageId,
        /// Node chosen to receive the page.
        target: NodeId,
    },
    /// Manager to owner: `target` is now the owner of record, inject.
    FlushGo {
        /// The page.
        page: PageId,
        /// Node to inject into.
        target: NodeId,
    },
    /// Manager to owner: ownership is already leaving (or the manager is
    /// recovering), nothing to inject.
    FlushCancel {
        /// The page.
        page: PageId,
    },
    /// Flushing owner to target: the page and its ownership (carries contents).
    Inject {
        /// The page.
        page: PageId,
        /// Version of the contents.
        version: u64,
        /// Nodes still holding read copies.
        copyset: NodeSet,
    },
    /// Target to flushing owner: the injection arrived.
    InjectAck {
        /// The page.
        page: PageId,
    },
    /// Manager or owner to requester: the request was not served (a release
    /// or a recovery is under way); the requester's threads retry.
    Retry {
        /// The page.
        page: PageId,
        /// The request's tag; 0 answers whatever request is in flight.
        tag: u32,
    },
    /// Manager to requester: the page was lost with a dead node.
    Failed {
        /// The page.
        page: PageId,
        /// The request's tag.
        tag: u32,
    },
    /// Release coordinator to every node: drop `range`.
    Release {
        /// Node that asked for the release.
        origin: NodeId,
        /// Release id, unique for `origin`.
        id: u32,
        /// The pages.
        range: PageRange,
    },
    /// Node to release coordinator: nothing of the range is left here.
    ReleaseAck {
        /// Node that asked for the release.
        origin: NodeId,
        /// Release id.
        id: u32,
        /// The release was complete already: this node lowered its fence
        /// (answer to a resumed release).
        done: bool,
    },
    /// Release coordinator to every node: the release is complete, lower the
    /// fence. Sent to the container's home first, with `ack`: the home
    /// answers [`PageMsg::ReleaseAck`] once its fence is down.
    ReleaseDone {
        /// Node that asked for the release.
        origin: NodeId,
        /// Release id.
        id: u32,
        /// Whether to acknowledge.
        ack: bool,
    },
    /// Node holding a fence whose coordinator died, to the lowest live node:
    /// finish this release.
    ReleaseResume {
        /// Node that asked for the release.
        origin: NodeId,
        /// Release id.
        id: u32,
        /// The pages.
        range: PageRange,
    },
    /// Recovery round marker: the sender's membership view changed to
    /// `gens`, and it has sent everything it sent before.
    Marker {
        /// The sender's view: how often it saw each node die or come back.
        gens: Gens,
    },
    /// Survivor to the page's live manager: what it knows of the page.
    Report {
        /// The page.
        page: PageId,
        /// The round ([`Gens::digest`] of the sender's view).
        view: u64,
        /// The copy the sender holds.
        holding: Holding,
        /// The node the sender passes ownership to: a transfer or injection
        /// sent (`sent`), or an injection allowed and not yet sent.
        next: Option<NodeId>,
        /// Whether ownership already left for `next`.
        sent: bool,
        /// Whether that was an injection (else a transfer, whose target
        /// asked for the page and waits for it).
        injected: bool,
        /// The write requests queued at the sender, in the order it serves
        /// them when it holds the page.
        queued: [Option<NodeId>; 2],
        /// Whether the sender waits for an answer or for the page.
        waiting: bool,
        /// Whether the sender knows the page exists: it is the page's home
        /// and materialised it, or it managed the page until this round
        /// (a node joined) and had an owner of record or had lost it.
        known: bool,
        /// Version of the page the sender passed on (`sent`), or holds.
        version: u64,
    },
    /// Survivor to every live node: all its reports of the round are sent.
    ReportEnd {
        /// The round ([`Gens::digest`]).
        view: u64,
    },
    /// Manager to a waiting reporter: the page was rebuilt.
    Resolved {
        /// The page.
        page: PageId,
        /// The round ([`Gens::digest`]).
        view: u64,
        /// An answer, or the page, is still on its way to the reporter:
        /// keep waiting. Otherwise none will come.
        keep: bool,
        /// Whether the page is lost.
        lost: bool,
    },
    /// Manager to a read copy holder: the owner died, become the owner.
    Promote {
        /// The page.
        page: PageId,
        /// The other read copy holders.
        copyset: NodeSet,
    },
    /// Read copy holder to manager: promoted (`ok`), or no copy left.
    PromoteAck {
        /// The page.
        page: PageId,
        /// Whether the node became the owner.
        ok: bool,
    },
}

impl PageMsg {
    /// The page the message is about; `None` for the messages about ranges
    /// or rounds ([`PageMsg::Release`], [`PageMsg::ReleaseAck`],
    /// [`PageMsg::ReleaseDone`], [`PageMsg::ReleaseResume`],
    /// [`PageMsg::Marker`], [`PageMsg::ReportEnd`]).
    pub fn page(&self) -> Option<PageId> {
        match *self {
            PageMsg::Get { page, .. }
            | PageMsg::Forward { page, .. }
            | PageMsg::Create { page, .. }
            | PageMsg::Copy { page, .. }
            | PageMsg::Transfer { page, .. }
            | PageMsg::TransferAck { page }
            | PageMsg::Invalidate { page, .. }
            | PageMsg::InvalidateAck { page }
            | PageMsg::FlushRequest { page, .. }
            | PageMsg::FlushGo { page, .. }
            | PageMsg::FlushCancel { page }
            | PageMsg::Inject { page, .. }
            | PageMsg::InjectAck { page }
            | PageMsg::Retry { page, .. }
            | PageMsg::Failed { page, .. }
            | PageMsg::Report { page, .. }
            | PageMsg::Resolved { page, .. }
            | PageMsg::Promote { page, .. }
            | PageMsg::PromoteAck { page, .. } => Some(page),
            PageMsg::Release { .. }
            | PageMsg::ReleaseAck { .. }
            | PageMsg::ReleaseDone { .. }
            | PageMsg::ReleaseResume { .. }
            | PageMsg::Marker { .. }
            | PageMsg::ReportEnd { .. } => None,
        }
    }

    /// Returns whether the message carries the page contents: a page's
    /// contents cross the wire once per copy, transfer or injection.
    pub fn carries_data(&self) -> bool {
        matches!(
            self,
            PageMsg::Copy { .. } | PageMsg::Transfer { .. } | PageMsg::Inject { .. }
        )
    }

    /// Checks the node ids and sets the message names against a cluster of
    /// `nodes` nodes.
    fn check(&self, nodes: usize) -> Result<(), Error> {
        let all = NodeSet::first(nodes);
        let node_ok = |n: NodeId| n.index() < nodes;
        let ok = match *self {
            PageMsg::Get { tag, .. } => tag != 0,
            PageMsg::Forward { requester, .. } => node_ok(requester),
            PageMsg::FlushRequest { target, .. } | PageMsg::FlushGo { target, .. } => {
                node_ok(target)
            }
            PageMsg::Transfer { copyset, .. }
            | PageMsg::Inject { copyset, .. }
            | PageMsg::Promote { copyset, .. } => copyset.is_subset(all),
            PageMsg::Release { origin, range, .. }
            | PageMsg::ReleaseResume { origin, range, .. } => node_ok(origin) && range.is_valid(),
            PageMsg::ReleaseAck { origin, .. } | PageMsg::ReleaseDone { origin, .. } => {
                node_ok(origin)
            }
            PageMsg::Marker { gens } => gens.0.iter().skip(nodes).all(|g| *g == 0),
            PageMsg::Report { next, queued, .. } => {
                // (no `Option::is_none_or`: the kernel's rustc predates it)
                next.into_iter()
                    .chain(queued.into_iter().flatten())
                    .all(node_ok)
            }
            _ => true,
        };
        if ok {
            Ok(())
        } else {
            Err(Error::Protocol)
        }
    }
}

/// What the caller must do after an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageAction {
    /// Send `msg` to `to` (possibly this node: deliver it locally). Never
    /// addressed to a node known dead.
    Send {
        /// Destination.
        to: NodeId,
        /// The message; [`PageMsg::carries_data`] says whether to attach the
        /// local copy.
        msg: PageMsg,
    },
    /// Run the I/O linker's first touch: create the page's first copy here.
    FirstTouch {
        /// The page.
        page: PageId,
    },
    /// Home only: the backing's page becomes the container's copy (it stays
    /// where it is; from now on the container layer decides who has it).
    Adopt {
        /// The page.
        page: PageId,
    },
    /// Install the contents carried by the message being handled.
    Install {
        /// The page.
        page: PageId,
    },
    /// Drop the local copy (invalidated, given away, flushed or released).
    Discard {
        /// The page.
        page: PageId,
    },
    /// Home only: a release drops `first..end` of `container` from the
    /// backing too (pages never adopted), so that they are fresh afterwards.
    DropBacking {
        /// The container.
        container: u32,
        /// First index.
        first: u64,
        /// End index (excluded).
        end: u64,
    },
    /// The local copy lost write access (a read copy was handed out).
    WriteProtect {
        /// The page.
        page: PageId,
    },
    /// The local request is over with `access` (possibly not the access
    /// asked, e.g. [`Access::None`] when a release or a recovery cancelled
    /// it): wake the faulting threads, which retry if it is not enough.
    Ready {
        /// The page.
        page: PageId,
        /// Access now available.
        access: Access,
    },
    /// The local request failed: the page was lost with a dead node (the
    /// faulting threads get SIGBUS).
    Failed {
        /// The page.
        page: PageId,
    },
    /// A [`ContainerNode::flush_page`] has finished (copy dropped or kept).
    Flushed {
        /// The page.
        page: PageId,
        /// Whether the local copy is gone.
        dropped: bool,
    },
    /// The release `(origin, id)` is complete: no node holds a copy or a
    /// record of `range` (emitted by the node that completes it: its origin,
    /// or the node that resumed it after the origin died).
    Released {
        /// Node that asked for the release.
        origin: NodeId,
        /// The id [`ContainerNode::release`] returned.
        id: u32,
        /// The pages.
        range: PageRange,
    },
}

/// What [`ContainerNode::get_page`] and [`ContainerNode::grab_page`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// The local copy allows the access: no message needed.
    Hit,
    /// A request is under way: wait for [`PageAction::Ready`] (then retry)
    /// or [`PageAction::Failed`].
    Wait,
}

/// A request a node has in flight for a page.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Want {
    /// Nothing asked.
    #[default]
    Nothing,
    /// A read copy asked.
    Read,
    /// A writable copy asked.
    Write,
}

/// Most ownership links a manager collects for one page in a recovery
/// round; more make the page lost (it never happens with fewer writers
/// queued on one page).
pub const MAX_LINKS: usize = 8;
/// Read requests queued at an owner whose tags it keeps.
pub const READ_TAGS: usize = 4;
/// Most releases a recovery round remembers (more make every page of the
/// round's rebuild count as released: its waiters retry).
pub const MAX_ROUND_RELEASES: usize = 32;
/// Version step of a promoted read copy (see [`PageMsg::Promote`]).
pub const PROMOTION_VERSION_STEP: u64 = 3;
/// Most release fences a node holds at once (further releases are
/// [`Error::NoSpace`] and must be delivered again later).
pub const MAX_FENCES: usize = 16;
/// Most releases a node coordinates at once ([`Error::Busy`] beyond).
pub const MAX_RELEASES: usize = 8;

/// One ownership hand-off reported in a recovery round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Link {
    /// Node passing ownership.
    pub from: NodeId,
    /// Node receiving it, if any.
    pub to: Option<NodeId>,
    /// Whether the page already left `from` (else a write is queued there).
    pub sent: bool,
    /// Version of the page sent (the latest hand-off has the highest).
    pub version: u64,
    /// The hand-off was an injection (its target need not wait for it).
    pub injected: bool,
}

/// Manager role, during a recovery round: what the reports said.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rebuild {
    /// A report arrived.
    pub seen: bool,
    /// Nodes holding the master copy.
    pub owners: NodeSet,
    /// Nodes holding a read copy.
    pub holders: NodeSet,
    /// Nodes waiting for a request, or for the page to serve their queue.
    pub waiters: NodeSet,
    /// The home reported materialising the page.
    pub known: bool,
    /// A reporter is releasing the page.
    pub released: bool,
    /// Ownership hand-offs.
    pub links: [Option<Link>; MAX_LINKS],
    /// More links than [`MAX_LINKS`] were reported.
    pub overflow: bool,
}

/// Everything one node knows about one page, in its roles.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PageRecord {
    /// Manager role: owner of record (`None`: the page exists nowhere yet).
    pub owner_of_record: Option<NodeId>,
    /// Manager role: the page was lost with a dead node.
    pub lost: bool,
    /// Manager role: a read copy holder promoted, not yet acknowledged.
    pub promoting: Option<NodeId>,
    /// Manager role: the other holders to promote if that one cannot.
    pub promote_rest: NodeSet,
    /// Manager role: the reports of the recovery round.
    pub rebuild: Rebuild,
    /// Home role: this node materialised the page (adopted or created it).
    pub home_known: bool,
    /// Holder role: a valid local copy is present.
    pub present: bool,
    /// Holder role: this node is the owner (holds the master copy).
    pub is_owner: bool,
    /// Owner role: nodes holding read copies.
    pub copyset: NodeSet,
    /// Version of the local copy.
    pub version: u64,
    /// Copies older than this are stale.
    pub min_version: u64,
    /// Requester role: what is asked.
    pub want: Want,
    /// Requester role: tag of the last request sent.
    pub tag: u32,
    /// Requester role: the answer to request `tag` has not come back. The
    /// record (and its `min_version`) lives until it has.
    pub waiting: bool,
    /// Requester role: the manager names this node owner; the page is on
    /// its way.
    pub incoming: bool,
    /// Requester role: reported waiting in the current recovery round.
    pub reported: bool,
    /// Requester role: invalidations not yet acknowledged.
    pub awaiting_acks: NodeSet,
    /// Owner role: forwarded read requests waiting for the page.
    pub queued_reads: NodeSet,
    /// Owner role: a forwarded write request waiting for the page.
    pub queued_write: Option<NodeId>,
    /// A flush is under way.
    pub flushing: bool,
    /// The manager allowed the flush into this node.
    pub flush_go: Option<NodeId>,
    /// An injection sent to this node, not yet acknowledged.
    pub inject_to: Option<NodeId>,
    /// Ownership transferred to this node, not yet acknowledged (or
    /// acknowledged by no one: the node died; kept for the recovery report).
    pub handed_to: Option<NodeId>,
    /// `handed_to` names the target of an injection, acknowledged while a
    /// recovery snapshot was pending (kept for the report).
    pub handed_injected: bool,
    /// Version of the page handed (or injected) away.
    pub handed_version: u64,
    /// Owner role: tag of the queued write request.
    pub queued_write_tag: u32,
    /// Owner role: a second write request (and its tag), served when the
    /// page comes back: a flush target that also asked for the page is
    /// named owner twice.
    pub next_write: Option<(NodeId, u32)>,
    /// Owner role: tags of queued read requests (a reader without a slot is
    /// answered with tag 0, which stands for its request in flight).
    pub read_tags: [Option<(NodeId, u32)>; READ_TAGS],
    /// Released: a zombie kept until the messages it expects have come.
    pub released: bool,
}

impl PageRecord {
    /// Access the local copy gives.
    pub fn access(&self) -> Access {
        if !self.present {
            Access::None
        } else if self.is_owner && self.copyset.is_empty() && self.awaiting_acks.is_empty() {
            Access::Write
        } else {
            Access::Read
        }
    }

    /// Returns whether a message is still expected for this record (a
    /// released record stays until none is).
    pub fn expects(&self) -> bool {
        self.waiting
            || self.incoming
            || !self.awaiting_acks.is_empty()
            || self.flushing
            || self.inject_to.is_some()
            || self.promoting.is_some()
    }

    /// Queues a forwarded read request of `reader` (tag `tag`).
    fn queue_read(&mut self, reader: NodeId, tag: u32) {
        self.queued_reads.insert(reader);
        let slot = self.read_tags.iter_mut().find(|s| match s {
            None => true,
            Some((node, _)) => *node == reader,
        });
        if let Some(slot) = slot {
            *slot = Some((reader, tag));
        }
    }

    /// The tag of the queued read request of `reader` (0 if not kept),
    /// forgetting it.
    fn take_read_tag(&mut self, reader: NodeId) -> u32 {
        for slot in self.read_tags.iter_mut() {
            if let Some((node, tag)) = *slot {
                if node == reader {
                    *slot = None;
                    return tag;
                }
            }
        }
        0
    }

    /// Answers every queued request with a retry (their page will not come
    /// here) and empties the queue.
    fn retry_queue(&mut self, page: PageId, me: NodeId, out: &mut dyn FnMut(NodeId, PageMsg)) {
        for reader in self.queued_reads.iter() {
            let tag = self.take_read_tag(reader);
            if reader != me {
                out(reader, PageMsg::Retry { page, tag });
            }
        }
        self.queued_reads = NodeSet::EMPTY;
        self.read_tags = [None; READ_TAGS];
        if let Some(writer) = self.queued_write.take() {
            if writer != me {
                out(
                    writer,
                    PageMsg::Retry {
                        page,
                        tag: self.queued_write_tag,
                    },
                );
            }
        }
        self.queued_write_tag = 0;
        if let Some((writer, tag)) = self.next_write.take() {
            if writer != me {
                out(writer, PageMsg::Retry { page, tag });
            }
        }
    }

    /// Returns whether an answer with `tag` answers the request in flight.
    fn answers(&self, tag: u32) -> bool {
        self.waiting && (tag == 0 || tag == self.tag)
    }

    /// Returns whether the node waits for an answer, or for the page to
    /// serve the requests queued at it.
    fn is_waiter(&self) -> bool {
        self.waiting
            || self.incoming
            || (!self.present
                && (!self.queued_reads.is_empty()
                    || self.queued_write.is_some()
                    || self.next_write.is_some()))
    }

    fn is_unused(&self) -> bool {
        let idle = PageRecord {
            version: self.version,
            min_version: self.min_version,
            tag: self.tag,
            handed_version: self.handed_version,
            queued_write_tag: self.queued_write_tag,
            ..PageRecord::default()
        };
        *self == idle
    }

    fn busy(&self) -> bool {
        !self.present || !self.is_owner || !self.awaiting_acks.is_empty()
    }
}

/// A release this node applied, until it is done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Fence {
    origin: NodeId,
    id: u32,
    range: PageRange,
    coordinator: NodeId,
    acked: bool,
}

/// A release this node coordinates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Coord {
    origin: NodeId,
    id: u32,
    range: PageRange,
    awaiting: NodeSet,
    /// Complete; the home was told first and its acknowledgement awaited.
    closing: bool,
    /// A resumed release found complete before (its completion was
    /// reported then).
    done: bool,
}

/// A recovery round in progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Recovery {
    /// [`Gens::digest`] of the view the round is for.
    view: u64,
    ends: NodeSet,
    reported: bool,
    /// Ranges released since the round started: reports about them may
    /// describe pages dropped since.
    released: [Option<PageRange>; MAX_ROUND_RELEASES],
    /// More than [`MAX_ROUND_RELEASES`] of them.
    released_overflow: bool,
}

impl Recovery {
    fn released(&self, page: PageId) -> bool {
        self.released_overflow || self.released.iter().flatten().any(|r| r.contains(page))
    }
}

/// How a manager rebuilt a page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Owner(NodeId),
    Promote,
    Lost,
    Unknown,
}

// Deliberate faults for the simulator's mutation checks; see `mutants`.
const MUTANT_SKIP_INVALIDATION: u8 = 1;
const MUTANT_NO_VERSION_BUMP: u8 = 2;
const MUTANT_KEEP_BACKING: u8 = 3;
const MUTANT_JOIN_EARLY: u8 = 4;

/// Fault injection for the simulator's mutation checks (feature `mutants`,
/// never built into the kernel): a test selects one deliberately broken
/// variant of the protocol and checks that the simulator catches it.
#[cfg(feature = "mutants")]
pub mod mutants {
    use core::sync::atomic::{AtomicU8, Ordering};

    /// The correct protocol.
    pub const NONE: u8 = 0;
    /// A new writer does not invalidate the first holder of its copyset.
    pub const SKIP_INVALIDATION: u8 = super::MUTANT_SKIP_INVALIDATION;
    /// Write ownership changes hands without a new version (transfers and
    /// invalidations keep the old one).
    pub const NO_VERSION_BUMP: u8 = super::MUTANT_NO_VERSION_BUMP;
    /// A release does not drop the home's backing, so the home adopts the
    /// old page again.
    pub const KEEP_BACKING: u8 = super::MUTANT_KEEP_BACKING;
    /// A node that comes back serves faults before its first recovery
    /// round is over (before it knows the view).
    pub const JOIN_EARLY: u8 = super::MUTANT_JOIN_EARLY;

    static ACTIVE: AtomicU8 = AtomicU8::new(NONE);

    /// Selects the mutant every container node of the process runs.
    pub fn set(mutant: u8) {
        ACTIVE.store(mutant, Ordering::SeqCst);
    }

    /// The mutant selected.
    pub fn active() -> u8 {
        ACTIVE.load(Ordering::SeqCst)
    }
}

#[inline]
fn mutant(which: u8) -> bool {
    #[cfg(feature = "mutants")]
    {
        mutants::active() == which
    }
    #[cfg(not(feature = "mutants"))]
    {
        let _ = which;
        false
    }
}

/// The key after `page` in key order, if any.
fn successor(page: PageId) -> Option<PageId> {
    if page.index < u64::MAX {
        Some(PageId {
            container: page.container,
            index: page.index + 1,
        })
    } else if page.container < u32::MAX {
        Some(PageId {
            container: page.container + 1,
            index: 0,
        })
    } else {
        None
    }
}

/// The container layer of one node, over a caller-provided record table.
#[derive(Debug)]
pub struct ContainerNode<T: Table<PageId, PageRecord>> {
    me: NodeId,
    nodes: usize,
    records: T,
    live: NodeSet,
    /// The membership view (`live` is its nodes up, once `synced`).
    gens: Gens,
    /// Nodes the messaging layer reports up (connected) here.
    connected: NodeSet,
    /// Nodes whose generation a joining node has not learnt yet (its 0 for
    /// them is no knowledge).
    guessed: NodeSet,
    /// The highest generation of each node any marker carried.
    hint: Gens,
    /// [`Gens::digest`] of the latest marker of each node.
    peer_view: [Option<u64>; MAX_NODES],
    /// A fresh incarnation whose first recovery round has not finished.
    joining: bool,
    /// This node knows its own generation (false for a joining node until
    /// its first marker).
    synced: bool,
    next_tag: u32,
    next_release: u32,
    recovery: Option<Recovery>,
    fences: [Option<Fence>; MAX_FENCES],
    coords: [Option<Coord>; MAX_RELEASES],
    seen_release: [u32; MAX_NODES],
}

impl<T: Table<PageId, PageRecord>> ContainerNode<T> {
    /// Creates the container layer of node `me` in a cluster of `nodes`
    /// booting together: every node is live and connected, of generation 0
    /// ([`ContainerNode::node_up`] for them changes nothing).
    pub fn new(me: NodeId, nodes: usize, records: T) -> Result<Self, Error> {
        if nodes == 0 || nodes > MAX_NODES || me.index() >= nodes {
            return Err(Error::Invalid);
        }
        Ok(ContainerNode {
            me,
            nodes,
            records,
            live: NodeSet::first(nodes),
            gens: Gens::default(),
            connected: NodeSet::first(nodes),
            guessed: NodeSet::EMPTY,
            hint: Gens::default(),
            peer_view: [None; MAX_NODES],
            joining: false,
            synced: true,
            next_tag: 1,
            next_release: 1,
            recovery: None,
            fences: [None; MAX_FENCES],
            coords: [None; MAX_RELEASES],
            seen_release: [0; MAX_NODES],
        })
    }

    /// Creates the container layer of node `me` rejoining a running cluster
    /// of `nodes` as a fresh incarnation (it remembers nothing of an earlier
    /// one): it knows no view until the first [`PageMsg::Marker`] reaches
    /// it, its faults and releases are [`Error::Busy`] until its first
    /// recovery round is over, and the messaging layer reports each peer
    /// that is up with [`ContainerNode::node_up`]. See the module docs,
    /// "Rejoin".
    pub fn rejoin(me: NodeId, nodes: usize, records: T) -> Result<Self, Error> {
        let mut node = Self::new(me, nodes, records)?;
        node.live = NodeSet::single(me);
        node.connected = NodeSet::single(me);
        node.guessed = NodeSet::first(nodes).without(me);
        node.joining = true;
        node.synced = false;
        Ok(node)
    }

    /// Starts this node afresh, in place: with `joining`, as
    /// [`ContainerNode::rejoin`] creates it, else as [`ContainerNode::new`]
    /// does; every record goes. The kernel keeps its node in the heap and
    /// resets it so: a node is several kilobytes, too big to build on a
    /// kernel stack beside its callers' frames.
    pub fn restart(&mut self, joining: bool) {
        let first = PageId {
            container: 0,
            index: 0,
        };
        while let Some(page) = self.records.next_from(&first) {
            self.records.remove(&page);
        }
        let all = NodeSet::first(self.nodes);
        let alone = NodeSet::single(self.me);
        self.live = if joining { alone } else { all };
        self.gens = Gens::default();
        self.connected = if joining { alone } else { all };
        self.guessed = if joining {
            all.without(self.me)
        } else {
            NodeSet::EMPTY
        };
        self.peer_view = [None; MAX_NODES];
        self.joining = joining;
        self.synced = !joining;
        self.next_tag = 1;
        self.next_release = 1;
        self.recovery = None;
        self.fences = [None; MAX_FENCES];
        self.coords = [None; MAX_RELEASES];
        self.seen_release = [0; MAX_NODES];
    }

    /// Returns whether this node is a fresh incarnation that has not
    /// finished joining (see [`ContainerNode::rejoin`]).
    pub fn is_joining(&self) -> bool {
        self.joining
    }

    /// The membership view of this node.
    pub fn gens(&self) -> Gens {
        self.gens
    }

    /// This node's id.
    pub fn node(&self) -> NodeId {
        self.me
    }

    /// The id of a new container homed at this incarnation of this node:
    /// [`homed`]`(me, gen, serial)`, `gen` this node's own generation, so
    /// that the container outlives none of this incarnation's memory and
    /// is not one of an earlier incarnation's. The caller allocates the
    /// 16-bit `serial`, unique among the live containers it homes (an id
    /// is in use until every release of its pages is complete; this module
    /// keeps no list of containers).
    ///
    /// # Errors
    ///
    /// [`Error::Busy`] while this node is a fresh incarnation that has not
    /// finished joining ([`ContainerNode::is_joining`]): it does not know
    /// its own generation before its first marker, and could not serve
    /// the container's pages before its first round is over. Retry later.
    pub fn new_container_id(&self, serial: u16) -> Result<u32, Error> {
        if self.joining || !self.synced {
            return Err(Error::Busy);
        }
        Ok(homed(self.me, self.gens.get(self.me), serial))
    }

    /// The nodes this node believes alive.
    pub fn live(&self) -> NodeSet {
        self.live
    }

    /// The record of `page`, if this node keeps one.
    pub fn record(&self, page: PageId) -> Option<&PageRecord> {
        self.records.get(&page)
    }

    /// The record table.
    pub fn records(&self) -> &T {
        &self.records
    }

    /// Returns whether a recovery round is in progress here.
    pub fn is_recovering(&self) -> bool {
        self.recovery.is_some()
    }

    /// Returns whether a release fence covers `page` here (faults on it are
    /// [`Error::Busy`]).
    pub fn is_fenced(&self, page: PageId) -> bool {
        self.fence_of(page).is_some()
    }

    /// Number of release fences up and of releases coordinated here.
    pub fn releases_in_progress(&self) -> (usize, usize) {
        (
            self.fences.iter().flatten().count(),
            self.coords.iter().flatten().count(),
        )
    }

    /// The manager of `page` as this node sees the cluster.
    pub fn manager(&self, page: PageId) -> NodeId {
        manager_of_live(page, self.nodes, self.live)
    }

    /// `find_page`: the access the local copy of `page` gives.
    pub fn find_page(&self, page: PageId) -> Access {
        self.records
            .get(&page)
            .map_or(Access::None, PageRecord::access)
    }

    /// Returns whether a request for `page` is in flight from this node.
    pub fn is_pending(&self, page: PageId) -> bool {
        self.records
            .get(&page)
            .is_some_and(|r| r.want != Want::Nothing)
    }

    /// `get_page`: makes a read copy of `page` present here.
    /// [`Error::Busy`] while a flush of the page or a release of its range
    /// is under way: retry later.
    pub fn get_page(
        &mut self,
        page: PageId,
        out: &mut dyn Sink<PageAction>,
    ) -> Result<Lookup, Error> {
        self.fault(page, false, out)
    }

    /// `grab_page`: makes the only, writable, copy of `page` present here.
    /// Errors as [`ContainerNode::get_page`].
    pub fn grab_page(
        &mut self,
        page: PageId,
        out: &mut dyn Sink<PageAction>,
    ) -> Result<Lookup, Error> {
        self.fault(page, true, out)
    }

    fn fault(
        &mut self,
        page: PageId,
        write: bool,
        out: &mut dyn Sink<PageAction>,
    ) -> Result<Lookup, Error> {
        if self.is_fenced(page) || (self.joining && !mutant(MUTANT_JOIN_EARLY)) {
            return Err(Error::Busy);
        }
        let needed = if write { Access::Write } else { Access::Read };
        let known = self.records.get(&page).copied().unwrap_or_default();
        if known.access() >= needed {
            return Ok(Lookup::Hit);
        }
        if known.flushing || known.released {
            return Err(Error::Busy);
        }
        if known.want != Want::Nothing {
            return Ok(Lookup::Wait);
        }
        if known.waiting || known.incoming {
            // A request satisfied early (by an adoption or an injection)
            // still has its answer on the way, possibly ownership: a new
            // request now could make this node the designated owner twice.
            return Err(Error::Busy);
        }
        let mut rec = self.load(page)?;
        if rec.is_owner && rec.present {
            // Owner with read copies out: invalidate them itself (unless
            // invalidations are under way already).
            rec.want = Want::Write;
            if rec.awaiting_acks.is_empty() {
                self.start_invalidation(page, &mut rec, out);
            }
            self.finish_if_done(page, &mut rec, out);
        } else {
            rec.want = if write { Want::Write } else { Want::Read };
            self.send_get(page, &mut rec, out);
        }
        self.store(page, rec);
        Ok(Lookup::Wait)
    }

    /// `flush_page`: drops the local copy of `page`; if this node owns it,
    /// the page is injected into a copy holder, or into `fallback` when no
    /// other copy exists. [`PageAction::Flushed`] tells when done.
    /// [`Error::Busy`] while a request on the page is in flight or a
    /// recovery is under way, [`Error::Invalid`] for a `fallback` that is
    /// this node or not alive.
    pub fn flush_page(
        &mut self,
        page: PageId,
        fallback: NodeId,
        out: &mut dyn Sink<PageAction>,
    ) -> Result<(), Error> {
        let Some(mut rec) = self.records.get(&page).copied() else {
            out.push(PageAction::Flushed {
                page,
                dropped: true,
            });
            return Ok(());
        };
        if !rec.present {
            out.push(PageAction::Flushed {
                page,
                dropped: true,
            });
            return Ok(());
        }
        if rec.want != Want::Nothing
            || rec.flushing
            || !rec.awaiting_acks.is_empty()
            || self.recovery.is_some()
        {
            // During a recovery a read copy may be the last one left.
            return Err(Error::Busy);
        }
        if !rec.is_owner {
            // Another copy (the owner's) exists: simply discard this one.
            rec.present = false;
            out.push(PageAction::Discard { page });
            out.push(PageAction::Flushed {
                page,
                dropped: true,
            });
            self.store(page, rec);
            return Ok(());
        }
        let target = match rec.copyset.lowest() {
            Some(node) => node,
            None => fallback,
        };
        if target == self.me || !self.live.contains(target) {
            return Err(Error::Invalid);
        }
        rec.flushing = true;
        self.send(
            self.manager(page),
            PageMsg::FlushRequest { page, target },
            out,
        );
        self.store(page, rec);
        Ok(())
    }

    /// Releases pages `first..end` of `container` cluster-wide (see the
    /// module docs). Returns the release id; [`PageAction::Released`] with
    /// this node as origin and that id tells when it is complete.
    /// [`Error::Invalid`] for an empty range, [`Error::Busy`] when this node
    /// coordinates [`MAX_RELEASES`] releases already or is joining,
    /// [`Error::NoSpace`] when it holds [`MAX_FENCES`] fences.
    pub fn release(
        &mut self,
        container: u32,
        first: u64,
        end: u64,
        out: &mut dyn Sink<PageAction>,
    ) -> Result<u32, Error> {
        let range = PageRange {
            container,
            first,
            end,
        };
        if !range.is_valid() {
            return Err(Error::Invalid);
        }
        if self.joining {
            return Err(Error::Busy);
        }
        let slot = self
            .coords
            .iter()
            .position(Option::is_none)
            .ok_or(Error::Busy)?;
        if !self.fences.iter().any(Option::is_none) {
            return Err(Error::NoSpace);
        }
        let id = self.next_release;
        self.next_release = self.next_release.wrapping_add(1).max(1);
        if let Some(c) = self.coords.get_mut(slot) {
            *c = Some(Coord {
                origin: self.me,
                id,
                range,
                awaiting: self.live,
                closing: false,
                done: false,
            });
        }
        for node in self.live.without(self.me).iter() {
            self.send(
                node,
                PageMsg::Release {
                    origin: self.me,
                    id,
                    range,
                },
                out,
            );
        }
        self.apply_release(self.me, self.me, id, range, out)?;
        self.check_fences(out);
        Ok(id)
    }

    /// Handles a message from node `from` (possibly this node). `backing`
    /// answers for the pages of containers homed here ([`NoBacking`] on a
    /// node that is home of nothing). A message from a node not live here is
    /// dropped, except a marker from a node the messaging layer reports
    /// connected (a joining node learns the view from it).
    /// [`Error::Protocol`] for a message the protocol never sends
    /// in this state (the state is then unchanged), [`Error::NoSpace`] when
    /// a table is full (deliver it again later).
    pub fn on_message(
        &mut self,
        from: NodeId,
        msg: PageMsg,
        backing: &dyn Backing,
        out: &mut dyn Sink<PageAction>,
    ) -> Result<(), Error> {
        if from.index() >= self.nodes {
            return Err(Error::Protocol);
        }
        // A marker comes over a connection, possibly from a node this one
        // does not count live yet (it learns the view from markers).
        let marker = matches!(msg, PageMsg::Marker { .. });
        if !(self.live.contains(from) || marker && self.connected.contains(from)) {
            return Ok(());
        }
        msg.check(self.nodes)?;
        let result = match msg.page() {
            Some(page) => {
                let result = self.handle(from, page, msg, backing, out);
                if result.is_err() && self.records.get(&page).is_some_and(PageRecord::is_unused) {
                    // Leave no trace of a refused message.
                    self.records.remove(&page);
                }
                result
            }
            None => self.handle_range(from, msg, out),
        };
        if result.is_ok() {
            self.check_fences(out);
        }
        result
    }

    /// The messaging layer reports `dead` dead (call once per death on every
    /// survivor; later calls are ignored). Starts the recovery round of the
    /// module docs. [`Error::Invalid`] for this node or an id out of range;
    /// [`Error::NoSpace`] if a release to resume found no free slot (the rest
    /// is done).
    pub fn node_down(&mut self, dead: NodeId, out: &mut dyn Sink<PageAction>) -> Result<(), Error> {
        if dead.index() >= self.nodes || dead == self.me {
            return Err(Error::Invalid);
        }
        if !self.connected.contains(dead) {
            return Ok(());
        }
        self.connected.remove(dead);
        if let Some(v) = self.peer_view.get_mut(dead.index()) {
            *v = None;
        }
        let old = (self.live, self.gens.digest());
        if self.synced {
            self.count(dead, false);
        }
        let result = self.apply_view(old, out);
        self.check_fences(out);
        result
    }

    /// The messaging layer reports `node` up: connected to this node, a
    /// fresh incarnation if this node knew it dead. A node already live and
    /// connected (every node of [`ContainerNode::new`], at boot) changes
    /// nothing; a node coming back starts a recovery round that moves its
    /// pages back to it (see the module docs, "Rejoin"). [`Error::Invalid`]
    /// for an id out of range; [`Error::NoSpace`] as
    /// [`ContainerNode::node_down`].
    pub fn node_up(&mut self, node: NodeId, out: &mut dyn Sink<PageAction>) -> Result<(), Error> {
        if node.index() >= self.nodes {
            return Err(Error::Invalid);
        }
        if node == self.me || self.connected.contains(node) {
            return Ok(());
        }
        self.connected.insert(node);
        if let Some(v) = self.peer_view.get_mut(node.index()) {
            *v = None;
        }
        let old = (self.live, self.gens.digest());
        if self.synced {
            self.count(node, true);
        }
        let result = self.apply_view(old, out);
        self.check_fences(out);
        result
    }

    /// The messaging layer reports `node` up or down: its generation turns
    /// even or odd, or takes the highest one a marker carried if that agrees.
    fn count(&mut self, node: NodeId, up: bool) {
        let mut gen = self.gens.get(node);
        if self.gens.is_up(node) != up {
            gen = gen.wrapping_add(1);
        }
        let hint = self.hint.get(node);
        if later(hint, gen) && self.hint.is_up(node) == up {
            gen = hint;
        }
        self.gens.set(node, gen);
        self.guessed.remove(node);
    }

    /// A marker of `from` carrying its view `gens`: learns what it can of
    /// the view, then reports if every live node's marker of this view came.
    fn apply_marker(
        &mut self,
        from: NodeId,
        gens: Gens,
        out: &mut dyn Sink<PageAction>,
    ) -> Result<(), Error> {
        let old = (self.live, self.gens.digest());
        if !self.synced {
            // The first marker of a joining node: the sender counts it up
            // (it sends only to nodes it counts up).
            if !gens.is_up(self.me) || gens.get(self.me) == 0 {
                // The sender does not know this incarnation yet (it joined
                // too, and waits for this node's own marker): a node that
                // does will send one.
                return Ok(());
            }
            self.synced = true;
            // Release ids of this incarnation above those of the earlier.
            self.next_release = (u32::from(gens.get(self.me)) << 24) | 1;
        }
        for i in 0..self.nodes {
            let node = NodeId(i as u8);
            let (mine, theirs) = (self.gens.get(node), gens.get(node));
            if later(theirs, self.hint.get(node)) {
                self.hint.set(node, theirs);
            }
            if node == from {
                // What a node says of itself is knowledge.
                self.guessed.remove(node);
            }
            if !later(theirs, mine) {
                continue;
            }
            // Generations only grow, and a node takes one that agrees with
            // what its messaging layer says of the node: up if connected
            // (itself included), down if not. So every node ends with the
            // highest generation of each node, and a view never comes back.
            let connected = node == self.me || self.connected.contains(node);
            if gens.is_up(node) == connected {
                self.gens.set(node, theirs);
                self.guessed.remove(node);
            } else if connected && mine == 0 && theirs == 1 && !self.guessed.contains(node) {
                // The first incarnation of a node died: generation 0 names
                // it on every node, so this counts as its `node_down` (the
                // messaging layer's, later, then changes nothing). A later
                // death is learnt from the messaging layer only: a marker's
                // generation may name another incarnation than the one this
                // node is connected to.
                self.gens.set(node, theirs);
                self.connected.remove(node);
                if let Some(v) = self.peer_view.get_mut(node.index()) {
                    *v = None;
                }
            }
        }
        if let Some(v) = self.peer_view.get_mut(from.index()) {
            *v = Some(gens.digest());
        }
        let result = self.apply_view(old, out);
        self.maybe_report(out);
        result
    }

    /// After the view changed from `old` (live set, digest): forgets the
    /// nodes gone, lets the nodes back into the releases coordinated here,
    /// and starts a recovery round.
    fn apply_view(
        &mut self,
        old: (NodeSet, u64),
        out: &mut dyn Sink<PageAction>,
    ) -> Result<(), Error> {
        if !self.synced {
            return Ok(());
        }
        let (old_live, old_digest) = old;
        let live = self.gens.live(self.nodes);
        let mut result = Ok(());
        for dead in old_live.minus(live).iter() {
            if let Err(e) = self.forget(dead, out) {
                result = Err(e);
            }
        }
        let back = live.minus(old_live);
        self.live = live;
        // The marker first: a joining node learns from it that this node is
        // live, and drops what comes before.
        if self.gens.digest() != old_digest {
            self.start_round(out);
        }
        for slot in 0..MAX_RELEASES {
            let Some(Some(c)) = self.coords.get(slot).copied() else {
                continue;
            };
            if c.closing || c.done {
                continue;
            }
            for node in back.iter() {
                if let Some(Some(c)) = self.coords.get_mut(slot) {
                    c.awaiting.insert(node);
                }
                let (origin, id, range) = (c.origin, c.id, c.range);
                self.send(node, PageMsg::Release { origin, id, range }, out);
            }
        }
        result
    }

    /// Forgets `dead` (just removed from `live`) in every record and release.
    fn forget(&mut self, dead: NodeId, out: &mut dyn Sink<PageAction>) -> Result<(), Error> {
        let old_live = self.live;
        self.live.remove(dead);
        // Forget the dead node in every record.
        let mut cursor = Some(PageId {
            container: 0,
            index: 0,
        });
        while let Some(page) = cursor.and_then(|c| self.records.next_from(&c)) {
            cursor = successor(page);
            let Some(mut rec) = self.records.get(&page).copied() else {
                continue;
            };
            rec.copyset.remove(dead);
            rec.awaiting_acks.remove(dead);
            rec.queued_reads.remove(dead);
            if rec.next_write.is_some_and(|(w, _)| w == dead) {
                rec.next_write = None;
            }
            if rec.queued_write == Some(dead) {
                rec.queued_write = None;
                if let Some((writer, tag)) = rec.next_write.take() {
                    rec.queued_write = Some(writer);
                    rec.queued_write_tag = tag;
                }
            }
            let manager_died = manager_of_live(page, self.nodes, old_live) == dead;
            if rec.flushing
                && (rec.flush_go == Some(dead) || (rec.flush_go.is_none() && manager_died))
            {
                rec.flushing = false;
                rec.flush_go = None;
                out.push(PageAction::Flushed {
                    page,
                    dropped: !rec.present,
                });
            }
            if rec.inject_to == Some(dead) {
                rec.inject_to = None;
            }
            if rec.promoting == Some(dead) {
                rec.promoting = None;
            }
            rec.promote_rest.remove(dead);
            self.finish_if_done(page, &mut rec, out);
            self.serve_queue(page, &mut rec, out);
            self.store(page, rec);
        }
        // Releases: stop waiting for the dead node; resume its own.
        let mut result = Ok(());
        for slot in 0..MAX_RELEASES {
            if let Some(Some(c)) = self.coords.get_mut(slot) {
                c.awaiting.remove(dead);
            }
            self.maybe_complete(slot, out);
        }
        let leader = self.live.lowest().unwrap_or(self.me);
        for slot in 0..MAX_FENCES {
            let Some(Some(f)) = self.fences.get_mut(slot) else {
                continue;
            };
            if f.coordinator != dead {
                continue;
            }
            f.coordinator = leader;
            let (origin, id, range) = (f.origin, f.id, f.range);
            if leader == self.me {
                if let Err(e) = self.resume(origin, id, range, out) {
                    result = Err(e);
                }
            } else {
                self.send(leader, PageMsg::ReleaseResume { origin, id, range }, out);
            }
        }
        result
    }

    /// Starts a recovery round for the current view: every record forgets
    /// the round before, and a marker goes to every live node (itself
    /// included: its own messages in flight are part of the round).
    fn start_round(&mut self, out: &mut dyn Sink<PageAction>) {
        let mut cursor = Some(PageId {
            container: 0,
            index: 0,
        });
        while let Some(page) = cursor.and_then(|c| self.records.next_from(&c)) {
            cursor = successor(page);
            if let Some(rec) = self.records.get_mut(&page) {
                rec.rebuild = Rebuild::default();
                rec.reported = false;
            }
        }
        let (released, released_overflow) = match self.recovery {
            Some(r) => (r.released, r.released_overflow),
            None => ([None; MAX_ROUND_RELEASES], false),
        };
        self.recovery = Some(Recovery {
            view: self.gens.digest(),
            ends: NodeSet::EMPTY,
            reported: false,
            released,
            released_overflow,
        });
        for node in self.live.iter() {
            self.send(node, PageMsg::Marker { gens: self.gens }, out);
        }
    }

    /// Returns whether a live node's latest marker is of another view.
    fn views_differ(&self) -> bool {
        let mine = self.gens.digest();
        self.live.iter().any(|n| {
            self.peer_view
                .get(n.index())
                .copied()
                .flatten()
                .is_some_and(|v| v != mine)
        })
    }

    /// Returns whether every live node's latest marker is of view `view`.
    fn markers_complete(&self, view: u64) -> bool {
        self.live
            .iter()
            .all(|n| self.peer_view.get(n.index()).copied().flatten() == Some(view))
    }

    fn new_tag(&mut self) -> u32 {
        let tag = self.next_tag;
        self.next_tag = self.next_tag.wrapping_add(1).max(1);
        tag
    }

    fn send(&self, to: NodeId, msg: PageMsg, out: &mut dyn Sink<PageAction>) {
        if self.live.contains(to) {
            out.push(PageAction::Send { to, msg });
        }
    }

    fn fence_of(&self, page: PageId) -> Option<usize> {
        self.fences
            .iter()
            .position(|f| f.is_some_and(|f| f.range.contains(page)))
    }

    fn handle(
        &mut self,
        from: NodeId,
        page: PageId,
        msg: PageMsg,
        backing: &dyn Backing,
        out: &mut dyn Sink<PageAction>,
    ) -> Result<(), Error> {
        let mut rec = self.load(page)?;
        let fenced = self.is_fenced(page);
        match msg {
            PageMsg::Get { write, tag, .. } => {
                if self.manager(page) != self.me {
                    // The requester's view differs (a node joined or died
                    // that one of them does not know yet): it retries.
                    self.send(from, PageMsg::Retry { page, tag }, out);
                } else {
                    self.serve_get(from, page, &mut rec, write, tag, fenced, out);
                }
            }
            PageMsg::Forward {
                requester,
                write,
                tag,
                ..
            } => {
                if fenced || rec.released {
                    // The page is being released here: the requester retries.
                    if requester == self.me {
                        self.apply_retry(page, &mut rec, tag, out);
                    } else {
                        self.send(requester, PageMsg::Retry { page, tag }, out);
                    }
                } else if self.live.contains(requester) {
                    if requester != self.me
                        && write
                        && rec.queued_write.is_some()
                        && rec.next_write.is_some()
                    {
                        return Err(Error::Protocol);
                    }
                    if self.live_home(page.container) == Some(self.me)
                        && !rec.home_known
                        && !rec.present
                        && !rec.is_owner
                    {
                        self.materialize(page, &mut rec, backing, out);
                        // A request of the home's own, in flight, is
                        // satisfied too (its answer comes back spare).
                        self.finish_if_done(page, &mut rec, out);
                    }
                    if requester == self.me {
                        // The manager names this node owner already: the page
                        // is here or on its way, and its arrival serves the
                        // request.
                        if rec.waiting && rec.tag == tag {
                            rec.waiting = false;
                            rec.incoming = !(rec.present && rec.is_owner);
                        }
                        self.finish_if_done(page, &mut rec, out);
                    } else if write && rec.queued_write.is_some() {
                        rec.next_write = Some((requester, tag));
                    } else if write {
                        rec.queued_write = Some(requester);
                        rec.queued_write_tag = tag;
                    } else {
                        rec.queue_read(requester, tag);
                    }
                    self.serve_queue(page, &mut rec, out);
                }
            }
            PageMsg::Create { tag, .. } => {
                if !(rec.waiting && rec.tag == tag) || rec.present || rec.is_owner {
                    return Err(Error::Protocol);
                }
                if !(rec.released || fenced) && rec.want == Want::Nothing {
                    return Err(Error::Protocol);
                }
                rec.waiting = false;
                if !(rec.released || fenced) {
                    rec.present = true;
                    rec.is_owner = true;
                    rec.version = rec.min_version.max(1);
                    rec.copyset = NodeSet::EMPTY;
                    rec.handed_to = None;
                    rec.handed_injected = false;
                    out.push(PageAction::FirstTouch { page });
                    self.finish_if_done(page, &mut rec, out);
                    self.serve_queue(page, &mut rec, out);
                }
            }
            PageMsg::Copy { version, tag, .. } => {
                if rec.answers(tag) {
                    rec.waiting = false;
                    if rec.released || fenced || rec.want != Want::Read || rec.present {
                        // Released meanwhile, or an answer to a request that
                        // an injection or transfer already satisfied: the
                        // owner counts this node in its copyset, which only
                        // costs a spare invalidation.
                    } else if version < rec.min_version {
                        // Crossed an invalidation: ask again.
                        self.send_get(page, &mut rec, out);
                    } else {
                        rec.present = true;
                        rec.version = version;
                        out.push(PageAction::Install { page });
                        self.finish_if_done(page, &mut rec, out);
                    }
                }
                // Otherwise stale (the request was answered, cancelled or
                // sent again): ignored likewise.
            }
            PageMsg::Transfer {
                version,
                copyset,
                tag,
                ..
            } => {
                if rec.is_owner {
                    return Err(Error::Protocol);
                }
                self.send(from, PageMsg::TransferAck { page }, out);
                // Possibly the answer to a write request that an injection
                // satisfied earlier, or to a request sent again: the manager
                // names this node owner, so take the page all the same.
                if rec.answers(tag) {
                    rec.waiting = false;
                }
                rec.incoming = false;
                if !(rec.released || fenced) {
                    self.take_ownership(page, &mut rec, version, copyset, out);
                    self.start_invalidation(page, &mut rec, out);
                    self.finish_if_done(page, &mut rec, out);
                    self.serve_queue(page, &mut rec, out);
                }
            }
            PageMsg::Invalidate { version, .. } => {
                if rec.is_owner {
                    return Err(Error::Protocol);
                }
                if rec.present {
                    rec.present = false;
                    out.push(PageAction::Discard { page });
                }
                rec.min_version = rec.min_version.max(version);
                self.send(from, PageMsg::InvalidateAck { page }, out);
            }
            PageMsg::InvalidateAck { .. } => {
                if !rec.awaiting_acks.contains(from) {
                    return Err(Error::Protocol);
                }
                rec.awaiting_acks.remove(from);
                self.finish_if_done(page, &mut rec, out);
                self.serve_queue(page, &mut rec, out);
            }
            PageMsg::FlushRequest { target, .. } => {
                if target == from {
                    return Err(Error::Protocol);
                }
                let allowed = self.manager(page) == self.me
                    && self.recovery.is_none()
                    && !fenced
                    && !rec.lost
                    && rec.promoting.is_none()
                    && self.live.contains(target)
                    && rec.owner_of_record == Some(from);
                if allowed {
                    rec.owner_of_record = Some(target);
                    self.send(from, PageMsg::FlushGo { page, target }, out);
                } else {
                    self.send(from, PageMsg::FlushCancel { page }, out);
                }
            }
            PageMsg::FlushGo { target, .. } => {
                if !rec.flushing {
                    // A membership change cancelled the flush (its manager
                    // seemed to change) and the round under way rebuilds
                    // the owner: a stale answer. Otherwise unexpected.
                    return match self.recovery {
                        Some(_) => Ok(()),
                        None => Err(Error::Protocol),
                    };
                }
                // Not the owner yet (the page left and comes back for a
                // request of this node, and the manager counts on it): the
                // injection waits for the page, as a queued request does.
                if rec.released || !self.live.contains(target) {
                    rec.flushing = false;
                    rec.flush_go = None;
                    out.push(PageAction::Flushed {
                        page,
                        dropped: !rec.present,
                    });
                } else {
                    rec.flush_go = Some(target);
                    self.serve_queue(page, &mut rec, out);
                }
            }
            PageMsg::FlushCancel { .. } => {
                if !rec.flushing {
                    // As for `FlushGo`.
                    return match self.recovery {
                        Some(_) => Ok(()),
                        None => Err(Error::Protocol),
                    };
                }
                rec.flushing = false;
                rec.flush_go = None;
                out.push(PageAction::Flushed {
                    page,
                    dropped: !rec.present,
                });
            }
            PageMsg::Inject {
                version, copyset, ..
            } => {
                if rec.is_owner {
                    return Err(Error::Protocol);
                }
                self.send(from, PageMsg::InjectAck { page }, out);
                rec.incoming = false;
                if !(rec.released || fenced) {
                    self.take_ownership(page, &mut rec, version, copyset, out);
                    if rec.want == Want::Write {
                        self.start_invalidation(page, &mut rec, out);
                    }
                    self.finish_if_done(page, &mut rec, out);
                    self.serve_queue(page, &mut rec, out);
                }
            }
            PageMsg::TransferAck { .. } => {
                // Before this node's report, or while another node is in
                // another view (a round this node has not entered yet), the
                // hand-off stays part of its snapshot (the acknowledgement
                // may come from after the receiver's report, or from a node
                // that died since).
                let snapshot_pending =
                    self.recovery.is_some_and(|r| !r.reported) || self.views_differ();
                if rec.handed_to == Some(from) && !snapshot_pending {
                    rec.handed_to = None;
                    rec.handed_injected = false;
                }
            }
            PageMsg::InjectAck { .. } => {
                if rec.inject_to != Some(from) {
                    return Err(Error::Protocol);
                }
                rec.inject_to = None;
                // As for `TransferAck`: the injection stays part of the
                // snapshot (its target may have reported before it came).
                if self.recovery.is_some_and(|r| !r.reported) || self.views_differ() {
                    rec.handed_to = Some(from);
                    rec.handed_injected = true;
                }
            }
            PageMsg::Retry { tag, .. } => self.apply_retry(page, &mut rec, tag, out),
            PageMsg::Failed { tag, .. } => {
                if rec.waiting && rec.tag == tag {
                    rec.waiting = false;
                    self.cancel_want(page, &mut rec, true, out);
                }
            }
            PageMsg::Report {
                view,
                holding,
                next,
                sent,
                injected,
                queued,
                waiting,
                known,
                version,
                ..
            } => {
                if self.recovery.is_some_and(|r| r.view == view) {
                    self.require_manager(page)?;
                    let report = Report {
                        holding,
                        next,
                        sent,
                        injected,
                        queued,
                        waiting,
                        known,
                        version,
                    };
                    absorb(&mut rec.rebuild, from, &report);
                }
            }
            PageMsg::Resolved {
                view, keep, lost, ..
            } => {
                if view == self.gens.digest() {
                    self.apply_resolved(page, &mut rec, keep, lost, out);
                }
            }
            PageMsg::Promote { copyset, .. } => {
                let ok = self.apply_promote(page, &mut rec, copyset, out);
                self.send(from, PageMsg::PromoteAck { page, ok }, out);
            }
            PageMsg::PromoteAck { ok, .. } => {
                // A stale acknowledgement (a later round decided anew) is
                // ignored.
                if rec.promoting == Some(from) {
                    rec.promoting = None;
                    if ok || fenced {
                        rec.promote_rest = NodeSet::EMPTY;
                    } else {
                        rec.promote_rest.remove(from);
                        self.promote_next(page, &mut rec, out);
                    }
                }
            }
            PageMsg::Release { .. }
            | PageMsg::ReleaseAck { .. }
            | PageMsg::ReleaseDone { .. }
            | PageMsg::ReleaseResume { .. }
            | PageMsg::Marker { .. }
            | PageMsg::ReportEnd { .. } => return Err(Error::Protocol),
        }
        self.store(page, rec);
        Ok(())
    }

    fn handle_range(
        &mut self,
        from: NodeId,
        msg: PageMsg,
        out: &mut dyn Sink<PageAction>,
    ) -> Result<(), Error> {
        match msg {
            PageMsg::Release { origin, id, range } => {
                self.apply_release(from, origin, id, range, out)
            }
            PageMsg::ReleaseAck { origin, id, done } => {
                self.release_ack(from, origin, id, done, out);
                Ok(())
            }
            PageMsg::ReleaseDone { origin, id, ack } => {
                self.lower_fence(origin, id);
                if ack {
                    let done = false;
                    self.send(from, PageMsg::ReleaseAck { origin, id, done }, out);
                }
                Ok(())
            }
            PageMsg::ReleaseResume { origin, id, range } => self.resume(origin, id, range, out),
            PageMsg::Marker { gens } => self.apply_marker(from, gens, out),
            PageMsg::ReportEnd { view } => {
                if let Some(r) = self.recovery.as_mut() {
                    if r.view == view {
                        r.ends.insert(from);
                    }
                }
                self.maybe_finish(out);
                Ok(())
            }
            _ => Err(Error::Protocol),
        }
    }

    /// Manager: a request for `page` from `from`.
    #[allow(clippy::too_many_arguments)]
    fn serve_get(
        &self,
        from: NodeId,
        page: PageId,
        rec: &mut PageRecord,
        write: bool,
        tag: u32,
        fenced: bool,
        out: &mut dyn Sink<PageAction>,
    ) {
        if self.recovery.is_some() || fenced || rec.promoting.is_some() {
            self.send(from, PageMsg::Retry { page, tag }, out);
            return;
        }
        if rec.lost {
            self.send(from, PageMsg::Failed { page, tag }, out);
            return;
        }
        let owner = match rec.owner_of_record {
            Some(owner) => owner,
            None => match home_of(page.container) {
                Some(_) => match self.live_home(page.container) {
                    // The home holds the page or will create it.
                    Some(home) => home,
                    // The home died with its memory (the node may have
                    // come back since: a later incarnation holds none of it).
                    None => {
                        self.send(from, PageMsg::Failed { page, tag }, out);
                        return;
                    }
                },
                // The page may have existed only on a dead manager (or on
                // an earlier incarnation of it).
                None if !self.original(manager_of(page, self.nodes)) => {
                    self.send(from, PageMsg::Failed { page, tag }, out);
                    return;
                }
                None => {
                    rec.owner_of_record = Some(from);
                    self.send(from, PageMsg::Create { page, tag }, out);
                    return;
                }
            },
        };
        rec.owner_of_record = Some(if write { from } else { owner });
        self.send(
            owner,
            PageMsg::Forward {
                page,
                requester: from,
                write,
                tag,
            },
            out,
        );
    }

    /// Home: the page becomes the container's, from the backing or new.
    fn materialize(
        &self,
        page: PageId,
        rec: &mut PageRecord,
        backing: &dyn Backing,
        out: &mut dyn Sink<PageAction>,
    ) {
        rec.home_known = true;
        rec.present = true;
        rec.is_owner = true;
        rec.version = rec.min_version.max(1);
        rec.copyset = NodeSet::EMPTY;
        rec.handed_to = None;
        rec.handed_injected = false;
        if backing.holds(page) {
            out.push(PageAction::Adopt { page });
        } else {
            out.push(PageAction::FirstTouch { page });
        }
    }

    fn take_ownership(
        &self,
        page: PageId,
        rec: &mut PageRecord,
        version: u64,
        copyset: NodeSet,
        out: &mut dyn Sink<PageAction>,
    ) {
        rec.present = true;
        rec.is_owner = true;
        rec.version = version;
        rec.min_version = rec.min_version.max(version);
        rec.copyset = NodeSet(copyset.without(self.me).0 & self.live.0);
        rec.handed_to = None;
        rec.handed_injected = false;
        out.push(PageAction::Install { page });
    }

    /// Requester: ends the local request without the access (retry, or
    /// SIGBUS when `lost`).
    fn cancel_want(
        &self,
        page: PageId,
        rec: &mut PageRecord,
        lost: bool,
        out: &mut dyn Sink<PageAction>,
    ) {
        if rec.want == Want::Nothing {
            return;
        }
        rec.want = Want::Nothing;
        if lost {
            out.push(PageAction::Failed { page });
        } else {
            out.push(PageAction::Ready {
                page,
                access: rec.access(),
            });
        }
    }

    fn apply_retry(
        &self,
        page: PageId,
        rec: &mut PageRecord,
        tag: u32,
        out: &mut dyn Sink<PageAction>,
    ) {
        if rec.answers(tag) {
            rec.waiting = false;
            self.cancel_want(page, rec, false, out);
        }
    }

    fn apply_resolved(
        &self,
        page: PageId,
        rec: &mut PageRecord,
        keep: bool,
        lost: bool,
        out: &mut dyn Sink<PageAction>,
    ) {
        if !rec.reported {
            return;
        }
        rec.reported = false;
        if keep && !(rec.present && rec.is_owner) {
            // The answer or the page is on its way: it ends the wait.
            return;
        }
        rec.waiting = false;
        rec.incoming = false;
        if !(rec.present && rec.is_owner) {
            // Ownership will not come here: the requests queued here retry.
            rec.retry_queue(page, self.me, &mut |to, msg| self.send(to, msg, out));
        }
        if rec.is_owner && rec.present {
            // Promoted: the request completes here.
            self.finish_if_done(page, rec, out);
        } else {
            self.cancel_want(page, rec, lost, out);
        }
    }

    /// Read copy holder: becomes the owner; returns whether it could.
    fn apply_promote(
        &self,
        page: PageId,
        rec: &mut PageRecord,
        copyset: NodeSet,
        out: &mut dyn Sink<PageAction>,
    ) -> bool {
        if !rec.present || rec.is_owner || rec.released || self.is_fenced(page) {
            return false;
        }
        rec.is_owner = true;
        rec.copyset = NodeSet(copyset.without(self.me).0 & self.live.0);
        rec.incoming = false;
        rec.handed_to = None;
        rec.handed_injected = false;
        // The requests queued here waited for a page that will not come:
        // the manager told their requesters to retry.
        rec.queued_reads = NodeSet::EMPTY;
        rec.read_tags = [None; READ_TAGS];
        rec.queued_write = None;
        rec.queued_write_tag = 0;
        rec.next_write = None;
        // While this copy was valid, at most two versions were issued past
        // it (a transfer to a new writer, then its invalidation, which would
        // have dropped this copy): survivors may hold them as their
        // `min_version`. The promoted copy takes a version above them.
        rec.version = rec.version.saturating_add(PROMOTION_VERSION_STEP);
        rec.min_version = rec.min_version.max(rec.version);
        self.start_invalidation(page, rec, out);
        self.finish_if_done(page, rec, out);
        self.serve_queue(page, rec, out);
        true
    }

    /// Manager: promotes the next holder of `promote_rest`, or loses the page.
    fn promote_next(&self, page: PageId, rec: &mut PageRecord, out: &mut dyn Sink<PageAction>) {
        loop {
            let Some(holder) = NodeSet(rec.promote_rest.0 & self.live.0).lowest() else {
                rec.owner_of_record = None;
                rec.lost = true;
                rec.promote_rest = NodeSet::EMPTY;
                return;
            };
            rec.promote_rest.remove(holder);
            rec.owner_of_record = Some(holder);
            rec.lost = false;
            let copyset = rec.promote_rest;
            if holder != self.me {
                rec.promoting = Some(holder);
                self.send(holder, PageMsg::Promote { page, copyset }, out);
                return;
            }
            if self.apply_promote(page, rec, copyset, out) {
                rec.promote_rest = NodeSet::EMPTY;
                return;
            }
        }
    }

    /// Applies the release `(origin, id)` of `range` here, as asked by `from`
    /// (its coordinator: the origin, or the node resuming it).
    fn apply_release(
        &mut self,
        from: NodeId,
        origin: NodeId,
        id: u32,
        range: PageRange,
        out: &mut dyn Sink<PageAction>,
    ) -> Result<(), Error> {
        let seen = self.seen_release.get(origin.index()).copied().unwrap_or(0);
        if let Some(slot) = self
            .fences
            .iter()
            .position(|f| f.is_some_and(|f| f.origin == origin && f.id == id))
        {
            // A resume of a release applied here: answer its new coordinator
            // (the original release arriving after its resume changes
            // nothing).
            if from == origin {
                return Ok(());
            }
            if let Some(Some(f)) = self.fences.get_mut(slot) {
                f.coordinator = from;
                if f.acked {
                    self.ack(from, origin, id, false, out);
                }
            }
            return Ok(());
        }
        if from != origin && id <= seen {
            // Applied here and done already: every node had applied it.
            self.ack(from, origin, id, true, out);
            return Ok(());
        }
        let slot = self
            .fences
            .iter()
            .position(Option::is_none)
            .ok_or(Error::NoSpace)?;
        if let Some(s) = self.seen_release.get_mut(origin.index()) {
            *s = (*s).max(id);
        }
        if let Some(f) = self.fences.get_mut(slot) {
            *f = Some(Fence {
                origin,
                id,
                range,
                coordinator: from,
                acked: false,
            });
        }
        if let Some(round) = self.recovery.as_mut() {
            match round.released.iter_mut().find(|r| r.is_none()) {
                Some(free) => *free = Some(range),
                None => round.released_overflow = true,
            }
        }
        if self.live_home(range.container) == Some(self.me) && !mutant(MUTANT_KEEP_BACKING) {
            out.push(PageAction::DropBacking {
                container: range.container,
                first: range.first,
                end: range.end,
            });
        }
        let end = PageId {
            container: range.container,
            index: range.end,
        };
        let mut cursor = Some(range.start());
        while let Some(page) = cursor.and_then(|c| self.records.next_from(&c)) {
            if page >= end {
                break;
            }
            cursor = successor(page);
            let Some(mut rec) = self.records.get(&page).copied() else {
                continue;
            };
            if rec.present {
                out.push(PageAction::Discard { page });
            }
            rec.retry_queue(page, self.me, &mut |to, msg| self.send(to, msg, out));
            rec.present = false;
            rec.is_owner = false;
            rec.copyset = NodeSet::EMPTY;
            rec.owner_of_record = None;
            rec.lost = false;
            rec.home_known = false;
            if rec.flush_go.take().is_some() {
                // Allowed, waiting for the page: nothing to inject now.
                rec.flushing = false;
                out.push(PageAction::Flushed {
                    page,
                    dropped: true,
                });
            }
            rec.handed_to = None;
            rec.handed_injected = false;
            rec.promote_rest = NodeSet::EMPTY;
            if rec.want != Want::Nothing {
                rec.want = Want::Nothing;
                out.push(PageAction::Ready {
                    page,
                    access: Access::None,
                });
            }
            // A page injected here is not awaited: its sender waits for the
            // acknowledgement (and may never send it, having released it).
            rec.incoming = false;
            rec.released = rec.expects();
            self.store(page, rec);
        }
        Ok(())
    }

    fn ack(
        &mut self,
        to: NodeId,
        origin: NodeId,
        id: u32,
        done: bool,
        out: &mut dyn Sink<PageAction>,
    ) {
        if to == self.me {
            self.release_ack(self.me, origin, id, done, out);
        } else {
            self.send(to, PageMsg::ReleaseAck { origin, id, done }, out);
        }
    }

    /// Acknowledges every fence whose range has no zombie left.
    fn check_fences(&mut self, out: &mut dyn Sink<PageAction>) {
        for slot in 0..MAX_FENCES {
            let Some(Some(f)) = self.fences.get(slot).copied() else {
                continue;
            };
            if f.acked || self.has_zombie(f.range) {
                continue;
            }
            if let Some(Some(fence)) = self.fences.get_mut(slot) {
                fence.acked = true;
            }
            self.ack(f.coordinator, f.origin, f.id, false, out);
        }
    }

    fn has_zombie(&mut self, range: PageRange) -> bool {
        let end = PageId {
            container: range.container,
            index: range.end,
        };
        let mut cursor = Some(range.start());
        while let Some(page) = cursor.and_then(|c| self.records.next_from(&c)) {
            if page >= end {
                return false;
            }
            if self.records.get(&page).is_some_and(|r| r.released) {
                return true;
            }
            cursor = successor(page);
        }
        false
    }

    fn release_ack(
        &mut self,
        from: NodeId,
        origin: NodeId,
        id: u32,
        done: bool,
        out: &mut dyn Sink<PageAction>,
    ) {
        let Some(slot) = self
            .coords
            .iter()
            .position(|c| c.is_some_and(|c| c.origin == origin && c.id == id))
        else {
            return;
        };
        if let Some(Some(c)) = self.coords.get_mut(slot) {
            if !c.closing || home_of(c.range.container) == Some(from) {
                c.awaiting.remove(from);
            }
            c.done |= done;
        }
        if done {
            // A resumed release that had completed everywhere: this node's
            // fence is stale, and would make a recovery round rebuild pages
            // made since as released.
            self.lower_fence(origin, id);
        }
        self.maybe_complete(slot, out);
    }

    /// The container's home, if the incarnation that made it is alive and
    /// is not this node: the first to lower its fence.
    fn other_home(&self, range: PageRange) -> Option<NodeId> {
        self.live_home(range.container).filter(|h| *h != self.me)
    }

    fn maybe_complete(&mut self, slot: usize, out: &mut dyn Sink<PageAction>) {
        let Some(Some(c)) = self.coords.get(slot).copied() else {
            return;
        };
        if c.awaiting.0 & self.live.0 != 0 {
            return;
        }
        let home = self.other_home(c.range);
        if !c.closing {
            if !c.done {
                out.push(PageAction::Released {
                    origin: c.origin,
                    id: c.id,
                    range: c.range,
                });
            }
            if let Some(home) = home {
                if let Some(Some(c)) = self.coords.get_mut(slot) {
                    c.closing = true;
                    c.awaiting = NodeSet::single(home);
                }
                let (origin, id) = (c.origin, c.id);
                self.send(
                    home,
                    PageMsg::ReleaseDone {
                        origin,
                        id,
                        ack: true,
                    },
                    out,
                );
                return;
            }
        }
        if let Some(s) = self.coords.get_mut(slot) {
            *s = None;
        }
        let others = match home {
            Some(home) if c.closing => self.live.without(self.me).without(home),
            _ => self.live.without(self.me),
        };
        for node in others.iter() {
            self.send(
                node,
                PageMsg::ReleaseDone {
                    origin: c.origin,
                    id: c.id,
                    ack: false,
                },
                out,
            );
        }
        self.lower_fence(c.origin, c.id);
    }

    fn lower_fence(&mut self, origin: NodeId, id: u32) {
        for f in self.fences.iter_mut() {
            if f.is_some_and(|f| f.origin == origin && f.id == id) {
                *f = None;
            }
        }
    }

    /// Takes over the release `(origin, id)` whose coordinator died.
    fn resume(
        &mut self,
        origin: NodeId,
        id: u32,
        range: PageRange,
        out: &mut dyn Sink<PageAction>,
    ) -> Result<(), Error> {
        if self
            .coords
            .iter()
            .any(|c| c.is_some_and(|c| c.origin == origin && c.id == id))
        {
            return Ok(());
        }
        let slot = self
            .coords
            .iter()
            .position(Option::is_none)
            .ok_or(Error::NoSpace)?;
        if let Some(c) = self.coords.get_mut(slot) {
            *c = Some(Coord {
                origin,
                id,
                range,
                awaiting: self.live,
                closing: false,
                done: false,
            });
        }
        for node in self.live.without(self.me).iter() {
            self.send(node, PageMsg::Release { origin, id, range }, out);
        }
        self.apply_release(self.me, origin, id, range, out)
    }

    /// Recovery step 2: with every live node's marker, report.
    fn maybe_report(&mut self, out: &mut dyn Sink<PageAction>) {
        let Some(round) = self.recovery else {
            return;
        };
        if round.reported || !self.markers_complete(round.view) {
            return;
        }
        let mut cursor = Some(PageId {
            container: 0,
            index: 0,
        });
        while let Some(page) = cursor.and_then(|c| self.records.next_from(&c)) {
            cursor = successor(page);
            let Some(mut rec) = self.records.get(&page).copied() else {
                continue;
            };
            let holding = match (rec.present, rec.is_owner) {
                _ if self.is_fenced(page) => Holding::Released,
                (true, true) => Holding::Owner,
                (true, false) => Holding::Read,
                _ => Holding::Nothing,
            };
            let (next, sent, injected) = match (rec.handed_to, rec.inject_to, rec.flush_go) {
                (Some(n), _, _) => (Some(n), true, rec.handed_injected),
                (None, Some(n), _) => (Some(n), true, true),
                (None, None, Some(n)) => (Some(n), false, false),
                _ => (None, false, false),
            };
            let queued = [rec.queued_write, rec.next_write.map(|(n, _)| n)];
            let manager = self.manager(page);
            // A manager the page leaves (a node joined) passes on that the
            // page exists.
            let handed_over = manager != self.me && (rec.owner_of_record.is_some() || rec.lost);
            let report = Report {
                holding,
                next,
                sent,
                injected,
                queued,
                waiting: rec.is_waiter(),
                known: rec.home_known || handed_over,
                version: if sent {
                    rec.handed_version
                } else {
                    rec.version
                },
            };
            if holding != Holding::Nothing
                || next.is_some()
                || queued[0].is_some()
                || report.waiting
                || report.known
            {
                rec.reported = report.waiting;
                if manager == self.me {
                    absorb(&mut rec.rebuild, self.me, &report);
                } else {
                    self.send(
                        manager,
                        PageMsg::Report {
                            page,
                            view: round.view,
                            holding: report.holding,
                            next: report.next,
                            sent: report.sent,
                            injected: report.injected,
                            queued: report.queued,
                            waiting: report.waiting,
                            known: report.known,
                            version: report.version,
                        },
                        out,
                    );
                }
            }
            self.store(page, rec);
        }
        // To itself too, after the requests it sent meanwhile (which its
        // manager role must still answer as recovering).
        for node in self.live.iter() {
            self.send(node, PageMsg::ReportEnd { view: round.view }, out);
        }
        if let Some(r) = self.recovery.as_mut() {
            r.reported = true;
        }
    }

    /// Recovery step 3: with every live node's report end, rebuild.
    fn maybe_finish(&mut self, out: &mut dyn Sink<PageAction>) {
        let Some(round) = self.recovery else {
            return;
        };
        if !round.reported || !self.live.is_subset(round.ends) {
            return;
        }
        let mut cursor = Some(PageId {
            container: 0,
            index: 0,
        });
        while let Some(page) = cursor.and_then(|c| self.records.next_from(&c)) {
            cursor = successor(page);
            let Some(mut rec) = self.records.get(&page).copied() else {
                continue;
            };
            // The hand-off was reported in this round (a round that
            // restarts reports it again).
            rec.handed_to = None;
            rec.handed_injected = false;
            if self.manager(page) == self.me
                && (rec.rebuild.seen || rec.owner_of_record.is_some() || rec.lost)
            {
                self.resolve(page, &mut rec, round.view, out);
            } else {
                rec.rebuild = Rebuild::default();
                if self.manager(page) != self.me {
                    // Managed elsewhere now (a node joined): its report
                    // passed on what this node knew as manager.
                    rec.owner_of_record = None;
                    rec.lost = false;
                    rec.promoting = None;
                    rec.promote_rest = NodeSet::EMPTY;
                }
            }
            self.store(page, rec);
        }
        self.recovery = None;
        self.joining = false;
    }

    /// Manager, end of a round: the page's owner from the reports.
    fn resolve(
        &self,
        page: PageId,
        rec: &mut PageRecord,
        view: u64,
        out: &mut dyn Sink<PageAction>,
    ) {
        let rb = rec.rebuild;
        rec.rebuild = Rebuild::default();
        rec.promoting = None;
        rec.promote_rest = NodeSet::EMPTY;
        // A release during the round may have dropped what was reported:
        // the page is rebuilt as released (its waiters retry).
        let fenced =
            self.is_fenced(page) || rb.released || self.recovery.is_some_and(|r| r.released(page));
        let (end, path) = chain_end(&rb);
        let holders = NodeSet(rb.holders.0 & self.live.0);
        // A live home knows whether the page ever existed: every copy
        // comes from its materialising it. Otherwise a record or a chain
        // says so.
        let existed = match self.live_home(page.container) {
            Some(_) => rb.known || end != ChainEnd::None,
            None => rec.owner_of_record.is_some() || rec.lost || rb.known || end != ChainEnd::None,
        };
        let outcome = match end {
            ChainEnd::Node(node) if self.live.contains(node) => Outcome::Owner(node),
            ChainEnd::Broken => Outcome::Lost,
            _ if !holders.is_empty() => Outcome::Promote,
            _ if existed => Outcome::Lost,
            _ => Outcome::Unknown,
        };
        rec.owner_of_record = None;
        rec.lost = false;
        if !fenced {
            match outcome {
                Outcome::Owner(node) => rec.owner_of_record = Some(node),
                Outcome::Promote => {
                    rec.promote_rest = holders;
                    self.promote_next(page, rec, out);
                }
                Outcome::Lost => rec.lost = true,
                Outcome::Unknown => {}
            }
        }
        // A waiter keeps waiting only if the page passes through it (it
        // gets ownership). Any other answer still on its way is stale once
        // the waiter retries (its tag is not the retried request's), and a
        // queue holder the page never reaches answers its queue with retries.
        let coming = match outcome {
            // The holder of the master copy waits for nothing to come.
            Outcome::Owner(_) => path.minus(rb.owners),
            _ => NodeSet::EMPTY,
        };
        let lost = rec.lost;
        for waiter in NodeSet(rb.waiters.0 & self.live.0).iter() {
            let keep = coming.contains(waiter);
            if waiter == self.me {
                self.apply_resolved(page, rec, keep, lost, out);
            } else {
                self.send(
                    waiter,
                    PageMsg::Resolved {
                        page,
                        view,
                        keep,
                        lost,
                    },
                    out,
                );
            }
        }
    }

    /// Sends the request of `rec.want` to the manager of `page`.
    fn send_get(&mut self, page: PageId, rec: &mut PageRecord, out: &mut dyn Sink<PageAction>) {
        rec.tag = self.new_tag();
        rec.waiting = true;
        // A resolution of a request reported earlier is not about this one.
        rec.reported = false;
        self.send(
            self.manager(page),
            PageMsg::Get {
                page,
                write: rec.want == Want::Write,
                tag: rec.tag,
            },
            out,
        );
    }

    /// Returns whether `node` is live and its first incarnation: a node
    /// that died and came back holds none of the pages of its earlier
    /// incarnation, nor its memory. The rule for the [`manager_of`] node of
    /// an unhomed container's page; a homed container's is
    /// [`ContainerNode::live_home`].
    fn original(&self, node: NodeId) -> bool {
        self.live.contains(node) && self.gens.get(node) == 0
    }

    /// The home of `container` if the incarnation that made it is live
    /// here ([`home_gen_of`] is the home's generation in this view): its
    /// memory holds the pages no node took. `None` for an unhomed
    /// container, a dead home, or one that came back since (a later
    /// incarnation holds none of the earlier one's memory), and on a node
    /// that does not know its view yet.
    fn live_home(&self, container: u32) -> Option<NodeId> {
        home_of(container).filter(|&home| {
            self.synced && self.live.contains(home) && self.gens.get(home) == home_gen_of(container)
        })
    }

    fn require_manager(&self, page: PageId) -> Result<(), Error> {
        if self.manager(page) == self.me {
            Ok(())
        } else {
            Err(Error::Protocol)
        }
    }

    /// Owner wanting to write: invalidate every read copy.
    fn start_invalidation(
        &self,
        page: PageId,
        rec: &mut PageRecord,
        out: &mut dyn Sink<PageAction>,
    ) {
        if rec.want != Want::Write || rec.copyset.is_empty() {
            return;
        }
        if !mutant(MUTANT_NO_VERSION_BUMP) {
            rec.version = rec.version.saturating_add(1);
        }
        rec.min_version = rec.min_version.max(rec.version);
        let mut skip = if mutant(MUTANT_SKIP_INVALIDATION) {
            rec.copyset.lowest()
        } else {
            None
        };
        for node in rec.copyset.iter() {
            if Some(node) == skip.take() {
                rec.copyset.remove(node);
                continue;
            }
            self.send(
                node,
                PageMsg::Invalidate {
                    page,
                    version: rec.version,
                },
                out,
            );
        }
        rec.awaiting_acks = rec.copyset;
        rec.copyset = NodeSet::EMPTY;
    }

    /// Completes the local request once the copy gives the access asked.
    fn finish_if_done(&self, page: PageId, rec: &mut PageRecord, out: &mut dyn Sink<PageAction>) {
        let needed = match rec.want {
            Want::Nothing => return,
            Want::Read => Access::Read,
            Want::Write => Access::Write,
        };
        let access = rec.access();
        if access >= needed {
            rec.want = Want::Nothing;
            out.push(PageAction::Ready { page, access });
        }
    }

    /// Owner: serves the forwarded requests (reads first, then the one
    /// write), then an allowed flush.
    fn serve_queue(&self, page: PageId, rec: &mut PageRecord, out: &mut dyn Sink<PageAction>) {
        if rec.busy() || rec.want != Want::Nothing {
            return;
        }
        for reader in rec.queued_reads.iter() {
            if reader == self.me || !self.live.contains(reader) {
                continue;
            }
            if rec.copyset.is_empty() {
                out.push(PageAction::WriteProtect { page });
            }
            rec.copyset.insert(reader);
            let tag = rec.take_read_tag(reader);
            self.send(
                reader,
                PageMsg::Copy {
                    page,
                    version: rec.version,
                    tag,
                },
                out,
            );
        }
        rec.queued_reads = NodeSet::EMPTY;
        rec.read_tags = [None; READ_TAGS];
        if let Some(writer) = rec.queued_write.take() {
            if writer != self.me && self.live.contains(writer) {
                let version = if mutant(MUTANT_NO_VERSION_BUMP) {
                    rec.version
                } else {
                    rec.version.saturating_add(1)
                };
                self.send(
                    writer,
                    PageMsg::Transfer {
                        page,
                        version,
                        copyset: rec.copyset,
                        tag: rec.queued_write_tag,
                    },
                    out,
                );
                out.push(PageAction::Discard { page });
                rec.present = false;
                rec.is_owner = false;
                rec.copyset = NodeSet::EMPTY;
                rec.min_version = rec.min_version.max(version);
                rec.handed_to = Some(writer);
                rec.handed_injected = false;
                // A second queued write waits for the page to come back.
                if let Some((next, tag)) = rec.next_write.take() {
                    rec.queued_write = Some(next);
                    rec.queued_write_tag = tag;
                }
                rec.handed_version = version;
            }
        }
        if let Some(target) = rec.flush_go.take() {
            rec.flushing = false;
            if rec.is_owner && rec.present {
                self.send(
                    target,
                    PageMsg::Inject {
                        page,
                        version: rec.version,
                        copyset: rec.copyset.without(target),
                    },
                    out,
                );
                out.push(PageAction::Discard { page });
                rec.present = false;
                rec.is_owner = false;
                rec.copyset = NodeSet::EMPTY;
                rec.inject_to = Some(target);
                rec.handed_version = rec.version;
            }
            out.push(PageAction::Flushed {
                page,
                dropped: !rec.present,
            });
        }
    }

    fn load(&mut self, page: PageId) -> Result<PageRecord, Error> {
        match self.records.get(&page) {
            Some(rec) => Ok(*rec),
            None => {
                // Reserve the slot now so that storing back cannot fail.
                self.records.insert(page, PageRecord::default())?;
                Ok(PageRecord::default())
            }
        }
    }

    fn store(&mut self, page: PageId, mut rec: PageRecord) {
        if rec.released && !rec.expects() {
            // A zombie whose last expected message came: gone.
            rec.released = false;
        }
        if rec.is_unused() {
            self.records.remove(&page);
        } else if let Some(slot) = self.records.get_mut(&page) {
            *slot = rec;
        }
    }
}

/// What a survivor reports of a page (the fields of [`PageMsg::Report`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Report {
    holding: Holding,
    next: Option<NodeId>,
    sent: bool,
    injected: bool,
    queued: [Option<NodeId>; 2],
    waiting: bool,
    known: bool,
    version: u64,
}

/// Manager: folds one report into the round's rebuild of a page.
fn absorb(rb: &mut Rebuild, from: NodeId, report: &Report) {
    rb.seen = true;
    match report.holding {
        Holding::Owner => rb.owners.insert(from),
        Holding::Read => rb.holders.insert(from),
        Holding::Released => rb.released = true,
        Holding::Nothing => {}
    }
    // Queued links in serving order: the queued writes, then an allowed
    // injection (served only if the node still owns the page then).
    let sent = report.next.filter(|_| report.sent);
    let injection = report.next.filter(|_| !report.sent);
    let links = [
        (sent, true, report.injected),
        (report.queued[0], false, false),
        (report.queued[1], false, false),
        (injection, false, true),
    ];
    for (to, sent, injected) in links {
        if to.is_none() {
            continue;
        }
        match rb.links.iter_mut().find(|l| l.is_none()) {
            Some(slot) => {
                *slot = Some(Link {
                    from,
                    to,
                    sent,
                    version: report.version,
                    injected,
                })
            }
            None => rb.overflow = true,
        }
    }
    if report.waiting {
        rb.waiters.insert(from);
    }
    rb.known |= report.known;
}

/// Where the ownership chain of a rebuilt page ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ChainEnd {
    /// No node holds or passes the page.
    None,
    /// The page is, or will be, at this node.
    Node(NodeId),
    /// The page went on to a node that died.
    Gone,
    /// The reports do not form a chain.
    Broken,
}

/// The chain starts at the node holding the master copy, or else at the
/// target of the last hand-off in flight, and follows the writes queued
/// at each node it reaches, each once. Returns its end and the nodes it
/// passes through.
fn chain_end(rb: &Rebuild) -> (ChainEnd, NodeSet) {
    if rb.overflow {
        return (ChainEnd::Broken, NodeSet::EMPTY);
    }
    let links = || rb.links.iter().flatten();
    let start = match rb.owners.lowest() {
        Some(owner) => Some(owner),
        // The page is in flight: to the target of the latest hand-off.
        // (An injection passes the version on unchanged: it comes after the
        // transfer that made that version.)
        None => match links()
            .filter(|l| l.sent)
            .max_by_key(|l| (l.version, l.injected))
        {
            // A transfer's target asked for the page and waits for it; one
            // that neither waits nor holds it passed it on, to a node that
            // died (a live one would have reported it).
            Some(l) if !l.injected => match l.to {
                Some(to) if rb.waiters.contains(to) || rb.holders.contains(to) => Some(to),
                _ => return (ChainEnd::Gone, NodeSet::EMPTY),
            },
            Some(l) => l.to,
            None => None,
        },
    };
    let Some(mut at) = start else {
        return (ChainEnd::None, NodeSet::EMPTY);
    };
    // Each queued write is served once: a node may be passed through twice
    // (it passes the page on, then gets it back for its own request).
    let mut path = NodeSet::EMPTY;
    let mut used = [false; MAX_LINKS];
    loop {
        path.insert(at);
        let next = rb
            .links
            .iter()
            .zip(used.iter_mut())
            .find_map(|(l, used)| match l {
                Some(Link {
                    from,
                    to: Some(to),
                    sent: false,
                    ..
                }) if *from == at && !*used => Some((used, *to)),
                _ => None,
            });
        match next {
            Some((used, to)) => {
                *used = true;
                at = to;
            }
            None => return (ChainEnd::Node(at), path),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::table::ArrayMap;
    use super::*;
    use std::collections::{BTreeSet, VecDeque};
    use std::vec::Vec;

    type Node = ContainerNode<ArrayMap<PageId, PageRecord, 32>>;

    #[derive(Default)]
    struct Held(BTreeSet<PageId>);

    impl Backing for Held {
        fn holds(&self, page: PageId) -> bool {
            self.0.contains(&page)
        }
    }

    /// Nodes, their backings, and the messages in flight (one FIFO queue,
    /// so FIFO per pair of nodes).
    struct Cluster {
        nodes: Vec<Node>,
        backing: Vec<Held>,
        dead: NodeSet,
        queue: VecDeque<(NodeId, NodeId, PageMsg)>,
        /// Messages that crossed nodes.
        sent: usize,
        /// Actions other than sends, by node.
        done: Vec<(NodeId, PageAction)>,
    }

    impl Cluster {
        fn new(n: usize) -> Cluster {
            Cluster {
                nodes: (0..n)
                    .map(|i| Node::new(NodeId(i as u8), n, ArrayMap::new()).unwrap())
                    .collect(),
                backing: (0..n).map(|_| Held::default()).collect(),
                dead: NodeSet::EMPTY,
                queue: VecDeque::new(),
                sent: 0,
                done: Vec::new(),
            }
        }

        fn take(&mut self, node: NodeId, out: Vec<PageAction>) {
            for action in out {
                match action {
                    PageAction::Send { to, msg } => {
                        if to != node {
                            self.sent += 1;
                        }
                        self.queue.push_back((node, to, msg));
                    }
                    PageAction::DropBacking {
                        container,
                        first,
                        end,
                    } => {
                        let range = PageRange {
                            container,
                            first,
                            end,
                        };
                        self.backing[node.index()].0.retain(|p| !range.contains(*p));
                        self.done.push((node, action));
                    }
                    PageAction::Adopt { page } => {
                        assert!(self.backing[node.index()].0.remove(&page));
                        self.done.push((node, action));
                    }
                    other => self.done.push((node, other)),
                }
            }
        }

        /// Delivers the first `limit` messages (all if `None`).
        fn run(&mut self, limit: Option<usize>) {
            let mut n = 0;
            while let Some((from, to, msg)) = self.queue.pop_front() {
                if self.dead.contains(to) || self.dead.contains(from) {
                    continue;
                }
                let mut out = Vec::new();
                let i = to.index();
                self.nodes[i]
                    .on_message(from, msg, &self.backing[i], &mut out)
                    .unwrap();
                self.take(to, out);
                n += 1;
                if limit.is_some_and(|l| n >= l) {
                    break;
                }
            }
        }

        fn fault(&mut self, node: u8, page: PageId, write: bool) -> Result<Lookup, Error> {
            let mut out = Vec::new();
            let n = &mut self.nodes[node as usize];
            let r = if write {
                n.grab_page(page, &mut out)
            } else {
                n.get_page(page, &mut out)
            };
            self.take(NodeId(node), out);
            r
        }

        /// A whole fault: returns the messages it took.
        fn access(&mut self, node: u8, page: PageId, write: bool) -> usize {
            let before = self.sent;
            assert!(self.fault(node, page, write).is_ok());
            self.run(None);
            self.sent - before
        }

        fn release(&mut self, node: u8, container: u32, first: u64, end: u64) -> u32 {
            let mut out = Vec::new();
            let id = self.nodes[node as usize]
                .release(container, first, end, &mut out)
                .unwrap();
            self.take(NodeId(node), out);
            id
        }

        fn kill(&mut self, dead: u8) {
            self.dead.insert(NodeId(dead));
            for i in 0..self.nodes.len() {
                if self.dead.contains(NodeId(i as u8)) {
                    continue;
                }
                let mut out = Vec::new();
                self.nodes[i].node_down(NodeId(dead), &mut out).unwrap();
                self.take(NodeId(i as u8), out);
            }
        }

        /// Brings dead node `node` back as a fresh incarnation, told of
        /// every live node, every live node told of it.
        fn rejoin(&mut self, node: u8) {
            let j = NodeId(node);
            let n = self.nodes.len();
            self.nodes[j.index()] = Node::rejoin(j, n, ArrayMap::new()).unwrap();
            self.backing[j.index()] = Held::default();
            self.dead.remove(j);
            for i in 0..n {
                let s = NodeId(i as u8);
                if s == j || self.dead.contains(s) {
                    continue;
                }
                let mut out = Vec::new();
                self.nodes[j.index()].node_up(s, &mut out).unwrap();
                self.take(j, out);
                let mut out = Vec::new();
                self.nodes[i].node_up(j, &mut out).unwrap();
                self.take(s, out);
            }
        }

        fn holders(&self, page: PageId) -> Vec<(usize, Access)> {
            (0..self.nodes.len())
                .filter(|&i| !self.dead.contains(NodeId(i as u8)))
                .map(|i| (i, self.nodes[i].find_page(page)))
                .filter(|(_, a)| *a != Access::None)
                .collect()
        }

        fn count(&self, f: impl Fn(&PageAction) -> bool) -> usize {
            self.done.iter().filter(|(_, a)| f(a)).count()
        }

        fn quiet(&self) -> bool {
            self.nodes.iter().enumerate().all(|(i, n)| {
                let mut busy = false;
                n.records()
                    .for_each(&mut |_, r| busy |= r.want != Want::Nothing || r.expects());
                self.dead.contains(NodeId(i as u8))
                    || (!busy && !n.is_recovering() && n.releases_in_progress() == (0, 0))
            })
        }
    }

    fn page(container: u32, index: u64) -> PageId {
        PageId { container, index }
    }

    #[test]
    fn restart_is_new_or_rejoin() {
        let mut a: ContainerNode<ArrayMap<PageId, PageRecord, 8>> =
            ContainerNode::new(NodeId(1), 3, ArrayMap::new()).unwrap();
        let mut out = std::vec::Vec::new();
        let page = PageId {
            container: homed(NodeId(0), 0, 1),
            index: 9,
        };
        let _ = a.get_page(page, &mut out);
        assert!(a.records().len() > 0);
        a.restart(true);
        let b: ContainerNode<ArrayMap<PageId, PageRecord, 8>> =
            ContainerNode::rejoin(NodeId(1), 3, ArrayMap::new()).unwrap();
        assert_eq!(std::format!("{a:?}"), std::format!("{b:?}"));
        a.restart(false);
        let c: ContainerNode<ArrayMap<PageId, PageRecord, 8>> =
            ContainerNode::new(NodeId(1), 3, ArrayMap::new()).unwrap();
        assert_eq!(std::format!("{a:?}"), std::format!("{c:?}"));
    }

    #[test]
    fn first_touch_once_then_three_messages_at_most() {
        let mut c = Cluster::new(8);
        let p = page(3, 11);
        let manager = manager_of(p, 8).0;
        let (a, b, d) = ((manager + 1) % 8, (manager + 2) % 8, (manager + 3) % 8);
        assert!(c.access(a, p, true) <= 2);
        assert_eq!(c.count(|x| matches!(x, PageAction::FirstTouch { .. })), 1);
        assert_eq!(c.nodes[a as usize].find_page(p), Access::Write);
        assert_eq!(c.access(b, p, false), 3);
        assert_eq!(c.nodes[a as usize].find_page(p), Access::Read);
        assert_eq!(c.nodes[b as usize].find_page(p), Access::Read);
        // A write: request, forward, transfer, plus one invalidation and ack,
        // and the transfer's acknowledgement.
        assert_eq!(c.access(d, p, true), 6);
        assert_eq!(c.holders(p), [(d as usize, Access::Write)]);
        assert!(c.quiet());
    }

    #[test]
    fn flush_injects_the_last_copy() {
        let mut c = Cluster::new(4);
        let p = page(1, 2);
        c.access(1, p, true);
        let mut out = Vec::new();
        c.nodes[1].flush_page(p, NodeId(3), &mut out).unwrap();
        c.take(NodeId(1), out);
        c.run(None);
        assert!(c.done.contains(&(
            NodeId(1),
            PageAction::Flushed {
                page: p,
                dropped: true
            }
        )));
        assert_eq!(c.holders(p), [(3, Access::Write)]);
        // The manager knows: a read from node 0 is served by node 3.
        c.access(0, p, false);
        assert_eq!(c.nodes[0].find_page(p), Access::Read);
        assert_eq!(c.count(|x| matches!(x, PageAction::FirstTouch { .. })), 1);
        assert!(c.quiet());
    }

    #[test]
    fn unexpected_messages_are_errors_and_leave_no_state() {
        let mut nodes = Cluster::new(2).nodes;
        let p = page(1, 0);
        let mut out = Vec::new();
        let not_manager = NodeId(1 - manager_of(p, 2).0);
        let n = &mut nodes[not_manager.index()];
        let b = NoBacking;
        let get = PageMsg::Get {
            page: p,
            write: false,
            tag: 1,
        };
        // A request to a node that is not the manager (the requester's view
        // differs) is retried, and leaves no record.
        assert_eq!(n.on_message(NodeId(0), get, &b, &mut out), Ok(()));
        assert_eq!(
            out.pop(),
            Some(PageAction::Send {
                to: NodeId(0),
                msg: PageMsg::Retry { page: p, tag: 1 }
            })
        );
        assert!(n.record(p).is_none());
        let create = PageMsg::Create { page: p, tag: 1 };
        assert_eq!(
            n.on_message(NodeId(0), create, &b, &mut out),
            Err(Error::Protocol)
        );
        let ack = PageMsg::InvalidateAck { page: p };
        assert_eq!(
            n.on_message(NodeId(0), ack, &b, &mut out),
            Err(Error::Protocol)
        );
        assert_eq!(
            n.on_message(NodeId(9), create, &b, &mut out),
            Err(Error::Protocol)
        );
        let zero_tag = PageMsg::Get {
            page: p,
            write: false,
            tag: 0,
        };
        assert_eq!(
            n.on_message(NodeId(0), zero_tag, &b, &mut out),
            Err(Error::Protocol)
        );
        // A spare copy (no request in flight) is ignored.
        let copy = PageMsg::Copy {
            page: p,
            version: 1,
            tag: 0,
        };
        assert_eq!(n.on_message(NodeId(0), copy, &b, &mut out), Ok(()));
        assert!(out.is_empty());
        assert!(n.records().is_empty());
        // A full table refuses a new request without side effects.
        let mut small: ContainerNode<ArrayMap<PageId, PageRecord, 1>> =
            ContainerNode::new(NodeId(0), 2, ArrayMap::new()).unwrap();
        small.get_page(p, &mut out).unwrap();
        assert_eq!(small.get_page(page(1, 1), &mut out), Err(Error::NoSpace));
    }

    #[test]
    fn container_ids_name_their_home() {
        assert_eq!(home_of(homed(NodeId(0), 0, 5)), Some(NodeId(0)));
        assert_eq!(home_of(homed(NodeId(63), 255, u16::MAX)), Some(NodeId(63)));
        assert_eq!(home_of(7), None);
        assert_eq!(home_of(homed(NodeId(64), 3, 7)), None);
        assert_eq!(home_of(u32::MAX), None);
        // Bits 24..32 the home plus one, 16..24 its generation, 0..16 the
        // serial.
        assert_eq!(homed(NodeId(2), 4, 0x1234), 0x0304_1234);
        assert_eq!(homed(NodeId(63), 255, u16::MAX), 0x40ff_ffff);
        assert_eq!(home_gen_of(0x0304_1234), 4);
        assert_eq!(0x0304_1234 & SERIAL_MASK, 0x1234);
        assert_eq!(SERIAL_MASK, 0xffff);
        assert_eq!((HOME_SHIFT, GEN_SHIFT), (24, 16));
        // Generation 0 keeps the ids of the earlier layout.
        assert_eq!(homed(NodeId(0), 0, 1), (1 << 24) | 1);
        // An invalid home: the unhomed id, the serial alone.
        assert_eq!(homed(NodeId(64), 9, 7), 7);
        assert_eq!(home_of(homed(NodeId(64), 9, 7)), None);
        // Two incarnations of a home name different containers.
        assert_ne!(homed(NodeId(1), 0, 3), homed(NodeId(1), 2, 3));
        // Ids cross the wire whole.
        let msg = PageMsg::Get {
            page: page(homed(NodeId(5), 6, 0xbeef), 9),
            write: true,
            tag: 3,
        };
        let mut buf = [0u8; super::super::container_msg::MAX_LEN];
        let len = super::super::container_msg::encode(&msg, None, &mut buf).unwrap();
        let (back, data) = super::super::container_msg::decode(&buf[..len]).unwrap();
        assert!(data.is_none());
        assert_eq!(back, msg);
        let container = back.page().unwrap().container;
        assert_eq!(
            (home_of(container), home_gen_of(container), container as u16),
            (Some(NodeId(5)), 6, 0xbeef)
        );
    }

    #[test]
    fn a_death_moves_only_the_dead_managers_pages() {
        let n = 8;
        let all = NodeSet::first(n);
        let live = all.without(NodeId(3));
        let mut moved = 0;
        for i in 0..500 {
            let p = page(i as u32 % 5, i);
            let m = manager_of(p, n);
            assert_eq!(manager_of_live(p, n, all), m);
            let after = manager_of_live(p, n, live);
            assert!(live.contains(after));
            if m == NodeId(3) {
                moved += 1;
            } else {
                assert_eq!(after, m);
            }
            // A second death moves only the pages of that node.
            let fewer = live.without(after);
            if after != NodeId(5) {
                assert_eq!(manager_of_live(p, n, live.without(NodeId(5))), after);
            }
            assert!(fewer.contains(manager_of_live(p, n, fewer)));
        }
        assert!(moved > 20);
    }

    #[test]
    fn the_home_adopts_its_pages_in_three_messages() {
        let mut c = Cluster::new(6);
        let home = NodeId(2);
        let held = page(homed(home, 0, 1), 40);
        let fresh = page(homed(home, 0, 1), 41);
        c.backing[2].0.insert(held);
        let reader = (0..6u8)
            .find(|&r| r != 2 && NodeId(r) != manager_of(held, 6))
            .unwrap();
        assert_eq!(c.access(reader, held, false), 3);
        assert_eq!(c.count(|a| matches!(a, PageAction::Adopt { .. })), 1);
        assert_eq!(c.count(|a| matches!(a, PageAction::FirstTouch { .. })), 0);
        let mut expected = [(2, Access::Read), (reader as usize, Access::Read)];
        expected.sort();
        assert_eq!(c.holders(held), expected);
        // A page the home does not hold is created there, once.
        c.access(reader, fresh, true);
        c.access(4, fresh, false);
        assert_eq!(c.count(|a| matches!(a, PageAction::FirstTouch { .. })), 1);
        // The home itself faults on a page it holds: adopted, no copy sent.
        let own = page(homed(home, 0, 1), 42);
        c.backing[2].0.insert(own);
        c.access(2, own, true);
        assert_eq!(c.holders(own), [(2, Access::Write)]);
        assert_eq!(c.count(|a| matches!(a, PageAction::Adopt { .. })), 2);
        assert!(c.quiet());
    }

    #[test]
    fn release_drops_every_copy_and_record_then_pages_are_fresh() {
        let mut c = Cluster::new(5);
        let cont = homed(NodeId(1), 0, 3);
        for i in 0..6 {
            c.backing[1].0.insert(page(cont, i));
        }
        for i in 0..6 {
            c.access((i % 5) as u8, page(cont, i), i % 2 == 0);
            c.access(((i + 2) % 5) as u8, page(cont, i), false);
        }
        let id = c.release(3, cont, 1, 5);
        c.run(None);
        assert!(c.done.contains(&(
            NodeId(3),
            PageAction::Released {
                origin: NodeId(3),
                id,
                range: PageRange {
                    container: cont,
                    first: 1,
                    end: 5
                }
            }
        )));
        for i in 1..5 {
            let p = page(cont, i);
            assert!(c.holders(p).is_empty());
            assert!(c.nodes.iter().all(|n| n.record(p).is_none()));
            assert!(!c.backing[1].0.contains(&p));
        }
        assert!(!c.holders(page(cont, 0)).is_empty());
        assert!(!c.holders(page(cont, 5)).is_empty());
        assert!(c.quiet());
        // A fault after the release creates a fresh page at the home.
        let touches = c.count(|a| matches!(a, PageAction::FirstTouch { .. }));
        c.access(4, page(cont, 2), false);
        assert_eq!(
            c.count(|a| matches!(a, PageAction::FirstTouch { .. })),
            touches + 1
        );
    }

    #[test]
    fn a_request_racing_a_release_retries_and_sees_a_fresh_page() {
        for cut in 0..12 {
            let mut c = Cluster::new(4);
            let p = page(7, 3);
            c.access(0, p, true);
            c.access(1, p, false);
            // Node 2 asks for the page; the release starts after `cut`
            // messages of that request.
            c.fault(2, p, true).unwrap();
            c.run(Some(cut));
            c.release(3, 7, 0, 8);
            c.run(None);
            assert!(c.holders(p).is_empty(), "cut {cut}");
            assert!(c.quiet(), "cut {cut}");
            assert!(c.count(|a| matches!(a, PageAction::Released { .. })) == 1);
            // Node 2's request ended (completed before the release, or
            // cancelled): a new fault creates the page afresh.
            assert!(!c.nodes[2].is_pending(p));
            let touches = c.count(|a| matches!(a, PageAction::FirstTouch { .. }));
            c.access(2, p, true);
            assert_eq!(c.holders(p), [(2, Access::Write)]);
            assert_eq!(
                c.count(|a| matches!(a, PageAction::FirstTouch { .. })),
                touches + 1
            );
        }
    }

    #[test]
    fn a_read_copy_survives_its_owners_death() {
        let mut c = Cluster::new(4);
        let p = (0..)
            .map(|i| page(2, i))
            .find(|p| manager_of(*p, 4) != NodeId(1))
            .unwrap();
        c.access(1, p, true);
        c.access(2, p, false);
        c.kill(1);
        c.run(None);
        assert!(c.quiet());
        assert_eq!(c.holders(p), [(2, Access::Write)]);
        c.access(3, p, false);
        assert_eq!(c.holders(p), [(2, Access::Read), (3, Access::Read)]);
        assert_eq!(c.count(|a| matches!(a, PageAction::Failed { .. })), 0);
    }

    #[test]
    fn the_only_copy_dies_with_its_node_and_requests_fail() {
        let mut c = Cluster::new(4);
        let p = (0..)
            .map(|i| page(2, i))
            .find(|p| manager_of(*p, 4) != NodeId(1))
            .unwrap();
        c.access(1, p, true);
        c.kill(1);
        c.run(None);
        c.access(3, p, false);
        assert!(c
            .done
            .contains(&(NodeId(3), PageAction::Failed { page: p })));
        assert!(c.quiet());
        // Released, the page is fresh again.
        c.release(0, 2, p.index, p.index + 1);
        c.run(None);
        c.access(3, p, true);
        assert_eq!(c.holders(p), [(3, Access::Write)]);
    }

    #[test]
    fn pages_of_a_dead_manager_are_rebuilt_from_reports() {
        let mut c = Cluster::new(5);
        let pages: Vec<PageId> = (0..)
            .map(|i| page(homed(NodeId(0), 0, 9), i))
            .filter(|p| manager_of(*p, 5) == NodeId(4))
            .take(3)
            .collect();
        c.access(1, pages[0], true);
        c.access(2, pages[1], false);
        c.access(3, pages[1], false);
        // A request in flight when the manager dies.
        c.fault(2, pages[2], true).unwrap();
        c.kill(4);
        c.run(None);
        assert!(c.quiet());
        assert!(!c.nodes[2].is_pending(pages[2]));
        assert_eq!(c.holders(pages[0]), [(1, Access::Write)]);
        c.access(3, pages[0], true);
        assert_eq!(c.holders(pages[0]), [(3, Access::Write)]);
        c.access(1, pages[1], true);
        assert_eq!(c.holders(pages[1]), [(1, Access::Write)]);
        // The request that died with its manager works when retried.
        c.access(2, pages[2], true);
        assert_eq!(c.holders(pages[2]), [(2, Access::Write)]);
        assert_eq!(c.count(|a| matches!(a, PageAction::Failed { .. })), 0);
        assert!(c.quiet());
    }

    #[test]
    fn boot_nodes_are_live_and_node_up_of_a_live_node_changes_nothing() {
        let mut n = Node::new(NodeId(1), 4, ArrayMap::new()).unwrap();
        let mut out = Vec::new();
        for i in 0..4 {
            n.node_up(NodeId(i), &mut out).unwrap();
        }
        assert!(out.is_empty());
        assert_eq!(n.live(), NodeSet::first(4));
        assert!(!n.is_recovering() && !n.is_joining());
        assert_eq!(n.node_up(NodeId(4), &mut out), Err(Error::Invalid));
    }

    #[test]
    fn a_node_that_comes_back_manages_its_pages_again() {
        let mut c = Cluster::new(4);
        let pages: Vec<PageId> = (0..)
            .map(|i| page(homed(NodeId(0), 0, 7), i))
            .filter(|p| manager_of(*p, 4) == NodeId(3))
            .take(2)
            .collect();
        c.access(1, pages[0], true);
        c.access(2, pages[1], false);
        c.kill(3);
        c.run(None);
        assert!(c.quiet());
        let interim = c.nodes[0].manager(pages[0]);
        assert_ne!(interim, NodeId(3));
        // Node 3 comes back, fresh: it knows nothing until a marker.
        c.rejoin(3);
        assert!(c.nodes[3].is_joining());
        assert_eq!(c.fault(3, pages[0], false), Err(Error::Busy));
        c.run(None);
        assert!(c.quiet());
        for node in &c.nodes {
            assert_eq!(node.live(), NodeSet::first(4));
            assert_eq!(node.gens(), c.nodes[0].gens());
            assert_eq!(node.manager(pages[0]), NodeId(3));
        }
        assert!(!c.nodes[3].is_joining());
        // The records moved back: the new incarnation manages the pages, the
        // interim manager forgot them, and no page was lost.
        let rec = c.nodes[3].record(pages[0]).copied().unwrap_or_default();
        assert_eq!(rec.owner_of_record, Some(NodeId(1)));
        let old = c.nodes[interim.index()].record(pages[0]);
        assert_eq!(old.and_then(|r| r.owner_of_record), None);
        assert_eq!(c.holders(pages[0]), [(1, Access::Write)]);
        // Request to the new manager, forward, copy.
        assert_eq!(c.access(2, pages[0], false), 3);
        assert_eq!(c.holders(pages[0]), [(1, Access::Read), (2, Access::Read)]);
        c.access(3, pages[1], true);
        assert_eq!(c.holders(pages[1]), [(3, Access::Write)]);
        assert_eq!(c.count(|a| matches!(a, PageAction::Failed { .. })), 0);
        assert!(c.quiet());
    }

    #[test]
    fn a_node_that_comes_back_is_no_home() {
        // Its memory died with it: the pages of its container nobody took
        // fail, as after its death.
        let mut c = Cluster::new(3);
        let p = page(homed(NodeId(2), 0, 1), 0);
        c.backing[2].0.insert(p);
        c.kill(2);
        c.run(None);
        c.rejoin(2);
        c.run(None);
        assert!(c.quiet());
        assert!(c.fault(0, p, false).is_ok());
        c.run(None);
        assert_eq!(c.count(|a| matches!(a, PageAction::Failed { .. })), 1);
        assert_eq!(c.count(|a| matches!(a, PageAction::Adopt { .. })), 0);
    }

    #[test]
    fn a_node_that_comes_back_homes_the_containers_it_makes() {
        let mut c = Cluster::new(3);
        let home = NodeId(2);
        // A container of the first incarnation: a page the home's memory
        // holds and node 1 read, one it holds that nobody took, one never
        // made.
        let old = c.nodes[2].new_container_id(1).unwrap();
        assert_eq!(old, homed(home, 0, 1));
        let (kept, held, never) = (page(old, 0), page(old, 1), page(old, 2));
        c.backing[2].0.insert(kept);
        c.backing[2].0.insert(held);
        c.access(1, kept, false);
        c.kill(2);
        c.run(None);
        c.rejoin(2);
        // Joining: it knows no generation of its own yet.
        assert_eq!(c.nodes[2].new_container_id(1), Err(Error::Busy));
        c.run(None);
        assert!(c.quiet() && !c.nodes[2].is_joining());
        for node in &c.nodes {
            assert_eq!(node.gens().get(home), 2);
        }
        // Its new container: same serial, another id.
        let new = c.nodes[2].new_container_id(1).unwrap();
        assert_eq!(new, homed(home, 2, 1));
        assert_ne!(new, old);
        // (managed by the third node: every message crosses nodes)
        let adopted = (0..)
            .map(|i| page(new, i))
            .find(|p| c.nodes[0].manager(*p) == NodeId(1))
            .unwrap();
        let fresh = page(new, adopted.index + 1);
        c.backing[2].0.insert(adopted);
        // Others read it from the home's memory (request, forward, copy)...
        assert_eq!(c.access(0, adopted, false), 3);
        // (the first adoption was of the earlier incarnation's page)
        assert_eq!(c.count(|a| matches!(a, PageAction::Adopt { .. })), 2);
        assert_eq!(c.holders(adopted), [(0, Access::Read), (2, Access::Read)]);
        // ...write it (ownership moves, copies invalidated)...
        c.access(1, adopted, true);
        assert_eq!(c.holders(adopted), [(1, Access::Write)]);
        // ...and the home creates the pages its memory lacks, once.
        c.access(0, fresh, true);
        assert_eq!(c.count(|a| matches!(a, PageAction::FirstTouch { .. })), 1);
        assert_eq!(c.holders(fresh), [(0, Access::Write)]);
        c.access(2, fresh, false);
        c.access(2, adopted, true);
        assert_eq!(c.holders(adopted), [(2, Access::Write)]);
        assert_eq!(c.count(|a| matches!(a, PageAction::Failed { .. })), 0);
        // The earlier incarnation's container: the page a survivor held
        // lives on, the others died with the home's memory.
        c.access(0, kept, true);
        assert_eq!(c.holders(kept), [(0, Access::Write)]);
        for (node, p) in [(0, held), (1, never), (2, held)] {
            assert!(c.fault(node, p, false).is_ok());
            c.run(None);
        }
        let failed: Vec<PageId> = c
            .done
            .iter()
            .filter_map(|(_, a)| match a {
                PageAction::Failed { page } => Some(*page),
                _ => None,
            })
            .collect();
        assert_eq!(failed, [held, never, held]);
        assert_eq!(c.count(|a| matches!(a, PageAction::Adopt { .. })), 2);
        // A release drops the backing of the incarnation that made the
        // container only.
        c.release(1, old, 0, 3);
        c.run(None);
        c.release(1, new, 0, fresh.index + 1);
        c.run(None);
        let dropped: Vec<(NodeId, u32)> = c
            .done
            .iter()
            .filter_map(|(n, a)| match a {
                PageAction::DropBacking { container, .. } => Some((*n, *container)),
                _ => None,
            })
            .collect();
        assert_eq!(dropped, [(home, new)]);
        assert!(c.quiet());
        // The released pages are fresh: the home creates them again.
        c.access(1, adopted, false);
        assert_eq!(c.count(|a| matches!(a, PageAction::FirstTouch { .. })), 2);
        assert!(c.quiet());
    }
}
