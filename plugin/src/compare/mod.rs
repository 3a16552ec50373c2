//! The `dreamsimcompare` element: streams under test against a reference
//! stream, frame by frame, with DreamSim (full-reference, like FFmpeg's
//! `libvmaf` filter with a learned perceptual metric).
//!
//! Pads: `reference` (always) takes the reference stream; `sink_%u`
//! (request) take the streams under test; `src` passes the first tested
//! stream's buffers (the lowest-numbered `sink_%u` pad present) with a
//! [`DreamSimMeta`](crate::meta::DreamSimMeta) whose `reference-distance` is
//! its distance to the reference frame it was paired with (`frame` is the
//! buffer's index on its pad, `embedding` its embedding, `distance` absent),
//! timestamped with its running time in the src segment. Sizes and formats
//! may differ between pads (the formats of `dreamsim`).
//!
//! Pairing is by running time; the rule is in [`pairing`]: each tested
//! frame is compared with the latest reference frame that started at or
//! before it. Tested frames that no reference frame covers pass unpaired
//! (without meta) and are counted.
//!
//! Cost: a reference frame is embedded once, whatever the number of tested
//! streams, and only if some tested frame pairs with it; the frames of a
//! round (the held reference frame and the tested frames it covers) go to
//! the model in one batch. The `stats` property counts both.
//!
//! Messages ([`message`]): a `dreamsimcompare` message per compared frame
//! (pad, timestamps, frame numbers, distance) and, at EOS, a
//! `dreamsimcompare-summary` per tested pad (frames, mean, harmonic mean,
//! min, max, p5/p50/p95, frames over `threshold`; pooling in [`stats`]).
//!
//! Defined behaviour:
//! - **Caps changes** on any pad apply from the next buffer of that pad; a
//!   change on the first tested pad changes the src caps with it.
//! - **Flushing seeks** drop the held reference frame and the queued
//!   buffers; pairing restarts from the frames after the flush. Frame
//!   numbers and the summary's figures count from start, across seeks.
//! - **A pad requested while playing** joins at its first buffer; frames
//!   that start before the reference frame being held are unpaired. **A pad
//!   released while playing** posts its summary at once; if it was the first
//!   tested pad, the next one's buffers go downstream from then on (with new
//!   caps when they differ).
//! - **A tested pad that reaches EOS** before the others stops counting;
//!   the others go on. The element sends EOS when every tested pad has,
//!   posting the summaries first; the reference's remaining frames are
//!   left unread.
//! - **The reference reaching EOS first**: its last frame covers
//!   `[start, start + duration)`, later tested frames are unpaired.
//! - **Live sources**: the aggregator's deadline applies (its `latency`
//!   property adds room); when it passes before the reference's next frame
//!   has arrived, tested frames pair with the held reference frame.
//! - A buffer without timestamp is an error (pairing needs running time).
//!
//! ```sh
//! gst-launch-1.0 -m \
//!   filesrc location=ref.mp4 ! decodebin ! videoconvert ! cmp.reference \
//!   filesrc location=test.mp4 ! decodebin ! videoconvert ! cmp.sink_0 \
//!   dreamsimcompare name=cmp ! fakesink
//! ```

use gst::glib;
use gst::prelude::*;

mod imp;
pub mod message;
pub mod pairing;
pub mod stats;

pub use message::{CompareMessage, CompareSummary};
pub use stats::Pooled;

/// The names of `dreamsimcompare`'s own properties, for applications that set
/// them (the command-line tool does); the model's are in
/// [`crate::model_settings::property`].
pub mod property {
    /// `stats`.
    pub const STATS: &str = "stats";
    /// `threshold`.
    pub const THRESHOLD: &str = "threshold";
    /// `post-messages`.
    pub const POST_MESSAGES: &str = "post-messages";
    /// `active-provider`.
    pub const ACTIVE_PROVIDER: &str = "active-provider";
    /// `active-precision`.
    pub const ACTIVE_PRECISION: &str = "active-precision";
}

/// Defaults of the properties the command-line tool exposes as options (its
/// help shows these values).
pub use imp::DEFAULT_THRESHOLD;

glib::wrapper! {
    /// The `dreamsimcompare` element.
    pub struct DreamSimCompare(ObjectSubclass<imp::DreamSimCompare>)
        @extends gst_base::Aggregator, gst::Element, gst::Object;
}

/// Registers the element with `plugin`.
pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "dreamsimcompare",
        gst::Rank::NONE,
        DreamSimCompare::static_type(),
    )
}
