//! The `dreamsimcompare` element in real pipelines, on clips the tests make
//! with `videotestsrc`, `jpegenc`/`jpegdec` and `videoscale`, with the
//! fixture model.

use dreamsim_testsupport as common;
mod plugin_common;

use std::sync::{Arc, Mutex};

use common::*;
use dreamsim::{runtime, Engine, ExecutionProvider, Frame, Model, ModelOptions};
use gst::prelude::*;
use gst_video::prelude::*;
use gstdreamsim::compare::{CompareMessage, CompareSummary};
use gstdreamsim::meta::DreamSimMeta;
use plugin_common::*;

fn model() -> String {
    fixture("tiny_ensemble.onnx").display().to_string()
}

/// The element with the fixture model on the CPU.
fn cmp(extra: &str) -> String {
    format!(
        "dreamsimcompare name=cmp model-location={} execution-provider=cpu threads=1 {extra}",
        model()
    )
}

/// A videotestsrc clip: `n` frames of `pattern` at `rate` frames/s, RGB.
fn clip(n: u32, pattern: &str, rate: &str, extra: &str) -> String {
    format!(
        "videotestsrc num-buffers={n} pattern={pattern} {extra} ! \
         video/x-raw,format=RGB,width=64,height=48,framerate={rate}"
    )
}

#[derive(Default)]
struct Run {
    frames: Vec<CompareMessage>,
    summaries: Vec<CompareSummary>,
    /// What left the src pad: the buffers (with their caps).
    output: Vec<(gst::Buffer, gst::Caps)>,
    stats: Option<gst::Structure>,
    error: Option<String>,
}

impl Run {
    fn on(&self, pad: &str) -> Vec<&CompareMessage> {
        self.frames.iter().filter(|m| m.pad == pad).collect()
    }

    fn summary(&self, pad: &str) -> &CompareSummary {
        self.summaries
            .iter()
            .find(|s| s.pad == pad)
            .unwrap_or_else(|| panic!("no summary for {pad}: {:?}", self.summaries))
    }

    fn stat(&self, field: &str) -> u64 {
        self.stats.as_ref().unwrap().get::<u64>(field).unwrap()
    }
}

/// Runs `pipeline` to EOS or error; `step` sees the run after every
/// `dreamsimcompare` message and may act on the pipeline.
fn run_with(pipeline: &gst::Pipeline, mut step: impl FnMut(&gst::Pipeline, &Run)) -> Run {
    let element = pipeline.by_name("cmp").unwrap();
    let output = Arc::new(Mutex::new(Vec::new()));
    {
        let output = output.clone();
        element.static_pad("src").unwrap().add_probe(
            gst::PadProbeType::BUFFER,
            move |pad, info| {
                if let Some(gst::PadProbeData::Buffer(b)) = &info.data {
                    output
                        .lock()
                        .unwrap()
                        .push((b.clone(), pad.current_caps().unwrap()));
                }
                gst::PadProbeReturn::Ok
            },
        );
    }
    let bus = pipeline.bus().unwrap();
    // A failed start is reported on the bus as an error.
    let _ = pipeline.set_state(gst::State::Playing);
    let mut run = Run::default();
    let end = gst_run::read_bus(&bus, gst::ClockTime::from_seconds(120), |msg| {
        if let Some(m) = CompareMessage::from_message(msg).transpose().unwrap() {
            run.frames.push(m);
            step(pipeline, &run);
        }
        if let Some(s) = CompareSummary::from_message(msg).transpose().unwrap() {
            run.summaries.push(s);
        }
    });
    if let gst_run::BusEnd::Error(e) = end {
        run.error = Some(e);
    }
    run.stats = Some(element.property::<gst::Structure>("stats"));
    pipeline.set_state(gst::State::Null).unwrap();
    run.output = std::mem::take(&mut *output.lock().unwrap());
    run
}

fn launch(description: &str) -> gst::Pipeline {
    init();
    gst::parse::launch(description)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap()
}

fn run(description: &str) -> Run {
    run_with(&launch(description), |_, _| {})
}

