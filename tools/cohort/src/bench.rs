//! `cohort bench kmsg`: kmsg's round trip and throughput against a
//! user-space TCP ping-pong and stream (tcpbench) on the same two nodes.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use crate::state::State;
use crate::up::node_ip;
use crate::{capture, running_node, Fail};

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
    pub tcp_bps: f64,
    pub kmsg_bps: f64,
}

impl Summary {
    pub fn rtt_ratio(&self) -> Option<f64> {
        ratio(self.kmsg_rtt_ns, self.tcp_rtt_ns)
    }

    pub fn throughput_ratio(&self) -> Option<f64> {
        ratio(self.kmsg_bps, self.tcp_bps)
    }

    pub fn rtt_verdict(&self) -> &'static str {
        verdict(self.rtt_ratio(), RTT_TARGET, true)
    }

    pub fn throughput_verdict(&self) -> &'static str {
        verdict(self.throughput_ratio(), THROUGHPUT_TARGET, false)
    }
}

/// Every sample, per kind.
#[derive(Debug, Default, Clone)]
pub struct Samples {
    pub tcp_rtt_ns: Vec<f64>,
    pub kmsg_rtt_ns: Vec<f64>,
    pub tcp_bps: Vec<f64>,
    pub kmsg_bps: Vec<f64>,
}

impl Samples {
    pub fn summary(&self) -> Option<Summary> {
        Some(Summary {
            tcp_rtt_ns: median(&self.tcp_rtt_ns)?,
            kmsg_rtt_ns: median(&self.kmsg_rtt_ns)?,
            tcp_bps: median(&self.tcp_bps)?,
            kmsg_bps: median(&self.kmsg_bps)?,
        })
    }
}

fn fmt_ratio(r: Option<f64>) -> String {
    r.map_or_else(|| "n/a".to_string(), |r| format!("{r:.3}"))
}

