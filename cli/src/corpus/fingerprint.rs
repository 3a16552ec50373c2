//! A video's fingerprint: its frames sampled at a rate and at scene
//! starts, each with its DreamSim embedding.
//!
//! Pipeline: `uridecodebin ! videoconvert ! dreamsim ! dreamsimscene !
//! fakesink`; a probe on the sink reads each frame's `DreamSimMeta` and
//! keeps the frames at the sampling instants (0, 1/rate, 2/rate, ... s:
//! the first frame at or after each) and those that start a scene.

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
    frames: Vec<SampledFrame>,
    next_sample_ns: u64,
    end_ns: u64,
    decoded: u64,
    model_kind: String,
    error: Option<String>,
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
    dreamsim.set_property("post-messages", false);
    let scene = pipeline::make("dreamsimscene")?;
    let sink = pipeline::fakesink()?;
    let pipe = pipeline::decoding_pipeline(&uri, &[dreamsim, scene, sink.clone()])?;

    let collected = Arc::new(Mutex::new(Collected::default()));
    {
        let collected = collected.clone();
        let decoded = decoded.clone();
        let sink_pad = sink.static_pad("sink").expect("sink pad");
        sink_pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
            let Some(buffer) = info.buffer() else {
                return gst::PadProbeReturn::Ok;
            };
            decoded.fetch_add(1, Ordering::Relaxed);
            let mut c = collected.lock().unwrap_or_else(|e| e.into_inner());
            c.decoded += 1;
            let Some(ts) = buffer.pts().and_then(|pts| pipeline::stream_time(pad, pts)) else {
                return gst::PadProbeReturn::Ok;
            };
            let ts = ts.nseconds();
            c.end_ns = c
                .end_ns
                .max(ts + buffer.duration().map_or(0, |d| d.nseconds()));
            let meta = match DreamSimMeta::from_buffer(buffer) {
                None => return gst::PadProbeReturn::Ok,
                Some(Err(e)) => {
                    c.error.get_or_insert(e.to_string());
                    return gst::PadProbeReturn::Ok;
                }
                Some(Ok(m)) => m,
            };
            let scene_start = sampling.scene_starts && meta.scene.is_some_and(|s| s.start);
            let due = ts >= c.next_sample_ns;
            if due {
                // The next instant after this frame.
                let period = sampling.period_ns.max(1);
                c.next_sample_ns = (ts / period + 1) * period;
            }
            if (due || scene_start) && !meta.embedding.is_empty() {
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
