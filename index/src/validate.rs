//! The structural check of usearch's serialized graph, made before usearch
//! sees the bytes.
//!
//! usearch (2.26) trusts a serialized index: `view` and `load` check the
//! header's sizes against the buffer's length but not the graph itself, and
//! a search then follows whatever neighbour slots and levels the bytes say,
//! so a file changed with its checksum recomputed can make a search read
//! outside the mapping (a segfault) or divide by zero. An index file is
//! shared between machines and reloaded while streams run, so every graph
//! is checked here, whoever wrote it: every size and offset against the
//! blob's length, every header field against what this build writes, every
//! node's level and every neighbour slot against the graph.
//!
//! The layout, read from usearch's headers (`index_dense.hpp`:
//! `index_dense_gt::save_to_stream`; `index.hpp`: `index_gt::save_to_stream`,
//! `node_t`, `neighbors_ref_t`), little-endian, no padding anywhere:
//!
//! | bytes | content |
//! |---|---|
//! | 4 + 4 | rows (vectors, deleted ones included), bytes per vector |
//! | rows x bytes | the vectors |
//! | 64 | dense head: `usearch` magic, version (3 x u16), metric, scalar, key and slot kinds (u8 each), count present, count deleted, dimensions (u64 each), multi (bool), zeros |
//! | 40 | graph header: size, connectivity, connectivity of the base level, max level, entry slot (u64 each) |
//! | size x 2 | each node's level (i16) |
//! | per node | key (u64), level (i16), then for level 0: count (u32) + connectivity-base slots (u32), and for each level above: count (u32) + connectivity slots (u32) |

use std::collections::{BTreeMap, HashSet};

use super::{Entry, EntryId, Quantization};

/// usearch's `metric_kind_t::cos_k`.
const METRIC_COS: u8 = b'c';
/// usearch's `scalar_kind_t` codes.
const SCALAR_F32: u8 = 11;
const SCALAR_F16: u8 = 12;
const SCALAR_I8: u8 = 23;
/// The key type (`u64_k`) and slot type (`u32_k`) of `index_dense_t`.
const KIND_KEY_U64: u8 = 14;
const KIND_SLOT_U32: u8 = 15;
/// The major version whose layout is described above; minor versions
/// before 10 used other scalar-kind codes.
const VERSION_MAJOR: u16 = 2;
const VERSION_MINOR_MIN: u16 = 10;
/// A removed entry's node keeps its place with this key (`free_key_`).
const FREE_KEY: u64 = u64::MAX;
/// Links per node accepted (the command line allows 2 to 100).
pub(super) const MAX_CONNECTIVITY: u64 = 4096;

const DENSE_HEAD_LEN: usize = 64;
const GRAPH_HEADER_LEN: usize = 40;
const NODE_HEAD_LEN: usize = 8 + 2;

fn bytes_per_scalar(q: Quantization) -> usize {
    match q {
        Quantization::F16 => 2,
        Quantization::I8 => 1,
        Quantization::F32 => 4,
    }
}

fn scalar_code(q: Quantization) -> u8 {
    match q {
        Quantization::F16 => SCALAR_F16,
        Quantization::I8 => SCALAR_I8,
        Quantization::F32 => SCALAR_F32,
    }
}

/// A bounds-checked little-endian reader over the blob.
struct Bytes<'a> {
    blob: &'a [u8],
}

impl Bytes<'_> {
    fn get<const N: usize>(&self, at: usize, what: &str) -> Result<[u8; N], String> {
        at.checked_add(N)
            .and_then(|end| self.blob.get(at..end))
            .map(|s| s.try_into().expect("slice of N bytes"))
            .ok_or_else(|| {
                format!(
                    "graph: {what} at byte {at} is beyond the graph's {} bytes",
                    self.blob.len()
                )
            })
    }
    fn u8(&self, at: usize, what: &str) -> Result<u8, String> {
        Ok(self.get::<1>(at, what)?[0])
    }
    fn u16(&self, at: usize, what: &str) -> Result<u16, String> {
        Ok(u16::from_le_bytes(self.get(at, what)?))
    }
    fn i16(&self, at: usize, what: &str) -> Result<i16, String> {
        Ok(i16::from_le_bytes(self.get(at, what)?))
    }
    fn u32(&self, at: usize, what: &str) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.get(at, what)?))
    }
    fn u64(&self, at: usize, what: &str) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.get(at, what)?))
    }
}

fn too_large(what: &str) -> String {
    format!("graph: {what} overflows")
}

