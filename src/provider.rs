//! Which hardware runs the model.

use std::fmt;
use std::str::FromStr;

/// The execution provider that runs the model, as the user asks for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ExecutionProvider {
    /// The fastest provider that starts: TensorRT, then CUDA, then OpenVINO
    /// in bf16 where the processor has bf16 matrix units (see
    /// [`crate::cpu::bf16_matrix_units`]), then the CPU. Falling back is
    /// reported, never silent.
    #[default]
    Auto,
    /// ONNX Runtime's CPU provider.
    Cpu,
    /// ONNX Runtime's CUDA provider (needs onnxruntime-gpu and CUDA libraries).
    Cuda,
    /// ONNX Runtime's TensorRT provider (needs onnxruntime-gpu and TensorRT 10).
    TensorRt,
    /// ONNX Runtime's OpenVINO provider on the CPU (needs the
    /// onnxruntime-openvino build): bf16 on processors with bf16 matrix
    /// units unless full precision is asked for, fp32 elsewhere.
    OpenVino,
}

impl ExecutionProvider {
    /// The lower-case name used in properties and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Cpu => "cpu",
            Self::Cuda => "cuda",
            Self::TensorRt => "tensorrt",
            Self::OpenVino => "openvino",
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
            "openvino" => Ok(Self::OpenVino),
            other => Err(format!(
                "unknown execution provider `{other}` (expected auto, cpu, cuda, tensorrt or openvino)"
            )),
        }
    }
}

/// The arithmetic a running model computes in, as the provider was set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ComputePrecision {
    /// Full precision: the reference's own arithmetic.
    #[default]
    Fp32,
    /// bfloat16 matrix products (OpenVINO on AMX / AVX512-BF16).
    Bf16,
    /// fp16 engines (TensorRT with `fp16`).
    Fp16,
    /// fp32 storage with TF32 matrix products and convolutions (inputs
    /// rounded to a 10-bit mantissa, sums in fp32): TensorRT's fp32 engines,
    /// whose builder allows TF32 by default on Ampere and newer GPUs.
    Tf32,
    /// The int8 model (QDQ, int8 matrix products) beside the fp32 one.
    Int8,
}

impl ComputePrecision {
    /// The lower-case name used in properties and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fp32 => "fp32",
            Self::Bf16 => "bf16",
            Self::Fp16 => "fp16",
            Self::Tf32 => "tf32",
            Self::Int8 => "int8",
        }
    }
}

impl fmt::Display for ComputePrecision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
