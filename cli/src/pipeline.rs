//! The pipeline plumbing the jobs share: GStreamer with the plugin, the
//! decoding front end, the elements, and the bus loop that drives a job
//! with its progress bar.

use std::ops::ControlFlow;
use std::path::Path;

use gst::prelude::*;

use crate::common::CommonArgs;
use crate::progress::Progress;
use crate::{Error, PROGRAM};

/// GStreamer, with the DreamSim elements of this build registered (they
/// replace any `dreamsim` plugin the registry found on disk).
pub fn init() -> Result<(), Error> {
    gst::init().map_err(|e| Error::Pipeline(format!("GStreamer does not start: {e}")))?;
    gstdreamsim::plugin_register_static()?;
    // Before any pipeline runs: the errors decodebin drops (lost_errors).
    crate::lost_errors::start();
    Ok(())
}

/// A file path or a URI, as a URI.
pub fn to_uri(input: &str) -> Result<String, Error> {
    if input.contains("://") {
        return Ok(input.to_owned());
    }
    let failed = |reason: String| Error::Input {
        input: input.to_owned(),
        reason,
    };
    let path = Path::new(input);
    if !path.exists() {
        return Err(failed("no such file".into()));
    }
    let absolute = std::fs::canonicalize(path).map_err(|e| failed(e.to_string()))?;
    gst::glib::filename_to_uri(&absolute, None)
        .map(|u| u.to_string())
        .map_err(|e| failed(e.to_string()))
}

/// An element of `factory`.
pub fn make(factory: &str) -> Result<gst::Element, Error> {
    gst::ElementFactory::make(factory)
        .build()
        .map_err(|_| Error::MissingElement(factory.to_owned()))
}

/// `fakesink sync=false`: frames as fast as they come.
pub fn fakesink() -> Result<gst::Element, Error> {
    let sink = make("fakesink")?;
    sink.set_property("sync", false);
    Ok(sink)
}

/// `dreamsim`, configured by the common options.
pub fn dreamsim(common: &CommonArgs) -> Result<gst::Element, Error> {
    let dreamsim = make("dreamsim")?;
    common.configure(&dreamsim);
    Ok(dreamsim)
}

/// `uridecodebin uri=URI ! videoconvert ! CHAIN...`, the chain linked in
/// order.
pub fn decoding_pipeline(uri: &str, chain: &[gst::Element]) -> Result<gst::Pipeline, Error> {
    let pipeline = gst::Pipeline::new();
    let convert = make("videoconvert")?;
    let elements: Vec<&gst::Element> = std::iter::once(&convert).chain(chain).collect();
    pipeline.add_many(elements.iter().copied())?;
    gst::Element::link_many(elements.iter().copied())?;
    add_decoder(&pipeline, uri, &convert)?;
    Ok(pipeline)
}

/// `uridecodebin` for `uri`, its first video stream linked to `video_sink`,
/// the other streams to fakesinks.
pub fn add_decoder(
    pipeline: &gst::Pipeline,
    uri: &str,
    video_sink: &gst::Element,
) -> Result<(), Error> {
    let decoder = make("uridecodebin")?;
    decoder.set_property("uri", uri);
    pipeline.add(&decoder)?;
    // An element that fails while decodebin plugs it can have its error
    // dropped (a truncated MP4): [`lost_error`] finds it again.
    crate::lost_errors::watch(&decoder);
    // Without a video stream nothing would ever reach EOS: say so instead.
    let video_pad = video_sink.static_pad("sink").expect("sink pad");
    decoder.connect_no_more_pads(move |decoder| {
        if !video_pad.is_linked() {
            let _ = decoder.post_message(
                gst::message::Error::builder(
                    gst::StreamError::WrongType,
                    "The input has no video stream",
                )
                .src(decoder)
                .build(),
            );
        }
    });
    let pipeline = pipeline.downgrade();
    let video_sink = video_sink.downgrade();
    decoder.connect_pad_added(move |decoder, pad| {
        let (Some(pipeline), Some(video_sink)) = (pipeline.upgrade(), video_sink.upgrade()) else {
            return;
        };
        let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
        let is_video = caps
            .structure(0)
            .is_some_and(|s| s.name().starts_with("video/"));
        let sink_pad = video_sink.static_pad("sink").expect("sink pad");
        if is_video && !sink_pad.is_linked() {
            if let Err(e) = pad.link(&sink_pad) {
                let _ = decoder.post_message(
                    gst::message::Error::builder(
                        gst::StreamError::Failed,
                        &format!("cannot link the video stream: {e:?}"),
                    )
                    .src(decoder)
                    .build(),
                );
            }
            return;
        }
        // Audio and further video streams: consumed, not used.
        let Ok(sink) = gst::ElementFactory::make("fakesink")
            .property("sync", false)
            .property("async", false)
            .build()
        else {
            return;
        };
        if pipeline.add(&sink).is_ok() {
            let _ = sink.sync_state_with_parent();
            let _ = pad.link(&sink.static_pad("sink").expect("sink pad"));
        }
    });
    Ok(())
}

