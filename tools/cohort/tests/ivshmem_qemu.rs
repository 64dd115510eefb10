//! `cohort ivshmem-server` against real QEMUs: two paused QEMUs (`-S`, no
//! kernel) with an ivshmem-doorbell device connect to the server, whose
//! memory and interrupt setup their devices accept (a device whose setup
//! fails stops QEMU at start-up); the server sees each arrive and leave.
//!
//! QEMU may be missing (the unit tests in src/ivshmem.rs need none): then
//! the test is reported as ignored, with the reason on stderr, never as
//! passed. This file has its own harness (libtest-mimic) because the
//! built-in one cannot decide that at run time.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use libtest_mimic::{Arguments, Failed, Trial};

const QEMU: &str = "qemu-system-x86_64";

fn find_program(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
}

fn main() {
    let args = Arguments::from_args();
    let qemu = find_program(QEMU);
    let mut trial = Trial::test("real_qemu_clients_connect_and_leave", {
        let qemu = qemu.clone();
        move || match qemu {
            Some(q) => real_qemu(&q),
            None => Err(format!("{QEMU} is not on PATH").into()),
        }
    });
    if qemu.is_none() {
        eprintln!(
            "ivshmem_qemu: real_qemu_clients_connect_and_leave is skipped (ignored): \
             {QEMU} is not on PATH (Debian: apt-get install qemu-system-x86)"
        );
        trial = trial.with_ignored_flag(true);
    }
    libtest_mimic::run(&args, vec![trial]).exit();
}

/// Processes this test started, killed (by pid) and reaped when it ends.
struct Procs(Vec<(String, Child)>);

impl Procs {
    fn kill(&mut self, name: &str) -> Result<(), Failed> {
        let i = self
            .0
            .iter()
            .position(|(n, _)| n == name)
            .ok_or_else(|| format!("no process {name}"))?;
        let (_, mut child) = self.0.remove(i);
        child.kill()?;
        child.wait()?;
        Ok(())
    }

    fn alive(&mut self, name: &str) -> bool {
        self.0
            .iter_mut()
            .find(|(n, _)| n == name)
            .is_some_and(|(_, c)| matches!(c.try_wait(), Ok(None)))
    }
}

