//! Picks the change test's measure and threshold by measurement: for each
//! candidate measure and threshold, how many frames it reuses and the
//! largest error that causes in the previous-frame and reference distances,
//! against analysing every frame.
//!
//! ```sh
//! cargo run --release -p gst-plugin-dreamsim --example change_test_study -- \
//!     [--model MODEL.onnx] [--max-frames N] [--max-reuse N] [--threads N] [CLIP...]
//! ```
//!
//! Clips: bikes.mp4 and bigbuckbunny.mp4 (`.cache/media`, tools/fetch_test_media.sh)
//! and four made here from bikes.mp4's frame 100 (640x272): `static` (150
//! frames of it with +-2 levels of noise, a camera on a still scene),
//! `fade` (100 frames fading it to black), `pan` (150 frames of a 480x240
//! window moving 1 pixel a frame) and `slides` (three frames held 40 frames
//! each). The reference image is tests/fixtures/reference.png. Every frame is
//! embedded once; the change test is simulated on the frames' thumbnails
//! exactly as the `dreamsim` element runs it (compared with the last
//! analysed frame, at most `--max-reuse` reused in a row).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use dreamsim::change::{ChangeMeasure, ChangeTest, Decision, Thumbnail};
use dreamsim::{Embedding, Engine, ExecutionProvider, Frame, Model, ModelOptions};
use gst::prelude::*;

#[derive(Parser)]
#[command(about = "Reuse share and distance errors of the change test's candidate measures")]
struct Options {
    /// DreamSim ONNX model.
    #[arg(long, default_value = "tests/fixtures/tiny_ensemble.onnx")]
    model: PathBuf,
    /// Frames read from each video file, at most.
    #[arg(long, default_value_t = 600)]
    max_frames: usize,
    /// The bound on reused frames in a row (the element's max-reuse).
    #[arg(long, default_value_t = 25)]
    max_reuse: u32,
    /// ONNX Runtime threads.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Video files to study instead of the built-in clips (bikes.mp4,
    /// bigbuckbunny.mp4 and the clips made from bikes.mp4), each decoded up
    /// to --max-frames: short clips keep a large model's run short.
    clips: Vec<PathBuf>,
}

/// RGB frames of one clip.
struct Clip {
    name: String,
    frames: Vec<(Vec<u8>, usize, usize)>,
}

fn decode(path: &Path, max_frames: usize) -> Result<Vec<(Vec<u8>, usize, usize)>, String> {
    let pipeline = gst::parse::launch(&format!(
        "filesrc location=\"{}\" ! decodebin ! videoconvert ! video/x-raw,format=RGB ! \
         appsink name=sink sync=false",
        path.display()
    ))
    .map_err(|e| e.to_string())?
    .downcast::<gst::Pipeline>()
    .map_err(|_| "not a pipeline")?;
    let sink = pipeline
        .by_name("sink")
        .and_then(|s| s.downcast::<gst_app::AppSink>().ok())
        .ok_or("no appsink")?;
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| e.to_string())?;
    let mut frames = Vec::new();
    while frames.len() < max_frames {
        let Ok(sample) = sink.pull_sample() else {
            break;
        };
        let info = gst_video::VideoInfo::from_caps(sample.caps().ok_or("no caps")?)
            .map_err(|e| e.to_string())?;
        let (w, h) = (info.width() as usize, info.height() as usize);
        let stride = info.stride()[0] as usize;
        let map = sample
            .buffer()
            .ok_or("no buffer")?
            .map_readable()
            .map_err(|e| e.to_string())?;
        let mut rgb = Vec::with_capacity(w * h * 3);
        for y in 0..h {
            rgb.extend_from_slice(&map[y * stride..y * stride + w * 3]);
        }
        frames.push((rgb, w, h));
    }
    let _ = pipeline.set_state(gst::State::Null);
    if frames.is_empty() {
        return Err(format!("no frames decoded from {}", path.display()));
    }
    Ok(frames)
}

/// A small deterministic noise source (xorshift), for the static clip.
fn noise(state: &mut u32) -> i32 {
    *state ^= *state << 13;
    *state ^= *state >> 17;
    *state ^= *state << 5;
    (*state % 5) as i32 - 2
}

