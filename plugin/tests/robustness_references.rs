//! Robustness catalogue, reference images: missing, corrupt, empty and
//! decompression-bomb files are clear errors (the bomb's says its size, the
//! limit and how to raise it), the limit can be raised by property and by
//! environment variable, and every format the README lists works.

use dreamsim_testsupport as common;
mod plugin_common;

use std::path::{Path, PathBuf};

use common::*;
use plugin_common::*;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dreamsim-robust-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn launch(reference: &Path, extra: &str) -> String {
    format!(
        "videotestsrc num-buffers=3 ! video/x-raw,width=64,height=48 ! dreamsim name=d \
         execution-provider=cpu threads=1 model-location={} reference-location={} {extra} ! fakesink",
        fixture("tiny_ensemble.onnx").display(),
        reference.display()
    )
}

/// A PNG of a few dozen bytes whose header declares `width` x `height`.
fn bomb_png(path: &Path, width: u32, height: u32) {
    fn chunk(out: &mut Vec<u8>, kind: &[u8], data: &[u8]) {
        out.extend((data.len() as u32).to_be_bytes());
        let start = out.len();
        out.extend(kind);
        out.extend(data);
        out.extend(crc32(&out[start..]).to_be_bytes());
    }
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend(width.to_be_bytes());
    ihdr.extend(height.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]); // 8-bit RGB
    chunk(&mut png, b"IHDR", &ihdr);
    // A stored (uncompressed) zlib block of a few zero bytes.
    chunk(
        &mut png,
        b"IDAT",
        &[
            0x78, 0x01, 0x01, 0x04, 0x00, 0xfb, 0xff, 0, 0, 0, 0, 0, 0x04, 0x00, 0x00, 0x01,
        ],
    );
    chunk(&mut png, b"IEND", &[]);
    std::fs::write(path, png).unwrap();
}

fn expect_reference_error(reference: &Path, extra: &str, needles: &[&str]) -> PipelineError {
    let e = expect_error(&launch(reference, extra), "d", needles);
    assert_eq!(
        e.error.kind::<gst::ResourceError>(),
        Some(gst::ResourceError::OpenRead),
        "{}",
        e.text()
    );
    assert!(
        e.text().contains(&reference.display().to_string()),
        "{}",
        e.text()
    );
    e
}

#[test]
fn missing_corrupt_and_empty_references_are_clear_errors() {
    let dir = scratch("refs");
    let empty = dir.join("empty.png");
    std::fs::write(&empty, b"").unwrap();
    let text = dir.join("notes.png");
    std::fs::write(&text, b"not an image at all").unwrap();
    for reference in [
        dir.join("missing.png"),
        fixture("corrupt.png"),
        empty,
        text,
        dir.clone(),
    ] {
        expect_reference_error(
            &reference,
            "reference-max-pixels=100000",
            &[
                "reference image",
                "cannot be used",
                "PNG, JPEG, BMP or WebP",
            ],
        );
    }
}

/// The fault: "Memory limit exceeded", no size, no limit, no way out.
#[test]
fn a_decompression_bomb_says_its_size_the_limit_and_how_to_raise_it() {
    let dir = scratch("bomb");
    let bomb = dir.join("bomb.png");
    bomb_png(&bomb, 100_000, 100_000);
    assert!(std::fs::metadata(&bomb).unwrap().len() < 100);
    // The default limit, set as a property so that this test does not read
    // the variable another test of this binary sets.
    let e = expect_error(
        &launch(&bomb, "reference-max-pixels=67108864"),
        "d",
        &[
            "100000 x 100000 = 10000000000 pixels",
            "above the limit of 67108864 pixels",
            "`reference-max-pixels`",
            "GST_DREAMSIM_REFERENCE_MAX_PIXELS",
        ],
    );
    assert_eq!(
        e.error.kind::<gst::ResourceError>(),
        Some(gst::ResourceError::OpenRead)
    );
    // Raised past what this machine can allocate: still an error, not an abort.
    expect_reference_error(
        &bomb,
        "reference-max-pixels=20000000000",
        &["needs 30000000000 bytes", "cannot be allocated"],
    );
}

#[test]
fn the_limit_can_be_raised_by_property_and_by_environment() {
    // reference.png is 160 x 120 = 19200 pixels.
    let reference = fixture("reference.png");
    expect_reference_error(
        &reference,
        "reference-max-pixels=19199",
        &["160 x 120 = 19200 pixels", "limit of 19199 pixels"],
    );
    let out = run_launch(&launch(&reference, "reference-max-pixels=19200"));
    assert!(out.error.is_none(), "{:?}", out.error);
    assert!(out.messages.iter().all(|m| m.reference_distance.is_some()));

    // The only test here that reads the variable (property 0); the others
    // set the property.
    std::env::set_var(dreamsim::image_file::MAX_PIXELS_ENV, "19199");
    let low = run_launch(&launch(&reference, ""));
    std::env::set_var(dreamsim::image_file::MAX_PIXELS_ENV, "not-a-number");
    let invalid = run_launch(&launch(&reference, ""));
    std::env::set_var(dreamsim::image_file::MAX_PIXELS_ENV, "19200");
    let enough = run_launch(&launch(&reference, ""));
    std::env::remove_var(dreamsim::image_file::MAX_PIXELS_ENV);
    let text = low.error.expect("limit from the environment").text();
    assert!(text.contains("limit of 19199 pixels"), "{text}");
    let text = invalid.error.expect("invalid variable").text();
    assert!(
        text.contains("GST_DREAMSIM_REFERENCE_MAX_PIXELS=`not-a-number`"),
        "{text}"
    );
    assert!(enough.error.is_none(), "{:?}", enough.error);
}

#[test]
fn every_listed_format_works_as_a_reference() {
    let dir = scratch("formats");
    let (w, h, rgb) = png_rgb(&fixture("reference.png"));
    let img = image::RgbImage::from_raw(w as u32, h as u32, rgb).unwrap();
    let mut distances = Vec::new();
    for (name, format) in [
        ("ref.png", image::ImageFormat::Png),
        ("ref.bmp", image::ImageFormat::Bmp),
        ("ref.webp", image::ImageFormat::WebP),
        ("ref.jpg", image::ImageFormat::Jpeg),
        // The content decides, not the name.
        ("png-named.jpg", image::ImageFormat::Png),
    ] {
        let path = dir.join(name);
        img.save_with_format(&path, format).unwrap();
        let out = run_launch(&launch(&path, "reference-max-pixels=100000"));
        assert!(out.error.is_none(), "{name}: {:?}", out.error);
        assert_eq!(out.messages.len(), 3, "{name}");
        let d: Vec<f64> = out
            .messages
            .iter()
            .map(|m| m.reference_distance.expect("reference-distance"))
            .collect();
        assert!(
            d.iter().all(|d| d.is_finite() && (0.0..=2.0).contains(d)),
            "{name}: {d:?}"
        );
        distances.push((name, d));
    }
    // Lossless formats hold the same pixels: the same distances.
    let png = &distances[0].1;
    for (name, d) in &distances {
        let lossless = !name.ends_with("ref.jpg");
        let tolerance = if lossless { 1e-9 } else { 0.05 };
        for (a, b) in png.iter().zip(d) {
            assert!((a - b).abs() <= tolerance, "{name}: {a} vs {b}");
        }
    }
}
