//! Which model an index's embeddings come from, and content hashes.

use std::collections::HashMap;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{LazyLock, Mutex};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{IndexError, Result};
use dreamsim::ModelInfo;

/// The model whose embeddings an index holds: its DreamSim type, the width
/// of its embeddings and the sha256 of its ONNX file. Two models with the
/// same type and width but other weights are different models.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ModelIdentity {
    /// DreamSim type (`ensemble`, `dino_vitb16`, ...), as in the model's metadata.
    pub kind: String,
    /// Embedding width.
    pub dim: usize,
    /// sha256 of the model file, lowercase hex.
    pub sha256: String,
}

impl ModelIdentity {
    /// The identity of the model file at `path` (hashed once per file
    /// version in this process: see [`file_sha256`]).
    pub fn of_model_file(path: &Path, kind: &str, dim: usize) -> Result<Self> {
        Ok(Self {
            kind: kind.to_owned(),
            dim,
            sha256: file_sha256(path)?,
        })
    }

    /// The identity of a loaded model.
    pub fn of_model(info: &ModelInfo) -> Result<Self> {
        Self::of_model_file(&info.path, &info.kind, info.embedding_dim)
    }

    /// Whether embeddings described only by type and width (as in
    /// `DreamSimMeta`, which does not carry the file's hash) can come from
    /// this model.
    pub fn accepts(&self, kind: &str, dim: usize) -> bool {
        self.kind == kind && self.dim == dim
    }
}

impl fmt::Display for ModelIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let short = self.sha256.get(..12).unwrap_or(&self.sha256);
        write!(f, "{} ({}-d, sha256 {short}…)", self.kind, self.dim)
    }
}

type FileStamp = (PathBuf, u64, Option<SystemTime>);

/// Hashes already computed, by path, size and modification time: a model of
/// a gigabyte is read once per process, not once per index opened.
static SHA256_CACHE: LazyLock<Mutex<HashMap<FileStamp, String>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// sha256 of a file's content, lowercase hex; cached per (path, size,
/// modification time) for the life of the process.
pub fn file_sha256(path: &Path) -> Result<String> {
    let io_err = |source| IndexError::Io {
        path: path.to_owned(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io_err)?;
    let key = (path.to_owned(), meta.len(), meta.modified().ok());
    if let Some(hash) = SHA256_CACHE
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&key)
    {
        return Ok(hash.clone());
    }
    let mut file = std::fs::File::open(path).map_err(io_err)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(io_err)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    let hash = hex(&hasher.finalize());
    SHA256_CACHE
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key, hash.clone());
    Ok(hash)
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_a_file_matches_the_known_digest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("abc");
        std::fs::write(&path, b"abc").unwrap();
        let want = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(file_sha256(&path).unwrap(), want);
        // Cached, and still right the second time.
        assert_eq!(file_sha256(&path).unwrap(), want);
    }

    #[test]
    fn a_missing_model_file_is_an_io_error_naming_it() {
        let err = file_sha256(Path::new("/nonexistent/model.onnx")).unwrap_err();
        assert!(matches!(err, IndexError::Io { .. }));
        assert!(err.to_string().contains("/nonexistent/model.onnx"));
    }

    #[test]
    fn identity_display_is_short() {
        let id = ModelIdentity {
            kind: "ensemble".into(),
            dim: 1792,
            sha256: "0123456789abcdef".repeat(4),
        };
        assert_eq!(id.to_string(), "ensemble (1792-d, sha256 0123456789ab…)");
        assert!(id.accepts("ensemble", 1792));
        assert!(!id.accepts("ensemble", 768));
    }
}
