//! Set-level statistics of `evaluate`: diversity (mean pairwise distance,
//! the Vendi Score, the share of near-duplicate pairs) and means, each with
//! a bootstrap 95 % interval over items.
//!
//! PLACEHOLDER written by the pipeline side of issue #22 so that its code
//! compiles and its tests run: plain, correct-but-naive bodies behind the
//! agreed signatures. The statistics side replaces this file at merge.

/// An estimate with its bootstrap 95 % interval over items (None when n < 2).
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct Estimate {
    pub value: f64,
    pub ci95: Option<(f64, f64)>,
    pub n: usize,
}

/// Unit-normalised embeddings (DreamSim distance = 1 - cosine).
pub struct Diversity {
    pub mean_distance: Estimate,
    pub vendi: Estimate,
    pub near_duplicate_share: Estimate,
    /// per item: its mean distance to the other items of the set (in input order)
    pub per_item_mean_distance: Vec<f64>,
}

fn distance(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    (1.0 - dot).clamp(0.0, 2.0)
}

/// The 2.5th and 97.5th percentiles of `v` (sorted here).
fn interval(mut v: Vec<f64>) -> Option<(f64, f64)> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    Some((at(0.025), at(0.975)))
}

/// Eigenvalues of the symmetric matrix `m` (n x n, row-major), by cyclic Jacobi.
fn eigenvalues(mut m: Vec<f64>, n: usize) -> Vec<f64> {
    for _sweep in 0..100 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| m[i * n + j] * m[i * n + j])
            .sum();
        if off < 1e-22 {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = m[p * n + q];
                if apq.abs() < 1e-300 {
                    continue;
                }
                let theta = (m[q * n + q] - m[p * n + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let (akp, akq) = (m[k * n + p], m[k * n + q]);
                    m[k * n + p] = c * akp - s * akq;
                    m[k * n + q] = s * akp + c * akq;
                }
                for k in 0..n {
                    let (apk, aqk) = (m[p * n + k], m[q * n + k]);
                    m[p * n + k] = c * apk - s * aqk;
                    m[q * n + k] = s * apk + c * aqk;
                }
            }
        }
    }
    (0..n).map(|i| m[i * n + i]).collect()
}

/// Vendi Score of the items `idx` of the distance matrix `d` (similarity
/// 1 - distance, the cosine): exp of the entropy of the eigenvalues of K/n.
fn vendi(d: &[f64], n_all: usize, idx: &[usize]) -> f64 {
    let n = idx.len();
    let mut k = vec![0.0; n * n];
    for (a, &i) in idx.iter().enumerate() {
        for (b, &j) in idx.iter().enumerate() {
            k[a * n + b] = (1.0 - d[i * n_all + j]) / n as f64;
        }
    }
    let h: f64 = eigenvalues(k, n)
        .into_iter()
        .filter(|&l| l > 1e-12)
        .map(|l| -l * l.ln())
        .sum();
    h.exp()
}

/// Mean pairwise distance and near-duplicate share of the items `idx`
/// (pairs of distinct positions).
fn pairwise(d: &[f64], n_all: usize, idx: &[usize], near: f64) -> (f64, f64) {
    let (mut sum, mut dup, mut pairs) = (0.0, 0usize, 0usize);
    for a in 0..idx.len() {
        for b in a + 1..idx.len() {
            let v = d[idx[a] * n_all + idx[b]];
            sum += v;
            dup += usize::from(v < near);
            pairs += 1;
        }
    }
    if pairs == 0 {
        (0.0, 0.0)
    } else {
        (sum / pairs as f64, dup as f64 / pairs as f64)
    }
}

/// `embeddings`: one unit vector per item (a video: its normalised mean frame embedding).
/// near_duplicate: the distance below which a pair counts as a near duplicate.
pub fn diversity(
    embeddings: &[&[f32]],
    near_duplicate: f64,
    resamples: usize,
    seed: u64,
) -> Diversity {
    let n = embeddings.len();
    let mut d = vec![0.0; n * n];
    for i in 0..n {
        for j in i + 1..n {
            let v = distance(embeddings[i], embeddings[j]);
            d[i * n + j] = v;
            d[j * n + i] = v;
        }
    }
    let all: Vec<usize> = (0..n).collect();
    let (mean, dup) = pairwise(&d, n, &all, near_duplicate);
    let score = if n == 0 { 0.0 } else { vendi(&d, n, &all) };
    let per_item_mean_distance = (0..n)
        .map(|i| {
            if n < 2 {
                0.0
            } else {
                (0..n).map(|j| d[i * n + j]).sum::<f64>() / (n - 1) as f64
            }
        })
        .collect();
    let (mut means, mut dups, mut vendis) = (Vec::new(), Vec::new(), Vec::new());
    if n >= 2 {
        let mut rng = fastrand::Rng::with_seed(seed);
        for _ in 0..resamples {
            let idx: Vec<usize> = (0..n).map(|_| rng.usize(..n)).collect();
            let (m, u) = pairwise(&d, n, &idx, near_duplicate);
            means.push(m);
            dups.push(u);
            // Placeholder: the eigenvalues cost n^3 per replicate.
            if n <= 64 {
                vendis.push(vendi(&d, n, &idx));
            }
        }
    }
    Diversity {
        mean_distance: Estimate {
            value: mean,
            ci95: interval(means),
            n,
        },
        vendi: Estimate {
            value: score,
            ci95: interval(vendis),
            n,
        },
        near_duplicate_share: Estimate {
            value: dup,
            ci95: interval(dups),
            n,
        },
        per_item_mean_distance,
    }
}

/// mean of `values` with a bootstrap 95 % interval
pub fn mean_estimate(values: &[f64], resamples: usize, seed: u64) -> Estimate {
    let n = values.len();
    let mean = |v: &mut dyn Iterator<Item = f64>| {
        let (s, c) = v.fold((0.0, 0usize), |(s, c), x| (s + x, c + 1));
        if c == 0 {
            0.0
        } else {
            s / c as f64
        }
    };
    let value = mean(&mut values.iter().copied());
    let mut reps = Vec::new();
    if n >= 2 {
        let mut rng = fastrand::Rng::with_seed(seed);
        for _ in 0..resamples {
            reps.push(mean(&mut (0..n).map(|_| values[rng.usize(..n)])));
        }
    }
    Estimate {
        value,
        ci95: interval(reps),
        n,
    }
}
