//! `cohort bench`: benchmarks run on two nodes of a cluster, each run
//! appended as a JSON record to a JSON Lines file ([`record`]) and drawn as
//! the history of its ratios ([`plot`]).
//!
//! - `cohort bench kmsg`: kmsg's round trip (its link-thread ping, and a
//!   request through the hub's message API as popcorn makes them) and its
//!   throughput against a user-space TCP ping-pong and stream (tcpbench)
//!   on the same two nodes.
//! - `cohort bench migrate`: migbench (migration, remote faults, and a
//!   migration followed by reading the whole working set) on the same two
//!   nodes.
//! - `cohort bench auth`: kmsg's round trips and throughput with and
//!   without authentication, on the same two nodes ([`auth`]).
//! - `cohort bench transport`: kmsg over shared memory, kmsg over TCP and
//!   user-space TCP, on the same two nodes ([`transport`]).
//! - `cohort bench plot`: one SVG per JSON Lines file.
//!
//! A measurement that cannot run is an error (exit status 1); a ratio
//! missing its target is printed and recorded as MISS, not an error.

pub mod auth;
mod plot;
mod record;
pub mod transport;

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use crate::state::State;
use crate::up::node_ip;
use crate::{capture, running_node, Fail};
use record::{Measure, Meta, Ratio, Record, Target};

/// Bytes a kmsg ping carries; the TCP ping-pong uses the same size.
pub const PING_SIZE: u64 = 8;
/// kmsg's RTT may be at most this many times user-space TCP's.
pub const RTT_TARGET: f64 = 1.2;
/// kmsg's throughput must be at least this many times user-space TCP's.
pub const THROUGHPUT_TARGET: f64 = 0.8;

const KMSG_KO: &str = "/lib/modules/cohort/kmsg.ko";
const KMSG_DEBUGFS: &str = "/sys/kernel/debug/kmsg";
const POPCORN_KO: &str = "/lib/modules/cohort/popcorn.ko";
/// How long the two nodes get to see each other up.
const MESH_WAIT: Duration = Duration::from_secs(30);
/// Per command run in a node.
const STEP_TIMEOUT_S: u64 = 600;

pub struct BenchConfig {
    pub a: u32,
    pub b: u32,
    pub count: u64,
    pub bytes: u64,
    pub reps: usize,
    pub port: u16,
    pub out: PathBuf,
}

/// `A,B`: two different node numbers.
pub fn parse_pair(s: &str) -> Result<(u32, u32), String> {
    let bad = || format!("--nodes wants two different nodes A,B, not {s:?}");
    let (a, b) = s.split_once(',').ok_or_else(bad)?;
    let a: u32 = a.trim().parse().map_err(|_| bad())?;
    let b: u32 = b.trim().parse().map_err(|_| bad())?;
    if a == b {
        return Err(bad());
    }
    Ok((a, b))
}

/// The `key=value` pairs of the last line of `text` that has any.
pub fn parse_kv(text: &str) -> Vec<(String, String)> {
    let Some(line) = text.lines().rev().find(|l| l.contains('=')) else {
        return vec![];
    };
    line.split_whitespace()
        .filter_map(|w| w.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The value of `key` in pairs from `parse_kv`, as u64.
pub fn kv_u64(kv: &[(String, String)], key: &str) -> Option<u64> {
    kv.iter().find(|(k, _)| k == key)?.1.parse().ok()
}

pub fn kv_str<'a>(kv: &'a [(String, String)], key: &str) -> Option<&'a str> {
    kv.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// Median of the samples (mean of the two middle ones for an even count).
pub fn median(samples: &[f64]) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    let mut v = samples.to_vec();
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    })
}

/// kmsg / tcp, or None if tcp is zero.
pub fn ratio(kmsg: f64, tcp: f64) -> Option<f64> {
    (tcp > 0.0).then(|| kmsg / tcp)
}

/// PASS or MISS for a ratio against its target.
pub fn verdict(ratio: Option<f64>, target: f64, at_most: bool) -> &'static str {
    match ratio {
        Some(r) if at_most && r <= target => "PASS",
        Some(r) if !at_most && r >= target => "PASS",
        _ => "MISS",
    }
}

/// One node's view of a peer, from a line of debugfs `kmsg/peers`.
#[derive(Debug, PartialEq, Eq)]
pub struct Peer {
    pub id: u32,
    pub state: String,
    pub ip: String,
}

/// The peer lines of a `peers` file (the `#` header and junk skipped).
pub fn parse_peers(text: &str) -> Vec<Peer> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let id = w.next()?.parse().ok()?;
            let state = w.next()?.to_string();
            let ip = w.next()?.to_string();
            Some(Peer { id, state, ip })
        })
        .collect()
}

/// Bytes per second from a byte count and nanoseconds.
pub fn rate(bytes: u64, ns: u64) -> f64 {
    if ns == 0 {
        0.0
    } else {
        bytes as f64 * 1e9 / ns as f64
    }
}

/// Human-readable bytes: `32 MiB`, `1536 B`.
pub fn size_str(b: u64) -> String {
    if b >= 1 << 20 && b.is_multiple_of(1 << 20) {
        format!("{} MiB", b >> 20)
    } else if b >= 1 << 10 && b.is_multiple_of(1 << 10) {
        format!("{} KiB", b >> 10)
    } else {
        format!("{b} B")
    }
}

/// The medians and what they make.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub tcp_rtt_ns: f64,
    pub kmsg_rtt_ns: f64,
    pub hreq_rtt_ns: f64,
    pub tcp_bps: f64,
    pub kmsg_bps: f64,
}

impl Summary {
    /// kmsg's link-thread ping against TCP.
    pub fn rtt_ratio(&self) -> Option<f64> {
        ratio(self.kmsg_rtt_ns, self.tcp_rtt_ns)
    }

