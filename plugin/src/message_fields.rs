//! What the element messages (`dreamsim`, `dreamsim-scene`,
//! `dreamsim-dedup`) share: finding their structure in a bus message,
//! reading its fields with errors that name the message, and wrapping a
//! structure into an element message.

use gst::prelude::*;

/// The structure of `msg` if it is an element message named `name`.
pub(crate) fn element_structure<'a>(
    msg: &'a gst::MessageRef,
    name: &str,
) -> Option<&'a gst::StructureRef> {
    match msg.view() {
        gst::MessageView::Element(e) => e.structure().filter(|s| s.name() == name),
        _ => None,
    }
}

/// An element message carrying `structure`, posted by `src`.
pub(crate) fn element_message(
    structure: gst::Structure,
    src: &impl IsA<gst::Object>,
) -> gst::Message {
    gst::message::Element::builder(structure).src(src).build()
}

/// Typed reads from the structure of the message named `name`; a missing or
/// mistyped field is an error that says which message and field.
pub(crate) struct Fields<'a> {
    structure: &'a gst::StructureRef,
    name: &'static str,
}

impl<'a> Fields<'a> {
    /// Checks that `structure` is named `name`.
    pub(crate) fn of(
        structure: &'a gst::StructureRef,
        name: &'static str,
    ) -> Result<Self, glib::Error> {
        let fields = Self { structure, name };
        if structure.name() != name {
            return Err(fields.bad(&format!("structure is named {}", structure.name())));
        }
        Ok(fields)
    }

    fn bad(&self, e: &dyn std::fmt::Display) -> glib::Error {
        glib::Error::new(
            gst::CoreError::Failed,
            &format!("bad {} message: {e}", self.name),
        )
    }

    /// A field that must be there.
    pub(crate) fn get<T>(&self, field: &str) -> Result<T, glib::Error>
    where
        T: for<'v> glib::value::FromValue<'v> + 'static,
    {
        self.structure.get(field).map_err(|e| self.bad(&e))
    }

    /// A field that may be absent.
    pub(crate) fn optional<T>(&self, field: &str) -> Result<Option<T>, glib::Error>
    where
        T: for<'v> glib::value::FromValue<'v> + 'static,
    {
        self.structure.get_optional(field).map_err(|e| self.bad(&e))
    }

    /// A GstClockTime field that is there but may be NONE.
    pub(crate) fn time(&self, field: &str) -> Result<Option<gst::ClockTime>, glib::Error> {
        self.get::<Option<gst::ClockTime>>(field)
    }
}
