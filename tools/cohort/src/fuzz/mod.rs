//! `cohort fuzz`: a rogue peer on the cluster's switch that attacks one
//! node's kmsg for a bounded time.
//!
//! The fuzzer plugs into the VDE switch the nodes are on (the only network
//! it can reach: the host's own network is never used), takes an address
//! no node has ([`ROGUE_IP`]), and runs a TCP/IP stack of its own
//! (smoltcp) to open connections to the target node's kmsg port. It only
//! ever connects to the addresses `cohort up` gave the nodes. Each *case*
//! is one kind of attack ([`Kind`]); the cases and every byte they send
//! come from a ChaCha8 generator seeded with `--seed`, so a seed names a
//! run (how many cases fit into `--duration` depends on the machine).
//!
//! kmsg authenticates its connections ([`auth`]): without the cluster key
//! the fuzzer only reaches the handshake (the Hello, then what the node
//! reads as the proof). With `--key` it completes the handshake as the
//! vacant node `--claim` names, checks the node's proof and the tags of
//! the node's frames, and reaches the frame parser behind the MAC.

mod auth;
mod cases;
mod vde;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::ValueEnum;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::socket::tcp;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr, Ipv4Address};

use cohort_proto::auth::{AuthMode, Challenge, Sequence, TAG_LEN};
use cohort_proto::wire::{self, Header, HEADER_LEN};

use crate::key::{self, HostMac, HostTags};
use crate::state::State;
use crate::{require_cluster, Fail};
use auth::{Memory, Reply};
use cases::{Route, Stream};

/// The fuzzer's address on the switch: in the nodes' subnet
/// (169.254.42.0/24, node N is .N+1), above any node's.
pub const ROGUE_IP: [u8; 4] = [169, 254, 42, 250];
/// Its MAC address (the nodes' are 52:54:00:c0:00:NN).
pub const ROGUE_MAC: [u8; 6] = [0x52, 0x54, 0x00, 0xc0, 0xff, 0xfa];

/// The kinds of attack.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub enum Kind {
    /// A connection that sends random bytes, then closes or resets.
    Random,
    /// Valid frames (often after a valid `Hello`), then damaged: bit
    /// flips, header fields set to edge values (checksum recomputed or
    /// not), huge declared sizes, truncation, inserted bytes, bursts.
    Mutated,
    /// A valid `Hello` claiming a node id (a real peer's too), then valid
    /// frames of any type, bogus request ids and replies to requests never
    /// made; the connection is held open a while.
    Hello,
    /// A valid frame cut short, then a reset, a close, or the rest
    /// trickled a byte at a time (slowloris).
    Truncated,
    /// Many connections at once, silent or with part of a header, held
    /// open, then reset.
    Flood,
    /// A valid Hello, then a proof that cannot be right (random, the
    /// node's own reflected, replayed, of another transcript), a proof
    /// truncated, cut short or with a bad header, or a frame in its place.
    AuthProof,
    /// Frames whose tags cannot be right: after a made-up proof, or (with
    /// --key) after a real handshake.
    BadMac,
    /// With --key and --claim: the handshake completed as the vacant node,
    /// then valid frames, damaged frames with good tags, bad tags, replays,
    /// reorders and frames of an earlier connection.
    Insider,
}

/// What `cohort fuzz` was asked to do.
pub struct FuzzConfig {
    pub node: u32,
    pub duration: Duration,
    pub seed: u64,
    pub kinds: Vec<Kind>,
    /// Node id to claim in frames (default: any, real peers' ids included).
    pub claim: Option<u16>,
    /// The cluster key's file: handshakes completed as `claim`.
    pub key: Option<PathBuf>,
    pub port: u16,
    pub flood: usize,
    pub progress: Duration,
}

/// Counts for one kind.
#[derive(Default)]
struct KindStats {
    cases: u64,
    conns: u64,
    established: u64,
    no_answer: u64,
    closed_by_node: u64,
    bytes: u64,
}

