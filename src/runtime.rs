//! Loading ONNX Runtime: one shared library and one environment per process.
//!
//! ONNX Runtime allows a single environment per process and `ort` keeps the
//! loaded library in a global, so every model (and every element instance)
//! shares the [`Runtime`] returned here.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use crate::error::{Error, Result};

/// The environment variable that names the ONNX Runtime library, as `ort` uses it.
pub const ORT_DYLIB_ENV: &str = "ORT_DYLIB_PATH";

/// The loaded ONNX Runtime.
#[derive(Debug)]
pub struct Runtime {
    pub(crate) environment: ort::environment::Environment,
    library: PathBuf,
    gpu_preload: crate::gpu_libs::Preload,
}

/// Which build of ONNX Runtime a library is, told by the provider libraries
/// installed beside it (each build ships its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeBuild {
    /// onnxruntime-gpu: CUDA (and TensorRT) providers.
    Gpu,
    /// onnxruntime-openvino: the OpenVINO provider.
    OpenVino,
    /// The plain CPU build.
    Cpu,
}

impl RuntimeBuild {
    /// The build of the library at `library`.
    pub fn of(library: &Path) -> Self {
        let beside = |name: &str| library.parent().is_some_and(|d| d.join(name).is_file());
        if beside("libonnxruntime_providers_cuda.so") {
            Self::Gpu
        } else if beside("libonnxruntime_providers_openvino.so") {
            Self::OpenVino
        } else {
            Self::Cpu
        }
    }

    /// The lower-case name, as `tools/get_onnxruntime.sh --build` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gpu => "gpu",
            Self::OpenVino => "openvino",
            Self::Cpu => "cpu",
        }
    }
}

impl Runtime {
    /// The library file that was loaded.
    pub fn library(&self) -> &Path {
        &self.library
    }

    /// ONNX Runtime's own build description (version, commit).
    pub fn build_info(&self) -> &'static str {
        ort::info()
    }

    /// ONNX Runtime's version (`1.31.1`): from the file the library's name
    /// resolves to (`libonnxruntime.so.1.31.1`), else from its build
    /// string's release branch (`rel-1.31.1`).
    pub fn version(&self) -> String {
        let from_file = std::fs::canonicalize(&self.library).ok().and_then(|real| {
            let name = real.file_name()?.to_str()?.to_owned();
            let v = name.strip_prefix("libonnxruntime.so.")?;
            (v.split('.').count() == 3).then(|| v.to_owned())
        });
        from_file
            .or_else(|| {
                ort::info()
                    .split(',')
                    .find_map(|part| part.trim().strip_prefix("git-branch=rel-"))
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| "unknown".into())
    }

    /// Which build the loaded library is.
    pub fn build(&self) -> RuntimeBuild {
        RuntimeBuild::of(&self.library)
    }

    /// The providers compiled into the loaded library
    /// (`CUDAExecutionProvider`, ...): what it could run, not what starts
    /// on this machine (that needs the provider's libraries and hardware).
    pub fn compiled_providers(&self) -> Vec<String> {
        let api = ort::api();
        let mut names: *mut *mut std::ffi::c_char = std::ptr::null_mut();
        let mut count: std::ffi::c_int = 0;
        // SAFETY: the C API fills `names` with `count` C strings, released below.
        unsafe {
            let status = (api.GetAvailableProviders)(&mut names, &mut count);
            if !status.0.is_null() {
                (api.ReleaseStatus)(status.0);
                return Vec::new();
            }
            if names.is_null() {
                return Vec::new();
            }
            let list = (0..count as isize)
                .map(|i| {
                    std::ffi::CStr::from_ptr(*names.offset(i))
                        .to_string_lossy()
                        .into_owned()
                })
                .collect();
            let status = (api.ReleaseAvailableProviders)(names, count);
            if !status.0.is_null() {
                (api.ReleaseStatus)(status.0);
            }
            list
        }
    }

    /// The NVIDIA libraries preloaded from the `nvidia/` folder beside the
    /// library (see [`crate::gpu_libs`]); empty for a CPU or OpenVINO build.
    pub fn gpu_preload(&self) -> &crate::gpu_libs::Preload {
        &self.gpu_preload
    }
}

/// Severity of a message of ONNX Runtime's own log, least severe first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RuntimeLogLevel {
    /// Everything ONNX Runtime says (graph partitioning, kernel choices).
    Verbose,
    /// Informational messages.
    Info,
    /// Warnings (for example a provider that could not be loaded).
    Warning,
    /// Errors.
    Error,
    /// Fatal errors.
    Fatal,
}

impl From<ort::logging::LogLevel> for RuntimeLogLevel {
    fn from(level: ort::logging::LogLevel) -> Self {
        use ort::logging::LogLevel as L;
        match level {
            L::Verbose => Self::Verbose,
            L::Info => Self::Info,
            L::Warning => Self::Warning,
            L::Error => Self::Error,
            L::Fatal => Self::Fatal,
        }
    }
}

impl From<RuntimeLogLevel> for ort::logging::LogLevel {
    fn from(level: RuntimeLogLevel) -> Self {
        match level {
            RuntimeLogLevel::Verbose => Self::Verbose,
            RuntimeLogLevel::Info => Self::Info,
            RuntimeLogLevel::Warning => Self::Warning,
            RuntimeLogLevel::Error => Self::Error,
            RuntimeLogLevel::Fatal => Self::Fatal,
        }
    }
}

