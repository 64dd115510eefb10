//! The command line of `cohort`, declared with clap's derive API. The doc
//! comments are the help texts: the first line of a command's comment is
//! its line in `cohort --help`, the whole comment its `cohort CMD --help`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::bench;
use crate::modules::Module;
use crate::up::Transport;

/// Boots Cohort nodes (QEMU guests on a VDE switch) and runs commands in them.
#[derive(Debug, Parser)]
#[command(
    name = "cohort",
    arg_required_else_help = true,
    after_help = "`cohort COMMAND --help` prints a command's help."
)]
pub struct Cli {
    /// State directory (default: $COHORT_STATE, else ./build/cluster)
    #[arg(long, global = true, value_name = "DIR", display_order = 900)]
    pub state: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Boot a cluster of N nodes and wait until every agent answers
    ///
    /// Starts a VDE switch and N QEMU nodes (TCG), each booting the same
    /// kernel and initramfs with cohort.node_id=I cohort.nr_nodes=N and
    /// cohort.peers=169.254.42.1,...,169.254.42.N (node I has address
    /// 169.254.42.(I+1)), and waits until each node's agent answers. On
    /// failure or Ctrl-C everything started is stopped.
    ///
    /// With --modules, then loads the named modules on every node, in
    /// dependency order whatever the order given (kmsg first; a module's
    /// dependencies are loaded too), with insmod from
    /// /lib/modules/cohort/NAME.ko, skipping those already loaded; and
    /// waits until the mesh is complete: every node's kmsg shows every
    /// other node up and, with popcorn, every node's `pcntl nodes` lists
    /// every node. Progress goes to stderr. A module that fails to load
    /// (insmod's error and the end of the node's dmesg are shown) or a
    /// mesh not complete within --modules-timeout fails `up`. The list is
    /// recorded in the state dir so that `cohort start` loads it too.
    ///
    /// kmsg authenticates its connections with a cluster key: `up` writes
    /// a new one from the OS's random number generator to
    /// STATE/cluster.key (64 hex digits, mode 0600) and hands it to every
    /// node through QEMU's fw_cfg (entry opt/org.cohort/cluster.key, which
    /// the node's /etc/rc copies to /etc/cohort/cluster.key). With
    /// --no-auth there is no key and the nodes boot with cohort.auth=0.
    ///
    /// --transport shm also gives the nodes one region of shared memory
    /// with doorbells (QEMU's ivshmem-doorbell device, one MSI-X vector):
    /// `up` starts `cohort ivshmem-server` in its own process group
    /// (STATE/ivshmem.sock, ivshmem.pid, ivshmem.log; `down` stops it),
    /// formatted for N nodes with --shm-size bytes (default: 8 MiB, or the
    /// power of two that gives every ring 64 KiB), and boots every node
    /// with the device and cohort.shm=1. kmsg's shared-memory transport
    /// runs over it (Documentation/shm-transport.rst). The transport is
    /// recorded in STATE/cluster; `cohort start` reconnects a node to the
    /// same server and region.
    #[command(verbatim_doc_comment)]
    Up(UpArgs),

