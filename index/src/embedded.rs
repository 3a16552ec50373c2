//! The embedded backend: a usearch HNSW graph and the entries' metadata in
//! one file, opened memory-mapped.
//!
//! File layout (little-endian):
//!
//! | bytes | content |
//! |---|---|
//! | 0..8 | magic `DREAMIDX` |
//! | 8..12 | format version (1) |
//! | 12..16 | reserved, zero |
//! | 16..24 | metadata length `m` |
//! | 24..32 | graph length `g` (0 when the set is empty) |
//! | 32..36 | CRC-32 of the metadata |
//! | 36..40 | CRC-32 of the graph |
//! | 40..64 | reserved, zero |
//! | 64..64+m | metadata, JSON: model identity, quantization, next id, entries |
//! | padding | zeros up to a multiple of 64 |
//! | g bytes | usearch's serialized index (viewed in place, not copied) |
//!
//! The file is never written in place: every change writes a temporary file
//! in the same folder, fsyncs it, renames it over the old one and fsyncs the
//! folder. A reader that has the old file mapped keeps it until it reopens.
//! Writers take turns on the file's lock (`super::lock`), held from before
//! the file is read until after the rename; a path that is a symbolic link
//! is written through to its target.
//!
//! A file is checked before it is used, whoever wrote it: the header's
//! lengths against the file's, both checksums, the metadata's ids, and the
//! graph's structure (`super::validate`), so that a file changed on purpose
//! with its checksums recomputed is an error, never a read out of bounds.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Display;
use std::fs::File;
use std::io::Write;
use std::ops::{Bound, Range};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use serde::{Deserialize, Serialize};

use super::lock::WriteLock;
use super::validate::{self, check_graph};
use super::{
    now_unix_us, Added, EmbeddingIndex, Entry, EntryId, IndexError, IndexInfo, IndexOptions, Match,
    ModelIdentity, NewEntry, Quantization, Result, StoredEntry,
};

const MAGIC: &[u8; 8] = b"DREAMIDX";
const FORMAT_VERSION: u32 = 1;
const HEADER_LEN: usize = 64;
const ALIGN: usize = 64;
/// Widest embedding a file may declare (DreamSim's ensemble is 1792): a
/// larger width is a damaged or crafted header, not a model.
const MAX_DIM: usize = 65_536;

/// What a location that is not a regular file is, for
/// [`IndexError::NotAFile`]; `None` for a regular file.
fn not_a_file(file_type: std::fs::FileType) -> Option<&'static str> {
    if file_type.is_file() {
        None
    } else if file_type.is_dir() {
        Some("a folder")
    } else if file_type.is_fifo() {
        Some("a named pipe (FIFO)")
    } else if file_type.is_socket() {
        Some("a socket")
    } else if file_type.is_block_device() || file_type.is_char_device() {
        Some("a device")
    } else {
        Some("not a regular file")
    }
}

fn check_regular(path: &Path, meta: &std::fs::Metadata) -> Result<()> {
    match not_a_file(meta.file_type()) {
        None => Ok(()),
        Some(kind) => Err(IndexError::NotAFile {
            path: path.to_owned(),
            kind,
        }),
    }
}

/// What identifies one version of the file: a rename gives a new inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime_ns: i128,
}

impl FileStamp {
    fn of(meta: &std::fs::Metadata) -> Self {
        Self {
            dev: meta.dev(),
            ino: meta.ino(),
            len: meta.len(),
            mtime_ns: meta.mtime() as i128 * 1_000_000_000 + meta.mtime_nsec() as i128,
        }
    }
}

/// Entries whose vectors are in the in-memory graph but not yet in the
/// file (`ids` and `hashes` are filled by `sort_insert`, for its checks).
#[derive(Default)]
struct Pending {
    entries: Vec<Entry>,
    ids: HashSet<EntryId>,
    hashes: HashMap<String, EntryId>,
    next_id: EntryId,
}

#[derive(Serialize)]
struct MetadataOut<'a> {
    identity: &'a ModelIdentity,
    quantization: Quantization,
    next_id: EntryId,
    entries: Vec<&'a Entry>,
}

#[derive(Deserialize)]
struct MetadataIn {
    identity: ModelIdentity,
    quantization: Quantization,
    next_id: EntryId,
    entries: Vec<Entry>,
}

