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

/// The environment variable that sets [`ImageLimits::max_pixels`] when the
/// element's `reference-max-pixels` property (or the API caller) does not.
pub const MAX_PIXELS_ENV: &str = "GST_DREAMSIM_REFERENCE_MAX_PIXELS";

/// The default largest reference image: 8192 x 8192 = 67,108,864 pixels.
/// Decoding a 16-bit RGBA image of that size needs 512 MiB, the `image`
/// crate's own default allocation limit; any photograph from a camera of up
/// to 64 megapixels fits. The image is resized to 224 x 224 anyway.
pub const DEFAULT_MAX_PIXELS: u64 = 8192 * 8192;

/// Bytes decoding may need per pixel: 16-bit RGBA, the widest format read.
const BYTES_PER_PIXEL: u64 = 8;
/// The `image` crate's default allocation limit, kept as a floor for the
/// decoders' own buffers on small images.
const MIN_ALLOC: u64 = 512 * 1024 * 1024;

/// Limits on the images [`read_rgb_with_limits`] decodes, so that a small
/// file declaring a huge size (a decompression bomb) fails with a message
/// instead of exhausting memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageLimits {
    /// Largest width x height decoded.
    pub max_pixels: u64,
}

impl Default for ImageLimits {
    fn default() -> Self {
        Self {
            max_pixels: DEFAULT_MAX_PIXELS,
        }
    }
}

impl ImageLimits {
    /// `max_pixels` when it is not 0, else `$GST_DREAMSIM_REFERENCE_MAX_PIXELS`
    /// when set, else [`DEFAULT_MAX_PIXELS`]. A variable that is not a
    /// positive number is an error that names it.
    pub fn resolve(max_pixels: u64) -> Result<Self> {
        if max_pixels > 0 {
            return Ok(Self { max_pixels });
        }
        match std::env::var(MAX_PIXELS_ENV) {
            Ok(v) if !v.trim().is_empty() => match v.trim().parse::<u64>() {
                Ok(n) if n > 0 => Ok(Self { max_pixels: n }),
                _ => Err(Error::InvalidSetting(format!(
                    "{MAX_PIXELS_ENV}=`{v}` is not a positive number of pixels"
                ))),
            },
            _ => Ok(Self::default()),
        }
    }

    /// The largest allocation decoding may make under these limits.
    pub fn max_alloc(&self) -> u64 {
        self.max_pixels
            .saturating_mul(BYTES_PER_PIXEL)
            .max(MIN_ALLOC)
    }
}

/// Reads a PNG, JPEG, BMP or WebP file as RGB, within the limits of
/// [`ImageLimits::resolve(0)`](ImageLimits::resolve) (the environment or the
/// default).
pub fn read_rgb(path: &Path) -> Result<RgbImage> {
    read_rgb_with_limits(path, &ImageLimits::resolve(0)?)
}

/// Reads a PNG, JPEG, BMP or WebP file as RGB. Alpha is dropped, not
/// composited, exactly like PIL's `Image.convert('RGB')` that the reference
/// applies; grey images are replicated to three channels.
///
/// The size in the file's header is checked against `limits` before any
/// pixel is decoded: a larger image is [`Error::ReferenceTooLarge`], which
/// says the size, the limit and how to raise it.
///
/// PNG, BMP and lossless WebP decode to the same bytes as Pillow; JPEG
/// decoders may differ from libjpeg by a unit in some pixels.
pub fn read_rgb_with_limits(path: &Path, limits: &ImageLimits) -> Result<RgbImage> {
    let err = |message: String| Error::ReferenceImage {
        path: path.to_path_buf(),
        message,
    };
    let open = || {
        image::ImageReader::open(path)
            .map_err(|e| err(e.to_string()))?
            .with_guessed_format()
            .map_err(|e| err(e.to_string()))
    };
    let (width, height, decoded_bytes) = {
        use image::ImageDecoder;
        let decoder = open()?.into_decoder().map_err(|e| err(e.to_string()))?;
        let (w, h) = decoder.dimensions();
        (w, h, decoder.total_bytes())
    };
    let pixels = u64::from(width) * u64::from(height);
    if pixels > limits.max_pixels {
        return Err(Error::ReferenceTooLarge {
            path: path.to_path_buf(),
            width,
            height,
            pixels,
            max_pixels: limits.max_pixels,
            bytes: pixels.saturating_mul(BYTES_PER_PIXEL),
            env: MAX_PIXELS_ENV,
        });
    }
    // A limit raised far enough lets the decoder ask for more memory than
    // the machine has, and a failed allocation aborts the process: probe it
    // first (untouched, so it costs no real memory).
    if Vec::<u8>::new()
        .try_reserve_exact(usize::try_from(decoded_bytes).unwrap_or(usize::MAX))
        .is_err()
    {
        return Err(err(format!(
            "decoding this {width} x {height} image needs {decoded_bytes} bytes of memory, which \
             cannot be allocated here"
        )));
    }
    let mut reader = open()?;
    let mut decode_limits = image::Limits::default();
    decode_limits.max_image_width = Some(width);
    decode_limits.max_image_height = Some(height);
    decode_limits.max_alloc = Some(limits.max_alloc());
    reader.limits(decode_limits);
    let img = reader.decode().map_err(|e| match e {
        image::ImageError::Limits(l) => err(format!(
            "{l}: decoding this {width} x {height} image needs more than {} bytes, the limit for \
             {} pixels; raise `reference-max-pixels` or {MAX_PIXELS_ENV}",
            limits.max_alloc(),
            limits.max_pixels
        )),
        e => err(e.to_string()),
    })?;
    let rgb = img.into_rgb8();
    Ok(RgbImage {
        width: rgb.width() as usize,
        height: rgb.height() as usize,
        data: rgb.into_raw(),
    })
}
