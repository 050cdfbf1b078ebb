//! One step of inference and learning together (spec §5): the neurons move
//! and the rule is applied in the same pass over the batch.

use faer::Mat;

use super::dispersion::RowSteps;
use super::grads::ParamGrads;
use super::update::{apply, energy_gradients, proposed_energies};
use super::LocalLearning;
use crate::dynamics::checks::check_planned_steps;
use crate::dynamics::{check_step_sizes_for, split_step, Chains, Dynamics, StepInfo};
use crate::error::{HeeError, Result};
use crate::model::HeeModel;
use crate::scalar::Real;

/// Buffers of the learning rule, allocated once per batch size (and model:
/// they include a second copy of the weights, see `learning_step`).
#[derive(Debug, Clone)]
pub struct LearningScratch<T> {
    pub(crate) fx: Mat<T>,
    pub(crate) diff: Mat<T>,
    /// The last gradients computed.
    pub grads: ParamGrads<T>,
    /// W_l + rate·ΔW_l, formed beside ΔW by the learning step and then
    /// swapped with W_l (so the update needs no pass of its own).
    next_weights: Vec<Mat<T>>,
    /// The plan of the step: new σ, and rows stepped in mean coordinates.
    steps: RowSteps<T>,
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
            steps: RowSteps::new(model),
        }
    }
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
    let learn_energy = rates.lr_energy > 0.0 || rates.sigma.active();
    if learn_energy {
        // From the state at the start of the step, like W and b (the
        // workspace's list of estimators: no allocation per step).
        let kinds = &mut chains.workspace.kinds;
        cfg.a_prime.resolve_into(model, kinds)?;
        energy_gradients(model, &chains.state, rates, kinds, &mut scratch.grads)?;
    }
    scratch.steps.plan(model, &scratch.grads, rates)?;
    if rates.lr_energy > 0.0 {
        let energies = proposed_energies(model, &scratch.grads, rates)?;
        let steps = &scratch.steps;
        let planned = energies
            .into_iter()
            .enumerate()
            .map(|(l, e)| e.with_sigma(steps.smallest(l)));
        check_step_sizes_for(model, planned, cfg)?;
    } else if rates.sigma.active() {
        let steps = &scratch.steps;
        let planned = (0..model.n_layers()).map(|l| model.energy(l).with_sigma(steps.smallest(l)));
        check_planned_steps(model, planned, cfg, &mut chains.workspace.kinds)?;
    }
    let LearningScratch {
        fx,
        grads,
        next_weights,
        steps,
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
            Some((lw, &*steps, &mut next_weights[..])),
        );
        apply(
            model,
            grads,
            rates,
            steps,
            finite.then_some(&mut next_weights[..]),
        )
    })
}

pub(crate) fn check_scratch<T: Real>(
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
