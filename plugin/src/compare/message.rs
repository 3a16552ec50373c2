//! The messages `dreamsimcompare` posts on the bus.
//!
//! `dreamsimcompare`, for every tested frame compared with a reference frame
//! (when `post-messages` is true):
//!
//! | field | type | meaning |
//! |---|---|---|
//! | `pad` | string | the tested stream's sink pad, e.g. `sink_0` |
//! | `timestamp` | GstClockTime | the tested buffer's PTS |
//! | `stream-time` | GstClockTime | PTS in the pad's stream time |
//! | `running-time` | GstClockTime | PTS in running time (what pairing uses) |
//! | `duration` | GstClockTime | the tested buffer's duration |
//! | `frame` | u64 | index of the buffer among those the pad received since start |
//! | `reference-frame` | u64 | index of the reference frame it was compared with |
//! | `reference-running-time` | GstClockTime | running time of that reference frame |
//! | `distance` | f64 | DreamSim distance between the two frames |
//!
//! `dreamsimcompare-summary`, one per tested pad when the element reaches
//! EOS, or when the pad is released before (pooling: [`super::stats`]):
//!
//! | field | type | meaning |
//! |---|---|---|
//! | `pad` | string | the tested stream's sink pad |
//! | `frames` | u64 | frames compared |
//! | `unpaired` | u64 | frames no reference frame covered (passed without a distance) |
//! | `threshold` | f64 | the `threshold` property |
//! | `over-threshold` | u64 | frames with a distance above it |
//! | `mean`, `harmonic-mean`, `min`, `max`, `p5`, `p50`, `p95` | f64 | pooled distances; absent when `frames` is 0 |

use gst::prelude::*;

use super::stats::Pooled;
use crate::structure::{element_message, read_message, Fields, MalformedStructure};
use crate::timing::FrameTiming;

/// Name of the per-frame message structure.
pub const MESSAGE_NAME: &str = "dreamsimcompare";
/// Name of the summary message structure.
pub const SUMMARY_NAME: &str = "dreamsimcompare-summary";

/// Typed content of a `dreamsimcompare` element message.
#[derive(Debug, Clone, PartialEq)]
pub struct CompareMessage {
    /// The tested stream's sink pad.
    pub pad: String,
    /// When the tested frame is.
    pub timing: FrameTiming,
    /// Index of the buffer on its pad.
    pub frame: u64,
    /// Index of the reference frame it was compared with.
    pub reference_frame: u64,
    /// Running time of that reference frame.
    pub reference_running_time: Option<gst::ClockTime>,
    /// DreamSim distance to the reference frame.
    pub distance: f64,
}

impl From<&CompareMessage> for gst::Structure {
    fn from(m: &CompareMessage) -> Self {
        m.timing
            .write(gst::Structure::builder(MESSAGE_NAME).field("pad", &m.pad))
            .field("frame", m.frame)
            .field("reference-frame", m.reference_frame)
            .field("reference-running-time", m.reference_running_time)
            .field("distance", m.distance)
            .build()
    }
}

impl TryFrom<&gst::StructureRef> for CompareMessage {
    type Error = MalformedStructure;

    fn try_from(s: &gst::StructureRef) -> Result<Self, Self::Error> {
        let f = Fields::of(s, MESSAGE_NAME)?;
        Ok(Self {
            pad: f.get("pad")?,
            timing: FrameTiming::read(&f)?,
            frame: f.get("frame")?,
            reference_frame: f.get("reference-frame")?,
            reference_running_time: f.time("reference-running-time")?,
            distance: f.get("distance")?,
        })
    }
}

impl CompareMessage {
    /// Reads a `dreamsimcompare` element message: `None` for any other
    /// message, an error when it breaks the schema above.
    pub fn from_message(msg: &gst::MessageRef) -> Option<Result<Self, MalformedStructure>> {
        read_message(msg, MESSAGE_NAME)
    }

    /// Builds the element message posted by `src`.
    pub fn to_message(&self, src: &impl IsA<gst::Object>) -> gst::Message {
        element_message(self.into(), src)
    }
}

/// Typed content of a `dreamsimcompare-summary` element message.
#[derive(Debug, Clone, PartialEq)]
pub struct CompareSummary {
    /// The tested stream's sink pad.
    pub pad: String,
    /// Frames no reference frame covered.
    pub unpaired: u64,
    /// The `threshold` property when the summary was made.
    pub threshold: f64,
    /// Pooled distances; `None` when no frame was compared.
    pub pooled: Option<Pooled>,
}

