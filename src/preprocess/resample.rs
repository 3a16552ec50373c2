//! Bicubic resampling of packed 8-bit RGB that matches Pillow byte for byte.
//!
//! DreamSim's reference preprocessing is `PIL.Image.resize((224, 224), Image.BICUBIC)` on a
//! mode "RGB" image, and its embeddings move measurably when the resize is only approximately
//! right (torchvision's bicubic differs by up to 0.05 per pixel). This module therefore
//! re-expresses the 8-bit path of Pillow's `libImaging/Resample.c` (`precompute_coeffs`,
//! `normalize_coeffs_8bpc`, the 8-bpc horizontal and vertical passes, `ImagingResampleInner`)
//! operation for operation where it matters: the floating-point evaluation order of the
//! weights, C's truncating conversions, the 22-bit fixed point with its rounding bias, the
//! `u8` rounding between the two passes, and which passes run in which order. The order
//! changed in Pillow 13.0 (see [`PassOrder`]); the default follows current Pillow.
//!
//! Where Pillow's order of operations cannot change the result, the code is free to differ:
//! the integer sums are exact, so the kernels add taps in whatever order vectorises best, and
//! on x86_64 CPUs with AVX2 they use `vpmaddwd` on 16-bit halves of each weight (see
//! `TapPairs`), which gives the same `i32` sums.
//!
//! `tools/check_resample.py` compares this code with the installed Pillow on many random
//! cases. The coefficient tables are computed once per (input size, output size) in a
//! [`ResizePlan`] and exposed, so that a GPU implementation can upload exactly the same
//! fixed-point weights.

use std::ops::Range;

/// Pillow's fixed-point precision for 8-bit images: two spare bits above the 8 result bits
/// absorb the overshoot of the negative filter lobes without overflowing an `i32`.
const PRECISION_BITS: u32 = 32 - 8 - 2;

/// Added to every sum before the final shift so that the shift rounds to nearest.
const ROUNDING_BIAS: i32 = 1 << (PRECISION_BITS - 1);

/// `1 << PRECISION_BITS` as Pillow's C promotes it when scaling a double coefficient.
const FIXED_ONE: f64 = (1u32 << PRECISION_BITS) as f64;

/// Support of the bicubic kernel at scale 1 (it is zero for |x| >= 2).
const BICUBIC_SUPPORT: f64 = 2.0;

/// Bytes per packed RGB pixel.
const CHANNELS: usize = 3;

/// The Keys cubic convolution kernel with a = -0.5, written with the same operation order as
/// Pillow's `bicubic_filter` so every double rounds identically.
#[inline]
fn bicubic_filter(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = if x < 0.0 { -x } else { x };
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

/// Pillow's `clip8`: drop the fraction bits (arithmetic shift, so negative sums floor) and clamp.
/// Pillow uses a lookup table that covers -640..=639 after the shift; bicubic sums never leave
/// that range, so a clamp is equivalent.
#[inline(always)]
fn clip8(sum: i32) -> u8 {
    (sum >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Fixed-point bicubic coefficients for one axis, exactly as Pillow computes them.
///
/// Output index `i` reads the `bounds()[i].1` source samples starting at `bounds()[i].0`,
/// weighted by `coeffs()[i * ksize() .. i * ksize() + bounds()[i].1]`; the rest of each
/// `ksize()`-long row is zero, so a consumer that prefers a fixed loop length may run over the
/// whole row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AxisCoeffs {
    in_size: usize,
    out_size: usize,
    ksize: usize,
    bounds: Vec<(u32, u32)>,
    coeffs: Vec<i32>,
}

impl AxisCoeffs {
    /// Computes the table for resampling `in_size` samples to `out_size` samples over the whole
    /// axis (Pillow's `box` spanning the image).
    ///
    /// # Panics
    /// If either size is zero (Pillow refuses those too) or above `i32::MAX` (Pillow's `int`).
    pub fn new(in_size: usize, out_size: usize) -> Self {
        assert!(
            in_size > 0 && out_size > 0,
            "resample: sizes must be non-zero"
        );
        assert!(
            in_size <= i32::MAX as usize && out_size <= i32::MAX as usize,
            "resample: sizes must fit an i32"
        );

        // Pillow computes `(double)(in1 - in0) / outSize` from `float` box edges; the round
        // trip through f32 only matters from 2^24 on, but costs nothing.
        let scale = f64::from(in_size as f32) / out_size as f64;
        // Downscaling widens the kernel by the scale factor: that is Pillow's antialiasing.
        let filterscale = if scale < 1.0 { 1.0 } else { scale };
        let support = BICUBIC_SUPPORT * filterscale;
        let ksize = support.ceil() as usize * 2 + 1;
        // Pillow multiplies by the reciprocal rather than dividing; the two round differently.
        let inv_filterscale = 1.0 / filterscale;

        let mut bounds = Vec::with_capacity(out_size);
        let mut coeffs = vec![0i32; out_size * ksize];
        let mut weights = vec![0f64; ksize];

        for (xx, row) in coeffs.chunks_exact_mut(ksize).enumerate() {
            let center = (xx as f64 + 0.5) * scale;
            // C's `(int)` truncates toward zero; every negative value clamps to 0 right after, so
            // Rust's truncating `as` cast reproduces it.
            let xmin = ((center - support + 0.5) as i64).max(0);
            let xmax = ((center + support + 0.5) as i64).min(in_size as i64);
            let count = (xmax - xmin) as usize;
            debug_assert!(count >= 1 && count <= ksize);

            let weights = &mut weights[..count];
            let mut sum = 0.0f64;
            for (x, w) in weights.iter_mut().enumerate() {
                // Same association as C's `x + xmin - center + 0.5`: integer add first.
                *w = bicubic_filter(((x as i64 + xmin) as f64 - center + 0.5) * inv_filterscale);
                sum += *w;
            }
            if sum != 0.0 {
                for w in weights.iter_mut() {
                    *w /= sum;
                }
            }
            for (k, &w) in row.iter_mut().zip(weights.iter()) {
                // Round half away from zero, then truncate, as `normalize_coeffs_8bpc` does.
                *k = if w < 0.0 {
                    (-0.5 + w * FIXED_ONE) as i32
                } else {
                    (0.5 + w * FIXED_ONE) as i32
                };
            }
            bounds.push((xmin as u32, count as u32));
        }

        AxisCoeffs {
            in_size,
            out_size,
            ksize,
            bounds,
            coeffs,
        }
    }

    /// Number of output samples.
    pub fn out_size(&self) -> usize {
        self.out_size
    }

    /// Number of input samples.
    pub fn in_size(&self) -> usize {
        self.in_size
    }

    /// Row stride of [`coeffs`](Self::coeffs): Pillow's `ceil(support) * 2 + 1`, an upper bound
    /// on every window length.
    pub fn ksize(&self) -> usize {
        self.ksize
    }

    /// `(first source index, count)` for every output index.
    pub fn bounds(&self) -> &[(u32, u32)] {
        &self.bounds
    }

    /// `out_size * ksize` fixed-point weights (22 fraction bits), zero padded after each
    /// window's `count` entries.
    pub fn coeffs(&self) -> &[i32] {
        &self.coeffs
    }

    /// Iterates `(first source index, weights)` per output index, weights trimmed to the window.
    #[inline]
    fn windows(&self) -> impl Iterator<Item = (usize, &[i32])> + '_ {
        self.bounds
            .iter()
            .zip(self.coeffs.chunks_exact(self.ksize))
            .map(|(&(first, count), row)| (first as usize, &row[..count as usize]))
    }
}

/// Which Pillow release's choice of pass order to reproduce when both dimensions change.
///
/// The passes round to `u8` in between, so the order is visible in the output: a few levels on
/// some pixels (up to 25 seen on hard 0/255 content). It is the only difference between the
/// releases compared with `tools/check_resample.py` (12.1.1, 12.3.0 and 13.0.0), so it is what
/// to match to the Pillow version of the reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum PassOrder {
    /// Pillow 13.0 and later (python-pillow/Pillow#9549, in C): the vertical pass runs first
    /// when the height shrinks by more than twice as many pixels as the width (`in_h > out_h`
    /// and `in_h - out_h > 2 * (in_w - out_w)`, signed), otherwise the horizontal pass does.
    #[default]
    Pillow13,
    /// Pillow 12.2 and 12.3 (python-pillow/Pillow#9524, in Python): the vertical pass runs
    /// first only for images more than 100 times taller than wide whose height shrinks
    /// (`in_h > 100 * in_w` and `out_h < in_h`).
    Pillow12_2,
    /// Pillow 12.1 and earlier: always the horizontal pass first.
    HorizontalFirst,
}