/// What the node answered on connections that waited for its Challenge.
#[derive(Default)]
struct HandshakeStats {
    /// Valid Challenges received.
    challenges: u64,
    /// Connections the node closed, or left silent, instead.
    no_challenge: u64,
    /// Handshakes completed with the key (the node's proof was right).
    completed: u64,
    /// Frames from the node whose tags were checked and right.
    node_frames: u64,
    /// What the node got wrong: a Challenge that is not one, a wrong
    /// proof, a frame with a wrong tag. Each one fails the run.
    node_errors: Vec<String>,
}

#[derive(Default)]
struct Stats {
    kinds: BTreeMap<Kind, KindStats>,
    mutations: BTreeMap<&'static str, u64>,
    /// Auth cases by name (and the choices their replies made).
    auth_cases: BTreeMap<&'static str, u64>,
    handshakes: HandshakeStats,
}

/// How a connection ends once its bytes are out and its hold time passed.
#[derive(Clone, Copy, PartialEq)]
pub enum Ending {
    Close,
    Reset,
}

/// What one connection of a case sends and how it ends.
pub struct Script {
    pub data: Vec<u8>,
    /// Send one byte per interval instead of all at once.
    pub trickle: Option<Duration>,
    /// How long to stay connected after the last byte went out.
    pub hold: Duration,
    pub ending: Ending,
    /// What to send once the node's Challenge is in (`data` being the
    /// Hello): the connection waits for it, up to [`CHALLENGE_TIMEOUT`].
    pub reply: Option<Reply>,
}

impl Script {
    fn blind(data: Vec<u8>, trickle: Option<Duration>, hold: Duration, ending: Ending) -> Script {
        Script {
            data,
            trickle,
            hold,
            ending,
            reply: None,
        }
    }
}

/// Checks the tags of the frames the node sends after a handshake.
struct RxCheck {
    mac: HostTags,
    seq: Sequence,
}

/// One scripted connection.
struct Conn {
    handle: SocketHandle,
    data: Vec<u8>,
    sent: usize,
    trickle: Option<Duration>,
    next_byte: Instant,
    hold: Duration,
    ending: Ending,
    done_at: Option<Instant>,
    established: bool,
    finished: bool,
    reply: Option<Reply>,
    /// When all of `data` was out while a reply waited for the Challenge.
    waiting_since: Option<Instant>,
    /// What the node sent that is still to be read: its Challenge, then
    /// (with `rx`) its frames.
    inbox: Vec<u8>,
    rx: Option<RxCheck>,
}

/// The TCP/IP stack on the switch.
struct Net {
    port: vde::VdePort,
    iface: Interface,
    sockets: SocketSet<'static>,
    next_local_port: u16,
}

/// When smoltcp's clock starts (it counts from an arbitrary origin).
fn now(origin: Instant) -> smoltcp::time::Instant {
    smoltcp::time::Instant::from_micros(origin.elapsed().as_micros() as i64)
}

impl Net {
    fn poll(&mut self, origin: Instant) -> Result<(), Fail> {
        self.port.pump().map_err(|e| Fail::new(1, e))?;
        self.iface
            .poll(now(origin), &mut self.port, &mut self.sockets);
        Ok(())
    }

    /// Opens a connection to `dst`; `None` if smoltcp refuses.
    fn connect(&mut self, dst: Ipv4Address, port: u16) -> Option<SocketHandle> {
        let socket = tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0; 64 * 1024]),
            tcp::SocketBuffer::new(vec![0; 256 * 1024]),
        );
        let handle = self.sockets.add(socket);
        self.next_local_port = if self.next_local_port >= 65000 {
            40000
        } else {
            self.next_local_port + 1
        };
        let local = self.next_local_port;
        let socket = self.sockets.get_mut::<tcp::Socket>(handle);
        if socket
            .connect(self.iface.context(), (IpAddress::Ipv4(dst), port), local)
            .is_err()
        {
            self.sockets.remove(handle);
            return None;
        }
        Some(handle)
    }
}

