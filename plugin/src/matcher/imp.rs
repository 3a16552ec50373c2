//! `dreamsimmatch`: looks every analysed frame up in an embedding index and
//! annotates, drops or reports the frames within the threshold of a known
//! item. Frames without `DreamSimMeta` (not analysed: `dreamsim`'s
//! `interval`) pass untouched. Nothing is held back, so events and queries
//! pass through as they come.

use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use dreamsim_index::IndexOptions;
use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use super::lookup::{Lookup, LookupError};
use super::message::MatchMessage;
use super::{MatchAction, OnError};
use crate::filter::lock;
use crate::meta::{DreamSimMeta, FrameEmbedding, IndexMatch};
use crate::timing::FrameTiming;

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "dreamsimmatch",
        gst::DebugColorFlags::empty(),
        Some("DreamSim match against a set of known items"),
    )
});

const DEFAULT_TOP_K: u32 = 5;
const MAX_TOP_K: u32 = 1000;
// For the real DreamSim ensemble: copies that differ by resampling and
// compression are far below it, different pictures far above (0.2-0.5).
// Not tuned on any fixture.
const DEFAULT_THRESHOLD: f64 = 0.1;
/// DreamSim distances are 1 - cosine: 0 to 2.
const MAX_DISTANCE: f64 = 2.0;
const DEFAULT_TIMEOUT_MS: u32 = 1000;
const DEFAULT_RETRY_INTERVAL_MS: u32 = 5000;
const DEFAULT_POST_MESSAGES: bool = true;
const DEFAULT_EF_SEARCH: u32 = dreamsim_index::DEFAULT_EF_SEARCH as u32;
const MAX_EF_SEARCH: u32 = 65_536;

#[derive(Debug, Clone)]
struct Settings {
    index_location: Option<String>,
    top_k: u32,
    threshold: f64,
    action: MatchAction,
    on_error: OnError,
    timeout_ms: u32,
    retry_interval_ms: u32,
    post_messages: bool,
    ef_search: u32,
    /// PostgreSQL table prefix (`<prefix>_model`, `<prefix>_entries`).
    table_prefix: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            index_location: None,
            top_k: DEFAULT_TOP_K,
            threshold: DEFAULT_THRESHOLD,
            action: MatchAction::default(),
            on_error: OnError::default(),
            timeout_ms: DEFAULT_TIMEOUT_MS,
            retry_interval_ms: DEFAULT_RETRY_INTERVAL_MS,
            post_messages: DEFAULT_POST_MESSAGES,
            ef_search: DEFAULT_EF_SEARCH,
            table_prefix: dreamsim_index::DEFAULT_PG_TABLE.to_owned(),
        }
    }
}

/// What each frame needs from the settings, copied without allocating.
#[derive(Debug, Clone, Copy)]
struct PerFrame {
    top_k: u32,
    threshold: f64,
    action: MatchAction,
    on_error: OnError,
    post_messages: bool,
}

impl Settings {
    fn per_frame(&self) -> PerFrame {
        PerFrame {
            top_k: self.top_k,
            threshold: self.threshold,
            action: self.action,
            on_error: self.on_error,
            post_messages: self.post_messages,
        }
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    matched: u64,
    dropped: u64,
}

#[derive(Default)]
struct State {
    lookup: Option<Lookup>,
    counts: Counts,
    /// A dropped buffer: the next one that leaves carries DISCONT.
    discont: bool,
    /// Warned about an unavailable index since it last answered.
    warned_unavailable: bool,
    warned_malformed: bool,
    segment: Option<gst::FormattedSegment<gst::ClockTime>>,
    /// The current frame's embedding, read into the same buffers each frame.
    frame: FrameEmbedding,
}

pub struct DreamSimMatch {
    srcpad: gst::Pad,
    sinkpad: gst::Pad,
    settings: Mutex<Settings>,
    state: Mutex<State>,
}

impl DreamSimMatch {
    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let settings = lock(&self.settings).clone();
        let Some(location) = settings.index_location.clone() else {
            return Err(gst::error_msg!(
                gst::ResourceError::NotFound,
                ("No index-location set: give an index file or a postgresql:// URI (build one \
                  with gst-dreamsim index add)")
            ));
        };
        let timeout = Duration::from_millis(u64::from(settings.timeout_ms.max(1)));
        let options = IndexOptions {
            pg_connect_timeout: timeout,
            pg_statement_timeout: timeout,
            ef_search: settings.ef_search as usize,
            // Checked by the index client, which refuses (and the element
            // fails to start with) a prefix that is not a plain lowercase name.
            pg_table: settings.table_prefix.clone(),
            ..IndexOptions::default()
        };
        let retry = Duration::from_millis(u64::from(settings.retry_interval_ms));
        let mut lookup = Lookup::open(&location, options, retry)
            .map_err(|e| gst::error_msg!(gst::ResourceError::OpenRead, ("{}", e)))?;
        gst::info!(CAT, imp = self, "Matching against {}", lookup.describe());
        *lock(&self.state) = State {
            lookup: Some(lookup),
            counts: Counts::default(),
            ..State::default()
        };
        Ok(())
    }

