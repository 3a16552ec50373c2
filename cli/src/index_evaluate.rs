//! `gst-dreamsim index evaluate`: an `index query` result scored against a
//! labelled query set, the way `dreamsimmatch` decides.
//!
//! The unit is one query: an image, or one sampled frame of a video (every
//! frame of a video takes the video's truth row). A query's truth is the
//! label of the index entry it shows, or nothing (no true match in the
//! index: a negative).
//!
//! - **At the threshold**: a query is called a match when its nearest entry
//!   is within `--max-distance` (`distance <= D`, as `dreamsimmatch
//!   threshold=D` reports it, nearest first); the call is correct when that
//!   entry's label is the query's. Precision = correct / called, recall =
//!   correct / queries with a true match (a wrong label counts against
//!   both), and the false-match rate of the negatives = negatives called /
//!   negatives.
//! - **recall@k** (k = 1, 5, 10, whatever the threshold): the share of the
//!   queries with a true match that have an entry of their label among
//!   their first k results; absent where the result holds fewer than k per
//!   query (`index query -k`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde::{Deserialize, Serialize};

use crate::corpus::evaluate::{precision_recall_f1, read_capped};
use crate::output::Output;
use crate::Error;

/// The ranks recall@k is reported at.
const RECALL_AT: [usize; 3] = [1, 5, 10];

