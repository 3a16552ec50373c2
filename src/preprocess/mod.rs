//! DreamSim preprocessing, exactly as the reference does it: the frame as
//! 8-bit RGB, `PIL.Image.resize((S, S), BICUBIC)`, then /255 into planar f32.

pub mod convert;
pub mod resample;

use crate::error::Result;
use crate::frame::{Frame, PixelFormat};
use resample::ResizePlan;

/// Turns frames into model input. Keeps its buffers and the resize plan for
/// the last input size, so a stream of same-sized frames allocates nothing.
#[derive(Debug)]
pub struct Preprocessor {
    size: usize,
    plan: Option<ResizePlan>,
    rgb: Vec<u8>,
    resized: Vec<u8>,
    scratch: Vec<u8>,
}

impl Preprocessor {
    /// A preprocessor for a model whose input is `size` x `size`.
    pub fn new(size: usize) -> Self {
        Self {
            size,
            plan: None,
            rgb: Vec::new(),
            resized: vec![0; size * size * 3],
            scratch: Vec::new(),
        }
    }

    /// Side of the square output.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Resizes `frame` to `size` x `size` packed RGB, byte for byte what
    /// Pillow's `resize(BICUBIC)` gives for the same RGB image.
    pub fn resize(&mut self, frame: &Frame<'_>) -> Result<&[u8]> {
        let (w, h) = (frame.width(), frame.height());
        if self.plan.as_ref().is_none_or(|p| p.input_size() != (w, h)) {
            self.plan = Some(ResizePlan::new(w, h, self.size, self.size));
        }
        let plan = self.plan.as_ref().expect("plan was just set");
        // Packed RGB is read in place; everything else is converted once.
        let (src, stride) = if frame.format() == PixelFormat::Rgb {
            let plane = frame.plane(0);
            (plane.data, plane.stride)
        } else {
            convert::to_packed_rgb(frame, &mut self.rgb);
            (&self.rgb[..], w * 3)
        };
        plan.run(src, stride, &mut self.resized, &mut self.scratch);
        Ok(&self.resized)
    }

    /// Writes the model input for `frame` into `out`: planar R, G, B, each
    /// `size * size` f32 values in [0, 1] (`u8 as f32 / 255`, as torchvision's
    /// `ToTensor`).
    ///
    /// # Panics
    /// If `out` is not `3 * size * size` long.
    pub fn process(&mut self, frame: &Frame<'_>, out: &mut [f32]) -> Result<()> {
        let area = self.size * self.size;
        assert_eq!(
            out.len(),
            3 * area,
            "model input slice has the wrong length"
        );
        let rgb = self.resize(frame)?;
        Self::to_planar(rgb, out);
        Ok(())
    }

    /// Writes packed RGB bytes as planar R, G, B f32 values in [0, 1]
    /// (`u8 as f32 / 255`); `out` holds three planes of `rgb.len() / 3`.
    ///
    /// # Panics
    /// If `out.len() != rgb.len()`.
    pub fn to_planar(rgb: &[u8], out: &mut [f32]) {
        assert_eq!(out.len(), rgb.len(), "planar output has the wrong length");
        let area = rgb.len() / 3;
        let (r, gb) = out.split_at_mut(area);
        let (g, b) = gb.split_at_mut(area);
        for (i, px) in rgb.chunks_exact(3).enumerate() {
            r[i] = px[0] as f32 / 255.0;
            g[i] = px[1] as f32 / 255.0;
            b[i] = px[2] as f32 / 255.0;
        }
    }
}
