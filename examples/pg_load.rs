//! The PostgreSQL load test (docs/robustness.md): `dreamsimmatch`
//! pipelines and index writers on one server, restarted in the middle.
//!
//! ```sh
//! DREAMSIM_TEST_PG=$(tools/pg_test_server.sh start)
//! cargo run --release -p gst-plugin-dreamsim --example pg_load -- \
//!     --frames 1500 --entries 3000 --prefill 20000 --restart-after 20
//! ```
//!
//! The server is restarted with `tools/pg_test_server.sh restart`; the
//! figures are printed as JSON.

#[path = "../plugin/tests/pg_load_common/mod.rs"]
mod pg_load_common;

use std::time::Duration;

use clap::Parser;

#[derive(Parser)]
struct Args {
    /// The server (default: $DREAMSIM_TEST_PG).
    #[arg(long, env = "DREAMSIM_TEST_PG")]
    location: String,
    /// Pipelines (at most 8).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=8))]
    pipelines: u64,
    /// Frames per pipeline.
    #[arg(long, default_value_t = 1500)]
    frames: u64,
    /// Writers.
    #[arg(long, default_value_t = 2)]
    writers: usize,
    /// Entries per writer.
    #[arg(long, default_value_t = 3000)]
    entries: usize,
    /// Entries per add.
    #[arg(long, default_value_t = 50)]
    batch: usize,
    /// Random entries in the set before the run.
    #[arg(long, default_value_t = 20_000)]
    prefill: usize,
    /// Seconds from the start to the restart.
    #[arg(long, default_value_t = 20.0)]
    restart_after: f64,
}

fn main() {
    let args = Args::parse();
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf();
    let report = pg_load_common::run(pg_load_common::LoadConfig {
        location: args.location,
        table: dreamsim_index::DEFAULT_PG_TABLE.into(),
        model: repo.join("tests/fixtures/tiny_ensemble.onnx"),
        pipelines: args.pipelines as usize,
        frames: args.frames,
        writers: args.writers,
        entries_per_writer: args.entries,
        batch: args.batch.max(1),
        prefill: args.prefill,
        restart_after: Duration::from_secs_f64(args.restart_after.max(0.0)),
        restart: pg_load_common::restart_test_server(repo),
    });
    println!("{report:#?}");
}
