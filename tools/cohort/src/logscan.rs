//! Kernel log checks: finding the lines of a node's console log that show a
//! kernel problem, and saying which test was running when each was printed.
//!
//! Every node's console (`console=ttyS0`) is appended by QEMU to
//! `nodeN.log` in the state directory, every boot of the node in one file
//! (`cohort start` adds to it), so the host reads it even when the node no
//! longer answers. A check remembers how long each log was when it started
//! ([`Marks`]) and later scans only what was printed since.
//!
//! The selftest runner writes `cohort-selftest: BIN` before each binary and
//! `cohort-selftest: BIN: TEST` before each test to `/dev/kmsg`; a problem
//! printed after such a marker is put on that test ([`by_test`]).

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use regex::Regex;

use crate::state::State;

/// What counts as a kernel problem: a name for each kind and the pattern of
/// the line that starts its report.
pub const PROBLEMS: &[(&str, &str)] = &[
    (
        "BUG",
        r"\bBUG: |kernel BUG at |\bBUG [\w-]+ \((Not )?[Tt]ainted\)",
    ),
    ("WARNING", r"\bWARNING: "),
    ("Oops", r"\bOops\b"),
    ("general protection fault", r"general protection fault"),
    ("panic", r"Kernel panic"),
    (
        "lockdep",
        r"possible circular locking|possible recursive locking|inconsistent lock state|suspicious RCU usage|bad unlock balance|DEBUG_LOCKS_WARN_ON|held lock freed|lock held when returning to user space",
    ),
    ("hung task", r"INFO: task .* blocked for more than"),
    ("soft lockup", r"soft lockup - CPU"),
    ("hard lockup", r"[Hh]ard LOCKUP|hard lockup"),
    (
        "RCU stall",
        r"detected (expedited )?stalls? on CPUs|self-detected stall|rcu_\w+ kthread starved",
    ),
    (
        "atomic sleep",
        r"sleeping function called from invalid context|scheduling while atomic",
    ),
    (
        "kmemleak",
        r"kmemleak: \d+ new suspected memory leaks|unreferenced object 0x",
    ),
    ("KASAN", r"\bKASAN: "),
    ("UBSAN", r"\bUBSAN: "),
    ("debug objects", r"\bODEBUG: "),
    ("list corruption", r"list_(add|del) corruption"),
    ("refcount", r"refcount_t: "),
];

/// Lines shown after the first line of a report (lockdep and hung-task
/// reports run over many lines; the first few say what and where).
const CONTEXT: usize = 12;
/// At most this many lines per scan are shown.
const MAX_LINES: usize = 80;

/// The compiled patterns of [`PROBLEMS`].
pub struct Scanner {
    re: Regex,
}

impl Scanner {
    pub fn new() -> Scanner {
        let alt = PROBLEMS
            .iter()
            .map(|(_, p)| format!("(?:{p})"))
            .collect::<Vec<_>>()
            .join("|");
        // The patterns are constants, checked by the unit tests.
        Scanner {
            re: Regex::new(&alt).expect("PROBLEMS patterns compile"),
        }
    }

    pub fn is_problem(&self, line: &str) -> bool {
        self.re.is_match(line)
    }

    /// The report lines in `text`: each problem line with up to
    /// [`CONTEXT`] lines after it, at most [`MAX_LINES`] in all (the rest
    /// counted in a last line).
    pub fn problems(&self, text: &str) -> Vec<String> {
        let lines: Vec<&str> = text.lines().collect();
        let mut out = Vec::new();
        let mut shown_to = 0;
        let mut hits = 0;
        for (i, l) in lines.iter().enumerate() {
            if !self.is_problem(l) {
                continue;
            }
            hits += 1;
            if out.len() >= MAX_LINES {
                continue;
            }
            let from = i.max(shown_to);
            let to = (i + 1 + CONTEXT).min(lines.len());
            for l in &lines[from..to] {
                if out.len() < MAX_LINES {
                    out.push(clean(l));
                }
            }
            shown_to = to;
        }
        if hits > 0 && out.len() >= MAX_LINES {
            out.push(format!("... ({hits} problem lines in all)"));
        }
        out
    }
}