    /// Run a command in a node, stream its output, exit with its status
    ///
    /// Runs CMD with its arguments (each shell-quoted, joined with spaces)
    /// as `/bin/sh -c` in NODE, streams its stdout and stderr, and exits
    /// with its status (128+N if killed by signal N). For shell syntax pass
    /// it through sh: `cohort exec 0 -- sh -c 'dmesg | tail'`.
    ///
    /// Exits 255 if the command timed out, the node died, or the agent
    /// could not be reached; the error names the node and shows the end of
    /// its serial log.
    #[command(
        verbatim_doc_comment,
        override_usage = "cohort exec [--timeout SECS] NODE [--] CMD [ARG]..."
    )]
    Exec(ExecArgs),

    /// List the cluster's distributed processes (`pcntl ps` in a node)
    ///
    /// Runs `pcntl ps` (`pcntl ps -a` with --all) in the first node whose
    /// QEMU runs (the next one if its agent cannot be reached) and prints
    /// its output: every up node's processes that migrated at least once
    /// or belong to a migration group (with --all, every user process),
    /// one line each with its cluster-wide pid (NODE:PID, the node it was
    /// created on and its pid there), its pid and node now, origin, uid,
    /// group, threads, migrations, CPU time, flags and command. Needs
    /// popcorn.ko loaded in the nodes. Exits with `pcntl`'s status, or 255
    /// when no node could run it.
    #[command(verbatim_doc_comment)]
    Ps(PsArgs),

    /// Print gobelins' counters of every node, side by side
    ///
    /// Reads /sys/kernel/debug/gobelins/stats in every node whose QEMU
    /// runs and prints one row per counter (faults by kind, installs,
    /// discards, adoptions, page messages sent and received by kind,
    /// records, pages held, links, synced), one column per node and the
    /// total, then the page messages sent per remote fault. Rows that are
    /// 0 everywhere are left out unless --all. A node that cannot be read
    /// shows `-` (and a line on stderr); exits 1 if no node could be read.
    #[command(verbatim_doc_comment)]
    Stats(StatsArgs),

    /// Print a node's serial console log
    ///
    /// Prints NODE's serial console log (all of it, or its last N lines).
    #[command(verbatim_doc_comment)]
    Logs(LogsArgs),

    /// Show whether each node's QEMU runs and its agent answers
    ///
    /// One line per node: whether its QEMU is running and its agent
    /// answers. Exits 1 if any node is down or no cluster exists.
    #[command(verbatim_doc_comment)]
    Status,

    /// Run the selftests on every node and count TAP results
    ///
    /// Runs /usr/lib/cohort/selftests/run on each node in turn (with
    /// COHORT_NODE and COHORT_NODES set), prints its output prefixed with
    /// `[node N] ` and turns each TAP result into a result of test
    /// `selftest: BINARY: TEST`; a test that runs on several nodes is one
    /// test, which passes only if it passed on every node that ran it. Ends
    /// with `selftests: P passed, F failed, S skipped` over distinct tests.
    /// Results are also appended to the file named by $COHORT_RESULTS (see
    /// `cohort report`), with the place taken from $COHORT_ROUND.
    ///
    /// A binary exiting non-zero without a failing test fails as
    /// `selftest: BINARY`; a test cut off by its binary's end, a node that
    /// dies or times out, fails. After each node, every node's console log
    /// is scanned (as `cohort logscan` does): a problem printed on the
    /// tested node while a test ran fails that test; any other fails
    /// `kernel log: during selftests`. Exits 1 if anything failed.
    #[command(verbatim_doc_comment)]
    Test(TestArgs),

    /// Stop the cluster's processes, remove sockets and pid files
    ///
    /// Stops the processes `cohort up` started in the state dir (SIGTERM,
    /// then SIGKILL after 5 s; a pid is only signalled if its command line
    /// names the state dir), removes sockets and pid files, and keeps the
    /// logs. Succeeds when there is nothing to stop.
    #[command(verbatim_doc_comment)]
    Down,

    /// SIGKILL one node's QEMU (a crash) and wait until it is gone
    ///
    /// Sends SIGKILL to NODE's QEMU (only if its command line names the
    /// state dir), as a crash would look to the other nodes, and waits
    /// until it is gone. The rest of the cluster keeps running;
    /// `cohort start NODE` boots it again.
    #[command(verbatim_doc_comment)]
    Kill(NodeArg),

    /// Boot one node of the running cluster again and wait for its agent
    ///
    /// Boots NODE again, into the running cluster, with the exact QEMU
    /// command line `cohort up` recorded for it (nodeN.qemu), and waits
    /// until its agent answers. The new boot's console is appended to
    /// nodeN.log, after a line that marks it: the file holds every boot.
    /// If the cluster was brought up with --modules, loads the same
    /// modules on NODE and waits until the mesh of the running
    /// nodes is complete again, as `up` does. If the node does not come up
    /// (or its modules fail) in time, its QEMU is stopped and the end of
    /// its log shown.
    ///
    /// --key FILE boots it with the key in FILE instead of the cluster's,
    /// --no-auth without authentication (cohort.auth=0), for this boot
    /// only: such a node is not meant to join, so its modules are loaded
    /// but the mesh is not waited for. The next plain `cohort start` boots
    /// it with the cluster's key again.
    #[command(verbatim_doc_comment)]
    Start(StartArgs),

    /// Benchmarks: `cohort bench kmsg` (kmsg against user-space TCP),
    /// `cohort bench migrate` (migration and remote faults), `cohort bench
    /// auth` (kmsg with and without authentication), `cohort bench
    /// transport` (kmsg over shared memory and over TCP, and user-space TCP)
    #[command(subcommand, verbatim_doc_comment)]
    Bench(BenchCommand),

    /// Attack a node's kmsg as a rogue peer on the switch, for a bounded time
    ///
    /// Plugs into the cluster's VDE switch (with vde_plug) as address
    /// 169.254.42.250, runs a user-space TCP/IP stack (smoltcp), and for
    /// --duration opens connections to NODE's kmsg port only, each a case
    /// of one of --kinds: random bytes; valid kmsg frames built with
    /// rust/proto's encoder, then damaged (bad lengths, types, node ids,
    /// huge declared sizes, truncation, bogus request ids and replies); a
    /// valid Hello claiming a node id followed by valid frames (which the
    /// node reads as the handshake's proof); frames cut short then reset,
    /// closed or trickled a byte at a time; floods of connections held
    /// open; a Hello then wrong, random, reflected, replayed or truncated
    /// proofs, or frames before the proof (auth-proof); frames with tags
    /// that cannot be right (bad-mac).
    ///
    /// With --key FILE (the cluster's, STATE/cluster.key) the fuzzer holds
    /// the key: kind `insider` (which needs --claim, a node id above NODE
    /// that no running node has) completes the handshake as that node and
    /// then sends valid frames with good tags, damaged frames with good
    /// tags (the parser behind the MAC), and frames with bad tags,
    /// replayed or reordered; every bad tag costs the connection, so each
    /// case is a new one. It checks the node's proof and the tags of the
    /// frames the node sends it, and counts any that are wrong.
    ///
    /// Every case and byte comes from --seed (the seed is printed), so a
    /// seed replays the same sequence (what the node answers aside).
    /// Prints progress every --progress seconds and a summary: cases,
    /// connections, how many the node accepted, left unanswered or closed,
    /// and bytes, per kind; handshakes completed and the node's frames
    /// whose tags were checked. Checking the node is the caller's job
    /// (selftests/cluster/21-fuzz.sh). Exits 1 if it cannot plug in, or
    /// if the node sent a wrong proof or tag to a fuzzer holding the key.
    #[command(verbatim_doc_comment)]
    Fuzz(FuzzArgs),

    /// Scan every node's kernel log for BUG, WARNING, lockdep, hung tasks...
    ///
    /// Checks every node's kernel log (its serial console, nodeN.log in the
    /// state dir, read on the host) for BUG, WARNING, Oops, general
    /// protection faults, panics, lockdep reports (circular or recursive
    /// locking, inconsistent lock state, suspicious RCU usage), hung tasks
    /// (`INFO: task ... blocked`), soft and hard lockups, RCU stalls,
    /// sleeping in atomic context, kmemleak, KASAN, UBSAN and debug-objects
    /// reports, list corruption and refcount errors; each hit is shown with
    /// the lines after it. A node whose agent does not answer within 30 s
    /// (an agent serves one command at a time: do not run it beside a long
    /// `cohort exec` on the same node) is a failure, never a clean log.
    /// Exits 1 on any problem.
    #[command(
        verbatim_doc_comment,
        override_usage = "cohort logscan --mark FILE\n       \
                          cohort logscan [--since FILE] [--kmemleak] [--logs-only] [--test NAME]"
    )]
    Logscan(LogscanArgs),

    /// Merge test result files into one count of distinct tests
    ///
    /// Merges result records (lines `pass|fail|skip TAB test TAB place TAB
    /// detail`, as `cohort test`, `cohort logscan --test` and make check
    /// write them) by test name: a test failed if it failed anywhere, passed
    /// if it passed somewhere and failed nowhere, and is skipped only if it
    /// was skipped everywhere. Prints TAP (one line per distinct test, with
    /// where each failure happened and its detail) and ends with
    /// `N passed, N failed, N skipped`. Exits 1 if a test failed, a line is
    /// not a record, or there is no test at all.
    #[command(verbatim_doc_comment)]
    Report(ReportArgs),

    /// Append one test result to $COHORT_RESULTS (for scripts)
    ///
    /// Writes the record `cohort report` reads, escaped as its format
    /// wants: STATUS is pass, fail or skip, DETAIL a reason or a failure's
    /// output (any number of lines). The place is --place, else
    /// $COHORT_ROUND, else "cluster". Does nothing when $COHORT_RESULTS is
    /// not set. Put `--` before the arguments when DETAIL may start with -.
    #[command(verbatim_doc_comment)]
    Record(RecordArgs),

    /// Serve shared memory and doorbells to QEMU's ivshmem-doorbell devices
    ///
    /// QEMU's ivshmem server protocol (docs/specs/ivshmem-spec.rst in
    /// QEMU): listens on the UNIX socket --socket; creates --size bytes
    /// of shared memory (a sealed memfd; a power of two, as it becomes a
    /// PCI BAR) and, with --nodes N, formats it for N Cohort nodes; gives
    /// every client (a QEMU started with `-chardev
    /// socket,path=SOCKET,id=ivshmem -device
    /// ivshmem-doorbell,chardev=ivshmem,vectors=V`) an id, the memory,
    /// one eventfd per vector for itself and for every other client, and
    /// tells the others when a client comes or goes. At most
    /// --max-clients at once; a client that sends anything, or leaves too
    /// many messages unread, is dropped.
    /// Runs in the foreground until SIGTERM or SIGINT, logging to stdout;
    /// --pidfile is written once the socket listens. `cohort up
    /// --transport shm` starts it.
    #[command(verbatim_doc_comment)]
    IvshmemServer(IvshmemServerArgs),
}

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Number of nodes (1-64)
    #[arg(short = 'n', long, value_name = "N")]
    pub nodes: u32,

    /// Kernel image
    #[arg(long, value_name = "PATH", default_value = "build/images/bzImage")]
    pub kernel: PathBuf,

    /// Initramfs image
    #[arg(
        long,
        value_name = "PATH",
        default_value = "build/images/initramfs.cpio.gz"
    )]
    pub initrd: PathBuf,

    /// Memory per node, in MB
    #[arg(long, value_name = "MB", default_value_t = 512)]
    pub mem: u32,

    /// vCPUs per node
    #[arg(long, value_name = "CPUS", default_value_t = 1)]
    pub smp: u32,

    /// How long to wait for all nodes, in seconds
    #[arg(long, value_name = "SECS", default_value_t = 180)]
    pub timeout: u64,

    /// Extra kernel command line arguments
    #[arg(
        long,
        value_name = "ARGS",
        default_value = "",
        hide_default_value = true,
        allow_hyphen_values = true
    )]
    pub append: String,

    /// Modules to load on every node once it is up, e.g. kmsg,popcorn
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub modules: Vec<Module>,

    /// How long loading the modules and completing the mesh may take, in
    /// seconds
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub modules_timeout: u64,

    /// No cluster key: kmsg's connections are not authenticated
    /// (cohort.auth=0 on every node's command line)
    #[arg(long)]
    pub no_auth: bool,

    /// Silence after which a node declares a peer down, in ms
    /// (cohort.heartbeat_timeout_ms on every node's command line). Longer
    /// than the kernel's 2000 because a TCG guest under load stops running
    /// for seconds at a time (measured: up to 16 s)
    #[arg(
        long,
        value_name = "MS",
        default_value_t = crate::up::HEARTBEAT_TIMEOUT_MS,
        value_parser = clap::value_parser!(u32).range(1000..=600_000)
    )]
    pub heartbeat_timeout_ms: u32,

    /// kmsg's transport between the nodes: tcp, or shm (shared memory
    /// with doorbells, and TCP where a peer does not share it)
    #[arg(long, value_name = "T", value_enum, default_value_t = Transport::Tcp)]
    pub transport: Transport,

    /// Shared memory for --transport shm, e.g. 16M (default: 8 MiB, or
    /// more for 64 KiB rings)
    #[arg(long, value_name = "SIZE", value_parser = crate::ivshmem::parse_size)]
    pub shm_size: Option<usize>,
}

