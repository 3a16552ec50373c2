//! The files the tool reads whole that someone else may have written: a
//! labels CSV (`index add --labels`), a manifest (`corpus add --manifest`)
//! and a corpus's list of videos (`INDEX.videos.json`). Each is read only
//! from a regular file, at most a fixed number of bytes, and parsed into
//! checked values, every defect an error that says where and what.
//!
//! The module depends on nothing else of the crate: cli/tests/cli_fuzz.rs
//! includes it (`#[path]`) to run it on mutated files.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// Largest labels CSV read, bytes (a million `path,label` rows of 64 bytes).
pub const MAX_LABELS_BYTES: u64 = 64 << 20;
/// Largest manifest read, bytes (a million paths of 64 bytes).
pub const MAX_MANIFEST_BYTES: u64 = 64 << 20;
/// Largest list of videos read, bytes (about a million records).
pub const MAX_VIDEO_LIST_BYTES: u64 = 256 << 20;

/// Why a file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// A directory, a FIFO, a device...: reading one would fail, block
    /// forever or never end.
    #[error("{0}, not a regular file")]
    NotRegular(&'static str),
    /// Over the cap for this kind of file.
    #[error("larger than the {cap} bytes allowed for {what}")]
    TooLarge { what: &'static str, cap: u64 },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// What a file that is not a regular file is, in words.
pub fn file_kind(t: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_file() {
        "a file"
    } else {
        "not a file"
    }
}

/// `Ok` when `path` (links followed) is a regular file: a FIFO or a
/// device handed to a reader blocks it or never ends.
pub fn check_regular(path: &Path) -> Result<(), ReadError> {
    let kind = std::fs::metadata(path)?.file_type();
    if kind.is_file() {
        Ok(())
    } else {
        Err(ReadError::NotRegular(file_kind(kind)))
    }
}

/// The bytes of the regular file `path` (links followed), at most `cap`
/// of them; `what` names the kind of file in the error.
pub fn read_capped(path: &Path, what: &'static str, cap: u64) -> Result<Vec<u8>, ReadError> {
    // Checked before opening: opening a FIFO blocks until a writer comes.
    check_regular(path)?;
    let file = std::fs::File::open(path)?;
    let meta = file.metadata()?;
    if !meta.file_type().is_file() {
        return Err(ReadError::NotRegular(file_kind(meta.file_type())));
    }
    if meta.len() > cap {
        return Err(ReadError::TooLarge { what, cap });
    }
    // A file that grows while it is read stops at the cap too.
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(cap + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > cap {
        return Err(ReadError::TooLarge { what, cap });
    }
    Ok(bytes)
}

/// A defect in a file's content, with the line it is on (1-based; 0 when
/// it concerns the whole file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: u64,
    pub reason: String,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line > 0 {
            write!(f, "line {}: ", self.line)?;
        }
        f.write_str(&self.reason)
    }
}

impl std::error::Error for ParseError {}

fn at(line: u64, reason: impl Into<String>) -> ParseError {
    ParseError {
        line,
        reason: reason.into(),
    }
}

/// The line (1-based) of byte `offset` of `bytes`.
fn line_of(bytes: &[u8], offset: usize) -> u64 {
    1 + bytes[..offset.min(bytes.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count() as u64
}

// ---- labels CSV

/// A row of a labels CSV.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelRow {
    /// Line where the row starts.
    pub line: u64,
    pub path: String,
    pub label: String,
}

/// `bytes` without a leading UTF-8 byte order mark (spreadsheets save
/// "CSV UTF-8" with one).
fn without_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes)
}

