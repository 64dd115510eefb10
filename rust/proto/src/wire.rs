// SPDX-License-Identifier: GPL-2.0
//! The kmsg wire format: frame headers, fragmentation and reassembly.
//!
//! kmsg carries messages of up to [`MAX_MESSAGE`] bytes over byte streams
//! (in-kernel TCP connections between nodes). A message is cut into frames
//! of at most [`MAX_FRAME_PAYLOAD`] bytes; every frame is a fixed
//! [`HEADER_LEN`]-byte little-endian header followed by its payload:
//!
//! | offset | size | field        | rule                                          |
//! |-------:|-----:|--------------|-----------------------------------------------|
//! | 0      | 4    | `magic`      | [`MAGIC`] (bytes `C` `H` `R` `T`)             |
//! | 4      | 1    | `version`    | [`VERSION`]                                   |
//! | 5      | 1    | `flags`      | [`Flags`]: bit 0 reply, bit 1 error           |
//! | 6      | 2    | `msg_type`   | not 0; `1..=0xff` are kmsg's own ([`MSG_HELLO`]...) |
//! | 8      | 2    | `src`        | node id `< MAX_NODES`                         |
//! | 10     | 2    | `dst`        | node id `< MAX_NODES`                         |
//! | 12     | 4    | `frame_len`  | `<= MAX_FRAME_PAYLOAD`                        |
//! | 16     | 8    | `request_id` | 0: neither request nor reply                  |
//! | 24     | 4    | `total_len`  | `<= MAX_MESSAGE`                              |
//! | 28     | 4    | `offset`     | `offset + frame_len <= total_len`             |
//! | 32     | 4    | `checksum`   | CRC32C of bytes `0..32` then the payload      |
//! | 36     | 4    | `reserved`   | 0                                             |
//!
//! `frame_len` is 0 only in the single frame of an empty message.
//!
//! Receiving, on one connection:
//!
//! 1. read exactly [`HEADER_LEN`] bytes and [`Header::decode`] them. An error
//!    there is [stream-fatal](WireError::is_stream_fatal): the frame's length
//!    cannot be trusted, so neither can any later byte; reset the connection.
//! 2. [`Reassembler::accept`] the header: it returns a [`Placement`] (start a
//!    new message of [`Placement::total_len`] bytes, and/or where this frame's
//!    payload goes in it) or a non-fatal error (the frame is out of sequence:
//!    skip its `frame_len` payload bytes and count a drop).
//! 3. read the payload into [`Placement::slot`] of the message buffer, then
//!    [`Reassembler::complete`]: it checks the CRC and returns whether the
//!    message is whole. A bad checksum drops the message, not the stream.
//!
//! Sending: a [`Fragmenter`] yields each frame's encoded header and a slice
//! of the message as its payload, so nothing is copied.
//!
//! Every length the kernel uses (buffer size, payload range) comes out of a
//! validated [`Header`] or [`Placement`]; every access here is bounds-checked
//! and no input can make this code panic or overflow.
//!
//! kmsg's own payloads ([`Hello`], [`Heartbeat`], [`Ping`], [`Pong`],
//! [`StreamSync`], [`ErrorReply`], and [`BenchPing`] of the hub-level
//! [`MSG_BENCH_PING`]) are fixed-size little-endian records
//! encoded through the bounds-checked [`Writer`] and [`Reader`]; see
//! `Documentation/kmsg-wire.rst`.

use core::ops::Range;

use super::auth::AuthMode;
use super::crc::Crc32c;
use super::node::{NodeId, MAX_NODES};

/// `magic`: the bytes `C` `H` `R` `T` read as a little-endian `u32`.
pub const MAGIC: u32 = 0x5452_4843;
/// The only wire format version this code speaks.
pub const VERSION: u8 = 2;
/// Size of a frame header in bytes.
pub const HEADER_LEN: usize = 40;
/// Bytes of the header covered by the checksum (everything before it).
pub const CHECKSUMMED_HEADER_LEN: usize = 32;
/// Largest payload of one frame (64 KiB).
pub const MAX_FRAME_PAYLOAD: usize = 64 * 1024;
/// Largest message (4 MiB + 64 KiB: a 4 MiB block with room for its metadata).
pub const MAX_MESSAGE: usize = 4 * 1024 * 1024 + 64 * 1024;
/// Largest errno an [`ErrorReply`] may carry (the kernel's `MAX_ERRNO`).
pub const MAX_ERRNO: i32 = 4095;

/// Message type 0 is never valid.
pub const MSG_INVALID: u16 = 0;
/// Largest message type reserved for kmsg itself; upper layers use the rest.
pub const MSG_KMSG_MAX: u16 = 0x00ff;
/// [`Hello`]: the dialer's first message on a new connection; the listener
/// answers with [`MSG_AUTH_CHALLENGE`].
pub const MSG_HELLO: u16 = 1;
/// [`Heartbeat`]: periodic liveness message, no reply.
pub const MSG_HEARTBEAT: u16 = 2;
/// [`Ping`]: a request answered by a [`Pong`] reply carrying its nonce.
pub const MSG_PING: u16 = 3;
/// [`Pong`]: the reply to a [`Ping`].
pub const MSG_PONG: u16 = 4;
/// Echo: a request whose payload is raw bytes, answered (same type, reply
/// flag) with the same bytes.
pub const MSG_ECHO: u16 = 5;
/// Stream data: raw bytes, no reply (throughput tests).
pub const MSG_STREAM_DATA: u16 = 6;
/// [`StreamSync`]: a request carrying the bytes sent so far; the reply (same
/// type) carries the bytes received.
pub const MSG_STREAM_SYNC: u16 = 7;
/// The listener's answer to a [`Hello`]: its nonce and proof of the
/// cluster key ([`super::auth::Challenge`]).
pub const MSG_AUTH_CHALLENGE: u16 = 8;
/// The dialer's proof of the cluster key ([`super::auth::Proof`]).
pub const MSG_AUTH_PROOF: u16 = 9;
/// Bytes of a handshake nonce ([`Hello::nonce`], [`super::auth::Challenge`]).
pub const NONCE_LEN: usize = 32;

/// [`BenchPing`]: a request through the hub's message API (the path
/// popcorn's requests take, not kmsg's link threads) to kmsg's handler on
/// the peer, answered (same type, reply flag) with the same [`BenchPing`].
/// A type of the upper layers' range, as the hub hands those to handlers;
/// `0x100` is the hub's echo service (`COHORT_MSG_ECHO`).
pub const MSG_BENCH_PING: u16 = 0x101;

/// Returns whether `msg_type` is one of kmsg's own (`1..=MSG_KMSG_MAX`).
pub const fn is_kmsg_type(msg_type: u16) -> bool {
    msg_type != MSG_INVALID && msg_type <= MSG_KMSG_MAX
}

/// Why a frame, a message or a payload was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WireError {
    /// Fewer than [`HEADER_LEN`] bytes were given to [`Header::decode`].
    Truncated,
    /// The header does not start with [`MAGIC`].
    BadMagic,
    /// The header's version is not [`VERSION`].
    BadVersion,
    /// Unknown flag bits, error without reply, or a reply without a
    /// request id.
    BadFlags,
    /// Message type 0.
    BadType,
    /// A source or destination node id is not below [`MAX_NODES`].
    BadNode,
    /// A length or offset breaks the framing rules (too large, frame past
    /// the end of the message, empty frame of a non-empty message, error
    /// reply whose payload is not 4 bytes).
    BadLength,
    /// The reserved header word is not 0.
    BadReserved,
    /// The CRC32C over the header and payload does not match.
    BadChecksum,
    /// The frame does not continue the message in progress where the
    /// previous frame ended (reordered, duplicated or lost frame).
    OutOfSequence,
    /// The frame continues the message in progress but its type, flags,
    /// nodes, request id or total length differ from the first frame's.
    Mismatch,
    /// A caller-side inconsistency: a payload or buffer whose length is not
    /// the one the header or placement dictates, or [`Reassembler::complete`]
    /// for a frame that was not just accepted.
    Misuse,
    /// A typed payload has the wrong length or an invalid field.
    BadPayload,
    /// An output buffer is too small for what is being encoded.
    ShortBuffer,
}

impl WireError {
    /// Returns whether the byte stream can no longer be trusted: the header
    /// itself was invalid, so the frame's extent is unknown and the
    /// connection must be reset. Otherwise only the frame (and the message
    /// it belongs to) is dropped and the stream stays aligned.
    pub const fn is_stream_fatal(self) -> bool {
        match self {
            WireError::Truncated
            | WireError::BadMagic
            | WireError::BadVersion
            | WireError::BadFlags
            | WireError::BadType
            | WireError::BadNode
            | WireError::BadLength
            | WireError::BadReserved
            | WireError::Misuse => true,
            WireError::BadChecksum
            | WireError::OutOfSequence
            | WireError::Mismatch
            | WireError::BadPayload
            | WireError::ShortBuffer => false,
        }
    }