#[derive(Debug, Args)]
pub struct IvshmemServerArgs {
    /// The UNIX socket to listen on
    #[arg(long, value_name = "PATH")]
    pub socket: PathBuf,

    /// Bytes of shared memory, a power of two (K, M, G suffixes)
    #[arg(long, value_name = "SIZE", default_value = "8M", value_parser = crate::ivshmem::parse_size)]
    pub size: usize,

    /// Interrupt vectors per client (the devices' vectors=)
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub vectors: u16,

    /// Clients served at once
    #[arg(long, value_name = "N", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub max_clients: u32,

    /// Format the memory for N Cohort nodes (shm_ring's layout)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=64))]
    pub nodes: Option<u32>,

    /// Write the server's pid here once it listens
    #[arg(long, value_name = "PATH")]
    pub pidfile: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// The node to run CMD in
    #[arg(value_name = "NODE")]
    pub node: u32,

    /// Kill the command after SECS (0 = none)
    #[arg(long, value_name = "SECS", default_value_t = 600)]
    pub timeout: u64,

    /// The command and its arguments (after `--`, or after NODE)
    #[arg(
        value_name = "CMD",
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub cmd: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PsArgs {
    /// Every user process, not only the distributed ones
    #[arg(short = 'a', long)]
    pub all: bool,

    /// Kill `pcntl ps` after SECS
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub timeout: u64,
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Also the counters that are 0 on every node
    #[arg(short = 'a', long)]
    pub all: bool,

    /// Give up on a node after SECS
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub timeout: u64,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The node whose log to print
    #[arg(value_name = "NODE")]
    pub node: u32,

    /// Print only the last N lines
    #[arg(long, value_name = "N")]
    pub tail: Option<usize>,
}

#[derive(Debug, Args)]
pub struct TestArgs {
    /// Nodes to test, e.g. 0,2-3 (default: all)
    #[arg(long, value_name = "LIST", value_parser = parse_node_list)]
    pub nodes: Option<NodeList>,

