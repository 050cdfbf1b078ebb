//! The local learning rule (spec §5), run concurrently with inference.
//!
//! ΔW_l ∝ ⟨(x_l − ε̄_l) f(x_{l+1})ᵀ⟩, Δb_l ∝ ⟨x_l − ε̄_l⟩ and, optionally,
//! Δθ_l ∝ ⟨−∂φ_l/∂θ(x_l) + ∂φ_l/∂θ(ε_l)⟩ for the base-energy parameters.
//! Every quantity is present at the synapse at the same time: the neuron's
//! state, the interneurons' estimate of its predicted mean, and the
//! presynaptic rate. Averaged over the posterior this is ∇ log p(x₀)
//! (Fisher's identity), so no free-running negative phase is needed.

use faer::Mat;
use rayon::prelude::*;

use crate::aprime::{APrime, LayerAPrime};
use crate::dynamics::{
    check_step_sizes_for, clamp_data, split_step, Chains, Dynamics, SamplerState, StepInfo,
};
use crate::energy::{BaseEnergy, MAX_ENERGY_PARAMS};
use crate::error::{non_negative, HeeError, Result};
use crate::model::{EnergyReference, HeeModel, ParamGrads, WEIGHT_GRAD_BLOCK};
use crate::scalar::Real;

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

/// Buffers of the learning rule, allocated once per batch size (and model:
/// they include a second copy of the weights, see `learning_step`).
#[derive(Debug, Clone)]
pub struct LearningScratch<T> {
    fx: Mat<T>,
    diff: Mat<T>,
    /// The last gradients computed.
    pub grads: ParamGrads<T>,
    /// W_l + rate·ΔW_l, formed beside ΔW by the learning step and then
    /// swapped with W_l (so the update needs no pass of its own).
    next_weights: Vec<Mat<T>>,
}

impl<T: Real> LearningScratch<T> {
    /// Scratch for `batch` samples of `model`.
    pub fn new(model: &HeeModel<T>, batch: usize) -> Self {
        let n = model.total_size();
        LearningScratch {
            fx: Mat::zeros(n, batch),
            diff: Mat::zeros(n, batch),
            grads: ParamGrads::zeros_like(model),
            next_weights: (0..model.top())
                .map(|l| Mat::zeros(model.size(l), model.size(l + 1)))
                .collect(),
        }
    }
}

/// Ascent direction of the local rule from the current state (x and its A′
/// estimate), stored in `scratch.grads`.
pub fn local_gradients<T: Real>(
    model: &HeeModel<T>,
    state: &SamplerState<T>,
    a_prime: &APrime,
    learn_energy: bool,
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
    if learn_energy {
        energy_gradients(model, state, a_prime, &mut scratch.grads)?;
    }
    Ok(())
}

/// The energy-parameter slots of `grads` from the state: samples of each
/// conditional from the interneurons where they run, quadrature at η elsewhere.
fn energy_gradients<T: Real>(
    model: &HeeModel<T>,
    state: &SamplerState<T>,
    a_prime: &APrime,
    grads: &mut ParamGrads<T>,
) -> Result<()> {
    let kinds = a_prime.resolve(model)?;
    for l in 0..model.n_layers() {
        let reference = match kinds[l] {
            LayerAPrime::Interneurons => EnergyReference::Samples(state.eps.as_ref()),
            _ => EnergyReference::Exact(state.eta.as_ref()),
        };
        grads.energy[l] = model.energy_param_grads_unchecked(l, state.x.as_ref(), reference)?;
    }
    Ok(())
}

