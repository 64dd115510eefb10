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

mod cases;
mod vde;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use clap::ValueEnum;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::socket::tcp;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr, Ipv4Address};

use crate::state::State;
use crate::{require_cluster, Fail};
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
}

/// What `cohort fuzz` was asked to do.
pub struct FuzzConfig {
    pub node: u32,
    pub duration: Duration,
    pub seed: u64,
    pub kinds: Vec<Kind>,
    /// Node id to claim in frames (default: any, real peers' ids included).
    pub claim: Option<u16>,
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

#[derive(Default)]
struct Stats {
    kinds: BTreeMap<Kind, KindStats>,
    mutations: BTreeMap<&'static str, u64>,
}

/// How a connection ends once its bytes are out and its hold time passed.
#[derive(Clone, Copy, PartialEq)]
enum Ending {
    Close,
    Reset,
}

/// One scripted connection.
struct Conn {
    handle: SocketHandle,
    data: Vec<u8>,
    sent: usize,
    /// Send one byte per interval instead of all at once.
    trickle: Option<Duration>,
    next_byte: Instant,
    /// How long to stay connected after the last byte went out.
    hold: Duration,
    ending: Ending,
    done_at: Option<Instant>,
    established: bool,
    finished: bool,
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
        "[fuzz] seed {} node {} ({target}:{}) for {} s as {}.{}.{}.{}; kinds {:?}",
        cfg.seed,
        cfg.node,
        cfg.port,
        cfg.duration.as_secs(),
        ROGUE_IP[0],
        ROGUE_IP[1],
        ROGUE_IP[2],
        ROGUE_IP[3],
        cfg.kinds
    );
    let mut stats = Stats::default();
    let end = origin + cfg.duration;
    let mut next_report = origin + cfg.progress;
    while Instant::now() < end {
        let kind = cfg.kinds[rng.gen_range(0..cfg.kinds.len())];
        let route = Route {
            claim: cfg.claim.unwrap_or_else(|| rng.gen_range(0..nr_nodes + 2)),
            target: cfg.node as u16,
            nr_nodes,
        };
        let conns = plan(&mut rng, kind, route, cfg.flood, &mut stats);
        run_case(
            &mut net, origin, target, cfg.port, kind, conns, end, &mut stats,
        )?;
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
    Ok(())
}

/// The connections of one case, as (bytes, trickle, hold, ending).
type Plan = Vec<(Vec<u8>, Option<Duration>, Duration, Ending)>;

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
fn plan(rng: &mut ChaCha8Rng, kind: Kind, route: Route, flood: usize, stats: &mut Stats) -> Plan {
    let mut out = Plan::new();
    match kind {
        Kind::Random => {
            let bytes = cases::random_bytes(rng, 1, 8192);
            out.push((bytes, None, ms(rng, 200), ending(rng)));
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
            out.push((s.bytes, None, ms(rng, 500), ending(rng)));
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
            out.push((s.bytes, None, ms(rng, 1500), ending(rng)));
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
                0 => out.push((s.bytes, None, Duration::ZERO, Ending::Reset)),
                1 => out.push((s.bytes, None, Duration::ZERO, Ending::Close)),
                _ => {
                    // Slowloris: a byte every 400 ms for up to 3 s.
                    let every = Duration::from_millis(400);
                    s.bytes.truncate(8);
                    out.push((s.bytes, Some(every), ms(rng, 1000), Ending::Reset));
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
                out.push((bytes, None, ms(rng, 2000), Ending::Reset));
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

/// Runs the connections of one case to their end (or the run's).
#[allow(clippy::too_many_arguments)]
fn run_case(
    net: &mut Net,
    origin: Instant,
    target: Ipv4Address,
    port: u16,
    kind: Kind,
    plan: Plan,
    end: Instant,
    stats: &mut Stats,
) -> Result<(), Fail> {
    let ks = stats.kinds.entry(kind).or_default();
    ks.cases += 1;
    let start = Instant::now();
    let mut conns = Vec::new();
    for (data, trickle, hold, ending) in plan {
        let Some(handle) = net.connect(target, port) else {
            continue;
        };
        ks.conns += 1;
        conns.push(Conn {
            handle,
            data,
            sent: 0,
            trickle,
            next_byte: start,
            hold,
            ending,
            done_at: None,
            established: false,
            finished: false,
        });
    }
    while conns.iter().any(|c| !c.finished) && Instant::now() < end {
        net.poll(origin)?;
        let t = Instant::now();
        for c in conns.iter_mut().filter(|c| !c.finished) {
            let s = net.sockets.get_mut::<tcp::Socket>(c.handle);
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
            // Whatever the node sends is read and thrown away.
            while s.can_recv() {
                if s.recv(|b| (b.len(), ())).is_err() {
                    break;
                }
            }
            if !s.may_recv() || !s.is_open() {
                ks.closed_by_node += 1;
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
    println!(
        "ethernet frames: {} sent, {} received",
        net.port.frames_out, net.port.frames_in
    );
}