    /// Per-node timeout, in seconds
    #[arg(long, value_name = "SECS", default_value_t = 1200)]
    pub timeout: u64,

    /// Modules (e.g. kmsg,popcorn, with what they need, in dependency
    /// order) loaded on every other node while a node is tested; the tested
    /// node starts without any of Cohort's modules, and its tests run with
    /// COHORT_REQUIRE_PEERS=1 (a missing peer fails)
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub peer_modules: Vec<String>,
}

#[derive(Debug, Args)]
pub struct LogscanArgs {
    /// Write where each node's log ends now to FILE, and stop
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with_all = ["since", "kmemleak", "logs_only", "test"]
    )]
    pub mark: Option<String>,

    /// Scan only what came after the marks in FILE (across restarts of the
    /// node: its console file holds every boot). A log the marks were not
    /// taken of (a new `cohort up` since) is scanned whole.
    #[arg(long, value_name = "FILE")]
    pub since: Option<String>,

    /// First force two kmemleak scans on every node (6 s apart) and check
    /// its report (no-op without CONFIG_DEBUG_KMEMLEAK)
    #[arg(long, conflicts_with = "logs_only")]
    pub kmemleak: bool,

    /// Only read the logs, do not ask the agents (a node down on purpose
    /// is still read: its console is on the host)
    #[arg(long)]
    pub logs_only: bool,

    /// Also append the result as test NAME to $COHORT_RESULTS
    #[arg(long, value_name = "NAME")]
    pub test: Option<String>,
}

#[derive(Debug, Args)]
pub struct RecordArgs {
    /// Where the result comes from (default: $COHORT_ROUND, else "cluster")
    #[arg(long, value_name = "PLACE")]
    pub place: Option<String>,

    /// pass, fail or skip
    #[arg(value_name = "STATUS", value_parser = crate::results::Status::parse)]
    pub status: crate::results::Status,

    /// The test's name, the same wherever it runs
    #[arg(value_name = "TEST")]
    pub test: String,

    /// The reason, or the output that shows a failure
    #[arg(value_name = "DETAIL", default_value = "")]
    pub detail: String,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Result files to merge
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<String>,
}

#[derive(Debug, Args)]
pub struct NodeArg {
    /// The node
    #[arg(value_name = "NODE")]
    pub node: u32,
}

#[derive(Debug, Args)]
pub struct StartArgs {
    /// The node to boot again
    #[arg(value_name = "NODE")]
    pub node: u32,

    /// How long to wait for the agent, in seconds
    #[arg(long, value_name = "SECS", default_value_t = 180)]
    pub timeout: u64,

    /// How long loading the recorded modules and completing the mesh may
    /// take, in seconds
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub modules_timeout: u64,

    /// Boot with the key in FILE (64 hex digits) instead of the cluster's,
    /// this time only
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,

    /// Boot without authentication (cohort.auth=0), this time only
    #[arg(long, conflicts_with = "key")]
    pub no_auth: bool,

    /// Boot with the node configuration in FILE (cohort-node's format:
    /// node_id, peers, port...), handed through fw_cfg as
    /// opt/org.cohort/cohort.conf, which the node's /etc/rc applies, and
    /// with no cohort.node_id/nr_nodes/peers/port on the kernel command
    /// line; this time only
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// kmsg's round trips and throughput against user-space TCP
    ///
    /// Measures, on the same two nodes in one run, kmsg's round trip
    /// (debugfs `ping`, the link thread, and `hreq`, a request through the
    /// hub as popcorn makes them; 8-byte payload) and throughput (debugfs
    /// `stream`) against a user-space TCP ping-pong of 8-byte messages and
    /// a TCP stream of the same size (tcpbench). Loads kmsg on both nodes
    /// if needed and waits until they see each other up. Each measurement
    /// runs R times, interleaved (the three round trips in turn, then tcp
    /// and kmsg throughput) after one warm-up; the medians are compared:
    /// round trips kmsg/tcp (target <= 1.2) and `throughput kmsg/tcp`
    /// (target >= 0.8), each marked PASS or MISS.
    ///
    /// Each run appends one JSON record to FILE (JSON Lines): date, kernel
    /// release, commit, host, every measure with its unit and repetitions,
    /// and the ratios with their targets and PASS or MISS. Exits 1 when a
    /// measurement could not be run; a missed target is printed and
    /// recorded, not an exit status.
    #[command(verbatim_doc_comment)]
    Kmsg(BenchKmsgArgs),

    /// Migration latencies, remote faults and end-to-end migrations
    ///
    /// Runs migbench on A against B in one run (loads kmsg and popcorn on
    /// both if needed): kmsg's round trip (ping and through the hub) and
    /// throughput, the first migration of a process with 1 MiB and with
    /// 64 MiB resident (a task is created on B), migrations to the shadow
    /// on B and back to the shadow on A (R times each, medians), remote
    /// page faults, each as a ratio to the round trip; and end to end, for
    /// 1 MiB and 64 MiB, a migration followed by the process reading its
    /// whole working set on B, against bytes / kmsg throughput + one round
    /// trip. Each run appends one JSON record to FILE, as `bench kmsg`
    /// does; exits 1 when a measurement could not be run.
    #[command(verbatim_doc_comment)]
    Migrate(BenchMigrateArgs),

