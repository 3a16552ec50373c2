//! `DreamSimMeta`: the per-buffer result of the `dreamsim` element, as a
//! GStreamer custom meta with a typed reader and writer.
//!
//! The meta is registered with no tags, so elements that transform frames
//! (`videoconvert`, `videoscale`) copy it to their output buffers.
//!
//! Structure fields (the schema; all optional ones are absent, never NaN; the
//! reader refuses a meta with a NaN or infinite distance or embedding value
//! as malformed):
//!
//! | field | type | meaning |
//! |---|---|---|
//! | `frame` | u64 | index of the buffer among those the element received since it started |
//! | `distance` | f64 | DreamSim distance to the previous analysed frame; absent on the first |
//! | `reference-distance` | f64 | distance to the reference image; absent without one |
//! | `embedding` | GBytes | the frame's embedding, native-endian f32 (D values) |
//! | `model` | string | the model's type, e.g. `ensemble` |
//! | `reused-from` | u64 | set when the change test (`change-threshold`) found the frame unchanged: the `frame` of the analysed frame whose embedding it carries; absent when the model analysed this frame |
//! | `scene-index` | u64 | set by `dreamsimscene`: index of the scene the frame belongs to |
//! | `scene-start` | bool | set by `dreamsimscene`: true on the first frame of a scene |
//! | `matches` | GstValueArray of `match` structures | set by `dreamsimmatch`: the known items within its threshold, nearest first: `id` (u64), `label` (string), `distance` (f64) |

use std::sync::Once;

use gst::glib;

use crate::structure::{Fields, MalformedStructure};

/// Name under which the meta is registered.
pub const META_NAME: &str = "DreamSimMeta";

const FRAME: &str = "frame";
const DISTANCE: &str = "distance";
const REFERENCE_DISTANCE: &str = "reference-distance";
const EMBEDDING: &str = "embedding";
const MODEL: &str = "model";
const REUSED_FROM: &str = "reused-from";
const SCENE_INDEX: &str = "scene-index";
const SCENE_START: &str = "scene-start";
const MATCHES: &str = "matches";
/// Name of the structures in the `matches` array.
pub const MATCH_STRUCTURE: &str = "match";

/// Registers the custom meta. Idempotent; every reader and writer calls it,
/// so applications need not.
pub fn register() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if !gst::meta::CustomMeta::is_registered(META_NAME) {
            gst::meta::CustomMeta::register(META_NAME, &[]);
        }
    });
}

/// Scene information added by `dreamsimscene`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SceneMark {
    /// Index of the scene this frame belongs to (0 for the first scene).
    pub index: u64,
    /// True when this frame starts the scene.
    pub start: bool,
}

/// A known item that a frame matched, added by `dreamsimmatch`.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexMatch {
    /// The item's id in the index.
    pub id: u64,
    /// Its label.
    pub label: String,
    /// DreamSim distance from the frame to it.
    pub distance: f64,
}

impl IndexMatch {
    /// The `match` structure that carries it in metas and messages.
    pub fn to_structure(&self) -> gst::Structure {
        gst::Structure::builder(MATCH_STRUCTURE)
            .field("id", self.id)
            .field("label", &self.label)
            .field("distance", self.distance)
            .build()
    }

    /// Reads a `match` structure.
    pub fn from_structure(s: &gst::StructureRef) -> Result<Self, MalformedStructure> {
        let f = Fields::of(s, MATCH_STRUCTURE)?;
        Ok(Self {
            id: f.get("id")?,
            label: f.get("label")?,
            distance: f.get("distance")?,
        })
    }

    /// `matches` as a GstValueArray of `match` structures.
    pub(crate) fn to_array(matches: &[IndexMatch]) -> gst::Array {
        gst::Array::new(matches.iter().map(|m| m.to_structure()))
    }

