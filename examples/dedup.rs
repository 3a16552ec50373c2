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

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gst::prelude::*;
use gstdreamsim::dedup_message::DedupMessage;
use gstdreamsim::meta::DreamSimMeta;

const USAGE: &str = "\
Usage: dedup [OPTIONS] INPUT

Drops the frames of a video that DreamSim finds within a distance of the last
kept frame, and lists the kept frames (CSV: frame, timecode, time and how long
the frame stays on screen once the dropped frames are gone).

  INPUT                     video file or URI
  --model PATH              DreamSim ONNX model (default: the ensemble that
                            tools/get_model.sh installs)
  --provider NAME           auto, cpu, cuda or tensorrt (default: auto)
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
            "--max-drops" => o.max_drops = Some(num(&name, value("a frame count")?)?),
            "--timestamps" => o.timestamps = Some(value("a path")?.into()),
            "--output" => o.output = Some(value("a path")?.into()),
            "--encoder" => o.encoder = Some(value("an element description")?),
            "--quiet" => o.quiet = true,
            s if s.starts_with('-') && s.len() > 1 => return Err(format!("unknown option {s}")),
            _ if input.is_none() => input = Some(arg),
            _ => return Err(format!("unexpected argument {arg}")),
        }
    }
    if o.encoder.is_some() && o.output.is_none() {
        return Err("--encoder needs --output".into());
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
                eprintln!("dedup: cannot link the video stream: {e:?}");
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
            let encoder = make(name)?;
            if name.starts_with("vp") {
                // libvpx's default "good" deadline is several times slower
                // than real time; --encoder gives full control.
                encoder.set_property("deadline", 1i64);
            }
            encoder
        }
    };
    Ok((encoder, make(muxer)?))
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

    fn show(&mut self, pipeline: &gst::Pipeline, what: &str) {
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
        let line = format!(
            "dedup: {} / {}{percent}, {what}, {:.0} s",
            position.map_or("--".into(), timecode),
            duration.map_or("--".into(), timecode),
            self.started.elapsed().as_secs_f64()
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

/// A frame that left `dreamsimdedup`.
#[derive(Debug, Clone, Copy)]
struct Kept {
    frame: Option<u64>,
    time: Option<gst::ClockTime>,
    duration: Option<gst::ClockTime>,
}

/// `HH:MM:SS.mmm`.
fn timecode(t: gst::ClockTime) -> String {
    let ms = t.mseconds();
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
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
    gst::init().map_err(|e| e.to_string())?;
    gstdreamsim::plugin_register_static().map_err(|e| e.to_string())?;
    let started = Instant::now();
    let uri = to_uri(&o.input)?;

    let pipeline = gst::Pipeline::new();
    let convert = make("videoconvert")?;
    let dreamsim = make("dreamsim")?;
    let dedup = make("dreamsimdedup")?;
    dreamsim.set_property("post-messages", false);
    if let Some(m) = &o.model {
        dreamsim.set_property("model-location", m);
    }
    if let Some(p) = &o.provider {
        dreamsim.set_property_from_str("execution-provider", p);
    }
    dedup.set_property("extend-duration", true);
    if let Some(t) = o.threshold {
        dedup.set_property("threshold", t);
    }
    if let Some(n) = o.max_drops {
        dedup.set_property("max-consecutive-drops", n);
    }
    let mut chain = vec![convert.clone(), dreamsim, dedup.clone()];
    match &o.output {
        Some(path) => {
            let (encoder, muxer) = encoder_and_muxer(path, o.encoder.as_deref())?;
            let sink = gst::ElementFactory::make("filesink")
                .property("location", path.to_string_lossy().as_ref())
                .build()
                .map_err(|_| "GStreamer element filesink is missing".to_string())?;
            chain.extend([make("videoconvert")?, encoder, muxer, sink]);
        }
        None => chain.push(
            gst::ElementFactory::make("fakesink")
                .property("sync", false)
                .build()
                .map_err(|_| "GStreamer element fakesink is missing".to_string())?,
        ),
    }
    pipeline.add_many(&chain).map_err(|e| e.to_string())?;
    gst::Element::link_many(&chain).map_err(|e| e.to_string())?;
    add_decoder(&pipeline, &uri, &convert)?;

    let kept = Arc::new(Mutex::new(Vec::<Kept>::new()));
    {
        let kept = kept.clone();
        let pad = dedup.static_pad("src").expect("src pad");
        pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
            if let Some(buffer) = info.buffer() {
                let segment = pad.sticky_event::<gst::event::Segment>(0);
                let time = buffer.pts().and_then(|pts| {
                    segment?
                        .segment()
                        .downcast_ref::<gst::ClockTime>()?
                        .to_stream_time(pts)
                });
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

    let bus = pipeline.bus().expect("pipeline bus");
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|_| "the pipeline does not start".to_string())?;
    let mut progress = Progress::new(!o.quiet);
    let mut counts = None;
    let result = loop {
        let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(200)) else {
            let (k, d) = (
                dedup.property::<u64>("kept"),
                dedup.property::<u64>("dropped"),
            );
            progress.show(
                &pipeline,
                &format!("{} frames, {k} kept, {d} dropped", k + d),
            );
            continue;
        };
        if let Some(c) = DedupMessage::from_message(&msg) {
            counts = Some(c);
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
                eprintln!("dedup: warning: {}", w.error());
            }
            _ => {}
        }
    };
    progress.done();
    let _ = pipeline.set_state(gst::State::Null);
    result?;

    let kept = std::mem::take(&mut *kept.lock().unwrap());
    match &o.timestamps {
        Some(path) => {
            let mut file = std::io::BufWriter::new(
                std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?,
            );
            write_kept(&mut file, &kept)
                .and_then(|()| file.flush())
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
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
    let options = match parse_args(std::env::args().skip(1)) {
        Ok(o) => o,
        Err(e) if e.is_empty() => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("dedup: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dedup: error: {e}");
            ExitCode::FAILURE
        }
    }
}
