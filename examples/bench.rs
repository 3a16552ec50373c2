//! Throughput of the real path: `filesrc ! decodebin ! videoconvert !
//! dreamsim ! fakesink` over a video, with the time per stage, CPU use and
//! peak memory; optionally the agreement of a second model (reduced
//! precision) with the first (fp32) on the same frames, or of the element's
//! own fast path (auto: OpenVINO bf16 on AMX / AVX512-BF16) with fp32.
//!
//! ```sh
//! cargo run --release -p gst-plugin-dreamsim --example bench -- VIDEO --model MODEL.onnx \
//!     [--threads N] [--batch-size N] [--provider P] [--full-precision] [--frames N] \
//!     [--compare MODEL2.onnx | --agreement]
//! cargo run --release -p gst-plugin-dreamsim --example bench -- --synthetic 10000 --model M.onnx
//! ```
//!
//! Stages: `decode` is a separate decode-only pass over the same input
//! (decodebin + videoconvert), `preprocess` and `inference` are the
//! element's own timers (its inference thread), `other` is the rest of the
//! wall time of the full run (waiting for frames, pushing). The model load
//! at start (with OpenVINO's or TensorRT's compilation) is printed apart and
//! left out of frames/s.
//! `--synthetic N` uses N frames of videotestsrc instead of a file and
//! prints the resident memory every N/10 frames (flat memory over a long
//! stream). `--csv FILE` writes the first run's distances. `--agreement` runs the same model a second time on the CPU
//! provider in full precision (fp32, the reference's arithmetic) and prints
//! how far the first run's distances are from it.

use std::time::{Duration, Instant};

use gst::prelude::*;
use gstdreamsim::DreamSimMessage;

#[derive(Default)]
struct Args {
    video: Option<String>,
    synthetic: Option<u64>,
    model: Option<String>,
    compare: Option<String>,
    agreement: bool,
    frames: Option<u64>,
    csv: Option<String>,
    element: Vec<(String, String)>,
}

fn usage() -> ! {
    eprintln!(
        "usage: bench (VIDEO | --synthetic N) --model MODEL.onnx [--compare MODEL2.onnx | \
         --agreement] [--frames N] [--threads N] [--batch-size N] [--provider P] \
         [--full-precision] [--interval N] [--csv FILE]"
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut args = std::env::args().skip(1);
    let mut out = Args::default();
    while let Some(a) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage());
        match a.as_str() {
            "--model" => out.model = Some(value()),
            "--compare" => out.compare = Some(value()),
            "--agreement" => out.agreement = true,
            "--csv" => out.csv = Some(value()),
            "--frames" => out.frames = Some(value().parse().unwrap_or_else(|_| usage())),
            "--full-precision" => out.element.push(("full-precision".into(), "true".into())),
            "--synthetic" => out.synthetic = Some(value().parse().unwrap_or_else(|_| usage())),
            "--threads" => out.element.push(("threads".into(), value())),
            "--batch-size" => out.element.push(("batch-size".into(), value())),
            "--provider" => out.element.push(("execution-provider".into(), value())),
            "--interval" => out.element.push(("interval".into(), value())),
            "-h" | "--help" => usage(),
            s if s.starts_with("--") => usage(),
            _ => out.video = Some(a),
        }
    }
    if out.model.is_none()
        || (out.video.is_none() == out.synthetic.is_none())
        || (out.agreement && out.compare.is_some())
    {
        usage()
    }
    out
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

fn source(args: &Args) -> String {
    match (&args.video, args.synthetic) {
        (Some(v), _) => format!("filesrc location=\"{v}\" ! decodebin ! videoconvert name=last"),
        (None, Some(n)) => format!(
            "videotestsrc num-buffers={n} pattern=ball ! video/x-raw,width=640,height=360 ! videoconvert name=last"
        ),
        _ => unreachable!("checked in parse_args"),
    }
}

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

