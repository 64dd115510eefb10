// SPDX-License-Identifier: GPL-2.0

//! Removing elements from a kernel `Vec`, which 6.12's `Vec` cannot do yet.

use crate::alloc::{kvec::Vec, Allocator};

/// Removes and returns the last element.
pub fn pop<T, A: Allocator>(v: &mut Vec<T, A>) -> Option<T> {
    let len = v.len();
    if len == 0 {
        return None;
    }
    // SAFETY: Element `len - 1` is initialised. Shrinking the length first
    // hands its ownership to us, so it is read (moved out) exactly once.
    unsafe {
        v.set_len(len - 1);
        Some(core::ptr::read(v.as_ptr().add(len - 1)))
    }
}

/// Removes and returns element `index`, replacing it by the last one.
pub fn swap_remove<T, A: Allocator>(v: &mut Vec<T, A>, index: usize) -> Option<T> {
    let last = v.len().checked_sub(1)?;
    if index > last {
        return None;
    }
    v.as_mut_slice().swap(index, last);
    pop(v)
}

/// Removes and returns the first element, keeping the others in order.
pub fn pop_front<T, A: Allocator>(v: &mut Vec<T, A>) -> Option<T> {
    if v.is_empty() {
        return None;
    }
    v.as_mut_slice().rotate_left(1);
    pop(v)
}

/// Drops every element, keeping the allocation.
pub fn clear<T, A: Allocator>(v: &mut Vec<T, A>) {
    while pop(v).is_some() {}
}

/// Shortens the vector to `len` elements, dropping the rest; keeps the
/// allocation.
pub fn truncate<T, A: Allocator>(v: &mut Vec<T, A>, len: usize) {
    let old = v.len();
    if len >= old {
        return;
    }
    // SAFETY: Elements `len..old` are initialised. The length shrinks first,
    // so they are no longer the vector's and are dropped exactly once.
    unsafe {
        v.set_len(len);
        let tail = core::ptr::slice_from_raw_parts_mut(v.as_mut_ptr().add(len), old - len);
        core::ptr::drop_in_place(tail);
    }
}

/// Inserts `value` at `index` (at most the length), shifting the following
/// elements up; on allocation failure the vector is unchanged.
pub fn insert<T, A: Allocator>(
    v: &mut Vec<T, A>,
    index: usize,
    value: T,
    flags: crate::alloc::Flags,
) -> Result<(), crate::alloc::AllocError> {
    if index > v.len() {
        return Err(crate::alloc::AllocError);
    }
    v.push(value, flags)?;
    v.as_mut_slice()[index..].rotate_right(1);
    Ok(())
}

/// Removes and returns element `index`, keeping the others in order.
pub fn remove<T, A: Allocator>(v: &mut Vec<T, A>, index: usize) -> Option<T> {
    if index >= v.len() {
        return None;
    }
    v.as_mut_slice()[index..].rotate_left(1);
    pop(v)
}
