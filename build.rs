//! Records the commit the engine is built from (`dreamsim::BUILD_VERSION`),
//! which the plugin puts in its start-up message and model-load log, so a
//! figure or a bug report names the exact code that produced it.

use std::path::Path;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    Command::new("git")
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// Reruns this script when `git_path` (a path inside the git directory,
/// wherever a worktree keeps it) changes. A path that does not exist is not
/// watched: cargo would rerun the script on every build.
fn watch(git_path: &str) {
    if let Some(path) = git(&["rev-parse", "--git-path", git_path]) {
        if Path::new(&path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
}

fn main() {
    let commit = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=DREAMSIM_GIT_COMMIT={commit}");
    // Only a move of HEAD changes the commit: a checkout rewrites HEAD, a
    // commit rewrites the branch it points at (loose, or packed). Staging
    // files (.git/index) does not, so it no longer rebuilds anything.
    watch("HEAD");
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watch(&branch);
    }
    watch("packed-refs");
    // Without these, cargo would rerun the script whenever any file of the
    // package changes.
    println!("cargo:rerun-if-changed=build.rs");
}
