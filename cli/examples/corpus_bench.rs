//! How `gst-dreamsim corpus match` scales with the library: synthetic
//! fingerprints (no decoding, no model) for N videos of F sampled frames,
//! one video in ten with a near copy, written as an embedded index plus its
//! video list; then the tool's `corpus match` over the whole library, timed.
//! Prints N, entries, seconds, and seconds / (N log N) and seconds / N^2:
//! the first stays about flat when the cost grows like N log N. Beside
//! them, what one nearest-neighbour search costs in that index (2,000 of its
//! frames searched through the index API as `corpus match` searches them:
//! k = 32, the index's default HNSW breadth; and exhaustively, for
//! comparison, and at breadth 64) and the match time per entry: `corpus match` does one search
//! per sampled frame, so match_s is about entries x search_ms, and how it
//! grows with N is how the search cost grows with the index.
//!
//! `--data uniform` (the default) draws every frame as an independent
//! random vector: the hardest case for HNSW, unlike any video. `--data
//! scenes` draws each video as two scenes, each frame near its scene's
//! centre (as the frames of a shot are near each other), videos apart:
//! closer to what real fingerprints look like.
//!
//! ```sh
//! cargo build -p gst-dreamsim --release
//! cargo run -p gst-dreamsim --release --example corpus_bench -- 1000 10000
//! cargo run -p gst-dreamsim --release --example corpus_bench -- --data scenes 1000 10000
//! ```

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Instant;

use dreamsim_index::{self as index, IndexOptions, ModelIdentity, NewEntry, Source};

const DIM: usize = 64;
const FRAMES: usize = 8;

/// A tiny deterministic generator (xorshift), so runs are comparable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    }

    fn unit(&mut self) -> Vec<f32> {
        let v: Vec<f32> = (0..DIM).map(|_| self.next()).collect();
        normalise(v)
    }
}

fn normalise(mut v: Vec<f32>) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= n);
    v
}

/// Milliseconds per search of 2,000 stored frames (every 7,919th), k = 32,
/// through HNSW at breadth `ef` (`ef_search`), or exhaustive when `ef` is 0.
fn search_ms(location: &str, ef: usize) -> f64 {
    let options = IndexOptions {
        exact_search_below: if ef == 0 { usize::MAX } else { 0 },
        ef_search: ef.max(1),
        ..IndexOptions::default()
    };
    let mut set = index::open(location, None, &options).unwrap();
    let n = set.len().unwrap();
    let probes: Vec<Vec<f32>> = (0..2000.min(n))
        .map(|i| {
            let id = ((i * 7919) % n) as u64;
            set.entries_after(id.checked_sub(1), 1).unwrap()[0]
                .embedding
                .clone()
        })
        .collect();
    let t = Instant::now();
    for p in &probes {
        std::hint::black_box(set.search(p, 32).unwrap());
    }
    t.elapsed().as_secs_f64() * 1e3 / probes.len() as f64
}

/// How the synthetic frames are drawn (see the module's docs).
#[derive(Clone, Copy, PartialEq)]
enum Data {
    Uniform,
    Scenes,
}

/// The F frames of a new video.
fn video_frames(rng: &mut Rng, data: Data) -> Vec<Vec<f32>> {
    match data {
        Data::Uniform => (0..FRAMES).map(|_| rng.unit()).collect(),
        Data::Scenes => {
            let scenes = [rng.unit(), rng.unit()];
            (0..FRAMES)
                .map(|f| {
                    let centre = &scenes[f * scenes.len() / FRAMES];
                    normalise(centre.iter().map(|c| c + 0.15 * rng.next()).collect())
                })
                .collect()
        }
    }
}

