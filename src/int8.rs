//! The int8 model beside an fp32 one: where it is, whether it is one, and
//! when it runs.
//!
//! `tools/get_model.sh --int8` (tools/quantize_int8.py) writes
//! `<type>-int8.onnx` next to `<type>.onnx` after measuring its agreement
//! with the fp32 model on frames it was not calibrated on, and records that
//! agreement in the file's metadata. The engine never quantizes anything
//! itself: it only picks that file up, on the CPU, where reduced precision
//! is allowed and no faster path (a GPU, bf16 units) started.

use std::path::{Path, PathBuf};

use crate::model::metadata_keys;
use crate::onnx_file;

/// Metadata keys the int8 tool writes.
pub mod keys {
    /// Spearman rank correlation of previous-frame distances, int8 against
    /// fp32, on data the calibration did not see.
    pub const SPEARMAN: &str = "dreamsim.int8_spearman";
    /// `true` when the user accepted an agreement below the tool's guard.
    pub const ACCEPTED_BELOW_GUARD: &str = "dreamsim.int8_accepted_below_guard";
}

/// The agreement below which the int8 tool installs nothing unless the user
/// accepts less explicitly.
pub const GUARD_SPEARMAN: f64 = 0.999;

/// Which arithmetic the caller asks for; the provider and the processor
/// decide the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RequestedPrecision {
    /// The fastest path that starts: fp16 only where asked for, bf16 on
    /// OpenVINO with bf16 units, else the int8 model when one is installed
    /// next to the fp32 one, else fp32.
    #[default]
    Auto,
    /// fp32 everywhere (what `full_precision` asks for).
    Fp32,
    /// The int8 model beside the fp32 one, on the CPU; an error when there
    /// is none.
    Int8,
}

impl RequestedPrecision {
    /// The lower-case name used in properties and options.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Fp32 => "fp32",
            Self::Int8 => "int8",
        }
    }
}

impl std::fmt::Display for RequestedPrecision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for RequestedPrecision {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "fp32" | "full" => Ok(Self::Fp32),
            "int8" => Ok(Self::Int8),
            other => Err(format!(
                "unknown precision `{other}` (expected auto, fp32 or int8)"
            )),
        }
    }
}

/// What an int8 model file says of itself.
#[derive(Debug, Clone, PartialEq)]
pub struct Int8Model {
    /// The file.
    pub path: PathBuf,
    /// Its agreement with the fp32 model, as measured when it was made.
    pub spearman: Option<f64>,
    /// The user accepted an agreement below [`GUARD_SPEARMAN`].
    pub accepted_below_guard: bool,
}

/// Where the int8 model of `fp32` is installed: `<stem>-int8.onnx` in the
/// same folder (as `<stem>-fp16.onnx` is).
pub fn sibling_path(fp32: &Path) -> PathBuf {
    let stem = fp32
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    fp32.with_file_name(format!("{stem}-int8.onnx"))
}

/// Whether the model file at `path` says it is int8.
pub fn is_int8_file(path: &Path) -> bool {
    onnx_file::metadata_props(path).is_ok_and(|m| is_int8(&m))
}

/// Whether a model whose `metadata_props` are `metadata` says it is int8.
pub fn is_int8(metadata: &[(String, String)]) -> bool {
    metadata
        .iter()
        .find(|(k, _)| k == metadata_keys::PRECISION)
        .is_some_and(|(_, v)| v == "int8")
}

/// The int8 model at `path`, read from its metadata; `Err` says why it is
/// not one that can stand in for a model of type `kind`.
pub fn describe(path: &Path, kind: Option<&str>) -> Result<Int8Model, String> {
    let props = onnx_file::metadata_props(path).map_err(|e| format!("cannot read it: {e}"))?;
    describe_metadata(path, &props, kind)
}

