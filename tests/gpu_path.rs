//! The GPU inference path's decisions, checked without a GPU (issue 26):
//! the session plans Model::load builds its sessions from (providers and
//! their options, engine cache folders, precision, profiles), the engine
//! cache folder's creation and checks, batch splitting and fixed-batch
//! models on the engine API, and the node placement ONNX Runtime reports.
//! tests/cuda.rs checks the GPU branch of the engine through its kernel
//! emulation.

use dreamsim_testsupport as common;

use std::path::{Path, PathBuf};

use common::*;
use dreamsim::session_plan::{
    self, ort_names, prepare_engine_cache, BatchProfile, EngineCacheError, ModelFacts, SessionPlan,
    Tf32Override,
};
use dreamsim::{
    runtime, ComputePrecision, Engine, Error, ExecutionProvider, Frame, Model, ModelOptions,
};

const TF32_ON: Tf32Override = Tf32Override { disabled: false };
const TF32_OFF: Tf32Override = Tf32Override { disabled: true };

/// A fresh folder under the target's tmp dir (or the system's).
fn scratch(name: &str) -> PathBuf {
    let base = option_env!("CARGO_TARGET_TMPDIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = base.join(format!("gpu_path-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn options(provider: ExecutionProvider) -> ModelOptions {
    ModelOptions {
        provider,
        threads: 1,
        ..ModelOptions::default()
    }
}

fn plan_for(model: &str, options: &ModelOptions, tf32: Tf32Override) -> SessionPlan {
    let facts = ModelFacts::read(&fixture(model));
    session_plan::plan(options.provider, options, &facts, tf32).unwrap()
}

fn names(plan: &SessionPlan) -> Vec<&'static str> {
    plan.providers.iter().map(|p| p.name).collect()
}

/// A folder that cannot be created, whoever runs the test (root too): its
/// parent is a regular file.
fn under_a_file(dir: &Path) -> PathBuf {
    let file = dir.join("a-file");
    std::fs::write(&file, b"not a folder").unwrap();
    file.join("cache").join("trt")
}

// ---------------------------------------------------------------- providers

#[test]
fn tensorrt_runs_with_cuda_behind_it_and_auto_tries_the_same() {
    let trt = plan_for(
        "tiny_dino.onnx",
        &options(ExecutionProvider::TensorRt),
        TF32_ON,
    );
    assert_eq!(names(&trt), [ort_names::TENSORRT, ort_names::CUDA]);
    // CUDA behind TensorRT keeps TF32 off, as the CUDA provider alone does.
    assert_eq!(trt.providers[1].option("use_tf32"), Some("0"));
    assert_eq!(trt.providers[1].option("device_id"), Some("0"));

    let cuda = plan_for("tiny_dino.onnx", &options(ExecutionProvider::Cuda), TF32_ON);
    assert_eq!(names(&cuda), [ort_names::CUDA]);
    assert_eq!(cuda.providers[0].option("use_tf32"), Some("0"));
    let cpu = plan_for("tiny_dino.onnx", &options(ExecutionProvider::Cpu), TF32_ON);
    assert_eq!(names(&cpu), [ort_names::CPU]);

    // `auto` tries TensorRT first, with the very plan of `tensorrt`.
    let auto = options(ExecutionProvider::Auto);
    let attempts = session_plan::provider_attempts(&auto, false, TF32_ON);
    assert_eq!(
        attempts,
        [
            ExecutionProvider::TensorRt,
            ExecutionProvider::Cuda,
            ExecutionProvider::Cpu
        ]
    );
    let facts = ModelFacts::read(&fixture("tiny_dino.onnx"));
    let first = session_plan::plan(attempts[0], &auto, &facts, TF32_ON).unwrap();
    assert_eq!(names(&first), [ort_names::TENSORRT, ort_names::CUDA]);
}

#[test]
fn an_explicit_tensorrt_that_cannot_start_is_still_an_error_here() {
    // Registering TensorRT then CUDA must not turn a missing GPU into a
    // silent CPU run.
    let rt = runtime(None).expect("ONNX Runtime (tools/get_onnxruntime.sh)");
    match Model::load(
        rt,
        &fixture("tiny_dino.onnx"),
        &options(ExecutionProvider::TensorRt),
    ) {
        Err(Error::ProviderUnavailable { provider, .. }) => assert_eq!(provider, "tensorrt"),
        Ok(m) => {
            // A machine with TensorRT: then it must run there.
            assert_eq!(m.provider(), ExecutionProvider::TensorRt);
            println!("TensorRT started here: {:?}", m.node_placement());
        }
        Err(other) => panic!("{other}"),
    }
}

// ---------------------------------------------------------------- precision

#[test]
fn the_reported_precision_is_what_tensorrt_runs() {
    let trt = |fp16, full_precision| ModelOptions {
        fp16,
        full_precision,
        ..options(ExecutionProvider::TensorRt)
    };
    // TensorRT's fp32 engines compute in TF32: said so.
    let plain = plan_for("tiny_dino.onnx", &trt(false, false), TF32_ON);
    assert_eq!(plain.precision, ComputePrecision::Tf32);
    assert_eq!(plain.precision.to_string(), "tf32");
    assert_eq!(plain.providers[0].option("trt_fp16_enable"), Some("0"));
    let fp16 = plan_for("tiny_dino.onnx", &trt(true, false), TF32_ON);
    assert_eq!(fp16.precision, ComputePrecision::Fp16);
    assert_eq!(fp16.providers[0].option("trt_fp16_enable"), Some("1"));
    // With NVIDIA_TF32_OVERRIDE=0 TensorRT builds true fp32.
    let no_tf32 = plan_for("tiny_dino.onnx", &trt(false, false), TF32_OFF);
    assert_eq!(no_tf32.precision, ComputePrecision::Fp32);

    // Full precision: fp16 is dropped; without the override TensorRT
    // cannot promise fp32 and is refused, with the way out.
    let facts = ModelFacts::read(&fixture("tiny_dino.onnx"));
    let err = session_plan::plan(
        ExecutionProvider::TensorRt,
        &trt(true, true),
        &facts,
        TF32_ON,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("NVIDIA_TF32_OVERRIDE=0") && err.contains("execution-provider=cuda"),
        "{err}"
    );
    let full = plan_for("tiny_dino.onnx", &trt(true, true), TF32_OFF);
    assert_eq!(full.precision, ComputePrecision::Fp32);
    assert_eq!(full.providers[0].option("trt_fp16_enable"), Some("0"));
    // ... and `auto` under full precision does not try TensorRT at all.
    let auto = ModelOptions {
        full_precision: true,
        ..options(ExecutionProvider::Auto)
    };
    assert!(!session_plan::provider_attempts(&auto, false, TF32_ON)
        .contains(&ExecutionProvider::TensorRt));

    // Through Model::load, before any provider is tried (the same error
    // on a machine with a GPU).
    if std::env::var("NVIDIA_TF32_OVERRIDE").as_deref() != Ok("0") {
        let rt = runtime(None).expect("ONNX Runtime");
        let err = Model::load(rt, &fixture("tiny_dino.onnx"), &trt(false, true)).unwrap_err();
        assert!(matches!(err, Error::InvalidSetting(_)), "{err}");
        // `auto` says why TensorRT was left out.
        let model = Model::load(rt, &fixture("tiny_dino.onnx"), &auto).unwrap();
        assert_eq!(model.compute_precision(), ComputePrecision::Fp32);
        assert!(
            model.fallbacks()[0].contains("tensorrt not tried"),
            "{:?}",
            model.fallbacks()
        );
    }
}

// ---------------------------------------------------------------- engine cache

#[test]
fn the_engine_cache_folder_is_created_with_its_parents() {
    let dir = scratch("nested");
    let root = dir.join("missing").join("parents").join("trt");
    let plan = plan_for(
        "tiny_dino.onnx",
        &ModelOptions {
            engine_cache: Some(root.clone()),
            ..options(ExecutionProvider::TensorRt)
        },
        TF32_ON,
    );
    let cache = plan.engine_cache.clone().unwrap();
    assert!(cache.starts_with(&root), "{}", cache.display());
    let trt = &plan.providers[0];
    let cache_s = cache.display().to_string();
    assert_eq!(trt.option("trt_engine_cache_enable"), Some("1"));
    assert_eq!(trt.option("trt_engine_cache_path"), Some(cache_s.as_str()));
    assert_eq!(trt.option("trt_timing_cache_path"), Some(cache_s.as_str()));

    assert!(!root.exists());
    prepare_engine_cache(&cache).unwrap();
    assert!(cache.is_dir());
    // The probe file is gone again.
    assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 0);
    // And again on the existing folder.
    prepare_engine_cache(&cache).unwrap();

    // Model::load does it too, whatever provider ends up running (here the
    // CPU, under `auto`).
    let root2 = dir.join("via").join("load");
    let rt = runtime(None).expect("ONNX Runtime");
    let model = Model::load(
        rt,
        &fixture("tiny_dino.onnx"),
        &ModelOptions {
            engine_cache: Some(root2.clone()),
            ..options(ExecutionProvider::Auto)
        },
    )
    .unwrap();
    println!("auto ran on {}", model.provider());
    assert!(root2.is_dir(), "{} not created", root2.display());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_unusable_engine_cache_folder_is_a_clear_error() {
    let dir = scratch("unusable");
    let bad = under_a_file(&dir);
    match prepare_engine_cache(&bad) {
        Err(e @ EngineCacheError::Create { .. }) => {
            let message = e.to_string();
            assert!(message.contains(&bad.display().to_string()), "{message}");
            assert!(message.contains("engine-cache-location"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    // A folder that exists but takes no file: /proc, for root too.
    match prepare_engine_cache(Path::new("/proc")) {
        Err(e @ EngineCacheError::NotWritable { .. }) => {
            assert!(e.to_string().contains("not writable"), "{e}")
        }
        other => panic!("/proc: {other:?}"),
    }
    // A read-only folder (chmod 555): root writes there anyway, so this
    // part runs only for other users.
    let ro = dir.join("read-only");
    std::fs::create_dir(&ro).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
    if std::fs::write(ro.join("x"), b"x").is_ok() {
        println!("read-only folder: skipped, this user (root?) writes in a chmod 555 folder");
    } else {
        assert!(matches!(
            prepare_engine_cache(&ro),
            Err(EngineCacheError::NotWritable { .. })
        ));
    }
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o755)).unwrap();

    // Model::load stops before any session, on every provider that uses
    // the cache, `auto` included: no silent fallback, no rebuild at every
    // start.
    let rt = runtime(None).expect("ONNX Runtime");
    for provider in [ExecutionProvider::TensorRt, ExecutionProvider::Auto] {
        let err = Model::load(
            rt,
            &fixture("tiny_dino.onnx"),
            &ModelOptions {
                engine_cache: Some(bad.clone()),
                ..options(provider)
            },
        )
        .unwrap_err();
        assert!(
            matches!(&err, Error::InvalidSetting(m) if m.contains("engine cache folder")),
            "{provider}: {err}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn each_batch_profile_gets_its_own_engine_cache_folder() {
    let root = PathBuf::from("/var/cache/dreamsim-trt");
    let cache = |model: &str, max_batch, fp16, device_id| {
        plan_for(
            model,
            &ModelOptions {
                engine_cache: Some(root.clone()),
                max_batch,
                fp16,
                device_id,
                ..options(ExecutionProvider::TensorRt)
            },
            TF32_ON,
        )
        .engine_cache
        .unwrap()
    };
    let base = cache("tiny_dino.onnx", 8, false, 0);
    // Stable for the same model and profile.
    assert_eq!(base, cache("tiny_dino.onnx", 8, false, 0));
    assert_eq!(base.parent(), Some(root.as_path()));
    // Another batch size, precision, device or model: another folder.
    let others = [
        cache("tiny_dino.onnx", 4, false, 0),
        cache("tiny_dino.onnx", 8, true, 0),
        cache("tiny_dino.onnx", 8, false, 1),
        cache("tiny_ensemble.onnx", 8, false, 0),
    ];
    for (i, other) in others.iter().enumerate() {
        assert_ne!(&base, other, "case {i}");
        for later in &others[i + 1..] {
            assert_ne!(other, later);
        }
    }
    let name = base.file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.contains("b1-8-8") && name.contains("tf32"), "{name}");
}

// ---------------------------------------------------------------- batches

fn frames_of(images: &[Vec<u8>]) -> Vec<Frame<'_>> {
    images
        .iter()
        .map(|d| Frame::rgb(d, 64, 48, 64 * 3).unwrap())
        .collect()
}

fn distinct_images(n: usize) -> Vec<Vec<u8>> {
    (0..n as u64)
        .map(|s| pattern_rgb(64, 48, 60 + s, 0, 0))
        .collect()
}

fn engine(model: &str, max_batch: usize) -> Engine {
    let rt = runtime(None).expect("ONNX Runtime");
    let options = ModelOptions {
        max_batch,
        ..options(ExecutionProvider::Cpu)
    };
    Engine::new(Model::load(rt, &fixture(model), &options).unwrap())
}

fn assert_close(a: &[dreamsim::Embedding], b: &[dreamsim::Embedding]) {
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        let d = max_abs_diff(x.as_slice(), y.as_slice());
        assert!(d < 1e-5, "frame {i}: embeddings differ by {d}");
    }
}

#[test]
fn batches_above_the_maximum_are_split_by_the_engine() {
    let images = distinct_images(5);
    let frames = frames_of(&images);
    let mut whole = engine("tiny_dino.onnx", 8);
    let want = whole.embed_frames(&frames).unwrap();
    assert_eq!(whole.stats().batches, 1);

    let mut split = engine("tiny_dino.onnx", 2);
    assert_eq!(split.model().max_batch(), 2);
    let got = split.embed_frames(&frames).unwrap();
    assert_eq!(split.stats().batches, 3, "5 frames in runs of at most 2");
    assert_eq!(split.stats().inferred_frames, 5);
    assert_close(&got, &want);

    // A repeat across the split still reuses the embedding.
    let repeated = [frames[0], frames[1], frames[1], frames[2]];
    let mut split = engine("tiny_dino.onnx", 2);
    let got = split.embed_frames(&repeated).unwrap();
    assert_eq!(split.stats().inferred_frames, 3);
    assert_eq!(got[1], got[2]);
}

#[test]
fn a_fixed_batch_model_gets_its_batch_as_profile_and_runs_any_number_of_frames() {
    let facts = ModelFacts::read(&fixture("fixed_batch2.onnx"));
    assert_eq!(facts.fixed_batch, Some(2));
    assert_eq!(
        ModelFacts::read(&fixture("good_small.onnx")).fixed_batch,
        None
    );
    assert_eq!(
        ModelFacts::read(&fixture("tiny_dino.onnx")).fixed_batch,
        None
    );

    let plan = plan_for(
        "fixed_batch2.onnx",
        &options(ExecutionProvider::TensorRt),
        TF32_ON,
    );
    assert_eq!(
        plan.profile,
        Some(BatchProfile {
            min: 2,
            opt: 2,
            max: 2
        })
    );
    for key in [
        "trt_profile_min_shapes",
        "trt_profile_opt_shapes",
        "trt_profile_max_shapes",
    ] {
        assert_eq!(
            plan.providers[0].option(key),
            Some("image:2x3x224x224"),
            "{key}"
        );
    }

    // The same graph with a dynamic batch gives the reference embeddings.
    let images = distinct_images(5);
    let frames = frames_of(&images);
    let want = engine("good_small.onnx", 8).embed_frames(&frames).unwrap();
    for n in [1, 2, 3, 5] {
        let mut fixed = engine("fixed_batch2.onnx", 8);
        assert_eq!(fixed.model().max_batch(), 2);
        let got = fixed.embed_frames(&frames[..n]).unwrap();
        assert_close(&got, &want[..n]);
        assert_eq!(fixed.stats().batches, n.div_ceil(2) as u64, "{n} frames");
    }
    // Model::embed itself, for callers that batch on their own (the
    // compare element): any number of images, in runs of exactly 2.
    let rt = runtime(None).expect("ONNX Runtime");
    let mut fixed = Model::load(
        rt,
        &fixture("fixed_batch2.onnx"),
        &options(ExecutionProvider::Cpu),
    )
    .unwrap();
    let mut dynamic = Model::load(
        rt,
        &fixture("good_small.onnx"),
        &options(ExecutionProvider::Cpu),
    )
    .unwrap();
    let input = ndarray::Array4::from_shape_fn((3, 3, 224, 224), |(n, c, y, x)| {
        ((n * 7 + c * 3 + y * x) % 255) as f32 / 255.0
    });
    for rows in [1, 2, 3] {
        let view = input.slice(ndarray::s![..rows, .., .., ..]);
        assert_close(&fixed.embed(view).unwrap(), &dynamic.embed(view).unwrap());
    }
    // The reference image too (one image, padded to the batch).
    let mut fixed = engine("fixed_batch2.onnx", 8);
    let reference = fixed.embed_image_file(&fixture("reference.png")).unwrap();
    let plain = engine("good_small.onnx", 8)
        .embed_image_file(&fixture("reference.png"))
        .unwrap();
    assert_close(&[reference], &[plain]);
}

// ---------------------------------------------------------------- placement

#[test]
fn onnx_runtime_says_which_provider_took_the_nodes() {
    let mut e = engine("tiny_dino.onnx", 8);
    let placement = e
        .model()
        .node_placement()
        .expect("ONNX Runtime >= 1.24 records the node placement");
    println!("tiny_dino on the CPU provider: {placement}");
    assert!(placement.nodes_on("cpu") > 10, "{placement}");
    assert_eq!(placement.nodes_on("cpu"), placement.total());
    assert!(!placement.is_split());
    // The session still runs with the recording on.
    let images = distinct_images(1);
    e.embed_frames(&frames_of(&images)).unwrap();
}
