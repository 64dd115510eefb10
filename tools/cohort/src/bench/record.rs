//! One benchmark run as a JSON record: what ran where, every measured
//! value with its unit and every repetition, and the ratios the
//! documentation quotes, each with its target and PASS/MISS. Records are
//! appended to a JSON Lines file per benchmark (`build/bench/kmsg.jsonl`),
//! one line per run, which `cohort bench plot` reads back.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// One run of one benchmark.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// `kmsg`, `migrate`...
    pub benchmark: String,
    /// When the run ended, UTC, RFC 3339 (`2026-11-23T10:02:03Z`).
    pub date: String,
    /// `uname -r` of the measuring node.
    pub kernel: String,
    /// `git rev-parse HEAD` of the tree the host CLI was built in.
    pub commit: Option<String>,
    /// Whether that tree had changes not committed (`git status`).
    pub dirty: Option<bool>,
    /// The host's name.
    pub host: String,
    /// The host's load average (1, 5, 15 min) when the run ended: the
    /// nodes share the host's cores, so a busy host slows them.
    #[serde(default)]
    pub host_load: Option<[f64; 3]>,
    /// The measuring node and its peer.
    pub nodes: [u32; 2],
    /// The run's settings: counts, sizes, repetitions.
    pub params: BTreeMap<String, u64>,
    pub measures: Vec<Measure>,
    pub ratios: Vec<Ratio>,
}

/// A measured quantity: the figure used (a median, or a mean of the reps
/// where said) and every repetition, in `unit`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measure {
    pub name: String,
    /// `ns` or `B/s`.
    pub unit: String,
    pub value: f64,
    pub reps: Vec<f64>,
}

/// A ratio of two measures of the same run, with its target if it has one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ratio {
    pub name: String,
    /// Ratios of one group share a scale: a panel of the plot.
    pub group: String,
    /// How it is made: `kmsg_ping_rtt / tcp_rtt`.
    pub of: String,
    /// None when the denominator was not positive.
    pub value: Option<f64>,
    pub target: Option<Target>,
    /// `PASS` or `MISS` against the target; none without one.
    pub result: Option<String>,
}

/// `value` must be at most (`<=`) or at least (`>=`) `limit`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Target {
    pub op: String,
    pub limit: f64,
}

impl Target {
    pub fn at_most(limit: f64) -> Target {
        Target {
            op: "<=".into(),
            limit,
        }
    }

    pub fn at_least(limit: f64) -> Target {
        Target {
            op: ">=".into(),
            limit,
        }
    }

    /// Whether `value` meets the target.
    pub fn met(&self, value: f64) -> bool {
        match self.op.as_str() {
            "<=" => value <= self.limit,
            ">=" => value >= self.limit,
            _ => false,
        }
    }
}

impl Ratio {
    /// `num / den`, judged against `target` if any.
    pub fn new(
        group: &str,
        name: &str,
        of: &str,
        num: f64,
        den: f64,
        target: Option<Target>,
    ) -> Ratio {
        let value = (den > 0.0 && (num / den).is_finite()).then(|| num / den);
        let result = target.as_ref().map(|t| {
            if value.is_some_and(|v| t.met(v)) {
                "PASS".to_string()
            } else {
                "MISS".to_string()
            }
        });
        Ratio {
            name: name.into(),
            group: group.into(),
            of: of.into(),
            value,
            target,
            result,
        }
    }
}

/// Where and when a run happened: everything in a record but the figures.
#[derive(Debug, Clone)]
pub struct Meta {
    pub date: String,
    pub kernel: String,
    pub commit: Option<String>,
    pub dirty: Option<bool>,
    pub host: String,
    pub host_load: Option<[f64; 3]>,
}

impl Meta {
    /// Now, on this host, for a node running `kernel`.
    pub fn collect(kernel: &str) -> Meta {
        let tree = source_tree();
        let git = |args: &[&str]| -> Option<String> {
            let mut cmd = Command::new("git");
            if let Some(dir) = &tree {
                cmd.arg("-C").arg(dir);
            }
            let out = cmd.args(args).output().ok()?;
            out.status
                .success()
                .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
        };
        let commit = git(&["rev-parse", "HEAD"]).map(|s| s.trim().to_string());
        let dirty = commit
            .as_ref()
            .and_then(|_| git(&["status", "--porcelain"]))
            .map(|s| !s.trim().is_empty());
        let host = fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "unknown".into());
        let host_load = fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|s| parse_loadavg(&s));
        Meta {
            date: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
            kernel: kernel.trim().to_string(),
            commit,
            dirty,
            host,
            host_load,
        }
    }
}

/// The three load averages of a `/proc/loadavg` line.
pub fn parse_loadavg(line: &str) -> Option<[f64; 3]> {
    let mut w = line.split_whitespace().map(|x| x.parse::<f64>().ok());
    Some([w.next()??, w.next()??, w.next()??])
}

/// The directory of the running executable (inside the tree it was built
/// in: `target/release`), so that the commit is that tree's whatever the
/// current directory; `None` lets git use the current directory.
fn source_tree() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    exe.parent().map(Path::to_path_buf)
}

impl Record {
    pub fn new(benchmark: &str, meta: Meta, nodes: [u32; 2]) -> Record {
        Record {
            benchmark: benchmark.into(),
            date: meta.date,
            kernel: meta.kernel,
            commit: meta.commit,
            dirty: meta.dirty,
            host: meta.host,
            host_load: meta.host_load,
            nodes,
            params: BTreeMap::new(),
            measures: vec![],
            ratios: vec![],
        }
    }

