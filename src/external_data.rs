//! The files an ONNX model refers to besides itself, found before ONNX
//! Runtime opens it, so that a model from an untrusted source cannot make the
//! element read files outside the model's own folder.
//!
//! ONNX keeps large tensors as *external data*: a `TensorProto` with
//! `data_location = EXTERNAL` and `external_data` entries whose `location` is
//! a path relative to the model's folder. An `EPContext` node with
//! `embed_mode = 0` names a compiled blob the same way (`ep_cache_context`).
//! ONNX Runtime 1.31 and the 1.24 OpenVINO build both refuse an absolute or
//! escaping location (symbolic links included) themselves; checking here
//! does not depend on which runtime build is loaded, and covers EPContext
//! blobs too.
//!
//! The scan reads the protobuf wire format directly (`crate::onnx_file`'s
//! reader): it descends only into
//! the few message fields that can hold tensors or nodes (model, graph,
//! node, attribute, tensor, sparse tensor, function, training info) and
//! skips everything else by seeking, so a 1 GB model costs a few kilobytes
//! of reads and no copy of its weights. A protobuf library would need the
//! whole file in memory and a schema for it; the wire format needed here is
//! five rules (varint, 64-bit, length-delimited, 32-bit, tags).

use std::fs::File;
use std::io::{BufReader, Read, Seek};
use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};
use crate::onnx_file::{
    entry, value_info_batch, ModelHeader, Reader, Scan, Value, GRAPH_INPUT, MAX_STRING,
    MODEL_METADATA_PROPS,
};

/// One reference from a model to another file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileReference {
    /// What refers to it, for messages: "tensor `proj`'s external data".
    pub what: String,
    /// The location as written in the model.
    pub location: String,
}

/// Field numbers of onnx.proto3 used here.
mod field {
    pub const MODEL_GRAPH: u64 = 7;
    pub const MODEL_TRAINING_INFO: u64 = 20;
    pub const MODEL_FUNCTIONS: u64 = 25;
    pub const TRAINING_INITIALIZATION: u64 = 1;
    pub const TRAINING_ALGORITHM: u64 = 2;
    pub const FUNCTION_NODE: u64 = 7;
    pub const GRAPH_NODE: u64 = 1;
    pub const GRAPH_INITIALIZER: u64 = 5;
    pub const GRAPH_SPARSE_INITIALIZER: u64 = 15;
    pub const NODE_OP_TYPE: u64 = 4;
    pub const NODE_ATTRIBUTE: u64 = 5;
    pub const ATTR_NAME: u64 = 1;
    pub const ATTR_I: u64 = 3;
    pub const ATTR_S: u64 = 4;
    pub const ATTR_T: u64 = 5;
    pub const ATTR_G: u64 = 6;
    pub const ATTR_TENSORS: u64 = 10;
    pub const ATTR_GRAPHS: u64 = 11;
    pub const ATTR_SPARSE_TENSOR: u64 = 22;
    pub const ATTR_SPARSE_TENSORS: u64 = 23;
    pub const SPARSE_VALUES: u64 = 1;
    pub const SPARSE_INDICES: u64 = 2;
    pub const TENSOR_NAME: u64 = 8;
    pub const TENSOR_EXTERNAL_DATA: u64 = 13;
    pub const TENSOR_DATA_LOCATION: u64 = 14;
}

/// `TensorProto.DataLocation.EXTERNAL`.
const EXTERNAL: u64 = 1;
/// Graphs nest through node attributes (If, Loop, Scan); real models nest a
/// few levels, a hostile file could nest without end.
const MAX_DEPTH: usize = 64;
#[derive(Clone, Copy)]
enum Kind {
    Model,
    TrainingInfo,
    Function,
    Graph,
    Node,
    Attribute,
    Tensor,
    Sparse,
}