/// The passes a [`ResizePlan`] runs, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Passes {
    /// Same size: the output is a copy of the input.
    Copy,
    /// Only the width changes.
    Horizontal,
    /// Only the height changes.
    Vertical,
    /// Horizontal pass over [`ResizePlan::source_rows`] into an `out_w` x `source_rows().len()`
    /// intermediate, then the vertical pass with its bounds shifted by `source_rows().start`.
    HorizontalThenVertical,
    /// Vertical pass over the full width into an `in_w` x `out_h` intermediate, then the
    /// horizontal pass.
    VerticalThenHorizontal,
}

/// A resize from one input size to one output size, computed once and reused for every frame.
///
/// Mirrors `ImagingResampleInner`: a horizontal pass only when the width changes, a vertical pass
/// only when the height changes, and when both change, the two passes in the order the chosen
/// Pillow release uses (see [`PassOrder`]), through a `u8` intermediate. Both the order and the
/// 8-bit rounding of the intermediate are visible in the output, so neither may be changed.
///
/// A plan is immutable, so one plan can serve several threads, each with its own `scratch`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResizePlan {
    in_w: usize,
    in_h: usize,
    out_w: usize,
    out_h: usize,
    passes: Passes,
    horizontal: Option<AxisCoeffs>,
    /// `horizontal` regrouped for the AVX2 kernel.
    horizontal_pairs: Option<TapPairs>,
    vertical: Option<AxisCoeffs>,
    /// `vertical` regrouped for the AVX2 kernel.
    vertical_pairs: Option<TapPairs>,
    source_rows: Range<usize>,
}

impl ResizePlan {
    /// Plans the resize of an `in_w` x `in_h` image to `out_w` x `out_h` as current Pillow
    /// (13.0 and later, [`PassOrder::Pillow13`]) does it.
    ///
    /// # Panics
    /// If any size is zero or above `i32::MAX` (see [`AxisCoeffs::new`]).
    pub fn new(in_w: usize, in_h: usize, out_w: usize, out_h: usize) -> Self {
        Self::with_pass_order(in_w, in_h, out_w, out_h, PassOrder::default())
    }

    /// Like [`new`](Self::new), reproducing the pass order of the given Pillow release.
    ///
    /// # Panics
    /// If any size is zero or above `i32::MAX` (see [`AxisCoeffs::new`]).
    pub fn with_pass_order(
        in_w: usize,
        in_h: usize,
        out_w: usize,
        out_h: usize,
        order: PassOrder,
    ) -> Self {
        assert!(
            in_w > 0 && in_h > 0 && out_w > 0 && out_h > 0,
            "resample: sizes must be non-zero"
        );
        let horizontal = (out_w != in_w).then(|| AxisCoeffs::new(in_w, out_w));
        let vertical = (out_h != in_h).then(|| AxisCoeffs::new(in_h, out_h));
        // Pillow takes these rows from the vertical table even when the height is unchanged;
        // for an identity axis that table spans every row, which is what `0..in_h` says.
        let source_rows = match &vertical {
            Some(v) => {
                let first = v.bounds[0].0 as usize;
                let (last_first, last_count) = v.bounds[out_h - 1];
                first..last_first as usize + last_count as usize
            }
            None => 0..in_h,
        };
        let vertical_first = match order {
            // Signed arithmetic: an upscaled width makes its "reduction" negative, which
            // Pillow's int expression also lets through.
            PassOrder::Pillow13 => {
                in_h > out_h && (in_h as i64 - out_h as i64) > (in_w as i64 - out_w as i64) * 2
            }
            PassOrder::Pillow12_2 => in_h as u64 > 100 * in_w as u64 && out_h < in_h,
            PassOrder::HorizontalFirst => false,
        };
        let passes = match (&horizontal, &vertical) {
            (None, None) => Passes::Copy,
            (Some(_), None) => Passes::Horizontal,
            (None, Some(_)) => Passes::Vertical,
            (Some(_), Some(_)) if vertical_first => Passes::VerticalThenHorizontal,
            (Some(_), Some(_)) => Passes::HorizontalThenVertical,
        };
        ResizePlan {
            in_w,
            in_h,
            out_w,
            out_h,
            passes,
            horizontal_pairs: horizontal.as_ref().map(TapPairs::new),
            horizontal,
            vertical_pairs: vertical.as_ref().map(TapPairs::new),
            vertical,
            source_rows,
        }
    }

