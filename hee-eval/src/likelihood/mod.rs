//! Estimators of the marginal log-likelihood log p(x₀) of an HEE model.
//!
//! The joint p(x₀, z) = exp(−U) is known exactly (every layer normalises
//! itself, spec §1), so log p(x₀) = log ∫ p(x₀ | x₁) p(z) dz, z = (x₁ … x_L),
//! can be estimated as for a VAE or any deep latent-variable model:
//!
//! * [`prior_importance`]: importance sampling with the prior as proposal
//!   (ancestral draws of z). An unbiased estimate of p(x₀), so its log is a
//!   stochastic lower bound; poor when the posterior is far from the prior.
//! * [`ais::forward`]: annealed importance sampling (Neal 2001) from the
//!   prior to the posterior along π_β(z) ∝ p(z) p(x₀ | x₁)^β, with HMC
//!   transitions that leave each π_β exactly invariant. Also unbiased for
//!   p(x₀): a stochastic lower bound, tight when the chain follows π_β.
//! * [`ais::reverse`]: the same path run backwards from an exact posterior
//!   sample, which exists for data simulated from the model (the latents
//!   that generated x₀): an unbiased estimate of 1/p(x₀), so a stochastic
//!   upper bound. Forward and reverse on simulated data bracket log p(x₀)
//!   (bidirectional Monte Carlo, Grosse et al. 2015); their gap bounds the
//!   forward estimator's error on data like it.
//! * [`grid`]: brute-force quadrature over one or two latent units, the
//!   reference for small non-gaussian models.
//!
//! Each image gets K chains split into R independent runs; its estimate
//! pools all K weights (log of their mean). [`Estimate`] reports the mean
//! over images with two standard errors: over images (what a different test
//! set would change) and over the R runs (the Monte Carlo error of the
//! estimator on this test set), and the effective sample size of the
//! weights, (Σw)²/Σw², per image.

pub mod ais;
pub mod grbm;
pub mod grid;

use faer::{Mat, MatRef};
use hee_core::generate::ancestral;
use hee_core::model::log_joint::LogJoint;
use hee_core::{HeeError, HeeModel, Real, Result};

/// Images processed together; a fixed constant, so results do not depend
/// on it (each block's streams are keyed by its index).
pub const IMAGE_BLOCK: usize = 64;

/// One estimator's answer for a set of images.
#[derive(Debug, Clone)]
pub struct Estimate {
    /// log p̂(x₀) of every image, all chains pooled (nats).
    pub per_image: Vec<f64>,
    /// Effective sample size of every image's K weights.
    pub ess: Vec<f64>,
    /// The mean over images of each independent run's estimates.
    pub run_means: Vec<f64>,
    /// Mean acceptance rate of the transitions (NaN without transitions).
    pub acceptance: f64,
}

impl Estimate {
    /// Mean log p̂(x₀) over images (nats per image).
    pub fn mean(&self) -> f64 {
        mean(&self.per_image)
    }

    /// Standard error of [`mean`](Self::mean) over images.
    pub fn se_images(&self) -> f64 {
        se(&self.per_image)
    }

    /// Standard error over the independent runs (NaN for one run).
    pub fn se_runs(&self) -> f64 {
        se(&self.run_means)
    }

    /// Mean effective sample size per image.
    pub fn mean_ess(&self) -> f64 {
        mean(&self.ess)
    }

    /// Bits per dimension of the mean, for `d`-dimensional 8-bit data
    /// scaled to [0, 1] and dequantised uniformly: −log p/(d ln 2) + 8 (the
    /// 8 bits are the log-Jacobian of the scaling by 1/256).
    pub fn bits_per_dim(&self, d: usize) -> f64 {
        -self.mean() / (d as f64 * std::f64::consts::LN_2) + 8.0
    }
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

fn se(v: &[f64]) -> f64 {
    let n = v.len() as f64;
    if v.len() < 2 {
        return f64::NAN;
    }
    let m = mean(v);
    (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0) / n).sqrt()
}

/// log(mean(exp(w))), stably.
pub fn log_mean_exp(w: &[f64]) -> f64 {
    let m = w.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    if !m.is_finite() {
        return m;
    }
    m + (w.iter().map(|v| (v - m).exp()).sum::<f64>() / w.len() as f64).ln()
}

/// (Σw)²/Σw² of weights given by their logs.
pub fn effective_sample_size(w: &[f64]) -> f64 {
    let m = w.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let (s, s2) = w.iter().fold((0.0, 0.0), |(s, s2), v| {
        let e = (v - m).exp();
        (s + e, s2 + e * e)
    });
    s * s / s2
}

