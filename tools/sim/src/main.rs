// SPDX-License-Identifier: GPL-2.0
//! `cohort-sim`: runs seeded simulations of Cohort's protocols.
//!
//! ```text
//! cohort-sim [--seeds A..B] [--nodes A..B] [--mode lamport|cohort|both]
//!            [--jobs J] [--stats [--runs R]] [--verbose]
//! cohort-sim --containers [--seeds A..B] [--nodes A..B] [--keep-going]
//! cohort-sim --members [--seeds A..B] [--nodes A..B] [--keep-going] [--strict]
//! ```
//!
//! `--containers` runs the container simulator instead (container layers
//! alone, with releases, node deaths and rejoins; see `containers`).
//! `--members` runs the membership simulator (hellos, byes, boots and
//! joins, shared containers and SysV keys, under deaths, reloads and
//! transports that drop; see `members`).
//!
//! Seed `s` runs on `A + s % (B - A + 1)` nodes (default 2..16) with the
//! workload `Config::random(s)`, in each selected mode. The first failure
//! prints its trace and the exit status is 1. `--stats` instead measures
//! messages per lock acquisition and per fault for N = 2, 4, 8, 16.

use cohort_sim::containers;
use cohort_sim::failure::{Failure, Seeded};
use cohort_sim::members;
use cohort_sim::stats::Stats;
use cohort_sim::world::{self, Config, Mode};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

struct Args {
    seeds: (u64, u64),
    nodes: (usize, usize),
    modes: Vec<Mode>,
    jobs: usize,
    stats: bool,
    runs: u64,
    verbose: bool,
    containers: bool,
    members: bool,
    strict: bool,
    keep_going: bool,
}

fn parse_range<T: std::str::FromStr + Copy>(s: &str) -> Option<(T, T)> {
    match s.split_once("..") {
        Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
        None => {
            let v = s.parse().ok()?;
            Some((v, v))
        }
    }
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: cohort-sim [--seeds A..B] [--nodes A..B] [--mode lamport|cohort|both] \
         [--jobs J] [--stats [--runs R]] [--verbose]\n\
         \n  --seeds A..B   seeds A (inclusive) to B (exclusive); default 0..1000\
         \n  --nodes A..B   node counts, inclusive; seed s uses A + s % (B-A+1); default 2..16\
         \n  --mode M       lamport (thesis), cohort (improved) or both (default)\
         \n  --jobs J       worker threads; default: available cores\
         \n  --stats        print messages per acquisition and per fault for N = 2,4,8,16\
         \n  --runs R       runs per table cell with --stats; default 200\
         \n  --containers   the container simulator (releases, node deaths, rejoins)\
         \n  --members      the membership simulator (hellos, shared containers, SysV keys)\
         \n  --strict       with --members: fail on the known issues too\
         \n  --keep-going   with --containers or --members: count the failing seeds instead of stopping"
    );
    ExitCode::from(2)
}

fn parse() -> Option<Args> {
    let mut args = Args {
        seeds: (0, 1000),
        nodes: (2, 16),
        modes: vec![Mode::Lamport, Mode::Cohort],
        jobs: std::thread::available_parallelism().map_or(1, |n| n.get()),
        stats: false,
        runs: 200,
        verbose: false,
        containers: false,
        members: false,
        strict: false,
        keep_going: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--seeds" => args.seeds = parse_range(&it.next()?)?,
            "--nodes" => args.nodes = parse_range(&it.next()?)?,
            "--mode" => {
                args.modes = match it.next()?.as_str() {
                    "lamport" => vec![Mode::Lamport],
                    "cohort" => vec![Mode::Cohort],
                    "both" => vec![Mode::Lamport, Mode::Cohort],
                    _ => return None,
                }
            }
            "--jobs" => args.jobs = it.next()?.parse().ok()?,
            "--runs" => args.runs = it.next()?.parse().ok()?,
            "--stats" => args.stats = true,
            "--verbose" => args.verbose = true,
            "--containers" => args.containers = true,
            "--members" => args.members = true,
            "--strict" => args.strict = true,
            "--keep-going" => args.keep_going = true,
            _ => return None,
        }
    }
    if args.nodes.0 < 2
        || args.nodes.1 > 64
        || args.nodes.0 > args.nodes.1
        || args.jobs == 0
        || (args.containers && args.members)
        || (args.strict && !args.members)
    {
        return None;
    }
    Some(args)
}