    /// A request through the hub (as popcorn's) against TCP.
    pub fn hreq_ratio(&self) -> Option<f64> {
        ratio(self.hreq_rtt_ns, self.tcp_rtt_ns)
    }

    pub fn throughput_ratio(&self) -> Option<f64> {
        ratio(self.kmsg_bps, self.tcp_bps)
    }

    pub fn rtt_verdict(&self) -> &'static str {
        verdict(self.rtt_ratio(), RTT_TARGET, true)
    }

    pub fn hreq_verdict(&self) -> &'static str {
        verdict(self.hreq_ratio(), RTT_TARGET, true)
    }

    pub fn throughput_verdict(&self) -> &'static str {
        verdict(self.throughput_ratio(), THROUGHPUT_TARGET, false)
    }
}

/// Every sample, per kind, in run order.
#[derive(Debug, Default, Clone)]
pub struct Samples {
    pub tcp_rtt_ns: Vec<f64>,
    pub kmsg_rtt_ns: Vec<f64>,
    pub hreq_rtt_ns: Vec<f64>,
    pub tcp_bps: Vec<f64>,
    pub kmsg_bps: Vec<f64>,
}

impl Samples {
    pub fn summary(&self) -> Option<Summary> {
        Some(Summary {
            tcp_rtt_ns: median(&self.tcp_rtt_ns)?,
            kmsg_rtt_ns: median(&self.kmsg_rtt_ns)?,
            hreq_rtt_ns: median(&self.hreq_rtt_ns)?,
            tcp_bps: median(&self.tcp_bps)?,
            kmsg_bps: median(&self.kmsg_bps)?,
        })
    }
}

fn fmt_ratio(r: Option<f64>) -> String {
    r.map_or_else(|| "n/a".to_string(), |r| format!("{r:.3}"))
}

/// A measure from its samples: their median, and each of them.
fn measure_of(name: &str, unit: &str, reps: &[f64]) -> Measure {
    Measure {
        name: name.into(),
        unit: unit.into(),
        value: median(reps).unwrap_or(0.0),
        reps: reps.to_vec(),
    }
}

/// Ratio groups of `cohort bench kmsg`, as the plot's panels.
const KMSG_RTT_GROUP: &str = "round trip: kmsg / user-space TCP (target <= 1.2)";
const KMSG_TPUT_GROUP: &str = "throughput: kmsg / user-space TCP (target >= 0.8)";

/// The JSON record of a `cohort bench kmsg` run.
pub fn kmsg_record(cfg: &BenchConfig, meta: Meta, s: &Samples, m: &Summary) -> Record {
    let mut r = Record::new("kmsg", meta, [cfg.a, cfg.b]);
    r.params.insert("count".into(), cfg.count);
    r.params.insert("ping_size".into(), PING_SIZE);
    r.params.insert("bytes".into(), cfg.bytes);
    r.params.insert("reps".into(), cfg.reps as u64);
    r.measures = vec![
        measure_of("tcp_rtt", "ns", &s.tcp_rtt_ns),
        measure_of("kmsg_ping_rtt", "ns", &s.kmsg_rtt_ns),
        measure_of("kmsg_hreq_rtt", "ns", &s.hreq_rtt_ns),
        measure_of("tcp_throughput", "B/s", &s.tcp_bps),
        measure_of("kmsg_throughput", "B/s", &s.kmsg_bps),
    ];
    let rtt = Some(Target::at_most(RTT_TARGET));
    r.ratios = vec![
        Ratio::new(
            KMSG_RTT_GROUP,
            "rtt_ping",
            "kmsg_ping_rtt / tcp_rtt",
            m.kmsg_rtt_ns,
            m.tcp_rtt_ns,
            rtt.clone(),
        ),
        Ratio::new(
            KMSG_RTT_GROUP,
            "rtt_hreq",
            "kmsg_hreq_rtt / tcp_rtt",
            m.hreq_rtt_ns,
            m.tcp_rtt_ns,
            rtt,
        ),
        Ratio::new(
            KMSG_TPUT_GROUP,
            "throughput",
            "kmsg_throughput / tcp_throughput",
            m.kmsg_bps,
            m.tcp_bps,
            Some(Target::at_least(THROUGHPUT_TARGET)),
        ),
    ];
    r
}

/// The table printed at the end.
pub fn render_table(cfg: &BenchConfig, m: &Summary) -> String {
    let us = |ns: f64| format!("{:.1} us", ns / 1000.0);
    let mbs = |bps: f64| format!("{:.1} MB/s", bps / 1e6);
    let mut o = String::new();
    let _ = writeln!(
        o,
        "kmsg vs user-space TCP, node {} -> node {}, median of {} runs each",
        cfg.a, cfg.b, cfg.reps
    );
    let _ = writeln!(
        o,
        "{:<34} {:>12} {:>12} {:>9} {:>8}  result",
        "", "user TCP", "kmsg", "kmsg/tcp", "target"
    );
    let mut row = |what: String, tcp: String, kmsg: String, r: Option<f64>, t: String, v: &str| {
        let _ = writeln!(
            o,
            "{what:<34} {tcp:>12} {kmsg:>12} {:>9} {t:>8}  {v}",
            fmt_ratio(r)
        );
    };
    row(
        format!("round trip, ping ({PING_SIZE} B, x{})", cfg.count),
        us(m.tcp_rtt_ns),
        us(m.kmsg_rtt_ns),
        m.rtt_ratio(),
        format!("<= {RTT_TARGET}"),
        m.rtt_verdict(),
    );
    row(
        format!("round trip, hub ({PING_SIZE} B, x{})", cfg.count),
        us(m.tcp_rtt_ns),
        us(m.hreq_rtt_ns),
        m.hreq_ratio(),
        format!("<= {RTT_TARGET}"),
        m.hreq_verdict(),
    );
    row(
        format!("throughput ({})", size_str(cfg.bytes)),
        mbs(m.tcp_bps),
        mbs(m.kmsg_bps),
        m.throughput_ratio(),
        format!(">= {THROUGHPUT_TARGET}"),
        m.throughput_verdict(),
    );
    let _ = writeln!(
        o,
        "rtt kmsg/tcp = {} (target <= {RTT_TARGET}): {}",
        fmt_ratio(m.rtt_ratio()),
        m.rtt_verdict()
    );
    let _ = writeln!(
        o,
        "rtt through the hub kmsg/tcp = {} (target <= {RTT_TARGET}): {}",
        fmt_ratio(m.hreq_ratio()),
        m.hreq_verdict()
    );
    let _ = writeln!(
        o,
        "throughput kmsg/tcp = {} (target >= {THROUGHPUT_TARGET}): {}",
        fmt_ratio(m.throughput_ratio()),
        m.throughput_verdict()
    );
    o
}

