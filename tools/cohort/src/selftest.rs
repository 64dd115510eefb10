//! `cohort test`: the in-guest selftests of every node, as results of
//! distinct tests, with each node's kernel log checked.
//!
//! Nodes are tested one at a time. With peer modules (`--peer-modules
//! kmsg,popcorn`), every *other* node has them loaded while a node is
//! tested, and the tested node starts without them (its tests load and
//! unload them as they need), so the tests that need a peer run against
//! real peers instead of skipping; the runner then exports
//! `COHORT_REQUIRE_PEERS=1`, which turns a missing peer into a failure.
//!
//! When the last node is done, the tested nodes get the peer modules
//! again and every node must see every other one up, so the cluster is
//! left whole for what comes next (the cluster scenarios); a failure there
//! is the test `selftest: teardown (peer modules)`.
//!
//! After each node's run the console logs of all nodes are scanned for
//! kernel problems ([`crate::logscan`]): one printed on the tested node while
//! a test ran fails that test; any other one (on the tested node outside
//! a test, or on a peer) fails `kernel log: during selftests`.

use std::io::{self, Write};
use std::thread;
use std::time::Duration;

use crate::logscan::{self, Marks, Scanner};
use crate::modules::{self, Module};
use crate::results::{self, Record, Status, Summary};
use crate::state::{log_excerpt, State};
use crate::tap;
use crate::{agent, capture, require_cluster, Fail};

const SELFTEST_RUNNER: &str = "/usr/lib/cohort/selftests/run";
/// The test that carries problems no single test can be blamed for.
const LOG_TEST: &str = "kernel log: during selftests";
/// The test that the cluster is whole again after the selftests.
const TEARDOWN_TEST: &str = "selftest: teardown (peer modules)";
/// How long the peers get to load their modules and see each other.
const PEERS_TIMEOUT_S: u64 = 60;

/// `rmmod` each of `order` that is loaded, dependents first.
fn unload_cmd(order: &[Module]) -> String {
    let list: Vec<&str> = order.iter().rev().map(|m| m.name()).collect();
    format!(
        "for m in {}; do grep -q \"^$m \" /proc/modules || continue; \
         rmmod $m || exit 1; done",
        list.join(" ")
    )
}

/// `node` starts without any of Cohort's modules; every other node gets
/// `order` and sees the others up. An error says what failed.
fn prepare(state: &State, nodes: u32, node: u32, order: &[Module]) -> Result<(), String> {
    let all = modules::load_order(&[Module::Kmsg, Module::Popcorn, Module::Gobelins]);
    let unload = unload_cmd(&all);
    match capture(state, node, &unload, 120) {
        Ok((0, _)) => {}
        Ok((st, out)) => {
            return Err(format!(
                "node {node}: `{unload}` exited {st}: {}",
                out.trim_end()
            ))
        }
        Err(e) => return Err(e.msg),
    }
    let others: Vec<u32> = (0..nodes).filter(|&n| n != node).collect();
    if others.is_empty() {
        return Ok(());
    }
    modules::load(state, &others, &others, order, PEERS_TIMEOUT_S).map_err(|f| f.msg)
}

/// Kernel problems printed since `marks`: on the tested node they go to
/// the test that was running, the rest to [`LOG_TEST`]. Returns the records.
fn check_logs(state: &State, nodes: u32, node: u32, marks: &Marks, place: &str) -> Vec<Record> {
    let scanner = Scanner::new();
    let mut records = Vec::new();
    let mut loose: Vec<String> = Vec::new();
    for n in 0..nodes {
        let text = match logscan::since(state, n, marks.get(n)) {
            Ok(t) => t,
            Err(e) => {
                loose.push(format!("node {n}: cannot read its console log: {e}"));
                continue;
            }
        };
        if n == node {
            for (test, lines) in logscan::by_test(&scanner, &text) {
                let lines = lines.join("\n");
                match test {
                    Some(t) => records.push(Record::new(
                        Status::Fail,
                        &t,
                        place,
                        &format!("kernel log of node {n} while it ran:\n{lines}"),
                    )),
                    None => loose.push(format!("node {n} (tested), outside any test:\n{lines}")),
                }
            }
        } else {
            let p = scanner.problems(&text);
            if !p.is_empty() {
                loose.push(format!("node {n} (a peer):\n{}", p.join("\n")));
            }
        }
    }
    if loose.is_empty() {
        records.push(Record::new(Status::Pass, LOG_TEST, place, ""));
    } else {
        records.push(Record::new(
            Status::Fail,
            LOG_TEST,
            place,
            &loose.join("\n"),
        ));
    }
    records
}