impl CompareSummary {
    /// Frames compared.
    pub fn frames(&self) -> u64 {
        self.pooled.map_or(0, |p| p.frames)
    }

    /// Frames with a distance above the threshold.
    pub fn over_threshold(&self) -> u64 {
        self.pooled.map_or(0, |p| p.over_threshold)
    }

    /// Reads a `dreamsimcompare-summary` element message: `None` for any
    /// other message, an error when it breaks the schema above.
    pub fn from_message(msg: &gst::MessageRef) -> Option<Result<Self, MalformedStructure>> {
        read_message(msg, SUMMARY_NAME)
    }

    /// Builds the element message posted by `src`.
    pub fn to_message(&self, src: &impl IsA<gst::Object>) -> gst::Message {
        element_message(self.into(), src)
    }
}

impl From<&CompareSummary> for gst::Structure {
    fn from(m: &CompareSummary) -> Self {
        let mut s = gst::Structure::builder(SUMMARY_NAME)
            .field("pad", &m.pad)
            .field("frames", m.frames())
            .field("unpaired", m.unpaired)
            .field("threshold", m.threshold)
            .field("over-threshold", m.over_threshold())
            .build();
        if let Some(p) = &m.pooled {
            s.set("mean", p.mean);
            s.set("harmonic-mean", p.harmonic_mean);
            s.set("min", p.min);
            s.set("max", p.max);
            s.set("p5", p.p5);
            s.set("p50", p.p50);
            s.set("p95", p.p95);
        }
        s
    }
}

impl TryFrom<&gst::StructureRef> for CompareSummary {
    type Error = MalformedStructure;

    fn try_from(s: &gst::StructureRef) -> Result<Self, Self::Error> {
        let f = Fields::of(s, SUMMARY_NAME)?;
        let frames: u64 = f.get("frames")?;
        let over_threshold: u64 = f.get("over-threshold")?;
        let pooled = if frames == 0 {
            None
        } else {
            Some(Pooled {
                frames,
                mean: f.get("mean")?,
                harmonic_mean: f.get("harmonic-mean")?,
                min: f.get("min")?,
                max: f.get("max")?,
                p5: f.get("p5")?,
                p50: f.get("p50")?,
                p95: f.get("p95")?,
                over_threshold,
            })
        };
        Ok(Self {
            pad: f.get("pad")?,
            unpaired: f.get("unpaired")?,
            threshold: f.get("threshold")?,
            pooled,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_message_round_trip() {
        gst::init().unwrap();
        let m = CompareMessage {
            pad: "sink_1".into(),
            timing: FrameTiming {
                timestamp: Some(gst::ClockTime::from_mseconds(80)),
                stream_time: Some(gst::ClockTime::from_mseconds(80)),
                running_time: Some(gst::ClockTime::from_mseconds(80)),
                duration: None,
            },
            frame: 2,
            reference_frame: 4,
            reference_running_time: Some(gst::ClockTime::from_mseconds(80)),
            distance: 0.125,
        };
        let s = gst::Structure::from(&m);
        assert_eq!(CompareMessage::try_from(s.as_ref()).unwrap(), m);
        let msg = m.to_message(&gst::Bin::new());
        assert_eq!(CompareMessage::from_message(&msg), Some(Ok(m)));
    }

    #[test]
    fn summary_round_trip_with_and_without_frames() {
        gst::init().unwrap();
        let m = CompareSummary {
            pad: "sink_0".into(),
            unpaired: 3,
            threshold: 0.2,
            pooled: super::super::stats::pool(&[0.1, 0.3], 0.2),
        };
        let s = gst::Structure::from(&m);
        assert_eq!(s.get::<u64>("frames").unwrap(), 2);
        assert_eq!(CompareSummary::try_from(s.as_ref()).unwrap(), m);
        let empty = CompareSummary { pooled: None, ..m };
        let s = gst::Structure::from(&empty);
        assert!(!s.has_field("mean"));
        assert_eq!(CompareSummary::try_from(s.as_ref()).unwrap(), empty);
    }

    #[test]
    fn other_messages_are_rejected() {
        gst::init().unwrap();
        let s = gst::Structure::builder(MESSAGE_NAME)
            .field("pad", "sink_0")
            .build();
        assert!(CompareMessage::try_from(s.as_ref()).is_err());
        let s = gst::Structure::builder("dreamsim").build();
        assert!(CompareSummary::try_from(s.as_ref()).is_err());
    }
}
