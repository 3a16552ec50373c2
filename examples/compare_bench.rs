//! Throughput of `dreamsimcompare` with 1 and 4 tested streams against the
//! one-stream `dreamsim` element, side by side in one run, on the same
//! synthetic clip (videotestsrc, every tested stream a flipped copy of the
//! reference, so no frame repeats another and every frame is inferred).
//!
//! ```sh
//! cargo run --release -p gst-plugin-dreamsim --example compare_bench -- \
//!     [--model MODEL.onnx] [--frames N] [--size WxH] [--provider P] [--threads N]
//! ```
//!
//! Defaults: the fixture model `tests/fixtures/tiny_ensemble.onnx`, 200
//! frames of 640x360 I420. For each pipeline it prints the wall time without
//! the model load, reference frames per second (frames of the clip per
//! second), tested frames per second (distances per second), and the
//! elements' own preprocessing and inference time.

use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use gst::prelude::*;

#[derive(Parser)]
#[command(about = "dreamsimcompare with 1 and 4 tested streams beside dreamsim, in one run")]
struct Options {
    /// DreamSim ONNX model.
    #[arg(long, default_value = "tests/fixtures/tiny_ensemble.onnx")]
    model: String,
    /// Frames of the synthetic clip.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..))]
    frames: u64,
    /// Frame size, WxH.
    #[arg(long, default_value = "640x360", value_parser = size)]
    size: (u32, u32),
    /// Execution provider (auto, cpu, cuda, tensorrt, openvino).
    #[arg(long, default_value = "cpu", value_parser = provider)]
    provider: String,
    /// CPU threads (0: one per physical core).
    #[arg(long, default_value_t = 0)]
    threads: u32,
}

fn size(v: &str) -> Result<(u32, u32), String> {
    v.split_once('x')
        .and_then(|(w, h)| Some((w.parse().ok()?, h.parse().ok()?)))
        .ok_or_else(|| format!("`{v}` is not WxH"))
}

/// Checked by the engine's own parser.
fn provider(v: &str) -> Result<String, String> {
    v.parse::<dreamsim::ExecutionProvider>()
        .map(|p| p.as_str().to_owned())
        .map_err(|e| e.to_string())
}

/// The flips that make the tested streams differ from the reference and
/// from each other.
const FLIPS: [&str; 4] = ["horiz", "vert", "180", "ul-lr"];

/// The pipeline for `tested` streams (0: the `dreamsim` element alone on one
/// flipped copy).
fn description(o: &Options, tested: usize) -> String {
    let model = format!(
        "model-location={} execution-provider={} threads={}",
        o.model, o.provider, o.threads
    );
    // ul-lr transposes: the caps after it are W and H swapped, which
    // dreamsimcompare takes (sizes may differ between pads).
    let source = format!(
        "videotestsrc num-buffers={} pattern=smpte ! video/x-raw,format=I420,width={},height={},framerate=25/1",
        o.frames, o.size.0, o.size.1
    );
    if tested == 0 {
        return format!(
            "{source} ! videoflip video-direction={} ! dreamsim name=e {model} post-messages=false ! fakesink sync=false",
            FLIPS[0]
        );
    }
    let mut d = format!("{source} ! tee name=t t. ! queue ! e.reference");
    for (i, flip) in FLIPS.iter().take(tested).enumerate() {
        d += &format!(" t. ! queue ! videoflip video-direction={flip} ! e.sink_{i}");
    }
    d + &format!(" dreamsimcompare name=e {model} post-messages=false ! fakesink sync=false")
}

struct Figures {
    wall: f64,
    load: f64,
    reference_fps: f64,
    tested_fps: f64,
    preprocess: f64,
    inference: f64,
    inferred: u64,
}

fn run(o: &Options, tested: usize) -> Result<Figures, String> {
    let pipeline = gst::parse::launch(&description(o, tested))
        .map_err(|e| e.to_string())?
        .downcast::<gst::Pipeline>()
        .map_err(|_| "not a pipeline".to_string())?;
    let element = pipeline.by_name("e").expect("named e");
    let bus = pipeline.bus().expect("a pipeline has a bus");
    let started = Instant::now();
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|_| "the pipeline does not start (see the error above)".to_string())?;
    let mut error = None;
    for msg in bus.iter_timed(gst::ClockTime::NONE) {
        match msg.view() {
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => {
                error = Some(format!("{} ({:?})", e.error(), e.debug()));
                break;
            }
            _ => {}
        }
    }
    let wall = started.elapsed().as_secs_f64();
    let stats = element.property::<gst::Structure>("stats");
    pipeline.set_state(gst::State::Null).ok();
    if let Some(e) = error {
        return Err(e);
    }
    let ns = |f: &str| stats.get::<u64>(f).unwrap_or(0) as f64 * 1e-9;
    let load = ns("load-time");
    let seconds = wall - load;
    // dreamsim: frames analysed; dreamsimcompare: tested frames compared.
    let tested_frames = stats.get::<u64>("frames").unwrap_or(0);
    Ok(Figures {
        wall: seconds,
        load,
        reference_fps: o.frames as f64 / seconds,
        tested_fps: tested_frames as f64 / seconds,
        preprocess: ns("preprocess-time"),
        inference: ns("inference-time"),
        inferred: stats.get::<u64>("inferred-frames").unwrap_or(0),
    })
}

fn bench(o: &Options) -> Result<ExitCode, String> {
    gst::init().map_err(|e| e.to_string())?;
    gstdreamsim::plugin_register_static().map_err(|e| e.to_string())?;
    println!(
        "{} frames of {}x{} I420, model {}, provider {}, threads {}",
        o.frames,
        o.size.0,
        o.size.1,
        o.model,
        o.provider,
        if o.threads == 0 {
            "one per core".to_string()
        } else {
            o.threads.to_string()
        }
    );
    println!(
        "{:<28} {:>8} {:>8} {:>10} {:>10} {:>10} {:>10} {:>9}",
        "pipeline", "wall s", "load s", "ref fr/s", "tested/s", "prep s", "infer s", "inferred"
    );
    for (label, tested) in [
        ("dreamsim (1 stream)", 0),
        ("dreamsimcompare, 1 tested", 1),
        ("dreamsimcompare, 4 tested", 4),
    ] {
        let f = run(o, tested)?;
        println!(
            "{label:<28} {:>8.2} {:>8.2} {:>10.1} {:>10.1} {:>10.2} {:>10.2} {:>9}",
            f.wall, f.load, f.reference_fps, f.tested_fps, f.preprocess, f.inference, f.inferred
        );
    }
    println!(
        "ref fr/s: frames of the clip per second; tested/s: distances per second \
         (dreamsim: frames analysed); wall s leaves out the model load"
    );
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    bench(&Options::parse()).unwrap_or_else(|e| {
        eprintln!("compare_bench: error: {e}");
        ExitCode::FAILURE
    })
}
