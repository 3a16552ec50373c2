//! The PostgreSQL load test (docs/robustness.md, "Load test"):
//! `dreamsimmatch` pipelines and `gst-dreamsim corpus add` processes on one
//! server, restarted in the middle.
//!
//! ```sh
//! DREAMSIM_TEST_PG=$(tools/pg_test_server.sh start)
//! cargo build --release -p gst-dreamsim
//! cargo run --release -p gst-dreamsim --example pg_load
//! tools/pg_test_server.sh stop
//! ```
//!
//! The server is restarted with `tools/pg_test_server.sh restart` (the
//! test server of this checkout); the figures are printed as JSON.

#[path = "../tests/pg_load_common/mod.rs"]
mod pg_load_common;

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

#[derive(Parser)]
struct Args {
    /// The server, a postgresql:// URI (default: $DREAMSIM_TEST_PG); the
    /// run makes a database of its own there
    #[arg(long)]
    server: Option<String>,
    /// dreamsimmatch pipelines (at most 8)
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=8))]
    pipelines: u64,
    /// Frames per pipeline
    #[arg(long, default_value_t = 1500, value_parser = clap::value_parser!(u64).range(1..))]
    frames: u64,
    /// corpus add processes
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(0..=16))]
    writers: u64,
    /// Clips in the corpus
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    videos: u64,
    /// Frames per clip (25 frames/s)
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    video_frames: u32,
    /// corpus add --rate
    #[arg(long, default_value_t = 5)]
    rate: u32,
    /// Random entries in the set before the run
    #[arg(long, default_value_t = 20_000)]
    prefill: usize,
    /// Percentage of all frames out when the server is restarted
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=99))]
    restart_at: u64,
    /// Seconds the run may take before it stops and reports what waits
    #[arg(long, default_value_t = 1800)]
    deadline: u64,
    /// The gst-dreamsim binary (default: beside this example's folder)
    #[arg(long)]
    gst_dreamsim: Option<PathBuf>,
}

fn main() {
    let args = Args::parse();
    let Some(server) = args
        .server
        .or_else(|| std::env::var("DREAMSIM_TEST_PG").ok())
    else {
        eprintln!("pg_load: no server: give --server or set DREAMSIM_TEST_PG");
        std::process::exit(2);
    };
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf();
    // target/<profile>/examples/pg_load -> target/<profile>/gst-dreamsim
    let gst_dreamsim = args.gst_dreamsim.unwrap_or_else(|| {
        let exe = std::env::current_exe().unwrap();
        exe.parent().unwrap().parent().unwrap().join("gst-dreamsim")
    });
    if !gst_dreamsim.is_file() {
        eprintln!(
            "pg_load: {} is missing: build it (cargo build --release -p gst-dreamsim) or give \
             --gst-dreamsim",
            gst_dreamsim.display()
        );
        std::process::exit(2);
    }
    let work_dir = repo.join("target/pg-load");
    let _ = std::fs::remove_dir_all(&work_dir);
    let report = pg_load_common::run(pg_load_common::LoadConfig {
        server,
        model: repo.join("tests/fixtures/tiny_ensemble.onnx"),
        gst_dreamsim,
        work_dir,
        pipelines: args.pipelines as usize,
        frames: args.frames,
        writers: args.writers as usize,
        videos: args.videos as usize,
        video_frames: args.video_frames,
        rate: f64::from(args.rate.max(1)),
        prefill: args.prefill,
        restart_at: args.restart_at as f64 / 100.0,
        restart: pg_load_common::restart_test_server(repo),
        deadline: Duration::from_secs(args.deadline),
        max_writer_runs: 10,
    });
    println!("{}", serde_json::to_string_pretty(&report).unwrap());
}
