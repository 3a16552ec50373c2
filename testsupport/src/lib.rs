//! Helpers shared by the integration tests of every crate of the
//! workspace (a dev-dependency only, never published): where the repository
//! and its fixtures are, the goldens, the synthetic test pattern that
//! tools/make_fixtures.py also implements, random unit vectors, the
//! mutator and harness of the fuzz tests, and (feature `gst`) running a
//! pipeline: its bus read to the end, its appsink's samples.
//!
//! A crate of its own because the tests of two crates that cannot see each
//! other's `tests/` folder (the plugin's and the tool's) need the same
//! helpers; `tests/fixtures/` stays at the repository root, found here and
//! only here ([`repo_root`], [`fixture`]).

pub mod fuzz;
#[cfg(feature = "gst")]
pub mod gst_run;
pub mod mutate;

use std::path::PathBuf;
use std::sync::LazyLock;

/// The repository root: the folder above this crate's (every crate's tests
/// run from their own crate's folder, so a path is made from here).
pub fn repo_root() -> PathBuf {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testsupport/ is inside the repository")
        .to_path_buf();
    assert!(
        root.join("tests/fixtures/goldens.json").exists(),
        "tests/fixtures/goldens.json not found in {}",
        root.display()
    );
    root
}

/// The shared fixtures folder, tests/fixtures.
pub fn fixtures_dir() -> PathBuf {
    repo_root().join("tests/fixtures")
}

/// A file under tests/fixtures.
pub fn fixture(name: &str) -> PathBuf {
    fixtures_dir().join(name)
}

/// tests/fixtures/goldens.json, parsed once.
pub static GOLDENS: LazyLock<serde_json::Value> = LazyLock::new(|| {
    let text = std::fs::read_to_string(fixture("goldens.json")).expect("read goldens.json");
    serde_json::from_str(&text).expect("parse goldens.json")
});

/// The test pattern (tests/fixtures/README.md).
pub fn pattern(x: u64, y: u64, c: u64, s: u64) -> u8 {
    (((x * (7 + s) + y * (3 + 2 * s) + c * 85 + s * 31)
        ^ ((x * y) >> 4)
        ^ ((((x >> 3) + (y >> 3) + s) & 1) * 255))
        & 255) as u8
}

/// A packed RGB pattern image, shifted by (dx, dy): pixel (x, y) is the
/// pattern at (x + dx, y + dy).
pub fn pattern_rgb(width: usize, height: usize, seed: u64, dx: u64, dy: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(width * height * 3);
    for y in 0..height as u64 {
        for x in 0..width as u64 {
            for c in 0..3 {
                out.push(pattern(x + dx, y + dy, c, seed));
            }
        }
    }
    out
}

/// Decodes a PNG fixture to packed RGB.
pub fn png_rgb(path: &std::path::Path) -> (usize, usize, Vec<u8>) {
    let img = image::open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .into_rgb8();
    (img.width() as usize, img.height() as usize, img.into_raw())
}

/// The golden image list entry called `name`.
pub fn golden_image(name: &str) -> &'static serde_json::Value {
    GOLDENS["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == name)
        .unwrap_or_else(|| panic!("no golden image {name}"))
}

/// The RGB pixels (width, height, data) of a golden image entry.
pub fn golden_image_rgb(entry: &serde_json::Value) -> (usize, usize, Vec<u8>) {
    match entry["kind"].as_str().unwrap() {
        "pattern" => {
            let (w, h) = (
                entry["width"].as_u64().unwrap() as usize,
                entry["height"].as_u64().unwrap() as usize,
            );
            let data = pattern_rgb(
                w,
                h,
                entry["seed"].as_u64().unwrap(),
                entry["dx"].as_u64().unwrap_or(0),
                entry["dy"].as_u64().unwrap_or(0),
            );
            (w, h, data)
        }
        "file" => png_rgb(&fixture(entry["path"].as_str().unwrap())),
        other => panic!("unknown image kind {other}"),
    }
}

/// The golden embedding of image `image` under model `model`.
pub fn golden_embedding(model: &str, image: &str) -> Vec<f32> {
    GOLDENS["embeddings"][model]["embeddings"][image]
        .as_array()
        .unwrap_or_else(|| panic!("no golden embedding {model}/{image}"))
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect()
}

/// Largest absolute difference between two float slices of equal length.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length differs");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// `n` random unit vectors of width `dim`, the same for a given seed (the
/// index tests' entries).
pub fn unit_vectors(n: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut rng = fastrand::Rng::with_seed(seed);
    (0..n)
        .map(|_| {
            let v: Vec<f32> = (0..dim).map(|_| rng.f32() * 2.0 - 1.0).collect();
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            v.into_iter().map(|x| x / norm).collect()
        })
        .collect()
}
