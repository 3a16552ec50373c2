//! Comparing a run of `evaluate` with a previous one, and the gates.
//!
//! PLACEHOLDER written by the pipeline side of issue #22 so that its code
//! compiles: the agreed signatures with bodies that compare nothing. The
//! statistics side replaces this file at merge.

use std::path::PathBuf;

/// clap arguments for comparing with a previous run and gating; flattened into `evaluate`'s args.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct BaselineArgs {
    /// A previous run's JSON document to compare with (items paired by id)
    #[arg(long, value_name = "FILE", help_heading = "Baseline and gates")]
    pub baseline: Option<PathBuf>,
}

/// Outcome: what to print and whether a gate failed.
pub struct Verdict {
    pub failed: bool,
    pub lines: Vec<String>,
    pub comparison: Option<serde_json::Value>,
}

/// Why a baseline or a gate cannot be used (a usage error: exit 2).
#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    #[error("--baseline is not implemented in this build")]
    NotImplemented,
}

/// `current` is the JSON document evaluate writes. Reads the baseline
/// file, pairs items by id, tests each metric, applies the gates.
pub fn judge(args: &BaselineArgs, _current: &serde_json::Value) -> Result<Verdict, BaselineError> {
    if args.baseline.is_some() {
        return Err(BaselineError::NotImplemented);
    }
    Ok(Verdict {
        failed: false,
        lines: Vec::new(),
        comparison: None,
    })
}