#[test]
fn a_stream_compared_with_itself_is_zero_on_every_frame() {
    let r = run(&format!(
        "{} ! tee name=t t. ! queue ! cmp.reference t. ! queue ! cmp.sink_0 {} ! fakesink",
        clip(20, "ball", "25/1", ""),
        cmp("")
    ));
    assert_eq!(r.error, None);
    assert_eq!(r.frames.len(), 20);
    for (i, m) in r.frames.iter().enumerate() {
        assert_eq!(m.pad, "sink_0");
        assert_eq!(m.frame, i as u64);
        assert_eq!(m.reference_frame, i as u64);
        assert_eq!(m.timing.running_time, Some(ms(40 * i as u64)));
        assert_eq!(m.reference_running_time, m.timing.running_time);
        assert!(m.distance.abs() <= 1e-6, "frame {i}: {}", m.distance);
    }
    let s = r.summary("sink_0");
    assert_eq!((s.frames(), s.unpaired, s.over_threshold()), (20, 0, 0));
    assert!(s.pooled.unwrap().max <= 1e-6);
    // The tested stream goes on, every frame with its meta.
    assert_eq!(r.output.len(), 20);
    for ((buffer, _), m) in r.output.iter().zip(&r.frames) {
        let meta = DreamSimMeta::from_buffer(buffer).unwrap().unwrap();
        assert_eq!(meta.reference_distance, Some(m.distance));
        assert_eq!(meta.frame, m.frame);
        assert_eq!(meta.model, "fixture_ensemble");
        assert_eq!(buffer.pts(), m.timing.running_time);
    }
}

/// RGB bytes of `buffer` as a tight `width` x 3 array, and its size.
fn rgb(buffer: &gst::Buffer, caps: &gst::Caps) -> (Vec<u8>, usize, usize) {
    let info = gst_video::VideoInfo::from_caps(caps).unwrap();
    assert_eq!(info.format(), gst_video::VideoFormat::Rgb);
    let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, &info).unwrap();
    let (w, h) = (info.width() as usize, info.height() as usize);
    let stride = frame.plane_stride()[0] as usize;
    let data = frame.plane_data(0).unwrap();
    let mut out = Vec::with_capacity(w * h * 3);
    for row in 0..h {
        out.extend_from_slice(&data[row * stride..row * stride + w * 3]);
    }
    (out, w, h)
}

/// Records the buffers reaching `pad` of the element, with their caps.
fn record(pipeline: &gst::Pipeline, pad: &str) -> Arc<Mutex<Vec<(gst::Buffer, gst::Caps)>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    pipeline
        .by_name("cmp")
        .unwrap()
        .static_pad(pad)
        .unwrap()
        .add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
            if let Some(gst::PadProbeData::Buffer(b)) = &info.data {
                s.lock()
                    .unwrap()
                    .push((b.clone(), pad.current_caps().unwrap()));
            }
            gst::PadProbeReturn::Ok
        });
    seen
}

#[test]
fn a_reencoded_copy_matches_the_engine_frame_by_frame() {
    // The tested stream is a JPEG round trip at another size.
    let pipeline = launch(&format!(
        "{} ! tee name=t t. ! queue ! cmp.reference \
         t. ! queue ! jpegenc quality=20 ! jpegdec ! videoconvert ! videoscale ! \
         video/x-raw,format=RGB,width=80,height=56 ! cmp.sink_0 {} ! fakesink",
        clip(12, "smpte", "25/1", ""),
        cmp("")
    ));
    let reference = record(&pipeline, "reference");
    let tested = record(&pipeline, "sink_0");
    let r = run_with(&pipeline, |_, _| {});
    assert_eq!(r.error, None);
    assert_eq!(r.frames.len(), 12);

    let model = Model::load(
        runtime(None).unwrap(),
        &fixture("tiny_ensemble.onnx"),
        &ModelOptions {
            provider: ExecutionProvider::Cpu,
            threads: 1,
            ..ModelOptions::default()
        },
    )
    .unwrap();
    let mut engine = Engine::new(model);
    let reference = reference.lock().unwrap();
    let tested = tested.lock().unwrap();
    let mut embed = |(buffer, caps): &(gst::Buffer, gst::Caps)| {
        let (data, w, h) = rgb(buffer, caps);
        engine
            .embed_frame(&Frame::rgb(&data, w, h, w * 3).unwrap())
            .unwrap()
    };
    let mut nonzero = 0;
    for m in &r.frames {
        let a = embed(&reference[m.reference_frame as usize]);
        let b = embed(&tested[m.frame as usize]);
        let apart = a.distance(&b).unwrap();
        assert!(
            (m.distance - apart).abs() <= 1e-6,
            "frame {}: element {} vs engine {apart}",
            m.frame,
            m.distance
        );
        if apart > 1e-4 {
            nonzero += 1;
        }
    }
    assert!(nonzero > 0, "JPEG at quality 20 changes the frames");
}

