//! ONNX Runtime's own log, in the GStreamer debug log: the category
//! `dreamsim-ort`, so that `GST_DEBUG=dreamsim*:5` shows, next to the
//! element's own messages, why ONNX Runtime did not start a provider (a
//! library it could not load, a missing CUDA or TensorRT) and how it
//! placed the graph.

use std::sync::{Arc, LazyLock};

use dreamsim::RuntimeLogLevel;

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "dreamsim-ort",
        gst::DebugColorFlags::empty(),
        Some("ONNX Runtime's own log"),
    )
});

/// The least severe ONNX Runtime message the category's threshold shows.
/// ONNX Runtime formats every message at or above it, so it is not asked for
/// more than will be printed.
fn min_level(threshold: gst::DebugLevel) -> RuntimeLogLevel {
    match threshold {
        t if t >= gst::DebugLevel::Log => RuntimeLogLevel::Verbose,
        t if t >= gst::DebugLevel::Info => RuntimeLogLevel::Info,
        t if t >= gst::DebugLevel::Warning => RuntimeLogLevel::Warning,
        _ => RuntimeLogLevel::Error,
    }
}

fn gst_level(level: RuntimeLogLevel) -> gst::DebugLevel {
    match level {
        RuntimeLogLevel::Verbose => gst::DebugLevel::Log,
        RuntimeLogLevel::Info => gst::DebugLevel::Info,
        RuntimeLogLevel::Warning => gst::DebugLevel::Warning,
        RuntimeLogLevel::Error | RuntimeLogLevel::Fatal => gst::DebugLevel::Error,
    }
}

/// Routes ONNX Runtime's log into the category, at the threshold
/// `GST_DEBUG` gave it. Called at plugin load, before any element loads the
/// runtime; an application that loaded it itself keeps its own logging.
pub(crate) fn route_to_gstreamer() {
    let cat = *CAT;
    dreamsim::runtime::set_log_sink(
        Arc::new(move |level, location, message| {
            gst::log_with_level!(cat, gst_level(level), "{message} ({location})");
        }),
        min_level(cat.threshold()),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_threshold_decides_what_onnx_runtime_formats() {
        assert_eq!(min_level(gst::DebugLevel::Trace), RuntimeLogLevel::Verbose);
        assert_eq!(min_level(gst::DebugLevel::Debug), RuntimeLogLevel::Info);
        assert_eq!(min_level(gst::DebugLevel::Fixme), RuntimeLogLevel::Warning);
        assert_eq!(min_level(gst::DebugLevel::None), RuntimeLogLevel::Error);
        assert_eq!(gst_level(RuntimeLogLevel::Fatal), gst::DebugLevel::Error);
    }
}
