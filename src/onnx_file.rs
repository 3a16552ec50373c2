//! What the engine reads from an ONNX file before ONNX Runtime opens it.
//!
//! TensorRT builds its optimisation profile when the session is created, so
//! the input size the model declares (`dreamsim.input_size` in its
//! `metadata_props`) must be known before there is a session to ask, and
//! the files a model refers to must be checked before ONNX Runtime opens
//! them (`crate::external_data`). Both read the protobuf wire format with
//! the reader here, which seeks over what they do not need (the weights),
//! so they cost a few small reads whatever the model's size.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek};
use std::path::Path;

/// `ModelProto.metadata_props` (onnx.proto).
pub(crate) const MODEL_METADATA_PROPS: u64 = 14;
/// `StringStringEntryProto.key` and `.value`.
const ENTRY_KEY: u64 = 1;
const ENTRY_VALUE: u64 = 2;

/// Longest string read (names, locations); longer ones are not paths.
pub(crate) const MAX_STRING: u64 = 64 * 1024;

/// A malformed protobuf, with the byte offset where it went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanError {
    /// Byte offset in the file.
    pub offset: u64,
    /// What was wrong there.
    pub problem: &'static str,
}

pub(crate) type Scan<T> = std::result::Result<T, ScanError>;

/// What a model load needs from an ONNX file before ONNX Runtime opens it,
/// read in one pass ([`read_header`]): its `metadata_props`, the batch
/// dimension of its graph's inputs, and the files it refers to. The load
/// reads the file once into this and every check takes its facts from it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelHeader {
    /// `metadata_props`, in file order.
    pub metadata: Vec<(String, String)>,
    /// The main graph's inputs: name and first dimension when the file
    /// fixes it (see [`input_fixed_batch`]).
    pub inputs: Vec<(String, Option<usize>)>,
    /// Every file the model refers to (`crate::external_data`).
    pub references: Vec<crate::external_data::FileReference>,
}

impl ModelHeader {
    /// The value of metadata key `key`.
    pub fn metadata_value(&self, key: &str) -> Option<&str> {
        self.metadata
            .iter()
            .find_map(|(k, v)| (k == key).then_some(v.as_str()))
    }

    /// The fixed batch of graph input `name`, when the file fixes one.
    pub fn input_fixed_batch(&self, name: &str) -> Option<usize> {
        self.inputs
            .iter()
            .find_map(|(n, batch)| (n == name).then_some(*batch))
            .flatten()
    }
}

/// Reads the [`ModelHeader`] of the ONNX file in `source` (of `len` bytes),
/// seeking over the weights.
pub fn read_header<R: Read + Seek>(source: R, len: u64) -> Scan<ModelHeader> {
    crate::external_data::walk(source, len)
}

pub(crate) struct Reader<R> {
    inner: R,
    /// Bytes read or skipped so far: the offset in the file.
    pub(crate) pos: u64,
}

pub(crate) enum Value {
    Varint(u64),
    /// A length-delimited field: its length; the reader is at its start.
    Bytes(u64),
    /// A fixed-width field, already skipped.
    Fixed,
}

impl<R: Read + Seek> Reader<R> {
    pub(crate) fn new(inner: R) -> Self {
        Self { inner, pos: 0 }
    }

    pub(crate) fn fail<T>(&self, problem: &'static str) -> Scan<T> {
        Err(ScanError {
            offset: self.pos,
            problem,
        })
    }

    pub(crate) fn byte(&mut self) -> Scan<u8> {
        let mut b = [0u8];
        match self.inner.read_exact(&mut b) {
            Ok(()) => {
                self.pos += 1;
                Ok(b[0])
            }
            Err(_) => self.fail("the file ends inside a field"),
        }
    }

