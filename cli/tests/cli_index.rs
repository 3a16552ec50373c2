//! `gst-dreamsim index`, run as a user runs it: sets built from folders of
//! images and a video that the tests make (GStreamer test patterns, the
//! fixture picture, frames of bikes.mp4), with the fixture model; then
//! queried, trimmed, copied between files and PostgreSQL, and matched in a
//! `dreamsim ! dreamsimmatch` pipeline.
//!
//! Random-weight fixture models are not perceptual: only copies equal up to
//! resampling and compression are expected to match, and the "unrelated"
//! pictures are test patterns measured to be far from everything in the
//! set (the nearest at about 0.15 where copies are below 1e-3).
//!
//! The PostgreSQL test needs a server with pgvector (`DREAMSIM_TEST_PG`, a
//! postgresql:// URI; `tools/pg_test_server.sh start` prints one): ignored
//! by default, `.ci/run` runs it with `--ignored`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use common::*;
use dreamsim_testsupport::gst_run;
use gst::prelude::*;
use gstdreamsim::meta::DreamSimMeta;
use gstdreamsim::MatchMessage;

const MODEL: &str = "tests/fixtures/tiny_ensemble.onnx";
const OTHER_MODEL: &str = "tests/fixtures/tiny_dino.onnx";
const REFERENCE: &str = "tests/fixtures/reference.png";
const NEEDS_PG: &str = "needs PostgreSQL + pgvector in DREAMSIM_TEST_PG (.ci/run starts one)";

fn init() {
    gst::init().unwrap();
    gstdreamsim::plugin_register_static().unwrap();
}

/// An empty folder for one test.
fn scratch(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("dreamsim-cli-index-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `run`, which must succeed; its standard output.
fn run_ok(args: &[&str]) -> String {
    let output = run(args);
    assert!(output.status.success(), "gst-dreamsim {}", args.join(" "));
    String::from_utf8(output.stdout).unwrap()
}

/// The model options every command that embeds takes.
const MODEL_ARGS: [&str; 6] = ["--model", MODEL, "--provider", "cpu", "--threads", "1"];

/// `gst-dreamsim index VERB INDEX ARGS... --model ...`.
fn index_cmd<'a>(verb: &'a str, index: &'a str, args: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["index", verb, index];
    v.extend_from_slice(args);
    v.extend_from_slice(&MODEL_ARGS);
    v
}

/// Runs a gst-launch description to its end.
fn gst_run(description: &str) {
    init();
    gst_run::run_to_end(description, gst::ClockTime::from_seconds(60));
}

/// A 320x240 PNG of a videotestsrc pattern.
fn pattern_png(path: &Path, pattern: &str) {
    gst_run(&format!(
        "videotestsrc pattern={pattern} num-buffers=1 ! video/x-raw,width=320,height=240 \
         ! videoconvert ! pngenc ! filesink location={}",
        path.display()
    ));
}

/// `src` rescaled to WxH and recompressed as a JPEG (quality 60).
fn jpeg_copy(src: &Path, dest: &Path, width: u32, height: u32) {
    gst_run(&format!(
        "filesrc location={} ! pngdec ! videoconvert ! videoscale \
         ! video/x-raw,width={width},height={height} ! jpegenc quality=60 \
         ! filesink location={}",
        repo_root().join(src).display(),
        dest.display()
    ));
}

/// A 2-second MJPEG AVI of the moving ball at 10 fps: sampled at 0 s and 1 s.
fn ball_clip(path: &Path) {
    gst_run(&format!(
        "videotestsrc pattern=ball num-buffers=20 \
         ! video/x-raw,width=320,height=240,framerate=10/1 ! videoconvert ! jpegenc \
         ! avimux ! filesink location={}",
        path.display()
    ));
}

/// A folder of 4 pictures and a video, with a labels CSV:
/// reference.png ("known, picture"), smpte.png (`hostile`), pinwheel.png,
/// colors.png, clip.avi (2 frames sampled).
fn picture_folder(dir: &Path, hostile: &str) -> (PathBuf, PathBuf) {
    let set = dir.join("set");
    std::fs::create_dir_all(set.join("more")).unwrap();
    std::fs::copy(repo_root().join(REFERENCE), set.join("reference.png")).unwrap();
    pattern_png(&set.join("smpte.png"), "smpte");
    pattern_png(&set.join("more/pinwheel.png"), "pinwheel");
    pattern_png(&set.join("more/colors.png"), "colors");
    ball_clip(&set.join("clip.avi"));
    std::fs::write(set.join("notes.txt"), "not a picture").unwrap();
    let labels = dir.join("labels.csv");
    std::fs::write(
        &labels,
        format!(
            "path,label\n{},\"known, picture\"\n{},{hostile}\n",
            set.join("reference.png").display(),
            set.join("smpte.png").display()
        ),
    )
    .unwrap();
    (set, labels)
}

fn info_json(index: &str, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["index", "info", index, "--json"];
    args.extend_from_slice(extra);
    serde_json::from_str(&run_ok(&args)).unwrap()
}

/// CSV rows of a query, split into fields (labels here have no quotes
/// except "known, picture", rejoined).
fn rows(csv: &str) -> Vec<Vec<String>> {
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("input,timestamp,rank,id,label,distance,source")
    );
    lines
        .map(|l| {
            let l = l.replace("\"known, picture\"", "known; picture");
            l.split(',').map(str::to_owned).collect()
        })
        .collect()
}

