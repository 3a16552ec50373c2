//! The host-side half of the GPU preprocessing: which kernels to launch for a
//! frame, in which order, over which buffers, with which arguments.
//!
//! Nothing here talks to CUDA. Addresses are plain `u64`s (device pointers on
//! a GPU, host pointers when `tests/cuda.rs` runs the same kernels through its
//! CPU emulator), so every decision the GPU path makes (the pass order, the
//! coefficient tables, the staging layout, the launch geometry) is the same
//! code on both and can be checked on a machine without a GPU.
//!
//! The kernels run the CPU path's steps one for one (see `kernels.cu`):
//! YUV 4:2:0 to packed RGB when the frame is YUV, then the passes of the
//! frame's [`ResizePlan`] in [`ResizePlan::passes`] order through a `u8`
//! intermediate, then the planar `f32` model input. RGB-family and GRAY8
//! frames are read in place by the first pass (bytes per pixel and channel
//! offsets in a [`PackedImage`]), which gives the same bytes as converting
//! them to packed RGB first.

use std::ops::Range;

use crate::frame::{Colorimetry, Frame, PixelFormat};
use crate::preprocess::resample::{AxisCoeffs, Passes, ResizePlan};

/// Threads per block of every kernel (one thread per output element).
pub const BLOCK_THREADS: u32 = 256;

/// The largest grid a 1-D launch may have (`gridDim.x` limit of every CUDA GPU
/// since compute capability 3.0).
pub const MAX_GRID_BLOCKS: u64 = (1 << 31) - 1;

/// Plane starts in the staging buffer are aligned to this many bytes, so each
/// plane's copy and first row start on a DMA- and cache-friendly boundary.
pub const PLANE_ALIGN: usize = 256;

/// A packed 8-bit image that a kernel reads R, G, B from.
///
/// Layout-identical to `struct PackedImage` in `kernels.cu`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PackedImage {
    /// Address of the first byte of row 0.
    pub data: u64,
    /// Bytes between rows.
    pub stride: i64,
    /// Bytes per pixel.
    pub bpp: i64,
    /// Byte offsets of R, G and B inside a pixel.
    pub offsets: [i64; 3],
}

impl PackedImage {
    /// Packed RGB, 3 bytes a pixel, `width * 3` bytes a row (the intermediates).
    pub fn rgb(data: u64, width: usize) -> Self {
        Self {
            data,
            stride: (width * 3) as i64,
            bpp: 3,
            offsets: [0, 1, 2],
        }
    }
}

/// Arguments of `dreamsim_yuv420_to_rgb` (layout-identical to `YuvArgs`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[allow(missing_docs)]
pub struct YuvArgs {
    pub y: u64,
    pub u: u64,
    pub v: u64,
    pub y_stride: i64,
    pub u_stride: i64,
    pub v_stride: i64,
    pub u_step: i64,
    pub v_step: i64,
    pub width: i64,
    pub height: i64,
    pub dst: u64,
    pub dst_stride: i64,
    pub y_off: f64,
    pub y_scale: f64,
    pub c_scale: f64,
    pub r_cr: f64,
    pub b_cb: f64,
    pub kr: f64,
    pub kb: f64,
    pub g_div: f64,
}

/// Arguments of `dreamsim_resample_horizontal` (layout-identical to `HorizontalArgs`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[allow(missing_docs)]
pub struct HorizontalArgs {
    pub src: PackedImage,
    pub first_row: i64,
    pub rows: i64,
    pub dst: u64,
    pub dst_stride: i64,
    pub out_w: i64,
    pub bounds: u64,
    pub coeffs: u64,
    pub ksize: i64,
}

/// Arguments of `dreamsim_resample_vertical` (layout-identical to `VerticalArgs`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[allow(missing_docs)]
pub struct VerticalArgs {
    pub src: PackedImage,
    pub row_offset: i64,
    pub width: i64,
    pub out_h: i64,
    pub dst: u64,
    pub dst_stride: i64,
    pub bounds: u64,
    pub coeffs: u64,
    pub ksize: i64,
}

