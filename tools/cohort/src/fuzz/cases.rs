//! What the fuzzer sends: kmsg frames built with `rust/proto`'s own
//! encoder (so that they look valid), and the ways it damages them.
//!
//! Everything here draws from one seeded generator, so a seed gives the
//! same sequence of cases on every run.

use cohort_proto::auth::{AuthMode, Challenge, Proof};
use cohort_proto::crc::Crc32c;
use cohort_proto::node::NodeId;
use cohort_proto::wire::{
    self, Envelope, ErrorReply, Fragmenter, Heartbeat, Hello, Payload, Ping, Pong, StreamSync,
    CHECKSUMMED_HEADER_LEN, HEADER_LEN, MAX_FRAME_PAYLOAD, MAX_MESSAGE,
};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Who the fuzzer pretends to be and who it talks to.
#[derive(Clone, Copy, Debug)]
pub struct Route {
    /// The node id the fuzzer's frames claim as their source.
    pub claim: u16,
    /// The node attacked.
    pub target: u16,
    /// The cluster's size.
    pub nr_nodes: u16,
    /// Whether the cluster authenticates (what a Hello should announce).
    pub auth: AuthMode,
}

/// A byte stream made of frames, with where each frame's header starts.
#[derive(Default)]
pub struct Stream {
    pub bytes: Vec<u8>,
    pub headers: Vec<usize>,
}

impl Stream {
    /// Appends the frames of one message.
    pub fn push_message(&mut self, env: Envelope, payload: &[u8], frame_size: usize) {
        let Ok(mut frames) = Fragmenter::with_frame_size(env, payload, frame_size) else {
            return;
        };
        let mut hdr = [0u8; HEADER_LEN];
        while let Some(part) = frames.next_frame(&mut hdr) {
            self.headers.push(self.bytes.len());
            self.bytes.extend_from_slice(&hdr);
            self.bytes.extend_from_slice(part);
        }
    }
}

/// The payload of a `Hello` from `claim` for a cluster of `nr_nodes`
/// announcing `auth`, with a fresh nonce (zero without authentication).
pub fn hello_payload(
    rng: &mut ChaCha8Rng,
    route: Route,
    nr_nodes: u16,
    auth: AuthMode,
) -> [u8; Hello::LEN] {
    let mut nonce = [0u8; wire::NONCE_LEN];
    if auth != AuthMode::None {
        rng.fill(&mut nonce[..]);
    }
    let hello = Hello {
        node: node(route.claim),
        nr_nodes,
        incarnation: rng.gen(),
        auth,
        nonce,
    };
    let mut payload = [0u8; Hello::LEN];
    // Fails only for a node id or size out of range: then the bytes stay
    // zero, a Hello the node must refuse as well.
    let _ = hello.encode(&mut payload);
    payload
}

/// A `Hello` frame carrying `payload`, from `claim` to the target.
pub fn hello_frame(route: Route, payload: &[u8; Hello::LEN]) -> Stream {
    let mut stream = Stream::default();
    let env = Envelope::new(wire::MSG_HELLO, node(route.claim), node(route.target), 0);
    stream.push_message(env, payload, MAX_FRAME_PAYLOAD);
    stream
}

/// A `Hello` from `claim` for a cluster of `nr_nodes`, as a dialer sends
/// it: announcing the cluster's authentication mode, now and then the
/// other one (which the node must refuse).
pub fn hello(rng: &mut ChaCha8Rng, route: Route, nr_nodes: u16) -> Stream {
    let auth = if rng.gen_bool(0.9) {
        route.auth
    } else {
        match route.auth {
            AuthMode::None => AuthMode::ChaChaPoly,
            AuthMode::ChaChaPoly => AuthMode::None,
        }
    };
    let payload = hello_payload(rng, route, nr_nodes, auth);
    hello_frame(route, &payload)
}

/// The node id `id` names (ids past a byte become 255, which no node has).
pub fn node(id: u16) -> NodeId {
    NodeId(u8::try_from(id).unwrap_or(u8::MAX))
}