impl Drop for Procs {
    fn drop(&mut self) {
        for (_, c) in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Waits up to 20 s until `log` contains `what`.
fn wait_log(log: &Path, what: &str) -> Result<String, Failed> {
    let t = Instant::now();
    loop {
        let text = fs::read_to_string(log).unwrap_or_default();
        if text.contains(what) {
            return Ok(text);
        }
        if t.elapsed() > Duration::from_secs(20) {
            return Err(format!("{what:?} not in {} after 20 s:\n{text}", log.display()).into());
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// Runs one HMP command on the monitor socket `mon` and returns its output.
fn hmp(mon: &Path, cmd: &str) -> Result<String, Failed> {
    let t = Instant::now();
    let mut s = loop {
        match UnixStream::connect(mon) {
            Ok(s) => break s,
            Err(e) if t.elapsed() > Duration::from_secs(20) => {
                return Err(format!("monitor {}: {e}", mon.display()).into())
            }
            Err(_) => thread::sleep(Duration::from_millis(50)),
        }
    };
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    let mut out = String::new();
    let mut read_prompt = |s: &mut UnixStream| -> Result<String, Failed> {
        let mut buf = [0u8; 4096];
        loop {
            let n = s.read(&mut buf)?;
            if n == 0 {
                return Err("the monitor closed".into());
            }
            out.push_str(&String::from_utf8_lossy(&buf[..n]));
            if out.trim_end().ends_with("(qemu)") {
                return Ok(std::mem::take(&mut out));
            }
        }
    };
    read_prompt(&mut s)?;
    s.write_all(format!("{cmd}\n").as_bytes())?;
    read_prompt(&mut s)
}

fn start_qemu(qemu: &Path, dir: &Path, sock: &Path, name: &str) -> Result<Child, Failed> {
    let err = fs::File::create(dir.join(format!("{name}.err")))?;
    Ok(Command::new(qemu)
        .args([
            "-S",
            "-nodefaults",
            "-display",
            "none",
            "-machine",
            "q35",
            "-m",
            "64",
        ])
        .arg("-chardev")
        .arg(format!("socket,path={},id=ivshmem", sock.display()))
        .args(["-device", "ivshmem-doorbell,chardev=ivshmem,vectors=1"])
        .arg("-monitor")
        .arg(format!(
            "unix:{},server=on,wait=off",
            dir.join(format!("{name}.mon")).display()
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err)
        .spawn()?)
}

fn real_qemu(qemu: &Path) -> Result<(), Failed> {
    let dir = std::env::temp_dir().join(format!("cohort-ivshmem-qemu-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir)?;
    let result = run_in(qemu, &dir);
    if result.is_ok() {
        let _ = fs::remove_dir_all(&dir);
    } else {
        eprintln!("(files kept in {})", dir.display());
    }
    result
}

fn run_in(qemu: &Path, dir: &Path) -> Result<(), Failed> {
    let sock = dir.join("ivshmem.sock");
    let pidfile = dir.join("ivshmem.pid");
    let log = dir.join("ivshmem.log");
    let mut procs = Procs(vec![]);
    let server = Command::new(env!("CARGO_BIN_EXE_cohort"))
        .arg("ivshmem-server")
        .arg("--socket")
        .arg(&sock)
        .args(["--size", "1M", "--nodes", "2", "--max-clients", "4"])
        .arg("--pidfile")
        .arg(&pidfile)
        .stdin(Stdio::null())
        .stdout(fs::File::create(&log)?)
        .stderr(fs::File::create(dir.join("ivshmem.err"))?)
        .spawn()?;
    let server_pid = server.id();
    procs.0.push(("server".into(), server));
    let text = wait_log(&log, "listening on")?;
    if !text.contains("formatted for 2 nodes") {
        return Err(format!("the server did not format the region:\n{text}").into());
    }
    if fs::read_to_string(&pidfile)?.trim() != server_pid.to_string() {
        return Err("the pid file does not hold the server's pid".into());
    }

    procs
        .0
        .push(("a".into(), start_qemu(qemu, dir, &sock, "a")?));
    wait_log(&log, "client 0 connected")?;
    let pci = hmp(&dir.join("a.mon"), "info pci")?;
    if !pci.contains("1af4:1110") || !pci.contains("BAR2") {
        return Err(format!("QEMU a has no ivshmem device with its memory:\n{pci}").into());
    }
    procs
        .0
        .push(("b".into(), start_qemu(qemu, dir, &sock, "b")?));
    wait_log(&log, "client 1 connected (2 client(s)")?;
    hmp(&dir.join("b.mon"), "info pci")?;
    for q in ["a", "b"] {
        if !procs.alive(q) {
            let err = fs::read_to_string(dir.join(format!("{q}.err")))?;
            return Err(format!("QEMU {q} exited:\n{err}").into());
        }
    }
    // B dies: the server notices and tells A (A's QEMU takes it quietly).
    procs.kill("b")?;
    wait_log(&log, "client 1 left (1 client(s) left)")?;
    // A new QEMU gets a new id, and A hears of it.
    procs
        .0
        .push(("c".into(), start_qemu(qemu, dir, &sock, "c")?));
    wait_log(&log, "client 2 connected (2 client(s)")?;
    hmp(&dir.join("c.mon"), "info pci")?;
    if !procs.alive("a") {
        return Err("QEMU a did not survive its peers coming and going".into());
    }
    procs.kill("c")?;
    procs.kill("a")?;
    wait_log(&log, "client 0 left (0 client(s) left)")?;
    // SIGTERM: the server stops cleanly and removes its socket and pid file.
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(server_pid.to_string())
        .status()?;
    if !status.success() {
        return Err("cannot signal the server".into());
    }
    let (_, mut server) = procs.0.remove(0);
    let t = Instant::now();
    let status = loop {
        if let Some(s) = server.try_wait()? {
            break s;
        }
        if t.elapsed() > Duration::from_secs(10) {
            let _ = server.kill();
            let _ = server.wait();
            return Err("the server ignored SIGTERM".into());
        }
        thread::sleep(Duration::from_millis(50));
    };
    if !status.success() {
        return Err(format!("the server exited with {status}").into());
    }
    if sock.exists() || pidfile.exists() {
        return Err("the server left its socket or pid file behind".into());
    }
    Ok(())
}
