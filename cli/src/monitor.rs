//! `gst-dreamsim monitor`: a stream and a reference image in, the DreamSim
//! distance of every analysed frame to the reference out, and an alert when
//! it passes a limit (drift of a generative model's output from a reference
//! look, a camera that no longer shows what it should).
//!
//! Pipeline: `uridecodebin ! videoconvert ! dreamsim reference-location=... !
//! fakesink` (or a `--pipeline` of the user's own before `videoconvert`),
//! reading the `dreamsim` bus messages.

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use gst::prelude::*;
use gstdreamsim::DreamSimMessage;
use serde::Serialize;

use crate::common::CommonArgs;
use crate::metrics::{Metrics, MetricsArgs, StreamMetrics};
use crate::output::{csv_row, timecode, Output};
use crate::pipeline::{self, BusHandler};
use crate::progress::Progress;
use crate::values;
use crate::{Error, PROGRAM};

/// The exit status when an alert was raised.
pub const EXIT_ALERT: u8 = 3;

/// Distance of each frame to a reference image, with alerts past a limit
///
/// Measures the DreamSim distance of each frame of a stream to a reference
/// image, writes it as CSV (Frame,Timecode,Time (seconds),Reference
/// Distance,Distance) as frames are analysed, and raises an alert (a line on
/// standard error, and exit status 3) when it passes a limit.
#[derive(Debug, clap::Args)]
#[command(mut_arg("output", |a| a.help("Write the distances to FILE instead of standard output")), mut_arg("json", |a| a.help("Write JSON Lines (one object per analysed frame) instead of CSV")))]
#[command(
    allow_missing_positional = true,
    override_usage = "gst-dreamsim monitor [OPTIONS] <INPUT> <REFERENCE>\n       \
                      gst-dreamsim monitor [OPTIONS] --pipeline <DESCRIPTION> <REFERENCE>",
    after_help = "Examples:\n  \
        gst-dreamsim monitor --model tests/fixtures/tiny_ensemble.onnx --limit 0.5 \\\n      \
        .cache/media/bikes.mp4 tests/fixtures/reference.png > distances.csv\n  \
        gst-dreamsim monitor --pipeline v4l2src --consecutive 25 --stop-on-alert reference.png\n\n\
        Exit status: 0 no alert, 3 alert raised, 1 error, 2 usage error."
)]
pub struct Args {
    /// Video file or URI (file://, rtsp://, http://, ...)
    #[arg(required_unless_present = "pipeline", conflicts_with = "pipeline")]
    pub input: Option<String>,

    /// Reference image (PNG, JPEG, BMP or WebP)
    pub reference: PathBuf,

    /// Take the video from this gst-launch-1.0 description instead of INPUT,
    /// e.g. "v4l2src" or "multifilesrc location=out/%05d.png index=0 ! pngdec"
    #[arg(long, value_name = "DESCRIPTION")]
    pub pipeline: Option<String>,

    /// Alert when the distance is above D (0 to 2)
    #[arg(
        long,
        value_name = "D",
        default_value_t = 0.5,
        help_heading = "Alert options",
        value_parser = values::distance
    )]
    pub limit: f64,

    /// Alert only when N analysed frames in a row are above the limit
    #[arg(long, value_name = "N", default_value_t = 1, help_heading = "Alert options",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub consecutive: u32,

    /// Analyse one frame in N
    #[arg(long, value_name = "N", default_value_t = gstdreamsim::dreamsim::DEFAULT_INTERVAL,
          help_heading = "Alert options", value_parser = clap::value_parser!(u32).range(1..))]
    pub every: u32,

    /// Stop at the first alert
    #[arg(long, help_heading = "Alert options")]
    pub stop_on_alert: bool,

    #[command(flatten)]
    pub out: crate::args::OutputArgs,

    #[command(flatten)]
    pub metrics: MetricsArgs,

    #[command(flatten)]
    pub common: CommonArgs,
}

