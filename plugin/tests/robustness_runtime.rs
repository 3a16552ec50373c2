//! Robustness catalogue, ONNX Runtime libraries: a file that is not the
//! runtime is an element error that names it and says what to do, and the
//! process goes on (a later start may still load a good runtime). Its own
//! test binary, because a process loads ONNX Runtime once; the missing
//! library case is plugin/tests/runtime_missing.rs.

use dreamsim_testsupport as common;
mod plugin_common;

use std::path::Path;

use plugin_common::*;

fn expect_runtime_error(library: &Path, needles: &[&str]) {
    let e = expect_error(
        &format!(
            "videotestsrc num-buffers=3 ! dreamsim name=d onnxruntime-location={} \
             model-location={} ! fakesink",
            library.display(),
            common::fixture("tiny_ensemble.onnx").display()
        ),
        "d",
        needles,
    );
    assert_eq!(
        e.error.kind::<gst::LibraryError>(),
        Some(gst::LibraryError::Init),
        "{}",
        e.text()
    );
}

#[test]
fn files_that_are_not_onnx_runtime_are_clear_errors() {
    let dir = std::env::temp_dir().join(format!("dreamsim-robust-rt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // A text file named like the library.
    let fake = dir.join("libonnxruntime.so");
    std::fs::write(&fake, b"this is not a shared library\n").unwrap();
    // An empty file.
    let empty = dir.join("libonnxruntime.so.1");
    std::fs::write(&empty, b"").unwrap();
    // A real shared library that is not ONNX Runtime (GStreamer's own).
    let wrong = [
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
        "/usr/lib",
    ]
    .iter()
    .map(|d| Path::new(d).join("libgstreamer-1.0.so.0"))
    .find(|p| p.exists());
    let mut cases = vec![fake, empty, dir.clone()];
    cases.extend(wrong);
    for library in &cases {
        expect_runtime_error(
            library,
            &[
                "ONNX Runtime could not be loaded",
                &library.display().to_string(),
                "ORT_DYLIB_PATH",
            ],
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
