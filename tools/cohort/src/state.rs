//! The state directory: pid files, sockets, logs and the `cluster` file.

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use crate::sys;
use crate::up::{Transport, IVSHMEM_LOG, IVSHMEM_PID, IVSHMEM_SOCK};

/// Longest unix socket path (sun_path is 108 bytes with the NUL).
const SUN_PATH_MAX: usize = 107;

pub struct State {
    pub dir: PathBuf,
}

/// What the `cluster` file records.
#[derive(Debug, PartialEq, Eq)]
pub struct ClusterInfo {
    pub nodes: u32,
    pub kernel: String,
    pub initrd: String,
    /// kmsg's transport (`transport tcp|shm`; a file without the line is
    /// from before shared memory: tcp).
    pub transport: Transport,
}

impl ClusterInfo {
    pub fn render(&self) -> String {
        format!(
            "nodes {}\nkernel {}\ninitrd {}\ntransport {}\n",
            self.nodes,
            self.kernel,
            self.initrd,
            self.transport.as_str()
        )
    }

    pub fn parse(text: &str) -> Option<ClusterInfo> {
        let mut nodes = None;
        let mut kernel = String::new();
        let mut initrd = String::new();
        let mut transport = Some(Transport::Tcp);
        for line in text.lines() {
            match line.split_once(' ') {
                Some(("nodes", v)) => nodes = v.trim().parse().ok(),
                Some(("kernel", v)) => kernel = v.to_string(),
                Some(("initrd", v)) => initrd = v.to_string(),
                Some(("transport", v)) => transport = Transport::parse(v.trim()),
                _ => {}
            }
        }
        Some(ClusterInfo {
            nodes: nodes?,
            kernel,
            initrd,
            transport: transport?,
        })
    }
}

impl State {
    /// `--state`, else $COHORT_STATE, else ./build/cluster; made absolute
    /// (and canonical when it exists) so that pid checks are reliable.
    pub fn resolve(opt: Option<&str>) -> Result<State, String> {
        let raw = match opt {
            Some(s) => PathBuf::from(s),
            None => match std::env::var_os("COHORT_STATE") {
                Some(s) if !s.is_empty() => PathBuf::from(s),
                _ => PathBuf::from("build/cluster"),
            },
        };
        let dir = match fs::canonicalize(&raw) {
            Ok(d) => d,
            Err(_) => std::path::absolute(&raw)
                .map_err(|e| format!("bad state dir {}: {e}", raw.display()))?,
        };
        Ok(State { dir })
    }

