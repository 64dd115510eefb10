//! `cohort up`: start the switch and the nodes, wait for their agents.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::agent;
use crate::key;
use crate::modules::{self, Module};
use crate::state::{log_excerpt, ClusterInfo, State};
use crate::sys;
use crate::{require_cluster, Fail};

pub const QEMU: &str = "qemu-system-x86_64";
pub const VDE_SWITCH: &str = "vde_switch";

/// kmsg's transport between the nodes of a cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Transport {
    /// TCP over the switch.
    Tcp,
    /// Shared memory with doorbells (an ivshmem-doorbell device on every
    /// node, served by `cohort ivshmem-server`), TCP where it is not shared.
    Shm,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Shm => "shm",
        }
    }

    pub fn parse(s: &str) -> Option<Transport> {
        match s {
            "tcp" => Some(Transport::Tcp),
            "shm" => Some(Transport::Shm),
            _ => None,
        }
    }
}

/// The server's socket, pid file and log in the state dir.
pub const IVSHMEM_SOCK: &str = "ivshmem.sock";
pub const IVSHMEM_PID: &str = "ivshmem.pid";
pub const IVSHMEM_LOG: &str = "ivshmem.log";
/// The kernel parameter that tells a node it has the ivshmem device.
pub const SHM_PARAM: &str = "cohort.shm=1";
/// `cohort.heartbeat_timeout_ms` that `up` gives the nodes by default. A
/// TCG guest whose vCPUs all run user loops stops taking timer interrupts
/// for seconds at a time (0.6 to 16 s measured with two 2-vCPU nodes on a
/// 2-core host); the kernel's 2000 ms then declares live nodes down and
/// kills the processes that ran there.
pub const HEARTBEAT_TIMEOUT_MS: u32 = 8000;
/// The ring size `up` sizes the shared memory for, at least.
const SHM_RING: usize = 64 << 10;

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
    /// Whether the nodes authenticate kmsg's connections: with it, every
    /// node gets the cluster key (`STATE/cluster.key`) through fw_cfg;
    /// without it, `cohort.auth=0` on its command line.
    pub auth: bool,
    /// `cohort.heartbeat_timeout_ms` of every node.
    pub heartbeat_timeout_ms: u32,
    pub transport: Transport,
    /// Bytes of shared memory with [`Transport::Shm`] (default:
    /// [`shm_size`]).
    pub shm_size: Option<usize>,
}

/// The shared memory `up` gives `nodes` nodes: 8 MiB, or the power of two
/// that gives each of their rings 64 KiB if that is more.
pub fn shm_size(nodes: u32) -> usize {
    let rings = cohort_proto::shm_ring::Layout::region_size_for(nodes as usize, SHM_RING);
    rings.unwrap_or(0).max(crate::ivshmem::DEFAULT_SIZE)
}

/// QEMU's options for the ivshmem-doorbell device on the server's socket.
pub fn ivshmem_args(socket: &Path) -> [String; 4] {
    [
        "-chardev".into(),
        format!("socket,path={},id=ivshmem", socket.display()),
        "-device".into(),
        "ivshmem-doorbell,chardev=ivshmem,vectors=1".into(),
    ]
}

/// How a node booted by `cohort start` authenticates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeAuth {
    /// As `cohort up` recorded it in nodeN.qemu.
    Recorded,
    /// With the key in this file, for this boot only.
    Key(PathBuf),
    /// Without authentication (`cohort.auth=0`), for this boot only.
    Off,
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

/// QEMU's option that hands the key in `file` to a node as the fw_cfg
/// entry [`key::FW_CFG_NAME`].
fn fw_cfg_key(file: &Path) -> [String; 2] {
    [
        "-fw_cfg".into(),
        format!("name={},file={}", key::FW_CFG_NAME, file.display()),
    ]
}

/// The kernel parameter that turns kmsg's authentication off.
const AUTH_OFF: &str = "cohort.auth=0";

/// The full QEMU command line (program first) for one node.
pub fn qemu_command(cfg: &UpConfig, state: &State, node: u32) -> Vec<String> {
    let d = |name: &str| state.path(name).display().to_string();
    let mut append = format!(
        "console=ttyS0 panic=-1 oops=panic cohort.node_id={node} cohort.nr_nodes={} {} cohort.heartbeat_timeout_ms={}",
        cfg.nodes,
        peers_arg(cfg.nodes),
        cfg.heartbeat_timeout_ms
    );
    if !cfg.auth {
        append.push(' ');
        append.push_str(AUTH_OFF);
    }
    if cfg.transport == Transport::Shm {
        append.push(' ');
        append.push_str(SHM_PARAM);
    }
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
    let mut args = args.to_vec();
    if cfg.auth {
        args.extend(fw_cfg_key(&state.path(key::KEY_FILE)));
    }
    if cfg.transport == Transport::Shm {
        args.extend(ivshmem_args(&state.path(IVSHMEM_SOCK)));
    }
    args
}

