// SPDX-License-Identifier: GPL-2.0
//! The page directory of a migrated task's address space.
//!
//! A single-threaded task that migrates leaves its pages where they are and
//! fetches them on demand. Exactly one node holds a valid copy of a page at
//! a time: a fetch moves the page (the giver unmaps it). The task's origin
//! node keeps the [`Directory`]: for every page *not* held by the origin,
//! the node that holds it. A page absent from the directory is held by the
//! origin if it is in the origin's memory; otherwise nobody touched it yet
//! ("fresh") and the faulting node fills it locally.
//!
//! Pages are keyed by page number (`addr >> 12`, see
//! [`super::task_msg::PAGE_SHIFT`]). A fault on node `n`:
//!
//! 1. `n` sends [`super::task_msg::MSG_PAGE_FETCH`] to the origin, which asks
//!    [`Directory::plan_fetch`]: the origin gives its own copy (or "fresh"),
//!    or takes the page from its holder with
//!    [`super::task_msg::MSG_PAGE_TAKE`] and passes it on;
//! 2. once the page is transferred, the origin [`Directory::record`]s `n` as
//!    its holder.
//!
//! An unmap drops the range ([`Directory::drop_range`]) and the origin tells
//! the nodes that held pages in it to zap them
//! ([`super::task_msg::MSG_RANGE_ZAP`]).
//!
//! The directory grows with the workload and nothing here allocates, so its
//! entries live in a [`PageStore`] the caller provides: a sorted vector of
//! `(page, node)` pairs the directory searches by bisection.
//! [`ArrayPageStore`] is a core-only fixed-capacity one; the kernel backs
//! one with a `KVec` and reports a failed allocation as [`Error::NoSpace`].

use super::error::Error;
use super::node::{NodeId, NodeSet};

/// A vector of `(page, node)` entries, kept sorted by page (strictly
/// increasing) by the [`Directory`] that owns it. Indices are
/// `0..len()`; a method given an index out of range does nothing (or
/// returns `None`/[`Error::Invalid`]).
pub trait PageStore {
    /// Number of entries.
    fn len(&self) -> usize;

    /// Returns whether there is no entry.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The entry at index `i`.
    fn get(&self, i: usize) -> Option<(u64, NodeId)>;

    /// Inserts an entry at index `i` (`0..=len()`), shifting the following
    /// ones up. [`Error::NoSpace`] (no room, allocation failed) or
    /// [`Error::Invalid`] (`i > len()`) leaves the store unchanged.
    fn insert(&mut self, i: usize, page: u64, node: NodeId) -> Result<(), Error>;

    /// Overwrites the entry at index `i`, page included.
    fn replace(&mut self, i: usize, page: u64, node: NodeId);

    /// Changes the node of the entry at index `i`.
    fn set(&mut self, i: usize, node: NodeId) {
        if let Some((page, _)) = self.get(i) {
            self.replace(i, page, node);
        }
    }

    /// Removes the entry at index `i`, shifting the following ones down.
    fn remove(&mut self, i: usize);

    /// Removes the `n` entries from index `i` on (fewer if the store ends
    /// first). The default removes them one by one; a store should do it
    /// in one move.
    fn remove_range(&mut self, i: usize, n: usize) {
        let n = n.min(self.len().saturating_sub(i));
        for _ in 0..n {
            self.remove(i);
        }
    }
}

/// A core-only [`PageStore`] of at most `CAP` entries in an inline array.
#[derive(Clone, Debug)]
pub struct ArrayPageStore<const CAP: usize> {
    entries: [(u64, NodeId); CAP],
    len: usize,
}

impl<const CAP: usize> ArrayPageStore<CAP> {
    /// An empty store.
    pub const fn new() -> Self {
        ArrayPageStore {
            entries: [(0, NodeId(0)); CAP],
            len: 0,
        }
    }

    /// The entries in use.
    fn used_mut(&mut self) -> &mut [(u64, NodeId)] {
        let len = self.len;
        self.entries.get_mut(..len).unwrap_or(&mut [])
    }
}

impl<const CAP: usize> Default for ArrayPageStore<CAP> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const CAP: usize> PageStore for ArrayPageStore<CAP> {
    fn len(&self) -> usize {
        self.len
    }

    fn get(&self, i: usize) -> Option<(u64, NodeId)> {
        self.entries.get(..self.len)?.get(i).copied()
    }

