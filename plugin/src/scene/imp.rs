//! `dreamsimscene`: scene starts from the distances in `DreamSimMeta`.
//!
//! The decision itself lives in [`Detector`], which knows nothing of
//! GStreamer: analysed frames (index and distance) in, one [`Decision`] per
//! frame out, in frame order. The element around it keeps buffers and
//! serialized events in one queue, in arrival order, and releases them as
//! decisions become known: at once in `fixed` mode, `window` analysed frames
//! later in `adaptive` mode, everything at EOS.

use std::collections::VecDeque;
use std::sync::{LazyLock, Mutex, MutexGuard};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use super::SceneMode;
use crate::meta::{DreamSimMeta, SceneMark};
use crate::scene_message::SceneMessage;

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "dreamsimscene",
        gst::DebugColorFlags::empty(),
        Some("DreamSim scene detection"),
    )
});

const DEFAULT_MODE: SceneMode = SceneMode::Adaptive;
// Defaults for the real DreamSim ensemble; the README ("Defaults, and what
// they were checked on") says how they were chosen and what was verified.
const DEFAULT_THRESHOLD: f64 = 0.2;
const DEFAULT_ADAPTIVE_THRESHOLD: f64 = 3.0;
const DEFAULT_MIN_DISTANCE: f64 = 0.05;
const DEFAULT_WINDOW: u32 = 2;
const DEFAULT_MIN_SCENE_LENGTH: u32 = 15;
const DEFAULT_FORCE_KEY_UNITS: bool = false;
const DEFAULT_POST_MESSAGES: bool = true;
const MAX_WINDOW: u32 = 64;
/// DreamSim distances are 1 - cosine: 0 to 2.
const MAX_DISTANCE: f64 = 2.0;

/// The adaptive ratio is capped here (PySceneDetect's cap), and takes this
/// value when the neighbours' mean is zero and the distance reaches
/// `min-distance`.
pub(crate) const MAX_RATIO: f64 = 255.0;
/// A neighbours' mean below this counts as zero (float noise on identical
/// frames is about 1e-7).
const ZERO_MEAN: f64 = 1e-6;

/// What the detector needs from the settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Params {
    pub mode: SceneMode,
    pub threshold: f64,
    pub adaptive_threshold: f64,
    pub min_distance: f64,
    pub window: usize,
    pub min_scene_length: u64,
}

/// The verdict on one analysed frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Decision {
    /// The frame's `frame` field.
    pub frame: u64,
    /// Index of the scene the frame belongs to.
    pub scene: u64,
    /// The frame starts scene `scene`.
    pub start: bool,
    /// The frame starts a scene because of its distance (not because it is
    /// the first frame, or the first after a flush or a discontinuity).
    pub cut: bool,
    pub distance: Option<f64>,
    /// What the threshold was compared with (distance or adaptive ratio).
    pub score: Option<f64>,
}

/// Scene-start decisions over a sequence of analysed frames.
#[derive(Debug)]
pub(crate) struct Detector {
    params: Params,
    /// Distances of the latest decided frames, newest last, at most `window`.
    before: VecDeque<f64>,
    /// Analysed frames waiting for their following neighbours: (frame, distance).
    pending: VecDeque<(u64, f64)>,
    /// `frame` of the current scene's first frame; `None` before the first
    /// frame and after a reset.
    scene_start: Option<u64>,
    /// Scenes started so far.
    scenes: u64,
}

impl Detector {
    pub fn new(params: Params) -> Self {
        Self {
            params,
            before: VecDeque::new(),
            pending: VecDeque::new(),
            scene_start: None,
            scenes: 0,
        }
    }

    /// Changes the thresholds and the minimum scene length; the mode and the
    /// window are fixed for the detector's life.
    pub fn set_thresholds(&mut self, p: &Params) {
        self.params.threshold = p.threshold;
        self.params.adaptive_threshold = p.adaptive_threshold;
        self.params.min_distance = p.min_distance;
        self.params.min_scene_length = p.min_scene_length;
    }

    pub fn params(&self) -> &Params {
        &self.params
    }

    /// Scenes started so far.
    pub fn scenes(&self) -> u64 {
        self.scenes
    }

