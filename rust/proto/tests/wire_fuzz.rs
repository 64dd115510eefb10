// SPDX-License-Identifier: GPL-2.0
//! Property test of the kmsg wire format: at least 1,000,000 frames in a
//! release build (`cargo test -p cohort-proto --release --test wire_fuzz`),
//! 200,000 in a debug build, which runs each frame about ten times slower
//! (release: about 2 s on one core; debug: about 5 s).
//!
//! Each case builds a byte stream the way a sender would (or random bytes),
//! maybe damages it, and runs it through a receiver that does exactly what
//! kmsg does on a connection: decode a header, skip or place its payload,
//! verify, reassemble, reset the connection on a stream-fatal error. It
//! checks that nothing panics, that every header that decodes is
//! consistent and canonical, that placements stay inside the message
//! buffer, that undamaged streams deliver every message intact and in
//! order, and that damaged streams only ever deliver original messages,
//! never the damaged one.
//!
//! The generator is a seeded splitmix64; the seed is printed (and shown on
//! failure). `WIRE_FUZZ_SEED=<n>` replays or varies it and
//! `WIRE_FUZZ_FRAMES=<n>` changes the frame count.
//!
//! Detection of random damage rests on CRC32C: a damaged frame passes with
//! probability 2^-32, so with the default seed the outcome is fixed, and
//! another seed has a chance of about 1 in 50,000 per million frames to
//! meet such a collision (the failure message says so). Damage of at most 3 bits, or a burst of
//! at most 32 bits, that leaves the lengths alone is always detected
//! (CRC32C's Hamming distance is at least 4 at these lengths).

use cohort_proto::crc::Crc32c;
use cohort_proto::node::NodeId;
use cohort_proto::wire::{
    Envelope, Fragmenter, Header, Reassembler, WireError, HEADER_LEN, MAGIC, MAX_FRAME_PAYLOAD,
    MAX_MESSAGE, VERSION,
};
use std::ops::Range;

const DEFAULT_SEED: u64 = 0x5eed_c0de_2024_0001;

#[cfg(not(debug_assertions))]
const DEFAULT_FRAMES: usize = 1_000_000;
#[cfg(debug_assertions)]
const DEFAULT_FRAMES: usize = 200_000;

/// splitmix64: tiny, seedable, good enough to drive a fuzzer.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// Uniform in `range`.
    fn range(&mut self, range: Range<usize>) -> usize {
        range.start + self.below(range.end - range.start)
    }

    /// True with probability `num / den`.
    fn chance(&mut self, num: usize, den: usize) -> bool {
        self.below(den) < num
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut v = vec![0u8; len];
        self.fill(&mut v);
        v
    }
}

/// A message as sent and where its frames sit in the stream.
#[derive(Clone, Debug)]
struct Sent {
    env: Envelope,
    msg: Vec<u8>,
    span: Range<usize>,
    /// Start of each of its frames in the stream.
    frames: Vec<usize>,
}

fn random_envelope(rng: &mut Rng) -> Envelope {
    let msg_type = match rng.below(4) {
        0 => 1 + rng.below(0xff) as u16,
        1 => u16::MAX,
        _ => 1 + rng.below(0xfffe) as u16,
    };
    let src = NodeId(rng.below(64) as u8);
    let dst = NodeId(rng.below(64) as u8);
    let request_id = if rng.chance(1, 4) { 0 } else { rng.next() | 1 };
    let env = Envelope::new(msg_type, src, dst, request_id);
    if request_id != 0 && rng.chance(1, 3) {
        env.reply(false)
    } else {
        env
    }
}

fn random_len(rng: &mut Rng) -> usize {
    match rng.below(100) {
        0..=7 => 0,
        8..=15 => rng.range(1..9),
        16..=59 => rng.range(1..200),
        60..=96 => rng.range(200..4096),
        97..=98 => rng.range(4096..70_000),
        _ => rng.range(70_000..300_000),
    }
}

/// A frame size for a message of `len` bytes: at most 16 frames, so that
/// the frame budget is spread over many cases; down to 1-byte frames for
/// short messages.
fn random_frame_size(rng: &mut Rng, len: usize) -> usize {
    let min = len.div_ceil(16).clamp(1, MAX_FRAME_PAYLOAD);
    match rng.below(4) {
        0 => min,
        1 => rng.range(min..(2 * min).min(MAX_FRAME_PAYLOAD) + 1),
        2 => rng.range(min..MAX_FRAME_PAYLOAD + 1),
        _ => MAX_FRAME_PAYLOAD,
    }
}