/// Arguments of `dreamsim_to_planar` (layout-identical to `PlanarArgs`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[allow(missing_docs)]
pub struct PlanarArgs {
    pub src: PackedImage,
    pub width: i64,
    pub height: i64,
    pub packed: u64,
    pub planar: u64,
}

/// The kernels of `kernels.cu`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kernel {
    /// `dreamsim_yuv420_to_rgb`
    Yuv420ToRgb,
    /// `dreamsim_resample_horizontal`
    ResampleHorizontal,
    /// `dreamsim_resample_vertical`
    ResampleVertical,
    /// `dreamsim_to_planar`
    ToPlanar,
}

impl Kernel {
    /// Every kernel, in the order of [`Kernel::index`].
    pub const ALL: [Kernel; 4] = [
        Kernel::Yuv420ToRgb,
        Kernel::ResampleHorizontal,
        Kernel::ResampleVertical,
        Kernel::ToPlanar,
    ];

    /// The kernel's `extern "C"` name in `kernels.cu`.
    pub fn name(self) -> &'static str {
        match self {
            Kernel::Yuv420ToRgb => "dreamsim_yuv420_to_rgb",
            Kernel::ResampleHorizontal => "dreamsim_resample_horizontal",
            Kernel::ResampleVertical => "dreamsim_resample_vertical",
            Kernel::ToPlanar => "dreamsim_to_planar",
        }
    }

    /// Position in [`Kernel::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// One kernel launch: the kernel and its argument struct.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Launch {
    /// YUV 4:2:0 to packed RGB.
    Yuv(YuvArgs),
    /// A horizontal resampling pass.
    Horizontal(HorizontalArgs),
    /// A vertical resampling pass.
    Vertical(VerticalArgs),
    /// Packed to planar `f32`.
    Planar(PlanarArgs),
}

/// Grid and block sizes of a launch, as CUDA takes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LaunchDims {
    /// Blocks in x, y, z.
    pub grid: (u32, u32, u32),
    /// Threads per block in x, y, z.
    pub block: (u32, u32, u32),
}

impl Launch {
    /// Which kernel runs.
    pub fn kernel(&self) -> Kernel {
        match self {
            Launch::Yuv(_) => Kernel::Yuv420ToRgb,
            Launch::Horizontal(_) => Kernel::ResampleHorizontal,
            Launch::Vertical(_) => Kernel::ResampleVertical,
            Launch::Planar(_) => Kernel::ToPlanar,
        }
    }

    /// Output elements (pixels), one thread each.
    pub fn threads(&self) -> u64 {
        let n = match self {
            Launch::Yuv(a) => a.width * a.height,
            Launch::Horizontal(a) => a.out_w * a.rows,
            Launch::Vertical(a) => a.width * a.out_h,
            Launch::Planar(a) => a.width * a.height,
        };
        n as u64
    }

    /// A 1-D grid of [`BLOCK_THREADS`]-thread blocks covering every output
    /// element; `None` when the grid would exceed [`MAX_GRID_BLOCKS`].
    pub fn dims(&self) -> Option<LaunchDims> {
        let blocks = self.threads().div_ceil(u64::from(BLOCK_THREADS));
        (blocks <= MAX_GRID_BLOCKS).then_some(LaunchDims {
            grid: (blocks.max(1) as u32, 1, 1),
            block: (BLOCK_THREADS, 1, 1),
        })
    }

    /// The argument struct's bytes, as the kernel receives them by value.
    pub fn arg_bytes(&self) -> &[u8] {
        fn bytes<T>(v: &T) -> &[u8] {
            // SAFETY: every argument struct is #[repr(C)] and made of 8-byte
            // integer and float fields only, so it has no padding and all of
            // its bytes are initialised.
            unsafe { std::slice::from_raw_parts((v as *const T).cast(), std::mem::size_of::<T>()) }
        }
        match self {
            Launch::Yuv(a) => bytes(a),
            Launch::Horizontal(a) => bytes(a),
            Launch::Vertical(a) => bytes(a),
            Launch::Planar(a) => bytes(a),
        }
    }
}

