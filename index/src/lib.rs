//! Persistent sets of embeddings, queried by nearest neighbour: "is this
//! frame close to any of the images we already know, and which one".
//!
//! One trait, [`EmbeddingIndex`], two backends that pass the same test suite
//! (`index/tests/index.rs`):
//!
//! - [`EmbeddedIndex`] (the default, no server): a usearch HNSW graph with
//!   f16 vectors (i8 or f32 on request) and the entries' metadata in **one
//!   file**, opened memory-mapped. Below [`DEFAULT_EXACT_SEARCH_BELOW`]
//!   entries it searches exhaustively (as fast there, and exact). Every change
//!   rewrites the file atomically (temporary file, fsync, rename), so a reader
//!   never sees a half-written index and an interrupted `add` leaves the
//!   previous index intact.
//! - [`PostgresIndex`]: PostgreSQL with pgvector (`halfvec` column, HNSW
//!   cosine index), addressed by a `postgresql://` URI, for sets shared by
//!   many pipelines on many machines and updated while they run.
//!
//! [`open`] picks the backend from the location. Every index records the
//! [`ModelIdentity`] of the model whose embeddings it holds and refuses to be
//! opened for another one ([`IndexError::ModelMismatch`]): embeddings of two
//! models are not comparable, and a query with the wrong ones would return a
//! confident, wrong answer.
//!
//! ```no_run
//! use dreamsim_index::{self as index, IndexOptions, ModelIdentity, NewEntry, Source};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let identity = ModelIdentity::of_model_file("ensemble.onnx".as_ref(), "ensemble", 1792)?;
//! let options = IndexOptions { create: true, ..IndexOptions::default() };
//! let mut set = index::open("known.dsindex", Some(&identity), &options)?;
//! let embedding = vec![0.0f32; 1792]; // from Engine::embed_image_file
//! set.add(&[NewEntry {
//!     label: "cat".into(),
//!     source: Source::File { path: "cat.jpg".into() },
//!     content_hash: index::file_sha256("cat.jpg".as_ref())?,
//!     embedding: &embedding,
//! }])?;
//! for hit in set.search(&embedding, 5)? {
//!     println!("{} {} {:.4}", hit.entry.id, hit.entry.label, hit.distance);
//! }
//! # Ok(()) }
//! ```

mod embedded;
mod identity;
mod lock;
mod pg_location;
mod postgres;
mod validate;

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

pub use embedded::EmbeddedIndex;
pub use identity::{file_sha256, ModelIdentity};
pub use pg_location::{ConnectError, PgLocation, SslMode, TlsSettings};
pub use postgres::PostgresIndex;

/// An entry's id: assigned by the index on [`EmbeddingIndex::add`] (never
/// reused after a removal) and kept by export/import, so it names the same
/// entry in every copy of a set.
pub type EntryId = u64;

/// Below this many entries the embedded index searches exhaustively: where
/// that is as fast as HNSW, and exact.
///
/// Measured on a 2-core AMD EPYC (AVX-512 with VNNI and BF16), f16, one
/// query at a time, HNSW at the default `ef_search` of 64
/// (`examples/index_bench.rs --crossover`, figures in `docs/index.md`): at
/// width 1792 the two cost the same at about 2,000 entries (0.32 against
/// 0.31 ms), at width 32 exhaustive is still a little faster there (0.028
/// against 0.035 ms); at 5,000 exhaustive costs 1.5 times HNSW at both
/// widths (0.79 against 0.54 ms; 0.071 against 0.047), and beyond it grows
/// with the set while HNSW stays nearly flat. HNSW at ef 64 finds the exact
/// nearest on every query at 10,000 entries in both test sets, so nothing
/// is given up above the threshold. (It was 5,000 until the per-frame cost
/// of `dreamsimmatch` was measured: 78 us exhaustive at 4,999 entries
/// against 56 us by HNSW at 5,000.)
pub const DEFAULT_EXACT_SEARCH_BELOW: usize = 2_000;

/// Default PostgreSQL table prefix: tables `<prefix>_model` and `<prefix>_entries`.
pub const DEFAULT_PG_TABLE: &str = "dreamsim";

/// Default time limit for connecting to PostgreSQL.
pub const DEFAULT_PG_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Default time limit for one PostgreSQL statement.
pub const DEFAULT_PG_STATEMENT_TIMEOUT: Duration = Duration::from_secs(10);

