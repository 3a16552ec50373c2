//! The options every job shares: the model and how it runs (the `dreamsim`
//! element's properties), and whether to show progress.

use std::path::PathBuf;

use gst::prelude::*;

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
    pub provider: Option<dreamsim::ExecutionProvider>,

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
    pub precision: Option<dreamsim::RequestedPrecision>,

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

/// `--precision`'s value, checked by the engine's own parser.
fn parse_precision(s: &str) -> Result<dreamsim::RequestedPrecision, String> {
    s.parse()
}

/// `--provider`'s value, checked by the engine's own parser.
fn parse_provider(s: &str) -> Result<dreamsim::ExecutionProvider, String> {
    s.parse()
}

impl CommonArgs {
    /// The files these options make the job read (the model, the ONNX
    /// Runtime library), for [`crate::overwrite::refuse_overwrite`].
    pub fn input_files(&self) -> Vec<String> {
        let model = self.model.clone().or_else(dreamsim::paths::default_model);
        [model, self.onnxruntime.clone()]
            .into_iter()
            .flatten()
            .map(|p| p.to_string_lossy().into_owned())
            .collect()
    }

    /// Sets the given options on a `dreamsim` element.
    pub fn configure(&self, dreamsim: &gst::Element) {
        if let Some(m) = &self.model {
            dreamsim.set_property("model-location", m.to_string_lossy().as_ref());
        }
        if let Some(p) = self.provider {
            dreamsim.set_property_from_str("execution-provider", p.as_str());
        }
        if let Some(id) = self.device_id {
            dreamsim.set_property("device-id", id);
        }
        if let Some(n) = self.threads {
            dreamsim.set_property("threads", n);
        }
        if let Some(n) = self.batch_size {
            dreamsim.set_property("batch-size", n);
        }
        if self.full_precision {
            dreamsim.set_property("full-precision", true);
        }
        if self.fp16 {
            dreamsim.set_property("fp16", true);
        }
        if let Some(p) = self.precision {
            dreamsim.set_property_from_str("precision", p.as_str());
        }
        if let Some(d) = &self.engine_cache {
            dreamsim.set_property("engine-cache-location", d.to_string_lossy().as_ref());
        }
        if let Some(p) = &self.onnxruntime {
            dreamsim.set_property("onnxruntime-location", p.to_string_lossy().as_ref());
        }
    }
}
