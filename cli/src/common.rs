//! The options every job shares: the model and how it runs (the `dreamsim`
//! element's properties), and whether to show progress.

use std::path::PathBuf;

use gst::prelude::*;
use gstdreamsim::{ExecutionProvider, ModelSettings, Precision};

use crate::Error;

/// The batch where the tool runs the model itself and `--batch-size` is
/// not given: images come in folders, so batches fill.
pub const TOOL_BATCH_SIZE: u32 = 8;

/// Options flattened into every subcommand's arguments. Unset options leave
/// the element's defaults (`gst-inspect-1.0 dreamsim` lists them).
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Model options")]
pub struct CommonArgs {
    /// DreamSim ONNX model [default: the ensemble that tools/get_model.sh installs]
    #[arg(long, value_name = "PATH")]
    pub model: Option<PathBuf>,

    /// Hardware that runs the model: auto, cpu, cuda, tensorrt or openvino
    /// [default: auto]. An explicitly requested provider that cannot start is
    /// an error; auto falls back to the CPU and says so.
    #[arg(long, value_name = "NAME", value_parser = parse_provider)]
    pub provider: Option<ExecutionProvider>,

    /// CUDA device for the cuda and tensorrt providers [default: 0]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i32).range(0..))]
    pub device_id: Option<i32>,

    /// CPU threads for ONNX Runtime [default: 0, one per physical core]
    #[arg(long, value_name = "N", value_parser = crate::values::u32_in(0, u32::MAX))]
    pub threads: Option<u32>,

    /// Analysed frames run through the model together (1 to 256)
    #[arg(long, value_name = "N", value_parser = crate::values::u32_in(1, crate::values::MAX_BATCH_SIZE))]
    pub batch_size: Option<u32>,

    /// Compute in fp32 on every provider (no bf16 CPU path, no int8 model, no TensorRT: its fp32
    /// engines use TF32, unless NVIDIA_TF32_OVERRIDE=0)
    #[arg(long)]
    pub full_precision: bool,

    /// Let TensorRT build fp16 engines (faster, distances within about 1e-3)
    #[arg(long)]
    pub fp16: bool,

    /// Arithmetic: auto (bf16 with bf16 units, else the <type>-int8.onnx model beside the
    /// fp32 one if installed, else fp32), fp32, or int8 (an error without an int8 model)
    #[arg(long, value_name = "P", value_parser = parse_precision)]
    pub precision: Option<Precision>,

    /// Directory where TensorRT and OpenVINO keep compiled models between runs
    #[arg(long, value_name = "DIR")]
    pub engine_cache: Option<PathBuf>,

    /// libonnxruntime.so to load [default: $ORT_DYLIB_PATH, then the usual places]
    #[arg(long, value_name = "PATH")]
    pub onnxruntime: Option<PathBuf>,

    /// No progress bar or summary on standard error
    #[arg(short, long, help_heading = "Output options")]
    pub quiet: bool,
}

/// `--precision`'s value (the element property's type), read by the
/// engine's own parser.
fn parse_precision(s: &str) -> Result<Precision, String> {
    s.parse()
}

/// `--provider`'s value (the element property's type), read by the engine's
/// own parser.
fn parse_provider(s: &str) -> Result<ExecutionProvider, String> {
    s.parse()
}

impl CommonArgs {
    /// The model settings these options give: the elements' defaults where
    /// an option is not given. The tool's own model loads and the elements'
    /// both come from these, through [`ModelSettings::options`].
    pub fn model_settings(&self) -> ModelSettings {
        let defaults = ModelSettings::default();
        ModelSettings {
            model_location: self.model.clone(),
            onnxruntime_location: self.onnxruntime.clone(),
            execution_provider: self.provider.unwrap_or(defaults.execution_provider),
            device_id: self.device_id.unwrap_or(defaults.device_id),
            fp16: self.fp16,
            full_precision: self.full_precision,
            precision: self.precision.unwrap_or(defaults.precision),
            engine_cache_location: self.engine_cache.clone(),
            threads: self.threads.unwrap_or(defaults.threads),
        }
    }

    /// The model file the job loads: `--model`, else the default model.
    pub fn model_path(&self) -> Result<PathBuf, Error> {
        self.model_settings()
            .model_path()
            .map_err(|e| Error::Input {
                input: "--model".into(),
                reason: e.to_string(),
            })
    }

    /// The largest batch where the tool runs the model itself (images of
    /// `index add`, `index query`, the set-level jobs) and in the video
    /// pipelines beside it: `--batch-size`, else [`TOOL_BATCH_SIZE`].
    pub fn max_batch(&self) -> u32 {
        self.batch_size.unwrap_or(TOOL_BATCH_SIZE).max(1)
    }

    /// The files these options make the job read (the model, the ONNX
    /// Runtime library), for [`crate::overwrite::refuse_overwrite`].
    pub fn input_files(&self) -> Vec<String> {
        [self.model_path().ok(), self.onnxruntime.clone()]
            .into_iter()
            .flatten()
            .map(|p| p.to_string_lossy().into_owned())
            .collect()
    }

    /// Sets the model's properties on an element that runs it (`dreamsim`,
    /// `dreamsimcompare`), and `batch-size` when given.
    pub fn configure(&self, element: &gst::Element) {
        self.model_settings().apply_to(element);
        if let Some(n) = self.batch_size {
            element.set_property(gstdreamsim::dreamsim::property::BATCH_SIZE, n);
        }
    }
}