    /// A short name for logs and counters.
    pub const fn as_str(self) -> &'static str {
        match self {
            WireError::Truncated => "truncated",
            WireError::BadMagic => "bad magic",
            WireError::BadVersion => "bad version",
            WireError::BadFlags => "bad flags",
            WireError::BadType => "bad type",
            WireError::BadNode => "bad node",
            WireError::BadLength => "bad length",
            WireError::BadReserved => "bad reserved",
            WireError::BadChecksum => "bad checksum",
            WireError::OutOfSequence => "out of sequence",
            WireError::Mismatch => "mismatch",
            WireError::Misuse => "misuse",
            WireError::BadPayload => "bad payload",
            WireError::ShortBuffer => "short buffer",
        }
    }
}

/// The `flags` byte of a header. Only valid combinations can be built:
/// none, [`Flags::REPLY`], or [`Flags::ERROR_REPLY`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Flags(u8);

impl Flags {
    /// Bit 0: the message answers the request `request_id`.
    pub const REPLY_BIT: u8 = 1 << 0;
    /// Bit 1: the reply reports a failure; its payload is an [`ErrorReply`].
    pub const ERROR_BIT: u8 = 1 << 1;
    /// A request or one-way message.
    pub const NONE: Flags = Flags(0);
    /// A successful reply.
    pub const REPLY: Flags = Flags(Self::REPLY_BIT);
    /// A failed reply carrying an errno.
    pub const ERROR_REPLY: Flags = Flags(Self::REPLY_BIT | Self::ERROR_BIT);

    /// Validates a flags byte: no unknown bit, and error only with reply.
    pub const fn from_bits(bits: u8) -> Option<Flags> {
        match bits {
            0 | Self::REPLY_BIT => Some(Flags(bits)),
            b if b == Self::REPLY_BIT | Self::ERROR_BIT => Some(Flags(bits)),
            _ => None,
        }
    }

    /// The flags byte as sent.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Returns whether the reply bit is set.
    pub const fn is_reply(self) -> bool {
        self.0 & Self::REPLY_BIT != 0
    }

    /// Returns whether the error bit is set (implies [`Flags::is_reply`]).
    pub const fn is_error(self) -> bool {
        self.0 & Self::ERROR_BIT != 0
    }
}

/// What every frame of one message shares besides its lengths: type, flags,
/// nodes and request id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Envelope {
    /// Message type, not [`MSG_INVALID`].
    pub msg_type: u16,
    /// Reply and error flags.
    pub flags: Flags,
    /// Sending node.
    pub src: NodeId,
    /// Receiving node.
    pub dst: NodeId,
    /// Request id (0: neither a request awaiting a reply nor a reply).
    pub request_id: u64,
}

impl Envelope {
    /// A request or one-way message (`request_id` 0 when no reply is wanted).
    pub const fn new(msg_type: u16, src: NodeId, dst: NodeId, request_id: u64) -> Envelope {
        Envelope {
            msg_type,
            flags: Flags::NONE,
            src,
            dst,
            request_id,
        }
    }

    /// The envelope of a reply to `self` (nodes swapped, same type and
    /// request id); `error` selects [`Flags::ERROR_REPLY`].
    pub const fn reply(&self, error: bool) -> Envelope {
        Envelope {
            msg_type: self.msg_type,
            flags: if error {
                Flags::ERROR_REPLY
            } else {
                Flags::REPLY
            },
            src: self.dst,
            dst: self.src,
            request_id: self.request_id,
        }
    }

    /// Checks the envelope of a message of `total_len` bytes against the
    /// framing rules (the checks [`Header::decode`] makes).
    pub fn validate(&self, total_len: usize) -> Result<(), WireError> {
        if self.msg_type == MSG_INVALID {
            return Err(WireError::BadType);
        }
        if Flags::from_bits(self.flags.0).is_none()
            || (self.flags.is_reply() && self.request_id == 0)
        {
            return Err(WireError::BadFlags);
        }
        if !self.src.is_valid() || !self.dst.is_valid() {
            return Err(WireError::BadNode);
        }
        if total_len > MAX_MESSAGE || (self.flags.is_error() && total_len != ErrorReply::LEN) {
            return Err(WireError::BadLength);
        }
        Ok(())
    }
}

/// A validated frame header. It can only be built by [`Header::decode`] or
/// by a [`Fragmenter`], so its lengths always obey the framing rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Header {
    envelope: Envelope,
    frame_len: u32,
    total_len: u32,
    offset: u32,
    checksum: u32,
}

/// Reads a little-endian `u16` at `at`; `None` past the end.
fn le_u16(bytes: &[u8], at: usize) -> Option<u16> {
    let end = at.checked_add(2)?;
    Some(u16::from_le_bytes(bytes.get(at..end)?.try_into().ok()?))
}

/// Reads a little-endian `u32` at `at`; `None` past the end.
fn le_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let end = at.checked_add(4)?;
    Some(u32::from_le_bytes(bytes.get(at..end)?.try_into().ok()?))
}

/// Reads a little-endian `u64` at `at`; `None` past the end.
fn le_u64(bytes: &[u8], at: usize) -> Option<u64> {
    let end = at.checked_add(8)?;
    Some(u64::from_le_bytes(bytes.get(at..end)?.try_into().ok()?))
}

/// Converts a wire node id, refusing ids not below [`MAX_NODES`].
fn node_from_wire(raw: u16) -> Result<NodeId, WireError> {
    match u8::try_from(raw) {
        Ok(id) if usize::from(id) < MAX_NODES => Ok(NodeId(id)),
        _ => Err(WireError::BadNode),
    }
}

/// Converts a length already bounded by [`MAX_MESSAGE`] to the `u32` of the
/// wire.
fn len_to_wire(len: usize) -> Result<u32, WireError> {
    u32::try_from(len).map_err(|_| WireError::BadLength)
}

/// Widens a wire length. Lengths are at most [`MAX_MESSAGE`], which fits a
/// `usize` on every target the kernel supports.
fn len_from_wire(len: u32) -> usize {
    usize::try_from(len).unwrap_or(usize::MAX)
}

impl Header {
    /// Builds the header of the frame `offset..offset + frame_len` of a
    /// message of `total_len` bytes, with a zero checksum; checks every
    /// framing rule.
    fn new(
        envelope: Envelope,
        total_len: usize,
        offset: usize,
        frame_len: usize,
    ) -> Result<Header, WireError> {
        envelope.validate(total_len)?;
        let header = Header {
            envelope,
            frame_len: len_to_wire(frame_len)?,
            total_len: len_to_wire(total_len)?,
            offset: len_to_wire(offset)?,
            checksum: 0,
        };
        header.check_lengths()?;
        Ok(header)
    }

    /// The length rules: sizes in range, the frame inside the message, and
    /// an empty frame only for an empty message.
    fn check_lengths(&self) -> Result<(), WireError> {
        let frame = len_from_wire(self.frame_len);
        let total = len_from_wire(self.total_len);
        let end = len_from_wire(self.offset).checked_add(frame);
        let ok = frame <= MAX_FRAME_PAYLOAD
            && total <= MAX_MESSAGE
            && matches!(end, Some(end) if end <= total)
            && (frame == 0) == (total == 0)
            && (!self.envelope.flags.is_error() || total == ErrorReply::LEN);
        if ok {
            Ok(())
        } else {
            Err(WireError::BadLength)
        }
    }