/// Encodes `count` random messages into one stream, each with its own
/// frame size, exactly as a sender does.
fn build_stream(rng: &mut Rng, count: usize) -> (Vec<u8>, Vec<Sent>) {
    let mut stream = Vec::new();
    let mut sent = Vec::new();
    for _ in 0..count {
        let mut env = random_envelope(rng);
        let msg = if env.request_id != 0 && rng.chance(1, 20) {
            env = env.reply(true);
            (1 + rng.below(4095) as i32).to_le_bytes().to_vec()
        } else {
            let len = random_len(rng);
            rng.bytes(len)
        };
        let size = random_frame_size(rng, msg.len());
        let mut frag = Fragmenter::with_frame_size(env, &msg, size).expect("valid envelope");
        let expected = frag.frame_count();
        let start = stream.len();
        let mut frames = Vec::new();
        let mut hdr = [0u8; HEADER_LEN];
        while let Some(payload) = frag.next_frame(&mut hdr) {
            frames.push(stream.len());
            stream.extend_from_slice(&hdr);
            stream.extend_from_slice(payload);
        }
        assert_eq!(frames.len(), expected);
        sent.push(Sent {
            env,
            msg,
            span: start..stream.len(),
            frames,
        });
    }
    (stream, sent)
}

#[derive(Debug, Default)]
struct Outcome {
    delivered: Vec<(Envelope, Vec<u8>)>,
    /// Headers handed to the decoder.
    frames: usize,
    /// Frames that decoded and verified.
    verified: usize,
    /// The error that reset the connection, if any.
    fatal: Option<WireError>,
}

/// Checks what must hold of every header that decodes.
fn check_header(h: &Header, raw: &[u8], ctx: &str) {
    assert!(h.frame_len() <= MAX_FRAME_PAYLOAD, "{ctx}: {h:?}");
    assert!(h.total_len() <= MAX_MESSAGE, "{ctx}: {h:?}");
    assert!(h.offset() + h.frame_len() <= h.total_len(), "{ctx}: {h:?}");
    assert_eq!(h.frame_len() == 0, h.total_len() == 0, "{ctx}: {h:?}");
    assert!(h.msg_type() != 0 && h.src().is_valid() && h.dst().is_valid());
    assert!(!h.flags().is_reply() || h.request_id() != 0, "{ctx}: {h:?}");
    assert!(!h.flags().is_error() || h.total_len() == 4, "{ctx}: {h:?}");
    let mut again = [0u8; HEADER_LEN];
    h.encode(&mut again);
    assert_eq!(
        &again[..],
        &raw[..HEADER_LEN],
        "{ctx}: decode is not canonical"
    );
    assert_eq!(Header::decode(&again).as_ref(), Ok(h), "{ctx}");
}

/// What kmsg does with the bytes of one connection.
fn receive(stream: &[u8], ctx: &str) -> Outcome {
    let mut out = Outcome::default();
    let mut r = Reassembler::new();
    let mut buf: Vec<u8> = Vec::new();
    let mut pos = 0;
    while pos < stream.len() {
        out.frames += 1;
        let rest = &stream[pos..];
        let h = match Header::decode(rest) {
            Ok(h) => h,
            Err(e) => {
                assert!(e.is_stream_fatal(), "{ctx}: decode error {e:?} not fatal");
                out.fatal = Some(e);
                break;
            }
        };
        check_header(&h, rest, ctx);
        pos += HEADER_LEN;
        let Some(payload) = stream.get(pos..pos + h.frame_len()) else {
            // The peer closed the connection in the middle of a frame.
            out.fatal = Some(WireError::Truncated);
            break;
        };
        pos += h.frame_len();
        let p = match r.accept(&h) {
            Ok(p) => p,
            Err(e) => {
                assert!(
                    matches!(e, WireError::OutOfSequence | WireError::Mismatch),
                    "{ctx}: accept gave {e:?}"
                );
                assert!(!r.in_progress(), "{ctx}");
                continue;
            }
        };
        let range = p.range();
        assert!(
            range.start <= range.end && range.end <= p.total_len(),
            "{ctx}"
        );
        assert_eq!(range.len(), h.frame_len(), "{ctx}");
        assert_eq!(p.total_len(), h.total_len(), "{ctx}");
        assert_eq!(p.is_start(), h.offset() == 0, "{ctx}");
        if p.is_start() {
            buf = vec![0u8; p.total_len()];
        }
        let slot = p
            .slot(&mut buf)
            .expect("slot of a buffer of total_len bytes");
        slot.copy_from_slice(payload);
        match r.complete(&h, slot) {
            Ok(whole) => {
                out.verified += 1;
                if whole {
                    assert!(h.is_last(), "{ctx}");
                    assert!(!r.in_progress(), "{ctx}");
                    out.delivered
                        .push((*h.envelope(), std::mem::take(&mut buf)));
                }
            }
            Err(e) => {
                assert_eq!(e, WireError::BadChecksum, "{ctx}");
                assert!(!r.in_progress(), "{ctx}");
            }
        }
    }
    out
}

