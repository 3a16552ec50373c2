//! A DreamSim ONNX model: loading, the contract check, and inference.

use std::path::{Path, PathBuf};

use ndarray::ArrayView4;
use ort::session::Session;
use ort::value::{TensorElementType, TensorRef, ValueType};

use crate::embedding::Embedding;
use crate::error::{Error, Result};
use crate::int8::{Int8Model, RequestedPrecision};
use crate::node_placement::NodePlacement;
use crate::onnx_file::ModelHeader;
use crate::provider::{ComputePrecision, ExecutionProvider};
use crate::runtime::Runtime;
use crate::session_plan::{self, ModelFacts, SessionPlan, Tf32Override, TF32_OVERRIDE_ENV};

/// Name of the model's input tensor.
pub const INPUT_NAME: &str = "image";
/// Name of the model's output tensor.
pub const OUTPUT_NAME: &str = "embedding";
/// The input size every released DreamSim type uses.
pub const DEFAULT_INPUT_SIZE: usize = 224;

/// `metadata_props` keys written by the export tool.
pub mod metadata_keys {
    /// The DreamSim type, e.g. `ensemble` or `dino_vitb16`.
    pub const TYPE: &str = "dreamsim.type";
    /// Side of the square input in pixels.
    pub const INPUT_SIZE: &str = "dreamsim.input_size";
    /// Width D of the embedding.
    pub const EMBEDDING_DIM: &str = "dreamsim.embedding_dim";
    /// Version of the reference package the model reproduces.
    pub const REFERENCE_VERSION: &str = "dreamsim.reference_version";
    /// `fp32`, `fp16` or `int8`.
    pub const PRECISION: &str = "dreamsim.precision";
}

/// How to run a model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelOptions {
    /// Which execution provider to use.
    pub provider: ExecutionProvider,
    /// CPU threads for ONNX Runtime's intra-op pool; 0 lets ONNX Runtime
    /// choose. More than the logical CPUs is brought down to them, with a
    /// [`Model::warnings`] entry that says so.
    pub threads: usize,
    /// CUDA device for the GPU providers.
    pub device_id: i32,
    /// Let TensorRT build fp16 engines (unless `full_precision`).
    pub fp16: bool,
    /// Compute in fp32 on every provider: no bf16 on OpenVINO, no fp16
    /// engines on TensorRT, no int8 model, and `Auto` never picks OpenVINO.
    /// TensorRT computes its fp32 engines in TF32, so under full precision
    /// `Auto` skips it and an explicit `TensorRt` is an error, unless the
    /// process runs with `NVIDIA_TF32_OVERRIDE=0`
    /// ([`crate::session_plan::Tf32Override`]).
    /// The same as `precision: RequestedPrecision::Fp32`.
    pub full_precision: bool,
    /// Which arithmetic to run in; [`RequestedPrecision::Auto`] lets the
    /// provider and the processor decide (see [`crate::int8`] for when the
    /// int8 model beside the fp32 one runs).
    pub precision: RequestedPrecision,
    /// Where TensorRT keeps engine and timing caches (in one subfolder per
    /// model, batch profile, precision and device:
    /// [`crate::session_plan::tensorrt_cache_dir`]) and OpenVINO its
    /// compiled models; created with its parents at load, and an error
    /// when it cannot be created or written. `None` disables them.
    pub engine_cache: Option<PathBuf>,
    /// Largest batch one model run takes, on every provider (the
    /// [`Engine`](crate::Engine) splits larger calls), and the largest of
    /// the TensorRT optimisation profile; at most
    /// [`MAX_BATCH_SIZE`](crate::limits::MAX_BATCH_SIZE). A model whose
    /// graph fixes the batch takes exactly that batch instead.
    pub max_batch: usize,
}

impl Default for ModelOptions {
    fn default() -> Self {
        Self {
            provider: ExecutionProvider::Auto,
            threads: 0,
            device_id: 0,
            fp16: false,
            full_precision: false,
            precision: RequestedPrecision::Auto,
            engine_cache: None,
            max_batch: 8,
        }
    }
}

