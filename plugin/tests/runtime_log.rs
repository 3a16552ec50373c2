//! ONNX Runtime's own log reaches the GStreamer debug log, in the category
//! `dreamsim-ort`. A test binary of its own: a process loads ONNX Runtime
//! once, and the category's threshold must be set before it does.

use dreamsim_testsupport as common;

use std::sync::{Arc, Mutex};

use gst::prelude::*;

#[test]
fn onnx_runtime_logs_into_a_gstreamer_category() {
    // What `GST_DEBUG=dreamsim*:6` does, before GStreamer reads it.
    std::env::set_var("GST_DEBUG", "dreamsim-ort:6");
    gst::init().unwrap();
    gst::log::remove_default_log_function();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    gst::log::add_log_function(move |cat, level, _file, _function, _line, _obj, message| {
        if cat.name() == "dreamsim-ort" {
            if let Some(text) = message.get() {
                sink.lock().unwrap().push((level, text.to_string()));
            }
        }
    });
    gstdreamsim::plugin_register_static().unwrap();

    let pipeline = gst::parse::launch(&format!(
        "videotestsrc num-buffers=2 ! dreamsim model-location={} execution-provider=cpu \
         threads=1 ! fakesink",
        common::fixture("tiny_ensemble.onnx").display()
    ))
    .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let bus = pipeline.bus().unwrap();
    let msg = bus
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(30),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        )
        .expect("EOS");
    assert_eq!(msg.type_(), gst::MessageType::Eos);
    pipeline.set_state(gst::State::Null).unwrap();

    let seen = seen.lock().unwrap();
    assert!(
        !seen.is_empty(),
        "ONNX Runtime's verbose log of the session's creation reaches dreamsim-ort"
    );
    assert!(
        seen.iter().all(|(level, _)| *level <= gst::DebugLevel::Log),
        "{seen:?}"
    );
}
