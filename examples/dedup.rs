//! `dedup`: a video in, the timestamps of the frames that are not
//! near-duplicates out, and optionally the deduplicated video.
//!
//! Runs `uridecodebin ! videoconvert ! dreamsim ! dreamsimdedup
//! extend-duration=true ! (encoder ! muxer ! filesink | fakesink)` and lists
//! the frames that leave `dreamsimdedup`.
//!
//! ```text
//! cargo run -p gst-plugin-dreamsim --example dedup -- \
//!     --model tests/fixtures/tiny_ensemble.onnx --threshold 0.002 \
//!     --output /tmp/bikes-dedup.mkv .cache/media/bikes.mp4
//! ```

mod common;

use std::io::Write;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use common::timecode;
use gst::prelude::*;
use gstdreamsim::meta::DreamSimMeta;
use gstdreamsim::DedupMessage;

const USAGE: &str = "\
Usage: dedup [OPTIONS] INPUT

Drops the frames of a video that DreamSim finds within a distance of the last
kept frame, and lists the kept frames (CSV: frame, timecode, time and how long
the frame stays on screen once the dropped frames are gone).

  INPUT                     video file or URI
  --model PATH              DreamSim ONNX model (default: the ensemble that
                            tools/get_model.sh installs)
  --provider NAME           auto, cpu, cuda, tensorrt or openvino (default: auto)
  --threshold D             drop a frame within D of the last kept frame
                            (default: 0.02)
  --max-drops N             keep a frame after N dropped in a row
                            (default: 0, no bound)
  --timestamps FILE         write the kept frames to FILE (default: standard
                            output)
  --output FILE             also write the deduplicated video (video only) to
                            FILE: .mkv, .mp4, .mov, .webm or .avi
  --encoder DESCRIPTION     encoder for --output, as in gst-launch-1.0, e.g.
                            \"x264enc speed-preset=fast\" (default: the first
                            installed of x264enc, openh264enc, vp8enc, vp9enc,
                            avenc_mpeg4 that the container takes)
  --quiet                   no progress or summary on standard error
  -h, --help                this text
";

const PROGRAM: &str = "dedup";

#[derive(Debug, Default)]
struct Options {
    input: String,
    model: Option<String>,
    provider: Option<String>,
    threshold: Option<f64>,
    max_drops: Option<u32>,
    timestamps: Option<PathBuf>,
    output: Option<PathBuf>,
    encoder: Option<String>,
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
                "--max-drops" => o.max_drops = Some(a.number(args, "a frame count")?),
                "--timestamps" => o.timestamps = Some(a.value(args, "a path")?.into()),
                "--output" => o.output = Some(a.value(args, "a path")?.into()),
                "--encoder" => o.encoder = Some(a.value(args, "an element description")?),
                "--quiet" => o.quiet = true,
                _ => return Ok(false),
            }
            Ok(true)
        },
        common::one_operand(&mut input),
    )?;
    if o.encoder.is_some() && o.output.is_none() {
        return Err("--encoder needs --output".into());
    }
    o.input = input.ok_or("no INPUT given")?;
    Ok(o)
}

/// The encoder and muxer for `path`, by its extension.
fn encoder_and_muxer(
    path: &Path,
    encoder: Option<&str>,
) -> Result<(gst::Element, gst::Element), String> {
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
            return Err(format!(
                "{}: use a .mkv, .mp4, .mov, .webm or .avi file name",
                path.display()
            ))
        }
    };
    let encoder = match encoder {
        Some(description) => gst::parse::bin_from_description(description, true)
            .map_err(|e| format!("--encoder {description}: {e}"))?
            .upcast(),
        None => {
            let name = encoders
                .iter()
                .find(|n| gst::ElementFactory::find(n).is_some())
                .ok_or_else(|| {
                    format!(
                        "no encoder for .{extension} installed (tried {}); install one or give \
                         --encoder",
                        encoders.join(", ")
                    )
                })?;
            let encoder = common::make(name)?;
            if name.starts_with("vp") {
                // libvpx's default "good" deadline is several times slower
                // than real time; --encoder gives full control.
                encoder.set_property("deadline", 1i64);
            }
            encoder
        }
    };
    Ok((encoder, common::make(muxer)?))
}

/// A frame that left `dreamsimdedup`.
#[derive(Debug, Clone, Copy)]
struct Kept {
    frame: Option<u64>,
    time: Option<gst::ClockTime>,
    duration: Option<gst::ClockTime>,
}

