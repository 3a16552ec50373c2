//! The arithmetic of `corpus match`, without GStreamer or an index: from
//! the frame-level matches between a query video and one candidate video,
//! the two vPDQ-style shares and the matched segments.

use std::collections::BTreeSet;

use serde::Serialize;

/// One query frame's match in the candidate video: a candidate frame within
/// the frame distance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FrameMatch {
    /// Index of the query frame (in the query's sampled frames).
    pub query_frame: usize,
    /// The query frame's time, ns.
    pub query_ns: u64,
    /// The candidate frame's time, ns.
    pub candidate_ns: u64,
    /// Their DreamSim distance.
    pub distance: f64,
}

/// How matched frames are grouped into segments.
#[derive(Debug, Clone, Copy)]
pub struct SegmentRules {
    /// Sampling period, ns: a segment ends one period after its last
    /// matched sample, and offsets within a period are one segment.
    pub period_ns: u64,
    /// Matched samples further apart than this (on the query's side) start
    /// a new segment, ns.
    pub max_gap_ns: u64,
    /// Segments shorter than this are not reported, ns.
    pub min_duration_ns: u64,
}

/// A time range matched in both videos.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Segment {
    /// Start in the query video, seconds.
    pub query_start_s: f64,
    /// End in the query video, seconds.
    pub query_end_s: f64,
    /// Start in the candidate video, seconds.
    pub candidate_start_s: f64,
    /// End in the candidate video, seconds.
    pub candidate_end_s: f64,
    /// Candidate time minus query time, seconds (the median over the
    /// segment's matched samples: a sample matched to a neighbour of its
    /// true counterpart does not move it).
    pub offset_s: f64,
    /// Matched samples in the segment.
    pub frames: usize,
    /// Mean distance of the matched samples.
    pub mean_distance: f64,
}

impl Segment {
    /// The same segment seen from the candidate's side.
    pub fn swapped(&self) -> Segment {
        Segment {
            query_start_s: self.candidate_start_s,
            query_end_s: self.candidate_end_s,
            candidate_start_s: self.query_start_s,
            candidate_end_s: self.query_end_s,
            offset_s: -self.offset_s,
            ..*self
        }
    }
}

/// What one query/candidate pair comes to.
#[derive(Debug, Clone, PartialEq)]
pub struct PairScore {
    /// Percentage of the query's sampled frames with a match in the candidate.
    pub query_share: f64,
    /// Percentage of the candidate's sampled frames with a match in the query.
    pub candidate_share: f64,
    /// Query frames with a match.
    pub query_matched: usize,
    /// Candidate frames with a match.
    pub candidate_matched: usize,
    /// The matched segments, in query order.
    pub segments: Vec<Segment>,
}

/// An open segment while the matches are walked in query order.
struct Open {
    q_first: u64,
    q_last: u64,
    c_first: u64,
    c_last: u64,
    offset_sum: i128,
    offsets: Vec<i128>,
    distance_sum: f64,
    n: usize,
}

impl Open {
    /// The running mean, to decide which segment a sample extends.
    fn offset(&self) -> i128 {
        self.offset_sum / self.n as i128
    }

    /// The median, reported.
    fn median_offset(&mut self) -> i128 {
        self.offsets.sort_unstable();
        let n = self.offsets.len();
        if n % 2 == 1 {
            self.offsets[n / 2]
        } else {
            (self.offsets[n / 2 - 1] + self.offsets[n / 2]) / 2
        }
    }
}