/// Run `cmd` in `node`; fail unless it exits 0. Returns its output.
fn run_ok(state: &State, node: u32, what: &str, cmd: &str) -> Result<String, Fail> {
    let (status, out) = capture(state, node, cmd, STEP_TIMEOUT_S)?;
    if status != 0 {
        return Err(Fail::new(
            1,
            format!(
                "node {node}: {what} failed (exit {status}):\n{}",
                out.trim_end()
            ),
        ));
    }
    Ok(out)
}

/// Run a measurement command and return its result pairs; the command's
/// output must end with a result line whose `key` is a positive number,
/// and no `error=`.
fn measure(
    state: &State,
    node: u32,
    what: &str,
    cmd: &str,
    key: &str,
) -> Result<Vec<(String, String)>, Fail> {
    let (status, out) = capture(state, node, cmd, STEP_TIMEOUT_S)?;
    let kv = parse_kv(&out);
    if status != 0 || kv_str(&kv, "error").is_some() || kv_u64(&kv, key).is_none_or(|v| v == 0) {
        return Err(Fail::new(
            1,
            format!(
                "node {node}: {what} failed (exit {status}):\n{}",
                out.trim_end()
            ),
        ));
    }
    Ok(kv)
}

fn ensure_kmsg(state: &State, node: u32) -> Result<(), Fail> {
    let cmd = format!("[ -e {KMSG_DEBUGFS}/params ] || insmod {KMSG_KO}");
    run_ok(state, node, "loading kmsg", &cmd).map(|_| ())
}

/// The shell text that reloads kmsg with hub parameters set: unload it
/// (retried while it is busy, 10 s at most), write each `(file, value)`,
/// and load it again.
pub fn reload_command(params: &[(&str, &str)]) -> String {
    let mut cmd = String::from(
        "i=0; while grep -q '^kmsg ' /proc/modules; do \
           rmmod kmsg 2>/tmp/bench-rmmod.err && break; i=$((i + 1)); \
           [ $i -ge 50 ] && { cat /tmp/bench-rmmod.err; exit 1; }; sleep 0.2; \
         done; ",
    );
    for (file, value) in params {
        let _ = write!(cmd, "echo {value} >{file} || exit 1; ");
    }
    let _ = write!(cmd, "insmod {KMSG_KO} || {{ dmesg | tail -n 5; exit 1; }}");
    cmd
}

/// Wait until `node`'s kmsg shows `peer` up.
fn wait_peer_up(state: &State, node: u32, peer: u32) -> Result<(), Fail> {
    let start = Instant::now();
    loop {
        let out = run_ok(
            state,
            node,
            "reading kmsg peers",
            &format!("cat {KMSG_DEBUGFS}/peers"),
        )?;
        let peers = parse_peers(&out);
        if peers.iter().any(|p| p.id == peer && p.state == "up") {
            return Ok(());
        }
        if start.elapsed() >= MESH_WAIT {
            return Err(Fail::new(
                1,
                format!(
                    "node {node}: kmsg does not show node {peer} up after {} s:\n{}",
                    MESH_WAIT.as_secs(),
                    out.trim_end()
                ),
            ));
        }
        thread::sleep(Duration::from_millis(500));
    }
}

/// Where and when: the kernel release of `node`, this host, the tree.
fn run_meta(state: &State, node: u32) -> Result<Meta, Fail> {
    let release = run_ok(state, node, "uname -r", "uname -r")?;
    Ok(Meta::collect(&release))
}

/// Appends `record` to `out` and says so.
fn save(out: &Path, record: &Record) -> Result<(), Fail> {
    record::append(out, record).map_err(|e| Fail::new(1, e))?;
    println!("[bench] record appended to {}", out.display());
    Ok(())
}

struct Runner<'a> {
    state: &'a State,
    cfg: &'a BenchConfig,
    ip_b: String,
}