    /// kmsg's round trips and throughput with and without authentication
    ///
    /// On the same two nodes in one run, of a cluster that authenticates:
    /// kmsg's round trip (debugfs `ping` and `hreq`, 8-byte payload) and
    /// throughput (debugfs `stream`) with authentication (every frame
    /// tagged with ChaCha20-Poly1305) and without. Between the two, kmsg is
    /// unloaded on A and B, the hub's parameter
    /// /sys/module/cohort/parameters/auth set, and kmsg loaded again (any
    /// other node keeps authenticating and refuses A and B meanwhile); the
    /// modes alternate from one repetition to the next, after one warm-up,
    /// and A and B end with authentication on. The medians are compared:
    /// round trips with/without (target <= 1.1), each marked PASS or MISS,
    /// and throughput with/without. Each run appends one JSON record to
    /// FILE, as `bench kmsg` does; exits 1 when a measurement could not be
    /// run.
    #[command(verbatim_doc_comment)]
    Auth(BenchAuthArgs),

    /// kmsg over shared memory, kmsg over TCP and user-space TCP, in one run
    ///
    /// On two nodes of a cluster booted with `cohort up --transport shm`
    /// (kmsg reaching the peer over shared memory), in one run, three
    /// modes: kmsg over shared memory, kmsg over TCP, and user-space TCP
    /// (tcpbench). Each measures round trips of 8-byte messages (kmsg:
    /// debugfs `ping`, its link thread, and `hreq`, through the hub; user
    /// space: a ping-pong), request/reply throughput for 8-byte and 4 KiB
    /// messages (kmsg: debugfs `echo` through the hub; user space: a
    /// ping-pong of that size; SIZE x COUNT bytes over the time taken), and
    /// throughput of a one-way stream of 1 MiB messages (debugfs `stream`,
    /// tcpbench `stream`). Between the kmsg modes, kmsg is unloaded on A
    /// and B, /sys/module/cohort/parameters/shm set to 1 or 0 (with
    /// .../auth at the run's authentication), kmsg loaded again, and the
    /// peers' transport read back from debugfs `shm`. The kmsg modes
    /// alternate (one reload per repetition) and user space takes each
    /// place in turn, after one warm-up per mode; A and B end over shared
    /// memory with the cluster's authentication. The medians are compared:
    /// round trips shm/TCP (target <= 0.5), throughput shm/TCP (target at
    /// least 2), round trips kmsg over TCP / user-space TCP (target <= 1.0),
    /// each PASS or MISS; and, without targets, throughput kmsg over TCP /
    /// user space and shm / user space. Each run appends one JSON record to
    /// FILE, as `bench kmsg` does; exits 1 when a measurement could not be
    /// run.
    #[command(verbatim_doc_comment)]
    Transport(BenchTransportArgs),

    /// Plots: DIR/NAME.svg from each DIR/NAME.jsonl, history across runs
    ///
    /// Draws the history of each benchmark's ratios, one panel per group,
    /// one point per run (the file's lines in order), targets as dashed
    /// lines.
    Plot(BenchPlotArgs),
}

/// Options of `cohort bench plot`.
#[derive(Debug, Args)]
pub struct BenchPlotArgs {
    /// Directory of the JSON Lines records; the plots go beside them
    #[arg(long, value_name = "DIR", default_value = "build/bench")]
    pub dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct FuzzArgs {
    /// The node attacked
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub node: u32,

    /// How long to attack, in seconds
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub duration: u64,

    /// Seed of the generator (default: from the clock; printed)
    #[arg(long, value_name = "SEED")]
    pub seed: Option<u64>,

    /// Kinds of cases, drawn at random among these
    #[arg(
        long,
        value_name = "KIND,...",
        value_delimiter = ',',
        default_value = "random,mutated,hello,truncated,flood,auth-proof,bad-mac"
    )]
    pub kinds: Vec<crate::fuzz::Kind>,

    /// Node id the frames claim to come from (default: any id, including
    /// real peers' and ids outside the cluster)
    #[arg(long, value_name = "ID")]
    pub claim: Option<u16>,

    /// The cluster key (STATE/cluster.key): complete handshakes as the
    /// --claim node (kind `insider`)
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,

    /// kmsg's port on the node
    #[arg(long, value_name = "P", default_value_t = 7777)]
    pub port: u16,

    /// Connections per flood case
    #[arg(long, value_name = "N", default_value_t = 32)]
    pub flood: usize,

    /// Seconds between progress lines
    #[arg(long, value_name = "SECS", default_value_t = 5)]
    pub progress: u64,
}

#[derive(Debug, Args)]
pub struct BenchKmsgArgs {
    /// The two nodes, A sends
    #[arg(long, value_name = "A,B", value_parser = bench::parse_pair, default_value = "0,1")]
    pub nodes: (u32, u32),

    /// Round trips per RTT measurement
    #[arg(long, value_name = "N", default_value_t = 2000)]
    pub count: u64,

    /// Bytes per throughput measurement (default 33554432, 32 MiB)
    #[arg(long, value_name = "B", default_value_t = 32 << 20, hide_default_value = true)]
    pub bytes: u64,

    /// Measurements of each kind
    #[arg(long, value_name = "R", default_value_t = 5)]
    pub reps: usize,

    /// tcpbench server port on B
    #[arg(long, value_name = "P", default_value_t = 7070)]
    pub port: u16,

    /// Results file
    #[arg(long, value_name = "FILE", default_value = "build/bench/kmsg.jsonl")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct BenchAuthArgs {
    /// The two nodes, A sends
    #[arg(long, value_name = "A,B", value_parser = bench::parse_pair, default_value = "0,1")]
    pub nodes: (u32, u32),

    /// Round trips per RTT measurement
    #[arg(long, value_name = "N", default_value_t = 2000)]
    pub count: u64,

    /// Bytes per throughput measurement (default 33554432, 32 MiB)
    #[arg(long, value_name = "B", default_value_t = 32 << 20, hide_default_value = true)]
    pub bytes: u64,

    /// Measurements of each kind in each mode
    #[arg(long, value_name = "R", default_value_t = 5)]
    pub reps: usize,

    /// Results file
    #[arg(long, value_name = "FILE", default_value = "build/bench/auth.jsonl")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct BenchTransportArgs {
    /// The two nodes, A sends
    #[arg(long, value_name = "A,B", value_parser = bench::parse_pair, default_value = "0,1")]
    pub nodes: (u32, u32),

    /// Round trips per RTT measurement
    #[arg(long, value_name = "N", default_value_t = 2000)]
    pub count: u64,

