// SPDX-License-Identifier: GPL-2.0
//! Container coherence: cluster-wide pages, sequentially consistent,
//! write-invalidate, with a fixed distributed manager.
//!
//! This is the protocol of the Containers report (Lottiaux, Morin, Vallee,
//! INRIA RR-4384, section 3) over Li and Hudak's fixed distributed manager:
//!
//! - A container is a set of pages; page ([`PageId`]) has a manager node fixed
//!   by a hash ([`manager_of`]), one owner holding the master copy, and a
//!   copyset of nodes holding read copies (kept by the owner).
//! - [`ContainerNode::get_page`] gives a read copy, [`ContainerNode::grab_page`]
//!   a unique writable copy (every other copy invalidated), and
//!   [`ContainerNode::flush_page`] drops a copy, injecting the last one into
//!   another node instead of losing it.
//! - Requests go to the manager, which forwards them to the owner. The manager
//!   records the new owner as soon as it forwards a write request, so a read
//!   fault takes at most 3 messages (request, forward, copy) whatever the
//!   number of nodes; a write fault takes 3 plus 2 per read copy invalidated.
//!   Requests that reach a designated owner before its page does wait there.
//! - When no copy exists anywhere, the manager tells the requester to create
//!   it ([`PageAction::FirstTouch`], the I/O linker's `first_touch`): this runs
//!   once cluster-wide because the manager serialises it.
//!
//! Versions: each write ownership transfer bumps the page version;
//! invalidations carry the new version, and a read copy older than the last
//! invalidation seen is stale (it crossed the invalidation on another
//! channel): it is dropped and the request sent again.
//!
//! Page contents never pass through this module: a [`PageAction::Send`] of
//! [`PageMsg::Copy`], [`PageMsg::Transfer`] or [`PageMsg::Inject`] carries the
//! local copy, and [`PageAction::Install`] installs the copy of the message
//! being handled. Actions must be carried out in order: the threads woken by
//! [`PageAction::Ready`] complete their access before a later action of the
//! same event may send the page away.

use super::error::Error;
use super::node::{NodeId, NodeSet, MAX_NODES};
use super::sink::Sink;
use super::table::Table;

/// One page of one container.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PageId {
    /// Cluster-wide container id.
    pub container: u32,
    /// Index of the page in the container.
    pub index: u64,
}

/// The manager of `page` in a cluster of `nodes` nodes (a fixed hash).
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

/// A message between the container layers of two nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageMsg {
    /// Requester to manager: wants a copy (`write`: a unique writable one).
    Get {
        /// The page.
        page: PageId,
        /// Whether a writable copy is wanted.
        write: bool,
    },
    /// Manager to owner: serve `requester`.
    Forward {
        /// The page.
        page: PageId,
        /// The node that asked.
        requester: NodeId,
        /// Whether it wants a writable copy.
        write: bool,
    },
    /// Manager to requester: no copy exists anywhere, create the first one.
    Create {
        /// The page.
        page: PageId,
    },
    /// Owner to requester: a read copy (carries the page contents).
    Copy {
        /// The page.
        page: PageId,
        /// Version of the contents.
        version: u64,
    },
    /// Old owner to new owner: the page and its ownership (carries contents).
    Transfer {
        /// The page.
        page: PageId,
        /// Version the new owner writes under.
        version: u64,
        /// Nodes holding read copies, to invalidate.
        copyset: NodeSet,
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
    /// Manager to owner: ownership is already leaving, nothing to inject.
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
}

impl PageMsg {
    /// The page the message is about.
    pub fn page(&self) -> PageId {
        match *self {
            PageMsg::Get { page, .. }
            | PageMsg::Forward { page, .. }
            | PageMsg::Create { page, .. }
            | PageMsg::Copy { page, .. }
            | PageMsg::Transfer { page, .. }
            | PageMsg::Invalidate { page, .. }
            | PageMsg::InvalidateAck { page }
            | PageMsg::FlushRequest { page, .. }
            | PageMsg::FlushGo { page, .. }
            | PageMsg::FlushCancel { page }
            | PageMsg::Inject { page, .. } => page,
        }
    }

    /// Returns whether the message carries the page contents.
    pub fn carries_data(&self) -> bool {
        matches!(
            self,
            PageMsg::Copy { .. } | PageMsg::Transfer { .. } | PageMsg::Inject { .. }
        )
    }
}

