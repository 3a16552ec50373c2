//! GStreamer plugin `dreamsim`: DreamSim perceptual distances on video.
//!
//! Elements:
//! - `dreamsim`: attaches [`meta::DreamSimMeta`] (distance to the previous
//!   analysed frame, to a reference image, and the embedding) to frames and
//!   posts `dreamsim` bus messages ([`message::DreamSimMessage`]).
//! - `dreamsimscene`: decides where scenes start from those distances (fixed
//!   or adaptive threshold), marks frames with their scene
//!   ([`meta::SceneMark`]), posts `dreamsim-scene` messages
//!   ([`scene_message::SceneMessage`]) and can request keyframes at cuts.
//! - `dreamsimdedup`: drops frames whose embedding is within a threshold of
//!   the last kept frame's; counts in properties and a `dreamsim-dedup`
//!   message at EOS ([`dedup_message::DedupMessage`]).
//! - `dreamsimcompare`: streams under test against a reference stream, paired
//!   by running time; `dreamsimcompare` messages per frame and a summary per
//!   stream at EOS ([`compare::CompareMessage`], [`compare::CompareSummary`]).
//!
//! Applications read results with [`meta::DreamSimMeta::from_buffer`] or
//! [`message::DreamSimMessage::from_message`],
//! [`scene_message::SceneMessage::from_message`] and
//! [`dedup_message::DedupMessage::from_message`].

use gst::glib;

pub mod compare;
pub mod dedup;
pub mod dedup_message;
pub mod dreamsim;
pub mod message;
mod message_fields;
pub mod meta;
mod model_settings;
mod pads;
pub mod scene;
pub mod scene_message;

fn plugin_init(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    meta::register();
    dreamsim::register(plugin)?;
    scene::register(plugin)?;
    dedup::register(plugin)?;
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
