//! What `gst-dreamsim evaluate`'s diversity figures cost for one group:
//! `diversity()` (mean pairwise distance, Vendi Score, near-duplicate
//! share, their 95 % intervals) on random unit vectors of 1792 components,
//! the width of the ensemble's embedding (DINO 768 + CLIP 768 + OpenCLIP
//! 256 concatenated), without resampling and with 1000 resamples.
//!
//! ```text
//! cargo run --release -p gst-dreamsim --example evaluate_cost [-- SIZES...]
//! ```
//! Sizes default to 10 100 200 1000 (200: the largest set whose Vendi
//! Score interval is bootstrapped). The figures are in docs/evaluate.md.

#[allow(dead_code)]
#[path = "../src/evaluate/stats.rs"]
mod stats;

use std::time::Instant;

/// The ensemble's embedding width.
const DIM: usize = 1792;
const RESAMPLES: usize = 1000;

fn random_units(n: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut rng = fastrand::Rng::with_seed(seed);
    (0..n)
        .map(|_| {
            let v: Vec<f32> = (0..DIM).map(|_| rng.f32() * 2.0 - 1.0).collect();
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            v.iter().map(|x| x / norm).collect()
        })
        .collect()
}

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("sizes are whole numbers"))
        .collect();
    let sizes = if sizes.is_empty() {
        vec![10, 100, 200, 1000]
    } else {
        sizes
    };
    println!("| items | no resampling (s) | {RESAMPLES} resamples (s) | Vendi Score |");
    println!("|---:|---:|---:|---:|");
    for n in sizes {
        let set = random_units(n, n as u64);
        let refs: Vec<&[f32]> = set.iter().map(Vec::as_slice).collect();
        let start = Instant::now();
        let plain = stats::diversity(&refs, 0.05, 0, 1);
        let plain_s = start.elapsed().as_secs_f64();
        let start = Instant::now();
        let resampled = stats::diversity(&refs, 0.05, RESAMPLES, 1);
        let resampled_s = start.elapsed().as_secs_f64();
        // One eigen solve with eigenvectors, one without: equal to rounding.
        assert!((plain.vendi.value - resampled.vendi.value).abs() < 1e-9 * plain.vendi.value);
        println!(
            "| {n} | {plain_s:.4} | {resampled_s:.4} | {:.1} |",
            plain.vendi.value
        );
    }
}
