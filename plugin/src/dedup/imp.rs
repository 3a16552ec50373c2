//! `dreamsimdedup`: drops near-duplicate frames.
//!
//! The decision lives in [`Deduplicator`] (embeddings in, keep or drop out).
//! With `extend-duration` the element holds the last kept buffer until the
//! next kept one (or EOS, or a caps, segment, stream-start or gap event)
//! arrives, so that its duration can cover the frames dropped after it;
//! other serialized events wait behind it, so nothing is reordered.

use super::property;
use std::sync::{LazyLock, Mutex};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use super::deduplicator::{Deduplicator, Verdict};
use super::message::DedupMessage;
use crate::filter::{self, lock, Output};
use crate::meta::DreamSimMeta;

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "dreamsimdedup",
        gst::DebugColorFlags::empty(),
        Some("DreamSim near-duplicate filter"),
    )
});

// For the real DreamSim ensemble; see the README (Defaults, and what they were checked on).
pub const DEFAULT_THRESHOLD: f64 = 0.02;
pub const DEFAULT_MAX_CONSECUTIVE_DROPS: u32 = 0;
const DEFAULT_EXTEND_DURATION: bool = false;
const DEFAULT_POST_MESSAGES: bool = true;
/// DreamSim distances are 1 - cosine: 0 to 2.
const MAX_DISTANCE: f64 = 2.0;

#[derive(Debug, Clone, Copy)]
struct Settings {
    threshold: f64,
    max_consecutive_drops: u32,
    extend_duration: bool,
    post_messages: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            threshold: DEFAULT_THRESHOLD,
            max_consecutive_drops: DEFAULT_MAX_CONSECUTIVE_DROPS,
            extend_duration: DEFAULT_EXTEND_DURATION,
            post_messages: DEFAULT_POST_MESSAGES,
        }
    }
}

impl Settings {
    /// Buffers held back: the last kept one, with `extend-duration`.
    fn held_buffers(&self) -> u32 {
        u32::from(self.extend_duration)
    }

    /// Frame durations a buffer may be delayed: with `extend-duration` it
    /// leaves when the next frame is kept, at most `max-consecutive-drops`
    /// + 1 frames later (unbounded without a bound; one frame is reported).
    fn delay_frames(&self) -> u64 {
        match (self.extend_duration, self.max_consecutive_drops) {
            (false, _) => 0,
            (true, 0) => 1,
            (true, n) => u64::from(n) + 1,
        }
    }
}

/// The last kept buffer, held for `extend-duration`, and what waits behind it.
#[derive(Debug)]
struct Held {
    buffer: gst::Buffer,
    /// End of the last frame dropped after it.
    covered_end: Option<gst::ClockTime>,
    /// Serialized events that arrived after it.
    events: Vec<gst::Event>,
}

#[derive(Debug, Default)]
struct State {
    dedup: Deduplicator,
    held: Option<Held>,
    /// A dropped buffer had DISCONT: the next kept one carries it.
    discont: bool,
    counts: DedupMessage,
    frame_duration: Option<gst::ClockTime>,
    buffer_duration: Option<gst::ClockTime>,
    warned_malformed: bool,
}

impl State {
    /// Releases the held buffer, stretched over the frames dropped after
    /// it, and the events behind it.
    fn release_held(&mut self, outputs: &mut Vec<Output>) {
        let Some(held) = self.held.take() else {
            return;
        };
        let mut buffer = held.buffer;
        if let (Some(pts), Some(end)) = (buffer.pts(), held.covered_end) {
            if end > pts {
                buffer.make_mut().set_duration(end - pts);
            }
        }
        outputs.push(Output::Buffer(buffer));
        outputs.extend(held.events.into_iter().map(Output::Event));
    }
}

pub struct DreamSimDedup {
    srcpad: gst::Pad,
    sinkpad: gst::Pad,
    settings: Mutex<Settings>,
    state: Mutex<State>,
}

impl DreamSimDedup {
    fn sink_chain(
        &self,
        _pad: &gst::Pad,
        mut buffer: gst::Buffer,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let settings = *lock(&self.settings);
        let embedding = match DreamSimMeta::from_buffer(&buffer) {
            None => None,
            Some(Ok(meta)) => Some(meta.embedding),
            Some(Err(e)) => {
                let mut state = lock(&self.state);
                if !state.warned_malformed {
                    state.warned_malformed = true;
                    gst::warning!(CAT, imp = self, "{e}; such frames are kept");
                }
                None
            }
        };

        let mut outputs = Vec::new();
        {
            let mut state = lock(&self.state);
            if buffer.duration().is_some() {
                state.buffer_duration = buffer.duration();
            }
            let verdict = state.dedup.push(
                embedding,
                settings.threshold,
                settings.max_consecutive_drops,
            );
            gst::trace!(CAT, imp = self, "{} {verdict:?}", buffer.pts().display());
            match verdict {
                Verdict::Drop { .. } => {
                    state.counts.dropped += 1;
                    if buffer.flags().contains(gst::BufferFlags::DISCONT) {
                        state.discont = true;
                    }
                    if let Some(held) = state.held.as_mut() {
                        let end = buffer
                            .pts()
                            .map(|pts| pts + buffer.duration().unwrap_or(gst::ClockTime::ZERO));
                        held.covered_end = held.covered_end.max(end);
                    }
                }
                Verdict::Keep { .. } | Verdict::Unanalysed => {
                    state.counts.kept += 1;
                    if verdict == Verdict::Unanalysed {
                        state.counts.without_meta += 1;
                    }
                    if std::mem::take(&mut state.discont) {
                        buffer.make_mut().set_flags(gst::BufferFlags::DISCONT);
                    }
                    state.release_held(&mut outputs);
                    if settings.extend_duration {
                        state.held = Some(Held {
                            buffer,
                            covered_end: None,
                            events: Vec::new(),
                        });
                    } else {
                        outputs.push(Output::Buffer(buffer));
                    }
                }
            }
        }
        self.send(outputs).0
    }

