//! `gst-dreamsim dedup`: a video in, the frames that are not near-duplicates
//! of the last kept frame out (as a list, and optionally as a video).
//!
//! Pipeline: `uridecodebin ! videoconvert ! dreamsim ! dreamsimdedup
//! extend-duration=true ! (videoconvert ! encoder ! muxer ! filesink |
//! fakesink)`, listing the frames that leave `dreamsimdedup`.

use std::io::Write;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use gst::prelude::*;
use gstdreamsim::dedup::property as dedup_property;
use gstdreamsim::dedup::{DEFAULT_MAX_CONSECUTIVE_DROPS, DEFAULT_THRESHOLD};
use gstdreamsim::meta::DreamSimMeta;
use gstdreamsim::DedupMessage;
use serde::Serialize;

use crate::common::CommonArgs;
use crate::output::{csv_row, timecode, Output};
use crate::pipeline::{self, BusHandler};
use crate::progress::Progress;
use crate::values;
use crate::{Error, PROGRAM};

/// Drop near-duplicate frames; list the kept ones, optionally write the video
///
/// Drops the frames of a video that DreamSim finds within a distance of the
/// last kept frame (the dreamsimdedup element) and lists the kept frames
/// (CSV: Frame,Timecode,Time (seconds),Duration (seconds), the duration being
/// how long the frame stays on screen once the dropped frames are gone).
#[derive(Debug, clap::Args)]
#[command(mut_arg("output", |a| a.help("Write the list of kept frames to FILE instead of standard output")), mut_arg("json", |a| a.help("Write the list as a JSON document instead of CSV")))]
#[command(after_help = "Examples:\n  \
    gst-dreamsim dedup --model tests/fixtures/tiny_ensemble.onnx --threshold 0.002 \\\n      \
    --video /tmp/bikes-dedup.mkv .cache/media/bikes.mp4 > kept.csv\n  \
    gst-dreamsim dedup --json video.mp4 | jq '.kept_frames[].frame'")]
pub struct Args {
    /// Video file or URI
    pub input: String,

    /// Drop a frame within D of the last kept frame (0 to 2)
    #[arg(long, value_name = "D", help_heading = "Deduplication options",
          default_value_t = DEFAULT_THRESHOLD, value_parser = values::distance)]
    pub threshold: f64,

    /// Keep a frame after N dropped in a row (0: no bound)
    #[arg(long, value_name = "N", help_heading = "Deduplication options",
          default_value_t = DEFAULT_MAX_CONSECUTIVE_DROPS,
          value_parser = values::u32_in(0, u32::MAX))]
    pub max_drops: u32,

    #[command(flatten)]
    pub out: crate::args::OutputArgs,

    /// Also write the deduplicated video (video only) to FILE: .mkv, .mp4,
    /// .mov, .webm or .avi
    #[arg(long, value_name = "FILE", help_heading = "Output options")]
    pub video: Option<PathBuf>,

    /// Encoder for --video, as in gst-launch-1.0, e.g. "x264enc
    /// speed-preset=fast" [default: the first installed of x264enc,
    /// openh264enc, vp8enc, vp9enc, avenc_mpeg4 that the container takes]
    #[arg(
        long,
        value_name = "DESCRIPTION",
        requires = "video",
        help_heading = "Output options"
    )]
    pub encoder: Option<String>,

    #[command(flatten)]
    pub common: CommonArgs,
}

