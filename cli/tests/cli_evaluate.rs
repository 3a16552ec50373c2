//! `gst-dreamsim evaluate` on material the tests make: pictures drawn with
//! the `image` crate (coloured blocks), videos pushed frame by frame
//! through appsrc into raw-video Matroska (lossless: a still video's frames
//! are the same pixels), embedded by the fixture model tiny_ensemble.onnx.
//!
//! What is checked: identical images have diversity 0 and Vendi Score 1,
//! and k distinct images raise both with k; a still video is perfectly
//! consistent and one whose every other frame is replaced scores worse,
//! with its largest jump found; a re-encoded copy of an indexed image is
//! flagged with the indexed item's label; the JSON document and the CSV
//! agree; the cache makes a rerun run no model and resumes an interrupted
//! run; bad manifest lines and bad options exit 2 naming the line; no
//! output is written over an input; the HTML page renders in headless
//! Chromium with every picture loaded.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use common::*;
use gst::prelude::*;

const MODEL: &str = "tests/fixtures/tiny_ensemble.onnx";
const MODEL_ARGS: [&str; 6] = ["--model", MODEL, "--provider", "cpu", "--threads", "1"];

fn init() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        gst::init().unwrap();
    });
}

/// An empty folder for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "dreamsim-cli-evaluate-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A 4x4 grid of coloured blocks, 64x64 px, its colours from `seed`.
fn blocks(seed: u64) -> image::RgbImage {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut next = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as u8
    };
    let cells: Vec<[u8; 3]> = (0..16).map(|_| [next(), next(), next()]).collect();
    image::RgbImage::from_fn(64, 64, |x, y| {
        image::Rgb(cells[(y / 16 * 4 + x / 16) as usize])
    })
}

/// `evaluate ARGS --model ... --quiet`.
fn evaluate(args: &[&str]) -> std::process::Output {
    let mut v = vec!["evaluate"];
    v.extend_from_slice(args);
    v.extend_from_slice(&MODEL_ARGS);
    v.push("--quiet");
    run(&v)
}

fn json(o: &std::process::Output) -> serde_json::Value {
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

fn f(v: &serde_json::Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn group<'a>(doc: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    doc["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["id"] == id)
        .unwrap_or_else(|| panic!("no group {id}"))
}

fn item<'a>(doc: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    doc["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["id"] == id)
        .unwrap_or_else(|| panic!("no item {id}"))
}

