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

/// The sample positions along one axis of `len` pixels: for each of the
/// [`THUMBNAIL_SIDE`] cells, up to [`SAMPLES_PER_CELL`] evenly spread pixels.
fn axis_samples(len: usize) -> Vec<Vec<usize>> {
    (0..THUMBNAIL_SIDE)
        .map(|c| {
            let start = c * len / THUMBNAIL_SIDE;
            let end = ((c + 1) * len / THUMBNAIL_SIDE).max(start + 1).min(len);
            let n = (end - start).min(SAMPLES_PER_CELL);
            (0..n).map(|k| start + k * (end - start) / n).collect()
        })
        .collect()
}

impl Thumbnail {
    /// The thumbnail of `frame`.
    pub fn of(frame: &Frame) -> Self {
        let (w, h) = (frame.width(), frame.height());
        let cols = axis_samples(w);
        let rows = axis_samples(h);
        let cells = THUMBNAIL_SIDE * THUMBNAIL_SIDE;
        let mut t = Self {
            luma: vec![0.0; cells],
            cb: vec![0.0; cells],
            cr: vec![0.0; cells],
        };
        let format = frame.format();
        // Limited-range YUV: Y in 16..235 and chroma in 16..240, stretched
        // to the full-range scale that RGB frames give.
        let (y_scale, c_scale, y_off) = match (format.is_yuv(), frame.colorimetry().range) {
            (true, YuvRange::Limited) => (255.0 / 219.0, 255.0 / 224.0, 16.0),
            _ => (1.0, 1.0, 0.0),
        };
        let n_cells = cols.len();
        let (mut sy, mut sb, mut sr) = (
            vec![0.0f32; n_cells],
            vec![0.0f32; n_cells],
            vec![0.0f32; n_cells],
        );
        for (cy, ys) in rows.iter().enumerate() {
            sy.fill(0.0);
            sb.fill(0.0);
            sr.fill(0.0);
            for &y in ys {
                accumulate_row(frame, format, y, &cols, &mut sy, &mut sb, &mut sr);
            }
            for (cx, xs) in cols.iter().enumerate() {
                let n = (ys.len() * xs.len()) as f32;
                let i = cy * THUMBNAIL_SIDE + cx;
                t.luma[i] = ((sy[cx] / n - y_off) * y_scale).clamp(0.0, 255.0);
                t.cb[i] = sb[cx] / n * c_scale;
                t.cr[i] = sr[cx] / n * c_scale;
            }
        }
        t
    }
}

/// Adds the luma and chroma (centred on 0, before range scaling) of row
/// `y`'s samples to each cell's sums (`cols`: the sampled x of each cell).
fn accumulate_row(
    frame: &Frame,
    format: PixelFormat,
    y: usize,
    cols: &[Vec<usize>],
    sy: &mut [f32],
    sb: &mut [f32],
    sr: &mut [f32],
) {
    let p0 = frame.plane(0);
    let row = &p0.data[y * p0.stride..];
    if let Some((bpp, [ro, go, bo])) = format.packed_rgb_layout() {
        for (c, xs) in cols.iter().enumerate() {
            for &x in xs {
                let px = &row[x * bpp..x * bpp + bpp];
                let (r, g, b) = (f32::from(px[ro]), f32::from(px[go]), f32::from(px[bo]));
                let l = 0.299 * r + 0.587 * g + 0.114 * b;
                sy[c] += l;
                // BT.601 Cb, Cr scaled as in full-range YCbCr.
                sb[c] += (b - l) * 0.564;
                sr[c] += (r - l) * 0.713;
            }
        }
        return;
    }
    // (plane, byte offset, bytes per chroma sample) of Cb and Cr.
    let (cb, cr) = match format {
        PixelFormat::I420 => ((1, 0, 1), (2, 0, 1)),
        PixelFormat::Yv12 => ((2, 0, 1), (1, 0, 1)),
        PixelFormat::Nv12 => ((1, 0, 2), (1, 1, 2)),
        PixelFormat::Nv21 => ((1, 1, 2), (1, 0, 2)),
        // Gray8 (and nothing else reaches here): no chroma.
        _ => {
            for (c, xs) in cols.iter().enumerate() {
                sy[c] += xs.iter().map(|&x| f32::from(row[x])).sum::<f32>();
            }
            return;
        }
    };
    let chroma_row = |(plane, offset, step): (usize, usize, usize)| {
        let p = frame.plane(plane);
        (&p.data[(y / 2) * p.stride + offset..], step)
    };
    let ((b_row, b_step), (r_row, r_step)) = (chroma_row(cb), chroma_row(cr));
    for (c, xs) in cols.iter().enumerate() {
        for &x in xs {
            sy[c] += f32::from(row[x]);
            sb[c] += f32::from(b_row[(x / 2) * b_step]) - 128.0;
            sr[c] += f32::from(r_row[(x / 2) * r_step]) - 128.0;
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
    last_analysed: Option<Thumbnail>,
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
            last_analysed: None,
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
        self.last_analysed = None;
        self.reused_in_a_row = 0;
    }

    /// Decides for the next frame, given its thumbnail, and records it.
    pub fn decide(&mut self, thumbnail: Thumbnail) -> Decision {
        let change = self
            .last_analysed
            .as_ref()
            .map(|last| self.measure.between(last, &thumbnail));
        let bound_reached = self.max_reuse > 0 && self.reused_in_a_row >= self.max_reuse;
        match change {
            Some(c) if self.enabled() && c < self.threshold && !bound_reached => {
                self.reused_in_a_row += 1;
                Decision::Reuse { change: c }
            }
            _ => {
                self.last_analysed = Some(thumbnail);
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
    previous: Option<Thumbnail>,
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
            previous: None,
            recent: std::collections::VecDeque::new(),
            since_start: 0,
        }
    }

    /// Forgets the frames seen (a new stream, a seek): the next frame starts
    /// a scene.
    pub fn reset(&mut self) {
        self.previous = None;
        self.recent.clear();
        self.since_start = 0;
    }

    /// Takes the next frame's thumbnail; true when it starts a scene.
    pub fn push(&mut self, thumbnail: Thumbnail) -> bool {
        let Some(previous) = self.previous.replace(thumbnail) else {
            self.since_start = 1;
            return true;
        };
        let change = self
            .measure
            .between(&previous, self.previous.as_ref().expect("just set"));
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
        assert!(axis_samples(7680)
            .iter()
            .all(|s| s.len() == SAMPLES_PER_CELL));
        let small = axis_samples(20);
        assert!(small
            .iter()
            .all(|s| !s.is_empty() && s.iter().all(|&x| x < 20)));
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
