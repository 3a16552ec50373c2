//! Bounds on settings that would otherwise starve the machine, and what to
//! say when a value is brought within them.

use std::fmt;

/// The largest batch the engine runs at once (and the `dreamsim` element's
/// `batch-size` maximum).
///
/// One frame of model input is 3 x 224 x 224 f32 = 602,112 bytes; a ViT-B/16
/// branch keeps several 197 x 768 token tensors, a 197 x 3072 MLP tensor and
/// 12 x 197 x 197 attention scores alive per image, about 10 MB for each of
/// the ensemble's three branches. At 256 frames that is about 150 MB of input
/// and several GB of activations, and the element holds up to 2 x 256
/// decoded frames (8 MB each at 1080p RGBx): the most a large GPU takes,
/// while GPU throughput stops growing well before (batches of 16 to 64).
pub const MAX_BATCH_SIZE: usize = 256;

/// The machine's logical CPUs as the process may use them (affinity and
/// cgroup quotas included), at least 1.
pub fn logical_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// A setting that was brought within a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clamped {
    /// The setting's name, in the element's words (`threads`).
    pub setting: &'static str,
    /// What was asked for.
    pub asked: usize,
    /// What is used.
    pub used: usize,
    /// The limit, in words, that decided it.
    pub limit: &'static str,
}

impl fmt::Display for Clamped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}={} is more than {}: using {}={}",
            self.setting, self.asked, self.limit, self.setting, self.used
        )
    }
}

/// ONNX Runtime's intra-op threads for `asked` (0: ONNX Runtime chooses, one
/// per physical core) on a machine with `cpus` logical CPUs. More threads
/// than logical CPUs only make them wait for each other: 1000 threads on two
/// CPUs made 20 tiny frames take 115 s instead of 0.5 s.
pub fn clamp_threads(asked: usize, cpus: usize) -> Result<usize, Clamped> {
    if asked <= cpus {
        Ok(asked)
    } else {
        Err(Clamped {
            setting: "threads",
            asked,
            used: cpus,
            limit: "the logical CPUs of this machine",
        })
    }
}

/// The batch size for `asked`, within 1 ..= [`MAX_BATCH_SIZE`].
pub fn clamp_batch_size(asked: usize) -> Result<usize, Clamped> {
    if (1..=MAX_BATCH_SIZE).contains(&asked) {
        Ok(asked)
    } else {
        Err(Clamped {
            setting: "batch-size",
            asked,
            used: asked.clamp(1, MAX_BATCH_SIZE),
            limit: "the engine's maximum batch (256)",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_beyond_the_cpus_are_clamped_and_said() {
        assert_eq!(clamp_threads(0, 2), Ok(0));
        assert_eq!(clamp_threads(2, 2), Ok(2));
        let c = clamp_threads(1000, 2).unwrap_err();
        assert_eq!((c.asked, c.used), (1000, 2));
        assert_eq!(
            c.to_string(),
            "threads=1000 is more than the logical CPUs of this machine: using threads=2"
        );
        assert!(logical_cpus() >= 1);
    }

    #[test]
    fn batch_sizes_stay_within_the_maximum() {
        assert_eq!(clamp_batch_size(1), Ok(1));
        assert_eq!(clamp_batch_size(MAX_BATCH_SIZE), Ok(MAX_BATCH_SIZE));
        assert_eq!(clamp_batch_size(5000).unwrap_err().used, MAX_BATCH_SIZE);
        assert_eq!(clamp_batch_size(0).unwrap_err().used, 1);
    }
}
