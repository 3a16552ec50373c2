//! What every element of the plugin shares about its pads.

/// An always-present `src` and `sink` template with the same caps: all the
/// plugin's elements pass frames through unchanged.
pub fn src_and_sink_templates(caps: &gst::Caps) -> Vec<gst::PadTemplate> {
    [
        ("src", gst::PadDirection::Src),
        ("sink", gst::PadDirection::Sink),
    ]
    .into_iter()
    .map(|(name, direction)| {
        gst::PadTemplate::new(name, direction, gst::PadPresence::Always, caps)
            .expect("valid template")
    })
    .collect()
}
