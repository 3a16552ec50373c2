//! Where scenes start, from the distances between consecutive analysed
//! frames: the decision of `dreamsimscene`, without GStreamer. Analysed
//! frames (index and distance) in, one [`Decision`] per frame out, in frame
//! order: at once in `fixed` mode, `window` analysed frames later in
//! `adaptive` mode, all pending ones at [`Detector::finish`].

use std::collections::VecDeque;

use super::SceneMode;

/// The adaptive ratio is capped here (PySceneDetect's cap), and takes this
/// value when the neighbours' mean is zero and the distance reaches
/// `min-distance`.
pub const MAX_RATIO: f64 = 255.0;
/// A neighbours' mean below this counts as zero (float noise on identical
/// frames is about 1e-7).
const ZERO_MEAN: f64 = 1e-6;

/// What the detector needs from the settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Params {
    pub mode: SceneMode,
    pub threshold: f64,
    pub adaptive_threshold: f64,
    pub min_distance: f64,
    pub window: usize,
    pub min_scene_length: u64,
}

/// The verdict on one analysed frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Decision {
    /// The frame's `frame` field.
    pub frame: u64,
    /// Index of the scene the frame belongs to.
    pub scene: u64,
    /// The frame starts scene `scene`.
    pub start: bool,
    /// The frame starts a scene because of its distance (not because it is
    /// the first frame, or the first after a flush or a discontinuity).
    pub cut: bool,
    pub distance: Option<f64>,
    /// What the threshold was compared with (distance or adaptive ratio).
    pub score: Option<f64>,
}

/// Scene-start decisions over a sequence of analysed frames.
#[derive(Debug)]
pub(crate) struct Detector {
    params: Params,
    /// Distances of the latest decided frames, newest last, at most `window`.
    before: VecDeque<f64>,
    /// Analysed frames waiting for their following neighbours: (frame, distance).
    pending: VecDeque<(u64, f64)>,
    /// `frame` of the current scene's first frame; `None` before the first
    /// frame and after a reset.
    scene_start: Option<u64>,
    /// Scenes started so far.
    scenes: u64,
}

impl Detector {
    pub fn new(params: Params) -> Self {
        Self {
            params,
            before: VecDeque::new(),
            pending: VecDeque::new(),
            scene_start: None,
            scenes: 0,
        }
    }

    /// A fresh detector that still reports `scenes` scenes started, so the
    /// count stays readable after a stream ends.
    pub fn keeping_count(params: Params, scenes: u64) -> Self {
        Self {
            scenes,
            ..Self::new(params)
        }
    }

    /// Changes the thresholds and the minimum scene length; the mode and the
    /// window are fixed for the detector's life.
    pub fn set_thresholds(&mut self, p: &Params) {
        self.params.threshold = p.threshold;
        self.params.adaptive_threshold = p.adaptive_threshold;
        self.params.min_distance = p.min_distance;
        self.params.min_scene_length = p.min_scene_length;
    }

    pub fn params(&self) -> &Params {
        &self.params
    }

    /// Scenes started so far.
    pub fn scenes(&self) -> u64 {
        self.scenes
    }

    /// Takes the next analysed frame: its `frame` index and its distance to
    /// the previous analysed frame. Appends the decisions this makes
    /// possible to `out`, in frame order.
    pub fn push(&mut self, frame: u64, distance: Option<f64>, out: &mut Vec<Decision>) {
        match distance {
            None => {
                // The frame follows a discontinuity in the distances (the
                // first frame, or dreamsim forgot the previous one): nothing
                // after it is a neighbour of anything before it.
                self.finish(out);
                self.before.clear();
                out.push(self.decide(frame, None, None, false, true));
            }
            Some(d) if self.params.mode == SceneMode::Fixed => {
                let cut = d >= self.params.threshold;
                out.push(self.decide(frame, Some(d), Some(d), cut, false));
            }
            Some(d) => {
                self.pending.push_back((frame, d));
                while self.pending.len() > self.params.window {
                    self.decide_first_pending(out);
                }
            }
        }
    }

    /// Decides every pending frame with the neighbours there are (end of
    /// stream).
    pub fn finish(&mut self, out: &mut Vec<Decision>) {
        while !self.pending.is_empty() {
            self.decide_first_pending(out);
        }
    }

