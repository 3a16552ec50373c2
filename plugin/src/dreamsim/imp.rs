use std::path::PathBuf;
use std::sync::{LazyLock, Mutex, MutexGuard};

use dreamsim::{Colorimetry, Embedding, Engine, Frame, Model, ModelOptions, PixelFormat, Plane};
use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::prelude::*;
use gst_video::prelude::*;
use gst_video::subclass::prelude::*;

use super::ExecutionProvider;
use crate::message::DreamSimMessage;
use crate::meta::DreamSimMeta;

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "dreamsim",
        gst::DebugColorFlags::empty(),
        Some("DreamSim perceptual distance"),
    )
});

const DEFAULT_INTERVAL: u32 = 1;
const DEFAULT_THREADS: u32 = 0;
const DEFAULT_DEVICE_ID: i32 = 0;
const DEFAULT_FP16: bool = false;
const DEFAULT_POST_MESSAGES: bool = true;

/// The raw formats the engine converts itself; anything else needs videoconvert.
const FORMATS: &[gst_video::VideoFormat] = &[
    gst_video::VideoFormat::Rgb,
    gst_video::VideoFormat::Bgr,
    gst_video::VideoFormat::Rgba,
    gst_video::VideoFormat::Bgra,
    gst_video::VideoFormat::Argb,
    gst_video::VideoFormat::Abgr,
    gst_video::VideoFormat::Rgbx,
    gst_video::VideoFormat::Bgrx,
    gst_video::VideoFormat::Xrgb,
    gst_video::VideoFormat::Xbgr,
    gst_video::VideoFormat::Gray8,
    gst_video::VideoFormat::I420,
    gst_video::VideoFormat::Yv12,
    gst_video::VideoFormat::Nv12,
    gst_video::VideoFormat::Nv21,
];

fn pixel_format(format: gst_video::VideoFormat) -> Option<PixelFormat> {
    use gst_video::VideoFormat as V;
    Some(match format {
        V::Rgb => PixelFormat::Rgb,
        V::Bgr => PixelFormat::Bgr,
        V::Rgba => PixelFormat::Rgba,
        V::Bgra => PixelFormat::Bgra,
        V::Argb => PixelFormat::Argb,
        V::Abgr => PixelFormat::Abgr,
        V::Rgbx => PixelFormat::Rgbx,
        V::Bgrx => PixelFormat::Bgrx,
        V::Xrgb => PixelFormat::Xrgb,
        V::Xbgr => PixelFormat::Xbgr,
        V::Gray8 => PixelFormat::Gray8,
        V::I420 => PixelFormat::I420,
        V::Yv12 => PixelFormat::Yv12,
        V::Nv12 => PixelFormat::Nv12,
        V::Nv21 => PixelFormat::Nv21,
        _ => return None,
    })
}

/// The caps' colorimetry as the engine's; unknown values follow GStreamer's
/// own defaults (BT.601 up to 576 lines, BT.709 above; limited range).
fn colorimetry(info: &gst_video::VideoInfo) -> Colorimetry {
    use dreamsim::{YuvMatrix, YuvRange};
    use gst_video::VideoColorMatrix as M;
    let c = info.colorimetry();
    let matrix = match c.matrix() {
        M::Bt709 => YuvMatrix::Bt709,
        M::Bt601 => YuvMatrix::Bt601,
        M::Bt2020 => YuvMatrix::Bt2020,
        M::Smpte240m => YuvMatrix::Smpte240m,
        M::Fcc => YuvMatrix::Fcc,
        _ if info.height() > 576 => YuvMatrix::Bt709,
        _ => YuvMatrix::Bt601,
    };
    let range = match c.range() {
        gst_video::VideoColorRange::Range0_255 => YuvRange::Full,
        _ => YuvRange::Limited,
    };
    Colorimetry { matrix, range }
}