    /// The passes [`run`](Self::run) performs, in order.
    pub fn passes(&self) -> Passes {
        self.passes
    }

    /// The horizontal table, `None` when the width is unchanged (that pass is skipped).
    pub fn horizontal(&self) -> Option<&AxisCoeffs> {
        self.horizontal.as_ref()
    }

    /// The vertical table, `None` when the height is unchanged (that pass is skipped). Its bounds
    /// are in source rows; for [`Passes::HorizontalThenVertical`] the intermediate starts at
    /// source row `source_rows().start`, so subtract that to index it.
    pub fn vertical(&self) -> Option<&AxisCoeffs> {
        self.vertical.as_ref()
    }

    /// `(width, height)` of the input.
    pub fn input_size(&self) -> (usize, usize) {
        (self.in_w, self.in_h)
    }

    /// `(width, height)` of the output.
    pub fn output_size(&self) -> (usize, usize) {
        (self.out_w, self.out_h)
    }

    /// Rows of the source image that the output depends on (Pillow's `ybox_first..ybox_last`).
    /// For a resize of the whole image this is always every row: the bicubic window of the
    /// first and last output rows reaches past both edges.
    pub fn source_rows(&self) -> Range<usize> {
        self.source_rows.clone()
    }

    /// Bytes of the `u8` intermediate image between the two passes (0 when at most one runs).
    fn intermediate_len(&self) -> usize {
        match self.passes {
            Passes::HorizontalThenVertical => self.out_w * CHANNELS * self.source_rows.len(),
            Passes::VerticalThenHorizontal => self.in_w * CHANNELS * self.out_h,
            Passes::Copy | Passes::Horizontal | Passes::Vertical => 0,
        }
    }

    /// Bytes of `scratch` that [`run`](Self::run) uses: the `u8` intermediate image between the
    /// two passes plus a working block of 8 interleaved input rows for the horizontal pass.
    pub fn scratch_len(&self) -> usize {
        let block = match self.passes {
            Passes::Copy | Passes::Vertical => 0,
            _ => self.in_w * H_LANES + BLOCK_PAD,
        };
        self.intermediate_len() + block
    }

    /// Resizes one frame.
    ///
    /// `src`: packed RGB rows (3 bytes per pixel), `src_stride` bytes between row starts
    /// (`>= in_w * 3`); the last row needs no padding. Only [`source_rows`](Self::source_rows)
    /// are read. `dst`: packed RGB, exactly `out_w * out_h * 3` bytes, no padding. `scratch` is
    /// grown to [`scratch_len`](Self::scratch_len) when shorter and otherwise reused as is, so
    /// once warm the call allocates nothing; its contents on entry do not matter.
    ///
    /// # Panics
    /// If `src_stride < in_w * 3`, `src` is shorter than `(in_h - 1) * src_stride + in_w * 3`,
    /// or `dst.len() != out_w * out_h * 3`.
    pub fn run(&self, src: &[u8], src_stride: usize, dst: &mut [u8], scratch: &mut Vec<u8>) {
        self.run_with(src, src_stride, dst, scratch, true)
    }

    /// [`run`](Self::run), with the AVX2 kernels allowed or not (tests compare both builds).
    fn run_with(
        &self,
        src: &[u8],
        src_stride: usize,
        dst: &mut [u8],
        scratch: &mut Vec<u8>,
        simd: bool,
    ) {
        let in_row = self.in_w * CHANNELS;
        let out_row = self.out_w * CHANNELS;
        assert!(
            src_stride >= in_row,
            "resample: src_stride {src_stride} is shorter than a row of {in_row} bytes"
        );
        let src_needed = (self.in_h - 1) * src_stride + in_row;
        assert!(
            src.len() >= src_needed,
            "resample: src has {} bytes, a {}x{} RGB image with stride {src_stride} needs {src_needed}",
            src.len(),
            self.in_w,
            self.in_h
        );
        assert_eq!(
            dst.len(),
            out_row * self.out_h,
            "resample: dst must hold exactly {}x{} RGB pixels",
            self.out_w,
            self.out_h
        );

        let needed = self.scratch_len();
        if scratch.len() < needed {
            scratch.resize(needed, 0);
        }
        let (temp, block) = scratch[..needed].split_at_mut(self.intermediate_len());
        let hp = self.horizontal_pairs.as_ref();
        let vp = self.vertical_pairs.as_ref();
        match (self.passes, &self.horizontal, hp, &self.vertical, vp) {
            (Passes::HorizontalThenVertical, Some(h), Some(hp), Some(v), Some(vp)) => {
                let rows = self.source_rows.clone();
                horizontal_pass(h, hp, src, src_stride, rows.clone(), temp, block, simd);
                vertical_pass(v, vp, rows.start, temp, out_row, dst, simd);
            }
            (Passes::VerticalThenHorizontal, Some(h), Some(hp), Some(v), Some(vp)) => {
                vertical_pass(v, vp, 0, src, src_stride, temp, simd);
                horizontal_pass(h, hp, temp, in_row, 0..self.out_h, dst, block, simd);
            }
            (Passes::Horizontal, Some(h), Some(hp), None, None) => {
                horizontal_pass(h, hp, src, src_stride, 0..self.in_h, dst, block, simd)
            }
            (Passes::Vertical, None, None, Some(v), Some(vp)) => {
                vertical_pass(v, vp, 0, src, src_stride, dst, simd)
            }
            (Passes::Copy, None, None, None, None) => {
                // Pillow's `resize` returns a copy when the size is unchanged.
                for (y, out) in dst.chunks_exact_mut(out_row).enumerate() {
                    out.copy_from_slice(&src[y * src_stride..y * src_stride + in_row]);
                }
            }
            _ => unreachable!("resample: pass list and coefficient tables disagree"),
        }
    }
}

/// Source rows the horizontal kernel resamples together. Interleaving this many rows byte by
/// byte turns every tap into one contiguous 8-byte load per channel, so the 24 sums of a
/// pixel (3 channels x 8 rows) stay in vector registers with no horizontal reduction, and
/// every coefficient load serves 8 rows.
const ROW_BLOCK: usize = 8;

/// Sums per horizontal kernel call: channel `c` of row `r` is lane `c * ROW_BLOCK + r`.
const H_LANES: usize = CHANNELS * ROW_BLOCK;

/// Bytes after the interleaved rows: the AVX2 kernel reads taps in pairs, so for a window with
/// an odd tap count it reads one pixel past the window, whatever its value, with weight 0.
const BLOCK_PAD: usize = 2 * H_LANES;