/// Default HNSW search breadth (usearch `expansion_search`, pgvector
/// `hnsw.ef_search`). On 100k clustered synthetic 1792-d vectors queried by
/// near-duplicates (2-core AMD EPYC, `docs/index.md`), the embedded index
/// (f16, memory-mapped, connectivity 16) finds the exact nearest for 99.9 %
/// of the queries at 64, p50 0.7 ms and p99 under 5 ms: the issue's goal;
/// 256 finds no more there at four times the cost. On uniformly random
/// vectors (no structure, the worst case) 64 finds only 70 % and 512 is
/// needed for 99.7 %: raise it (`IndexOptions::ef_search`, dreamsimmatch's
/// `ef-search`) for sets that look like that.
pub const DEFAULT_EF_SEARCH: usize = 64;

/// PostgreSQL: a batch of at least this many entries into an empty table is
/// loaded by `COPY` with the HNSW index built afterwards (see
/// [`PostgresIndex`]); smaller batches, or a table with entries, go row by
/// row into the live index.
pub const PG_BULK_LOAD_MIN: usize = 1_000;

/// Default HNSW graph degree of a new embedded index (usearch
/// `connectivity`, links per node; the graph's file keeps its own).
pub const DEFAULT_CONNECTIVITY: usize = 16;

/// Default HNSW build breadth of the embedded index (usearch
/// `expansion_add`): how widely each insertion searches for its links.
pub const DEFAULT_EXPANSION_ADD: usize = 128;

/// How the embedded index stores vectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Quantization {
    /// Half precision: half the memory of f32, distances within about 1e-3.
    #[default]
    F16,
    /// 8-bit: a quarter of the memory, coarser distances.
    I8,
    /// Full precision.
    F32,
}

impl Quantization {
    /// The name used in files, options and `info`.
    pub fn as_str(self) -> &'static str {
        match self {
            Quantization::F16 => "f16",
            Quantization::I8 => "i8",
            Quantization::F32 => "f32",
        }
    }
}

impl std::str::FromStr for Quantization {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "f16" => Ok(Quantization::F16),
            "i8" => Ok(Quantization::I8),
            "f32" => Ok(Quantization::F32),
            other => Err(format!(
                "unknown quantization {other:?}: use f16, i8 or f32"
            )),
        }
    }
}

/// How an index is opened.
#[derive(Debug, Clone)]
pub struct IndexOptions {
    /// Create the index (file, or tables) when it does not exist yet. Needs
    /// the model identity. When false a missing index is [`IndexError::NotFound`].
    pub create: bool,
    /// Vector storage of a new embedded index (an existing one keeps its own).
    pub quantization: Quantization,
    /// Embedded: search exhaustively below this many entries.
    pub exact_search_below: usize,
    /// HNSW search breadth (usearch `expansion_search`, pgvector `hnsw.ef_search`).
    pub ef_search: usize,
    /// Embedded: links per node of a new graph (an existing one keeps its own).
    pub connectivity: usize,
    /// Embedded: search breadth of each insertion (build time for recall).
    pub expansion_add: usize,
    /// PostgreSQL table prefix (letters, digits, `_`; `<prefix>_model`, `<prefix>_entries`).
    pub pg_table: String,
    /// PostgreSQL connect time limit.
    pub pg_connect_timeout: Duration,
    /// PostgreSQL time limit per statement: a query never blocks longer.
    pub pg_statement_timeout: Duration,
}

impl Default for IndexOptions {
    fn default() -> Self {
        Self {
            create: false,
            quantization: Quantization::F16,
            exact_search_below: DEFAULT_EXACT_SEARCH_BELOW,
            ef_search: DEFAULT_EF_SEARCH,
            connectivity: DEFAULT_CONNECTIVITY,
            expansion_add: DEFAULT_EXPANSION_ADD,
            pg_table: DEFAULT_PG_TABLE.to_owned(),
            pg_connect_timeout: DEFAULT_PG_CONNECT_TIMEOUT,
            pg_statement_timeout: DEFAULT_PG_STATEMENT_TIMEOUT,
        }
    }
}

