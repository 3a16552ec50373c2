//! The change test: a cheap measure of how far a frame is from another, so
//! that the model runs only on frames that changed.
//!
//! A [`Thumbnail`] is a small grid (32 x 32 cells) of luma and chroma means
//! taken from a frame in any of the engine's pixel formats, in one pass over
//! at most 8 x 8 samples per cell: about 65 000 samples whatever the frame
//! size. [`ChangeMeasure`]s compare two
//! thumbnails and answer a number in 0..=1 (0: identical); the `dreamsim`
//! element compares each frame with the **last analysed** frame, so that a slow
//! fade or pan accumulates until it crosses the threshold.
//!
//! Values are on one scale whatever the format: luma 0..255 (limited-range
//! YUV is stretched to full range), chroma as (B - Y, R - Y)-like differences
//! centred on 0, so an RGB and an I420 copy of a frame give nearly the same
//! thumbnail.

use crate::frame::{Frame, PixelFormat, YuvRange};

#[doc(hidden)]
pub mod reference;

/// The threshold the jobs use and the docs recommend for
/// [`ChangeMeasure::DEFAULT`], chosen by `examples/change_test_study.rs`
/// (docs/throughput.md): it reuses static and nearly static frames and
/// leaves cuts, fades and pans to the model.
pub const RECOMMENDED_THRESHOLD: f64 = 0.005;

/// Cells per side of a thumbnail.
pub const THUMBNAIL_SIDE: usize = 32;
/// Samples per cell and axis, at most (all pixels of smaller cells are read).
const SAMPLES_PER_CELL: usize = 8;
/// Cells per side of the blocks [`ChangeMeasure::LumaBlockMax`] compares.
const BLOCK_CELLS: usize = 8;

/// Luma and two chroma planes of [`THUMBNAIL_SIDE`]² cell means.
#[derive(Debug, Clone, PartialEq)]
pub struct Thumbnail {
    /// Luma, 0..=255, row-major.
    pub luma: Vec<f32>,
    /// Blue-difference chroma, about -128..=127.
    pub cb: Vec<f32>,
    /// Red-difference chroma, about -128..=127.
    pub cr: Vec<f32>,
}

/// Ways to compare two thumbnails; each answers 0..=1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeMeasure {
    /// Mean absolute luma difference / 255.
    LumaMad,
    /// Mean absolute difference over luma and both chroma planes / 255.
    ColourMad,
    /// The largest mean absolute luma difference of the 4 x 4 blocks of
    /// 8 x 8 cells / 255: a change confined to a sixteenth of the picture
    /// counts fully.
    LumaBlockMax,
    /// Root mean square luma difference / 255 (PSNR = -20 log10 of it).
    LumaRms,
}

impl ChangeMeasure {
    /// Every measure, in the order the study prints them.
    pub const ALL: [ChangeMeasure; 4] = [
        Self::LumaMad,
        Self::ColourMad,
        Self::LumaBlockMax,
        Self::LumaRms,
    ];

    /// The measure the `dreamsim` element uses (chosen by
    /// `examples/change_test_study.rs`, docs/throughput.md).
    pub const DEFAULT: ChangeMeasure = Self::LumaBlockMax;

    /// Whether the measure reads the chroma planes (else only luma: a
    /// test with such a measure skips reading chroma, a third or two
    /// thirds of a YUV frame's samples).
    pub fn uses_chroma(self) -> bool {
        matches!(self, Self::ColourMad)
    }