/// Score an `index query` result against a labelled query set: precision, recall, recall@k
///
/// TRUTH is a CSV with the header `query,label`: one row per query image or
/// video, the label of the index entry it shows, or an empty label when the
/// index holds no true match. See docs/cli.md (index evaluate).
#[derive(Debug, clap::Args)]
#[command(mut_arg("output", |a| a.help("Write the scores to FILE instead of standard output")), mut_arg("json", |a| a.help("Write a JSON document instead of text")))]
#[command(after_help = "Examples:\n  \
    gst-dreamsim index query known.dsindex queries/*.jpg -k 10 --json -o result.json\n  \
    gst-dreamsim index evaluate --truth truth.csv --max-distance 0.1 result.json")]
pub struct EvaluateArgs {
    /// The `index query` result (its --json document or its CSV)
    pub result: PathBuf,

    /// The labelled query set (CSV `query,label`)
    #[arg(long, value_name = "FILE")]
    pub truth: PathBuf,

    /// The threshold scored: the nearest entry within D (0 to 2) is a match,
    /// as `dreamsimmatch threshold=D` decides
    #[arg(long, value_name = "D", value_parser = parse_distance)]
    pub max_distance: f64,

    #[command(flatten)]
    pub out: crate::args::OutputArgs,
}

fn parse_distance(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && (0.0..=2.0).contains(&v) => Ok(v),
        _ => Err(format!("{s:?} is not a distance from 0 to 2")),
    }
}

fn bad(path: &Path, reason: impl Into<String>) -> Error {
    Error::Input {
        input: path.display().to_string(),
        reason: reason.into(),
    }
}

/// One result of a query.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Hit {
    pub label: String,
    pub distance: f64,
}

/// One query of the result: its input, and its hits nearest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub input: String,
    pub hits: Vec<Hit>,
}

#[derive(Deserialize)]
struct JsonHit {
    rank: usize,
    label: String,
    distance: f64,
}

#[derive(Deserialize)]
struct JsonQuery {
    input: String,
    matches: Vec<JsonHit>,
}

#[derive(Deserialize)]
struct JsonDocument {
    k: usize,
    queries: Vec<JsonQuery>,
}

/// Hits sorted by rank, checked.
fn ranked(path: &Path, at: &str, mut hits: Vec<(usize, Hit)>) -> Result<Vec<Hit>, Error> {
    hits.sort_by_key(|(rank, _)| *rank);
    for (i, (rank, hit)) in hits.iter().enumerate() {
        if *rank != i + 1 {
            return Err(bad(path, format!("{at}: ranks are not 1, 2, 3, ...")));
        }
        if !hit.distance.is_finite() || hit.distance < 0.0 {
            return Err(bad(
                path,
                format!("{at}: the distance {} is not one", hit.distance),
            ));
        }
    }
    Ok(hits.into_iter().map(|(_, h)| h).collect())
}

/// The queries of an `index query` result and the k it was run with: its
/// JSON document, or its CSV (`input,timestamp,rank,id,label,distance,
/// source`; k is then the largest rank, and a query without hits is absent).
pub fn read_result(path: &Path) -> Result<(usize, Vec<Query>), Error> {
    let text = read_capped(path)?;
    if text.trim_start().starts_with('{') {
        let doc: JsonDocument = serde_json::from_str(&text)
            .map_err(|e| bad(path, format!("not an index query --json document: {e}")))?;
        let mut queries = Vec::new();
        for (i, q) in doc.queries.into_iter().enumerate() {
            let hits = q
                .matches
                .into_iter()
                .map(|h| {
                    (
                        h.rank,
                        Hit {
                            label: h.label,
                            distance: h.distance,
                        },
                    )
                })
                .collect();
            let hits = ranked(path, &format!("query {}", i + 1), hits)?;
            queries.push(Query {
                input: q.input,
                hits,
            });
        }
        return Ok((doc.k, queries));
    }
    let mut reader = csv::ReaderBuilder::new().from_reader(text.as_bytes());
    const HEADER: [&str; 7] = [
        "input",
        "timestamp",
        "rank",
        "id",
        "label",
        "distance",
        "source",
    ];
    let headers = reader
        .headers()
        .map_err(|e| bad(path, format!("row 1: {e}")))?
        .clone();
    if headers.iter().ne(HEADER) {
        return Err(bad(
            path,
            format!(
                "neither an index query --json document nor its CSV (header {})",
                HEADER.join(",")
            ),
        ));
    }
    // Rows grouped by (input, timestamp), in the order they come.
    let mut order: Vec<(String, String)> = Vec::new();
    let mut grouped: BTreeMap<(String, String), Vec<(usize, Hit)>> = BTreeMap::new();
    for (i, row) in reader.records().enumerate() {
        let row = row.map_err(|e| bad(path, format!("row {}: {e}", i + 2)))?;
        let number = |field: usize| -> Result<f64, Error> {
            row[field].parse::<f64>().map_err(|_| {
                bad(
                    path,
                    format!("row {}: {:?} is not a number", i + 2, &row[field]),
                )
            })
        };
        let rank = number(2)?;
        if rank < 1.0 || rank.fract() != 0.0 {
            return Err(bad(
                path,
                format!("row {}: the rank {rank} is not one", i + 2),
            ));
        }
        let key = (row[0].to_owned(), row[1].to_owned());
        let hit = Hit {
            label: row[4].to_owned(),
            distance: number(5)?,
        };
        let entry = grouped.entry(key.clone()).or_insert_with(|| {
            order.push(key);
            Vec::new()
        });
        entry.push((rank as usize, hit));
    }
    let mut k = 0;
    let mut queries = Vec::new();
    for key in order {
        let hits = grouped.remove(&key).unwrap_or_default();
        let at = if key.1.is_empty() {
            key.0.clone()
        } else {
            format!("{}@{}", key.0, key.1)
        };
        let hits = ranked(path, &at, hits)?;
        k = k.max(hits.len());
        queries.push(Query { input: key.0, hits });
    }
    Ok((k, queries))
}

/// The truth: a label (or none) per query name, as written.
pub fn read_truth(path: &Path) -> Result<BTreeMap<String, Option<String>>, Error> {
    let text = read_capped(path)?;
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| bad(path, format!("row 1: {e}")))?
        .clone();
    if headers.iter().ne(["query", "label"]) {
        return Err(bad(path, "the first row is the header query,label"));
    }
    let mut truth = BTreeMap::new();
    for (i, row) in reader.records().enumerate() {
        let row = row.map_err(|e| {
            bad(
                path,
                format!("row {}: {e} (each row is query,label)", i + 2),
            )
        })?;
        let (query, label) = (row[0].to_owned(), &row[1]);
        if query.is_empty() {
            return Err(bad(path, format!("row {}: no query", i + 2)));
        }
        let label = (!label.is_empty()).then(|| label.to_owned());
        if truth.insert(query.clone(), label).is_some() {
            return Err(bad(path, format!("row {}: {query} again", i + 2)));
        }
    }
    Ok(truth)
}

/// The names a truth row may give an input by: as written, its file name,
/// its file stem.
fn names(input: &str) -> Vec<String> {
    let p = Path::new(input);
    let mut v = vec![input.to_owned()];
    v.extend(p.file_name().map(|n| n.to_string_lossy().into_owned()));
    v.extend(p.file_stem().map(|n| n.to_string_lossy().into_owned()));
    v
}

/// The scores.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scores {
    /// Queries scored (images and sampled frames).
    pub queries: usize,
    /// Queries with a true match in the index.
    pub with_match: usize,
    /// Queries without one.
    pub without_match: usize,
    pub max_distance: f64,
    /// Queries whose nearest entry is within the threshold.
    pub called: usize,
    /// Of those, the ones whose nearest entry has the query's label.
    pub correct: usize,
    /// Called with another entry's label (a query with a true match).
    pub wrong_label: usize,
    /// Called although the query has no true match.
    pub false_matches: usize,
    pub precision: Option<f64>,
    pub recall: Option<f64>,
    pub f1: Option<f64>,
    /// false_matches / without_match.
    pub false_match_rate: Option<f64>,
    /// The k the result was made with (hits per query).
    pub k: usize,
    /// recall@k for k = 1, 5, 10 (`None` beyond the result's k or without
    /// a query with a true match).
    pub recall_at: BTreeMap<String, Option<f64>>,
}

/// Scores `queries` (each with its truth label, `None` for no true match)
/// at `max_distance`; `k` is the result's. Pure.
pub fn score(queries: &[(&Query, Option<&str>)], k: usize, max_distance: f64) -> Scores {
    let with_match = queries.iter().filter(|(_, t)| t.is_some()).count();
    let (mut called, mut correct, mut wrong_label, mut false_matches) = (0, 0, 0, 0);
    let mut found_at = [0usize; RECALL_AT.len()];
    for (q, truth) in queries {
        if let Some(nearest) = q.hits.first().filter(|h| h.distance <= max_distance) {
            called += 1;
            match truth {
                Some(t) if nearest.label == *t => correct += 1,
                Some(_) => wrong_label += 1,
                None => false_matches += 1,
            }
        }
        if let Some(t) = truth {
            if let Some(rank) = q.hits.iter().position(|h| h.label == *t) {
                for (n, &at) in found_at.iter_mut().zip(&RECALL_AT) {
                    if rank < at {
                        *n += 1;
                    }
                }
            }
        }
    }
    let (precision, recall, f1) = precision_recall_f1(correct, called, with_match);
    let without_match = queries.len() - with_match;
    let recall_at = RECALL_AT
        .iter()
        .zip(found_at)
        .map(|(&at, n)| {
            let v = (at <= k && with_match > 0).then(|| n as f64 / with_match as f64);
            (at.to_string(), v)
        })
        .collect();
    Scores {
        queries: queries.len(),
        with_match,
        without_match,
        max_distance,
        called,
        correct,
        wrong_label,
        false_matches,
        precision,
        recall,
        f1,
        false_match_rate: (without_match > 0).then(|| false_matches as f64 / without_match as f64),
        k,
        recall_at,
    }
}

/// Each query with its truth label; every query needs a truth row and
/// every truth row a query.
fn join<'a>(
    truth: &'a BTreeMap<String, Option<String>>,
    queries: &'a [Query],
    args: &EvaluateArgs,
) -> Result<Vec<(&'a Query, Option<&'a str>)>, Error> {
    let mut used = BTreeSet::new();
    let mut joined = Vec::new();
    for q in queries {
        let Some((name, label)) = names(&q.input)
            .into_iter()
            .find_map(|n| truth.get_key_value(&n))
        else {
            return Err(bad(
                &args.truth,
                format!(
                    "no row for the query {} of the result (a query with no true match is \
                     the row `{},` with an empty label)",
                    q.input, q.input
                ),
            ));
        };
        used.insert(name);
        joined.push((q, label.as_deref()));
    }
    if let Some(missing) = truth.keys().find(|k| !used.contains(k)) {
        return Err(bad(
            &args.result,
            format!("the truth's query {missing} is not in the result"),
        ));
    }
    Ok(joined)
}

pub fn run(args: EvaluateArgs) -> Result<ExitCode, Error> {
    crate::overwrite::refuse_overwrite(
        [&args.result, &args.truth].map(|p| p.display().to_string()),
        &[("--output", args.out.output.as_deref())],
    )?;
    let truth = read_truth(&args.truth)?;
    let (k, queries) = read_result(&args.result)?;
    let joined = join(&truth, &queries, &args)?;
    let scores = score(&joined, k, args.max_distance);
    let mut out = Output::create(args.out.output.as_deref())?;
    if args.out.json {
        out.write_json(&scores)?;
    } else {
        let o = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.4}"));
        out.write(|w| {
            writeln!(
                w,
                "queries: {} ({} with a true match, {} without)",
                scores.queries, scores.with_match, scores.without_match
            )?;
            writeln!(
                w,
                "at distance <= {}: {} called a match, {} correct, {} wrong label, {} false matches",
                scores.max_distance,
                scores.called,
                scores.correct,
                scores.wrong_label,
                scores.false_matches
            )?;
            writeln!(
                w,
                "precision {}, recall {}, F1 {}, false-match rate {}",
                o(scores.precision),
                o(scores.recall),
                o(scores.f1),
                o(scores.false_match_rate)
            )?;
            let at: Vec<String> = RECALL_AT
                .iter()
                .map(|a| format!("recall@{a} {}", o(scores.recall_at[&a.to_string()])))
                .collect();
            writeln!(w, "{} (k = {})", at.join(", "), scores.k)
        })?;
    }
    out.finish()?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(input: &str, hits: &[(&str, f64)]) -> Query {
        Query {
            input: input.into(),
            hits: hits
                .iter()
                .map(|(l, d)| Hit {
                    label: (*l).into(),
                    distance: *d,
                })
                .collect(),
        }
    }

    /// Five queries, k = 5, threshold 0.1:
    /// - a (truth A): A 0.05, ... → called, correct; found at rank 1.
    /// - b (truth B): C 0.08, B 0.09 → called, wrong label; B at rank 2.
    /// - c (truth C): D 0.3, E 0.4, F 0.5, G 0.6, C 0.7 → not called; C at rank 5.
    /// - d (no truth): A 0.02 → called, a false match.
    /// - e (no truth): B 0.5 → not called.
    ///
    /// Called 3, correct 1: precision 1/3; with a true match 3: recall 1/3;
    /// false-match rate 1/2; recall@1 = 1/3, recall@5 = 3/3; recall@10
    /// absent (k = 5).
    #[test]
    fn scores_match_the_hand_computed_example() {
        let qs = [
            q("a.jpg", &[("A", 0.05), ("B", 0.2)]),
            q("b.jpg", &[("C", 0.08), ("B", 0.09)]),
            q(
                "c.jpg",
                &[("D", 0.3), ("E", 0.4), ("F", 0.5), ("G", 0.6), ("C", 0.7)],
            ),
            q("d.jpg", &[("A", 0.02)]),
            q("e.jpg", &[("B", 0.5)]),
        ];
        let truth = [Some("A"), Some("B"), Some("C"), None, None];
        let joined: Vec<_> = qs.iter().zip(truth).collect();
        let s = score(&joined, 5, 0.1);
        assert_eq!(
            (s.called, s.correct, s.wrong_label, s.false_matches),
            (3, 1, 1, 1)
        );
        assert_eq!(s.precision, Some(1.0 / 3.0));
        assert_eq!(s.recall, Some(1.0 / 3.0));
        assert_eq!(s.false_match_rate, Some(0.5));
        assert_eq!(s.recall_at["1"], Some(1.0 / 3.0));
        assert_eq!(s.recall_at["5"], Some(1.0));
        assert_eq!(s.recall_at["10"], None);
        // At the threshold itself a hit counts (distance <= D).
        let s = score(&joined, 5, 0.05);
        assert_eq!((s.called, s.correct), (2, 1));
    }

    #[test]
    fn truth_rows_name_queries_by_path_file_name_or_stem() {
        assert_eq!(
            names("photos/x.jpg"),
            ["photos/x.jpg", "x.jpg", "x"].map(String::from)
        );
    }
}
