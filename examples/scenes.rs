//! `scenes`: a video in, its scene list out.
//!
//! Runs `uridecodebin ! videoconvert ! dreamsim ! dreamsimscene ! fakesink`,
//! collects the `dreamsim-scene` messages and writes the scenes in
//! PySceneDetect's `list-scenes` CSV layout (standard output by default) and,
//! when asked, as a CMX 3600 EDL that editors import.
//!
//! ```text
//! cargo run -p gst-plugin-dreamsim --example scenes -- \
//!     --model tests/fixtures/tiny_ensemble.onnx .cache/media/bikes.mp4
//! ```

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gst::prelude::*;
use gstdreamsim::scene_message::SceneMessage;

const USAGE: &str = "\
Usage: scenes [OPTIONS] INPUT

Finds where the scenes of a video start, with DreamSim, and writes the scene
list in PySceneDetect's list-scenes CSV layout.

  INPUT                     video file or URI
  --model PATH              DreamSim ONNX model (default: the ensemble that
                            tools/get_model.sh installs)
  --provider NAME           auto, cpu, cuda or tensorrt (default: auto)
  --threshold D             fixed mode: a scene starts where the distance to
                            the previous frame reaches D
  --adaptive-threshold R    adaptive mode (the default): a scene starts where
                            the distance is R times the mean of its
                            neighbours' (default: 3)
  --min-distance D          adaptive mode: smallest distance that can start a
                            scene (default: 0.05)
  --window N                adaptive mode: neighbours on each side (default: 2)
  --min-scene-len N         frames before another scene can start (default: 15)
  --csv FILE                write the CSV to FILE (default: standard output)
  --edl FILE                also write a CMX 3600 EDL to FILE
  --quiet                   no progress or summary on standard error
  -h, --help                this text
";

#[derive(Debug, Default)]
struct Options {
    input: String,
    model: Option<String>,
    provider: Option<String>,
    threshold: Option<f64>,
    adaptive_threshold: Option<f64>,
    min_distance: Option<f64>,
    window: Option<u32>,
    min_scene_len: Option<u32>,
    csv: Option<PathBuf>,
    edl: Option<PathBuf>,
    quiet: bool,
}

fn parse_args(args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut o = Options::default();
    let mut input = None;
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        let mut value = |what: &str| -> Result<String, String> {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{name} needs {what}"))
        };
        fn num<T: std::str::FromStr>(name: &str, v: String) -> Result<T, String> {
            v.parse()
                .map_err(|_| format!("{name}: `{v}` is not a valid number"))
        }
        match name.as_str() {
            "-h" | "--help" => return Err(String::new()),
            "--model" => o.model = Some(value("a path")?),
            "--provider" => {
                let p = value("a name")?;
                if !["auto", "cpu", "cuda", "tensorrt"].contains(&p.as_str()) {
                    return Err(format!(
                        "--provider: `{p}` is not auto, cpu, cuda or tensorrt"
                    ));
                }
                o.provider = Some(p);
            }
            "--threshold" => o.threshold = Some(num(&name, value("a distance")?)?),
            "--adaptive-threshold" => o.adaptive_threshold = Some(num(&name, value("a ratio")?)?),
            "--min-distance" => o.min_distance = Some(num(&name, value("a distance")?)?),
            "--window" => o.window = Some(num(&name, value("a frame count")?)?),
            "--min-scene-len" => o.min_scene_len = Some(num(&name, value("a frame count")?)?),
            "--csv" => o.csv = Some(value("a path")?.into()),
            "--edl" => o.edl = Some(value("a path")?.into()),
            "--quiet" => o.quiet = true,
            s if s.starts_with('-') && s.len() > 1 => return Err(format!("unknown option {s}")),
            _ if input.is_none() => input = Some(arg),
            _ => return Err(format!("unexpected argument {arg}")),
        }
    }
    if o.threshold.is_some()
        && (o.adaptive_threshold.is_some() || o.min_distance.is_some() || o.window.is_some())
    {
        return Err("--threshold (fixed mode) does not go with the adaptive options".into());
    }
    o.input = input.ok_or("no INPUT given")?;
    Ok(o)
}

