//! The fast CPU path: the `openvino` provider and what `auto` and
//! `full-precision` choose, with the onnxruntime-openvino build of ONNX
//! Runtime loaded (one runtime per process, hence a test binary of its own).
//!
//! The library is taken from `$DREAMSIM_OPENVINO_ORT`, else
//! `.cache/onnxruntime-openvino/` (`tools/get_onnxruntime.sh --build openvino
//! --dest .cache/onnxruntime-openvino`, which `.ci/run` does). The tests are
//! `#[ignore]`d by default, so that a machine without that build shows them
//! as ignored rather than passed; `.ci/run` installs it and runs them with
//! `cargo test --test openvino -- --ignored`, where a missing library fails.

use dreamsim_testsupport as common;
mod plugin_common;

use std::path::PathBuf;

use common::*;
use dreamsim::{runtime, ComputePrecision, Engine, ExecutionProvider, Frame, Model, ModelOptions};
use gst::prelude::*;
use gstdreamsim::DreamSimMessage;
use plugin_common::*;

fn openvino_runtime() -> PathBuf {
    let path = std::env::var_os("DREAMSIM_OPENVINO_ORT")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".cache/onnxruntime-openvino/libonnxruntime.so"));
    assert!(
        path.exists(),
        "{} is missing: run tools/get_onnxruntime.sh --build openvino --dest .cache/onnxruntime-openvino",
        path.display()
    );
    path
}

/// What the processor's bf16 units make of the openvino provider.
fn expected_openvino_precision(full_precision: bool) -> ComputePrecision {
    if !full_precision && dreamsim::cpu::bf16_matrix_units().is_some() {
        ComputePrecision::Bf16
    } else {
        ComputePrecision::Fp32
    }
}

fn load(path: &std::path::Path, provider: ExecutionProvider, full_precision: bool) -> Model {
    let options = ModelOptions {
        provider,
        threads: 1,
        full_precision,
        ..ModelOptions::default()
    };
    Model::load(
        runtime(Some(path)).unwrap(),
        &fixture("tiny_dino.onnx"),
        &options,
    )
    .unwrap()
}

#[test]
#[ignore = "needs the onnxruntime-openvino build in .cache/onnxruntime-openvino; .ci/run runs it"]
fn openvino_in_full_precision_agrees_with_the_cpu_provider() {
    let ort = openvino_runtime();
    let ov = load(&ort, ExecutionProvider::OpenVino, true);
    assert_eq!(ov.provider(), ExecutionProvider::OpenVino);
    assert_eq!(ov.compute_precision(), ComputePrecision::Fp32);
    let cpu = load(&ort, ExecutionProvider::Cpu, true);

    let (mut ov, mut cpu) = (Engine::new(ov), Engine::new(cpu));
    let mut worst = 0f32;
    for seed in 0..4 {
        let rgb = pattern_rgb(96, 72, seed, 0, 0);
        let frame = Frame::rgb(&rgb, 96, 72, 96 * 3).unwrap();
        let a = ov.embed_frame(&frame).unwrap();
        let b = cpu.embed_frame(&frame).unwrap();
        worst = worst.max(max_abs_diff(a.as_slice(), b.as_slice()));
    }
    eprintln!("openvino fp32 vs cpu fp32: embeddings within {worst:.2e}");
    assert!(worst < 1e-4, "embeddings differ by {worst}");
}

#[test]
#[ignore = "needs the onnxruntime-openvino build in .cache/onnxruntime-openvino; .ci/run runs it"]
fn openvino_uses_bf16_only_on_bf16_hardware_and_never_in_full_precision() {
    let ort = openvino_runtime();
    for full in [false, true] {
        let model = load(&ort, ExecutionProvider::OpenVino, full);
        assert_eq!(
            model.compute_precision(),
            expected_openvino_precision(full),
            "full-precision={full}, bf16 units {:?}",
            dreamsim::cpu::bf16_matrix_units()
        );
    }
}

#[test]
#[ignore = "needs the onnxruntime-openvino build in .cache/onnxruntime-openvino; .ci/run runs it"]
fn auto_takes_openvino_only_where_it_pays() {
    let ort = openvino_runtime();
    let fast = load(&ort, ExecutionProvider::Auto, false);
    let full = load(&ort, ExecutionProvider::Auto, true);
    // This build has no GPU providers: auto ends on the CPU side.
    assert_eq!(full.provider(), ExecutionProvider::Cpu, "full precision");
    assert_eq!(full.compute_precision(), ComputePrecision::Fp32);
    match dreamsim::cpu::bf16_matrix_units() {
        Some(_) => {
            assert_eq!(fast.provider(), ExecutionProvider::OpenVino);
            assert_eq!(fast.compute_precision(), ComputePrecision::Bf16);
        }
        None => {
            assert_eq!(fast.provider(), ExecutionProvider::Cpu);
            assert!(
                fast.fallbacks().iter().all(|f| !f.starts_with("openvino")),
                "without bf16 units openvino is not even tried: {:?}",
                fast.fallbacks()
            );
        }
    }
}