    pub fn measure(&self, name: &str) -> Option<&Measure> {
        self.measures.iter().find(|m| m.name == name)
    }

    pub fn ratio(&self, name: &str) -> Option<&Ratio> {
        self.ratios.iter().find(|r| r.name == name)
    }
}

/// Appends `record` as one line to the JSON Lines file `path`, creating it
/// and its directory if needed.
pub fn append(path: &Path, record: &Record) -> Result<(), String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let mut line = serde_json::to_string(record).map_err(|e| format!("cannot encode: {e}"))?;
    line.push('\n');
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(line.as_bytes()))
        .map_err(|e| format!("cannot append to {}: {e}", path.display()))
}

/// The records of a JSON Lines file, in order; blank lines are skipped, a
/// line that is not a record is an error naming it.
pub fn parse_lines(text: &str, path: &Path) -> Result<Vec<Record>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| format!("{}:{}: {e}", path.display(), i + 1))
        })
        .collect()
}

pub fn load(path: &Path) -> Result<Vec<Record>, String> {
    let text =
        fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    parse_lines(&text, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> Meta {
        Meta {
            date: "2026-11-23T10:02:03Z".into(),
            kernel: "6.12.117-cohort".into(),
            commit: Some("0123456789abcdef0123".into()),
            dirty: Some(true),
            host: "h".into(),
            host_load: Some([1.0, 2.5, 3.0]),
        }
    }

    #[test]
    fn ratios_and_targets() {
        let r = Ratio::new("g", "rtt", "a / b", 12.0, 10.0, Some(Target::at_most(1.2)));
        assert_eq!(r.value, Some(1.2));
        assert_eq!(r.result.as_deref(), Some("PASS"));
        let r = Ratio::new("g", "rtt", "a / b", 13.0, 10.0, Some(Target::at_most(1.2)));
        assert_eq!(r.result.as_deref(), Some("MISS"));
        let r = Ratio::new("g", "tput", "a / b", 8.0, 10.0, Some(Target::at_least(0.8)));
        assert_eq!(r.result.as_deref(), Some("PASS"));
        let r = Ratio::new("g", "tput", "a / b", 7.0, 10.0, Some(Target::at_least(0.8)));
        assert_eq!(r.result.as_deref(), Some("MISS"));
        let r = Ratio::new("g", "x", "a / b", 1.0, 0.0, Some(Target::at_least(0.8)));
        assert_eq!(r.value, None);
        assert_eq!(r.result.as_deref(), Some("MISS"));
        let r = Ratio::new("g", "x", "a / b", 3.0, 2.0, None);
        assert_eq!((r.value, r.result), (Some(1.5), None));
    }

    #[test]
    fn records_round_trip_through_json_lines() {
        let mut r = Record::new("kmsg", meta(), [0, 1]);
        r.params.insert("reps".into(), 3);
        r.measures.push(Measure {
            name: "tcp_rtt".into(),
            unit: "ns".into(),
            value: 2.0,
            reps: vec![1.0, 2.0, 3.0],
        });
        r.ratios.push(Ratio::new(
            "g",
            "rtt",
            "a / b",
            1.0,
            1.0,
            Some(Target::at_most(1.2)),
        ));
        assert_eq!(r.measure("tcp_rtt").map(|m| m.reps.len()), Some(3));
        assert_eq!(r.ratio("rtt").and_then(|r| r.value), Some(1.0));

        let dir = std::env::temp_dir().join(format!("cohort-record-{}", std::process::id()));
        let path = dir.join("sub/kmsg.jsonl");
        let _ = fs::remove_dir_all(&dir);
        append(&path, &r).unwrap();
        let mut r2 = r.clone();
        r2.date = "2026-11-24T00:00:00Z".into();
        append(&path, &r2).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 2);
        assert!(text
            .lines()
            .all(|l| l.starts_with("{\"benchmark\":\"kmsg\"")));
        assert_eq!(load(&path).unwrap(), vec![r, r2]);
        fs::remove_dir_all(&dir).unwrap();

        let bad = parse_lines("\n{\"benchmark\":1}\n", Path::new("f.jsonl")).unwrap_err();
        assert!(bad.starts_with("f.jsonl:2: "), "{bad}");
        assert!(parse_lines("\n \n", Path::new("f")).unwrap().is_empty());
    }

    #[test]
    fn meta_of_this_host() {
        let m = Meta::collect("6.12.117-cohort\n");
        assert_eq!(m.kernel, "6.12.117-cohort");
        assert_eq!(m.date.len(), "2026-11-23T10:02:03Z".len());
        assert!(m.date.ends_with('Z') && m.date.as_bytes()[10] == b'T');
        assert!(!m.host.is_empty());
        assert_eq!(m.commit.is_some(), m.dirty.is_some());
        assert!(m.host_load.is_some());
        assert_eq!(
            parse_loadavg("6.67 8.05 6.15 3/412 12410\n"),
            Some([6.67, 8.05, 6.15])
        );
        assert_eq!(parse_loadavg("6.67 x"), None);
        // Records of runs before host_load was recorded still load.
        let old = r#"{"benchmark":"kmsg","date":"d","kernel":"k","commit":null,"dirty":null,"host":"h","nodes":[0,1],"params":{},"measures":[],"ratios":[]}"#;
        let r = parse_lines(old, Path::new("f")).unwrap();
        assert_eq!(r[0].host_load, None);
    }
}
