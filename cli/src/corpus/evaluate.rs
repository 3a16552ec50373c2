//! `gst-dreamsim corpus evaluate`: a `corpus match --json` result scored
//! against ground truth, as the Video Similarity Challenge 2022 scores its
//! matching track.
//!
//! - **Pairs**: the result's pairs marked `match` against the truth's
//!   pairs, unordered: precision, recall, F1.
//! - **Segments**: the VSC 2022 matching-track segment µAP (the one its
//!   `evaluate_matching_track` reports as `segment_ap`, after VCSL): each
//!   predicted segment is a box in (query time, reference time); boxes are
//!   taken in decreasing score; per (query, reference) pair, on each axis,
//!   the covered length is the union of the pair's predicted intervals, and
//!   the matched length its intersection with the union of the pair's
//!   truth intervals whose box overlaps (with a positive area) one of the
//!   pair's predicted boxes. Summed over pairs, per axis: recall = matched
//!   / truth length (the union of every truth interval), precision =
//!   matched / covered; the curve's recall and precision are the geometric
//!   means of the two axes'. µAP = Σ precision × Δrecall, one point per
//!   group of predictions of equal score.
//!
//! A segment's score is `1 - mean_distance` (closer frames, more
//! confident). Videos are named by their file stem (`videos/Q100.mp4` is
//! `Q100`) on both sides, as the challenge's ids; a predicted pair found in
//! the truth the other way round is turned round (its segments swapped).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde::{Deserialize, Serialize};

use crate::output::Output;
use crate::Error;

/// Largest truth CSV or result JSON read.
const MAX_INPUT_BYTES: u64 = 256 << 20;

/// Score a `corpus match --json` result against ground truth: pair precision, recall, F1 and segment µAP
///
/// TRUTH is a CSV with the header `query_id,ref_id,query_start,query_end,
/// ref_start,ref_end` (the Video Similarity Challenge's ground truth; times
/// in seconds), one row per copied segment. Videos are named by their file
/// stem on both sides. See docs/cli.md (corpus evaluate) for the
/// definitions.
#[derive(Debug, clap::Args)]
#[command(mut_arg("output", |a| a.help("Write the scores to FILE instead of standard output")), mut_arg("json", |a| a.help("Write a JSON document instead of text")))]
#[command(after_help = "Examples:\n  \
    gst-dreamsim corpus match --index library.dsindex --json > result.json\n  \
    gst-dreamsim corpus evaluate --truth truth.csv result.json")]
pub struct EvaluateArgs {
    /// The `corpus match --json` document
    result: PathBuf,

    /// Ground-truth segments (CSV, VSC 2022 format)
    #[arg(long, value_name = "FILE")]
    truth: PathBuf,

    #[command(flatten)]
    pub out: crate::args::OutputArgs,
}

/// A box in (query time, reference time), seconds, with its confidence.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Box2 {
    pub query: (f64, f64),
    pub reference: (f64, f64),
    pub score: f64,
}

impl Box2 {
    fn overlaps(&self, other: &Box2) -> bool {
        let side = |a: (f64, f64), b: (f64, f64)| (a.1.min(b.1) - a.0.max(b.0)).max(0.0);
        side(self.query, other.query) * side(self.reference, other.reference) > 0.0
    }
}

/// Total length of the union of `intervals`.
fn union_length(intervals: &[(f64, f64)]) -> f64 {
    let mut v: Vec<(f64, f64)> = intervals.to_vec();
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut total = 0.0;
    let mut current: Option<(f64, f64)> = None;
    for (s, e) in v {
        match current {
            Some((cs, ce)) if s <= ce => current = Some((cs, ce.max(e))),
            Some((cs, ce)) => {
                total += ce - cs;
                current = Some((s, e));
            }
            None => current = Some((s, e)),
        }
    }
    total + current.map_or(0.0, |(s, e)| e - s)
}