/// Output bytes the vertical kernel sums together: 32 `i32` sums fill four AVX2 registers,
/// which stay in registers across the whole tap loop.
const V_LANES: usize = 32;

/// Whether this CPU can run the AVX2 kernels. They compute the same exact integer sums as the
/// portable ones, so the choice never changes a byte of output, only the speed.
#[inline]
fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The weights of an [`AxisCoeffs`] regrouped for `vpmaddwd`, which multiplies 16-bit lanes
/// and adds adjacent products: that is much cheaper than a 32-bit multiply per tap on many
/// x86 cores. Each weight `k` is split as `k = hi * 2^15 + lo` with `0 <= lo < 2^15` and
/// `|hi| <= 2^8`, both fitting `i16`; taps go in pairs, so each `i32` here packs the halves of
/// taps `2i` (low 16 bits) and `2i + 1` (high 16 bits), a missing odd tap weighing 0. The
/// kernel sums `hi` and `lo` products separately and returns `(hi_sum << 15) + lo_sum`:
/// every step is exact modulo 2^32 and the true sum fits an `i32`, so the result is exact.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TapPairs {
    stride: usize,
    lo: Vec<i32>,
    hi: Vec<i32>,
}

impl TapPairs {
    fn new(c: &AxisCoeffs) -> Self {
        let stride = c.ksize.div_ceil(2);
        let mut lo = vec![0i32; c.out_size * stride];
        let mut hi = vec![0i32; c.out_size * stride];
        for (i, (_, k)) in c.windows().enumerate() {
            for (j, pair) in k.chunks(2).enumerate() {
                let split = |w: i32| ((w & 0x7fff) as u16, (w >> 15) as i16 as u16);
                let (lo0, hi0) = split(pair[0]);
                let (lo1, hi1) = split(pair.get(1).copied().unwrap_or(0));
                lo[i * stride + j] = (u32::from(lo0) | u32::from(lo1) << 16) as i32;
                hi[i * stride + j] = (u32::from(hi0) | u32::from(hi1) << 16) as i32;
            }
        }
        TapPairs { stride, lo, hi }
    }
}

/// Pillow's horizontal 8-bit pass over source rows `rows`, written densely to `dst` (one output
/// row of `out_size * 3` bytes per source row). `block` is scratch of at least
/// `horizontal_block_len(h)` bytes.
#[allow(clippy::too_many_arguments)]
fn horizontal_pass(
    h: &AxisCoeffs,
    pairs: &TapPairs,
    src: &[u8],
    stride: usize,
    rows: Range<usize>,
    dst: &mut [u8],
    block: &mut [u8],
    simd: bool,
) {
    #[cfg(target_arch = "x86_64")]
    if simd && has_avx2() {
        // SAFETY: the CPU supports AVX2, checked just above.
        return unsafe { avx2::horizontal_pass(h, pairs, src, stride, rows, dst, block) };
    }
    let _ = (simd, pairs);
    horizontal_pass_impl(h, src, stride, rows, dst, block, |window, _, k| {
        let mut acc = [ROUNDING_BIAS; H_LANES];
        for (px, &w) in window.chunks_exact(H_LANES).zip(k) {
            for (a, &p) in acc.iter_mut().zip(px) {
                *a += i32::from(p) * w;
            }
        }
        acc
    })
}

/// Scratch bytes the horizontal pass needs for its interleaved row block.
fn horizontal_block_len(h: &AxisCoeffs) -> usize {
    h.in_size * H_LANES + BLOCK_PAD
}

/// The horizontal pass around a window kernel: `taps(block_from_first, index, weights)` returns
/// the rounding bias plus the weighted sums of the window starting at the front of
/// `block_from_first`, one lane per (channel, row) as laid out by [`interleave_rows`].
#[inline(always)]
fn horizontal_pass_impl(
    h: &AxisCoeffs,
    src: &[u8],
    stride: usize,
    rows: Range<usize>,
    dst: &mut [u8],
    block: &mut [u8],
    mut taps: impl FnMut(&[u8], usize, &[i32]) -> [i32; H_LANES],
) {
    let in_row = h.in_size * CHANNELS;
    let out_row = h.out_size * CHANNELS;
    let block = &mut block[..horizontal_block_len(h)];
    debug_assert_eq!(dst.len(), out_row * rows.len());

    for (block_index, out) in dst.chunks_mut(out_row * ROW_BLOCK).enumerate() {
        let y0 = rows.start + block_index * ROW_BLOCK;
        let n = out.len() / out_row;
        // A final partial block repeats its last row; those results are computed and dropped,
        // which keeps the kernel branch-free.
        let lines: [&[u8]; ROW_BLOCK] = std::array::from_fn(|r| {
            let y = y0 + r.min(n - 1);
            &src[y * stride..y * stride + in_row]
        });
        interleave_rows(&lines, &mut block[..in_row * ROW_BLOCK]);

        for (xx, (first, k)) in h.windows().enumerate() {
            let acc = taps(&block[first * H_LANES..], xx, k);
            for (c, sums) in acc.chunks_exact(ROW_BLOCK).enumerate() {
                for (r, &sum) in sums.iter().enumerate().take(n) {
                    out[r * out_row + xx * CHANNELS + c] = clip8(sum);
                }
            }
        }
    }
}

/// `block[b * ROW_BLOCK + r] = lines[r][b]`: a byte transpose of 8 rows.
#[inline(always)]
fn interleave_rows(lines: &[&[u8]; ROW_BLOCK], block: &mut [u8]) {
    let len = lines[0].len();
    assert!(lines.iter().all(|l| l.len() == len) && block.len() == len * ROW_BLOCK);
    #[cfg(target_arch = "x86_64")]
    let done = {
        let whole = len - len % 16;
        for b in (0..whole).step_by(16) {
            // SAFETY: SSE2 is part of x86_64; every row has `b + 16 <= len` readable bytes and
            // the block `(b + 16) * ROW_BLOCK`, both checked by the assert above.
            unsafe { sse2::transpose_8x16(lines, b, block.as_mut_ptr().add(b * ROW_BLOCK)) };
        }
        whole
    };
    #[cfg(not(target_arch = "x86_64"))]
    let done = 0;
    for (r, line) in lines.iter().enumerate() {
        for (column, &byte) in block[done * ROW_BLOCK..]
            .chunks_exact_mut(ROW_BLOCK)
            .zip(&line[done..])
        {
            column[r] = byte;
        }
    }
}

