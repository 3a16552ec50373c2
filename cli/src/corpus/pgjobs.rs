//! The corpus on PostgreSQL: the list of complete videos and the job table
//! that spreads `corpus add` over processes and machines, in tables beside
//! the index's (`<prefix>_corpus_videos`, `<prefix>_corpus_jobs`, prefix
//! `dreamsim` as the index's). The database is the coordinator: a worker
//! claims a pending video with `SELECT ... FOR UPDATE SKIP LOCKED`, so two
//! workers never take the same one; a claim older than the reclaim time (a
//! worker that died) is taken again. Every statement uses bound parameters.

use std::path::Path;
use std::time::Duration;

use dreamsim_index::{ConnectError, IndexError, PgLocation};
use postgres::Client;

use super::store::VideoRecord;
use crate::Error;

/// Table prefix (the index's default).
const PREFIX: &str = dreamsim_index::DEFAULT_PG_TABLE;

fn pg_error(location: &str, action: &str, e: postgres::Error) -> Error {
    Error::Input {
        input: dreamsim_index::redact(location),
        reason: format!(
            "PostgreSQL failed to {action}: {}",
            e.as_db_error()
                .map_or_else(|| e.to_string(), |d| d.message().to_owned())
        ),
    }
}

/// A connection with the corpus tables created.
pub struct PgCorpus {
    client: Client,
    location: String,
}

impl PgCorpus {
    /// Connects to `location` and creates the tables when missing.
    pub fn connect(location: &str) -> Result<Self, Error> {
        // The index's parser: the same TLS settings, the same redaction.
        let mut server = PgLocation::parse(location).map_err(|e| match e {
            IndexError::InvalidLocation { location, reason } => Error::Input {
                input: location,
                reason,
            },
            other => Error::Input {
                input: dreamsim_index::redact(location),
                reason: other.to_string(),
            },
        })?;
        let config = server.config_mut();
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        config.application_name("gst-dreamsim corpus");
        let mut client = server.connect().map_err(|e| match e {
            ConnectError::Postgres(e) => pg_error(location, "connect", e),
            ConnectError::Tls(reason) => Error::Input {
                input: server.shown().to_owned(),
                reason,
            },
        })?;
        // Two processes creating the tables at once: one waits for the other
        // (the statements run in one transaction; the lock lasts until its end).
        client
            .batch_execute(&format!(
                "SELECT pg_advisory_xact_lock(hashtext('{PREFIX}_corpus'));
                 CREATE TABLE IF NOT EXISTS {PREFIX}_corpus_videos (
                     id text PRIMARY KEY, path text NOT NULL,
                     duration_ns bigint NOT NULL, frames bigint NOT NULL,
                     added timestamptz NOT NULL DEFAULT now());
                 CREATE TABLE IF NOT EXISTS {PREFIX}_corpus_jobs (
                     path text PRIMARY KEY,
                     state text NOT NULL DEFAULT 'pending',
                     worker text, claimed_at timestamptz, error text);"
            ))
            .map_err(|e| pg_error(location, "create the corpus tables", e))?;
        Ok(Self {
            client,
            location: location.to_owned(),
        })
    }

