//! The PostgreSQL load test (issue #20, "Also"), shared by
//! `examples/pg_load.rs` (the figures in docs/robustness.md) and
//! `plugin/tests/pg_load.rs` (a small run in CI): `pipelines` `dreamsimmatch`
//! pipelines (fixture model, static test patterns, `on-error=pass`) and
//! `writers` writers adding entries to the same set (batches, as
//! `corpus add` writes a video's frames; a failed batch retried, as a
//! worker retries), on one server that is restarted in the middle.
//!
//! What it measures: lookups per second over the run, the latency of each
//! frame through `dreamsimmatch` (p50, p99, max), frames lost (in minus
//! out), frames unchecked (every pattern is in the set, so a checked frame
//! always matches: one without a match passed unchecked during the
//! outage), and entries lost (acknowledged by `add`, absent afterwards).
#![allow(dead_code)] // The test and the example each use a part.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dreamsim_index::{self as index, IndexOptions, ModelIdentity, NewEntry, Source};
use dreamsim_testsupport::gst_run;
use gst::prelude::*;
use gstdreamsim::meta::DreamSimMeta;

/// Static patterns of videotestsrc: every frame of one is the same picture.
const PATTERNS: [&str; 8] = [
    "smpte",
    "red",
    "green",
    "blue",
    "checkers-8",
    "white",
    "black",
    "smpte75",
];

/// What to run.
pub struct LoadConfig {
    /// The server (a postgresql:// URI).
    pub location: String,
    /// Table prefix of the set (dropped and made again): `dreamsimmatch`
    /// reads the default one, `dreamsim`.
    pub table: String,
    /// The model (`tests/fixtures/tiny_ensemble.onnx`).
    pub model: PathBuf,
    /// Pipelines at once (at most 8, one per pattern).
    pub pipelines: usize,
    /// Frames per pipeline (25 frames/s of running time, not synchronised).
    pub frames: u64,
    /// Writers at once.
    pub writers: usize,
    /// Entries each writer adds.
    pub entries_per_writer: usize,
    /// Entries per `add`.
    pub batch: usize,
    /// Entries in the set before the run (random unit vectors).
    pub prefill: usize,
    /// When the server is restarted, after the start.
    pub restart_after: Duration,
    /// Restarts the server (`tools/pg_test_server.sh restart`).
    pub restart: Box<dyn Fn() + Send + Sync>,
}

/// What was measured.
#[derive(Debug)]
pub struct LoadReport {
    pub seconds: f64,
    pub lookups: u64,
    pub lookups_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub frames_in: u64,
    pub frames_out: u64,
    pub frames_unchecked: u64,
    pub restart_seconds: f64,
    pub entries_acknowledged: usize,
    pub entries_lost: usize,
    pub writer_retries: usize,
}

fn unit(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    v.iter_mut().for_each(|x| *x /= n);
}

fn random_vector(dim: usize, rng: &mut fastrand::Rng) -> Vec<f32> {
    let mut v: Vec<f32> = (0..dim).map(|_| rng.f32() * 2.0 - 1.0).collect();
    unit(&mut v);
    v
}

/// The embedding of one frame of `pattern`, through the element.
fn pattern_embedding(model: &Path, pattern: &str) -> (String, Vec<f32>) {
    let description = format!(
        "videotestsrc num-buffers=1 pattern={pattern} ! video/x-raw,width=64,height=64 \
         ! dreamsim model-location={} execution-provider=cpu threads=1 ! appsink name=sink sync=false",
        model.display()
    );
    let mut metas = Vec::new();
    gst_run::pull_samples(&description, "sink", |sample| {
        metas.push(
            DreamSimMeta::from_buffer(sample.buffer().unwrap())
                .unwrap()
                .unwrap(),
        )
    });
    let meta = metas.into_iter().next().expect("one frame");
    (meta.model, meta.embedding)
}