/// Maps an engine error to a GStreamer error domain and a message that says
/// what to do.
fn error_message(e: &dreamsim::Error) -> gst::ErrorMessage {
    use dreamsim::Error as E;
    match e {
        E::RuntimeNotFound { .. } | E::RuntimeInit(_) | E::ProviderUnavailable { .. } => {
            gst::error_msg!(gst::LibraryError::Init, ("{}", e))
        }
        E::ModelNotFound { .. } => gst::error_msg!(gst::ResourceError::NotFound, ("{}", e)),
        E::ModelLoad { .. } | E::ModelContract { .. } => {
            gst::error_msg!(gst::LibraryError::Settings, ("{}", e))
        }
        E::ReferenceImage { .. } => gst::error_msg!(gst::ResourceError::OpenRead, ("{}", e)),
        _ => gst::error_msg!(gst::StreamError::Failed, ("{}", e)),
    }
}

#[derive(Debug, Clone)]
struct Settings {
    model_location: Option<PathBuf>,
    reference_location: Option<PathBuf>,
    onnxruntime_location: Option<PathBuf>,
    execution_provider: ExecutionProvider,
    device_id: i32,
    fp16: bool,
    engine_cache_location: Option<PathBuf>,
    threads: u32,
    interval: u32,
    post_messages: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            model_location: None,
            reference_location: None,
            onnxruntime_location: None,
            execution_provider: ExecutionProvider::default(),
            device_id: DEFAULT_DEVICE_ID,
            fp16: DEFAULT_FP16,
            engine_cache_location: None,
            threads: DEFAULT_THREADS,
            interval: DEFAULT_INTERVAL,
            post_messages: DEFAULT_POST_MESSAGES,
        }
    }
}

struct State {
    engine: Engine,
    model_kind: String,
    info: Option<gst_video::VideoInfo>,
    previous: Option<Embedding>,
    reference: Option<Embedding>,
    /// The reference file `reference` was computed from.
    reference_location: Option<PathBuf>,
    /// Buffers received since start; the `frame` field of the meta.
    frames_seen: u64,
}

#[derive(Default)]
pub struct DreamSim {
    settings: Mutex<Settings>,
    state: Mutex<Option<State>>,
    active_provider: Mutex<Option<String>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not turn every later call into a panic too.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn path_value(p: &Option<PathBuf>) -> glib::Value {
    p.as_ref()
        .map(|p| p.to_string_lossy().into_owned())
        .to_value()
}

fn path_from(value: &glib::Value) -> Option<PathBuf> {
    value
        .get::<Option<String>>()
        .expect("type checked upstream")
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
}

impl DreamSim {
    fn load_model(&self, settings: &Settings) -> Result<Model, gst::ErrorMessage> {
        let runtime = dreamsim::runtime(settings.onnxruntime_location.as_deref())
            .map_err(|e| error_message(&e))?;
        if let Some(asked) = &settings.onnxruntime_location {
            if asked != runtime.library() {
                gst::warning!(
                    CAT,
                    imp = self,
                    "ONNX Runtime was already loaded from {} in this process; {} is not used",
                    runtime.library().display(),
                    asked.display()
                );
            }
        }
        gst::info!(
            CAT,
            imp = self,
            "ONNX Runtime {} from {}",
            runtime.build_info(),
            runtime.library().display()
        );

        let model_path = match &settings.model_location {
            Some(p) => p.clone(),
            None => dreamsim::paths::default_model().ok_or_else(|| {
                gst::error_msg!(
                    gst::ResourceError::NotFound,
                    ("No model-location set and no HOME to find the default model in")
                )
            })?,
        };
        let options = ModelOptions {
            provider: settings.execution_provider.into(),
            threads: settings.threads as usize,
            device_id: settings.device_id,
            fp16: settings.fp16,
            engine_cache: settings.engine_cache_location.clone(),
            ..ModelOptions::default()
        };
        let model = Model::load(runtime, &model_path, &options).map_err(|e| error_message(&e))?;
        let info = model.info();
        gst::info!(
            CAT,
            imp = self,
            "Model {} ({}, {}-d embedding, precision {}) on {}",
            info.path.display(),
            info.kind,
            info.embedding_dim,
            info.precision.as_deref().unwrap_or("unknown"),
            model.provider()
        );
        if !model.fallbacks().is_empty() {
            let why = model.fallbacks().join("; ");
            gst::warning!(CAT, imp = self, "Running on {}: {why}", model.provider());
            gst::element_imp_warning!(
                self,
                gst::LibraryError::Init,
                (
                    "DreamSim runs on the {} execution provider: {}",
                    model.provider(),
                    why
                )
            );
        }
        Ok(model)
    }