/// What a message field descends into, if anything.
fn child(kind: Kind, number: u64) -> Option<Kind> {
    use field::*;
    Some(match (kind, number) {
        (Kind::Model, MODEL_GRAPH) => Kind::Graph,
        (Kind::Model, MODEL_TRAINING_INFO) => Kind::TrainingInfo,
        (Kind::Model, MODEL_FUNCTIONS) => Kind::Function,
        (Kind::TrainingInfo, TRAINING_INITIALIZATION | TRAINING_ALGORITHM) => Kind::Graph,
        (Kind::Function, FUNCTION_NODE) => Kind::Node,
        (Kind::Graph, GRAPH_NODE) => Kind::Node,
        (Kind::Graph, GRAPH_INITIALIZER) => Kind::Tensor,
        (Kind::Graph, GRAPH_SPARSE_INITIALIZER) => Kind::Sparse,
        (Kind::Node, NODE_ATTRIBUTE) => Kind::Attribute,
        (Kind::Attribute, ATTR_T | ATTR_TENSORS) => Kind::Tensor,
        (Kind::Attribute, ATTR_G | ATTR_GRAPHS) => Kind::Graph,
        (Kind::Attribute, ATTR_SPARSE_TENSOR | ATTR_SPARSE_TENSORS) => Kind::Sparse,
        (Kind::Sparse, SPARSE_VALUES | SPARSE_INDICES) => Kind::Tensor,
        _ => return None,
    })
}

/// What a node's attribute says, as far as EPContext blobs go.
#[derive(Default)]
struct Attribute {
    name: String,
    i: Option<u64>,
    s: Option<String>,
}

#[derive(Default)]
struct Walk {
    found: Vec<FileReference>,
    /// The model's `metadata_props`.
    metadata: Vec<(String, String)>,
    /// The main graph's inputs and their batch dimension.
    inputs: Vec<(String, Option<usize>)>,
    /// A metadata entry or an input that could not be read (a name over
    /// 64 KiB, say): the whole list is then left empty, as the readers of
    /// metadata and inputs alone leave it, and the model still loads.
    metadata_unreadable: bool,
    inputs_unreadable: bool,
    /// Attributes of the node being read (only the scalar ones kept).
    attributes: Vec<Attribute>,
}

