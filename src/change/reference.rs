//! The first, straightforward thumbnail: per-sample `f32` arithmetic and
//! sample positions allocated per frame. Kept as the reference the fast
//! [`Thumbnail::compute`](super::Thumbnail::compute) is tested against
//! (same cells, to float rounding) and benchmarked against
//! (`examples/change_test_cost.rs`); nothing else uses it.

use super::{Thumbnail, SAMPLES_PER_CELL, THUMBNAIL_SIDE};
use crate::frame::{Frame, PixelFormat, YuvRange};

/// The sample positions along one axis of `len` pixels: for each of the
/// [`THUMBNAIL_SIDE`] cells, up to [`SAMPLES_PER_CELL`] evenly spread pixels.
pub fn axis_samples(len: usize) -> Vec<Vec<usize>> {
    (0..THUMBNAIL_SIDE)
        .map(|c| {
            let start = c * len / THUMBNAIL_SIDE;
            let end = ((c + 1) * len / THUMBNAIL_SIDE).max(start + 1).min(len);
            let n = (end - start).min(SAMPLES_PER_CELL);
            (0..n).map(|k| start + k * (end - start) / n).collect()
        })
        .collect()
}

/// The thumbnail of `frame`, computed the first way.
pub fn thumbnail(frame: &Frame) -> Thumbnail {
    let (w, h) = (frame.width(), frame.height());
    let cols = axis_samples(w);
    let rows = axis_samples(h);
    let cells = THUMBNAIL_SIDE * THUMBNAIL_SIDE;
    let mut t = Thumbnail {
        luma: vec![0.0; cells],
        cb: vec![0.0; cells],
        cr: vec![0.0; cells],
    };
    let format = frame.format();
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
                sb[c] += (b - l) * 0.564;
                sr[c] += (r - l) * 0.713;
            }
        }
        return;
    }
    let (cb, cr) = match format {
        PixelFormat::I420 => ((1, 0, 1), (2, 0, 1)),
        PixelFormat::Yv12 => ((2, 0, 1), (1, 0, 1)),
        PixelFormat::Nv12 => ((1, 0, 2), (1, 1, 2)),
        PixelFormat::Nv21 => ((1, 1, 2), (1, 0, 2)),
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
