// SPDX-License-Identifier: GPL-2.0
//! Authenticated kmsg connections: the handshake and the frame tags.
//!
//! Every node of a cluster holds one cluster key `K` (32 bytes, from a key
//! file of 64 hex digits: [`parse_key`]). A connection is authenticated in
//! three frames, before anything else crosses it:
//!
//! ```text
//! dialer   -> listener  Hello     { node, nr_nodes, incarnation, auth, Nd }
//! listener -> dialer    Challenge { Nl, MAC(K, "listener" || T) }
//! dialer   -> listener  Proof     { MAC(K, "dialer" || T) }
//! ```
//!
//! where `Nd` and `Nl` are fresh 32-byte nonces from each end's RNG and the
//! transcript `T` is `listener id (u16 le) || the Hello's 48 payload bytes
//! || Nl`. Each side checks the other's proof (in constant time, [`same`])
//! before it counts the peer up; a node without the key can neither answer
//! a challenge nor prove itself to a dialer. A proof binds both nonces, so
//! a recorded handshake cannot be replayed into a new connection.
//!
//! Both ends then derive one session key per direction,
//! `MAC(K, "dialer to listener" || T)` and `MAC(K, "listener to dialer" ||
//! T)` ([`SessionKeys`]), and every later frame carries
//! [`TAG_LEN`] bytes after its payload: `Poly1305(r, header || payload)`
//! ([`frame_tag`]), where the one-time key `r` is the first 32 bytes of
//! ChaCha20 block 0 under the session key with nonce `0 (u32) || seq (u64
//! le)`, as RFC 8439 section 2.6 generates Poly1305 keys, and `seq` counts the frames sent in that direction on
//! that connection from 0 ([`Sequence`]), so that no Poly1305 key ever
//! tags two frames. A receiver computes the tag as the bytes arrive and
//! compares it before the frame is checksummed, reassembled or delivered:
//! a forged, altered, replayed or reordered frame fails the comparison
//! (its number, hence its key, is not the one it was tagged under), is
//! counted, and resets the connection. Messages are authenticated, not
//! encrypted.
//!
//! Why not HMAC-SHA-256 on every frame, as the handshake uses: it costs
//! two SHA-256 blocks per small frame and a block per 64 bytes of a
//! stream, in software where the CPU has no SHA instructions (QEMU's
//! default CPU has none); one ChaCha20 block per frame and Poly1305's
//! multiply-and-add per 16 bytes cost a fraction of that
//! (`Documentation/kmsg.rst`, Measured costs).
//!
//! A node that runs without authentication (`cohort.auth=0`) says so in its
//! Hello ([`AuthMode::None`]); the listener refuses a Hello whose mode is
//! not its own ([`super::wire::Refusal::AuthMismatch`]), so a cluster never
//! mixes the two. Without authentication the listener still answers with a
//! Challenge (all zero) and no Proof follows: a dialer counts itself up only
//! once the listener has admitted it, with or without a key.
//!
//! The primitives are the caller's ([`Mac`], [`FrameMac`]): the kernel
//! computes them with the crypto API's `hmac(sha256)` and the crypto
//! library's ChaCha20 and Poly1305, the host tools with the `hmac`,
//! `chacha20` and `poly1305` crates. Nothing here is cryptography; it is
//! the protocol around it.

use super::node::NodeId;
use super::wire::{
    Envelope, Flags, Header, Payload, Reader, WireError, Writer, HEADER_LEN, NONCE_LEN,
};

/// Bytes of the cluster key and of each session key.
pub const KEY_LEN: usize = 32;
/// Bytes of an HMAC-SHA-256 output: a handshake proof, a derived key.
pub const MAC_LEN: usize = 32;
/// Bytes of the tag that follows each frame's payload on an authenticated
/// connection: a Poly1305 output.
pub const TAG_LEN: usize = 16;
/// Largest key file read: 64 hex digits plus room for a newline or spaces.
pub const KEY_FILE_MAX: usize = 256;
/// Bytes of the transcript `T`: listener id, Hello payload, listener nonce.
pub const TRANSCRIPT_LEN: usize = 2 + <super::wire::Hello as Payload>::LEN + NONCE_LEN;

