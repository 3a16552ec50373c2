//! The GPU path (cargo feature `cuda`): frames to the device through a pinned
//! staging buffer, PIL-exact preprocessing in CUDA kernels, and the model
//! input handed to ONNX Runtime's CUDA or TensorRT provider as a view over
//! device memory, with no copy back to the host.
//!
//! Everything loads at run time (`libcuda` and `libnvrtc` through cudarc's
//! dynamic loading), so a build with this feature runs on machines without
//! CUDA: [`GpuPreprocessor::new`] then fails with a [`CudaError`] and the
//! [`Engine`](crate::Engine) preprocesses on the CPU as it always does.
//!
//! - [`plan`]: what to launch for a frame (pure host code, testable anywhere);
//! - [`kernels`]: the CUDA C source and its NVRTC build;
//! - [`GpuPreprocessor`]: upload, launches, downloads for tests;
//! - [`batch`]: one model run of the engine's GPU branch (repeats, padding,
//!   the order of the stages) over any [`batch::DeviceStages`], of which
//!   `GpuStages` here is the CUDA one.

pub mod batch;
pub mod kernels;
pub mod plan;
mod preprocess;

use std::panic::{catch_unwind, AssertUnwindSafe};

use cudarc::driver::{CudaSlice, DevicePtr};

pub use preprocess::GpuPreprocessor;

use crate::embedding::Embedding;
use crate::error::{Error, Result};
use crate::model::Model;
use crate::provider::ExecutionProvider;

/// Set to `cpu` to keep preprocessing on the CPU even when the model runs
/// on a GPU provider (for comparisons and as an escape hatch).
pub const PREPROCESS_ENV: &str = "DREAMSIM_PREPROCESS";

/// Why the GPU path cannot run, or failed.
#[derive(Debug, thiserror::Error)]
pub enum CudaError {
    /// `libcuda.so` cannot be loaded.
    #[error("the NVIDIA driver library libcuda.so.1 cannot be loaded (no NVIDIA driver on this machine)")]
    NoDriver,
    /// `libnvrtc.so` cannot be loaded.
    #[error(
        "NVRTC (libnvrtc.so, CUDA 13) cannot be loaded; install the CUDA toolkit or the \
         nvidia-cuda-nvrtc wheel and put its lib folder on LD_LIBRARY_PATH"
    )]
    NoNvrtc,
    /// Device or pinned host memory could not be allocated (the engine
    /// then preprocesses on the CPU).
    #[error("CUDA could not allocate {what}: {reason}")]
    Allocation {
        /// What was being allocated.
        what: &'static str,
        /// The driver's error, in words.
        reason: String,
    },
    /// A driver call failed.
    #[error("CUDA failed while {what}: {source}")]
    Driver {
        /// What was being done.
        what: &'static str,
        /// The driver's error.
        source: cudarc::driver::DriverError,
    },
    /// NVRTC rejected the kernels.
    #[error("NVRTC could not compile the preprocessing kernels: {0}")]
    Compile(String),
    /// A frame or request the GPU path does not handle.
    #[error("{0}")]
    Unsupported(String),
    /// cudarc panicked (a missing driver symbol, say) and the panic was caught.
    #[error("a CUDA call panicked: {0}")]
    Panicked(String),
}

impl CudaError {
    pub(crate) fn driver(what: &'static str, source: cudarc::driver::DriverError) -> Self {
        Self::Driver { what, source }
    }

    pub(crate) fn allocation(what: &'static str, source: cudarc::driver::DriverError) -> Self {
        // In words now, while the driver that failed is loaded (the
        // driver error's text comes from the driver).
        Self::Allocation {
            what,
            reason: source.to_string(),
        }
    }

    /// The error a full device gives (`CUDA_ERROR_OUT_OF_MEMORY`) when
    /// allocating `what`: for other implementations of
    /// [`batch::DeviceStages`].
    pub fn out_of_device_memory(what: &'static str) -> Self {
        Self::Allocation {
            what,
            reason: "out of memory (CUDA_ERROR_OUT_OF_MEMORY)".into(),
        }
    }
}

