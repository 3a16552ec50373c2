//! `corpus match --html`: one self-contained page (no server, no network)
//! to review matches by looking: per pair, thumbnails of matched frames side
//! by side (JPEG in `data:` URIs, grabbed by seeking in the videos) and a
//! timeline (inline SVG) of the matched segments on both videos.
//!
//! The paths come from the corpus's records, which someone may have
//! tampered with: a video is opened only when it is a local regular file
//! whose content is still the one recorded (its sha256 is the record's
//! id). A URI (`http://`, `file://`, ...) or any other file is never
//! opened: its thumbnails are shown as refused, with why.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

use base64::Engine as _;
use gst::prelude::*;

use super::PairRow;
use crate::pipeline;
use crate::Error;

/// Thumbnail width, pixels.
const THUMB_WIDTH: i32 = 240;
/// Most frame pairs shown per pair of videos.
const MAX_THUMBS: usize = 6;

/// Grabs JPEG frames of one video at given times.
pub(crate) struct Thumbnailer {
    pipeline: gst::Pipeline,
    sink: gst_app::AppSink,
}

impl Thumbnailer {
    pub(crate) fn open(path: &str) -> Result<Self, Error> {
        let uri = pipeline::to_uri(path)?;
        let pipe = gst::Pipeline::new();
        let decode = pipeline::make("uridecodebin")?;
        decode.set_property("uri", &uri);
        let convert = pipeline::make("videoconvert")?;
        let scale = pipeline::make("videoscale")?;
        let filter = pipeline::make("capsfilter")?;
        filter.set_property(
            "caps",
            gst::Caps::builder("video/x-raw")
                .field("width", THUMB_WIDTH)
                .field("pixel-aspect-ratio", gst::Fraction::new(1, 1))
                .build(),
        );
        let jpeg = pipeline::make("jpegenc")?;
        let sink = gst_app::AppSink::builder().sync(false).build();
        pipe.add_many([&decode, &convert, &scale, &filter, &jpeg, sink.upcast_ref()])?;
        gst::Element::link_many([&convert, &scale, &filter, &jpeg, sink.upcast_ref()])?;
        let convert_weak = convert.downgrade();
        decode.connect_pad_added(move |_, pad| {
            let Some(convert) = convert_weak.upgrade() else {
                return;
            };
            let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
            let video = caps
                .structure(0)
                .is_some_and(|s| s.name().starts_with("video/"));
            let sink = convert.static_pad("sink").expect("sink pad");
            if video && !sink.is_linked() {
                let _ = pad.link(&sink);
            }
        });
        pipe.set_state(gst::State::Paused)
            .map_err(|_| Error::Pipeline(format!("{path}: cannot be opened for thumbnails")))?;
        let (res, _, _) = pipe.state(gst::ClockTime::from_seconds(20));
        res.map_err(|_| Error::Pipeline(format!("{path}: does not preroll for thumbnails")))?;
        Ok(Self {
            pipeline: pipe,
            sink,
        })
    }

    /// The JPEG frame at `seconds`.
    pub(crate) fn grab(&self, seconds: f64) -> Result<Vec<u8>, Error> {
        let t = gst::ClockTime::from_nseconds((seconds.max(0.0) * 1e9) as u64);
        self.pipeline
            .seek_simple(gst::SeekFlags::FLUSH | gst::SeekFlags::ACCURATE, t)
            .map_err(|e| Error::Pipeline(format!("seek to {seconds:.3} s: {e}")))?;
        let _ = self.pipeline.state(gst::ClockTime::from_seconds(20));
        let sample = self
            .sink
            .try_pull_preroll(gst::ClockTime::from_seconds(20))
            .ok_or_else(|| Error::Pipeline(format!("no frame at {seconds:.3} s")))?;
        let buffer = sample
            .buffer()
            .ok_or_else(|| Error::Pipeline("empty sample".into()))?;
        let map = buffer
            .map_readable()
            .map_err(|e| Error::Pipeline(e.to_string()))?;
        Ok(map.to_vec())
    }
}