    fn insert(&mut self, i: usize, page: u64, node: NodeId) -> Result<(), Error> {
        if i > self.len {
            return Err(Error::Invalid);
        }
        let end = self.len.checked_add(1).ok_or(Error::NoSpace)?;
        let tail = self.entries.get_mut(i..end).ok_or(Error::NoSpace)?;
        tail.rotate_right(1);
        if let Some(first) = tail.first_mut() {
            *first = (page, node);
        }
        self.len = end;
        Ok(())
    }

    fn replace(&mut self, i: usize, page: u64, node: NodeId) {
        if let Some(entry) = self.used_mut().get_mut(i) {
            *entry = (page, node);
        }
    }

    fn remove(&mut self, i: usize) {
        self.remove_range(i, 1);
    }

    fn remove_range(&mut self, i: usize, n: usize) {
        let used = self.used_mut();
        let Some(tail) = used.get_mut(i..) else {
            return;
        };
        let n = n.min(tail.len());
        tail.rotate_left(n);
        self.len = self.len.saturating_sub(n);
    }
}

/// What the origin does for a fetch of a page ([`Directory::plan_fetch`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FetchPlan {
    /// The origin holds the page, or nobody does: the origin sends its copy
    /// (and unmaps it) or answers "fresh".
    TakeFromOrigin,
    /// This node holds the page: the origin takes it from there
    /// ([`super::task_msg::MSG_PAGE_TAKE`]) and passes it on.
    TakeFrom(NodeId),
    /// The requester already holds the page (for the origin as requester:
    /// the origin holds it or nobody does; it handles the fault locally).
    AlreadyHeld,
}

/// The page directory the origin of a task keeps: which node holds each
/// page the origin does not.
///
/// Invariant: the store is sorted by page, strictly increasing, and no
/// entry names the origin.
#[derive(Clone, Debug)]
pub struct Directory<S: PageStore> {
    origin: NodeId,
    store: S,
}

impl<S: PageStore> Directory<S> {
    /// An empty directory for a task whose origin is `origin`; any entry
    /// already in `store` is removed.
    pub fn new(origin: NodeId, mut store: S) -> Directory<S> {
        let len = store.len();
        store.remove_range(0, len);
        Directory { origin, store }
    }

    /// The task's origin, which holds every page absent from the directory.
    pub const fn origin(&self) -> NodeId {
        self.origin
    }

    /// Number of pages held by nodes other than the origin.
    pub fn len(&self) -> usize {
        self.store.len()
    }

    /// Returns whether the origin holds every page (or nobody does).
    pub fn is_empty(&self) -> bool {
        self.store.is_empty()
    }

    /// The store, read-only.
    pub const fn store(&self) -> &S {
        &self.store
    }

    /// Gives the store back.
    pub fn into_store(self) -> S {
        self.store
    }