    /// Makes the reference embedding match the `reference-location` setting.
    fn sync_reference(
        &self,
        state: &mut State,
        wanted: &Option<PathBuf>,
    ) -> Result<(), gst::ErrorMessage> {
        if &state.reference_location == wanted {
            return Ok(());
        }
        state.reference = match wanted {
            Some(path) => {
                let e = state
                    .engine
                    .embed_image_file(path)
                    .map_err(|e| error_message(&e))?;
                gst::info!(
                    CAT,
                    imp = self,
                    "Reference image {} embedded",
                    path.display()
                );
                Some(e)
            }
            None => None,
        };
        state.reference_location = wanted.clone();
        Ok(())
    }

    fn embed(
        &self,
        state: &mut State,
        buf: &gst::BufferRef,
    ) -> Result<Embedding, gst::ErrorMessage> {
        let info = state.info.as_ref().ok_or_else(|| {
            gst::error_msg!(gst::CoreError::Negotiation, ("Buffer received before caps"))
        })?;
        let frame =
            gst_video::VideoFrameRef::from_buffer_ref_readable(buf, info).map_err(|_| {
                gst::error_msg!(
                    gst::StreamError::Format,
                    (
                        "Buffer of {} bytes does not hold a {}x{} {} frame",
                        buf.size(),
                        info.width(),
                        info.height(),
                        info.format().to_str()
                    )
                )
            })?;
        let format = pixel_format(info.format()).ok_or_else(|| {
            gst::error_msg!(
                gst::CoreError::Negotiation,
                ("Unsupported format {}", info.format().to_str())
            )
        })?;
        let mut planes = [Plane::default(); 3];
        for (i, plane) in planes
            .iter_mut()
            .enumerate()
            .take(frame.n_planes() as usize)
        {
            let stride = usize::try_from(frame.plane_stride()[i]).map_err(|_| {
                gst::error_msg!(
                    gst::StreamError::Format,
                    ("Negative strides are not supported")
                )
            })?;
            let data = frame.plane_data(i as u32).map_err(|e| {
                gst::error_msg!(gst::StreamError::Format, ("Plane {i} unreadable: {e}"))
            })?;
            *plane = Plane { data, stride };
        }
        let engine_frame = Frame::new(
            format,
            info.width() as usize,
            info.height() as usize,
            &planes[..frame.n_planes() as usize],
            colorimetry(info),
        )
        .map_err(|e| error_message(&e))?;
        state
            .engine
            .embed_frame(&engine_frame)
            .map_err(|e| error_message(&e))
    }

    fn post_distance(&self, buf: &gst::BufferRef, frame: u64, meta: &DreamSimMeta) {
        let segment = self.obj().segment();
        let segment = segment.downcast_ref::<gst::ClockTime>();
        let pts = buf.pts();
        let msg = DreamSimMessage {
            timestamp: pts,
            stream_time: segment.and_then(|s| s.to_stream_time(pts?)),
            running_time: segment.and_then(|s| s.to_running_time(pts?)),
            duration: buf.duration(),
            frame,
            distance: meta.distance,
            reference_distance: meta.reference_distance,
        };
        let _ = self.obj().post_message(msg.to_message(&*self.obj()));
    }

