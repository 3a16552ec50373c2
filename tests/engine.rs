//! The engine against the Python reference path: Pillow-exact resizing for
//! every input layout, YUV conversion, embeddings and distances, and the
//! model contract checks.

use dreamsim_testsupport as common;

use common::*;
use dreamsim::{
    runtime, Colorimetry, Engine, Error, ExecutionProvider, Frame, Model, ModelOptions,
    PixelFormat, Plane, Preprocessor, YuvMatrix, YuvRange,
};

const SIZE: usize = 224;

fn cpu_options() -> ModelOptions {
    ModelOptions {
        provider: ExecutionProvider::Cpu,
        threads: 1,
        ..ModelOptions::default()
    }
}

fn load(name: &str) -> Result<Model, Error> {
    Model::load(runtime(None)?, &fixture(name), &cpu_options())
}

/// Repacks packed RGB into `format` with `pad` junk bytes at the end of each
/// row; alpha/padding bytes get junk so that using them would show.
fn repack(rgb: &[u8], w: usize, h: usize, format: PixelFormat, pad: usize) -> (Vec<u8>, usize) {
    let (bpp, offsets) = format.packed_rgb_layout().unwrap_or((1, [0, 0, 0]));
    let stride = w * bpp + pad;
    let mut out = vec![0xA5u8; stride * h];
    for y in 0..h {
        for x in 0..w {
            let src = &rgb[(y * w + x) * 3..][..3];
            let dst = &mut out[y * stride + x * bpp..][..bpp];
            if format == PixelFormat::Gray8 {
                dst[0] = src[0];
            } else {
                for c in 0..3 {
                    dst[offsets[c]] = src[c];
                }
            }
        }
    }
    (out, stride)
}

/// Checks a 224x224 RGB result against a golden case: byte for byte against
/// its PNG when the case has one, else against its SHA-256.
fn assert_matches_golden(got: &[u8], case: &serde_json::Value, what: &str) {
    match case["png"].as_str() {
        Some(png) => assert_same_image(got, &png_rgb(&fixture(png)).2, what),
        None => assert_eq!(
            sha256_hex(got),
            case["sha256"].as_str().unwrap(),
            "{what}: SHA-256 of the resized image differs from Pillow's"
        ),
    }
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn assert_same_image(got: &[u8], want: &[u8], what: &str) {
    if got != want {
        let first = got.iter().zip(want).position(|(a, b)| a != b).unwrap();
        let (px, c) = (first / 3, first % 3);
        panic!(
            "{what}: differs from Pillow at pixel ({}, {}) channel {c}: {} vs {}; {} bytes differ",
            px % SIZE,
            px / SIZE,
            got[first],
            want[first],
            got.iter().zip(want).filter(|(a, b)| a != b).count()
        );
    }
}

#[test]
fn resize_is_byte_identical_to_pillow_for_every_rgb_layout() {
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
    ];
    let mut pre = Preprocessor::new(SIZE);
    let cases = GOLDENS["resize"].as_array().unwrap();
    assert!(cases.len() >= 10, "too few resize goldens");
    for case in cases.iter().filter(|c| c["format"] == "RGB") {
        let name = case["name"].as_str().unwrap();
        let (w, h) = (
            case["width"].as_u64().unwrap() as usize,
            case["height"].as_u64().unwrap() as usize,
        );
        let rgb = pattern_rgb(w, h, case["seed"].as_u64().unwrap(), 0, 0);
        for (i, &format) in formats.iter().enumerate() {
            // Stride padding varies with the format, including none.
            let (data, stride) = repack(&rgb, w, h, format, i % 3 * 5);
            let frame = Frame::new(
                format,
                w,
                h,
                &[Plane {
                    data: &data,
                    stride,
                }],
                Colorimetry::default(),
            )
            .unwrap();
            let got = pre.resize(&frame).unwrap();
            assert_matches_golden(got, case, &format!("{name} as {format:?}"));
        }
    }
}