/// Types a message may carry: kmsg's own, the bench ping, and the upper
/// layers' range (popcorn's and gobelins' handlers decode those).
fn any_type(rng: &mut ChaCha8Rng) -> u16 {
    match rng.gen_range(0..10) {
        0..=5 => rng.gen_range(wire::MSG_HELLO..=wire::MSG_AUTH_PROOF),
        6 => wire::MSG_BENCH_PING,
        7 => rng.gen_range(wire::MSG_AUTH_PROOF + 1..=wire::MSG_KMSG_MAX),
        8 => rng.gen_range(0x100..0x400),
        _ => rng.gen_range(1..=u16::MAX),
    }
}

/// One valid message from `route.claim` to `route.target`: any type, a
/// request, a one-way message, or a reply (success or error) to a request
/// id the node never sent; of 0 bytes to 256 KiB, cut into frames of a
/// random size.
pub fn message(rng: &mut ChaCha8Rng, route: Route, stream: &mut Stream) {
    let (env, payload, frame) = draw_message(rng, route);
    stream.push_message(env, &payload, frame);
}

/// A message as [`message`] draws it: its envelope, payload and frame size.
pub fn draw_message(rng: &mut ChaCha8Rng, route: Route) -> (Envelope, Vec<u8>, usize) {
    let ty = any_type(rng);
    let request_id = match rng.gen_range(0..4) {
        0 => 0,
        1 => rng.gen_range(1..1000),
        _ => rng.gen(),
    };
    let mut env = Envelope::new(ty, node(route.claim), node(route.target), request_id);
    let mut payload = match ty {
        wire::MSG_HELLO => hello_payload(rng, route, route.nr_nodes, route.auth).to_vec(),
        wire::MSG_AUTH_CHALLENGE => random_bytes(rng, Challenge::LEN, Challenge::LEN),
        wire::MSG_AUTH_PROOF => random_bytes(rng, Proof::LEN, Proof::LEN),
        wire::MSG_HEARTBEAT => encoded(&Heartbeat {
            incarnation: rng.gen(),
            sent_ns: rng.gen(),
        }),
        wire::MSG_PING | wire::MSG_BENCH_PING => encoded(&Ping { nonce: rng.gen() }),
        wire::MSG_PONG => encoded(&Pong { nonce: rng.gen() }),
        wire::MSG_STREAM_SYNC => encoded(&StreamSync { bytes: rng.gen() }),
        _ => match rng.gen_range(0..8) {
            0 => Vec::new(),
            1..=5 => random_bytes(rng, 1, 511),
            6 => random_bytes(rng, 512, 16 * 1024),
            _ => random_bytes(rng, 16 * 1024 + 1, 256 * 1024),
        },
    };
    if request_id != 0 && rng.gen_bool(0.4) {
        // A reply to a request the node never made.
        env = Envelope {
            flags: wire::Flags::REPLY,
            ..env
        };
        if rng.gen_bool(0.3) {
            env.flags = wire::Flags::ERROR_REPLY;
            payload = vec![0u8; ErrorReply::LEN];
            let errno = rng.gen_range(1..=wire::MAX_ERRNO);
            let _ = ErrorReply { errno }.encode(&mut payload);
        }
    }
    let frame = match rng.gen_range(0..4) {
        0 => rng.gen_range(1..=4096),
        _ => MAX_FRAME_PAYLOAD,
    };
    (env, payload, frame)
}

/// A kmsg payload as its encoder writes it.
fn encoded<P: Payload>(p: &P) -> Vec<u8> {
    let mut buf = vec![0u8; P::LEN];
    let _ = p.encode(&mut buf);
    buf
}

/// Field of a header, by byte range.
pub const FIELDS: [(&str, usize, usize); 11] = [
    ("magic", 0, 4),
    ("version", 4, 5),
    ("flags", 5, 6),
    ("type", 6, 8),
    ("src", 8, 10),
    ("dst", 10, 12),
    ("frame_len", 12, 16),
    ("request_id", 16, 24),
    ("total_len", 24, 28),
    ("offset", 28, 32),
    ("reserved", 36, 40),
];