/// Run the selftests of one node; every result becomes a record.
fn run_node(
    state: &State,
    nodes: u32,
    node: u32,
    timeout_s: u64,
    peer_modules: &[Module],
) -> Vec<Record> {
    let place = results::place(Some(node));
    let prefix = format!("[node {node}] ");
    let mut collector = tap::Collector::new(&place);
    let Some(pid) = state.node_pid(node) else {
        println!("{prefix}QEMU is not running");
        eprintln!("{}", log_excerpt(state, node, 30));
        collector.abort(&format!("did not run: node {node}'s QEMU is not running"));
        return collector.records;
    };
    // From here on, anything a kernel prints counts: loading and unloading
    // the modules included.
    let marks = Marks::now(state, nodes);
    if !peer_modules.is_empty() {
        let names: Vec<&str> = peer_modules.iter().map(|m| m.name()).collect();
        println!(
            "{prefix}loading {} on the other nodes, none of them here",
            names.join(",")
        );
        if let Err(e) = prepare(state, nodes, node, peer_modules) {
            println!("{prefix}setup failed: {e}");
            let mut records = vec![Record::new(
                Status::Fail,
                "selftest: setup (peer modules)",
                &place,
                &e,
            )];
            let logs = check_logs(state, nodes, node, &marks, &place);
            // A test whose TAP passed but whose run printed a kernel problem failed:
            // it keeps only the failure.
            records.retain(|r| {
                r.status != Status::Pass
                    || !logs
                        .iter()
                        .any(|l| l.status == Status::Fail && l.test == r.test)
            });
            records.extend(logs);
            return records;
        }
    }
    let require = if peer_modules.is_empty() {
        ""
    } else {
        "COHORT_REQUIRE_PEERS=1 "
    };
    let cmd = format!("{require}COHORT_NODE={node} COHORT_NODES={nodes} {SELFTEST_RUNNER}");
    let mut splitter = tap::LineSplitter::new();
    let stdout = io::stdout();
    let emit = |line: &str, c: &mut tap::Collector| -> io::Result<()> {
        c.line(line);
        let mut out = stdout.lock();
        writeln!(out, "{prefix}{line}")?;
        out.flush()
    };
    let result = agent::run(state, node, pid, &cmd, timeout_s, &mut |data: &[u8]| {
        for line in splitter.push(data) {
            emit(&line, &mut collector)?;
        }
        Ok(())
    });
    if let Some(line) = splitter.finish() {
        let _ = emit(&line, &mut collector);
    }
    match result {
        Ok(0) => {}
        Ok(status) => collector.abort(&format!("{SELFTEST_RUNNER} exited with status {status}")),
        Err(e) => {
            println!("{prefix}{e}");
            eprintln!("node {node}: {e}\n{}", log_excerpt(state, node, 30));
            collector.abort(&format!("was cut off: {e}"));
        }
    }
    // Let the consoles catch up with what the last test printed.
    thread::sleep(Duration::from_millis(500));
    let mut records = collector.records;
    records.extend(check_logs(state, nodes, node, &marks, &place));
    for r in records.iter().filter(|r| r.status == Status::Fail) {
        println!("{prefix}FAILED {}", r.test);
        for l in r.detail.lines().take(40) {
            println!("{prefix}#   {l}");
        }
    }
    records
}

/// Appends `records` to `$COHORT_RESULTS` (if set).
fn save(records: &[Record]) -> Result<(), Fail> {
    results::append_to_env_file(records)
        .map_err(|e| Fail::new(1, format!("cannot write $COHORT_RESULTS: {e}")))
}

/// `cohort test`: every listed node in turn; records go to
/// `$COHORT_RESULTS` if set. Fails if any test failed.
pub fn run(
    state: &State,
    list: Option<Vec<u32>>,
    timeout_s: u64,
    peer_modules: &[String],
) -> Result<(), Fail> {
    let info = require_cluster(state)?;
    let nodes = list.unwrap_or_else(|| (0..info.nodes).collect());
    if let Some(bad) = nodes.iter().find(|&&n| n >= info.nodes) {
        return Err(Fail::usage(&format!(
            "node {bad} does not exist (the cluster has {} nodes)",
            info.nodes
        )));
    }
    let peer_modules =
        modules::load_order(&modules::parse(&peer_modules.join(",")).map_err(|e| Fail::usage(&e))?);
    let mut summary = Summary::new();
    for &node in &nodes {
        let records = run_node(state, info.nodes, node, timeout_s, &peer_modules);
        let mut this_node = Summary::new();
        for r in &records {
            this_node.add(r.clone());
        }
        let c = this_node.counts();
        println!(
            "[node {node}] {} passed, {} failed, {} skipped",
            c.passed, c.failed, c.skipped
        );
        save(&records)?;
        for r in records {
            summary.add(r);
        }
    }
    if !peer_modules.is_empty() {
        let all: Vec<u32> = (0..info.nodes).collect();
        let (status, detail) =
            match modules::load(state, &nodes, &all, &peer_modules, PEERS_TIMEOUT_S) {
                Ok(()) => (Status::Pass, String::new()),
                Err(f) => {
                    println!("[teardown] {}", f.msg);
                    (Status::Fail, f.msg)
                }
            };
        let record = Record::new(status, TEARDOWN_TEST, &results::place(None), &detail);
        save(std::slice::from_ref(&record))?;
        summary.add(record);
    }
    let c = summary.counts();
    println!(
        "selftests: {} passed, {} failed, {} skipped (distinct tests over the nodes)",
        c.passed, c.failed, c.skipped
    );
    if c.failed > 0 {
        return Err(Fail::new(1, format!("{} selftest(s) failed", c.failed)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unload_takes_dependents_first() {
        let all = modules::load_order(&[Module::Gobelins, Module::Popcorn, Module::Kmsg]);
        assert!(
            unload_cmd(&all).starts_with("for m in popcorn gobelins kmsg;"),
            "{}",
            unload_cmd(&all)
        );
    }
}
