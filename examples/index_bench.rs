//! The embedding index, measured: embedded HNSW vs exhaustive search vs
//! pgvector, side by side on the same synthetic data (random unit vectors of
//! width 1792, queried with near-duplicates of stored vectors, as a frame
//! re-encoded from a known image would be).
//!
//! ```text
//! cargo run -p dreamsim --example index_bench -- --sizes 10000,100000 --queries 1000 \
//!     [--pg postgresql://... | --no-pg] [--ef 64,256] [--keep] [--dir target/index-bench]
//! cargo run -p dreamsim --example index_bench -- --crossover
//! ```
//!
//! Prints, per size and backend: build time, size on disk, resident memory,
//! recall@1 against exhaustive search, and query latency p50/p99 (one query
//! at a time, as a pipeline asks). `--crossover` times exhaustive vs HNSW
//! search at growing sizes, behind `DEFAULT_EXACT_SEARCH_BELOW`.
//! Figures depend on the machine: quote them with its processor.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use dreamsim::index::{
    self, EmbeddedIndex, EmbeddingIndex, IndexOptions, ModelIdentity, NewEntry, Source,
};

const DIM: usize = 1792;

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
            "-h" | "--help" => {
                println!(
                    "index_bench [--sizes 10000,100000] [--queries 1000] [--pg URI | --no-pg] \
                     [--pg-max N] [--ef 64,256] [--noise 0.3] [--dir DIR] [--keep] [--crossover]"
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
        "| refs | backend | build (s) | on disk (MiB) | RSS (MiB) | recall@1 | p50 (ms) | p99 (ms) |"
    );
    println!("|---:|---|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        println!(
            "| {} | {} | {:.1} | {:.0} | {:.0} | {:.4} | {:.3} | {:.3} |",
            r.size, r.backend, r.build_s, r.disk_mib, r.rss_mib, r.recall, r.p50_ms, r.p99_ms
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
        dim: DIM,
        sha256: "0".repeat(64),
    }
}

fn entries(data: &[f32], first: usize) -> Vec<NewEntry<'_>> {
    data.chunks_exact(DIM)
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
    let mut data = vec![0f32; max * DIM];
    data.chunks_exact_mut(DIM)
        .for_each(|v| random_unit(&mut rng, v));
    let queries: Vec<Vec<f32>> = (0..200)
        .map(|_| {
            let mut q = vec![0f32; DIM];
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
        let (mut set, _) = build_embedded(&path, &data[..n * DIM], &options);
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

fn main() {
    let args = parse_args();
    println!(
        "index_bench: width {DIM}, usearch {}, SIMD {}",
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
        let mut rng = fastrand::Rng::with_seed(n as u64);
        let mut data = vec![0f32; n * DIM];
        data.chunks_exact_mut(DIM)
            .for_each(|v| random_unit(&mut rng, v));
        // Near-duplicates: a stored vector plus noise of norm `noise`
        // (distance about noise^2/2 from its source).
        let queries: Vec<Vec<f32>> = (0..args.queries)
            .map(|_| {
                let src = rng.usize(..n);
                let mut noise = vec![0f32; DIM];
                random_unit(&mut rng, &mut noise);
                let mut q: Vec<f32> = data[src * DIM..(src + 1) * DIM]
                    .iter()
                    .zip(&noise)
                    .map(|(x, e)| x + args.noise * e)
                    .collect();
                unit(&mut q);
                q
            })
            .collect();

        // Embedded: build, then reopen memory-mapped as a pipeline would.
        let path = args.dir.join(format!("bench-{n}.dsindex"));
        let options = IndexOptions {
            create: true,
            exact_search_below: 0,
            ef_search: args.ef[0],
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
        let mut set = EmbeddedIndex::open(&path, Some(&identity()), &options).expect("open");
        let (exact_t, truth) = run_queries(&mut set, &queries, true);
        let rss_exact = rss_mib() - rss_before;
        for &ef in &args.ef {
            set.set_ef_search(ef);
            let (hnsw_t, found) = run_queries(&mut set, &queries, false);
            let rss_hnsw = rss_mib() - rss_before;
            rows.push(Row {
                size: n,
                backend: format!("embedded HNSW (f16, mmap, ef_search {ef})"),
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
            backend: "embedded exhaustive (f16, mmap)".into(),
            build_s,
            disk_mib,
            rss_mib: rss_exact,
            recall: 1.0,
            p50_ms: percentile(&exact_t, 0.5),
            p99_ms: percentile(&exact_t, 0.99),
        });
        drop(set);

        if let Some(uri) = args.pg.as_deref().filter(|_| n <= args.pg_max) {
            let options = IndexOptions {
                create: true,
                ef_search: args.ef[0],
                pg_table: format!("bench_{n}_{}", std::process::id()),
                pg_statement_timeout: Duration::from_secs(3600),
                ..IndexOptions::default()
            };
            let start = Instant::now();
            let mut set = index::open(uri, Some(&identity()), &options).expect("open pg");
            for (i, chunk) in data.chunks(1000 * DIM).enumerate() {
                set.add(&entries(chunk, i * 1000)).expect("pg add");
            }
            let build_s = start.elapsed().as_secs_f64();
            let info = set.info().expect("info");
            drop(set);
            for &ef in &args.ef {
                let options = IndexOptions {
                    ef_search: ef,
                    ..options.clone()
                };
                let mut set = index::open(uri, Some(&identity()), &options).expect("open pg");
                let (pg_t, pg_found) = run_queries(set.as_mut(), &queries, false);
                rows.push(Row {
                    size: n,
                    backend: format!("pgvector HNSW (halfvec, ef_search {ef})"),
                    build_s,
                    disk_mib: info.size_bytes as f64 / (1 << 20) as f64,
                    rss_mib: f64::NAN,
                    recall: recall(&pg_found, &truth),
                    p50_ms: percentile(&pg_t, 0.5),
                    p99_ms: percentile(&pg_t, 0.99),
                });
            }
        }
        println!("-- {n} refs done");
        print_rows(&rows);
        if !args.keep {
            let _ = std::fs::remove_file(&path);
        }
    }
}
