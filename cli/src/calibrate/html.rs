//! `calibrate --html`: one self-contained page (inline SVG, no script, no
//! external resource): the two distance histograms with the chosen
//! threshold, the ROC curve and the precision-recall curve, each with the
//! chosen point marked.

use std::fmt::Write;

use super::curves::{self, Point, Target};
use super::Calibration;

/// Histogram bins.
const BINS: usize = 40;
/// Plot size, px.
const W: f64 = 560.0;
const H: f64 = 260.0;
/// Margin for the axes' labels, px.
const M: f64 = 40.0;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// An SVG polyline of `(x, y)` in 0..=1 (y up), in the plot area.
fn polyline(points: &[(f64, f64)], colour: &str) -> String {
    let coords: Vec<String> = points
        .iter()
        .map(|(x, y)| {
            format!(
                "{:.1},{:.1}",
                M + x * (W - 2.0 * M),
                H - M - y * (H - 2.0 * M)
            )
        })
        .collect();
    format!(
        "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"/>",
        coords.join(" ")
    )
}

/// The plot frame with axis names and 0/1 ticks.
fn axes(x_name: &str, y_name: &str, x_max: f64, y_max: &str) -> String {
    let x_max = format!("{x_max:.3}");
    format!(
        "<rect x=\"{M}\" y=\"{M}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#888\"/>\
         <text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{x_name}</text>\
         <text x=\"12\" y=\"{}\" transform=\"rotate(-90 12 {})\" text-anchor=\"middle\">{y_name}</text>\
         <text x=\"{M}\" y=\"{}\" text-anchor=\"middle\">0</text>\
         <text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\
         <text x=\"{}\" y=\"{}\" text-anchor=\"end\">{y_max}</text>",
        W - 2.0 * M,
        H - 2.0 * M,
        W / 2.0,
        H - 6.0,
        H / 2.0,
        H / 2.0,
        H - M + 14.0,
        W - M,
        H - M + 14.0,
        x_max,
        M - 4.0,
        M + 4.0,
    )
}

fn svg(title: &str, body: &str) -> String {
    format!(
        "<figure><figcaption>{}</figcaption><svg xmlns=\"http://www.w3.org/2000/svg\" \
         width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" font-size=\"11\">{body}</svg></figure>",
        escape(title)
    )
}

/// The two histograms over a shared range, with the threshold as a line.
fn histograms(c: &Calibration) -> String {
    let max = c
        .scores
        .iter()
        .map(|s| s.distance)
        .fold(0.0f64, f64::max)
        .max(1e-6);
    let bin = |d: f64| (((d / max) * BINS as f64) as usize).min(BINS - 1);
    let mut counts = [[0usize; BINS]; 2];
    let mut totals = [0usize; 2];
    for s in &c.scores {
        counts[s.same as usize][bin(s.distance.max(0.0))] += 1;
        totals[s.same as usize] += 1;
    }
    // Each distribution as a share of its own pairs: the two are visible
    // whatever their sizes.
    let share = |k: usize, i: usize| counts[k][i] as f64 / totals[k].max(1) as f64;
    let peak = (0..BINS)
        .flat_map(|i| [share(0, i), share(1, i)])
        .fold(0.0f64, f64::max)
        .max(1e-9);
    let mut body = axes("distance", "share of pairs", max, &format!("{peak:.2}"));
    let bw = (W - 2.0 * M) / BINS as f64;
    for (k, colour) in [(1usize, "#2a7ab0"), (0usize, "#d9822b")] {
        for i in 0..BINS {
            let h = share(k, i) / peak * (H - 2.0 * M);
            if h > 0.0 {
                let _ = write!(
                    body,
                    "<rect class=\"bar-{}\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\" \
                     fill=\"{colour}\" fill-opacity=\"0.55\"/>",
                    if k == 1 { "same" } else { "different" },
                    M + i as f64 * bw,
                    H - M - h,
                    bw
                );
            }
        }
    }
    if let Some(t) = c.chosen.and_then(|p| p.threshold) {
        let x = M + (t / max).min(1.0) * (W - 2.0 * M);
        let _ = write!(
            body,
            "<line id=\"threshold\" x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{M}\" y2=\"{}\" \
             stroke=\"#c00\" stroke-width=\"2\" stroke-dasharray=\"5 3\"/>\
             <text x=\"{x:.1}\" y=\"{}\" fill=\"#c00\" text-anchor=\"middle\">{t:.4}</text>",
            H - M,
            M - 4.0
        );
    }
    let _ = write!(
        body,
        "<text x=\"{}\" y=\"16\" fill=\"#2a7ab0\">same ({})</text>\
         <text x=\"{}\" y=\"30\" fill=\"#d9822b\">different ({})</text>",
        W - M - 110.0,
        totals[1],
        W - M - 110.0,
        totals[0]
    );
    svg("Distances of the pairs labelled same and different", &body)
}