/// Runs the fuzzer against `cfg.node` of the cluster in `state`.
pub fn run(state: &State, cfg: &FuzzConfig) -> Result<(), Fail> {
    let cluster = require_cluster(state)?;
    if cfg.node >= cluster.nodes {
        return Err(Fail::new(
            1,
            format!(
                "node {} does not exist (the cluster has {} nodes)",
                cfg.node, cluster.nodes
            ),
        ));
    }
    if cfg.kinds.is_empty() {
        return Err(Fail::usage("no --kinds"));
    }
    let key = match &cfg.key {
        Some(path) => {
            let Some(claim) = cfg.claim else {
                return Err(Fail::usage(
                    "--key needs --claim: the vacant node id to complete handshakes as",
                ));
            };
            if u32::from(claim) <= cfg.node || u32::from(claim) >= cluster.nodes {
                return Err(Fail::usage(&format!(
                    "--claim {claim}: with --key, a node id above --node {} in a cluster of {} \
                     (the higher id dials)",
                    cfg.node, cluster.nodes
                )));
            }
            Some(HostMac::new(&key::read(path).map_err(|e| Fail::new(1, e))?))
        }
        None if cfg.kinds.contains(&Kind::Insider) => {
            return Err(Fail::usage("kind insider needs --key (and --claim)"));
        }
        None => None,
    };
    // What the Hellos announce: the cluster's mode, which `cohort up`
    // records by writing a key or not.
    let auth_mode = if state.path(key::KEY_FILE).exists() || key.is_some() {
        AuthMode::ChaChaPoly
    } else {
        AuthMode::None
    };
    // The only address the fuzzer ever sends to: the target node's, as
    // `cohort up` set it (up::node_ip), on the cluster's own switch.
    let target: Ipv4Address = crate::up::node_ip(cfg.node)
        .parse()
        .map_err(|e| Fail::new(1, format!("node {} has no address: {e}", cfg.node)))?;
    let nr_nodes = cluster.nodes as u16;

    let port = vde::VdePort::open(&state.switch_dir()).map_err(|e| Fail::new(1, e))?;
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let origin = Instant::now();
    let mut config = Config::new(HardwareAddress::Ethernet(EthernetAddress(ROGUE_MAC)));
    config.random_seed = cfg.seed;
    let mut port = port;
    let mut iface = Interface::new(config, &mut port, now(origin));
    iface.update_ip_addrs(|addrs| {
        let [a, b, c, d] = ROGUE_IP;
        let _ = addrs.push(IpCidr::new(IpAddress::v4(a, b, c, d), 24));
    });
    let mut net = Net {
        port,
        iface,
        sockets: SocketSet::new(vec![]),
        next_local_port: 40000 + rng.gen_range(0..20000),
    };

    println!(
        "[fuzz] seed {} node {} ({target}:{}) for {} s as {}.{}.{}.{}; kinds {:?}; {}",
        cfg.seed,
        cfg.node,
        cfg.port,
        cfg.duration.as_secs(),
        ROGUE_IP[0],
        ROGUE_IP[1],
        ROGUE_IP[2],
        ROGUE_IP[3],
        cfg.kinds,
        match (&key, cfg.claim) {
            (Some(_), Some(c)) => format!("holding the cluster key, as node {c}"),
            _ => format!("without the key (Hellos announce {})", auth_mode.as_str()),
        }
    );
    let mut stats = Stats::default();
    let mut memory = Memory::default();
    let end = origin + cfg.duration;
    let mut next_report = origin + cfg.progress;
    let target_id = cfg.node as u16;
    while Instant::now() < end {
        let kind = cfg.kinds[rng.gen_range(0..cfg.kinds.len())];
        let claim = match cfg.claim {
            Some(c) => c,
            // The handshake is only reached by a Hello from a node that
            // dials the target and is down (kmsg refuses a second
            // connection from a live peer before it challenges): mostly
            // one of those ids for the auth kinds, in case it is down.
            None if matches!(kind, Kind::AuthProof | Kind::BadMac)
                && target_id + 1 < nr_nodes
                && rng.gen_bool(0.8) =>
            {
                rng.gen_range(target_id + 1..nr_nodes)
            }
            None => rng.gen_range(0..nr_nodes + 2),
        };
        let route = Route {
            claim,
            target: target_id,
            nr_nodes,
            auth: auth_mode,
        };
        let conns = plan(&mut rng, kind, route, cfg.flood, key.as_ref(), &mut stats);
        let ctx = Case {
            origin,
            target,
            port: cfg.port,
            kind,
            route,
            end,
        };
        run_case(&mut net, &ctx, conns, &mut memory, &mut stats)?;
        if Instant::now() >= next_report {
            println!(
                "[fuzz] {:>4} s: {}",
                origin.elapsed().as_secs(),
                line(&stats)
            );
            next_report += cfg.progress;
        }
    }
    println!("[fuzz] done after {:.1} s", origin.elapsed().as_secs_f64());
    summary(&stats, &net);
    let errors = &stats.handshakes.node_errors;
    if !errors.is_empty() {
        return Err(Fail::new(
            1,
            format!(
                "node {} got the handshake or a tag wrong {} time(s); first: {}",
                cfg.node,
                errors.len(),
                errors[0]
            ),
        ));
    }
    Ok(())
}

