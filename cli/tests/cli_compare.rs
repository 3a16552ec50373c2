//! `gst-dreamsim compare` (log, CSV, gate, HTML report rendered in headless
//! Chromium) and `--metrics` (Prometheus text scraped during a run), run as a
//! user runs them, with the fixture model, on clips made here with
//! GStreamer.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

const MODEL: &str = "tests/fixtures/tiny_ensemble.onnx";
const REFERENCE: &str = "tests/fixtures/reference.png";
const FRAMES: usize = 20;

/// A scratch directory for one test.
fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gst-dreamsim-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs a gst-launch description to EOS.
fn launch(description: &str) {
    gst::init().unwrap();
    dreamsim_testsupport::gst_run::run_to_end(description, gst::ClockTime::from_seconds(60));
}

/// A lossless reference clip (raw RGB in Matroska, 25 fps, moving test
/// pattern) and a JPEG re-encoded copy of it (AVI), in `dir`.
fn clips(dir: &Path) -> (PathBuf, PathBuf) {
    let reference = dir.join("ref.mkv");
    let copy = dir.join("copy.avi");
    launch(&format!(
        "videotestsrc pattern=smpte horizontal-speed=4 num-buffers={FRAMES} ! \
         video/x-raw,format=RGB,width=160,height=120,framerate=25/1 ! matroskamux ! \
         filesink location={}",
        reference.display()
    ));
    launch(&format!(
        "filesrc location={} ! matroskademux ! videoconvert ! jpegenc quality=10 ! avimux ! \
         filesink location={}",
        reference.display(),
        copy.display()
    ));
    (reference, copy)
}

