//! The engine's error type: every failure says what went wrong and, where
//! the user can act on it, what to do in the engine's own terms (its
//! functions, options and environment variables). A front end such as the
//! GStreamer plugin adds how its own settings map to those.

use std::path::PathBuf;

/// Everything that can go wrong while loading the runtime or a model,
/// preprocessing a frame or running inference.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No ONNX Runtime shared library could be found or loaded.
    #[error(
        "ONNX Runtime could not be loaded ({reason}); tried: {tried}. Install ONNX Runtime 1.24 or \
         newer (tools/get_onnxruntime.sh) and give the path of libonnxruntime.so to \
         `dreamsim::runtime` or in the ORT_DYLIB_PATH environment variable"
    )]
    RuntimeNotFound {
        /// Why the last candidate failed.
        reason: String,
        /// The paths that were tried, in order.
        tried: String,
    },

    /// ONNX Runtime loaded but could not create its environment.
    #[error("ONNX Runtime environment could not be created: {0}")]
    RuntimeInit(String),

    /// The model file does not exist or cannot be read.
    #[error("model file {path} cannot be read ({source}); export one with tools/get_model.sh")]
    ModelNotFound {
        /// The path that was given.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },

    /// ONNX Runtime refused the model file (not ONNX, corrupt, unsupported opset).
    #[error("model {path} could not be loaded by ONNX Runtime: {message}")]
    ModelLoad {
        /// The model path.
        path: PathBuf,
        /// ONNX Runtime's message.
        message: String,
    },

    /// The model loaded but does not follow the DreamSim ONNX contract.
    #[error(
        "model {path} does not follow the DreamSim ONNX contract: {problem} (expected input \
         `image` float32 [N,3,224,224] and output `embedding` float32 [N,D]; re-export it with \
         tools/export_onnx.py)"
    )]
    ModelContract {
        /// The model path.
        path: PathBuf,
        /// The precise violation.
        problem: String,
    },

    /// An execution provider the user asked for could not be started.
    #[error("execution provider {provider} could not be started: {message}")]
    ProviderUnavailable {
        /// The provider's name.
        provider: &'static str,
        /// Why, as ONNX Runtime or CUDA reported it, with what to install.
        message: String,
    },

    /// ONNX Runtime failed while running the model.
    #[error("inference failed: {0}")]
    Inference(String),

    /// The GPU path failed (CUDA driver, NVRTC, kernel launch or copy).
    #[error("GPU preprocessing failed: {0}; the CPU provider runs without the GPU")]
    Gpu(String),

    /// A frame's description does not match its data, or the format is unsupported.
    #[error("invalid frame: {0}")]
    InvalidFrame(String),

    /// The reference image cannot be read or decoded.
    #[error(
        "reference image {path} cannot be used ({message}); give a readable PNG, JPEG, BMP or WebP \
         file"
    )]
    ReferenceImage {
        /// The image path.
        path: PathBuf,
        /// What failed.
        message: String,
    },

    /// Two embeddings of different widths were compared.
    #[error("embeddings have different widths ({0} and {1}): they come from different models")]
    EmbeddingMismatch(usize, usize),
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