impl ModelOptions {
    /// Whether reduced precision of any kind is ruled out.
    fn wants_fp32(&self) -> bool {
        self.full_precision || self.precision == RequestedPrecision::Fp32
    }
}

/// What the model says about itself, checked against its graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelInfo {
    /// The file it was loaded from.
    pub path: PathBuf,
    /// The DreamSim type (`dreamsim.type`), or the file stem when absent.
    pub kind: String,
    /// Side of the square input in pixels.
    pub input_size: usize,
    /// Width of the embedding.
    pub embedding_dim: usize,
    /// `dreamsim.precision`, when given.
    pub precision: Option<String>,
    /// `dreamsim.reference_version`, when given.
    pub reference_version: Option<String>,
    /// Fixed batch size of the graph, when it is not dynamic.
    pub fixed_batch: Option<usize>,
}

/// A loaded model, ready to embed batches of preprocessed images.
#[derive(Debug)]
pub struct Model {
    session: Session,
    info: ModelInfo,
    provider: ExecutionProvider,
    precision: ComputePrecision,
    int8: Option<Int8Model>,
    device_id: i32,
    threads: usize,
    max_batch: usize,
    plan: SessionPlan,
    placement: Option<NodePlacement>,
    fallbacks: Vec<String>,
    warnings: Vec<String>,
}

/// The int8 model that runs on the CPU in place of `path`, if any.
///
/// Asked for explicitly ([`RequestedPrecision::Int8`]) it must exist and
/// be one; under `Auto` it is picked up when it is installed beside the
/// fp32 model, the provider is `Auto` and reduced precision is allowed,
/// and a file there that is not a usable int8 model is skipped with a
/// warning. A model given as int8 itself runs as int8 wherever it runs.
fn choose_int8(
    path: &Path,
    header: &ModelHeader,
    options: &ModelOptions,
    warnings: &mut Vec<String>,
) -> Result<Option<Int8Model>> {
    let given_is_int8 = crate::int8::is_int8(&header.metadata);
    let kind = header.metadata_value(metadata_keys::TYPE);
    let describe_given = || crate::int8::describe_metadata(path, &header.metadata, None);
    if given_is_int8 && options.wants_fp32() {
        return Err(Error::InvalidSetting(format!(
            "{} is an int8 model, and full precision (fp32) is asked for: give the fp32 model \
             instead, or drop full precision",
            path.display()
        )));
    }
    let missing = |reason: String| Error::Int8ModelMissing {
        fp32: path.to_path_buf(),
        expected: crate::int8::sibling_path(path),
        reason,
    };
    match options.precision {
        RequestedPrecision::Int8 => {
            if options.full_precision {
                return Err(Error::InvalidSetting(
                    "int8 precision and full precision both asked for: choose one".into(),
                ));
            }
            if !matches!(
                options.provider,
                ExecutionProvider::Auto | ExecutionProvider::Cpu
            ) {
                return Err(Error::InvalidSetting(format!(
                    "int8 precision runs on the cpu provider, not {}: use the cpu or auto \
                     provider, or precision auto",
                    options.provider
                )));
            }
            if given_is_int8 {
                return describe_given().map(Some).map_err(missing);
            }
            match crate::int8::find_sibling_of_kind(path, kind) {
                Ok(Some(m)) => Ok(Some(m)),
                Ok(None) => Err(missing("there is no such file".into())),
                Err(why) => Err(missing(why)),
            }
        }
        _ if given_is_int8 => Ok(describe_given().ok()),
        RequestedPrecision::Auto
            if options.provider == ExecutionProvider::Auto && !options.wants_fp32() =>
        {
            match crate::int8::find_sibling_of_kind(path, kind) {
                Ok(found) => Ok(found),
                Err(why) => {
                    warnings.push(why);
                    Ok(None)
                }
            }
        }
        _ => Ok(None),
    }
}