/// `pts`, a buffer time on `pad`, in stream time (by the pad's segment).
pub fn stream_time(pad: &gst::Pad, pts: gst::ClockTime) -> Option<gst::ClockTime> {
    pad.sticky_event::<gst::event::Segment>(0)?
        .segment()
        .downcast_ref::<gst::ClockTime>()?
        .to_stream_time(pts)
}

/// What a job does with the bus messages while its pipeline runs.
pub trait BusHandler {
    /// Takes one bus message (EOS, errors and warnings are handled by
    /// [`run_bus`] after this); an error or `Break` ends the run.
    fn message(
        &mut self,
        msg: &gst::MessageRef,
        progress: &Progress,
    ) -> Result<ControlFlow<()>, Error>;

    /// What the progress bar shows beside the position: frames, finds.
    fn status(&self) -> String;
}

/// Sets `pipeline` playing and reads its bus until EOS, an error or the
/// handler breaks; the progress bar follows the pipeline's position and
/// warnings go to standard error above it. The pipeline is left as it is,
/// for the caller to read its elements before [`stop`].
pub fn run_bus(
    pipeline: &gst::Pipeline,
    progress: &mut Progress,
    handler: &mut impl BusHandler,
) -> Result<(), Error> {
    let bus = pipeline.bus().expect("a pipeline has a bus");
    if pipeline.set_state(gst::State::Playing).is_err() {
        // The reason, when an element posted one, is on the bus.
        let reason = bus
            .pop_filtered(&[gst::MessageType::Error])
            .and_then(|m| match m.view() {
                gst::MessageView::Error(e) => Some(error_text(e)),
                _ => None,
            });
        return Err(Error::Pipeline(
            reason.unwrap_or_else(|| "the pipeline does not start".into()),
        ));
    }
    let result = loop {
        let msg = bus.timed_pop(gst::ClockTime::from_mseconds(200));
        if let Some(msg) = &msg {
            match handler.message(msg, progress) {
                Ok(ControlFlow::Continue(())) => {}
                Ok(ControlFlow::Break(())) => break Ok(()),
                Err(e) => break Err(e),
            }
        }
        progress.update(pipeline, || handler.status());
        let Some(msg) = msg else {
            if let Some(e) = lost_error(pipeline) {
                break Err(Error::Pipeline(e));
            }
            continue;
        };
        match msg.view() {
            gst::MessageView::Eos(_) => break Ok(()),
            gst::MessageView::Error(e) => break Err(Error::Pipeline(error_text(e))),
            gst::MessageView::Warning(w) => {
                progress.println(&format!("{PROGRAM}: warning: {}", w.error()));
            }
            _ => {}
        }
    };
    progress.finish();
    result
}

/// The error of an element of the decoding front end that decodebin
/// dropped while it plugged the element (see `lost_errors`): the element
/// has stopped and the bus will not say so. Callers that read the bus
/// themselves ask this when no message came for a while.
pub fn lost_error(pipeline: &gst::Pipeline) -> Option<String> {
    let message = crate::lost_errors::lost(pipeline)?;
    match message.view() {
        gst::MessageView::Error(e) => Some(error_text(e)),
        _ => None,
    }
}

/// GStreamer's error, with its details when there are some.
pub fn error_text(e: &gst::message::Error) -> String {
    match e.debug() {
        Some(d) => format!("{} ({d})", e.error()),
        None => e.error().to_string(),
    }
}

/// Stops `pipeline`, releasing its resources.
pub fn stop(pipeline: &gst::Pipeline) {
    let _ = pipeline.set_state(gst::State::Null);
}
