//! Applying the rule: the ascent direction from a state, and the SGD step
//! θ ← θ + rate·g that refuses a non-finite or out-of-range update.

use faer::Mat;
use rayon::prelude::*;

use super::dispersion::{sigma_gradients, RowSteps};
use super::grads::{rows_step_in_place, EnergyReference, ParamGrads, WEIGHT_GRAD_BLOCK};
use super::{LearningScratch, LocalLearning};
use crate::aprime::{APrime, LayerAPrime};
use crate::dynamics::SamplerState;
use crate::elementwise::{all_finite, check_finite};
use crate::energy::{BaseEnergy, MAX_ENERGY_PARAMS};
use crate::error::{HeeError, Result};
use crate::model::HeeModel;
use crate::scalar::Real;

/// Ascent direction of the local rule from the current state (x and its A′
/// estimate), stored in `scratch.grads`; the energy and σ slots are filled
/// for what `rates` learns.
pub fn local_gradients<T: Real>(
    model: &HeeModel<T>,
    state: &SamplerState<T>,
    a_prime: &APrime,
    rates: &LocalLearning,
    scratch: &mut LearningScratch<T>,
) -> Result<()> {
    let x = state.x.as_ref();
    // f(x) for the presynaptic side; η and A′ are already in the state.
    model.presynaptic(x, scratch.fx.as_mut());
    model.weight_grads_unchecked(
        x,
        state.a_prime.as_ref(),
        scratch.fx.as_ref(),
        scratch.diff.as_mut(),
        &mut scratch.grads,
        // The whole batch at once, split over the threads in fixed blocks
        // of ΔW's columns (the result does not depend on their number;
        // tested).
        faer::Par::rayon(0),
    );
    energy_gradients(
        model,
        state,
        rates,
        &a_prime.resolve(model)?,
        &mut scratch.grads,
    )
}

/// The energy-parameter slots of `grads` from the state, averaged over the
/// layer's units (so a rate means the same whatever its width): samples
/// of each conditional from the interneurons where they run, quadrature at
/// η elsewhere; and, when σ learns, the σ-slots (`dispersion`).
pub(crate) fn energy_gradients<T: Real>(
    model: &HeeModel<T>,
    state: &SamplerState<T>,
    rates: &LocalLearning,
    kinds: &[LayerAPrime],
    grads: &mut ParamGrads<T>,
) -> Result<()> {
    if rates.lr_energy > 0.0 {
        for l in 0..model.n_layers() {
            let reference = match kinds[l] {
                LayerAPrime::Interneurons => EnergyReference::Samples(state.eps.as_ref()),
                _ => EnergyReference::Exact(state.eta.as_ref()),
            };
            let g = model.energy_param_grads_unchecked(l, state.x.as_ref(), reference)?;
            grads.energy[l] = g.map(|v| v / model.size(l) as f64);
        }
    }
    if rates.sigma.active() {
        sigma_gradients(model, state, kinds, rates, grads)?;
    }
    Ok(())
}

/// The base energies after one SGD step on their ψ parameters (every
/// parameter but σ, which learns as log σ: [`crate::learning::DispersionLearning`]),
/// validated (an error names the layer and parameter that would leave its
/// range).
pub fn proposed_energies<T: Real>(
    model: &HeeModel<T>,
    grads: &ParamGrads<T>,
    rates: &LocalLearning,
) -> Result<Vec<BaseEnergy>> {
    if grads.energy.len() != model.n_layers() {
        return Err(HeeError::DimensionMismatch {
            field: "grads.energy".into(),
            expected: model.n_layers().to_string(),
            got: grads.energy.len().to_string(),
        });
    }
    let mut out = Vec::with_capacity(model.n_layers());
    for l in 0..model.n_layers() {
        let e = *model.energy(l);
        if rates.lr_energy > 0.0 {
            let mut p = e.params();
            for i in 1..e.n_params().min(MAX_ENERGY_PARAMS) {
                p[i] += rates.lr_energy * grads.energy[l][i];
            }
            let ne = e.with_params(p);
            ne.validate(&format!("layers[{l}].energy"))?;
            out.push(ne);
        } else {
            out.push(e);
        }
    }
    Ok(out)
}

