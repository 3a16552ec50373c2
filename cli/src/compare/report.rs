//! A comparison as one self-contained HTML page: the per-frame distance
//! over the frames as inline SVG (one line per tested stream, the y axis
//! scaled to the distances, the threshold dashed where it falls inside),
//! the pooled figures (a table that fits a 1280-pixel window), and the worst frames beside their reference
//! frames (PNG thumbnails the caller provides, embedded as `data:` URIs).
//! No GStreamer and no external resource: the page opens offline.

use std::fmt::Write as _;

use base64::Engine as _;

use super::log::{metric_name, CompareLog, LogFrame};

/// A worst frame's pictures, as PNG files.
#[derive(Debug, Clone, PartialEq)]
pub struct Thumbnail {
    /// Index of the tested stream in the log.
    pub stream: usize,
    /// The compared frame.
    pub frame: LogFrame,
    /// The reference frame, PNG.
    pub reference_png: Vec<u8>,
    /// The tested frame, PNG.
    pub tested_png: Vec<u8>,
}

/// Line colours, one per stream (cycled).
const COLOURS: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf",
];

const WIDTH: f64 = 800.0;
const HEIGHT: f64 = 300.0;
const MARGIN_LEFT: f64 = 60.0;
const MARGIN_RIGHT: f64 = 20.0;
const MARGIN_TOP: f64 = 20.0;
const MARGIN_BOTTOM: f64 = 40.0;

/// The `n` frames with the largest distances over all streams, largest
/// first (ties: lower stream, then lower frame first), as (stream, frame):
/// the frames whose thumbnails the page shows.
pub fn worst_frames(log: &CompareLog, n: usize) -> Vec<(usize, LogFrame)> {
    let mut all: Vec<(usize, LogFrame)> = log
        .streams
        .iter()
        .enumerate()
        .flat_map(|(i, s)| s.frames.iter().map(move |f| (i, *f)))
        .collect();
    all.sort_by(|a, b| {
        b.1.distance
            .total_cmp(&a.1.distance)
            .then(a.0.cmp(&b.0))
            .then(a.1.frame.cmp(&b.1.frame))
    });
    all.truncate(n);
    all
}

/// Escapes text for HTML and SVG.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The top of the plot's y axis: a tenth above the largest distance, so
/// that a curve of small distances fills the plot rather than lying flat
/// under a threshold far above it; the threshold when no frame was compared.
fn y_top(log: &CompareLog) -> f64 {
    let largest = log
        .streams
        .iter()
        .flat_map(|s| s.frames.iter().map(|f| f.distance))
        .filter(|d| d.is_finite())
        .reduce(f64::max)
        .unwrap_or(log.threshold);
    // Identical frames everywhere (all zero): a small range rather than none.
    largest.max(1e-4) * 1.1
}

/// Decimals for the y axis's labels: enough to tell the five apart.
fn label_decimals(top: f64) -> usize {
    let step = top / 4.0;
    (2.0 - step.log10().floor()).clamp(3.0, 8.0) as usize
}

