//! `gst-dreamsim bench`: throughput of the real path, `filesrc ! decodebin !
//! videoconvert ! dreamsim ! fakesink` over a video, with the time per
//! stage, CPU use and peak memory; optionally the agreement of a second
//! model (reduced precision) with the first (fp32) on the same frames, or of
//! the element's own fast path (auto: OpenVINO bf16 on AMX / AVX512-BF16)
//! with fp32.
//!
//! Stages: `decode` is a separate decode-only pass over the same input
//! (decodebin + videoconvert), `preprocess` and `inference` are the element's
//! own timers (its inference thread), `other` is the rest of the wall time of
//! the full run (waiting for frames, pushing). The model load at start (with
//! OpenVINO's or TensorRT's compilation) is printed apart and left out of
//! frames/s.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gst::prelude::*;
use gstdreamsim::dreamsim::property as dreamsim_property;
use gstdreamsim::model_settings::property as model_property;
use gstdreamsim::DreamSimMessage;

use crate::common::CommonArgs;
use crate::output::Output;
use crate::pipeline::{self, BusHandler};
use crate::progress::Progress;
use crate::Error;

/// Throughput of decode + dreamsim on a video: frames/s, time per stage, CPU, memory
///
/// Runs a decode-only pass, then the full pipeline, and reports frames/s
/// (the model load apart), the time per frame of each stage, the CPU cores
/// kept busy and the peak resident memory. --compare or --agreement add a
/// second run and how far its distances are from the first's.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    gst-dreamsim bench .cache/media/bikes.mp4 --model MODEL.onnx --threads 2 --batch-size 8\n  \
    gst-dreamsim bench .cache/media/bikes.mp4 --agreement --frames 100\n  \
    gst-dreamsim bench .cache/media/bikes.mp4 --precision int8 --agreement --frames 96\n  \
    gst-dreamsim bench .cache/media/bikes.mp4 --change-threshold 0.005\n  \
    gst-dreamsim bench --synthetic 10000 --model tests/fixtures/tiny_ensemble.onnx")]
pub struct Args {
    /// Video file
    #[arg(required_unless_present = "synthetic", conflicts_with = "synthetic")]
    pub input: Option<PathBuf>,

    /// Use N frames of videotestsrc (640x360) instead of a file, printing the
    /// resident memory every N/10 frames (flat memory over a long stream)
    #[arg(long, value_name = "N", help_heading = "Benchmark options",
          value_parser = crate::values::u64_in(1, crate::values::MAX_SYNTHETIC))]
    pub synthetic: Option<u64>,

    /// Measure only the first N frames
    #[arg(long, value_name = "N", help_heading = "Benchmark options",
          value_parser = crate::values::u64_in(1, u64::MAX))]
    pub frames: Option<u64>,

    /// Analyse one frame in N
    #[arg(long, value_name = "N", help_heading = "Benchmark options",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub interval: Option<u32>,

    /// Also run MODEL2 and print how far its distances are from the first model's
    #[arg(
        long,
        value_name = "MODEL2",
        conflicts_with = "agreement",
        help_heading = "Benchmark options"
    )]
    pub compare: Option<PathBuf>,

    /// Also run the same model on the CPU provider in full precision (fp32, the
    /// reference's arithmetic) and print how far the first run's distances are
    #[arg(long, help_heading = "Benchmark options")]
    pub agreement: bool,

    /// Also run with dreamsim's change test at threshold T (0 < T <= 1;
    /// 0.005 is the recommended value) and print the share of frames that
    /// reused an embedding and the frames/s beside the full run's
    #[arg(long, value_name = "T", value_parser = parse_change_threshold,
          help_heading = "Benchmark options")]
    pub change_threshold: Option<f64>,

    /// Write the first run's distances to FILE (CSV: frame,distance)
    #[arg(long, value_name = "FILE", help_heading = "Output options")]
    pub distances: Option<PathBuf>,

    /// Write the report to FILE instead of standard output
    #[arg(short, long, value_name = "FILE", help_heading = "Output options")]
    pub output: Option<PathBuf>,

    #[command(flatten)]
    pub common: CommonArgs,
}

