//! `gst-dreamsim doctor` on this machine: text and JSON, with ONNX Runtime
//! missing, with a model folder; and (ignored, it downloads 1.5 GB) the GPU
//! runtime that `tools/get_onnxruntime.sh --build gpu` installs: every
//! library of the CUDA and TensorRT providers resolves inside the data
//! folder except the driver's libcuda.so.1, and on a machine without the
//! driver the doctor, `execution-provider=cuda` and `auto` say so.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;

/// Runs `gst-dreamsim doctor ARGS` with `env` set (and `unset` removed).
fn doctor(args: &[&str], env: &[(&str, &Path)], unset: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_gst-dreamsim"));
    command.arg("doctor").args(args).current_dir(repo_root());
    for (k, v) in env {
        command.env(k, v);
    }
    for k in unset {
        command.env_remove(k);
    }
    let output = command.output().expect("run gst-dreamsim doctor");
    eprintln!(
        "gst-dreamsim doctor {}: {}\n{}\n{}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).expect("doctor --json writes JSON")
}

fn text(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Whether this machine has an NVIDIA driver (then the "missing driver"
/// assertions do not apply).
fn has_driver() -> bool {
    [
        "/usr/lib/x86_64-linux-gnu/libcuda.so.1",
        "/usr/lib64/libcuda.so.1",
    ]
    .iter()
    .any(|p| Path::new(p).exists())
        || Path::new("/proc/driver/nvidia").exists()
}

/// A model folder holding the tiny ensemble as `ensemble.onnx` (the default
/// model's name) and, with `int8`, its int8 model beside it.
fn model_folder(int8: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = repo_root().join("tests/fixtures");
    std::fs::copy(
        fixtures.join("tiny_ensemble.onnx"),
        dir.path().join("ensemble.onnx"),
    )
    .unwrap();
    if int8 {
        std::fs::copy(
            fixtures.join("int8/tiny_ensemble-int8.onnx"),
            dir.path().join("ensemble-int8.onnx"),
        )
        .unwrap();
    }
    dir
}

fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8(out.stdout).unwrap()[..64].to_owned()
}

#[test]
fn without_a_model_it_names_what_is_missing_and_exits_4() {
    let empty = tempfile::tempdir().unwrap();
    let env = [("GST_DREAMSIM_MODEL_DIR", empty.path())];
    let out = doctor(&[], &env, &[]);
    assert_eq!(out.status.code(), Some(4), "no model installed: exit 4");
    let t = text(&out);
    for part in [
        "GStreamer plugin",
        "ONNX Runtime",
        "Execution providers",
        "GPU",
        "CPU",
        "Models",
        "Engine cache",
        "Default pipeline",
    ] {
        assert!(t.contains(part), "section {part} missing:\n{t}");
    }
    assert!(t.contains("install: tools/get_model.sh"), "{t}");
    assert!(t.contains("cpu       starts"), "{t}");
    assert!(t.contains("auto picks: cpu"), "{t}");
    if !has_driver() {
        assert!(t.contains("driver: MISSING"), "{t}");
        assert!(t.contains("libcuda.so.1"), "{t}");
    }

    let out = doctor(&["--json"], &env, &[]);
    assert_eq!(out.status.code(), Some(4));
    let j = json(&out);
    assert_eq!(j["exit_status"], 4);
    assert!(j["onnxruntime"]["library"].is_string(), "{j}");
    let cpu = j["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["provider"] == "cpu")
        .expect("the cpu provider is tried");
    assert_eq!(cpu["starts"], true);
    assert_eq!(j["models"]["default_installed"], false);
    assert_eq!(j["default_pipeline"]["runs"], false);
    assert_eq!(j["default_pipeline"]["run"]["provider"], "cpu");
    assert!(j["cpu"]["logical_cpus"].as_u64().unwrap() >= 1);
    if !has_driver() {
        let error = j["gpu"]["driver"]["error"].as_str().unwrap();
        assert!(error.contains("libcuda.so.1"), "{error}");
        assert!(j["gpu"]["driver"]["install"]
            .as_str()
            .unwrap()
            .contains("580"));
        // A GPU provider does not start here, and says why.
        let cuda = j["providers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["provider"] == "cuda")
            .unwrap();
        assert_eq!(cuda["starts"], false);
        assert!(cuda["reason"].as_str().is_some_and(|r| !r.is_empty()));
        assert!(cuda["install"].is_string(), "{cuda}");
    }
}

#[test]
fn with_a_model_folder_it_lists_the_models_and_the_default_pipeline_runs() {
    let models = model_folder(true);
    let env = [("GST_DREAMSIM_MODEL_DIR", models.path())];
    let out = doctor(&["--json"], &env, &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "the default pipeline runs: exit 0"
    );
    let j = json(&out);
    assert_eq!(j["models"]["default_installed"], true);
    let listed = j["models"]["models"].as_array().unwrap();
    assert_eq!(
        listed.len(),
        1,
        "the int8 file is shown under its model: {j}"
    );
    let model = &listed[0];
    assert_eq!(
        model["sha256"].as_str().unwrap(),
        sha256(&models.path().join("ensemble.onnx"))
    );
    // dreamsim.type of the fixture.
    assert_eq!(model["kind"], "fixture_ensemble");
    let spearman = model["int8"]["spearman"]
        .as_f64()
        .expect("recorded agreement");
    assert!(spearman > 0.0 && spearman <= 1.0, "{spearman}");
    // The engine's own decision: auto on a CPU without bf16 units runs the
    // int8 model beside the default one.
    let run = &j["default_pipeline"]["run"];
    assert_eq!(j["default_pipeline"]["runs"], true);
    assert!(run["error"].is_null(), "{run}");
    assert_eq!(run["frames"], 2);
    // Where nothing faster starts (no GPU, no bf16 units or no OpenVINO
    // build), the fastest CPU path is that int8 model.
    let openvino_starts = j["providers"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["provider"] == "openvino" && p["starts"] == true);
    let bf16_path = openvino_starts && !j["cpu"]["bf16_matrix_units"].is_null();
    if !has_driver() && !bf16_path {
        assert_eq!(run["provider"], "cpu");
        assert_eq!(run["precision"], "int8");
    }

    let out = doctor(&["--bench", "--bench-seconds", "1"], &env, &[]);
    assert_eq!(out.status.code(), Some(0));
    let t = text(&out);
    assert!(t.contains("ensemble-int8.onnx"), "{t}");
    assert!(t.contains("agreement with fp32"), "{t}");
    assert!(t.contains("Bench"), "{t}");
    assert!(
        t.lines()
            .any(|l| l.trim_start().starts_with("cpu") && l.contains("frames/s")),
        "{t}"
    );
}

#[test]
fn without_onnx_runtime_it_names_the_missing_runtime_and_its_install_command() {
    let empty = tempfile::tempdir().unwrap();
    let models = model_folder(false);
    let missing = empty.path().join("libonnxruntime.so");
    let env = [
        ("ORT_DYLIB_PATH", missing.as_path()),
        ("XDG_DATA_HOME", empty.path()),
        ("GST_DREAMSIM_MODEL_DIR", models.path()),
    ];
    let out = doctor(&[], &env, &[]);
    assert_eq!(out.status.code(), Some(3), "no runtime: exit 3");
    let t = text(&out);
    assert!(
        t.contains("MISSING: ONNX Runtime could not be loaded"),
        "{t}"
    );
    assert!(t.contains(&missing.display().to_string()), "{t}");
    assert!(t.contains("install: tools/get_onnxruntime.sh"), "{t}");
    assert!(t.contains("runs: no"), "{t}");

    let out = doctor(&["--json"], &env, &[]);
    assert_eq!(out.status.code(), Some(3));
    let j = json(&out);
    assert!(j["onnxruntime"]["library"].is_null());
    assert_eq!(j["onnxruntime"]["install"], "tools/get_onnxruntime.sh");
    assert!(j["providers"].as_array().unwrap().is_empty());
}

#[test]
fn a_bench_time_out_of_range_is_a_usage_error() {
    let out = run(&["doctor", "--bench-seconds", "0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("1..=60"));
}

/// Libraries every Linux system has, which the GPU runtime links to and
/// does not ship: glibc's, the C++ runtime and zlib (cuDNN's).
const SYSTEM_LIBRARIES: &[&str] = &[
    "linux-vdso.so.1",
    "libc.so.6",
    "libm.so.6",
    "libdl.so.2",
    "librt.so.1",
    "libpthread.so.0",
    "libstdc++.so.6",
    "libgcc_s.so.1",
    "libz.so.1",
];

/// `ldd FILE` with the data folder's NVIDIA library folders on
/// LD_LIBRARY_PATH (only for this call: it stands in for the preload,
/// which makes the same files answer for their sonames): the libraries
/// that resolve (name, path) and those that do not.
fn ldd(file: &Path, nvidia: &Path) -> (Vec<(String, PathBuf)>, BTreeSet<String>) {
    let dirs: Vec<String> = ["cu13/lib", "cudnn/lib", "tensorrt_libs"]
        .iter()
        .map(|d| nvidia.join(d).display().to_string())
        .collect();
    let out = Command::new("ldd")
        .arg(file)
        .env("LD_LIBRARY_PATH", dirs.join(":"))
        .output()
        .expect("ldd");
    let mut resolved = Vec::new();
    let mut missing = BTreeSet::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let line = line.trim();
        let Some((name, rest)) = line.split_once(" => ") else {
            continue;
        };
        if rest.starts_with("not found") {
            missing.insert(name.to_owned());
        } else if let Some(path) = rest.split_whitespace().next() {
            resolved.push((name.to_owned(), PathBuf::from(path)));
        }
    }
    (resolved, missing)
}

/// Installs the GPU runtime into a scratch data folder (the wheels cached
/// in `$DREAMSIM_GPU_WHEELS` when set) and checks it; with
/// `DREAMSIM_TEST_TENSORRT=1` TensorRT's libraries too (they come from
/// NVIDIA's package index, which not every machine reaches).
#[test]
#[ignore = "downloads the GPU runtime from PyPI (1.5 GB); .ci/run runs it"]
fn the_gpu_runtime_needs_nothing_but_the_driver() {
    let data = tempfile::tempdir().unwrap();
    let dest = data.path().join("gst-dreamsim/onnxruntime");
    let tensorrt = std::env::var("DREAMSIM_TEST_TENSORRT").is_ok_and(|v| v == "1");
    let mut install = Command::new(repo_root().join("tools/get_onnxruntime.sh"));
    install.args(["--build", "gpu", "--dest"]).arg(&dest);
    if tensorrt {
        install.arg("--tensorrt");
    }
    if let Some(cache) = std::env::var_os("DREAMSIM_GPU_WHEELS") {
        install.arg("--wheel-cache").arg(cache);
    }
    let started = std::time::Instant::now();
    let status = install.status().expect("run tools/get_onnxruntime.sh");
    assert!(status.success(), "the GPU runtime install failed");
    eprintln!("installed in {:.0} s", started.elapsed().as_secs_f64());

    let nvidia = dest.join("nvidia");
    let inside = dest.canonicalize().unwrap();
    // TensorRT's own libraries, when they could not be installed here.
    let tensorrt_libs: BTreeSet<String> = ["libnvinfer.so.10", "libnvonnxparser.so.10"]
        .map(String::from)
        .into();
    for provider in [
        "libonnxruntime_providers_cuda.so",
        "libonnxruntime_providers_tensorrt.so",
    ] {
        let (resolved, missing) = ldd(&dest.join(provider), &nvidia);
        eprintln!("{provider}:");
        for (name, path) in &resolved {
            eprintln!("  {name} => {}", path.display());
        }
        eprintln!("  not found: {missing:?}");
        for (name, path) in &resolved {
            if SYSTEM_LIBRARIES.contains(&name.as_str()) || name.starts_with("ld-linux") {
                continue;
            }
            let real = path.canonicalize().unwrap();
            assert!(
                real.starts_with(&inside),
                "{provider}: {name} resolved outside the data folder, to {}",
                real.display()
            );
        }
        // The driver's library and, without --tensorrt, TensorRT's own may
        // be missing; nothing else.
        let mut allowed: BTreeSet<String> = ["libcuda.so.1".to_owned()].into();
        if provider.contains("tensorrt") && !tensorrt {
            allowed.extend(tensorrt_libs.iter().cloned());
            assert!(
                tensorrt_libs.is_subset(&missing),
                "{provider}: TensorRT was not installed, yet {missing:?}"
            );
        }
        assert!(
            missing.is_subset(&allowed),
            "{provider}: unresolved libraries {missing:?}, only {allowed:?} may be"
        );
        if provider.contains("cuda") {
            assert!(missing.contains("libcuda.so.1"), "{missing:?}");
        }
    }
    // What the CUDA provider loads by name at run time must be there too,
    // and every installed NVIDIA library (cuDNN's parts, which cuDNN opens
    // itself) resolves inside the folder but for the driver.
    for soname in ["libcudnn.so.9", "libcufft.so.12", "libnvrtc.so.13"] {
        assert!(
            dreamsim_lib_installed(&nvidia, soname),
            "{soname} is not installed"
        );
    }
    let mut checked = 0;
    for dir in ["cu13/lib", "cudnn/lib", "tensorrt_libs"] {
        for entry in std::fs::read_dir(nvidia.join(dir)).into_iter().flatten() {
            let path = entry.unwrap().path();
            let (resolved, missing) = ldd(&path, &nvidia);
            for (name, found) in &resolved {
                if SYSTEM_LIBRARIES.contains(&name.as_str()) {
                    continue;
                }
                assert!(
                    found.canonicalize().unwrap().starts_with(&inside),
                    "{}: {name} resolved outside the data folder",
                    path.display()
                );
            }
            assert!(
                missing.iter().all(|m| m == "libcuda.so.1"),
                "{}: unresolved {missing:?}",
                path.display()
            );
            checked += 1;
        }
    }
    eprintln!("{checked} NVIDIA libraries checked");
    assert!(checked >= 18, "only {checked} NVIDIA libraries installed");

    if has_driver() {
        return;
    }
    // No driver here: the doctor, an explicit cuda and auto all say so.
    let models = model_folder(false);
    let runtime = dest.join("libonnxruntime.so");
    let env = [
        ("ORT_DYLIB_PATH", runtime.as_path()),
        ("GST_DREAMSIM_MODEL_DIR", models.path()),
    ];
    let out = doctor(&["--json"], &env, &[]);
    assert_eq!(out.status.code(), Some(0), "auto falls back and runs");
    let j = json(&out);
    assert_eq!(j["onnxruntime"]["build"], "gpu");
    let preloaded: Vec<&str> = j["onnxruntime"]["preloaded"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    for soname in ["libcudart.so.13", "libcublas.so.13", "libcudnn.so.9"] {
        assert!(
            preloaded.contains(&soname),
            "{soname} not preloaded: {preloaded:?}"
        );
    }
    let cuda = j["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["provider"] == "cuda")
        .unwrap();
    assert_eq!(cuda["starts"], false);
    assert!(
        cuda["reason"].as_str().unwrap().contains("libcuda.so.1"),
        "execution-provider=cuda names the missing driver: {cuda}"
    );
    let run = &j["default_pipeline"]["run"];
    assert_eq!(run["provider"], "cpu", "auto falls back to the CPU: {run}");
    let warnings = run["warnings"].to_string();
    assert!(
        warnings.contains("libcuda.so.1"),
        "auto's warning names the missing driver: {warnings}"
    );
    let version_of = |soname: &str| {
        j["gpu"]["libraries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["soname"] == soname)
            .and_then(|l| l["version"].as_str().map(str::to_owned))
    };
    assert_eq!(version_of("libcudart.so.13").as_deref(), Some("13.0"));
    assert!(version_of("libcudnn.so.9").is_some_and(|v| v.starts_with("9.")));
}

fn dreamsim_lib_installed(nvidia: &Path, soname: &str) -> bool {
    ["cu13/lib", "cudnn/lib", "tensorrt_libs"]
        .iter()
        .any(|d| nvidia.join(d).join(soname).is_file())
}

#[test]
fn a_plugin_file_gstreamer_blacklists_is_reported_with_the_reason() {
    // A libgstdreamsim.so that is no shared library, in a registry of its own.
    let plugins = tempfile::tempdir().unwrap();
    std::fs::write(plugins.path().join("libgstdreamsim.so"), b"not a library").unwrap();
    let registry = plugins.path().join("registry.bin");
    let models = tempfile::tempdir().unwrap();
    let env = [
        ("GST_PLUGIN_PATH", plugins.path()),
        ("GST_REGISTRY_1_0", registry.as_path()),
        ("GST_DREAMSIM_MODEL_DIR", models.path()),
    ];
    let out = doctor(&["--json"], &env, &[]);
    let j = json(&out);
    assert_eq!(j["plugin"]["registry"], registry.display().to_string());
    let files = j["plugin"]["files"].as_array().unwrap();
    assert_eq!(files.len(), 1, "{j}");
    assert_eq!(files[0]["blacklisted"], true);
    let reason = files[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("file too short"),
        "the linker's reason: {reason}"
    );
    let out = doctor(&[], &env, &[]);
    assert!(text(&out).contains("BLACKLISTED"));
}
