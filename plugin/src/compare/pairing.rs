//! Which reference frame a tested frame is compared with. Pure logic on
//! running times (nanoseconds), no GStreamer.
//!
//! The rule: a tested frame whose running-time start is `t` is compared with
//! the **latest reference frame whose running-time start is at or before
//! `t`**. A reference frame is thus held, and covers every tested frame,
//! from its own start until the next reference frame starts, whatever its
//! duration says (a gap in the reference repeats the last frame, as a
//! display would). Once the reference has ended (EOS), its last frame covers
//! `[start, start + duration)`, or everything after its start when it has no
//! duration.
//!
//! A tested frame that no reference frame covers (it starts before the
//! first reference frame, or after the end of the reference, or before the
//! frame the element holds because it arrived late on a pad added while
//! playing) is *unpaired*: it passes without a distance and is counted.
//!
//! Consequences, tested below and in `plugin/tests/compare.rs`:
//! - same frame rate, same start: frame i pairs with reference frame i;
//! - a tested stream at half the frame rate: tested frame i pairs with
//!   reference frame 2i;
//! - a tested stream at twice the frame rate: tested frames 2i and 2i+1 pair
//!   with reference frame i;
//! - a tested copy delayed by N frames (its frame i starts N frame durations
//!   later): tested frame i pairs with reference frame i + N, and its last N
//!   frames, after the reference's end, are unpaired.

/// A reference frame's place in running time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// Running-time start (ns).
    pub start: u64,
    /// Duration (ns), when the buffer has one.
    pub duration: Option<u64>,
}

/// What the element knows of the reference beyond the frame it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upcoming {
    /// The next reference frame is queued and starts at this running time.
    Frame(u64),
    /// The reference has ended.
    Eos,
    /// Nothing queued yet: the next frame may start at any time.
    Unknown,
    /// Nothing queued, and a live pipeline's deadline has passed: the held
    /// frame is taken as covering `t`.
    TimedOut,
}

/// What to do with a tested frame starting at `t`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Compare it with the held reference frame.
    Held,
    /// The next reference frame starts at or before `t`: hold it instead,
    /// then decide again.
    Advance,
    /// No reference frame covers `t`: pass it unpaired.
    Unpaired,
    /// Not decidable until the reference's next frame (or EOS) arrives.
    Wait,
}

