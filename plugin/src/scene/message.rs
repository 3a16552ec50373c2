//! The `dreamsim-scene` element message, posted by `dreamsimscene` on the
//! first frame of every scene (the stream's first frame included), with the
//! `level` element's timestamp conventions so that `gst-launch-1.0 -m` shows
//! it.
//!
//! | field | type | meaning |
//! |---|---|---|
//! | `index` | u64 | index of the scene that starts (0 for the first) |
//! | `timestamp` | GstClockTime | PTS of the scene's first frame (NONE when unknown) |
//! | `stream-time` | GstClockTime | that PTS in stream time |
//! | `running-time` | GstClockTime | that PTS in running time |
//! | `duration` | GstClockTime | duration of the scene's first frame |
//! | `frame` | u64 | the frame's `frame` field in `DreamSimMeta` (buffers counted by `dreamsim`) |
//! | `distance` | f64 | DreamSim distance to the previous analysed frame; absent on the first frame and after a flush |
//! | `score` | f64 | the value compared with the threshold: `distance` in `fixed` mode, the distance over its neighbours' mean (capped at 255) in `adaptive` mode; absent with `distance` |

use gst::prelude::*;

use crate::structure::{element_message, read_message, Fields, MalformedStructure};
use crate::timing::FrameTiming;

/// Name of the message structure.
pub const MESSAGE_NAME: &str = "dreamsim-scene";

/// Typed content of a `dreamsim-scene` element message.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SceneMessage {
    /// Index of the scene that starts (0 for the first).
    pub index: u64,
    /// When the scene's first frame is.
    pub timing: FrameTiming,
    /// The first frame's `frame` field in `DreamSimMeta`.
    pub frame: u64,
    /// Distance of the first frame to the previous analysed frame (`None` on
    /// the stream's first frame and after a flush).
    pub distance: Option<f64>,
    /// What the threshold was compared with: the distance (`fixed` mode) or
    /// its ratio to the neighbours' mean (`adaptive` mode).
    pub score: Option<f64>,
}

impl From<&SceneMessage> for gst::Structure {
    fn from(m: &SceneMessage) -> Self {
        let mut s = m
            .timing
            .write(gst::Structure::builder(MESSAGE_NAME).field("index", m.index))
            .field("frame", m.frame)
            .build();
        if let Some(d) = m.distance {
            s.set("distance", d);
        }
        if let Some(score) = m.score {
            s.set("score", score);
        }
        s
    }
}

impl TryFrom<&gst::StructureRef> for SceneMessage {
    type Error = MalformedStructure;

    fn try_from(s: &gst::StructureRef) -> Result<Self, Self::Error> {
        let f = Fields::of(s, MESSAGE_NAME)?;
        Ok(Self {
            index: f.get("index")?,
            timing: FrameTiming::read(&f)?,
            frame: f.get("frame")?,
            distance: f.optional("distance")?,
            score: f.optional("score")?,
        })
    }
}

impl SceneMessage {
    /// Reads a `dreamsim-scene` element message: `None` for any other
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
        let m = SceneMessage {
            index: 3,
            timing: FrameTiming {
                timestamp: Some(gst::ClockTime::from_mseconds(1200)),
                stream_time: Some(gst::ClockTime::from_mseconds(1200)),
                running_time: None,
                duration: Some(gst::ClockTime::from_mseconds(40)),
            },
            frame: 30,
            distance: Some(0.75),
            score: Some(12.5),
        };
        let s = gst::Structure::from(&m);
        assert_eq!(s.name(), MESSAGE_NAME);
        assert_eq!(SceneMessage::try_from(s.as_ref()).unwrap(), m);
        let msg = m.to_message(&gst::Bin::new());
        assert_eq!(SceneMessage::from_message(&msg), Some(Ok(m)));
    }

    #[test]
    fn first_scene_has_no_distance_or_score() {
        gst::init().unwrap();
        let m = SceneMessage {
            index: 0,
            timing: FrameTiming {
                timestamp: Some(gst::ClockTime::ZERO),
                stream_time: Some(gst::ClockTime::ZERO),
                running_time: Some(gst::ClockTime::ZERO),
                duration: None,
            },
            frame: 0,
            distance: None,
            score: None,
        };
        let s = gst::Structure::from(&m);
        assert!(!s.has_field("distance") && !s.has_field("score"));
        assert_eq!(SceneMessage::try_from(s.as_ref()).unwrap(), m);
    }

    #[test]
    fn other_structures_are_rejected() {
        gst::init().unwrap();
        let s = gst::Structure::builder("dreamsim")
            .field("frame", 1u64)
            .build();
        assert!(SceneMessage::try_from(s.as_ref()).is_err());
        let s = gst::Structure::builder(MESSAGE_NAME)
            .field("index", "three")
            .build();
        assert!(SceneMessage::try_from(s.as_ref()).is_err());
        let eos = gst::message::Eos::new();
        assert_eq!(SceneMessage::from_message(&eos), None);
    }
}
