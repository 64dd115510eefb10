//! `cohort bench auth`: what authenticating kmsg's connections costs. On
//! the same two nodes and the same boot, kmsg's round trips (the ping of
//! its link thread, and a request through the hub) and its throughput are
//! measured with authentication (ChaCha20-Poly1305 tags on every frame) and
//! without: between the two, kmsg is unloaded on both nodes, the hub's
//! `cohort.auth` parameter (/sys/module/cohort/parameters/auth) flipped,
//! and kmsg loaded again. The modes alternate from one repetition to the
//! next (with, without; without, with; ...) so that a host that slows down
//! weighs on both, and both nodes are left with authentication on.

use cohort_proto::auth::AuthMode;
use std::fmt::Write as _;

use super::record::{Measure, Meta, Ratio, Record, Target};
use super::{
    ensure_kmsg, fmt_ratio, measure_of, median, run_meta, run_ok, save, size_str, wait_peer_up,
    BenchConfig, Runner, KMSG_DEBUGFS, PING_SIZE,
};
use crate::state::State;
use crate::up::node_ip;
use crate::{running_node, Fail};

/// Round trips with authentication may take at most this many times
/// those without (issue #14).
pub const AUTH_RTT_TARGET: f64 = 1.1;
/// The hub's switch, read by kmsg when it loads.
pub const HUB_AUTH: &str = "/sys/module/cohort/parameters/auth";

const AUTH_RTT_GROUP: &str = "round trip: with / without authentication (target <= 1.1)";
const AUTH_TPUT_GROUP: &str = "throughput: with / without authentication";

/// Whether kmsg authenticates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Auth,
    NoAuth,
}

impl Mode {
    /// As kmsg's `params` shows it (`auth=`).
    pub fn name(self) -> &'static str {
        match self {
            Mode::Auth => AuthMode::ChaChaPoly.as_str(),
            Mode::NoAuth => AuthMode::None.as_str(),
        }
    }

    /// The value written to [`HUB_AUTH`].
    fn param(self) -> &'static str {
        match self {
            Mode::Auth => "1",
            Mode::NoAuth => "0",
        }
    }
}

/// The modes of repetition `i` (from 0), in the order they run.
pub fn mode_order(i: usize) -> [Mode; 2] {
    if i.is_multiple_of(2) {
        [Mode::Auth, Mode::NoAuth]
    } else {
        [Mode::NoAuth, Mode::Auth]
    }
}

/// The samples of one mode, in run order.
#[derive(Debug, Default, Clone)]
pub struct ModeSamples {
    pub ping_ns: Vec<f64>,
    pub hreq_ns: Vec<f64>,
    pub bps: Vec<f64>,
}

#[derive(Debug, Default, Clone)]
pub struct AuthSamples {
    pub auth: ModeSamples,
    pub none: ModeSamples,
}

impl AuthSamples {
    fn of(&mut self, mode: Mode) -> &mut ModeSamples {
        match mode {
            Mode::Auth => &mut self.auth,
            Mode::NoAuth => &mut self.none,
        }
    }

    /// Medians: (with, without) for ping, hub round trip, throughput.
    pub fn summary(&self) -> Option<AuthSummary> {
        let m = |v: &Vec<f64>| median(v);
        Some(AuthSummary {
            ping: (m(&self.auth.ping_ns)?, m(&self.none.ping_ns)?),
            hreq: (m(&self.auth.hreq_ns)?, m(&self.none.hreq_ns)?),
            bps: (m(&self.auth.bps)?, m(&self.none.bps)?),
        })
    }
}

/// Medians, each (with authentication, without).
#[derive(Debug, Clone, PartialEq)]
pub struct AuthSummary {
    pub ping: (f64, f64),
    pub hreq: (f64, f64),
    pub bps: (f64, f64),
}