    /// The entries `(page, holder)`, by increasing page.
    pub fn entries(&self) -> impl Iterator<Item = (u64, NodeId)> + '_ {
        (0..self.store.len()).filter_map(move |i| self.store.get(i))
    }

    /// The nodes other than the origin that hold any page (those to tell
    /// when the whole address space goes).
    pub fn holders(&self) -> NodeSet {
        self.entries().fold(NodeSet::EMPTY, |mut set, (_, node)| {
            set.insert(node);
            set
        })
    }

    /// Index of the first entry whose page is at least `page` (`len()` if
    /// none).
    fn lower_bound(&self, page: u64) -> usize {
        let mut lo = 0;
        let mut hi = self.store.len();
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.store.get(mid) {
                Some((p, _)) if p < page => lo = mid + 1,
                _ => hi = mid,
            }
        }
        lo
    }

    /// Index of the entry of `page`, if any.
    fn find(&self, page: u64) -> Result<usize, usize> {
        let i = self.lower_bound(page);
        match self.store.get(i) {
            Some((p, _)) if p == page => Ok(i),
            _ => Err(i),
        }
    }

    /// The node holding `page`: the origin when the page is not in the
    /// directory (the origin has it in memory, or nobody touched it).
    pub fn holder(&self, page: u64) -> NodeId {
        match self.find(page) {
            Ok(i) => self.store.get(i).map_or(self.origin, |(_, node)| node),
            Err(_) => self.origin,
        }
    }

    /// What to do when `requester` faults on `page`. Changes nothing: once
    /// the page is transferred, [`Directory::record`] the requester.
    pub fn plan_fetch(&self, page: u64, requester: NodeId) -> FetchPlan {
        let holder = self.holder(page);
        if holder == requester {
            FetchPlan::AlreadyHeld
        } else if holder == self.origin {
            FetchPlan::TakeFromOrigin
        } else {
            FetchPlan::TakeFrom(holder)
        }
    }

    /// Records that `holder` now holds `page` (after a transfer): the origin
    /// removes the entry, another node inserts or updates it.
    /// [`Error::Invalid`] for a holder not below `MAX_NODES`;
    /// [`Error::NoSpace`] leaves the directory unchanged.
    pub fn record(&mut self, page: u64, holder: NodeId) -> Result<(), Error> {
        if !holder.is_valid() {
            return Err(Error::Invalid);
        }
        match self.find(page) {
            Ok(i) if holder == self.origin => self.store.remove(i),
            Ok(i) => self.store.set(i, holder),
            Err(_) if holder == self.origin => {}
            Err(i) => self.store.insert(i, page, holder)?,
        }
        Ok(())
    }

    /// Removes every entry of the pages `start_page..end_page` and returns
    /// the nodes that held any of them (the origin's own copies are the
    /// caller's to drop): the caller tells them to zap the range. Empty if
    /// `start_page >= end_page`.
    pub fn drop_range(&mut self, start_page: u64, end_page: u64) -> NodeSet {
        if start_page >= end_page {
            return NodeSet::EMPTY;
        }
        let first = self.lower_bound(start_page);
        let mut set = NodeSet::EMPTY;
        let mut end = first;
        while let Some((page, node)) = self.store.get(end) {
            if page >= end_page {
                break;
            }
            set.insert(node);
            end += 1;
        }
        self.store.remove_range(first, end - first);
        set
    }

    /// Moves the pages `old_start..old_start + pages` to
    /// `new_start..new_start + pages` (`mremap` moving a mapping).
    ///
    /// The caller first pulls every page of the old range to `to`, the node
    /// doing the `mremap` (so every entry of the old range names `to`, and
    /// the origin holds none of them unless `to` is the origin), then moves
    /// the mapping there. This records the pages of the new range as held
    /// by `to` where the old ones were, and forgets the old range. Whatever
    /// the directory held in the new range is dropped: the returned nodes
    /// held pages there and must zap them (`to` may be among them).
    ///
    /// [`Error::Invalid`], with the directory unchanged, if `to` is not
    /// below `MAX_NODES`, a range overflows, the ranges overlap (`mremap`
    /// refuses that too), or an entry of the old range names a node other
    /// than `to`. Never [`Error::NoSpace`]: entries are rewritten in place.
    pub fn move_range(
        &mut self,
        old_start: u64,
        new_start: u64,
        pages: u64,
        to: NodeId,
    ) -> Result<NodeSet, Error> {
        if !to.is_valid() {
            return Err(Error::Invalid);
        }
        let old_end = old_start.checked_add(pages).ok_or(Error::Invalid)?;
        let new_end = new_start.checked_add(pages).ok_or(Error::Invalid)?;
        if pages == 0 {
            return Ok(NodeSet::EMPTY);
        }
        if old_start < new_end && new_start < old_end {
            return Err(Error::Invalid);
        }
        let first = self.lower_bound(old_start);
        let last = self.lower_bound(old_end);
        if (first..last).any(|i| !matches!(self.store.get(i), Some((_, n)) if n == to)) {
            return Err(Error::Invalid);
        }
        let count = last.saturating_sub(first);
        let zapped = self.drop_range(new_start, new_end);
        if count == 0 {
            return Ok(zapped);
        }
        // The old run is whole (the new range does not overlap it); bring
        // it next to where the new range goes, then rename its pages.
        let first = self.lower_bound(old_start);
        let dest = self.lower_bound(new_start);
        let run_start = if new_start > old_start {
            // Entries between the two ranges move down by `count`.
            self.rotate_left(first, dest, count);
            dest.saturating_sub(count)
        } else {
            // Entries between the two ranges move up by `count`.
            let end = first.saturating_add(count);
            self.rotate_left(dest, end, first.saturating_sub(dest));
            dest
        };
        for i in run_start..run_start.saturating_add(count) {
            if let Some((page, node)) = self.store.get(i) {
                let moved = page.wrapping_sub(old_start).wrapping_add(new_start);
                self.store.replace(i, moved, node);
            }
        }
        Ok(zapped)
    }

    /// Rotates the entries `lo..hi` left by `k` (`k <= hi - lo`): three
    /// reversals, in place, so nothing can fail.
    fn rotate_left(&mut self, lo: usize, hi: usize, k: usize) {
        let mid = lo.saturating_add(k).min(hi);
        self.reverse(lo, mid);
        self.reverse(mid, hi);
        self.reverse(lo, hi);
    }

    /// Reverses the entries `lo..hi`.
    fn reverse(&mut self, mut lo: usize, mut hi: usize) {
        while lo.saturating_add(1) < hi {
            hi -= 1;
            if let (Some((pa, na)), Some((pb, nb))) = (self.store.get(lo), self.store.get(hi)) {
                self.store.replace(lo, pb, nb);
                self.store.replace(hi, pa, na);
            }
            lo += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::vec::Vec;

    /// A [`PageStore`] over a `Vec`, as the kernel does over a `KVec`, with
    /// an optional capacity to exercise [`Error::NoSpace`].
    #[derive(Default)]
    struct VecStore {
        v: Vec<(u64, NodeId)>,
        cap: Option<usize>,
    }

    impl PageStore for VecStore {
        fn len(&self) -> usize {
            self.v.len()
        }

        fn get(&self, i: usize) -> Option<(u64, NodeId)> {
            self.v.get(i).copied()
        }

        fn insert(&mut self, i: usize, page: u64, node: NodeId) -> Result<(), Error> {
            if i > self.v.len() {
                return Err(Error::Invalid);
            }
            if self.cap.is_some_and(|cap| self.v.len() >= cap) {
                return Err(Error::NoSpace);
            }
            self.v.insert(i, (page, node));
            Ok(())
        }

        fn replace(&mut self, i: usize, page: u64, node: NodeId) {
            if let Some(e) = self.v.get_mut(i) {
                *e = (page, node);
            }
        }

        fn remove(&mut self, i: usize) {
            if i < self.v.len() {
                self.v.remove(i);
            }
        }
    }

    const O: NodeId = NodeId(1);

    fn check_against<S: PageStore>(dir: &Directory<S>, model: &BTreeMap<u64, NodeId>) {
        let got: Vec<_> = dir.entries().collect();
        let want: Vec<_> = model.iter().map(|(&p, &n)| (p, n)).collect();
        assert_eq!(got, want);
        assert_eq!(dir.len(), model.len());
        assert!(got.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(got.iter().all(|&(_, n)| n != dir.origin()));
    }

    #[test]
    fn array_store_basics() {
        let mut s: ArrayPageStore<3> = ArrayPageStore::new();
        assert!(s.is_empty());
        assert_eq!(s.insert(1, 5, NodeId(1)), Err(Error::Invalid));
        s.insert(0, 5, NodeId(1)).unwrap();
        s.insert(0, 3, NodeId(2)).unwrap();
        s.insert(2, 9, NodeId(3)).unwrap();
        assert_eq!(s.insert(1, 4, NodeId(4)), Err(Error::NoSpace));
        assert_eq!(s.get(0), Some((3, NodeId(2))));
        assert_eq!(s.get(1), Some((5, NodeId(1))));
        assert_eq!(s.get(2), Some((9, NodeId(3))));
        assert_eq!(s.get(3), None);
        s.set(1, NodeId(7));
        s.set(5, NodeId(7));
        s.replace(9, 1, NodeId(1));
        assert_eq!(s.get(1), Some((5, NodeId(7))));
        s.remove(0);
        assert_eq!(s.get(0), Some((5, NodeId(7))));
        s.remove(2);
        assert_eq!(s.len(), 2);
        s.remove_range(1, usize::MAX);
        assert_eq!(s.len(), 1);
        s.remove_range(usize::MAX, 1);
        s.remove_range(0, 0);
        assert_eq!(s.len(), 1);
        let mut z: ArrayPageStore<0> = ArrayPageStore::default();
        assert_eq!(z.insert(0, 1, NodeId(0)), Err(Error::NoSpace));
        z.remove(0);
        assert_eq!(z.get(0), None);
    }

    #[test]
    fn holder_plan_record() {
        let mut d = Directory::new(O, VecStore::default());
        assert_eq!(d.origin(), O);
        assert_eq!(d.holder(7), O);
        assert_eq!(d.plan_fetch(7, NodeId(2)), FetchPlan::TakeFromOrigin);
        assert_eq!(d.plan_fetch(7, O), FetchPlan::AlreadyHeld);
        d.record(7, NodeId(2)).unwrap();
        assert_eq!(d.holder(7), NodeId(2));
        assert_eq!(d.plan_fetch(7, NodeId(2)), FetchPlan::AlreadyHeld);
        assert_eq!(d.plan_fetch(7, NodeId(3)), FetchPlan::TakeFrom(NodeId(2)));
        assert_eq!(d.plan_fetch(7, O), FetchPlan::TakeFrom(NodeId(2)));
        d.record(7, NodeId(3)).unwrap();
        assert_eq!(d.len(), 1);
        d.record(7, O).unwrap();
        assert!(d.is_empty());
        d.record(7, O).unwrap();
        assert!(d.is_empty());
        assert_eq!(d.record(7, NodeId(64)), Err(Error::Invalid));
        assert!(d.is_empty());
        // A store handed over with entries starts empty.
        let mut s = VecStore::default();
        s.v.push((1, NodeId(2)));
        let d = Directory::new(O, s);
        assert!(d.is_empty());
        assert!(d.into_store().v.is_empty());
    }

    #[test]
    fn ranges() {
        let mut d = Directory::new(O, ArrayPageStore::<16>::new());
        for (p, n) in [(1, 2), (2, 3), (4, 2), (8, 5), (9, 6)] {
            d.record(p, NodeId(n)).unwrap();
        }
        assert_eq!(d.holders(), NodeSet(0b110_1100));
        assert_eq!(d.drop_range(5, 5), NodeSet::EMPTY);
        assert_eq!(d.drop_range(9, 2), NodeSet::EMPTY);
        assert_eq!(d.drop_range(2, 9), NodeSet(0b10_1100));
        assert_eq!(
            d.entries().collect::<Vec<_>>(),
            [(1, NodeId(2)), (9, NodeId(6))]
        );
        assert_eq!(d.drop_range(0, u64::MAX), NodeSet(0b100_0100));
        assert!(d.is_empty());

        // move_range: preconditions leave the directory unchanged.
        for (p, n) in [(1, 2), (10, 4), (11, 4), (13, 4), (20, 3), (30, 5)] {
            d.record(p, NodeId(n)).unwrap();
        }
        let before: Vec<_> = d.entries().collect();
        assert_eq!(d.move_range(10, 40, 4, NodeId(2)), Err(Error::Invalid));
        assert_eq!(d.move_range(10, 12, 4, NodeId(4)), Err(Error::Invalid));
        assert_eq!(d.move_range(10, 8, 4, NodeId(4)), Err(Error::Invalid));
        assert_eq!(d.move_range(10, 40, 4, NodeId(64)), Err(Error::Invalid));
        assert_eq!(d.move_range(u64::MAX, 0, 2, NodeId(4)), Err(Error::Invalid));
        assert_eq!(d.move_range(0, u64::MAX, 2, NodeId(4)), Err(Error::Invalid));
        assert_eq!(d.move_range(10, 40, 0, NodeId(4)), Ok(NodeSet::EMPTY));
        assert_eq!(d.entries().collect::<Vec<_>>(), before);
        // Up, over an entry of the new range.
        assert_eq!(d.move_range(10, 28, 4, NodeId(4)), Ok(NodeSet(1 << 5)));
        assert_eq!(
            d.entries().collect::<Vec<_>>(),
            [
                (1, NodeId(2)),
                (20, NodeId(3)),
                (28, NodeId(4)),
                (29, NodeId(4)),
                (31, NodeId(4))
            ]
        );
        // Down, past other entries.
        assert_eq!(d.move_range(28, 0, 4, NodeId(4)), Ok(NodeSet(1 << 2)));
        assert_eq!(
            d.entries().collect::<Vec<_>>(),
            [
                (0, NodeId(4)),
                (1, NodeId(4)),
                (3, NodeId(4)),
                (20, NodeId(3))
            ]
        );
        // The origin as `to`: nothing to rename.
        assert_eq!(d.move_range(100, 19, 2, O), Ok(NodeSet(1 << 3)));
        assert_eq!(d.len(), 3);
    }

    #[test]
    fn no_space_leaves_state_unchanged() {
        let mut d = Directory::new(O, ArrayPageStore::<4>::new());
        let mut v = Directory::new(
            O,
            VecStore {
                v: Vec::new(),
                cap: Some(4),
            },
        );
        for p in [10, 20, 30, 40] {
            d.record(p, NodeId(2)).unwrap();
            v.record(p, NodeId(2)).unwrap();
        }
        let before: Vec<_> = d.entries().collect();
        for p in [0, 15, 25, 35, 50] {
            assert_eq!(d.record(p, NodeId(3)), Err(Error::NoSpace));
            assert_eq!(v.record(p, NodeId(3)), Err(Error::NoSpace));
            assert_eq!(d.entries().collect::<Vec<_>>(), before);
            assert_eq!(v.entries().collect::<Vec<_>>(), before);
        }
        // Updates and removals still work when full.
        d.record(20, NodeId(3)).unwrap();
        assert_eq!(d.holder(20), NodeId(3));
        d.record(20, O).unwrap();
        d.record(25, NodeId(3)).unwrap();
        assert_eq!(d.len(), 4);
        // A full store still moves ranges (entries are rewritten in place).
        assert_eq!(d.move_range(20, 100, 10, NodeId(3)), Ok(NodeSet::EMPTY));
        assert_eq!(d.holder(105), NodeId(3));
        assert_eq!(d.holder(25), O);
    }

    /// splitmix64.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// Random faults, unmaps and moves against a `BTreeMap` model, with a
    /// `Vec` store and a full-capacity array store side by side.
    #[test]
    fn matches_model() {
        const PAGES: u64 = 96;
        const NODES: u64 = 5;
        let mut rng = Rng(0x70a9_e5d1_4ec7_0001);
        for _ in 0..40 {
            let origin = NodeId(rng.below(NODES) as u8);
            let mut model: BTreeMap<u64, NodeId> = BTreeMap::new();
            let mut dv = Directory::new(origin, VecStore::default());
            let mut da = Directory::new(origin, ArrayPageStore::<{ PAGES as usize }>::new());
            for _ in 0..2000 {
                let node = NodeId(rng.below(NODES) as u8);
                match rng.below(20) {
                    0..=15 => {
                        // A fault on `node`, then the transfer.
                        let page = rng.below(PAGES);
                        let holder = model.get(&page).copied().unwrap_or(origin);
                        let want = if holder == node {
                            FetchPlan::AlreadyHeld
                        } else if holder == origin {
                            FetchPlan::TakeFromOrigin
                        } else {
                            FetchPlan::TakeFrom(holder)
                        };
                        assert_eq!(dv.plan_fetch(page, node), want);
                        assert_eq!(da.plan_fetch(page, node), want);
                        assert_eq!(dv.holder(page), holder);
                        dv.record(page, node).unwrap();
                        da.record(page, node).unwrap();
                        if node == origin {
                            model.remove(&page);
                        } else {
                            model.insert(page, node);
                        }
                    }
                    16..=18 => {
                        let a = rng.below(PAGES + 2);
                        let b = a + rng.below(12);
                        let mut want = NodeSet::EMPTY;
                        model.retain(|&p, &mut n| {
                            let gone = p >= a && p < b;
                            if gone {
                                want.insert(n);
                            }
                            !gone
                        });
                        assert_eq!(dv.drop_range(a, b), want);
                        assert_eq!(da.drop_range(a, b), want);
                    }
                    _ => {
                        // mremap by `node`: pull the old range there, then move.
                        let pages = 1 + rng.below(8);
                        let old = rng.below(PAGES - pages);
                        let new = rng.below(PAGES - pages);
                        if old < new + pages && new < old + pages {
                            assert_eq!(dv.move_range(old, new, pages, node), Err(Error::Invalid));
                            assert_eq!(da.move_range(old, new, pages, node), Err(Error::Invalid));
                            continue;
                        }
                        for p in old..old + pages {
                            if model.contains_key(&p) || rng.below(2) == 0 {
                                dv.record(p, node).unwrap();
                                da.record(p, node).unwrap();
                                if node == origin {
                                    model.remove(&p);
                                } else {
                                    model.insert(p, node);
                                }
                            }
                        }
                        let mut want = NodeSet::EMPTY;
                        let mut moved = Vec::new();
                        model.retain(|&p, &mut n| {
                            if p >= new && p < new + pages {
                                want.insert(n);
                                false
                            } else if p >= old && p < old + pages {
                                moved.push(p - old + new);
                                false
                            } else {
                                true
                            }
                        });
                        for p in moved {
                            model.insert(p, node);
                        }
                        assert_eq!(dv.move_range(old, new, pages, node), Ok(want));
                        assert_eq!(da.move_range(old, new, pages, node), Ok(want));
                    }
                }
                check_against(&dv, &model);
                check_against(&da, &model);
            }
        }
    }
}