    fn sink_chain(
        &self,
        _pad: &gst::Pad,
        mut buffer: gst::Buffer,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        // The per-frame settings only: the location (a String) is read at start.
        let settings = lock(&self.settings).per_frame();
        let mut guard = lock(&self.state);
        let state = &mut *guard;
        let analysed = match state.frame.read(&buffer) {
            Ok(analysed) => analysed,
            Err(e) => {
                if !std::mem::replace(&mut state.warned_malformed, true) {
                    gst::warning!(CAT, imp = self, "{e}; such frames pass unmatched");
                }
                false
            }
        };
        let matches = if analysed {
            self.look_up(state, &settings)?
        } else {
            Vec::new()
        };

        let mut message = None;
        let mut dropped = false;
        if !matches.is_empty() {
            state.counts.matched += 1;
            let timing = FrameTiming::of(&buffer, state.segment.as_ref());
            let frame = state.frame.frame;
            gst::debug!(
                CAT,
                imp = self,
                "Frame {frame} ({}) matches {} known items, nearest {} at {:.4}",
                timing.timestamp.display(),
                matches.len(),
                matches[0].label,
                matches[0].distance
            );
            match settings.action {
                MatchAction::Drop => {
                    state.counts.dropped += 1;
                    state.discont = true;
                    dropped = true;
                }
                MatchAction::Pass => {
                    DreamSimMeta::set_matches(buffer.make_mut(), &matches);
                }
                MatchAction::Post => {}
            }
            if settings.post_messages {
                message = Some(MatchMessage {
                    timing,
                    frame,
                    action: settings.action.as_str().to_owned(),
                    matches,
                });
            }
        }
        if !dropped && std::mem::take(&mut state.discont) {
            buffer.make_mut().set_flags(gst::BufferFlags::DISCONT);
        }
        // Nothing is posted or pushed under the lock: a bus sync handler or
        // downstream may read this element's properties.
        drop(guard);
        if let Some(msg) = message {
            let _ = self.obj().post_message(msg.to_message(&*self.obj()));
        }
        if dropped {
            return Ok(gst::FlowSuccess::Ok);
        }
        self.srcpad.push(buffer)
    }

    /// The known items within the threshold of the frame in `state`,
    /// following the failure policy when the index cannot answer.
    fn look_up(
        &self,
        state: &mut State,
        settings: &PerFrame,
    ) -> Result<Vec<IndexMatch>, gst::FlowError> {
        let Some(lookup) = state.lookup.as_mut() else {
            return Err(gst::FlowError::Flushing);
        };
        let result = lookup.matches(
            &state.frame.model,
            &state.frame.embedding,
            settings.top_k as usize,
            settings.threshold,
        );
        match result {
            Ok(hits) => {
                if std::mem::take(&mut state.warned_unavailable) {
                    gst::info!(CAT, imp = self, "The index answers again");
                }
                Ok(hits
                    .into_iter()
                    .map(|m| IndexMatch {
                        id: m.entry.id,
                        label: m.entry.label,
                        distance: m.distance,
                    })
                    .collect())
            }
            Err(LookupError::Unavailable(why)) if settings.on_error == OnError::Pass => {
                if !std::mem::replace(&mut state.warned_unavailable, true) {
                    gst::element_imp_warning!(
                        self,
                        gst::ResourceError::Read,
                        (
                            "The index cannot answer ({}); frames pass unmatched until it does \
                             (on-error=pass)",
                            why
                        )
                    );
                }
                Ok(Vec::new())
            }
            Err(LookupError::Unavailable(why)) => {
                gst::element_imp_error!(
                    self,
                    gst::ResourceError::Read,
                    (
                        "The index cannot answer: {}. Set on-error=pass to let frames pass \
                         unmatched while it is unavailable",
                        why
                    )
                );
                Err(gst::FlowError::Error)
            }
            Err(LookupError::Fatal(why)) => {
                gst::element_imp_error!(self, gst::LibraryError::Settings, ("{}", why));
                Err(gst::FlowError::Error)
            }
        }
    }

