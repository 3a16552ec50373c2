//! The process's model pool (`dreamsim::model_pool`): a `dreamsim` element
//! that stops hands its model back, the next one with the same file and
//! options takes it instead of loading it. One test, because the pool
//! belongs to the process and the test harness runs tests side by side.

use dreamsim_testsupport as common;
mod plugin_common;

use common::*;
use dreamsim::model_pool;
use gst::prelude::*;
use gstdreamsim::DreamSimMessage;
use plugin_common::*;

/// The texts of the element's progress messages, and its distances.
fn run_with(model: &str, threads: u32) -> (Vec<String>, Vec<Option<f64>>) {
    init();
    let pipeline = gst::parse::launch(&format!(
        "videotestsrc num-buffers=4 pattern=ball ! video/x-raw,width=64,height=48 ! \
         dreamsim model-location={model} execution-provider=cpu threads={threads} ! fakesink"
    ))
    .unwrap();
    let bus = pipeline.bus().unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let (mut progress, mut distances) = (Vec::new(), Vec::new());
    gst_run::read_bus_ok(&bus, gst::ClockTime::from_seconds(60), model, |msg| {
        if let Some(m) = DreamSimMessage::from_message(msg).transpose().unwrap() {
            distances.push(m.distance);
        }
        if let gst::MessageView::Progress(p) = msg.view() {
            progress.push(p.get().2.to_string());
        }
    });
    pipeline.set_state(gst::State::Null).unwrap();
    (progress, distances)
}

fn said(progress: &[String], needle: &str) -> bool {
    progress.iter().any(|p| p.contains(needle))
}

#[test]
fn a_stopped_elements_model_serves_the_next_same_one_only_when_the_pool_is_on() {
    let model = fixture("tiny_ensemble.onnx").display().to_string();

    // Off (the default): nothing is kept.
    let (progress, _) = run_with(&model, 1);
    assert!(said(&progress, "Loaded"), "{progress:?}");
    assert_eq!(model_pool::idle_count(), 0);

    model_pool::keep_idle_models(true);
    let (progress, first) = run_with(&model, 1);
    assert!(said(&progress, "Loaded"), "{progress:?}");
    assert_eq!(model_pool::idle_count(), 1);

    // The same file and options: taken, not loaded, and the same results.
    let (progress, again) = run_with(&model, 1);
    assert!(said(&progress, "Reusing"), "{progress:?}");
    assert!(!said(&progress, "Loaded"), "{progress:?}");
    assert_eq!(again, first);
    assert_eq!(model_pool::idle_count(), 1);

    // Other options: loaded; both kept.
    let (progress, _) = run_with(&model, 2);
    assert!(said(&progress, "Loaded"), "{progress:?}");
    assert_eq!(model_pool::idle_count(), 2);

    // A file changed on disk is loaded afresh, and its stale model dropped.
    let dir = std::env::temp_dir().join(format!("dreamsim-pool-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let copy = dir.join("model.onnx");
    std::fs::copy(&model, &copy).unwrap();
    let copy_s = copy.display().to_string();
    run_with(&copy_s, 1);
    assert_eq!(model_pool::idle_count(), 3);
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
    std::fs::File::options()
        .write(true)
        .open(&copy)
        .unwrap()
        .set_modified(later)
        .unwrap();
    let (progress, _) = run_with(&copy_s, 1);
    assert!(said(&progress, "Loaded"), "{progress:?}");
    assert_eq!(model_pool::idle_count(), 3, "the stale one replaced");

    model_pool::keep_idle_models(false);
    assert_eq!(model_pool::idle_count(), 0);
    let _ = std::fs::remove_dir_all(&dir);
}