/// Pillow's vertical 8-bit pass. `src` row `r` starts at `(r - row_offset) * stride`; every byte
/// of a row is an independent sample here, so channels need no special handling.
fn vertical_pass(
    v: &AxisCoeffs,
    pairs: &TapPairs,
    row_offset: usize,
    src: &[u8],
    stride: usize,
    dst: &mut [u8],
    simd: bool,
) {
    #[cfg(target_arch = "x86_64")]
    if simd && has_avx2() {
        // SAFETY: the CPU supports AVX2, checked just above.
        return unsafe { avx2::vertical_pass(v, pairs, row_offset, src, stride, dst) };
    }
    let _ = (simd, pairs);
    vertical_pass_impl(v, row_offset, src, stride, dst, |window, stride, _, k| {
        let mut acc = [ROUNDING_BIAS; V_LANES];
        for (tap, &w) in k.iter().enumerate() {
            let line = &window[tap * stride..tap * stride + V_LANES];
            for (a, &p) in acc.iter_mut().zip(line) {
                *a += i32::from(p) * w;
            }
        }
        acc
    })
}

/// The vertical pass around a column-block kernel: `taps(window, stride, index, weights)`
/// returns the rounding bias plus the weighted sums of `V_LANES` bytes from each of
/// `weights.len()` rows, `stride` bytes apart, starting at the front of `window`.
#[inline(always)]
fn vertical_pass_impl(
    v: &AxisCoeffs,
    row_offset: usize,
    src: &[u8],
    stride: usize,
    dst: &mut [u8],
    mut taps: impl FnMut(&[u8], usize, usize, &[i32]) -> [i32; V_LANES],
) {
    let row_bytes = dst.len() / v.out_size;
    for (yy, ((first, k), out)) in v.windows().zip(dst.chunks_exact_mut(row_bytes)).enumerate() {
        let top = (first - row_offset) * stride;
        let window = &src[top..top + (k.len() - 1) * stride + row_bytes];
        // Pillow loops taps innermost per pixel; summing a block of columns tap by tap instead
        // reads rows sequentially, and integer sums do not depend on the order.
        let mut blocks = out.chunks_exact_mut(V_LANES);
        for (block_index, out_block) in (&mut blocks).enumerate() {
            let acc = taps(&window[block_index * V_LANES..], stride, yy, k);
            for (o, &a) in out_block.iter_mut().zip(acc.iter()) {
                *o = clip8(a);
            }
        }
        let tail = blocks.into_remainder();
        if !tail.is_empty() {
            let col = row_bytes - tail.len();
            let mut acc = [ROUNDING_BIAS; V_LANES];
            let acc = &mut acc[..tail.len()];
            for (tap, &w) in k.iter().enumerate() {
                let start = tap * stride + col;
                for (a, &p) in acc.iter_mut().zip(&window[start..start + tail.len()]) {
                    *a += i32::from(p) * w;
                }
            }
            for (o, &a) in tail.iter_mut().zip(acc.iter()) {
                *o = clip8(a);
            }
        }
    }
}

/// SSE2 helpers (always available on x86_64).
#[cfg(target_arch = "x86_64")]
mod sse2 {
    use super::ROW_BLOCK;
    use std::arch::x86_64::*;

    /// Writes `out[j * ROW_BLOCK + r] = lines[r][b + j]` for `j < 16`, with three rounds of
    /// unpacks (8-, 16-, then 32-bit units) instead of 128 single-byte moves.
    ///
    /// # Safety
    /// `lines[r][b..b + 16]` must be in bounds for every row and `out` valid for 128 bytes.
    #[inline(always)]
    pub(super) unsafe fn transpose_8x16(lines: &[&[u8]; ROW_BLOCK], b: usize, out: *mut u8) {
        let x: [__m128i; ROW_BLOCK] =
            std::array::from_fn(|r| _mm_loadu_si128(lines[r].as_ptr().add(b).cast()));
        // pairs of rows: 16-bit units (row 2i, row 2i+1) per column
        let a0 = _mm_unpacklo_epi8(x[0], x[1]);
        let a1 = _mm_unpackhi_epi8(x[0], x[1]);
        let a2 = _mm_unpacklo_epi8(x[2], x[3]);
        let a3 = _mm_unpackhi_epi8(x[2], x[3]);
        let a4 = _mm_unpacklo_epi8(x[4], x[5]);
        let a5 = _mm_unpackhi_epi8(x[4], x[5]);
        let a6 = _mm_unpacklo_epi8(x[6], x[7]);
        let a7 = _mm_unpackhi_epi8(x[6], x[7]);
        // quads of rows: 32-bit units per column
        let b0 = _mm_unpacklo_epi16(a0, a2);
        let b1 = _mm_unpackhi_epi16(a0, a2);
        let b2 = _mm_unpacklo_epi16(a1, a3);
        let b3 = _mm_unpackhi_epi16(a1, a3);
        let b4 = _mm_unpacklo_epi16(a4, a6);
        let b5 = _mm_unpackhi_epi16(a4, a6);
        let b6 = _mm_unpacklo_epi16(a5, a7);
        let b7 = _mm_unpackhi_epi16(a5, a7);
        // all 8 rows: 64-bit units, two columns per register, in column order
        let c = [
            _mm_unpacklo_epi32(b0, b4),
            _mm_unpackhi_epi32(b0, b4),
            _mm_unpacklo_epi32(b1, b5),
            _mm_unpackhi_epi32(b1, b5),
            _mm_unpacklo_epi32(b2, b6),
            _mm_unpackhi_epi32(b2, b6),
            _mm_unpacklo_epi32(b3, b7),
            _mm_unpackhi_epi32(b3, b7),
        ];
        for (i, v) in c.iter().enumerate() {
            _mm_storeu_si128(out.add(i * 16).cast(), *v);
        }
    }
}

