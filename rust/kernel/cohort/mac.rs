// SPDX-License-Identifier: GPL-2.0

//! Message authentication for the transport: the cluster key, keyed
//! `hmac(sha256)` from the kernel crypto API (the handshake), frame tags
//! from the kernel's crypto library (ChaCha20 and Poly1305), nonces and
//! wiping.
//!
//! Thin safe wrappers over the hub's helpers (`kernel/cohort/auth.c`); the
//! protocol that uses them (handshake, frame tags) is `cohort_proto::auth`.
//!
//! C header: [`include/linux/cohort.h`](srctree/include/linux/cohort.h)

use crate::bindings;
use crate::error::{to_result, Error, Result};
use crate::prelude::*;
use core::ptr::NonNull;

/// Bytes of an `hmac(sha256)` output.
pub const MAC_LEN: usize = bindings::COHORT_MAC_LEN as usize;
/// Bytes of a [`Tagger`]'s key.
pub const TAG_KEY_LEN: usize = bindings::COHORT_TAG_KEY_LEN as usize;
/// Bytes of a frame tag (a Poly1305 output).
pub const TAG_LEN: usize = bindings::COHORT_TAG_LEN as usize;

/// Whether the transport is to authenticate its peers (`cohort.auth=`, on
/// unless the command line or `/sys/module/cohort/parameters/auth` says 0).
pub fn auth_enabled() -> bool {
    // SAFETY: No preconditions.
    unsafe { bindings::cohort_auth_enabled() }
}

/// Reads the key file `cohort.key_file=` names into `buf`, and its name
/// (NUL-terminated, for logs) into `path`.
///
/// Returns the bytes read. The caller parses them; `buf` is a [`Secret`],
/// which wipes them.
///
/// # Errors
///
/// `ENOENT` when there is no such file (or no name), `ENAMETOOLONG` when
/// the name does not fit in `path` (which then holds its start; nothing is
/// opened), `EFBIG` when it is larger than `buf`, `EINVAL` when it is empty
/// or not a regular file, another error of opening or reading it.
pub fn read_key_file<const N: usize>(buf: &mut Secret<N>, path: &mut [u8]) -> Result<usize> {
    // SAFETY: `buf` and `path` are valid for writes of their lengths.
    let ret = unsafe {
        bindings::cohort_read_key_file(buf.0.as_mut_ptr(), N, path.as_mut_ptr().cast(), path.len())
    };
    if ret < 0 {
        return Err(Error::from_errno(ret as i32));
    }
    Ok(ret as usize)
}

/// Fills `buf` from the kernel's random number generator.
pub fn random_bytes(buf: &mut [u8]) {
    // SAFETY: `buf` is valid for writes of its length.
    unsafe { bindings::cohort_random_bytes(buf.as_mut_ptr().cast(), buf.len()) }
}

/// Zeroes `buf` in a way the compiler cannot drop (`memzero_explicit`).
pub fn wipe(buf: &mut [u8]) {
    // SAFETY: `buf` is valid for writes of its length.
    unsafe { bindings::cohort_wipe(buf.as_mut_ptr().cast(), buf.len()) }
}

/// `N` secret bytes (a key, a key file's contents), wiped when dropped.
pub struct Secret<const N: usize>(pub [u8; N]);

impl<const N: usize> Secret<N> {
    /// `N` zero bytes.
    pub const fn zeroed() -> Self {
        Self([0; N])
    }
}

impl<const N: usize> Drop for Secret<N> {
    fn drop(&mut self) {
        wipe(&mut self.0);
    }
}

/// A `struct cohort_mac`: an `hmac(sha256)` transform keyed once.
///
/// # Invariants
///
/// `ptr` points to a live `struct cohort_mac` that this value owns.
struct Raw {
    ptr: NonNull<bindings::cohort_mac>,
}

impl Raw {
    fn new(key: &[u8]) -> Result<Self> {
        let len = u32::try_from(key.len()).map_err(|_| EINVAL)?;
        // SAFETY: `key` is valid for reads of `len` bytes; the function
        // copies it into the transform.
        let ptr = unsafe { bindings::cohort_mac_new(key.as_ptr(), len) };
        // SAFETY: `cohort_mac_new` returns a valid pointer or an ERR_PTR.
        let ptr = crate::error::from_err_ptr(ptr)?;
        // INVARIANT: `cohort_mac_new` succeeded: `ptr` is a new MAC we own.
        Ok(Self {
            ptr: NonNull::new(ptr).ok_or(ENOMEM)?,
        })
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        // SAFETY: By the type invariant `ptr` is live and ours; freeing it
        // also wipes its key.
        unsafe { bindings::cohort_mac_free(self.ptr.as_ptr()) }
    }
}

