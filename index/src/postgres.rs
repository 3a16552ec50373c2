//! The PostgreSQL backend: pgvector `halfvec` column with an HNSW cosine
//! index, for sets shared by many pipelines and updated while they run.
//!
//! Schema, created on first use (`<t>` is [`IndexOptions::pg_table`]):
//!
//! ```sql
//! CREATE EXTENSION IF NOT EXISTS vector;
//! CREATE TABLE <t>_model (singleton boolean PRIMARY KEY, kind text, dim integer, sha256 text, created_at timestamptz);
//! CREATE TABLE <t>_entries (id bigserial PRIMARY KEY, label text, source text /* JSON */,
//!                           content_hash text UNIQUE, added_at timestamptz, embedding halfvec(D));
//! CREATE INDEX <t>_entries_hnsw ON <t>_entries USING hnsw (embedding halfvec_cosine_ops)
//!     WITH (m = <connectivity>, ef_construction = <expansion_add>);
//! ```
//!
//! Every value travels as a bound parameter; the only text spliced into SQL
//! is the table prefix (checked to be `[a-z_][a-z0-9_]*`) and integers.
//!
//! A batch of at least [`PG_BULK_LOAD_MIN`](super::PG_BULK_LOAD_MIN) entries
//! into an **empty** table (a first `add`, an `import`) is a bulk load, as
//! pgvector advises: in one transaction the HNSW index is dropped, the rows
//! go in by binary `COPY`, and the index is built again over all of them
//! (with `maintenance_work_mem` raised, for that transaction only, to what
//! the graph needs, up to 4 GiB, and no statement time limit for the copy
//! and the build). Maintaining the graph row by row costs far more (docs/index.md).
//! Readers of that table wait for the load to commit (their statement time
//! limit applies); they never see a table without its index.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use pgvector::HalfVector;
use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::{ToSql, Type};
use postgres::{Client, Row, Statement, Transaction};

use super::{
    Added, ConnectError, EmbeddingIndex, Entry, EntryId, IndexError, IndexInfo, IndexOptions,
    Match, ModelIdentity, NewEntry, PgLocation, Quantization, Result, Source, StoredEntry,
};

const ENTRY_COLUMNS: &str = "id, label, source, content_hash, added_at";

/// How the HNSW index of a table is built: `IndexOptions::connectivity`
/// and `expansion_add`, as for an embedded file, so that both backends give
/// the same recall at a given `ef_search` (pgvector's own default,
/// ef_construction 64, found 75 % of the sources at a million entries where
/// the embedded graph with 128 found 89 %: docs/index.md).
#[derive(Debug, Clone, Copy)]
struct HnswBuild {
    m: usize,
    ef_construction: usize,
}

impl HnswBuild {
    fn of(options: &IndexOptions) -> Self {
        // pgvector's bounds: m 2-100, ef_construction 4-1000 and at least 2m.
        let m = options.connectivity.clamp(2, 100);
        Self {
            m,
            ef_construction: options.expansion_add.clamp(2 * m, 1000).max(4),
        }
    }
}

/// The HNSW index of an entries table (created with the table, and again
/// after a bulk load).
fn hnsw_index_sql(entries_table: &str, hnsw: HnswBuild) -> String {
    format!(
        "CREATE INDEX IF NOT EXISTS {entries_table}_hnsw ON {entries_table}
         USING hnsw (embedding halfvec_cosine_ops)
         WITH (m = {}, ef_construction = {})",
        hnsw.m, hnsw.ef_construction
    )
}

/// Most `maintenance_work_mem` a bulk load asks for.
const BULK_MAX_WORK_MEM: u64 = 4 << 30;

/// One row of a bulk load.
struct BulkRow<'a> {
    id: i64,
    label: &'a str,
    source: String,
    content_hash: &'a str,
    added_at: SystemTime,
    embedding: &'a [f32],
}

/// What a bulk load needs of the index, copied out of it: the load's
/// transaction borrows the index's client while it runs.
struct BulkTarget {
    location: String,
    table: String,
    dim: usize,
    hnsw: HnswBuild,
}

