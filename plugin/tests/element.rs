//! The `dreamsim` element: harness tests of what it does to buffers, and
//! real pipelines for bus messages, errors and real media.

use dreamsim_testsupport as common;
mod plugin_common;

use common::*;
use gst::prelude::*;
use gstdreamsim::meta::DreamSimMeta;
use plugin_common::*;

fn model() -> String {
    fixture("tiny_ensemble.onnx").display().to_string()
}

fn harness(extra: &str) -> gst_check::Harness {
    init();
    gst_check::Harness::new_parse(&format!(
        "dreamsim name=dreamsim model-location={} execution-provider=cpu threads=1 {extra}",
        model()
    ))
}

fn rgb_buffer(data: Vec<u8>, n: u64) -> gst::Buffer {
    let mut buffer = gst::Buffer::from_mut_slice(data);
    {
        let b = buffer.get_mut().unwrap();
        b.set_pts(gst::ClockTime::from_mseconds(40 * n));
        b.set_duration(gst::ClockTime::from_mseconds(40));
        b.set_offset(n);
    }
    buffer
}

fn meta(buffer: &gst::Buffer) -> DreamSimMeta {
    DreamSimMeta::from_buffer(buffer)
        .expect("buffer has DreamSimMeta")
        .expect("meta is well formed")
}

#[test]
fn every_buffer_gets_meta_and_passes_unchanged() {
    let mut h = harness("");
    h.set_src_caps_str("video/x-raw,format=RGB,width=64,height=48,framerate=25/1");
    let frames: Vec<Vec<u8>> = (0..6).map(|i| pattern_rgb(64, 48, i % 3, 0, 0)).collect();
    for (i, f) in frames.iter().enumerate() {
        h.push(rgb_buffer(f.clone(), i as u64)).unwrap();
    }
    for (i, f) in frames.iter().enumerate() {
        let out = h.pull().unwrap();
        assert_eq!(
            out.map_readable().unwrap().as_slice(),
            &f[..],
            "data of frame {i}"
        );
        assert_eq!(
            out.pts(),
            Some(gst::ClockTime::from_mseconds(40 * i as u64))
        );
        assert_eq!(out.duration(), Some(gst::ClockTime::from_mseconds(40)));
        let m = meta(&out);
        assert_eq!(m.frame, i as u64);
        assert_eq!(m.model, "fixture_ensemble");
        assert_eq!(m.embedding.len(), 32);
        assert_eq!(m.reference_distance, None);
        if i == 0 {
            assert_eq!(m.distance, None, "the first frame has no previous frame");
        } else {
            assert!(m.distance.unwrap() > 1e-3, "different images, frame {i}");
        }
    }
    assert!(h.try_pull().is_none(), "no extra buffers");
}

#[test]
fn identical_frames_have_zero_distance() {
    let mut h = harness("");
    h.set_src_caps_str("video/x-raw,format=BGRx,width=40,height=30,framerate=25/1");
    let frame: Vec<u8> = (0..40 * 30 * 4).map(|i| (i * 7 % 251) as u8).collect();
    for i in 0..3 {
        h.push(rgb_buffer(frame.clone(), i)).unwrap();
    }
    h.pull().unwrap();
    for _ in 0..2 {
        let d = meta(&h.pull().unwrap()).distance.unwrap();
        assert!(d.abs() < 1e-6, "distance {d}");
    }
    // The repeats reused the first frame's embedding.
    let stats = h
        .find_element("dreamsim")
        .unwrap()
        .property::<gst::Structure>("stats");
    assert_eq!(stats.get::<u64>("frames").unwrap(), 3);
    assert_eq!(stats.get::<u64>("inferred-frames").unwrap(), 1);
}