/// A set of embeddings in one file (see the module docs for the layout).
pub struct EmbeddedIndex {
    path: PathBuf,
    location: String,
    identity: ModelIdentity,
    quantization: Quantization,
    next_id: EntryId,
    entries: BTreeMap<EntryId, Entry>,
    by_hash: HashMap<String, EntryId>,
    // Declared before `map`: it points into the mapping and must be dropped first.
    graph: Option<usearch::Index>,
    map: Option<Mmap>,
    graph_range: Range<usize>,
    stamp: Option<FileStamp>,
    exact_search_below: usize,
    ef_search: usize,
    connectivity: usize,
    expansion_add: usize,
}

impl std::fmt::Debug for EmbeddedIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedIndex")
            .field("path", &self.path)
            .field("identity", &self.identity)
            .field("len", &self.entries.len())
            .finish_non_exhaustive()
    }
}

fn usearch_err<E: Display>(location: &str, action: &'static str) -> impl FnOnce(E) -> IndexError {
    let location = location.to_owned();
    move |e| IndexError::Usearch {
        location,
        action,
        message: e.to_string(),
    }
}

/// Entries a page-by-page copy into a file ([`EmbeddingIndex::insert_all`],
/// `gst-dreamsim index import`) keeps in memory before it writes the file:
/// writing after every page rewrote the whole file each time (a thousand
/// rewrites of a growing file for a million entries), writing once at the
/// end would lose everything read so far to an interruption. About 360 MB
/// of f16 vectors at width 1792.
pub const INSERT_CHECKPOINT: usize = 100_000;

/// The ids and vectors of the entries `outcomes` marks new.
fn new_vectors<'a>(entries: &'a [StoredEntry], outcomes: &[Added]) -> Vec<(EntryId, &'a [f32])> {
    entries
        .iter()
        .zip(outcomes)
        .filter(|(_, o)| matches!(o, Added::New(_)))
        .map(|(e, _)| (e.entry.id, e.embedding.as_slice()))
        .collect()
}

fn add_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn scalar_kind(q: Quantization) -> usearch::ScalarKind {
    match q {
        Quantization::F16 => usearch::ScalarKind::F16,
        Quantization::I8 => usearch::ScalarKind::I8,
        Quantization::F32 => usearch::ScalarKind::F32,
    }
}

