// SPDX-License-Identifier: GPL-2.0

//! The cluster key's MAC and the frame tags on the host, from the
//! RustCrypto crates (`hmac` and `sha2`, `chacha20` and `poly1305`), for
//! host tools that speak to nodes (`cohort fuzz --key`) and for this
//! crate's tests. The kernel computes the same with its crypto API and
//! library (`kernel/cohort/auth.c`). Built with the `host` feature.

use alloc::vec::Vec;

use chacha20::cipher::{KeyIvInit as _, StreamCipher as _};
use hmac::{Hmac, Mac as _};
use poly1305::universal_hash::KeyInit as _;
use sha2::Sha256;

use super::{frame_tag, FrameMac, Mac, KEY_LEN, MAC_LEN, TAG_LEN};
use crate::wire::HEADER_LEN;

/// HMAC-SHA-256 under the cluster key, as the handshake wants it: for
/// proofs and session keys ([`super::Transcript`], [`super::SessionKeys`]).
#[derive(Clone)]
pub struct HostMac {
    mac: Hmac<Sha256>,
    key: [u8; KEY_LEN],
}

impl HostMac {
    /// The MAC under `key`.
    pub fn new(key: &[u8; KEY_LEN]) -> HostMac {
        // HMAC pads a key shorter than the hash's block (64 bytes) with
        // zeros (RFC 2104), so the padded key is the same key, and one the
        // block-sized constructor takes without a length to check.
        let mut block = [0u8; 64];
        block[..KEY_LEN].copy_from_slice(key);
        HostMac {
            mac: <Hmac<Sha256> as hmac::digest::KeyInit>::new(&block.into()),
            key: *key,
        }
    }

    /// Frame tags under this key itself (never a session key: a fuzzer's
    /// wrong tag).
    pub fn tags(&self) -> HostTags {
        HostTags::new(&self.key)
    }
}

impl Mac for HostMac {
    type Error = core::convert::Infallible;

    fn mac(&self, parts: &[&[u8]]) -> Result<[u8; MAC_LEN], Self::Error> {
        let mut m = self.mac.clone();
        for p in parts {
            m.update(p);
        }
        Ok(m.finalize().into_bytes().into())
    }
}

/// The frame tags under one session key, as [`FrameMac`] defines them:
/// Poly1305 under the first 32 bytes of ChaCha20 block 0 with nonce
/// `0 || seq` (RFC 8439 section 2.6).
#[derive(Clone)]
pub struct HostTags {
    key: [u8; KEY_LEN],
    /// The one-time key of the tag begun.
    one_time: Option<[u8; 32]>,
    /// The bytes of the tag begun.
    data: Vec<u8>,
}

impl HostTags {
    /// The tags under `key`.
    pub fn new(key: &[u8; KEY_LEN]) -> HostTags {
        HostTags {
            key: *key,
            one_time: None,
            data: Vec::new(),
        }
    }

    /// The Poly1305 key of frame number `seq` (RFC 8439 section 2.6).
    pub fn one_time_key(&self, seq: u64) -> [u8; 32] {
        let mut nonce = [0u8; 12];
        nonce[4..].copy_from_slice(&seq.to_le_bytes());
        let mut block = [0u8; 32];
        chacha20::ChaCha20::new(&self.key.into(), &nonce.into()).apply_keystream(&mut block);
        block
    }

    /// The tag of frame number `seq`.
    pub fn tag(&self, seq: u64, header: &[u8; HEADER_LEN], payload: &[u8]) -> [u8; TAG_LEN] {
        frame_tag(&mut self.clone(), seq, header, payload)
    }
}

impl FrameMac for HostTags {
    fn begin(&mut self, seq: u64) {
        self.one_time = Some(self.one_time_key(seq));
        self.data.clear();
    }

    fn update(&mut self, data: &[u8]) {
        self.data.extend_from_slice(data);
    }

    fn finish(&mut self) -> [u8; TAG_LEN] {
        // Unbegun, the tag is under an all-zero key: never a good one.
        let key = self.one_time.take().unwrap_or_default();
        poly1305::Poly1305::new(&key.into())
            .compute_unpadded(&self.data)
            .into()
    }
}
