//! `gst-dreamsim distances`: the DreamSim distance of every analysed frame to
//! the previous one (and to a reference image), as CSV or JSON.
//!
//! Pipeline: `uridecodebin ! videoconvert ! dreamsim ! fakesink`, reading the
//! `dreamsim` bus messages.

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use gst::prelude::*;
use gstdreamsim::DreamSimMessage;
use serde::Serialize;

use crate::common::CommonArgs;
use crate::metrics::{Metrics, MetricsArgs, StreamMetrics};
use crate::output::{csv_row, Output};
use crate::pipeline::{self, BusHandler};
use crate::progress::Progress;
use crate::{Error, PROGRAM};

/// Per-frame DreamSim distances of a video
///
/// Writes one row per analysed frame: its index, its timestamp, the distance
/// to the previous analysed frame and, with --reference, to the reference
/// image (CSV: frame,time_s,distance,reference_distance; empty where there is
/// none, as on the first frame). A summary with the largest distances goes to
/// standard error.
#[derive(Debug, clap::Args)]
#[command(mut_arg("output", |a| a.help("Write the table to FILE instead of standard output")))]
#[command(after_help = "Example:\n  \
    gst-dreamsim distances --model tests/fixtures/tiny_ensemble.onnx \\\n      \
    --reference tests/fixtures/reference.png .cache/media/bikes.mp4 > distances.csv")]
pub struct Args {
    /// Video file or URI
    pub input: String,

    /// Also measure each frame's distance to this image (PNG, JPEG, BMP or WebP)
    #[arg(long, value_name = "IMAGE")]
    pub reference: Option<PathBuf>,

    /// Analyse one frame in N
    #[arg(long, value_name = "N", default_value_t = gstdreamsim::dreamsim::DEFAULT_INTERVAL,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub interval: u32,

    #[command(flatten)]
    pub out: crate::args::OutputArgs,

    #[command(flatten)]
    pub metrics: MetricsArgs,

    #[command(flatten)]
    pub common: CommonArgs,
}

/// One analysed frame, as a CSV row and a JSON object.
#[derive(Debug, Serialize)]
struct Row {
    frame: u64,
    /// The buffer's timestamp (PTS) in seconds.
    time_s: Option<f64>,
    distance: Option<f64>,
    reference_distance: Option<f64>,
}

impl Row {
    fn csv(&self) -> [String; 4] {
        let fmt = |d: Option<f64>| d.map(|d| format!("{d:.6}")).unwrap_or_default();
        [
            self.frame.to_string(),
            self.time_s.map(|t| format!("{t:.3}")).unwrap_or_default(),
            fmt(self.distance),
            fmt(self.reference_distance),
        ]
    }
}

const CSV_HEADER: [&str; 4] = ["frame", "time_s", "distance", "reference_distance"];

/// The `--json` document.
#[derive(Debug, Serialize)]
struct Document<'a> {
    input: &'a str,
    provider: Option<String>,
    precision: Option<String>,
    frames: Vec<Row>,
}

/// Collects the rows: written as they come (CSV), or kept for the JSON
/// document.
struct Collect {
    out: Output,
    json: bool,
    rows: Vec<Row>,
    frames: u64,
    /// (distance, frame) of every frame that has a distance.
    distances: Vec<(f64, u64)>,
    started: Instant,
    metrics: Option<StreamMetrics>,
}

impl BusHandler for Collect {
    fn message(&mut self, msg: &gst::MessageRef, _: &Progress) -> Result<ControlFlow<()>, Error> {
        let Some(m) = DreamSimMessage::from_message(msg).transpose()? else {
            return Ok(ControlFlow::Continue(()));
        };
        self.frames += 1;
        if let Some(metrics) = &self.metrics {
            metrics.frame(m.reference_distance, m.distance);
        }
        if let Some(d) = m.distance {
            self.distances.push((d, m.frame));
        }
        let row = Row {
            frame: m.frame,
            time_s: m.timing.timestamp.map(|t| t.nseconds() as f64 / 1e9),
            distance: m.distance,
            reference_distance: m.reference_distance,
        };
        if self.json {
            self.rows.push(row);
        } else {
            self.out.write_row(|w| csv_row(w, row.csv()))?;
        }
        Ok(ControlFlow::Continue(()))
    }

    fn status(&self) -> String {
        format!(
            "{} frames, {:.1} fps",
            self.frames,
            self.frames as f64 / self.started.elapsed().as_secs_f64().max(1e-9)
        )
    }
}

pub fn run(args: Args) -> Result<ExitCode, Error> {
    let mut inputs = args.common.input_files();
    inputs.push(args.input.clone());
    inputs.extend(
        args.reference
            .iter()
            .map(|r| r.to_string_lossy().into_owned()),
    );
    crate::overwrite::refuse_overwrite(inputs, &[("--output", args.out.output.as_deref())])?;
    if let Some(r) = &args.reference {
        crate::untrusted::check_regular(r).map_err(|e| Error::untrusted_read(r, e))?;
    }
    let uri = pipeline::to_uri(&args.input)?;
    let dreamsim = pipeline::dreamsim(&args.common)?;
    dreamsim.set_property(gstdreamsim::dreamsim::property::INTERVAL, args.interval);
    if let Some(r) = &args.reference {
        dreamsim.set_property(
            gstdreamsim::dreamsim::property::REFERENCE_LOCATION,
            r.to_string_lossy().as_ref(),
        );
    }
    let pipeline = pipeline::decoding_pipeline(&uri, &[dreamsim.clone(), pipeline::fakesink()?])?;

    let mut out = Output::create(args.out.output.as_deref())?;
    if !args.out.json {
        out.write_row(|w| csv_row(w, CSV_HEADER))?;
    }
    let metrics = Metrics::start(&args.metrics)?;
    if let Some(m) = &metrics {
        m.watch_element(&dreamsim);
    }
    let mut collect = Collect {
        out,
        json: args.out.json,
        rows: Vec::new(),
        frames: 0,
        distances: Vec::new(),
        started: Instant::now(),
        metrics: metrics.as_ref().map(|m| m.stream("input", true)),
    };
    let mut progress = Progress::new("distances", !args.common.quiet);
    let result = pipeline::run_bus(&pipeline, &mut progress, &mut collect);
    let provider: Option<String> = dreamsim.property("active-provider");
    let precision: Option<String> = dreamsim.property("active-precision");
    pipeline::stop(&pipeline);
    result?;

    let Collect {
        mut out,
        rows,
        frames,
        mut distances,
        started,
        ..
    } = collect;
    if args.out.json {
        out.write_json(&Document {
            input: &args.input,
            provider: provider.clone(),
            precision,
            frames: rows,
        })?;
    }
    out.finish()?;

    if !args.common.quiet {
        let elapsed = started.elapsed().as_secs_f64();
        distances.sort_by(|a, b| b.0.total_cmp(&a.0));
        eprintln!(
            "{PROGRAM} distances: {frames} frames analysed in {elapsed:.1} s ({:.2} frames/s) on {}",
            frames as f64 / elapsed.max(1e-9),
            provider.as_deref().unwrap_or("?")
        );
        let top: Vec<String> = distances
            .iter()
            .take(5)
            .map(|(d, f)| format!("frame {f}: {d:.4}"))
            .collect();
        eprintln!(
            "{PROGRAM} distances: largest distances to the previous frame: {}",
            top.join(", ")
        );
        if let Some(p) = out.path() {
            eprintln!("{PROGRAM} distances: written to {}", p.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
