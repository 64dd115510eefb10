// SPDX-License-Identifier: GPL-2.0
//! Seed sweeps: every seed runs the full set of checks in both modes.
//!
//! `cargo test -p cohort-sim` runs a few thousand seeds (a minute or two in
//! a debug build on 2 cores; `--release` is several times faster). Set
//! `COHORT_SIM_SEEDS` to run more, e.g. `COHORT_SIM_SEEDS=100000 cargo test
//! --release -p cohort-sim`; the binary is the tool for millions (see
//! Documentation/proto.rst).

use cohort_sim::world::{self, Config, Mode};

fn seeds(default: u64) -> u64 {
    std::env::var("COHORT_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn sweep(mode: Mode, first: u64, count: u64) {
    for seed in first..first + count {
        let nodes = 2 + (seed % 15) as usize;
        if let Err(failure) = world::run(Config::random(seed, nodes, mode)) {
            panic!("{failure}");
        }
    }
}

#[test]
fn lamport_as_specified() {
    sweep(Mode::Lamport, 0, seeds(2500));
}

#[test]
fn cohort_improved() {
    sweep(Mode::Cohort, 0, seeds(2500));
}

#[test]
fn runs_replay_exactly() {
    for seed in [3, 77, 1234] {
        let cfg = Config::random(seed, 7, Mode::Cohort);
        let a = world::run(cfg.clone()).expect("run");
        let b = world::run(cfg).expect("run");
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
        assert!(a.reads + a.writes > 0);
    }
}

#[test]
fn sixty_four_nodes() {
    for seed in 0..20 {
        for mode in [Mode::Lamport, Mode::Cohort] {
            let mut cfg = Config::random(seed, 64, mode);
            cfg.hosts = 64;
            if let Err(failure) = world::run(cfg) {
                panic!("{failure}");
            }
        }
    }
}

#[test]
fn message_counts_match_the_algorithms() {
    // One thread, no migrations: every lock is uncontended, so the counts
    // are exact: Lamport 3(N-1), Ricart-Agrawala 2(N-1) per acquisition.
    for nodes in [2usize, 4, 8, 16] {
        let cfg = |mode| Config {
            seed: 9,
            nodes,
            mode,
            threads: 1,
            max_threads: 1,
            ops_per_thread: 30,
            pages: 8,
            max_delay: 5,
            hosts: nodes,
            layout_percent: 20,
            migrate_percent: 0,
            flush: false,
        };
        let lamport = world::run(cfg(Mode::Lamport)).expect("lamport run");
        let acquisitions = lamport.page_acquisitions + lamport.heavy_acquisitions;
        assert!(acquisitions > 0);
        assert_eq!(
            lamport.page_lock_msgs + lamport.heavy_lock_msgs,
            3 * (nodes as u64 - 1) * acquisitions
        );
        assert_eq!(
            lamport.page_lock_msgs + lamport.query_msgs,
            5 * (nodes as u64 - 1) * lamport.fetches
        );
        // Cohort, group on node 0 only: locks cost no message at all.
        let cohort = world::run(cfg(Mode::Cohort)).expect("cohort run");
        assert_eq!(cohort.page_lock_msgs + cohort.heavy_lock_msgs, 0);
        assert!(cohort.page_acquisitions + cohort.heavy_acquisitions > 0);
    }
}
