//! The local learning rule (spec §5), run concurrently with inference.
//!
//! ΔW_l ∝ ⟨(x_l − ε̄_l) f(x_{l+1})ᵀ⟩, Δb_l ∝ ⟨x_l − ε̄_l⟩ and, optionally,
//! Δθ_l ∝ ⟨−∂φ_l/∂θ(x_l) + ∂φ_l/∂θ(ε_l)⟩ for the base-energy parameters.
//! Every quantity is present at the synapse at the same time: the neuron's
//! state, the interneurons' estimate of its predicted mean, and the
//! presynaptic rate. Averaged over the posterior this is ∇ log p(x₀)
//! (Fisher's identity), so no free-running negative phase is needed.

pub mod dispersion;
mod grads;
mod minibatch;
pub mod negative_phase;
mod step;
mod update;

pub use dispersion::{DispersionLearning, LayerSet, Parametrisation};
pub use grads::{EnergyReference, ParamGrads};
pub use minibatch::{train_minibatch, train_minibatch_at, MinibatchInfo, MinibatchSchedule};
pub use negative_phase::{pcd_step, pcd_update, two_phase_gradients, PcdInfo, PcdScratch};
pub use step::{learning_step, LearningScratch};
pub use update::{apply_gradients, local_gradients, proposed_energies};

use crate::error::{non_negative, positive, Result};

/// Learning rates of the local rule (plain SGD on the ascent direction).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LocalLearning {
    /// Rate for the weights W.
    pub lr_weights: f64,
    /// Rate for the biases b.
    pub lr_biases: f64,
    /// Rate for the ψ parameters of the base energies (λ, δ, w, ν; 0 keeps
    /// them fixed). σ learns through `sigma`.
    pub lr_energy: f64,
    /// Which σ learn (as log σ), at what rate, above what floor.
    pub sigma: DispersionLearning,
    /// The coordinates W, b and σ of gaussian layers are stepped in.
    pub parametrisation: Parametrisation,
}

impl LocalLearning {
    /// The same rate for weights and biases, energies fixed.
    pub fn new(lr: f64) -> Self {
        LocalLearning {
            lr_weights: lr,
            lr_biases: lr,
            ..LocalLearning::default()
        }
    }

    /// Checks that every rate is finite and ≥ 0, and the σ floor > 0.
    pub fn validate(&self) -> Result<()> {
        non_negative("lr_weights", self.lr_weights)?;
        non_negative("lr_biases", self.lr_biases)?;
        non_negative("lr_energy", self.lr_energy)?;
        non_negative("lr_sigma", self.sigma.rate)?;
        positive("sigma_max_step", self.sigma.max_step)?;
        positive("sigma_min", self.sigma.floor)
    }

    /// Multiplies every rate by `factor` (for schedules).
    pub fn scaled(&self, factor: f64) -> Self {
        LocalLearning {
            lr_weights: self.lr_weights * factor,
            lr_biases: self.lr_biases * factor,
            lr_energy: self.lr_energy * factor,
            sigma: DispersionLearning {
                rate: self.sigma.rate * factor,
                ..self.sigma
            },
            parametrisation: self.parametrisation,
        }
    }
}