#[test]
fn distances_match_the_python_reference() {
    let mut h = harness(&format!(
        "reference-location={}",
        fixture("reference.png").display()
    ));
    let names = ["64x48_s40", "64x48_s40_dx1", "64x48_s41"];
    h.set_src_caps_str("video/x-raw,format=RGB,width=64,height=48,framerate=25/1");
    for (i, name) in names.iter().enumerate() {
        let (_, _, rgb) = golden_image_rgb(golden_image(name));
        h.push(rgb_buffer(rgb, i as u64)).unwrap();
    }
    let reference = golden_embedding("tiny_ensemble", "reference");
    let mut previous: Option<Vec<f32>> = None;
    for name in names {
        let m = meta(&h.pull().unwrap());
        let want = golden_embedding("tiny_ensemble", name);
        assert!(max_abs_diff(&m.embedding, &want) <= 1e-5, "{name}");
        let want_ref = dreamsim::distance(&want, &reference).unwrap();
        assert!(
            (m.reference_distance.unwrap() - want_ref).abs() <= 1e-5,
            "{name}"
        );
        match &previous {
            None => assert_eq!(m.distance, None),
            Some(p) => {
                let want_d = dreamsim::distance(p, &want).unwrap();
                assert!((m.distance.unwrap() - want_d).abs() <= 1e-5, "{name}");
            }
        }
        previous = Some(want);
    }
    let stats = h
        .find_element("dreamsim")
        .unwrap()
        .property::<gst::Structure>("stats");
    assert_eq!(
        stats.get::<u64>("frames").unwrap(),
        3,
        "the reference image is not counted as a frame"
    );
    assert_eq!(stats.get::<u64>("batches").unwrap(), 3);
}

#[test]
fn the_start_message_names_the_provider_and_the_build() {
    init();
    let pipeline = gst::parse::launch(&format!(
        "videotestsrc num-buffers=2 ! dreamsim model-location={} execution-provider=cpu \
         threads=1 ! fakesink sync=false",
        model()
    ))
    .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let (mut infos, mut progress) = (Vec::new(), Vec::new());
    let bus = pipeline.bus().unwrap();
    gst_run::read_bus_ok(
        &bus,
        gst::ClockTime::from_seconds(30),
        "start",
        |msg| match msg.view() {
            gst::MessageView::Info(i) => infos.push(format!("{:?}", i.debug())),
            gst::MessageView::Progress(p) => {
                let (kind, code, text) = p.get();
                progress.push((kind, code.to_string(), text.to_string()));
            }
            _ => {}
        },
    );
    pipeline.set_state(gst::State::Null).unwrap();
    assert!(
        infos.iter().any(
            |i| i.contains("DreamSim runs on the cpu execution provider in fp32")
                && i.contains(dreamsim::BUILD_VERSION)
        ),
        "{infos:?} names the provider and {}",
        dreamsim::BUILD_VERSION
    );
    // The model load is announced and its end reported, for applications
    // that show progress while TensorRT or OpenVINO compile.
    assert_eq!(progress.len(), 2, "{progress:?}");
    assert_eq!(progress[0].0, gst::ProgressType::Start);
    assert_eq!(progress[1].0, gst::ProgressType::Complete);
    assert!(progress.iter().all(|(_, code, _)| code == "model-load"));
    assert!(progress[0].2.contains("tiny_ensemble.onnx"), "{progress:?}");
    assert!(
        progress[1].2.contains("on the cpu execution provider"),
        "{progress:?}"
    );
}

#[test]
fn interval_analyses_one_buffer_in_n() {
    let mut h = harness("interval=3");
    h.set_src_caps_str("video/x-raw,format=GRAY8,width=32,height=32,framerate=25/1");
    for i in 0..7u64 {
        h.push(rgb_buffer(vec![(i * 30) as u8; 32 * 32], i))
            .unwrap();
    }
    let with_meta: Vec<u64> = (0..7)
        .filter_map(|_| DreamSimMeta::from_buffer(&h.pull().unwrap()).map(|m| m.unwrap().frame))
        .collect();
    assert_eq!(with_meta, [0, 3, 6]);
}

#[test]
fn caps_change_mid_stream_keeps_working() {
    let mut h = harness("");
    h.set_src_caps_str("video/x-raw,format=RGB,width=64,height=48,framerate=25/1");
    h.push(rgb_buffer(pattern_rgb(64, 48, 1, 0, 0), 0)).unwrap();
    h.set_src_caps_str("video/x-raw,format=I420,width=80,height=60,framerate=25/1");
    h.push(rgb_buffer(vec![128u8; 80 * 60 * 3 / 2], 1)).unwrap();
    h.set_src_caps_str("video/x-raw,format=RGBA,width=33,height=17,framerate=25/1");
    h.push(rgb_buffer(vec![200u8; 33 * 17 * 4], 2)).unwrap();
    let metas: Vec<DreamSimMeta> = (0..3).map(|_| meta(&h.pull().unwrap())).collect();
    assert_eq!(metas[0].distance, None);
    assert!(metas[1].distance.unwrap() > 0.0 && metas[2].distance.unwrap() > 0.0);
    assert_eq!(metas.iter().map(|m| m.frame).collect::<Vec<_>>(), [0, 1, 2]);
}