    /// Decodes and validates the first [`HEADER_LEN`] bytes of `bytes`
    /// (extra bytes are ignored). The checksum is only read here; check it
    /// with [`verify`] once the payload is in.
    pub fn decode(bytes: &[u8]) -> Result<Header, WireError> {
        let bytes = bytes.get(..HEADER_LEN).ok_or(WireError::Truncated)?;
        // Every read below is in bounds of the 40 bytes just taken; the
        // `Truncated` fallbacks are unreachable but keep the code total.
        let u16_at = |at| le_u16(bytes, at).ok_or(WireError::Truncated);
        let u32_at = |at| le_u32(bytes, at).ok_or(WireError::Truncated);
        if u32_at(0)? != MAGIC {
            return Err(WireError::BadMagic);
        }
        let version = bytes.get(4).copied().ok_or(WireError::Truncated)?;
        if version != VERSION {
            return Err(WireError::BadVersion);
        }
        let raw_flags = bytes.get(5).copied().ok_or(WireError::Truncated)?;
        let flags = Flags::from_bits(raw_flags).ok_or(WireError::BadFlags)?;
        let msg_type = u16_at(6)?;
        if msg_type == MSG_INVALID {
            return Err(WireError::BadType);
        }
        let src = node_from_wire(u16_at(8)?)?;
        let dst = node_from_wire(u16_at(10)?)?;
        let frame_len = u32_at(12)?;
        let request_id = le_u64(bytes, 16).ok_or(WireError::Truncated)?;
        if flags.is_reply() && request_id == 0 {
            return Err(WireError::BadFlags);
        }
        let header = Header {
            envelope: Envelope {
                msg_type,
                flags,
                src,
                dst,
                request_id,
            },
            frame_len,
            total_len: u32_at(24)?,
            offset: u32_at(28)?,
            checksum: u32_at(32)?,
        };
        header.check_lengths()?;
        if u32_at(36)? != 0 {
            return Err(WireError::BadReserved);
        }
        Ok(header)
    }

    /// Encodes the header, checksum field included, into `out`. Decoding
    /// the result gives back `self`, and decoding is canonical: a header
    /// that decodes re-encodes to the very bytes it came from.
    pub fn encode(&self, out: &mut [u8; HEADER_LEN]) {
        let e = &self.envelope;
        let fields: [(usize, &[u8]); 12] = [
            (0, &MAGIC.to_le_bytes()),
            (4, &[VERSION]),
            (5, &[e.flags.bits()]),
            (6, &e.msg_type.to_le_bytes()),
            (8, &u16::from(e.src.0).to_le_bytes()),
            (10, &u16::from(e.dst.0).to_le_bytes()),
            (12, &self.frame_len.to_le_bytes()),
            (16, &e.request_id.to_le_bytes()),
            (24, &self.total_len.to_le_bytes()),
            (28, &self.offset.to_le_bytes()),
            (32, &self.checksum.to_le_bytes()),
            (36, &0u32.to_le_bytes()),
        ];
        for (at, value) in fields {
            let end = at.saturating_add(value.len());
            if let Some(dst) = out.get_mut(at..end) {
                dst.copy_from_slice(value);
            }
        }
    }

    /// Computes the checksum this header and `payload` should carry: the
    /// CRC32C of the encoded header's bytes `0..32` followed by `payload`.
    pub fn compute_checksum(&self, payload: &[u8]) -> u32 {
        let mut bytes = [0u8; HEADER_LEN];
        self.encode(&mut bytes);
        let mut crc = Crc32c::new();
        crc.update(bytes.get(..CHECKSUMMED_HEADER_LEN).unwrap_or(&[]));
        crc.update(payload);
        crc.finish()
    }

    /// The type, flags, nodes and request id.
    pub const fn envelope(&self) -> &Envelope {
        &self.envelope
    }

    /// Message type.
    pub const fn msg_type(&self) -> u16 {
        self.envelope.msg_type
    }

    /// Reply and error flags.
    pub const fn flags(&self) -> Flags {
        self.envelope.flags
    }

    /// Sending node (below [`MAX_NODES`]).
    pub const fn src(&self) -> NodeId {
        self.envelope.src
    }

    /// Receiving node (below [`MAX_NODES`]).
    pub const fn dst(&self) -> NodeId {
        self.envelope.dst
    }

    /// Request id (0: neither request nor reply).
    pub const fn request_id(&self) -> u64 {
        self.envelope.request_id
    }

    /// Payload bytes in this frame, at most [`MAX_FRAME_PAYLOAD`]: exactly
    /// how many bytes to read from the stream after the header.
    pub fn frame_len(&self) -> usize {
        len_from_wire(self.frame_len)
    }

    /// Length of the whole message, at most [`MAX_MESSAGE`].
    pub fn total_len(&self) -> usize {
        len_from_wire(self.total_len)
    }

    /// Offset of this frame's payload in the message.
    pub fn offset(&self) -> usize {
        len_from_wire(self.offset)
    }

    /// The checksum field as received (or as computed by the fragmenter).
    pub const fn checksum(&self) -> u32 {
        self.checksum
    }

    /// Returns whether this is the last frame of its message.
    pub fn is_last(&self) -> bool {
        self.offset().checked_add(self.frame_len()) == Some(self.total_len())
    }

    /// Checks that the frame travels from `src` to `dst` (the connection's
    /// peer and this node); a misrouted frame is a [`WireError::Mismatch`].
    pub fn check_route(&self, src: NodeId, dst: NodeId) -> Result<(), WireError> {
        if self.src() == src && self.dst() == dst {
            Ok(())
        } else {
            Err(WireError::Mismatch)
        }
    }
}

/// Checks `payload` against `header`: its length must be the header's
/// `frame_len` ([`WireError::Misuse`] otherwise) and the CRC32C of the header
/// and payload must equal the header's checksum ([`WireError::BadChecksum`]).
pub fn verify(header: &Header, payload: &[u8]) -> Result<(), WireError> {
    if payload.len() != header.frame_len() {
        return Err(WireError::Misuse);
    }
    if header.compute_checksum(payload) != header.checksum {
        return Err(WireError::BadChecksum);
    }
    Ok(())
}

/// Cuts a message into frames for sending.
///
/// Each [`Fragmenter::next_frame`] writes one frame's header, checksum
/// included, and returns the slice of the message that is its payload.
#[derive(Clone, Debug)]
pub struct Fragmenter<'a> {
    envelope: Envelope,
    message: &'a [u8],
    frame_size: usize,
    /// Offset of the next frame; `None` once every frame was produced.
    next: Option<usize>,
}

impl<'a> Fragmenter<'a> {
    /// Frames `message` with payloads of [`MAX_FRAME_PAYLOAD`] bytes (the
    /// last one shorter). Fails if the envelope or the length break the
    /// framing rules (see [`Envelope::validate`]).
    pub fn new(envelope: Envelope, message: &'a [u8]) -> Result<Fragmenter<'a>, WireError> {
        Fragmenter::with_frame_size(envelope, message, MAX_FRAME_PAYLOAD)
    }

    /// Like [`Fragmenter::new`] with payloads of at most `frame_size`
    /// bytes, `1..=MAX_FRAME_PAYLOAD`.
    pub fn with_frame_size(
        envelope: Envelope,
        message: &'a [u8],
        frame_size: usize,
    ) -> Result<Fragmenter<'a>, WireError> {
        envelope.validate(message.len())?;
        if frame_size == 0 || frame_size > MAX_FRAME_PAYLOAD {
            return Err(WireError::BadLength);
        }
        Ok(Fragmenter {
            envelope,
            message,
            frame_size,
            next: Some(0),
        })
    }

    /// Number of frames the message takes in all (1 for an empty message).
    pub fn frame_count(&self) -> usize {
        frame_count(self.message.len(), self.frame_size)
    }

    /// Writes the next frame's header into `hdr_out` and returns its
    /// payload, borrowed from the message; `None` when all were produced.
    pub fn next_frame(&mut self, hdr_out: &mut [u8; HEADER_LEN]) -> Option<&'a [u8]> {
        let offset = self.next?;
        let total = self.message.len();
        let len = total.saturating_sub(offset).min(self.frame_size);
        let end = offset.checked_add(len)?;
        let payload = self.message.get(offset..end)?;
        let mut header = match Header::new(self.envelope, total, offset, len) {
            Ok(header) => header,
            Err(_) => {
                // Unreachable: `new` validated the envelope and length.
                self.next = None;
                return None;
            }
        };
        header.checksum = header.compute_checksum(payload);
        header.encode(hdr_out);
        self.next = if end < total { Some(end) } else { None };
        Some(payload)
    }
}

/// Number of frames a message of `len` bytes takes with payloads of at most
/// `frame_size` bytes (at least 1: an empty message is one empty frame).
pub fn frame_count(len: usize, frame_size: usize) -> usize {
    if len == 0 {
        return 1;
    }
    let frame_size = frame_size.max(1);
    // `div_ceil`, without the overflow check it carries in the kernel.
    let whole = len / frame_size;
    if whole.saturating_mul(frame_size) == len {
        whole
    } else {
        whole.saturating_add(1)
    }
}

/// Where the payload of an accepted frame goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    start: bool,
    abandoned: bool,
    total_len: usize,
    range: Range<usize>,
}

impl Placement {
    /// Returns whether this frame starts a new message: the caller must
    /// first provide a fresh buffer of [`Placement::total_len`] bytes.
    pub const fn is_start(&self) -> bool {
        self.start
    }