#[test]
fn a_copy_delayed_by_n_frames_pairs_n_frames_later() {
    // The tested copy starts 3 frames (120 ms) late.
    let r = run(&format!(
        "{} ! cmp.reference {} ! cmp.sink_0 {} ! fakesink",
        clip(10, "ball", "25/1", ""),
        clip(10, "ball", "25/1", "timestamp-offset=120000000"),
        cmp("")
    ));
    assert_eq!(r.error, None);
    assert_eq!(r.frames.len(), 7);
    for m in &r.frames {
        assert_eq!(m.reference_frame, m.frame + 3, "{m:?}");
        assert_eq!(m.reference_running_time, m.timing.running_time);
    }
    // Frame i of the copy shows what reference frame i shows: the same
    // picture only when the ball stands still, so the pairing is visible in
    // the distances.
    assert!(r.frames.iter().any(|m| m.distance > 1e-4));
    // Its last 3 frames start after the reference's end.
    let s = r.summary("sink_0");
    assert_eq!((s.frames(), s.unpaired), (7, 3));
    assert_eq!(r.output.len(), 10, "unpaired frames still pass");
    assert!(r.output[7..].iter().all(|(b, _)| !DreamSimMeta::is_on(b)));
}

#[test]
fn half_the_frame_rate_pairs_every_other_reference_frame() {
    let r = run(&format!(
        "{} ! cmp.reference {} ! cmp.sink_0 {} ! fakesink",
        clip(10, "smpte", "25/1", ""),
        clip(5, "smpte", "25/2", ""),
        cmp("")
    ));
    assert_eq!(r.error, None);
    let got: Vec<(u64, u64)> = r
        .frames
        .iter()
        .map(|m| (m.frame, m.reference_frame))
        .collect();
    assert_eq!(got, vec![(0, 0), (1, 2), (2, 4), (3, 6), (4, 8)]);
    // Reference frames no tested frame pairs with are never embedded.
    assert_eq!(r.stat("reference-inferences"), 5);
}

#[test]
fn four_tested_streams_cost_one_reference_inference_per_frame() {
    // Four different versions of the reference: none repeats another.
    let r = run(&format!(
        "{} ! tee name=t t. ! queue ! cmp.reference \
         t. ! queue ! videoflip video-direction=horiz ! cmp.sink_0 \
         t. ! queue ! videoflip video-direction=vert ! cmp.sink_1 \
         t. ! queue ! videobalance brightness=0.3 ! cmp.sink_2 \
         t. ! queue ! videobalance contrast=0.5 ! cmp.sink_3 {} ! fakesink",
        clip(8, "smpte", "25/1", ""),
        cmp("")
    ));
    assert_eq!(r.error, None);
    for pad in ["sink_0", "sink_1", "sink_2", "sink_3"] {
        let on = r.on(pad);
        assert_eq!(on.len(), 8, "{pad}");
        assert!(on.iter().all(|m| m.reference_frame == m.frame));
        assert_eq!(r.summary(pad).frames(), 8);
    }
    assert_eq!(r.stat("frames"), 32);
    assert_eq!(r.stat("reference-frames"), 8);
    assert_eq!(r.stat("reference-inferences"), 8);
    // One model run per reference frame, shared by the five frames.
    assert_eq!(r.stat("batches"), 8);
    assert_eq!(r.stat("inferred-frames"), 40);
    // The output is sink_0's stream.
    assert_eq!(r.output.len(), 8);
    for ((buffer, _), m) in r.output.iter().zip(r.on("sink_0")) {
        let meta = DreamSimMeta::from_buffer(buffer).unwrap().unwrap();
        assert_eq!(meta.reference_distance, Some(m.distance));
    }
}

