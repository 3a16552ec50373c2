//! The int8 model beside the fp32 one: when the engine and the element run
//! it, what they say about it, and that its distances follow fp32's.
//!
//! The fixtures in tests/fixtures/int8/ are the tiny ensemble quantized by
//! tools/make_int8_fixtures.py; each test copies one next to a copy of
//! tiny_ensemble.onnx, as tools/get_model.sh --int8 installs it. The tests
//! load the plain CPU ONNX Runtime, so no GPU or OpenVINO path starts and
//! `auto` ends on the CPU, where the int8 model stands in.

use dreamsim_testsupport as common;
mod plugin_common;

use std::path::{Path, PathBuf};

use common::*;
use dreamsim::{
    runtime, ComputePrecision, Error, ExecutionProvider, Model, ModelOptions, RequestedPrecision,
};
use gst::prelude::*;
use gstdreamsim::meta::DreamSimMeta;
use plugin_common::*;

/// A folder holding tiny_ensemble.onnx and, when `int8` names a fixture
/// folder under tests/fixtures/int8 ("" for the main one), its int8 model.
fn installed(int8: Option<&str>) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let fp32 = dir.path().join("tiny_ensemble.onnx");
    std::fs::copy(fixture("tiny_ensemble.onnx"), &fp32).unwrap();
    if let Some(variant) = int8 {
        let src = fixture("int8")
            .join(variant)
            .join("tiny_ensemble-int8.onnx");
        std::fs::copy(src, dir.path().join("tiny_ensemble-int8.onnx")).unwrap();
    }
    (dir, fp32)
}

fn options(provider: ExecutionProvider, precision: RequestedPrecision) -> ModelOptions {
    ModelOptions {
        provider,
        precision,
        threads: 1,
        ..ModelOptions::default()
    }
}

fn load(path: &Path, options: &ModelOptions) -> Result<Model, Error> {
    Model::load(runtime(None)?, path, options)
}

#[test]
fn auto_runs_the_int8_model_installed_beside_the_fp32_one() {
    let (_dir, fp32) = installed(Some(""));
    let model = load(
        &fp32,
        &options(ExecutionProvider::Auto, RequestedPrecision::Auto),
    )
    .unwrap();
    assert_eq!(model.provider(), ExecutionProvider::Cpu);
    assert_eq!(model.compute_precision(), ComputePrecision::Int8);
    assert_eq!(
        model.info().path,
        fp32.with_file_name("tiny_ensemble-int8.onnx")
    );
    assert_eq!(model.info().precision.as_deref(), Some("int8"));
    assert_eq!(model.info().kind, "fixture_ensemble");
    let int8 = model.int8().expect("the int8 model is described");
    assert!(int8.spearman.is_some(), "{int8:?}");
}

#[test]
fn without_an_int8_model_nothing_changes() {
    let (_dir, fp32) = installed(None);
    let model = load(
        &fp32,
        &options(ExecutionProvider::Auto, RequestedPrecision::Auto),
    )
    .unwrap();
    assert_eq!(model.compute_precision(), ComputePrecision::Fp32);
    assert_eq!(model.info().path, fp32);
    assert!(model.int8().is_none());
    assert!(model.warnings().is_empty(), "{:?}", model.warnings());
}

#[test]
fn full_precision_and_the_explicit_cpu_provider_keep_fp32() {
    let (_dir, fp32) = installed(Some(""));
    for opts in [
        options(ExecutionProvider::Auto, RequestedPrecision::Fp32),
        ModelOptions {
            full_precision: true,
            ..options(ExecutionProvider::Auto, RequestedPrecision::Auto)
        },
        // The CPU provider asked for by name is the reference's arithmetic.
        options(ExecutionProvider::Cpu, RequestedPrecision::Auto),
    ] {
        let model = load(&fp32, &opts).unwrap();
        assert_eq!(
            model.compute_precision(),
            ComputePrecision::Fp32,
            "{opts:?}"
        );
        assert_eq!(model.info().path, fp32, "{opts:?}");
    }
}

#[test]
fn int8_asked_for_by_name_runs_on_the_cpu_provider_too() {
    let (_dir, fp32) = installed(Some(""));
    let model = load(
        &fp32,
        &options(ExecutionProvider::Cpu, RequestedPrecision::Int8),
    )
    .unwrap();
    assert_eq!(model.compute_precision(), ComputePrecision::Int8);
    assert_eq!(model.provider(), ExecutionProvider::Cpu);
}

#[test]
fn int8_asked_for_without_an_int8_model_says_how_to_make_one() {
    let (_dir, fp32) = installed(None);
    let e = load(
        &fp32,
        &options(ExecutionProvider::Auto, RequestedPrecision::Int8),
    )
    .unwrap_err();
    assert!(matches!(e, Error::Int8ModelMissing { .. }), "{e:?}");
    let text = e.to_string();
    for needle in [
        "tiny_ensemble-int8.onnx",
        "no such file",
        "get_model.sh --int8",
    ] {
        assert!(text.contains(needle), "`{needle}` not in: {text}");
    }
}

#[test]
fn contradictory_requests_are_refused() {
    let (_dir, fp32) = installed(Some(""));
    let both = ModelOptions {
        full_precision: true,
        ..options(ExecutionProvider::Auto, RequestedPrecision::Int8)
    };
    assert!(matches!(load(&fp32, &both), Err(Error::InvalidSetting(_))));
    let gpu = options(ExecutionProvider::Cuda, RequestedPrecision::Int8);
    let e = load(&fp32, &gpu).unwrap_err();
    assert!(e.to_string().contains("cpu provider"), "{e}");
    // The int8 file itself, with fp32 asked for.
    let int8 = fp32.with_file_name("tiny_ensemble-int8.onnx");
    let e = load(
        &int8,
        &options(ExecutionProvider::Cpu, RequestedPrecision::Fp32),
    )
    .unwrap_err();
    assert!(e.to_string().contains("is an int8 model"), "{e}");
}

