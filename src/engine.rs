//! Frames in, embeddings out: a model with its preprocessing and input buffer.

use std::fmt;
use std::path::Path;

use ndarray::{s, Array4};

use crate::embedding::Embedding;
use crate::error::Result;
use crate::frame::Frame;
use crate::image_file;
use crate::model::Model;
use crate::preprocess::Preprocessor;

/// Where an [`Engine`] preprocesses frames (resize, conversion, /255).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PreprocessingDevice {
    /// On the CPU, into a host batch the model reads (or copies to its device).
    Cpu,
    /// In CUDA kernels on this device, into a device batch the model reads in
    /// place (crate feature `cuda`, model on the CUDA or TensorRT provider).
    Cuda {
        /// The CUDA device ordinal.
        device_id: usize,
    },
}

impl fmt::Display for PreprocessingDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cpu => f.write_str("cpu"),
            Self::Cuda { device_id } => write!(f, "cuda:{device_id}"),
        }
    }
}

/// A model plus everything needed to feed it frames. The input batch buffer
/// is kept and only grows, so a steady stream allocates nothing but the
/// embeddings it returns.
#[derive(Debug)]
pub struct Engine {
    model: Model,
    preprocessor: Preprocessor,
    batch: Array4<f32>,
    /// GPU preprocessing and the device batch, when the model runs on a GPU
    /// provider and CUDA works here.
    #[cfg(feature = "cuda")]
    gpu: Option<crate::cuda::GpuInput>,
    /// Why the CPU preprocesses, when it does.
    cpu_reason: Option<String>,
}

impl Engine {
    /// Wraps a loaded model.
    ///
    /// With the crate feature `cuda`, frames for a model on the CUDA or
    /// TensorRT provider are preprocessed on that GPU when CUDA and NVRTC load
    /// (see [`preprocessing_device`](Self::preprocessing_device)); otherwise,
    /// and always for the CPU provider, on the CPU.
    pub fn new(model: Model) -> Self {
        let size = model.info().input_size;
        #[cfg(feature = "cuda")]
        let (gpu, cpu_reason) = match crate::cuda::GpuInput::for_model(&model) {
            Ok(gpu) => (Some(gpu), None),
            Err(reason) => (None, Some(reason)),
        };
        #[cfg(not(feature = "cuda"))]
        let cpu_reason = Some("built without the `cuda` feature".to_string());
        Self {
            model,
            preprocessor: Preprocessor::new(size),
            batch: Array4::zeros((1, 3, size, size)),
            #[cfg(feature = "cuda")]
            gpu,
            cpu_reason,
        }
    }

    /// The model.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// Where frames are preprocessed; fixed when the engine is made.
    pub fn preprocessing_device(&self) -> PreprocessingDevice {
        #[cfg(feature = "cuda")]
        if let Some(gpu) = &self.gpu {
            return PreprocessingDevice::Cuda {
                device_id: gpu.device_id(),
            };
        }
        PreprocessingDevice::Cpu
    }

    /// Why frames are preprocessed on the CPU (`None` when they are not):
    /// for a log line next to the provider.
    pub fn cpu_preprocessing_reason(&self) -> Option<&str> {
        self.cpu_reason.as_deref()
    }

    /// Embeds a batch of frames in one model run; one embedding per frame, in order.
    pub fn embed_frames(&mut self, frames: &[Frame<'_>]) -> Result<Vec<Embedding>> {
        let n = frames.len();
        if n == 0 {
            return Ok(Vec::new());
        }
        #[cfg(feature = "cuda")]
        if let Some(gpu) = &mut self.gpu {
            return gpu.embed(&mut self.model, frames);
        }
        let size = self.preprocessor.size();
        if self.batch.shape()[0] < n {
            self.batch = Array4::zeros((n, 3, size, size));
        }
        for (i, frame) in frames.iter().enumerate() {
            let mut slot = self.batch.slice_mut(s![i, .., .., ..]);
            let out = slot
                .as_slice_mut()
                .expect("a batch slot of a standard-layout array is contiguous");
            self.preprocessor.process(frame, out)?;
        }
        self.model.embed(self.batch.slice(s![..n, .., .., ..]))
    }

    /// Embeds frames that are already in CUDA device memory (decoded there,
    /// say), in one model run, without any copy through the host.
    ///
    /// Fails unless the engine preprocesses on the GPU
    /// ([`preprocessing_device`](Self::preprocessing_device) is
    /// [`PreprocessingDevice::Cuda`]).
    ///
    /// # Safety
    /// Every plane of every frame must be device memory on the engine's
    /// device, readable from that device's primary context, of the size its
    /// format, dimensions and strides imply, and unchanged until the call
    /// returns.
    #[cfg(feature = "cuda")]
    pub unsafe fn embed_device_frames(
        &mut self,
        frames: &[crate::cuda::plan::DeviceFrame],
    ) -> Result<Vec<Embedding>> {
        if frames.is_empty() {
            return Ok(Vec::new());
        }
        match &mut self.gpu {
            // SAFETY: forwarded from the caller.
            Some(gpu) => unsafe { gpu.embed_device_frames(&mut self.model, frames) },
            None => Err(crate::error::Error::InvalidFrame(format!(
                "frames in device memory need GPU preprocessing, which is off here: {}",
                self.cpu_reason.as_deref().unwrap_or("unknown reason")
            ))),
        }
    }

    /// Embeds one frame.
    pub fn embed_frame(&mut self, frame: &Frame<'_>) -> Result<Embedding> {
        Ok(self
            .embed_frames(std::slice::from_ref(frame))?
            .pop()
            .expect("one frame gives one embedding"))
    }

    /// Embeds an image file (the reference image), read as the reference
    /// package reads it: `PIL.Image.open(path).convert('RGB')`.
    pub fn embed_image_file(&mut self, path: &Path) -> Result<Embedding> {
        let img = image_file::read_rgb(path)?;
        let frame = Frame::rgb(&img.data, img.width, img.height, img.width * 3)?;
        self.embed_frame(&frame)
    }
}
