//! `cohort bench transport`: kmsg over shared memory, kmsg over TCP and
//! user-space TCP on the same two nodes of a cluster booted with
//! `cohort up --transport shm`, in one run (issue #14, item 2).
//!
//! Each mode measures the same things: round trips of 8-byte messages
//! (kmsg: its link thread's `ping` and a request through the hub, `hreq`;
//! user space: tcpbench's ping-pong) and throughput for 8-byte, 4 KiB and
//! 1 MiB messages. kmsg's debugfs has no one-way stream of small messages,
//! so 8 B and 4 KiB throughput are request/reply in every mode (kmsg's
//! `echo` through the hub, tcpbench's ping-pong of that size: SIZE × COUNT
//! bytes over the time of COUNT round trips); 1 MiB is a one-way stream of
//! 1 MiB messages in every mode (kmsg's `stream`, tcpbench's `stream`).
//!
//! kmsg's transport is switched like `bench auth` switches authentication:
//! kmsg unloaded on both nodes, the hub's `cohort.shm` parameter
//! (/sys/module/cohort/parameters/shm, read when kmsg loads) set to 1
//! (shared memory) or 0 (TCP only), kmsg loaded again, and the peers'
//! transport read back from debugfs `shm`. The order of the modes changes
//! from one repetition to the next (the kmsg modes alternate, one switch
//! per repetition; user-space TCP takes each place in turn), and both
//! nodes end as they started: shared memory, the cluster's authentication.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::thread;
use std::time::Instant;

use super::auth::HUB_AUTH;
use super::record::{Meta, Ratio, Record, Target};
use super::{
    ensure_kmsg, fmt_ratio, kv_str, measure_of, median, parse_kv, reload_command, run_meta, run_ok,
    save, size_str, start_server, stop_server, wait_peer_up, BenchConfig, Runner, KMSG_DEBUGFS,
    MESH_WAIT, PING_SIZE,
};
use crate::state::State;
use crate::up::node_ip;
use crate::{running_node, Fail};

/// kmsg over shared memory: round trips at most this many times kmsg over
/// TCP's (issue #14).
pub const SHM_RTT_TARGET: f64 = 0.5;
/// kmsg over shared memory: throughput at least this many times kmsg over
/// TCP's.
pub const SHM_THROUGHPUT_TARGET: f64 = 2.0;
/// kmsg over TCP: round trips at most this many times user-space TCP's.
pub const TCP_RTT_TARGET: f64 = 1.0;
/// The hub's switch for the shared-memory transport, read by kmsg when it
/// loads.
pub const HUB_SHM: &str = "/sys/module/cohort/parameters/shm";
/// How long a shared-memory receiver polls after its last bytes, in us
/// (0: never); read on every poll, so it needs no reload.
pub const HUB_SHM_POLL: &str = "/sys/module/cohort/parameters/shm_poll_us";
/// The page-sized message.
pub const PAGE_SIZE: u64 = 4096;
/// The size of a stream's messages (kmsg's and tcpbench's).
pub const STREAM_MSG: u64 = 1 << 20;

/// The three ways of moving bytes between the two nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// kmsg over the shared-memory rings.
    Shm,
    /// kmsg over TCP.
    Tcp,
    /// tcpbench, user-space TCP.
    User,
}

impl Mode {
    pub const ALL: [Mode; 3] = [Mode::Shm, Mode::Tcp, Mode::User];

    /// The prefix of the mode's measures.
    pub fn key(self) -> &'static str {
        match self {
            Mode::Shm => "kmsg_shm",
            Mode::Tcp => "kmsg_tcp",
            Mode::User => "user_tcp",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Mode::Shm => "kmsg over shm",
            Mode::Tcp => "kmsg over TCP",
            Mode::User => "user-space TCP",
        }
    }

    /// The value of [`HUB_SHM`] and the transport debugfs `shm` shows for
    /// the peer; none for user space.
    fn kmsg(self) -> Option<(&'static str, &'static str)> {
        match self {
            Mode::Shm => Some(("1", "shm")),
            Mode::Tcp => Some(("0", "tcp")),
            Mode::User => None,
        }
    }
}

/// The modes of repetition `i` (from 0), in the order they run: the kmsg
/// modes alternate, so each repetition starts in the transport the last one
/// ended in (one reload per repetition), and user-space TCP goes first,
/// second and third in turn.
pub fn mode_order(i: usize) -> [Mode; 3] {
    let (first, second) = if i.is_multiple_of(2) {
        (Mode::Shm, Mode::Tcp)
    } else {
        (Mode::Tcp, Mode::Shm)
    };
    match i % 3 {
        0 => [Mode::User, first, second],
        1 => [first, Mode::User, second],
        _ => [first, second, Mode::User],
    }
}

/// What is measured in every mode, as the suffix of its measure's name.
pub const ROUND_TRIP: &str = "rtt";
pub const HUB_ROUND_TRIP: &str = "hreq_rtt";
pub const ECHO_SMALL: &str = "echo_8b";
pub const ECHO_PAGE: &str = "echo_4kib";
pub const STREAM: &str = "stream_1mib";