/// A console line without carriage returns or other control characters.
fn clean(l: &str) -> String {
    l.chars()
        .filter(|c| !c.is_control() || *c == '\t')
        .collect()
}

const MARKER: &str = "cohort-selftest: ";

/// The test a marker line names: `selftest: BIN` or `selftest: BIN: TEST`;
/// `Some(None)` for `cohort-selftest: end`, after which no test runs.
fn marker_test(line: &str) -> Option<Option<String>> {
    let at = line.find(MARKER)?;
    let rest = line[at + MARKER.len()..].trim();
    match rest {
        "" => None,
        "end" => Some(None),
        _ => Some(Some(format!("selftest: {rest}"))),
    }
}

/// Problems in `text`, grouped by the test whose marker came before them
/// (`None`: before any marker).
pub fn by_test(scanner: &Scanner, text: &str) -> Vec<(Option<String>, Vec<String>)> {
    let mut out: Vec<(Option<String>, Vec<String>)> = Vec::new();
    let mut current: Option<String> = None;
    let mut segment = String::new();
    let mut flush = |test: &Option<String>, seg: &str| {
        let p = scanner.problems(seg);
        if !p.is_empty() {
            out.push((test.clone(), p));
        }
    };
    for line in text.lines() {
        if let Some(t) = marker_test(line) {
            flush(&current, &segment);
            segment.clear();
            current = t;
            continue;
        }
        segment.push_str(line);
        segment.push('\n');
    }
    flush(&current, &segment);
    out
}

/// How far each node's console log had got: node, file length in bytes,
/// inode (a restarted node's log is a new file; the old one is renamed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mark {
    pub node: u32,
    pub len: u64,
    pub ino: u64,
}

/// Marks for every node of a cluster.
#[derive(Debug, Clone, Default)]
pub struct Marks(pub Vec<Mark>);

impl Marks {
    /// Where each node's log ends now (a missing log is length 0).
    pub fn now(state: &State, nodes: u32) -> Marks {
        Marks(
            (0..nodes)
                .map(|node| {
                    let (len, ino) = fs::metadata(state.node_file(node, "log"))
                        .map(|m| (m.len(), m.ino()))
                        .unwrap_or((0, 0));
                    Mark { node, len, ino }
                })
                .collect(),
        )
    }

    pub fn render(&self) -> String {
        self.0
            .iter()
            .map(|m| format!("{} {} {}\n", m.node, m.len, m.ino))
            .collect()
    }

    pub fn parse(text: &str) -> Option<Marks> {
        let mut v = Vec::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let mut f = line.split_whitespace();
            let node = f.next()?.parse().ok()?;
            let len = f.next()?.parse().ok()?;
            let ino = f.next()?.parse().ok()?;
            v.push(Mark { node, len, ino });
        }
        Some(Marks(v))
    }

    pub fn get(&self, node: u32) -> Option<&Mark> {
        self.0.iter().find(|m| m.node == node)
    }
}

