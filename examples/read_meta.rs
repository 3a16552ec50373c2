//! Reading `DreamSimMeta` from Rust: `videotestsrc ! videoconvert ! dreamsim
//! ! appsink`, each buffer's result read with `DreamSimMeta::from_buffer`.
//!
//! ```sh
//! cargo run -p gst-plugin-dreamsim --example read_meta -- [MODEL.onnx [FRAMES]]
//! cargo run -p gst-plugin-dreamsim --example read_meta -- tests/fixtures/tiny_ensemble.onnx 5
//! ```
//!
//! Without MODEL the element loads its default model (the ensemble that
//! tools/get_model.sh installs).

use gst::prelude::*;
use gstdreamsim::meta::DreamSimMeta;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let model = args.next();
    let frames: u32 = args.next().map_or(Ok(10), |n| n.parse())?;

    gst::init()?;
    // An application linking the plugin's crate registers it itself; one
    // using the installed plugin (GST_PLUGIN_PATH) does not need this.
    gstdreamsim::plugin_register_static()?;

    let pipeline = gst::parse::launch(&format!(
        "videotestsrc num-buffers={frames} pattern=ball ! video/x-raw,width=320,height=240 ! \
         videoconvert ! dreamsim name=dreamsim ! appsink name=sink sync=false"
    ))?
    .downcast::<gst::Pipeline>()
    .map_err(|_| "not a pipeline")?;
    if let Some(model) = &model {
        let dreamsim = pipeline.by_name("dreamsim").expect("named above");
        dreamsim.set_property("model-location", model);
    }
    let sink = pipeline
        .by_name("sink")
        .expect("named above")
        .downcast::<gst_app::AppSink>()
        .map_err(|_| "not an appsink")?;

    // A failure to start (no model file, no ONNX Runtime) is explained on
    // the bus, read below.
    let started = pipeline.set_state(gst::State::Playing).is_ok();
    // pull_sample fails at EOS, or when the pipeline failed.
    while let Some(sample) = started.then(|| sink.pull_sample().ok()).flatten() {
        let Some(buffer) = sample.buffer() else {
            continue;
        };
        let pts = buffer.pts().map_or("--".into(), |t| t.to_string());
        match DreamSimMeta::from_buffer(buffer) {
            // `interval` > 1 lets buffers through without a meta.
            None => println!("pts {pts}: not analysed"),
            Some(Err(e)) => println!("pts {pts}: {e}"),
            Some(Ok(meta)) => {
                let norm = meta.embedding.iter().map(|v| v * v).sum::<f32>().sqrt();
                println!(
                    "frame {} at pts {pts}: distance to the previous frame {}, embedding of {} \
                     values (norm {norm:.3}), model {}",
                    meta.frame,
                    meta.distance
                        .map_or("none (first frame)".into(), |d| format!("{d:.6}")),
                    meta.embedding.len(),
                    meta.model
                );
            }
        }
    }
    let bus = pipeline.bus().expect("a pipeline has a bus");
    let error = bus
        .pop_filtered(&[gst::MessageType::Error])
        .and_then(|msg| match msg.view() {
            gst::MessageView::Error(e) => Some(e.error().to_string()),
            _ => None,
        });
    pipeline.set_state(gst::State::Null)?;
    match error {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}
