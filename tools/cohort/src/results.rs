//! Test results of a whole `make check`, counted as distinct tests.
//!
//! Every part of the run (lints, host tests, the selftests of each node of
//! each cluster round, the cluster scenarios, the kernel-log checks) appends
//! [`Record`]s to a results file, one line each:
//!
//! ```text
//! <pass|fail|skip> TAB <test> TAB <place> TAB <detail>
//! ```
//!
//! `test` names one test everywhere it runs (`selftest: kmsg_test:
//! global.ping`), `place` says where this result came from (`3 nodes,
//! node 2`), and `detail` is a reason or the lines that show a failure, with
//! newlines written as `\n` and backslashes as `\\`.
//!
//! [`Summary`] merges the records of one test: it failed if it failed
//! anywhere, passed if it passed somewhere and failed nowhere (a skip in one
//! place, for a reason such as "needs 3 nodes" in a 2-node round, is listed
//! beside the pass), and is skipped only if it was skipped everywhere.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// What one run of a test gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    Pass,
    Fail,
    Skip,
}

impl Status {
    fn word(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Skip => "skip",
        }
    }

    fn from_word(w: &str) -> Option<Status> {
        match w {
            "pass" => Some(Status::Pass),
            "fail" => Some(Status::Fail),
            "skip" => Some(Status::Skip),
            _ => None,
        }
    }

    /// `pass`, `fail` or `skip`, for a command line.
    pub fn parse(w: &str) -> Result<Status, String> {
        Status::from_word(w).ok_or_else(|| format!("{w:?} is not pass, fail or skip"))
    }
}

/// One result of one test in one place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub status: Status,
    pub test: String,
    pub place: String,
    pub detail: String,
}