impl From<CudaError> for Error {
    fn from(e: CudaError) -> Self {
        Error::Gpu(e.to_string())
    }
}

/// Runs `f`, turning a panic inside cudarc (it panics where a library or
/// symbol is missing) into an error, so the element never aborts on it.
pub(crate) fn catch_panics<T>(f: impl FnOnce() -> Result<T, CudaError>) -> Result<T, CudaError> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        let message = payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "unknown panic".into());
        Err(CudaError::Panicked(message))
    })
}

/// Checks that `libcuda` loads; every driver call panics without it.
pub fn driver_present() -> Result<(), CudaError> {
    // SAFETY: only tries to load the library.
    if unsafe { cudarc::driver::sys::is_culib_present() } {
        Ok(())
    } else {
        Err(CudaError::NoDriver)
    }
}

/// The number of CUDA devices, or why there are none usable.
pub fn device_count() -> Result<usize, CudaError> {
    driver_present()?;
    catch_panics(|| {
        cudarc::driver::CudaContext::device_count()
            .map(|n| n.max(0) as usize)
            .map_err(|e| CudaError::driver("counting devices", e))
    })
}

/// Whether frames for a model on `provider` may be preprocessed on the GPU,
/// given the value of [`PREPROCESS_ENV`]: `Err` says why not.
///
/// Only the CUDA and TensorRT providers may receive device memory: a tensor
/// tagged as CUDA memory given to a session on the CPU provider is read as
/// host memory (a crash), so every other provider keeps the CPU path.
pub fn gpu_preprocessing_allowed(
    provider: ExecutionProvider,
    env: Option<&str>,
) -> std::result::Result<(), String> {
    if env.is_some_and(|v| v.eq_ignore_ascii_case("cpu")) {
        return Err(format!("{PREPROCESS_ENV}=cpu"));
    }
    match provider {
        ExecutionProvider::Cuda | ExecutionProvider::TensorRt => Ok(()),
        other => Err(format!("the model runs on the {other} provider")),
    }
}

/// The engine's GPU state: the preprocessor, the resized images of a run
/// (on the device, and their host copy for the repeat comparison) and the
/// device batch the model reads in place.
#[derive(Debug)]
pub(crate) struct GpuStages {
    preprocessor: GpuPreprocessor,
    resized: Option<CudaSlice<u8>>,
    host_resized: Vec<u8>,
    batch: Option<CudaSlice<f32>>,
}

impl GpuStages {
    /// GPU preprocessing for `model`, or why the CPU keeps it.
    pub(crate) fn for_model(model: &Model) -> std::result::Result<Self, String> {
        let env = std::env::var(PREPROCESS_ENV).ok();
        gpu_preprocessing_allowed(model.provider(), env.as_deref())?;
        let device = usize::try_from(model.device_id())
            .map_err(|_| format!("device id {} is not a CUDA ordinal", model.device_id()))?;
        let preprocessor =
            GpuPreprocessor::new(device, model.info().input_size).map_err(|e| e.to_string())?;
        Ok(Self {
            preprocessor,
            resized: None,
            host_resized: Vec::new(),
            batch: None,
        })
    }

    fn per_frame(&self) -> usize {
        3 * self.preprocessor.size() * self.preprocessor.size()
    }

    fn resized_address(&self, slot: usize) -> u64 {
        let stream = self.preprocessor.stream();
        let base = self
            .resized
            .as_ref()
            .expect("reserve comes first")
            .device_ptr(stream)
            .0;
        base + (slot * self.per_frame()) as u64
    }

    fn batch_address(&self, position: usize) -> u64 {
        let stream = self.preprocessor.stream();
        let base = self
            .batch
            .as_ref()
            .expect("reserve comes first")
            .device_ptr(stream)
            .0;
        base + (position * self.per_frame() * std::mem::size_of::<f32>()) as u64
    }
}

