//! The embedding index: one suite, written once, run against both backends.
//!
//! The embedded backend runs everywhere. The PostgreSQL tests need a real
//! server with pgvector: start one with `tools/pg_test_server.sh start` and
//! run them with
//!
//! ```text
//! DREAMSIM_TEST_PG=$(tools/pg_test_server.sh start) cargo test -p dreamsim-index --test index -- --ignored
//! ```
//!
//! (`.ci/run` does this.) They are ignored otherwise, and fail loudly when
//! asked to run without `DREAMSIM_TEST_PG`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use dreamsim_index::{
    self as index, copy_entries, Added, EmbeddedIndex, EmbeddingIndex, IndexError, IndexOptions,
    Match, ModelIdentity, NewEntry, Source, StoredEntry,
};
use dreamsim_testsupport as common;

const DIM: usize = 64;

fn identity() -> ModelIdentity {
    ModelIdentity {
        kind: "test".into(),
        dim: DIM,
        sha256: "a".repeat(64),
    }
}

fn other_model() -> ModelIdentity {
    ModelIdentity {
        sha256: "b".repeat(64),
        ..identity()
    }
}

/// `n` random unit vectors, the same for a given seed.
fn unit_vectors(n: usize, seed: u64) -> Vec<Vec<f32>> {
    common::unit_vectors(n, DIM, seed)
}

fn new_entries(vectors: &[Vec<f32>], first: usize) -> Vec<NewEntry<'_>> {
    vectors
        .iter()
        .enumerate()
        .map(|(i, v)| NewEntry {
            label: format!("item {}", first + i),
            source: Source::File {
                path: format!("/set/item{}.png", first + i),
            },
            content_hash: format!("hash-{}", first + i),
            embedding: v,
        })
        .collect()
}

/// Where each test's index lives, for one backend.
trait Backend {
    /// A location and options for a fresh index named `name`.
    fn fresh(&self, name: &str) -> (String, IndexOptions);
}

struct Embedded;

impl Backend for Embedded {
    fn fresh(&self, name: &str) -> (String, IndexOptions) {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("index-tests");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}-{}.dsindex", std::process::id()));
        let _ = std::fs::remove_file(&path);
        (path.display().to_string(), IndexOptions::default())
    }
}

struct Postgres;

static PG_COUNTER: AtomicU32 = AtomicU32::new(0);

impl Backend for Postgres {
    fn fresh(&self, name: &str) -> (String, IndexOptions) {
        let uri = std::env::var("DREAMSIM_TEST_PG").unwrap_or_else(|_| {
            panic!(
                "DREAMSIM_TEST_PG is not set: start a server with `tools/pg_test_server.sh \
                 start` and export its URI"
            )
        });
        // A table prefix of its own per test and per run, in one throwaway server.
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
            % 1_000_000_000;
        let n = PG_COUNTER.fetch_add(1, Ordering::Relaxed);
        let options = IndexOptions {
            pg_table: format!("t{stamp}_{n}_{name}"),
            ..IndexOptions::default()
        };
        (uri, options)
    }
}

fn create(backend: &dyn Backend, name: &str) -> (Box<dyn EmbeddingIndex>, String, IndexOptions) {
    let (location, mut options) = backend.fresh(name);
    options.create = true;
    let index = index::open(&location, Some(&identity()), &options).unwrap();
    options.create = false;
    (index, location, options)
}

// ---- the suite, once ----

fn add_search_remove(b: &dyn Backend) {
    let (mut set, _, _) = create(b, "asr");
    let vectors = unit_vectors(40, 1);
    let added = set.add(&new_entries(&vectors, 0)).unwrap();
    let ids: Vec<u64> = added.iter().map(|a| a.id()).collect();
    assert!(added.iter().all(|a| matches!(a, Added::New(_))));
    assert_eq!(
        ids,
        (1..=40).collect::<Vec<u64>>(),
        "ids are assigned in order from 1"
    );
    assert_eq!(set.len().unwrap(), 40);

    for (i, v) in vectors.iter().enumerate() {
        let hits = set.search(v, 5).unwrap();
        assert_eq!(hits.len(), 5);
        assert_eq!(
            hits[0].entry.id, ids[i],
            "a stored vector finds itself first"
        );
        assert_eq!(hits[0].entry.label, format!("item {i}"));
        assert!(
            hits[0].distance.abs() < 2e-3,
            "distance to itself {}",
            hits[0].distance
        );
        // Nearest first, and each distance is DreamSim's distance to the
        // stored vector (up to f16 storage).
        for pair in hits.windows(2) {
            assert!(pair[0].distance <= pair[1].distance + 1e-6);
        }
        for hit in &hits {
            let stored = &vectors[(hit.entry.id - 1) as usize];
            let want = dreamsim::distance(v, stored).unwrap();
            assert!(
                (hit.distance - want).abs() < 3e-3,
                "distance {} vs dreamsim::distance {want}",
                hit.distance
            );
        }
    }

    // k larger than the set returns the whole set.
    assert_eq!(set.search(&vectors[0], 100).unwrap().len(), 40);
    assert!(set.search(&vectors[0], 0).unwrap().is_empty());

    assert_eq!(set.remove(&[ids[3], ids[4], 999]).unwrap(), 2);
    assert_eq!(set.len().unwrap(), 38);
    assert!(set.get(ids[3]).unwrap().is_none());
    assert_eq!(set.get(ids[5]).unwrap().unwrap().label, "item 5");
    let hits = set.search(&vectors[3], 3).unwrap();
    assert!(hits
        .iter()
        .all(|h| h.entry.id != ids[3] && h.entry.id != ids[4]));
    // Removed ids are not reused.
    let more = unit_vectors(1, 2);
    let added = set.add(&new_entries(&more, 100)).unwrap();
    assert_eq!(added, vec![Added::New(41)]);
}