/// The encoder and muxer for `path`, by its extension.
fn encoder_and_muxer(
    path: &Path,
    encoder: Option<&str>,
) -> Result<(gst::Element, gst::Element), Error> {
    let extension = path
        .extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let (muxer, encoders): (&str, &[&str]) = match extension.as_str() {
        "mkv" => (
            "matroskamux",
            &["x264enc", "openh264enc", "vp8enc", "vp9enc", "avenc_mpeg4"],
        ),
        "mp4" | "m4v" => ("mp4mux", &["x264enc", "openh264enc", "avenc_mpeg4"]),
        "mov" => ("qtmux", &["x264enc", "openh264enc", "avenc_mpeg4"]),
        "webm" => ("webmmux", &["vp8enc", "vp9enc"]),
        "avi" => ("avimux", &["x264enc", "avenc_mpeg4"]),
        _ => {
            return Err(Error::Input {
                input: path.display().to_string(),
                reason: "use a .mkv, .mp4, .mov, .webm or .avi file name".into(),
            })
        }
    };
    let encoder = match encoder {
        Some(description) => gst::parse::bin_from_description(description, true)
            .map_err(|source| Error::Description {
                option: "--encoder",
                description: description.to_owned(),
                source,
            })?
            .upcast(),
        None => {
            let name = encoders
                .iter()
                .find(|n| gst::ElementFactory::find(n).is_some())
                .ok_or_else(|| Error::Input {
                    input: path.display().to_string(),
                    reason: format!(
                        "no encoder for .{extension} installed (tried {}); install one or give \
                         --encoder",
                        encoders.join(", ")
                    ),
                })?;
            let encoder = pipeline::make(name)?;
            if name.starts_with("vp") {
                // libvpx's default "good" deadline is several times slower
                // than real time; --encoder gives full control.
                encoder.set_property("deadline", 1i64);
            }
            encoder
        }
    };
    Ok((encoder, pipeline::make(muxer)?))
}

/// A frame that left `dreamsimdedup`.
#[derive(Debug, Clone, Copy)]
struct Kept {
    frame: Option<u64>,
    time: Option<gst::ClockTime>,
    duration: Option<gst::ClockTime>,
}

fn write_csv(w: &mut dyn Write, kept: &[Kept]) -> std::io::Result<()> {
    csv_row(
        w,
        ["Frame", "Timecode", "Time (seconds)", "Duration (seconds)"],
    )?;
    let seconds = |t: Option<gst::ClockTime>| t.map(|t| format!("{:.3}", t.seconds_f64()));
    for k in kept {
        csv_row(
            w,
            [
                k.frame.map(|f| f.to_string()).unwrap_or_default(),
                k.time.map(timecode).unwrap_or_default(),
                seconds(k.time).unwrap_or_default(),
                seconds(k.duration).unwrap_or_default(),
            ],
        )?;
    }
    Ok(())
}

/// The `--json` document.
#[derive(Debug, Serialize)]
struct Document<'a> {
    input: &'a str,
    /// Frames that reached `dreamsimdedup`.
    frames: u64,
    kept: u64,
    dropped: u64,
    /// Frames without `DreamSimMeta`, passed as they were (counted in `kept`).
    without_meta: u64,
    kept_frames: Vec<JsonKept>,
}

#[derive(Debug, Serialize)]
struct JsonKept {
    frame: Option<u64>,
    timecode: Option<String>,
    time_s: Option<f64>,
    duration_s: Option<f64>,
}

/// Reads the element's count message; shows the counts while it runs.
struct Collect {
    dedup: gst::Element,
    counts: Option<DedupMessage>,
    started: Instant,
}

impl BusHandler for Collect {
    fn message(&mut self, msg: &gst::MessageRef, _: &Progress) -> Result<ControlFlow<()>, Error> {
        if let Some(c) = DedupMessage::from_message(msg).transpose()? {
            self.counts = Some(c);
        }
        Ok(ControlFlow::Continue(()))
    }

    fn status(&self) -> String {
        let (k, d) = (
            self.dedup.property::<u64>(dedup_property::KEPT),
            self.dedup.property::<u64>(dedup_property::DROPPED),
        );
        format!(
            "{} frames, {k} kept, {d} dropped, {:.1} fps",
            k + d,
            (k + d) as f64 / self.started.elapsed().as_secs_f64().max(1e-9)
        )
    }
}

