//! ROC and precision-recall curves over labelled distances, the threshold
//! that meets a target, and its bootstrap interval. Pure arithmetic.
//!
//! Conventions (scikit-learn's, with the distance as a negated score): a
//! pair is called "same" when `distance <= threshold`; the operating points
//! are at the distinct distances, in increasing order, after a first point
//! that calls nothing the same (scikit-learn's `inf` threshold). Nothing is
//! dropped: the points are `roc_curve(same, -distance,
//! drop_intermediate=False)`'s, thresholds negated, and each point's
//! precision is `tp / (tp + fp)` (scikit-learn's `precision_recall_curve`
//! lists the same points from the other end, plus its final (recall 0,
//! precision 1) point).

use serde::Serialize;

/// A labelled distance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scored {
    /// DreamSim distance of the pair.
    pub distance: f64,
    /// Whether the pair is labelled the same.
    pub same: bool,
}

/// One operating point.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Point {
    /// Largest distance called the same; `None` for the point that calls
    /// nothing the same.
    pub threshold: Option<f64>,
    /// Same pairs called the same.
    pub tp: usize,
    /// Different pairs called the same.
    pub fp: usize,
    /// Different pairs called different.
    pub tn: usize,
    /// Same pairs called different.
    #[serde(rename = "fn")]
    pub fn_: usize,
}

impl Point {
    /// True-positive rate: the share of same pairs called the same (0 with no same pair).
    pub fn recall(&self) -> f64 {
        ratio(self.tp, self.tp + self.fn_).unwrap_or(0.0)
    }

    /// The share of different pairs called the same (0 with no different pair).
    pub fn fpr(&self) -> f64 {
        ratio(self.fp, self.fp + self.tn).unwrap_or(0.0)
    }

    /// The share of pairs called the same that are; `None` when none is called the same.
    pub fn precision(&self) -> Option<f64> {
        ratio(self.tp, self.tp + self.fp)
    }
}

fn ratio(n: usize, of: usize) -> Option<f64> {
    (of > 0).then(|| n as f64 / of as f64)
}

/// The operating points of `scores` (see the module's conventions).
/// Distances must be finite (the caller's embeddings are checked ones).
pub fn operating_points(scores: &[Scored]) -> Vec<Point> {
    let mut sorted: Vec<Scored> = scores.to_vec();
    sorted.sort_by(|a, b| a.distance.total_cmp(&b.distance));
    let positives = sorted.iter().filter(|s| s.same).count();
    let negatives = sorted.len() - positives;
    let mut points = vec![Point {
        threshold: None,
        tp: 0,
        fp: 0,
        tn: negatives,
        fn_: positives,
    }];
    let (mut tp, mut fp) = (0, 0);
    for (i, s) in sorted.iter().enumerate() {
        if s.same {
            tp += 1;
        } else {
            fp += 1;
        }
        // A point after the last pair at each distinct distance.
        if sorted
            .get(i + 1)
            .is_none_or(|next| next.distance != s.distance)
        {
            points.push(Point {
                threshold: Some(s.distance),
                tp,
                fp,
                tn: negatives - fp,
                fn_: positives - tp,
            });
        }
    }
    points
}

/// What the threshold must achieve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum Target {
    /// At most this share of different pairs called the same.
    Fpr(f64),
    /// At least this share of the pairs called the same are.
    Precision(f64),
    /// No target: this threshold, as given (to check a threshold on
    /// held-out material).
    Threshold(f64),
}

/// The operating point for `target`: among the points with a threshold that
/// meet it, the one of highest recall; of those, the lowest false-positive
/// rate, then the lowest threshold (the most conservative setting that
/// reaches that recall). `None` when no threshold meets the target. For a
/// given threshold, the counts at it, with that threshold.
pub fn point_for(points: &[Point], target: Target) -> Option<Point> {
    if let Target::Threshold(t) = target {
        let at = points
            .iter()
            .take_while(|p| p.threshold.is_none_or(|x| x <= t))
            .last()?;
        return Some(Point {
            threshold: Some(t),
            ..*at
        });
    }
    points
        .iter()
        .filter(|p| p.threshold.is_some())
        .filter(|p| match target {
            Target::Fpr(f) => p.fpr() <= f,
            Target::Precision(min) => p.precision().is_some_and(|v| v >= min),
            Target::Threshold(_) => unreachable!("handled above"),
        })
        // Highest recall, then fewest false positives, then the first
        // (lowest) threshold: `min_by` keeps the first of equals.
        .min_by(|a, b| {
            b.tp.cmp(&a.tp)
                .then(a.fp.cmp(&b.fp))
                .then(a.threshold.partial_cmp(&b.threshold).expect("finite"))
        })
        .copied()
}