fn exact_and_approximate_agree(b: &dyn Backend) {
    let (mut set, _, _) = create(b, "exact");
    let vectors = unit_vectors(200, 3);
    set.add(&new_entries(&vectors, 0)).unwrap();
    for v in vectors.iter().take(20) {
        let exact = set.exact_search(v, 3).unwrap();
        let approx = set.search(v, 3).unwrap();
        assert_eq!(exact[0].entry.id, approx[0].entry.id);
        assert!((exact[0].distance - approx[0].distance).abs() < 1e-6);
    }
}

/// What a matcher asks every frame: the nearest within a distance, the
/// farther ones left out, nothing else changed.
fn search_within_keeps_the_near_part_of_search(b: &dyn Backend) {
    let (mut set, _, _) = create(b, "within");
    let vectors = unit_vectors(200, 5);
    set.add(&new_entries(&vectors, 0)).unwrap();
    for v in vectors.iter().take(10) {
        let all = set.search(v, 5).unwrap();
        let between = (all[1].distance + all[2].distance) / 2.0;
        let near = set.search_within(v, 5, between).unwrap();
        let ids = |m: &[Match]| m.iter().map(|m| m.entry.id).collect::<Vec<_>>();
        assert_eq!(ids(&near), ids(&all[..2]));
        assert_eq!(near[0].entry, all[0].entry);
        assert!(set.search_within(v, 5, -1.0).unwrap().is_empty());
    }
}

fn duplicates_by_content_hash(b: &dyn Backend) {
    let (mut set, _, _) = create(b, "dup");
    let vectors = unit_vectors(3, 4);
    let mut entries = new_entries(&vectors, 0);
    // The same content twice in one batch: one entry.
    entries.push(NewEntry {
        label: "again".into(),
        ..entries[1].clone()
    });
    let added = set.add(&entries).unwrap();
    assert_eq!(
        added,
        vec![
            Added::New(1),
            Added::New(2),
            Added::New(3),
            Added::Existing(2)
        ]
    );
    // And again in a later batch.
    let added = set.add(&entries[..1]).unwrap();
    assert_eq!(added, vec![Added::Existing(1)]);
    assert_eq!(set.len().unwrap(), 3);
    assert_eq!(set.get(2).unwrap().unwrap().label, "item 1");
    // Asked before embedding: which content the index has.
    let hash = entries[1].content_hash.clone();
    assert_eq!(set.id_of_content(&hash).unwrap(), Some(2));
    assert_eq!(set.id_of_content("not stored").unwrap(), None);
}

fn duplicate_ids_are_refused(b: &dyn Backend) {
    let (mut set, _, _) = create(b, "dupid");
    let vectors = unit_vectors(2, 5);
    set.add(&new_entries(&vectors[..1], 0)).unwrap();
    let taken = StoredEntry {
        entry: index::Entry {
            id: 1,
            label: "other".into(),
            source: Source::Other {
                description: "import".into(),
            },
            content_hash: "other-hash".into(),
            added_unix_us: 1,
        },
        embedding: vectors[1].clone(),
    };
    let err = set.insert(std::slice::from_ref(&taken)).unwrap_err();
    assert!(
        matches!(err, IndexError::DuplicateId { id: 1, .. }),
        "{err}"
    );
    // Twice in one batch, with a free id.
    let mut free = taken.clone();
    free.entry.id = 7;
    let err = set.insert(&[free.clone(), free.clone()]).unwrap_err();
    assert!(
        matches!(err, IndexError::DuplicateId { id: 7, .. }),
        "{err}"
    );
    assert_eq!(set.len().unwrap(), 1, "nothing inserted");
    // A free id goes in, and later ids follow it.
    assert_eq!(set.insert(&[free]).unwrap(), vec![Added::New(7)]);
    let more = unit_vectors(1, 6);
    assert_eq!(
        set.add(&new_entries(&more, 10)).unwrap(),
        vec![Added::New(8)]
    );
}

fn another_model_is_refused(b: &dyn Backend) {
    let (mut set, location, options) = create(b, "model");
    set.add(&new_entries(&unit_vectors(2, 7), 0)).unwrap();
    drop(set);
    let err = index::open(&location, Some(&other_model()), &options).unwrap_err();
    assert!(matches!(err, IndexError::ModelMismatch { .. }), "{err}");
    assert!(err.to_string().contains("bbbbbbbbbbbb"), "{err}");
    // Another width is refused per call too.
    let mut set = index::open(&location, Some(&identity()), &options).unwrap();
    let err = set.search(&[0.5; DIM + 1], 1).unwrap_err();
    assert!(
        matches!(err, IndexError::Dimension { expected: DIM, found, .. } if found == DIM + 1),
        "{err}"
    );
    let short = vec![0.1f32; 3];
    let err = set.add(&new_entries(&[short], 0)).unwrap_err();
    assert!(matches!(err, IndexError::Dimension { .. }), "{err}");
    // Without an identity, the index's own is used (maintenance).
    let set = index::open(&location, None, &options).unwrap();
    assert_eq!(*set.identity(), identity());
}

