//! The fuzzer's cases against kmsg's handshake and frame tags
//! (`rust/proto`'s `auth`): a Hello followed by proofs that cannot be
//! right, frames before the proof, frames with tags that cannot be right
//! and, with the cluster key, a handshake completed as a vacant node
//! followed by valid, damaged, replayed and reordered frames.
//!
//! A case that needs the node's Challenge (to reflect its proof, or to
//! complete the handshake) is a [`Script`] with a [`Reply`]: the bytes up
//! to the Hello go out first, and the reply builds the rest once the
//! Challenge is in. Each reply draws from a generator of its own, seeded
//! when the case is drawn, so the cases of a seed stay the same whatever
//! the node answers.

use cohort_proto::auth::{
    self, handshake_envelope, Challenge, Proof, Role, SessionKeys, Transcript, MAC_LEN, TAG_LEN,
};
use cohort_proto::node::NodeId;
use cohort_proto::wire::{
    self, Envelope, Fragmenter, Hello, Payload, HEADER_LEN, MAX_FRAME_PAYLOAD, NONCE_LEN,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::cases::{self, Route, Stream};
use super::{Ending, Script};
use crate::key::{HostMac, HostTags};

/// What the fuzzer remembers from earlier connections, to replay it.
#[derive(Default)]
pub struct Memory {
    /// The last proof a node sent in a Challenge.
    pub node_proof: Option<[u8; MAC_LEN]>,
    /// The last good proof the fuzzer sent (with the key).
    pub dialer_proof: Option<[u8; MAC_LEN]>,
    /// A frame with a good tag from an earlier connection (with the key).
    pub sealed: Option<Vec<u8>>,
}

/// What a reply sends once the node's Challenge is in, and how to read
/// what the node sends after it.
pub struct Answer {
    pub bytes: Vec<u8>,
    /// The key of the tags of the node's frames from now on (a completed
    /// handshake), to check them.
    pub rx: Option<HostTags>,
    /// Whether the node's proof was checked: right or wrong.
    pub node_proof: Option<bool>,
    /// What the reply chose (a way to spoil a tag...), for the summary.
    pub detail: &'static str,
}

impl Answer {
    fn bytes(bytes: Vec<u8>) -> Answer {
        Answer {
            bytes,
            rx: None,
            node_proof: None,
            detail: "",
        }
    }
}

/// Builds the rest of a connection from the node's Challenge.
pub type Reply = Box<dyn FnOnce(&Challenge, &mut Memory) -> Answer>;

/// One frame: its header and its payload.
#[derive(Clone)]
pub struct Frame {
    pub header: [u8; HEADER_LEN],
    pub payload: Vec<u8>,
}

impl Frame {
    fn bytes(&self) -> Vec<u8> {
        let mut v = self.header.to_vec();
        v.extend_from_slice(&self.payload);
        v
    }
}

/// The frames of one message.
fn frames_of(env: Envelope, payload: &[u8], frame_size: usize) -> Vec<Frame> {
    let Ok(mut f) = Fragmenter::with_frame_size(env, payload, frame_size) else {
        return vec![];
    };
    let mut out = vec![];
    let mut header = [0u8; HEADER_LEN];
    while let Some(part) = f.next_frame(&mut header) {
        out.push(Frame {
            header,
            payload: part.to_vec(),
        });
    }
    out
}

/// The frames of `n` valid messages from the claimed node, small ones
/// mostly (a case must fit in a few seconds under TCG).
fn draw_frames(rng: &mut ChaCha8Rng, route: Route, n: usize) -> Vec<Frame> {
    let mut out = vec![];
    for _ in 0..n {
        let (env, mut payload, frame) = cases::draw_message(rng, route);
        if payload.len() > 16 * 1024 && rng.gen_bool(0.7) {
            payload.truncate(rng.gen_range(0..=16 * 1024));
        }
        out.extend(frames_of(env, &payload, frame));
    }
    out
}

/// The handshake frame of type `msg_type` carrying `payload`, untagged.
fn handshake_frame(route: Route, msg_type: u16, payload: &[u8]) -> Vec<u8> {
    let env = handshake_envelope(
        msg_type,
        cases::node(route.claim),
        cases::node(route.target),
    );
    frames_of(env, payload, MAX_FRAME_PAYLOAD)
        .iter()
        .flat_map(Frame::bytes)
        .collect()
}

fn proof_frame(route: Route, proof: &[u8]) -> Vec<u8> {
    handshake_frame(route, wire::MSG_AUTH_PROOF, proof)
}

/// A completed handshake, from the dialer's end.
pub struct Session {
    /// Keyed with the session key of the fuzzer's frames.
    tx: HostTags,
    /// Keyed with the session key of the node's frames.
    rx: HostTags,
    /// Keyed with the cluster key itself.
    cluster: HostTags,
    /// The sequence number of the next frame sent.
    seq: u64,
}

/// What the dialer sends on a Challenge: its proof, if the node's holds.
struct Handshake {
    proof: [u8; MAC_LEN],
    session: Session,
}

/// Checks the node's proof with the cluster key and derives the dialer's
/// proof and the session keys; `None` if the node's proof is wrong.
fn handshake(
    key: &HostMac,
    route: Route,
    hello: &[u8; Hello::LEN],
    c: &Challenge,
) -> Option<Handshake> {
    let t = Transcript::new(cases::node(route.target), hello, &c.nonce);
    let Ok(listener) = t.listener_proof(key);
    if !auth::same(&listener, &c.proof) {
        return None;
    }
    let Ok(proof) = t.dialer_proof(key);
    let Ok(keys) = SessionKeys::for_role(key, &t, Role::Dialer);
    Some(Handshake {
        proof,
        session: Session {
            tx: HostTags::new(&keys.tx),
            rx: HostTags::new(&keys.rx),
            cluster: key.tags(),
            seq: 0,
        },
    })
}

/// The tag of `frame` as number `seq` under `tags`.
fn tag(tags: &HostTags, seq: u64, frame: &Frame) -> [u8; TAG_LEN] {
    tags.tag(seq, &frame.header, &frame.payload)
}

impl Session {
    /// `frame` with its good tag; the next sequence number.
    fn seal(&mut self, frame: &Frame) -> Vec<u8> {
        let mut v = frame.bytes();
        v.extend_from_slice(&tag(&self.tx, self.seq, frame));
        self.seq += 1;
        v
    }
}

/// Ways a tag can be wrong.
const BAD_TAGS: [&str; 11] = [
    "tag-flip",
    "tag-zero",
    "tag-random",
    "tag-next-seq",
    "tag-old-seq",
    "tag-rx-key",
    "tag-cluster-key",
    "altered-header",
    "altered-payload",
    "tag-missing",
    "tag-short",
];

/// Good frames, then frame `k` with a tag that is wrong in one way, then
/// the rest with good tags (the node must reset at frame `k`). Returns the
/// bytes and the way; a short tag ends the bytes.
fn bad_tag(rng: &mut ChaCha8Rng, s: &mut Session, frames: &[Frame]) -> (Vec<u8>, &'static str) {
    let way = BAD_TAGS[rng.gen_range(0..BAD_TAGS.len())];
    let k = rng.gen_range(0..frames.len());
    let mut out = vec![];
    for f in &frames[..k] {
        out.extend(s.seal(f));
    }
    let f = &frames[k];
    let seq = s.seq;
    let good = tag(&s.tx, seq, f);
    let mut body = f.bytes();
    let t: Vec<u8> = match way {
        "tag-flip" => {
            let mut t = good;
            t[rng.gen_range(0..TAG_LEN)] ^= 1 << rng.gen_range(0..8);
            t.to_vec()
        }
        "tag-zero" => vec![0; TAG_LEN],
        "tag-random" => cases::random_bytes(rng, TAG_LEN, TAG_LEN),
        "tag-next-seq" => tag(&s.tx, seq + 1, f).to_vec(),
        "tag-old-seq" => tag(&s.tx, seq.wrapping_sub(1), f).to_vec(),
        "tag-rx-key" => tag(&s.rx, seq, f).to_vec(),
        "tag-cluster-key" => tag(&s.cluster, seq, f).to_vec(),
        "altered-header" => {
            // Altered in flight, checksum fixed: only the tag can tell.
            body[16..24].copy_from_slice(&rng.gen::<u64>().to_le_bytes());
            cases::reseal(&mut body, 0);
            good.to_vec()
        }
        "altered-payload" => {
            if body.len() > HEADER_LEN {
                let i = rng.gen_range(HEADER_LEN..body.len());
                body[i] ^= 1 << rng.gen_range(0..8);
            } else {
                body.push(rng.gen());
                let len = (body.len() - HEADER_LEN) as u32;
                body[12..16].copy_from_slice(&len.to_le_bytes());
                body[24..28].copy_from_slice(&len.to_le_bytes());
            }
            cases::reseal(&mut body, 0);
            good.to_vec()
        }
        // The next frame's first bytes are read as the tag.
        "tag-missing" => vec![],
        _ => good[..rng.gen_range(0..TAG_LEN)].to_vec(),
    };
    out.extend(body);
    out.extend(t);
    s.seq += 1;
    if way != "tag-short" {
        for f in &frames[k + 1..] {
            out.extend(s.seal(f));
        }
    }
    (out, way)
}

/// Changes one frame in a way the parser behind the MAC must catch (or
/// survive), keeping `frame_len` and the payload consistent so that the
/// tag covers what the node reads; returns the way.
fn mutate_frame(rng: &mut ChaCha8Rng, f: &mut Frame) -> &'static str {
    let way = match rng.gen_range(0..5) {
        0 => {
            for _ in 0..rng.gen_range(1..=4) {
                let i = rng.gen_range(0..HEADER_LEN);
                f.header[i] ^= 1 << rng.gen_range(0..8);
            }
            "header-bits"
        }
        1 | 2 => {
            let (_, start, end) = cases::FIELDS[rng.gen_range(0..cases::FIELDS.len())];
            let value = cases::edge_value(rng).to_le_bytes();
            f.header[start..end].copy_from_slice(&value[..end - start]);
            "header-field"
        }
        3 => {
            if f.payload.is_empty() {
                f.payload = cases::random_bytes(rng, 1, 64);
            } else {
                let i = rng.gen_range(0..f.payload.len());
                f.payload[i] ^= 1 << rng.gen_range(0..8);
            }
            "payload-bits"
        }
        _ => {
            // Another length for the same message: frame and total.
            let len = rng.gen_range(0..=4096u32);
            f.header[12..16].copy_from_slice(&len.to_le_bytes());
            if rng.gen_bool(0.5) {
                f.header[24..28].copy_from_slice(&len.to_le_bytes());
            }
            "length"
        }
    };
    // What the node will read as the payload: `frame_len` bytes, when the
    // header lets it read that far.
    let declared =
        u32::from_le_bytes([f.header[12], f.header[13], f.header[14], f.header[15]]) as usize;
    if declared <= MAX_FRAME_PAYLOAD {
        let old = f.payload.len();
        f.payload.resize(declared, 0);
        if declared > old {
            rng.fill(&mut f.payload[old..]);
        }
    }
    if rng.gen_bool(0.7) {
        let mut bytes = f.bytes();
        cases::reseal(&mut bytes, 0);
        f.header.copy_from_slice(&bytes[..HEADER_LEN]);
    }
    way
}