impl Walk {
    fn message<R: Read + Seek>(
        &mut self,
        r: &mut Reader<R>,
        kind: Kind,
        end: u64,
        depth: usize,
    ) -> Scan<()> {
        if depth > MAX_DEPTH {
            return r.fail("messages nest more than 64 levels deep");
        }
        let mut tensor_name = String::new();
        let mut tensor_external = false;
        let mut tensor_locations = Vec::new();
        let mut op_type = String::new();
        let mut node_attributes = Vec::new();
        let mut attribute = Attribute::default();
        while let Some((number, value)) = r.field(end)? {
            let len = match value {
                Value::Bytes(len) => len,
                Value::Varint(v) => {
                    match (kind, number) {
                        (Kind::Tensor, field::TENSOR_DATA_LOCATION) => {
                            tensor_external = v == EXTERNAL
                        }
                        (Kind::Attribute, field::ATTR_I) => attribute.i = Some(v),
                        _ => {}
                    }
                    continue;
                }
                Value::Fixed => continue,
            };
            let field_end = r.pos + len;
            match (kind, number) {
                (Kind::Tensor, field::TENSOR_NAME) => tensor_name = r.string(len, field_end)?,
                (Kind::Tensor, field::TENSOR_EXTERNAL_DATA) => {
                    let (key, value) = entry(r, field_end)?;
                    if key == "location" {
                        tensor_locations.push(value);
                    }
                }
                (Kind::Model, MODEL_METADATA_PROPS) => {
                    match unless_unreadable(r, field_end, |r| entry(r, field_end))? {
                        Some(e) => self.metadata.push(e),
                        None => self.metadata_unreadable = true,
                    }
                }
                // The main graph's (a subgraph's inputs are not the model's).
                (Kind::Graph, GRAPH_INPUT) if depth == 1 => {
                    match unless_unreadable(r, field_end, |r| value_info_batch(r, field_end))? {
                        Some(i) => self.inputs.push(i),
                        None => self.inputs_unreadable = true,
                    }
                }
                (Kind::Node, field::NODE_OP_TYPE) => op_type = r.string(len, field_end)?,
                (Kind::Attribute, field::ATTR_NAME) => attribute.name = r.string(len, field_end)?,
                (Kind::Attribute, field::ATTR_S) if len <= MAX_STRING => {
                    attribute.s = Some(r.string(len, field_end)?)
                }
                _ => match child(kind, number) {
                    Some(inner) => {
                        self.message(r, inner, field_end, depth + 1)?;
                        if matches!((kind, inner), (Kind::Node, Kind::Attribute)) {
                            node_attributes.push(std::mem::take(&mut self.attributes).pop());
                        }
                    }
                    None => r.skip(len, field_end)?,
                },
            }
            if r.pos != field_end {
                return r.fail("a field's length does not match its content");
            }
        }
        match kind {
            Kind::Tensor if tensor_external || !tensor_locations.is_empty() => {
                for location in tensor_locations {
                    self.found.push(FileReference {
                        what: format!("tensor `{tensor_name}`'s external data"),
                        location,
                    });
                }
            }
            Kind::Attribute => self.attributes.push(attribute),
            Kind::Node if op_type == "EPContext" => {
                let attrs: Vec<Attribute> = node_attributes.into_iter().flatten().collect();
                let embedded = attrs
                    .iter()
                    .find(|a| a.name == "embed_mode")
                    .and_then(|a| a.i)
                    .is_none_or(|mode| mode == 1);
                let blob = attrs.into_iter().find(|a| a.name == "ep_cache_context");
                if let (
                    false,
                    Some(Attribute {
                        s: Some(location), ..
                    }),
                ) = (embedded, blob)
                {
                    self.found.push(FileReference {
                        what: "EPContext node's ep_cache_context".into(),
                        location,
                    });
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// A field's content as `read` reads it, or `None` (the field skipped) when
/// it cannot: a field this scan used to seek over must not make the file
/// unreadable now that it is read.
fn unless_unreadable<R: Read + Seek, T>(
    r: &mut Reader<R>,
    field_end: u64,
    read: impl FnOnce(&mut Reader<R>) -> Scan<T>,
) -> Scan<Option<T>> {
    match read(r) {
        Ok(value) => Ok(Some(value)),
        Err(_) if r.pos <= field_end => {
            r.skip(field_end - r.pos, field_end)?;
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Every file an ONNX model in `source` (of `len` bytes) refers to.
pub fn scan<R: Read + Seek>(source: R, len: u64) -> Scan<Vec<FileReference>> {
    walk(source, len).map(|header| header.references)
}

/// The one pass over a model file: its references, metadata and inputs
/// ([`crate::onnx_file::read_header`]).
pub(crate) fn walk<R: Read + Seek>(source: R, len: u64) -> Scan<ModelHeader> {
    let mut r = Reader::new(source);
    let mut walk = Walk::default();
    walk.message(&mut r, Kind::Model, len, 0)?;
    if walk.metadata_unreadable {
        walk.metadata.clear();
    }
    if walk.inputs_unreadable {
        walk.inputs.clear();
    }
    Ok(ModelHeader {
        metadata: walk.metadata,
        inputs: walk.inputs,
        references: walk.found,
    })
}

/// Why `location` (relative to `folder`) is not a file inside `folder`, or
/// `None` when it is.
pub fn escapes(folder: &Path, location: &str) -> Option<String> {
    let relative = Path::new(location);
    if location.is_empty() {
        return Some("is empty".into());
    }
    let drive = location.as_bytes().get(1) == Some(&b':');
    if relative.is_absolute() || location.starts_with(['/', '\\']) || drive {
        return Some("is an absolute path".into());
    }
    if relative
        .components()
        .any(|c| matches!(c, Component::ParentDir) || location.split('\\').any(|p| p == ".."))
    {
        return Some("goes up out of the folder with `..`".into());
    }
    // Inside lexically; a symbolic link may still lead out.
    let target = folder.join(relative);
    if let (Ok(real_folder), Ok(real_target)) = (folder.canonicalize(), target.canonicalize()) {
        if !real_target.starts_with(&real_folder) {
            return Some(format!(
                "leads out of the folder through a symbolic link (to {})",
                real_target.display()
            ));
        }
    }
    None
}

/// Refuses a model that refers to files outside its own folder; a file that
/// is not a readable protobuf is refused too (ONNX Runtime would fail on it).
pub fn check_model_file(path: &Path) -> Result<()> {
    read_checked(path).map(|_| ())
}

/// The model file's [`ModelHeader`], read once, when the model refers to no
/// file outside its own folder (as [`check_model_file`] checks): what
/// [`crate::Model::load`] reads before ONNX Runtime opens the file.
pub fn read_checked(path: &Path) -> Result<ModelHeader> {
    let file = File::open(path).map_err(|source| Error::ModelNotFound {
        path: path.to_path_buf(),
        source,
    })?;
    let len = file
        .metadata()
        .map_err(|source| Error::ModelNotFound {
            path: path.to_path_buf(),
            source,
        })?
        .len();
    let header = walk(BufReader::with_capacity(8192, file), len).map_err(|e| Error::ModelLoad {
        path: path.to_path_buf(),
        message: format!(
            "it is not an ONNX model: the protobuf is malformed at byte {} of {len} ({})",
            e.offset, e.problem
        ),
    })?;
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    for r in &header.references {
        if let Some(why) = escapes(&folder, &r.location) {
            return Err(Error::ModelExternalData {
                path: path.to_path_buf(),
                folder,
                what: r.what.clone(),
                location: r.location.clone(),
                why,
            });
        }
    }
    Ok(header)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn varint(mut v: u64, out: &mut Vec<u8>) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }

    fn bytes_field(number: u64, content: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        varint(number << 3 | 2, &mut out);
        varint(content.len() as u64, &mut out);
        out.extend_from_slice(content);
        out
    }

    fn varint_field(number: u64, v: u64) -> Vec<u8> {
        let mut out = Vec::new();
        varint(number << 3, &mut out);
        varint(v, &mut out);
        out
    }

    fn external_tensor(name: &str, location: &str) -> Vec<u8> {
        let mut entry = bytes_field(1, b"location");
        entry.extend(bytes_field(2, location.as_bytes()));
        let mut t = bytes_field(field::TENSOR_NAME, name.as_bytes());
        t.extend(bytes_field(9, &[0u8; 300])); // raw_data, skipped
        t.extend(bytes_field(field::TENSOR_EXTERNAL_DATA, &entry));
        t.extend(varint_field(field::TENSOR_DATA_LOCATION, EXTERNAL));
        t
    }

    fn model_with_graph(graph: &[u8]) -> Vec<u8> {
        let mut m = varint_field(1, 8); // ir_version
        m.extend(bytes_field(field::MODEL_GRAPH, graph));
        m
    }

    fn scan_bytes(b: &[u8]) -> Scan<Vec<FileReference>> {
        scan(Cursor::new(b), b.len() as u64)
    }

    #[test]
    fn finds_initializers_and_tensors_in_subgraph_attributes() {
        let mut inner = bytes_field(field::GRAPH_INITIALIZER, &external_tensor("w2", "b.bin"));
        inner.extend(bytes_field(2, b"subgraph"));
        let mut attr = bytes_field(field::ATTR_NAME, b"then_branch");
        attr.extend(bytes_field(field::ATTR_G, &inner));
        let mut node = bytes_field(field::NODE_OP_TYPE, b"If");
        node.extend(bytes_field(field::NODE_ATTRIBUTE, &attr));
        let mut graph = bytes_field(field::GRAPH_INITIALIZER, &external_tensor("w", "a.bin"));
        graph.extend(bytes_field(field::GRAPH_NODE, &node));
        let found = scan_bytes(&model_with_graph(&graph)).unwrap();
        let locations: Vec<&str> = found.iter().map(|r| r.location.as_str()).collect();
        assert_eq!(locations, ["a.bin", "b.bin"]);
        assert_eq!(found[0].what, "tensor `w`'s external data");
    }

    #[test]
    fn finds_epcontext_blobs_that_are_not_embedded() {
        let node = |mode: u64| {
            let mut n = bytes_field(field::NODE_OP_TYPE, b"EPContext");
            let mut a = bytes_field(field::ATTR_NAME, b"embed_mode");
            a.extend(varint_field(field::ATTR_I, mode));
            n.extend(bytes_field(field::NODE_ATTRIBUTE, &a));
            let mut a = bytes_field(field::ATTR_NAME, b"ep_cache_context");
            a.extend(bytes_field(field::ATTR_S, b"/etc/shadow"));
            n.extend(bytes_field(field::NODE_ATTRIBUTE, &a));
            bytes_field(field::GRAPH_NODE, &n)
        };
        let found = scan_bytes(&model_with_graph(&node(0))).unwrap();
        assert_eq!(found[0].location, "/etc/shadow");
        assert!(scan_bytes(&model_with_graph(&node(1))).unwrap().is_empty());
    }

    #[test]
    fn malformed_protobufs_are_errors_not_panics() {
        let good = model_with_graph(&bytes_field(
            field::GRAPH_INITIALIZER,
            &external_tensor("w", "a.bin"),
        ));
        for cut in 1..good.len() {
            // Every truncation either fails cleanly or (at a field boundary
            // of the outer message) reads a shorter valid model.
            let _ = scan_bytes(&good[..cut]);
        }
        assert!(scan_bytes(&good[..good.len() - 3]).is_err());
        // A length far beyond the file.
        let mut huge = Vec::new();
        varint(field::MODEL_GRAPH << 3 | 2, &mut huge);
        varint(u64::MAX >> 1, &mut huge);
        assert!(scan_bytes(&huge).is_err());
        // Group wire types are not ONNX.
        assert!(scan_bytes(&[0x0b]).is_err());
        // Graphs nested without end.
        let mut g = Vec::new();
        for _ in 0..200 {
            let mut attr = bytes_field(field::ATTR_G, &g);
            attr = bytes_field(field::NODE_ATTRIBUTE, &attr);
            g = bytes_field(field::GRAPH_NODE, &attr);
        }
        let err = scan_bytes(&model_with_graph(&g)).unwrap_err();
        assert!(err.problem.contains("nest"), "{err:?}");
        assert_eq!(scan_bytes(&[]), Ok(vec![]));
    }

    #[test]
    fn locations_outside_the_folder_are_refused() {
        let dir = std::env::temp_dir().join(format!("dreamsim-ext-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        assert_eq!(escapes(&dir, "weights.bin"), None);
        assert_eq!(escapes(&dir, "sub/weights.bin"), None);
        assert!(escapes(&dir, "./sub/../weights.bin").is_some());
        for bad in [
            "../../etc/hostname",
            "/etc/hostname",
            "sub/../../x",
            "",
            "C:\\x",
            "..\\x",
        ] {
            assert!(escapes(&dir, bad).is_some(), "{bad}");
        }
        let link = dir.join("link.bin");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink("/etc/hostname", &link).unwrap();
        let why = escapes(&dir, "link.bin").unwrap();
        assert!(why.contains("symbolic link"), "{why}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