/// `frames` at 10 frames/s as raw I420 video in Matroska (lossless).
fn video(path: &Path, frames: &[image::RgbImage]) {
    init();
    let (w, h) = frames[0].dimensions();
    let pipeline = gst::parse::launch(&format!(
        "appsrc name=src format=time caps=video/x-raw,format=RGB,width={w},height={h},framerate=10/1 \
         ! videoconvert ! video/x-raw,format=I420 ! matroskamux ! filesink location={}",
        path.display()
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let src = pipeline
        .by_name("src")
        .unwrap()
        .downcast::<gst_app::AppSrc>()
        .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    for (i, frame) in frames.iter().enumerate() {
        let mut buffer = gst::Buffer::from_slice(frame.as_raw().clone());
        {
            let b = buffer.get_mut().unwrap();
            b.set_pts(gst::ClockTime::from_mseconds(100 * i as u64));
            b.set_duration(gst::ClockTime::from_mseconds(100));
        }
        src.push_buffer(buffer).unwrap();
    }
    src.end_of_stream().unwrap();
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

/// A still video (20 identical frames) and one whose every other frame is
/// replaced by another picture.
fn still_and_flicker(dir: &Path) -> (PathBuf, PathBuf) {
    let (a, b) = (blocks(1), blocks(2));
    let still = dir.join("still.mkv");
    let flicker = dir.join("flicker.mkv");
    video(&still, &vec![a.clone(); 20]);
    let alternating: Vec<_> = (0..20)
        .map(|i| if i % 2 == 0 { a.clone() } else { b.clone() })
        .collect();
    video(&flicker, &alternating);
    (still, flicker)
}

#[test]
fn identical_images_have_no_diversity_and_distinct_ones_raise_it() {
    let dir = scratch("diversity");
    // Group same: four files of one picture; k2: two pictures twice each;
    // k4: four pictures.
    let mut rows = vec!["path,group".to_owned()];
    let mut write = |name: &str, seed: u64, group: &str| {
        blocks(seed).save(dir.join(name)).unwrap();
        rows.push(format!("{name},{group}"));
    };
    for i in 0..4 {
        write(&format!("same{i}.png"), 7, "same");
        write(&format!("two{i}.png"), 10 + i as u64 % 2, "k2");
        write(&format!("four{i}.png"), 20 + i as u64, "k4");
    }
    let manifest = dir.join("set.csv");
    std::fs::write(&manifest, rows.join("\n")).unwrap();
    let doc = json(&evaluate(&[
        "--manifest",
        s(&manifest),
        "--resamples",
        "200",
    ]));
    assert_eq!(doc["schema"], "gst-dreamsim-evaluate/1");
    let m = |g: &str, k: &str| f(&group(&doc, g)["metrics"][k]["value"]);
    assert!(m("same", "diversity") < 1e-6, "{}", m("same", "diversity"));
    assert!(
        (m("same", "vendi") - 1.0).abs() < 1e-4,
        "{}",
        m("same", "vendi")
    );
    assert_eq!(m("same", "near_duplicate_share"), 1.0);
    assert!(m("k2", "diversity") > 1e-3);
    assert!(m("k4", "diversity") > m("k2", "diversity"));
    assert!(m("k2", "vendi") > 1.0 + 1e-3 && m("k2", "vendi") <= 2.0 + 1e-6);
    assert!(m("k4", "vendi") > m("k2", "vendi") && m("k4", "vendi") <= 4.0 + 1e-6);
    // Images have no temporal figures; no reference, no index: absent.
    let one = item(&doc, "same0.png");
    assert_eq!(one["kind"], "image");
    for absent in [
        "temporal_prev",
        "reference_distance",
        "nearest_distance",
        "copy",
    ] {
        assert!(one["metrics"].get(absent).is_none(), "{absent} in {one}");
    }
    assert!(one["max_jump_at"].is_null());
    assert!(group(&doc, "same")["metrics"]
        .get("temporal_prev")
        .is_none());
    // Intervals: an interval around the value, over the items of the group.
    let d = &group(&doc, "k4")["metrics"]["diversity"];
    assert_eq!(d["n"], 4);
    let (lo, hi) = (f(&d["ci95"][0]), f(&d["ci95"][1]));
    assert!(lo <= hi, "{d}");
    assert_eq!(doc["overall"]["items"], 12);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_still_video_is_consistent_and_a_flickering_one_is_not() {
    let dir = scratch("temporal");
    let (still, flicker) = still_and_flicker(&dir);
    let doc = json(&evaluate(&[
        s(&still),
        s(&flicker),
        "--rate",
        "10",
        "--resamples",
        "50",
    ]));
    let still = item(&doc, s(&still));
    let flicker = item(&doc, s(&flicker));
    assert_eq!(still["kind"], "video");
    assert_eq!(still["frames"], 20, "every frame sampled at 10 frames/s");
    for k in ["temporal_prev", "temporal_first", "max_jump"] {
        assert!(f(&still["metrics"][k]) < 1e-5, "still {k}: {still}");
    }
    let (p, q) = (
        f(&flicker["metrics"]["temporal_prev"]),
        f(&flicker["metrics"]["max_jump"]),
    );
    assert!(p > 0.01, "{flicker}");
    // Every step is a jump between the two pictures: the mean is the jump.
    assert!((p - q).abs() < 1e-3, "{flicker}");
    // Half the frames are the first one's picture.
    let first = f(&flicker["metrics"]["temporal_first"]);
    assert!(first > 0.3 * p && first < 0.7 * p, "{flicker}");
    // The largest jump is into sampled frame 1, at 0.1 s.
    assert!(f(&flicker["max_jump_at"]["time_s"]) < 2.0);
    assert!(flicker["max_jump_at"]["frame"].as_u64().unwrap() >= 1);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_reencoded_copy_of_an_indexed_image_is_flagged_and_named() {
    let dir = scratch("copies");
    let known = dir.join("known");
    std::fs::create_dir_all(&known).unwrap();
    for (name, seed) in [("dog", 31), ("cat", 32), ("owl", 33)] {
        blocks(seed)
            .save(known.join(format!("{name}.png")))
            .unwrap();
    }
    let index = dir.join("known.dsindex");
    let mut add = vec!["index", "add", s(&index), s(&known)];
    add.extend_from_slice(&MODEL_ARGS);
    add.push("--quiet");
    assert_eq!(run(&add).status.code(), Some(0));
    // The cat, re-encoded as JPEG and scaled; a picture never indexed.
    let cat = image::open(known.join("cat.png")).unwrap().to_rgb8();
    let copy = dir.join("generated-copy.jpg");
    image::imageops::resize(&cat, 60, 60, image::imageops::FilterType::Triangle)
        .save(&copy)
        .unwrap();
    let fresh = dir.join("generated-fresh.png");
    blocks(99).save(&fresh).unwrap();
    let doc = json(&evaluate(&[s(&copy), s(&fresh), "--against", s(&index)]));
    let c = item(&doc, s(&copy));
    assert_eq!(c["nearest"]["label"], "cat", "{c}");
    assert_eq!(c["nearest"]["copy"], true);
    assert_eq!(c["metrics"]["copy"], 1.0);
    let n = item(&doc, s(&fresh));
    assert_eq!(n["nearest"]["copy"], false, "{n}");
    assert!(f(&n["metrics"]["nearest_distance"]) > f(&c["metrics"]["nearest_distance"]));
    assert_eq!(f(&doc["overall"]["metrics"]["copy_share"]["value"]), 0.5);
    let _ = std::fs::remove_dir_all(dir);
}

/// A mixed set: grouped images, a reference per item, two videos.
fn mixed_set(dir: &Path) -> PathBuf {
    let (still, flicker) = still_and_flicker(dir);
    let mut rows = vec![
        "path,reference,group,id".to_owned(),
        format!("{},{},clips,clip-still", s(&still), s(&flicker)),
        format!("{},,clips,clip-flicker", s(&flicker)),
    ];
    for i in 0..4u64 {
        blocks(40 + i).save(dir.join(format!("p{i}.png"))).unwrap();
        let reference = if i == 0 { "p1.png" } else { "" };
        rows.push(format!("p{i}.png,{reference},prompt-{},", i % 2));
    }
    let manifest = dir.join("set.csv");
    std::fs::write(&manifest, rows.join("\n") + "\n").unwrap();
    manifest
}

#[test]
fn json_and_csv_agree_and_the_cache_runs_no_model_the_second_time() {
    let dir = scratch("json-csv");
    let manifest = mixed_set(&dir);
    let cache = dir.join("cache.dsindex");
    let csv_path = dir.join("items.csv");
    let args = [
        "--manifest",
        s(&manifest),
        "--cache",
        s(&cache),
        "--csv",
        s(&csv_path),
        "--rate",
        "10",
        "--resamples",
        "100",
    ];
    let first = json(&evaluate(&args));
    assert_eq!(first["embedding"]["embedded"], 6);
    assert_eq!(first["embedding"]["cached"], 0);
    let mut csv = csv::Reader::from_path(&csv_path).unwrap();
    let header = csv.headers().unwrap().clone();
    let rows: Vec<csv::StringRecord> = csv.records().map(|r| r.unwrap()).collect();
    let items = first["items"].as_array().unwrap();
    assert_eq!(rows.len(), items.len());
    for (row, it) in rows.iter().zip(items) {
        let cell = |name: &str| {
            row.get(header.iter().position(|h| h == name).unwrap())
                .unwrap()
        };
        assert_eq!(cell("id"), it["id"].as_str().unwrap());
        assert_eq!(cell("kind"), it["kind"].as_str().unwrap());
        assert_eq!(cell("frames"), it["frames"].to_string());
        for metric in [
            "temporal_prev",
            "temporal_first",
            "max_jump",
            "reference_distance",
            "group_mean_distance",
        ] {
            match it["metrics"].get(metric) {
                // serde_json reads floats without correct rounding (its
                // float_roundtrip feature is off): equal up to the last digit.
                Some(v) => {
                    let (a, b) = (cell(metric).parse::<f64>().unwrap(), f(v));
                    assert!(
                        (a - b).abs() <= 1e-12 * b.abs().max(1.0),
                        "{metric}: {a} vs {b}"
                    );
                }
                None => assert_eq!(cell(metric), "", "{metric} absent in the JSON"),
            }
        }
    }
    // The still clip against the flicker clip: the frames paired by time
    // differ on every other frame.
    let still = item(&first, "clip-still");
    assert!(f(&still["metrics"]["reference_distance"]) > 0.0);
    assert!(f(&item(&first, "p0.png")["metrics"]["reference_distance"]) > 0.0);
    assert!(item(&first, "p1.png")["metrics"]
        .get("reference_distance")
        .is_none());
    // A rerun with other figures: no model run, the same embeddings.
    let mut other = args.to_vec();
    other.extend(["--near-duplicate", "0.5", "--workers", "2"]);
    let o = evaluate(&other);
    let second = json(&o);
    assert_eq!(second["embedding"]["embedded"], 0);
    assert_eq!(second["embedding"]["cached"], 6);
    assert_eq!(second["items"][0]["metrics"], first["items"][0]["metrics"]);
    assert_eq!(
        second["groups"][0]["metrics"]["diversity"]["value"],
        first["groups"][0]["metrics"]["diversity"]["value"]
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn an_interrupted_run_resumes_from_the_cache() {
    let dir = scratch("resume");
    for i in 0..3u64 {
        blocks(60 + i).save(dir.join(format!("{i}.png"))).unwrap();
    }
    // Not a picture: the run stops there, after the first two.
    std::fs::write(dir.join("3.png"), b"not a png").unwrap();
    let cache = dir.join("cache.dsindex");
    let o = evaluate(&[s(&dir), "--cache", s(&cache)]);
    assert_eq!(o.status.code(), Some(1));
    std::fs::remove_file(dir.join("3.png")).unwrap();
    let doc = json(&evaluate(&[s(&dir), "--cache", s(&cache)]));
    assert_eq!(doc["embedding"]["cached"], 3, "{}", doc["embedding"]);
    assert_eq!(doc["embedding"]["embedded"], 0);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_killed_run_resumes_from_the_cache() {
    let dir = scratch("killed");
    let set = dir.join("set");
    std::fs::create_dir_all(&set).unwrap();
    for i in 0..40u64 {
        blocks(100 + i)
            .save(set.join(format!("{i:02}.png")))
            .unwrap();
    }
    let cache = dir.join("cache.dsindex");
    let mut child = Command::new(env!("CARGO_BIN_EXE_gst-dreamsim"))
        .args([
            "evaluate",
            s(&set),
            "--cache",
            s(&cache),
            "--quiet",
            "--resamples",
            "0",
        ])
        .args(MODEL_ARGS)
        .current_dir(repo_root())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Killed (no clean exit) once the cache has grown past its first
    // written size (an empty index's), that is once it holds an entry.
    let started = std::time::Instant::now();
    let size = || std::fs::metadata(&cache).map_or(0, |m| m.len());
    let mut first = 0;
    while started.elapsed() < std::time::Duration::from_secs(60)
        && child.try_wait().unwrap().is_none()
    {
        match (first, size()) {
            (0, n) => first = n,
            (f, n) if n != f => break,
            _ => {}
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let _ = child.kill();
    let _ = child.wait();
    let doc = json(&evaluate(&[
        s(&set),
        "--cache",
        s(&cache),
        "--resamples",
        "0",
    ]));
    eprintln!("after the kill: {}", doc["embedding"]);
    let cached = doc["embedding"]["cached"].as_u64().unwrap();
    let embedded = doc["embedding"]["embedded"].as_u64().unwrap();
    assert!(cached >= 1, "{}", doc["embedding"]);
    assert_eq!(cached + embedded, 40);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn bad_manifest_lines_and_options_exit_2() {
    let dir = scratch("bad");
    blocks(1).save(dir.join("a.png")).unwrap();
    for (name, body, line) in [
        ("missing.csv", "path,group\na.png,g\nnone.png,g\n", "line 3"),
        ("columns.csv", "path,group\na.png,g,extra\n", "line 2"),
        ("header.csv", "file,group\na.png,g\n", "line 1"),
        ("twice.csv", "path,id\na.png,x\na.png,x\n", "line 3"),
        (
            "json.jsonl",
            "{\"path\":\"a.png\"}\n{\"path\":\"a.png\",\n",
            "line 2",
        ),
        ("type.jsonl", "{\"path\":\"a.png\",\"group\":3}\n", "line 1"),
        (
            "uri.jsonl",
            "{\"path\":\"http://example.com/a.png\"}\n",
            "line 1",
        ),
    ] {
        let list = dir.join(name);
        std::fs::write(&list, body).unwrap();
        let o = evaluate(&["--manifest", s(&list)]);
        assert_eq!(o.status.code(), Some(2), "{name}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(line), "{name}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let image = dir.join("a.png");
    for bad in [
        vec!["--copy-threshold", "3"],
        vec!["--near-duplicate", "nan"],
        vec!["--rate", "0"],
        vec!["--workers", "0"],
        vec!["--resamples", "-1"],
    ] {
        let mut args = vec![s(&image)];
        args.extend(bad.iter().copied());
        let o = evaluate(&args);
        assert_eq!(o.status.code(), Some(2), "{bad:?}");
    }
    // A FIFO as the manifest: refused, not read.
    let fifo = dir.join("fifo.csv");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let o = evaluate(&["--manifest", s(&fifo)]);
    assert_eq!(o.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn outputs_are_never_written_over_inputs() {
    let dir = scratch("overwrite");
    let a = dir.join("a.png");
    blocks(1).save(&a).unwrap();
    let before = std::fs::read(&a).unwrap();
    let manifest = dir.join("m.csv");
    std::fs::write(&manifest, "path\na.png\n").unwrap();
    let cache = dir.join("c.dsindex");
    for args in [
        vec![s(&a), "--json", s(&a)],
        vec![s(&a), "--csv", s(&a)],
        vec!["--manifest", s(&manifest), "--html", s(&manifest)],
        vec![s(&a), "--cache", s(&cache), "--csv", s(&cache)],
        vec![s(&a), "--json", "/tmp/x.json", "--html", "/tmp/x.json"],
    ] {
        let o = evaluate(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
    }
    assert_eq!(std::fs::read(&a).unwrap(), before);
    assert_eq!(std::fs::read_to_string(&manifest).unwrap(), "path\na.png\n");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_html_page_renders_with_every_picture_in_chromium() {
    let dir = scratch("html");
    let manifest = mixed_set(&dir);
    // Known items: p2's picture re-encoded is in the index.
    let known = dir.join("known");
    std::fs::create_dir_all(&known).unwrap();
    blocks(42).save(known.join("original.png")).unwrap();
    let index = dir.join("known.dsindex");
    let mut add = vec!["index", "add", s(&index), s(&known)];
    add.extend_from_slice(&MODEL_ARGS);
    add.push("--quiet");
    assert_eq!(run(&add).status.code(), Some(0));
    let html = dir.join("report.html");
    let o = evaluate(&[
        "--manifest",
        s(&manifest),
        "--against",
        s(&index),
        "--html",
        s(&html),
        "--json",
        s(&dir.join("run.json")),
        "--rate",
        "10",
        "--resamples",
        "50",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let page = std::fs::read_to_string(&html).unwrap();
    for section in [
        "distributions",
        "least-consistent",
        "copies",
        "least-diverse",
    ] {
        assert!(page.contains(&format!("id=\"{section}\"")), "{section}");
    }
    assert!(
        !page.contains("class=\"missing"),
        "a picture could not be made"
    );
    // Two videos x 2 frames of the jump; 5 closest items with their known
    // item; the least diverse group (2 items).
    assert_eq!(page.matches("class=\"pair jump\"").count(), 2);
    assert_eq!(page.matches("<img").count(), 4 + 5 * 2 + 2, "pictures");
    let probe = dir.join("probe.html");
    std::fs::write(
        &probe,
        page.replace(
            "</body>",
            "<script>window.addEventListener('load', () => { const i = [...document.images]; \
             document.body.setAttribute('data-loaded', i.filter(x => x.complete && \
             x.naturalWidth > 0).length + '/' + i.length); });</script></body>",
        ),
    )
    .unwrap();
    let profile = dir.join("profile");
    let dom = rendered_dom(&probe, &profile, &[]);
    assert!(
        dom.contains("data-loaded=\"16/16\""),
        "{}",
        &dom[..dom.len().min(600)]
    );
    assert!(dom.matches("class=\"hist\"").count() >= 3);
    let _ = std::fs::remove_dir_all(dir);
}