/// The connections of one case.
type Plan = Vec<Script>;

fn ending(rng: &mut ChaCha8Rng) -> Ending {
    if rng.gen_bool(0.5) {
        Ending::Close
    } else {
        Ending::Reset
    }
}

fn ms(rng: &mut ChaCha8Rng, max: u64) -> Duration {
    Duration::from_millis(rng.gen_range(0..=max))
}

/// Draws the connections of one case of `kind`.
fn plan(
    rng: &mut ChaCha8Rng,
    kind: Kind,
    route: Route,
    flood: usize,
    key: Option<&HostMac>,
    stats: &mut Stats,
) -> Plan {
    let mut out = Plan::new();
    let auth_case = |(script, name): (Script, &'static str), out: &mut Plan, stats: &mut Stats| {
        *stats.auth_cases.entry(name).or_default() += 1;
        out.push(script);
    };
    match kind {
        Kind::AuthProof => auth_case(auth::auth_proof(rng, route, key), &mut out, stats),
        Kind::BadMac => auth_case(auth::bad_mac(rng, route, key), &mut out, stats),
        Kind::Insider => {
            // `run` refuses the kind without a key.
            if let Some(k) = key {
                auth_case(auth::insider(rng, route, k), &mut out, stats);
            }
        }
        Kind::Random => {
            let bytes = cases::random_bytes(rng, 1, 8192);
            out.push(Script::blind(bytes, None, ms(rng, 200), ending(rng)));
        }
        Kind::Mutated => {
            let mut s = if rng.gen_bool(0.6) {
                cases::hello(rng, route, route.nr_nodes)
            } else {
                Stream::default()
            };
            for _ in 0..rng.gen_range(1..=6) {
                cases::message(rng, route, &mut s);
            }
            for _ in 0..rng.gen_range(1..=3) {
                *stats
                    .mutations
                    .entry(cases::mutate(rng, &mut s))
                    .or_default() += 1;
            }
            out.push(Script::blind(s.bytes, None, ms(rng, 500), ending(rng)));
        }
        Kind::Hello => {
            let nr = if rng.gen_bool(0.9) {
                route.nr_nodes
            } else {
                rng.gen_range(1..=64)
            };
            let mut s = cases::hello(rng, route, nr);
            for _ in 0..rng.gen_range(0..=20) {
                cases::message(rng, route, &mut s);
            }
            out.push(Script::blind(s.bytes, None, ms(rng, 1500), ending(rng)));
        }
        Kind::Truncated => {
            let mut s = if rng.gen_bool(0.5) {
                cases::hello(rng, route, route.nr_nodes)
            } else {
                Stream::default()
            };
            cases::message(rng, route, &mut s);
            let cut = rng.gen_range(0..s.bytes.len().max(1));
            s.bytes.truncate(cut);
            match rng.gen_range(0..3) {
                0 => out.push(Script::blind(s.bytes, None, Duration::ZERO, Ending::Reset)),
                1 => out.push(Script::blind(s.bytes, None, Duration::ZERO, Ending::Close)),
                _ => {
                    // Slowloris: a byte every 400 ms for up to 3 s.
                    let every = Duration::from_millis(400);
                    s.bytes.truncate(8);
                    out.push(Script::blind(
                        s.bytes,
                        Some(every),
                        ms(rng, 1000),
                        Ending::Reset,
                    ));
                }
            }
        }
        Kind::Flood => {
            for _ in 0..flood {
                let bytes = if rng.gen_bool(0.5) {
                    Vec::new()
                } else {
                    let s = cases::hello(rng, route, route.nr_nodes);
                    let cut = rng.gen_range(1..wire_header_len());
                    s.bytes[..cut].to_vec()
                };
                out.push(Script::blind(bytes, None, ms(rng, 2000), Ending::Reset));
            }
        }
    }
    out
}