    /// Round trips per 8-byte throughput measurement
    #[arg(long, value_name = "N", default_value_t = 2000)]
    pub echo_count: u64,

    /// Round trips per 4 KiB throughput measurement
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub page_count: u64,

    /// Bytes per 1 MiB-message stream (default 33554432, 32 MiB)
    #[arg(long, value_name = "B", default_value_t = 32 << 20, hide_default_value = true)]
    pub bytes: u64,

    /// Measurements of each kind in each mode
    #[arg(long, value_name = "R", default_value_t = 5)]
    pub reps: usize,

    /// tcpbench server port on B
    #[arg(long, value_name = "P", default_value_t = 7070)]
    pub port: u16,

    /// Measure kmsg without authentication (the cluster's is put back at
    /// the end); its ratios are named *_noauth
    #[arg(long)]
    pub no_auth: bool,

    /// Shared-memory receivers poll this long after their last bytes
    /// (cohort.shm_poll_us on both nodes during the run, then put back);
    /// with more than 0 the ratios are named *_poll
    #[arg(long, value_name = "US", default_value_t = 0)]
    pub shm_poll_us: u32,

    /// Results file
    #[arg(
        long,
        value_name = "FILE",
        default_value = "build/bench/transport.jsonl"
    )]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct BenchMigrateArgs {
    /// The two nodes: migbench runs on A and migrates to B
    #[arg(long, value_name = "A,B", value_parser = bench::parse_pair, default_value = "0,1")]
    pub nodes: (u32, u32),

    /// Repetitions of each migration
    #[arg(long, value_name = "R", default_value_t = 10)]
    pub reps: usize,

    /// Results file
    #[arg(long, value_name = "FILE", default_value = "build/bench/migrate.jsonl")]
    pub out: PathBuf,
}

/// A list of node numbers, sorted and without duplicates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeList(pub Vec<u32>);