impl BulkTarget {
    /// Starts a bulk load into the table inside `tx` when it is empty
    /// (see the module docs): locks it, lifts the statement time limit, drops
    /// the HNSW index. Returns false, having changed nothing, when it holds rows.
    fn begin(&self, tx: &mut Transaction<'_>) -> Result<bool> {
        let (location, table) = (self.location.as_str(), self.table.as_str());
        let empty = |tx: &mut Transaction<'_>| -> Result<bool> {
            tx.query_one(&format!("SELECT NOT EXISTS (SELECT 1 FROM {table})"), &[])
                .map(|row| row.get(0))
                .map_err(pg_err(location, "look for existing entries"))
        };
        // Cheap look first, so that a set with entries is not locked for nothing.
        if !empty(tx)? {
            return Ok(false);
        }
        tx.batch_execute(&format!("LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"))
            .map_err(pg_err(location, "lock the entries table"))?;
        if !empty(tx)? {
            return Ok(false);
        }
        // Copying and indexing take as long as the set is large; a time limit
        // meant for one lookup would abort them (the lock above still had it).
        tx.batch_execute("SET LOCAL statement_timeout = 0")
            .map_err(pg_err(location, "lift the statement timeout"))?;
        tx.batch_execute(&format!("DROP INDEX IF EXISTS {table}_hnsw"))
            .map_err(pg_err(location, "drop the HNSW index for a bulk load"))?;
        Ok(true)
    }

    /// Copies `rows` into the table (binary `COPY`), inside a bulk load.
    fn copy_rows(&self, tx: &mut Transaction<'_>, rows: &[BulkRow<'_>]) -> Result<()> {
        let (location, table) = (self.location.as_str(), self.table.as_str());
        let halfvec = tx
            .prepare(&format!("SELECT embedding FROM {table} LIMIT 0"))
            .map_err(pg_err(location, "look up the halfvec type"))?
            .columns()[0]
            .type_()
            .clone();
        let sink = tx
            .copy_in(&format!(
                "COPY {table} (id, label, source, content_hash, added_at, embedding)
             FROM STDIN (FORMAT binary)"
            ))
            .map_err(pg_err(location, "start copying the entries"))?;
        let types = [
            Type::INT8,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::TIMESTAMPTZ,
            halfvec,
        ];
        let mut writer = BinaryCopyInWriter::new(sink, &types);
        for row in rows {
            let vector = HalfVector::from_f32_slice(row.embedding);
            let values: [&(dyn ToSql + Sync); 6] = [
                &row.id,
                &row.label,
                &row.source,
                &row.content_hash,
                &row.added_at,
                &vector,
            ];
            writer
                .write(&values)
                .map_err(pg_err(location, "copy an entry"))?;
        }
        writer
            .finish()
            .map_err(pg_err(location, "copy the entries"))?;
        Ok(())
    }

    /// Ends a bulk load of `count` rows: builds the HNSW index over them.
    fn finish(&self, tx: &mut Transaction<'_>, count: usize) -> Result<()> {
        let (location, table, dim, hnsw) = (
            self.location.as_str(),
            self.table.as_str(),
            self.dim,
            self.hnsw,
        );
        // pgvector builds the graph in memory when it fits (much faster): about
        // the vector plus its links per row.
        let wanted = (count as u64 * (dim as u64 * 2 + 1024)).min(BULK_MAX_WORK_MEM);
        let current: i64 = tx
            .query_one(
                "SELECT pg_size_bytes(current_setting('maintenance_work_mem'))",
                &[],
            )
            .map_err(pg_err(location, "read maintenance_work_mem"))?
            .get(0);
        if wanted > current.max(0) as u64 {
            tx.batch_execute(&format!(
                "SET LOCAL maintenance_work_mem = '{}kB'",
                wanted.div_ceil(1024)
            ))
            .map_err(pg_err(location, "raise maintenance_work_mem"))?;
        }
        tx.batch_execute(&hnsw_index_sql(table, hnsw))
            .map_err(pg_err(location, "build the HNSW index"))
    }

    /// Loads `rows` into the table when it is empty: [`begin`](Self::begin),
    /// [`copy_rows`](Self::copy_rows), [`finish`](Self::finish). Returns false,
    /// having changed nothing, when the table holds rows.
    fn load(&self, tx: &mut Transaction<'_>, rows: &[BulkRow<'_>]) -> Result<bool> {
        if !self.begin(tx)? {
            return Ok(false);
        }
        self.copy_rows(tx, rows)?;
        self.finish(tx, rows.len())?;
        Ok(true)
    }

    /// Moves the id sequence past `max_id`, the largest id given to rows that
    /// came with their ids (an import), so that later adds do not reuse them.
    fn advance_ids(&self, tx: &mut Transaction<'_>, max_id: i64) -> Result<()> {
        tx.execute(
            "SELECT setval(pg_get_serial_sequence($1, 'id'),
                       GREATEST($2, nextval(pg_get_serial_sequence($1, 'id'))))",
            &[&self.table, &max_id],
        )
        .map_err(pg_err(&self.location, "advance the id sequence"))?;
        Ok(())
    }
}