/// The name of `mode`'s measure `what`. kmsg's plain round trip is its
/// link thread's ping (`kmsg_tcp_ping_rtt`); user-space TCP has one round
/// trip (`user_tcp_rtt`), which both of kmsg's are compared with.
pub fn measure_name(mode: Mode, what: &str) -> String {
    match (mode, what) {
        (Mode::User, HUB_ROUND_TRIP) => format!("{}_{ROUND_TRIP}", mode.key()),
        (Mode::Shm | Mode::Tcp, ROUND_TRIP) => format!("{}_ping_{ROUND_TRIP}", mode.key()),
        _ => format!("{}_{what}", mode.key()),
    }
}

/// Every measure of a run, in record order, with its unit.
pub fn measures() -> Vec<(String, &'static str)> {
    let mut out = vec![];
    for mode in Mode::ALL {
        out.push((measure_name(mode, ROUND_TRIP), "ns"));
        if mode != Mode::User {
            out.push((measure_name(mode, HUB_ROUND_TRIP), "ns"));
        }
        for what in [ECHO_SMALL, ECHO_PAGE, STREAM] {
            out.push((measure_name(mode, what), "B/s"));
        }
    }
    out
}

/// Every sample, by measure name, in run order.
#[derive(Debug, Default, Clone)]
pub struct TransportSamples(pub BTreeMap<String, Vec<f64>>);

impl TransportSamples {
    pub fn push(&mut self, name: String, value: f64) {
        self.0.entry(name).or_default().push(value);
    }

    pub fn median(&self, name: &str) -> Option<f64> {
        median(self.0.get(name)?)
    }

    /// Whether every measure has at least one sample.
    pub fn complete(&self) -> bool {
        measures().iter().all(|(n, _)| self.median(n).is_some())
    }
}

/// One ratio of the record: group, name, numerator's and denominator's
/// measure, target.
struct RatioSpec {
    group: &'static str,
    name: &'static str,
    num: String,
    den: String,
    target: Option<Target>,
}

const SHM_RTT_GROUP: &str = "round trip: kmsg over shm / kmsg over TCP (target <= 0.5)";
const SHM_TPUT_GROUP: &str = "throughput: kmsg over shm / kmsg over TCP (target >= 2)";
const TCP_RTT_GROUP: &str = "round trip: kmsg over TCP / user-space TCP (target <= 1.0)";
const TCP_TPUT_GROUP: &str = "throughput: kmsg over TCP / user-space TCP";
const SHM_USER_GROUP: &str = "kmsg over shm / user-space TCP (round trips and throughput)";

fn ratio_specs() -> Vec<RatioSpec> {
    let (shm, tcp, user) = (Mode::Shm, Mode::Tcp, Mode::User);
    let spec = |group, name, num: (Mode, &str), den: (Mode, &str), target| RatioSpec {
        group,
        name,
        num: measure_name(num.0, num.1),
        den: measure_name(den.0, den.1),
        target,
    };
    let shm_rtt = || Some(Target::at_most(SHM_RTT_TARGET));
    let shm_tput = || Some(Target::at_least(SHM_THROUGHPUT_TARGET));
    let tcp_rtt = || Some(Target::at_most(TCP_RTT_TARGET));
    vec![
        spec(
            SHM_RTT_GROUP,
            "shm_tcp_ping",
            (shm, ROUND_TRIP),
            (tcp, ROUND_TRIP),
            shm_rtt(),
        ),
        spec(
            SHM_RTT_GROUP,
            "shm_tcp_hreq",
            (shm, HUB_ROUND_TRIP),
            (tcp, HUB_ROUND_TRIP),
            shm_rtt(),
        ),
        spec(
            SHM_TPUT_GROUP,
            "shm_tcp_echo_8b",
            (shm, ECHO_SMALL),
            (tcp, ECHO_SMALL),
            shm_tput(),
        ),
        spec(
            SHM_TPUT_GROUP,
            "shm_tcp_echo_4kib",
            (shm, ECHO_PAGE),
            (tcp, ECHO_PAGE),
            shm_tput(),
        ),
        spec(
            SHM_TPUT_GROUP,
            "shm_tcp_stream_1mib",
            (shm, STREAM),
            (tcp, STREAM),
            shm_tput(),
        ),
        spec(
            TCP_RTT_GROUP,
            "tcp_user_ping",
            (tcp, ROUND_TRIP),
            (user, ROUND_TRIP),
            tcp_rtt(),
        ),
        spec(
            TCP_RTT_GROUP,
            "tcp_user_hreq",
            (tcp, HUB_ROUND_TRIP),
            (user, ROUND_TRIP),
            tcp_rtt(),
        ),
        spec(
            TCP_TPUT_GROUP,
            "tcp_user_echo_8b",
            (tcp, ECHO_SMALL),
            (user, ECHO_SMALL),
            None,
        ),
        spec(
            TCP_TPUT_GROUP,
            "tcp_user_echo_4kib",
            (tcp, ECHO_PAGE),
            (user, ECHO_PAGE),
            None,
        ),
        spec(
            TCP_TPUT_GROUP,
            "tcp_user_stream_1mib",
            (tcp, STREAM),
            (user, STREAM),
            None,
        ),
        spec(
            SHM_USER_GROUP,
            "shm_user_hreq",
            (shm, HUB_ROUND_TRIP),
            (user, ROUND_TRIP),
            None,
        ),
        spec(
            SHM_USER_GROUP,
            "shm_user_echo_8b",
            (shm, ECHO_SMALL),
            (user, ECHO_SMALL),
            None,
        ),
        spec(
            SHM_USER_GROUP,
            "shm_user_echo_4kib",
            (shm, ECHO_PAGE),
            (user, ECHO_PAGE),
            None,
        ),
        spec(
            SHM_USER_GROUP,
            "shm_user_stream_1mib",
            (shm, STREAM),
            (user, STREAM),
            None,
        ),
    ]
}

