//! `gst-dreamsim index`: build, inspect, query and copy embedding indexes
//! (sets of known images) that the `dreamsimmatch` element matches frames
//! against.
//!
//! The index itself is the index crate's (`dreamsim_index`): an embedded file
//! or a PostgreSQL + pgvector server addressed by a `postgresql://` URI.
//! Images are embedded with the engine directly; videos are decoded and
//! sampled through GStreamer (`uridecodebin ! videoconvert ! dreamsim !
//! fakesink`, the frames not sampled dropped in front of `dreamsim`), the
//! embeddings read from the sampled frames' `DreamSimMeta`.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use dreamsim::{Engine, Frame, Model, ModelOptions};
use dreamsim_index::{
    self as index, Added, EmbeddingIndex, IndexOptions, Match, ModelIdentity, NewEntry,
    Quantization, Source,
};
use gst::prelude::*;
use gstdreamsim::meta::DreamSimMeta;
use gstdreamsim::ModelSettings;
use serde::Serialize;

use crate::args::{GraphArgs, SearchArgs};
use crate::common::CommonArgs;
use crate::output::{text_cell, timecode, Output};
use crate::pipeline::{self, BusHandler};
use crate::progress::{Counter, Progress};
use crate::untrusted;
use crate::{Error, PROGRAM};

/// Entries given to the index in one `add`: an embedded index rewrites its
/// file (atomically) on every add, so an interrupted run loses at most the
/// batch being added, never the index.
const INDEX_BATCH: usize = 256;

/// Entries copied per page by export and import.
const COPY_BATCH: usize = 1000;

/// Image files read by the engine, by extension (lowercase).
const IMAGE_EXTENSIONS: &[&str] = &["png", "jpg", "jpeg", "bmp", "webp"];

/// Video files taken from folders, by extension (lowercase). A file named
/// on the command line with another extension is tried as a video too.
const VIDEO_EXTENSIONS: &[&str] = &[
    "mp4", "m4v", "mov", "mkv", "webm", "avi", "ogv", "ogg", "ts", "mts", "m2ts", "mpg", "mpeg",
    "flv", "wmv", "3gp", "y4m", "mxf",
];

/// Sets of known images for dreamsimmatch: add, remove, info, query, export, import, evaluate
///
/// An index is a file (embedded, the default) or a postgresql:// URI
/// (PostgreSQL with pgvector). It records the model its embeddings come
/// from: use the same model to add to it, query it and match against it.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    gst-dreamsim index add known.dsindex photos/ clip.mp4 --labels labels.csv\n  \
    gst-dreamsim index info known.dsindex\n  \
    gst-dreamsim index query known.dsindex suspect.jpg -k 3\n  \
    gst-dreamsim index export known.dsindex postgresql://user@db.example/sets\n  \
    gst-dreamsim index evaluate --truth truth.csv --max-distance 0.1 result.json\n\n\
    Exit status: 0 success, 1 error (add: a file could not be added; remove: an id was \
    not found), 2 usage error.")]
pub struct Args {
    #[command(subcommand)]
    pub command: IndexCommand,
}

/// The index operations.
#[derive(Debug, clap::Subcommand)]
pub enum IndexCommand {
    Add(AddArgs),
    Remove(RemoveArgs),
    Info(InfoArgs),
    Query(QueryArgs),
    Export(ExportArgs),
    Import(ImportArgs),
    Evaluate(crate::index_evaluate::EvaluateArgs),
}

/// Options for the index location.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Index options")]
pub struct LocationArgs {
    /// PostgreSQL table prefix: tables PREFIX_model and PREFIX_entries
    #[arg(long, value_name = "PREFIX", default_value = index::DEFAULT_PG_TABLE)]
    pub pg_table: String,
}

impl LocationArgs {
    fn options(&self) -> IndexOptions {
        IndexOptions {
            pg_table: self.pg_table.clone(),
            ..IndexOptions::default()
        }
    }
}

/// How frames of a video are chosen.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Video options")]
pub struct SamplingArgs {
    /// Take one frame every SECONDS of a video (the first frame, then the
    /// first at or after each multiple)
    #[arg(long, value_name = "SECONDS", default_value_t = 1.0,
          value_parser = crate::values::period, conflicts_with = "scenes")]
    pub every: f64,

    /// Take the first frame of each scene instead (found without the model,
    /// by the change test's thumbnails of consecutive frames; the model runs
    /// only on the scene starts)
    #[arg(long)]
    pub scenes: bool,
}

/// Add images and videos to an index (created on first use)
///
/// Image files (PNG, JPEG, BMP, WebP) and folders, searched recursively;
/// videos sampled every --every seconds or at scene starts. Content already
/// in the index (same file, or same video frame) is not added twice.
#[derive(Debug, clap::Args)]
pub struct AddArgs {
    /// Index file or postgresql:// URI
    pub index: String,