fn sweep(args: &Args) -> ExitCode {
    let start = Instant::now();
    let next = Arc::new(AtomicU64::new(args.seeds.0));
    let failed = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let span = (args.nodes.1 - args.nodes.0 + 1) as u64;
    let mut workers = Vec::new();
    for _ in 0..args.jobs {
        let (next, failed, done) = (next.clone(), failed.clone(), done.clone());
        let (end, lo, modes, verbose) =
            (args.seeds.1, args.nodes.0, args.modes.clone(), args.verbose);
        workers.push(std::thread::spawn(move || {
            let mut total = Stats::default();
            loop {
                let seed = next.fetch_add(1, Ordering::Relaxed);
                if seed >= end || failed.load(Ordering::Relaxed) {
                    return total;
                }
                let nodes = lo + (seed % span) as usize;
                for &mode in &modes {
                    match world::run(Config::random(seed, nodes, mode)) {
                        Ok(stats) => total.add(&stats),
                        Err(failure) => {
                            if !failed.swap(true, Ordering::Relaxed) {
                                eprintln!("{failure}");
                                eprintln!(
                                    "replay: cohort-sim --seeds {seed}..{} --nodes {nodes} --mode {}",
                                    seed + 1,
                                    if mode == Mode::Lamport { "lamport" } else { "cohort" }
                                );
                            }
                            return total;
                        }
                    }
                }
                let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                if verbose && n % 10_000 == 0 {
                    eprintln!("{n} seeds ok");
                }
            }
        }));
    }
    let mut total = Stats::default();
    for w in workers {
        if let Ok(stats) = w.join() {
            total.add(&stats);
        }
    }
    if failed.load(Ordering::Relaxed) {
        return ExitCode::FAILURE;
    }
    println!(
        "{} seeds ({} runs) passed in {:.1?}: {} reads and {} writes checked, {} faults, \
         {} layout changes, {} migrations, {} flushes",
        done.load(Ordering::Relaxed),
        total.runs,
        start.elapsed(),
        total.reads,
        total.writes,
        total.faults,
        total.layout_ops,
        total.migrations,
        total.flushes
    );
    ExitCode::SUCCESS
}

/// The fixed workload of the message-count table.
fn stats_config(seed: u64, nodes: usize, hosts: usize, mode: Mode) -> Config {
    Config {
        seed,
        nodes,
        mode,
        threads: 4,
        max_threads: 4,
        ops_per_thread: 40,
        pages: 16,
        max_delay: 10,
        hosts,
        layout_percent: 4,
        migrate_percent: 6,
        flush: false,
    }
}

fn stats(args: &Args) -> ExitCode {
    println!(
        "{:>3} {:>6} {:>8} | {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "N",
        "hosts",
        "mode",
        "lock/acq",
        "join/acq",
        "fetch",
        "page/cf",
        "inval/cf",
        "msgs/flt",
        "5(N-1)"
    );
    for nodes in [2usize, 4, 8, 16] {
        let hosts_list: &[usize] = if nodes == 2 { &[2] } else { &[nodes, 2] };
        for &hosts in hosts_list {
            for &mode in &args.modes {
                let mut total = Stats::default();
                for seed in 0..args.runs {
                    match world::run(stats_config(seed, nodes, hosts, mode)) {
                        Ok(s) => total.add(&s),
                        Err(failure) => {
                            eprintln!("{failure}");
                            return ExitCode::FAILURE;
                        }
                    }
                }
                println!(
                    "{:>3} {:>6} {:>8} | {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
                    nodes,
                    hosts,
                    if mode == Mode::Lamport {
                        "lamport"
                    } else {
                        "cohort"
                    },
                    total.per_acquisition(),
                    total.joins_per_acquisition(),
                    total.per_fetch(),
                    total.per_container_fault(),
                    total.invalidations_per_container_fault(),
                    total.per_fault(),
                    5 * (nodes - 1)
                );
            }
        }
    }
    ExitCode::SUCCESS
}

/// One run of a simulator: seed and node count to counts or failure.
type Run<S, C> = fn(u64, usize) -> Result<S, Box<Failure<C>>>;

