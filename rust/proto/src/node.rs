// SPDX-License-Identifier: GPL-2.0
//! Node identifiers and sets of nodes.
//!
//! A cluster has at most [`MAX_NODES`] nodes, so a set of nodes is one `u64`.

/// Largest number of nodes in one cluster.
pub const MAX_NODES: usize = 64;

/// Identifier of one kernel instance, `0..MAX_NODES`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(pub u8);

impl NodeId {
    /// Returns the node id as an index, `0..MAX_NODES`.
    pub const fn index(self) -> usize {
        self.0 as usize
    }

    /// Returns whether the id is below [`MAX_NODES`].
    pub const fn is_valid(self) -> bool {
        (self.0 as usize) < MAX_NODES
    }
}

/// A set of nodes as a bitmap: bit `n` stands for `NodeId(n)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct NodeSet(pub u64);

impl NodeSet {
    /// The empty set.
    pub const EMPTY: NodeSet = NodeSet(0);

    /// The set of nodes `0..count` (all nodes if `count >= MAX_NODES`).
    pub const fn first(count: usize) -> NodeSet {
        if count >= MAX_NODES {
            NodeSet(u64::MAX)
        } else {
            NodeSet((1u64 << count) - 1)
        }
    }

    /// The set holding only `node` (empty if `node` is out of range).
    pub const fn single(node: NodeId) -> NodeSet {
        if node.is_valid() {
            NodeSet(1u64 << node.0)
        } else {
            NodeSet(0)
        }
    }

    /// Returns whether `node` is in the set.
    pub const fn contains(self, node: NodeId) -> bool {
        node.is_valid() && self.0 & (1u64 << node.0) != 0
    }

    /// Adds `node` to the set (ignored if out of range).
    pub fn insert(&mut self, node: NodeId) {
        self.0 |= NodeSet::single(node).0;
    }

    /// Removes `node` from the set.
    pub fn remove(&mut self, node: NodeId) {
        self.0 &= !NodeSet::single(node).0;
    }

    /// The set without `node`.
    pub const fn without(self, node: NodeId) -> NodeSet {
        NodeSet(self.0 & !NodeSet::single(node).0)
    }

    /// The union of two sets.
    pub const fn union(self, other: NodeSet) -> NodeSet {
        NodeSet(self.0 | other.0)
    }

    /// The nodes of `self` that are not in `other`.
    pub const fn minus(self, other: NodeSet) -> NodeSet {
        NodeSet(self.0 & !other.0)
    }

    /// Returns whether every node of `self` is in `other`.
    pub const fn is_subset(self, other: NodeSet) -> bool {
        self.0 & !other.0 == 0
    }

    /// Returns whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Number of nodes in the set.
    pub const fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    /// The lowest node in the set.
    pub const fn lowest(self) -> Option<NodeId> {
        if self.0 == 0 {
            None
        } else {
            Some(NodeId(self.0.trailing_zeros() as u8))
        }
    }

    /// The lowest node of the set above `after`, wrapping around to the lowest one.
    pub const fn next_after(self, after: NodeId) -> Option<NodeId> {
        let shift = after.0 as u32 + 1;
        let above = if shift >= 64 {
            0
        } else {
            self.0 & (u64::MAX << shift)
        };
        if above != 0 {
            Some(NodeId(above.trailing_zeros() as u8))
        } else {
            self.lowest()
        }
    }

    /// Iterates over the nodes of the set, lowest first.
    pub fn iter(self) -> NodeSetIter {
        NodeSetIter(self.0)
    }
}

/// Iterator over the nodes of a [`NodeSet`].
#[derive(Clone, Debug)]
pub struct NodeSetIter(u64);

impl Iterator for NodeSetIter {
    type Item = NodeId;

    fn next(&mut self) -> Option<NodeId> {
        if self.0 == 0 {
            return None;
        }
        let bit = self.0.trailing_zeros();
        self.0 &= self.0 - 1;
        Some(NodeId(bit as u8))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_operations() {
        let mut set = NodeSet::first(3);
        assert_eq!(set.len(), 3);
        set.remove(NodeId(1));
        assert!(!set.contains(NodeId(1)));
        set.insert(NodeId(63));
        assert!(set.contains(NodeId(63)));
        set.insert(NodeId(64));
        assert_eq!(set.len(), 3);
        let nodes: std::vec::Vec<u8> = set.iter().map(|n| n.0).collect();
        assert_eq!(nodes, [0, 2, 63]);
        assert_eq!(set.next_after(NodeId(2)), Some(NodeId(63)));
        assert_eq!(set.next_after(NodeId(63)), Some(NodeId(0)));
        assert_eq!(NodeSet::first(64).len(), 64);
        assert!(NodeSet::single(NodeId(2)).is_subset(set));
        assert_eq!(
            set.minus(NodeSet::single(NodeId(0))).lowest(),
            Some(NodeId(2))
        );
    }
}
