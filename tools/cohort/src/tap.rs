//! Reading selftest output (TAP) into test results.
//!
//! - `^\s*ok N NAME` is a pass, or a skip if the line has a `# SKIP`
//!   directive;
//! - `^\s*not ok N NAME` is a failure, unless it has `# TODO` (an expected
//!   failure) or `# SKIP`, which are counted as skipped;
//! - the runner (`selftests/run`) prints `# cohort-selftest-begin <name>`
//!   before each binary and `# cohort-selftest <name> exit=<code>` after
//!   it: a non-zero exit from a binary that reported no failing test is a
//!   failure of the binary itself, and a test that printed `#  RUN NAME`
//!   (kselftest's harness) but no result when its binary ended failed.
//!
//! Each result becomes a [`Record`] for test `selftest: BINARY: NAME`.

use crate::results::{Record, Status};

/// `^\s*<word> \d+` : true if `s` (already left-trimmed) starts with the
/// word, one space, and a digit.
fn starts_with_numbered(s: &str, word: &str) -> bool {
    s.strip_prefix(word)
        .and_then(|r| r.strip_prefix(' '))
        .is_some_and(|r| r.starts_with(|c: char| c.is_ascii_digit()))
}

/// True if the TAP line carries the directive (`# SKIP`, `# TODO`), in
/// any case, as TAP allows.
fn has_directive(line: &str, directive: &str) -> bool {
    line.split('#')
        .skip(1)
        .any(|d| d.trim_start().to_ascii_uppercase().starts_with(directive))
}

/// Parse `# cohort-selftest <name> exit=<code>`.
fn parse_marker(s: &str) -> Option<(String, i32)> {
    let rest = s.strip_prefix('#')?.trim_start();
    let rest = rest.strip_prefix("cohort-selftest ")?;
    let (name, code) = rest.trim_end().rsplit_once(' ')?;
    let code = code.strip_prefix("exit=")?.parse().ok()?;
    Some((name.trim().to_string(), code))
}

/// How much of a failing test's output its record keeps (the last lines).
const KEEP_LINES: usize = 40;

/// The name part of a result line: after the number, without a leading
/// `- ` and without the directive.
fn result_name(rest: &str) -> String {
    let rest = rest.trim_start_matches(|c: char| c.is_ascii_digit()).trim();
    let rest = rest.strip_prefix("- ").unwrap_or(rest);
    let name = match rest.find(" #") {
        Some(i) => &rest[..i],
        None => rest,
    };
    name.trim().to_string()
}

/// The directive's text (`# SKIP needs 3 nodes` gives `needs 3 nodes`).
fn directive_text(line: &str) -> String {
    line.split_once(" #")
        .map(|(_, d)| {
            let d = d.trim_start_matches('#').trim();
            let mut w = d.splitn(2, char::is_whitespace);
            let _ = w.next();
            w.next().unwrap_or("").trim().to_string()
        })
        .unwrap_or_default()
}

/// Turns one node's selftest output into [`Record`]s.
#[derive(Debug, Default)]
pub struct Collector {
    place: String,
    /// The binary whose output this is (from `# cohort-selftest-begin`).
    binary: Option<String>,
    /// The test that printed `#  RUN` and has no result yet.
    running: Option<String>,
    /// The last lines the running test printed.
    output: Vec<String>,
    /// Failures reported by the current binary.
    fails_in_binary: u64,
    pub records: Vec<Record>,
}

impl Collector {
    pub fn new(place: &str) -> Collector {
        Collector {
            place: place.to_string(),
            ..Collector::default()
        }
    }

    fn test_id(&self, name: &str) -> String {
        match &self.binary {
            Some(b) => format!("selftest: {b}: {name}"),
            None => format!("selftest: {name}"),
        }
    }

    fn push(&mut self, status: Status, test: String, detail: &str) {
        self.records
            .push(Record::new(status, &test, &self.place, detail));
    }