    /// A short name for tables.
    pub fn name(self) -> &'static str {
        match self {
            Self::LumaMad => "luma-mad",
            Self::ColourMad => "colour-mad",
            Self::LumaBlockMax => "luma-block-max",
            Self::LumaRms => "luma-rms",
        }
    }

    /// How far `b` is from `a`, 0..=1.
    pub fn between(self, a: &Thumbnail, b: &Thumbnail) -> f64 {
        let mad = |x: &[f32], y: &[f32]| {
            x.iter()
                .zip(y)
                .map(|(p, q)| f64::from((p - q).abs()))
                .sum::<f64>()
                / x.len() as f64
                / 255.0
        };
        match self {
            Self::LumaMad => mad(&a.luma, &b.luma),
            Self::ColourMad => {
                (mad(&a.luma, &b.luma) + mad(&a.cb, &b.cb) + mad(&a.cr, &b.cr)) / 3.0
            }
            Self::LumaRms => {
                let sq = a
                    .luma
                    .iter()
                    .zip(&b.luma)
                    .map(|(p, q)| f64::from(p - q).powi(2))
                    .sum::<f64>()
                    / a.luma.len() as f64;
                sq.sqrt() / 255.0
            }
            Self::LumaBlockMax => {
                let blocks = THUMBNAIL_SIDE / BLOCK_CELLS;
                let mut worst = 0.0f64;
                for by in 0..blocks {
                    for bx in 0..blocks {
                        let mut sum = 0.0;
                        for y in by * BLOCK_CELLS..(by + 1) * BLOCK_CELLS {
                            for x in bx * BLOCK_CELLS..(bx + 1) * BLOCK_CELLS {
                                let i = y * THUMBNAIL_SIDE + x;
                                sum += f64::from((a.luma[i] - b.luma[i]).abs());
                            }
                        }
                        worst = worst.max(sum / (BLOCK_CELLS * BLOCK_CELLS) as f64 / 255.0);
                    }
                }
                worst
            }
        }
    }
}

/// The pixels sampled along one axis: for each of the [`THUMBNAIL_SIDE`]
/// cells, up to [`SAMPLES_PER_CELL`] evenly spread positions. On the stack:
/// computing it costs a few hundred divisions, nothing to cache.
#[derive(Debug, Clone, Copy)]
struct Axis {
    at: [[usize; SAMPLES_PER_CELL]; THUMBNAIL_SIDE],
    count: [usize; THUMBNAIL_SIDE],
}

impl Axis {
    /// The samples of an axis of `len` (> 0) pixels; the same positions as
    /// [`reference::axis_samples`].
    fn of(len: usize) -> Self {
        let mut axis = Self {
            at: [[0; SAMPLES_PER_CELL]; THUMBNAIL_SIDE],
            count: [0; THUMBNAIL_SIDE],
        };
        for c in 0..THUMBNAIL_SIDE {
            let start = c * len / THUMBNAIL_SIDE;
            let end = ((c + 1) * len / THUMBNAIL_SIDE).max(start + 1).min(len);
            let n = (end - start).min(SAMPLES_PER_CELL);
            for k in 0..n {
                axis.at[c][k] = start + k * (end - start) / n;
            }
            axis.count[c] = n;
        }
        axis
    }

    /// The positions sampled in cell `c`.
    fn cell(&self, c: usize) -> &[usize] {
        &self.at[c][..self.count[c]]
    }
}

/// Integer sums of one row of cells: up to 4 channels per cell (the bytes
/// of a packed pixel, or Y, Cb, Cr). 8 x 8 samples of 255 fit a u32 easily.
type RowSums = [[u32; 4]; THUMBNAIL_SIDE];

/// Adds the bytes of each sampled pixel of a packed row, channel by byte
/// position (which byte is R, G or B is sorted out once per cell, after).
fn add_packed<const BPP: usize>(row: &[u8], cols: &Axis, sums: &mut RowSums) {
    for (c, sum) in sums.iter_mut().enumerate() {
        for &x in cols.cell(c) {
            let px = &row[x * BPP..x * BPP + BPP];
            for i in 0..BPP {
                sum[i] += u32::from(px[i]);
            }
        }
    }
}

/// Adds luma and the two chroma samples of a YUV row (`cb`, `cr`: the
/// chroma rows with their byte offset and step).
fn add_yuv(
    luma: &[u8],
    (cb, cb_off, cb_step): (&[u8], usize, usize),
    (cr, cr_off, cr_step): (&[u8], usize, usize),
    cols: &Axis,
    sums: &mut RowSums,
) {
    for (c, sum) in sums.iter_mut().enumerate() {
        for &x in cols.cell(c) {
            sum[0] += u32::from(luma[x]);
            sum[1] += u32::from(cb[(x / 2) * cb_step + cb_off]);
            sum[2] += u32::from(cr[(x / 2) * cr_step + cr_off]);
        }
    }
}

