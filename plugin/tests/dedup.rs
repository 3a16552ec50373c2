//! The `dreamsimdedup` element: harness tests with hand-made embeddings
//! (the rule, the bound, durations, events, flushes, EOS), and a synthetic
//! clip through the fixture model with known cuts, runs of exact and near
//! duplicates, and a slow pan.

use dreamsim_testsupport as common;
mod plugin_common;

use std::sync::{Arc, Mutex};

use common::*;
use gst::prelude::*;
use gstdreamsim::meta::DreamSimMeta;
use gstdreamsim::DedupMessage;
use plugin_common::*;

/// Frame `n` (40 ms each) whose embedding is the unit vector at `angle`
/// radians: its distance to the one at angle 0 is 1 - cos(angle).
fn at_angle(n: u64, angle: Option<f32>) -> gst::Buffer {
    let mut buffer = gst::Buffer::from_mut_slice(vec![n as u8; 48]);
    {
        let b = buffer.get_mut().unwrap();
        b.set_pts(ms(40 * n));
        b.set_duration(ms(40));
        if let Some(a) = angle {
            DreamSimMeta {
                frame: n,
                distance: None,
                reference_distance: None,
                embedding: vec![a.cos(), a.sin()],
                model: "test".into(),
                reused_from: None,
                scene: None,
                matches: Vec::new(),
            }
            .add_to(b)
            .unwrap();
        }
    }
    buffer
}

/// `dreamsimdedup` in a [`FilterHarness`]; buffers are logged by frame number.
struct Dedup(FilterHarness);

impl std::ops::Deref for Dedup {
    type Target = FilterHarness;
    fn deref(&self) -> &FilterHarness {
        &self.0
    }
}

impl std::ops::DerefMut for Dedup {
    fn deref_mut(&mut self) -> &mut FilterHarness {
        &mut self.0
    }
}

impl Dedup {
    fn new(properties: &[(&str, &str)]) -> Self {
        Self(FilterHarness::new("dreamsimdedup", properties, |t| {
            t.mseconds() / 40
        }))
    }

    fn push_all(&mut self, angles: &[Option<f32>]) {
        for (n, a) in angles.iter().enumerate() {
            assert_eq!(
                self.h.push(at_angle(n as u64, *a)),
                Ok(gst::FlowSuccess::Ok)
            );
        }
    }

    /// Frame numbers of the buffers that came out.
    fn kept(&mut self) -> Vec<u64> {
        std::iter::from_fn(|| self.h.try_pull())
            .map(|b| b.pts().unwrap().mseconds() / 40)
            .collect()
    }

    fn counts_message(&self) -> Option<DedupMessage> {
        std::iter::from_fn(|| self.bus.pop())
            .find_map(|m| DedupMessage::from_message(&m).transpose().unwrap())
    }
}

/// A slow pan: 0.1 rad per frame, a distance of 0.005 to the previous frame
/// and of 1 - cos(0.1 k) to the frame k frames back.
fn pan(frames: usize) -> Vec<Option<f32>> {
    (0..frames).map(|i| Some(0.1 * i as f32)).collect()
}

#[test]
fn compares_with_the_last_kept_frame_not_the_previous_one() {
    let mut d = Dedup::new(&[("threshold", "0.02")]);
    d.push_all(&pan(10));
    // 1 - cos(0.2) = 0.0199 is dropped, 1 - cos(0.3) = 0.0447 is kept. A
    // filter comparing with the previous frame (0.005) would keep only frame 0.
    assert_eq!(d.kept(), [0, 3, 6, 9]);
    assert_eq!(d.element.property::<u64>("kept"), 4);
    assert_eq!(d.element.property::<u64>("dropped"), 6);
    assert!(d.counts_message().is_none(), "counts are posted at EOS");
    assert!(d.h.push_event(gst::event::Eos::new()));
    assert_eq!(
        d.counts_message(),
        Some(DedupMessage {
            kept: 4,
            dropped: 6,
            without_meta: 0
        })
    );
}