/// Scores a pair. `matches` holds every (query frame, candidate frame)
/// within the frame distance, in any order; `query_frames` and
/// `candidate_frames` are the videos' numbers of sampled frames, and the
/// durations (ns) cap the segments' ends.
pub fn score(
    matches: &[FrameMatch],
    query_frames: usize,
    candidate_frames: usize,
    query_duration_ns: u64,
    candidate_duration_ns: u64,
    rules: &SegmentRules,
) -> PairScore {
    let matched_q: BTreeSet<usize> = matches.iter().map(|m| m.query_frame).collect();
    let matched_c: BTreeSet<u64> = matches.iter().map(|m| m.candidate_ns).collect();
    let share = |n: usize, of: usize| {
        if of == 0 {
            0.0
        } else {
            (100.0 * n as f64 / of as f64).min(100.0)
        }
    };

    // The nearest candidate frame per query frame (ties: the earlier one).
    let mut best: Vec<FrameMatch> = Vec::with_capacity(matched_q.len());
    let mut sorted = matches.to_vec();
    sorted.sort_by(|a, b| {
        (a.query_frame, a.distance, a.candidate_ns)
            .partial_cmp(&(b.query_frame, b.distance, b.candidate_ns))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    for m in sorted {
        if best.last().is_none_or(|b| b.query_frame != m.query_frame) {
            best.push(m);
        }
    }
    best.sort_by_key(|m| m.query_ns);

    // Chains of constant offset (within one sampling period), broken by
    // gaps longer than max_gap.
    let tolerance = rules.period_ns as i128;
    let mut open: Vec<Open> = Vec::new();
    let mut closed: Vec<Open> = Vec::new();
    for m in &best {
        let offset = m.candidate_ns as i128 - m.query_ns as i128;
        // Segments whose gap is already too long are done.
        let (keep, done): (Vec<Open>, Vec<Open>) = open
            .into_iter()
            .partition(|s| m.query_ns - s.q_last <= rules.max_gap_ns);
        closed.extend(done);
        open = keep;
        let nearest = open
            .iter_mut()
            .filter(|s| (s.offset() - offset).abs() <= tolerance)
            .min_by_key(|s| (s.offset() - offset).abs());
        match nearest {
            Some(s) => {
                s.q_last = m.query_ns;
                s.c_first = s.c_first.min(m.candidate_ns);
                s.c_last = s.c_last.max(m.candidate_ns);
                s.offset_sum += offset;
                s.offsets.push(offset);
                s.distance_sum += m.distance;
                s.n += 1;
            }
            None => open.push(Open {
                q_first: m.query_ns,
                q_last: m.query_ns,
                c_first: m.candidate_ns,
                c_last: m.candidate_ns,
                offset_sum: offset,
                offsets: vec![offset],
                distance_sum: m.distance,
                n: 1,
            }),
        }
    }
    closed.extend(open);

    let secs = |ns: u64| ns as f64 / 1e9;
    let end = |last: u64, duration: u64| {
        let e = last + rules.period_ns;
        if duration > last {
            e.min(duration)
        } else {
            e
        }
    };
    let mut segments: Vec<Segment> = closed
        .into_iter()
        .filter_map(|mut s| {
            let q_end = end(s.q_last, query_duration_ns);
            let c_end = end(s.c_last, candidate_duration_ns);
            (q_end - s.q_first >= rules.min_duration_ns).then(|| Segment {
                query_start_s: secs(s.q_first),
                query_end_s: secs(q_end),
                candidate_start_s: secs(s.c_first),
                candidate_end_s: secs(c_end),
                offset_s: s.median_offset() as f64 / 1e9,
                frames: s.n,
                mean_distance: s.distance_sum / s.n as f64,
            })
        })
        .collect();
    segments.sort_by(|a, b| a.query_start_s.total_cmp(&b.query_start_s));

    PairScore {
        query_share: share(matched_q.len(), query_frames),
        candidate_share: share(matched_c.len(), candidate_frames),
        query_matched: matched_q.len(),
        candidate_matched: matched_c.len(),
        segments,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn rules() -> SegmentRules {
        SegmentRules {
            period_ns: S,
            max_gap_ns: 3 * S,
            min_duration_ns: 2 * S,
        }
    }

    fn m(query_frame: usize, q_s: f64, c_s: f64, distance: f64) -> FrameMatch {
        FrameMatch {
            query_frame,
            query_ns: (q_s * 1e9) as u64,
            candidate_ns: (c_s * 1e9) as u64,
            distance,
        }
    }

    #[test]
    fn a_copy_is_one_segment_at_offset_zero() {
        let matches: Vec<_> = (0..10).map(|i| m(i, i as f64, i as f64, 0.0)).collect();
        let s = score(&matches, 10, 10, 10 * S, 10 * S, &rules());
        assert_eq!((s.query_share, s.candidate_share), (100.0, 100.0));
        assert_eq!(s.segments.len(), 1);
        let seg = s.segments[0];
        assert_eq!((seg.query_start_s, seg.query_end_s), (0.0, 10.0));
        assert_eq!(seg.offset_s, 0.0);
        assert_eq!(seg.frames, 10);
    }

    #[test]
    fn a_subclip_is_found_at_its_offset() {
        // Query: a 4 s clip; candidate: 10 s, the clip at 3 s.
        let matches: Vec<_> = (0..4)
            .map(|i| m(i, i as f64, 3.0 + i as f64, 0.01))
            .collect();
        let s = score(&matches, 4, 10, 4 * S, 10 * S, &rules());
        assert_eq!(s.query_share, 100.0);
        assert_eq!(s.candidate_share, 40.0);
        assert_eq!(s.segments.len(), 1);
        assert_eq!(s.segments[0].offset_s, 3.0);
        assert_eq!(s.segments[0].candidate_start_s, 3.0);
        assert_eq!(s.segments[0].candidate_end_s, 7.0);
        let back = s.segments[0].swapped();
        assert_eq!((back.query_start_s, back.offset_s), (3.0, -3.0));
    }

    #[test]
    fn the_nearest_candidate_frame_decides_and_gaps_split() {
        // A static shot matches several candidate frames; the nearest is
        // the aligned one. A gap of 5 s splits the run in two.
        let mut matches = vec![];
        for i in 0..3 {
            matches.push(m(i, i as f64, i as f64, 0.01));
            matches.push(m(i, i as f64, i as f64 + 1.0, 0.05));
        }
        for i in 3..6 {
            matches.push(m(i, i as f64 + 5.0, i as f64 + 5.0, 0.01));
        }
        let s = score(&matches, 11, 11, 11 * S, 11 * S, &rules());
        assert_eq!(s.segments.len(), 2, "{:?}", s.segments);
        assert!(s.segments.iter().all(|g| g.offset_s == 0.0));
        assert_eq!(s.candidate_matched, 7);
    }

    #[test]
    fn short_and_stray_matches_make_no_segment() {
        let matches = vec![m(0, 0.0, 5.0, 0.1), m(4, 4.0, 1.0, 0.1)];
        let s = score(&matches, 10, 10, 10 * S, 10 * S, &rules());
        assert!(s.segments.is_empty(), "{:?}", s.segments);
        assert_eq!(s.query_share, 20.0);
        let none = score(&[], 0, 0, 0, 0, &rules());
        assert_eq!((none.query_share, none.candidate_share), (0.0, 0.0));
    }
}
