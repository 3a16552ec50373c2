//! The command line against hostile and careless input (issue 20): every
//! numeric option held to its range by the parser (exit 2 with the range,
//! never a panic, never a gate silently off), no output written over an
//! input, rows on disk when the job is interrupted, untrusted files (labels
//! CSV, manifest, the corpus's list of videos) read as such, CSV cells
//! quoted and neutralised, and an HTML report that opens only the files
//! `corpus add` recorded.

mod common;

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;

const MODEL: &str = "tests/fixtures/tiny_ensemble.onnx";
const REFERENCE: &str = "tests/fixtures/reference.png";

/// bikes.mp4, relative to the repository root; fetched by .ci/run.
fn bikes() -> PathBuf {
    let p = repo_root().join(".cache/media/bikes.mp4");
    assert!(
        p.exists(),
        "{} is missing: run tools/fetch_test_media.sh (.ci/run does)",
        p.display()
    );
    p
}

/// A fresh scratch directory for one test.
fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "gst-dreamsim-hostile-{test}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The tool exited with 2 and said why, without a panic or backtrace.
fn assert_usage_error(o: &Output, args: &[&str]) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "{args:?}: {err}"
    );
    assert!(err.contains("error"), "{args:?}: {err}");
}

// ---- 1. numeric options (items 6, 7, 16)

/// The cases the issue lists: each exits 2 and states the allowed range.
#[test]
fn the_listed_bad_values_exit_2_with_the_allowed_range() {
    let cases: &[&[&str]] = &[
        &["compare", "r.mp4", "t.mp4", "--threshold", "3"],
        &["compare", "r.mp4", "t.mp4", "--threshold", "nan"],
        &["scenes", "v.mp4", "--threshold", "nan"],
        &["scenes", "v.mp4", "--adaptive-threshold", "nan"],
        &["scenes", "v.mp4", "--min-distance", "nan"],
        &["dedup", "v.mp4", "--threshold", "5"],
        &["compare", "r.mp4", "t.mp4", "--fail-above", "nan"],
        &["monitor", "v.mp4", "r.png", "--limit", "nan"],
        &["monitor", "v.mp4", "r.png", "--limit", "inf"],
        &["corpus", "match", "--index", "i", "--frame-distance", "nan"],
        &["corpus", "match", "--index", "i", "--frame-distance=-1"],
        &["corpus", "match", "--index", "i", "--query-share", "1000"],
        &["corpus", "add", "--index", "i", "v.mp4", "--rate", "nan"],
        &["corpus", "add", "--index", "i", "v.mp4", "--rate", "0"],
        &["corpus", "add", "--index", "i", "v.mp4", "--rate=-1"],
        &["corpus", "match", "--index", "i", "--rate", "inf"],
    ];
    for args in cases {
        let o = run(args);
        assert_usage_error(&o, args);
        assert!(stderr(&o).contains("expected"), "{args:?}: the range");
    }
    // Integers: clap's own range message.
    let o = run(&["scenes", "v.mp4", "--window", "4294967295"]);
    assert_usage_error(&o, &["--window"]);
    assert!(stderr(&o).contains("1..=64"), "{}", stderr(&o));
}

