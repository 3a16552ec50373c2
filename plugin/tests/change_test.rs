//! The change test (`dreamsim change-threshold`) leaves the decisions
//! alone: at the recommended threshold, `dreamsimscene`'s cuts,
//! `dreamsimdedup`'s kept frames and `dreamsimmatch`'s matches on the test
//! clips are those of the full analysis, while it reuses embeddings where
//! the picture holds still. Clips: bikes.mp4 (camera motion and cuts) and a
//! clip made here with a still shot with sensor noise, a held picture, a
//! fade to black, a slow pan and a small moving object.

use dreamsim_testsupport as common;
mod plugin_common;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use common::*;
use dreamsim::change::RECOMMENDED_THRESHOLD;
use dreamsim_index::{self as index, IndexOptions, ModelIdentity, NewEntry, Source};
use gst::prelude::*;
use gstdreamsim::meta::DreamSimMeta;
use gstdreamsim::SceneMessage;
use plugin_common::*;

const W: usize = 160;
const H: usize = 120;
/// dreamsimdedup's threshold in these runs (the fixture model's distances
/// between near duplicates are about 1e-3).
const DEDUP_THRESHOLD: f64 = 0.01;
/// dreamsimscene's fixed-mode threshold (plugin/tests/scene.rs uses it on bikes).
const SCENE_THRESHOLD: f64 = 0.06;

enum Clip {
    File(PathBuf),
    Frames(Vec<Vec<u8>>),
}

fn bikes() -> Clip {
    let media = repo_root().join(".cache/media/bikes.mp4");
    if !media.exists() {
        let status = std::process::Command::new(repo_root().join("tools/fetch_test_media.sh"))
            .status()
            .expect("run tools/fetch_test_media.sh");
        assert!(status.success(), "could not fetch bikes.mp4 (needs PyPI)");
    }
    Clip::File(media)
}

/// A textured picture: bands, a gradient and a checker, shifted by `dx`
/// (a window of a wider picture) and varied by `seed`.
fn picture(dx: usize, seed: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(W * H * 3);
    for y in 0..H {
        for x in 0..W {
            let x = x + dx;
            let band = (x / 20 + seed) % 3;
            out.extend([
                ((x * 3 + seed * 70) % 256) as u8,
                if band == 0 { 200 } else { (y * 2) as u8 },
                if (x / 10 + y / 10 + seed).is_multiple_of(2) {
                    220
                } else {
                    30
                },
            ]);
        }
    }
    out
}

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

/// 0-29 a still shot with +-2 of noise; 30-59 a cut to a held picture;
/// 60-99 it fades to black; 100-159 a cut to a slow pan (1 pixel a frame);
/// 160-189 a cut to a still shot with a 12x12 square crossing it.
fn made_clip() -> Clip {
    let a = picture(0, 1);
    let b = picture(0, 2);
    let mut frames = Vec::new();
    frames.extend((0..30).map(|i| noisy(&a, i, 2)));
    frames.extend(std::iter::repeat_n(b.clone(), 30));
    frames.extend((0..40).map(|i| {
        let k = 1.0 - i as f32 / 39.0;
        b.iter()
            .map(|&v| (f32::from(v) * k).round() as u8)
            .collect()
    }));
    frames.extend((0..60).map(|dx| picture(dx, 0)));
    let c = picture(37, 1);
    frames.extend((0..30).map(|i| {
        let mut f = c.clone();
        for y in 50..62 {
            for x in (i * 4)..(i * 4 + 12) {
                let p = (y * W + x) * 3;
                f[p..p + 3].copy_from_slice(&[255, 255, 0]);
            }
        }
        f
    }));
    Clip::Frames(frames)
}

/// What one run decided.
#[derive(Debug, Default)]
struct Outcome {
    embeddings: Vec<Vec<f32>>,
    reused: usize,
    adaptive_cuts: Vec<u64>,
    fixed_cuts: Vec<u64>,
    kept: Vec<u64>,
    /// Frames that matched, with the labels.
    matches: Vec<(u64, Vec<String>)>,
}

