// SPDX-License-Identifier: GPL-2.0
//! Mutation check of the membership simulator: each deliberately broken
//! variant of `container_member` and `container_share` (their `mutants`
//! modules, selected with `container::mutants::set`) must fail its checks
//! within the seeds the sweep in members.rs runs.
//!
//! One test in its own binary: the selected mutant is process-wide.

use cohort_proto::container::mutants;
use cohort_proto::container_member::mutants as member;
use cohort_proto::container_share::mutants as share;
use cohort_sim::members::{self, Config};

/// Seeds each mutant may take to be caught (the sweep runs 3000).
const LIMIT: u64 = 3000;

fn first_caught(mutant: u8) -> Option<(u64, String)> {
    mutants::set(mutant);
    let caught = (0..LIMIT).find_map(|seed| {
        let nodes = 2 + (seed % 7) as usize;
        members::run(Config::random(seed, nodes))
            .err()
            .map(|f| (seed, f.message))
    });
    mutants::set(mutants::NONE);
    caught
}

#[test]
fn every_member_and_share_mutant_is_caught() {
    for (name, mutant) in [
        ("a restart taken for a reconnection", member::RESTART_AS_UP),
        (
            "joining nodes restart on any peer's restart",
            member::AFRESH_ON_ANY_RESTART,
        ),
        (
            "an undecided node left out never asks again",
            member::NEVER_ASK_AGAIN,
        ),
        ("the home destroys what others use", share::DESTROY_IN_USE),
        ("a node counted dead is never told", share::FORGET_THE_DEAD),
        ("a key made twice", share::KEY_TWICE),
    ] {
        match first_caught(mutant) {
            Some((seed, why)) => {
                let why: String = why.chars().take(160).collect();
                eprintln!("mutant '{name}' caught at seed {seed}: {why}");
            }
            None => panic!("mutant '{name}' survived {LIMIT} seeds"),
        }
    }
    assert!(members::run(Config::random(0, 2)).is_ok());
}