/// Applies the rule of the module documentation.
pub fn decide(t: u64, held: Option<Span>, upcoming: Upcoming) -> Decision {
    if let Upcoming::Frame(next) = upcoming {
        if next <= t {
            return Decision::Advance;
        }
    }
    let Some(held) = held else {
        return match upcoming {
            Upcoming::Unknown => Decision::Wait,
            _ => Decision::Unpaired,
        };
    };
    if t < held.start {
        return Decision::Unpaired;
    }
    match upcoming {
        Upcoming::Frame(_) | Upcoming::TimedOut => Decision::Held,
        Upcoming::Unknown => Decision::Wait,
        Upcoming::Eos => match held.duration {
            Some(d) if t >= held.start.saturating_add(d) => Decision::Unpaired,
            _ => Decision::Held,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME: u64 = 40_000_000;

    /// Pairs tested frames starting at `tested` with reference frames
    /// starting at `reference` (each lasting `ref_duration`), the way the
    /// element walks them: the index of the reference frame per tested
    /// frame, `None` when unpaired.
    fn pair(reference: &[u64], ref_duration: u64, tested: &[u64]) -> Vec<Option<usize>> {
        let mut held: Option<(usize, Span)> = None;
        let mut next = 0;
        tested
            .iter()
            .map(|&t| loop {
                let upcoming = reference
                    .get(next)
                    .map_or(Upcoming::Eos, |&s| Upcoming::Frame(s));
                match decide(t, held.map(|h| h.1), upcoming) {
                    Decision::Advance => {
                        held = Some((
                            next,
                            Span {
                                start: reference[next],
                                duration: Some(ref_duration),
                            },
                        ));
                        next += 1;
                    }
                    Decision::Held => break held.map(|h| h.0),
                    Decision::Unpaired => break None,
                    Decision::Wait => unreachable!("the whole reference is known"),
                }
            })
            .collect()
    }

    fn times(n: u64, step: u64, offset: u64) -> Vec<u64> {
        (0..n).map(|i| offset + i * step).collect()
    }

    #[test]
    fn same_rate_pairs_frame_by_frame() {
        let r = times(10, FRAME, 0);
        let got = pair(&r, FRAME, &r);
        assert_eq!(got, (0..10).map(Some).collect::<Vec<_>>());
    }

    #[test]
    fn half_rate_pairs_every_other_reference_frame() {
        let r = times(10, FRAME, 0);
        let t = times(5, 2 * FRAME, 0);
        assert_eq!(
            pair(&r, FRAME, &t),
            vec![Some(0), Some(2), Some(4), Some(6), Some(8)]
        );
    }

    #[test]
    fn double_rate_pairs_two_tested_frames_per_reference_frame() {
        let r = times(3, FRAME, 0);
        let t = times(6, FRAME / 2, 0);
        assert_eq!(
            pair(&r, FRAME, &t),
            vec![Some(0), Some(0), Some(1), Some(1), Some(2), Some(2)]
        );
    }

    #[test]
    fn delayed_copy_pairs_n_frames_later_and_overruns_unpaired() {
        let r = times(10, FRAME, 0);
        let t = times(10, FRAME, 3 * FRAME);
        let mut want: Vec<Option<usize>> = (3..10).map(Some).collect();
        want.extend([None, None, None]);
        assert_eq!(pair(&r, FRAME, &t), want);
    }

    #[test]
    fn frames_before_the_reference_starts_are_unpaired() {
        let r = times(5, FRAME, 2 * FRAME);
        let t = times(5, FRAME, 0);
        assert_eq!(
            pair(&r, FRAME, &t),
            vec![None, None, Some(0), Some(1), Some(2)]
        );
    }

    #[test]
    fn start_offset_inside_a_frame_pairs_with_the_covering_frame() {
        // Tested frames start 10 ms into each reference frame.
        let r = times(4, FRAME, 0);
        let t = times(4, FRAME, 10_000_000);
        assert_eq!(
            pair(&r, FRAME, &t),
            vec![Some(0), Some(1), Some(2), Some(3)]
        );
    }

    #[test]
    fn a_gap_in_the_reference_holds_the_last_frame() {
        // Reference frames at 0 and 200 ms, 40 ms long: a tested frame at
        // 100 ms is still compared with the frame at 0.
        assert_eq!(
            pair(&[0, 5 * FRAME], FRAME, &[0, 100_000_000, 5 * FRAME]),
            vec![Some(0), Some(0), Some(1)]
        );
    }

    #[test]
    fn undecidable_without_the_next_reference_frame() {
        let held = Some(Span {
            start: 0,
            duration: Some(FRAME),
        });
        assert_eq!(decide(10, held, Upcoming::Unknown), Decision::Wait);
        assert_eq!(decide(10, None, Upcoming::Unknown), Decision::Wait);
        assert_eq!(decide(10, held, Upcoming::TimedOut), Decision::Held);
        assert_eq!(decide(10, None, Upcoming::TimedOut), Decision::Unpaired);
    }

    #[test]
    fn last_reference_frame_without_duration_covers_the_rest() {
        let held = Some(Span {
            start: 0,
            duration: None,
        });
        assert_eq!(decide(10 * FRAME, held, Upcoming::Eos), Decision::Held);
    }

    #[test]
    fn late_frames_before_the_held_frame_are_unpaired() {
        let held = Some(Span {
            start: 5 * FRAME,
            duration: Some(FRAME),
        });
        assert_eq!(
            decide(0, held, Upcoming::Frame(6 * FRAME)),
            Decision::Unpaired
        );
    }
}