/// Parse a node list such as `0,2,4-6` into sorted unique node numbers.
pub fn parse_node_list(s: &str) -> Result<NodeList, String> {
    let bad = || format!("invalid node list {s:?} (expected e.g. 0,2-3)");
    let mut out = vec![];
    for part in s.split(',') {
        let part = part.trim();
        if let Some((a, b)) = part.split_once('-') {
            let a: u32 = a.trim().parse().map_err(|_| bad())?;
            let b: u32 = b.trim().parse().map_err(|_| bad())?;
            if a > b {
                return Err(bad());
            }
            out.extend(a..=b);
        } else {
            out.push(part.parse().map_err(|_| bad())?);
        }
    }
    out.sort_unstable();
    out.dedup();
    Ok(NodeList(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::error::ErrorKind;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("cohort").chain(args.iter().copied()))
    }

    fn err(args: &[&str]) -> ErrorKind {
        parse(args).expect_err("should not parse").kind()
    }

    #[test]
    fn definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn up_values_and_defaults() {
        let c = parse(&["up", "-n", "3", "--timeout=9"]).unwrap();
        let Command::Up(a) = c.command else {
            panic!("not up")
        };
        assert_eq!(a.nodes, 3);
        assert_eq!(a.timeout, 9);
        assert_eq!(a.kernel, PathBuf::from("build/images/bzImage"));
        assert_eq!(a.initrd, PathBuf::from("build/images/initramfs.cpio.gz"));
        assert_eq!((a.mem, a.smp), (512, 1));
        assert_eq!(a.append, "");
        assert!(a.modules.is_empty());
        assert_eq!(a.modules_timeout, 60);
        assert!(!a.no_auth);
        assert_eq!(a.transport, Transport::Tcp);
        assert_eq!(a.shm_size, None);
        assert_eq!(c.state, None);
    }

    #[test]
    fn transport_and_ivshmem_server() {
        let c = parse(&["up", "-n", "2", "--transport", "shm", "--shm-size", "16M"]).unwrap();
        let Command::Up(a) = c.command else {
            panic!("not up")
        };
        assert_eq!((a.transport, a.shm_size), (Transport::Shm, Some(16 << 20)));
        assert_eq!(
            err(&["up", "-n", "2", "--transport", "udp"]),
            ErrorKind::InvalidValue
        );
        assert_eq!(
            err(&["up", "-n", "2", "--shm-size", "lots"]),
            ErrorKind::ValueValidation
        );
        let c = parse(&["ivshmem-server", "--socket", "/s/ivshmem.sock"]).unwrap();
        let Command::IvshmemServer(a) = c.command else {
            panic!("not ivshmem-server")
        };
        assert_eq!(a.socket, PathBuf::from("/s/ivshmem.sock"));
        assert_eq!((a.size, a.vectors, a.max_clients), (8 << 20, 1, 64));
        assert_eq!((a.nodes, a.pidfile), (None, None));
        let c = parse(&[
            "ivshmem-server",
            "--socket",
            "/x",
            "--size",
            "1G",
            "--vectors",
            "4",
            "--nodes",
            "3",
            "--max-clients",
            "7",
            "--pidfile",
            "/p",
        ])
        .unwrap();
        let Command::IvshmemServer(a) = c.command else {
            panic!("not ivshmem-server")
        };
        assert_eq!((a.size, a.vectors, a.max_clients), (1 << 30, 4, 7));
        assert_eq!((a.nodes, a.pidfile), (Some(3), Some(PathBuf::from("/p"))));
        assert_eq!(err(&["ivshmem-server"]), ErrorKind::MissingRequiredArgument);
        assert_eq!(
            err(&["ivshmem-server", "--socket", "/x", "--vectors", "0"]),
            ErrorKind::ValueValidation
        );
        assert_eq!(
            err(&["ivshmem-server", "--socket", "/x", "--nodes", "65"]),
            ErrorKind::ValueValidation
        );
    }

    #[test]
    fn attached_short_value() {
        let Command::Up(a) = parse(&["up", "-n4"]).unwrap().command else {
            panic!("not up")
        };
        assert_eq!(a.nodes, 4);
        let Command::Up(a) = parse(&["up", "--nodes=5", "--append", "-s quiet"])
            .unwrap()
            .command
        else {
            panic!("not up")
        };
        assert_eq!(a.nodes, 5);
        assert_eq!(a.append, "-s quiet");
    }

    #[test]
    fn up_modules() {
        let c = parse(&[
            "up",
            "-n",
            "2",
            "--modules",
            "popcorn,kmsg",
            "--modules-timeout",
            "5",
        ])
        .unwrap();
        let Command::Up(a) = c.command else {
            panic!("not up")
        };
        assert_eq!(a.modules, [Module::Popcorn, Module::Kmsg]);
        assert_eq!(a.modules_timeout, 5);
        let e = parse(&["up", "-n", "2", "--modules", "kmsg,bogus"]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidValue);
        assert_eq!(e.exit_code(), 2);
        assert_eq!(
            err(&["up", "-n", "2", "--modules", ""]),
            ErrorKind::InvalidValue
        );
        assert_eq!(
            err(&["up", "-n", "2", "--modules"]),
            ErrorKind::InvalidValue
        );
    }

    #[test]
    fn state_is_global() {
        for args in [
            &["--state", "/s", "status"][..],
            &["status", "--state", "/s"],
            &["--state=/s", "down"],
            &["exec", "--state", "/s", "1", "--", "true"],
        ] {
            assert_eq!(
                parse(args).unwrap().state.as_deref(),
                Some("/s"),
                "{args:?}"
            );
        }
    }

    #[test]
    fn double_dash_ends_options() {
        let c = parse(&["exec", "1", "--timeout", "5", "--", "ls", "-l", "--help"]).unwrap();
        let Command::Exec(a) = c.command else {
            panic!("not exec")
        };
        assert_eq!((a.node, a.timeout), (1, 5));
        assert_eq!(a.cmd, ["ls", "-l", "--help"]);
    }

    #[test]
    fn command_after_node() {
        let Command::Exec(a) = parse(&["exec", "1", "echo", "-n", "hi"]).unwrap().command else {
            panic!("not exec")
        };
        assert_eq!(a.node, 1);
        assert_eq!(a.timeout, 600);
        assert_eq!(a.cmd, ["echo", "-n", "hi"]);
    }

    #[test]
    fn ps_options() {
        let Command::Ps(a) = parse(&["ps"]).unwrap().command else {
            panic!("not ps")
        };
        assert!(!a.all);
        assert_eq!(a.timeout, 60);
        for args in [&["ps", "-a"][..], &["ps", "--all"]] {
            let Command::Ps(a) = parse(args).unwrap().command else {
                panic!("not ps")
            };
            assert!(a.all, "{args:?}");
        }
        assert_eq!(err(&["ps", "1"]), ErrorKind::UnknownArgument);
    }

    #[test]
    fn test_and_logs_options() {
        let Command::Test(a) = parse(&["test", "--nodes", "2,0-1"]).unwrap().command else {
            panic!("not test")
        };
        assert_eq!(a.nodes, Some(NodeList(vec![0, 1, 2])));
        assert_eq!(a.timeout, 1200);
        assert!(a.peer_modules.is_empty());
        let c = parse(&["test", "--peer-modules", "kmsg,popcorn"]).unwrap();
        let Command::Test(a) = c.command else {
            panic!("not test")
        };
        assert_eq!(a.peer_modules, ["kmsg", "popcorn"]);
        let Command::Logs(a) = parse(&["logs", "3", "--tail", "7"]).unwrap().command else {
            panic!("not logs")
        };
        assert_eq!((a.node, a.tail), (3, Some(7)));
        let Command::Start(a) = parse(&["start", "1"]).unwrap().command else {
            panic!("not start")
        };
        assert_eq!((a.node, a.timeout, a.modules_timeout), (1, 180, 60));
        assert_eq!((a.key, a.no_auth), (None, false));
        let Command::Start(a) = parse(&["start", "2", "--key", "/k"]).unwrap().command else {
            panic!("not start")
        };
        assert_eq!((a.node, a.key), (2, Some(PathBuf::from("/k"))));
        let Command::Start(a) = parse(&["start", "2", "--no-auth"]).unwrap().command else {
            panic!("not start")
        };
        assert!(a.no_auth);
        assert_eq!(
            err(&["start", "2", "--no-auth", "--key", "/k"]),
            ErrorKind::ArgumentConflict
        );
    }

    #[test]
    fn auth_options() {
        let Command::Up(a) = parse(&["up", "-n", "2"]).unwrap().command else {
            panic!("not up")
        };
        assert!(!a.no_auth);
        let Command::Up(a) = parse(&["up", "-n", "2", "--no-auth"]).unwrap().command else {
            panic!("not up")
        };
        assert!(a.no_auth);
        let Command::Fuzz(a) = parse(&["fuzz"]).unwrap().command else {
            panic!("not fuzz")
        };
        assert_eq!(a.key, None);
        assert!(a.kinds.contains(&crate::fuzz::Kind::AuthProof));
        assert!(a.kinds.contains(&crate::fuzz::Kind::BadMac));
        assert!(!a.kinds.contains(&crate::fuzz::Kind::Insider));
        let c = parse(&[
            "fuzz",
            "--key",
            "/s/cluster.key",
            "--claim",
            "2",
            "--kinds",
            "insider,bad-mac",
        ])
        .unwrap();
        let Command::Fuzz(a) = c.command else {
            panic!("not fuzz")
        };
        assert_eq!(a.key, Some(PathBuf::from("/s/cluster.key")));
        assert_eq!(
            a.kinds,
            [crate::fuzz::Kind::Insider, crate::fuzz::Kind::BadMac]
        );
    }

    #[test]
    fn logscan_and_report() {
        let c = parse(&["logscan", "--since", "m", "--kmemleak", "--test", "t"]).unwrap();
        let Command::Logscan(a) = c.command else {
            panic!("not logscan")
        };
        assert_eq!(a.since.as_deref(), Some("m"));
        assert_eq!(a.test.as_deref(), Some("t"));
        assert!(a.kmemleak && !a.logs_only && a.mark.is_none());
        assert_eq!(
            err(&["logscan", "--kmemleak=yes"]),
            ErrorKind::TooManyValues
        );
        let Command::Report(a) = parse(&["report", "a", "b"]).unwrap().command else {
            panic!("not report")
        };
        assert_eq!(a.files, ["a", "b"]);
        assert_eq!(err(&["report"]), ErrorKind::MissingRequiredArgument);
    }

    #[test]
    fn bench_options() {
        let c = parse(&["bench", "kmsg", "--nodes", "2,0", "--reps", "3"]).unwrap();
        let Command::Bench(BenchCommand::Kmsg(a)) = c.command else {
            panic!("not bench kmsg")
        };
        assert_eq!(a.nodes, (2, 0));
        assert_eq!(
            (a.count, a.bytes, a.reps, a.port),
            (2000, 32 << 20, 3, 7070)
        );
        assert_eq!(a.out, PathBuf::from("build/bench/kmsg.jsonl"));
        let c = parse(&["bench", "auth", "--reps", "2"]).unwrap();
        let Command::Bench(BenchCommand::Auth(a)) = c.command else {
            panic!("not bench auth")
        };
        assert_eq!(
            (a.nodes, a.count, a.bytes, a.reps),
            ((0, 1), 2000, 32 << 20, 2)
        );
        assert_eq!(a.out, PathBuf::from("build/bench/auth.jsonl"));
        let c = parse(&["bench", "migrate"]).unwrap();
        let Command::Bench(BenchCommand::Migrate(a)) = c.command else {
            panic!("not bench migrate")
        };
        assert_eq!((a.nodes, a.reps), ((0, 1), 10));
        assert_eq!(a.out, PathBuf::from("build/bench/migrate.jsonl"));
        assert_eq!(
            err(&["bench", "kmsg", "--nodes", "1,1"]),
            ErrorKind::ValueValidation
        );
        assert_eq!(err(&["bench", "other"]), ErrorKind::InvalidSubcommand);
        assert_eq!(
            err(&["bench"]),
            ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
        );
    }

    #[test]
    fn help_and_usage_errors() {
        assert_eq!(err(&["--help"]), ErrorKind::DisplayHelp);
        assert_eq!(err(&["up", "--help"]), ErrorKind::DisplayHelp);
        assert_eq!(parse(&["exec", "-h"]).unwrap_err().exit_code(), 0);
        let none = parse(&[]).unwrap_err();
        assert_eq!(
            none.kind(),
            ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
        );
        assert_eq!(none.exit_code(), 2);
        for (args, kind) in [
            (&["up"][..], ErrorKind::MissingRequiredArgument),
            (&["up", "-n", "2", "--bogus"], ErrorKind::UnknownArgument),
            (&["up", "-n", "2", "-z"], ErrorKind::UnknownArgument),
            (&["up", "-n", "2", "--timeout"], ErrorKind::InvalidValue),
            (
                &["up", "-n", "2", "--timeout", "soon"],
                ErrorKind::ValueValidation,
            ),
            (&["up", "-n", "2", "extra"], ErrorKind::UnknownArgument),
            (&["exec", "1"], ErrorKind::MissingRequiredArgument),
            (&["exec", "x", "--", "ls"], ErrorKind::ValueValidation),
            (&["logs"], ErrorKind::MissingRequiredArgument),
            (&["logs", "-1"], ErrorKind::UnknownArgument),
            (&["kill", "1", "2"], ErrorKind::UnknownArgument),
            (&["status", "x"], ErrorKind::UnknownArgument),
            (&["test", "--nodes", "2-1"], ErrorKind::ValueValidation),
            (&["frobnicate"], ErrorKind::InvalidSubcommand),
        ] {
            let e = parse(args).expect_err("should not parse");
            assert_eq!(e.kind(), kind, "{args:?}");
            assert_eq!(e.exit_code(), 2, "{args:?}");
        }
    }

    #[test]
    fn long_help_says_what_each_command_does() {
        let mut cmd = Cli::command();
        let help = |cmd: &mut clap::Command, path: &[&str]| {
            let mut c = cmd.clone();
            for p in path {
                c = c.find_subcommand(p).expect(p).clone();
            }
            c.render_long_help().to_string()
        };
        let up = help(&mut cmd, &["up"]);
        assert!(up.contains("cohort.peers=169.254.42.1"), "{up}");
        assert!(up.contains("[default: 180]"), "{up}");
        assert!(up.contains("--modules-timeout"), "{up}");
        let exec = help(&mut cmd, &["exec"]);
        assert!(
            exec.contains("Exits 255 if the command timed out"),
            "{exec}"
        );
        let kmsg = help(&mut cmd, &["bench", "kmsg"]);
        assert!(kmsg.contains("target <= 1.2"), "{kmsg}");
        assert!(kmsg.contains("[default: 0,1]"), "{kmsg}");
        let top = help(&mut cmd, &[]);
        assert!(top.contains("SIGKILL one node's QEMU"), "{top}");
    }

    #[test]
    fn record_takes_a_detail_that_starts_with_a_dash() {
        let c = parse(&["record", "--place", "p", "--", "fail", "t", "-x\ny"]).unwrap();
        let Command::Record(a) = c.command else {
            panic!("not record")
        };
        assert_eq!(a.status, crate::results::Status::Fail);
        assert_eq!((a.place.as_deref(), a.test.as_str()), (Some("p"), "t"));
        assert_eq!(a.detail, "-x\ny");
        assert!(parse(&["record", "maybe", "t"]).is_err());
        let c = parse(&["record", "pass", "t"]).unwrap();
        let Command::Record(a) = c.command else {
            panic!("not record")
        };
        assert_eq!((a.place, a.detail.as_str()), (None, ""));
    }

    #[test]
    fn node_lists() {
        let l = |s| parse_node_list(s).map(|l| l.0);
        assert_eq!(l("0"), Ok(vec![0]));
        assert_eq!(l("3,1,1"), Ok(vec![1, 3]));
        assert_eq!(l("0-2,5"), Ok(vec![0, 1, 2, 5]));
        assert!(l("").is_err());
        assert!(l("2-1").is_err());
        assert!(l("a").is_err());
        assert!(l("1,").is_err());
    }
}