/// What the caller must do after an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageAction {
    /// Send `msg` to `to` (possibly this node: deliver it locally).
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
    /// Install the contents carried by the message being handled.
    Install {
        /// The page.
        page: PageId,
    },
    /// Drop the local copy (invalidated, given away or flushed).
    Discard {
        /// The page.
        page: PageId,
    },
    /// The local copy lost write access (a read copy was handed out).
    WriteProtect {
        /// The page.
        page: PageId,
    },
    /// The local request is satisfied with `access`: wake the faulting threads.
    Ready {
        /// The page.
        page: PageId,
        /// Access now available.
        access: Access,
    },
    /// A [`ContainerNode::flush_page`] has finished (copy dropped or kept).
    Flushed {
        /// The page.
        page: PageId,
        /// Whether the local copy is gone.
        dropped: bool,
    },
}

/// What [`ContainerNode::get_page`] and [`ContainerNode::grab_page`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// The local copy allows the access: no message needed.
    Hit,
    /// A request is under way: wait for [`PageAction::Ready`], then retry.
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

/// Everything one node knows about one page, in its three roles.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PageRecord {
    /// Manager role: owner of record (`None`: the page exists nowhere yet).
    pub owner_of_record: Option<NodeId>,
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
    /// Requester role: requests sent whose answer has not come back. The
    /// record (and its `min_version`) lives until they have.
    pub unanswered: u8,
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

    fn is_unused(&self) -> bool {
        let idle = PageRecord {
            version: self.version,
            min_version: self.min_version,
            ..PageRecord::default()
        };
        *self == idle
    }

    fn busy(&self) -> bool {
        !self.present || !self.is_owner || !self.awaiting_acks.is_empty()
    }
}

/// The container layer of one node, over a caller-provided record table.
#[derive(Debug)]
pub struct ContainerNode<T: Table<PageId, PageRecord>> {
    me: NodeId,
    nodes: usize,
    records: T,
}

impl<T: Table<PageId, PageRecord>> ContainerNode<T> {
    /// Creates the container layer of node `me` in a cluster of `nodes`.
    pub fn new(me: NodeId, nodes: usize, records: T) -> Result<Self, Error> {
        if nodes == 0 || nodes > MAX_NODES || me.index() >= nodes {
            return Err(Error::Invalid);
        }
        Ok(ContainerNode { me, nodes, records })
    }

    /// This node's id.
    pub fn node(&self) -> NodeId {
        self.me
    }

    /// The record of `page`, if this node keeps one.
    pub fn record(&self, page: PageId) -> Option<&PageRecord> {
        self.records.get(&page)
    }