#[test]
fn gray_resize_is_byte_identical_to_pillow() {
    let mut pre = Preprocessor::new(SIZE);
    let mut seen = 0;
    for case in GOLDENS["resize"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["format"] == "GRAY8")
    {
        let (w, h) = (
            case["width"].as_u64().unwrap() as usize,
            case["height"].as_u64().unwrap() as usize,
        );
        let rgb = pattern_rgb(w, h, case["seed"].as_u64().unwrap(), 0, 0);
        let (data, stride) = repack(&rgb, w, h, PixelFormat::Gray8, 3);
        let frame = Frame::new(
            PixelFormat::Gray8,
            w,
            h,
            &[Plane {
                data: &data,
                stride,
            }],
            Colorimetry::default(),
        )
        .unwrap();
        assert_matches_golden(
            pre.resize(&frame).unwrap(),
            case,
            case["name"].as_str().unwrap(),
        );
        seen += 1;
    }
    assert!(seen > 0, "no GRAY8 golden");
}

/// Builds planar I420 and semi-planar NV12 versions of a golden YUV case.
fn yuv_planes(w: usize, h: usize, seed: u64) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    let plane = |pw: usize, ph: usize, c: u64| -> Vec<u8> {
        (0..ph as u64)
            .flat_map(|y| (0..pw as u64).map(move |x| pattern(x, y, c, seed)))
            .collect()
    };
    (plane(w, h, 0), plane(cw, ch, 1), plane(cw, ch, 2))
}

#[test]
fn yuv_conversion_follows_matrix_and_range() {
    let mut pre = Preprocessor::new(SIZE);
    let cases = GOLDENS["yuv"].as_array().unwrap();
    assert!(!cases.is_empty());
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let (w, h) = (
            case["width"].as_u64().unwrap() as usize,
            case["height"].as_u64().unwrap() as usize,
        );
        let colorimetry = Colorimetry {
            matrix: match case["matrix"].as_str().unwrap() {
                "bt601" => YuvMatrix::Bt601,
                "bt709" => YuvMatrix::Bt709,
                "bt2020" => YuvMatrix::Bt2020,
                m => panic!("matrix {m}"),
            },
            range: match case["range"].as_str().unwrap() {
                "limited" => YuvRange::Limited,
                "full" => YuvRange::Full,
                r => panic!("range {r}"),
            },
        };
        let (y, u, v) = yuv_planes(w, h, case["seed"].as_u64().unwrap());
        let cw = w.div_ceil(2);
        let i420 = Frame::new(
            PixelFormat::I420,
            w,
            h,
            &[
                Plane {
                    data: &y,
                    stride: w,
                },
                Plane {
                    data: &u,
                    stride: cw,
                },
                Plane {
                    data: &v,
                    stride: cw,
                },
            ],
            colorimetry,
        )
        .unwrap();
        assert_matches_golden(pre.resize(&i420).unwrap(), case, &format!("{name} I420"));

        let uv: Vec<u8> = u.iter().zip(&v).flat_map(|(&a, &b)| [a, b]).collect();
        let nv12 = Frame::new(
            PixelFormat::Nv12,
            w,
            h,
            &[
                Plane {
                    data: &y,
                    stride: w,
                },
                Plane {
                    data: &uv,
                    stride: 2 * cw,
                },
            ],
            colorimetry,
        )
        .unwrap();
        assert_matches_golden(pre.resize(&nv12).unwrap(), case, &format!("{name} NV12"));
    }
}

#[test]
fn embeddings_and_distances_match_the_python_reference() {
    for (model_name, entry) in GOLDENS["embeddings"].as_object().unwrap() {
        let model = load(entry["model"].as_str().unwrap()).unwrap();
        assert_eq!(
            model.info().embedding_dim as u64,
            entry["embedding_dim"].as_u64().unwrap()
        );
        let mut engine = Engine::new(model);
        let mut ours = std::collections::HashMap::new();
        for (image, want) in entry["embeddings"].as_object().unwrap() {
            let (w, h, rgb) = golden_image_rgb(golden_image(image));
            let got = if golden_image(image)["kind"] == "file" {
                engine
                    .embed_image_file(&fixture(golden_image(image)["path"].as_str().unwrap()))
                    .unwrap()
            } else {
                engine
                    .embed_frame(&Frame::rgb(&rgb, w, h, w * 3).unwrap())
                    .unwrap()
            };
            let want: Vec<f32> = want
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap() as f32)
                .collect();
            let diff = max_abs_diff(got.as_slice(), &want);
            assert!(diff <= 1e-5, "{model_name}/{image}: max |delta| {diff}");
            ours.insert(image.clone(), got);
        }
        for pair in entry["distances"].as_array().unwrap() {
            let (a, b) = (pair["a"].as_str().unwrap(), pair["b"].as_str().unwrap());
            let want = pair["distance"].as_f64().unwrap();
            let got = ours[a].distance(&ours[b]).unwrap();
            assert!(
                (got - want).abs() <= 1e-5,
                "{model_name} d({a}, {b}) = {got}, reference {want}"
            );
        }
    }
}