    /// Image files, video files and folders
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,

    /// CSV file of `path,label` rows (a header row `path,label` is
    /// allowed); files not in it are labelled with their file name
    #[arg(long, value_name = "FILE")]
    pub labels: Option<PathBuf>,

    /// Vector storage of a new embedded index: f16, i8 or f32
    #[arg(
        long,
        value_name = "Q",
        default_value = "f16",
        help_heading = "Index options"
    )]
    pub quantization: Quantization,

    #[command(flatten)]
    pub graph: GraphArgs,

    #[command(flatten)]
    pub sampling: SamplingArgs,

    #[command(flatten)]
    pub location: LocationArgs,

    #[command(flatten)]
    pub common: CommonArgs,
}

/// Remove entries by id
#[derive(Debug, clap::Args)]
pub struct RemoveArgs {
    /// Index file or postgresql:// URI
    pub index: String,

    /// Entry ids (as `query` and `info` show them)
    #[arg(required = true)]
    pub ids: Vec<u64>,

    /// Say nothing on standard error when all went well
    #[arg(short, long)]
    pub quiet: bool,

    #[command(flatten)]
    pub location: LocationArgs,
}

/// What an index holds: backend, location, model, entries, storage, size
#[derive(Debug, clap::Args)]
pub struct InfoArgs {
    /// Index file or postgresql:// URI
    pub index: String,

    /// Write a JSON document instead of text
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub location: LocationArgs,
}

/// The entries nearest to an image, or to sampled frames of a video
///
/// CSV on standard output: input,timestamp,rank,id,label,distance,source
/// (timestamp empty for an image), k rows per image or sampled frame.
#[derive(Debug, clap::Args)]
pub struct QueryArgs {
    /// Index file or postgresql:// URI
    pub index: String,

    /// Image or video files
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,

    /// Entries to return per image or frame, nearest first
    #[arg(short, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub k: u32,

    #[command(flatten)]
    pub out: crate::args::OutputArgs,

    #[command(flatten)]
    pub search: SearchArgs,

    #[command(flatten)]
    pub sampling: SamplingArgs,

    #[command(flatten)]
    pub location: LocationArgs,

    #[command(flatten)]
    pub common: CommonArgs,
}

/// Copy every entry of an index into another (created when missing)
///
/// Between files and PostgreSQL, either way; ids, labels, sources and times
/// are kept, content already in DEST is skipped.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// Index to read: file or postgresql:// URI
    pub index: String,

    /// Index to write: file or postgresql:// URI
    pub dest: String,

    #[command(flatten)]
    pub copy: CopyArgs,
}

/// Copy every entry of another index into this one (created when missing)
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// Index to write: file or postgresql:// URI
    pub index: String,

    /// Index to read: file or postgresql:// URI
    pub source: String,

    #[command(flatten)]
    pub copy: CopyArgs,
}

/// Options of export and import.
#[derive(Debug, clap::Args)]
pub struct CopyArgs {
    /// Vector storage of a new embedded destination [default: the source's]
    #[arg(long, value_name = "Q")]
    pub quantization: Option<Quantization>,

    /// PostgreSQL table prefix of the destination [default: --pg-table]
    #[arg(long, value_name = "PREFIX")]
    pub dest_pg_table: Option<String>,

    /// No progress bar or summary on standard error
    #[arg(short, long)]
    pub quiet: bool,

    #[command(flatten)]
    pub graph: GraphArgs,

    #[command(flatten)]
    pub location: LocationArgs,
}

pub fn run(args: Args) -> Result<ExitCode, Error> {
    match args.command {
        IndexCommand::Add(a) => add(a),
        IndexCommand::Remove(a) => remove(a),
        IndexCommand::Info(a) => info(a),
        IndexCommand::Query(a) => query(a),
        IndexCommand::Export(a) => copy(&a.index, &a.dest, &a.copy),
        IndexCommand::Import(a) => copy(&a.source, &a.index, &a.copy),
        IndexCommand::Evaluate(a) => crate::index_evaluate::run(a),
    }
}

// ---- the model

/// The tool's own model (images go through the engine) and the model of
/// the `dreamsim` element in each video's pipeline: one model, loaded once.
/// Both come from the same settings ([`CommonArgs::model_settings`]) and
/// batch ([`CommonArgs::max_batch`]), so that while a video's pipeline runs
/// ([`SharedModel::lend`]) its element takes this model from the process's
/// model pool instead of loading the file again.
pub(crate) struct SharedModel {
    /// `None` only while lent.
    engine: Option<Engine>,
    settings: ModelSettings,
    path: PathBuf,
    options: ModelOptions,
    identity: ModelIdentity,
    /// The options the video pipelines' `dreamsim` elements run with: the
    /// file the engine loaded and the engine's batch.
    element: CommonArgs,
}