/// Every option that takes a number, of every subcommand: the table below,
/// checked against the subcommands' --help (a new numeric option missing
/// from it fails this test).
#[test]
fn every_numeric_option_of_every_subcommand_refuses_bad_values() {
    // (subcommand with its required arguments, option, values to refuse).
    const DIST: &[&str] = &["nan", "inf", "-inf", "=-0.5", "2.5", "1e999", "x"];
    let table: &[(&[&str], &str, &[&str])] = &[
        (
            &["distances", "v.mp4"],
            "--interval",
            &["0", "=-1", "4294967296", "x"],
        ),
        (&["scenes", "v.mp4"], "--threshold", DIST),
        (
            &["scenes", "v.mp4"],
            "--adaptive-threshold",
            &["nan", "inf", "=-1", "256"],
        ),
        (&["scenes", "v.mp4"], "--min-distance", DIST),
        (
            &["scenes", "v.mp4"],
            "--window",
            &["0", "65", "4294967295", "=-1"],
        ),
        (
            &["scenes", "v.mp4"],
            "--min-scene-len",
            &["=-1", "4294967296", "nan"],
        ),
        (&["dedup", "v.mp4"], "--threshold", DIST),
        (
            &["dedup", "v.mp4"],
            "--max-drops",
            &["=-1", "4294967296", "nan"],
        ),
        (&["compare", "r", "t"], "--threshold", DIST),
        (&["compare", "r", "t"], "--fail-above", DIST),
        (&["compare", "r", "t"], "--worst", &["=-1", "1001", "nan"]),
        (&["monitor", "v", "r.png"], "--limit", DIST),
        (
            &["monitor", "v", "r.png"],
            "--consecutive",
            &["0", "=-1", "4294967296"],
        ),
        (&["monitor", "v", "r.png"], "--every", &["0", "=-1", "nan"]),
        (&["bench", "v.mp4"], "--frames", &["0", "=-1", "nan"]),
        (&["bench"], "--synthetic", &["0", "=-1", "2147483648"]),
        (&["bench", "v.mp4"], "--interval", &["0", "=-1"]),
        (
            &["index", "add", "i", "p"],
            "--every",
            &["0", "nan", "inf", "=-1", "1e7"],
        ),
        (
            &["index", "add", "i", "p"],
            "--connectivity",
            &["0", "1", "257", "=-1"],
        ),
        (
            &["index", "add", "i", "p"],
            "--expansion-add",
            &["0", "65537", "=-1"],
        ),
        (&["index", "query", "i", "p"], "-k", &["0", "10001", "=-1"]),
        (
            &["index", "query", "i", "p"],
            "--ef-search",
            &["0", "65537", "=-1"],
        ),
        (
            &["index", "query", "i", "p"],
            "--every",
            &["0", "nan", "=-1"],
        ),
        (
            &["index", "export", "a", "b"],
            "--connectivity",
            &["0", "257"],
        ),
        (
            &["index", "export", "a", "b"],
            "--expansion-add",
            &["0", "65537"],
        ),
        (
            &["index", "import", "a", "b"],
            "--connectivity",
            &["0", "257"],
        ),
        (
            &["index", "import", "a", "b"],
            "--expansion-add",
            &["0", "65537"],
        ),
        (
            &["corpus", "add", "--index", "i", "v"],
            "--rate",
            &["0", "nan", "inf", "=-1", "1001"],
        ),
        (
            &["corpus", "add", "--index", "i", "v"],
            "--stall-timeout",
            &["0", "=-1", "604801"],
        ),
        (
            &["corpus", "add", "--index", "i", "v"],
            "--reclaim-after",
            &["0", "=-1", "31536001"],
        ),
        (
            &["corpus", "add", "--index", "i", "v"],
            "--workers",
            &["0", "65", "=-1"],
        ),
        (
            &["corpus", "add", "--index", "i", "v"],
            "--connectivity",
            &["0", "257"],
        ),
        (
            &["corpus", "add", "--index", "i", "v"],
            "--expansion-add",
            &["0", "65537"],
        ),
        (
            &["corpus", "match", "--index", "i"],
            "--frame-distance",
            DIST,
        ),
        (
            &["corpus", "match", "--index", "i"],
            "--query-share",
            &["nan", "=-1", "100.5", "1000"],
        ),
        (
            &["corpus", "match", "--index", "i"],
            "--candidate-share",
            &["nan", "=-1", "101"],
        ),
        (
            &["corpus", "match", "--index", "i"],
            "--max-gap",
            &["nan", "inf", "=-1", "1e7"],
        ),
        (
            &["corpus", "match", "--index", "i"],
            "--min-duration",
            &["nan", "inf", "=-1"],
        ),
        (
            &["corpus", "match", "--index", "i"],
            "--neighbours",
            &["0", "4097", "=-1"],
        ),
        (
            &["corpus", "match", "--index", "i"],
            "--rate",
            &["0", "nan"],
        ),
        (
            &["corpus", "match", "--index", "i"],
            "--stall-timeout",
            &["0", "604801"],
        ),
        (
            &["corpus", "match", "--index", "i"],
            "--ef-search",
            &["0", "65537"],
        ),
        // The model options, on one subcommand (they are one struct).
        (
            &["scenes", "v.mp4"],
            "--batch-size",
            &["0", "257", "=-1", "nan"],
        ),
        (
            &["scenes", "v.mp4"],
            "--threads",
            &["=-1", "4294967296", "nan"],
        ),
        (
            &["scenes", "v.mp4"],
            "--device-id",
            &["=-1", "2147483648", "nan"],
        ),
    ];
    for (prefix, option, values) in table {
        for value in *values {
            let mut args: Vec<String> = prefix.iter().map(|s| s.to_string()).collect();
            match value.strip_prefix('=') {
                Some(v) => args.push(format!("{option}={v}")),
                None => args.extend([option.to_string(), value.to_string()]),
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let o = run(&args);
            assert_usage_error(&o, &args);
        }
    }

    // The table covers every option whose value is a number, as --help
    // names it (its placeholder).
    const NUMERIC: &[&str] = &[
        "<N>",
        "<D>",
        "<R>",
        "<P>",
        "<S>",
        "<FPS>",
        "<SECONDS>",
        "<K>",
        "<EF>",
        "<M>",
        "<EA>",
    ];
    let subcommands: &[&[&str]] = &[
        &["distances"],
        &["scenes"],
        &["dedup"],
        &["compare"],
        &["monitor"],
        &["bench"],
        &["index", "add"],
        &["index", "query"],
        &["index", "remove"],
        &["index", "info"],
        &["index", "export"],
        &["index", "import"],
        &["corpus", "add"],
        &["corpus", "match"],
    ];
    for sub in subcommands {
        let mut args = sub.to_vec();
        args.push("--help");
        let help = stdout(&run(&args));
        for line in help.lines() {
            let line = line.trim_start();
            if !line.starts_with('-') || !NUMERIC.iter().any(|n| line.contains(n)) {
                continue;
            }
            // <P> is also --precision's placeholder (auto, fp32, int8).
            if line.starts_with("--precision") {
                continue;
            }
            let option = line
                .split([' ', ','])
                .filter(|w| w.starts_with('-'))
                .max_by_key(|w| w.len())
                .unwrap();
            let option = option.split('=').next().unwrap();
            // The model options are one struct: covered once.
            let model_option = ["--batch-size", "--threads", "--device-id"].contains(&option);
            let covered = table
                .iter()
                .any(|(prefix, o, _)| *o == option && (model_option || prefix.starts_with(sub)));
            assert!(
                covered,
                "{sub:?} {option}: a numeric option without a case ({line})"
            );
        }
    }
}

// ---- 2. no output over an input (item 8)

/// Refusals of outputs that are inputs: each exits 2 and leaves the input
/// byte for byte as it was.
#[test]
fn no_output_is_written_over_an_input_even_through_links() {
    let dir = scratch("overwrite");
    let video = dir.join("v.mp4");
    std::fs::copy(bikes(), &video).unwrap();
    let original = std::fs::read(&video).unwrap();
    let link = dir.join("link.mp4");
    std::os::unix::fs::symlink(&video, &link).unwrap();
    let hard = dir.join("hard.mp4");
    std::fs::hard_link(&video, &hard).unwrap();
    let reference = dir.join("ref.png");
    std::fs::copy(repo_root().join(REFERENCE), &reference).unwrap();
    let model = dir.join("model.onnx");
    std::fs::copy(repo_root().join(MODEL), &model).unwrap();
    let index = dir.join("lib.dsindex");
    let index_list = dir.join("lib.dsindex.videos.json");
    std::fs::write(&index_list, "{\"videos\":{}}\n").unwrap();
    let list_before = std::fs::read(&index_list).unwrap();
    let (v, l, h, r, m, i) = (
        s(&video),
        s(&link),
        s(&hard),
        s(&reference),
        s(&model),
        s(&index),
    );
    let cases: Vec<Vec<&str>> = vec![
        vec!["scenes", v, "-o", v],
        vec!["scenes", v, "-o", l],
        vec!["scenes", v, "--edl", h],
        vec!["distances", v, "-o", l],
        vec!["distances", v, "--reference", r, "-o", r],
        vec!["compare", v, "t.mp4", "--log", h],
        vec!["compare", "r.mp4", v, "--csv", l],
        vec!["compare", v, v, "--html", v],
        vec!["dedup", v, "--video", l],
        vec!["dedup", v, "-o", h],
        vec!["monitor", v, r, "-o", r],
        vec!["monitor", v, r, "-o", l],
        vec!["bench", v, "--distances", h],
        vec!["bench", v, "-o", v],
        vec!["scenes", v, "--model", m, "-o", m],
        vec!["index", "add", l, v],
        vec!["index", "query", i, r, "-o", r],
        vec!["corpus", "add", "--index", l, v],
        vec!["corpus", "match", "--index", i, "-o", s(&index_list)],
        vec!["corpus", "match", "--index", i, "--html", s(&index_list)],
    ];
    let uri = format!("file://{v}");
    let mut cases = cases;
    cases.push(vec!["scenes", &uri, "-o", l]);
    for case in &cases {
        let mut args = case.clone();
        if !args.contains(&"--model") {
            args.extend(["--model", m]);
        }
        args.extend(["--provider", "cpu", "--quiet"]);
        let o = run(&args);
        assert_usage_error(&o, &args);
        assert!(
            stderr(&o).contains("refusing to write over an input"),
            "{}",
            stderr(&o)
        );
        assert!(
            std::fs::read(&video).unwrap() == original,
            "{args:?} changed the video"
        );
        assert_eq!(
            std::fs::read(&reference).unwrap(),
            std::fs::read(repo_root().join(REFERENCE)).unwrap()
        );
        assert_eq!(
            std::fs::read(&model).unwrap(),
            std::fs::read(repo_root().join(MODEL)).unwrap()
        );
        assert_eq!(std::fs::read(&index_list).unwrap(), list_before);
    }
    // Two outputs that are one file.
    let out = dir.join("out.csv");
    let o = run(&[
        "scenes",
        v,
        "-o",
        s(&out),
        "--edl",
        s(&out),
        "--model",
        MODEL,
    ]);
    assert_usage_error(&o, &["-o", "--edl"]);
    let _ = std::fs::remove_dir_all(dir);
}

// ---- 3. rows on disk when interrupted (item 9)

/// `monitor -o` on a live source, stopped with SIGINT (Ctrl-C) once rows
/// are due: the rows analysed are in the file.
#[test]
fn monitor_rows_are_in_the_file_when_the_job_is_interrupted() {
    let dir = scratch("sigint");
    let out = dir.join("out.csv");
    // 5 frames a second: 8 KiB of rows (the old buffer) takes 40 s.
    let mut command = Command::new(env!("CARGO_BIN_EXE_gst-dreamsim"));
    // A shell starts background jobs with SIGINT ignored, and the ignored
    // action survives exec: run from such a job (`nohup .ci/run &`), the
    // tool would never see the Ctrl-C this test sends. Give it the action
    // a terminal's foreground job has.
    // SAFETY: signal() is async-signal-safe; nothing else runs in the child.
    unsafe {
        command.pre_exec(|| {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            Ok(())
        });
    }
    let mut child = command
        .args([
            "monitor",
            "--model",
            MODEL,
            "--provider",
            "cpu",
            "--quiet",
            "-o",
            s(&out),
            "--pipeline",
            "videotestsrc is-live=true pattern=ball ! video/x-raw,width=96,height=64,framerate=5/1",
            REFERENCE,
        ])
        .current_dir(repo_root())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let rows = |text: &str| text.lines().skip(1).count();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        if rows(&std::fs::read_to_string(&out).unwrap_or_default()) >= 4 {
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("monitor ended early: {status}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    eprintln!("monitor: {status}\n{err}");
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(
        rows(&text) >= 4,
        "after {:.1} s and SIGINT the file has {} rows:\n{text}",
        started.elapsed().as_secs_f64(),
        rows(&text)
    );
    assert!(text.starts_with("Frame,Timecode,Time (seconds),Reference Distance,Distance\n"));
    // Every row whole: a row is written and flushed at once.
    for line in text.lines().skip(1) {
        assert_eq!(line.split(',').count(), 5, "{line:?}");
    }
    assert!(text.ends_with('\n'));
    let _ = std::fs::remove_dir_all(dir);
}

// ---- 4. untrusted files read whole (item 11)

fn mkfifo(path: &Path) {
    assert!(Command::new("mkfifo").arg(path).status().unwrap().success());
}

/// --labels and --manifest: a device, a FIFO, a directory and an oversized
/// file are refused at once, with what they are or the cap.
#[test]
fn labels_and_manifests_that_are_not_small_regular_files_are_refused() {
    let dir = scratch("unbounded");
    let fifo = dir.join("fifo.csv");
    mkfifo(&fifo);
    let big = dir.join("big.csv");
    let f = std::fs::File::create(&big).unwrap();
    f.set_len((64 << 20) + 1).unwrap(); // sparse: no disk used
    let index = dir.join("i.dsindex");
    let (i, d) = (s(&index), s(&dir));
    // The FIFO first: before the fix it hangs (and the test fails in 60 s)
    // where /dev/zero grows to the OOM killer.
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["index", "add", i, REFERENCE, "--labels", s(&fifo)],
            "a FIFO, not a regular file",
        ),
        (
            vec!["index", "add", i, REFERENCE, "--labels", "/dev/zero"],
            "a character device, not a regular file",
        ),
        (
            vec!["index", "add", i, REFERENCE, "--labels", d],
            "a directory, not a regular file",
        ),
        (
            vec!["index", "add", i, REFERENCE, "--labels", s(&big)],
            "larger than the 67108864 bytes allowed for a labels CSV",
        ),
        (
            vec!["corpus", "add", "--index", i, "--manifest", "/dev/zero"],
            "a character device, not a regular file",
        ),
        (
            vec!["corpus", "add", "--index", i, "--manifest", s(&fifo)],
            "a FIFO, not a regular file",
        ),
        (
            vec!["corpus", "add", "--index", i, "--manifest", d],
            "a directory, not a regular file",
        ),
        (
            vec!["corpus", "add", "--index", i, "--manifest", s(&big)],
            "larger than the 67108864 bytes allowed for a manifest",
        ),
    ];
    for (mut args, expected) in cases {
        args.extend(["--model", MODEL, "--provider", "cpu"]);
        let o = run_within(&args, Duration::from_secs(60))
            .unwrap_or_else(|| panic!("{args:?} still running after 60 s"));
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        assert!(stderr(&o).contains(expected), "{args:?}: {}", stderr(&o));
    }
    assert!(!index.exists(), "nothing written");
    let _ = std::fs::remove_dir_all(dir);
}

// ---- 5. CSV in and out (item 12)

/// A labels CSV whose quote never closes is an error naming the line, not
/// one label that swallows the rows after it.
#[test]
fn a_labels_csv_with_an_unterminated_quote_is_an_error() {
    let dir = scratch("labels");
    let labels = dir.join("labels.csv");
    let reference = repo_root().join(REFERENCE);
    std::fs::write(
        &labels,
        format!(
            "path,label\n{},\"first\n{},second\n",
            reference.display(),
            reference.display()
        ),
    )
    .unwrap();
    let index = dir.join("i.dsindex");
    let o = run(&[
        "index",
        "add",
        s(&index),
        REFERENCE,
        "--labels",
        s(&labels),
        "--model",
        MODEL,
        "--provider",
        "cpu",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("line 2: a quoted field starts here and is never closed"),
        "{}",
        stderr(&o)
    );
    assert!(!index.exists());
    let _ = std::fs::remove_dir_all(dir);
}

/// Runs `gst-dreamsim ARGS --model MODEL --provider cpu` in `dir` (so
/// that the corpus records the videos' names as given, relative), killed
/// after two minutes.
fn run_in(dir: &Path, args: &[&str]) -> Output {
    let model = repo_root().join(MODEL);
    let mut child = Command::new(env!("CARGO_BIN_EXE_gst-dreamsim"))
        .args(args)
        .args(["--model", s(&model), "--provider", "cpu", "--threads", "1"])
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            panic!("gst-dreamsim {args:?} still running after 120 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let o = Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    };
    eprintln!("gst-dreamsim {args:?}: {status}\n{}", stderr(&o));
    o
}

/// A small corpus in `dir` of two videos with the same frames (bikes.mp4
/// and a copy with an empty box more, so that their sha256s differ), under
/// the names given (relative to `dir`).
fn two_video_corpus(dir: &Path, a: &str, b: &str) {
    std::fs::copy(bikes(), dir.join(a)).unwrap();
    let mut bytes = std::fs::read(bikes()).unwrap();
    bytes.extend_from_slice(&[0, 0, 0, 8, b'f', b'r', b'e', b'e']); // an empty `free` box
    std::fs::write(dir.join(b), bytes).unwrap();
    let o = run_in(
        dir,
        &["corpus", "add", "--index", "lib.dsindex", "--quiet", a, b],
    );
    assert!(o.status.success(), "{}", stderr(&o));
}

/// `corpus match` CSV: a path with a bare CR is quoted, a path that starts
/// like a formula is neutralised; the csv crate reads back what was meant.
#[test]
fn corpus_match_csv_quotes_carriage_returns_and_neutralises_formulas() {
    let dir = scratch("matchcsv");
    let (formula, cr) = ("=cmd|' calc'!A1.mp4", "a\rb.mp4");
    two_video_corpus(&dir, formula, cr);
    let o = run_in(
        &dir,
        &[
            "corpus",
            "match",
            "--index",
            "lib.dsindex",
            "--frame-distance",
            "0.05",
            "--quiet",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(!text.contains("\n=") && !text.contains(",="), "{text:?}");
    assert!(text.contains("\"a\rb.mp4\""), "the CR quoted: {text:?}");
    let mut reader = csv::ReaderBuilder::new().from_reader(text.as_bytes());
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 1, "{text:?}");
    let mut got = vec![rows[0][0].to_owned(), rows[0][1].to_owned()];
    got.sort();
    let mut want = vec![format!("'{formula}"), cr.to_owned()];
    want.sort();
    assert_eq!(got, want);
    let _ = std::fs::remove_dir_all(dir);
}

// ---- 6. the corpus's list of videos and the HTML report (item 15)

/// A record that names a URI is an error of the list, said with the file;
/// nothing is fetched. A record that names another local file (its content
/// not the recorded one) is shown as refused in the report, never opened.
#[test]
fn the_html_report_opens_only_the_files_corpus_add_recorded() {
    let dir = scratch("report");
    two_video_corpus(&dir, "a.mp4", "b.mp4");
    let list = dir.join("lib.dsindex.videos.json");
    let original = std::fs::read_to_string(&list).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let html = dir.join("report.html");
    let report = || {
        run_in(
            &dir,
            &[
                "corpus",
                "match",
                "--index",
                "lib.dsindex",
                "--frame-distance",
                "0.05",
                "--html",
                "report.html",
                "--json",
                "--quiet",
            ],
        )
    };
    let b_json = "\"b.mp4\"";
    assert!(original.contains(b_json));
    for uri in [
        format!("http://127.0.0.1:{port}/b.mp4"),
        format!("file://{}", s(&dir.join("b.mp4"))),
        "https://example.invalid/x.mp4".to_owned(),
    ] {
        std::fs::write(
            &list,
            original.replace(b_json, &serde_json::to_string(&uri).unwrap()),
        )
        .unwrap();
        let o = report();
        assert_eq!(o.status.code(), Some(1), "{uri}");
        let err = stderr(&o);
        assert!(
            err.contains("videos.json") && err.contains("a URI, not a local path"),
            "{err}"
        );
        assert!(listener.accept().is_err(), "{uri}: the report connected");
    }
    // Another local file in place of b.mp4: refused, said in the report.
    let other = dir.join("other.mp4");
    std::fs::write(
        &other,
        [std::fs::read(bikes()).unwrap(), b"x".to_vec()].concat(),
    )
    .unwrap();
    std::fs::write(&list, original.replace(b_json, "\"other.mp4\"")).unwrap();
    let o = report();
    assert!(o.status.success(), "{}", stderr(&o));
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        page.contains("refused: the file&#39;s content is not the one recorded")
            || page.contains("refused: the file's content is not the one recorded"),
        "{page}"
    );
    // The untampered list: every thumbnail there, nothing refused.
    std::fs::write(&list, &original).unwrap();
    let o = report();
    assert!(o.status.success());
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("data:image/jpeg;base64,") && !page.contains("refused"));
    let _ = std::fs::remove_dir_all(dir);
}

/// A way to damage a file, for the table below.
type Damage<'a> = Box<dyn Fn() + 'a>;

/// The list of videos is read as untrusted: a FIFO, a directory, broken
/// JSON, a record under another id are each a clear error naming the file.
#[test]
fn a_damaged_list_of_videos_is_a_clear_error() {
    let dir = scratch("videolist");
    let index = dir.join("lib.dsindex");
    let list = dir.join("lib.dsindex.videos.json");
    let id = "a".repeat(64);
    let cases: Vec<(Damage, &str)> = vec![
        (Box::new(|| mkfifo(&list)), "a FIFO, not a regular file"),
        // (add finds it first as an output that cannot be written)
        (
            Box::new(|| std::fs::create_dir(&list).unwrap()),
            "a directory",
        ),
        (
            Box::new(|| std::fs::write(&list, "{\"videos\": {").unwrap()),
            "not a corpus list of videos",
        ),
        (
            Box::new(|| std::fs::write(&list, "\u{0}\u{1}garbage").unwrap()),
            "not a corpus list of videos",
        ),
        (
            Box::new(|| {
                std::fs::write(
                    &list,
                    format!(r#"{{"videos":{{"{id}":{{"id":"{}","path":"v.mp4","duration_ns":1,"frames":1}}}}}}"#, "b".repeat(64)),
                )
                .unwrap()
            }),
            "recorded under another id",
        ),
    ];
    for (make, expected) in cases {
        let _ = std::fs::remove_file(&list);
        let _ = std::fs::remove_dir(&list);
        make();
        for args in [
            vec!["corpus", "match", "--index", s(&index), "--model", MODEL],
            vec![
                "corpus",
                "add",
                "--index",
                s(&index),
                "--model",
                MODEL,
                REFERENCE,
            ],
        ] {
            let o = run_within(&args, Duration::from_secs(60)).expect("hangs on the list");
            assert_eq!(o.status.code(), Some(1), "{args:?}");
            let err = stderr(&o);
            assert!(
                err.contains("lib.dsindex.videos.json") && err.contains(expected),
                "{err}"
            );
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}

// ---- probes: outputs that cannot be written

/// An output in a folder that does not exist, or a directory given as the
/// output file, is an error before the job runs (not after decoding the
/// whole input), naming the path: here the model does not exist, and the
/// error is the output's, found first.
#[test]
fn an_output_that_cannot_be_written_is_an_error_before_the_job_runs() {
    let dir = scratch("unwritable");
    let missing = dir.join("no/such/folder/out.csv");
    let too_long = dir.join(format!("{}.csv", "a".repeat(300)));
    let video = s(&bikes()).to_owned();
    for (args, path) in [
        (vec!["scenes", &video, "-o", s(&too_long)], too_long.clone()),
        (vec!["scenes", &video, "-o", s(&missing)], missing.clone()),
        (vec!["scenes", &video, "-o", s(&dir)], dir.clone()),
        (
            vec!["compare", &video, &video, "--html", s(&missing)],
            missing.clone(),
        ),
        (
            vec!["monitor", &video, REFERENCE, "-o", s(&dir)],
            dir.clone(),
        ),
    ] {
        let mut args = args.clone();
        args.extend([
            "--model",
            "no-such-model.onnx",
            "--provider",
            "cpu",
            "--quiet",
        ]);
        let o = run(&args);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        let err = stderr(&o);
        assert!(
            err.contains(s(&path)) && !err.contains("no-such-model"),
            "{err}"
        );
    }
    assert!(
        std::fs::read_dir(&dir).unwrap().next().is_none(),
        "no probe file left"
    );
    let _ = std::fs::remove_dir_all(dir);
}
