//! `soak`: a long stream and many start/stop cycles through `dreamsim`,
//! `dreamsimscene` and `dreamsimdedup`, printing the process's resident
//! memory (RSS) at the start, middle and end of each phase, so leaks show as
//! growth. The figures in docs/robustness.md come from it.
//!
//! ```text
//! cargo run --release -p gst-plugin-dreamsim --example soak -- \
//!     --frames 20000 --cycles 300 --model tests/fixtures/tiny_ensemble.onnx
//! ```
//!
//! Exit status: 0, or 3 when RSS grew by more than `--max-growth` MiB from
//! the middle to the end of a phase (the first half warms caches and
//! allocator pools), 1 on pipeline errors, 2 on usage errors.

use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use gst::prelude::*;

const USAGE: &str = "\
Usage: soak [OPTIONS]

  --frames N          frames in the long stream (default: 20000)
  --cycles N          NULL -> PLAYING -> NULL cycles, 2 frames each (default: 300)
  --size WxH          frame size (default: 160x120)
  --model PATH        DreamSim ONNX model (default: tests/fixtures/tiny_ensemble.onnx)
  --max-growth MIB    allowed RSS growth from middle to end of a phase (default: 64)
  -h, --help          this text
";

struct Options {
    frames: u64,
    cycles: u64,
    width: u32,
    height: u32,
    model: String,
    max_growth_mib: u64,
}

fn parse() -> Result<Options, String> {
    let mut o = Options {
        frames: 20_000,
        cycles: 300,
        width: 160,
        height: 120,
        model: "tests/fixtures/tiny_ensemble.onnx".into(),
        max_growth_mib: 64,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        let number = |v: String| {
            v.parse::<u64>()
                .map_err(|_| format!("{arg}: `{v}` is not a number"))
        };
        match arg.as_str() {
            "--frames" => o.frames = number(value()?)?,
            "--cycles" => o.cycles = number(value()?)?,
            "--max-growth" => o.max_growth_mib = number(value()?)?,
            "--model" => o.model = value()?,
            "--size" => {
                let v = value()?;
                let (w, h) = v
                    .split_once('x')
                    .ok_or(format!("--size: `{v}` is not WxH"))?;
                o.width = w.parse().map_err(|_| format!("--size: `{v}` is not WxH"))?;
                o.height = h.parse().map_err(|_| format!("--size: `{v}` is not WxH"))?;
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    if o.frames < 2 || o.cycles < 2 {
        return Err("--frames and --cycles must be at least 2".into());
    }
    Ok(o)
}

/// Resident set size of this process in MiB.
fn rss_mib() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: f64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0.0);
    pages * 4096.0 / (1024.0 * 1024.0)
}

fn launch(o: &Options, frames: u64) -> String {
    format!(
        "videotestsrc num-buffers={frames} pattern=ball ! video/x-raw,format=I420,width={},height={} \
         ! dreamsim name=d model-location={} execution-provider=cpu ! dreamsimscene ! dreamsimdedup \
         ! fakesink",
        o.width, o.height, o.model
    )
}

/// Runs the pipeline to EOS; an error is returned as text.
fn run_to_eos(pipeline: &gst::Element) -> Result<(), String> {
    let bus = pipeline.bus().unwrap();
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| format!("cannot start: {e}"))?;
    let result = loop {
        let Some(msg) = bus.timed_pop(gst::ClockTime::from_seconds(600)) else {
            break Err("no EOS within 600 s".to_string());
        };
        match msg.view() {
            gst::MessageView::Eos(_) => break Ok(()),
            gst::MessageView::Error(e) => break Err(format!("{} ({:?})", e.error(), e.debug())),
            _ => {}
        }
    };
    pipeline.set_state(gst::State::Null).unwrap();
    result
}

/// Prints one phase's figures; true when the growth is within the bound.
fn report(phase: &str, marks: &[(u64, f64)], unit: &str, max_growth: u64) -> bool {
    let [(n0, start), (n1, middle), (n2, end)] = marks else {
        unreachable!()
    };
    println!(
        "{phase}: RSS {start:.1} MiB at {unit} {n0}, {middle:.1} MiB at {unit} {n1}, {end:.1} MiB \
         after {unit} {n2} (middle to end: {:+.1} MiB)",
        end - middle
    );
    end - middle <= max_growth as f64
}

fn main() -> ExitCode {
    let o = match parse() {
        Ok(o) => o,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("soak: {e}");
            }
            eprint!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    gst::init().unwrap();
    gstdreamsim::plugin_register_static().unwrap();
    println!(
        "soak: {} frames of {}x{} I420, then {} start/stop cycles, model {}",
        o.frames, o.width, o.height, o.cycles, o.model
    );

    // Phase 1: one long stream; RSS read on the streaming thread at the
    // first frame and the middle one, and after EOS.
    let pipeline = gst::parse::launch(&launch(&o, o.frames)).unwrap();
    let marks = Arc::new(Mutex::new(Vec::new()));
    {
        let marks = marks.clone();
        let mid = o.frames / 2;
        // After dreamsim, before dreamsimdedup drops any frame.
        let dreamsim = pipeline
            .downcast_ref::<gst::Bin>()
            .unwrap()
            .by_name("d")
            .unwrap();
        dreamsim
            .static_pad("src")
            .unwrap()
            .add_probe(gst::PadProbeType::BUFFER, move |_, info| {
                if let Some(gst::PadProbeData::Buffer(b)) = &info.data {
                    let frame = gstdreamsim::meta::DreamSimMeta::from_buffer(b)
                        .and_then(Result::ok)
                        .map_or(0, |m| m.frame);
                    let mut marks = marks.lock().unwrap();
                    if marks.is_empty() || (marks.len() == 1 && frame >= mid) {
                        marks.push((frame, rss_mib()));
                    }
                }
                gst::PadProbeReturn::Ok
            });
    }
    let started = Instant::now();
    if let Err(e) = run_to_eos(&pipeline) {
        eprintln!("soak: stream failed: {e}");
        return ExitCode::from(1);
    }
    let seconds = started.elapsed().as_secs_f64();
    let mut stream = marks.lock().unwrap().clone();
    stream.push((o.frames, rss_mib()));
    drop(pipeline);
    if stream.len() != 3 {
        eprintln!("soak: frames did not reach the sink ({stream:?})");
        return ExitCode::from(1);
    }
    let mut ok = report("stream", &stream, "frame", o.max_growth_mib);
    println!(
        "stream: {} frames in {seconds:.1} s ({:.0} frames/s)",
        o.frames,
        o.frames as f64 / seconds
    );

    // Phase 2: start/stop cycles, each loading the model again.
    let mut cycles = Vec::new();
    let pipeline = gst::parse::launch(&launch(&o, 2)).unwrap();
    let started = Instant::now();
    for i in 0..o.cycles {
        if i == 0 || i == o.cycles / 2 {
            cycles.push((i, rss_mib()));
        }
        if let Err(e) = run_to_eos(&pipeline) {
            eprintln!("soak: cycle {i} failed: {e}");
            return ExitCode::from(1);
        }
    }
    cycles.push((o.cycles, rss_mib()));
    ok &= report("cycles", &cycles, "cycle", o.max_growth_mib);
    println!(
        "cycles: {} in {:.1} s",
        o.cycles,
        started.elapsed().as_secs_f64()
    );
    if ok {
        ExitCode::SUCCESS
    } else {
        eprintln!("soak: RSS grew by more than {} MiB", o.max_growth_mib);
        ExitCode::from(3)
    }
}
