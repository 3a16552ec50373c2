//! The one rule for reading what the plugin writes (element messages and
//! `DreamSimMeta`): a typed reader returns `None` when the message or meta
//! is not there, and `Some(Err(MalformedStructure))` when it is there but
//! breaks its documented schema, naming the structure and the field.

use gst::prelude::*;

/// A message or meta that is present but does not follow its schema.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed {structure}: {reason}")]
pub struct MalformedStructure {
    /// The structure's name (`dreamsim`, `DreamSimMeta`, ...).
    pub structure: &'static str,
    /// What is wrong, with the field it concerns.
    pub reason: String,
}

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

/// Typed reads from a structure named `name`; a missing or mistyped field
/// is a [`MalformedStructure`] that names the structure and the field.
pub(crate) struct Fields<'a> {
    structure: &'a gst::StructureRef,
    name: &'static str,
}

impl<'a> Fields<'a> {
    /// Checks that `structure` is named `name`.
    pub(crate) fn of(
        structure: &'a gst::StructureRef,
        name: &'static str,
    ) -> Result<Self, MalformedStructure> {
        let fields = Self { structure, name };
        if structure.name() != name {
            return Err(fields.bad(format!("the structure is named {}", structure.name())));
        }
        Ok(fields)
    }

    /// An error about this structure.
    pub(crate) fn bad(&self, reason: String) -> MalformedStructure {
        MalformedStructure {
            structure: self.name,
            reason,
        }
    }

    /// A field that must be there.
    pub(crate) fn get<T>(&self, field: &str) -> Result<T, MalformedStructure>
    where
        T: for<'v> glib::value::FromValue<'v> + 'static,
    {
        self.structure
            .get(field)
            .map_err(|e| self.bad(e.to_string()))
    }

    /// A field that may be absent.
    pub(crate) fn optional<T>(&self, field: &str) -> Result<Option<T>, MalformedStructure>
    where
        T: for<'v> glib::value::FromValue<'v> + 'static,
    {
        self.structure
            .get_optional(field)
            .map_err(|e| self.bad(e.to_string()))
    }

    /// A GstClockTime field that is there but may be NONE.
    pub(crate) fn time(&self, field: &str) -> Result<Option<gst::ClockTime>, MalformedStructure> {
        self.get::<Option<gst::ClockTime>>(field)
    }
}

/// The typed reader of an element message: `None` for another message,
/// an error for a malformed one.
pub(crate) fn read_message<T>(
    msg: &gst::MessageRef,
    name: &str,
) -> Option<Result<T, MalformedStructure>>
where
    T: for<'s> TryFrom<&'s gst::StructureRef, Error = MalformedStructure>,
{
    element_structure(msg, name).map(T::try_from)
}
