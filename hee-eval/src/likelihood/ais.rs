//! Annealed importance sampling along π_β(z) ∝ p(z) p(x₀ | x₁)^β, β from 0
//! (the prior, drawn exactly by ancestral sampling) to 1 (the posterior).
//!
//! With U split by layer (spec §1), −log π_β = V_β = Σ_{l≥1} U_l + β U₀ up
//! to a constant, where U₀ = −log p(x₀ | x₁). Its gradient in the latents is
//! the model's ∂U/∂x_k with layer 0's prediction error x₀ − A′₀(η₀) scaled
//! by β, i.e. ∂U/∂x with A′₀ replaced by (1−β)x₀ + βA′₀.
//!
//! Transitions are HMC (unit mass, `leapfrog` steps, Metropolis correction),
//! so each leaves its π_β exactly invariant. Step sizes per temperature
//! come from a pilot run on other random streams, adapted towards the
//! target acceptance; the estimating runs use them fixed, so adaptation
//! does not touch their invariance.
//!
//! Forward weight: log w = Σ_t (β_t − β_{t−1}) log p(x₀ | x₁^{(t−1)}), the
//! state after the transition at β_{t−1}. Reverse (from an exact posterior
//! sample, t = T … 1): log v = −Σ_t (β_t − β_{t−1}) log p(x₀ | x₁^{(t)}),
//! then the transition at β_{t−1}; E[v] = 1/p(x₀).

use faer::{Mat, MatRef};
use hee_core::model::log_joint::LogJoint;
use hee_core::rng::SampleStream;
use hee_core::{HeeError, HeeModel, Purpose, Real, Result};
use rand::Rng;
use rand_distr::StandardNormal;
use rayon::prelude::*;

use super::{
    block_seed, check_inputs, log_likelihood_term, prior_states, summarise, Estimate, IMAGE_BLOCK,
};

/// The path of temperatures β_0 = 0 < … < β_T = 1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Schedule {
    /// β_t = t/T.
    Linear,
    /// Sigmoidal (Grosse et al. 2015): β_t ∝ s(δ(2t/T − 1)) − s(−δ), s the
    /// logistic, rescaled to [0, 1]; dense near both ends.
    Sigmoid { delta: f64 },
}

/// Settings of an AIS run.
#[derive(Debug, Clone, PartialEq)]
pub struct AisConfig {
    /// Intermediate distributions T (one transition each).
    pub steps: usize,
    /// Chains per image, K.
    pub chains: usize,
    /// Independent runs the chains are split into (K is a multiple of it).
    pub runs: usize,
    /// Leapfrog steps per HMC transition.
    pub leapfrog: usize,
    pub schedule: Schedule,
    /// The acceptance rate the pilot adapts the step sizes towards.
    pub target_acceptance: f64,
    /// Images (the first ones) the pilot runs on, one chain each.
    pub pilot_images: usize,
    pub seed: u64,
}

impl Default for AisConfig {
    fn default() -> Self {
        AisConfig {
            steps: 500,
            chains: 16,
            runs: 4,
            leapfrog: 5,
            schedule: Schedule::Sigmoid { delta: 4.0 },
            target_acceptance: 0.65,
            pilot_images: 16,
            seed: 20231012,
        }
    }
}

impl AisConfig {
    fn validate(&self) -> Result<()> {
        if self.steps == 0 {
            return Err(HeeError::param("ais.steps", 0.0, "must be >= 1"));
        }
        if self.leapfrog == 0 {
            return Err(HeeError::param("ais.leapfrog", 0.0, "must be >= 1"));
        }
        if !(self.target_acceptance > 0.0 && self.target_acceptance < 1.0) {
            return Err(HeeError::param(
                "ais.target_acceptance",
                self.target_acceptance,
                "must be in (0, 1)",
            ));
        }
        if let Schedule::Sigmoid { delta } = self.schedule {
            if !(delta.is_finite() && delta > 0.0) {
                return Err(HeeError::param("ais.schedule.delta", delta, "must be > 0"));
            }
        }
        Ok(())
    }
}

