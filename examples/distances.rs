//! Per-frame DreamSim distances of a video, as CSV on stdout, with progress
//! and a summary on stderr.
//!
//! ```sh
//! cargo run --release -p gst-plugin-dreamsim --example distances -- VIDEO \
//!     [--model MODEL.onnx] [--reference IMAGE] [--provider auto|cpu|cuda|tensorrt|openvino] \
//!     [--batch-size N] [--interval N] [--threads N]
//! ```
//!
//! Columns: `frame,time_s,distance,reference_distance` (empty where the
//! element gives none: the first frame has no previous one).

mod common;

use std::time::Instant;

use gst::prelude::*;
use gstdreamsim::DreamSimMessage;

struct Args {
    video: String,
    element: Vec<(String, String)>,
}

fn usage() -> ! {
    eprintln!(
        "usage: distances VIDEO [--model MODEL.onnx] [--reference IMAGE] \
         [--provider auto|cpu|cuda|tensorrt|openvino] [--batch-size N] [--interval N] [--threads N]"
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut args = std::env::args().skip(1);
    let mut video = None;
    let mut element = Vec::new();
    while let Some(a) = args.next() {
        let property = match a.as_str() {
            "--model" => "model-location",
            "--reference" => "reference-location",
            "--provider" => "execution-provider",
            "--batch-size" => "batch-size",
            "--interval" => "interval",
            "--threads" => "threads",
            "-h" | "--help" => usage(),
            s if s.starts_with("--") => {
                eprintln!("unknown option {s}");
                usage()
            }
            _ => {
                video = Some(a);
                continue;
            }
        };
        let value = args.next().unwrap_or_else(|| usage());
        element.push((property.to_string(), value));
    }
    Args {
        video: video.unwrap_or_else(|| usage()),
        element,
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args();
    gst::init()?;
    gstdreamsim::plugin_register_static()?;

    let dreamsim = common::make("dreamsim")?;
    for (property, value) in &args.element {
        dreamsim.set_property_from_str(property, value);
    }
    let uri = common::to_uri(&args.video)?;
    let chain = [dreamsim.clone(), common::fakesink()?];
    let pipeline = common::decoding_pipeline("distances", &uri, &chain)?;

    let start = Instant::now();
    pipeline.set_state(gst::State::Playing)?;
    let bus = pipeline.bus().expect("a pipeline has a bus");
    println!("frame,time_s,distance,reference_distance");
    let fmt = |d: Option<f64>| d.map(|d| format!("{d:.6}")).unwrap_or_default();
    let mut distances: Vec<(f64, u64)> = Vec::new();
    let mut frames = 0u64;
    let mut result = Ok(());
    for msg in bus.iter_timed(gst::ClockTime::NONE) {
        if let Some(m) = DreamSimMessage::from_message(&msg).transpose().unwrap() {
            frames += 1;
            let t = m.timing.timestamp.map(|t| t.nseconds() as f64 / 1e9);
            println!(
                "{},{},{},{}",
                m.frame,
                t.map(|t| format!("{t:.3}")).unwrap_or_default(),
                fmt(m.distance),
                fmt(m.reference_distance)
            );
            if let Some(d) = m.distance {
                distances.push((d, m.frame));
            }
            if frames % 100 == 0 {
                eprintln!(
                    "... {frames} frames, {:.1} frames/s",
                    frames as f64 / start.elapsed().as_secs_f64()
                );
            }
            continue;
        }
        match msg.view() {
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => {
                result = Err(format!(
                    "{}: {}",
                    e.src()
                        .map(|s| s.path_string().to_string())
                        .unwrap_or_default(),
                    e.error()
                ));
                break;
            }
            gst::MessageView::Warning(w) => eprintln!("warning: {}", w.error()),
            _ => {}
        }
    }
    let provider: Option<String> = dreamsim.property("active-provider");
    pipeline.set_state(gst::State::Null)?;
    result?;

    let elapsed = start.elapsed().as_secs_f64();
    distances.sort_by(|a, b| b.0.total_cmp(&a.0));
    eprintln!(
        "{frames} frames analysed in {elapsed:.1} s ({:.2} frames/s) on {}",
        frames as f64 / elapsed,
        provider.unwrap_or_else(|| "?".into())
    );
    let top: Vec<String> = distances
        .iter()
        .take(5)
        .map(|(d, f)| format!("frame {f}: {d:.4}"))
        .collect();
    eprintln!(
        "largest distances to the previous frame: {}",
        top.join(", ")
    );
    Ok(())
}