/// Settings of a `cohort bench transport` run.
pub struct TransportConfig {
    /// Nodes, round trips per RTT measurement (`count`), bytes per stream,
    /// repetitions, tcpbench's port, the results file.
    pub base: BenchConfig,
    /// Round trips per 8-byte throughput measurement.
    pub echo_count: u64,
    /// Round trips per 4 KiB throughput measurement.
    pub page_count: u64,
    /// Measure kmsg without authentication (the cluster's is restored).
    pub no_auth: bool,
    /// `cohort.shm_poll_us` on both nodes during the run (the nodes' own
    /// values are restored).
    pub shm_poll_us: u32,
}

/// The names of a run without authentication carry this suffix, and its
/// groups say so, so that the plot keeps the two apart.
const NOAUTH_SUFFIX: &str = "_noauth";
/// Likewise for a run whose shared-memory receivers poll.
const POLL_SUFFIX: &str = "_poll";

/// The JSON record of a `cohort bench transport` run; `auth` is whether
/// kmsg authenticated.
pub fn transport_record(
    cfg: &TransportConfig,
    meta: Meta,
    s: &TransportSamples,
    auth: bool,
) -> Record {
    let c = &cfg.base;
    let mut r = Record::new("transport", meta, [c.a, c.b]);
    r.params.insert("count".into(), c.count);
    r.params.insert("ping_size".into(), PING_SIZE);
    r.params.insert("echo_count".into(), cfg.echo_count);
    r.params.insert("page_count".into(), cfg.page_count);
    r.params.insert("page_size".into(), PAGE_SIZE);
    r.params.insert("stream_bytes".into(), c.bytes);
    r.params.insert("stream_msg".into(), STREAM_MSG);
    r.params.insert("reps".into(), c.reps as u64);
    r.params.insert("auth".into(), u64::from(auth));
    r.params
        .insert("shm_poll_us".into(), u64::from(cfg.shm_poll_us));
    let empty = vec![];
    r.measures = measures()
        .iter()
        .map(|(name, unit)| measure_of(name, unit, s.0.get(name).unwrap_or(&empty)))
        .collect();
    let v = |name: &str| s.median(name).unwrap_or(0.0);
    r.ratios = ratio_specs()
        .into_iter()
        .map(|x| {
            let (mut name, mut group) = if auth {
                (x.name.to_string(), x.group.to_string())
            } else {
                (
                    format!("{}{NOAUTH_SUFFIX}", x.name),
                    format!("{}, without authentication", x.group),
                )
            };
            if cfg.shm_poll_us > 0 {
                name.push_str(POLL_SUFFIX);
                write!(group, ", receivers polling {} us", cfg.shm_poll_us).ok();
            }
            Ratio::new(
                &group,
                &name,
                &format!("{} / {}", x.num, x.den),
                v(&x.num),
                v(&x.den),
                x.target,
            )
        })
        .collect();
    r
}

