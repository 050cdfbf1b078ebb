//! Contrastive divergence from noise for the GRBM (Liao et al. 2022): the
//! likelihood gradient is ⟨−∂E/∂θ⟩_data − ⟨−∂E/∂θ⟩_model, the first with h
//! summed out given each example (its conditional expectation, which has
//! the same mean as the recipe's sampled h and less variance), the second
//! over chains started from N(0, 1) noise and run K Gibbs-Langevin steps,
//! read at their last state (CD-K from noise). The step is plain SGD on
//! the ascent direction, its global norm clipped, and every log σᵢ² kept
//! above the floor.
//!
//! −∂E/∂Wᵢⱼ = vᵢhⱼ/σᵢ², −∂E/∂bⱼ = hⱼ, −∂E/∂μᵢ = (vᵢ − μᵢ)/σᵢ²,
//! −∂E/∂log σᵢ² = ½(vᵢ − μᵢ)²/σᵢ² − vᵢ(Wh)ᵢ/σᵢ².

use faer::{Mat, MatRef};

use super::sampler::{GibbsLangevin, GrbmChains};
use super::{product, sigmoid, Grbm};
use crate::error::{HeeError, Result};

/// A direction in the GRBM's parameters (the shapes of W, μ, b, log σ²).
#[derive(Debug, Clone, PartialEq)]
pub struct GrbmGrads {
    pub w: Mat<f64>,
    pub mu: Vec<f64>,
    pub b: Vec<f64>,
    pub log_var: Vec<f64>,
}

impl GrbmGrads {
    /// All zeros, in `model`'s shapes.
    pub fn zeros(model: &Grbm) -> Self {
        GrbmGrads {
            w: Mat::zeros(model.visible(), model.hidden()),
            mu: vec![0.0; model.visible()],
            b: vec![0.0; model.hidden()],
            log_var: vec![0.0; model.visible()],
        }
    }

    /// self ← self + k · other.
    pub fn add_scaled(&mut self, k: f64, other: &GrbmGrads) {
        for j in 0..self.w.ncols() {
            for i in 0..self.w.nrows() {
                self.w[(i, j)] += k * other.w[(i, j)];
            }
        }
        for (a, b) in [
            (&mut self.mu, &other.mu),
            (&mut self.b, &other.b),
            (&mut self.log_var, &other.log_var),
        ] {
            a.iter_mut().zip(b).for_each(|(x, y)| *x += k * y);
        }
    }

    /// The Euclidean norm over all parameters.
    pub fn norm(&self) -> f64 {
        let w: f64 = (0..self.w.ncols())
            .map(|j| {
                (0..self.w.nrows())
                    .map(|i| self.w[(i, j)].powi(2))
                    .sum::<f64>()
            })
            .sum();
        let rest: f64 = self
            .mu
            .iter()
            .chain(&self.b)
            .chain(&self.log_var)
            .map(|x| x * x)
            .sum();
        (w + rest).sqrt()
    }
}

/// ⟨−∂E/∂θ⟩ over a batch of visibles (rows), h summed out given each.
pub fn phase_statistics(model: &Grbm, v: MatRef<'_, f32>) -> Result<GrbmGrads> {
    let logits = model.hidden_logits(v)?;
    let (n, d, nh) = (v.nrows(), model.visible(), model.hidden());
    let var = model.var();
    let ph = Mat::from_fn(n, nh, |r, j| sigmoid(logits[(r, j)]));
    let u = Mat::from_fn(n, d, |r, i| v[(r, i)] / var[i]);
    let mut uh = Mat::<f32>::zeros(d, nh);
    product(uh.as_mut(), u.transpose(), ph.as_ref(), 1.0 / n as f32);
    let mut g = GrbmGrads::zeros(model);
    for j in 0..nh {
        g.b[j] = (0..n).map(|r| ph[(r, j)] as f64).sum::<f64>() / n as f64;
        for i in 0..d {
            g.w[(i, j)] = uh[(i, j)] as f64;
        }
    }
    for i in 0..d {
        let (m, s2) = (model.mu[i] as f64, var[i] as f64);
        let (mut lin, mut quad) = (0.0, 0.0);
        for r in 0..n {
            let x = v[(r, i)] as f64 - m;
            lin += x / s2;
            quad += 0.5 * x * x / s2;
        }
        g.mu[i] = lin / n as f64;
        // Σ_r uᵣᵢ (W phᵣ)ᵢ / n = Σⱼ Wᵢⱼ (uᵀph/n)ᵢⱼ: no second product.
        let coupling: f64 = (0..nh)
            .map(|j| model.w[(i, j)] as f64 * uh[(i, j)] as f64)
            .sum();
        g.log_var[i] = quad / n as f64 - coupling;
    }
    Ok(g)
}

