//! What `dreamsimmatch` adds to the per-frame time: the same clip through
//! `dreamsim ! fakesink` and `dreamsim ! dreamsimmatch ! fakesink`, taking
//! turns in one run, against an embedded index of N random entries of the
//! model's width.
//!
//! ```sh
//! cargo run --release -p gst-plugin-dreamsim --example match_bench -- \
//!     [--model MODEL.onnx] [--entries N] [--frames N] [--rounds N] [--threads N] \
//!     [--width W --height H] [--ef-search EF] [--quantization f16|i8|f32]
//! ```
//!
//! Prints three figures per frame, the model load left out (the element's
//! `load-time` is subtracted): the CPU time the matcher adds (the median of
//! the rounds' paired differences: the whole cost, the extra pad push and
//! the caches it leaves cold for inference included; on a shared machine
//! the noisiest), the time a buffer spends inside `dreamsimmatch` (pad
//! probes on its two pads: its own work, precise), and the same lookup made
//! back to back outside the pipeline (the search with warm caches). Wall
//! time is printed too.

use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use dreamsim_index::{self as index, IndexOptions, ModelIdentity, NewEntry, Source};
use gst::prelude::*;

#[derive(Parser)]
#[command(about = "dreamsim ! dreamsimmatch against dreamsim alone, taking turns in one run")]
struct Options {
    /// DreamSim ONNX model.
    #[arg(long, default_value = "tests/fixtures/tiny_ensemble.onnx")]
    model: String,
    /// Entries in the index (random unit vectors of the model's width).
    #[arg(long, default_value_t = 10_000)]
    entries: usize,
    /// Frames of the synthetic clip (a moving ball: every frame inferred).
    #[arg(long, default_value_t = 300)]
    frames: u64,
    /// Width of the clip's frames: the element's own time per frame grows
    /// with it (conversion and resampling to 224x224), the matcher's does not.
    #[arg(long, default_value_t = 320)]
    width: u32,
    /// Height of the clip's frames.
    #[arg(long, default_value_t = 240)]
    height: u32,
    /// Runs of each pipeline, taking turns.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// dreamsimmatch's ef-search (HNSW search breadth); its default when not given.
    #[arg(long)]
    ef_search: Option<u32>,
    /// Vector storage of the index: f16, i8 or f32.
    #[arg(long, default_value = "f16")]
    quantization: dreamsim_index::Quantization,
    /// CPU threads for ONNX Runtime.
    #[arg(long, default_value_t = 1)]
    threads: u32,
}

/// `n` random unit vectors of `dim` values (xorshift from `seed`: the same
/// set on every run).
fn random_unit_vectors(n: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut state = seed;
    let mut random = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f32 / (1u64 << 53) as f32 - 0.5
    };
    (0..n)
        .map(|_| {
            let v: Vec<f32> = (0..dim).map(|_| random()).collect();
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            v.into_iter().map(|x| x / norm).collect()
        })
        .collect()
}

/// A set of `n` random unit vectors of `dim` values, built for `identity`.
fn build_index(
    path: &str,
    identity: &ModelIdentity,
    n: usize,
    quantization: dreamsim_index::Quantization,
) -> Result<(), String> {
    let vectors = random_unit_vectors(n, identity.dim, 0x9E37_79B9_7F4A_7C15);
    let entries: Vec<NewEntry> = vectors
        .iter()
        .enumerate()
        .map(|(i, v)| NewEntry {
            label: format!("item {i}"),
            source: Source::Other {
                description: "random".into(),
            },
            content_hash: format!("random {i}"),
            embedding: v,
        })
        .collect();
    let options = IndexOptions {
        create: true,
        quantization,
        ..IndexOptions::default()
    };
    let mut set = index::open(path, Some(identity), &options).map_err(|e| e.to_string())?;
    set.add(&entries).map_err(|e| e.to_string())?;
    Ok(())
}

/// CPU time of the process's live threads, in seconds
/// (`/proc/self/task/*/schedstat`): what the pipeline's threads ran, less
/// sensitive than wall time to other jobs on a shared machine.
fn cpu_s() -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return f64::NAN;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum::<u64>() as f64
        / 1e9
}

