//! The `dreamsim` element: a streaming thread that queues buffers and
//! events in order, and an inference thread (the src pad's task) that runs
//! the model on batches, attaches the meta and pushes everything downstream.
//! The streaming thread never waits on the model, only on a full queue.

use super::property;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, LazyLock, Mutex};
use std::time::{Duration, Instant};

use dreamsim::change::{ChangeMeasure, ChangeTest, Decision};
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

pub const DEFAULT_INTERVAL: u32 = 1;
const DEFAULT_POST_MESSAGES: bool = true;
pub const DEFAULT_BATCH_SIZE: u32 = 1;
const DEFAULT_MAX_LATENCY_MS: u32 = 500;
/// 0: `$GST_DREAMSIM_REFERENCE_MAX_PIXELS`, else the engine's default.
const DEFAULT_REFERENCE_MAX_PIXELS: u64 = 0;
/// 0: the change test is off, every selected frame is analysed.
const DEFAULT_CHANGE_THRESHOLD: f64 = 0.0;
/// About a second of video at 25-30 fps: a stream is analysed at least that
/// often whatever the change test says.
const DEFAULT_MAX_REUSE: u32 = 25;
/// Two batches of 64 RGBA 1080p frames (8.3 MB each) fit; 8K frames at
/// batch-size=256 held 12 GB without a bound.
const DEFAULT_MAX_QUEUED_BYTES: u64 = 1 << 30;

#[derive(Debug, Clone)]
struct Settings {
    model: ModelSettings,
    reference_location: Option<PathBuf>,
    reference_max_pixels: u64,
    interval: u32,
    post_messages: bool,
    batch_size: u32,
    max_latency_ms: u32,
    change_threshold: f64,
    max_reuse: u32,
    max_queued_bytes: u64,
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
            change_threshold: DEFAULT_CHANGE_THRESHOLD,
            max_reuse: DEFAULT_MAX_REUSE,
            max_queued_bytes: DEFAULT_MAX_QUEUED_BYTES,
        }
    }
}

/// What happens to a buffer, decided by the streaming thread when it
/// arrives, so the decisions depend on the frames alone, never on timing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Left out by `interval`: passes without meta.
    Skip,
    /// The model runs on it.
    Analyse,
    /// The change test found it within `change-threshold` of the last
    /// analysed frame: it carries that frame's embedding.
    Reuse,
}

/// A queued buffer with what the inference thread needs to read it.
struct Queued {
    buffer: gst::Buffer,
    /// The caps in force when it arrived (caps may change mid-stream).
    info: Arc<gst_video::VideoInfo>,
    frame: u64,
    role: Role,
    /// Counted against `max-queued-bytes` until the buffer leaves.
    bytes: u64,
}

/// Shared between the streaming thread and the inference thread.
struct Shared {
    queue: ItemQueue<Queued, gst::Event>,
    /// Set by flushes and deactivation: everything stops and nothing queues.
    flushing: bool,
    /// The last downstream flow result, returned to upstream.
    flow: Result<gst::FlowSuccess, gst::FlowError>,
    /// Bytes of the batch the inference thread is running (taken out of
    /// the queue, not yet pushed).
    in_flight_bytes: u64,
    /// The streaming thread waits for bytes to be released: the inference
    /// thread takes a partial batch at once.
    waiting_for_room: bool,
    /// The most bytes held at once since start (`stats`).
    peak_bytes: u64,
    /// The inference thread took an event or a batch and has not finished
    /// pushing it: the streaming thread must not push past it.
    task_busy: bool,
}

impl Shared {
    /// Bytes of the buffers the element holds: queued and in flight.
    fn held_bytes(&self) -> u64 {
        self.queue.bytes() + self.in_flight_bytes
    }
}

impl Default for Shared {
    fn default() -> Self {
        Self {
            queue: ItemQueue::default(),
            flushing: true,
            flow: Err(gst::FlowError::Flushing),
            in_flight_bytes: 0,
            waiting_for_room: false,
            peak_bytes: 0,
            task_busy: false,
        }
    }
}

