//! GStreamer plugin `dreamsim`: DreamSim perceptual distances on video.
//!
//! Elements:
//! - `dreamsim`: attaches [`meta::DreamSimMeta`] (distance to the previous
//!   analysed frame, to a reference image, and the embedding) to frames and
//!   posts `dreamsim` bus messages ([`DreamSimMessage`]).
//! - `dreamsimscene`: decides where scenes start from those distances (fixed
//!   or adaptive threshold), marks frames with their scene
//!   ([`meta::SceneMark`]), posts `dreamsim-scene` messages
//!   ([`SceneMessage`]) and can request keyframes at cuts.
//! - `dreamsimdedup`: drops frames whose embedding is within a threshold of
//!   the last kept frame's; counts in properties and a `dreamsim-dedup`
//!   message at EOS ([`DedupMessage`]).
//! - `dreamsimmatch`: looks every analysed frame up in a set of known items
//!   (an embedding index) and annotates, drops or reports the matches
//!   ([`MatchMessage`]).
//! - `dreamsimcompare`: streams under test against a reference stream, paired
//!   by running time; `dreamsimcompare` messages per frame and a summary per
//!   stream at EOS ([`CompareMessage`], [`CompareSummary`]).
//!
//! Applications read results with [`DreamSimMeta::from_buffer`] and the
//! messages' typed readers [`DreamSimMessage::from_message`],
//! [`SceneMessage::from_message`] and [`DedupMessage::from_message`]; all of
//! them return `None` when the meta or message is not there and an error
//! ([`MalformedStructure`]) when it breaks its schema.

use gst::glib;

pub mod compare;
pub mod dedup;
pub mod dreamsim;
mod filter;
pub mod matcher;
pub mod meta;
pub mod model_settings;
mod ort_log;
mod pads;
pub mod scene;
mod structure;
mod timing;

pub use compare::{CompareMessage, CompareSummary};
pub use dedup::DedupMessage;
pub use dreamsim::DreamSimMessage;
pub use matcher::MatchMessage;
pub use meta::{DreamSimMeta, FrameEmbedding, IndexMatch, SceneMark};
pub use model_settings::{ExecutionProvider, ModelSettings, Precision};
pub use scene::SceneMessage;
pub use structure::MalformedStructure;
pub use timing::FrameTiming;

fn plugin_init(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    meta::register();
    ort_log::route_to_gstreamer();
    dreamsim::register(plugin)?;
    scene::register(plugin)?;
    dedup::register(plugin)?;
    matcher::register(plugin)?;
    compare::register(plugin)?;
    Ok(())
}

gst::plugin_define!(
    dreamsim,
    env!("CARGO_PKG_DESCRIPTION"),
    plugin_init,
    concat!(env!("CARGO_PKG_VERSION"), "-", env!("COMMIT_ID")),
    "MIT/X11",
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_NAME"),
    // No public repository yet: the origin is the package itself.
    env!("CARGO_PKG_NAME"),
    env!("BUILD_REL_DATE")
);
