//! The chunked parallel loop behind every operation on a batch of chains:
//! a step, the fused step of learning, the refreshes of init and of a new
//! minibatch, and the resynchronisation after a parameter change.
//!
//! The batch is cut into fixed chunks of `NeuralConfig::chunk` samples
//! (columns); each chunk gets its own views of every matrix, its own
//! random streams and its scratch, and the chunks run in parallel. Each
//! sample draws from its own stream and the chunks are fixed, so a run is
//! a function of its seed and chunk size, bit for bit, whatever the number
//! of threads.

use faer::reborrow::{Reborrow, ReborrowMut};
use faer::{Mat, MatMut, MatRef};
use rayon::prelude::*;

use super::checks::{check_chains, check_chunk, stamp_step};
use super::state::{split_scratch, ChunkScratch};
use super::{Chains, Dynamics, NeuralConfig, Potential, SamplerState, StepInfo};
use crate::aprime::interneurons::refresh_all;
use crate::aprime::{exact_a_prime_into, quadrature, LayerAPrime};
use crate::elementwise::{check_finite, col, col_mut, sum_sq, zip_map2};
use crate::error::{HeeError, Result};
use crate::model::HeeModel;
use crate::rng::SampleStream;
use crate::scalar::Real;

/// The views of one chunk of samples (one column per sample).
pub(crate) struct Chunk<'a, T> {
    pub x: MatMut<'a, T>,
    pub eta: MatMut<'a, T>,
    pub a_prime: MatMut<'a, T>,
    pub eps: MatMut<'a, T>,
    pub aux: MatMut<'a, T>,
    pub s: ChunkScratch<'a, T>,
    pub rngs: &'a mut [SampleStream],
    /// The chunk's share of the step's diagnostics.
    pub partial: &'a mut f64,
    /// A per-sample matrix of the caller's (the learning step's presynaptic
    /// rates); no rows when none is given.
    pub pre: MatMut<'a, T>,
    /// Units held at their values (`SamplerState::clamp_units`).
    pub clamped: &'a [usize],
}