    /// An unsupported format never reaches set_info: negotiation just fails
    /// with `not-negotiated`. Say why, and what to do, while we can.
    fn explain_unsupported_caps(&self, caps: &gst::CapsRef) {
        let supported = |name: &str| {
            gst_video::VideoFormat::from_string(name) != gst_video::VideoFormat::Unknown
                && FORMATS.contains(&gst_video::VideoFormat::from_string(name))
        };
        let unsupported: Vec<String> = caps
            .iter()
            .filter(|s| s.name() == "video/x-raw")
            .filter_map(|s| s.get::<&str>("format").ok())
            .filter(|f| !supported(f))
            .map(str::to_owned)
            .collect();
        if !unsupported.is_empty() && unsupported.len() == caps.size() {
            gst::element_imp_error!(
                self,
                gst::CoreError::Negotiation,
                (
                    "Unsupported video format {}: dreamsim takes RGB, BGR, RGBA, BGRA, ARGB, ABGR, RGBx, BGRx, xRGB, xBGR, GRAY8, I420, YV12, NV12 or NV21 in system memory; put videoconvert before dreamsim",
                    unsupported.join(", ")
                )
            );
        }
    }
}

#[glib::object_subclass]
impl ObjectSubclass for DreamSim {
    const NAME: &'static str = "GstDreamSim";
    type Type = super::DreamSim;
    type ParentType = gst_video::VideoFilter;
}

impl ObjectImpl for DreamSim {
    fn constructed(&self) {
        self.parent_constructed();
        // BaseTransform's QoS drops late buffers; a model that is slower
        // than real time would then silently lose frames.
        self.obj().set_qos(false);
    }

    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            let default_model = dreamsim::paths::default_model()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "$XDG_DATA_HOME/gst-dreamsim/models/ensemble.onnx".into());
            vec![
                glib::ParamSpecString::builder("model-location")
                    .nick("Model location")
                    .blurb(&format!(
                        "DreamSim ONNX model (input `image` [N,3,224,224], output `embedding` [N,D]). \
                         Unset: the ensemble that tools/get_model.sh installs, {default_model} \
                         ($GST_DREAMSIM_MODEL_DIR overrides the directory)"
                    ))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("reference-location")
                    .nick("Reference image")
                    .blurb(
                        "PNG/JPEG/BMP/WebP image; each analysed frame gets its distance to it \
                         (reference-distance). Can be changed while playing",
                    )
                    .mutable_playing()
                    .build(),
                glib::ParamSpecString::builder("onnxruntime-location")
                    .nick("ONNX Runtime library")
                    .blurb(
                        "Path of libonnxruntime.so (1.31 or newer). Unset: $ORT_DYLIB_PATH, else \
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
                    "Hardware that runs the model. An explicitly requested GPU provider that \
                     cannot start is an error; auto falls back and posts a warning",
                )
                .mutable_ready()
                .build(),
                glib::ParamSpecString::builder("active-provider")
                    .nick("Active provider")
                    .blurb("The execution provider actually running the model (NULL until started)")
                    .read_only()
                    .build(),
                glib::ParamSpecInt::builder("device-id")
                    .nick("Device ID")
                    .blurb("CUDA device for the cuda and tensorrt providers")
                    .minimum(0)
                    .default_value(DEFAULT_DEVICE_ID)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("fp16")
                    .nick("FP16")
                    .blurb("Let TensorRT build fp16 engines (faster, distances within about 1e-3)")
                    .default_value(DEFAULT_FP16)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("engine-cache-location")
                    .nick("Engine cache location")
                    .blurb(
                        "Directory where TensorRT keeps built engines and timing caches, so \
                         later starts skip the engine build. Unset: no cache",
                    )
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("threads")
                    .nick("Threads")
                    .blurb("CPU threads for ONNX Runtime (0: one per physical core)")
                    .default_value(DEFAULT_THREADS)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("interval")
                    .nick("Interval")
                    .blurb(
                        "Analyse one buffer in every N (1: all); the others pass without meta. \
                         distance is to the previous analysed buffer",
                    )
                    .minimum(1)
                    .default_value(DEFAULT_INTERVAL)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder("post-messages")
                    .nick("Post messages")
                    .blurb("Post a `dreamsim` element message on the bus for every analysed buffer")
                    .default_value(DEFAULT_POST_MESSAGES)
                    .mutable_playing()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut s = lock(&self.settings);
        match pspec.name() {
            "model-location" => s.model_location = path_from(value),
            "reference-location" => s.reference_location = path_from(value),
            "onnxruntime-location" => s.onnxruntime_location = path_from(value),
            "execution-provider" => s.execution_provider = value.get().expect("type checked"),
            "device-id" => s.device_id = value.get().expect("type checked"),
            "fp16" => s.fp16 = value.get().expect("type checked"),
            "engine-cache-location" => s.engine_cache_location = path_from(value),
            "threads" => s.threads = value.get().expect("type checked"),
            "interval" => s.interval = value.get().expect("type checked"),
            "post-messages" => s.post_messages = value.get().expect("type checked"),
            other => unreachable!("unknown property {other}"),
        }
        gst::info!(CAT, imp = self, "{} set to {:?}", pspec.name(), value);
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        if pspec.name() == "active-provider" {
            return lock(&self.active_provider).to_value();
        }
        let s = lock(&self.settings);
        match pspec.name() {
            "model-location" => path_value(&s.model_location),
            "reference-location" => path_value(&s.reference_location),
            "onnxruntime-location" => path_value(&s.onnxruntime_location),
            "execution-provider" => s.execution_provider.to_value(),
            "device-id" => s.device_id.to_value(),
            "fp16" => s.fp16.to_value(),
            "engine-cache-location" => path_value(&s.engine_cache_location),
            "threads" => s.threads.to_value(),
            "interval" => s.interval.to_value(),
            "post-messages" => s.post_messages.to_value(),
            other => unreachable!("unknown property {other}"),
        }
    }
}