impl Drop for Thumbnailer {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Why the video recorded at `path` with id `id` may not be opened, if
/// it may not: only the local regular file `corpus add` recorded, with
/// the content it recorded.
fn refusal(path: &str, id: Option<&str>) -> Option<String> {
    if let Some(problem) = crate::untrusted::recorded_path_problem(path) {
        return Some(format!("refused: {problem}"));
    }
    let Some(id) = id else {
        return Some("refused: no recorded content to check the file against".into());
    };
    match std::fs::metadata(path) {
        Err(e) => return Some(format!("video not readable: {e}")),
        Ok(m) if !m.is_file() => {
            return Some(format!(
                "refused: {}, not a regular file",
                crate::untrusted::file_kind(m.file_type())
            ))
        }
        Ok(_) => {}
    }
    match dreamsim_index::file_sha256(Path::new(path)) {
        Err(e) => Some(format!("video not readable: {e}")),
        Ok(hash) if hash != id => Some(
            "refused: the file's content is not the one recorded by corpus add (sha256 differs)"
                .into(),
        ),
        Ok(_) => None,
    }
}

/// The thumbnailer of a pair's video, or why there is none; files are
/// checked once per page (`checked`).
fn open_checked(
    path: &str,
    id: Option<&str>,
    checked: &mut HashMap<String, Option<String>>,
) -> Result<Thumbnailer, String> {
    let key = format!("{path}\0{}", id.unwrap_or(""));
    let refused = checked
        .entry(key)
        .or_insert_with(|| refusal(path, id))
        .clone();
    match refused {
        Some(why) => Err(why),
        None => Thumbnailer::open(path).map_err(|_| "video not readable".into()),
    }
}

/// An `<img>` of the frame of `video` at `seconds`, or a box saying why not.
fn thumb(video: &Result<Thumbnailer, String>, name: &str, seconds: f64, out: &mut String) {
    let grabbed = video.as_ref().map(|v| v.grab(seconds));
    match grabbed {
        Ok(Ok(jpeg)) => {
            let b64 = base64::engine::general_purpose::STANDARD.encode(jpeg);
            let _ = write!(
                out,
                "<figure><img class=\"thumb\" src=\"data:image/jpeg;base64,{b64}\" \
                 alt=\"{} at {seconds:.2} s\"><figcaption>{seconds:.2} s</figcaption></figure>",
                escape(name)
            );
        }
        Ok(Err(e)) => {
            let _ = write!(
                out,
                "<figure class=\"missing\">{}<figcaption>{seconds:.2} s</figcaption></figure>",
                escape(&e.to_string())
            );
        }
        Err(why) => {
            let _ = write!(
                out,
                "<figure class=\"missing refused\">{}<figcaption>{seconds:.2} s\
                 </figcaption></figure>",
                escape(why)
            );
        }
    }
}

/// The timeline: both videos as bars, the segments on them, joined.
fn timeline(row: &PairRow, out: &mut String) {
    let width = 800.0;
    let longest = row.query_duration_s.max(row.candidate_duration_s).max(1e-3);
    let x = |s: f64| 10.0 + s / longest * (width - 20.0);
    let _ = write!(
        out,
        "<svg class=\"timeline\" width=\"{width}\" height=\"90\" viewBox=\"0 0 {width} 90\" \
         xmlns=\"http://www.w3.org/2000/svg\">\
         <rect x=\"{:.1}\" y=\"10\" width=\"{:.1}\" height=\"16\" fill=\"#ddd\"/>\
         <rect x=\"{:.1}\" y=\"60\" width=\"{:.1}\" height=\"16\" fill=\"#ddd\"/>",
        x(0.0),
        x(row.query_duration_s) - x(0.0),
        x(0.0),
        x(row.candidate_duration_s) - x(0.0),
    );
    for s in &row.segments {
        let _ = write!(
            out,
            "<polygon points=\"{:.1},26 {:.1},26 {:.1},60 {:.1},60\" fill=\"#e67e22\" \
             fill-opacity=\"0.3\"/>\
             <rect class=\"segment\" x=\"{:.1}\" y=\"10\" width=\"{:.1}\" height=\"16\" fill=\"#e67e22\">\
             <title>{:.2}-{:.2} s, offset {:+.2} s</title></rect>\
             <rect x=\"{:.1}\" y=\"60\" width=\"{:.1}\" height=\"16\" fill=\"#e67e22\"/>",
            x(s.query_start_s),
            x(s.query_end_s),
            x(s.candidate_end_s),
            x(s.candidate_start_s),
            x(s.query_start_s),
            x(s.query_end_s) - x(s.query_start_s),
            s.query_start_s,
            s.query_end_s,
            s.offset_s,
            x(s.candidate_start_s),
            x(s.candidate_end_s) - x(s.candidate_start_s),
        );
    }
    let _ = write!(
        out,
        "<text x=\"10\" y=\"44\" font-size=\"11\">query {:.2} s / candidate {:.2} s</text></svg>",
        row.query_duration_s, row.candidate_duration_s
    );
}

/// Query times shown: the start, middle and end of each segment, at most
/// [`MAX_THUMBS`] in all.
fn sample_times(row: &PairRow) -> Vec<(f64, f64)> {
    let mut times = Vec::new();
    for s in &row.segments {
        let last = (s.query_end_s - 0.05).max(s.query_start_s);
        for q in [s.query_start_s, (s.query_start_s + last) / 2.0, last] {
            // Segment ends are exclusive: the last frame starts before.
            let c_last = (s.candidate_end_s - 0.05).max(s.candidate_start_s);
            let c = (q + s.offset_s).clamp(s.candidate_start_s, c_last);
            if !times
                .iter()
                .any(|&(t, _): &(f64, f64)| (t - q).abs() < 0.01)
            {
                times.push((q, c));
            }
        }
    }
    times.truncate(MAX_THUMBS);
    times
}

/// Writes the page.
pub fn write(path: &Path, rows: &[PairRow], index: &str) -> Result<(), Error> {
    let mut html = String::new();
    let _ = write!(
        html,
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>gst-dreamsim corpus match</title>\
         <style>body{{font-family:sans-serif;margin:1em}}section{{border-top:1px solid #ccc;\
         padding:0.5em 0}}figure{{display:inline-block;margin:2px;font-size:11px}}\
         .pairs{{display:flex;gap:1em;flex-wrap:wrap}}.frames{{display:flex;flex-direction:column}}\
         .missing{{width:{THUMB_WIDTH}px;height:60px;background:#fee;font-size:11px}}\
         </style></head><body><h1>Video matches</h1><p>Index {}: {} pairs.</p>",
        escape(index),
        rows.len()
    );
    let mut checked = HashMap::new();
    for (i, row) in rows.iter().enumerate() {
        let _ = write!(
            html,
            "<section id=\"pair{i}\"><h2>{} &harr; {}</h2><p>query share {:.1} %, candidate \
             share {:.1} %, {} segment(s){}</p>",
            escape(&row.query),
            escape(&row.candidate),
            row.query_share,
            row.candidate_share,
            row.segments.len(),
            if row.is_match { ", <b>match</b>" } else { "" }
        );
        timeline(row, &mut html);
        let times = sample_times(row);
        if !times.is_empty() {
            let q = open_checked(&row.query, row.query_id.as_deref(), &mut checked);
            let c = open_checked(&row.candidate, Some(&row.candidate_id), &mut checked);
            html.push_str("<div class=\"pairs\">");
            for (qt, ct) in times {
                html.push_str("<div class=\"frames\">");
                thumb(&q, &row.query, qt, &mut html);
                thumb(&c, &row.candidate, ct, &mut html);
                html.push_str("</div>");
            }
            html.push_str("</div>");
        }
        html.push_str("</section>");
    }
    // Says on the page whether every thumbnail decoded (read by the tests
    // through headless Chromium, useful to a reader too).
    html.push_str(
        "<p id=\"status\"></p><script>window.addEventListener('load',function(){\
         var t=document.querySelectorAll('img.thumb'),n=0;\
         t.forEach(function(i){if(i.complete&&i.naturalWidth>0)n++;});\
         document.getElementById('status').textContent='thumbnails loaded: '+n+'/'+t.length;\
         document.body.setAttribute('data-thumbnails',n+'/'+t.length);});</script>\
         </body></html>\n",
    );
    std::fs::write(path, html).map_err(|source| Error::File {
        path: path.to_owned(),
        source,
    })
}