#[test]
fn a_flush_forgets_the_previous_frame() {
    let mut h = harness("");
    h.set_src_caps_str("video/x-raw,format=RGB,width=32,height=32,framerate=25/1");
    h.push(rgb_buffer(pattern_rgb(32, 32, 1, 0, 0), 0)).unwrap();
    h.push(rgb_buffer(pattern_rgb(32, 32, 2, 0, 0), 1)).unwrap();
    assert!(h.push_event(gst::event::FlushStart::new()));
    assert!(h.push_event(gst::event::FlushStop::new(true)));
    h.push_event(gst::event::Segment::new(&gst::FormattedSegment::<
        gst::ClockTime,
    >::new()));
    h.push(rgb_buffer(pattern_rgb(32, 32, 3, 0, 0), 2)).unwrap();
    // Buffers queued before the flush may or may not have left; the one
    // after it must come, without a distance to anything before the flush.
    let after = loop {
        let m = meta(&h.pull().expect("the buffer after the flush"));
        if m.frame == 2 {
            break m;
        }
    };
    assert_eq!(after.distance, None, "distance across a flush");
}

#[test]
fn messages_are_posted_for_every_frame() {
    let (messages, error) = run_pipeline(&format!(
        "videotestsrc num-buffers=30 ! dreamsim model-location={} execution-provider=cpu ! fakesink",
        model()
    ));
    assert_eq!(error, None);
    assert_eq!(messages.len(), 30);
    assert_eq!(messages[0].distance, None);
    assert!(messages[1..].iter().all(|m| m.distance.is_some()));
    for (i, m) in messages.iter().enumerate() {
        assert_eq!(m.frame, i as u64);
        assert!(
            m.timing.timestamp.is_some()
                && m.timing.running_time.is_some()
                && m.timing.stream_time.is_some()
        );
    }
    let (messages, _) = run_pipeline(&format!(
        "videotestsrc num-buffers=5 ! dreamsim model-location={} post-messages=false ! fakesink",
        model()
    ));
    assert!(messages.is_empty());
}

#[test]
fn meta_survives_videoconvert_and_videoscale() {
    init();
    let description = format!(
        "videotestsrc num-buffers=4 ! video/x-raw,format=I420,width=64,height=48 ! dreamsim \
         model-location={} ! videoconvert ! videoscale ! video/x-raw,format=RGBA,width=32,height=24 \
         ! appsink name=sink sync=false",
        model()
    );
    let mut frames = Vec::new();
    gst_run::pull_samples(&description, "sink", |sample| {
        frames.push(meta(&sample.buffer_owned().unwrap()).frame)
    });
    assert_eq!(frames, [0, 1, 2, 3]);
}

#[test]
fn a_missing_model_is_a_clear_error() {
    expect_error(
        "videotestsrc num-buffers=3 ! dreamsim name=d model-location=/nonexistent/model.onnx ! fakesink",
        "d",
        &["/nonexistent/model.onnx", "get_model.sh"],
    );
}

#[test]
fn a_model_that_breaks_the_contract_is_a_clear_error() {
    expect_error(
        &format!(
            "videotestsrc num-buffers=3 ! dreamsim name=d model-location={} ! fakesink",
            fixture("bad_input_name.onnx").display()
        ),
        "d",
        &["contract", "pixels", "export_onnx.py"],
    );
}

#[test]
fn a_corrupt_or_missing_reference_image_is_a_clear_error() {
    for reference in [fixture("corrupt.png"), "/nonexistent/ref.png".into()] {
        expect_error(
            &format!(
                "videotestsrc num-buffers=3 ! dreamsim name=d model-location={} reference-location={} ! fakesink",
                model(),
                reference.display()
            ),
            "d",
            &["reference image", &reference.display().to_string()],
        );
    }
}