pub fn run(args: Args) -> Result<ExitCode, Error> {
    let mut inputs = args.common.input_files();
    inputs.push(args.input.clone());
    crate::overwrite::refuse_overwrite(
        inputs,
        &[
            ("--output", args.out.output.as_deref()),
            ("--video", args.video.as_deref()),
        ],
    )?;
    let started = Instant::now();
    let uri = pipeline::to_uri(&args.input)?;

    let dreamsim = pipeline::dreamsim(&args.common)?;
    let dedup = pipeline::make("dreamsimdedup")?;
    dreamsim.set_property(gstdreamsim::dreamsim::property::POST_MESSAGES, false);
    dedup.set_property(dedup_property::EXTEND_DURATION, true);
    dedup.set_property(dedup_property::THRESHOLD, args.threshold);
    dedup.set_property(dedup_property::MAX_CONSECUTIVE_DROPS, args.max_drops);
    let mut chain = vec![dreamsim, dedup.clone()];
    match &args.video {
        Some(path) => {
            let (encoder, muxer) = encoder_and_muxer(path, args.encoder.as_deref())?;
            let sink = pipeline::make("filesink")?;
            sink.set_property("location", path.to_string_lossy().as_ref());
            chain.extend([pipeline::make("videoconvert")?, encoder, muxer, sink]);
        }
        None => chain.push(pipeline::fakesink()?),
    }
    let pipeline = pipeline::decoding_pipeline(&uri, &chain)?;

    let kept = Arc::new(Mutex::new(Vec::<Kept>::new()));
    {
        let kept = kept.clone();
        let pad = dedup.static_pad("src").expect("src pad");
        pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
            if let Some(buffer) = info.buffer() {
                let time = buffer.pts().and_then(|pts| pipeline::stream_time(pad, pts));
                let frame = DreamSimMeta::from_buffer(buffer).and_then(|m| Some(m.ok()?.frame));
                kept.lock().unwrap().push(Kept {
                    frame,
                    time,
                    duration: buffer.duration(),
                });
            }
            gst::PadProbeReturn::Ok
        });
    }

    let mut collect = Collect {
        dedup: dedup.clone(),
        counts: None,
        started,
    };
    let mut progress = Progress::new("dedup", !args.common.quiet);
    let result = pipeline::run_bus(&pipeline, &mut progress, &mut collect);
    pipeline::stop(&pipeline);
    result?;

    let kept = std::mem::take(&mut *kept.lock().unwrap());
    let c = collect.counts.unwrap_or(DedupMessage {
        kept: dedup.property(dedup_property::KEPT),
        dropped: dedup.property(dedup_property::DROPPED),
        without_meta: 0,
    });
    let total = c.kept + c.dropped;
    let mut out = Output::create(args.out.output.as_deref())?;
    if args.out.json {
        out.write_json(&Document {
            input: &args.input,
            frames: total,
            kept: c.kept,
            dropped: c.dropped,
            without_meta: c.without_meta,
            kept_frames: kept
                .iter()
                .map(|k| JsonKept {
                    frame: k.frame,
                    timecode: k.time.map(timecode),
                    time_s: k.time.map(|t| t.seconds_f64()),
                    duration_s: k.duration.map(|t| t.seconds_f64()),
                })
                .collect(),
        })?;
    } else {
        out.write(|w| write_csv(w, &kept))?;
    }
    out.finish()?;

    if !args.common.quiet {
        let elapsed = started.elapsed().as_secs_f64();
        eprintln!(
            "{PROGRAM} dedup: kept {} of {total} frames, dropped {} ({:.1} %), in {elapsed:.1} s \
             ({:.1} fps)",
            c.kept,
            c.dropped,
            100.0 * c.dropped as f64 / total.max(1) as f64,
            total as f64 / elapsed.max(1e-9)
        );
        if let Some(p) = out.path() {
            eprintln!("{PROGRAM} dedup: kept frames listed in {}", p.display());
        }
        if let Some(p) = &args.video {
            eprintln!(
                "{PROGRAM} dedup: deduplicated video written to {}",
                p.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