impl GstObjectImpl for DreamSim {}

impl ElementImpl for DreamSim {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "DreamSim perceptual distance",
                "Filter/Analyzer/Video",
                "Attaches to each frame its DreamSim perceptual distance to the previous frame \
                 and to a reference image (DreamSimMeta, and `dreamsim` bus messages)",
                "gst-dreamsim developers",
            )
        });
        Some(&*METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let caps = gst_video::VideoCapsBuilder::new()
                .format_list(FORMATS.iter().copied())
                .build();
            vec![
                gst::PadTemplate::new(
                    "src",
                    gst::PadDirection::Src,
                    gst::PadPresence::Always,
                    &caps,
                )
                .expect("valid template"),
                gst::PadTemplate::new(
                    "sink",
                    gst::PadDirection::Sink,
                    gst::PadPresence::Always,
                    &caps,
                )
                .expect("valid template"),
            ]
        });
        TEMPLATES.as_ref()
    }
}

impl BaseTransformImpl for DreamSim {
    const MODE: gst_base::subclass::BaseTransformMode =
        gst_base::subclass::BaseTransformMode::AlwaysInPlace;
    // The element adds meta, so it must see every buffer.
    const PASSTHROUGH_ON_SAME_CAPS: bool = false;
    const TRANSFORM_IP_ON_PASSTHROUGH: bool = false;

    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let settings = lock(&self.settings).clone();
        let model = self.load_model(&settings)?;
        *lock(&self.active_provider) = Some(model.provider().as_str().to_owned());
        let model_kind = model.info().kind.clone();
        let mut state = State {
            engine: Engine::new(model),
            model_kind,
            info: None,
            previous: None,
            reference: None,
            reference_location: None,
            frames_seen: 0,
        };
        self.sync_reference(&mut state, &settings.reference_location)?;
        *lock(&self.state) = Some(state);
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        *lock(&self.state) = None;
        *lock(&self.active_provider) = None;
        Ok(())
    }

    fn sink_event(&self, event: gst::Event) -> bool {
        if let gst::EventView::FlushStop(_) = event.view() {
            if let Some(state) = lock(&self.state).as_mut() {
                gst::debug!(CAT, imp = self, "Flush: forgetting the previous frame");
                state.previous = None;
            }
        }
        self.parent_sink_event(event)
    }

    fn query(&self, direction: gst::PadDirection, query: &mut gst::QueryRef) -> bool {
        let handled = BaseTransformImplExt::parent_query(self, direction, query);
        if direction == gst::PadDirection::Sink {
            match query.view() {
                gst::QueryView::AcceptCaps(q) if !handled || !q.result() => {
                    self.explain_unsupported_caps(q.caps())
                }
                gst::QueryView::Caps(q) if q.result().is_some_and(|c| c.is_empty()) => {
                    if let Some(filter) = q.filter() {
                        self.explain_unsupported_caps(filter)
                    }
                }
                _ => {}
            }
        }
        handled
    }

    fn transform_ip(&self, buf: &mut gst::BufferRef) -> Result<gst::FlowSuccess, gst::FlowError> {
        let (interval, post_messages, reference_location) = {
            let s = lock(&self.settings);
            (s.interval, s.post_messages, s.reference_location.clone())
        };
        let mut guard = lock(&self.state);
        let state = guard.as_mut().ok_or(gst::FlowError::Flushing)?;
        let frame = state.frames_seen;
        state.frames_seen += 1;
        if frame % u64::from(interval.max(1)) != 0 {
            return Ok(gst::FlowSuccess::Ok);
        }

        let result = self
            .sync_reference(state, &reference_location)
            .and_then(|()| {
                let embedding = self.embed(state, buf)?;
                let distance_to =
                    |other: &Option<Embedding>| -> Result<Option<f64>, gst::ErrorMessage> {
                        other
                            .as_ref()
                            .map(|o| o.distance(&embedding))
                            .transpose()
                            .map_err(|e| error_message(&e))
                    };
                let meta = DreamSimMeta {
                    frame,
                    distance: distance_to(&state.previous)?,
                    reference_distance: distance_to(&state.reference)?,
                    embedding: embedding.as_slice().to_vec(),
                    model: state.model_kind.clone(),
                    scene: None,
                };
                state.previous = Some(embedding);
                Ok(meta)
            });
        drop(guard);
        let meta = result.map_err(|msg| {
            self.post_error_message(msg);
            gst::FlowError::Error
        })?;

        gst::trace!(
            CAT,
            imp = self,
            "frame {frame}: distance {:?}, reference {:?}",
            meta.distance,
            meta.reference_distance
        );
        meta.add_to(buf).map_err(|e| {
            gst::element_imp_error!(self, gst::CoreError::Failed, ("{}", e));
            gst::FlowError::Error
        })?;
        if post_messages {
            self.post_distance(buf, frame, &meta);
        }
        Ok(gst::FlowSuccess::Ok)
    }
}

impl VideoFilterImpl for DreamSim {
    fn set_info(
        &self,
        incaps: &gst::Caps,
        in_info: &gst_video::VideoInfo,
        _outcaps: &gst::Caps,
        _out_info: &gst_video::VideoInfo,
    ) -> Result<(), gst::LoggableError> {
        gst::debug!(CAT, imp = self, "Caps {incaps}");
        if pixel_format(in_info.format()).is_none() {
            return Err(gst::loggable_error!(
                CAT,
                "Unsupported format {}",
                in_info.format().to_str()
            ));
        }
        let mut guard = lock(&self.state);
        let state = guard
            .as_mut()
            .ok_or_else(|| gst::loggable_error!(CAT, "Caps before start"))?;
        state.info = Some(in_info.clone());
        Ok(())
    }
}