/// The table printed at the end, from the record.
pub fn render_table(cfg: &TransportConfig, r: &Record) -> String {
    let c = &cfg.base;
    let auth = r.params.get("auth") != Some(&0);
    let poll_us = r.params.get("shm_poll_us").copied().unwrap_or(0);
    let suffix = format!(
        "{}{}",
        if auth { "" } else { NOAUTH_SUFFIX },
        if poll_us > 0 { POLL_SUFFIX } else { "" }
    );
    let v = |name: String| r.measure(&name).map_or(0.0, |m| m.value);
    let ratio = |name: &str| r.ratio(&format!("{name}{suffix}"));
    let judged = |name: &str| {
        ratio(name).map_or_else(String::new, |x| {
            let t = x
                .target
                .as_ref()
                .map_or(String::new(), |t| format!(" ({} {})", t.op, t.limit));
            format!(
                "{}{t} {}",
                fmt_ratio(x.value),
                x.result.as_deref().unwrap_or("")
            )
        })
    };
    let mut o = String::new();
    let _ = writeln!(
        o,
        "kmsg over shared memory, kmsg over TCP and user-space TCP, node {} -> node {}, \
         authentication {}, shared-memory receivers polling {} us, median of {} runs each",
        c.a,
        c.b,
        if auth { "on" } else { "off" },
        poll_us,
        c.reps
    );
    let _ = writeln!(
        o,
        "{:<30} {:>11} {:>11} {:>11}  {:<22} {:<22} shm/user",
        "", "kmsg shm", "kmsg TCP", "user TCP", "shm/TCP", "TCP/user"
    );
    let us = |ns: f64| format!("{:.1} us", ns / 1000.0);
    let mbs = |bps: f64| format!("{:.2} MB/s", bps / 1e6);
    let rows: [(String, &str, &str, bool); 5] = [
        (
            format!("round trip, ping ({PING_SIZE} B, x{})", c.count),
            ROUND_TRIP,
            "ping",
            true,
        ),
        (
            format!("round trip, hub ({PING_SIZE} B, x{})", c.count),
            HUB_ROUND_TRIP,
            "hreq",
            true,
        ),
        (
            format!("echo {PING_SIZE} B (x{})", cfg.echo_count),
            ECHO_SMALL,
            "echo_8b",
            false,
        ),
        (
            format!("echo 4 KiB (x{})", cfg.page_count),
            ECHO_PAGE,
            "echo_4kib",
            false,
        ),
        (
            format!("stream 1 MiB msgs ({})", size_str(c.bytes)),
            STREAM,
            "stream_1mib",
            false,
        ),
    ];
    for (what, m, ratio_name, is_rtt) in rows {
        let f = |x: f64| if is_rtt { us(x) } else { mbs(x) };
        let shm_user =
            ratio(&format!("shm_user_{ratio_name}")).map_or(String::new(), |x| fmt_ratio(x.value));
        let _ = writeln!(
            o,
            "{what:<30} {:>11} {:>11} {:>11}  {:<22} {:<22} {shm_user}",
            f(v(measure_name(Mode::Shm, m))),
            f(v(measure_name(Mode::Tcp, m))),
            f(v(measure_name(Mode::User, m))),
            judged(&format!("shm_tcp_{ratio_name}")),
            judged(&format!("tcp_user_{ratio_name}")),
        );
    }
    for (line, name) in [
        ("rtt (ping) shm/TCP", "shm_tcp_ping"),
        ("rtt through the hub shm/TCP", "shm_tcp_hreq"),
        ("throughput 8 B shm/TCP", "shm_tcp_echo_8b"),
        ("throughput 4 KiB shm/TCP", "shm_tcp_echo_4kib"),
        ("throughput 1 MiB shm/TCP", "shm_tcp_stream_1mib"),
        ("rtt (ping) kmsg TCP/user TCP", "tcp_user_ping"),
        ("rtt through the hub kmsg TCP/user TCP", "tcp_user_hreq"),
    ] {
        if let Some(x) = ratio(name) {
            let t = x
                .target
                .as_ref()
                .map_or(String::new(), |t| format!("{} {}", t.op, t.limit));
            let _ = writeln!(
                o,
                "{line} = {} (target {t}): {}",
                fmt_ratio(x.value),
                x.result.as_deref().unwrap_or("")
            );
        }
    }
    o
}

/// The transport of `peer`'s connection in the debugfs `shm` file of a
/// node: `none` (no shared memory: TCP for everyone) gives `tcp`.
pub fn peer_transport(shm_file: &str, peer: u32) -> Option<String> {
    if shm_file.lines().any(|l| l.trim() == "none") {
        return Some("tcp".into());
    }
    let line = shm_file
        .lines()
        .find(|l| l.split_whitespace().next() == Some(&peer.to_string()))?;
    kv_str(&parse_kv(line), "transport").map(str::to_string)
}

/// Wait until `node`'s connection to `peer` runs over `want`.
fn wait_transport(state: &State, node: u32, peer: u32, want: &str) -> Result<(), Fail> {
    let start = Instant::now();
    loop {
        let out = run_ok(
            state,
            node,
            "reading kmsg shm",
            &format!("cat {KMSG_DEBUGFS}/shm"),
        )?;
        let got = peer_transport(&out, peer);
        if got.as_deref() == Some(want) {
            return Ok(());
        }
        if start.elapsed() >= MESH_WAIT {
            return Err(Fail::new(
                1,
                format!(
                    "node {node}: kmsg's connection to node {peer} is not over {want} after {} s:\n{}",
                    MESH_WAIT.as_secs(),
                    out.trim_end()
                ),
            ));
        }
        thread::sleep(std::time::Duration::from_millis(500));
    }
}

/// kmsg's `auth=` on `node`, from its `params`.
fn kmsg_auth(state: &State, node: u32) -> Result<String, Fail> {
    let out = run_ok(
        state,
        node,
        "reading kmsg params",
        &format!("cat {KMSG_DEBUGFS}/params"),
    )?;
    Ok(kv_str(&parse_kv(&out), "auth").unwrap_or("").to_string())
}

