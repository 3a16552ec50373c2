//! The embedding index, measured: embedded HNSW vs exhaustive search vs
//! pgvector, side by side on the same synthetic data (random unit vectors of
//! width 1792, queried with near-duplicates of stored vectors, as a frame
//! re-encoded from a known image would be).
//!
//! ```text
//! cargo run -p dreamsim-index --example index_bench -- --sizes 10000,100000 --queries 1000 \
//!     [--pg postgresql://... | --no-pg] [--ef 64,256] [--keep] [--dir target/index-bench]
//! cargo run -p dreamsim-index --example index_bench -- --crossover
//! ```
//!
//! Prints, per size and backend: build time, size on disk, resident memory,
//! recall@1 against exhaustive search, and query latency p50/p99 (one query
//! at a time, as a pipeline asks). `--crossover` times exhaustive vs HNSW
//! search at growing sizes, behind `DEFAULT_EXACT_SEARCH_BELOW`.
//! Figures depend on the machine: quote them with its processor.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use dreamsim_index::{
    self as index, EmbeddedIndex, EmbeddingIndex, IndexOptions, ModelIdentity, NewEntry,
    Quantization, Source,
};

/// Vector width: the ensemble's 1792 unless `--dim` says otherwise.
static DIM: AtomicUsize = AtomicUsize::new(1792);

fn dim() -> usize {
    DIM.load(Ordering::Relaxed)
}

struct Args {
    sizes: Vec<usize>,
    queries: usize,
    pg: Option<String>,
    pg_max: usize,
    ef: Vec<usize>,
    keep: bool,
    dir: PathBuf,
    crossover: bool,
    noise: f32,
    data: Vec<Data>,
    centres: usize,
    spread: f32,
    graphs: Vec<Graph>,
}

/// What the stored vectors look like.
#[derive(Clone, Copy, PartialEq)]
enum Data {
    /// Uniform on the sphere: no structure, the worst case for a graph index.
    Uniform,
    /// Members scattered around `centres` random centres (spread `spread`),
    /// as embeddings of a catalogue group by subject.
    Clustered,
}

impl Data {
    fn name(self) -> &'static str {
        match self {
            Data::Uniform => "uniform",
            Data::Clustered => "clustered",
        }
    }
}

/// One way of building the embedded graph.
#[derive(Clone, Copy)]
struct Graph {
    connectivity: usize,
    expansion_add: usize,
    quantization: Quantization,
}

impl std::str::FromStr for Graph {
    type Err = String;
    /// `M:EA:Q`, e.g. `16:128:f16`.
    fn from_str(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.split(':').collect();
        let [m, ea, q] = parts[..] else {
            return Err(format!("{s}: want connectivity:expansion_add:quantization"));
        };
        Ok(Graph {
            connectivity: m.parse().map_err(|e| format!("{m}: {e}"))?,
            expansion_add: ea.parse().map_err(|e| format!("{ea}: {e}"))?,
            quantization: q.parse()?,
        })
    }
}