/// A file path or a URI, as a URI.
fn to_uri(input: &str) -> Result<String, String> {
    if input.contains("://") {
        return Ok(input.to_owned());
    }
    let path = Path::new(input);
    if !path.exists() {
        return Err(format!("{input}: no such file"));
    }
    let absolute = std::fs::canonicalize(path).map_err(|e| format!("{input}: {e}"))?;
    gst::glib::filename_to_uri(&absolute, None)
        .map(|u| u.to_string())
        .map_err(|e| format!("{input}: {e}"))
}

fn make(factory: &str) -> Result<gst::Element, String> {
    gst::ElementFactory::make(factory).build().map_err(|_| {
        format!("GStreamer element {factory} is missing (is the plugin that has it installed?)")
    })
}

/// `uridecodebin` for `uri`, its first video stream linked to `video_sink`,
/// the other streams to fakesinks.
fn add_decoder(
    pipeline: &gst::Pipeline,
    uri: &str,
    video_sink: &gst::Element,
) -> Result<(), String> {
    let decoder = gst::ElementFactory::make("uridecodebin")
        .property("uri", uri)
        .build()
        .map_err(|_| "GStreamer element uridecodebin is missing".to_string())?;
    pipeline.add(&decoder).map_err(|e| e.to_string())?;
    // Without a video stream nothing would ever reach EOS: say so instead.
    let video_pad = video_sink.static_pad("sink").expect("sink pad");
    decoder.connect_no_more_pads(move |decoder| {
        if !video_pad.is_linked() {
            let _ = decoder.post_message(
                gst::message::Error::builder(
                    gst::StreamError::WrongType,
                    "The input has no video stream",
                )
                .src(decoder)
                .build(),
            );
        }
    });
    let pipeline = pipeline.downgrade();
    let video_sink = video_sink.downgrade();
    decoder.connect_pad_added(move |_, pad| {
        let (Some(pipeline), Some(video_sink)) = (pipeline.upgrade(), video_sink.upgrade()) else {
            return;
        };
        let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
        let is_video = caps
            .structure(0)
            .is_some_and(|s| s.name().starts_with("video/"));
        let sink_pad = video_sink.static_pad("sink").expect("sink pad");
        if is_video && !sink_pad.is_linked() {
            if let Err(e) = pad.link(&sink_pad) {
                eprintln!("scenes: cannot link the video stream: {e:?}");
            }
            return;
        }
        // Audio and further video streams: consumed, not used.
        let Ok(sink) = gst::ElementFactory::make("fakesink")
            .property("sync", false)
            .property("async", false)
            .build()
        else {
            return;
        };
        if pipeline.add(&sink).is_ok() {
            let _ = sink.sync_state_with_parent();
            let _ = pad.link(&sink.static_pad("sink").expect("sink pad"));
        }
    });
    Ok(())
}

/// Progress on standard error: a line redrawn in place on a terminal, a
/// line every ten seconds otherwise.
struct Progress {
    started: Instant,
    shown: Instant,
    interactive: bool,
    enabled: bool,
}

impl Progress {
    fn new(enabled: bool) -> Self {
        let now = Instant::now();
        Self {
            started: now,
            shown: now,
            interactive: std::io::stderr().is_terminal(),
            enabled,
        }
    }