/// The JSON record of a `cohort bench auth` run.
pub fn auth_record(cfg: &BenchConfig, meta: Meta, s: &AuthSamples, m: &AuthSummary) -> Record {
    let mut r = Record::new("auth", meta, [cfg.a, cfg.b]);
    r.params.insert("count".into(), cfg.count);
    r.params.insert("ping_size".into(), PING_SIZE);
    r.params.insert("bytes".into(), cfg.bytes);
    r.params.insert("reps".into(), cfg.reps as u64);
    r.measures = vec![
        measure_of("kmsg_ping_rtt_auth", "ns", &s.auth.ping_ns),
        measure_of("kmsg_ping_rtt_noauth", "ns", &s.none.ping_ns),
        measure_of("kmsg_hreq_rtt_auth", "ns", &s.auth.hreq_ns),
        measure_of("kmsg_hreq_rtt_noauth", "ns", &s.none.hreq_ns),
        measure_of("kmsg_throughput_auth", "B/s", &s.auth.bps),
        measure_of("kmsg_throughput_noauth", "B/s", &s.none.bps),
    ];
    let rtt = Some(Target::at_most(AUTH_RTT_TARGET));
    r.ratios = vec![
        Ratio::new(
            AUTH_RTT_GROUP,
            "rtt_ping",
            "kmsg_ping_rtt_auth / kmsg_ping_rtt_noauth",
            m.ping.0,
            m.ping.1,
            rtt.clone(),
        ),
        Ratio::new(
            AUTH_RTT_GROUP,
            "rtt_hreq",
            "kmsg_hreq_rtt_auth / kmsg_hreq_rtt_noauth",
            m.hreq.0,
            m.hreq.1,
            rtt,
        ),
        Ratio::new(
            AUTH_TPUT_GROUP,
            "throughput",
            "kmsg_throughput_auth / kmsg_throughput_noauth",
            m.bps.0,
            m.bps.1,
            None,
        ),
    ];
    r
}

/// The table printed at the end, from the record's ratios.
pub fn render_auth_table(cfg: &BenchConfig, r: &Record) -> String {
    let us = |ns: f64| format!("{:.1} us", ns / 1000.0);
    let mbs = |bps: f64| format!("{:.1} MB/s", bps / 1e6);
    let v = |name: &str| r.measure(name).map_or(0.0, |m: &Measure| m.value);
    let mut o = String::new();
    let _ = writeln!(
        o,
        "kmsg with and without authentication, node {} -> node {}, median of {} runs each",
        cfg.a, cfg.b, cfg.reps
    );
    let _ = writeln!(
        o,
        "{:<34} {:>12} {:>12} {:>9} {:>8}  result",
        "", "without", "with", "with/w/o", "target"
    );
    let rows = [
        (
            format!("round trip, ping ({PING_SIZE} B, x{})", cfg.count),
            us(v("kmsg_ping_rtt_noauth")),
            us(v("kmsg_ping_rtt_auth")),
            "rtt_ping",
        ),
        (
            format!("round trip, hub ({PING_SIZE} B, x{})", cfg.count),
            us(v("kmsg_hreq_rtt_noauth")),
            us(v("kmsg_hreq_rtt_auth")),
            "rtt_hreq",
        ),
        (
            format!("throughput ({})", size_str(cfg.bytes)),
            mbs(v("kmsg_throughput_noauth")),
            mbs(v("kmsg_throughput_auth")),
            "throughput",
        ),
    ];
    for (what, without, with, name) in rows {
        let ratio = r.ratio(name);
        let target = ratio
            .and_then(|x| x.target.as_ref())
            .map_or(String::new(), |t| format!("{} {}", t.op, t.limit));
        let result = ratio.and_then(|x| x.result.clone()).unwrap_or_default();
        let _ = writeln!(
            o,
            "{what:<34} {without:>12} {with:>12} {:>9} {target:>8}  {result}",
            fmt_ratio(ratio.and_then(|x| x.value))
        );
    }
    for name in ["rtt_ping", "rtt_hreq"] {
        if let Some(x) = r.ratio(name) {
            let _ = writeln!(
                o,
                "{} with/without authentication = {} (target <= {AUTH_RTT_TARGET}): {}",
                if name == "rtt_ping" {
                    "rtt"
                } else {
                    "rtt through the hub"
                },
                fmt_ratio(x.value),
                x.result.as_deref().unwrap_or("")
            );
        }
    }
    o
}