    /// The record table.
    pub fn records(&self) -> &T {
        &self.records
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
    pub fn get_page(
        &mut self,
        page: PageId,
        out: &mut dyn Sink<PageAction>,
    ) -> Result<Lookup, Error> {
        self.fault(page, false, out)
    }

    /// `grab_page`: makes the only, writable, copy of `page` present here.
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
        let needed = if write { Access::Write } else { Access::Read };
        let known = self.records.get(&page).copied().unwrap_or_default();
        if known.access() >= needed {
            return Ok(Lookup::Hit);
        }
        if known.flushing {
            return Err(Error::Busy);
        }
        if known.want != Want::Nothing {
            return Ok(Lookup::Wait);
        }
        let mut rec = self.load(page)?;
        if rec.is_owner && rec.present {
            // Owner with read copies out: invalidate them itself.
            if !rec.awaiting_acks.is_empty() {
                return Ok(Lookup::Wait);
            }
            rec.want = Want::Write;
            self.start_invalidation(page, &mut rec, out);
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
        if rec.want != Want::Nothing || rec.flushing || !rec.awaiting_acks.is_empty() {
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
        if target == self.me || target.index() >= self.nodes {
            return Err(Error::Invalid);
        }
        rec.flushing = true;
        out.push(PageAction::Send {
            to: manager_of(page, self.nodes),
            msg: PageMsg::FlushRequest { page, target },
        });
        self.store(page, rec);
        Ok(())
    }

    /// Handles a message from node `from` (possibly this node).
    pub fn on_message(
        &mut self,
        from: NodeId,
        msg: PageMsg,
        out: &mut dyn Sink<PageAction>,
    ) -> Result<(), Error> {
        if from.index() >= self.nodes {
            return Err(Error::Protocol);
        }
        let page = msg.page();
        let result = self.handle(from, page, msg, out);
        if result.is_err() && self.records.get(&page).is_some_and(PageRecord::is_unused) {
            // Leave no trace of a refused message.
            self.records.remove(&page);
        }
        result
    }

    fn handle(
        &mut self,
        from: NodeId,
        page: PageId,
        msg: PageMsg,
        out: &mut dyn Sink<PageAction>,
    ) -> Result<(), Error> {
        let mut rec = self.load(page)?;
        match msg {
            PageMsg::Get { write, .. } => {
                self.require_manager(page)?;
                match rec.owner_of_record {
                    None => {
                        rec.owner_of_record = Some(from);
                        out.push(PageAction::Send {
                            to: from,
                            msg: PageMsg::Create { page },
                        });
                    }
                    Some(owner) => {
                        if write {
                            rec.owner_of_record = Some(from);
                        }
                        out.push(PageAction::Send {
                            to: owner,
                            msg: PageMsg::Forward {
                                page,
                                requester: from,
                                write,
                            },
                        });
                    }
                }
            }
            PageMsg::Forward {
                requester, write, ..
            } => {
                if requester.index() >= self.nodes {
                    return Err(Error::Protocol);
                }
                if requester == self.me {
                    // The manager names this node owner already: the page is
                    // here or on its way, and its arrival serves the request.
                    rec.unanswered = rec.unanswered.checked_sub(1).ok_or(Error::Protocol)?;
                } else if write {
                    if rec.queued_write.is_some() {
                        return Err(Error::Protocol);
                    }
                    rec.queued_write = Some(requester);
                } else {
                    rec.queued_reads.insert(requester);
                }
                self.serve_queue(page, &mut rec, out);
            }
            PageMsg::Create { .. } => {
                if rec.want == Want::Nothing || rec.present || rec.is_owner {
                    return Err(Error::Protocol);
                }
                rec.unanswered = rec.unanswered.checked_sub(1).ok_or(Error::Protocol)?;
                rec.present = true;
                rec.is_owner = true;
                rec.version = rec.min_version.max(1);
                rec.copyset = NodeSet::EMPTY;
                out.push(PageAction::FirstTouch { page });
                self.finish_if_done(page, &mut rec, out);
                self.serve_queue(page, &mut rec, out);
            }
            PageMsg::Copy { version, .. } => {
                rec.unanswered = rec.unanswered.checked_sub(1).ok_or(Error::Protocol)?;
                if rec.want != Want::Read || rec.present {
                    // Answer to a request that an injection or transfer
                    // already satisfied: the owner counts this node in its
                    // copyset, which only costs a spare invalidation.
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
            PageMsg::Transfer {
                version, copyset, ..
            } => {
                if rec.is_owner {
                    return Err(Error::Protocol);
                }
                // Possibly the answer to a write request that an injection
                // satisfied earlier: the manager names this node owner, so
                // take the page all the same.
                rec.unanswered = rec.unanswered.checked_sub(1).ok_or(Error::Protocol)?;
                rec.present = true;
                rec.is_owner = true;
                rec.version = version;
                rec.min_version = rec.min_version.max(version);
                rec.copyset = copyset.without(self.me);
                out.push(PageAction::Install { page });
                self.start_invalidation(page, &mut rec, out);
                self.finish_if_done(page, &mut rec, out);
                self.serve_queue(page, &mut rec, out);
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
                out.push(PageAction::Send {
                    to: from,
                    msg: PageMsg::InvalidateAck { page },
                });
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
                self.require_manager(page)?;
                if target.index() >= self.nodes || target == from {
                    return Err(Error::Protocol);
                }
                if rec.owner_of_record == Some(from) {
                    rec.owner_of_record = Some(target);
                    out.push(PageAction::Send {
                        to: from,
                        msg: PageMsg::FlushGo { page, target },
                    });
                } else {
                    out.push(PageAction::Send {
                        to: from,
                        msg: PageMsg::FlushCancel { page },
                    });
                }
            }
            PageMsg::FlushGo { target, .. } => {
                if !rec.flushing {
                    return Err(Error::Protocol);
                }
                rec.flush_go = Some(target);
                self.serve_queue(page, &mut rec, out);
            }
            PageMsg::FlushCancel { .. } => {
                if !rec.flushing {
                    return Err(Error::Protocol);
                }
                rec.flushing = false;
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
                rec.present = true;
                rec.is_owner = true;
                rec.version = version;
                rec.min_version = rec.min_version.max(version);
                rec.copyset = copyset.without(self.me);
                out.push(PageAction::Install { page });
                if rec.want == Want::Write {
                    self.start_invalidation(page, &mut rec, out);
                }
                self.finish_if_done(page, &mut rec, out);
                self.serve_queue(page, &mut rec, out);
            }
        }
        self.store(page, rec);
        Ok(())
    }

    /// Sends the request of `rec.want` to the manager of `page`.
    fn send_get(&self, page: PageId, rec: &mut PageRecord, out: &mut dyn Sink<PageAction>) {
        rec.unanswered = rec.unanswered.saturating_add(1);
        out.push(PageAction::Send {
            to: manager_of(page, self.nodes),
            msg: PageMsg::Get {
                page,
                write: rec.want == Want::Write,
            },
        });
    }

    fn require_manager(&self, page: PageId) -> Result<(), Error> {
        if manager_of(page, self.nodes) == self.me {
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
        rec.version = rec.version.saturating_add(1);
        rec.min_version = rec.min_version.max(rec.version);
        for node in rec.copyset.iter() {
            out.push(PageAction::Send {
                to: node,
                msg: PageMsg::Invalidate {
                    page,
                    version: rec.version,
                },
            });
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
            if reader == self.me {
                continue;
            }
            if rec.copyset.is_empty() {
                out.push(PageAction::WriteProtect { page });
            }
            rec.copyset.insert(reader);
            out.push(PageAction::Send {
                to: reader,
                msg: PageMsg::Copy {
                    page,
                    version: rec.version,
                },
            });
        }
        rec.queued_reads = NodeSet::EMPTY;
        if let Some(writer) = rec.queued_write.take() {
            if writer != self.me {
                let version = rec.version.saturating_add(1);
                out.push(PageAction::Send {
                    to: writer,
                    msg: PageMsg::Transfer {
                        page,
                        version,
                        copyset: rec.copyset,
                    },
                });
                out.push(PageAction::Discard { page });
                rec.present = false;
                rec.is_owner = false;
                rec.copyset = NodeSet::EMPTY;
                rec.min_version = rec.min_version.max(version);
            }
        }
        if let Some(target) = rec.flush_go.take() {
            rec.flushing = false;
            if rec.is_owner && rec.present {
                out.push(PageAction::Send {
                    to: target,
                    msg: PageMsg::Inject {
                        page,
                        version: rec.version,
                        copyset: rec.copyset.without(target),
                    },
                });
                out.push(PageAction::Discard { page });
                rec.present = false;
                rec.is_owner = false;
                rec.copyset = NodeSet::EMPTY;
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

    fn store(&mut self, page: PageId, rec: PageRecord) {
        if rec.is_unused() {
            self.records.remove(&page);
        } else if let Some(slot) = self.records.get_mut(&page) {
            *slot = rec;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::table::ArrayMap;
    use super::*;
    use std::vec::Vec;

    type Node = ContainerNode<ArrayMap<PageId, PageRecord, 16>>;

    /// Delivers everything; returns the messages that crossed nodes and
    /// the actions other than sends, by node.
    fn settle(
        nodes: &mut [Node],
        mut pending: Vec<(NodeId, PageAction)>,
    ) -> (usize, Vec<(NodeId, PageAction)>) {
        let mut sent = 0;
        let mut done = Vec::new();
        while !pending.is_empty() {
            let (node, action) = pending.remove(0);
            if let PageAction::Send { to, msg } = action {
                if to != node {
                    sent += 1;
                }
                let mut out = Vec::new();
                nodes[to.index()].on_message(node, msg, &mut out).unwrap();
                pending.extend(out.into_iter().map(|a| (to, a)));
            } else {
                done.push((node, action));
            }
        }
        (sent, done)
    }

    fn cluster(n: usize) -> Vec<Node> {
        (0..n)
            .map(|i| Node::new(NodeId(i as u8), n, ArrayMap::new()).unwrap())
            .collect()
    }

    fn fault(nodes: &mut [Node], node: u8, page: PageId, write: bool) -> Vec<(NodeId, PageAction)> {
        let mut out = Vec::new();
        let n = &mut nodes[node as usize];
        let r = if write {
            n.grab_page(page, &mut out)
        } else {
            n.get_page(page, &mut out)
        };
        assert!(r.is_ok());
        out.into_iter().map(|a| (NodeId(node), a)).collect()
    }

    fn run_fault(
        nodes: &mut [Node],
        node: u8,
        page: PageId,
        write: bool,
    ) -> (usize, Vec<(NodeId, PageAction)>) {
        let out = fault(nodes, node, page, write);
        settle(nodes, out)
    }

    #[test]
    fn first_touch_once_then_three_messages_at_most() {
        let n = 8;
        let mut nodes = cluster(n);
        let page = PageId {
            container: 3,
            index: 11,
        };
        let manager = manager_of(page, n).0;
        let (a, b, c) = ((manager + 1) % 8, (manager + 2) % 8, (manager + 3) % 8);
        let (sent, done) = run_fault(&mut nodes, a, page, true);
        assert!(sent <= 2);
        assert_eq!(
            done.iter()
                .filter(|(_, x)| matches!(x, PageAction::FirstTouch { .. }))
                .count(),
            1
        );
        assert_eq!(nodes[a as usize].find_page(page), Access::Write);
        let (sent, _) = run_fault(&mut nodes, b, page, false);
        assert_eq!(sent, 3);
        assert_eq!(nodes[a as usize].find_page(page), Access::Read);
        assert_eq!(nodes[b as usize].find_page(page), Access::Read);
        // A write: request, forward, transfer, plus one invalidation and ack.
        let (sent, done) = run_fault(&mut nodes, c, page, true);
        assert_eq!(sent, 5);
        assert!(done.contains(&(
            NodeId(c),
            PageAction::Ready {
                page,
                access: Access::Write
            }
        )));
        let holders = nodes
            .iter()
            .filter(|x| x.find_page(page) != Access::None)
            .count();
        assert_eq!(holders, 1);
        assert_eq!(nodes[c as usize].find_page(page), Access::Write);
    }

    #[test]
    fn flush_injects_the_last_copy() {
        let mut nodes = cluster(4);
        let page = PageId {
            container: 1,
            index: 2,
        };
        run_fault(&mut nodes, 1, page, true);
        let mut out = Vec::new();
        nodes[1].flush_page(page, NodeId(3), &mut out).unwrap();
        let out = out.into_iter().map(|a| (NodeId(1), a)).collect();
        let (_, done) = settle(&mut nodes, out);
        assert!(done.contains(&(
            NodeId(1),
            PageAction::Flushed {
                page,
                dropped: true
            }
        )));
        assert_eq!(nodes[1].find_page(page), Access::None);
        assert_eq!(nodes[3].find_page(page), Access::Write);
        // The manager knows: a read from node 0 is served by node 3.
        let (_, done) = run_fault(&mut nodes, 0, page, false);
        assert!(done.contains(&(
            NodeId(0),
            PageAction::Ready {
                page,
                access: Access::Read
            }
        )));
        assert!(!done
            .iter()
            .any(|(_, a)| matches!(a, PageAction::FirstTouch { .. })));
    }

    #[test]
    fn unexpected_messages_are_errors_and_leave_no_state() {
        let mut nodes = cluster(2);
        let page = PageId {
            container: 1,
            index: 0,
        };
        let mut out = Vec::new();
        let not_manager = NodeId(1 - manager_of(page, 2).0);
        let n = &mut nodes[not_manager.index()];
        assert_eq!(
            n.on_message(NodeId(0), PageMsg::Get { page, write: false }, &mut out),
            Err(Error::Protocol)
        );
        assert_eq!(
            n.on_message(NodeId(0), PageMsg::Copy { page, version: 1 }, &mut out),
            Err(Error::Protocol)
        );
        assert_eq!(
            n.on_message(NodeId(0), PageMsg::InvalidateAck { page }, &mut out),
            Err(Error::Protocol)
        );
        assert_eq!(
            n.on_message(NodeId(9), PageMsg::Create { page }, &mut out),
            Err(Error::Protocol)
        );
        assert!(out.is_empty());
        assert!(n.records().is_empty());
        // A full table refuses a new request without side effects.
        let mut small: ContainerNode<ArrayMap<PageId, PageRecord, 1>> =
            ContainerNode::new(NodeId(0), 2, ArrayMap::new()).unwrap();
        small.get_page(page, &mut out).unwrap();
        let other = PageId {
            container: 1,
            index: 1,
        };
        assert_eq!(small.get_page(other, &mut out), Err(Error::NoSpace));
    }
}
