//! The `dreamsim-dedup` element message, posted by `dreamsimdedup` when it
//! receives EOS: how many frames it kept and dropped since it started.
//!
//! | field | type | meaning |
//! |---|---|---|
//! | `kept` | u64 | frames passed downstream (frames without meta included) |
//! | `dropped` | u64 | frames dropped as near-duplicates of the last kept frame |
//! | `without-meta` | u64 | frames that had no `DreamSimMeta` and were passed as they were |

use gst::prelude::*;

use crate::structure::{element_message, read_message, Fields, MalformedStructure};

/// Name of the message structure.
pub const MESSAGE_NAME: &str = "dreamsim-dedup";

/// Typed content of a `dreamsim-dedup` element message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DedupMessage {
    /// Frames passed downstream, frames without meta included.
    pub kept: u64,
    /// Frames dropped as near-duplicates of the last kept frame.
    pub dropped: u64,
    /// Frames without `DreamSimMeta` (passed as they were; counted in `kept`).
    pub without_meta: u64,
}

impl From<&DedupMessage> for gst::Structure {
    fn from(m: &DedupMessage) -> Self {
        gst::Structure::builder(MESSAGE_NAME)
            .field("kept", m.kept)
            .field("dropped", m.dropped)
            .field("without-meta", m.without_meta)
            .build()
    }
}

impl TryFrom<&gst::StructureRef> for DedupMessage {
    type Error = MalformedStructure;

    fn try_from(s: &gst::StructureRef) -> Result<Self, Self::Error> {
        let f = Fields::of(s, MESSAGE_NAME)?;
        Ok(Self {
            kept: f.get("kept")?,
            dropped: f.get("dropped")?,
            without_meta: f.get("without-meta")?,
        })
    }
}

impl DedupMessage {
    /// Reads a `dreamsim-dedup` element message: `None` for any other
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
        let m = DedupMessage {
            kept: 12,
            dropped: 30,
            without_meta: 2,
        };
        let s = gst::Structure::from(&m);
        assert_eq!(s.name(), MESSAGE_NAME);
        assert_eq!(DedupMessage::try_from(s.as_ref()).unwrap(), m);
        let msg = m.to_message(&gst::Bin::new());
        assert_eq!(DedupMessage::from_message(&msg), Some(Ok(m)));
    }

    #[test]
    fn other_structures_are_rejected() {
        gst::init().unwrap();
        let s = gst::Structure::builder("dreamsim-scene")
            .field("kept", 1u64)
            .build();
        assert!(DedupMessage::try_from(s.as_ref()).is_err());
        let s = gst::Structure::builder(MESSAGE_NAME)
            .field("kept", 1u64)
            .build();
        assert!(DedupMessage::try_from(s.as_ref()).is_err());
        assert_eq!(DedupMessage::from_message(&gst::message::Eos::new()), None);
    }
}
