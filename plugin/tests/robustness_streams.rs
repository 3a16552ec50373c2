//! Robustness catalogue, streams: seeks (flushing, rapid, non-flushing, past
//! the end, rate 2) on real media, state cycling with a bound on resident
//! memory, several elements and pipelines in one process, and the settings
//! that would starve the machine (threads, batch-size).

use dreamsim_testsupport as common;
mod plugin_common;

use std::path::PathBuf;

use common::*;
use gst::prelude::*;
use gstdreamsim::meta::DreamSimMeta;
use plugin_common::*;

fn model() -> String {
    fixture("tiny_ensemble.onnx").display().to_string()
}

fn bikes() -> PathBuf {
    let media = repo_root().join(".cache/media/bikes.mp4");
    if !media.exists() {
        let status = std::process::Command::new(repo_root().join("tools/fetch_test_media.sh"))
            .status()
            .expect("run tools/fetch_test_media.sh");
        assert!(status.success(), "could not fetch bikes.mp4 (needs PyPI)");
    }
    media
}

/// Resident set size of this process, in bytes.
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

/// bikes.mp4 through dreamsim into an appsink, prerolled (PAUSED).
struct Player {
    pipeline: gst::Pipeline,
    sink: gst_app::AppSink,
}

impl Player {
    fn new() -> Self {
        init();
        let pipeline = gst::parse::launch(&format!(
            "filesrc location={} ! decodebin ! videoconvert ! videoscale ! \
             video/x-raw,width=160,height=68 ! dreamsim name=d model-location={} \
             execution-provider=cpu threads=1 post-messages=false ! appsink name=sink sync=false",
            bikes().display(),
            model()
        ))
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
        let sink = gst_run::appsink(&pipeline, "sink");
        pipeline.set_state(gst::State::Paused).unwrap();
        let (res, _, _) = pipeline.state(gst::ClockTime::from_seconds(30));
        res.expect("preroll");
        Self { pipeline, sink }
    }

    fn seek(&self, rate: f64, flags: gst::SeekFlags, start: gst::ClockTime) -> bool {
        self.pipeline
            .seek(
                rate,
                flags,
                gst::SeekType::Set,
                start,
                gst::SeekType::None,
                gst::ClockTime::NONE,
            )
            .is_ok()
    }

    /// The next buffer's meta (every buffer must have one), or None at EOS.
    fn next(&self) -> Option<DreamSimMeta> {
        let sample = self
            .sink
            .try_pull_sample(gst::ClockTime::from_seconds(30))?;
        let buffer = sample.buffer().unwrap();
        let meta = DreamSimMeta::from_buffer(buffer)
            .unwrap_or_else(|| panic!("buffer at {:?} without meta", buffer.pts()))
            .unwrap();
        assert!(meta.distance.is_none_or(f64::is_finite));
        Some(meta)
    }

    fn no_error(&self) {
        let bus = self.pipeline.bus().unwrap();
        if let Some(msg) = bus.pop_filtered(&[gst::MessageType::Error]) {
            panic!("{msg:?}");
        }
    }
}

