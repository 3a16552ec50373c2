//! Conversion of any supported frame to packed 8-bit RGB at its own size.
//!
//! RGB-family formats are exact byte shuffles (alpha and padding dropped, as
//! PIL's `convert('RGB')` does). YUV formats follow the frame's matrix and
//! range with nearest-neighbour chroma, in f64, rounded half up.

use crate::frame::{Frame, PixelFormat, YuvRange};

/// Writes `frame` as packed RGB (`width * 3` bytes per row, no padding) into `out`,
/// which is resized to fit and reused across frames.
pub fn to_packed_rgb(frame: &Frame<'_>, out: &mut Vec<u8>) {
    let (w, h) = (frame.width(), frame.height());
    out.resize(w * h * 3, 0);
    match frame.format() {
        PixelFormat::Gray8 => gray_to_rgb(frame, out),
        f if f.is_yuv() => yuv420_to_rgb(frame, out),
        f => {
            let (bpp, [r, g, b]) = f
                .packed_rgb_layout()
                .expect("every non-YUV, non-grey format is packed RGB");
            let plane = frame.plane(0);
            for (y, dst_row) in out.chunks_exact_mut(w * 3).enumerate() {
                let src_row = &plane.data[y * plane.stride..][..w * bpp];
                for (dst, src) in dst_row.chunks_exact_mut(3).zip(src_row.chunks_exact(bpp)) {
                    dst[0] = src[r];
                    dst[1] = src[g];
                    dst[2] = src[b];
                }
            }
        }
    }
}

fn gray_to_rgb(frame: &Frame<'_>, out: &mut [u8]) {
    let w = frame.width();
    let plane = frame.plane(0);
    for (y, dst_row) in out.chunks_exact_mut(w * 3).enumerate() {
        let src_row = &plane.data[y * plane.stride..][..w];
        for (dst, &v) in dst_row.chunks_exact_mut(3).zip(src_row) {
            dst.fill(v);
        }
    }
}

/// The constants of the YUV to RGB conversion for one colorimetry, in the
/// form both the CPU and the GPU path evaluate, so they round identically:
/// `Yn = (Y - y_offset) / y_scale`, `Cb = (U - 128) / c_scale` (same for Cr),
/// `R = Yn + r_cr * Cr`, `B = Yn + b_cb * Cb`, `G = (Yn - kr * R - kb * B) / g_div`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct YuvCoefficients {
    /// Luma offset (16 limited, 0 full).
    pub y_offset: f64,
    /// Luma scale (219 limited, 255 full).
    pub y_scale: f64,
    /// Chroma scale (224 limited, 255 full).
    pub c_scale: f64,
    /// 2 (1 - Kr).
    pub r_cr: f64,
    /// 2 (1 - Kb).
    pub b_cb: f64,
    /// Kr.
    pub kr: f64,
    /// Kb.
    pub kb: f64,
    /// 1 - Kr - Kb.
    pub g_div: f64,
}

impl YuvCoefficients {
    /// The constants for `colorimetry`.
    pub fn new(colorimetry: crate::frame::Colorimetry) -> Self {
        let (kr, kb) = colorimetry.matrix.kr_kb();
        let (y_offset, y_scale, c_scale) = match colorimetry.range {
            YuvRange::Limited => (16.0, 219.0, 224.0),
            YuvRange::Full => (0.0, 255.0, 255.0),
        };
        Self {
            y_offset,
            y_scale,
            c_scale,
            r_cr: 2.0 * (1.0 - kr),
            b_cb: 2.0 * (1.0 - kb),
            kr,
            kb,
            g_div: 1.0 - kr - kb,
        }
    }
}

/// Per-sample lookup tables: the matrix is linear, so each channel is a sum
/// of a luma term and chroma terms that can be tabulated once per frame
/// instead of recomputed per pixel. The final rounding must see the same f64
/// value as the direct formula, so the tables hold f64 terms, not rounded ones.
struct YuvTables {
    luma: [f64; 256],
    /// `r_cr * cr` and `b_cb * cb` per chroma byte: the same products the
    /// direct formula forms, so the sums below round identically.
    r_term: [f64; 256],
    b_term: [f64; 256],
    k: YuvCoefficients,
}

impl YuvTables {
    fn new(frame: &Frame<'_>) -> Self {
        let k = YuvCoefficients::new(frame.colorimetry());
        let mut luma = [0.0; 256];
        let mut r_term = [0.0; 256];
        let mut b_term = [0.0; 256];
        for v in 0..256 {
            luma[v] = (v as f64 - k.y_offset) / k.y_scale;
            let chroma = (v as f64 - 128.0) / k.c_scale;
            r_term[v] = k.r_cr * chroma;
            b_term[v] = k.b_cb * chroma;
        }
        Self {
            luma,
            r_term,
            b_term,
            k,
        }
    }

    /// One pixel from its luma byte and its chroma pair's terms
    /// (`r_term[v]`, `b_term[u]`), in the direct formula's operations.
    #[inline(always)]
    fn rgb(&self, y: u8, r_term: f64, b_term: f64) -> [u8; 3] {
        let k = &self.k;
        let yn = self.luma[y as usize];
        let r = yn + r_term;
        let b = yn + b_term;
        let g = (yn - k.kr * r - k.kb * b) / k.g_div;
        [quantise(r), quantise(g), quantise(b)]
    }
}

