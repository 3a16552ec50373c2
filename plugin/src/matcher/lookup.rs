//! The index side of `dreamsimmatch`, without GStreamer: opens the set,
//! checks that the frames' embeddings come from the model it was built
//! with, answers "which known items are within the threshold", follows a
//! file that is replaced while the pipeline runs (checked every
//! [`RELOAD_CHECK_INTERVAL`]), and reconnects to a
//! server that went away, at most once per `retry` interval so a server
//! that is down does not cost every frame a connection attempt.

use std::time::{Duration, Instant};

use dreamsim_index::{self as index, EmbeddingIndex, IndexError, IndexOptions, Match};

/// How often an index file is checked for a replacement. The check is a
/// `stat` of its path: a few microseconds that a job running faster than
/// real time would otherwise pay on every frame (measured in docs/index.md),
/// while a replaced set is still picked up within a twentieth of a second.
pub(crate) const RELOAD_CHECK_INTERVAL: Duration = Duration::from_millis(50);

/// Why a lookup gave no answer.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LookupError {
    /// The index cannot be used with these frames at all: a pipeline must
    /// stop, whatever the failure policy.
    #[error("{0}")]
    Fatal(String),
    /// The index could not be reached or answered too late (a server that
    /// is down or slow); it may work again later.
    #[error("{0}")]
    Unavailable(String),
}

/// An open index, or the knowledge that it could not be opened.
pub(crate) struct Lookup {
    location: String,
    options: IndexOptions,
    index: Option<Box<dyn EmbeddingIndex>>,
    /// Model type and width already checked against the index.
    checked: Option<(String, usize)>,
    /// When the last attempt to (re)open the index failed.
    failed_at: Option<Instant>,
    /// When the index was last checked for a replacement (or opened).
    reload_checked_at: Instant,
    retry: Duration,
}

impl Lookup {
    /// Opens the index at `location`. A missing or unreadable index is an
    /// error here (the element fails to start); a server that cannot be
    /// reached is too, since nothing was ever checked against it.
    pub fn open(location: &str, options: IndexOptions, retry: Duration) -> Result<Self, String> {
        let index = index::open(location, None, &options).map_err(|e| e.to_string())?;
        Ok(Self {
            location: location.to_owned(),
            options,
            index: Some(index),
            checked: None,
            failed_at: None,
            reload_checked_at: Instant::now(),
            retry,
        })
    }

    /// The index's own description of itself, for the log.
    pub fn describe(&mut self) -> String {
        match self.index.as_mut().map(|i| i.info()) {
            Some(Ok(info)) => format!(
                "{} index {} of {} entries, model {}",
                info.backend, info.location, info.len, info.identity
            ),
            Some(Err(e)) => e.to_string(),
            None => "index not open".into(),
        }
    }

    /// The entries within `threshold` of `embedding` among the `k` nearest,
    /// nearest first. `model` and the embedding's width must be those of
    /// the model the index was built with.
    pub fn matches(
        &mut self,
        model: &str,
        embedding: &[f32],
        k: usize,
        threshold: f64,
    ) -> Result<Vec<Match>, LookupError> {
        self.ready()?;
        let dim = embedding.len();
        // Checked once per model, not per frame.
        let known = self.checked.as_ref().map(|(m, d)| (m.as_str(), *d));
        if known != Some((model, dim)) {
            let identity = self.index.as_ref().expect("ready() opened it").identity();
            if !identity.accepts(model, dim) {
                let identity = identity.to_string();
                return Err(LookupError::Fatal(format!(
                    "the frames' embeddings come from model {model} ({dim}-d) but index {} holds \
                     embeddings of {identity}: they cannot be compared; match with the model the \
                     index was built with, or build an index with this one",
                    self.location_for_messages()
                )));
            }
            self.checked = Some((model.to_owned(), dim));
        }
        let index = self.index.as_mut().expect("ready() opened it");
        let mut result = Ok(false);
        if self.reload_checked_at.elapsed() >= RELOAD_CHECK_INTERVAL {
            result = index.reload_if_changed();
            self.reload_checked_at = Instant::now();
        }
        match result.and_then(|_| index.search_within(embedding, k, threshold)) {
            Ok(hits) => Ok(hits),
            Err(e) => Err(self.failed(e)),
        }
    }

    /// The open index, reopening it when an earlier failure closed it and
    /// the retry interval has passed.
    fn ready(&mut self) -> Result<&mut Box<dyn EmbeddingIndex>, LookupError> {
        if self.index.is_none() {
            if let Some(at) = self.failed_at {
                if at.elapsed() < self.retry {
                    return Err(LookupError::Unavailable(format!(
                        "index {} is unavailable; next attempt in {:.1} s",
                        self.location_for_messages(),
                        (self.retry.saturating_sub(at.elapsed())).as_secs_f64()
                    )));
                }
            }
            match index::open(&self.location, None, &self.options) {
                Ok(i) => {
                    self.index = Some(i);
                    self.failed_at = None;
                    self.checked = None;
                    self.reload_checked_at = Instant::now();
                }
                Err(e) => return Err(self.failed(e)),
            }
        }
        Ok(self.index.as_mut().expect("just opened"))
    }

    /// Classifies `e`; a transient failure closes the index, to be
    /// reopened after the retry interval.
    fn failed(&mut self, e: IndexError) -> LookupError {
        if e.is_transient() {
            self.index = None;
            self.failed_at = Some(Instant::now());
            LookupError::Unavailable(e.to_string())
        } else {
            LookupError::Fatal(e.to_string())
        }
    }

    fn location_for_messages(&self) -> String {
        index::redact(&self.location)
    }
}