    /// Reads the GstValueArray field `field` of `f`, when present.
    pub(crate) fn read_array(f: &Fields, field: &str) -> Result<Vec<Self>, MalformedStructure> {
        let Some(array) = f.optional::<gst::Array>(field)? else {
            return Ok(Vec::new());
        };
        array
            .iter()
            .map(|v| {
                let s = v
                    .get::<gst::Structure>()
                    .map_err(|e| f.bad(format!("{field}: {e}")))?;
                Self::from_structure(&s)
            })
            .collect()
    }
}

/// The typed content of a `DreamSimMeta`.
#[derive(Debug, Clone, PartialEq)]
pub struct DreamSimMeta {
    /// Index of the buffer among those the `dreamsim` element received.
    pub frame: u64,
    /// Distance to the previous analysed frame (`None` on the first).
    pub distance: Option<f64>,
    /// Distance to the reference image (`None` without a reference).
    pub reference_distance: Option<f64>,
    /// The frame's centred, unit-norm embedding.
    pub embedding: Vec<f32>,
    /// The model's type.
    pub model: String,
    /// `Some(n)`: the change test found this frame unchanged since frame
    /// `n`, the last analysed one, whose embedding it carries (its
    /// `distance` is then 0). `None`: the model analysed this frame.
    pub reused_from: Option<u64>,
    /// Scene information, once `dreamsimscene` has seen the buffer.
    pub scene: Option<SceneMark>,
    /// Known items the frame matched, once `dreamsimmatch` has seen it
    /// (empty otherwise), nearest first.
    pub matches: Vec<IndexMatch>,
}

/// Decodes the embedding bytes into `out` (cleared first), refusing a length
/// that is not whole f32 values and any value that is not finite.
fn embedding_into(
    fields: &Fields,
    bytes: &[u8],
    out: &mut Vec<f32>,
) -> Result<(), MalformedStructure> {
    out.clear();
    if !bytes.len().is_multiple_of(4) {
        return Err(fields.bad(format!(
            "{EMBEDDING} has {} bytes, not a whole number of f32",
            bytes.len()
        )));
    }
    out.extend(
        bytes
            .chunks_exact(4)
            .map(|b| f32::from_ne_bytes([b[0], b[1], b[2], b[3]])),
    );
    if let Some(i) = out.iter().position(|v| !v.is_finite()) {
        let e = fields.bad(format!(
            "{EMBEDDING} value {i} is {}, not a finite number",
            out[i]
        ));
        out.clear();
        return Err(e);
    }
    Ok(())
}

/// The part of a frame's `DreamSimMeta` that a lookup needs (`dreamsimmatch`
/// reads it for every frame): read into buffers that are reused from frame
/// to frame, without building the whole [`DreamSimMeta`] (its matches, its
/// scene, a fresh embedding and model string each time).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct FrameEmbedding {
    /// As [`DreamSimMeta::frame`].
    pub frame: u64,
    /// As [`DreamSimMeta::model`].
    pub model: String,
    /// As [`DreamSimMeta::embedding`].
    pub embedding: Vec<f32>,
}

impl FrameEmbedding {
    /// Reads the frame, model and embedding of `buffer`'s meta into `self`:
    /// `Ok(false)` when it has none, an error when those fields break the
    /// schema (the same rules as [`DreamSimMeta::from_buffer`]; the other
    /// fields are not looked at). On an error `self` holds no embedding.
    pub fn read(&mut self, buffer: &gst::BufferRef) -> Result<bool, MalformedStructure> {
        register();
        let Ok(meta) = gst::meta::CustomMeta::from_buffer(buffer, META_NAME) else {
            return Ok(false);
        };
        self.embedding.clear();
        let f = Fields::of(meta.structure(), META_NAME)?;
        let bytes = f.get::<glib::Bytes>(EMBEDDING)?;
        let model = meta
            .structure()
            .get::<&str>(MODEL)
            .map_err(|e| f.bad(e.to_string()))?;
        self.frame = f.get(FRAME)?;
        embedding_into(&f, &bytes, &mut self.embedding)?;
        self.model.clear();
        self.model.push_str(model);
        Ok(true)
    }
}

