//! No output is written over an input: every job that writes a file asks
//! [`refuse_overwrite`] first, with all its inputs and outputs. As
//! ripgrep and FFmpeg do, an output that is one of the inputs (the same
//! file, also through a symbolic or hard link: same device and inode) is
//! a usage error, and nothing has been written yet. It also checks that
//! each output can be written (a read-only folder, a directory given as a
//! file) before the job runs, rather than after an hour of decoding.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::Error;

/// The file behind `path` (links followed): device and inode, or `None`
/// when it does not exist.
fn identity(path: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// An input as the command line gave it: a path, or a URI (`file://`
/// URIs name a local file; other schemes are not files of this machine).
pub fn input_path(input: &str) -> Option<PathBuf> {
    if input.contains("://") {
        return gst::glib::filename_from_uri(input)
            .ok()
            .map(|(path, _)| path);
    }
    Some(PathBuf::from(input))
}

/// Where a file that may not exist yet would be: its folder canonicalised
/// (links resolved) and its name; for comparing two outputs.
fn destination(path: &Path) -> PathBuf {
    if let Ok(p) = std::fs::canonicalize(path) {
        return p;
    }
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let parent = std::fs::canonicalize(parent).unwrap_or_else(|_| parent.to_owned());
    match path.file_name() {
        Some(name) => parent.join(name),
        None => parent,
    }
}

/// Refuses (a usage error, exit status 2) when an output is one of the
/// inputs or when two outputs are the same file, and (an error, exit
/// status 1) when an output cannot be written. `inputs` are paths or URIs
/// as given; `outputs` are (option, path) pairs such as
/// `("--log", Some(path))`, `None` for an output not asked for.
pub fn refuse_overwrite<S: AsRef<str>>(
    inputs: impl IntoIterator<Item = S>,
    outputs: &[(&str, Option<&Path>)],
) -> Result<(), Error> {
    let inputs: Vec<(String, (u64, u64))> = inputs
        .into_iter()
        .filter_map(|i| {
            let i = i.as_ref();
            Some((i.to_owned(), identity(&input_path(i)?)?))
        })
        .collect();
    let outputs: Vec<(&str, &Path)> = outputs.iter().filter_map(|&(o, p)| Some((o, p?))).collect();
    for (n, &(option, out)) in outputs.iter().enumerate() {
        if let Some(id) = identity(out) {
            if let Some((input, _)) = inputs.iter().find(|(_, i)| *i == id) {
                let same = if Path::new(input) == out {
                    String::new()
                } else {
                    format!(" (the same file as {})", out.display())
                };
                return Err(Error::Usage(format!(
                    "{option} {}: that is the input {input}{same}; refusing to write over an \
                     input: give another file",
                    out.display()
                )));
            }
        }
        for &(other_option, other) in &outputs[..n] {
            let same = match (identity(out), identity(other)) {
                (Some(a), Some(b)) => a == b,
                _ => destination(out) == destination(other),
            };
            if same {
                return Err(Error::Usage(format!(
                    "{other_option} {} and {option} {} are the same file: give each its own",
                    other.display(),
                    out.display()
                )));
            }
        }
    }
    for &(_, out) in &outputs {
        writable(out)?;
    }
    Ok(())
}

/// Whether `path` can be written, found without changing it: an existing
/// file is opened for appending (nothing appended), a new one is created
/// (so that its folder, its name's length and characters are tried) and
/// removed at once.
fn writable(path: &Path) -> Result<(), Error> {
    let failed = |source: std::io::Error| Error::File {
        path: path.to_owned(),
        source,
    };
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => Err(failed(std::io::Error::new(
            std::io::ErrorKind::IsADirectory,
            "a directory: give a file name",
        ))),
        // A device or a FIFO (/dev/null, a pipe to another process) is
        // written as it is.
        Ok(m) if !m.is_file() => Ok(()),
        Ok(_) => std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map(drop)
            .map_err(failed),
        Err(_) => {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path)
                .map_err(failed)?;
            std::fs::remove_file(path).map_err(failed)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_output_that_is_an_input_through_any_link_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.webm");
        std::fs::write(&input, b"video").unwrap();
        let symlink = dir.path().join("link.webm");
        std::os::unix::fs::symlink(&input, &symlink).unwrap();
        let hardlink = dir.path().join("hard.webm");
        std::fs::hard_link(&input, &hardlink).unwrap();
        let dotted = dir.path().join(".").join("in.webm");
        let uri = gst::glib::filename_to_uri(&input, None).unwrap();
        let name = input.to_str().unwrap();
        for out in [&input, &symlink, &hardlink, &dotted] {
            let e = refuse_overwrite([name], &[("-o", Some(out))]).unwrap_err();
            assert!(matches!(e, Error::Usage(_)), "{out:?}");
            assert!(refuse_overwrite([uri.as_str()], &[("-o", Some(out))]).is_err());
        }
        let other = dir.path().join("out.csv");
        refuse_overwrite([name, "http://example.com/a"], &[("-o", Some(&other))]).unwrap();
        let both = [
            ("-o", Some(other.as_path())),
            ("--edl", Some(other.as_path())),
        ];
        assert!(refuse_overwrite([name], &both).is_err());
        assert_eq!(std::fs::read(&input).unwrap(), b"video");
    }
}
