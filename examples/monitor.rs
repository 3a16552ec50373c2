//! `monitor`: a stream and a reference image in, the DreamSim distance of
//! every analysed frame to the reference out, and an alert when it passes a
//! limit (drift of a generative model's output from a reference look, a
//! camera that no longer shows what it should).
//!
//! Runs `uridecodebin ! videoconvert ! dreamsim reference-location=... !
//! fakesink` (or a `--pipeline` of your own before `videoconvert`) and reads
//! the `dreamsim` bus messages.
//!
//! ```text
//! cargo run -p gst-plugin-dreamsim --example monitor -- \
//!     --model tests/fixtures/tiny_ensemble.onnx --limit 0.5 \
//!     .cache/media/bikes.mp4 tests/fixtures/reference.png
//! ```
//!
//! Exit status: 0 when no alert was raised, 3 when one was, 1 on errors and
//! 2 on usage errors.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use gst::prelude::*;
use gstdreamsim::message::DreamSimMessage;

const USAGE: &str = "\
Usage: monitor [OPTIONS] INPUT REFERENCE
       monitor [OPTIONS] --pipeline DESCRIPTION REFERENCE

Measures the DreamSim distance of each frame of a stream to a reference image,
writes it as CSV and raises an alert (a line on standard error, and exit
status 3) when it passes a limit.

  INPUT                     video file or URI (file://, rtsp://, http://, ...)
  REFERENCE                 reference image (PNG, JPEG, BMP or WebP)
  --pipeline DESCRIPTION    take the video from this gst-launch-1.0 description
                            instead of INPUT, e.g. \"v4l2src\" or
                            \"multifilesrc location=out/%05d.png index=0 ! pngdec\"
  --limit D                 alert when the distance is above D (default: 0.5)
  --consecutive N           alert only when N analysed frames in a row are
                            above the limit (default: 1)
  --every N                 analyse one frame in N (default: 1)
  --stop-on-alert           stop at the first alert
  --csv FILE                write the distances to FILE (default: standard
                            output)
  --model PATH              DreamSim ONNX model (default: the ensemble that
                            tools/get_model.sh installs)
  --provider NAME           auto, cpu, cuda or tensorrt (default: auto)
  --quiet                   no progress or summary on standard error
  -h, --help                this text

Exit status: 0 no alert, 3 alert raised, 1 error, 2 usage error.
";

const EXIT_ALERT: u8 = 3;

#[derive(Debug)]
struct Options {
    input: Option<String>,
    pipeline: Option<String>,
    reference: PathBuf,
    limit: f64,
    consecutive: u32,
    every: u32,
    stop_on_alert: bool,
    csv: Option<PathBuf>,
    model: Option<String>,
    provider: Option<String>,
    quiet: bool,
}

fn parse_args(args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut o = Options {
        input: None,
        pipeline: None,
        reference: PathBuf::new(),
        limit: 0.5,
        consecutive: 1,
        every: 1,
        stop_on_alert: false,
        csv: None,
        model: None,
        provider: None,
        quiet: false,
    };
    let mut positional = Vec::new();
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
            "--pipeline" => o.pipeline = Some(value("a pipeline description")?),
            "--limit" => o.limit = num(&name, value("a distance")?)?,
            "--consecutive" => o.consecutive = num(&name, value("a frame count")?)?,
            "--every" => o.every = num(&name, value("a frame count")?)?,
            "--stop-on-alert" => o.stop_on_alert = true,
            "--csv" => o.csv = Some(value("a path")?.into()),
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
            "--quiet" => o.quiet = true,
            s if s.starts_with('-') && s.len() > 1 => return Err(format!("unknown option {s}")),
            _ => positional.push(arg),
        }
    }
    if o.consecutive == 0 || o.every == 0 {
        return Err("--consecutive and --every take 1 or more".into());
    }
    let wanted = if o.pipeline.is_some() { 1 } else { 2 };
    if positional.len() != wanted {
        return Err(if o.pipeline.is_some() {
            "with --pipeline, give only the REFERENCE image".into()
        } else {
            "give an INPUT and a REFERENCE image".into()
        });
    }
    o.reference = positional.pop().expect("counted").into();
    o.input = positional.pop();
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
                eprintln!("monitor: cannot link the video stream: {e:?}");
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