impl SharedModel {
    /// Loads the model of the common options.
    pub(crate) fn load(common: &CommonArgs) -> Result<Self, Error> {
        let settings = common.model_settings();
        let runtime = dreamsim::runtime(settings.onnxruntime_location.as_deref())?;
        let path = common.model_path()?;
        let batch = common.max_batch();
        let options = settings.options(batch as usize);
        let model = Model::load(runtime, &path, &options)?;
        let identity = ModelIdentity::of_model(model.info())?;
        let mut element = common.clone();
        element.model = Some(model.info().path.clone());
        element.batch_size = Some(batch);
        Ok(Self {
            engine: Some(Engine::new(model)),
            settings,
            path,
            options,
            identity,
            element,
        })
    }

    /// The model's identity, as indexes record it.
    pub(crate) fn identity(&self) -> &ModelIdentity {
        &self.identity
    }

    /// The options a video pipeline's `dreamsim` element runs this model
    /// with (the file the engine loaded, the engine's batch).
    pub(crate) fn element_options(&self) -> &CommonArgs {
        &self.element
    }

    /// The engine itself, for a caller that keeps it (one per worker).
    pub(crate) fn into_engine(mut self) -> Engine {
        self.engine
            .take()
            .expect("the model is back after each lend")
    }

    /// The engine, for images.
    pub(crate) fn engine(&mut self) -> &mut Engine {
        self.engine
            .as_mut()
            .expect("the model is back after each lend")
    }

    /// Runs `video` (which builds its `dreamsim` element with the options it
    /// is given) with the model handed to the model pool meanwhile, where
    /// that element takes it; takes it back afterwards (or loads it again
    /// if the element did not give it back).
    pub(crate) fn lend<T>(&mut self, video: impl FnOnce(&CommonArgs) -> T) -> Result<T, Error> {
        if let Some(engine) = self.engine.take() {
            dreamsim::model_pool::give_back(&self.path, &self.options, engine.into_model());
        }
        let out = video(&self.element);
        let model = match dreamsim::model_pool::take(&self.path, &self.options) {
            Some(model) => model,
            None => {
                let runtime = dreamsim::runtime(self.settings.onnxruntime_location.as_deref())?;
                Model::load(runtime, &self.path, &self.options)?
            }
        };
        self.engine = Some(Engine::new(model));
        Ok(out)
    }
}

// ---- inputs

/// A path that could not be added, and why.
type Failure = (PathBuf, String);

/// What a path given to `add` or `query` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Image,
    Video,
}

fn extension(path: &Path) -> Option<String> {
    path.extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
}

/// An image by its extension; anything else named explicitly is tried as
/// a video.
pub(crate) fn kind_of_file(path: &Path) -> Kind {
    match extension(path) {
        Some(e) if IMAGE_EXTENSIONS.contains(&e.as_str()) => Kind::Image,
        _ => Kind::Video,
    }
}

/// A file found in a folder: images and videos by extension, the rest skipped.
pub(crate) fn kind_in_folder(path: &Path) -> Option<Kind> {
    let e = extension(path)?;
    if IMAGE_EXTENSIONS.contains(&e.as_str()) {
        Some(Kind::Image)
    } else if VIDEO_EXTENSIONS.contains(&e.as_str()) {
        Some(Kind::Video)
    } else {
        None
    }
}

/// The files to read, in order (folders walked in name order), and the
/// paths that could not be listed, with why.
fn collect_inputs(paths: &[PathBuf]) -> (Vec<(PathBuf, Kind)>, Vec<Failure>) {
    let mut files = Vec::new();
    let mut failed = Vec::new();
    for path in paths {
        if path.is_dir() {
            for entry in walkdir::WalkDir::new(path)
                .follow_links(true)
                .sort_by_file_name()
            {
                match entry {
                    Ok(e) if e.file_type().is_file() => {
                        let hidden = e.file_name().to_string_lossy().starts_with('.');
                        if let (false, Some(kind)) = (hidden, kind_in_folder(e.path())) {
                            files.push((e.into_path(), kind));
                        }
                    }
                    Ok(_) => {}
                    Err(e) => failed.push((
                        e.path().unwrap_or(path).to_owned(),
                        e.io_error()
                            .map(|io| io.to_string())
                            .unwrap_or_else(|| e.to_string()),
                    )),
                }
            }
        } else if path.is_file() {
            files.push((path.clone(), kind_of_file(path)));
        } else if let Ok(m) = std::fs::metadata(path) {
            // A FIFO or a device would block the reader or never end.
            let kind = untrusted::file_kind(m.file_type());
            failed.push((path.clone(), format!("{kind}, not a regular file")));
        } else {
            failed.push((path.clone(), "no such file or folder".into()));
        }
    }
    (files, failed)
}

