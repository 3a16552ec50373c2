//! A bounded-time fuzz harness for the engine's parsers of untrusted bytes
//! (issue 20): index files (`dreamsim::index`, the embedded backend) and the
//! ONNX wire scanner (`dreamsim::external_data`, `dreamsim::onnx_file`),
//! which read files that other programs and other machines wrote.
//!
//! Inputs are mutations of real files (`tests/mutate`): bit flips, byte
//! changes, boundary integers, truncation, insertion, deletion, splicing
//! from another real file; index files get their checksums recomputed most
//! of the time (otherwise the checksum refuses nearly everything), and
//! inputs that a parser accepted are mutated again (they reach deeper).
//! Every input runs the real code path; a panic is caught, saved and fails
//! the test; a crash (a signal) fails it too, and the input that caused it
//! is the file the harness last wrote (its path is printed first).
//!
//! Time per target: `DREAMSIM_FUZZ_SECS` (default 20); seed:
//! `DREAMSIM_FUZZ_SEED` (default 1; the run is the same for a seed up to
//! where the time ends). Each target prints how many inputs it tried, e.g.
//!
//! ```text
//! DREAMSIM_FUZZ_SECS=1800 cargo test -p dreamsim --test fuzz -- --nocapture --test-threads=1
//! ```

use std::io::Cursor;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

mod common;
use dreamsim::index::{
    EmbeddedIndex, EmbeddingIndex, IndexOptions, ModelIdentity, NewEntry, Quantization, Source,
};

mod mutate;
use mutate::{fix_index_header, index_graph_start, Mutator};

fn budget() -> Duration {
    let secs = std::env::var("DREAMSIM_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20.0f64);
    Duration::from_secs_f64(secs)
}

fn seed() -> u64 {
    std::env::var("DREAMSIM_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
}

fn work_dir(target: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("fuzz-{target}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// What a run found: inputs tried, accepted, and the panics (saved inputs).
#[derive(Default)]
struct Tally {
    tried: u64,
    accepted: u64,
    panics: Vec<String>,
}

impl Tally {
    fn report(&self, target: &str, elapsed: Duration) {
        eprintln!(
            "fuzz {target}: {} inputs in {:.1} s ({:.0}/s), {} accepted, {} refused with an error, {} panics, 0 crashes (seed {})",
            self.tried,
            elapsed.as_secs_f64(),
            self.tried as f64 / elapsed.as_secs_f64().max(1e-9),
            self.accepted,
            self.tried - self.accepted - self.panics.len() as u64,
            self.panics.len(),
            seed()
        );
        assert!(
            self.panics.is_empty(),
            "{target}: {} inputs panicked (saved):\n{}",
            self.panics.len(),
            self.panics.join("\n")
        );
    }
}

/// Runs `check` on one input, counting it and keeping a panicking one.
fn run_one(tally: &mut Tally, dir: &Path, input: &[u8], check: impl FnOnce() -> bool) -> bool {
    tally.tried += 1;
    match catch_unwind(AssertUnwindSafe(check)) {
        Ok(accepted) => {
            tally.accepted += accepted as u64;
            accepted
        }
        Err(panic) => {
            let saved = dir.join(format!("panic-{}.bin", tally.tried));
            std::fs::write(&saved, input).unwrap();
            let why = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            tally.panics.push(format!("{}: {why}", saved.display()));
            false
        }
    }
}

/// Inputs a parser accepted, kept to be mutated again (a few, the latest).
struct Pool {
    inputs: Vec<Vec<u8>>,
}

impl Pool {
    fn pick<'a>(&'a self, m: &mut Mutator, seeds: &'a [Vec<u8>]) -> &'a [u8] {
        if !self.inputs.is_empty() && m.below(3) == 0 {
            &self.inputs[m.below(self.inputs.len())]
        } else {
            &seeds[m.below(seeds.len())]
        }
    }
    fn keep(&mut self, input: Vec<u8>) {
        if self.inputs.len() >= 64 {
            self.inputs.remove(0);
        }
        self.inputs.push(input);
    }
}

// ---- index files ----

const DIM: usize = 24;

fn identity() -> ModelIdentity {
    ModelIdentity {
        kind: "fuzz".into(),
        dim: DIM,
        sha256: "f".repeat(64),
    }
}

fn unit_vectors(n: usize, seed: u64) -> Vec<Vec<f32>> {
    common::unit_vectors(n, DIM, seed)
}

fn entries(vectors: &[Vec<f32>], first: usize) -> Vec<NewEntry<'_>> {
    vectors
        .iter()
        .enumerate()
        .map(|(i, v)| NewEntry {
            label: format!("item {}", first + i),
            source: if i % 2 == 0 {
                Source::File {
                    path: format!("/set/{i}.png"),
                }
            } else {
                Source::VideoFrame {
                    path: "/set/v.mp4".into(),
                    timestamp_ns: i as u64 * 40_000_000,
                }
            },
            content_hash: format!("hash-{}", first + i),
            embedding: v,
        })
        .collect()
}

/// Real index files: empty, small f16, i8, f32, and one with removed entries.
fn index_seeds(dir: &Path) -> Vec<Vec<u8>> {
    let make = |name: &str, quantization, connectivity, n: usize, removed: u64| {
        let path = dir.join(name);
        let options = IndexOptions {
            create: true,
            quantization,
            connectivity,
            ..IndexOptions::default()
        };
        let mut set = EmbeddedIndex::open(&path, Some(&identity()), &options).unwrap();
        if n > 0 {
            let vectors = unit_vectors(n, n as u64);
            set.add(&entries(&vectors, 0)).unwrap();
        }
        let ids: Vec<u64> = (1..=removed).map(|i| i * 2).collect();
        set.remove(&ids).unwrap();
        drop(set);
        std::fs::read(&path).unwrap()
    };
    vec![
        make("seed-empty.dsindex", Quantization::F16, 16, 0, 0),
        make("seed-f16.dsindex", Quantization::F16, 4, 60, 0),
        make("seed-i8.dsindex", Quantization::I8, 8, 40, 0),
        make("seed-f32.dsindex", Quantization::F32, 16, 20, 0),
        make("seed-removed.dsindex", Quantization::F16, 4, 50, 10),
    ]
}

fn search_index(path: &Path, write: bool) -> bool {
    let hnsw = IndexOptions {
        exact_search_below: 0,
        ..IndexOptions::default()
    };
    let queries = unit_vectors(2, 7);
    let run = || -> Result<(), dreamsim::index::IndexError> {
        let mut set = EmbeddedIndex::open(path, None, &hnsw)?;
        for q in &queries {
            set.search(q, 8)?;
            set.exact_search(q, 3)?;
        }
        set.entries_after(None, 1_000)?;
        set.info()?;
        set.len()?;
        if write {
            // Loads the graph into memory and walks it to link a new node.
            set.add(&entries(&queries[..1], 500))?;
            set.search(&queries[1], 8)?;
        }
        Ok(())
    };
    run().is_ok()
}

#[test]
fn fuzz_index_files() {
    let dir = work_dir("index");
    let seeds = index_seeds(&dir);
    let input_path = dir.join("input.dsindex");
    eprintln!(
        "fuzz index: each input is written to {} before it is read",
        input_path.display()
    );
    let mut m = Mutator::new(seed());
    let mut pool = Pool { inputs: Vec::new() };
    let mut tally = Tally::default();
    let start = Instant::now();
    let budget = budget();
    while start.elapsed() < budget {
        let base = pool.pick(&mut m, &seeds).to_vec();
        let donor = &seeds[m.below(seeds.len())];
        let mut data = base.clone();
        // Anywhere: header, metadata (JSON), graph; mostly the graph.
        let graph = index_graph_start(&data).unwrap_or(0).min(data.len());
        let from = match m.below(4) {
            0 => 0,
            1 => 64,
            _ => graph,
        };
        let len = data.len();
        m.mutate(&mut data, from..len, donor, 4);
        if m.below(8) != 0 {
            fix_index_header(&mut data);
        }
        std::fs::write(&input_path, &data).unwrap();
        // Each write leaves the input for the next one; one in eight adds.
        let write = m.below(8) == 0;
        let accepted = run_one(&mut tally, &dir, &data, || search_index(&input_path, write));
        if accepted {
            pool.keep(data);
        }
    }
    tally.report("index files", start.elapsed());
    let _ = std::fs::remove_dir_all(&dir);
}

// ---- ONNX files ----

fn onnx_seeds() -> Vec<Vec<u8>> {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&fixtures)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "onnx"))
        .collect();
    names.sort();
    let seeds: Vec<Vec<u8>> = names.iter().map(|p| std::fs::read(p).unwrap()).collect();
    assert!(
        seeds.len() >= 5,
        "ONNX fixtures missing in {}",
        fixtures.display()
    );
    seeds
}

