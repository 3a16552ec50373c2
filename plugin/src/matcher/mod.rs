//! The `dreamsimmatch` element: after `dreamsim`, looks each analysed
//! frame's embedding up in a set of known items (an embedding index built
//! with `gst-dreamsim index add`: a file, or a PostgreSQL + pgvector server
//! shared by many pipelines) and acts on the frames within `threshold` of
//! one: annotates them (`matches` in `DreamSimMeta`), drops them (a
//! blocklist), or only reports them. Every matching frame gets a
//! `dreamsim-match` message ([`MatchMessage`]).
//!
//! ```text
//! gst-launch-1.0 -m filesrc location=in.mp4 ! decodebin ! videoconvert ! dreamsim \
//!     ! dreamsimmatch index-location=known.dsindex threshold=0.1 action=drop ! autovideosink
//! ```
//!
//! A file index replaced while the pipeline runs (by `gst-dreamsim index
//! add`) is picked up between two frames, atomically, within
//! 50 ms of the rename. A server that fails
//! or answers later than `timeout` is an error, or with `on-error=pass` the
//! frames pass unmatched and the server is tried again every
//! `retry-interval`. [`lookup`] holds that logic, GStreamer-free.

use gst::glib;
use gst::prelude::*;

mod imp;
mod lookup;
mod message;

pub use message::MatchMessage;

/// What `dreamsimmatch` does with a frame within the threshold of a known item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstDreamSimMatchAction")]
pub enum MatchAction {
    /// The frame passes, with its matches in `DreamSimMeta`.
    #[default]
    #[enum_value(
        name = "Pass: annotate the frame's meta with its matches",
        nick = "pass"
    )]
    Pass = 0,
    /// The frame does not leave the element (a blocklist); the other
    /// frames keep their timestamps, the next one is marked DISCONT.
    #[enum_value(
        name = "Drop: the matching frame does not leave the element",
        nick = "drop"
    )]
    Drop = 1,
    /// The frame passes untouched; only the message reports the match.
    #[enum_value(name = "Post: only post the dreamsim-match message", nick = "post")]
    Post = 2,
}

impl MatchAction {
    /// The nick, as the message's `action` field carries it.
    pub fn as_str(self) -> &'static str {
        match self {
            MatchAction::Pass => "pass",
            MatchAction::Drop => "drop",
            MatchAction::Post => "post",
        }
    }
}

/// What `dreamsimmatch` does when the index cannot answer (a server that
/// is down or slower than `timeout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstDreamSimMatchOnError")]
pub enum OnError {
    /// Post an error: the pipeline stops.
    #[default]
    #[enum_value(name = "Error: post an error and stop", nick = "error")]
    Error = 0,
    /// Let the frames pass unmatched, warn, and try the index again every
    /// `retry-interval`.
    #[enum_value(
        name = "Pass: frames pass unmatched (with a warning) until the index answers again",
        nick = "pass"
    )]
    Pass = 1,
}

glib::wrapper! {
    /// The `dreamsimmatch` element.
    pub struct DreamSimMatch(ObjectSubclass<imp::DreamSimMatch>)
        @extends gst::Element, gst::Object;
}

/// Registers the element with `plugin`.
pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    MatchAction::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    OnError::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    gst::Element::register(
        Some(plugin),
        "dreamsimmatch",
        gst::Rank::NONE,
        DreamSimMatch::static_type(),
    )
}