/// One SGD step on every parameter: θ ← θ + rate·g in natural
/// coordinates, or in the mean's for gaussian layers under
/// [`Parametrisation::Mean`](crate::learning::Parametrisation); learned σ
/// move as log σ, floored. Energy parameters that would leave their valid
/// range are rejected with an error (the model is unchanged in that case);
/// non-finite or wrongly shaped gradients are rejected too.
pub fn apply_gradients<T: Real>(
    model: &mut HeeModel<T>,
    grads: &ParamGrads<T>,
    rates: &LocalLearning,
) -> Result<()> {
    let mut steps = RowSteps::new(model);
    steps.plan(model, grads, rates)?;
    apply(model, grads, rates, &steps, None)
}

/// [`apply_gradients`] with the step planned (`steps`); `next_weights`,
/// when given, holds the new W for a ΔW the caller has already checked
/// entry by entry (the learning step forms both block by block), and is
/// swapped in instead of a pass over W.
pub(crate) fn apply<T: Real>(
    model: &mut HeeModel<T>,
    grads: &ParamGrads<T>,
    rates: &LocalLearning,
    steps: &RowSteps<T>,
    next_weights: Option<&mut [Mat<T>]>,
) -> Result<()> {
    let shaped = grads.weights.len() == model.top()
        && grads.biases.len() == model.n_layers()
        && grads
            .weights
            .iter()
            .enumerate()
            .all(|(l, w)| (w.nrows(), w.ncols()) == (model.size(l), model.size(l + 1)))
        && grads
            .biases
            .iter()
            .enumerate()
            .all(|(l, b)| b.len() == model.size(l))
        && steps.fits(model);
    if !shaped {
        return Err(HeeError::DimensionMismatch {
            field: "grads".into(),
            expected: "shaped like the model (ParamGrads::zeros_like)".into(),
            got: "other shapes".into(),
        });
    }
    // Validate first so that a failure leaves the model untouched.
    for (l, w) in grads.weights.iter().enumerate() {
        // Over column blocks in parallel; the name is only formatted for
        // the error (no allocation per step).
        let finite = next_weights.is_some()
            || w.as_ref()
                .par_col_chunks(WEIGHT_GRAD_BLOCK)
                .all(|c| all_finite(c));
        if !finite {
            check_finite(&format!("grad W[{l}]"), w.as_ref())?;
        }
    }
    for (l, b) in grads.biases.iter().enumerate() {
        if let Some(v) = b.iter().find(|v| !v.is_finite()) {
            return Err(HeeError::NonFiniteInput {
                field: format!("grad b[{l}]"),
                row: 0,
                col: 0,
                value: v.f64(),
            });
        }
    }
    // Energies change only when their rate is on (and only then is a list
    // of them built: the learning step allocates nothing otherwise).
    let new_energies = if rates.lr_energy > 0.0 {
        Some(proposed_energies(model, grads, rates)?)
    } else {
        None
    };
    let (lw, lb) = (T::of(rates.lr_weights), T::of(rates.lr_biases));
    if let Some(next) = next_weights {
        // Already the new W, element by element as below.
        model.swap_weights(next);
    } else {
        for (l, g) in grads.weights.iter().enumerate() {
            // In place: vectorised passes over blocks of columns, shared by
            // the threads (element-wise, so the same bits whatever their
            // number).
            let blocks = model
                .weight_mut(l)
                .par_col_chunks_mut(WEIGHT_GRAD_BLOCK)
                .zip(g.as_ref().par_col_chunks(WEIGHT_GRAD_BLOCK));
            if steps.per_row[l] {
                let (keep, rate) = (&steps.keep[l][..], &steps.rate_w[l][..]);
                blocks.for_each(|(w, g)| rows_step_in_place(w, g, keep, rate));
            } else {
                blocks.for_each(|(w, g)| {
                    faer::zip!(w, g).for_each(|faer::unzip!(w, g)| *w += lw * *g)
                });
            }
        }
    }
    for (l, g) in grads.biases.iter().enumerate() {
        let b = model.bias_mut(l);
        if steps.per_row[l] {
            for (i, (b, &v)) in b.iter_mut().zip(g).enumerate() {
                *b = steps.keep[l][i] * *b + steps.rate_b[l][i] * v;
            }
        } else {
            for (b, &v) in b.iter_mut().zip(g) {
                *b += lb * v;
            }
        }
    }
    for (l, e) in new_energies.into_iter().flatten().enumerate() {
        model.set_energy(l, e)?;
    }
    steps.set_sigmas(model)
}
