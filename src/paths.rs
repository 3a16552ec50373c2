//! Where the project keeps its files on a user's machine.

use std::path::PathBuf;

/// Overrides the directory the default model is read from.
pub const MODEL_DIR_ENV: &str = "GST_DREAMSIM_MODEL_DIR";

/// `$XDG_DATA_HOME/gst-dreamsim`, or `~/.local/share/gst-dreamsim`.
pub fn data_dir() -> Option<PathBuf> {
    let base = match std::env::var_os("XDG_DATA_HOME") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => PathBuf::from(std::env::var_os("HOME")?).join(".local/share"),
    };
    Some(base.join("gst-dreamsim"))
}

/// The directory `tools/get_model.sh` writes exported models to:
/// `$GST_DREAMSIM_MODEL_DIR` if set, else `data_dir()/models`.
pub fn model_dir() -> Option<PathBuf> {
    match std::env::var_os(MODEL_DIR_ENV) {
        Some(d) if !d.is_empty() => Some(PathBuf::from(d)),
        _ => Some(data_dir()?.join("models")),
    }
}

/// The model loaded when none is named: the full DreamSim ensemble.
pub fn default_model() -> Option<PathBuf> {
    Some(model_dir()?.join("ensemble.onnx"))
}

/// No model was named and there is no folder to find the default one in
/// (neither `$GST_DREAMSIM_MODEL_DIR`, `$XDG_DATA_HOME` nor `$HOME` set).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no model given and no HOME to find the default model in")]
pub struct NoDefaultModel;

/// The model file to load: `given` when there is one, else
/// [`default_model`]. Every user of the engine (the elements, each job of
/// the command-line tool) resolves the model through this one function.
pub fn model_or_default(given: Option<&std::path::Path>) -> Result<PathBuf, NoDefaultModel> {
    match given {
        Some(p) => Ok(p.to_path_buf()),
        None => default_model().ok_or(NoDefaultModel),
    }
}
