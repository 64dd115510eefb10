//! cohort: boot a cluster of QEMU nodes, run commands in them through the
//! guest agent, run the selftests, and tear it all down.

mod agent;
mod bench;
mod checks;
mod cli;
mod frame;
mod fuzz;
mod ivshmem;
mod key;
mod logscan;
mod modules;
mod results;
mod selftest;
mod state;
mod stats;
mod sys;
mod tap;
mod up;

use std::io::{self, ErrorKind, Write};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

use cli::{BenchCommand, Cli, Command};
use state::{log_excerpt, State};

/// Exit status for failures of `exec` itself (timeout, node died...).
const EXIT_EXEC_FAILED: i32 = 255;

/// An error to print, and the exit status to leave with.
#[derive(Debug)]
pub struct Fail {
    pub code: i32,
    pub msg: String,
}

impl Fail {
    pub fn new(code: i32, msg: String) -> Fail {
        Fail { code, msg }
    }

    pub fn usage(msg: &str) -> Fail {
        Fail::new(2, format!("{msg} (see --help)"))
    }
}

/// The cluster recorded in the state dir, or exit status 1 saying there
/// is none.
pub fn require_cluster(state: &State) -> Result<state::ClusterInfo, Fail> {
    state.cluster().ok_or_else(|| {
        Fail::new(
            1,
            format!(
                "no cluster in {} (run `cohort up` first)",
                state.dir.display()
            ),
        )
    })
}

/// Check that a cluster exists and `node` is one of its nodes; return
/// the pid of its QEMU.
pub fn running_node(state: &State, node: u32) -> Result<u32, Fail> {
    let Some(info) = state.cluster() else {
        return Err(Fail::new(
            EXIT_EXEC_FAILED,
            format!(
                "no cluster in {} (run `cohort up` first)",
                state.dir.display()
            ),
        ));
    };
    if node >= info.nodes {
        return Err(Fail::new(
            EXIT_EXEC_FAILED,
            format!(
                "node {node} does not exist (the cluster has {} nodes)",
                info.nodes
            ),
        ));
    }
    state.node_pid(node).ok_or_else(|| {
        Fail::new(
            EXIT_EXEC_FAILED,
            format!(
                "node {node}: QEMU is not running\n{}",
                log_excerpt(state, node, 30)
            ),
        )
    })
}

/// Run `cmd` in `node` and collect its output (stdout and stderr).
pub fn capture(state: &State, node: u32, cmd: &str, timeout_s: u64) -> Result<(i32, String), Fail> {
    let pid = running_node(state, node)?;
    let mut out = vec![];
    let status = agent::run(state, node, pid, cmd, timeout_s, &mut |d: &[u8]| {
        out.extend_from_slice(d);
        Ok(())
    })
    .map_err(|e| {
        Fail::new(
            EXIT_EXEC_FAILED,
            format!("node {node}: {e}\n{}", log_excerpt(state, node, 30)),
        )
    })?;
    Ok((status, String::from_utf8_lossy(&out).into_owned()))
}

fn cmd_exec(state: &State, node: u32, timeout_s: u64, cmd: &str) -> Result<i32, Fail> {
    let pid = running_node(state, node)?;
    let stdout = io::stdout();
    let mut sink = |data: &[u8]| -> io::Result<()> {
        let mut out = stdout.lock();
        out.write_all(data)?;
        out.flush()
    };
    match agent::run(state, node, pid, cmd, timeout_s, &mut sink) {
        Ok(status) => Ok(status),
        Err(agent::RunError::Sink(e)) if e.kind() == ErrorKind::BrokenPipe => Ok(141),
        Err(agent::RunError::Timeout(s)) => Err(Fail::new(
            EXIT_EXEC_FAILED,
            format!(
                "node {node}: command timed out after {s} s (killed)\n{}",
                log_excerpt(state, node, 30)
            ),
        )),
        Err(e) => Err(Fail::new(
            EXIT_EXEC_FAILED,
            format!("node {node}: {e}\n{}", log_excerpt(state, node, 30)),
        )),
    }
}

/// The `pcntl ps` command line that `cohort ps` runs in a node.
fn ps_command(all: bool) -> &'static str {
    if all {
        "pcntl ps -a"
    } else {
        "pcntl ps"
    }
}

/// `pcntl ps` in the first node that can run it; its exit status.
fn cmd_ps(state: &State, all: bool, timeout_s: u64) -> Result<i32, Fail> {
    let info = require_cluster(state)?;
    let mut last = None;
    for node in (0..info.nodes).filter(|&n| state.node_pid(n).is_some()) {
        match cmd_exec(state, node, timeout_s, ps_command(all)) {
            Ok(status) => return Ok(status),
            // The agent could not be reached or the node died: try the next.
            Err(f) => {
                eprintln!("cohort: ps: {}", f.msg.lines().next().unwrap_or(""));
                last = Some(f);
            }
        }
    }
    Err(last.unwrap_or_else(|| {
        Fail::new(
            EXIT_EXEC_FAILED,
            format!("no node of the cluster in {} runs", state.dir.display()),
        )
    }))
}