/// The shell text that reloads kmsg in `mode` (see
/// [`super::reload_command`]) and prints the mode its `params` show.
pub fn reload_command(mode: Mode) -> String {
    format!(
        "{}; sed -n 's/.* auth=\\([^ ]*\\).*/\\1/p' {KMSG_DEBUGFS}/params",
        super::reload_command(&[(HUB_AUTH, mode.param())])
    )
}

/// kmsg's mode on `node`, from its `params`.
fn current_mode(state: &State, node: u32) -> Result<String, Fail> {
    let out = run_ok(
        state,
        node,
        "reading kmsg params",
        &format!("cat {KMSG_DEBUGFS}/params"),
    )?;
    Ok(super::kv_str(&super::parse_kv(&out), "auth")
        .unwrap_or("")
        .to_string())
}

/// Reloads kmsg on both nodes in `mode` and waits until they see each
/// other up again.
fn switch(state: &State, a: u32, b: u32, mode: Mode) -> Result<(), Fail> {
    println!("[bench] kmsg on nodes {a} and {b}: auth={}", mode.name());
    for n in [a, b] {
        let out = run_ok(state, n, "reloading kmsg", &reload_command(mode))?;
        let got = out.lines().last().unwrap_or("").trim();
        if got != mode.name() {
            return Err(Fail::new(
                1,
                format!(
                    "node {n}: kmsg reloaded with {HUB_AUTH} = {} says auth={got}",
                    mode.param()
                ),
            ));
        }
    }
    wait_peer_up(state, a, b)?;
    wait_peer_up(state, b, a)
}

fn run_auth_reps(state: &State, r: &Runner) -> Result<AuthSamples, Fail> {
    let cfg = r.cfg;
    let warm = (cfg.count / 10).max(1);
    println!("[bench] warm-up");
    r.kmsg_rtt("ping", warm)?;
    r.kmsg_rtt("hreq", warm)?;
    r.kmsg_bps((cfg.bytes / 4).max(1))?;
    let mut s = AuthSamples::default();
    let mut now = Mode::Auth;
    for i in 0..cfg.reps {
        for mode in mode_order(i) {
            if mode != now {
                switch(state, cfg.a, cfg.b, mode)?;
                now = mode;
                r.kmsg_rtt("ping", warm)?;
            }
            let ping = r.kmsg_rtt("ping", cfg.count)?;
            let hreq = r.kmsg_rtt("hreq", cfg.count)?;
            let bps = r.kmsg_bps(cfg.bytes)?;
            println!(
                "[bench] run {}/{} auth={}: rtt ping {:.1} us, hub {:.1} us; throughput {:.1} MB/s",
                i + 1,
                cfg.reps,
                mode.name(),
                ping / 1000.0,
                hreq / 1000.0,
                bps / 1e6
            );
            let m = s.of(mode);
            m.ping_ns.push(ping);
            m.hreq_ns.push(hreq);
            m.bps.push(bps);
        }
    }
    Ok(s)
}

