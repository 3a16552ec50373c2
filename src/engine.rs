//! Frames in, embeddings out: a model with its preprocessing and input buffer.

use std::fmt;
use std::path::Path;
use std::time::{Duration, Instant};

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

/// What an [`Engine`] has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Frames embedded.
    pub frames: u64,
    /// Frames the model actually ran on (the others repeated their predecessor).
    pub inferred_frames: u64,
    /// Model runs.
    pub batches: u64,
    /// Time spent converting and resizing frames into model input (CPU path).
    pub preprocess: Duration,
    /// Time spent in the model (on the GPU path, upload and preprocessing too).
    pub inference: Duration,
}

/// A model plus everything needed to feed it frames. The input batch buffer
/// is kept and only grows, so a steady stream allocates nothing but the
/// embeddings it returns.
#[derive(Debug)]
pub struct Engine {
    model: Model,
    preprocessor: Preprocessor,
    batch: Array4<f32>,
    /// Batch slot of each frame of the current call (reused buffer).
    slots: Vec<Option<usize>>,
    /// The last frame's resized input and embedding, to skip exact repeats.
    last_input: Option<Vec<u8>>,
    last_embedding: Option<Embedding>,
    stats: EngineStats,
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
            slots: Vec::new(),
            last_input: None,
            last_embedding: None,
            stats: EngineStats::default(),
            #[cfg(feature = "cuda")]
            gpu,
            cpu_reason,
        }
    }

    /// The model.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The model, for another engine (see [`crate::model_pool`]).
    pub fn into_model(self) -> Model {
        self.model
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
    ///
    /// A frame whose preprocessed input is identical to the frame before it
    /// (in this batch, or the last frame of the previous call) reuses that
    /// frame's embedding instead of running the model on it again: a still
    /// picture or a repeated frame costs a comparison, not an inference.
    pub fn embed_frames(&mut self, frames: &[Frame<'_>]) -> Result<Vec<Embedding>> {
        let n = frames.len();
        if n == 0 {
            return Ok(Vec::new());
        }
        #[cfg(feature = "cuda")]
        if let Some(gpu) = &mut self.gpu {
            let started = Instant::now();
            let embeddings = gpu.embed(&mut self.model, frames)?;
            self.stats.frames += n as u64;
            self.stats.inferred_frames += n as u64;
            self.stats.batches += 1;
            self.stats.inference += started.elapsed();
            return Ok(embeddings);
        }
        let result = self.embed_frames_cpu(frames);
        if result.is_err() {
            // last_input may already describe frames whose embeddings were
            // never computed: nothing may be reused from this call.
            self.last_input = None;
            self.last_embedding = None;
        }
        result
    }

    fn embed_frames_cpu(&mut self, frames: &[Frame<'_>]) -> Result<Vec<Embedding>> {
        let n = frames.len();
        let size = self.preprocessor.size();
        if self.batch.shape()[0] < n {
            self.batch = Array4::zeros((n, 3, size, size));
        }

        let started = Instant::now();
        // For each frame, the batch slot it runs in, or None when it repeats
        // the frame before it.
        self.slots.clear();
        let mut used = 0;
        for (i, frame) in frames.iter().enumerate() {
            let resized = self.preprocessor.resize(frame)?;
            let repeat = self.last_input.as_deref() == Some(resized)
                && (i > 0 || self.last_embedding.is_some());
            if repeat {
                self.slots.push(None);
                continue;
            }
            let mut slot = self.batch.slice_mut(s![used, .., .., ..]);
            let out = slot
                .as_slice_mut()
                .expect("a batch slot of a standard-layout array is contiguous");
            Preprocessor::to_planar(resized, out);
            match &mut self.last_input {
                Some(last) => last.copy_from_slice(resized),
                None => self.last_input = Some(resized.to_vec()),
            }
            self.slots.push(Some(used));
            used += 1;
        }
        let preprocessed = Instant::now();
        self.stats.preprocess += preprocessed - started;

        let mut embedded = if used > 0 {
            let out = self.model.embed(self.batch.slice(s![..used, .., .., ..]))?;
            self.stats.batches += 1;
            self.stats.inference += preprocessed.elapsed();
            out
        } else {
            Vec::new()
        }
        .into_iter();

        let mut out = Vec::with_capacity(n);
        let mut previous = self.last_embedding.take();
        for slot in &self.slots {
            let e = match slot {
                Some(_) => embedded.next().expect("one embedding per used slot"),
                None => previous
                    .clone()
                    .expect("a repeat follows an embedded frame"),
            };
            previous = Some(e.clone());
            out.push(e);
        }
        self.last_embedding = previous;
        self.stats.frames += n as u64;
        self.stats.inferred_frames += used as u64;
        Ok(out)
    }

    /// Counters and time spent so far, for benchmarks and logs.
    pub fn stats(&self) -> EngineStats {
        self.stats
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
    ///
    /// The image is not a frame of the stream: it counts in no statistic (a
    /// benchmark reads them as the stream's), and the next frame is still
    /// compared with the previous *frame* for reuse.
    ///
    /// The image size is limited by [`ImageLimits::resolve(0)`](image_file::ImageLimits::resolve):
    /// `$GST_DREAMSIM_REFERENCE_MAX_PIXELS` or the default.
    pub fn embed_image_file(&mut self, path: &Path) -> Result<Embedding> {
        self.embed_image_file_with_limits(path, &image_file::ImageLimits::resolve(0)?)
    }

    /// [`embed_image_file`](Self::embed_image_file) with explicit decoding limits.
    pub fn embed_image_file_with_limits(
        &mut self,
        path: &Path,
        limits: &image_file::ImageLimits,
    ) -> Result<Embedding> {
        let img = image_file::read_rgb_with_limits(path, limits)?;
        let frame = Frame::rgb(&img.data, img.width, img.height, img.width * 3)?;
        let stats = self.stats;
        let last_input = self.last_input.take();
        let last_embedding = self.last_embedding.take();
        let embedding = self.embed_frame(&frame);
        self.stats = stats;
        self.last_input = last_input;
        self.last_embedding = last_embedding;
        embedding
    }
}