fn query_json(index: &str, input: &str, extra: &[&str]) -> serde_json::Value {
    let mut args = vec![input, "--json"];
    args.extend_from_slice(extra);
    serde_json::from_str(&run_ok(&index_cmd("query", index, &args))).unwrap()
}

#[test]
fn a_folder_becomes_a_set_once_and_is_queried() {
    let dir = scratch("build");
    let (set, labels) = picture_folder(&dir, "plain");
    let index = dir.join("known.dsindex");
    let index = index.to_str().unwrap();
    let (set_s, labels_s) = (set.to_str().unwrap(), labels.to_str().unwrap());

    let first = run(&index_cmd("add", index, &[set_s, "--labels", labels_s]));
    assert!(first.status.success());
    assert!(
        stderr(&first).contains("6 added, 0 already present, 0 failed; 6 entries"),
        "4 pictures and 2 frames of the clip; notes.txt skipped"
    );
    let info = info_json(index, &[]);
    assert_eq!(info["backend"], "embedded");
    assert_eq!(info["entries"], 6);
    assert_eq!(info["quantization"], "f16");
    assert_eq!(info["model"]["kind"], "fixture_ensemble");
    assert_eq!(info["model"]["dim"], 32);
    assert!(info["size_bytes"].as_u64().unwrap() > 0);

    // The same folder again, and one of its files named on its own.
    let again = run(&index_cmd(
        "add",
        index,
        &[set_s, set.join("smpte.png").to_str().unwrap()],
    ));
    assert!(again.status.success());
    // The five image files (smpte.png twice) are known by their hash and
    // never reach the model; the clip's frames are sampled and embedded
    // again (its sampling may differ from run to run) and found present.
    assert!(
        stderr(&again).contains(
            "0 added, 7 already present (5 images known by their file hash, not decoded)"
        ),
        "{}",
        stderr(&again)
    );
    assert_eq!(info_json(index, &[])["entries"], 6);

    // A rescaled JPEG copy of the picture finds it first, nearly at 0.
    let copy = dir.join("copy.jpg");
    jpeg_copy(Path::new(REFERENCE), &copy, 200, 150);
    let found = rows(&run_ok(&index_cmd(
        "query",
        index,
        &[copy.to_str().unwrap(), "-k", "3"],
    )));
    assert_eq!(found.len(), 3);
    assert_eq!(found[0][4], "known; picture");
    let d: f64 = found[0][5].parse().unwrap();
    assert!(d < 0.01, "copy at {d}");
    assert!(found[1][5].parse::<f64>().unwrap() > 10.0 * d.max(1e-4));

    // An unrelated picture finds nothing near.
    let unrelated = dir.join("gradient.png");
    pattern_png(&unrelated, "gradient");
    let far = query_json(index, unrelated.to_str().unwrap(), &["-k", "1"]);
    let nearest = far["queries"][0]["matches"][0]["distance"]
        .as_f64()
        .unwrap();
    assert!(
        nearest > 0.05,
        "the unrelated picture's nearest is at {nearest}"
    );

    // The clip queried frame by frame finds its own sampled frames.
    let clip = rows(&run_ok(&index_cmd(
        "query",
        index,
        &[set.join("clip.avi").to_str().unwrap(), "-k", "1"],
    )));
    let times: Vec<&str> = clip.iter().map(|r| r[1].as_str()).collect();
    assert_eq!(times, ["00:00:00.000", "00:00:01.000"]);
    for r in &clip {
        assert_eq!(r[4], format!("clip@{}", r[1]));
        assert!(r[5].parse::<f64>().unwrap() < 1e-3);
        assert!(r[6].ends_with(&format!("clip.avi@{}", r[1])));
    }

    // Removing the picture: its copy no longer finds it.
    let id = found[0][3].clone();
    assert!(run(&["index", "remove", index, &id]).status.success());
    assert_eq!(info_json(index, &[])["entries"], 5);
    let after = rows(&run_ok(&index_cmd(
        "query",
        index,
        &[copy.to_str().unwrap(), "-k", "1"],
    )));
    assert_ne!(after[0][3], id);
    let missing = run(&["index", "remove", index, "9999"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(stderr(&missing).contains("no entry with id 9999"));
}

/// `index add` embeds pictures with its own engine and a video's frames in
/// a `dreamsim` pipeline: one model, loaded once (the element takes the
/// tool's model from the process's model pool, and says so in its log).
#[test]
fn index_add_loads_the_model_once_for_pictures_and_a_video() {
    let dir = scratch("once");
    let set = dir.join("set");
    std::fs::create_dir_all(&set).unwrap();
    std::fs::copy(repo_root().join(REFERENCE), set.join("reference.png")).unwrap();
    ball_clip(&set.join("clip.avi"));
    let index = dir.join("once.dsindex");
    let output = Command::new(env!("CARGO_BIN_EXE_gst-dreamsim"))
        .args(index_cmd(
            "add",
            index.to_str().unwrap(),
            &[set.to_str().unwrap()],
        ))
        .current_dir(repo_root())
        .env("GST_DEBUG", "dreamsim:4")
        .env("GST_DEBUG_NO_COLOR", "1")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{err}");
    assert!(
        err.contains("3 added, 0 already present, 0 failed"),
        "{err}"
    );
    assert_eq!(
        err.matches("loaded earlier in this process (model pool)")
            .count(),
        1,
        "the clip's element runs the model the tool loaded: {err}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn export_and_import_between_files_keep_the_answers() {
    let dir = scratch("copy");
    let (set, labels) = picture_folder(&dir, "plain");
    let index = dir.join("a.dsindex");
    let index = index.to_str().unwrap();
    run_ok(&index_cmd(
        "add",
        index,
        &[set.to_str().unwrap(), "--labels", labels.to_str().unwrap()],
    ));
    let copy = dir.join("copy.jpg");
    jpeg_copy(Path::new(REFERENCE), &copy, 160, 120);
    let copy = copy.to_str().unwrap();
    let want = run_ok(&index_cmd("query", index, &[copy, "-k", "6"]));

    let exported = dir.join("b.dsindex");
    let exported = exported.to_str().unwrap();
    run_ok(&["index", "export", index, exported]);
    let imported = dir.join("c.dsindex");
    let imported = imported.to_str().unwrap();
    run_ok(&[
        "index",
        "import",
        imported,
        exported,
        "--quantization",
        "f16",
    ]);
    for other in [exported, imported] {
        assert_eq!(info_json(other, &[])["entries"], 6);
        assert_eq!(run_ok(&index_cmd("query", other, &[copy, "-k", "6"])), want);
    }
    // Importing into a copy again: the ids are taken, a clear error, and
    // nothing changes.
    let again = run(&["index", "import", imported, index]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        stderr(&again).contains("id 1 is already in index"),
        "{}",
        stderr(&again)
    );
    assert_eq!(info_json(imported, &[])["entries"], 6);
}

#[test]
fn the_graph_and_search_breadth_can_be_chosen_and_a_file_keeps_its_graph() {
    let dir = scratch("graph");
    let (set, labels) = picture_folder(&dir, "plain");
    let index = dir.join("g.dsindex");
    let index = index.to_str().unwrap();
    run_ok(&index_cmd(
        "add",
        index,
        &[
            set.to_str().unwrap(),
            "--labels",
            labels.to_str().unwrap(),
            "--connectivity",
            "8",
            "--expansion-add",
            "32",
        ],
    ));
    assert_eq!(info_json(index, &[])["connectivity"], 8);
    let more = dir.join("more.png");
    pattern_png(&more, "checkers-8");
    run_ok(&index_cmd(
        "add",
        index,
        &[more.to_str().unwrap(), "--connectivity", "32"],
    ));
    let info = info_json(index, &[]);
    assert_eq!(info["entries"], 7);
    assert_eq!(info["connectivity"], 8, "an existing file keeps its graph");

    let copy = dir.join("copy.jpg");
    jpeg_copy(Path::new(REFERENCE), &copy, 160, 120);
    let found = query_json(index, copy.to_str().unwrap(), &["--ef-search", "1"]);
    assert_eq!(found["queries"][0]["matches"][0]["label"], "known, picture");
    let refused = run(&index_cmd(
        "query",
        index,
        &[copy.to_str().unwrap(), "--ef-search", "0"],
    ));
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        stderr(&refused).contains("--ef-search"),
        "{}",
        stderr(&refused)
    );
}

#[test]
fn another_models_query_is_a_clear_error() {
    let dir = scratch("mismatch");
    let index = dir.join("a.dsindex");
    let index = index.to_str().unwrap();
    run_ok(&index_cmd("add", index, &[REFERENCE]));
    let output = run(&[
        "index",
        "query",
        index,
        REFERENCE,
        "--model",
        OTHER_MODEL,
        "--provider",
        "cpu",
    ]);
    assert_eq!(output.status.code(), Some(1));
    let e = stderr(&output);
    assert!(
        e.contains("cannot be compared") && e.contains("fixture_ensemble"),
        "{e}"
    );
    // Adding with it is refused the same way, and adds nothing.
    let add = run(&[
        "index",
        "add",
        index,
        REFERENCE,
        "--model",
        OTHER_MODEL,
        "--provider",
        "cpu",
    ]);
    assert_eq!(add.status.code(), Some(1));
    assert!(stderr(&add).contains("cannot be compared"));
    assert_eq!(info_json(index, &[])["entries"], 1);
}

#[test]
fn unreadable_files_are_reported_and_skipped() {
    let dir = scratch("bad");
    let set = dir.join("set");
    std::fs::create_dir_all(&set).unwrap();
    std::fs::write(set.join("broken.png"), "not a png").unwrap();
    std::fs::write(set.join("broken.mp4"), "not a video").unwrap();
    pattern_png(&set.join("smpte.png"), "smpte");
    let index = dir.join("a.dsindex");
    let index = index.to_str().unwrap();
    let missing = dir.join("missing.png");
    let output = run(&index_cmd(
        "add",
        index,
        &[set.to_str().unwrap(), missing.to_str().unwrap()],
    ));
    assert_eq!(
        output.status.code(),
        Some(1),
        "failures end in a non-zero exit"
    );
    let e = stderr(&output);
    assert!(e.contains("1 added, 0 already present, 3 failed"), "{e}");
    for name in ["broken.png", "broken.mp4", "missing.png"] {
        assert!(
            e.contains(&format!("failed: {}", dir.display())) && e.contains(name),
            "{e}"
        );
    }
    assert_eq!(info_json(index, &[])["entries"], 1);
}

#[test]
fn a_password_in_a_uri_is_never_printed() {
    let output = run(&[
        "index",
        "info",
        "postgresql://moderator:s3cret@127.0.0.1:1/sets",
    ]);
    assert_eq!(output.status.code(), Some(1));
    let e = stderr(&output);
    assert!(!e.contains("s3cret"), "{e}");
    assert!(e.contains("moderator:***@127.0.0.1:1"), "{e}");
}

// ---- end to end: a set built with the tool, matched in a pipeline

/// Frames 25, 125 and 225 of bikes.mp4 (three scenes) as PNGs.
fn bikes_photos(dir: &Path) -> Vec<PathBuf> {
    let bikes = repo_root().join(".cache/media/bikes.mp4");
    assert!(
        bikes.exists(),
        ".cache/media/bikes.mp4 is missing: run tools/fetch_test_media.sh (.ci/run does)"
    );
    init();
    let mut paths = Vec::new();
    let mut n = 0;
    let description = format!(
        "filesrc location={} ! decodebin ! videoconvert ! video/x-raw,format=RGB \
         ! appsink name=sink sync=false",
        bikes.display()
    );
    gst_run::pull_samples(&description, "sink", |sample| {
        if [25, 125, 225].contains(&n) {
            let caps = sample.caps().unwrap().structure(0).unwrap().to_owned();
            let (w, h) = (
                caps.get::<i32>("width").unwrap(),
                caps.get::<i32>("height").unwrap(),
            );
            let raw = dir.join(format!("bikes{n}.rgb"));
            let map = sample.buffer().unwrap().map_readable().unwrap();
            std::fs::write(&raw, map.as_slice()).unwrap();
            let png = dir.join(format!("bikes{n}.png"));
            gst_run(&format!(
                "filesrc location={} blocksize={} ! rawvideoparse format=rgb width={w} height={h} \
                 ! videoconvert ! pngenc ! filesink location={}",
                raw.display(),
                map.size(),
                png.display()
            ));
            std::fs::remove_file(&raw).unwrap();
            paths.push(png);
        }
        n += 1;
    });
    assert_eq!(paths.len(), 3);
    paths
}

/// `imagefreeze` of `png` for `n` frames at 320x240 (rescaled), as a concat input.
fn frozen(png: &Path, n: u32) -> String {
    format!(
        "filesrc location={} ! pngdec ! videoconvert ! videoscale \
         ! video/x-raw,width=320,height=240,pixel-aspect-ratio=1/1 ! imagefreeze num-buffers={n} \
         ! video/x-raw,framerate=25/1 ! videoconvert ! c. ",
        png.display()
    )
}

/// `n` frames of a pattern unrelated to the set (measured through this
/// pipeline with the fixture model: white, blue and green are 0.24 to 0.28
/// from their nearest entry; the copies 0.01 to 0.03), as a concat input.
fn unrelated(pattern: &str, n: u32) -> String {
    format!(
        "videotestsrc pattern={pattern} num-buffers={n} \
         ! video/x-raw,width=320,height=240,framerate=25/1,pixel-aspect-ratio=1/1 \
         ! videoconvert ! c. "
    )
}

#[test]
fn a_pipeline_finds_and_drops_the_copies_of_a_set_built_with_the_tool() {
    let dir = scratch("e2e");
    let photos = dir.join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    let bikes = bikes_photos(&photos);
    let reference = photos.join("reference.png");
    std::fs::copy(repo_root().join(REFERENCE), &reference).unwrap();
    pattern_png(&photos.join("smpte.png"), "smpte");
    ball_clip(&photos.join("ball.avi"));
    let index = dir.join("photos.dsindex");
    let index = index.to_str().unwrap();
    let added = run(&index_cmd("add", index, &[photos.to_str().unwrap()]));
    assert!(added.status.success());
    assert!(stderr(&added).contains("7 added"), "5 pictures, 2 frames");

    // The ids the tool gave the two pictures the video will contain.
    let id_of = |png: &Path| -> u64 {
        let q = query_json(index, png.to_str().unwrap(), &["-k", "1"]);
        q["queries"][0]["matches"][0]["id"].as_u64().unwrap()
    };
    let (bikes_id, reference_id) = (id_of(&bikes[1]), id_of(&reference));
    assert_ne!(bikes_id, reference_id);

    // The video: 4 unrelated frames, 3 of bikes frame 125 rescaled from
    // 1280x720 to 320x240, 4 unrelated, 3 of the reference picture, 2
    // unrelated; MJPEG (quality 70) in AVI at 25 fps.
    let video = dir.join("suspect.avi");
    gst_run(&format!(
        // One colorimetry for every segment: a caps change would stop the muxer.
        "concat name=c ! videoconvert ! video/x-raw,format=I420,colorimetry=bt601,\
         chroma-site=jpeg,pixel-aspect-ratio=1/1 ! jpegenc quality=70 \
         ! avimux ! filesink location={} {}{}{}{}{}",
        video.display(),
        unrelated("white", 4),
        frozen(&bikes[1], 3),
        unrelated("blue", 4),
        frozen(&reference, 3),
        unrelated("green", 2),
    ));

    init();
    let pipeline = gst::parse::launch(&format!(
        "filesrc location={} ! avidemux ! jpegdec ! videoconvert \
         ! dreamsim model-location={} execution-provider=cpu threads=1 \
         ! dreamsimmatch index-location={index} threshold=0.05 action=drop \
         ! appsink name=sink sync=false",
        video.display(),
        repo_root().join(MODEL).display(),
    ))
    .unwrap();
    let sink = gst_run::appsink(pipeline.downcast_ref::<gst::Bin>().unwrap(), "sink");
    let kept = Arc::new(Mutex::new(Vec::new()));
    {
        let kept = kept.clone();
        gst_run::on_samples(&sink, move |sample| {
            let buffer = sample.buffer().unwrap();
            let meta = DreamSimMeta::from_buffer(buffer).unwrap().unwrap();
            kept.lock()
                .unwrap()
                .push((meta.frame, buffer.pts().unwrap().mseconds()));
        });
    }
    pipeline.set_state(gst::State::Playing).unwrap();
    let matches = gst_run::collect_messages(
        &pipeline.bus().unwrap(),
        gst::ClockTime::from_seconds(120),
        MatchMessage::from_message,
    );
    pipeline.set_state(gst::State::Null).unwrap();

    println!(
        "matches: {:?}",
        matches
            .iter()
            .map(|m| (m.frame, m.matches[0].id, m.matches[0].distance))
            .collect::<Vec<_>>()
    );
    let found: Vec<(u64, u64, u64)> = matches
        .iter()
        .map(|m| {
            // Frames of one video can be within the threshold of each
            // other (the three bikes frames with random weights): the
            // nearest is the one copied.
            (
                m.frame,
                m.timing.timestamp.unwrap().mseconds(),
                m.matches[0].id,
            )
        })
        .collect();
    assert_eq!(
        found,
        [
            (4, 160, bikes_id),
            (5, 200, bikes_id),
            (6, 240, bikes_id),
            (11, 440, reference_id),
            (12, 480, reference_id),
            (13, 520, reference_id),
        ],
        "the right ids at the right timestamps, and nothing else"
    );
    let kept: Vec<u64> = kept.lock().unwrap().iter().map(|(f, _)| *f).collect();
    assert_eq!(
        kept,
        [0, 1, 2, 3, 7, 8, 9, 10, 14, 15],
        "with drop exactly the copies are gone"
    );
}

// ---- PostgreSQL

#[test]
#[ignore = "needs PostgreSQL + pgvector in DREAMSIM_TEST_PG (.ci/run starts one)"]
fn postgres_gives_the_same_answers_and_keeps_hostile_labels() {
    let pg = std::env::var("DREAMSIM_TEST_PG").expect(NEEDS_PG);
    let prefix = format!("cli_index_{}", std::process::id());
    let hostile = format!("'); DROP TABLE {prefix}_entries; --");
    let dir = scratch("pg");
    let (set, labels) = picture_folder(&dir, &hostile);
    let (set_s, labels_s) = (set.to_str().unwrap(), labels.to_str().unwrap());
    let file = dir.join("a.dsindex");
    let file = file.to_str().unwrap();
    run_ok(&index_cmd("add", file, &[set_s, "--labels", labels_s]));

    // The file exported to the server, then the folder added there directly
    // under another prefix.
    run_ok(&["index", "export", file, &pg, "--dest-pg-table", &prefix]);
    let direct = format!("{prefix}_direct");
    run_ok(&index_cmd(
        "add",
        &pg,
        &[set_s, "--labels", labels_s, "--pg-table", &direct],
    ));
    for table in [&prefix, &direct] {
        let info = info_json(&pg, &["--pg-table", table]);
        assert_eq!(info["backend"], "postgresql");
        assert_eq!(info["entries"], 6);
        assert_eq!(info["model"]["kind"], "fixture_ensemble");
    }

    // The same answers from both backends.
    let copy = dir.join("copy.jpg");
    jpeg_copy(Path::new(REFERENCE), &copy, 200, 150);
    let copy = copy.to_str().unwrap();
    let from_file = rows(&run_ok(&index_cmd("query", file, &[copy, "-k", "6"])));
    let from_pg = rows(&run_ok(&index_cmd(
        "query",
        &pg,
        &[copy, "-k", "6", "--pg-table", &prefix],
    )));
    assert_eq!(from_file.len(), 6);
    assert_eq!(from_pg.len(), 6);
    assert_eq!(from_pg[0][4], "known; picture");
    for (f, p) in from_file.iter().zip(&from_pg) {
        assert_eq!((&f[3], &f[4], &f[6]), (&p[3], &p[4], &p[6]), "same entry");
        let (df, dp): (f64, f64) = (f[5].parse().unwrap(), p[5].parse().unwrap());
        assert!((df - dp).abs() < 1e-3, "{df} vs {dp}");
    }

    // The hostile label comes back unchanged, from both tables.
    let smpte = set.join("smpte.png");
    for table in [&prefix, &direct] {
        let q = query_json(
            &pg,
            smpte.to_str().unwrap(),
            &["-k", "1", "--pg-table", table],
        );
        assert_eq!(q["queries"][0]["matches"][0]["label"], hostile.as_str());
    }
    // ... and the tables are all there.
    assert_eq!(info_json(&pg, &["--pg-table", &prefix])["entries"], 6);

    // From the server back to a file: the same answers again.
    let back = dir.join("back.dsindex");
    let back = back.to_str().unwrap();
    run_ok(&["index", "import", back, &pg, "--pg-table", &prefix]);
    assert_eq!(
        rows(&run_ok(&index_cmd("query", back, &[copy, "-k", "6"]))),
        from_file
    );
}

#[test]
fn scenes_sample_a_video_at_its_cuts() {
    let dir = scratch("scenes");
    let video = dir.join("two_scenes.avi");
    // 2 s of the SMPTE bars, then 2 s of checkers, at 10 fps.
    let segment = |pattern: &str| {
        format!(
            "videotestsrc pattern={pattern} num-buffers=20 \
             ! video/x-raw,width=320,height=240,framerate=10/1,pixel-aspect-ratio=1/1 \
             ! videoconvert ! c. "
        )
    };
    gst_run(&format!(
        "concat name=c ! videoconvert ! video/x-raw,format=I420,colorimetry=bt601,\
         chroma-site=jpeg,pixel-aspect-ratio=1/1 ! jpegenc ! avimux ! filesink location={} {}{}",
        video.display(),
        segment("smpte"),
        segment("checkers-1"),
    ));
    let index = dir.join("a.dsindex");
    let index = index.to_str().unwrap();
    let video = video.to_str().unwrap();
    let added = run(&index_cmd("add", index, &[video, "--scenes"]));
    assert!(added.status.success());
    assert!(stderr(&added).contains("2 added"), "one entry per scene");
    let found = rows(&run_ok(&index_cmd(
        "query",
        index,
        &[video, "--scenes", "-k", "1"],
    )));
    let got: Vec<(&str, &str)> = found
        .iter()
        .map(|r| (r[1].as_str(), r[4].as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("00:00:00.000", "two_scenes@00:00:00.000"),
            ("00:00:02.000", "two_scenes@00:00:02.000"),
        ]
    );
}

#[test]
fn an_interrupted_add_leaves_a_readable_index_that_a_rerun_completes() {
    let dir = scratch("interrupted");
    let set = dir.join("set");
    std::fs::create_dir_all(&set).unwrap();
    // 1000 distinct files (one picture, a different trailing comment after
    // its end each), so more than three batches of 256.
    let picture = std::fs::read(repo_root().join(REFERENCE)).unwrap();
    for i in 0..1000 {
        let mut bytes = picture.clone();
        bytes.extend_from_slice(format!("copy {i}").as_bytes());
        std::fs::write(set.join(format!("p{i:03}.png")), bytes).unwrap();
    }
    let index = dir.join("a.dsindex");
    let index = index.to_str().unwrap();
    let set_s = set.to_str().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_gst-dreamsim"))
        .args(index_cmd("add", index, &[set_s]))
        .current_dir(repo_root())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Killed as soon as the first batch is written (the file, created
    // empty at the start, grows), while the next ones are being embedded
    // or written.
    let size = || std::fs::metadata(index).map(|m| m.len()).unwrap_or(0);
    let started = std::time::Instant::now();
    let deadline = std::time::Duration::from_secs(60);
    while size() == 0 && started.elapsed() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let empty = size();
    while size() == empty && started.elapsed() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    // SIGKILL: no chance to clean up, wherever it was.
    let _ = child.kill();
    let _ = child.wait();
    let info = run(&["index", "info", index, "--json"]);
    if info.status.success() {
        let info: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
        let n = info["entries"].as_u64().unwrap();
        println!("killed with {n} entries in the index");
        assert!(
            n.is_multiple_of(256) || n == 1000,
            "whole batches only, {n} entries"
        );
    } else {
        assert!(stderr(&info).contains("no index at"), "{}", stderr(&info));
        println!("killed before the first batch");
    }
    let rerun = run(&index_cmd("add", index, &[set_s]));
    assert!(rerun.status.success());
    assert_eq!(info_json(index, &[])["entries"], 1000);
}