impl Drop for Player {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

#[test]
fn flushing_and_rapid_seeks_keep_every_frame_analysed() {
    let p = Player::new();
    p.pipeline.set_state(gst::State::Playing).unwrap();
    for _ in 0..5 {
        p.next().expect("a frame before the seeks");
    }
    // Rapid flushing seeks, one frame pulled after each: the frame after a
    // flush has no distance (dreamsim forgets the frame before it).
    let flags = gst::SeekFlags::FLUSH | gst::SeekFlags::KEY_UNIT;
    for i in 0..20u64 {
        assert!(p.seek(1.0, flags, gst::ClockTime::from_mseconds((i * 997) % 9000)));
        if i % 4 == 3 {
            let m = p.next().expect("a frame after the seek");
            assert_eq!(m.distance, None, "first frame after flushing seek {i}");
        }
    }
    // Then a last seek, and everything to the end.
    assert!(p.seek(
        1.0,
        gst::SeekFlags::FLUSH | gst::SeekFlags::ACCURATE,
        gst::ClockTime::from_seconds(8)
    ));
    let first = p.next().unwrap();
    assert_eq!(first.distance, None);
    let mut rest = 0;
    while let Some(m) = p.next() {
        assert!(m.distance.is_some());
        rest += 1;
    }
    // 8 s to 10 s at 25 fps: 50 frames, the first pulled above.
    assert_eq!(rest + 1, 50);
    p.no_error();
}

#[test]
fn a_non_flushing_seek_keeps_the_stream_going() {
    let p = Player::new();
    p.pipeline.set_state(gst::State::Playing).unwrap();
    for _ in 0..10 {
        p.next().unwrap();
    }
    // Demuxers may refuse a non-flushing seek while playing; whatever they
    // do, the stream goes on to EOS with meta on every frame.
    let accepted = p.seek(
        1.0,
        gst::SeekFlags::empty(),
        gst::ClockTime::from_seconds(9),
    );
    let mut after = 0;
    while p.next().is_some() {
        after += 1;
    }
    assert!(after > 0, "accepted={accepted}");
    p.no_error();
}

#[test]
fn a_seek_past_the_end_is_eos_without_error() {
    let p = Player::new();
    assert!(p.seek(1.0, gst::SeekFlags::FLUSH, gst::ClockTime::from_seconds(60)));
    p.pipeline.set_state(gst::State::Playing).unwrap();
    let mut frames = 0;
    while p.next().is_some() {
        frames += 1;
    }
    // qtdemux may still show the last keyframe; never more than a few.
    assert!(frames <= 1, "{frames} frames after a seek past the end");
    assert!(p.sink.is_eos());
    p.no_error();
}

#[test]
fn rate_2_analyses_every_frame() {
    let p = Player::new();
    assert!(p.seek(
        2.0,
        gst::SeekFlags::FLUSH | gst::SeekFlags::ACCURATE,
        gst::ClockTime::ZERO
    ));
    p.pipeline.set_state(gst::State::Playing).unwrap();
    let mut frames = Vec::new();
    while let Some(m) = p.next() {
        frames.push(m.frame);
    }
    assert_eq!(frames.len(), 250);
    assert!(frames.windows(2).all(|w| w[1] == w[0] + 1));
    p.no_error();
}

/// Start/stop cycles reload the model each time: memory must stay flat.
#[test]
fn state_cycles_keep_resident_memory_flat() {
    init();
    let pipeline = gst::parse::launch(&format!(
        "videotestsrc num-buffers=2 ! video/x-raw,width=64,height=48 ! dreamsim \
         model-location={} execution-provider=cpu threads=1 ! fakesink",
        model()
    ))
    .unwrap();
    let bus = pipeline.bus().unwrap();
    let cycle = |to: gst::State| {
        pipeline.set_state(to).unwrap();
        if to == gst::State::Playing {
            bus.timed_pop_filtered(
                gst::ClockTime::from_seconds(30),
                &[gst::MessageType::Eos, gst::MessageType::Error],
            )
            .filter(|m| m.type_() == gst::MessageType::Eos)
            .expect("EOS");
        }
        pipeline.set_state(gst::State::Null).unwrap();
    };
    for _ in 0..20 {
        cycle(gst::State::Playing);
    }
    let warm = rss();
    for i in 0..150 {
        // Through PAUSED and READY too.
        cycle([gst::State::Playing, gst::State::Paused, gst::State::Ready][i % 3]);
    }
    let grown = rss().saturating_sub(warm);
    eprintln!(
        "RSS after 20 cycles {} MiB, after 150 more {} MiB",
        warm >> 20,
        (warm + grown) >> 20
    );
    assert!(grown < 32 << 20, "RSS grew by {} MiB", grown >> 20);
}

/// Four pipelines at once, each with a tee and two dreamsim elements and
/// the downstream elements: every one sees every frame.
#[test]
fn several_elements_and_pipelines_in_one_process() {
    init();
    let threads: Vec<_> = (0..4)
        .map(|i| {
            let launch = format!(
                "videotestsrc num-buffers=20 pattern={i} ! video/x-raw,width=48,height=32 ! tee name=t \
                 t. ! queue ! dreamsim name=a{i} model-location={m} threads=1 execution-provider=cpu \
                 ! dreamsimscene ! fakesink \
                 t. ! queue ! dreamsim name=b{i} model-location={m} threads=1 execution-provider=cpu \
                 interval=2 ! dreamsimdedup ! fakesink",
                m = model()
            );
            std::thread::spawn(move || run_launch(&launch))
        })
        .collect();
    for (i, t) in threads.into_iter().enumerate() {
        let out = t.join().unwrap();
        assert!(out.error.is_none(), "pipeline {i}: {:?}", out.error);
        // 20 frames analysed by a{i}, 10 by b{i} (interval=2).
        assert_eq!(out.messages.len(), 30, "pipeline {i}");
    }
}

/// The fault: threads=1000 ran 20 tiny frames in 115 s without a
/// word. Now it is brought down to the logical CPUs, with a warning on the
/// bus (and in the log) that gives both values. No timing is asserted.
#[test]
fn threads_beyond_the_machine_are_clamped_with_a_warning() {
    let cpus = std::thread::available_parallelism().unwrap().get();
    let out = run_launch(&format!(
        "videotestsrc num-buffers=5 ! video/x-raw,width=64,height=48 ! dreamsim name=d \
         model-location={} execution-provider=cpu threads=1000 ! fakesink",
        model()
    ));
    assert!(out.error.is_none(), "{:?}", out.error);
    assert_eq!(out.messages.len(), 5);
    let expected =
        format!("threads=1000 is more than the logical CPUs of this machine: using threads={cpus}");
    assert!(
        out.warnings.iter().any(|w| w.contains(&expected)),
        "{:?}",
        out.warnings
    );
    // Within the machine: no warning.
    let out = run_launch(&format!(
        "videotestsrc num-buffers=2 ! dreamsim model-location={} execution-provider=cpu threads=1 \
         ! fakesink",
        model()
    ));
    assert!(
        out.warnings.iter().all(|w| !w.contains("threads=")),
        "{:?}",
        out.warnings
    );
}

/// batch-size has a documented maximum in its ParamSpec: GLib refuses a
/// larger value (with a warning naming the property) and keeps the old one.
#[test]
fn batch_sizes_in_the_thousands_are_refused() {
    init();
    // As gst-launch-1.0 sets it.
    let d = gst::parse::launch("dreamsim batch-size=5000").unwrap();
    let spec = d
        .find_property("batch-size")
        .unwrap()
        .downcast::<gst::glib::ParamSpecUInt>()
        .unwrap();
    assert_eq!(spec.maximum() as usize, dreamsim::limits::MAX_BATCH_SIZE);
    assert_eq!(d.property::<u32>("batch-size"), 1, "the default stays");
    let d = gst::parse::launch("dreamsim batch-size=256").unwrap();
    assert_eq!(d.property::<u32>("batch-size"), 256);
    // The engine clamps what API users ask for.
    let model = dreamsim::Model::load(
        dreamsim::runtime(None).unwrap(),
        &fixture("tiny_ensemble.onnx"),
        &dreamsim::ModelOptions {
            provider: dreamsim::ExecutionProvider::Cpu,
            threads: 1,
            max_batch: 5000,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(
        model.warnings(),
        ["batch-size=5000 is more than the engine's maximum batch (256): using batch-size=256"]
    );
}
