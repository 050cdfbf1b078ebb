//! Settings every neural kernel shares: step, time constant, the A′
//! estimator, which layer is data and which energy the neurons descend.

use crate::aprime::APrime;
use crate::error::{positive, HeeError, Result};

/// Whether the observation layer is clamped to data (inference) or free
/// (joint generation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Observed {
    #[default]
    Clamped,
    Free,
}

/// The energy whose gradient drives the neurons.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Potential {
    /// HEE's joint energy U = Σ_l [φ_l − η_l·x_l + A_l(η_l)]: the prediction
    /// errors subtract A′(η), estimated as [`NeuralConfig::a_prime`] says.
    #[default]
    Normalised,
    /// The unnormalised energy Ẽ = Σ_l [φ_l − η_l·x_l] of the negative-phase
    /// baseline (spec §7): A′ ≡ 0 in the prediction errors, and no A′
    /// estimator runs.
    Unnormalised,
}

/// Settings every neural kernel shares.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NeuralConfig {
    /// Time step Δt.
    pub dt: f64,
    /// Neuron time constant τ.
    pub tau: f64,
    /// Estimator of A′(η).
    pub a_prime: APrime,
    /// Clamp the observation layer, or let it evolve.
    pub observed: Observed,
    /// The energy the neurons descend: HEE's U, or the baseline's Ẽ.
    pub potential: Potential,
    /// Samples per parallel work unit (results depend on it, not on threads).
    pub chunk: usize,
}

impl NeuralConfig {
    /// Δt and τ with the default estimator (analytic for gaussian layers,
    /// interneurons otherwise), clamped observations, chunks of 32 samples.
    pub fn new(dt: f64, tau: f64) -> Self {
        NeuralConfig {
            dt,
            tau,
            a_prime: APrime::default(),
            observed: Observed::Clamped,
            potential: Potential::Normalised,
            chunk: 32,
        }
    }

    /// Checks Δt > 0, τ > 0, the interneuron settings and the chunk size.
    pub fn validate(&self) -> Result<()> {
        positive("dt", self.dt)?;
        positive("tau", self.tau)?;
        if let Some(c) = self.a_prime.interneurons() {
            c.validate()?;
        }
        if self.chunk == 0 {
            return Err(HeeError::param("chunk", 0.0, "must be >= 1"));
        }
        Ok(())
    }

    /// h = Δt/τ, the neurons' dimensionless step.
    pub fn h(&self) -> f64 {
        self.dt / self.tau
    }

    /// Interneuron sub-step Δt/(K τ_ε), or 0 without interneurons.
    pub fn h_eps(&self) -> f64 {
        match self.a_prime.interneurons() {
            Some(c) => self.h() / (c.substeps as f64 * c.tau_ratio),
            None => 0.0,
        }
    }

    /// Interneuron sub-steps K (1 when none are used).
    pub fn substeps(&self) -> usize {
        self.a_prime.interneurons().map_or(1, |c| c.substeps)
    }

    /// First layer that moves: 1 when x₀ is clamped, 0 otherwise.
    pub fn first_free(&self) -> usize {
        match self.observed {
            Observed::Clamped => 1,
            Observed::Free => 0,
        }
    }
}