fn scan_onnx(path: &Path, data: &[u8], claimed_len: u64) -> bool {
    let in_memory = dreamsim::external_data::scan(Cursor::new(data), claimed_len);
    // The same scanner on the file, as the element runs it before ONNX
    // Runtime opens a model, and the metadata reader (input size).
    let checked = dreamsim::external_data::check_model_file(path);
    let _ = dreamsim::onnx_file::metadata_props(path);
    let _ = dreamsim::onnx_file::metadata_value(path, "dreamsim.input_size");
    in_memory.is_ok() && checked.is_ok()
}

#[test]
fn fuzz_onnx_scanner() {
    let dir = work_dir("onnx");
    let seeds = onnx_seeds();
    let input_path = dir.join("input.onnx");
    eprintln!(
        "fuzz onnx: each input is written to {} before it is read",
        input_path.display()
    );
    let mut m = Mutator::new(seed());
    let mut pool = Pool { inputs: Vec::new() };
    let mut tally = Tally::default();
    let start = Instant::now();
    let budget = budget();
    while start.elapsed() < budget {
        let base = pool.pick(&mut m, &seeds).to_vec();
        let donor = &seeds[m.below(seeds.len())];
        let mut data = base;
        let len = data.len();
        m.mutate(&mut data, 0..len, donor, 6);
        std::fs::write(&input_path, &data).unwrap();
        // Sometimes a length that does not match the bytes (a file that
        // changes while it is read).
        let claimed = match m.below(8) {
            0 => data.len() as u64 + m.below(1 << 20) as u64,
            1 => m.below(data.len() + 1) as u64,
            _ => data.len() as u64,
        };
        let accepted = run_one(&mut tally, &dir, &data, || {
            scan_onnx(&input_path, &data, claimed)
        });
        if accepted {
            pool.keep(data);
        }
    }
    tally.report("ONNX scanner", start.elapsed());
    let _ = std::fs::remove_dir_all(&dir);
}