#[test]
fn unsupported_caps_are_a_clear_error() {
    // As when decodebin exposes a format dreamsim does not take: the link is
    // made without a caps check and negotiation fails while running.
    init();
    let pipeline = gst::parse::launch(&format!(
        "videotestsrc num-buffers=3 ! video/x-raw,format=Y444 ! queue name=q \
         dreamsim name=d model-location={} ! fakesink",
        model()
    ))
    .unwrap()
    .downcast::<gst::Bin>()
    .unwrap();
    let q = pipeline.by_name("q").unwrap().static_pad("src").unwrap();
    let d = pipeline.by_name("d").unwrap().static_pad("sink").unwrap();
    q.link_full(&d, gst::PadLinkCheck::empty()).unwrap();
    let (_, error) = run(pipeline.upcast());
    let (src, message, _) = error.expect("an error");
    assert_eq!(src, "d", "{message}");
    assert!(
        message.contains("Y444") && message.contains("videoconvert"),
        "{message}"
    );
}

#[test]
fn an_explicit_gpu_provider_that_is_missing_is_a_clear_error() {
    let (_, error) = run_pipeline(&format!(
        "videotestsrc num-buffers=3 ! dreamsim name=d model-location={} execution-provider=cuda ! fakesink",
        model()
    ));
    // On a machine with a working CUDA provider this pipeline just runs.
    if let Some((src, message, _)) = error {
        assert_eq!(src, "d");
        assert!(
            message.contains("cuda") && message.contains("onnxruntime-gpu"),
            "{message}"
        );
    }
}

#[test]
fn bikes_cuts_are_the_largest_distances() {
    let media = repo_root().join(".cache/media/bikes.mp4");
    if !media.exists() {
        let status = std::process::Command::new(repo_root().join("tools/fetch_test_media.sh"))
            .status()
            .expect("run tools/fetch_test_media.sh");
        assert!(status.success(), "could not fetch bikes.mp4 (needs PyPI)");
    }
    let (messages, error) = run_pipeline(&format!(
        "filesrc location={} ! decodebin ! videoconvert ! dreamsim model-location={} ! fakesink",
        media.display(),
        model()
    ));
    assert_eq!(error, None);
    assert_eq!(messages.len(), 250, "every frame analysed");
    let mut by_distance: Vec<(f64, u64)> = messages
        .iter()
        .filter_map(|m| Some((m.distance?, m.frame)))
        .collect();
    by_distance.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut top: Vec<u64> = by_distance[..5].iter().map(|&(_, f)| f).collect();
    top.sort();
    assert_eq!(
        top,
        [30, 76, 137, 187, 242],
        "largest distances: {:?}",
        &by_distance[..8]
    );
}

fn run_sequence(extra: &str, frames: &[Vec<u8>]) -> Vec<gst::Buffer> {
    let mut h = harness(extra);
    h.set_src_caps_str("video/x-raw,format=RGB,width=48,height=32,framerate=25/1");
    for (i, f) in frames.iter().enumerate() {
        h.push(rgb_buffer(f.clone(), i as u64)).unwrap();
    }
    assert!(h.push_event(gst::event::Eos::new()));
    let out: Vec<gst::Buffer> = (0..frames.len()).map(|_| h.pull().unwrap()).collect();
    // EOS follows the last buffer, nothing else.
    loop {
        let ev = h.pull_event().unwrap();
        if ev.type_() == gst::EventType::Eos {
            break;
        }
    }
    assert!(h.try_pull().is_none());
    out
}

#[test]
fn batches_give_the_same_results_in_the_same_order() {
    let frames: Vec<Vec<u8>> = (0..12).map(|i| pattern_rgb(48, 32, i % 4, i, 0)).collect();
    let single = run_sequence("batch-size=1", &frames);
    // 12 frames in batches of 5: the last batch is partial and leaves at EOS.
    let batched = run_sequence("batch-size=5 max-latency=60000", &frames);
    for (i, (a, b)) in single.iter().zip(&batched).enumerate() {
        assert_eq!(
            b.pts(),
            Some(gst::ClockTime::from_mseconds(40 * i as u64)),
            "order"
        );
        assert_eq!(b.map_readable().unwrap().as_slice(), &frames[i][..]);
        let (ma, mb) = (meta(a), meta(b));
        assert_eq!(mb.frame, i as u64);
        assert!(
            max_abs_diff(&ma.embedding, &mb.embedding) <= 1e-6,
            "frame {i}"
        );
        match (ma.distance, mb.distance) {
            (None, None) => assert_eq!(i, 0),
            (Some(x), Some(y)) => assert!((x - y).abs() <= 1e-6, "frame {i}: {x} vs {y}"),
            other => panic!("frame {i}: {other:?}"),
        }
    }
}

