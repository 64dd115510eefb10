//! `cohort up`: start the switch and the nodes, wait for their agents.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::agent;
use crate::modules::{self, Module};
use crate::state::{log_excerpt, ClusterInfo, State};
use crate::sys;
use crate::{require_cluster, Fail};

pub const QEMU: &str = "qemu-system-x86_64";
pub const VDE_SWITCH: &str = "vde_switch";

pub struct UpConfig {
    pub nodes: u32,
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    pub mem_mb: u32,
    pub smp: u32,
    pub timeout_s: u64,
    pub append: String,
    /// Modules to load on every node once it is up (any order).
    pub modules: Vec<Module>,
    pub modules_timeout_s: u64,
}

/// Node N's address on the switch (tools/guest/rc sets it).
pub fn node_ip(node: u32) -> String {
    format!("169.254.42.{}", node + 1)
}

/// `cohort.peers=IP0,IP1,...`: every node's address, in node order.
pub fn peers_arg(nodes: u32) -> String {
    let ips: Vec<String> = (0..nodes).map(node_ip).collect();
    format!("cohort.peers={}", ips.join(","))
}

/// The full QEMU command line (program first) for one node.
pub fn qemu_command(cfg: &UpConfig, state: &State, node: u32) -> Vec<String> {
    let d = |name: &str| state.path(name).display().to_string();
    let mut append = format!(
        "console=ttyS0 panic=-1 oops=panic cohort.node_id={node} cohort.nr_nodes={} {}",
        cfg.nodes,
        peers_arg(cfg.nodes)
    );
    if !cfg.append.trim().is_empty() {
        append.push(' ');
        append.push_str(cfg.append.trim());
    }
    let args = [
        QEMU.to_string(),
        "-M".into(),
        "q35".into(),
        // One host thread per vCPU (multi-threaded TCG), stated rather than
        // left to QEMU's default, so that --smp 2 really runs two CPUs at once.
        "-accel".into(),
        "tcg,thread=multi".into(),
        "-m".into(),
        cfg.mem_mb.to_string(),
        "-smp".into(),
        cfg.smp.to_string(),
        "-nodefaults".into(),
        "-display".into(),
        "none".into(),
        "-no-reboot".into(),
        "-kernel".into(),
        cfg.kernel.display().to_string(),
        "-initrd".into(),
        cfg.initrd.display().to_string(),
        "-append".into(),
        append,
        // The console is appended to, never truncated, so that one file
        // holds every boot of the node and offsets into it stay valid
        // across `cohort start` (the kernel-log checks rely on both).
        "-chardev".into(),
        format!(
            "file,id=console,path={},append=on",
            d(&format!("node{node}.log"))
        ),
        "-serial".into(),
        "chardev:console".into(),
        "-netdev".into(),
        format!("vde,id=net0,sock={}", d("switch")),
        "-device".into(),
        format!("virtio-net-pci,netdev=net0,mac=52:54:00:c0:00:{node:02x}"),
        "-device".into(),
        "virtio-serial-pci".into(),
        "-chardev".into(),
        format!(
            "socket,id=agent,path={},server=on,wait=off",
            d(&format!("node{node}.agent"))
        ),
        "-device".into(),
        "virtserialport,chardev=agent,name=org.cohort.agent".into(),
        "-pidfile".into(),
        d(&format!("node{node}.pid")),
        "-daemonize".into(),
    ];
    args.to_vec()
}

/// Find an executable on $PATH.
pub fn find_program(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
}

fn check_file(what: &str, p: &Path) -> Result<PathBuf, Fail> {
    match fs::metadata(p) {
        Ok(m) if m.is_file() => {
            fs::canonicalize(p).map_err(|e| Fail::new(1, format!("{what} {}: {e}", p.display())))
        }
        Ok(_) => Err(Fail::new(
            1,
            format!("{what} {} is not a file", p.display()),
        )),
        Err(e) => Err(Fail::new(
            1,
            format!(
                "{what} {} not found ({e}); build it first or pass --{what} PATH",
                p.display()
            ),
        )),
    }
}

enum Event {
    Up {
        node: u32,
        secs: f64,
        release: String,
    },
    Died {
        node: u32,
    },
    Bad {
        node: u32,
        msg: String,
    },
}

