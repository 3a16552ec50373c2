//! What every element that runs the model shares: the model's settings and
//! their properties (`model-location`, `onnxruntime-location`,
//! `execution-provider`, `device-id`, `fp16`, `full-precision`, `precision`,
//! `engine-cache-location`, `threads`), loading the model with the log lines
//! and bus messages that say what runs where, and the mapping of engine
//! errors to GStreamer errors. The command-line tool builds the same
//! [`ModelSettings`] from its options, so that its own model loads and the
//! elements' come from one mapping ([`ModelSettings::options`]).

use std::path::PathBuf;
use std::str::FromStr;

use dreamsim::{Model, ModelOptions};
use gst::glib;
use gst::prelude::*;

/// The `execution-provider` property's values (every element that runs the
/// model has it), and the tool's `--provider`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstDreamSimExecutionProvider")]
pub enum ExecutionProvider {
    /// TensorRT, else CUDA, else OpenVINO in bf16 (only on processors with
    /// bf16 matrix units, unless full-precision), else the CPU; a message
    /// says which runs.
    #[default]
    #[enum_value(
        name = "Auto: TensorRT, else CUDA, else OpenVINO bf16 (AMX / AVX512-BF16 processors), else CPU",
        nick = "auto"
    )]
    Auto = 0,
    /// ONNX Runtime's CPU provider.
    #[enum_value(name = "CPU (ONNX Runtime)", nick = "cpu")]
    Cpu = 1,
    /// ONNX Runtime's CUDA provider; an error if it cannot start.
    #[enum_value(name = "CUDA (onnxruntime-gpu)", nick = "cuda")]
    Cuda = 2,
    /// ONNX Runtime's TensorRT provider; an error if it cannot start.
    #[enum_value(name = "TensorRT (onnxruntime-gpu + TensorRT 10)", nick = "tensorrt")]
    TensorRt = 3,
    /// ONNX Runtime's OpenVINO provider on the CPU; an error if the loaded
    /// ONNX Runtime is not the onnxruntime-openvino build.
    #[enum_value(
        name = "OpenVINO on the CPU (onnxruntime-openvino): bf16 on AMX / AVX512-BF16",
        nick = "openvino"
    )]
    OpenVino = 4,
}

impl From<ExecutionProvider> for dreamsim::ExecutionProvider {
    fn from(p: ExecutionProvider) -> Self {
        match p {
            ExecutionProvider::Auto => Self::Auto,
            ExecutionProvider::Cpu => Self::Cpu,
            ExecutionProvider::Cuda => Self::Cuda,
            ExecutionProvider::TensorRt => Self::TensorRt,
            ExecutionProvider::OpenVino => Self::OpenVino,
        }
    }
}

/// The `precision` property's values, and the tool's `--precision`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstDreamSimPrecision")]
pub enum Precision {
    /// The fastest that starts: TensorRT fp16 only with `fp16`, bf16 on
    /// OpenVINO with bf16 units, else the int8 model installed beside the
    /// fp32 one, else fp32.
    #[default]
    #[enum_value(
        name = "Auto: bf16 on OpenVINO with bf16 units, else the int8 model beside the fp32 one \
                if installed (CPU), else fp32",
        nick = "auto"
    )]
    Auto = 0,
    /// fp32 on every provider (as `full-precision=true`).
    #[enum_value(
        name = "fp32 on every provider (as full-precision=true)",
        nick = "fp32"
    )]
    Fp32 = 1,
    /// The int8 model beside the fp32 one, on the CPU; an error if none.
    #[enum_value(
        name = "int8: the <type>-int8.onnx model beside the fp32 one, on the CPU (tools/get_model.sh --int8)",
        nick = "int8"
    )]
    Int8 = 2,
}

impl From<Precision> for dreamsim::RequestedPrecision {
    fn from(p: Precision) -> Self {
        match p {
            Precision::Auto => Self::Auto,
            Precision::Fp32 => Self::Fp32,
            Precision::Int8 => Self::Int8,
        }
    }
}

