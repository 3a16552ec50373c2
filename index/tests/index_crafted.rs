//! Crafted index files: graph bytes changed and the checksums recomputed, as
//! someone who knows the format would, then searched the way `gst-dreamsim
//! index query` and `dreamsimmatch` search (issue 20, item 1: such files
//! made usearch segfault or divide by zero).
//!
//! The files are searched in a child process (this test binary run again,
//! on `crafted_file_child`), so that a crash is counted and named instead
//! of taking the test harness down: the parent restarts the child after the
//! file that crashed it and fails with the list.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use dreamsim_index::{
    EmbeddedIndex, EmbeddingIndex, IndexOptions, ModelIdentity, NewEntry, Quantization, Source,
};
use dreamsim_testsupport as common;

use dreamsim_testsupport::mutate;
use mutate::{fix_index_header, index_graph_start, Mutator};

const DIM: usize = 32;
/// Crafted files per run: a few hundred, made and searched in seconds.
const FILES: usize = 800;
const LIST_VAR: &str = "DREAMSIM_CRAFTED_LIST";

fn identity() -> ModelIdentity {
    ModelIdentity {
        kind: "test".into(),
        dim: DIM,
        sha256: "c".repeat(64),
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
            source: Source::Other {
                description: format!("generated {}", first + i),
            },
            content_hash: format!("hash-{}", first + i),
            embedding: v,
        })
        .collect()
}

/// The real files the crafted ones start from: f16 with a sparse graph
/// (connectivity 4: more levels), i8, and f16 with removed entries (their
/// nodes stay in the graph as tombstones).
fn base_files(dir: &Path) -> Vec<Vec<u8>> {
    let make = |name: &str, quantization, connectivity, n, removed: usize| {
        let path = dir.join(name);
        let _ = std::fs::remove_file(&path);
        let options = IndexOptions {
            create: true,
            quantization,
            connectivity,
            ..IndexOptions::default()
        };
        let mut set = EmbeddedIndex::open(&path, Some(&identity()), &options).unwrap();
        let vectors = unit_vectors(n, n as u64);
        set.add(&entries(&vectors, 0)).unwrap();
        let ids: Vec<u64> = (1..=removed as u64).map(|i| i * 3).collect();
        set.remove(&ids).unwrap();
        drop(set);
        std::fs::read(&path).unwrap()
    };
    vec![
        make("base-f16.dsindex", Quantization::F16, 4, 300, 0),
        make("base-i8.dsindex", Quantization::I8, 16, 80, 0),
        make("base-removed.dsindex", Quantization::F16, 8, 200, 30),
    ]
}

/// Where usearch's graph structure starts in a file's graph blob (after the
/// vectors): mutations there reach the header, levels and neighbour lists.
fn structure_start(file: &[u8], graph_start: usize) -> usize {
    let blob = &file[graph_start..];
    let rows = u32::from_le_bytes(blob[0..4].try_into().unwrap()) as usize;
    let cols = u32::from_le_bytes(blob[4..8].try_into().unwrap()) as usize;
    graph_start + 8 + rows * cols
}

fn crafted_files(dir: &Path) -> Vec<PathBuf> {
    let bases = base_files(dir);
    let mut m = Mutator::new(20);
    (0..FILES)
        .map(|i| {
            let base = &bases[i % bases.len()];
            let donor = &bases[(i + 1) % bases.len()];
            let graph_start = index_graph_start(base).unwrap();
            // Mostly the structure; sometimes anywhere in the graph.
            let from = if m.below(5) == 0 {
                graph_start
            } else {
                structure_start(base, graph_start)
            };
            let mut data = base.clone();
            let donor_graph = &donor[index_graph_start(donor).unwrap()..];
            m.mutate(&mut data, from..base.len(), donor_graph, 4);
            fix_index_header(&mut data);
            let path = dir.join(format!("crafted-{i:04}.dsindex"));
            std::fs::write(&path, &data).unwrap();
            path
        })
        .collect()
}

