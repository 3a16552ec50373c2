//! A missing ONNX Runtime library is an element error, not a crash. This
//! lives in its own test binary because a process loads ONNX Runtime once.

use dreamsim_testsupport as common;

use gst::prelude::*;

#[test]
fn a_missing_onnx_runtime_is_a_clear_error() {
    gst::init().unwrap();
    gstdreamsim::plugin_register_static().unwrap();
    let pipeline = gst::parse::launch(&format!(
        "videotestsrc num-buffers=3 ! dreamsim name=d onnxruntime-location=/nonexistent/libonnxruntime.so \
         model-location={} ! fakesink",
        common::fixture("tiny_ensemble.onnx").display()
    ))
    .unwrap();
    let bus = pipeline.bus().unwrap();
    assert!(pipeline.set_state(gst::State::Playing).is_err());
    let msg = bus
        .timed_pop_filtered(gst::ClockTime::from_seconds(10), &[gst::MessageType::Error])
        .expect("an error message");
    let gst::MessageView::Error(e) = msg.view() else {
        unreachable!()
    };
    assert_eq!(e.src().unwrap().name(), "d");
    let text = e.error().to_string();
    assert!(text.contains("ONNX Runtime could not be loaded"), "{text}");
    assert!(text.contains("/nonexistent/libonnxruntime.so"), "{text}");
    assert!(text.contains("ORT_DYLIB_PATH"), "{text}");
    pipeline.set_state(gst::State::Null).unwrap();
}