/// β_0 … β_T of `schedule`.
pub fn betas(schedule: Schedule, steps: usize) -> Vec<f64> {
    let t = steps as f64;
    match schedule {
        Schedule::Linear => (0..=steps).map(|i| i as f64 / t).collect(),
        Schedule::Sigmoid { delta } => {
            let s = |u: f64| 1.0 / (1.0 + (-delta * (2.0 * u - 1.0)).exp());
            let (lo, hi) = (s(0.0), s(1.0));
            (0..=steps)
                .map(|i| (s(i as f64 / t) - lo) / (hi - lo))
                .collect()
        }
    }
}

/// A state of the chains with what the transitions need of it.
struct Point<T> {
    x: Mat<T>,
    /// V_β of every row.
    v: Vec<f64>,
    /// log p(x₀ | x₁) of every row.
    ll: Vec<f64>,
    /// ∂V_β/∂x of every row (all columns; layer 0's are zero).
    grad: Mat<T>,
}

fn evaluate<T: Real>(model: &HeeModel<T>, lj: &LogJoint, x: Mat<T>, beta: f64) -> Result<Point<T>> {
    let eta = model.natural_params(x.as_ref())?;
    let terms = lj.layer_terms(model, x.as_ref(), eta.as_ref())?;
    let mut ap = lj.a_prime(model, eta.as_ref())?;
    let (b, bt) = (beta, T::of(beta));
    for j in 0..x.nrows() {
        for c in 0..model.size(0) {
            ap[(j, c)] = T::of(1.0 - b) * x[(j, c)] + bt * ap[(j, c)];
        }
    }
    let grad = model.state_gradient(x.as_ref(), eta.as_ref(), ap.as_ref(), 1)?;
    let n = model.n_layers();
    let v = (0..x.nrows())
        .map(|j| (1..n).map(|l| terms[(j, l)]).sum::<f64>() + b * terms[(j, 0)])
        .collect();
    let ll = (0..x.nrows()).map(|j| -terms[(j, 0)]).collect();
    Ok(Point { x, v, ll, grad })
}

/// One HMC transition of every row at temperature β with step `eps`;
/// returns the new point and the number of accepted rows.
fn hmc<T: Real>(
    model: &HeeModel<T>,
    lj: &LogJoint,
    start: Point<T>,
    beta: f64,
    eps: f64,
    leapfrog: usize,
    streams: &mut [SampleStream],
) -> Result<(Point<T>, usize)> {
    let (rows, n0, total) = (start.x.nrows(), model.size(0), model.total_size());
    let d = total - n0;
    let mut p = Mat::<f64>::zeros(rows, d);
    for (j, rng) in streams.iter_mut().enumerate() {
        for c in 0..d {
            p[(j, c)] = rng.sample(StandardNormal);
        }
    }
    let kinetic = |p: &Mat<f64>, j: usize| (0..d).map(|c| p[(j, c)] * p[(j, c)]).sum::<f64>() / 2.0;
    let h0: Vec<f64> = (0..rows).map(|j| start.v[j] + kinetic(&p, j)).collect();
    let mut x = start.x.clone();
    let mut grad = start.grad.clone();
    let mut end = None;
    for s in 0..leapfrog {
        for j in 0..rows {
            for c in 0..d {
                let half = if s == 0 { 0.5 } else { 1.0 };
                p[(j, c)] -= half * eps * grad[(j, n0 + c)].f64();
                x[(j, n0 + c)] = T::of(x[(j, n0 + c)].f64() + eps * p[(j, c)]);
            }
        }
        let pt = evaluate(model, lj, x.clone(), beta)?;
        grad = pt.grad.clone();
        end = Some(pt);
    }
    let end = end.ok_or_else(|| HeeError::param("ais.leapfrog", 0.0, "must be >= 1"))?;
    for j in 0..rows {
        for c in 0..d {
            p[(j, c)] -= 0.5 * eps * grad[(j, n0 + c)].f64();
        }
    }
    let mut out = start;
    let mut accepted = 0;
    for (j, rng) in streams.iter_mut().enumerate() {
        let h1 = end.v[j] + kinetic(&p, j);
        let u: f64 = rng.random();
        // A non-finite proposal (a divergent trajectory) is rejected.
        if h1.is_finite() && u.ln() < h0[j] - h1 {
            accepted += 1;
            for c in n0..total {
                out.x[(j, c)] = end.x[(j, c)];
                out.grad[(j, c)] = end.grad[(j, c)];
            }
            out.v[j] = end.v[j];
            out.ll[j] = end.ll[j];
        }
    }
    Ok((out, accepted))
}

