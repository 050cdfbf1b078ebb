//! log Z of a GRBM by annealed importance sampling over its hiddens, the
//! standard estimator for RBMs (Salakhutdinov & Murray 2008), here with the
//! visibles integrated out in closed form (see [`hee_core::grbm`]):
//!
//! f_β(h) = b·h + Σᵢ [(μᵢ + β(Wh)ᵢ)² − μᵢ²]/(2σᵢ²)  (+ Σᵢ ½ log 2πσᵢ²),
//!
//! the log-marginal of h under E_β(v, h) = ½Σ(v − μ)²/σ² − β(v/σ²)ᵀWh − b·h.
//! At β = 0 the hiddens are independent, h ~ Bernoulli(sigmoid(b)), and
//! log Z₀ = Σᵢ ½ log 2πσᵢ² + Σⱼ softplus(bⱼ) exactly; at β = 1 it is the
//! model. Each temperature's transition is one Gibbs sweep of E_β
//! (v ~ N(μ + βWh, σ²), then h ~ Bernoulli(sigmoid(β(v/σ²)ᵀW + b))), which
//! leaves f_β invariant.
//!
//! [`forward`] is unbiased for Z (its log a stochastic lower bound);
//! [`reverse`], started from exact samples of p(h) (available when the
//! hiddens can be enumerated), is unbiased for 1/Z (a stochastic upper
//! bound). The standard error is the delta method's on the mean weight.

use faer::Mat;
use hee_core::grbm::sampler::uniform;
use hee_core::grbm::{sigmoid, softplus, Grbm};
use hee_core::rng::{SampleStream, Ziggurat};
use hee_core::{HeeError, Result};

use super::{effective_sample_size, log_mean_exp};

/// The annealing schedule and the number of chains.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GrbmAisConfig {
    /// Temperatures between β = 0 and 1 (linear in β).
    pub steps: usize,
    /// Independent AIS chains.
    pub chains: usize,
    pub seed: u64,
}

impl Default for GrbmAisConfig {
    fn default() -> Self {
        GrbmAisConfig {
            steps: 2000,
            chains: 256,
            seed: 0x0a15,
        }
    }
}

/// An estimate of log Z.
#[derive(Debug, Clone, PartialEq)]
pub struct LogZ {
    pub log_z: f64,
    /// Delta-method standard error of `log_z`.
    pub se: f64,
    /// Effective sample size of the chains' weights.
    pub ess: f64,
    /// log Z₀ of the base model (exact).
    pub log_z0: f64,
}

/// log Z₀ of the base model (β = 0).
pub fn base_log_z(model: &Grbm) -> f64 {
    let gauss: f64 = model
        .var()
        .iter()
        .map(|&s2| 0.5 * (std::f64::consts::TAU * s2 as f64).ln())
        .sum();
    gauss + model.b.iter().map(|&b| softplus(b as f64)).sum::<f64>()
}

/// f_β(h) − f_β′(h) of one chain, from W h (b·h cancels).
fn f_step(model: &Grbm, var: &[f32], wh: impl Fn(usize) -> f32, beta: f64, prev: f64) -> f64 {
    (0..model.visible())
        .map(|i| {
            let (m, x) = (model.mu[i] as f64, wh(i) as f64);
            let s2 = 2.0 * var[i] as f64;
            ((m + beta * x).powi(2) - m * m) / s2 - ((m + prev * x).powi(2) - m * m) / s2
        })
        .sum()
}

/// Runs chains from `h` (rows) along `betas`, returning every chain's log
/// weight Σₖ f_{βₖ}(h) − f_{βₖ₋₁}(h).
fn run_path(model: &Grbm, mut h: Mat<f32>, betas: &[f64], seed: u64) -> Result<Vec<f64>> {
    let (n, d) = (h.nrows(), model.visible());
    let var = model.var();
    let sd: Vec<f32> = var.iter().map(|s| s.sqrt()).collect();
    let mut streams: Vec<SampleStream> =
        (0..n).map(|j| SampleStream::new(seed, j as u64)).collect();
    let mut logw = vec![0.0; n];
    let z = Ziggurat::get();
    let mut noise = vec![0.0f32; d];
    let mut v = Mat::<f32>::zeros(n, d);
    for k in 1..betas.len() {
        let (prev, beta) = (betas[k - 1], betas[k]);
        let mean = model.visible_mean(h.as_ref())?;
        for r in 0..n {
            let wh = |i: usize| mean[(r, i)] - model.mu[i];
            logw[r] += f_step(model, &var, wh, beta, prev);
            z.fill_stream(&mut streams[r], &mut noise);
            for i in 0..d {
                v[(r, i)] = model.mu[i] + beta as f32 * wh(i) + sd[i] * noise[i];
            }
        }
        let logits = model.hidden_logits(v.as_ref())?;
        for (r, s) in streams.iter_mut().enumerate() {
            for j in 0..model.hidden() {
                let b = model.b[j];
                let x = beta as f32 * (logits[(r, j)] - b) + b;
                h[(r, j)] = if uniform(s) < sigmoid(x) { 1.0 } else { 0.0 };
            }
        }
    }
    if logw.iter().any(|w| !w.is_finite()) {
        return Err(HeeError::Numerical {
            routine: "grbm ais",
            reason: "a log weight is non-finite".into(),
        });
    }
    Ok(logw)
}

fn summary(logw: &[f64]) -> (f64, f64, f64) {
    let lme = log_mean_exp(logw);
    let w: Vec<f64> = logw.iter().map(|x| (x - lme).exp()).collect();
    let n = w.len() as f64;
    let var = w.iter().map(|x| (x - 1.0).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (lme, (var / n).sqrt(), effective_sample_size(logw))
}

fn betas(steps: usize) -> Result<Vec<f64>> {
    if steps == 0 {
        return Err(HeeError::param("ais.steps", 0.0, "must be >= 1"));
    }
    Ok((0..=steps).map(|k| k as f64 / steps as f64).collect())
}

/// Forward AIS from the base model to the GRBM.
pub fn forward(model: &Grbm, cfg: &GrbmAisConfig) -> Result<LogZ> {
    if cfg.chains < 2 {
        return Err(HeeError::param(
            "ais.chains",
            cfg.chains as f64,
            "must be >= 2",
        ));
    }
    let mut s = SampleStream::new(cfg.seed, u64::MAX);
    let mut h0 = Mat::<f32>::zeros(cfg.chains, model.hidden());
    for r in 0..cfg.chains {
        for j in 0..model.hidden() {
            h0[(r, j)] = if uniform(&mut s) < sigmoid(model.b[j]) {
                1.0
            } else {
                0.0
            };
        }
    }
    let logw = run_path(model, h0, &betas(cfg.steps)?, cfg.seed)?;
    let (lme, se, ess) = summary(&logw);
    let log_z0 = base_log_z(model);
    Ok(LogZ {
        log_z: log_z0 + lme,
        se,
        ess,
        log_z0,
    })
}

/// Reverse AIS from exact samples `h` of the GRBM's p(h) (rows) to the
/// base model: an estimate of log Z biased upwards.
pub fn reverse(model: &Grbm, h: Mat<f32>, cfg: &GrbmAisConfig) -> Result<LogZ> {
    let mut b = betas(cfg.steps)?;
    b.reverse();
    let logw = run_path(model, h, &b, cfg.seed)?;
    let (lme, se, ess) = summary(&logw);
    let log_z0 = base_log_z(model);
    Ok(LogZ {
        log_z: log_z0 - lme,
        se,
        ess,
        log_z0,
    })
}
