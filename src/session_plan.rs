//! What a model's ONNX Runtime session is built with, decided before it is
//! built: the execution providers in priority order with the exact options
//! ONNX Runtime receives, the TensorRT optimisation profile, the engine
//! cache folder, and the arithmetic that will run.
//!
//! Every decision is a plain function of the options and of facts read from
//! the model file ([`ModelFacts`]), so it can be checked on a machine
//! without a GPU; [`Model::load`](crate::Model::load) builds its sessions
//! from these plans and nothing else.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use ort::ep::{ArbitrarilyConfigurableExecutionProvider, ExecutionProviderDispatch};
use sha2::{Digest, Sha256};

use crate::int8::RequestedPrecision;
use crate::model::{ModelOptions, DEFAULT_INPUT_SIZE, INPUT_NAME};
use crate::provider::{ComputePrecision, ExecutionProvider};

/// The environment variable NVIDIA's libraries read to stop TF32: with the
/// value `0`, TensorRT builds fp32 layers in true fp32 (TensorRT developer
/// guide, "TF32"). ONNX Runtime's TensorRT provider has no option for it.
pub const TF32_OVERRIDE_ENV: &str = "NVIDIA_TF32_OVERRIDE";

/// ONNX Runtime's names of the execution providers, as registered and as
/// its node placement reports them.
pub mod ort_names {
    /// TensorRT.
    pub const TENSORRT: &str = "TensorrtExecutionProvider";
    /// CUDA.
    pub const CUDA: &str = "CUDAExecutionProvider";
    /// OpenVINO.
    pub const OPENVINO: &str = "OpenVINOExecutionProvider";
    /// The CPU.
    pub const CPU: &str = "CPUExecutionProvider";
}

/// Whether TF32 is turned off process-wide by the user
/// (`NVIDIA_TF32_OVERRIDE=0` in the environment), as [`plan`] takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tf32Override {
    /// `NVIDIA_TF32_OVERRIDE` is `0`.
    pub disabled: bool,
}

impl Tf32Override {
    /// Reads [`TF32_OVERRIDE_ENV`] from this process's environment.
    pub fn from_env() -> Self {
        Self {
            disabled: std::env::var(TF32_OVERRIDE_ENV).is_ok_and(|v| v.trim() == "0"),
        }
    }
}

/// What is read from the model file before any session exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelFacts {
    /// Side of the square input (`dreamsim.input_size`, else 224).
    pub input_size: usize,
    /// The input's batch dimension when the graph fixes it.
    pub fixed_batch: Option<usize>,
    /// Names this model file as it is now (file name, size, modification
    /// time): part of the engine cache folder's name, so a replaced model
    /// never loads another model's engine.
    pub identity: String,
}

impl ModelFacts {
    /// Reads the facts of the model file at `path`; what cannot be read
    /// takes its default (a broken file fails later, at load, with the
    /// reason).
    pub fn read(path: &Path) -> Self {
        // Metadata and input each read on their own: a file whose graph
        // cannot be walked still gives what it can.
        let header = crate::onnx_file::ModelHeader {
            metadata: crate::onnx_file::metadata_props(path).unwrap_or_default(),
            inputs: vec![(
                INPUT_NAME.to_owned(),
                crate::onnx_file::input_fixed_batch(path, INPUT_NAME),
            )],
            references: Vec::new(),
        };
        Self::of_header(path, &header)
    }

    /// The facts of the model file at `path` from its header, read already
    /// ([`crate::onnx_file::ModelHeader`]): the same as [`read`](Self::read)
    /// gives, without reading the file again.
    pub fn of_header(path: &Path, header: &crate::onnx_file::ModelHeader) -> Self {
        Self {
            input_size: header
                .metadata_value(crate::model::metadata_keys::INPUT_SIZE)
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(DEFAULT_INPUT_SIZE),
            fixed_batch: header.input_fixed_batch(INPUT_NAME),
            identity: file_identity(path),
        }
    }
}