/// The distance plot: x the tested frame number, y the distance from 0 to
/// [`y_top`] (its value in the `data-y-max` attribute); the threshold's
/// dashed line only where it falls inside, a note on it otherwise.
pub fn svg_plot(log: &CompareLog) -> String {
    let last_frame = log
        .streams
        .iter()
        .flat_map(|s| s.frames.iter().map(|f| f.frame))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let top = y_top(log);
    let decimals = label_decimals(top);
    let plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT;
    let plot_h = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM;
    let x = |frame: f64| MARGIN_LEFT + frame / last_frame * plot_w;
    let y = |d: f64| MARGIN_TOP + (1.0 - d.clamp(0.0, top) / top) * plot_h;

    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" \
         width=\"{WIDTH}\" height=\"{HEIGHT}\" font-family=\"sans-serif\" font-size=\"11\" \
         data-y-max=\"{top}\">"
    );
    // Axes, grid and labels.
    let _ = write!(
        svg,
        "<rect x=\"{MARGIN_LEFT}\" y=\"{MARGIN_TOP}\" width=\"{plot_w}\" height=\"{plot_h}\" \
         fill=\"none\" stroke=\"#888\"/>"
    );
    for i in 0..=4 {
        let d = top * f64::from(i) / 4.0;
        let _ = write!(
            svg,
            "<line class=\"grid\" x1=\"{MARGIN_LEFT}\" x2=\"{}\" y1=\"{y0:.1}\" y2=\"{y0:.1}\" \
             stroke=\"#ddd\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{d:.decimals$}</text>",
            MARGIN_LEFT + plot_w,
            MARGIN_LEFT - 6.0,
            y(d) + 4.0,
            y0 = y(d),
        );
    }
    for i in 0..=4 {
        let frame = (last_frame * f64::from(i) / 4.0).round();
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{frame}</text>",
            x(frame),
            MARGIN_TOP + plot_h + 16.0
        );
    }
    let _ = write!(
        svg,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">frame</text>\
         <text x=\"14\" y=\"{}\" text-anchor=\"middle\" transform=\"rotate(-90 14 {})\">\
         DreamSim distance</text>",
        MARGIN_LEFT + plot_w / 2.0,
        HEIGHT - 4.0,
        MARGIN_TOP + plot_h / 2.0,
        MARGIN_TOP + plot_h / 2.0,
    );
    // The threshold, where the axis reaches it; said in words where not.
    if log.threshold.is_finite() && (0.0..=top).contains(&log.threshold) {
        let _ = write!(
            svg,
            "<line class=\"threshold\" x1=\"{MARGIN_LEFT}\" x2=\"{}\" y1=\"{t:.1}\" y2=\"{t:.1}\" \
             stroke=\"#555\" stroke-dasharray=\"4 3\"/>",
            MARGIN_LEFT + plot_w,
            t = y(log.threshold),
        );
    } else {
        let _ = write!(
            svg,
            "<text class=\"threshold-note\" x=\"{}\" y=\"{}\" text-anchor=\"end\" fill=\"#555\">\
             threshold {} (above the plot)</text>",
            // In the top margin, clear of the streams' names inside the plot.
            MARGIN_LEFT + plot_w,
            MARGIN_TOP - 6.0,
            log.threshold,
        );
    }
    // One line per stream, in frame order.
    for (i, stream) in log.streams.iter().enumerate() {
        let mut frames: Vec<&LogFrame> = stream.frames.iter().collect();
        frames.sort_by_key(|f| f.frame);
        let points: Vec<String> = frames
            .iter()
            .map(|f| format!("{:.1},{:.1}", x(f.frame as f64), y(f.distance)))
            .collect();
        let colour = COLOURS[i % COLOURS.len()];
        let _ = write!(
            svg,
            "<polyline class=\"stream\" data-metric=\"{}\" fill=\"none\" stroke=\"{colour}\" \
             stroke-width=\"1.5\" points=\"{}\"><title>{}</title></polyline>",
            metric_name(i),
            points.join(" "),
            escape(&stream.source),
        );
        let _ = write!(
            svg,
            "<text x=\"{}\" y=\"{}\" fill=\"{colour}\">{}</text>",
            MARGIN_LEFT + 8.0,
            MARGIN_TOP + 14.0 + 14.0 * i as f64,
            escape(&stream.source),
        );
    }
    svg.push_str("</svg>");
    svg
}

fn png_uri(png: &[u8]) -> String {
    format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(png)
    )
}