    /// Forgets everything but the scene count (flush): the next frame starts
    /// a scene.
    pub fn reset(&mut self) {
        self.before.clear();
        self.pending.clear();
        self.scene_start = None;
    }

    /// Frames waiting for a decision.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// The adaptive rule, on the oldest pending frame: its distance over the
    /// mean distance of up to `window` decided frames before it and `window`
    /// pending frames after it.
    fn decide_first_pending(&mut self, out: &mut Vec<Decision>) {
        let Some((frame, d)) = self.pending.pop_front() else {
            return;
        };
        let w = self.params.window;
        let (sum, n) = self
            .before
            .iter()
            .rev()
            .take(w)
            .chain(self.pending.iter().take(w).map(|(_, d)| d))
            .fold((0.0, 0usize), |(s, n), d| (s + d, n + 1));
        let mean = if n > 0 { sum / n as f64 } else { 0.0 };
        let ratio = if mean > ZERO_MEAN {
            (d / mean).min(MAX_RATIO)
        } else if d >= self.params.min_distance {
            MAX_RATIO
        } else {
            0.0
        };
        let cut = ratio >= self.params.adaptive_threshold && d >= self.params.min_distance;
        self.before.push_back(d);
        if self.before.len() > w {
            self.before.pop_front();
        }
        out.push(self.decide(frame, Some(d), Some(ratio), cut, false));
    }