/// Alerts on runs of frames above the limit: one alert when a run reaches
/// `consecutive` frames, one notice when the distance is back under.
#[derive(Debug, Default)]
struct Watch {
    run: u32,
    alerting: bool,
    alerts: u64,
    above: u64,
    frames: u64,
    sum: f64,
    worst: Option<(f64, u64, Option<gst::ClockTime>)>,
}

impl Watch {
    /// Takes one frame's distance; returns the line to print, if any.
    fn push(&mut self, o: &Options, m: &DreamSimMessage, d: f64) -> Option<String> {
        self.frames += 1;
        self.sum += d;
        if self.worst.is_none_or(|(w, _, _)| d > w) {
            self.worst = Some((d, m.frame, m.stream_time));
        }
        let at = m.stream_time.map(timecode).unwrap_or_else(|| "--".into());
        if d > o.limit {
            self.above += 1;
            self.run += 1;
            if !self.alerting && self.run >= o.consecutive {
                self.alerting = true;
                self.alerts += 1;
                return Some(format!(
                    "ALERT frame {} at {at}: distance to the reference {d:.4} > limit {} \
                     ({} analysed frame(s) in a row)",
                    m.frame, o.limit, self.run
                ));
            }
        } else {
            self.run = 0;
            if std::mem::take(&mut self.alerting) {
                return Some(format!(
                    "back under the limit at frame {} ({at}): distance {d:.4}",
                    m.frame
                ));
            }
        }
        None
    }
}

