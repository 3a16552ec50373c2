//! `dreamsimscene`: scene starts from the distances in `DreamSimMeta`.
//!
//! The decision itself lives in [`Detector`], which knows nothing of
//! GStreamer: analysed frames (index and distance) in, one [`Decision`] per
//! frame out, in frame order. The element around it keeps buffers and
//! serialized events in one queue, in arrival order, and releases them as
//! decisions become known: at once in `fixed` mode, `window` analysed frames
//! later in `adaptive` mode, everything at EOS.

use super::property;
use std::collections::VecDeque;
use std::sync::{LazyLock, Mutex};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use super::detector::{Decision, Detector, Params, MAX_RATIO};
use super::message::SceneMessage;
use super::SceneMode;
use crate::filter::{self, lock, Output};
use crate::meta::{DreamSimMeta, SceneMark};
use crate::timing::FrameTiming;

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
pub const DEFAULT_THRESHOLD: f64 = 0.2;
pub const DEFAULT_ADAPTIVE_THRESHOLD: f64 = 3.0;
pub const DEFAULT_MIN_DISTANCE: f64 = 0.05;
pub const DEFAULT_WINDOW: u32 = 2;
pub const DEFAULT_MIN_SCENE_LENGTH: u32 = 15;
const DEFAULT_FORCE_KEY_UNITS: bool = false;
const DEFAULT_POST_MESSAGES: bool = true;
const MAX_WINDOW: u32 = 64;
/// DreamSim distances are 1 - cosine: 0 to 2.
const MAX_DISTANCE: f64 = 2.0;

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
        filter::frames_of(
            self.frame_duration.or(self.buffer_duration),
            self.max_held_buffers(),
        )
    }
}

pub struct DreamSimScene {
    srcpad: gst::Pad,
    sinkpad: gst::Pad,
    settings: Mutex<Settings>,
    state: Mutex<State>,
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
        let timing = FrameTiming::of(buffer, state.segment.as_ref());
        gst::debug!(
            CAT,
            imp = self,
            "Scene {} starts at frame {} ({}), distance {:?}, score {:?}",
            d.scene,
            d.frame,
            timing.timestamp.display(),
            d.distance,
            d.score
        );
        if settings.post_messages {
            let msg = SceneMessage {
                index: d.scene,
                timing,
                frame: d.frame,
                distance: d.distance,
                score: d.score,
            };
            outputs.push(Output::Message(msg.to_message(&*self.obj())));
        }
        if settings.force_key_units && d.cut {
            let event = gst_video::DownstreamForceKeyUnitEvent::builder()
                .timestamp(timing.timestamp)
                .stream_time(timing.stream_time)
                .running_time(timing.running_time)
                .all_headers(true)
                .count(u32::try_from(d.scene).unwrap_or(u32::MAX))
                .build();
            outputs.push(Output::Event(event));
        }
    }

    fn send(&self, outputs: Vec<Output>) -> (Result<gst::FlowSuccess, gst::FlowError>, bool) {
        filter::send(self.obj().upcast_ref(), &self.srcpad, *CAT, outputs)
    }

    fn post_latency(&self) {
        filter::post_latency(self.obj().upcast_ref());
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
                    let duration = filter::frame_duration(c.caps());
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
            let held = u32::try_from(lock(&self.state).max_held_buffers()).unwrap_or(u32::MAX);
            return filter::allocation_with_held_buffers(&self.srcpad, query, held);
        }
        gst::Pad::query_default(pad, Some(&*self.obj()), query)
    }

    fn src_query(&self, pad: &gst::Pad, query: &mut gst::QueryRef) -> bool {
        if let gst::QueryViewMut::Latency(_) = query.view_mut() {
            let ours = lock(&self.state).latency();
            gst::debug!(CAT, imp = self, "Latency: ours {ours}");
            return filter::latency_plus(&self.sinkpad, query, ours).is_some();
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
                glib::ParamSpecEnum::builder_with_default(property::MODE, DEFAULT_MODE)
                    .nick("Mode")
                    .blurb(
                        "fixed: a frame starts a scene when its distance reaches `threshold` \
                         (no latency); adaptive: when its distance is `adaptive-threshold` times \
                         the mean of its `window` neighbours on each side and at least \
                         `min-distance` (holds back `window` analysed frames)",
                    )
                    .mutable_ready()
                    .build(),
                glib::ParamSpecDouble::builder(property::THRESHOLD)
                    .nick("Threshold")
                    .blurb(
                        "Fixed mode: DreamSim distance to the previous frame that starts a scene",
                    )
                    .minimum(0.0)
                    .maximum(MAX_DISTANCE)
                    .default_value(DEFAULT_THRESHOLD)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecDouble::builder(property::ADAPTIVE_THRESHOLD)
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
                glib::ParamSpecDouble::builder(property::MIN_DISTANCE)
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
                glib::ParamSpecUInt::builder(property::WINDOW)
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
                glib::ParamSpecUInt::builder(property::MIN_SCENE_LENGTH)
                    .nick("Minimum scene length")
                    .blurb(
                        "Frames (counted by dreamsim) from a scene's first frame before another \
                         scene can start",
                    )
                    .default_value(DEFAULT_MIN_SCENE_LENGTH)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder(property::FORCE_KEY_UNITS)
                    .nick("Force key units")
                    .blurb(
                        "Send a downstream force-key-unit event before each cut, so an encoder \
                         puts a keyframe there",
                    )
                    .default_value(DEFAULT_FORCE_KEY_UNITS)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder(property::POST_MESSAGES)
                    .nick("Post messages")
                    .blurb("Post a `dreamsim-scene` element message on each scene's first frame")
                    .default_value(DEFAULT_POST_MESSAGES)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt64::builder(property::SCENES)
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
            property::MODE => s.mode = value.get().expect("type checked"),
            property::THRESHOLD => s.threshold = value.get().expect("type checked"),
            property::ADAPTIVE_THRESHOLD => {
                s.adaptive_threshold = value.get().expect("type checked")
            }
            property::MIN_DISTANCE => s.min_distance = value.get().expect("type checked"),
            property::WINDOW => s.window = value.get().expect("type checked"),
            property::MIN_SCENE_LENGTH => s.min_scene_length = value.get().expect("type checked"),
            property::FORCE_KEY_UNITS => s.force_key_units = value.get().expect("type checked"),
            property::POST_MESSAGES => s.post_messages = value.get().expect("type checked"),
            other => unreachable!("unknown property {other}"),
        }
        if matches!(pspec.name(), property::MODE | property::WINDOW)
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
        if pspec.name() == property::SCENES {
            return lock(&self.state).detector.scenes().to_value();
        }
        let s = lock(&self.settings);
        match pspec.name() {
            property::MODE => s.mode.to_value(),
            property::THRESHOLD => s.threshold.to_value(),
            property::ADAPTIVE_THRESHOLD => s.adaptive_threshold.to_value(),
            property::MIN_DISTANCE => s.min_distance.to_value(),
            property::WINDOW => s.window.to_value(),
            property::MIN_SCENE_LENGTH => s.min_scene_length.to_value(),
            property::FORCE_KEY_UNITS => s.force_key_units.to_value(),
            property::POST_MESSAGES => s.post_messages.to_value(),
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
            state.detector = Detector::keeping_count(params, scenes);
        }
        Ok(ret)
    }
}