/// Where an entry came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Source {
    /// An image file.
    File {
        /// Its path, as given when it was added.
        path: String,
    },
    /// A frame of a video file.
    VideoFrame {
        /// The video's path, as given when it was added.
        path: String,
        /// The frame's presentation time, in nanoseconds from the start.
        timestamp_ns: u64,
    },
    /// Anything else, described in words (generated data, another system's id).
    Other {
        /// What it is.
        description: String,
    },
}

/// One entry of a set, without its vector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Stable id (see [`EntryId`]).
    pub id: EntryId,
    /// A human name for it (a file name, a row of a CSV).
    pub label: String,
    /// Where it came from.
    pub source: Source,
    /// The content's hash (sha256 of the file, plus the timestamp for a
    /// video frame): the same content added twice is one entry.
    pub content_hash: String,
    /// When it was added, in microseconds since the Unix epoch.
    pub added_unix_us: i64,
}

impl Entry {
    /// When it was added.
    pub fn added_at(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_micros(self.added_unix_us.max(0) as u64)
    }
}

/// An entry to add: the index assigns its id and time.
#[derive(Debug, Clone)]
pub struct NewEntry<'a> {
    /// A human name for it.
    pub label: String,
    /// Where it came from.
    pub source: Source,
    /// The content's hash; an entry with the same hash is not added twice.
    pub content_hash: String,
    /// Its embedding (unit-norm, of the index's width).
    pub embedding: &'a [f32],
}

/// An entry with its vector, as exported and imported.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEntry {
    /// The entry.
    pub entry: Entry,
    /// Its vector, as stored (f16 or i8 rounding included), widened to f32.
    pub embedding: Vec<f32>,
}

/// What became of one entry given to [`EmbeddingIndex::add`] or [`EmbeddingIndex::insert`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    /// Added under this id.
    New(EntryId),
    /// Its content hash was already in the set, under this id: nothing added.
    Existing(EntryId),
}

impl Added {
    /// The entry's id, new or existing.
    pub fn id(self) -> EntryId {
        match self {
            Added::New(id) | Added::Existing(id) => id,
        }
    }
}

/// One search result.
#[derive(Debug, Clone, PartialEq)]
pub struct Match {
    /// The entry found.
    pub entry: Entry,
    /// DreamSim distance (1 - cosine) from the query to the stored vector.
    pub distance: f64,
}

/// What an index says about itself.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexInfo {
    /// `embedded` or `postgresql`.
    pub backend: &'static str,
    /// The location, with any password removed.
    pub location: String,
    /// The model whose embeddings it holds.
    pub identity: ModelIdentity,
    /// Number of entries.
    pub len: usize,
    /// Vector storage (`f16`, `i8`, `f32`).
    pub quantization: Quantization,
    /// Size on disk in bytes (the file; or the tables with their indexes).
    pub size_bytes: u64,
    /// Embedded: the exhaustive-search threshold in effect.
    pub exact_search_below: Option<usize>,
    /// Embedded: links per node of the HNSW graph (the file's own; the
    /// configured value while the set is empty).
    pub connectivity: Option<usize>,
}