impl Runner<'_> {
    fn tcp_rtt(&self, count: u64) -> Result<f64, Fail> {
        let c = self.cfg;
        let cmd = format!(
            "tcpbench pingpong {} {} {count} {PING_SIZE}",
            self.ip_b, c.port
        );
        let kv = measure(self.state, c.a, "tcpbench pingpong", &cmd, "avg_ns")?;
        Ok(kv_u64(&kv, "avg_ns").unwrap_or(0) as f64)
    }

    /// Round trips through kmsg's debugfs `file`: `ping` (link thread) or
    /// `hreq` (the hub's request API).
    fn kmsg_rtt(&self, file: &str, count: u64) -> Result<f64, Fail> {
        let c = self.cfg;
        let cmd = format!(
            "echo '{} {count}' >{KMSG_DEBUGFS}/{file}; r=$?; cat {KMSG_DEBUGFS}/{file}; exit $r",
            c.b
        );
        let kv = measure(self.state, c.a, &format!("kmsg {file}"), &cmd, "avg_ns")?;
        Ok(kv_u64(&kv, "avg_ns").unwrap_or(0) as f64)
    }

    fn tcp_bps(&self, bytes: u64) -> Result<f64, Fail> {
        let c = self.cfg;
        let cmd = format!("tcpbench stream {} {} {bytes}", self.ip_b, c.port);
        let kv = measure(self.state, c.a, "tcpbench stream", &cmd, "total_ns")?;
        Ok(rate(
            kv_u64(&kv, "bytes").unwrap_or(0),
            kv_u64(&kv, "total_ns").unwrap_or(0),
        ))
    }

    /// Request/reply throughput of user-space TCP: COUNT round trips of
    /// SIZE-byte messages (tcpbench's ping-pong), SIZE × COUNT bytes per
    /// second (each payload counted once).
    fn tcp_echo_bps(&self, size: u64, count: u64) -> Result<f64, Fail> {
        let c = self.cfg;
        let cmd = format!("tcpbench pingpong {} {} {count} {size}", self.ip_b, c.port);
        let kv = measure(self.state, c.a, "tcpbench pingpong", &cmd, "total_ns")?;
        Ok(rate(size * count, kv_u64(&kv, "total_ns").unwrap_or(0)))
    }

    /// Request/reply throughput of kmsg: COUNT echo requests of SIZE bytes
    /// through the hub (debugfs `echo`), counted as [`Self::tcp_echo_bps`].
    fn kmsg_echo_bps(&self, size: u64, count: u64) -> Result<f64, Fail> {
        let c = self.cfg;
        let cmd = format!(
            "echo '{} {size} {count}' >{KMSG_DEBUGFS}/echo; r=$?; cat {KMSG_DEBUGFS}/echo; exit $r",
            c.b
        );
        let kv = measure(self.state, c.a, "kmsg echo", &cmd, "total_ns")?;
        Ok(rate(size * count, kv_u64(&kv, "total_ns").unwrap_or(0)))
    }

    fn kmsg_bps(&self, bytes: u64) -> Result<f64, Fail> {
        let c = self.cfg;
        let cmd = format!(
            "echo '{} {bytes}' >{KMSG_DEBUGFS}/stream; r=$?; cat {KMSG_DEBUGFS}/stream; exit $r",
            c.b
        );
        let kv = measure(self.state, c.a, "kmsg stream", &cmd, "total_ns")?;
        Ok(rate(
            kv_u64(&kv, "bytes").unwrap_or(0),
            kv_u64(&kv, "total_ns").unwrap_or(0),
        ))
    }
}

const SERVER_PID: &str = "/tmp/tcpbench-server.pid";

fn start_server(state: &State, node: u32, port: u16) -> Result<(), Fail> {
    let cmd = format!(
        "[ -f {SERVER_PID} ] && kill $(cat {SERVER_PID}) 2>/dev/null && sleep 0.3; \
         tcpbench server {port} </dev/null >/tmp/tcpbench-server.log 2>&1 & \
         echo $! >{SERVER_PID}; sleep 0.3; \
         kill -0 $(cat {SERVER_PID}) || {{ cat /tmp/tcpbench-server.log; exit 1; }}"
    );
    run_ok(state, node, "starting tcpbench server", &cmd).map(|_| ())
}

fn stop_server(state: &State, node: u32) {
    let cmd = format!("[ -f {SERVER_PID} ] && kill $(cat {SERVER_PID}); rm -f {SERVER_PID}");
    let _ = capture(state, node, &cmd, 30);
}

pub fn kmsg(state: &State, cfg: &BenchConfig) -> Result<(), Fail> {
    if cfg.count == 0 || cfg.bytes == 0 || cfg.reps == 0 {
        return Err(Fail::usage(
            "--count, --bytes and --reps must be at least 1",
        ));
    }
    running_node(state, cfg.a).map_err(|f| Fail::new(1, f.msg))?;
    running_node(state, cfg.b).map_err(|f| Fail::new(1, f.msg))?;
    let (a, b) = (cfg.a, cfg.b);
    run_ok(state, a, "looking for tcpbench", "command -v tcpbench")?;

    println!("[bench] loading kmsg on nodes {a} and {b} (if needed)");
    ensure_kmsg(state, a)?;
    ensure_kmsg(state, b)?;
    wait_peer_up(state, a, b)?;
    wait_peer_up(state, b, a)?;
    println!("[bench] kmsg: nodes {a} and {b} see each other up");

    start_server(state, b, cfg.port)?;
    let r = Runner {
        state,
        cfg,
        ip_b: node_ip(b),
    };
    let result = run_reps(&r);
    stop_server(state, b);
    let samples = result?;
    let Some(m) = samples.summary() else {
        return Err(Fail::new(1, "no samples".into()));
    };
    print!("{}", render_table(cfg, &m));
    let record = kmsg_record(cfg, run_meta(state, a)?, &samples, &m);
    save(&cfg.out, &record)
}

/// The three round trips of a repetition, in the order repetition `i`
/// runs them: each kind goes first as often as the others.
fn rtt_order(i: usize) -> [usize; 3] {
    [i % 3, (i + 1) % 3, (i + 2) % 3]
}

fn run_reps(r: &Runner) -> Result<Samples, Fail> {
    let cfg = r.cfg;
    println!("[bench] warm-up");
    let warm_count = (cfg.count / 10).max(1);
    let warm_bytes = (cfg.bytes / 4).max(1);
    r.tcp_rtt(warm_count)?;
    r.kmsg_rtt("ping", warm_count)?;
    r.kmsg_rtt("hreq", warm_count)?;
    r.tcp_bps(warm_bytes)?;
    r.kmsg_bps(warm_bytes)?;
    let mut s = Samples::default();
    for i in 1..=cfg.reps {
        let mut rtt = [0.0; 3];
        for k in rtt_order(i - 1) {
            rtt[k] = match k {
                0 => r.tcp_rtt(cfg.count)?,
                1 => r.kmsg_rtt("ping", cfg.count)?,
                _ => r.kmsg_rtt("hreq", cfg.count)?,
            };
        }
        let [tr, kr, hr] = rtt;
        let tb = r.tcp_bps(cfg.bytes)?;
        let kb = r.kmsg_bps(cfg.bytes)?;
        println!(
            "[bench] run {i}/{}: rtt tcp {:.1} us, kmsg ping {:.1} us, hub {:.1} us; \
             throughput tcp {:.1} MB/s, kmsg {:.1} MB/s",
            cfg.reps,
            tr / 1000.0,
            kr / 1000.0,
            hr / 1000.0,
            tb / 1e6,
            kb / 1e6
        );
        s.tcp_rtt_ns.push(tr);
        s.kmsg_rtt_ns.push(kr);
        s.hreq_rtt_ns.push(hr);
        s.tcp_bps.push(tb);
        s.kmsg_bps.push(kb);
    }
    Ok(s)
}