fn parse_args() -> Args {
    let mut args = Args {
        sizes: vec![10_000, 100_000],
        queries: 1000,
        pg: std::env::var("DREAMSIM_TEST_PG").ok(),
        pg_max: 100_000,
        ef: vec![index::DEFAULT_EF_SEARCH],
        keep: false,
        dir: PathBuf::from("target/index-bench"),
        crossover: false,
        noise: 0.3,
        data: vec![Data::Uniform],
        centres: 2000,
        spread: 0.5,
        graphs: vec![Graph {
            connectivity: index::DEFAULT_CONNECTIVITY,
            expansion_add: index::DEFAULT_EXPANSION_ADD,
            quantization: Quantization::F16,
        }],
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--sizes" => {
                args.sizes = value()
                    .split(',')
                    .map(|s| s.parse().expect("--sizes: comma-separated counts"))
                    .collect()
            }
            "--queries" => args.queries = value().parse().expect("--queries: a count"),
            "--pg" => args.pg = Some(value()),
            "--no-pg" => args.pg = None,
            "--pg-max" => args.pg_max = value().parse().expect("--pg-max: a count"),
            "--ef" => {
                args.ef = value()
                    .split(',')
                    .map(|s| s.parse().expect("--ef: comma-separated breadths"))
                    .collect()
            }
            "--keep" => args.keep = true,
            "--dir" => args.dir = PathBuf::from(value()),
            "--noise" => args.noise = value().parse().expect("--noise: a norm"),
            "--crossover" => args.crossover = true,
            "--dim" => DIM.store(value().parse().expect("--dim: a width"), Ordering::Relaxed),
            "--data" => {
                args.data = value()
                    .split(',')
                    .map(|s| match s {
                        "uniform" => Data::Uniform,
                        "clustered" => Data::Clustered,
                        other => panic!("--data: uniform or clustered, not {other}"),
                    })
                    .collect()
            }
            "--centres" => args.centres = value().parse().expect("--centres: a count"),
            "--spread" => args.spread = value().parse().expect("--spread: a norm"),
            "--graphs" => {
                // `none`: PostgreSQL only.
                args.graphs = value()
                    .split(',')
                    .filter(|s| *s != "none")
                    .map(|s| s.parse().unwrap_or_else(|e| panic!("--graphs: {e}")))
                    .collect()
            }
            "-h" | "--help" => {
                println!(
                    "index_bench [--sizes 10000,100000] [--queries 1000] [--pg URI | --no-pg] \
                     [--pg-max N] [--ef 64,256] [--noise 0.3] [--dir DIR] [--keep] [--crossover] \
                     [--data uniform,clustered] [--centres 2000] [--spread 0.5] \
                     [--graphs 16:128:f16,32:256:i8|none] [--dim 1792]"
                );
                std::process::exit(0);
            }
            other => panic!("unknown argument {other}; see --help"),
        }
    }
    args
}

fn unit(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= norm);
}

/// Roughly Gaussian coordinates (sum of uniforms): uniform directions on the sphere.
fn random_unit(rng: &mut fastrand::Rng, out: &mut [f32]) {
    for x in out.iter_mut() {
        *x = (0..4).map(|_| rng.f32()).sum::<f32>() - 2.0;
    }
    unit(out);
}

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e3
}

struct Row {
    size: usize,
    data: &'static str,
    backend: String,
    build_s: f64,
    disk_mib: f64,
    rss_mib: f64,
    recall: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn print_rows(rows: &[Row]) {
    println!(
        "| refs | data | backend | build (s) | on disk (MiB) | RSS (MiB) | recall@1 | p50 (ms) | p99 (ms) |"
    );
    println!("|---:|---|---|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        println!(
            "| {} | {} | {} | {:.1} | {:.0} | {:.0} | {:.4} | {:.3} | {:.3} |",
            r.size,
            r.data,
            r.backend,
            r.build_s,
            r.disk_mib,
            r.rss_mib,
            r.recall,
            r.p50_ms,
            r.p99_ms
        );
    }
}

/// Times each query; returns the sorted latencies and the top-1 ids.
fn run_queries(
    set: &mut dyn EmbeddingIndex,
    queries: &[Vec<f32>],
    exact: bool,
) -> (Vec<Duration>, Vec<u64>) {
    let mut times = Vec::with_capacity(queries.len());
    let mut top = Vec::with_capacity(queries.len());
    for q in queries {
        let start = Instant::now();
        let hits = if exact {
            set.exact_search(q, 1)
        } else {
            set.search(q, 1)
        }
        .expect("search");
        times.push(start.elapsed());
        top.push(hits.first().map_or(0, |m| m.entry.id));
    }
    times.sort();
    (times, top)
}

fn recall(found: &[u64], truth: &[u64]) -> f64 {
    found.iter().zip(truth).filter(|(a, b)| a == b).count() as f64 / truth.len() as f64
}

fn identity() -> ModelIdentity {
    ModelIdentity {
        kind: "synthetic".into(),
        dim: dim(),
        sha256: "0".repeat(64),
    }
}

fn entries(data: &[f32], first: usize) -> Vec<NewEntry<'_>> {
    data.chunks_exact(dim())
        .enumerate()
        .map(|(i, v)| NewEntry {
            label: format!("ref {}", first + i),
            source: Source::Other {
                description: "index_bench".into(),
            },
            content_hash: format!("bench-{}", first + i),
            embedding: v,
        })
        .collect()
}

fn build_embedded(
    path: &std::path::Path,
    data: &[f32],
    options: &IndexOptions,
) -> (EmbeddedIndex, f64) {
    let _ = std::fs::remove_file(path);
    let start = Instant::now();
    let mut set = EmbeddedIndex::open(path, Some(&identity()), options).expect("create index");
    set.add(&entries(data, 0)).expect("add");
    (set, start.elapsed().as_secs_f64())
}

