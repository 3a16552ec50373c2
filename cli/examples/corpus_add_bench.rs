//! How fast `gst-dreamsim corpus add` fingerprints videos: videos per hour
//! and decoded frames per second, with the fixture model and (when given)
//! the DreamSim ensemble, side by side in one run; and the same job with one
//! and with two workers on one PostgreSQL (when a server is given).
//!
//! The videos are copies of the first `--frames` (default 50: 2 s; the
//! ensemble takes about 2.5 s a frame on 2 shared cores) encoded frames of
//! bikes.mp4 (640x272 H.264 at 25 fps), remuxed without re-encoding
//! (`qtdemux ! identity eos-after=N ! mp4mux`), each made distinct by an MP4
//! `free` box appended after its last box (qtdemux skips it; the content
//! hash differs, so none is skipped as already in the corpus). The frames
//! column counts the frames that decode (B-frames cut at the end of the
//! clip do not). Every run starts from an empty index. Times are
//! wall-clock of the whole `corpus add` process: GStreamer start, model
//! loading (once per worker: the tool keeps a stopped pipeline's model for
//! the next video, `dreamsim::model_pool`),
//! decoding, the model on every decoded frame (scene detection needs them
//! all), and writing the index.
//!
//! ```sh
//! cargo build -p gst-dreamsim
//! cargo run -p gst-dreamsim --example corpus_add_bench -- \
//!     [--videos 6] [--frames 50] [--ensemble /path/ensemble.onnx --ensemble-videos 1] \
//!     [--pg postgresql://...] [--threads 2]
//! ```
//!
//! `--pg` defaults to `DREAMSIM_TEST_PG` (tools/pg_test_server.sh start);
//! each PostgreSQL run gets a database of its own, dropped afterwards.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use gst::prelude::*;

const FIXTURE: &str = "tests/fixtures/tiny_ensemble.onnx";

struct Args {
    videos: usize,
    frames: usize,
    ensemble: Option<PathBuf>,
    ensemble_videos: usize,
    pg: Option<String>,
    threads: usize,
}

fn parse_args() -> Args {
    let mut args = Args {
        videos: 6,
        frames: 50,
        ensemble: None,
        ensemble_videos: 1,
        pg: std::env::var("DREAMSIM_TEST_PG").ok(),
        threads: 2,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--videos" => args.videos = value().parse().expect("--videos N"),
            "--frames" => args.frames = value().parse().expect("--frames N"),
            "--ensemble" => args.ensemble = Some(value().into()),
            "--ensemble-videos" => args.ensemble_videos = value().parse().expect("N"),
            "--pg" => args.pg = Some(value()),
            "--threads" => args.threads = value().parse().expect("--threads N"),
            other => panic!("unknown option {other}"),
        }
    }
    args
}

/// The first `frames` encoded frames of bikes.mp4, remuxed into `dir`.
fn clip(root: &Path, dir: &Path, frames: usize) -> PathBuf {
    let path = dir.join("clip.mp4");
    let bikes = root.join(".cache/media/bikes.mp4");
    assert!(
        bikes.exists(),
        "{} (tools/fetch_test_media.sh)",
        bikes.display()
    );
    let ok = Command::new("gst-launch-1.0")
        .args(["-q", "mp4mux", "name=m", "!", "filesink"])
        .arg(format!("location={}", path.display()))
        .args(["filesrc"])
        .arg(format!("location={}", bikes.display()))
        .args(["!", "qtdemux", "!", "identity"])
        .arg(format!("eos-after={frames}"))
        .args(["!", "m.video_0"])
        .status()
        .unwrap()
        .success();
    assert!(ok, "remux the clip");
    path
}

