//! A video frame as the engine sees it: pixel format, planes and strides,
//! with no dependency on GStreamer.

use crate::error::{Error, Result};

/// Pixel layouts the preprocessing understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PixelFormat {
    /// Packed 24-bit R, G, B.
    Rgb,
    /// Packed 24-bit B, G, R.
    Bgr,
    /// Packed 32-bit R, G, B, A (alpha ignored, as PIL's `convert('RGB')`).
    Rgba,
    /// Packed 32-bit B, G, R, A.
    Bgra,
    /// Packed 32-bit A, R, G, B.
    Argb,
    /// Packed 32-bit A, B, G, R.
    Abgr,
    /// Packed 32-bit R, G, B, padding.
    Rgbx,
    /// Packed 32-bit B, G, R, padding.
    Bgrx,
    /// Packed 32-bit padding, R, G, B.
    Xrgb,
    /// Packed 32-bit padding, B, G, R.
    Xbgr,
    /// 8-bit grey, replicated to R = G = B.
    Gray8,
    /// Planar Y, U, V, chroma subsampled 2x2.
    I420,
    /// Planar Y, V, U, chroma subsampled 2x2.
    Yv12,
    /// Y plane, then interleaved U, V subsampled 2x2.
    Nv12,
    /// Y plane, then interleaved V, U subsampled 2x2.
    Nv21,
}

impl PixelFormat {
    /// For packed RGB-family formats: bytes per pixel and the byte offsets of R, G, B.
    pub fn packed_rgb_layout(self) -> Option<(usize, [usize; 3])> {
        Some(match self {
            Self::Rgb => (3, [0, 1, 2]),
            Self::Bgr => (3, [2, 1, 0]),
            Self::Rgba | Self::Rgbx => (4, [0, 1, 2]),
            Self::Bgra | Self::Bgrx => (4, [2, 1, 0]),
            Self::Argb | Self::Xrgb => (4, [1, 2, 3]),
            Self::Abgr | Self::Xbgr => (4, [3, 2, 1]),
            _ => return None,
        })
    }

    /// True for the YUV formats, whose conversion depends on [`Colorimetry`].
    pub fn is_yuv(self) -> bool {
        matches!(self, Self::I420 | Self::Yv12 | Self::Nv12 | Self::Nv21)
    }

    /// Number of planes the format has.
    pub fn n_planes(self) -> usize {
        match self {
            Self::I420 | Self::Yv12 => 3,
            Self::Nv12 | Self::Nv21 => 2,
            _ => 1,
        }
    }

    /// (width in bytes, height in rows) that plane `i` needs for a `w` x `h` frame.
    pub fn plane_extent(self, i: usize, w: usize, h: usize) -> (usize, usize) {
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        match (self, i) {
            (Self::Gray8, _) => (w, h),
            (f, 0) if f.is_yuv() => (w, h),
            (Self::I420 | Self::Yv12, _) => (cw, ch),
            (Self::Nv12 | Self::Nv21, _) => (2 * cw, ch),
            (f, _) => (f.packed_rgb_layout().map_or(0, |(bpp, _)| bpp) * w, h),
        }
    }
}

/// The Y'CbCr matrix of a YUV frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum YuvMatrix {
    /// ITU-R BT.601 (SD video).
    #[default]
    Bt601,
    /// ITU-R BT.709 (HD video).
    Bt709,
    /// ITU-R BT.2020.
    Bt2020,
    /// SMPTE 240M.
    Smpte240m,
    /// FCC 73.682.
    Fcc,
}

impl YuvMatrix {
    /// The luma coefficients (Kr, Kb).
    pub fn kr_kb(self) -> (f64, f64) {
        match self {
            Self::Bt601 => (0.299, 0.114),
            Self::Bt709 => (0.2126, 0.0722),
            Self::Bt2020 => (0.2627, 0.0593),
            Self::Smpte240m => (0.212, 0.087),
            Self::Fcc => (0.30, 0.11),
        }
    }
}

/// Whether YUV samples use the limited (16-235/240) or full (0-255) range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum YuvRange {
    /// Y in 16..=235, chroma in 16..=240.
    #[default]
    Limited,
    /// Y and chroma in 0..=255.
    Full,
}

/// How a YUV frame converts to RGB. Ignored for RGB-family formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Colorimetry {
    /// The matrix.
    pub matrix: YuvMatrix,
    /// The range.
    pub range: YuvRange,
}

/// One plane of a frame: its bytes and the distance between rows.
#[derive(Debug, Clone, Copy, Default)]
pub struct Plane<'a> {
    /// The plane's bytes, starting at its first row.
    pub data: &'a [u8],
    /// Bytes from one row to the next (at least the row's width in bytes).
    pub stride: usize,
}

/// A borrowed video frame in system memory.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    format: PixelFormat,
    width: usize,
    height: usize,
    planes: [Plane<'a>; 3],
    colorimetry: Colorimetry,
}

impl<'a> Frame<'a> {
    /// Describes a frame, checking that every plane the format needs is
    /// present and large enough for `width` x `height` with its stride.
    pub fn new(
        format: PixelFormat,
        width: usize,
        height: usize,
        planes: &[Plane<'a>],
        colorimetry: Colorimetry,
    ) -> Result<Self> {
        if width == 0 || height == 0 {
            return Err(Error::InvalidFrame(format!(
                "frame size {width}x{height} is empty"
            )));
        }
        let n = format.n_planes();
        if planes.len() < n {
            return Err(Error::InvalidFrame(format!(
                "{format:?} needs {n} planes, got {}",
                planes.len()
            )));
        }
        let mut stored = [Plane::default(); 3];
        for (i, plane) in planes.iter().take(n).enumerate() {
            let (row_bytes, rows) = format.plane_extent(i, width, height);
            if plane.stride < row_bytes {
                return Err(Error::InvalidFrame(format!(
                    "plane {i} of a {width}x{height} {format:?} frame has stride {} < {row_bytes}",
                    plane.stride
                )));
            }
            let needed = plane.stride * (rows - 1) + row_bytes;
            if plane.data.len() < needed {
                return Err(Error::InvalidFrame(format!(
                    "plane {i} of a {width}x{height} {format:?} frame has {} bytes, needs {needed}",
                    plane.data.len()
                )));
            }
            stored[i] = *plane;
        }
        Ok(Self {
            format,
            width,
            height,
            planes: stored,
            colorimetry,
        })
    }

    /// A packed RGB frame (3 bytes per pixel, rows `stride` bytes apart).
    pub fn rgb(data: &'a [u8], width: usize, height: usize, stride: usize) -> Result<Self> {
        Self::new(
            PixelFormat::Rgb,
            width,
            height,
            &[Plane { data, stride }],
            Colorimetry::default(),
        )
    }

    /// The pixel format.
    pub fn format(&self) -> PixelFormat {
        self.format
    }

    /// Width in pixels.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> usize {
        self.height
    }

    /// Plane `i` (empty for planes the format does not have).
    pub fn plane(&self, i: usize) -> Plane<'a> {
        self.planes[i]
    }

    /// The YUV colorimetry.
    pub fn colorimetry(&self) -> Colorimetry {
        self.colorimetry
    }
}
