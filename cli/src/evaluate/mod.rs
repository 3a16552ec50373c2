//! `gst-dreamsim evaluate`: a generative model's output judged as a set.
//!
//! Modules: `input` (arguments, folders, the manifest), `embed` (each file
//! embedded once on `--workers` threads, through the reusable cache),
//! `items` (a video's temporal consistency, the distance to a reference:
//! pure), `stats` (diversity, Vendi Score, bootstrap intervals), `baseline`
//! (a previous run compared, the gates), `output` (the JSON document and the
//! CSV), `html` (the self-contained page).

mod baseline;
mod embed;
mod html;
mod input;
mod items;
mod output;
mod stats;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use dreamsim_index::{self as index, IndexOptions, Source};

use crate::common::CommonArgs;
use crate::embed_cache::VideoSampling;
use crate::values;
use crate::{Error, PROGRAM};
use output::{Evaluation, ItemResult, Nearest};

/// Frames sampled per second of video by default. Temporal consistency
/// needs several frames per second (a flicker between two sampled frames
/// a second apart is not seen); generated clips are short (2 to 10 s), so
/// this is 16 to 80 model runs per clip. `corpus add`'s 1 frame/s is for
/// finding copies in long videos.
pub const DEFAULT_RATE: f64 = 8.0;
/// Default `--copy-threshold`: `dreamsimmatch`'s threshold (is this frame
/// a known item?): for the DreamSim ensemble, copies that differ by
/// resampling and compression are far below it, different pictures far
/// above (0.2-0.5). `calibrate --for match` finds one for your material.
pub const DEFAULT_COPY_THRESHOLD: f64 = 0.1;
/// Default `--near-duplicate`: `dreamsimdedup`'s threshold, the distance
/// under which it drops a frame as a duplicate of the one it kept.
pub const DEFAULT_NEAR_DUPLICATE: f64 = 0.02;
/// Default bootstrap replicates of the 95 % intervals.
pub const DEFAULT_RESAMPLES: usize = 1000;
/// Most bootstrap replicates.
pub const MAX_RESAMPLES: u64 = 100_000;
/// Default seed of the bootstrap's resampling.
pub const DEFAULT_SEED: u64 = 1;
/// Most `--workers`.
pub const MAX_WORKERS: u64 = 64;
/// The exit status when a gate fails (as `compare --fail-above`).
pub const EXIT_FAILED: u8 = crate::compare::EXIT_FAILED;

/// Judge a set of generated images and videos: temporal consistency, diversity, copies, references
///
/// Items are images and videos (by extension) given as files, folders
/// (searched recursively) or a --manifest: CSV with a header row naming
/// `path` and optionally `reference`, `group`, `id`, or JSON Lines of
/// objects with those keys (paths relative to the manifest's folder; the
/// id, which pairs items with a --baseline run's, defaults to the path).
///
/// Per item: a video's temporal consistency over its sampled frames (mean
/// distance to the previous sampled frame and to the first, the largest
/// jump and where); with a reference, the pooled (mean) distance to it
/// (videos paired frame by frame by time, as compare pairs them); with
/// --against, the nearest item of that index, its label and distance, and
/// a copy flag at --copy-threshold. Per group and overall: diversity as
/// the mean pairwise distance and as the Vendi Score, the share of
/// near-duplicate pairs, and the means of the item figures, each with a
/// bootstrap 95 % interval over items. A video counts in diversity by the
/// mean of its sampled frames' embeddings, normalised to unit length.
///
/// Each file is embedded once; with --cache the embeddings are kept in an
/// index as each file is done, so a rerun (other options, a baseline)
/// runs no model and an interrupted run resumes.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    gst-dreamsim evaluate outputs/ --json run.json --html run.html --cache emb.dsindex\n  \
    gst-dreamsim evaluate --manifest run.csv --against training.dsindex --csv items.csv\n\n\
    Exit status: 0 evaluated, 4 a gate failed, 1 error, 2 usage error (a bad manifest line,\n\
    an option out of range, an output that is an input). See docs/evaluate.md.")]