/// AVX2 builds of the passes, written with intrinsics: left to itself the compiler vectorises
/// the horizontal tap loop across taps (byte gathers) instead of across lanes.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{AxisCoeffs, TapPairs, H_LANES, ROUNDING_BIAS, V_LANES};
    use std::arch::x86_64::*;
    use std::ops::Range;

    /// [`super::horizontal_pass`] with the `vpmaddwd` kernel.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn horizontal_pass(
        h: &AxisCoeffs,
        pairs: &TapPairs,
        src: &[u8],
        stride: usize,
        rows: Range<usize>,
        dst: &mut [u8],
        block: &mut [u8],
    ) {
        super::horizontal_pass_impl(h, src, stride, rows, dst, block, |window, xx, k| {
            let count = k.len().div_ceil(2);
            let lo = &pairs.lo[xx * pairs.stride..][..count];
            let hi = &pairs.hi[xx * pairs.stride..][..count];
            // Pairs read whole: up to one pixel past an odd window, inside the block padding.
            assert!(window.len() >= count * 2 * H_LANES);
            // SAFETY: AVX2 is enabled for this function; lengths checked above.
            unsafe { horizontal_taps(window, lo, hi) }
        })
    }

    /// The weighted sums of one window: `window` starts at its first pixel, 24 bytes per pixel
    /// (channel-major, 8 rows each); `lo`/`hi` are its [`TapPairs`] entries.
    ///
    /// # Safety
    /// AVX2, and `window.len() >= lo.len() * 2 * H_LANES`, `hi.len() == lo.len()`.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn horizontal_taps(window: &[u8], lo: &[i32], hi: &[i32]) -> [i32; H_LANES] {
        let zero = _mm256_setzero_si256();
        let (mut lr, mut lg, mut lb) = (zero, zero, zero);
        let (mut hr, mut hg, mut hb) = (zero, zero, zero);
        let mut p = window.as_ptr();
        for (&wl, &wh) in lo.iter().zip(hi) {
            // taps 2i (at p) and 2i+1 (at p + 24): R and G are adjacent 8-byte columns
            let x0 = _mm_loadu_si128(p.cast());
            let x1 = _mm_loadu_si128(p.add(H_LANES).cast());
            let x2 = _mm_loadl_epi64(p.add(16).cast());
            let x3 = _mm_loadl_epi64(p.add(H_LANES + 16).cast());
            // 16-bit (tap 2i, tap 2i+1) pairs per row, for vpmaddwd
            let r = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(x0, x1));
            let g = _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(x0, x1));
            let b = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(x2, x3));
            let wl = _mm256_set1_epi32(wl);
            let wh = _mm256_set1_epi32(wh);
            lr = _mm256_add_epi32(lr, _mm256_madd_epi16(r, wl));
            lg = _mm256_add_epi32(lg, _mm256_madd_epi16(g, wl));
            lb = _mm256_add_epi32(lb, _mm256_madd_epi16(b, wl));
            hr = _mm256_add_epi32(hr, _mm256_madd_epi16(r, wh));
            hg = _mm256_add_epi32(hg, _mm256_madd_epi16(g, wh));
            hb = _mm256_add_epi32(hb, _mm256_madd_epi16(b, wh));
            p = p.add(2 * H_LANES);
        }
        let bias = _mm256_set1_epi32(ROUNDING_BIAS);
        let join = |hi: __m256i, lo: __m256i| {
            _mm256_add_epi32(_mm256_add_epi32(_mm256_slli_epi32::<15>(hi), lo), bias)
        };
        let mut out = [0i32; H_LANES];
        let o = out.as_mut_ptr().cast::<__m256i>();
        _mm256_storeu_si256(o, join(hr, lr));
        _mm256_storeu_si256(o.add(1), join(hg, lg));
        _mm256_storeu_si256(o.add(2), join(hb, lb));
        out
    }

    /// [`super::vertical_pass`] with the `vpmaddwd` kernel.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn vertical_pass(
        v: &AxisCoeffs,
        pairs: &TapPairs,
        row_offset: usize,
        src: &[u8],
        stride: usize,
        dst: &mut [u8],
    ) {
        super::vertical_pass_impl(v, row_offset, src, stride, dst, |window, stride, yy, k| {
            let count = k.len().div_ceil(2);
            let lo = &pairs.lo[yy * pairs.stride..][..count];
            let hi = &pairs.hi[yy * pairs.stride..][..count];
            assert!(!k.is_empty() && window.len() >= (k.len() - 1) * stride + V_LANES);
            // SAFETY: AVX2 is enabled for this function; lengths checked above.
            unsafe { vertical_taps(window, stride, k.len(), lo, hi) }
        })
    }

    /// The weighted sums of `V_LANES` bytes of `taps` rows, `stride` bytes apart, from the
    /// front of `window`; `lo`/`hi` are the rows' [`TapPairs`] entries.
    ///
    /// # Safety
    /// AVX2, `taps >= 1`, `lo.len() == hi.len() == taps.div_ceil(2)` and
    /// `window.len() >= (taps - 1) * stride + V_LANES`.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn vertical_taps(
        window: &[u8],
        stride: usize,
        taps: usize,
        lo: &[i32],
        hi: &[i32],
    ) -> [i32; V_LANES] {
        let zero = _mm256_setzero_si256();
        let mut l = [zero; 4];
        let mut h = [zero; 4];
        for (i, (&wl, &wh)) in lo.iter().zip(hi).enumerate() {
            let p = window.as_ptr().add(2 * i * stride);
            // An odd last tap pairs its row with itself; the second weight is 0 there.
            let q = if 2 * i + 1 < taps { p.add(stride) } else { p };
            let wl = _mm256_set1_epi32(wl);
            let wh = _mm256_set1_epi32(wh);
            for half in 0..2 {
                let x = _mm_loadu_si128(p.add(16 * half).cast());
                let y = _mm_loadu_si128(q.add(16 * half).cast());
                // 16-bit (row 2i, row 2i+1) pairs per byte, for vpmaddwd
                let a = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(x, y));
                let b = _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(x, y));
                l[2 * half] = _mm256_add_epi32(l[2 * half], _mm256_madd_epi16(a, wl));
                l[2 * half + 1] = _mm256_add_epi32(l[2 * half + 1], _mm256_madd_epi16(b, wl));
                h[2 * half] = _mm256_add_epi32(h[2 * half], _mm256_madd_epi16(a, wh));
                h[2 * half + 1] = _mm256_add_epi32(h[2 * half + 1], _mm256_madd_epi16(b, wh));
            }
        }
        let bias = _mm256_set1_epi32(ROUNDING_BIAS);
        let mut out = [0i32; V_LANES];
        let o = out.as_mut_ptr().cast::<__m256i>();
        for j in 0..4 {
            let sum = _mm256_add_epi32(_mm256_slli_epi32::<15>(h[j]), l[j]);
            _mm256_storeu_si256(o.add(j), _mm256_add_epi32(sum, bias));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resize(src: &[u8], w: usize, h: usize, ow: usize, oh: usize) -> Vec<u8> {
        let plan = ResizePlan::new(w, h, ow, oh);
        let mut dst = vec![0u8; ow * oh * 3];
        plan.run(src, w * 3, &mut dst, &mut Vec::new());
        dst
    }

    /// Test pattern shared with the Python snippet that produced the goldens below.
    fn pattern(w: usize, h: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(w * h * 3);
        for y in 0..h {
            for x in 0..w {
                for c in 0..3 {
                    v.push(((x * 71 + y * 113 + c * 29 + x * y * 7) % 256) as u8);
                }
            }
        }
        v
    }

    #[test]
    fn coefficient_rows_sum_to_one() {
        for &(i, o) in &[
            (7, 3),
            (3, 7),
            (1920, 224),
            (1, 5),
            (5, 1),
            (224, 224),
            (4000, 3),
        ] {
            let c = AxisCoeffs::new(i, o);
            assert_eq!(c.coeffs().len(), o * c.ksize());
            for (n, row) in c.coeffs().chunks_exact(c.ksize()).enumerate() {
                let (first, count) = c.bounds()[n];
                assert!(first as usize + count as usize <= i);
                assert!(row[count as usize..].iter().all(|&k| k == 0));
                let sum: i64 = row.iter().map(|&k| i64::from(k)).sum();
                assert!(
                    (sum - (1 << 22)).abs() <= count as i64,
                    "{i}->{o} row {n}: {sum}"
                );
            }
        }
    }

    #[test]
    fn identity_is_a_copy_and_honours_stride() {
        let (w, h) = (5, 4);
        let img = pattern(w, h);
        let stride = w * 3 + 7;
        let mut padded = vec![0xAAu8; stride * h];
        for y in 0..h {
            padded[y * stride..y * stride + w * 3].copy_from_slice(&img[y * w * 3..][..w * 3]);
        }
        let plan = ResizePlan::new(w, h, w, h);
        assert!(plan.horizontal().is_none() && plan.vertical().is_none());
        let mut dst = vec![0u8; w * h * 3];
        plan.run(
            &padded[..stride * (h - 1) + w * 3],
            stride,
            &mut dst,
            &mut Vec::new(),
        );
        assert_eq!(dst, img);
    }

    #[test]
    fn constant_image_stays_constant() {
        for &(w, h, ow, oh) in &[(37, 23, 224, 224), (1920, 9, 224, 5), (3, 3, 40, 1)] {
            for value in [0u8, 1, 128, 254, 255] {
                let out = resize(&vec![value; w * h * 3], w, h, ow, oh);
                assert!(
                    out.iter().all(|&b| b == value),
                    "{w}x{h}->{ow}x{oh} {value}"
                );
            }
        }
    }

    #[test]
    fn stride_and_warm_scratch_do_not_change_the_result() {
        let (w, h, ow, oh) = (29, 17, 11, 6);
        let img = pattern(w, h);
        let expected = resize(&img, w, h, ow, oh);
        let stride = w * 3 + 5;
        let mut padded = vec![0x55u8; stride * h];
        for y in 0..h {
            padded[y * stride..y * stride + w * 3].copy_from_slice(&img[y * w * 3..][..w * 3]);
        }
        let plan = ResizePlan::new(w, h, ow, oh);
        let mut scratch = vec![0xEEu8; 100_000];
        let mut dst = vec![0u8; ow * oh * 3];
        plan.run(&padded, stride, &mut dst, &mut scratch);
        assert_eq!(dst, expected);
        assert_eq!(
            scratch.len(),
            100_000,
            "a large enough scratch is not reallocated"
        );
    }

    #[test]
    fn source_rows_span_the_whole_image() {
        // With the box spanning the image, the first window starts at or before row 0 and the
        // last ends at or after the last row (support >= 2 against a half-pixel offset), so
        // Pillow's ybox trimming never drops a row here.
        for (h, oh) in [
            (1, 1),
            (1, 7),
            (7, 1),
            (1080, 224),
            (224, 1080),
            (5, 4),
            (4, 5),
        ] {
            let plan = ResizePlan::new(3, h, 2, oh);
            assert_eq!(plan.source_rows(), 0..h, "{h} -> {oh}");
        }
    }

    /// Deterministic bytes mixing uniform noise with hard 0/255 runs, the content most likely
    /// to expose a wrong tap or a clipping difference.
    fn noise(len: usize, seed: &mut u64) -> Vec<u8> {
        (0..len)
            .map(|i| {
                *seed = seed
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                let v = (*seed >> 33) as u8;
                if (i / 7) % 3 == 0 {
                    if v & 1 == 0 {
                        0
                    } else {
                        255
                    }
                } else {
                    v
                }
            })
            .collect()
    }

    #[test]
    fn simd_and_portable_kernels_agree() {
        let mut seed = 42u64;
        let mut cases = vec![
            (1920, 1080, 224, 224),
            (720, 1280, 224, 224),
            (3, 4000, 224, 224),
            (4000, 3, 224, 224),
            (224, 224, 1000, 999),
            (1, 1, 3, 70),
            (70, 3, 1, 1),
        ];
        for _ in 0..400 {
            let r = noise(4, &mut seed);
            let pick = |b: u8, m: usize| 1 + b as usize % m;
            cases.push((
                pick(r[0], 90),
                pick(r[1], 40),
                pick(r[2], 120),
                pick(r[3], 50),
            ));
        }
        let mut scratch_a = Vec::new();
        let mut scratch_b = Vec::new();
        for (w, h, ow, oh) in cases {
            let stride = w * 3 + (w % 5);
            let src = noise((h - 1) * stride + w * 3, &mut seed);
            let plan = ResizePlan::new(w, h, ow, oh);
            let mut a = vec![0u8; ow * oh * 3];
            let mut b = vec![1u8; ow * oh * 3];
            plan.run_with(&src, stride, &mut a, &mut scratch_a, true);
            plan.run_with(&src, stride, &mut b, &mut scratch_b, false);
            assert!(a == b, "{w}x{h} -> {ow}x{oh} ({:?})", plan.passes());
        }
    }

    #[test]
    fn interleave_rows_is_a_byte_transpose() {
        let mut seed = 7u64;
        for len in 0..80 {
            let rows: Vec<Vec<u8>> = (0..ROW_BLOCK).map(|_| noise(len, &mut seed)).collect();
            let lines: [&[u8]; ROW_BLOCK] = std::array::from_fn(|r| rows[r].as_slice());
            let mut block = vec![0u8; len * ROW_BLOCK];
            interleave_rows(&lines, &mut block);
            for b in 0..len {
                for r in 0..ROW_BLOCK {
                    assert_eq!(
                        block[b * ROW_BLOCK + r],
                        rows[r][b],
                        "len {len} b {b} r {r}"
                    );
                }
            }
        }
    }

    #[test]
    fn tap_pairs_reassemble_the_weights() {
        for &(i, o) in &[(7, 3), (3, 7), (1920, 224), (4000, 3), (2, 1), (5, 5000)] {
            let c = AxisCoeffs::new(i, o);
            let p = TapPairs::new(&c);
            for (n, (_, k)) in c.windows().enumerate() {
                for (t, &w) in k.iter().enumerate() {
                    let half = |v: i32| (v as u32 >> (16 * (t % 2))) as u16;
                    let lo = half(p.lo[n * p.stride + t / 2]);
                    let hi = half(p.hi[n * p.stride + t / 2]) as i16;
                    assert!(lo < 1 << 15);
                    assert_eq!((i32::from(hi) << 15) + i32::from(lo), w, "{i}->{o} {n} {t}");
                }
                if k.len() % 2 == 1 {
                    let last = k.len() / 2;
                    assert_eq!(p.lo[n * p.stride + last] as u32 >> 16, 0);
                    assert_eq!(p.hi[n * p.stride + last] as u32 >> 16, 0);
                }
            }
        }
    }

    #[test]
    fn pass_order_follows_the_pillow_release() {
        use Passes::*;
        let order = |w, h, ow, oh, o| ResizePlan::with_pass_order(w, h, ow, oh, o).passes();
        let p13 = PassOrder::Pillow13;
        assert_eq!(order(5, 5, 5, 5, p13), Copy);
        assert_eq!(order(5, 5, 3, 5, p13), Horizontal);
        assert_eq!(order(5, 5, 5, 3, p13), Vertical);
        // Landscape and portrait HD video both run horizontally first...
        assert_eq!(order(1920, 1080, 224, 224, p13), HorizontalThenVertical);
        assert_eq!(order(1080, 1920, 224, 224, p13), HorizontalThenVertical);
        // ...but a taller portrait frame, or a width upscale with a height reduction, does not.
        assert_eq!(order(720, 1280, 224, 224, p13), VerticalThenHorizontal);
        assert_eq!(order(7, 5, 11, 2, p13), VerticalThenHorizontal);
        // The comparison is strict: at 2 * (in_w - out_w) == in_h - out_h the width goes first.
        assert_eq!(order(1000, 1000, 998, 996, p13), HorizontalThenVertical);
        assert_eq!(order(1000, 1000, 998, 995, p13), VerticalThenHorizontal);
        let p12 = PassOrder::Pillow12_2;
        assert_eq!(order(720, 1280, 224, 224, p12), HorizontalThenVertical);
        assert_eq!(order(7, 5, 11, 2, p12), HorizontalThenVertical);
        assert_eq!(order(3, 301, 224, 224, p12), VerticalThenHorizontal);
        assert_eq!(order(3, 300, 224, 224, p12), HorizontalThenVertical);
        assert_eq!(order(3, 301, 2, 302, p12), HorizontalThenVertical);
        let old = PassOrder::HorizontalFirst;
        assert_eq!(order(720, 1280, 224, 224, old), HorizontalThenVertical);
        assert_eq!(order(3, 4000, 224, 224, old), HorizontalThenVertical);
    }

    /// Goldens from Pillow 13.0.0:
    /// ```python
    /// import numpy as np; from PIL import Image
    /// w, h = 7, 5
    /// a = np.array([[[(x*71 + y*113 + c*29 + x*y*7) % 256 for c in range(3)]
    ///                for x in range(w)] for y in range(h)], np.uint8)
    /// Image.fromarray(a, "RGB").resize((ow, oh), Image.BICUBIC).tobytes()
    /// ```
    #[test]
    fn matches_pillow_goldens() {
        let img = pattern(7, 5);
        for &(ow, oh, expected) in GOLDENS {
            assert_eq!(resize(&img, 7, 5, ow, oh), expected, "7x5 -> {ow}x{oh}");
        }
    }

    const GOLDENS: &[(usize, usize, &[u8])] = &[
        (
            3,
            4,
            &[
                71, 101, 135, 130, 156, 102, 122, 124, 158, 133, 163, 148, 120, 141, 132, 169, 125,
                110, 118, 147, 132, 119, 152, 140, 121, 156, 142, 114, 143, 177, 150, 91, 125, 97,
                126, 161,
            ],
        ),
        (
            11,
            2,
            &[
                95, 124, 88, 109, 138, 131, 119, 148, 180, 88, 116, 157, 110, 142, 114, 161, 198,
                77, 116, 156, 128, 108, 109, 150, 163, 87, 119, 157, 136, 129, 142, 179, 143, 164,
                193, 157, 137, 166, 160, 99, 129, 160, 79, 114, 148, 113, 109, 118, 175, 115, 91,
                147, 143, 153, 119, 153, 187, 113, 135, 167, 110, 135, 129, 109, 138, 102,
            ],
        ),
        (
            7,
            3,
            &[
                48, 77, 106, 121, 150, 179, 88, 117, 146, 162, 191, 70, 86, 115, 144, 167, 82, 111,
                126, 155, 184, 172, 201, 82, 118, 147, 176, 77, 106, 135, 162, 200, 90, 117, 146,
                175, 139, 105, 134, 170, 199, 80, 148, 177, 206, 95, 124, 153, 85, 114, 143, 182,
                61, 90, 129, 158, 187, 111, 148, 177, 66, 95, 124,
            ],
        ),
        (
            4,
            5,
            &[
                28, 57, 96, 158, 187, 135, 93, 122, 70, 132, 161, 200, 147, 176, 205, 62, 97, 126,
                166, 143, 172, 153, 64, 93, 145, 174, 72, 148, 177, 134, 118, 147, 104, 180, 209,
                107, 122, 151, 180, 67, 96, 125, 139, 168, 197, 84, 113, 142, 121, 160, 189, 147,
                95, 124, 152, 100, 129, 87, 126, 155,
            ],
        ),
        (1, 1, &[124, 138, 136]),
        (
            2,
            9,
            &[
                93, 122, 103, 118, 153, 134, 97, 127, 127, 128, 133, 133, 105, 137, 167, 147, 100,
                130, 126, 157, 142, 153, 133, 118, 142, 171, 103, 149, 178, 110, 117, 149, 131,
                123, 160, 141, 101, 127, 160, 106, 131, 164, 125, 122, 155, 118, 115, 148, 140,
                121, 150, 127, 108, 137,
            ],
        ),
    ];
}