fn cmd_logs(state: &State, node: u32, tail: Option<usize>) -> Result<(), Fail> {
    let path = state.node_file(node, "log");
    let data = match tail {
        Some(n) => state::tail_lines(&path, n)
            .map(|l| {
                let mut s = l.join("\n");
                if !s.is_empty() {
                    s.push('\n');
                }
                s.into_bytes()
            })
            .map_err(|e| Fail::new(1, format!("node {node}: {e}")))?,
        None => std::fs::read(&path).map_err(|e| {
            Fail::new(
                1,
                format!("node {node}: cannot read {}: {e}", path.display()),
            )
        })?,
    };
    let mut out = io::stdout().lock();
    match out.write_all(&data).and_then(|_| out.flush()) {
        Err(e) if e.kind() != ErrorKind::BrokenPipe => Err(Fail::new(1, format!("stdout: {e}"))),
        _ => Ok(()),
    }
}

fn cmd_status(state: &State) -> Result<(), Fail> {
    let nodes = state.known_nodes();
    if nodes.is_empty() {
        return Err(Fail::new(
            1,
            format!("no cluster in {}", state.dir.display()),
        ));
    }
    let mut healthy = true;
    for n in nodes {
        let Some(pid) = state.node_pid(n) else {
            println!("node {n}: qemu not running, agent not answering");
            healthy = false;
            continue;
        };
        let agent = match agent::ping_once(&state.node_file(n, "agent"), Duration::from_secs(3)) {
            Ok(id) if id == n.to_string() => "agent answering".to_string(),
            Ok(id) => {
                healthy = false;
                format!("agent answering as node {id}")
            }
            Err(e) => {
                healthy = false;
                format!("agent not answering ({e}; busy with a command, or down)")
            }
        };
        println!("node {n}: qemu pid {pid} running, {agent}");
    }
    match state.switch_pid() {
        Some(pid) => println!("switch: vde_switch pid {pid} running"),
        None => {
            println!("switch: vde_switch not running");
            healthy = false;
        }
    }
    if state
        .cluster()
        .is_some_and(|c| c.transport == up::Transport::Shm)
    {
        match state.ivshmem_pid() {
            Some(pid) => println!("shared memory: ivshmem server pid {pid} running"),
            None => {
                println!("shared memory: ivshmem server not running");
                healthy = false;
            }
        }
    }
    if healthy {
        Ok(())
    } else {
        Err(Fail::new(1, "cluster is not healthy".into()))
    }
}

fn cmd_down(state: &State) -> Result<(), Fail> {
    if state.live_processes().is_empty() {
        state.remove_runtime_files();
        println!("no cluster running in {}", state.dir.display());
        return Ok(());
    }
    for m in state.stop_all() {
        println!("{m}");
    }
    let left = state.live_processes();
    if !left.is_empty() {
        return Err(Fail::new(1, "some processes could not be stopped".into()));
    }
    println!("cluster in {} stopped (logs kept)", state.dir.display());
    Ok(())
}

