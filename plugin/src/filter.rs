//! The plumbing of the elements that act on `dreamsim`'s meta downstream
//! (`dreamsimscene`, `dreamsimdedup`): both hold buffers back for a while,
//! so both send what they release in order once their lock is dropped, tell
//! the pipeline about the latency that adds, and ask upstream pools for the
//! buffers they keep.

use std::sync::{Mutex, MutexGuard};

use gst::prelude::*;

/// Locks `m`, even if a panic elsewhere poisoned it: one panic must not turn
/// every later call into a panic too.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What to send once the state lock is released, in this order.
#[derive(Debug)]
pub(crate) enum Output {
    Buffer(gst::Buffer),
    Event(gst::Event),
    Message(gst::Message),
}

/// Sends `outputs` through `srcpad` and to the bus, in order. Returns the
/// flow of the buffers and whether every event was accepted. After a failed
/// push the rest is dropped, as upstream stops on that flow.
pub(crate) fn send(
    element: &gst::Element,
    srcpad: &gst::Pad,
    cat: gst::DebugCategory,
    outputs: Vec<Output>,
) -> (Result<gst::FlowSuccess, gst::FlowError>, bool) {
    let mut events_ok = true;
    for output in outputs {
        match output {
            Output::Buffer(buffer) => {
                if let Err(e) = srcpad.push(buffer) {
                    gst::debug!(cat, obj = element, "Push failed: {e:?}");
                    return (Err(e), events_ok);
                }
            }
            Output::Event(event) => events_ok &= srcpad.push_event(event),
            Output::Message(msg) => {
                let _ = element.post_message(msg);
            }
        }
    }
    (Ok(gst::FlowSuccess::Ok), events_ok)
}

/// Tells the pipeline to query latencies again: the element's changed.
pub(crate) fn post_latency(element: &gst::Element) {
    let _ = element.post_message(gst::message::Latency::builder().src(element).build());
}

/// One frame's duration from the caps' frame rate; `None` when the rate is
/// unknown or variable (0/1).
pub(crate) fn frame_duration(caps: &gst::CapsRef) -> Option<gst::ClockTime> {
    caps.structure(0)
        .and_then(|s| s.get::<gst::Fraction>("framerate").ok())
        .filter(|f| f.numer() > 0 && f.denom() > 0)
        .and_then(|f| gst::ClockTime::SECOND.mul_div_floor(f.denom() as u64, f.numer() as u64))
}

/// `frames` frame durations (the latency an element adds by holding that
/// many frames back).
pub(crate) fn frames_of(frame: Option<gst::ClockTime>, frames: u64) -> gst::ClockTime {
    let frame = frame.unwrap_or(gst::ClockTime::ZERO);
    gst::ClockTime::from_nseconds(frame.nseconds().saturating_mul(frames))
}

/// Answers an allocation query through `srcpad`'s peer, then makes every
/// proposed pool `held` buffers larger: buffers an element holds back are
/// not in the pool for upstream, so a fixed-size pool could otherwise run
/// dry and stall the pipeline.
pub(crate) fn allocation_with_held_buffers(
    srcpad: &gst::Pad,
    query: &mut gst::QueryRef,
    held: u32,
) -> bool {
    if !srcpad.peer_query(query) {
        return false;
    }
    if held == 0 {
        return true;
    }
    if let gst::QueryViewMut::Allocation(q) = query.view_mut() {
        let pools: Vec<_> = q.allocation_pools().collect();
        for (i, (pool, size, min, max)) in pools.into_iter().enumerate() {
            // 0 means unlimited and stays so.
            let max = if max == 0 {
                0
            } else {
                max.saturating_add(held)
            };
            q.set_nth_allocation_pool(i as u32, pool.as_ref(), size, min.saturating_add(held), max);
        }
    }
    true
}

/// Answers a latency query through `sinkpad`'s peer, adding `ours`.
pub(crate) fn latency_plus(
    sinkpad: &gst::Pad,
    query: &mut gst::QueryRef,
    ours: gst::ClockTime,
) -> Option<bool> {
    if !sinkpad.peer_query(query) {
        return None;
    }
    match query.view_mut() {
        gst::QueryViewMut::Latency(q) => {
            let (live, min, max) = q.result();
            q.set(live, min + ours, max.map(|m| m + ours));
            Some(live)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_duration_from_the_frame_rate() {
        gst::init().unwrap();
        let caps = gst::Caps::builder("video/x-raw")
            .field("framerate", gst::Fraction::new(25, 1))
            .build();
        assert_eq!(
            frame_duration(&caps),
            Some(gst::ClockTime::from_mseconds(40))
        );
        let variable = gst::Caps::builder("video/x-raw")
            .field("framerate", gst::Fraction::new(0, 1))
            .build();
        assert_eq!(frame_duration(&variable), None);
        assert_eq!(
            frame_duration(&gst::Caps::new_empty_simple("video/x-raw")),
            None
        );
        assert_eq!(
            frames_of(Some(gst::ClockTime::from_mseconds(40)), 3),
            gst::ClockTime::from_mseconds(120)
        );
        assert_eq!(frames_of(None, 3), gst::ClockTime::ZERO);
    }
}