fn join(v: &[f64]) -> String {
    v.iter()
        .map(|x| format!("{x:.0}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The results file: one key=value per line.
pub fn render_kv(cfg: &BenchConfig, s: &Samples, m: &Summary) -> String {
    let mut o = String::new();
    let mut kv = |k: &str, v: String| {
        let _ = writeln!(o, "{k}={v}");
    };
    kv("nodes", format!("{},{}", cfg.a, cfg.b));
    kv("count", cfg.count.to_string());
    kv("ping_size", PING_SIZE.to_string());
    kv("bytes", cfg.bytes.to_string());
    kv("reps", cfg.reps.to_string());
    kv("tcp_rtt_ns", format!("{:.0}", m.tcp_rtt_ns));
    kv("kmsg_rtt_ns", format!("{:.0}", m.kmsg_rtt_ns));
    kv("tcp_bytes_per_s", format!("{:.0}", m.tcp_bps));
    kv("kmsg_bytes_per_s", format!("{:.0}", m.kmsg_bps));
    kv("rtt_ratio", fmt_ratio(m.rtt_ratio()));
    kv("rtt_target_max", format!("{RTT_TARGET}"));
    kv("rtt_result", m.rtt_verdict().to_string());
    kv("throughput_ratio", fmt_ratio(m.throughput_ratio()));
    kv("throughput_target_min", format!("{THROUGHPUT_TARGET}"));
    kv("throughput_result", m.throughput_verdict().to_string());
    kv("tcp_rtt_ns_samples", join(&s.tcp_rtt_ns));
    kv("kmsg_rtt_ns_samples", join(&s.kmsg_rtt_ns));
    kv("tcp_bytes_per_s_samples", join(&s.tcp_bps));
    kv("kmsg_bytes_per_s_samples", join(&s.kmsg_bps));
    o
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
        "{:<28} {:>12} {:>12} {:>9} {:>8}  result",
        "", "user TCP", "kmsg", "kmsg/tcp", "target"
    );
    let _ = writeln!(
        o,
        "{:<28} {:>12} {:>12} {:>9} {:>8}  {}",
        format!("round trip ({PING_SIZE} B, x{})", cfg.count),
        us(m.tcp_rtt_ns),
        us(m.kmsg_rtt_ns),
        fmt_ratio(m.rtt_ratio()),
        format!("<= {RTT_TARGET}"),
        m.rtt_verdict()
    );
    let _ = writeln!(
        o,
        "{:<28} {:>12} {:>12} {:>9} {:>8}  {}",
        format!("throughput ({})", size_str(cfg.bytes)),
        mbs(m.tcp_bps),
        mbs(m.kmsg_bps),
        fmt_ratio(m.throughput_ratio()),
        format!(">= {THROUGHPUT_TARGET}"),
        m.throughput_verdict()
    );
    let _ = writeln!(
        o,
        "rtt kmsg/tcp = {} (target <= {RTT_TARGET}): {}",
        fmt_ratio(m.rtt_ratio()),
        m.rtt_verdict()
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
/// output must end with a result line that has `key`, and no `error=`.
fn measure(
    state: &State,
    node: u32,
    what: &str,
    cmd: &str,
    key: &str,
) -> Result<Vec<(String, String)>, Fail> {
    let (status, out) = capture(state, node, cmd, STEP_TIMEOUT_S)?;
    let kv = parse_kv(&out);
    if status != 0 || kv_str(&kv, "error").is_some() || kv_u64(&kv, key).is_none() {
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

    fn kmsg_rtt(&self, count: u64) -> Result<f64, Fail> {
        let c = self.cfg;
        let cmd = format!(
            "echo '{} {count}' >{KMSG_DEBUGFS}/ping; r=$?; cat {KMSG_DEBUGFS}/ping; exit $r",
            c.b
        );
        let kv = measure(self.state, c.a, "kmsg ping", &cmd, "avg_ns")?;
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
    if let Some(dir) = cfg.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir)
            .map_err(|e| Fail::new(1, format!("cannot create {}: {e}", dir.display())))?;
    }
    fs::write(&cfg.out, render_kv(cfg, &samples, &m))
        .map_err(|e| Fail::new(1, format!("cannot write {}: {e}", cfg.out.display())))?;
    println!("[bench] results in {}", cfg.out.display());
    Ok(())
}

fn run_reps(r: &Runner) -> Result<Samples, Fail> {
    let cfg = r.cfg;
    println!("[bench] warm-up");
    let warm_count = (cfg.count / 10).max(1);
    let warm_bytes = (cfg.bytes / 4).max(1);
    r.tcp_rtt(warm_count)?;
    r.kmsg_rtt(warm_count)?;
    r.tcp_bps(warm_bytes)?;
    r.kmsg_bps(warm_bytes)?;
    let mut s = Samples::default();
    for i in 1..=cfg.reps {
        let tr = r.tcp_rtt(cfg.count)?;
        let kr = r.kmsg_rtt(cfg.count)?;
        let tb = r.tcp_bps(cfg.bytes)?;
        let kb = r.kmsg_bps(cfg.bytes)?;
        println!(
            "[bench] run {i}/{}: rtt tcp {:.1} us, kmsg {:.1} us; throughput tcp {:.1} MB/s, kmsg {:.1} MB/s",
            cfg.reps,
            tr / 1000.0,
            kr / 1000.0,
            tb / 1e6,
            kb / 1e6
        );
        s.tcp_rtt_ns.push(tr);
        s.kmsg_rtt_ns.push(kr);
        s.tcp_bps.push(tb);
        s.kmsg_bps.push(kb);
    }
    Ok(s)
}

/// `cohort bench migrate`: migbench on `a` against `b`, in one run.
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
    println!("[bench] migbench on node {a} against node {b}, {reps} repetitions");
    let text = run_ok(state, a, "migbench", &format!("migbench {b} {reps}"))?;
    if kv_u64(&parse_kv(&text), "fault_ns").is_none() {
        return Err(Fail::new(1, format!("migbench gave no result:\n{text}")));
    }
    print!("{text}");
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir)
            .map_err(|e| Fail::new(1, format!("cannot create {}: {e}", dir.display())))?;
    }
    fs::write(out, &text)
        .map_err(|e| Fail::new(1, format!("cannot write {}: {e}", out.display())))?;
    println!("[bench] results in {}", out.display());
    Ok(())
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
            tcp_bps: vec![10e6, 20e6, 30e6],
            kmsg_bps: vec![15e6, 14e6, 16e6],
        };
        let m = s.summary().unwrap();
        assert_eq!(m.tcp_rtt_ns, 200.0);
        assert_eq!(m.kmsg_rtt_ns, 110.0);
        assert_eq!(m.rtt_ratio(), Some(0.55));
        assert_eq!(m.rtt_verdict(), "PASS");
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
        let kv = render_kv(&cfg, &s, &m);
        assert!(kv.contains("\nrtt_ratio=0.550\n"), "{kv}");
        assert!(kv.contains("\nthroughput_result=MISS\n"), "{kv}");
        assert!(kv.contains("\ntcp_rtt_ns_samples=100,300,200\n"), "{kv}");
        assert!(kv.lines().all(|l| l.split_once('=').is_some()));
        let t = render_table(&cfg, &m);
        assert!(
            t.contains("rtt kmsg/tcp = 0.550 (target <= 1.2): PASS"),
            "{t}"
        );
        assert!(
            t.contains("throughput kmsg/tcp = 0.750 (target >= 0.8): MISS"),
            "{t}"
        );
        assert!(Samples::default().summary().is_none());
    }
}
