//! A small, self-contained mutator for the tests that feed crafted files to
//! the engine's parsers (`index/tests/index_crafted.rs`, `index/tests/fuzz.rs`, `tests/fuzz.rs`): the
//! mutations of AFL-style fuzzers (bit flips, byte changes, "interesting"
//! integers, truncation, insertion, deletion, splicing from another real
//! file), seeded so that a failure can be replayed.

use std::ops::Range;

/// Integers that tend to sit on boundaries (sizes, counts, signs).
const INTERESTING: [u64; 12] = [
    0,
    1,
    2,
    0x7f,
    0x80,
    0xff,
    0x7fff,
    0x8000,
    0xffff,
    0x7fff_ffff,
    0xffff_ffff,
    u64::MAX,
];

/// Seeded mutations of byte strings.
pub struct Mutator {
    rng: fastrand::Rng,
}

impl Mutator {
    /// A mutator whose choices are fixed by `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            rng: fastrand::Rng::with_seed(seed),
        }
    }

    /// A number in `range` (for the callers' own choices).
    pub fn below(&mut self, n: usize) -> usize {
        self.rng.usize(..n.max(1))
    }

    /// One to `max_ops` mutations of `data`, each at a place inside
    /// `region` (clamped to the data as it changes); `donor` is another
    /// real input that chunks are spliced from.
    pub fn mutate(
        &mut self,
        data: &mut Vec<u8>,
        region: Range<usize>,
        donor: &[u8],
        max_ops: usize,
    ) {
        let ops = 1 + self.rng.usize(..max_ops.max(1));
        for _ in 0..ops {
            let end = region.end.min(data.len());
            let start = region.start.min(end);
            if start == end {
                data.extend_from_slice(&[self.rng.u8(..)]);
                continue;
            }
            let at = self.rng.usize(start..end);
            match self.rng.u8(..10) {
                0 => data[at] ^= 1 << self.rng.u8(..8),
                1 => data[at] = self.rng.u8(..),
                2 => {
                    // An interesting integer of 1, 2, 4 or 8 bytes, little-endian.
                    let width = [1, 2, 4, 8][self.rng.usize(..4)];
                    let mut value = INTERESTING[self.rng.usize(..INTERESTING.len())];
                    if self.rng.bool() {
                        // Near an existing value: off by one either way.
                        let mut old = [0u8; 8];
                        let n = width.min(data.len() - at);
                        old[..n].copy_from_slice(&data[at..at + n]);
                        value = u64::from_le_bytes(old).wrapping_add(if self.rng.bool() {
                            1
                        } else {
                            u64::MAX
                        });
                    }
                    let n = width.min(data.len() - at);
                    data[at..at + n].copy_from_slice(&value.to_le_bytes()[..n]);
                }
                3 => data.truncate(at),
                4 => {
                    let n = 1 + self.rng.usize(..16);
                    let bytes: Vec<u8> = (0..n).map(|_| self.rng.u8(..)).collect();
                    data.splice(at..at, bytes);
                }
                5 => {
                    let n = (1 + self.rng.usize(..64)).min(end - at);
                    data.drain(at..at + n);
                }
                6 | 7 if !donor.is_empty() => {
                    // Overwrite with a chunk of the donor.
                    let from = self.rng.usize(..donor.len());
                    let n = (1 + self.rng.usize(..256))
                        .min(donor.len() - from)
                        .min(data.len() - at);
                    data[at..at + n].copy_from_slice(&donor[from..from + n]);
                }
                8 if !donor.is_empty() => {
                    // Insert a chunk of the donor.
                    let from = self.rng.usize(..donor.len());
                    let n = (1 + self.rng.usize(..256)).min(donor.len() - from);
                    data.splice(at..at, donor[from..from + n].iter().copied());
                }
                _ => {
                    // Duplicate a chunk of the input itself somewhere else.
                    let n = (1 + self.rng.usize(..64)).min(data.len() - at);
                    let chunk = data[at..at + n].to_vec();
                    let to = self.rng.usize(start..=end.min(data.len()));
                    data.splice(to..to, chunk);
                }
            }
        }
    }
}

/// Where the header of a `.dsindex` file says its graph starts (see
/// `index/src/embedded.rs`), if the header is readable.
pub fn index_graph_start(data: &[u8]) -> Option<usize> {
    let meta_len = u64::from_le_bytes(data.get(16..24)?.try_into().ok()?) as usize;
    Some(64usize.checked_add(meta_len)?.div_ceil(64) * 64)
}

/// Makes a mutated `.dsindex` pass the checks that are not structural: the
/// graph length in the header made to match the file, both CRCs recomputed
/// (what an attacker who knows the format does).
pub fn fix_index_header(data: &mut [u8]) {
    let Some(graph_start) = index_graph_start(data) else {
        return;
    };
    if data.len() < 64 || graph_start > data.len() {
        return;
    }
    let meta_len = u64::from_le_bytes(data[16..24].try_into().unwrap()) as usize;
    let graph_len = (data.len() - graph_start) as u64;
    data[24..32].copy_from_slice(&graph_len.to_le_bytes());
    let meta_crc = crc32fast::hash(&data[64..64 + meta_len]);
    let graph_crc = crc32fast::hash(&data[graph_start..]);
    data[32..36].copy_from_slice(&meta_crc.to_le_bytes());
    data[36..40].copy_from_slice(&graph_crc.to_le_bytes());
}