/// `--change-threshold`: a number in (0, 1] (0 would be the full run again).
fn parse_change_threshold(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(t) if t > 0.0 && t <= 1.0 => Ok(t),
        _ => Err(format!(
            "{s:?} is not a threshold: expected a number in (0, 1]"
        )),
    }
}

/// (user + system CPU time of this process, peak resident memory in KiB,
/// current resident memory in KiB), from /proc.
fn process_usage() -> (Duration, u64, u64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses.
    let fields: Vec<&str> = stat
        .rsplit_once(") ")
        .map(|(_, rest)| rest.split(' ').collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 (1-based), 11 and 12 here.
    let hz = 100; // USER_HZ on Linux
    let cpu = Duration::from_millis((ticks(11) + ticks(12)) * 1000 / hz);
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (cpu, kib("VmHWM:"), kib("VmRSS:"))
}

/// The source of every pass, ending in an element named `last`.
fn source(args: &Args) -> String {
    match (&args.input, args.synthetic) {
        (Some(v), _) => format!(
            "filesrc location=\"{}\" ! decodebin ! videoconvert name=last",
            v.display()
        ),
        (None, Some(n)) => format!(
            "videotestsrc num-buffers={n} pattern=ball ! video/x-raw,width=640,height=360 ! \
             videoconvert name=last"
        ),
        (None, None) => unreachable!("clap requires INPUT or --synthetic"),
    }
}

/// `description` as a pipeline.
fn launch(description: &str) -> Result<gst::Pipeline, Error> {
    gst::parse::launch(description)
        .map_err(|source| Error::Description {
            option: "pipeline",
            description: description.to_owned(),
            source,
        })?
        .downcast::<gst::Pipeline>()
        .map_err(|_| Error::Pipeline(format!("{description}: not a pipeline")))
}

/// With `--frames N`, ends the stream after N frames: later buffers are
/// answered with EOS, so upstream stops decoding and sends EOS down itself.
/// (`identity eos-after` let a few more through.)
fn limit_frames(args: &Args, pipeline: &gst::Pipeline) {
    let Some(limit) = args.frames else { return };
    let pad = pipeline
        .by_name("last")
        .and_then(|e| e.static_pad("src"))
        .expect("the source's last element");
    let seen = AtomicU64::new(0);
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        if seen.fetch_add(1, Ordering::Relaxed) < limit {
            return gst::PadProbeReturn::Ok;
        }
        info.flow_res = Err(gst::FlowError::Eos);
        gst::PadProbeReturn::Handled
    });
}

/// One measured run.
struct Run {
    wall: Duration,
    cpu: Duration,
    distances: Vec<Option<f64>>,
    /// The element's frame number of each distance.
    frames: Vec<u64>,
    stats: gst::Structure,
    provider: String,
    precision: String,
}

/// Collects the distances; with `--synthetic`, prints the memory every
/// tenth of the stream.
struct Collect {
    distances: Vec<Option<f64>>,
    frames: Vec<u64>,
    memory_every: Option<u64>,
    started: Instant,
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
        self.distances.push(m.distance);
        self.frames.push(m.frame);
        if let Some(step) = self.memory_every {
            let n = self.distances.len() as u64;
            if n.is_multiple_of(step) {
                let (_, peak, rss) = process_usage();
                progress.println(&format!(
                    "  {n:>7} frames: resident {} MiB (peak {} MiB)",
                    rss / 1024,
                    peak / 1024
                ));
            }
        }
        Ok(ControlFlow::Continue(()))
    }

    fn status(&self) -> String {
        let n = self.distances.len();
        format!(
            "{n} frames, {:.1} fps",
            n as f64 / self.started.elapsed().as_secs_f64().max(1e-9)
        )
    }
}

