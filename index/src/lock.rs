//! Where an index file is written, and the lock that makes its writers take
//! turns.
//!
//! Every change to an embedded index reads the file, builds a new one and
//! renames it over the old. Two processes doing that at once would each
//! rename a file built from the same old one, and the first one's entries
//! would be gone. So a writer holds an advisory lock (`flock(2)`, through
//! `std::fs::File::lock`) on a companion file, `.NAME.lock` beside the index
//! file, from before it reads the file until after its rename: a second
//! writer waits for the lock, then reads the file as the first one left it.
//! Readers take no lock (they map a file that is never written in place).
//! The lock file is created once and never removed: removing it while
//! someone waits on it would let a third writer lock a new one.
//!
//! An index path that is a symbolic link is written through: the new file is
//! renamed over the link's target, in the target's folder, and the lock is
//! the target's, so writers that name the file by different links still take
//! turns.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use super::{IndexError, Result};

/// Symbolic links followed before giving up (Linux's own limit, `ELOOP`).
const MAX_LINKS: usize = 40;

/// The file that `path` names once every symbolic link in its last
/// component is followed (the path itself when it is not a link). The target
/// need not exist: a dangling link names the file a new index is created as.
pub(super) fn write_target(path: &Path) -> Result<PathBuf> {
    let mut current = path.to_owned();
    for _ in 0..MAX_LINKS {
        match std::fs::symlink_metadata(&current) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let target = std::fs::read_link(&current).map_err(|source| IndexError::Io {
                    path: current.clone(),
                    source,
                })?;
                current = match current.parent() {
                    Some(dir) if target.is_relative() => dir.join(target),
                    _ => target,
                };
            }
            _ => return Ok(current),
        }
    }
    Err(IndexError::Io {
        path: path.to_owned(),
        source: std::io::Error::other(format!("more than {MAX_LINKS} symbolic links to follow")),
    })
}

/// The exclusive write lock of one index file, held until dropped.
#[derive(Debug)]
pub(super) struct WriteLock {
    /// The lock file (the lock goes with the open file description).
    _file: File,
    /// The file the index is written to (links followed).
    target: PathBuf,
}

impl WriteLock {
    /// Waits for, then takes, the write lock of the index file `path`.
    pub(super) fn acquire(path: &Path) -> Result<Self> {
        let target = write_target(path)?;
        let lock_path = lock_path(&target);
        let io_err = |source| IndexError::Io {
            path: lock_path.clone(),
            source,
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(io_err)?;
        file.lock().map_err(io_err)?;
        Ok(Self {
            _file: file,
            target,
        })
    }

    /// The file the index is written to: the index path with its links
    /// followed.
    pub(super) fn target(&self) -> &Path {
        &self.target
    }
}

/// `.NAME.lock` beside the index file `target`.
pub(super) fn lock_path(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    target.with_file_name(format!(".{name}.lock"))
}
