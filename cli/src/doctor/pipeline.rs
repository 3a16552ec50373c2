//! Runs the element itself: the default pipeline (what `execution-provider=auto`
//! picks, decided by the engine's own code, and whether it runs at all)
//! and, for `--bench`, a few seconds on each provider.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gst::prelude::*;
use serde::Serialize;

/// One run of `videotestsrc ! videoconvert ! dreamsim ! fakesink`.
#[derive(Debug, Default, Serialize)]
pub struct PipelineRun {
    /// The provider the element ran on (its `active-provider`).
    pub provider: Option<String>,
    /// The arithmetic it ran in (its `active-precision`).
    pub precision: Option<String>,
    /// The element's warnings (why auto fell back).
    pub warnings: Vec<String>,
    /// The error that stopped it.
    pub error: Option<String>,
    /// Frames analysed.
    pub frames: u64,
    /// Frames per second after the first frame (the model load left out).
    pub frames_per_second: Option<f64>,
}

/// Runs the element on test frames (640x360): `frames` of them, or as many
/// as come in `seconds` after the first. `model` and `provider` unset are
/// the element's defaults.
pub fn run(
    model: Option<&Path>,
    provider: Option<&str>,
    frames: u64,
    seconds: Option<f64>,
) -> PipelineRun {
    let mut report = PipelineRun::default();
    if let Err(e) = run_inner(model, provider, frames, seconds, &mut report) {
        report.error.get_or_insert(e);
    }
    report
}

fn run_inner(
    model: Option<&Path>,
    provider: Option<&str>,
    frames: u64,
    seconds: Option<f64>,
    report: &mut PipelineRun,
) -> Result<(), String> {
    let description = "videotestsrc name=src pattern=ball ! \
        video/x-raw,width=640,height=360,framerate=30/1 ! videoconvert ! \
        dreamsim name=dreamsim ! fakesink name=sink sync=false signal-handoffs=true";
    let pipeline = gst::parse::launch(description)
        .map_err(|e| e.to_string())?
        .downcast::<gst::Pipeline>()
        .map_err(|_| "not a pipeline".to_string())?;
    let by_name = |n: &str| pipeline.by_name(n).expect("named in the description");
    by_name("src").set_property("num-buffers", i32::try_from(frames).unwrap_or(i32::MAX));
    let dreamsim = by_name("dreamsim");
    if let Some(model) = model {
        dreamsim.set_property(
            gstdreamsim::model_settings::property::MODEL_LOCATION,
            model.to_string_lossy().as_ref(),
        );
    }
    if let Some(provider) = provider {
        dreamsim.set_property_from_str(
            gstdreamsim::model_settings::property::EXECUTION_PROVIDER,
            provider,
        );
    }
    let arrivals: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let sink_arrivals = Arc::clone(&arrivals);
    by_name("sink").connect("handoff", false, move |_| {
        sink_arrivals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Instant::now());
        None
    });

    let bus = pipeline.bus().expect("a pipeline has a bus");
    let outcome = (|| {
        if pipeline.set_state(gst::State::Playing).is_err() {
            return Err(first_error(&bus).unwrap_or_else(|| "the pipeline does not start".into()));
        }
        loop {
            if let Some(limit) = seconds {
                let first = arrivals
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .first()
                    .copied();
                if first.is_some_and(|t| t.elapsed().as_secs_f64() >= limit) {
                    return Ok(());
                }
            }
            let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(100)) else {
                continue;
            };
            match msg.view() {
                gst::MessageView::Eos(_) => return Ok(()),
                gst::MessageView::Error(e) => return Err(error_text(e)),
                gst::MessageView::Warning(w) => report.warnings.push(w.error().to_string()),
                _ => {}
            }
        }
    })();
    report.provider =
        dreamsim.property::<Option<String>>(gstdreamsim::dreamsim::property::ACTIVE_PROVIDER);
    report.precision =
        dreamsim.property::<Option<String>>(gstdreamsim::dreamsim::property::ACTIVE_PRECISION);
    let _ = pipeline.set_state(gst::State::Null);
    let times = arrivals.lock().unwrap_or_else(|e| e.into_inner()).clone();
    report.frames = times.len() as u64;
    if let (Some(first), Some(last)) = (times.first(), times.last()) {
        let span = last.duration_since(*first);
        if times.len() > 1 && span > Duration::ZERO {
            report.frames_per_second = Some((times.len() - 1) as f64 / span.as_secs_f64());
        }
    }
    outcome
}

fn first_error(bus: &gst::Bus) -> Option<String> {
    bus.pop_filtered(&[gst::MessageType::Error])
        .and_then(|m| match m.view() {
            gst::MessageView::Error(e) => Some(error_text(e)),
            _ => None,
        })
}

fn error_text(e: &gst::message::Error) -> String {
    crate::pipeline::error_text(e)
}