/// The launches for one frame, in order (at most four; no heap).
#[derive(Debug, Clone, Copy, Default)]
pub struct Launches {
    items: [Option<Launch>; 4],
    len: usize,
}

impl Launches {
    fn push(&mut self, launch: Launch) {
        self.items[self.len] = Some(launch);
        self.len += 1;
    }

    /// The launches in the order they must run.
    pub fn iter(&self) -> impl Iterator<Item = &Launch> {
        self.items[..self.len].iter().flatten()
    }

    /// How many launches there are.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when there are none (never, for a real frame).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Where one axis's table sits in [`ResizeTables::packed`], in `i32` units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct AxisTable {
    bounds: usize,
    coeffs: usize,
    ksize: usize,
}

/// A [`ResizePlan`] and its coefficient tables packed into one `i32` array,
/// uploaded once per input size.
///
/// The tables are the plan's own [`AxisCoeffs`] (the 22-bit fixed-point
/// weights the CPU path uses), laid out as `[h bounds | h coeffs | v bounds |
/// v coeffs]`; a bound is the pair `(first source index, count)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResizeTables {
    plan: ResizePlan,
    packed: Vec<i32>,
    horizontal: Option<AxisTable>,
    vertical: Option<AxisTable>,
}

impl ResizeTables {
    /// The tables for resizing `in_w` x `in_h` to `size` x `size`.
    pub fn new(in_w: usize, in_h: usize, size: usize) -> Self {
        Self::from_plan(ResizePlan::new(in_w, in_h, size, size))
    }

    /// The tables of an existing plan.
    pub fn from_plan(plan: ResizePlan) -> Self {
        let mut packed = Vec::new();
        let mut pack = |axis: Option<&AxisCoeffs>| {
            axis.map(|c| {
                let bounds = packed.len();
                for &(first, count) in c.bounds() {
                    packed.push(first as i32);
                    packed.push(count as i32);
                }
                let coeffs = packed.len();
                packed.extend_from_slice(c.coeffs());
                AxisTable {
                    bounds,
                    coeffs,
                    ksize: c.ksize(),
                }
            })
        };
        let horizontal = pack(plan.horizontal());
        let vertical = pack(plan.vertical());
        Self {
            plan,
            packed,
            horizontal,
            vertical,
        }
    }

    /// The resize plan the tables come from.
    pub fn plan(&self) -> &ResizePlan {
        &self.plan
    }

    /// The packed tables, to upload as they are.
    pub fn packed(&self) -> &[i32] {
        &self.packed
    }

    /// Bytes of the `u8` intermediate between the two passes (0 with one pass).
    pub fn intermediate_len(&self) -> usize {
        let (in_w, _) = self.plan.input_size();
        let (out_w, out_h) = self.plan.output_size();
        match self.plan.passes() {
            Passes::HorizontalThenVertical => out_w * 3 * self.plan.source_rows().len(),
            Passes::VerticalThenHorizontal => in_w * 3 * out_h,
            Passes::Copy | Passes::Horizontal | Passes::Vertical => 0,
        }
    }

    fn addresses(table: AxisTable, base: u64) -> (u64, u64, i64) {
        let at = |index: usize| base + (index * std::mem::size_of::<i32>()) as u64;
        (at(table.bounds), at(table.coeffs), table.ksize as i64)
    }

    fn horizontal_args(&self, base: u64, src: PackedImage, rows: Range<usize>, dst: u64) -> Launch {
        let table = self
            .horizontal
            .expect("a horizontal pass has a horizontal table");
        let (bounds, coeffs, ksize) = Self::addresses(table, base);
        let out_w = self.plan.output_size().0;
        Launch::Horizontal(HorizontalArgs {
            src,
            first_row: rows.start as i64,
            rows: rows.len() as i64,
            dst,
            dst_stride: (out_w * 3) as i64,
            out_w: out_w as i64,
            bounds,
            coeffs,
            ksize,
        })
    }

