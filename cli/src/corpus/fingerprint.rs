//! A video's fingerprint: its frames sampled at a rate and at scene
//! starts, each with its DreamSim embedding.
//!
//! Pipeline: `uridecodebin ! videoconvert ! dreamsim ! fakesink`; the
//! frames kept are those at the sampling instants (0, 1/rate, 2/rate, ...
//! s: the first frame at or after each) and, by default, those that start a
//! scene.
//!
//! The model runs only on the frames kept, which for the ensemble is most of
//! the job's time. Scene starts are proposed without the model, by the
//! change test's thumbnails of consecutive frames
//! ([`dreamsim::change::CutDetector`], a probe before `dreamsim`), and the
//! frames neither sampled nor starting a scene are dropped before `dreamsim`:
//! about one model run per sampled frame plus one per scene. (Finding scene
//! starts with `dreamsimscene` needed the model on every decoded frame: 25
//! times the runs at 25 frames/s, docs/corpus.md.) Without scene starts the
//! sampled frames are picked by dreamsim's `interval`, set from the frame
//! rate in the caps, and a probe on the sink keeps them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use gst::prelude::*;
use gstdreamsim::DreamSimMeta;

use crate::common::CommonArgs;
use crate::pipeline;
use crate::Error;

/// A sampled frame.
#[derive(Debug, Clone)]
pub struct SampledFrame {
    /// Presentation time from the start of the video, ns.
    pub timestamp_ns: u64,
    /// Unit-norm embedding.
    pub embedding: Vec<f32>,
}

/// What a video comes to.
#[derive(Debug, Clone)]
pub struct Fingerprint {
    /// Sampled frames in time order.
    pub frames: Vec<SampledFrame>,
    /// End of the last frame, ns.
    pub duration_ns: u64,
    /// The model's type (`ensemble`, ...), from the frames' meta.
    pub model_kind: String,
    /// The duration the file declares (its container), when it says, ns.
    pub declared_ns: Option<u64>,
    /// Where the frame size changes, in time order.
    pub size_changes: Vec<SizeChange>,
    /// Frames the model ran on (dreamsim's `inferred-frames`).
    pub model_runs: u64,
}

/// A change of frame size in the middle of a video.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizeChange {
    /// Time of the first frame at the new size, ns.
    pub at_ns: u64,
    /// Width and height before.
    pub from: (i32, i32),
    /// Width and height after.
    pub to: (i32, i32),
}

/// The shortfall below which decoded frames ending before the declared
/// duration are not called incomplete (streams of one file often end a few
/// frames apart), ns.
pub const INCOMPLETE_MARGIN_NS: u64 = 1_000_000_000;

impl Fingerprint {
    /// Why the frames do not cover the video, when they do not: the file
    /// declares a duration and the decoded frames end more than
    /// [`INCOMPLETE_MARGIN_NS`] before it (a truncated file whose first part
    /// still plays).
    pub fn incomplete(&self) -> Option<String> {
        let declared = self.declared_ns?;
        (declared > self.duration_ns + INCOMPLETE_MARGIN_NS).then(|| {
            format!(
                "the decoded frames end at {:.3} s of the {:.3} s the file declares \
                 (truncated?); fingerprinted the {:.3} s that were decoded",
                self.duration_ns as f64 / 1e9,
                declared as f64 / 1e9,
                self.duration_ns as f64 / 1e9
            )
        })
    }

    /// The frame size changes (`320x180 to 160x120 at 2.000 s`), said in
    /// words, when there are some.
    pub fn resolution_note(&self) -> Option<String> {
        if self.size_changes.is_empty() {
            return None;
        }
        let changes: Vec<String> = self
            .size_changes
            .iter()
            .map(|c| {
                format!(
                    "{}x{} to {}x{} at {:.3} s",
                    c.from.0,
                    c.from.1,
                    c.to.0,
                    c.to.1,
                    c.at_ns as f64 / 1e9
                )
            })
            .collect();
        Some(format!(
            "{}; every frame fingerprinted (the model scales each frame to its input)",
            changes.join(", ")
        ))
    }
}

/// How frames are picked.
#[derive(Debug, Clone, Copy)]
pub struct Sampling {
    /// Sampling period, ns (1 s: vPDQ's one frame per second).
    pub period_ns: u64,
    /// Also keep the first frame of every scene.
    pub scene_starts: bool,
    /// A video with no new frame for this long fails as stalled.
    pub stall: std::time::Duration,
}

#[derive(Default)]
struct Collected {
    /// Scene mode: the frames picked before dreamsim (sampled or scene
    /// starts) with their stream time, in order; the sink keeps them all.
    picked: std::collections::VecDeque<u64>,
    frames: Vec<SampledFrame>,
    next_sample_ns: u64,
    end_ns: u64,
    decoded: u64,
    model_kind: String,
    error: Option<String>,
    /// Width and height of the frames now coming.
    size: Option<(i32, i32)>,
    /// A size change seen in the caps, waiting for its first frame.
    pending_change: Option<((i32, i32), (i32, i32))>,
    size_changes: Vec<SizeChange>,
}

