//! Counting TAP results in selftest output.
//!
//! - `^\s*ok N` is a pass, or a skip if the line has a `# SKIP` directive;
//! - `^\s*not ok N` is a failure, unless it has `# TODO` (an expected
//!   failure) or `# SKIP`, which are counted as skipped;
//! - the runner prints `# cohort-selftest <name> exit=<code>` after each
//!   binary: a non-zero exit from a binary that reported no failing test
//!   counts as one more failure (it crashed or bailed out).

/// What one line of output was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    Pass,
    Fail,
    Skip,
    /// A binary exited non-zero without reporting a failing test.
    Crash {
        name: String,
        code: i32,
    },
    Other,
}

/// Running totals.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    pub passed: u64,
    pub failed: u64,
    pub skipped: u64,
}

impl Totals {
    pub fn add(&mut self, other: Totals) {
        self.passed += other.passed;
        self.failed += other.failed;
        self.skipped += other.skipped;
    }
}

/// TAP counter for the output of one node's run.
#[derive(Debug, Default)]
pub struct Tally {
    pub totals: Totals,
    /// Failures seen since the last `# cohort-selftest` marker.
    fails_in_binary: u64,
}

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

impl Tally {
    pub fn new() -> Self {
        Self::default()
    }

    /// Classify one line (without its newline) and count it.
    pub fn line(&mut self, line: &str) -> Line {
        let s = line.trim_start();
        if starts_with_numbered(s, "ok") {
            if has_directive(s, "SKIP") {
                self.totals.skipped += 1;
                return Line::Skip;
            }
            self.totals.passed += 1;
            return Line::Pass;
        }
        if starts_with_numbered(s, "not ok") {
            if has_directive(s, "TODO") || has_directive(s, "SKIP") {
                self.totals.skipped += 1;
                return Line::Skip;
            }
            self.totals.failed += 1;
            self.fails_in_binary += 1;
            return Line::Fail;
        }
        if let Some((name, code)) = parse_marker(s) {
            let failed_tests = self.fails_in_binary;
            self.fails_in_binary = 0;
            if code != 0 && failed_tests == 0 {
                self.totals.failed += 1;
                return Line::Crash { name, code };
            }
        }
        Line::Other
    }

    /// Count one failure that is not a TAP line (node died, timed out...).
    pub fn fail(&mut self) {
        self.totals.failed += 1;
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

    fn run(lines: &[&str]) -> Totals {
        let mut t = Tally::new();
        for l in lines {
            t.line(l);
        }
        t.totals
    }

    #[test]
    fn classifies_lines() {
        let mut t = Tally::new();
        assert_eq!(t.line("ok 1 - works"), Line::Pass);
        assert_eq!(t.line("   ok 12 nested"), Line::Pass);
        assert_eq!(t.line("\tok 3"), Line::Pass);
        assert_eq!(t.line("ok 2 # SKIP no hub"), Line::Skip);
        assert_eq!(t.line("ok 2 - x # skip lowercase"), Line::Skip);
        assert_eq!(t.line("not ok 4 - broke"), Line::Fail);
        assert_eq!(t.line("  not ok 5"), Line::Fail);
        assert_eq!(t.line("not ok 6 # TODO later"), Line::Skip);
        assert_eq!(t.line("okay 1"), Line::Other);
        assert_eq!(t.line("ok"), Line::Other);
        assert_eq!(t.line("ok x"), Line::Other);
        assert_eq!(t.line("# ok 1 comment"), Line::Other);
        assert_eq!(t.line("not ok"), Line::Other);
        assert_eq!(t.line("1..4"), Line::Other);
        assert_eq!(
            t.totals,
            Totals {
                passed: 3,
                failed: 2,
                skipped: 3
            }
        );
    }

    #[test]
    fn skip_word_in_description_is_not_a_directive() {
        assert_eq!(
            run(&["ok 1 - SKIP handling works"]),
            Totals {
                passed: 1,
                failed: 0,
                skipped: 0
            }
        );
    }

    #[test]
    fn crash_without_failures_counts_once() {
        let mut t = Tally::new();
        t.line("ok 1 a");
        assert_eq!(
            t.line("# cohort-selftest hub_test exit=139"),
            Line::Crash {
                name: "hub_test".into(),
                code: 139
            }
        );
        assert_eq!(
            t.totals,
            Totals {
                passed: 1,
                failed: 1,
                skipped: 0
            }
        );
    }

    #[test]
    fn nonzero_exit_after_reported_failure_is_not_extra() {
        let t = run(&[
            "not ok 1 a",
            "# cohort-selftest one exit=1",
            "ok 1 b",
            "# cohort-selftest two exit=0",
            "# cohort-selftest three exit=2",
        ]);
        // one reported failure, plus "three" failing without a test.
        assert_eq!(
            t,
            Totals {
                passed: 1,
                failed: 2,
                skipped: 0
            }
        );
    }

    #[test]
    fn malformed_markers_are_ignored() {
        let t = run(&[
            "# cohort-selftest x exit=",
            "# cohort-selftest exit=3",
            "# cohort-selftest y code=3",
        ]);
        assert_eq!(t, Totals::default());
    }

    #[test]
    fn totals_add_and_fail() {
        let mut t = Tally::new();
        t.fail();
        let mut sum = Totals {
            passed: 1,
            failed: 0,
            skipped: 2,
        };
        sum.add(t.totals);
        assert_eq!(
            sum,
            Totals {
                passed: 1,
                failed: 1,
                skipped: 2
            }
        );
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
