//! `gst-dreamsim compare`: files under test against a reference file, frame
//! by frame (full-reference, like FFmpeg's `libvmaf` filter), with a
//! libvmaf-layout log, an HTML report and a pass/fail gate for CI.
//!
//! Pipeline: each input through `uridecodebin ! videoconvert` into one
//! `dreamsimcompare` (the reference on its `reference` pad, each tested file
//! on a `sink_%u` pad, in the order given) `! fakesink`; the log is filled
//! from the element's `dreamsimcompare` messages (one per compared frame)
//! and `dreamsimcompare-summary` messages (one per tested stream at EOS).
//!
//! `--html`: the worst frames' thumbnails come from a second decoding pass
//! over the files that hold them, keeping the frames with the wanted
//! indices (the element numbers a pad's frames in the order it receives
//! them, which is the decoding order of frames out of the decoder: the same
//! count here).

mod log;
mod report;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use gst::prelude::*;
use gst_video::prelude::*;
use gstdreamsim::compare::Pooled;
use gstdreamsim::{CompareMessage, CompareSummary};

use crate::common::CommonArgs;
use crate::metrics::{Metrics, MetricsArgs, StreamMetrics};
use crate::output::Output;
use crate::pipeline::{self, BusHandler};
use crate::progress::Progress;
use crate::values;
use crate::{Error, PROGRAM};

use log::{metric_name, CompareLog, LogFrame, LogStream};
use report::Thumbnail;

/// The exit status when `--fail-above` is given and a tested stream's
/// pooled distance (`--fail-on`) is above it.
pub const EXIT_FAILED: u8 = 4;

/// Width of the report's thumbnails, in pixels (the height keeps the
/// picture's aspect ratio).
const THUMBNAIL_WIDTH: i32 = 320;

/// Which pooled distance `--fail-above` gates on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FailOn {
    /// The mean distance over the compared frames
    Mean,
    /// The 95th percentile
    P95,
    /// The largest distance
    Max,
}

impl FailOn {
    fn of(self, p: &Pooled) -> f64 {
        match self {
            Self::Mean => p.mean,
            Self::P95 => p.p95,
            Self::Max => p.max,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Mean => "mean",
            Self::P95 => "p95",
            Self::Max => "max",
        }
    }
}

/// Files under test against a reference, frame by frame
///
/// Decodes the reference and each tested file, pairs their frames by
/// running time (each tested frame with the reference frame shown when it
/// starts) and measures the DreamSim distance of each pair. Writes a log in
/// the layout of libvmaf's (JSON, to standard output unless --log FILE;
/// --csv), an HTML report with --html, and a summary on standard error.
/// With --fail-above, exits with status 4 when a tested file's pooled
/// distance is above the limit.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    gst-dreamsim compare ref.mp4 test.mp4 --log out.json --html report.html\n  \
    gst-dreamsim compare ref.mp4 a.mp4 b.mp4 --csv out.csv --fail-above 0.05 --fail-on p95\n\n\
    Exit status: 0 compared (and under --fail-above), 4 a pooled distance above \
    --fail-above, 1 error, 2 usage error.")]
pub struct Args {
    /// Reference video file or URI
    pub reference: String,

    /// Video files or URIs to compare with the reference
    #[arg(required = true, value_name = "TEST")]
    pub tests: Vec<String>,

    /// Write the JSON log (libvmaf's layout) to FILE [default: standard
    /// output, unless --csv or --html is given]
    #[arg(long, value_name = "FILE", help_heading = "Output options")]
    pub log: Option<PathBuf>,

    /// Write the log as CSV (libvmaf's layout) to FILE
    #[arg(long, value_name = "FILE", help_heading = "Output options")]
    pub csv: Option<PathBuf>,

    /// Write a self-contained HTML report to FILE: the distances plotted
    /// over the frames, the pooled figures, the worst frames beside their
    /// reference frames
    #[arg(long, value_name = "FILE", help_heading = "Output options")]
    pub html: Option<PathBuf>,

    /// Worst frames shown in the HTML report
    #[arg(
        long,
        value_name = "N",
        default_value_t = 6,
        help_heading = "Output options",
        value_parser = values::usize_in(0, values::MAX_WORST)
    )]
    pub worst: usize,

    /// Count the frames whose distance is above D (in the log and the
    /// summary), 0 to 2
    #[arg(long, value_name = "D", default_value_t = gstdreamsim::compare::DEFAULT_THRESHOLD,
          value_parser = values::distance)]
    pub threshold: f64,

    /// Exit with status 4 when a tested file's pooled distance (--fail-on)
    /// is above D (0 to 2)
    #[arg(long, value_name = "D", help_heading = "Gate options", value_parser = values::distance)]
    pub fail_above: Option<f64>,

    /// The pooled distance --fail-above gates on
    #[arg(long, value_enum, value_name = "POOLING", default_value_t = FailOn::Mean,
          help_heading = "Gate options")]
    pub fail_on: FailOn,

    #[command(flatten)]
    pub metrics: MetricsArgs,

    #[command(flatten)]
    pub common: CommonArgs,
}