/// Drops and makes the set: the patterns' embeddings and `prefill` random
/// entries. Returns the identity.
fn make_set(config: &LoadConfig, options: &IndexOptions) -> ModelIdentity {
    let model = dreamsim::Model::load(
        dreamsim::runtime(None).unwrap(),
        &config.model,
        &dreamsim::ModelOptions {
            provider: dreamsim::ExecutionProvider::Cpu,
            threads: 1,
            ..Default::default()
        },
    )
    .unwrap();
    let identity = ModelIdentity::of_model(model.info()).unwrap();
    drop(model);
    let mut admin = index::PgLocation::parse(&config.location)
        .unwrap()
        .connect()
        .unwrap();
    admin
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {t}_entries; DROP TABLE IF EXISTS {t}_model",
            t = config.table
        ))
        .unwrap();
    let mut set = index::open(&config.location, Some(&identity), options).unwrap();
    let patterns: Vec<(String, Vec<f32>)> = PATTERNS
        .iter()
        .map(|p| pattern_embedding(&config.model, p))
        .collect();
    let entries: Vec<NewEntry> = PATTERNS
        .iter()
        .zip(&patterns)
        .map(|(p, (_, e))| NewEntry {
            label: (*p).into(),
            source: Source::Other {
                description: format!("videotestsrc pattern={p}"),
            },
            content_hash: format!("pattern-{p}"),
            embedding: e,
        })
        .collect();
    set.add(&entries).unwrap();
    let mut rng = fastrand::Rng::with_seed(7);
    let filler: Vec<Vec<f32>> = (0..config.prefill)
        .map(|_| random_vector(identity.dim, &mut rng))
        .collect();
    for (chunk_index, chunk) in filler.chunks(1000).enumerate() {
        let entries: Vec<NewEntry> = chunk
            .iter()
            .enumerate()
            .map(|(i, v)| NewEntry {
                label: format!("filler {}", chunk_index * 1000 + i),
                source: Source::Other {
                    description: "random".into(),
                },
                content_hash: format!("filler-{}", chunk_index * 1000 + i),
                embedding: v,
            })
            .collect();
        set.add(&entries).unwrap();
    }
    identity
}

/// One pipeline's frames: latency of each through dreamsimmatch, and the
/// counts in, out and unmatched.
#[derive(Default)]
struct PipelineFigures {
    latencies: Vec<Duration>,
    frames_in: u64,
    frames_out: u64,
    unmatched: u64,
}

fn run_pipeline(config: &LoadConfig, pattern: &str) -> PipelineFigures {
    let pipeline = gst::parse::launch(&format!(
        "videotestsrc num-buffers={frames} pattern={pattern} \
         ! video/x-raw,width=64,height=64,framerate=25/1 \
         ! dreamsim model-location={model} execution-provider=cpu threads=1 \
         ! dreamsimmatch name=m index-location=\"{location}\" threshold=0.01 on-error=pass \
           retry-interval=100 post-messages=false \
         ! appsink name=sink sync=false",
        frames = config.frames,
        model = config.model.display(),
        location = config.location,
    ))
    .unwrap();
    let bin = pipeline.downcast_ref::<gst::Bin>().unwrap();
    let m = bin.by_name("m").unwrap();
    let started: Arc<Mutex<HashMap<u64, Instant>>> = Default::default();
    let figures: Arc<Mutex<PipelineFigures>> = Default::default();
    {
        let started = started.clone();
        let figures = figures.clone();
        m.static_pad("sink")
            .unwrap()
            .add_probe(gst::PadProbeType::BUFFER, move |_, info| {
                if let Some(b) = info.buffer() {
                    let pts = b.pts().map_or(0, |t| t.nseconds());
                    started.lock().unwrap().insert(pts, Instant::now());
                    figures.lock().unwrap().frames_in += 1;
                }
                gst::PadProbeReturn::Ok
            });
    }
    {
        let started = started.clone();
        let figures = figures.clone();
        m.static_pad("src")
            .unwrap()
            .add_probe(gst::PadProbeType::BUFFER, move |_, info| {
                if let Some(b) = info.buffer() {
                    let pts = b.pts().map_or(0, |t| t.nseconds());
                    let at = started.lock().unwrap().remove(&pts);
                    let matched = DreamSimMeta::from_buffer(b)
                        .and_then(Result::ok)
                        .is_some_and(|m| !m.matches.is_empty());
                    let mut f = figures.lock().unwrap();
                    if let Some(at) = at {
                        f.latencies.push(at.elapsed());
                    }
                    f.frames_out += 1;
                    if !matched {
                        f.unmatched += 1;
                    }
                }
                gst::PadProbeReturn::Ok
            });
    }
    let bus = pipeline.bus().unwrap();
    if pipeline.set_state(gst::State::Playing).is_err() {
        let why = bus
            .timed_pop_filtered(gst::ClockTime::from_seconds(5), &[gst::MessageType::Error])
            .map(|m| format!("{m:?}"));
        panic!("pipeline {pattern} does not start: {why:?}");
    }
    if let gst_run::BusEnd::Error(e) = gst_run::read_bus(&bus, gst::ClockTime::NONE, |_| {}) {
        eprintln!("pipeline {pattern}: {e}");
    }
    pipeline.set_state(gst::State::Null).unwrap();
    let taken = std::mem::take(&mut *figures.lock().unwrap());
    taken
}