/// One run of the full pipeline with `model` (the common options' when
/// `None`); `overrides` are element properties set after the command line's.
fn measure(
    args: &Args,
    label: &str,
    model: Option<&Path>,
    overrides: &[(&str, &str)],
) -> Result<Run, Error> {
    let pipeline = launch(&format!(
        "{} ! dreamsim name=d ! fakesink sync=false",
        source(args)
    ))?;
    let dreamsim = pipeline.by_name("d").expect("the dreamsim element");
    args.common.configure(&dreamsim);
    if let Some(n) = args.interval {
        dreamsim.set_property(dreamsim_property::INTERVAL, n);
    }
    if let Some(m) = model {
        dreamsim.set_property(model_property::MODEL_LOCATION, m.to_string_lossy().as_ref());
    }
    for (k, v) in overrides {
        dreamsim.set_property_from_str(k, v);
    }
    limit_frames(args, &pipeline);
    let (cpu0, _, _) = process_usage();
    let start = Instant::now();
    let mut collect = Collect {
        distances: Vec::new(),
        frames: Vec::new(),
        memory_every: args.synthetic.map(|n| (n / 10).max(1)),
        started: start,
    };
    let mut progress = Progress::new(label, !args.common.quiet);
    let result = pipeline::run_bus(&pipeline, &mut progress, &mut collect);
    let wall = start.elapsed();
    let (cpu1, _, _) = process_usage();
    let stats = dreamsim.property::<gst::Structure>(dreamsim_property::STATS);
    let provider = dreamsim
        .property::<Option<String>>(dreamsim_property::ACTIVE_PROVIDER)
        .unwrap_or_default();
    let precision = dreamsim
        .property::<Option<String>>(dreamsim_property::ACTIVE_PRECISION)
        .unwrap_or_default();
    pipeline::stop(&pipeline);
    result?;
    Ok(Run {
        wall,
        cpu: cpu1 - cpu0,
        distances: collect.distances,
        frames: collect.frames,
        stats,
        provider,
        precision,
    })
}

/// Counts nothing itself: the decode-only pass counts at its sink.
struct Decode(Arc<AtomicU64>);

impl BusHandler for Decode {
    fn message(&mut self, _: &gst::MessageRef, _: &Progress) -> Result<ControlFlow<()>, Error> {
        Ok(ControlFlow::Continue(()))
    }

    fn status(&self) -> String {
        format!("{} frames decoded", self.0.load(Ordering::Relaxed))
    }
}

/// The decode-only pass: its wall time and frame count.
fn decode_only(args: &Args) -> Result<(Duration, u64), Error> {
    let pipeline = launch(&format!(
        "{} ! fakesink name=s sync=false signal-handoffs=true",
        source(args)
    ))?;
    limit_frames(args, &pipeline);
    let sink = pipeline.by_name("s").expect("the sink");
    let frames = Arc::new(AtomicU64::new(0));
    let counter = frames.clone();
    sink.connect("handoff", false, move |_| {
        counter.fetch_add(1, Ordering::Relaxed);
        None
    });
    let start = Instant::now();
    let mut progress = Progress::new("decode", !args.common.quiet);
    let result = pipeline::run_bus(&pipeline, &mut progress, &mut Decode(frames.clone()));
    let wall = start.elapsed();
    pipeline::stop(&pipeline);
    result?;
    Ok((wall, frames.load(Ordering::Relaxed)))
}

