//! `gst-dreamsim evaluate` (issue #22). On this branch only the statistics
//! and the baseline comparison; the subcommand itself lands with eval22's
//! branch, whose mod.rs replaces this one.

// Used by the subcommand, which is not on this branch.
#[allow(dead_code)]
pub mod baseline;
#[allow(dead_code)]
pub mod stats;