impl DreamSimMeta {
    /// True when the model analysed this frame, false when it reused the
    /// embedding of an earlier one (the change test).
    pub fn analysed(&self) -> bool {
        self.reused_from.is_none()
    }

    /// Reads the meta of `buffer`: `None` when it has none, an error when it
    /// breaks the schema above (the same rule as the messages' readers).
    pub fn from_buffer(buffer: &gst::BufferRef) -> Option<Result<Self, MalformedStructure>> {
        register();
        let meta = gst::meta::CustomMeta::from_buffer(buffer, META_NAME).ok()?;
        Some(Self::try_from(meta.structure()))
    }

    /// Whether `buffer` carries a `DreamSimMeta`.
    pub fn is_on(buffer: &gst::BufferRef) -> bool {
        register();
        gst::meta::CustomMeta::from_buffer(buffer, META_NAME).is_ok()
    }

    /// Attaches this meta to `buffer`, replacing one already there.
    pub fn add_to(&self, buffer: &mut gst::BufferRef) -> Result<(), glib::BoolError> {
        register();
        let structure = gst::Structure::from(self);
        let mut meta = match gst::meta::CustomMeta::from_mut_buffer(buffer, META_NAME) {
            Ok(meta) => meta,
            Err(_) => gst::meta::CustomMeta::add(buffer, META_NAME)?,
        };
        let s = meta.mut_structure();
        // Replace field by field: the meta owns its structure.
        s.remove_fields(s.fields().map(|f| f.to_owned()).collect::<Vec<_>>());
        for (name, value) in structure.iter() {
            s.set_value(name, value.clone());
        }
        Ok(())
    }

    /// Records the matches of an existing meta (used by `dreamsimmatch`).
    /// Returns false when the buffer has no `DreamSimMeta`.
    pub fn set_matches(buffer: &mut gst::BufferRef, matches: &[IndexMatch]) -> bool {
        register();
        match gst::meta::CustomMeta::from_mut_buffer(buffer, META_NAME) {
            Ok(mut meta) => {
                meta.mut_structure()
                    .set(MATCHES, IndexMatch::to_array(matches));
                true
            }
            Err(_) => false,
        }
    }

    /// Marks the scene of an existing meta (used by `dreamsimscene`).
    /// Returns false when the buffer has no `DreamSimMeta`.
    pub fn set_scene(buffer: &mut gst::BufferRef, mark: SceneMark) -> bool {
        register();
        match gst::meta::CustomMeta::from_mut_buffer(buffer, META_NAME) {
            Ok(mut meta) => {
                let s = meta.mut_structure();
                s.set(SCENE_INDEX, mark.index);
                s.set(SCENE_START, mark.start);
                true
            }
            Err(_) => false,
        }
    }
}

impl From<&DreamSimMeta> for gst::Structure {
    fn from(m: &DreamSimMeta) -> Self {
        let bytes: Vec<u8> = m.embedding.iter().flat_map(|v| v.to_ne_bytes()).collect();
        let mut s = gst::Structure::builder(META_NAME)
            .field(FRAME, m.frame)
            .field(EMBEDDING, glib::Bytes::from_owned(bytes))
            .field(MODEL, &m.model)
            .build();
        if let Some(d) = m.distance {
            s.set(DISTANCE, d);
        }
        if let Some(d) = m.reference_distance {
            s.set(REFERENCE_DISTANCE, d);
        }
        if let Some(from) = m.reused_from {
            s.set(REUSED_FROM, from);
        }
        if let Some(scene) = m.scene {
            s.set(SCENE_INDEX, scene.index);
            s.set(SCENE_START, scene.start);
        }
        if !m.matches.is_empty() {
            s.set(MATCHES, IndexMatch::to_array(&m.matches));
        }
        s
    }
}

