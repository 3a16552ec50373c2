//! A bounded-time fuzz harness for the index's parser of untrusted bytes
//! (issue 20): index files (`dreamsim_index`, the embedded backend), which
//! other programs and other machines wrote. The ONNX scanner's half is the
//! engine's (`tests/fuzz.rs`); both share `dreamsim_testsupport::fuzz`.
//!
//! Inputs are mutations of real files (`dreamsim_testsupport::mutate`): bit flips, byte
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
//! DREAMSIM_FUZZ_SECS=1800 cargo test -p dreamsim-index --test fuzz -- --nocapture --test-threads=1
//! ```

use std::path::Path;
use std::time::Instant;

use dreamsim_index::{
    EmbeddedIndex, EmbeddingIndex, IndexOptions, ModelIdentity, NewEntry, Quantization, Source,
};
use dreamsim_testsupport::fuzz::{budget, run_one, seed, work_dir, Pool, Tally};
use dreamsim_testsupport::mutate::{fix_index_header, index_graph_start, Mutator};

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
    dreamsim_testsupport::unit_vectors(n, DIM, seed)
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
    let run = || -> Result<(), dreamsim_index::IndexError> {
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
    let dir = work_dir(env!("CARGO_TARGET_TMPDIR"), "index");
    let seeds = index_seeds(&dir);
    let input_path = dir.join("input.dsindex");
    eprintln!(
        "fuzz index: each input is written to {} before it is read",
        input_path.display()
    );
    let mut m = Mutator::new(seed());
    let mut pool = Pool::default();
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