fn appsink(bin: &gst::Bin, name: &str, each: impl Fn(&DreamSimMeta) + Send + 'static) {
    gst_run::on_samples(&gst_run::appsink(bin, name), move |sample| {
        let meta = DreamSimMeta::from_buffer(sample.buffer().unwrap())
            .expect("meta")
            .expect("well formed");
        each(&meta);
    });
}

/// Runs `clip` through dreamsim with `threshold` (0: the full analysis)
/// and the three deciding elements; with `index`, dreamsimmatch too.
fn run(clip: &Clip, threshold: f64, index: Option<(&str, f64)>) -> Outcome {
    init();
    let source = match clip {
        Clip::File(path) => format!(
            "filesrc location={} ! decodebin ! videoconvert",
            path.display()
        ),
        Clip::Frames(_) => format!(
            "appsrc name=src format=time caps=video/x-raw,format=RGB,width={W},height={H},\
             framerate=25/1"
        ),
    };
    let matcher = match index {
        Some((location, t)) => format!(
            "t. ! queue ! dreamsimmatch index-location={location} threshold={t} \
             post-messages=false ! appsink name=matched sync=false"
        ),
        None => String::new(),
    };
    let pipeline = gst::parse::launch(&format!(
        "{source} ! dreamsim model-location={} execution-provider=cpu threads=1 \
         post-messages=false change-threshold={threshold} ! tee name=t \
         t. ! queue ! appsink name=all sync=false \
         t. ! queue ! dreamsimscene name=adaptive ! fakesink sync=false \
         t. ! queue ! dreamsimscene name=fixed mode=fixed threshold={SCENE_THRESHOLD} ! \
         fakesink sync=false \
         t. ! queue ! dreamsimdedup threshold={DEDUP_THRESHOLD} post-messages=false ! \
         appsink name=kept sync=false {matcher}",
        fixture("tiny_ensemble.onnx").display()
    ))
    .unwrap()
    .downcast::<gst::Bin>()
    .unwrap();
    let outcome = Arc::new(Mutex::new(Outcome::default()));
    {
        let o = outcome.clone();
        appsink(&pipeline, "all", move |m| {
            let mut o = o.lock().unwrap();
            o.embeddings.push(m.embedding.clone());
            o.reused += usize::from(!m.analysed());
        });
        let o = outcome.clone();
        appsink(&pipeline, "kept", move |m| {
            o.lock().unwrap().kept.push(m.frame)
        });
        if index.is_some() {
            let o = outcome.clone();
            appsink(&pipeline, "matched", move |m| {
                if !m.matches.is_empty() {
                    let labels = m.matches.iter().map(|x| x.label.clone()).collect();
                    o.lock().unwrap().matches.push((m.frame, labels));
                }
            });
        }
    }
    let bus = pipeline.bus().unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    if let Clip::Frames(frames) = clip {
        let src = pipeline
            .by_name("src")
            .unwrap()
            .downcast::<gst_app::AppSrc>()
            .unwrap();
        for (n, f) in frames.iter().enumerate() {
            let mut buffer = gst::Buffer::from_mut_slice(f.clone());
            let b = buffer.get_mut().unwrap();
            b.set_pts(ms(40 * n as u64));
            b.set_duration(ms(40));
            src.push_buffer(buffer).unwrap();
        }
        src.end_of_stream().unwrap();
    }
    gst_run::read_bus_ok(&bus, gst::ClockTime::from_seconds(300), "run", |msg| {
        if let Some(m) = SceneMessage::from_message(msg).transpose().unwrap() {
            let src = msg.src().unwrap().name().to_string();
            let mut o = outcome.lock().unwrap();
            match src.as_str() {
                "adaptive" => o.adaptive_cuts.push(m.frame),
                "fixed" => o.fixed_cuts.push(m.frame),
                other => panic!("scene message from {other}"),
            }
        }
    });
    pipeline.set_state(gst::State::Null).unwrap();
    let taken = std::mem::take(&mut *outcome.lock().unwrap());
    taken
}

