// SPDX-License-Identifier: GPL-2.0
//! CRC32C (Castagnoli), the checksum of kmsg frames.
//!
//! Reflected polynomial `0x82F6_3B78`, initial value and final xor
//! `0xFFFF_FFFF`: the CRC of iSCSI, ext4 and btrfs, so it equals the
//! kernel's `~crc32c(~0, data, len)`. The implementation is slicing-by-8
//! over eight 256-entry tables that a `const fn` computes at compile time:
//! there is no run-time initialisation and no `unsafe`.
//!
//! The value is computed incrementally, so a frame's header and its payload
//! (which live in different buffers) are checksummed without copying:
//!
//! ```
//! use cohort_proto::crc::{crc32c, Crc32c};
//! let mut crc = Crc32c::new();
//! crc.update(b"1234");
//! crc.update(b"56789");
//! assert_eq!(crc.finish(), crc32c(b"123456789"));
//! ```

/// The CRC32C polynomial, bit-reversed (LSB-first) form.
pub const POLY: u32 = 0x82F6_3B78;

/// Number of slicing tables (bytes consumed per step of the fast loop).
const SLICES: usize = 8;

/// Computes the slicing-by-8 tables: `t[0]` is the classic byte-wise table,
/// `t[k][b]` is the CRC of byte `b` followed by `k` zero bytes.
const fn make_tables() -> [[u32; 256]; SLICES] {
    let mut t = [[0u32; 256]; SLICES];
    let mut b = 0;
    while b < 256 {
        let mut crc = b as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ POLY
            } else {
                crc >> 1
            };
            bit += 1;
        }
        t[0][b] = crc;
        b += 1;
    }
    let mut k = 1;
    while k < SLICES {
        let mut b = 0;
        while b < 256 {
            let prev = t[k - 1][b];
            t[k][b] = (prev >> 8) ^ t[0][(prev & 0xff) as usize];
            b += 1;
        }
        k += 1;
    }
    t
}

/// The lookup tables, built by the compiler (16 KiB of read-only data).
static TABLES: [[u32; 256]; SLICES] = make_tables();

/// Table entry `TABLES[k][byte]`; `k` is a constant below [`SLICES`] at
/// every call site and `byte` a `u8`, so the index is always in bounds.
#[inline(always)]
fn t(k: usize, byte: u32) -> u32 {
    TABLES[k][(byte & 0xff) as usize]
}

/// An incremental CRC32C computation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Crc32c {
    /// The running register (pre-inverted, as the algorithm keeps it).
    state: u32,
}

impl Default for Crc32c {
    fn default() -> Self {
        Crc32c::new()
    }
}

impl Crc32c {
    /// Starts a computation over no bytes.
    pub const fn new() -> Crc32c {
        Crc32c { state: !0 }
    }

    /// Feeds `data` into the computation.
    pub fn update(&mut self, data: &[u8]) {
        let mut crc = self.state;
        let mut chunks = data.chunks_exact(SLICES);
        for chunk in &mut chunks {
            if let &[b0, b1, b2, b3, b4, b5, b6, b7] = chunk {
                let lo = crc ^ u32::from_le_bytes([b0, b1, b2, b3]);
                let hi = u32::from_le_bytes([b4, b5, b6, b7]);
                crc = t(7, lo)
                    ^ t(6, lo >> 8)
                    ^ t(5, lo >> 16)
                    ^ t(4, lo >> 24)
                    ^ t(3, hi)
                    ^ t(2, hi >> 8)
                    ^ t(1, hi >> 16)
                    ^ t(0, hi >> 24);
            }
        }
        for &byte in chunks.remainder() {
            crc = (crc >> 8) ^ t(0, crc ^ u32::from(byte));
        }
        self.state = crc;
    }

    /// Returns the CRC of every byte fed so far (the computation may go on).
    pub const fn finish(&self) -> u32 {
        !self.state
    }
}

/// The CRC32C of `data` in one call.
pub fn crc32c(data: &[u8]) -> u32 {
    let mut crc = Crc32c::new();
    crc.update(data);
    crc.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bit-at-a-time reference implementation.
    fn reference(data: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ POLY
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    #[test]
    fn known_answers() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(b""), 0);
        // RFC 3720 (iSCSI) B.4 test vectors.
        assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
        assert_eq!(crc32c(&[0xffu8; 32]), 0x62A8_AB43);
        let inc: std::vec::Vec<u8> = (0u8..32).collect();
        assert_eq!(crc32c(&inc), 0x46DD_794E);
        let dec: std::vec::Vec<u8> = (0u8..32).rev().collect();
        assert_eq!(crc32c(&dec), 0x113F_DB5C);
    }

    #[test]
    fn matches_reference_and_is_incremental() {
        let data: std::vec::Vec<u8> = (0..1000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for len in [0, 1, 7, 8, 9, 15, 16, 17, 63, 64, 65, 999, 1000] {
            let slice = &data[..len];
            let want = reference(slice);
            assert_eq!(crc32c(slice), want, "len {len}");
            for split in [0, 1, 3, 8, len / 2, len] {
                let split = split.min(len);
                let mut crc = Crc32c::default();
                crc.update(&slice[..split]);
                crc.update(&slice[split..]);
                assert_eq!(crc.finish(), want, "len {len} split {split}");
            }
        }
    }
}