/// Domain-separation labels: no two uses of `K` MAC the same bytes.
const LABEL_LISTENER: &[u8] = b"cohort-kmsg-2 listener";
const LABEL_DIALER: &[u8] = b"cohort-kmsg-2 dialer";
const LABEL_DIALER_TO_LISTENER: &[u8] = b"cohort-kmsg-2 dialer to listener";
const LABEL_LISTENER_TO_DIALER: &[u8] = b"cohort-kmsg-2 listener to dialer";

/// Whether a node authenticates its connections; carried in its Hello.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMode {
    /// No authentication (`cohort.auth=0`): no tags, zero challenge.
    None,
    /// The handshake above (HMAC-SHA-256) and ChaCha20-Poly1305 frame tags.
    ChaChaPoly,
}

impl AuthMode {
    /// The mode's byte in a Hello.
    pub const fn to_wire(self) -> u8 {
        match self {
            AuthMode::None => 0,
            AuthMode::ChaChaPoly => 2,
        }
    }

    /// Decodes a Hello's mode byte; an unknown mode is
    /// [`WireError::BadPayload`].
    pub const fn from_wire(byte: u8) -> Result<AuthMode, WireError> {
        match byte {
            0 => Ok(AuthMode::None),
            // 1 was HMAC-SHA-256 frame tags, before this wire format: a
            // node that still speaks it is refused as malformed.
            2 => Ok(AuthMode::ChaChaPoly),
            _ => Err(WireError::BadPayload),
        }
    }

    /// Bytes of tag after each frame's payload in this mode.
    pub const fn tag_len(self) -> usize {
        match self {
            AuthMode::None => 0,
            AuthMode::ChaChaPoly => TAG_LEN,
        }
    }

    /// A short name for logs and debugfs.
    pub const fn as_str(self) -> &'static str {
        match self {
            AuthMode::None => "none",
            AuthMode::ChaChaPoly => "chacha20-poly1305",
        }
    }
}

/// A keyed HMAC-SHA-256: the MAC of the concatenation of `parts`.
///
/// Implementations: the kernel's `kernel::cohort::mac::Hmac` (crypto API)
/// and, in tests and host tools, the `hmac` crate.
pub trait Mac {
    /// Error of the underlying implementation.
    type Error;

    /// `HMAC(key, parts[0] || parts[1] || ...)`.
    fn mac(&self, parts: &[&[u8]]) -> Result<[u8; MAC_LEN], Self::Error>;
}

/// The frame tags of one direction of a connection, keyed with its session
/// key: for frame `seq`, Poly1305 under the first 32 bytes of ChaCha20
/// block 0 with nonce `0 (u32) || seq (u64 le)` (RFC 8439 section 2.6).
///
/// Implementations: the kernel's `kernel::cohort::mac::Tagger` (crypto
/// library) and, in tests and host tools, the `chacha20` and `poly1305`
/// crates. One tag at a time: [`FrameMac::begin`], [`FrameMac::update`]
/// as the bytes come, [`FrameMac::finish`].
pub trait FrameMac {
    /// Starts the tag of frame number `seq`, forgetting any unfinished one.
    fn begin(&mut self, seq: u64);
    /// Adds `data` to the tag begun.
    fn update(&mut self, data: &[u8]);
    /// Ends the tag begun and returns it.
    fn finish(&mut self) -> [u8; TAG_LEN];
}

/// The handshake transcript `T`: what both proofs and both session keys
/// are bound to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transcript([u8; TRANSCRIPT_LEN]);

impl Transcript {
    /// `listener || hello || listener_nonce`, `hello` being the Hello's
    /// payload bytes as sent.
    pub fn new(
        listener: NodeId,
        hello: &[u8; <super::wire::Hello as Payload>::LEN],
        listener_nonce: &[u8; NONCE_LEN],
    ) -> Transcript {
        let mut t = [0u8; TRANSCRIPT_LEN];
        let (id, rest) = t.split_at_mut(2);
        id.copy_from_slice(&u16::from(listener.0).to_le_bytes());
        let (h, n) = rest.split_at_mut(<super::wire::Hello as Payload>::LEN);
        h.copy_from_slice(hello);
        n.copy_from_slice(listener_nonce);
        Transcript(t)
    }