/// Streaming-thread state.
struct Input {
    info: Option<Arc<gst_video::VideoInfo>>,
    /// Buffers received since start; the `frame` field of the meta.
    frames_seen: u64,
    /// The change test's state: the last analysed frame's thumbnail.
    change: ChangeTest,
}

impl Default for Input {
    fn default() -> Self {
        Self {
            info: None,
            frames_seen: 0,
            change: ChangeTest::new(
                ChangeMeasure::DEFAULT,
                DEFAULT_CHANGE_THRESHOLD,
                DEFAULT_MAX_REUSE,
            ),
        }
    }
}

/// Frames with meta since start, by where their embedding came from.
#[derive(Debug, Default, Clone, Copy)]
struct ChangeStats {
    analysed: u64,
    reused: u64,
}

/// Inference-thread state, created at start.
struct Inference {
    engine: Engine,
    /// Hands the model back to the process's model pool at stop.
    pool_ticket: PoolTicket,
    model_kind: String,
    /// The last analysed frame's embedding (and so of the frames that
    /// reused it) and its frame number.
    previous: Option<(Embedding, u64)>,
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
    change_stats: Mutex<ChangeStats>,
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
        *lock(&self.change_stats) = ChangeStats::default();
        lock(&self.shared).peak_bytes = 0;
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
        let (interval, batch_size, threshold, max_reuse, max_bytes) = {
            let s = lock(&self.settings);
            (
                u64::from(s.interval.max(1)),
                s.batch_size.max(1) as usize,
                s.change_threshold,
                s.max_reuse,
                s.max_queued_bytes.max(1),
            )
        };
        let (info, frame, role) = {
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
            let role = if !frame.is_multiple_of(interval) {
                Role::Skip
            } else {
                self.change_test(&mut input.change, &buffer, &info, threshold, max_reuse)
            };
            (info, frame, role)
        };
        let buffer = if role == Role::Analyse {
            buffer
        } else {
            match self.push_without_the_model(buffer, frame, role) {
                Ok(flow) => return flow,
                Err(buffer) => buffer,
            }
        };

