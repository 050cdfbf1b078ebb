//! Per-example persistent latent chains: each training example's latents
//! where its chain ended the last time the example was visited.

use hee_core::faer::{Mat, MatRef};
use hee_core::HeeModel;

/// Examples × latent units (layers 1 … L stacked).
#[derive(Debug, Clone)]
pub struct LatentBank(Mat<f32>);

impl LatentBank {
    /// Every example's chain at the neutral state x = 0.
    pub fn new(model: &HeeModel<f32>, examples: usize) -> Self {
        LatentBank(Mat::zeros(examples, model.total_size() - model.size(0)))
    }
    /// A bank read back from a checkpoint.
    pub fn from_mat(m: Mat<f32>) -> Self {
        LatentBank(m)
    }
    /// The latents of examples `idx`, one row each (a minibatch's start).
    pub fn rows(&self, idx: &[usize]) -> Mat<f32> {
        Mat::from_fn(idx.len(), self.0.ncols(), |r, c| self.0[(idx[r], c)])
    }
    /// Keeps `latents` (one row per entry of `idx`) as those examples' chains.
    pub fn store(&mut self, idx: &[usize], latents: MatRef<'_, f32>) {
        for (r, &i) in idx.iter().enumerate() {
            for c in 0..self.0.ncols() {
                self.0[(i, c)] = latents[(r, c)];
            }
        }
    }
    /// The whole bank.
    pub fn as_ref(&self) -> MatRef<'_, f32> {
        self.0.as_ref()
    }
    /// Number of latent units per example.
    pub fn ncols(&self) -> usize {
        self.0.ncols()
    }
}
