//! A comparison's log in the layout of libvmaf's (FFmpeg's `libvmaf`
//! filter, `vmaf --json`/`--csv`), so that tools which read those logs read
//! this one. No GStreamer here: the `gst-dreamsim compare` job fills it from
//! the `dreamsimcompare` element's messages and writes it.
//!
//! JSON, as libvmaf's with the metric `dreamsim` (a distance: lower is
//! closer, unlike VMAF's score):
//!
//! ```json
//! {
//!   "version": "gst-dreamsim 0.1.0",
//!   "model": "ensemble",
//!   "reference": "ref.mp4",
//!   "fps": 25.0,
//!   "threshold": 0.2,
//!   "streams": { "dreamsim": "test.mp4", "dreamsim_1": "test2.mp4" },
//!   "frames": [
//!     { "frameNum": 0,
//!       "metrics": { "dreamsim": 0.012, "dreamsim_1": 0.3 },
//!       "reference_frames": { "dreamsim": 0, "dreamsim_1": 0 } }
//!   ],
//!   "pooled_metrics": {
//!     "dreamsim": { "min": 0.0, "max": 0.05, "mean": 0.01, "harmonic_mean": 0.011,
//!                   "p5": 0.0, "p50": 0.01, "p95": 0.04,
//!                   "frames": 250, "unpaired": 0, "frames_over_threshold": 0 }
//!   }
//! }
//! ```
//!
//! - One metric per tested stream: `dreamsim` for the first, `dreamsim_1`,
//!   `dreamsim_2`, ... for the others (`streams` says which file each is).
//! - `frameNum` is the tested frame's index in its own stream (libvmaf
//!   numbers the distorted frames); a frame entry holds the metrics of
//!   every stream that has a compared frame with that index, and
//!   `reference_frames` the reference frame each was paired with (they
//!   differ from `frameNum` for a delayed copy or another frame rate).
//! - `pooled_metrics` has libvmaf's `min`, `max`, `mean`, `harmonic_mean`
//!   (pooled as [`gstdreamsim::compare::stats`] defines for a distance) and ours:
//!   percentiles, frame counts, frames over the threshold. A stream with
//!   no compared frame has only the counts.
//!
//! CSV, as libvmaf's: a `Frame` column and one column per metric, one row
//! per `frameNum`, an empty cell where a stream has no frame of that index.

use std::collections::BTreeMap;
use std::io::{self, Write};

use serde_json::{json, Map, Value};

use gstdreamsim::compare::stats::{self, Pooled};
use gstdreamsim::compare::CompareMessage;

/// One compared frame of a tested stream.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LogFrame {
    /// Index of the tested frame in its stream.
    pub frame: u64,
    /// Index of the reference frame it was compared with.
    pub reference_frame: u64,
    /// DreamSim distance.
    pub distance: f64,
}

impl From<&CompareMessage> for LogFrame {
    fn from(m: &CompareMessage) -> Self {
        Self {
            frame: m.frame,
            reference_frame: m.reference_frame,
            distance: m.distance,
        }
    }
}

/// One tested stream's frames.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogStream {
    /// Where the stream came from (a file name), for `streams`.
    pub source: String,
    /// Its compared frames, in any order.
    pub frames: Vec<LogFrame>,
    /// Frames that no reference frame covered.
    pub unpaired: u64,
}

impl LogStream {
    /// The pooled distances; `None` without compared frames.
    pub fn pooled(&self, threshold: f64) -> Option<Pooled> {
        let distances: Vec<f64> = self.frames.iter().map(|f| f.distance).collect();
        stats::pool(&distances, threshold)
    }
}

/// A whole comparison: one reference, one or more tested streams.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CompareLog {
    /// The producing tool and version.
    pub version: String,
    /// The model's type.
    pub model: String,
    /// The reference's source.
    pub reference: String,
    /// The reference's frame rate, when known.
    pub fps: Option<f64>,
    /// The threshold of `frames_over_threshold`.
    pub threshold: f64,
    /// The tested streams, in order.
    pub streams: Vec<LogStream>,
}

/// The metric name of tested stream `index`.
pub fn metric_name(index: usize) -> String {
    match index {
        0 => "dreamsim".to_owned(),
        n => format!("dreamsim_{n}"),
    }
}

impl CompareLog {
    /// For each frame number, per stream, the frame (sorted by number).
    fn rows(&self) -> BTreeMap<u64, Vec<Option<&LogFrame>>> {
        let mut rows: BTreeMap<u64, Vec<Option<&LogFrame>>> = BTreeMap::new();
        for (i, stream) in self.streams.iter().enumerate() {
            for f in &stream.frames {
                rows.entry(f.frame)
                    .or_insert_with(|| vec![None; self.streams.len()])[i] = Some(f);
            }
        }
        rows
    }