#[test]
fn a_partial_batch_leaves_after_max_latency() {
    let mut h = harness("batch-size=8 max-latency=50");
    h.set_src_caps_str("video/x-raw,format=RGB,width=48,height=32,framerate=25/1");
    for i in 0..3 {
        h.push(rgb_buffer(pattern_rgb(48, 32, i, 0, 0), i)).unwrap();
    }
    // No EOS: the three frames must still come out, after about 50 ms.
    let frames: Vec<u64> = (0..3).map(|_| meta(&h.pull().unwrap()).frame).collect();
    assert_eq!(frames, [0, 1, 2]);
}

#[test]
fn batching_latency_is_reported() {
    init();
    let pipeline = gst::parse::launch(&format!(
        "videotestsrc is-live=true num-buffers=20 ! dreamsim name=d model-location={} \
         batch-size=4 max-latency=250 ! fakesink",
        model()
    ))
    .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let bus = pipeline.bus().unwrap();
    bus.timed_pop_filtered(
        gst::ClockTime::from_seconds(30),
        &[gst::MessageType::AsyncDone],
    )
    .expect("pipeline prerolled");
    let src = pipeline
        .downcast_ref::<gst::Bin>()
        .unwrap()
        .by_name("d")
        .unwrap()
        .static_pad("src")
        .unwrap();
    let mut q = gst::query::Latency::new();
    assert!(src.query(&mut q));
    let (live, min, _) = q.result();
    assert!(live);
    assert!(min >= gst::ClockTime::from_mseconds(250), "latency {min}");
    pipeline.set_state(gst::State::Null).unwrap();
}

#[test]
fn batches_fill_when_only_some_buffers_are_analysed() {
    // 12 buffers, one in 3 analysed: 4 analysed frames, two full batches of
    // 2. A queue that held fewer than batch-size x interval buffers would
    // leave each batch waiting for max-latency and run it partial.
    let mut h = harness("batch-size=2 interval=3 max-latency=20000");
    h.set_src_caps_str("video/x-raw,format=RGB,width=48,height=32,framerate=25/1");
    for i in 0..12 {
        h.push(rgb_buffer(pattern_rgb(48, 32, i % 4, i, 0), i))
            .unwrap();
    }
    let analysed: Vec<u64> = (0..12)
        .filter_map(|_| DreamSimMeta::from_buffer(&h.pull().unwrap()).map(|m| m.unwrap().frame))
        .collect();
    assert_eq!(analysed, [0, 3, 6, 9]);
    let stats = h
        .find_element("dreamsim")
        .unwrap()
        .property::<gst::Structure>("stats");
    assert_eq!(stats.get::<u64>("batches").unwrap(), 2);
}

// ---- the change test (change-threshold, max-reuse) ----

fn stats(h: &mut gst_check::Harness) -> gst::Structure {
    h.find_element("dreamsim")
        .unwrap()
        .property::<gst::Structure>("stats")
}

