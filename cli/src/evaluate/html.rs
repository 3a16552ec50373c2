//! `evaluate --html`: one self-contained page (inline SVG, pictures as
//! data: URIs, no script, nothing fetched): the distributions of the item
//! figures, the least consistent videos with the two frames of their
//! largest jump side by side, the closest copies beside the known item
//! they are near, and the least diverse group as a grid.
//!
//! Pictures: an image item is read and scaled here; a video's frame is
//! grabbed at its time by `corpus match --html`'s thumbnailer. A known
//! item is shown when the index records a file (or its label is a path)
//! that is a readable local image; otherwise its label alone.

use std::fmt::Write as _;
use std::path::Path;

use base64::Engine as _;

use super::output::{Evaluation, GroupResult};
use crate::common::CommonArgs;
use crate::corpus::Thumbnailer;
use crate::index::{kind_of_file, Kind};
use crate::Error;

/// Width of the pictures, px.
const THUMB_WIDTH: u32 = 240;
/// Videos shown as least consistent, copies shown, items of the grid.
const MAX_VIDEOS: usize = 5;
const MAX_COPIES: usize = 5;
const MAX_GRID: usize = 24;
/// Histogram bins and size, px.
const BINS: usize = 30;
const W: f64 = 420.0;
const H: f64 = 160.0;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// An image file scaled to [`THUMB_WIDTH`], as a PNG data URI.
fn image_uri(path: &Path) -> Result<String, String> {
    let img = dreamsim::image_file::read_rgb(path).map_err(|e| e.to_string())?;
    let picture = image::RgbImage::from_raw(img.width as u32, img.height as u32, img.data)
        .ok_or("a picture smaller than its size")?;
    let height =
        ((img.height as f64 * THUMB_WIDTH as f64 / img.width.max(1) as f64).round() as u32).max(1);
    let small = image::imageops::resize(
        &picture,
        THUMB_WIDTH,
        height,
        image::imageops::FilterType::Triangle,
    );
    let mut png = Vec::new();
    small
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|e| e.to_string())?;
    Ok(format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(png)
    ))
}

/// A video's frame at `seconds`, as a JPEG data URI.
fn frame_uri(video: &Result<Thumbnailer, String>, seconds: f64) -> Result<String, String> {
    let v = video.as_ref().map_err(Clone::clone)?;
    let jpeg = v.grab(seconds).map_err(|e| e.to_string())?;
    Ok(format!(
        "data:image/jpeg;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(jpeg)
    ))
}

fn open_video(path: &Path) -> Result<Thumbnailer, String> {
    Thumbnailer::open(&path.to_string_lossy()).map_err(|e| e.to_string())
}

/// A `<figure>` with the picture (or why there is none) and a caption.
fn figure(out: &mut String, picture: Result<String, String>, caption: &str) {
    match picture {
        Ok(uri) => {
            let _ = write!(
                out,
                "<figure><img class=\"thumb\" src=\"{uri}\" alt=\"{c}\"><figcaption>{c}</figcaption></figure>",
                c = escape(caption)
            );
        }
        Err(why) => {
            let _ = write!(
                out,
                "<figure class=\"missing\">{}<figcaption>{}</figcaption></figure>",
                escape(&why),
                escape(caption)
            );
        }
    }
}

/// An SVG histogram of `values` over 0..=max.
fn histogram(out: &mut String, name: &str, values: &[f64]) {
    let max = values.iter().copied().fold(0.0f64, f64::max).max(1e-6);
    let mut counts = [0usize; BINS];
    for &v in values {
        counts[((v / max * BINS as f64) as usize).min(BINS - 1)] += 1;
    }
    let top = *counts.iter().max().unwrap_or(&1) as f64;
    let bar_w = (W - 40.0) / BINS as f64;
    let _ = write!(
        out,
        "<div class=\"plot\"><h3>{n} ({k} items)</h3><svg class=\"hist\" id=\"hist-{n}\" width=\"{W}\" height=\"{H}\" \
         viewBox=\"0 0 {W} {H}\" xmlns=\"http://www.w3.org/2000/svg\">\
         <rect x=\"20\" y=\"10\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#888\"/>",
        W - 40.0,
        H - 40.0,
        n = escape(name),
        k = values.len()
    );
    for (i, &c) in counts.iter().enumerate() {
        if c == 0 {
            continue;
        }
        let h = c as f64 / top * (H - 40.0);
        let _ = write!(
            out,
            "<rect class=\"bar\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"#4a7ab5\"/>",
            20.0 + i as f64 * bar_w,
            H - 30.0 - h,
            bar_w - 1.0
        );
    }
    let _ = write!(
        out,
        "<text x=\"20\" y=\"{y}\">0</text><text x=\"{}\" y=\"{y}\" text-anchor=\"end\">{max:.4}</text></svg></div>",
        W - 20.0,
        y = H - 12.0
    );
}

