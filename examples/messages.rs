//! Reading the plugin's bus messages from Rust with their typed readers:
//! `DreamSimMessage` (one per analysed frame), `SceneMessage` (one per scene
//! start) and `DedupMessage` (the counts, at EOS), over `videotestsrc !
//! videoconvert ! dreamsim post-messages=true ! dreamsimscene !
//! dreamsimdedup ! fakesink`.
//!
//! ```sh
//! cargo run -p gst-plugin-dreamsim --example messages -- [MODEL.onnx [FRAMES]]
//! cargo run -p gst-plugin-dreamsim --example messages -- tests/fixtures/tiny_ensemble.onnx 5
//! ```
//!
//! The same messages show with `gst-launch-1.0 -m`; these readers spare an
//! application the field names and types.

use gst::prelude::*;
use gstdreamsim::DedupMessage;
use gstdreamsim::DreamSimMessage;
use gstdreamsim::SceneMessage;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let model = args.next();
    let frames: u32 = args.next().map_or(Ok(10), |n| n.parse())?;

    gst::init()?;
    gstdreamsim::plugin_register_static()?;

    let pipeline = gst::parse::launch(&format!(
        "videotestsrc num-buffers={frames} pattern=ball ! video/x-raw,width=320,height=240 ! \
         videoconvert ! dreamsim name=dreamsim post-messages=true ! dreamsimscene ! \
         dreamsimdedup ! fakesink sync=false"
    ))?;
    if let Some(model) = &model {
        let bin = pipeline.downcast_ref::<gst::Bin>().expect("a pipeline");
        let dreamsim = bin.by_name("dreamsim").expect("named above");
        dreamsim.set_property("model-location", model);
    }

    let bus = pipeline.bus().expect("a pipeline has a bus");
    let mut result = Ok(());
    // A failure to start (no model file, no ONNX Runtime) is explained by an
    // error message on the bus; without one, say that it did not start.
    let started = pipeline.set_state(gst::State::Playing).is_ok();
    let timeout = if started {
        None
    } else {
        Some(gst::ClockTime::ZERO)
    };
    for msg in bus.iter_timed(timeout) {
        // Each reader returns None for a message that is not its own.
        if let Some(m) = DreamSimMessage::from_message(&msg).transpose()? {
            println!(
                "dreamsim: frame {} at stream time {}: distance {}, reference distance {}",
                m.frame,
                m.timing.stream_time.map_or("--".into(), |t| t.to_string()),
                m.distance.map_or("none".into(), |d| format!("{d:.6}")),
                m.reference_distance
                    .map_or("none".into(), |d| format!("{d:.6}")),
            );
        } else if let Some(m) = SceneMessage::from_message(&msg).transpose()? {
            println!(
                "dreamsim-scene: scene {} starts at frame {} (stream time {})",
                m.index,
                m.frame,
                m.timing.stream_time.map_or("--".into(), |t| t.to_string())
            );
        } else if let Some(m) = DedupMessage::from_message(&msg).transpose()? {
            println!(
                "dreamsim-dedup: kept {}, dropped {} (frames without meta: {})",
                m.kept, m.dropped, m.without_meta
            );
        }
        match msg.view() {
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => {
                result = Err(e.error().to_string().into());
                break;
            }
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null)?;
    if !started && result.is_ok() {
        result = Err("the pipeline did not start".into());
    }
    result
}