impl EmbeddedIndex {
    /// Opens the index file at `path` (see [`super::open`] for `identity`
    /// and `options.create`).
    pub fn open(
        path: &Path,
        identity: Option<&ModelIdentity>,
        options: &IndexOptions,
    ) -> Result<Self> {
        match std::fs::metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if !options.create {
                    return Err(IndexError::NotFound {
                        location: super::redact(&path.display().to_string()),
                    });
                }
                let identity = identity.ok_or_else(|| IndexError::NeedsIdentity {
                    location: path.display().to_string(),
                })?;
                let lock = WriteLock::acquire(path)?;
                // Another writer may have created it while this one waited.
                if std::fs::metadata(path).is_ok() {
                    drop(lock);
                    return Self::open(path, Some(identity), options);
                }
                let mut index = Self {
                    path: path.to_owned(),
                    location: path.display().to_string(),
                    identity: identity.clone(),
                    quantization: options.quantization,
                    next_id: 1,
                    entries: BTreeMap::new(),
                    by_hash: HashMap::new(),
                    graph: None,
                    map: None,
                    graph_range: 0..0,
                    stamp: None,
                    exact_search_below: options.exact_search_below,
                    ef_search: options.ef_search,
                    connectivity: options.connectivity,
                    expansion_add: options.expansion_add,
                };
                index.commit(&lock, None, Vec::new(), 1)?;
                Ok(index)
            }
            Err(source) => Err(IndexError::Io {
                path: path.to_owned(),
                source,
            }),
            Ok(meta) => {
                check_regular(path, &meta)?;
                let index = Self::read(path, options)?;
                if let Some(identity) = identity {
                    index.check_identity(identity)?;
                }
                Ok(index)
            }
        }
    }

    fn check_identity(&self, identity: &ModelIdentity) -> Result<()> {
        if *identity != self.identity {
            return Err(IndexError::ModelMismatch {
                location: self.location.clone(),
                index: Box::new(self.identity.clone()),
                caller: Box::new(identity.clone()),
            });
        }
        Ok(())
    }

    /// The index file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Changes the HNSW search breadth (usearch `expansion_search`) for
    /// this handle: wider finds the true nearest more often, slower.
    pub fn set_ef_search(&mut self, ef_search: usize) {
        self.ef_search = ef_search.max(1);
        if let Some(graph) = &self.graph {
            graph.change_expansion_search(self.ef_search);
        }
    }

    fn read(path: &Path, options: &IndexOptions) -> Result<Self> {
        let io_err = |source| IndexError::Io {
            path: path.to_owned(),
            source,
        };
        let corrupt = |what: String| IndexError::Corrupt {
            path: path.to_owned(),
            what,
        };
        // O_NONBLOCK: opening a named pipe put there since the caller
        // looked would otherwise wait for a writer; regular files ignore it.
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
            .map_err(|source| {
                if source.kind() == std::io::ErrorKind::NotFound {
                    IndexError::NotFound {
                        location: super::redact(&path.display().to_string()),
                    }
                } else {
                    io_err(source)
                }
            })?;
        // The stamp of the file actually opened, not of whatever the path
        // names a moment later.
        let meta = file.metadata().map_err(io_err)?;
        check_regular(path, &meta)?;
        let stamp = FileStamp::of(&meta);
        let len = meta.len();
        if len == 0 {
            return Err(IndexError::EmptyFile {
                path: path.to_owned(),
            });
        }
        // SAFETY: the index is never written in place (every change renames
        // a new file over it), so the mapped bytes do not change under us.
        let map = unsafe { Mmap::map(&file) }.map_err(io_err)?;
        let head = &map[..map.len().min(HEADER_LEN)];
        if head.len() < MAGIC.len() || &head[..MAGIC.len()] != MAGIC {
            if MAGIC.starts_with(head) {
                return Err(IndexError::Truncated {
                    path: path.to_owned(),
                    expected: HEADER_LEN as u64,
                    found: len,
                });
            }
            return Err(IndexError::NotAnIndex {
                path: path.to_owned(),
            });
        }
        if head.len() < HEADER_LEN {
            return Err(IndexError::Truncated {
                path: path.to_owned(),
                expected: HEADER_LEN as u64,
                found: len,
            });
        }
        let u32_at = |o: usize| u32::from_le_bytes(head[o..o + 4].try_into().unwrap());
        let u64_at = |o: usize| u64::from_le_bytes(head[o..o + 8].try_into().unwrap());
        let version = u32_at(8);
        if version != FORMAT_VERSION {
            return Err(IndexError::UnsupportedVersion {
                path: path.to_owned(),
                found: version,
                expected: FORMAT_VERSION,
            });
        }
        let (meta_len, graph_len) = (u64_at(16), u64_at(24));
        let (meta_crc, graph_crc) = (u32_at(32), u32_at(36));
        let graph_start = (HEADER_LEN as u64)
            .checked_add(meta_len)
            .map(|end| end.div_ceil(ALIGN as u64) * ALIGN as u64);
        let total = graph_start.and_then(|s| s.checked_add(graph_len));
        let (Some(graph_start), Some(total)) = (graph_start, total) else {
            return Err(corrupt("lengths in the header overflow".into()));
        };
        if total > len {
            return Err(IndexError::Truncated {
                path: path.to_owned(),
                expected: total,
                found: len,
            });
        }
        if total < len {
            return Err(corrupt(format!(
                "{} bytes after the end announced by the header",
                len - total
            )));
        }
        let meta_bytes = &map[HEADER_LEN..HEADER_LEN + meta_len as usize];
        if crc32fast::hash(meta_bytes) != meta_crc {
            return Err(corrupt("metadata checksum mismatch".into()));
        }
        let graph_range = graph_start as usize..total as usize;
        if crc32fast::hash(&map[graph_range.clone()]) != graph_crc {
            return Err(corrupt("graph checksum mismatch".into()));
        }
        let metadata: MetadataIn = serde_json::from_slice(meta_bytes)
            .map_err(|e| corrupt(format!("metadata unreadable: {e}")))?;
        if !(1..=MAX_DIM).contains(&metadata.identity.dim) {
            return Err(corrupt(format!(
                "model width {} outside 1 to {MAX_DIM}",
                metadata.identity.dim
            )));
        }

        let mut entries = BTreeMap::new();
        let mut by_hash = HashMap::with_capacity(metadata.entries.len());
        for entry in metadata.entries {
            if entry.id >= metadata.next_id {
                return Err(corrupt(format!(
                    "entry id {} not below the next id {}",
                    entry.id, metadata.next_id
                )));
            }
            if by_hash
                .insert(entry.content_hash.clone(), entry.id)
                .is_some()
            {
                return Err(corrupt(format!(
                    "content hash {} appears twice",
                    entry.content_hash
                )));
            }
            let id = entry.id;
            if entries.insert(id, entry).is_some() {
                return Err(corrupt(format!("id {id} appears twice")));
            }
        }

        let location = path.display().to_string();
        let mut index = Self {
            path: path.to_owned(),
            location,
            identity: metadata.identity,
            quantization: metadata.quantization,
            next_id: metadata.next_id,
            entries,
            by_hash,
            graph: None,
            map: None,
            graph_range: graph_range.clone(),
            stamp: Some(stamp),
            exact_search_below: options.exact_search_below,
            ef_search: options.ef_search,
            connectivity: options.connectivity,
            expansion_add: options.expansion_add,
        };
        if graph_range.is_empty() {
            if !index.entries.is_empty() {
                return Err(corrupt(format!(
                    "{} entries but no graph",
                    index.entries.len()
                )));
            }
        } else {
            let blob = &map[graph_range];
            // usearch trusts the graph it is given: check every offset,
            // level and neighbour first (`validate`).
            check_graph(
                blob,
                &validate::Expected {
                    dim: index.identity.dim,
                    quantization: index.quantization,
                    entries: &index.entries,
                },
            )
            .map_err(corrupt)?;
            let graph = usearch::Index::new(&index.usearch_options())
                .map_err(usearch_err(&index.location, "create the graph"))?;
            // SAFETY: `map` is stored next to `graph`, outlives it (field
            // order) and is never modified (see above).
            unsafe { graph.view_from_buffer(blob) }
                .map_err(|e| corrupt(format!("graph unreadable: {e}")))?;
            graph.change_expansion_search(index.ef_search);
            index.graph = Some(graph);
        }
        index.map = Some(map);
        Ok(index)
    }

    fn usearch_options(&self) -> usearch::IndexOptions {
        usearch::IndexOptions {
            dimensions: self.identity.dim,
            metric: usearch::MetricKind::Cos,
            quantization: scalar_kind(self.quantization),
            // A graph loaded from the file takes the file's connectivity.
            connectivity: self.connectivity,
            expansion_add: self.expansion_add,
            expansion_search: self.ef_search,
            multi: false,
        }
    }

    /// An in-memory, writable copy of the graph with room for `extra` more vectors.
    fn writable_graph(&self, extra: usize) -> Result<usearch::Index> {
        let graph = usearch::Index::new(&self.usearch_options())
            .map_err(usearch_err(&self.location, "create the graph"))?;
        if let (Some(map), false) = (&self.map, self.graph_range.is_empty()) {
            graph
                .load_from_buffer(&map[self.graph_range.clone()])
                .map_err(usearch_err(&self.location, "load the graph"))?;
        }
        graph
            .reserve_capacity_and_threads(graph.size() + extra, add_threads())
            .map_err(usearch_err(&self.location, "reserve memory"))?;
        Ok(graph)
    }

    /// Adds vectors to `graph`, on every core when there are many: HNSW
    /// insertion is the cost of building a set, and usearch takes
    /// concurrent inserts.
    fn add_vectors(&self, graph: &usearch::Index, items: &[(EntryId, &[f32])]) -> Result<()> {
        let threads = add_threads();
        if threads == 1 || items.len() < 1000 {
            for (id, v) in items {
                graph
                    .add(*id, v)
                    .map_err(usearch_err(&self.location, "add a vector"))?;
            }
            return Ok(());
        }
        std::thread::scope(|scope| {
            let workers: Vec<_> = items
                .chunks(items.len().div_ceil(threads))
                .map(|chunk| {
                    scope.spawn(move || {
                        chunk
                            .iter()
                            .try_for_each(|(id, v)| graph.add(*id, v).map_err(|e| e.to_string()))
                    })
                })
                .collect();
            for worker in workers {
                worker
                    .join()
                    .expect("usearch insertion thread panicked")
                    .map_err(usearch_err(&self.location, "add a vector"))?;
            }
            Ok(())
        })
    }

    fn check_dim(&self, embedding: &[f32]) -> Result<()> {
        if embedding.len() != self.identity.dim {
            return Err(IndexError::Dimension {
                location: self.location.clone(),
                expected: self.identity.dim,
                found: embedding.len(),
            });
        }
        Ok(())
    }

    /// Writes a new file with `graph` and `entries` atomically, then reopens it.
    fn commit(
        &mut self,
        lock: &WriteLock,
        graph: Option<&usearch::Index>,
        entries: Vec<&Entry>,
        next_id: EntryId,
    ) -> Result<()> {
        self.write_file(lock, graph, entries, next_id)?;
        self.reopen()
    }

    /// Waits for the file's write lock, then reads the file again if another
    /// writer replaced it meanwhile: what this writer does next applies to
    /// the file as it is now, and nobody else writes it until the lock is
    /// dropped.
    fn lock_for_write(&mut self) -> Result<WriteLock> {
        let lock = WriteLock::acquire(&self.path)?;
        self.reload_if_changed()?;
        Ok(lock)
    }

    fn reopen(&mut self) -> Result<()> {
        let options = IndexOptions {
            exact_search_below: self.exact_search_below,
            ef_search: self.ef_search,
            connectivity: self.connectivity,
            expansion_add: self.expansion_add,
            ..IndexOptions::default()
        };
        *self = Self::read(&self.path, &options)?;
        Ok(())
    }

    /// Writes a new file with `graph` and `entries` atomically (temporary
    /// file in the same folder, fsync, rename, fsync of the folder).
    /// Checks `entries` (from another index: ids kept) against the index
    /// and `pending`, and moves the new ones into `pending`: a duplicate id
    /// refuses the whole batch, content already present is
    /// [`Added::Existing`].
    fn sort_insert(&self, entries: &[StoredEntry], pending: &mut Pending) -> Result<Vec<Added>> {
        let mut ids = HashSet::with_capacity(entries.len());
        for e in entries {
            self.check_dim(&e.embedding)?;
            let id = e.entry.id;
            if self.entries.contains_key(&id) || pending.ids.contains(&id) || !ids.insert(id) {
                return Err(IndexError::DuplicateId {
                    location: self.location.clone(),
                    id,
                });
            }
        }
        let mut outcomes = Vec::with_capacity(entries.len());
        for e in entries {
            let hash = &e.entry.content_hash;
            if let Some(&id) = self.by_hash.get(hash).or_else(|| pending.hashes.get(hash)) {
                outcomes.push(Added::Existing(id));
                continue;
            }
            pending.hashes.insert(hash.clone(), e.entry.id);
            pending.ids.insert(e.entry.id);
            pending.next_id = pending.next_id.max(e.entry.id + 1);
            pending.entries.push(e.entry.clone());
            outcomes.push(Added::New(e.entry.id));
        }
        Ok(outcomes)
    }

    /// `graph` with room for `extra` more vectors, grown by at least half
    /// its capacity so that a copy page by page does not reallocate every
    /// page.
    fn grown(&self, graph: usearch::Index, extra: usize) -> Result<usearch::Index> {
        let needed = graph.size() + extra;
        if needed > graph.capacity() {
            graph
                .reserve_capacity_and_threads(needed.max(graph.capacity() * 3 / 2), add_threads())
                .map_err(usearch_err(&self.location, "reserve memory"))?;
        }
        Ok(graph)
    }

    /// Writes the index with `pending`'s entries (their vectors are in
    /// `graph`) and takes the new file as this index.
    fn commit_pending(
        &mut self,
        lock: &WriteLock,
        graph: &usearch::Index,
        pending: &mut Pending,
    ) -> Result<()> {
        let next_id = self.next_id.max(pending.next_id);
        let all = self
            .entries
            .values()
            .chain(pending.entries.iter())
            .collect();
        self.write_file(lock, Some(graph), all, next_id)?;
        self.reopen()?;
        *pending = Pending::default();
        Ok(())
    }

    fn write_file(
        &self,
        lock: &WriteLock,
        graph: Option<&usearch::Index>,
        entries: Vec<&Entry>,
        next_id: EntryId,
    ) -> Result<()> {
        let io_err = |source| IndexError::Io {
            path: self.path.clone(),
            source,
        };
        let metadata = serde_json::to_vec(&MetadataOut {
            identity: &self.identity,
            quantization: self.quantization,
            next_id,
            entries,
        })
        .expect("entries serialise to JSON");
        let mut blob = Vec::new();
        if let Some(graph) = graph.filter(|g| g.size() > 0) {
            blob = vec![0u8; graph.serialized_length()];
            graph
                .save_to_buffer(&mut blob)
                .map_err(usearch_err(&self.location, "serialise the graph"))?;
        }
        let mut header = [0u8; HEADER_LEN];
        header[..8].copy_from_slice(MAGIC);
        header[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        header[16..24].copy_from_slice(&(metadata.len() as u64).to_le_bytes());
        header[24..32].copy_from_slice(&(blob.len() as u64).to_le_bytes());
        header[32..36].copy_from_slice(&crc32fast::hash(&metadata).to_le_bytes());
        header[36..40].copy_from_slice(&crc32fast::hash(&blob).to_le_bytes());
        let padding =
            (HEADER_LEN + metadata.len()).next_multiple_of(ALIGN) - (HEADER_LEN + metadata.len());

        // Through a symbolic link to its target: the link stays a link.
        let target = lock.target();
        let dir = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut tmp = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".tmp")
            .tempfile_in(&dir)
            .map_err(io_err)?;
        {
            let file = tmp.as_file_mut();
            file.write_all(&header).map_err(io_err)?;
            file.write_all(&metadata).map_err(io_err)?;
            file.write_all(&[0u8; ALIGN][..padding]).map_err(io_err)?;
            file.write_all(&blob).map_err(io_err)?;
            // Readable as a normal file would be (tempfile creates it 0600).
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(target)
                .map(|m| m.permissions().mode())
                .unwrap_or(0o644);
            file.set_permissions(std::fs::Permissions::from_mode(mode))
                .map_err(io_err)?;
            file.sync_all().map_err(io_err)?;
        }
        // Under the lock the file is the one this index read, unless a
        // program that takes no lock replaced it: refuse to overwrite that.
        let current = match std::fs::metadata(target) {
            Ok(m) => Some(FileStamp::of(&m)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_err(e)),
        };
        if current != self.stamp {
            return Err(IndexError::ConcurrentWrite {
                path: self.path.clone(),
            });
        }
        tmp.persist(target).map_err(|e| io_err(e.error))?;
        File::open(&dir).and_then(|d| d.sync_all()).map_err(io_err)
    }

    /// The entries found; with `max_distance`, those beyond it are left out
    /// before their labels and sources are copied.
    fn to_matches(&self, found: usearch::ffi::Matches, max_distance: Option<f64>) -> Vec<Match> {
        found
            .keys
            .iter()
            .zip(&found.distances)
            .filter(|&(_, &distance)| max_distance.is_none_or(|max| f64::from(distance) <= max))
            .filter_map(|(key, &distance)| {
                self.entries.get(key).map(|entry| Match {
                    entry: entry.clone(),
                    distance: distance as f64,
                })
            })
            .collect()
    }

    fn search_with(
        &self,
        query: &[f32],
        k: usize,
        exact: bool,
        max_distance: Option<f64>,
    ) -> Result<Vec<Match>> {
        self.check_dim(query)?;
        let k = k.min(self.entries.len());
        let Some(graph) = self.graph.as_ref().filter(|_| k > 0) else {
            return Ok(Vec::new());
        };
        let found = if exact {
            graph.exact_search(query, k)
        } else {
            graph.search(query, k)
        }
        .map_err(usearch_err(&self.location, "search"))?;
        Ok(self.to_matches(found, max_distance))
    }
}