/// New processes per size for the end-to-end migration figures (a 64 MiB
/// one takes about half a minute under TCG).
pub const E2E_REPS: usize = 3;

/// The `key=value` lines of `text` (one pair a line, nothing else on it).
pub fn parse_kv_lines(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| l.trim().split_once('='))
        .filter(|(k, v)| {
            !k.is_empty()
                && !v.is_empty()
                && k.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
                && !v.contains(char::is_whitespace)
        })
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// What migbench must print: each a median (or mean, for the yardsticks)
/// with its samples, in ns unless said.
const MIGBENCH_MEASURES: &[&str] = &[
    "kmsg_rtt_ns",
    "hreq_rtt_ns",
    "kmsg_bytes_per_s",
    "first_1mib_ns",
    "out_1mib_ns",
    "back_1mib_ns",
    "first_64mib_ns",
    "out_64mib_ns",
    "back_64mib_ns",
    "first_1gib_ns",
    "out_1gib_ns",
    "back_1gib_ns",
    "fault_ns",
    "read_fault_ns",
    "write_fault_ns",
    "inval_fault_ns",
    "read_fault_msgs",
    "write_fault_msgs",
    "inval_fault_msgs",
    "pingpong_ns",
    "pingpong_msgs",
    "e2e_migrate_1mib_ns",
    "e2e_read_1mib_ns",
    "e2e_total_1mib_ns",
    "e2e_model_1mib_ns",
    "e2e_migrate_64mib_ns",
    "e2e_read_64mib_ns",
    "e2e_total_64mib_ns",
    "e2e_model_64mib_ns",
];

/// `kmsg_rtt_ns` is (`kmsg_rtt`, `ns`); `kmsg_bytes_per_s` (`kmsg`, `B/s`).
fn name_and_unit(key: &str) -> (&str, &str) {
    if let Some(name) = key.strip_suffix("_bytes_per_s") {
        (name, "B/s")
    } else if let Some(name) = key.strip_suffix("_ns") {
        (name, "ns")
    } else {
        (key, "")
    }
}

/// A first migration (a task created on the destination), in kmsg round
/// trips at most (issue #12, item 6).
pub const FIRST_MIGRATION_TARGET: f64 = 3.0;
/// A migration to a node that keeps the task's shadow ("out" to the other
/// node, "back" to the origin), in kmsg round trips at most.
pub const SHADOW_MIGRATION_TARGET: f64 = 2.0;

/// A read fault of the container layer, in (kmsg round trip + one 4 KiB
/// transfer at kmsg's throughput) at most (issue #10, item 10).
pub const READ_FAULT_TARGET: f64 = 1.3;
/// A write fault that invalidates read copies, in read faults at most.
pub const WRITE_FAULT_TARGET: f64 = 1.5;
/// Page messages per fault at most, whatever the number of nodes.
pub const MSGS_PER_FAULT_TARGET: f64 = 3.0;

/// Ratio groups of `cohort bench migrate`, as the plot's panels.
const MIG_RTT_GROUP: &str = "migration and remote fault / kmsg round trip (ping)";
const MIG_SIZE_GROUP: &str = "64 MiB / 1 MiB";
/// Issue #10: migrating with 1 GiB of container memory costs what it
/// costs with 1 MiB, within 10 %.
const MIG_GIB_GROUP: &str = "1 GiB / 1 MiB";
/// The most a 1 GiB migration may cost over a 1 MiB one.
const GIB_TARGET: f64 = 1.1;
/// The big size migbench moves (MiB): 1 GiB; the nodes need 2 GiB each.
pub const BIG_MIB: usize = 1024;
const MIG_E2E_GROUP: &str =
    "migrate + read the working set / (bytes / kmsg throughput + hub round trip)";
const MIG_FAULT_GROUP: &str = "container faults (and page messages per fault)";

