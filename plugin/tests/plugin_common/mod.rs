//! Helpers shared by the plugin's tests (they need GStreamer, which the
//! engine's tests do not): initialisation, and a harness around one filter
//! element that logs what leaves its src pad.
#![allow(dead_code)]

use std::sync::{Arc, Mutex, Once};

use dreamsim_testsupport::gst_run;
use gst::prelude::*;
use gstdreamsim::DreamSimMessage;

/// GStreamer, with the plugin's elements registered (once per process).
pub fn init() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        gst::init().unwrap();
        gstdreamsim::plugin_register_static().expect("register the plugin");
    });
}

pub fn ms(n: u64) -> gst::ClockTime {
    gst::ClockTime::from_mseconds(n)
}

/// A harness around one configured element, with its own bus and a log of
/// what leaves its src pad: "B<label>" for buffers (the label computed from
/// the PTS), "E:<name>" for events (custom events by their structure's name).
pub struct FilterHarness {
    pub h: gst_check::Harness,
    pub element: gst::Element,
    pub bus: gst::Bus,
    log: Arc<Mutex<Vec<String>>>,
}

impl FilterHarness {
    /// `factory` with `properties` set, taking 4x4 RGB at 25 frames/s.
    pub fn new(
        factory: &str,
        properties: &[(&str, &str)],
        label: fn(gst::ClockTime) -> u64,
    ) -> Self {
        init();
        let element = gst::ElementFactory::make(factory).build().unwrap();
        for (name, value) in properties {
            element.set_property_from_str(name, value);
        }
        let bus = gst::Bus::new();
        element.set_bus(Some(&bus));
        let log = Arc::new(Mutex::new(Vec::new()));
        {
            let log = log.clone();
            element.static_pad("src").unwrap().add_probe(
                gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_DOWNSTREAM,
                move |_, info| {
                    let entry = match &info.data {
                        Some(gst::PadProbeData::Buffer(b)) => {
                            format!("B{}", label(b.pts().unwrap()))
                        }
                        Some(gst::PadProbeData::Event(e)) => match e.type_() {
                            gst::EventType::CustomDownstream
                            | gst::EventType::CustomDownstreamOob => {
                                format!("E:{}", e.structure().unwrap().name())
                            }
                            t => format!("E:{}", t.name()),
                        },
                        _ => return gst::PadProbeReturn::Ok,
                    };
                    log.lock().unwrap().push(entry);
                    gst::PadProbeReturn::Ok
                },
            );
        }
        let mut h = gst_check::Harness::with_element(&element, Some("sink"), Some("src"));
        h.set_src_caps_str("video/x-raw,format=RGB,width=4,height=4,framerate=25/1");
        Self {
            h,
            element,
            bus,
            log,
        }
    }

    /// The log without the events every stream starts with.
    pub fn log(&self) -> Vec<String> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|e| !matches!(e.as_str(), "E:stream-start" | "E:caps" | "E:segment"))
            .cloned()
            .collect()
    }
}

/// An error that ended a pipeline.
#[derive(Debug, Clone)]
pub struct PipelineError {
    /// Name of the element that posted it.
    pub src: String,
    pub error: gst::glib::Error,
    pub debug: String,
}

impl PipelineError {
    /// The error's message and debug text together, for `contains` checks.
    pub fn text(&self) -> String {
        format!("{} ({})", self.error, self.debug)
    }
}

/// What a pipeline run to EOS or error posted.
#[derive(Debug, Default)]
pub struct Outcome {
    pub messages: Vec<DreamSimMessage>,
    /// Text of every warning message (message and debug).
    pub warnings: Vec<String>,
    pub error: Option<PipelineError>,
}

/// Runs `pipeline` to EOS or error (at most 120 s) and sets it back to NULL.
pub fn run_outcome(pipeline: gst::Element) -> Outcome {
    init();
    let bus = pipeline.bus().unwrap();
    let started = pipeline.set_state(gst::State::Playing);
    let mut out = Outcome::default();
    gst_run::read_bus(&bus, gst::ClockTime::from_seconds(120), |msg| {
        if let Some(m) = DreamSimMessage::from_message(msg).transpose().unwrap() {
            out.messages.push(m);
        }
        match msg.view() {
            gst::MessageView::Warning(w) => out.warnings.push(format!(
                "{} ({})",
                w.error(),
                w.debug().map(|d| d.to_string()).unwrap_or_default()
            )),
            gst::MessageView::Error(e) => {
                out.error = Some(PipelineError {
                    src: e.src().map(|s| s.name().to_string()).unwrap_or_default(),
                    error: e.error(),
                    debug: e.debug().map(|d| d.to_string()).unwrap_or_default(),
                });
            }
            _ => {}
        }
    });
    pipeline.set_state(gst::State::Null).unwrap();
    if out.error.is_none() {
        started.expect("pipeline started");
    }
    out
}

/// Parses `launch` and runs it to EOS or error.
pub fn run_launch(launch: &str) -> Outcome {
    init();
    run_outcome(gst::parse::launch(launch).unwrap())
}

/// Runs `launch` to EOS or error; returns the dreamsim messages and the
/// error (source name, message, debug) if one ended it.
pub fn run_pipeline(launch: &str) -> (Vec<DreamSimMessage>, Option<(String, String, String)>) {
    init();
    run(gst::parse::launch(launch).unwrap())
}

pub fn run(pipeline: gst::Element) -> (Vec<DreamSimMessage>, Option<(String, String, String)>) {
    let out = run_outcome(pipeline);
    let error = out.error.map(|e| (e.src, e.error.to_string(), e.debug));
    (out.messages, error)
}

/// Runs `launch` and checks that an error from element `from` ended it,
/// with every needle in its message or debug text.
pub fn expect_error(launch: &str, from: &str, needles: &[&str]) -> PipelineError {
    let out = run_launch(launch);
    let e = out
        .error
        .unwrap_or_else(|| panic!("no error from: {launch}"));
    assert_eq!(e.src, from, "error came from {}: {}", e.src, e.text());
    let text = e.text();
    for needle in needles {
        assert!(text.contains(needle), "`{needle}` not in error: {text}");
    }
    e
}
