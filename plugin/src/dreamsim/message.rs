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
//! | `reused-from` | u64 | the change test reused the embedding of this analysed frame (as in `DreamSimMeta`); absent when the model analysed the frame |

use gst::prelude::*;

use crate::structure::{element_message, read_message, Fields, MalformedStructure};
use crate::timing::FrameTiming;

/// Name of the message structure.
pub const MESSAGE_NAME: &str = "dreamsim";

/// Typed content of a `dreamsim` element message.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DreamSimMessage {
    /// When the frame is.
    pub timing: FrameTiming,
    /// Index of the buffer.
    pub frame: u64,
    /// Distance to the previous analysed frame.
    pub distance: Option<f64>,
    /// Distance to the reference image.
    pub reference_distance: Option<f64>,
    /// As `DreamSimMeta::reused_from`: `None` when the model analysed the
    /// frame.
    pub reused_from: Option<u64>,
}

impl From<&DreamSimMessage> for gst::Structure {
    fn from(m: &DreamSimMessage) -> Self {
        let mut s = m
            .timing
            .write(gst::Structure::builder(MESSAGE_NAME))
            .field("frame", m.frame)
            .build();
        if let Some(d) = m.distance {
            s.set("distance", d);
        }
        if let Some(d) = m.reference_distance {
            s.set("reference-distance", d);
        }
        if let Some(from) = m.reused_from {
            s.set("reused-from", from);
        }
        s
    }
}

impl TryFrom<&gst::StructureRef> for DreamSimMessage {
    type Error = MalformedStructure;

    fn try_from(s: &gst::StructureRef) -> Result<Self, Self::Error> {
        let f = Fields::of(s, MESSAGE_NAME)?;
        Ok(Self {
            timing: FrameTiming::read(&f)?,
            frame: f.get("frame")?,
            distance: f.optional("distance")?,
            reference_distance: f.optional("reference-distance")?,
            reused_from: f.optional("reused-from")?,
        })
    }
}

impl DreamSimMessage {
    /// Reads a `dreamsim` element message: `None` for any other message,
    /// an error when it breaks the schema above.
    pub fn from_message(msg: &gst::MessageRef) -> Option<Result<Self, MalformedStructure>> {
        read_message(msg, MESSAGE_NAME)
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
            timing: FrameTiming {
                timestamp: Some(gst::ClockTime::from_mseconds(40)),
                stream_time: Some(gst::ClockTime::from_mseconds(40)),
                running_time: None,
                duration: Some(gst::ClockTime::from_mseconds(40)),
            },
            frame: 1,
            distance: Some(0.125),
            reference_distance: None,
            reused_from: None,
        };
        let s = gst::Structure::from(&m);
        assert!(!s.has_field("reference-distance"));
        assert!(!s.has_field("reused-from"));
        assert_eq!(DreamSimMessage::try_from(s.as_ref()).unwrap(), m);
        let reused = DreamSimMessage {
            reused_from: Some(0),
            distance: Some(0.0),
            ..m
        };
        let s = gst::Structure::from(&reused);
        assert_eq!(s.get::<u64>("reused-from").unwrap(), 0);
        assert_eq!(DreamSimMessage::try_from(s.as_ref()).unwrap(), reused);
        let msg = m.to_message(&gst::Bin::new());
        assert_eq!(DreamSimMessage::from_message(&msg), Some(Ok(m)));
        assert_eq!(
            DreamSimMessage::from_message(&gst::message::Eos::new()),
            None
        );
    }

    #[test]
    fn a_malformed_message_is_an_error_not_another_message() {
        gst::init().unwrap();
        let s = gst::Structure::builder(MESSAGE_NAME)
            .field("frame", "seven")
            .build();
        let msg = crate::structure::element_message(s, &gst::Bin::new());
        let e = DreamSimMessage::from_message(&msg).unwrap().unwrap_err();
        assert_eq!(e.structure, MESSAGE_NAME);
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
