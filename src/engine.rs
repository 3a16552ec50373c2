//! Frames in, embeddings out: a model with its preprocessing and input buffer.

use std::path::Path;

use ndarray::{s, Array4};

use crate::embedding::Embedding;
use crate::error::Result;
use crate::frame::Frame;
use crate::image_file;
use crate::model::Model;
use crate::preprocess::Preprocessor;

/// A model plus everything needed to feed it frames. The input batch buffer
/// is kept and only grows, so a steady stream allocates nothing but the
/// embeddings it returns.
#[derive(Debug)]
pub struct Engine {
    model: Model,
    preprocessor: Preprocessor,
    batch: Array4<f32>,
}

impl Engine {
    /// Wraps a loaded model.
    pub fn new(model: Model) -> Self {
        let size = model.info().input_size;
        Self {
            model,
            preprocessor: Preprocessor::new(size),
            batch: Array4::zeros((1, 3, size, size)),
        }
    }

    /// The model.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// Embeds a batch of frames in one model run; one embedding per frame, in order.
    pub fn embed_frames(&mut self, frames: &[Frame<'_>]) -> Result<Vec<Embedding>> {
        let n = frames.len();
        if n == 0 {
            return Ok(Vec::new());
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