/// `cohort bench auth`: kmsg with and without authentication on nodes A
/// and B of a cluster that authenticates; the record goes to `cfg.out`.
pub fn run(state: &State, cfg: &BenchConfig) -> Result<(), Fail> {
    if cfg.count == 0 || cfg.bytes == 0 || cfg.reps == 0 {
        return Err(Fail::usage(
            "--count, --bytes and --reps must be at least 1",
        ));
    }
    let (a, b) = (cfg.a, cfg.b);
    running_node(state, a).map_err(|f| Fail::new(1, f.msg))?;
    running_node(state, b).map_err(|f| Fail::new(1, f.msg))?;
    println!("[bench] loading kmsg on nodes {a} and {b} (if needed)");
    for n in [a, b] {
        ensure_kmsg(state, n)?;
        let mode = current_mode(state, n)?;
        if mode != Mode::Auth.name() {
            return Err(Fail::new(
                1,
                format!(
                    "node {n}: kmsg runs with auth={mode}: nothing to compare \
                     (boot the cluster without --no-auth)"
                ),
            ));
        }
        run_ok(
            state,
            n,
            "looking for the hub's auth parameter",
            &format!("[ -w {HUB_AUTH} ] || {{ echo 'no writable {HUB_AUTH}'; exit 1; }}"),
        )?;
    }
    wait_peer_up(state, a, b)?;
    wait_peer_up(state, b, a)?;
    let r = Runner {
        state,
        cfg,
        ip_b: node_ip(b),
    };
    let result = run_auth_reps(state, &r);
    // Authentication back on, whatever happened.
    let back = switch(state, a, b, Mode::Auth);
    let samples = result?;
    back?;
    let Some(m) = samples.summary() else {
        return Err(Fail::new(1, "no samples".into()));
    };
    let record = auth_record(cfg, run_meta(state, a)?, &samples, &m);
    print!("{}", render_auth_table(cfg, &record));
    save(&cfg.out, &record)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> BenchConfig {
        BenchConfig {
            a: 0,
            b: 1,
            count: 100,
            bytes: 1 << 20,
            reps: 3,
            port: 0,
            out: "x".into(),
        }
    }

    #[test]
    fn modes_alternate_and_each_runs_every_repetition() {
        assert_eq!(mode_order(0), [Mode::Auth, Mode::NoAuth]);
        assert_eq!(mode_order(1), [Mode::NoAuth, Mode::Auth]);
        // One switch per repetition: each starts in the mode the last ended in.
        for i in 0..5 {
            assert_eq!(mode_order(i)[1], mode_order(i + 1)[0]);
        }
        assert_eq!(Mode::Auth.name(), "chacha20-poly1305");
        assert_eq!(Mode::NoAuth.name(), "none");
        let cmd = reload_command(Mode::NoAuth);
        assert!(
            cmd.contains("echo 0 >/sys/module/cohort/parameters/auth"),
            "{cmd}"
        );
        assert!(cmd.contains("insmod /lib/modules/cohort/kmsg.ko"), "{cmd}");
        assert!(reload_command(Mode::Auth).contains("echo 1 >"));
    }

    #[test]
    fn record_and_table() {
        let s = AuthSamples {
            auth: ModeSamples {
                ping_ns: vec![110.0, 120.0, 115.0],
                hreq_ns: vec![300.0, 260.0, 280.0],
                bps: vec![90e6, 80e6, 85e6],
            },
            none: ModeSamples {
                ping_ns: vec![100.0, 105.0, 95.0],
                hreq_ns: vec![200.0, 200.0, 200.0],
                bps: vec![100e6, 100e6, 100e6],
            },
        };
        let m = s.summary().unwrap();
        assert_eq!(m.ping, (115.0, 100.0));
        let meta = Meta::collect("k");
        let r = auth_record(&cfg(), meta, &s, &m);
        assert_eq!(r.benchmark, "auth");
        assert_eq!(r.measures.len(), 6);
        assert_eq!(
            r.measure("kmsg_ping_rtt_noauth").unwrap().reps,
            s.none.ping_ns
        );
        let ping = r.ratio("rtt_ping").unwrap();
        assert!((ping.value.unwrap() - 1.15).abs() < 1e-9);
        assert_eq!(ping.result.as_deref(), Some("MISS"));
        let hreq = r.ratio("rtt_hreq").unwrap();
        assert!((hreq.value.unwrap() - 1.4).abs() < 1e-9);
        let tput = r.ratio("throughput").unwrap();
        assert!((tput.value.unwrap() - 0.85).abs() < 1e-9);
        assert!(tput.target.is_none() && tput.result.is_none());
        let t = render_auth_table(&cfg(), &r);
        assert!(
            t.contains("rtt with/without authentication = 1.150 (target <= 1.1): MISS"),
            "{t}"
        );
        assert!(t.contains("throughput (1 MiB)"), "{t}");
        assert!(t.contains("85.0 MB/s"), "{t}");
        assert!(AuthSamples::default().summary().is_none());
    }
}
