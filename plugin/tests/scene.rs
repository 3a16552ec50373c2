//! The `dreamsimscene` element: harness tests with hand-made metadata (the
//! decision, latency, ordering, flushes, EOS), and real pipelines on
//! bikes.mp4 with the fixture model (scene starts, seeks, keyframes).

use dreamsim_testsupport as common;
mod plugin_common;

use std::sync::{Arc, Mutex};

use common::*;
use gst::prelude::*;
use gstdreamsim::meta::{DreamSimMeta, SceneMark};
use gstdreamsim::SceneMessage;
use plugin_common::*;

/// Scene starts of bikes.mp4 (frame numbers, from 0).
const BIKES_STARTS: [u64; 6] = [0, 30, 76, 137, 187, 242];

/// A 4x4 RGB frame `n` (40 ms each), with `DreamSimMeta` when `distance` is
/// given (`Some(None)`: analysed, no distance).
fn frame(n: u64, distance: Option<Option<f64>>) -> gst::Buffer {
    let mut buffer = gst::Buffer::from_mut_slice(vec![n as u8; 48]);
    {
        let b = buffer.get_mut().unwrap();
        b.set_pts(ms(40 * n));
        b.set_duration(ms(40));
        if let Some(distance) = distance {
            DreamSimMeta {
                frame: n,
                distance,
                reference_distance: None,
                embedding: vec![1.0, 0.0],
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

/// Frame `n` with meta; the first one has no distance.
fn analysed(n: u64, distance: f64) -> gst::Buffer {
    frame(n, Some((n > 0).then_some(distance)))
}

fn mark(b: &gst::BufferRef) -> Option<SceneMark> {
    DreamSimMeta::from_buffer(b)?.unwrap().scene
}

/// `dreamsimscene` in a [`FilterHarness`]; buffers are logged by PTS in ms.
struct Scene(FilterHarness);

impl std::ops::Deref for Scene {
    type Target = FilterHarness;
    fn deref(&self) -> &FilterHarness {
        &self.0
    }
}

impl std::ops::DerefMut for Scene {
    fn deref_mut(&mut self) -> &mut FilterHarness {
        &mut self.0
    }
}

impl Scene {
    fn new(properties: &[(&str, &str)]) -> Self {
        Self(FilterHarness::new("dreamsimscene", properties, |t| {
            t.mseconds()
        }))
    }

    fn push(&mut self, buffer: gst::Buffer) {
        assert_eq!(self.h.push(buffer), Ok(gst::FlowSuccess::Ok));
    }

    fn pull_all(&mut self) -> Vec<gst::Buffer> {
        std::iter::from_fn(|| self.h.try_pull()).collect()
    }

    fn messages(&self) -> Vec<SceneMessage> {
        std::iter::from_fn(|| self.bus.pop())
            .filter_map(|m| SceneMessage::from_message(&m).transpose().unwrap())
            .collect()
    }

    fn latency(&mut self, upstream: gst::ClockTime) -> gst::ClockTime {
        self.h.set_upstream_latency(upstream);
        self.h.query_latency().expect("latency answered")
    }
}

fn starts(buffers: &[gst::Buffer]) -> Vec<u64> {
    buffers
        .iter()
        .filter(|b| mark(b).is_some_and(|m| m.start))
        .map(|b| b.pts().unwrap().mseconds() / 40)
        .collect()
}

#[test]
fn fixed_mode_decides_every_frame_at_once() {
    let mut s = Scene::new(&[
        ("mode", "fixed"),
        ("threshold", "0.5"),
        ("min-scene-length", "0"),
    ]);
    assert_eq!(s.latency(ms(10)), ms(10), "fixed mode adds no latency");
    let distances = [0.0, 0.1, 0.6, 0.2, 0.7];
    let mut marks = Vec::new();
    for (n, d) in distances.into_iter().enumerate() {
        s.push(analysed(n as u64, d));
        let out = s.h.try_pull().expect("the frame leaves at once");
        marks.push(mark(&out).unwrap());
    }
    let want = [(0, true), (0, false), (1, true), (1, false), (2, true)];
    assert_eq!(marks, want.map(|(index, start)| SceneMark { index, start }));
    let messages = s.messages();
    assert_eq!(messages.len(), 3);
    for (m, (index, frame, distance)) in
        messages
            .iter()
            .zip([(0, 0, None), (1, 2, Some(0.6)), (2, 4, Some(0.7))])
    {
        assert_eq!(
            (m.index, m.frame, m.distance, m.score),
            (index, frame, distance, distance)
        );
        assert_eq!(m.timing.timestamp, Some(ms(40 * frame)));
        assert_eq!(m.timing.running_time, Some(ms(40 * frame)));
        assert_eq!(m.timing.stream_time, Some(ms(40 * frame)));
        assert_eq!(m.timing.duration, Some(ms(40)));
    }
    assert_eq!(s.element.property::<u64>("scenes"), 3);
}

/// Steady camera motion (0.3 between frames) with cuts at 17 and 34.
fn motion_with_cuts(n: u64) -> f64 {
    match n {
        17 => 1.5,
        34 => 1.2,
        _ => 0.3,
    }
}

#[test]
fn adaptive_mode_holds_window_frames_and_reports_that_latency() {
    let mut s = Scene::new(&[]);
    assert_eq!(s.latency(ms(10)), ms(10 + 2 * 40), "window 2 at 25 fps");
    let mut out = Vec::new();
    for n in 0..40u64 {
        s.push(analysed(n, motion_with_cuts(n)));
        out.extend(s.pull_all());
        // The first frame has no distance and is decided at once; every
        // later one waits for the two after it.
        assert_eq!(
            out.len() as u64,
            n.saturating_sub(1).max(1),
            "after frame {n}"
        );
    }
    assert!(s.h.push_event(gst::event::Eos::new()));
    out.extend(s.pull_all());
    assert_eq!(out.len(), 40);
    assert_eq!(starts(&out), [0, 17, 34]);
    let messages = s.messages();
    assert_eq!(
        messages.iter().map(|m| m.frame).collect::<Vec<_>>(),
        [0, 17, 34]
    );
    let ratio = messages[1].score.unwrap();
    assert!((ratio - 1.5 / 0.3).abs() < 1e-9, "ratio {ratio}");

    // The same motion cuts everywhere with a fixed threshold below it.
    let mut fixed = Scene::new(&[("mode", "fixed"), ("threshold", "0.25")]);
    for n in 0..40u64 {
        fixed.push(analysed(n, motion_with_cuts(n)));
    }
    assert_eq!(starts(&fixed.pull_all()), [0, 15, 30]);
}

#[test]
fn frames_without_meta_pass_in_order_and_never_cut() {
    // As with dreamsim interval=3: meta on one frame in three.
    let mut s = Scene::new(&[]);
    while s.bus.pop().is_some() {}
    let cut = 15;
    for n in 0..30u64 {
        if n % 3 == 0 {
            s.push(analysed(n, if n == cut { 0.8 } else { 0.02 }));
        } else {
            s.push(frame(n, None));
        }
    }
    assert!(s.h.push_event(gst::event::Eos::new()));
    let out = s.pull_all();
    let pts: Vec<u64> = out
        .iter()
        .map(|b| b.pts().unwrap().mseconds() / 40)
        .collect();
    assert_eq!(pts, (0..30).collect::<Vec<_>>(), "all frames, in order");
    for b in &out {
        let n = b.pts().unwrap().mseconds() / 40;
        assert_eq!(DreamSimMeta::is_on(b), n % 3 == 0, "frame {n}");
    }
    assert_eq!(starts(&out), [0, cut]);
    assert_eq!(
        out.iter()
            .filter_map(|b| mark(b))
            .map(|m| m.index)
            .collect::<Vec<_>>(),
        [0, 0, 0, 0, 0, 1, 1, 1, 1, 1]
    );
    // The window spans 2 analysed frames, 6 frames apart: the element said
    // its latency changed.
    let latency_messages = std::iter::from_fn(|| s.bus.pop())
        .filter(|m| matches!(m.view(), gst::MessageView::Latency(_)))
        .count();
    assert_eq!(latency_messages, 1);
    assert_eq!(s.latency(gst::ClockTime::ZERO), ms(2 * 3 * 40));
}

/// Issue #14: a meta whose distance is NaN or infinite (another writer's;
/// `dreamsim` stops with an error instead) is malformed: the frame passes
/// unmarked, in order, neither cuts nor disturbs the decision on the others.
/// A missing distance on a later frame is a discontinuity: a scene start,
/// not a cut.
#[test]
fn frames_with_a_non_finite_distance_pass_unmarked_and_never_cut() {
    for mode in ["fixed", "adaptive"] {
        let mut s = Scene::new(&[("mode", mode), ("min-scene-length", "0")]);
        let distances = [
            None,
            Some(0.02),
            Some(f64::NAN),
            Some(0.02),
            Some(f64::INFINITY),
        ];
        for (n, d) in distances.iter().enumerate() {
            s.push(frame(n as u64, Some(*d)));
        }
        s.push(analysed(5, 0.02));
        s.push(frame(6, Some(None)));
        s.push(analysed(7, 0.02));
        assert!(s.h.push_event(gst::event::Eos::new()));
        let out = s.pull_all();
        let pts: Vec<u64> = out
            .iter()
            .map(|b| b.pts().unwrap().mseconds() / 40)
            .collect();
        assert_eq!(
            pts,
            (0..8).collect::<Vec<_>>(),
            "{mode}: all frames, in order"
        );
        let marks: Vec<(u64, SceneMark)> = out
            .iter()
            .filter_map(|b| {
                let scene = DreamSimMeta::from_buffer(b).unwrap().ok()?.scene?;
                Some((b.pts().unwrap().mseconds() / 40, scene))
            })
            .collect();
        let marked: Vec<u64> = marks.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            marked,
            [0, 1, 3, 5, 6, 7],
            "{mode}: the NaN and inf frames are unmarked"
        );
        let starts: Vec<u64> = marks
            .iter()
            .filter(|(_, m)| m.start)
            .map(|(n, _)| *n)
            .collect();
        assert_eq!(starts, [0, 6], "{mode}");
        let messages: Vec<(u64, Option<f64>)> =
            s.messages().iter().map(|m| (m.frame, m.distance)).collect();
        assert_eq!(
            messages,
            [(0, None), (6, None)],
            "{mode}: scene starts, no cut"
        );
    }
}

#[test]
fn serialized_events_keep_their_place_among_the_buffers() {
    let mut s = Scene::new(&[]);
    let custom = |name: &str| gst::event::CustomDownstream::new(gst::Structure::new_empty(name));
    s.push(analysed(0, 0.0));
    s.push(analysed(1, 0.01));
    s.push(analysed(2, 0.01));
    assert!(s.h.push_event(custom("after-2")));
    assert!(
        !s.log().contains(&"E:after-2".to_string()),
        "the event waits behind frames 1 and 2"
    );
    s.push(analysed(3, 0.01));
    assert!(s.h.push_event(gst::event::Tag::new(gst::TagList::new())));
    s.push(analysed(4, 0.9));
    // Out of band events do not wait.
    assert!(s.h.push_event(gst::event::CustomDownstreamOob::new(
        gst::Structure::new_empty("oob")
    )));
    assert!(s.log().contains(&"E:oob".to_string()));
    assert!(!s.log().contains(&"B160".to_string()));
    assert!(s.h.push_event(gst::event::Eos::new()));
    let log: Vec<String> = s.log().into_iter().filter(|e| e != "E:oob").collect();
    assert_eq!(
        log,
        [
            "B0",
            "B40",
            "B80",
            "E:after-2",
            "B120",
            "E:tag",
            "B160",
            "E:eos"
        ]
    );
}

#[test]
fn force_key_units_go_before_each_cut() {
    let mut s = Scene::new(&[
        ("mode", "fixed"),
        ("threshold", "0.5"),
        ("min-scene-length", "2"),
        ("force-key-units", "true"),
    ]);
    for (n, d) in [0.0, 0.1, 0.9, 0.1, 0.95, 0.1].into_iter().enumerate() {
        s.push(analysed(n as u64, d));
    }
    assert_eq!(
        s.log(),
        [
            "B0",
            "B40",
            "E:GstForceKeyUnit",
            "B80",
            "B120",
            "E:GstForceKeyUnit",
            "B160",
            "B200"
        ]
    );
    let events: Vec<_> = std::iter::from_fn(|| s.h.try_pull_event())
        .filter_map(|e| gst_video::DownstreamForceKeyUnitEvent::parse(&e).ok())
        .collect();
    assert_eq!(events.len(), 2);
    for (e, (frame, index)) in events.iter().zip([(2u64, 1u32), (4, 2)]) {
        assert_eq!(e.timestamp, Some(ms(40 * frame)));
        assert_eq!(e.running_time, Some(ms(40 * frame)));
        assert_eq!(e.stream_time, Some(ms(40 * frame)));
        assert_eq!(e.count, index);
        assert!(e.all_headers);
    }
}

#[test]
fn min_scene_length_keeps_cuts_apart() {
    let mut s = Scene::new(&[
        ("mode", "fixed"),
        ("threshold", "0.5"),
        ("min-scene-length", "15"),
    ]);
    for n in 0..40u64 {
        s.push(analysed(
            n,
            if [3, 14, 15, 29].contains(&n) {
                0.9
            } else {
                0.0
            },
        ));
    }
    // 3 and 14 are too close to 0, 29 to 15.
    assert_eq!(starts(&s.pull_all()), [0, 15]);
}

#[test]
fn a_flush_drops_the_held_frames_and_starts_a_scene() {
    let mut s = Scene::new(&[("min-scene-length", "0")]);
    for n in 0..6u64 {
        s.push(analysed(n, 0.01));
    }
    let before = s.pull_all();
    assert_eq!(before.len(), 4, "frames 4 and 5 wait");
    assert!(s.h.push_event(gst::event::FlushStart::new()));
    assert!(s.h.push_event(gst::event::FlushStop::new(true)));
    assert!(s
        .h
        .push_event(gst::event::Segment::new(&gst::FormattedSegment::<
            gst::ClockTime,
        >::new())));
    // dreamsim sends the first frame after a flush without a distance; one
    // that has a distance starts a scene all the same.
    s.push(frame(10, Some(Some(0.01))));
    for n in 11..14u64 {
        s.push(analysed(n, 0.01));
    }
    assert!(s.h.push_event(gst::event::Eos::new()));
    let after = s.pull_all();
    let pts: Vec<u64> = after
        .iter()
        .map(|b| b.pts().unwrap().mseconds() / 40)
        .collect();
    assert_eq!(
        pts,
        [10, 11, 12, 13],
        "frames 4 and 5 were dropped with the flush"
    );
    assert_eq!(
        mark(&after[0]),
        Some(SceneMark {
            index: 1,
            start: true
        })
    );
    assert_eq!(starts(&after), [10]);
    let messages = s.messages();
    assert_eq!(
        messages
            .iter()
            .map(|m| (m.index, m.frame))
            .collect::<Vec<_>>(),
        [(0, 0), (1, 10)]
    );
}

#[test]
fn eos_decides_the_last_frames_with_the_neighbours_there_are() {
    let mut s = Scene::new(&[]);
    for n in 0..=20u64 {
        s.push(analysed(n, if n == 20 { 0.9 } else { 0.02 }));
    }
    assert_eq!(s.pull_all().len(), 19);
    assert!(s.h.push_event(gst::event::Eos::new()));
    let rest = s.pull_all();
    assert_eq!(rest.len(), 2);
    assert_eq!(
        mark(&rest[1]),
        Some(SceneMark {
            index: 1,
            start: true
        })
    );
    assert_eq!(s.log().last().map(String::as_str), Some("E:eos"));
}

// Real media: bikes.mp4 with the fixture model.

fn bikes() -> std::path::PathBuf {
    let media = repo_root().join(".cache/media/bikes.mp4");
    if !media.exists() {
        let status = std::process::Command::new(repo_root().join("tools/fetch_test_media.sh"))
            .status()
            .expect("run tools/fetch_test_media.sh");
        assert!(status.success(), "could not fetch bikes.mp4 (needs PyPI)");
    }
    media
}

fn model() -> String {
    fixture("tiny_ensemble.onnx").display().to_string()
}

/// Runs `pipeline` to EOS; returns its scene messages with the name of the
/// element that posted each.
fn run_to_eos(pipeline: &gst::Element) -> Vec<(String, SceneMessage)> {
    let bus = pipeline.bus().unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let mut messages = Vec::new();
    gst_run::read_bus_ok(&bus, gst::ClockTime::from_seconds(300), "scene", |msg| {
        if let Some(m) = SceneMessage::from_message(msg).transpose().unwrap() {
            messages.push((msg.src().unwrap().name().to_string(), m));
        }
    });
    pipeline.set_state(gst::State::Null).unwrap();
    messages
}

#[test]
fn bikes_scene_starts_in_adaptive_and_fixed_mode() {
    init();
    let pipeline = gst::parse::launch(&format!(
        "filesrc location={} ! decodebin ! videoconvert ! dreamsim model-location={} \
         execution-provider=cpu post-messages=false ! tee name=t \
         t. ! queue ! dreamsimscene name=adaptive ! appsink name=sink sync=false \
         t. ! queue ! dreamsimscene name=fixed mode=fixed threshold=0.06 ! fakesink sync=false",
        bikes().display(),
        model()
    ))
    .unwrap();
    let sink = gst_run::appsink(pipeline.downcast_ref::<gst::Bin>().unwrap(), "sink");
    let marks = Arc::new(Mutex::new(Vec::new()));
    {
        let marks = marks.clone();
        gst_run::on_samples(&sink, move |sample| {
            marks.lock().unwrap().push(mark(sample.buffer().unwrap()));
        });
    }
    let messages = run_to_eos(&pipeline);
    for mode in ["adaptive", "fixed"] {
        let frames: Vec<u64> = messages
            .iter()
            .filter(|(src, _)| src == mode)
            .map(|(_, m)| m.frame)
            .collect();
        assert_eq!(frames, BIKES_STARTS, "{mode} mode");
    }
    for (_, m) in &messages {
        assert_eq!(m.timing.stream_time, Some(ms(40 * m.frame)));
    }
    // Every frame leaves, marked with its scene.
    let marks = marks.lock().unwrap();
    assert_eq!(marks.len(), 250);
    let mut scene = 0;
    for (n, m) in marks.iter().enumerate() {
        let m = m.unwrap_or_else(|| panic!("frame {n} has no scene mark"));
        let start = BIKES_STARTS.contains(&(n as u64));
        if start && n > 0 {
            scene += 1;
        }
        assert_eq!(
            m,
            SceneMark {
                index: scene,
                start
            },
            "frame {n}"
        );
    }
}

#[test]
fn a_flushing_seek_starts_a_scene_where_playback_resumes() {
    init();
    let pipeline = gst::parse::launch(&format!(
        "filesrc location={} ! decodebin ! videoconvert ! dreamsim model-location={} \
         execution-provider=cpu post-messages=false ! dreamsimscene ! fakesink sync=false",
        bikes().display(),
        model()
    ))
    .unwrap();
    pipeline.set_state(gst::State::Paused).unwrap();
    let (result, _, _) = pipeline.state(gst::ClockTime::from_seconds(60));
    result.expect("prerolled");
    pipeline
        .seek_simple(
            gst::SeekFlags::FLUSH | gst::SeekFlags::ACCURATE,
            gst::ClockTime::from_seconds(4),
        )
        .expect("seek");
    let messages = run_to_eos(&pipeline);
    let times: Vec<u64> = messages
        .iter()
        .filter_map(|(_, m)| m.timing.stream_time)
        .map(|t| t.mseconds())
        .filter(|&t| t > 0)
        .collect();
    // Frame 100 starts a scene; the cuts after it are still found.
    assert_eq!(times, [4000, 5480, 7480, 9680]);
    let indices: Vec<u64> = messages.iter().map(|(_, m)| m.index).collect();
    assert!(
        indices.windows(2).all(|w| w[1] == w[0] + 1),
        "indices {indices:?}"
    );
    assert!(
        messages[1].1.distance.is_none(),
        "no distance across the seek"
    );
}

#[test]
fn force_key_units_put_keyframes_at_the_cuts() {
    init();
    assert!(
        gst::ElementFactory::find("vp8enc").is_some(),
        "vp8enc is missing: install gst-plugins-good (tools/install_deps.sh)"
    );
    // Without the events vp8enc would make one keyframe, at the start.
    let pipeline = gst::parse::launch(&format!(
        "filesrc location={} ! decodebin ! videoconvert ! dreamsim model-location={} \
         execution-provider=cpu post-messages=false ! dreamsimscene force-key-units=true ! \
         videoconvert ! vp8enc deadline=1 keyframe-mode=disabled ! appsink name=sink sync=false",
        bikes().display(),
        model()
    ))
    .unwrap();
    let sink = gst_run::appsink(pipeline.downcast_ref::<gst::Bin>().unwrap(), "sink");
    let keyframes = Arc::new(Mutex::new(Vec::new()));
    {
        let keyframes = keyframes.clone();
        gst_run::on_samples(&sink, move |sample| {
            let b = sample.buffer().unwrap();
            if !b.flags().contains(gst::BufferFlags::DELTA_UNIT) {
                keyframes.lock().unwrap().push(b.pts().unwrap());
            }
        });
    }
    run_to_eos(&pipeline);
    // vp8enc shifts all its timestamps by the same offset.
    let keyframes = keyframes.lock().unwrap();
    let frames: Vec<u64> = keyframes
        .iter()
        .map(|&pts| (pts - keyframes[0]).mseconds() / 40)
        .collect();
    assert_eq!(frames, BIKES_STARTS);
}

#[test]
fn bikes_with_an_interval_cuts_at_the_first_analysed_frame_of_each_scene() {
    init();
    let pipeline = gst::parse::launch(&format!(
        "filesrc location={} ! decodebin ! videoconvert ! dreamsim model-location={} \
         execution-provider=cpu post-messages=false interval=3 ! dreamsimscene ! \
         fakesink sync=false",
        bikes().display(),
        model()
    ))
    .unwrap();
    let frames: Vec<u64> = run_to_eos(&pipeline)
        .into_iter()
        .map(|(_, m)| m.frame)
        .collect();
    // Frames 0, 3, 6, ... are analysed: 76 is seen at 78, 137 at 138, ...
    assert_eq!(frames, [0, 30, 78, 138, 189, 243]);
}