/// [`describe`] for a model whose `metadata_props` were read already.
pub fn describe_metadata(
    path: &Path,
    props: &[(String, String)],
    kind: Option<&str>,
) -> Result<Int8Model, String> {
    let get = |key: &str| {
        props
            .iter()
            .find_map(|(k, v)| (k == key).then(|| v.trim().to_owned()))
    };
    match get(metadata_keys::PRECISION).as_deref() {
        Some("int8") => {}
        other => {
            return Err(format!(
                "its metadata says dreamsim.precision = {}, not int8",
                other.unwrap_or("(none)")
            ))
        }
    }
    if let Some(kind) = kind {
        let own = get(metadata_keys::TYPE);
        if own.as_deref() != Some(kind) {
            return Err(format!(
                "it is a model of type {}, not {kind}",
                own.as_deref().unwrap_or("(none)")
            ));
        }
    }
    Ok(Int8Model {
        path: path.to_owned(),
        spearman: get(keys::SPEARMAN).and_then(|v| v.parse().ok()),
        accepted_below_guard: get(keys::ACCEPTED_BELOW_GUARD).as_deref() == Some("true"),
    })
}

/// The int8 model installed next to `fp32`: `Ok(None)` when there is no
/// file, `Err` when there is one that cannot stand in for it.
pub fn find_sibling(fp32: &Path) -> Result<Option<Int8Model>, String> {
    let kind = onnx_file::metadata_value(fp32, metadata_keys::TYPE);
    find_sibling_of_kind(fp32, kind.as_deref())
}

/// [`find_sibling`] for an fp32 model whose type (`dreamsim.type`) was
/// read already.
pub fn find_sibling_of_kind(fp32: &Path, kind: Option<&str>) -> Result<Option<Int8Model>, String> {
    let sibling = sibling_path(fp32);
    if !sibling.is_file() {
        return Ok(None);
    }
    describe(&sibling, kind)
        .map(Some)
        .map_err(|why| format!("{} is not used: {why}", sibling.display()))
}

impl Int8Model {
    /// Whether its recorded agreement is below [`GUARD_SPEARMAN`] (accepted
    /// explicitly at export, or a file not made by the tool) or missing.
    pub fn below_guard(&self) -> bool {
        self.accepted_below_guard || self.spearman.is_none_or(|s| s < GUARD_SPEARMAN)
    }

    /// How it agrees with fp32, for the start-up message: `Spearman 0.9994
    /// against fp32` and, when the user accepted less than the guard, says so.
    pub fn agreement(&self) -> String {
        let figure = match self.spearman {
            Some(s) => format!("Spearman {s:.4} against fp32 at export"),
            None => "no recorded agreement with fp32".to_owned(),
        };
        if self.accepted_below_guard {
            format!("{figure}, accepted below the {GUARD_SPEARMAN} guard by whoever exported it")
        } else if self.below_guard() {
            format!("{figure}, below the {GUARD_SPEARMAN} guard of tools/quantize_int8.py")
        } else {
            figure
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_int8_model_sits_beside_the_fp32_one() {
        assert_eq!(
            sibling_path(Path::new("/m/ensemble.onnx")),
            Path::new("/m/ensemble-int8.onnx")
        );
        assert_eq!(
            sibling_path(Path::new("dino_vitb16.onnx")),
            Path::new("dino_vitb16-int8.onnx")
        );
    }

    #[test]
    fn precision_names_round_trip() {
        for p in [
            RequestedPrecision::Auto,
            RequestedPrecision::Fp32,
            RequestedPrecision::Int8,
        ] {
            assert_eq!(p.as_str().parse::<RequestedPrecision>(), Ok(p));
        }
        assert!("bf17".parse::<RequestedPrecision>().is_err());
    }

    #[test]
    fn an_fp32_fixture_is_not_an_int8_model() {
        let fp32 = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny_dino.onnx");
        assert!(!is_int8_file(&fp32));
        let why = describe(&fp32, None).unwrap_err();
        assert!(why.contains("not int8"), "{why}");
        // No tiny_dino-int8.onnx beside it: nothing to use, no error.
        assert_eq!(find_sibling(&fp32), Ok(None));
    }

    #[test]
    fn agreement_says_when_it_was_accepted_below_the_guard() {
        let mut m = Int8Model {
            path: PathBuf::from("x-int8.onnx"),
            spearman: Some(0.9991),
            accepted_below_guard: false,
        };
        assert_eq!(m.agreement(), "Spearman 0.9991 against fp32 at export");
        assert!(!m.below_guard());
        m.spearman = Some(0.95);
        assert!(m.below_guard());
        assert!(m.agreement().contains("below the 0.999 guard of"));
        m.spearman = Some(0.98);
        m.accepted_below_guard = true;
        assert!(m.agreement().contains("accepted below the 0.999 guard"));
    }
}