impl Model {
    /// Loads the model at `path` on `runtime` and checks it against the
    /// DreamSim ONNX contract.
    ///
    /// With [`ExecutionProvider::Auto`] the GPU providers are tried first and
    /// the reasons they were skipped are kept in [`Model::fallbacks`]; an
    /// explicitly requested provider that cannot start is an error.
    pub fn load(runtime: &Runtime, path: &Path, options: &ModelOptions) -> Result<Self> {
        let not_found = |source| Error::ModelNotFound {
            path: path.to_path_buf(),
            source,
        };
        std::fs::File::open(path).map_err(not_found)?;
        if path.is_dir() {
            return Err(not_found(std::io::Error::new(
                std::io::ErrorKind::IsADirectory,
                "it is a directory, not an .onnx file",
            )));
        }
        // Before ONNX Runtime opens it: the files it refers to must be in
        // its folder. The one read of the file's header: the int8 choice
        // and the session plan below take their facts from it.
        let header = crate::external_data::read_checked(path)?;

        let mut warnings = Vec::new();
        let mut options = options.clone();
        match crate::limits::clamp_threads(options.threads, crate::limits::logical_cpus()) {
            Ok(_) => {}
            Err(clamped) => {
                warnings.push(clamped.to_string());
                options.threads = clamped.used;
            }
        }
        if let Err(clamped) = crate::limits::clamp_batch_size(options.max_batch) {
            warnings.push(clamped.to_string());
            options.max_batch = clamped.used;
        }
        let options = &options;

        let int8 = choose_int8(path, &header, options, &mut warnings)?;
        let tf32 = Tf32Override::from_env();
        let attempts = session_plan::provider_attempts(
            options,
            crate::cpu::bf16_matrix_units().is_some(),
            tf32,
        );

        let mut fallbacks = Vec::new();
        if options.provider == ExecutionProvider::Auto
            && !attempts.contains(&ExecutionProvider::TensorRt)
            && options.precision != RequestedPrecision::Int8
        {
            fallbacks.push(format!(
                "tensorrt not tried: full precision, and TensorRT computes fp32 in TF32 unless \
                 {TF32_OVERRIDE_ENV}=0 is set"
            ));
        }
        for (i, &provider) in attempts.iter().enumerate() {
            let last = i + 1 == attempts.len();
            // The int8 model stands in for the fp32 one only on the CPU:
            // a GPU or bf16 units, when they start, are faster.
            let file = match &int8 {
                Some(m) if provider == ExecutionProvider::Cpu => m.path.as_path(),
                _ => path,
            };
            // TensorRT's optimisation profile is fixed when its session is
            // built, before the session can tell the declared input size
            // or a fixed batch: both are read from the file. A wrong value
            // fails the contract check below, on every provider alike.
            let facts = if file == path {
                ModelFacts::of_header(path, &header)
            } else {
                ModelFacts::read(file)
            };
            let plan = session_plan::plan(provider, options, &facts, tf32)
                .map_err(|e| Error::InvalidSetting(e.to_string()))?;
            // A cache folder that cannot be used is the user's setting to
            // fix, not a provider to skip: an error on every provider.
            if let Some(dir) = &plan.engine_cache {
                session_plan::prepare_engine_cache(dir)
                    .map_err(|e| Error::InvalidSetting(e.to_string()))?;
            }
            match Self::open_session(runtime, file, options, &plan) {
                Ok(session) => {
                    let info = check_contract(&session, file)?;
                    let runs_int8 = int8.as_ref().is_some_and(|m| m.path == file);
                    let int8 = int8.filter(|_| runs_int8);
                    let precision = if int8.is_some() {
                        ComputePrecision::Int8
                    } else {
                        plan.precision
                    };
                    let placement = NodePlacement::of(&session);
                    // One run takes at most the profile's largest batch
                    // (TensorRT) or the options' (every provider alike),
                    // and exactly the graph's batch when that is fixed.
                    let max_batch = info.fixed_batch.unwrap_or(options.max_batch.max(1));
                    return Ok(Self {
                        session,
                        info,
                        provider,
                        precision,
                        int8,
                        device_id: options.device_id,
                        threads: options.threads,
                        max_batch,
                        plan,
                        placement,
                        fallbacks,
                        warnings,
                    });
                }
                Err(SessionError::Provider(message)) if !last => {
                    fallbacks.push(format!(
                        "{provider} unavailable: {} ({})",
                        message.trim_end_matches(['.', ' ']),
                        provider_needs(provider)
                    ));
                }
                Err(SessionError::Provider(message)) => {
                    return Err(Error::ProviderUnavailable {
                        provider: provider.as_str(),
                        message: provider_hint(provider, &message),
                    })
                }
                Err(SessionError::Model(message)) => {
                    return Err(Error::ModelLoad {
                        path: path.to_path_buf(),
                        message,
                    })
                }
            }
        }
        unreachable!("the last attempt always returns")
    }