impl batch::DeviceStages for GpuStages {
    fn device_id(&self) -> usize {
        self.preprocessor.device_id()
    }

    fn reserve(&mut self, frames: usize) -> std::result::Result<(), CudaError> {
        let len = frames * self.per_frame();
        if self.resized.as_ref().is_none_or(|b| b.len() < len) {
            // The old buffer is freed in stream order first.
            self.resized = None;
            self.resized = Some(self.preprocessor.alloc_u8(len)?);
        }
        if self.batch.as_ref().is_none_or(|b| b.len() < len) {
            self.batch = None;
            self.batch = Some(self.preprocessor.alloc_f32(len)?);
        }
        Ok(())
    }

    unsafe fn resize(
        &mut self,
        frame: batch::StageFrame<'_, '_>,
        slot: usize,
    ) -> std::result::Result<(), CudaError> {
        let resized = self.resized_address(slot);
        // SAFETY: `resized` addresses 3 * size * size bytes of the buffer
        // reserved for this run; a device frame is the caller's promise.
        unsafe {
            match frame {
                batch::StageFrame::Host(f) => self.preprocessor.resize_into(f, resized),
                batch::StageFrame::Device(f) => {
                    self.preprocessor.resize_device_frame_into(f, resized)
                }
            }
        }
    }

    fn resized(&mut self, count: usize) -> std::result::Result<&[u8], CudaError> {
        let len = count * self.per_frame();
        self.host_resized.resize(len, 0);
        let src = self.resized.as_ref().expect("reserve comes first");
        self.preprocessor
            .stream()
            .memcpy_dtoh(&src.slice(..len), &mut self.host_resized[..])
            .map_err(|e| CudaError::driver("downloading the resized images", e))?;
        self.preprocessor.synchronize()?;
        Ok(&self.host_resized)
    }

    fn to_model_input(
        &mut self,
        slot: usize,
        position: usize,
    ) -> std::result::Result<(), CudaError> {
        let (resized, planar) = (self.resized_address(slot), self.batch_address(position));
        // SAFETY: both address buffers reserved for this run, of a resized
        // image and a model input.
        unsafe { self.preprocessor.planar_from_resized(resized, planar) }
    }

    fn run(&mut self, model: &mut Model, count: usize) -> Result<Vec<Embedding>> {
        // ONNX Runtime reads the batch on its own stream: the kernels must
        // have finished first.
        self.preprocessor.synchronize()?;
        let base = self.batch_address(0);
        // SAFETY: `base` holds count * 3 * size * size floats of finished
        // work on this device (reserve made room for them), and the buffer
        // outlives the call.
        unsafe { model.embed_device(base, count) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_gpu_providers_get_device_memory() {
        use ExecutionProvider::*;
        assert!(gpu_preprocessing_allowed(Cuda, None).is_ok());
        assert!(gpu_preprocessing_allowed(TensorRt, Some("auto")).is_ok());
        assert!(gpu_preprocessing_allowed(Cpu, None)
            .unwrap_err()
            .contains("cpu provider"));
        // Auto is never what a loaded model runs on, but it is not a GPU.
        assert!(gpu_preprocessing_allowed(Auto, None).is_err());
        assert!(gpu_preprocessing_allowed(Cuda, Some("CPU"))
            .unwrap_err()
            .contains(PREPROCESS_ENV));
    }

    #[test]
    fn the_engine_can_move_to_another_thread() {
        // The element runs inference on its own thread.
        fn send<T: Send>() {}
        send::<crate::Engine>();
        send::<GpuPreprocessor>();
        send::<GpuStages>();
    }

    #[test]
    fn panics_become_errors() {
        let r: std::result::Result<(), CudaError> = catch_panics(|| panic!("no symbol cuFoo"));
        match r {
            Err(CudaError::Panicked(m)) => assert!(m.contains("cuFoo")),
            other => panic!("{other:?}"),
        }
    }
}
