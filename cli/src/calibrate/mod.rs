//! `gst-dreamsim calibrate`: labelled material in, a threshold out.
//!
//! Modules: `input` (the pairs CSV or the groups), `distances` (a pair's
//! distance from its items' embeddings: images, and videos as frame-level
//! profiles), `curves` (ROC, precision-recall, the threshold for a target,
//! the bootstrap; pure), `output` (text, JSON, CSV, the `--for` setting),
//! `html` (the self-contained page). Embedding goes through
//! [`crate::embed_cache`], each item once, cached with `--cache`.

mod curves;
mod distances;
mod html;
mod input;
mod output;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::common::CommonArgs;
use crate::embed_cache::{self, VideoSampling};
use crate::{Error, PROGRAM};
use curves::{Point, Scored, Target};
use distances::PairProfile;
pub(crate) use input::check_file;
use input::{LabelledSet, Pair};

/// Default bootstrap replicates.
pub const DEFAULT_BOOTSTRAP: u32 = 1000;
/// Default query share (percent) at which a video pair's distance is taken
/// when not calibrating `corpus` (the median nearest-frame distance).
pub const DEFAULT_VIDEO_SHARE: f64 = 50.0;
/// Query shares (percent) tried with `--for corpus`.
pub const CORPUS_SHARES: [f64; 20] = [
    5.0, 10.0, 15.0, 20.0, 25.0, 30.0, 35.0, 40.0, 45.0, 50.0, 55.0, 60.0, 65.0, 70.0, 75.0, 80.0,
    85.0, 90.0, 95.0, 100.0,
];

/// What a calibrated threshold is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Purpose {
    /// dreamsimscene (fixed mode): pairs are consecutive frames; "same" = one scene
    Scene,
    /// dreamsimdedup: "same" = a duplicate to drop
    Dedup,
    /// dreamsimmatch: "same" = a known item
    Match,
    /// corpus match: items are videos; frame distance and query share together
    Corpus,
}

/// Choose a distance threshold on labelled material: ROC and precision-recall curves, bootstrap interval
///
/// Input: --pairs (a CSV of `a,b,same|different` rows), --groups (a folder
/// with a folder per group) or --manifest (a CSV of `path,group` rows):
/// pairs within a group are the same, across groups different. Paths in a
/// CSV are relative to its folder. Items are images or videos (by
/// extension); each is embedded once (videos sampled as `corpus add`
/// samples them), with --cache kept in an index for the next run.
///
/// A pair is called the same when its distance is at most the threshold.
/// The threshold chosen is the one of highest recall that meets the target
/// (--target-fpr or --target-precision), with a 95 % bootstrap interval
/// (pairs resampled with replacement, same and different separately).
/// Without --json the report is text; with --for only the setting is
/// written to standard output (the report goes to standard error).
#[derive(Debug, clap::Args)]
#[command(mut_arg("output", |a| a.help("Write the report (text or JSON) to FILE instead of standard output")), mut_arg("json", |a| a.help("Write a JSON document instead of text")))]
#[command(
    group(clap::ArgGroup::new("material").required(true).args(["pairs", "groups", "manifest"])),
    group(clap::ArgGroup::new("target").required(true).args(["target_fpr", "target_precision", "threshold"])),
    after_help = "Examples:\n  \
    gst-dreamsim calibrate --groups labelled/ --target-fpr 0.001 --for dedup\n  \
    gst-dreamsim calibrate --pairs pairs.csv --target-precision 0.99 --json --html report.html\n  \
    gst-dreamsim calibrate --groups copies/ --target-fpr 0.01 --for corpus --cache emb.dsindex\n\n\
    Exit status: 0 success, 1 error or no threshold meets the target, 2 usage error.\n\
    See docs/cli.md (calibrate)."
)]
pub struct Args {
    /// CSV of `a,b,same|different` rows (header `a,b,label` allowed)
    #[arg(long, value_name = "FILE", help_heading = "Material")]
    pub pairs: Option<PathBuf>,

    /// Folder with one folder per group of images or videos
    #[arg(long, value_name = "DIR", help_heading = "Material")]
    pub groups: Option<PathBuf>,

    /// CSV of `path,group` rows (header `path,group` allowed)
    #[arg(long, value_name = "FILE", help_heading = "Material")]
    pub manifest: Option<PathBuf>,

    /// Largest share of different pairs called the same, 0 to 1
    #[arg(long, value_name = "F", value_parser = parse_fpr, help_heading = "Target")]
    pub target_fpr: Option<f64>,

    /// Smallest share of the pairs called the same that are, above 0 to 1
    #[arg(long, value_name = "P", value_parser = parse_precision, help_heading = "Target")]
    pub target_precision: Option<f64>,

    /// No target: report the figures at this threshold (0 to 2), to check a
    /// threshold on held-out material
    #[arg(long, value_name = "T", value_parser = parse_threshold, help_heading = "Target")]
    pub threshold: Option<f64>,

    /// Write the setting for this element or subcommand (alone on standard output unless --json)
    #[arg(long = "for", value_name = "USE", help_heading = "Target")]
    pub purpose: Option<Purpose>,