    pub(crate) fn varint(&mut self) -> Scan<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        self.fail("a varint is longer than 10 bytes")
    }

    pub(crate) fn skip(&mut self, n: u64, end: u64) -> Scan<()> {
        if n > end.saturating_sub(self.pos) {
            return self.fail("a field runs past the end of its message");
        }
        let n_i64 = i64::try_from(n).or_else(|_| self.fail("a field is too long"))?;
        if self.inner.seek_relative(n_i64).is_err() {
            return self.fail("cannot seek in the file");
        }
        self.pos += n;
        Ok(())
    }

    pub(crate) fn string(&mut self, len: u64, end: u64) -> Scan<String> {
        if len > end.saturating_sub(self.pos) {
            return self.fail("a field runs past the end of its message");
        }
        if len > MAX_STRING {
            return self.fail("a name or location is longer than 64 KiB");
        }
        let mut buf = vec![0u8; len as usize];
        if self.inner.read_exact(&mut buf).is_err() {
            return self.fail("the file ends inside a field");
        }
        self.pos += len;
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }

    /// The next field of a message that ends at `end`, or `None` at its end.
    pub(crate) fn field(&mut self, end: u64) -> Scan<Option<(u64, Value)>> {
        if self.pos >= end {
            return Ok(None);
        }
        let key = self.varint()?;
        let (number, wire) = (key >> 3, key & 7);
        if number == 0 {
            return self.fail("field number 0");
        }
        let value = match wire {
            0 => Value::Varint(self.varint()?),
            1 => {
                self.skip(8, end)?;
                Value::Fixed
            }
            2 => {
                let len = self.varint()?;
                if len > end.saturating_sub(self.pos) {
                    return self.fail("a field runs past the end of its message");
                }
                Value::Bytes(len)
            }
            5 => {
                self.skip(4, end)?;
                Value::Fixed
            }
            _ => return self.fail("an unknown or group wire type"),
        };
        if self.pos > end {
            return self.fail("a field runs past the end of its message");
        }
        Ok(Some((number, value)))
    }
}

/// Reads a `StringStringEntryProto` (key, value).
pub(crate) fn entry<R: Read + Seek>(r: &mut Reader<R>, end: u64) -> Scan<(String, String)> {
    let (mut key, mut value) = (String::new(), String::new());
    while let Some((number, v)) = r.field(end)? {
        if let Value::Bytes(len) = v {
            let s = r.string(len, end)?;
            match number {
                ENTRY_KEY => key = s,
                ENTRY_VALUE => value = s,
                _ => {}
            }
        }
    }
    Ok((key, value))
}

/// The model's `metadata_props`, in file order.
pub fn metadata_props(path: &Path) -> io::Result<Vec<(String, String)>> {
    let file = File::open(path)?;
    let len = file.metadata()?.len();
    let mut r = Reader::new(BufReader::new(file));
    let mut props = Vec::new();
    let invalid = |e: ScanError| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("not an ONNX model: {} at byte {}", e.problem, e.offset),
        )
    };
    while let Some((number, value)) = r.field(len).map_err(invalid)? {
        if let Value::Bytes(n) = value {
            let end = r.pos + n;
            if number == MODEL_METADATA_PROPS {
                props.push(entry(&mut r, end).map_err(invalid)?);
            } else {
                r.skip(n, end).map_err(invalid)?;
            }
        }
    }
    Ok(props)
}

/// The value of metadata key `key`, when the file can be read and has it.
pub fn metadata_value(path: &Path, key: &str) -> Option<String> {
    metadata_props(path)
        .ok()?
        .into_iter()
        .find_map(|(k, v)| (k == key).then_some(v))
}

/// `ModelProto.graph`, `GraphProto.input`, and the fields down to a
/// dimension of an input's shape (onnx.proto).
const MODEL_GRAPH: u64 = 7;
pub(crate) const GRAPH_INPUT: u64 = 11;
const VALUE_INFO_NAME: u64 = 1;
const VALUE_INFO_TYPE: u64 = 2;
const TYPE_TENSOR: u64 = 1;
const TENSOR_SHAPE: u64 = 2;
const SHAPE_DIM: u64 = 1;
const DIM_VALUE: u64 = 1;

/// The first dimension (the batch) of graph input `name`, as the file
/// declares it: `Some(n)` for a fixed size, `None` when it is symbolic,
/// absent, or the file cannot be read.
///
/// TensorRT's optimisation profile is fixed before a session exists, so a
/// model whose batch is fixed must be known from the file itself.
pub fn input_fixed_batch(path: &Path, name: &str) -> Option<usize> {
    let file = File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    let mut r = Reader::new(BufReader::new(file));
    while let Some((number, value)) = r.field(len).ok()? {
        if let Value::Bytes(n) = value {
            let end = r.pos + n;
            if number == MODEL_GRAPH {
                return graph_input_batch(&mut r, end, name).ok()?;
            }
            r.skip(n, end).ok()?;
        }
    }
    None
}