/// Everything that can go wrong with an index, with which index and what to do.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// No index at the location and `create` was not asked for.
    #[error("no index at {location}; build one first (gst-dreamsim index add {location} ...)")]
    NotFound {
        /// The location.
        location: String,
    },
    /// A new index needs the model identity.
    #[error("cannot create index {location} without the model identity (type, width, sha256)")]
    NeedsIdentity {
        /// The location.
        location: String,
    },
    /// The location is neither a file path nor a PostgreSQL URI, or the URI is invalid.
    #[error("invalid index location {location}: {reason}")]
    InvalidLocation {
        /// The location (password removed).
        location: String,
        /// What is wrong.
        reason: String,
    },
    /// The file has zero bytes.
    #[error("index file {path} is empty (0 bytes); delete it and rebuild the index")]
    EmptyFile {
        /// The file.
        path: PathBuf,
    },
    /// The file does not start with the index's magic bytes.
    #[error("{path} is not a DreamSim index file (unknown header)")]
    NotAnIndex {
        /// The file.
        path: PathBuf,
    },
    /// The location is a folder, a named pipe, a socket or a device: not a
    /// file that could hold an index (a pipe is never opened, which would
    /// wait for a writer forever).
    #[error("index location {path} is {kind}, not an index file; give the path of an index file")]
    NotAFile {
        /// The location.
        path: PathBuf,
        /// What it is instead (`a folder`, `a named pipe (FIFO)`, ...).
        kind: &'static str,
    },
    /// The file is shorter than its header says.
    #[error(
        "index file {path} is truncated: {expected} bytes expected, {found} found; rebuild it or \
         restore a copy"
    )]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Bytes the header announces.
        expected: u64,
        /// Bytes present.
        found: u64,
    },
    /// The file's content does not check out.
    #[error("index file {path} is corrupt: {what}; rebuild it or restore a copy")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What failed (checksum, metadata, graph).
        what: String,
    },
    /// The file was written by another format version.
    #[error("index file {path} has format version {found}; this build reads version {expected}")]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// The version found.
        found: u32,
        /// The version this build reads.
        expected: u32,
    },
    /// The index holds another model's embeddings.
    #[error(
        "index {location} holds embeddings of model {index}, not of {caller}: embeddings of \
         different models cannot be compared; use the model the index was built with, or build \
         a new index"
    )]
    ModelMismatch {
        /// The location.
        location: String,
        /// The index's model.
        index: Box<ModelIdentity>,
        /// The caller's model.
        caller: Box<ModelIdentity>,
    },
    /// An embedding of the wrong width.
    #[error("embedding has {found} values but index {location} holds {expected}-d embeddings")]
    Dimension {
        /// The location.
        location: String,
        /// The index's width.
        expected: usize,
        /// The embedding's width.
        found: usize,
    },
    /// An imported entry's id is already taken.
    #[error("id {id} is already in index {location}")]
    DuplicateId {
        /// The location.
        location: String,
        /// The id.
        id: EntryId,
    },
    /// Another writer replaced the file since this one opened it.
    #[error(
        "index file {path} was changed by another writer since it was opened; reopen it and \
         retry (one writer at a time)"
    )]
    ConcurrentWrite {
        /// The file.
        path: PathBuf,
    },
    /// Reading or writing the file failed.
    #[error("index file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// usearch refused an operation.
    #[error("index {location}: usearch failed to {action}: {message}")]
    Usearch {
        /// The location.
        location: String,
        /// What was being done.
        action: &'static str,
        /// usearch's message.
        message: String,
    },
    /// PostgreSQL failed (connection, timeout, SQL error).
    #[error("index {location}: PostgreSQL failed to {action}: {source}")]
    Postgres {
        /// The location (password removed).
        location: String,
        /// What was being done.
        action: &'static str,
        /// The client's error, with the server's message.
        source: ::postgres::Error,
    },
}

impl IndexError {
    /// True when the error is a server that cannot be reached or a statement
    /// that ran past its time limit: the kind of failure a pipeline may ride
    /// out (pass and warn) rather than stop on.
    pub fn is_transient(&self) -> bool {
        match self {
            IndexError::Postgres { source, .. } => {
                // Class 08: connection exceptions; class 57: operator
                // intervention (the server shutting down or restarting, a
                // connection terminated by an administrator).
                source.is_closed()
                    || source.code().is_none_or(|code| {
                        code == &::postgres::error::SqlState::QUERY_CANCELED
                            || code.code().starts_with("08")
                            || code.code().starts_with("57")
                    })
            }
            _ => false,
        }
    }
}

/// Result of index operations.
pub type Result<T, E = IndexError> = std::result::Result<T, E>;

/// A set of embeddings with their entries. Implemented by [`EmbeddedIndex`]
/// and [`PostgresIndex`]; [`open`] returns the right one for a location.
pub trait EmbeddingIndex: Send + std::fmt::Debug {
    /// `embedded` or `postgresql`.
    fn backend(&self) -> &'static str;

    /// The model whose embeddings the index holds.
    fn identity(&self) -> &ModelIdentity;

    /// Number of entries.
    fn len(&mut self) -> Result<usize>;