/// Fills the log from the element's messages.
struct Collect {
    /// Sink pad name to stream index.
    pads: HashMap<String, usize>,
    streams: Vec<LogStream>,
    summaries: Vec<Option<CompareSummary>>,
    frames: u64,
    started: Instant,
    /// Per tested stream, with `--metrics`.
    metrics: Vec<StreamMetrics>,
    fail_above: Option<f64>,
}

impl BusHandler for Collect {
    fn message(&mut self, msg: &gst::MessageRef, _: &Progress) -> Result<ControlFlow<()>, Error> {
        if let Some(m) = CompareMessage::from_message(msg).transpose()? {
            let Some(&i) = self.pads.get(&m.pad) else {
                return Ok(ControlFlow::Continue(()));
            };
            self.frames += 1;
            self.streams[i].frames.push(LogFrame::from(&m));
            if let Some(metrics) = self.metrics.get(i) {
                metrics.frame(Some(m.distance), None);
                if self.fail_above.is_some_and(|limit| m.distance > limit) {
                    metrics.alert();
                }
            }
        } else if let Some(s) = CompareSummary::from_message(msg).transpose()? {
            if let Some(&i) = self.pads.get(&s.pad) {
                self.streams[i].unpaired = s.unpaired;
                self.summaries[i] = Some(s);
            }
        }
        Ok(ControlFlow::Continue(()))
    }

    fn status(&self) -> String {
        format!(
            "{} frames compared, {:.1} fps",
            self.frames,
            self.frames as f64 / self.started.elapsed().as_secs_f64().max(1e-9)
        )
    }
}

/// `uridecodebin ! videoconvert` for `input`, into `pad` of `compare`.
fn add_input(
    pipeline: &gst::Pipeline,
    input: &str,
    compare: &gst::Element,
    pad: &gst::Pad,
) -> Result<(), Error> {
    let uri = pipeline::to_uri(input)?;
    let convert = pipeline::make("videoconvert")?;
    pipeline.add(&convert)?;
    convert
        .static_pad("src")
        .expect("src pad")
        .link(pad)
        .map_err(|e| Error::Pipeline(format!("{input}: cannot link to {compare:?}: {e:?}")))?;
    pipeline::add_decoder(pipeline, &uri, &convert)
}

