//! What the change test costs per frame: the thumbnail as it was first
//! written (`dreamsim::change::reference`: f32 per sample, sample positions
//! allocated per frame) and as it is computed now, side by side in one run:
//! `Thumbnail::compute` (integer sums on the mapped planes, no allocation;
//! what the corpus jobs' cut detector reads, chroma included) and
//! `Thumbnail::compute_luma` (the same without a YUV frame's chroma planes:
//! what the `dreamsim` element's change test reads, its measure being
//! luma-only), plus the measure that compares two thumbnails.
//! Frame sizes: 1080p, 720p, bikes.mp4 (640x272), the corpus tests' clips
//! (320x180) and tests/change_test.rs's clip (160x120); formats I420 (what
//! decodebin hands `dreamsim` for most files), NV12, RGB and BGRx.
//!
//! ```sh
//! cargo run --release --example change_test_cost [-- ITERATIONS]
//! ```
//!
//! Prints the processor (from /proc/cpuinfo, as `lscpu` names it) and, per
//! size and format, the median ns per frame of each over ITERATIONS frames
//! (default 400), cycling through 4 different frames so the sampled rows
//! are not all in cache; the speed-up is first / luma, the element's case.

use std::hint::black_box;
use std::time::Instant;

use dreamsim::change::{reference, ChangeMeasure, Thumbnail};
use dreamsim::{Colorimetry, Frame, PixelFormat, Plane};

/// Pseudo-random bytes (a fixed LCG): the content does not change the cost.
fn noise(n: usize, seed: u32) -> Vec<u8> {
    let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (s >> 24) as u8
        })
        .collect()
}

/// The planes of one frame, rows as long as their width (no padding).
fn planes(format: PixelFormat, w: usize, h: usize, seed: u32) -> Vec<(Vec<u8>, usize)> {
    (0..format.n_planes())
        .map(|i| {
            let (row, rows) = format.plane_extent(i, w, h);
            (noise(row * rows, seed * 7 + i as u32), row)
        })
        .collect()
}

fn median_ns(mut samples: Vec<u128>) -> u128 {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

fn processor() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown processor".into())
}

fn main() {
    let iterations: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(400)
        .max(1);
    println!(
        "processor: {} ({} threads available); {iterations} frames each, median ns per frame",
        processor(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "{:<24} {:<5} {:>11} {:>11} {:>11} {:>9} {:>9}",
        "size", "fmt", "first (ns)", "now (ns)", "luma (ns)", "speed-up", "measure"
    );
    let sizes = [
        (1920, 1080, "1920x1080 (1080p)"),
        (1280, 720, "1280x720 (720p)"),
        (640, 272, "640x272 (bikes.mp4)"),
        (320, 180, "320x180 (corpus tests)"),
        (160, 120, "160x120 (change_test)"),
    ];
    let formats = [
        PixelFormat::I420,
        PixelFormat::Nv12,
        PixelFormat::Rgb,
        PixelFormat::Bgrx,
    ];
    for (w, h, name) in sizes {
        for format in formats {
            let data: Vec<Vec<(Vec<u8>, usize)>> =
                (0..4).map(|k| planes(format, w, h, k)).collect();
            let frames: Vec<Frame> = data
                .iter()
                .map(|planes| {
                    let planes: Vec<Plane> = planes
                        .iter()
                        .map(|(data, stride)| Plane {
                            data,
                            stride: *stride,
                        })
                        .collect();
                    Frame::new(format, w, h, &planes, Colorimetry::default()).expect("frame")
                })
                .collect();
            let mut now = Thumbnail::default();
            let mut luma = Thumbnail::default();
            let (mut first_ns, mut now_ns, mut luma_ns) = (Vec::new(), Vec::new(), Vec::new());
            for i in 0..iterations {
                let frame = &frames[i % frames.len()];
                let t = Instant::now();
                black_box(reference::thumbnail(black_box(frame)));
                first_ns.push(t.elapsed().as_nanos());
                let t = Instant::now();
                now.compute(black_box(frame));
                black_box(&now);
                now_ns.push(t.elapsed().as_nanos());
                let t = Instant::now();
                luma.compute_luma(black_box(frame));
                black_box(&luma);
                luma_ns.push(t.elapsed().as_nanos());
            }
            let other = Thumbnail::of(&frames[1]);
            let mut measure_ns = Vec::new();
            for _ in 0..iterations {
                let t = Instant::now();
                black_box(ChangeMeasure::DEFAULT.between(black_box(&now), black_box(&other)));
                measure_ns.push(t.elapsed().as_nanos());
            }
            let (first, fast, luma) = (median_ns(first_ns), median_ns(now_ns), median_ns(luma_ns));
            // The speed-up of what the element's change test runs.
            println!(
                "{name:<24} {:<5} {first:>11} {fast:>11} {luma:>11} {:>8.1}x {:>9}",
                format!("{format:?}"),
                first as f64 / luma.max(1) as f64,
                median_ns(measure_ns)
            );
        }
    }
}