    fn send(&self, outputs: Vec<Output>) -> (Result<gst::FlowSuccess, gst::FlowError>, bool) {
        filter::send(self.obj().upcast_ref(), &self.srcpad, *CAT, outputs)
    }

    fn sink_event(&self, pad: &gst::Pad, event: gst::Event) -> bool {
        use gst::EventView;
        gst::log!(CAT, obj = pad, "Event {event:?}");
        match event.view() {
            EventView::FlushStart(_) => self.srcpad.push_event(event),
            EventView::FlushStop(_) => {
                {
                    let mut state = lock(&self.state);
                    gst::debug!(CAT, imp = self, "Flush: forgetting the reference frame");
                    state.dedup.reset();
                    state.held = None;
                    state.discont = false;
                }
                self.srcpad.push_event(event)
            }
            EventView::Eos(_) => {
                let post_messages = lock(&self.settings).post_messages;
                let mut outputs = Vec::new();
                let counts = {
                    let mut state = lock(&self.state);
                    state.release_held(&mut outputs);
                    state.counts
                };
                let (_, mut ok) = self.send(outputs);
                gst::info!(
                    CAT,
                    imp = self,
                    "EOS: kept {}, dropped {}, without meta {}",
                    counts.kept,
                    counts.dropped,
                    counts.without_meta
                );
                if post_messages {
                    let _ = self.obj().post_message(counts.to_message(&*self.obj()));
                }
                ok &= self.srcpad.push_event(event);
                ok
            }
            // Time or format changes: the held buffer does not stretch past them.
            EventView::Caps(_)
            | EventView::Segment(_)
            | EventView::StreamStart(_)
            | EventView::Gap(_)
            | EventView::SegmentDone(_) => {
                if let EventView::Caps(c) = event.view() {
                    let duration = filter::frame_duration(c.caps());
                    let changed = {
                        let mut state = lock(&self.state);
                        std::mem::replace(&mut state.frame_duration, duration) != duration
                    };
                    if changed && lock(&self.settings).extend_duration {
                        filter::post_latency(self.obj().upcast_ref());
                    }
                }
                let mut outputs = Vec::new();
                lock(&self.state).release_held(&mut outputs);
                outputs.push(Output::Event(event));
                self.send(outputs).1
            }
            _ if event.is_serialized() => {
                {
                    let mut state = lock(&self.state);
                    if let Some(held) = state.held.as_mut() {
                        held.events.push(event);
                        return true;
                    }
                }
                self.srcpad.push_event(event)
            }
            _ => gst::Pad::event_default(pad, Some(&*self.obj()), event),
        }
    }

    fn sink_query(&self, pad: &gst::Pad, query: &mut gst::QueryRef) -> bool {
        if let gst::QueryViewMut::Allocation(_) = query.view_mut() {
            let held = lock(&self.settings).held_buffers();
            return filter::allocation_with_held_buffers(&self.srcpad, query, held);
        }
        gst::Pad::query_default(pad, Some(&*self.obj()), query)
    }

    fn src_query(&self, pad: &gst::Pad, query: &mut gst::QueryRef) -> bool {
        if let gst::QueryViewMut::Latency(_) = query.view_mut() {
            let settings = *lock(&self.settings);
            let frame = {
                let state = lock(&self.state);
                state.frame_duration.or(state.buffer_duration)
            };
            let ours = filter::frames_of(frame, settings.delay_frames());
            let live = filter::latency_plus(&self.sinkpad, query, ours);
            if live == Some(true) && settings.extend_duration && settings.max_consecutive_drops == 0
            {
                gst::warning!(
                    CAT,
                    imp = self,
                    "extend-duration in a live pipeline without max-consecutive-drops: \
                     a long run of duplicates delays frames without bound"
                );
            }
            return live.is_some();
        }
        gst::Pad::query_default(pad, Some(&*self.obj()), query)
    }
}

#[glib::object_subclass]
impl ObjectSubclass for DreamSimDedup {
    const NAME: &'static str = "GstDreamSimDedup";
    type Type = super::DreamSimDedup;
    type ParentType = gst::Element;