/// `<stem>-<12 hex digits>`: the file stem (made safe for a folder name)
/// and a digest of the canonical path, size and modification time.
fn file_identity(path: &Path) -> String {
    let stem: String = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into())
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    let mut hasher = Sha256::new();
    let canonical = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    hasher.update(canonical.to_string_lossy().as_bytes());
    if let Ok(meta) = std::fs::metadata(path) {
        hasher.update(meta.len().to_le_bytes());
        if let Ok(modified) = meta.modified() {
            if let Ok(since) = modified.duration_since(std::time::UNIX_EPOCH) {
                hasher.update(since.as_nanos().to_le_bytes());
            }
        }
    }
    let digest = hasher.finalize();
    let hex: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
    format!("{stem}-{hex}")
}

/// The batch sizes a TensorRT engine is built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BatchProfile {
    /// Smallest batch.
    pub min: usize,
    /// The batch TensorRT optimises for.
    pub opt: usize,
    /// Largest batch; the engine splits larger calls.
    pub max: usize,
}

impl BatchProfile {
    /// 1 to `max_batch` frames, optimised for `max_batch`; exactly the
    /// graph's batch when it is fixed (an engine for another batch cannot
    /// be built from such a graph).
    pub fn new(max_batch: usize, fixed_batch: Option<usize>) -> Self {
        match fixed_batch {
            Some(n) => Self {
                min: n,
                opt: n,
                max: n,
            },
            None => {
                let max = max_batch.max(1);
                Self {
                    min: 1,
                    opt: max,
                    max,
                }
            }
        }
    }

    /// A TensorRT shape string for `n` images of `input_size` pixels square.
    pub fn shape(n: usize, input_size: usize) -> String {
        format!("{INPUT_NAME}:{n}x3x{input_size}x{input_size}")
    }
}

impl fmt::Display for BatchProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "b{}-{}-{}", self.min, self.opt, self.max)
    }
}

/// One execution provider to register, with the options ONNX Runtime gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderConfig {
    /// ONNX Runtime's name for it (see [`ort_names`]).
    pub name: &'static str,
    /// The provider options, as ONNX Runtime receives them.
    pub options: Vec<(&'static str, String)>,
}

impl ProviderConfig {
    /// The value of option `key`, if set.
    pub fn option(&self, key: &str) -> Option<&str> {
        self.options
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The provider for a session builder; registering it fails loudly
    /// (ONNX Runtime would otherwise drop it silently).
    pub(crate) fn dispatch(&self) -> ExecutionProviderDispatch {
        fn apply<E: ArbitrarilyConfigurableExecutionProvider>(
            mut ep: E,
            options: &[(&'static str, String)],
        ) -> E {
            for (k, v) in options {
                ep = ep.with_arbitrary_config(*k, v);
            }
            ep
        }
        let ep = match self.name {
            ort_names::TENSORRT => apply(ort::ep::TensorRT::default(), &self.options).build(),
            ort_names::CUDA => apply(ort::ep::CUDA::default(), &self.options).build(),
            ort_names::OPENVINO => apply(ort::ep::OpenVINO::default(), &self.options).build(),
            _ => ort::ep::CPU::default().build(),
        };
        ep.error_on_failure()
    }
}

/// Everything a session for one provider is built with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionPlan {
    /// The provider the model is said to run on.
    pub provider: ExecutionProvider,
    /// The execution providers registered, highest priority first: for
    /// `tensorrt`, TensorRT then CUDA (nodes TensorRT rejects run on the
    /// GPU, not silently on the CPU).
    pub providers: Vec<ProviderConfig>,
    /// The arithmetic that runs.
    pub precision: ComputePrecision,
    /// The TensorRT optimisation profile (TensorRT only).
    pub profile: Option<BatchProfile>,
    /// The folder engines (TensorRT: one folder per profile, model and
    /// precision) or compiled models (OpenVINO) are cached in, to be
    /// created and checked with [`prepare_engine_cache`] before the
    /// session is built.
    pub engine_cache: Option<PathBuf>,
}

/// Why a plan cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// TensorRT cannot promise fp32 here.
    #[error(
        "full precision (fp32) cannot be had from the tensorrt provider: TensorRT computes fp32 \
         layers in TF32 on Ampere and newer GPUs and ONNX Runtime has no option to stop it; use \
         execution-provider=cuda (fp32, TF32 off) or auto, or start the process with \
         {TF32_OVERRIDE_ENV}=0 (docs/gpu.md)"
    )]
    TensorRtNotFp32,
}

