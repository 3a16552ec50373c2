//! The statistics of `gst-dreamsim evaluate`: a set's diversity (mean
//! pairwise DreamSim distance, Vendi Score, share of near-duplicate pairs)
//! with bootstrap 95 % intervals over items, the mean of a per-item figure
//! with its interval, and the paired tests that compare two runs (Wilcoxon
//! signed-rank, paired bootstrap of the mean difference).
//!
//! Everything here is a pure function of its inputs and a seed: the same
//! embeddings, resamples and seed give the same figures on every machine.

use nalgebra::DMatrix;
use serde::{Deserialize, Serialize};

/// An estimate with its bootstrap 95 % interval over items (None when n < 2).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
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

/// The two tails of a 95 % interval.
const LOW_QUANTILE: f64 = 0.025;
const HIGH_QUANTILE: f64 = 0.975;

/// `embeddings`: one unit vector per item (a video: its normalised mean frame embedding).
/// near_duplicate: the distance below which a pair counts as a near duplicate.
///
/// - `mean_distance`: the mean of `1 - cos` over the pairs i < j (0 for
///   fewer than two items).
/// - `vendi`: the Vendi Score, `exp` of the Shannon entropy of the
///   eigenvalues of `K / n`, `K` the items' cosine-similarity matrix (a
///   Gram matrix, so positive semi-definite with unit diagonal): 1 for
///   identical items, k for k orthogonal ones, the "effective number of
///   distinct items" (0 for an empty set).
/// - `near_duplicate_share`: the share of pairs i < j whose distance is
///   below `near_duplicate`.
///
/// The intervals of `mean_distance` and `near_duplicate_share` come from
/// `resamples` bootstrap resamples of the items (drawn with replacement,
/// `seed` fixes them). In a resample an item drawn several times is one
/// item with a weight: a pair of two copies of the same original item is
/// skipped (its distance 0 says nothing about the model, it is an artefact
/// of drawing with replacement), every other pair counts with the product
/// of the two items' counts. All resamples reuse the one distance matrix.
///
/// The Vendi Score's interval, up to [`VENDI_BOOTSTRAP_MAX_ITEMS`] items,
/// is bootstrapped on the same resamples: a resample's kernel is the
/// weighted one (`diag(√w) K diag(√w)`, w = count / n, the exact spectrum
/// of the resampled set with its copies). Copies lower the score (a
/// resample holds about 63 % of the distinct items and the Vendi Score
/// counts distinct items; for k orthogonal items every resample scores
/// below k), so the bootstrap distribution sits below the estimate: the
/// interval is its 2.5 and 97.5 percentiles moved by (estimate - its
/// median), the spread kept and centred on the estimate, held within
/// [1, n]. Each resample costs an eigen solve (O(n³)); above that size the
/// interval is the delta-method one instead (the infinitesimal jackknife):
/// H is a smooth function of `ρ = (1/n) Σ xᵢxᵢᵀ`, item i's influence on it
/// is `-xᵢᵀ ln(ρ) xᵢ - H`, the standard error the root mean square
/// influence over √n, the interval `exp(H ± 1.96 se)` within [1, n], at
/// the cost of one eigendecomposition. Near an isotropic set (every
/// direction equally used, the Vendi Score close to its maximum) the first
/// order vanishes and this interval is narrower than the bootstrap's (half
/// as wide in a unit test on 60 items in 12 dimensions).
///
/// No interval with `resamples == 0` or fewer than two items.
pub fn diversity(
    embeddings: &[&[f32]],
    near_duplicate: f64,
    resamples: usize,
    seed: u64,
) -> Diversity {
    let n = embeddings.len();
    let kernel = cosine_kernel(embeddings);
    let distance = |i: usize, j: usize| 1.0 - kernel[(i, j)];

    let per_item_mean_distance = (0..n)
        .map(|i| {
            if n < 2 {
                return 0.0;
            }
            (0..n)
                .filter(|&j| j != i)
                .map(|j| distance(i, j))
                .sum::<f64>()
                / (n - 1) as f64
        })
        .collect();

    let all = vec![1u32; n];
    let (mean, near) = pair_means(&kernel, &all, near_duplicate).unwrap_or((0.0, 0.0));
    // The eigenvectors (three times the work) only for the delta method.
    let delta_method = n > VENDI_BOOTSTRAP_MAX_ITEMS && resamples > 0;
    let (vendi, vendi_se) = if delta_method {
        vendi_and_error(&kernel)
    } else {
        (vendi_weighted(&kernel, &all), None)
    };

    let (mut mean_ci, mut near_ci, mut vendi_ci) = (None, None, None);
    if n >= 2 && resamples > 0 {
        let mut rng = fastrand::Rng::with_seed(seed);
        let bootstrap_vendi = n <= VENDI_BOOTSTRAP_MAX_ITEMS;
        let (mut means, mut nears, mut vendis) = (
            Vec::with_capacity(resamples),
            Vec::with_capacity(resamples),
            Vec::new(),
        );
        let mut counts = vec![0u32; n];
        for _ in 0..resamples {
            draw_counts(&mut rng, &mut counts);
            // A resample of one distinct item drawn n times has no pair.
            if let Some((m, s)) = pair_means(&kernel, &counts, near_duplicate) {
                means.push(m);
                nears.push(s);
            }
            if bootstrap_vendi {
                vendis.push(vendi_weighted(&kernel, &counts));
            }
        }
        mean_ci = percentile_interval(&mut means);
        near_ci = percentile_interval(&mut nears);
        let top = n as f64;
        vendi_ci = if bootstrap_vendi {
            shifted_interval(&mut vendis, vendi)
        } else {
            vendi_se.map(|se| {
                let h = vendi.ln();
                ((h - Z95 * se).exp(), (h + Z95 * se).exp())
            })
        }
        .map(|(lo, hi)| (lo.clamp(1.0, top), hi.clamp(1.0, top)));
    }
    Diversity {
        mean_distance: Estimate {
            value: mean,
            ci95: mean_ci,
            n,
        },
        vendi: Estimate {
            value: vendi,
            ci95: vendi_ci,
            n,
        },
        near_duplicate_share: Estimate {
            value: near,
            ci95: near_ci,
            n,
        },
        per_item_mean_distance,
    }
}