#[test]
fn a_tested_stream_that_ends_first_stops_and_the_others_go_on() {
    let r = run(&format!(
        "{} ! tee name=t t. ! queue ! cmp.reference t. ! queue ! cmp.sink_0 \
         {} ! cmp.sink_1 {} ! fakesink",
        clip(12, "smpte", "25/1", ""),
        clip(4, "smpte", "25/1", ""),
        cmp("")
    ));
    assert_eq!(r.error, None);
    assert_eq!(r.on("sink_0").len(), 12);
    assert_eq!(r.on("sink_1").len(), 4);
    assert_eq!(r.summary("sink_0").frames(), 12);
    assert_eq!(r.summary("sink_1").frames(), 4);
    assert_eq!(r.output.len(), 12);
}

#[test]
fn a_reference_that_ends_first_leaves_later_frames_unpaired() {
    let r = run(&format!(
        "{} ! cmp.reference {} ! cmp.sink_0 {} ! fakesink",
        clip(5, "smpte", "25/1", ""),
        clip(10, "smpte", "25/1", ""),
        cmp("")
    ));
    assert_eq!(r.error, None);
    assert_eq!(r.frames.len(), 5);
    assert!(r.frames.iter().all(|m| m.distance.abs() <= 1e-6));
    let s = r.summary("sink_0");
    assert_eq!((s.frames(), s.unpaired), (5, 5));
    assert_eq!(r.stat("unpaired-frames"), 5);
    // Every tested frame goes on; only the compared ones carry a distance.
    assert_eq!(r.output.len(), 10);
    let with_meta: Vec<bool> = r
        .output
        .iter()
        .map(|(b, _)| DreamSimMeta::is_on(b))
        .collect();
    assert_eq!(with_meta, [[true; 5], [false; 5]].concat());
}

/// Pushes `n` RGB frames into `appsrc`: frame i is `pattern_rgb` seed i,
/// at `size(i)`, the caps changing with the size.
fn push_frames(appsrc: &gst_app::AppSrc, n: u64, size: impl Fn(u64) -> (usize, usize)) {
    for i in 0..n {
        let (w, h) = size(i);
        appsrc.set_caps(Some(
            &gst::Caps::builder("video/x-raw")
                .field("format", "RGB")
                .field("width", w as i32)
                .field("height", h as i32)
                .field("framerate", gst::Fraction::new(25, 1))
                .build(),
        ));
        let mut buffer = gst::Buffer::from_mut_slice(pattern_rgb(w, h, i, 0, 0));
        {
            let b = buffer.get_mut().unwrap();
            b.set_pts(ms(40 * i));
            b.set_duration(ms(40));
        }
        appsrc.push_buffer(buffer).unwrap();
    }
    appsrc.end_of_stream().unwrap();
}

#[test]
fn caps_changes_apply_from_the_next_buffer_of_their_pad() {
    // The same frames on both pads; the reference changes size at frame 2,
    // the tested stream at frame 4. Each frame is read with its own caps:
    // the same picture at the same size has distance 0.
    let pipeline = launch(&format!(
        "appsrc name=ref format=time ! cmp.reference appsrc name=test format=time ! cmp.sink_0 \
         {} ! fakesink",
        cmp("")
    ));
    let appsrc = |name| {
        pipeline
            .by_name(name)
            .unwrap()
            .downcast::<gst_app::AppSrc>()
            .unwrap()
    };
    let size = |change: u64| move |i| if i < change { (64, 48) } else { (32, 24) };
    push_frames(&appsrc("ref"), 6, size(2));
    push_frames(&appsrc("test"), 6, size(4));
    let r = run_with(&pipeline, |_, _| {});
    assert_eq!(r.error, None);
    assert_eq!(r.frames.len(), 6);
    for m in &r.frames {
        let same_size = m.frame < 2 || m.frame >= 4;
        assert_eq!(m.distance.abs() <= 1e-6, same_size, "{m:?}");
    }
    // The output follows the tested stream's caps.
    let sizes: Vec<(u32, u32)> = r
        .output
        .iter()
        .map(|(_, caps)| {
            let info = gst_video::VideoInfo::from_caps(caps).unwrap();
            (info.width(), info.height())
        })
        .collect();
    assert_eq!(sizes, [&[(64, 48); 4][..], &[(32, 24); 2]].concat());
}