impl Default for Thumbnail {
    fn default() -> Self {
        let cells = THUMBNAIL_SIDE * THUMBNAIL_SIDE;
        Self {
            luma: vec![0.0; cells],
            cb: vec![0.0; cells],
            cr: vec![0.0; cells],
        }
    }
}

impl Thumbnail {
    /// The thumbnail of `frame` (allocates; [`Thumbnail::compute`] reuses
    /// a thumbnail's buffers).
    pub fn of(frame: &Frame) -> Self {
        let mut t = Self::default();
        t.compute(frame);
        t
    }

    /// Makes this the thumbnail of `frame`, in place: one pass over the
    /// sampled pixels of the mapped frame (rows read where they lie, by
    /// stride), integer sums, no allocation once the buffers exist.
    pub fn compute(&mut self, frame: &Frame) {
        self.compute_planes(frame, true);
    }

    /// Like [`Thumbnail::compute`], for measures that do not [use
    /// chroma](ChangeMeasure::uses_chroma): a YUV frame's chroma planes are
    /// not read and `cb`, `cr` are 0 (packed RGB needs all three channels
    /// for luma, so it gets chroma too). Luma is the same as
    /// [`Thumbnail::compute`]'s.
    pub fn compute_luma(&mut self, frame: &Frame) {
        self.compute_planes(frame, false);
    }

    fn compute_planes(&mut self, frame: &Frame, with_chroma: bool) {
        let cells = THUMBNAIL_SIDE * THUMBNAIL_SIDE;
        for plane in [&mut self.luma, &mut self.cb, &mut self.cr] {
            plane.resize(cells, 0.0);
        }
        let format = frame.format();
        let cols = Axis::of(frame.width());
        let rows = Axis::of(frame.height());
        // Limited-range YUV: Y in 16..235 and chroma in 16..240, stretched
        // to the full-range scale that RGB frames give.
        let (y_scale, c_scale, y_off) = match (format.is_yuv(), frame.colorimetry().range) {
            (true, YuvRange::Limited) => (255.0 / 219.0, 255.0 / 224.0, 16.0),
            _ => (1.0, 1.0, 0.0),
        };
        // (plane, byte offset, bytes per chroma sample) of Cb and Cr.
        let chroma = match format {
            _ if !with_chroma => None,
            PixelFormat::I420 => Some(((1, 0, 1), (2, 0, 1))),
            PixelFormat::Yv12 => Some(((2, 0, 1), (1, 0, 1))),
            PixelFormat::Nv12 => Some(((1, 0, 2), (1, 1, 2))),
            PixelFormat::Nv21 => Some(((1, 1, 2), (1, 0, 2))),
            _ => None,
        };
        let p0 = frame.plane(0);
        let packed = format.packed_rgb_layout();
        for cy in 0..THUMBNAIL_SIDE {
            let mut sums: RowSums = [[0; 4]; THUMBNAIL_SIDE];
            for &y in rows.cell(cy) {
                let row = &p0.data[y * p0.stride..];
                match (packed, chroma) {
                    (Some((3, _)), _) => add_packed::<3>(row, &cols, &mut sums),
                    (Some((4, _)), _) => add_packed::<4>(row, &cols, &mut sums),
                    (_, Some(((bp, b_off, b_step), (rp, r_off, r_step)))) => {
                        let chroma_row = |plane: usize| {
                            let p = frame.plane(plane);
                            &p.data[(y / 2) * p.stride..]
                        };
                        add_yuv(
                            row,
                            (chroma_row(bp), b_off, b_step),
                            (chroma_row(rp), r_off, r_step),
                            &cols,
                            &mut sums,
                        );
                    }
                    // Gray8, or YUV read for its luma only.
                    _ => {
                        for (c, sum) in sums.iter_mut().enumerate() {
                            sum[0] += cols.cell(c).iter().map(|&x| u32::from(row[x])).sum::<u32>();
                        }
                    }
                }
            }
            for (cx, sum) in sums.iter().enumerate() {
                let n = (rows.count[cy] * cols.count[cx]) as f32;
                let mean = |i: usize| sum[i] as f32 / n;
                let i = cy * THUMBNAIL_SIDE + cx;
                let (luma, cb, cr) = match (packed, chroma) {
                    (Some((_, [ro, go, bo])), _) => {
                        let (r, g, b) = (mean(ro), mean(go), mean(bo));
                        // BT.601 luma, and Cb, Cr scaled as in full-range
                        // YCbCr (linear, so the mean of the samples' values).
                        let l = 0.299 * r + 0.587 * g + 0.114 * b;
                        (l, (b - l) * 0.564, (r - l) * 0.713)
                    }
                    (_, Some(_)) => (
                        (mean(0) - y_off) * y_scale,
                        (mean(1) - 128.0) * c_scale,
                        (mean(2) - 128.0) * c_scale,
                    ),
                    // Grey, or YUV read for its luma only.
                    _ => ((mean(0) - y_off) * y_scale, 0.0, 0.0),
                };
                self.luma[i] = luma.clamp(0.0, 255.0);
                self.cb[i] = cb;
                self.cr[i] = cr;
            }
        }
    }
}

