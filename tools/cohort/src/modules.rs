//! `cohort up --modules`: load Cohort's modules on the nodes, in the order
//! their dependency table gives, through the agent; then wait until the
//! mesh is complete (every node's kmsg sees every other node up and, with
//! popcorn, every node's `pcntl nodes` lists every node).

use std::collections::BTreeMap;
use std::fs;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use clap::ValueEnum;

use crate::state::State;
use crate::{capture, Fail};

/// Where the initramfs puts the modules.
pub const MODULE_DIR: &str = "/lib/modules/cohort";
const KMSG_PEERS: &str = "/sys/kernel/debug/kmsg/peers";
/// Separates the peers file from `pcntl nodes` in one query's output.
const PCNTL_MARK: &str = "--- pcntl nodes";
/// Lines of a node's dmesg shown when an insmod fails.
const DMESG_LINES: usize = 20;
/// How often the mesh is polled, and progress printed at least.
const POLL: Duration = Duration::from_millis(500);
const NOTE_EVERY: Duration = Duration::from_secs(5);

/// One of Cohort's modules.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub enum Module {
    Kmsg,
    Popcorn,
    Gobelins,
}

/// Each module and the modules that must be loaded before it: kmsg carries
/// the messages of popcorn and gobelins, and a process popcorn moves keeps
/// its memory in a container of gobelins.
pub const DEPENDENCIES: &[(Module, &[Module])] = &[
    (Module::Kmsg, &[]),
    (Module::Gobelins, &[Module::Kmsg]),
    (Module::Popcorn, &[Module::Kmsg, Module::Gobelins]),
];

impl Module {
    /// The module's name, as in /proc/modules and `--modules`.
    pub fn name(self) -> &'static str {
        match self {
            Module::Kmsg => "kmsg",
            Module::Popcorn => "popcorn",
            Module::Gobelins => "gobelins",
        }
    }

    pub fn from_name(name: &str) -> Option<Module> {
        Module::value_variants()
            .iter()
            .copied()
            .find(|m| m.name() == name)
    }

    /// The module file in a node.
    pub fn path(self) -> String {
        format!("{MODULE_DIR}/{}.ko", self.name())
    }

    fn deps(self) -> &'static [Module] {
        DEPENDENCIES
            .iter()
            .find(|(m, _)| *m == self)
            .map_or(&[], |(_, d)| d)
    }
}

/// The modules to load for `requested`, with their dependencies, each
/// after the modules it depends on. The order depends only on the table,
/// not on the order of `requested`.
pub fn load_order(requested: &[Module]) -> Vec<Module> {
    // Everything requested, and what it needs.
    let mut wanted: Vec<Module> = vec![];
    let mut todo: Vec<Module> = requested.to_vec();
    while let Some(m) = todo.pop() {
        if !wanted.contains(&m) {
            wanted.push(m);
            todo.extend_from_slice(m.deps());
        }
    }
    // Repeatedly take, in table order, the first module whose
    // dependencies are all placed.
    let mut order: Vec<Module> = vec![];
    while order.len() < wanted.len() {
        let next = DEPENDENCIES.iter().map(|(m, _)| *m).find(|m| {
            wanted.contains(m) && !order.contains(m) && m.deps().iter().all(|d| order.contains(d))
        });
        match next {
            Some(m) => order.push(m),
            None => break, // a cycle in the table; its test keeps it out
        }
    }
    order
}

/// The list as written to the state dir's `modules` file.
pub fn render(list: &[Module]) -> String {
    let names: Vec<&str> = list.iter().map(|m| m.name()).collect();
    format!("{}\n", names.join(","))
}

pub fn parse(text: &str) -> Result<Vec<Module>, String> {
    text.trim()
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| Module::from_name(s.trim()).ok_or_else(|| format!("unknown module {s:?}")))
        .collect()
}

