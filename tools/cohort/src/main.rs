//! cohort: boot a cluster of QEMU nodes, run commands in them through the
//! guest agent, run the selftests, and tear it all down.

mod agent;
mod args;
mod bench;
mod frame;
mod shell;
mod state;
mod sys;
mod tap;
mod up;

use std::io::{self, ErrorKind, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use args::{flag, val, Opt, Parsed};
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

const MAIN_HELP: &str = "\
usage: cohort [--state DIR] COMMAND [ARGS]

Boots Cohort nodes (QEMU guests on a VDE switch) and runs commands in them.

commands:
  up       boot a cluster of N nodes and wait until every agent answers
  exec     run a command in a node, stream its output, exit with its status
  logs     print a node's serial console log
  status   show whether each node's QEMU runs and its agent answers
  test     run the selftests on every node and count TAP results
  down     stop the cluster's processes, remove sockets and pid files
  kill     SIGKILL one node's QEMU (a crash) and wait until it is gone
  start    boot one node of the running cluster again and wait for its agent
  bench    benchmarks: `cohort bench kmsg` (kmsg against user-space TCP),
           `cohort bench migrate` (migration and remote faults)

global options:
  --state DIR   state directory (default: $COHORT_STATE, else ./build/cluster)
  -h, --help    this help; `cohort COMMAND --help` for a command's help
";

const UP_HELP: &str = "\
usage: cohort up -n N [--kernel PATH] [--initrd PATH] [--mem MB] [--smp CPUS]
                 [--timeout SECS] [--append ARGS]

Starts a VDE switch and N QEMU nodes (TCG), each booting the same kernel and
initramfs with cohort.node_id=I cohort.nr_nodes=N and
cohort.peers=169.254.42.1,...,169.254.42.N (node I has address
169.254.42.(I+1)), and waits until each node's agent answers. On failure or Ctrl-C everything started is stopped.

  -n, --nodes N     number of nodes (1-64)
  --kernel PATH     default build/images/bzImage
  --initrd PATH     default build/images/initramfs.cpio.gz
  --mem MB          memory per node (default 512)
  --smp CPUS        vCPUs per node (default 1)
  --timeout SECS    how long to wait for all nodes (default 180)
  --append ARGS     extra kernel command line arguments
";

const EXEC_HELP: &str = "\
usage: cohort exec NODE [--timeout SECS] -- CMD [ARG...]

Runs CMD with its arguments (each shell-quoted, joined with spaces) as
`/bin/sh -c` in NODE, streams its stdout and stderr, and exits with its
status (128+N if killed by signal N). For shell syntax pass it through sh:
`cohort exec 0 -- sh -c 'dmesg | tail'`.

  --timeout SECS    kill the command after SECS (default 600; 0 = none)

Exits 255 if the command timed out, the node died, or the agent could not be
reached; the error names the node and shows the end of its serial log.
";

const LOGS_HELP: &str = "\
usage: cohort logs NODE [--tail N]

Prints NODE's serial console log (all of it, or its last N lines).
";

const STATUS_HELP: &str = "\
usage: cohort status

One line per node: whether its QEMU is running and its agent answers.
Exits 1 if any node is down or no cluster exists.
";

const DOWN_HELP: &str = "\
usage: cohort down

Stops the processes `cohort up` started in the state dir (SIGTERM, then
SIGKILL after 5 s; a pid is only signalled if its command line names the
state dir), removes sockets and pid files, and keeps the logs.
Succeeds when there is nothing to stop.
";

const KILL_HELP: &str = "\
usage: cohort kill NODE

Sends SIGKILL to NODE's QEMU (only if its command line names the state
dir), as a crash would look to the other nodes, and waits until it is gone.
The rest of the cluster keeps running; `cohort start NODE` boots it again.
";

const START_HELP: &str = "\
usage: cohort start NODE [--timeout SECS]

Boots NODE again, into the running cluster, with the exact QEMU command
line `cohort up` recorded for it (nodeN.qemu), and waits until its agent
answers. The previous console log is kept as nodeN.log.old. If the node
does not come up in time, its QEMU is stopped and the end of its log shown.

  --timeout SECS    how long to wait for the agent (default 180)