    fn open_session(
        runtime: &Runtime,
        path: &Path,
        options: &ModelOptions,
        plan: &SessionPlan,
    ) -> std::result::Result<Session, SessionError> {
        let provider = plan.provider;
        let model_err = |e: &dyn std::fmt::Display| SessionError::Model(e.to_string());
        let dispatch: Vec<_> = plan.providers.iter().map(|p| p.dispatch()).collect();
        let mut builder = Session::builder(&runtime.environment)
            .map_err(|e| model_err(&e))?
            .with_intra_threads(options.threads)
            .map_err(|e| model_err(&e))?
            .with_inter_threads(1)
            .map_err(|e| model_err(&e))?
            // Which provider took which nodes, read back after the build
            // (NodePlacement); ONNX Runtime records it only when asked.
            .with_config_entry(crate::node_placement::RECORD_CONFIG_KEY, "1")
            .map_err(|e| model_err(&e))?
            .with_execution_providers(dispatch)
            .map_err(|e| SessionError::Provider(e.to_string()))?;
        builder.commit_from_file(path).map_err(|e| {
            // A GPU provider that registered but cannot build the graph
            // (missing cuDNN or TensorRT libraries) shows up only here.
            if provider == ExecutionProvider::Cpu {
                model_err(&e)
            } else {
                SessionError::Provider(e.to_string())
            }
        })
    }

    /// What the model declares, as checked at load.
    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// The execution provider the model runs on.
    pub fn provider(&self) -> ExecutionProvider {
        self.provider
    }

    /// The arithmetic the model computes in on that provider.
    pub fn compute_precision(&self) -> ComputePrecision {
        self.precision
    }

    /// The int8 model that runs in place of the fp32 one, with the
    /// agreement it was made with; `None` when the model runs as given.
    pub fn int8(&self) -> Option<&Int8Model> {
        self.int8.as_ref()
    }

    /// Why each faster provider was skipped under [`ExecutionProvider::Auto`].
    pub fn fallbacks(&self) -> &[String] {
        &self.fallbacks
    }

    /// Settings of [`ModelOptions`] that were brought within the machine's or
    /// the engine's limits, in words (`threads=1000 is more than the logical
    /// CPUs of this machine: using threads=2`); empty when none was.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// ONNX Runtime's intra-op threads in use (0: its own choice), after
    /// clamping to the logical CPUs.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// The largest batch one model run takes: the graph's fixed batch when
    /// it has one (then every run takes exactly that many), else
    /// [`ModelOptions::max_batch`] on every provider (on TensorRT, the
    /// optimisation profile's largest). [`Engine`](crate::Engine) splits
    /// larger calls.
    pub fn max_batch(&self) -> usize {
        self.max_batch
    }

    /// What the session was built with: the providers and their options,
    /// the profile, the engine cache folder, the precision.
    pub fn session_plan(&self) -> &SessionPlan {
        &self.plan
    }

    /// How many graph nodes each execution provider took, as ONNX Runtime
    /// recorded it; `None` when the loaded ONNX Runtime does not say.
    pub fn node_placement(&self) -> Option<&NodePlacement> {
        self.placement.as_ref()
    }

    /// The CUDA device the GPU providers run on (as given in [`ModelOptions`]).
    pub fn device_id(&self) -> i32 {
        self.device_id
    }