    fn decide(
        &mut self,
        frame: u64,
        distance: Option<f64>,
        score: Option<f64>,
        cut: bool,
        forced: bool,
    ) -> Decision {
        let (start, cut) = match self.scene_start {
            None => (true, false),
            _ if forced => (true, false),
            Some(first) => {
                let long_enough = frame
                    .checked_sub(first)
                    .is_none_or(|n| n >= self.params.min_scene_length);
                (cut && long_enough, cut && long_enough)
            }
        };
        if start {
            self.scene_start = Some(frame);
            self.scenes += 1;
        }
        Decision {
            frame,
            scene: self.scenes.saturating_sub(1),
            start,
            cut,
            distance,
            score,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(mode: SceneMode) -> Params {
        Params {
            mode,
            threshold: 0.5,
            adaptive_threshold: 3.0,
            min_distance: 0.05,
            window: 2,
            min_scene_length: 1,
        }
    }

    /// Runs `distances` (None: first frame) through a detector; returns the
    /// frames that start scenes, checking that decisions come in order.
    fn starts(p: Params, distances: &[Option<f64>]) -> Vec<u64> {
        let mut d = Detector::new(p);
        let mut out = Vec::new();
        for (i, &dist) in distances.iter().enumerate() {
            d.push(i as u64, dist, &mut out);
            assert!(d.pending() <= p.window);
        }
        d.finish(&mut out);
        let frames: Vec<u64> = out.iter().map(|d| d.frame).collect();
        assert_eq!(frames, (0..distances.len() as u64).collect::<Vec<_>>());
        out.iter().filter(|d| d.start).map(|d| d.frame).collect()
    }

    fn series(base: f64, n: usize, cuts: &[(usize, f64)]) -> Vec<Option<f64>> {
        (0..n)
            .map(|i| {
                if i == 0 {
                    None
                } else {
                    Some(cuts.iter().find(|c| c.0 == i).map_or(base, |c| c.1))
                }
            })
            .collect()
    }

    #[test]
    fn fixed_mode_cuts_at_the_threshold_and_decides_at_once() {
        let p = params(SceneMode::Fixed);
        let mut d = Detector::new(p);
        let mut out = Vec::new();
        for (i, dist) in [None, Some(0.1), Some(0.5), Some(0.49), Some(0.9)]
            .into_iter()
            .enumerate()
        {
            d.push(i as u64, dist, &mut out);
            assert_eq!(out.len(), i + 1, "decided at once");
        }
        let starts: Vec<_> = out.iter().filter(|d| d.start).map(|d| d.frame).collect();
        assert_eq!(starts, [0, 2, 4]);
        assert_eq!(
            out.iter().map(|d| d.scene).collect::<Vec<_>>(),
            [0, 0, 1, 1, 2]
        );
        assert!(!out[0].cut && out[2].cut && out[4].cut);
        assert_eq!(out[2].score, Some(0.5));
    }

    #[test]
    fn adaptive_mode_ignores_steady_motion_and_finds_cuts() {
        // Camera motion: large but steady distances; cuts stand out of them.
        let mut s = series(0.3, 40, &[(10, 1.2), (25, 0.95)]);
        s[30] = Some(0.35);
        assert_eq!(starts(params(SceneMode::Adaptive), &s), [0, 10, 25]);
        // A fixed threshold under the motion level cuts everywhere.
        let mut fixed = params(SceneMode::Fixed);
        fixed.threshold = 0.25;
        assert_eq!(starts(fixed, &s).len(), 40);
    }

    #[test]
    fn adaptive_ratio_uses_both_sides() {
        let p = params(SceneMode::Adaptive);
        let mut d = Detector::new(p);
        let mut out = Vec::new();
        for (i, dist) in [None, Some(0.1), Some(0.1), Some(0.9), Some(0.2), Some(0.4)]
            .into_iter()
            .enumerate()
        {
            d.push(i as u64, dist, &mut out);
        }
        // Frame 3 waits for frames 4 and 5.
        let f3 = out.iter().find(|d| d.frame == 3).expect("frame 3 decided");
        assert!((f3.score.unwrap() - 0.9 / ((0.1 + 0.1 + 0.2 + 0.4) / 4.0)).abs() < 1e-12);
        assert!(f3.start && f3.cut);
        assert_eq!(d.pending(), 2);
    }

    #[test]
    fn still_frames_need_min_distance() {
        // Neighbours at zero: the ratio is at its cap, only min-distance decides.
        let s = series(0.0, 12, &[(4, 0.01), (8, 0.3)]);
        assert_eq!(starts(params(SceneMode::Adaptive), &s), [0, 8]);
    }

    #[test]
    fn min_scene_length_suppresses_close_cuts() {
        let mut p = params(SceneMode::Fixed);
        p.min_scene_length = 5;
        let s = series(0.0, 20, &[(3, 0.9), (6, 0.9), (9, 0.9), (10, 0.9)]);
        assert_eq!(starts(p, &s), [0, 6]);
        p.min_scene_length = 4;
        assert_eq!(starts(p, &s), [0, 6, 10]);
    }

    #[test]
    fn the_first_frame_and_the_first_after_a_reset_start_scenes() {
        let p = params(SceneMode::Adaptive);
        let mut d = Detector::new(p);
        let mut out = Vec::new();
        // The first frame starts a scene even when it has a distance.
        d.push(5, Some(0.01), &mut out);
        d.push(6, Some(0.01), &mut out);
        d.reset();
        d.push(9, Some(0.01), &mut out);
        d.push(10, None, &mut out);
        d.finish(&mut out);
        let got: Vec<_> = out.iter().map(|d| (d.frame, d.start, d.scene)).collect();
        assert_eq!(got, [(9, true, 0), (10, true, 1)]);
        assert_eq!(d.scenes(), 2);
    }

    #[test]
    fn a_frame_without_distance_decides_the_pending_ones_first() {
        let p = params(SceneMode::Adaptive);
        let mut d = Detector::new(p);
        let mut out = Vec::new();
        d.push(0, None, &mut out);
        d.push(1, Some(0.01), &mut out);
        d.push(2, Some(0.8), &mut out);
        assert_eq!(out.len(), 1);
        d.push(3, None, &mut out);
        let got: Vec<_> = out.iter().map(|d| (d.frame, d.start)).collect();
        assert_eq!(got, [(0, true), (1, false), (2, true), (3, true)]);
    }

    #[test]
    fn short_streams_are_decided_at_the_end() {
        assert_eq!(starts(params(SceneMode::Adaptive), &[None]), [0]);
        assert_eq!(
            starts(params(SceneMode::Adaptive), &[None, Some(0.6)]),
            [0, 1]
        );
        assert_eq!(
            starts(params(SceneMode::Adaptive), &[None, Some(0.01)]),
            [0]
        );
    }
}