/// Length of the intersection of the unions of `a` and `b`: |A| + |B| - |A ∪ B|.
fn intersection_length(a: &[(f64, f64)], b: &[(f64, f64)]) -> f64 {
    let both: Vec<(f64, f64)> = a.iter().chain(b).copied().collect();
    union_length(a) + union_length(b) - union_length(&both)
}

/// Per axis (query, reference): matched and covered length of one pair.
fn pair_lengths(truth: &[Box2], predicted: &[Box2]) -> [(f64, f64); 2] {
    let considered: Vec<&Box2> = truth
        .iter()
        .filter(|t| predicted.iter().any(|p| t.overlaps(p)))
        .collect();
    let axis = |f: fn(&Box2) -> (f64, f64)| {
        let p: Vec<(f64, f64)> = predicted.iter().map(f).collect();
        let t: Vec<(f64, f64)> = considered.iter().map(|b| f(b)).collect();
        (intersection_length(&p, &t), union_length(&p))
    };
    [axis(|b| b.query), axis(|b| b.reference)]
}

/// A pair's predicted boxes so far, and their matched and covered lengths.
type PairState = (Vec<Box2>, [(f64, f64); 2]);

/// The VSC 2022 segment µAP of `predicted` against `truth`, both keyed by
/// (query, reference). `None` without truth.
pub fn segment_ap(
    truth: &BTreeMap<(String, String), Vec<Box2>>,
    predicted: &[((String, String), Box2)],
) -> Option<f64> {
    let truth_length = |f: fn(&Box2) -> (f64, f64)| -> f64 {
        truth
            .values()
            .map(|boxes| union_length(&boxes.iter().map(f).collect::<Vec<_>>()))
            .sum()
    };
    let totals = [truth_length(|b| b.query), truth_length(|b| b.reference)];
    if totals.iter().any(|&t| t <= 0.0) {
        return None;
    }
    let mut order: Vec<&((String, String), Box2)> = predicted.iter().collect();
    order.sort_by(|a, b| b.1.score.total_cmp(&a.1.score));
    let mut per_pair: BTreeMap<&(String, String), PairState> = BTreeMap::new();
    let mut sums = [(0.0f64, 0.0f64); 2];
    let (mut recall, mut ap) = (0.0, 0.0);
    let empty = Vec::new();
    let mut i = 0;
    while i < order.len() {
        let score = order[i].1.score;
        while i < order.len() && order[i].1.score == score {
            let (key, b) = order[i];
            let entry = per_pair.entry(key).or_default();
            entry.0.push(*b);
            let new = pair_lengths(truth.get(key).unwrap_or(&empty), &entry.0);
            for axis in 0..2 {
                sums[axis].0 += new[axis].0 - entry.1[axis].0;
                sums[axis].1 += new[axis].1 - entry.1[axis].1;
            }
            entry.1 = new;
            i += 1;
        }
        let r = |a: usize| sums[a].0 / totals[a];
        let p = |a: usize| {
            if sums[a].1 > 0.0 {
                sums[a].0 / sums[a].1
            } else {
                0.0
            }
        };
        let new_recall = (r(0) * r(1)).sqrt();
        let precision = (p(0) * p(1)).sqrt();
        ap += precision * (new_recall - recall);
        recall = new_recall;
    }
    Some(ap)
}

/// A video's name: its file stem.
fn video_name(s: &str) -> String {
    Path::new(s)
        .file_stem()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| s.to_owned())
}

#[derive(Deserialize)]
struct ResultSegment {
    query_start_s: f64,
    query_end_s: f64,
    candidate_start_s: f64,
    candidate_end_s: f64,
    mean_distance: f64,
}

#[derive(Deserialize)]
struct ResultPair {
    query: String,
    candidate: String,
    #[serde(rename = "match")]
    is_match: bool,
    #[serde(default)]
    segments: Vec<ResultSegment>,
}

#[derive(Deserialize)]
struct ResultDocument {
    pairs: Vec<ResultPair>,
}

#[derive(Deserialize)]
struct TruthRow {
    query_id: String,
    ref_id: String,
    query_start: f64,
    query_end: f64,
    ref_start: f64,
    ref_end: f64,
}

