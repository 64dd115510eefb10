// SPDX-License-Identifier: GPL-2.0
//! `cohort stats`: gobelins' counters of every node, side by side.
//!
//! Each node's `/sys/kernel/debug/gobelins/stats` holds `name value` lines
//! (see `gobelins/stats.rs`): events (faults by kind, installs, discards,
//! adoptions), messages sent and received by kind, and the state now
//! (records, pages held, links, synced). This prints one row per counter
//! and one column per node, with the total, then the messages sent per
//! remote fault.

use crate::state::State;
use crate::{capture, require_cluster, Fail};
use std::collections::BTreeMap;

/// Where gobelins shows its counters in a node.
const STATS_FILE: &str = "/sys/kernel/debug/gobelins/stats";
/// Counters that describe the state now: no total is summed for them
/// across nodes but `pages_held`, `records` and `links`, which add up.
const NOT_SUMMED: [&str; 1] = ["synced"];

/// One node's counters, in file order.
pub type Counters = Vec<(String, u64)>;

/// Parses a stats file: `name value` lines; any other line is an error
/// naming it.
pub fn parse(text: &str) -> Result<Counters, String> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let mut words = line.split_whitespace();
        match (
            words.next(),
            words.next().map(str::parse::<u64>),
            words.next(),
        ) {
            (Some(name), Some(Ok(v)), None) => out.push((name.to_string(), v)),
            _ => return Err(format!("not a `name value` line: {line:?}")),
        }
    }
    Ok(out)
}

/// The table for `nodes` (node id and its counters, `None` for a node
/// that could not be read), `all`: also the rows that are 0 everywhere.
pub fn table(nodes: &[(u32, Option<Counters>)], all: bool) -> String {
    let mut names: Vec<String> = Vec::new();
    let mut values: BTreeMap<(String, u32), u64> = BTreeMap::new();
    for (node, counters) in nodes {
        for (name, v) in counters.iter().flatten() {
            if !names.contains(name) {
                names.push(name.clone());
            }
            values.insert((name.clone(), *node), *v);
        }
    }
    let width = names.iter().map(String::len).max().unwrap_or(0).max(7);
    let mut s = format!("{:width$}", "counter");
    for (node, _) in nodes {
        s += &format!(" {:>9}", format!("node{node}"));
    }
    s += &format!(" {:>10}\n", "total");
    for name in &names {
        let cells: Vec<Option<u64>> = nodes
            .iter()
            .map(|(node, c)| {
                c.as_ref()
                    .map(|_| *values.get(&(name.clone(), *node)).unwrap_or(&0))
            })
            .collect();
        let total: u64 = cells.iter().flatten().sum();
        if !all && total == 0 {
            continue;
        }
        s += &format!("{name:width$}");
        for c in &cells {
            match c {
                Some(v) => s += &format!(" {v:>9}"),
                None => s += &format!(" {:>9}", "-"),
            }
        }
        if NOT_SUMMED.contains(&name.as_str()) {
            s += &format!(" {:>10}\n", "");
        } else {
            s += &format!(" {total:>10}\n");
        }
    }
    let sum = |pred: &dyn Fn(&str) -> bool| -> u64 {
        values
            .iter()
            .filter(|((n, _), _)| pred(n))
            .map(|(_, v)| *v)
            .sum()
    };
    let sent = sum(&|n| n.starts_with("sent_"));
    let faults = sum(&|n| n == "remote_faults");
    if faults > 0 {
        s += &format!(
            "# {:.2} page messages sent per remote fault ({sent} sent, {faults} remote faults; \
             every message, recovery and releases included)\n",
            sent as f64 / faults as f64
        );
    }
    s
}

/// `cohort stats`: reads every running node's counters and prints the table.
/// Fails when no node could be read.
pub fn run(state: &State, all: bool, timeout_s: u64) -> Result<(), Fail> {
    let info = require_cluster(state)?;
    let mut nodes = Vec::new();
    for node in 0..info.nodes {
        if state.node_pid(node).is_none() {
            eprintln!("cohort: stats: node {node} is not running");
            nodes.push((node, None));
            continue;
        }
        let counters = match capture(state, node, &format!("cat {STATS_FILE}"), timeout_s) {
            Ok((0, out)) => parse(&out).map_err(|e| format!("{STATS_FILE}: {e}")),
            Ok((status, out)) => Err(format!(
                "cat {STATS_FILE} exited {status} (is gobelins loaded?): {}",
                out.lines().next().unwrap_or("")
            )),
            Err(f) => Err(f.msg.lines().next().unwrap_or("").to_string()),
        };
        match counters {
            Ok(c) => nodes.push((node, Some(c))),
            Err(e) => {
                eprintln!("cohort: stats: node {node}: {e}");
                nodes.push((node, None));
            }
        }
    }
    if nodes.iter().all(|(_, c)| c.is_none()) {
        return Err(Fail::new(
            1,
            "stats: no node's counters could be read".into(),
        ));
    }
    print!("{}", table(&nodes, all));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses() {
        assert_eq!(
            parse("read_faults 5\nsent_get 3\n\n").unwrap(),
            vec![("read_faults".into(), 5), ("sent_get".into(), 3)]
        );
        assert!(parse("read_faults x\n").is_err());
        assert!(parse("read_faults 1 2\n").is_err());
        assert!(parse("lonely\n").is_err());
    }

    #[test]
    fn table_sums_and_hides_zero_rows() {
        let a = parse("remote_faults 2\nsent_get 4\nbad_messages 0\nsynced 1\n").unwrap();
        let b = parse("remote_faults 1\nsent_get 2\nbad_messages 0\nsynced 1\n").unwrap();
        let t = table(&[(0, Some(a.clone())), (1, Some(b)), (2, None)], false);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("counter"), "{t}");
        assert!(
            lines[0].contains("node0") && lines[0].contains("node2"),
            "{t}"
        );
        let row = |name: &str| -> Vec<String> {
            let line = lines
                .iter()
                .find(|l| l.starts_with(name))
                .unwrap_or_else(|| panic!("{name}: {t}"));
            line.split_whitespace().map(String::from).collect()
        };
        assert_eq!(row("remote_faults"), ["remote_faults", "2", "1", "-", "3"]);
        assert_eq!(row("sent_get"), ["sent_get", "4", "2", "-", "6"]);
        assert_eq!(row("synced"), ["synced", "1", "1", "-"]);
        assert!(!t.contains("bad_messages"), "{t}");
        assert!(
            t.contains("# 2.00 page messages sent per remote fault"),
            "{t}"
        );
        let all = table(&[(0, Some(a))], true);
        assert!(all.contains("bad_messages"), "{all}");
    }
}
