//! The labelled material: pairs from a CSV, or groups (a folder per group,
//! or a manifest with a group column) whose pairs within a group are the
//! same and across groups different.
//!
//! Every file is untrusted: lists must be regular files under
//! [`MAX_LIST_BYTES`]; items regular files under [`MAX_IMAGE_BYTES`] or
//! [`MAX_VIDEO_BYTES`]; rows and items are counted against caps, so that a
//! list cannot ask for more work than a calibration needs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::index::{kind_in_folder, kind_of_file, Kind};
use crate::Error;

/// Largest pairs CSV or manifest read.
pub const MAX_LIST_BYTES: u64 = 64 << 20;
/// Largest image file embedded (the engine's own pixel limits apply too).
pub const MAX_IMAGE_BYTES: u64 = 256 << 20;
/// Largest video file sampled.
pub const MAX_VIDEO_BYTES: u64 = 64 << 30;
/// Most rows of a pairs CSV.
pub const MAX_PAIRS: usize = 1_000_000;
/// Most items of a grouped set: every pair of them is scored (about two
/// million pairs at this size).
pub const MAX_GROUPED_ITEMS: usize = 2_000;

/// A labelled pair of items (indexes into [`LabelledSet::items`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pair {
    /// The first item; for videos, the query (its frames are looked up in
    /// the other's).
    pub a: usize,
    /// The second item.
    pub b: usize,
    /// Labelled the same.
    pub same: bool,
    /// `a` is the query (a pairs CSV: `corpus match A` against an index
    /// holding B); otherwise either may be (groups: `corpus match` of a
    /// library, which scores each pair once, the video of the larger share
    /// as the query).
    pub directed: bool,
}

/// The items, each once, and the labelled pairs.
#[derive(Debug, Clone)]
pub struct LabelledSet {
    /// `pairs` (a CSV of pairs) or `groups`.
    pub kind: &'static str,
    /// Files, each once (a file named twice is one item).
    pub items: Vec<PathBuf>,
    /// Labelled pairs.
    pub pairs: Vec<Pair>,
}

impl LabelledSet {
    /// Number of pairs labelled the same and different.
    pub fn counts(&self) -> (usize, usize) {
        let same = self.pairs.iter().filter(|p| p.same).count();
        (same, self.pairs.len() - same)
    }
}

fn bad(input: &Path, reason: impl Into<String>) -> Error {
    Error::Input {
        input: input.display().to_string(),
        reason: reason.into(),
    }
}

/// Refuses what is not a regular file or is larger than `max` bytes.
pub fn check_file(path: &Path, max: u64) -> Result<(), Error> {
    let meta = std::fs::metadata(path).map_err(|source| Error::File {
        path: path.to_owned(),
        source,
    })?;
    if !meta.is_file() {
        return Err(bad(path, "not a regular file"));
    }
    if meta.len() > max {
        return Err(bad(
            path,
            format!("{} bytes, more than the {max} read", meta.len()),
        ));
    }
    Ok(())
}

/// Checks an item file by its kind's size limit.
fn check_item(path: &Path) -> Result<(), Error> {
    let max = match kind_of_file(path) {
        Kind::Image => MAX_IMAGE_BYTES,
        Kind::Video => MAX_VIDEO_BYTES,
    };
    check_file(path, max)
}

/// Items by canonical path, each added once.
#[derive(Default)]
struct Items {
    paths: Vec<PathBuf>,
    by_canonical: HashMap<PathBuf, usize>,
}

impl Items {
    fn add(&mut self, path: PathBuf, list: &Path, row: usize) -> Result<usize, Error> {
        let canonical = std::fs::canonicalize(&path)
            .map_err(|e| bad(list, format!("row {row}: {}: {e}", path.display())))?;
        if let Some(&i) = self.by_canonical.get(&canonical) {
            return Ok(i);
        }
        check_item(&path)?;
        self.paths.push(path);
        self.by_canonical.insert(canonical, self.paths.len() - 1);
        Ok(self.paths.len() - 1)
    }
}

/// A path of a list, relative to the list's folder unless absolute.
fn resolve(list: &Path, field: &str) -> PathBuf {
    list.parent().unwrap_or(Path::new(".")).join(field)
}

/// The rows of a CSV list with `fields` fields each (a first row equal to
/// `header` is skipped), with their 1-based row numbers.
fn read_rows(
    list: &Path,
    fields: usize,
    header: &[&str],
) -> Result<Vec<(usize, Vec<String>)>, Error> {
    check_file(list, MAX_LIST_BYTES)?;
    let file = std::fs::File::open(list).map_err(|source| Error::File {
        path: list.to_owned(),
        source,
    })?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .comment(Some(b'#'))
        .from_reader(file);
    let mut rows = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let row = i + 1;
        let record = record.map_err(|e| bad(list, format!("row {row}: {e}")))?;
        let record: Vec<String> = record.iter().map(|f| f.trim().to_owned()).collect();
        if record.len() != fields {
            return Err(bad(
                list,
                format!(
                    "row {row}: {} fields; each row is {}",
                    record.len(),
                    header.join(",")
                ),
            ));
        }
        if row == 1
            && record
                .iter()
                .zip(header)
                .all(|(f, h)| f.eq_ignore_ascii_case(h))
        {
            continue;
        }
        rows.push((row, record));
        if rows.len() > MAX_PAIRS {
            return Err(bad(list, format!("more than {MAX_PAIRS} rows")));
        }
    }
    Ok(rows)
}