fn empty_and_missing(b: &dyn Backend) {
    let (location, options) = b.fresh("missing");
    let err = index::open(&location, Some(&identity()), &options).unwrap_err();
    assert!(matches!(err, IndexError::NotFound { .. }), "{err}");
    let create = IndexOptions {
        create: true,
        ..options.clone()
    };
    let err = index::open(&location, None, &create).unwrap_err();
    assert!(matches!(err, IndexError::NeedsIdentity { .. }), "{err}");

    let mut set = index::open(&location, Some(&identity()), &create).unwrap();
    assert!(set.is_empty().unwrap());
    assert!(set.search(&unit_vectors(1, 8)[0], 5).unwrap().is_empty());
    assert!(set.entries_after(None, 10).unwrap().is_empty());
    drop(set);
    let mut set = index::open(&location, Some(&identity()), &options).unwrap();
    assert_eq!(set.len().unwrap(), 0);
    let info = set.info().unwrap();
    assert_eq!(info.len, 0);
    assert_eq!(info.identity, identity());
}

fn reopen_keeps_everything(b: &dyn Backend) {
    let (mut set, location, options) = create(b, "reopen");
    let vectors = unit_vectors(30, 9);
    set.add(&new_entries(&vectors, 0)).unwrap();
    set.remove(&[30]).unwrap();
    let before: Vec<_> = (0..5)
        .map(|i| set.search(&vectors[i], 3).unwrap())
        .collect();
    let entries_before = set.entries_after(None, 100).unwrap();
    drop(set);
    let mut set = index::open(&location, Some(&identity()), &options).unwrap();
    assert_eq!(set.len().unwrap(), 29);
    let after: Vec<_> = (0..5)
        .map(|i| set.search(&vectors[i], 3).unwrap())
        .collect();
    assert_eq!(before, after);
    assert_eq!(entries_before, set.entries_after(None, 100).unwrap());
    let e = set.get(1).unwrap().unwrap();
    assert_eq!(
        e.source,
        Source::File {
            path: "/set/item0.png".into()
        }
    );
    assert!(
        e.added_unix_us > 1_700_000_000_000_000,
        "added now, in microseconds"
    );
    // The id after the removed 30 is 31, not 30.
    let added = set.add(&new_entries(&unit_vectors(1, 10), 50)).unwrap();
    assert_eq!(added, vec![Added::New(31)]);
}

/// Export from `from` and import into `to`: same entries, ids, times and answers.
fn export_import(from: &dyn Backend, to: &dyn Backend) {
    let (mut src, _, _) = create(from, "export");
    let vectors = unit_vectors(25, 11);
    src.add(&new_entries(&vectors, 0)).unwrap();
    src.remove(&[2]).unwrap();
    let (mut dst, _, _) = create(to, "import");
    let mut seen = Vec::new();
    let copied = copy_entries(src.as_mut(), dst.as_mut(), 10, |n| seen.push(n)).unwrap();
    assert_eq!(copied, 24);
    assert_eq!(seen, vec![10, 20, 24]);
    let a = src.entries_after(None, 100).unwrap();
    let b = dst.entries_after(None, 100).unwrap();
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.entry, y.entry);
        // Both store f16: the vectors come back identical.
        assert_eq!(x.embedding, y.embedding);
    }
    for v in &vectors {
        let x = src.search(v, 3).unwrap();
        let y = dst.search(v, 3).unwrap();
        assert_eq!(
            x.iter().map(|m| m.entry.id).collect::<Vec<_>>(),
            y.iter().map(|m| m.entry.id).collect::<Vec<_>>()
        );
        for (p, q) in x.iter().zip(&y) {
            assert!((p.distance - q.distance).abs() < 2e-3);
        }
    }
    // Importing the same ids again is refused, and new ids follow the imported ones.
    let err = copy_entries(src.as_mut(), dst.as_mut(), 10, |_| {}).unwrap_err();
    assert!(
        matches!(err, IndexError::DuplicateId { id: 1, .. }),
        "{err}"
    );
    let added = dst.add(&new_entries(&unit_vectors(1, 12), 90)).unwrap();
    assert_eq!(added, vec![Added::New(26)]);
    // Into a set of another model: refused.
    let (location, mut options) = to.fresh("import_other");
    options.create = true;
    let mut other = index::open(&location, Some(&other_model()), &options).unwrap();
    let err = copy_entries(src.as_mut(), other.as_mut(), 10, |_| {}).unwrap_err();
    assert!(matches!(err, IndexError::ModelMismatch { .. }), "{err}");
}