/// The delivered messages must be originals, in order, and (unless the
/// damage is a no-op) the message holding the first changed byte must not
/// be among them; every message entirely before it must be.
fn check_delivery(
    out: &Outcome,
    sent: &[Sent],
    first_diff: Option<usize>,
    damaged_dropped: bool,
    extra: &[(Envelope, Vec<u8>)],
    ctx: &str,
) {
    let mut next = 0;
    for (env, msg) in &out.delivered {
        // Whole frames moved around may legitimately deliver a message
        // twice or out of order (the wire has no sequence numbers; TCP
        // neither duplicates nor reorders): then any original will do.
        let from = if damaged_dropped { next } else { 0 };
        // A message that a splice may have produced is checked first, so
        // that it cannot consume the place of an original.
        if extra.iter().any(|(e, m)| e == env && m == msg) {
            continue;
        }
        let Some(found) = sent[from..]
            .iter()
            .position(|s| s.env == *env && s.msg == *msg)
        else {
            panic!(
                "{ctx}: delivered a message that was never sent (len {}, {env:?}); \
                 with a non-default seed this may be a 2^-32 CRC collision",
                msg.len()
            );
        };
        next = from + found + 1;
    }
    let Some(diff) = first_diff else {
        assert_eq!(
            out.delivered.len(),
            sent.len(),
            "{ctx}: undamaged stream lost messages"
        );
        assert_eq!(out.fatal, None, "{ctx}");
        return;
    };
    let before = sent.iter().take_while(|s| s.span.end <= diff).count();
    assert!(
        out.delivered.len() >= before,
        "{ctx}: lost undamaged messages"
    );
    for (i, s) in sent.iter().take(before).enumerate() {
        assert!(out.delivered[i].1 == s.msg, "{ctx}");
    }
    if damaged_dropped {
        if let Some(hit) = sent.iter().position(|s| s.span.contains(&diff)) {
            let delivered_hit = out.delivered.len() > before
                && out.delivered[before].0 == sent[hit].env
                && out.delivered[before].1 == sent[hit].msg;
            assert!(
                !delivered_hit,
                "{ctx}: the damaged message {hit} was delivered; \
                 with a non-default seed this may be a 2^-32 CRC collision"
            );
        }
    }
}

fn first_diff(a: &[u8], b: &[u8]) -> Option<usize> {
    let common = a.len().min(b.len());
    match a.iter().zip(b).position(|(x, y)| x != y) {
        Some(i) => Some(i),
        None if a.len() == b.len() => None,
        None => Some(common),
    }
}

