//! What `evaluate` is given: files and folders on the command line, or a
//! manifest (CSV with a header row, or JSON Lines) of items with their
//! optional reference, group and id.
//!
//! A manifest is untrusted ([`crate::untrusted`]): read only from a
//! regular file under [`MAX_MANIFEST_BYTES`], every row checked, and a bad
//! row is a usage error (exit status 2) that names its line. Paths in a
//! manifest are relative to its folder.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::index::{kind_in_folder, kind_of_file, Kind};
use crate::untrusted::{self, MAX_MANIFEST_BYTES};
use crate::Error;

/// Most items of one run (every pair of a group is compared).
pub const MAX_ITEMS: usize = 100_000;
/// Largest image file embedded (the engine's own pixel limits apply too).
const MAX_IMAGE_BYTES: u64 = 256 << 20;
/// Largest video file sampled.
const MAX_VIDEO_BYTES: u64 = 64 << 30;

/// One item to evaluate.
#[derive(Debug, Clone)]
pub struct Item {
    /// The id that pairs it with a baseline's item: the manifest's `id`,
    /// else the path as given.
    pub id: String,
    /// The path as given (in a manifest: as written there).
    pub shown: String,
    /// The file to read.
    pub path: PathBuf,
    /// Image or video (by extension).
    pub kind: Kind,
    /// Its reference: (as given, file to read).
    pub reference: Option<(String, PathBuf)>,
    /// Its group (a prompt id...).
    pub group: Option<String>,
}

fn usage(list: &Path, line: u64, reason: impl std::fmt::Display) -> Error {
    Error::Usage(format!("{}: line {line}: {reason}", list.display()))
}

/// Refuses what is not a regular file or is over its kind's size cap.
fn check_item(path: &Path) -> Result<(), String> {
    let max = match kind_of_file(path) {
        Kind::Image => MAX_IMAGE_BYTES,
        Kind::Video => MAX_VIDEO_BYTES,
    };
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!(
            "{}: {}, not a regular file",
            path.display(),
            untrusted::file_kind(meta.file_type())
        ));
    }
    if meta.len() > max {
        return Err(format!(
            "{}: {} bytes, more than the {max} read",
            path.display(),
            meta.len()
        ));
    }
    Ok(())
}

/// The items named on the command line: files as they are, folders walked
/// (images and videos by extension, in name order, hidden files skipped).
pub fn from_arguments(inputs: &[PathBuf]) -> Result<Vec<Item>, Error> {
    let mut items = Vec::new();
    for input in inputs {
        let meta = std::fs::metadata(input).map_err(|source| Error::File {
            path: input.clone(),
            source,
        })?;
        let mut files = Vec::new();
        if meta.is_dir() {
            for entry in walkdir::WalkDir::new(input)
                .follow_links(true)
                .sort_by_file_name()
            {
                let entry = entry.map_err(|e| Error::Input {
                    input: input.display().to_string(),
                    reason: e.to_string(),
                })?;
                let hidden = entry.file_name().to_string_lossy().starts_with('.');
                if entry.file_type().is_file() && !hidden && kind_in_folder(entry.path()).is_some()
                {
                    files.push(entry.into_path());
                }
            }
        } else {
            files.push(input.clone());
        }
        for path in files {
            check_item(&path).map_err(Error::Usage)?;
            let shown = path.display().to_string();
            items.push(Item {
                id: shown.clone(),
                shown,
                kind: kind_of_file(&path),
                path,
                reference: None,
                group: None,
            });
        }
    }
    finish(items, None)
}

/// One row of a manifest, before its paths are resolved.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Row {
    path: String,
    #[serde(default)]
    reference: Option<String>,
    #[serde(default)]
    group: Option<String>,
    #[serde(default)]
    id: Option<String>,
}

/// The manifest's format: JSON Lines by extension (`.jsonl`, `.ndjson`,
/// `.json`) or when its first non-blank byte is `{`; CSV otherwise.
fn is_json_lines(list: &Path, bytes: &[u8]) -> bool {
    let ext = list
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    matches!(ext.as_deref(), Some("jsonl" | "ndjson" | "json"))
        || bytes
            .iter()
            .find(|b| !b.is_ascii_whitespace())
            .is_some_and(|&b| b == b'{')
}

fn json_rows(list: &Path, text: &str) -> Result<Vec<(u64, Row)>, Error> {
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i as u64 + 1;
        if line.trim().is_empty() {
            continue;
        }
        let row: Row = serde_json::from_str(line).map_err(|e| {
            usage(
                list,
                line_no,
                format!("{e} (each line is an object with \"path\" and optional \"reference\", \"group\", \"id\" strings)"),
            )
        })?;
        rows.push((line_no, row));
    }
    Ok(rows)
}

fn csv_rows(list: &Path, text: &str) -> Result<Vec<(u64, Row)>, Error> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| usage(list, 1, e))?
        .iter()
        .map(|h| h.trim().to_ascii_lowercase())
        .collect::<Vec<_>>();
    let column = |name: &str| headers.iter().position(|h| h == name);
    for h in &headers {
        if !["path", "reference", "group", "id"].contains(&h.as_str()) {
            return Err(usage(
                list,
                1,
                format!("unknown column {h:?}; the header names path and optionally reference, group, id"),
            ));
        }
    }
    let path_col = column("path").ok_or_else(|| {
        usage(
            list,
            1,
            "no path column; the first row is a header such as path,reference,group,id",
        )
    })?;
    let (reference, group, id) = (column("reference"), column("group"), column("id"));
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line());
            usage(list, line, e)
        })?;
        let line = record.position().map_or(0, |p| p.line());
        let field = |c: Option<usize>| {
            c.map(|c| record[c].trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        rows.push((
            line,
            Row {
                path: record[path_col].trim().to_owned(),
                reference: field(reference),
                group: field(group),
                id: field(id),
            },
        ));
    }
    Ok(rows)
}

