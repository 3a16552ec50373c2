//! The API examples, run as a user runs them, with the fixture model:
//! examples/read_meta.rs, examples/messages.rs and examples/read_meta.py.
//!
//! `cargo test -p gst-plugin-dreamsim` (and `cargo test --workspace`) build
//! the examples before running the tests; the tests never run cargo
//! themselves.

use dreamsim_testsupport as common;

use std::path::PathBuf;
use std::process::{Command, Output};

use common::repo_root;

const MODEL: &str = "tests/fixtures/tiny_ensemble.onnx";

/// `<target>/<profile>/deps`, where this test and the plugin's cdylib are.
fn deps_dir() -> PathBuf {
    std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The example binary `name`, built by cargo with the tests (and not older
/// than its source: `cargo test --test examples` alone builds no example).
fn example(name: &str) -> PathBuf {
    let path = deps_dir().parent().unwrap().join("examples").join(name);
    let built = std::fs::metadata(&path).and_then(|m| m.modified());
    let source = std::fs::metadata(repo_root().join(format!("examples/{name}.rs")))
        .and_then(|m| m.modified())
        .unwrap();
    assert!(
        built.is_ok_and(|built| built >= source),
        "{} is not built or older than its source: run the tests with `cargo test -p \
         gst-plugin-dreamsim`, which builds the examples (or `cargo build -p \
         gst-plugin-dreamsim --examples` first)",
        path.display()
    );
    path
}

fn run(mut command: Command) -> Output {
    let output = command
        .current_dir(repo_root())
        .output()
        .unwrap_or_else(|e| panic!("run {command:?}: {e}"));
    eprintln!(
        "{command:?}: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn lines(output: &Output) -> Vec<String> {
    String::from_utf8(output.stdout.clone())
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn read_meta_prints_each_frames_meta() {
    let mut command = Command::new(example("read_meta"));
    command.args([MODEL, "4"]);
    let output = run(command);
    assert!(output.status.success());
    let lines = lines(&output);
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert!(
        lines[0].starts_with(
            "frame 0 at pts 0:00:00.000000000: distance to the previous frame none (first frame), \
             embedding of 32 values (norm 1.000), model fixture_ensemble"
        ),
        "{lines:?}"
    );
    for (i, line) in lines.iter().enumerate().skip(1) {
        assert!(line.starts_with(&format!("frame {i} at pts ")), "{line}");
        let distance: f64 = line
            .split("distance to the previous frame ")
            .nth(1)
            .and_then(|s| s.split(',').next())
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            distance > 0.0 && distance < 0.01,
            "the ball moves a little: {line}"
        );
        assert!(line.contains("(norm 1.000)"), "{line}");
    }
}

#[test]
fn read_meta_fails_with_the_pipelines_error() {
    let mut command = Command::new(example("read_meta"));
    command.args(["/nonexistent/model.onnx", "2"]);
    let output = run(command);
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("/nonexistent/model.onnx"),
        "the error names the model"
    );
}

#[test]
fn messages_prints_the_typed_messages() {
    let mut command = Command::new(example("messages"));
    command.args([MODEL, "4"]);
    let output = run(command);
    assert!(output.status.success());
    let lines = lines(&output);
    let count = |prefix: &str| lines.iter().filter(|l| l.starts_with(prefix)).count();
    assert_eq!(count("dreamsim: frame "), 4, "{lines:?}");
    assert_eq!(
        count("dreamsim-scene: scene 0 starts at frame 0 "),
        1,
        "{lines:?}"
    );
    assert_eq!(
        lines.last().unwrap(),
        "dreamsim-dedup: kept 1, dropped 3 (frames without meta: 0)",
        "the ball barely moves: one frame kept at the default threshold"
    );
    assert!(
        lines[0].starts_with("dreamsim: frame 0 at stream time 0:00:00.000000000: distance none")
    );
}

/// A Python 3 that has PyGObject and GStreamer's introspection data: the
/// first of $PYTHON, python3 and /usr/bin/python3 (a pyenv python3 usually
/// lacks the system's gi).
fn python_with_gi() -> String {
    let candidates = std::env::var("PYTHON")
        .into_iter()
        .chain(["python3".to_owned(), "/usr/bin/python3".to_owned()]);
    for python in candidates {
        let ok = Command::new(&python)
            .args([
                "-c",
                "import gi; gi.require_version('Gst', '1.0'); from gi.repository import Gst",
            ])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return python;
        }
    }
    panic!(
        "no Python 3 with PyGObject and GStreamer's introspection data: \
         apt-get install python3-gi gir1.2-gstreamer-1.0 (tools/install_deps.sh does)"
    );
}

#[test]
fn read_meta_py_reads_the_meta_and_the_messages() {
    // The plugin as GStreamer loads it from disk: this build's cdylib, alone
    // in a folder, with a registry of its own.
    let so = deps_dir().join("libgstdreamsim.so");
    assert!(so.exists(), "{} is not built", so.display());
    let dir = std::env::temp_dir().join(format!("gst-dreamsim-py-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(&so, dir.join("libgstdreamsim.so")).unwrap();

    let mut command = Command::new(python_with_gi());
    command
        .args(["examples/read_meta.py", "--model", MODEL, "--frames", "3"])
        .env("GST_PLUGIN_PATH", &dir)
        .env("GST_REGISTRY", dir.join("registry.bin"));
    let output = run(command);
    std::fs::remove_dir_all(&dir).ok();
    assert!(output.status.success());
    let lines = lines(&output);
    let metas: Vec<&String> = lines.iter().filter(|l| l.starts_with("meta: ")).collect();
    assert_eq!(metas.len(), 3, "{lines:?}");
    assert_eq!(
        metas[0],
        "meta: frame 0 at pts 0: distance none (first frame), embedding of 32 values \
         (norm 1.000), model fixture_ensemble, scene 0"
    );
    assert!(metas[2].starts_with("meta: frame 2 at pts 66666666: distance 0.0000"));
    let messages = |name: &str| {
        lines
            .iter()
            .filter(|l| l.starts_with(&format!("message {name}: ")))
            .count()
    };
    assert_eq!(messages("dreamsim"), 3, "{lines:?}");
    assert_eq!(messages("dreamsim-scene"), 1, "{lines:?}");
    assert!(lines
        .iter()
        .any(|l| l.starts_with("message dreamsim: distance=") && l.contains("frame=1,")));
}

/// The short version of the soak benchmark (docs/robustness.md has the long
/// one): RSS may not grow by more than 32 MiB from the middle to the end of
/// either phase. No timing is checked.
#[test]
fn a_short_soak_keeps_resident_memory_flat() {
    let mut command = Command::new(example("soak"));
    command.args([
        "--frames",
        "1000",
        "--cycles",
        "40",
        "--size",
        "64x48",
        "--max-growth",
        "32",
        "--model",
        MODEL,
    ]);
    let out = run(command);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("stream: RSS") && text.contains("cycles: RSS"),
        "{text}"
    );
}