/// Text as the engine's parser reads it (`--provider` in the tool), so that
/// the words it accepts and its error are the engine's.
impl FromStr for ExecutionProvider {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.parse::<dreamsim::ExecutionProvider>()? {
            dreamsim::ExecutionProvider::Auto => Self::Auto,
            dreamsim::ExecutionProvider::Cpu => Self::Cpu,
            dreamsim::ExecutionProvider::Cuda => Self::Cuda,
            dreamsim::ExecutionProvider::TensorRt => Self::TensorRt,
            dreamsim::ExecutionProvider::OpenVino => Self::OpenVino,
        })
    }
}

/// Text as the engine's parser reads it (`--precision` in the tool).
impl FromStr for Precision {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.parse::<dreamsim::RequestedPrecision>()? {
            dreamsim::RequestedPrecision::Auto => Self::Auto,
            dreamsim::RequestedPrecision::Fp32 => Self::Fp32,
            dreamsim::RequestedPrecision::Int8 => Self::Int8,
        })
    }
}

/// The names of the model's properties, shared by every element that runs
/// the model (and used by the tool to set them).
pub mod property {
    /// The ONNX model file.
    pub const MODEL_LOCATION: &str = "model-location";
    /// The ONNX Runtime library.
    pub const ONNXRUNTIME_LOCATION: &str = "onnxruntime-location";
    /// [`super::ExecutionProvider`].
    pub const EXECUTION_PROVIDER: &str = "execution-provider";
    /// The CUDA device.
    pub const DEVICE_ID: &str = "device-id";
    /// TensorRT fp16 engines.
    pub const FP16: &str = "fp16";
    /// fp32 on every provider.
    pub const FULL_PRECISION: &str = "full-precision";
    /// [`super::Precision`].
    pub const PRECISION: &str = "precision";
    /// TensorRT's and OpenVINO's compiled-model cache.
    pub const ENGINE_CACHE_LOCATION: &str = "engine-cache-location";
    /// ONNX Runtime's CPU threads.
    pub const THREADS: &str = "threads";
}

/// `threads`' default: one per physical core.
pub const DEFAULT_THREADS: u32 = 0;
/// `device-id`'s default.
pub const DEFAULT_DEVICE_ID: i32 = 0;
/// `fp16`'s default.
pub const DEFAULT_FP16: bool = false;
/// `full-precision`'s default.
pub const DEFAULT_FULL_PRECISION: bool = false;

/// Maps an engine error to a GStreamer error domain, and adds to the
/// engine's advice which of this element's properties to change. Every
/// variant is named: a new one must be placed here, not fall into a default.
pub(crate) fn error_message(e: &dreamsim::Error) -> gst::ErrorMessage {
    use dreamsim::Error as E;
    match e {
        E::RuntimeNotFound { .. } => gst::error_msg!(
            gst::LibraryError::Init,
            ("{e}; the element takes that path in its `onnxruntime-location` property")
        ),
        E::RuntimeInit(_) => gst::error_msg!(gst::LibraryError::Init, ("{e}")),
        E::ProviderUnavailable { .. } => gst::error_msg!(
            gst::LibraryError::Init,
            ("{e} (element property: execution-provider=cpu or auto)")
        ),
        E::ModelNotFound { .. } => gst::error_msg!(
            gst::ResourceError::NotFound,
            ("{e}, or set the `model-location` property")
        ),
        E::Int8ModelMissing { .. } => gst::error_msg!(
            gst::ResourceError::NotFound,
            ("{e} (element property `precision`)")
        ),
        E::ModelLoad { .. }
        | E::ModelContract { .. }
        | E::ModelExternalData { .. }
        | E::InvalidSetting(_) => gst::error_msg!(gst::LibraryError::Settings, ("{e}")),
        // The model runs but computes garbage: a moderation pipeline must
        // not go on without its distances, so this stops the stream.
        E::ModelOutput { .. } => gst::error_msg!(gst::LibraryError::Failed, ("{e}")),
        E::ReferenceImage { .. } => gst::error_msg!(
            gst::ResourceError::OpenRead,
            ("{e} (element property `reference-location`)")
        ),
        E::ReferenceTooLarge { .. } => gst::error_msg!(gst::ResourceError::OpenRead, ("{e}")),
        E::Gpu(_) => gst::error_msg!(
            gst::ResourceError::Failed,
            ("{e} (element property: execution-provider=cpu)")
        ),
        E::Inference(_) => gst::error_msg!(gst::StreamError::Failed, ("{e}")),
        E::InvalidFrame(_) | E::EmbeddingMismatch(..) => {
            gst::error_msg!(gst::StreamError::Format, ("{e}"))
        }
    }
}

