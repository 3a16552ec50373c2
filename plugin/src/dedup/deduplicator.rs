//! Keep-or-drop decisions of `dreamsimdedup`, without GStreamer: each
//! analysed frame is compared with the last *kept* frame, not the previous
//! one, so that a slow drift A ~ B ~ C is not dropped as a whole.

/// What happens to a frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Verdict {
    /// Kept; it is the new reference. `distance` to the previous reference
    /// (`None` for the first frame, after a reset, or when the embedding
    /// size changed).
    Keep { distance: Option<f64> },
    /// Dropped: within the threshold of the reference.
    Drop { distance: f64 },
    /// No embedding: kept, the reference does not change.
    Unanalysed,
}

/// Keep-or-drop decisions against the last kept frame.
#[derive(Debug, Default)]
pub(crate) struct Deduplicator {
    /// Embedding of the last kept analysed frame.
    reference: Option<Vec<f32>>,
    /// Frames dropped since the last kept one.
    run: u32,
}

impl Deduplicator {
    /// Decides on the next frame. `max_run` bounds the frames dropped in a
    /// row (0: no bound).
    pub fn push(&mut self, embedding: Option<Vec<f32>>, threshold: f64, max_run: u32) -> Verdict {
        let Some(embedding) = embedding else {
            self.run = 0;
            return Verdict::Unanalysed;
        };
        let distance = self
            .reference
            .as_deref()
            .and_then(|r| dreamsim::distance(r, &embedding).ok());
        if let Some(d) = distance {
            let run_allowed = max_run == 0 || self.run < max_run;
            if d <= threshold && run_allowed {
                self.run += 1;
                return Verdict::Drop { distance: d };
            }
        }
        self.reference = Some(embedding);
        self.run = 0;
        Verdict::Keep { distance }
    }

    /// Forgets the reference (flush): the next analysed frame is kept.
    pub fn reset(&mut self) {
        self.reference = None;
        self.run = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(angle: f32) -> Option<Vec<f32>> {
        Some(vec![angle.cos(), angle.sin()])
    }

    /// Distance 1 - cos(angle) between `unit(0)` and `unit(angle)`.
    fn verdicts(d: &mut Deduplicator, frames: &[Option<Vec<f32>>], max_run: u32) -> Vec<char> {
        frames
            .iter()
            .map(|e| match d.push(e.clone(), 0.02, max_run) {
                Verdict::Keep { .. } => 'K',
                Verdict::Drop { .. } => 'D',
                Verdict::Unanalysed => 'U',
            })
            .collect()
    }

    #[test]
    fn compares_with_the_last_kept_frame() {
        // A slow pan: 0.1 rad per frame is a distance of 0.005 to the
        // previous frame, but 0.02 is passed after 0.2 rad (1 - cos 0.2 = 0.0199).
        let pan: Vec<_> = (0..8).map(|i| unit(0.1 * i as f32)).collect();
        let mut d = Deduplicator::default();
        assert_eq!(
            verdicts(&mut d, &pan, 0).iter().collect::<String>(),
            "KDDKDDKD"
        );
    }

    #[test]
    fn the_first_frame_and_the_first_after_a_reset_are_kept() {
        let mut d = Deduplicator::default();
        let same = vec![unit(0.0), unit(0.0)];
        assert_eq!(verdicts(&mut d, &same, 0), ['K', 'D']);
        d.reset();
        assert_eq!(verdicts(&mut d, &same, 0), ['K', 'D']);
    }

    #[test]
    fn max_run_bounds_the_drops_in_a_row() {
        let mut d = Deduplicator::default();
        let same: Vec<_> = (0..8).map(|_| unit(0.0)).collect();
        assert_eq!(
            verdicts(&mut d, &same, 3).iter().collect::<String>(),
            "KDDDKDDD"
        );
    }

    #[test]
    fn frames_without_embedding_are_kept_and_end_a_run() {
        let mut d = Deduplicator::default();
        let frames = vec![unit(0.0), unit(0.0), None, unit(0.0), unit(0.0), unit(1.0)];
        assert_eq!(
            verdicts(&mut d, &frames, 2).iter().collect::<String>(),
            "KDUDDK"
        );
    }

    #[test]
    fn a_new_embedding_size_is_a_new_reference() {
        let mut d = Deduplicator::default();
        assert_eq!(d.push(unit(0.0), 0.02, 0), Verdict::Keep { distance: None });
        assert_eq!(
            d.push(Some(vec![1.0, 0.0, 0.0]), 0.02, 0),
            Verdict::Keep { distance: None }
        );
        assert!(matches!(
            d.push(Some(vec![1.0, 0.0, 0.0]), 0.02, 0),
            Verdict::Drop { .. }
        ));
    }
}