/// mean of `values` with a bootstrap 95 % interval
///
/// Percentile interval over `resamples` resamples drawn with replacement
/// (`seed` fixes them); none with fewer than two values or no resample.
/// The value of an empty slice is 0 with `n == 0` (callers leave such a
/// metric out rather than print it).
pub fn mean_estimate(values: &[f64], resamples: usize, seed: u64) -> Estimate {
    let n = values.len();
    if n == 0 {
        return Estimate {
            value: 0.0,
            ci95: None,
            n,
        };
    }
    let value = values.iter().sum::<f64>() / n as f64;
    let mut ci95 = None;
    if n >= 2 && resamples > 0 {
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut means: Vec<f64> = (0..resamples)
            .map(|_| (0..n).map(|_| values[rng.usize(0..n)]).sum::<f64>() / n as f64)
            .collect();
        ci95 = percentile_interval(&mut means);
    }
    Estimate { value, ci95, n }
}

/// The cosine-similarity matrix of `embeddings`, each normalised again in
/// f64 (a unit vector stored as f32 is unit to about 1e-7 only), entries
/// clamped to [-1, 1]. A zero vector has similarity 0 with every other
/// item and 1 with itself.
fn cosine_kernel(embeddings: &[&[f32]]) -> DMatrix<f64> {
    let n = embeddings.len();
    let norms: Vec<f64> = embeddings.iter().map(|e| dot(e, e).sqrt()).collect();
    let mut k = DMatrix::<f64>::identity(n, n);
    for i in 0..n {
        for j in 0..i {
            let denominator = norms[i] * norms[j];
            let c = if denominator > 0.0 {
                (dot(embeddings[i], embeddings[j]) / denominator).clamp(-1.0, 1.0)
            } else {
                0.0
            };
            k[(i, j)] = c;
            k[(j, i)] = c;
        }
    }
    k
}

