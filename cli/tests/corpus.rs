//! `gst-dreamsim corpus add` / `corpus match` on a library the tests make
//! themselves with GStreamer: bikes.mp4 (250 frames at 25 fps, scenes at
//! frames 0, 30, 76, 137, 187, 242), copies of it re-encoded, rescaled and
//! trimmed, and videotestsrc patterns.
//!
//! The fixture model (tests/fixtures/tiny_ensemble.onnx) has random
//! weights: it tells identical content (up to resampling and compression)
//! from different content, nothing more. Copies come out within about
//! 0.001 of each other, while unrelated frames can come within 0.1 (the
//! default frame distance, meant for the real model), so these tests match
//! at `--frame-distance 0.02`.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::*;
use dreamsim_testsupport::gst_run;
use gst::prelude::*;

const MODEL: &str = "tests/fixtures/tiny_ensemble.onnx";
const FRAME_DISTANCE: &str = "0.02";
const W: u32 = 320;
const H: u32 = 180;

fn bikes() -> PathBuf {
    let p = repo_root().join(".cache/media/bikes.mp4");
    assert!(
        p.exists(),
        "{} is missing: run tools/fetch_test_media.sh (.ci/run does)",
        p.display()
    );
    p
}

/// Decoded RGB frames of a pipeline description ending in
/// `appsink name=sink`.
fn raw_frames(description: &str) -> Vec<Vec<u8>> {
    gst::init().unwrap();
    let mut frames = Vec::new();
    gst_run::pull_samples(description, "sink", |s| {
        frames.push(s.buffer().unwrap().map_readable().unwrap().to_vec())
    });
    frames
}

const RAW: &str = "videoconvert ! videoscale ! video/x-raw,format=RGB,width=320,height=180";

fn bikes_frames() -> Vec<Vec<u8>> {
    raw_frames(&format!(
        "filesrc location={} ! decodebin ! {RAW} ! appsink name=sink sync=false",
        bikes().display()
    ))
}

fn pattern_frames(pattern: &str, n: usize) -> Vec<Vec<u8>> {
    raw_frames(&format!(
        "videotestsrc pattern={pattern} num-buffers={n} ! video/x-raw,framerate=25/1 ! {RAW} \
         ! appsink name=sink sync=false"
    ))
}

/// Encodes RGB frames at 25 fps with `encoder` (a description ending in a
/// muxer) into `path`, scaled to `width`x`height`.
fn encode(path: &Path, frames: &[Vec<u8>], width: u32, height: u32, encoder: &str) {
    gst::init().unwrap();
    let pipeline = gst::parse::launch(&format!(
        "appsrc name=src format=time caps=video/x-raw,format=RGB,width={W},height={H},framerate=25/1 \
         ! videoconvert ! videoscale ! video/x-raw,width={width},height={height} ! {encoder} \
         ! filesink location={}",
        path.display()
    ))
    .unwrap()
    .downcast::<gst::Bin>()
    .unwrap();
    let src = pipeline
        .by_name("src")
        .unwrap()
        .downcast::<gst_app::AppSrc>()
        .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    for (n, f) in frames.iter().enumerate() {
        let mut buffer = gst::Buffer::from_mut_slice(f.clone());
        let b = buffer.get_mut().unwrap();
        b.set_pts(gst::ClockTime::from_mseconds(40 * n as u64));
        b.set_duration(gst::ClockTime::from_mseconds(40));
        src.push_buffer(buffer).unwrap();
    }
    src.end_of_stream().unwrap();
    let bus = pipeline.bus().unwrap();
    let context = format!("writing {}", path.display());
    gst_run::read_bus_ok(&bus, gst::ClockTime::from_seconds(120), &context, |_| {});
    pipeline.set_state(gst::State::Null).unwrap();
}

const VP8_HIGH: &str = "vp8enc deadline=1 target-bitrate=2000000 ! webmmux";
const VP8_LOW: &str = "vp8enc deadline=1 target-bitrate=250000 ! webmmux";

/// The library, made once per test run.
struct Library {
    dir: PathBuf,
}

impl Library {
    fn path(&self, name: &str) -> String {
        self.dir.join(name).to_string_lossy().into_owned()
    }
}