/// `floor(255 v + 0.5)` clamped to 0..=255. For t in [0, 255) truncation is
/// floor, so this equals `(255.0 * v + 0.5).floor().clamp(0.0, 255.0) as u8`
/// (NaN included: 0) without `f64::floor`, which is a libm call on baseline
/// x86-64 and was most of the conversion's time.
#[inline(always)]
fn quantise(v: f64) -> u8 {
    let t = 255.0 * v + 0.5;
    if t >= 255.0 {
        255
    } else if t > 0.0 {
        t as u8
    } else {
        0
    }
}

fn yuv420_to_rgb(frame: &Frame<'_>, out: &mut [u8]) {
    let w = frame.width();
    let tables = YuvTables::new(frame);
    let luma = frame.plane(0);
    // (plane, byte offset of the first sample, bytes between samples) for U and V.
    let (u_src, v_src) = match frame.format() {
        PixelFormat::I420 => ((frame.plane(1), 0, 1), (frame.plane(2), 0, 1)),
        PixelFormat::Yv12 => ((frame.plane(2), 0, 1), (frame.plane(1), 0, 1)),
        PixelFormat::Nv12 => ((frame.plane(1), 0, 2), (frame.plane(1), 1, 2)),
        PixelFormat::Nv21 => ((frame.plane(1), 1, 2), (frame.plane(1), 0, 2)),
        other => unreachable!("{other:?} is not YUV 4:2:0"),
    };
    for (y, dst_row) in out.chunks_exact_mut(w * 3).enumerate() {
        let y_row = &luma.data[y * luma.stride..][..w];
        let u_row = &u_src.0.data[(y / 2) * u_src.0.stride + u_src.1..];
        let v_row = &v_src.0.data[(y / 2) * v_src.0.stride + v_src.1..];
        // Two pixels share one chroma pair (the last one alone when w is odd).
        for (c, (dst, ys)) in dst_row.chunks_mut(6).zip(y_row.chunks(2)).enumerate() {
            let r_term = tables.r_term[v_row[c * v_src.2] as usize];
            let b_term = tables.b_term[u_row[c * u_src.2] as usize];
            for (px, &yv) in dst.chunks_exact_mut(3).zip(ys) {
                px.copy_from_slice(&tables.rgb(yv, r_term, b_term));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{Colorimetry, Plane, YuvMatrix};

    #[test]
    fn quantise_is_floor_then_clamp() {
        let reference = |v: f64| (255.0 * v + 0.5).floor().clamp(0.0, 255.0) as u8;
        let mut values = vec![
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -0.0,
            0.0,
            1.0,
            -1e-300,
            1e300,
        ];
        // Every rounding boundary k/255 - 0.5/255, and its neighbours in f64.
        for k in -2..=258 {
            let edge = (k as f64 - 0.5) / 255.0;
            let mut x = edge;
            for _ in 0..4 {
                x = f64::from_bits(x.to_bits().wrapping_sub(1));
            }
            for _ in 0..9 {
                values.push(x);
                x = f64::from_bits(x.to_bits().wrapping_add(1));
            }
        }
        // A dense sweep over and beyond [0, 1].
        values.extend((0..200_000).map(|i| -0.2 + 1.4 * i as f64 / 200_000.0));
        for v in values {
            assert_eq!(quantise(v), reference(v), "v = {v:e}");
        }
    }

    #[test]
    fn packed_formats_reorder_channels_and_drop_alpha() {
        // One pixel R=10, G=20, B=30 in every packed layout, with junk in A/x.
        let cases: &[(PixelFormat, &[u8])] = &[
            (PixelFormat::Rgb, &[10, 20, 30]),
            (PixelFormat::Bgr, &[30, 20, 10]),
            (PixelFormat::Rgba, &[10, 20, 30, 99]),
            (PixelFormat::Bgra, &[30, 20, 10, 99]),
            (PixelFormat::Argb, &[99, 10, 20, 30]),
            (PixelFormat::Abgr, &[99, 30, 20, 10]),
            (PixelFormat::Rgbx, &[10, 20, 30, 99]),
            (PixelFormat::Bgrx, &[30, 20, 10, 99]),
            (PixelFormat::Xrgb, &[99, 10, 20, 30]),
            (PixelFormat::Xbgr, &[99, 30, 20, 10]),
        ];
        for &(format, px) in cases {
            let frame = Frame::new(
                format,
                1,
                1,
                &[Plane {
                    data: px,
                    stride: px.len(),
                }],
                Colorimetry::default(),
            )
            .unwrap();
            let mut out = Vec::new();
            to_packed_rgb(&frame, &mut out);
            assert_eq!(out, [10, 20, 30], "{format:?}");
        }
    }

    #[test]
    fn limited_range_black_and_white() {
        for matrix in [YuvMatrix::Bt601, YuvMatrix::Bt709, YuvMatrix::Bt2020] {
            let c = Colorimetry {
                matrix,
                range: YuvRange::Limited,
            };
            for (yv, expect) in [(16u8, 0u8), (235, 255)] {
                let y = [yv; 4];
                let u = [128u8];
                let v = [128u8];
                let frame = Frame::new(
                    PixelFormat::I420,
                    2,
                    2,
                    &[
                        Plane {
                            data: &y,
                            stride: 2,
                        },
                        Plane {
                            data: &u,
                            stride: 1,
                        },
                        Plane {
                            data: &v,
                            stride: 1,
                        },
                    ],
                    c,
                )
                .unwrap();
                let mut out = Vec::new();
                to_packed_rgb(&frame, &mut out);
                assert!(out.iter().all(|&b| b == expect), "{matrix:?} {out:?}");
            }
        }
    }
}