    /// Bootstrap replicates for the 95 % intervals (0: none)
    #[arg(long, value_name = "N", default_value_t = DEFAULT_BOOTSTRAP,
          value_parser = clap::value_parser!(u32).range(0..=100_000), help_heading = "Target")]
    pub bootstrap: u32,

    /// Seed of the bootstrap's resampling
    #[arg(long, value_name = "S", default_value_t = 0, help_heading = "Target")]
    pub seed: u64,

    /// Index file (or postgresql:// URI) keeping the embeddings between runs
    /// (created when missing; an `index add` index of the same model serves)
    #[arg(long, value_name = "INDEX", help_heading = "Material")]
    pub cache: Option<String>,

    /// Query share, percent, at which a video pair's distance is taken
    /// (--for corpus calibrates it, unless --threshold is given)
    #[arg(long, value_name = "P", default_value_t = DEFAULT_VIDEO_SHARE,
          value_parser = parse_share, help_heading = "Video options")]
    pub video_share: f64,

    /// Frames sampled per second of video (plus every scene start), as corpus add
    #[arg(long, value_name = "FPS", default_value_t = crate::corpus::DEFAULT_RATE,
          value_parser = parse_rate, help_heading = "Video options")]
    pub rate: f64,

    /// Do not also sample the first frame of every scene
    #[arg(long, help_heading = "Video options")]
    pub no_scene_starts: bool,

    #[command(flatten)]
    pub out: crate::args::OutputArgs,

    /// Write every pair's distance as CSV (a,b,label,distance)
    #[arg(long, value_name = "FILE", help_heading = "Output options")]
    pub csv: Option<PathBuf>,

    /// Write the operating points as CSV (threshold,tp,fp,tn,fn,recall,fpr,precision)
    #[arg(long, value_name = "FILE", help_heading = "Output options")]
    pub curve_csv: Option<PathBuf>,

    /// Write a self-contained HTML page: histograms, threshold, ROC and PR curves
    #[arg(long, value_name = "FILE", help_heading = "Output options")]
    pub html: Option<PathBuf>,

    #[command(flatten)]
    pub common: CommonArgs,
}

fn parse_unit(s: &str, low_open: bool) -> Result<f64, String> {
    let range = if low_open { "above 0 to 1" } else { "0 to 1" };
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && (0.0..=1.0).contains(&v) && !(low_open && v == 0.0) => Ok(v),
        _ => Err(format!("{s:?} is not a number from {range}")),
    }
}

fn parse_fpr(s: &str) -> Result<f64, String> {
    parse_unit(s, false)
}

fn parse_precision(s: &str) -> Result<f64, String> {
    parse_unit(s, true)
}

fn parse_threshold(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && (0.0..=2.0).contains(&v) => Ok(v),
        _ => Err(format!("{s:?} is not a DreamSim distance from 0 to 2")),
    }
}

fn parse_share(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v <= 100.0 => Ok(v),
        _ => Err(format!("{s:?} is not a percentage above 0 to 100")),
    }
}

fn parse_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v <= 1000.0 => Ok(v),
        _ => Err(format!(
            "{s:?} is not a rate above 0 to 1000 frames per second"
        )),
    }
}

/// The threshold found at one query share (a row of `--for corpus`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct ShareRow {
    /// Query share, percent.
    pub share: f64,
    /// The chosen frame distance, when the target is met.
    pub threshold: Option<f64>,
    /// Recall at it.
    pub recall: Option<f64>,
    /// False-positive rate at it.
    pub fpr: Option<f64>,
}

/// Everything a report says.
pub struct Calibration {
    pub set: LabelledSet,
    pub videos: usize,
    pub tally: embed_cache::CacheTally,
    pub target: Target,
    pub purpose: Option<Purpose>,
    /// The query share the pair distances are taken at.
    pub share: f64,
    pub scores: Vec<Scored>,
    pub points: Vec<Point>,
    pub chosen: Option<Point>,
    pub next_distance: Option<f64>,
    pub bootstrap: Option<curves::Bootstrap>,
    pub seed: u64,
    pub shares: Vec<ShareRow>,
}

impl Calibration {
    /// The value for the element or option: see [`curves::short_setting`].
    pub fn setting_value(&self) -> Option<f64> {
        let t = self.chosen?.threshold?;
        let strict = self.purpose == Some(Purpose::Scene);
        Some(curves::short_setting(t, self.next_distance, strict))
    }
}

/// Labelled scores of `pairs` at query share `share`.
fn scores_at(profiles: &[PairProfile], pairs: &[Pair], share: f64) -> Vec<Scored> {
    profiles
        .iter()
        .zip(pairs)
        .map(|(p, pair)| Scored {
            distance: p.at_share(share),
            same: pair.same,
        })
        .collect()
}

