//! What `calibrate` writes: the report (text or JSON), the pairs' distances
//! and the operating points (CSV), the setting in the form its element or
//! subcommand takes (`--for`), and the HTML page.

use std::io::Write;

use serde::Serialize;

use super::curves::{self, Bootstrap, Point, Target};
use super::{html, Args, Calibration, Purpose, ShareRow};
use crate::output::{create, Output};
use crate::Error;

/// The setting for `purpose` at `value` (and `share` for corpus), as the
/// element's property line or the subcommand's options.
pub fn setting_text(purpose: Purpose, value: f64, share: f64) -> String {
    match purpose {
        Purpose::Scene => format!("dreamsimscene mode=fixed threshold={value}"),
        Purpose::Dedup => format!("dreamsimdedup threshold={value}"),
        Purpose::Match => format!("dreamsimmatch threshold={value}"),
        Purpose::Corpus => format!("--frame-distance {value} --query-share {share}"),
    }
}

/// Count, smallest, median and largest of some distances.
#[derive(Debug, Serialize)]
pub struct Summary {
    pub count: usize,
    pub min: Option<f64>,
    pub median: Option<f64>,
    pub max: Option<f64>,
}

fn summary(mut d: Vec<f64>) -> Summary {
    d.sort_by(f64::total_cmp);
    Summary {
        count: d.len(),
        min: d.first().copied(),
        median: curves::quantile(&d, 0.5),
        max: d.last().copied(),
    }
}

#[derive(Serialize)]
struct PointJson {
    threshold: Option<f64>,
    tp: usize,
    fp: usize,
    tn: usize,
    #[serde(rename = "fn")]
    fn_: usize,
    recall: f64,
    fpr: f64,
    precision: Option<f64>,
}

impl From<&Point> for PointJson {
    fn from(p: &Point) -> Self {
        Self {
            threshold: p.threshold,
            tp: p.tp,
            fp: p.fp,
            tn: p.tn,
            fn_: p.fn_,
            recall: p.recall(),
            fpr: p.fpr(),
            precision: p.precision(),
        }
    }
}

#[derive(Serialize)]
struct SettingJson {
    #[serde(rename = "for")]
    purpose: Purpose,
    value: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    query_share: Option<f64>,
    text: String,
}

#[derive(Serialize)]
struct BootstrapJson<'a> {
    #[serde(flatten)]
    result: &'a Bootstrap,
    seed: u64,
    resampled: &'static str,
    confidence: f64,
}

#[derive(Serialize)]
struct Document<'a> {
    input: &'static str,
    items: usize,
    videos: usize,
    same_pairs: usize,
    different_pairs: usize,
    embedded: usize,
    cached: usize,
    /// The query share a video pair's distance is taken at.
    video_share: f64,
    target: Target,
    rule: &'static str,
    threshold: Option<f64>,
    next_distance: Option<f64>,
    at_threshold: Option<PointJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    setting: Option<SettingJson>,
    bootstrap: Option<BootstrapJson<'a>>,
    roc_auc: Option<f64>,
    average_precision: Option<f64>,
    same_distances: Summary,
    different_distances: Summary,
    /// With `--for corpus`: the threshold at each query share tried.
    corpus_shares: &'a [ShareRow],
    points: Vec<PointJson>,
}

const RESAMPLED: &str =
    "pairs, stratified: same and different pairs each drawn with replacement to their own counts";
const RULE: &str = "distance <= threshold is called the same";

fn distances(c: &Calibration, same: bool) -> Vec<f64> {
    c.scores
        .iter()
        .filter(|s| s.same == same)
        .map(|s| s.distance)
        .collect()
}

fn setting(c: &Calibration) -> Option<SettingJson> {
    let purpose = c.purpose?;
    let value = c.setting_value()?;
    Some(SettingJson {
        purpose,
        value,
        query_share: (purpose == Purpose::Corpus).then_some(c.share),
        text: setting_text(purpose, value, c.share),
    })
}

fn document(c: &Calibration) -> Document<'_> {
    let (same_pairs, different_pairs) = c.set.counts();
    Document {
        input: c.set.kind,
        items: c.set.items.len(),
        videos: c.videos,
        same_pairs,
        different_pairs,
        embedded: c.tally.embedded,
        cached: c.tally.cached,
        video_share: c.share,
        target: c.target,
        rule: RULE,
        threshold: c.chosen.and_then(|p| p.threshold),
        next_distance: c.next_distance,
        at_threshold: c.chosen.as_ref().map(PointJson::from),
        setting: setting(c),
        bootstrap: c.bootstrap.as_ref().map(|b| BootstrapJson {
            result: b,
            seed: c.seed,
            resampled: RESAMPLED,
            confidence: 0.95,
        }),
        roc_auc: curves::roc_auc(&c.points),
        average_precision: curves::average_precision(&c.points),
        same_distances: summary(distances(c, true)),
        different_distances: summary(distances(c, false)),
        corpus_shares: &c.shares,
        points: c.points.iter().map(PointJson::from).collect(),
    }
}

fn opt(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.4}"))
}