/// A Hello from `route.claim` announcing the cluster's mode; its payload
/// (the transcript needs it) and its frame.
fn hello(rng: &mut ChaCha8Rng, route: Route) -> ([u8; Hello::LEN], Vec<u8>) {
    let payload = cases::hello_payload(rng, route, route.nr_nodes, route.auth);
    let frame = cases::hello_frame(route, &payload).bytes;
    (payload, frame)
}

fn ms(rng: &mut ChaCha8Rng, max: u64) -> std::time::Duration {
    std::time::Duration::from_millis(rng.gen_range(0..=max))
}

fn ending(rng: &mut ChaCha8Rng) -> Ending {
    if rng.gen_bool(0.5) {
        Ending::Close
    } else {
        Ending::Reset
    }
}

fn script(
    data: Vec<u8>,
    hold: std::time::Duration,
    ending: Ending,
    reply: Option<Reply>,
) -> Script {
    Script {
        data,
        trickle: None,
        hold,
        ending,
        reply,
    }
}

/// A generator for a reply, seeded from the case's.
fn sub_rng(rng: &mut ChaCha8Rng) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(rng.gen())
}

/// What an `auth-proof` reply sends on the node's Challenge.
type ProofFn = Box<dyn FnOnce(&Challenge, &mut Memory, &mut ChaCha8Rng) -> Vec<u8>>;