    /// The transcript's bytes.
    pub const fn as_bytes(&self) -> &[u8; TRANSCRIPT_LEN] {
        &self.0
    }

    /// The listener's proof: `MAC(K, "listener" || T)`.
    pub fn listener_proof<M: Mac>(&self, key: &M) -> Result<[u8; MAC_LEN], M::Error> {
        key.mac(&[LABEL_LISTENER, &self.0])
    }

    /// The dialer's proof: `MAC(K, "dialer" || T)`.
    pub fn dialer_proof<M: Mac>(&self, key: &M) -> Result<[u8; MAC_LEN], M::Error> {
        key.mac(&[LABEL_DIALER, &self.0])
    }
}

/// Which end of a connection a node is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// It sent the Hello (the higher node id).
    Dialer,
    /// It accepted the connection.
    Listener,
}

/// The two session keys of a connection, as one end uses them.
///
/// The caller wipes them once it has keyed its MACs with them.
pub struct SessionKeys {
    /// Key of the tags this end sends.
    pub tx: [u8; KEY_LEN],
    /// Key of the tags this end receives.
    pub rx: [u8; KEY_LEN],
}

impl SessionKeys {
    /// Derives both keys from the cluster key and the transcript, for the
    /// end `role`.
    pub fn for_role<M: Mac>(key: &M, t: &Transcript, role: Role) -> Result<SessionKeys, M::Error> {
        let d2l = key.mac(&[LABEL_DIALER_TO_LISTENER, &t.0])?;
        let l2d = key.mac(&[LABEL_LISTENER_TO_DIALER, &t.0])?;
        Ok(match role {
            Role::Dialer => SessionKeys { tx: d2l, rx: l2d },
            Role::Listener => SessionKeys { tx: l2d, rx: d2l },
        })
    }
}

/// The listener's [`super::wire::MSG_AUTH_CHALLENGE`]: its nonce and its proof.
/// Layout: `nonce [32], proof [32]` (64 bytes). All zero on a connection
/// without authentication.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Challenge {
    /// The listener's fresh nonce `Nl`.
    pub nonce: [u8; NONCE_LEN],
    /// `MAC(K, "listener" || T)`.
    pub proof: [u8; MAC_LEN],
}

impl Challenge {
    /// Bytes of the payload.
    pub const LEN: usize = NONCE_LEN + MAC_LEN;

    /// Encodes into `out`, which must be [`Challenge::LEN`] bytes.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, WireError> {
        if out.len() != Self::LEN {
            return Err(WireError::BadPayload);
        }
        let mut w = Writer::new(out);
        w.bytes(&self.nonce)?;
        w.bytes(&self.proof)?;
        Ok(w.written())
    }

    /// Decodes exactly [`Challenge::LEN`] bytes.
    pub fn decode(bytes: &[u8]) -> Result<Challenge, WireError> {
        let mut r = Reader::new(bytes);
        let nonce = r.array::<NONCE_LEN>()?;
        let proof = r.array::<MAC_LEN>()?;
        r.finish()?;
        Ok(Challenge { nonce, proof })
    }
}

/// The dialer's [`super::wire::MSG_AUTH_PROOF`]: `MAC(K, "dialer" || T)` (32 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Proof(pub [u8; MAC_LEN]);

impl Proof {
    /// Bytes of the payload.
    pub const LEN: usize = MAC_LEN;

    /// Decodes exactly [`Proof::LEN`] bytes.
    pub fn decode(bytes: &[u8]) -> Result<Proof, WireError> {
        let mut r = Reader::new(bytes);
        let proof = r.array::<MAC_LEN>()?;
        r.finish()?;
        Ok(Proof(proof))
    }
}

