//! The `dreamsimdedup` element: drops frames whose DreamSim embedding is
//! within a threshold of the last *kept* frame's.
//!
//! Comparing with the last kept frame, not the previous one, means a slow
//! pan (A~B, B~C, but A and C far apart) keeps a frame every time the view
//! has moved by the threshold, instead of being eaten frame by frame.
//!
//! The element compares embeddings, not the meta's `distance`, so a frame
//! without a distance is judged like any other. A frame without a usable
//! embedding — no `DreamSimMeta`, or one whose embedding or distances hold
//! NaN or infinities (malformed: one warning in the log) — is always kept
//! and does not become the reference later frames are compared with.
//!
//! ```text
//! gst-launch-1.0 -m filesrc location=in.mp4 ! decodebin ! videoconvert \
//!     ! dreamsim ! dreamsimdedup threshold=0.02 extend-duration=true ! autovideosink
//! ```
//!
//! The keep-or-drop decision is [`deduplicator`]'s, GStreamer-free and
//! unit-tested; at EOS the element posts a [`DedupMessage`] with its counts.

use gst::glib;
use gst::prelude::*;

mod deduplicator;
mod imp;
mod message;

pub use message::DedupMessage;

/// The names of `dreamsimdedup`'s own properties, for applications that set
/// them (the command-line tool does); the model's are in
/// [`crate::model_settings::property`].
pub mod property {
    /// `threshold`.
    pub const THRESHOLD: &str = "threshold";
    /// `max-consecutive-drops`.
    pub const MAX_CONSECUTIVE_DROPS: &str = "max-consecutive-drops";
    /// `extend-duration`.
    pub const EXTEND_DURATION: &str = "extend-duration";
    /// `post-messages`.
    pub const POST_MESSAGES: &str = "post-messages";
    /// `kept`.
    pub const KEPT: &str = "kept";
    /// `dropped`.
    pub const DROPPED: &str = "dropped";
}

/// Defaults of the properties the command-line tool exposes as options (its
/// help shows these values).
pub use imp::{DEFAULT_MAX_CONSECUTIVE_DROPS, DEFAULT_THRESHOLD};

glib::wrapper! {
    /// The `dreamsimdedup` element.
    pub struct DreamSimDedup(ObjectSubclass<imp::DreamSimDedup>)
        @extends gst::Element, gst::Object;
}

/// Registers the element with `plugin`.
pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "dreamsimdedup",
        gst::Rank::NONE,
        DreamSimDedup::static_type(),
    )
}