pub struct Args {
    /// Images, videos and folders of them
    #[arg(
        value_name = "INPUT",
        required_unless_present = "manifest",
        conflicts_with = "manifest"
    )]
    pub inputs: Vec<PathBuf>,

    /// CSV (header: path[,reference][,group][,id]) or JSON Lines of the items
    #[arg(long, value_name = "FILE", help_heading = "Material")]
    pub manifest: Option<PathBuf>,

    /// Index of known items (index add: training data, protected works): each item's nearest
    #[arg(long, value_name = "INDEX", help_heading = "Material")]
    pub against: Option<String>,

    /// Nearest distance at or below which an item is flagged as a copy (0 to 2)
    #[arg(long, value_name = "D", default_value_t = DEFAULT_COPY_THRESHOLD,
          value_parser = values::distance, help_heading = "Figures")]
    pub copy_threshold: f64,

    /// Distance below which a pair of items counts as near duplicates (0 to 2)
    #[arg(long, value_name = "D", default_value_t = DEFAULT_NEAR_DUPLICATE,
          value_parser = values::distance, help_heading = "Figures")]
    pub near_duplicate: f64,

    /// Bootstrap replicates of the 95 % intervals (0: no intervals)
    #[arg(long, value_name = "N", default_value_t = DEFAULT_RESAMPLES,
          value_parser = values::usize_in(0, MAX_RESAMPLES), help_heading = "Figures")]
    pub resamples: usize,

    /// Seed of the bootstrap's resampling
    #[arg(long, value_name = "S", default_value_t = DEFAULT_SEED, help_heading = "Figures")]
    pub seed: u64,

    /// Frames sampled per second of video (plus every scene start)
    #[arg(long, value_name = "FPS", default_value_t = DEFAULT_RATE,
          value_parser = values::rate, help_heading = "Video options")]
    pub rate: f64,

    /// Do not also sample the first frame of every scene
    #[arg(long, help_heading = "Video options")]
    pub no_scene_starts: bool,

    /// Index file (or postgresql:// URI) keeping the embeddings between runs (created when missing)
    #[arg(long, value_name = "INDEX", help_heading = "Scale")]
    pub cache: Option<String>,

    /// Files embedded at once, each worker with its own model (1 to 64)
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = values::usize_in(1, MAX_WORKERS), help_heading = "Scale")]
    pub workers: usize,

    /// Write the JSON document to FILE instead of standard output
    #[arg(long, value_name = "FILE", help_heading = "Output options")]
    pub json: Option<PathBuf>,

    /// Write one CSV row per item
    #[arg(long, value_name = "FILE", help_heading = "Output options")]
    pub csv: Option<PathBuf>,

    /// Write a self-contained HTML page: distributions, least consistent videos, copies, least diverse group
    #[arg(long, value_name = "FILE", help_heading = "Output options")]
    pub html: Option<PathBuf>,

    #[command(flatten)]
    pub baseline: baseline::BaselineArgs,

    #[command(flatten)]
    pub common: CommonArgs,
}

/// The files a run reads (items, references, lists, indexes, the model).
fn inputs_read(args: &Args, items: &[input::Item]) -> Vec<String> {
    let mut reads = args.common.input_files();
    reads.extend(args.manifest.iter().map(|m| m.display().to_string()));
    reads.extend(args.inputs.iter().map(|p| p.display().to_string()));
    for item in items {
        reads.push(item.path.display().to_string());
        if let Some((_, r)) = &item.reference {
            reads.push(r.display().to_string());
        }
    }
    // The cache is written (checked as an output below), the index of
    // known items only read.
    if let Some(location) = &args.against {
        if !index::is_postgres_location(location) {
            reads.push(location.clone());
        }
    }
    reads.extend(
        args.baseline
            .baseline
            .iter()
            .map(|b| b.display().to_string()),
    );
    reads
}

/// Refuses an output over an input or over another output (the cache
/// file is one: it is written as files are embedded).
fn check_outputs(args: &Args, items: &[input::Item]) -> Result<(), Error> {
    let cache = args
        .cache
        .as_deref()
        .filter(|c| !index::is_postgres_location(c))
        .map(std::path::Path::new);
    crate::overwrite::refuse_overwrite(
        inputs_read(args, items),
        &[
            ("--cache", cache),
            ("--json", args.json.as_deref()),
            ("--csv", args.csv.as_deref()),
            ("--html", args.html.as_deref()),
        ],
    )
}