/// Streams of the transitions of block `b`: one per row.
fn streams(seed: u64, rows: usize) -> Vec<SampleStream> {
    let key = Purpose::Evaluation.seed(seed);
    (0..rows)
        .map(|j| SampleStream::new(key, j as u64))
        .collect()
}

/// Step sizes per temperature (index t: the transition at β_t), adapted on
/// the first images, one chain each, on streams of their own.
fn pilot_steps<T: Real>(
    model: &HeeModel<T>,
    lj: &LogJoint,
    x0: MatRef<'_, T>,
    cfg: &AisConfig,
    betas: &[f64],
) -> Result<Vec<f64>> {
    let pilot_seed = block_seed(cfg.seed, usize::MAX / 2);
    let k = cfg.pilot_images.clamp(1, x0.nrows());
    let x = prior_states(model, x0.subrows(0, k), 1, pilot_seed)?;
    let mut rngs = streams(pilot_seed, k);
    let mut pt = evaluate(model, lj, x, betas[0])?;
    // A start of the order of the prior's scale, shrunk as β sharpens the
    // posterior; the adaptation moves it by at most a factor e^0.5 a step.
    let mut eps = 0.5 / (cfg.leapfrog as f64).sqrt();
    let mut out = vec![0.0; betas.len()];
    for (t, &beta) in betas.iter().enumerate().skip(1) {
        pt = evaluate(model, lj, pt.x, beta)?;
        let (next, acc) = hmc(model, lj, pt, beta, eps, cfg.leapfrog, &mut rngs)?;
        pt = next;
        out[t] = eps;
        let rate = acc as f64 / k as f64;
        eps *= (rate - cfg.target_acceptance).clamp(-0.5, 0.5).exp();
    }
    Ok(out)
}

/// What one direction of AIS returns per row.
struct Sweep {
    log_w: Vec<f64>,
    accepted: usize,
    transitions: usize,
}

/// Runs one block forward (from `x`, prior draws) or in reverse (from `x`,
/// exact posterior draws).
#[allow(clippy::too_many_arguments)]
fn sweep<T: Real>(
    model: &HeeModel<T>,
    lj: &LogJoint,
    x: Mat<T>,
    betas: &[f64],
    eps: &[f64],
    leapfrog: usize,
    seed: u64,
    reverse: bool,
) -> Result<Sweep> {
    let rows = x.nrows();
    let mut rngs = streams(seed, rows);
    let mut log_w = vec![0.0; rows];
    let (mut accepted, mut transitions) = (0, 0);
    let t_max = betas.len() - 1;
    let mut pt = evaluate(model, lj, x, if reverse { 1.0 } else { 0.0 })?;
    for i in 1..=t_max {
        // Forward: weight at β_{t−1}'s state, then the transition at β_t.
        // Reverse: t = T+1−i; weight at β_t's state, then the transition at β_{t−1}.
        let (t_from, t_to) = if reverse {
            (t_max + 1 - i, t_max - i)
        } else {
            (i - 1, i)
        };
        let dbeta = betas[t_to] - betas[t_from];
        for (w, ll) in log_w.iter_mut().zip(&pt.ll) {
            *w += dbeta * ll;
        }
        if !reverse || t_to > 0 {
            let beta = betas[t_to];
            pt = evaluate(model, lj, pt.x, beta)?;
            let (next, acc) = hmc(model, lj, pt, beta, eps[t_to], leapfrog, &mut rngs)?;
            pt = next;
            accepted += acc;
            transitions += rows;
        }
    }
    Ok(Sweep {
        log_w,
        accepted,
        transitions,
    })
}