/// Receives ONNX Runtime's own log: the severity, where in ONNX Runtime's
/// code the message comes from, and the message.
pub type RuntimeLogSink = Arc<dyn Fn(RuntimeLogLevel, &str, &str) + Send + Sync>;

static LOG_SINK: Mutex<Option<(RuntimeLogSink, RuntimeLogLevel)>> = Mutex::new(None);

/// Sends ONNX Runtime's own log (why a provider did not load, how the graph
/// was partitioned) to `sink`, from `min_level` up, instead of ort's
/// `tracing` output. It takes effect when the runtime is loaded, so call it
/// before the first [`runtime`] call; returns false if that already happened.
pub fn set_log_sink(sink: RuntimeLogSink, min_level: RuntimeLogLevel) -> bool {
    if RUNTIME.get().is_some() {
        return false;
    }
    *LOG_SINK.lock().unwrap_or_else(|e| e.into_inner()) = Some((sink, min_level));
    true
}

static RUNTIME: OnceLock<Runtime> = OnceLock::new();
// Serialises first-time loading; a failed attempt leaves RUNTIME empty so a
// later call (say, after the user fixed a property) can try again.
static LOADING: Mutex<()> = Mutex::new(());

/// The places searched when neither a path nor `ORT_DYLIB_PATH` is given, in order.
///
/// `$XDG_DATA_HOME/gst-dreamsim/onnxruntime/` is where `tools/get_onnxruntime.sh`
/// installs the library; the bare file names go through the dynamic linker's
/// own search (`LD_LIBRARY_PATH`, `ldconfig`).
pub fn default_library_locations() -> Vec<PathBuf> {
    let mut places = Vec::new();
    if let Some(data) = crate::paths::data_dir() {
        places.push(data.join("onnxruntime").join("libonnxruntime.so"));
    }
    for p in [
        "/usr/local/lib/libonnxruntime.so",
        "/usr/lib/x86_64-linux-gnu/libonnxruntime.so",
        "/usr/lib/aarch64-linux-gnu/libonnxruntime.so",
        "/usr/lib/libonnxruntime.so",
        "libonnxruntime.so.1",
        "libonnxruntime.so",
    ] {
        places.push(PathBuf::from(p));
    }
    places
}

/// Returns the process's ONNX Runtime, loading it on first use.
///
/// The library is looked for at `explicit` if given (and only there), else at
/// `$ORT_DYLIB_PATH` if set (and only there), else in
/// [`default_library_locations`]. Once a library is loaded it stays loaded:
/// later calls return it whatever path they name (see [`Runtime::library`]).
pub fn runtime(explicit: Option<&Path>) -> Result<&'static Runtime> {
    if let Some(rt) = RUNTIME.get() {
        return Ok(rt);
    }
    let _guard = LOADING.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(rt) = RUNTIME.get() {
        return Ok(rt);
    }

    let candidates: Vec<PathBuf> = match explicit {
        Some(p) => vec![p.to_path_buf()],
        None => match std::env::var_os(ORT_DYLIB_ENV) {
            Some(p) if !p.is_empty() => vec![PathBuf::from(p)],
            _ => default_library_locations(),
        },
    };

    let mut last_reason = String::from("no candidate");
    for candidate in &candidates {
        // Absolute paths that do not exist are skipped without asking the
        // dynamic linker, so the error lists real reasons only.
        if candidate.is_absolute() && !candidate.exists() {
            last_reason = format!("{} does not exist", candidate.display());
            continue;
        }
        // The GPU build's NVIDIA libraries, installed beside it, go first:
        // the providers find them loaded, with no LD_LIBRARY_PATH.
        let gpu_preload = match crate::gpu_libs::nvidia_dir(candidate) {
            Some(dir) if candidate.is_absolute() => crate::gpu_libs::preload(&dir),
            _ => crate::gpu_libs::Preload::default(),
        };
        match ort::init_from(candidate) {
            Ok(builder) => {
                let mut builder = builder.with_name("gst-dreamsim");
                let sink = LOG_SINK.lock().unwrap_or_else(|e| e.into_inner()).clone();
                if let Some((sink, _)) = &sink {
                    let sink = Arc::clone(sink);
                    builder = builder.with_logger(Arc::new(
                        move |level, _category, _id, location: &str, message: &str| {
                            sink(level.into(), location, message)
                        },
                    ));
                }
                let environment = builder
                    .build()
                    .map_err(|e| Error::RuntimeInit(e.to_string()))?;
                if let Some((_, min_level)) = sink {
                    // ONNX Runtime formats every message at or above this
                    // level, so the sink's threshold is applied at the source.
                    environment.set_log_level(min_level.into());
                }
                let rt = RUNTIME.get_or_init(|| Runtime {
                    environment,
                    library: candidate.clone(),
                    gpu_preload,
                });
                return Ok(rt);
            }
            Err(e) => last_reason = e.to_string(),
        }
    }
    Err(Error::RuntimeNotFound {
        reason: last_reason,
        tried: candidates
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
    })
}