#[test]
fn max_consecutive_drops_bounds_a_run() {
    let mut d = Dedup::new(&[("threshold", "0.02"), ("max-consecutive-drops", "3")]);
    d.push_all(&[Some(0.0); 9]);
    assert_eq!(d.kept(), [0, 4, 8]);
}

#[test]
fn frames_without_meta_are_kept_and_do_not_become_the_reference() {
    let mut d = Dedup::new(&[("threshold", "0.02")]);
    d.push_all(&[Some(0.0), None, Some(0.0), None, Some(1.0)]);
    assert_eq!(d.kept(), [0, 1, 3, 4]);
    assert!(d.h.push_event(gst::event::Eos::new()));
    assert_eq!(
        d.counts_message(),
        Some(DedupMessage {
            kept: 4,
            dropped: 1,
            without_meta: 2
        })
    );
}

/// Issue #14: an embedding holding NaN or infinity (another writer's meta;
/// `dreamsim` stops with an error instead) is malformed: the frame is kept
/// and does not become the reference.
#[test]
fn frames_with_a_non_finite_embedding_are_kept_and_not_the_reference() {
    let mut d = Dedup::new(&[("threshold", "0.02")]);
    d.push_all(&[
        Some(0.0),
        Some(f32::NAN),
        Some(0.0),
        Some(f32::INFINITY),
        Some(0.001),
    ]);
    assert_eq!(d.kept(), [0, 1, 3]);
    assert!(d.h.push_event(gst::event::Eos::new()));
    assert_eq!(
        d.counts_message(),
        Some(DedupMessage {
            kept: 3,
            dropped: 2,
            without_meta: 2
        })
    );
}

#[test]
fn the_first_frame_and_the_first_after_a_flush_are_kept() {
    let mut d = Dedup::new(&[("threshold", "0.5")]);
    d.push_all(&[Some(0.0), Some(0.0)]);
    assert!(d.h.push_event(gst::event::FlushStart::new()));
    assert!(d.h.push_event(gst::event::FlushStop::new(true)));
    assert!(d
        .h
        .push_event(gst::event::Segment::new(&gst::FormattedSegment::<
            gst::ClockTime,
        >::new())));
    for n in 2..4 {
        d.h.push(at_angle(n, Some(0.0))).unwrap();
    }
    assert_eq!(d.kept(), [0, 2]);
}

#[test]
fn extend_duration_stretches_kept_frames_over_the_dropped_ones() {
    let mut d = Dedup::new(&[("threshold", "0.02"), ("extend-duration", "true")]);
    // Frames 0-3 alike, 4-6 alike, 7 alone, 8-9 like 7.
    let a = [0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 2.0, 2.0, 2.0];
    for (n, angle) in a.iter().enumerate() {
        d.h.push(at_angle(n as u64, Some(*angle))).unwrap();
        if n == 0 {
            assert_eq!(
                d.h.buffers_in_queue(),
                0,
                "the kept frame waits for the next one"
            );
        }
    }
    assert!(d.h.push_event(gst::event::Eos::new()));
    let out: Vec<(u64, u64)> = std::iter::from_fn(|| d.h.try_pull())
        .map(|b| {
            (
                b.pts().unwrap().mseconds(),
                b.duration().unwrap().mseconds(),
            )
        })
        .collect();
    assert_eq!(out, [(0, 160), (160, 120), (280, 120)]);
    assert_eq!(d.log().last().map(String::as_str), Some("E:eos"));
}

