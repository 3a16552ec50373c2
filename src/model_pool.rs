//! Loaded models kept while no pipeline uses them, for applications that
//! run many short pipelines one after another (`gst-dreamsim corpus add`:
//! one pipeline per video). Loading the ensemble takes seconds on a CPU,
//! longer where TensorRT deserialises its engines, and is the same work for
//! every video; with the pool on, an element that stops hands its model
//! back, and the next element that asks for the same file with the same
//! options takes it instead of loading it again.
//!
//! Off by default: an application that stops its pipelines expects their
//! memory back, and a model file replaced on disk must be loaded afresh (the
//! key below includes the file's identity, so it is). At most
//! [`MAX_IDLE`] models are kept; the oldest goes first.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use crate::model::{Model, ModelOptions};

/// Idle models kept at most (several workers' worth).
pub const MAX_IDLE: usize = 8;

/// What makes two loads the same: the file (and its int8 sibling, which a
/// load may pick), as they are on disk now, and every option.
#[derive(Debug, Clone, PartialEq)]
struct Key {
    path: PathBuf,
    file: Option<FileIdentity>,
    int8_sibling: Option<FileIdentity>,
    options: ModelOptions,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileIdentity {
    dev: u64,
    ino: u64,
    len: u64,
    mtime_ns: i128,
}

impl FileIdentity {
    fn of(path: &Path) -> Option<Self> {
        let m = std::fs::metadata(path).ok()?;
        Some(Self {
            dev: m.dev(),
            ino: m.ino(),
            len: m.len(),
            mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
        })
    }
}

impl Key {
    fn of(path: &Path, options: &ModelOptions) -> Option<Self> {
        let path = path.canonicalize().ok()?;
        Some(Self {
            file: Some(FileIdentity::of(&path)?),
            int8_sibling: FileIdentity::of(&crate::int8::sibling_path(&path)),
            path,
            options: options.clone(),
        })
    }
}

static ENABLED: AtomicBool = AtomicBool::new(false);
static IDLE: Mutex<Vec<(Key, Model)>> = Mutex::new(Vec::new());

fn idle() -> std::sync::MutexGuard<'static, Vec<(Key, Model)>> {
    // A panic while holding the lock leaves a list that is still valid.
    IDLE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Turns the pool on or off for this process; off drops the idle models.
pub fn keep_idle_models(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
    if !on {
        idle().clear();
    }
}

/// Whether the pool is on.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// An idle model loaded from `path` with `options`, when the pool is on and
/// holds one (the file unchanged since).
pub fn take(path: &Path, options: &ModelOptions) -> Option<Model> {
    if !enabled() {
        return None;
    }
    let key = Key::of(path, options)?;
    let mut idle = idle();
    let at = idle.iter().rposition(|(k, _)| *k == key)?;
    Some(idle.remove(at).1)
}

/// Hands back a model loaded from `path` with `options` when the pool is
/// on (dropped otherwise, or when the file has changed since).
pub fn give_back(path: &Path, options: &ModelOptions, model: Model) {
    if !enabled() {
        return;
    }
    let Some(key) = Key::of(path, options) else {
        return;
    };
    let mut idle = idle();
    // Entries for a file that has changed since can never be taken again.
    idle.retain(|(k, _)| Key::of(&k.path, &k.options).as_ref() == Some(k));
    if idle.len() >= MAX_IDLE {
        idle.remove(0);
    }
    idle.push((key, model));
}

/// Idle models held now.
pub fn idle_count() -> usize {
    idle().len()
}
