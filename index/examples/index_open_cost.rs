//! What opening an embedded index costs (header, checksums, metadata, the
//! graph's structural check, usearch's view): `index_open_cost N DIM`
//! builds a file of N random DIM-d entries once, then opens it 20 times.

use std::time::Instant;

use dreamsim_index::{
    EmbeddedIndex, EmbeddingIndex, IndexOptions, ModelIdentity, NewEntry, Source,
};

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().unwrap())
        .collect();
    let (n, dim) = (
        args.first().copied().unwrap_or(100_000),
        args.get(1).copied().unwrap_or(32),
    );
    let identity = ModelIdentity {
        kind: "bench".into(),
        dim,
        sha256: "0".repeat(64),
    };
    let path = std::env::temp_dir().join(format!("open-cost-{n}-{dim}.dsindex"));
    if !path.exists() {
        let mut rng = fastrand::Rng::with_seed(1);
        let vectors: Vec<Vec<f32>> = (0..n)
            .map(|_| (0..dim).map(|_| rng.f32() - 0.5).collect())
            .collect();
        let entries: Vec<NewEntry> = vectors
            .iter()
            .enumerate()
            .map(|(i, v)| NewEntry {
                label: i.to_string(),
                source: Source::Other {
                    description: String::new(),
                },
                content_hash: i.to_string(),
                embedding: v,
            })
            .collect();
        let create = IndexOptions {
            create: true,
            ..IndexOptions::default()
        };
        let mut set = EmbeddedIndex::open(&path, Some(&identity), &create).unwrap();
        set.add(&entries).unwrap();
    }
    let bytes = std::fs::read(&path).unwrap();
    let mut opens = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let set = EmbeddedIndex::open(&path, None, &IndexOptions::default()).unwrap();
        opens.push(t.elapsed().as_secs_f64() * 1e3);
        drop(set);
    }
    opens.sort_by(f64::total_cmp);
    let t = Instant::now();
    let crc = crc32fast::hash(&bytes);
    let crc_ms = t.elapsed().as_secs_f64() * 1e3;
    println!(
        "{n} entries x {dim}: file {} bytes; open median {:.2} ms (min {:.2}); CRC of the whole file {crc_ms:.2} ms ({crc:08x})",
        bytes.len(),
        opens[10],
        opens[0]
    );
}