/// Run the parsed command line; returns the exit status.
fn run(cli: Cli) -> Result<i32, Fail> {
    let state = || State::resolve(cli.state.as_deref()).map_err(|e| Fail::new(1, e));
    match cli.command {
        Command::Up(a) => {
            let cfg = up::UpConfig {
                nodes: a.nodes,
                kernel: a.kernel,
                initrd: a.initrd,
                mem_mb: a.mem,
                smp: a.smp,
                timeout_s: a.timeout,
                append: a.append,
                modules: a.modules,
                modules_timeout_s: a.modules_timeout,
                auth: !a.no_auth,
                heartbeat_timeout_ms: a.heartbeat_timeout_ms,
                transport: a.transport,
                shm_size: a.shm_size,
            };
            up::up(&mut state()?, cfg)?;
            Ok(0)
        }
        Command::Exec(a) => {
            let cmd = shlex::try_join(a.cmd.iter().map(String::as_str))
                .map_err(|e| Fail::usage(&format!("cannot quote the command: {e}")))?;
            cmd_exec(&state()?, a.node, a.timeout, &cmd)
        }
        Command::Ps(a) => cmd_ps(&state()?, a.all, a.timeout),
        Command::Stats(a) => {
            stats::run(&state()?, a.all, a.timeout)?;
            Ok(0)
        }
        Command::Logs(a) => {
            cmd_logs(&state()?, a.node, a.tail)?;
            Ok(0)
        }
        Command::Status => {
            cmd_status(&state()?)?;
            Ok(0)
        }
        Command::Down => {
            cmd_down(&state()?)?;
            Ok(0)
        }
        Command::Test(a) => {
            selftest::run(&state()?, a.nodes.map(|l| l.0), a.timeout, &a.peer_modules)?;
            Ok(0)
        }
        Command::Logscan(a) => checks::logscan(&state()?, &a),
        Command::Report(a) => checks::report(&a.files),
        Command::Record(a) => {
            let place = a.place.unwrap_or_else(|| results::place(None));
            let r = results::Record::new(a.status, &a.test, &place, &a.detail);
            results::append_to_env_file(&[r])
                .map_err(|e| Fail::new(1, format!("cannot write $COHORT_RESULTS: {e}")))?;
            Ok(0)
        }
        Command::Kill(a) => {
            let node = a.node;
            let state = state()?;
            let c = require_cluster(&state)?;
            if node >= c.nodes {
                return Err(Fail::new(
                    1,
                    format!(
                        "node {node} does not exist (the cluster has {} nodes)",
                        c.nodes
                    ),
                ));
            }
            let pid = state
                .kill_node(node, Duration::from_secs(10))
                .map_err(|e| Fail::new(1, e))?;
            println!("node {node}: qemu pid {pid} killed");
            Ok(0)
        }
        Command::Start(a) => {
            let auth = match (a.key, a.no_auth) {
                (Some(file), _) => up::NodeAuth::Key(file),
                (None, true) => up::NodeAuth::Off,
                (None, false) => up::NodeAuth::Recorded,
            };
            up::start_node(
                &state()?,
                a.node,
                a.timeout,
                a.modules_timeout,
                &auth,
                a.config.as_deref(),
            )?;
            Ok(0)
        }
        Command::Fuzz(a) => {
            let seed = a.seed.unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(1)
            });
            let cfg = fuzz::FuzzConfig {
                node: a.node,
                duration: Duration::from_secs(a.duration),
                seed,
                kinds: a.kinds,
                claim: a.claim,
                key: a.key,
                port: a.port,
                flood: a.flood,
                progress: Duration::from_secs(a.progress.max(1)),
            };
            fuzz::run(&state()?, &cfg)?;
            Ok(0)
        }
        Command::IvshmemServer(a) => {
            let cfg = ivshmem::ServerConfig {
                socket: a.socket,
                size: a.size,
                vectors: a.vectors,
                max_clients: a.max_clients as usize,
                nodes: a.nodes.map(|n| n as usize),
            };
            ivshmem::run(&cfg, a.pidfile.as_deref())?;
            Ok(0)
        }
        Command::Bench(BenchCommand::Plot(a)) => bench::plot(&a.dir),
        Command::Bench(BenchCommand::Migrate(a)) => {
            let (a_node, b_node) = a.nodes;
            bench::migrate(&state()?, a_node, b_node, a.reps, &a.out)?;
            Ok(0)
        }
        Command::Bench(BenchCommand::Auth(a)) => {
            let cfg = bench::BenchConfig {
                a: a.nodes.0,
                b: a.nodes.1,
                count: a.count,
                bytes: a.bytes,
                reps: a.reps,
                port: 0,
                out: a.out,
            };
            bench::auth::run(&state()?, &cfg)?;
            Ok(0)
        }
        Command::Bench(BenchCommand::Transport(a)) => {
            let cfg = bench::transport::TransportConfig {
                base: bench::BenchConfig {
                    a: a.nodes.0,
                    b: a.nodes.1,
                    count: a.count,
                    bytes: a.bytes,
                    reps: a.reps,
                    port: a.port,
                    out: a.out,
                },
                echo_count: a.echo_count,
                page_count: a.page_count,
                no_auth: a.no_auth,
                shm_poll_us: a.shm_poll_us,
            };
            bench::transport::run(&state()?, &cfg)?;
            Ok(0)
        }
        Command::Bench(BenchCommand::Kmsg(a)) => {
            let cfg = bench::BenchConfig {
                a: a.nodes.0,
                b: a.nodes.1,
                count: a.count,
                bytes: a.bytes,
                reps: a.reps,
                port: a.port,
                out: a.out,
            };
            bench::kmsg(&state()?, &cfg)?;
            Ok(0)
        }
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help goes to stdout with status 0; usage errors (and help
            // shown for a missing command) to stderr with status 2.
            let _ = e.print();
            return ExitCode::from(e.exit_code().clamp(0, 255) as u8);
        }
    };
    let code = match run(cli) {
        Ok(c) => c,
        Err(f) => {
            eprintln!("cohort: {}", f.msg);
            f.code
        }
    };
    ExitCode::from(code.clamp(0, 255) as u8)
}