/// Wait for one node's agent; runs in its own thread.
fn wait_node(
    state: &State,
    node: u32,
    pid: u32,
    started: Instant,
    deadline: Instant,
) -> Option<Event> {
    let path = state.node_file(node, "agent");
    loop {
        if sys::interrupted() || Instant::now() >= deadline {
            return None;
        }
        if !state.is_ours(pid) {
            return Some(Event::Died { node });
        }
        let t = Instant::now();
        match agent::ping_once(&path, Duration::from_secs(3)) {
            Ok(n) if n == node.to_string() => break,
            Ok(n) => {
                return Some(Event::Bad {
                    node,
                    msg: format!("its agent answered as node {n}"),
                })
            }
            Err(_) => {
                // Not up yet; do not spin if the failure was immediate.
                if t.elapsed() < Duration::from_millis(500) {
                    thread::sleep(Duration::from_millis(500));
                }
            }
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let mut out = vec![];
    let release = match agent::run(state, node, pid, "uname -r", 60, &mut |d: &[u8]| {
        out.extend_from_slice(d);
        Ok(())
    }) {
        Ok(0) => String::from_utf8_lossy(&out).trim().to_string(),
        Ok(s) => format!("uname exited {s}"),
        Err(agent::RunError::Died(_)) => return Some(Event::Died { node }),
        Err(e) => format!("uname failed: {e}"),
    };
    Some(Event::Up {
        node,
        secs,
        release,
    })
}

pub fn up(state: &mut State, cfg: UpConfig) -> Result<(), Fail> {
    // The kernel's hub takes at most COHORT_MAX_NODES (64) nodes.
    if cfg.nodes == 0 || cfg.nodes > 64 {
        return Err(Fail::usage("-n must be between 1 and 64"));
    }
    if cfg.mem_mb < 64 || cfg.smp == 0 {
        return Err(Fail::usage(
            "--mem must be at least 64 and --smp at least 1",
        ));
    }
    let kernel = check_file("kernel", &cfg.kernel)?;
    let initrd = check_file("initrd", &cfg.initrd)?;
    let cfg = UpConfig {
        kernel,
        initrd,
        ..cfg
    };
    for (prog, pkg) in [(QEMU, "qemu-system-x86"), (VDE_SWITCH, "vde2")] {
        if find_program(prog).is_none() {
            return Err(Fail::new(
                1,
                format!("{prog} not found on PATH (Debian: apt-get install {pkg})"),
            ));
        }
    }
    state.create().map_err(|e| Fail::new(1, e))?;
    let live = state.live_processes();
    if !live.is_empty() {
        let list: Vec<String> = live.iter().map(|(w, p)| format!("{w} pid {p}")).collect();
        return Err(Fail::new(
            1,
            format!(
                "a cluster is already running in {} ({}); run `cohort down` first",
                state.dir.display(),
                list.join(", ")
            ),
        ));
    }
    state.remove_stale_files();
    sys::catch_interrupts();

    let result = start(state, &cfg);
    if let Err(e) = result {
        eprintln!("[up] stopping what was started");
        for m in state.stop_all() {
            eprintln!("[up] {m}");
        }
        return Err(e);
    }
    Ok(())
}

fn interrupted_fail() -> Fail {
    Fail::new(130, "interrupted".into())
}

/// Run one node's QEMU (it daemonizes) and return its pid.
fn launch(state: &State, node: u32, argv: &[String]) -> Result<u32, Fail> {
    let out = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Fail::new(1, format!("cannot run {}: {e}", argv[0])))?;
    if sys::interrupted() {
        return Err(interrupted_fail());
    }
    if !out.status.success() {
        return Err(Fail::new(
            1,
            format!(
                "node {node}: {QEMU} failed to start ({}):\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        ));
    }
    state.node_pid(node).ok_or_else(|| {
        Fail::new(
            1,
            format!("node {node}: {QEMU} started but wrote no pid file"),
        )
    })
}

fn start(state: &State, cfg: &UpConfig) -> Result<(), Fail> {
    let t0 = Instant::now();
    let info = ClusterInfo {
        nodes: cfg.nodes,
        kernel: cfg.kernel.display().to_string(),
        initrd: cfg.initrd.display().to_string(),
    };
    fs::write(state.path("cluster"), info.render())
        .map_err(|e| Fail::new(1, format!("cannot write cluster file: {e}")))?;
    let order = modules::load_order(&cfg.modules);
    if !order.is_empty() {
        modules::record(state, &order)?;
    }

    let sw = state.switch_dir();
    let out = Command::new(VDE_SWITCH)
        .arg("--sock")
        .arg(&sw)
        .arg("--daemon")
        .arg("--pidfile")
        .arg(state.path("switch.pid"))
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Fail::new(1, format!("cannot run {VDE_SWITCH}: {e}")))?;
    if !out.status.success() {
        return Err(Fail::new(
            1,
            format!(
                "{VDE_SWITCH} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        ));
    }
    // The daemon writes its pid file and control socket shortly after.
    let ctl = sw.join("ctl");
    let t = Instant::now();
    while state.switch_pid().is_none() || !ctl.exists() {
        if t.elapsed() > Duration::from_secs(5) {
            return Err(Fail::new(
                1,
                format!("{VDE_SWITCH} did not create {}", ctl.display()),
            ));
        }
        thread::sleep(Duration::from_millis(50));
    }
    if sys::interrupted() {
        return Err(interrupted_fail());
    }

    let deadline = t0 + Duration::from_secs(cfg.timeout_s);
    let mut started = vec![];
    for node in 0..cfg.nodes {
        let argv = qemu_command(cfg, state, node);
        let line = shlex::try_join(argv.iter().map(String::as_str)).map_err(|e| {
            Fail::new(
                1,
                format!("node {node}: cannot quote its command line: {e}"),
            )
        })?;
        fs::write(state.node_file(node, "qemu"), format!("{line}\n"))
            .map_err(|e| Fail::new(1, format!("cannot write node{node}.qemu: {e}")))?;
        let t = Instant::now();
        let pid = launch(state, node, &argv)?;
        println!("[up] node {node}: qemu pid {pid}");
        started.push((node, pid, t));
    }

    wait_agents(state, &started, t0, deadline, cfg.timeout_s, "up")?;
    println!(
        "[up] {} node(s) up in {:.1} s (state: {})",
        cfg.nodes,
        t0.elapsed().as_secs_f64(),
        state.dir.display()
    );
    if !order.is_empty() {
        let all: Vec<u32> = (0..cfg.nodes).collect();
        modules::load(state, &all, &all, &order, cfg.modules_timeout_s)?;
    }
    Ok(())
}

/// Wait until the agent of every started (node, pid, launch time) answers,
/// printing progress as `[tag] ...`; on timeout, death or a wrong agent,
/// fail with the end of the node's serial log.
fn wait_agents(
    state: &State,
    started: &[(u32, u32, Instant)],
    t0: Instant,
    deadline: Instant,
    timeout_s: u64,
    tag: &str,
) -> Result<(), Fail> {
    let (tx, rx) = mpsc::channel();
    let mut pending: Vec<u32> = started.iter().map(|s| s.0).collect();
    thread::scope(|s| -> Result<(), Fail> {
        for &(node, pid, t) in started {
            let tx = tx.clone();
            s.spawn(move || {
                if let Some(ev) = wait_node(state, node, pid, t, deadline) {
                    let _ = tx.send(ev);
                }
            });
        }
        drop(tx);
        let mut last_note = Instant::now();
        while !pending.is_empty() {
            if sys::interrupted() {
                return Err(interrupted_fail());
            }
            if Instant::now() >= deadline {
                let mut msg = format!(
                    "timed out after {} s waiting for {} node(s)",
                    timeout_s,
                    pending.len()
                );
                for n in &pending {
                    msg.push_str(&format!(
                        "\nnode {n}: agent not answering\n{}",
                        log_excerpt(state, *n, 30)
                    ));
                }
                return Err(Fail::new(1, msg));
            }
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(Event::Up {
                    node,
                    secs,
                    release,
                }) => {
                    println!("[{tag}] node {node} up in {secs:.1} s ({release})");
                    pending.retain(|&n| n != node);
                }
                Ok(Event::Died { node }) => {
                    return Err(Fail::new(
                        1,
                        format!(
                            "node {node}: QEMU exited before its agent answered\n{}",
                            log_excerpt(state, node, 30)
                        ),
                    ));
                }
                Ok(Event::Bad { node, msg }) => {
                    return Err(Fail::new(
                        1,
                        format!("node {node}: {msg}\n{}", log_excerpt(state, node, 30)),
                    ));
                }
                Err(_) => {}
            }
            if !pending.is_empty() && last_note.elapsed() >= Duration::from_secs(10) {
                last_note = Instant::now();
                let names: Vec<String> = pending.iter().map(|n| format!("node {n}")).collect();
                println!(
                    "[{tag}] waiting: {} ({} s)",
                    names.join(", "),
                    t0.elapsed().as_secs()
                );
            }
        }
        Ok(())
    })
}

/// `cohort start NODE`: boot one node of the running cluster again with
/// the command line `up` recorded for it, and wait for its agent; then
/// load the modules `up --modules` recorded and wait until the running
/// nodes see each other up. If it does not come up, its QEMU is stopped
/// again.
pub fn start_node(
    state: &State,
    node: u32,
    timeout_s: u64,
    modules_timeout_s: u64,
) -> Result<(), Fail> {
    let info = require_cluster(state)?;
    if node >= info.nodes {
        return Err(Fail::new(
            1,
            format!(
                "node {node} does not exist (the cluster has {} nodes)",
                info.nodes
            ),
        ));
    }
    if let Some(pid) = state.node_pid(node) {
        return Err(Fail::new(
            1,
            format!("node {node} is already running (qemu pid {pid}); `cohort kill {node}` first"),
        ));
    }
    if state.switch_pid().is_none() {
        return Err(Fail::new(
            1,
            format!(
                "the cluster's {VDE_SWITCH} is not running; restart the cluster (`cohort down`, `cohort up`)"
            ),
        ));
    }
    let qemu_file = state.node_file(node, "qemu");
    let line = fs::read_to_string(&qemu_file).map_err(|e| {
        Fail::new(
            1,
            format!("node {node}: cannot read {}: {e}", qemu_file.display()),
        )
    })?;
    let argv = shlex::split(&line).ok_or_else(|| {
        Fail::new(
            1,
            format!(
                "node {node}: bad quoting in the command line in {}",
                qemu_file.display()
            ),
        )
    })?;
    if argv.first().map(String::as_str) != Some(QEMU) {
        return Err(Fail::new(
            1,
            format!(
                "node {node}: {} does not hold a {QEMU} command line",
                qemu_file.display()
            ),
        ));
    }
    // The console file is appended to: a line marks where this boot starts.
    let log = state.node_file(node, "log");
    if let Ok(mut f) = fs::OpenOptions::new().append(true).open(&log) {
        use std::io::Write;
        let _ = writeln!(f, "\n---- cohort start: node {node} boots again ----");
    }
    let order = modules::recorded(state)?;
    let _ = fs::remove_file(state.node_file(node, "pid"));
    sys::catch_interrupts();
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs(timeout_s);
    let result = launch(state, node, &argv).and_then(|pid| {
        println!("[start] node {node}: qemu pid {pid}");
        wait_agents(state, &[(node, pid, t0)], t0, deadline, timeout_s, "start")?;
        if order.is_empty() {
            return Ok(());
        }
        let running: Vec<u32> = (0..info.nodes)
            .filter(|&n| state.node_pid(n).is_some())
            .collect();
        if running.len() < info.nodes as usize {
            eprintln!(
                "[modules] not running, left out of the mesh: node(s) {}",
                (0..info.nodes)
                    .filter(|n| !running.contains(n))
                    .map(|n| n.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            );
        }
        modules::load(state, &[node], &running, &order, modules_timeout_s)
    });
    if let Err(e) = result {
        if let Some(pid) = state.node_pid(node) {
            eprintln!("[start] stopping node {node} (qemu pid {pid})");
            sys::send_signal(pid, sys::SIGKILL);
        }
        return Err(e);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qemu_command_line() {
        let state = State {
            dir: PathBuf::from("/s"),
        };
        let cfg = UpConfig {
            nodes: 2,
            kernel: "/k".into(),
            initrd: "/i".into(),
            mem_mb: 512,
            smp: 1,
            timeout_s: 180,
            append: " quiet ".into(),
            modules: vec![],
            modules_timeout_s: 60,
        };
        let argv = qemu_command(&cfg, &state, 11);
        let line = shlex::try_join(argv.iter().map(String::as_str)).unwrap();
        assert_eq!(
            line,
            "qemu-system-x86_64 -M q35 -accel 'tcg,thread=multi' -m 512 -smp 1 -nodefaults -display none -no-reboot \
             -kernel /k -initrd /i -append 'console=ttyS0 panic=-1 oops=panic cohort.node_id=11 \
             cohort.nr_nodes=2 cohort.peers=169.254.42.1,169.254.42.2 quiet' -chardev 'file,id=console,path=/s/node11.log,append=on' -serial chardev:console -netdev 'vde,id=net0,sock=/s/switch' \
             -device 'virtio-net-pci,netdev=net0,mac=52:54:00:c0:00:0b' -device virtio-serial-pci \
             -chardev 'socket,id=agent,path=/s/node11.agent,server=on,wait=off' \
             -device 'virtserialport,chardev=agent,name=org.cohort.agent' -pidfile /s/node11.pid -daemonize"
        );
        assert!(!line.contains("kvm"));
        // `cohort start` reads back what `up` recorded.
        assert_eq!(shlex::split(&line), Some(argv));
    }
}