pub fn run(args: Args) -> Result<ExitCode, Error> {
    let mut inputs = args.common.input_files();
    inputs.push(args.reference.clone());
    inputs.extend(args.tests.iter().cloned());
    crate::overwrite::refuse_overwrite(
        inputs,
        &[
            ("--log", args.log.as_deref()),
            ("--csv", args.csv.as_deref()),
            ("--html", args.html.as_deref()),
        ],
    )?;
    let started = Instant::now();
    let mut common = args.common.clone();
    if common.batch_size.take().is_some() && !common.quiet {
        eprintln!(
            "{PROGRAM} compare: --batch-size ignored: each round's frames (a reference frame \
             and the tested frames it covers) go to the model together"
        );
    }
    let compare = pipeline::make("dreamsimcompare")?;
    common.configure(&compare);
    compare.set_property(gstdreamsim::compare::property::THRESHOLD, args.threshold);
    let pipeline = gst::Pipeline::new();
    let sink = pipeline::fakesink()?;
    pipeline.add_many([&compare, &sink])?;
    compare.link(&sink)?;

    let reference_pad = compare.static_pad("reference").expect("reference pad");
    add_input(&pipeline, &args.reference, &compare, &reference_pad)?;
    let mut pads = HashMap::new();
    for (i, input) in args.tests.iter().enumerate() {
        let pad = compare
            .request_pad_simple("sink_%u")
            .ok_or_else(|| Error::Pipeline("dreamsimcompare gives no more sink pads".into()))?;
        add_input(&pipeline, input, &compare, &pad)?;
        pads.insert(pad.name().to_string(), i);
    }

    let metrics = Metrics::start(&args.metrics)?;
    if let Some(m) = &metrics {
        m.watch_element(&compare);
    }
    let mut collect = Collect {
        pads,
        streams: args
            .tests
            .iter()
            .map(|t| LogStream {
                source: t.clone(),
                ..LogStream::default()
            })
            .collect(),
        summaries: vec![None; args.tests.len()],
        frames: 0,
        started,
        metrics: metrics
            .iter()
            .flat_map(|m| (0..args.tests.len()).map(|i| m.stream(&metric_name(i), false)))
            .collect(),
        fail_above: args.fail_above,
    };
    let mut progress = Progress::new("compare", !args.common.quiet);
    let result = pipeline::run_bus(&pipeline, &mut progress, &mut collect);
    let fps = reference_pad.current_caps().and_then(|caps| {
        let f = caps.structure(0)?.get::<gst::Fraction>("framerate").ok()?;
        (f.numer() > 0 && f.denom() > 0).then(|| f64::from(f.numer()) / f64::from(f.denom()))
    });
    let stats: gst::Structure = compare.property("stats");
    let provider: Option<String> = compare.property("active-provider");
    pipeline::stop(&pipeline);
    result?;
    if collect.frames == 0 {
        return Err(Error::NoFrames);
    }

    let model = args
        .common
        .model
        .as_ref()
        .and_then(|m| m.file_stem())
        .map_or_else(
            || "ensemble".to_owned(),
            |s| s.to_string_lossy().into_owned(),
        );
    let log = CompareLog {
        version: format!("{PROGRAM} {}", env!("CARGO_PKG_VERSION")),
        model,
        reference: args.reference.clone(),
        fps,
        threshold: args.threshold,
        streams: std::mem::take(&mut collect.streams),
    };

    if args.log.is_some() || (args.csv.is_none() && args.html.is_none()) {
        let mut out = Output::create(args.log.as_deref())?;
        out.write(|w| log.write_json(w))?;
        out.finish()?;
    }
    if let Some(path) = &args.csv {
        let mut out = Output::create(Some(path))?;
        out.write(|w| log.write_csv(w))?;
        out.finish()?;
    }
    if let Some(path) = &args.html {
        let thumbnails = thumbnails(&args, &log)?;
        let title = format!("DreamSim comparison with {}", args.reference);
        let page = report::html(&log, &title, &thumbnails);
        std::fs::write(path, page).map_err(|source| Error::File {
            path: path.clone(),
            source,
        })?;
    }

    // The gate, and the summary.
    let mut failed = Vec::new();
    for (i, stream) in log.streams.iter().enumerate() {
        let pooled = collect.summaries[i]
            .as_ref()
            .and_then(|s| s.pooled)
            .or_else(|| stream.pooled(args.threshold));
        // A file that could not be judged does not pass the gate either.
        match (args.fail_above, &pooled) {
            (Some(limit), Some(p)) if args.fail_on.of(p) > limit => failed.push(format!(
                "{}: {} distance {:.6} > {limit}",
                stream.source,
                args.fail_on.name(),
                args.fail_on.of(p)
            )),
            (Some(_), None) => failed.push(format!("{}: no frame compared", stream.source)),
            _ => {}
        }
        if args.common.quiet {
            continue;
        }
        match pooled {
            Some(p) => eprintln!(
                "{PROGRAM} compare: {} ({}): {} frames, mean {:.4}, harmonic mean {:.4}, \
                 min {:.4}, max {:.4}, p95 {:.4}; {} above {}; {} unpaired",
                stream.source,
                metric_name(i),
                p.frames,
                p.mean,
                p.harmonic_mean,
                p.min,
                p.max,
                p.p95,
                p.over_threshold,
                args.threshold,
                stream.unpaired
            ),
            None => eprintln!(
                "{PROGRAM} compare: {} ({}): no frame compared ({} unpaired)",
                stream.source,
                metric_name(i),
                stream.unpaired
            ),
        }
    }
    if !args.common.quiet {
        let elapsed = started.elapsed().as_secs_f64();
        let field = |name: &str| stats.get::<u64>(name).unwrap_or(0);
        eprintln!(
            "{PROGRAM} compare: {} tested frames in {elapsed:.1} s ({:.1} frames/s) on {}; \
             {} reference frames embedded, {} model runs",
            collect.frames,
            collect.frames as f64 / elapsed.max(1e-9),
            provider.as_deref().unwrap_or("?"),
            field("reference-inferences"),
            field("batches"),
        );
        for path in [&args.log, &args.csv, &args.html].into_iter().flatten() {
            eprintln!("{PROGRAM} compare: written to {}", path.display());
        }
    }
    for line in &failed {
        eprintln!("{PROGRAM} compare: FAIL {line}");
    }
    Ok(if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILED)
    })
}