fn wire_header_len() -> usize {
    cohort_proto::wire::HEADER_LEN
}

/// How long a connection may take to be accepted.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(1500);
/// How long a connection waits for the node's Challenge once its Hello is
/// out (TCG is slow, and the node may be busy refusing other cases).
pub const CHALLENGE_TIMEOUT: Duration = Duration::from_millis(3000);

/// What every connection of a case shares.
struct Case {
    origin: Instant,
    target: Ipv4Address,
    port: u16,
    kind: Kind,
    route: Route,
    /// The end of the run.
    end: Instant,
}

/// Reads the node's Challenge from the front of `inbox`: `None` while it
/// is incomplete, `Some(Err)` if the first frame is not a well-formed
/// Challenge from the target to the claimed node.
fn take_challenge(inbox: &mut Vec<u8>, route: Route) -> Option<Result<Challenge, String>> {
    let len = HEADER_LEN + Challenge::LEN;
    if inbox.len() < HEADER_LEN {
        return None;
    }
    let header = match cohort_proto::auth::handshake_header(
        &inbox[..HEADER_LEN],
        wire::MSG_AUTH_CHALLENGE,
        cases::node(route.target),
        cases::node(route.claim),
        Challenge::LEN,
    ) {
        Ok(h) => h,
        Err(e) => {
            let h = Header::decode(&inbox[..HEADER_LEN]).map(|h| {
                format!(
                    "type {} from {} to {}, {} bytes",
                    h.msg_type(),
                    h.src().0,
                    h.dst().0,
                    h.total_len()
                )
            });
            return Some(Err(format!(
                "its answer to a Hello from node {} is not a Challenge ({}: {:?})",
                route.claim,
                e.as_str(),
                h
            )));
        }
    };
    if inbox.len() < len {
        return None;
    }
    let payload = &inbox[HEADER_LEN..len];
    let result = wire::verify(&header, payload)
        .and_then(|()| Challenge::decode(payload))
        .map_err(|e| {
            format!(
                "its Challenge to node {} is damaged: {}",
                route.claim,
                e.as_str()
            )
        });
    inbox.drain(..len);
    Some(result)
}

/// Checks the tags of the whole frames at the front of `inbox` and drops
/// them; an error names the first wrong one (the check then stops).
fn check_frames(inbox: &mut Vec<u8>, rx: &mut RxCheck, ok: &mut u64) -> Result<(), String> {
    while inbox.len() >= HEADER_LEN {
        let header = Header::decode(&inbox[..HEADER_LEN])
            .map_err(|e| format!("its frame header does not decode: {}", e.as_str()))?;
        let end = HEADER_LEN + header.frame_len();
        if inbox.len() < end + TAG_LEN {
            return Ok(());
        }
        let seq = rx.seq.advance().map_err(|e| e.as_str().to_string())?;
        let Ok(hdr) = <[u8; HEADER_LEN]>::try_from(&inbox[..HEADER_LEN]) else {
            return Ok(());
        };
        let want = rx.mac.tag(seq, &hdr, &inbox[HEADER_LEN..end]);
        if !cohort_proto::auth::same(&want, &inbox[end..end + TAG_LEN]) {
            return Err(format!(
                "its frame {seq} (type {}, {} bytes) has a wrong tag",
                header.msg_type(),
                header.frame_len()
            ));
        }
        *ok += 1;
        inbox.drain(..end + TAG_LEN);
    }
    Ok(())
}

