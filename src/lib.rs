//! The DreamSim perceptual-similarity engine behind the `dreamsim` GStreamer
//! element, usable on its own: frames in (pixel format, planes, strides),
//! embeddings and distances out. No GStreamer types appear in this API.
//!
//! ```no_run
//! use dreamsim::{runtime, Engine, Frame, Model, ModelOptions};
//! # fn main() -> dreamsim::Result<()> {
//! let rt = runtime(None)?;
//! let model = Model::load(rt, "ensemble.onnx".as_ref(), &ModelOptions::default())?;
//! let mut engine = Engine::new(model);
//! let pixels = vec![0u8; 640 * 480 * 3];
//! let frame = Frame::rgb(&pixels, 640, 480, 640 * 3)?;
//! let a = engine.embed_frame(&frame)?;
//! let b = engine.embed_image_file("reference.png".as_ref())?;
//! println!("distance {}", a.distance(&b)?);
//! # Ok(()) }
//! ```

pub mod change;
pub mod cpu;
#[cfg(feature = "cuda")]
pub mod cuda;
pub mod embedding;
pub mod engine;
pub mod error;
pub mod external_data;
pub mod frame;
pub mod gpu_libs;
pub mod image_file;
pub mod int8;
pub mod limits;
pub mod model;
pub mod model_pool;
pub mod node_placement;
pub mod onnx_file;
pub mod paths;
pub mod preprocess;
pub mod provider;
mod repeats;
pub mod runtime;
pub mod session_plan;

pub use embedding::{distance, Embedding};
pub use engine::{Engine, EngineStats, PreprocessingDevice};
pub use error::{Error, Result};
pub use frame::{Colorimetry, Frame, PixelFormat, Plane, YuvMatrix, YuvRange};
pub use image_file::ImageLimits;
pub use int8::RequestedPrecision;
pub use model::{Model, ModelInfo, ModelOptions};
pub use preprocess::Preprocessor;
pub use provider::{ComputePrecision, ExecutionProvider};
pub use runtime::{runtime, Runtime, RuntimeBuild, RuntimeLogLevel};

/// Version of this crate and the commit it was built from (set by build.rs).
pub const BUILD_VERSION: &str =
    concat!(env!("CARGO_PKG_VERSION"), "+", env!("DREAMSIM_GIT_COMMIT"));