/// The nearest known item of each of `item`'s frames: the closest one.
fn nearest(
    set: &mut dyn index::EmbeddingIndex,
    frames: &[Vec<f32>],
    times_ns: &[u64],
    copy_threshold: f64,
) -> Result<Option<Nearest>, Error> {
    let mut best: Option<Nearest> = None;
    for (i, f) in frames.iter().enumerate() {
        if let Some(m) = set.search(f, 1)?.into_iter().next() {
            if best.as_ref().is_none_or(|b| m.distance < b.distance) {
                let known_path = match &m.entry.source {
                    Source::File { path } | Source::VideoFrame { path, .. } => Some(path.clone()),
                    Source::Other { .. } => None,
                };
                best = Some(Nearest {
                    label: m.entry.label.clone(),
                    distance: m.distance.max(0.0),
                    copy: m.distance <= copy_threshold,
                    known_path,
                    time_ns: times_ns.get(i).copied(),
                });
            }
        }
    }
    Ok(best)
}

pub fn run(args: Args) -> Result<ExitCode, Error> {
    // Outputs checked against the lists before anything is read, and
    // against the items once they are known.
    check_outputs(&args, &[])?;
    let items = match &args.manifest {
        Some(list) => input::from_manifest(list)?,
        None => input::from_arguments(&args.inputs)?,
    };
    check_outputs(&args, &items)?;

    // Every file once (an item may be another's reference).
    let mut files: Vec<PathBuf> = Vec::new();
    let mut file_of: HashMap<PathBuf, usize> = HashMap::new();
    let mut slot = |p: &PathBuf| -> Result<usize, Error> {
        let key = std::fs::canonicalize(p).map_err(|source| Error::File {
            path: p.clone(),
            source,
        })?;
        Ok(*file_of.entry(key).or_insert_with(|| {
            files.push(p.clone());
            files.len() - 1
        }))
    };
    let mut slots = Vec::with_capacity(items.len());
    for item in &items {
        let own = slot(&item.path)?;
        let reference = match &item.reference {
            Some((_, r)) => Some(slot(r)?),
            None => None,
        };
        slots.push((own, reference));
    }

    let sampling = VideoSampling {
        period_ns: (1e9 / args.rate).round().max(1.0) as u64,
        scene_starts: !args.no_scene_starts,
        stall: Duration::from_secs(crate::corpus::DEFAULT_STALL_TIMEOUT),
    };
    let embedded = embed::embed(
        &files,
        &args.common,
        &sampling,
        args.cache.as_deref(),
        args.workers,
    )?;

    let mut known = match &args.against {
        Some(location) => Some(index::open(
            location,
            Some(&embedded.identity),
            &IndexOptions::default(),
        )?),
        None => None,
    };
    let mut results = Vec::with_capacity(items.len());
    for &(own, reference) in &slots {
        let e = &embedded.files[own];
        let nearest = match known.as_deref_mut() {
            Some(set) => nearest(set, &e.frames, &e.times_ns, args.copy_threshold)?,
            None => None,
        };
        results.push(ItemResult {
            temporal: if e.video {
                items::temporal(&e.frames)
            } else {
                None
            },
            reference_distance: reference.map(|r| items::reference_distance(e, &embedded.files[r])),
            vector: items::item_vector(e),
            nearest,
            group_mean_distance: None,
            frames: e.frames.len(),
            times_ns: e.times_ns.clone(),
        });
    }

    let evaluation = Evaluation::new(&args, items, results, &embedded);
    let mut document = evaluation.document();
    let verdict =
        baseline::judge(&args.baseline, &document).map_err(|e| Error::Usage(e.to_string()))?;
    if let Some(comparison) = &verdict.comparison {
        document["comparison"] = comparison.clone();
    }
    output::write_json(args.json.as_deref(), &document)?;
    if let Some(csv) = &args.csv {
        output::write_csv(csv, &evaluation)?;
    }
    if let Some(page) = &args.html {
        html::write(page, &evaluation, &args.common)?;
    }
    if !args.common.quiet {
        let videos = evaluation
            .items
            .iter()
            .filter(|i| i.kind == crate::index::Kind::Video)
            .count();
        eprintln!(
            "{PROGRAM}: evaluate: {} items ({videos} videos), {} groups; files embedded by the model: {}, from the cache: {}",
            evaluation.items.len(),
            evaluation.groups.len(),
            embedded.tally.embedded,
            embedded.tally.cached
        );
    }
    for line in &verdict.lines {
        eprintln!("{line}");
    }
    Ok(if verdict.failed {
        ExitCode::from(EXIT_FAILED)
    } else {
        ExitCode::SUCCESS
    })
}