/// The modules `up --modules` recorded in the state dir (none if absent).
pub fn recorded(state: &State) -> Result<Vec<Module>, Fail> {
    let path = state.path("modules");
    match fs::read_to_string(&path) {
        Ok(text) => parse(&text).map_err(|e| Fail::new(1, format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(vec![]),
        Err(e) => Err(Fail::new(1, format!("cannot read {}: {e}", path.display()))),
    }
}

pub fn record(state: &State, list: &[Module]) -> Result<(), Fail> {
    let path = state.path("modules");
    fs::write(&path, render(list))
        .map_err(|e| Fail::new(1, format!("cannot write {}: {e}", path.display())))
}

/// One node's view of the mesh.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct View {
    /// How many of the other nodes its kmsg shows `up`.
    pub up: usize,
    /// What keeps the view from being complete, one line each.
    pub problems: Vec<String>,
}

/// `node`'s view, from its kmsg peers file and (with popcorn) its `pcntl
/// nodes` output. It is complete when the node sees itself `self` and
/// every other node of `nodes` `up`, and `pcntl nodes` lists them all.
pub fn view(node: u32, nodes: &[u32], peers: &str, pcntl: Option<&str>) -> View {
    let states: BTreeMap<u32, &str> = peers
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            Some((w.next()?.parse().ok()?, w.next()?))
        })
        .collect();
    let mut v = View::default();
    for &m in nodes {
        let want = if m == node { "self" } else { "up" };
        let got = states.get(&m).copied().unwrap_or("missing");
        if got != want {
            v.problems
                .push(format!("node {node} sees node {m} as '{got}'"));
        } else if m != node {
            v.up += 1;
        }
    }
    if let Some(text) = pcntl {
        let listed: Vec<u32> = text.lines().filter_map(|l| l.trim().parse().ok()).collect();
        let missing: Vec<String> = nodes
            .iter()
            .filter(|m| !listed.contains(m))
            .map(|m| m.to_string())
            .collect();
        if !missing.is_empty() {
            v.problems.push(format!(
                "node {node}: `pcntl nodes` does not list node(s) {} (it printed: {})",
                missing.join(","),
                text.split_whitespace().collect::<Vec<_>>().join(" ")
            ));
        }
    }
    v
}

fn left(deadline: Instant) -> u64 {
    deadline
        .saturating_duration_since(Instant::now())
        .as_secs()
        .max(1)
}

/// Load `order` on one node, printing progress.
fn load_node(state: &State, node: u32, order: &[Module], deadline: Instant) -> Result<(), Fail> {
    for m in order {
        let (name, path) = (m.name(), m.path());
        let cmd = format!(
            "if grep -q '^{name} ' /proc/modules; then echo 'already loaded'; else insmod {path}; fi"
        );
        let t = Instant::now();
        eprintln!("[modules] node {node}: loading {name}");
        let (status, out) = capture(state, node, &cmd, left(deadline))
            .map_err(|f| Fail::new(1, format!("loading {name}: {}", f.msg)))?;
        let out = out.trim_end();
        if status == 0 && out == "already loaded" {
            eprintln!("[modules] node {node}: {name} was already loaded");
        } else if status == 0 {
            eprintln!(
                "[modules] node {node}: {name} loaded in {:.1} s",
                t.elapsed().as_secs_f64()
            );
        } else {
            let dmesg = match capture(state, node, &format!("dmesg | tail -n {DMESG_LINES}"), 30) {
                Ok((_, d)) => d,
                Err(f) => format!("(cannot read its dmesg: {})", f.msg),
            };
            return Err(Fail::new(
                1,
                format!(
                    "node {node}: insmod {path} failed (exit {status}):\n{}\n\
                     ---- last {DMESG_LINES} lines of node {node}'s dmesg ----\n{}\n\
                     ---- end of dmesg ----",
                    if out.is_empty() { "(no output)" } else { out },
                    dmesg.trim_end()
                ),
            ));
        }
    }
    Ok(())
}

