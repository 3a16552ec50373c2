//! The `dreamsimcompare` element: a `GstAggregator` whose `reference` pad
//! carries the reference stream and whose `sink_%u` pads carry the streams
//! under test. Each call of `aggregate` is one round: it holds the reference
//! frame that covers the earliest queued tested frame (see
//! [`super::pairing`]), takes every tested frame that frame (or no frame)
//! covers, embeds the reference frame (once) and those tested frames in one
//! model run, and pushes the first tested stream's frame with its meta.

use super::property;
use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};

use dreamsim::{Embedding, Engine};
use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::prelude::*;
use gst_base::AggregatorPad;

use super::message::{CompareMessage, CompareSummary};
use super::pairing::{decide, Decision, Span, Upcoming};
use super::stats::Distances;
use crate::dreamsim::video;
use crate::meta::DreamSimMeta;
use crate::model_settings::{error_message, ModelSettings};
use crate::timing::FrameTiming;

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "dreamsimcompare",
        gst::DebugColorFlags::empty(),
        Some("DreamSim full-reference comparison"),
    )
});

/// Name of the reference stream's pad.
pub(crate) const REFERENCE_PAD: &str = "reference";

pub const DEFAULT_THRESHOLD: f64 = 0.2;
const DEFAULT_POST_MESSAGES: bool = true;
/// The largest model run when fewer pads exist at start (TensorRT builds
/// its engine for a maximum batch; larger rounds run in chunks).
const MIN_MAX_BATCH: usize = 8;

#[derive(Debug, Clone)]
struct Settings {
    model: ModelSettings,
    threshold: f64,
    post_messages: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            model: ModelSettings::default(),
            threshold: DEFAULT_THRESHOLD,
            post_messages: DEFAULT_POST_MESSAGES,
        }
    }
}

/// A tested pad's state.
#[derive(Default)]
struct TestedPad {
    /// The caps in force for the next queued buffer, and their video info.
    caps: Option<(gst::Caps, Arc<gst_video::VideoInfo>)>,
    /// Buffers taken from the pad since start.
    frames: u64,
    distances: Distances,
    unpaired: u64,
}

/// The reference frame being held (pairing.rs).
struct Held {
    buffer: gst::Buffer,
    info: Arc<gst_video::VideoInfo>,
    span: Span,
    index: u64,
    /// Computed the first time a tested frame pairs with it.
    embedding: Option<Embedding>,
}

#[derive(Default)]
struct Streams {
    reference_info: Option<Arc<gst_video::VideoInfo>>,
    /// Reference buffers taken since start.
    reference_frames: u64,
    held: Option<Held>,
    tested: BTreeMap<String, TestedPad>,
    /// The caps last set on the src pad.
    src_caps: Option<gst::Caps>,
}

struct ModelState {
    engine: Engine,
    kind: String,
    max_batch: usize,
}

/// What the `stats` property reports.
#[derive(Debug, Clone, Copy, Default)]
struct Stats {
    frames: u64,
    unpaired_frames: u64,
    reference_frames: u64,
    reference_inferences: u64,
    engine: dreamsim::EngineStats,
    /// Loading the model at start.
    load_time: std::time::Duration,
    /// What runs the model (set at start).
    provider: Option<&'static str>,
    precision: Option<&'static str>,
}

/// A tested frame taken in a round.
struct Taken {
    pad: String,
    buffer: gst::Buffer,
    running_time: Option<gst::ClockTime>,
    stream_time: Option<gst::ClockTime>,
    frame: u64,
    /// Index into the round's embeddings, when paired.
    slot: Option<usize>,
    info: Option<Arc<gst_video::VideoInfo>>,
}