/// The code of the `progress` messages posted while the model loads.
pub(crate) const PROGRESS_CODE: &str = "model-load";

/// Posts a `progress` message about the model load.
fn post_progress(element: &gst::Element, kind: gst::ProgressType, text: &str) {
    let msg = gst::message::Progress::builder(kind, PROGRESS_CODE, text)
        .src(element)
        .build();
    let _ = element.post_message(msg);
}

/// A path property's value (NULL when unset).
pub(crate) fn path_value(p: &Option<PathBuf>) -> glib::Value {
    p.as_ref()
        .map(|p| p.to_string_lossy().into_owned())
        .to_value()
}

/// A path from a string property's value (NULL or empty: unset).
pub(crate) fn path_from(value: &glib::Value) -> Option<PathBuf> {
    value
        .get::<Option<String>>()
        .expect("type checked upstream")
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
}

/// The model's settings, as properties of the element that runs it (one
/// field per property, defaults the properties' defaults).
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSettings {
    /// `model-location`; unset: [`dreamsim::paths::default_model`].
    pub model_location: Option<PathBuf>,
    /// `onnxruntime-location`; unset: [`dreamsim::runtime`]'s search.
    pub onnxruntime_location: Option<PathBuf>,
    /// `execution-provider`.
    pub execution_provider: ExecutionProvider,
    /// `device-id`.
    pub device_id: i32,
    /// `fp16`.
    pub fp16: bool,
    /// `full-precision`.
    pub full_precision: bool,
    /// `precision`.
    pub precision: Precision,
    /// `engine-cache-location`.
    pub engine_cache_location: Option<PathBuf>,
    /// `threads`.
    pub threads: u32,
}

impl Default for ModelSettings {
    fn default() -> Self {
        Self {
            model_location: None,
            onnxruntime_location: None,
            execution_provider: ExecutionProvider::default(),
            device_id: DEFAULT_DEVICE_ID,
            fp16: DEFAULT_FP16,
            full_precision: DEFAULT_FULL_PRECISION,
            precision: Precision::default(),
            engine_cache_location: None,
            threads: DEFAULT_THREADS,
        }
    }
}

impl ModelSettings {
    /// The model file these settings load: `model-location`, else the
    /// default model.
    pub fn model_path(&self) -> Result<PathBuf, dreamsim::paths::NoDefaultModel> {
        dreamsim::paths::model_or_default(self.model_location.as_deref())
    }

    /// The engine's options for these settings, for batches of at most
    /// `max_batch` frames: the one mapping from settings to
    /// [`ModelOptions`], for the elements and the tool alike (a model loaded
    /// by one is the model pool's match for the other).
    pub fn options(&self, max_batch: usize) -> ModelOptions {
        ModelOptions {
            provider: self.execution_provider.into(),
            threads: self.threads as usize,
            device_id: self.device_id,
            fp16: self.fp16,
            full_precision: self.full_precision,
            precision: self.precision.into(),
            engine_cache: self.engine_cache_location.clone(),
            max_batch: max_batch.max(1),
        }
    }

    /// Sets every model property of `element` (any element that runs the
    /// model) to these settings.
    pub fn apply_to(&self, element: &impl IsA<gst::Element>) {
        for pspec in Self::properties() {
            let value = self.get(pspec.name()).expect("one of these settings");
            element.set_property_from_value(pspec.name(), &value);
        }
    }