    /// Embeds a batch: `input` is `[N, 3, S, S]` RGB in [0, 1], standard layout.
    /// Returns N embeddings, in order. A graph whose batch is fixed runs in
    /// batches of exactly that size, the last one padded.
    pub fn embed(&mut self, input: ArrayView4<'_, f32>) -> Result<Vec<Embedding>> {
        let n = input.shape()[0];
        let s = self.info.input_size;
        if input.shape()[1..] != [3, s, s] {
            return Err(Error::Inference(format!(
                "input batch has shape {:?}, the model takes [N, 3, {s}, {s}]",
                input.shape()
            )));
        }
        match self.info.fixed_batch {
            Some(fixed) if n != fixed => self.embed_in_fixed_batches(input, fixed),
            _ => self.run_host(input),
        }
    }

    /// [`embed`](Self::embed) for a graph whose batch is fixed at `fixed`
    /// and an input of another batch: runs of exactly `fixed` images, the
    /// last one padded with copies of its first image (zeros could give a
    /// NaN embedding, which the output check refuses) whose embeddings are
    /// dropped.
    fn embed_in_fixed_batches(
        &mut self,
        input: ArrayView4<'_, f32>,
        fixed: usize,
    ) -> Result<Vec<Embedding>> {
        use ndarray::{s, Array4};
        let (n, size) = (input.shape()[0], self.info.input_size);
        let mut out = Vec::with_capacity(n);
        let mut padded = Array4::<f32>::zeros((fixed, 3, size, size));
        for start in (0..n).step_by(fixed) {
            let chunk = input.slice(s![start..(start + fixed).min(n), .., .., ..]);
            let m = chunk.shape()[0];
            if m == fixed {
                out.extend(self.run_host(chunk)?);
                continue;
            }
            padded.slice_mut(s![..m, .., .., ..]).assign(&chunk);
            for row in m..fixed {
                padded
                    .slice_mut(s![row, .., .., ..])
                    .assign(&chunk.slice(s![0, .., .., ..]));
            }
            let mut embedded = self.run_host(padded.view())?;
            embedded.truncate(m);
            out.extend(embedded);
        }
        Ok(out)
    }

    /// One session run on a host batch.
    fn run_host(&mut self, input: ArrayView4<'_, f32>) -> Result<Vec<Embedding>> {
        let n = input.shape()[0];
        let tensor =
            TensorRef::from_array_view(input).map_err(|e| Error::Inference(e.to_string()))?;
        let outputs = self
            .session
            .run(ort::inputs![INPUT_NAME => tensor])
            .map_err(|e| Error::Inference(e.to_string()))?;
        embeddings_of(&outputs, n, &self.info)
    }

    /// Embeds a batch that is already in CUDA device memory: `input` is the
    /// device address of `[n, 3, S, S]` f32, handed to the session as a view
    /// (no copy back to the host).
    ///
    /// Refused unless the model runs on the CUDA or TensorRT provider: a
    /// session on the CPU provider would read the device address as host
    /// memory.
    ///
    /// # Safety
    /// `input` must address `n * 3 * S * S` initialised f32 on CUDA device
    /// [`device_id`](Self::device_id), in a context ONNX Runtime can use (the
    /// device's primary context), with all work writing it finished.
    #[cfg(feature = "cuda")]
    pub unsafe fn embed_device(&mut self, input: u64, n: usize) -> Result<Vec<Embedding>> {
        use ort::memory::{AllocationDevice, AllocatorType, MemoryInfo, MemoryType};
        use ort::value::{Shape, TensorRefMut};

        if !matches!(
            self.provider,
            ExecutionProvider::Cuda | ExecutionProvider::TensorRt
        ) {
            return Err(Error::Inference(format!(
                "device memory cannot be given to a model on the {} provider",
                self.provider
            )));
        }
        let s = self.info.input_size;
        if let Some(fixed) = self.info.fixed_batch {
            if n != fixed {
                return Err(Error::Inference(format!(
                    "the model takes batches of exactly {fixed}, got {n}"
                )));
            }
        }
        let err = |e: ort::Error| Error::Inference(e.to_string());
        let info = MemoryInfo::new(
            AllocationDevice::CUDA,
            self.device_id,
            AllocatorType::Device,
            MemoryType::Default,
        )
        .map_err(err)?;
        let shape = Shape::new([n as i64, 3, s as i64, s as i64]);
        // SAFETY: forwarded from the caller.
        let tensor = unsafe {
            TensorRefMut::<f32>::from_raw(info, input as usize as *mut std::ffi::c_void, shape)
        }
        .map_err(err)?;
        let outputs = self
            .session
            .run(ort::inputs![INPUT_NAME => tensor])
            .map_err(err)?;
        embeddings_of(&outputs, n, &self.info)
    }
}