    /// True when the index has no entries.
    fn is_empty(&mut self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Adds entries, assigning ids; an entry whose content hash is already
    /// present (in the index or earlier in `entries`) is not added again
    /// ([`Added::Existing`]). All or nothing: on error nothing is added.
    fn add(&mut self, entries: &[NewEntry<'_>]) -> Result<Vec<Added>>;

    /// Inserts entries keeping their ids and times (import from another
    /// index). An id already present is [`IndexError::DuplicateId`] and
    /// nothing is inserted; a content hash already present is skipped
    /// ([`Added::Existing`]).
    fn insert(&mut self, entries: &[StoredEntry]) -> Result<Vec<Added>>;

    /// Removes entries by id; returns how many were present.
    fn remove(&mut self, ids: &[EntryId]) -> Result<usize>;

    /// The entry with this id.
    fn get(&mut self, id: EntryId) -> Result<Option<Entry>>;

    /// The id of the entry holding this content (by content hash), if any:
    /// a caller can skip embedding what the index already has.
    fn id_of_content(&mut self, content_hash: &str) -> Result<Option<EntryId>>;

    /// The `k` nearest entries to `query`, nearest first. Approximate (HNSW)
    /// on large sets; see [`EmbeddingIndex::exact_search`].
    fn search(&mut self, query: &[f32], k: usize) -> Result<Vec<Match>>;

    /// The entries within `max_distance` of `query` among its `k` nearest,
    /// nearest first: what a matcher asks for every frame, where most frames
    /// match nothing. A backend may skip reading the farther entries.
    fn search_within(&mut self, query: &[f32], k: usize, max_distance: f64) -> Result<Vec<Match>> {
        let mut hits = self.search(query, k)?;
        hits.retain(|m| m.distance <= max_distance);
        Ok(hits)
    }

    /// The `k` nearest entries by exhaustive comparison.
    fn exact_search(&mut self, query: &[f32], k: usize) -> Result<Vec<Match>>;

    /// Up to `limit` entries with their vectors, in id order, with ids
    /// greater than `after` (None: from the start): a page of an export.
    fn entries_after(&mut self, after: Option<EntryId>, limit: usize) -> Result<Vec<StoredEntry>>;

    /// What the index says about itself.
    fn info(&mut self) -> Result<IndexInfo>;

    /// Embedded: reopens the file when it was replaced since it was opened
    /// (by another process's `add`); returns whether it did. The swap is
    /// atomic: a search sees the old index or the new one. PostgreSQL: always
    /// current, returns false.
    fn reload_if_changed(&mut self) -> Result<bool>;

    /// Inserts every page `next` yields until an empty one (a copy of a
    /// whole set, page by page, as [`copy_entries`] does), with the rules of
    /// [`insert`](Self::insert); `progress` gets the count of new entries
    /// after each page. Returns that count. PostgreSQL: into an empty table,
    /// one bulk load (see [`PG_BULK_LOAD_MIN`]) over all the pages.
    fn insert_all(
        &mut self,
        next: &mut dyn FnMut() -> Result<Vec<StoredEntry>>,
        progress: &mut dyn FnMut(usize),
    ) -> Result<usize> {
        insert_pages(self, next, progress)
    }
}

/// [`EmbeddingIndex::insert_all`] one [`EmbeddingIndex::insert`] per page.
fn insert_pages<I: EmbeddingIndex + ?Sized>(
    index: &mut I,
    next: &mut dyn FnMut() -> Result<Vec<StoredEntry>>,
    progress: &mut dyn FnMut(usize),
) -> Result<usize> {
    let mut copied = 0;
    loop {
        let page = next()?;
        if page.is_empty() {
            return Ok(copied);
        }
        copied += index
            .insert(&page)?
            .iter()
            .filter(|a| matches!(a, Added::New(_)))
            .count();
        progress(copied);
    }
}

/// True when `location` names a PostgreSQL server rather than a file.
pub fn is_postgres_location(location: &str) -> bool {
    location.starts_with("postgresql://") || location.starts_with("postgres://")
}

/// Why `location`, which is not a `postgresql://` URI, cannot be a file
/// path either: another scheme, or a libpq `key=value` connection string
/// (which would otherwise be taken for a file name and shown, password
/// included, in "no index at ...").
fn misplaced_server_address(location: &str) -> Option<&'static str> {
    if is_postgres_location(location) || std::path::Path::new(location).exists() {
        return None;
    }
    if location.contains("://") {
        return Some("only file paths and postgresql:// URIs are index locations");
    }
    let conninfo = location.split_whitespace().any(|word| {
        [
            "host=",
            "hostaddr=",
            "dbname=",
            "user=",
            "password=",
            "port=",
        ]
        .iter()
        .any(|key| word.to_ascii_lowercase().starts_with(key))
    });
    conninfo
        .then_some("a libpq key=value string; give a URI instead: postgresql://USER@HOST:PORT/DB")
}

/// Opens the index at `location`: a `postgresql://` or `postgres://` URI is
/// a [`PostgresIndex`], anything else a file path for an [`EmbeddedIndex`].
///
/// With `identity`, an existing index holding another model's embeddings is
/// [`IndexError::ModelMismatch`], and a missing one is created when
/// `options.create` is set. Without it (maintenance: info, export, remove),
/// the index is opened with its own identity.
pub fn open(
    location: &str,
    identity: Option<&ModelIdentity>,
    options: &IndexOptions,
) -> Result<Box<dyn EmbeddingIndex>> {
    if let Some(reason) = misplaced_server_address(location) {
        return Err(IndexError::InvalidLocation {
            location: redact(location),
            reason: reason.into(),
        });
    }
    if is_postgres_location(location) {
        Ok(Box::new(PostgresIndex::open(location, identity, options)?))
    } else {
        Ok(Box::new(EmbeddedIndex::open(
            location.as_ref(),
            identity,
            options,
        )?))
    }
}

/// Copies every entry of `from` into `to` (export/import between backends),
/// `batch` entries at a time, keeping ids, labels, sources and times.
/// `progress` is called with the number copied so far. Returns the number
/// of entries copied (content already in `to` is skipped and not counted).
pub fn copy_entries(
    from: &mut dyn EmbeddingIndex,
    to: &mut dyn EmbeddingIndex,
    batch: usize,
    mut progress: impl FnMut(usize),
) -> Result<usize> {
    if from.identity() != to.identity() {
        return Err(IndexError::ModelMismatch {
            location: to.info()?.location,
            index: Box::new(to.identity().clone()),
            caller: Box::new(from.identity().clone()),
        });
    }
    let mut after = None;
    let mut next = || -> Result<Vec<StoredEntry>> {
        let page = from.entries_after(after, batch.max(1))?;
        if let Some(last) = page.last() {
            after = Some(last.entry.id);
        }
        Ok(page)
    };
    to.insert_all(&mut next, &mut progress)
}

pub(crate) fn now_unix_us() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// The location with every password replaced by `***`, for messages, logs,
/// reports and property reads. A PostgreSQL URI is split by the parser
/// that connects ([`PgLocation`]), so what is hidden is exactly what the
/// client uses as the password (a `/`, `?` or `@` in it included); a libpq
/// `key=value` string (refused as a location) has its `password` value
/// hidden, quoted or not; another scheme's URI its user information.
pub fn redact(location: &str) -> String {
    pg_location::redact(location)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_removed_from_locations() {
        assert_eq!(
            redact("postgresql://me:secret@db.example:5432/x"),
            "postgresql://me:***@db.example:5432/x"
        );
        assert_eq!(
            redact("postgresql://postgres:@/postgres?host=/tmp/s"),
            "postgresql://postgres:@/postgres?host=/tmp/s"
        );
        assert_eq!(redact("/data/set.dsindex"), "/data/set.dsindex");
        assert_eq!(
            redact("postgresql://me@db/x?sslmode=require&PassWord=s3cret&x=1"),
            "postgresql://me@db/x?sslmode=require&PassWord=***&x=1"
        );
        assert_eq!(
            redact("postgresql://me:a:b@c@db/x?password=s3cret"),
            "postgresql://me:***@db/x?password=***"
        );
        assert_eq!(
            redact("host=db user=me password=s3cret dbname=x"),
            "host=db user=me password=*** dbname=x"
        );
    }

    #[test]
    fn server_addresses_that_are_not_uris_are_refused_without_their_password() {
        for location in [
            "host=db port=5432 password=s3cret",
            "mysql://me:s3cret@db/x",
        ] {
            let Err(err) = open(location, None, &IndexOptions::default()) else {
                panic!("{location} was opened");
            };
            let text = err.to_string();
            assert!(matches!(err, IndexError::InvalidLocation { .. }), "{text}");
            assert!(!text.contains("s3cret"), "{text}");
        }
    }

    #[test]
    fn locations_pick_the_backend() {
        assert!(is_postgres_location("postgresql://h/db"));
        assert!(is_postgres_location("postgres://h/db"));
        assert!(!is_postgres_location("set.dsindex"));
        assert!(!is_postgres_location("/data/postgresql/set.dsindex"));
    }
}