impl Collected {
    /// Notes the frame size of a caps event.
    fn caps(&mut self, caps: &gst::CapsRef) {
        let size = caps
            .structure(0)
            .and_then(|s| Some((s.get::<i32>("width").ok()?, s.get::<i32>("height").ok()?)));
        if let (Some(from), Some(to)) = (self.size, size) {
            if from != to {
                self.pending_change = Some((from, to));
            }
        }
        self.size = size.or(self.size);
    }

    /// Counts a decoded frame at `pad`: its stream time (ns) when it has one.
    fn count_frame(&mut self, pad: &gst::Pad, buffer: &gst::BufferRef) -> Option<u64> {
        self.decoded += 1;
        let ts = buffer
            .pts()
            .and_then(|pts| pipeline::stream_time(pad, pts))?
            .nseconds();
        if let Some((from, to)) = self.pending_change.take() {
            self.size_changes.push(SizeChange {
                at_ns: ts,
                from,
                to,
            });
        }
        self.end_ns = self
            .end_ns
            .max(ts + buffer.duration().map_or(0, |d| d.nseconds()));
        Some(ts)
    }

    /// Whether the frame at `ts` is due (the first at or after a sampling
    /// instant), moving the next instant past it if so.
    fn due(&mut self, ts: u64, period_ns: u64) -> bool {
        let due = ts >= self.next_sample_ns;
        if due {
            let period = period_ns.max(1);
            self.next_sample_ns = (ts / period + 1) * period;
        }
        due
    }
}

/// Scene mode: a probe before `dreamsim` that counts every decoded frame,
/// proposes scene starts from thumbnails of consecutive frames and drops
/// the frames neither due nor starting a scene, so the model never sees them.
fn pick_before_dreamsim(
    dreamsim: &gst::Element,
    collected: &Arc<Mutex<Collected>>,
    period_ns: u64,
    decoded: &Arc<AtomicU64>,
) {
    let pad = dreamsim.static_pad("sink").expect("sink pad");
    let collected = collected.clone();
    let decoded = decoded.clone();
    // The frames' layout and the detector, touched by the streaming thread
    // only (a probe is `Fn`).
    let detector = Mutex::new((
        None::<gst_video::VideoInfo>,
        dreamsim::change::CutDetector::default(),
    ));
    let probe = gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_DOWNSTREAM;
    pad.add_probe(probe, move |pad, probe_info| {
        let mut detector = detector.lock().unwrap_or_else(|e| e.into_inner());
        let (info, cuts) = &mut *detector;
        if let Some(gst::PadProbeData::Event(event)) = &probe_info.data {
            if let gst::EventView::Caps(caps) = event.view() {
                *info = gst_video::VideoInfo::from_caps(caps.caps()).ok();
                collected
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .caps(caps.caps());
            }
            return gst::PadProbeReturn::Ok;
        }
        let Some(buffer) = probe_info.buffer() else {
            return gst::PadProbeReturn::Ok;
        };
        decoded.fetch_add(1, Ordering::Relaxed);
        // Every frame goes through the detector: the change between
        // consecutive frames is what it reads.
        let start = info
            .as_ref()
            .and_then(|i| {
                gstdreamsim::dreamsim::with_engine_frame(buffer, i, |f| cuts.push_frame(f))
            })
            .unwrap_or(false);
        let keep = {
            let mut c = collected.lock().unwrap_or_else(|e| e.into_inner());
            match c.count_frame(pad, buffer) {
                Some(ts) if c.due(ts, period_ns) || start => {
                    c.picked.push_back(ts);
                    true
                }
                _ => false,
            }
        };
        if keep {
            gst::PadProbeReturn::Ok
        } else {
            // Taken and Handled (as in index.rs): gstreamer-rs's Drop makes
            // GStreamer 1.22 unref a null buffer.
            drop(probe_info.take_buffer());
            gst::PadProbeReturn::Handled
        }
    });
}

/// Frames per analysed frame so that one is analysed about every
/// `period_ns`: the frame rate times the period, rounded, so the analysed
/// frames fall at or just after the sampling instants (29.97 frames/s at
/// 1 s: every 30th frame, 1 ms later each second). 1 where the rate is
/// unknown or variable (0/1).
fn interval_for(fps_n: i32, fps_d: i32, period_ns: u64) -> u32 {
    if fps_n <= 0 || fps_d <= 0 {
        return 1;
    }
    let frames = f64::from(fps_n) / f64::from(fps_d) * period_ns as f64 / 1e9;
    (frames.round() as u32).max(1)
}