/// The `n` embeddings of width `d` in a run's output, checked against the contract.
///
/// Every embedding must be finite and unit-norm
/// ([`crate::embedding::check`]): a model that gives NaN, infinities or
/// unnormalised vectors is an error naming the model and the output, never a
/// NaN distance downstream.
fn embeddings_of(
    outputs: &ort::session::SessionOutputs<'_>,
    n: usize,
    info: &ModelInfo,
) -> Result<Vec<Embedding>> {
    let d = info.embedding_dim;
    let (shape, data) = outputs[OUTPUT_NAME]
        .try_extract_tensor::<f32>()
        .map_err(|e| Error::Inference(e.to_string()))?;
    if shape.len() != 2 || shape[0] as usize != n || shape[1] as usize != d {
        return Err(Error::Inference(format!(
            "the model returned shape {shape}, expected [{n}, {d}]"
        )));
    }
    data.chunks_exact(d)
        .enumerate()
        .map(|(item, values)| {
            crate::embedding::check(values).map_err(|fault| Error::ModelOutput {
                path: info.path.clone(),
                output: OUTPUT_NAME,
                item,
                batch: n,
                problem: fault.to_string(),
                tolerance: crate::embedding::UNIT_NORM_TOLERANCE,
            })?;
            Ok(Embedding::from_slice(values))
        })
        .collect()
}

enum SessionError {
    Provider(String),
    Model(String),
}

/// What `provider` needs to start, for messages; empty for the CPU.
fn provider_needs(provider: ExecutionProvider) -> &'static str {
    match provider {
        ExecutionProvider::TensorRt => {
            "it needs the onnxruntime-gpu 1.31 library, CUDA 13, cuDNN 9 and TensorRT 10 \
             (libnvinfer.so.10) on the library path"
        }
        ExecutionProvider::Cuda => {
            "it needs the onnxruntime-gpu 1.31 library, CUDA 13 and cuDNN 9 on the library path"
        }
        ExecutionProvider::OpenVino => {
            "it needs the onnxruntime-openvino build of ONNX Runtime \
             (tools/get_onnxruntime.sh --build openvino) as the loaded library"
        }
        _ => "",
    }
}

fn provider_hint(provider: ExecutionProvider, message: &str) -> String {
    let needs = provider_needs(provider);
    if needs.is_empty() {
        message.to_string()
    } else {
        format!("{message}; {needs}, or use the CPU provider or auto")
    }
}

fn tensor_parts(value: &ValueType) -> Option<(TensorElementType, Vec<i64>)> {
    Some((value.tensor_type()?, value.tensor_shape()?.to_vec()))
}

