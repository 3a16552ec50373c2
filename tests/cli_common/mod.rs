//! What the tests of the `gst-dreamsim` tool share: where the repository
//! is, running the tool built by cargo (`CARGO_BIN_EXE_gst-dreamsim`) from
//! there, its output as text, and running it on a terminal.
#![allow(dead_code)] // Each test file uses a part of this module.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root (cargo runs the tool's tests from cli/).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

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
