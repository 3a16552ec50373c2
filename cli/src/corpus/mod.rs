//! `gst-dreamsim corpus`: video dedup jobs across a library.
//!
//! `corpus add` fingerprints videos (frames sampled at a rate and at scene
//! starts, embedded by `dreamsim`) into an embedding index; `corpus match`
//! finds, through the index's nearest-neighbour search, which videos share
//! frames, scores each candidate pair with vPDQ's two shares and lists the
//! matched segments. See docs/corpus.md.
//!
//! Modules: `fingerprint` (the GStreamer side), `store` (the list of
//! complete videos beside the index), `pairing` (shares and segments, pure
//! arithmetic).

pub(crate) mod evaluate;
pub(crate) mod fingerprint;
mod pairing;
mod pgjobs;
mod report;
pub(crate) use report::Thumbnailer;
mod store;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use dreamsim_index::{
    self as index, EmbeddingIndex, IndexError, IndexOptions, Match, ModelIdentity, NewEntry, Source,
};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::common::CommonArgs;
use crate::output::{csv_row, text_cell, Output};
use crate::untrusted;
use crate::values;
use crate::{Error, PROGRAM};
use fingerprint::{Fingerprint, Sampling};
use pairing::{FrameMatch, PairScore, Segment, SegmentRules};
use store::{VideoList, VideoRecord};

/// Default sampling rate, frames per second (vPDQ's).
pub const DEFAULT_RATE: f64 = 1.0;
/// Default largest DreamSim distance between two frames that match.
pub const DEFAULT_FRAME_DISTANCE: f64 = 0.1;
/// Default smallest query share (percent) of a match (ThreatExchange's vPDQ threshold).
pub const DEFAULT_QUERY_SHARE: f64 = 80.0;
/// Default smallest candidate share (percent) of a match.
pub const DEFAULT_CANDIDATE_SHARE: f64 = 0.0;
/// Default longest gap (seconds) inside a segment.
pub const DEFAULT_MAX_GAP: f64 = 3.0;
/// Default shortest segment reported (seconds).
pub const DEFAULT_MIN_DURATION: f64 = 2.0;
/// Default neighbours fetched per frame (doubled while they are all within
/// the frame distance).
pub const DEFAULT_NEIGHBOURS: usize = 32;
/// Default stall limit, seconds: no frame decoded for this long fails a video.
pub const DEFAULT_STALL_TIMEOUT: u64 = 60;
/// Default time after which a PostgreSQL job claim is taken again, seconds.
pub const DEFAULT_RECLAIM_AFTER: u64 = 3600;
/// Most neighbours fetched per frame.
const MAX_NEIGHBOURS: usize = 4096;