/// Walks `GraphProto` (ending at `end`) to input `name`'s first dimension.
fn graph_input_batch<R: Read + Seek>(
    r: &mut Reader<R>,
    end: u64,
    name: &str,
) -> Scan<Option<usize>> {
    while let Some((number, value)) = r.field(end)? {
        let Value::Bytes(n) = value else { continue };
        let field_end = r.pos + n;
        if number != GRAPH_INPUT {
            r.skip(n, field_end)?;
            continue;
        }
        let (input_name, batch) = value_info_batch(r, field_end)?;
        if input_name == name {
            return Ok(batch);
        }
    }
    Ok(None)
}

/// A `ValueInfoProto` (ending at `end`): its name and the first dimension
/// of its tensor type, when fixed.
pub(crate) fn value_info_batch<R: Read + Seek>(
    r: &mut Reader<R>,
    end: u64,
) -> Scan<(String, Option<usize>)> {
    let (mut name, mut batch) = (String::new(), None);
    while let Some((number, value)) = r.field(end)? {
        let Value::Bytes(n) = value else { continue };
        let sub_end = r.pos + n;
        match number {
            VALUE_INFO_NAME => name = r.string(n, sub_end)?,
            VALUE_INFO_TYPE => {
                batch = first_dim(r, sub_end)?;
                // first_dim stops at the first dimension: skip the rest.
                r.skip(sub_end - r.pos, sub_end)?;
            }
            _ => r.skip(n, sub_end)?,
        }
    }
    Ok((name, batch))
}

/// The first `dim_value` of a `TypeProto` holding a tensor type, ending at `end`.
fn first_dim<R: Read + Seek>(r: &mut Reader<R>, end: u64) -> Scan<Option<usize>> {
    let mut found = None;
    // TypeProto.tensor_type -> Tensor.shape -> first TensorShapeProto.dim
    // -> Dimension.dim_value; every other field is skipped.
    let path = [TYPE_TENSOR, TENSOR_SHAPE, SHAPE_DIM];
    let mut depth = 0;
    let mut ends = vec![end];
    loop {
        let current_end = *ends.last().expect("never empty");
        let Some((number, value)) = r.field(current_end)? else {
            if depth == 0 {
                return Ok(found);
            }
            // Only the first dimension counts: once inside it, stop.
            if depth == path.len() {
                return Ok(found);
            }
            ends.pop();
            depth -= 1;
            continue;
        };
        match value {
            Value::Bytes(n) if depth < path.len() && number == path[depth] => {
                ends.push(r.pos + n);
                depth += 1;
            }
            Value::Bytes(n) => r.skip(n, current_end)?,
            Value::Varint(v) if depth == path.len() && number == DIM_VALUE => {
                found = usize::try_from(v).ok().filter(|&v| v > 0);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name)
    }

    #[test]
    fn reads_the_metadata_the_fixtures_declare() {
        let props = metadata_props(&fixture("tiny_ensemble.onnx")).unwrap();
        let get = |k: &str| {
            props
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("dreamsim.input_size"), Some("224"));
        assert_eq!(get("dreamsim.type"), Some("fixture_ensemble"));
        assert_eq!(
            metadata_value(&fixture("tiny_dino.onnx"), "dreamsim.type").as_deref(),
            Some("fixture_dino_vitb16")
        );
    }

    #[test]
    fn the_header_holds_what_the_separate_readers_find() {
        for name in [
            "tiny_ensemble.onnx",
            "tiny_dino.onnx",
            "fixed_batch2.onnx",
            "good_small.onnx",
        ] {
            let path = fixture(name);
            let file = File::open(&path).unwrap();
            let len = file.metadata().unwrap().len();
            let header = read_header(BufReader::new(file), len).unwrap();
            assert_eq!(header.metadata, metadata_props(&path).unwrap(), "{name}");
            assert_eq!(
                header.input_fixed_batch("image"),
                input_fixed_batch(&path, "image"),
                "{name}"
            );
            assert!(header.inputs.iter().any(|(n, _)| n == "image"), "{name}");
        }
        assert_eq!(
            read_header_of("fixed_batch2.onnx").input_fixed_batch("image"),
            Some(2)
        );
    }

    fn read_header_of(name: &str) -> ModelHeader {
        let file = File::open(fixture(name)).unwrap();
        let len = file.metadata().unwrap().len();
        read_header(BufReader::new(file), len).unwrap()
    }

    #[test]
    fn a_file_that_is_not_onnx_is_an_error_or_has_no_metadata() {
        assert!(metadata_value(&fixture("corrupt.onnx"), "dreamsim.input_size").is_none());
        assert!(metadata_value(&fixture("reference.png"), "dreamsim.input_size").is_none());
        assert!(metadata_props(Path::new("/nonexistent.onnx")).is_err());
    }
}