#[test]
fn an_int8_model_of_another_type_is_skipped_or_refused() {
    let (_dir, fp32) = installed(Some("wrong_type"));
    let model = load(
        &fp32,
        &options(ExecutionProvider::Auto, RequestedPrecision::Auto),
    )
    .unwrap();
    assert_eq!(model.compute_precision(), ComputePrecision::Fp32);
    assert!(
        model
            .warnings()
            .iter()
            .any(|w| w.contains("is not used") && w.contains("fixture_dino")),
        "{:?}",
        model.warnings()
    );
    let e = load(
        &fp32,
        &options(ExecutionProvider::Auto, RequestedPrecision::Int8),
    )
    .unwrap_err();
    assert!(e.to_string().contains("not fixture_ensemble"), "{e}");
}

/// Previous-frame distances of `frames` through the element with `extra`
/// properties, and its active-precision.
fn distances(model: &Path, extra: &str, frames: &[Vec<u8>]) -> (Vec<f64>, String) {
    init();
    let mut h = gst_check::Harness::new_parse(&format!(
        "dreamsim name=d model-location={} threads=1 {extra}",
        model.display()
    ));
    h.set_src_caps_str("video/x-raw,format=RGB,width=64,height=48,framerate=25/1");
    for (i, f) in frames.iter().enumerate() {
        let mut b = gst::Buffer::from_slice(f.clone());
        b.get_mut()
            .unwrap()
            .set_pts(gst::ClockTime::from_mseconds(40 * i as u64));
        h.push(b).unwrap();
    }
    h.push_event(gst::event::Eos::new());
    let mut out = Vec::new();
    for _ in frames {
        let b = h.pull().unwrap();
        let m = DreamSimMeta::from_buffer(&b).unwrap().unwrap();
        if let Some(d) = m.distance {
            out.push(d);
        }
    }
    let element = h.element().unwrap();
    let element = element
        .downcast_ref::<gst::Bin>()
        .and_then(|b| b.by_name("d"))
        .unwrap_or(element);
    let precision = element
        .property::<Option<String>>("active-precision")
        .unwrap_or_default();
    (out, precision)
}

#[test]
fn the_element_runs_int8_and_its_distances_follow_fp32() {
    let (_dir, fp32) = installed(Some(""));
    // Frames that step away from each other by different amounts.
    let frames: Vec<Vec<u8>> = (0..10)
        .map(|i| pattern_rgb(64, 48, (i * i) % 7, i, 2 * i))
        .collect();
    let (exact, p32) = distances(&fp32, "execution-provider=cpu", &frames);
    let (quantized, p8) = distances(&fp32, "precision=int8", &frames);
    assert_eq!(p32, "fp32");
    assert_eq!(p8, "int8");
    assert_eq!(exact.len(), frames.len() - 1);
    assert_eq!(quantized.len(), exact.len());
    let worst = exact
        .iter()
        .zip(&quantized)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    let largest = exact.iter().cloned().fold(0.0, f64::max);
    assert!(
        worst < 0.25 * largest && worst > 0.0,
        "int8 distances {quantized:?} against fp32 {exact:?}"
    );
}

/// Runs a short pipeline and returns its info and warning texts.
fn start_messages(launch: &str) -> (Vec<String>, Vec<String>, Option<String>) {
    init();
    let pipeline = gst::parse::launch(launch).unwrap();
    // A model that cannot load fails the state change; the error says why.
    let _ = pipeline.set_state(gst::State::Playing);
    let (mut infos, mut warnings) = (Vec::new(), Vec::new());
    let bus = pipeline.bus().unwrap();
    let end = gst_run::read_bus(&bus, gst::ClockTime::from_seconds(60), |msg| {
        match msg.view() {
            gst::MessageView::Info(i) => infos.push(format!("{:?}", i.debug())),
            gst::MessageView::Warning(w) => warnings.push(w.error().to_string()),
            _ => {}
        }
    });
    let error = match end {
        gst_run::BusEnd::Error(e) => Some(e),
        _ => None,
    };
    pipeline.set_state(gst::State::Null).unwrap();
    (infos, warnings, error)
}

#[test]
fn the_start_message_names_the_int8_model_and_its_agreement() {
    for (variant, warning) in [
        ("", "below the 0.999 guard of tools/quantize_int8.py"),
        ("below_guard", "accepted below the 0.999 guard"),
    ] {
        let (_dir, fp32) = installed(Some(variant));
        let (infos, warnings, error) = start_messages(&format!(
            "videotestsrc num-buffers=2 ! dreamsim model-location={} threads=1 ! fakesink",
            fp32.display()
        ));
        assert_eq!(error, None);
        assert!(
            infos
                .iter()
                .any(|i| i.contains("in int8 with the int8 model")
                    && i.contains("tiny_ensemble-int8.onnx")
                    && i.contains("Spearman")),
            "{infos:?}"
        );
        assert!(
            warnings.iter().any(|w| w.contains(warning)),
            "`{warning}` not in {warnings:?}"
        );
    }
}

#[test]
fn the_element_says_how_to_get_an_int8_model_when_asked_for_one() {
    let (_dir, fp32) = installed(None);
    let (_, _, error) = start_messages(&format!(
        "videotestsrc num-buffers=2 ! dreamsim model-location={} precision=int8 ! fakesink",
        fp32.display()
    ));
    let error = error.expect("an error");
    for needle in [
        "tiny_ensemble-int8.onnx",
        "get_model.sh --int8",
        "precision",
    ] {
        assert!(error.contains(needle), "`{needle}` not in: {error}");
    }
}