    fn vertical_args(
        &self,
        base: u64,
        src: PackedImage,
        row_offset: usize,
        width: usize,
        dst: u64,
    ) -> Launch {
        let table = self.vertical.expect("a vertical pass has a vertical table");
        let (bounds, coeffs, ksize) = Self::addresses(table, base);
        Launch::Vertical(VerticalArgs {
            src,
            row_offset: row_offset as i64,
            width: width as i64,
            out_h: self.plan.output_size().1 as i64,
            dst,
            dst_stride: (width * 3) as i64,
            bounds,
            coeffs,
            ksize,
        })
    }
}

/// One plane's bytes in the staging buffer (and in its device copy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PlaneSpan {
    /// Byte offset of the plane's first row.
    pub offset: usize,
    /// Bytes between rows (the frame's own stride, kept as is).
    pub stride: usize,
    /// Bytes copied: `stride * (rows - 1) + row width`.
    pub len: usize,
}

/// How a system-memory frame's planes are laid out for upload: each plane
/// copied as one block with its own stride, starting on a [`PLANE_ALIGN`]
/// boundary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InputLayout {
    planes: [PlaneSpan; 3],
    n_planes: usize,
    total: usize,
}

impl InputLayout {
    /// The layout of `frame`.
    pub fn of(frame: &Frame<'_>) -> Self {
        let format = frame.format();
        let mut layout = Self {
            n_planes: format.n_planes(),
            ..Self::default()
        };
        let mut offset = 0;
        for i in 0..layout.n_planes {
            let (row_bytes, rows) = format.plane_extent(i, frame.width(), frame.height());
            let stride = frame.plane(i).stride;
            let len = stride * (rows - 1) + row_bytes;
            layout.planes[i] = PlaneSpan {
                offset,
                stride,
                len,
            };
            offset = (offset + len).next_multiple_of(PLANE_ALIGN);
        }
        layout.total =
            layout.planes[layout.n_planes - 1].offset + layout.planes[layout.n_planes - 1].len;
        layout
    }

    /// The planes in use.
    pub fn planes(&self) -> &[PlaneSpan] {
        &self.planes[..self.n_planes]
    }

    /// Bytes to stage and upload.
    pub fn total_len(&self) -> usize {
        self.total
    }

    /// Copies `frame`'s planes into `staging[..total_len()]`.
    ///
    /// # Panics
    /// If `staging` is shorter than [`total_len`](Self::total_len) or the
    /// frame is not the one the layout was made for.
    pub fn fill(&self, frame: &Frame<'_>, staging: &mut [u8]) {
        for (i, span) in self.planes().iter().enumerate() {
            staging[span.offset..span.offset + span.len]
                .copy_from_slice(&frame.plane(i).data[..span.len]);
        }
    }

    /// The uploaded frame as a [`DeviceFrame`], its copy starting at `base`.
    pub fn device_frame(&self, frame: &Frame<'_>, base: u64) -> DeviceFrame {
        let mut planes = [DevicePlane::default(); 3];
        for (plane, span) in planes.iter_mut().zip(self.planes()) {
            *plane = DevicePlane {
                data: base + span.offset as u64,
                stride: span.stride,
            };
        }
        DeviceFrame {
            format: frame.format(),
            width: frame.width(),
            height: frame.height(),
            planes,
            colorimetry: frame.colorimetry(),
        }
    }
}

/// One plane of a frame in device memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DevicePlane {
    /// Address of the plane's first row.
    pub data: u64,
    /// Bytes between rows.
    pub stride: usize,
}

