//! The PostgreSQL load test (issue #20, "Also"), shared by
//! `examples/pg_load.rs` (the figures in docs/robustness.md) and
//! `tests/pg_load.rs` (a small run in CI): `pipelines` `dreamsimmatch`
//! pipelines and `writers` real `gst-dreamsim corpus add` processes on one
//! server, restarted once in the middle of the run.
//!
//! The run gets a database of its own on the server. Its set holds the
//! embeddings of eight static videotestsrc patterns and `prefill` random
//! entries; each pipeline plays one pattern through `dreamsim` (the fixture
//! model) and `dreamsimmatch` (`on-error=pass`: what a user who wants no
//! frame lost sets; frames pass unmatched while the server is away) into a
//! `fakesink`. The writers add a corpus of small clips the run encodes
//! (distinct content each), sharing the job through the corpus's job table;
//! a writer process that exits with an error (the server went away under
//! it) is started again, as a service manager would, and continues where it
//! stopped. The server is restarted once a third of the frames have come
//! out, so that the pipelines and the writers are busy when it happens.
//!
//! What it measures: lookups per second (frames that were checked and
//! matched, over the pipelines' run, and the lowest whole second), the
//! time each frame spent in `dreamsimmatch` (p50, p99, max), frames lost
//! (made by the sources minus arrived at the sinks), frames unmatched
//! (every pattern is in the set, so a frame without a match passed
//! unchecked during the outage), and entries lost (frames of the videos
//! the writers recorded as complete that are not in the entries table).
//!
//! Nothing waits without a limit: past `deadline` the run stops every
//! pipeline and writer and fails with what each was doing and what the
//! server's sessions were waiting on.
#![allow(dead_code)] // The test and the example each use a part.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use dreamsim_index::{self as index, IndexOptions, ModelIdentity, NewEntry, Source};
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

/// Restarts the server; an error says why it could not.
pub type Restart = Box<dyn Fn() -> Result<(), String> + Send + Sync>;

/// What to run.
pub struct LoadConfig {
    /// The server (a postgresql:// URI, as `tools/pg_test_server.sh start`
    /// prints): the run makes a database of its own there and drops it.
    pub server: String,
    /// The model (`tests/fixtures/tiny_ensemble.onnx`).
    pub model: PathBuf,
    /// The `gst-dreamsim` binary the writers run.
    pub gst_dreamsim: PathBuf,
    /// Where the clips are written (a scratch folder).
    pub work_dir: PathBuf,
    /// Pipelines at once (at most 8, one per pattern).
    pub pipelines: usize,
    /// Frames per pipeline (not synchronised to a clock).
    pub frames: u64,
    /// `corpus add` processes at once.
    pub writers: usize,
    /// Clips in the corpus the writers add.
    pub videos: usize,
    /// Frames per clip (25 frames/s).
    pub video_frames: u32,
    /// `corpus add --rate`: frames sampled per second of each clip.
    pub rate: f64,
    /// Random entries in the set before the run.
    pub prefill: usize,
    /// The server is restarted once this share of all frames came out.
    pub restart_at: f64,
    /// Restarts the server (`tools/pg_test_server.sh restart`).
    pub restart: Restart,
    /// Longest the run may take; past it, it stops and fails with what was
    /// waiting.
    pub deadline: Duration,
    /// Most runs of one writer (the first and its restarts).
    pub max_writer_runs: usize,
}