fn ranks(v: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
    let mut r = vec![0.0; v.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && v[idx[j + 1]] == v[idx[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0;
        for &k in &idx[i..=j] {
            r[k] = avg;
        }
        i = j + 1;
    }
    r
}

/// Spearman's rank correlation (Pearson correlation of the ranks, ties averaged).
fn spearman(a: &[f64], b: &[f64]) -> f64 {
    let (ra, rb) = (ranks(a), ranks(b));
    let n = ra.len() as f64;
    let (ma, mb) = (ra.iter().sum::<f64>() / n, rb.iter().sum::<f64>() / n);
    let cov: f64 = ra.iter().zip(&rb).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = ra.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = rb.iter().map(|y| (y - mb).powi(2)).sum();
    cov / (va * vb).sqrt()
}

/// Writes `frame,distance` for every analysed frame of a run (empty distance
/// for the first frame), to compare runs made apart (other machines, other
/// thread counts) or with tools/reference_bench.py's CSV.
fn write_distances(path: &Path, frames: &[u64], distances: &[Option<f64>]) -> Result<(), Error> {
    let mut out = Output::create(Some(path))?;
    out.write(|w| {
        crate::output::csv_row(w, ["frame", "distance"])?;
        for (i, d) in frames.iter().zip(distances) {
            let d = d.map(|d| format!("{d:.9e}")).unwrap_or_default();
            crate::output::csv_row(w, [i.to_string(), d])?;
        }
        Ok(())
    })?;
    out.finish()
}

/// How far `other`'s distances are from `base`'s, frame by frame.
fn agreement(
    out: &mut Output,
    what: &str,
    base: &[Option<f64>],
    other: &[Option<f64>],
) -> Result<(), Error> {
    let pairs: Vec<(f64, f64)> = base
        .iter()
        .zip(other)
        .filter_map(|(a, b)| Some(((*a)?, (*b)?)))
        .collect();
    let (a, b): (Vec<f64>, Vec<f64>) = pairs.iter().copied().unzip();
    let max = pairs.iter().map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
    let mean = pairs.iter().map(|(x, y)| (x - y).abs()).sum::<f64>() / pairs.len().max(1) as f64;
    out.write(|w| {
        writeln!(
            w,
            "agreement of {what} over {} distances: max |delta| {max:.3e}, mean |delta| \
             {mean:.3e}, Spearman {:.5}",
            pairs.len(),
            spearman(&a, &b)
        )
    })
}

/// Frames of a run that got meta (the element's stats).
fn frames_with_meta(r: &Run) -> u64 {
    let count = |k: &str| r.stats.get::<u64>(k).unwrap_or(0);
    count("analysed-frames") + count("reused-frames")
}

/// frames/s of a run, the model load left out.
fn frames_per_second(r: &Run) -> f64 {
    let load = Duration::from_nanos(r.stats.get::<u64>("load-time").unwrap_or(0));
    frames_with_meta(r) as f64 / r.wall.saturating_sub(load).as_secs_f64().max(1e-9)
}

/// The figures of one run.
fn report(out: &mut Output, name: &str, r: &Run, decode: Duration) -> Result<(), Error> {
    let ns = |k: &str| Duration::from_nanos(r.stats.get::<u64>(k).unwrap_or(0));
    // Frames with meta: analysed by the model or reused by the change test.
    let frames = frames_with_meta(r);
    let (pre, inf) = (ns("preprocess-time"), ns("inference-time"));
    let per = |d: Duration| d.as_secs_f64() * 1000.0 / frames.max(1) as f64;
    let load = ns("load-time");
    let streaming = r.wall.saturating_sub(load);
    let other = streaming.saturating_sub(pre + inf);
    out.write(|w| {
        writeln!(w, "{name} on {} in {}:", r.provider, r.precision)?;
        writeln!(
            w,
            "  {frames} frames in {:.2} s after a {:.2} s model load: {:.2} frames/s (model ran \
             on {} frames, {} batches)",
            streaming.as_secs_f64(),
            load.as_secs_f64(),
            frames as f64 / streaming.as_secs_f64(),
            r.stats.get::<u64>("inferred-frames").unwrap_or(0),
            r.stats.get::<u64>("batches").unwrap_or(0)
        )?;
        writeln!(
            w,
            "  per frame: decode {:.1} ms (separate pass), preprocess {:.1} ms, inference {:.1} \
             ms, other {:.1} ms",
            per(decode),
            per(pre),
            per(inf),
            per(other)
        )?;
        writeln!(
            w,
            "  CPU {:.1} s = {:.2} cores busy on average",
            r.cpu.as_secs_f64(),
            r.cpu.as_secs_f64() / r.wall.as_secs_f64()
        )
    })
}

pub fn run(args: Args) -> Result<ExitCode, Error> {
    let mut inputs = args.common.input_files();
    inputs.extend(
        [&args.input, &args.compare]
            .into_iter()
            .flatten()
            .map(|p| p.to_string_lossy().into_owned()),
    );
    crate::overwrite::refuse_overwrite(
        inputs,
        &[
            ("--distances", args.distances.as_deref()),
            ("--output", args.output.as_deref()),
        ],
    )?;
    if let Some(input) = &args.input {
        if !input.is_file() {
            return Err(Error::Input {
                input: input.display().to_string(),
                reason: "no such file".into(),
            });
        }
    }
    let mut out = Output::create(args.output.as_deref())?;
    let (decode, decoded) = decode_only(&args)?;
    out.write(|w| {
        writeln!(
            w,
            "decode only: {decoded} frames in {:.2} s ({:.1} frames/s)",
            decode.as_secs_f64(),
            decoded as f64 / decode.as_secs_f64()
        )
    })?;
    let model = args
        .common
        .model_path()
        .map_or_else(|_| "the default model".into(), |m| m.display().to_string());
    let base = measure(&args, "run", None, &[])?;
    report(&mut out, &model, &base, decode)?;
    if let Some(path) = &args.distances {
        write_distances(path, &base.frames, &base.distances)?;
    }
    if let Some(other) = &args.compare {
        let cmp = measure(&args, "compare", Some(other), &[])?;
        let name = other.display().to_string();
        report(&mut out, &name, &cmp, decode)?;
        agreement(
            &mut out,
            &format!("{name} with {model}"),
            &base.distances,
            &cmp.distances,
        )?;
    }
    if let Some(t) = args.change_threshold {
        let changed = measure(
            &args,
            "change test",
            None,
            &[(dreamsim_property::CHANGE_THRESHOLD, &t.to_string())],
        )?;
        report(
            &mut out,
            &format!("{model} with change-threshold={t}"),
            &changed,
            decode,
        )?;
        let reused = changed.stats.get::<u64>("reused-frames").unwrap_or(0);
        let frames = frames_with_meta(&changed).max(1);
        let (full, fast) = (frames_per_second(&base), frames_per_second(&changed));
        out.write(|w| {
            writeln!(
                w,
                "change test at {t}: {reused} of {frames} frames reused ({:.1} %), {fast:.2} \
                 frames/s against {full:.2} for the full run ({:.2}x)",
                100.0 * reused as f64 / frames as f64,
                fast / full.max(1e-9)
            )
        })?;
        agreement(
            &mut out,
            &format!("the change test at {t} with the full run"),
            &base.distances,
            &changed.distances,
        )?;
    }
    if args.agreement {
        let fp32 = measure(
            &args,
            "fp32",
            None,
            &[
                (model_property::EXECUTION_PROVIDER, "cpu"),
                (model_property::FULL_PRECISION, "true"),
                // Whatever --precision asked of the first run.
                (model_property::PRECISION, "fp32"),
            ],
        )?;
        report(
            &mut out,
            &format!("{model} (fp32 reference run)"),
            &fp32,
            decode,
        )?;
        agreement(
            &mut out,
            &format!("{} {} with cpu fp32", base.provider, base.precision),
            &fp32.distances,
            &base.distances,
        )?;
    }
    let (_, peak, _) = process_usage();
    out.write(|w| {
        writeln!(
            w,
            "peak resident memory of the process: {} MiB",
            peak / 1024
        )
    })?;
    out.finish()?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spearman_of_monotone_and_reversed_orders() {
        let a = [0.1, 0.5, 0.2, 0.9];
        assert!((spearman(&a, &[1.0, 5.0, 2.0, 9.0]) - 1.0).abs() < 1e-12);
        assert!((spearman(&a, &[9.0, 1.0, 5.0, 0.0]) + 1.0).abs() < 1e-12);
    }

    #[test]
    fn the_change_threshold_is_a_number_in_the_unit_interval() {
        assert_eq!(parse_change_threshold("0.02"), Ok(0.02));
        assert_eq!(parse_change_threshold("1"), Ok(1.0));
        for bad in ["0", "-0.1", "1.5", "nan", "inf", "x"] {
            assert!(parse_change_threshold(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ties_share_their_mean_rank() {
        assert_eq!(ranks(&[3.0, 1.0, 3.0, 2.0]), [2.5, 0.0, 2.5, 1.0]);
    }
}
