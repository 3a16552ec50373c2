//! Pooled statistics of a stream's per-frame distances to the reference, as
//! the `dreamsimcompare-summary` message reports them. No GStreamer here, so
//! the `gst-dreamsim compare` job pools its log with the same code.
//!
//! Definitions, for the n distances d_1..d_n of the frames compared:
//! - `mean`: the arithmetic mean.
//! - `harmonic_mean`: libvmaf pools its scores with `n / Σ 1/(1 + s_i) - 1`,
//!   a harmonic mean that weighs the *worst* (lowest) scores most. A distance
//!   is worst when *highest*, so the same pooling is applied to the
//!   similarity `s_i = 1 - d_i` and turned back into a distance:
//!   `harmonic_mean = 1 - (n / Σ 1/(2 - d_i) - 1) = 2 - n / Σ 1/(2 - d_i)`.
//!   It equals the mean when all distances are equal and is never below it;
//!   the gap grows with the spread of the bad frames. DreamSim distances lie
//!   in [0, 2]; at d = 2 the term is infinite and the pooled value is 2.
//! - `min`, `max`: the extremes.
//! - `p5`, `p50`, `p95`: percentiles with linear interpolation between the
//!   closest ranks (NumPy's default, `method="linear"`): for p in [0, 100],
//!   rank r = p/100 (n - 1) on the sorted distances, value
//!   `x[floor r] + (r - floor r)(x[ceil r] - x[floor r])`.
//! - `over_threshold`: frames whose distance is strictly above the threshold.

/// The pooled figures of one stream's distances.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pooled {
    /// Frames compared.
    pub frames: u64,
    /// Arithmetic mean.
    pub mean: f64,
    /// libvmaf's harmonic-mean pooling applied to 1 - distance, as a
    /// distance (see the module documentation).
    pub harmonic_mean: f64,
    /// Smallest distance.
    pub min: f64,
    /// Largest distance.
    pub max: f64,
    /// 5th percentile.
    pub p5: f64,
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// Frames with a distance strictly above the threshold.
    pub over_threshold: u64,
}

/// The distances of one stream, kept until they are pooled.
#[derive(Debug, Clone, Default)]
pub struct Distances {
    values: Vec<f64>,
}

impl Distances {
    /// Adds one frame's distance.
    pub fn push(&mut self, d: f64) {
        self.values.push(d);
    }

    /// Frames so far.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// True before the first frame.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The distances in the order they came.
    pub fn as_slice(&self) -> &[f64] {
        &self.values
    }

    /// The pooled figures; `None` when no frame was compared.
    pub fn pool(&self, threshold: f64) -> Option<Pooled> {
        pool(&self.values, threshold)
    }
}

/// The percentile `p` (0 to 100) of sorted values, linearly interpolated.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = p / 100.0 * (sorted.len() - 1) as f64;
    let lo = rank.floor() as usize;
    let hi = rank.ceil() as usize;
    sorted[lo] + (rank - lo as f64) * (sorted[hi] - sorted[lo])
}

/// Pools `distances` (see the module documentation); `None` when empty.
pub fn pool(distances: &[f64], threshold: f64) -> Option<Pooled> {
    if distances.is_empty() {
        return None;
    }
    let n = distances.len() as f64;
    let mut sorted = distances.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mean = distances.iter().sum::<f64>() / n;
    let inverse_sum: f64 = distances.iter().map(|d| 1.0 / (2.0 - d)).sum();
    Some(Pooled {
        frames: distances.len() as u64,
        mean,
        harmonic_mean: 2.0 - n / inverse_sum,
        min: sorted[0],
        max: sorted[sorted.len() - 1],
        p5: percentile(&sorted, 5.0),
        p50: percentile(&sorted, 50.0),
        p95: percentile(&sorted, 95.0),
        over_threshold: distances.iter().filter(|&&d| d > threshold).count() as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn nothing_to_pool() {
        assert_eq!(pool(&[], 0.5), None);
        assert!(Distances::default().pool(0.5).is_none());
    }

    #[test]
    fn one_value_is_every_statistic() {
        let p = pool(&[0.25], 0.2).unwrap();
        assert_eq!(p.frames, 1);
        for v in [p.mean, p.harmonic_mean, p.min, p.max, p.p5, p.p50, p.p95] {
            assert!(close(v, 0.25), "{p:?}");
        }
        assert_eq!(p.over_threshold, 1);
    }

    #[test]
    fn percentiles_match_numpy_linear() {
        // numpy.percentile([0.4, 0.1, 0.3, 0.2, 0.0], [5, 50, 95])
        //   -> [0.02, 0.2, 0.38]
        let p = pool(&[0.4, 0.1, 0.3, 0.2, 0.0], 0.25).unwrap();
        assert!(close(p.p5, 0.02), "{p:?}");
        assert!(close(p.p50, 0.2), "{p:?}");
        assert!(close(p.p95, 0.38), "{p:?}");
        assert!(close(p.min, 0.0) && close(p.max, 0.4));
        assert!(close(p.mean, 0.2));
        assert_eq!(p.over_threshold, 2);
    }

    #[test]
    fn even_count_median_interpolates() {
        let p = pool(&[0.1, 0.2, 0.3, 0.4], 1.0).unwrap();
        assert!(close(p.p50, 0.25));
        assert_eq!(p.over_threshold, 0);
    }

    #[test]
    fn harmonic_mean_weighs_the_worst_frames() {
        // 2 - 2 / (1/2 + 1/1) = 2 - 4/3 = 2/3, above the mean 0.5.
        let p = pool(&[0.0, 1.0], 0.5).unwrap();
        assert!(close(p.harmonic_mean, 2.0 / 3.0), "{p:?}");
        assert!(p.harmonic_mean > p.mean);
        // Equal distances: harmonic mean = mean.
        let p = pool(&[0.3, 0.3, 0.3], 0.5).unwrap();
        assert!(close(p.harmonic_mean, 0.3));
        // The largest possible distance dominates.
        let p = pool(&[0.0, 2.0], 0.5).unwrap();
        assert!(close(p.harmonic_mean, 2.0));
    }

    #[test]
    fn threshold_is_strict() {
        let p = pool(&[0.5, 0.5000001], 0.5).unwrap();
        assert_eq!(p.over_threshold, 1);
    }
}
