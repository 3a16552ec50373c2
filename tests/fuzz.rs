//! A bounded-time fuzz harness for the engine's parser of untrusted bytes
//! (issue 20): the ONNX wire scanner (`dreamsim::external_data`,
//! `dreamsim::onnx_file`), which reads files that other programs and other
//! machines wrote. The index files' half is the index crate's
//! (`index/tests/fuzz.rs`); both share `dreamsim_testsupport::fuzz`.
//!
//! Inputs are mutations of real files (`dreamsim_testsupport::mutate`): bit
//! flips, byte changes, boundary integers, truncation, insertion, deletion,
//! splicing from another real file, and inputs that the parser accepted are
//! mutated again (they reach deeper).
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
use std::path::{Path, PathBuf};
use std::time::Instant;

use dreamsim_testsupport::fuzz::{budget, run_one, seed, work_dir, Pool, Tally};
use dreamsim_testsupport::mutate::Mutator;

// ---- ONNX files ----

fn onnx_seeds() -> Vec<Vec<u8>> {
    let fixtures = dreamsim_testsupport::fixtures_dir();
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
    let dir = work_dir(env!("CARGO_TARGET_TMPDIR"), "onnx");
    let seeds = onnx_seeds();
    let input_path = dir.join("input.onnx");
    eprintln!(
        "fuzz onnx: each input is written to {} before it is read",
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
