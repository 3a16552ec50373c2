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

    /// The model file refers to files outside its own folder (ONNX external
    /// data or an EPContext blob at an absolute path, through `..`, or
    /// through a symbolic link): refused before ONNX Runtime opens it.
    #[error(
        "model {path} is refused: {what} `{location}` {why}; a model may only refer to files in its \
         own folder ({folder}). Move the data file beside the model and re-save it with a relative \
         location, or do not use this model file"
    )]
    ModelExternalData {
        /// The model path.
        path: PathBuf,
        /// The folder external data must stay in.
        folder: PathBuf,
        /// What refers to the file (`tensor `proj`'s external data`).
        what: String,
        /// The location as written in the model.
        location: String,
        /// Why it is refused.
        why: String,
    },

    /// The model ran but its output is unusable: not finite, or not unit-norm.
    #[error(
        "model {path} produced an unusable `{output}` for item {item} of a batch of {batch}: \
         {problem}. DreamSim embeddings are finite and L2-normalised (norm 1 within \
         {tolerance}); the model file is broken or its reduced-precision arithmetic overflowed: \
         try full-precision=true, check the model with tools/parity.py or re-export it with \
         tools/export_onnx.py"
    )]
    ModelOutput {
        /// The model path.
        path: PathBuf,
        /// The output's name (`embedding`).
        output: &'static str,
        /// Index of the bad embedding in its batch.
        item: usize,
        /// Size of the batch.
        batch: usize,
        /// What is wrong (`value 2 is NaN`, `norm is 2.000`).
        problem: String,
        /// The accepted distance of the norm from 1.
        tolerance: f32,
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

    /// int8 precision was asked for and there is no usable int8 model
    /// beside the fp32 one.
    #[error(
        "int8 precision needs an int8 model beside {fp32}, at {expected}: {reason}; make one with \
         tools/get_model.sh --int8 (tools/quantize_int8.py), or use precision auto or fp32"
    )]
    Int8ModelMissing {
        /// The fp32 model.
        fp32: PathBuf,
        /// Where its int8 model is looked for.
        expected: PathBuf,
        /// Why none is used there.
        reason: String,
    },

    /// A setting (property, option or environment variable) has a value that
    /// cannot be used.
    #[error("invalid setting: {0}")]
    InvalidSetting(String),

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

    /// The reference image is larger than the decoding limit.
    #[error(
        "reference image {path} is {width} x {height} = {pixels} pixels, above the limit of \
         {max_pixels} pixels (decoding it could need up to {bytes} bytes); raise the limit with \
         the property `reference-max-pixels` or the environment variable {env}, or give a \
         smaller image (it is resized to 224 x 224 anyway)"
    )]
    ReferenceTooLarge {
        /// The image path.
        path: PathBuf,
        /// Width from the image header.
        width: u32,
        /// Height from the image header.
        height: u32,
        /// width x height.
        pixels: u64,
        /// The limit in force.
        max_pixels: u64,
        /// The largest allocation decoding may make at this size.
        bytes: u64,
        /// The environment variable that raises the limit.
        env: &'static str,
    },

    /// Two embeddings of different widths were compared.
    #[error("embeddings have different widths ({0} and {1}): they come from different models")]
    EmbeddingMismatch(usize, usize),
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