/// An index of the full run's frames `picked` (labelled by frame number),
/// and a matcher threshold in the middle of the widest gap among the
/// frames' distances to their nearest entry (below the median): a frame
/// flips only when the change test moves its distance by half that gap.
fn index_of(name: &str, full: &Outcome, picked: &[usize]) -> (PathBuf, f64) {
    let dir = std::env::temp_dir().join(format!("dreamsim-change-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let location = dir.join("set.dsindex");
    let model = dreamsim::Model::load(
        dreamsim::runtime(None).unwrap(),
        &fixture("tiny_ensemble.onnx"),
        &dreamsim::ModelOptions {
            provider: dreamsim::ExecutionProvider::Cpu,
            threads: 1,
            ..Default::default()
        },
    )
    .unwrap();
    let identity = ModelIdentity::of_model(model.info()).unwrap();
    let options = IndexOptions {
        create: true,
        ..IndexOptions::default()
    };
    let mut set = index::open(location.to_str().unwrap(), Some(&identity), &options).unwrap();
    let entries: Vec<NewEntry> = picked
        .iter()
        .map(|&n| NewEntry {
            label: format!("frame {n}"),
            source: Source::Other {
                description: format!("frame {n} of the clip"),
            },
            content_hash: format!("frame-{n}"),
            embedding: &full.embeddings[n],
        })
        .collect();
    set.add(&entries).unwrap();
    let mut nearest: Vec<f64> = full
        .embeddings
        .iter()
        .map(|e| {
            picked
                .iter()
                .map(|&n| dreamsim::distance(e, &full.embeddings[n]).unwrap())
                .fold(f64::INFINITY, f64::min)
        })
        .collect();
    nearest.sort_by(f64::total_cmp);
    let half = &nearest[picked.len()..nearest.len() / 2];
    let (gap, at) = half
        .windows(2)
        .map(|w| (w[1] - w[0], (w[0] + w[1]) / 2.0))
        .fold((0.0, 0.0), |best, g| if g.0 > best.0 { g } else { best });
    assert!(gap > 0.0);
    (location, at)
}

fn same_decisions(name: &str, clip: &Clip, picked: &[usize]) -> (usize, usize) {
    let full = run(clip, 0.0, None);
    let (location, match_threshold) = index_of(name, &full, picked);
    let location = location.to_str().unwrap();
    let full = run(clip, 0.0, Some((location, match_threshold)));
    let fast = run(
        clip,
        RECOMMENDED_THRESHOLD,
        Some((location, match_threshold)),
    );
    assert_eq!(full.reused, 0);
    assert_eq!(fast.embeddings.len(), full.embeddings.len());
    assert_eq!(
        fast.adaptive_cuts, full.adaptive_cuts,
        "{name}: adaptive cuts"
    );
    assert_eq!(fast.fixed_cuts, full.fixed_cuts, "{name}: fixed cuts");
    assert_eq!(fast.kept, full.kept, "{name}: dedup's kept frames");
    assert!(!full.matches.is_empty(), "{name}: nothing matched");
    assert_eq!(fast.matches, full.matches, "{name}: matches");
    (fast.reused, fast.embeddings.len())
}

#[test]
fn bikes_decides_the_same_with_the_change_test() {
    let (reused, frames) = same_decisions("bikes", &bikes(), &[10, 100, 200]);
    assert_eq!(frames, 250);
    eprintln!("bikes: {reused} of {frames} frames reused");
}

#[test]
fn still_shots_fades_and_pans_decide_the_same_with_the_change_test() {
    let (reused, frames) = same_decisions("made", &made_clip(), &[10, 45, 130]);
    assert_eq!(frames, 190);
    // The still shot and the held picture (59 frames less their bound's
    // analyses) at least: the test is not vacuous.
    assert!(reused >= 50, "{reused} of {frames} frames reused");
    eprintln!("made clip: {reused} of {frames} frames reused");
}