fn write_kept(w: &mut dyn Write, kept: &[Kept]) -> std::io::Result<()> {
    writeln!(w, "Frame,Timecode,Time (seconds),Duration (seconds)")?;
    let seconds = |t: Option<gst::ClockTime>| t.map(|t| format!("{:.3}", t.seconds_f64()));
    for k in kept {
        writeln!(
            w,
            "{},{},{},{}",
            k.frame.map(|f| f.to_string()).unwrap_or_default(),
            k.time.map(timecode).unwrap_or_default(),
            seconds(k.time).unwrap_or_default(),
            seconds(k.duration).unwrap_or_default()
        )?;
    }
    Ok(())
}

fn run(o: &Options) -> Result<(), String> {
    common::init()?;
    let started = Instant::now();
    let uri = common::to_uri(&o.input)?;

    let dreamsim = common::dreamsim(o.model.as_deref(), o.provider.as_deref())?;
    let dedup = common::make("dreamsimdedup")?;
    dreamsim.set_property("post-messages", false);
    dedup.set_property("extend-duration", true);
    if let Some(t) = o.threshold {
        dedup.set_property("threshold", t);
    }
    if let Some(n) = o.max_drops {
        dedup.set_property("max-consecutive-drops", n);
    }
    let mut chain = vec![dreamsim, dedup.clone()];
    match &o.output {
        Some(path) => {
            let (encoder, muxer) = encoder_and_muxer(path, o.encoder.as_deref())?;
            let sink = gst::ElementFactory::make("filesink")
                .property("location", path.to_string_lossy().as_ref())
                .build()
                .map_err(|_| "GStreamer element filesink is missing".to_string())?;
            chain.extend([common::make("videoconvert")?, encoder, muxer, sink]);
        }
        None => chain.push(common::fakesink()?),
    }
    let pipeline = common::decoding_pipeline(PROGRAM, &uri, &chain)?;

    let kept = Arc::new(Mutex::new(Vec::<Kept>::new()));
    {
        let kept = kept.clone();
        let pad = dedup.static_pad("src").expect("src pad");
        pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
            if let Some(buffer) = info.buffer() {
                let time = buffer.pts().and_then(|pts| common::stream_time(pad, pts));
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

    let mut counts = None;
    let result = common::run_bus(PROGRAM, &pipeline, !o.quiet, |msg, progress| {
        match msg {
            None => progress.show(&pipeline, |elapsed| {
                let (k, d) = (
                    dedup.property::<u64>("kept"),
                    dedup.property::<u64>("dropped"),
                );
                format!("{} frames, {k} kept, {d} dropped, {elapsed:.0} s", k + d)
            }),
            Some(msg) => {
                if let Some(c) = DedupMessage::from_message(msg).transpose().unwrap() {
                    counts = Some(c);
                }
            }
        }
        Ok(ControlFlow::Continue(()))
    });
    let _ = pipeline.set_state(gst::State::Null);
    result?;

    let kept = std::mem::take(&mut *kept.lock().unwrap());
    match &o.timestamps {
        Some(path) => common::write_file(path, |w| write_kept(w, &kept))?,
        None => write_kept(&mut std::io::stdout().lock(), &kept).map_err(|e| e.to_string())?,
    }
    if !o.quiet {
        let c = counts.unwrap_or(DedupMessage {
            kept: dedup.property("kept"),
            dropped: dedup.property("dropped"),
            without_meta: 0,
        });
        let total = c.kept + c.dropped;
        let elapsed = started.elapsed().as_secs_f64();
        eprintln!(
            "dedup: kept {} of {total} frames, dropped {} ({:.1} %), in {elapsed:.1} s ({:.1} fps)",
            c.kept,
            c.dropped,
            100.0 * c.dropped as f64 / total.max(1) as f64,
            total as f64 / elapsed.max(1e-9)
        );
        if let Some(p) = &o.timestamps {
            eprintln!("dedup: kept frames listed in {}", p.display());
        }
        if let Some(p) = &o.output {
            eprintln!("dedup: deduplicated video written to {}", p.display());
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    common::main(PROGRAM, USAGE, parse_args(std::env::args().skip(1)), |o| {
        run(o).map(|()| ExitCode::SUCCESS)
    })
}