/// The scores.
#[derive(Debug, Serialize, PartialEq)]
pub struct Scores {
    pub truth_pairs: usize,
    pub predicted_pairs: usize,
    pub correct_pairs: usize,
    pub pair_precision: Option<f64>,
    pub pair_recall: Option<f64>,
    pub pair_f1: Option<f64>,
    pub truth_segments: usize,
    pub predicted_segments: usize,
    pub segment_map: Option<f64>,
    pub segment_definition: &'static str,
}

fn bad(path: &Path, reason: impl Into<String>) -> Error {
    Error::Input {
        input: path.display().to_string(),
        reason: reason.into(),
    }
}

pub(crate) fn read_capped(path: &Path) -> Result<String, Error> {
    crate::calibrate::check_file(path, MAX_INPUT_BYTES)?;
    std::fs::read_to_string(path).map_err(|source| Error::File {
        path: path.to_owned(),
        source,
    })
}

fn interval(path: &Path, row: usize, s: f64, e: f64) -> Result<(f64, f64), Error> {
    if s.is_finite() && e.is_finite() && 0.0 <= s && s <= e {
        Ok((s, e))
    } else {
        Err(bad(
            path,
            format!("row {row}: the interval {s} to {e} is not a time range in seconds"),
        ))
    }
}

type Keyed = BTreeMap<(String, String), Vec<Box2>>;

fn read_truth(path: &Path) -> Result<Keyed, Error> {
    let text = read_capped(path)?;
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    const HEADER: [&str; 6] = [
        "query_id",
        "ref_id",
        "query_start",
        "query_end",
        "ref_start",
        "ref_end",
    ];
    let headers = reader
        .headers()
        .map_err(|e| bad(path, format!("row 1: {e}")))?
        .clone();
    if let Some(missing) = HEADER.iter().find(|h| !headers.iter().any(|x| x == **h)) {
        return Err(bad(
            path,
            format!(
                "no {missing} column: the first row is the header {}",
                HEADER.join(",")
            ),
        ));
    }
    let mut truth: Keyed = BTreeMap::new();
    for (i, row) in reader.deserialize::<TruthRow>().enumerate() {
        let row = row.map_err(|e| {
            bad(
                path,
                format!(
                    "row {}: {e} (the header is query_id,ref_id,query_start,query_end,ref_start,ref_end)",
                    i + 2
                ),
            )
        })?;
        let b = Box2 {
            query: interval(path, i + 2, row.query_start, row.query_end)?,
            reference: interval(path, i + 2, row.ref_start, row.ref_end)?,
            score: 1.0,
        };
        truth
            .entry((video_name(&row.query_id), video_name(&row.ref_id)))
            .or_default()
            .push(b);
    }
    Ok(truth)
}

/// Precision (`correct / predicted`), recall (`correct / truth`) and F1;
/// each `None` where its denominator is 0 (F1 where either is).
pub(crate) fn precision_recall_f1(
    correct: usize,
    predicted: usize,
    truth: usize,
) -> (Option<f64>, Option<f64>, Option<f64>) {
    let precision = (predicted > 0).then(|| correct as f64 / predicted as f64);
    let recall = (truth > 0).then(|| correct as f64 / truth as f64);
    let f1 = match (precision, recall) {
        (Some(p), Some(r)) if p + r > 0.0 => Some(2.0 * p * r / (p + r)),
        (Some(_), Some(_)) => Some(0.0),
        _ => None,
    };
    (precision, recall, f1)
}