/// A keyed `hmac(sha256)` for one-shot MACs, usable from any context and
/// by many callers at once.
pub struct Hmac(Raw);

// SAFETY: The transform is keyed once at creation and only read after;
// `cohort_mac_digest` keeps its state on the caller's stack, so the MAC
// may move between threads and be used from several at once.
unsafe impl Send for Hmac {}
// SAFETY: As above.
unsafe impl Sync for Hmac {}

impl Hmac {
    /// A MAC keyed with `key`; process context.
    ///
    /// # Errors
    ///
    /// `ENOENT` when the kernel has no `hmac(sha256)`, `ENOMEM`, `EINVAL`.
    pub fn new(key: &[u8]) -> Result<Self> {
        Raw::new(key).map(Self)
    }

    /// The MAC of the concatenation of `parts` (at most 4).
    pub fn digest(&self, parts: &[&[u8]]) -> Result<[u8; MAC_LEN]> {
        let mut vecs = [bindings::kvec {
            iov_base: core::ptr::null_mut(),
            iov_len: 0,
        }; 4];
        if parts.len() > vecs.len() {
            return Err(EINVAL);
        }
        for (vec, part) in vecs.iter_mut().zip(parts.iter()) {
            *vec = bindings::kvec {
                iov_base: part.as_ptr() as *mut core::ffi::c_void,
                iov_len: part.len(),
            };
        }
        let mut out = [0u8; MAC_LEN];
        // SAFETY: By the invariant of `Raw` the MAC is live; `vecs[..len]`
        // describe live slices; `out` holds `COHORT_MAC_LEN` bytes.
        to_result(unsafe {
            bindings::cohort_mac_digest(
                self.0.ptr.as_ptr(),
                vecs.as_ptr(),
                parts.len() as u32,
                out.as_mut_ptr(),
            )
        })?;
        Ok(out)
    }
}

/// The frame tags of one direction of a connection: Poly1305 under a
/// one-time key per frame, the first 32 bytes of ChaCha20 block 0 under
/// the direction's session key with the frame's sequence number as nonce
/// (RFC 8439, section 2.6). One tag at a time: begun, updated, finished.
///
/// # Invariants
///
/// `ptr` points to a live `struct cohort_tagger` that this value owns.
pub struct Tagger {
    ptr: NonNull<bindings::cohort_tagger>,
}

// SAFETY: The tagger's state belongs to whoever holds the `Tagger`; the
// methods that change it take `&mut self`, and the C helpers work in any
// context.
unsafe impl Send for Tagger {}

impl Tagger {
    /// The tags of one direction under `key`; process context.
    ///
    /// # Errors
    ///
    /// `ENOMEM`.
    pub fn new(key: &[u8; TAG_KEY_LEN]) -> Result<Self> {
        // SAFETY: `key` is valid for reads of `TAG_KEY_LEN` bytes, the
        // length the function requires; it copies the key.
        let ptr = unsafe { bindings::cohort_tagger_new(key.as_ptr(), TAG_KEY_LEN as u32) };
        // SAFETY: `cohort_tagger_new` returns a valid pointer or an ERR_PTR.
        let ptr = crate::error::from_err_ptr(ptr)?;
        // INVARIANT: `cohort_tagger_new` succeeded: `ptr` is a new tagger
        // we own.
        Ok(Self {
            ptr: NonNull::new(ptr).ok_or(ENOMEM)?,
        })
    }

    /// Starts the tag of frame number `seq`, forgetting any unfinished
    /// one. A number must never be tagged twice with one key: the caller
    /// numbers frames with a `Sequence`.
    pub fn begin(&mut self, seq: u64) {
        // SAFETY: By the type invariant the tagger is live; `&mut self`
        // makes this the only user of its state.
        unsafe { bindings::cohort_tagger_begin(self.ptr.as_ptr(), seq) }
    }

    /// Adds `data` to the tag begun.
    pub fn update(&mut self, data: &[u8]) {
        // SAFETY: As in `begin`; `data` is valid for reads of its length.
        unsafe {
            bindings::cohort_tagger_update(self.ptr.as_ptr(), data.as_ptr().cast(), data.len())
        }
    }

    /// Ends the tag begun and returns it.
    pub fn finish(&mut self) -> [u8; TAG_LEN] {
        let mut tag = [0u8; TAG_LEN];
        // SAFETY: As in `begin`; `tag` holds `COHORT_TAG_LEN` bytes.
        unsafe { bindings::cohort_tagger_finish(self.ptr.as_ptr(), tag.as_mut_ptr()) };
        tag
    }
}

impl Drop for Tagger {
    fn drop(&mut self) {
        // SAFETY: By the type invariant `ptr` is live and ours; freeing it
        // also wipes its key.
        unsafe { bindings::cohort_tagger_free(self.ptr.as_ptr()) }
    }
}
