//! Errors that `decodebin` loses, found again.
//!
//! `decodebin` (inside `uridecodebin`) filters the error messages of an
//! element while it tries it: between adding it and bringing it to PAUSED,
//! errors are held back so that a decoder that cannot start can be replaced
//! by the next candidate. When the element starts, the held-back errors are
//! thrown away. A demuxer working in pull mode (qtdemux on a file) starts
//! its own streaming thread as it goes to PAUSED, inside that window: when
//! it fails at once (an MP4 file cut before its `moov` box: "no known
//! streams found"), its error can fall into the window and be dropped. The
//! demuxer has stopped, nothing else happens, and the pipeline waits
//! forever (GStreamer 1.22's gstdecodebin2.c `connect_pad`: the
//! `remove_error_filter (dbin, element, NULL)` after a successful state
//! change; seen on a truncated bikes.mp4 in about one run in four).
//!
//! A tracer sees every error as an element posts it, before any bin
//! filters it. For each watched decoder ([`watch`]) it keeps the errors of
//! the elements inside it; [`lost`] says which of them the pipeline's bus
//! will never carry: an error of an element that is still in the decoder
//! and that decodebin no longer tries (its state no longer locked; decodebin
//! unlocks an element it keeps and removes one it gives up). Errors of
//! candidates decodebin gave up (removed from the bin) are forgotten, as
//! decodebin means them to be.

use std::sync::{LazyLock, Mutex, MutexGuard, OnceLock};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

/// An error posted by an element inside a watched decoder.
struct Posted {
    element: glib::WeakRef<gst::Element>,
    message: gst::Message,
}

struct Watched {
    decoder: glib::WeakRef<gst::Element>,
    errors: Vec<Posted>,
}

static WATCHED: LazyLock<Mutex<Vec<Watched>>> = LazyLock::new(|| Mutex::new(Vec::new()));

fn watched() -> MutexGuard<'static, Vec<Watched>> {
    WATCHED.lock().unwrap_or_else(|e| e.into_inner())
}

mod imp {
    use super::*;

    #[derive(Default)]
    pub struct ErrorWitness;

    #[glib::object_subclass]
    impl ObjectSubclass for ErrorWitness {
        const NAME: &'static str = "GstDreamSimCliErrorWitness";
        type Type = super::ErrorWitness;
        type ParentType = gst::Tracer;
    }

    impl ObjectImpl for ErrorWitness {
        fn constructed(&self) {
            self.parent_constructed();
            self.register_hook(TracerHook::ElementPostMessagePre);
        }
    }

    impl GstObjectImpl for ErrorWitness {}

    impl TracerImpl for ErrorWitness {
        fn element_post_message_pre(
            &self,
            _ts: u64,
            element: &gst::Element,
            message: &gst::Message,
        ) {
            // Only the element that posts its own error (bins forwarding it
            // post it again, with the same source).
            if message.type_() != gst::MessageType::Error
                || message.src() != Some(element.upcast_ref())
            {
                return;
            }
            // No object lock is taken while the list is locked (the
            // ancestry walk locks the element's parents).
            let decoders: Vec<gst::Element> = watched()
                .iter()
                .filter_map(|w| w.decoder.upgrade())
                .collect();
            let Some(decoder) = decoders.iter().find(|d| element.has_as_ancestor(*d)) else {
                return;
            };
            if let Some(w) = watched()
                .iter_mut()
                .find(|w| w.decoder.upgrade().as_ref() == Some(decoder))
            {
                w.errors.push(Posted {
                    element: element.downgrade(),
                    message: message.clone(),
                });
            }
        }
    }
}

glib::wrapper! {
    /// The tracer behind [`lost`].
    pub struct ErrorWitness(ObjectSubclass<imp::ErrorWitness>) @extends gst::Tracer, gst::Object;
}

/// Starts the tracer, once per process. GStreamer takes tracers created
/// before any pipeline goes to PAUSED; [`crate::pipeline::init`] calls this.
pub fn start() {
    static STARTED: OnceLock<()> = OnceLock::new();
    STARTED.get_or_init(|| {
        // Registering its hook gives GStreamer a reference: it lives on.
        let _ = glib::Object::new::<ErrorWitness>();
    });
}

/// Keeps the errors of the elements inside `decoder` (a `uridecodebin` or
/// `decodebin`) for [`lost`]. Forgotten when the decoder is freed.
pub fn watch(decoder: &gst::Element) {
    let mut watched = watched();
    watched.retain(|w| w.decoder.upgrade().is_some());
    watched.push(Watched {
        decoder: decoder.downgrade(),
        errors: Vec::new(),
    });
}

/// An error an element of a decoder of `pipeline` posted that decodebin
/// dropped: the element failed, and the pipeline's bus will never say so.
pub fn lost(pipeline: &gst::Pipeline) -> Option<gst::Message> {
    // The records, taken out of the list: no object lock is taken while the
    // list is locked (the tracer's hook locks the list from streaming
    // threads).
    let taken: Vec<(gst::Element, Vec<Posted>)> = {
        let mut watched = watched();
        watched.retain(|w| w.decoder.upgrade().is_some());
        watched
            .iter_mut()
            .filter(|w| !w.errors.is_empty())
            .filter_map(|w| Some((w.decoder.upgrade()?, std::mem::take(&mut w.errors))))
            .collect()
    };
    let mut found = None;
    let mut keep = Vec::new();
    for (decoder, errors) in taken {
        if !decoder.has_as_ancestor(pipeline) {
            keep.push((decoder, errors));
            continue;
        }
        // Candidates decodebin removed: their errors were meant to go.
        let errors: Vec<Posted> = errors
            .into_iter()
            .filter(|p| {
                p.element
                    .upgrade()
                    .is_some_and(|e| e.has_as_ancestor(&decoder))
            })
            .collect();
        if found.is_none() {
            found = errors
                .iter()
                .find(|p| p.element.upgrade().is_some_and(|e| !e.is_locked_state()))
                .map(|p| p.message.clone());
        }
        keep.push((decoder, errors));
    }
    // Put back what is still pending (before any error posted meanwhile).
    let mut watched = watched();
    for (decoder, mut errors) in keep {
        if let Some(w) = watched
            .iter_mut()
            .find(|w| w.decoder.upgrade().as_ref() == Some(&decoder))
        {
            errors.append(&mut w.errors);
            w.errors = errors;
        }
    }
    found
}