    /// The properties these settings are read from, all mutable in READY.
    pub(crate) fn properties() -> Vec<glib::ParamSpec> {
        let default_model = dreamsim::paths::default_model()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "$XDG_DATA_HOME/gst-dreamsim/models/ensemble.onnx".into());
        vec![
            glib::ParamSpecString::builder(property::MODEL_LOCATION)
                .nick("Model location")
                .blurb(&format!(
                    "DreamSim ONNX model (input `image` [N,3,224,224], output `embedding` [N,D]). \
                     Unset: the ensemble that tools/get_model.sh installs, {default_model} \
                     ($GST_DREAMSIM_MODEL_DIR overrides the directory)"
                ))
                .mutable_ready()
                .build(),
            glib::ParamSpecString::builder(property::ONNXRUNTIME_LOCATION)
                .nick("ONNX Runtime library")
                .blurb(
                    "Path of libonnxruntime.so (1.24 or newer; the onnxruntime-openvino build \
                     for the fast CPU path). Unset: $ORT_DYLIB_PATH, else \
                     $XDG_DATA_HOME/gst-dreamsim/onnxruntime/, /usr/local/lib, /usr/lib and \
                     the linker's search path. One runtime per process: the first one loaded stays",
                )
                .mutable_ready()
                .build(),
            glib::ParamSpecEnum::builder_with_default(
                "execution-provider",
                ExecutionProvider::default(),
            )
            .nick("Execution provider")
            .blurb(
                "Hardware that runs the model. An explicitly requested provider that \
                 cannot start is an error; auto falls back and posts a warning. Which one \
                 runs: active-provider, active-precision and an info message at start",
            )
            .mutable_ready()
            .build(),
            glib::ParamSpecInt::builder(property::DEVICE_ID)
                .nick("Device ID")
                .blurb("CUDA device for the cuda and tensorrt providers")
                .minimum(0)
                .default_value(DEFAULT_DEVICE_ID)
                .mutable_ready()
                .build(),
            glib::ParamSpecBoolean::builder(property::FP16)
                .nick("FP16")
                .blurb("Let TensorRT build fp16 engines (faster, distances within about 1e-3)")
                .default_value(DEFAULT_FP16)
                .mutable_ready()
                .build(),
            glib::ParamSpecBoolean::builder(property::FULL_PRECISION)
                .nick("Full precision")
                .blurb(
                    "Compute in fp32 on every provider: auto then skips the bf16 CPU path \
                     (OpenVINO) and TensorRT (its fp32 engines compute in TF32), openvino runs \
                     in fp32, and tensorrt is an error unless the process runs with \
                     NVIDIA_TF32_OVERRIDE=0 (then fp16 is ignored). Off: faster, distances \
                     within about 1e-3 of fp32 (README, Throughput)",
                )
                .default_value(DEFAULT_FULL_PRECISION)
                .mutable_ready()
                .build(),
            glib::ParamSpecEnum::builder_with_default(property::PRECISION, Precision::default())
                .nick("Precision")
                .blurb(
                    "Arithmetic the model runs in. auto: the fastest that starts (bf16 on \
                     OpenVINO with bf16 units, else the <type>-int8.onnx model installed beside \
                     the fp32 one, on the CPU, else fp32); fp32: as full-precision=true; int8: \
                     the int8 model on the CPU, an error if there is none (tools/get_model.sh \
                     --int8 makes it, with its agreement to fp32 in its metadata). Which runs: \
                     active-precision",
                )
                .mutable_ready()
                .build(),
            glib::ParamSpecString::builder(property::ENGINE_CACHE_LOCATION)
                .nick("Engine cache location")
                .blurb(
                    "Directory where TensorRT keeps built engines and timing caches (one \
                     subfolder per model, batch-size, precision and device) and OpenVINO its \
                     compiled models, so later starts skip the build; created with its \
                     parents, an error when it cannot be written. Unset: no cache",
                )
                .mutable_ready()
                .build(),
            glib::ParamSpecUInt::builder(property::THREADS)
                .nick("Threads")
                .blurb(
                    "CPU threads for ONNX Runtime (0: one per physical core). More than the \
                     machine's logical CPUs is brought down to them, with a warning",
                )
                .default_value(DEFAULT_THREADS)
                .mutable_ready()
                .build(),
        ]
    }

    /// Sets the property `name`; false when it is not one of these settings.
    pub(crate) fn set(&mut self, name: &str, value: &glib::Value) -> bool {
        match name {
            property::MODEL_LOCATION => self.model_location = path_from(value),
            property::ONNXRUNTIME_LOCATION => self.onnxruntime_location = path_from(value),
            property::EXECUTION_PROVIDER => {
                self.execution_provider = value.get().expect("type checked")
            }
            property::DEVICE_ID => self.device_id = value.get().expect("type checked"),
            property::FP16 => self.fp16 = value.get().expect("type checked"),
            property::FULL_PRECISION => self.full_precision = value.get().expect("type checked"),
            property::PRECISION => self.precision = value.get().expect("type checked"),
            property::ENGINE_CACHE_LOCATION => self.engine_cache_location = path_from(value),
            property::THREADS => self.threads = value.get().expect("type checked"),
            _ => return false,
        }
        true
    }

    /// The property `name`'s value; `None` when it is not one of these settings.
    pub(crate) fn get(&self, name: &str) -> Option<glib::Value> {
        Some(match name {
            property::MODEL_LOCATION => path_value(&self.model_location),
            property::ONNXRUNTIME_LOCATION => path_value(&self.onnxruntime_location),
            property::EXECUTION_PROVIDER => self.execution_provider.to_value(),
            property::DEVICE_ID => self.device_id.to_value(),
            property::FP16 => self.fp16.to_value(),
            property::FULL_PRECISION => self.full_precision.to_value(),
            property::PRECISION => self.precision.to_value(),
            property::ENGINE_CACHE_LOCATION => path_value(&self.engine_cache_location),
            property::THREADS => self.threads.to_value(),
            _ => return None,
        })
    }

    /// Loads the model for `element`, saying in `cat` and on the bus which
    /// runtime, model and provider run and why a provider was skipped.
    /// `max_batch` is the largest batch the element will run. With the
    /// process's model pool on ([`dreamsim::model_pool`]), an idle model
    /// loaded earlier from the same file with the same options is taken
    /// instead; the [`PoolTicket`] is what to hand it back with.
    pub(crate) fn load(
        &self,
        element: &gst::Element,
        cat: gst::DebugCategory,
        max_batch: usize,
    ) -> Result<(Model, PoolTicket), gst::ErrorMessage> {
        let runtime = dreamsim::runtime(self.onnxruntime_location.as_deref())
            .map_err(|e| error_message(&e))?;
        if let Some(asked) = &self.onnxruntime_location {
            if asked != runtime.library() {
                gst::warning!(
                    cat,
                    obj = element,
                    "ONNX Runtime was already loaded from {} in this process; {} is not used",
                    runtime.library().display(),
                    asked.display()
                );
            }
        }
        gst::info!(
            cat,
            obj = element,
            "ONNX Runtime {} from {}",
            runtime.build_info(),
            runtime.library().display()
        );

        let model_path = self.model_path().map_err(|e| {
            gst::error_msg!(
                gst::ResourceError::NotFound,
                ("{e}: set the `model-location` property")
            )
        })?;
        let options = self.options(max_batch);
        // A first TensorRT start builds engines for minutes, OpenVINO compiles
        // for seconds: an application can show these messages meanwhile.
        let compiles = match options.provider {
            dreamsim::ExecutionProvider::Auto | dreamsim::ExecutionProvider::TensorRt => {
                "; TensorRT builds its engines on a first start, which can take minutes"
            }
            dreamsim::ExecutionProvider::OpenVino => "; OpenVINO compiles it first",
            _ => "",
        };
        let model = match dreamsim::model_pool::take(&model_path, &options) {
            Some(model) => {
                let reused = format!(
                    "Reusing {} on the {} execution provider, loaded earlier in this process \
                     (model pool)",
                    model_path.display(),
                    model.provider()
                );
                gst::info!(cat, obj = element, "{reused}");
                post_progress(element, gst::ProgressType::Complete, &reused);
                model
            }
            None => {
                post_progress(
                    element,
                    gst::ProgressType::Start,
                    &format!(
                        "Loading {} on execution-provider={}{compiles}",
                        model_path.display(),
                        options.provider
                    ),
                );
                let started = std::time::Instant::now();
                let model = Model::load(runtime, &model_path, &options).map_err(|e| {
                    post_progress(element, gst::ProgressType::Error, &e.to_string());
                    error_message(&e)
                })?;
                post_progress(
                    element,
                    gst::ProgressType::Complete,
                    &format!(
                        "Loaded {} on the {} execution provider in {:.1} s",
                        model_path.display(),
                        model.provider(),
                        started.elapsed().as_secs_f64()
                    ),
                );
                model
            }
        };
        let info = model.info();
        gst::info!(
            cat,
            obj = element,
            "gst-dreamsim {}: model {} ({}, {}-d embedding, stored as {}) on {} computing in {}",
            dreamsim::BUILD_VERSION,
            info.path.display(),
            info.kind,
            info.embedding_dim,
            info.precision.as_deref().unwrap_or("unknown"),
            model.provider(),
            model.compute_precision()
        );
        // Which provider runs decides speed and exactness: said at every
        // start, not only when something was skipped.
        let units = match (
            model.provider(),
            dreamsim::cpu::bf16_matrix_units(),
            model.int8(),
        ) {
            (_, _, Some(int8)) => format!(
                " with the int8 model {} ({})",
                int8.path.display(),
                int8.agreement()
            ),
            (dreamsim::ExecutionProvider::OpenVino, Some(units), _) => format!(" on {units}"),
            _ => String::new(),
        };
        // The build is named with it, so a figure or a report copied from
        // gst-launch's output says which code produced it.
        // Nodes the provider did not take run on the next one (CUDA behind
        // TensorRT, or the CPU): said when the graph is split.
        let placement = model
            .node_placement()
            .filter(|p| p.is_split())
            .map(|p| format!(", graph nodes: {p}"))
            .unwrap_or_default();
        let running = format!(
            "DreamSim runs on the {} execution provider in {}{units}{placement} (gst-dreamsim {})",
            model.provider(),
            model.compute_precision(),
            dreamsim::BUILD_VERSION
        );
        gst::info!(cat, obj = element, "{running}");
        // gst-launch prints only the debug text of info messages.
        gst::element_info!(
            element,
            gst::LibraryError::Init,
            ("{running}"),
            ["{running}"]
        );
        // An agreement below the guard was someone's explicit choice at
        // export (or the file was not made by the tool); whoever reads this
        // pipeline's output should know it too.
        if let Some(int8) = model.int8().filter(|m| m.below_guard()) {
            let below = format!(
                "the int8 model {} agrees with fp32 less than the tool's guard requires: {}",
                int8.path.display(),
                int8.agreement()
            );
            gst::warning!(cat, obj = element, "{below}");
            gst::element_warning!(element, gst::LibraryError::Settings, ("{}", below));
        }
        // Settings brought within the machine's limits (threads beyond the
        // logical CPUs): said on the bus and in the log, with both values.
        for clamped in model.warnings() {
            gst::warning!(cat, obj = element, "{clamped}");
            gst::element_warning!(element, gst::LibraryError::Settings, ("{}", clamped));
        }
        if !model.fallbacks().is_empty() {
            let why = model.fallbacks().join("; ");
            gst::warning!(cat, obj = element, "Running on {}: {why}", model.provider());
            gst::element_warning!(
                element,
                gst::LibraryError::Init,
                (
                    "DreamSim runs on the {} execution provider: {}",
                    model.provider(),
                    why
                )
            );
        }
        Ok((
            model,
            PoolTicket {
                path: model_path,
                options,
            },
        ))
    }
}

/// What a model was loaded from and with, to hand it back to the model pool
/// when the element stops.
#[derive(Debug, Clone)]
pub(crate) struct PoolTicket {
    path: std::path::PathBuf,
    options: ModelOptions,
}

impl PoolTicket {
    /// Keeps `model` idle for the next element that asks for the same, when
    /// the application turned the pool on; drops it otherwise.
    pub(crate) fn give_back(&self, model: Model) {
        dreamsim::model_pool::give_back(&self.path, &self.options, model);
    }
}