    fn with_class(klass: &Self::Class) -> Self {
        let templ = klass.pad_template("sink").expect("sink template");
        let sinkpad = gst::Pad::builder_from_template(&templ)
            .chain_function(|pad, parent, buffer| {
                DreamSimDedup::catch_panic_pad_function(
                    parent,
                    || Err(gst::FlowError::Error),
                    |imp| imp.sink_chain(pad, buffer),
                )
            })
            .event_function(|pad, parent, event| {
                DreamSimDedup::catch_panic_pad_function(
                    parent,
                    || false,
                    |imp| imp.sink_event(pad, event),
                )
            })
            .query_function(|pad, parent, query| {
                DreamSimDedup::catch_panic_pad_function(
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
                DreamSimDedup::catch_panic_pad_function(
                    parent,
                    || false,
                    |imp| imp.src_query(pad, query),
                )
            })
            .flags(gst::PadFlags::PROXY_CAPS)
            .build();
        Self {
            srcpad,
            sinkpad,
            settings: Mutex::new(Settings::default()),
            state: Mutex::new(State::default()),
        }
    }
}

impl ObjectImpl for DreamSimDedup {
    fn constructed(&self) {
        self.parent_constructed();
        let obj = self.obj();
        obj.add_pad(&self.sinkpad).expect("add sink pad");
        obj.add_pad(&self.srcpad).expect("add src pad");
    }

    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecDouble::builder(property::THRESHOLD)
                    .nick("Threshold")
                    .blurb(
                        "A frame whose DreamSim distance to the last kept frame is at most this \
                         is dropped",
                    )
                    .minimum(0.0)
                    .maximum(MAX_DISTANCE)
                    .default_value(DEFAULT_THRESHOLD)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder(property::MAX_CONSECUTIVE_DROPS)
                    .nick("Maximum consecutive drops")
                    .blurb(
                        "Frames that may be dropped in a row; the next one is kept whatever its \
                         distance (0: no bound)",
                    )
                    .default_value(DEFAULT_MAX_CONSECUTIVE_DROPS)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder(property::EXTEND_DURATION)
                    .nick("Extend duration")
                    .blurb(
                        "Stretch each kept frame's duration over the frames dropped after it \
                         (holds the kept frame until the next one is kept)",
                    )
                    .default_value(DEFAULT_EXTEND_DURATION)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder(property::POST_MESSAGES)
                    .nick("Post messages")
                    .blurb("Post a `dreamsim-dedup` element message with the counts at EOS")
                    .default_value(DEFAULT_POST_MESSAGES)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt64::builder(property::KEPT)
                    .nick("Kept")
                    .blurb("Frames passed downstream since the element started")
                    .read_only()
                    .build(),
                glib::ParamSpecUInt64::builder(property::DROPPED)
                    .nick("Dropped")
                    .blurb("Frames dropped since the element started")
                    .read_only()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let latency_changed = {
            let mut s = lock(&self.settings);
            let before = s.delay_frames();
            match pspec.name() {
                property::THRESHOLD => s.threshold = value.get().expect("type checked"),
                property::MAX_CONSECUTIVE_DROPS => {
                    s.max_consecutive_drops = value.get().expect("type checked")
                }
                property::EXTEND_DURATION => s.extend_duration = value.get().expect("type checked"),
                property::POST_MESSAGES => s.post_messages = value.get().expect("type checked"),
                other => unreachable!("unknown property {other}"),
            }
            before != s.delay_frames()
        };
        gst::info!(CAT, imp = self, "{} set to {:?}", pspec.name(), value);
        if latency_changed && self.obj().current_state() > gst::State::Ready {
            filter::post_latency(self.obj().upcast_ref());
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        match pspec.name() {
            property::KEPT => return lock(&self.state).counts.kept.to_value(),
            property::DROPPED => return lock(&self.state).counts.dropped.to_value(),
            _ => {}
        }
        let s = lock(&self.settings);
        match pspec.name() {
            property::THRESHOLD => s.threshold.to_value(),
            property::MAX_CONSECUTIVE_DROPS => s.max_consecutive_drops.to_value(),
            property::EXTEND_DURATION => s.extend_duration.to_value(),
            property::POST_MESSAGES => s.post_messages.to_value(),
            other => unreachable!("unknown property {other}"),
        }
    }
}

impl GstObjectImpl for DreamSimDedup {}

impl ElementImpl for DreamSimDedup {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "DreamSim near-duplicate filter",
                "Filter/Video",
                "Drops frames whose DreamSim embedding (from `dreamsim`) is within a threshold of \
                 the last kept frame's",
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
            *lock(&self.state) = State::default();
        }
        let ret = self.parent_change_state(transition)?;
        if transition == gst::StateChange::PausedToReady {
            // Nothing streams now. The counts stay readable.
            let mut state = lock(&self.state);
            let counts = state.counts;
            *state = State {
                counts,
                ..State::default()
            };
        }
        Ok(ret)
    }
}