/// What `provider` computes in under `options`.
///
/// TensorRT without fp16 builds its fp32 layers with TF32 (TensorRT's
/// default on Ampere and newer GPUs), reported as [`ComputePrecision::Tf32`],
/// unless `NVIDIA_TF32_OVERRIDE=0` ([`Tf32Override`]) turns it off.
pub fn compute_precision(
    provider: ExecutionProvider,
    options: &ModelOptions,
    tf32: Tf32Override,
) -> ComputePrecision {
    let wants_fp32 = options.full_precision || options.precision == RequestedPrecision::Fp32;
    match provider {
        ExecutionProvider::TensorRt if options.fp16 && !wants_fp32 => ComputePrecision::Fp16,
        ExecutionProvider::TensorRt if tf32.disabled => ComputePrecision::Fp32,
        ExecutionProvider::TensorRt => ComputePrecision::Tf32,
        _ if wants_fp32 => ComputePrecision::Fp32,
        ExecutionProvider::OpenVino if crate::cpu::bf16_matrix_units().is_some() => {
            ComputePrecision::Bf16
        }
        _ => ComputePrecision::Fp32,
    }
}

/// The providers [`Model::load`](crate::Model::load) tries for `options`,
/// in order: the one asked for, or for [`ExecutionProvider::Auto`]
/// TensorRT (with CUDA behind it, see [`plan`]), CUDA, OpenVINO where it
/// computes in bf16 (`bf16_units`) and reduced precision is allowed (in
/// fp32 it is no faster than the CPU provider and less exact), then the
/// CPU. Under full precision TensorRT is left out unless TF32 is turned
/// off ([`Tf32Override`]): its fp32 engines compute in TF32. The int8
/// model runs on the CPU only.
pub fn provider_attempts(
    options: &ModelOptions,
    bf16_units: bool,
    tf32: Tf32Override,
) -> Vec<ExecutionProvider> {
    let full_precision = options.full_precision || options.precision == RequestedPrecision::Fp32;
    match (options.provider, options.precision) {
        (_, RequestedPrecision::Int8) => vec![ExecutionProvider::Cpu],
        (ExecutionProvider::Auto, _) => {
            let mut attempts = Vec::new();
            if !full_precision || tf32.disabled {
                attempts.push(ExecutionProvider::TensorRt);
            }
            attempts.push(ExecutionProvider::Cuda);
            if bf16_units && !full_precision {
                attempts.push(ExecutionProvider::OpenVino);
            }
            attempts.push(ExecutionProvider::Cpu);
            attempts
        }
        (explicit, _) => vec![explicit],
    }
}