    /// Returns whether starting this message abandoned an incomplete one
    /// (whose last frames never came): count it as a dropped message.
    pub const fn abandoned(&self) -> bool {
        self.abandoned
    }

    /// Size of the message buffer, at most [`MAX_MESSAGE`].
    pub const fn total_len(&self) -> usize {
        self.total_len
    }

    /// Where the payload goes in the message buffer; always within
    /// `0..total_len()` and exactly `frame_len` bytes long.
    pub fn range(&self) -> Range<usize> {
        self.range.clone()
    }

    /// The part of the message buffer `buf` where the payload goes.
    /// [`WireError::Misuse`] if `buf` is not [`Placement::total_len`] bytes.
    pub fn slot<'b>(&self, buf: &'b mut [u8]) -> Result<&'b mut [u8], WireError> {
        if buf.len() != self.total_len {
            return Err(WireError::Misuse);
        }
        buf.get_mut(self.range()).ok_or(WireError::Misuse)
    }
}

/// Reassembly state of one connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// No message in progress.
    Idle,
    /// A message is in progress: `first` is its first frame's header,
    /// `received` the bytes already placed and verified, and `pending` the
    /// header of the frame accepted but not yet completed.
    Partial {
        first: Header,
        received: usize,
        pending: Option<Header>,
    },
}

/// Puts the frames of one connection back into messages.
///
/// The frames of a message arrive consecutively (the sender holds the
/// connection for a whole message): the frame at offset 0 starts a message
/// and each next frame must continue exactly where the previous one ended
/// with the same [`Envelope`] and total length. For every frame the caller
/// does [`Reassembler::accept`], reads the payload into the
/// [`Placement::slot`], then [`Reassembler::complete`]. Any error drops the
/// message in progress; the caller frees its buffer and counts a drop.
#[derive(Clone, Debug)]
pub struct Reassembler {
    state: State,
}

impl Default for Reassembler {
    fn default() -> Self {
        Reassembler::new()
    }
}

impl Reassembler {
    /// A reassembler with no message in progress.
    pub const fn new() -> Reassembler {
        Reassembler { state: State::Idle }
    }

    /// Drops the message in progress, if any.
    pub fn reset(&mut self) {
        self.state = State::Idle;
    }

    /// Returns whether a message is in progress.
    pub const fn in_progress(&self) -> bool {
        matches!(self.state, State::Partial { .. })
    }

    /// Takes a frame's header and says where its payload goes.
    ///
    /// A frame at offset 0 starts a new message ([`Placement::is_start`]);
    /// if another message was in progress it is abandoned
    /// ([`Placement::abandoned`]). Any other frame must continue the message
    /// in progress: [`WireError::OutOfSequence`] if there is none or the
    /// offset is not where the previous frame ended, [`WireError::Mismatch`]
    /// if its envelope or total length differ. On error the message in
    /// progress is dropped and the caller skips the frame's payload.
    pub fn accept(&mut self, header: &Header) -> Result<Placement, WireError> {
        let frame_len = header.frame_len();
        let offset = header.offset();
        let end = offset.checked_add(frame_len).ok_or(WireError::BadLength)?;
        if offset == 0 {
            // A frame accepted but never completed means its message broke.
            let abandoned = self.in_progress();
            self.state = State::Partial {
                first: *header,
                received: 0,
                pending: Some(*header),
            };
            return Ok(Placement {
                start: true,
                abandoned,
                total_len: header.total_len(),
                range: 0..end,
            });
        }
        let state = core::mem::replace(&mut self.state, State::Idle);
        let State::Partial {
            first,
            received,
            pending: None,
        } = state
        else {
            return Err(WireError::OutOfSequence);
        };
        if first.envelope != header.envelope || first.total_len != header.total_len {
            return Err(WireError::Mismatch);
        }
        if offset != received {
            return Err(WireError::OutOfSequence);
        }
        self.state = State::Partial {
            first,
            received,
            pending: Some(*header),
        };
        Ok(Placement {
            start: false,
            abandoned: false,
            total_len: header.total_len(),
            range: offset..end,
        })
    }

    /// Finishes the frame just accepted once its `payload` (the
    /// [`Placement::slot`] it was read into) is in: verifies the checksum
    /// and returns whether the message is now whole. A whole message is the
    /// caller's buffer, all [`Placement::total_len`] bytes of it; the
    /// reassembler is then ready for the next message.
    ///
    /// [`WireError::BadChecksum`] (or [`WireError::Misuse`] if `header` is
    /// not the frame just accepted or `payload` is not its length) drops
    /// the message in progress.
    pub fn complete(&mut self, header: &Header, payload: &[u8]) -> Result<bool, WireError> {
        let state = core::mem::replace(&mut self.state, State::Idle);
        let State::Partial {
            first,
            received,
            pending: Some(pending),
        } = state
        else {
            return Err(WireError::Misuse);
        };
        if pending != *header {
            return Err(WireError::Misuse);
        }
        verify(header, payload)?;
        let received = received
            .checked_add(header.frame_len())
            .ok_or(WireError::Misuse)?;
        if received >= first.total_len() {
            return Ok(true);
        }
        self.state = State::Partial {
            first,
            received,
            pending: None,
        };
        Ok(false)
    }
}

/// A bounds-checked little-endian cursor over a payload being decoded.
#[derive(Clone, Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Starts reading at the beginning of `buf`.
    pub const fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, pos: 0 }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// Takes the next `n` bytes ([`WireError::BadPayload`] past the end).
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        let end = self.pos.checked_add(n).ok_or(WireError::BadPayload)?;
        let out = self.buf.get(self.pos..end).ok_or(WireError::BadPayload)?;
        self.pos = end;
        Ok(out)
    }

    /// Takes the next `N` bytes as an array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        self.bytes(N)?.try_into().map_err(|_| WireError::BadPayload)
    }

    /// Reads a `u8`.
    pub fn u8(&mut self) -> Result<u8, WireError> {
        Ok(u8::from_le_bytes(self.array()?))
    }

    /// Reads a little-endian `u16`.
    pub fn u16(&mut self) -> Result<u16, WireError> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    /// Reads a little-endian `u32`.
    pub fn u32(&mut self) -> Result<u32, WireError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    /// Reads a little-endian `i32`.
    pub fn i32(&mut self) -> Result<i32, WireError> {
        Ok(i32::from_le_bytes(self.array()?))
    }

    /// Reads a little-endian `u64`.
    pub fn u64(&mut self) -> Result<u64, WireError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// Ends decoding: [`WireError::BadPayload`] if bytes are left over.
    pub fn finish(self) -> Result<(), WireError> {
        if self.remaining() == 0 {
            Ok(())
        } else {
            Err(WireError::BadPayload)
        }
    }
}

