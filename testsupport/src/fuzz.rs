//! The bounded-time fuzz harness shared by the engine's, the index's and
//! the tool's fuzz tests (`tests/fuzz.rs`, `index/tests/fuzz.rs`,
//! `cli/tests/cli_fuzz.rs`): the time budget and
//! seed from the environment (`DREAMSIM_FUZZ_SECS`, default 20;
//! `DREAMSIM_FUZZ_SEED`, default 1), a tally that fails the test on a
//! panic, and the pool of accepted inputs mutated again.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::mutate::Mutator;

/// The time per target: `DREAMSIM_FUZZ_SECS` (default 20).
pub fn budget() -> Duration {
    let secs = std::env::var("DREAMSIM_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        // A value Duration cannot hold (NaN, negative, huge) is the default.
        .filter(|s| s.is_finite() && (0.0..1e9).contains(s))
        .unwrap_or(20.0);
    Duration::from_secs_f64(secs)
}

/// The mutator's seed: `DREAMSIM_FUZZ_SEED` (default 1).
pub fn seed() -> u64 {
    std::env::var("DREAMSIM_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
}

/// A fresh folder for `target`'s inputs under `tmp` (the test's
/// `CARGO_TARGET_TMPDIR`, which only the test itself sees).
pub fn work_dir(tmp: &str, target: &str) -> PathBuf {
    let dir = PathBuf::from(tmp).join(format!("fuzz-{target}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// What a run found: inputs tried, accepted, and the panics (saved inputs).
#[derive(Default)]
pub struct Tally {
    tried: u64,
    accepted: u64,
    panics: Vec<String>,
}

impl Tally {
    /// Prints the run's figures; fails the test if an input panicked.
    pub fn report(&self, target: &str, elapsed: Duration) {
        eprintln!(
            "fuzz {target}: {} inputs in {:.1} s ({:.0}/s), {} accepted, {} refused with an error, {} panics, 0 crashes (seed {})",
            self.tried,
            elapsed.as_secs_f64(),
            self.tried as f64 / elapsed.as_secs_f64().max(1e-9),
            self.accepted,
            self.tried - self.accepted - self.panics.len() as u64,
            self.panics.len(),
            seed()
        );
        assert!(
            self.panics.is_empty(),
            "{target}: {} inputs panicked (saved):\n{}",
            self.panics.len(),
            self.panics.join("\n")
        );
    }
}

/// Runs `check` on one input, counting it and keeping a panicking one.
pub fn run_one(tally: &mut Tally, dir: &Path, input: &[u8], check: impl FnOnce() -> bool) -> bool {
    tally.tried += 1;
    match catch_unwind(AssertUnwindSafe(check)) {
        Ok(accepted) => {
            tally.accepted += accepted as u64;
            accepted
        }
        Err(panic) => {
            let saved = dir.join(format!("panic-{}.bin", tally.tried));
            std::fs::write(&saved, input).unwrap();
            let why = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            tally.panics.push(format!("{}: {why}", saved.display()));
            false
        }
    }
}

/// Inputs a parser accepted, kept to be mutated again (a few, the latest).
#[derive(Default)]
pub struct Pool {
    inputs: Vec<Vec<u8>>,
}

impl Pool {
    /// A kept input (one time in three) or a seed.
    pub fn pick<'a>(&'a self, m: &mut Mutator, seeds: &'a [Vec<u8>]) -> &'a [u8] {
        if !self.inputs.is_empty() && m.below(3) == 0 {
            &self.inputs[m.below(self.inputs.len())]
        } else {
            &seeds[m.below(seeds.len())]
        }
    }
    /// Keeps an accepted input, dropping the oldest beyond 64.
    pub fn keep(&mut self, input: Vec<u8>) {
        if self.inputs.len() >= 64 {
            self.inputs.remove(0);
        }
        self.inputs.push(input);
    }
}
