//! Per-item figures, from the embeddings alone (pure, unit-tested):
//! temporal consistency of a video, the pooled distance to a reference,
//! and a video's one vector for set-level figures.
//!
//! Distances are DreamSim's, 1 - cosine of unit vectors, clamped at 0 (a
//! still frame's rounding would otherwise give -1e-7).

use crate::embed_cache::ItemEmbeddings;

/// DreamSim distance of two unit vectors.
pub fn distance(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    (1.0 - dot).clamp(0.0, 2.0)
}

/// A video's temporal consistency over its sampled frames (VBench's
/// subject consistency, as distances): needs two frames at least.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Temporal {
    /// Mean distance of each sampled frame to the one before it.
    pub prev: f64,
    /// Mean distance of each sampled frame after the first to the first.
    pub first: f64,
    /// The largest distance between consecutive sampled frames.
    pub max_jump: f64,
    /// The sampled frame (0-based ordinal) that ends the largest jump: the
    /// jump is from frame `at - 1` to frame `at`.
    pub at: usize,
}

/// The temporal figures of `frames` (time order); `None` below two frames.
pub fn temporal(frames: &[Vec<f32>]) -> Option<Temporal> {
    if frames.len() < 2 {
        return None;
    }
    let n = (frames.len() - 1) as f64;
    let mut t = Temporal {
        prev: 0.0,
        first: 0.0,
        max_jump: -1.0,
        at: 1,
    };
    for i in 1..frames.len() {
        let d = distance(&frames[i], &frames[i - 1]);
        t.prev += d / n;
        t.first += distance(&frames[i], &frames[0]) / n;
        if d > t.max_jump {
            t.max_jump = d;
            t.at = i;
        }
    }
    Some(t)
}

/// The item's one vector for diversity: an image's embedding, a video's
/// frames' mean, normalised to unit length (the direction the video's
/// frames share).
pub fn item_vector(item: &ItemEmbeddings) -> Vec<f32> {
    if item.frames.len() == 1 {
        return item.frames[0].clone();
    }
    let dim = item.frames[0].len();
    let mut mean = vec![0.0f64; dim];
    for f in &item.frames {
        for (m, x) in mean.iter_mut().zip(f) {
            *m += *x as f64;
        }
    }
    let norm = mean.iter().map(|x| x * x).sum::<f64>().sqrt();
    if norm == 0.0 {
        // Frames that cancel out have no shared direction: the first frame.
        return item.frames[0].clone();
    }
    mean.iter().map(|x| (x / norm) as f32).collect()
}

/// The reference frame shown at `t` (the last one starting at or before
/// it; the first when `t` is before all): `compare`'s pairing by time.
fn shown_at(times: &[u64], t: u64) -> usize {
    times.partition_point(|&s| s <= t).saturating_sub(1)
}

/// The pooled (mean) distance of `item` to `reference`:
/// - image to image: their distance;
/// - video to video: each sampled frame of the item with the reference's
///   sampled frame shown at its time (by ordinal when times are not known),
///   as `compare` pairs frames by running time; the mean;
/// - video to image: the mean distance of the item's frames to the image;
/// - image to video: the mean distance of the image to the reference's frames.
pub fn reference_distance(item: &ItemEmbeddings, reference: &ItemEmbeddings) -> f64 {
    let mean = |it: &mut dyn Iterator<Item = f64>| {
        let (s, n) = it.fold((0.0, 0usize), |(s, n), d| (s + d, n + 1));
        s / n.max(1) as f64
    };
    match (item.video, reference.video) {
        (true, true) => {
            let by_time = item.times_ns.len() == item.frames.len()
                && reference.times_ns.len() == reference.frames.len();
            let last = reference.frames.len() - 1;
            mean(&mut item.frames.iter().enumerate().map(|(i, f)| {
                let j = if by_time {
                    shown_at(&reference.times_ns, item.times_ns[i])
                } else {
                    i.min(last)
                };
                distance(f, &reference.frames[j])
            }))
        }
        (true, false) => mean(
            &mut item
                .frames
                .iter()
                .map(|f| distance(f, &reference.frames[0])),
        ),
        (false, _) => mean(
            &mut reference
                .frames
                .iter()
                .map(|r| distance(&item.frames[0], r)),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(v: &[f32]) -> Vec<f32> {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter().map(|x| x / n).collect()
    }

    fn video(frames: &[&[f32]], times: &[u64]) -> ItemEmbeddings {
        ItemEmbeddings {
            frames: frames.iter().map(|f| unit(f)).collect(),
            video: true,
            times_ns: times.to_vec(),
        }
    }

    #[test]
    fn temporal_figures_by_hand() {
        let a = [1.0, 0.0];
        let b = [0.0, 1.0];
        assert_eq!(temporal(&[unit(&a)]), None);
        let still = temporal(&[unit(&a), unit(&a), unit(&a)]).unwrap();
        assert_eq!((still.prev, still.first, still.max_jump), (0.0, 0.0, 0.0));
        // a, a, b: jumps 0 and 1; to the first 0 and 1.
        let t = temporal(&[unit(&a), unit(&a), unit(&b)]).unwrap();
        assert!((t.prev - 0.5).abs() < 1e-9 && (t.first - 0.5).abs() < 1e-9);
        assert!((t.max_jump - 1.0).abs() < 1e-9);
        assert_eq!(t.at, 2);
    }

    #[test]
    fn videos_pair_by_time_and_count_by_their_mean() {
        let a: &[f32] = &[1.0, 0.0];
        let b: &[f32] = &[0.0, 1.0];
        let item = video(&[a, a, b], &[0, 100, 200]);
        // The reference changes to b at 150: the item's frame at 200 meets b.
        let reference = video(&[a, b], &[0, 150]);
        assert!(reference_distance(&item, &reference).abs() < 1e-9);
        let late = video(&[a, b], &[0, 250]);
        assert!((reference_distance(&item, &late) - 1.0 / 3.0).abs() < 1e-9);
        let v = item_vector(&video(&[a, b], &[0, 1]));
        assert!((v[0] - v[1]).abs() < 1e-6 && (v[0] - 0.70710677).abs() < 1e-6);
    }
}
