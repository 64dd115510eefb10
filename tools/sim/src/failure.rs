// SPDX-License-Identifier: GPL-2.0
//! A failed run of one of the simulators: its configuration, what went
//! wrong, and the events that led to it.

use std::fmt;

/// A run's configuration, named by its seed.
pub trait Seeded: fmt::Debug {
    /// The seed of every random choice of the run.
    fn seed(&self) -> u64;
}

/// A failed check: the message and the events that led to it.
#[derive(Clone, Debug)]
pub struct Failure<C> {
    /// The configuration that failed.
    pub config: C,
    /// What went wrong.
    pub message: String,
    /// The last events, oldest first.
    pub trace: Vec<String>,
}

impl<C: Seeded> fmt::Display for Failure<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "seed {} FAILED: {}", self.config.seed(), self.message)?;
        writeln!(f, "config: {:?}", self.config)?;
        writeln!(f, "last events:")?;
        for line in &self.trace {
            writeln!(f, "  {line}")?;
        }
        Ok(())
    }
}