#[test]
fn events_are_forwarded_in_order_with_the_held_frame() {
    let mut d = Dedup::new(&[("threshold", "0.02"), ("extend-duration", "true")]);
    let custom = |name: &str| gst::event::CustomDownstream::new(gst::Structure::new_empty(name));
    d.h.push(at_angle(0, Some(0.0))).unwrap();
    d.h.push(at_angle(1, Some(0.0))).unwrap();
    // Waits behind held frame 0, which still stretches over frame 2.
    assert!(d.h.push_event(custom("behind-0")));
    assert!(d.h.push_event(gst::event::Tag::new(gst::TagList::new())));
    d.h.push(at_angle(2, Some(0.0))).unwrap();
    assert!(d.h.push_event(gst::event::CustomDownstreamOob::new(
        gst::Structure::new_empty("oob")
    )));
    d.h.push(at_angle(3, Some(1.0))).unwrap();
    // A gap ends the stretch: frame 3 leaves before it.
    assert!(d
        .h
        .push_event(gst::event::Gap::builder(ms(160)).duration(ms(40)).build()));
    d.h.push(at_angle(5, Some(1.0))).unwrap();
    assert!(d.h.push_event(gst::event::Eos::new()));
    assert_eq!(
        d.log(),
        ["E:oob", "B0", "E:behind-0", "E:tag", "B3", "E:gap", "E:eos"]
    );
    let durations: Vec<u64> = std::iter::from_fn(|| d.h.try_pull())
        .map(|b| b.duration().unwrap().mseconds())
        .collect();
    assert_eq!(durations, [120, 40]);
}

#[test]
fn latency_covers_the_held_frames() {
    let mut d = Dedup::new(&[]);
    d.h.set_upstream_latency(ms(10));
    assert_eq!(
        d.h.query_latency(),
        Some(ms(10)),
        "no latency without extend-duration"
    );
    let mut d = Dedup::new(&[("extend-duration", "true"), ("max-consecutive-drops", "3")]);
    d.h.set_upstream_latency(ms(10));
    assert_eq!(d.h.query_latency(), Some(ms(10 + 4 * 40)));
}

// The fixture model on a synthetic clip.

const W: usize = 64;
const H: usize = 48;

fn solid(r: u8, g: u8, b: u8) -> Vec<u8> {
    (0..W * H).flat_map(|_| [r, g, b]).collect()
}

fn gradient(channel: usize) -> Vec<u8> {
    (0..H)
        .flat_map(|y| {
            (0..W).flat_map(move |x| {
                let mut p = [40u8; 3];
                p[channel] = (x * 4) as u8;
                p[(channel + 1) % 3] = (y * 5) as u8;
                p
            })
        })
        .collect()
}

fn checker(size: usize) -> Vec<u8> {
    (0..H)
        .flat_map(|y| {
            (0..W).map(move |x| {
                if (x / size + y / size).is_multiple_of(2) {
                    [230u8, 230, 230]
                } else {
                    [20, 20, 60]
                }
            })
        })
        .flatten()
        .collect()
}

/// `image` with a deterministic noise of up to ±`amplitude` on every value:
/// a near duplicate.
fn noisy(image: &[u8], seed: u32, amplitude: i32) -> Vec<u8> {
    let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(12_345);
    image
        .iter()
        .map(|&v| {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let n = ((s >> 16) % (2 * amplitude as u32 + 1)) as i32 - amplitude;
            (v as i32 + n).clamp(0, 255) as u8
        })
        .collect()
}

/// A W x H window of a wide image, `dx` pixels from its left edge.
fn pan_view(dx: usize) -> Vec<u8> {
    (0..H)
        .flat_map(|y| {
            (0..W).flat_map(move |x| {
                let x = x + dx;
                let band = (x / 24) % 3;
                [
                    (x * 3 % 256) as u8,
                    if band == 0 { 200 } else { (y * 5) as u8 },
                    if (x / 8 + y / 8).is_multiple_of(2) {
                        220
                    } else {
                        30
                    },
                ]
            })
        })
        .collect()
}

/// The clip: runs of exact and near duplicates between known cuts, then a
/// slow pan. Returns the frames and, for frames 0-23, those to keep.
fn clip() -> (Vec<Vec<u8>>, Vec<u64>) {
    let (a, b, c, d, e) = (
        checker(16),
        gradient(0),
        solid(200, 30, 30),
        gradient(1),
        checker(4),
    );
    let mut frames = Vec::new();
    frames.extend(std::iter::repeat_n(a.clone(), 6)); // 0-5: exact duplicates
    frames.extend((0..6).map(|i| noisy(&b, i, 3))); // 6-11: near duplicates
    frames.extend([c, d, e.clone()]); // 12, 13, 14: a cut on every frame
    frames.extend((0..5).map(|i| noisy(&e, 100 + i, 3))); // 15-19: like 14
    frames.extend(std::iter::repeat_n(a, 4)); // 20-23: back to the first scene
    frames.extend((0..24).map(pan_view)); // 24-47: a slow pan, 1 pixel a frame
    (frames, vec![0, 6, 12, 13, 14, 20])
}

