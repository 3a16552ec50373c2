//! Which hardware runs the model.

use std::fmt;
use std::str::FromStr;

/// The execution provider that runs the model, as the user asks for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ExecutionProvider {
    /// The fastest provider that starts: TensorRT, then CUDA, then the CPU.
    /// Falling back is reported, never silent.
    #[default]
    Auto,
    /// ONNX Runtime's CPU provider.
    Cpu,
    /// ONNX Runtime's CUDA provider (needs onnxruntime-gpu and CUDA libraries).
    Cuda,
    /// ONNX Runtime's TensorRT provider (needs onnxruntime-gpu and TensorRT 10).
    TensorRt,
}

impl ExecutionProvider {
    /// The lower-case name used in properties and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Cpu => "cpu",
            Self::Cuda => "cuda",
            Self::TensorRt => "tensorrt",
        }
    }
}

impl fmt::Display for ExecutionProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ExecutionProvider {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "cpu" => Ok(Self::Cpu),
            "cuda" => Ok(Self::Cuda),
            "tensorrt" | "trt" => Ok(Self::TensorRt),
            other => Err(format!(
                "unknown execution provider `{other}` (expected auto, cpu, cuda or tensorrt)"
            )),
        }
    }
}