impl EmbeddingIndex for EmbeddedIndex {
    fn backend(&self) -> &'static str {
        "embedded"
    }

    fn identity(&self) -> &ModelIdentity {
        &self.identity
    }

    fn len(&mut self) -> Result<usize> {
        Ok(self.entries.len())
    }

    fn add(&mut self, entries: &[NewEntry<'_>]) -> Result<Vec<Added>> {
        for entry in entries {
            self.check_dim(entry.embedding)?;
        }
        // Ids and duplicates are decided against the file as it is under the lock.
        let lock = self.lock_for_write()?;
        let now = now_unix_us();
        let mut next_id = self.next_id;
        let mut batch_hashes: HashMap<&str, EntryId> = HashMap::new();
        let mut outcomes = Vec::with_capacity(entries.len());
        let mut fresh = Vec::new();
        for e in entries {
            let known = self
                .by_hash
                .get(&e.content_hash)
                .or_else(|| batch_hashes.get(e.content_hash.as_str()));
            if let Some(&id) = known {
                outcomes.push(Added::Existing(id));
                continue;
            }
            let id = next_id;
            next_id += 1;
            batch_hashes.insert(&e.content_hash, id);
            outcomes.push(Added::New(id));
            fresh.push((
                Entry {
                    id,
                    label: e.label.clone(),
                    source: e.source.clone(),
                    content_hash: e.content_hash.clone(),
                    added_unix_us: now,
                },
                e.embedding,
            ));
        }
        if fresh.is_empty() {
            return Ok(outcomes);
        }
        let graph = self.writable_graph(fresh.len())?;
        let items: Vec<(EntryId, &[f32])> = fresh.iter().map(|(e, v)| (e.id, *v)).collect();
        self.add_vectors(&graph, &items)?;
        let mut pending = Pending {
            entries: fresh.into_iter().map(|(e, _)| e).collect(),
            next_id,
            ..Pending::default()
        };
        self.commit_pending(&lock, &graph, &mut pending)?;
        Ok(outcomes)
    }

    fn insert(&mut self, entries: &[StoredEntry]) -> Result<Vec<Added>> {
        let lock = self.lock_for_write()?;
        let mut pending = Pending::default();
        let outcomes = self.sort_insert(entries, &mut pending)?;
        if pending.entries.is_empty() {
            return Ok(outcomes);
        }
        let graph = self.writable_graph(pending.entries.len())?;
        self.add_vectors(&graph, &new_vectors(entries, &outcomes))?;
        self.commit_pending(&lock, &graph, &mut pending)?;
        Ok(outcomes)
    }

    /// Every page into one in-memory graph, the file written every
    /// [`INSERT_CHECKPOINT`] new entries and at the end (not per page). A
    /// page that breaks the rules of [`insert`](Self::insert), or a source
    /// that fails, stops the copy: the pages before it are written first,
    /// so the file holds everything taken so far, whole. The write lock is
    /// held for the whole copy (the in-memory graph is built on the file as
    /// it was when the copy began): other writers wait for its end.
    fn insert_all(
        &mut self,
        next: &mut dyn FnMut() -> Result<Vec<StoredEntry>>,
        progress: &mut dyn FnMut(usize),
    ) -> Result<usize> {
        let lock = self.lock_for_write()?;
        let mut pending = Pending::default();
        let mut graph: Option<usearch::Index> = None;
        let mut copied = 0;
        let result = loop {
            let page = match next() {
                Ok(page) if page.is_empty() => break Ok(copied),
                Ok(page) => page,
                Err(e) => break Err(e),
            };
            let before = pending.entries.len();
            let outcomes = match self.sort_insert(&page, &mut pending) {
                Ok(outcomes) => outcomes,
                Err(e) => break Err(e),
            };
            let fresh = pending.entries.len() - before;
            if fresh == 0 {
                progress(copied);
                continue;
            }
            let target = match graph.take() {
                Some(g) => self.grown(g, fresh),
                None => self.writable_graph(fresh),
            };
            let target = match target {
                Ok(g) => graph.insert(g),
                Err(e) => break Err(e),
            };
            if let Err(e) = self.add_vectors(target, &new_vectors(&page, &outcomes)) {
                // The graph may hold part of this page, so it cannot be
                // written: the pages since the last checkpoint are lost
                // with it, the file keeps the checkpointed ones.
                graph = None;
                break Err(e);
            }
            copied += fresh;
            if pending.entries.len() >= INSERT_CHECKPOINT {
                if let Err(e) = self.commit_pending(&lock, target, &mut pending) {
                    break Err(e);
                }
            }
            progress(copied);
        };
        if let (Some(graph), false) = (&graph, pending.entries.is_empty()) {
            self.commit_pending(&lock, graph, &mut pending)?;
        }
        result
    }

    fn remove(&mut self, ids: &[EntryId]) -> Result<usize> {
        let lock = self.lock_for_write()?;
        let doomed: HashSet<EntryId> = ids
            .iter()
            .copied()
            .filter(|id| self.entries.contains_key(id))
            .collect();
        if doomed.is_empty() {
            return Ok(0);
        }
        let graph = self.writable_graph(0)?;
        for &id in &doomed {
            graph
                .remove(id)
                .map_err(usearch_err(&self.location, "remove a vector"))?;
        }
        let kept: Vec<&Entry> = self
            .entries
            .values()
            .filter(|e| !doomed.contains(&e.id))
            .collect();
        let graph = (!kept.is_empty()).then_some(&graph);
        let next_id = self.next_id;
        // Tombstones of removed vectors stay in usearch's serialized graph
        // until it is rebuilt; the entries' count is what `len` reports.
        self.write_file(&lock, graph, kept, next_id)?;
        self.reopen()?;
        Ok(doomed.len())
    }

    fn get(&mut self, id: EntryId) -> Result<Option<Entry>> {
        Ok(self.entries.get(&id).cloned())
    }

    fn id_of_content(&mut self, content_hash: &str) -> Result<Option<EntryId>> {
        Ok(self.by_hash.get(content_hash).copied())
    }

    fn search(&mut self, query: &[f32], k: usize) -> Result<Vec<Match>> {
        let exact = self.entries.len() < self.exact_search_below;
        self.search_with(query, k, exact, None)
    }

    fn search_within(&mut self, query: &[f32], k: usize, max_distance: f64) -> Result<Vec<Match>> {
        let exact = self.entries.len() < self.exact_search_below;
        self.search_with(query, k, exact, Some(max_distance))
    }

    fn exact_search(&mut self, query: &[f32], k: usize) -> Result<Vec<Match>> {
        self.search_with(query, k, true, None)
    }

    fn entries_after(&mut self, after: Option<EntryId>, limit: usize) -> Result<Vec<StoredEntry>> {
        let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
        let mut page = Vec::new();
        for entry in self
            .entries
            .range((lower, Bound::Unbounded))
            .map(|(_, e)| e)
            .take(limit)
        {
            let mut embedding = vec![0f32; self.identity.dim];
            let found = match &self.graph {
                Some(g) => g
                    .get(entry.id, &mut embedding)
                    .map_err(usearch_err(&self.location, "read a vector"))?,
                None => 0,
            };
            if found == 0 {
                return Err(IndexError::Corrupt {
                    path: self.path.clone(),
                    what: format!("entry {} has no vector", entry.id),
                });
            }
            page.push(StoredEntry {
                entry: entry.clone(),
                embedding,
            });
        }
        Ok(page)
    }

    fn info(&mut self) -> Result<IndexInfo> {
        Ok(IndexInfo {
            backend: "embedded",
            location: self.location.clone(),
            identity: self.identity.clone(),
            len: self.entries.len(),
            quantization: self.quantization,
            size_bytes: self.map.as_ref().map_or(0, |m| m.len() as u64),
            exact_search_below: Some(self.exact_search_below),
            connectivity: Some(
                self.graph
                    .as_ref()
                    .map_or(self.connectivity, |g| g.connectivity()),
            ),
        })
    }

    fn reload_if_changed(&mut self) -> Result<bool> {
        let current = std::fs::metadata(&self.path)
            .map(|m| FileStamp::of(&m))
            .map_err(|source| {
                if source.kind() == std::io::ErrorKind::NotFound {
                    IndexError::NotFound {
                        location: super::redact(&self.location),
                    }
                } else {
                    IndexError::Io {
                        path: self.path.clone(),
                        source,
                    }
                }
            })?;
        if Some(current) == self.stamp {
            return Ok(false);
        }
        let options = IndexOptions {
            exact_search_below: self.exact_search_below,
            ef_search: self.ef_search,
            connectivity: self.connectivity,
            expansion_add: self.expansion_add,
            ..IndexOptions::default()
        };
        let fresh = Self::read(&self.path, &options)?;
        // A set rebuilt with another model must not answer this model's queries.
        fresh.check_identity(&self.identity)?;
        *self = fresh;
        Ok(true)
    }
}