/// The change test's decision, with its state: the thumbnail of the last
/// analysed frame and how many frames in a row reused its embedding.
#[derive(Debug, Clone)]
pub struct ChangeTest {
    measure: ChangeMeasure,
    threshold: f64,
    max_reuse: u32,
    /// The last analysed frame's thumbnail, when `has_last`.
    last_analysed: Thumbnail,
    has_last: bool,
    /// The frame being decided; swapped with `last_analysed` when it is
    /// analysed, so the two buffers serve every frame.
    current: Thumbnail,
    reused_in_a_row: u32,
}

/// What the change test decided for a frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decision {
    /// Run the model: the frame changed by `change` (None: nothing to
    /// compare with, or the reuse bound was reached).
    Analyse {
        /// The measure against the last analysed frame, when there was one.
        change: Option<f64>,
    },
    /// Reuse the last analysed frame's embedding: the frame changed by
    /// `change`, below the threshold.
    Reuse {
        /// The measure against the last analysed frame.
        change: f64,
    },
}

impl ChangeTest {
    /// A test with `measure`, reusing below `threshold` (0: never reuse), at
    /// most `max_reuse` frames in a row (0: no bound).
    pub fn new(measure: ChangeMeasure, threshold: f64, max_reuse: u32) -> Self {
        Self {
            measure,
            threshold,
            max_reuse,
            last_analysed: Thumbnail::default(),
            has_last: false,
            current: Thumbnail::default(),
            reused_in_a_row: 0,
        }
    }

    /// Changes the threshold and the reuse bound (properties may change
    /// while playing); the state is kept.
    pub fn configure(&mut self, threshold: f64, max_reuse: u32) {
        self.threshold = threshold;
        self.max_reuse = max_reuse;
    }

    /// Whether the test can ever reuse.
    pub fn enabled(&self) -> bool {
        self.threshold > 0.0
    }

    /// Forgets the last analysed frame (a flush, a caps change): the next
    /// frame is analysed.
    pub fn reset(&mut self) {
        self.has_last = false;
        self.reused_in_a_row = 0;
    }

    /// Decides for the next frame, given its thumbnail, and records it.
    pub fn decide(&mut self, thumbnail: Thumbnail) -> Decision {
        self.current = thumbnail;
        self.decide_current()
    }

    /// Decides for the next frame, computing its thumbnail in the test's
    /// own buffers (no allocation per frame), and records it.
    pub fn decide_frame(&mut self, frame: &Frame) -> Decision {
        if self.measure.uses_chroma() {
            self.current.compute(frame);
        } else {
            self.current.compute_luma(frame);
        }
        self.decide_current()
    }