    fn sink_event(&self, pad: &gst::Pad, event: gst::Event) -> bool {
        match event.view() {
            gst::EventView::Segment(s) => {
                lock(&self.state).segment = s.segment().downcast_ref::<gst::ClockTime>().cloned();
            }
            gst::EventView::FlushStop(_) => lock(&self.state).discont = false,
            _ => {}
        }
        gst::Pad::event_default(pad, Some(&*self.obj()), event)
    }
}

#[glib::object_subclass]
impl ObjectSubclass for DreamSimMatch {
    const NAME: &'static str = "GstDreamSimMatch";
    type Type = super::DreamSimMatch;
    type ParentType = gst::Element;

    fn with_class(klass: &Self::Class) -> Self {
        let templ = klass.pad_template("sink").expect("sink template");
        let sinkpad = gst::Pad::builder_from_template(&templ)
            .chain_function(|pad, parent, buffer| {
                DreamSimMatch::catch_panic_pad_function(
                    parent,
                    || Err(gst::FlowError::Error),
                    |imp| imp.sink_chain(pad, buffer),
                )
            })
            .event_function(|pad, parent, event| {
                DreamSimMatch::catch_panic_pad_function(
                    parent,
                    || false,
                    |imp| imp.sink_event(pad, event),
                )
            })
            .flags(gst::PadFlags::PROXY_CAPS | gst::PadFlags::PROXY_ALLOCATION)
            .build();
        let templ = klass.pad_template("src").expect("src template");
        let srcpad = gst::Pad::builder_from_template(&templ)
            .flags(gst::PadFlags::PROXY_CAPS | gst::PadFlags::PROXY_ALLOCATION)
            .build();
        Self {
            srcpad,
            sinkpad,
            settings: Mutex::new(Settings::default()),
            state: Mutex::new(State::default()),
        }
    }
}