/// The JSON record of a `cohort bench migrate` run from migbench's output;
/// an error names what is missing or not positive.
pub fn migrate_record(
    meta: Meta,
    nodes: [u32; 2],
    reps: usize,
    text: &str,
) -> Result<Record, String> {
    let kv = parse_kv_lines(text);
    let get = |k: &str| kv.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
    let mut r = Record::new("migrate", meta, nodes);
    r.params.insert("reps".into(), reps as u64);
    r.params.insert("fresh".into(), 5);
    r.params.insert("e2e_reps".into(), E2E_REPS as u64);
    r.params.insert("fault_pages".into(), 512);
    for key in MIGBENCH_MEASURES {
        let value: f64 = get(key)
            .and_then(|v| v.parse().ok())
            .filter(|v: &f64| *v > 0.0)
            .ok_or_else(|| format!("migbench gave no positive {key}"))?;
        let reps = match get(&format!("{key}_samples")) {
            Some(list) => list
                .split(',')
                .map(|x| {
                    x.parse::<f64>()
                        .map_err(|_| format!("bad {key}_samples: {list}"))
                })
                .collect::<Result<Vec<_>, _>>()?,
            None => vec![value],
        };
        let (name, unit) = name_and_unit(key);
        r.measures.push(Measure {
            name: name.into(),
            unit: unit.into(),
            value,
            reps,
        });
    }
    let v = |name: &str| r.measure(name).map_or(0.0, |m| m.value);
    let mut ratios = vec![];
    for name in [
        "first_1mib",
        "first_64mib",
        "out_1mib",
        "out_64mib",
        "back_1mib",
        "back_64mib",
        "fault",
        "hreq_rtt",
    ] {
        let target = if name.starts_with("first") {
            Some(Target::at_most(FIRST_MIGRATION_TARGET))
        } else if name.starts_with("out") || name.starts_with("back") {
            Some(Target::at_most(SHADOW_MIGRATION_TARGET))
        } else {
            None
        };
        ratios.push(Ratio::new(
            MIG_RTT_GROUP,
            name,
            &format!("{name} / kmsg_rtt"),
            v(name),
            v("kmsg_rtt"),
            target,
        ));
    }
    for kind in ["first", "out", "back"] {
        let (big, small) = (format!("{kind}_64mib"), format!("{kind}_1mib"));
        ratios.push(Ratio::new(
            MIG_SIZE_GROUP,
            &format!("{kind}_64_over_1"),
            &format!("{big} / {small}"),
            v(&big),
            v(&small),
            None,
        ));
        let gib = format!("{kind}_1gib");
        ratios.push(Ratio::new(
            MIG_GIB_GROUP,
            &format!("{kind}_1g_over_1"),
            &format!("{gib} / {small}"),
            v(&gib),
            v(&small),
            Some(Target::at_most(GIB_TARGET)),
        ));
    }
    for size in ["1mib", "64mib"] {
        let (total, model) = (format!("e2e_total_{size}"), format!("e2e_model_{size}"));
        ratios.push(Ratio::new(
            MIG_E2E_GROUP,
            &format!("e2e_{size}"),
            &format!("{total} / {model}"),
            v(&total),
            v(&model),
            None,
        ));
    }
    // One 4 KiB transfer at kmsg's throughput, in ns.
    let xfer = if v("kmsg") > 0.0 {
        4096.0 / v("kmsg") * 1e9
    } else {
        0.0
    };
    ratios.push(Ratio::new(
        MIG_FAULT_GROUP,
        "read_fault",
        "read_fault / (kmsg_rtt + 4 KiB / kmsg throughput)",
        v("read_fault"),
        v("kmsg_rtt") + xfer,
        Some(Target::at_most(READ_FAULT_TARGET)),
    ));
    ratios.push(Ratio::new(
        MIG_FAULT_GROUP,
        "write_fault",
        "write_fault / read_fault (no copy to invalidate)",
        v("write_fault"),
        v("read_fault"),
        None,
    ));
    ratios.push(Ratio::new(
        MIG_FAULT_GROUP,
        "inval_fault",
        "inval_fault / read_fault (one copy invalidated)",
        v("inval_fault"),
        v("read_fault"),
        Some(Target::at_most(WRITE_FAULT_TARGET)),
    ));
    ratios.push(Ratio::new(
        MIG_FAULT_GROUP,
        "pingpong",
        "pingpong / read_fault (one handoff of a page two writers share)",
        v("pingpong"),
        v("read_fault"),
        None,
    ));
    ratios.push(Ratio::new(
        MIG_FAULT_GROUP,
        "pingpong_msgs",
        "pingpong_msgs (page messages per handoff)",
        v("pingpong_msgs"),
        1.0,
        None,
    ));
    for kind in ["read", "write", "inval"] {
        let name = format!("{kind}_fault_msgs");
        ratios.push(Ratio::new(
            MIG_FAULT_GROUP,
            &name,
            &format!("{name} (page messages per fault)"),
            v(&name),
            1.0,
            Some(Target::at_most(MSGS_PER_FAULT_TARGET)),
        ));
    }
    r.ratios = ratios;
    Ok(r)
}

/// `cohort bench migrate`: migbench on `a` against `b`, in one run; the
/// record goes to the JSON Lines file `out`.
pub fn migrate(state: &State, a: u32, b: u32, reps: usize, out: &Path) -> Result<(), Fail> {
    if reps == 0 {
        return Err(Fail::usage("--reps must be at least 1"));
    }
    running_node(state, a).map_err(|f| Fail::new(1, f.msg))?;
    running_node(state, b).map_err(|f| Fail::new(1, f.msg))?;
    println!("[bench] loading kmsg and popcorn on nodes {a} and {b} (if needed)");
    for n in [a, b] {
        ensure_kmsg(state, n)?;
        let cmd = format!("grep -q '^popcorn ' /proc/modules || insmod {POPCORN_KO}");
        run_ok(state, n, "loading popcorn", &cmd)?;
    }
    wait_peer_up(state, a, b)?;
    wait_peer_up(state, b, a)?;
    println!(
        "[bench] migbench on node {a} against node {b}, {reps} repetitions, \
         {E2E_REPS} end to end"
    );
    let text = run_ok(
        state,
        a,
        "migbench",
        &format!("migbench {b} {reps} {E2E_REPS} {BIG_MIB}"),
    )?;
    print!("{text}");
    let record =
        migrate_record(run_meta(state, a)?, [a, b], reps, &text).map_err(|e| Fail::new(1, e))?;
    save(out, &record)
}

