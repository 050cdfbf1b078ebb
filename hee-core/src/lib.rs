//! # hee-core
//!
//! Hierarchical exponential-family energy-based (HEE) models after Dong & Wu
//! (NeurIPS 2023): the model and its energy ([`model`], [`energy`],
//! [`nonlinearity`]), the estimators of each layer's A′(η) ([`aprime`],
//! [`quadrature`]), the neural dynamics that sample the posterior
//! ([`dynamics`]), the local learning rule ([`learning`]), and exact
//! references for the linear-gaussian case ([`linear_gaussian`],
//! [`moments`]).

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

pub use aprime::{APrime, InterneuronConfig};
pub use dynamics::{
    Adaptation, CurvatureRange, Dynamics, Langevin, NeuralConfig, Observed, RowStreams,
    SamplerState, StepInfo, Workspace,
};
pub use energy::BaseEnergy;
pub use error::{HeeError, Result};
pub use model::{HeeModel, LayerSpec, ParamGrads};
pub use nonlinearity::Nonlinearity;
pub use scalar::Real;