/// Scores a result against the truth (pure: the documents already read).
fn score(truth: &Keyed, result: &ResultDocument, path: &Path) -> Result<Scores, Error> {
    let unordered = |a: &str, b: &str| {
        if a <= b {
            (a.to_owned(), b.to_owned())
        } else {
            (b.to_owned(), a.to_owned())
        }
    };
    let truth_pairs: BTreeSet<(String, String)> =
        truth.keys().map(|(q, r)| unordered(q, r)).collect();
    let mut predicted_pairs = BTreeSet::new();
    let mut predicted = Vec::new();
    for (i, p) in result.pairs.iter().enumerate() {
        let (q, c) = (video_name(&p.query), video_name(&p.candidate));
        if p.is_match {
            predicted_pairs.insert(unordered(&q, &c));
        }
        // Turned round when the truth has the pair the other way only.
        let turn = !truth.contains_key(&(q.clone(), c.clone()))
            && truth.contains_key(&(c.clone(), q.clone()));
        for s in &p.segments {
            let query = interval(path, i + 1, s.query_start_s, s.query_end_s)?;
            let candidate = interval(path, i + 1, s.candidate_start_s, s.candidate_end_s)?;
            if !s.mean_distance.is_finite() {
                return Err(bad(
                    path,
                    format!("pair {}: a segment without a mean distance", i + 1),
                ));
            }
            let score = 1.0 - s.mean_distance;
            predicted.push(if turn {
                (
                    (c.clone(), q.clone()),
                    Box2 {
                        query: candidate,
                        reference: query,
                        score,
                    },
                )
            } else {
                (
                    (q.clone(), c.clone()),
                    Box2 {
                        query,
                        reference: candidate,
                        score,
                    },
                )
            });
        }
    }
    let correct = predicted_pairs.intersection(&truth_pairs).count();
    let (precision, recall, f1) =
        precision_recall_f1(correct, predicted_pairs.len(), truth_pairs.len());
    Ok(Scores {
        truth_pairs: truth_pairs.len(),
        predicted_pairs: predicted_pairs.len(),
        correct_pairs: correct,
        pair_precision: precision,
        pair_recall: recall,
        pair_f1: f1,
        truth_segments: truth.values().map(Vec::len).sum(),
        predicted_segments: predicted.len(),
        segment_map: segment_ap(truth, &predicted),
        segment_definition: "VSC 2022 matching track segment_ap (VCSL-style: geometric mean of \
                             query- and reference-axis precision and recall over time; \
                             segment score 1 - mean_distance)",
    })
}