/// The base energies after one SGD step on their parameters, validated (an
/// error names the layer and parameter that would leave its range).
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
            for i in 0..e.n_params().min(MAX_ENERGY_PARAMS) {
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

/// One SGD step θ ← θ + rate·g on every parameter. Energy parameters that
/// would leave their valid range are rejected with an error (the model is
/// unchanged in that case); non-finite or wrongly shaped gradients are
/// rejected too.
pub fn apply_gradients<T: Real>(
    model: &mut HeeModel<T>,
    grads: &ParamGrads<T>,
    rates: &LocalLearning,
) -> Result<()> {
    apply(model, grads, rates, None)
}

/// [`apply_gradients`]; `next_weights`, when given, holds W + rate·ΔW for
/// a ΔW the caller has already checked entry by entry (the learning step
/// forms both block by block), and is swapped in instead of a pass that
/// adds rate·ΔW to W.
fn apply<T: Real>(
    model: &mut HeeModel<T>,
    grads: &ParamGrads<T>,
    rates: &LocalLearning,
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
            .all(|(l, b)| b.len() == model.size(l));
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
                .all(|c| crate::model::all_finite(c));
        if !finite {
            crate::model::check_finite(&format!("grad W[{l}]"), w.as_ref())?;
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
        // Already W + rate·ΔW, element by element as below.
        model.swap_weights(next);
    } else {
        for (l, g) in grads.weights.iter().enumerate() {
            // W += rate·G in place: vectorised passes over blocks of columns,
            // shared by the threads (element-wise, so the same bits whatever
            // their number).
            model
                .weight_mut(l)
                .par_col_chunks_mut(WEIGHT_GRAD_BLOCK)
                .zip(g.as_ref().par_col_chunks(WEIGHT_GRAD_BLOCK))
                .for_each(|(w, g)| faer::zip!(w, g).for_each(|faer::unzip!(w, g)| *w += lw * *g));
        }
    }
    for (l, g) in grads.biases.iter().enumerate() {
        for (b, &v) in model.bias_mut(l).iter_mut().zip(g) {
            *b += lb * v;
        }
    }
    for (l, e) in new_energies.into_iter().flatten().enumerate() {
        model.set_energy(l, e)?;
    }
    Ok(())
}

/// One step of inference and learning together (spec §5).
///
/// The local rule reads the state at the start of the step — x, the
/// presynaptic rates f(x) and the prediction errors x − A′, all consistent
/// with the current parameters — while the neurons take their step under
/// those same parameters; the update is then applied, and η(x) and the A′
/// estimators of the new x are computed under the new parameters. So the
/// state always ends consistent with the model (the drift never reads an η
/// made with older weights), and each weight matrix enters exactly three
/// products: the drift Wᵀ(x − A′), the update ⟨(x − A′) f(x)ᵀ⟩ and η = W f(x) + b.
/// Over a run this is the same sequence as "step, then learn from the new
/// state", shifted by one step. Returns the neuron step's diagnostics.
///
/// W + rate·ΔW is formed block by block beside ΔW (in the scratch's second
/// copy of the weights) and swapped in once every entry of ΔW and Δb is
/// known to be finite; otherwise the update is refused with
/// [`HeeError::NonFiniteInput`] naming the gradient, and W and b are left
/// as they were. `scratch.grads` holds the ΔW, Δb of the step.
///
/// When energy parameters learn, the proposed update is checked against the
/// kernel's step sizes before anything moves (see [`train_minibatch`]).
pub fn learning_step<T: Real, D: Dynamics<T> + ?Sized>(
    model: &mut HeeModel<T>,
    dynamics: &D,
    chains: &mut Chains<T>,
    scratch: &mut LearningScratch<T>,
    rates: &LocalLearning,
) -> Result<StepInfo> {
    check_scratch(model, chains, scratch)?;
    let cfg = dynamics.config();
    if rates.lr_energy > 0.0 {
        // From the state at the start of the step, like W and b.
        energy_gradients(model, &chains.state, &cfg.a_prime, &mut scratch.grads)?;
        check_step_sizes_for(model, proposed_energies(model, &scratch.grads, rates)?, cfg)?;
    }
    let LearningScratch {
        fx,
        grads,
        next_weights,
        ..
    } = scratch;
    split_step(dynamics, model, chains, fx.as_mut(), |model, pre, diff| {
        // The whole batch at once, split over the threads in fixed blocks
        // of ΔW's columns (the result does not depend on their number),
        // each finite block also forming its block of W + rate·ΔW.
        let lw = T::of(rates.lr_weights);
        let finite = model.weight_grads_from(
            diff,
            pre,
            grads,
            faer::Par::rayon(0),
            Some((lw, &mut next_weights[..])),
        );
        apply(model, grads, rates, finite.then_some(&mut next_weights[..]))
    })
}

fn check_scratch<T: Real>(
    model: &HeeModel<T>,
    chains: &Chains<T>,
    scratch: &LearningScratch<T>,
) -> Result<()> {
    if scratch.fx.ncols() != chains.batch() || scratch.fx.nrows() != model.total_size() {
        return Err(HeeError::DimensionMismatch {
            field: "learning scratch".into(),
            expected: format!("{} samples of {} units", chains.batch(), model.total_size()),
            got: format!(
                "{} samples of {} units",
                scratch.fx.ncols(),
                scratch.fx.nrows()
            ),
        });
    }
    // Checked without allocating (every step); the shapes are listed only
    // for the error.
    let fits = scratch.next_weights.len() == model.top()
        && scratch
            .next_weights
            .iter()
            .enumerate()
            .all(|(l, w)| (w.nrows(), w.ncols()) == (model.size(l), model.size(l + 1)));
    if !fits {
        let want: Vec<_> = (0..model.top())
            .map(|l| (model.size(l), model.size(l + 1)))
            .collect();
        let got: Vec<_> = scratch
            .next_weights
            .iter()
            .map(|w| (w.nrows(), w.ncols()))
            .collect();
        return Err(HeeError::DimensionMismatch {
            field: "learning scratch".into(),
            expected: format!("weights shaped {want:?} (LearningScratch::new for this model)"),
            got: format!("{got:?}"),
        });
    }
    Ok(())
}

/// How one minibatch is processed during training.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MinibatchSchedule {
    /// Inference steps before the rule is switched on.
    pub warmup_steps: usize,
    /// Steps during which inference and learning run together.
    pub learning_steps: usize,
}

