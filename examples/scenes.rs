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

mod common;

use std::io::Write;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use gst::prelude::*;
use gstdreamsim::SceneMessage;

const PROGRAM: &str = "scenes";

const USAGE: &str = "\
Usage: scenes [OPTIONS] INPUT

Finds where the scenes of a video start, with DreamSim, and writes the scene
list in PySceneDetect's list-scenes CSV layout.

  INPUT                     video file or URI
  --model PATH              DreamSim ONNX model (default: the ensemble that
                            tools/get_model.sh installs)
  --provider NAME           auto, cpu, cuda, tensorrt or openvino (default: auto)
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
    common::parse(
        args,
        |a, args| {
            match a.name.as_str() {
                "--model" => o.model = Some(a.value(args, "a path")?),
                "--provider" => o.provider = Some(a.provider(args)?),
                "--threshold" => o.threshold = Some(a.number(args, "a distance")?),
                "--adaptive-threshold" => o.adaptive_threshold = Some(a.number(args, "a ratio")?),
                "--min-distance" => o.min_distance = Some(a.number(args, "a distance")?),
                "--window" => o.window = Some(a.number(args, "a frame count")?),
                "--min-scene-len" => o.min_scene_len = Some(a.number(args, "a frame count")?),
                "--csv" => o.csv = Some(a.value(args, "a path")?.into()),
                "--edl" => o.edl = Some(a.value(args, "a path")?.into()),
                "--quiet" => o.quiet = true,
                _ => return Ok(false),
            }
            Ok(true)
        },
        common::one_operand(&mut input),
    )?;
    if o.threshold.is_some()
        && (o.adaptive_threshold.is_some() || o.min_distance.is_some() || o.window.is_some())
    {
        return Err("--threshold (fixed mode) does not go with the adaptive options".into());
    }
    o.input = input.ok_or("no INPUT given")?;
    Ok(o)
}

/// A scene start, as the scene list needs it.
#[derive(Debug, Clone, Copy)]
struct Start {
    frame: u64,
    stream_time: Option<gst::ClockTime>,
}

/// What `analyse` finds.
struct Analysis {
    starts: Vec<Start>,
    frames: u64,
    framerate: Option<gst::Fraction>,
    end: Option<gst::ClockTime>,
}

/// Runs the pipeline; returns the scene starts, the number of frames, the
/// frame rate and the end of the last frame in stream time.
fn analyse(o: &Options) -> Result<Analysis, String> {
    let uri = common::to_uri(&o.input)?;
    let dreamsim = common::dreamsim(o.model.as_deref(), o.provider.as_deref())?;
    let scene = common::make("dreamsimscene")?;
    let sink = common::fakesink()?;

    dreamsim.set_property("post-messages", false);
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
    let pipeline =
        common::decoding_pipeline(PROGRAM, &uri, &[dreamsim, scene.clone(), sink.clone()])?;

    // Frames and the end of the last one, counted where they leave.
    let frames = Arc::new(AtomicU64::new(0));
    let end = Arc::new(AtomicU64::new(u64::MAX));
    let sink_pad = sink.static_pad("sink").expect("sink pad");
    {
        let (frames, end) = (frames.clone(), end.clone());
        sink_pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
            if let Some(buffer) = info.buffer() {
                frames.fetch_add(1, Ordering::Relaxed);
                let stream_end = buffer.pts().and_then(|pts| {
                    common::stream_time(pad, pts + buffer.duration().unwrap_or_default())
                });
                if let Some(t) = stream_end {
                    end.store(t.nseconds(), Ordering::Relaxed);
                }
            }
            gst::PadProbeReturn::Ok
        });
    }

    let mut starts = Vec::new();
    let result = common::run_bus(PROGRAM, &pipeline, !o.quiet, |msg, progress| {
        match msg {
            None => {
                let frames = frames.load(Ordering::Relaxed);
                progress.show(&pipeline, |elapsed| {
                    format!(
                        "{frames} frames, {:.1} fps, {} scenes",
                        frames as f64 / elapsed.max(1e-9),
                        starts.len()
                    )
                });
            }
            Some(msg) => {
                if let Some(m) = SceneMessage::from_message(msg).transpose().unwrap() {
                    starts.push(Start {
                        frame: m.frame,
                        stream_time: m.timing.stream_time,
                    });
                }
            }
        }
        Ok(ControlFlow::Continue(()))
    });
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

/// `HH:MM:SS.mmm`, rounded to the millisecond.
fn timecode(seconds: f64) -> String {
    common::timecode_ms((seconds.max(0.0) * 1000.0).round() as u64)
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

fn run(o: &Options) -> Result<(), String> {
    common::init()?;
    let started = Instant::now();
    let analysis = analyse(o)?;
    if analysis.starts.is_empty() {
        return Err("no analysed frame: is there a video stream in the input?".into());
    }
    let scenes = scene_list(&analysis);

    match &o.csv {
        Some(path) => common::write_file(path, |w| write_csv(w, &scenes))?,
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
                eprintln!(
                    "{PROGRAM}: the stream has no nominal frame rate; the EDL uses {fps} fps"
                );
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
        common::write_file(path, |w| write_edl(w, &title, &clip, &scenes, fps))?;
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
    common::main(PROGRAM, USAGE, parse_args(std::env::args().skip(1)), |o| {
        run(o).map(|()| ExitCode::SUCCESS)
    })
}