/// A batch large enough for PostgreSQL's bulk load (COPY, then the HNSW
/// index built over the rows) gives the same answers as row by row.
fn large_batches(b: &dyn Backend) {
    let (mut set, _, _) = create(b, "bulk");
    let n = index::PG_BULK_LOAD_MIN + 50;
    let vectors = unit_vectors(n, 13);
    let mut entries = new_entries(&vectors, 0);
    entries.push(NewEntry {
        label: "again".into(),
        ..entries[7].clone()
    });
    let added = set.add(&entries).unwrap();
    let mut expected: Vec<Added> = (1..=n as u64).map(Added::New).collect();
    expected.push(Added::Existing(8));
    assert_eq!(added, expected);
    assert_eq!(set.len().unwrap(), n);
    assert_eq!(set.get(8).unwrap().unwrap().label, "item 7");
    for (i, v) in vectors.iter().enumerate().step_by(97) {
        let hit = &set.search(v, 1).unwrap()[0];
        assert_eq!(hit.entry.id, i as u64 + 1);
        assert!(hit.distance < 1e-3, "{}", hit.distance);
    }
    // A later batch goes into the live index; ids continue.
    let more = unit_vectors(1, 14);
    assert_eq!(
        set.add(&new_entries(&more, n + 10)).unwrap(),
        vec![Added::New(n as u64 + 1)]
    );
    // An import into an empty set, in pages (PostgreSQL: one bulk load
    // over all of them), keeps the ids.
    let (mut copy, _, _) = create(b, "bulk_copy");
    let mut seen = Vec::new();
    let copied = copy_entries(set.as_mut(), copy.as_mut(), 300, |n| seen.push(n)).unwrap();
    assert_eq!(copied, n + 1);
    assert_eq!(seen, vec![300, 600, 900, n + 1]);
    assert_eq!(copy.len().unwrap(), n + 1);
    assert_eq!(copy.get(8).unwrap().unwrap().label, "item 7");
    for (i, v) in vectors.iter().enumerate().step_by(97) {
        assert_eq!(copy.search(v, 1).unwrap()[0].entry.id, i as u64 + 1);
    }
    assert_eq!(
        copy.add(&new_entries(&unit_vectors(1, 15), n + 20))
            .unwrap(),
        vec![Added::New(n as u64 + 2)]
    );
}