    /// Read one line (without its newline); returns the record it made.
    pub fn line(&mut self, line: &str) -> Option<&Record> {
        let s = line.trim_start();
        let before = self.records.len();
        if let Some(b) = s.strip_prefix("# cohort-selftest-begin ") {
            self.binary = Some(b.trim().to_string());
            self.running = None;
            self.output.clear();
            self.fails_in_binary = 0;
        } else if let Some(name) = s.strip_prefix("#  RUN ") {
            let name = name.trim().trim_end_matches("...").trim();
            self.running = Some(name.to_string());
            self.output.clear();
        } else if s.starts_with('#') && parse_marker(s).is_none() {
            if self.output.len() == KEEP_LINES {
                self.output.remove(0);
            }
            self.output.push(line.to_string());
        } else if starts_with_numbered(s, "ok") {
            let name = result_name(&s[3..]);
            let test = self.test_id(&name);
            if has_directive(s, "SKIP") {
                self.push(Status::Skip, test, &directive_text(s));
            } else {
                self.push(Status::Pass, test, "");
            }
            self.running = None;
        } else if starts_with_numbered(s, "not ok") {
            let name = result_name(&s[7..]);
            let test = self.test_id(&name);
            if has_directive(s, "TODO") || has_directive(s, "SKIP") {
                self.push(Status::Skip, test, &directive_text(s));
            } else {
                self.fails_in_binary += 1;
                let detail = self.output.join("\n");
                self.push(Status::Fail, test, &detail);
            }
            self.running = None;
            self.output.clear();
        } else if let Some((name, code)) = parse_marker(s) {
            self.end_binary(&name, &format!("exited with status {code}"), code != 0);
        }
        self.records[before..].last()
    }

    /// The binary ended (or was cut off): a test left running failed, and
    /// a binary that `failed` without any failing test fails itself.
    fn end_binary(&mut self, name: &str, how: &str, failed: bool) {
        if let Some(t) = self.running.take() {
            let test = self.test_id(&t);
            let detail = format!(
                "no result: its binary {how} while it ran\n{}",
                self.output.join("\n")
            );
            self.fails_in_binary += 1;
            self.push(Status::Fail, test, &detail);
        }
        if failed && self.fails_in_binary == 0 {
            self.push(
                Status::Fail,
                format!("selftest: {name}"),
                &format!("{name} {how} without reporting a failing test"),
            );
        }
        self.binary = None;
        self.output.clear();
        self.fails_in_binary = 0;
    }

    /// The run was cut off (node died, timed out): whatever was running
    /// failed with `why`.
    pub fn abort(&mut self, why: &str) {
        let name = self.binary.clone().unwrap_or_else(|| "run".to_string());
        self.fails_in_binary = 0;
        self.end_binary(&name, why, true);
    }
}

/// Splits a byte stream into lines; keeps a partial last line until the
/// next chunk or `finish`.
#[derive(Debug, Default)]
pub struct LineSplitter {
    partial: Vec<u8>,
}

