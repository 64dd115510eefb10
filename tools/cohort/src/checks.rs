//! `cohort logscan` and `cohort report`: the kernel-log check that ends
//! every cluster scenario and every teardown, and the one count of
//! distinct tests that ends `make check`.

use std::fs;

use crate::cli::LogscanArgs;
use crate::logscan::{self, Marks, Scanner};
use crate::results::{self, Record, Status, Summary};
use crate::state::State;
use crate::{capture, require_cluster, Fail};

/// Force a kmemleak scan and print its report. The first scan only ages
/// new objects: an object is reported once it has been unreferenced for
/// 5 s, so the scan runs twice, 6 s apart. Nothing when the kernel has no
/// kmemleak.
const KMEMLEAK_CMD: &str = "f=/sys/kernel/debug/kmemleak; [ -e $f ] || exit 0; \
    echo scan >$f && sleep 6 && echo scan >$f && cat $f";

/// `cohort logscan`: every node's console log since the marks (or all of
/// it), plus kmemleak's report with `--kmemleak`. A node whose agent does
/// not answer is a failure, not a clean log. Exit 1 on any problem.
pub fn logscan(state: &State, o: &LogscanArgs) -> Result<i32, Fail> {
    let info = require_cluster(state)?;
    if let Some(path) = &o.mark {
        fs::write(path, Marks::now(state, info.nodes).render())
            .map_err(|e| Fail::new(1, format!("{path}: {e}")))?;
        return Ok(0);
    }
    let marks = match &o.since {
        Some(path) => {
            let text =
                fs::read_to_string(path).map_err(|e| Fail::new(1, format!("{path}: {e}")))?;
            Some(
                Marks::parse(&text)
                    .ok_or_else(|| Fail::new(1, format!("{path}: not a marks file")))?,
            )
        }
        None => None,
    };
    let scanner = Scanner::new();
    let mut problems: Vec<String> = Vec::new();
    for n in 0..info.nodes {
        // Reachability first: it also lets the console catch up.
        if !o.logs_only {
            match capture(state, n, "true", 30) {
                Ok((0, _)) => {}
                Ok((st, out)) => problems.push(format!("node {n}: agent check exited {st}: {out}")),
                Err(e) => problems.push(format!("node {n} cannot be reached: {}", e.msg)),
            }
        }
        if o.kmemleak && !o.logs_only {
            match capture(state, n, KMEMLEAK_CMD, 120) {
                Ok((0, out)) => {
                    let p = scanner.problems(&out);
                    if !p.is_empty() {
                        problems.push(format!("node {n}: kmemleak:\n{}", p.join("\n")));
                    }
                }
                Ok((st, out)) => problems.push(format!(
                    "node {n}: kmemleak scan exited {st}: {}",
                    out.trim_end()
                )),
                Err(e) => problems.push(format!("node {n}: kmemleak scan: {}", e.msg)),
            }
        }
        let mark = marks.as_ref().and_then(|m| m.get(n));
        match logscan::since(state, n, mark) {
            Ok(text) => {
                let p = scanner.problems(&text);
                if !p.is_empty() {
                    problems.push(format!("node {n} kernel log:\n{}", p.join("\n")));
                }
            }
            Err(e) => problems.push(format!("node {n}: cannot read its console log: {e}")),
        }
    }
    let clean = problems.is_empty();
    for p in &problems {
        for l in p.lines() {
            println!("# {l}");
        }
    }
    if let Some(test) = &o.test {
        let status = if clean { Status::Pass } else { Status::Fail };
        let r = Record::new(status, test, &results::place(None), &problems.join("\n"));
        results::append_to_env_file(&[r])
            .map_err(|e| Fail::new(1, format!("cannot write $COHORT_RESULTS: {e}")))?;
    }
    println!(
        "logscan: {} node(s), {}",
        info.nodes,
        if clean { "clean" } else { "PROBLEMS (above)" }
    );
    Ok(if clean { 0 } else { 1 })
}

/// `cohort report FILE...`: merge result records, print TAP for the
/// distinct tests and `N passed, N failed, N skipped`. Exit 1 if any
/// failed or no test was found.
pub fn report(files: &[String]) -> Result<i32, Fail> {
    if files.is_empty() {
        return Err(Fail::usage("report needs at least one results file"));
    }
    let mut s = Summary::new();
    for f in files {
        let text = fs::read_to_string(f).map_err(|e| Fail::new(1, format!("{f}: {e}")))?;
        s.add_text(&text);
    }
    print!("{}", s.render());
    let c = s.counts();
    if c.passed + c.failed + c.skipped == 0 {
        eprintln!("cohort report: no results in {}", files.join(", "));
    }
    Ok(if c.failed > 0 || c.passed + c.skipped == 0 {
        1
    } else {
        0
    })
}
