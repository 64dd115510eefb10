// SPDX-License-Identifier: GPL-2.0
//! The one collection the state machines need: a small map with fallible
//! insertion.
//!
//! The kernel has no `alloc` crate, so the protocol code never allocates.
//! State machines whose size the protocol bounds (Lamport queues) use fixed
//! arrays; those whose size grows with the workload (container pages, tasks)
//! keep their records in a [`Table`], which the caller provides:
//! [`ArrayMap`] is a core-only fixed-capacity implementation, and the kernel
//! modules implement the trait over their own allocating structures
//! (`KVec`, `KBox`, an XArray), reporting a failed allocation as
//! [`Error::NoSpace`].

use super::error::Error;

/// A map from small copyable keys to records, with fallible insertion.
pub trait Table<K: Copy + Eq, V> {
    /// Number of records.
    fn len(&self) -> usize;

    /// Returns whether the table holds no record.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The record of `key`.
    fn get(&self, key: &K) -> Option<&V>;

    /// The record of `key`, for update.
    fn get_mut(&mut self, key: &K) -> Option<&mut V>;

    /// Inserts or replaces the record of `key`; [`Error::NoSpace`] leaves the
    /// table unchanged.
    fn insert(&mut self, key: K, value: V) -> Result<(), Error>;

    /// Removes and returns the record of `key`.
    fn remove(&mut self, key: &K) -> Option<V>;

    /// Calls `f` on every record, in no particular order.
    fn for_each(&self, f: &mut dyn FnMut(&K, &V));

    /// The lowest key at or above `from`, if any: one step of a walk over a
    /// range of keys in order (a release walks the pages of a range this
    /// way, and may remove the key it is at before taking the next step).
    /// The default scans every record, which makes a walk quadratic: an
    /// ordered table (an rbtree, an XArray) answers with one lookup, and
    /// must. `&mut`: the kernel's rbtree finds a bound with a cursor, which
    /// borrows the tree mutably.
    fn next_from(&mut self, from: &K) -> Option<K>
    where
        K: Ord,
    {
        let mut best: Option<K> = None;
        self.for_each(&mut |k, _| {
            let lower = match best {
                None => true,
                Some(b) => *k < b,
            };
            if *k >= *from && lower {
                best = Some(*k);
            }
        });
        best
    }
}

/// A [`Table`] of at most `CAP` records in an inline array (linear search).
#[derive(Clone, Debug)]
pub struct ArrayMap<K: Copy + Eq, V: Copy, const CAP: usize> {
    slots: [Option<(K, V)>; CAP],
    len: usize,
}

impl<K: Copy + Eq, V: Copy, const CAP: usize> ArrayMap<K, V, CAP> {
    /// An empty map.
    pub const fn new() -> Self {
        ArrayMap {
            slots: [None; CAP],
            len: 0,
        }
    }

    fn position(&self, key: &K) -> Option<usize> {
        self.slots
            .iter()
            .position(|slot| matches!(slot, Some((k, _)) if k == key))
    }
}

impl<K: Copy + Eq, V: Copy, const CAP: usize> Default for ArrayMap<K, V, CAP> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Copy + Eq, V: Copy, const CAP: usize> Table<K, V> for ArrayMap<K, V, CAP> {
    fn len(&self) -> usize {
        self.len
    }

    fn get(&self, key: &K) -> Option<&V> {
        self.slots.iter().find_map(|slot| match slot {
            Some((k, v)) if k == key => Some(v),
            _ => None,
        })
    }

    fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        self.slots.iter_mut().find_map(|slot| match slot {
            Some((k, v)) if k == key => Some(v),
            _ => None,
        })
    }

    fn insert(&mut self, key: K, value: V) -> Result<(), Error> {
        if let Some(v) = self.get_mut(&key) {
            *v = value;
            return Ok(());
        }
        let free = self
            .slots
            .iter_mut()
            .find(|slot| slot.is_none())
            .ok_or(Error::NoSpace)?;
        *free = Some((key, value));
        self.len += 1;
        Ok(())
    }

    fn remove(&mut self, key: &K) -> Option<V> {
        let pos = self.position(key)?;
        let old = self.slots.get_mut(pos)?.take();
        if old.is_some() {
            self.len -= 1;
        }
        old.map(|(_, v)| v)
    }

    fn for_each(&self, f: &mut dyn FnMut(&K, &V)) {
        for (k, v) in self.slots.iter().flatten() {
            f(k, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_get_remove_and_full() {
        let mut map: ArrayMap<u32, u64, 2> = ArrayMap::new();
        assert!(map.is_empty());
        assert_eq!(map.insert(1, 10), Ok(()));
        assert_eq!(map.insert(2, 20), Ok(()));
        assert_eq!(map.insert(3, 30), Err(Error::NoSpace));
        assert_eq!(map.insert(2, 21), Ok(()));
        assert_eq!(map.get(&2), Some(&21));
        assert_eq!(map.remove(&1), Some(10));
        assert_eq!(map.remove(&1), None);
        assert_eq!(map.insert(3, 30), Ok(()));
        let mut sum = 0;
        map.for_each(&mut |_, v| sum += *v);
        assert_eq!(sum, 51);
        assert_eq!(map.len(), 2);
        assert_eq!(map.next_from(&0), Some(2));
        assert_eq!(map.next_from(&3), Some(3));
        assert_eq!(map.next_from(&4), None);
    }
}