#[test]
fn a_batch_gives_the_same_embeddings_as_single_frames() {
    let mut engine = Engine::new(load("tiny_ensemble.onnx").unwrap());
    let images: Vec<_> = ["64x48_s40", "1920x1080_s42", "17x9_s46"]
        .iter()
        .map(|n| golden_image_rgb(golden_image(n)))
        .collect();
    let frames: Vec<Frame> = images
        .iter()
        .map(|(w, h, d)| Frame::rgb(d, *w, *h, w * 3).unwrap())
        .collect();
    let batch = engine.embed_frames(&frames).unwrap();
    assert_eq!(batch.len(), 3);
    for (frame, batched) in frames.iter().zip(&batch) {
        let single = engine.embed_frame(frame).unwrap();
        assert!(max_abs_diff(single.as_slice(), batched.as_slice()) <= 1e-6);
    }
}

fn contract_error(name: &str) -> String {
    match load(name) {
        Err(e @ Error::ModelContract { .. }) => e.to_string(),
        Err(other) => panic!("{name}: expected a contract error, got {other}"),
        Ok(_) => panic!("{name}: loaded although it breaks the contract"),
    }
}

#[test]
fn contract_violations_are_named_precisely() {
    assert!(contract_error("bad_input_name.onnx").contains("named `pixels`"));
    assert!(contract_error("bad_input_size.onnx").contains("128"));
    assert!(contract_error("bad_output_rank.onnx").contains("rank 3"));
    assert!(contract_error("bad_dtype.onnx").contains("expected float32"));
    assert!(contract_error("bad_output_dtype.onnx").contains("expected float32"));
    let dim = contract_error("bad_embedding_dim.onnx");
    assert!(dim.contains("8") && dim.contains("16"), "{dim}");
}

#[test]
fn a_model_without_metadata_still_loads_from_its_graph() {
    let model = load("no_metadata.onnx").unwrap();
    assert_eq!(model.info().embedding_dim, 8);
    assert_eq!(model.info().kind, "no_metadata");
    let good = load("good_small.onnx").unwrap();
    assert_eq!(good.info().input_size, 224);
}

#[test]
fn missing_and_corrupt_model_files_are_errors() {
    match load("does-not-exist.onnx") {
        Err(e @ Error::ModelNotFound { .. }) => assert!(e.to_string().contains("get_model.sh")),
        other => panic!("expected ModelNotFound, got {other:?}"),
    }
    assert!(matches!(load("corrupt.onnx"), Err(Error::ModelLoad { .. })));
}

#[test]
fn an_explicit_gpu_provider_that_cannot_start_is_an_error() {
    for provider in [ExecutionProvider::Cuda, ExecutionProvider::TensorRt] {
        let options = ModelOptions {
            provider,
            ..cpu_options()
        };
        match Model::load(runtime(None).unwrap(), &fixture("tiny_dino.onnx"), &options) {
            Err(Error::ProviderUnavailable {
                provider: p,
                message,
            }) => {
                assert_eq!(p, provider.as_str());
                assert!(message.contains("onnxruntime-gpu"), "{message}");
            }
            Ok(m) => assert_eq!(
                m.provider(),
                provider,
                "a GPU machine: it must really run there"
            ),
            Err(e) => panic!("unexpected error {e}"),
        }
    }
}

#[test]
fn auto_says_why_it_fell_back() {
    let options = ModelOptions {
        provider: ExecutionProvider::Auto,
        ..cpu_options()
    };
    let model = Model::load(runtime(None).unwrap(), &fixture("tiny_dino.onnx"), &options).unwrap();
    if model.provider() == ExecutionProvider::Cpu {
        let f = model.fallbacks();
        // OpenVINO is tried only on processors with bf16 matrix units.
        let tried = if dreamsim::cpu::bf16_matrix_units().is_some() {
            3
        } else {
            2
        };
        assert_eq!(f.len(), tried, "{f:?}");
        assert!(f[0].starts_with("tensorrt"));
        assert!(f[1].starts_with("cuda"));
        if tried == 3 {
            assert!(f[2].starts_with("openvino"), "{f:?}");
            assert!(f[2].contains("onnxruntime-openvino"), "{f:?}");
        }
    }
}