fn run(o: &Options) -> Result<bool, String> {
    gst::init().map_err(|e| e.to_string())?;
    gstdreamsim::plugin_register_static().map_err(|e| e.to_string())?;
    if !o.reference.is_file() {
        return Err(format!("{}: no such image", o.reference.display()));
    }
    let started = Instant::now();

    // videoconvert ! dreamsim ! fakesink, after the user's pipeline (whose
    // dynamic pads gst-launch syntax links when they appear) or a decoder.
    let (pipeline, dreamsim) = match (&o.pipeline, &o.input) {
        (Some(description), _) => {
            let pipeline = gst::parse::launch(&format!(
                "{description} ! videoconvert ! dreamsim name=monitor-dreamsim ! \
                 fakesink sync=false"
            ))
            .map_err(|e| format!("--pipeline: {e}"))?
            .downcast::<gst::Pipeline>()
            .map_err(|_| "--pipeline: not a pipeline".to_string())?;
            let dreamsim = pipeline.by_name("monitor-dreamsim").expect("named above");
            (pipeline, dreamsim)
        }
        (None, Some(input)) => {
            let pipeline = gst::Pipeline::new();
            let convert = make("videoconvert")?;
            let dreamsim = make("dreamsim")?;
            let sink = gst::ElementFactory::make("fakesink")
                .property("sync", false)
                .build()
                .map_err(|_| "GStreamer element fakesink is missing".to_string())?;
            pipeline
                .add_many([&convert, &dreamsim, &sink])
                .map_err(|e| e.to_string())?;
            gst::Element::link_many([&convert, &dreamsim, &sink]).map_err(|e| e.to_string())?;
            add_decoder(&pipeline, &to_uri(input)?, &convert)?;
            (pipeline, dreamsim)
        }
        (None, None) => unreachable!("checked by parse_args"),
    };
    dreamsim.set_property("reference-location", o.reference.to_string_lossy().as_ref());
    dreamsim.set_property("interval", o.every);
    if let Some(m) = &o.model {
        dreamsim.set_property("model-location", m);
    }
    if let Some(p) = &o.provider {
        dreamsim.set_property_from_str("execution-provider", p);
    }

    let mut out: Box<dyn Write> = match &o.csv {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?,
        )),
        None => Box::new(std::io::LineWriter::new(std::io::stdout())),
    };
    let write_err = |e: std::io::Error| format!("writing the distances: {e}");
    writeln!(
        out,
        "Frame,Timecode,Time (seconds),Reference Distance,Distance"
    )
    .map_err(write_err)?;

    let bus = pipeline.bus().expect("pipeline bus");
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|_| "the pipeline does not start".to_string())?;
    let interactive = std::io::stderr().is_terminal();
    let mut shown = Instant::now();
    let mut watch = Watch::default();
    let result = loop {
        let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(200)) else {
            let every = if interactive { 0.5 } else { 10.0 };
            if !o.quiet && shown.elapsed() >= Duration::from_secs_f64(every) {
                shown = Instant::now();
                let line = format!(
                    "monitor: {} / {}, {} frames analysed, {} alert(s)",
                    pipeline
                        .query_position::<gst::ClockTime>()
                        .map_or("--".into(), timecode),
                    pipeline
                        .query_duration::<gst::ClockTime>()
                        .map_or("--".into(), timecode),
                    watch.frames,
                    watch.alerts
                );
                if interactive {
                    eprint!("\r{line}\x1b[K");
                } else {
                    eprintln!("{line}");
                }
            }
            continue;
        };
        if let Some(m) = DreamSimMessage::from_message(&msg) {
            let Some(d) = m.reference_distance else {
                continue;
            };
            let time = m.stream_time;
            writeln!(
                out,
                "{},{},{},{d:.6},{}",
                m.frame,
                time.map(timecode).unwrap_or_default(),
                time.map(|t| format!("{:.3}", t.seconds_f64()))
                    .unwrap_or_default(),
                m.distance.map(|d| format!("{d:.6}")).unwrap_or_default()
            )
            .map_err(write_err)?;
            if let Some(line) = watch.push(o, &m, d) {
                if interactive && !o.quiet {
                    eprint!("\r\x1b[K");
                }
                eprintln!("monitor: {line}");
                if o.stop_on_alert && watch.alerting {
                    break Ok(());
                }
            }
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
            gst::MessageView::Warning(w) => eprintln!("monitor: warning: {}", w.error()),
            _ => {}
        }
    };
    if interactive && !o.quiet {
        eprint!("\r\x1b[K");
    }
    let _ = pipeline.set_state(gst::State::Null);
    out.flush().map_err(write_err)?;
    result?;

    if !o.quiet {
        let elapsed = started.elapsed().as_secs_f64();
        let mean = watch.sum / watch.frames.max(1) as f64;
        let worst = watch
            .worst
            .map(|(d, f, t)| {
                format!(
                    ", largest {d:.4} at frame {f} ({})",
                    t.map(timecode).unwrap_or_else(|| "--".into())
                )
            })
            .unwrap_or_default();
        eprintln!(
            "monitor: {} frames analysed in {elapsed:.1} s; distance to the reference: mean \
             {mean:.4}{worst}; {} above the limit {}; {} alert(s){}",
            watch.frames,
            watch.above,
            o.limit,
            watch.alerts,
            if o.stop_on_alert && watch.alerts > 0 {
                " (stopped at the first)"
            } else {
                ""
            }
        );
    }
    Ok(watch.alerts > 0)
}

fn main() -> ExitCode {
    let options = match parse_args(std::env::args().skip(1)) {
        Ok(o) => o,
        Err(e) if e.is_empty() => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("monitor: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&options) {
        Ok(false) => ExitCode::SUCCESS,
        Ok(true) => ExitCode::from(EXIT_ALERT),
        Err(e) => {
            eprintln!("monitor: error: {e}");
            ExitCode::FAILURE
        }
    }
}