/// Gathers per-row log-weights (row i·K + k: image i, chain k) into an
/// [`Estimate`] with `runs` independent runs of K/runs chains each.
pub(crate) fn summarise(log_w: &[f64], chains: usize, runs: usize, acceptance: f64) -> Estimate {
    let n = log_w.len() / chains;
    let per = chains / runs;
    let mut run_sums = vec![0.0; runs];
    let mut per_image = Vec::with_capacity(n);
    let mut ess = Vec::with_capacity(n);
    for i in 0..n {
        let w = &log_w[i * chains..(i + 1) * chains];
        per_image.push(log_mean_exp(w));
        ess.push(effective_sample_size(w));
        for (r, s) in run_sums.iter_mut().enumerate() {
            *s += log_mean_exp(&w[r * per..(r + 1) * per]);
        }
    }
    Estimate {
        per_image,
        ess,
        run_means: run_sums.into_iter().map(|s| s / n as f64).collect(),
        acceptance,
    }
}

/// Checks the images against the model and the chain settings.
pub(crate) fn check_inputs<T: Real>(
    model: &HeeModel<T>,
    x0: MatRef<'_, T>,
    chains: usize,
    runs: usize,
) -> Result<()> {
    if x0.ncols() != model.size(0) {
        return Err(HeeError::dims("images", model.size(0), x0.ncols()));
    }
    if x0.nrows() == 0 {
        return Err(HeeError::dims("images", ">= 1 row", 0));
    }
    if chains == 0 || runs == 0 || !chains.is_multiple_of(runs) {
        return Err(HeeError::param(
            "chains",
            chains as f64,
            "must be a positive multiple of runs",
        ));
    }
    if let Some((r, c)) = (0..x0.nrows())
        .flat_map(|r| (0..x0.ncols()).map(move |c| (r, c)))
        .find(|&(r, c)| !x0[(r, c)].f64().is_finite())
    {
        return Err(HeeError::NonFiniteInput {
            field: "images".into(),
            row: r,
            col: c,
            value: x0[(r, c)].f64(),
        });
    }
    Ok(())
}

/// States for `chains` chains per image of `x0` (rows i·K + k): x₀ the
/// image, the latents an ancestral draw from the prior with streams of
/// `seed`.
pub(crate) fn prior_states<T: Real>(
    model: &HeeModel<T>,
    x0: MatRef<'_, T>,
    chains: usize,
    seed: u64,
) -> Result<Mat<T>> {
    let rows = x0.nrows() * chains;
    let mut x = ancestral(model, rows, seed)?.x;
    let n0 = model.size(0);
    for r in 0..rows {
        for c in 0..n0 {
            x[(r, c)] = x0[(r / chains, c)];
        }
    }
    Ok(x)
}

/// log p(x₀ | x₁) of every row of `x`.
pub(crate) fn log_likelihood_term<T: Real>(
    model: &HeeModel<T>,
    lj: &LogJoint,
    x: MatRef<'_, T>,
) -> Result<Vec<f64>> {
    let eta = model.natural_params(x)?;
    let terms = lj.layer_terms(model, x, eta.as_ref())?;
    Ok((0..x.nrows()).map(|j| -terms[(j, 0)]).collect())
}

/// The seed of image block `b` for a call seeded by `seed`.
pub(crate) fn block_seed(seed: u64, b: usize) -> u64 {
    seed ^ (0x9e37_79b9_7f4a_7c15u64.wrapping_mul(b as u64 + 1))
}

/// Importance sampling with the prior as proposal: `chains` ancestral draws
/// of the latents per image, split into `runs` independent runs; log p̂ is
/// the log of the mean of p(x₀ | x₁) over the draws.
pub fn prior_importance<T: Real>(
    model: &HeeModel<T>,
    lj: &LogJoint,
    x0: MatRef<'_, T>,
    chains: usize,
    runs: usize,
    seed: u64,
) -> Result<Estimate> {
    check_inputs(model, x0, chains, runs)?;
    let mut log_w = Vec::with_capacity(x0.nrows() * chains);
    for (b, start) in (0..x0.nrows()).step_by(IMAGE_BLOCK).enumerate() {
        let block = x0.subrows(start, IMAGE_BLOCK.min(x0.nrows() - start));
        let x = prior_states(model, block, chains, block_seed(seed, b))?;
        log_w.extend(log_likelihood_term(model, lj, x.as_ref())?);
    }
    Ok(summarise(&log_w, chains, runs, f64::NAN))
}