/// A bounds-checked little-endian cursor over a buffer being encoded.
#[derive(Debug)]
pub struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl<'a> Writer<'a> {
    /// Starts writing at the beginning of `buf`.
    pub fn new(buf: &'a mut [u8]) -> Writer<'a> {
        Writer { buf, pos: 0 }
    }

    /// Bytes written so far.
    pub const fn written(&self) -> usize {
        self.pos
    }

    /// Appends `data` ([`WireError::ShortBuffer`] if it does not fit; then
    /// nothing is written).
    pub fn bytes(&mut self, data: &[u8]) -> Result<(), WireError> {
        let end = self
            .pos
            .checked_add(data.len())
            .ok_or(WireError::ShortBuffer)?;
        self.buf
            .get_mut(self.pos..end)
            .ok_or(WireError::ShortBuffer)?
            .copy_from_slice(data);
        self.pos = end;
        Ok(())
    }

    /// Appends a `u8`.
    pub fn u8(&mut self, v: u8) -> Result<(), WireError> {
        self.bytes(&[v])
    }

    /// Appends a little-endian `u16`.
    pub fn u16(&mut self, v: u16) -> Result<(), WireError> {
        self.bytes(&v.to_le_bytes())
    }

    /// Appends a little-endian `u32`.
    pub fn u32(&mut self, v: u32) -> Result<(), WireError> {
        self.bytes(&v.to_le_bytes())
    }

    /// Appends a little-endian `i32`.
    pub fn i32(&mut self, v: i32) -> Result<(), WireError> {
        self.bytes(&v.to_le_bytes())
    }

    /// Appends a little-endian `u64`.
    pub fn u64(&mut self, v: u64) -> Result<(), WireError> {
        self.bytes(&v.to_le_bytes())
    }
}

/// A fixed-size kmsg payload.
pub trait Payload: Sized {
    /// Encoded size in bytes; a payload of any other length is refused.
    const LEN: usize;

    /// Writes the fields (exactly [`Payload::LEN`] bytes).
    fn write(&self, w: &mut Writer<'_>) -> Result<(), WireError>;

    /// Reads and validates the fields.
    fn read(r: &mut Reader<'_>) -> Result<Self, WireError>;

    /// Encodes into the start of `out`; returns the bytes written
    /// ([`Payload::LEN`]) or [`WireError::ShortBuffer`].
    fn encode(&self, out: &mut [u8]) -> Result<usize, WireError> {
        let mut w = Writer::new(out);
        self.write(&mut w)?;
        Ok(w.written())
    }

    /// Decodes a whole payload: [`WireError::BadPayload`] unless `bytes` is
    /// exactly [`Payload::LEN`] long and every field is valid.
    fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        if bytes.len() != Self::LEN {
            return Err(WireError::BadPayload);
        }
        let mut r = Reader::new(bytes);
        let value = Self::read(&mut r)?;
        r.finish()?;
        Ok(value)
    }
}

/// [`MSG_HELLO`]: who is at the other end of a new connection. Layout:
/// `node u16, nr_nodes u16, incarnation u64, auth u8, reserved [3] (zero),
/// nonce [32]` (48 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hello {
    /// The sender's node id, below `nr_nodes`.
    pub node: NodeId,
    /// Cluster size as the sender knows it, `1..=MAX_NODES`.
    pub nr_nodes: u16,
    /// Changes at every boot of the sender, so that peers notice a restart.
    pub incarnation: u64,
    /// Whether the sender authenticates its connections.
    pub auth: AuthMode,
    /// The dialer's fresh nonce (zero without authentication).
    pub nonce: [u8; NONCE_LEN],
}

impl Payload for Hello {
    const LEN: usize = 48;

    fn write(&self, w: &mut Writer<'_>) -> Result<(), WireError> {
        w.u16(u16::from(self.node.0))?;
        w.u16(self.nr_nodes)?;
        w.u64(self.incarnation)?;
        w.u8(self.auth.to_wire())?;
        w.bytes(&[0; 3])?;
        w.bytes(&self.nonce)
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let node = node_from_wire(r.u16()?).map_err(|_| WireError::BadPayload)?;
        let nr_nodes = r.u16()?;
        if nr_nodes == 0 || usize::from(nr_nodes) > MAX_NODES || u16::from(node.0) >= nr_nodes {
            return Err(WireError::BadPayload);
        }
        let incarnation = r.u64()?;
        let auth = AuthMode::from_wire(r.u8()?)?;
        if r.array::<3>()? != [0; 3] {
            return Err(WireError::BadPayload);
        }
        Ok(Hello {
            node,
            nr_nodes,
            incarnation,
            auth,
            nonce: r.array()?,
        })
    }
}

/// Why a listening node refuses a new connection's introduction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The first frame is not a well-formed single-frame [`MSG_HELLO`]
    /// request from its claimed node to this one, or its payload does not
    /// decode or check.
    Malformed(WireError),
    /// The claimed node is not one that dials this node: a node id not above
    /// this node's, or outside the cluster.
    NotDialer,
    /// The sender counts a different number of nodes.
    WrongCluster,
    /// One end authenticates its connections and the other does not
    /// ([`super::auth::AuthMode`]).
    AuthMismatch,
}

impl Refusal {
    /// A short name for logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            Refusal::Malformed(e) => e.as_str(),
            Refusal::NotDialer => "not a node that dials this one",
            Refusal::WrongCluster => "another cluster size",
            Refusal::AuthMismatch => "one end authenticates, the other does not",
        }
    }
}

/// Checks the header of the first frame on a new connection: it must
/// decode and announce a single-frame [`Hello`] (a plain message, request
/// id 0, [`Hello::LEN`] bytes, to `me`). Only then may the listener read
/// its [`Hello::LEN`] payload bytes.
pub fn hello_header(bytes: &[u8], me: NodeId) -> Result<Header, Refusal> {
    let header = Header::decode(bytes).map_err(Refusal::Malformed)?;
    let env = header.envelope();
    if env.msg_type != MSG_HELLO
        || env.flags != Flags::NONE
        || env.request_id != 0
        || env.dst != me
        || header.total_len() != Hello::LEN
        || header.frame_len() != Hello::LEN
    {
        return Err(Refusal::Malformed(WireError::BadPayload));
    }
    Ok(header)
}

/// Admits the node a new connection introduces, from the header
/// [`hello_header`] passed and its payload: the checksum must hold, the
/// [`Hello`] decode and name the header's source, a node above `me` (the
/// higher id dials) in a cluster of `nr_nodes`, authenticating as `auth`
/// does.
pub fn admit_hello(
    header: &Header,
    payload: &[u8],
    me: NodeId,
    nr_nodes: u16,
    auth: AuthMode,
) -> Result<Hello, Refusal> {
    verify(header, payload).map_err(Refusal::Malformed)?;
    let hello = Hello::decode(payload).map_err(Refusal::Malformed)?;
    if hello.node != header.envelope().src {
        return Err(Refusal::Malformed(WireError::BadPayload));
    }
    if hello.nr_nodes != nr_nodes {
        return Err(Refusal::WrongCluster);
    }
    if hello.node.0 <= me.0 || u16::from(hello.node.0) >= nr_nodes {
        return Err(Refusal::NotDialer);
    }
    if hello.auth != auth {
        return Err(Refusal::AuthMismatch);
    }
    Ok(hello)
}

/// [`MSG_HEARTBEAT`]: periodic liveness message. Layout: `incarnation u64,
/// sent_ns u64` (16 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Heartbeat {
    /// The sender's incarnation (as in its [`Hello`]).
    pub incarnation: u64,
    /// The sender's monotonic clock when sending, in nanoseconds.
    pub sent_ns: u64,
}

impl Payload for Heartbeat {
    const LEN: usize = 16;

    fn write(&self, w: &mut Writer<'_>) -> Result<(), WireError> {
        w.u64(self.incarnation)?;
        w.u64(self.sent_ns)
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok(Heartbeat {
            incarnation: r.u64()?,
            sent_ns: r.u64()?,
        })
    }
}

/// Defines a payload made of one `u64` field (8 bytes).
macro_rules! u64_payload {
    ($(#[$doc:meta])* $name:ident { $(#[$fdoc:meta])* $field:ident }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub struct $name {
            $(#[$fdoc])*
            pub $field: u64,
        }

        impl Payload for $name {
            const LEN: usize = 8;

            fn write(&self, w: &mut Writer<'_>) -> Result<(), WireError> {
                w.u64(self.$field)
            }

            fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
                Ok($name { $field: r.u64()? })
            }
        }
    };
}

u64_payload! {
    /// [`MSG_PING`]: a request; layout `nonce u64` (8 bytes).
    Ping {
        /// Arbitrary value the [`Pong`] returns.
        nonce
    }
}

u64_payload! {
    /// [`MSG_PONG`]: the reply to a [`Ping`]; layout `nonce u64` (8 bytes).
    Pong {
        /// The ping's nonce.
        nonce
    }
}

u64_payload! {
    /// [`MSG_BENCH_PING`]: the request and its reply; layout `nonce u64`
    /// (8 bytes), the reply's the request's.
    BenchPing {
        /// Arbitrary value the reply returns.
        nonce
    }
}

u64_payload! {
    /// [`MSG_STREAM_SYNC`]: in the request, the bytes of stream data sent so
    /// far; in the reply, the bytes received. Layout `bytes u64` (8 bytes).
    StreamSync {
        /// Byte count.
        bytes
    }
}

/// The payload of any reply with [`Flags::ERROR_REPLY`]: `errno i32`
/// (4 bytes), a positive errno `1..=MAX_ERRNO` (`EINVAL` is 22).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ErrorReply {
    /// The errno, positive.
    pub errno: i32,
}

impl Payload for ErrorReply {
    const LEN: usize = 4;