fn made_clips(base: &(Vec<u8>, usize, usize), others: [&(Vec<u8>, usize, usize); 2]) -> Vec<Clip> {
    let (rgb, w, h) = base;
    let (w, h) = (*w, *h);
    let mut seed = 0x1234_5678u32;
    let still = (0..150)
        .map(|_| {
            let f = rgb
                .iter()
                .map(|&v| (i32::from(v) + noise(&mut seed)).clamp(0, 255) as u8)
                .collect();
            (f, w, h)
        })
        .collect();
    let fade = (0..100)
        .map(|i| {
            let k = 1.0 - i as f32 / 99.0;
            (
                rgb.iter()
                    .map(|&v| (f32::from(v) * k).round() as u8)
                    .collect(),
                w,
                h,
            )
        })
        .collect();
    let (pw, ph) = (480.min(w - 150), 240.min(h));
    let pan = (0..150)
        .map(|x0| {
            let mut f = Vec::with_capacity(pw * ph * 3);
            for y in 0..ph {
                let row = &rgb[(y * w + x0) * 3..(y * w + x0 + pw) * 3];
                f.extend_from_slice(row);
            }
            (f, pw, ph)
        })
        .collect();
    let slides = [base, others[0], others[1]]
        .iter()
        .flat_map(|f| std::iter::repeat_n((*f).clone(), 40))
        .collect();
    vec![
        Clip {
            name: "static".into(),
            frames: still,
        },
        Clip {
            name: "fade".into(),
            frames: fade,
        },
        Clip {
            name: "pan".into(),
            frames: pan,
        },
        Clip {
            name: "slides".into(),
            frames: slides,
        },
    ]
}

/// What the study needs of a clip: each frame's thumbnail and embedding.
struct Analysed {
    name: String,
    thumbnails: Vec<Thumbnail>,
    embeddings: Vec<Embedding>,
}

/// Reuse share and largest errors of one measure and threshold on a clip.
struct Outcome {
    reused: usize,
    frames: usize,
    max_previous_error: f64,
    max_reference_error: f64,
}

fn simulate(
    clip: &Analysed,
    reference: &Embedding,
    measure: ChangeMeasure,
    threshold: f64,
    max_reuse: u32,
) -> Outcome {
    let e = &clip.embeddings;
    let d = |a: &Embedding, b: &Embedding| a.distance(b).expect("same model");
    let mut test = ChangeTest::new(measure, threshold, max_reuse);
    let mut last_analysed: Option<usize> = None;
    let mut out = Outcome {
        reused: 0,
        frames: e.len(),
        max_previous_error: 0.0,
        max_reference_error: 0.0,
    };
    for (i, t) in clip.thumbnails.iter().enumerate() {
        // What the element writes, and what analysing every frame writes.
        let (previous, used) = match test.decide(t.clone()) {
            Decision::Reuse { .. } => {
                out.reused += 1;
                let a = last_analysed.expect("reuse follows an analysed frame");
                (Some(0.0), a)
            }
            Decision::Analyse { .. } => {
                let p = last_analysed.map(|a| d(&e[a], &e[i]));
                last_analysed = Some(i);
                (p, i)
            }
        };
        if i > 0 {
            let full = d(&e[i - 1], &e[i]);
            let err = (previous.expect("not the first frame") - full).abs();
            out.max_previous_error = out.max_previous_error.max(err);
        }
        let err = (d(reference, &e[used]) - d(reference, &e[i])).abs();
        out.max_reference_error = out.max_reference_error.max(err);
    }
    out
}