/// Values that sit on the edges of the framing rules.
pub fn edge_value(rng: &mut ChaCha8Rng) -> u64 {
    const EDGES: [u64; 12] = [
        0,
        1,
        63,
        64,
        255,
        0xffff,
        MAX_FRAME_PAYLOAD as u64,
        MAX_FRAME_PAYLOAD as u64 + 1,
        MAX_MESSAGE as u64,
        MAX_MESSAGE as u64 + 1,
        u32::MAX as u64,
        u64::MAX,
    ];
    if rng.gen_bool(0.7) {
        EDGES[rng.gen_range(0..EDGES.len())]
    } else {
        rng.gen()
    }
}

/// Recomputes the checksum of the frame whose header is at `at`, as a
/// sender that means it would: over the header's first 32 bytes and the
/// payload its (possibly damaged) `frame_len` names, as far as the stream
/// has it.
pub fn reseal(bytes: &mut [u8], at: usize) {
    let Some(hdr) = bytes.get(at..at + HEADER_LEN) else {
        return;
    };
    let frame_len = u32::from_le_bytes([hdr[12], hdr[13], hdr[14], hdr[15]]) as usize;
    let start = at + HEADER_LEN;
    let end = start.saturating_add(frame_len).min(bytes.len());
    let mut crc = Crc32c::new();
    crc.update(&bytes[at..at + CHECKSUMMED_HEADER_LEN]);
    crc.update(&bytes[start..end]);
    let sum = crc.finish().to_le_bytes();
    bytes[at + 32..at + 36].copy_from_slice(&sum);
}

/// Damages `stream` in one way; returns the way, for the summary.
pub fn mutate(rng: &mut ChaCha8Rng, stream: &mut Stream) -> &'static str {
    if stream.bytes.is_empty() {
        stream.bytes = random_bytes(rng, 1, 256);
        return "random";
    }
    let at = if stream.headers.is_empty() {
        0
    } else {
        stream.headers[rng.gen_range(0..stream.headers.len())]
    };
    let bytes = &mut stream.bytes;
    match rng.gen_range(0..7) {
        0 => {
            for _ in 0..rng.gen_range(1..=8) {
                let i = rng.gen_range(0..bytes.len());
                bytes[i] ^= 1 << rng.gen_range(0..8);
            }
            "bit-flips"
        }
        1 | 2 => {
            let (_, start, end) = FIELDS[rng.gen_range(0..FIELDS.len())];
            let value = edge_value(rng).to_le_bytes();
            if let Some(field) = bytes.get_mut(at + start..at + end) {
                let n = field.len();
                field.copy_from_slice(&value[..n]);
            }
            if rng.gen_bool(0.7) {
                reseal(bytes, at);
                "field+crc"
            } else {
                "field"
            }
        }
        3 => {
            // Huge declared sizes with a valid checksum: the node must
            // bound what it allocates for a message that never comes.
            if bytes.len() >= at + HEADER_LEN {
                let total = if rng.gen_bool(0.5) {
                    MAX_MESSAGE as u32
                } else {
                    rng.gen_range(16 * 1024 + 1..=MAX_MESSAGE as u32)
                };
                let frame = (MAX_FRAME_PAYLOAD as u32).min(total);
                bytes[at + 5] = 0;
                bytes[at + 12..at + 16].copy_from_slice(&frame.to_le_bytes());
                bytes[at + 24..at + 28].copy_from_slice(&total.to_le_bytes());
                bytes[at + 28..at + 32].copy_from_slice(&0u32.to_le_bytes());
                reseal(bytes, at);
            }
            "huge-size"
        }
        4 => {
            let cut = rng.gen_range(0..bytes.len());
            bytes.truncate(cut);
            "truncated"
        }
        5 => {
            let i = rng.gen_range(0..=bytes.len());
            let junk = random_bytes(rng, 1, 64);
            bytes.splice(i..i, junk);
            "inserted"
        }
        _ => {
            let n = rng.gen_range(1..=16).min(bytes.len());
            let i = rng.gen_range(0..=bytes.len() - n);
            rng.fill(&mut bytes[i..i + n]);
            "burst"
        }
    }
}