    /// Takes the next analysed frame: its `frame` index and its distance to
    /// the previous analysed frame. Appends the decisions this makes
    /// possible to `out`, in frame order.
    pub fn push(&mut self, frame: u64, distance: Option<f64>, out: &mut Vec<Decision>) {
        match distance {
            None => {
                // The frame follows a discontinuity in the distances (the
                // first frame, or dreamsim forgot the previous one): nothing
                // after it is a neighbour of anything before it.
                self.finish(out);
                self.before.clear();
                out.push(self.decide(frame, None, None, false, true));
            }
            Some(d) if self.params.mode == SceneMode::Fixed => {
                let cut = d >= self.params.threshold;
                out.push(self.decide(frame, Some(d), Some(d), cut, false));
            }
            Some(d) => {
                self.pending.push_back((frame, d));
                while self.pending.len() > self.params.window {
                    self.decide_first_pending(out);
                }
            }
        }
    }

    /// Decides every pending frame with the neighbours there are (end of
    /// stream).
    pub fn finish(&mut self, out: &mut Vec<Decision>) {
        while !self.pending.is_empty() {
            self.decide_first_pending(out);
        }
    }

    /// Forgets everything but the scene count (flush): the next frame starts
    /// a scene.
    pub fn reset(&mut self) {
        self.before.clear();
        self.pending.clear();
        self.scene_start = None;
    }

    /// Frames waiting for a decision.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// The adaptive rule, on the oldest pending frame: its distance over the
    /// mean distance of up to `window` decided frames before it and `window`
    /// pending frames after it.
    fn decide_first_pending(&mut self, out: &mut Vec<Decision>) {
        let Some((frame, d)) = self.pending.pop_front() else {
            return;
        };
        let w = self.params.window;
        let (sum, n) = self
            .before
            .iter()
            .rev()
            .take(w)
            .chain(self.pending.iter().take(w).map(|(_, d)| d))
            .fold((0.0, 0usize), |(s, n), d| (s + d, n + 1));
        let mean = if n > 0 { sum / n as f64 } else { 0.0 };
        let ratio = if mean > ZERO_MEAN {
            (d / mean).min(MAX_RATIO)
        } else if d >= self.params.min_distance {
            MAX_RATIO
        } else {
            0.0
        };
        let cut = ratio >= self.params.adaptive_threshold && d >= self.params.min_distance;
        self.before.push_back(d);
        if self.before.len() > w {
            self.before.pop_front();
        }
        out.push(self.decide(frame, Some(d), Some(ratio), cut, false));
    }

    fn decide(
        &mut self,
        frame: u64,
        distance: Option<f64>,
        score: Option<f64>,
        cut: bool,
        forced: bool,
    ) -> Decision {
        let (start, cut) = match self.scene_start {
            None => (true, false),
            _ if forced => (true, false),
            Some(first) => {
                let long_enough = frame
                    .checked_sub(first)
                    .is_none_or(|n| n >= self.params.min_scene_length);
                (cut && long_enough, cut && long_enough)
            }
        };
        if start {
            self.scene_start = Some(frame);
            self.scenes += 1;
        }
        Decision {
            frame,
            scene: self.scenes.saturating_sub(1),
            start,
            cut,
            distance,
            score,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Settings {
    mode: SceneMode,
    threshold: f64,
    adaptive_threshold: f64,
    min_distance: f64,
    window: u32,
    min_scene_length: u32,
    force_key_units: bool,
    post_messages: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            mode: DEFAULT_MODE,
            threshold: DEFAULT_THRESHOLD,
            adaptive_threshold: DEFAULT_ADAPTIVE_THRESHOLD,
            min_distance: DEFAULT_MIN_DISTANCE,
            window: DEFAULT_WINDOW,
            min_scene_length: DEFAULT_MIN_SCENE_LENGTH,
            force_key_units: DEFAULT_FORCE_KEY_UNITS,
            post_messages: DEFAULT_POST_MESSAGES,
        }
    }
}

impl From<&Settings> for Params {
    fn from(s: &Settings) -> Self {
        Self {
            mode: s.mode,
            threshold: s.threshold,
            adaptive_threshold: s.adaptive_threshold,
            min_distance: s.min_distance,
            window: s.window as usize,
            min_scene_length: u64::from(s.min_scene_length),
        }
    }
}

/// A buffer or serialized event waiting for the decisions on the buffers
/// before it.
#[derive(Debug)]
enum Item {
    Buffer {
        buffer: gst::Buffer,
        /// Has `DreamSimMeta`, so the detector decides on it.
        analysed: bool,
    },
    Event(gst::Event),
}

/// What to send once the state lock is released, in this order.
#[derive(Debug)]
enum Output {
    Buffer(gst::Buffer),
    Event(gst::Event),
    Message(gst::Message),
}

struct State {
    detector: Detector,
    queue: VecDeque<Item>,
    /// Segment of the buffers leaving the element (running and stream time).
    segment: Option<gst::FormattedSegment<gst::ClockTime>>,
    /// From the caps' framerate; `None` when unknown or variable.
    frame_duration: Option<gst::ClockTime>,
    /// Duration of the latest buffer, for the latency when the caps say nothing.
    buffer_duration: Option<gst::ClockTime>,
    /// Largest step in `frame` between analysed frames (dreamsim's interval).
    stride: u64,
    last_frame: Option<u64>,
    warned_malformed: bool,
}

impl State {
    fn new(params: Params) -> Self {
        Self {
            detector: Detector::new(params),
            queue: VecDeque::new(),
            segment: None,
            frame_duration: None,
            buffer_duration: None,
            stride: 1,
            last_frame: None,
            warned_malformed: false,
        }
    }

