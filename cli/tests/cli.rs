//! The `gst-dreamsim` tool, run as a user runs it (cargo's own build of the
//! binary, `CARGO_BIN_EXE_gst-dreamsim`), from the repository root, with the
//! fixture model, on bikes.mp4 (fetched by tools/fetch_test_media.sh, which
//! .ci/run calls) and on a clip made here.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::*;
use dreamsim_testsupport::gst_run;
use gst::prelude::*;

/// PySceneDetect 0.7.2's `scenedetect -i bikes.mp4 detect-adaptive
/// list-scenes` output, byte for byte.
const BIKES_CSV: &str = "\
Timecode List:,00:00:01.200,00:00:03.040,00:00:05.480,00:00:07.480,00:00:09.680
Scene Number,Start Frame,Start Timecode,Start Time (seconds),End Frame,End Timecode,End Time (seconds),Length (frames),Length (timecode),Length (seconds)
1,1,00:00:00.000,0.000,30,00:00:01.200,1.200,30,00:00:01.200,1.200
2,31,00:00:01.200,1.200,76,00:00:03.040,3.040,46,00:00:01.840,1.840
3,77,00:00:03.040,3.040,137,00:00:05.480,5.480,61,00:00:02.440,2.440
4,138,00:00:05.480,5.480,187,00:00:07.480,7.480,50,00:00:02.000,2.000
5,188,00:00:07.480,7.480,242,00:00:09.680,9.680,55,00:00:02.200,2.200
6,243,00:00:09.680,9.680,250,00:00:10.000,10.000,8,00:00:00.320,0.320
";

const MODEL: &str = "tests/fixtures/tiny_ensemble.onnx";
const REFERENCE: &str = "tests/fixtures/reference.png";

/// bikes.mp4, relative to the repository root; fetched by .ci/run, never by
/// a test.
fn bikes() -> &'static str {
    const BIKES: &str = ".cache/media/bikes.mp4";
    assert!(
        repo_root().join(BIKES).exists(),
        "{BIKES} is missing: run tools/fetch_test_media.sh (.ci/run does)"
    );
    BIKES
}

/// Runs a job on the fixture model and the CPU provider.
fn job(subcommand: &str, args: &[&str]) -> Output {
    let mut all = vec![subcommand, "--model", MODEL, "--provider", "cpu"];
    all.extend(args);
    run(&all)
}