/// `auth-proof`: a valid Hello, then a proof that cannot be right (random,
/// the node's own reflected, one replayed from an earlier connection, one
/// of another transcript or label with the key), a proof frame truncated,
/// cut short, too long or with a wrong header, a frame that is not a proof
/// (a message, a tagged frame, a second Hello), or nothing. Returns the
/// case and its name.
pub fn auth_proof(
    rng: &mut ChaCha8Rng,
    route: Route,
    key: Option<&HostMac>,
) -> (Script, &'static str) {
    let (hello_payload, mut data) = hello(rng, route);
    let hold = ms(rng, 800);
    let end = ending(rng);
    let mut sub = sub_rng(rng);
    let variant = rng.gen_range(0..13);
    let reply = |f: ProofFn| -> Option<Reply> {
        Some(Box::new(move |c: &Challenge, m: &mut Memory| {
            let bytes = f(c, m, &mut sub);
            m.node_proof = Some(c.proof);
            Answer::bytes(bytes)
        }))
    };
    let (name, reply) = match variant {
        0 => {
            data.extend(proof_frame(
                route,
                &cases::random_bytes(rng, Proof::LEN, Proof::LEN),
            ));
            ("random", None)
        }
        1 => (
            "random-after-challenge",
            reply(Box::new(move |_, _, r| {
                proof_frame(route, &cases::random_bytes(r, Proof::LEN, Proof::LEN))
            })),
        ),
        2 => (
            "reflected",
            reply(Box::new(move |c, _, _| proof_frame(route, &c.proof))),
        ),
        3 => (
            "replayed",
            reply(Box::new(move |c, m, _| {
                let old = m.dialer_proof.or(m.node_proof).unwrap_or(c.proof);
                proof_frame(route, &old)
            })),
        ),
        4 => match key.cloned() {
            Some(k) => (
                "other-transcript",
                reply(Box::new(move |c, _, r| {
                    // A proof with the right key for another connection:
                    // another listener nonce, listener id or Hello.
                    let mut nonce = c.nonce;
                    let mut listener = cases::node(route.target);
                    let mut h = hello_payload;
                    match r.gen_range(0..3) {
                        0 => nonce[r.gen_range(0..NONCE_LEN)] ^= 1,
                        1 => listener = NodeId(listener.0.wrapping_add(1)),
                        _ => h[16 + r.gen_range(0..NONCE_LEN)] ^= 1,
                    }
                    let t = Transcript::new(listener, &h, &nonce);
                    let Ok(p) = t.dialer_proof(&k);
                    proof_frame(route, &p)
                })),
            ),
            None => (
                "zero",
                reply(Box::new(move |_, _, _| {
                    proof_frame(route, &[0; Proof::LEN])
                })),
            ),
        },
        5 => match key.cloned() {
            Some(k) => (
                "listener-label",
                reply(Box::new(move |c, _, _| {
                    // The right transcript under the listener's label: the
                    // node's own proof, computed rather than reflected.
                    let t = Transcript::new(cases::node(route.target), &hello_payload, &c.nonce);
                    let Ok(p) = t.listener_proof(&k);
                    proof_frame(route, &p)
                })),
            ),
            None => (
                "reflected-flipped",
                reply(Box::new(move |c, _, r| {
                    let mut p = c.proof;
                    p[r.gen_range(0..MAC_LEN)] ^= 1 << r.gen_range(0..8);
                    proof_frame(route, &p)
                })),
            ),
        },
        6 => {
            // A proof of 0..=31 or 33..=64 bytes, consistent otherwise.
            let len = if rng.gen_bool(0.5) {
                rng.gen_range(0..Proof::LEN)
            } else {
                rng.gen_range(Proof::LEN + 1..=2 * Proof::LEN)
            };
            data.extend(proof_frame(route, &cases::random_bytes(rng, len, len)));
            ("wrong-length", None)
        }
        7 => {
            // Cut short, then silence until the hold is over: the node
            // must bound how long it waits for the rest.
            let mut p = proof_frame(route, &cases::random_bytes(rng, Proof::LEN, Proof::LEN));
            p.truncate(rng.gen_range(1..p.len()));
            data.extend(p);
            let hold = ms(rng, 2500);
            return (script(data, hold, end, None), "cut");
        }
        8 => {
            let mut p = proof_frame(route, &cases::random_bytes(rng, Proof::LEN, Proof::LEN));
            let field = match rng.gen_range(0..6) {
                0 => 6..8,   // type
                1 => 8..10,  // src
                2 => 10..12, // dst
                3 => 5..6,   // flags
                4 => 16..24, // request id
                _ => 28..32, // offset
            };
            let value = cases::edge_value(rng).to_le_bytes();
            let n = field.len();
            p[field].copy_from_slice(&value[..n]);
            cases::reseal(&mut p, 0);
            data.extend(p);
            ("bad-header", None)
        }
        9 => {
            let mut s = Stream::default();
            cases::message(rng, route, &mut s);
            data.extend(s.bytes);
            ("message-first", None)
        }
        10 => {
            // A frame with a tag, as if the handshake were over.
            let frames = draw_frames(rng, route, 1);
            for f in frames {
                data.extend(f.bytes());
                data.extend(cases::random_bytes(rng, TAG_LEN, TAG_LEN));
            }
            ("tagged-first", None)
        }
        11 => {
            let (_, again) = hello(rng, route);
            data.extend(again);
            ("second-hello", None)
        }
        _ => {
            let hold = ms(rng, 3000);
            return (script(data, hold, end, None), "silent");
        }
    };
    (script(data, hold, end, reply), name)
}