/// What the rule keeps, computed here from the embeddings the model gave.
fn expected_kept(embeddings: &[Vec<f32>], threshold: f64, max_run: u32) -> Vec<u64> {
    let mut kept = Vec::new();
    let mut reference: Option<&Vec<f32>> = None;
    let mut run = 0;
    for (n, e) in embeddings.iter().enumerate() {
        let drop = reference.is_some_and(|r| {
            dreamsim::distance(r, e).unwrap() <= threshold && (max_run == 0 || run < max_run)
        });
        if drop {
            run += 1;
        } else {
            kept.push(n as u64);
            reference = Some(e);
            run = 0;
        }
    }
    kept
}

#[test]
fn synthetic_clip_keeps_exactly_the_frames_it_should() {
    init();
    let threshold = 0.01;
    let pipeline = gst::parse::launch(&format!(
        "appsrc name=src format=time caps=video/x-raw,format=RGB,width={W},height={H},framerate=25/1 \
         ! dreamsim model-location={} execution-provider=cpu post-messages=false ! tee name=t \
         t. ! queue ! appsink name=all sync=false \
         t. ! queue ! dreamsimdedup name=d threshold={threshold} ! appsink name=kept sync=false \
         t. ! queue ! dreamsimdedup threshold={threshold} max-consecutive-drops=3 ! \
         appsink name=bounded sync=false",
        fixture("tiny_ensemble.onnx").display()
    ))
    .unwrap()
    .downcast::<gst::Bin>()
    .unwrap();
    let appsrc = pipeline
        .by_name("src")
        .unwrap()
        .downcast::<gst_app::AppSrc>()
        .unwrap();
    let sink = |name: &str| gst_run::appsink(&pipeline, name);
    let (all, kept, bounded) = (sink("all"), sink("kept"), sink("bounded"));
    pipeline.set_state(gst::State::Playing).unwrap();
    let (frames, want) = clip();
    let n_frames = frames.len();
    for (n, f) in frames.into_iter().enumerate() {
        let mut buffer = gst::Buffer::from_mut_slice(f);
        let b = buffer.get_mut().unwrap();
        b.set_pts(ms(40 * n as u64));
        b.set_duration(ms(40));
        appsrc.push_buffer(buffer).unwrap();
    }
    appsrc.end_of_stream().unwrap();
    let pull = |sink: &gst_app::AppSink| -> Vec<gst::Buffer> {
        std::iter::from_fn(|| sink.pull_sample().ok())
            .map(|s| s.buffer_owned().unwrap())
            .collect()
    };
    let frame_numbers = |buffers: &[gst::Buffer]| -> Vec<u64> {
        buffers
            .iter()
            .map(|b| b.pts().unwrap().mseconds() / 40)
            .collect()
    };
    let (all, kept, bounded) = (pull(&all), pull(&kept), pull(&bounded));
    let dedup = pipeline.by_name("d").unwrap();
    let counts = (
        dedup.property::<u64>("kept"),
        dedup.property::<u64>("dropped"),
    );
    pipeline.set_state(gst::State::Null).unwrap();

    assert_eq!(all.len(), n_frames);
    let embeddings: Vec<Vec<f32>> = all
        .iter()
        .map(|b| DreamSimMeta::from_buffer(b).unwrap().unwrap().embedding)
        .collect();
    // The clip is what it claims to be for this model: near duplicates are
    // far under the threshold, cuts far over it.
    let d = |i: usize, j: usize| dreamsim::distance(&embeddings[i], &embeddings[j]).unwrap();
    for (i, j) in [(0, 5), (6, 11), (6, 7), (14, 19), (0, 20)] {
        assert!(
            d(i, j) < threshold / 10.0,
            "frames {i} and {j}: {}",
            d(i, j)
        );
    }
    for (i, j) in [(5, 6), (11, 12), (12, 13), (13, 14), (19, 20)] {
        assert!(
            d(i, j) > threshold * 10.0,
            "frames {i} and {j}: {}",
            d(i, j)
        );
    }

    let kept = frame_numbers(&kept);
    assert_eq!(kept[..want.len()], want, "kept: {kept:?}");
    // The pan: no frame is farther than the threshold from the previous
    // one, so a filter comparing neighbours would keep its first frame only;
    // compared with the last kept frame, a frame is kept every few pixels.
    for i in 25..48 {
        assert!(
            d(i - 1, i) <= threshold,
            "pan frames {} and {i}: {}",
            i - 1,
            d(i - 1, i)
        );
    }
    let pan_kept = kept.iter().filter(|&&n| n >= 24).count();
    assert!(
        pan_kept > 2 && pan_kept < 24,
        "pan kept {pan_kept} of 24: {kept:?}"
    );
    assert_eq!(kept, expected_kept(&embeddings, threshold, 0));
    assert_eq!(counts, (kept.len() as u64, (n_frames - kept.len()) as u64));

    let bounded = frame_numbers(&bounded);
    assert_eq!(
        bounded[..9],
        [0, 4, 6, 10, 12, 13, 14, 18, 20],
        "bounded: {bounded:?}"
    );
    assert_eq!(bounded, expected_kept(&embeddings, threshold, 3));
}

