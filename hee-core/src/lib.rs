//! # hee-core
//!
//! Hierarchical exponential-family energy-based (HEE) models after Dong & Wu
//! (NeurIPS 2023): the model and its energy ([`model`], [`energy`],
//! [`nonlinearity`]), the estimators of each layer's A′(η) ([`aprime`],
//! [`quadrature`]), the neural dynamics that sample the posterior
//! ([`dynamics`]), the local learning rule ([`learning`]), and exact
//! references for the linear-gaussian case ([`linear_gaussian`],
//! [`moments`]).
//!
//! Every batch a caller passes in or reads out is **one sample per row**
//! (batch × units; several layers side by side, layer 0 first). A run is
//! `kernel.init(&model, data, latents, batch, seed)` → [`Chains`], then
//! `kernel.step(&model, &mut chains)` → [`StepInfo`]; see [`dynamics`].

pub mod aprime;
pub mod dynamics;
pub mod energy;
pub mod error;
pub mod learning;
pub mod linear_gaussian;
pub mod model;
pub mod moments;
pub mod nonlinearity;
pub mod normal;
pub mod quadrature;
pub mod scalar;
pub mod simd;
pub mod stream;

/// The matrix library of the public API (`MatRef`, `Mat`), re-exported so
/// that users need no faer dependency of their own.
pub use faer;

pub use aprime::{APrime, InterneuronConfig};
pub use dynamics::{
    Adaptation, Chains, CurvatureRange, Dynamics, Langevin, NeuralConfig, Observed, RowStreams,
    SamplerState, StepInfo, StreamPosition, Workspace,
};
pub use energy::BaseEnergy;
pub use error::{HeeError, Result};
pub use model::{HeeModel, LayerSpec, ParamGrads};
pub use nonlinearity::Nonlinearity;
pub use scalar::Real;