/// Labels from a `path,label` CSV, by canonical path. Paths are relative to
/// the current directory, or else to the CSV's folder. The file is read
/// as an untrusted one (a regular file, at most
/// [`untrusted::MAX_LABELS_BYTES`], every row checked).
fn read_labels(csv_path: &Path) -> Result<HashMap<PathBuf, String>, Error> {
    let bytes = untrusted::read_capped(csv_path, "a labels CSV", untrusted::MAX_LABELS_BYTES)
        .map_err(|e| Error::untrusted_read(csv_path, e))?;
    let rows = untrusted::parse_labels(&bytes).map_err(|e| Error::untrusted_parse(csv_path, e))?;
    let base = csv_path.parent().unwrap_or(Path::new("."));
    let mut labels = HashMap::new();
    for row in rows {
        let path = Path::new(&row.path);
        let found = std::fs::canonicalize(path)
            .or_else(|_| std::fs::canonicalize(base.join(path)))
            .map_err(|e| Error::Input {
                input: csv_path.display().to_string(),
                reason: format!("line {}: {}: {e}", row.line, path.display()),
            })?;
        labels.insert(found, row.label);
    }
    Ok(labels)
}

/// The label of `path`: from the CSV, else its file name without extension.
fn label_of(path: &Path, labels: &HashMap<PathBuf, String>) -> String {
    std::fs::canonicalize(path)
        .ok()
        .and_then(|p| labels.get(&p).cloned())
        .unwrap_or_else(|| {
            path.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| path.display().to_string())
        })
}

/// The engine's reason for an unreadable image, without the "reference
/// image" wording of the element's use.
pub(crate) fn image_reason(e: dreamsim::Error) -> String {
    match e {
        dreamsim::Error::ReferenceImage { message, .. } => message,
        e => e.to_string(),
    }
}

// ---- videos

/// A sampled frame: its stream time and embedding.
struct Sample {
    timestamp_ns: u64,
    embedding: Vec<f32>,
}

/// Counts the sampled frames for the progress bar.
struct Sampling {
    samples: Arc<Mutex<Vec<Sample>>>,
}

impl BusHandler for Sampling {
    fn message(&mut self, _: &gst::MessageRef, _: &Progress) -> Result<ControlFlow<()>, Error> {
        Ok(ControlFlow::Continue(()))
    }

    fn status(&self) -> String {
        let n = self.samples.lock().unwrap_or_else(|e| e.into_inner()).len();
        format!("{n} frames sampled")
    }
}