fn marker(x: f64, y: f64) -> String {
    format!(
        "<circle class=\"chosen\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"5\" fill=\"#c00\"/>",
        M + x * (W - 2.0 * M),
        H - M - y * (H - 2.0 * M)
    )
}

fn roc(points: &[Point], chosen: Option<&Point>) -> String {
    let line: Vec<(f64, f64)> = points.iter().map(|p| (p.fpr(), p.recall())).collect();
    let mut body = axes("false-positive rate", "recall", 1.0, "1");
    body.push_str(&polyline(&line, "#2a7ab0"));
    if let Some(p) = chosen {
        body.push_str(&marker(p.fpr(), p.recall()));
    }
    svg("ROC curve", &body)
}

fn pr(points: &[Point], chosen: Option<&Point>) -> String {
    let line: Vec<(f64, f64)> = points
        .iter()
        .filter_map(|p| Some((p.recall(), p.precision()?)))
        .collect();
    let mut body = axes("recall", "precision", 1.0, "1");
    body.push_str(&polyline(&line, "#2a7ab0"));
    if let Some((p, v)) = chosen.and_then(|p| Some((p, p.precision()?))) {
        body.push_str(&marker(p.recall(), v));
    }
    svg("Precision-recall curve", &body)
}

/// The page.
pub fn page(c: &Calibration, setting: Option<&str>) -> String {
    let (same, different) = c.set.counts();
    let target = match c.target {
        Target::Fpr(f) => format!("false-positive rate at most {f}"),
        Target::Precision(p) => format!("precision at least {p}"),
        Target::Threshold(t) => format!("none, the threshold {t} given"),
    };
    let mut summary = format!(
        "<p>{} items ({} videos), {same} pairs labelled the same, {different} different. \
         Target: {target}. ROC AUC {}.</p>",
        c.set.items.len(),
        c.videos,
        curves::roc_auc(&c.points).map_or("-".into(), |v| format!("{v:.4}"))
    );
    match c.chosen {
        Some(p) => {
            let _ = write!(
                summary,
                "<p id=\"result\">Threshold <b>{}</b> (distance &lt;= threshold is the same): \
                 recall {:.4}, false-positive rate {:.4}, precision {}.</p>",
                p.threshold.unwrap_or(f64::NAN),
                p.recall(),
                p.fpr(),
                p.precision().map_or("-".into(), |v| format!("{v:.4}"))
            );
        }
        None => summary.push_str("<p id=\"result\">No threshold meets the target.</p>"),
    }
    if let Some(s) = setting {
        let _ = write!(summary, "<p>Setting: <code>{}</code></p>", escape(s));
    }
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>DreamSim calibration</title>\
         <style>body{{font-family:sans-serif;max-width:1200px;margin:1em auto}}\
         figure{{display:inline-block;margin:0.5em}}figcaption{{font-weight:bold}}</style>\
         </head><body><h1>DreamSim calibration</h1>{summary}{}{}{}</body></html>\n",
        histograms(c),
        roc(&c.points, c.chosen.as_ref()),
        pr(&c.points, c.chosen.as_ref()),
    )
}