pub struct DreamSimCompare {
    reference: AggregatorPad,
    settings: Mutex<Settings>,
    streams: Mutex<Streams>,
    model: Mutex<Option<ModelState>>,
    stats: Mutex<Stats>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not turn every later call into a panic too.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The number in a `sink_%u` pad name, to order the tested pads.
fn serial(name: &str) -> u32 {
    name.strip_prefix("sink_")
        .and_then(|n| n.parse().ok())
        .unwrap_or(u32::MAX)
}

impl DreamSimCompare {
    /// The tested pads, in the order of their numbers: the first one's
    /// buffers go downstream.
    fn tested_pads(&self) -> Vec<AggregatorPad> {
        let mut pads: Vec<AggregatorPad> = self
            .obj()
            .sink_pads()
            .into_iter()
            .filter(|p| p.name() != REFERENCE_PAD)
            .filter_map(|p| p.downcast::<AggregatorPad>().ok())
            .collect();
        pads.sort_by_key(|p| serial(&p.name()));
        pads
    }

    /// The running time of `buffer`'s PTS on `pad`; `None` outside the
    /// segment. A buffer without PTS cannot be paired: an error.
    fn running_time(
        &self,
        pad: &AggregatorPad,
        buffer: &gst::BufferRef,
    ) -> Result<Option<gst::ClockTime>, gst::FlowError> {
        Ok(self.times(pad, buffer)?.0)
    }

    /// The running and stream times of `buffer`'s PTS on `pad`.
    fn times(
        &self,
        pad: &AggregatorPad,
        buffer: &gst::BufferRef,
    ) -> Result<(Option<gst::ClockTime>, Option<gst::ClockTime>), gst::FlowError> {
        let Some(pts) = buffer.pts() else {
            gst::element_imp_error!(
                self,
                gst::StreamError::Format,
                (
                    "Buffer without timestamp on pad {}: dreamsimcompare pairs frames by \
                     running time",
                    pad.name()
                ),
                ["Timestamp the stream upstream (a parser, or do-timestamp on a source)"]
            );
            return Err(gst::FlowError::Error);
        };
        let segment = pad.segment();
        match segment.downcast_ref::<gst::ClockTime>() {
            Some(s) => Ok((s.to_running_time(pts), s.to_stream_time(pts))),
            None => {
                gst::element_imp_error!(
                    self,
                    gst::StreamError::Format,
                    (
                        "Pad {} has a {:?} segment, not a time segment",
                        pad.name(),
                        segment.format()
                    )
                );
                Err(gst::FlowError::Error)
            }
        }
    }

    /// What comes after the held reference frame.
    fn upcoming(&self, timeout: bool) -> Result<Upcoming, gst::FlowError> {
        Ok(match self.reference.peek_buffer() {
            Some(buffer) => match self.running_time(&self.reference, &buffer)? {
                Some(t) => Upcoming::Frame(t.nseconds()),
                // Outside the segment: it starts before anything, so the
                // next round drops it.
                None => Upcoming::Frame(0),
            },
            None if self.reference.is_eos() => Upcoming::Eos,
            None if timeout => Upcoming::TimedOut,
            None => Upcoming::Unknown,
        })
    }

    /// Takes the next reference buffer and holds it.
    fn advance(&self, streams: &mut Streams) -> Result<(), gst::FlowError> {
        let Some(buffer) = self.reference.pop_buffer() else {
            return Ok(());
        };
        let index = streams.reference_frames;
        streams.reference_frames += 1;
        let Some(start) = self.running_time(&self.reference, &buffer)? else {
            gst::debug!(
                CAT,
                imp = self,
                "Reference frame {index} outside its segment"
            );
            return Ok(());
        };
        let info = streams.reference_info.clone().ok_or_else(|| {
            gst::element_imp_error!(
                self,
                gst::CoreError::Negotiation,
                ("Buffer received on the reference pad before caps")
            );
            gst::FlowError::NotNegotiated
        })?;
        streams.held = Some(Held {
            span: Span {
                start: start.nseconds(),
                duration: buffer.duration().map(|d| d.nseconds()),
            },
            buffer,
            info,
            index,
            embedding: None,
        });
        Ok(())
    }

