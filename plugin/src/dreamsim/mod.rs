//! The `dreamsim` element: attaches to every analysed frame its DreamSim
//! distance to the previous analysed frame and to a reference image
//! ([`crate::meta::DreamSimMeta`]), and posts a `dreamsim` message
//! ([`DreamSimMessage`]) per analysed frame, running the model on batches in
//! its own thread.
//!
//! ```text
//! gst-launch-1.0 -m filesrc location=in.mp4 ! decodebin ! videoconvert \
//!     ! dreamsim reference-location=known.png batch-size=4 ! fakesink
//! ```
//!
//! `queue` keeps buffers and serialized events in order between the
//! streaming thread and the model's; `video` maps a GStreamer frame to the
//! engine's [`dreamsim::Frame`].

use gst::glib;
use gst::prelude::*;

mod imp;
mod message;
mod queue;
pub(crate) mod video;

pub use message::DreamSimMessage;
pub use video::{thumbnail, with_engine_frame};

use crate::model_settings::{ExecutionProvider, Precision};

/// The names of `dreamsim`'s own properties, for applications that set
/// them (the command-line tool does); the model's are in
/// [`crate::model_settings::property`].
pub mod property {
    /// `stats`.
    pub const STATS: &str = "stats";
    /// `reference-location`.
    pub const REFERENCE_LOCATION: &str = "reference-location";
    /// `reference-max-pixels`.
    pub const REFERENCE_MAX_PIXELS: &str = "reference-max-pixels";
    /// `active-provider`.
    pub const ACTIVE_PROVIDER: &str = "active-provider";
    /// `active-precision`.
    pub const ACTIVE_PRECISION: &str = "active-precision";
    /// `interval`.
    pub const INTERVAL: &str = "interval";
    /// `post-messages`.
    pub const POST_MESSAGES: &str = "post-messages";
    /// `batch-size`.
    pub const BATCH_SIZE: &str = "batch-size";
    /// `change-threshold`.
    pub const CHANGE_THRESHOLD: &str = "change-threshold";
    /// `max-reuse`.
    pub const MAX_REUSE: &str = "max-reuse";
    /// `max-queued-bytes`.
    pub const MAX_QUEUED_BYTES: &str = "max-queued-bytes";
    /// `max-latency`.
    pub const MAX_LATENCY: &str = "max-latency";
}

/// Defaults of the properties the command-line tool exposes as options (its
/// help shows these values).
pub use imp::{DEFAULT_BATCH_SIZE, DEFAULT_INTERVAL};

glib::wrapper! {
    /// The `dreamsim` element.
    pub struct DreamSim(ObjectSubclass<imp::DreamSim>)
        @extends gst::Element, gst::Object;
}

/// Registers the element with `plugin`.
pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    // gst-inspect documents the enum's values through this.
    ExecutionProvider::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    Precision::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    gst::Element::register(
        Some(plugin),
        "dreamsim",
        gst::Rank::NONE,
        DreamSim::static_type(),
    )
}