    /// Buffers the element may hold back.
    fn max_held_buffers(&self) -> u64 {
        match self.detector.params().mode {
            SceneMode::Fixed => 0,
            SceneMode::Adaptive => self.detector.params().window as u64 * self.stride,
        }
    }

    /// The latency the element adds: `window` analysed frames in adaptive
    /// mode, none in fixed mode.
    fn latency(&self) -> gst::ClockTime {
        let frame = self
            .frame_duration
            .or(self.buffer_duration)
            .unwrap_or(gst::ClockTime::ZERO);
        gst::ClockTime::from_nseconds(frame.nseconds().saturating_mul(self.max_held_buffers()))
    }
}

pub struct DreamSimScene {
    srcpad: gst::Pad,
    sinkpad: gst::Pad,
    settings: Mutex<Settings>,
    state: Mutex<State>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not turn every later call into a panic too.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl DreamSimScene {
    fn sink_chain(
        &self,
        _pad: &gst::Pad,
        buffer: gst::Buffer,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let settings = *lock(&self.settings);
        let analysed = match DreamSimMeta::from_buffer(&buffer) {
            None => None,
            Some(Ok(meta)) => Some((meta.frame, meta.distance)),
            Some(Err(e)) => {
                let mut state = lock(&self.state);
                if !state.warned_malformed {
                    state.warned_malformed = true;
                    gst::warning!(CAT, imp = self, "{e}; such frames pass as if they had none");
                }
                None
            }
        };

        let mut outputs = Vec::new();
        let mut latency_changed = false;
        {
            let mut state = lock(&self.state);
            state.detector.set_thresholds(&Params::from(&settings));
            if buffer.duration().is_some() {
                state.buffer_duration = buffer.duration();
            }
            let mut decisions = Vec::new();
            match analysed {
                Some((frame, distance)) => {
                    if let Some(step) = state.last_frame.and_then(|last| frame.checked_sub(last)) {
                        if step > state.stride {
                            gst::debug!(CAT, imp = self, "Analysed frames are {step} apart");
                            state.stride = step;
                            latency_changed = state.max_held_buffers() > 0;
                        }
                    }
                    state.last_frame = Some(frame);
                    state.queue.push_back(Item::Buffer {
                        buffer,
                        analysed: true,
                    });
                    state.detector.push(frame, distance, &mut decisions);
                }
                None => state.queue.push_back(Item::Buffer {
                    buffer,
                    analysed: false,
                }),
            }
            self.release(&mut state, &decisions, &settings, &mut outputs);
            gst::trace!(
                CAT,
                imp = self,
                "{} analysed frames wait for their neighbours",
                state.detector.pending()
            );
        }
        if latency_changed {
            self.post_latency();
        }
        self.send(outputs).0
    }

    /// Moves out of the queue everything that no longer waits for a
    /// decision, applying `decisions` (in order) to the analysed buffers.
    fn release(
        &self,
        state: &mut State,
        decisions: &[Decision],
        settings: &Settings,
        outputs: &mut Vec<Output>,
    ) {
        let mut decisions = decisions.iter();
        loop {
            let waiting = matches!(
                state.queue.front(),
                Some(Item::Buffer { analysed: true, .. })
            );
            let decision = if waiting {
                match decisions.next() {
                    Some(d) => Some(d),
                    None => break,
                }
            } else {
                None
            };
            let Some(item) = state.queue.pop_front() else {
                break;
            };
            match item {
                Item::Buffer { mut buffer, .. } => {
                    if let Some(d) = decision {
                        self.apply(state, d, &mut buffer, settings, outputs);
                    }
                    outputs.push(Output::Buffer(buffer));
                }
                Item::Event(event) => {
                    if let gst::EventView::Segment(s) = event.view() {
                        state.segment = s.segment().downcast_ref::<gst::ClockTime>().cloned();
                    }
                    outputs.push(Output::Event(event));
                }
            }
        }
        debug_assert!(decisions.next().is_none(), "a decision without its buffer");
    }

    /// Marks `buffer` with its scene and, on a scene's first frame, queues
    /// the message and the force-key-unit event.
    fn apply(
        &self,
        state: &State,
        d: &Decision,
        buffer: &mut gst::Buffer,
        settings: &Settings,
        outputs: &mut Vec<Output>,
    ) {
        let mark = SceneMark {
            index: d.scene,
            start: d.start,
        };
        DreamSimMeta::set_scene(buffer.make_mut(), mark);
        if !d.start {
            return;
        }
        let pts = buffer.pts();
        let segment = state.segment.as_ref();
        let stream_time = pts.and_then(|p| segment?.to_stream_time(p));
        let running_time = pts.and_then(|p| segment?.to_running_time(p));
        gst::debug!(
            CAT,
            imp = self,
            "Scene {} starts at frame {} ({}), distance {:?}, score {:?}",
            d.scene,
            d.frame,
            pts.display(),
            d.distance,
            d.score
        );
        if settings.post_messages {
            let msg = SceneMessage {
                index: d.scene,
                timestamp: pts,
                stream_time,
                running_time,
                duration: buffer.duration(),
                frame: d.frame,
                distance: d.distance,
                score: d.score,
            };
            outputs.push(Output::Message(msg.to_message(&*self.obj())));
        }
        if settings.force_key_units && d.cut {
            let event = gst_video::DownstreamForceKeyUnitEvent::builder()
                .timestamp(pts)
                .stream_time(stream_time)
                .running_time(running_time)
                .all_headers(true)
                .count(u32::try_from(d.scene).unwrap_or(u32::MAX))
                .build();
            outputs.push(Output::Event(event));
        }
    }

    /// Sends `outputs` downstream and to the bus, in order. Returns the flow
    /// of the buffers and whether every event was accepted. After a failed
    /// buffer push the rest is dropped, as upstream stops on that flow.
    fn send(&self, outputs: Vec<Output>) -> (Result<gst::FlowSuccess, gst::FlowError>, bool) {
        let mut events_ok = true;
        for output in outputs {
            match output {
                Output::Buffer(buffer) => {
                    if let Err(e) = self.srcpad.push(buffer) {
                        gst::debug!(CAT, imp = self, "Push failed: {e:?}");
                        return (Err(e), events_ok);
                    }
                }
                Output::Event(event) => events_ok &= self.srcpad.push_event(event),
                Output::Message(msg) => {
                    let _ = self.obj().post_message(msg);
                }
            }
        }
        (Ok(gst::FlowSuccess::Ok), events_ok)
    }

    fn post_latency(&self) {
        let _ = self
            .obj()
            .post_message(gst::message::Latency::builder().src(&*self.obj()).build());
    }

    fn sink_event(&self, pad: &gst::Pad, event: gst::Event) -> bool {
        gst::log!(CAT, obj = pad, "Event {event:?}");
        match event.view() {
            gst::EventView::FlushStart(_) => self.srcpad.push_event(event),
            gst::EventView::FlushStop(_) => {
                {
                    let mut state = lock(&self.state);
                    let dropped = state.queue.len();
                    gst::debug!(CAT, imp = self, "Flush: dropping {dropped} queued items");
                    state.queue.clear();
                    state.detector.reset();
                    state.segment = None;
                    state.last_frame = None;
                }
                self.srcpad.push_event(event)
            }
            gst::EventView::Eos(_) => {
                let settings = *lock(&self.settings);
                let mut outputs = Vec::new();
                {
                    let mut state = lock(&self.state);
                    let mut decisions = Vec::new();
                    state.detector.finish(&mut decisions);
                    state.queue.push_back(Item::Event(event));
                    self.release(&mut state, &decisions, &settings, &mut outputs);
                    debug_assert!(state.queue.is_empty());
                }
                self.send(outputs).1
            }
            _ if event.is_serialized() => {
                let mut latency_changed = false;
                if let gst::EventView::Caps(c) = event.view() {
                    let duration = c
                        .caps()
                        .structure(0)
                        .and_then(|s| s.get::<gst::Fraction>("framerate").ok())
                        .filter(|f| f.numer() > 0 && f.denom() > 0)
                        .and_then(|f| {
                            gst::ClockTime::SECOND.mul_div_floor(f.denom() as u64, f.numer() as u64)
                        });
                    let mut state = lock(&self.state);
                    if state.frame_duration != duration {
                        state.frame_duration = duration;
                        latency_changed = state.max_held_buffers() > 0;
                    }
                }
                let settings = *lock(&self.settings);
                let mut outputs = Vec::new();
                let queued = {
                    let mut state = lock(&self.state);
                    state.queue.push_back(Item::Event(event));
                    self.release(&mut state, &[], &settings, &mut outputs);
                    !state.queue.is_empty()
                };
                if latency_changed {
                    self.post_latency();
                }
                let (_, events_ok) = self.send(outputs);
                // A queued event goes out with the buffers before it.
                queued || events_ok
            }
            _ => gst::Pad::event_default(pad, Some(&*self.obj()), event),
        }
    }

    fn sink_query(&self, pad: &gst::Pad, query: &mut gst::QueryRef) -> bool {
        if let gst::QueryViewMut::Allocation(_) = query.view_mut() {
            if !self.srcpad.peer_query(query) {
                return false;
            }
            // Buffers this element holds are not in the pool for upstream:
            // make the pool larger by that many, so a fixed-size pool
            // cannot run dry.
            let extra = u32::try_from(lock(&self.state).max_held_buffers()).unwrap_or(u32::MAX);
            if extra > 0 {
                if let gst::QueryViewMut::Allocation(q) = query.view_mut() {
                    let pools: Vec<_> = q.allocation_pools().collect();
                    for (i, (pool, size, min, max)) in pools.into_iter().enumerate() {
                        let max = if max == 0 {
                            0
                        } else {
                            max.saturating_add(extra)
                        };
                        q.set_nth_allocation_pool(
                            i as u32,
                            pool.as_ref(),
                            size,
                            min.saturating_add(extra),
                            max,
                        );
                    }
                }
            }
            return true;
        }
        gst::Pad::query_default(pad, Some(&*self.obj()), query)
    }

    fn src_query(&self, pad: &gst::Pad, query: &mut gst::QueryRef) -> bool {
        if let gst::QueryViewMut::Latency(_) = query.view_mut() {
            if !self.sinkpad.peer_query(query) {
                return false;
            }
            let ours = lock(&self.state).latency();
            if let gst::QueryViewMut::Latency(q) = query.view_mut() {
                let (live, min, max) = q.result();
                gst::debug!(
                    CAT,
                    imp = self,
                    "Latency: upstream {min} - {}, ours {ours}",
                    max.display()
                );
                q.set(live, min + ours, max.map(|m| m + ours));
            }
            return true;
        }
        gst::Pad::query_default(pad, Some(&*self.obj()), query)
    }
}

#[glib::object_subclass]
impl ObjectSubclass for DreamSimScene {
    const NAME: &'static str = "GstDreamSimScene";
    type Type = super::DreamSimScene;
    type ParentType = gst::Element;