/// A table of a group's (or the overall) figures.
fn figures_table(out: &mut String, title: &str, g: &GroupResult) {
    let _ = write!(
        out,
        "<h3>{}</h3><table class=\"figures\"><tr><th>figure</th><th>value</th><th>95 % interval</th><th>n</th></tr>",
        escape(title)
    );
    for (name, e) in &g.metrics {
        let ci = e
            .ci95
            .map_or_else(|| "-".to_owned(), |(lo, hi)| format!("{lo:.4} to {hi:.4}"));
        let _ = write!(
            out,
            "<tr><td>{name}</td><td>{:.4}</td><td>{ci}</td><td>{}</td></tr>",
            e.value, e.n
        );
    }
    out.push_str("</table>");
}

/// The page, written to `path`.
pub fn write(path: &Path, e: &Evaluation, _common: &CommonArgs) -> Result<(), Error> {
    let mut out = String::new();
    out.push_str(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>gst-dreamsim evaluate</title>\
         <style>body{font-family:sans-serif;margin:2em;max-width:1100px}\
         figure{display:inline-block;margin:4px;vertical-align:top;max-width:250px}\
         figcaption{font-size:12px;word-break:break-all}.pair{margin:1em 0}\
         .missing{width:240px;height:60px;background:#eee;font-size:12px}\
         table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px}\
         .plot{display:inline-block}</style></head><body>",
    );
    let _ = write!(
        out,
        "<h1>gst-dreamsim evaluate</h1><p>{} items, model {} ({} dimensions, sha256 {}). \
         Distances are DreamSim's (1 - cosine); a video counts in diversity by its \
         sampled frames' normalised mean embedding.</p>",
        e.items.len(),
        escape(&e.model.kind),
        e.model.dim,
        &e.model.sha256[..e.model.sha256.len().min(12)]
    );

    // Figures and distributions.
    figures_table(&mut out, "Overall", &e.overall);
    for g in &e.groups {
        figures_table(
            &mut out,
            &format!("Group {}", g.id.as_deref().unwrap_or_default()),
            g,
        );
    }
    out.push_str("<h2 id=\"distributions\">Distributions</h2>");
    let per_item = |name: &str| -> Vec<f64> {
        (0..e.items.len())
            .filter_map(|i| e.item_metrics(i).get(name).copied())
            .collect()
    };
    for name in [
        "temporal_prev",
        "temporal_first",
        "max_jump",
        "reference_distance",
        "nearest_distance",
        "group_mean_distance",
    ] {
        let values = per_item(name);
        if !values.is_empty() {
            histogram(&mut out, name, &values);
        }
    }
    let diversities: Vec<f64> = e
        .groups
        .iter()
        .filter_map(|g| g.metrics.get("diversity").map(|d| d.value))
        .collect();
    if !diversities.is_empty() {
        histogram(&mut out, "group diversity", &diversities);
    }

    // The least consistent videos: highest mean distance to the previous frame.
    let mut videos: Vec<usize> = (0..e.items.len())
        .filter(|&i| e.results[i].temporal.is_some())
        .collect();
    videos.sort_by(|&a, &b| {
        let t = |i: usize| e.results[i].temporal.map_or(0.0, |t| t.prev);
        t(b).total_cmp(&t(a))
    });
    out.push_str("<h2 id=\"least-consistent\">Least consistent videos</h2>");
    if videos.is_empty() {
        out.push_str("<p>No video of two sampled frames or more.</p>");
    }
    for &i in videos.iter().take(MAX_VIDEOS) {
        let t = e.results[i].temporal.expect("filtered above");
        let times = &e.results[i].times_ns;
        let _ = write!(
            out,
            "<div class=\"pair jump\"><p>{}: mean distance to the previous frame {:.4}, \
             largest jump {:.4} into sampled frame {}</p>",
            escape(&e.items[i].shown),
            t.prev,
            t.max_jump,
            t.at
        );
        let video = open_video(&e.items[i].path);
        for f in [t.at - 1, t.at] {
            match times.get(f) {
                Some(&ns) => {
                    let s = ns as f64 / 1e9;
                    figure(
                        &mut out,
                        frame_uri(&video, s),
                        &format!("frame {f} at {s:.3} s"),
                    );
                }
                None => figure(
                    &mut out,
                    Err("the frame's time is not known (cached without it)".into()),
                    &format!("frame {f}"),
                ),
            }
        }
        out.push_str("</div>");
    }

    // The closest copies.
    let mut near: Vec<usize> = (0..e.items.len())
        .filter(|&i| e.results[i].nearest.is_some())
        .collect();
    near.sort_by(|&a, &b| {
        let d = |i: usize| e.results[i].nearest.as_ref().map_or(2.0, |n| n.distance);
        d(a).total_cmp(&d(b))
    });
    out.push_str("<h2 id=\"copies\">Closest to known items</h2>");
    if near.is_empty() {
        out.push_str("<p>No --against index.</p>");
    }
    for &i in near.iter().take(MAX_COPIES) {
        let n = e.results[i].nearest.as_ref().expect("filtered above");
        let item = &e.items[i];
        let _ = write!(
            out,
            "<div class=\"pair copy{}\"><p>{} is {:.4} from {}{}</p>",
            if n.copy { " flagged" } else { "" },
            escape(&item.shown),
            n.distance,
            escape(&n.label),
            if n.copy { ": a copy" } else { "" }
        );
        let own = match item.kind {
            Kind::Image => image_uri(&item.path),
            Kind::Video => frame_uri(&open_video(&item.path), n.time_ns.unwrap_or(0) as f64 / 1e9),
        };
        figure(&mut out, own, &item.shown);
        let known = [n.known_path.as_deref(), Some(n.label.as_str())]
            .into_iter()
            .flatten()
            .map(Path::new)
            .find(|p| kind_of_file(p) == Kind::Image && p.is_file());
        let known_picture = match known {
            Some(p) => image_uri(p),
            None => Err(format!("known item {} (no readable local image)", n.label)),
        };
        figure(&mut out, known_picture, &format!("known: {}", n.label));
        out.push_str("</div>");
    }

    // The least diverse group.
    out.push_str("<h2 id=\"least-diverse\">Least diverse group</h2>");
    let least = e
        .groups
        .iter()
        .filter_map(|g| g.metrics.get("diversity").map(|d| (g, d.value)))
        .min_by(|a, b| a.1.total_cmp(&b.1));
    match least {
        None => out.push_str("<p>No group of two items or more.</p>"),
        Some((g, d)) => {
            let _ = write!(
                out,
                "<p>Group {}: diversity {d:.4}, {} items</p><div class=\"grid\">",
                escape(g.id.as_deref().unwrap_or_default()),
                g.items
            );
            for &i in g.members.iter().take(MAX_GRID) {
                let item = &e.items[i];
                let picture = match item.kind {
                    Kind::Image => image_uri(&item.path),
                    Kind::Video => {
                        let first = e.results[i].times_ns.first().copied().unwrap_or(0);
                        frame_uri(&open_video(&item.path), first as f64 / 1e9)
                    }
                };
                figure(&mut out, picture, &item.shown);
            }
            out.push_str("</div>");
        }
    }
    out.push_str("</body></html>\n");
    std::fs::write(path, out).map_err(|source| Error::File {
        path: path.to_owned(),
        source,
    })
}