/// The worst frames' pictures, from a second decoding pass over the files
/// that hold them.
fn thumbnails(args: &Args, log: &CompareLog) -> Result<Vec<Thumbnail>, Error> {
    let worst = report::worst_frames(log, args.worst);
    // Per input, the frame indices wanted from it.
    let mut wanted: BTreeMap<&str, BTreeSet<u64>> = BTreeMap::new();
    for (stream, f) in &worst {
        wanted
            .entry(&args.reference)
            .or_default()
            .insert(f.reference_frame);
        wanted
            .entry(&args.tests[*stream])
            .or_default()
            .insert(f.frame);
    }
    let mut pictures: HashMap<(&str, u64), Vec<u8>> = HashMap::new();
    for (input, frames) in &wanted {
        for (frame, png) in decode_frames(input, frames)? {
            pictures.insert((input, frame), png);
        }
    }
    let picture = |input: &str, frame: u64| {
        pictures
            .get(&(input, frame))
            .cloned()
            .ok_or_else(|| Error::Input {
                input: input.to_owned(),
                reason: format!("frame {frame} is missing on a second reading"),
            })
    };
    worst
        .iter()
        .map(|&(stream, frame)| {
            Ok(Thumbnail {
                stream,
                frame,
                reference_png: picture(&args.reference, frame.reference_frame)?,
                tested_png: picture(&args.tests[stream], frame.frame)?,
            })
        })
        .collect()
}

/// Decodes `input` up to the last of `frames` and returns those frames as
/// PNG thumbnails, [`THUMBNAIL_WIDTH`] wide.
fn decode_frames(input: &str, frames: &BTreeSet<u64>) -> Result<Vec<(u64, Vec<u8>)>, Error> {
    let Some(&last) = frames.last() else {
        return Ok(Vec::new());
    };
    let uri = pipeline::to_uri(input)?;
    let scale = pipeline::make("videoscale")?;
    let sink = gst_app::AppSink::builder()
        .caps(
            &gst_video::VideoCapsBuilder::new()
                .format(gst_video::VideoFormat::Rgb)
                .width(THUMBNAIL_WIDTH)
                .pixel_aspect_ratio(gst::Fraction::new(1, 1))
                .build(),
        )
        .sync(false)
        .build();
    let pipeline = pipeline::decoding_pipeline(&uri, &[scale, sink.clone().upcast()])?;
    let result = (|| {
        pipeline.set_state(gst::State::Playing).map_err(|_| {
            Error::Pipeline(format!("{input}: the thumbnail pipeline does not start"))
        })?;
        let mut out = Vec::new();
        let mut index = 0u64;
        while index <= last {
            let Ok(sample) = sink.pull_sample() else {
                break;
            };
            if frames.contains(&index) {
                out.push((index, png(input, &sample)?));
            }
            index += 1;
        }
        if index <= last {
            let bus = pipeline.bus().expect("a pipeline has a bus");
            let reason = bus
                .pop_filtered(&[gst::MessageType::Error])
                .and_then(|m| match m.view() {
                    gst::MessageView::Error(e) => Some(e.error().to_string()),
                    _ => None,
                })
                .unwrap_or_else(|| format!("it ends at frame {index}, before frame {last}"));
            return Err(Error::Input {
                input: input.to_owned(),
                reason: format!("reading the report's thumbnails: {reason}"),
            });
        }
        Ok(out)
    })();
    pipeline::stop(&pipeline);
    result
}

/// A decoded RGB sample as a PNG file.
fn png(input: &str, sample: &gst::Sample) -> Result<Vec<u8>, Error> {
    let failed = |reason: String| Error::Input {
        input: input.to_owned(),
        reason,
    };
    let caps = sample
        .caps()
        .ok_or_else(|| failed("a frame without caps".into()))?;
    let info = gst_video::VideoInfo::from_caps(caps).map_err(|e| failed(e.to_string()))?;
    let buffer = sample
        .buffer()
        .ok_or_else(|| failed("a sample without buffer".into()))?;
    let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, &info)
        .map_err(|e| failed(e.to_string()))?;
    let (width, height) = (info.width() as usize, info.height() as usize);
    let stride = frame.plane_stride()[0] as usize;
    let data = frame.plane_data(0).map_err(|e| failed(e.to_string()))?;
    let mut rgb = Vec::with_capacity(width * height * 3);
    for row in data.chunks(stride).take(height) {
        rgb.extend_from_slice(&row[..width * 3]);
    }
    let picture = image::RgbImage::from_raw(width as u32, height as u32, rgb)
        .ok_or_else(|| failed("a frame smaller than its caps".into()))?;
    let mut png = Vec::new();
    picture
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|e| failed(format!("encoding a thumbnail: {e}")))?;
    Ok(png)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gate_reads_the_chosen_pooled_distance() {
        let p = gstdreamsim::compare::stats::pool(&[0.0, 0.25, 0.25, 1.0], 0.5).unwrap();
        assert_eq!(FailOn::Mean.of(&p), 0.375);
        assert_eq!(FailOn::Max.of(&p), 1.0);
        assert_eq!(FailOn::P95.of(&p), p.p95);
        assert!(p.p95 > 0.25 && p.p95 <= 1.0);
    }
}
