//! # hee-core
//!
//! Hierarchical exponential-family energy-based (HEE) models after Dong & Wu
//! (NeurIPS 2023). The crate is layered; each folder is one room:
//!
//! | module | what | spec |
//! | --- | --- | --- |
//! | [`energy`] | base energies φ of one unit, and their φ′ kernels | §1 |
//! | [`model`] | the layers and parameters, η, the drift ∂U/∂x, the joint energy U (and, from tabulated normalisers, fast enough for AIS) | §1 |
//! | [`aprime`] | estimators of A′(η): analytic, quadrature, interneurons; tables of a(η), a′(η) | §2 |
//! | [`dynamics`] | chains, the neural kernels (plain Langevin, adaptation) and their executor | §3–4 |
//! | [`learning`] | the local rule, the fused learning step, minibatches | §5 |
//! | [`generate`] | marginal (ancestral) generation, exact per unit | §6 |
//! | [`grbm`] | the Gaussian-Bernoulli RBM of the comparison (issue 24): its energy, Gibbs-Langevin chains, CD from noise, exact enumeration | |
//! | [`reference`] | exact references: linear-gaussian posteriors and marginals, moment recursion | §8 |
//! | [`rng`] | per-sample ChaCha8 streams and f32 normals | |
//! | [`elementwise`] | the vectorised element-wise kernels and their runtime dispatch | |
//!
//! Every batch a caller passes in or reads out is **one sample per row**
//! (batch × units; several layers side by side, layer 0 first). A run is
//! `kernel.init(&model, data, latents, batch, seed)` → [`Chains`], then
//! `kernel.step(&model, &mut chains)` → [`StepInfo`]; see [`dynamics`].

pub mod aprime;
pub mod dynamics;
pub mod elementwise;
pub mod energy;
pub mod error;
pub mod generate;
pub mod grbm;
pub mod learning;
pub mod model;
pub mod nonlinearity;
pub mod reference;
pub mod rng;
pub mod scalar;

/// The matrix library of the public API (`MatRef`, `Mat`), re-exported so
/// that users need no faer dependency of their own.
pub use faer;

pub use aprime::{APrime, InterneuronConfig};
pub use dynamics::{
    Adaptation, Chains, CurvatureRange, Dynamics, Langevin, NeuralConfig, Observed, Potential,
    RowStreams, SamplerState, StepInfo, StreamPosition, Workspace,
};
pub use energy::BaseEnergy;
pub use error::{HeeError, Result};
pub use learning::ParamGrads;
pub use model::{HeeModel, LayerSpec};
pub use nonlinearity::Nonlinearity;
pub use rng::Purpose;
pub use scalar::Real;