/// A frame whose planes are in device memory (uploaded, or decoded there).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceFrame {
    /// The pixel format.
    pub format: PixelFormat,
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// The planes the format has, then unused entries.
    pub planes: [DevicePlane; 3],
    /// The YUV colorimetry (ignored for RGB-family formats).
    pub colorimetry: Colorimetry,
}

/// The YUV to RGB constants of `preprocess::convert` for `colorimetry`
/// (range offsets and scales, then the matrix terms), in the same f64
/// expressions, so the kernel sees the same doubles.
pub fn yuv_constants(colorimetry: Colorimetry) -> [f64; 8] {
    let k = crate::preprocess::convert::YuvCoefficients::new(colorimetry);
    [
        k.y_offset, k.y_scale, k.c_scale, k.r_cr, k.b_cb, k.kr, k.kb, k.g_div,
    ]
}

/// Device addresses of the work buffers of one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WorkBuffers {
    /// The packed [`ResizeTables`] of the frame's size.
    pub tables: u64,
    /// Packed RGB at the frame's size, `width * height * 3` bytes (YUV frames only).
    pub rgb: u64,
    /// The intermediate, [`ResizeTables::intermediate_len`] bytes (two-pass resizes only).
    pub intermediate: u64,
    /// The resized packed RGB, `size * size * 3` bytes.
    pub resized: u64,
}

/// Bytes of the packed RGB conversion buffer `frame` needs (0 unless YUV).
pub fn rgb_len(format: PixelFormat, width: usize, height: usize) -> usize {
    if format.is_yuv() {
        width * height * 3
    } else {
        0
    }
}

/// The launches that turn `frame` into the planar `f32` model input at
/// `planar` (`3 * size * size` floats), leaving the resized packed RGB in
/// `work.resized`.
///
/// # Panics
/// If `tables` were made for another input size.
pub fn launches(
    frame: &DeviceFrame,
    tables: &ResizeTables,
    work: &WorkBuffers,
    planar: u64,
) -> Launches {
    let plan = tables.plan();
    let (w, h) = (frame.width, frame.height);
    assert_eq!(
        plan.input_size(),
        (w, h),
        "resize tables were made for another input size"
    );
    let (out_w, out_h) = plan.output_size();
    let mut out = Launches::default();
    let plane = |i: usize| frame.planes[i];

    let src = match frame.format {
        f if f.is_yuv() => {
            // (plane, byte offset of the first sample, bytes between samples)
            // for U and V, as convert.rs reads them.
            let (u, v) = match f {
                PixelFormat::I420 => ((1, 0, 1), (2, 0, 1)),
                PixelFormat::Yv12 => ((2, 0, 1), (1, 0, 1)),
                PixelFormat::Nv12 => ((1, 0, 2), (1, 1, 2)),
                PixelFormat::Nv21 => ((1, 1, 2), (1, 0, 2)),
                other => unreachable!("{other:?} is not YUV 4:2:0"),
            };
            let [y_off, y_scale, c_scale, r_cr, b_cb, kr, kb, g_div] =
                yuv_constants(frame.colorimetry);
            out.push(Launch::Yuv(YuvArgs {
                y: plane(0).data,
                u: plane(u.0).data + u.1,
                v: plane(v.0).data + v.1,
                y_stride: plane(0).stride as i64,
                u_stride: plane(u.0).stride as i64,
                v_stride: plane(v.0).stride as i64,
                u_step: u.2,
                v_step: v.2,
                width: w as i64,
                height: h as i64,
                dst: work.rgb,
                dst_stride: (w * 3) as i64,
                y_off,
                y_scale,
                c_scale,
                r_cr,
                b_cb,
                kr,
                kb,
                g_div,
            }));
            PackedImage::rgb(work.rgb, w)
        }
        PixelFormat::Gray8 => PackedImage {
            data: plane(0).data,
            stride: plane(0).stride as i64,
            bpp: 1,
            offsets: [0, 0, 0],
        },
        f => {
            let (bpp, [r, g, b]) = f
                .packed_rgb_layout()
                .expect("every non-YUV, non-grey format is packed RGB");
            PackedImage {
                data: plane(0).data,
                stride: plane(0).stride as i64,
                bpp: bpp as i64,
                offsets: [r as i64, g as i64, b as i64],
            }
        }
    };

    let base = work.tables;
    let mut planar_args = PlanarArgs {
        src: PackedImage::rgb(work.resized, out_w),
        width: out_w as i64,
        height: out_h as i64,
        packed: 0,
        planar,
    };
    match plan.passes() {
        Passes::Copy => {
            // Pillow's resize to the same size is a copy: read the frame itself.
            planar_args.src = src;
            planar_args.packed = work.resized;
        }
        Passes::Horizontal => {
            out.push(tables.horizontal_args(base, src, 0..h, work.resized));
        }
        Passes::Vertical => {
            out.push(tables.vertical_args(base, src, 0, w, work.resized));
        }
        Passes::HorizontalThenVertical => {
            let rows = plan.source_rows();
            let start = rows.start;
            out.push(tables.horizontal_args(base, src, rows, work.intermediate));
            let temp = PackedImage::rgb(work.intermediate, out_w);
            out.push(tables.vertical_args(base, temp, start, out_w, work.resized));
        }
        Passes::VerticalThenHorizontal => {
            out.push(tables.vertical_args(base, src, 0, w, work.intermediate));
            let temp = PackedImage::rgb(work.intermediate, w);
            out.push(tables.horizontal_args(base, temp, 0..out_h, work.resized));
        }
    }
    // With neither a copy to make nor a model input to write (a resize
    // into a batch's resized slot), the last kernel has nothing to do.
    if planar_args.packed != 0 || planar_args.planar != 0 {
        out.push(Launch::Planar(planar_args));
    }
    out
}