/// The line where a quoted field opens and never closes, reading `bytes`
/// as RFC 4180 CSV (a quote opens a field only at its start, as the csv
/// crate reads it). The csv crate ends such a field at the end of the
/// file: every row after it would become part of one label.
fn unterminated_quote(bytes: &[u8]) -> Option<u64> {
    #[derive(Clone, Copy)]
    enum State {
        FieldStart,
        Unquoted,
        Quoted(usize),
        QuoteInQuoted(usize),
    }
    let mut state = State::FieldStart;
    for (i, &b) in bytes.iter().enumerate() {
        state = match (state, b) {
            (State::FieldStart, b'"') => State::Quoted(i),
            (State::FieldStart | State::Unquoted, b',' | b'\n' | b'\r') => State::FieldStart,
            (State::FieldStart | State::Unquoted, _) => State::Unquoted,
            (State::Quoted(start), b'"') => State::QuoteInQuoted(start),
            (State::Quoted(start), _) => State::Quoted(start),
            (State::QuoteInQuoted(start), b'"') => State::Quoted(start),
            (State::QuoteInQuoted(_), b',' | b'\n' | b'\r') => State::FieldStart,
            (State::QuoteInQuoted(_), _) => State::Unquoted,
        };
    }
    match state {
        State::Quoted(start) => Some(line_of(bytes, start)),
        _ => None,
    }
}

/// The rows of a labels CSV: `path,label` (RFC 4180 quoting, UTF-8, an
/// optional header row `path,label` first). A row with another number of
/// fields, an empty or NUL-holding path, invalid UTF-8 or a quote that
/// never closes is an error naming its line.
pub fn parse_labels(bytes: &[u8]) -> Result<Vec<LabelRow>, ParseError> {
    let bytes = without_bom(bytes);
    if let Some(line) = unterminated_quote(bytes) {
        return Err(at(
            line,
            "a quoted field starts here and is never closed (a quote missing?)",
        ));
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut rows = Vec::new();
    let mut record = csv::StringRecord::new();
    loop {
        // The line after the last row, for an error without a position.
        let next = reader.position().line();
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map_or(next, |p| p.line());
                let reason = match e.kind() {
                    csv::ErrorKind::Utf8 { .. } => "not UTF-8 text".to_owned(),
                    _ => e.to_string(),
                };
                return Err(at(line, reason));
            }
        }
        let line = record.position().map_or(next, |p| p.line());
        if record.len() != 2 {
            return Err(at(
                line,
                format!("{} field(s); each row is path,label", record.len()),
            ));
        }
        let (path, label) = (&record[0], &record[1]);
        if rows.is_empty() && line == 1 && path == "path" && label == "label" {
            continue;
        }
        if path.is_empty() {
            return Err(at(line, "an empty path"));
        }
        if path.contains('\0') {
            return Err(at(line, "a path with a NUL byte"));
        }
        rows.push(LabelRow {
            line,
            path: path.to_owned(),
            label: label.to_owned(),
        });
    }
    Ok(rows)
}

// ---- manifest

/// The paths of a manifest: one per line (UTF-8), surrounding blanks
/// trimmed, empty lines and lines starting with `#` skipped. A NUL byte
/// or invalid UTF-8 is an error naming its line.
pub fn parse_manifest(bytes: &[u8]) -> Result<Vec<String>, ParseError> {
    let bytes = without_bom(bytes);
    let text = std::str::from_utf8(bytes)
        .map_err(|e| at(line_of(bytes, e.valid_up_to()), "not UTF-8 text"))?;
    let mut paths = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i as u64 + 1;
        let path = line.trim();
        if path.is_empty() || path.starts_with('#') {
            continue;
        }
        if path.contains('\0') {
            return Err(at(line_no, "a path with a NUL byte"));
        }
        paths.push(path.to_owned());
    }
    Ok(paths)
}

// ---- the corpus's list of videos

/// A complete video of the corpus.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VideoRecord {
    /// sha256 of the file: the video's id and content hash.
    pub id: String,
    /// Its path, as given to `corpus add`.
    pub path: String,
    /// Duration in nanoseconds (end of its last frame).
    pub duration_ns: u64,
    /// Sampled frames stored in the index.
    pub frames: usize,
}

/// The list file's content.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListFile {
    /// Records by id.
    pub videos: BTreeMap<String, VideoRecord>,
}