/// The items of a manifest.
pub fn from_manifest(list: &Path) -> Result<Vec<Item>, Error> {
    let bytes = untrusted::read_capped(list, "a manifest", MAX_MANIFEST_BYTES)
        .map_err(|e| Error::Usage(format!("{}: {e}", list.display())))?;
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(&bytes);
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let line = 1 + bytes[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        usage(list, line as u64, "not UTF-8 text")
    })?;
    let rows = if is_json_lines(list, bytes) {
        json_rows(list, text)?
    } else {
        csv_rows(list, text)?
    };
    let folder = list.parent().unwrap_or(Path::new("."));
    let mut items = Vec::with_capacity(rows.len());
    let mut lines = Vec::with_capacity(rows.len());
    for (line, row) in rows {
        let check_path = |p: &str, what: &str| -> Result<PathBuf, Error> {
            if p.is_empty() {
                return Err(usage(list, line, format!("an empty {what}")));
            }
            if p.contains('\0') {
                return Err(usage(list, line, format!("a {what} with a NUL byte")));
            }
            if p.contains("://") {
                return Err(usage(
                    list,
                    line,
                    format!("{what} {p:?}: a URI; give a local file"),
                ));
            }
            let resolved = folder.join(p);
            check_item(&resolved).map_err(|e| usage(list, line, e))?;
            Ok(resolved)
        };
        let path = check_path(&row.path, "path")?;
        let reference = match row.reference {
            Some(r) => Some((r.clone(), check_path(&r, "reference")?)),
            None => None,
        };
        if let Some(g) = &row.group {
            if g.is_empty() || g.contains('\0') {
                return Err(usage(list, line, "an empty group, or one with a NUL byte"));
            }
        }
        let id = row.id.unwrap_or_else(|| row.path.clone());
        if id.is_empty() || id.contains('\0') {
            return Err(usage(list, line, "an empty id, or one with a NUL byte"));
        }
        items.push(Item {
            id,
            kind: kind_of_file(&path),
            shown: row.path,
            path,
            reference,
            group: row.group,
        });
        lines.push(line);
    }
    finish(items, Some((list, &lines)))
}

/// Checks the set as a whole: at least one item, at most [`MAX_ITEMS`],
/// every id once.
fn finish(items: Vec<Item>, manifest: Option<(&Path, &[u64])>) -> Result<Vec<Item>, Error> {
    if items.is_empty() {
        return Err(Error::Usage(
            "no image or video to evaluate (folders are searched by extension)".into(),
        ));
    }
    if items.len() > MAX_ITEMS {
        return Err(Error::Usage(format!(
            "{} items, more than the {MAX_ITEMS} one run evaluates",
            items.len()
        )));
    }
    let mut seen = HashSet::new();
    for (i, item) in items.iter().enumerate() {
        if !seen.insert(item.id.as_str()) {
            return Err(match manifest {
                Some((list, lines)) => usage(
                    list,
                    lines[i],
                    format!(
                        "id {:?} again (ids pair items with a baseline's: each once)",
                        item.id
                    ),
                ),
                None => Error::Usage(format!("{} given twice", item.id)),
            });
        }
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(name: &str, body: &str) -> (PathBuf, PathBuf) {
        let dir = std::env::temp_dir().join(format!("eval-input-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a.png"), b"x").unwrap();
        std::fs::write(dir.join("b.png"), b"x").unwrap();
        let list = dir.join(name);
        std::fs::write(&list, body).unwrap();
        (dir, list)
    }

    fn line_of(e: Error) -> String {
        e.to_string()
    }

    #[test]
    fn manifests_in_both_formats_and_their_errors() {
        let (dir, list) = manifest("m.csv", "path,group,reference\na.png,g1,b.png\nb.png,,\n");
        let items = from_manifest(&list).unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].group.as_deref(), Some("g1"));
        assert_eq!(items[0].id, "a.png");
        assert!(items[1].group.is_none() && items[1].reference.is_none());
        let (_, list) = manifest(
            "m.jsonl",
            "{\"path\":\"a.png\",\"id\":\"x\"}\n\n{\"path\":\"b.png\",\"group\":\"g\"}\n",
        );
        let items = from_manifest(&list).unwrap();
        assert_eq!((items[0].id.as_str(), items[1].id.as_str()), ("x", "b.png"));
        for (name, body, line) in [
            (
                "e1.jsonl",
                "{\"path\":\"a.png\"}\n{\"path\":\"c.png\"}\n",
                "line 2",
            ),
            ("e2.jsonl", "{\"path\":\"a.png\"}\n{\"path\":1}\n", "line 2"),
            (
                "e3.jsonl",
                "{\"path\":\"a.png\",\"colour\":\"x\"}\n",
                "line 1",
            ),
            ("e4.csv", "path,id\na.png,x\nb.png,x\n", "line 3"),
            ("e5.csv", "path\na.png\nb.png,extra\n", "line 3"),
            ("e6.csv", "file\na.png\n", "line 1"),
            (
                "e7.jsonl",
                "{\"path\":\"a.png\"}\n{\"path\":\"\"}\n",
                "line 2",
            ),
        ] {
            let (_, list) = manifest(name, body);
            let e = line_of(from_manifest(&list).unwrap_err());
            assert!(e.contains(line), "{name}: {e}");
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}