impl ObjectImpl for DreamSimMatch {
    fn constructed(&self) {
        self.parent_constructed();
        let obj = self.obj();
        obj.add_pad(&self.sinkpad).expect("add sink pad");
        obj.add_pad(&self.srcpad).expect("add src pad");
    }

    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecString::builder("index-location")
                    .nick("Index location")
                    .blurb(
                        "The set of known items: an index file (gst-dreamsim index add; a \
                         replaced file is picked up within 50 ms), or a postgresql:// URI of a \
                         PostgreSQL server with pgvector. Read back without its password",
                    )
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("table-prefix")
                    .nick("Table prefix")
                    .blurb(
                        "PostgreSQL index only: the set's tables are PREFIX_model and \
                         PREFIX_entries (gst-dreamsim index --pg-table); lowercase letters, \
                         digits and _, at most 48, else the element fails to start",
                    )
                    .default_value(Some(dreamsim_index::DEFAULT_PG_TABLE))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("top-k")
                    .nick("Top k")
                    .blurb("Nearest known items looked at per frame")
                    .minimum(1)
                    .maximum(MAX_TOP_K)
                    .default_value(DEFAULT_TOP_K)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecDouble::builder("threshold")
                    .nick("Threshold")
                    .blurb(
                        "A frame matches a known item when their DreamSim distance is at most \
                         this (the default suits the real ensemble)",
                    )
                    .minimum(0.0)
                    .maximum(MAX_DISTANCE)
                    .default_value(DEFAULT_THRESHOLD)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("action", MatchAction::default())
                    .nick("Action")
                    .blurb("What to do with a frame that matches")
                    .mutable_playing()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("on-error", OnError::default())
                    .nick("On error")
                    .blurb(
                        "What to do when the index cannot answer (a server that is down or \
                         slower than timeout)",
                    )
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("timeout")
                    .nick("Timeout")
                    .blurb(
                        "Milliseconds a PostgreSQL index may take to connect or to answer one \
                         frame before the lookup fails",
                    )
                    .minimum(1)
                    .default_value(DEFAULT_TIMEOUT_MS)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("retry-interval")
                    .nick("Retry interval")
                    .blurb(
                        "With on-error=pass, milliseconds between attempts to reach an index \
                         that did not answer",
                    )
                    .default_value(DEFAULT_RETRY_INTERVAL_MS)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("ef-search")
                    .nick("Search breadth")
                    .blurb(
                        "HNSW search breadth of a large index (usearch expansion_search, \
                         pgvector hnsw.ef_search): wider finds the nearest item more often, \
                         narrower costs less per frame (docs/index.md)",
                    )
                    .minimum(1)
                    .maximum(MAX_EF_SEARCH)
                    .default_value(DEFAULT_EF_SEARCH)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("post-messages")
                    .nick("Post messages")
                    .blurb("Post a dreamsim-match element message for every matching frame")
                    .default_value(DEFAULT_POST_MESSAGES)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt64::builder("matched")
                    .nick("Matched")
                    .blurb("Frames that matched a known item since the element started")
                    .read_only()
                    .build(),
                glib::ParamSpecUInt64::builder("dropped")
                    .nick("Dropped")
                    .blurb("Matching frames dropped (action=drop) since the element started")
                    .read_only()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut s = lock(&self.settings);
        match pspec.name() {
            "index-location" => {
                s.index_location = value
                    .get::<Option<String>>()
                    .expect("type checked")
                    .filter(|l| !l.is_empty())
            }
            "table-prefix" => {
                s.table_prefix = value
                    .get::<Option<String>>()
                    .expect("type checked")
                    .unwrap_or_else(|| dreamsim_index::DEFAULT_PG_TABLE.to_owned())
            }
            "top-k" => s.top_k = value.get().expect("type checked"),
            "threshold" => s.threshold = value.get().expect("type checked"),
            "action" => s.action = value.get().expect("type checked"),
            "on-error" => s.on_error = value.get().expect("type checked"),
            "timeout" => s.timeout_ms = value.get().expect("type checked"),
            "retry-interval" => s.retry_interval_ms = value.get().expect("type checked"),
            "post-messages" => s.post_messages = value.get().expect("type checked"),
            "ef-search" => s.ef_search = value.get().expect("type checked"),
            other => unreachable!("unknown property {other}"),
        }
        // A location may hold a password: it is logged redacted.
        let shown = match pspec.name() {
            "index-location" => format!("{:?}", s.index_location.as_deref().map(redact)),
            _ => format!("{value:?}"),
        };
        gst::info!(CAT, imp = self, "{} set to {shown}", pspec.name());
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        match pspec.name() {
            "matched" => return lock(&self.state).counts.matched.to_value(),
            "dropped" => return lock(&self.state).counts.dropped.to_value(),
            _ => {}
        }
        let s = lock(&self.settings);
        match pspec.name() {
            "index-location" => s.index_location.as_deref().map(redact).to_value(),
            "table-prefix" => s.table_prefix.to_value(),
            "top-k" => s.top_k.to_value(),
            "threshold" => s.threshold.to_value(),
            "action" => s.action.to_value(),
            "on-error" => s.on_error.to_value(),
            "timeout" => s.timeout_ms.to_value(),
            "retry-interval" => s.retry_interval_ms.to_value(),
            "post-messages" => s.post_messages.to_value(),
            "ef-search" => s.ef_search.to_value(),
            other => unreachable!("unknown property {other}"),
        }
    }
}

fn redact(location: &str) -> String {
    dreamsim_index::redact(location)
}

impl GstObjectImpl for DreamSimMatch {}

impl ElementImpl for DreamSimMatch {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "DreamSim match against known items",
                "Filter/Video",
                "Looks each frame's DreamSim embedding (from `dreamsim`) up in a set of known \
                 items and annotates, drops or reports the frames close to one",
                "gst-dreamsim developers",
            )
        });
        Some(&*METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
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
            if let Err(e) = self.start() {
                self.post_error_message(e);
                return Err(gst::StateChangeError);
            }
        }
        let ret = self.parent_change_state(transition)?;
        if transition == gst::StateChange::PausedToReady {
            // The counts stay readable after the stream.
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