/// Whether `id` is a sha256 as `corpus add` writes it: 64 lowercase hex
/// digits.
pub fn is_sha256(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Why `path`, as recorded by `corpus add`, is not one it would record:
/// it records local paths of files it read (never a URI, never empty).
pub fn recorded_path_problem(path: &str) -> Option<&'static str> {
    if path.is_empty() {
        Some("an empty path")
    } else if path.contains('\0') {
        Some("a path with a NUL byte")
    } else if path.contains("://") {
        Some("a URI, not a local path (corpus add records local files only)")
    } else {
        None
    }
}

/// A corpus's list of videos, checked: JSON of the layout `corpus add`
/// writes, every record under its own id, ids that are sha256s, paths that
/// are local paths, frame counts the index can hold.
pub fn parse_video_list(bytes: &[u8]) -> Result<ListFile, ParseError> {
    let list: ListFile = serde_json::from_slice(bytes)
        .map_err(|e| at(e.line() as u64, format!("not a corpus list of videos: {e}")))?;
    for (key, v) in &list.videos {
        let bad = |reason: String| at(0, format!("video {key:?}: {reason}"));
        if key != &v.id {
            return Err(bad(format!("recorded under another id ({:?})", v.id)));
        }
        if !is_sha256(key) {
            return Err(bad("the id is not a sha256 (64 hex digits)".into()));
        }
        if let Some(problem) = recorded_path_problem(&v.path) {
            return Err(bad(format!("path {:?}: {problem}", v.path)));
        }
        if v.frames == 0 || v.frames > u32::MAX as usize {
            return Err(bad(format!("{} frames", v.frames)));
        }
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unterminated_quote_is_an_error_not_a_swallowed_file() {
        let csv = b"a.png,one\n\"b.png,two\nc.png,three\nd.png,four\n";
        let e = parse_labels(csv).unwrap_err();
        assert_eq!(e.line, 2, "{e}");
        let ok = parse_labels(b"path,label\n\"a, b.png\",\"x \"\"y\"\"\"\nc.png,\n").unwrap();
        assert_eq!(ok.len(), 2);
        assert_eq!(ok[0].path, "a, b.png");
        assert_eq!(ok[0].label, "x \"y\"");
        assert_eq!(ok[1].line, 3);
    }

    #[test]
    fn labels_rows_are_checked() {
        assert_eq!(parse_labels(b"a.png\n").unwrap_err().line, 1);
        assert_eq!(parse_labels(b"a,b\n,c\n").unwrap_err().line, 2);
        assert_eq!(parse_labels(b"a,b\nc,\xff\n").unwrap_err().line, 2);
        assert!(parse_labels(b"").unwrap().is_empty());
        // A spreadsheet's byte order mark: the header is still the header.
        let rows = parse_labels(b"\xef\xbb\xbfpath,label\na.png,x\n").unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].path, "a.png");
    }

    #[test]
    fn manifests_and_video_lists_are_checked() {
        assert_eq!(
            parse_manifest(b"# c\n\n a.mp4 \r\nb.mp4").unwrap(),
            ["a.mp4", "b.mp4"]
        );
        assert_eq!(parse_manifest(b"a\nb\xff\n").unwrap_err().line, 2);
        let id = "a".repeat(64);
        let good = format!(
            r#"{{"videos":{{"{id}":{{"id":"{id}","path":"v.mp4","duration_ns":1,"frames":2}}}}}}"#
        );
        assert_eq!(parse_video_list(good.as_bytes()).unwrap().videos.len(), 1);
        for bad in [
            good.replace("v.mp4", "http://example.com/v.mp4"),
            good.replace("v.mp4", "file:///etc/passwd"),
            good.replace("\"frames\":2", "\"frames\":0"),
            good.replacen(&id, &"b".repeat(64), 1),
            good.replace(&id, "xyz"),
            good.replace("\"frames\":2", "\"frames\":2,\"uri\":\"x\""),
            "[]".into(),
        ] {
            assert!(parse_video_list(bad.as_bytes()).is_err(), "{bad}");
        }
    }
}