fn rewrite_crc(stream: &mut [u8], at: usize) {
    let Ok(h) = Header::decode(&stream[at..]) else {
        return;
    };
    let end = (at + HEADER_LEN + h.frame_len()).min(stream.len());
    let mut crc = Crc32c::new();
    crc.update(&stream[at..at + 32]);
    crc.update(&stream[at + HEADER_LEN..end]);
    stream[at + 32..at + 36].copy_from_slice(&crc.finish().to_le_bytes());
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    /// Random bytes, sometimes behind a valid magic and version.
    RandomBytes,
    /// A header with valid fields but a random checksum, then random payload.
    PlausibleHeader,
    /// Valid frames, untouched.
    Clean,
    /// 1 to 3 bit flips, anywhere.
    BitFlips,
    /// A run of 1 to 4 random bytes.
    Burst,
    /// The stream cut short.
    Truncate,
    /// Bytes removed from the middle.
    Delete,
    /// Random bytes inserted or appended.
    Extend,
    /// A length field of one frame set to a boundary or random value.
    LengthTamper,
    /// One frame's header replaced by another frame's.
    Splice,
    /// Whole frames dropped, duplicated or swapped.
    FrameShuffle,
    /// A field of a later frame changed and its CRC fixed: the reassembler,
    /// not the CRC, must refuse it.
    ConsistencyTamper,
    /// Any field changed and the CRC fixed: only structural checks apply.
    ForgedCrc,
}

const KINDS: [Kind; 13] = [
    Kind::RandomBytes,
    Kind::PlausibleHeader,
    Kind::Clean,
    Kind::BitFlips,
    Kind::Burst,
    Kind::Truncate,
    Kind::Delete,
    Kind::Extend,
    Kind::LengthTamper,
    Kind::Splice,
    Kind::FrameShuffle,
    Kind::ConsistencyTamper,
    Kind::ForgedCrc,
];

#[derive(Default)]
struct Stats {
    frames: usize,
    cases: [usize; KINDS.len()],
    delivered: usize,
    fatal: usize,
    detected: usize,
}

