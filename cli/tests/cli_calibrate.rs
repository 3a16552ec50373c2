//! `gst-dreamsim calibrate` on labelled material the tests make: groups of
//! variants (noise, a shift, a rescale, a brightness change) of distinct
//! pictures, drawn with the `image` crate, and videos encoded from
//! videotestsrc; the fixture model `tiny_ensemble.onnx` embeds them.
//!
//! What is checked: well-separated groups give a threshold between the two
//! distributions with recall 1 at FPR 0; overlapping groups give the
//! trade-off the target asks for, figures that match a computation from the
//! pairs' distances (written by `--csv`) done here independently; the
//! cache makes a rerun embed nothing; `--for` lines are accepted verbatim
//! by the element (gst::parse::launch) or subcommand (`corpus match`) they
//! name; the HTML page renders in headless Chromium; bad options exit 2,
//! bad inputs 1, and no output is written over an input (exit 2).

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::*;
use gst::prelude::*;

const MODEL: &str = "tests/fixtures/tiny_ensemble.onnx";
const MODEL_ARGS: [&str; 6] = ["--model", MODEL, "--provider", "cpu", "--threads", "1"];

fn init() {
    gst::init().unwrap();
    gstdreamsim::plugin_register_static().unwrap();
}

/// An empty folder for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "dreamsim-cli-calibrate-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A small deterministic generator (the test needs no crate for it).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) as u32
    }
    fn byte(&mut self) -> u8 {
        (self.next() >> 8) as u8
    }
    fn signed(&mut self, amplitude: i32) -> i32 {
        (self.next() % (2 * amplitude as u32 + 1)) as i32 - amplitude
    }
}

const W: u32 = 96;
const H: u32 = 72;

/// A picture of 4x3 blocks of colour, `cells` (12 RGB triples).
fn blocks(cells: &[[u8; 3]]) -> image::RgbImage {
    image::RgbImage::from_fn(W, H, |x, y| {
        let c = cells[(y * 3 / H * 4 + x * 4 / W) as usize];
        image::Rgb(c)
    })
}

fn random_cells(rng: &mut Lcg) -> Vec<[u8; 3]> {
    (0..12)
        .map(|_| [rng.byte(), rng.byte(), rng.byte()])
        .collect()
}

/// Variants of `base`: noise of `noise` levels, a shift, a rescale, a
/// brightness change.
fn variants(base: &image::RgbImage, noise: i32, rng: &mut Lcg) -> Vec<image::RgbImage> {
    let noisy = image::RgbImage::from_fn(W, H, |x, y| {
        let p = base.get_pixel(x, y).0;
        image::Rgb(p.map(|v| (v as i32 + rng.signed(noise)).clamp(0, 255) as u8))
    });
    let shifted = image::RgbImage::from_fn(W, H, |x, y| {
        *base.get_pixel(x.saturating_sub(3), y.saturating_sub(2))
    });
    let small = image::imageops::resize(
        base,
        W * 3 / 4,
        H * 3 / 4,
        image::imageops::FilterType::Triangle,
    );
    let brighter = image::RgbImage::from_fn(W, H, |x, y| {
        image::Rgb(base.get_pixel(x, y).0.map(|v| v.saturating_add(12)))
    });
    vec![base.clone(), noisy, shifted, small, brighter]
}

/// Writes `groups` (each a list of pictures) as a folder per group.
fn write_groups(dir: &Path, groups: &[Vec<image::RgbImage>]) -> PathBuf {
    let root = dir.join("groups");
    for (g, pictures) in groups.iter().enumerate() {
        let folder = root.join(format!("g{g:02}"));
        std::fs::create_dir_all(&folder).unwrap();
        for (i, p) in pictures.iter().enumerate() {
            p.save(folder.join(format!("v{i}.png"))).unwrap();
        }
    }
    root
}

/// Five groups of distinct pictures, each with its variants.
fn separated(dir: &Path) -> PathBuf {
    let mut rng = Lcg(1);
    let groups: Vec<_> = (0..5)
        .map(|_| {
            let base = blocks(&random_cells(&mut rng));
            variants(&base, 10, &mut rng)
        })
        .collect();
    write_groups(dir, &groups)
}

/// Six groups whose pictures differ little (one parent, cells nudged) and
/// whose variants are strong: the distributions overlap.
fn overlapping(dir: &Path) -> PathBuf {
    let mut rng = Lcg(7);
    let parent = random_cells(&mut rng);
    let groups: Vec<_> = (0..6)
        .map(|_| {
            let cells: Vec<[u8; 3]> = parent
                .iter()
                .map(|c| c.map(|v| (v as i32 + rng.signed(40)).clamp(0, 255) as u8))
                .collect();
            variants(&blocks(&cells), 60, &mut rng)
        })
        .collect();
    write_groups(dir, &groups)
}