/// Reloads kmsg on both nodes with `mode`'s transport and authentication
/// `auth`, and waits until each sees the other up over that transport.
fn switch(state: &State, a: u32, b: u32, mode: Mode, auth: bool) -> Result<(), Fail> {
    let Some((param, wire)) = mode.kmsg() else {
        return Ok(());
    };
    let auth_param = if auth { "1" } else { "0" };
    println!(
        "[bench] kmsg on nodes {a} and {b}: transport {wire}, auth={}",
        if auth { "on" } else { "off" }
    );
    for n in [a, b] {
        let cmd = reload_command(&[(HUB_SHM, param), (HUB_AUTH, auth_param)]);
        run_ok(state, n, "reloading kmsg", &cmd)?;
        let got = kmsg_auth(state, n)?;
        if (got != "none") != auth {
            return Err(Fail::new(
                1,
                format!("node {n}: kmsg reloaded with {HUB_AUTH} = {auth_param} says auth={got}"),
            ));
        }
    }
    wait_peer_up(state, a, b)?;
    wait_peer_up(state, b, a)?;
    wait_transport(state, a, b, wire)?;
    wait_transport(state, b, a, wire)
}

/// Writes `values` to `cohort.shm_poll_us` on `nodes`; returns what each
/// held before.
fn set_poll(state: &State, nodes: [u32; 2], values: &[String]) -> Result<Vec<String>, Fail> {
    let mut old = vec![];
    for (n, v) in nodes.into_iter().zip(values) {
        let cmd = format!("cat {HUB_SHM_POLL} && echo {v} > {HUB_SHM_POLL}");
        old.push(
            run_ok(state, n, "setting cohort.shm_poll_us", &cmd)?
                .trim()
                .to_string(),
        );
    }
    Ok(old)
}

/// Measures everything in `mode` once; returns (measure, value) pairs.
fn measure_mode(
    state: &State,
    r: &Runner,
    cfg: &TransportConfig,
    mode: Mode,
) -> Result<Vec<(String, f64)>, Fail> {
    let c = &cfg.base;
    let mut out = vec![];
    match mode {
        Mode::User => {
            out.push((measure_name(mode, ROUND_TRIP), r.tcp_rtt(c.count)?));
            out.push((
                measure_name(mode, ECHO_SMALL),
                r.tcp_echo_bps(PING_SIZE, cfg.echo_count)?,
            ));
            out.push((
                measure_name(mode, ECHO_PAGE),
                r.tcp_echo_bps(PAGE_SIZE, cfg.page_count)?,
            ));
            out.push((measure_name(mode, STREAM), r.tcp_bps(c.bytes)?));
        }
        Mode::Shm | Mode::Tcp => {
            out.push((measure_name(mode, ROUND_TRIP), r.kmsg_rtt("ping", c.count)?));
            out.push((
                measure_name(mode, HUB_ROUND_TRIP),
                r.kmsg_rtt("hreq", c.count)?,
            ));
            out.push((
                measure_name(mode, ECHO_SMALL),
                r.kmsg_echo_bps(PING_SIZE, cfg.echo_count)?,
            ));
            out.push((
                measure_name(mode, ECHO_PAGE),
                r.kmsg_echo_bps(PAGE_SIZE, cfg.page_count)?,
            ));
            out.push((measure_name(mode, STREAM), r.kmsg_bps(c.bytes)?));
            // Still over the same transport: nothing fell back meanwhile.
            if let Some((_, wire)) = mode.kmsg() {
                let text = run_ok(
                    state,
                    c.a,
                    "reading kmsg shm",
                    &format!("cat {KMSG_DEBUGFS}/shm"),
                )?;
                let got = peer_transport(&text, c.b);
                if got.as_deref() != Some(wire) {
                    return Err(Fail::new(
                        1,
                        format!(
                            "node {}: kmsg's connection to node {} went from {wire} to {} \
                             during the measurements:\n{}",
                            c.a,
                            c.b,
                            got.as_deref().unwrap_or("?"),
                            text.trim_end()
                        ),
                    ));
                }
            }
        }
    }
    Ok(out)
}

/// One line per mode and repetition.
fn rep_line(i: usize, reps: usize, mode: Mode, values: &[(String, f64)]) -> String {
    let mut line = format!("[bench] run {}/{reps} {}:", i + 1, mode.label());
    for (name, v) in values {
        let short = name.strip_prefix(mode.key()).unwrap_or(name);
        let short = short.trim_start_matches('_');
        if name.ends_with("rtt") {
            let _ = write!(line, " {short} {:.1} us", v / 1000.0);
        } else {
            let _ = write!(line, " {short} {:.2} MB/s", v / 1e6);
        }
    }
    line
}