fn run(options: &Options) -> Result<(), String> {
    gst::init().map_err(|e| e.to_string())?;
    let clips = if options.clips.is_empty() {
        let media = Path::new(".cache/media");
        let bikes = decode(&media.join("bikes.mp4"), options.max_frames)?;
        let bunny = decode(&media.join("bigbuckbunny.mp4"), options.max_frames)?;
        let mut clips = vec![
            Clip {
                name: "bikes".into(),
                frames: bikes.clone(),
            },
            Clip {
                name: "bigbuckbunny".into(),
                frames: bunny,
            },
        ];
        clips.extend(made_clips(&bikes[100], [&bikes[50], &bikes[200]]));
        clips
    } else {
        let mut clips = Vec::new();
        for path in &options.clips {
            clips.push(Clip {
                name: path
                    .file_stem()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| path.display().to_string()),
                frames: decode(path, options.max_frames)?,
            });
        }
        clips
    };

    let rt = dreamsim::runtime(None).map_err(|e| e.to_string())?;
    let model = Model::load(
        rt,
        &options.model,
        &ModelOptions {
            provider: ExecutionProvider::Cpu,
            threads: options.threads,
            ..ModelOptions::default()
        },
    )
    .map_err(|e| e.to_string())?;
    let mut engine = Engine::new(model);
    let reference = engine
        .embed_image_file(Path::new("tests/fixtures/reference.png"))
        .map_err(|e| e.to_string())?;

    let mut analysed = Vec::new();
    let mut thumb_time = std::time::Duration::ZERO;
    let mut thumb_count = 0u32;
    for clip in &clips {
        let mut thumbnails = Vec::new();
        let mut embeddings = Vec::new();
        for (rgb, w, h) in &clip.frames {
            let frame = Frame::rgb(rgb, *w, *h, w * 3).map_err(|e| e.to_string())?;
            let started = Instant::now();
            thumbnails.push(Thumbnail::of(&frame));
            thumb_time += started.elapsed();
            thumb_count += 1;
            embeddings.push(engine.embed_frame(&frame).map_err(|e| e.to_string())?);
        }
        analysed.push(Analysed {
            name: clip.name.clone(),
            thumbnails,
            embeddings,
        });
    }

    // The corpus jobs' scene starts without the model (docs/corpus.md).
    for clip in &analysed {
        let mut cuts = dreamsim::change::CutDetector::default();
        let starts: Vec<usize> = clip
            .thumbnails
            .iter()
            .enumerate()
            .filter(|(_, t)| cuts.push((*t).clone()))
            .map(|(i, _)| i)
            .collect();
        let consecutive: Vec<f64> = clip
            .thumbnails
            .windows(2)
            .map(|w| ChangeMeasure::ColourMad.between(&w[0], &w[1]))
            .collect();
        let mut top: Vec<(usize, f64)> = consecutive
            .iter()
            .copied()
            .enumerate()
            .map(|(i, c)| (i + 1, c))
            .collect();
        top.sort_by(|a, b| b.1.total_cmp(&a.1));
        top.truncate(8);
        println!(
            "cut detector on {}: scene starts {starts:?}; largest consecutive colour-mad {top:.3?}",
            clip.name
        );
    }
    println!(
        "frames: {}",
        analysed
            .iter()
            .map(|c| format!("{} {}", c.name, c.embeddings.len()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "thumbnail: {:.1} us per frame (mean over {thumb_count} frames)",
        thumb_time.as_secs_f64() * 1e6 / f64::from(thumb_count)
    );
    println!(
        "max-reuse {}; reused share per clip, largest errors over all clips\n",
        options.max_reuse
    );
    let mut header = "| measure | threshold |".to_string();
    for c in &analysed {
        header.push_str(&format!(" {} |", c.name));
    }
    header.push_str(" max error, previous | max error, reference |");
    println!("{header}");
    println!("|{}", "---|".repeat(analysed.len() + 4));
    for measure in ChangeMeasure::ALL {
        for threshold in [0.005, 0.01, 0.02, 0.04] {
            let mut row = format!("| {} | {threshold} |", measure.name());
            let (mut prev, mut refe) = (0.0f64, 0.0f64);
            for clip in &analysed {
                let o = simulate(clip, &reference, measure, threshold, options.max_reuse);
                row.push_str(&format!(
                    " {:.0} % |",
                    100.0 * o.reused as f64 / o.frames as f64
                ));
                prev = prev.max(o.max_previous_error);
                refe = refe.max(o.max_reference_error);
            }
            row.push_str(&format!(" {prev:.4} | {refe:.4} |"));
            println!("{row}");
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let options = Options::parse();
    match run(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("change_test_study: {e}");
            ExitCode::FAILURE
        }
    }
}
