//! The `dreamsim` element: a streaming thread that queues buffers and
//! events in order, and an inference thread (the src pad's task) that runs
//! the model on batches, attaches the meta and pushes everything downstream.
//! The streaming thread never waits on the model, only on a full queue.

use std::path::PathBuf;
use std::sync::{Arc, Condvar, LazyLock, Mutex};
use std::time::{Duration, Instant};

use dreamsim::{Embedding, Engine, Model};
use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use super::message::DreamSimMessage;
use super::queue::{ItemQueue, Next};
use super::video;
use crate::filter::lock;
use crate::meta::DreamSimMeta;
use crate::model_settings::{error_message, path_from, path_value, ModelSettings, PoolTicket};
use crate::timing::FrameTiming;

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "dreamsim",
        gst::DebugColorFlags::empty(),
        Some("DreamSim perceptual distance"),
    )
});

const DEFAULT_INTERVAL: u32 = 1;
const DEFAULT_POST_MESSAGES: bool = true;
const DEFAULT_BATCH_SIZE: u32 = 1;
const DEFAULT_MAX_LATENCY_MS: u32 = 500;
/// 0: `$GST_DREAMSIM_REFERENCE_MAX_PIXELS`, else the engine's default.
const DEFAULT_REFERENCE_MAX_PIXELS: u64 = 0;

#[derive(Debug, Clone)]
struct Settings {
    model: ModelSettings,
    reference_location: Option<PathBuf>,
    reference_max_pixels: u64,
    interval: u32,
    post_messages: bool,
    batch_size: u32,
    max_latency_ms: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            model: ModelSettings::default(),
            reference_location: None,
            reference_max_pixels: DEFAULT_REFERENCE_MAX_PIXELS,
            interval: DEFAULT_INTERVAL,
            post_messages: DEFAULT_POST_MESSAGES,
            batch_size: DEFAULT_BATCH_SIZE,
            max_latency_ms: DEFAULT_MAX_LATENCY_MS,
        }
    }
}

/// A queued buffer with what the inference thread needs to read it.
struct Queued {
    buffer: gst::Buffer,
    /// The caps in force when it arrived (caps may change mid-stream).
    info: Arc<gst_video::VideoInfo>,
    frame: u64,
}

/// Shared between the streaming thread and the inference thread.
struct Shared {
    queue: ItemQueue<Queued, gst::Event>,
    /// Set by flushes and deactivation: everything stops and nothing queues.
    flushing: bool,
    /// The last downstream flow result, returned to upstream.
    flow: Result<gst::FlowSuccess, gst::FlowError>,
}

impl Default for Shared {
    fn default() -> Self {
        Self {
            queue: ItemQueue::default(),
            flushing: true,
            flow: Err(gst::FlowError::Flushing),
        }
    }
}

/// Streaming-thread state.
#[derive(Default)]
struct Input {
    info: Option<Arc<gst_video::VideoInfo>>,
    /// Buffers received since start; the `frame` field of the meta.
    frames_seen: u64,
}

/// Inference-thread state, created at start.
struct Inference {
    engine: Engine,
    /// Hands the model back to the process's model pool at stop.
    pool_ticket: PoolTicket,
    model_kind: String,
    previous: Option<Embedding>,
    reference: Option<Embedding>,
    /// The reference file `reference` was computed from.
    reference_location: Option<PathBuf>,
}

pub struct DreamSim {
    sinkpad: gst::Pad,
    srcpad: gst::Pad,
    settings: Mutex<Settings>,
    shared: Mutex<Shared>,
    /// Signalled when items are queued, taken or the queue is flushed.
    cond: Condvar,
    input: Mutex<Input>,
    inference: Mutex<Option<Inference>>,
    active_provider: Mutex<Option<String>>,
    active_precision: Mutex<Option<String>>,
    /// How long the last start took to load the model (and compile it, for
    /// OpenVINO and TensorRT), so benchmarks can leave it out.
    load_time: Mutex<std::time::Duration>,
    /// Copied from the engine after each batch, so reading the property
    /// never waits for a model run.
    stats: Mutex<dreamsim::EngineStats>,
}