    fn with_class(klass: &Self::Class) -> Self {
        let templ = klass.pad_template("sink").expect("sink template");
        let sinkpad = gst::Pad::builder_from_template(&templ)
            .chain_function(|pad, parent, buffer| {
                DreamSimScene::catch_panic_pad_function(
                    parent,
                    || Err(gst::FlowError::Error),
                    |imp| imp.sink_chain(pad, buffer),
                )
            })
            .event_function(|pad, parent, event| {
                DreamSimScene::catch_panic_pad_function(
                    parent,
                    || false,
                    |imp| imp.sink_event(pad, event),
                )
            })
            .query_function(|pad, parent, query| {
                DreamSimScene::catch_panic_pad_function(
                    parent,
                    || false,
                    |imp| imp.sink_query(pad, query),
                )
            })
            .flags(gst::PadFlags::PROXY_CAPS)
            .build();
        let templ = klass.pad_template("src").expect("src template");
        let srcpad = gst::Pad::builder_from_template(&templ)
            .query_function(|pad, parent, query| {
                DreamSimScene::catch_panic_pad_function(
                    parent,
                    || false,
                    |imp| imp.src_query(pad, query),
                )
            })
            .flags(gst::PadFlags::PROXY_CAPS)
            .build();
        let settings = Settings::default();
        Self {
            srcpad,
            sinkpad,
            state: Mutex::new(State::new(Params::from(&settings))),
            settings: Mutex::new(settings),
        }
    }
}

impl ObjectImpl for DreamSimScene {
    fn constructed(&self) {
        self.parent_constructed();
        let obj = self.obj();
        obj.add_pad(&self.sinkpad).expect("add sink pad");
        obj.add_pad(&self.srcpad).expect("add src pad");
    }

    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecEnum::builder_with_default("mode", DEFAULT_MODE)
                    .nick("Mode")
                    .blurb(
                        "fixed: a frame starts a scene when its distance reaches `threshold` \
                         (no latency); adaptive: when its distance is `adaptive-threshold` times \
                         the mean of its `window` neighbours on each side and at least \
                         `min-distance` (holds back `window` analysed frames)",
                    )
                    .mutable_ready()
                    .build(),
                glib::ParamSpecDouble::builder("threshold")
                    .nick("Threshold")
                    .blurb(
                        "Fixed mode: DreamSim distance to the previous frame that starts a scene",
                    )
                    .minimum(0.0)
                    .maximum(MAX_DISTANCE)
                    .default_value(DEFAULT_THRESHOLD)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecDouble::builder("adaptive-threshold")
                    .nick("Adaptive threshold")
                    .blurb(
                        "Adaptive mode: ratio of a frame's distance to the mean distance of its \
                         neighbours that starts a scene",
                    )
                    .minimum(0.0)
                    .maximum(MAX_RATIO)
                    .default_value(DEFAULT_ADAPTIVE_THRESHOLD)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecDouble::builder("min-distance")
                    .nick("Minimum distance")
                    .blurb(
                        "Adaptive mode: a frame whose distance is below this never starts a scene \
                         (keeps noise in still shots from cutting)",
                    )
                    .minimum(0.0)
                    .maximum(MAX_DISTANCE)
                    .default_value(DEFAULT_MIN_DISTANCE)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("window")
                    .nick("Window")
                    .blurb(
                        "Adaptive mode: analysed frames on each side whose mean distance a \
                         frame is compared with; also the frames held back",
                    )
                    .minimum(1)
                    .maximum(MAX_WINDOW)
                    .default_value(DEFAULT_WINDOW)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("min-scene-length")
                    .nick("Minimum scene length")
                    .blurb(
                        "Frames (counted by dreamsim) from a scene's first frame before another \
                         scene can start",
                    )
                    .default_value(DEFAULT_MIN_SCENE_LENGTH)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder("force-key-units")
                    .nick("Force key units")
                    .blurb(
                        "Send a downstream force-key-unit event before each cut, so an encoder \
                         puts a keyframe there",
                    )
                    .default_value(DEFAULT_FORCE_KEY_UNITS)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder("post-messages")
                    .nick("Post messages")
                    .blurb("Post a `dreamsim-scene` element message on each scene's first frame")
                    .default_value(DEFAULT_POST_MESSAGES)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt64::builder("scenes")
                    .nick("Scenes")
                    .blurb("Scenes started since the element started")
                    .read_only()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut s = lock(&self.settings);
        match pspec.name() {
            "mode" => s.mode = value.get().expect("type checked"),
            "threshold" => s.threshold = value.get().expect("type checked"),
            "adaptive-threshold" => s.adaptive_threshold = value.get().expect("type checked"),
            "min-distance" => s.min_distance = value.get().expect("type checked"),
            "window" => s.window = value.get().expect("type checked"),
            "min-scene-length" => s.min_scene_length = value.get().expect("type checked"),
            "force-key-units" => s.force_key_units = value.get().expect("type checked"),
            "post-messages" => s.post_messages = value.get().expect("type checked"),
            other => unreachable!("unknown property {other}"),
        }
        if matches!(pspec.name(), "mode" | "window")
            && self.obj().current_state() > gst::State::Ready
        {
            gst::warning!(
                CAT,
                imp = self,
                "{} changed while running: takes effect at the next start",
                pspec.name()
            );
        }
        gst::info!(CAT, imp = self, "{} set to {:?}", pspec.name(), value);
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        if pspec.name() == "scenes" {
            return lock(&self.state).detector.scenes().to_value();
        }
        let s = lock(&self.settings);
        match pspec.name() {
            "mode" => s.mode.to_value(),
            "threshold" => s.threshold.to_value(),
            "adaptive-threshold" => s.adaptive_threshold.to_value(),
            "min-distance" => s.min_distance.to_value(),
            "window" => s.window.to_value(),
            "min-scene-length" => s.min_scene_length.to_value(),
            "force-key-units" => s.force_key_units.to_value(),
            "post-messages" => s.post_messages.to_value(),
            other => unreachable!("unknown property {other}"),
        }
    }
}

impl GstObjectImpl for DreamSimScene {}

impl ElementImpl for DreamSimScene {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "DreamSim scene detection",
                "Filter/Analyzer/Video",
                "Finds where scenes start from the DreamSim distances of `dreamsim`; marks frames \
                 (DreamSimMeta scene-index, scene-start), posts `dreamsim-scene` messages and \
                 can request keyframes at cuts",
                "gst-dreamsim developers",
            )
        });
        Some(&*METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            // The meta rides on any raw video, in any memory.
            let caps = gst::Caps::builder("video/x-raw").any_features().build();
            crate::pads::src_and_sink_templates(&caps)
        });
        TEMPLATES.as_ref()
    }

    fn change_state(
        &self,
        transition: gst::StateChange,
    ) -> Result<gst::StateChangeSuccess, gst::StateChangeError> {
        if transition == gst::StateChange::ReadyToPaused {
            let params = Params::from(&*lock(&self.settings));
            gst::debug!(CAT, imp = self, "Starting with {params:?}");
            *lock(&self.state) = State::new(params);
        }
        let ret = self.parent_change_state(transition)?;
        if transition == gst::StateChange::PausedToReady {
            // The pads are inactive now: nothing streams.
            let params = Params::from(&*lock(&self.settings));
            let mut state = lock(&self.state);
            let scenes = state.detector.scenes();
            *state = State::new(params);
            // `scenes` stays readable after the stream ends.
            state.detector.scenes = scenes;
        }
        Ok(ret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(mode: SceneMode) -> Params {
        Params {
            mode,
            threshold: 0.5,
            adaptive_threshold: 3.0,
            min_distance: 0.05,
            window: 2,
            min_scene_length: 1,
        }
    }

    /// Runs `distances` (None: first frame) through a detector; returns the
    /// frames that start scenes, checking that decisions come in order.
    fn starts(p: Params, distances: &[Option<f64>]) -> Vec<u64> {
        let mut d = Detector::new(p);
        let mut out = Vec::new();
        for (i, &dist) in distances.iter().enumerate() {
            d.push(i as u64, dist, &mut out);
            assert!(d.pending() <= p.window);
        }
        d.finish(&mut out);
        let frames: Vec<u64> = out.iter().map(|d| d.frame).collect();
        assert_eq!(frames, (0..distances.len() as u64).collect::<Vec<_>>());
        out.iter().filter(|d| d.start).map(|d| d.frame).collect()
    }

    fn series(base: f64, n: usize, cuts: &[(usize, f64)]) -> Vec<Option<f64>> {
        (0..n)
            .map(|i| {
                if i == 0 {
                    None
                } else {
                    Some(cuts.iter().find(|c| c.0 == i).map_or(base, |c| c.1))
                }
            })
            .collect()
    }

    #[test]
    fn fixed_mode_cuts_at_the_threshold_and_decides_at_once() {
        let p = params(SceneMode::Fixed);
        let mut d = Detector::new(p);
        let mut out = Vec::new();
        for (i, dist) in [None, Some(0.1), Some(0.5), Some(0.49), Some(0.9)]
            .into_iter()
            .enumerate()
        {
            d.push(i as u64, dist, &mut out);
            assert_eq!(out.len(), i + 1, "decided at once");
        }
        let starts: Vec<_> = out.iter().filter(|d| d.start).map(|d| d.frame).collect();
        assert_eq!(starts, [0, 2, 4]);
        assert_eq!(
            out.iter().map(|d| d.scene).collect::<Vec<_>>(),
            [0, 0, 1, 1, 2]
        );
        assert!(!out[0].cut && out[2].cut && out[4].cut);
        assert_eq!(out[2].score, Some(0.5));
    }

    #[test]
    fn adaptive_mode_ignores_steady_motion_and_finds_cuts() {
        // Camera motion: large but steady distances; cuts stand out of them.
        let mut s = series(0.3, 40, &[(10, 1.2), (25, 0.95)]);
        s[30] = Some(0.35);
        assert_eq!(starts(params(SceneMode::Adaptive), &s), [0, 10, 25]);
        // A fixed threshold under the motion level cuts everywhere.
        let mut fixed = params(SceneMode::Fixed);
        fixed.threshold = 0.25;
        assert_eq!(starts(fixed, &s).len(), 40);
    }

    #[test]
    fn adaptive_ratio_uses_both_sides() {
        let p = params(SceneMode::Adaptive);
        let mut d = Detector::new(p);
        let mut out = Vec::new();
        for (i, dist) in [None, Some(0.1), Some(0.1), Some(0.9), Some(0.2), Some(0.4)]
            .into_iter()
            .enumerate()
        {
            d.push(i as u64, dist, &mut out);
        }
        // Frame 3 waits for frames 4 and 5.
        let f3 = out.iter().find(|d| d.frame == 3).expect("frame 3 decided");
        assert!((f3.score.unwrap() - 0.9 / ((0.1 + 0.1 + 0.2 + 0.4) / 4.0)).abs() < 1e-12);
        assert!(f3.start && f3.cut);
        assert_eq!(d.pending(), 2);
    }

    #[test]
    fn still_frames_need_min_distance() {
        // Neighbours at zero: the ratio is at its cap, only min-distance decides.
        let s = series(0.0, 12, &[(4, 0.01), (8, 0.3)]);
        assert_eq!(starts(params(SceneMode::Adaptive), &s), [0, 8]);
    }

    #[test]
    fn min_scene_length_suppresses_close_cuts() {
        let mut p = params(SceneMode::Fixed);
        p.min_scene_length = 5;
        let s = series(0.0, 20, &[(3, 0.9), (6, 0.9), (9, 0.9), (10, 0.9)]);
        assert_eq!(starts(p, &s), [0, 6]);
        p.min_scene_length = 4;
        assert_eq!(starts(p, &s), [0, 6, 10]);
    }

    #[test]
    fn the_first_frame_and_the_first_after_a_reset_start_scenes() {
        let p = params(SceneMode::Adaptive);
        let mut d = Detector::new(p);
        let mut out = Vec::new();
        // The first frame starts a scene even when it has a distance.
        d.push(5, Some(0.01), &mut out);
        d.push(6, Some(0.01), &mut out);
        d.reset();
        d.push(9, Some(0.01), &mut out);
        d.push(10, None, &mut out);
        d.finish(&mut out);
        let got: Vec<_> = out.iter().map(|d| (d.frame, d.start, d.scene)).collect();
        assert_eq!(got, [(9, true, 0), (10, true, 1)]);
        assert_eq!(d.scenes(), 2);
    }

    #[test]
    fn a_frame_without_distance_decides_the_pending_ones_first() {
        let p = params(SceneMode::Adaptive);
        let mut d = Detector::new(p);
        let mut out = Vec::new();
        d.push(0, None, &mut out);
        d.push(1, Some(0.01), &mut out);
        d.push(2, Some(0.8), &mut out);
        assert_eq!(out.len(), 1);
        d.push(3, None, &mut out);
        let got: Vec<_> = out.iter().map(|d| (d.frame, d.start)).collect();
        assert_eq!(got, [(0, true), (1, false), (2, true), (3, true)]);
    }

    #[test]
    fn short_streams_are_decided_at_the_end() {
        assert_eq!(starts(params(SceneMode::Adaptive), &[None]), [0]);
        assert_eq!(
            starts(params(SceneMode::Adaptive), &[None, Some(0.6)]),
            [0, 1]
        );
        assert_eq!(
            starts(params(SceneMode::Adaptive), &[None, Some(0.01)]),
            [0]
        );
    }
}