fn bulk_row(e: &StoredEntry) -> BulkRow<'_> {
    BulkRow {
        id: e.entry.id as i64,
        label: &e.entry.label,
        source: serde_json::to_string(&e.entry.source).expect("a source serialises to JSON"),
        content_hash: &e.entry.content_hash,
        added_at: to_system_time(e.entry.added_unix_us),
        embedding: &e.embedding,
    }
}

/// A set of embeddings in PostgreSQL with pgvector.
pub struct PostgresIndex {
    client: Client,
    location: String,
    identity: ModelIdentity,
    model_table: String,
    entries_table: String,
    search: Statement,
    /// What to connect to again after a lost connection (holds the password).
    server: PgLocation,
    statement_timeout: Duration,
    ef_search: usize,
    hnsw: HnswBuild,
}

impl std::fmt::Debug for PostgresIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresIndex")
            .field("location", &self.location)
            .field("table", &self.entries_table)
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

fn pg_err(location: &str, action: &'static str) -> impl FnOnce(postgres::Error) -> IndexError {
    let location = location.to_owned();
    move |source| IndexError::Postgres {
        location,
        action,
        source,
    }
}

fn valid_table_prefix(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z' | '_'))
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'))
        && name.len() <= 48
}

fn to_system_time(us: i64) -> SystemTime {
    if us >= 0 {
        SystemTime::UNIX_EPOCH + Duration::from_micros(us as u64)
    } else {
        SystemTime::UNIX_EPOCH - Duration::from_micros(us.unsigned_abs())
    }
}

fn to_unix_us(t: SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => d.as_micros() as i64,
        Err(e) => -(e.duration().as_micros() as i64),
    }
}

/// Connects (with TLS as the location's `sslmode` asks) and sets the
/// statement time limit.
fn connect(server: &PgLocation, statement_timeout: Duration) -> Result<Client> {
    let shown = server.shown();
    let mut client = server.connect().map_err(|e| match e {
        // A refused certificate stays refused however often it is tried:
        // an error of the location's TLS settings, not a transient one (a
        // pipeline with on-error=pass would otherwise retry it forever).
        ConnectError::Postgres(source) => match certificate_refused(&source) {
            Some(why) => IndexError::InvalidLocation {
                location: shown.to_owned(),
                reason: format!(
                    "the server's TLS certificate is refused ({why}): give the CA that signed \
                     it with sslrootcert=FILE (PEM), connect by the name the certificate \
                     carries (verify-full), or ask the server's administrator for a valid \
                     certificate"
                ),
            },
            None => pg_err(shown, "connect")(source),
        },
        ConnectError::Tls(reason) => IndexError::InvalidLocation {
            location: shown.to_owned(),
            reason,
        },
    })?;
    client
        .batch_execute(&format!(
            "SET statement_timeout = {}",
            statement_timeout.as_millis().max(1)
        ))
        .map_err(pg_err(shown, "set the statement timeout"))?;
    Ok(client)
}

/// Why the TLS handshake refused the server, when `e` is that: OpenSSL's
/// verdict (`certificate verify failed`, with the reason postgres-openssl
/// adds), as opposed to the connection breaking during the handshake (an
/// I/O error, which may pass).
fn certificate_refused(e: &postgres::Error) -> Option<String> {
    let mut source = std::error::Error::source(e);
    let mut outer = None;
    while let Some(s) = source {
        if let Some(ssl) = s.downcast_ref::<openssl::ssl::Error>() {
            if ssl.code() == openssl::ssl::ErrorCode::SSL {
                // postgres-openssl's wrapper adds the verification result.
                return Some(outer.unwrap_or_else(|| ssl.to_string()));
            }
            return None;
        }
        outer = Some(s.to_string());
        source = s.source();
    }
    None
}

/// True when `e` means the session is gone: the connection closed, or the
/// server ended it (class 57P: shutting down, restarting, terminated by
/// an administrator) or it broke (class 08).
fn session_lost(e: &postgres::Error) -> bool {
    e.is_closed()
        || e.code()
            .is_some_and(|code| code.code().starts_with("57P") || code.code().starts_with("08"))
}

fn read_identity(client: &mut Client, shown: &str, model_table: &str) -> Result<ModelIdentity> {
    let row = client
        .query_opt(&format!("SELECT kind, dim, sha256 FROM {model_table}"), &[])
        .map_err(pg_err(shown, "read the model identity"))?
        .ok_or_else(|| IndexError::NotFound {
            location: shown.to_owned(),
        })?;
    Ok(ModelIdentity {
        kind: row.get(0),
        dim: row.get::<_, i32>(1) as usize,
        sha256: row.get(2),
    })
}

