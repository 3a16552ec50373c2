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
use crate::repeats::Repeats;

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
/// is kept and only grows (up to the model's [`max_batch`](Model::max_batch)),
/// so a steady stream allocates nothing but the embeddings it returns.
#[derive(Debug)]
pub struct Engine {
    model: Model,
    preprocessor: Preprocessor,
    batch: Array4<f32>,
    /// Exact repeats of the previous frame, on either path.
    repeats: Repeats,
    /// Whether each frame of the current run repeats (reused buffer).
    repeat: Vec<bool>,
    stats: EngineStats,
    /// GPU preprocessing and the device batch, when the model runs on a GPU
    /// provider and CUDA works here.
    #[cfg(feature = "cuda")]
    gpu: Option<Box<dyn crate::cuda::batch::DeviceStages>>,
    /// Why the CPU preprocesses, when it does.
    cpu_reason: Option<String>,
}

/// What one model run on the CPU path did.
struct CpuRun {
    embeddings: Vec<Embedding>,
    inferred: usize,
    runs: u64,
    preprocess: Duration,
    inference: Duration,
}

impl Engine {
    /// Wraps a loaded model.
    ///
    /// With the crate feature `cuda`, frames for a model on the CUDA or
    /// TensorRT provider are preprocessed on that GPU when CUDA and NVRTC load
    /// (see [`preprocessing_device`](Self::preprocessing_device)); otherwise,
    /// and always for the CPU provider, on the CPU.
    pub fn new(model: Model) -> Self {
        #[cfg(feature = "cuda")]
        let (gpu, cpu_reason) = match crate::cuda::GpuStages::for_model(&model) {
            Ok(gpu) => (
                Some(Box::new(gpu) as Box<dyn crate::cuda::batch::DeviceStages>),
                None,
            ),
            Err(reason) => (None, Some(reason)),
        };
        #[cfg(not(feature = "cuda"))]
        let cpu_reason = Some("built without the `cuda` feature".to_string());
        let mut engine = Self::on_cpu(model);
        #[cfg(feature = "cuda")]
        {
            engine.gpu = gpu;
        }
        engine.cpu_reason = cpu_reason;
        engine
    }

    fn on_cpu(model: Model) -> Self {
        let size = model.info().input_size;
        Self {
            model,
            preprocessor: Preprocessor::new(size),
            batch: Array4::zeros((1, 3, size, size)),
            repeats: Repeats::default(),
            repeat: Vec::new(),
            stats: EngineStats::default(),
            #[cfg(feature = "cuda")]
            gpu: None,
            cpu_reason: None,
        }
    }

    /// An engine whose GPU path runs on `stages` instead of the CUDA
    /// device the model's provider names: the device stages of another
    /// implementation (tests run the CUDA kernels in a CPU emulation
    /// through it). `stages` must leave model inputs the model can read
    /// (see [`DeviceStages::run`](crate::cuda::batch::DeviceStages::run)).
    #[cfg(feature = "cuda")]
    pub fn with_device_stages(
        model: Model,
        stages: Box<dyn crate::cuda::batch::DeviceStages>,
    ) -> Self {
        let mut engine = Self::on_cpu(model);
        engine.gpu = Some(stages);
        engine
    }

    /// The model.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The model, for another engine (see [`crate::model_pool`]).
    pub fn into_model(self) -> Model {
        self.model
    }

    /// Where frames are preprocessed: fixed when the engine is made, except
    /// that a GPU whose memory runs out hands the work to the CPU for good
    /// (see [`cpu_preprocessing_reason`](Self::cpu_preprocessing_reason)).
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

