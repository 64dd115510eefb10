//! Host side of the agent protocol: connect to a node's agent socket,
//! PING it, run a command and stream its output.

use std::io::{self, ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::frame::{self, Decoder, Frame};
use crate::state::State;

/// How long one read waits before liveness and deadlines are checked.
const POLL: Duration = Duration::from_millis(250);
/// Extra time the host gives the agent to report its own timeout.
const TIMEOUT_GRACE: Duration = Duration::from_secs(15);

/// A fresh request id: letters and digits, at most 32 of them.
pub fn new_id() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(
        "{:x}{:x}x{:x}",
        std::process::id(),
        nanos & 0xff_ffff_ffff,
        n
    )
}

/// Connect to a unix socket, giving up after `timeout` (connect(2) on a
/// unix socket blocks while the listener's backlog is full).
fn connect_timeout(path: &Path, timeout: Duration) -> io::Result<UnixStream> {
    let (tx, rx) = mpsc::channel();
    let p = path.to_path_buf();
    thread::spawn(move || {
        let _ = tx.send(UnixStream::connect(p));
    });
    match rx.recv_timeout(timeout) {
        Ok(r) => r,
        Err(_) => Err(io::Error::new(
            ErrorKind::TimedOut,
            "connect timed out (agent socket busy?)",
        )),
    }
}

pub struct Conn {
    stream: UnixStream,
    dec: Decoder,
    buf: Vec<u8>,
    eof: bool,
}

pub enum Next {
    Frame(Frame),
    /// Nothing arrived within POLL.
    Idle,
    /// The socket was closed by QEMU.
    Eof,
}

impl Conn {
    pub fn open(path: &Path, timeout: Duration) -> io::Result<Conn> {
        let stream = connect_timeout(path, timeout)?;
        stream.set_read_timeout(Some(POLL))?;
        stream.set_write_timeout(Some(Duration::from_secs(30)))?;
        Ok(Conn {
            stream,
            dec: Decoder::new(),
            buf: vec![0; 65536],
            eof: false,
        })
    }

    pub fn send(&mut self, data: &[u8]) -> io::Result<()> {
        self.stream.write_all(data)
    }

