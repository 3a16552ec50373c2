//! What can go wrong in a job, said so that the user knows what to do.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
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
    Index(#[from] dreamsim::index::IndexError),
    /// The model cannot be loaded or run.
    #[error(transparent)]
    Engine(#[from] dreamsim::Error),
    /// GStreamer could not do what was asked (initialise, link, change state).
    #[error("GStreamer: {0}")]
    Gst(#[from] gst::glib::BoolError),
}
