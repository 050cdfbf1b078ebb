//! Dynamics that follow the model (issue 23): a step chosen from the
//! current parameters. As learned σ shrink, the posterior stiffens (its
//! curvature from layer l grows like ‖W‖² f′²/σ_l², spec §10), so a step
//! that was stable for one set of parameters is not for a later one.
//! [`retuned`] measures the extreme eigenvalues of the posterior Hessian
//! ([`CurvatureRange::of_batch`]) and sets
//!
//! * Δt = `fraction` · τ/λ_max (Euler steps diverge at 2τ/λ_max),
//! * τ_a and g by the tuned adaptation rule on [λ_min, λ_max] (or g = 0),
//! * the interneuron sub-steps K, at least the configured ones, so that
//!   Δt/(K τ_ε) · max φ″ ≤ [`SUBSTEP_CURVATURE`] on every layer whose A′
//!   comes from interneurons.
//!
//! A training run calls it at the start of every epoch and whenever a σ has
//! moved by more than a set fraction since the last call; so do joint
//! generation and anything else that runs the dynamics on a changed model.

use faer::MatRef;

use super::{Adaptation, CurvatureRange, NeuralConfig};
use crate::aprime::{APrime, InterneuronConfig, LayerAPrime};
use crate::error::{positive, HeeError, Result};
use crate::model::HeeModel;
use crate::scalar::Real;

/// The bound on an interneuron sub-step: h_ε · max φ″ ≤ this.
pub const SUBSTEP_CURVATURE: f64 = 0.5;

/// How much stiffer the posterior may become before the next retuning:
/// the kernel must stay stable at λ_max × this (a σ that shrinks by 10%
/// raises its layer's curvature by 1/0.9² ≈ 1.23).
pub const HEADROOM: f64 = 1.25;

/// The trace of the likelihood part of the posterior Hessian that each
/// layer l < top puts on the layer above, Σ_i A″_i ‖W_l,i‖² with A″ = σ_i²
/// (exact for gaussian layers, the quadratic term's bound otherwise), and
/// the prior curvature 1/σ_min² of every layer: what grows when W grows
/// or σ shrinks. A run retunes when one of them has moved by more than a
/// set fraction since the last tuning.
pub fn stiffness<T: Real>(model: &HeeModel<T>) -> Vec<f64> {
    let mut out = Vec::with_capacity(2 * model.n_layers());
    for l in 0..model.top() {
        let layer = model.layer_energy(l);
        let w = model.weight(l);
        let mut t = 0.0;
        for j in 0..w.ncols() {
            for i in 0..w.nrows() {
                let s = layer.unit(i).sigma();
                t += s * s * w[(i, j)].f64().powi(2);
            }
        }
        out.push(t);
    }
    for l in 0..model.n_layers() {
        out.push(model.energy(l).max_curvature());
    }
    out
}

/// A kernel chosen for the current parameters, and what it was chosen from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tuning {
    pub kernel: Adaptation,
    pub range: CurvatureRange,
}

/// Interneuron sub-steps for `config` on `model`: the configured K, or more
/// where a layer that runs interneurons is stiffer than
/// [`SUBSTEP_CURVATURE`] allows at that K.
pub fn substeps_for<T: Real>(model: &HeeModel<T>, config: &NeuralConfig) -> Result<usize> {
    let Some(c) = config.a_prime.interneurons() else {
        return Ok(config.substeps());
    };
    let kinds = config.a_prime.resolve(model)?;
    let stiffest = (0..model.n_layers())
        .filter(|&l| kinds[l] == LayerAPrime::Interneurons)
        .map(|l| model.energy(l).max_curvature())
        .fold(0.0, f64::max);
    let need = (config.h() * stiffest / (c.tau_ratio * SUBSTEP_CURVATURE)).ceil();
    Ok(c.substeps.max(need as usize))
}

/// The kernel for the current parameters of `model`, measured on `data`
/// (batch × size(0)) with `latents` (batch × latent units, zero if
/// `None`): Δt = `fraction`·τ/λ_max on `base`'s τ, sub-steps by
/// [`substeps_for`], and τ_a, g by [`Adaptation::tuned_with`], or plain
/// Langevin when `momentum` is false.
pub fn retuned<T: Real>(
    base: NeuralConfig,
    model: &HeeModel<T>,
    data: MatRef<'_, T>,
    latents: Option<MatRef<'_, T>>,
    fraction: f64,
    momentum: bool,
) -> Result<Tuning> {
    positive("dt fraction", fraction)?;
    if fraction >= 2.0 {
        return Err(HeeError::param(
            "dt fraction",
            fraction,
            "must be below 2 (Euler steps diverge at 2 tau/lambda_max)",
        ));
    }
    let range = CurvatureRange::of_batch(model, base.first_free(), data, latents)?;
    let mut config = base;
    config.dt = fraction * base.tau / range.lambda_max;
    let interneurons = config
        .a_prime
        .resolve(model)?
        .contains(&LayerAPrime::Interneurons);
    // Shorter steps until the kernel is stable with HEADROOM to spare
    // (momentum's stability region is smaller than plain Langevin's).
    for _ in 0..40 {
        let k = substeps_for(model, &config)?;
        config.a_prime = match config.a_prime {
            APrime::Auto(c) => APrime::Auto(InterneuronConfig { substeps: k, ..c }),
            APrime::Interneurons(c) => APrime::Interneurons(InterneuronConfig { substeps: k, ..c }),
            other => other,
        };
        let kernel = if momentum {
            Adaptation::tuned_with(config, range, interneurons)?
        } else {
            Adaptation::new(config, config.tau, 0.0)?
        };
        if kernel.stable_for(HEADROOM * range.lambda_max) {
            return Ok(Tuning { kernel, range });
        }
        config.dt *= 0.8;
    }
    Err(HeeError::param(
        "dt fraction",
        fraction,
        "no step keeps the kernel stable at the measured curvature",
    ))
}