#[test]
fn a_flushing_seek_restarts_the_pairing() {
    // Two identical sources, played in real time so that the seek lands
    // mid-stream: after it, frames pair again with their own reference.
    let pipeline = launch(&format!(
        "{} ! cmp.reference {} ! cmp.sink_0 {} ! fakesink sync=true",
        clip(25, "ball", "25/1", ""),
        clip(25, "ball", "25/1", ""),
        cmp("")
    ));
    let mut seeked = false;
    let r = run_with(&pipeline, |p, run| {
        if !seeked && run.frames.len() == 8 {
            seeked = true;
            p.seek_simple(gst::SeekFlags::FLUSH | gst::SeekFlags::ACCURATE, ms(80))
                .unwrap();
        }
    });
    assert_eq!(r.error, None);
    assert!(seeked);
    let restart = r
        .frames
        .windows(2)
        .position(|w| w[1].timing.running_time < w[0].timing.running_time)
        .expect("running time restarts after the seek");
    // The seek sets running time 0 at stream time 80 ms.
    let after = &r.frames[restart + 1..];
    assert_eq!(after[0].timing.stream_time, Some(ms(80)));
    // videotestsrc's num-buffers counts across the seek.
    assert!(after.len() >= 5, "{} frames after the seek", after.len());
    for m in &r.frames {
        assert!(m.distance.abs() <= 1e-6, "{m:?}");
    }
    // Frame numbers count from start, across the seek.
    assert!(r.frames.windows(2).all(|w| w[1].frame == w[0].frame + 1));
    assert_eq!(r.summary("sink_0").frames(), r.frames.len() as u64);
}

/// Adds `videotestsrc ... ! cmp.<new sink pad>` to a playing pipeline.
fn add_branch(pipeline: &gst::Pipeline, n: u32) -> gst::Pad {
    let bin = gst::parse::bin_from_description(
        &format!(
            "videotestsrc num-buffers={n} pattern=smpte ! capsfilter \
             caps=\"video/x-raw,format=RGB,width=64,height=48,framerate=25/1\""
        ),
        true,
    )
    .unwrap();
    pipeline.add(&bin).unwrap();
    let element = pipeline.by_name("cmp").unwrap();
    let pad = element.request_pad_simple("sink_%u").unwrap();
    bin.static_pad("src").unwrap().link(&pad).unwrap();
    bin.sync_state_with_parent().unwrap();
    pad
}

#[test]
fn a_pad_requested_while_playing_joins_at_its_first_buffer() {
    let pipeline = launch(&format!(
        "{} ! tee name=t t. ! queue ! cmp.reference t. ! queue ! cmp.sink_0 {} ! fakesink sync=true",
        clip(40, "smpte", "25/1", ""),
        cmp("")
    ));
    let mut added = None;
    let r = run_with(&pipeline, |p, run| {
        if added.is_none() && run.frames.len() == 10 {
            added = Some(add_branch(p, 30).name().to_string());
        }
    });
    assert_eq!(r.error, None);
    let name = added.unwrap();
    assert_ne!(name, "sink_0");
    let s = r.summary(&name);
    // It starts at running time 0, while the reference is 10 frames in:
    // its first frames are before the held reference frame (unpaired), the
    // rest pair with the reference frame at their running time.
    assert_eq!(s.frames() + s.unpaired, 30);
    assert!(s.frames() > 0 && s.unpaired > 0, "{s:?}");
    for m in r.on(&name) {
        assert_eq!(m.reference_running_time, m.timing.running_time);
    }
    assert_eq!(r.summary("sink_0").frames(), 40);
}