#[test]
fn unreadable_reference_images_are_errors() {
    let mut engine = Engine::new(load("tiny_dino.onnx").unwrap());
    for name in ["corrupt.png", "no-such-image.png"] {
        match engine.embed_image_file(&fixture(name)) {
            Err(e @ Error::ReferenceImage { .. }) => assert!(e.to_string().contains(name)),
            other => panic!("{name}: expected ReferenceImage error, got {other:?}"),
        }
    }
}

#[test]
fn frames_that_do_not_match_their_description_are_rejected() {
    let data = vec![0u8; 10];
    assert!(matches!(
        Frame::rgb(&data, 4, 4, 12),
        Err(Error::InvalidFrame(_))
    ));
    assert!(matches!(
        Frame::rgb(&data, 4, 1, 11),
        Err(Error::InvalidFrame(_))
    ));
    assert!(matches!(
        Frame::new(
            PixelFormat::I420,
            2,
            2,
            &[Plane {
                data: &data,
                stride: 2
            }],
            Colorimetry::default()
        ),
        Err(Error::InvalidFrame(_))
    ));
}

#[test]
fn exact_repeats_reuse_the_previous_embedding() {
    let mut engine = Engine::new(load("tiny_ensemble.onnx").unwrap());
    let (wa, ha, a) = golden_image_rgb(golden_image("64x48_s40"));
    let (wb, hb, b) = golden_image_rgb(golden_image("17x9_s46"));
    let fa = Frame::rgb(&a, wa, ha, wa * 3).unwrap();
    let fb = Frame::rgb(&b, wb, hb, wb * 3).unwrap();
    // The same picture in another layout is the same model input.
    let (a_bgrx, stride) = {
        let mut out = Vec::with_capacity(wa * ha * 4);
        for px in a.chunks_exact(3) {
            out.extend_from_slice(&[px[2], px[1], px[0], 7]);
        }
        (out, wa * 4)
    };
    let fa_bgrx = Frame::new(
        PixelFormat::Bgrx,
        wa,
        ha,
        &[Plane {
            data: &a_bgrx,
            stride,
        }],
        Colorimetry::default(),
    )
    .unwrap();

    let first = engine.embed_frames(&[fa, fa_bgrx, fb, fb]).unwrap();
    let second = engine.embed_frames(&[fb, fa]).unwrap();
    let stats = engine.stats();
    assert_eq!(stats.frames, 6);
    assert_eq!(stats.inferred_frames, 3, "A, B, then A again");
    assert_eq!(stats.batches, 2);

    let want_a = golden_embedding("tiny_ensemble", "64x48_s40");
    let want_b = golden_embedding("tiny_ensemble", "17x9_s46");
    for (e, want) in first
        .iter()
        .chain(&second)
        .zip([&want_a, &want_a, &want_b, &want_b, &want_b, &want_a])
    {
        assert!(max_abs_diff(e.as_slice(), want) <= 1e-5);
    }
}

#[test]
fn the_reference_image_is_not_a_frame_of_the_stream() {
    let mut engine = Engine::new(load("tiny_ensemble.onnx").unwrap());
    let (w, h, a) = golden_image_rgb(golden_image("64x48_s40"));
    let frame = Frame::rgb(&a, w, h, w * 3).unwrap();
    engine.embed_frame(&frame).unwrap();
    engine.embed_image_file(&fixture("reference.png")).unwrap();
    let stats = engine.stats();
    assert_eq!(
        (stats.frames, stats.inferred_frames, stats.batches),
        (1, 1, 1),
        "the reference image counts in no statistic"
    );
    // The frame after the reference is still compared with the previous
    // frame: the same picture again reuses its embedding.
    engine.embed_frame(&frame).unwrap();
    let stats = engine.stats();
    assert_eq!((stats.frames, stats.inferred_frames), (2, 1));
}