/// `bad-mac`: frames whose tags cannot be right. Without the key: a Hello,
/// a made-up proof or none, then frames with random or zero tags (the node
/// must stop at the proof). With it: the handshake completed as
/// `route.claim`, then good frames and one with a bad tag ([`BAD_TAGS`]).
pub fn bad_mac(
    rng: &mut ChaCha8Rng,
    route: Route,
    key: Option<&HostMac>,
) -> (Script, &'static str) {
    let hold = ms(rng, 800);
    let end = ending(rng);
    if let Some(k) = key {
        let n = rng.gen_range(1..=4);
        let after = |r: &mut ChaCha8Rng, s: &mut Session, _: &mut Memory, frames: &[Frame]| {
            bad_tag(r, s, frames)
        };
        return (
            insider_with(rng, route, k, hold, end, after, n),
            "handshake+bad-tag",
        );
    }
    let (_, mut data) = hello(rng, route);
    let name = if rng.gen_bool(0.7) {
        data.extend(proof_frame(
            route,
            &cases::random_bytes(rng, Proof::LEN, Proof::LEN),
        ));
        "guessed-proof"
    } else {
        "no-proof"
    };
    let zero = rng.gen_bool(0.3);
    let n = rng.gen_range(1..=4);
    for f in draw_frames(rng, route, n) {
        data.extend(f.bytes());
        if zero {
            data.extend([0u8; TAG_LEN]);
        } else {
            data.extend(cases::random_bytes(rng, TAG_LEN, TAG_LEN));
        }
    }
    (script(data, hold, end, None), name)
}