    /// Embeds `buffers` (with their video info) in runs of at most the
    /// model's maximum batch.
    fn embed(
        &self,
        buffers: &[(&gst::Buffer, &gst_video::VideoInfo)],
    ) -> Result<Vec<Embedding>, gst::ErrorMessage> {
        let mapped = buffers
            .iter()
            .map(|(buffer, info)| {
                gst_video::VideoFrameRef::from_buffer_ref_readable(buffer.as_ref(), info).map_err(
                    |_| {
                        gst::error_msg!(
                            gst::StreamError::Format,
                            (
                                "Buffer of {} bytes does not hold a {}x{} {} frame",
                                buffer.size(),
                                info.width(),
                                info.height(),
                                info.format().to_str()
                            )
                        )
                    },
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        let frames = mapped
            .iter()
            .map(video::engine_frame)
            .collect::<Result<Vec<_>, _>>()?;
        let mut guard = lock(&self.model);
        let model = guard.as_mut().ok_or_else(|| {
            gst::error_msg!(gst::CoreError::StateChange, ("The model is not loaded"))
        })?;
        let mut embeddings = Vec::with_capacity(frames.len());
        for chunk in frames.chunks(model.max_batch) {
            embeddings.extend(
                model
                    .engine
                    .embed_frames(chunk)
                    .map_err(|e| error_message(&e))?,
            );
        }
        lock(&self.stats).engine = model.engine.stats();
        Ok(embeddings)
    }

    fn model_kind(&self) -> String {
        lock(&self.model)
            .as_ref()
            .map(|m| m.kind.clone())
            .unwrap_or_default()
    }

    fn summary(&self, name: &str, pad: &TestedPad, threshold: f64) -> CompareSummary {
        CompareSummary {
            pad: name.to_owned(),
            unpaired: pad.unpaired,
            threshold,
            pooled: pad.distances.pool(threshold),
        }
    }

    fn post_summaries(&self) {
        let threshold = lock(&self.settings).threshold;
        let summaries: Vec<CompareSummary> = lock(&self.streams)
            .tested
            .iter()
            .map(|(name, pad)| self.summary(name, pad, threshold))
            .collect();
        for s in summaries {
            gst::info!(CAT, imp = self, "{s:?}");
            let _ = self.obj().post_message(s.to_message(&*self.obj()));
        }
    }

    /// One round (see the module documentation).
    fn round(&self, timeout: bool) -> Result<gst::FlowSuccess, gst::FlowError> {
        let post_messages = lock(&self.settings).post_messages;
        let tested = self.tested_pads();

        let mut queued = Vec::with_capacity(tested.len());
        for pad in &tested {
            if let Some(buffer) = pad.peek_buffer() {
                let (t, stream_time) = self.times(pad, &buffer)?;
                queued.push((pad, t, stream_time));
            }
        }
        if queued.is_empty() {
            if tested.iter().all(|p| p.is_eos()) {
                if tested.is_empty() && self.reference.pop_buffer().is_some() {
                    // No stream to compare yet: the reference frame is unused.
                    lock(&self.streams).reference_frames += 1;
                    return Ok(gst::FlowSuccess::Ok);
                }
                gst::debug!(CAT, imp = self, "Every tested stream has ended");
                self.post_summaries();
                return Err(gst::FlowError::Eos);
            }
            // Live and timed out with no tested frame: nothing to do.
            return Err(gst_base::AGGREGATOR_FLOW_NEED_DATA);
        }

        let mut streams = lock(&self.streams);
        let earliest = queued.iter().filter_map(|(_, t, _)| *t).min();
        if let Some(earliest) = earliest {
            while decide(
                earliest.nseconds(),
                streams.held.as_ref().map(|h| h.span),
                self.upcoming(timeout)?,
            ) == Decision::Advance
            {
                self.advance(&mut streams)?;
            }
        }

        // The tested frames this round takes.
        let upcoming = self.upcoming(timeout)?;
        let held_span = streams.held.as_ref().map(|h| h.span);
        let mut taken = Vec::with_capacity(queued.len());
        let mut paired = 0;
        for (pad, t, stream_time) in queued {
            let decision = match t {
                Some(t) => decide(t.nseconds(), held_span, upcoming),
                None => Decision::Unpaired,
            };
            let is_paired = match decision {
                Decision::Held => true,
                Decision::Unpaired => false,
                Decision::Advance | Decision::Wait => continue,
            };
            let Some(buffer) = pad.pop_buffer() else {
                continue;
            };
            let name = pad.name().to_string();
            let Some(state) = streams.tested.get_mut(&name) else {
                // Released while this round ran.
                continue;
            };
            let frame = state.frames;
            state.frames += 1;
            let info = state.caps.as_ref().map(|(_, info)| info.clone());
            if is_paired && info.is_none() {
                gst::element_imp_error!(
                    self,
                    gst::CoreError::Negotiation,
                    ("Buffer received on pad {name} before caps")
                );
                return Err(gst::FlowError::NotNegotiated);
            }
            // Slots count only the frames actually taken.
            let slot = is_paired.then(|| {
                paired += 1;
                paired - 1
            });
            taken.push(Taken {
                pad: name,
                buffer,
                running_time: t,
                stream_time,
                frame,
                slot,
                info,
            });
        }
        if taken.is_empty() {
            // Waiting for the reference's next frame.
            return Err(gst_base::AGGREGATOR_FLOW_NEED_DATA);
        }

        // One model run: the held reference frame (unless already embedded)
        // and every paired tested frame.
        let mut embeddings = Vec::new();
        let mut reference_embedded = false;
        if paired > 0 {
            let held = streams
                .held
                .as_ref()
                .expect("paired frames have a held frame");
            let mut inputs: Vec<(&gst::Buffer, &gst_video::VideoInfo)> =
                Vec::with_capacity(paired + 1);
            if held.embedding.is_none() {
                inputs.push((&held.buffer, &held.info));
                reference_embedded = true;
            }
            inputs.extend(
                taken
                    .iter()
                    .filter(|t| t.slot.is_some())
                    .map(|t| (&t.buffer, &**t.info.as_ref().expect("checked above"))),
            );
            embeddings = self.embed(&inputs).map_err(|msg| {
                self.post_error_message(msg);
                gst::FlowError::Error
            })?;
            if reference_embedded {
                let e = embeddings.remove(0);
                streams.held.as_mut().expect("held").embedding = Some(e);
            }
        }

        let (reference_index, reference_start, reference_embedding) = match &streams.held {
            Some(h) => (
                h.index,
                Some(gst::ClockTime::from_nseconds(h.span.start)),
                h.embedding.clone(),
            ),
            None => (0, None, None),
        };
        let output_pad = tested.first().map(|p| p.name().to_string());
        let output_caps = output_pad
            .as_ref()
            .and_then(|n| streams.tested.get(n))
            .and_then(|s| s.caps.as_ref().map(|(c, _)| c.clone()));
        let mut messages = Vec::new();
        let mut output = None;
        let mut compared = 0;
        let mut unpaired = 0;
        for t in taken {
            let Some(state) = streams.tested.get_mut(&t.pad) else {
                continue;
            };
            let distance = match (t.slot, &reference_embedding) {
                (Some(slot), Some(reference)) => {
                    let d = reference.distance(&embeddings[slot]).map_err(|e| {
                        self.post_error_message(error_message(&e));
                        gst::FlowError::Error
                    })?;
                    state.distances.push(d);
                    compared += 1;
                    Some(d)
                }
                _ => {
                    state.unpaired += 1;
                    unpaired += 1;
                    None
                }
            };
            if post_messages {
                if let Some(distance) = distance {
                    messages.push(self.frame_message(
                        &t,
                        reference_index,
                        reference_start,
                        distance,
                    ));
                }
            }
            if output_pad.as_deref() == Some(t.pad.as_str()) {
                let meta = match (t.slot, distance) {
                    (Some(slot), Some(d)) => Some(DreamSimMeta {
                        matches: Vec::new(),
                        frame: t.frame,
                        distance: None,
                        reference_distance: Some(d),
                        embedding: embeddings[slot].as_slice().to_vec(),
                        model: String::new(),
                        reused_from: None,
                        scene: None,
                    }),
                    _ => None,
                };
                output = Some((t.buffer, t.running_time, meta));
            }
        }
        let new_caps = match (&output, output_caps) {
            (Some(_), Some(caps)) if streams.src_caps.as_ref() != Some(&caps) => {
                streams.src_caps = Some(caps.clone());
                Some(caps)
            }
            _ => None,
        };
        let reference_frames = streams.reference_frames;
        drop(streams);

        {
            let mut stats = lock(&self.stats);
            stats.frames += compared;
            stats.unpaired_frames += unpaired;
            stats.reference_frames = reference_frames;
            stats.reference_inferences += u64::from(reference_embedded);
        }
        for m in messages {
            let _ = self.obj().post_message(m.to_message(&*self.obj()));
        }
        if let Some(caps) = new_caps {
            gst::debug!(CAT, imp = self, "Output caps {caps}");
            self.obj().set_src_caps(&caps);
        }
        match output {
            Some((buffer, running_time, meta)) => self.push(buffer, running_time, meta),
            None => Ok(gst::FlowSuccess::Ok),
        }
    }

    fn frame_message(
        &self,
        t: &Taken,
        reference_frame: u64,
        reference_running_time: Option<gst::ClockTime>,
        distance: f64,
    ) -> CompareMessage {
        CompareMessage {
            pad: t.pad.clone(),
            timing: FrameTiming {
                timestamp: t.buffer.pts(),
                stream_time: t.stream_time,
                running_time: t.running_time,
                duration: t.buffer.duration(),
            },
            frame: t.frame,
            reference_frame,
            reference_running_time,
            distance,
        }
    }

    /// Pushes the first tested stream's buffer, timestamped in the src
    /// segment from its running time, with its meta.
    fn push(
        &self,
        mut buffer: gst::Buffer,
        running_time: Option<gst::ClockTime>,
        meta: Option<DreamSimMeta>,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        {
            let b = buffer.make_mut();
            if let Some(mut meta) = meta {
                meta.model = self.model_kind();
                meta.add_to(b).map_err(|e| {
                    gst::element_imp_error!(self, gst::CoreError::Failed, ("{}", e));
                    gst::FlowError::Error
                })?;
            }
            if let Some(rt) = running_time {
                let segment = self.obj().src_pad().segment();
                let time_segment = segment.downcast_ref::<gst::ClockTime>();
                let pts = time_segment
                    .and_then(|s| s.position_from_running_time(rt))
                    .unwrap_or(rt);
                b.set_pts(pts);
                b.set_dts(gst::ClockTime::NONE);
                // set_position asserts a time segment (a seek in another
                // format leaves the position alone).
                if time_segment.is_some() {
                    self.obj()
                        .set_position(pts + b.duration().unwrap_or(gst::ClockTime::ZERO));
                }
            }
        }
        self.obj().finish_buffer(buffer)
    }

    fn store_caps(&self, pad: &AggregatorPad, caps: &gst::CapsRef) -> bool {
        let info = match gst_video::VideoInfo::from_caps(caps) {
            Ok(info) if video::pixel_format(info.format()).is_some() => Arc::new(info),
            _ => {
                gst::element_imp_error!(
                    self,
                    gst::CoreError::Negotiation,
                    (
                        "{}",
                        video::unsupported_caps_message(caps)
                            .unwrap_or_else(|| format!("Unusable caps {caps} on {}", pad.name()))
                    )
                );
                return false;
            }
        };
        gst::debug!(CAT, obj = pad, "Caps {caps}");
        let mut streams = lock(&self.streams);
        if pad == &self.reference {
            streams.reference_info = Some(info);
        } else {
            match streams.tested.get_mut(pad.name().as_str()) {
                Some(state) => state.caps = Some((caps.to_owned(), info)),
                None => gst::debug!(CAT, obj = pad, "Caps on a released pad"),
            }
        }
        true
    }
}

#[glib::object_subclass]
impl ObjectSubclass for DreamSimCompare {
    const NAME: &'static str = "GstDreamSimCompare";
    type Type = super::DreamSimCompare;
    type ParentType = gst_base::Aggregator;

    fn with_class(klass: &Self::Class) -> Self {
        let templ = klass
            .pad_template(REFERENCE_PAD)
            .expect("the reference template");
        let reference = gst::PadBuilder::<AggregatorPad>::from_template(&templ).build();
        Self {
            reference,
            settings: Mutex::default(),
            streams: Mutex::default(),
            model: Mutex::default(),
            stats: Mutex::default(),
        }
    }
}

impl ObjectImpl for DreamSimCompare {
    fn constructed(&self) {
        self.parent_constructed();
        self.obj()
            .add_pad(&self.reference)
            .expect("a new element has no reference pad yet");
    }

    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            let mut properties = ModelSettings::properties();
            properties.extend([
                glib::ParamSpecDouble::builder(property::THRESHOLD)
                    .nick("Threshold")
                    .blurb(
                        "The summary at EOS counts the frames whose distance to the reference \
                         is above this",
                    )
                    .minimum(0.0)
                    .maximum(2.0)
                    .default_value(DEFAULT_THRESHOLD)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder(property::POST_MESSAGES)
                    .nick("Post messages")
                    .blurb("Post a `dreamsimcompare` element message for every compared frame")
                    .default_value(DEFAULT_POST_MESSAGES)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecString::builder(property::ACTIVE_PROVIDER)
                    .nick("Active provider")
                    .blurb("The execution provider actually running the model (NULL until started)")
                    .read_only()
                    .build(),
                glib::ParamSpecString::builder(property::ACTIVE_PRECISION)
                    .nick("Active precision")
                    .blurb("The arithmetic the model actually runs in (NULL until started)")
                    .read_only()
                    .build(),
                glib::ParamSpecBoxed::builder::<gst::Structure>(property::STATS)
                    .nick("Statistics")
                    .blurb(
                        "Since start: frames (tested frames compared), unpaired-frames, \
                         reference-frames (received), reference-inferences (reference frames \
                         embedded: at most one per reference frame, whatever the number of \
                         tested streams), inferred-frames and batches (model runs), \
                         preprocess-time and inference-time (ns); load-time (ns): loading the \
                         model at start",
                    )
                    .read_only()
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
            property::THRESHOLD => s.threshold = value.get().expect("type checked"),
            property::POST_MESSAGES => s.post_messages = value.get().expect("type checked"),
            other => unreachable!("unknown property {other}"),
        }
        gst::info!(CAT, imp = self, "{} set to {:?}", pspec.name(), value);
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        match pspec.name() {
            property::ACTIVE_PROVIDER => return lock(&self.stats).provider.to_value(),
            property::ACTIVE_PRECISION => return lock(&self.stats).precision.to_value(),
            _ => {}
        }
        if pspec.name() == property::STATS {
            let st = *lock(&self.stats);
            return gst::Structure::builder("dreamsimcompare-stats")
                .field("frames", st.frames)
                .field("unpaired-frames", st.unpaired_frames)
                .field("reference-frames", st.reference_frames)
                .field("reference-inferences", st.reference_inferences)
                .field("inferred-frames", st.engine.inferred_frames)
                .field("batches", st.engine.batches)
                .field("preprocess-time", st.engine.preprocess.as_nanos() as u64)
                .field("inference-time", st.engine.inference.as_nanos() as u64)
                .field("load-time", st.load_time.as_nanos() as u64)
                .build()
                .to_value();
        }
        let s = lock(&self.settings);
        if let Some(value) = s.model.get(pspec.name()) {
            return value;
        }
        match pspec.name() {
            property::THRESHOLD => s.threshold.to_value(),
            property::POST_MESSAGES => s.post_messages.to_value(),
            other => unreachable!("unknown property {other}"),
        }
    }
}

impl GstObjectImpl for DreamSimCompare {}

impl ElementImpl for DreamSimCompare {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "DreamSim full-reference comparison",
                "Filter/Analyzer/Video",
                "Compares streams under test with a reference stream frame by frame (paired by \
                 running time) with DreamSim; passes the first tested stream on with its \
                 distance in DreamSimMeta, posts `dreamsimcompare` messages and a summary per \
                 stream at EOS",
                "gst-dreamsim developers",
            )
        });
        Some(&*METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let caps = video::caps();
            let pad = |name, direction, presence| {
                gst::PadTemplate::with_gtype(
                    name,
                    direction,
                    presence,
                    &caps,
                    AggregatorPad::static_type(),
                )
                .expect("valid template")
            };
            vec![
                pad("src", gst::PadDirection::Src, gst::PadPresence::Always),
                pad(
                    REFERENCE_PAD,
                    gst::PadDirection::Sink,
                    gst::PadPresence::Always,
                ),
                pad(
                    "sink_%u",
                    gst::PadDirection::Sink,
                    gst::PadPresence::Request,
                ),
            ]
        });
        TEMPLATES.as_ref()
    }

    fn release_pad(&self, pad: &gst::Pad) {
        let name = pad.name();
        let removed = lock(&self.streams).tested.remove(name.as_str());
        if let Some(state) = removed {
            // The pad's figures would be lost with it: say them now.
            let threshold = lock(&self.settings).threshold;
            let summary = self.summary(&name, &state, threshold);
            gst::info!(CAT, imp = self, "Pad released: {summary:?}");
            let _ = self.obj().post_message(summary.to_message(&*self.obj()));
        }
        self.parent_release_pad(pad);
    }
}