/// The envelope of a handshake frame of type `msg_type` from `src` to
/// `dst` (a plain message, request id 0, untagged).
pub const fn handshake_envelope(msg_type: u16, src: NodeId, dst: NodeId) -> Envelope {
    Envelope::new(msg_type, src, dst, 0)
}

/// Checks the header of a handshake frame: it must decode and announce a
/// single-frame message of type `msg_type` ([`super::wire::MSG_AUTH_CHALLENGE`] or
/// [`super::wire::MSG_AUTH_PROOF`]) of exactly `len` bytes from `src` to `dst`. Only
/// then may its payload be read.
pub fn handshake_header(
    bytes: &[u8],
    msg_type: u16,
    src: NodeId,
    dst: NodeId,
    len: usize,
) -> Result<Header, WireError> {
    let header = Header::decode(bytes)?;
    let env = header.envelope();
    if env.msg_type != msg_type
        || env.flags != Flags::NONE
        || env.request_id != 0
        || env.src != src
        || env.dst != dst
        || header.total_len() != len
        || header.frame_len() != len
    {
        return Err(WireError::BadPayload);
    }
    Ok(header)
}

/// Frame sequence numbers of one direction of one connection, from 0.
#[derive(Debug, Default)]
pub struct Sequence(u64);

impl Sequence {
    /// A new direction: its first frame is number 0.
    pub const fn new() -> Sequence {
        Sequence(0)
    }

    /// The number of the next frame, advancing past it. After 2^64 frames
    /// it fails with [`WireError::BadPayload`] instead of wrapping (a
    /// wrapped counter would let old frames replay); the connection must
    /// then be reopened.
    pub fn advance(&mut self) -> Result<u64, WireError> {
        let seq = self.0;
        self.0 = seq.checked_add(1).ok_or(WireError::BadPayload)?;
        Ok(seq)
    }
}

/// The tag of frame number `seq`: `Poly1305(r_seq, header || payload)`
/// ([`FrameMac`]). `tags` is keyed with the session key of the frame's
/// direction.
pub fn frame_tag<M: FrameMac>(
    tags: &mut M,
    seq: u64,
    header: &[u8; HEADER_LEN],
    payload: &[u8],
) -> [u8; TAG_LEN] {
    tags.begin(seq);
    tags.update(header);
    tags.update(payload);
    tags.finish()
}

/// Compares two byte strings in time that depends only on their lengths,
/// so that a forger learns nothing from how long a rejection takes.
pub fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b.iter()) {
        diff |= x ^ y;
    }
    // Read through a black box so the compiler cannot end the loop early.
    core::hint::black_box(diff) == 0
}

/// Why a key file's contents are not a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyError {
    /// Not exactly 64 hex digits (surrounding whitespace aside).
    NotHex,
    /// All zero: never a generated key, most likely a placeholder.
    AllZero,
}

impl KeyError {
    /// A short name for logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            KeyError::NotHex => "not 64 hex digits",
            KeyError::AllZero => "all zero",
        }
    }
}

/// Parses a key file: 64 hex digits (either case), optionally surrounded
/// by ASCII whitespace (a trailing newline, say), giving [`KEY_LEN`] bytes.
pub fn parse_key(text: &[u8]) -> Result<[u8; KEY_LEN], KeyError> {
    let text = text.trim_ascii();
    if text.len() != 2 * KEY_LEN {
        return Err(KeyError::NotHex);
    }
    let mut key = [0u8; KEY_LEN];
    for (byte, pair) in key.iter_mut().zip(text.chunks(2)) {
        let (Some(&hi), Some(&lo)) = (pair.first(), pair.get(1)) else {
            return Err(KeyError::NotHex);
        };
        *byte = (hex_digit(hi)? << 4) | hex_digit(lo)?;
    }
    if key.iter().all(|&b| b == 0) {
        return Err(KeyError::AllZero);
    }
    Ok(key)
}

fn hex_digit(c: u8) -> Result<u8, KeyError> {
    match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        b'A'..=b'F' => Ok(c - b'A' + 10),
        _ => Err(KeyError::NotHex),
    }
}