impl TryFrom<&gst::StructureRef> for DreamSimMeta {
    type Error = MalformedStructure;

    fn try_from(s: &gst::StructureRef) -> Result<Self, MalformedStructure> {
        let f = Fields::of(s, META_NAME)?;
        let bytes = f.get::<glib::Bytes>(EMBEDDING)?;
        let distance: Option<f64> = f.optional(DISTANCE)?;
        let reference_distance: Option<f64> = f.optional(REFERENCE_DISTANCE)?;
        let mut embedding = Vec::new();
        embedding_into(&f, &bytes, &mut embedding)?;
        // The schema has no NaN: a meta carrying one (from another writer)
        // is malformed, and the downstream elements treat its frame as
        // unanalysed instead of comparing with NaN.
        for (name, d) in [
            (DISTANCE, distance),
            (REFERENCE_DISTANCE, reference_distance),
        ] {
            if let Some(d) = d.filter(|d| !d.is_finite()) {
                return Err(f.bad(format!("{name} is {d}, not a finite number")));
            }
        }
        let scene = f.optional::<u64>(SCENE_INDEX)?.map(|index| SceneMark {
            index,
            start: false,
        });
        let start = f.optional::<bool>(SCENE_START)?.unwrap_or(false);
        Ok(Self {
            frame: f.get(FRAME)?,
            distance,
            reference_distance,
            embedding,
            model: f.get(MODEL)?,
            reused_from: f.optional(REUSED_FROM)?,
            scene: scene.map(|mark| SceneMark { start, ..mark }),
            matches: IndexMatch::read_array(&f, MATCHES)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> DreamSimMeta {
        DreamSimMeta {
            frame: 7,
            distance: Some(0.25),
            reference_distance: None,
            embedding: vec![0.5, -0.5, 0.5, -0.5],
            model: "ensemble".into(),
            reused_from: None,
            scene: Some(SceneMark {
                index: 2,
                start: true,
            }),
            matches: vec![IndexMatch {
                id: 4,
                label: "a cat".into(),
                distance: 0.03,
            }],
        }
    }

    #[test]
    fn structure_round_trip() {
        gst::init().unwrap();
        let m = sample();
        let s = gst::Structure::from(&m);
        assert!(!s.has_field(REFERENCE_DISTANCE));
        assert_eq!(DreamSimMeta::try_from(s.as_ref()).unwrap(), m);
    }

    #[test]
    fn buffer_round_trip_and_replace() {
        gst::init().unwrap();
        let mut buffer = gst::Buffer::new();
        let b = buffer.get_mut().unwrap();
        assert!(DreamSimMeta::from_buffer(b).is_none());
        let mut m = sample();
        m.add_to(b).unwrap();
        assert_eq!(DreamSimMeta::from_buffer(b).unwrap().unwrap(), m);
        m.distance = None;
        m.scene = None;
        m.matches.clear();
        m.add_to(b).unwrap();
        assert_eq!(DreamSimMeta::from_buffer(b).unwrap().unwrap(), m);
        assert!(DreamSimMeta::set_scene(
            b,
            SceneMark {
                index: 3,
                start: false
            }
        ));
        let read = DreamSimMeta::from_buffer(b).unwrap().unwrap();
        assert_eq!(
            read.scene,
            Some(SceneMark {
                index: 3,
                start: false
            })
        );
    }

    #[test]
    fn reused_from_round_trips_and_is_absent_on_analysed_frames() {
        gst::init().unwrap();
        let analysed = sample();
        let s = gst::Structure::from(&analysed);
        assert!(!s.has_field(REUSED_FROM));
        assert!(DreamSimMeta::try_from(s.as_ref()).unwrap().analysed());
        let mut reused = sample();
        reused.reused_from = Some(3);
        let s = gst::Structure::from(&reused);
        assert_eq!(s.get::<u64>(REUSED_FROM).unwrap(), 3);
        let read = DreamSimMeta::try_from(s.as_ref()).unwrap();
        assert_eq!(read, reused);
        assert!(!read.analysed());
        let mut buffer = gst::Buffer::new();
        reused.add_to(buffer.get_mut().unwrap()).unwrap();
        assert_eq!(DreamSimMeta::from_buffer(&buffer).unwrap().unwrap(), reused);
        // Written by another program with the wrong type: malformed.
        let mut bad = gst::Structure::from(&analysed);
        bad.set(REUSED_FROM, "three");
        assert!(DreamSimMeta::try_from(bad.as_ref()).is_err());
    }

    #[test]
    fn malformed_meta_is_an_error() {
        gst::init().unwrap();
        let s = gst::Structure::builder(META_NAME)
            .field(FRAME, 1u64)
            .build();
        assert!(DreamSimMeta::try_from(s.as_ref()).is_err());
        let s = gst::Structure::builder(META_NAME)
            .field(FRAME, 1u64)
            .field(EMBEDDING, glib::Bytes::from_owned(vec![0u8; 5]))
            .field(MODEL, "x")
            .build();
        assert!(DreamSimMeta::try_from(s.as_ref()).is_err());
    }

    #[test]
    fn non_finite_numbers_make_a_meta_malformed() {
        gst::init().unwrap();
        let mut m = sample();
        m.distance = Some(f64::NAN);
        let e = DreamSimMeta::try_from(gst::Structure::from(&m).as_ref()).unwrap_err();
        assert_eq!(e.reason, "distance is NaN, not a finite number");
        let mut m = sample();
        m.reference_distance = Some(f64::INFINITY);
        let e = DreamSimMeta::try_from(gst::Structure::from(&m).as_ref()).unwrap_err();
        assert_eq!(e.reason, "reference-distance is inf, not a finite number");
        let mut m = sample();
        m.embedding[1] = f32::NAN;
        let e = DreamSimMeta::try_from(gst::Structure::from(&m).as_ref()).unwrap_err();
        assert_eq!(e.reason, "embedding value 1 is NaN, not a finite number");
    }

    #[test]
    fn frame_embedding_reads_what_the_full_reader_reads_and_reuses_its_buffers() {
        gst::init().unwrap();
        let mut read = FrameEmbedding::default();
        let mut buffer = gst::Buffer::new();
        let b = buffer.get_mut().unwrap();
        assert!(!read.read(b).unwrap());
        let m = sample();
        m.add_to(b).unwrap();
        assert!(read.read(b).unwrap());
        assert_eq!(
            read,
            FrameEmbedding {
                frame: m.frame,
                model: m.model.clone(),
                embedding: m.embedding.clone(),
            }
        );
        let capacity = read.embedding.as_ptr();
        assert!(read.read(b).unwrap());
        assert_eq!(read.embedding.as_ptr(), capacity, "the buffer is reused");

        // The same schema rules as the full reader for the fields it reads.
        let mut bad = sample();
        bad.embedding[2] = f32::INFINITY;
        bad.add_to(b).unwrap();
        let e = read.read(b).unwrap_err();
        assert_eq!(e.reason, "embedding value 2 is inf, not a finite number");
        assert!(read.embedding.is_empty());
        let s = gst::Structure::builder(META_NAME)
            .field(FRAME, 1u64)
            .field(EMBEDDING, glib::Bytes::from_owned(vec![0u8; 8]))
            .build();
        let mut meta = gst::meta::CustomMeta::from_mut_buffer(b, META_NAME).unwrap();
        let st = meta.mut_structure();
        st.remove_fields(st.fields().map(|f| f.to_owned()).collect::<Vec<_>>());
        for (name, value) in s.iter() {
            st.set_value(name, value.clone());
        }
        assert!(read.read(b).is_err(), "no model");
    }
}
