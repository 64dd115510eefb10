// SPDX-License-Identifier: GPL-2.0
//! Mutation check: each deliberately broken variant of the container
//! protocol (`cohort_proto::container::mutants`) must fail the container
//! simulator's checks within the seeds the sweep runs, or the checks are
//! too weak to trust.
//!
//! One test in its own binary: the selected mutant is process-wide.

use cohort_proto::container::mutants;
use cohort_sim::containers::{self, Config};

/// Seeds each mutant may take to be caught (the sweep in containers.rs runs
/// 3000).
const LIMIT: u64 = 3000;

fn first_caught(mutant: u8) -> Option<(u64, String)> {
    mutants::set(mutant);
    let caught = (0..LIMIT).find_map(|seed| {
        let nodes = 2 + (seed % 7) as usize;
        containers::run(Config::random(seed, nodes))
            .err()
            .map(|f| (seed, f.message))
    });
    mutants::set(mutants::NONE);
    caught
}

#[test]
fn every_mutant_is_caught() {
    for (name, mutant) in [
        ("skip one invalidation", mutants::SKIP_INVALIDATION),
        (
            "no version bump on ownership change",
            mutants::NO_VERSION_BUMP,
        ),
        ("release keeps the home's backing", mutants::KEEP_BACKING),
        (
            "a node that comes back serves faults early",
            mutants::JOIN_EARLY,
        ),
    ] {
        match first_caught(mutant) {
            Some((seed, why)) => eprintln!("mutant '{name}' caught at seed {seed}: {why}"),
            None => panic!("mutant '{name}' survived {LIMIT} seeds"),
        }
    }
    // The correct protocol passes the seeds that caught them.
    assert!(containers::run(Config::random(0, 2)).is_ok());
}