/// Reads what the node sent on `c`: a Challenge a reply waits for (the
/// reply's bytes then join `c.data`), then frames whose tags are checked.
fn read_node(c: &mut Conn, route: Route, memory: &mut Memory, stats: &mut Stats) {
    if c.reply.is_some() {
        match take_challenge(&mut c.inbox, route) {
            None => return,
            Some(Err(e)) => {
                stats.handshakes.node_errors.push(e);
                c.reply = None;
                c.inbox.clear();
                return;
            }
            Some(Ok(challenge)) => {
                stats.handshakes.challenges += 1;
                let Some(reply) = c.reply.take() else {
                    return;
                };
                let answer = reply(&challenge, memory);
                if !answer.detail.is_empty() {
                    *stats.auth_cases.entry(answer.detail).or_default() += 1;
                }
                match answer.node_proof {
                    Some(true) => stats.handshakes.completed += 1,
                    Some(false) => stats.handshakes.node_errors.push(format!(
                        "its proof to node {} is wrong for the key held",
                        route.claim
                    )),
                    None => {}
                }
                c.data.extend(answer.bytes);
                c.rx = answer.rx.map(|mac| RxCheck {
                    mac,
                    seq: Sequence::new(),
                });
                c.waiting_since = None;
            }
        }
    }
    if let Some(rx) = &mut c.rx {
        if let Err(e) = check_frames(&mut c.inbox, rx, &mut stats.handshakes.node_frames) {
            stats.handshakes.node_errors.push(e);
            c.rx = None;
        }
    }
    if c.rx.is_none() {
        c.inbox.clear();
    }
}

/// Runs the connections of one case to their end (or the run's).
fn run_case(
    net: &mut Net,
    case: &Case,
    plan: Plan,
    memory: &mut Memory,
    stats: &mut Stats,
) -> Result<(), Fail> {
    let origin = case.origin;
    stats.kinds.entry(case.kind).or_default().cases += 1;
    let start = Instant::now();
    let mut conns = Vec::new();
    for script in plan {
        let Some(handle) = net.connect(case.target, case.port) else {
            continue;
        };
        stats.kinds.entry(case.kind).or_default().conns += 1;
        conns.push(Conn {
            handle,
            data: script.data,
            sent: 0,
            trickle: script.trickle,
            next_byte: start,
            hold: script.hold,
            ending: script.ending,
            done_at: None,
            established: false,
            finished: false,
            reply: script.reply,
            waiting_since: None,
            inbox: Vec::new(),
            rx: None,
        });
    }
    while conns.iter().any(|c| !c.finished) && Instant::now() < case.end {
        net.poll(origin)?;
        let t = Instant::now();
        for c in conns.iter_mut().filter(|c| !c.finished) {
            let s = net.sockets.get_mut::<tcp::Socket>(c.handle);
            let ks = stats.kinds.entry(case.kind).or_default();
            if !c.established {
                if s.may_send() {
                    c.established = true;
                    ks.established += 1;
                } else if !s.is_open() || t.duration_since(start) > CONNECT_TIMEOUT {
                    ks.no_answer += 1;
                    s.abort();
                    c.finished = true;
                    continue;
                } else {
                    continue;
                }
            }
            // What the node sends is kept while a reply waits for its
            // Challenge or its tags are checked, and thrown away otherwise.
            let keep = c.reply.is_some() || c.rx.is_some();
            while s.can_recv() {
                let got = s.recv(|b| {
                    if keep {
                        c.inbox.extend_from_slice(b);
                    }
                    (b.len(), ())
                });
                if got.is_err() {
                    break;
                }
            }
            if keep {
                read_node(c, case.route, memory, stats);
            }
            let ks = stats.kinds.entry(case.kind).or_default();
            let s = net.sockets.get_mut::<tcp::Socket>(c.handle);
            if !s.may_recv() || !s.is_open() {
                ks.closed_by_node += 1;
                if c.reply.take().is_some() {
                    stats.handshakes.no_challenge += 1;
                }
                s.abort();
                c.finished = true;
                continue;
            }
            if c.sent < c.data.len() {
                let chunk = match c.trickle {
                    Some(every) if t >= c.next_byte => {
                        c.next_byte = t + every;
                        &c.data[c.sent..c.sent + 1]
                    }
                    Some(_) => &c.data[c.sent..c.sent],
                    None => &c.data[c.sent..],
                };
                if let Ok(n) = s.send_slice(chunk) {
                    c.sent += n;
                    ks.bytes += n as u64;
                }
                continue;
            }
            if c.reply.is_some() {
                // The Hello is out; the rest waits for the Challenge.
                let since = *c.waiting_since.get_or_insert(t);
                if t.duration_since(since) < CHALLENGE_TIMEOUT {
                    continue;
                }
                c.reply = None;
                stats.handshakes.no_challenge += 1;
            }
            let done = *c.done_at.get_or_insert(t);
            if t.duration_since(done) >= c.hold {
                match c.ending {
                    Ending::Close => s.close(),
                    Ending::Reset => s.abort(),
                }
                c.finished = true;
            }
        }
        let delay = net
            .iface
            .poll_delay(now(origin), &net.sockets)
            .map(|d| Duration::from_micros(d.total_micros()))
            .unwrap_or(Duration::from_millis(5))
            .min(Duration::from_millis(5));
        std::thread::sleep(delay);
    }
    // Let closes and resets go out, then forget every socket.
    net.poll(origin)?;
    for c in &conns {
        net.sockets.get_mut::<tcp::Socket>(c.handle).abort();
    }
    net.poll(origin)?;
    for c in conns {
        net.sockets.remove(c.handle);
    }
    Ok(())
}