/// Seconds per frame of one run, the model load left out: wall time, and
/// CPU time of the threads still alive at the end of the stream (model
/// load included; the same in both pipelines).
/// One run's figures, per frame.
struct RunFigures {
    /// Wall seconds, the model load left out.
    wall: f64,
    /// CPU seconds of the process's threads, the model load left out.
    cpu: f64,
    /// Seconds each buffer spent inside `dreamsimmatch` (from its sink pad
    /// to its source pad), when it is in the pipeline.
    inside: Vec<f64>,
}

/// Seconds per frame of one run, the model load left out: wall time, and
/// CPU time of the threads still alive at the end of the stream (model
/// load included; the same in both pipelines).
fn run(o: &Options, matcher: Option<&str>) -> Result<RunFigures, String> {
    let tail = match matcher {
        Some(index) => format!(
            "dreamsimmatch name=m index-location={index} threshold=0.05 {} ! ",
            o.ef_search
                .map_or(String::new(), |ef| format!("ef-search={ef}"))
        ),
        None => String::new(),
    };
    let pipeline = gst::parse::launch(&format!(
        "videotestsrc num-buffers={} pattern=ball ! video/x-raw,width={},height={} ! \
         dreamsim name=d model-location={} execution-provider=cpu threads={} \
         post-messages=false ! {tail}fakesink sync=false",
        o.frames, o.width, o.height, o.model, o.threads
    ))
    .map_err(|e| e.to_string())?;
    let bin = pipeline.clone().downcast::<gst::Bin>().expect("a pipeline");
    // The time a buffer spends in the matcher: both probes run on the
    // streaming thread, the second before the push goes downstream, and the
    // element never holds a buffer back (threshold 0.05 against random
    // entries matches nothing, so every buffer leaves).
    let inside = std::sync::Arc::new(std::sync::Mutex::new(Vec::with_capacity(o.frames as usize)));
    if let Some(m) = bin.by_name("m") {
        let entered = std::sync::Arc::new(std::sync::Mutex::new(None::<Instant>));
        let e = entered.clone();
        m.static_pad("sink").expect("a sink pad").add_probe(
            gst::PadProbeType::BUFFER,
            move |_, _| {
                *e.lock().unwrap() = Some(Instant::now());
                gst::PadProbeReturn::Ok
            },
        );
        let times = inside.clone();
        m.static_pad("src").expect("a source pad").add_probe(
            gst::PadProbeType::BUFFER,
            move |_, _| {
                if let Some(t) = entered.lock().unwrap().take() {
                    times.lock().unwrap().push(t.elapsed().as_secs_f64());
                }
                gst::PadProbeReturn::Ok
            },
        );
    }
    let started = Instant::now();
    let cpu_before = cpu_s();
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| e.to_string())?;
    let bus = pipeline.bus().expect("a pipeline has a bus");
    let msg = bus
        .timed_pop_filtered(
            gst::ClockTime::NONE,
            &[gst::MessageType::Eos, gst::MessageType::Error],
        )
        .expect("EOS or an error");
    let wall = started.elapsed().as_secs_f64();
    let cpu = cpu_s() - cpu_before;
    if let gst::MessageView::Error(e) = msg.view() {
        return Err(e.error().to_string());
    }
    let d = bin.by_name("d").expect("named above");
    let stats = d.property::<gst::Structure>("stats");
    let load = stats.get::<u64>("load-time").unwrap_or(0) as f64 / 1e9;
    pipeline
        .set_state(gst::State::Null)
        .map_err(|e| e.to_string())?;
    let inside = std::mem::take(&mut *inside.lock().unwrap());
    Ok(RunFigures {
        wall: (wall - load) / o.frames as f64,
        cpu: (cpu - load) / o.frames as f64,
        inside,
    })
}

