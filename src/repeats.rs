//! Exact repeats: a frame whose model input is byte for byte the input of
//! the frame before it reuses that frame's embedding instead of running the
//! model again. One implementation for both of the engine's paths: the CPU
//! path compares its resized images, the GPU path the resized images the
//! kernels made (downloaded, 150 KB a frame at 224 px), so a still picture
//! costs a comparison on either.

use crate::embedding::Embedding;

/// The last frame's resized input and embedding.
#[derive(Debug, Default)]
pub(crate) struct Repeats {
    last_input: Option<Vec<u8>>,
    last_embedding: Option<Embedding>,
}

impl Repeats {
    /// Whether `resized`, the input of frame `index` of a model run's
    /// frames, repeats the frame before it (the previous frame of the run,
    /// or the last frame of the previous run). A frame that does not repeat
    /// becomes the one the next frame is compared with.
    pub(crate) fn is_repeat(&mut self, resized: &[u8], index: usize) -> bool {
        let repeat = self.last_input.as_deref() == Some(resized)
            && (index > 0 || self.last_embedding.is_some());
        if !repeat {
            match &mut self.last_input {
                Some(last) if last.len() == resized.len() => last.copy_from_slice(resized),
                _ => self.last_input = Some(resized.to_vec()),
            }
        }
        repeat
    }

    /// The embeddings of a run's frames in order, from `embedded` (one per
    /// frame that is not a repeat, in order) and `repeat` (per frame, as
    /// [`is_repeat`](Self::is_repeat) said); the last one is kept for the
    /// next run.
    pub(crate) fn assemble(&mut self, repeat: &[bool], embedded: Vec<Embedding>) -> Vec<Embedding> {
        let mut embedded = embedded.into_iter();
        let mut out = Vec::with_capacity(repeat.len());
        let mut previous = self.last_embedding.take();
        for &r in repeat {
            let e = if r {
                previous
                    .clone()
                    .expect("a repeat follows an embedded frame")
            } else {
                embedded.next().expect("one embedding per frame that runs")
            };
            previous = Some(e.clone());
            out.push(e);
        }
        self.last_embedding = previous;
        out
    }

    /// Forgets the last frame: after a failed run, the recorded input may
    /// belong to a frame whose embedding was never computed.
    pub(crate) fn forget(&mut self) {
        self.last_input = None;
        self.last_embedding = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(x: f32) -> Embedding {
        let v = [x, (1.0 - x * x).sqrt()];
        Embedding::from_slice(&v)
    }

    #[test]
    fn repeats_within_and_across_runs_reuse_the_embedding() {
        let mut r = Repeats::default();
        let (a, b) = ([1u8; 4], [2u8; 4]);
        let flags: Vec<bool> = [a, a, b, b]
            .iter()
            .enumerate()
            .map(|(i, x)| r.is_repeat(x, i))
            .collect();
        assert_eq!(flags, [false, true, false, true]);
        let out = r.assemble(&flags, vec![e(0.6), e(0.8)]);
        assert_eq!(out, [e(0.6), e(0.6), e(0.8), e(0.8)]);
        // The next run starts with a repeat of the last frame.
        assert!(r.is_repeat(&b, 0));
        assert_eq!(r.assemble(&[true], vec![]), [e(0.8)]);
        r.forget();
        assert!(!r.is_repeat(&b, 0));
    }
}
