//! Reading a still image (the reference) as 8-bit RGB.

use std::path::Path;

use crate::error::{Error, Result};

/// A decoded image as packed 8-bit RGB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RgbImage {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// `width * height * 3` bytes, rows without padding.
    pub data: Vec<u8>,
}

/// Reads a PNG, JPEG, BMP or WebP file as RGB. Alpha is dropped, not
/// composited, exactly like PIL's `Image.convert('RGB')` that the reference
/// applies; grey images are replicated to three channels.
///
/// PNG, BMP and lossless WebP decode to the same bytes as Pillow; JPEG
/// decoders may differ from libjpeg by a unit in some pixels.
pub fn read_rgb(path: &Path) -> Result<RgbImage> {
    let err = |message: String| Error::ReferenceImage {
        path: path.to_path_buf(),
        message,
    };
    let reader = image::ImageReader::open(path)
        .map_err(|e| err(e.to_string()))?
        .with_guessed_format()
        .map_err(|e| err(e.to_string()))?;
    let img = reader.decode().map_err(|e| err(e.to_string()))?;
    let rgb = img.into_rgb8();
    Ok(RgbImage {
        width: rgb.width() as usize,
        height: rgb.height() as usize,
        data: rgb.into_raw(),
    })
}