fn run_case(rng: &mut Rng, kind: Kind, ctx: &str, stats: &mut Stats) {
    if let Kind::RandomBytes | Kind::PlausibleHeader = kind {
        let len = rng.below(HEADER_LEN * 3);
        let mut bytes = rng.bytes(len);
        if bytes.len() >= 5 && (matches!(kind, Kind::PlausibleHeader) || rng.chance(1, 2)) {
            bytes[..4].copy_from_slice(&MAGIC.to_le_bytes());
            bytes[4] = VERSION;
        }
        if matches!(kind, Kind::PlausibleHeader) {
            let len = rng.range(1..200);
            let mut f = vec![0u8; HEADER_LEN + len];
            rng.fill(&mut f);
            f[..4].copy_from_slice(&MAGIC.to_le_bytes());
            f[4] = VERSION;
            f[5] = [0u8, 1][rng.below(2)];
            f[6..8].copy_from_slice(&(1 + rng.below(0xfffe) as u16).to_le_bytes());
            f[8..10].copy_from_slice(&(rng.below(64) as u16).to_le_bytes());
            f[10..12].copy_from_slice(&(rng.below(64) as u16).to_le_bytes());
            let total = rng.range(len..len + 100);
            let offset = rng.range(0..total - len + 1);
            f[12..16].copy_from_slice(&(len as u32).to_le_bytes());
            f[16..24].copy_from_slice(&(rng.next() | 1).to_le_bytes());
            f[24..28].copy_from_slice(&(total as u32).to_le_bytes());
            f[28..32].copy_from_slice(&(offset as u32).to_le_bytes());
            f[36..40].fill(0);
            // Random checksum: the header decodes, the frame must not verify.
            let h = Header::decode(&f).expect("plausible header decodes");
            check_header(&h, &f, ctx);
            bytes = f;
        }
        let out = receive(&bytes, ctx);
        stats.frames += out.frames;
        if matches!(kind, Kind::PlausibleHeader) {
            assert_eq!(
                out.verified, 0,
                "{ctx}: a random checksum verified (2^-32 chance with a non-default seed)"
            );
            stats.detected += 1;
        }
        assert!(out.delivered.iter().all(|(_, m)| m.len() <= MAX_MESSAGE));
        return;
    }

    let count = rng.range(1..5);
    let (orig, sent) = build_stream(rng, count);
    let all_frames: Vec<usize> = sent.iter().flat_map(|s| s.frames.clone()).collect();
    let mut s = orig.clone();
    // Whether the message holding the first changed byte must be dropped.
    let mut must_drop = true;
    // Whether to check delivery against the originals at all.
    let mut check = true;
    // Messages that may be delivered besides the ones sent.
    let mut extra = Vec::new();
    match kind {
        Kind::RandomBytes | Kind::PlausibleHeader | Kind::Clean => {}
        Kind::BitFlips => {
            for _ in 0..rng.range(1..4) {
                let at = rng.below(s.len());
                s[at] ^= 1 << rng.below(8);
            }
        }
        Kind::Burst => {
            let len = rng.range(1..5).min(s.len());
            let at = rng.below(s.len() - len + 1);
            rng.fill(&mut s[at..at + len]);
        }
        Kind::Truncate => {
            let cut = rng.below(s.len());
            s.truncate(cut);
        }
        Kind::Delete => {
            let at = rng.below(s.len());
            let len = rng.range(1..64).min(s.len() - at);
            s.drain(at..at + len);
        }
        Kind::Extend => {
            let at = if rng.chance(1, 3) {
                s.len()
            } else {
                rng.below(s.len())
            };
            let len = rng.range(1..100);
            let junk = rng.bytes(len);
            s.splice(at..at, junk);
        }
        Kind::LengthTamper => {
            let f = all_frames[rng.below(all_frames.len())];
            let field = [12, 24, 28][rng.below(3)];
            let old = u32::from_le_bytes(s[f + field..f + field + 4].try_into().unwrap());
            let new = match rng.below(9) {
                0 => 0,
                1 => 1,
                2 => old.wrapping_add(1),
                3 => old.wrapping_sub(1),
                4 => MAX_FRAME_PAYLOAD as u32,
                5 => MAX_FRAME_PAYLOAD as u32 + 1,
                6 => MAX_MESSAGE as u32,
                7 => MAX_MESSAGE as u32 + 1,
                _ => rng.next() as u32,
            };
            s[f + field..f + field + 4].copy_from_slice(&new.to_le_bytes());
        }
        Kind::Splice => {
            let i = all_frames[rng.below(all_frames.len())];
            let (donor, donor_msg) = if rng.chance(1, 2) {
                let m = &sent[rng.below(sent.len())];
                let j = m.frames[rng.below(m.frames.len())];
                (orig[j..j + HEADER_LEN].to_vec(), m.clone())
            } else {
                let (other, mut other_sent) = build_stream(rng, 1);
                (other[..HEADER_LEN].to_vec(), other_sent.remove(0))
            };
            s[i..i + HEADER_LEN].copy_from_slice(&donor);
            // The header of a one-frame message is a whole valid frame if
            // the bytes after it happen to be its payload (always so for an
            // empty message, 1 in 256 for a 1-byte one): it is delivered,
            // and the stream goes out of step after it.
            if donor_msg.frames.len() == 1 {
                extra.push((donor_msg.env, donor_msg.msg));
            }
        }
        Kind::FrameShuffle => {
            // Whole valid frames: a duplicated first frame legitimately
            // restarts its message, so only the original-and-in-order and
            // undamaged-prefix properties apply.
            must_drop = false;
            let ends: Vec<usize> = all_frames
                .iter()
                .skip(1)
                .copied()
                .chain(std::iter::once(orig.len()))
                .collect();
            let mut pieces: Vec<Range<usize>> =
                all_frames.iter().zip(&ends).map(|(&a, &b)| a..b).collect();
            let i = rng.below(pieces.len());
            match rng.below(3) {
                0 => {
                    pieces.remove(i);
                }
                1 => {
                    let p = pieces[i].clone();
                    pieces.insert(i, p);
                }
                _ => {
                    let j = rng.below(pieces.len());
                    pieces.swap(i, j);
                }
            }
            s = pieces
                .iter()
                .flat_map(|r| orig[r.clone()].to_vec())
                .collect();
        }
        Kind::ConsistencyTamper => {
            // A frame after the first of a message, so that the first frame
            // fixed the envelope and lengths to compare with.
            let multi: Vec<&Sent> = sent.iter().filter(|m| m.frames.len() > 1).collect();
            if multi.is_empty() {
                check = false;
            } else {
                let m = multi[rng.below(multi.len())];
                let f = m.frames[rng.range(1..m.frames.len())];
                let frame_len = u32::from_le_bytes(s[f + 12..f + 16].try_into().unwrap());
                let total = u32::from_le_bytes(s[f + 24..f + 28].try_into().unwrap());
                match rng.below(6) {
                    0 => s[f + 6] ^= 1 << rng.below(8),                 // type
                    1 => s[f + 8] ^= 1 << rng.below(6),                 // src
                    2 => s[f + 10] ^= 1 << rng.below(6),                // dst
                    3 => s[f + 16 + rng.below(8)] ^= 1 << rng.below(8), // request id
                    4 => {
                        // Another offset that still fits the message.
                        let old = u32::from_le_bytes(s[f + 28..f + 32].try_into().unwrap());
                        let mut new = rng.below((total - frame_len) as usize + 1) as u32;
                        if new == old {
                            new = if old == 0 { 1 } else { old - 1 };
                        }
                        s[f + 28..f + 32].copy_from_slice(&new.to_le_bytes());
                    }
                    _ => {
                        // A larger total length.
                        let new = total + 1 + rng.below(1000) as u32;
                        s[f + 24..f + 28].copy_from_slice(&new.to_le_bytes());
                    }
                }
                if Header::decode(&s[f..]).is_ok() {
                    rewrite_crc(&mut s, f);
                }
            }
        }
        Kind::ForgedCrc => {
            check = false;
            let f = all_frames[rng.below(all_frames.len())];
            let at = f + rng.below(32);
            s[at] = rng.next() as u8;
            rewrite_crc(&mut s, f);
        }
    }
    let out = receive(&s, ctx);
    stats.frames += out.frames;
    stats.delivered += out.delivered.len();
    stats.fatal += usize::from(out.fatal.is_some());
    let diff = first_diff(&orig, &s);
    if matches!(kind, Kind::Clean) {
        assert_eq!(diff, None);
    }
    if check {
        check_delivery(&out, &sent, diff, must_drop, &extra, ctx);
        if diff.is_some() && diff < Some(orig.len()) && must_drop {
            stats.detected += 1;
        }
    }
}

