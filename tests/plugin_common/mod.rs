//! Helpers shared by the plugin's tests (they need GStreamer, which the
//! engine's tests do not): initialisation, and a harness around one filter
//! element that logs what leaves its src pad.
#![allow(dead_code)]

use std::sync::{Arc, Mutex, Once};

use gst::prelude::*;

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