/// Video dedup across a library: fingerprints in an index, pairs with shares and segments
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    gst-dreamsim corpus add --index library.dsindex videos/*.mp4\n  \
    gst-dreamsim corpus match --index library.dsindex --html report.html > pairs.csv\n\n\
    See docs/corpus.md.")]
pub struct Args {
    #[command(subcommand)]
    command: CorpusCommand,
}

#[derive(Debug, clap::Subcommand)]
enum CorpusCommand {
    Add(AddArgs),
    Match(MatchArgs),
    Evaluate(evaluate::EvaluateArgs),
}

/// Options of how videos are sampled, shared by add and match.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Sampling options")]
struct SamplingArgs {
    /// Frames sampled per second of video (plus every scene start)
    #[arg(long, value_name = "FPS", default_value_t = DEFAULT_RATE,
          value_parser = values::rate)]
    rate: f64,

    /// Do not also sample the first frame of every scene
    #[arg(long)]
    no_scene_starts: bool,

    /// A video during which no frame is decoded for S seconds (model
    /// loading included) fails as stalled
    #[arg(long, value_name = "S", default_value_t = DEFAULT_STALL_TIMEOUT,
          value_parser = values::u64_in(1, values::MAX_TIMEOUT_S))]
    stall_timeout: u64,
}

impl SamplingArgs {
    /// The sampling; the parser has held the rate and the timeout to
    /// their ranges (`values`).
    fn sampling(&self) -> Sampling {
        Sampling {
            period_ns: (1e9 / self.rate).round() as u64,
            scene_starts: !self.no_scene_starts,
            stall: Duration::from_secs(self.stall_timeout.max(1)),
        }
    }
}

/// Fingerprint videos into an index (skips videos already there)
///
/// Each video is decoded (decodebin), its frames sampled at --rate and at
/// scene starts, embedded by the dreamsim element, and stored in the index
/// with the video's path and each frame's time. A video's frames are added
/// in one all-or-nothing step and the video is recorded as complete after
/// it: an interrupted job leaves no half-added video, and running it again
/// continues where it stopped. Videos that fail are reported and the job
/// goes on; the exit status is 1 when any failed.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    gst-dreamsim corpus add --index library.dsindex videos/*.mp4\n  \
    gst-dreamsim corpus add --index library.dsindex --manifest list.txt --workers 2")]
struct AddArgs {
    /// Video files
    #[arg(required_unless_present = "manifest")]
    videos: Vec<String>,

    /// A file listing videos, one path per line (empty lines and lines
    /// starting with # are skipped)
    #[arg(long, value_name = "FILE")]
    manifest: Option<PathBuf>,

    /// The index: a file (created when missing; the list of complete videos
    /// is kept beside it in INDEX.videos.json)
    #[arg(long, value_name = "INDEX")]
    index: String,

    /// PostgreSQL: a job claimed this long ago by a worker that has not
    /// finished it is taken again (the worker is taken to be gone), seconds
    #[arg(long, value_name = "S", default_value_t = DEFAULT_RECLAIM_AFTER,
          value_parser = values::u64_in(1, values::MAX_RECLAIM_S))]
    reclaim_after: u64,

    /// Videos decoded at the same time (each with its own pipeline and model)
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=64))]
    workers: u32,

    #[command(flatten)]
    graph: crate::args::GraphArgs,

    #[command(flatten)]
    sampling: SamplingArgs,

    #[command(flatten)]
    common: CommonArgs,
}

/// Pairs of videos that share frames: shares and matched segments
///
/// Without VIDEO, every video of the index against the others; with VIDEO,
/// those files (fingerprinted, not added) against the index. Candidates come
/// from each sampled frame's nearest neighbours in the index, never from
/// comparing all pairs. Per pair: the query share (percentage of the query's
/// sampled frames within --frame-distance of a frame of the candidate), the
/// candidate share (the other way), and the segments (time ranges of
/// constant offset in both videos). A pair is a match when both shares
/// reach their thresholds; only matches are listed unless --all.
#[derive(Debug, clap::Args)]
#[command(mut_arg("json", |a| a.help("Write a JSON document (pairs with their segments) instead of CSV")))]
#[command(after_help = "Examples:\n  \
    gst-dreamsim corpus match --index library.dsindex > pairs.csv\n  \
    gst-dreamsim corpus match --index library.dsindex --json new.mp4")]
struct MatchArgs {
    /// Videos to check against the index (not added to it)
    videos: Vec<String>,

    /// The index built by corpus add
    #[arg(long, value_name = "INDEX")]
    index: String,

    /// Largest DreamSim distance between two frames that match
    #[arg(long, value_name = "D", default_value_t = DEFAULT_FRAME_DISTANCE, help_heading = "Match options",
          value_parser = values::distance)]
    frame_distance: f64,

    /// Smallest query share of a match, percent (ThreatExchange flags vPDQ matches at 80)
    #[arg(long, value_name = "P", default_value_t = DEFAULT_QUERY_SHARE, help_heading = "Match options",
          value_parser = values::percent)]
    query_share: f64,

    /// Smallest candidate share of a match, percent
    #[arg(long, value_name = "P", default_value_t = DEFAULT_CANDIDATE_SHARE, help_heading = "Match options",
          value_parser = values::percent)]
    candidate_share: f64,

    /// Longest gap inside a segment, seconds
    #[arg(long, value_name = "S", default_value_t = DEFAULT_MAX_GAP, help_heading = "Match options",
          value_parser = values::seconds)]
    max_gap: f64,

    /// Shortest segment listed, seconds
    #[arg(long, value_name = "S", default_value_t = DEFAULT_MIN_DURATION, help_heading = "Match options",
          value_parser = values::seconds)]
    min_duration: f64,

    /// Nearest neighbours fetched per frame (doubled while all are within the distance)
    #[arg(long, value_name = "K", default_value_t = DEFAULT_NEIGHBOURS, help_heading = "Match options",
          value_parser = values::usize_in(1, MAX_NEIGHBOURS as u64))]
    neighbours: usize,

    /// List every candidate pair with a matched frame, not only matches
    #[arg(long, help_heading = "Match options")]
    all: bool,

    #[command(flatten)]
    search: crate::args::SearchArgs,

    #[command(flatten)]
    pub out: crate::args::OutputArgs,

    /// Also write a self-contained HTML page to FILE: per pair, matched
    /// frames side by side and a timeline of the segments
    #[arg(long, value_name = "FILE", help_heading = "Output options")]
    html: Option<PathBuf>,

    #[command(flatten)]
    sampling: SamplingArgs,

    #[command(flatten)]
    common: CommonArgs,
}

pub fn run(args: Args) -> Result<ExitCode, Error> {
    match args.command {
        CorpusCommand::Add(a) => add(a),
        CorpusCommand::Match(a) => match_videos(a),
        CorpusCommand::Evaluate(a) => evaluate::run(a),
    }
}

fn index_error(e: IndexError) -> Error {
    Error::Pipeline(e.to_string())
}

/// The identity of the model that made `fp`.
fn identity_of(common: &CommonArgs, fp: &Fingerprint) -> Result<ModelIdentity, Error> {
    let dim = fp.frames.first().map_or(0, |f| f.embedding.len());
    ModelIdentity::of_model_file(&common.model_path()?, &fp.model_kind, dim).map_err(index_error)
}

/// Checks that `identity` is the index's model.
fn check_identity(
    index: &dyn EmbeddingIndex,
    identity: &ModelIdentity,
    location: &str,
) -> Result<(), Error> {
    if index.identity() != identity {
        return Err(index_error(IndexError::ModelMismatch {
            location: index::redact(location),
            index: Box::new(index.identity().clone()),
            caller: Box::new(identity.clone()),
        }));
    }
    Ok(())
}

/// The videos named on the command line and in the manifest (read as an
/// untrusted file: a regular file of at most
/// [`untrusted::MAX_MANIFEST_BYTES`]).
fn inputs(videos: &[String], manifest: Option<&Path>) -> Result<Vec<String>, Error> {
    let mut all = videos.to_vec();
    if let Some(m) = manifest {
        let bytes = untrusted::read_capped(m, "a manifest", untrusted::MAX_MANIFEST_BYTES)
            .map_err(|e| Error::untrusted_read(m, e))?;
        all.extend(untrusted::parse_manifest(&bytes).map_err(|e| Error::untrusted_parse(m, e))?);
    }
    Ok(all)
}

/// The files of an embedded index's corpus (the index and its list of
/// videos), none for PostgreSQL: outputs of `add`, inputs of `match`.
fn corpus_files(index: &str) -> Vec<PathBuf> {
    if index::is_postgres_location(index) {
        return Vec::new();
    }
    vec![PathBuf::from(index), store::list_path(index)]
}

/// What a worker made of one video.
enum Outcome {
    Fingerprinted { id: String, fp: Fingerprint },
    Known { id: String },
    Failed { reason: String },
}

/// Hashes and fingerprints one video unless its id is in `known`.
fn process(
    path: &str,
    known: &HashSet<String>,
    common: &CommonArgs,
    sampling: Sampling,
    decoded: &Arc<AtomicU64>,
) -> Outcome {
    let failed = |reason: String| Outcome::Failed { reason };
    match std::fs::metadata(path) {
        Err(e) => return failed(e.to_string()),
        Ok(m) if m.is_dir() => return failed("a directory, not a video file".into()),
        // A FIFO or a device would block the hashing or never end.
        Ok(m) if !m.is_file() => {
            return failed(format!(
                "{}, not a regular file",
                untrusted::file_kind(m.file_type())
            ))
        }
        Ok(m) if m.len() == 0 => return failed("empty file (0 bytes)".into()),
        Ok(_) => {}
    }
    let id = match index::file_sha256(path.as_ref()) {
        Ok(id) => id,
        Err(e) => return failed(e.to_string()),
    };
    if known.contains(&id) {
        return Outcome::Known { id };
    }
    match fingerprint::fingerprint(path, common, sampling, decoded, || {}) {
        Ok(fp) => Outcome::Fingerprinted { id, fp },
        Err(Error::Input { reason, .. }) => failed(reason),
        Err(e) => failed(e.to_string()),
    }
}

/// A line on standard error above the bar (also when the bar is hidden).
fn say(bar: &ProgressBar, line: String) {
    bar.suspend(|| eprintln!("{line}"));
}

/// The progress bar of a job over many videos: videos done of all, frames
/// per second, an ETA.
fn videos_bar(total: usize, show: bool) -> ProgressBar {
    let bar = if show && std::io::stderr().is_terminal() {
        ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr())
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix} {bar:16} {pos}/{len} videos [{elapsed}, ETA {eta}] {wide_msg}",
        )
        .expect("a valid template"),
    );
    bar.set_prefix("corpus");
    if !bar.is_hidden() {
        bar.enable_steady_tick(Duration::from_millis(200));
    }
    bar
}

fn add(args: AddArgs) -> Result<ExitCode, Error> {
    let sampling = args.sampling.sampling();
    let videos = inputs(&args.videos, args.manifest.as_deref())?;
    let mut read = args.common.input_files();
    read.extend(videos.iter().cloned());
    read.extend(
        args.manifest
            .iter()
            .map(|m| m.to_string_lossy().into_owned()),
    );
    let written = corpus_files(&args.index);
    crate::overwrite::refuse_overwrite(
        read,
        &written
            .iter()
            .map(|p| ("--index", Some(p.as_path())))
            .collect::<Vec<_>>(),
    )?;
    let mut list = VideoList::open(&args.index)?;
    let known: HashSet<String> = list.videos().map(|v| v.id.clone()).collect();
    let bar = videos_bar(videos.len(), !args.common.quiet);
    let started = Instant::now();
    let decoded = Arc::new(AtomicU64::new(0));

    // Workers fingerprint; this thread alone writes the index and the list.
    // On PostgreSQL the videos are jobs in the database, claimed by the
    // workers of every process that runs against it.
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "host".into());
    let on_pg = list.pg().is_some();
    if let Some(pg) = list.pg() {
        pg.enqueue(&videos)?;
        pg.retry_failed(&videos)?;
        let released = pg.release_dead_local(&host)?;
        if released > 0 {
            eprintln!(
                "{PROGRAM}: {released} video(s) left running by a process of this machine that \
                 is gone: taken again"
            );
        }
        bar.set_length(pg.open_jobs()? as u64);
    }
    let next = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpsc::channel::<(String, Outcome)>();
    let videos = Arc::new(videos);
    let known = Arc::new(known);
    let reclaim = Duration::from_secs(args.reclaim_after.max(1));
    let worker_count = if on_pg {
        args.workers
    } else {
        args.workers.min(videos.len().max(1) as u32)
    };
    let workers: Vec<_> = (0..worker_count)
        .map(|n| {
            let (next, tx, videos, known) =
                (next.clone(), tx.clone(), videos.clone(), known.clone());
            let (common, decoded) = (args.common.clone(), decoded.clone());
            let location = args.index.clone();
            let worker = format!("{host}:{}:{n}", std::process::id());
            std::thread::spawn(move || {
                let mut pg = if on_pg {
                    match pgjobs::PgCorpus::connect(&location) {
                        Ok(pg) => Some(pg),
                        Err(e) => {
                            let _ = tx.send((
                                String::new(),
                                Outcome::Failed {
                                    reason: e.to_string(),
                                },
                            ));
                            return;
                        }
                    }
                } else {
                    None
                };
                loop {
                    let path = match &mut pg {
                        Some(pg) => match pg.claim(&worker, reclaim) {
                            Ok(Some(p)) => p,
                            Ok(None) => break,
                            Err(e) => {
                                let _ = tx.send((
                                    String::new(),
                                    Outcome::Failed {
                                        reason: e.to_string(),
                                    },
                                ));
                                break;
                            }
                        },
                        None => {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            let Some(path) = videos.get(i) else { break };
                            path.clone()
                        }
                    };
                    let outcome = process(&path, &known, &common, sampling, &decoded);
                    if tx.send((path, outcome)).is_err() {
                        break;
                    }
                }
            })
        })
        .collect();
    drop(tx);

    let mut index: Option<Box<dyn EmbeddingIndex>> = None;
    let (mut added, mut frames_added, mut skipped) = (0usize, 0usize, 0usize);
    let mut model_runs = 0u64;
    let mut failures: Vec<(String, String)> = Vec::new();
    // Added, but the frames stop before the declared end / change size.
    let mut incomplete: Vec<(String, String)> = Vec::new();
    let mut resized: Vec<(String, String)> = Vec::new();
    let status = |done: usize, frames: usize| {
        let secs = started.elapsed().as_secs_f64().max(1e-9);
        format!(
            "{frames} frames stored, {:.1} frames/s decoded, {:.0} videos/h",
            decoded.load(Ordering::Relaxed) as f64 / secs,
            done as f64 * 3600.0 / secs
        )
    };
    let mut done = 0usize;
    let result: Result<(), Error> = loop {
        let (path, outcome) = match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(m) => m,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                bar.set_message(status(done, frames_added));
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break Ok(()),
        };
        let path = &path;
        done += 1;
        match outcome {
            Outcome::Known { id } => {
                skipped += 1;
                if let Some(pg) = list.pg() {
                    pg.done(path)?;
                }
                let as_ = list
                    .get(&id)
                    .map_or(String::new(), |v| format!(" as {}", v.path));
                if !args.common.quiet {
                    say(
                        &bar,
                        format!("{PROGRAM}: {path}: already in the corpus{as_}: skipped"),
                    );
                }
            }
            Outcome::Failed { reason } => {
                say(&bar, format!("{PROGRAM}: {path}: failed: {reason}"));
                if let Some(pg) = list.pg() {
                    if !path.is_empty() {
                        pg.fail(path, &reason)?;
                    }
                }
                failures.push((path.clone(), reason));
            }
            Outcome::Fingerprinted { id, fp } => {
                if let Some(v) = list.get(&id).cloned() {
                    skipped += 1;
                    if let Some(pg) = list.pg() {
                        pg.done(path)?;
                    }
                    if !args.common.quiet {
                        say(
                            &bar,
                            format!("{PROGRAM}: {path}: same content as {}: skipped", v.path),
                        );
                    }
                } else {
                    match store_video(&args, &mut index, &mut list, path, id, &fp) {
                        Ok(n) => {
                            added += 1;
                            frames_added += n;
                            model_runs += fp.model_runs;
                        }
                        Err(e) => break Err(e),
                    }
                    // Added, with what the frames do not show.
                    if let Some(why) = fp.incomplete() {
                        say(&bar, format!("{PROGRAM}: {path}: incomplete: {why}"));
                        incomplete.push((path.clone(), why));
                    }
                    if let Some(note) = fp.resolution_note() {
                        if !args.common.quiet {
                            say(
                                &bar,
                                format!("{PROGRAM}: {path}: resolution change: {note}"),
                            );
                        }
                        resized.push((path.clone(), note));
                    }
                }
            }
        }
        bar.inc(1);
        bar.set_message(status(done, frames_added));
    };
    // On an index error the workers stop after their current video.
    next.store(usize::MAX / 2, Ordering::Relaxed);
    drop(rx);
    for w in workers {
        let _ = w.join();
    }
    bar.finish_and_clear();
    result?;

    if !args.common.quiet || !failures.is_empty() || !incomplete.is_empty() {
        eprintln!(
            "{PROGRAM}: corpus add: {added} videos added ({frames_added} frames, {model_runs} \
             model runs; {} incomplete, {} with a resolution change), {skipped} already in the \
             corpus, {} failed, {:.1} s; the corpus has {} videos",
            incomplete.len(),
            resized.len(),
            failures.len(),
            started.elapsed().as_secs_f64(),
            list.len()
        );
        for (path, reason) in &failures {
            eprintln!("{PROGRAM}:   failed: {path}: {reason}");
        }
        for (path, why) in &incomplete {
            eprintln!("{PROGRAM}:   incomplete (added): {path}: {why}");
        }
        if !args.common.quiet {
            for (path, note) in &resized {
                eprintln!("{PROGRAM}:   resolution change (added): {path}: {note}");
            }
        }
    }
    // A damaged file is bad input even when a part of it was added.
    Ok(if failures.is_empty() && incomplete.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Adds a fingerprinted video's frames in one step, then records the video.
/// Returns the number of frames stored.
fn store_video(
    args: &AddArgs,
    index: &mut Option<Box<dyn EmbeddingIndex>>,
    list: &mut VideoList,
    path: &str,
    id: String,
    fp: &Fingerprint,
) -> Result<usize, Error> {
    let identity = identity_of(&args.common, fp)?;
    if index.is_none() {
        let options = IndexOptions {
            create: true,
            ..args.graph.apply(IndexOptions::default())
        };
        let opened = index::open(&args.index, Some(&identity), &options).map_err(index_error)?;
        *index = Some(opened);
    }
    let idx = index.as_mut().expect("opened above");
    check_identity(idx.as_ref(), &identity, &args.index)?;
    let name = Path::new(path)
        .file_name()
        .map_or_else(|| path.to_owned(), |n| n.to_string_lossy().into_owned());
    let entries: Vec<NewEntry<'_>> = fp
        .frames
        .iter()
        .map(|f| NewEntry {
            label: format!(
                "{name} {}",
                crate::output::timecode_ms(f.timestamp_ns / 1_000_000)
            ),
            source: Source::VideoFrame {
                path: path.to_owned(),
                timestamp_ns: f.timestamp_ns,
            },
            content_hash: store::frame_hash(&id, f.timestamp_ns),
            embedding: &f.embedding,
        })
        .collect();
    idx.add(&entries).map_err(index_error)?;
    list.record(VideoRecord {
        id,
        path: path.to_owned(),
        duration_ns: fp.duration_ns,
        frames: fp.frames.len(),
    })?;
    Ok(fp.frames.len())
}

/// A query video: its id (None for a file that is not in the corpus), path,
/// duration and sampled frames.
struct Query {
    id: Option<String>,
    path: String,
    duration_ns: u64,
    frames: Vec<(u64, Vec<f32>)>,
}

/// One row of the result.
#[derive(Debug, Serialize)]
struct PairRow {
    query: String,
    candidate: String,
    query_id: Option<String>,
    candidate_id: String,
    query_share: f64,
    candidate_share: f64,
    query_frames: usize,
    candidate_frames: usize,
    query_duration_s: f64,
    candidate_duration_s: f64,
    #[serde(rename = "match")]
    is_match: bool,
    segments: Vec<Segment>,
}

/// The `--json` document.
#[derive(Debug, Serialize)]
struct MatchDocument<'a> {
    index: String,
    frame_distance: f64,
    query_share: f64,
    candidate_share: f64,
    max_gap_s: f64,
    min_duration_s: f64,
    videos_in_index: usize,
    queries: usize,
    pairs: &'a [PairRow],
    failed: &'a [Failed],
}

#[derive(Debug, Serialize)]
struct Failed {
    video: String,
    reason: String,
}

/// The `k` nearest entries within `distance` of `query`, `k` doubled while
/// every neighbour fetched is within it.
fn neighbours(
    index: &mut dyn EmbeddingIndex,
    query: &[f32],
    distance: f64,
    k: usize,
) -> Result<Vec<Match>, Error> {
    let mut k = k.max(1);
    loop {
        let mut hits = index.search(query, k).map_err(index_error)?;
        let full = hits.len() == k && hits.last().is_some_and(|h| h.distance <= distance);
        if !full || k >= MAX_NEIGHBOURS {
            hits.retain(|h| h.distance <= distance);
            return Ok(hits);
        }
        k *= 2;
    }
}

/// Every complete video's frames, read from the index.
fn library_queries(index: &mut dyn EmbeddingIndex, list: &VideoList) -> Result<Vec<Query>, Error> {
    let mut by_video: BTreeMap<String, Vec<(u64, Vec<f32>)>> = BTreeMap::new();
    let mut after = None;
    loop {
        let page = index.entries_after(after, 1024).map_err(index_error)?;
        let Some(last) = page.last() else { break };
        after = Some(last.entry.id);
        for e in page {
            let (Some(video), Source::VideoFrame { timestamp_ns, .. }) =
                (store::video_of(&e.entry.content_hash), &e.entry.source)
            else {
                continue;
            };
            if list.get(video).is_some() {
                by_video
                    .entry(video.to_owned())
                    .or_default()
                    .push((*timestamp_ns, e.embedding));
            }
        }
    }
    Ok(by_video
        .into_iter()
        .map(|(id, mut frames)| {
            frames.sort_by_key(|f| f.0);
            let v = list.get(&id).expect("filtered above");
            Query {
                path: v.path.clone(),
                duration_ns: v.duration_ns,
                id: Some(id),
                frames,
            }
        })
        .collect())
}

fn match_videos(args: MatchArgs) -> Result<ExitCode, Error> {
    let sampling = args.sampling.sampling();
    let mut read = args.common.input_files();
    read.extend(args.videos.iter().cloned());
    read.extend(
        corpus_files(&args.index)
            .iter()
            .map(|p| p.to_string_lossy().into_owned()),
    );
    crate::overwrite::refuse_overwrite(
        read,
        &[
            ("--output", args.out.output.as_deref()),
            ("--html", args.html.as_deref()),
        ],
    )?;
    let list = VideoList::open(&args.index)?;
    let mut index = index::open(
        &args.index,
        None,
        &args.search.apply(IndexOptions::default()),
    )
    .map_err(index_error)?;
    let bar = videos_bar(args.videos.len().max(list.len()), !args.common.quiet);
    let started = Instant::now();

    let mut failed = Vec::new();
    let queries: Vec<Query> = if args.videos.is_empty() {
        library_queries(index.as_mut(), &list)?
    } else {
        let decoded = Arc::new(AtomicU64::new(0));
        let mut queries = Vec::new();
        for path in &args.videos {
            let fp = std::fs::metadata(path)
                .map_err(|e| Error::Input {
                    input: path.clone(),
                    reason: e.to_string(),
                })
                .and_then(|m| {
                    if !m.is_file() {
                        Err(Error::Input {
                            input: path.clone(),
                            reason: format!(
                                "{}, not a regular file",
                                untrusted::file_kind(m.file_type())
                            ),
                        })
                    } else if m.len() == 0 {
                        Err(Error::Input {
                            input: path.clone(),
                            reason: "empty file (0 bytes)".into(),
                        })
                    } else {
                        fingerprint::fingerprint(path, &args.common, sampling, &decoded, || {})
                    }
                });
            let fp = match fp {
                Ok(fp) => fp,
                Err(e) => {
                    let reason = match e {
                        Error::Input { reason, .. } => reason,
                        e => e.to_string(),
                    };
                    say(&bar, format!("{PROGRAM}: {path}: failed: {reason}"));
                    failed.push(Failed {
                        video: path.clone(),
                        reason,
                    });
                    continue;
                }
            };
            let notes = [
                fp.incomplete().map(|n| format!("incomplete: {n}")),
                fp.resolution_note()
                    .map(|n| format!("resolution change: {n}")),
            ];
            for note in notes.into_iter().flatten() {
                if !args.common.quiet {
                    say(&bar, format!("{PROGRAM}: {path}: {note}"));
                }
            }
            check_identity(
                index.as_ref(),
                &identity_of(&args.common, &fp)?,
                &args.index,
            )?;
            queries.push(Query {
                id: index::file_sha256(path.as_ref()).ok(),
                path: path.clone(),
                duration_ns: fp.duration_ns,
                frames: fp
                    .frames
                    .into_iter()
                    .map(|f| (f.timestamp_ns, f.embedding))
                    .collect(),
            });
        }
        queries
    };

    let rules = SegmentRules {
        period_ns: sampling.period_ns,
        max_gap_ns: (args.max_gap.max(0.0) * 1e9) as u64,
        min_duration_ns: (args.min_duration.max(0.0) * 1e9) as u64,
    };
    let library_mode = args.videos.is_empty();
    let mut scored: HashSet<String> = HashSet::new();
    let mut rows = Vec::new();
    for q in &queries {
        let mut per_candidate: HashMap<&str, Vec<FrameMatch>> = HashMap::new();
        for (i, (ts, embedding)) in q.frames.iter().enumerate() {
            for hit in neighbours(
                index.as_mut(),
                embedding,
                args.frame_distance,
                args.neighbours,
            )? {
                let Some(video) = store::video_of(&hit.entry.content_hash) else {
                    continue;
                };
                let Source::VideoFrame { timestamp_ns, .. } = hit.entry.source else {
                    continue;
                };
                if q.id.as_deref() == Some(video) || scored.contains(video) {
                    continue;
                }
                let Some(record) = list.get(video) else {
                    continue;
                };
                per_candidate
                    .entry(record.id.as_str())
                    .or_default()
                    .push(FrameMatch {
                        query_frame: i,
                        query_ns: *ts,
                        candidate_ns: timestamp_ns,
                        distance: hit.distance,
                    });
            }
        }
        for (cid, matches) in per_candidate {
            let c = list.get(cid).expect("looked up above");
            let s: PairScore = pairing::score(
                &matches,
                q.frames.len(),
                c.frames,
                q.duration_ns,
                c.duration_ns,
                &rules,
            );
            // Between two library videos, the one with the larger share is
            // the query: a clip of a longer video is found as "clip in video".
            let swap = library_mode && s.candidate_share > s.query_share;
            let row = if swap {
                PairRow {
                    query: c.path.clone(),
                    candidate: q.path.clone(),
                    query_id: Some(c.id.clone()),
                    candidate_id: q.id.clone().unwrap_or_default(),
                    query_share: s.candidate_share,
                    candidate_share: s.query_share,
                    query_frames: c.frames,
                    candidate_frames: q.frames.len(),
                    query_duration_s: c.duration_ns as f64 / 1e9,
                    candidate_duration_s: q.duration_ns as f64 / 1e9,
                    is_match: false,
                    segments: s.segments.iter().map(Segment::swapped).collect(),
                }
            } else {
                PairRow {
                    query: q.path.clone(),
                    candidate: c.path.clone(),
                    query_id: q.id.clone(),
                    candidate_id: c.id.clone(),
                    query_share: s.query_share,
                    candidate_share: s.candidate_share,
                    query_frames: q.frames.len(),
                    candidate_frames: c.frames,
                    query_duration_s: q.duration_ns as f64 / 1e9,
                    candidate_duration_s: c.duration_ns as f64 / 1e9,
                    is_match: false,
                    segments: s.segments,
                }
            };
            let is_match =
                row.query_share >= args.query_share && row.candidate_share >= args.candidate_share;
            if is_match || args.all {
                rows.push(PairRow { is_match, ..row });
            }
        }
        if library_mode {
            if let Some(id) = &q.id {
                scored.insert(id.clone());
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    rows.sort_by(|a, b| (&a.query, &a.candidate).cmp(&(&b.query, &b.candidate)));

    let mut out = Output::create(args.out.output.as_deref())?;
    if args.out.json {
        out.write_json(&MatchDocument {
            index: index::redact(&args.index),
            frame_distance: args.frame_distance,
            query_share: args.query_share,
            candidate_share: args.candidate_share,
            max_gap_s: args.max_gap,
            min_duration_s: args.min_duration,
            videos_in_index: list.len(),
            queries: queries.len(),
            pairs: &rows,
            failed: &failed,
        })?;
    } else {
        out.write(|w| write_csv(w, &rows))?;
    }
    out.finish()?;
    if let Some(html) = &args.html {
        report::write(html, &rows, &index::redact(&args.index))?;
    }
    if !args.common.quiet {
        eprintln!(
            "{PROGRAM}: corpus match: {} queries against {} videos, {} pairs listed ({} matches), \
             {:.1} s",
            queries.len(),
            list.len(),
            rows.len(),
            rows.iter().filter(|r| r.is_match).count(),
            started.elapsed().as_secs_f64()
        );
    }
    for f in &failed {
        eprintln!("{PROGRAM}:   failed: {}: {}", f.video, f.reason);
    }
    Ok(if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// One row per pair; segments as `qstart-qend>cstart-cend` in seconds,
/// separated by `;`.
fn write_csv(w: &mut dyn Write, rows: &[PairRow]) -> std::io::Result<()> {
    csv_row(
        w,
        [
            "query",
            "candidate",
            "query_share",
            "candidate_share",
            "query_frames",
            "candidate_frames",
            "match",
            "segments",
        ],
    )?;
    for r in rows {
        let segments: Vec<String> = r
            .segments
            .iter()
            .map(|s| {
                format!(
                    "{:.3}-{:.3}>{:.3}-{:.3}",
                    s.query_start_s, s.query_end_s, s.candidate_start_s, s.candidate_end_s
                )
            })
            .collect();
        csv_row(
            w,
            [
                text_cell(&r.query).into_owned(),
                text_cell(&r.candidate).into_owned(),
                format!("{:.1}", r.query_share),
                format!("{:.1}", r.candidate_share),
                r.query_frames.to_string(),
                r.candidate_frames.to_string(),
                r.is_match.to_string(),
                segments.join(";"),
            ],
        )?;
    }
    Ok(())
}