/// Session settings and the prepared search of a new connection.
fn prepare_session(
    client: &mut Client,
    shown: &str,
    ef_search: usize,
    entries_table: &str,
) -> Result<Statement> {
    // The search must go through the HNSW index. PostgreSQL's generic plan
    // for the prepared search (LIMIT a parameter), and its custom plan once
    // hnsw.ef_search is large (256 at 100k rows), is a parallel sequential
    // scan and sort instead: 600 ms at 100k rows against under a millisecond
    // through the index (docs/index.md). `exact_search` turns this back.
    client
        .batch_execute(&format!(
            "SET hnsw.ef_search = {}; SET plan_cache_mode = force_custom_plan;
             SET enable_seqscan = off",
            ef_search.max(1)
        ))
        .map_err(pg_err(shown, "set hnsw.ef_search"))?;
    client
        .prepare(&format!(
            "SELECT {ENTRY_COLUMNS}, (embedding <=> $1)::float8 FROM {entries_table}
             ORDER BY embedding <=> $1 LIMIT $2"
        ))
        .map_err(pg_err(shown, "prepare the search"))
}

impl PostgresIndex {
    /// Connects to the server at `location` (a `postgresql://` URI; a
    /// `host=/path` parameter names a Unix socket folder) and opens the set
    /// in tables `<options.pg_table>_*` (see [`super::open`] for `identity`
    /// and `options.create`).
    pub fn open(
        location: &str,
        identity: Option<&ModelIdentity>,
        options: &IndexOptions,
    ) -> Result<Self> {
        let mut server = PgLocation::parse(location)?;
        let shown = server.shown().to_owned();
        let table = options.pg_table.as_str();
        if !valid_table_prefix(table) {
            return Err(IndexError::InvalidLocation {
                location: shown,
                reason: format!(
                    "table prefix {table:?} must be lowercase letters, digits and _ (at most 48)"
                ),
            });
        }
        let config = server.config_mut();
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(options.pg_connect_timeout);
        }
        // A server that vanishes mid-query must not hold the caller forever:
        // unacknowledged TCP data times out (the statement timeout below
        // covers a server that is up but slow).
        config.tcp_user_timeout(options.pg_statement_timeout + options.pg_connect_timeout);
        if config.get_application_name().is_none() {
            config.application_name("gst-dreamsim");
        }
        let mut client = connect(&server, options.pg_statement_timeout)?;