/// Diagnostics of one minibatch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MinibatchInfo {
    /// Mean |∂U/∂x|² of the last step.
    pub mean_sq_grad: f64,
    /// Squared norm of the last weight update direction.
    pub weight_grad_sq: f64,
}

/// Clamps `data` (one observation per row), runs `warmup_steps` of inference,
/// then `learning_steps` steps of inference and learning together, each with
/// one application of the local rule ([`learning_step`]). The latent state
/// carries over from the previous minibatch, so consecutive minibatches
/// continue the same chains.
///
/// When energy parameters learn, every proposed update is checked against
/// the kernel's step sizes first ([`check_step_sizes_for`]): an update that
/// would make a layer too stiff for Δt or for the interneurons' sub-step
/// stops training with an error naming `dt` or `substeps`, and the model is
/// left as it was before that update.
#[allow(clippy::too_many_arguments)]
pub fn train_minibatch<T: Real, D: Dynamics<T> + ?Sized>(
    model: &mut HeeModel<T>,
    dynamics: &D,
    chains: &mut Chains<T>,
    scratch: &mut LearningScratch<T>,
    data: faer::MatRef<'_, T>,
    schedule: &MinibatchSchedule,
    rates: &LocalLearning,
) -> Result<MinibatchInfo> {
    rates.validate()?;
    check_scratch(model, chains, scratch)?;
    clamp_data(dynamics, model, chains, data)?;
    let mut info = MinibatchInfo {
        mean_sq_grad: 0.0,
        weight_grad_sq: 0.0,
    };
    for _ in 0..schedule.warmup_steps {
        info.mean_sq_grad = dynamics.step(model, chains)?.mean_sq_grad;
    }
    for _ in 0..schedule.learning_steps {
        info.mean_sq_grad = learning_step(model, dynamics, chains, scratch, rates)?.mean_sq_grad;
    }
    info.weight_grad_sq = scratch
        .grads
        .weights
        .iter()
        .map(|w| {
            let mut s = 0.0;
            for j in 0..w.ncols() {
                for i in 0..w.nrows() {
                    s += w[(i, j)].f64().powi(2);
                }
            }
            s
        })
        .sum();
    Ok(info)
}
