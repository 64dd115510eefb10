// SPDX-License-Identifier: GPL-2.0

//! The container layer's page records, in a red-black tree.

use crate::proto::container::{PageId, PageRecord};
use crate::proto::error::Error;
use crate::proto::table::Table;
use kernel::prelude::*;
use kernel::rbtree::RBTree;

/// The [`Table`] the kernel runs [`crate::proto::container::ContainerNode`]
/// over: one node per page this node keeps a record of, ordered by
/// container and index so that a range is found by a lower-bound search.
pub(crate) struct Records {
    tree: RBTree<PageId, PageRecord>,
    /// Number of records in `tree`.
    count: usize,
}

impl Records {
    /// An empty table.
    pub(crate) fn new() -> Self {
        Records {
            tree: RBTree::new(),
            count: 0,
        }
    }
}

/// Removes the entries of pages `first..end` of `container` from `tree`
/// (ordered by container and index: one lower-bound search, then the
/// range); returns how many there were.
pub(crate) fn remove_range<V>(
    tree: &mut RBTree<PageId, V>,
    container: u32,
    first: u64,
    end: u64,
) -> usize {
    let mut removed = 0;
    let from = PageId {
        container,
        index: first,
    };
    let mut cursor = tree.cursor_lower_bound(&from);
    while let Some(c) = cursor {
        let (key, _) = c.current();
        if key.container != container || key.index >= end {
            break;
        }
        let (next, _node) = c.remove_current();
        removed += 1;
        cursor = next;
    }
    removed
}

impl Table<PageId, PageRecord> for Records {
    fn len(&self) -> usize {
        self.count
    }

    fn get(&self, key: &PageId) -> Option<&PageRecord> {
        self.tree.get(key)
    }

    fn get_mut(&mut self, key: &PageId) -> Option<&mut PageRecord> {
        self.tree.get_mut(key)
    }

    fn insert(&mut self, key: PageId, value: PageRecord) -> Result<(), Error> {
        if let Some(rec) = self.tree.get_mut(&key) {
            *rec = value;
            return Ok(());
        }
        self.tree
            .try_create_and_insert(key, value, GFP_KERNEL)
            .map_err(|_| Error::NoSpace)?;
        self.count += 1;
        Ok(())
    }

    fn remove(&mut self, key: &PageId) -> Option<PageRecord> {
        let rec = self.tree.remove(key)?;
        self.count -= 1;
        Some(rec)
    }

    fn for_each(&self, f: &mut dyn FnMut(&PageId, &PageRecord)) {
        for (k, v) in self.tree.iter() {
            f(k, v);
        }
    }

    /// One lookup, not the trait's scan of every record: the protocol
    /// walks the whole table with it (a death, a round, a restart), which
    /// the scan made quadratic in the number of records (minutes with tens
    /// of thousands, a soft lockup and the node counted dead).
    fn next_from(&mut self, from: &PageId) -> Option<PageId> {
        self.tree.cursor_lower_bound(from).map(|c| *c.current().0)
    }
}