/// The settings of one CD update.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CdConfig {
    /// Gibbs-Langevin steps of the negative chains from noise (K).
    pub steps: usize,
    pub kernel: GibbsLangevin,
    /// Largest global norm of the ascent direction (0: no clipping).
    pub clip_norm: f64,
    /// Floor under every σᵢ².
    pub var_min: f64,
}

impl Default for CdConfig {
    /// The recipe: K = 100, clipping at 10; a floor of 1e-4 (σ = 0.01).
    fn default() -> Self {
        CdConfig {
            steps: 100,
            kernel: GibbsLangevin::default(),
            clip_norm: 10.0,
            var_min: 1e-4,
        }
    }
}

/// What one CD update did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CdInfo {
    /// Norm of the ascent direction before clipping.
    pub grad_norm: f64,
    /// The norm was above `clip_norm`.
    pub clipped: bool,
    /// Mean Metropolis acceptance of the negative chains (NaN: unadjusted).
    pub acceptance: f64,
}

/// The CD ascent direction on `data` (rows): the negative chains are reset
/// to noise and run `cfg.steps` steps.
pub fn cd_gradient(
    model: &Grbm,
    data: MatRef<'_, f32>,
    chains: &mut GrbmChains,
    cfg: &CdConfig,
) -> Result<(GrbmGrads, f64)> {
    let mut g = phase_statistics(model, data)?;
    chains.reset_to_noise();
    let mut acc = 0.0;
    for _ in 0..cfg.steps {
        acc += chains.step(model, &cfg.kernel)?;
    }
    g.add_scaled(-1.0, &phase_statistics(model, chains.v())?);
    Ok((g, acc / cfg.steps.max(1) as f64))
}

/// θ ← θ + lr · clip(g); log σᵢ² ≥ ln var_min.
pub fn apply(model: &mut Grbm, g: &GrbmGrads, lr: f64, cfg: &CdConfig) -> Result<(f64, bool)> {
    let norm = g.norm();
    if !norm.is_finite() {
        return Err(HeeError::Diverged {
            step: 0,
            layer: 0,
            cause: "the GRBM's CD gradient is non-finite".into(),
        });
    }
    let clipped = cfg.clip_norm > 0.0 && norm > cfg.clip_norm;
    let k = lr * if clipped { cfg.clip_norm / norm } else { 1.0 };
    for j in 0..model.hidden() {
        for i in 0..model.visible() {
            model.w[(i, j)] += (k * g.w[(i, j)]) as f32;
        }
    }
    let floor = cfg.var_min.ln() as f32;
    for (p, d) in [(&mut model.mu, &g.mu), (&mut model.b, &g.b)] {
        p.iter_mut().zip(d).for_each(|(x, y)| *x += (k * y) as f32);
    }
    for (s, d) in model.log_var.iter_mut().zip(&g.log_var) {
        *s = (*s + (k * d) as f32).max(floor);
    }
    Ok((norm, clipped))
}

/// One CD update at rate `lr` (the caller's schedule).
pub fn cd_update(
    model: &mut Grbm,
    data: MatRef<'_, f32>,
    chains: &mut GrbmChains,
    cfg: &CdConfig,
    lr: f64,
) -> Result<CdInfo> {
    if cfg.var_min.is_nan() || cfg.var_min <= 0.0 {
        return Err(HeeError::param("grbm.var_min", cfg.var_min, "must be > 0"));
    }
    let (g, acceptance) = cd_gradient(model, data, chains, cfg)?;
    let (grad_norm, clipped) = apply(model, &g, lr, cfg)?;
    Ok(CdInfo {
        grad_norm,
        clipped,
        acceptance,
    })
}