fn line(stats: &Stats) -> String {
    let mut parts: Vec<String> = stats
        .kinds
        .iter()
        .map(|(k, s)| format!("{} {}", name(*k), s.cases))
        .collect();
    let t = totals(stats);
    parts.push(format!(
        "| conns {} (accepted {}, closed by node {}, unanswered {})",
        t.conns, t.established, t.closed_by_node, t.no_answer
    ));
    let h = &stats.handshakes;
    if h.challenges + h.no_challenge > 0 {
        parts.push(format!(
            "| challenges {}, handshakes {}, node frames {}",
            h.challenges, h.completed, h.node_frames
        ));
    }
    parts.join(", ")
}

fn totals(stats: &Stats) -> KindStats {
    let mut t = KindStats::default();
    for s in stats.kinds.values() {
        t.cases += s.cases;
        t.conns += s.conns;
        t.established += s.established;
        t.no_answer += s.no_answer;
        t.closed_by_node += s.closed_by_node;
        t.bytes += s.bytes;
    }
    t
}

fn name(kind: Kind) -> String {
    kind.to_possible_value()
        .map(|v| v.get_name().to_string())
        .unwrap_or_default()
}

fn summary(stats: &Stats, net: &Net) {
    println!(
        "{:<10} {:>7} {:>7} {:>9} {:>10} {:>10} {:>10}",
        "kind", "cases", "conns", "accepted", "unanswered", "closed-by", "bytes"
    );
    let row = |n: &str, s: &KindStats| {
        println!(
            "{:<10} {:>7} {:>7} {:>9} {:>10} {:>10} {:>10}",
            n, s.cases, s.conns, s.established, s.no_answer, s.closed_by_node, s.bytes
        );
    };
    for (k, s) in &stats.kinds {
        row(&name(*k), s);
    }
    row("total", &totals(stats));
    if !stats.mutations.is_empty() {
        let m: Vec<String> = stats
            .mutations
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        println!("mutations: {}", m.join(", "));
    }
    if !stats.auth_cases.is_empty() {
        let m: Vec<String> = stats
            .auth_cases
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        println!("auth cases: {}", m.join(", "));
    }
    let h = &stats.handshakes;
    if h.challenges + h.no_challenge > 0 {
        println!(
            "handshakes: {} challenges received, {} connections closed or silent instead; \
             {} completed with the key; {} frames of the node with good tags; {} node errors",
            h.challenges,
            h.no_challenge,
            h.completed,
            h.node_frames,
            h.node_errors.len()
        );
        for e in h.node_errors.iter().take(10) {
            println!("node error: {e}");
        }
    }
    println!(
        "ethernet frames: {} sent, {} received",
        net.port.frames_out, net.port.frames_in
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use cohort_proto::auth::{handshake_envelope, Role, SessionKeys, Transcript};
    use cohort_proto::node::NodeId;
    use cohort_proto::wire::{Envelope, Fragmenter};

    const ROUTE: Route = Route {
        claim: 2,
        target: 0,
        nr_nodes: 3,
        auth: AuthMode::ChaChaPoly,
    };

    fn frame(env: Envelope, payload: &[u8]) -> Vec<u8> {
        let mut f = Fragmenter::new(env, payload).unwrap();
        let mut h = [0u8; HEADER_LEN];
        let part = f.next_frame(&mut h).unwrap();
        let mut v = h.to_vec();
        v.extend_from_slice(part);
        v
    }

    fn challenge_frame(src: u8, dst: u8, ty: u16) -> Vec<u8> {
        let c = Challenge {
            nonce: [5; 32],
            proof: [6; 32],
        };
        let mut p = [0u8; Challenge::LEN];
        c.encode(&mut p).unwrap();
        frame(handshake_envelope(ty, NodeId(src), NodeId(dst)), &p)
    }

    #[test]
    fn the_nodes_challenge_is_read_whole_and_checked() {
        let good = challenge_frame(0, 2, wire::MSG_AUTH_CHALLENGE);
        let mut inbox = good[..50].to_vec();
        assert!(take_challenge(&mut inbox, ROUTE).is_none());
        inbox.extend_from_slice(&good[50..]);
        inbox.extend_from_slice(b"next");
        let c = take_challenge(&mut inbox, ROUTE).unwrap().unwrap();
        assert_eq!((c.nonce, c.proof), ([5; 32], [6; 32]));
        assert_eq!(inbox, b"next");
        // Another type, another destination, a damaged checksum.
        for bad in [
            challenge_frame(0, 2, wire::MSG_AUTH_PROOF),
            challenge_frame(0, 1, wire::MSG_AUTH_CHALLENGE),
            {
                let mut b = good.clone();
                b[HEADER_LEN + 3] ^= 1;
                b
            },
        ] {
            let mut inbox = bad;
            assert!(take_challenge(&mut inbox, ROUTE).unwrap().is_err());
        }
    }

    #[test]
    fn the_nodes_tags_are_checked_in_sequence() {
        let k = HostMac::new(&[9; 32]);
        let t = Transcript::new(NodeId(0), &[1; 48], &[2; 32]);
        let node = SessionKeys::for_role(&k, &t, Role::Listener).unwrap();
        let fuzzer = SessionKeys::for_role(&k, &t, Role::Dialer).unwrap();
        let tx = HostTags::new(&node.tx);
        let mut stream = vec![];
        for seq in 0..3u64 {
            let f = frame(
                Envelope::new(wire::MSG_HEARTBEAT, NodeId(0), NodeId(2), 0),
                &[seq as u8; 16],
            );
            let (h, p) = f.split_at(HEADER_LEN);
            let tag = tx.tag(seq, h.try_into().unwrap(), p);
            stream.extend_from_slice(&f);
            stream.extend_from_slice(&tag);
        }
        let rx = || RxCheck {
            mac: HostTags::new(&fuzzer.rx),
            seq: Sequence::new(),
        };
        // Byte by byte or whole, the three frames check.
        let mut ok = 0;
        let mut r = rx();
        let mut inbox = vec![];
        for b in &stream {
            inbox.push(*b);
            check_frames(&mut inbox, &mut r, &mut ok).unwrap();
        }
        assert_eq!((ok, inbox.len()), (3, 0));
        // A flipped tag bit, or a frame dropped, is a wrong tag.
        let mut bad = stream.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        let mut ok = 0;
        assert!(check_frames(&mut bad, &mut rx(), &mut ok).is_err());
        assert_eq!(ok, 2);
        let one = HEADER_LEN + 16 + TAG_LEN;
        let mut skipped = stream[one..].to_vec();
        assert!(check_frames(&mut skipped, &mut rx(), &mut 0).is_err());
    }
}