    /// The log as libvmaf-layout JSON (see the module documentation).
    pub fn to_json(&self) -> Value {
        let frames: Vec<Value> = self
            .rows()
            .into_iter()
            .map(|(number, per_stream)| {
                let mut metrics = Map::new();
                let mut reference_frames = Map::new();
                for (i, f) in per_stream.iter().enumerate() {
                    if let Some(f) = f {
                        metrics.insert(metric_name(i), json!(f.distance));
                        reference_frames.insert(metric_name(i), json!(f.reference_frame));
                    }
                }
                json!({
                    "frameNum": number,
                    "metrics": metrics,
                    "reference_frames": reference_frames,
                })
            })
            .collect();
        let mut pooled = Map::new();
        let mut streams = Map::new();
        for (i, stream) in self.streams.iter().enumerate() {
            let name = metric_name(i);
            streams.insert(name.clone(), json!(stream.source));
            let mut m = Map::new();
            let p = stream.pooled(self.threshold);
            if let Some(p) = p {
                for (key, value) in [
                    ("min", p.min),
                    ("max", p.max),
                    ("mean", p.mean),
                    ("harmonic_mean", p.harmonic_mean),
                    ("p5", p.p5),
                    ("p50", p.p50),
                    ("p95", p.p95),
                ] {
                    m.insert(key.to_owned(), json!(value));
                }
            }
            m.insert("frames".into(), json!(p.map_or(0, |p| p.frames)));
            m.insert("unpaired".into(), json!(stream.unpaired));
            m.insert(
                "frames_over_threshold".into(),
                json!(p.map_or(0, |p| p.over_threshold)),
            );
            pooled.insert(name, Value::Object(m));
        }
        json!({
            "version": self.version,
            "model": self.model,
            "reference": self.reference,
            "fps": self.fps,
            "threshold": self.threshold,
            "streams": streams,
            "frames": frames,
            "pooled_metrics": pooled,
        })
    }

    /// Writes the JSON log, pretty-printed.
    pub fn write_json(&self, mut w: impl Write) -> io::Result<()> {
        serde_json::to_writer_pretty(&mut w, &self.to_json())?;
        writeln!(w)
    }

    /// Writes the CSV log (see the module documentation).
    pub fn write_csv(&self, mut w: impl Write) -> io::Result<()> {
        write!(w, "Frame")?;
        for i in 0..self.streams.len() {
            write!(w, ",{}", metric_name(i))?;
        }
        writeln!(w)?;
        for (number, per_stream) in self.rows() {
            write!(w, "{number}")?;
            for f in per_stream {
                match f {
                    Some(f) => write!(w, ",{}", f.distance)?,
                    None => write!(w, ",")?,
                }
            }
            writeln!(w)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(frame: u64, reference_frame: u64, distance: f64) -> LogFrame {
        LogFrame {
            frame,
            reference_frame,
            distance,
        }
    }

    fn sample() -> CompareLog {
        CompareLog {
            version: "gst-dreamsim 0.1.0".into(),
            model: "ensemble".into(),
            reference: "ref.mp4".into(),
            fps: Some(25.0),
            threshold: 0.2,
            streams: vec![
                LogStream {
                    source: "a.mp4".into(),
                    frames: vec![frame(1, 1, 0.25), frame(0, 0, 0.0), frame(2, 2, 0.5)],
                    unpaired: 0,
                },
                LogStream {
                    // Half the frame rate: frame i pairs with reference 2i.
                    source: "b.mp4".into(),
                    frames: vec![frame(0, 0, 0.125), frame(1, 2, 0.375)],
                    unpaired: 1,
                },
                LogStream {
                    source: "c.mp4".into(),
                    frames: vec![],
                    unpaired: 3,
                },
            ],
        }
    }

    #[test]
    fn json_has_libvmaf_layout() {
        let v = sample().to_json();
        assert_eq!(v["version"], "gst-dreamsim 0.1.0");
        assert_eq!(v["fps"], 25.0);
        let frames = v["frames"].as_array().unwrap();
        assert_eq!(frames.len(), 3);
        assert_eq!(frames[0]["frameNum"], 0);
        assert_eq!(frames[0]["metrics"]["dreamsim"], 0.0);
        assert_eq!(frames[0]["metrics"]["dreamsim_1"], 0.125);
        assert_eq!(frames[1]["reference_frames"]["dreamsim_1"], 2);
        // Stream b has no frame 2; stream c has none at all.
        assert!(frames[2]["metrics"].get("dreamsim_1").is_none());
        assert!(frames[0]["metrics"].get("dreamsim_2").is_none());
        let a = &v["pooled_metrics"]["dreamsim"];
        assert_eq!(a["mean"], 0.25);
        assert_eq!(a["min"], 0.0);
        assert_eq!(a["max"], 0.5);
        assert_eq!(a["p50"], 0.25);
        assert_eq!(a["frames"], 3);
        assert_eq!(a["frames_over_threshold"], 2);
        let hm = a["harmonic_mean"].as_f64().unwrap();
        assert!((hm - (2.0 - 3.0 / (1.0 / 2.0 + 1.0 / 1.75 + 1.0 / 1.5))).abs() < 1e-12);
        let c = &v["pooled_metrics"]["dreamsim_2"];
        assert_eq!(c["frames"], 0);
        assert_eq!(c["unpaired"], 3);
        assert!(c.get("mean").is_none());
        assert_eq!(v["streams"]["dreamsim_1"], "b.mp4");
    }

    #[test]
    fn json_round_trips_through_text() {
        let mut out = Vec::new();
        sample().write_json(&mut out).unwrap();
        let parsed: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(parsed, sample().to_json());
    }

    #[test]
    fn frames_come_from_the_element_messages() {
        let m = CompareMessage {
            pad: "sink_0".into(),
            timing: gstdreamsim::FrameTiming::default(),
            frame: 4,
            reference_frame: 7,
            reference_running_time: None,
            distance: 0.5,
        };
        assert_eq!(LogFrame::from(&m), frame(4, 7, 0.5));
    }

    #[test]
    fn csv_has_one_column_per_stream() {
        let mut out = Vec::new();
        sample().write_csv(&mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "Frame,dreamsim,dreamsim_1,dreamsim_2\n\
             0,0,0.125,\n\
             1,0.25,0.375,\n\
             2,0.5,,\n"
        );
    }
}