#[test]
fn a_pad_released_while_playing_reports_at_once_and_the_next_one_goes_on() {
    let pipeline = launch(&format!(
        "{} ! tee name=t t. ! queue ! cmp.reference t. ! queue name=q0 ! cmp.sink_0 \
         t. ! queue ! videoflip video-direction=horiz ! cmp.sink_1 {} ! fakesink sync=true",
        clip(40, "smpte", "25/1", ""),
        cmp("")
    ));
    let mut released_at = None;
    let r = run_with(&pipeline, |p, run| {
        if released_at.is_none() && run.on("sink_0").len() == 10 {
            released_at = Some(run.frames.len());
            // Take sink_0's branch out: off the tee, then off the element.
            let element = p.by_name("cmp").unwrap();
            let tee = p.by_name("t").unwrap();
            let queue = p.by_name("q0").unwrap();
            let queue_sink = queue.static_pad("sink").unwrap();
            let tee_src = queue_sink.peer().unwrap();
            tee_src.unlink(&queue_sink).unwrap();
            tee.release_request_pad(&tee_src);
            let pad = element.static_pad("sink_0").unwrap();
            queue.static_pad("src").unwrap().unlink(&pad).unwrap();
            element.release_request_pad(&pad);
            queue.set_state(gst::State::Null).unwrap();
            p.remove(&queue).unwrap();
        }
    });
    assert_eq!(r.error, None);
    assert!(released_at.is_some());
    let s0 = r.summary("sink_0");
    assert!(s0.frames() >= 10 && s0.frames() < 40, "{s0:?}");
    assert_eq!(r.summary("sink_1").frames(), 40);
    // sink_0's summary came before the end, sink_1's at EOS.
    assert_eq!(r.summaries[0].pad, "sink_0");
    // Output: sink_0's frames, then sink_1's (flipped: not distance 0).
    let n = r.output.len();
    assert!(n >= 40, "{n} buffers out");
    let last = DreamSimMeta::from_buffer(&r.output[n - 1].0)
        .unwrap()
        .unwrap();
    let on1 = r.on("sink_1");
    assert_eq!(last.reference_distance, Some(on1[on1.len() - 1].distance));
}

#[test]
fn a_missing_model_is_a_clear_error() {
    let r = run(&format!(
        "{} ! cmp.reference {} ! cmp.sink_0 dreamsimcompare name=cmp \
         model-location=/nonexistent/model.onnx execution-provider=cpu ! fakesink",
        clip(2, "smpte", "25/1", ""),
        clip(2, "smpte", "25/1", "")
    ));
    let error = r.error.expect("an error");
    assert!(error.contains("/nonexistent/model.onnx"), "{error}");
}

#[test]
fn a_buffer_without_timestamp_is_a_clear_error() {
    init();
    let pipeline = launch(&format!(
        "{} ! cmp.reference appsrc name=src format=time \
         caps=video/x-raw,format=RGB,width=16,height=16,framerate=25/1 ! cmp.sink_0 {} ! fakesink",
        clip(3, "smpte", "25/1", ""),
        cmp("")
    ));
    let appsrc = pipeline
        .by_name("src")
        .unwrap()
        .downcast::<gst_app::AppSrc>()
        .unwrap();
    appsrc
        .push_buffer(gst::Buffer::from_mut_slice(pattern_rgb(16, 16, 0, 0, 0)))
        .unwrap();
    appsrc.end_of_stream().unwrap();
    let r = run_with(&pipeline, |_, _| {});
    let error = r.error.expect("an error");
    assert!(
        error.contains("without timestamp") && error.contains("sink_0"),
        "{error}"
    );
}

#[test]
fn a_live_source_is_compared_in_real_time() {
    // Live: the aggregator's deadline applies; each tested frame still
    // pairs with the reference frame of its own running time.
    let r = run(&format!(
        "{} ! tee name=t t. ! queue ! cmp.reference t. ! queue ! videoflip video-direction=horiz ! \
         cmp.sink_0 {} ! fakesink sync=true",
        clip(15, "ball", "25/1", "is-live=true"),
        // Room for a loaded test machine before the deadline.
        cmp("latency=200000000")
    ));
    assert_eq!(r.error, None);
    let s = r.summary("sink_0");
    assert_eq!(s.frames() + s.unpaired, 15, "{s:?}");
    assert!(s.frames() >= 14, "{s:?}");
    for m in &r.frames {
        assert_eq!(m.reference_running_time, m.timing.running_time, "{m:?}");
    }
    assert_eq!(r.output.len(), 15);
}