/// Stratified pair bootstrap: same pairs and different pairs each drawn
/// with replacement to their own counts (the prevalence, which precision
/// depends on, stays that of the material).
fn pair_bootstrap(
    scores: &[Scored],
    replicates: u32,
    seed: u64,
    target: Target,
) -> curves::Bootstrap {
    let same: Vec<Scored> = scores.iter().copied().filter(|s| s.same).collect();
    let different: Vec<Scored> = scores.iter().copied().filter(|s| !s.same).collect();
    curves::bootstrap(replicates as usize, seed, target, |rng| {
        let mut out = Vec::with_capacity(scores.len());
        out.extend((0..same.len()).map(|_| same[rng.usize(..same.len())]));
        out.extend((0..different.len()).map(|_| different[rng.usize(..different.len())]));
        out
    })
}

/// Refuses an output path that names an input (or another output): the
/// tool's one check ([`crate::overwrite::refuse_overwrite`]).
fn check_outputs(args: &Args, inputs: &[PathBuf]) -> Result<(), Error> {
    let mut reads: Vec<String> = inputs.iter().map(|p| p.display().to_string()).collect();
    if let Some(c) = &args.cache {
        if !dreamsim_index::is_postgres_location(c) {
            reads.push(c.clone());
        }
    }
    if let Some(m) = &args.common.model {
        reads.push(m.display().to_string());
    }
    crate::overwrite::refuse_overwrite(
        reads,
        &[
            ("--output", args.out.output.as_deref()),
            ("--csv", args.csv.as_deref()),
            ("--curve-csv", args.curve_csv.as_deref()),
            ("--html", args.html.as_deref()),
        ],
    )
}

pub fn run(args: Args) -> Result<ExitCode, Error> {
    let list = args
        .pairs
        .as_ref()
        .or(args.groups.as_ref())
        .or(args.manifest.as_ref())
        .expect("clap requires one")
        .clone();
    // Outputs are checked against the list before anything is read, and
    // against the items once they are known.
    check_outputs(&args, std::slice::from_ref(&list))?;
    let set = if args.pairs.is_some() {
        input::read_pairs(&list)?
    } else if args.groups.is_some() {
        input::read_group_folders(&list)?
    } else {
        input::read_manifest(&list)?
    };
    check_outputs(&args, &set.items)?;
    let target = match (args.target_fpr, args.target_precision, args.threshold) {
        (Some(f), _, _) => Target::Fpr(f),
        (None, Some(p), _) => Target::Precision(p),
        (None, None, Some(t)) => Target::Threshold(t),
        (None, None, None) => unreachable!("clap requires one"),
    };
    let sampling = VideoSampling {
        period_ns: (1e9 / args.rate).round().max(1.0) as u64,
        scene_starts: !args.no_scene_starts,
        stall: Duration::from_secs(crate::corpus::DEFAULT_STALL_TIMEOUT),
    };
    let (items, tally) =
        embed_cache::embed_all(&set.items, &args.common, &sampling, args.cache.as_deref())?;
    let videos = items.iter().filter(|i| i.video).count();
    let profiles = set
        .pairs
        .iter()
        .map(|p| PairProfile::new(&items[p.a], &items[p.b], p.directed))
        .collect::<Result<Vec<_>, _>>()?;

    // With --for corpus, the share is calibrated with the distance: at each
    // share, the threshold for the target; the share of highest recall
    // wins (then the lowest false-positive rate, then the higher share).
    let mut shares = Vec::new();
    // A given --threshold is checked at --video-share.
    let grid = args.purpose == Some(Purpose::Corpus) && !matches!(target, Target::Threshold(_));
    let share = if grid {
        let mut best: Option<(f64, Point)> = None;
        for &s in &CORPUS_SHARES {
            let points = curves::operating_points(&scores_at(&profiles, &set.pairs, s));
            let p = curves::point_for(&points, target);
            shares.push(ShareRow {
                share: s,
                threshold: p.and_then(|p| p.threshold),
                recall: p.map(|p| p.recall()),
                fpr: p.map(|p| p.fpr()),
            });
            if let Some(p) = p {
                let better = best.is_none_or(|(_, b)| (p.tp, b.fp) >= (b.tp, p.fp));
                if better {
                    best = Some((s, p));
                }
            }
        }
        best.map_or(crate::corpus::DEFAULT_QUERY_SHARE, |(s, _)| s)
    } else {
        args.video_share
    };
    let scores = scores_at(&profiles, &set.pairs, share);
    let points = curves::operating_points(&scores);
    let chosen = curves::point_for(&points, target);
    let next_distance = chosen
        .and_then(|p| p.threshold)
        .and_then(|t| curves::next_distance(&scores, t));
    let bootstrap =
        (args.bootstrap > 0).then(|| pair_bootstrap(&scores, args.bootstrap, args.seed, target));

    let calibration = Calibration {
        set,
        videos,
        tally,
        target,
        purpose: args.purpose,
        share,
        scores,
        points,
        chosen,
        next_distance,
        bootstrap,
        seed: args.seed,
        shares,
    };
    output::write(&args, &calibration)?;
    if calibration.chosen.is_none() {
        eprintln!(
            "{PROGRAM}: calibrate: no threshold meets the target on this material \
             (see the distances: the nearest pairs are labelled different)"
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
