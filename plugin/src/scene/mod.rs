//! The `dreamsimscene` element: decides where scenes start from the
//! distances in `DreamSimMeta`, marks every analysed frame with its scene
//! (`SceneMark`), posts a `dreamsim-scene` message ([`SceneMessage`]) on each
//! scene's first frame and can ask a downstream encoder for a keyframe there.
//!
//! ```text
//! gst-launch-1.0 -m filesrc location=in.mp4 ! decodebin ! videoconvert \
//!     ! dreamsim ! dreamsimscene force-key-units=true ! x264enc ! mp4mux ! filesink location=out.mp4
//! ```
//!
//! The decision is [`detector`]'s, GStreamer-free and unit-tested; `imp`
//! holds the buffers back until it is known.
//!
//! Frames without a usable distance:
//! - a `DreamSimMeta` with no `distance` (the first analysed frame, or the
//!   first after `dreamsim` forgot its previous frame at a flush) is a
//!   discontinuity: that frame starts a scene (not counted as a cut) and
//!   the adaptive window starts afresh;
//! - a `DreamSimMeta` whose distance or embedding is NaN or infinite (never
//!   written by `dreamsim`, which stops with an error when its model gives
//!   such values) is malformed: one warning in the log, and the frame passes
//!   unmarked as if it had no meta; the detector neither cuts on it nor lets
//!   it into the adaptive mean.

use gst::glib;
use gst::prelude::*;

mod detector;
mod imp;
mod message;

pub use message::SceneMessage;

/// How `dreamsimscene` decides that a frame starts a scene.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstDreamSimSceneMode")]
pub enum SceneMode {
    /// A frame starts a scene when its distance to the previous analysed
    /// frame reaches `threshold`. Adds no latency.
    #[enum_value(name = "Fixed: distance >= threshold", nick = "fixed")]
    Fixed = 0,
    /// A frame starts a scene when its distance is `adaptive-threshold` times
    /// the mean distance of the `window` analysed frames before and after it
    /// and at least `min-distance`, as PySceneDetect's adaptive detector does.
    /// Holds back `window` analysed frames.
    #[default]
    #[enum_value(
        name = "Adaptive: distance / mean of the neighbours' distances >= adaptive-threshold",
        nick = "adaptive"
    )]
    Adaptive = 1,
}

/// The names of `dreamsimscene`'s own properties, for applications that set
/// them (the command-line tool does); the model's are in
/// [`crate::model_settings::property`].
pub mod property {
    /// `mode`.
    pub const MODE: &str = "mode";
    /// `threshold`.
    pub const THRESHOLD: &str = "threshold";
    /// `adaptive-threshold`.
    pub const ADAPTIVE_THRESHOLD: &str = "adaptive-threshold";
    /// `min-distance`.
    pub const MIN_DISTANCE: &str = "min-distance";
    /// `window`.
    pub const WINDOW: &str = "window";
    /// `min-scene-length`.
    pub const MIN_SCENE_LENGTH: &str = "min-scene-length";
    /// `force-key-units`.
    pub const FORCE_KEY_UNITS: &str = "force-key-units";
    /// `post-messages`.
    pub const POST_MESSAGES: &str = "post-messages";
    /// `scenes`.
    pub const SCENES: &str = "scenes";
}

/// Defaults of the properties the command-line tool exposes as options (its
/// help shows these values).
pub use imp::{
    DEFAULT_ADAPTIVE_THRESHOLD, DEFAULT_MIN_DISTANCE, DEFAULT_MIN_SCENE_LENGTH, DEFAULT_THRESHOLD,
    DEFAULT_WINDOW,
};

glib::wrapper! {
    /// The `dreamsimscene` element.
    pub struct DreamSimScene(ObjectSubclass<imp::DreamSimScene>)
        @extends gst::Element, gst::Object;
}

/// Registers the element with `plugin`.
pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    SceneMode::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    gst::Element::register(
        Some(plugin),
        "dreamsimscene",
        gst::Rank::NONE,
        DreamSimScene::static_type(),
    )
}