/// A CSV of `a,b,same|different` rows (a header `a,b,label` allowed).
pub fn read_pairs(list: &Path) -> Result<LabelledSet, Error> {
    let mut items = Items::default();
    let mut pairs = Vec::new();
    for (row, r) in read_rows(list, 3, &["a", "b", "label"])? {
        let same = match r[2].to_ascii_lowercase().as_str() {
            "same" => true,
            "different" => false,
            other => {
                return Err(bad(
                    list,
                    format!("row {row}: label {other:?}: use same or different"),
                ))
            }
        };
        let a = items.add(resolve(list, &r[0]), list, row)?;
        let b = items.add(resolve(list, &r[1]), list, row)?;
        if a == b {
            return Err(bad(list, format!("row {row}: a file paired with itself")));
        }
        pairs.push(Pair {
            a,
            b,
            same,
            directed: true,
        });
    }
    finish("pairs", list, items.paths, pairs)
}

/// Every pair of the grouped items: the same within a group, different
/// across groups, each pair once (items in listing order).
fn grouped(list: &Path, members: Vec<(PathBuf, String)>) -> Result<LabelledSet, Error> {
    let mut items = Items::default();
    let mut group_of: Vec<String> = Vec::new();
    for (row, (path, group)) in members.into_iter().enumerate() {
        let i = items.add(path, list, row + 1)?;
        if i == group_of.len() {
            group_of.push(group);
        } else if group_of[i] != group {
            return Err(bad(
                list,
                format!(
                    "{} is in two groups ({} and {group})",
                    items.paths[i].display(),
                    group_of[i]
                ),
            ));
        }
        if items.paths.len() > MAX_GROUPED_ITEMS {
            return Err(bad(
                list,
                format!("more than {MAX_GROUPED_ITEMS} items (every pair of them is scored)"),
            ));
        }
    }
    let n = items.paths.len();
    let mut pairs = Vec::with_capacity(n * n.saturating_sub(1) / 2);
    for a in 0..n {
        for b in a + 1..n {
            pairs.push(Pair {
                a,
                b,
                same: group_of[a] == group_of[b],
                directed: false,
            });
        }
    }
    finish("groups", list, items.paths, pairs)
}

/// A folder with a subfolder per group (images and videos found in it by
/// extension, recursively, in name order; hidden files skipped).
pub fn read_group_folders(dir: &Path) -> Result<LabelledSet, Error> {
    let meta = std::fs::metadata(dir).map_err(|source| Error::File {
        path: dir.to_owned(),
        source,
    })?;
    if !meta.is_dir() {
        return Err(bad(
            dir,
            "not a folder (--groups takes a folder of group folders)",
        ));
    }
    let mut members = Vec::new();
    let mut groups: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|source| Error::File {
            path: dir.to_owned(),
            source,
        })?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    groups.sort();
    for group in groups {
        let name = group
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        for entry in walkdir::WalkDir::new(&group)
            .follow_links(true)
            .sort_by_file_name()
        {
            let entry = entry.map_err(|e| bad(&group, e.to_string()))?;
            let hidden = entry.file_name().to_string_lossy().starts_with('.');
            if entry.file_type().is_file() && !hidden && kind_in_folder(entry.path()).is_some() {
                members.push((entry.into_path(), name.clone()));
            }
        }
    }
    grouped(dir, members)
}

/// A CSV of `path,group` rows (a header `path,group` allowed).
pub fn read_manifest(list: &Path) -> Result<LabelledSet, Error> {
    let members = read_rows(list, 2, &["path", "group"])?
        .into_iter()
        .map(|(_, r)| (resolve(list, &r[0]), r[1].clone()))
        .collect();
    grouped(list, members)
}

/// Checks that there is something to calibrate: pairs of both labels.
fn finish(
    kind: &'static str,
    list: &Path,
    items: Vec<PathBuf>,
    pairs: Vec<Pair>,
) -> Result<LabelledSet, Error> {
    let set = LabelledSet { kind, items, pairs };
    let (same, different) = set.counts();
    if same == 0 || different == 0 {
        return Err(bad(
            list,
            format!(
                "{same} pairs labelled the same and {different} different: \
                 calibrating needs both"
            ),
        ));
    }
    Ok(set)
}
