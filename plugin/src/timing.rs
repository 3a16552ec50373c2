//! When a frame is: the four times the plugin's messages carry, after the
//! `level` element's conventions, computed in one place.

use crate::structure::{Fields, MalformedStructure};

/// A frame's timestamps, as `gst-launch-1.0 -m` shows them in the plugin's
/// messages (`timestamp`, `stream-time`, `running-time`, `duration`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FrameTiming {
    /// The buffer's PTS (`None` when unknown).
    pub timestamp: Option<gst::ClockTime>,
    /// The PTS in stream time.
    pub stream_time: Option<gst::ClockTime>,
    /// The PTS in running time.
    pub running_time: Option<gst::ClockTime>,
    /// The buffer's duration.
    pub duration: Option<gst::ClockTime>,
}

impl FrameTiming {
    /// The timing of `buffer` in `segment` (stream and running time are
    /// `None` without a time segment).
    pub fn of(
        buffer: &gst::BufferRef,
        segment: Option<&gst::FormattedSegment<gst::ClockTime>>,
    ) -> Self {
        let pts = buffer.pts();
        Self {
            timestamp: pts,
            stream_time: pts.and_then(|p| segment?.to_stream_time(p)),
            running_time: pts.and_then(|p| segment?.to_running_time(p)),
            duration: buffer.duration(),
        }
    }

    /// Adds the four fields to a structure being built.
    pub(crate) fn write(&self, builder: gst::structure::Builder) -> gst::structure::Builder {
        builder
            .field("timestamp", self.timestamp)
            .field("stream-time", self.stream_time)
            .field("running-time", self.running_time)
            .field("duration", self.duration)
    }

    /// Reads the four fields.
    pub(crate) fn read(fields: &Fields) -> Result<Self, MalformedStructure> {
        Ok(Self {
            timestamp: fields.time("timestamp")?,
            stream_time: fields.time("stream-time")?,
            running_time: fields.time("running-time")?,
            duration: fields.time("duration")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_and_running_time_follow_the_segment() {
        gst::init().unwrap();
        let mut buffer = gst::Buffer::new();
        {
            let b = buffer.get_mut().unwrap();
            b.set_pts(gst::ClockTime::from_seconds(12));
            b.set_duration(gst::ClockTime::from_mseconds(40));
        }
        let mut segment = gst::FormattedSegment::<gst::ClockTime>::new();
        segment.set_start(gst::ClockTime::from_seconds(10));
        segment.set_time(gst::ClockTime::from_seconds(100));
        let t = FrameTiming::of(&buffer, Some(&segment));
        assert_eq!(t.timestamp, Some(gst::ClockTime::from_seconds(12)));
        assert_eq!(t.stream_time, Some(gst::ClockTime::from_seconds(102)));
        assert_eq!(t.running_time, Some(gst::ClockTime::from_seconds(2)));
        assert_eq!(t.duration, Some(gst::ClockTime::from_mseconds(40)));
        let without = FrameTiming::of(&buffer, None);
        assert_eq!((without.stream_time, without.running_time), (None, None));
    }

    #[test]
    fn round_trip_through_a_structure() {
        gst::init().unwrap();
        let t = FrameTiming {
            timestamp: Some(gst::ClockTime::from_mseconds(40)),
            stream_time: None,
            running_time: Some(gst::ClockTime::ZERO),
            duration: Some(gst::ClockTime::from_mseconds(40)),
        };
        let s = t.write(gst::Structure::builder("x")).build();
        assert_eq!(FrameTiming::read(&Fields::of(&s, "x").unwrap()).unwrap(), t);
    }
}