/// Sets `dreamsim`'s interval from each caps event's frame rate, before
/// the element sees the caps (so before the frames that follow them).
fn analyse_about_once_per_period(dreamsim: &gst::Element, period_ns: u64) {
    let Some(pad) = dreamsim.static_pad("sink") else {
        return;
    };
    let element = dreamsim.downgrade();
    pad.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, move |_, info| {
        if let Some(gst::PadProbeData::Event(event)) = &info.data {
            if let gst::EventView::Caps(caps) = event.view() {
                let rate = caps
                    .caps()
                    .structure(0)
                    .and_then(|s| s.get::<gst::Fraction>("framerate").ok());
                if let (Some(rate), Some(element)) = (rate, element.upgrade()) {
                    let interval = interval_for(rate.numer(), rate.denom(), period_ns);
                    element.set_property(gstdreamsim::dreamsim::property::INTERVAL, interval);
                }
            }
        }
        gst::PadProbeReturn::Ok
    });
}

/// Decodes `path` and returns its fingerprint. `decoded` counts frames as
/// they pass (for a progress bar); `tick` is called about every 200 ms.
pub fn fingerprint(
    path: &str,
    common: &CommonArgs,
    sampling: Sampling,
    decoded: &Arc<AtomicU64>,
    mut tick: impl FnMut(),
) -> Result<Fingerprint, Error> {
    let uri = pipeline::to_uri(path)?;
    let dreamsim = pipeline::dreamsim(common)?;
    dreamsim.set_property(gstdreamsim::dreamsim::property::POST_MESSAGES, false);
    let sink = pipeline::fakesink()?;
    let collected = Arc::new(Mutex::new(Collected::default()));
    let scene_mode = sampling.scene_starts;
    if scene_mode {
        pick_before_dreamsim(&dreamsim, &collected, sampling.period_ns, decoded);
    } else {
        analyse_about_once_per_period(&dreamsim, sampling.period_ns);
    }
    let pipe = pipeline::decoding_pipeline(&uri, &[dreamsim.clone(), sink.clone()])?;

    {
        let collected = collected.clone();
        let decoded = decoded.clone();
        let sink_pad = sink.static_pad("sink").expect("sink pad");
        let probe = gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_DOWNSTREAM;
        sink_pad.add_probe(probe, move |pad, info| {
            if let Some(gst::PadProbeData::Event(event)) = &info.data {
                if let gst::EventView::Caps(caps) = event.view() {
                    if !scene_mode {
                        let mut c = collected.lock().unwrap_or_else(|e| e.into_inner());
                        c.caps(caps.caps());
                    }
                }
                return gst::PadProbeReturn::Ok;
            }
            let Some(buffer) = info.buffer() else {
                return gst::PadProbeReturn::Ok;
            };
            let mut c = collected.lock().unwrap_or_else(|e| e.into_inner());
            // In scene mode the frames were counted and picked before
            // dreamsim: every one that arrives is kept, at its stream time
            // there.
            let ts = if scene_mode {
                c.picked.pop_front()
            } else {
                decoded.fetch_add(1, Ordering::Relaxed);
                c.count_frame(pad, buffer)
            };
            let Some(ts) = ts else {
                return gst::PadProbeReturn::Ok;
            };
            let meta = match DreamSimMeta::from_buffer(buffer) {
                None => return gst::PadProbeReturn::Ok,
                Some(Err(e)) => {
                    c.error.get_or_insert(e.to_string());
                    return gst::PadProbeReturn::Ok;
                }
                Some(Ok(m)) => m,
            };
            let keep = scene_mode || c.due(ts, sampling.period_ns);
            if keep && !meta.embedding.is_empty() {
                if c.model_kind.is_empty() {
                    c.model_kind = meta.model.clone();
                }
                c.frames.push(SampledFrame {
                    timestamp_ns: ts,
                    embedding: meta.embedding,
                });
            }
            gst::PadProbeReturn::Ok
        });
    }

    let frames_seen = {
        let collected = collected.clone();
        move || collected.lock().map_or(0, |c| c.decoded)
    };
    let result = run(&pipe, sampling.stall, frames_seen, &mut tick);
    // What the container says the video path lasts (asked upstream from
    // the sink, while the pipeline still runs).
    let declared_ns = sink
        .static_pad("sink")
        .and_then(|p| p.peer_query_duration::<gst::ClockTime>())
        .map(gst::ClockTime::nseconds);
    let model_runs = dreamsim
        .property::<gst::Structure>(gstdreamsim::dreamsim::property::STATS)
        .get::<u64>("inferred-frames")
        .unwrap_or(0);
    pipeline::stop(&pipe);
    result?;
    let c = std::mem::take(&mut *collected.lock().unwrap_or_else(|e| e.into_inner()));
    if let Some(e) = c.error {
        return Err(Error::Pipeline(e));
    }
    if c.frames.is_empty() {
        return Err(Error::Input {
            input: path.to_owned(),
            reason: format!("no frame could be analysed ({} decoded)", c.decoded),
        });
    }
    Ok(Fingerprint {
        frames: c.frames,
        duration_ns: c.end_ns,
        model_kind: c.model_kind,
        declared_ns,
        size_changes: c.size_changes,
        model_runs,
    })
}