/// Dot product in f64, in eight lanes so that the compiler vectorises it.
fn dot(a: &[f32], b: &[f32]) -> f64 {
    let mut lanes = [0f64; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f64 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(&x, &y)| f64::from(x) * f64::from(y))
        .sum();
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            lanes[l] += f64::from(x[l]) * f64::from(y[l]);
        }
    }
    lanes.iter().sum::<f64>() + tail
}

/// Mean distance and share of distances below `near_duplicate` over the
/// pairs of distinct items, each pair weighted by the product of the
/// items' counts (pairs of copies of one item skipped); None when fewer
/// than two distinct items have a count.
fn pair_means(kernel: &DMatrix<f64>, counts: &[u32], near_duplicate: f64) -> Option<(f64, f64)> {
    let drawn: Vec<usize> = (0..counts.len()).filter(|&i| counts[i] > 0).collect();
    let (mut weight, mut sum, mut near) = (0.0, 0.0, 0.0);
    for (a, &i) in drawn.iter().enumerate() {
        let ci = f64::from(counts[i]);
        for &j in &drawn[..a] {
            let w = ci * f64::from(counts[j]);
            let d = 1.0 - kernel[(i, j)];
            weight += w;
            sum += w * d;
            if d < near_duplicate {
                near += w;
            }
        }
    }
    (weight > 0.0).then(|| (sum / weight, near / weight))
}

/// Largest set whose Vendi Score interval is bootstrapped (1000 resamples
/// of 200 items: about 3 s); larger sets get the delta-method interval.
pub const VENDI_BOOTSTRAP_MAX_ITEMS: usize = 200;

/// The 97.5 % quantile of the standard normal distribution.
const Z95: f64 = 1.959_963_984_540_054;

/// One bootstrap resample: `counts[i]`, how many times item i is drawn
/// out of n draws with replacement.
fn draw_counts(rng: &mut fastrand::Rng, counts: &mut [u32]) {
    let n = counts.len();
    counts.iter_mut().for_each(|c| *c = 0);
    for _ in 0..n {
        counts[rng.usize(0..n)] += 1;
    }
}

/// The Vendi Score of the items whose cosine kernel is `kernel`, and the
/// delta-method standard error of its logarithm (the entropy H; None for
/// fewer than two items). With `K / n = U Λ Uᵀ`, item i's influence on H
/// is `-n Σₖ Uᵢₖ² λₖ ln λₖ - H` (that is `-xᵢᵀ ln(ρ) xᵢ - H` written in
/// the items' space; the influences sum to 0), and
/// `se = sqrt(Σ influence²) / n`.
fn vendi_and_error(kernel: &DMatrix<f64>) -> (f64, Option<f64>) {
    let n = kernel.nrows();
    if n == 0 {
        return (0.0, None);
    }
    let eigen = (kernel / n as f64).symmetric_eigen();
    // λ ln λ, 0 for the zero (or rounding-negative) eigenvalues of a PSD matrix.
    let l_ln_l: Vec<f64> = eigen
        .eigenvalues
        .iter()
        .map(|&l| if l > 0.0 { l * l.ln() } else { 0.0 })
        .collect();
    let h = -l_ln_l.iter().sum::<f64>();
    if n < 2 {
        return (h.exp(), None);
    }
    let u = &eigen.eigenvectors;
    let squares: f64 = (0..n)
        .map(|i| {
            let projection: f64 = (0..n).map(|k| u[(i, k)] * u[(i, k)] * l_ln_l[k]).sum();
            let influence = -(n as f64) * projection - h;
            influence * influence
        })
        .sum();
    (h.exp(), Some(squares.sqrt() / n as f64))
}

/// The Vendi Score of the multiset holding item i `counts[i]` times:
/// `exp(-Σ λ ln λ)` over the eigenvalues λ of `diag(√w) K diag(√w)`,
/// w = counts / total, which are those of the multiset's `K / n` (copies
/// of an item are identical rows).
fn vendi_weighted(kernel: &DMatrix<f64>, counts: &[u32]) -> f64 {
    let drawn: Vec<usize> = (0..counts.len()).filter(|&i| counts[i] > 0).collect();
    let total: f64 = drawn.iter().map(|&i| f64::from(counts[i])).sum();
    if drawn.is_empty() {
        return 0.0;
    }
    let root: Vec<f64> = drawn
        .iter()
        .map(|&i| (f64::from(counts[i]) / total).sqrt())
        .collect();
    let u = drawn.len();
    let m = DMatrix::from_fn(u, u, |a, b| {
        root[a] * root[b] * kernel[(drawn[a], drawn[b])]
    });
    vendi_of_spectrum(m.symmetric_eigenvalues().iter().copied())
}