/// One run of the full pipeline; `overrides` are set after the command line's
/// element properties.
/// With `--frames N`, ends the stream after N frames: later buffers are
/// answered with EOS, so upstream stops decoding and sends EOS down itself.
/// (`identity eos-after` let a few more through.)
fn limit_frames(args: &Args, pipeline: &gst::Element) {
    let Some(limit) = args.frames else { return };
    let pad = pipeline
        .downcast_ref::<gst::Bin>()
        .expect("a pipeline")
        .by_name("last")
        .and_then(|e| e.static_pad("src"))
        .expect("the source's last element");
    let seen = std::sync::atomic::AtomicU64::new(0);
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        if seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < limit {
            return gst::PadProbeReturn::Ok;
        }
        info.flow_res = Err(gst::FlowError::Eos);
        gst::PadProbeReturn::Handled
    });
}

fn run(
    args: &Args,
    model: &str,
    overrides: &[(&str, &str)],
) -> Result<Run, Box<dyn std::error::Error>> {
    let launch = format!(
        "{} ! dreamsim name=d model-location=\"{model}\" ! fakesink sync=false",
        source(args)
    );
    let pipeline = gst::parse::launch(&launch)?;
    let dreamsim = pipeline
        .downcast_ref::<gst::Bin>()
        .expect("a pipeline")
        .by_name("d")
        .expect("the dreamsim element");
    for (k, v) in &args.element {
        dreamsim.set_property_from_str(k, v);
    }
    for (k, v) in overrides {
        dreamsim.set_property_from_str(k, v);
    }
    limit_frames(args, &pipeline);
    let (cpu0, _, _) = process_usage();
    let start = Instant::now();
    pipeline.set_state(gst::State::Playing)?;
    let bus = pipeline.bus().expect("a bus");
    let mut distances = Vec::new();
    let mut frames = Vec::new();
    let step = args.synthetic.map(|n| (n / 10).max(1));
    let mut failed = None;
    for msg in bus.iter_timed(gst::ClockTime::NONE) {
        if let Some(m) = DreamSimMessage::from_message(&msg).transpose().unwrap() {
            distances.push(m.distance);
            frames.push(m.frame);
            if let Some(step) = step {
                let n = distances.len() as u64;
                if n % step == 0 {
                    let (_, peak, rss) = process_usage();
                    eprintln!(
                        "  {n:>7} frames: resident {} MiB (peak {} MiB)",
                        rss / 1024,
                        peak / 1024
                    );
                }
            }
            continue;
        }
        match msg.view() {
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => {
                failed = Some(format!("{}", e.error()));
                break;
            }
            _ => {}
        }
    }
    let wall = start.elapsed();
    let (cpu1, _, _) = process_usage();
    let stats = dreamsim.property::<gst::Structure>("stats");
    let provider = dreamsim
        .property::<Option<String>>("active-provider")
        .unwrap_or_default();
    let precision = dreamsim
        .property::<Option<String>>("active-precision")
        .unwrap_or_default();
    pipeline.set_state(gst::State::Null)?;
    if let Some(e) = failed {
        return Err(e.into());
    }
    Ok(Run {
        wall,
        cpu: cpu1 - cpu0,
        distances,
        frames,
        stats,
        provider,
        precision,
    })
}