/// A case that completes the handshake as `route.claim` with the cluster
/// key `key`, then sends what `after` makes of `n` messages' frames (the
/// bytes, and what it chose: the answer's detail).
fn insider_with(
    rng: &mut ChaCha8Rng,
    route: Route,
    key: &HostMac,
    hold: std::time::Duration,
    end: Ending,
    after: impl FnOnce(&mut ChaCha8Rng, &mut Session, &mut Memory, &[Frame]) -> (Vec<u8>, &'static str)
        + 'static,
    n: usize,
) -> Script {
    let (hello_payload, data) = hello(rng, route);
    let mut sub = sub_rng(rng);
    let key = key.clone();
    let reply: Reply = Box::new(move |c: &Challenge, m: &mut Memory| {
        m.node_proof = Some(c.proof);
        let Some(h) = handshake(&key, route, &hello_payload, c) else {
            return Answer {
                bytes: vec![],
                rx: None,
                node_proof: Some(false),
                detail: "",
            };
        };
        let mut s = h.session;
        let mut bytes = proof_frame(route, &h.proof);
        m.dialer_proof = Some(h.proof);
        let frames = draw_frames(&mut sub, route, n);
        let (more, detail) = if frames.is_empty() {
            (vec![], "")
        } else {
            after(&mut sub, &mut s, m, &frames)
        };
        bytes.extend(more);
        Answer {
            bytes,
            rx: Some(s.rx),
            node_proof: Some(true),
            detail,
        }
    });
    script(data, hold, end, Some(reply))
}

/// `insider`, with the cluster key: the handshake completed as
/// `route.claim`, then valid messages with good tags; damaged frames with
/// good tags (the parser behind the MAC); a bad tag; a frame replayed; two
/// frames swapped; or a frame of an earlier connection. Returns the case
/// and its name.
pub fn insider(rng: &mut ChaCha8Rng, route: Route, key: &HostMac) -> (Script, &'static str) {
    let end = ending(rng);
    let n = rng.gen_range(1..=6);
    let (name, hold): (&'static str, _) = match rng.gen_range(0..11) {
        0..=2 => ("good", ms(rng, 1500)),
        3..=5 => ("mutated", ms(rng, 800)),
        6 | 7 => ("bad-tag", ms(rng, 800)),
        8 => ("replay", ms(rng, 800)),
        9 => ("reorder", ms(rng, 800)),
        _ => ("old-session", ms(rng, 800)),
    };
    let after = move |r: &mut ChaCha8Rng, s: &mut Session, m: &mut Memory, frames: &[Frame]| {
        let mut out = vec![];
        match name {
            "good" => {
                for f in frames {
                    out.extend(s.seal(f));
                }
                // Kept for a later "old-session" case.
                m.sealed = frames.first().map(|f| {
                    let mut v = f.bytes();
                    v.extend_from_slice(&tag(&s.tx, 0, f));
                    v
                });
            }
            "mutated" => {
                let mut frames = frames.to_vec();
                let mut way = "";
                for _ in 0..r.gen_range(1..=2) {
                    let i = r.gen_range(0..frames.len());
                    way = mutate_frame(r, &mut frames[i]);
                }
                for f in &frames {
                    out.extend(s.seal(f));
                }
                return (out, way);
            }
            "bad-tag" => return bad_tag(r, s, frames),
            "replay" => {
                let sealed: Vec<Vec<u8>> = frames.iter().map(|f| s.seal(f)).collect();
                let k = r.gen_range(0..sealed.len());
                for v in &sealed {
                    out.extend(v);
                }
                out.extend(&sealed[k]);
            }
            "reorder" => {
                let mut sealed: Vec<Vec<u8>> = frames.iter().map(|f| s.seal(f)).collect();
                if sealed.len() < 2 {
                    let extra = Frame {
                        header: frames[0].header,
                        payload: frames[0].payload.clone(),
                    };
                    sealed.push(s.seal(&extra));
                }
                let k = r.gen_range(0..sealed.len() - 1);
                sealed.swap(k, k + 1);
                for v in &sealed {
                    out.extend(v);
                }
            }
            _ => {
                match m.sealed.clone() {
                    Some(old) => out.extend(old),
                    // No earlier session yet: this one's frame 0, twice.
                    None => {
                        let v = s.seal(&frames[0]);
                        out.extend(&v);
                        out.extend(&v);
                    }
                }
                for f in frames {
                    out.extend(s.seal(f));
                }
            }
        }
        (out, "")
    };
    (insider_with(rng, route, key, hold, end, after, n), name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cohort_proto::auth::AuthMode;
    use cohort_proto::wire::{admit_hello, hello_header, Header};

    const KEY: [u8; 32] = [0x42; 32];
    const ROUTE: Route = Route {
        claim: 2,
        target: 0,
        nr_nodes: 3,
        auth: AuthMode::ChaChaPoly,
    };

    /// The node's end of the handshake, as kmsg runs it: admits the Hello
    /// at the start of `bytes`, answers with a Challenge, and returns the
    /// transcript and the bytes after the Hello.
    fn listen(bytes: &[u8], nonce: [u8; NONCE_LEN]) -> (Transcript, Challenge, Vec<u8>) {
        let h = hello_header(&bytes[..HEADER_LEN], NodeId(0)).unwrap();
        let payload = &bytes[HEADER_LEN..HEADER_LEN + Hello::LEN];
        admit_hello(&h, payload, NodeId(0), 3, AuthMode::ChaChaPoly).unwrap();
        let t = Transcript::new(NodeId(0), payload.try_into().unwrap(), &nonce);
        let k = HostMac::new(&KEY);
        let c = Challenge {
            nonce,
            proof: t.listener_proof(&k).unwrap(),
        };
        (t, c, bytes[HEADER_LEN + Hello::LEN..].to_vec())
    }

    /// Reads frames with tags as the node does; returns how many had good
    /// tags before the first bad one, and whether one was bad.
    fn read_tagged(mut bytes: &[u8], t: &Transcript) -> (usize, bool) {
        let keys = SessionKeys::for_role(&HostMac::new(&KEY), t, Role::Listener).unwrap();
        let rx = HostTags::new(&keys.rx);
        let mut seq = 0;
        while bytes.len() >= HEADER_LEN {
            let Ok(h) = Header::decode(&bytes[..HEADER_LEN]) else {
                return (seq as usize, true);
            };
            let end = HEADER_LEN + h.frame_len();
            if bytes.len() < end + TAG_LEN {
                return (seq as usize, true);
            }
            let f = Frame {
                header: bytes[..HEADER_LEN].try_into().unwrap(),
                payload: bytes[HEADER_LEN..end].to_vec(),
            };
            if !auth::same(&tag(&rx, seq, &f), &bytes[end..end + TAG_LEN]) {
                return (seq as usize, true);
            }
            seq += 1;
            bytes = &bytes[end + TAG_LEN..];
        }
        (seq as usize, !bytes.is_empty())
    }

    /// Runs an insider case against the model listener: the dialer's
    /// proof must be right, and the tags as the case's name says.
    fn run(seed: u64) -> (&'static str, usize, bool, Vec<u8>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let k = HostMac::new(&KEY);
        let (script, name) = insider(&mut rng, ROUTE, &k);
        let (t, c, rest) = listen(&script.data, [seed as u8; NONCE_LEN]);
        assert!(rest.is_empty(), "an insider sends only its Hello first");
        let mut m = Memory::default();
        let a = (script.reply.unwrap())(&c, &mut m);
        assert_eq!(a.node_proof, Some(true));
        assert!(a.rx.is_some());
        let h = auth::handshake_header(
            &a.bytes[..HEADER_LEN],
            wire::MSG_AUTH_PROOF,
            NodeId(2),
            NodeId(0),
            Proof::LEN,
        )
        .unwrap();
        let proof = Proof::decode(&a.bytes[HEADER_LEN..HEADER_LEN + Proof::LEN]).unwrap();
        wire::verify(&h, &proof.0).unwrap();
        assert!(auth::same(&proof.0, &t.dialer_proof(&k).unwrap()));
        let (good, bad) = read_tagged(&a.bytes[HEADER_LEN + Proof::LEN..], &t);
        (name, good, bad, a.bytes)
    }

    #[test]
    fn insider_cases_complete_the_handshake_and_tag_as_named() {
        let mut seen = std::collections::BTreeSet::new();
        for seed in 0..400 {
            let (name, good, bad, _) = run(seed);
            seen.insert(name);
            match name {
                "good" => assert!(!bad && good > 0, "seed {seed}: {good} {bad}"),
                // A replayed, reordered or earlier connection's frame, or a
                // bad tag, fails the comparison.
                "bad-tag" | "replay" | "reorder" | "old-session" => {
                    assert!(bad, "seed {seed}: {name} passed")
                }
                // Damaged frames carry good tags; what the parser makes of
                // them comes after the comparison.
                _ => {}
            }
        }
        assert_eq!(seen.len(), 6, "{seen:?}");
    }

    #[test]
    fn insider_cases_replay_from_a_seed() {
        for seed in [1, 2, 3] {
            assert_eq!(run(seed).3, run(seed).3);
        }
    }

    #[test]
    fn a_wrong_node_proof_stops_the_insider() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let (script, _) = insider(&mut rng, ROUTE, &HostMac::new(&KEY));
        let (_, mut c, _) = listen(&script.data, [1; NONCE_LEN]);
        c.proof[0] ^= 1;
        let a = (script.reply.unwrap())(&c, &mut Memory::default());
        assert_eq!(a.node_proof, Some(false));
        assert!(a.bytes.is_empty());
    }

    #[test]
    fn auth_proof_and_bad_mac_never_prove() {
        let k = HostMac::new(&KEY);
        for seed in 0..300 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let key = (seed % 2 == 0).then_some(&k);
            let (script, name) = if seed % 3 == 0 {
                bad_mac(&mut rng, ROUTE, None)
            } else {
                auth_proof(&mut rng, ROUTE, key)
            };
            let (t, c, mut rest) = listen(&script.data, [7; NONCE_LEN]);
            if let Some(reply) = script.reply {
                let mut m = Memory {
                    node_proof: Some([3; MAC_LEN]),
                    ..Memory::default()
                };
                rest.extend(reply(&c, &mut m).bytes);
            }
            // Whatever follows the Hello is never the right proof.
            let right = t.dialer_proof(&k).unwrap();
            let proved = rest.len() >= HEADER_LEN + Proof::LEN
                && auth::handshake_header(
                    &rest[..HEADER_LEN],
                    wire::MSG_AUTH_PROOF,
                    NodeId(2),
                    NodeId(0),
                    Proof::LEN,
                )
                .is_ok()
                && rest[HEADER_LEN..HEADER_LEN + Proof::LEN] == right;
            assert!(!proved, "seed {seed}: {name} proved itself");
        }
    }

    #[test]
    fn mutated_frames_keep_length_and_payload_together() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        for _ in 0..500 {
            let mut frames = draw_frames(&mut rng, ROUTE, 1);
            let f = &mut frames[0];
            mutate_frame(&mut rng, f);
            let declared = u32::from_le_bytes(f.header[12..16].try_into().unwrap()) as usize;
            if declared <= MAX_FRAME_PAYLOAD {
                assert_eq!(f.payload.len(), declared);
            }
        }
    }
}