/// One writer: `entries` new entries in batches, each batch retried until
/// it is acknowledged (at most a minute). Returns the acknowledged content
/// hashes and the retries.
fn run_writer(
    config: &LoadConfig,
    options: &IndexOptions,
    identity: &ModelIdentity,
    writer: usize,
) -> (Vec<String>, usize) {
    let mut rng = fastrand::Rng::with_seed(100 + writer as u64);
    let mut acknowledged = Vec::new();
    let mut retries = 0;
    let mut set = None;
    let mut next = 0;
    while next < config.entries_per_writer {
        let n = config.batch.min(config.entries_per_writer - next);
        let vectors: Vec<Vec<f32>> = (0..n)
            .map(|_| random_vector(identity.dim, &mut rng))
            .collect();
        let hashes: Vec<String> = (next..next + n)
            .map(|i| format!("writer-{writer}-{i}"))
            .collect();
        let entries: Vec<NewEntry> = vectors
            .iter()
            .zip(&hashes)
            .map(|(v, h)| NewEntry {
                label: h.clone(),
                source: Source::Other {
                    description: "load test".into(),
                },
                content_hash: h.clone(),
                embedding: v,
            })
            .collect();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if set.is_none() {
                set = index::open(&config.location, Some(identity), options).ok();
            }
            match set.as_mut().map(|s| s.add(&entries)) {
                Some(Ok(_)) => break,
                Some(Err(e)) => {
                    assert!(e.is_transient(), "writer {writer}: {e}");
                }
                None => {}
            }
            retries += 1;
            assert!(
                Instant::now() < deadline,
                "writer {writer}: no answer for a minute"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        acknowledged.extend(hashes);
        next += n;
        // A worker embeds between batches.
        std::thread::sleep(Duration::from_millis(20));
    }
    (acknowledged, retries)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i].as_secs_f64() * 1e3
}

/// Runs the load and measures it.
pub fn run(config: LoadConfig) -> LoadReport {
    gst::init().unwrap();
    gstdreamsim::plugin_register_static().unwrap();
    let options = IndexOptions {
        create: true,
        pg_table: config.table.clone(),
        ..IndexOptions::default()
    };
    let identity = make_set(&config, &options);
    let config = Arc::new(config);
    let started = Instant::now();
    let done = Arc::new(AtomicBool::new(false));
    let restart = {
        let config = config.clone();
        let done = done.clone();
        std::thread::spawn(move || {
            let at = Instant::now() + config.restart_after;
            while Instant::now() < at {
                if done.load(Ordering::Relaxed) {
                    return None;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let t = Instant::now();
            (config.restart)();
            Some(t.elapsed())
        })
    };
    let pipelines: Vec<_> = PATTERNS
        .iter()
        .take(config.pipelines)
        .map(|p| {
            let config = config.clone();
            std::thread::spawn(move || run_pipeline(&config, p))
        })
        .collect();
    let writers: Vec<_> = (0..config.writers)
        .map(|w| {
            let config = config.clone();
            let options = options.clone();
            let identity = identity.clone();
            std::thread::spawn(move || run_writer(&config, &options, &identity, w))
        })
        .collect();
    let figures: Vec<PipelineFigures> = pipelines.into_iter().map(|p| p.join().unwrap()).collect();
    let written: Vec<(Vec<String>, usize)> =
        writers.into_iter().map(|w| w.join().unwrap()).collect();
    let seconds = started.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    let restart_seconds = restart
        .join()
        .unwrap()
        .map_or(f64::NAN, |d| d.as_secs_f64());
    // Every acknowledged entry is there.
    let mut set = index::open(&config.location, Some(&identity), &options).unwrap();
    let mut acknowledged = 0;
    let mut lost = 0;
    for (hashes, _) in &written {
        for h in hashes {
            acknowledged += 1;
            if set.id_of_content(h).unwrap().is_none() {
                lost += 1;
            }
        }
    }
    let mut latencies: Vec<Duration> = figures.iter().flat_map(|f| f.latencies.clone()).collect();
    latencies.sort();
    let frames_out: u64 = figures.iter().map(|f| f.frames_out).sum();
    let unchecked: u64 = figures.iter().map(|f| f.unmatched).sum();
    LoadReport {
        seconds,
        lookups: frames_out - unchecked,
        lookups_per_s: (frames_out - unchecked) as f64 / seconds,
        p50_ms: percentile(&latencies, 0.5),
        p99_ms: percentile(&latencies, 0.99),
        max_ms: latencies.last().map_or(0.0, |d| d.as_secs_f64() * 1e3),
        frames_in: figures.iter().map(|f| f.frames_in).sum(),
        frames_out,
        frames_unchecked: unchecked,
        restart_seconds,
        entries_acknowledged: acknowledged,
        entries_lost: lost,
        writer_retries: written.iter().map(|(_, r)| r).sum(),
    }
}

/// Restarts the test server with `tools/pg_test_server.sh restart`.
pub fn restart_test_server(repo: PathBuf) -> Box<dyn Fn() + Send + Sync> {
    Box::new(move || {
        let status = std::process::Command::new(repo.join("tools/pg_test_server.sh"))
            .arg("restart")
            .current_dir(&repo)
            .status()
            .unwrap();
        assert!(status.success(), "tools/pg_test_server.sh restart failed");
    })
}