impl LineSplitter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feed a chunk; returns the complete lines it finished (no newline).
    pub fn push(&mut self, data: &[u8]) -> Vec<String> {
        let mut lines = vec![];
        for &b in data {
            if b == b'\n' {
                let line = std::mem::take(&mut self.partial);
                lines.push(String::from_utf8_lossy(&line).into_owned());
            } else {
                self.partial.push(b);
            }
        }
        lines
    }

    /// The unterminated last line, if any.
    pub fn finish(&mut self) -> Option<String> {
        if self.partial.is_empty() {
            return None;
        }
        let line = std::mem::take(&mut self.partial);
        Some(String::from_utf8_lossy(&line).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(lines: &[&str]) -> Vec<Record> {
        let mut c = Collector::new("node 0");
        for l in lines {
            c.line(l);
        }
        c.records
    }

    fn brief(r: &[Record]) -> Vec<(Status, &str)> {
        r.iter().map(|r| (r.status, r.test.as_str())).collect()
    }

    #[test]
    fn classifies_lines() {
        let r = collect(&[
            "# cohort-selftest-begin hub_test",
            "ok 1 - works",
            "   ok 12 nested",
            "ok 2 global.a # SKIP no hub",
            "ok 3 - x # skip lowercase",
            "not ok 4 - broke",
            "not ok 6 later # TODO later",
            "okay 1",
            "ok",
            "ok x",
            "# ok 1 comment",
            "not ok",
            "1..4",
        ]);
        assert_eq!(
            brief(&r),
            vec![
                (Status::Pass, "selftest: hub_test: works"),
                (Status::Pass, "selftest: hub_test: nested"),
                (Status::Skip, "selftest: hub_test: global.a"),
                (Status::Skip, "selftest: hub_test: x"),
                (Status::Fail, "selftest: hub_test: broke"),
                (Status::Skip, "selftest: hub_test: later"),
            ]
        );
        assert_eq!(r[2].detail, "no hub");
        assert_eq!(r[2].place, "node 0");
    }

    #[test]
    fn skip_word_in_description_is_not_a_directive() {
        let r = collect(&["ok 1 - SKIP handling works"]);
        assert_eq!(
            brief(&r),
            vec![(Status::Pass, "selftest: SKIP handling works")]
        );
    }

    #[test]
    fn a_failure_keeps_the_tests_output() {
        let r = collect(&[
            "# cohort-selftest-begin kmsg_test",
            "#  RUN           global.ping ...",
            "# kmsg_test.c:10:ping:Expected 0 (0) == r (-110)",
            "#            FAIL  global.ping",
            "not ok 1 global.ping",
        ]);
        assert_eq!(
            brief(&r),
            vec![(Status::Fail, "selftest: kmsg_test: global.ping")]
        );
        assert!(r[0].detail.contains("Expected 0 (0) == r (-110)"));
    }

    #[test]
    fn crash_without_failures_fails_the_binary_and_the_running_test() {
        let r = collect(&[
            "# cohort-selftest-begin hub_test",
            "ok 1 global.a",
            "#  RUN           global.b ...",
            "# cohort-selftest hub_test exit=139",
        ]);
        assert_eq!(
            brief(&r),
            vec![
                (Status::Pass, "selftest: hub_test: global.a"),
                (Status::Fail, "selftest: hub_test: global.b"),
            ]
        );
        assert!(r[1].detail.contains("exited with status 139"));
        let r = collect(&[
            "# cohort-selftest-begin two",
            "ok 1 global.a",
            "# cohort-selftest two exit=2",
        ]);
        assert_eq!(
            brief(&r),
            vec![
                (Status::Pass, "selftest: two: global.a"),
                (Status::Fail, "selftest: two"),
            ]
        );
    }

    #[test]
    fn nonzero_exit_after_reported_failure_is_not_extra() {
        let r = collect(&[
            "# cohort-selftest-begin one",
            "not ok 1 a",
            "# cohort-selftest one exit=1",
            "# cohort-selftest-begin two",
            "ok 1 b",
            "# cohort-selftest two exit=0",
        ]);
        assert_eq!(
            brief(&r),
            vec![
                (Status::Fail, "selftest: one: a"),
                (Status::Pass, "selftest: two: b")
            ]
        );
    }

    #[test]
    fn abort_fails_what_was_running() {
        let mut c = Collector::new("node 1");
        c.line("# cohort-selftest-begin migrate_test");
        c.line("#  RUN           global.fork ...");
        c.abort("was cut off: node 1 died");
        assert_eq!(
            brief(&c.records),
            vec![(Status::Fail, "selftest: migrate_test: global.fork")]
        );
        assert!(c.records[0].detail.contains("node 1 died"));
    }

    #[test]
    fn malformed_markers_are_ignored() {
        let r = collect(&[
            "# cohort-selftest x exit=",
            "# cohort-selftest exit=3",
            "# cohort-selftest y code=3",
        ]);
        assert!(r.is_empty());
    }

    #[test]
    fn splits_lines_across_chunks() {
        let mut s = LineSplitter::new();
        assert_eq!(s.push(b"ab"), Vec::<String>::new());
        assert_eq!(s.push(b"c\nde\n\nf"), vec!["abc", "de", ""]);
        assert_eq!(s.finish(), Some("f".to_string()));
        assert_eq!(s.finish(), None);
        assert_eq!(s.push(b"\xff\n"), vec!["\u{fffd}"]);
    }
}
