//! GStreamer plugin `dreamsim`: DreamSim perceptual distances on video.
//!
//! Elements:
//! - `dreamsim`: attaches [`meta::DreamSimMeta`] (distance to the previous
//!   analysed frame, to a reference image, and the embedding) to frames and
//!   posts `dreamsim` bus messages ([`message::DreamSimMessage`]).
//!
//! Applications read results with [`meta::DreamSimMeta::from_buffer`] or
//! [`message::DreamSimMessage::from_message`].

use gst::glib;

pub mod dreamsim;
pub mod message;
pub mod meta;

fn plugin_init(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    meta::register();
    dreamsim::register(plugin)?;
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
    env!("CARGO_PKG_REPOSITORY"),
    env!("BUILD_REL_DATE")
);