";

const BENCH_HELP: &str = "\
usage: cohort bench kmsg [--nodes A,B] [--count N] [--bytes B] [--reps R]
                         [--port P] [--out FILE]
       cohort bench migrate [--nodes A,B] [--reps R] [--out FILE]
       cohort bench plot [--dir DIR]

Each run appends one JSON record to FILE (JSON Lines; default
build/bench/kmsg.jsonl, build/bench/migrate.jsonl): date, kernel release,
commit, host, every measure with its unit and repetitions, and the ratios
with their targets and PASS or MISS. Exits 1 when a measurement could not
be run; a missed target is printed and recorded, not an exit status.
`plot` draws DIR/NAME.svg from each DIR/NAME.jsonl (default build/bench).

migrate: runs migbench on A against B in one run (loads kmsg and popcorn
on both if needed): kmsg's round trip (ping and through the hub) and
throughput, the first migration of a process with 1 MiB and with 64 MiB
resident (a task is created on B), migrations to the shadow on B and back
to the shadow on A (R times each, medians), remote page faults, each as a
ratio to the round trip; and end to end, for 1 MiB and 64 MiB, a
migration followed by the process reading its whole working set on B,
against bytes / kmsg throughput + one round trip.

kmsg:
Measures, on the same two nodes in one run, kmsg's round trip (debugfs
`ping`, the link thread, and `hreq`, a request through the hub as popcorn
makes them; 8-byte payload) and throughput (debugfs `stream`) against a
user-space TCP ping-pong of 8-byte messages and a TCP stream of the same
size (tcpbench). Loads kmsg on both nodes if needed and waits until they
see each other up. Each measurement runs R times, interleaved (the three
round trips in turn, then tcp and kmsg throughput) after one warm-up; the
medians are compared: round trips kmsg/tcp (target <= 1.2) and
`throughput kmsg/tcp` (target >= 0.8), each marked PASS or MISS.

  --nodes A,B   the two nodes, A sends (default 0,1)
  --count N     round trips per RTT measurement (default 2000)
  --bytes B     bytes per throughput measurement (default 32 MiB)
  --reps R      measurements of each kind (default 5)
  --port P      tcpbench server port on B (default 7070)
  --out FILE    default build/bench/kmsg.jsonl
";

const TEST_HELP: &str = "\
usage: cohort test [--nodes LIST] [--timeout SECS]

Runs /usr/lib/cohort/selftests/run on each node in turn (with COHORT_NODE
and COHORT_NODES set), prints its output prefixed with `[node N] `, counts
TAP results and ends with `selftests: P passed, F failed, S skipped`.
A binary exiting non-zero without a failing test, a node that dies or times
out, each count as one failure. Exits 1 if anything failed.

  --nodes LIST      nodes to test, e.g. 0,2-3 (default: all)
  --timeout SECS    per-node timeout (default 1200)
";

/// Parse a subcommand's arguments; `--state` is accepted everywhere.
fn parse_cmd(
    args: &[String],
    opts: &[Opt],
    max_positional: Option<usize>,
    help: &str,
    state_opt: &mut Option<String>,
) -> Result<Option<Parsed>, Fail> {
    let mut all: Vec<Opt> = vec![flag("help", Some('h')), val("state", None)];
    all.extend(opts.iter().map(|o| Opt {
        long: o.long,
        short: o.short,
        value: o.value,
    }));
    let p = args::parse(args, &all, max_positional).map_err(|e| Fail::usage(&e))?;
    if p.flag("help") {
        print!("{help}");
        return Ok(None);
    }
    if let Some(s) = p.get("state") {
        *state_opt = Some(s.to_string());
    }
    Ok(Some(p))
}

fn get_or<T: std::str::FromStr>(p: &Parsed, long: &str, default: T) -> Result<T, Fail>
where
    T::Err: std::fmt::Display,
{
    p.get_or(long, default).map_err(|e| Fail::usage(&e))
}

