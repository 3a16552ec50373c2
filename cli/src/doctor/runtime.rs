//! The ONNX Runtime library the element finds, and the execution
//! providers that start on this machine.

use std::path::{Path, PathBuf};

use dreamsim::{ExecutionProvider, Model, ModelOptions, RequestedPrecision};
use serde::Serialize;

/// The command that installs the CPU runtime where the element looks.
pub const INSTALL_RUNTIME: &str = "tools/get_onnxruntime.sh";

/// The library found, or why none was.
#[derive(Debug, Serialize)]
pub struct RuntimeReport {
    /// The library loaded.
    pub library: Option<PathBuf>,
    /// Its version.
    pub version: Option<String>,
    /// Which build: cpu, openvino or gpu (from the provider libraries beside it).
    pub build: Option<&'static str>,
    /// ONNX Runtime's build string.
    pub build_info: Option<String>,
    /// Providers compiled into the library.
    pub compiled_providers: Vec<String>,
    /// NVIDIA libraries preloaded from the `nvidia/` folder beside it.
    pub preloaded: Vec<String>,
    /// NVIDIA libraries there that did not load, with the reason.
    pub preload_failures: Vec<String>,
    /// Why no library loaded, with the places tried.
    pub error: Option<String>,
    /// The command that installs one, when none loaded.
    pub install: Option<&'static str>,
}

/// Loads the runtime the way the element does by default (no
/// `onnxruntime-location`: `$ORT_DYLIB_PATH`, then the usual places).
pub fn inspect() -> (RuntimeReport, Option<&'static dreamsim::Runtime>) {
    match dreamsim::runtime(None) {
        Ok(rt) => {
            let preload = rt.gpu_preload();
            let report = RuntimeReport {
                library: Some(rt.library().to_path_buf()),
                version: Some(rt.version()),
                build: Some(rt.build().as_str()),
                build_info: Some(rt.build_info().to_owned()),
                compiled_providers: rt.compiled_providers(),
                preloaded: preload
                    .loaded
                    .iter()
                    .map(|(soname, _)| soname.to_string())
                    .collect(),
                preload_failures: preload
                    .failed
                    .iter()
                    .map(|(soname, why)| format!("{soname}: {why}"))
                    .collect(),
                error: None,
                install: None,
            };
            (report, Some(rt))
        }
        Err(e) => (
            RuntimeReport {
                library: None,
                version: None,
                build: None,
                build_info: None,
                compiled_providers: Vec::new(),
                preloaded: Vec::new(),
                preload_failures: Vec::new(),
                error: Some(e.to_string()),
                install: Some(INSTALL_RUNTIME),
            },
            None,
        ),
    }
}

/// Whether one provider starts here.
#[derive(Debug, Serialize)]
pub struct ProviderCheck {
    pub provider: &'static str,
    pub starts: bool,
    /// Why it does not, in the engine's words.
    pub reason: Option<String>,
    /// What to run to make it start, when the project can install it.
    pub install: Option<String>,
}

/// The providers tried, in the order `auto` prefers them.
pub const PROVIDERS: [ExecutionProvider; 4] = [
    ExecutionProvider::TensorRt,
    ExecutionProvider::Cuda,
    ExecutionProvider::OpenVino,
    ExecutionProvider::Cpu,
];

/// Starts each provider on `fixture` (a tiny model), with the failure an
/// error, as an explicit `execution-provider=` does.
pub fn probe_providers(rt: &dreamsim::Runtime, fixture: &Path) -> Vec<ProviderCheck> {
    PROVIDERS
        .iter()
        .map(|&provider| {
            let options = ModelOptions {
                provider,
                precision: RequestedPrecision::Fp32,
                ..ModelOptions::default()
            };
            match Model::load(rt, fixture, &options) {
                Ok(_) => ProviderCheck {
                    provider: provider.as_str(),
                    starts: true,
                    reason: None,
                    install: None,
                },
                Err(e) => ProviderCheck {
                    provider: provider.as_str(),
                    starts: false,
                    install: install_for(provider, rt),
                    reason: Some(e.to_string()),
                },
            }
        })
        .collect()
}

/// What makes `provider` start, as far as an install can: the GPU
/// runtime (with TensorRT's libraries for `tensorrt`) where it is not
/// installed, else the driver where that is missing.
fn install_for(provider: ExecutionProvider, rt: &dreamsim::Runtime) -> Option<String> {
    use dreamsim::gpu_libs::{self, INSTALL_COMMAND, INSTALL_TENSORRT_COMMAND};
    let gpu_build = rt.build() == dreamsim::RuntimeBuild::Gpu;
    let driver = || {
        gpu_libs::driver().error.map(|_| {
            format!(
                "the NVIDIA driver ({}, {} or newer)",
                gpu_libs::DRIVER_LIBRARY,
                gpu_libs::MINIMUM_DRIVER
            )
        })
    };
    let tensorrt_found = || {
        let nvidia = gpu_libs::nvidia_dir(rt.library());
        gpu_libs::GPU_LIBRARIES
            .iter()
            .filter(|l| l.needed_by == gpu_libs::NeededBy::TensorRt)
            .all(|l| gpu_libs::find(l, nvidia.as_deref()).found())
    };
    match provider {
        ExecutionProvider::TensorRt if !gpu_build || !tensorrt_found() => {
            Some(INSTALL_TENSORRT_COMMAND.into())
        }
        ExecutionProvider::Cuda if !gpu_build => Some(INSTALL_COMMAND.into()),
        ExecutionProvider::TensorRt | ExecutionProvider::Cuda => driver(),
        ExecutionProvider::OpenVino => Some("tools/get_onnxruntime.sh --build openvino".into()),
        _ => None,
    }
}