    /// Embeds frames; one embedding per frame, in order.
    ///
    /// The frames run in model runs of at most the model's
    /// [`max_batch`](Model::max_batch) frames (exactly that many, padded,
    /// for a model whose graph fixes the batch).
    ///
    /// A frame whose preprocessed input is identical to the frame before it
    /// (in this call, or the last frame of the previous call) reuses that
    /// frame's embedding instead of running the model on it again: a still
    /// picture or a repeated frame costs a comparison, not an inference, on
    /// the CPU and the GPU path alike.
    pub fn embed_frames(&mut self, frames: &[Frame<'_>]) -> Result<Vec<Embedding>> {
        let mut out = Vec::with_capacity(frames.len());
        for chunk in frames.chunks(self.model.max_batch().max(1)) {
            match self.embed_run(chunk) {
                Ok(e) => out.extend(e),
                Err(e) => {
                    // The recorded last input may describe a frame whose
                    // embedding was never computed: nothing may be reused.
                    self.repeats.forget();
                    return Err(e);
                }
            }
        }
        Ok(out)
    }

    /// One model run's frames, on the GPU when it preprocesses, else (or
    /// when its memory runs out) on the CPU.
    fn embed_run(&mut self, frames: &[Frame<'_>]) -> Result<Vec<Embedding>> {
        #[cfg(feature = "cuda")]
        if let Some(gpu) = &mut self.gpu {
            use crate::cuda::batch::{embed_on_device, DeviceRunError, StageFrame};
            let started = Instant::now();
            let staged: Vec<StageFrame<'_, '_>> = frames.iter().map(StageFrame::Host).collect();
            // SAFETY: host frames only.
            match unsafe {
                embed_on_device(
                    gpu.as_mut(),
                    &mut self.model,
                    &mut self.repeats,
                    &mut self.repeat,
                    &staged,
                )
            } {
                Ok(run) => {
                    self.stats.frames += frames.len() as u64;
                    self.stats.inferred_frames += run.inferred as u64;
                    self.stats.batches += run.runs;
                    self.stats.inference += started.elapsed();
                    return Ok(run.embeddings);
                }
                Err(DeviceRunError::Allocation(why)) => {
                    // Device memory ran out (a huge frame, or TensorRT took
                    // it): the CPU preprocesses from now on, and the GPU
                    // buffers are freed.
                    self.gpu = None;
                    self.repeats.forget();
                    self.cpu_reason = Some(format!(
                        "GPU memory could not be allocated ({why}): preprocessing moved to the CPU"
                    ));
                }
                Err(DeviceRunError::Failed(e)) => return Err(e),
            }
        }
        let run = cpu_run(
            &mut self.model,
            &mut self.preprocessor,
            &mut self.batch,
            &mut self.repeat,
            frames,
            Some(&mut self.repeats),
        )?;
        self.stats.frames += frames.len() as u64;
        self.stats.inferred_frames += run.inferred as u64;
        self.stats.batches += run.runs;
        self.stats.preprocess += run.preprocess;
        self.stats.inference += run.inference;
        Ok(run.embeddings)
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
        use crate::cuda::batch::{embed_on_device, DeviceRunError, StageFrame};
        if frames.is_empty() {
            return Ok(Vec::new());
        }
        let Some(gpu) = &mut self.gpu else {
            return Err(crate::error::Error::InvalidFrame(format!(
                "frames in device memory need GPU preprocessing, which is off here: {}",
                self.cpu_reason.as_deref().unwrap_or("unknown reason")
            )));
        };
        let mut out = Vec::with_capacity(frames.len());
        for chunk in frames.chunks(self.model.max_batch().max(1)) {
            let started = Instant::now();
            let staged: Vec<StageFrame<'_, '_>> = chunk.iter().map(StageFrame::Device).collect();
            // SAFETY: forwarded from the caller.
            let run = unsafe {
                embed_on_device(
                    gpu.as_mut(),
                    &mut self.model,
                    &mut self.repeats,
                    &mut self.repeat,
                    &staged,
                )
            };
            match run {
                Ok(run) => {
                    self.stats.frames += chunk.len() as u64;
                    self.stats.inferred_frames += run.inferred as u64;
                    self.stats.batches += run.runs;
                    self.stats.inference += started.elapsed();
                    out.extend(run.embeddings);
                }
                // Frames in device memory have no CPU path to fall back to.
                Err(DeviceRunError::Allocation(why)) => {
                    self.repeats.forget();
                    return Err(crate::error::Error::Gpu(format!(
                        "device memory could not be allocated: {why}"
                    )));
                }
                Err(DeviceRunError::Failed(e)) => {
                    self.repeats.forget();
                    return Err(e);
                }
            }
        }
        Ok(out)
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
    /// compared with the previous *frame* for reuse. It is preprocessed on
    /// the CPU whatever device preprocesses the frames, so a large image
    /// never grows the GPU's buffers.
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
        // Always on the CPU path: an image (up to 8192 x 8192) once per
        // change is not worth growing the GPU's pinned staging and device
        // buffers to its size for the element's life.
        let run = cpu_run(
            &mut self.model,
            &mut self.preprocessor,
            &mut self.batch,
            &mut self.repeat,
            std::slice::from_ref(&frame),
            None,
        )?;
        Ok(run
            .embeddings
            .into_iter()
            .next()
            .expect("one image gives one embedding"))
    }
}

/// Preprocesses `frames` (at most the model's batch) on the CPU into
/// `batch` and runs the model on those that do not repeat (when `repeats`
/// is given; all of them otherwise).
fn cpu_run(
    model: &mut Model,
    preprocessor: &mut Preprocessor,
    batch: &mut Array4<f32>,
    repeat: &mut Vec<bool>,
    frames: &[Frame<'_>],
    mut repeats: Option<&mut Repeats>,
) -> Result<CpuRun> {
    let n = frames.len();
    let size = preprocessor.size();
    if batch.shape()[0] < n {
        *batch = Array4::zeros((n, 3, size, size));
    }
    let started = Instant::now();
    repeat.clear();
    let mut used = 0;
    for (i, frame) in frames.iter().enumerate() {
        let resized = preprocessor.resize(frame)?;
        let is_repeat = repeats.as_mut().is_some_and(|r| r.is_repeat(resized, i));
        repeat.push(is_repeat);
        if is_repeat {
            continue;
        }
        let mut slot = batch.slice_mut(s![used, .., .., ..]);
        let out = slot
            .as_slice_mut()
            .expect("a batch slot of a standard-layout array is contiguous");
        Preprocessor::to_planar(resized, out);
        used += 1;
    }
    let preprocessed = Instant::now();
    // A fixed-batch graph pads the run to its batch itself (Model::embed).
    let (embedded, runs) = if used > 0 {
        (model.embed(batch.slice(s![..used, .., .., ..]))?, 1)
    } else {
        (Vec::new(), 0)
    };
    let inference = preprocessed.elapsed();
    let embeddings = match repeats {
        Some(r) => r.assemble(repeat, embedded),
        None => embedded,
    };
    Ok(CpuRun {
        embeddings,
        inferred: used,
        runs,
        preprocess: preprocessed - started,
        inference,
    })
}