/// One analysed frame, as a `--json` line.
#[derive(Debug, Serialize)]
struct Row {
    frame: u64,
    timecode: Option<String>,
    time_s: Option<f64>,
    reference_distance: f64,
    distance: Option<f64>,
}

/// Alerts on runs of frames above the limit: one alert when a run reaches
/// `consecutive` frames, one notice when the distance is back under.
#[derive(Debug, Default)]
struct Watch {
    limit: f64,
    consecutive: u32,
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
    fn push(&mut self, m: &DreamSimMessage, d: f64) -> Option<String> {
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
        if d > self.limit {
            self.above += 1;
            self.run += 1;
            if !self.alerting && self.run >= self.consecutive {
                self.alerting = true;
                self.alerts += 1;
                return Some(format!(
                    "ALERT frame {} at {at}: distance to the reference {d:.4} > limit {} \
                     ({} analysed frame(s) in a row)",
                    m.frame, self.limit, self.run
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

/// Writes each frame's row and watches the distances.
struct Collect {
    out: Output,
    json: bool,
    stop_on_alert: bool,
    watch: Watch,
    metrics: Option<StreamMetrics>,
}

impl BusHandler for Collect {
    fn message(
        &mut self,
        msg: &gst::MessageRef,
        progress: &Progress,
    ) -> Result<ControlFlow<()>, Error> {
        let Some(m) = DreamSimMessage::from_message(msg).transpose()? else {
            return Ok(ControlFlow::Continue(()));
        };
        let Some(d) = m.reference_distance else {
            return Ok(ControlFlow::Continue(()));
        };
        let time = m.timing.stream_time;
        if self.json {
            let row = Row {
                frame: m.frame,
                timecode: time.map(timecode),
                time_s: time.map(|t| t.seconds_f64()),
                reference_distance: d,
                distance: m.distance,
            };
            self.out.write_row(|w| {
                serde_json::to_writer(&mut *w, &row)?;
                writeln!(w)
            })?;
        } else {
            self.out.write_row(|w| {
                csv_row(
                    w,
                    [
                        m.frame.to_string(),
                        time.map(timecode).unwrap_or_default(),
                        time.map(|t| format!("{:.3}", t.seconds_f64()))
                            .unwrap_or_default(),
                        format!("{d:.6}"),
                        m.distance.map(|d| format!("{d:.6}")).unwrap_or_default(),
                    ],
                )
            })?;
        }
        let alerts = self.watch.alerts;
        let line = self.watch.push(&m, d);
        if let Some(metrics) = &self.metrics {
            metrics.frame(Some(d), m.distance);
            if self.watch.alerts > alerts {
                metrics.alert();
            }
        }
        if let Some(line) = line {
            progress.println(&format!("{PROGRAM} monitor: {line}"));
            if self.stop_on_alert && self.watch.alerting {
                return Ok(ControlFlow::Break(()));
            }
        }
        Ok(ControlFlow::Continue(()))
    }

    fn status(&self) -> String {
        format!(
            "{} frames analysed, {} alert(s)",
            self.watch.frames, self.watch.alerts
        )
    }
}

pub fn run(args: Args) -> Result<ExitCode, Error> {
    let mut inputs = args.common.input_files();
    inputs.extend(args.input.iter().cloned());
    inputs.push(args.reference.to_string_lossy().into_owned());
    crate::overwrite::refuse_overwrite(inputs, &[("--output", args.out.output.as_deref())])?;
    if !args.reference.exists() {
        return Err(Error::Input {
            input: args.reference.display().to_string(),
            reason: "no such image".into(),
        });
    }
    crate::untrusted::check_regular(&args.reference)
        .map_err(|e| Error::untrusted_read(&args.reference, e))?;
    let started = Instant::now();

    // videoconvert ! dreamsim ! fakesink, after the user's pipeline (whose
    // dynamic pads gst-launch syntax links when they appear) or a decoder.
    let (pipeline, dreamsim) = match (&args.pipeline, &args.input) {
        (Some(description), _) => {
            let pipeline = gst::parse::launch(&format!(
                "{description} ! videoconvert ! dreamsim name=monitor-dreamsim ! \
                 fakesink sync=false"
            ))
            .map_err(|source| Error::Description {
                option: "--pipeline",
                description: description.clone(),
                source,
            })?
            .downcast::<gst::Pipeline>()
            .map_err(|_| Error::Pipeline(format!("--pipeline {description}: not a pipeline")))?;
            let dreamsim = pipeline.by_name("monitor-dreamsim").expect("named above");
            args.common.configure(&dreamsim);
            (pipeline, dreamsim)
        }
        (None, Some(input)) => {
            let dreamsim = pipeline::dreamsim(&args.common)?;
            let chain = [dreamsim.clone(), pipeline::fakesink()?];
            let uri = pipeline::to_uri(input)?;
            (pipeline::decoding_pipeline(&uri, &chain)?, dreamsim)
        }
        (None, None) => unreachable!("clap requires INPUT without --pipeline"),
    };
    dreamsim.set_property(
        "reference-location",
        args.reference.to_string_lossy().as_ref(),
    );
    dreamsim.set_property(gstdreamsim::dreamsim::property::INTERVAL, args.every);

    let mut out = Output::create(args.out.output.as_deref())?;
    if !args.out.json {
        out.write_row(|w| {
            csv_row(
                w,
                [
                    "Frame",
                    "Timecode",
                    "Time (seconds)",
                    "Reference Distance",
                    "Distance",
                ],
            )
        })?;
    }
    let metrics = Metrics::start(&args.metrics)?;
    if let Some(m) = &metrics {
        m.watch_element(&dreamsim);
    }
    let mut collect = Collect {
        out,
        json: args.out.json,
        stop_on_alert: args.stop_on_alert,
        metrics: metrics.as_ref().map(|m| m.stream("input", true)),
        watch: Watch {
            limit: args.limit,
            consecutive: args.consecutive,
            ..Watch::default()
        },
    };
    let mut progress = Progress::new("monitor", !args.common.quiet);
    let result = pipeline::run_bus(&pipeline, &mut progress, &mut collect);
    pipeline::stop(&pipeline);
    collect.out.finish()?;
    result?;

    let watch = &collect.watch;
    if !args.common.quiet {
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
            "{PROGRAM} monitor: {} frames analysed in {elapsed:.1} s ({:.1} fps); distance to \
             the reference: mean {mean:.4}{worst}; {} above the limit {}; {} alert(s){}",
            watch.frames,
            watch.frames as f64 / elapsed.max(1e-9),
            watch.above,
            args.limit,
            watch.alerts,
            if args.stop_on_alert && watch.alerts > 0 {
                " (stopped at the first)"
            } else {
                ""
            }
        );
    }
    Ok(if watch.alerts > 0 {
        ExitCode::from(EXIT_ALERT)
    } else {
        ExitCode::SUCCESS
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(frame: u64) -> DreamSimMessage {
        DreamSimMessage {
            timing: gstdreamsim::FrameTiming {
                stream_time: Some(gst::ClockTime::from_mseconds(40 * frame)),
                ..Default::default()
            },
            frame,
            distance: None,
            reference_distance: None,
            reused_from: None,
        }
    }

    #[test]
    fn alerts_once_per_run_of_consecutive_frames_above_the_limit() {
        let mut w = Watch {
            limit: 0.5,
            consecutive: 2,
            ..Watch::default()
        };
        let lines: Vec<Option<String>> = [0.6, 0.4, 0.6, 0.7, 0.8, 0.1]
            .iter()
            .enumerate()
            .map(|(i, &d)| w.push(&message(i as u64), d))
            .collect();
        assert!(lines[..3].iter().all(Option::is_none), "{lines:?}");
        assert!(lines[3]
            .as_deref()
            .unwrap()
            .starts_with("ALERT frame 3 at 00:00:00.120"));
        assert!(lines[4].is_none());
        assert!(lines[5]
            .as_deref()
            .unwrap()
            .starts_with("back under the limit at frame 5"));
        assert_eq!((w.alerts, w.above, w.frames), (1, 4, 6));
    }
}