#[test]
fn crafted_graphs_are_errors_never_crashes() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("index-crafted-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let files = crafted_files(&dir);
    let list = dir.join("list.txt");
    let mut text = String::new();
    for f in &files {
        text.push_str(&format!("{}\n", f.display()));
    }
    std::fs::write(&list, text).unwrap();

    let (mut accepted, mut refused, mut crashes) = (0, 0, Vec::new());
    let mut from = 0;
    while from < files.len() {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "crafted_file_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(LIST_VAR, &list)
            .env("DREAMSIM_CRAFTED_FROM", from.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut last_begun = None;
        for line in BufReader::new(child.stdout.take().unwrap()).lines() {
            let line = line.unwrap();
            // The harness prints `test crafted_file_child ... ` before the
            // child's first line, on the same line.
            let Some(at) = line.find("CRAFTED-") else {
                continue;
            };
            let mut words = line[at..].splitn(3, ' ');
            match (words.next(), words.next(), words.next()) {
                (Some("CRAFTED-BEGIN"), Some(i), _) => {
                    last_begun = Some(i.parse::<usize>().unwrap())
                }
                (Some("CRAFTED-ACCEPTED"), _, _) => accepted += 1,
                (Some("CRAFTED-REFUSED"), _, _) => refused += 1,
                _ => {}
            }
        }
        let status = child.wait().unwrap();
        if status.success() {
            break;
        }
        let i = last_begun.expect("the child died before its first file");
        crashes.push(format!("{} ({status})", files[i].display()));
        from = i + 1;
    }
    eprintln!(
        "{} crafted files: {accepted} accepted, {refused} refused with an error, {} crashed",
        files.len(),
        crashes.len()
    );
    assert!(
        crashes.is_empty(),
        "{} of {} crafted files crashed the search:\n{}",
        crashes.len(),
        files.len(),
        crashes.join("\n")
    );
    assert_eq!(accepted + refused, files.len());
    // A crafted graph is refused more often than not (most changes to the
    // structure are inconsistent); what is accepted is a structurally
    // sound graph (a changed vector value, a neighbour moved to another
    // node at the same level).
    assert!(refused > files.len() / 2, "only {refused} refused");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The child's side of `crafted_graphs_are_errors_never_crashes`: does
/// nothing unless that test runs it.
#[test]
fn crafted_file_child() {
    let Ok(list) = std::env::var(LIST_VAR) else {
        return;
    };
    let from: usize = std::env::var("DREAMSIM_CRAFTED_FROM")
        .unwrap()
        .parse()
        .unwrap();
    let files: Vec<PathBuf> = std::fs::read_to_string(list)
        .unwrap()
        .lines()
        .map(PathBuf::from)
        .collect();
    let queries = unit_vectors(4, 99);
    let extra = unit_vectors(1, 98);
    let stdout = std::io::stdout();
    for (i, file) in files.iter().enumerate().skip(from) {
        writeln!(stdout.lock(), "CRAFTED-BEGIN {i}").unwrap();
        stdout.lock().flush().unwrap();
        let outcome = search_everything(file, &queries, &extra);
        let word = if outcome.is_ok() {
            "ACCEPTED"
        } else {
            "REFUSED"
        };
        writeln!(stdout.lock(), "CRAFTED-{word} {i} {outcome:?}").unwrap();
    }
}

/// Everything a reader and a writer do with a file: open (as `index query`
/// and `dreamsimmatch` do), HNSW and exhaustive search, read every vector,
/// and add an entry to a copy (usearch loads the graph and walks it to
/// link the new node).
fn search_everything(
    file: &Path,
    queries: &[Vec<f32>],
    extra: &[Vec<f32>],
) -> Result<(), dreamsim_index::IndexError> {
    let hnsw = IndexOptions {
        exact_search_below: 0,
        ..IndexOptions::default()
    };
    let mut set = EmbeddedIndex::open(file, None, &hnsw)?;
    for q in queries {
        set.search(q, 10)?;
        set.search_within(q, 5, 0.5)?;
        set.exact_search(q, 3)?;
    }
    set.entries_after(None, 10_000)?;
    set.info()?;
    drop(set);
    let copy = file.with_extension("copy");
    std::fs::copy(file, &copy).unwrap();
    let mut set = EmbeddedIndex::open(&copy, None, &hnsw)?;
    set.add(&entries(extra, 10_000))?;
    set.search(&queries[0], 10)?;
    Ok(())
}