/// Checks names, element types, ranks and sizes of the graph against the
/// contract and the model's own metadata.
fn check_contract(session: &Session, path: &Path) -> Result<ModelInfo> {
    let violation = |problem: String| Error::ModelContract {
        path: path.to_path_buf(),
        problem,
    };

    let metadata = session.metadata().map_err(|e| violation(e.to_string()))?;
    let meta_usize = |key: &str| -> Result<Option<usize>> {
        match metadata.custom(key) {
            None => Ok(None),
            Some(v) => v
                .trim()
                .parse::<usize>()
                .map(Some)
                .map_err(|_| violation(format!("metadata {key} = `{v}` is not a number"))),
        }
    };
    let meta_input = meta_usize(metadata_keys::INPUT_SIZE)?;
    let meta_dim = meta_usize(metadata_keys::EMBEDDING_DIM)?;

    let inputs = session.inputs();
    if inputs.len() != 1 {
        return Err(violation(format!(
            "it has {} inputs ({}), expected exactly one named `{INPUT_NAME}`",
            inputs.len(),
            inputs
                .iter()
                .map(|i| i.name())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let input = &inputs[0];
    if input.name() != INPUT_NAME {
        return Err(violation(format!(
            "its input is named `{}`, expected `{INPUT_NAME}`",
            input.name()
        )));
    }
    let (ty, shape) = tensor_parts(input.dtype())
        .ok_or_else(|| violation(format!("input `{INPUT_NAME}` is not a tensor")))?;
    if ty != TensorElementType::Float32 {
        return Err(violation(format!(
            "input `{INPUT_NAME}` is {ty:?}, expected float32"
        )));
    }
    let expected_size = meta_input.unwrap_or(DEFAULT_INPUT_SIZE);
    let size_ok = shape.len() == 4
        && shape[1] == 3
        && shape[2] == expected_size as i64
        && shape[3] == expected_size as i64;
    if !size_ok {
        return Err(violation(format!(
            "input `{INPUT_NAME}` has shape {shape:?}, expected [N, 3, {expected_size}, {expected_size}]"
        )));
    }
    let fixed_batch = (shape[0] > 0).then_some(shape[0] as usize);

    let outputs = session.outputs();
    let output = outputs
        .iter()
        .find(|o| o.name() == OUTPUT_NAME)
        .ok_or_else(|| {
            violation(format!(
                "it has no output named `{OUTPUT_NAME}` (outputs: {})",
                outputs
                    .iter()
                    .map(|o| o.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
    let (ty, shape) = tensor_parts(output.dtype())
        .ok_or_else(|| violation(format!("output `{OUTPUT_NAME}` is not a tensor")))?;
    if ty != TensorElementType::Float32 {
        return Err(violation(format!(
            "output `{OUTPUT_NAME}` is {ty:?}, expected float32"
        )));
    }
    if shape.len() != 2 {
        return Err(violation(format!(
            "output `{OUTPUT_NAME}` has rank {} (shape {shape:?}), expected [N, D]",
            shape.len()
        )));
    }
    let graph_dim = (shape[1] > 0).then_some(shape[1] as usize);
    let embedding_dim = match (graph_dim, meta_dim) {
        (Some(g), Some(m)) if g != m => {
            return Err(violation(format!(
                "output width is {g} but metadata {} says {m}",
                metadata_keys::EMBEDDING_DIM
            )))
        }
        (Some(d), _) | (None, Some(d)) => d,
        (None, None) => {
            return Err(violation(format!(
                "output width is dynamic and metadata {} is missing",
                metadata_keys::EMBEDDING_DIM
            )))
        }
    };
    if embedding_dim == 0 {
        return Err(violation("embedding width is 0".into()));
    }

    let kind = metadata.custom(metadata_keys::TYPE).unwrap_or_else(|| {
        path.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "unknown".into())
    });
    Ok(ModelInfo {
        path: path.to_path_buf(),
        kind,
        input_size: expected_size,
        embedding_dim,
        precision: metadata.custom(metadata_keys::PRECISION),
        reference_version: metadata.custom(metadata_keys::REFERENCE_VERSION),
        fixed_batch,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session_plan::BatchProfile;

    /// A protobuf length-delimited field.
    fn field(number: u8, payload: &[u8]) -> Vec<u8> {
        assert!(payload.len() < 128 && number < 16);
        let mut out = vec![(number << 3) | 2, payload.len() as u8];
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn the_tensorrt_profile_uses_the_input_size_the_file_declares() {
        // A ModelProto with a graph (field 7) before its metadata (field
        // 14), declaring 256-pixel input.
        let entry = [field(1, b"dreamsim.input_size"), field(2, b"256")].concat();
        let file = [field(7, &[0u8; 100]), field(14, &entry)].concat();
        let path = std::env::temp_dir().join(format!("declared-{}.onnx", std::process::id()));
        std::fs::write(&path, file).unwrap();
        let facts = ModelFacts::read(&path);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(facts.input_size, 256);
        assert_eq!(facts.fixed_batch, None);
        assert_eq!(
            BatchProfile::shape(8, facts.input_size),
            "image:8x3x256x256"
        );
        assert_eq!(
            ModelFacts::read(Path::new("/nonexistent.onnx")).input_size,
            DEFAULT_INPUT_SIZE
        );
    }
}