/// What was measured.
#[derive(Debug, serde::Serialize)]
pub struct LoadReport {
    /// Seconds from the start of the pipelines to the end of the last one
    /// or the last writer.
    pub seconds: f64,
    /// Seconds from the start of the pipelines to the end of the last one.
    pub pipeline_seconds: f64,
    /// Frames checked against the set (matched).
    pub lookups: u64,
    pub lookups_per_s: f64,
    /// The fewest lookups in one whole second of the pipelines' run.
    pub lowest_lookups_in_a_second: u64,
    /// Time each frame spent in dreamsimmatch, milliseconds.
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Frames made by the sources.
    pub frames_in: u64,
    /// Frames arrived at the sinks.
    pub frames_out: u64,
    pub frames_lost: u64,
    /// Frames that came out without a match (passed unchecked).
    pub frames_unmatched: u64,
    /// Warnings the matchers posted (the index could not answer).
    pub matcher_warnings: u64,
    /// Errors the pipelines posted.
    pub pipeline_errors: Vec<String>,
    /// When the restart began and how long it took, seconds.
    pub restart_at_s: f64,
    pub restart_seconds: f64,
    /// Writer processes running when the restart began.
    pub writers_running_at_restart: usize,
    /// Runs of `corpus add` (all writers), and those that failed.
    pub writer_runs: usize,
    pub writer_failed_runs: usize,
    /// The last lines of each failed run's standard error.
    pub writer_failures: Vec<String>,
    /// Clips, and those recorded complete in the corpus.
    pub videos: usize,
    pub videos_recorded: usize,
    /// Frames of the recorded videos (the writers' acknowledgement: a
    /// video is recorded after its frames were added).
    pub entries_acknowledged: u64,
    /// Of those, rows in the entries table.
    pub entries_present: u64,
    pub entries_lost: u64,
    /// Frames the writers' own summaries ("N videos added (F frames") report.
    pub entries_reported_by_writers: u64,
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

/// The URI of database `db` on the server of `server`.
fn database_uri(server: &str, db: &str) -> String {
    let (base, query) = server.split_once('?').unwrap_or((server, ""));
    let base = base.rsplit_once('/').map_or(base, |(b, _)| b);
    format!("{base}/{db}?{query}")
}

/// Runs a pipeline description to its end (at most `limit`); panics with
/// the error.
fn run_to_end(description: &str, limit: Duration) {
    let pipeline = gst::parse::launch(description).unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let bus = pipeline.bus().unwrap();
    let msg = bus.timed_pop_filtered(
        gst::ClockTime::from_nseconds(limit.as_nanos() as u64),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    pipeline.set_state(gst::State::Null).unwrap();
    match msg.as_ref().map(|m| m.view()) {
        Some(gst::MessageView::Eos(_)) => {}
        Some(gst::MessageView::Error(e)) => panic!("{description}: {}", e.error()),
        _ => panic!("{description}: no end within {limit:?}"),
    }
}

/// The embedding of one frame of `pattern`, through the element.
fn pattern_embedding(model: &Path, pattern: &str) -> Vec<f32> {
    let pipeline = gst::parse::launch(&format!(
        "videotestsrc num-buffers=1 pattern={pattern} ! video/x-raw,width=64,height=64 \
         ! dreamsim model-location={} execution-provider=cpu threads=1 ! appsink name=sink sync=false",
        model.display()
    ))
    .unwrap();
    let sink = pipeline
        .downcast_ref::<gst::Bin>()
        .unwrap()
        .by_name("sink")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let sample = sink
        .try_pull_sample(gst::ClockTime::from_seconds(60))
        .expect("one frame within a minute");
    let meta = DreamSimMeta::from_buffer(sample.buffer().unwrap())
        .unwrap()
        .unwrap();
    pipeline.set_state(gst::State::Null).unwrap();
    meta.embedding
}

/// Makes the set in `uri`: `prefill` random entries (one bulk load), then
/// the patterns' embeddings. Returns the identity.
fn make_set(config: &LoadConfig, uri: &str) -> ModelIdentity {
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
    let options = IndexOptions {
        create: true,
        ..IndexOptions::default()
    };
    let mut set = index::open(uri, Some(&identity), &options).unwrap();
    let mut rng = fastrand::Rng::with_seed(7);
    let filler: Vec<Vec<f32>> = (0..config.prefill)
        .map(|_| random_vector(identity.dim, &mut rng))
        .collect();
    let entries: Vec<NewEntry> = filler
        .iter()
        .enumerate()
        .map(|(i, v)| NewEntry {
            label: format!("filler {i}"),
            source: Source::Other {
                description: "random".into(),
            },
            content_hash: format!("filler-{i}"),
            embedding: v,
        })
        .collect();
    if !entries.is_empty() {
        set.add(&entries).unwrap();
    }
    let patterns: Vec<Vec<f32>> = PATTERNS
        .iter()
        .map(|p| pattern_embedding(&config.model, p))
        .collect();
    let entries: Vec<NewEntry> = PATTERNS
        .iter()
        .zip(&patterns)
        .map(|(p, e)| NewEntry {
            label: (*p).into(),
            source: Source::Other {
                description: format!("videotestsrc pattern={p}"),
            },
            content_hash: format!("pattern-{p}"),
            embedding: e,
        })
        .collect();
    set.add(&entries).unwrap();
    identity
}

/// Encodes the corpus: `videos` clips of a moving ball, each in colours of
/// its own (distinct files, distinct frames).
fn make_clips(config: &LoadConfig) -> Vec<String> {
    std::fs::create_dir_all(&config.work_dir).unwrap();
    (0..config.videos)
        .map(|i| {
            let path = config.work_dir.join(format!("clip-{i:04}.webm"));
            let mut rng = fastrand::Rng::with_seed(1000 + i as u64);
            let (fg, bg) = (rng.u32(..) | 0xff00_0000, rng.u32(..) | 0xff00_0000);
            run_to_end(
                &format!(
                    "videotestsrc pattern=ball foreground-color={fg} background-color={bg} \
                     num-buffers={n} ! video/x-raw,width=96,height=64,framerate=25/1 \
                     ! videoconvert ! vp8enc deadline=1 ! webmmux ! filesink location={path}",
                    n = config.video_frames,
                    path = path.display()
                ),
                Duration::from_secs(60),
            );
            path.to_string_lossy().into_owned()
        })
        .collect()
}

/// What one task (a pipeline, a writer) is doing, for the report of a run
/// that does not end.
#[derive(Default)]
struct Progress {
    tasks: Mutex<HashMap<String, String>>,
}

impl Progress {
    fn set(&self, task: &str, what: String) {
        self.tasks.lock().unwrap().insert(task.to_owned(), what);
    }

    fn done(&self, task: &str) {
        self.tasks.lock().unwrap().remove(task);
    }

    fn unfinished(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .tasks
            .lock()
            .unwrap()
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        v.sort();
        v
    }
}

/// Shared by every task of a run.
struct Shared {
    progress: Progress,
    /// Set past the deadline: every task stops.
    abort: AtomicBool,
    /// Frames arrived at the sinks, all pipelines.
    frames_out: AtomicU64,
    /// Writer processes running now.
    writers_running: AtomicU64,
    /// Pipelines not ended yet.
    pipelines_running: AtomicU64,
    started: Instant,
}

/// One pipeline's frames.
#[derive(Default)]
struct PipelineFigures {
    /// Time each frame spent in dreamsimmatch.
    latencies: Vec<Duration>,
    /// When each checked (matched) frame came out, since the start.
    matched_at: Vec<Duration>,
    frames_in: u64,
    frames_out: u64,
    unmatched: u64,
    warnings: u64,
    error: Option<String>,
    ended_at: Duration,
}

fn run_pipeline(config: &LoadConfig, uri: &str, shared: &Shared, pattern: &str) -> PipelineFigures {
    let task = format!("pipeline {pattern}");
    let pipeline = gst::parse::launch(&format!(
        "videotestsrc name=src num-buffers={frames} pattern={pattern} \
         ! video/x-raw,width=64,height=64,framerate=25/1 \
         ! dreamsim model-location={model} execution-provider=cpu threads=1 \
         ! dreamsimmatch name=m index-location=\"{uri}\" threshold=0.01 on-error=pass \
           retry-interval=500 post-messages=false \
         ! fakesink name=sink sync=false",
        frames = config.frames,
        model = config.model.display(),
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let by_name = |n: &str| pipeline.by_name(n).unwrap();
    let entered: Arc<Mutex<HashMap<u64, Instant>>> = Default::default();
    let figures: Arc<Mutex<PipelineFigures>> = Default::default();
    {
        let figures = figures.clone();
        by_name("src").static_pad("src").unwrap().add_probe(
            gst::PadProbeType::BUFFER,
            move |_, _| {
                figures.lock().unwrap().frames_in += 1;
                gst::PadProbeReturn::Ok
            },
        );
    }
    {
        let entered = entered.clone();
        by_name("m").static_pad("sink").unwrap().add_probe(
            gst::PadProbeType::BUFFER,
            move |_, info| {
                if let Some(b) = info.buffer() {
                    let pts = b.pts().map_or(0, |t| t.nseconds());
                    entered.lock().unwrap().insert(pts, Instant::now());
                }
                gst::PadProbeReturn::Ok
            },
        );
    }
    {
        let (entered, figures) = (entered.clone(), figures.clone());
        let started = shared.started;
        by_name("m").static_pad("src").unwrap().add_probe(
            gst::PadProbeType::BUFFER,
            move |_, info| {
                let Some(b) = info.buffer() else {
                    return gst::PadProbeReturn::Ok;
                };
                let at = entered
                    .lock()
                    .unwrap()
                    .remove(&b.pts().map_or(0, |t| t.nseconds()));
                let matched = DreamSimMeta::from_buffer(b)
                    .and_then(Result::ok)
                    .is_some_and(|m| !m.matches.is_empty());
                let mut f = figures.lock().unwrap();
                if let Some(at) = at {
                    f.latencies.push(at.elapsed());
                }
                if matched {
                    f.matched_at.push(started.elapsed());
                } else {
                    f.unmatched += 1;
                }
                gst::PadProbeReturn::Ok
            },
        );
    }
    {
        let figures = figures.clone();
        by_name("sink").static_pad("sink").unwrap().add_probe(
            gst::PadProbeType::BUFFER,
            move |_, _| {
                figures.lock().unwrap().frames_out += 1;
                gst::PadProbeReturn::Ok
            },
        );
    }
    let bus = pipeline.bus().unwrap();
    if pipeline.set_state(gst::State::Playing).is_err() {
        let why = bus
            .timed_pop_filtered(gst::ClockTime::from_seconds(5), &[gst::MessageType::Error])
            .map(|m| format!("{m:?}"));
        panic!("{task} does not start: {why:?}");
    }
    let mut counted_out = 0;
    loop {
        let out = figures.lock().unwrap().frames_out;
        shared
            .frames_out
            .fetch_add(out - counted_out, Ordering::Relaxed);
        counted_out = out;
        shared.progress.set(
            &task,
            format!(
                "{out} of {} frames out; elements: {}",
                config.frames,
                element_states(&pipeline)
            ),
        );
        if shared.abort.load(Ordering::Relaxed) {
            figures.lock().unwrap().error = Some("stopped past the deadline".into());
            break;
        }
        let Some(msg) = bus.timed_pop_filtered(
            gst::ClockTime::from_mseconds(100),
            &[
                gst::MessageType::Eos,
                gst::MessageType::Error,
                gst::MessageType::Warning,
            ],
        ) else {
            continue;
        };
        match msg.view() {
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => {
                figures.lock().unwrap().error = Some(format!("{task}: {}", e.error()));
                break;
            }
            gst::MessageView::Warning(w) => {
                eprintln!("{task}: warning: {}", w.error());
                figures.lock().unwrap().warnings += 1;
            }
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
    let out = figures.lock().unwrap().frames_out;
    shared
        .frames_out
        .fetch_add(out - counted_out, Ordering::Relaxed);
    let mut taken = std::mem::take(&mut *figures.lock().unwrap());
    taken.ended_at = shared.started.elapsed();
    shared.pipelines_running.fetch_sub(1, Ordering::Relaxed);
    shared.progress.done(&task);
    taken
}

/// Each element's state, `name:STATE` (`->PENDING` while it changes).
fn element_states(pipeline: &gst::Pipeline) -> String {
    let mut states = Vec::new();
    for e in pipeline.iterate_elements().into_iter().flatten() {
        let (_, current, pending) = e.state(gst::ClockTime::ZERO);
        let pending = if pending == gst::State::VoidPending {
            String::new()
        } else {
            format!("->{pending:?}")
        };
        states.push(format!("{}:{current:?}{pending}", e.name()));
    }
    states.join(" ")
}

/// One writer's runs of `corpus add`.
#[derive(Default)]
struct WriterFigures {
    runs: usize,
    failures: Vec<String>,
    reported_frames: u64,
}

/// Frames a `corpus add` summary reports: "... N videos added (F frames".
fn reported_frames(stderr: &str) -> u64 {
    stderr
        .lines()
        .filter_map(|l| {
            l.split_once("videos added (")?
                .1
                .split_once(" frames")
                .map(|(n, _)| n)
        })
        .filter_map(|n| n.trim().parse::<u64>().ok())
        .sum()
}

/// Runs `corpus add` until it exits successfully (at most `max_writer_runs`
/// times), as a service manager restarts a worker.
fn run_writer(
    config: &LoadConfig,
    uri: &str,
    clips: &[String],
    shared: &Shared,
    writer: usize,
) -> WriterFigures {
    let task = format!("writer {writer}");
    let mut figures = WriterFigures::default();
    while figures.runs < config.max_writer_runs && !shared.abort.load(Ordering::Relaxed) {
        figures.runs += 1;
        // Standard error to a file: a pipe nobody reads while the process
        // runs would stop it once full.
        let log = config
            .work_dir
            .join(format!("writer-{writer}-run-{}.log", figures.runs));
        let mut child: Child = Command::new(&config.gst_dreamsim)
            .args(["corpus", "add", "--index", uri, "--model"])
            .arg(&config.model)
            .args(["--provider", "cpu", "--threads", "1", "--rate"])
            .arg(config.rate.to_string())
            .args(clips)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", config.gst_dreamsim.display()));
        shared.writers_running.fetch_add(1, Ordering::Relaxed);
        let since = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            if shared.abort.load(Ordering::Relaxed) {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            shared.progress.set(
                &task,
                format!(
                    "run {} (pid {}) running for {:.1} s, standard error in {}",
                    figures.runs,
                    child.id(),
                    since.elapsed().as_secs_f64(),
                    log.display()
                ),
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        shared.writers_running.fetch_sub(1, Ordering::Relaxed);
        let stderr = std::fs::read_to_string(&log).unwrap_or_default();
        figures.reported_frames += reported_frames(&stderr);
        match status {
            Some(s) if s.success() => break,
            Some(s) => {
                let tail: Vec<&str> = stderr.lines().rev().take(3).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                figures.failures.push(format!(
                    "writer {writer} run {}: {s}: {}",
                    figures.runs,
                    tail.join(" | ")
                ));
                std::thread::sleep(Duration::from_millis(200));
            }
            None => figures.failures.push(format!(
                "writer {writer} run {}: stopped past the deadline",
                figures.runs
            )),
        }
    }
    shared.progress.done(&task);
    figures
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i].as_secs_f64() * 1e3
}

/// What the server's sessions on `db` are doing (for a run that does not end).
fn server_sessions(server: &str, db: &str) -> String {
    let Ok(mut c) = postgres::Client::connect(server, postgres::NoTls) else {
        return "server unreachable".into();
    };
    c.query(
        "SELECT application_name, state, coalesce(wait_event_type, '') || ':' || \
         coalesce(wait_event, ''), left(query, 80) FROM pg_stat_activity WHERE datname = $1",
        &[&db],
    )
    .map(|rows| {
        rows.iter()
            .map(|r| {
                format!(
                    "  [{}] {} waiting on {}: {}",
                    r.get::<_, Option<String>>(0).unwrap_or_default(),
                    r.get::<_, Option<String>>(1).unwrap_or_default(),
                    r.get::<_, Option<String>>(2).unwrap_or_default(),
                    r.get::<_, Option<String>>(3).unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    })
    .unwrap_or_else(|e| e.to_string())
}

/// What the writers left in the database: (videos recorded, entries
/// acknowledged, entries present).
fn corpus_entries(uri: &str) -> (usize, u64, u64) {
    let mut c = postgres::Client::connect(uri, postgres::NoTls).unwrap();
    let rows = c
        .query(
            "SELECT v.frames, (SELECT count(*) FROM dreamsim_entries e
                               WHERE starts_with(e.content_hash, v.id || '@'))
             FROM dreamsim_corpus_videos v",
            &[],
        )
        .unwrap();
    let acknowledged: i64 = rows.iter().map(|r| r.get::<_, i64>(0)).sum();
    let present: i64 = rows
        .iter()
        .map(|r| r.get::<_, i64>(1).min(r.get::<_, i64>(0)))
        .sum();
    (rows.len(), acknowledged as u64, present as u64)
}

/// Runs the load and measures it. Panics past the deadline, with what was
/// still waiting.
pub fn run(config: LoadConfig) -> LoadReport {
    gst::init().unwrap();
    gstdreamsim::plugin_register_static().unwrap();
    // A database of its own: nothing else's tables are touched.
    let db = format!("pg_load_{}", std::process::id());
    let mut admin = postgres::Client::connect(&config.server, postgres::NoTls).unwrap();
    // One statement each: DROP DATABASE cannot run in a transaction block.
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
        .unwrap();
    admin
        .batch_execute(&format!("CREATE DATABASE {db}"))
        .unwrap();
    drop(admin);
    let uri = database_uri(&config.server, &db);
    {
        let mut c = postgres::Client::connect(&uri, postgres::NoTls).unwrap();
        c.batch_execute("CREATE EXTENSION IF NOT EXISTS vector")
            .unwrap();
    }
    make_set(&config, &uri);
    let clips = Arc::new(make_clips(&config));
    let total_frames = config.frames * config.pipelines.min(PATTERNS.len()) as u64;

    let config = Arc::new(config);
    let uri = Arc::new(uri);
    let shared = Arc::new(Shared {
        progress: Progress::default(),
        abort: AtomicBool::new(false),
        frames_out: AtomicU64::new(0),
        writers_running: AtomicU64::new(0),
        pipelines_running: AtomicU64::new(config.pipelines.min(PATTERNS.len()) as u64),
        started: Instant::now(),
    });
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let restart = {
        let (config, shared, done_tx) = (config.clone(), shared.clone(), done_tx.clone());
        std::thread::spawn(move || {
            shared
                .progress
                .set("restart", "waiting for its moment".into());
            let at = (total_frames as f64 * config.restart_at) as u64;
            while shared.frames_out.load(Ordering::Relaxed) < at {
                // Pipelines that all ended early (an error): no restart.
                if shared.abort.load(Ordering::Relaxed)
                    || shared.pipelines_running.load(Ordering::Relaxed) == 0
                {
                    shared.progress.done("restart");
                    let _ = done_tx.send(());
                    return None;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let began = shared.started.elapsed();
            let writers = shared.writers_running.load(Ordering::Relaxed) as usize;
            shared
                .progress
                .set("restart", "restarting the server".into());
            let t = Instant::now();
            let result = (config.restart)();
            let took = t.elapsed();
            shared.progress.done("restart");
            let _ = done_tx.send(());
            Some((began, took, writers, result))
        })
    };
    let pipelines: Vec<_> = PATTERNS
        .iter()
        .take(config.pipelines)
        .map(|p| {
            let (config, uri, shared, done_tx) =
                (config.clone(), uri.clone(), shared.clone(), done_tx.clone());
            std::thread::spawn(move || {
                let f = run_pipeline(&config, &uri, &shared, p);
                let _ = done_tx.send(());
                f
            })
        })
        .collect();
    let writers: Vec<_> = (0..config.writers)
        .map(|w| {
            let (config, uri, shared, done_tx, clips) = (
                config.clone(),
                uri.clone(),
                shared.clone(),
                done_tx.clone(),
                clips.clone(),
            );
            std::thread::spawn(move || {
                let f = run_writer(&config, &uri, &clips, &shared, w);
                let _ = done_tx.send(());
                f
            })
        })
        .collect();
    drop(done_tx);
    // Every task says when it ends; past the deadline, what is still
    // running is reported and stopped.
    let tasks = 1 + pipelines.len() + writers.len();
    let deadline = shared.started + config.deadline;
    let mut ended = 0;
    let mut stuck = None;
    while ended < tasks {
        let left = deadline.saturating_duration_since(Instant::now());
        match done_rx.recv_timeout(left) {
            Ok(()) => ended += 1,
            Err(_) => {
                stuck = Some(format!(
                    "the load test did not end within {:?}; still running:\n  {}\n\
                     the server's sessions on {db}:\n{}",
                    config.deadline,
                    shared.progress.unfinished().join("\n  "),
                    server_sessions(&config.server, &db)
                ));
                shared.abort.store(true, Ordering::Relaxed);
                break;
            }
        }
    }
    if let Some(why) = stuck {
        // The tasks stop within a second of the flag; then fail.
        std::thread::sleep(Duration::from_secs(1));
        panic!("{why}");
    }
    let seconds = shared.started.elapsed().as_secs_f64();
    let figures: Vec<PipelineFigures> = pipelines.into_iter().map(|p| p.join().unwrap()).collect();
    let written: Vec<WriterFigures> = writers.into_iter().map(|w| w.join().unwrap()).collect();
    let restarted = restart.join().unwrap();

    let (videos_recorded, acknowledged, present) = corpus_entries(&uri);
    let mut admin = postgres::Client::connect(&config.server, postgres::NoTls).unwrap();
    let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"));

    let mut latencies: Vec<Duration> = figures.iter().flat_map(|f| f.latencies.clone()).collect();
    latencies.sort();
    let pipeline_seconds = figures
        .iter()
        .map(|f| f.ended_at.as_secs_f64())
        .fold(0.0, f64::max);
    // Lookups per whole second of the pipelines' run.
    let whole_seconds = (pipeline_seconds.floor() as usize).max(1);
    let mut per_second = vec![0u64; whole_seconds];
    for f in &figures {
        for at in &f.matched_at {
            if let Some(n) = per_second.get_mut(at.as_secs() as usize) {
                *n += 1;
            }
        }
    }
    let lookups: u64 = figures.iter().map(|f| f.matched_at.len() as u64).sum();
    let frames_in: u64 = figures.iter().map(|f| f.frames_in).sum();
    let frames_out: u64 = figures.iter().map(|f| f.frames_out).sum();
    let (restart_at_s, restart_seconds, writers_running_at_restart, restart_error) = match restarted
    {
        Some((began, took, writers, result)) => (
            began.as_secs_f64(),
            took.as_secs_f64(),
            writers,
            result.err(),
        ),
        None => (f64::NAN, f64::NAN, 0, None),
    };
    if let Some(e) = restart_error {
        panic!("the server could not be restarted: {e}");
    }
    LoadReport {
        seconds,
        pipeline_seconds,
        lookups,
        lookups_per_s: lookups as f64 / pipeline_seconds.max(1e-9),
        lowest_lookups_in_a_second: per_second.iter().copied().min().unwrap_or(0),
        p50_ms: percentile(&latencies, 0.5),
        p99_ms: percentile(&latencies, 0.99),
        max_ms: latencies.last().map_or(0.0, |d| d.as_secs_f64() * 1e3),
        frames_in,
        frames_out,
        frames_lost: frames_in.saturating_sub(frames_out),
        frames_unmatched: figures.iter().map(|f| f.unmatched).sum(),
        matcher_warnings: figures.iter().map(|f| f.warnings).sum(),
        pipeline_errors: figures.iter().filter_map(|f| f.error.clone()).collect(),
        restart_at_s,
        restart_seconds,
        writers_running_at_restart,
        writer_runs: written.iter().map(|w| w.runs).sum(),
        writer_failed_runs: written.iter().map(|w| w.failures.len()).sum(),
        writer_failures: written.iter().flat_map(|w| w.failures.clone()).collect(),
        videos: clips.len(),
        videos_recorded,
        entries_acknowledged: acknowledged,
        entries_present: present,
        entries_lost: acknowledged - present,
        entries_reported_by_writers: written.iter().map(|w| w.reported_frames).sum(),
    }
}

/// Restarts the test server with `tools/pg_test_server.sh restart`.
pub fn restart_test_server(repo: PathBuf) -> Restart {
    Box::new(move || {
        let out = Command::new(repo.join("tools/pg_test_server.sh"))
            .arg("restart")
            .current_dir(&repo)
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "tools/pg_test_server.sh restart: {}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    })
}