        let bytes = buffer.size() as u64;
        let mut shared = lock(&self.shared);
        // Room for one batch waiting while another runs: enough to keep the
        // model busy without holding more upstream buffers than needed. With
        // an interval, a batch spans `interval` buffers per analysed frame.
        // Reused frames ride along like skipped ones: with the change test
        // a batch may span more buffers than this, and waits for room.
        let capacity = batch_size * interval as usize;
        loop {
            if shared.flushing || shared.flow.is_err() {
                break;
            }
            // The byte bound: wait (backpressure) until the buffers held fit,
            // but always take one buffer when nothing is held, however large.
            let over_bytes = shared.held_bytes() > 0 && shared.held_bytes() + bytes > max_bytes;
            if !over_bytes && shared.queue.buffers() < capacity {
                break;
            }
            // Without the change test a full queue always holds a full
            // batch; with it (reused frames ride along) or at the byte bound
            // it may not: the inference thread then takes what there is
            // rather than waiting for max-latency.
            if !shared.waiting_for_room {
                if over_bytes {
                    gst::debug!(
                        CAT,
                        imp = self,
                        "{} bytes held, {bytes} more would pass max-queued-bytes={max_bytes}: \
                         waiting",
                        shared.held_bytes()
                    );
                }
                shared.waiting_for_room = true;
                self.cond.notify_all();
            }
            shared = self.cond.wait(shared).unwrap_or_else(|e| e.into_inner());
        }
        shared.waiting_for_room = false;
        if shared.flushing {
            return Err(gst::FlowError::Flushing);
        }
        shared.flow?;
        shared.queue.push_buffer(
            Queued {
                buffer,
                info,
                frame,
                role,
                bytes,
            },
            role == Role::Analyse,
            bytes,
            Instant::now(),
        );
        shared.peak_bytes = shared.peak_bytes.max(shared.held_bytes());
        self.cond.notify_all();
        Ok(gst::FlowSuccess::Ok)
    }

    /// A frame the model does not run on (skipped by `interval`, or reused
    /// by the change test) goes downstream from the streaming thread itself
    /// when nothing is queued or being pushed by the inference thread, so
    /// it costs no hand-over between the two threads (two thread wake-ups
    /// per frame, which cost more than the frame on a busy machine). Order
    /// is kept: only this thread queues, and with nothing queued or in
    /// flight the inference thread pushes nothing. Gives the buffer back
    /// when it must go through the queue: something is queued or in flight,
    /// or a reused frame has no embedding to reuse yet, or the reference
    /// changed (the inference thread embeds the new one first).
    fn push_without_the_model(
        &self,
        mut buffer: gst::Buffer,
        frame: u64,
        role: Role,
    ) -> Result<Result<gst::FlowSuccess, gst::FlowError>, gst::Buffer> {
        {
            let shared = lock(&self.shared);
            if shared.flushing
                || shared.flow.is_err()
                || !shared.queue.is_empty()
                || shared.task_busy
            {
                return Err(buffer);
            }
        }
        let meta = if role == Role::Reuse {
            let (reference_location, post_messages) = {
                let s = lock(&self.settings);
                (s.reference_location.clone(), s.post_messages)
            };
            let meta = {
                let guard = lock(&self.inference);
                match guard.as_ref() {
                    Some(state)
                        if state.previous.is_some()
                            && state.reference_location == reference_location =>
                    {
                        reused_meta(state, frame)
                    }
                    _ => return Err(buffer),
                }
            };
            let meta = match meta {
                Ok(meta) => meta,
                Err(msg) => {
                    self.post_error_message(msg);
                    return Ok(Err(gst::FlowError::Error));
                }
            };
            if let Err(e) = meta.add_to(buffer.make_mut()) {
                gst::element_imp_error!(self, gst::CoreError::Failed, ("{}", e));
                return Ok(Err(gst::FlowError::Error));
            }
            lock(&self.change_stats).reused += 1;
            post_messages.then_some(meta)
        } else {
            None
        };
        if let Some(meta) = meta {
            self.post_distance(&buffer, &meta);
        }
        let flow = self.srcpad.push(buffer);
        if let Err(err) = flow {
            let mut shared = lock(&self.shared);
            if !shared.flushing {
                shared.flow = Err(err);
            }
            self.cond.notify_all();
        }
        Ok(flow)
    }

    /// Runs the change test on a frame `interval` selected: analyse it, or
    /// reuse the last analysed frame's embedding.
    fn change_test(
        &self,
        test: &mut ChangeTest,
        buffer: &gst::Buffer,
        info: &gst_video::VideoInfo,
        threshold: f64,
        max_reuse: u32,
    ) -> Role {
        test.configure(threshold, max_reuse);
        if !test.enabled() {
            // Off: forget the last thumbnail, so turning the test back on
            // compares with a frame analysed after that.
            test.reset();
            return Role::Analyse;
        }
        let Some(decision) =
            video::with_engine_frame(buffer.as_ref(), info, |frame| test.decide_frame(frame))
        else {
            // The inference thread reports the unreadable buffer.
            return Role::Analyse;
        };
        match decision {
            Decision::Analyse { change } => {
                gst::trace!(CAT, imp = self, "Change {change:?}: analysed");
                Role::Analyse
            }
            Decision::Reuse { change } => {
                gst::trace!(CAT, imp = self, "Change {change}: reused");
                Role::Reuse
            }
        }
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
                lock(&self.input).change.reset();
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
                        let mut input = lock(&self.input);
                        input.info = Some(Arc::new(info));
                        // New caps: the next frame is analysed.
                        input.change.reset();
                        drop(input);
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
                let room_needed = shared.waiting_for_room;
                match shared
                    .queue
                    .next(batch_size, max_latency, Instant::now(), room_needed)
                {
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
                    Next::Batch(items) => {
                        shared.in_flight_bytes += items.iter().map(|(q, _)| q.bytes).sum::<u64>();
                        shared.task_busy = true;
                        break Next::Batch(items);
                    }
                    next => {
                        shared.task_busy = true;
                        break next;
                    }
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
            Next::Batch(items) => {
                let bytes = items.iter().map(|(q, _)| q.bytes).sum::<u64>();
                let flow = self.run_batch(items);
                // Pushed or dropped, the batch's buffers are no longer held.
                let mut shared = lock(&self.shared);
                shared.in_flight_bytes = shared.in_flight_bytes.saturating_sub(bytes);
                self.cond.notify_all();
                flow
            }
            Next::Idle | Next::WaitUntil(_) => unreachable!("handled above"),
        };
        lock(&self.shared).task_busy = false;

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

        // One meta per buffer that is not skipped, in order.
        let mut metas = metas.into_iter();
        for (queued, _) in items {
            let mut buffer = queued.buffer;
            if queued.role != Role::Skip {
                let meta = metas
                    .next()
                    .expect("one meta per analysed or reused buffer");
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

    /// The metas of the batch's analysed and reused buffers, in order.
    fn analyse(
        &self,
        state: &mut Inference,
        items: &[(Queued, bool)],
        reference_location: &Option<PathBuf>,
        reference_max_pixels: u64,
    ) -> Result<Vec<DreamSimMeta>, gst::ErrorMessage> {
        self.sync_reference(state, reference_location, reference_max_pixels)?;
        // Which buffers the model runs on: the analysed ones, and a reused
        // one with no analysed frame before it (after a flush the
        // inference thread forgets the last embedding before the streaming
        // thread forgets its thumbnail): it is then analysed, and says so.
        let mut have_previous = state.previous.is_some();
        let run: Vec<bool> = items
            .iter()
            .map(|(q, _)| match q.role {
                Role::Skip => false,
                Role::Analyse => {
                    have_previous = true;
                    true
                }
                Role::Reuse => !std::mem::replace(&mut have_previous, true),
            })
            .collect();
        let analysed: Vec<&Queued> = items
            .iter()
            .zip(&run)
            .filter(|(_, r)| **r)
            .map(|((q, _), _)| q)
            .collect();
        let embeddings = if analysed.is_empty() {
            Vec::new()
        } else {
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
            embeddings
        };

        let distance_to = |other: Option<&Embedding>, e: &Embedding| {
            other
                .map(|o| o.distance(e))
                .transpose()
                .map_err(|e| error_message(&e))
        };
        let mut embeddings = embeddings.into_iter();
        let mut metas = Vec::with_capacity(items.len());
        let mut counts = ChangeStats::default();
        for ((queued, _), run) in items.iter().zip(run) {
            if queued.role == Role::Skip {
                continue;
            }
            let meta = if run {
                let embedding = embeddings.next().expect("one embedding per analysed frame");
                let meta = DreamSimMeta {
                    frame: queued.frame,
                    distance: distance_to(state.previous.as_ref().map(|(e, _)| e), &embedding)?,
                    reference_distance: distance_to(state.reference.as_ref(), &embedding)?,
                    embedding: embedding.as_slice().to_vec(),
                    model: state.model_kind.clone(),
                    reused_from: None,
                    scene: None,
                    matches: Vec::new(),
                };
                state.previous = Some((embedding, queued.frame));
                counts.analysed += 1;
                meta
            } else {
                counts.reused += 1;
                reused_meta(state, queued.frame)?
            };
            metas.push(meta);
        }
        let mut stats = lock(&self.change_stats);
        stats.analysed += counts.analysed;
        stats.reused += counts.reused;
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
            reused_from: meta.reused_from,
        };
        gst::trace!(CAT, imp = self, "{msg:?}");
        let _ = self.obj().post_message(msg.to_message(&*self.obj()));
    }
}

/// The meta of frame `frame`, which reuses the last analysed frame's
/// embedding: the distances follow from it, 0 to the previous frame (whose
/// embedding is the same one) and the analysed frame's distance to the
/// reference. `state.previous` must be set.
fn reused_meta(state: &Inference, frame: u64) -> Result<DreamSimMeta, gst::ErrorMessage> {
    let (embedding, from) = state.previous.as_ref().expect("an analysed frame before");
    Ok(DreamSimMeta {
        frame,
        distance: Some(0.0),
        reference_distance: state
            .reference
            .as_ref()
            .map(|r| r.distance(embedding))
            .transpose()
            .map_err(|e| error_message(&e))?,
        embedding: embedding.as_slice().to_vec(),
        model: state.model_kind.clone(),
        reused_from: Some(*from),
        scene: None,
        matches: Vec::new(),
    })
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
            change_stats: Mutex::default(),
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
                glib::ParamSpecString::builder(property::REFERENCE_LOCATION)
                    .nick("Reference image")
                    .blurb(
                        "PNG/JPEG/BMP/WebP image; each analysed frame gets its distance to it \
                         (reference-distance). Can be changed while playing",
                    )
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt64::builder(property::REFERENCE_MAX_PIXELS)
                    .nick("Reference image pixel limit")
                    .blurb(
                        "Largest reference image (width x height) decoded; a larger one is an \
                         error that says its size. 0: $GST_DREAMSIM_REFERENCE_MAX_PIXELS if set, \
                         else 67108864 (8192 x 8192)",
                    )
                    .default_value(DEFAULT_REFERENCE_MAX_PIXELS)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecString::builder(property::ACTIVE_PROVIDER)
                    .nick("Active provider")
                    .blurb("The execution provider actually running the model (NULL until started)")
                    .read_only()
                    .build(),
                glib::ParamSpecString::builder(property::ACTIVE_PRECISION)
                    .nick("Active precision")
                    .blurb(
                        "The arithmetic the model actually runs in: fp32, bf16 (OpenVINO on \
                         AMX / AVX512-BF16), fp16 (TensorRT with fp16), tf32 (TensorRT's fp32 \
                         engines) or int8 (the int8 model beside the fp32 one, on the CPU) \
                         (NULL until started)",
                    )
                    .read_only()
                    .build(),
                glib::ParamSpecBoxed::builder::<gst::Structure>(property::STATS)
                    .nick("Statistics")
                    .blurb(
                        "Since start: frames, inferred-frames (exact repeats of the previous \
                         frame reuse its embedding), batches, preprocess-time and \
                         inference-time (ns); load-time (ns): loading the model at start; \
                         analysed-frames and reused-frames: buffers with meta whose embedding \
                         the model computed or the change test reused; peak-queued-bytes: the \
                         most bytes of buffers held at once (bounded by max-queued-bytes)",
                    )
                    .read_only()
                    .build(),
                glib::ParamSpecUInt::builder(property::INTERVAL)
                    .nick("Interval")
                    .blurb(
                        "Analyse one buffer in every N (1: all); the others pass without meta. \
                         distance is to the previous analysed buffer",
                    )
                    .minimum(1)
                    .default_value(DEFAULT_INTERVAL)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder(property::POST_MESSAGES)
                    .nick("Post messages")
                    .blurb("Post a `dreamsim` element message on the bus for every analysed buffer")
                    .default_value(DEFAULT_POST_MESSAGES)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder(property::BATCH_SIZE)
                    .nick("Batch size")
                    .blurb(
                        "Analysed frames run through the model together. A partial batch runs \
                         at EOS, flush, caps change, after max-latency and when max-queued-bytes \
                         is reached. The element holds up to 2 x batch-size x interval buffers \
                         (more with the change test, whose reused frames ride along), within \
                         max-queued-bytes. At most 256: beyond that the \
                         model's memory grows (about 10 MB of activations per frame and \
                         branch) and no GPU runs faster",
                    )
                    .minimum(1)
                    .maximum(dreamsim::limits::MAX_BATCH_SIZE as u32)
                    .default_value(DEFAULT_BATCH_SIZE)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecDouble::builder(property::CHANGE_THRESHOLD)
                    .nick("Change threshold")
                    .blurb(
                        "The change test (0: off). A frame that interval selects is compared \
                         with the last analysed frame on a 32x32 luma thumbnail (the largest \
                         mean absolute difference of its 4x4 blocks, 0..1); below this \
                         threshold it reuses that frame's embedding instead of running the \
                         model: its meta says reused-from, distance is 0 and \
                         reference-distance that of the analysed frame. 0.005 skips still \
                         stretches without changing scene cuts (docs/throughput.md)",
                    )
                    .minimum(0.0)
                    .maximum(1.0)
                    .default_value(DEFAULT_CHANGE_THRESHOLD)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder(property::MAX_REUSE)
                    .nick("Maximum reuse")
                    .blurb(
                        "With the change test on, at most this many frames in a row reuse an \
                         embedding: the next one is analysed whatever it looks like \
                         (0: no bound)",
                    )
                    .default_value(DEFAULT_MAX_REUSE)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt64::builder(property::MAX_QUEUED_BYTES)
                    .nick("Maximum queued bytes")
                    .blurb(
                        "Bound on the bytes of the buffers the element holds (queued and in \
                         the batch being analysed). At the bound the streaming thread waits \
                         (backpressure upstream) and the batch runs with the frames it has; \
                         a buffer is never dropped. One buffer larger than the bound is still \
                         taken when nothing else is held",
                    )
                    .minimum(1)
                    .default_value(DEFAULT_MAX_QUEUED_BYTES)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder(property::MAX_LATENCY)
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
            property::REFERENCE_LOCATION => s.reference_location = path_from(value),
            property::REFERENCE_MAX_PIXELS => {
                s.reference_max_pixels = value.get().expect("type checked")
            }
            property::INTERVAL => s.interval = value.get().expect("type checked"),
            property::POST_MESSAGES => s.post_messages = value.get().expect("type checked"),
            property::BATCH_SIZE => s.batch_size = value.get().expect("type checked"),
            property::MAX_LATENCY => s.max_latency_ms = value.get().expect("type checked"),
            property::CHANGE_THRESHOLD => s.change_threshold = value.get().expect("type checked"),
            property::MAX_REUSE => s.max_reuse = value.get().expect("type checked"),
            property::MAX_QUEUED_BYTES => s.max_queued_bytes = value.get().expect("type checked"),
            other => unreachable!("unknown property {other}"),
        }
        // A waiting streaming thread looks at a new bound at once.
        self.cond.notify_all();
        gst::info!(CAT, imp = self, "{} set to {:?}", pspec.name(), value);
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        match pspec.name() {
            property::ACTIVE_PROVIDER => return lock(&self.active_provider).to_value(),
            property::ACTIVE_PRECISION => return lock(&self.active_precision).to_value(),
            property::STATS => {
                let st = *lock(&self.stats);
                let change = *lock(&self.change_stats);
                let peak = lock(&self.shared).peak_bytes;
                return gst::Structure::builder("dreamsim-stats")
                    .field("frames", st.frames)
                    .field("inferred-frames", st.inferred_frames)
                    .field("batches", st.batches)
                    .field("preprocess-time", st.preprocess.as_nanos() as u64)
                    .field("inference-time", st.inference.as_nanos() as u64)
                    .field("load-time", lock(&self.load_time).as_nanos() as u64)
                    .field("analysed-frames", change.analysed)
                    .field("reused-frames", change.reused)
                    .field("peak-queued-bytes", peak)
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
            property::REFERENCE_LOCATION => path_value(&s.reference_location),
            property::REFERENCE_MAX_PIXELS => s.reference_max_pixels.to_value(),
            property::INTERVAL => s.interval.to_value(),
            property::POST_MESSAGES => s.post_messages.to_value(),
            property::BATCH_SIZE => s.batch_size.to_value(),
            property::MAX_LATENCY => s.max_latency_ms.to_value(),
            property::CHANGE_THRESHOLD => s.change_threshold.to_value(),
            property::MAX_REUSE => s.max_reuse.to_value(),
            property::MAX_QUEUED_BYTES => s.max_queued_bytes.to_value(),
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