fn build(dir: &std::path::Path, videos: usize, data: Data) -> String {
    let path = dir.join(format!("synthetic-{videos}.dsindex"));
    let location = path.to_string_lossy().into_owned();
    let _ = std::fs::remove_file(&path);
    let identity = ModelIdentity {
        kind: "synthetic".into(),
        dim: DIM,
        sha256: "0".repeat(64),
    };
    let options = IndexOptions {
        create: true,
        ..IndexOptions::default()
    };
    let mut set = index::open(&location, Some(&identity), &options).unwrap();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut list = BTreeMap::new();
    let mut frames: Vec<(String, u64, Vec<f32>)> = Vec::new();
    let mut previous: Vec<Vec<f32>> = Vec::new();
    for v in 0..videos {
        let id = format!("{v:064x}");
        // One video in ten is a near copy of the one before.
        let embeddings: Vec<Vec<f32>> = if v % 10 == 9 {
            previous
                .iter()
                .map(|e| normalise(e.iter().map(|x| x + 0.01 * rng.next()).collect()))
                .collect()
        } else {
            video_frames(&mut rng, data)
        };
        for (f, e) in embeddings.iter().enumerate() {
            frames.push((id.clone(), f as u64 * 1_000_000_000, e.clone()));
        }
        previous = embeddings;
        list.insert(
            id.clone(),
            serde_json::json!({"id": id, "path": format!("v{v}.mp4"), "duration_ns": FRAMES as u64 * 1_000_000_000, "frames": FRAMES}),
        );
    }
    for chunk in frames.chunks(20_000) {
        let entries: Vec<NewEntry<'_>> = chunk
            .iter()
            .map(|(id, ts, e)| NewEntry {
                label: id.clone(),
                source: Source::VideoFrame {
                    path: id.clone(),
                    timestamp_ns: *ts,
                },
                content_hash: format!("{id}@{ts}"),
                embedding: e,
            })
            .collect();
        set.add(&entries).unwrap();
    }
    std::fs::write(
        format!("{location}.videos.json"),
        serde_json::to_vec(&serde_json::json!({ "videos": list })).unwrap(),
    )
    .unwrap();
    location
}

fn main() {
    let mut data = Data::Uniform;
    let mut sizes: Vec<usize> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--data" => {
                data = match args.next().as_deref() {
                    Some("uniform") => Data::Uniform,
                    Some("scenes") => Data::Scenes,
                    other => panic!("--data uniform|scenes, not {other:?}"),
                }
            }
            size => sizes.push(size.parse().expect("library sizes")),
        }
    }
    let sizes = if sizes.is_empty() {
        vec![1000, 10_000]
    } else {
        sizes
    };
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
    let dir = std::env::temp_dir().join(format!("corpus-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    println!(
        "data: {}",
        if data == Data::Uniform {
            "uniform (every frame an independent random vector)"
        } else {
            "scenes (two scenes per video, frames near their scene's centre)"
        }
    );
    println!(
        "videos  entries  build_s  match_s  pairs  match_s/(N log2 N)*1e6  match_s/N^2*1e9  \
         match_ms/entry  search_ms(hnsw)  search_ms(exact)  search_ms(hnsw,ef64)"
    );
    for n in sizes {
        let t = Instant::now();
        let location = build(&dir, n, data);
        let build_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let out = Command::new(&tool)
            .args([
                "corpus",
                "match",
                "-q",
                "--index",
                &location,
                "--frame-distance",
                "0.05",
            ])
            .output()
            .unwrap();
        let match_s = t.elapsed().as_secs_f64();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let pairs = String::from_utf8_lossy(&out.stdout).lines().count() - 1;
        let hnsw = search_ms(&location, index::DEFAULT_EF_SEARCH);
        let exact = search_ms(&location, 0);
        let ef64 = search_ms(&location, 64);
        let nf = n as f64;
        println!(
            "{n:6}  {:7}  {build_s:7.1}  {match_s:7.2}  {pairs:5}  {:22.3}  {:15.3}  {:14.3}  {hnsw:15.3}  \
             {exact:16.3}  {ef64:19.3}",
            n * FRAMES,
            match_s / (nf * nf.log2()) * 1e6,
            match_s / (nf * nf) * 1e9,
            match_s * 1e3 / (n * FRAMES) as f64
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}