/// `argv`, a node's recorded QEMU command line, changed to boot it as
/// `auth` says: any cluster key handed through fw_cfg and any
/// `cohort.auth=` parameter are dropped, then the new key's fw_cfg
/// option, or `cohort.auth=0`, is added.
pub fn with_auth(argv: &[String], auth: &NodeAuth) -> Result<Vec<String>, String> {
    if *auth == NodeAuth::Recorded {
        return Ok(argv.to_vec());
    }
    let key_entry = format!("name={},", key::FW_CFG_NAME);
    let mut out: Vec<String> = Vec::with_capacity(argv.len() + 2);
    let mut appended = false;
    let mut i = 0;
    while i < argv.len() {
        let arg = &argv[i];
        let next = argv.get(i + 1);
        if arg == "-fw_cfg" && next.is_some_and(|v| v.starts_with(&key_entry)) {
            i += 2;
            continue;
        }
        out.push(arg.clone());
        if arg == "-append" {
            let Some(line) = next else {
                return Err("-append without a value".into());
            };
            let mut words: Vec<&str> = line
                .split_whitespace()
                .filter(|w| !w.starts_with("cohort.auth="))
                .collect();
            if *auth == NodeAuth::Off {
                words.push(AUTH_OFF);
            }
            out.push(words.join(" "));
            appended = true;
            i += 2;
            continue;
        }
        i += 1;
    }
    if !appended {
        return Err("no -append (kernel command line) in it".into());
    }
    if let NodeAuth::Key(file) = auth {
        out.extend(fw_cfg_key(file));
    }
    Ok(out)
}

/// The fw_cfg entry a node finds a node configuration file in
/// (`cohort start --config`; tools/guest/rc copies it to
/// /etc/cohort/cohort.conf and applies it with cohort-node).
pub const CONFIG_FW_CFG_NAME: &str = "opt/org.cohort/cohort.conf";

/// The kernel parameters that give a node its identity, which a node
/// configuration file replaces.
const IDENTITY_PARAMS: [&str; 4] = [
    "cohort.node_id=",
    "cohort.nr_nodes=",
    "cohort.peers=",
    "cohort.port=",
];