#[test]
fn the_change_test_reuses_unchanged_frames_and_says_so() {
    let mut h = harness("change-threshold=0.02 max-reuse=3");
    h.set_src_caps_str("video/x-raw,format=RGB,width=48,height=32,framerate=25/1");
    // Six frames of one picture (with a little noise in frames 1-5), then
    // four of a very different one.
    let a = pattern_rgb(48, 32, 1, 0, 0);
    let b = pattern_rgb(48, 32, 3, 7, 0);
    let mut frames: Vec<Vec<u8>> = Vec::new();
    for i in 0..6 {
        let mut f = a.clone();
        if i > 0 {
            f[i * 5] = f[i * 5].wrapping_add(3);
        }
        frames.push(f);
    }
    frames.extend(std::iter::repeat_n(b, 4));
    for (i, f) in frames.iter().enumerate() {
        h.push(rgb_buffer(f.clone(), i as u64)).unwrap();
    }
    let metas: Vec<DreamSimMeta> = (0..10).map(|_| meta(&h.pull().unwrap())).collect();
    let from: Vec<Option<u64>> = metas.iter().map(|m| m.reused_from).collect();
    // Frame 4 is analysed because max-reuse=3 frames in a row reused;
    // frame 6 because it changed.
    assert_eq!(
        from,
        [
            None,
            Some(0),
            Some(0),
            Some(0),
            None,
            Some(4),
            None,
            Some(6),
            Some(6),
            Some(6)
        ]
    );
    for m in &metas {
        if let Some(n) = m.reused_from {
            let source = &metas[n as usize];
            assert_eq!(m.embedding, source.embedding, "frame {}", m.frame);
            assert_eq!(m.distance, Some(0.0), "frame {}", m.frame);
            assert!(!m.analysed());
        }
    }
    // The first analysed frame after reused ones is compared with the last
    // analysed frame (whose embedding the reused ones carried).
    let d = dreamsim::distance(&metas[4].embedding, &metas[6].embedding).unwrap();
    assert!((metas[6].distance.unwrap() - d).abs() < 1e-6);
    let st = stats(&mut h);
    assert_eq!(st.get::<u64>("analysed-frames").unwrap(), 3);
    assert_eq!(st.get::<u64>("reused-frames").unwrap(), 7);
    // The model ran only on the analysed frames.
    assert_eq!(st.get::<u64>("frames").unwrap(), 3);
}

#[test]
fn without_a_threshold_every_frame_is_analysed() {
    let mut h = harness("");
    h.set_src_caps_str("video/x-raw,format=GRAY8,width=32,height=32,framerate=25/1");
    for i in 0..4 {
        h.push(rgb_buffer(vec![50; 32 * 32], i)).unwrap();
    }
    for _ in 0..4 {
        assert!(meta(&h.pull().unwrap()).analysed());
    }
    let st = stats(&mut h);
    assert_eq!(st.get::<u64>("analysed-frames").unwrap(), 4);
    assert_eq!(st.get::<u64>("reused-frames").unwrap(), 0);
}

#[test]
fn a_slow_fade_accumulates_against_the_last_analysed_frame() {
    // Each frame 1 grey level brighter: never 0.02 (5.1 levels) from the
    // previous frame, but every sixth frame is that far from the last
    // analysed one.
    let mut h = harness("change-threshold=0.02 max-reuse=0");
    h.set_src_caps_str("video/x-raw,format=GRAY8,width=32,height=32,framerate=25/1");
    for i in 0..13u64 {
        h.push(rgb_buffer(vec![100 + i as u8; 32 * 32], i)).unwrap();
    }
    let analysed: Vec<u64> = (0..13)
        .map(|_| meta(&h.pull().unwrap()))
        .filter(|m| m.analysed())
        .map(|m| m.frame)
        .collect();
    assert_eq!(analysed, [0, 6, 12]);
}

#[test]
fn the_change_test_applies_to_the_frames_interval_selects() {
    let mut h = harness("interval=2 change-threshold=0.02 max-reuse=0");
    h.set_src_caps_str("video/x-raw,format=GRAY8,width=32,height=32,framerate=25/1");
    for i in 0..7 {
        h.push(rgb_buffer(vec![80; 32 * 32], i)).unwrap();
    }
    let out: Vec<Option<DreamSimMeta>> = (0..7)
        .map(|_| DreamSimMeta::from_buffer(&h.pull().unwrap()).map(|m| m.unwrap()))
        .collect();
    for (i, m) in out.iter().enumerate() {
        match (i % 2, m) {
            (1, None) => {}
            (0, Some(m)) if i == 0 => assert!(m.analysed()),
            (0, Some(m)) => assert_eq!(m.reused_from, Some(0), "frame {i}"),
            other => panic!("frame {i}: {other:?}"),
        }
    }
}