/// `exp(entropy)` of eigenvalues that sum to 1; the tiny negative ones
/// rounding leaves (the matrix is PSD) count as 0, as `0 ln 0 = 0`.
fn vendi_of_spectrum(eigenvalues: impl Iterator<Item = f64>) -> f64 {
    let entropy: f64 = eigenvalues.filter(|&l| l > 0.0).map(|l| -l * l.ln()).sum();
    entropy.exp()
}

/// The value at quantile `q` of sorted `values`, linear between ranks.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let position = q * (sorted.len() - 1) as f64;
    let (below, above) = (position.floor() as usize, position.ceil() as usize);
    let t = position - below as f64;
    sorted[below] * (1.0 - t) + sorted[above] * t
}

/// The 2.5 and 97.5 percentiles of `values` (sorted here); None for none.
fn percentile_interval(values: &mut [f64]) -> Option<(f64, f64)> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    Some((
        quantile(values, LOW_QUANTILE),
        quantile(values, HIGH_QUANTILE),
    ))
}

/// The percentile interval of `values` moved by `estimate - median`.
fn shifted_interval(values: &mut [f64], estimate: f64) -> Option<(f64, f64)> {
    let (lo, hi) = percentile_interval(values)?;
    let shift = estimate - quantile(values, 0.5);
    Some((lo + shift, hi + shift))
}

// ---- paired tests

/// A Wilcoxon signed-rank test of paired differences.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Wilcoxon {
    /// Sum of the ranks of the positive differences (T+).
    pub statistic: f64,
    /// Non-zero differences ranked.
    pub n: usize,
    /// Two-sided p-value (1 when every difference is zero).
    pub p: f64,
    /// Whether `p` comes from the exact null distribution (otherwise the
    /// normal approximation).
    pub exact: bool,
}

/// Most non-zero differences for which the exact distribution of T+ is
/// used (as scipy does): its counts stay exact in f64 (2^50 < 2^53) and
/// beyond it the normal approximation is accurate to about 1e-3.
pub const WILCOXON_EXACT_MAX: usize = 50;

/// Wilcoxon signed-rank test of `differences` (current - baseline), two
/// sided. Zero differences are dropped (Wilcoxon's own treatment); equal
/// absolute differences get their average rank. Exact null distribution
/// for up to [`WILCOXON_EXACT_MAX`] differences without ties; otherwise the
/// normal approximation with the tie correction of the variance
/// (`Σ (t³ - t) / 48` over groups of t tied ranks), without continuity
/// correction (scipy's defaults, which the unit tests reproduce).
pub fn wilcoxon(differences: &[f64]) -> Wilcoxon {
    let mut nonzero: Vec<f64> = differences.iter().copied().filter(|&d| d != 0.0).collect();
    let n = nonzero.len();
    if n == 0 {
        return Wilcoxon {
            statistic: 0.0,
            n,
            p: 1.0,
            exact: true,
        };
    }
    nonzero.sort_by(|a, b| a.abs().total_cmp(&b.abs()));
    // Average ranks of tied absolute values.
    let mut ranks = vec![0.0; n];
    let mut tie_term = 0.0;
    let mut start = 0;
    while start < n {
        let mut end = start + 1;
        while end < n && nonzero[end].abs() == nonzero[start].abs() {
            end += 1;
        }
        let average = (start + 1 + end) as f64 / 2.0;
        ranks[start..end].iter_mut().for_each(|r| *r = average);
        let t = (end - start) as f64;
        tie_term += t * t * t - t;
        start = end;
    }
    let statistic: f64 = (0..n).filter(|&i| nonzero[i] > 0.0).map(|i| ranks[i]).sum();
    let nf = n as f64;
    if n <= WILCOXON_EXACT_MAX && tie_term == 0.0 {
        return Wilcoxon {
            statistic,
            n,
            p: exact_signed_rank_p(n, statistic.round() as usize),
            exact: true,
        };
    }
    let mean = nf * (nf + 1.0) / 4.0;
    let variance = nf * (nf + 1.0) * (2.0 * nf + 1.0) / 24.0 - tie_term / 48.0;
    let p = if variance > 0.0 {
        let z = (statistic - mean) / variance.sqrt();
        erfc(z.abs() / std::f64::consts::SQRT_2).min(1.0)
    } else {
        1.0
    };
    Wilcoxon {
        statistic,
        n,
        p,
        exact: false,
    }
}

