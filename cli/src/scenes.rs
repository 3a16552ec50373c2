//! `gst-dreamsim scenes`: a video in, its scene list out, in PySceneDetect's
//! `list-scenes` CSV layout (or JSON) and, when asked, as a CMX 3600 EDL that
//! editors import.
//!
//! Pipeline: `uridecodebin ! videoconvert ! dreamsim ! dreamsimscene !
//! fakesink`, reading the `dreamsim-scene` bus messages.

use std::io::Write;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use gst::prelude::*;
use gstdreamsim::scene as dreamsimscene;
use gstdreamsim::SceneMessage;
use serde::Serialize;

use crate::common::CommonArgs;
use crate::output::{self, csv_row, timecode_s, Output};
use crate::pipeline::{self, BusHandler};
use crate::progress::Progress;
use crate::values;
use crate::{Error, PROGRAM};

/// Scene cuts of a video, as PySceneDetect's list-scenes CSV or a CMX 3600 EDL
///
/// Finds where the scenes of a video start with DreamSim (the dreamsimscene
/// element) and writes the scene list in PySceneDetect's list-scenes CSV
/// layout: a Timecode List row with the cuts, then one row per scene with
/// 1-based start frames and exclusive end frames.
#[derive(Debug, clap::Args)]
#[command(mut_arg("output", |a| a.help("Write the scene list to FILE instead of standard output")), mut_arg("json", |a| a.help("Write the scene list as a JSON document instead of CSV")))]
#[command(after_help = "Examples:\n  \
    gst-dreamsim scenes --model tests/fixtures/tiny_ensemble.onnx .cache/media/bikes.mp4\n  \
    gst-dreamsim scenes --threshold 0.06 --edl cuts.edl -o scenes.csv video.mp4\n  \
    gst-dreamsim scenes --json video.mp4 | jq '.scenes[].start_frame'")]
pub struct Args {
    /// Video file or URI
    pub input: String,

    /// Fixed mode: a scene starts where the distance to the previous frame reaches D
    /// (0 to 2)
    #[arg(long, value_name = "D", help_heading = "Detection options",
          value_parser = values::distance,
          conflicts_with_all = ["adaptive_threshold", "min_distance", "window"])]
    pub threshold: Option<f64>,

    /// Adaptive mode (the default): a scene starts where the distance is R
    /// times the mean of its neighbours' (0 to 255)
    #[arg(long, value_name = "R", help_heading = "Detection options",
          default_value_t = dreamsimscene::DEFAULT_ADAPTIVE_THRESHOLD, value_parser = values::ratio)]
    pub adaptive_threshold: f64,

    /// Adaptive mode: smallest distance that can start a scene (0 to 2)
    #[arg(long, value_name = "D", help_heading = "Detection options",
          default_value_t = dreamsimscene::DEFAULT_MIN_DISTANCE, value_parser = values::distance)]
    pub min_distance: f64,

    /// Adaptive mode: neighbours on each side (1 to 64)
    #[arg(long, value_name = "N", help_heading = "Detection options",
          default_value_t = dreamsimscene::DEFAULT_WINDOW, value_parser = values::window())]
    pub window: u32,

    /// Frames before another scene can start
    #[arg(long, value_name = "N", help_heading = "Detection options",
          default_value_t = dreamsimscene::DEFAULT_MIN_SCENE_LENGTH,
          value_parser = values::u32_in(0, u32::MAX))]
    pub min_scene_len: u32,

    #[command(flatten)]
    pub out: crate::args::OutputArgs,

    /// Also write a CMX 3600 EDL (one cut event per scene) to FILE
    #[arg(long, value_name = "FILE", help_heading = "Output options")]
    pub edl: Option<PathBuf>,

    #[command(flatten)]
    pub common: CommonArgs,
}

/// A scene start, as the scene list needs it.
#[derive(Debug, Clone, Copy)]
struct Start {
    frame: u64,
    stream_time: Option<gst::ClockTime>,
}

/// What the pipeline finds.
struct Analysis {
    starts: Vec<Start>,
    frames: u64,
    framerate: Option<gst::Fraction>,
    end: Option<gst::ClockTime>,
}

/// Collects the scene starts from the bus.
struct Collect {
    starts: Vec<Start>,
    frames: Arc<AtomicU64>,
    started: Instant,
}

impl BusHandler for Collect {
    fn message(&mut self, msg: &gst::MessageRef, _: &Progress) -> Result<ControlFlow<()>, Error> {
        if let Some(m) = SceneMessage::from_message(msg).transpose()? {
            self.starts.push(Start {
                frame: m.frame,
                stream_time: m.timing.stream_time,
            });
        }
        Ok(ControlFlow::Continue(()))
    }

    fn status(&self) -> String {
        let frames = self.frames.load(Ordering::Relaxed);
        format!(
            "{frames} frames, {} scenes, {:.1} fps",
            self.starts.len(),
            frames as f64 / self.started.elapsed().as_secs_f64().max(1e-9)
        )
    }
}

