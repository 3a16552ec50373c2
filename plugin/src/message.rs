//! The `dreamsim` element message, posted on the bus for every analysed
//! frame when `post-messages` is true, following the `level` element's
//! conventions so that `gst-launch-1.0 -m` shows it.
//!
//! | field | type | meaning |
//! |---|---|---|
//! | `timestamp` | GstClockTime | the buffer's PTS (NONE when unknown) |
//! | `stream-time` | GstClockTime | PTS in stream time |
//! | `running-time` | GstClockTime | PTS in running time |
//! | `duration` | GstClockTime | the buffer's duration |
//! | `frame` | u64 | as in `DreamSimMeta` |
//! | `distance` | f64 | to the previous analysed frame; absent on the first |
//! | `reference-distance` | f64 | to the reference image; absent without one |

use gst::prelude::*;

use crate::message_fields::{element_message, element_structure, Fields};

/// Name of the message structure.
pub const MESSAGE_NAME: &str = "dreamsim";

/// Typed content of a `dreamsim` element message.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DreamSimMessage {
    /// Buffer PTS.
    pub timestamp: Option<gst::ClockTime>,
    /// PTS in stream time.
    pub stream_time: Option<gst::ClockTime>,
    /// PTS in running time.
    pub running_time: Option<gst::ClockTime>,
    /// Buffer duration.
    pub duration: Option<gst::ClockTime>,
    /// Index of the buffer.
    pub frame: u64,
    /// Distance to the previous analysed frame.
    pub distance: Option<f64>,
    /// Distance to the reference image.
    pub reference_distance: Option<f64>,
}

impl From<&DreamSimMessage> for gst::Structure {
    fn from(m: &DreamSimMessage) -> Self {
        let mut s = gst::Structure::builder(MESSAGE_NAME)
            .field("timestamp", m.timestamp)
            .field("stream-time", m.stream_time)
            .field("running-time", m.running_time)
            .field("duration", m.duration)
            .field("frame", m.frame)
            .build();
        if let Some(d) = m.distance {
            s.set("distance", d);
        }
        if let Some(d) = m.reference_distance {
            s.set("reference-distance", d);
        }
        s
    }
}

impl TryFrom<&gst::StructureRef> for DreamSimMessage {
    type Error = glib::Error;

    fn try_from(s: &gst::StructureRef) -> Result<Self, Self::Error> {
        let f = Fields::of(s, MESSAGE_NAME)?;
        Ok(Self {
            timestamp: f.time("timestamp")?,
            stream_time: f.time("stream-time")?,
            running_time: f.time("running-time")?,
            duration: f.time("duration")?,
            frame: f.get("frame")?,
            distance: f.optional("distance")?,
            reference_distance: f.optional("reference-distance")?,
        })
    }
}

impl DreamSimMessage {
    /// Reads a `dreamsim` element message; `None` for any other message.
    pub fn from_message(msg: &gst::MessageRef) -> Option<Self> {
        element_structure(msg, MESSAGE_NAME).and_then(|s| Self::try_from(s).ok())
    }

    /// Builds the element message posted by `src`.
    pub fn to_message(&self, src: &impl IsA<gst::Object>) -> gst::Message {
        element_message(self.into(), src)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        gst::init().unwrap();
        let m = DreamSimMessage {
            timestamp: Some(gst::ClockTime::from_mseconds(40)),
            stream_time: Some(gst::ClockTime::from_mseconds(40)),
            running_time: None,
            duration: Some(gst::ClockTime::from_mseconds(40)),
            frame: 1,
            distance: Some(0.125),
            reference_distance: None,
        };
        let s = gst::Structure::from(&m);
        assert!(!s.has_field("reference-distance"));
        assert_eq!(DreamSimMessage::try_from(s.as_ref()).unwrap(), m);
    }

    #[test]
    fn wrong_name_is_rejected() {
        gst::init().unwrap();
        let s = gst::Structure::builder("level")
            .field("frame", 1u64)
            .build();
        assert!(DreamSimMessage::try_from(s.as_ref()).is_err());
    }
}