impl AggregatorImpl for DreamSimCompare {
    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let settings = lock(&self.settings).clone();
        let max_batch = MIN_MAX_BATCH.max(1 + self.tested_pads().len());
        let started = std::time::Instant::now();
        // Not handed back to the model pool: an aggregator's runs are long.
        let (model, _) = settings
            .model
            .load(self.obj().upcast_ref(), *CAT, max_batch)?;
        let kind = model.info().kind.clone();
        *lock(&self.stats) = Stats {
            load_time: started.elapsed(),
            provider: Some(model.provider().as_str()),
            precision: Some(model.compute_precision().as_str()),
            ..Stats::default()
        };
        *lock(&self.model) = Some(ModelState {
            engine: Engine::new(model),
            kind,
            max_batch,
        });
        let mut streams = lock(&self.streams);
        streams.held = None;
        streams.reference_frames = 0;
        streams.src_caps = None;
        for pad in streams.tested.values_mut() {
            pad.frames = 0;
            pad.distances = Distances::default();
            pad.unpaired = 0;
        }
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        *lock(&self.model) = None;
        {
            let mut stats = lock(&self.stats);
            stats.provider = None;
            stats.precision = None;
        }
        let mut streams = lock(&self.streams);
        streams.held = None;
        streams.src_caps = None;
        streams.reference_info = None;
        for pad in streams.tested.values_mut() {
            pad.caps = None;
        }
        Ok(())
    }

    fn flush(&self) -> Result<gst::FlowSuccess, gst::FlowError> {
        gst::debug!(
            CAT,
            imp = self,
            "Flush: the held reference frame is dropped"
        );
        lock(&self.streams).held = None;
        self.parent_flush()
    }

    fn create_new_pad(
        &self,
        templ: &gst::PadTemplate,
        req_name: Option<&str>,
        caps: Option<&gst::Caps>,
    ) -> Option<AggregatorPad> {
        let pad = self.parent_create_new_pad(templ, req_name, caps)?;
        lock(&self.streams)
            .tested
            .insert(pad.name().to_string(), TestedPad::default());
        Some(pad)
    }

    fn sink_event(&self, pad: &AggregatorPad, event: gst::Event) -> bool {
        if let gst::EventView::Caps(c) = event.view() {
            // Consumed: the src caps follow the first tested pad's, set
            // when its first buffer with them goes out.
            return self.store_caps(pad, c.caps());
        }
        self.parent_sink_event(pad, event)
    }

    fn negotiate(&self) -> bool {
        // The src caps are the first tested stream's, set in aggregate.
        true
    }

    fn next_time(&self) -> Option<gst::ClockTime> {
        self.obj().simple_get_next_time()
    }

    fn aggregate(&self, timeout: bool) -> Result<gst::FlowSuccess, gst::FlowError> {
        self.round(timeout)
    }
}
