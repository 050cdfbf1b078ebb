//! The local learning rule (spec §5), run concurrently with inference.
//!
//! ΔW_l ∝ ⟨(x_l − ε̄_l) f(x_{l+1})ᵀ⟩, Δb_l ∝ ⟨x_l − ε̄_l⟩ and, optionally,
//! Δθ_l ∝ ⟨−∂φ_l/∂θ(x_l) + ∂φ_l/∂θ(ε_l)⟩ for the base-energy parameters.
//! Every quantity is present at the synapse at the same time: the neuron's
//! state, the interneurons' estimate of its predicted mean, and the
//! presynaptic rate. Averaged over the posterior this is ∇ log p(x₀)
//! (Fisher's identity), so no free-running negative phase is needed.

mod grads;
mod minibatch;
pub mod negative_phase;
mod step;
mod update;

pub use grads::{EnergyReference, ParamGrads};
pub use minibatch::{train_minibatch, train_minibatch_at, MinibatchInfo, MinibatchSchedule};
pub use negative_phase::{pcd_step, pcd_update, two_phase_gradients, PcdInfo, PcdScratch};
pub use step::{learning_step, LearningScratch};
pub use update::{apply_gradients, local_gradients, proposed_energies};

use crate::error::{non_negative, Result};

/// Learning rates of the local rule (plain SGD on the ascent direction).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LocalLearning {
    /// Rate for the weights W.
    pub lr_weights: f64,
    /// Rate for the biases b.
    pub lr_biases: f64,
    /// Rate for base-energy parameters (0 keeps them fixed).
    pub lr_energy: f64,
}

impl LocalLearning {
    /// The same rate for weights and biases, energies fixed.
    pub fn new(lr: f64) -> Self {
        LocalLearning {
            lr_weights: lr,
            lr_biases: lr,
            lr_energy: 0.0,
        }
    }

    /// Checks that every rate is finite and ≥ 0.
    pub fn validate(&self) -> Result<()> {
        non_negative("lr_weights", self.lr_weights)?;
        non_negative("lr_biases", self.lr_biases)?;
        non_negative("lr_energy", self.lr_energy)
    }

    /// Multiplies every rate by `factor` (for schedules).
    pub fn scaled(&self, factor: f64) -> Self {
        LocalLearning {
            lr_weights: self.lr_weights * factor,
            lr_biases: self.lr_biases * factor,
            lr_energy: self.lr_energy * factor,
        }
    }
}
