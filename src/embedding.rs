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

/// How far from 1 the L2 norm of a model's embedding may be. fp16 and bf16
/// arithmetic keep it within about 4e-3; a model that does not normalise
/// (or normalises wrongly) is off by far more.
pub const UNIT_NORM_TOLERANCE: f32 = 1e-2;

/// What is wrong with a model's embedding.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EmbeddingFault {
    /// A value is NaN or infinite.
    #[error("value {index} of {len} is {value}")]
    NotFinite {
        /// Index of the first such value.
        index: usize,
        /// Width of the embedding.
        len: usize,
        /// The value.
        value: f32,
    },
    /// The L2 norm is not 1 within [`UNIT_NORM_TOLERANCE`].
    #[error("its L2 norm is {norm:.6}, not 1")]
    NotUnitNorm {
        /// The norm found.
        norm: f64,
    },
}

/// Checks that `values` can be a DreamSim embedding: every value finite and
/// the L2 norm 1 within [`UNIT_NORM_TOLERANCE`]. One pass, no allocation.
pub fn check(values: &[f32]) -> Result<(), EmbeddingFault> {
    let mut sum = 0f64;
    for (index, &value) in values.iter().enumerate() {
        if !value.is_finite() {
            return Err(EmbeddingFault::NotFinite {
                index,
                len: values.len(),
                value,
            });
        }
        sum += f64::from(value) * f64::from(value);
    }
    let norm = sum.sqrt();
    if (norm - 1.0).abs() > f64::from(UNIT_NORM_TOLERANCE) {
        return Err(EmbeddingFault::NotUnitNorm { norm });
    }
    Ok(())
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
    fn non_finite_and_non_unit_embeddings_are_found() {
        assert_eq!(check(&[0.6, -0.8]), Ok(()));
        assert_eq!(
            check(&[0.6, f32::NAN, f32::INFINITY])
                .unwrap_err()
                .to_string(),
            "value 1 of 3 is NaN"
        );
        assert_eq!(
            check(&[0.0, f32::NEG_INFINITY]).unwrap_err().to_string(),
            "value 1 of 2 is -inf"
        );
        assert_eq!(
            check(&[1.2, -1.6]).unwrap_err().to_string(),
            "its L2 norm is 2.000000, not 1"
        );
        assert!(
            check(&[0.0; 4]).is_err(),
            "the zero vector is not unit-norm"
        );
        assert!(check(&[1.005]).is_ok() && check(&[1.02]).is_err());
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