    fn decide_current(&mut self) -> Decision {
        let change = self
            .has_last
            .then(|| self.measure.between(&self.last_analysed, &self.current));
        let bound_reached = self.max_reuse > 0 && self.reused_in_a_row >= self.max_reuse;
        match change {
            Some(c) if self.enabled() && c < self.threshold && !bound_reached => {
                self.reused_in_a_row += 1;
                Decision::Reuse { change: c }
            }
            _ => {
                std::mem::swap(&mut self.last_analysed, &mut self.current);
                self.has_last = true;
                self.reused_in_a_row = 0;
                Decision::Analyse { change }
            }
        }
    }
}

/// Proposes scene starts from thumbnails of consecutive frames, without a
/// model: a frame starts a scene when its change from the frame before is at
/// least `min_change` and `ratio` times the mean change of the `window`
/// frames before it (camera motion raises that mean, so fast motion does not
/// cut), at least `min_scene` frames after the last start. The first frame
/// starts a scene. The corpus jobs use it to run the model only on the frames
/// they keep (docs/corpus.md).
#[derive(Debug, Clone)]
pub struct CutDetector {
    measure: ChangeMeasure,
    min_change: f64,
    ratio: f64,
    window: usize,
    min_scene: u64,
    /// The frame before, when `has_previous`.
    previous: Thumbnail,
    has_previous: bool,
    /// The frame being pushed; swapped with `previous` after, so the two
    /// buffers serve every frame.
    current: Thumbnail,
    recent: std::collections::VecDeque<f64>,
    since_start: u64,
}

impl Default for CutDetector {
    /// The measure and thresholds chosen on bikes.mp4 and the corpus tests'
    /// clips (docs/corpus.md).
    fn default() -> Self {
        Self::new(ChangeMeasure::ColourMad, 0.04, 3.0, 8, 8)
    }
}

impl CutDetector {
    /// A detector with these parameters (see the type's documentation).
    pub fn new(
        measure: ChangeMeasure,
        min_change: f64,
        ratio: f64,
        window: usize,
        min_scene: u64,
    ) -> Self {
        Self {
            measure,
            min_change,
            ratio,
            window: window.max(1),
            min_scene,
            previous: Thumbnail::default(),
            has_previous: false,
            current: Thumbnail::default(),
            recent: std::collections::VecDeque::new(),
            since_start: 0,
        }
    }

    /// Forgets the frames seen (a new stream, a seek): the next frame starts
    /// a scene.
    pub fn reset(&mut self) {
        self.has_previous = false;
        self.recent.clear();
        self.since_start = 0;
    }

    /// Takes the next frame's thumbnail; true when it starts a scene.
    pub fn push(&mut self, thumbnail: Thumbnail) -> bool {
        self.current = thumbnail;
        self.push_current()
    }

    /// Takes the next frame, computing its thumbnail in the detector's own
    /// buffers (no allocation per frame); true when it starts a scene.
    pub fn push_frame(&mut self, frame: &Frame) -> bool {
        if self.measure.uses_chroma() {
            self.current.compute(frame);
        } else {
            self.current.compute_luma(frame);
        }
        self.push_current()
    }