fn run_reps(
    state: &State,
    r: &Runner,
    cfg: &TransportConfig,
    auth: bool,
    now: &mut Mode,
) -> Result<TransportSamples, Fail> {
    let c = &cfg.base;
    let warm = (c.count / 10).max(1);
    let mut s = TransportSamples::default();
    for i in 0..c.reps {
        for mode in mode_order(i) {
            if mode != Mode::User && mode != *now {
                switch(state, c.a, c.b, mode, auth)?;
                *now = mode;
                r.kmsg_rtt("ping", warm)?;
            }
            if i == 0 {
                // A warm-up per mode, not counted.
                match mode {
                    Mode::User => {
                        r.tcp_rtt(warm)?;
                        r.tcp_bps((c.bytes / 4).max(1))?;
                    }
                    _ => {
                        r.kmsg_rtt("hreq", warm)?;
                        r.kmsg_bps((c.bytes / 4).max(1))?;
                    }
                }
            }
            let values = measure_mode(state, r, cfg, mode)?;
            println!("{}", rep_line(i, c.reps, mode, &values));
            for (name, v) in values {
                s.push(name, v);
            }
        }
        if let Some(x) = rep_ratios(&s, i) {
            println!("[bench] run {}/{} ratios: {x}", i + 1, c.reps);
        }
    }
    Ok(s)
}

/// The key ratios of repetition `i` alone.
fn rep_ratios(s: &TransportSamples, i: usize) -> Option<String> {
    let at = |name: &str| s.0.get(name)?.get(i).copied();
    let mut o = String::new();
    for spec in ratio_specs().iter().filter(|x| x.target.is_some()) {
        let (num, den) = (at(&spec.num)?, at(&spec.den)?);
        let value = (den > 0.0).then(|| num / den);
        let _ = write!(o, "{}={} ", spec.name, fmt_ratio(value));
    }
    Some(o.trim_end().to_string())
}