/// The whole page.
pub fn html(log: &CompareLog, title: &str, thumbnails: &[Thumbnail]) -> String {
    let mut page = String::new();
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>{t}</title><style>\
         body{{font-family:sans-serif;margin:2em;color:#222}}\
         table{{border-collapse:collapse;max-width:100%}}\
         td,th{{border:1px solid #ccc;padding:4px 6px;text-align:right}}\
         th{{background:#f3f3f3}}td.name{{text-align:left;overflow-wrap:anywhere}}\
         figure{{display:inline-block;margin:0 1em 1em 0}}img{{max-width:320px}}\
         </style></head><body><h1>{t}</h1>\
         <p>Reference: {reference}. Model: {model}. Threshold: {threshold}. {version}</p>",
        t = escape(title),
        reference = escape(&log.reference),
        model = escape(&log.model),
        threshold = log.threshold,
        version = escape(&log.version),
    );
    page.push_str("<h2>Distance per frame</h2>");
    page.push_str(&svg_plot(log));
    page.push_str(
        "<h2>Pooled</h2><table><tr><th>stream</th><th>frames</th><th>unpaired</th>\
         <th>mean</th><th>harmonic mean</th><th>min</th><th>max</th><th>p5</th><th>p50</th>\
         <th>p95</th><th>over threshold</th></tr>",
    );
    for stream in &log.streams {
        let _ = write!(
            page,
            "<tr><td class=\"name\">{}</td>",
            escape(&stream.source)
        );
        match stream.pooled(log.threshold) {
            Some(p) => {
                let _ = write!(page, "<td>{}</td><td>{}</td>", p.frames, stream.unpaired);
                for v in [p.mean, p.harmonic_mean, p.min, p.max, p.p5, p.p50, p.p95] {
                    let _ = write!(page, "<td>{v:.4}</td>");
                }
                let _ = write!(page, "<td>{}</td>", p.over_threshold);
            }
            None => {
                let _ = write!(
                    page,
                    "<td>0</td><td>{}</td><td colspan=\"8\">no frame compared</td>",
                    stream.unpaired
                );
            }
        }
        page.push_str("</tr>");
    }
    page.push_str("</table>");
    if !thumbnails.is_empty() {
        page.push_str("<h2>Worst frames</h2>");
        for t in thumbnails {
            let source = log
                .streams
                .get(t.stream)
                .map(|s| escape(&s.source))
                .unwrap_or_default();
            let _ = write!(
                page,
                "<div class=\"worst\"><h3>{source}, frame {frame}: distance {d:.4}</h3>\
                 <figure><img alt=\"reference frame {rf}\" src=\"{r}\">\
                 <figcaption>reference frame {rf}</figcaption></figure>\
                 <figure><img alt=\"tested frame {frame}\" src=\"{s}\">\
                 <figcaption>tested frame {frame}</figcaption></figure></div>",
                frame = t.frame.frame,
                d = t.frame.distance,
                rf = t.frame.reference_frame,
                r = png_uri(&t.reference_png),
                s = png_uri(&t.tested_png),
            );
        }
    }
    page.push_str("</body></html>\n");
    page
}

#[cfg(test)]
mod tests {
    use super::super::log::LogStream;
    use super::*;

    fn frame(frame: u64, distance: f64) -> LogFrame {
        LogFrame {
            frame,
            reference_frame: frame,
            distance,
        }
    }

    fn sample() -> CompareLog {
        CompareLog {
            version: "gst-dreamsim 0.1.0".into(),
            model: "ensemble".into(),
            reference: "ref <1>.mp4".into(),
            fps: Some(25.0),
            threshold: 0.2,
            streams: vec![
                LogStream {
                    source: "a&b.mp4".into(),
                    frames: vec![frame(2, 0.1), frame(0, 0.0), frame(1, 0.4)],
                    unpaired: 0,
                },
                LogStream {
                    source: "c.mp4".into(),
                    frames: vec![frame(0, 0.3), frame(1, 0.05)],
                    unpaired: 1,
                },
                LogStream {
                    source: "empty.mp4".into(),
                    frames: vec![],
                    unpaired: 2,
                },
            ],
        }
    }

    #[test]
    fn worst_frames_are_the_largest_distances() {
        let w = worst_frames(&sample(), 2);
        assert_eq!(w, vec![(0, frame(1, 0.4)), (1, frame(0, 0.3))]);
        assert_eq!(worst_frames(&sample(), 10).len(), 5);
    }

    #[test]
    fn the_plot_has_one_line_per_stream_and_the_threshold() {
        let svg = svg_plot(&sample());
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 3);
        assert_eq!(svg.matches("class=\"threshold\"").count(), 1);
        // x: frames 0..2 over 720 px from 60; y: 0..0.44 over 240 px from 20,
        // frames in order whatever the log's order.
        assert!(
            svg.contains("points=\"60.0,260.0 420.0,41.8 780.0,205.5\""),
            "{svg}"
        );
        assert!(svg.contains("a&amp;b.mp4") && !svg.contains("a&b"));
        // Well-formed enough for an XML parser: tags balance.
        assert_eq!(
            svg.matches("<polyline").count(),
            svg.matches("</polyline>").count()
        );
    }

    #[test]
    fn the_y_axis_follows_small_distances_below_the_threshold() {
        // A typical encode: distances far under the 0.2 threshold.
        let mut log = sample();
        log.streams = vec![LogStream {
            source: "x.mp4".into(),
            frames: vec![frame(0, 0.002), frame(1, 0.01), frame(2, 0.004)],
            unpaired: 0,
        }];
        let svg = svg_plot(&log);
        // The top a tenth above 0.01, the largest point at the plot's top
        // tenth (y = 20 + 240 * (1 - 1 / 1.1)), not flat on the axis.
        assert!(svg.contains("data-y-max=\"0.011"), "{svg}");
        assert!(svg.contains("420.0,41.8"), "{svg}");
        // The threshold is outside: no line, a note instead.
        assert!(!svg.contains("class=\"threshold\""), "{svg}");
        assert!(svg.contains("threshold 0.2 (above the plot)"), "{svg}");
        // Labels with enough decimals to differ: 0.00275 steps.
        assert!(
            svg.contains(">0.00275<") && svg.contains(">0.01100<"),
            "{svg}"
        );
        // No frame at all: the axis goes to the threshold, its line inside.
        log.streams[0].frames.clear();
        let svg = svg_plot(&log);
        assert!(svg.contains("class=\"threshold\""), "{svg}");
    }

    #[test]
    fn the_page_is_self_contained() {
        let t = Thumbnail {
            stream: 0,
            frame: frame(1, 0.4),
            reference_png: b"\x89PNG ref".to_vec(),
            tested_png: b"\x89PNG test".to_vec(),
        };
        let page = html(&sample(), "Model <v2> vs reference", &[t]);
        assert!(page.starts_with("<!DOCTYPE html>"));
        assert!(page.contains("<title>Model &lt;v2&gt; vs reference</title>"));
        assert!(page.contains("ref &lt;1&gt;.mp4"));
        assert!(page.contains(&format!(
            "data:image/png;base64,{}",
            base64::engine::general_purpose::STANDARD.encode(b"\x89PNG ref")
        )));
        assert!(page.contains("reference frame 1") && page.contains("tested frame 1"));
        assert!(page.contains("no frame compared"));
        // Pooled mean of stream a: (0 + 0.4 + 0.1) / 3.
        assert!(page.contains("<td>0.1667</td>"));
        assert!(!page.contains("http://") || page.matches("http://").count() == 1);
        assert!(!page.contains("<script") && !page.contains("<link"));
    }
}