/// The text report.
fn text(c: &Calibration, w: &mut dyn Write) -> std::io::Result<()> {
    let d = document(c);
    writeln!(
        w,
        "material: {} ({} items, {} of them videos; {} embedded, {} from the cache)",
        d.input, d.items, d.videos, d.embedded, d.cached
    )?;
    writeln!(
        w,
        "pairs: {} same, {} different",
        d.same_pairs, d.different_pairs
    )?;
    for (name, s) in [
        ("same distances:     ", &d.same_distances),
        ("different distances:", &d.different_distances),
    ] {
        writeln!(
            w,
            "{name} min {}  median {}  max {}",
            opt(s.min),
            opt(s.median),
            opt(s.max)
        )?;
    }
    if d.videos > 0 {
        writeln!(
            w,
            "video pairs: distance at query share {} % (the frame distance within which \
             that share of the first video's sampled frames have a frame of the second)",
            c.share
        )?;
    }
    writeln!(
        w,
        "ROC AUC {}, average precision {}",
        opt(d.roc_auc),
        opt(d.average_precision)
    )?;
    match c.target {
        Target::Fpr(f) => writeln!(w, "target: false-positive rate at most {f}")?,
        Target::Precision(p) => writeln!(w, "target: precision at least {p}")?,
        Target::Threshold(t) => writeln!(w, "no target: the figures at threshold {t}")?,
    }
    let Some(p) = c.chosen else {
        writeln!(w, "threshold: none meets the target")?;
        return Ok(());
    };
    let t = p.threshold.expect("chosen points have one");
    writeln!(
        w,
        "threshold: {t} ({RULE}; next distance {})",
        c.next_distance.map_or("none".into(), |v| v.to_string())
    )?;
    if let Some(b) = &c.bootstrap {
        let i = |v: Option<curves::Interval>| {
            v.map_or("-".into(), |i| format!("{:.4} to {:.4}", i.low, i.high))
        };
        writeln!(
            w,
            "  95 % bootstrap interval: threshold {}, recall {} ({} replicates of the pairs, \
             seed {}; {} met the target)",
            i(b.threshold),
            i(b.recall),
            b.replicates,
            c.seed,
            b.met
        )?;
    }
    writeln!(
        w,
        "at the threshold: recall {:.4}, false-positive rate {:.4}, precision {} \
         (tp {}, fp {}, tn {}, fn {})",
        p.recall(),
        p.fpr(),
        opt(p.precision()),
        p.tp,
        p.fp,
        p.tn,
        p.fn_
    )?;
    if !c.shares.is_empty() {
        writeln!(w, "query shares tried (frame distance, recall, FPR):")?;
        for r in &c.shares {
            writeln!(
                w,
                "  {:>5} %: {} {} {}",
                r.share,
                opt(r.threshold),
                opt(r.recall),
                opt(r.fpr)
            )?;
        }
    }
    if let Some(s) = &d.setting {
        writeln!(w, "setting: {}", s.text)?;
    }
    Ok(())
}

fn csv_error(path: &std::path::Path) -> impl Fn(csv::Error) -> Error + '_ {
    move |e| Error::File {
        path: path.to_owned(),
        source: e.into(),
    }
}

/// Writes every output `args` asks for.
pub fn write(args: &Args, c: &Calibration) -> Result<(), Error> {
    let report_to_stderr = c.purpose.is_some() && !args.out.json && args.out.output.is_none();
    if args.out.json {
        let mut out = Output::create(args.out.output.as_deref())?;
        out.write_json(&document(c))?;
        out.finish()?;
    } else if report_to_stderr {
        if !args.common.quiet {
            text(c, &mut std::io::stderr()).map_err(Error::Stdout)?;
        }
    } else {
        let mut out = Output::create(args.out.output.as_deref())?;
        out.write(|w| text(c, w))?;
        out.finish()?;
    }
    // --for without --json: the setting alone on standard output, to be
    // pasted or substituted as it is.
    if let (Some(s), false) = (setting(c), args.out.json) {
        if args.out.output.is_some() || report_to_stderr {
            let mut out = Output::create(None)?;
            out.write(|w| writeln!(w, "{}", s.text))?;
            out.finish()?;
        }
    }
    if let Some(path) = &args.csv {
        let mut w = csv::Writer::from_writer(create(path)?);
        let err = csv_error(path);
        w.write_record(["a", "b", "label", "distance"])
            .map_err(&err)?;
        for (pair, s) in c.set.pairs.iter().zip(&c.scores) {
            w.write_record([
                c.set.items[pair.a].display().to_string(),
                c.set.items[pair.b].display().to_string(),
                if pair.same { "same" } else { "different" }.to_owned(),
                s.distance.to_string(),
            ])
            .map_err(&err)?;
        }
        w.flush().map_err(|source| Error::File {
            path: path.clone(),
            source,
        })?;
    }
    if let Some(path) = &args.curve_csv {
        let mut w = csv::Writer::from_writer(create(path)?);
        let err = csv_error(path);
        w.write_record([
            "threshold",
            "tp",
            "fp",
            "tn",
            "fn",
            "recall",
            "fpr",
            "precision",
        ])
        .map_err(&err)?;
        for p in &c.points {
            w.write_record([
                p.threshold.map_or(String::new(), |t| t.to_string()),
                p.tp.to_string(),
                p.fp.to_string(),
                p.tn.to_string(),
                p.fn_.to_string(),
                p.recall().to_string(),
                p.fpr().to_string(),
                p.precision().map_or(String::new(), |v| v.to_string()),
            ])
            .map_err(&err)?;
        }
        w.flush().map_err(|source| Error::File {
            path: path.clone(),
            source,
        })?;
    }
    if let Some(path) = &args.html {
        let page = html::page(c, setting(c).map(|s| s.text).as_deref());
        std::fs::write(path, page).map_err(|source| Error::File {
            path: path.clone(),
            source,
        })?;
    }
    Ok(())
}