/// Load `order` on each of `load_on` (in parallel, one thread per node),
/// then wait until every node of `mesh` sees every other one up. The
/// whole takes at most `timeout_s`.
pub fn load(
    state: &State,
    load_on: &[u32],
    mesh: &[u32],
    order: &[Module],
    timeout_s: u64,
) -> Result<(), Fail> {
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs(timeout_s);
    let names: Vec<&str> = order.iter().map(|m| m.name()).collect();
    eprintln!(
        "[modules] loading {} on node(s) {}",
        names.join(", "),
        join_nodes(load_on)
    );
    let (tx, rx) = mpsc::channel();
    thread::scope(|s| {
        for &node in load_on {
            let tx = tx.clone();
            s.spawn(move || {
                let _ = tx.send(load_node(state, node, order, deadline));
            });
        }
    });
    drop(tx);
    let failures: Vec<String> = rx.iter().filter_map(|r| r.err()).map(|f| f.msg).collect();
    if !failures.is_empty() {
        return Err(Fail::new(1, failures.join("\n")));
    }
    if !order.contains(&Module::Kmsg) {
        return Ok(()); // no mesh to wait for
    }
    wait_mesh(
        state,
        mesh,
        order.contains(&Module::Popcorn),
        t0,
        deadline,
        timeout_s,
    )
}

fn join_nodes(nodes: &[u32]) -> String {
    let v: Vec<String> = nodes.iter().map(|n| n.to_string()).collect();
    v.join(",")
}

/// One node's view: (peers file, `pcntl nodes` output).
fn query(
    state: &State,
    node: u32,
    popcorn: bool,
    deadline: Instant,
) -> Result<(String, Option<String>), String> {
    let mut cmd = format!("cat {KMSG_PEERS}");
    if popcorn {
        cmd.push_str(&format!("; echo '{PCNTL_MARK}'; pcntl nodes"));
    }
    let (_, out) = capture(state, node, &cmd, left(deadline).min(30)).map_err(|f| f.msg)?;
    Ok(match out.split_once(&format!("{PCNTL_MARK}\n")) {
        Some((peers, pcntl)) if popcorn => (peers.to_string(), Some(pcntl.to_string())),
        _ => (out, popcorn.then(String::new)),
    })
}