    fn show(&mut self, pipeline: &gst::Pipeline, frames: u64, what: &str) {
        let every = if self.interactive { 0.5 } else { 10.0 };
        if !self.enabled || self.shown.elapsed() < Duration::from_secs_f64(every) {
            return;
        }
        self.shown = Instant::now();
        let position = pipeline.query_position::<gst::ClockTime>();
        let duration = pipeline.query_duration::<gst::ClockTime>();
        let percent = match (position, duration) {
            (Some(p), Some(d)) if d > gst::ClockTime::ZERO => {
                format!(" ({:.1} %)", 100.0 * p.seconds_f64() / d.seconds_f64())
            }
            _ => String::new(),
        };
        let fps = frames as f64 / self.started.elapsed().as_secs_f64().max(1e-9);
        let line = format!(
            "scenes: {} / {}{percent}, {frames} frames, {fps:.1} fps, {what}",
            position.map_or("--".into(), |t| timecode(t.seconds_f64())),
            duration.map_or("--".into(), |t| timecode(t.seconds_f64())),
        );
        if self.interactive {
            eprint!("\r{line}\x1b[K");
        } else {
            eprintln!("{line}");
        }
    }

    fn done(&self) {
        if self.enabled && self.interactive {
            eprint!("\r\x1b[K");
        }
    }
}

/// A scene start, as the scene list needs it.
#[derive(Debug, Clone, Copy)]
struct Start {
    frame: u64,
    stream_time: Option<gst::ClockTime>,
}

/// Runs the pipeline; returns the scene starts, the number of frames, the
/// frame rate and the end of the last frame in stream time.
struct Analysis {
    starts: Vec<Start>,
    frames: u64,
    framerate: Option<gst::Fraction>,
    end: Option<gst::ClockTime>,
}

fn analyse(o: &Options) -> Result<Analysis, String> {
    let uri = to_uri(&o.input)?;
    let pipeline = gst::Pipeline::new();
    let convert = make("videoconvert")?;
    let dreamsim = make("dreamsim")?;
    let scene = make("dreamsimscene")?;
    let sink = gst::ElementFactory::make("fakesink")
        .property("sync", false)
        .build()
        .map_err(|_| "GStreamer element fakesink is missing".to_string())?;

    dreamsim.set_property("post-messages", false);
    if let Some(m) = &o.model {
        dreamsim.set_property("model-location", m);
    }
    if let Some(p) = &o.provider {
        dreamsim.set_property_from_str("execution-provider", p);
    }
    match o.threshold {
        Some(t) => {
            scene.set_property_from_str("mode", "fixed");
            scene.set_property("threshold", t);
        }
        None => {
            scene.set_property_from_str("mode", "adaptive");
            if let Some(r) = o.adaptive_threshold {
                scene.set_property("adaptive-threshold", r);
            }
            if let Some(d) = o.min_distance {
                scene.set_property("min-distance", d);
            }
            if let Some(w) = o.window {
                scene.set_property("window", w);
            }
        }
    }
    if let Some(n) = o.min_scene_len {
        scene.set_property("min-scene-length", n);
    }

    pipeline
        .add_many([&convert, &dreamsim, &scene, &sink])
        .map_err(|e| e.to_string())?;
    gst::Element::link_many([&convert, &dreamsim, &scene, &sink]).map_err(|e| e.to_string())?;
    add_decoder(&pipeline, &uri, &convert)?;

    // Frames and the end of the last one, counted where they leave.
    let frames = Arc::new(AtomicU64::new(0));
    let end = Arc::new(AtomicU64::new(u64::MAX));
    let sink_pad = sink.static_pad("sink").expect("sink pad");
    {
        let (frames, end) = (frames.clone(), end.clone());
        sink_pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
            if let Some(buffer) = info.buffer() {
                frames.fetch_add(1, Ordering::Relaxed);
                let segment = pad.sticky_event::<gst::event::Segment>(0);
                let stream_end = buffer.pts().and_then(|pts| {
                    let pts = pts + buffer.duration().unwrap_or(gst::ClockTime::ZERO);
                    segment?
                        .segment()
                        .downcast_ref::<gst::ClockTime>()?
                        .to_stream_time(pts)
                });
                if let Some(t) = stream_end {
                    end.store(t.nseconds(), Ordering::Relaxed);
                }
            }
            gst::PadProbeReturn::Ok
        });
    }

    let bus = pipeline.bus().expect("pipeline bus");
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|_| "the pipeline does not start".to_string())?;
    let mut progress = Progress::new(!o.quiet);
    let mut starts = Vec::new();
    let result = loop {
        let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(200)) else {
            progress.show(
                &pipeline,
                frames.load(Ordering::Relaxed),
                &format!("{} scenes", starts.len()),
            );
            continue;
        };
        if let Some(m) = SceneMessage::from_message(&msg) {
            starts.push(Start {
                frame: m.frame,
                stream_time: m.stream_time,
            });
            continue;
        }
        match msg.view() {
            gst::MessageView::Eos(_) => break Ok(()),
            gst::MessageView::Error(e) => {
                break Err(format!(
                    "{}{}",
                    e.error(),
                    e.debug().map(|d| format!(" ({d})")).unwrap_or_default()
                ))
            }
            gst::MessageView::Warning(w) => {
                progress.done();
                eprintln!("scenes: warning: {}", w.error());
            }
            _ => {}
        }
    };
    progress.done();
    let framerate = scene
        .static_pad("src")
        .and_then(|p| p.current_caps())
        .and_then(|c| c.structure(0)?.get::<gst::Fraction>("framerate").ok())
        .filter(|f| f.numer() > 0 && f.denom() > 0);
    let _ = pipeline.set_state(gst::State::Null);
    result?;
    let end = end.load(Ordering::Relaxed);
    Ok(Analysis {
        starts,
        frames: frames.load(Ordering::Relaxed),
        framerate,
        end: (end != u64::MAX).then(|| gst::ClockTime::from_nseconds(end)),
    })
}