/// Mean microseconds of the lookup `dreamsimmatch` makes per frame (top 5
/// within 0.05), made back to back on the index alone: what the search
/// costs with its working set in the caches, to read next to the
/// pipeline's figure, where inference runs between two lookups.
fn bare_search_us(path: &str, identity: &ModelIdentity, o: &Options) -> Result<f64, String> {
    let options = IndexOptions {
        ef_search: o
            .ef_search
            .map_or(index::DEFAULT_EF_SEARCH, |ef| ef as usize),
        ..IndexOptions::default()
    };
    let mut set = index::open(path, None, &options).map_err(|e| e.to_string())?;
    let queries = random_unit_vectors(1000, identity.dim, 0x2545_F491_4F6C_DD1D);
    let started = Instant::now();
    for q in &queries {
        set.search_within(q, 5, 0.05).map_err(|e| e.to_string())?;
    }
    Ok(started.elapsed().as_secs_f64() * 1e6 / queries.len() as f64)
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn bench(o: &Options) -> Result<(), String> {
    gst::init().map_err(|e| e.to_string())?;
    gstdreamsim::plugin_register_static().map_err(|e| e.to_string())?;
    let model = dreamsim::Model::load(
        dreamsim::runtime(None).map_err(|e| e.to_string())?,
        o.model.as_ref(),
        &dreamsim::ModelOptions {
            provider: dreamsim::ExecutionProvider::Cpu,
            threads: 1,
            ..Default::default()
        },
    )
    .map_err(|e| e.to_string())?;
    let identity = ModelIdentity::of_model(model.info()).map_err(|e| e.to_string())?;
    drop(model);
    let dir = std::env::temp_dir().join(format!("match-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let path = dir.join("set.dsindex");
    let path = path.to_str().expect("a UTF-8 temporary path");
    build_index(path, &identity, o.entries, o.quantization)?;
    println!(
        "{} frames of {}x{}, model {} ({}-d), {} threads, index of {} entries ({}, ef-search \
         {}), {} rounds",
        o.frames,
        o.width,
        o.height,
        o.model,
        identity.dim,
        o.threads,
        o.entries,
        o.quantization.as_str(),
        o.ef_search
            .map_or_else(|| "default".to_owned(), |ef| ef.to_string()),
        o.rounds
    );
    let bare = bare_search_us(path, &identity, o)?;
    let (mut alone, mut matched) = (Vec::new(), Vec::new());
    let (mut alone_cpu, mut matched_cpu, mut added_cpu) = (Vec::new(), Vec::new(), Vec::new());
    let mut inside = Vec::new();
    for _ in 0..o.rounds {
        let a = run(o, None)?;
        let m = run(o, Some(path))?;
        alone.push(a.wall);
        alone_cpu.push(a.cpu);
        matched.push(m.wall);
        matched_cpu.push(m.cpu);
        // Paired: each round's two runs saw the same machine.
        added_cpu.push(m.cpu - a.cpu);
        inside.extend(m.inside);
    }
    let (ac, mc) = (median(alone_cpu), median(matched_cpu));
    let added = median(added_cpu);
    println!(
        "CPU time: dreamsim alone {:.3} ms/frame, with dreamsimmatch {:.3} ms/frame; \
         dreamsimmatch adds {:+.3} ms/frame ({:+.1} %; median of the {} rounds' differences)",
        ac * 1e3,
        mc * 1e3,
        added * 1e3,
        added / ac * 100.0,
        o.rounds
    );
    let mean_inside = inside.iter().sum::<f64>() / inside.len().max(1) as f64;
    println!(
        "time inside dreamsimmatch (sink pad to source pad, {} buffers): median {:.1} us, \
         mean {:.1} us ({:.1} % of dreamsim's CPU time per frame)",
        inside.len(),
        median(inside.clone()) * 1e6,
        mean_inside * 1e6,
        mean_inside / ac * 100.0
    );
    println!("the same lookup outside the pipeline (caches warm): {bare:.1} us per frame");
    let (a, m) = (median(alone), median(matched));
    println!(
        "wall time: dreamsim ! fakesink {:.3} ms/frame, dreamsim ! dreamsimmatch ! fakesink \
         {:.3} ms/frame ({:+.1} %; inference runs on its own thread, so this hides part of \
         the matcher's cost)",
        a * 1e3,
        m * 1e3,
        (m - a) / a * 100.0
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn main() -> ExitCode {
    match bench(&Options::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("match_bench: error: {e}");
            ExitCode::FAILURE
        }
    }
}