/// The smallest distance above `threshold` among `scores`: up to it the
/// threshold could rise without changing a decision on this material.
pub fn next_distance(scores: &[Scored], threshold: f64) -> Option<f64> {
    scores
        .iter()
        .map(|s| s.distance)
        .filter(|&d| d > threshold)
        .min_by(f64::total_cmp)
}

/// Area under the ROC curve (trapezoids over the operating points).
pub fn roc_auc(points: &[Point]) -> Option<f64> {
    let first = points.first()?;
    if first.tp + first.fn_ == 0 || first.fp + first.tn == 0 {
        return None;
    }
    Some(
        points
            .windows(2)
            .map(|w| (w[1].fpr() - w[0].fpr()) * (w[1].recall() + w[0].recall()) / 2.0)
            .sum(),
    )
}

/// Average precision as scikit-learn's `average_precision_score` computes
/// it: the sum over the operating points of (recall step) × precision.
pub fn average_precision(points: &[Point]) -> Option<f64> {
    let first = points.first()?;
    if first.tp + first.fn_ == 0 {
        return None;
    }
    Some(
        points
            .windows(2)
            .map(|w| (w[1].recall() - w[0].recall()) * w[1].precision().unwrap_or(1.0))
            .sum(),
    )
}

/// The `q` quantile (0..=1) of `values` (sorted ascending), linearly
/// interpolated between the closest ranks (numpy's default).
pub fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    Some(sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64))
}

/// A 95 % percentile interval from the bootstrap replicates.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Interval {
    /// 2.5th percentile.
    pub low: f64,
    /// 97.5th percentile.
    pub high: f64,
}

/// What the bootstrap found.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Bootstrap {
    /// Replicates drawn.
    pub replicates: usize,
    /// Replicates in which some threshold met the target (the intervals
    /// are over these).
    pub met: usize,
    /// Interval of the threshold chosen in each replicate.
    pub threshold: Option<Interval>,
    /// Interval of the recall at that threshold.
    pub recall: Option<Interval>,
}

fn interval(mut values: Vec<f64>) -> Option<Interval> {
    values.sort_by(f64::total_cmp);
    Some(Interval {
        low: quantile(&values, 0.025)?,
        high: quantile(&values, 0.975)?,
    })
}

/// Runs `replicates` bootstrap replicates: `draw` makes one resampled set
/// of scores from the generator, the threshold for `target` is chosen on
/// it as on the full set.
pub fn bootstrap(
    replicates: usize,
    seed: u64,
    target: Target,
    mut draw: impl FnMut(&mut fastrand::Rng) -> Vec<Scored>,
) -> Bootstrap {
    let mut rng = fastrand::Rng::with_seed(seed);
    let (mut thresholds, mut recalls) = (Vec::new(), Vec::new());
    for _ in 0..replicates {
        let sample = draw(&mut rng);
        let points = operating_points(&sample);
        if let Some(p) = point_for(&points, target) {
            thresholds.push(p.threshold.expect("chosen points have one"));
            recalls.push(p.recall());
        }
    }
    Bootstrap {
        replicates,
        met: thresholds.len(),
        threshold: interval(thresholds),
        recall: interval(recalls),
    }
}

/// Fewest decimals of a setting: steps of 1e-4 are well below the spread
/// of DreamSim distances between two encodings of one frame.
const SETTING_DECIMALS: i32 = 4;

