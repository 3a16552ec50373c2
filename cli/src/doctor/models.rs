//! The installed models: the default model folder, each model's type,
//! checksum, and its int8 sibling with the agreement recorded in it.

use std::path::PathBuf;

use dreamsim::model::metadata_keys;
use dreamsim::onnx_file::metadata_value;
use serde::Serialize;

/// The model folder and what is in it.
#[derive(Debug, Serialize)]
pub struct ModelsReport {
    /// The folder models are read from by default (`$GST_DREAMSIM_MODEL_DIR`
    /// or the data folder's `models/`).
    pub folder: Option<PathBuf>,
    /// The model the element loads when none is named.
    pub default_model: Option<PathBuf>,
    /// Whether that file exists.
    pub default_installed: bool,
    /// The `.onnx` files of the folder (int8 siblings under their fp32 model).
    pub models: Vec<InstalledModel>,
}

/// One model file.
#[derive(Debug, Serialize)]
pub struct InstalledModel {
    pub path: PathBuf,
    /// `dreamsim.type` from its metadata.
    pub kind: Option<String>,
    /// `dreamsim.precision` from its metadata.
    pub precision: Option<String>,
    pub size_bytes: u64,
    pub sha256: Option<String>,
    /// The int8 model beside it, when there is one.
    pub int8: Option<Int8Sibling>,
}

/// The `<type>-int8.onnx` file beside a model.
#[derive(Debug, Serialize)]
pub struct Int8Sibling {
    pub path: PathBuf,
    /// Spearman agreement with fp32 recorded when it was made.
    pub spearman: Option<f64>,
    /// The user accepted an agreement below the tool's 0.999 guard.
    pub accepted_below_guard: bool,
    /// Why the element will not use it, when it will not.
    pub unusable: Option<String>,
}

/// Lists the default model folder.
pub fn inspect() -> ModelsReport {
    let folder = dreamsim::paths::model_dir();
    let default_model = dreamsim::paths::default_model();
    let default_installed = default_model.as_ref().is_some_and(|p| p.is_file());
    let mut models = Vec::new();
    if let Some(dir) = &folder {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "onnx") && p.is_file())
            .collect();
        files.sort();
        for path in &files {
            // An int8 file is shown under its fp32 model, when that is there.
            let stem = path.file_stem().unwrap_or_default().to_string_lossy();
            if let Some(base) = stem.strip_suffix("-int8") {
                if files.contains(&path.with_file_name(format!("{base}.onnx"))) {
                    continue;
                }
            }
            models.push(describe(path.clone()));
        }
    }
    ModelsReport {
        folder,
        default_model,
        default_installed,
        models,
    }
}

fn describe(path: PathBuf) -> InstalledModel {
    let int8_path = dreamsim::int8::sibling_path(&path);
    let int8 = int8_path
        .is_file()
        .then(|| match dreamsim::int8::find_sibling(&path) {
            Ok(Some(m)) => Int8Sibling {
                path: m.path,
                spearman: m.spearman,
                accepted_below_guard: m.accepted_below_guard,
                unusable: None,
            },
            Ok(None) => unreachable_sibling(&int8_path, "it disappeared while being read".into()),
            Err(why) => unreachable_sibling(&int8_path, why),
        });
    InstalledModel {
        kind: metadata_value(&path, metadata_keys::TYPE),
        precision: metadata_value(&path, metadata_keys::PRECISION),
        size_bytes: std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0),
        sha256: dreamsim_index::file_sha256(&path).ok(),
        int8,
        path,
    }
}

fn unreachable_sibling(path: &std::path::Path, why: String) -> Int8Sibling {
    Int8Sibling {
        path: path.to_path_buf(),
        spearman: None,
        accepted_below_guard: false,
        unusable: Some(why),
    }
}