#[test]
fn a_flushing_seek_keeps_the_first_frame_after_it() {
    init();
    let media = repo_root().join(".cache/media/bikes.mp4");
    if !media.exists() {
        let status = std::process::Command::new(repo_root().join("tools/fetch_test_media.sh"))
            .status()
            .expect("run tools/fetch_test_media.sh");
        assert!(status.success(), "could not fetch bikes.mp4 (needs PyPI)");
    }
    // threshold=2 drops every frame that has a reference to compare with.
    let pipeline = gst::parse::launch(&format!(
        "filesrc location={} ! decodebin ! videoconvert ! dreamsim model-location={} \
         execution-provider=cpu post-messages=false ! dreamsimdedup name=d threshold=2 ! \
         fakesink sync=false",
        media.display(),
        fixture("tiny_ensemble.onnx").display()
    ))
    .unwrap()
    .downcast::<gst::Bin>()
    .unwrap();
    let kept = Arc::new(Mutex::new(Vec::new()));
    {
        let kept = kept.clone();
        pipeline
            .by_name("d")
            .unwrap()
            .static_pad("src")
            .unwrap()
            .add_probe(gst::PadProbeType::BUFFER, move |_, info| {
                if let Some(b) = info.buffer() {
                    kept.lock().unwrap().push(b.pts().unwrap().mseconds());
                }
                gst::PadProbeReturn::Ok
            });
    }
    pipeline.set_state(gst::State::Paused).unwrap();
    let (result, _, _) = pipeline.state(gst::ClockTime::from_seconds(60));
    result.expect("prerolled");
    pipeline
        .seek_simple(
            gst::SeekFlags::FLUSH | gst::SeekFlags::ACCURATE,
            gst::ClockTime::from_seconds(4),
        )
        .expect("seek");
    pipeline.set_state(gst::State::Playing).unwrap();
    let bus = pipeline.bus().unwrap();
    let counts = gst_run::collect_messages(
        &bus,
        gst::ClockTime::from_seconds(120),
        DedupMessage::from_message,
    )
    .pop();
    pipeline.set_state(gst::State::Null).unwrap();
    // The file's timestamps start at 80 ms: the frame after the seek is
    // 4 s after the first one.
    let kept = kept.lock().unwrap();
    assert_eq!(kept.len(), 2, "kept {kept:?}");
    assert_eq!(kept[1] - kept[0], 4000);
    let counts = counts.expect("counts at EOS");
    assert_eq!(counts.kept, 2);
    assert_eq!(counts.without_meta, 0);
}