/// Runs `run` (a simulator: seed, node count) over the seeds and node
/// counts of `args` on `args.jobs` threads, and adds the counts up with
/// `add`. The first failure is printed with the command that replays it
/// (`cohort-sim {flags} --seeds ... --nodes ...`); with `--keep-going`
/// every failing seed is (with its trace, `--verbose`). `None` when any
/// seed failed.
fn sweep_seeds<S, C>(
    args: &Args,
    flags: &'static str,
    run: Run<S, C>,
    add: fn(&mut S, &S),
) -> Option<S>
where
    S: Default + Send + 'static,
    C: Seeded + 'static,
{
    let span = (args.nodes.1 - args.nodes.0 + 1) as u64;
    let next = Arc::new(AtomicU64::new(args.seeds.0));
    let failed = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for _ in 0..args.jobs {
        let (next, failed, failures) = (next.clone(), failed.clone(), failures.clone());
        let (end, lo, keep_going, verbose) =
            (args.seeds.1, args.nodes.0, args.keep_going, args.verbose);
        workers.push(std::thread::spawn(move || {
            let mut total = S::default();
            loop {
                let seed = next.fetch_add(1, Ordering::Relaxed);
                if seed >= end || failed.load(Ordering::Relaxed) {
                    return total;
                }
                let nodes = lo + (seed % span) as usize;
                match run(seed, nodes) {
                    Ok(stats) => add(&mut total, &stats),
                    Err(failure) if keep_going => {
                        failures.fetch_add(1, Ordering::Relaxed);
                        eprintln!("seed {seed} ({nodes} nodes): {}", failure.message);
                        if verbose {
                            eprintln!("{failure}");
                        }
                    }
                    Err(failure) => {
                        if !failed.swap(true, Ordering::Relaxed) {
                            eprintln!("{failure}");
                            eprintln!(
                                "replay: cohort-sim {flags} --seeds {seed}..{} --nodes {nodes}",
                                seed + 1
                            );
                        }
                        return total;
                    }
                }
            }
        }));
    }
    let mut total = S::default();
    for w in workers {
        if let Ok(stats) = w.join() {
            add(&mut total, &stats);
        }
    }
    let failures = failures.load(Ordering::Relaxed);
    if failures > 0 {
        eprintln!("{failures} failing seeds");
    }
    if failed.load(Ordering::Relaxed) || failures > 0 {
        return None;
    }
    Some(total)
}

/// The container simulator over the seeds and node counts of `args`.
fn sweep_containers(args: &Args) -> ExitCode {
    let start = Instant::now();
    let run = |seed, nodes| containers::run(containers::Config::random(seed, nodes));
    let Some(total) = sweep_seeds(args, "--containers", run, containers::Stats::add) else {
        return ExitCode::FAILURE;
    };
    println!(
        "{} container runs passed in {:.1?}: {} reads and {} writes checked, {} faults, \
         {} releases, {} deaths, {} rejoins ({} containers made after, {} remote accesses to \
         them), {} failed accesses, {} messages ({} with a page)",
        total.runs,
        start.elapsed(),
        total.reads,
        total.writes,
        total.faults,
        total.releases,
        total.deaths,
        total.rejoins,
        total.made,
        total.made_accesses,
        total.failed,
        total.messages,
        total.data_messages
    );
    ExitCode::SUCCESS
}

/// The membership simulator over the seeds and node counts of `args`.
fn sweep_members(args: &Args) -> ExitCode {
    let start = Instant::now();
    let (flags, run): (_, fn(u64, usize) -> _) = if args.strict {
        ("--members --strict", |seed, nodes| {
            members::run(members::Config {
                strict: true,
                ..members::Config::random(seed, nodes)
            })
        })
    } else {
        ("--members", |seed, nodes| {
            members::run(members::Config::random(seed, nodes))
        })
    };
    let Some(total) = sweep_seeds(args, flags, run, members::Stats::add) else {
        return ExitCode::FAILURE;
    };
    println!(
        "{} membership runs passed in {:.1?}: {} boots, {} joins, {} restarts counted, \
         {} fresh starts ({} gave way), {} crashes, {} unloads ({} refused: pinned), \
         {} transport drops, {} runs with views apart (documented); {} shared containers, \
         {} attaches ({} failed), {} destroyed; keys: {} found, {} created ({} again where \
         allowed), {} not found, {} failed, {} handovers; {} messages; known issues (checks \
         waived): {} stale marker deaths, {} messages lost to undecided nodes, {} held back \
         for good, {} destroys after an idle overtaken or given in use, {} homeless releases, \
         {} deaths unseen, \
         {} unfreed after a drop",
        total.runs,
        start.elapsed(),
        total.boots,
        total.joins,
        total.restarts,
        total.afresh,
        total.gave_way,
        total.crashes,
        total.unloads,
        total.pinned,
        total.drops,
        total.split_views,
        total.shared,
        total.attached,
        total.attach_failed,
        total.destroyed,
        total.found,
        total.created,
        total.key_splits,
        total.not_found,
        total.lookup_failed,
        total.handovers,
        total.messages,
        total.stale_deaths,
        total.lost_to_undecided,
        total.held_forever,
        total.idle_overtaken,
        total.homeless,
        total.death_unseen,
        total.unfreed
    );
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    let Some(args) = parse() else {
        return usage();
    };
    if args.members {
        sweep_members(&args)
    } else if args.containers {
        sweep_containers(&args)
    } else if args.stats {
        stats(&args)
    } else {
        sweep(&args)
    }
}