    /// The next frame, or Idle after POLL without one.
    pub fn next(&mut self) -> io::Result<Next> {
        loop {
            if let Some(f) = self.dec.next_frame() {
                return Ok(Next::Frame(f));
            }
            if self.eof {
                return Ok(Next::Eof);
            }
            match self.stream.read(&mut self.buf) {
                Ok(0) => self.eof = true,
                Ok(n) => self.dec.push(&self.buf[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Ok(Next::Idle)
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Send PING and wait up to `timeout` for its PONG; frames of other
    /// requests (stale ones from an earlier connection) are dropped.
    /// Returns the node id the agent reported, or None on timeout/EOF.
    pub fn ping(&mut self, timeout: Duration) -> io::Result<Option<String>> {
        let id = new_id();
        self.send(&frame::encode_ping(&id))?;
        let start = Instant::now();
        while start.elapsed() < timeout {
            match self.next()? {
                Next::Frame(Frame::Pong { id: got, node }) if got == id => return Ok(Some(node)),
                Next::Frame(_) | Next::Idle => {}
                Next::Eof => return Ok(None),
            }
        }
        Ok(None)
    }
}

/// One PING over a fresh connection (for `up` and `status`).
pub fn ping_once(path: &Path, timeout: Duration) -> Result<String, String> {
    let start = Instant::now();
    let mut c = Conn::open(path, timeout).map_err(|e| e.to_string())?;
    let left = timeout.saturating_sub(start.elapsed());
    match c.ping(left) {
        Ok(Some(node)) => Ok(node),
        Ok(None) => Err("no answer".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// Why a remote command did not produce an exit status.
#[derive(Debug)]
pub enum RunError {
    /// The command ran longer than its timeout.
    Timeout(u64),
    /// The node's QEMU exited.
    Died(u32),
    /// Anything else: connection or protocol trouble.
    Failed(String),
    /// Writing the output locally failed (e.g. a closed pipe).
    Sink(io::Error),
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Timeout(s) => write!(f, "timed out after {s} s"),
            RunError::Died(pid) => write!(f, "QEMU (pid {pid}) exited while the command ran"),
            RunError::Failed(m) => f.write_str(m),
            RunError::Sink(e) => write!(f, "writing output: {e}"),
        }
    }
}

/// Run `cmd` on `node` (whose QEMU is `pid`), passing output to `sink`
/// as it arrives. Returns the remote exit status.
pub fn run(
    state: &State,
    node: u32,
    pid: u32,
    cmd: &str,
    timeout_s: u64,
    sink: &mut dyn FnMut(&[u8]) -> io::Result<()>,
) -> Result<i32, RunError> {
    if cmd.len() > frame::MAX_CMD {
        return Err(RunError::Failed(format!(
            "command is {} bytes long; the agent accepts at most {}",
            cmd.len(),
            frame::MAX_CMD
        )));
    }
    let alive = || state.is_ours(pid);
    let path = state.node_file(node, "agent");

    // Connect and make sure the agent answers as this node. A connection
    // may start with stale bytes an earlier client left queued; if the
    // PING gets lost in them, start over on a fresh connection.
    let mut conn = None;
    let mut last_err =
        String::from("the agent did not answer PING (busy with another client, or hung)");
    for _ in 0..3 {
        if !alive() {
            return Err(RunError::Died(pid));
        }
        let mut c = match Conn::open(&path, Duration::from_secs(10)) {
            Ok(c) => c,
            Err(e) => {
                last_err = format!("cannot connect to {}: {e}", path.display());
                thread::sleep(Duration::from_millis(500));
                continue;
            }
        };
        match c.ping(Duration::from_secs(10)) {
            Ok(Some(n)) if n == node.to_string() => {
                conn = Some(c);
                break;
            }
            Ok(Some(n)) => {
                return Err(RunError::Failed(format!(
                    "the agent behind {} says it is node {n}",
                    path.display()
                )))
            }
            Ok(None) => {}
            Err(e) => last_err = format!("agent connection: {e}"),
        }
    }
    let Some(mut conn) = conn else {
        if !alive() {
            return Err(RunError::Died(pid));
        }
        return Err(RunError::Failed(last_err));
    };

    let id = new_id();
    conn.send(&frame::encode_exec(&id, timeout_s, cmd.as_bytes()))
        .map_err(|e| RunError::Failed(format!("sending the command: {e}")))?;
    let start = Instant::now();
    let limit = (timeout_s > 0).then(|| Duration::from_secs(timeout_s) + TIMEOUT_GRACE);
    let mut last_check = Instant::now();
    loop {
        let next = conn
            .next()
            .map_err(|e| RunError::Failed(format!("reading from the agent: {e}")))?;
        match next {
            Next::Frame(Frame::Out { id: got, data }) if got == id => {
                sink(&data).map_err(RunError::Sink)?;
            }
            Next::Frame(Frame::Exit { id: got, status }) if got == id => {
                if timeout_s > 0 && status == 124 && start.elapsed().as_secs() >= timeout_s {
                    return Err(RunError::Timeout(timeout_s));
                }
                return Ok(status);
            }
            Next::Frame(Frame::Err { id: got, msg }) if got == id => {
                return Err(RunError::Failed(format!(
                    "the agent refused the command: {msg}"
                )));
            }
            Next::Frame(_) | Next::Idle => {}
            Next::Eof => {
                // QEMU closes the socket when it exits; give it a moment.
                for _ in 0..20 {
                    if !alive() {
                        return Err(RunError::Died(pid));
                    }
                    thread::sleep(Duration::from_millis(100));
                }
                return Err(RunError::Failed("the agent connection was closed".into()));
            }
        }
        if limit.is_some_and(|l| start.elapsed() > l) {
            return Err(RunError::Timeout(timeout_s));
        }
        if last_check.elapsed() >= Duration::from_millis(500) {
            last_check = Instant::now();
            if !alive() {
                return Err(RunError::Died(pid));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_valid_and_unique() {
        let a = new_id();
        let b = new_id();
        assert!(frame::valid_id(&a), "{a}");
        assert!(frame::valid_id(&b), "{b}");
        assert_ne!(a, b);
    }
}
