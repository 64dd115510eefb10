// SPDX-License-Identifier: GPL-2.0
//! Which pages of a container a node holds: the query a node makes of every
//! other before a process whose memory is a container forks there, so that
//! the copy the kernel makes of the address space holds every page.
//!
//! [`MSG_CONTAINER_HELD`] carries a [`HeldRequest`]; the answer is a page
//! list ([`encode_held`]): the indexes of the pages of the container of
//! which the node holds a copy, or, at the container's home, which its
//! memory holds and no node took yet, in increasing order. It is a read of
//! the records, not a step of the coherence protocol (`super::container`):
//! the pages are then asked for with `get_page` like any fault's.
//!
//! Layouts (little-endian): request `container u32` (4 bytes); answer
//! `count u32`, then `count` indexes `u64`, strictly increasing.

use super::wire::{Payload, Reader, WireError, Writer};

/// Message type of the query (the container protocol's is
/// `super::container_msg::MSG_CONTAINER`).
pub const MSG_CONTAINER_HELD: u16 = 0x181;

/// Most indexes one answer lists (4 GiB of pages); a node holding more
/// answers with an error.
pub const MAX_HELD: usize = 1 << 20;

/// [`MSG_CONTAINER_HELD`]: which pages of `container` do you hold?
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeldRequest {
    /// The container, not 0.
    pub container: u32,
}

impl Payload for HeldRequest {
    const LEN: usize = 4;

    fn write(&self, w: &mut Writer<'_>) -> Result<(), WireError> {
        w.u32(self.container)
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let container = r.u32()?;
        if container == 0 {
            return Err(WireError::BadPayload);
        }
        Ok(HeldRequest { container })
    }
}

/// Encoded size of an answer listing `n` pages.
pub const fn held_len(n: usize) -> usize {
    4 + 8 * n
}

/// Encodes the answer listing `pages` (strictly increasing, at most
/// [`MAX_HELD`]) into `out`; returns its length.
pub fn encode_held(out: &mut [u8], pages: &[u64]) -> Result<usize, WireError> {
    if pages.len() > MAX_HELD {
        return Err(WireError::BadPayload);
    }
    let mut w = Writer::new(out);
    w.u32(pages.len() as u32)?;
    let mut prev = None;
    for &page in pages {
        if prev.is_some_and(|p| p >= page) {
            return Err(WireError::BadPayload);
        }
        prev = Some(page);
        w.u64(page)?;
    }
    Ok(w.written())
}

/// Decodes an answer: its indexes, validated (strictly increasing, as many
/// as announced, at most [`MAX_HELD`]).
pub fn decode_held(bytes: &[u8]) -> Result<HeldIter<'_>, WireError> {
    let mut r = Reader::new(bytes);
    let n = r.u32()? as usize;
    if n > MAX_HELD || bytes.len() != held_len(n) {
        return Err(WireError::BadPayload);
    }
    let body = r.bytes(8 * n)?;
    let mut prev = None;
    for chunk in body.chunks_exact(8) {
        let page = u64::from_le_bytes(chunk.try_into().map_err(|_| WireError::BadPayload)?);
        if prev.is_some_and(|p| p >= page) {
            return Err(WireError::BadPayload);
        }
        prev = Some(page);
    }
    Ok(HeldIter {
        chunks: body.chunks_exact(8),
    })
}

/// The indexes of a decoded answer.
#[derive(Clone, Debug)]
pub struct HeldIter<'a> {
    chunks: core::slice::ChunksExact<'a, u8>,
}

impl Iterator for HeldIter<'_> {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        let chunk = self.chunks.next()?;
        let mut b = [0u8; 8];
        b.copy_from_slice(chunk);
        Some(u64::from_le_bytes(b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    #[test]
    fn round_trip() {
        let pages = [0u64, 7, 0x0007_ffff_ffff, u64::MAX];
        let mut buf = [0u8; held_len(4)];
        assert_eq!(encode_held(&mut buf, &pages), Ok(buf.len()));
        assert_eq!(decode_held(&buf).unwrap().collect::<Vec<_>>(), pages);
        let mut req = [0u8; HeldRequest::LEN];
        HeldRequest {
            container: 0x0100_0002,
        }
        .encode(&mut req)
        .unwrap();
        assert_eq!(
            HeldRequest::decode(&req),
            Ok(HeldRequest {
                container: 0x0100_0002
            })
        );
        assert!(HeldRequest::decode(&[0; 4]).is_err());
    }

    #[test]
    fn bad_lists_are_errors() {
        let mut buf = [0u8; held_len(2)];
        assert!(encode_held(&mut buf, &[3, 3]).is_err());
        assert!(encode_held(&mut buf, &[4, 3]).is_err());
        assert!(encode_held(&mut buf[..10], &[1, 2]).is_err());
        encode_held(&mut buf, &[1, 2]).unwrap();
        assert!(decode_held(&buf[..buf.len() - 1]).is_err());
        let mut longer = buf.to_vec();
        longer.push(0);
        assert!(decode_held(&longer).is_err());
        buf[4..12].copy_from_slice(&9u64.to_le_bytes());
        assert!(decode_held(&buf).is_err());
        buf[..4].copy_from_slice(&(MAX_HELD as u32 + 1).to_le_bytes());
        assert!(decode_held(&buf).is_err());
        // Every truncation of a valid answer is refused, never a panic.
        let mut ok = [0u8; held_len(3)];
        encode_held(&mut ok, &[1, 5, 9]).unwrap();
        for n in 0..ok.len() {
            assert!(decode_held(&ok[..n]).is_err());
        }
    }
}