#[cfg(any(test, feature = "host"))]
pub mod host;

#[cfg(test)]
mod tests {
    use super::super::wire::{Hello, MSG_AUTH_CHALLENGE, MSG_AUTH_PROOF};
    use super::host::{HostMac, HostTags};
    use super::*;
    use poly1305::universal_hash::KeyInit;

    fn hex(bytes: &[u8]) -> std::string::String {
        bytes.iter().map(|b| std::format!("{b:02x}")).collect()
    }

    fn hello(nonce: u8) -> [u8; Hello::LEN] {
        let h = Hello {
            node: NodeId(2),
            nr_nodes: 3,
            incarnation: 77,
            auth: AuthMode::ChaChaPoly,
            nonce: [nonce; NONCE_LEN],
        };
        let mut out = [0u8; Hello::LEN];
        h.encode(&mut out).unwrap();
        out
    }

    #[test]
    fn rfc4231_case_2_through_the_trait() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let mut key = [0u8; KEY_LEN];
        key[..4].copy_from_slice(b"Jefe");
        // HMAC pads a short key with zeros: a 32-byte key that is "Jefe"
        // followed by zeros MACs like "Jefe".
        let out = HostMac::new(&key)
            .mac(&[b"what do ya want ", b"for nothing?"])
            .unwrap();
        let expected = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
        assert_eq!(hex(&out), expected);
    }

    #[test]
    fn both_ends_agree_and_keys_differ_by_direction() {
        let k = HostMac::new(&[7; KEY_LEN]);
        let t = Transcript::new(NodeId(0), &hello(1), &[9; NONCE_LEN]);
        let d = SessionKeys::for_role(&k, &t, Role::Dialer).unwrap();
        let l = SessionKeys::for_role(&k, &t, Role::Listener).unwrap();
        assert_eq!(d.tx, l.rx);
        assert_eq!(d.rx, l.tx);
        assert_ne!(d.tx, d.rx);
        assert_ne!(t.listener_proof(&k).unwrap(), t.dialer_proof(&k).unwrap());
    }

    #[test]
    fn proofs_bind_the_key_and_both_nonces() {
        let k = HostMac::new(&[7; KEY_LEN]);
        let other = HostMac::new(&[8; KEY_LEN]);
        let t = Transcript::new(NodeId(0), &hello(1), &[9; NONCE_LEN]);
        let p = t.dialer_proof(&k).unwrap();
        assert_ne!(p, t.dialer_proof(&other).unwrap());
        let t2 = Transcript::new(NodeId(0), &hello(2), &[9; NONCE_LEN]);
        assert_ne!(p, t2.dialer_proof(&k).unwrap());
        let t3 = Transcript::new(NodeId(0), &hello(1), &[10; NONCE_LEN]);
        assert_ne!(p, t3.dialer_proof(&k).unwrap());
        let t4 = Transcript::new(NodeId(1), &hello(1), &[9; NONCE_LEN]);
        assert_ne!(p, t4.dialer_proof(&k).unwrap());
    }

    #[test]
    fn rfc8439_one_time_key_generation() {
        // RFC 8439 section 2.6.2: key 80..9f, nonce 00 00 00 00 00 01 02
        // 03 04 05 06 07, which is this layout for seq 0x0706050403020100.
        let mut key = [0u8; KEY_LEN];
        for (i, b) in key.iter_mut().enumerate() {
            *b = 0x80 + i as u8;
        }
        let otk = HostTags::new(&key).one_time_key(0x0706_0504_0302_0100);
        assert_eq!(
            hex(&otk),
            "8ad5a08b905f81cc815040274ab29471a833b637e3fd0da508dbb8e2fdd1a646"
        );
    }

    #[test]
    fn a_tag_covers_sequence_header_and_payload() {
        let mut k = HostTags::new(&[3; KEY_LEN]);
        let header = [1u8; HEADER_LEN];
        let tag = frame_tag(&mut k, 5, &header, b"payload");
        assert_eq!(tag, frame_tag(&mut k, 5, &header, b"payload"));
        assert_ne!(tag, frame_tag(&mut k, 6, &header, b"payload"));
        let mut h2 = header;
        h2[7] ^= 1;
        assert_ne!(tag, frame_tag(&mut k, 5, &h2, b"payload"));
        assert_ne!(tag, frame_tag(&mut k, 5, &header, b"paylaod"));
        assert_ne!(
            tag,
            frame_tag(&mut HostTags::new(&[4; KEY_LEN]), 5, &header, b"payload")
        );
        // The tag is Poly1305 under the frame's one-time key.
        let mut data = header.to_vec();
        data.extend_from_slice(b"payload");
        let otk = k.one_time_key(5);
        let want: [u8; TAG_LEN] = poly1305::Poly1305::new(&otk.into())
            .compute_unpadded(&data)
            .into();
        assert_eq!(tag, want);
    }

    #[test]
    fn sequences_count_from_zero_and_never_wrap() {
        let mut s = Sequence::new();
        assert_eq!(s.advance(), Ok(0));
        assert_eq!(s.advance(), Ok(1));
        let mut s = Sequence(u64::MAX);
        assert!(s.advance().is_err());
    }

    #[test]
    fn challenge_and_proof_round_trip() {
        let c = Challenge {
            nonce: [1; NONCE_LEN],
            proof: [2; MAC_LEN],
        };
        let mut buf = [0u8; Challenge::LEN];
        assert_eq!(c.encode(&mut buf), Ok(Challenge::LEN));
        assert_eq!(Challenge::decode(&buf), Ok(c));
        assert!(Challenge::decode(&buf[..63]).is_err());
        assert_eq!(Proof::decode(&[4; 32]), Ok(Proof([4; 32])));
        assert!(Proof::decode(&[4; 33]).is_err());
    }

    #[test]
    fn handshake_headers_are_checked() {
        let env = handshake_envelope(MSG_AUTH_PROOF, NodeId(1), NodeId(0));
        let mut frames = super::super::wire::Fragmenter::new(env, &[0u8; Proof::LEN]).unwrap();
        let mut header = [0u8; HEADER_LEN];
        frames.next_frame(&mut header).unwrap();
        assert!(
            handshake_header(&header, MSG_AUTH_PROOF, NodeId(1), NodeId(0), Proof::LEN).is_ok()
        );
        assert!(handshake_header(
            &header,
            MSG_AUTH_CHALLENGE,
            NodeId(1),
            NodeId(0),
            Proof::LEN
        )
        .is_err());
        assert!(
            handshake_header(&header, MSG_AUTH_PROOF, NodeId(2), NodeId(0), Proof::LEN).is_err()
        );
        assert!(handshake_header(&header, MSG_AUTH_PROOF, NodeId(1), NodeId(0), 31).is_err());
    }

    #[test]
    fn same_compares_whole_strings() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"abc", b"ab"));
        assert!(same(b"", b""));
    }

    #[test]
    fn key_files_parse_strictly() {
        let hex = b"00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF\n";
        let key = parse_key(hex).unwrap();
        assert_eq!(key[1], 0x11);
        assert_eq!(key[31], 0xff);
        assert_eq!(parse_key(&hex[..63]), Err(KeyError::NotHex));
        let mut bad = *hex;
        bad[5] = b'g';
        assert_eq!(parse_key(&bad), Err(KeyError::NotHex));
        assert_eq!(parse_key(&[b'0'; 64]), Err(KeyError::AllZero));
        assert_eq!(parse_key(b""), Err(KeyError::NotHex));
    }

    #[test]
    fn modes_round_trip_and_unknown_is_refused() {
        for m in [AuthMode::None, AuthMode::ChaChaPoly] {
            assert_eq!(AuthMode::from_wire(m.to_wire()), Ok(m));
        }
        assert!(AuthMode::from_wire(1).is_err());
        assert!(AuthMode::from_wire(3).is_err());
        assert_eq!(AuthMode::None.tag_len(), 0);
        assert_eq!(AuthMode::ChaChaPoly.tag_len(), TAG_LEN);
    }
}