/// Runs `gst-dreamsim compare` on the fixture model and the CPU provider.
fn compare(args: &[&str]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_gst-dreamsim"))
        .args(["compare", "--model", MODEL, "--provider", "cpu"])
        .args(args)
        .current_dir(repo_root())
        .output()
        .unwrap();
    eprintln!(
        "gst-dreamsim compare {}: {}\n{}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Every `dreamsim` metric of the log's frames.
fn distances(log: &Value, metric: &str) -> Vec<f64> {
    log["frames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["metrics"][metric].as_f64().unwrap())
        .collect()
}

#[test]
fn a_file_compared_with_itself_is_at_zero_in_the_json_and_csv_logs() {
    let dir = scratch("compare-self");
    let (reference, _) = clips(&dir);
    let (json, csv) = (dir.join("out.json"), dir.join("out.csv"));
    let o = compare(&[
        s(&reference),
        s(&reference),
        "--log",
        s(&json),
        "--csv",
        s(&csv),
    ]);
    assert_eq!(o.status.code(), Some(0));
    assert!(o.stdout.is_empty(), "the log went to --log");
    let log: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    // libvmaf's layout.
    assert!(log["version"]
        .as_str()
        .unwrap()
        .starts_with("gst-dreamsim "));
    assert_eq!(log["fps"], 25.0);
    assert_eq!(log["streams"]["dreamsim"], s(&reference));
    let frames = log["frames"].as_array().unwrap();
    assert_eq!(frames.len(), FRAMES);
    for (i, f) in frames.iter().enumerate() {
        assert_eq!(f["frameNum"], i as u64);
        assert_eq!(f["reference_frames"]["dreamsim"], i as u64);
    }
    let d = distances(&log, "dreamsim");
    assert!(d.iter().all(|d| d.abs() <= 1e-6), "{d:?}");
    let pooled = &log["pooled_metrics"]["dreamsim"];
    assert_eq!(pooled["frames"], FRAMES as u64);
    assert_eq!(pooled["unpaired"], 0);
    for key in ["min", "max", "mean", "harmonic_mean", "p5", "p50", "p95"] {
        assert!(pooled[key].as_f64().unwrap().abs() <= 1e-6, "{key}");
    }
    // CSV: Frame,dreamsim, one row per frame, the same distances.
    let csv = std::fs::read_to_string(&csv).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("Frame,dreamsim"));
    let rows: Vec<(u64, f64)> = lines
        .map(|l| {
            let (f, d) = l.split_once(',').unwrap();
            (f.parse().unwrap(), d.parse().unwrap())
        })
        .collect();
    assert_eq!(rows.len(), FRAMES);
    assert!(rows
        .iter()
        .enumerate()
        .all(|(i, &(f, v))| f == i as u64 && (v - d[i]).abs() <= 1e-12));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_reencoded_copy_is_at_a_distance_and_fail_above_gates_on_it() {
    let dir = scratch("compare-copy");
    let (reference, copy) = clips(&dir);
    // Two tested streams: the copy and the reference itself; log on stdout.
    let o = compare(&[s(&reference), s(&copy), s(&reference)]);
    assert_eq!(o.status.code(), Some(0));
    let log: Value = serde_json::from_slice(&o.stdout).unwrap();
    let copy_d = distances(&log, "dreamsim");
    let self_d = distances(&log, "dreamsim_1");
    assert_eq!(copy_d.len(), FRAMES);
    assert!(copy_d.iter().all(|&d| d > 1e-5), "{copy_d:?}");
    assert!(self_d.iter().all(|d| d.abs() <= 1e-6), "{self_d:?}");
    let pooled = &log["pooled_metrics"]["dreamsim"];
    let (mean, max) = (
        pooled["mean"].as_f64().unwrap(),
        pooled["max"].as_f64().unwrap(),
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains(&format!("{} (dreamsim): {FRAMES} frames", s(&copy))));

    // The gate: on the mean by default, on the max with --fail-on max.
    let code = |args: &[&str]| {
        let mut all = vec![s(&reference), s(&copy), "--quiet", "--csv", "/dev/null"];
        all.extend(args);
        compare(&all).status.code()
    };
    let under_mean = format!("{}", mean * 0.99);
    let over_mean = format!("{}", mean * 1.01);
    let under_max = format!("{}", max * 0.99);
    let over_max = format!("{}", max * 1.01);
    assert_eq!(code(&["--fail-above", &under_mean]), Some(4));
    assert_eq!(code(&["--fail-above", &over_mean]), Some(0));
    assert_eq!(
        code(&["--fail-above", &over_mean, "--fail-on", "max"]),
        Some(4)
    );
    assert_eq!(
        code(&["--fail-above", &over_max, "--fail-on", "max"]),
        Some(0)
    );
    assert_eq!(
        code(&["--fail-above", &under_max, "--fail-on", "max"]),
        Some(4)
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_html_report_renders_with_every_thumbnail_in_chromium() {
    let browser = chromium();
    let dir = scratch("compare-html");
    let (reference, copy) = clips(&dir);
    // A long file name with no place to break a line (no space, hyphen or
    // slash in it): the pooled table must still fit a 1280-pixel window.
    let long =
        dir.join("copy_of_the_reference_encoded_as_motion_jpeg_at_quality_10_for_the_report.avi");
    std::fs::copy(&copy, &long).unwrap();
    let copy = long;
    let html = dir.join("report.html");
    let o = compare(&[
        s(&reference),
        s(&copy),
        "--html",
        s(&html),
        "--worst",
        "3",
        "--quiet",
    ]);
    assert_eq!(o.status.code(), Some(0));
    assert!(o.stdout.is_empty(), "--html alone writes no JSON log");
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("<svg"));
    assert_eq!(
        page.matches("<img").count(),
        6,
        "3 worst frames, 2 pictures each"
    );
    // The plot's y axis follows the data: its top a tenth above the largest
    // distance (the first worst frame's), whatever the threshold (0.2), and
    // the threshold's line drawn only when it falls inside.
    let number_after = |key: &str| -> f64 {
        let at = page
            .find(key)
            .unwrap_or_else(|| panic!("no {key} in the page"))
            + key.len();
        let rest = &page[at..];
        let end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == 'e' || c == '-'))
            .unwrap();
        rest[..end].parse().unwrap()
    };
    let y_max = number_after("data-y-max=\"");
    let largest = number_after(": distance ");
    assert!(
        // The page prints the distance with 4 decimals.
        (y_max / 1.1 - largest.max(1e-4)).abs() <= 6e-5,
        "y axis to {y_max}, largest distance {largest}"
    );
    assert_eq!(
        page.contains("class=\"threshold\""),
        0.2 <= y_max,
        "threshold line with the y axis to {y_max}"
    );
    // A copy of the page whose script counts the images that loaded.
    let probe = dir.join("probe.html");
    std::fs::write(
        &probe,
        page.replace(
            "</body>",
            "<script>window.addEventListener('load', () => { const i = [...document.images]; \
             document.body.setAttribute('data-loaded', i.filter(x => x.complete && \
             x.naturalWidth > 0).length + '/' + i.length); \
             document.body.setAttribute('data-width', Math.ceil(Math.max(\
             document.querySelector('table').getBoundingClientRect().right, \
             document.documentElement.scrollWidth))); });</script></body>",
        ),
    )
    .unwrap();
    let profile = dir.join("profile");
    let dom = rendered_dom(&probe, &profile, &["--window-size=1280,1400"]);
    assert!(
        dom.contains("data-loaded=\"6/6\""),
        "{}",
        &dom[..dom.len().min(400)]
    );
    // Nothing wider than the window: the pooled table wraps its long name.
    let width: u32 = dom
        .split_once("data-width=\"")
        .and_then(|(_, rest)| rest.split('"').next())
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("no width: {}", &dom[..dom.len().min(400)]));
    assert!(
        width <= 1280,
        "the page is {width} px wide in a 1280-px window"
    );
    // A screenshot, for a person to look at (not blank: a PNG of some size).
    let png = dir.join("report.png");
    let out = Command::new(browser)
        .args(chromium_args(&profile))
        .arg(format!("--screenshot={}", png.display()))
        .arg("--window-size=1000,1400")
        .arg(format!("file://{}", html.display()))
        .stderr(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success());
    let size = std::fs::metadata(&png).unwrap().len();
    assert!(size > 20_000, "a screenshot of {size} bytes");
    if let Ok(keep) = std::env::var("DREAMSIM_KEEP_REPORT") {
        std::fs::copy(&html, Path::new(&keep).join("report.html")).unwrap();
        std::fs::copy(&png, Path::new(&keep).join("report.png")).unwrap();
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// `GET /metrics` on `address`: the body.
fn scrape(address: &str) -> String {
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    write!(stream, "GET /metrics HTTP/1.0\r\nHost: {address}\r\n\r\n").unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.0 200"), "{head}");
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    body.to_owned()
}

/// Checks the text format (every sample line a name, labels and a number;
/// every metric with HELP and TYPE) and returns `name{labels}` -> value.
fn parse_prometheus(text: &str) -> std::collections::HashMap<String, f64> {
    let mut samples = std::collections::HashMap::new();
    let mut typed = std::collections::HashSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            assert!(
                text.contains(&format!("# HELP {name} ")),
                "no HELP for {name}"
            );
            typed.insert(name.to_owned());
        } else if !line.starts_with('#') && !line.is_empty() {
            let (key, value) = line.rsplit_once(' ').unwrap();
            let value: f64 = value.parse().unwrap_or_else(|_| panic!("{line}"));
            let name = key.split('{').next().unwrap();
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .filter(|b| typed.contains(*b))
                .unwrap_or(name);
            assert!(typed.contains(base), "{name} without TYPE");
            samples.insert(key.to_owned(), value);
        }
    }
    samples
}

#[test]
fn monitor_serves_prometheus_metrics_that_rise_during_the_run() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gst-dreamsim"))
        .args([
            "monitor",
            "--model",
            MODEL,
            "--provider",
            "cpu",
            "--metrics",
            "127.0.0.1:0",
            "--limit",
            "0",
            "--pipeline",
            "videotestsrc is-live=true num-buffers=100 pattern=ball ! \
             video/x-raw,width=64,height=64,framerate=25/1",
            REFERENCE,
        ])
        .current_dir(repo_root())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let address = line
        .trim()
        .strip_prefix("gst-dreamsim: metrics on http://")
        .and_then(|l| l.strip_suffix("/metrics"))
        .unwrap_or_else(|| panic!("no metrics address: {line:?}"))
        .to_owned();
    assert!(address.starts_with("127.0.0.1:"), "{address}");
    std::thread::spawn(move || {
        // The rest of standard error, so that the job never blocks on it.
        let mut rest = String::new();
        let _ = stderr.read_to_string(&mut rest);
    });
    let frames = "dreamsim_frames_analysed_total{stream=\"input\"}";
    let count = "dreamsim_reference_distance_count{stream=\"input\"}";
    let started = Instant::now();
    let first = loop {
        let m = parse_prometheus(&scrape(&address));
        if m.get(frames).is_some_and(|&n| n > 0.0) {
            break m;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no frame analysed"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    std::thread::sleep(Duration::from_secs(1));
    let second = parse_prometheus(&scrape(&address));
    eprintln!(
        "first: {:?}\nsecond: {:?}",
        first.get(frames),
        second.get(frames)
    );
    assert!(second[frames] > first[frames]);
    assert!(second[count] > first[count]);
    assert_eq!(second[count], second[frames]);
    assert!(
        second["dreamsim_alerts_total{stream=\"input\"}"] >= 1.0,
        "--limit 0"
    );
    assert!(second["dreamsim_inference_seconds_total"] > 0.0);
    let last = second["dreamsim_last_reference_distance{stream=\"input\"}"];
    assert!((0.0..=2.0).contains(&last));
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(3), "--limit 0 raised an alert");
}
