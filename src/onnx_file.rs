//! What the engine reads from an ONNX file before ONNX Runtime opens it.
//!
//! TensorRT builds its optimisation profile when the session is created, so
//! the input size the model declares (`dreamsim.input_size` in its
//! `metadata_props`) must be known before there is a session to ask. This
//! reads the top level of the `ModelProto` message and seeks over everything
//! else, the graph and its weights included, so it costs a few small reads
//! whatever the model's size.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

/// `ModelProto.metadata_props` (onnx.proto).
const MODEL_METADATA_PROPS: u64 = 14;
/// `StringStringEntryProto.key` and `.value`.
const ENTRY_KEY: u64 = 1;
const ENTRY_VALUE: u64 = 2;

const VARINT: u64 = 0;
const FIXED64: u64 = 1;
const LENGTH_DELIMITED: u64 = 2;
const FIXED32: u64 = 5;

/// The larger a metadata entry may be: entries are short strings; anything
/// bigger means the file is not what it claims.
const MAX_ENTRY: u64 = 1 << 20;

fn invalid(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("not an ONNX model: {what}"),
    )
}

/// A protobuf varint; `None` at a clean end of input.
fn varint(r: &mut impl Read) -> io::Result<Option<u64>> {
    let mut value = 0u64;
    for i in 0..10 {
        let mut byte = [0u8];
        if r.read(&mut byte)? == 0 {
            return if i == 0 {
                Ok(None)
            } else {
                Err(invalid("truncated varint"))
            };
        }
        value |= u64::from(byte[0] & 0x7f) << (7 * i);
        if byte[0] & 0x80 == 0 {
            return Ok(Some(value));
        }
    }
    Err(invalid("varint longer than 10 bytes"))
}

/// Skips a field's payload of wire type `wire`.
fn skip(r: &mut BufReader<File>, wire: u64) -> io::Result<()> {
    let n = match wire {
        VARINT => {
            varint(r)?.ok_or_else(|| invalid("truncated field"))?;
            return Ok(());
        }
        FIXED64 => 8,
        FIXED32 => 4,
        LENGTH_DELIMITED => varint(r)?.ok_or_else(|| invalid("truncated field"))?,
        _ => return Err(invalid("unknown wire type")),
    };
    let n = i64::try_from(n).map_err(|_| invalid("field length"))?;
    r.seek_relative(n)
}

/// Reads one `StringStringEntryProto` of `len` bytes.
fn entry(r: &mut BufReader<File>, len: u64) -> io::Result<(String, String)> {
    if len > MAX_ENTRY {
        return Err(invalid("metadata entry too large"));
    }
    let mut bytes = vec![0u8; len as usize];
    r.read_exact(&mut bytes)?;
    let mut rest = bytes.as_slice();
    let (mut key, mut value) = (String::new(), String::new());
    while let Some(tag) = varint(&mut rest)? {
        let (field, wire) = (tag >> 3, tag & 7);
        if wire != LENGTH_DELIMITED {
            return Err(invalid("metadata entry field"));
        }
        let n = varint(&mut rest)?.ok_or_else(|| invalid("truncated entry"))? as usize;
        if n > rest.len() {
            return Err(invalid("truncated entry"));
        }
        let (text, tail) = rest.split_at(n);
        rest = tail;
        let text = String::from_utf8_lossy(text).into_owned();
        match field {
            ENTRY_KEY => key = text,
            ENTRY_VALUE => value = text,
            _ => {}
        }
    }
    Ok((key, value))
}

/// The model's `metadata_props`, in file order.
pub fn metadata_props(path: &Path) -> io::Result<Vec<(String, String)>> {
    let mut r = BufReader::new(File::open(path)?);
    let mut props = Vec::new();
    while let Some(tag) = varint(&mut r)? {
        let (field, wire) = (tag >> 3, tag & 7);
        if field == MODEL_METADATA_PROPS && wire == LENGTH_DELIMITED {
            let len = varint(&mut r)?.ok_or_else(|| invalid("truncated field"))?;
            props.push(entry(&mut r, len)?);
        } else {
            skip(&mut r, wire)?;
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
    fn a_file_that_is_not_onnx_is_an_error_or_has_no_metadata() {
        assert!(metadata_value(&fixture("corrupt.onnx"), "dreamsim.input_size").is_none());
        assert!(metadata_value(&fixture("reference.png"), "dreamsim.input_size").is_none());
        assert!(metadata_props(Path::new("/nonexistent.onnx")).is_err());
    }
}