fn run<T: Real>(
    model: &HeeModel<T>,
    lj: &LogJoint,
    x0: MatRef<'_, T>,
    cfg: &AisConfig,
    exact: Option<MatRef<'_, T>>,
) -> Result<Estimate> {
    cfg.validate()?;
    check_inputs(model, x0, cfg.chains, cfg.runs)?;
    let betas = betas(cfg.schedule, cfg.steps);
    let eps = pilot_steps(model, lj, x0, cfg, &betas)?;
    let starts: Vec<usize> = (0..x0.nrows()).step_by(IMAGE_BLOCK).collect();
    let sweeps: Vec<Sweep> = starts
        .par_iter()
        .enumerate()
        .map(|(b, &start)| {
            let len = IMAGE_BLOCK.min(x0.nrows() - start);
            let seed = block_seed(cfg.seed, b);
            let x = match exact {
                None => prior_states(model, x0.subrows(start, len), cfg.chains, seed)?,
                Some(z) => repeat_rows(z.subrows(start, len), cfg.chains),
            };
            sweep(
                model,
                lj,
                x,
                &betas,
                &eps,
                cfg.leapfrog,
                seed,
                exact.is_some(),
            )
        })
        .collect::<Result<_>>()?;
    let mut log_w = Vec::with_capacity(x0.nrows() * cfg.chains);
    let (mut acc, mut tr) = (0, 0);
    for s in sweeps {
        log_w.extend(s.log_w);
        acc += s.accepted;
        tr += s.transitions;
    }
    let acceptance = acc as f64 / tr.max(1) as f64;
    if exact.is_some() {
        // The reverse estimate of log p is −log mean(v).
        let mut e = summarise(&log_w, cfg.chains, cfg.runs, acceptance);
        for v in e.per_image.iter_mut().chain(e.run_means.iter_mut()) {
            *v = -*v;
        }
        return Ok(e);
    }
    Ok(summarise(&log_w, cfg.chains, cfg.runs, acceptance))
}

fn repeat_rows<T: Real>(z: MatRef<'_, T>, k: usize) -> Mat<T> {
    Mat::from_fn(z.nrows() * k, z.ncols(), |r, c| z[(r / k, c)])
}

/// Forward AIS: a stochastic lower bound on log p(x₀) of every row of `x0`
/// (batch × size(0)).
pub fn forward<T: Real>(
    model: &HeeModel<T>,
    lj: &LogJoint,
    x0: MatRef<'_, T>,
    cfg: &AisConfig,
) -> Result<Estimate> {
    run(model, lj, x0, cfg, None)
}

/// Reverse AIS from exact posterior samples: `joint` holds full states
/// (batch × total units) drawn from the model's joint, x₀ in its first
/// columns and the latents that generated it in the rest. A stochastic
/// upper bound on log p(x₀) of every row.
pub fn reverse<T: Real>(
    model: &HeeModel<T>,
    lj: &LogJoint,
    joint: MatRef<'_, T>,
    cfg: &AisConfig,
) -> Result<Estimate> {
    if joint.ncols() != model.total_size() {
        return Err(HeeError::dims(
            "joint states",
            model.total_size(),
            joint.ncols(),
        ));
    }
    run(model, lj, joint.subcols(0, model.size(0)), cfg, Some(joint))
}

/// log p(x₀ | x₁) of every row of full states `x` (batch × total units).
pub fn log_likelihood_of<T: Real>(
    model: &HeeModel<T>,
    lj: &LogJoint,
    x: MatRef<'_, T>,
) -> Result<Vec<f64>> {
    log_likelihood_term(model, lj, x)
}
