//! Running a pipeline in a test: its bus read to the end, its appsink's
//! samples. Each test used to write these loops by hand; one copy here
//! keeps them the same (an error on the bus always fails the test with the
//! error's text and debug details).
//!
//! The plugin's message types are read through their `from_message`
//! (`SceneMessage::from_message`, `MatchMessage::from_message`, ...), passed
//! as a function: this crate does not depend on the plugin (the plugin's
//! tests depend on it).

use std::fmt::Debug;

use gst::prelude::*;

/// How reading a bus ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusEnd {
    /// End of stream.
    Eos,
    /// An error message: its error and debug details.
    Error(String),
    /// Nothing more arrived within the time given.
    TimedOut,
}

/// Reads `bus` until end of stream, an error or `timeout` without a
/// message, passing every message (the last one included) to `each` first.
pub fn read_bus(
    bus: &gst::Bus,
    timeout: impl Into<Option<gst::ClockTime>>,
    mut each: impl FnMut(&gst::Message),
) -> BusEnd {
    for msg in bus.iter_timed(timeout) {
        each(&msg);
        match msg.view() {
            gst::MessageView::Eos(_) => return BusEnd::Eos,
            gst::MessageView::Error(e) => {
                return BusEnd::Error(format!("{} ({:?})", e.error(), e.debug()))
            }
            _ => {}
        }
    }
    BusEnd::TimedOut
}

/// [`read_bus`], failing the test on an error message (`context` says
/// what ran). A timeout ends the reading as end of stream does: the test's
/// own assertions then say what is missing.
pub fn read_bus_ok(
    bus: &gst::Bus,
    timeout: impl Into<Option<gst::ClockTime>>,
    context: &str,
    each: impl FnMut(&gst::Message),
) {
    if let BusEnd::Error(e) = read_bus(bus, timeout, each) {
        panic!("{context}: {e}");
    }
}

/// The messages of one type (read by `from_message`, e.g.
/// `SceneMessage::from_message`) posted on `bus` until end of stream,
/// failing the test on an error message or a malformed message.
pub fn collect_messages<T, E: Debug>(
    bus: &gst::Bus,
    timeout: impl Into<Option<gst::ClockTime>>,
    from_message: impl Fn(&gst::MessageRef) -> Option<Result<T, E>>,
) -> Vec<T> {
    let mut found = Vec::new();
    read_bus_ok(bus, timeout, "pipeline", |msg| {
        if let Some(m) = from_message(msg) {
            found.push(m.expect("a well-formed message"));
        }
    });
    found
}

/// `description` as a pipeline (GStreamer must be initialised).
pub fn launch(description: &str) -> gst::Pipeline {
    gst::parse::launch(description)
        .unwrap_or_else(|e| panic!("{description}: {e}"))
        .downcast::<gst::Pipeline>()
        .unwrap_or_else(|_| panic!("{description}: not a pipeline"))
}

/// Plays `description` to its end and stops it, failing the test on an
/// error message.
pub fn run_to_end(description: &str, timeout: gst::ClockTime) {
    let pipeline = launch(description);
    pipeline.set_state(gst::State::Playing).unwrap();
    read_bus_ok(&pipeline.bus().unwrap(), timeout, description, |_| {});
    pipeline.set_state(gst::State::Null).unwrap();
}

/// The appsink called `name` in `bin`.
pub fn appsink(bin: &impl IsA<gst::Bin>, name: &str) -> gst_app::AppSink {
    bin.upcast_ref::<gst::Bin>()
        .by_name(name)
        .unwrap_or_else(|| panic!("no element {name}"))
        .downcast::<gst_app::AppSink>()
        .unwrap_or_else(|_| panic!("{name} is not an appsink"))
}

/// Plays `description` and passes each sample that reaches its appsink
/// `sink` to `each`, in order, until end of stream (or an error, which
/// ends the samples too); then stops the pipeline. A sample is dropped
/// before the next is pulled, so a decoder's buffer pool never runs dry.
pub fn pull_samples(description: &str, sink: &str, mut each: impl FnMut(gst::Sample)) {
    let pipeline = launch(description);
    let sink = appsink(&pipeline, sink);
    pipeline.set_state(gst::State::Playing).unwrap();
    while let Ok(sample) = sink.pull_sample() {
        each(sample);
    }
    pipeline.set_state(gst::State::Null).unwrap();
}

/// Passes each sample that reaches `sink` to `each` on the streaming
/// thread, for a pipeline whose bus the test reads.
pub fn on_samples(sink: &gst_app::AppSink, mut each: impl FnMut(&gst::Sample) + Send + 'static) {
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                each(&sample);
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
}