/// Runs the pipeline; returns the scene starts, the number of frames, the
/// frame rate and the end of the last frame in stream time.
fn analyse(args: &Args, started: Instant) -> Result<Analysis, Error> {
    let uri = pipeline::to_uri(&args.input)?;
    let dreamsim = pipeline::dreamsim(&args.common)?;
    let scene = pipeline::make("dreamsimscene")?;
    let sink = pipeline::fakesink()?;

    dreamsim.set_property(gstdreamsim::dreamsim::property::POST_MESSAGES, false);
    match args.threshold {
        Some(t) => {
            scene.set_property(
                dreamsimscene::property::MODE,
                dreamsimscene::SceneMode::Fixed,
            );
            scene.set_property(dreamsimscene::property::THRESHOLD, t);
        }
        None => {
            scene.set_property(
                dreamsimscene::property::MODE,
                dreamsimscene::SceneMode::Adaptive,
            );
            scene.set_property(
                dreamsimscene::property::ADAPTIVE_THRESHOLD,
                args.adaptive_threshold,
            );
            scene.set_property(dreamsimscene::property::MIN_DISTANCE, args.min_distance);
            scene.set_property(dreamsimscene::property::WINDOW, args.window);
        }
    }
    scene.set_property(
        dreamsimscene::property::MIN_SCENE_LENGTH,
        args.min_scene_len,
    );
    let pipeline = pipeline::decoding_pipeline(&uri, &[dreamsim, scene.clone(), sink.clone()])?;

    // Frames and the end of the last one, counted where they leave.
    let frames = Arc::new(AtomicU64::new(0));
    let end = Arc::new(AtomicU64::new(u64::MAX));
    {
        let (frames, end) = (frames.clone(), end.clone());
        let sink_pad = sink.static_pad("sink").expect("sink pad");
        sink_pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
            if let Some(buffer) = info.buffer() {
                frames.fetch_add(1, Ordering::Relaxed);
                let stream_end = buffer.pts().and_then(|pts| {
                    pipeline::stream_time(pad, pts + buffer.duration().unwrap_or_default())
                });
                if let Some(t) = stream_end {
                    end.store(t.nseconds(), Ordering::Relaxed);
                }
            }
            gst::PadProbeReturn::Ok
        });
    }

    let mut collect = Collect {
        starts: Vec::new(),
        frames: frames.clone(),
        started,
    };
    let mut progress = Progress::new("scenes", !args.common.quiet);
    let result = pipeline::run_bus(&pipeline, &mut progress, &mut collect);
    let framerate = scene
        .static_pad("src")
        .and_then(|p| p.current_caps())
        .and_then(|c| c.structure(0)?.get::<gst::Fraction>("framerate").ok())
        .filter(|f| f.numer() > 0 && f.denom() > 0);
    pipeline::stop(&pipeline);
    result?;
    let end = end.load(Ordering::Relaxed);
    Ok(Analysis {
        starts: collect.starts,
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

/// PySceneDetect's `list-scenes` CSV: the cut list, a header, a row per
/// scene with 1-based start frames and exclusive end frames.
fn write_csv(w: &mut dyn Write, scenes: &[Scene]) -> std::io::Result<()> {
    let cuts: Vec<String> = scenes.iter().skip(1).map(|s| timecode_s(s.start)).collect();
    if cuts.is_empty() {
        // PySceneDetect 0.7 writes an empty first row when nothing cuts
        // (an empty line; the csv crate would write `""`).
        writeln!(w)?;
    } else {
        csv_row(w, std::iter::once("Timecode List:".to_owned()).chain(cuts))?;
    }
    csv_row(
        w,
        [
            "Scene Number",
            "Start Frame",
            "Start Timecode",
            "Start Time (seconds)",
            "End Frame",
            "End Timecode",
            "End Time (seconds)",
            "Length (frames)",
            "Length (timecode)",
            "Length (seconds)",
        ],
    )?;
    for (i, s) in scenes.iter().enumerate() {
        let length = s.end - s.start;
        csv_row(
            w,
            [
                (i + 1).to_string(),
                (s.start_frame + 1).to_string(),
                timecode_s(s.start),
                format!("{:.3}", s.start),
                s.end_frame.to_string(),
                timecode_s(s.end),
                format!("{:.3}", s.end),
                (s.end_frame - s.start_frame).to_string(),
                timecode_s(length),
                format!("{length:.3}"),
            ],
        )?;
    }
    Ok(())
}

/// The `--json` document.
#[derive(Debug, Serialize)]
struct Document<'a> {
    input: &'a str,
    /// Frames that left the detector.
    frames: u64,
    /// Nominal frames per second (`null` when the stream declares none).
    framerate: Option<f64>,
    scenes: Vec<JsonScene>,
}

/// A scene in the JSON document: frame indices from 0 (the element's
/// `frame`), the end exclusive.
#[derive(Debug, Serialize)]
struct JsonScene {
    scene: usize,
    start_frame: u64,
    end_frame: u64,
    length_frames: u64,
    start_s: f64,
    end_s: f64,
    length_s: f64,
    start_timecode: String,
    end_timecode: String,
}

fn document<'a>(args: &'a Args, analysis: &Analysis, scenes: &[Scene]) -> Document<'a> {
    Document {
        input: &args.input,
        frames: analysis.frames,
        framerate: analysis
            .framerate
            .map(|f| f.numer() as f64 / f.denom() as f64),
        scenes: scenes
            .iter()
            .enumerate()
            .map(|(i, s)| JsonScene {
                scene: i + 1,
                start_frame: s.start_frame,
                end_frame: s.end_frame,
                length_frames: s.end_frame - s.start_frame,
                start_s: s.start,
                end_s: s.end,
                length_s: s.end - s.start,
                start_timecode: timecode_s(s.start),
                end_timecode: timecode_s(s.end),
            })
            .collect(),
    }
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

