//! The distance of a labelled pair, from the items' embeddings.
//!
//! An image is one embedding; a video is its sampled frames (sampled as
//! `corpus add` samples them). For a pair (a, b), each frame of `a` gets
//! its nearest-frame distance in `b`; sorted, these are the pair's
//! *profile*. `corpus match` calls a query's frame matched when its nearest
//! frame of the candidate is within `--frame-distance`, and the pair a
//! match when the matched share reaches `--query-share`; so the pair is a
//! match at share `s` exactly when the profile's `ceil(s × n / 100)`-th
//! smallest value (at least the first) is within the frame distance: that
//! value is the pair's distance at share `s`. For two images the profile is
//! their one distance, whatever the share.
//!
//! A pair from a pairs CSV has a direction (`a` is the query); a pair from
//! groups does not: `corpus match` of a library scores each pair once and
//! takes the video with the larger share as the query, so the pair matches
//! when either direction does, and its distance is the smaller of the two.

use crate::embed_cache::ItemEmbeddings;

/// The sorted nearest-frame distances of `a`'s frames in `b`.
pub fn profile(a: &ItemEmbeddings, b: &ItemEmbeddings) -> Result<Vec<f64>, dreamsim::Error> {
    let mut out = Vec::with_capacity(a.frames.len());
    for fa in &a.frames {
        let mut nearest = f64::INFINITY;
        for fb in &b.frames {
            nearest = nearest.min(dreamsim::embedding::distance(fa, fb)?);
        }
        out.push(nearest);
    }
    out.sort_by(f64::total_cmp);
    Ok(out)
}

/// The profiles of a pair: `a` in `b`, and `b` in `a` for an undirected pair.
#[derive(Debug, Clone)]
pub struct PairProfile {
    pub forward: Vec<f64>,
    pub backward: Option<Vec<f64>>,
}

impl PairProfile {
    /// The profiles of `a` and `b` (both directions unless `directed`).
    pub fn new(
        a: &ItemEmbeddings,
        b: &ItemEmbeddings,
        directed: bool,
    ) -> Result<Self, dreamsim::Error> {
        Ok(Self {
            forward: profile(a, b)?,
            backward: if directed { None } else { Some(profile(b, a)?) },
        })
    }

    /// The pair's distance at query share `share` percent: the smaller of
    /// the two directions' when undirected.
    pub fn at_share(&self, share: f64) -> f64 {
        let forward = at_share(&self.forward, share);
        match &self.backward {
            Some(b) => forward.min(at_share(b, share)),
            None => forward,
        }
    }
}

/// The pair's distance at query share `share` percent (0 < share <= 100):
/// the smallest frame distance at which that share of the query's frames
/// match.
pub fn at_share(profile: &[f64], share: f64) -> f64 {
    let n = profile.len();
    let needed = ((share / 100.0 * n as f64) - 1e-9).ceil().max(1.0) as usize;
    profile[needed.min(n) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_share_picks_the_rank_corpus_match_needs() {
        let p = [0.01, 0.02, 0.03, 0.04, 0.5];
        // 80 % of 5 frames: 4 matched, the 4th smallest distance.
        assert_eq!(at_share(&p, 80.0), 0.04);
        assert_eq!(at_share(&p, 100.0), 0.5);
        // 50 %: 2.5 frames, so 3.
        assert_eq!(at_share(&p, 50.0), 0.03);
        assert_eq!(at_share(&p, 1.0), 0.01);
        assert_eq!(at_share(&[0.2], 80.0), 0.2);
    }

    #[test]
    fn profiles_are_nearest_frame_distances() {
        let v = |x: &[f32]| x.to_vec();
        let a = ItemEmbeddings {
            frames: vec![v(&[1.0, 0.0]), v(&[0.0, 1.0])],
            video: true,
            times_ns: Vec::new(),
        };
        let b = ItemEmbeddings {
            frames: vec![v(&[0.6, 0.8])],
            video: false,
            times_ns: Vec::new(),
        };
        let p = profile(&a, &b).unwrap();
        assert!(
            (p[0] - 0.2).abs() < 1e-6 && (p[1] - 0.4).abs() < 1e-6,
            "{p:?}"
        );
        // b's one frame is within 0.2 of a: undirected, 0.2 at any share;
        // directed (a the query), 0.4 at 100 %.
        let both = PairProfile::new(&a, &b, false).unwrap();
        assert!((both.at_share(100.0) - 0.2).abs() < 1e-6);
        let directed = PairProfile::new(&a, &b, true).unwrap();
        assert!((directed.at_share(100.0) - 0.4).abs() < 1e-6);
    }
}