/// Tabs and newlines cannot appear in a field: a test name or place with
/// them is written with spaces; a detail keeps its lines escaped.
fn flat(s: &str) -> String {
    s.replace(['\t', '\n', '\r'], " ")
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('\n', "\\n")
        .replace('\t', " ")
        .replace('\r', "")
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

impl Record {
    pub fn new(status: Status, test: &str, place: &str, detail: &str) -> Record {
        Record {
            status,
            test: test.to_string(),
            place: place.to_string(),
            detail: detail.to_string(),
        }
    }

    /// The record as one line, without the newline.
    pub fn render(&self) -> String {
        format!(
            "{}\t{}\t{}\t{}",
            self.status.word(),
            flat(&self.test),
            flat(&self.place),
            escape(&self.detail)
        )
    }

    /// Parse a line written by [`Record::render`] (or by a script that
    /// follows the same format). `None` for anything else.
    pub fn parse(line: &str) -> Option<Record> {
        let mut f = line.splitn(4, '\t');
        let status = Status::from_word(f.next()?)?;
        let test = f.next()?.trim();
        if test.is_empty() {
            return None;
        }
        let place = f.next().unwrap_or("").trim();
        let detail = unescape(f.next().unwrap_or(""));
        Some(Record::new(status, test, place, &detail))
    }
}

/// Append records to the file named by `$COHORT_RESULTS`, if it is set.
/// A file that cannot be written is an error: results must not vanish.
pub fn append_to_env_file(records: &[Record]) -> std::io::Result<()> {
    use std::io::Write;
    let Some(path) = std::env::var_os("COHORT_RESULTS") else {
        return Ok(());
    };
    let mut text = String::new();
    for r in records {
        text.push_str(&r.render());
        text.push('\n');
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    f.write_all(text.as_bytes())
}

/// The place a result comes from inside a cluster round: `$COHORT_ROUND`
/// (set by `make check`, e.g. "3 nodes") and the node.
pub fn place(node: Option<u32>) -> String {
    let round = std::env::var("COHORT_ROUND").unwrap_or_default();
    match (round.is_empty(), node) {
        (true, None) => "cluster".to_string(),
        (true, Some(n)) => format!("node {n}"),
        (false, None) => round,
        (false, Some(n)) => format!("{round}, node {n}"),
    }
}

/// Everything known about one test after merging.
#[derive(Debug, Default, Clone)]
struct Merged {
    passed: Vec<String>,
    failed: Vec<(String, String)>,
    skipped: Vec<(String, String)>,
}

impl Merged {
    fn status(&self) -> Status {
        if !self.failed.is_empty() {
            Status::Fail
        } else if !self.passed.is_empty() {
            Status::Pass
        } else {
            Status::Skip
        }
    }
}

/// Totals over distinct tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
}

/// Records merged by test name.
#[derive(Debug, Default)]
pub struct Summary {
    tests: BTreeMap<String, Merged>,
    /// Lines of the input that were not records (reported, never dropped
    /// silently).
    pub malformed: Vec<String>,
}

impl Summary {
    pub fn new() -> Summary {
        Summary::default()
    }

    pub fn add(&mut self, r: Record) {
        let m = self.tests.entry(r.test).or_default();
        match r.status {
            Status::Pass => m.passed.push(r.place),
            Status::Fail => m.failed.push((r.place, r.detail)),
            Status::Skip => m.skipped.push((r.place, r.detail)),
        }
    }

    /// Add every line of a results file; blank lines are ignored, other
    /// lines that are not records are kept in `malformed`.
    pub fn add_text(&mut self, text: &str) {
        for line in text.lines() {
            if line.trim().is_empty() {
                continue;
            }
            match Record::parse(line) {
                Some(r) => self.add(r),
                None => self.malformed.push(line.to_string()),
            }
        }
    }

    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for m in self.tests.values() {
            match m.status() {
                Status::Pass => c.passed += 1,
                Status::Fail => c.failed += 1,
                Status::Skip => c.skipped += 1,
            }
        }
        // A results file with lines nobody could read is a failed check.
        if !self.malformed.is_empty() {
            c.failed += 1;
        }
        c
    }

    /// TAP for the distinct tests, then the final line
    /// `N passed, N failed, N skipped`.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let total = self.tests.len() + usize::from(!self.malformed.is_empty());
        let _ = writeln!(out, "TAP version 13\n1..{total}");
        let mut i = 0;
        for (name, m) in &self.tests {
            i += 1;
            match m.status() {
                Status::Pass => {
                    let _ = writeln!(out, "ok {i} {name}");
                    for (place, why) in &m.skipped {
                        let _ = writeln!(out, "#   skipped in {place}: {}", first_line(why));
                    }
                }
                Status::Skip => {
                    // One reason once, with the places that gave it.
                    let mut reasons: Vec<(&str, Vec<&str>)> = Vec::new();
                    for (p, w) in &m.skipped {
                        let w = first_line(w);
                        match reasons.iter_mut().find(|(r, _)| *r == w) {
                            Some((_, places)) => places.push(p),
                            None => reasons.push((w, vec![p])),
                        }
                    }
                    let why = reasons
                        .iter()
                        .map(|(r, places)| format!("{r} ({})", places.join("; ")))
                        .collect::<Vec<_>>()
                        .join("; ");
                    let _ = writeln!(out, "ok {i} {name} # SKIP {why}");
                }
                Status::Fail => {
                    let _ = writeln!(out, "not ok {i} {name}");
                    for (place, why) in &m.failed {
                        let _ = writeln!(out, "#   failed in {place}");
                        for l in why.lines() {
                            let _ = writeln!(out, "#     {l}");
                        }
                    }
                    if !m.passed.is_empty() {
                        let _ = writeln!(out, "#   passed in {}", m.passed.join("; "));
                    }
                }
            }
        }
        if !self.malformed.is_empty() {
            i += 1;
            let _ = writeln!(out, "not ok {i} results file is readable");
            for l in self.malformed.iter().take(20) {
                let _ = writeln!(out, "#   not a record: {l}");
            }
        }
        let c = self.counts();
        let _ = writeln!(
            out,
            "{} passed, {} failed, {} skipped",
            c.passed, c.failed, c.skipped
        );
        out
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trips_with_newlines_and_backslashes() {
        let r = Record::new(
            Status::Fail,
            "selftest: a: b",
            "2 nodes, node 1",
            "line one\nC:\\path\tx",
        );
        let line = r.render();
        assert!(!line.contains('\n'));
        let back = Record::parse(&line).unwrap();
        assert_eq!(back.test, r.test);
        assert_eq!(back.place, r.place);
        assert_eq!(back.detail, "line one\nC:\\path x");
    }

    #[test]
    fn parse_rejects_garbage() {
        assert!(Record::parse("").is_none());
        assert!(Record::parse("ok 1 something").is_none());
        assert!(Record::parse("pass\t\tplace").is_none());
        assert!(Record::parse("maybe\tt\tp\td").is_none());
    }

    fn summary(lines: &[(Status, &str, &str)]) -> Summary {
        let mut s = Summary::new();
        for (st, t, p) in lines {
            s.add(Record::new(*st, t, p, "why"));
        }
        s
    }

    #[test]
    fn one_test_on_many_nodes_counts_once() {
        let s = summary(&[
            (Status::Pass, "t", "node 0"),
            (Status::Pass, "t", "node 1"),
            (Status::Pass, "t", "node 2"),
        ]);
        assert_eq!(
            s.counts(),
            Counts {
                passed: 1,
                failed: 0,
                skipped: 0
            }
        );
    }

    #[test]
    fn a_failure_anywhere_fails_the_test() {
        let s = summary(&[
            (Status::Pass, "t", "node 0"),
            (Status::Fail, "t", "node 1"),
            (Status::Skip, "t", "node 2"),
        ]);
        assert_eq!(s.counts().failed, 1);
        assert_eq!(s.counts().passed, 0);
        let text = s.render();
        assert!(text.contains("not ok 1 t"));
        assert!(text.contains("failed in node 1"));
        assert!(text.contains("passed in node 0"));
    }

    #[test]
    fn skipped_everywhere_is_a_skip_and_pass_with_skip_is_a_pass() {
        let s = summary(&[
            (Status::Skip, "a", "2 nodes"),
            (Status::Skip, "a", "3 nodes"),
            (Status::Skip, "b", "2 nodes"),
            (Status::Pass, "b", "3 nodes"),
        ]);
        assert_eq!(
            s.counts(),
            Counts {
                passed: 1,
                failed: 0,
                skipped: 1
            }
        );
        let text = s.render();
        assert!(text.contains("ok 1 a # SKIP why (2 nodes; 3 nodes)"));
        assert!(text.contains("ok 2 b\n#   skipped in 2 nodes: why"));
        assert!(text.ends_with("1 passed, 0 failed, 1 skipped\n"));
    }

    #[test]
    fn malformed_lines_fail_the_run() {
        let mut s = Summary::new();
        s.add_text("pass\tt\tp\t\n\nnot a record\n");
        assert_eq!(
            s.counts(),
            Counts {
                passed: 1,
                failed: 1,
                skipped: 0
            }
        );
        assert!(s.render().contains("not a record"));
    }
}