/// Writes the EDL of `scenes` to `path`.
fn edl(args: &Args, path: &Path, analysis: &Analysis, scenes: &[Scene]) -> Result<(), Error> {
    let fps = match analysis.framerate {
        Some(f) => (f.numer() as f64 / f.denom() as f64).round().max(1.0) as u64,
        None => {
            let seconds = scenes.last().map_or(0.0, |s| s.end);
            let fps = (analysis.frames as f64 / seconds.max(1e-9))
                .round()
                .max(1.0) as u64;
            eprintln!(
                "{PROGRAM}: warning: the stream has no nominal frame rate; the EDL uses {fps} fps"
            );
            fps
        }
    };
    let clip = Path::new(&args.input)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| args.input.clone());
    let title = Path::new(&clip)
        .file_stem()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| clip.clone());
    let mut out = Output::File(
        path.to_owned(),
        std::io::BufWriter::new(output::create(path)?),
    );
    out.write(|w| write_edl(w, &title, &clip, scenes, fps))?;
    out.finish()
}

pub fn run(args: Args) -> Result<ExitCode, Error> {
    let mut inputs = args.common.input_files();
    inputs.push(args.input.clone());
    crate::overwrite::refuse_overwrite(
        inputs,
        &[
            ("--output", args.out.output.as_deref()),
            ("--edl", args.edl.as_deref()),
        ],
    )?;
    let started = Instant::now();
    let analysis = analyse(&args, started)?;
    if analysis.starts.is_empty() {
        return Err(Error::NoFrames);
    }
    let scenes = scene_list(&analysis);

    let mut out = Output::create(args.out.output.as_deref())?;
    if args.out.json {
        out.write_json(&document(&args, &analysis, &scenes))?;
    } else {
        out.write(|w| write_csv(w, &scenes))?;
    }
    out.finish()?;
    if let Some(path) = &args.edl {
        edl(&args, path, &analysis, &scenes)?;
    }

    if !args.common.quiet {
        let elapsed = started.elapsed().as_secs_f64();
        let video = scenes.last().map_or(0.0, |s| s.end);
        eprintln!(
            "{PROGRAM} scenes: {} scenes in {} frames ({video:.1} s of video), analysed in \
             {elapsed:.1} s ({:.1} fps); starts at frames {}",
            scenes.len(),
            analysis.frames,
            analysis.frames as f64 / elapsed.max(1e-9),
            scenes
                .iter()
                .map(|s| s.start_frame.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        if let Some(p) = out.path() {
            eprintln!("{PROGRAM} scenes: scene list written to {}", p.display());
        }
        if let Some(p) = &args.edl {
            eprintln!("{PROGRAM} scenes: EDL written to {}", p.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn analysis() -> Analysis {
        let start = |frame| Start {
            frame,
            stream_time: None,
        };
        Analysis {
            starts: vec![start(0), start(30), start(76)],
            frames: 100,
            framerate: Some(gst::Fraction::new(25, 1)),
            end: None,
        }
    }

    #[test]
    fn csv_is_pyscenedetect_layout() {
        let scenes = scene_list(&analysis());
        let mut csv = Vec::new();
        write_csv(&mut csv, &scenes).unwrap();
        let csv = String::from_utf8(csv).unwrap();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], "Timecode List:,00:00:01.200,00:00:03.040");
        assert_eq!(
            lines[2],
            "1,1,00:00:00.000,0.000,30,00:00:01.200,1.200,30,00:00:01.200,1.200"
        );
        assert_eq!(
            lines[4],
            "3,77,00:00:03.040,3.040,100,00:00:04.000,4.000,24,00:00:00.960,0.960"
        );
    }

    #[test]
    fn one_scene_has_an_empty_cut_row() {
        let mut a = analysis();
        a.starts.truncate(1);
        let mut csv = Vec::new();
        write_csv(&mut csv, &scene_list(&a)).unwrap();
        assert!(String::from_utf8(csv)
            .unwrap()
            .starts_with("\nScene Number,"));
    }

    #[test]
    fn edl_timecodes_count_frames_at_the_nominal_rate() {
        assert_eq!(edl_timecode(0, 25), "00:00:00:00");
        assert_eq!(edl_timecode(30, 25), "00:00:01:05");
        assert_eq!(edl_timecode(25 * 3661 + 24, 25), "01:01:01:24");
    }
}