/// `cohort bench transport`: kmsg over shared memory, kmsg over TCP and
/// user-space TCP on nodes A and B of a cluster booted with `--transport
/// shm`; the record goes to `cfg.base.out`.
pub fn run(state: &State, cfg: &TransportConfig) -> Result<(), Fail> {
    let c = &cfg.base;
    if c.count == 0 || c.bytes == 0 || c.reps == 0 || cfg.echo_count == 0 || cfg.page_count == 0 {
        return Err(Fail::usage(
            "--count, --echo-count, --page-count, --bytes and --reps must be at least 1",
        ));
    }
    let (a, b) = (c.a, c.b);
    running_node(state, a).map_err(|f| Fail::new(1, f.msg))?;
    running_node(state, b).map_err(|f| Fail::new(1, f.msg))?;
    run_ok(state, a, "looking for tcpbench", "command -v tcpbench")?;
    println!("[bench] loading kmsg on nodes {a} and {b} (if needed)");
    let mut cluster_auth = true;
    for n in [a, b] {
        ensure_kmsg(state, n)?;
        run_ok(
            state,
            n,
            "looking for the hub's parameters",
            &format!(
                "for f in {HUB_SHM} {HUB_AUTH}; do [ -w $f ] || {{ echo \"no writable $f\"; exit 1; }}; done"
            ),
        )?;
        cluster_auth &= kmsg_auth(state, n)? != "none";
    }
    wait_peer_up(state, a, b)?;
    wait_peer_up(state, b, a)?;
    for (n, peer) in [(a, b), (b, a)] {
        let text = run_ok(
            state,
            n,
            "reading kmsg shm",
            &format!("cat {KMSG_DEBUGFS}/shm"),
        )?;
        if peer_transport(&text, peer).as_deref() != Some("shm") {
            return Err(Fail::new(
                1,
                format!(
                    "node {n}: kmsg does not reach node {peer} over shared memory \
                     (boot the cluster with `cohort up --transport shm`):\n{}",
                    text.trim_end()
                ),
            ));
        }
    }
    let auth = cluster_auth && !cfg.no_auth;
    println!(
        "[bench] authentication: {} (the cluster's: {})",
        if auth { "on" } else { "off" },
        if cluster_auth { "on" } else { "off" }
    );
    start_server(state, b, c.port)?;
    let r = Runner {
        state,
        cfg: c,
        ip_b: node_ip(b),
    };
    // The transport kmsg runs now; `User` for "not as this run wants it",
    // which makes the first kmsg mode reload it.
    let mut now = if auth == cluster_auth {
        Mode::Shm
    } else {
        Mode::User
    };
    let polls = match set_poll(state, [a, b], &vec![cfg.shm_poll_us.to_string(); 2]) {
        Ok(polls) => polls,
        Err(e) => {
            stop_server(state, b);
            return Err(e);
        }
    };
    println!(
        "[bench] shared-memory receivers poll {} us after their last bytes (cohort.shm_poll_us; it was {} and {})",
        cfg.shm_poll_us, polls[0], polls[1]
    );
    let result = run_reps(state, &r, cfg, auth, &mut now);
    stop_server(state, b);
    // Both nodes back to shared memory and the cluster's authentication,
    // whatever happened.
    let back = if now != Mode::Shm || auth != cluster_auth {
        switch(state, a, b, Mode::Shm, cluster_auth)
    } else {
        Ok(())
    };
    let restored = set_poll(state, [a, b], &polls);
    let samples = result?;
    back?;
    restored?;
    if !samples.complete() {
        return Err(Fail::new(1, "no samples".into()));
    }
    let record = transport_record(cfg, run_meta(state, a)?, &samples, auth);
    print!("{}", render_table(cfg, &record));
    save(&c.out, &record)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> TransportConfig {
        TransportConfig {
            base: BenchConfig {
                a: 0,
                b: 1,
                count: 2000,
                bytes: 32 << 20,
                reps: 3,
                port: 7070,
                out: "x".into(),
            },
            echo_count: 2000,
            page_count: 1000,
            no_auth: false,
            shm_poll_us: 0,
        }
    }

    #[test]
    fn modes_rotate_with_one_switch_per_repetition() {
        use Mode::*;
        assert_eq!(mode_order(0), [User, Shm, Tcp]);
        assert_eq!(mode_order(1), [Tcp, User, Shm]);
        assert_eq!(mode_order(2), [Shm, Tcp, User]);
        assert_eq!(mode_order(3), [User, Tcp, Shm]);
        let kmsg = |i| -> Vec<Mode> { mode_order(i).into_iter().filter(|m| *m != User).collect() };
        // Repetition 0 starts in shared memory, as the cluster boots.
        assert_eq!(kmsg(0)[0], Shm);
        for i in 0..6 {
            let mut o = mode_order(i).to_vec();
            o.sort_by_key(|m| m.key());
            assert_eq!(o, vec![Shm, Tcp, User]);
            assert_eq!(kmsg(i)[1], kmsg(i + 1)[0], "repetition {i}");
        }
        let places: Vec<usize> = (0..3)
            .map(|i| mode_order(i).iter().position(|m| *m == User).unwrap())
            .collect();
        assert_eq!(places, vec![0, 1, 2]);
    }

    #[test]
    fn reload_sets_both_parameters() {
        let cmd = reload_command(&[(HUB_SHM, "0"), (HUB_AUTH, "1")]);
        assert!(
            cmd.contains("echo 0 >/sys/module/cohort/parameters/shm || exit 1;"),
            "{cmd}"
        );
        assert!(
            cmd.contains("echo 1 >/sys/module/cohort/parameters/auth || exit 1;"),
            "{cmd}"
        );
        assert!(cmd.contains("rmmod kmsg"), "{cmd}");
        assert!(
            cmd.ends_with("insmod /lib/modules/cohort/kmsg.ko || { dmesg | tail -n 5; exit 1; }")
        );
        assert!(
            cmd.find("shm || exit").unwrap() < cmd.find("insmod").unwrap(),
            "{cmd}"
        );
    }

    #[test]
    fn transports_from_debugfs() {
        let shm = "region_kib=8192 ring_kib=1024 incarnation=3\n\
                   # node joined transport gen session accepted\n\
                   1 joined=1 transport=shm gen=0x2 session=1 accepted=1\n\
                   2 joined=0 transport=tcp gen=0x0 session=0 accepted=0\n\
                   12 joined=0 transport=- gen=0x0 session=0 accepted=0\n";
        assert_eq!(peer_transport(shm, 1).as_deref(), Some("shm"));
        assert_eq!(peer_transport(shm, 2).as_deref(), Some("tcp"));
        assert_eq!(peer_transport(shm, 12).as_deref(), Some("-"));
        assert_eq!(peer_transport(shm, 3), None);
        assert_eq!(peer_transport("none\n", 1).as_deref(), Some("tcp"));
        assert_eq!(peer_transport("cat: can't open\n", 1), None);
    }

    #[test]
    fn measure_names() {
        assert_eq!(measure_name(Mode::Shm, ROUND_TRIP), "kmsg_shm_ping_rtt");
        assert_eq!(measure_name(Mode::Tcp, HUB_ROUND_TRIP), "kmsg_tcp_hreq_rtt");
        assert_eq!(measure_name(Mode::User, ROUND_TRIP), "user_tcp_rtt");
        assert_eq!(measure_name(Mode::User, HUB_ROUND_TRIP), "user_tcp_rtt");
        assert_eq!(measure_name(Mode::User, STREAM), "user_tcp_stream_1mib");
        let m = measures();
        assert_eq!(m.len(), 5 + 5 + 4);
        assert_eq!(m.iter().filter(|(_, u)| *u == "ns").count(), 5);
        // Every ratio is made of measures the run has.
        for x in ratio_specs() {
            assert!(m.iter().any(|(n, _)| *n == x.num), "{}", x.num);
            assert!(m.iter().any(|(n, _)| *n == x.den), "{}", x.den);
        }
    }

    /// Samples where shared memory is `f` times as fast as kmsg over TCP,
    /// and kmsg over TCP `g` times as slow as user space, per repetition.
    fn samples(f: f64, g: f64) -> TransportSamples {
        let mut s = TransportSamples::default();
        for rep in 0..3 {
            let jitter = 1.0 + rep as f64 * 0.01;
            for (name, unit) in measures() {
                let base = if unit == "ns" { 500_000.0 } else { 10e6 } * jitter;
                let factor = if name.starts_with("user_tcp") {
                    1.0
                } else if name.starts_with("kmsg_tcp") {
                    g
                } else {
                    g / f
                };
                let v = if unit == "ns" {
                    base * factor
                } else {
                    base / factor
                };
                s.push(name, v);
            }
        }
        s
    }

    #[test]
    fn record_ratios_and_table() {
        let s = samples(3.0, 0.9);
        assert!(s.complete());
        let r = transport_record(&cfg(), Meta::collect("k"), &s, true);
        assert_eq!(r.benchmark, "transport");
        assert_eq!(r.params.get("auth"), Some(&1));
        assert_eq!(r.params.get("page_count"), Some(&1000));
        assert_eq!(r.measures.len(), 14);
        assert_eq!(r.measure("user_tcp_rtt").unwrap().reps.len(), 3);
        let near = |name: &str, want: f64| {
            let x = r.ratio(name).unwrap();
            assert!((x.value.unwrap() - want).abs() < 1e-9, "{name}: {x:?}");
            x.result.clone()
        };
        assert_eq!(near("shm_tcp_ping", 1.0 / 3.0).as_deref(), Some("PASS"));
        assert_eq!(near("shm_tcp_hreq", 1.0 / 3.0).as_deref(), Some("PASS"));
        assert_eq!(near("shm_tcp_echo_4kib", 3.0).as_deref(), Some("PASS"));
        assert_eq!(near("shm_tcp_stream_1mib", 3.0).as_deref(), Some("PASS"));
        assert_eq!(near("tcp_user_hreq", 0.9).as_deref(), Some("PASS"));
        assert_eq!(near("tcp_user_stream_1mib", 1.0 / 0.9), None);
        assert_eq!(near("shm_user_hreq", 0.3), None);
        let t = render_table(&cfg(), &r);
        assert!(
            t.contains("rtt through the hub shm/TCP = 0.333 (target <= 0.5): PASS"),
            "{t}"
        );
        assert!(
            t.contains("rtt through the hub kmsg TCP/user TCP = 0.900 (target <= 1): PASS"),
            "{t}"
        );
        assert!(
            t.contains("throughput 1 MiB shm/TCP = 3.000 (target >= 2): PASS"),
            "{t}"
        );
        assert!(t.contains("stream 1 MiB msgs (32 MiB)"), "{t}");
        assert!(t.contains("authentication on"), "{t}");

        let slow = transport_record(&cfg(), Meta::collect("k"), &samples(1.5, 1.2), false);
        assert_eq!(slow.params.get("auth"), Some(&0));
        assert!(slow.ratio("shm_tcp_ping").is_none());
        let x = slow.ratio("shm_tcp_ping_noauth").unwrap();
        assert_eq!(x.result.as_deref(), Some("MISS"));
        assert!(x.group.ends_with(", without authentication"));
        assert_eq!(
            slow.ratio("tcp_user_hreq_noauth")
                .unwrap()
                .result
                .as_deref(),
            Some("MISS")
        );
        let t = render_table(&cfg(), &slow);
        assert!(t.contains("authentication off"), "{t}");
        assert!(
            t.contains("throughput 8 B shm/TCP = 1.500 (target >= 2): MISS"),
            "{t}"
        );
        assert!(!TransportSamples::default().complete());
    }

    #[test]
    fn polling_runs_are_named_apart_and_tabled() {
        let polled = TransportConfig {
            shm_poll_us: 400,
            ..cfg()
        };
        let r = transport_record(&polled, Meta::collect("k"), &samples(10.0, 1.1), true);
        assert_eq!(r.params.get("shm_poll_us"), Some(&400));
        assert!(r.ratio("shm_tcp_ping").is_none());
        let x = r.ratio("shm_tcp_ping_poll").unwrap();
        assert!(x.group.ends_with(", receivers polling 400 us"), "{x:?}");
        let t = render_table(&polled, &r);
        assert!(t.contains("receivers polling 400 us"), "{t}");
        assert!(
            t.contains("rtt (ping) shm/TCP = 0.100 (target <= 0.5): PASS"),
            "{t}"
        );
        assert!(
            t.contains("rtt (ping) kmsg TCP/user TCP = 1.100 (target <= 1): MISS"),
            "{t}"
        );
    }

    #[test]
    fn per_repetition_ratios() {
        let s = samples(4.0, 1.0);
        let line = rep_ratios(&s, 1).unwrap();
        assert!(
            line.starts_with("shm_tcp_ping=0.250 shm_tcp_hreq=0.250"),
            "{line}"
        );
        assert!(line.contains("shm_tcp_stream_1mib=4.000"), "{line}");
        assert!(line.ends_with("tcp_user_hreq=1.000"), "{line}");
        assert!(rep_ratios(&s, 3).is_none());
    }
}
