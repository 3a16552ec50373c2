//! Which execution provider took how many nodes of the graph.
//!
//! ONNX Runtime puts every node it can on the first registered provider
//! that takes it and the rest on the next ones, down to the CPU, and says so
//! only in its verbose log. Since API 1.24 it can record the assignment
//! (session option [`RECORD_CONFIG_KEY`]) and return it
//! (`Session_GetEpGraphAssignmentInfo`): read here once the session is
//! built, so the start-up message can say how much of the model runs where
//! (TensorRT with nodes on CUDA behind it, say).

use std::ffi::{c_char, CStr};
use std::fmt;

use ort::session::Session;
use ort::AsPointer;

use crate::session_plan::ort_names;

/// The session option that makes ONNX Runtime record the node placement.
pub const RECORD_CONFIG_KEY: &str = "session.record_ep_graph_assignment_info";

/// Nodes per execution provider, in the order ONNX Runtime reports them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NodePlacement {
    counts: Vec<(String, usize)>,
}

impl NodePlacement {
    /// A placement from (provider name, nodes) pairs; ONNX Runtime's
    /// provider names are shortened (`TensorrtExecutionProvider` to
    /// `tensorrt`), and counts of the same provider added up.
    pub fn from_counts<'a>(counts: impl IntoIterator<Item = (&'a str, usize)>) -> Self {
        let mut out: Vec<(String, usize)> = Vec::new();
        for (name, n) in counts {
            let name = short_name(name);
            match out.iter_mut().find(|(p, _)| *p == name) {
                Some((_, total)) => *total += n,
                None => out.push((name, n)),
            }
        }
        Self { counts: out }
    }

    /// Reads the placement ONNX Runtime recorded for `session` (built with
    /// [`RECORD_CONFIG_KEY`] set); `None` when it cannot be read.
    pub fn of(session: &Session) -> Option<Self> {
        let api = ort::api();
        let mut subgraphs = std::ptr::null();
        let mut count = 0usize;
        // SAFETY: a live session and two out-parameters; the array and its
        // entries belong to the session and are only read while it lives.
        let status = unsafe {
            (api.Session_GetEpGraphAssignmentInfo)(session.ptr(), &mut subgraphs, &mut count)
        };
        // SAFETY: a status straight from ONNX Runtime, consumed once.
        unsafe { ort::Error::result_from_status(status) }.ok()?;
        if count == 0 || subgraphs.is_null() {
            return None;
        }
        let mut pairs = Vec::with_capacity(count);
        // SAFETY: ONNX Runtime returned `count` entries.
        for &subgraph in unsafe { std::slice::from_raw_parts(subgraphs, count) } {
            if subgraph.is_null() {
                return None;
            }
            let mut name: *const c_char = std::ptr::null();
            let mut nodes = std::ptr::null();
            let mut node_count = 0usize;
            // SAFETY: a subgraph entry of the live session, out-parameters.
            unsafe {
                ort::Error::result_from_status((api.EpAssignedSubgraph_GetEpName)(
                    subgraph, &mut name,
                ))
                .ok()?;
                ort::Error::result_from_status((api.EpAssignedSubgraph_GetNodes)(
                    subgraph,
                    &mut nodes,
                    &mut node_count,
                ))
                .ok()?;
            }
            if name.is_null() {
                return None;
            }
            // SAFETY: a NUL-terminated string owned by the session.
            let name = unsafe { CStr::from_ptr(name) }
                .to_string_lossy()
                .into_owned();
            pairs.push((name, node_count));
        }
        Some(Self::from_counts(
            pairs.iter().map(|(n, c)| (n.as_str(), *c)),
        ))
    }

    /// (provider, nodes), providers by their short names (`tensorrt`,
    /// `cuda`, `openvino`, `cpu`, or ONNX Runtime's name for another).
    pub fn counts(&self) -> &[(String, usize)] {
        &self.counts
    }

    /// The nodes `provider` (short name) took.
    pub fn nodes_on(&self, provider: &str) -> usize {
        self.counts
            .iter()
            .filter(|(p, _)| p == provider)
            .map(|(_, n)| n)
            .sum()
    }

    /// All nodes.
    pub fn total(&self) -> usize {
        self.counts.iter().map(|(_, n)| n).sum()
    }

    /// Whether the nodes are spread over more than one provider.
    pub fn is_split(&self) -> bool {
        self.counts.iter().filter(|(_, n)| *n > 0).count() > 1
    }
}

/// `tensorrt 120 nodes, cuda 8, cpu 2`.
impl fmt::Display for NodePlacement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (provider, n)) in self.counts.iter().enumerate() {
            if i == 0 {
                write!(f, "{provider} {n} nodes")?;
            } else {
                write!(f, ", {provider} {n}")?;
            }
        }
        Ok(())
    }
}

fn short_name(ort_name: &str) -> String {
    match ort_name {
        ort_names::TENSORRT => "tensorrt".into(),
        ort_names::CUDA => "cuda".into(),
        ort_names::OPENVINO => "openvino".into(),
        ort_names::CPU => "cpu".into(),
        other => other.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_named_and_summed() {
        let p = NodePlacement::from_counts([
            (ort_names::TENSORRT, 100),
            (ort_names::CUDA, 6),
            (ort_names::TENSORRT, 20),
            (ort_names::CPU, 2),
        ]);
        assert_eq!(p.to_string(), "tensorrt 120 nodes, cuda 6, cpu 2");
        assert_eq!(p.nodes_on("tensorrt"), 120);
        assert_eq!(p.total(), 128);
        assert!(p.is_split());
        assert!(!NodePlacement::from_counts([(ort_names::CPU, 9)]).is_split());
    }
}