fn decode_only(args: &Args) -> Result<(Duration, u64), Box<dyn std::error::Error>> {
    let pipeline = gst::parse::launch(&format!(
        "{} ! fakesink name=s sync=false signal-handoffs=true",
        source(args)
    ))?;
    limit_frames(args, &pipeline);
    let sink = pipeline
        .downcast_ref::<gst::Bin>()
        .expect("a pipeline")
        .by_name("s")
        .expect("the sink");
    let frames = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = frames.clone();
    sink.connect("handoff", false, move |_| {
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        None
    });
    let start = Instant::now();
    pipeline.set_state(gst::State::Playing)?;
    let bus = pipeline.bus().expect("a bus");
    bus.timed_pop_filtered(
        gst::ClockTime::NONE,
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    let wall = start.elapsed();
    pipeline.set_state(gst::State::Null)?;
    Ok((wall, frames.load(std::sync::atomic::Ordering::Relaxed)))
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
fn write_csv(path: &str, frames: &[u64], distances: &[Option<f64>]) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(out, "frame,distance")?;
    for (i, d) in frames.iter().zip(distances) {
        match d {
            Some(d) => writeln!(out, "{i},{d:.9e}")?,
            None => writeln!(out, "{i},")?,
        }
    }
    out.flush()
}

/// Prints how far `other`'s distances are from `base`'s, frame by frame.
fn agreement(what: &str, base: &[Option<f64>], other: &[Option<f64>]) {
    let pairs: Vec<(f64, f64)> = base
        .iter()
        .zip(other)
        .filter_map(|(a, b)| Some(((*a)?, (*b)?)))
        .collect();
    let (a, b): (Vec<f64>, Vec<f64>) = pairs.iter().copied().unzip();
    let max = pairs.iter().map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
    let mean = pairs.iter().map(|(x, y)| (x - y).abs()).sum::<f64>() / pairs.len().max(1) as f64;
    println!(
        "agreement of {what} over {} distances: max |delta| {max:.3e}, mean |delta| {mean:.3e}, Spearman {:.5}",
        pairs.len(),
        spearman(&a, &b)
    );
}

fn report(name: &str, r: &Run, decode: Duration) {
    let ns = |k: &str| Duration::from_nanos(r.stats.get::<u64>(k).unwrap_or(0));
    let frames = r.stats.get::<u64>("frames").unwrap_or(0);
    let (pre, inf) = (ns("preprocess-time"), ns("inference-time"));
    let per = |d: Duration| d.as_secs_f64() * 1000.0 / frames.max(1) as f64;
    let load = ns("load-time");
    let streaming = r.wall.saturating_sub(load);
    let other = streaming.saturating_sub(pre + inf);
    println!("{name} on {} in {}:", r.provider, r.precision);
    println!(
        "  {frames} frames in {:.2} s after a {:.2} s model load: {:.2} frames/s (model ran on {} frames, {} batches)",
        streaming.as_secs_f64(),
        load.as_secs_f64(),
        frames as f64 / streaming.as_secs_f64(),
        r.stats.get::<u64>("inferred-frames").unwrap_or(0),
        r.stats.get::<u64>("batches").unwrap_or(0)
    );
    println!(
        "  per frame: decode {:.1} ms (separate pass), preprocess {:.1} ms, inference {:.1} ms, other {:.1} ms",
        per(decode),
        per(pre),
        per(inf),
        per(other)
    );
    println!(
        "  CPU {:.1} s = {:.2} cores busy on average",
        r.cpu.as_secs_f64(),
        r.cpu.as_secs_f64() / r.wall.as_secs_f64()
    );
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args();
    gst::init()?;
    gstdreamsim::plugin_register_static()?;

    let (decode, decoded) = decode_only(&args)?;
    println!(
        "decode only: {decoded} frames in {:.2} s ({:.1} frames/s)",
        decode.as_secs_f64(),
        decoded as f64 / decode.as_secs_f64()
    );
    let model = args.model.clone().expect("checked");
    let base = run(&args, &model, &[])?;
    report(&model, &base, decode);
    if let Some(path) = &args.csv {
        write_csv(path, &base.frames, &base.distances)?;
    }
    if let Some(other) = &args.compare {
        let cmp = run(&args, other, &[])?;
        report(other, &cmp, decode);
        agreement(
            &format!("{other} with {model}"),
            &base.distances,
            &cmp.distances,
        );
    }
    if args.agreement {
        let fp32 = run(
            &args,
            &model,
            &[("execution-provider", "cpu"), ("full-precision", "true")],
        )?;
        report(&format!("{model} (fp32 reference run)"), &fp32, decode);
        agreement(
            &format!("{} {} with cpu fp32", base.provider, base.precision),
            &fp32.distances,
            &base.distances,
        );
    }
    let (_, peak, _) = process_usage();
    println!("peak resident memory of the process: {} MiB", peak / 1024);
    Ok(())
}