/// The launch that writes the planar `f32` model input at `planar`
/// (`3 * size * size` floats) of the resized packed RGB image at `resized`
/// (`size * size * 3` bytes): the last step of [`launches`], on its own for
/// a batch whose frames were resized first (so that exact repeats can be
/// found before any model input is written).
pub fn planar_launch(resized: u64, size: usize, planar: u64) -> Launch {
    Launch::Planar(PlanarArgs {
        src: PackedImage::rgb(resized, size),
        width: size as i64,
        height: size as i64,
        packed: 0,
        planar,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::Plane;

    #[test]
    fn argument_structs_have_no_padding() {
        // The C structs are made of 8-byte fields; so must the Rust twins be.
        assert_eq!(std::mem::size_of::<PackedImage>(), 6 * 8);
        assert_eq!(std::mem::size_of::<YuvArgs>(), 20 * 8);
        assert_eq!(std::mem::size_of::<HorizontalArgs>(), (6 + 8) * 8);
        assert_eq!(std::mem::size_of::<VerticalArgs>(), (6 + 8) * 8);
        assert_eq!(std::mem::size_of::<PlanarArgs>(), (6 + 4) * 8);
    }

    #[test]
    fn tables_pack_the_plan_coefficients_unchanged() {
        let tables = ResizeTables::new(1920, 1080, 224);
        let plan = tables.plan();
        let h = plan.horizontal().unwrap();
        let v = plan.vertical().unwrap();
        let p = tables.packed();
        assert_eq!(
            p.len(),
            2 * 224 + h.coeffs().len() + 2 * 224 + v.coeffs().len()
        );
        let ht = tables.horizontal.unwrap();
        let vt = tables.vertical.unwrap();
        for (i, &(first, count)) in h.bounds().iter().enumerate() {
            assert_eq!(p[ht.bounds + 2 * i], first as i32);
            assert_eq!(p[ht.bounds + 2 * i + 1], count as i32);
        }
        assert_eq!(&p[ht.coeffs..ht.coeffs + h.coeffs().len()], h.coeffs());
        assert_eq!(ht.ksize, h.ksize());
        assert_eq!(&p[vt.coeffs..vt.coeffs + v.coeffs().len()], v.coeffs());
        assert_eq!(p[vt.bounds + 1], v.bounds()[0].1 as i32);

        // One changed axis gives one table; no change, none.
        let only_h = ResizeTables::new(300, 224, 224);
        assert!(only_h.horizontal.is_some() && only_h.vertical.is_none());
        assert!(ResizeTables::new(224, 224, 224).packed().is_empty());
    }

    fn rgba_frame(data: &[u8], w: usize, h: usize, stride: usize) -> Frame<'_> {
        Frame::new(
            PixelFormat::Rgba,
            w,
            h,
            &[Plane { data, stride }],
            Colorimetry::default(),
        )
        .unwrap()
    }

    #[test]
    fn staging_layout_aligns_planes_and_copies_only_their_bytes() {
        let (w, h) = (33, 7);
        let (ys, us, vs) = (40, 20, 24);
        let y = vec![1u8; ys * h];
        let u = vec![2u8; us * 4];
        let v = vec![3u8; vs * 4 + 100];
        let frame = Frame::new(
            PixelFormat::I420,
            w,
            h,
            &[
                Plane {
                    data: &y,
                    stride: ys,
                },
                Plane {
                    data: &u,
                    stride: us,
                },
                Plane {
                    data: &v,
                    stride: vs,
                },
            ],
            Colorimetry::default(),
        )
        .unwrap();
        let layout = InputLayout::of(&frame);
        let spans = layout.planes();
        assert_eq!(spans.len(), 3);
        assert_eq!(
            spans[0],
            PlaneSpan {
                offset: 0,
                stride: 40,
                len: 40 * 6 + 33
            }
        );
        assert_eq!(spans[1].offset, 512);
        assert_eq!(spans[1].len, 20 * 3 + 17);
        assert_eq!(spans[2].offset, 768);
        assert_eq!(spans[2].len, 24 * 3 + 17);
        assert_eq!(layout.total_len(), 768 + 24 * 3 + 17);
        let mut staging = vec![0u8; layout.total_len()];
        layout.fill(&frame, &mut staging);
        assert!(staging[..spans[0].len].iter().all(|&b| b == 1));
        assert!(staging[512..512 + spans[1].len].iter().all(|&b| b == 2));
        assert!(staging[768..].iter().all(|&b| b == 3));

        let device = layout.device_frame(&frame, 0x1000);
        assert_eq!(device.planes[2].data, 0x1000 + 768);
        assert_eq!(device.planes[1].stride, 20);
    }

    #[test]
    fn launches_follow_the_pass_order_of_the_plan() {
        let work = WorkBuffers {
            tables: 0x10_0000,
            rgb: 0x20_0000,
            intermediate: 0x30_0000,
            resized: 0x40_0000,
        };
        let kinds = |w: usize, h: usize, format: PixelFormat| {
            let bpp = format.packed_rgb_layout().map_or(1, |l| l.0);
            let data = vec![0u8; w * h * 2 * bpp];
            let planes: Vec<Plane> = (0..format.n_planes())
                .map(|i| Plane {
                    data: &data,
                    stride: format.plane_extent(i, w, h).0,
                })
                .collect();
            let frame = Frame::new(format, w, h, &planes, Colorimetry::default()).unwrap();
            let device = InputLayout::of(&frame).device_frame(&frame, 0x1000);
            let tables = ResizeTables::new(w, h, 224);
            let l = launches(&device, &tables, &work, 0x50_0000);
            l.iter().map(|l| l.kernel()).collect::<Vec<_>>()
        };
        use Kernel::*;
        assert_eq!(
            kinds(1920, 1080, PixelFormat::Rgba),
            [ResampleHorizontal, ResampleVertical, ToPlanar]
        );
        assert_eq!(
            kinds(720, 1280, PixelFormat::Bgrx),
            [ResampleVertical, ResampleHorizontal, ToPlanar]
        );
        assert_eq!(
            kinds(1920, 1080, PixelFormat::Nv12),
            [Yuv420ToRgb, ResampleHorizontal, ResampleVertical, ToPlanar]
        );
        assert_eq!(kinds(224, 224, PixelFormat::Gray8), [ToPlanar]);
        assert_eq!(
            kinds(224, 300, PixelFormat::Rgb),
            [ResampleVertical, ToPlanar]
        );
        assert_eq!(
            kinds(300, 224, PixelFormat::I420),
            [Yuv420ToRgb, ResampleHorizontal, ToPlanar]
        );
    }

    #[test]
    fn two_pass_launches_chain_through_the_intermediate() {
        let (w, h) = (1920, 1080);
        let data = vec![0u8; w * h * 4];
        let frame = rgba_frame(&data, w, h, w * 4);
        let work = WorkBuffers {
            tables: 0x10_0000,
            rgb: 0,
            intermediate: 0x30_0000,
            resized: 0x40_0000,
        };
        let tables = ResizeTables::new(w, h, 224);
        let device = InputLayout::of(&frame).device_frame(&frame, 0x1000);
        let l: Vec<Launch> = launches(&device, &tables, &work, 0x50_0000)
            .iter()
            .copied()
            .collect();
        let (Launch::Horizontal(hp), Launch::Vertical(vp), Launch::Planar(pp)) = (l[0], l[1], l[2])
        else {
            panic!("unexpected launches {l:?}");
        };
        assert_eq!(hp.src.data, 0x1000);
        assert_eq!((hp.src.bpp, hp.src.offsets), (4, [0, 1, 2]));
        assert_eq!((hp.first_row, hp.rows), (0, 1080));
        assert_eq!((hp.dst, hp.dst_stride, hp.out_w), (0x30_0000, 224 * 3, 224));
        assert_eq!(hp.bounds, 0x10_0000);
        assert_eq!(hp.coeffs, 0x10_0000 + 4 * 2 * 224);
        assert_eq!(vp.src, PackedImage::rgb(0x30_0000, 224));
        assert_eq!((vp.width, vp.out_h, vp.dst), (224, 224, 0x40_0000));
        assert_eq!(
            vp.bounds,
            0x10_0000 + 4 * (2 * 224 + tables.plan().horizontal().unwrap().coeffs().len()) as u64
        );
        assert_eq!(pp.src, PackedImage::rgb(0x40_0000, 224));
        assert_eq!((pp.planar, pp.packed), (0x50_0000, 0));
        assert_eq!(tables.intermediate_len(), 224 * 3 * 1080);
    }

    #[test]
    fn launch_geometry_covers_every_output_once() {
        let args = HorizontalArgs {
            out_w: 224,
            rows: 1081,
            ..Default::default()
        };
        let launch = Launch::Horizontal(args);
        let dims = launch.dims().unwrap();
        assert_eq!(dims.block, (BLOCK_THREADS, 1, 1));
        let threads = u64::from(dims.grid.0) * u64::from(BLOCK_THREADS);
        assert!(threads >= 224 * 1081 && threads - 224 * 1081 < u64::from(BLOCK_THREADS));
        // 2^31 blocks are too many for a 1-D grid.
        let huge = Launch::Planar(PlanarArgs {
            width: 1 << 20,
            height: 1 << 19,
            ..Default::default()
        });
        assert!(huge.dims().is_none());
        assert_eq!(
            launch.arg_bytes().len(),
            std::mem::size_of::<HorizontalArgs>()
        );
    }

    #[test]
    fn yuv_constants_are_the_cpu_expressions() {
        let c = yuv_constants(Colorimetry {
            matrix: crate::frame::YuvMatrix::Bt709,
            range: crate::frame::YuvRange::Limited,
        });
        assert_eq!(c[..3], [16.0, 219.0, 224.0]);
        assert_eq!(c[3], 2.0 * (1.0 - 0.2126));
        assert_eq!(c[7], 1.0 - 0.2126 - 0.0722);
    }
}