/// `calibrate ARGS --model ...`.
fn calibrate(args: &[&str]) -> std::process::Output {
    let mut v = vec!["calibrate"];
    v.extend_from_slice(args);
    v.extend_from_slice(&MODEL_ARGS);
    v.push("--quiet");
    run(&v)
}

fn json(o: &std::process::Output) -> serde_json::Value {
    assert_eq!(o.status.code(), Some(0));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn f(v: &serde_json::Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// The `--csv` rows: (label same, distance).
fn read_distances(path: &Path) -> Vec<(bool, f64)> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.rsplitn(3, ',').collect();
            (f[1] == "same", f[0].parse().unwrap())
        })
        .collect()
}

/// Recall, FPR and precision at `t`, counted here from the distances.
fn rates(d: &[(bool, f64)], t: f64) -> (f64, f64, f64) {
    let tp = d.iter().filter(|(s, x)| *s && *x <= t).count() as f64;
    let fp = d.iter().filter(|(s, x)| !*s && *x <= t).count() as f64;
    let p = d.iter().filter(|(s, _)| *s).count() as f64;
    let n = d.len() as f64 - p;
    (
        tp / p,
        fp / n,
        if tp + fp > 0.0 { tp / (tp + fp) } else { 1.0 },
    )
}

#[test]
fn separated_groups_give_a_threshold_between_them_with_recall_1_at_fpr_0() {
    let dir = scratch("separated");
    let groups = separated(&dir);
    let csv = dir.join("d.csv");
    let o = calibrate(&[
        "--groups",
        s(&groups),
        "--target-fpr",
        "0",
        "--json",
        "--csv",
        s(&csv),
    ]);
    let doc = json(&o);
    let same_max = f(&doc["same_distances"]["max"]);
    let diff_min = f(&doc["different_distances"]["min"]);
    assert!(
        same_max < diff_min,
        "the material is separated: {same_max} < {diff_min}"
    );
    let t = f(&doc["threshold"]);
    assert!(
        same_max <= t && t < diff_min,
        "{same_max} <= {t} < {diff_min}"
    );
    assert_eq!(f(&doc["at_threshold"]["recall"]), 1.0);
    assert_eq!(f(&doc["at_threshold"]["fpr"]), 0.0);
    assert_eq!(f(&doc["roc_auc"]), 1.0);
    // 5 groups of 5: 50 same pairs, 250 different.
    assert_eq!(
        (doc["same_pairs"].as_u64(), doc["different_pairs"].as_u64()),
        (Some(50), Some(250))
    );
    let d = read_distances(&csv);
    assert_eq!(d.len(), 300);
    let i = &doc["bootstrap"]["threshold"];
    assert!(f(&i["low"]) <= t && t <= f(&i["high"]) + 1e-12, "{i}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn overlapping_groups_give_the_trade_off_the_target_asks_for() {
    let dir = scratch("overlap");
    let groups = overlapping(&dir);
    let csv = dir.join("d.csv");
    let run_at = |fpr: &str| {
        json(&calibrate(&[
            "--groups",
            s(&groups),
            "--target-fpr",
            fpr,
            "--json",
            "--csv",
            s(&csv),
            "--bootstrap",
            "200",
            "--seed",
            "3",
        ]))
    };
    let strict = run_at("0.01");
    let loose = run_at("0.2");
    let d = read_distances(&csv);
    let same_max = d.iter().filter(|x| x.0).map(|x| x.1).fold(0.0, f64::max);
    let diff_min = d
        .iter()
        .filter(|x| !x.0)
        .map(|x| x.1)
        .fold(f64::MAX, f64::min);
    assert!(
        diff_min < same_max,
        "the material overlaps: {diff_min} < {same_max}"
    );
    for (doc, target) in [(&strict, 0.01), (&loose, 0.2)] {
        let t = f(&doc["threshold"]);
        let (recall, fpr, precision) = rates(&d, t);
        // The figures are those of the distances, counted independently.
        assert!((f(&doc["at_threshold"]["recall"]) - recall).abs() < 1e-12);
        assert!((f(&doc["at_threshold"]["fpr"]) - fpr).abs() < 1e-12);
        assert!((f(&doc["at_threshold"]["precision"]) - precision).abs() < 1e-12);
        assert!(fpr <= target);
        assert!(recall < 1.0, "overlap costs recall at FPR {target}");
        // No threshold meets the target with more recall, nor with as much
        // and a lower FPR.
        for &(_, x) in &d {
            let (r, p, _) = rates(&d, x);
            if p <= target {
                assert!(r <= recall, "{x} has recall {r} > {recall} at FPR {p}");
            }
        }
    }
    // The trade-off: a looser FPR buys recall.
    assert!(f(&loose["at_threshold"]["recall"]) > f(&strict["at_threshold"]["recall"]));
    assert!(f(&loose["threshold"]) > f(&strict["threshold"]));
    // A given threshold is checked, not chosen: the same figures.
    let t = strict["threshold"].to_string();
    let at = json(&calibrate(&[
        "--groups",
        s(&groups),
        "--threshold",
        &t,
        "--json",
        "--bootstrap",
        "20",
    ]));
    assert_eq!(at["at_threshold"], strict["at_threshold"]);
    // Precision target: the highest recall with precision >= 0.9.
    let doc = json(&calibrate(&[
        "--groups",
        s(&groups),
        "--target-precision",
        "0.9",
        "--json",
        "--bootstrap",
        "0",
    ]));
    let (recall, _, precision) = rates(&d, f(&doc["threshold"]));
    assert!(precision >= 0.9);
    for &(_, x) in &d {
        let (r, _, p) = rates(&d, x);
        if p >= 0.9 {
            assert!(r <= recall);
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_cache_makes_a_rerun_embed_nothing_and_gives_the_same_figures() {
    let dir = scratch("cache");
    let groups = separated(&dir);
    let cache = dir.join("cache.dsindex");
    let args = [
        "--groups",
        s(&groups),
        "--target-fpr",
        "0",
        "--json",
        "--cache",
        s(&cache),
        "--bootstrap",
        "50",
    ];
    let first = json(&calibrate(&args));
    assert_eq!(
        (first["embedded"].as_u64(), first["cached"].as_u64()),
        (Some(25), Some(0))
    );
    let second = json(&calibrate(&args));
    assert_eq!(
        (second["embedded"].as_u64(), second["cached"].as_u64()),
        (Some(0), Some(25))
    );
    assert_eq!(first["points"], second["points"]);
    assert_eq!(first["threshold"], second["threshold"]);
    // Another model's embeddings are refused.
    let mut other = vec!["calibrate"];
    other.extend_from_slice(&args);
    other.extend_from_slice(&[
        "--model",
        "tests/fixtures/tiny_dino.onnx",
        "--provider",
        "cpu",
        "--quiet",
    ]);
    let o = run(&other);
    assert_eq!(o.status.code(), Some(1));
    let _ = std::fs::remove_dir_all(dir);
}

/// The setting line `calibrate --for USE` writes (alone on standard output).
fn setting_for(groups: &Path, purpose: &str) -> String {
    let o = calibrate(&[
        "--groups",
        s(groups),
        "--target-fpr",
        "0",
        "--for",
        purpose,
        "--bootstrap",
        "0",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let out = String::from_utf8(o.stdout).unwrap();
    assert_eq!(out.lines().count(), 1, "{out}");
    out.trim_end().to_owned()
}

#[test]
fn element_settings_are_accepted_verbatim_by_the_elements() {
    init();
    let dir = scratch("for-elements");
    let groups = separated(&dir);
    for (purpose, element) in [
        ("dedup", "dreamsimdedup"),
        ("scene", "dreamsimscene"),
        ("match", "dreamsimmatch"),
    ] {
        let line = setting_for(&groups, purpose);
        assert!(line.starts_with(&format!("{element} ")), "{line}");
        let value: f64 = line.rsplit_once("threshold=").unwrap().1.parse().unwrap();
        // The tests run in cli/: the model's path from the repository root.
        let model = repo_root().join(MODEL);
        let description = format!(
            "videotestsrc num-buffers=3 ! video/x-raw,width=64,height=48 ! videoconvert ! \
             dreamsim model-location={} execution-provider=cpu ! {line} name=x ! fakesink",
            model.display()
        );
        let pipeline = gst::parse::launch(&description)
            .unwrap_or_else(|e| panic!("{description}: {e}"))
            .downcast::<gst::Pipeline>()
            .unwrap();
        let x = pipeline.by_name("x").unwrap();
        assert_eq!(x.property::<f64>("threshold"), value, "{line}");
        // dreamsimmatch needs an index to start: built, its property read,
        // not played. The others run to the end with the setting.
        if purpose != "match" {
            let bus = pipeline.bus().unwrap();
            if pipeline.set_state(gst::State::Playing).is_err() {
                let msg = bus.timed_pop_filtered(
                    gst::ClockTime::from_seconds(5),
                    &[gst::MessageType::Error],
                );
                panic!("{description}: {msg:?}");
            }
            let msg = bus
                .timed_pop_filtered(
                    gst::ClockTime::from_seconds(120),
                    &[gst::MessageType::Eos, gst::MessageType::Error],
                )
                .expect("the pipeline ends");
            assert_eq!(msg.type_(), gst::MessageType::Eos, "{msg:?}");
            pipeline.set_state(gst::State::Null).unwrap();
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// Encodes `n` frames of a videotestsrc pattern at 10 fps, `width` x
/// `height`, as VP8/WebM at `bitrate` bit/s.
fn video(path: &Path, pattern: &str, n: u32, width: u32, height: u32, bitrate: u32) {
    let description = format!(
        "videotestsrc pattern={pattern} num-buffers={n} ! \
         video/x-raw,width={width},height={height},framerate=10/1 ! videoconvert ! \
         vp8enc deadline=1 target-bitrate={bitrate} ! webmmux ! filesink location={}",
        path.display()
    );
    let pipeline = gst::parse::launch(&description).unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let msg = pipeline
        .bus()
        .unwrap()
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(60),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        )
        .unwrap();
    assert_eq!(msg.type_(), gst::MessageType::Eos, "{msg:?}");
    pipeline.set_state(gst::State::Null).unwrap();
}

/// A folder per videotestsrc pattern, each with two encodings of it (the
/// second smaller and at a lower bitrate): copies within a group.
fn video_groups(dir: &Path) -> PathBuf {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(init);
    let root = dir.join("videos");
    for pattern in ["smpte", "ball", "pinwheel"] {
        let g = root.join(pattern);
        std::fs::create_dir_all(&g).unwrap();
        video(&g.join("a.webm"), pattern, 30, 96, 72, 400_000);
        video(&g.join("b.webm"), pattern, 30, 80, 60, 150_000);
    }
    root
}

#[test]
fn the_corpus_setting_is_accepted_verbatim_by_corpus_match() {
    let dir = scratch("for-corpus");
    let groups = video_groups(&dir);
    let o = calibrate(&[
        "--groups",
        s(&groups),
        "--target-fpr",
        "0",
        "--for",
        "corpus",
        "--bootstrap",
        "0",
        "--json",
    ]);
    let doc = json(&o);
    assert_eq!(doc["videos"].as_u64(), Some(6));
    assert_eq!(doc["corpus_shares"].as_array().unwrap().len(), 20);
    let line = doc["setting"]["text"].as_str().unwrap().to_owned();
    assert!(line.starts_with("--frame-distance "), "{line}");
    assert!(line.contains(" --query-share "), "{line}");
    // The same line, from the text mode, alone on standard output.
    let text = calibrate(&[
        "--groups",
        s(&groups),
        "--target-fpr",
        "0",
        "--for",
        "corpus",
        "--bootstrap",
        "0",
    ]);
    assert_eq!(String::from_utf8(text.stdout).unwrap().trim_end(), line);
    // Videos come back from the cache as their sampled frames: the same
    // figures, the model run on none.
    let cache = dir.join("videos.dsindex");
    let cached_run = || {
        json(&calibrate(&[
            "--groups",
            s(&groups),
            "--target-fpr",
            "0",
            "--for",
            "corpus",
            "--bootstrap",
            "0",
            "--json",
            "--cache",
            s(&cache),
        ]))
    };
    let first = cached_run();
    let second = cached_run();
    assert_eq!(
        (first["embedded"].as_u64(), first["cached"].as_u64()),
        (Some(6), Some(0))
    );
    assert_eq!(
        (second["embedded"].as_u64(), second["cached"].as_u64()),
        (Some(0), Some(6))
    );
    assert_eq!(second["points"], doc["points"]);
    assert_eq!(second["setting"], doc["setting"]);
    // corpus match takes it as it is.
    let index = dir.join("lib.dsindex");
    let mut add = vec!["corpus", "add", "--index", s(&index), "--quiet"];
    let a = groups.join("smpte/a.webm");
    let b = groups.join("smpte/b.webm");
    add.extend([s(&a), s(&b)]);
    add.extend_from_slice(&MODEL_ARGS);
    assert_eq!(run(&add).status.code(), Some(0));
    let mut m = vec!["corpus", "match", "--index", s(&index), "--json"];
    m.extend(line.split(' '));
    m.extend_from_slice(&MODEL_ARGS);
    let o = run(&m);
    assert_eq!(o.status.code(), Some(0));
    let result: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let fd: f64 = line.split(' ').nth(1).unwrap().parse().unwrap();
    let share: f64 = line.split(' ').nth(3).unwrap().parse().unwrap();
    assert_eq!(f(&result["frame_distance"]), fd);
    assert_eq!(f(&result["query_share"]), share);
    // The two encodings were a same pair, found at FPR 0 with recall 1:
    // corpus match, with the setting, finds them too.
    assert_eq!(f(&doc["at_threshold"]["recall"]), 1.0, "{doc}");
    let pairs = result["pairs"].as_array().unwrap();
    assert!(pairs.iter().any(|p| p["match"] == true), "{result}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_html_page_renders_in_chromium_with_its_three_plots() {
    let dir = scratch("html");
    let groups = overlapping(&dir);
    let html = dir.join("report.html");
    let o = calibrate(&[
        "--groups",
        s(&groups),
        "--target-fpr",
        "0.05",
        "--html",
        s(&html),
        "--bootstrap",
        "0",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        !page.contains("http://") || !page.contains("src=\"http"),
        "self-contained"
    );
    let profile = dir.join("profile");
    let dom = rendered_dom(&html, &profile, &[]);
    assert_eq!(dom.matches("<svg").count(), 3, "histograms, ROC, PR");
    assert!(dom.contains("id=\"threshold\""));
    assert_eq!(dom.matches("class=\"chosen\"").count(), 2);
    assert!(dom.contains("class=\"bar-same\"") && dom.contains("class=\"bar-different\""));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn pairs_csv_videos_and_images_mixed() {
    let dir = scratch("pairs");
    separated(&dir);
    let pairs = dir.join("pairs.csv");
    std::fs::write(
        &pairs,
        "a,b,label\n\
         groups/g00/v0.png,groups/g00/v1.png,same\n\
         groups/g01/v0.png,groups/g01/v2.png,same\n\
         groups/g00/v0.png,groups/g01/v0.png,different\n\
         groups/g02/v3.png,groups/g03/v4.png,different\n",
    )
    .unwrap();
    let doc = json(&calibrate(&[
        "--pairs",
        s(&pairs),
        "--target-precision",
        "1",
        "--json",
    ]));
    assert_eq!(doc["input"], "pairs");
    assert_eq!(doc["items"].as_u64(), Some(6));
    assert_eq!(f(&doc["at_threshold"]["recall"]), 1.0);
    assert_eq!(
        doc["bootstrap"]["resampled"]
            .as_str()
            .unwrap()
            .split(',')
            .next(),
        Some("pairs")
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn bad_options_and_inputs_are_refused_clearly() {
    let dir = scratch("bad");
    let groups = separated(&dir);
    let g = s(&groups);
    // Usage errors: exit 2, with the allowed range.
    for args in [
        vec!["--groups", g, "--target-fpr", "NaN"],
        vec!["--groups", g, "--target-fpr", "1.5"],
        vec!["--groups", g, "--target-fpr", "-0.1"],
        vec!["--groups", g, "--target-precision", "0"],
        vec!["--groups", g, "--target-precision", "inf"],
        vec![
            "--groups",
            g,
            "--target-fpr",
            "0.1",
            "--target-precision",
            "0.9",
        ],
        vec!["--groups", g],
        vec!["--target-fpr", "0.1"],
        vec!["--groups", g, "--target-fpr", "0.1", "--bootstrap", "-1"],
        vec!["--groups", g, "--target-fpr", "0.1", "--video-share", "0"],
        vec!["--groups", g, "--target-fpr", "0.1", "--rate", "nan"],
        vec!["--groups", g, "--target-fpr", "0.1", "--for", "everything"],
    ] {
        let o = calibrate(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(o.stdout.is_empty());
    }
    let err = String::from_utf8(calibrate(&["--groups", g, "--target-fpr", "2"]).stderr).unwrap();
    assert!(err.contains("0 to 1"), "{err}");
    // An output over an input: refused, the input intact.
    let input = groups.join("g00/v0.png");
    let before = std::fs::read(&input).unwrap();
    let o = calibrate(&["--groups", g, "--target-fpr", "0", "--html", s(&input)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("refusing to write over an input"));
    assert_eq!(std::fs::read(&input).unwrap(), before);
    let pairs = dir.join("pairs.csv");
    std::fs::write(
        &pairs,
        "groups/g00/v0.png,groups/g00/v1.png,same\ngroups/g00/v0.png,groups/g01/v1.png,different\n",
    )
    .unwrap();
    let o = calibrate(&[
        "--pairs",
        s(&pairs),
        "--target-fpr",
        "0",
        "--csv",
        s(&pairs),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(std::fs::read_to_string(&pairs)
        .unwrap()
        .starts_with("groups/g00"));
    // Lists that are not regular files, bad labels, missing files, one label only.
    let o = calibrate(&["--pairs", s(&dir), "--target-fpr", "0"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a regular file"));
    for (text, says) in [
        (
            "groups/g00/v0.png,groups/g00/v1.png,maybe\n",
            "use same or different",
        ),
        ("groups/g00/v0.png,nothing.png,same\n", "nothing.png"),
        (
            "groups/g00/v0.png,groups/g00/v1.png,same\n",
            "calibrating needs both",
        ),
        ("groups/g00/v0.png,groups/g00/v1.png\n", "fields"),
        ("groups/g00/v0.png,groups/g00/v0.png,same\n", "itself"),
    ] {
        std::fs::write(&pairs, text).unwrap();
        let o = calibrate(&["--pairs", s(&pairs), "--target-fpr", "0"]);
        assert_eq!(o.status.code(), Some(1), "{text}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(says), "{text}: {err}");
        assert!(!err.contains("panicked"));
    }
    // No threshold meets the target when the nearest pair is a different one.
    std::fs::write(
        &pairs,
        "groups/g00/v0.png,groups/g00/v2.png,different\ngroups/g00/v0.png,groups/g01/v0.png,same\n",
    )
    .unwrap();
    let o = calibrate(&["--pairs", s(&pairs), "--target-fpr", "0", "--json"]);
    assert_eq!(o.status.code(), Some(1));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(doc["threshold"].is_null());
    let _ = std::fs::remove_dir_all(dir);
}

/// `corpus evaluate` on a result and a truth written here: the figures of
/// the hand-computed example in cli/src/corpus/evaluate.rs (µAP 11.3/14),
/// pairs matched by file stem, bad input refused.
#[test]
fn corpus_evaluate_scores_a_result_against_the_truth() {
    let dir = scratch("evaluate");
    let truth = dir.join("truth.csv");
    std::fs::write(
        &truth,
        "query_id,ref_id,query_start,query_end,ref_start,ref_end\n\
         q1,r1,0,10,0,10\n\
         q2,r2,0,4,10,14\n",
    )
    .unwrap();
    let seg = |qs: f64, qe: f64, rs: f64, re: f64, d: f64| {
        serde_json::json!({"query_start_s": qs, "query_end_s": qe, "candidate_start_s": rs,
            "candidate_end_s": re, "offset_s": rs - qs, "frames": 3, "mean_distance": d})
    };
    let result = serde_json::json!({
        "index": "lib.dsindex", "frame_distance": 0.1, "query_share": 80.0,
        "pairs": [
            {"query": "videos/q1.mp4", "candidate": "videos/r1.mp4", "match": true,
             "segments": [seg(0.0, 5.0, 0.0, 5.0, 0.1), seg(5.0, 10.0, 5.0, 10.0, 0.3)]},
            {"query": "videos/q3.mp4", "candidate": "videos/r3.mp4", "match": true,
             "segments": [seg(0.0, 6.0, 0.0, 6.0, 0.2)]},
            {"query": "videos/q2.mp4", "candidate": "videos/r2.mp4", "match": false,
             "segments": [seg(0.0, 4.0, 10.0, 14.0, 0.3)]}
        ],
        "failed": []
    });
    let path = dir.join("result.json");
    std::fs::write(&path, result.to_string()).unwrap();
    let o = run(&[
        "corpus",
        "evaluate",
        "--truth",
        s(&truth),
        s(&path),
        "--json",
    ]);
    let doc = json(&o);
    assert!(
        (f(&doc["segment_map"]) - 11.3 / 14.0).abs() < 1e-12,
        "{doc}"
    );
    assert_eq!(f(&doc["pair_precision"]), 0.5);
    assert_eq!(f(&doc["pair_recall"]), 0.5);
    assert_eq!(f(&doc["pair_f1"]), 0.5);
    let text = run(&["corpus", "evaluate", "--truth", s(&truth), s(&path)]);
    assert!(String::from_utf8(text.stdout)
        .unwrap()
        .contains("segment µAP (VSC 2022) 0.8071"));
    // The output over an input, a truth without its header: refused.
    let o = run(&[
        "corpus",
        "evaluate",
        "--truth",
        s(&truth),
        s(&path),
        "-o",
        s(&truth),
    ]);
    assert_eq!(o.status.code(), Some(2));
    std::fs::write(&truth, "q1,r1,0,10,0,10\n").unwrap();
    let o = run(&["corpus", "evaluate", "--truth", s(&truth), s(&path)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("query_id,ref_id"));
    let _ = std::fs::remove_dir_all(dir);
}

/// `index evaluate` on a hand-computed result: three queries with a true
/// match, two without, k = 5 (the example of cli/src/index_evaluate.rs,
/// as JSON and as the CSV of `index query`), truth rows naming queries by
/// file stem; bad options exit 2, bad input 1.
#[test]
fn index_evaluate_scores_a_hand_computed_result() {
    let dir = scratch("index-evaluate");
    let hit = |rank: usize, label: &str, d: f64| {
        serde_json::json!({"rank": rank, "id": rank, "label": label, "distance": d,
            "source": {"kind": "file", "path": "x.png"}})
    };
    let query = |input: &str, hits: &[(&str, f64)]| {
        let m: Vec<_> = hits
            .iter()
            .enumerate()
            .map(|(i, (l, d))| hit(i + 1, l, *d))
            .collect();
        serde_json::json!({"input": input, "matches": m})
    };
    let doc = serde_json::json!({"index": "known.dsindex", "k": 5, "queries": [
        query("q/a.jpg", &[("A", 0.05), ("B", 0.2)]),
        query("q/b.jpg", &[("C", 0.08), ("B", 0.09)]),
        query("q/c.jpg", &[("D", 0.3), ("E", 0.4), ("F", 0.5), ("G", 0.6), ("C", 0.7)]),
        query("q/d.jpg", &[("A", 0.02)]),
        query("q/e.jpg", &[("B", 0.5)]),
    ]});
    let result = dir.join("result.json");
    std::fs::write(&result, doc.to_string()).unwrap();
    let truth = dir.join("truth.csv");
    std::fs::write(&truth, "query,label\na,A\nb.jpg,B\nq/c.jpg,C\nd,\ne,\n").unwrap();
    let evaluate = |result: &Path, extra: &[&str]| {
        let mut v = vec!["index", "evaluate", "--truth", s(&truth), s(result)];
        v.extend_from_slice(extra);
        run(&v)
    };
    let check = |doc: &serde_json::Value| {
        // Called 3 (a, b, d), correct 1 (a): precision 1/3; 3 with a true
        // match: recall 1/3; false-match rate 1/2 (d of d, e); recall@1
        // 1/3 (a), recall@5 1 (B at rank 2, C at rank 5); no recall@10 at k 5.
        assert_eq!(doc["called"], 3, "{doc}");
        assert_eq!(doc["correct"], 1);
        assert!((f(&doc["precision"]) - 1.0 / 3.0).abs() < 1e-12);
        assert!((f(&doc["recall"]) - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(f(&doc["false_match_rate"]), 0.5);
        assert!((f(&doc["recall_at"]["1"]) - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(f(&doc["recall_at"]["5"]), 1.0);
        assert!(doc["recall_at"]["10"].is_null());
    };
    check(&json(&evaluate(
        &result,
        &["--max-distance", "0.1", "--json"],
    )));
    // The CSV of index query says the same.
    let mut csv = String::from("input,timestamp,rank,id,label,distance,source\n");
    for q in doc["queries"].as_array().unwrap() {
        for h in q["matches"].as_array().unwrap() {
            csv += &format!(
                "{},,{},{},{},{:.6},x.png\n",
                q["input"].as_str().unwrap(),
                h["rank"],
                h["id"],
                h["label"].as_str().unwrap(),
                f(&h["distance"])
            );
        }
    }
    let result_csv = dir.join("result.csv");
    std::fs::write(&result_csv, csv).unwrap();
    check(&json(&evaluate(
        &result_csv,
        &["--max-distance", "0.1", "--json"],
    )));
    let text = evaluate(&result, &["--max-distance", "0.1"]);
    assert!(String::from_utf8(text.stdout)
        .unwrap()
        .contains("recall@1 0.3333, recall@5 1.0000, recall@10 - (k = 5)"));
    // A distance out of range, a missing option: usage errors.
    for extra in [
        &["--max-distance", "3"][..],
        &["--max-distance", "nan"],
        &[],
    ] {
        assert_eq!(evaluate(&result, extra).status.code(), Some(2));
    }
    // Output over an input; a truth without a row for a query: refused.
    let o = evaluate(&result, &["--max-distance", "0.1", "-o", s(&truth)]);
    assert_eq!(o.status.code(), Some(2));
    std::fs::write(&truth, "query,label\na,A\nb,B\nc,C\nd,\n").unwrap();
    let o = evaluate(&result, &["--max-distance", "0.1"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no row for the query q/e.jpg"));
    let _ = std::fs::remove_dir_all(dir);
}

/// End to end: an index of the first picture of three groups (labelled by
/// group), queried with the other variants of those groups (positives)
/// and pictures of two other groups (negatives) through `index query
/// --json`, then scored. The groups are the separated ones (every same
/// pair nearer than every different pair, as the calibrate test checks),
/// so the true entry is nearest for every positive (recall@1 = 1), and a
/// threshold between the positives' and the negatives' nearest distances
/// gives precision 1, recall 1, no false match; a threshold below every
/// distance calls nothing.
#[test]
fn index_evaluate_scores_an_index_query_run() {
    init();
    let dir = scratch("index-evaluate-e2e");
    let groups = separated(&dir);
    let index = dir.join("known.dsindex");
    let labels = dir.join("labels.csv");
    let mut label_rows = String::new();
    let mut add = vec!["index".to_owned(), "add".into(), s(&index).into()];
    let mut truth = String::from("query,label\n");
    let mut queries = Vec::new();
    for g in 0..5 {
        let folder = groups.join(format!("g{g:02}"));
        if g < 3 {
            let known = folder.join("v0.png");
            label_rows += &format!("{},g{g:02}\n", s(&known));
            add.push(s(&known).into());
            for v in 1..5 {
                let q = folder.join(format!("v{v}.png"));
                truth += &format!("{},g{g:02}\n", s(&q));
                queries.push(s(&q).to_owned());
            }
        } else {
            let q = folder.join("v1.png");
            truth += &format!("{},\n", s(&q));
            queries.push(s(&q).to_owned());
        }
    }
    std::fs::write(&labels, label_rows).unwrap();
    add.extend(["--labels".into(), s(&labels).into(), "--quiet".into()]);
    add.extend(MODEL_ARGS.iter().map(|a| a.to_string()));
    let add: Vec<&str> = add.iter().map(String::as_str).collect();
    assert_eq!(run(&add).status.code(), Some(0));
    let mut query = vec!["index", "query", s(&index), "-k", "3", "--json", "--quiet"];
    query.extend(queries.iter().map(String::as_str));
    query.extend_from_slice(&MODEL_ARGS);
    let o = run(&query);
    assert_eq!(o.status.code(), Some(0));
    let result = dir.join("result.json");
    std::fs::write(&result, &o.stdout).unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let nearest: Vec<f64> = doc["queries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| f(&q["matches"][0]["distance"]))
        .collect();
    let positives = nearest[..12].iter().cloned().fold(0.0, f64::max);
    let negatives = nearest[12..].iter().cloned().fold(f64::INFINITY, f64::min);
    assert!(positives < negatives, "{nearest:?}");
    let truth_path = dir.join("truth.csv");
    std::fs::write(&truth_path, truth).unwrap();
    let between = format!("{}", (positives + negatives) / 2.0);
    let o = run(&[
        "index",
        "evaluate",
        "--truth",
        s(&truth_path),
        s(&result),
        "--max-distance",
        &between,
        "--json",
    ]);
    let scores = json(&o);
    assert_eq!(
        (&scores["queries"], &scores["with_match"], &scores["k"]),
        (&14.into(), &12.into(), &3.into()),
        "{scores}"
    );
    assert_eq!(scores["without_match"], 2);
    assert_eq!(f(&scores["precision"]), 1.0);
    assert_eq!(f(&scores["recall"]), 1.0);
    assert_eq!(f(&scores["false_match_rate"]), 0.0);
    assert_eq!(f(&scores["recall_at"]["1"]), 1.0);
    assert!(scores["recall_at"]["5"].is_null());
    let below = format!(
        "{}",
        nearest.iter().cloned().fold(f64::INFINITY, f64::min) / 2.0
    );
    let o = run(&[
        "index",
        "evaluate",
        "--truth",
        s(&truth_path),
        s(&result),
        "--max-distance",
        &below,
        "--json",
    ]);
    let scores = json(&o);
    assert_eq!(scores["called"], 0, "{scores}");
    assert!(scores["precision"].is_null());
    assert_eq!(f(&scores["recall"]), 0.0);
    assert_eq!(f(&scores["recall_at"]["1"]), 1.0);
    let _ = std::fs::remove_dir_all(dir);
}