/// `min..=max` random bytes.
pub fn random_bytes(rng: &mut ChaCha8Rng, min: usize, max: usize) -> Vec<u8> {
    let mut v = vec![0u8; rng.gen_range(min..=max)];
    rng.fill(&mut v[..]);
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use cohort_proto::wire::{Header, Reassembler};
    use rand::SeedableRng;

    const ROUTE: Route = Route {
        claim: 1,
        target: 0,
        nr_nodes: 2,
        auth: AuthMode::ChaChaPoly,
    };

    /// Splits a clean stream back into messages with the node's own
    /// decoder: every frame the generator builds is valid.
    fn decode_all(bytes: &[u8]) -> usize {
        let mut r = Reassembler::new();
        let mut at = 0;
        let mut whole = 0;
        while at < bytes.len() {
            let h = Header::decode(&bytes[at..at + HEADER_LEN]).expect("header decodes");
            let p = r.accept(&h).expect("frame accepted");
            let payload = &bytes[at + HEADER_LEN..at + HEADER_LEN + h.frame_len()];
            let _ = p.range();
            if r.complete(&h, payload).expect("checksum") {
                whole += 1;
            }
            at += HEADER_LEN + h.frame_len();
        }
        whole
    }

    #[test]
    fn generated_messages_are_valid() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut s = hello(&mut rng, ROUTE, 2);
        for _ in 0..200 {
            message(&mut rng, ROUTE, &mut s);
        }
        assert_eq!(decode_all(&s.bytes), 201);
    }

    #[test]
    fn hellos_are_version_2_and_admitted() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let mut modes = std::collections::BTreeMap::new();
        for _ in 0..200 {
            let s = hello(&mut rng, ROUTE, 2);
            assert_eq!(s.bytes.len(), HEADER_LEN + Hello::LEN);
            let h = wire::hello_header(&s.bytes[..HEADER_LEN], NodeId(0)).unwrap();
            let payload = &s.bytes[HEADER_LEN..];
            let got = wire::admit_hello(&h, payload, NodeId(0), 2, AuthMode::ChaChaPoly);
            match got {
                Ok(hello) => {
                    assert_ne!(hello.nonce, [0; wire::NONCE_LEN]);
                    *modes.entry("same").or_insert(0) += 1;
                }
                Err(wire::Refusal::AuthMismatch) => *modes.entry("other").or_insert(0) += 1,
                Err(e) => panic!("{e:?}"),
            }
        }
        // Mostly the cluster's mode, now and then the other.
        assert!(modes["same"] > 150 && modes["other"] > 5, "{modes:?}");
    }

    #[test]
    fn same_seed_same_bytes() {
        let run = |seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut s = Stream::default();
            for _ in 0..50 {
                message(&mut rng, ROUTE, &mut s);
                mutate(&mut rng, &mut s);
            }
            s.bytes
        };
        assert_eq!(run(3), run(3));
        assert_ne!(run(3), run(4));
    }

    #[test]
    fn huge_size_header_decodes() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut seen = 0;
        for _ in 0..2000 {
            let mut s = Stream::default();
            message(&mut rng, ROUTE, &mut s);
            if mutate(&mut rng, &mut s) != "huge-size" {
                continue;
            }
            // The damaged frame is one of the stream's; some header that
            // still decodes declares the huge size.
            let huge = s.headers.iter().any(|&at| {
                s.bytes
                    .get(at..at + HEADER_LEN)
                    .and_then(|b| Header::decode(b).ok())
                    .is_some_and(|h| h.total_len() > 16 * 1024 && h.offset() == 0)
            });
            if huge {
                seen += 1;
            }
        }
        assert!(seen > 50, "{seen}");
    }
}