pub fn run(args: EvaluateArgs) -> Result<ExitCode, Error> {
    crate::overwrite::refuse_overwrite(
        [&args.result, &args.truth].map(|p| p.display().to_string()),
        &[("--output", args.out.output.as_deref())],
    )?;
    let truth = read_truth(&args.truth)?;
    let text = read_capped(&args.result)?;
    let result: ResultDocument = serde_json::from_str(&text).map_err(|e| {
        bad(
            &args.result,
            format!("not a corpus match --json document: {e}"),
        )
    })?;
    let scores = score(&truth, &result, &args.result)?;
    let mut out = Output::create(args.out.output.as_deref())?;
    if args.out.json {
        out.write_json(&scores)?;
    } else {
        let o = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.4}"));
        out.write(|w| {
            writeln!(
                w,
                "pairs: {} predicted, {} in the truth, {} correct",
                scores.predicted_pairs, scores.truth_pairs, scores.correct_pairs
            )?;
            writeln!(
                w,
                "pair precision {}, recall {}, F1 {}",
                o(scores.pair_precision),
                o(scores.pair_recall),
                o(scores.pair_f1)
            )?;
            writeln!(
                w,
                "segments: {} predicted, {} in the truth; segment µAP (VSC 2022) {}",
                scores.predicted_segments,
                scores.truth_segments,
                o(scores.segment_map)
            )
        })?;
    }
    out.finish()?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(q: &str, r: &str) -> (String, String) {
        (q.into(), r.into())
    }

    fn b(q: (f64, f64), r: (f64, f64), score: f64) -> Box2 {
        Box2 {
            query: q,
            reference: r,
            score,
        }
    }

    #[test]
    fn lengths_of_unions_and_intersections() {
        assert_eq!(union_length(&[(2.0, 5.0), (7.0, 8.0), (4.0, 6.0)]), 5.0);
        assert_eq!(
            intersection_length(&[(2.0, 5.0), (7.0, 8.0)], &[(1.0, 3.0), (4.0, 7.0)]),
            2.0
        );
    }

    /// Truth: pair (q1, r1) copied 0-10 s to 0-10 s; pair (q2, r2) 0-4 s
    /// to 10-14 s. Total truth length per axis: 14.
    ///
    /// Predictions, by score:
    /// 1. (q1, r1) 0-5 / 0-5, score 0.9: matched 5 of 5 on each axis.
    ///    R = 5/14, P = 1. AP += 1 × 5/14.
    /// 2. (q3, r3) 0-6 / 0-6, score 0.8: a false pair, 0 matched, 6 covered.
    ///    R = 5/14, P = 5/11. ΔR = 0.
    /// 3. (q2, r2) 0-4 / 10-14 and (q1, r1) 5-10 / 5-10, both score 0.7
    ///    (one group): matched 5 + 4 + 5 = 14, covered 5 + 6 + 4 + 5 = 20.
    ///    R = 1, P = 14/20. AP += 0.7 × 9/14.
    ///
    /// µAP = 5/14 + 0.7 × 9/14 = (5 + 6.3) / 14 = 0.807142857...
    #[test]
    fn segment_map_matches_the_hand_computed_example() {
        let mut truth = BTreeMap::new();
        truth.insert(key("q1", "r1"), vec![b((0.0, 10.0), (0.0, 10.0), 1.0)]);
        truth.insert(key("q2", "r2"), vec![b((0.0, 4.0), (10.0, 14.0), 1.0)]);
        let predicted = vec![
            (key("q1", "r1"), b((0.0, 5.0), (0.0, 5.0), 0.9)),
            (key("q3", "r3"), b((0.0, 6.0), (0.0, 6.0), 0.8)),
            (key("q2", "r2"), b((0.0, 4.0), (10.0, 14.0), 0.7)),
            (key("q1", "r1"), b((5.0, 10.0), (5.0, 10.0), 0.7)),
        ];
        let ap = segment_ap(&truth, &predicted).unwrap();
        assert!((ap - 11.3 / 14.0).abs() < 1e-12, "{ap}");
        // A prediction that misses the truth box (no overlap) adds no
        // matched length even on an axis where the intervals overlap.
        let off = vec![(key("q1", "r1"), b((0.0, 10.0), (20.0, 30.0), 0.9))];
        assert_eq!(segment_ap(&truth, &off), Some(0.0));
        assert_eq!(segment_ap(&BTreeMap::new(), &predicted), None);
    }

    #[test]
    fn pairs_are_scored_unordered_and_segments_turned_round() {
        let mut truth = BTreeMap::new();
        truth.insert(key("a", "b"), vec![b((0.0, 4.0), (2.0, 6.0), 1.0)]);
        truth.insert(key("c", "d"), vec![b((0.0, 4.0), (0.0, 4.0), 1.0)]);
        let doc: ResultDocument = serde_json::from_str(
            r#"{"pairs": [
                {"query": "videos/b.mp4", "candidate": "a.webm", "match": true, "segments": [
                    {"query_start_s": 2, "query_end_s": 6, "candidate_start_s": 0, "candidate_end_s": 4, "mean_distance": 0.01}]},
                {"query": "e.mp4", "candidate": "f.mp4", "match": true, "segments": []},
                {"query": "c.mp4", "candidate": "d.mp4", "match": false, "segments": []}
            ]}"#,
        )
        .unwrap();
        let s = score(&truth, &doc, Path::new("r.json")).unwrap();
        assert_eq!(
            (s.predicted_pairs, s.truth_pairs, s.correct_pairs),
            (2, 2, 1)
        );
        assert_eq!(
            (s.pair_precision, s.pair_recall, s.pair_f1),
            (Some(0.5), Some(0.5), Some(0.5))
        );
        // b->a turned round to a->b covers a->b's truth exactly on both
        // axes: recall sqrt(4/8 × 4/8) = 0.5 at precision 1.
        assert!((s.segment_map.unwrap() - 0.5).abs() < 1e-12, "{s:?}");
    }
}
