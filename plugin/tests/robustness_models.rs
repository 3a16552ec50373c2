//! Robustness catalogue, models: every kind of bad model file is a clear
//! element error (domain and words checked), a model whose output is not a
//! DreamSim embedding stops the stream instead of posting NaN, and a model
//! that refers to files outside its folder is refused before ONNX Runtime
//! opens it. Runs on the default ONNX Runtime (the 1.31 CPU build);
//! plugin/tests/openvino.rs repeats the external-data refusal on the 1.24 build.

use dreamsim_testsupport as common;
mod plugin_common;

use std::path::{Path, PathBuf};

use common::*;
use dreamsim::{runtime, Error, ExecutionProvider, Model, ModelOptions};
use plugin_common::*;

/// A scratch folder for this test, removed first.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dreamsim-robust-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn launch(model: &Path) -> String {
    format!(
        "videotestsrc num-buffers=3 ! video/x-raw,width=64,height=48 ! dreamsim name=d \
         execution-provider=cpu threads=1 model-location={} ! fakesink",
        model.display()
    )
}

/// The model fails at start with `kind`, and the message names the file.
fn refused<T: gst::glib::error::ErrorDomain + std::fmt::Debug + PartialEq>(
    model: &Path,
    kind: T,
    needles: &[&str],
) {
    let e = expect_error(&launch(model), "d", needles);
    assert_eq!(e.error.kind::<T>(), Some(kind), "{}", e.text());
    assert!(
        e.text().contains(&model.display().to_string()),
        "model path not in: {}",
        e.text()
    );
}

#[test]
fn missing_models_and_directories_are_not_found() {
    let dir = scratch("missing");
    refused(
        &dir.join("nope.onnx"),
        gst::ResourceError::NotFound,
        &["cannot be read", "No such file", "model-location"],
    );
    refused(
        &dir,
        gst::ResourceError::NotFound,
        &["is a directory", "model-location"],
    );
}

/// Root (CAP_DAC_OVERRIDE) reads through mode 000, and CI runs as root:
/// run it as another user with `cargo test --test robustness_models --
/// --ignored`.
#[test]
#[ignore = "needs a user without CAP_DAC_OVERRIDE: root reads through mode 000"]
fn an_unreadable_model_is_not_found() {
    let dir = scratch("unreadable");
    let locked = dir.join("locked.onnx");
    std::fs::copy(fixture("good_small.onnx"), &locked).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    assert!(
        std::fs::File::open(&locked).is_err(),
        "this user reads through mode 000 (root?): the case cannot be made here"
    );
    refused(
        &locked,
        gst::ResourceError::NotFound,
        &["cannot be read", "Permission denied"],
    );
}

#[test]
fn files_that_are_not_onnx_are_refused_with_the_reason() {
    let dir = scratch("garbage");
    let empty = dir.join("empty.onnx");
    std::fs::write(&empty, b"").unwrap();
    refused(
        &empty,
        gst::LibraryError::Settings,
        &["could not be loaded"],
    );

    // Random bytes (a fixed LCG, so the case is the same on every run).
    let mut x = 0x2545F4914F6CDD1Du64;
    let random: Vec<u8> = (0..4096)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 56) as u8
        })
        .collect();
    let noise = dir.join("random.onnx");
    std::fs::write(&noise, random).unwrap();
    refused(
        &noise,
        gst::LibraryError::Settings,
        &["could not be loaded"],
    );

    // corrupt.onnx: the first 100 bytes of a real model; and a cut in the
    // middle of the weights.
    refused(
        &fixture("corrupt.onnx"),
        gst::LibraryError::Settings,
        &["could not be loaded"],
    );
    let bytes = std::fs::read(fixture("tiny_dino.onnx")).unwrap();
    let cut = dir.join("truncated.onnx");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    refused(&cut, gst::LibraryError::Settings, &["could not be loaded"]);

    // An image is not a model.
    refused(
        &fixture("reference.png"),
        gst::LibraryError::Settings,
        &["could not be loaded"],
    );
}

#[test]
fn every_contract_break_is_named() {
    let cases: &[(&str, &[&str])] = &[
        ("bad_input_name.onnx", &["contract", "`pixels`", "`image`"]),
        ("bad_input_size.onnx", &["contract", "128", "224"]),
        ("bad_output_rank.onnx", &["contract", "rank 3"]),
        ("bad_dtype.onnx", &["contract", "Float16", "float32"]),
        ("bad_output_dtype.onnx", &["contract", "Int64", "float32"]),
        ("bad_embedding_dim.onnx", &["contract", "8", "16"]),
        // Not DreamSim at all: the right file type, the wrong graph.
        ("no_metadata.onnx", &[]),
    ];
    for (name, needles) in cases {
        if needles.is_empty() {
            // A valid graph without metadata is usable: it must run.
            let out = run_launch(&launch(&fixture(name)));
            assert!(out.error.is_none(), "{name}: {:?}", out.error);
            assert_eq!(out.messages.len(), 3, "{name}");
            continue;
        }
        let mut needles = needles.to_vec();
        needles.push("export_onnx.py");
        refused(&fixture(name), gst::LibraryError::Settings, &needles);
    }
}