    /// Create the directory (for `up`) and canonicalize the path.
    pub fn create(&mut self) -> Result<(), String> {
        fs::create_dir_all(&self.dir)
            .map_err(|e| format!("cannot create state dir {}: {e}", self.dir.display()))?;
        if let Ok(d) = fs::canonicalize(&self.dir) {
            self.dir = d;
        }
        // vde_switch's per-port sockets are named <dir>/switch/.NNNNN-NNNNN
        let longest = self.dir.join("switch").join(".00000-00000");
        let len = longest.as_os_str().len();
        if len > SUN_PATH_MAX {
            return Err(format!(
                "state dir {} is too long for unix socket paths ({} > {} bytes); use a shorter --state",
                self.dir.display(),
                len,
                SUN_PATH_MAX
            ));
        }
        Ok(())
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    pub fn node_file(&self, node: u32, ext: &str) -> PathBuf {
        self.dir.join(format!("node{node}.{ext}"))
    }

    pub fn switch_dir(&self) -> PathBuf {
        self.path("switch")
    }

    pub fn cluster(&self) -> Option<ClusterInfo> {
        let text = fs::read_to_string(self.path("cluster")).ok()?;
        ClusterInfo::parse(&text)
    }

    /// Node numbers that have any file in the state dir, plus those the
    /// `cluster` file announces.
    pub fn known_nodes(&self) -> Vec<u32> {
        let mut nodes: Vec<u32> = match self.cluster() {
            Some(c) => (0..c.nodes).collect(),
            None => vec![],
        };
        if let Ok(rd) = fs::read_dir(&self.dir) {
            for e in rd.flatten() {
                let name = e.file_name();
                if let Some(n) = parse_node_file(&name.to_string_lossy()) {
                    nodes.push(n.0);
                }
            }
        }
        nodes.sort_unstable();
        nodes.dedup();
        nodes
    }

    /// The bytes every command line we started contains.
    fn needle(&self) -> Vec<u8> {
        let mut n = self.dir.as_os_str().as_encoded_bytes().to_vec();
        n.push(b'/');
        n
    }

    /// True if `pid` is a live process whose command line names this state
    /// dir, i.e. one we started (a recycled pid never matches).
    pub fn is_ours(&self, pid: u32) -> bool {
        let Ok(cmdline) = fs::read(format!("/proc/{pid}/cmdline")) else {
            return false;
        };
        let needle = self.needle();
        cmdline.windows(needle.len()).any(|w| w == needle)
    }

    /// Pid from a pid file, if the file exists and holds a number.
    pub fn read_pid(path: &Path) -> Option<u32> {
        fs::read_to_string(path).ok()?.trim().parse().ok()
    }

    /// Pid of node's QEMU if it is running.
    pub fn node_pid(&self, node: u32) -> Option<u32> {
        let pid = Self::read_pid(&self.node_file(node, "pid"))?;
        self.is_ours(pid).then_some(pid)
    }

    pub fn switch_pid(&self) -> Option<u32> {
        let pid = Self::read_pid(&self.path("switch.pid"))?;
        self.is_ours(pid).then_some(pid)
    }

    /// Pid of the cluster's `cohort ivshmem-server` if it is running.
    pub fn ivshmem_pid(&self) -> Option<u32> {
        let pid = Self::read_pid(&self.path(IVSHMEM_PID))?;
        self.is_ours(pid).then_some(pid)
    }

    /// Every live process of ours: (what, pid).
    pub fn live_processes(&self) -> Vec<(String, u32)> {
        let mut out = vec![];
        for n in self.known_nodes() {
            if let Some(pid) = self.node_pid(n) {
                out.push((format!("node {n}"), pid));
            }
        }
        if let Some(pid) = self.switch_pid() {
            out.push(("vde_switch".to_string(), pid));
        }
        if let Some(pid) = self.ivshmem_pid() {
            out.push(("ivshmem server".to_string(), pid));
        }
        out
    }

    /// SIGKILL node's QEMU (a crash, as far as the other nodes can tell)
    /// and wait up to `limit` until it is gone; then remove its pid file
    /// and agent socket. Returns the pid that was killed.
    pub fn kill_node(&self, node: u32, limit: Duration) -> Result<u32, String> {
        let pid = self
            .node_pid(node)
            .ok_or_else(|| format!("node {node}: QEMU is not running"))?;
        if !sys::send_signal(pid, sys::SIGKILL) && self.is_ours(pid) {
            return Err(format!("node {node}: cannot signal qemu pid {pid}"));
        }
        let start = Instant::now();
        while self.is_ours(pid) {
            if start.elapsed() >= limit {
                return Err(format!(
                    "node {node}: qemu pid {pid} still running {} s after SIGKILL",
                    limit.as_secs()
                ));
            }
            thread::sleep(Duration::from_millis(50));
        }
        let _ = fs::remove_file(self.node_file(node, "pid"));
        let _ = fs::remove_file(self.node_file(node, "agent"));
        Ok(pid)
    }

    /// Stop every process we started (SIGTERM, 5 s, SIGKILL) and remove
    /// sockets, pid files and the cluster file. Logs stay. Returns what
    /// was stopped, as messages.
    pub fn stop_all(&self) -> Vec<String> {
        let procs = self.live_processes();
        let mut msgs = vec![];
        for (what, pid) in &procs {
            if sys::send_signal(*pid, sys::SIGTERM) {
                msgs.push(format!("stopping {what} (pid {pid})"));
            }
        }
        let wait_gone = |limit: Duration| {
            let start = Instant::now();
            while start.elapsed() < limit {
                if procs.iter().all(|(_, pid)| !self.is_ours(*pid)) {
                    return true;
                }
                thread::sleep(Duration::from_millis(100));
            }
            false
        };
        if !wait_gone(Duration::from_secs(5)) {
            for (what, pid) in &procs {
                if self.is_ours(*pid) && sys::send_signal(*pid, sys::SIGKILL) {
                    msgs.push(format!("{what} (pid {pid}) ignored SIGTERM; sent SIGKILL"));
                }
            }
            if !wait_gone(Duration::from_secs(3)) {
                for (what, pid) in &procs {
                    if self.is_ours(*pid) {
                        msgs.push(format!("{what} (pid {pid}) is still running"));
                    }
                }
            }
        }
        self.remove_runtime_files();
        msgs
    }

    /// Remove sockets, pid files, the switch dir, the cluster and modules
    /// files.
    /// With `all`, also logs and recorded command lines (stale state
    /// before a new `up`).
    fn remove_files(&self, all: bool) {
        if let Ok(rd) = fs::read_dir(&self.dir) {
            for e in rd.flatten() {
                let name = e.file_name();
                let name = name.to_string_lossy();
                if let Some((_, ext)) = parse_node_file(&name) {
                    if ext == "pid" || ext == "agent" || all {
                        let _ = fs::remove_file(e.path());
                    }
                }
            }
        }
        let _ = fs::remove_file(self.path("switch.pid"));
        let _ = fs::remove_file(self.path(IVSHMEM_PID));
        let _ = fs::remove_file(self.path(IVSHMEM_SOCK));
        if all {
            let _ = fs::remove_file(self.path(IVSHMEM_LOG));
        }
        let _ = fs::remove_file(self.path("cluster"));
        let _ = fs::remove_file(self.path("modules"));
        let sw = self.switch_dir();
        if let Ok(rd) = fs::read_dir(&sw) {
            for e in rd.flatten() {
                let _ = fs::remove_file(e.path());
            }
        }
        let _ = fs::remove_dir(&sw);
    }

    pub fn remove_runtime_files(&self) {
        self.remove_files(false);
    }

    pub fn remove_stale_files(&self) {
        self.remove_files(true);
    }
}

/// `node<N>.<ext>` for the extensions we own (`log.old`, the console of
/// the boot before a `cohort start` in older versions, is still cleaned up).
fn parse_node_file(name: &str) -> Option<(u32, &str)> {
    let rest = name.strip_prefix("node")?;
    let (num, ext) = rest.split_once('.')?;
    if !num.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = num.parse().ok()?;
    matches!(ext, "log" | "log.old" | "agent" | "pid" | "qemu").then_some((n, ext))
}

/// The last `n` lines of a file (reads at most its last 256 KiB).
pub fn tail_lines(path: &Path, n: usize) -> Result<Vec<String>, String> {
    const MAX: u64 = 256 * 1024;
    let mut f = fs::File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    if len > MAX {
        f.seek(SeekFrom::Start(len - MAX))
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    }
    let mut buf = vec![];
    f.read_to_end(&mut buf)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok(last_lines(&buf, n))
}

/// The last `n` lines of `buf`, lossily decoded, carriage returns removed.
pub fn last_lines(buf: &[u8], n: usize) -> Vec<String> {
    let text = String::from_utf8_lossy(buf);
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(n);
    lines[start..].iter().map(|l| l.replace('\r', "")).collect()
}

/// A block showing the end of a node's serial log, for error messages.
pub fn log_excerpt(state: &State, node: u32, n: usize) -> String {
    let path = state.node_file(node, "log");
    match tail_lines(&path, n) {
        Ok(lines) if lines.is_empty() => format!("({} is empty)", path.display()),
        Ok(lines) => format!(
            "---- last {} lines of {} ----\n{}\n---- end of log ----",
            lines.len(),
            path.display(),
            lines.join("\n")
        ),
        Err(e) => format!("(no serial log: {e})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_file_round_trip() {
        let c = ClusterInfo {
            nodes: 3,
            kernel: "/k/bz Image".into(),
            initrd: "/i".into(),
            transport: Transport::Shm,
        };
        assert_eq!(ClusterInfo::parse(&c.render()), Some(c));
        assert_eq!(ClusterInfo::parse("kernel x\n"), None);
        // Written before the transport was recorded: TCP.
        let old = ClusterInfo::parse("nodes 2\nkernel k\ninitrd i\n").unwrap();
        assert_eq!(old.transport, Transport::Tcp);
        assert_eq!(ClusterInfo::parse("nodes 2\ntransport udp\n"), None);
    }

    #[test]
    fn node_files() {
        assert_eq!(parse_node_file("node0.log"), Some((0, "log")));
        assert_eq!(parse_node_file("node12.agent"), Some((12, "agent")));
        assert_eq!(parse_node_file("node2.log.old"), Some((2, "log.old")));
        assert_eq!(parse_node_file("node1.txt"), None);
        assert_eq!(parse_node_file("nodex.pid"), None);
        assert_eq!(parse_node_file("node.pid"), None);
        assert_eq!(parse_node_file("switch.pid"), None);
    }

    #[test]
    fn last_lines_of_buffer() {
        assert_eq!(last_lines(b"a\nb\r\nc\n", 2), vec!["b", "c"]);
        assert_eq!(last_lines(b"a\nb", 5), vec!["a", "b"]);
        assert!(last_lines(b"", 3).is_empty());
    }
}
