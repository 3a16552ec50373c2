//! What can go wrong in a job, said so that the user knows what to do.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A usage error found after parsing (an output that is an input):
    /// exit status 2, as clap's.
    #[error("{0}")]
    Usage(String),
    /// The input file or URI cannot be used.
    #[error("{input}: {reason}")]
    Input { input: String, reason: String },
    /// A GStreamer element the job needs is not installed.
    #[error("GStreamer element {0} is missing (is the plugin that has it installed?)")]
    MissingElement(String),
    /// A pipeline description given on the command line does not parse.
    #[error("{option} {description}: {source}")]
    Description {
        option: &'static str,
        description: String,
        source: gst::glib::Error,
    },
    /// The pipeline failed: GStreamer's error message, with its details.
    #[error("{0}")]
    Pipeline(String),
    /// The plugin posted a message that breaks its schema (a version mismatch).
    #[error(transparent)]
    Malformed(#[from] gstdreamsim::MalformedStructure),
    /// The pipeline ran but no frame was analysed.
    #[error("no analysed frame: is there a video stream in the input?")]
    NoFrames,
    /// Reading or writing a file.
    #[error("{}: {source}", path.display())]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Writing to standard output.
    #[error("writing the output: {0}")]
    Stdout(std::io::Error),
    /// An embedding index cannot be opened, read or written (its messages
    /// name the index, its password removed).
    #[error(transparent)]
    Index(#[from] dreamsim_index::IndexError),
    /// The model cannot be loaded or run.
    #[error(transparent)]
    Engine(#[from] dreamsim::Error),
    /// GStreamer could not do what was asked (initialise, link, change state).
    #[error("GStreamer: {0}")]
    Gst(#[from] gst::glib::BoolError),
}

impl Error {
    /// `path`, a file someone else may have written, could not be read
    /// (not a regular file, over its size cap, unreadable).
    pub fn untrusted_read(path: &Path, e: crate::untrusted::ReadError) -> Self {
        Self::Input {
            input: path.display().to_string(),
            reason: e.to_string(),
        }
    }

    /// `path`'s content is not what it should be.
    pub fn untrusted_parse(path: &Path, e: crate::untrusted::ParseError) -> Self {
        Self::Input {
            input: path.display().to_string(),
            reason: e.to_string(),
        }
    }
}