#[test]
fn the_change_test_with_batches_keeps_order_and_results() {
    // Static stretches and changes, in batches of 3 (reused frames ride
    // along in a batch) and one by one: the same metas, in order.
    let mut frames = Vec::new();
    for i in 0..14u64 {
        frames.push(pattern_rgb(48, 32, i / 4, 0, 0));
    }
    let single = run_sequence("change-threshold=0.02", &frames);
    let batched = run_sequence(
        "change-threshold=0.02 batch-size=3 max-latency=60000",
        &frames,
    );
    for (i, (a, b)) in single.iter().zip(&batched).enumerate() {
        let (ma, mb) = (meta(a), meta(b));
        assert_eq!(mb.frame, i as u64);
        assert_eq!(ma.reused_from, mb.reused_from, "frame {i}");
        assert!(max_abs_diff(&ma.embedding, &mb.embedding) <= 1e-6);
    }
    let reused = single.iter().filter(|b| !meta(b).analysed()).count();
    assert_eq!(reused, 14 - 4, "one analysed frame per picture");
}

#[test]
fn messages_say_which_frames_reused_an_embedding() {
    let (messages, error) = run_pipeline(&format!(
        "videotestsrc pattern=solid-color num-buffers=8 ! dreamsim model-location={} \
         execution-provider=cpu change-threshold=0.02 max-reuse=0 ! fakesink",
        model()
    ));
    assert_eq!(error, None);
    assert_eq!(messages.len(), 8);
    assert_eq!(messages[0].reused_from, None);
    for m in &messages[1..] {
        assert_eq!(m.reused_from, Some(0));
        assert_eq!(m.distance, Some(0.0));
    }
}

// ---- max-queued-bytes ----

/// Pushes `n` 1280x720 RGBx frames (3.7 MB each) with EOS through a
/// dreamsim with `extra`; returns the frame numbers that came out and the
/// stats.
fn push_big_frames(extra: &str, n: u64) -> (Vec<u64>, gst::Structure) {
    let mut h = harness(extra);
    h.set_src_caps_str("video/x-raw,format=RGBx,width=1280,height=720,framerate=25/1");
    for i in 0..n {
        h.push(rgb_buffer(vec![(i * 40) as u8; 1280 * 720 * 4], i))
            .unwrap();
    }
    assert!(h.push_event(gst::event::Eos::new()));
    let frames = (0..n).map(|_| meta(&h.pull().unwrap()).frame).collect();
    (frames, stats(&mut h))
}

#[test]
fn a_large_batch_of_big_frames_stays_under_max_queued_bytes() {
    let frame_bytes = 1280 * 720 * 4u64;
    let bound = 16 * 1024 * 1024u64;
    // batch-size=256 would hold all 24 frames (88 MB) waiting for the batch
    // to fill; the bound makes the streaming thread wait and the batches
    // run with what they have. Nothing is dropped, the order is kept.
    let (frames, st) = push_big_frames(
        &format!("batch-size=256 max-latency=600000 max-queued-bytes={bound}"),
        24,
    );
    assert_eq!(frames, (0..24).collect::<Vec<_>>());
    let peak = st.get::<u64>("peak-queued-bytes").unwrap();
    assert!(peak <= bound, "held {peak} bytes, bound {bound}");
    assert!(peak >= frame_bytes, "held {peak} bytes");
    assert!(st.get::<u64>("batches").unwrap() > 1);

    // Without a bound that low the same stream holds far more.
    let (_, st) = push_big_frames("batch-size=256 max-latency=600000", 24);
    assert!(st.get::<u64>("peak-queued-bytes").unwrap() > bound);
}

#[test]
fn a_bound_below_one_frame_still_passes_every_frame() {
    let (frames, st) = push_big_frames("batch-size=8 max-queued-bytes=1", 5);
    assert_eq!(frames, [0, 1, 2, 3, 4]);
    assert_eq!(
        st.get::<u64>("peak-queued-bytes").unwrap(),
        1280 * 720 * 4,
        "one frame at a time"
    );
}

#[test]
fn max_queued_bytes_has_a_default_and_says_what_happens_at_the_bound() {
    init();
    let e = gst::ElementFactory::make("dreamsim").build().unwrap();
    assert_eq!(e.property::<u64>("max-queued-bytes"), 1 << 30);
    let pspec = e.find_property("max-queued-bytes").unwrap();
    let blurb = pspec.blurb().unwrap();
    assert!(
        blurb.contains("waits") && blurb.contains("never dropped"),
        "{blurb}"
    );
    assert_eq!(e.property::<f64>("change-threshold"), 0.0);
}
