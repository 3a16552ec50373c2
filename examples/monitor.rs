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

mod common;

use std::io::Write;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use common::timecode;
use gst::prelude::*;
use gstdreamsim::DreamSimMessage;

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
  --provider NAME           auto, cpu, cuda, tensorrt or openvino (default: auto)
  --quiet                   no progress or summary on standard error
  -h, --help                this text

Exit status: 0 no alert, 3 alert raised, 1 error, 2 usage error.
";

const PROGRAM: &str = "monitor";
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
    common::parse(
        args,
        |a, args| {
            match a.name.as_str() {
                "--pipeline" => o.pipeline = Some(a.value(args, "a pipeline description")?),
                "--limit" => o.limit = a.number(args, "a distance")?,
                "--consecutive" => o.consecutive = a.number(args, "a frame count")?,
                "--every" => o.every = a.number(args, "a frame count")?,
                "--stop-on-alert" => o.stop_on_alert = true,
                "--csv" => o.csv = Some(a.value(args, "a path")?.into()),
                "--model" => o.model = Some(a.value(args, "a path")?),
                "--provider" => o.provider = Some(a.provider(args)?),
                "--quiet" => o.quiet = true,
                _ => return Ok(false),
            }
            Ok(true)
        },
        |arg| {
            positional.push(arg);
            Ok(())
        },
    )?;
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
            self.worst = Some((d, m.frame, m.timing.stream_time));
        }
        let at = m
            .timing
            .stream_time
            .map(timecode)
            .unwrap_or_else(|| "--".into());
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
    common::init()?;
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
            let dreamsim = common::make("dreamsim")?;
            let chain = [dreamsim.clone(), common::fakesink()?];
            let uri = common::to_uri(input)?;
            (common::decoding_pipeline(PROGRAM, &uri, &chain)?, dreamsim)
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
        Some(path) => Box::new(common::create(path)?),
        None => Box::new(std::io::LineWriter::new(std::io::stdout())),
    };
    let write_err = |e: std::io::Error| format!("writing the distances: {e}");
    writeln!(
        out,
        "Frame,Timecode,Time (seconds),Reference Distance,Distance"
    )
    .map_err(write_err)?;

    let mut watch = Watch::default();
    let result = common::run_bus(PROGRAM, &pipeline, !o.quiet, |msg, progress| {
        let Some(msg) = msg else {
            progress.show(&pipeline, |_| {
                format!(
                    "{} frames analysed, {} alert(s)",
                    watch.frames, watch.alerts
                )
            });
            return Ok(ControlFlow::Continue(()));
        };
        let Some(m) = DreamSimMessage::from_message(msg).transpose().unwrap() else {
            return Ok(ControlFlow::Continue(()));
        };
        let Some(d) = m.reference_distance else {
            return Ok(ControlFlow::Continue(()));
        };
        let time = m.timing.stream_time;
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
            progress.done();
            eprintln!("{PROGRAM}: {line}");
            if o.stop_on_alert && watch.alerting {
                return Ok(ControlFlow::Break(()));
            }
        }
        Ok(ControlFlow::Continue(()))
    });
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
    common::main(PROGRAM, USAGE, parse_args(std::env::args().skip(1)), |o| {
        Ok(match run(o)? {
            false => ExitCode::SUCCESS,
            true => ExitCode::from(EXIT_ALERT),
        })
    })
}