/// The value to give an element or option for `threshold`: the threshold
/// rounded up to [`SETTING_DECIMALS`] decimals (more when another pair
/// lies within that step), short to print and making the same decisions
/// on the calibration pairs. Elements that call `distance <= setting` the
/// same get a value in `[threshold, below)` (`below`: the next distance,
/// `None` for none); with `strict`, for `dreamsimscene`, which cuts at
/// `distance >= setting`, a value in `(threshold, below]`, so the pairs at
/// `threshold` stay in one scene.
pub fn short_setting(threshold: f64, below: Option<f64>, strict: bool) -> f64 {
    for digits in SETTING_DECIMALS..=17 {
        let scale = 10f64.powi(digits);
        let x = threshold * scale;
        // Rounded (for a threshold that is already short, 312.00000000000006
        // steps of 1e-4), rounded up, and one step above.
        for steps in [x.round(), x.ceil(), x.floor() + 1.0] {
            // Parsed back from its text: the value the element will get.
            let text = format!("{:.*}", digits as usize, steps / scale);
            let Ok(v) = text.parse::<f64>() else { continue };
            let above = if strict {
                v > threshold
            } else {
                v >= threshold
            };
            let under = match below {
                None => true,
                Some(b) if strict => v <= b,
                Some(b) => v < b,
            };
            if above && under {
                return v;
            }
        }
    }
    if strict {
        f64::from_bits(threshold.to_bits() + 1)
    } else {
        threshold
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(distance: f64, same: bool) -> Scored {
        Scored { distance, same }
    }

    /// Same pairs at 0.1, 0.2, 0.4; different at 0.3, 0.4, 0.5, 0.6.
    fn example() -> Vec<Scored> {
        vec![
            s(0.4, true),
            s(0.1, true),
            s(0.5, false),
            s(0.3, false),
            s(0.2, true),
            s(0.6, false),
            s(0.4, false),
        ]
    }

    #[test]
    fn operating_points_are_counted_by_hand() {
        let p = operating_points(&example());
        let rows: Vec<(Option<f64>, usize, usize)> =
            p.iter().map(|p| (p.threshold, p.tp, p.fp)).collect();
        // Distinct distances 0.1 0.2 0.3 0.4 0.5 0.6 (0.4 twice: one point).
        assert_eq!(
            rows,
            vec![
                (None, 0, 0),
                (Some(0.1), 1, 0),
                (Some(0.2), 2, 0),
                (Some(0.3), 2, 1),
                (Some(0.4), 3, 2),
                (Some(0.5), 3, 3),
                (Some(0.6), 3, 4),
            ]
        );
        assert_eq!(p[3].recall(), 2.0 / 3.0);
        assert_eq!(p[3].fpr(), 0.25);
        assert_eq!(p[3].precision(), Some(2.0 / 3.0));
        assert_eq!(p[0].precision(), None);
        assert_eq!((p[4].tn, p[4].fn_), (2, 0));
        // AUC by hand: the curve (0,0) (0,1/3) (0,2/3) (1/4,2/3) (1/2,1)
        // (3/4,1) (1,1): 1/4 * 2/3 + 1/4 * (2/3 + 1) / 2 + 1/2 * 1.
        let auc = 0.25 * 2.0 / 3.0 + 0.25 * (5.0 / 3.0) / 2.0 + 0.5;
        assert!((roc_auc(&p).unwrap() - auc).abs() < 1e-12);
        // AP: 1/3 * 1 + 1/3 * 1 + 1/3 * 3/5.
        let ap = 1.0 / 3.0 + 1.0 / 3.0 + 0.2;
        assert!((average_precision(&p).unwrap() - ap).abs() < 1e-12);
    }

    #[test]
    fn thresholds_for_targets_by_hand() {
        let p = operating_points(&example());
        // FPR 0: recall 2/3 at 0.2 (0.3 would call a different pair the same).
        assert_eq!(
            point_for(&p, Target::Fpr(0.0)).unwrap().threshold,
            Some(0.2)
        );
        // FPR 0.25: 0.3 also has FPR 1/4 but no more recall: 0.2 kept.
        assert_eq!(
            point_for(&p, Target::Fpr(0.25)).unwrap().threshold,
            Some(0.2)
        );
        // FPR 0.5: 0.4 reaches recall 1.
        assert_eq!(
            point_for(&p, Target::Fpr(0.5)).unwrap().threshold,
            Some(0.4)
        );
        // Precision 0.6 is met at 0.4 (3/5): recall 1.
        assert_eq!(
            point_for(&p, Target::Precision(0.6)).unwrap().threshold,
            Some(0.4)
        );
        // Precision 0.7: 0.4 has 0.6, 0.3 has 2/3: 0.2 (precision 1).
        assert_eq!(
            point_for(&p, Target::Precision(0.7)).unwrap().threshold,
            Some(0.2)
        );
        // A given threshold: the counts at it.
        let at = point_for(&p, Target::Threshold(0.35)).unwrap();
        assert_eq!((at.threshold, at.tp, at.fp), (Some(0.35), 2, 1));
        let below = point_for(&p, Target::Threshold(0.05)).unwrap();
        assert_eq!((below.tp, below.fp, below.tn), (0, 0, 4));
        // Nothing meets FPR 0 when the nearest pair is a different one.
        let bad = operating_points(&[s(0.1, false), s(0.2, true)]);
        assert_eq!(point_for(&bad, Target::Fpr(0.0)), None);
        assert_eq!(next_distance(&example(), 0.2), Some(0.3));
        assert_eq!(next_distance(&example(), 0.6), None);
    }

    #[test]
    fn short_settings_keep_the_decisions() {
        assert_eq!(short_setting(0.0312, Some(0.05), false), 0.0312);
        assert_eq!(short_setting(0.031234, Some(0.05), false), 0.0313);
        assert_eq!(short_setting(0.031234, Some(0.0313), false), 0.03124);
        assert_eq!(short_setting(0.0312, Some(0.05), true), 0.0313);
        assert_eq!(short_setting(0.04, Some(0.04001), true), 0.04001);
        assert_eq!(short_setting(0.2, None, false), 0.2);
        let t = 0.123_456_789_012_345_67;
        assert!(short_setting(t, Some(t + 1e-15), true) > t);
        assert!(short_setting(t, Some(t + 1e-15), false) >= t);
    }

    #[test]
    fn quantiles_interpolate_like_numpy() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile(&v, 0.0), Some(1.0));
        assert_eq!(quantile(&v, 0.5), Some(2.5));
        assert_eq!(quantile(&v, 0.025), Some(1.075));
        assert_eq!(quantile(&[], 0.5), None);
    }

    #[test]
    fn the_bootstrap_is_reproducible_from_its_seed() {
        let data = example();
        let draw = |rng: &mut fastrand::Rng| {
            (0..data.len())
                .map(|_| data[rng.usize(..data.len())])
                .collect::<Vec<_>>()
        };
        let a = bootstrap(200, 7, Target::Fpr(0.25), draw);
        let b = bootstrap(200, 7, Target::Fpr(0.25), draw);
        assert_eq!(a, b);
        let i = a.threshold.unwrap();
        assert!(i.low <= 0.2 && 0.2 <= i.high, "{i:?}");
        assert!(a.met <= 200 && a.met > 100);
    }

    /// scikit-learn's `roc_curve(same, -distance, drop_intermediate=False)`,
    /// `roc_auc_score` and `average_precision_score` on 200 seeded
    /// distances with ties (tests/fixtures/calibrate_golden.py wrote it).
    #[test]
    fn the_curves_are_scikit_learns() {
        let golden: serde_json::Value = serde_json::from_str(include_str!(
            "../../../tests/fixtures/calibrate_golden.json"
        ))
        .unwrap();
        let list = |k: &str| golden[k].as_array().unwrap().clone();
        let scores: Vec<Scored> = list("distance")
            .iter()
            .zip(list("same"))
            .map(|(d, s)| Scored {
                distance: d.as_f64().unwrap(),
                same: s.as_bool().unwrap(),
            })
            .collect();
        let points = operating_points(&scores);
        assert_eq!(points.len(), list("thresholds").len());
        for (i, p) in points.iter().enumerate() {
            assert_eq!(p.threshold, list("thresholds")[i].as_f64(), "point {i}");
            assert!((p.fpr() - list("fpr")[i].as_f64().unwrap()).abs() < 1e-12);
            assert!((p.recall() - list("tpr")[i].as_f64().unwrap()).abs() < 1e-12);
        }
        let close = |a: f64, k: &str| (a - golden[k].as_f64().unwrap()).abs() < 1e-12;
        assert!(close(roc_auc(&points).unwrap(), "roc_auc"));
        assert!(close(
            average_precision(&points).unwrap(),
            "average_precision"
        ));
    }
}