/// Two-sided exact p of T+ = `t` for `n` untied ranks: the number of sign
/// assignments with T+ as extreme, over 2^n, doubled, at most 1.
fn exact_signed_rank_p(n: usize, t: usize) -> f64 {
    let top = n * (n + 1) / 2;
    // counts[s]: subsets of {1..k} whose ranks sum to s.
    let mut counts = vec![0f64; top + 1];
    counts[0] = 1.0;
    for k in 1..=n {
        for s in (k..=top).rev() {
            counts[s] += counts[s - k];
        }
    }
    let total = 2f64.powi(n as i32);
    let lower: f64 = counts[..=t.min(top)].iter().sum();
    let upper: f64 = counts[t.min(top)..].iter().sum();
    (2.0 * lower.min(upper) / total).min(1.0)
}

/// Complementary error function, to about 1e-14 relative: the Maclaurin
/// series of erf below 2 (its terms stay below 1e2 there, so little is lost
/// to cancellation) and the continued fraction of erfc above (Lentz's
/// method), so p-values far in the tail keep their digits.
pub fn erfc(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    if x < 0.0 {
        return 2.0 - erfc(-x);
    }
    if x < 2.0 {
        // erf(x) = 2/sqrt(pi) * sum (-1)^k x^(2k+1) / (k! (2k+1))
        let (mut term, mut sum, x2) = (x, x, x * x);
        for k in 1..200 {
            term *= -x2 / k as f64;
            let add = term / (2 * k + 1) as f64;
            sum += add;
            if add.abs() < 1e-17 * sum.abs() {
                break;
            }
        }
        return 1.0 - sum * 2.0 / std::f64::consts::PI.sqrt();
    }
    if x > 27.0 {
        return 0.0;
    }
    // erfc(x) = exp(-x^2)/sqrt(pi) * 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + ...))))
    // as b0 + a1/(b1 + a2/(b2 + ...)), b = x, a_k = k/2, by Lentz's method.
    let tiny = 1e-300;
    let mut f = x;
    let (mut c, mut d) = (x, 0.0);
    for k in 1..500 {
        let a = k as f64 / 2.0;
        d = x + a * d;
        d = if d == 0.0 { tiny } else { d };
        c = x + a / c;
        c = if c == 0.0 { tiny } else { c };
        d = 1.0 / d;
        let delta = c * d;
        f *= delta;
        if (delta - 1.0).abs() < 1e-16 {
            break;
        }
    }
    (-x * x).exp() / (std::f64::consts::PI.sqrt() * f)
}

/// The mean of paired differences (current - baseline) with its paired
/// bootstrap interval (pairs resampled together) and the Wilcoxon test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PairedChange {
    pub difference: Estimate,
    pub wilcoxon: Wilcoxon,
}