/// The numeric faults: NaN, Inf, norm 2. Each stops the stream with the
/// model and the output named, and no `dreamsim` message carries a number
/// that is not finite.
#[test]
fn non_finite_or_unnormalised_output_is_an_error_never_a_nan() {
    for (name, fault) in [
        ("bad_nan.onnx", "value 2 of 8 is NaN"),
        ("bad_inf.onnx", "value 2 of 8 is inf"),
        ("bad_norm.onnx", "L2 norm is 2.000000"),
    ] {
        let model = fixture(name);
        let out = run_launch(&launch(&model));
        let e = out.error.unwrap_or_else(|| panic!("{name}: no error"));
        assert_eq!(e.src, "d");
        assert_eq!(
            e.error.kind::<gst::LibraryError>(),
            Some(gst::LibraryError::Failed)
        );
        let text = e.text();
        for needle in [
            &model.display().to_string(),
            "`embedding`",
            fault,
            "full-precision",
        ] {
            assert!(text.contains(needle), "{name}: `{needle}` not in {text}");
        }
        assert!(out.messages.is_empty(), "{name}: {:?}", out.messages);
    }
}

/// The same faults through the engine API: a typed error.
#[test]
fn the_engine_reports_output_faults_as_a_typed_error() {
    let rt = runtime(None).unwrap();
    let options = ModelOptions {
        provider: ExecutionProvider::Cpu,
        threads: 1,
        ..ModelOptions::default()
    };
    let model = Model::load(rt, &fixture("bad_nan.onnx"), &options).unwrap();
    let mut engine = dreamsim::Engine::new(model);
    let rgb = pattern_rgb(32, 32, 1, 0, 0);
    let frames = [
        dreamsim::Frame::rgb(&rgb, 32, 32, 96).unwrap(),
        dreamsim::Frame::rgb(&rgb, 32, 32, 96).unwrap(),
    ];
    match engine.embed_frames(&frames) {
        Err(Error::ModelOutput {
            path,
            output,
            item,
            problem,
            ..
        }) => {
            assert_eq!(path, fixture("bad_nan.onnx"));
            assert_eq!((output, item), ("embedding", 0));
            assert_eq!(problem, "value 2 of 8 is NaN");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn external_data_outside_the_model_folder_is_refused_before_loading() {
    // Two levels below /tmp, so `../../etc/hostname` really is /etc/hostname.
    let dir = scratch("escape");
    let escape = dir.join("escape.onnx");
    std::fs::copy(fixture("external_escape.onnx"), &escape).unwrap();
    let cases = [
        (
            escape,
            "`../../etc/hostname` goes up out of the folder with `..`",
        ),
        (
            fixture("external_absolute.onnx"),
            "`/etc/hostname` is an absolute path",
        ),
    ];
    for (model, why) in &cases {
        refused(
            model,
            gst::LibraryError::Settings,
            &[
                "is refused",
                "tensor `proj`'s external data",
                why,
                "own folder",
            ],
        );
    }
    // Inside the folder by name, outside through a symbolic link.
    let linked = scratch("symlink");
    std::fs::copy(
        fixture("external_data/good_external.onnx"),
        linked.join("m.onnx"),
    )
    .unwrap();
    std::os::unix::fs::symlink("/etc/hostname", linked.join("good_external.weights")).unwrap();
    refused(
        &linked.join("m.onnx"),
        gst::LibraryError::Settings,
        &["symbolic link", "/etc/hostname"],
    );
    // The engine's typed error, before any ONNX Runtime call.
    let rt = runtime(None).unwrap();
    match Model::load(rt, &cases[1].0, &ModelOptions::default()) {
        Err(Error::ModelExternalData { location, .. }) => assert_eq!(location, "/etc/hostname"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn external_data_inside_the_model_folder_loads() {
    let out = run_launch(&launch(&fixture("external_data/good_external.onnx")));
    assert!(out.error.is_none(), "{:?}", out.error);
    assert_eq!(out.messages.len(), 3);
    // And computes what the same model with embedded weights computes.
    let rt = runtime(None).unwrap();
    let options = ModelOptions {
        provider: ExecutionProvider::Cpu,
        threads: 1,
        ..ModelOptions::default()
    };
    let rgb = pattern_rgb(40, 30, 3, 0, 0);
    let frame = dreamsim::Frame::rgb(&rgb, 40, 30, 120).unwrap();
    let embed = |name: &str| {
        dreamsim::Engine::new(Model::load(rt, &fixture(name), &options).unwrap())
            .embed_frame(&frame)
            .unwrap()
    };
    assert_eq!(
        embed("external_data/good_external.onnx"),
        embed("good_small.onnx")
    );
}

/// ONNX Runtime loads custom-operator libraries only when the application
/// registers them (the engine never does): a model that uses an operator of
/// an unregistered domain, and names a library for it in its metadata, is
/// refused rather than made to load anything.
#[test]
fn custom_operators_are_never_loaded_on_a_models_say_so() {
    refused(
        &fixture("custom_op.onnx"),
        gst::LibraryError::Settings,
        &["could not be loaded", "com.example.custom:CustomIdentity"],
    );
}