fn crossover(args: &Args) {
    std::fs::create_dir_all(&args.dir).unwrap();
    let mut rng = fastrand::Rng::with_seed(7);
    let max = 50_000;
    let mut data = vec![0f32; max * dim()];
    data.chunks_exact_mut(dim())
        .for_each(|v| random_unit(&mut rng, v));
    let queries: Vec<Vec<f32>> = (0..200)
        .map(|_| {
            let mut q = vec![0f32; dim()];
            random_unit(&mut rng, &mut q);
            q
        })
        .collect();
    println!("| refs | exhaustive p50 (ms) | exhaustive p99 | HNSW p50 (ms) | HNSW p99 |");
    println!("|---:|---:|---:|---:|---:|");
    for n in [1_000, 2_000, 5_000, 10_000, 20_000, 50_000] {
        let options = IndexOptions {
            create: true,
            exact_search_below: 0,
            ef_search: args.ef[0],
            ..IndexOptions::default()
        };
        let path = args.dir.join(format!("crossover-{n}.dsindex"));
        let (mut set, _) = build_embedded(&path, &data[..n * dim()], &options);
        let (exact, _) = run_queries(&mut set, &queries, true);
        let (hnsw, _) = run_queries(&mut set, &queries, false);
        println!(
            "| {n} | {:.3} | {:.3} | {:.3} | {:.3} |",
            percentile(&exact, 0.5),
            percentile(&exact, 0.99),
            percentile(&hnsw, 0.5),
            percentile(&hnsw, 0.99)
        );
        drop(set);
        if !args.keep {
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// `n` stored vectors of the given kind, and `queries` near-duplicates of
/// stored ones (a stored vector plus noise of norm `noise`, renormalised:
/// distance about noise^2/2 from its source).
fn synthetic(args: &Args, kind: Data, n: usize) -> (Vec<f32>, Vec<Vec<f32>>, Vec<u64>) {
    let mut rng = fastrand::Rng::with_seed(n as u64 + kind as u64 * 1_000_003);
    let mut data = vec![0f32; n * dim()];
    match kind {
        Data::Uniform => data
            .chunks_exact_mut(dim())
            .for_each(|v| random_unit(&mut rng, v)),
        Data::Clustered => {
            let mut centres = vec![0f32; args.centres * dim()];
            centres
                .chunks_exact_mut(dim())
                .for_each(|c| random_unit(&mut rng, c));
            let mut e = vec![0f32; dim()];
            for v in data.chunks_exact_mut(dim()) {
                let c = rng.usize(..args.centres);
                random_unit(&mut rng, &mut e);
                let centre = &centres[c * dim()..(c + 1) * dim()];
                for ((x, c), e) in v.iter_mut().zip(centre).zip(&e) {
                    *x = c + args.spread * e;
                }
                unit(v);
            }
        }
    }
    let mut sources = Vec::with_capacity(args.queries);
    let queries = (0..args.queries)
        .map(|_| {
            let src = rng.usize(..n);
            // Entries get ids 1, 2, ... in the order they are added.
            sources.push(src as u64 + 1);
            let mut noise = vec![0f32; dim()];
            random_unit(&mut rng, &mut noise);
            let mut q: Vec<f32> = data[src * dim()..(src + 1) * dim()]
                .iter()
                .zip(&noise)
                .map(|(x, e)| x + args.noise * e)
                .collect();
            unit(&mut q);
            q
        })
        .collect();
    (data, queries, sources)
}

fn main() {
    let args = parse_args();
    println!(
        "index_bench: width {}, usearch {}, SIMD {}",
        dim(),
        usearch::version(),
        usearch::hardware_acceleration_available()
    );
    if args.crossover {
        crossover(&args);
        return;
    }
    std::fs::create_dir_all(&args.dir).unwrap();
    let mut rows = Vec::new();
    for &n in &args.sizes {
        for &kind in &args.data {
            // The truth: the stored vector each query was made from. The
            // noise leaves it the nearest by far (exhaustive rows: 1.0).
            let (data, queries, truth) = synthetic(&args, kind, n);
            for graph in &args.graphs {
                let q = graph.quantization.as_str();
                let (m, ea) = (graph.connectivity, graph.expansion_add);
                // Embedded: build, then reopen memory-mapped as a pipeline would.
                let path = args
                    .dir
                    .join(format!("bench-{n}-{}-{m}-{ea}-{q}.dsindex", kind.name()));
                let options = IndexOptions {
                    create: true,
                    exact_search_below: 0,
                    ef_search: args.ef[0],
                    quantization: graph.quantization,
                    connectivity: m,
                    expansion_add: ea,
                    ..IndexOptions::default()
                };
                // --keep: reuse the file a previous run built for this size.
                let reuse = args.keep
                    && EmbeddedIndex::open(&path, Some(&identity()), &options)
                        .is_ok_and(|mut s| s.len().unwrap_or(0) == n);
                let build_s = if reuse {
                    f64::NAN
                } else {
                    build_embedded(&path, &data, &options).1
                };
                let disk_mib = std::fs::metadata(&path).unwrap().len() as f64 / (1 << 20) as f64;
                let rss_before = rss_mib();
                let mut set =
                    EmbeddedIndex::open(&path, Some(&identity()), &options).expect("open");
                let (exact_t, found) = run_queries(&mut set, &queries, true);
                let rss_exact = rss_mib() - rss_before;
                for &ef in &args.ef {
                    set.set_ef_search(ef);
                    let (hnsw_t, found) = run_queries(&mut set, &queries, false);
                    let rss_hnsw = rss_mib() - rss_before;
                    rows.push(Row {
                        size: n,
                        data: kind.name(),
                        backend: format!("embedded HNSW ({q}, mmap, M {m}, ea {ea}, ef {ef})"),
                        build_s,
                        disk_mib,
                        rss_mib: rss_hnsw,
                        recall: recall(&found, &truth),
                        p50_ms: percentile(&hnsw_t, 0.5),
                        p99_ms: percentile(&hnsw_t, 0.99),
                    });
                }
                rows.push(Row {
                    size: n,
                    data: kind.name(),
                    backend: format!("embedded exhaustive ({q}, mmap)"),
                    build_s,
                    disk_mib,
                    rss_mib: rss_exact,
                    recall: recall(&found, &truth),
                    p50_ms: percentile(&exact_t, 0.5),
                    p99_ms: percentile(&exact_t, 0.99),
                });
                drop(set);
                println!("-- {n} {} {m}:{ea}:{q} done", kind.name());
                print_rows(&rows);
                if !args.keep {
                    let _ = std::fs::remove_file(&path);
                }
            }

            if let Some(uri) = args.pg.as_deref().filter(|_| n <= args.pg_max) {
                pg_rows(&args, uri, kind, n, &data, &queries, &truth, &mut rows);
                println!("-- {n} {} pgvector done", kind.name());
                print_rows(&rows);
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn pg_rows(
    args: &Args,
    uri: &str,
    kind: Data,
    n: usize,
    data: &[f32],
    queries: &[Vec<f32>],
    truth: &[u64],
    rows: &mut Vec<Row>,
) {
    let options = IndexOptions {
        create: true,
        ef_search: args.ef[0],
        pg_table: format!("bench_{n}_{}_{}", kind.name(), std::process::id()),
        pg_statement_timeout: Duration::from_secs(3600),
        ..IndexOptions::default()
    };
    let start = Instant::now();
    let mut set = index::open(uri, Some(&identity()), &options).expect("open pg");
    set.add(&entries(data, 0)).expect("pg add");
    let build_s = start.elapsed().as_secs_f64();
    let info = set.info().expect("info");
    drop(set);
    for &ef in &args.ef {
        let options = IndexOptions {
            ef_search: ef,
            ..options.clone()
        };
        let mut set = index::open(uri, Some(&identity()), &options).expect("open pg");
        let (pg_t, pg_found) = run_queries(set.as_mut(), queries, false);
        rows.push(Row {
            size: n,
            data: kind.name(),
            backend: format!(
                "pgvector HNSW (halfvec, m {}, ef_construction {}, ef {ef})",
                options.connectivity, options.expansion_add
            ),
            build_s,
            disk_mib: info.size_bytes as f64 / (1 << 20) as f64,
            rss_mib: f64::NAN,
            recall: recall(&pg_found, truth),
            p50_ms: percentile(&pg_t, 0.5),
            p99_ms: percentile(&pg_t, 0.99),
        });
    }
}
