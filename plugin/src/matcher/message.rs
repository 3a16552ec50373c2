//! The `dreamsim-match` element message, posted by `dreamsimmatch` for each
//! frame that matched at least one known item (not for the others), with
//! the `level` element's timestamp conventions so that `gst-launch-1.0 -m`
//! shows it.
//!
//! | field | type | meaning |
//! |---|---|---|
//! | `timestamp`, `stream-time`, `running-time`, `duration` | GstClockTime | the frame's times |
//! | `frame` | u64 | the frame's `frame` field in `DreamSimMeta` |
//! | `action` | string | what the element did with the frame: `pass`, `drop` or `post` |
//! | `matches` | GstValueArray of `match` structures | `id` (u64), `label` (string), `distance` (f64), nearest first |

use gst::prelude::*;

use crate::meta::IndexMatch;
use crate::structure::{element_message, read_message, Fields, MalformedStructure};
use crate::timing::FrameTiming;

/// Name of the message structure.
pub const MESSAGE_NAME: &str = "dreamsim-match";

/// Typed content of a `dreamsim-match` element message.
#[derive(Debug, Clone, PartialEq)]
pub struct MatchMessage {
    /// When the frame is.
    pub timing: FrameTiming,
    /// The frame's `frame` field in `DreamSimMeta`.
    pub frame: u64,
    /// What the element did with the frame (`pass`, `drop`, `post`).
    pub action: String,
    /// The known items within the threshold, nearest first.
    pub matches: Vec<IndexMatch>,
}

impl From<&MatchMessage> for gst::Structure {
    fn from(m: &MatchMessage) -> Self {
        m.timing
            .write(gst::Structure::builder(MESSAGE_NAME))
            .field("frame", m.frame)
            .field("action", &m.action)
            .field("matches", IndexMatch::to_array(&m.matches))
            .build()
    }
}

impl TryFrom<&gst::StructureRef> for MatchMessage {
    type Error = MalformedStructure;

    fn try_from(s: &gst::StructureRef) -> Result<Self, Self::Error> {
        let f = Fields::of(s, MESSAGE_NAME)?;
        Ok(Self {
            timing: FrameTiming::read(&f)?,
            frame: f.get("frame")?,
            action: f.get("action")?,
            matches: IndexMatch::read_array(&f, "matches")?,
        })
    }
}

impl MatchMessage {
    /// Reads a `dreamsim-match` element message: `None` for any other
    /// message, an error when it breaks the schema above.
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
        let m = MatchMessage {
            timing: FrameTiming {
                timestamp: Some(gst::ClockTime::from_mseconds(80)),
                ..FrameTiming::default()
            },
            frame: 2,
            action: "drop".into(),
            matches: vec![
                IndexMatch {
                    id: 7,
                    label: "known, with a comma".into(),
                    distance: 0.01,
                },
                IndexMatch {
                    id: 3,
                    label: "other".into(),
                    distance: 0.04,
                },
            ],
        };
        let msg = m.to_message(&gst::Bin::new());
        assert_eq!(MatchMessage::from_message(&msg), Some(Ok(m)));
        assert_eq!(MatchMessage::from_message(&gst::message::Eos::new()), None);
        let bad = gst::Structure::builder(MESSAGE_NAME)
            .field("frame", 1u64)
            .build();
        assert!(MatchMessage::try_from(bad.as_ref()).is_err());
    }
}