/// Runs `videotestsrc num-buffers=N ! dreamsim ... ! fakesink` and returns
/// (active-provider, active-precision, the info texts, dreamsim messages).
fn run_element(ort: &std::path::Path, props: &str) -> (String, String, Vec<String>, usize) {
    init();
    let pipeline = gst::parse::launch(&format!(
        "videotestsrc num-buffers=12 pattern=ball ! video/x-raw,width=160,height=120 ! \
         dreamsim name=d model-location={} onnxruntime-location={} threads=1 batch-size=4 {props} ! \
         fakesink sync=false",
        fixture("tiny_ensemble.onnx").display(),
        ort.display()
    ))
    .unwrap();
    let d = pipeline
        .downcast_ref::<gst::Bin>()
        .unwrap()
        .by_name("d")
        .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let (mut infos, mut messages) = (Vec::new(), 0);
    let mut provider = None;
    let bus = pipeline.bus().unwrap();
    gst_run::read_bus_ok(&bus, gst::ClockTime::from_seconds(60), "openvino", |msg| {
        if DreamSimMessage::from_message(msg)
            .transpose()
            .unwrap()
            .is_some()
        {
            messages += 1;
            return;
        }
        if let gst::MessageView::Info(i) = msg.view() {
            infos.push(format!("{:?}", i.debug()));
        }
        if provider.is_none() {
            provider = d.property::<Option<String>>("active-provider");
        }
    });
    let provider = d.property::<Option<String>>("active-provider").or(provider);
    let precision = d.property::<Option<String>>("active-precision");
    pipeline.set_state(gst::State::Null).unwrap();
    (
        provider.expect("active-provider while playing"),
        precision.expect("active-precision while playing"),
        infos,
        messages,
    )
}

#[test]
#[ignore = "needs the onnxruntime-openvino build in .cache/onnxruntime-openvino; .ci/run runs it"]
fn the_element_says_which_provider_and_precision_run() {
    let ort = openvino_runtime();
    let (provider, precision, infos, messages) = run_element(&ort, "execution-provider=openvino");
    assert_eq!(provider, "openvino");
    assert_eq!(precision, expected_openvino_precision(false).as_str());
    assert_eq!(messages, 12, "one message per frame, none lost");
    let said = format!("in {precision}");
    assert!(
        infos
            .iter()
            .any(|i| i.contains("openvino execution provider") && i.contains(&said)),
        "an info message at start names provider and precision: {infos:?}"
    );

    let (provider, precision, _, messages) =
        run_element(&ort, "execution-provider=openvino full-precision=true");
    assert_eq!(
        (provider.as_str(), precision.as_str()),
        ("openvino", "fp32")
    );
    assert_eq!(messages, 12);
}

/// Issue #14: a model whose external data leaves its folder is refused on
/// this runtime build too (the check runs before ONNX Runtime opens the
/// file), and a model with its external data beside it still loads.
#[test]
#[ignore = "needs the onnxruntime-openvino build in .cache/onnxruntime-openvino; .ci/run runs it"]
fn external_data_outside_the_model_folder_is_refused_with_this_runtime() {
    let ort = openvino_runtime();
    let rt = runtime(Some(&ort)).unwrap();
    let dir = std::env::temp_dir().join(format!("dreamsim-ov-escape-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let escape = dir.join("escape.onnx");
    std::fs::copy(fixture("external_escape.onnx"), &escape).unwrap();
    for provider in [ExecutionProvider::Cpu, ExecutionProvider::OpenVino] {
        let options = ModelOptions {
            provider,
            threads: 1,
            ..ModelOptions::default()
        };
        for model in [escape.clone(), fixture("external_absolute.onnx")] {
            match Model::load(rt, &model, &options) {
                Err(dreamsim::Error::ModelExternalData { location, .. }) => {
                    assert!(location.ends_with("etc/hostname"), "{location}")
                }
                other => panic!("{}: {other:?}", model.display()),
            }
        }
        let good = Model::load(rt, &fixture("external_data/good_external.onnx"), &options)
            .expect("external data inside the folder loads");
        assert_eq!(good.provider(), provider);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