/// Runs `f` on every chunk of the batch of `chains`, in parallel, with the
/// A′ estimator of every layer resolved for `model`.
fn over_chains<T: Real>(
    cfg: &NeuralConfig,
    model: &HeeModel<T>,
    chains: &mut Chains<T>,
    pre: Option<MatMut<'_, T>>,
    f: impl Fn(&[LayerAPrime], Chunk<'_, T>) -> Result<()> + Sync + Send,
) -> Result<()> {
    let Chains {
        state,
        streams,
        workspace: ws,
    } = chains;
    cfg.a_prime.resolve_into(model, &mut ws.kinds)?;
    let kinds = &ws.kinds[..];
    let (n, b, c) = (model.total_size(), state.batch(), cfg.chunk);
    let mut none: [T; 0] = [];
    let pre = pre.unwrap_or_else(|| MatMut::from_column_major_slice_mut(&mut none, 0, b));
    let SamplerState {
        x,
        eta,
        a_prime,
        eps,
        aux,
        clamped,
        ..
    } = state;
    let clamped = &clamped[..];
    (
        x.as_mut().par_col_chunks_mut(c),
        eta.as_mut().par_col_chunks_mut(c),
        a_prime.as_mut().par_col_chunks_mut(c),
        eps.as_mut().par_col_chunks_mut(c),
        aux.as_mut().par_col_chunks_mut(c),
        ws.buf.as_mut().par_col_chunks_mut(c),
        streams.as_mut_slice().par_chunks_mut(c),
        ws.partial.par_iter_mut(),
        pre.par_col_chunks_mut(c),
    )
        .into_par_iter()
        .try_for_each(|(x, eta, a_prime, eps, aux, buf, rngs, partial, pre)| {
            let chunk = Chunk {
                x,
                eta,
                a_prime,
                eps,
                aux,
                s: split_scratch(buf, n),
                rngs,
                partial,
                pre,
                clamped,
            };
            f(kinds, chunk)
        })
}

/// One neuron step of `dynamics`, both halves in one pass over each chunk.
pub(crate) fn step<T: Real, D: Dynamics<T> + ?Sized>(
    dynamics: &D,
    model: &HeeModel<T>,
    chains: &mut Chains<T>,
) -> Result<StepInfo> {
    let cfg = dynamics.config();
    check_chains(model, cfg, chains)?;
    let step = chains.state.step + 1;
    over_chains(cfg, model, chains, None, |kinds, mut c| {
        *c.partial = move_chunk(dynamics, model, &mut c)?;
        refresh_chunk(cfg, model, kinds, c)
    })
    .map_err(|e| stamp_step(e, step, model, cfg))?;
    Ok(finish_step(&mut chains.state, &chains.workspace.partial))
}

/// First half of a step for one chunk: the drift from (x, η, A′), then the
/// kernel's move of x (and its auxiliary variable); clamped units keep
/// their values. Returns Σ|drift|² over the chunk's moving units.
fn move_chunk<T: Real, D: Dynamics<T> + ?Sized>(
    dynamics: &D,
    model: &HeeModel<T>,
    c: &mut Chunk<'_, T>,
) -> Result<f64> {
    let cfg = dynamics.config();
    let first_free = cfg.first_free();
    let n = model.total_size();
    let a_prime = match cfg.potential {
        Potential::Normalised => Some(c.a_prime.rb()),
        Potential::Unnormalised => None,
    };
    model.state_gradient_unchecked(
        c.x.rb(),
        c.eta.rb(),
        a_prime,
        first_free,
        c.s.diff.rb_mut(),
        c.s.tmp.rb_mut(),
        c.s.grad.rb_mut(),
    );
    // The drift is done with `tmp`: it keeps the clamped values meanwhile.
    for j in 0..c.x.ncols() {
        for &i in c.clamped {
            c.s.tmp[(i, j)] = c.x[(i, j)];
            c.s.grad[(i, j)] = T::zero();
        }
    }
    let o = model.offset(first_free);
    let partial = sum_sq(c.s.grad.rb().subrows(o, n - o));
    dynamics.update_chunk(model, c.x.rb_mut(), c.aux.rb_mut(), c.s.grad.rb(), c.rngs);
    for j in 0..c.x.ncols() {
        for &i in c.clamped {
            c.x[(i, j)] = c.s.tmp[(i, j)];
            c.aux[(i, j)] = T::zero();
        }
    }
    check_chunk(model, c.x.rb(), first_free)?;
    Ok(partial)
}

/// Second half of a step for one chunk: η(x) for the new x, then a refresh
/// of every layer's A′ estimator (the interneurons' K sub-steps); for the
/// unnormalised potential, η alone.
fn refresh_chunk<T: Real>(
    cfg: &NeuralConfig,
    model: &HeeModel<T>,
    kinds: &[LayerAPrime],
    c: Chunk<'_, T>,
) -> Result<()> {
    let (h_eps, k) = (T::of(cfg.h_eps()), cfg.substeps());
    let mut eta = c.eta;
    model.natural_params_unchecked(c.x.rb(), c.s.fx, eta.rb_mut());
    if cfg.potential == Potential::Unnormalised {
        return Ok(());
    }
    refresh_all(model, kinds, eta.rb(), c.eps, c.a_prime, h_eps, k, c.rngs)
}

/// Counts the step and returns its diagnostics from the chunks' partial sums.
fn finish_step<T: Real>(state: &mut SamplerState<T>, partial: &[f64]) -> StepInfo {
    state.step += 1;
    StepInfo {
        step: state.step,
        mean_sq_grad: partial.iter().sum::<f64>() / state.batch() as f64,
    }
}

/// A neuron step with a parameter update between its halves (the fused
/// inference-and-learning step of [`crate::learning::learning_step`]):
///
/// 1. for every chunk, from the state at the start of the step: the
///    presynaptic rates f(x_l) of every layer l ≥ 1 go to `pre` (x_l itself
///    when f is the identity), the prediction errors x_l − A′_l of every
///    layer are formed (the drift needs them anyway), and x moves by the
///    kernel under the current parameters;
/// 2. `update(model, pre, errors)` changes the model (whole batch, one
///    column per sample);
/// 3. the top layer's constant A′ follows its bias, then for every chunk
///    η(x) is computed under the new parameters and the A′ estimators are
///    refreshed.
///
/// So each weight matrix enters three products per step (the drift, the
/// update, η) and the state ends consistent with the new parameters.
pub(crate) fn split_step<T: Real, D: Dynamics<T> + ?Sized>(
    dynamics: &D,
    model: &mut HeeModel<T>,
    chains: &mut Chains<T>,
    pre: MatMut<'_, T>,
    update: impl FnOnce(&mut HeeModel<T>, MatRef<'_, T>, MatRef<'_, T>) -> Result<()>,
) -> Result<StepInfo> {
    let cfg = dynamics.config();
    check_chains(model, cfg, chains)?;
    if cfg.potential == Potential::Unnormalised {
        // The rule's prediction errors x − A′ are U's; Ẽ has no A′.
        return Err(HeeError::Unsupported(
            "the local rule learns the normalised HEE energy; the kernel runs on the unnormalised one (NeuralConfig::potential)".into(),
        ));
    }
    let step = chains.state.step + 1;
    let n = model.total_size();
    let m: &HeeModel<T> = model;
    let mut pre = pre;
    over_chains(cfg, m, chains, Some(pre.rb_mut()), |_, mut c| {
        if m.nonlinearity().is_identity() {
            let o = m.offset(1);
            c.pre
                .rb_mut()
                .subrows_mut(o, n - o)
                .copy_from(c.x.rb().subrows(o, n - o));
        } else {
            m.presynaptic(c.x.rb(), c.pre.rb_mut());
        }
        // The drift forms x_l − A′_l of layers 0…top−1 in `diff`; the rule
        // needs the top layer's too.
        let top = m.top();
        zip_map2(
            m.layer_of_mut(c.s.diff.rb_mut(), top),
            m.layer_of(c.x.rb(), top),
            m.layer_of(c.a_prime.rb(), top),
            |a, b| a - b,
        );
        *c.partial = move_chunk(dynamics, m, &mut c)?;
        Ok(())
    })
    .map_err(|e| stamp_step(e, step, model, cfg))?;
    update(model, pre.rb(), chains.workspace.buf.as_ref().subrows(n, n))?;
    fill_constant_a_prime(model, &mut chains.state)?;
    refresh(cfg, model, chains, step)?;
    Ok(finish_step(&mut chains.state, &chains.workspace.partial))
}

/// η(x) and a refresh of every A′ estimator, for the whole batch; errors
/// are stamped with `step`.
pub(crate) fn refresh<T: Real>(
    cfg: &NeuralConfig,
    model: &HeeModel<T>,
    chains: &mut Chains<T>,
    step: u64,
) -> Result<()> {
    over_chains(cfg, model, chains, None, |kinds, c| {
        refresh_chunk(cfg, model, kinds, c)
    })
    .map_err(|e| stamp_step(e, step, model, cfg))
}

/// The top layer's A′_L(b_L): η_L = b_L is the same for every sample and no
/// neuron reads it (only learning b_L does), so it is computed exactly once
/// per unit — closed form or quadrature — and broadcast to every sample.
pub(crate) fn fill_constant_a_prime<T: Real>(
    model: &HeeModel<T>,
    state: &mut SamplerState<T>,
) -> Result<()> {
    let top = model.top();
    let e = model.layer_energy(top);
    let mut rows = model.layer_of_mut(state.a_prime.as_mut(), top);
    for (i, &b) in model.bias(top).iter().enumerate() {
        let a = T::of(quadrature::moments(&e.unit(i), b.f64())?.mean);
        for j in 0..rows.ncols() {
            rows[(i, j)] = a;
        }
    }
    Ok(())
}

/// After the model's parameters changed (a learning update): recomputes
/// η(x), the exact A′ estimates (analytic and quadrature layers) and the top
/// layer's A′_L(b_L), so that the next step sees a state consistent with the
/// new parameters. Interneuron estimates are left as they are: the
/// populations track η continuously and catch up in the next step's
/// sub-steps.
pub fn resync_after_update<T: Real, D: Dynamics<T> + ?Sized>(
    dynamics: &D,
    model: &HeeModel<T>,
    chains: &mut Chains<T>,
) -> Result<()> {
    let cfg = dynamics.config();
    check_chains(model, cfg, chains)?;
    over_chains(cfg, model, chains, None, |kinds, mut c| {
        model.natural_params_unchecked(c.x.rb(), c.s.fx.rb_mut(), c.eta.rb_mut());
        for j in 0..c.eta.ncols() {
            let (e, a) = (col(c.eta.rb(), j), col_mut(c.a_prime.rb_mut(), j));
            for (l, &kind) in kinds.iter().enumerate() {
                let r = model.offset(l)..model.offset(l + 1);
                exact_a_prime_into(kind, model.layer_energy(l), &e[r.clone()], &mut a[r])?;
            }
        }
        Ok(())
    })?;
    fill_constant_a_prime(model, &mut chains.state)
}

/// Copies observations (one sample per row) into layer 0 of a stacked state.
pub(crate) fn set_observed<T: Real>(
    model: &HeeModel<T>,
    x: &mut Mat<T>,
    data: MatRef<'_, T>,
) -> Result<()> {
    let b = x.ncols();
    if data.nrows() != b || data.ncols() != model.size(0) {
        return Err(HeeError::dims(
            "data",
            format!("{b}x{}", model.size(0)),
            format!("{}x{}", data.nrows(), data.ncols()),
        ));
    }
    check_finite("data", data)?;
    model
        .layer_of_mut(x.as_mut(), 0)
        .copy_from(data.transpose());
    Ok(())
}

/// Replaces the observations of running chains (e.g. the next minibatch,
/// batch × size(0)) and refreshes η and the A′ estimates for them.
pub fn clamp_data<T: Real, D: Dynamics<T> + ?Sized>(
    dynamics: &D,
    model: &HeeModel<T>,
    chains: &mut Chains<T>,
    data: MatRef<'_, T>,
) -> Result<()> {
    check_chains(model, dynamics.config(), chains)?;
    set_observed(model, &mut chains.state.x, data)?;
    let step = chains.state.step;
    refresh(dynamics.config(), model, chains, step)
}

/// Like [`clamp_data`], but the chains also start from given latents
/// (batch × latent units, e.g. where each example's chain ended the last
/// time it was visited: persistent posterior chains per training example).
/// The kernel's auxiliary variable is zeroed, since it belonged to other
/// chains; η and the A′ estimates are refreshed.
pub fn clamp_data_at<T: Real, D: Dynamics<T> + ?Sized>(
    dynamics: &D,
    model: &HeeModel<T>,
    chains: &mut Chains<T>,
    data: MatRef<'_, T>,
    latents: MatRef<'_, T>,
) -> Result<()> {
    check_chains(model, dynamics.config(), chains)?;
    let o = model.offset(1);
    let (b, n) = (chains.state.x.ncols(), model.total_size() - o);
    if latents.nrows() != b || latents.ncols() != n {
        return Err(HeeError::dims(
            "latents",
            format!("{b}x{n}"),
            format!("{}x{}", latents.nrows(), latents.ncols()),
        ));
    }
    check_finite("latents", latents)?;
    chains
        .state
        .x
        .as_mut()
        .subrows_mut(o, n)
        .copy_from(latents.transpose());
    chains.state.aux.fill(T::zero());
    clamp_data(dynamics, model, chains, data)
}