/// Decodes `path` and embeds the frames `sampling` picks, through
/// `dreamsim`; `identity` checks the embeddings that come back. Frames not
/// picked are dropped in front of `dreamsim`, so the model runs only on the
/// picked ones: with --scenes, the scene starts that
/// [`dreamsim::change::CutDetector`] proposes from thumbnails of every frame.
fn sample_video(
    path: &Path,
    common: &CommonArgs,
    sampling: &SamplingArgs,
    identity: &ModelIdentity,
    show: bool,
) -> Result<Vec<Sample>, Error> {
    let uri = pipeline::to_uri(&path.to_string_lossy())?;
    let dreamsim = pipeline::dreamsim(common)?;
    dreamsim.set_property(gstdreamsim::dreamsim::property::POST_MESSAGES, false);
    let sink = pipeline::fakesink()?;
    let chain = vec![dreamsim.clone(), sink.clone()];
    if sampling.scenes {
        let detector = Mutex::new((
            None::<gst_video::VideoInfo>,
            dreamsim::change::CutDetector::default(),
        ));
        dreamsim.static_pad("sink").expect("sink pad").add_probe(
            gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_DOWNSTREAM,
            move |_, info| {
                let mut detector = detector.lock().unwrap_or_else(|e| e.into_inner());
                let (video, cuts) = &mut *detector;
                if let Some(gst::PadProbeData::Event(event)) = &info.data {
                    if let gst::EventView::Caps(caps) = event.view() {
                        *video = gst_video::VideoInfo::from_caps(caps.caps()).ok();
                    }
                    return gst::PadProbeReturn::Ok;
                }
                let start = match (info.buffer(), video.as_ref()) {
                    (Some(b), Some(v)) => {
                        gstdreamsim::dreamsim::with_engine_frame(b, v, |f| cuts.push_frame(f))
                            .unwrap_or(false)
                    }
                    _ => return gst::PadProbeReturn::Ok,
                };
                if start {
                    gst::PadProbeReturn::Ok
                } else {
                    drop(info.take_buffer());
                    gst::PadProbeReturn::Handled
                }
            },
        );
    } else {
        // Frames between samples never reach the model: dropped in front
        // of it, by their stream time.
        let every_ns = (sampling.every * 1e9).round().max(1.0) as u64;
        let next = std::sync::atomic::AtomicU64::new(0);
        dreamsim.static_pad("sink").expect("sink pad").add_probe(
            gst::PadProbeType::BUFFER,
            move |pad, info| {
                let t = info
                    .buffer()
                    .and_then(|b| b.pts())
                    .and_then(|pts| pipeline::stream_time(pad, pts));
                match t {
                    Some(t) if t.nseconds() >= next.load(Ordering::Relaxed) => {
                        next.store((t.nseconds() / every_ns + 1) * every_ns, Ordering::Relaxed);
                        gst::PadProbeReturn::Ok
                    }
                    // Taken and Handled (the buffer consumed here):
                    // gstreamer-rs's Drop makes GStreamer 1.22 unref a
                    // null buffer.
                    _ => {
                        drop(info.take_buffer());
                        gst::PadProbeReturn::Handled
                    }
                }
            },
        );
    }
    let pipeline = pipeline::decoding_pipeline(&uri, &chain)?;

    let samples = Arc::new(Mutex::new(Vec::new()));
    let failure: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
    {
        let (samples, failure, identity) = (samples.clone(), failure.clone(), identity.clone());
        sink.static_pad("sink").expect("sink pad").add_probe(
            gst::PadProbeType::BUFFER,
            move |pad, info| {
                let Some(buffer) = info.buffer() else {
                    return gst::PadProbeReturn::Ok;
                };
                let meta = match DreamSimMeta::from_buffer(buffer) {
                    Some(Ok(meta)) => meta,
                    Some(Err(e)) => {
                        failure
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .get_or_insert(e.to_string());
                        return gst::PadProbeReturn::Ok;
                    }
                    None => return gst::PadProbeReturn::Ok,
                };
                if !identity.accepts(&meta.model, meta.embedding.len()) {
                    failure
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .get_or_insert(format!(
                            "dreamsim gave {}-d embeddings of model {}, expected {identity}",
                            meta.embedding.len(),
                            meta.model
                        ));
                    return gst::PadProbeReturn::Ok;
                }
                let t = buffer
                    .pts()
                    .and_then(|pts| pipeline::stream_time(pad, pts))
                    .unwrap_or(gst::ClockTime::ZERO);
                samples
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(Sample {
                        timestamp_ns: t.nseconds(),
                        embedding: meta.embedding,
                    });
                gst::PadProbeReturn::Ok
            },
        );
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut progress = Progress::new(&name, show);
    let mut handler = Sampling {
        samples: samples.clone(),
    };
    let result = pipeline::run_bus(&pipeline, &mut progress, &mut handler);
    pipeline::stop(&pipeline);
    drop(pipeline);
    result?;
    if let Some(reason) = failure.lock().unwrap_or_else(|e| e.into_inner()).take() {
        return Err(Error::Pipeline(reason));
    }
    let samples = std::mem::take(&mut *samples.lock().unwrap_or_else(|e| e.into_inner()));
    if samples.is_empty() {
        return Err(Error::NoFrames);
    }
    Ok(samples)
}

// ---- add

/// An entry waiting for the next `add`, its embedding owned.
struct Pending {
    label: String,
    source: Source,
    content_hash: String,
    embedding: Vec<f32>,
}

/// What `add` did.
#[derive(Default)]
struct Tally {
    added: usize,
    existing: usize,
    /// Of `existing`: images found in the index by their file hash before
    /// they were decoded or embedded.
    known_unread: usize,
    failed: Vec<Failure>,
}

/// Adds `pending` to the index in one all-or-nothing `add`, counting the
/// result.
fn flush(
    set: &mut dyn EmbeddingIndex,
    pending: &mut Vec<Pending>,
    tally: &mut Tally,
) -> Result<(), Error> {
    if pending.is_empty() {
        return Ok(());
    }
    let entries: Vec<NewEntry<'_>> = pending
        .iter()
        .map(|p| NewEntry {
            label: p.label.clone(),
            source: p.source.clone(),
            content_hash: p.content_hash.clone(),
            embedding: &p.embedding,
        })
        .collect();
    for added in set.add(&entries)? {
        match added {
            Added::New(_) => tally.added += 1,
            Added::Existing(_) => tally.existing += 1,
        }
    }
    pending.clear();
    Ok(())
}

fn add(args: AddArgs) -> Result<ExitCode, Error> {
    let show = !args.common.quiet;
    let labels = match &args.labels {
        Some(csv) => read_labels(csv)?,
        None => HashMap::new(),
    };
    let (files, unlisted) = collect_inputs(&args.paths);
    let mut inputs = args.common.input_files();
    inputs.extend(
        files
            .iter()
            .map(|(p, _)| p)
            .chain(&args.labels)
            .map(|p| p.to_string_lossy().into_owned()),
    );
    crate::overwrite::refuse_overwrite(inputs, &[("INDEX", index_file(&args.index))])?;
    let mut tally = Tally {
        failed: unlisted,
        ..Tally::default()
    };
    for (path, reason) in &tally.failed {
        eprintln!("{PROGRAM}: {}: {reason}", path.display());
    }
    let mut model = SharedModel::load(&args.common)?;
    let identity = model.identity().clone();
    let options = IndexOptions {
        create: true,
        quantization: args.quantization,
        ..args.graph.apply(args.location.options())
    };
    let mut set = index::open(&args.index, Some(&identity), &options)?;
    let location = index::redact(&args.index);

    let batch = args.common.max_batch() as usize;
    let counter = Counter::new("index add", files.len() as u64, show);
    let mut pending: Vec<Pending> = Vec::new();
    let mut images: Vec<(PathBuf, dreamsim::image_file::RgbImage, String)> = Vec::new();

    // Embeds the images read so far in one batch through the engine.
    let embed_images = |engine: &mut Engine,
                        images: &mut Vec<(PathBuf, dreamsim::image_file::RgbImage, String)>,
                        pending: &mut Vec<Pending>,
                        tally: &mut Tally,
                        counter: &Counter|
     -> Result<(), Error> {
        if images.is_empty() {
            return Ok(());
        }
        let frames: Result<Vec<Frame<'_>>, _> = images
            .iter()
            .map(|(_, img, _)| Frame::rgb(&img.data, img.width, img.height, img.width * 3))
            .collect();
        let embeddings = frames.and_then(|frames| engine.embed_frames(&frames));
        match embeddings {
            Ok(embeddings) => {
                for ((path, _, hash), embedding) in images.drain(..).zip(embeddings) {
                    pending.push(Pending {
                        label: label_of(&path, &labels),
                        source: Source::File {
                            path: path.display().to_string(),
                        },
                        content_hash: hash,
                        embedding: embedding.as_slice().to_vec(),
                    });
                }
            }
            Err(e) => {
                let reason = e.to_string();
                for (path, _, _) in images.drain(..) {
                    counter.println(&format!("{PROGRAM}: {}: {reason}", path.display()));
                    tally.failed.push((path, reason.clone()));
                }
            }
        }
        Ok(())
    };

    for (path, kind) in &files {
        counter.message(path.display().to_string());
        match kind {
            Kind::Image => {
                // An image's content hash is its file's: one the index holds
                // already is neither decoded nor run through the model (a
                // folder added again costs a hash per file).
                let read = match index::file_sha256(path) {
                    Err(e) => Err(e.to_string()),
                    Ok(hash) if set.id_of_content(&hash)?.is_some() => {
                        tally.existing += 1;
                        tally.known_unread += 1;
                        Ok(None)
                    }
                    Ok(hash) => dreamsim::image_file::read_rgb(path)
                        .map(|img| Some((img, hash)))
                        .map_err(image_reason),
                };
                match read {
                    Ok(None) => {}
                    Ok(Some((img, hash))) => images.push((path.clone(), img, hash)),
                    Err(reason) => {
                        counter.println(&format!("{PROGRAM}: {}: {reason}", path.display()));
                        tally.failed.push((path.clone(), reason));
                    }
                }
                if images.len() >= batch {
                    embed_images(
                        model.engine(),
                        &mut images,
                        &mut pending,
                        &mut tally,
                        &counter,
                    )?;
                }
            }
            Kind::Video => {
                embed_images(
                    model.engine(),
                    &mut images,
                    &mut pending,
                    &mut tally,
                    &counter,
                )?;
                let sampled = index::file_sha256(path)
                    .map_err(Error::from)
                    .and_then(|hash| {
                        counter
                            .suspend(|| {
                                model.lend(|element| {
                                    sample_video(path, element, &args.sampling, &identity, show)
                                })
                            })
                            .and_then(|sampled| sampled)
                            .map(|s| (s, hash))
                    });
                match sampled {
                    Ok((samples, hash)) => {
                        let label = label_of(path, &labels);
                        let shown = path.display().to_string();
                        for s in samples {
                            let time = timecode(gst::ClockTime::from_nseconds(s.timestamp_ns));
                            pending.push(Pending {
                                label: format!("{label}@{time}"),
                                source: Source::VideoFrame {
                                    path: shown.clone(),
                                    timestamp_ns: s.timestamp_ns,
                                },
                                content_hash: format!("{hash}@{}", s.timestamp_ns),
                                embedding: s.embedding,
                            });
                        }
                    }
                    Err(e) => {
                        let reason = match e {
                            Error::Input { reason, .. } => reason,
                            e => e.to_string(),
                        };
                        counter.println(&format!("{PROGRAM}: {}: {reason}", path.display()));
                        tally.failed.push((path.clone(), reason));
                    }
                }
            }
        }
        counter.inc(1);
        if pending.len() >= INDEX_BATCH {
            flush(set.as_mut(), &mut pending, &mut tally)?;
        }
    }
    embed_images(
        model.engine(),
        &mut images,
        &mut pending,
        &mut tally,
        &counter,
    )?;
    flush(set.as_mut(), &mut pending, &mut tally)?;
    counter.finish();

    let total = set.len()?;
    if show {
        let unread = match tally.known_unread {
            0 => String::new(),
            n => format!(" ({n} images known by their file hash, not decoded)"),
        };
        eprintln!(
            "{PROGRAM}: index {location}: {} added, {} already present{unread}, {} failed; \
             {total} entries",
            tally.added,
            tally.existing,
            tally.failed.len()
        );
        for (path, reason) in &tally.failed {
            eprintln!("  failed: {}: {reason}", path.display());
        }
    }
    Ok(if tally.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

// ---- remove

fn remove(args: RemoveArgs) -> Result<ExitCode, Error> {
    let mut set = index::open(&args.index, None, &args.location.options())?;
    let location = index::redact(&args.index);
    let mut missing = Vec::new();
    for &id in &args.ids {
        if set.get(id)?.is_none() {
            missing.push(id);
        }
    }
    let removed = set.remove(&args.ids)?;
    if !missing.is_empty() {
        let ids: Vec<String> = missing.iter().map(u64::to_string).collect();
        eprintln!(
            "{PROGRAM}: index {location} has no entry with id {}",
            ids.join(", ")
        );
    }
    if !args.quiet {
        eprintln!(
            "{PROGRAM}: index {location}: {removed} removed; {} entries",
            set.len()?
        );
    }
    Ok(if missing.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

// ---- info

#[derive(Serialize)]
struct InfoJson<'a> {
    backend: &'a str,
    location: &'a str,
    model: &'a ModelIdentity,
    entries: usize,
    quantization: &'a str,
    size_bytes: u64,
    exact_search_below: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    connectivity: Option<usize>,
}

fn info(args: InfoArgs) -> Result<ExitCode, Error> {
    let mut set = index::open(&args.index, None, &args.location.options())?;
    let info = set.info()?;
    // The backend's own location is redacted already; once more, for
    // whatever it may have kept from the argument.
    let location = index::redact(&info.location);
    let mut out = Output::create(None)?;
    if args.json {
        out.write_json(&InfoJson {
            backend: info.backend,
            location: &location,
            model: &info.identity,
            entries: info.len,
            quantization: info.quantization.as_str(),
            size_bytes: info.size_bytes,
            exact_search_below: info.exact_search_below,
            connectivity: info.connectivity,
        })?;
    } else {
        out.write(|w| {
            writeln!(w, "backend:       {}", info.backend)?;
            writeln!(w, "location:      {location}")?;
            writeln!(w, "model:         {}", info.identity.kind)?;
            writeln!(w, "dimensions:    {}", info.identity.dim)?;
            writeln!(w, "model sha256:  {}", info.identity.sha256)?;
            writeln!(w, "entries:       {}", info.len)?;
            writeln!(w, "quantization:  {}", info.quantization.as_str())?;
            writeln!(w, "size:          {} bytes", info.size_bytes)?;
            if let Some(n) = info.exact_search_below {
                writeln!(w, "exact search:  below {n} entries")?;
            }
            if let Some(m) = info.connectivity {
                writeln!(w, "HNSW graph:    {m} links per node")?;
            }
            Ok(())
        })?;
    }
    out.finish()?;
    Ok(ExitCode::SUCCESS)
}

// ---- query

#[derive(Serialize)]
struct HitJson {
    rank: usize,
    id: u64,
    label: String,
    distance: f64,
    source: Source,
}

#[derive(Serialize)]
struct QueryJson {
    input: String,
    /// Stream time of the sampled frame in nanoseconds; absent for an image.
    #[serde(skip_serializing_if = "Option::is_none")]
    timestamp_ns: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timestamp: Option<String>,
    matches: Vec<HitJson>,
}

#[derive(Serialize)]
struct QueryDocument {
    index: String,
    k: u32,
    queries: Vec<QueryJson>,
}

/// `path`, or `path@HH:MM:SS.mmm` for a video frame.
fn source_text(source: &Source) -> String {
    match source {
        Source::File { path } => path.clone(),
        Source::VideoFrame { path, timestamp_ns } => format!(
            "{path}@{}",
            timecode(gst::ClockTime::from_nseconds(*timestamp_ns))
        ),
        Source::Other { description } => description.clone(),
    }
}

/// The file of an embedded index (`None` for PostgreSQL), as an output
/// that must not be an input.
fn index_file(location: &str) -> Option<&Path> {
    (!index::is_postgres_location(location)).then(|| Path::new(location))
}

fn query(args: QueryArgs) -> Result<ExitCode, Error> {
    let mut inputs = args.common.input_files();
    inputs.push(args.index.clone());
    inputs.extend(args.inputs.iter().map(|p| p.to_string_lossy().into_owned()));
    crate::overwrite::refuse_overwrite(inputs, &[("--output", args.out.output.as_deref())])?;
    let show = !args.common.quiet;
    let mut model = SharedModel::load(&args.common)?;
    let identity = model.identity().clone();
    let mut set = index::open(
        &args.index,
        Some(&identity),
        &args.search.apply(args.location.options()),
    )?;
    let k = args.k as usize;

    let mut queries = Vec::new();
    for input in &args.inputs {
        let name = input.display().to_string();
        // A FIFO or a device would block the reader or never end.
        match std::fs::metadata(input) {
            Ok(m) if !m.is_file() => {
                return Err(Error::Input {
                    input: name,
                    reason: format!(
                        "{}, not a regular file",
                        untrusted::file_kind(m.file_type())
                    ),
                })
            }
            Ok(_) => {}
            Err(e) => {
                return Err(Error::Input {
                    input: name,
                    reason: e.to_string(),
                })
            }
        }
        match kind_of_file(input) {
            Kind::Image => {
                let embedding =
                    model
                        .engine()
                        .embed_image_file(input)
                        .map_err(|e| Error::Input {
                            input: name.clone(),
                            reason: image_reason(e),
                        })?;
                queries.push((name, None, set.search(embedding.as_slice(), k)?));
            }
            Kind::Video => {
                let samples = model.lend(|element| {
                    sample_video(input, element, &args.sampling, &identity, show)
                })??;
                for s in samples {
                    let hits = set.search(&s.embedding, k)?;
                    queries.push((name.clone(), Some(s.timestamp_ns), hits));
                }
            }
        }
    }

    let mut out = Output::create(args.out.output.as_deref())?;
    if args.out.json {
        let doc = QueryDocument {
            index: index::redact(&args.index),
            k: args.k,
            queries: queries
                .into_iter()
                .map(|(input, t, hits)| QueryJson {
                    input,
                    timestamp_ns: t,
                    timestamp: t.map(|t| timecode(gst::ClockTime::from_nseconds(t))),
                    matches: hits
                        .into_iter()
                        .enumerate()
                        .map(|(i, m): (usize, Match)| HitJson {
                            rank: i + 1,
                            id: m.entry.id,
                            label: m.entry.label,
                            distance: m.distance,
                            source: m.entry.source,
                        })
                        .collect(),
                })
                .collect(),
        };
        out.write_json(&doc)?;
    } else {
        let mut rows = Vec::new();
        {
            let mut csv = csv::Writer::from_writer(&mut rows);
            let io = |e: csv::Error| Error::Stdout(e.into());
            csv.write_record([
                "input",
                "timestamp",
                "rank",
                "id",
                "label",
                "distance",
                "source",
            ])
            .map_err(io)?;
            for (input, t, hits) in &queries {
                let time = t
                    .map(|t| timecode(gst::ClockTime::from_nseconds(t)))
                    .unwrap_or_default();
                for (i, m) in hits.iter().enumerate() {
                    csv.write_record([
                        &*text_cell(input),
                        time.as_str(),
                        &(i + 1).to_string(),
                        &m.entry.id.to_string(),
                        &*text_cell(&m.entry.label),
                        &format!("{:.6}", m.distance),
                        &*text_cell(&source_text(&m.entry.source)),
                    ])
                    .map_err(io)?;
                }
            }
            csv.flush().map_err(Error::Stdout)?;
        }
        out.write(|w| w.write_all(&rows))?;
    }
    out.finish()?;
    Ok(ExitCode::SUCCESS)
}

// ---- export, import

fn copy(from: &str, to: &str, args: &CopyArgs) -> Result<ExitCode, Error> {
    crate::overwrite::refuse_overwrite([from], &[("the destination", index_file(to))])?;
    let options = args.location.options();
    let mut source = index::open(from, None, &options)?;
    let source_info = source.info()?;
    let dest_options = IndexOptions {
        create: true,
        quantization: args.quantization.unwrap_or(source_info.quantization),
        pg_table: args
            .dest_pg_table
            .clone()
            .unwrap_or_else(|| options.pg_table.clone()),
        ..args.graph.apply(options.clone())
    };
    let identity = source.identity().clone();
    let mut dest = index::open(to, Some(&identity), &dest_options)?;
    let counter = Counter::new("index copy", source_info.len as u64, !args.quiet);
    counter.message(format!("{} -> {}", index::redact(from), index::redact(to)));
    let copied = index::copy_entries(source.as_mut(), dest.as_mut(), COPY_BATCH, |n| {
        counter.set(n as u64)
    })?;
    counter.finish();
    if !args.quiet {
        eprintln!(
            "{PROGRAM}: {copied} entries copied from {} to {} ({} already there); {} entries",
            index::redact(from),
            index::redact(to),
            source_info.len.saturating_sub(copied),
            dest.len()?
        );
    }
    Ok(ExitCode::SUCCESS)
}
