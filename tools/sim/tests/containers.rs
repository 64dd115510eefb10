// SPDX-License-Identifier: GPL-2.0
//! Seed sweep of the container simulator: homed containers, releases,
//! flushes, node deaths and nodes coming back fresh (and making containers
//! homed there), every message through the wire codec.
//! `COHORT_SIM_SEEDS` sets the number of seeds (default 3000).

use cohort_sim::containers::{self, Config};

fn seeds(default: u64) -> u64 {
    std::env::var("COHORT_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

#[test]
fn containers_survive_releases_and_deaths() {
    let stats = match containers::sweep(0..seeds(3000)) {
        Ok(stats) => stats,
        Err(failure) => panic!("{failure}"),
    };
    // The sweep exercises what it claims to.
    assert!(stats.deaths > 0 && stats.failed > 0 && stats.releases > 0);
    assert!(stats.rejoins > 0);
    // Nodes that came back make containers, and others use their pages.
    assert!(stats.made > 0 && stats.made_accesses > 0);
    assert!(stats.adoptions > 0 && stats.first_touches > 0 && stats.data_messages > 0);
    assert!(stats.reads > 0 && stats.writes > 0);
}

#[test]
fn container_runs_replay_exactly() {
    for seed in [5, 99, 2024] {
        let a = containers::run(Config::random(seed, 5)).expect("run");
        let b = containers::run(Config::random(seed, 5)).expect("run");
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
    }
}