fn env_usize(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => v.parse().ok(),
    }
}

#[test]
fn wire_fuzz() {
    let seed = env_usize("WIRE_FUZZ_SEED").unwrap_or(DEFAULT_SEED);
    let target = env_usize("WIRE_FUZZ_FRAMES").map_or(DEFAULT_FRAMES, |n| n as usize);
    println!("wire_fuzz: seed {seed:#x} (WIRE_FUZZ_SEED to replay), {target} frames");
    let start = std::time::Instant::now();
    let mut master = Rng(seed);
    let mut stats = Stats::default();
    let mut case = 0usize;
    while stats.frames < target {
        let kind_index = case % KINDS.len();
        let kind = KINDS[kind_index];
        let case_seed = master.next();
        let ctx = format!("seed {seed:#x} case {case} ({kind:?}, case seed {case_seed:#x})");
        run_case(&mut Rng(case_seed), kind, &ctx, &mut stats);
        stats.cases[kind_index] += 1;
        case += 1;
    }
    println!(
        "wire_fuzz: {} frames in {case} cases ({:?}), {} messages delivered, {} connections \
         reset, {} damaged messages refused, {:.1?}",
        stats.frames,
        KINDS.iter().zip(stats.cases).collect::<Vec<_>>(),
        stats.delivered,
        stats.fatal,
        stats.detected,
        start.elapsed()
    );
    assert!(stats.frames >= target);
    assert!(stats.cases.iter().all(|&n| n > 0));
    assert!(stats.delivered > 0 && stats.fatal > 0 && stats.detected > 0);
}

/// The receiver and fragmenter at the size limits, in every build.
#[test]
fn largest_message_round_trip() {
    let mut rng = Rng(DEFAULT_SEED);
    let msg = rng.bytes(MAX_MESSAGE);
    let env = Envelope::new(0x100, NodeId(0), NodeId(1), 7);
    let mut frag = Fragmenter::new(env, &msg).unwrap();
    let mut stream = Vec::with_capacity(MAX_MESSAGE + 65 * HEADER_LEN);
    let mut hdr = [0u8; HEADER_LEN];
    while let Some(p) = frag.next_frame(&mut hdr) {
        stream.extend_from_slice(&hdr);
        stream.extend_from_slice(p);
    }
    let out = receive(&stream, "largest");
    assert_eq!(out.frames, 65);
    assert_eq!(out.delivered.len(), 1);
    assert!(out.delivered[0].1 == msg);
    assert!(Fragmenter::new(env, &stream[..MAX_MESSAGE + 1]).is_err());
}