/// Compares paired values: `pairs[i] = (baseline, current)` of item i.
pub fn paired_change(pairs: &[(f64, f64)], resamples: usize, seed: u64) -> PairedChange {
    let differences: Vec<f64> = pairs.iter().map(|&(b, c)| c - b).collect();
    PairedChange {
        difference: mean_estimate(&differences, resamples, seed),
        wilcoxon: wilcoxon(&differences),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` random unit vectors of `dim` components, reproducible by seed.
    fn random_units(n: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
        let mut rng = fastrand::Rng::with_seed(seed);
        (0..n)
            .map(|_| {
                let v: Vec<f32> = (0..dim).map(|_| rng.f32() * 2.0 - 1.0).collect();
                let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                v.iter().map(|x| x / norm).collect()
            })
            .collect()
    }

    fn refs(v: &[Vec<f32>]) -> Vec<&[f32]> {
        v.iter().map(Vec::as_slice).collect()
    }

    fn close(a: f64, b: f64, tolerance: f64) -> bool {
        (a - b).abs() <= tolerance * b.abs().max(1e-300)
    }

    #[test]
    fn identical_items_have_no_diversity_and_a_vendi_score_of_one() {
        let one = random_units(1, 64, 3).remove(0);
        let set = vec![one; 12];
        let d = diversity(&refs(&set), 0.05, 200, 1);
        assert!(d.mean_distance.value.abs() < 1e-9, "{:?}", d.mean_distance);
        assert!((d.vendi.value - 1.0).abs() < 1e-9, "{:?}", d.vendi);
        assert_eq!(d.near_duplicate_share.value, 1.0);
        let (lo, hi) = d.mean_distance.ci95.unwrap();
        assert!(lo.abs() < 1e-9 && hi.abs() < 1e-9);
        let (lo, hi) = d.vendi.ci95.unwrap();
        assert!(
            (lo - 1.0).abs() < 1e-9 && (hi - 1.0).abs() < 1e-9,
            "{lo} {hi}"
        );
        assert!(d.per_item_mean_distance.iter().all(|x| x.abs() < 1e-9));
        assert_eq!(d.mean_distance.n, 12);
    }

    #[test]
    fn k_orthogonal_items_have_diversity_one_and_a_vendi_score_of_k() {
        for k in [2usize, 5, 9] {
            let set: Vec<Vec<f32>> = (0..k)
                .map(|i| {
                    let mut v = vec![0f32; 16];
                    v[i] = 1.0;
                    v
                })
                .collect();
            let d = diversity(&refs(&set), 0.05, 100, 7);
            assert!((d.mean_distance.value - 1.0).abs() < 1e-12);
            assert!(
                (d.vendi.value - k as f64).abs() < 1e-9,
                "{k}: {:?}",
                d.vendi
            );
            assert_eq!(d.near_duplicate_share.value, 0.0);
            assert!(d.per_item_mean_distance.iter().all(|&x| x == 1.0));
            // Every resample's pairs of distinct items are at distance 1.
            assert_eq!(d.mean_distance.ci95, Some((1.0, 1.0)));
            let (lo, hi) = d.vendi.ci95.unwrap();
            assert!(lo >= 1.0 && hi <= k as f64 && lo <= hi, "{lo} {hi}");
        }
    }

    #[test]
    fn the_vendi_score_is_the_exponential_of_the_eigenvalue_entropy() {
        // Two equal items and one orthogonal: K / 3 has eigenvalues 2/3
        // and 1/3, exp(H) = exp(-(2/3 ln 2/3 + 1/3 ln 1/3)) = 1.8899...
        let set = vec![vec![1.0, 0.0], vec![1.0, 0.0], vec![0.0, 1.0]];
        let d = diversity(&refs(&set), 0.05, 0, 1);
        let h: f64 = -(2.0 / 3.0 * (2.0f64 / 3.0).ln() + 1.0 / 3.0 * (1.0f64 / 3.0).ln());
        assert!((d.vendi.value - h.exp()).abs() < 1e-9, "{}", d.vendi.value);
        assert!((d.mean_distance.value - 2.0 / 3.0).abs() < 1e-12);
        assert!((d.near_duplicate_share.value - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(d.per_item_mean_distance, vec![0.5, 0.5, 1.0]);
        assert_eq!(d.mean_distance.ci95, None, "no interval without resamples");
        // More distinct items raise both figures.
        let more = random_units(8, 32, 2);
        let fewer: Vec<Vec<f32>> = (0..8).map(|i| more[i % 2].clone()).collect();
        let (a, b) = (
            diversity(&refs(&more), 0.05, 0, 1),
            diversity(&refs(&fewer), 0.05, 0, 1),
        );
        assert!(a.mean_distance.value > b.mean_distance.value);
        assert!(
            a.vendi.value > b.vendi.value + 3.0,
            "{} {}",
            a.vendi.value,
            b.vendi.value
        );
    }

    /// The delta-method error of ln(Vendi) against the spread of the
    /// bootstrap (the resampled kernels, copies weighted): the same
    /// sampling variance far from isotropy, narrower near it (the first
    /// order vanishes at the maximum), never much wider.
    #[test]
    fn the_delta_method_error_against_the_bootstrap_spread() {
        for (n, dim, seed, agrees) in [(40, 6, 1, true), (60, 12, 2, false), (30, 64, 3, false)] {
            let set = random_units(n, dim, seed);
            let kernel = cosine_kernel(&refs(&set));
            let (vendi, se) = vendi_and_error(&kernel);
            let se = se.unwrap();
            let mut rng = fastrand::Rng::with_seed(seed);
            let mut counts = vec![0u32; n];
            let logs: Vec<f64> = (0..400)
                .map(|_| {
                    draw_counts(&mut rng, &mut counts);
                    vendi_weighted(&kernel, &counts).ln()
                })
                .collect();
            let mean = logs.iter().sum::<f64>() / logs.len() as f64;
            let sd = (logs.iter().map(|l| (l - mean).powi(2)).sum::<f64>()
                / (logs.len() - 1) as f64)
                .sqrt();
            let ratio = se / sd;
            let range = if agrees { 0.7..1.4 } else { 0.0..1.4 };
            assert!(
                range.contains(&ratio),
                "n {n} dim {dim}: delta-method se {se}, bootstrap sd {sd}"
            );
            // The bootstrap's resampled scores sit below the estimate; the
            // interval, moved, holds it.
            assert!(mean < vendi.ln(), "{mean} {}", vendi.ln());
            let d = diversity(&refs(&set), 0.05, 200, 1);
            let (lo, hi) = d.vendi.ci95.unwrap();
            assert!(lo < vendi && vendi < hi, "{lo} {vendi} {hi}");
        }
    }

    #[test]
    fn small_and_empty_sets_have_no_interval() {
        let set = random_units(1, 8, 1);
        let d = diversity(&refs(&set), 0.05, 100, 1);
        assert_eq!(
            d.mean_distance,
            Estimate {
                value: 0.0,
                ci95: None,
                n: 1
            }
        );
        assert_eq!(d.vendi.value, 1.0);
        assert_eq!(d.per_item_mean_distance, vec![0.0]);
        let d = diversity(&[], 0.05, 100, 1);
        assert_eq!(
            d.vendi,
            Estimate {
                value: 0.0,
                ci95: None,
                n: 0
            }
        );
        assert_eq!(mean_estimate(&[], 100, 1).n, 0);
        assert_eq!(mean_estimate(&[0.3], 100, 1).ci95, None);
    }

    #[test]
    fn intervals_are_reproducible_by_seed_and_hold_the_estimate() {
        let set = random_units(30, 48, 11);
        let a = diversity(&refs(&set), 0.9, 300, 5);
        let b = diversity(&refs(&set), 0.9, 300, 5);
        let c = diversity(&refs(&set), 0.9, 300, 6);
        for (x, y) in [
            (a.mean_distance, b.mean_distance),
            (a.vendi, b.vendi),
            (a.near_duplicate_share, b.near_duplicate_share),
        ] {
            assert_eq!(x, y);
        }
        assert_ne!(a.mean_distance.ci95, c.mean_distance.ci95);
        for e in [a.mean_distance, a.vendi, a.near_duplicate_share] {
            let (lo, hi) = e.ci95.unwrap();
            assert!(lo <= e.value && e.value <= hi, "{e:?}");
            assert!(hi > lo, "{e:?}");
        }
        // The mean of the per-item means is the mean pairwise distance.
        let mean = a.per_item_mean_distance.iter().sum::<f64>() / 30.0;
        assert!((mean - a.mean_distance.value).abs() < 1e-12);

        let values: Vec<f64> = (0..40).map(|i| f64::from(i % 7)).collect();
        let e = mean_estimate(&values, 500, 3);
        assert!((e.value - values.iter().sum::<f64>() / 40.0).abs() < 1e-12);
        let (lo, hi) = e.ci95.unwrap();
        assert!(lo < e.value && e.value < hi && hi - lo < 2.0, "{e:?}");
        assert_eq!(e, mean_estimate(&values, 500, 3));
    }

    /// Reference p-values from scipy 1.17.1 (`scipy.stats.wilcoxon`,
    /// computed in a throwaway venv for this test): `method='exact'` for
    /// the untied cases of up to 50 differences, `method='approx',
    /// correction=False, zero_method='wilcox'` otherwise.
    #[test]
    fn wilcoxon_p_values_match_scipy() {
        let exact8 = [1.5, -0.3, 2.1, 0.7, -1.2, 3.3, 0.4, 2.8];
        let w = wilcoxon(&exact8);
        assert!(w.exact && w.n == 8);
        assert!(close(w.p, 0.078125, 1e-12), "{w:?}");

        let exact15 = [
            0.1, 0.2, -0.3, 0.4, -0.5, 0.6, 0.7, -0.8, 0.9, 1.0, 1.1, -1.2, 1.3, 1.4, 1.5,
        ];
        let w = wilcoxon(&exact15);
        assert!(w.exact);
        assert!(close(w.p, 0.072998046875, 1e-12), "{w:?}");

        // Ties and zeros: the normal approximation with the tie correction.
        let ties20 = [
            0.5, -0.5, 1.0, 1.0, 1.0, -2.0, 0.0, 0.0, 3.0, 3.0, -0.25, 4.0, 5.0, 6.0, 6.0, 7.0,
            -8.0, 9.0, 10.0, 11.0,
        ];
        let w = wilcoxon(&ties20);
        assert!(!w.exact && w.n == 18, "{w:?}");
        assert!(close(w.p, 0.008917724077088822, 1e-9), "{w:?}");

        let d3: Vec<f64> = (0..60)
            .map(|i| (((i * 37) % 61) as f64 - 30.5) + i as f64 * 0.001)
            .collect();
        let w = wilcoxon(&d3);
        assert!(!w.exact && w.statistic == 906.0, "{w:?}");
        assert!(close(w.p, 0.9471752654324596, 1e-9), "{w:?}");
        let d5: Vec<f64> = d3.iter().map(|x| x + 8.0).collect();
        assert!(close(wilcoxon(&d5).p, 0.002733918005830254, 1e-9));

        // Far in the tail.
        let mut d4: Vec<f64> = (0..60).map(|i| i as f64 + 1.0).collect();
        d4[0] = -1.0;
        assert!(close(wilcoxon(&d4).p, 1.7141493981716166e-11, 1e-8));

        // Every pair of one sign: the smallest exact p, 2 / 2^n.
        assert_eq!(wilcoxon(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).p, 2.0 / 64.0);
        assert_eq!(wilcoxon(&[0.0, 0.0]).p, 1.0);
        assert_eq!(wilcoxon(&[]).p, 1.0);
    }

    /// Reference values from scipy 1.17.1 `scipy.special.erfc`.
    #[test]
    fn erfc_matches_scipy() {
        for (x, want) in [
            (0.0, 1.0),
            (0.3, 0.6713732405408726),
            (1.0, 0.15729920705028516),
            (1.9, 0.007209570764742531),
            (2.0, 0.004677734981047266),
            (2.5, 0.00040695201744495886),
            (4.0, 1.541725790028002e-08),
            (6.0, 2.1519736712498913e-17),
            (10.0, 2.0884875837625446e-45),
            (-1.0, 1.8427007929497148),
        ] {
            let got = erfc(x);
            assert!(
                close(got, want, 1e-12),
                "erfc({x}) = {got}, expected {want}"
            );
        }
    }

    #[test]
    fn a_paired_change_has_the_mean_difference_and_its_interval() {
        let pairs: Vec<(f64, f64)> = (0..20)
            .map(|i| (0.4 + 0.01 * f64::from(i % 5), 0.3 + 0.01 * f64::from(i % 3)))
            .collect();
        let c = paired_change(&pairs, 500, 9);
        let want = pairs.iter().map(|(b, c)| c - b).sum::<f64>() / 20.0;
        assert!((c.difference.value - want).abs() < 1e-12);
        let (lo, hi) = c.difference.ci95.unwrap();
        assert!(lo <= want && want <= hi && hi < 0.0, "{c:?}");
        assert!(c.wilcoxon.p < 0.001, "{c:?}");
    }
}