    fn push_current(&mut self) -> bool {
        std::mem::swap(&mut self.previous, &mut self.current);
        // `previous` now holds the new frame, `current` the one before.
        if !std::mem::replace(&mut self.has_previous, true) {
            self.since_start = 1;
            return true;
        }
        let change = self.measure.between(&self.current, &self.previous);
        let mean = if self.recent.is_empty() {
            0.0
        } else {
            self.recent.iter().sum::<f64>() / self.recent.len() as f64
        };
        let cut = change >= self.min_change
            && change >= self.ratio * mean
            && self.since_start >= self.min_scene;
        if self.recent.len() == self.window {
            self.recent.pop_front();
        }
        self.recent.push_back(change);
        if cut {
            self.since_start = 1;
        } else {
            self.since_start += 1;
        }
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{Colorimetry, Plane};

    fn rgb(w: usize, h: usize, f: impl Fn(usize, usize) -> [u8; 3]) -> Vec<u8> {
        let mut v = Vec::with_capacity(w * h * 3);
        for y in 0..h {
            for x in 0..w {
                v.extend(f(x, y));
            }
        }
        v
    }

    fn thumb(data: &[u8], w: usize, h: usize) -> Thumbnail {
        Thumbnail::of(&Frame::rgb(data, w, h, w * 3).unwrap())
    }

    #[test]
    fn identical_frames_measure_zero_and_opposites_one() {
        let black = rgb(64, 48, |_, _| [0, 0, 0]);
        let white = rgb(64, 48, |_, _| [255, 255, 255]);
        for m in ChangeMeasure::ALL {
            assert_eq!(
                m.between(&thumb(&black, 64, 48), &thumb(&black, 64, 48)),
                0.0
            );
        }
        let d = ChangeMeasure::LumaMad.between(&thumb(&black, 64, 48), &thumb(&white, 64, 48));
        assert!((d - 1.0).abs() < 1e-3, "{d}");
    }

    #[test]
    fn a_local_change_counts_more_for_the_block_measure() {
        let a = rgb(256, 256, |_, _| [100, 100, 100]);
        // A 64 x 64 white square: a sixteenth of the picture.
        let b = rgb(256, 256, |x, y| {
            if x < 64 && y < 64 {
                [255, 255, 255]
            } else {
                [100, 100, 100]
            }
        });
        let (ta, tb) = (thumb(&a, 256, 256), thumb(&b, 256, 256));
        let mad = ChangeMeasure::LumaMad.between(&ta, &tb);
        let block = ChangeMeasure::LumaBlockMax.between(&ta, &tb);
        assert!((block - 155.0 / 255.0).abs() < 1e-3, "{block}");
        assert!((mad - block / 16.0).abs() < 1e-3, "{mad}");
    }

    #[test]
    fn a_pure_colour_change_moves_only_the_colour_measure() {
        // Same BT.601 luma (about 76), different hue.
        let a = rgb(32, 32, |_, _| [255, 0, 0]);
        let b = rgb(32, 32, |_, _| [0, 129, 3]);
        let (ta, tb) = (thumb(&a, 32, 32), thumb(&b, 32, 32));
        assert!(ChangeMeasure::LumaMad.between(&ta, &tb) < 0.005);
        assert!(ChangeMeasure::ColourMad.between(&ta, &tb) > 0.1);
    }

    #[test]
    fn i420_and_rgb_copies_give_nearly_the_same_thumbnail() {
        // Full-range grey ramp as RGB, and as limited-range I420.
        let (w, h) = (64, 32);
        let px = rgb(w, h, |x, _| [(x * 4) as u8; 3]);
        let y: Vec<u8> = (0..h)
            .flat_map(|_| (0..w).map(|x| (16.0 + (x * 4) as f32 * 219.0 / 255.0).round() as u8))
            .collect();
        let c = vec![128u8; (w / 2) * (h / 2)];
        let frame = Frame::new(
            PixelFormat::I420,
            w,
            h,
            &[
                Plane {
                    data: &y,
                    stride: w,
                },
                Plane {
                    data: &c,
                    stride: w / 2,
                },
                Plane {
                    data: &c,
                    stride: w / 2,
                },
            ],
            Colorimetry::default(),
        )
        .unwrap();
        let d = ChangeMeasure::ColourMad.between(&thumb(&px, w, h), &Thumbnail::of(&frame));
        assert!(d < 0.003, "{d}");
    }

    #[test]
    fn the_cut_detector_finds_hard_cuts_not_motion_or_noise() {
        let grey = |v: u8| rgb(64, 48, move |_, _| [v, v, v]);
        let moving = |i: usize| {
            rgb(64, 48, move |x, y| {
                [((x + i * 3) * 4) as u8, (y * 5) as u8, 90]
            })
        };
        let mut frames: Vec<Vec<u8>> = Vec::new();
        frames.extend((0..12).map(|i| grey(100 + (i % 2) as u8))); // 0-11: noise
        frames.extend((0..12).map(moving)); // 12: a cut, then fast motion
        frames.extend((0..3).map(|_| grey(30))); // 24: a cut
        frames.push(grey(200)); // 27: too soon after 24
        let mut d = CutDetector::new(ChangeMeasure::ColourMad, 0.04, 3.0, 8, 8);
        let starts: Vec<usize> = frames
            .iter()
            .enumerate()
            .filter(|(_, f)| d.push(thumb(f, 64, 48)))
            .map(|(i, _)| i)
            .collect();
        assert_eq!(starts, [0, 12, 24]);
        d.reset();
        assert!(d.push(thumb(&frames[5], 64, 48)), "after a reset");
    }

    #[test]
    fn large_frames_are_sampled_not_read_whole() {
        let big = Axis::of(7680);
        assert!(big.count.iter().all(|&n| n == SAMPLES_PER_CELL));
        let small = Axis::of(20);
        assert!((0..THUMBNAIL_SIDE).all(|c| {
            let cell = small.cell(c);
            !cell.is_empty() && cell.iter().all(|&x| x < 20)
        }));
        for len in [1, 7, 20, 33, 272, 1080, 1920, 7680] {
            let (fast, first) = (Axis::of(len), reference::axis_samples(len));
            for (c, positions) in first.iter().enumerate() {
                assert_eq!(fast.cell(c), positions.as_slice(), "{len}, cell {c}");
            }
        }
    }

    /// Pseudo-random bytes (a fixed LCG), so every channel and cell differ.
    fn noise(n: usize, seed: u32) -> Vec<u8> {
        let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        (0..n)
            .map(|_| {
                s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (s >> 24) as u8
            })
            .collect()
    }

    /// A frame of every format, at sizes that are odd, smaller than the
    /// grid and large, with rows padded past their width.
    #[test]
    fn the_fast_thumbnail_is_the_reference_one_in_every_format() {
        use crate::frame::YuvRange;
        let formats = [
            PixelFormat::Rgb,
            PixelFormat::Bgr,
            PixelFormat::Rgba,
            PixelFormat::Bgra,
            PixelFormat::Argb,
            PixelFormat::Abgr,
            PixelFormat::Rgbx,
            PixelFormat::Bgrx,
            PixelFormat::Xrgb,
            PixelFormat::Xbgr,
            PixelFormat::Gray8,
            PixelFormat::I420,
            PixelFormat::Yv12,
            PixelFormat::Nv12,
            PixelFormat::Nv21,
        ];
        let mut reused = Thumbnail::default();
        for (k, format) in formats.into_iter().enumerate() {
            for (w, h) in [(5, 3), (31, 17), (161, 121), (640, 272)] {
                for range in [YuvRange::Limited, YuvRange::Full] {
                    let seed = (k * 1000 + w) as u32;
                    let n = format.n_planes();
                    let extents: Vec<(usize, usize)> =
                        (0..n).map(|i| format.plane_extent(i, w, h)).collect();
                    let data: Vec<Vec<u8>> = extents
                        .iter()
                        .enumerate()
                        .map(|(i, (row, rows))| noise((row + 7) * rows, seed + i as u32))
                        .collect();
                    let planes: Vec<Plane> = data
                        .iter()
                        .zip(&extents)
                        .map(|(d, (row, _))| Plane {
                            data: d,
                            stride: row + 7,
                        })
                        .collect();
                    let colorimetry = Colorimetry {
                        range,
                        ..Colorimetry::default()
                    };
                    let frame = Frame::new(format, w, h, &planes, colorimetry).unwrap();
                    let first = reference::thumbnail(&frame);
                    reused.compute(&frame);
                    assert_eq!(reused, Thumbnail::of(&frame));
                    let mut luma_only = Thumbnail::default();
                    luma_only.compute_luma(&frame);
                    assert_eq!(luma_only.luma, reused.luma, "{format:?} {w}x{h}");
                    if format.is_yuv() {
                        assert!(luma_only.cb.iter().chain(&luma_only.cr).all(|&v| v == 0.0));
                    }
                    for (plane, (a, b)) in [
                        (&first.luma, &reused.luma),
                        (&first.cb, &reused.cb),
                        (&first.cr, &reused.cr),
                    ]
                    .into_iter()
                    .enumerate()
                    {
                        let worst = a
                            .iter()
                            .zip(b.iter())
                            .map(|(x, y)| (x - y).abs())
                            .fold(0.0f32, f32::max);
                        // f32 sums of up to 64 fractional lumas in the
                        // reference; exact integer sums here.
                        assert!(worst < 2e-3, "{format:?} {w}x{h} plane {plane}: {worst}");
                    }
                }
            }
        }
    }

    #[test]
    fn deciding_on_frames_is_deciding_on_their_thumbnails() {
        let frames: Vec<Vec<u8>> = (0..40)
            .map(|i| rgb(48, 40, move |x, _| [((x + i / 4) * 5) as u8, 60, 90]))
            .collect();
        fn frame(f: &[u8]) -> Frame<'_> {
            Frame::rgb(f, 48, 40, 48 * 3).unwrap()
        }
        let mut by_thumbnail = ChangeTest::new(ChangeMeasure::LumaBlockMax, 0.01, 4);
        let mut by_frame = by_thumbnail.clone();
        let mut cuts_by_thumbnail = CutDetector::new(ChangeMeasure::LumaMad, 0.01, 2.0, 4, 2);
        let mut cuts_by_frame = cuts_by_thumbnail.clone();
        for f in &frames {
            assert_eq!(
                by_thumbnail.decide(thumb(f, 48, 40)),
                by_frame.decide_frame(&frame(f))
            );
            assert_eq!(
                cuts_by_thumbnail.push(thumb(f, 48, 40)),
                cuts_by_frame.push_frame(&frame(f))
            );
        }
    }