/// `argv`, a node's QEMU command line, changed to take its identity from
/// the node configuration in `file` only: the identity parameters leave
/// the kernel command line, any configuration already handed through
/// fw_cfg is dropped and `file`'s is added.
pub fn with_config(argv: &[String], file: &Path) -> Result<Vec<String>, String> {
    let entry = format!("name={CONFIG_FW_CFG_NAME},");
    let mut out: Vec<String> = Vec::with_capacity(argv.len() + 2);
    let mut appended = false;
    let mut i = 0;
    while i < argv.len() {
        let arg = &argv[i];
        let next = argv.get(i + 1);
        if arg == "-fw_cfg" && next.is_some_and(|v| v.starts_with(&entry)) {
            i += 2;
            continue;
        }
        out.push(arg.clone());
        if arg == "-append" {
            let Some(line) = next else {
                return Err("-append without a value".into());
            };
            let words: Vec<&str> = line
                .split_whitespace()
                .filter(|w| !IDENTITY_PARAMS.iter().any(|p| w.starts_with(p)))
                .collect();
            out.push(words.join(" "));
            appended = true;
            i += 2;
            continue;
        }
        i += 1;
    }
    if !appended {
        return Err("no -append (kernel command line) in it".into());
    }
    out.push("-fw_cfg".into());
    out.push(format!("name={CONFIG_FW_CFG_NAME},file={}", file.display()));
    Ok(out)
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
    if cfg.transport == Transport::Shm {
        let size = cfg.shm_size.unwrap_or_else(|| shm_size(cfg.nodes));
        crate::ivshmem::check_size(size).map_err(|e| Fail::usage(&e))?;
        cohort_proto::shm_ring::Layout::new(cfg.nodes as usize, size).map_err(|_| {
            Fail::usage(&format!(
                "--shm-size {size} cannot hold rings for {} nodes",
                cfg.nodes
            ))
        })?;
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
    // A new cluster, a new key; a cluster without authentication has none
    // (an old one left behind would let `cohort fuzz --key` pick it up).
    let key_file = state.path(key::KEY_FILE);
    if cfg.auth {
        let k = key::generate().map_err(|e| Fail::new(1, e))?;
        key::write(&key_file, &k).map_err(|e| Fail::new(1, e))?;
        println!("[up] cluster key: {} (new)", key_file.display());
    } else {
        match fs::remove_file(&key_file) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(Fail::new(
                    1,
                    format!("cannot remove the old {}: {e}", key_file.display()),
                ))
            }
            _ => {}
        }
        println!("[up] kmsg authentication off (cohort.auth=0): the nodes have no key");
    }
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
        transport: cfg.transport,
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
    if cfg.transport == Transport::Shm {
        let size = cfg.shm_size.unwrap_or_else(|| shm_size(cfg.nodes));
        let pid = start_ivshmem_server(state, cfg.nodes, size)?;
        println!(
            "[up] ivshmem server: pid {pid}, {size} bytes of shared memory ({})",
            state.path(IVSHMEM_SOCK).display()
        );
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

/// Starts `cohort ivshmem-server` for the cluster in its own process
/// group (so that a Ctrl-C meant for a later command does not reach it),
/// logging to STATE/ivshmem.log, and waits until it listens; returns its
/// pid.
fn start_ivshmem_server(state: &State, nodes: u32, size: usize) -> Result<u32, Fail> {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe()
        .map_err(|e| Fail::new(1, format!("cannot find the cohort binary: {e}")))?;
    let log_path = state.path(IVSHMEM_LOG);
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| Fail::new(1, format!("cannot open {}: {e}", log_path.display())))?;
    let err = log
        .try_clone()
        .map_err(|e| Fail::new(1, format!("{}: {e}", log_path.display())))?;
    let sock = state.path(IVSHMEM_SOCK);
    let pidfile = state.path(IVSHMEM_PID);
    let _ = fs::remove_file(&pidfile);
    let mut child = Command::new(&exe)
        .arg("ivshmem-server")
        .arg("--socket")
        .arg(&sock)
        .arg("--size")
        .arg(size.to_string())
        .arg("--nodes")
        .arg(nodes.to_string())
        // Every node's QEMU is one client; room for a few more (a node
        // being restarted while its old connection closes, a debugger).
        .arg("--max-clients")
        .arg((nodes + 4).to_string())
        .arg("--pidfile")
        .arg(&pidfile)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err)
        .process_group(0)
        .spawn()
        .map_err(|e| {
            Fail::new(
                1,
                format!("cannot run {} ivshmem-server: {e}", exe.display()),
            )
        })?;
    let t = Instant::now();
    loop {
        if let Some(pid) = state.ivshmem_pid() {
            if sock.exists() {
                return Ok(pid);
            }
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(Fail::new(
                1,
                format!(
                    "the ivshmem server exited ({status}); {}:\n{}",
                    log_path.display(),
                    crate::state::tail_lines(&log_path, 10)
                        .unwrap_or_default()
                        .join("\n")
                ),
            ));
        }
        if t.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Fail::new(
                1,
                format!(
                    "the ivshmem server did not listen on {} in 10 s",
                    sock.display()
                ),
            ));
        }
        if sys::interrupted() {
            return Err(interrupted_fail());
        }
        thread::sleep(Duration::from_millis(50));
    }
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
///
/// With `auth` other than [`NodeAuth::Recorded`], this boot has another
/// key or none (the recorded command line is not changed, so the next
/// `cohort start` boots it as the others again); the node is not meant to
/// join, so only its own modules are waited for, not the mesh.
///
/// With `config`, this boot takes its identity from that node
/// configuration file only ([`with_config`]); the mesh waited for is the
/// running nodes', as they see each other with whatever addresses and port
/// they have.
pub fn start_node(
    state: &State,
    node: u32,
    timeout_s: u64,
    modules_timeout_s: u64,
    auth: &NodeAuth,
    config: Option<&Path>,
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
    if info.transport == Transport::Shm && state.ivshmem_pid().is_none() {
        return Err(Fail::new(
            1,
            format!(
                "the cluster's ivshmem server is not running (see {}); restart the cluster (`cohort down`, `cohort up`)",
                state.path(IVSHMEM_LOG).display()
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
    let auth = match auth {
        NodeAuth::Key(file) => {
            // Checked as kmsg will check it, so that a bad file fails here
            // rather than at insmod; QEMU wants a path it can open.
            key::read(file).map_err(|e| Fail::new(1, e))?;
            let file = fs::canonicalize(file)
                .map_err(|e| Fail::new(1, format!("key {}: {e}", file.display())))?;
            println!(
                "[start] node {node}: booting with the key in {} (this boot only)",
                file.display()
            );
            NodeAuth::Key(file)
        }
        NodeAuth::Off => {
            println!("[start] node {node}: booting without authentication (this boot only)");
            NodeAuth::Off
        }
        NodeAuth::Recorded => NodeAuth::Recorded,
    };
    let mut argv = with_auth(&argv, &auth)
        .map_err(|e| Fail::new(1, format!("node {node}: {}: {e}", qemu_file.display())))?;
    if let Some(file) = config {
        // QEMU wants a path it can open; the node checks the contents.
        let file = fs::canonicalize(file)
            .map_err(|e| Fail::new(1, format!("config {}: {e}", file.display())))?;
        argv = with_config(&argv, &file)
            .map_err(|e| Fail::new(1, format!("node {node}: {}: {e}", qemu_file.display())))?;
        println!(
            "[start] node {node}: booting with the node configuration {} (this boot only)",
            file.display()
        );
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
        if auth != NodeAuth::Recorded {
            eprintln!(
                "[modules] node {node} boots with another key or none: not waiting for the mesh"
            );
            return modules::load(state, &[node], &[node], &order, modules_timeout_s);
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
            auth: true,
            heartbeat_timeout_ms: 8000,
            transport: Transport::Tcp,
            shm_size: None,
        };
        let argv = qemu_command(&cfg, &state, 11);
        let line = shlex::try_join(argv.iter().map(String::as_str)).unwrap();
        assert_eq!(
            line,
            "qemu-system-x86_64 -M q35 -accel 'tcg,thread=multi' -m 512 -smp 1 -nodefaults -display none -no-reboot \
             -kernel /k -initrd /i -append 'console=ttyS0 panic=-1 oops=panic cohort.node_id=11 \
             cohort.nr_nodes=2 cohort.peers=169.254.42.1,169.254.42.2 cohort.heartbeat_timeout_ms=8000 quiet' -chardev 'file,id=console,path=/s/node11.log,append=on' -serial chardev:console -netdev 'vde,id=net0,sock=/s/switch' \
             -device 'virtio-net-pci,netdev=net0,mac=52:54:00:c0:00:0b' -device virtio-serial-pci \
             -chardev 'socket,id=agent,path=/s/node11.agent,server=on,wait=off' \
             -device 'virtserialport,chardev=agent,name=org.cohort.agent' -pidfile /s/node11.pid -daemonize \
             -fw_cfg 'name=opt/org.cohort/cluster.key,file=/s/cluster.key'"
        );
        assert!(!line.contains("kvm"));
        // `cohort start` reads back what `up` recorded.
        assert_eq!(shlex::split(&line), Some(argv.clone()));

        // Without authentication: no key, cohort.auth=0 before --append's.
        let off = qemu_command(&UpConfig { auth: false, ..cfg }, &state, 11);
        let line = shlex::try_join(off.iter().map(String::as_str)).unwrap();
        assert!(!line.contains("fw_cfg"), "{line}");
        assert!(
            line.contains("cohort.heartbeat_timeout_ms=8000 cohort.auth=0 quiet'"),
            "{line}"
        );
        // `cohort start --no-auth` gets the same, cohort.auth=0 last.
        let started = with_auth(&argv, &NodeAuth::Off).unwrap();
        assert_eq!(started.len(), off.len());
        assert!(
            started[18].ends_with(" quiet cohort.auth=0"),
            "{}",
            started[18]
        );
        assert_eq!(with_auth(&off, &NodeAuth::Recorded).unwrap(), off);
    }

    #[test]
    fn config_replaces_the_identity_parameters() {
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
            append: "cohort.port=9 quiet".into(),
            modules: vec![],
            modules_timeout_s: 60,
            auth: true,
            heartbeat_timeout_ms: 8000,
            transport: Transport::Tcp,
            shm_size: None,
        };
        let argv = qemu_command(&cfg, &state, 1);
        let c = with_config(&argv, Path::new("/c/node1.conf")).unwrap();
        let line = shlex::try_join(c.iter().map(String::as_str)).unwrap();
        for p in IDENTITY_PARAMS {
            assert!(!line.contains(p), "{p} left in {line}");
        }
        // The heartbeat timeout is not identity: it stays.
        assert!(
            line.contains(
                "'console=ttyS0 panic=-1 oops=panic cohort.heartbeat_timeout_ms=8000 quiet'"
            ),
            "{line}"
        );
        assert!(
            line.ends_with("-fw_cfg 'name=opt/org.cohort/cohort.conf,file=/c/node1.conf'"),
            "{line}"
        );
        // The key stays; a second configuration replaces the first.
        assert!(line.contains(key::FW_CFG_NAME), "{line}");
        let again = with_config(&c, Path::new("/c/other.conf")).unwrap();
        let entries = again
            .iter()
            .filter(|a| a.contains(CONFIG_FW_CFG_NAME))
            .count();
        assert_eq!(entries, 1);
        assert!(again.last().unwrap().ends_with("file=/c/other.conf"));
        assert!(with_config(&["qemu".to_string()], Path::new("/c")).is_err());
    }

    #[test]
    fn shm_transport_adds_the_device_and_the_parameter() {
        let state = State {
            dir: PathBuf::from("/s"),
        };
        let cfg = UpConfig {
            nodes: 3,
            kernel: "/k".into(),
            initrd: "/i".into(),
            mem_mb: 512,
            smp: 1,
            timeout_s: 180,
            append: "quiet".into(),
            modules: vec![],
            modules_timeout_s: 60,
            auth: false,
            heartbeat_timeout_ms: 8000,
            transport: Transport::Shm,
            shm_size: None,
        };
        let argv = qemu_command(&cfg, &state, 1);
        let line = shlex::try_join(argv.iter().map(String::as_str)).unwrap();
        assert!(line.contains("cohort.auth=0 cohort.shm=1 quiet'"), "{line}");
        assert!(
            line.ends_with(
                "-daemonize -chardev 'socket,path=/s/ivshmem.sock,id=ivshmem' \
                 -device 'ivshmem-doorbell,chardev=ivshmem,vectors=1'"
            ),
            "{line}"
        );
        // `cohort start` with another key keeps the device.
        let k = with_auth(&argv, &NodeAuth::Key("/k2".into())).unwrap();
        assert!(k
            .iter()
            .any(|a| a == "ivshmem-doorbell,chardev=ivshmem,vectors=1"));
        assert!(k.iter().any(|a| a.contains(SHM_PARAM)));
        // TCP: neither.
        let tcp = qemu_command(
            &UpConfig {
                transport: Transport::Tcp,
                ..cfg
            },
            &state,
            1,
        );
        assert!(!tcp
            .iter()
            .any(|a| a.contains("ivshmem") || a.contains(SHM_PARAM)));
        assert_eq!(
            Transport::parse(Transport::Shm.as_str()),
            Some(Transport::Shm)
        );
        assert_eq!(Transport::parse("udp"), None);
    }

    #[test]
    fn shm_sizes() {
        assert_eq!(shm_size(2), 8 << 20);
        assert_eq!(shm_size(3), 8 << 20);
        // 16 nodes: 240 rings of 64 KiB need more than 8 MiB.
        assert_eq!(shm_size(16), 16 << 20);
        assert_eq!(shm_size(64), 256 << 20);
        for n in 1..=64 {
            let size = shm_size(n);
            assert!(crate::ivshmem::check_size(size).is_ok(), "{n}: {size}");
            let l = cohort_proto::shm_ring::Layout::new(n as usize, size).unwrap();
            assert!(n == 1 || l.ring_size() >= 64 << 10, "{n}");
        }
    }

    #[test]
    fn start_changes_only_the_key_and_auth() {
        let argv: Vec<String> = [
            QEMU,
            "-append",
            "console=ttyS0 cohort.node_id=1 cohort.auth=0 quiet",
            "-fw_cfg",
            "name=opt/other,file=/x",
            "-fw_cfg",
            "name=opt/org.cohort/cluster.key,file=/s/cluster.key",
            "-daemonize",
        ]
        .map(String::from)
        .to_vec();
        let k = with_auth(&argv, &NodeAuth::Key("/tmp/wrong.key".into())).unwrap();
        assert_eq!(
            k,
            [
                QEMU,
                "-append",
                "console=ttyS0 cohort.node_id=1 quiet",
                "-fw_cfg",
                "name=opt/other,file=/x",
                "-daemonize",
                "-fw_cfg",
                "name=opt/org.cohort/cluster.key,file=/tmp/wrong.key",
            ]
            .map(String::from)
        );
        let off = with_auth(&k, &NodeAuth::Off).unwrap();
        assert_eq!(off[2], "console=ttyS0 cohort.node_id=1 quiet cohort.auth=0");
        assert_eq!(off.len(), 6);
        assert!(!off.iter().any(|a| a.contains("cluster.key")));
        assert_eq!(with_auth(&argv, &NodeAuth::Recorded).unwrap(), argv);
        assert!(with_auth(&argv[..1], &NodeAuth::Off).is_err());
        assert!(with_auth(&argv[..2], &NodeAuth::Off).is_err());
    }
}