/// Read `path` from byte `from` to its end, lossily as UTF-8.
fn read_from(path: &Path, from: u64) -> std::io::Result<String> {
    let mut f = fs::File::open(path)?;
    f.seek(SeekFrom::Start(from))?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// What node `node` printed on its console since `mark`, across restarts
/// of the node; everything with no mark, or when the log is not the file
/// the mark was taken of (a new `cohort up` since).
pub fn since(state: &State, node: u32, mark: Option<&Mark>) -> std::io::Result<String> {
    let log = state.node_file(node, "log");
    let cur = fs::metadata(&log)?;
    match mark {
        Some(m) if m.ino == cur.ino() => read_from(&log, m.len.min(cur.len())),
        _ => read_from(&log, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_each_kind_of_problem() {
        let s = Scanner::new();
        for line in [
            "[   1.0] BUG: kernel NULL pointer dereference, address: 0",
            "[   1.0] WARNING: CPU: 0 PID: 1 at kernel/foo.c:1 f+0x1/0x2",
            "[   1.0] Oops: 0002 [#1] SMP",
            "[   1.0] general protection fault, probably for non-canonical address",
            "[   1.0] Kernel panic - not syncing: Attempted to kill init!",
            "[   1.0] WARNING: possible circular locking dependency detected",
            "[   1.0] inconsistent lock state",
            "[   1.0] suspicious RCU usage.",
            "[  30.0] INFO: task kworker/0:1:12 blocked for more than 20 seconds.",
            "[  30.0] watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [a:1]",
            "[  30.0] rcu: INFO: rcu_sched detected stalls on CPUs/tasks:",
            "[  30.0] rcu: INFO: rcu_sched self-detected stall on CPU",
            "[  30.0] rcu: INFO: rcu_sched detected expedited stalls on CPUs/tasks: {",
            "[   1.0] kernel BUG at mm/memory.c:123!",
            "[   1.0] BUG kmalloc-64 (Not tainted): Poison overwritten",
            "[   1.0] BUG: sleeping function called from invalid context at mm/x.c:1",
            "[   1.0] kmemleak: 3 new suspected memory leaks (see /sys/kernel/debug/kmemleak)",
            "unreferenced object 0xffff888003c1e000 (size 64):",
            "[   1.0] BUG: KASAN: use-after-free in f+0x1/0x2",
            "[   1.0] ODEBUG: free active (active state 0) object: x type: timer_list",
            "[   1.0] list_add corruption. next->prev should be prev",
            "[   1.0] refcount_t: underflow; use-after-free.",
            "[   1.0] NMI watchdog: Watchdog detected hard LOCKUP on cpu 1",
        ] {
            assert!(s.is_problem(line), "not found: {line}");
        }
        for line in [
            "[   1.0] kmsg: peer 1 up",
            "[   1.0] popcorn: node 1 is down: killing task 42 (SIGKILL)",
            "[   1.0] Run /init as init process",
            "[   1.0] cohort-selftest: kmsg_test: global.bad_frame",
            "[   1.0] kmsg: dropped a frame with a bad checksum from peer 1",
        ] {
            assert!(!s.is_problem(line), "false hit: {line}");
        }
    }

    #[test]
    fn problems_show_context_and_stop_at_the_limit() {
        let s = Scanner::new();
        let mut text = String::from("a\nWARNING: CPU: 0 at x\nline1\nline2\n");
        let p = s.problems(&text);
        assert_eq!(p, vec!["WARNING: CPU: 0 at x", "line1", "line2"]);
        for i in 0..100 {
            text.push_str(&format!("BUG: number {i}\n"));
        }
        let p = s.problems(&text);
        assert_eq!(p.len(), MAX_LINES + 1);
        assert!(p.last().unwrap().contains("101 problem lines"));
    }

    #[test]
    fn problems_are_put_on_the_test_that_was_running() {
        let s = Scanner::new();
        let text = "\
[ 0.1] boot WARNING: early\n\
[ 1.0] cohort-selftest: kmsg_test\n\
[ 1.1] cohort-selftest: kmsg_test: global.one\n\
[ 1.2] fine\n\
[ 1.3] cohort-selftest: kmsg_test: global.two\n\
[ 1.4] BUG: sleeping function called from invalid context\n\
[ 1.5] cohort-selftest: end\n\
[ 1.6] WARNING: after the run\n";
        let got = by_test(&s, text);
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].0, None);
        assert_eq!(got[1].0.as_deref(), Some("selftest: kmsg_test: global.two"));
        assert!(got[1].1[0].contains("sleeping function"));
        assert_eq!(got[2].0, None);
    }

    #[test]
    fn marks_round_trip() {
        let m = Marks(vec![
            Mark {
                node: 0,
                len: 10,
                ino: 7,
            },
            Mark {
                node: 1,
                len: 0,
                ino: 0,
            },
        ]);
        let back = Marks::parse(&m.render()).unwrap();
        assert_eq!(back.0, m.0);
        assert!(Marks::parse("0 1").is_none());
    }
}