/// `cohort bench plot [--dir DIR]`: `DIR/NAME.svg` from each
/// `DIR/NAME.jsonl` (default `build/bench`).
pub fn plot(dir: &Path) -> Result<i32, Fail> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(|e| Fail::new(1, format!("cannot read {}: {e}", dir.display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(Fail::new(1, format!("no *.jsonl in {}", dir.display())));
    }
    for file in files {
        let records = record::load(&file).map_err(|e| Fail::new(1, e))?;
        let name = file
            .file_stem()
            .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
        let runs = match records.len() {
            1 => "1 run".to_string(),
            n => format!("{n} runs"),
        };
        let title = match (records.first(), records.last()) {
            (Some(first), Some(last)) if records.len() > 1 => format!(
                "cohort bench {name}: {runs}, {} to {}",
                first.date, last.date
            ),
            (Some(first), _) => format!("cohort bench {name}: {runs}, {}", first.date),
            _ => format!("cohort bench {name}: no runs"),
        };
        let svg = file.with_extension("svg");
        plot::draw(&records, &title, &svg).map_err(|e| Fail::new(1, e))?;
        println!("[bench] {runs} of {name} drawn in {}", svg.display());
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs() {
        assert_eq!(parse_pair("0,1"), Ok((0, 1)));
        assert_eq!(parse_pair(" 2, 0"), Ok((2, 0)));
        assert!(parse_pair("1,1").is_err());
        assert!(parse_pair("1").is_err());
        assert!(parse_pair("a,b").is_err());
    }

    #[test]
    fn result_lines() {
        let kv = parse_kv("noise\nnode=1 count=100 total_ns=5000 min_ns=40 avg_ns=50 max_ns=90\n");
        assert_eq!(kv_u64(&kv, "avg_ns"), Some(50));
        assert_eq!(kv_u64(&kv, "node"), Some(1));
        assert_eq!(kv_u64(&kv, "absent"), None);
        let kv =
            parse_kv("sh: write error: Host is down\nnode=1 count=7 error=-112 stalled_ns=123\n");
        assert_eq!(kv_str(&kv, "error"), Some("-112"));
        assert_eq!(kv_u64(&kv, "error"), None);
        let kv = parse_kv("count=10 size=8 total_ns=1000 avg_ns=100 min_ns=1 max_ns=2");
        assert_eq!(kv_u64(&kv, "avg_ns"), Some(100));
        assert!(parse_kv("").is_empty());
        assert!(parse_kv("no pairs here\n").is_empty());
    }

    #[test]
    fn peers_file() {
        let text = "# id state ip tx_msgs rx_msgs\n\
                    0 self 169.254.42.1 tx_msgs=0 rx_msgs=0\n\
                    1 up 169.254.42.2 tx_msgs=5 rx_msgs=5 rtt_ns=100\n\
                    2 down 169.254.42.3 tx_msgs=0\n";
        let p = parse_peers(text);
        assert_eq!(p.len(), 3);
        assert_eq!(
            p[1],
            Peer {
                id: 1,
                state: "up".into(),
                ip: "169.254.42.2".into()
            }
        );
        assert_eq!(p[2].state, "down");
        assert!(parse_peers("cat: can't open\n").is_empty());
    }

    #[test]
    fn medians() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0]), Some(3.0));
        assert_eq!(median(&[5.0, 1.0, 3.0]), Some(3.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
    }

    #[test]
    fn ratios_and_verdicts() {
        assert_eq!(ratio(12.0, 10.0), Some(1.2));
        assert_eq!(ratio(1.0, 0.0), None);
        assert_eq!(verdict(Some(1.2), RTT_TARGET, true), "PASS");
        assert_eq!(verdict(Some(1.21), RTT_TARGET, true), "MISS");
        assert_eq!(verdict(Some(0.8), THROUGHPUT_TARGET, false), "PASS");
        assert_eq!(verdict(Some(0.79), THROUGHPUT_TARGET, false), "MISS");
        assert_eq!(verdict(None, RTT_TARGET, true), "MISS");
        assert_eq!(rate(1_000_000, 1_000_000_000), 1e6);
        assert_eq!(rate(5, 0), 0.0);
        assert_eq!(size_str(32 << 20), "32 MiB");
        assert_eq!(size_str(2048), "2 KiB");
        assert_eq!(size_str(1000), "1000 B");
    }

    #[test]
    fn summary_and_outputs() {
        let s = Samples {
            tcp_rtt_ns: vec![100.0, 300.0, 200.0],
            kmsg_rtt_ns: vec![110.0, 90.0, 500.0],
            hreq_rtt_ns: vec![250.0, 260.0, 240.0],
            tcp_bps: vec![10e6, 20e6, 30e6],
            kmsg_bps: vec![15e6, 14e6, 16e6],
        };
        let m = s.summary().unwrap();
        assert_eq!(m.tcp_rtt_ns, 200.0);
        assert_eq!(m.kmsg_rtt_ns, 110.0);
        assert_eq!(m.rtt_ratio(), Some(0.55));
        assert_eq!(m.rtt_verdict(), "PASS");
        assert_eq!(m.hreq_ratio(), Some(1.25));
        assert_eq!(m.hreq_verdict(), "MISS");
        assert_eq!(m.throughput_ratio(), Some(0.75));
        assert_eq!(m.throughput_verdict(), "MISS");
        let cfg = BenchConfig {
            a: 0,
            b: 1,
            count: 100,
            bytes: 1 << 20,
            reps: 3,
            port: 7070,
            out: "x".into(),
        };
        let meta = Meta {
            date: "2026-11-23T10:02:03Z".into(),
            kernel: "6.12.117-cohort".into(),
            commit: None,
            dirty: None,
            host: "h".into(),
            host_load: None,
        };
        let r = kmsg_record(&cfg, meta, &s, &m);
        assert_eq!(r.benchmark, "kmsg");
        assert_eq!(r.params.get("count"), Some(&100));
        let tcp = r.measure("tcp_rtt").unwrap();
        assert_eq!((tcp.unit.as_str(), tcp.value), ("ns", 200.0));
        assert_eq!(tcp.reps, vec![100.0, 300.0, 200.0]);
        assert_eq!(r.measure("kmsg_throughput").unwrap().unit, "B/s");
        assert_eq!(r.measure("kmsg_hreq_rtt").unwrap().value, 250.0);
        let hreq = r.ratio("rtt_hreq").unwrap();
        assert_eq!(
            (hreq.value, hreq.result.as_deref()),
            (Some(1.25), Some("MISS"))
        );
        assert_eq!(r.ratio("rtt_ping").unwrap().result.as_deref(), Some("PASS"));
        assert_eq!(r.ratio("throughput").unwrap().value, Some(0.75));
        let t = render_table(&cfg, &m);
        assert!(
            t.contains("rtt kmsg/tcp = 0.550 (target <= 1.2): PASS"),
            "{t}"
        );
        assert!(
            t.contains("rtt through the hub kmsg/tcp = 1.250 (target <= 1.2): MISS"),
            "{t}"
        );
        assert!(
            t.contains("throughput kmsg/tcp = 0.750 (target >= 0.8): MISS"),
            "{t}"
        );
        assert!(Samples::default().summary().is_none());
    }

    #[test]
    fn rtt_orders_rotate() {
        let firsts: Vec<usize> = (0..6).map(|i| rtt_order(i)[0]).collect();
        assert_eq!(firsts, vec![0, 1, 2, 0, 1, 2]);
        for i in 0..3 {
            let mut o = rtt_order(i);
            o.sort();
            assert_eq!(o, [0, 1, 2]);
        }
    }

    /// migbench's output, as it prints it (only the keys matter).
    fn migbench_text(skip: Option<&str>) -> String {
        let mut t = String::from("noise line\n");
        for (i, key) in MIGBENCH_MEASURES.iter().enumerate() {
            if Some(*key) == skip {
                continue;
            }
            let v = (i + 1) * 1000;
            t += &format!("{key}={v}\n{key}_samples={},{v},{}\n", v - 1, v + 1);
        }
        t + "\n                      ms  x kmsg RTT\nkmsg round trip   0.600 1.0\n"
    }

    #[test]
    fn migbench_output_to_record() {
        let kv = parse_kv_lines("a=1\nb = 2\nc=3 d=4\n_x=5\n\ne=\nfault_ns=12\n");
        assert_eq!(
            kv,
            vec![
                ("a".to_string(), "1".to_string()),
                ("_x".to_string(), "5".to_string()),
                ("fault_ns".to_string(), "12".to_string())
            ]
        );
        assert_eq!(name_and_unit("kmsg_bytes_per_s"), ("kmsg", "B/s"));
        assert_eq!(name_and_unit("fault_ns"), ("fault", "ns"));

        let meta = Meta::collect("k");
        let r = migrate_record(meta.clone(), [0, 1], 10, &migbench_text(None)).unwrap();
        assert_eq!(r.benchmark, "migrate");
        assert_eq!(r.measures.len(), MIGBENCH_MEASURES.len());
        let rtt = r.measure("kmsg_rtt").unwrap();
        assert_eq!((rtt.value, rtt.unit.as_str()), (1000.0, "ns"));
        assert_eq!(rtt.reps, vec![999.0, 1000.0, 1001.0]);
        assert_eq!(r.measure("kmsg").unwrap().unit, "B/s");
        // first_1mib is the 4th key: 4000 / 1000.
        assert_eq!(r.ratio("first_1mib").unwrap().value, Some(4.0));
        // The migration ratios carry issue #12's targets; the others none.
        for x in &r.ratios {
            let limit = x.target.as_ref().map(|t| (t.op.as_str(), t.limit));
            let want = if x.name.starts_with("first_") && x.group == MIG_RTT_GROUP {
                Some(("<=", FIRST_MIGRATION_TARGET))
            } else if (x.name.starts_with("out_") || x.name.starts_with("back_"))
                && x.group == MIG_RTT_GROUP
            {
                Some(("<=", SHADOW_MIGRATION_TARGET))
            } else if x.group == MIG_GIB_GROUP {
                Some(("<=", GIB_TARGET))
            } else if x.group == MIG_FAULT_GROUP {
                match x.name.as_str() {
                    "read_fault" => Some(("<=", READ_FAULT_TARGET)),
                    "inval_fault" => Some(("<=", WRITE_FAULT_TARGET)),
                    "write_fault" | "pingpong" | "pingpong_msgs" => None,
                    _ => Some(("<=", MSGS_PER_FAULT_TARGET)),
                }
            } else {
                None
            };
            assert_eq!(limit, want, "{}", x.name);
            assert_eq!(x.result.is_some(), want.is_some(), "{}", x.name);
        }
        // 4.0 round trips: over the target of 3.
        assert_eq!(
            r.ratio("first_1mib").unwrap().result.as_deref(),
            Some("MISS")
        );
        // Each measure is 1000 times its place in MIGBENCH_MEASURES.
        let place = |k: &str| (MIGBENCH_MEASURES.iter().position(|m| *m == k).unwrap() + 1) as f64;
        assert_eq!(
            r.ratio("e2e_64mib").unwrap().value,
            Some(place("e2e_total_64mib_ns") / place("e2e_model_64mib_ns"))
        );
        assert_eq!(
            r.ratio("inval_fault").unwrap().value,
            Some(place("inval_fault_ns") / place("read_fault_ns"))
        );
        assert_eq!(
            r.ratio("read_fault_msgs").unwrap().value,
            Some(place("read_fault_msgs") * 1000.0)
        );
        assert_eq!(r.ratio("out_64_over_1").unwrap().value, Some(8.0 / 5.0));
        assert_eq!(r.ratios.len(), 8 + 3 + 3 + 2 + 8);

        let e = migrate_record(meta.clone(), [0, 1], 10, &migbench_text(Some("fault_ns")));
        assert_eq!(e.unwrap_err(), "migbench gave no positive fault_ns");
        let fault = place("fault_ns") as u64 * 1000;
        let zero = migbench_text(None).replace(&format!("\nfault_ns={fault}\n"), "\nfault_ns=0\n");
        assert!(migrate_record(meta.clone(), [0, 1], 10, &zero).is_err());
        let bad = migbench_text(None).replace(
            &format!("fault_ns_samples={},", fault - 1),
            "fault_ns_samples=x,",
        );
        assert!(migrate_record(meta, [0, 1], 10, &bad)
            .unwrap_err()
            .starts_with("bad fault_ns_samples"));
    }
}