macro_rules! suite {
    ($module:ident, $backend:expr $(, #[$attr:meta])?) => {
        mod $module {
            use super::*;

            $(#[$attr])?
            #[test]
            fn add_search_remove() {
                super::add_search_remove(&$backend);
            }
            $(#[$attr])?
            #[test]
            fn exact_and_approximate_agree() {
                super::exact_and_approximate_agree(&$backend);
            }
            $(#[$attr])?
            #[test]
            fn search_within_keeps_the_near_part_of_search() {
                super::search_within_keeps_the_near_part_of_search(&$backend);
            }
            $(#[$attr])?
            #[test]
            fn duplicates_by_content_hash() {
                super::duplicates_by_content_hash(&$backend);
            }
            $(#[$attr])?
            #[test]
            fn duplicate_ids_are_refused() {
                super::duplicate_ids_are_refused(&$backend);
            }
            $(#[$attr])?
            #[test]
            fn another_model_is_refused() {
                super::another_model_is_refused(&$backend);
            }
            $(#[$attr])?
            #[test]
            fn empty_and_missing() {
                super::empty_and_missing(&$backend);
            }
            $(#[$attr])?
            #[test]
            fn reopen_keeps_everything() {
                super::reopen_keeps_everything(&$backend);
            }
            $(#[$attr])?
            #[test]
            fn large_batches() {
                super::large_batches(&$backend);
            }
            $(#[$attr])?
            #[test]
            fn export_to_embedded() {
                super::export_import(&$backend, &Embedded);
            }
        }
    };
}

suite!(embedded, Embedded);
suite!(
    postgres,
    Postgres,
    #[ignore = "needs PostgreSQL+pgvector: set DREAMSIM_TEST_PG (tools/pg_test_server.sh start)"]
);

#[test]
#[ignore = "needs PostgreSQL+pgvector: set DREAMSIM_TEST_PG (tools/pg_test_server.sh start)"]
fn embedded_exports_to_postgres() {
    export_import(&Embedded, &Postgres);
}

// ---- embedded only: the file ----

fn embedded_with(name: &str, n: usize) -> (EmbeddedIndex, PathBuf, Vec<Vec<f32>>) {
    let (location, mut options) = Embedded.fresh(name);
    options.create = true;
    let mut set = EmbeddedIndex::open(location.as_ref(), Some(&identity()), &options).unwrap();
    let vectors = unit_vectors(n, 20);
    set.add(&new_entries(&vectors, 0)).unwrap();
    (set, PathBuf::from(location), vectors)
}

fn open_file(path: &std::path::Path) -> Result<EmbeddedIndex, IndexError> {
    EmbeddedIndex::open(path, Some(&identity()), &IndexOptions::default())
}

#[test]
fn embedded_is_one_file_and_no_temporary_is_left() {
    let (_set, path, _) = embedded_with("onefile", 10);
    let dir = path.parent().unwrap();
    let stem = path.file_name().unwrap().to_string_lossy().into_owned();
    let mut related: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(&stem))
        .collect();
    related.sort();
    // The index and its writers' lock file (empty, kept: see index/src/lock.rs).
    assert_eq!(related, vec![format!(".{stem}.lock"), stem]);
}

#[test]
fn embedded_bad_files_are_clear_errors() {
    let (set, path, _) = embedded_with("bad", 10);
    drop(set);
    let good = std::fs::read(&path).unwrap();
    let dir = path.parent().unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.join(format!("{name}-{}.dsindex", std::process::id()));
        std::fs::write(&p, bytes).unwrap();
        p
    };

    let err = open_file(&write("empty", b"")).unwrap_err();
    assert!(matches!(err, IndexError::EmptyFile { .. }), "{err}");
    let err = open_file(&write("text", b"hello, this is not an index at all")).unwrap_err();
    assert!(matches!(err, IndexError::NotAnIndex { .. }), "{err}");
    for cut in [4, 40, 100, good.len() - 1] {
        let err = open_file(&write("cut", &good[..cut])).unwrap_err();
        assert!(
            matches!(err, IndexError::Truncated { .. }),
            "cut at {cut}: {err}"
        );
    }
    // A flipped byte in the metadata, then in the graph.
    for at in [80, good.len() - 10] {
        let mut bad = good.clone();
        bad[at] ^= 0x40;
        let err = open_file(&write("flip", &bad)).unwrap_err();
        assert!(
            matches!(err, IndexError::Corrupt { .. }),
            "flip at {at}: {err}"
        );
    }
    let mut longer = good.clone();
    longer.extend_from_slice(b"junk");
    let err = open_file(&write("long", &longer)).unwrap_err();
    assert!(matches!(err, IndexError::Corrupt { .. }), "{err}");
    let mut future = good.clone();
    future[8] = 9;
    let err = open_file(&write("future", &future)).unwrap_err();
    assert!(
        matches!(err, IndexError::UnsupportedVersion { found: 9, .. }),
        "{err}"
    );
    // The original is untouched by all of this.
    assert_eq!(open_file(&path).unwrap().len().unwrap(), 10);
}

#[test]
fn embedded_reader_reloads_a_replaced_file() {
    let (mut writer, path, vectors) = embedded_with("reload", 20);
    let mut reader = open_file(&path).unwrap();
    assert!(!reader.reload_if_changed().unwrap());
    let more = unit_vectors(5, 21);
    writer.add(&new_entries(&more, 100)).unwrap();
    // Until it reloads, the reader answers from the file it mapped.
    assert_eq!(reader.len().unwrap(), 20);
    assert_eq!(reader.search(&vectors[0], 1).unwrap()[0].entry.id, 1);
    assert!(reader.reload_if_changed().unwrap());
    assert_eq!(reader.len().unwrap(), 25);
    assert_eq!(reader.search(&more[2], 1).unwrap()[0].entry.id, 23);
    assert!(!reader.reload_if_changed().unwrap());

    // Rebuilt with another model: the reader refuses it and keeps the old one.
    drop(writer);
    std::fs::remove_file(&path).unwrap();
    let create = IndexOptions {
        create: true,
        ..IndexOptions::default()
    };
    EmbeddedIndex::open(&path, Some(&other_model()), &create).unwrap();
    let err = reader.reload_if_changed().unwrap_err();
    assert!(matches!(err, IndexError::ModelMismatch { .. }), "{err}");
    assert_eq!(reader.len().unwrap(), 25);
}

#[test]
fn embedded_copy_writes_the_file_once_and_keeps_the_pages_before_a_bad_one() {
    let (mut source, _, vectors) = embedded_with("copy-source", 300);
    let mut pages: Vec<Vec<StoredEntry>> = Vec::new();
    let mut after = None;
    for _ in 0..3 {
        let page = source.entries_after(after, 100).unwrap();
        after = page.last().map(|e| e.entry.id);
        pages.push(page);
    }
    assert!(pages.iter().all(|p| p.len() == 100));

    // A whole copy: one write at the end, not one per page.
    let (location, mut options) = Embedded.fresh("copy-dest");
    options.create = true;
    let path = PathBuf::from(&location);
    let mut dest = EmbeddedIndex::open(path.as_ref(), Some(&identity()), &options).unwrap();
    let stamp = || {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(&path).map(|m| (m.ino(), m.len())).ok()
    };
    let before = stamp();
    let mut queue = pages.clone().into_iter();
    let mut seen = Vec::new();
    let copied = dest
        .insert_all(&mut || Ok(queue.next().unwrap_or_default()), &mut |n| {
            seen.push((n, stamp()))
        })
        .unwrap();
    assert_eq!(copied, 300);
    assert_eq!(
        seen.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
        vec![100, 200, 300]
    );
    assert!(
        seen.iter().all(|(_, s)| *s == before),
        "the file was rewritten during the copy"
    );
    let mut reread = open_file(&path).unwrap();
    assert_eq!(reread.len().unwrap(), 300);
    let found = reread.search(&vectors[250], 1).unwrap();
    assert_eq!(found[0].entry, pages[2][50].entry);

    // A page that breaks the rules stops the copy, and the pages before it
    // are in the file.
    let (location, mut options) = Embedded.fresh("copy-bad");
    options.create = true;
    let path = PathBuf::from(&location);
    let mut dest = EmbeddedIndex::open(path.as_ref(), Some(&identity()), &options).unwrap();
    let mut bad = pages[2].clone();
    bad[7].entry.id = pages[0][3].entry.id;
    let mut queue = vec![pages[0].clone(), pages[1].clone(), bad].into_iter();
    let err = dest
        .insert_all(&mut || Ok(queue.next().unwrap_or_default()), &mut |_| {})
        .unwrap_err();
    assert!(matches!(err, IndexError::DuplicateId { .. }), "{err}");
    assert_eq!(open_file(&path).unwrap().len().unwrap(), 200);
}

#[test]
fn embedded_two_writers_do_not_lose_each_others_entries() {
    let (mut first, path, _) = embedded_with("writers", 5);
    let mut second = open_file(&path).unwrap();
    first.add(&new_entries(&unit_vectors(1, 30), 50)).unwrap();
    // The second writer opened the file before the first one's add: it
    // adds to the file as the first one left it, under the lock.
    let added = second.add(&new_entries(&unit_vectors(2, 31), 60)).unwrap();
    assert_eq!(added, vec![Added::New(7), Added::New(8)]);
    assert_eq!(second.len().unwrap(), 8);
    // Content the first one added is recognised, not added twice.
    let again = second.add(&new_entries(&unit_vectors(1, 30), 50)).unwrap();
    assert_eq!(again, vec![Added::Existing(6)]);
    // Removing through a stale handle removes from the current file too.
    assert_eq!(first.remove(&[7]).unwrap(), 1);
    let mut check = open_file(&path).unwrap();
    assert_eq!(check.len().unwrap(), 7);
    assert!(check.get(8).unwrap().is_some() && check.get(6).unwrap().is_some());
}

/// Environment of `concurrent_writer_child`: the index, its tag, and the
/// two files it waits for and announces with.
const WRITER_INDEX: &str = "DREAMSIM_TEST_WRITER_INDEX";
const WRITER_TAG: &str = "DREAMSIM_TEST_WRITER_TAG";
const WRITER_GO: &str = "DREAMSIM_TEST_WRITER_GO";
/// Batches each writer adds, and entries per batch.
const WRITER_BATCHES: usize = 3;
const WRITER_BATCH: usize = 2;

/// One of the two processes of `embedded_writers_in_two_processes_lose_nothing`:
/// opens the index, says it is ready, waits for the go, then adds its
/// batches. Does nothing unless that test runs it.
#[test]
fn concurrent_writer_child() {
    let (Ok(path), Ok(tag), Ok(go)) = (
        std::env::var(WRITER_INDEX),
        std::env::var(WRITER_TAG),
        std::env::var(WRITER_GO),
    ) else {
        return;
    };
    let mut set = open_file(path.as_ref()).unwrap();
    std::fs::write(format!("{go}.{tag}.ready"), b"").unwrap();
    while !std::path::Path::new(&go).exists() {
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
    let seed = tag.bytes().map(u64::from).sum::<u64>();
    for batch in 0..WRITER_BATCHES {
        let vectors = unit_vectors(WRITER_BATCH, seed * 100 + batch as u64);
        let entries: Vec<NewEntry> = vectors
            .iter()
            .enumerate()
            .map(|(i, v)| NewEntry {
                label: format!("{tag} {batch} {i}"),
                source: Source::Other {
                    description: tag.clone(),
                },
                content_hash: format!("{tag}-{batch}-{i}"),
                embedding: v,
            })
            .collect();
        let added = set.add(&entries).unwrap();
        assert!(
            added.iter().all(|a| matches!(a, Added::New(_))),
            "{added:?}"
        );
    }
}

#[test]
fn embedded_writers_in_two_processes_lose_nothing() {
    // Issue 20, item 2: two `index add` on one file at once lost one
    // writer's entries in 8 of 70 trials. Each trial: two processes open
    // the same index, start adding at the same moment, three batches each.
    const TRIALS: usize = 50;
    let exe = std::env::current_exe().unwrap();
    let mut lost = Vec::new();
    for trial in 0..TRIALS {
        let (set, path, _) = embedded_with(&format!("two-processes-{trial}"), 3);
        drop(set);
        let go = format!("{}.go", path.display());
        let _ = std::fs::remove_file(&go);
        let children: Vec<_> = ["a", "b"]
            .iter()
            .map(|tag| {
                std::process::Command::new(&exe)
                    .args(["--exact", "concurrent_writer_child", "--test-threads=1"])
                    .env(WRITER_INDEX, &path)
                    .env(WRITER_TAG, format!("{tag}{trial}"))
                    .env(WRITER_GO, &go)
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let ready = |tag: &str| std::path::Path::new(&format!("{go}.{tag}{trial}.ready")).exists();
        let start = std::time::Instant::now();
        while !(ready("a") && ready("b")) {
            assert!(
                start.elapsed().as_secs() < 60,
                "the writers never got ready"
            );
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        std::fs::write(&go, b"").unwrap();
        for child in children {
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "trial {trial}: a writer failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let found = open_file(&path).unwrap().len().unwrap();
        let expected = 3 + 2 * WRITER_BATCHES * WRITER_BATCH;
        if found != expected {
            lost.push(format!(
                "trial {trial}: {found} entries, {expected} expected"
            ));
        }
        for f in [
            go.clone(),
            format!("{go}.a{trial}.ready"),
            format!("{go}.b{trial}.ready"),
        ] {
            let _ = std::fs::remove_file(f);
        }
        let _ = std::fs::remove_file(&path);
    }
    assert!(
        lost.is_empty(),
        "entries lost in {} of {TRIALS} trials:\n{}",
        lost.len(),
        lost.join("\n")
    );
}

#[test]
fn embedded_writers_on_threads_lose_nothing() {
    // The same race inside one process (a lock per open of the lock file,
    // so threads take turns too): eight writers, five batches each.
    let (set, path, _) = embedded_with("threads", 1);
    drop(set);
    let barrier = std::sync::Barrier::new(8);
    std::thread::scope(|scope| {
        for w in 0..8u64 {
            let (path, barrier) = (&path, &barrier);
            scope.spawn(move || {
                let mut set = open_file(path).unwrap();
                barrier.wait();
                for batch in 0..5u64 {
                    let vectors = unit_vectors(1, 1000 + w * 10 + batch);
                    set.add(&new_entries(&vectors, (w * 10 + batch) as usize + 1000))
                        .unwrap();
                }
            });
        }
    });
    assert_eq!(open_file(&path).unwrap().len().unwrap(), 1 + 8 * 5);
}

#[test]
fn embedded_symlinked_index_is_written_through_to_its_target() {
    // Issue 20, item 10: `index add` through a link replaced the link by a
    // regular file and left the target behind.
    let (set, real, vectors) = embedded_with("link-target", 4);
    drop(set);
    let links = real
        .parent()
        .unwrap()
        .join(format!("links-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&links);
    std::fs::create_dir_all(&links).unwrap();
    let link = links.join("set.dsindex");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    // A relative link to the first link: two hops.
    let link2 = links.join("again.dsindex");
    std::os::unix::fs::symlink("set.dsindex", &link2).unwrap();

    let mut through = open_file(&link2).unwrap();
    through.add(&new_entries(&unit_vectors(2, 50), 40)).unwrap();
    through.remove(&[1]).unwrap();
    for l in [&link, &link2] {
        assert!(
            std::fs::symlink_metadata(l)
                .unwrap()
                .file_type()
                .is_symlink(),
            "{}",
            l.display()
        );
    }
    let mut target = open_file(&real).unwrap();
    assert_eq!(target.len().unwrap(), 5);
    assert_eq!(target.search(&vectors[2], 1).unwrap()[0].entry.id, 3);
    // No temporary or lock file was left beside the links.
    let mut beside: Vec<_> = std::fs::read_dir(&links)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    beside.sort();
    assert_eq!(beside, ["again.dsindex", "set.dsindex"]);

    // A link to a file that does not exist yet: the index is created there.
    let new_target = links.join("created-later.dsindex");
    let dangling = links.join("dangling.dsindex");
    std::os::unix::fs::symlink(&new_target, &dangling).unwrap();
    let create = IndexOptions {
        create: true,
        ..IndexOptions::default()
    };
    let mut set = EmbeddedIndex::open(&dangling, Some(&identity()), &create).unwrap();
    set.add(&new_entries(&unit_vectors(1, 51), 0)).unwrap();
    assert!(std::fs::symlink_metadata(&dangling)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(open_file(&new_target).unwrap().len().unwrap(), 1);
    let _ = std::fs::remove_dir_all(&links);
}

/// `index::open` on a thread, with a time limit: a location that makes it
/// wait forever fails the test instead of hanging it.
fn open_within_seconds(location: String, create: bool) -> Result<(), IndexError> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let options = IndexOptions {
            create,
            ..IndexOptions::default()
        };
        let _ = tx.send(index::open(&location, Some(&identity()), &options).map(|_| ()));
    });
    rx.recv_timeout(std::time::Duration::from_secs(10))
        .expect("opening the index hung")
}

#[test]
fn embedded_locations_that_are_not_files_are_refused_at_once() {
    // Issue 20, items 13 and 16: a FIFO as the index hung `index info` and
    // `dreamsimmatch` forever; a folder said "No such device (os error 19)".
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("index-not-files-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let fifo = dir.join("pipe.dsindex");
    let c_path = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o644) }, 0);
    let folder = dir.join("folder.dsindex");
    std::fs::create_dir(&folder).unwrap();
    let link_to_fifo = dir.join("link.dsindex");
    std::os::unix::fs::symlink(&fifo, &link_to_fifo).unwrap();

    for (path, kind) in [
        (&fifo, "a named pipe (FIFO)"),
        (&link_to_fifo, "a named pipe (FIFO)"),
        (&folder, "a folder"),
    ] {
        for create in [false, true] {
            let err = open_within_seconds(path.display().to_string(), create).unwrap_err();
            let text = err.to_string();
            assert!(
                matches!(err, IndexError::NotAFile { kind: k, .. } if k == kind),
                "{}: {text}",
                path.display()
            );
            assert!(
                text.contains(kind) && text.contains("not an index file"),
                "{text}"
            );
        }
    }

    // A reader whose file is replaced by a FIFO (reloaded while a
    // pipeline runs) gets the same error, at once, and keeps its index.
    let (set, path, vectors) = embedded_with("becomes-fifo", 3);
    drop(set);
    let mut reader = open_file(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o644) }, 0);
    let err = reader.reload_if_changed().unwrap_err();
    assert!(matches!(err, IndexError::NotAFile { .. }), "{err}");
    assert_eq!(reader.search(&vectors[1], 1).unwrap()[0].entry.id, 2);
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn embedded_hnsw_above_the_threshold_finds_the_same_nearest() {
    let (location, mut options) = Embedded.fresh("hnsw");
    options.create = true;
    options.exact_search_below = 0; // always HNSW
    let mut set = EmbeddedIndex::open(location.as_ref(), Some(&identity()), &options).unwrap();
    // Over 1000 at once: inserted on several threads.
    let vectors = unit_vectors(1500, 40);
    set.add(&new_entries(&vectors, 0)).unwrap();
    assert_eq!(set.info().unwrap().exact_search_below, Some(0));
    let found = vectors
        .iter()
        .enumerate()
        .filter(|(i, v)| set.search(v, 1).unwrap()[0].entry.id == *i as u64 + 1)
        .count();
    assert!(found >= 1485, "HNSW found {found}/1500 stored vectors");
}

#[test]
fn embedded_i8_quantization_is_kept_in_the_file() {
    let (location, mut options) = Embedded.fresh("i8");
    options.create = true;
    options.quantization = index::Quantization::I8;
    let mut set = EmbeddedIndex::open(location.as_ref(), Some(&identity()), &options).unwrap();
    let vectors = unit_vectors(50, 41);
    set.add(&new_entries(&vectors, 0)).unwrap();
    drop(set);
    let mut set = open_file(location.as_ref()).unwrap();
    assert_eq!(set.info().unwrap().quantization, index::Quantization::I8);
    assert_eq!(set.search(&vectors[7], 1).unwrap()[0].entry.id, 8);
}

#[test]
fn postgres_unreachable_server_is_a_prompt_error() {
    let options = IndexOptions {
        pg_connect_timeout: std::time::Duration::from_secs(2),
        ..IndexOptions::default()
    };
    let start = std::time::Instant::now();
    // A socket folder with no server in it.
    let err = index::open(
        "postgresql://postgres:secret@/postgres?host=/nonexistent-dreamsim-socket",
        Some(&identity()),
        &options,
    )
    .unwrap_err();
    assert!(matches!(err, IndexError::Postgres { .. }), "{err}");
    assert!(err.is_transient(), "{err}");
    assert!(
        !err.to_string().contains("secret"),
        "password leaked: {err}"
    );
    assert!(start.elapsed() < std::time::Duration::from_secs(10));
    let err = index::open("postgresql://[bad", Some(&identity()), &options).unwrap_err();
    assert!(matches!(err, IndexError::InvalidLocation { .. }), "{err}");
}

#[test]
#[ignore = "needs PostgreSQL+pgvector: set DREAMSIM_TEST_PG (tools/pg_test_server.sh start)"]
fn postgres_reconnects_after_losing_the_server() {
    let (location, mut options) = Postgres.fresh("reconnect");
    options.create = true;
    // An application name of its own, so that another session can find and
    // end exactly this connection, as a server restart would.
    let app = format!("dreamsim_{}", options.pg_table);
    let sep = if location.contains('?') { '&' } else { '?' };
    let own = format!("{location}{sep}application_name={app}");
    let mut set = index::open(&own, Some(&identity()), &options).unwrap();
    let vectors = unit_vectors(5, 50);
    set.add(&new_entries(&vectors, 0)).unwrap();

    let mut admin = ::postgres::Client::connect(&location, ::postgres::NoTls).unwrap();
    let ended = admin
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
            &[&app],
        )
        .unwrap();
    assert_eq!(ended.len(), 1);
    std::thread::sleep(std::time::Duration::from_millis(300));

    // The call that meets the lost connection fails, as a transient error...
    let err = set.search(&vectors[0], 1).unwrap_err();
    assert!(err.is_transient(), "{err}");
    // ...and the next one reconnects.
    let hits = set.search(&vectors[2], 1).unwrap();
    assert_eq!(hits[0].entry.id, 3);
    assert_eq!(set.len().unwrap(), 5);
}

#[test]
#[ignore = "needs PostgreSQL+pgvector: set DREAMSIM_TEST_PG (tools/pg_test_server.sh start)"]
fn postgres_builds_its_hnsw_index_with_the_graph_options() {
    let (location, mut options) = Postgres.fresh("graph");
    options.create = true;
    options.connectivity = 12;
    options.expansion_add = 48;
    let index_def = |table: &str| -> String {
        let mut admin = ::postgres::Client::connect(&location, ::postgres::NoTls).unwrap();
        admin
            .query_one(
                "SELECT indexdef FROM pg_indexes WHERE indexname = $1",
                &[&format!("{table}_entries_hnsw")],
            )
            .unwrap()
            .get(0)
    };
    // Created with the table, and built again by a bulk load.
    let mut set = index::open(&location, Some(&identity()), &options).unwrap();
    let def = index_def(&options.pg_table);
    assert!(
        def.contains("m='12'") && def.contains("ef_construction='48'"),
        "{def}"
    );
    let vectors = unit_vectors(index::PG_BULK_LOAD_MIN, 60);
    set.add(&new_entries(&vectors, 0)).unwrap();
    let def = index_def(&options.pg_table);
    assert!(
        def.contains("m='12'") && def.contains("ef_construction='48'"),
        "{def}"
    );
    assert_eq!(set.search(&vectors[7], 1).unwrap()[0].entry.id, 8);
}