    fn err(&self, action: &str) -> impl Fn(postgres::Error) -> Error + '_ {
        let action = action.to_owned();
        move |e| pg_error(&self.location, &action, e)
    }

    /// Every complete video.
    pub fn videos(&mut self) -> Result<Vec<VideoRecord>, Error> {
        let rows = self
            .client
            .query(
                &format!("SELECT id, path, duration_ns, frames FROM {PREFIX}_corpus_videos"),
                &[],
            )
            .map_err(|e| pg_error(&self.location, "read the corpus videos", e))?;
        Ok(rows
            .iter()
            .map(|r| VideoRecord {
                id: r.get(0),
                path: r.get(1),
                duration_ns: r.get::<_, i64>(2) as u64,
                frames: r.get::<_, i64>(3) as usize,
            })
            .collect())
    }

    /// Records a complete video and marks its job done, in one transaction.
    pub fn record(&mut self, video: &VideoRecord) -> Result<(), Error> {
        let location = self.location.clone();
        let e = |a: &str| {
            let a = a.to_owned();
            let l = location.clone();
            move |x| pg_error(&l, &a, x)
        };
        let mut tx = self.client.transaction().map_err(e("begin"))?;
        tx.execute(
            &format!(
                "INSERT INTO {PREFIX}_corpus_videos (id, path, duration_ns, frames)
                 VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING"
            ),
            &[
                &video.id,
                &video.path,
                &(video.duration_ns as i64),
                &(video.frames as i64),
            ],
        )
        .map_err(e("record a video"))?;
        tx.execute(
            &format!(
                "UPDATE {PREFIX}_corpus_jobs SET state = 'done', error = NULL WHERE path = $1"
            ),
            &[&video.path],
        )
        .map_err(e("mark a job done"))?;
        tx.commit().map_err(e("commit"))
    }

    /// Adds jobs for `paths` (those already there keep their state).
    pub fn enqueue(&mut self, paths: &[String]) -> Result<(), Error> {
        let statement = format!(
            "INSERT INTO {PREFIX}_corpus_jobs (path) VALUES ($1) ON CONFLICT (path) DO NOTHING"
        );
        let location = self.location.clone();
        let mut tx = self
            .client
            .transaction()
            .map_err(|e| pg_error(&location, "begin", e))?;
        for p in paths {
            tx.execute(&statement, &[p])
                .map_err(|e| pg_error(&location, "add a job", e))?;
        }
        tx.commit().map_err(|e| pg_error(&location, "commit", e))
    }

    /// Jobs not done yet (pending, running or failed).
    pub fn open_jobs(&mut self) -> Result<usize, Error> {
        let n: i64 = self
            .client
            .query_one(
                &format!("SELECT count(*) FROM {PREFIX}_corpus_jobs WHERE state <> 'done'"),
                &[],
            )
            .map_err(self.err("count the jobs"))?
            .get(0);
        Ok(n as usize)
    }

    /// Claims a pending job (or one claimed more than `reclaim` ago by a
    /// worker that is gone); None when there is none left.
    pub fn claim(&mut self, worker: &str, reclaim: Duration) -> Result<Option<String>, Error> {
        let seconds = reclaim.as_secs_f64();
        let row = self
            .client
            .query_opt(
                &format!(
                    "UPDATE {PREFIX}_corpus_jobs SET state = 'running', worker = $1,
                         claimed_at = now()
                     WHERE path = (
                         SELECT path FROM {PREFIX}_corpus_jobs
                         WHERE state = 'pending'
                            OR (state = 'running'
                                AND claimed_at < now() - make_interval(secs => $2))
                         ORDER BY path LIMIT 1
                         FOR UPDATE SKIP LOCKED)
                     RETURNING path"
                ),
                &[&worker, &seconds],
            )
            .map_err(self.err("claim a job"))?;
        Ok(row.map(|r| r.get(0)))
    }

    /// Marks a job failed, with why.
    pub fn fail(&mut self, path: &str, reason: &str) -> Result<(), Error> {
        self.client
            .execute(
                &format!(
                    "UPDATE {PREFIX}_corpus_jobs SET state = 'failed', error = $2 WHERE path = $1"
                ),
                &[&path, &reason],
            )
            .map_err(self.err("mark a job failed"))?;
        Ok(())
    }

    /// Marks a job done without a new record (its content is already in
    /// the corpus).
    pub fn done(&mut self, path: &str) -> Result<(), Error> {
        self.client
            .execute(
                &format!("UPDATE {PREFIX}_corpus_jobs SET state = 'done' WHERE path = $1"),
                &[&path],
            )
            .map_err(self.err("mark a job done"))?;
        Ok(())
    }

    /// Makes pending again the jobs left running by processes of this
    /// machine that no longer exist (a job killed here is taken again at
    /// once, not after the reclaim time). Workers are `host:pid:n`.
    pub fn release_dead_local(&mut self, host: &str) -> Result<usize, Error> {
        let rows = self
            .client
            .query(
                &format!(
                    "SELECT path, worker FROM {PREFIX}_corpus_jobs
                     WHERE state = 'running' AND starts_with(worker, $1)"
                ),
                &[&format!("{host}:")],
            )
            .map_err(self.err("read the running jobs"))?;
        let mut released = 0;
        for row in rows {
            let (path, worker): (String, String) = (row.get(0), row.get(1));
            let pid = worker.split(':').nth(1).and_then(|p| p.parse::<u32>().ok());
            let alive = pid.is_some_and(|p| Path::new(&format!("/proc/{p}")).exists());
            if !alive {
                released += self
                    .client
                    .execute(
                        &format!(
                            "UPDATE {PREFIX}_corpus_jobs SET state = 'pending'
                             WHERE path = $1 AND state = 'running' AND worker = $2"
                        ),
                        &[&path, &worker],
                    )
                    .map_err(self.err("release a job"))? as usize;
            }
        }
        Ok(released)
    }

    /// Makes failed jobs pending again (a new `corpus add` retries them).
    pub fn retry_failed(&mut self, paths: &[String]) -> Result<(), Error> {
        self.client
            .execute(
                &format!(
                    "UPDATE {PREFIX}_corpus_jobs SET state = 'pending'
                     WHERE state = 'failed' AND path = ANY($1)"
                ),
                &[&paths],
            )
            .map_err(self.err("retry failed jobs"))?;
        Ok(())
    }
}