/// What the graph must hold: vectors of `dim` values stored as
/// `quantization`, one live node per entry of `entries` (keyed by its id).
pub(super) struct Expected<'a> {
    pub dim: usize,
    pub quantization: Quantization,
    pub entries: &'a BTreeMap<EntryId, Entry>,
}

/// Checks `blob` (usearch's serialized index, as [`super::EmbeddedIndex`]
/// writes it) against the layout above and `expected`; the error says what
/// is wrong, for [`super::IndexError::Corrupt`]. When this returns `Ok`,
/// every offset usearch computes while viewing, loading or searching the
/// graph is inside `blob`.
pub(super) fn check_graph(blob: &[u8], expected: &Expected<'_>) -> Result<(), String> {
    let b = Bytes { blob };

    // The vectors.
    let rows = b.u32(0, "the vector count")? as usize;
    let cols = b.u32(4, "the vector size")? as usize;
    let want_cols = expected
        .dim
        .checked_mul(bytes_per_scalar(expected.quantization))
        .ok_or_else(|| too_large("the vector size"))?;
    if cols != want_cols {
        return Err(format!(
            "graph: vectors of {cols} bytes, {want_cols} expected ({} x {})",
            expected.dim,
            expected.quantization.as_str()
        ));
    }
    let vectors_end = rows
        .checked_mul(cols)
        .and_then(|n| n.checked_add(8))
        .ok_or_else(|| too_large("the vectors' size"))?;
    if vectors_end > blob.len() {
        return Err(format!(
            "graph: {rows} vectors of {cols} bytes do not fit in its {} bytes",
            blob.len()
        ));
    }

    // The dense head.
    let head = vectors_end;
    if b.get::<7>(head, "the usearch header")? != *b"usearch" {
        return Err("graph: no usearch header after the vectors".into());
    }
    let (major, minor) = (
        b.u16(head + 7, "the version")?,
        b.u16(head + 9, "the version")?,
    );
    if major != VERSION_MAJOR || minor < VERSION_MINOR_MIN {
        return Err(format!(
            "graph: written by usearch {major}.{minor}, this build reads {VERSION_MAJOR}.{VERSION_MINOR_MIN} or later 2.x"
        ));
    }
    let metric = b.u8(head + 13, "the metric")?;
    if metric != METRIC_COS {
        return Err(format!(
            "graph: metric code {metric}, cosine ({METRIC_COS}) expected"
        ));
    }
    let scalar = b.u8(head + 14, "the scalar kind")?;
    if scalar != scalar_code(expected.quantization) {
        return Err(format!(
            "graph: scalar kind {scalar}, {} ({}) expected",
            expected.quantization.as_str(),
            scalar_code(expected.quantization)
        ));
    }
    let (key_kind, slot_kind) = (
        b.u8(head + 15, "the key kind")?,
        b.u8(head + 16, "the slot kind")?,
    );
    if key_kind != KIND_KEY_U64 || slot_kind != KIND_SLOT_U32 {
        return Err(format!(
            "graph: key and slot kinds {key_kind} and {slot_kind}, {KIND_KEY_U64} and {KIND_SLOT_U32} expected"
        ));
    }
    let present = b.u64(head + 17, "the count of vectors")?;
    let deleted = b.u64(head + 25, "the count of removed vectors")?;
    let dimensions = b.u64(head + 33, "the dimensions")?;
    let multi = b.u8(head + 41, "the multi flag")?;
    if dimensions != expected.dim as u64 {
        return Err(format!(
            "graph of {dimensions}-d vectors for a {}-d model",
            expected.dim
        ));
    }
    if multi != 0 {
        return Err(format!("graph: multi flag {multi}, 0 expected"));
    }
    if present != expected.entries.len() as u64 {
        return Err(format!(
            "graph holds {present} vectors for {} entries",
            expected.entries.len()
        ));
    }
    if present.checked_add(deleted) != Some(rows as u64) {
        return Err(format!(
            "graph: {present} present and {deleted} removed vectors, but {rows} stored"
        ));
    }

    // The graph header.
    let graph = head + DENSE_HEAD_LEN;
    let size = b.u64(graph, "the node count")?;
    let connectivity = b.u64(graph + 8, "the connectivity")?;
    let connectivity_base = b.u64(graph + 16, "the base connectivity")?;
    let max_level = b.u64(graph + 24, "the top level")?;
    let entry_slot = b.u64(graph + 32, "the entry point")?;
    if size != rows as u64 {
        return Err(format!("graph: {size} nodes for {rows} vectors"));
    }
    if !(2..=MAX_CONNECTIVITY).contains(&connectivity)
        || !(connectivity..=2 * MAX_CONNECTIVITY).contains(&connectivity_base)
    {
        return Err(format!(
            "graph: connectivity {connectivity} (base {connectivity_base}) outside 2 to {MAX_CONNECTIVITY} (base at least the connectivity, at most {})",
            2 * MAX_CONNECTIVITY
        ));
    }
    let size = size as usize;
    if size == 0 {
        // usearch reads nothing more of an empty graph.
        return if graph + GRAPH_HEADER_LEN == blob.len() {
            Ok(())
        } else {
            Err("graph: bytes after an empty graph".into())
        };
    }
    if entry_slot >= size as u64 {
        return Err(format!(
            "graph: entry point {entry_slot} beyond its {size} nodes"
        ));
    }

    // The levels.
    let levels_at = graph + GRAPH_HEADER_LEN;
    let nodes_at = size
        .checked_mul(2)
        .and_then(|n| n.checked_add(levels_at))
        .ok_or_else(|| too_large("the levels' size"))?;
    if nodes_at > blob.len() {
        return Err(format!(
            "graph: the levels of {size} nodes do not fit in its {} bytes",
            blob.len()
        ));
    }
    let mut levels = Vec::with_capacity(size);
    for i in 0..size {
        let level = b.i16(levels_at + 2 * i, "a level")?;
        if level < 0 || level as u64 > max_level {
            return Err(format!(
                "graph: node {i} has level {level}, outside 0 to the top level {max_level}"
            ));
        }
        levels.push(level as usize);
    }
    if levels[entry_slot as usize] as u64 != max_level {
        return Err(format!(
            "graph: the entry point has level {}, not the top level {max_level}",
            levels[entry_slot as usize]
        ));
    }

    // The nodes, one after another, each exactly as long as its level says.
    let (connectivity, connectivity_base) = (connectivity as usize, connectivity_base as usize);
    let list_bytes = 4 + 4 * connectivity;
    let base_bytes = 4 + 4 * connectivity_base;
    let mut keys = HashSet::with_capacity(expected.entries.len());
    let mut removed = 0u64;
    let mut at = nodes_at;
    for (i, &level) in levels.iter().enumerate() {
        let node_len = level
            .checked_mul(list_bytes)
            .and_then(|n| n.checked_add(NODE_HEAD_LEN + base_bytes))
            .ok_or_else(|| too_large("a node's size"))?;
        let end = at
            .checked_add(node_len)
            .ok_or_else(|| too_large("a node's offset"))?;
        if end > blob.len() {
            return Err(format!(
                "graph: node {i} (level {level}) ends at byte {end}, beyond its {} bytes",
                blob.len()
            ));
        }
        let key = b.u64(at, "a key")?;
        let own_level = b.i16(at + 8, "a node's level")?;
        if own_level as i64 != level as i64 {
            return Err(format!(
                "graph: node {i} says level {own_level}, the level table {level}"
            ));
        }
        if key == FREE_KEY {
            removed += 1;
        } else if !expected.entries.contains_key(&key) {
            return Err(format!(
                "graph: node {i} holds id {key}, which has no entry"
            ));
        } else if !keys.insert(key) {
            return Err(format!("graph: id {key} has two nodes"));
        }
        let mut list = at + NODE_HEAD_LEN;
        for l in 0..=level {
            let capacity = if l == 0 {
                connectivity_base
            } else {
                connectivity
            };
            let count = b.u32(list, "a neighbour count")? as usize;
            if count > capacity {
                return Err(format!(
                    "graph: node {i} has {count} neighbours at level {l}, room for {capacity}"
                ));
            }
            for n in 0..count {
                let slot = b.u32(list + 4 + 4 * n, "a neighbour")? as usize;
                match levels.get(slot) {
                    None => {
                        return Err(format!(
                            "graph: node {i}'s neighbour {n} at level {l} is node {slot}, beyond its {size} nodes"
                        ))
                    }
                    Some(&their) if their < l => {
                        return Err(format!(
                            "graph: node {i}'s neighbour {n} at level {l} is node {slot}, which has no level {l}"
                        ))
                    }
                    Some(_) => {}
                }
            }
            list += if l == 0 { base_bytes } else { list_bytes };
        }
        at = end;
    }
    if at != blob.len() {
        return Err(format!(
            "graph: {} bytes after its last node",
            blob.len() - at
        ));
    }
    if removed != deleted {
        return Err(format!(
            "graph: {removed} removed nodes, the header says {deleted}"
        ));
    }
    Ok(())
}