/// Plays `pipe` to EOS or an error (errors decodebin dropped included:
/// [`pipeline::lost_error`]); fails when `frames()` stays the same for
/// `stall` (a safety net: a source that never delivers, a decoder that
/// stops without a word).
fn run(
    pipe: &gst::Pipeline,
    stall: std::time::Duration,
    frames: impl Fn() -> u64,
    tick: &mut impl FnMut(),
) -> Result<(), Error> {
    let bus = pipe.bus().expect("a pipeline has a bus");
    let error_of = |m: &gst::Message| match m.view() {
        gst::MessageView::Error(e) => Some(pipeline::error_text(e)),
        _ => None,
    };
    if pipe.set_state(gst::State::Playing).is_err() {
        let reason = bus
            .pop_filtered(&[gst::MessageType::Error])
            .and_then(|m| error_of(&m));
        return Err(Error::Pipeline(
            reason.unwrap_or_else(|| "the pipeline does not start".into()),
        ));
    }
    let mut last = (frames(), std::time::Instant::now());
    loop {
        let msg = bus.timed_pop_filtered(
            gst::ClockTime::from_mseconds(200),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        );
        tick();
        let Some(msg) = msg else {
            if let Some(e) = pipeline::lost_error(pipe) {
                return Err(Error::Pipeline(e));
            }
            let now = frames();
            if now != last.0 {
                last = (now, std::time::Instant::now());
            } else if last.1.elapsed() >= stall {
                return Err(Error::Pipeline(format!(
                    "stalled: no frame decoded for {} s after {now} frames (a truncated or \
                     unreadable file?)",
                    stall.as_secs()
                )));
            }
            continue;
        };
        if let Some(e) = error_of(&msg) {
            return Err(Error::Pipeline(e));
        }
        return Ok(());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interval_follows_the_frame_rate_and_the_period() {
        assert_eq!(interval_for(25, 1, 1_000_000_000), 25);
        assert_eq!(interval_for(30000, 1001, 1_000_000_000), 30);
        assert_eq!(interval_for(24000, 1001, 1_000_000_000), 24);
        assert_eq!(interval_for(25, 1, 500_000_000), 13);
        // Faster sampling than the frames come: every frame.
        assert_eq!(interval_for(25, 1, 10_000_000), 1);
        // Variable or unknown rate: every frame.
        assert_eq!(interval_for(0, 1, 1_000_000_000), 1);
    }

    fn fp(
        duration_ns: u64,
        declared_ns: Option<u64>,
        size_changes: Vec<SizeChange>,
    ) -> Fingerprint {
        Fingerprint {
            frames: Vec::new(),
            duration_ns,
            model_kind: "ensemble".into(),
            declared_ns,
            size_changes,
            model_runs: 0,
        }
    }

    #[test]
    fn frames_ending_well_before_the_declared_duration_are_incomplete() {
        let s = 1_000_000_000;
        let cut = fp(5_680_000_000, Some(10 * s), Vec::new());
        let why = cut.incomplete().unwrap();
        assert!(why.contains("5.680 s of the 10.000 s"), "{why}");
        // Streams a few frames apart, or no declared duration: complete.
        assert_eq!(fp(10 * s, Some(10 * s), Vec::new()).incomplete(), None);
        assert_eq!(
            fp(9_500_000_000, Some(10 * s), Vec::new()).incomplete(),
            None
        );
        assert_eq!(fp(10 * s, Some(11 * s), Vec::new()).incomplete(), None);
        assert_eq!(fp(2 * s, None, Vec::new()).incomplete(), None);
    }

    #[test]
    fn size_changes_are_listed_in_order() {
        assert_eq!(fp(1, None, Vec::new()).resolution_note(), None);
        let changes = vec![
            SizeChange {
                at_ns: 2_000_000_000,
                from: (320, 180),
                to: (160, 120),
            },
            SizeChange {
                at_ns: 3_040_000_000,
                from: (160, 120),
                to: (320, 180),
            },
        ];
        let note = fp(4_000_000_000, None, changes).resolution_note().unwrap();
        assert!(
            note.starts_with("320x180 to 160x120 at 2.000 s, 160x120 to 320x180 at 3.040 s; "),
            "{note}"
        );
    }
}