/// How many frames `path` decodes to.
fn decoded_frames(path: &Path) -> usize {
    gst::init().unwrap();
    let pipeline = gst::parse::launch(&format!(
        "filesrc location={} ! decodebin ! fakesink name=sink sync=false",
        path.display()
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let c = count.clone();
    pipeline
        .by_name("sink")
        .unwrap()
        .static_pad("sink")
        .unwrap()
        .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            c.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            gst::PadProbeReturn::Ok
        });
    pipeline.set_state(gst::State::Playing).unwrap();
    let bus = pipeline.bus().unwrap();
    for msg in bus.iter_timed(gst::ClockTime::from_seconds(60)) {
        match msg.view() {
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => panic!("decoding {}: {}", path.display(), e.error()),
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
    count.load(std::sync::atomic::Ordering::Relaxed)
}

/// `n` distinct copies of `clip` in `dir`.
fn copies(clip: &Path, dir: &Path, n: usize) -> Vec<String> {
    let original = std::fs::read(clip).unwrap();
    (0..n)
        .map(|i| {
            let mut bytes = original.clone();
            // A 16-byte `free` box: size, type, an 8-byte counter.
            bytes.extend_from_slice(&16u32.to_be_bytes());
            bytes.extend_from_slice(b"free");
            bytes.extend_from_slice(&(i as u64).to_be_bytes());
            let path = dir.join(format!("clip_{i}.mp4"));
            std::fs::write(&path, bytes).unwrap();
            path.to_string_lossy().into_owned()
        })
        .collect()
}

/// Runs `corpus add` and returns its wall-clock seconds.
fn add(
    tool: &Path,
    root: &Path,
    index: &str,
    model: &str,
    workers: usize,
    threads: usize,
    videos: &[String],
) -> f64 {
    let (workers, threads) = (workers.to_string(), threads.to_string());
    let mut args = vec![
        "corpus",
        "add",
        "-q",
        "--index",
        index,
        "--model",
        model,
        "--provider",
        "cpu",
        "--threads",
        &threads,
        "--workers",
        &workers,
    ];
    args.extend(videos.iter().map(String::as_str));
    let t = Instant::now();
    let out = Command::new(tool)
        .args(&args)
        .current_dir(root)
        .output()
        .unwrap();
    let secs = t.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "corpus add: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    secs
}

fn row(what: &str, workers: usize, threads: usize, videos: usize, per_video: usize, secs: f64) {
    let frames = videos * per_video;
    println!(
        "{what:<34} {workers:>7} {threads:>7} {videos:>6} {frames:>6} {secs:>8.1} {:>9.0} {:>8.2}",
        videos as f64 * 3600.0 / secs,
        frames as f64 / secs
    );
}

fn main() {
    let args = parse_args();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf();
    let exe = std::env::current_exe().unwrap();
    let tool = exe
        .parent()
        .and_then(|p| p.parent())
        .unwrap()
        .join("gst-dreamsim");
    assert!(
        tool.exists(),
        "build the tool first: cargo build -p gst-dreamsim"
    );
    let dir = std::env::temp_dir().join(format!("corpus-add-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let n = args.videos.max(args.ensemble_videos);
    let clip = clip(&root, &dir, args.frames);
    let per_video = decoded_frames(&clip);
    let videos = copies(&clip, &dir, n);

    println!(
        "{:<34} {:>7} {:>7} {:>6} {:>6} {:>8} {:>9} {:>8}",
        "run", "workers", "threads", "videos", "frames", "s", "videos/h", "frames/s"
    );
    let index = |name: &str| dir.join(name).to_string_lossy().into_owned();
    let fixture = root.join(FIXTURE).to_string_lossy().into_owned();
    let v = &videos[..args.videos];
    let s = add(
        &tool,
        &root,
        &index("fixture.dsindex"),
        &fixture,
        1,
        args.threads,
        v,
    );
    row(
        "fixture, embedded index",
        1,
        args.threads,
        v.len(),
        per_video,
        s,
    );
    if let Some(ensemble) = &args.ensemble {
        let v = &videos[..args.ensemble_videos];
        let s = add(
            &tool,
            &root,
            &index("ensemble.dsindex"),
            &ensemble.to_string_lossy(),
            1,
            args.threads,
            v,
        );
        row(
            "ensemble, embedded index",
            1,
            args.threads,
            v.len(),
            per_video,
            s,
        );
    }
    if let Some(server) = &args.pg {
        // The same videos and model with one worker of all the threads, then
        // two workers of half as many each, each run in a database of its own.
        let (base, query) = server.split_once('?').unwrap_or((server, ""));
        let base = base.rsplit_once('/').map_or(base, |(b, _)| b);
        let mut admin = postgres::Client::connect(server, postgres::NoTls).unwrap();
        for workers in [1, 2] {
            let db = format!("corpus_add_bench_{}_{workers}", std::process::id());
            for sql in [
                format!("DROP DATABASE IF EXISTS {db}"),
                format!("CREATE DATABASE {db}"),
            ] {
                admin.batch_execute(&sql).unwrap();
            }
            let uri = format!("{base}/{db}?{query}");
            let threads = (args.threads / workers).max(1);
            let s = add(&tool, &root, &uri, &fixture, workers, threads, v);
            row(
                "fixture, PostgreSQL",
                workers,
                threads,
                v.len(),
                per_video,
                s,
            );
            admin
                .batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
                .unwrap();
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}