    #[test]
    fn the_test_compares_with_the_last_analysed_frame_so_drift_accumulates() {
        // A fade: each frame 2 levels brighter than the one before.
        let frames: Vec<Vec<u8>> = (0..20)
            .map(|i| rgb(32, 32, |_, _| [(i * 2) as u8; 3]))
            .collect();
        let mut test = ChangeTest::new(ChangeMeasure::LumaMad, 5.0 / 255.0, 0);
        let decisions: Vec<bool> = frames
            .iter()
            .map(|f| matches!(test.decide(thumb(f, 32, 32)), Decision::Analyse { .. }))
            .collect();
        // Frame 0 (nothing before), then every third frame (6 levels >= 5).
        let analysed: Vec<usize> = (0..20).filter(|&i| decisions[i]).collect();
        assert_eq!(analysed, [0, 3, 6, 9, 12, 15, 18]);
    }

    #[test]
    fn max_reuse_bounds_the_frames_in_a_row_and_zero_threshold_never_reuses() {
        let f = rgb(32, 32, |_, _| [9; 3]);
        let mut test = ChangeTest::new(ChangeMeasure::LumaMad, 0.1, 2);
        let analysed: Vec<bool> = (0..7)
            .map(|_| matches!(test.decide(thumb(&f, 32, 32)), Decision::Analyse { .. }))
            .collect();
        assert_eq!(analysed, [true, false, false, true, false, false, true]);
        let mut off = ChangeTest::new(ChangeMeasure::LumaMad, 0.0, 0);
        assert!(!off.enabled());
        for _ in 0..3 {
            assert!(matches!(
                off.decide(thumb(&f, 32, 32)),
                Decision::Analyse { .. }
            ));
        }
        test.reset();
        assert_eq!(
            test.decide(thumb(&f, 32, 32)),
            Decision::Analyse { change: None }
        );
    }
}