fn wait_mesh(
    state: &State,
    nodes: &[u32],
    popcorn: bool,
    t0: Instant,
    deadline: Instant,
    timeout_s: u64,
) -> Result<(), Fail> {
    let mut last_line = String::new();
    let mut last_note = Instant::now();
    loop {
        let mut problems = vec![];
        let mut counts = vec![];
        for &n in nodes {
            match query(state, n, popcorn, deadline) {
                Ok((peers, pcntl)) => {
                    let v = view(n, nodes, &peers, pcntl.as_deref());
                    counts.push(format!("node {n} sees {}/{}", v.up, nodes.len() - 1));
                    problems.extend(v.problems);
                }
                Err(e) => {
                    counts.push(format!("node {n} not answering"));
                    problems.push(e);
                }
            }
        }
        if problems.is_empty() {
            eprintln!(
                "[modules] mesh complete: node(s) {} {}{} ({:.1} s)",
                join_nodes(nodes),
                if nodes.len() > 1 {
                    "see each other up"
                } else {
                    "up alone"
                },
                if popcorn {
                    ", `pcntl nodes` lists them all"
                } else {
                    ""
                },
                t0.elapsed().as_secs_f64()
            );
            return Ok(());
        }
        let line = format!("peers up: {}", counts.join(", "));
        if line != last_line || last_note.elapsed() >= NOTE_EVERY {
            eprintln!("[modules] {line} ({} s)", t0.elapsed().as_secs());
            last_line = line;
            last_note = Instant::now();
        }
        if Instant::now() >= deadline {
            return Err(Fail::new(
                1,
                format!(
                    "the mesh is not complete after {timeout_s} s (--modules-timeout):\n{}",
                    problems.join("\n")
                ),
            ));
        }
        thread::sleep(POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Module::*;

    #[test]
    fn dependencies_come_first() {
        assert_eq!(load_order(&[Popcorn, Kmsg]), [Kmsg, Gobelins, Popcorn]);
        assert_eq!(load_order(&[Kmsg, Popcorn]), [Kmsg, Gobelins, Popcorn]);
        assert_eq!(
            load_order(&[Gobelins, Popcorn, Kmsg]),
            [Kmsg, Gobelins, Popcorn]
        );
        assert_eq!(
            load_order(&[Kmsg, Gobelins, Popcorn]),
            [Kmsg, Gobelins, Popcorn]
        );
        assert_eq!(load_order(&[Kmsg, Kmsg]), [Kmsg]);
        assert!(load_order(&[]).is_empty());
    }

    #[test]
    fn dependencies_are_added() {
        assert_eq!(load_order(&[Popcorn]), [Kmsg, Gobelins, Popcorn]);
        assert_eq!(load_order(&[Gobelins]), [Kmsg, Gobelins]);
    }

    #[test]
    fn table_is_complete_and_acyclic() {
        let all = Module::value_variants();
        for m in all {
            assert_eq!(
                DEPENDENCIES.iter().filter(|(x, _)| x == m).count(),
                1,
                "{m:?}"
            );
        }
        let order = load_order(all);
        assert_eq!(order.len(), all.len());
        for (i, m) in order.iter().enumerate() {
            for d in m.deps() {
                assert!(order[..i].contains(d), "{m:?} before its dependency {d:?}");
            }
        }
    }

    #[test]
    fn names() {
        for m in Module::value_variants() {
            let pv = m.to_possible_value().unwrap();
            assert_eq!(pv.get_name(), m.name());
            assert_eq!(Module::from_name(m.name()), Some(*m));
        }
        assert_eq!(Module::from_name("bogus"), None);
        assert_eq!(Popcorn.path(), "/lib/modules/cohort/popcorn.ko");
    }

    #[test]
    fn recorded_list_round_trip() {
        let l = [Kmsg, Popcorn, Gobelins];
        assert_eq!(render(&l), "kmsg,popcorn,gobelins\n");
        assert_eq!(parse(&render(&l)), Ok(l.to_vec()));
        assert_eq!(parse("\n"), Ok(vec![]));
        assert!(parse("kmsg,nope\n").is_err());
    }

    const PEERS0: &str = "# id state ip tx_msgs rx_msgs\n\
                          0 self 169.254.42.1 tx_msgs=0 rx_msgs=0\n\
                          1 up 169.254.42.2 tx_msgs=5 rx_msgs=5 rtt_ns=100\n\
                          2 down 169.254.42.3 tx_msgs=0\n";

    fn problems(node: u32, nodes: &[u32], peers: &str, pcntl: Option<&str>) -> Vec<String> {
        view(node, nodes, peers, pcntl).problems
    }

    #[test]
    fn complete_views() {
        assert_eq!(
            view(0, &[0, 1], PEERS0, None),
            View {
                up: 1,
                problems: vec![]
            }
        );
        assert!(problems(0, &[0, 1], PEERS0, Some("0\n1\n")).is_empty());
        assert!(problems(2, &[2], "2 self 169.254.42.3\n", None).is_empty());
    }

    #[test]
    fn incomplete_views() {
        let v = view(0, &[0, 1, 2], PEERS0, None);
        assert_eq!(v.up, 1);
        assert_eq!(v.problems, ["node 0 sees node 2 as 'down'"]);
        assert_eq!(
            problems(1, &[0, 1], PEERS0, None),
            ["node 1 sees node 0 as 'self'", "node 1 sees node 1 as 'up'"]
        );
        assert_eq!(
            problems(0, &[0, 3], PEERS0, None),
            ["node 0 sees node 3 as 'missing'"]
        );
        let p = problems(0, &[0, 1], PEERS0, Some("0\n"));
        assert_eq!(p.len(), 1);
        assert!(p[0].contains("does not list node(s) 1"), "{p:?}");
        let v = view(0, &[0, 1], "cat: can't open\n", None);
        assert_eq!((v.up, v.problems.len()), (0, 2));
    }
}
