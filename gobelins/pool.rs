// SPDX-License-Identifier: GPL-2.0

//! Copies of container pages kept by gobelins itself: pages injected into
//! this node (`proto::container_room`) for a container no store here can
//! hold — none is linked here, or the linked address space has no mapping
//! at the page's address (a shadow's address space lacks the mappings its
//! process made after it left). The record of such a page says this node
//! has a copy; the pool is where it is. A fault of a process that comes
//! here maps it from the pool, and sending it reads it from the pool.

use crate::linker::PageBuf;
use crate::proto::container::PageId;
use kernel::prelude::*;
use kernel::rbtree::RBTree;

/// The pool: one buffer per page, ordered by container and index.
pub(crate) struct Pool {
    pages: RBTree<PageId, PageBuf>,
    /// Number of pages in `pages`.
    count: usize,
}

impl Pool {
    pub(crate) fn new() -> Self {
        Pool {
            pages: RBTree::new(),
            count: 0,
        }
    }

    /// Number of pages kept.
    pub(crate) fn len(&self) -> usize {
        self.count
    }

    /// Keeps `data` as the copy of `page`, replacing any other.
    pub(crate) fn insert(&mut self, page: PageId, data: PageBuf) -> Result {
        if let Some(slot) = self.pages.get_mut(&page) {
            *slot = data;
            return Ok(());
        }
        self.pages.try_create_and_insert(page, data, GFP_KERNEL)?;
        self.count += 1;
        Ok(())
    }

    /// A copy of the contents kept for `page`, if any.
    pub(crate) fn copy(&self, page: PageId) -> Option<Result<PageBuf>> {
        let data = self.pages.get(&page)?;
        Some(KBox::new(**data, GFP_KERNEL).map_err(Into::into))
    }

    /// Drops the copy of `page`; whether there was one.
    pub(crate) fn remove(&mut self, page: PageId) -> bool {
        if self.pages.remove(&page).is_some() {
            self.count -= 1;
            return true;
        }
        false
    }

    /// Drops the copies of pages `first..end` of `container`.
    pub(crate) fn remove_range(&mut self, container: u32, first: u64, end: u64) {
        self.count -= crate::records::remove_range(&mut self.pages, container, first, end);
    }

    /// The pages kept, in order, from `from` on, at most `max` of them.
    pub(crate) fn pages_from(
        &mut self,
        from: PageId,
        max: usize,
        out: &mut KVec<PageId>,
    ) -> Result {
        let mut cursor = self.pages.cursor_lower_bound(&from);
        while let Some(c) = cursor {
            if out.len() >= max {
                break;
            }
            out.push(*c.current().0, GFP_KERNEL)?;
            cursor = c.move_next();
        }
        Ok(())
    }

    /// Drops every copy.
    pub(crate) fn clear(&mut self) {
        self.pages = RBTree::new();
        self.count = 0;
    }
}