        let model_table = format!("{table}_model");
        let entries_table = format!("{table}_entries");
        let exists: bool = client
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&model_table])
            .map_err(pg_err(&shown, "look for the index tables"))?
            .get(0);
        if !exists {
            if !options.create {
                return Err(IndexError::NotFound { location: shown });
            }
            let identity = identity.ok_or_else(|| IndexError::NeedsIdentity {
                location: shown.clone(),
            })?;
            let mut tx = client
                .transaction()
                .map_err(pg_err(&shown, "begin a transaction"))?;
            tx.batch_execute(&format!(
                "CREATE EXTENSION IF NOT EXISTS vector;
                 CREATE TABLE IF NOT EXISTS {model_table} (
                     singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
                     kind text NOT NULL,
                     dim integer NOT NULL,
                     sha256 text NOT NULL,
                     created_at timestamptz NOT NULL DEFAULT now());
                 CREATE TABLE IF NOT EXISTS {entries_table} (
                     id bigserial PRIMARY KEY,
                     label text NOT NULL,
                     source text NOT NULL,
                     content_hash text NOT NULL UNIQUE,
                     added_at timestamptz NOT NULL,
                     embedding halfvec({dim}) NOT NULL);
                 {hnsw};",
                dim = identity.dim,
                hnsw = hnsw_index_sql(&entries_table, HnswBuild::of(options)),
            ))
            .map_err(pg_err(&shown, "create the index tables"))?;
            tx.execute(
                &format!(
                    "INSERT INTO {model_table} (kind, dim, sha256) VALUES ($1, $2, $3)
                     ON CONFLICT DO NOTHING"
                ),
                &[&identity.kind, &(identity.dim as i32), &identity.sha256],
            )
            .map_err(pg_err(&shown, "record the model identity"))?;
            tx.commit()
                .map_err(pg_err(&shown, "create the index tables"))?;
        }
        let stored = read_identity(&mut client, &shown, &model_table)?;
        if let Some(identity) = identity {
            if *identity != stored {
                return Err(IndexError::ModelMismatch {
                    location: shown,
                    index: Box::new(stored),
                    caller: Box::new(identity.clone()),
                });
            }
        }
        let search = prepare_session(&mut client, &shown, options.ef_search, &entries_table)?;
        Ok(Self {
            client,
            location: shown,
            identity: stored,
            model_table,
            entries_table,
            search,
            server,
            statement_timeout: options.pg_statement_timeout,
            ef_search: options.ef_search,
            hnsw: HnswBuild::of(options),
        })
    }

    /// After a lost connection (server restarted, connection killed), the
    /// call that met it failed with a transient error; the next one
    /// reconnects here, within the connect time limit, and checks that the
    /// set still holds this model's embeddings.
    fn ensure_connected(&mut self) -> Result<()> {
        if !self.client.is_closed() {
            return Ok(());
        }
        self.reconnect()
    }

    /// Runs `op`; when it fails because the session was lost (the server
    /// restarted, or ended the session, since the last call: the client
    /// learns it only by using the connection), reconnects once and runs it
    /// again, so that a restart already over costs no lookup. Only for
    /// reads: a write whose commit was not acknowledged is the caller's to
    /// retry.
    fn read_retrying<T>(&mut self, mut op: impl FnMut(&mut Self) -> Result<T>) -> Result<T> {
        self.ensure_connected()?;
        match op(self) {
            Err(IndexError::Postgres { source, .. }) if session_lost(&source) => {
                self.reconnect()?;
                op(self)
            }
            other => other,
        }
    }

    /// A new session (see [`Self::ensure_connected`]).
    fn reconnect(&mut self) -> Result<()> {
        let mut client = connect(&self.server, self.statement_timeout)?;
        let stored = read_identity(&mut client, &self.location, &self.model_table)?;
        if stored != self.identity {
            return Err(IndexError::ModelMismatch {
                location: self.location.clone(),
                index: Box::new(stored),
                caller: Box::new(self.identity.clone()),
            });
        }
        self.search = prepare_session(
            &mut client,
            &self.location,
            self.ef_search,
            &self.entries_table,
        )?;
        self.client = client;
        Ok(())
    }

    fn bulk_target(&self) -> BulkTarget {
        BulkTarget {
            location: self.location.clone(),
            table: self.entries_table.clone(),
            dim: self.identity.dim,
            hnsw: self.hnsw,
        }
    }

    /// `add` of a large batch into an empty table, as a bulk load; None
    /// (nothing changed) when the table has entries.
    fn bulk_add(
        &mut self,
        entries: &[NewEntry<'_>],
        now: SystemTime,
    ) -> Result<Option<Vec<Added>>> {
        let bulk = self.bulk_target();
        let mut tx = self
            .client
            .transaction()
            .map_err(pg_err(&bulk.location, "begin a transaction"))?;
        // The same content twice in the batch is one entry, as row by row:
        // per entry, its row among the unique ones and whether it is the first.
        let mut first: std::collections::HashMap<&str, usize> = Default::default();
        let mut unique: Vec<&NewEntry<'_>> = Vec::new();
        let slots: Vec<(usize, bool)> = entries
            .iter()
            .map(|e| match first.get(e.content_hash.as_str()) {
                Some(&j) => (j, false),
                None => {
                    first.insert(&e.content_hash, unique.len());
                    unique.push(e);
                    (unique.len() - 1, true)
                }
            })
            .collect();
        let ids: Vec<i64> = tx
            .query(
                "SELECT nextval(pg_get_serial_sequence($1, 'id')) FROM generate_series(1::bigint, $2)",
                &[&bulk.table, &(unique.len() as i64)],
            )
            .map_err(pg_err(&bulk.location, "assign ids"))?
            .iter()
            .map(|row| row.get(0))
            .collect();
        let rows: Vec<BulkRow<'_>> = unique
            .iter()
            .zip(&ids)
            .map(|(e, &id)| BulkRow {
                id,
                label: &e.label,
                source: serde_json::to_string(&e.source).expect("a source serialises to JSON"),
                content_hash: &e.content_hash,
                added_at: now,
                embedding: e.embedding,
            })
            .collect();
        if !bulk.load(&mut tx, &rows)? {
            // Rolled back on drop: the ids drawn are skipped, as after a failed insert.
            return Ok(None);
        }
        tx.commit()
            .map_err(pg_err(&bulk.location, "commit the entries"))?;
        Ok(Some(
            slots
                .iter()
                .map(|&(j, new)| {
                    let id = ids[j] as EntryId;
                    if new {
                        Added::New(id)
                    } else {
                        Added::Existing(id)
                    }
                })
                .collect(),
        ))
    }

    /// `insert` (ids given; duplicates already refused) of a large batch into
    /// an empty table, as a bulk load; None when the table has entries.
    fn bulk_insert(&mut self, entries: &[StoredEntry]) -> Result<Option<Vec<Added>>> {
        let bulk = self.bulk_target();
        let mut tx = self
            .client
            .transaction()
            .map_err(pg_err(&bulk.location, "begin a transaction"))?;
        let mut first: std::collections::HashMap<&str, EntryId> = Default::default();
        let mut outcomes = Vec::with_capacity(entries.len());
        let mut rows = Vec::with_capacity(entries.len());
        for e in entries {
            if let Some(&id) = first.get(e.entry.content_hash.as_str()) {
                outcomes.push(Added::Existing(id));
                continue;
            }
            first.insert(&e.entry.content_hash, e.entry.id);
            outcomes.push(Added::New(e.entry.id));
            rows.push(bulk_row(e));
        }
        if !bulk.load(&mut tx, &rows)? {
            return Ok(None);
        }
        let max_id = rows.iter().map(|r| r.id).max().unwrap_or(0);
        bulk.advance_ids(&mut tx, max_id)?;
        tx.commit()
            .map_err(pg_err(&bulk.location, "commit the entries"))?;
        Ok(Some(outcomes))
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

    fn entry_from_row(&self, row: &Row) -> Result<Entry> {
        let source: String = row.get(2);
        let source: Source = serde_json::from_str(&source).map_err(|e| IndexError::Corrupt {
            path: PathBuf::from(&self.location),
            what: format!(
                "entry {} has an unreadable source: {e}",
                row.get::<_, i64>(0)
            ),
        })?;
        Ok(Entry {
            id: row.get::<_, i64>(0) as EntryId,
            label: row.get(1),
            source,
            content_hash: row.get(3),
            added_unix_us: to_unix_us(row.get(4)),
        })
    }

    fn matches(&self, rows: &[Row]) -> Result<Vec<Match>> {
        rows.iter()
            .map(|row| {
                Ok(Match {
                    entry: self.entry_from_row(row)?,
                    distance: row.get(5),
                })
            })
            .collect()
    }
}

impl EmbeddingIndex for PostgresIndex {
    fn backend(&self) -> &'static str {
        "postgresql"
    }

    fn identity(&self) -> &ModelIdentity {
        &self.identity
    }

    fn len(&mut self) -> Result<usize> {
        self.ensure_connected()?;
        let n: i64 = self
            .client
            .query_one(&format!("SELECT count(*) FROM {}", self.entries_table), &[])
            .map_err(pg_err(&self.location, "count entries"))?
            .get(0);
        Ok(n as usize)
    }

    fn add(&mut self, entries: &[NewEntry<'_>]) -> Result<Vec<Added>> {
        self.ensure_connected()?;
        for e in entries {
            self.check_dim(e.embedding)?;
        }
        let location = self.location.clone();
        let now = SystemTime::now();
        if entries.len() >= super::PG_BULK_LOAD_MIN {
            if let Some(outcomes) = self.bulk_add(entries, now)? {
                return Ok(outcomes);
            }
        }
        let table = &self.entries_table;
        let mut tx = self
            .client
            .transaction()
            .map_err(pg_err(&location, "begin a transaction"))?;
        let insert = tx
            .prepare(&format!(
                "INSERT INTO {table} (label, source, content_hash, added_at, embedding)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (content_hash) DO NOTHING RETURNING id"
            ))
            .map_err(pg_err(&location, "prepare the insert"))?;
        let existing = tx
            .prepare(&format!("SELECT id FROM {table} WHERE content_hash = $1"))
            .map_err(pg_err(&location, "prepare the insert"))?;
        let mut outcomes = Vec::with_capacity(entries.len());
        for e in entries {
            let source = serde_json::to_string(&e.source).expect("a source serialises to JSON");
            let vector = HalfVector::from_f32_slice(e.embedding);
            let row = tx
                .query_opt(
                    &insert,
                    &[&e.label, &source, &e.content_hash, &now, &vector],
                )
                .map_err(pg_err(&location, "add an entry"))?;
            outcomes.push(match row {
                Some(row) => Added::New(row.get::<_, i64>(0) as EntryId),
                None => Added::Existing(
                    tx.query_one(&existing, &[&e.content_hash])
                        .map_err(pg_err(&location, "find an existing entry"))?
                        .get::<_, i64>(0) as EntryId,
                ),
            });
        }
        tx.commit()
            .map_err(pg_err(&location, "commit the entries"))?;
        Ok(outcomes)
    }

    fn insert(&mut self, entries: &[StoredEntry]) -> Result<Vec<Added>> {
        self.ensure_connected()?;
        let mut ids = HashSet::with_capacity(entries.len());
        for e in entries {
            self.check_dim(&e.embedding)?;
            if !ids.insert(e.entry.id) {
                return Err(IndexError::DuplicateId {
                    location: self.location.clone(),
                    id: e.entry.id,
                });
            }
        }
        let location = self.location.clone();
        if entries.len() >= super::PG_BULK_LOAD_MIN {
            if let Some(outcomes) = self.bulk_insert(entries)? {
                return Ok(outcomes);
            }
        }
        let table = &self.entries_table;
        let mut tx = self
            .client
            .transaction()
            .map_err(pg_err(&location, "begin a transaction"))?;
        let wanted: Vec<i64> = ids.iter().map(|&id| id as i64).collect();
        if let Some(row) = tx
            .query_opt(
                &format!("SELECT id FROM {table} WHERE id = ANY($1) ORDER BY id LIMIT 1"),
                &[&wanted],
            )
            .map_err(pg_err(&location, "check ids"))?
        {
            return Err(IndexError::DuplicateId {
                location,
                id: row.get::<_, i64>(0) as EntryId,
            });
        }
        let insert = tx
            .prepare(&format!(
                "INSERT INTO {table} (id, label, source, content_hash, added_at, embedding)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (content_hash) DO NOTHING
                 RETURNING id"
            ))
            .map_err(pg_err(&location, "prepare the insert"))?;
        let existing = tx
            .prepare(&format!("SELECT id FROM {table} WHERE content_hash = $1"))
            .map_err(pg_err(&location, "prepare the insert"))?;
        let mut outcomes = Vec::with_capacity(entries.len());
        let mut max_id = 0i64;
        for e in entries {
            let id = e.entry.id as i64;
            let source =
                serde_json::to_string(&e.entry.source).expect("a source serialises to JSON");
            let vector = HalfVector::from_f32_slice(&e.embedding);
            let added = to_system_time(e.entry.added_unix_us);
            let row = tx
                .query_opt(
                    &insert,
                    &[
                        &id,
                        &e.entry.label,
                        &source,
                        &e.entry.content_hash,
                        &added,
                        &vector,
                    ],
                )
                .map_err(pg_err(&location, "insert an entry"))?;
            outcomes.push(match row {
                Some(_) => {
                    max_id = max_id.max(id);
                    Added::New(e.entry.id)
                }
                None => Added::Existing(
                    tx.query_one(&existing, &[&e.entry.content_hash])
                        .map_err(pg_err(&location, "find an existing entry"))?
                        .get::<_, i64>(0) as EntryId,
                ),
            });
        }
        // Ids assigned later must not collide with the imported ones, and
        // the sequence never goes back (removed ids are not reused).
        tx.execute(
            "SELECT setval(pg_get_serial_sequence($1, 'id'),
                           GREATEST($2, nextval(pg_get_serial_sequence($1, 'id'))))",
            &[table, &max_id],
        )
        .map_err(pg_err(&location, "advance the id sequence"))?;
        tx.commit()
            .map_err(pg_err(&location, "commit the entries"))?;
        Ok(outcomes)
    }

    fn remove(&mut self, ids: &[EntryId]) -> Result<usize> {
        self.ensure_connected()?;
        let ids: Vec<i64> = ids.iter().map(|&id| id as i64).collect();
        let n = self
            .client
            .execute(
                &format!("DELETE FROM {} WHERE id = ANY($1)", self.entries_table),
                &[&ids],
            )
            .map_err(pg_err(&self.location, "remove entries"))?;
        Ok(n as usize)
    }

    fn get(&mut self, id: EntryId) -> Result<Option<Entry>> {
        self.ensure_connected()?;
        let row = self
            .client
            .query_opt(
                &format!(
                    "SELECT {ENTRY_COLUMNS} FROM {} WHERE id = $1",
                    self.entries_table
                ),
                &[&(id as i64)],
            )
            .map_err(pg_err(&self.location, "read an entry"))?;
        row.map(|r| self.entry_from_row(&r)).transpose()
    }

    fn id_of_content(&mut self, content_hash: &str) -> Result<Option<EntryId>> {
        self.ensure_connected()?;
        let row = self
            .client
            .query_opt(
                &format!(
                    "SELECT id FROM {} WHERE content_hash = $1",
                    self.entries_table
                ),
                &[&content_hash],
            )
            .map_err(pg_err(&self.location, "look up a content hash"))?;
        Ok(row.map(|r| r.get::<_, i64>(0) as EntryId))
    }

    fn search(&mut self, query: &[f32], k: usize) -> Result<Vec<Match>> {
        self.check_dim(query)?;
        if k == 0 {
            return Ok(Vec::new());
        }
        let vector = HalfVector::from_f32_slice(query);
        let rows = self.read_retrying(|this| {
            this.client
                .query(&this.search, &[&vector, &(k as i64)])
                .map_err(pg_err(&this.location, "search"))
        })?;
        self.matches(&rows)
    }

    fn exact_search(&mut self, query: &[f32], k: usize) -> Result<Vec<Match>> {
        self.ensure_connected()?;
        self.check_dim(query)?;
        if k == 0 {
            return Ok(Vec::new());
        }
        let vector = HalfVector::from_f32_slice(query);
        let location = self.location.clone();
        let mut tx = self
            .client
            .transaction()
            .map_err(pg_err(&location, "begin a transaction"))?;
        tx.batch_execute(
            "SET LOCAL enable_indexscan = off; SET LOCAL enable_bitmapscan = off;
             SET LOCAL enable_seqscan = on",
        )
        .map_err(pg_err(&location, "turn the index off"))?;
        let rows = tx
            .query(&self.search, &[&vector, &(k as i64)])
            .map_err(pg_err(&location, "search exhaustively"))?;
        tx.commit()
            .map_err(pg_err(&location, "search exhaustively"))?;
        self.matches(&rows)
    }

    fn entries_after(&mut self, after: Option<EntryId>, limit: usize) -> Result<Vec<StoredEntry>> {
        self.ensure_connected()?;
        let after = after.map_or(-1, |id| id as i64);
        let rows = self
            .client
            .query(
                &format!(
                    "SELECT {ENTRY_COLUMNS}, embedding FROM {} WHERE id > $1 ORDER BY id LIMIT $2",
                    self.entries_table
                ),
                &[&after, &(limit as i64)],
            )
            .map_err(pg_err(&self.location, "read entries"))?;
        rows.iter()
            .map(|row| {
                let vector: HalfVector = row.get(5);
                Ok(StoredEntry {
                    entry: self.entry_from_row(row)?,
                    embedding: vector.as_slice().iter().map(|h| h.to_f32()).collect(),
                })
            })
            .collect()
    }

    fn info(&mut self) -> Result<IndexInfo> {
        let len = self.len()?;
        let size: i64 = self
            .client
            .query_one(
                "SELECT pg_total_relation_size($1::text::regclass)",
                &[&self.entries_table],
            )
            .map_err(pg_err(&self.location, "measure the table"))?
            .get(0);
        Ok(IndexInfo {
            backend: "postgresql",
            location: self.location.clone(),
            identity: self.identity.clone(),
            len,
            quantization: Quantization::F16,
            size_bytes: size as u64,
            exact_search_below: None,
            connectivity: None,
        })
    }

    fn insert_all(
        &mut self,
        next: &mut dyn FnMut() -> Result<Vec<StoredEntry>>,
        progress: &mut dyn FnMut(usize),
    ) -> Result<usize> {
        self.ensure_connected()?;
        let bulk = self.bulk_target();
        let mut tx = self
            .client
            .transaction()
            .map_err(pg_err(&bulk.location, "begin a transaction"))?;
        if !bulk.begin(&mut tx)? {
            drop(tx);
            return super::insert_pages(self, next, progress);
        }
        // Across pages, the rules of `insert`: an id twice is refused, the
        // same content twice is one entry.
        let mut ids = HashSet::new();
        let mut hashes = HashSet::new();
        let (mut copied, mut max_id) = (0usize, 0i64);
        loop {
            let page = next()?;
            if page.is_empty() {
                break;
            }
            let mut rows = Vec::with_capacity(page.len());
            for e in &page {
                if e.embedding.len() != bulk.dim {
                    return Err(IndexError::Dimension {
                        location: bulk.location,
                        expected: bulk.dim,
                        found: e.embedding.len(),
                    });
                }
                if !ids.insert(e.entry.id) {
                    return Err(IndexError::DuplicateId {
                        location: bulk.location,
                        id: e.entry.id,
                    });
                }
                if hashes.insert(e.entry.content_hash.clone()) {
                    rows.push(bulk_row(e));
                }
            }
            bulk.copy_rows(&mut tx, &rows)?;
            copied += rows.len();
            max_id = rows.iter().map(|r| r.id).fold(max_id, i64::max);
            progress(copied);
        }
        bulk.finish(&mut tx, copied)?;
        bulk.advance_ids(&mut tx, max_id)?;
        tx.commit()
            .map_err(pg_err(&bulk.location, "commit the entries"))?;
        Ok(copied)
    }

    fn reload_if_changed(&mut self) -> Result<bool> {
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_prefixes_are_plain_identifiers() {
        assert!(valid_table_prefix("dreamsim"));
        assert!(valid_table_prefix("set_2"));
        assert!(!valid_table_prefix("2set"));
        assert!(!valid_table_prefix("Set"));
        assert!(!valid_table_prefix("x; DROP TABLE y"));
        assert!(!valid_table_prefix(""));
    }

    #[test]
    fn times_round_trip_in_microseconds() {
        for us in [0i64, 1, 1_764_000_000_123_456, -5] {
            assert_eq!(to_unix_us(to_system_time(us)), us);
        }
    }
}