/// A scratch directory for one test.
fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gst-dreamsim-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn scenes_writes_the_pyscenedetect_csv_and_an_edl_for_bikes() {
    let dir = scratch("scenes");
    let edl = dir.join("bikes.edl");
    let o = job(
        "scenes",
        &["--quiet", "--edl", edl.to_str().unwrap(), bikes()],
    );
    assert!(o.status.success());
    assert_eq!(stdout(&o), BIKES_CSV);
    assert_eq!(stderr(&o), "", "--quiet");
    let edl = std::fs::read_to_string(&edl).unwrap();
    let events: Vec<&str> = edl.lines().filter(|l| l.starts_with("00")).collect();
    assert_eq!(events.len(), 6);
    assert_eq!(
        events[0],
        "001  AX       V     C        00:00:00:00 00:00:01:05 00:00:00:00 00:00:01:05"
    );
    assert_eq!(
        events[5],
        "006  AX       V     C        00:00:09:17 00:00:10:00 00:00:09:17 00:00:10:00"
    );
    assert!(edl.starts_with("TITLE: bikes\nFCM: NON-DROP FRAME\n"));
    assert_eq!(edl.matches("* FROM CLIP NAME: bikes.mp4").count(), 6);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn scenes_fixed_mode_writes_a_csv_file_and_a_summary() {
    let dir = scratch("scenes-fixed");
    let csv = dir.join("scenes.csv");
    let o = job(
        "scenes",
        &[
            "--threshold",
            "0.06",
            "--output",
            csv.to_str().unwrap(),
            bikes(),
        ],
    );
    assert!(o.status.success());
    assert_eq!(std::fs::read_to_string(&csv).unwrap(), BIKES_CSV);
    assert!(stdout(&o).is_empty());
    let err = stderr(&o);
    assert!(
        err.contains("6 scenes in 250 frames") && err.contains("0, 30, 76, 137, 187, 242"),
        "summary: {err}"
    );
    assert!(
        !err.contains("ETA"),
        "no progress bar when standard error is not a terminal: {err}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn scenes_json_lists_the_same_scenes() {
    let o = job("scenes", &["--quiet", "--json", bikes()]);
    assert!(o.status.success());
    let doc: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("a JSON document");
    assert_eq!(doc["frames"], 250);
    assert_eq!(doc["framerate"], 25.0);
    let scenes = doc["scenes"].as_array().unwrap();
    let starts: Vec<u64> = scenes
        .iter()
        .map(|s| s["start_frame"].as_u64().unwrap())
        .collect();
    assert_eq!(starts, [0, 30, 76, 137, 187, 242]);
    assert_eq!(scenes[1]["end_frame"], 76);
    assert_eq!(scenes[1]["start_timecode"], "00:00:01.200");
    assert_eq!(scenes[5]["end_s"], 10.0);
}

/// `script` runs the tool on a pseudo-terminal (util-linux, in every Debian).
#[test]
fn scenes_draws_a_progress_bar_on_a_terminal() {
    let dir = scratch("scenes-terminal");
    let csv = dir.join("scenes.csv");
    let command = format!(
        "{} scenes --model {MODEL} --provider cpu --output {} {}",
        env!("CARGO_BIN_EXE_gst-dreamsim"),
        csv.display(),
        bikes()
    );
    let terminal = on_terminal(&command);
    // The bar's label and position, redrawn in place, then the summary.
    assert!(
        terminal.contains("scenes ") && terminal.contains(" 0:00:0"),
        "{terminal}"
    );
    assert!(terminal.contains("\r"), "redrawn in place: {terminal}");
    assert!(terminal.contains("6 scenes in 250 frames"), "{terminal}");
    assert_eq!(std::fs::read_to_string(&csv).unwrap(), BIKES_CSV);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn bad_usage_exits_with_2_and_points_at_the_help() {
    for args in [
        &["scenes", "--threshold", "0.1", "--window", "3", "x.mp4"][..],
        &["scenes", "--bogus", "x.mp4"],
        &["scenes", "--provider", "gpu", "x.mp4"],
        &["scenes"],
        &["dedup", "--threshold", "much", "x.mp4"],
        &["dedup", "--encoder", "x264enc", "x.mp4"],
        &["monitor", "only-one-argument"],
        &["monitor", "--consecutive", "0", "a.mp4", "b.png"],
        &["monitor", "--pipeline", "videotestsrc", "a.mp4", "b.png"],
        &["bench", "--model", "m.onnx"],
        &["bench", "--agreement", "--compare", "m2.onnx", "a.mp4"],
        &["distances", "--batch-size", "0", "a.mp4"],
        &["nonsense"],
        &[],
    ] {
        let o = run(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = stderr(&o);
        assert!(
            err.contains("Usage:") || err.starts_with("error: ") && err.contains("try '--help'"),
            "{args:?}: {err}"
        );
    }
    let o = run(&["scenes", "--provider", "gpu", "x.mp4"]);
    assert!(
        stderr(&o).contains("unknown execution provider `gpu`"),
        "the engine's own message"
    );
}

#[test]
fn every_help_shows_an_example() {
    let o = run(&["--help"]);
    assert!(o.status.success());
    for subcommand in ["distances", "scenes", "dedup", "monitor", "bench"] {
        assert!(stdout(&o).contains(subcommand), "listed: {subcommand}");
        for help in ["--help", "-h"] {
            let o = run(&[subcommand, help]);
            assert!(o.status.success(), "{subcommand} {help}");
            let text = stdout(&o);
            assert!(
                text.starts_with(&format!("Usage: gst-dreamsim {subcommand}"))
                    || text.contains(&format!("\nUsage: gst-dreamsim {subcommand}")),
                "{text}"
            );
            let example = text
                .split_once("Example")
                .unwrap_or_else(|| panic!("{subcommand} {help}: no example: {text}"))
                .1;
            assert!(
                example.contains(&format!("gst-dreamsim {subcommand} ")),
                "{subcommand} {help}: {text}"
            );
        }
    }
    let o = run(&["--version"]);
    assert_eq!(
        stdout(&o),
        format!("gst-dreamsim {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn errors_exit_with_1_and_say_what_is_wrong() {
    let o = run(&["dedup", "/nonexistent/video.mp4"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "gst-dreamsim: error: /nonexistent/video.mp4: no such file\n"
    );
    let o = job("monitor", &[bikes(), "/nonexistent/reference.png"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("/nonexistent/reference.png: no such image"));
    // The element's own error, when the model does not load.
    let o = run(&[
        "scenes",
        "--model",
        "/nonexistent/model.onnx",
        "--quiet",
        bikes(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.starts_with("gst-dreamsim: error: ") && err.contains("/nonexistent/model.onnx"),
        "{err}"
    );
}

#[test]
fn distances_writes_a_row_per_frame_as_csv_and_json() {
    let o = job("distances", &["--reference", REFERENCE, bikes()]);
    assert!(o.status.success());
    let csv = stdout(&o);
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows[0], "frame,time_s,distance,reference_distance");
    assert_eq!(rows.len(), 251, "a header and 250 frames");
    let first: Vec<&str> = rows[1].split(',').collect();
    assert_eq!(first[0], "0");
    assert_eq!(first[2], "", "the first frame has no previous one");
    assert!(first[3].parse::<f64>().unwrap() > 0.0, "{}", rows[1]);
    let err = stderr(&o);
    assert!(err.contains("250 frames analysed"), "{err}");
    assert!(
        err.contains("largest distances to the previous frame: frame 30: "),
        "the first cut is the largest change: {err}"
    );

    let o = job(
        "distances",
        &["--json", "--quiet", "--interval", "2", bikes()],
    );
    assert!(o.status.success());
    let doc: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("a JSON document");
    assert_eq!(doc["input"], bikes());
    assert_eq!(doc["provider"], "cpu");
    let frames = doc["frames"].as_array().unwrap();
    assert_eq!(frames.len(), 125, "one frame in 2");
    assert_eq!(frames[0]["frame"], 0);
    assert!(frames[0]["distance"].is_null());
    assert_eq!(frames[1]["frame"], 2);
    assert!(frames[1]["distance"].as_f64().unwrap() > 0.0);
    assert!(frames[1]["reference_distance"].is_null());
}

const W: usize = 64;
const H: usize = 48;

fn checker(size: usize) -> Vec<u8> {
    (0..H * W)
        .flat_map(|i| {
            let (x, y) = (i % W, i / W);
            if (x / size + y / size).is_multiple_of(2) {
                [230u8, 230, 230]
            } else {
                [20, 20, 60]
            }
        })
        .collect()
}

fn gradient(channel: usize) -> Vec<u8> {
    (0..H * W)
        .flat_map(|i| {
            let (x, y) = (i % W, i / W);
            let mut p = [40u8; 3];
            p[channel] = (x * 4) as u8;
            p[(channel + 1) % 3] = (y * 5) as u8;
            p
        })
        .collect()
}

fn noisy(image: &[u8], seed: u32) -> Vec<u8> {
    let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(12_345);
    image
        .iter()
        .map(|&v| {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (v as i32 + ((s >> 16) % 7) as i32 - 3).clamp(0, 255) as u8
        })
        .collect()
}

/// Writes a lossless clip (raw RGB in Matroska, 25 fps): frames 0-5 alike,
/// 6-11 near duplicates of one image, a cut at 12 and at 13, then 14-19
/// near duplicates. Frames 0, 6, 12, 13 and 14 are the ones to keep.
fn write_clip(path: &Path) {
    gst::init().unwrap();
    let pipeline = gst::parse::launch(&format!(
        "appsrc name=src format=time caps=video/x-raw,format=RGB,width={W},height={H},framerate=25/1 \
         ! matroskamux ! filesink location={}",
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
    let (a, b, c) = (checker(16), gradient(0), checker(4));
    let mut frames: Vec<Vec<u8>> = std::iter::repeat_n(a, 6).collect();
    frames.extend((0..6).map(|i| noisy(&b, i)));
    frames.push(gradient(1));
    frames.push(gradient(2));
    frames.extend((0..6).map(|i| noisy(&c, 10 + i)));
    pipeline.set_state(gst::State::Playing).unwrap();
    for (n, f) in frames.into_iter().enumerate() {
        let mut buffer = gst::Buffer::from_mut_slice(f);
        let b = buffer.get_mut().unwrap();
        b.set_pts(gst::ClockTime::from_mseconds(40 * n as u64));
        b.set_duration(gst::ClockTime::from_mseconds(40));
        src.push_buffer(buffer).unwrap();
    }
    src.end_of_stream().unwrap();
    let bus = pipeline.bus().unwrap();
    gst_run::read_bus_ok(
        &bus,
        gst::ClockTime::from_seconds(30),
        "writing the clip",
        |_| {},
    );
    pipeline.set_state(gst::State::Null).unwrap();
}

/// Frames in a video file.
fn count_frames(path: &Path) -> usize {
    gst::init().unwrap();
    let mut n = 0;
    gst_run::pull_samples(
        &format!(
            "filesrc location={} ! decodebin ! appsink name=sink sync=false",
            path.display()
        ),
        "sink",
        |_| n += 1,
    );
    n
}

#[test]
fn dedup_lists_the_kept_frames_and_writes_the_video() {
    let dir = scratch("dedup");
    let clip = dir.join("clip.mkv");
    write_clip(&clip);
    let list = dir.join("kept.csv");
    let mut args = vec!["--threshold", "0.01", "--output", list.to_str().unwrap()];
    let video = dir.join("dedup.mkv");
    let encoder = ["x264enc", "openh264enc", "vp8enc", "vp9enc", "avenc_mpeg4"]
        .into_iter()
        .any(|e| gst::ElementFactory::find(e).is_some());
    if encoder {
        args.extend(["--video", video.to_str().unwrap()]);
    } else {
        eprintln!("no video encoder installed: --video not tested");
    }
    args.push(clip.to_str().unwrap());
    let o = job("dedup", &args);
    assert!(o.status.success());
    assert_eq!(
        std::fs::read_to_string(&list).unwrap(),
        "Frame,Timecode,Time (seconds),Duration (seconds)\n\
         0,00:00:00.000,0.000,0.240\n\
         6,00:00:00.240,0.240,0.240\n\
         12,00:00:00.480,0.480,0.040\n\
         13,00:00:00.520,0.520,0.040\n\
         14,00:00:00.560,0.560,0.240\n"
    );
    assert!(stderr(&o).contains("kept 5 of 20 frames, dropped 15 (75.0 %)"));
    if encoder {
        assert_eq!(count_frames(&video), 5);
    }

    // Without --output the list goes to standard output.
    let o = job(
        "dedup",
        &[
            "--threshold",
            "0.01",
            "--max-drops",
            "2",
            "--quiet",
            clip.to_str().unwrap(),
        ],
    );
    assert!(o.status.success());
    let listed = stdout(&o);
    let frames: Vec<&str> = listed
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert_eq!(frames, ["0", "3", "6", "9", "12", "13", "14", "17"]);

    // The same list as JSON.
    let o = job(
        "dedup",
        &[
            "--threshold",
            "0.01",
            "--json",
            "--quiet",
            clip.to_str().unwrap(),
        ],
    );
    assert!(o.status.success());
    let doc: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("a JSON document");
    assert_eq!(
        (&doc["frames"], &doc["kept"], &doc["dropped"]),
        (&20.into(), &5.into(), &15.into())
    );
    let kept: Vec<u64> = doc["kept_frames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["frame"].as_u64().unwrap())
        .collect();
    assert_eq!(kept, [0, 6, 12, 13, 14]);
    assert_eq!(doc["kept_frames"][1]["timecode"], "00:00:00.240");
    assert_eq!(doc["kept_frames"][1]["duration_s"], 0.24);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn monitor_alerts_when_the_distance_passes_the_limit() {
    let o = job("monitor", &["--limit", "0.5", bikes(), REFERENCE]);
    assert_eq!(o.status.code(), Some(3), "alert exit status");
    let csv = stdout(&o);
    assert_eq!(csv.lines().count(), 251, "a header and 250 frames");
    assert!(csv.starts_with(
        "Frame,Timecode,Time (seconds),Reference Distance,Distance\n0,00:00:00.000,0.000,"
    ));
    let err = stderr(&o);
    assert!(err.contains("ALERT frame 30 at 00:00:01.200"), "{err}");
    assert!(err.contains("250 frames analysed"), "{err}");
    // Every row above the limit is covered by an alert; the largest
    // distance is under 2.
    let o = job(
        "monitor",
        &["--limit", "1.99", "--quiet", bikes(), REFERENCE],
    );
    assert_eq!(o.status.code(), Some(0));
    assert!(!stderr(&o).contains("ALERT"));
    // Stop at the first alert, from a pipeline of one's own, one frame in 2.
    let o = job(
        "monitor",
        &[
            "--limit",
            "0.5",
            "--stop-on-alert",
            "--every",
            "2",
            "--pipeline",
            &format!("filesrc location={} ! decodebin", bikes()),
            REFERENCE,
        ],
    );
    assert_eq!(o.status.code(), Some(3));
    let rows: Vec<String> = stdout(&o).lines().skip(1).map(str::to_owned).collect();
    assert_eq!(
        rows.last().unwrap().split(',').next(),
        Some("30"),
        "stopped at frame 30"
    );
    assert!(rows
        .iter()
        .all(|r| r.split(',').next().unwrap().parse::<u64>().unwrap() % 2 == 0));
    // JSON Lines, one object per analysed frame.
    let o = job(
        "monitor",
        &["--json", "--quiet", "--limit", "1.99", bikes(), REFERENCE],
    );
    assert_eq!(o.status.code(), Some(0));
    let lines: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON object per line"))
        .collect();
    assert_eq!(lines.len(), 250);
    assert_eq!(lines[30]["frame"], 30);
    assert_eq!(lines[30]["timecode"], "00:00:01.200");
    assert!(lines[30]["reference_distance"].as_f64().unwrap() > 0.5);
}

#[test]
fn bench_cuts_at_frames_writes_distances_and_checks_agreement() {
    let dir = scratch("bench");
    let csv = dir.join("distances.csv");
    let out = job(
        "bench",
        &[
            bikes(),
            "--frames",
            "12",
            "--threads",
            "1",
            "--batch-size",
            "4",
            "--agreement",
            "--distances",
            csv.to_str().unwrap(),
        ],
    );
    assert!(out.status.success());
    let text = stdout(&out);
    assert!(text.contains("decode only: 12 frames"), "{text}");
    // Both runs see exactly the first 12 frames, in batches of 4.
    assert_eq!(
        text.matches("\n  12 frames in ").count(),
        2,
        "the measured run and the fp32 run: {text}"
    );
    assert!(text.contains("model ran on 12 frames, 3 batches"), "{text}");
    assert!(
        text.contains("s model load: "),
        "the load is reported apart: {text}"
    );
    // The same provider and precision twice: identical distances.
    assert!(
        text.contains("agreement of cpu fp32 with cpu fp32 over 11 distances: max |delta| 0.000e0"),
        "{text}"
    );
    let rows: Vec<String> = std::fs::read_to_string(&csv)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(rows[0], "frame,distance");
    assert_eq!(rows.len(), 13, "{rows:?}");
    assert_eq!(rows[1], "0,", "the first frame has no distance");
    for (i, row) in rows[2..].iter().enumerate() {
        let (frame, d) = row.split_once(',').unwrap();
        assert_eq!(frame, (i + 1).to_string());
        assert!(d.parse::<f64>().unwrap() > 0.0, "{row}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// bikes.mp4 keeps its `moov` box at the end, so a copy cut in the middle
/// has no playable stream and qtdemux says so at once. decodebin drops the
/// errors of an element while it plugs it, and qtdemux's error sometimes
/// fell into that window (about one run in four): the job then waited
/// forever. Every run must now fail at once and say why.
#[test]
fn a_truncated_mp4_fails_at_once_every_time() {
    let dir = scratch("truncated");
    let whole = std::fs::read(repo_root().join(bikes())).unwrap();
    let half = whole.len() / 2;
    let moov = |b: &[u8]| b.windows(4).any(|w| w == b"moov");
    assert!(
        !moov(&whole[..half]) && moov(&whole[half..]),
        "bikes.mp4 has its moov box at the end"
    );
    let cut = dir.join("cut.mp4");
    std::fs::write(&cut, &whole[..half]).unwrap();
    let cut = cut.to_str().unwrap();
    let limit = std::time::Duration::from_secs(60);
    for attempt in 1..=12 {
        let o = run_within(
            &[
                "scenes",
                "--model",
                MODEL,
                "--provider",
                "cpu",
                "--threads",
                "1",
                cut,
            ],
            limit,
        )
        .unwrap_or_else(|| panic!("run {attempt}: still running after {limit:?}"));
        assert_eq!(o.status.code(), Some(1), "run {attempt}");
        assert!(
            stderr(&o).contains("no playable streams"),
            "run {attempt}: {}",
            stderr(&o)
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}
