//! The GPU path of one model run, over any implementation of its device
//! stages: upload and resize every frame, compare the resized images with
//! the frame before (the same [`Repeats`] as the CPU path), write the model
//! input of the frames that do not repeat, run the model.
//!
//! [`GpuStages`](super::GpuStages) implements the stages on a CUDA device;
//! `tests/cuda.rs` implements them with its CPU emulation of the kernels, so
//! this logic (repeats, padding, the order of the stages) is tested on
//! machines without a GPU.

use std::fmt;

use super::plan::DeviceFrame;
use super::CudaError;
use crate::embedding::Embedding;
use crate::error::{Error, Result};
use crate::frame::Frame;
use crate::model::Model;
use crate::repeats::Repeats;

/// A frame for the device stages.
#[derive(Debug, Clone, Copy)]
pub enum StageFrame<'f, 'a> {
    /// In system memory: uploaded first.
    Host(&'f Frame<'a>),
    /// Already in device memory.
    Device(&'f DeviceFrame),
}

/// The steps of the GPU path, in the order [`embed_on_device`] calls them
/// for one model run of `n` frames: `reserve(n)`, `resize` for every frame,
/// `resized(n)`, `to_model_input` for each frame that runs (and padding),
/// `run`.
pub trait DeviceStages: Send + fmt::Debug {
    /// The device ordinal, for [`PreprocessingDevice`](crate::PreprocessingDevice).
    fn device_id(&self) -> usize;

    /// Makes room for `frames` resized images and model inputs.
    fn reserve(&mut self, frames: usize) -> std::result::Result<(), CudaError>;

    /// Queues the upload (a host frame) and resize of `frame` into resized
    /// slot `slot`.
    ///
    /// # Safety
    /// A [`StageFrame::Device`] frame must be as
    /// [`GpuPreprocessor::process_device_frame`](super::GpuPreprocessor::process_device_frame)
    /// requires until [`run`](Self::run) returns.
    unsafe fn resize(
        &mut self,
        frame: StageFrame<'_, '_>,
        slot: usize,
    ) -> std::result::Result<(), CudaError>;

    /// Waits for the queued work; the resized packed RGB images of slots
    /// `0..count`, one after the other (`size * size * 3` bytes each).
    fn resized(&mut self, count: usize) -> std::result::Result<&[u8], CudaError>;

    /// Queues the planar model input of resized slot `slot` into batch
    /// position `position`.
    fn to_model_input(
        &mut self,
        slot: usize,
        position: usize,
    ) -> std::result::Result<(), CudaError>;

    /// Waits for the queued work and runs `model` on batch positions
    /// `0..count`.
    fn run(&mut self, model: &mut Model, count: usize) -> Result<Vec<Embedding>>;
}

/// What a model run on the device did.
#[derive(Debug)]
pub(crate) struct DeviceRun {
    pub(crate) embeddings: Vec<Embedding>,
    pub(crate) inferred: usize,
    pub(crate) runs: u64,
}

/// Why a model run on the device did not happen.
#[derive(Debug)]
pub(crate) enum DeviceRunError {
    /// Device or pinned memory could not be allocated: the CPU can take over.
    Allocation(String),
    /// Anything else.
    Failed(Error),
}

impl From<CudaError> for DeviceRunError {
    fn from(e: CudaError) -> Self {
        match e {
            CudaError::Allocation { .. } => Self::Allocation(e.to_string()),
            other => Self::Failed(other.into()),
        }
    }
}

/// Runs `model` once on `frames` (at most its batch) through `stages`;
/// exact repeats of the frame before reuse its embedding (`repeats`,
/// shared with the CPU path); `repeat` is a reused buffer.
///
/// # Safety
/// As [`DeviceStages::resize`] for every frame.
pub(crate) unsafe fn embed_on_device(
    stages: &mut dyn DeviceStages,
    model: &mut Model,
    repeats: &mut Repeats,
    repeat: &mut Vec<bool>,
    frames: &[StageFrame<'_, '_>],
) -> std::result::Result<DeviceRun, DeviceRunError> {
    let n = frames.len();
    let size = model.info().input_size;
    let per_frame = 3 * size * size;
    let fixed = model.info().fixed_batch;
    stages.reserve(fixed.unwrap_or(n).max(n))?;
    for (slot, frame) in frames.iter().enumerate() {
        // SAFETY: forwarded from the caller.
        unsafe { stages.resize(*frame, slot) }?;
    }
    let resized = stages.resized(n)?;
    if resized.len() < n * per_frame {
        return Err(DeviceRunError::Failed(Error::Gpu(format!(
            "the device stages gave {} bytes of resized images for {n} frames of {per_frame}",
            resized.len()
        ))));
    }
    repeat.clear();
    for i in 0..n {
        repeat.push(repeats.is_repeat(&resized[i * per_frame..][..per_frame], i));
    }
    let mut used = 0;
    let mut first = None;
    for (slot, _) in repeat.iter().enumerate().filter(|(_, r)| !**r) {
        stages.to_model_input(slot, used)?;
        first.get_or_insert(slot);
        used += 1;
    }
    let (embedded, runs) = match first {
        Some(first) => {
            // A fixed-batch graph takes exactly its batch: padded with
            // copies of the first input, whose embeddings are dropped.
            let count = fixed.unwrap_or(used).max(used);
            for position in used..count {
                stages.to_model_input(first, position)?;
            }
            let mut out = stages.run(model, count).map_err(DeviceRunError::Failed)?;
            out.truncate(used);
            (out, 1)
        }
        None => (Vec::new(), 0),
    };
    Ok(DeviceRun {
        embeddings: repeats.assemble(repeat, embedded),
        inferred: used,
        runs,
    })
}
