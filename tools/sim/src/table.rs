// SPDX-License-Identifier: GPL-2.0
//! Host implementations of the proto crate's collection and sink traits.

use cohort_proto::error::Error;
use cohort_proto::sink::Sink;
use cohort_proto::table::Table;
use std::collections::BTreeMap;

/// An unbounded [`Table`] over a `BTreeMap`, optionally limited to `cap`
/// records to exercise the `NoSpace` paths.
#[derive(Clone, Debug, Default)]
pub struct MapTable<K, V> {
    map: BTreeMap<K, V>,
    cap: Option<usize>,
}

impl<K, V> MapTable<K, V> {
    /// An empty table; `cap` limits the number of records.
    pub fn new(cap: Option<usize>) -> Self {
        MapTable {
            map: BTreeMap::new(),
            cap,
        }
    }

    /// The records, ordered by key.
    pub fn map(&self) -> &BTreeMap<K, V> {
        &self.map
    }
}

impl<K: Copy + Ord, V> Table<K, V> for MapTable<K, V> {
    fn len(&self) -> usize {
        self.map.len()
    }

    fn get(&self, key: &K) -> Option<&V> {
        self.map.get(key)
    }

    fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        self.map.get_mut(key)
    }

    fn insert(&mut self, key: K, value: V) -> Result<(), Error> {
        if !self.map.contains_key(&key) && self.cap.is_some_and(|cap| self.map.len() >= cap) {
            return Err(Error::NoSpace);
        }
        self.map.insert(key, value);
        Ok(())
    }

    fn remove(&mut self, key: &K) -> Option<V> {
        self.map.remove(key)
    }

    fn for_each(&self, f: &mut dyn FnMut(&K, &V)) {
        for (k, v) in &self.map {
            f(k, v);
        }
    }
}

/// A [`Sink`] that keeps the actions in order.
#[derive(Debug)]
pub struct Actions<A>(pub Vec<A>);

impl<A> Actions<A> {
    /// No actions yet.
    pub fn new() -> Self {
        Actions(Vec::new())
    }
}

impl<A> Default for Actions<A> {
    fn default() -> Self {
        Self::new()
    }
}

impl<A> Sink<A> for Actions<A> {
    fn push(&mut self, action: A) {
        self.0.push(action);
    }
}
