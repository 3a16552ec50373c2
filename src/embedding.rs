//! DreamSim embeddings and the distance between them.

use crate::error::{Error, Result};

/// A centred, unit-norm DreamSim embedding (1792 floats for the ensemble).
#[derive(Debug, Clone, PartialEq)]
pub struct Embedding(Box<[f32]>);

impl Embedding {
    /// Wraps the values as the model produced them (already centred and normalised).
    pub fn from_slice(values: &[f32]) -> Self {
        Self(values.into())
    }

    /// The values.
    pub fn as_slice(&self) -> &[f32] {
        &self.0
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True for an embedding with no values.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// DreamSim distance: 1 - cosine similarity, computed in f64. Both
    /// embeddings are unit-norm, so the cosine is their dot product.
    pub fn distance(&self, other: &Embedding) -> Result<f64> {
        distance(&self.0, &other.0)
    }
}

impl From<Vec<f32>> for Embedding {
    fn from(v: Vec<f32>) -> Self {
        Self(v.into_boxed_slice())
    }
}

/// DreamSim distance between two embeddings given as slices.
pub fn distance(a: &[f32], b: &[f32]) -> Result<f64> {
    if a.len() != b.len() {
        return Err(Error::EmbeddingMismatch(a.len(), b.len()));
    }
    let dot: f64 = a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum();
    Ok(1.0 - dot)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_embeddings_have_zero_distance() {
        let e = Embedding::from(vec![0.6, -0.8]);
        // 0.6 and 0.8 are not exact in f32, so the norm is 1 only to about 1e-8.
        assert!(e.distance(&e).unwrap().abs() < 1e-6);
    }

    #[test]
    fn opposite_embeddings_have_distance_two() {
        let a = Embedding::from(vec![0.6, -0.8]);
        let b = Embedding::from(vec![-0.6, 0.8]);
        assert!((a.distance(&b).unwrap() - 2.0).abs() < 1e-7);
    }

    #[test]
    fn different_widths_are_an_error() {
        let a = Embedding::from(vec![1.0]);
        let b = Embedding::from(vec![1.0, 0.0]);
        assert!(matches!(
            a.distance(&b),
            Err(Error::EmbeddingMismatch(1, 2))
        ));
    }
}