fn library() -> &'static Library {
    static LIB: OnceLock<Library> = OnceLock::new();
    LIB.get_or_init(|| {
        // Under target/tmp; the libraries of earlier runs are removed.
        let root = Path::new(env!("CARGO_TARGET_TMPDIR"));
        if let Ok(entries) = std::fs::read_dir(root) {
            for e in entries.flatten() {
                if e.file_name()
                    .to_string_lossy()
                    .starts_with("corpus-library-")
                {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        let dir = root.join(format!("corpus-library-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let b = bikes_frames();
        assert_eq!(b.len(), 250, "bikes.mp4 decodes to 250 frames");
        // The same frames, re-encoded at a high bitrate (an identical copy
        // up to compression).
        encode(&dir.join("copy.webm"), &b, W, H, VP8_HIGH);
        // Rescaled and re-encoded at another, low bitrate.
        encode(&dir.join("small.webm"), &b, 192, 108, VP8_LOW);
        // Frames 76..187: scenes 3 and 4, from 3.04 s to 7.48 s.
        encode(&dir.join("clip.webm"), &b[76..187], W, H, VP8_HIGH);
        // Two videos sharing scene 3 (frames 76..137, 2.44 s): at the start
        // of one, after 3 s of a test pattern in the other.
        let mut one = b[76..137].to_vec();
        one.extend(pattern_frames("smpte", 100));
        encode(&dir.join("shared_a.webm"), &one, W, H, VP8_HIGH);
        let mut two = pattern_frames("ball", 75);
        two.extend_from_slice(&b[76..137]);
        encode(&dir.join("shared_b.webm"), &two, W, H, VP8_HIGH);
        // Unrelated.
        encode(
            &dir.join("ball.webm"),
            &pattern_frames("ball", 150),
            W,
            H,
            VP8_HIGH,
        );
        encode(
            &dir.join("pinwheel.webm"),
            &pattern_frames("pinwheel", 150),
            W,
            H,
            VP8_HIGH,
        );
        Library { dir }
    })
}

fn model_args() -> Vec<&'static str> {
    vec!["--model", MODEL, "--provider", "cpu", "--threads", "1"]
}

fn corpus_add(index: &str, videos: &[String]) -> Output {
    let mut a = vec!["corpus", "add", "--index", index];
    a.extend(model_args());
    a.extend(videos.iter().map(String::as_str));
    run(&a)
}

/// `corpus match --json` with the fixture's frame distance; returns the pairs.
fn corpus_match(index: &str, videos: &[String], extra: &[&str]) -> Vec<serde_json::Value> {
    let mut a = vec!["corpus", "match", "--index", index, "--json"];
    if !extra.contains(&"--frame-distance") {
        a.extend(["--frame-distance", FRAME_DISTANCE]);
    }
    a.extend(model_args());
    a.extend(extra);
    a.extend(videos.iter().map(String::as_str));
    let out = run(&a);
    assert!(out.status.success());
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    eprintln!("{}", serde_json::to_string_pretty(&doc["pairs"]).unwrap());
    doc["pairs"].as_array().unwrap().clone()
}

fn name(v: &serde_json::Value) -> String {
    Path::new(v.as_str().unwrap())
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// The pair between the videos named `a` and `b`, either way round.
fn pair<'a>(pairs: &'a [serde_json::Value], a: &str, b: &str) -> Option<&'a serde_json::Value> {
    pairs.iter().find(|p| {
        let (q, c) = (name(&p["query"]), name(&p["candidate"]));
        (q == a && c == b) || (q == b && c == a)
    })
}

fn f(v: &serde_json::Value) -> f64 {
    v.as_f64().unwrap()
}

fn scratch(test: &str) -> PathBuf {
    let d = library().dir.join(test);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// bikes.mp4 and the library's videos that the pairing tests expect in the
/// index (not the copies some tests check against it).
fn library_videos() -> Vec<String> {
    let lib = library();
    std::iter::once(bikes().to_string_lossy().into_owned())
        .chain(
            [
                "small.webm",
                "clip.webm",
                "shared_a.webm",
                "shared_b.webm",
                "ball.webm",
                "pinwheel.webm",
            ]
            .iter()
            .map(|n| lib.path(n)),
        )
        .collect()
}

/// The library's index, built once.
fn library_index() -> &'static str {
    static INDEX: OnceLock<String> = OnceLock::new();
    INDEX.get_or_init(|| {
        let index = scratch("library").join("lib.dsindex");
        let index = index.to_string_lossy().into_owned();
        let out = corpus_add(&index, &library_videos());
        assert!(out.status.success());
        index
    })
}

#[test]
fn copies_subclips_and_shared_scenes_are_found_unrelated_videos_are_not() {
    let index = library_index();
    let pairs = corpus_match(index, &[], &["--all", "--query-share", "0"]);

    // Rescaled to 60 % and re-encoded at 250 kbit/s: a match (the fixture
    // puts 13 of the 15 samples within 0.02 of the original's).
    let small = pair(&pairs, "bikes.mp4", "small.webm").expect("bikes ~ small");
    assert!(f(&small["query_share"]) >= 80.0, "{small}");
    assert!(f(&small["candidate_share"]) >= 80.0, "{small}");
    assert_eq!(small["match"], true);
    let segs = small["segments"].as_array().unwrap();
    assert_eq!(segs.len(), 1, "{segs:?}");
    assert!(f(&segs[0]["offset_s"]).abs() < 0.05);

    // The clip (frames 76..187) lies wholly in bikes, 3.04 s in; bikes only
    // partly in the clip. The clip is the query (the larger share).
    let clip = pair(&pairs, "bikes.mp4", "clip.webm").expect("bikes ~ clip");
    assert_eq!(name(&clip["query"]), "clip.webm");
    assert!(f(&clip["query_share"]) >= 99.0, "{clip}");
    let bikes_share = f(&clip["candidate_share"]);
    assert!((20.0..70.0).contains(&bikes_share), "{clip}");
    assert_eq!(clip["match"], true);
    let segs = clip["segments"].as_array().unwrap();
    assert_eq!(segs.len(), 1, "{segs:?}");
    assert!((f(&segs[0]["offset_s"]) - 3.04).abs() < 0.1, "{segs:?}");
    assert!(
        (f(&segs[0]["candidate_start_s"]) - 3.04).abs() < 0.1,
        "{segs:?}"
    );
    assert!(f(&segs[0]["query_start_s"]) < 0.1, "{segs:?}");
    assert!((f(&segs[0]["query_end_s"]) - 4.44).abs() < 0.1, "{segs:?}");

    // Scene 3 shared: at 0 s in one, at 3 s in the other; only that segment.
    let shared = pair(&pairs, "shared_a.webm", "shared_b.webm").expect("shared scene");
    let segs = shared["segments"].as_array().unwrap();
    assert_eq!(segs.len(), 1, "{segs:?}");
    let s = if name(&shared["query"]) == "shared_a.webm" {
        segs[0].clone()
    } else {
        // Seen from b: b's 3 s is a's 0 s.
        let mut s = segs[0].clone();
        s["offset_s"] = (-f(&s["offset_s"])).into();
        let (qs, cs) = (s["query_start_s"].clone(), s["candidate_start_s"].clone());
        s["query_start_s"] = cs;
        s["candidate_start_s"] = qs;
        s
    };
    assert!((f(&s["offset_s"]) - 3.0).abs() < 0.1, "{s}");
    assert!(f(&s["query_start_s"]) < 0.1, "{s}");
    assert!((f(&s["candidate_start_s"]) - 3.0).abs() < 0.1, "{s}");
    assert!(f(&shared["query_share"]) < 80.0 && f(&shared["candidate_share"]) < 80.0);

    // Unrelated videos: no pair at all, even with --all.
    for unrelated in ["ball.webm", "pinwheel.webm"] {
        for other in [
            "bikes.mp4",
            "small.webm",
            "clip.webm",
            "ball.webm",
            "pinwheel.webm",
        ] {
            if other != unrelated {
                assert!(
                    pair(&pairs, unrelated, other).is_none(),
                    "{unrelated} ~ {other}"
                );
            }
        }
    }

    // With the default thresholds (query share >= 80 %): the copy and the
    // clip, not the shared scene.
    let matches = corpus_match(index, &[], &[]);
    let mut names: Vec<(String, String)> = matches
        .iter()
        .map(|p| (name(&p["query"]), name(&p["candidate"])))
        .collect();
    names.sort();
    assert!(
        names.contains(&("clip.webm".into(), "bikes.mp4".into())),
        "{names:?}"
    );
    assert!(
        pair(&matches, "bikes.mp4", "small.webm").is_some(),
        "{names:?}"
    );
    assert!(
        pair(&matches, "shared_a.webm", "shared_b.webm").is_none(),
        "{names:?}"
    );
}

#[test]
fn a_video_not_in_the_index_is_checked_without_adding_it() {
    let index = library_index();
    let lib = library();
    let before = std::fs::read(format!("{index}.videos.json")).unwrap();
    // copy.webm: the same frames as bikes, re-encoded; not in the index.
    let pairs = corpus_match(index, &[lib.path("copy.webm"), lib.path("ball.webm")], &[]);
    let copy = pair(&pairs, "copy.webm", "bikes.mp4").expect("copy ~ bikes");
    assert_eq!(name(&copy["query"]), "copy.webm");
    assert_eq!(f(&copy["query_share"]), 100.0);
    assert_eq!(f(&copy["candidate_share"]), 100.0);
    // ball.webm is in the index: it is not paired with itself, nor with
    // bikes; shared_b.webm starts with 3 s of the same (periodic) ball
    // pattern, so all of ball.webm's frames are found there.
    assert!(
        pairs.iter().all(|p| !(name(&p["query"]) == "ball.webm"
            && ["ball.webm", "bikes.mp4", "small.webm", "clip.webm"]
                .contains(&name(&p["candidate"]).as_str()))),
        "{pairs:?}"
    );
    assert_eq!(
        std::fs::read(format!("{index}.videos.json")).unwrap(),
        before
    );

    // CSV: a header and one row per pair.
    let mut a = vec![
        "corpus",
        "match",
        "--index",
        index,
        "--frame-distance",
        FRAME_DISTANCE,
    ];
    a.extend(model_args());
    let copy_path = lib.path("copy.webm");
    a.push(&copy_path);
    let out = run(&a);
    let csv = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert!(
        lines[0].starts_with("query,candidate,query_share,candidate_share"),
        "{csv}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("copy.webm") && l.contains(",100.0,100.0,")),
        "{csv}"
    );
}

#[test]
fn bad_inputs_are_reported_and_the_job_goes_on() {
    let dir = scratch("bad");
    let lib = library();
    let empty = dir.join("empty.mp4");
    std::fs::write(&empty, b"").unwrap();
    let garbage = dir.join("garbage.mp4");
    std::fs::write(&garbage, b"this is not a video").unwrap();
    let audio = dir.join("audio.ogg");
    assert!(Command::new("gst-launch-1.0")
        .args([
            "-q",
            "audiotestsrc",
            "num-buffers=20",
            "!",
            "vorbisenc",
            "!",
            "oggmux",
            "!",
            "filesink"
        ])
        .arg(format!("location={}", audio.display()))
        .status()
        .unwrap()
        .success());
    let manifest = dir.join("list.txt");
    std::fs::write(
        &manifest,
        format!(
            "# a manifest\n{}\n{}\n\n{}\n{}\n{}\n{}\n",
            empty.display(),
            garbage.display(),
            audio.display(),
            dir.join("missing.mp4").display(),
            lib.path("ball.webm"),
            lib.path("ball.webm"),
        ),
    )
    .unwrap();
    let index = dir.join("bad.dsindex").to_string_lossy().into_owned();
    let mut a = vec![
        "corpus",
        "add",
        "--index",
        &index,
        "--stall-timeout",
        "20",
        "--manifest",
    ];
    let m = manifest.to_string_lossy().into_owned();
    a.push(&m);
    a.extend(model_args());
    let out = run(&a);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    for (file, why) in [
        ("empty.mp4", "empty file"),
        ("garbage.mp4", "failed"),
        ("audio.ogg", "no video stream"),
        ("missing.mp4", "No such file"),
    ] {
        assert!(
            err.lines()
                .any(|l| l.contains("failed: ") && l.contains(file) && l.contains(why)),
            "{file}: {why}\n{err}"
        );
    }
    assert!(err.contains("1 videos added"), "{err}");
    assert!(err.contains("4 failed"), "{err}");
    // The second ball.webm is the same content: skipped, not an error.
    assert!(err.contains("1 already in the corpus"), "{err}");
    let list: serde_json::Value =
        serde_json::from_slice(&std::fs::read(format!("{index}.videos.json")).unwrap()).unwrap();
    assert_eq!(list["videos"].as_object().unwrap().len(), 1);
}

/// `gst-launch-1.0 -q ARGS`, which must succeed.
fn gst_launch(args: &str) {
    let ok = Command::new("gst-launch-1.0")
        .arg("-q")
        .args(args.split_whitespace())
        .status()
        .unwrap()
        .success();
    assert!(ok, "gst-launch-1.0 {args}");
}

/// Damaged and odd files: bikes.mp4 cut before its `moov` box (it is at the
/// end: nothing plays) at three places, a faststart copy of it (`moov`
/// first) cut at 60 % (the first 5.68 s play), and a video whose frame size
/// changes from 320x180 to 160x120 at 2 s. The cut copies without `moov`
/// fail, each at once and saying why (decodebin used to drop qtdemux's error
/// in about one run in four and the job waited for ever: the stall timeout
/// is set out of reach and the run has a time limit); the playable cut one
/// is added with what plays and reported incomplete (exit status 1); the
/// resizing one is added whole with a note; the job goes on with a good
/// video; and the playable part of the cut copy matches bikes.mp4.
#[test]
fn truncated_and_resizing_videos_are_added_as_far_as_they_play_and_reported() {
    let dir = scratch("damaged");
    let whole = std::fs::read(bikes()).unwrap();
    let mut videos = Vec::new();
    for (i, fraction) in [0.3, 0.5, 0.9].iter().enumerate() {
        let cut = dir.join(format!("no_moov_{i}.mp4"));
        std::fs::write(&cut, &whole[..(whole.len() as f64 * fraction) as usize]).unwrap();
        videos.push(cut.to_string_lossy().into_owned());
    }
    let faststart = dir.join("faststart.mp4");
    gst_launch(&format!(
        "filesrc location={} ! qtdemux ! mp4mux faststart=true ! filesink location={}",
        bikes().display(),
        faststart.display()
    ));
    let fs = std::fs::read(&faststart).unwrap();
    let cut = dir.join("faststart_cut.mp4");
    std::fs::write(&cut, &fs[..fs.len() * 6 / 10]).unwrap();
    let resize = dir.join("resize.webm");
    gst_launch(&format!(
        "concat name=c ! videoconvert ! vp8enc deadline=1 ! webmmux ! filesink location={} \
         videotestsrc num-buffers=50 pattern=ball ! video/x-raw,width=320,height=180,framerate=25/1 ! c. \
         videotestsrc num-buffers=50 pattern=smpte ! video/x-raw,width=160,height=120,framerate=25/1 ! c.",
        resize.display()
    ));
    for p in [&cut, &resize] {
        videos.push(p.to_string_lossy().into_owned());
    }
    videos.push(bikes().to_string_lossy().into_owned());

    let index = dir.join("damaged.dsindex").to_string_lossy().into_owned();
    let mut a = vec![
        "corpus",
        "add",
        "--index",
        &index,
        "--stall-timeout",
        "3600",
    ];
    a.extend(model_args());
    a.extend(videos.iter().map(String::as_str));
    let limit = Duration::from_secs(240);
    let out = run_within(&a, limit)
        .unwrap_or_else(|| panic!("corpus add still running after {limit:?}: a lost error?"));
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    for i in 0..3 {
        assert!(
            err.lines()
                .any(|l| l.contains(&format!("no_moov_{i}.mp4: failed: "))
                    && l.contains("no playable streams")),
            "no_moov_{i}.mp4\n{err}"
        );
    }
    assert!(
        err.lines()
            .any(|l| l.contains("faststart_cut.mp4: incomplete: ")
                && l.contains("of the 10.000 s the file declares")),
        "{err}"
    );
    assert!(
        err.lines()
            .any(|l| l.contains("resize.webm: resolution change: ")
                && l.contains("320x180 to 160x120 at 2.000 s")),
        "{err}"
    );
    assert!(
        err.contains("3 videos added")
            && err.contains("1 incomplete")
            && err.contains("1 with a resolution change")
            && err.contains("3 failed"),
        "{err}"
    );
    let list: serde_json::Value =
        serde_json::from_slice(&std::fs::read(format!("{index}.videos.json")).unwrap()).unwrap();
    let record = |name: &str| {
        list["videos"]
            .as_object()
            .unwrap()
            .values()
            .find(|v| v["path"].as_str().unwrap().ends_with(name))
            .unwrap_or_else(|| panic!("{name} is not recorded: {list}"))
            .clone()
    };
    let cut_rec = record("faststart_cut.mp4");
    let cut_end = cut_rec["duration_ns"].as_u64().unwrap();
    assert!(
        (3_000_000_000..9_000_000_000).contains(&cut_end),
        "the cut copy lasts as far as it plays: {cut_rec}"
    );
    let resize_rec = record("resize.webm");
    assert_eq!(resize_rec["duration_ns"].as_u64().unwrap(), 4_000_000_000);
    assert!(resize_rec["frames"].as_u64().unwrap() >= 4, "{resize_rec}");
    assert_eq!(list["videos"].as_object().unwrap().len(), 3);

    // What was added of the cut copy is bikes.mp4's start.
    let pairs = corpus_match(&index, &[], &[]);
    let p = pair(&pairs, "faststart_cut.mp4", "bikes.mp4").expect("the cut copy matches bikes");
    assert_eq!(name(&p["query"]), "faststart_cut.mp4");
    assert_eq!(f(&p["query_share"]), 100.0, "{p}");
    let seg = &p["segments"][0];
    assert!(f(&seg["query_start_s"]).abs() < 1e-9, "{seg}");
    assert!(f(&seg["offset_s"]).abs() < 0.5, "{seg}");
    assert!(
        pair(&pairs, "resize.webm", "bikes.mp4").is_none(),
        "{pairs:?}"
    );
}

/// Everything an index holds, by content hash: (path, time, embedding).
fn index_content(index: &str) -> BTreeMap<String, (String, Vec<f32>)> {
    let mut set = dreamsim_index::open(index, None, &Default::default()).unwrap();
    let mut all = BTreeMap::new();
    let mut after = None;
    loop {
        let page = set.entries_after(after, 1000).unwrap();
        let Some(last) = page.last() else { break };
        after = Some(last.entry.id);
        for e in page {
            all.insert(
                e.entry.content_hash.clone(),
                (format!("{:?}", e.entry.source), e.embedding),
            );
        }
    }
    all
}

#[test]
fn an_interrupted_add_run_again_gives_the_same_index() {
    let lib = library();
    let dir = scratch("interrupt");
    let videos: Vec<String> = [
        "small.webm",
        "clip.webm",
        "shared_a.webm",
        "shared_b.webm",
        "ball.webm",
        "pinwheel.webm",
        "copy.webm",
    ]
    .iter()
    .map(|n| lib.path(n))
    .collect();

    let whole = dir.join("whole.dsindex").to_string_lossy().into_owned();
    assert!(corpus_add(&whole, &videos).status.success());

    // Killed (SIGKILL) once the first videos are in, then run again.
    let cut = dir.join("cut.dsindex").to_string_lossy().into_owned();
    let list = format!("{cut}.videos.json");
    let mut a = vec!["corpus", "add", "-q", "--index", cut.as_str()];
    a.extend(model_args());
    a.extend(videos.iter().map(String::as_str));
    let mut child = Command::new(env!("CARGO_BIN_EXE_gst-dreamsim"))
        .args(&a)
        .current_dir(repo_root())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let mut killed_after = None;
    while started.elapsed() < Duration::from_secs(120) {
        if let Ok(bytes) = std::fs::read(&list) {
            let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            let n = v["videos"].as_object().unwrap().len();
            if n >= 2 && child.try_wait().unwrap().is_none() {
                child.kill().unwrap();
                killed_after = Some(n);
                break;
            }
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.wait();
    let n = killed_after.expect("the job was killed while it ran");
    assert!(
        n < videos.len(),
        "killed after {n} of {} videos",
        videos.len()
    );
    eprintln!("killed after {n} of {} videos", videos.len());
    // What it left is a smaller, consistent corpus.
    let partial = index_content(&cut);
    let full = index_content(&whole);
    assert!(partial.len() < full.len());
    assert!(partial.keys().all(|k| full.contains_key(k)));

    let out = corpus_add(&cut, &videos);
    assert!(out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains(&format!("{n} already in the corpus")), "{err}");
    assert_eq!(index_content(&cut), full);
    let lists = |p: &str| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(format!("{p}.videos.json")).unwrap()).unwrap()
    };
    assert_eq!(lists(&cut), lists(&whole));
}

/// Not a test of the model: records what the fixture (random weights)
/// makes of a crop, for docs/corpus.md. Asserts nothing about the figures.
#[test]
fn what_the_fixture_makes_of_a_crop() {
    let index = library_index();
    let dir = scratch("crop");
    let crop = dir.join("crop.webm");
    // The central 80 % of bikes, scaled back to 320x180.
    gst::init().unwrap();
    let b = raw_frames(&format!(
        "filesrc location={} ! decodebin ! videoconvert ! videocrop left=32 right=32 top=18 \
         bottom=18 ! {RAW} ! appsink name=sink sync=false",
        bikes().display()
    ));
    encode(&crop, &b, W, H, VP8_HIGH);
    let pairs = corpus_match(
        index,
        &[crop.to_string_lossy().into_owned()],
        &["--all", "--query-share", "0", "--frame-distance", "0.1"],
    );
    for p in &pairs {
        println!(
            "crop (80 %) vs {} at frame distance 0.1: query share {} %, candidate share {} %",
            name(&p["candidate"]),
            p["query_share"],
            p["candidate_share"]
        );
    }
    if pairs.is_empty() {
        println!("crop (80 %): no candidate within frame distance 0.1");
    }
}

/// `script` (util-linux) gives the tool a terminal: the bar is drawn.
#[test]
fn add_draws_a_progress_bar_on_a_terminal() {
    let lib = library();
    let dir = scratch("terminal");
    let index = dir.join("t.dsindex");
    let command = format!(
        "{} corpus add --index {} --model {MODEL} --provider cpu {} {}",
        env!("CARGO_BIN_EXE_gst-dreamsim"),
        index.display(),
        lib.path("ball.webm"),
        lib.path("clip.webm"),
    );
    let terminal = on_terminal(&command);
    assert!(
        terminal.contains("corpus ") && terminal.contains("/2 videos"),
        "{terminal}"
    );
    assert!(terminal.contains("frames/s"), "{terminal}");
    assert!(terminal.contains("ETA"), "{terminal}");
    assert!(terminal.contains("2 videos added"), "{terminal}");
}

/// `--html`: one self-contained page; headless Chromium (Debian's
/// `chromium`) loads it and every thumbnail decodes.
#[test]
fn the_html_report_shows_every_thumbnail_in_chromium() {
    let index = library_index();
    let dir = scratch("html");
    let page = dir.join("report.html");
    let page_s = page.to_string_lossy().into_owned();
    let out = {
        let mut a = vec![
            "corpus",
            "match",
            "--index",
            index,
            "--frame-distance",
            FRAME_DISTANCE,
        ];
        a.extend(model_args());
        a.extend(["--all", "--query-share", "0", "--html", &page_s]);
        run(&a)
    };
    assert!(out.status.success());
    let html = std::fs::read_to_string(&page).unwrap();
    // Self-contained: no fetch from anywhere.
    assert!(!html.contains("src=\"http"), "external resource");
    assert!(!html.contains("src=\"file"), "external resource");
    let thumbs = html.matches("<img class=\"thumb\"").count();
    assert!(thumbs >= 10, "{thumbs} thumbnails");
    assert!(html.matches("<svg class=\"timeline\"").count() >= 4);
    assert!(
        !html.contains("class=\"missing\""),
        "a thumbnail could not be grabbed"
    );
    let dom = rendered_dom(&page, &dir.join("profile"), &[]);
    let expected = format!("data-thumbnails=\"{thumbs}/{thumbs}\"");
    assert!(dom.contains(&expected), "expected {expected} in the DOM");
}

#[test]
fn every_corpus_help_shows_an_example() {
    for args in [
        &["corpus", "--help"][..],
        &["corpus", "add", "--help"],
        &["corpus", "match", "-h"],
    ] {
        let o = run(args);
        assert!(o.status.success());
        let text = String::from_utf8(o.stdout).unwrap();
        let example = text
            .split_once("Example")
            .unwrap_or_else(|| panic!("{args:?}: no example: {text}"))
            .1;
        assert!(example.contains("gst-dreamsim corpus "), "{text}");
    }
    // Usage errors exit with 2.
    assert_eq!(
        run(&["corpus", "add", "--index", "x"]).status.code(),
        Some(2)
    );
    assert_eq!(run(&["corpus", "match"]).status.code(), Some(2));
}

/// Two processes of two workers each on one PostgreSQL: every video is
/// fingerprinted once, and the pairs are those of the embedded index.
#[test]
#[ignore = "needs PostgreSQL + pgvector in DREAMSIM_TEST_PG (.ci/run starts one)"]
fn two_processes_share_the_job_on_postgresql() {
    let server = std::env::var("DREAMSIM_TEST_PG").expect("DREAMSIM_TEST_PG");
    // A database of its own, so that nothing else's tables are touched.
    let db = format!("corpus_test_{}", std::process::id());
    let mut admin = postgres::Client::connect(&server, postgres::NoTls).unwrap();
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {db}"))
        .unwrap();
    admin
        .batch_execute(&format!("CREATE DATABASE {db}"))
        .unwrap();
    let (base, query) = server.split_once('?').unwrap_or((&server, ""));
    let base = base.rsplit_once('/').map_or(base, |(b, _)| b);
    let uri = format!("{base}/{db}?{query}");

    let videos = library_videos();
    let spawn = || {
        let mut a = vec![
            "corpus",
            "add",
            "-q",
            "--index",
            uri.as_str(),
            "--workers",
            "2",
        ];
        a.extend(model_args());
        a.extend(videos.iter().map(String::as_str));
        Command::new(env!("CARGO_BIN_EXE_gst-dreamsim"))
            .args(&a)
            .current_dir(repo_root())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    // A first process killed (SIGKILL) once a video is recorded: the job it
    // held is released by the next run on this machine.
    {
        let mut first = spawn();
        let started = Instant::now();
        let mut killed = false;
        while started.elapsed() < Duration::from_secs(120) {
            let recorded: Option<i64> = postgres::Client::connect(&uri, postgres::NoTls)
                .ok()
                .and_then(|mut c| {
                    c.query_one("SELECT count(*) FROM dreamsim_corpus_videos", &[])
                        .ok()
                })
                .map(|r| r.get(0));
            if recorded.is_some_and(|n| n >= 1) && first.try_wait().unwrap().is_none() {
                first.kill().unwrap();
                killed = true;
                break;
            }
            if first.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = first.wait();
        assert!(killed, "the first process was killed while it ran");
    }
    let (one, two) = (spawn(), spawn());
    for child in [one, two] {
        let out = child.wait_with_output().unwrap();
        eprintln!("{}", String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success());
    }
    let mut client = postgres::Client::connect(&uri, postgres::NoTls).unwrap();
    let done: i64 = client
        .query_one(
            "SELECT count(*) FROM dreamsim_corpus_jobs WHERE state = 'done'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(done as usize, videos.len());
    let recorded: i64 = client
        .query_one("SELECT count(*) FROM dreamsim_corpus_videos", &[])
        .unwrap()
        .get(0);
    assert_eq!(recorded as usize, videos.len());
    let workers: i64 = client
        .query_one(
            "SELECT count(DISTINCT worker) FROM dreamsim_corpus_jobs",
            &[],
        )
        .unwrap()
        .get(0);
    eprintln!("{workers} workers took jobs");

    let names = |pairs: Vec<serde_json::Value>| {
        let mut v: Vec<(String, String)> = pairs
            .iter()
            .map(|p| (name(&p["query"]), name(&p["candidate"])))
            .collect();
        v.sort();
        v
    };
    let on_pg = names(corpus_match(&uri, &[], &[]));
    let embedded = names(corpus_match(library_index(), &[], &[]));
    assert_eq!(on_pg, embedded);
    drop(client);
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
        .unwrap();
}

#[test]
fn without_scene_starts_the_same_frames_are_sampled() {
    let dir = scratch("no_scene_starts");
    let video = bikes().to_string_lossy().into_owned();
    let every = dir.join("every.dsindex").to_string_lossy().into_owned();
    assert!(corpus_add(&every, std::slice::from_ref(&video))
        .status
        .success());
    let sampled = dir.join("sampled.dsindex").to_string_lossy().into_owned();
    let mut a = vec!["corpus", "add", "--no-scene-starts", "--index", &sampled];
    a.extend(model_args());
    a.push(&video);
    let out = run(&a);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let (every, sampled) = (index_content(&every), index_content(&sampled));
    // 250 frames at 25 frames/s: one at each whole second, 0 to 9 s.
    let instants: Vec<u64> = sampled
        .keys()
        .map(|hash| hash.rsplit('@').next().unwrap().parse().unwrap())
        .collect::<std::collections::BTreeSet<u64>>()
        .into_iter()
        .collect();
    assert_eq!(
        instants,
        (0..10).map(|s| s * 1_000_000_000).collect::<Vec<u64>>()
    );
    // The same frames as when the model runs on every frame (which also
    // keeps the scene starts), with the same embeddings.
    for (hash, (_, embedding)) in &sampled {
        let (_, full) = every
            .get(hash)
            .unwrap_or_else(|| panic!("{hash} not sampled with every frame analysed"));
        let diff = embedding
            .iter()
            .zip(full)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(diff < 1e-5, "{hash}: {diff}");
    }
    assert!(every.len() > sampled.len(), "scene starts come on top");
}

/// The "N model runs" of `corpus add`'s summary line.
fn model_runs(out: &Output) -> u64 {
    let err = String::from_utf8_lossy(&out.stderr);
    let at = err
        .find(" model runs")
        .unwrap_or_else(|| panic!("no model runs in {err}"));
    err[..at]
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap_or_else(|_| panic!("model runs in {err}"))
}

#[test]
fn scene_starts_are_found_without_running_the_model_on_every_frame() {
    let dir = scratch("scene_cost");
    let video = bikes().to_string_lossy().into_owned();
    let default = dir.join("default.dsindex").to_string_lossy().into_owned();
    let out = corpus_add(&default, std::slice::from_ref(&video));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let with_scenes = model_runs(&out);
    let sampled = dir.join("sampled.dsindex").to_string_lossy().into_owned();
    let mut a = vec!["corpus", "add", "--no-scene-starts", "--index", &sampled];
    a.extend(model_args());
    a.push(&video);
    let out = run(&a);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let without = model_runs(&out);
    eprintln!("model runs on bikes.mp4: {with_scenes} by default, {without} without scene starts");
    // 250 frames: the model ran on every one of them before.
    assert_eq!(without, 10);
    assert!(with_scenes <= 2 * without, "{with_scenes} model runs");
    // The frames kept: the whole seconds and bikes.mp4's scene starts
    // (frames 30, 76, 137, 187, 242 at 25 frames/s), nothing else.
    let instants: std::collections::BTreeSet<u64> = index_content(&default)
        .keys()
        .map(|hash| hash.rsplit('@').next().unwrap().parse().unwrap())
        .collect();
    let mut want: std::collections::BTreeSet<u64> = (0..10).map(|s| s * 1_000_000_000).collect();
    want.extend([30u64, 76, 137, 187, 242].map(|f| f * 40_000_000));
    assert_eq!(instants, want);
    assert_eq!(with_scenes, want.len() as u64);
}

/// The check on the tests' whole corpus (bikes.mp4 and the
/// library's copies, clips, shared scenes and unrelated patterns): `corpus
/// add` with its defaults (a sample a second and the scene starts the
/// change test's cut detector finds) runs the model on at most twice the
/// frames `--no-scene-starts` does, and `corpus match` finds the same pairs
/// from either index.
#[test]
fn the_default_costs_at_most_twice_the_samples_and_finds_the_same_pairs() {
    let dir = scratch("default_against_samples");
    let videos = library_videos();
    let default = dir.join("default.dsindex").to_string_lossy().into_owned();
    let out = corpus_add(&default, &videos);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let with_scenes = model_runs(&out);
    let sampled = dir.join("sampled.dsindex").to_string_lossy().into_owned();
    let mut a = vec!["corpus", "add", "--no-scene-starts", "--index", &sampled];
    a.extend(model_args());
    a.extend(videos.iter().map(String::as_str));
    let out = run(&a);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let without = model_runs(&out);
    eprintln!(
        "model runs on the tests' corpus: {with_scenes} by default, {without} without scene starts"
    );
    assert!(without > 0);
    assert!(
        with_scenes <= 2 * without,
        "{with_scenes} model runs against {without}"
    );

    // A pair as its two videos, either way round: which one is the query
    // follows from the shares, which the samples move a little.
    let names = |pairs: Vec<serde_json::Value>| {
        let mut v: Vec<(String, String)> = pairs
            .iter()
            .map(|p| {
                let (q, c) = (name(&p["query"]), name(&p["candidate"]));
                if q < c {
                    (q, c)
                } else {
                    (c, q)
                }
            })
            .collect();
        v.sort();
        v
    };
    // Every pair with a shared segment, and the matches at the defaults.
    for extra in [&["--all", "--query-share", "0"][..], &[][..]] {
        let by_default = names(corpus_match(&default, &[], extra));
        let by_samples = names(corpus_match(&sampled, &[], extra));
        assert!(!by_default.is_empty(), "{extra:?}: no pair");
        assert_eq!(by_default, by_samples, "{extra:?}");
    }
}