    fn write(&self, w: &mut Writer<'_>) -> Result<(), WireError> {
        if !(1..=MAX_ERRNO).contains(&self.errno) {
            return Err(WireError::BadPayload);
        }
        w.i32(self.errno)
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let errno = r.i32()?;
        if !(1..=MAX_ERRNO).contains(&errno) {
            return Err(WireError::BadPayload);
        }
        Ok(ErrorReply { errno })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first frame of a connection as a dialer sends it.
    fn hello_frame(src: u8, dst: u8, node: u8, nr: u16) -> ([u8; HEADER_LEN], [u8; Hello::LEN]) {
        let mut payload = [0u8; Hello::LEN];
        Hello {
            node: NodeId(node),
            nr_nodes: nr,
            incarnation: 9,
            auth: AuthMode::ChaChaPoly,
            nonce: [0x5a; NONCE_LEN],
        }
        .encode(&mut payload)
        .unwrap();
        let env = Envelope::new(MSG_HELLO, NodeId(src), NodeId(dst), 0);
        let mut frames = Fragmenter::new(env, &payload).unwrap();
        let mut hdr = [0u8; HEADER_LEN];
        frames.next_frame(&mut hdr).unwrap();
        (hdr, payload)
    }

    fn admit(hdr: &[u8], payload: &[u8], me: u8, nr: u16) -> Result<Hello, Refusal> {
        let h = hello_header(hdr, NodeId(me))?;
        admit_hello(&h, payload, NodeId(me), nr, AuthMode::ChaChaPoly)
    }

    #[test]
    fn hello_refuses_another_auth_mode_and_bad_fields() {
        let (h, p) = hello_frame(1, 0, 1, 2);
        let header = hello_header(&h, NodeId(0)).unwrap();
        assert_eq!(
            admit_hello(&header, &p, NodeId(0), 2, AuthMode::None),
            Err(Refusal::AuthMismatch)
        );
        // An unknown mode or non-zero reserved bytes do not decode.
        let mut bad = p;
        bad[12] = 7;
        assert_eq!(Hello::decode(&bad), Err(WireError::BadPayload));
        let mut bad = p;
        bad[14] = 1;
        assert_eq!(Hello::decode(&bad), Err(WireError::BadPayload));
    }

    #[test]
    fn hello_admits_a_higher_node_of_the_cluster() {
        let (h, p) = hello_frame(2, 0, 2, 3);
        assert_eq!(admit(&h, &p, 0, 3).unwrap().node, NodeId(2));
        let (h, p) = hello_frame(2, 1, 2, 3);
        assert_eq!(admit(&h, &p, 1, 3).unwrap().node, NodeId(2));
    }

    #[test]
    fn hello_refusals() {
        // A lower or equal id, or one outside the cluster.
        let (h, p) = hello_frame(0, 1, 0, 3);
        assert_eq!(admit(&h, &p, 1, 3), Err(Refusal::NotDialer));
        let (h, p) = hello_frame(1, 1, 1, 3);
        assert_eq!(admit(&h, &p, 1, 3), Err(Refusal::NotDialer));
        let (h, p) = hello_frame(5, 0, 5, 8);
        assert_eq!(admit(&h, &p, 0, 8).unwrap().node, NodeId(5));
        assert_eq!(admit(&h, &p, 0, 5), Err(Refusal::WrongCluster));
        // Another cluster size.
        let (h, p) = hello_frame(1, 0, 1, 4);
        assert_eq!(admit(&h, &p, 0, 2), Err(Refusal::WrongCluster));
        // Addressed to another node.
        let (h, p) = hello_frame(1, 2, 1, 3);
        assert!(matches!(admit(&h, &p, 0, 3), Err(Refusal::Malformed(_))));
        // The header's source is not the node the Hello names.
        let (h, p) = hello_frame(2, 0, 1, 3);
        assert!(matches!(admit(&h, &p, 0, 3), Err(Refusal::Malformed(_))));
        // A damaged payload fails the checksum.
        let (h, mut p) = hello_frame(1, 0, 1, 2);
        p[11] ^= 1;
        assert_eq!(
            admit(&h, &p, 0, 2),
            Err(Refusal::Malformed(WireError::BadChecksum))
        );
        // Not a Hello: a heartbeat, a reply, a longer message.
        let env = Envelope::new(MSG_HEARTBEAT, NodeId(1), NodeId(0), 0);
        let mut frames = Fragmenter::new(env, &[0u8; 16]).unwrap();
        let mut hdr = [0u8; HEADER_LEN];
        frames.next_frame(&mut hdr).unwrap();
        assert!(hello_header(&hdr, NodeId(0)).is_err());
        let env = Envelope::new(MSG_HELLO, NodeId(1), NodeId(0), 7).reply(false);
        let mut frames = Fragmenter::new(env, &[0u8; Hello::LEN]).unwrap();
        frames.next_frame(&mut hdr).unwrap();
        assert!(hello_header(&hdr, NodeId(1)).is_err());
        let env = Envelope::new(MSG_HELLO, NodeId(1), NodeId(0), 0);
        let mut frames = Fragmenter::new(env, &[0u8; 13]).unwrap();
        frames.next_frame(&mut hdr).unwrap();
        assert!(hello_header(&hdr, NodeId(0)).is_err());
        // Garbage and short input never panic.
        assert!(hello_header(&[0xff; HEADER_LEN], NodeId(0)).is_err());
        assert!(hello_header(&[], NodeId(0)).is_err());
    }
    use std::vec;
    use std::vec::Vec;

    const A: NodeId = NodeId(1);
    const B: NodeId = NodeId(63);

    fn env() -> Envelope {
        Envelope::new(0x1234, A, B, 0xdead_beef_0000_0001)
    }

    fn message(len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u32).wrapping_mul(2_654_435_761).rotate_left(7) as u8)
            .collect()
    }

    /// Every frame of `msg`, as (encoded header, payload).
    fn frames(env: Envelope, msg: &[u8], size: usize) -> Vec<([u8; HEADER_LEN], Vec<u8>)> {
        let mut f = Fragmenter::with_frame_size(env, msg, size).unwrap();
        let count = f.frame_count();
        let mut out = Vec::new();
        let mut hdr = [0u8; HEADER_LEN];
        while let Some(payload) = f.next_frame(&mut hdr) {
            out.push((hdr, payload.to_vec()));
        }
        assert_eq!(out.len(), count);
        assert!(f.next_frame(&mut hdr).is_none());
        out
    }

    /// Runs frames through decode, accept, slot and complete like the kernel
    /// does; returns the messages delivered and the first error.
    fn receive(
        r: &mut Reassembler,
        frames: &[([u8; HEADER_LEN], Vec<u8>)],
    ) -> Result<Vec<(Envelope, Vec<u8>)>, WireError> {
        let mut buf = Vec::new();
        let mut out = Vec::new();
        for (hdr, payload) in frames {
            let h = Header::decode(hdr)?;
            let p = r.accept(&h)?;
            if p.is_start() {
                buf = vec![0u8; p.total_len()];
            }
            let slot = p.slot(&mut buf)?;
            slot.copy_from_slice(payload);
            if r.complete(&h, slot)? {
                out.push((*h.envelope(), core::mem::take(&mut buf)));
            }
        }
        Ok(out)
    }

    fn header_bytes(env: Envelope, total: usize, offset: usize, len: usize) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        Header::new(env, total, offset, len)
            .unwrap()
            .encode(&mut out);
        out
    }

    fn set_u16(b: &mut [u8; HEADER_LEN], at: usize, v: u16) {
        b[at..at + 2].copy_from_slice(&v.to_le_bytes());
    }

    fn set_u32(b: &mut [u8; HEADER_LEN], at: usize, v: u32) {
        b[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }

    #[test]
    fn golden_header_bytes() {
        let msg = b"hi";
        let f = frames(env(), msg, MAX_FRAME_PAYLOAD);
        let (hdr, payload) = &f[0];
        assert_eq!(payload, msg);
        assert_eq!(&hdr[0..4], b"CHRT");
        assert_eq!(hdr[4], VERSION);
        assert_eq!(hdr[4], 2);
        assert_eq!(hdr[5], 0);
        assert_eq!(&hdr[6..8], &[0x34, 0x12]);
        assert_eq!(&hdr[8..10], &[1, 0]);
        assert_eq!(&hdr[10..12], &[63, 0]);
        assert_eq!(&hdr[12..16], &[2, 0, 0, 0]);
        assert_eq!(&hdr[16..24], &0xdead_beef_0000_0001u64.to_le_bytes());
        assert_eq!(&hdr[24..28], &[2, 0, 0, 0]);
        assert_eq!(&hdr[28..32], &[0, 0, 0, 0]);
        let mut crc = Crc32c::new();
        crc.update(&hdr[..32]);
        crc.update(msg);
        assert_eq!(&hdr[32..36], &crc.finish().to_le_bytes());
        assert_eq!(&hdr[36..40], &[0, 0, 0, 0]);
    }

    #[test]
    fn header_round_trip_is_canonical() {
        let env = Envelope::new(7, NodeId(0), NodeId(5), 9).reply(true);
        let hdr = header_bytes(env, 4, 0, 4);
        let h = Header::decode(&hdr).unwrap();
        assert_eq!(*h.envelope(), env);
        assert_eq!(h.src(), NodeId(5));
        assert_eq!(h.dst(), NodeId(0));
        assert!(h.flags().is_reply() && h.flags().is_error());
        assert_eq!((h.frame_len(), h.total_len(), h.offset()), (4, 4, 0));
        assert!(h.is_last());
        let mut again = [0u8; HEADER_LEN];
        h.encode(&mut again);
        assert_eq!(again, hdr);
        // Extra bytes after the header are ignored.
        let mut long = hdr.to_vec();
        long.extend_from_slice(&[9; 10]);
        assert_eq!(Header::decode(&long), Ok(h));
        assert_eq!(h.check_route(NodeId(5), NodeId(0)), Ok(()));
        assert_eq!(
            h.check_route(NodeId(0), NodeId(5)),
            Err(WireError::Mismatch)
        );
    }

    #[test]
    fn header_errors() {
        let good = header_bytes(env(), 100, 10, 50);
        assert!(Header::decode(&good).is_ok());
        let check = |f: &dyn Fn(&mut [u8; HEADER_LEN]), want: WireError| {
            let mut b = good;
            f(&mut b);
            assert_eq!(Header::decode(&b), Err(want), "{b:?}");
            assert!(want.is_stream_fatal());
        };
        for len in [0, 1, 39] {
            assert_eq!(Header::decode(&good[..len]), Err(WireError::Truncated));
        }
        check(&|b| b[0] ^= 1, WireError::BadMagic);
        check(&|b| b[3] = b'S', WireError::BadMagic);
        check(&|b| b[4] = 0, WireError::BadVersion);
        check(&|b| b[4] = 1, WireError::BadVersion);
        check(&|b| b[4] = 3, WireError::BadVersion);
        check(&|b| b[5] = 4, WireError::BadFlags);
        check(&|b| b[5] = 0x80, WireError::BadFlags);
        check(&|b| b[5] = Flags::ERROR_BIT, WireError::BadFlags);
        check(
            &|b| {
                b[5] = Flags::REPLY_BIT;
                b[16..24].fill(0);
            },
            WireError::BadFlags,
        );
        check(&|b| set_u16(b, 6, 0), WireError::BadType);
        check(&|b| set_u16(b, 8, 64), WireError::BadNode);
        check(&|b| set_u16(b, 10, 64), WireError::BadNode);
        check(&|b| set_u16(b, 10, 0x0100), WireError::BadNode);
        check(&|b| set_u16(b, 8, u16::MAX), WireError::BadNode);
        // frame_len over 64 KiB, even in a message large enough.
        check(
            &|b| {
                set_u32(b, 12, MAX_FRAME_PAYLOAD as u32 + 1);
                set_u32(b, 24, MAX_MESSAGE as u32);
                set_u32(b, 28, 0);
            },
            WireError::BadLength,
        );
        check(
            &|b| set_u32(b, 24, MAX_MESSAGE as u32 + 1),
            WireError::BadLength,
        );
        check(&|b| set_u32(b, 24, u32::MAX), WireError::BadLength);
        // Frame past the end of the message, and offset overflow.
        check(&|b| set_u32(b, 28, 51), WireError::BadLength);
        check(&|b| set_u32(b, 28, u32::MAX), WireError::BadLength);
        // Empty frame of a non-empty message; non-empty frame of an empty one.
        check(&|b| set_u32(b, 12, 0), WireError::BadLength);
        check(
            &|b| {
                set_u32(b, 24, 0);
                set_u32(b, 28, 0);
            },
            WireError::BadLength,
        );
        // Error replies carry exactly an errno.
        check(&|b| b[5] = Flags::ERROR_REPLY.bits(), WireError::BadLength);
        check(&|b| b[36] = 1, WireError::BadReserved);
        check(&|b| b[39] = 0x80, WireError::BadReserved);
    }

    #[test]
    fn envelope_validation() {
        let ok = env();
        assert_eq!(ok.validate(MAX_MESSAGE), Ok(()));
        assert_eq!(ok.validate(MAX_MESSAGE + 1), Err(WireError::BadLength));
        let mut e = ok;
        e.msg_type = MSG_INVALID;
        assert_eq!(e.validate(0), Err(WireError::BadType));
        let mut e = ok;
        e.dst = NodeId(64);
        assert_eq!(e.validate(0), Err(WireError::BadNode));
        let mut e = ok.reply(false);
        e.request_id = 0;
        assert_eq!(e.validate(0), Err(WireError::BadFlags));
        assert_eq!(ok.reply(true).validate(3), Err(WireError::BadLength));
        assert_eq!(ok.reply(true).validate(4), Ok(()));
        assert!(Fragmenter::new(e, &[]).is_err());
        assert_eq!(
            Fragmenter::with_frame_size(ok, &[], 0).err(),
            Some(WireError::BadLength)
        );
        assert_eq!(
            Fragmenter::with_frame_size(ok, &[], MAX_FRAME_PAYLOAD + 1).err(),
            Some(WireError::BadLength)
        );
        assert_eq!(Flags::from_bits(3), Some(Flags::ERROR_REPLY));
        assert_eq!(Flags::from_bits(2), None);
        assert!(is_kmsg_type(MSG_STREAM_SYNC) && !is_kmsg_type(0) && !is_kmsg_type(0x100));
        // The bench ping goes through the hub: an upper layer's type.
        assert!(!is_kmsg_type(MSG_BENCH_PING) && MSG_BENCH_PING > MSG_KMSG_MAX);
    }

    #[test]
    fn boundary_lengths_fragment_and_reassemble() {
        let k64 = MAX_FRAME_PAYLOAD;
        let cases = [
            (0, 1),
            (1, 1),
            (k64 - 1, 1),
            (k64, 1),
            (k64 + 1, 2),
            (1 << 20, 16),
            (MAX_MESSAGE, 65),
        ];
        for (len, count) in cases {
            let msg = message(len);
            assert_eq!(frame_count(len, k64), count);
            let f = frames(env(), &msg, k64);
            assert_eq!(f.len(), count, "len {len}");
            let mut expect_offset = 0;
            for (i, (hdr, payload)) in f.iter().enumerate() {
                let h = Header::decode(hdr).unwrap();
                assert_eq!(h.offset(), expect_offset);
                assert_eq!(h.frame_len(), payload.len());
                assert_eq!(h.total_len(), len);
                assert_eq!(h.is_last(), i + 1 == count);
                assert!(payload.len() == k64 || i + 1 == count);
                assert_eq!(verify(&h, payload), Ok(()));
                expect_offset += payload.len();
            }
            let mut r = Reassembler::new();
            let got = receive(&mut r, &f).unwrap();
            assert_eq!(got.len(), 1);
            assert_eq!(got[0].0, env());
            assert!(got[0].1 == msg, "len {len}");
            assert!(!r.in_progress());
        }
        assert_eq!(
            Fragmenter::new(env(), &message(MAX_MESSAGE + 1)).err(),
            Some(WireError::BadLength)
        );
    }

    #[test]
    fn reassemble_one_mib_in_odd_frames() {
        let msg = message(1 << 20);
        let f = frames(env(), &msg, 1000);
        assert_eq!(f.len(), 1049);
        let mut r = Reassembler::new();
        let got = receive(&mut r, &f).unwrap();
        assert_eq!(got.len(), 1);
        assert!(got[0].1 == msg);
        // Two messages back to back on one connection.
        let mut both = frames(env(), b"first", 2);
        both.extend(frames(env().reply(false), b"second", 4));
        let got = receive(&mut r, &both).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].1, b"first");
        assert_eq!(got[1].1, b"second");
        assert!(got[1].0.flags.is_reply());
    }

    #[test]
    fn reassembly_errors() {
        let msg = message(10);
        let f = frames(env(), &msg, 3); // offsets 0, 3, 6, 9
        assert_eq!(f.len(), 4);
        let run = |order: &[usize]| {
            let picked: Vec<_> = order.iter().map(|&i| f[i].clone()).collect();
            let mut r = Reassembler::new();
            let res = receive(&mut r, &picked);
            (res, r.in_progress())
        };
        // Duplicate, skipped and reordered frames.
        assert_eq!(run(&[0, 0]).0, Ok(vec![]));
        assert!(run(&[0, 0]).0.unwrap().is_empty());
        assert_eq!(run(&[0, 1, 1]), (Err(WireError::OutOfSequence), false));
        assert_eq!(run(&[0, 2]), (Err(WireError::OutOfSequence), false));
        assert_eq!(run(&[0, 2, 1]), (Err(WireError::OutOfSequence), false));
        assert_eq!(run(&[1]), (Err(WireError::OutOfSequence), false));
        assert_eq!(run(&[0, 1]), (Ok(vec![]), true));
        // A frame of another message in the middle.
        let mut other = env();
        other.request_id += 1;
        let g = frames(other, &msg, 3);
        let mut r = Reassembler::new();
        assert_eq!(
            receive(&mut r, &[f[0].clone(), g[1].clone()]),
            Err(WireError::Mismatch)
        );
        assert!(!r.in_progress());
        // Same envelope but another total length.
        let h = frames(env(), &message(11), 3);
        assert_eq!(
            receive(&mut r, &[f[0].clone(), h[1].clone()]),
            Err(WireError::Mismatch)
        );
        assert!(!WireError::OutOfSequence.is_stream_fatal());
        assert!(!WireError::Mismatch.is_stream_fatal());

        // A new message while one is in progress abandons the old one.
        let mut r = Reassembler::new();
        let h0 = Header::decode(&f[0].0).unwrap();
        let p = r.accept(&h0).unwrap();
        assert!(p.is_start() && !p.abandoned());
        assert_eq!(r.complete(&h0, &f[0].1), Ok(false));
        let h1 = Header::decode(&g[0].0).unwrap();
        let p = r.accept(&h1).unwrap();
        assert!(p.is_start() && p.abandoned());
        assert_eq!(p.range(), 0..3);
        assert_eq!(p.total_len(), 10);
        // Accept without complete, then continuing, is out of sequence.
        let h2 = Header::decode(&g[1].0).unwrap();
        assert_eq!(r.accept(&h2), Err(WireError::OutOfSequence));
        assert!(!r.in_progress());
    }

    #[test]
    fn checksum_and_misuse() {
        let msg = message(10);
        let f = frames(env(), &msg, 5);
        let h0 = Header::decode(&f[0].0).unwrap();
        let h1 = Header::decode(&f[1].0).unwrap();
        assert_eq!(verify(&h0, &f[0].1), Ok(()));
        assert_eq!(verify(&h0, &f[0].1[..4]), Err(WireError::Misuse));
        let mut bad = f[0].1.clone();
        bad[4] ^= 0x10;
        assert_eq!(verify(&h0, &bad), Err(WireError::BadChecksum));
        assert!(!WireError::BadChecksum.is_stream_fatal());
        // A corrupted checksum field decodes but does not verify.
        let mut hdr = f[0].0;
        hdr[33] ^= 1;
        let hc = Header::decode(&hdr).unwrap();
        assert_eq!(verify(&hc, &f[0].1), Err(WireError::BadChecksum));

        let mut r = Reassembler::new();
        // complete() without accept().
        assert_eq!(r.complete(&h0, &f[0].1), Err(WireError::Misuse));
        let p = r.accept(&h0).unwrap();
        let mut small = [0u8; 9];
        assert_eq!(p.slot(&mut small).err(), Some(WireError::Misuse));
        let mut buf = [0u8; 10];
        assert_eq!(p.slot(&mut buf).unwrap().len(), 5);
        // complete() for another header than the one accepted.
        assert_eq!(r.complete(&h1, &f[1].1), Err(WireError::Misuse));
        assert!(!r.in_progress());
        // A bad checksum drops the message in progress.
        r.accept(&h0).unwrap();
        assert_eq!(r.complete(&h0, &bad), Err(WireError::BadChecksum));
        assert!(!r.in_progress());
        assert_eq!(r.accept(&h1), Err(WireError::OutOfSequence));
        // After a reset the next message goes through.
        r.reset();
        assert_eq!(receive(&mut r, &f).unwrap()[0].1, msg);
        assert!(WireError::Misuse.is_stream_fatal());
    }

    #[test]
    fn error_names_are_distinct() {
        use WireError::*;
        let all = [
            Truncated,
            BadMagic,
            BadVersion,
            BadFlags,
            BadType,
            BadNode,
            BadLength,
            BadReserved,
            BadChecksum,
            OutOfSequence,
            Mismatch,
            Misuse,
            BadPayload,
            ShortBuffer,
        ];
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert_ne!(a.as_str(), b.as_str());
            }
        }
    }

    fn round_trip<P: Payload + PartialEq + core::fmt::Debug + Copy>(p: P) {
        let mut buf = [0u8; 64];
        assert_eq!(p.encode(&mut buf), Ok(P::LEN));
        assert_eq!(P::decode(&buf[..P::LEN]), Ok(p));
        // Any other length is refused.
        assert_eq!(P::decode(&buf[..P::LEN - 1]), Err(WireError::BadPayload));
        assert_eq!(P::decode(&buf[..P::LEN + 1]), Err(WireError::BadPayload));
        assert_eq!(P::decode(&[]), Err(WireError::BadPayload));
        // And encoding into a buffer one byte short fails.
        assert_eq!(
            p.encode(&mut buf[..P::LEN - 1]),
            Err(WireError::ShortBuffer)
        );
    }

    #[test]
    fn payloads() {
        let hello = Hello {
            node: NodeId(3),
            nr_nodes: 4,
            incarnation: 0x0102_0304_0506_0708,
            auth: AuthMode::ChaChaPoly,
            nonce: [0xee; NONCE_LEN],
        };
        round_trip(hello);
        let mut buf = [0u8; Hello::LEN];
        hello.encode(&mut buf).unwrap();
        assert_eq!(buf[..16], [3, 0, 4, 0, 8, 7, 6, 5, 4, 3, 2, 1, 2, 0, 0, 0]);
        assert_eq!(buf[16..], [0xee; NONCE_LEN]);
        round_trip(Heartbeat {
            incarnation: 1,
            sent_ns: u64::MAX,
        });
        round_trip(Ping { nonce: 42 });
        round_trip(Pong { nonce: 43 });
        round_trip(StreamSync { bytes: 1 << 40 });
        round_trip(BenchPing { nonce: u64::MAX });
        let mut buf = [0u8; BenchPing::LEN];
        BenchPing { nonce: 0x0102 }.encode(&mut buf).unwrap();
        assert_eq!(buf, [2, 1, 0, 0, 0, 0, 0, 0]);
        round_trip(ErrorReply { errno: 22 });
        round_trip(ErrorReply { errno: MAX_ERRNO });
        assert_eq!(Pong::decode(&[0; 8]), Ok(Pong { nonce: 0 }));

        // Hello: node below nr_nodes, nr_nodes in 1..=64.
        for (node, nr) in [(4u16, 4u16), (0, 0), (64, 65), (0, 65), (256, 300)] {
            let mut b = [0u8; Hello::LEN];
            b[0..2].copy_from_slice(&node.to_le_bytes());
            b[2..4].copy_from_slice(&nr.to_le_bytes());
            assert_eq!(Hello::decode(&b), Err(WireError::BadPayload), "{node} {nr}");
        }
        let mut b = [0u8; Hello::LEN];
        b[0] = 63;
        b[2] = 64;
        assert_eq!(Hello::decode(&b).unwrap().node, NodeId(63));
        // ErrorReply: 1..=MAX_ERRNO.
        for errno in [0, -22, MAX_ERRNO + 1, i32::MIN] {
            assert_eq!(
                ErrorReply::decode(&errno.to_le_bytes()),
                Err(WireError::BadPayload)
            );
            let mut out = [0u8; 4];
            assert_eq!(
                ErrorReply { errno }.encode(&mut out),
                Err(WireError::BadPayload)
            );
        }
        assert!(!WireError::BadPayload.is_stream_fatal());
    }

    #[test]
    fn reader_writer_bounds() {
        let mut buf = [0u8; 15];
        let mut w = Writer::new(&mut buf);
        w.u8(1).unwrap();
        w.u16(0x0302).unwrap();
        w.u32(0x0706_0504).unwrap();
        w.u64(0x0f0e_0d0c_0b0a_0908).unwrap();
        assert_eq!(w.written(), 15);
        assert_eq!(w.u8(0), Err(WireError::ShortBuffer));
        assert_eq!(w.bytes(&[]), Ok(()));
        let expect: Vec<u8> = (1..16).collect();
        assert_eq!(&buf[..], &expect[..]);
        let mut r = Reader::new(&buf);
        assert_eq!(r.u8(), Ok(1));
        assert_eq!(r.u16(), Ok(0x0302));
        assert_eq!(r.i32(), Ok(0x0706_0504));
        assert_eq!(r.remaining(), 8);
        assert_eq!(r.bytes(usize::MAX), Err(WireError::BadPayload));
        assert_eq!(r.bytes(9), Err(WireError::BadPayload));
        assert_eq!(r.clone().finish(), Err(WireError::BadPayload));
        assert_eq!(r.u64(), Ok(0x0f0e_0d0c_0b0a_0908));
        assert_eq!(r.u8(), Err(WireError::BadPayload));
        assert_eq!(r.finish(), Ok(()));
    }
}