/// The session plan for `provider` (never [`ExecutionProvider::Auto`]: the
/// model plans each provider `auto` tries).
pub fn plan(
    provider: ExecutionProvider,
    options: &ModelOptions,
    facts: &ModelFacts,
    tf32: Tf32Override,
) -> Result<SessionPlan, PlanError> {
    let precision = compute_precision(provider, options, tf32);
    let wants_fp32 = options.full_precision || options.precision == RequestedPrecision::Fp32;
    if provider == ExecutionProvider::TensorRt && wants_fp32 && precision != ComputePrecision::Fp32
    {
        return Err(PlanError::TensorRtNotFp32);
    }
    let device = options.device_id.to_string();
    // TF32 off explicitly on the CUDA provider, whatever ONNX Runtime's
    // default: what it runs is reported as fp32.
    let cuda = ProviderConfig {
        name: ort_names::CUDA,
        options: vec![("device_id", device.clone()), ("use_tf32", "0".into())],
    };
    let mut plan = SessionPlan {
        provider,
        providers: Vec::new(),
        precision,
        profile: None,
        engine_cache: None,
    };
    match provider {
        ExecutionProvider::TensorRt => {
            let profile = BatchProfile::new(options.max_batch, facts.fixed_batch);
            let size = facts.input_size;
            let mut trt = vec![
                ("device_id", device),
                (
                    "trt_fp16_enable",
                    bool_option(precision == ComputePrecision::Fp16),
                ),
                (
                    "trt_profile_min_shapes",
                    BatchProfile::shape(profile.min, size),
                ),
                (
                    "trt_profile_opt_shapes",
                    BatchProfile::shape(profile.opt, size),
                ),
                (
                    "trt_profile_max_shapes",
                    BatchProfile::shape(profile.max, size),
                ),
            ];
            if let Some(root) = &options.engine_cache {
                let dir = tensorrt_cache_dir(root, facts, profile, precision, options.device_id);
                let dir_s = dir.display().to_string();
                trt.extend([
                    ("trt_engine_cache_enable", bool_option(true)),
                    ("trt_engine_cache_path", dir_s.clone()),
                    ("trt_timing_cache_enable", bool_option(true)),
                    ("trt_timing_cache_path", dir_s),
                ]);
                plan.engine_cache = Some(dir);
            }
            plan.providers = vec![
                ProviderConfig {
                    name: ort_names::TENSORRT,
                    options: trt,
                },
                cuda,
            ];
            plan.profile = Some(profile);
        }
        ExecutionProvider::Cuda => plan.providers = vec![cuda],
        ExecutionProvider::OpenVino => {
            // OpenVINO's own default on bf16 hardware is bf16, and its
            // `precision` option cannot say fp32 on the CPU: the inference
            // precision hint is set explicitly both ways.
            let hint = match precision {
                ComputePrecision::Bf16 => "bf16",
                _ => "f32",
            };
            let mut ov = vec![
                ("device_type", "CPU".to_string()),
                (
                    "load_config",
                    format!(r#"{{"CPU":{{"INFERENCE_PRECISION_HINT":"{hint}"}}}}"#),
                ),
            ];
            if options.threads > 0 {
                ov.push(("num_of_threads", options.threads.to_string()));
            }
            if let Some(root) = &options.engine_cache {
                ov.push(("cache_dir", root.display().to_string()));
                plan.engine_cache = Some(root.clone());
            }
            plan.providers = vec![ProviderConfig {
                name: ort_names::OPENVINO,
                options: ov,
            }];
        }
        ExecutionProvider::Cpu | ExecutionProvider::Auto => {
            plan.providers = vec![ProviderConfig {
                name: ort_names::CPU,
                options: Vec::new(),
            }];
        }
    }
    Ok(plan)
}

fn bool_option(on: bool) -> String {
    if on { "1" } else { "0" }.to_string()
}

/// The TensorRT engine cache folder under `root` for this model, profile,
/// precision and device.
///
/// ONNX Runtime names an engine file by the graph and fp16 only, and
/// rebuilds it (overwriting the file) when the saved profile differs: two
/// pipelines with different batch sizes sharing one folder would rebuild
/// each other's engine at every start. One folder per profile keeps them
/// apart; the same model, profile, precision and device always get the same
/// folder.
pub fn tensorrt_cache_dir(
    root: &Path,
    facts: &ModelFacts,
    profile: BatchProfile,
    precision: ComputePrecision,
    device_id: i32,
) -> PathBuf {
    root.join(format!(
        "{}-s{}-{profile}-{precision}-dev{device_id}",
        facts.identity, facts.input_size
    ))
}

/// Why an engine cache folder cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum EngineCacheError {
    /// The folder (or one of its parents) cannot be created.
    #[error(
        "engine cache folder {path} cannot be created ({source}); choose a writable folder for \
         engine-cache-location, or unset it (TensorRT then builds its engines at every start)"
    )]
    Create {
        /// The folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The folder exists but a file cannot be written in it.
    #[error(
        "engine cache folder {path} is not writable ({source}); ONNX Runtime would build the \
         engines again at every start without saying so: choose a writable folder for \
         engine-cache-location, or unset it"
    )]
    NotWritable {
        /// The folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Creates `dir` with all its parents (ONNX Runtime creates only the last
/// folder, and fails otherwise) and checks that a file can be written in it
/// by writing and removing a probe file (ONNX Runtime writes its cache
/// files without checking the writes).
pub fn prepare_engine_cache(dir: &Path) -> Result<(), EngineCacheError> {
    std::fs::create_dir_all(dir).map_err(|source| EngineCacheError::Create {
        path: dir.to_path_buf(),
        source,
    })?;
    let not_writable = |source| EngineCacheError::NotWritable {
        path: dir.to_path_buf(),
        source,
    };
    let mut probe = tempfile::Builder::new()
        .prefix(".gst-dreamsim-probe")
        .tempfile_in(dir)
        .map_err(not_writable)?;
    probe
        .write_all(b"probe")
        .and_then(|()| probe.flush())
        .map_err(not_writable)?;
    probe.close().map_err(not_writable)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ExecutionProvider::*;

    fn facts() -> ModelFacts {
        ModelFacts {
            input_size: 224,
            fixed_batch: None,
            identity: "m-000000000000".into(),
        }
    }

    #[test]
    fn full_precision_decides_what_tensorrt_may_do() {
        let options = |fp16, full_precision| ModelOptions {
            fp16,
            full_precision,
            ..ModelOptions::default()
        };
        let on = Tf32Override::default();
        let off = Tf32Override { disabled: true };
        assert_eq!(
            compute_precision(TensorRt, &options(true, false), on),
            ComputePrecision::Fp16
        );
        assert_eq!(
            compute_precision(TensorRt, &options(false, false), on),
            ComputePrecision::Tf32
        );
        assert_eq!(
            compute_precision(TensorRt, &options(false, false), off),
            ComputePrecision::Fp32
        );
        assert_eq!(
            plan(TensorRt, &options(true, true), &facts(), on),
            Err(PlanError::TensorRtNotFp32)
        );
        assert_eq!(
            plan(TensorRt, &options(true, true), &facts(), off)
                .unwrap()
                .precision,
            ComputePrecision::Fp32
        );
        for p in [Cpu, Cuda] {
            assert_eq!(
                compute_precision(p, &options(true, false), on),
                ComputePrecision::Fp32
            );
        }
    }

    #[test]
    fn auto_tries_openvino_only_on_bf16_hardware_without_full_precision() {
        let options = |full_precision| ModelOptions {
            full_precision,
            ..ModelOptions::default()
        };
        let (on, off) = (Tf32Override::default(), Tf32Override { disabled: true });
        assert_eq!(
            provider_attempts(&options(false), true, on),
            [TensorRt, Cuda, OpenVino, Cpu]
        );
        assert_eq!(
            provider_attempts(&options(false), false, on),
            [TensorRt, Cuda, Cpu]
        );
        // Full precision: no bf16, and no TensorRT unless TF32 is off.
        assert_eq!(provider_attempts(&options(true), true, on), [Cuda, Cpu]);
        assert_eq!(
            provider_attempts(&options(true), false, off),
            [TensorRt, Cuda, Cpu]
        );
        let int8 = ModelOptions {
            precision: RequestedPrecision::Int8,
            ..ModelOptions::default()
        };
        assert_eq!(provider_attempts(&int8, true, on), [Cpu]);
    }

    #[test]
    fn a_fixed_batch_fixes_the_profile() {
        assert_eq!(
            BatchProfile::new(8, Some(2)),
            BatchProfile {
                min: 2,
                opt: 2,
                max: 2
            }
        );
        assert_eq!(
            BatchProfile::new(0, None),
            BatchProfile {
                min: 1,
                opt: 1,
                max: 1
            }
        );
    }
}