fn node_arg(p: &Parsed) -> Result<u32, Fail> {
    match p.positional.first() {
        None => Err(Fail::usage("missing NODE")),
        Some(s) => s
            .parse()
            .map_err(|_| Fail::usage(&format!("NODE must be a node number, not {s:?}"))),
    }
}

fn no_extra_args(p: &Parsed, max: usize) -> Result<(), Fail> {
    if p.positional.len() > max || !p.rest.is_empty() {
        let extra = p.positional.iter().skip(max).chain(p.rest.iter());
        let extra: Vec<&String> = extra.collect();
        return Err(Fail::usage(&format!("unexpected argument {:?}", extra[0])));
    }
    Ok(())
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

const SELFTEST_RUNNER: &str = "/usr/lib/cohort/selftests/run";

fn cmd_test(state: &State, list: Option<Vec<u32>>, timeout_s: u64) -> Result<(), Fail> {
    let Some(info) = state.cluster() else {
        return Err(Fail::new(
            1,
            format!(
                "no cluster in {} (run `cohort up` first)",
                state.dir.display()
            ),
        ));
    };
    let nodes = list.unwrap_or_else(|| (0..info.nodes).collect());
    if let Some(bad) = nodes.iter().find(|&&n| n >= info.nodes) {
        return Err(Fail::usage(&format!(
            "node {bad} does not exist (the cluster has {} nodes)",
            info.nodes
        )));
    }
    let mut totals = tap::Totals::default();
    for node in nodes {
        let mut tally = tap::Tally::new();
        let prefix = format!("[node {node}] ");
        let Some(pid) = state.node_pid(node) else {
            tally.fail();
            println!("{prefix}QEMU is not running: counted as one failure");
            eprintln!("{}", log_excerpt(state, node, 30));
            totals.add(tally.totals);
            continue;
        };
        let cmd = format!(
            "COHORT_NODE={node} COHORT_NODES={} {SELFTEST_RUNNER}",
            info.nodes
        );
        let mut splitter = tap::LineSplitter::new();
        let stdout = io::stdout();
        let emit = |line: &str, tally: &mut tap::Tally| -> io::Result<()> {
            let kind = tally.line(line);
            let mut out = stdout.lock();
            writeln!(out, "{prefix}{line}")?;
            if let tap::Line::Crash { name, code } = kind {
                writeln!(
                    out,
                    "{prefix}{name} exited with status {code} without reporting a failure: counted as one failure"
                )?;
            }
            out.flush()
        };
        let result = agent::run(state, node, pid, &cmd, timeout_s, &mut |data: &[u8]| {
            for line in splitter.push(data) {
                emit(&line, &mut tally)?;
            }
            Ok(())
        });
        if let Some(line) = splitter.finish() {
            let _ = emit(&line, &mut tally);
        }
        match result {
            Ok(0) => {}
            Ok(status) => {
                if tally.totals.failed == 0 {
                    tally.fail();
                    println!("{prefix}{SELFTEST_RUNNER} exited with status {status}: counted as one failure");
                }
            }
            Err(e) => {
                tally.fail();
                println!("{prefix}{e}: counted as one failure");
                eprintln!("node {node}: {e}\n{}", log_excerpt(state, node, 30));
            }
        }
        let t = tally.totals;
        println!(
            "{prefix}{} passed, {} failed, {} skipped",
            t.passed, t.failed, t.skipped
        );
        totals.add(t);
    }
    println!(
        "selftests: {} passed, {} failed, {} skipped",
        totals.passed, totals.failed, totals.skipped
    );
    if totals.failed > 0 {
        return Err(Fail::new(
            1,
            format!("{} selftest failure(s)", totals.failed),
        ));
    }
    Ok(())
}

/// Run the command line; returns the exit status.
fn run(argv: &[String]) -> Result<i32, Fail> {
    // Global options come before the command.
    let mut state_opt: Option<String> = None;
    let mut i = 0;
    while i < argv.len() {
        match argv[i].as_str() {
            "-h" | "--help" => {
                print!("{MAIN_HELP}");
                return Ok(0);
            }
            "--state" => {
                let v = argv
                    .get(i + 1)
                    .ok_or_else(|| Fail::usage("option --state needs a value"))?;
                state_opt = Some(v.clone());
                i += 2;
            }
            s if s.starts_with("--state=") => {
                state_opt = Some(s["--state=".len()..].to_string());
                i += 1;
            }
            s if s.starts_with('-') => return Err(Fail::usage(&format!("unknown option {s}"))),
            _ => break,
        }
    }
    let Some(cmd) = argv.get(i) else {
        eprint!("{MAIN_HELP}");
        return Ok(2);
    };
    let rest = &argv[i + 1..];
    let so = &mut state_opt;
    match cmd.as_str() {
        "up" => {
            let opts = [
                val("nodes", Some('n')),
                val("kernel", None),
                val("initrd", None),
                val("mem", None),
                val("smp", None),
                val("timeout", None),
                val("append", None),
            ];
            let Some(p) = parse_cmd(rest, &opts, Some(0), UP_HELP, so)? else {
                return Ok(0);
            };
            no_extra_args(&p, 0)?;
            let nodes = match p.get("nodes") {
                Some(_) => get_or(&p, "nodes", 0u32)?,
                None => return Err(Fail::usage("missing -n N")),
            };
            let cfg = up::UpConfig {
                nodes,
                kernel: PathBuf::from(p.get("kernel").unwrap_or("build/images/bzImage")),
                initrd: PathBuf::from(p.get("initrd").unwrap_or("build/images/initramfs.cpio.gz")),
                mem_mb: get_or(&p, "mem", 512u32)?,
                smp: get_or(&p, "smp", 1u32)?,
                timeout_s: get_or(&p, "timeout", 180u64)?,
                append: p.get("append").unwrap_or("").to_string(),
            };
            let mut state = State::resolve(so.as_deref()).map_err(|e| Fail::new(1, e))?;
            up::up(&mut state, cfg)?;
            Ok(0)
        }
        "exec" => {
            let opts = [val("timeout", None)];
            let Some(p) = parse_cmd(rest, &opts, Some(1), EXEC_HELP, so)? else {
                return Ok(0);
            };
            let node = node_arg(&p)?;
            if p.rest.is_empty() {
                return Err(Fail::usage("missing command (cohort exec NODE -- CMD...)"));
            }
            let timeout = get_or(&p, "timeout", 600u64)?;
            let state = State::resolve(so.as_deref()).map_err(|e| Fail::new(1, e))?;
            cmd_exec(&state, node, timeout, &shell::join(&p.rest))
        }
        "logs" => {
            let Some(p) = parse_cmd(rest, &[val("tail", None)], Some(1), LOGS_HELP, so)? else {
                return Ok(0);
            };
            let node = node_arg(&p)?;
            no_extra_args(&p, 1)?;
            let tail = match p.get("tail") {
                Some(_) => Some(get_or(&p, "tail", 0usize)?),
                None => None,
            };
            let state = State::resolve(so.as_deref()).map_err(|e| Fail::new(1, e))?;
            cmd_logs(&state, node, tail)?;
            Ok(0)
        }
        "status" | "down" => {
            let help = if cmd == "status" {
                STATUS_HELP
            } else {
                DOWN_HELP
            };
            let Some(p) = parse_cmd(rest, &[], Some(0), help, so)? else {
                return Ok(0);
            };
            no_extra_args(&p, 0)?;
            let state = State::resolve(so.as_deref()).map_err(|e| Fail::new(1, e))?;
            if cmd == "status" {
                cmd_status(&state)?;
            } else {
                cmd_down(&state)?;
            }
            Ok(0)
        }
        "test" => {
            let opts = [val("nodes", None), val("timeout", None)];
            let Some(p) = parse_cmd(rest, &opts, Some(0), TEST_HELP, so)? else {
                return Ok(0);
            };
            no_extra_args(&p, 0)?;
            let list = match p.get("nodes") {
                Some(l) => Some(args::parse_node_list(l).map_err(|e| Fail::usage(&e))?),
                None => None,
            };
            let timeout = get_or(&p, "timeout", 1200u64)?;
            let state = State::resolve(so.as_deref()).map_err(|e| Fail::new(1, e))?;
            cmd_test(&state, list, timeout)?;
            Ok(0)
        }
        "kill" => {
            let Some(p) = parse_cmd(rest, &[], Some(1), KILL_HELP, so)? else {
                return Ok(0);
            };
            let node = node_arg(&p)?;
            no_extra_args(&p, 1)?;
            let state = State::resolve(so.as_deref()).map_err(|e| Fail::new(1, e))?;
            match state.cluster() {
                None => {
                    return Err(Fail::new(
                        1,
                        format!("no cluster in {}", state.dir.display()),
                    ))
                }
                Some(c) if node >= c.nodes => {
                    return Err(Fail::new(
                        1,
                        format!(
                            "node {node} does not exist (the cluster has {} nodes)",
                            c.nodes
                        ),
                    ))
                }
                Some(_) => {}
            }
            let pid = state
                .kill_node(node, Duration::from_secs(10))
                .map_err(|e| Fail::new(1, e))?;
            println!("node {node}: qemu pid {pid} killed");
            Ok(0)
        }
        "start" => {
            let Some(p) = parse_cmd(rest, &[val("timeout", None)], Some(1), START_HELP, so)? else {
                return Ok(0);
            };
            let node = node_arg(&p)?;
            no_extra_args(&p, 1)?;
            let timeout = get_or(&p, "timeout", 180u64)?;
            let state = State::resolve(so.as_deref()).map_err(|e| Fail::new(1, e))?;
            up::start_node(&state, node, timeout)?;
            Ok(0)
        }
        "bench" => {
            if rest.first().is_some_and(|w| w == "plot") {
                return bench::plot_main(&rest[1..]);
            }
            let opts = [
                val("nodes", None),
                val("count", None),
                val("bytes", None),
                val("reps", None),
                val("port", None),
                val("out", None),
            ];
            let Some(p) = parse_cmd(rest, &opts, Some(1), BENCH_HELP, so)? else {
                return Ok(0);
            };
            no_extra_args(&p, 1)?;
            let which = match p.positional.first().map(String::as_str) {
                Some(w @ ("kmsg" | "migrate")) => w.to_string(),
                Some(other) => {
                    return Err(Fail::usage(&format!(
                        "unknown benchmark {other:?} (known: kmsg, migrate)"
                    )))
                }
                None => {
                    return Err(Fail::usage(
                        "missing benchmark name (cohort bench kmsg|migrate)",
                    ))
                }
            };
            let (a, b) = match p.get("nodes") {
                None => (0, 1),
                Some(l) => bench::parse_pair(l).map_err(|e| Fail::usage(&e))?,
            };
            if which == "migrate" {
                let state = State::resolve(so.as_deref()).map_err(|e| Fail::new(1, e))?;
                let reps = get_or(&p, "reps", 10usize)?;
                let out = PathBuf::from(p.get("out").unwrap_or("build/bench/migrate.jsonl"));
                bench::migrate(&state, a, b, reps, &out)?;
                return Ok(0);
            }
            let cfg = bench::BenchConfig {
                a,
                b,
                count: get_or(&p, "count", 2000u64)?,
                bytes: get_or(&p, "bytes", 32u64 << 20)?,
                reps: get_or(&p, "reps", 5usize)?,
                port: get_or(&p, "port", 7070u16)?,
                out: PathBuf::from(p.get("out").unwrap_or("build/bench/kmsg.jsonl")),
            };
            let state = State::resolve(so.as_deref()).map_err(|e| Fail::new(1, e))?;
            bench::kmsg(&state, &cfg)?;
            Ok(0)
        }
        other => Err(Fail::usage(&format!("unknown command {other:?}"))),
    }
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let code = match run(&argv) {
        Ok(c) => c,
        Err(f) => {
            eprintln!("cohort: {}", f.msg);
            f.code
        }
    };
    ExitCode::from(code.clamp(0, 255) as u8)
}