impl DreamSim {
    fn load_model(&self, settings: &Settings) -> Result<(Model, PoolTicket), gst::ErrorMessage> {
        settings.model.load(
            self.obj().upcast_ref(),
            *CAT,
            settings.batch_size.max(1) as usize,
        )
    }

    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let settings = lock(&self.settings).clone();
        let started = std::time::Instant::now();
        let (model, pool_ticket) = self.load_model(&settings)?;
        *lock(&self.load_time) = started.elapsed();
        *lock(&self.active_provider) = Some(model.provider().as_str().to_owned());
        *lock(&self.active_precision) = Some(model.compute_precision().as_str().to_owned());
        let model_kind = model.info().kind.clone();
        let engine = Engine::new(model);
        match engine.cpu_preprocessing_reason() {
            None => gst::info!(
                CAT,
                imp = self,
                "Preprocessing on {}",
                engine.preprocessing_device()
            ),
            Some(why) => gst::info!(CAT, imp = self, "Preprocessing on the CPU: {why}"),
        }
        *lock(&self.stats) = dreamsim::EngineStats::default();
        let mut inference = Inference {
            engine,
            pool_ticket,
            model_kind,
            previous: None,
            reference: None,
            reference_location: None,
        };
        self.sync_reference(
            &mut inference,
            &settings.reference_location,
            settings.reference_max_pixels,
        )?;
        *lock(&self.inference) = Some(inference);
        *lock(&self.input) = Input::default();
        Ok(())
    }

    fn stop(&self) {
        let stopped = lock(&self.inference).take();
        if let Some(inference) = stopped {
            inference
                .pool_ticket
                .give_back(inference.engine.into_model());
        }
        *lock(&self.input) = Input::default();
        *lock(&self.active_provider) = None;
        *lock(&self.active_precision) = None;
        lock(&self.shared).queue.clear();
    }

    /// Makes the reference embedding match the `reference-location` setting.
    fn sync_reference(
        &self,
        state: &mut Inference,
        wanted: &Option<PathBuf>,
        max_pixels: u64,
    ) -> Result<(), gst::ErrorMessage> {
        if &state.reference_location == wanted {
            return Ok(());
        }
        state.reference = match wanted {
            Some(path) => {
                let e = dreamsim::ImageLimits::resolve(max_pixels)
                    .and_then(|limits| state.engine.embed_image_file_with_limits(path, &limits))
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

    // ---- streaming thread ----

    fn sink_chain(
        &self,
        _pad: &gst::Pad,
        buffer: gst::Buffer,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let (interval, batch_size) = {
            let s = lock(&self.settings);
            (u64::from(s.interval.max(1)), s.batch_size.max(1) as usize)
        };
        let (info, frame) = {
            let mut input = lock(&self.input);
            let info = input.info.clone().ok_or_else(|| {
                gst::element_imp_error!(
                    self,
                    gst::CoreError::Negotiation,
                    ("Buffer received before caps")
                );
                gst::FlowError::NotNegotiated
            })?;
            let frame = input.frames_seen;
            input.frames_seen += 1;
            (info, frame)
        };

        let mut shared = lock(&self.shared);
        // Room for one batch waiting while another runs: enough to keep the
        // model busy without holding more upstream buffers than needed. With
        // an interval, a batch spans `interval` buffers per analysed frame.
        let capacity = batch_size * interval as usize;
        while !shared.flushing && shared.flow.is_ok() && shared.queue.buffers() >= capacity {
            shared = self.cond.wait(shared).unwrap_or_else(|e| e.into_inner());
        }
        if shared.flushing {
            return Err(gst::FlowError::Flushing);
        }
        shared.flow?;
        shared.queue.push_buffer(
            Queued {
                buffer,
                info,
                frame,
            },
            frame % interval == 0,
            Instant::now(),
        );
        self.cond.notify_all();
        Ok(gst::FlowSuccess::Ok)
    }

    fn sink_event(&self, pad: &gst::Pad, event: gst::Event) -> bool {
        use gst::EventView;
        gst::log!(CAT, obj = pad, "Handling event {event:?}");
        match event.view() {
            EventView::FlushStart(_) => {
                {
                    let mut shared = lock(&self.shared);
                    shared.flushing = true;
                    shared.flow = Err(gst::FlowError::Flushing);
                    shared.queue.clear();
                    self.cond.notify_all();
                }
                let ret = self.srcpad.push_event(event);
                // Waits for the batch in flight; its buffers are then refused
                // downstream and dropped.
                let _ = self.srcpad.pause_task();
                ret
            }
            EventView::FlushStop(_) => {
                if let Some(state) = lock(&self.inference).as_mut() {
                    gst::debug!(CAT, imp = self, "Flush: forgetting the previous frame");
                    state.previous = None;
                }
                let ret = self.srcpad.push_event(event);
                if self.srcpad.mode() == gst::PadMode::Push {
                    self.start_task();
                }
                ret
            }
            EventView::Caps(c) => {
                let caps = c.caps();
                match gst_video::VideoInfo::from_caps(caps) {
                    Ok(info) if video::pixel_format(info.format()).is_some() => {
                        gst::debug!(CAT, imp = self, "Caps {caps}");
                        lock(&self.input).info = Some(Arc::new(info));
                        self.queue_event(event)
                    }
                    _ => {
                        gst::element_imp_error!(
                            self,
                            gst::CoreError::Negotiation,
                            (
                                "{}",
                                video::unsupported_caps_message(caps)
                                    .unwrap_or_else(|| format!("Unusable caps {caps}"))
                            )
                        );
                        false
                    }
                }
            }
            _ if event.is_serialized() => self.queue_event(event),
            _ => gst::Pad::event_default(pad, Some(&*self.obj()), event),
        }
    }

    /// Queues a serialized event behind the buffers that came before it.
    fn queue_event(&self, event: gst::Event) -> bool {
        let mut shared = lock(&self.shared);
        if shared.flushing {
            return false;
        }
        if event.type_() == gst::EventType::Eos {
            // Like every serialized event, EOS leaves from the task after the
            // buffers queued before it (a partial batch runs first).
            gst::debug!(
                CAT,
                imp = self,
                "EOS queued behind {} buffers",
                shared.queue.buffers()
            );
        }
        shared.queue.push_event(event);
        self.cond.notify_all();
        true
    }

    fn sink_query(&self, pad: &gst::Pad, query: &mut gst::QueryRef) -> bool {
        let handled = gst::Pad::query_default(pad, Some(&*self.obj()), query);
        // An unsupported format never reaches the caps event: negotiation
        // just fails with `not-negotiated`. Say why, and what to do.
        let explanation = match query.view() {
            gst::QueryView::AcceptCaps(q) if !handled || !q.result() => {
                video::unsupported_caps_message(q.caps())
            }
            gst::QueryView::Caps(q) if q.result().is_some_and(|c| c.is_empty()) => {
                q.filter().and_then(video::unsupported_caps_message)
            }
            _ => None,
        };
        if let Some(message) = explanation {
            gst::element_imp_error!(self, gst::CoreError::Negotiation, ("{}", message));
        }
        handled
    }

    // ---- src side ----

    fn src_query(&self, pad: &gst::Pad, query: &mut gst::QueryRef) -> bool {
        if let gst::QueryViewMut::Latency(q) = query.view_mut() {
            let mut upstream = gst::query::Latency::new();
            if !self.sinkpad.peer_query(&mut upstream) {
                return false;
            }
            let (live, min, max) = upstream.result();
            let ours = self.added_latency();
            gst::debug!(CAT, imp = self, "Adding {ours} of latency to {min}");
            q.set(live, min + ours, max.map(|m| m + ours));
            return true;
        }
        gst::Pad::query_default(pad, Some(&*self.obj()), query)
    }

    /// The longest a buffer waits for its batch to fill.
    fn added_latency(&self) -> gst::ClockTime {
        let s = lock(&self.settings);
        if s.batch_size > 1 {
            gst::ClockTime::from_mseconds(u64::from(s.max_latency_ms))
        } else {
            gst::ClockTime::ZERO
        }
    }

    fn src_activate_mode(
        &self,
        mode: gst::PadMode,
        active: bool,
    ) -> Result<(), gst::LoggableError> {
        if mode != gst::PadMode::Push {
            return Err(gst::loggable_error!(CAT, "Only push mode is supported"));
        }
        if active {
            self.start_task();
        } else {
            {
                let mut shared = lock(&self.shared);
                shared.flushing = true;
                shared.flow = Err(gst::FlowError::Flushing);
                self.cond.notify_all();
            }
            self.srcpad
                .stop_task()
                .map_err(|e| gst::loggable_error!(CAT, "Cannot stop task: {e}"))?;
            lock(&self.shared).queue.clear();
        }
        Ok(())
    }

    fn start_task(&self) {
        {
            let mut shared = lock(&self.shared);
            shared.flushing = false;
            shared.flow = Ok(gst::FlowSuccess::Ok);
        }
        let this = self.downgrade();
        if let Err(e) = self.srcpad.start_task(move || {
            if let Some(this) = this.upgrade() {
                this.src_loop();
            }
        }) {
            gst::error!(CAT, imp = self, "Cannot start the inference task: {e}");
        }
    }

    /// One iteration of the inference thread: push one event or run one batch.
    fn src_loop(&self) {
        let (batch_size, max_latency) = {
            let s = lock(&self.settings);
            (
                s.batch_size.max(1) as usize,
                Duration::from_millis(u64::from(s.max_latency_ms)),
            )
        };
        let next = {
            let mut shared = lock(&self.shared);
            loop {
                if shared.flushing {
                    drop(shared);
                    let _ = self.srcpad.pause_task();
                    return;
                }
                match shared.queue.next(batch_size, max_latency, Instant::now()) {
                    Next::Idle => {
                        shared = self.cond.wait(shared).unwrap_or_else(|e| e.into_inner());
                    }
                    Next::WaitUntil(deadline) => {
                        let timeout = deadline.saturating_duration_since(Instant::now());
                        shared = self
                            .cond
                            .wait_timeout(shared, timeout)
                            .unwrap_or_else(|e| e.into_inner())
                            .0;
                    }
                    next => break next,
                }
            }
        };
        self.cond.notify_all();

        let flow = match next {
            Next::Event(event) => {
                let is_eos = event.type_() == gst::EventType::Eos;
                if !self.srcpad.push_event(event) && is_eos {
                    gst::debug!(CAT, imp = self, "EOS was not handled downstream");
                }
                if is_eos {
                    Err(gst::FlowError::Eos)
                } else {
                    Ok(gst::FlowSuccess::Ok)
                }
            }
            Next::Batch(items) => self.run_batch(items),
            Next::Idle | Next::WaitUntil(_) => unreachable!("handled above"),
        };

        if let Err(err) = flow {
            let mut shared = lock(&self.shared);
            if !shared.flushing {
                shared.flow = Err(err);
            }
            self.cond.notify_all();
            drop(shared);
            if err != gst::FlowError::Flushing && err != gst::FlowError::Eos {
                gst::debug!(CAT, imp = self, "Pausing: {err:?}");
                // FlowError::Error was posted by whoever returned it.
                if err != gst::FlowError::Error {
                    gst::element_imp_error!(
                        self,
                        gst::StreamError::Failed,
                        ("Internal data stream error."),
                        ["streaming stopped, reason {err:?}"]
                    );
                }
            }
            let _ = self.srcpad.pause_task();
        }
    }

    /// Embeds the analysed buffers of a batch, attaches the meta, posts the
    /// messages and pushes every buffer downstream in order.
    fn run_batch(&self, items: Vec<(Queued, bool)>) -> Result<gst::FlowSuccess, gst::FlowError> {
        let (post_messages, reference_location, reference_max_pixels) = {
            let s = lock(&self.settings);
            (
                s.post_messages,
                s.reference_location.clone(),
                s.reference_max_pixels,
            )
        };
        let metas = {
            let mut guard = lock(&self.inference);
            let state = guard.as_mut().ok_or(gst::FlowError::Flushing)?;
            self.analyse(state, &items, &reference_location, reference_max_pixels)
                .map_err(|msg| {
                    self.post_error_message(msg);
                    gst::FlowError::Error
                })?
        };

        let mut metas = metas.into_iter();
        for (queued, analyse) in items {
            let mut buffer = queued.buffer;
            if analyse {
                let meta = metas.next().expect("one meta per analysed buffer");
                meta.add_to(buffer.make_mut()).map_err(|e| {
                    gst::element_imp_error!(self, gst::CoreError::Failed, ("{}", e));
                    gst::FlowError::Error
                })?;
                if post_messages {
                    self.post_distance(&buffer, &meta);
                }
            }
            self.srcpad.push(buffer)?;
        }
        Ok(gst::FlowSuccess::Ok)
    }

    fn analyse(
        &self,
        state: &mut Inference,
        items: &[(Queued, bool)],
        reference_location: &Option<PathBuf>,
        reference_max_pixels: u64,
    ) -> Result<Vec<DreamSimMeta>, gst::ErrorMessage> {
        self.sync_reference(state, reference_location, reference_max_pixels)?;
        let analysed: Vec<&Queued> = items.iter().filter(|(_, a)| *a).map(|(q, _)| q).collect();
        if analysed.is_empty() {
            return Ok(Vec::new());
        }
        let mapped = analysed
            .iter()
            .map(|q| {
                gst_video::VideoFrameRef::from_buffer_ref_readable(q.buffer.as_ref(), &q.info)
                    .map_err(|_| {
                        gst::error_msg!(
                            gst::StreamError::Format,
                            (
                                "Buffer of {} bytes does not hold a {}x{} {} frame",
                                q.buffer.size(),
                                q.info.width(),
                                q.info.height(),
                                q.info.format().to_str()
                            )
                        )
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let frames = mapped
            .iter()
            .map(video::engine_frame)
            .collect::<Result<Vec<_>, _>>()?;
        let embeddings = state
            .engine
            .embed_frames(&frames)
            .map_err(|e| error_message(&e))?;
        *lock(&self.stats) = state.engine.stats();
        drop(frames);
        drop(mapped);

        let distance_to = |other: Option<&Embedding>, e: &Embedding| {
            other
                .map(|o| o.distance(e))
                .transpose()
                .map_err(|e| error_message(&e))
        };
        let mut metas = Vec::with_capacity(embeddings.len());
        for (queued, embedding) in analysed.iter().zip(embeddings) {
            metas.push(DreamSimMeta {
                frame: queued.frame,
                distance: distance_to(state.previous.as_ref(), &embedding)?,
                reference_distance: distance_to(state.reference.as_ref(), &embedding)?,
                embedding: embedding.as_slice().to_vec(),
                model: state.model_kind.clone(),
                scene: None,
                matches: Vec::new(),
            });
            state.previous = Some(embedding);
        }
        Ok(metas)
    }

    fn post_distance(&self, buf: &gst::BufferRef, meta: &DreamSimMeta) {
        let segment = self.srcpad.sticky_event::<gst::event::Segment>(0);
        let segment = segment
            .as_ref()
            .and_then(|s| s.segment().downcast_ref::<gst::ClockTime>().cloned());
        let msg = DreamSimMessage {
            timing: FrameTiming::of(buf, segment.as_ref()),
            frame: meta.frame,
            distance: meta.distance,
            reference_distance: meta.reference_distance,
        };
        gst::trace!(CAT, imp = self, "{msg:?}");
        let _ = self.obj().post_message(msg.to_message(&*self.obj()));
    }
}

#[glib::object_subclass]
impl ObjectSubclass for DreamSim {
    const NAME: &'static str = "GstDreamSim";
    type Type = super::DreamSim;
    type ParentType = gst::Element;

    fn with_class(klass: &Self::Class) -> Self {
        let sinkpad = gst::Pad::builder_from_template(&klass.pad_template("sink").unwrap())
            .chain_function(|pad, parent, buffer| {
                DreamSim::catch_panic_pad_function(
                    parent,
                    || Err(gst::FlowError::Error),
                    |imp| imp.sink_chain(pad, buffer),
                )
            })
            .event_function(|pad, parent, event| {
                DreamSim::catch_panic_pad_function(
                    parent,
                    || false,
                    |imp| imp.sink_event(pad, event),
                )
            })
            .query_function(|pad, parent, query| {
                DreamSim::catch_panic_pad_function(
                    parent,
                    || false,
                    |imp| imp.sink_query(pad, query),
                )
            })
            .flags(gst::PadFlags::PROXY_CAPS | gst::PadFlags::PROXY_ALLOCATION)
            .build();
        let srcpad = gst::Pad::builder_from_template(&klass.pad_template("src").unwrap())
            .query_function(|pad, parent, query| {
                DreamSim::catch_panic_pad_function(
                    parent,
                    || false,
                    |imp| imp.src_query(pad, query),
                )
            })
            .activatemode_function(|_pad, parent, mode, active| {
                DreamSim::catch_panic_pad_function(
                    parent,
                    || Err(gst::loggable_error!(CAT, "Panic activating src pad")),
                    |imp| imp.src_activate_mode(mode, active),
                )
            })
            .flags(gst::PadFlags::PROXY_CAPS | gst::PadFlags::PROXY_ALLOCATION)
            .build();
        Self {
            sinkpad,
            srcpad,
            settings: Mutex::default(),
            shared: Mutex::default(),
            cond: Condvar::new(),
            input: Mutex::default(),
            inference: Mutex::default(),
            active_provider: Mutex::default(),
            active_precision: Mutex::default(),
            load_time: Mutex::default(),
            stats: Mutex::default(),
        }
    }
}

impl ObjectImpl for DreamSim {
    fn constructed(&self) {
        self.parent_constructed();
        let obj = self.obj();
        obj.add_pad(&self.sinkpad).unwrap();
        obj.add_pad(&self.srcpad).unwrap();
    }

    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            let mut properties = ModelSettings::properties();
            properties.extend([
                glib::ParamSpecString::builder("reference-location")
                    .nick("Reference image")
                    .blurb(
                        "PNG/JPEG/BMP/WebP image; each analysed frame gets its distance to it \
                         (reference-distance). Can be changed while playing",
                    )
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt64::builder("reference-max-pixels")
                    .nick("Reference image pixel limit")
                    .blurb(
                        "Largest reference image (width x height) decoded; a larger one is an \
                         error that says its size. 0: $GST_DREAMSIM_REFERENCE_MAX_PIXELS if set, \
                         else 67108864 (8192 x 8192)",
                    )
                    .default_value(DEFAULT_REFERENCE_MAX_PIXELS)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecString::builder("active-provider")
                    .nick("Active provider")
                    .blurb("The execution provider actually running the model (NULL until started)")
                    .read_only()
                    .build(),
                glib::ParamSpecString::builder("active-precision")
                    .nick("Active precision")
                    .blurb(
                        "The arithmetic the model actually runs in: fp32, bf16 (OpenVINO on \
                         AMX / AVX512-BF16), fp16 (TensorRT with fp16), tf32 (TensorRT's fp32 \
                         engines) or int8 (the int8 model beside the fp32 one, on the CPU) \
                         (NULL until started)",
                    )
                    .read_only()
                    .build(),
                glib::ParamSpecBoxed::builder::<gst::Structure>("stats")
                    .nick("Statistics")
                    .blurb(
                        "Since start: frames, inferred-frames (exact repeats of the previous \
                         frame reuse its embedding), batches, preprocess-time and \
                         inference-time (ns); load-time (ns): loading the model at start",
                    )
                    .read_only()
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
                glib::ParamSpecUInt::builder("batch-size")
                    .nick("Batch size")
                    .blurb(
                        "Analysed frames run through the model together. A partial batch runs \
                         at EOS, flush, caps change and after max-latency. The element holds up \
                         to 2 x batch-size x interval buffers. At most 256: beyond that the \
                         model's memory grows (about 10 MB of activations per frame and \
                         branch) and no GPU runs faster",
                    )
                    .minimum(1)
                    .maximum(dreamsim::limits::MAX_BATCH_SIZE as u32)
                    .default_value(DEFAULT_BATCH_SIZE)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("max-latency")
                    .nick("Maximum latency")
                    .blurb(
                        "Milliseconds the first frame of a batch may wait for the batch to fill \
                         (reported in latency queries when batch-size > 1)",
                    )
                    .default_value(DEFAULT_MAX_LATENCY_MS)
                    .mutable_ready()
                    .build(),
            ]);
            properties
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut s = lock(&self.settings);
        match pspec.name() {
            name if s.model.set(name, value) => {}
            "reference-location" => s.reference_location = path_from(value),
            "reference-max-pixels" => s.reference_max_pixels = value.get().expect("type checked"),
            "interval" => s.interval = value.get().expect("type checked"),
            "post-messages" => s.post_messages = value.get().expect("type checked"),
            "batch-size" => s.batch_size = value.get().expect("type checked"),
            "max-latency" => s.max_latency_ms = value.get().expect("type checked"),
            other => unreachable!("unknown property {other}"),
        }
        gst::info!(CAT, imp = self, "{} set to {:?}", pspec.name(), value);
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        match pspec.name() {
            "active-provider" => return lock(&self.active_provider).to_value(),
            "active-precision" => return lock(&self.active_precision).to_value(),
            "stats" => {
                let st = *lock(&self.stats);
                return gst::Structure::builder("dreamsim-stats")
                    .field("frames", st.frames)
                    .field("inferred-frames", st.inferred_frames)
                    .field("batches", st.batches)
                    .field("preprocess-time", st.preprocess.as_nanos() as u64)
                    .field("inference-time", st.inference.as_nanos() as u64)
                    .field("load-time", lock(&self.load_time).as_nanos() as u64)
                    .build()
                    .to_value();
            }
            _ => {}
        }
        let s = lock(&self.settings);
        if let Some(value) = s.model.get(pspec.name()) {
            return value;
        }
        match pspec.name() {
            "reference-location" => path_value(&s.reference_location),
            "reference-max-pixels" => s.reference_max_pixels.to_value(),
            "interval" => s.interval.to_value(),
            "post-messages" => s.post_messages.to_value(),
            "batch-size" => s.batch_size.to_value(),
            "max-latency" => s.max_latency_ms.to_value(),
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
            let caps = video::caps();
            crate::pads::src_and_sink_templates(&caps)
        });
        TEMPLATES.as_ref()
    }

    fn change_state(
        &self,
        transition: gst::StateChange,
    ) -> Result<gst::StateChangeSuccess, gst::StateChangeError> {
        if transition == gst::StateChange::ReadyToPaused {
            self.start().map_err(|msg| {
                self.post_error_message(msg);
                gst::StateChangeError
            })?;
        }
        let ret = self.parent_change_state(transition);
        if matches!(
            transition,
            gst::StateChange::PausedToReady | gst::StateChange::ReadyToNull
        ) || (transition == gst::StateChange::ReadyToPaused && ret.is_err())
        {
            self.stop();
        }
        ret
    }
}
