//! What the tests of the `gst-dreamsim` tool share: where the repository
//! is, running the tool built by cargo (`CARGO_BIN_EXE_gst-dreamsim`) from
//! there, its output as text, running it on a terminal, and rendering the
//! HTML pages it writes in headless Chromium.
#![allow(dead_code)] // Each test file uses a part of this module.

use std::path::Path;
use std::process::{Command, Output, Stdio};

/// The repository root (cargo runs the tool's tests from cli/; the tool
/// runs from the root, where the tests' relative fixture paths start).
pub use dreamsim_testsupport::repo_root;

/// Runs `gst-dreamsim ARGS` from the repository root; its standard error
/// goes to the test's log.
pub fn run(args: &[&str]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_gst-dreamsim"))
        .args(args)
        .current_dir(repo_root())
        .output()
        .unwrap_or_else(|e| panic!("run gst-dreamsim: {e}"));
    eprintln!(
        "gst-dreamsim {}: {}\n{}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// [`run`], but the tool is killed after `limit`: `None` when it was
/// (it hung).
pub fn run_within(args: &[&str], limit: std::time::Duration) -> Option<Output> {
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_gst-dreamsim"))
        .args(args)
        .current_dir(repo_root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run gst-dreamsim: {e}"));
    // Read both pipes on threads: a chatty tool does not block on them.
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let reader = |r: &mut dyn std::io::Read| {
        let mut v = Vec::new();
        let _ = r.read_to_end(&mut v);
        v
    };
    let out = std::thread::spawn(move || reader(&mut out));
    let err = std::thread::spawn(move || reader(&mut err));
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() >= limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let (stdout, stderr) = (out.join().unwrap(), err.join().unwrap());
    eprintln!(
        "gst-dreamsim {}: {}\n{}",
        args.join(" "),
        status.map_or("killed: still running after the limit".into(), |s| s
            .to_string()),
        String::from_utf8_lossy(&stderr)
    );
    Some(Output {
        status: status?,
        stdout,
        stderr,
    })
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs the shell command `command` on a pseudo-terminal (util-linux's
/// `script`), as a user at a terminal would: everything the terminal showed,
/// after the command succeeded.
pub fn on_terminal(command: &str) -> String {
    let o = Command::new("script")
        .args(["-qec", command, "/dev/null"])
        .current_dir(repo_root())
        .output()
        .expect("run script (util-linux) to give the tool a terminal");
    let terminal = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{terminal}");
    terminal
}

/// Headless Chromium, which renders the HTML pages the tool writes, or a
/// failure saying what to install.
pub fn chromium() -> &'static str {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| {
            Command::new(b)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .expect(
            "headless Chromium is needed to render the HTML pages: install the Debian package \
             `chromium` (tools/install_deps.sh does)",
        )
}

/// Chromium's arguments for a headless run that reaches nothing but the
/// page, with its own profile folder (never the user's) and time for the
/// page's scripts to run.
pub fn chromium_args(profile: &Path) -> Vec<String> {
    [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--virtual-time-budget=10000",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([format!("--user-data-dir={}", profile.display())])
    .collect()
}

/// The DOM of `page` once headless Chromium has loaded it (`extra`: more
/// arguments, a window size), with the profile in `profile`.
pub fn rendered_dom(page: &Path, profile: &Path, extra: &[&str]) -> String {
    let out = Command::new(chromium())
        .args(chromium_args(profile))
        .args(extra)
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .stderr(Stdio::null())
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}