/// A scene: first frame and end (exclusive), in frames and seconds.
#[derive(Debug, Clone, Copy)]
struct Scene {
    start_frame: u64,
    end_frame: u64,
    start: f64,
    end: f64,
}

fn scene_list(a: &Analysis) -> Vec<Scene> {
    // Times from frame numbers at the nominal rate, as PySceneDetect's
    // frame-based timecodes; from stream time when the rate is unknown.
    let origin = a.starts.first().and_then(|s| s.stream_time);
    let seconds = |frame: u64, stream_time: Option<gst::ClockTime>| -> f64 {
        match (a.framerate, stream_time, origin) {
            (Some(f), _, _) => frame as f64 * f.denom() as f64 / f.numer() as f64,
            (None, Some(t), Some(o)) => t.saturating_sub(o).seconds_f64(),
            _ => 0.0,
        }
    };
    let end = Start {
        frame: a.frames,
        stream_time: a.end,
    };
    a.starts
        .iter()
        .zip(a.starts.iter().skip(1).chain(std::iter::once(&end)))
        .map(|(s, next)| Scene {
            start_frame: s.frame,
            end_frame: next.frame,
            start: seconds(s.frame, s.stream_time),
            end: seconds(next.frame, next.stream_time),
        })
        .collect()
}

/// `HH:MM:SS.mmm`.
fn timecode(seconds: f64) -> String {
    let ms = (seconds.max(0.0) * 1000.0).round() as u64;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

/// PySceneDetect's `list-scenes` CSV: the cut list, a header, a row per
/// scene with 1-based start frames and exclusive end frames.
fn write_csv(w: &mut dyn Write, scenes: &[Scene]) -> std::io::Result<()> {
    let cuts: Vec<String> = scenes.iter().skip(1).map(|s| timecode(s.start)).collect();
    if cuts.is_empty() {
        // PySceneDetect 0.7 writes an empty first row when nothing cuts.
        writeln!(w)?;
    } else {
        writeln!(w, "Timecode List:,{}", cuts.join(","))?;
    }
    writeln!(
        w,
        "Scene Number,Start Frame,Start Timecode,Start Time (seconds),End Frame,End Timecode,\
         End Time (seconds),Length (frames),Length (timecode),Length (seconds)"
    )?;
    for (i, s) in scenes.iter().enumerate() {
        let length = s.end - s.start;
        writeln!(
            w,
            "{},{},{},{:.3},{},{},{:.3},{},{},{:.3}",
            i + 1,
            s.start_frame + 1,
            timecode(s.start),
            s.start,
            s.end_frame,
            timecode(s.end),
            s.end,
            s.end_frame - s.start_frame,
            timecode(length),
            length
        )?;
    }
    Ok(())
}

/// `HH:MM:SS:FF` at an integer (nominal) frame rate.
fn edl_timecode(frame: u64, fps: u64) -> String {
    let seconds = frame / fps;
    format!(
        "{:02}:{:02}:{:02}:{:02}",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60,
        frame % fps
    )
}

/// A CMX 3600 EDL: one cut event per scene, source and record timecodes
/// counted in frames from the start of the file.
fn write_edl(
    w: &mut dyn Write,
    title: &str,
    clip: &str,
    scenes: &[Scene],
    fps: u64,
) -> std::io::Result<()> {
    writeln!(w, "TITLE: {title}")?;
    writeln!(w, "FCM: NON-DROP FRAME")?;
    for (i, s) in scenes.iter().enumerate() {
        let (a, b) = (
            edl_timecode(s.start_frame, fps),
            edl_timecode(s.end_frame, fps),
        );
        writeln!(w)?;
        writeln!(
            w,
            "{:03}  {:<8} {:<5} {:<8} {a} {b} {a} {b}",
            i + 1,
            "AX",
            "V",
            "C"
        )?;
        writeln!(w, "* FROM CLIP NAME: {clip}")?;
    }
    Ok(())
}

fn write_file(
    path: &Path,
    f: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<(), String> {
    let mut file = std::io::BufWriter::new(
        std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?,
    );
    f(&mut file)
        .and_then(|()| file.flush())
        .map_err(|e| format!("{}: {e}", path.display()))
}

fn run(o: &Options) -> Result<(), String> {
    gst::init().map_err(|e| e.to_string())?;
    gstdreamsim::plugin_register_static().map_err(|e| e.to_string())?;
    let started = Instant::now();
    let analysis = analyse(o)?;
    if analysis.starts.is_empty() {
        return Err("no analysed frame: is there a video stream in the input?".into());
    }
    let scenes = scene_list(&analysis);

    match &o.csv {
        Some(path) => write_file(path, |w| write_csv(w, &scenes))?,
        None => write_csv(&mut std::io::stdout().lock(), &scenes).map_err(|e| e.to_string())?,
    }
    if let Some(path) = &o.edl {
        let fps = match analysis.framerate {
            Some(f) => (f.numer() as f64 / f.denom() as f64).round().max(1.0) as u64,
            None => {
                let seconds = scenes.last().map_or(0.0, |s| s.end);
                let fps = (analysis.frames as f64 / seconds.max(1e-9))
                    .round()
                    .max(1.0) as u64;
                eprintln!("scenes: the stream has no nominal frame rate; the EDL uses {fps} fps");
                fps
            }
        };
        let clip = Path::new(&o.input)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| o.input.clone());
        let title = Path::new(&clip)
            .file_stem()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| clip.clone());
        write_file(path, |w| write_edl(w, &title, &clip, &scenes, fps))?;
    }

    if !o.quiet {
        let elapsed = started.elapsed().as_secs_f64();
        let video = scenes.last().map_or(0.0, |s| s.end);
        eprintln!(
            "scenes: {} scenes in {} frames ({video:.1} s of video), analysed in {elapsed:.1} s \
             ({:.1} fps); starts at frames {}",
            scenes.len(),
            analysis.frames,
            analysis.frames as f64 / elapsed.max(1e-9),
            scenes
                .iter()
                .map(|s| s.start_frame.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        if let Some(p) = &o.csv {
            eprintln!("scenes: CSV written to {}", p.display());
        }
        if let Some(p) = &o.edl {
            eprintln!("scenes: EDL written to {}", p.display());
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let options = match parse_args(std::env::args().skip(1)) {
        Ok(o) => o,
        Err(e) if e.is_empty() => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("scenes: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("scenes: error: {e}");
            ExitCode::FAILURE
        }
    }
}
