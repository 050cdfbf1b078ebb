//! The Gaussian-Bernoulli RBM (GRBM), the conventional energy-based model
//! HEE is compared with (issue 24), in the form and training recipe of
//! Liao, Kornblith, Ren, Fleet & Hinton, "Gaussian-Bernoulli RBMs Without
//! Tears" (2022). A room of its own: it shares the random streams and the
//! matrix library with HEE, nothing else.
//!
//! Visibles v ∈ ℝᴰ (gaussian, a learned variance σᵢ² per pixel, stored as
//! log σᵢ²), hiddens h ∈ {0,1}ᴴ:
//!
//! E(v, h) = ½ Σᵢ (vᵢ − μᵢ)²/σᵢ² − Σᵢⱼ (vᵢ/σᵢ²) Wᵢⱼ hⱼ − Σⱼ bⱼ hⱼ,
//!
//! so p(hⱼ = 1 | v) = sigmoid((v/σ²)ᵀW + b)ⱼ, p(v | h) = N(μ + Wh, diag σ²),
//! and the free energy of the visibles is
//! F(v) = ½ Σᵢ (vᵢ − μᵢ)²/σᵢ² − Σⱼ softplus((v/σ²)ᵀW + b)ⱼ, with
//! p(v) = exp(−F(v))/Z. Integrating v out given h is also closed form:
//! log ∫ exp(−E) dv = Σᵢ ½ log 2πσᵢ² + b·h + Σᵢ [(μ + Wh)ᵢ² − μᵢ²]/(2σᵢ²),
//! which gives the exact log Z of a small model ([`exact`]) and the AIS
//! path of hee-eval over the hiddens alone.
//!
//! * [`sampler`]: Gibbs-Langevin chains (Gibbs on h, Langevin steps on v,
//!   with an optional Metropolis adjustment);
//! * [`learning`]: contrastive divergence from noise, gradient-norm
//!   clipping, the floor under the variances;
//! * [`exact`]: enumeration over h for small models (tests, references).
//!
//! Batches are one sample per row at the API, as everywhere in hee-core.

pub mod exact;
pub mod learning;
pub mod sampler;

use faer::linalg::matmul::matmul;
use faer::reborrow::ReborrowMut;
use faer::{Accum, Mat, MatMut, MatRef, Par};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;

use crate::error::{HeeError, Result};

pub use learning::{CdConfig, CdInfo, GrbmGrads};
pub use sampler::{GibbsLangevin, GrbmChains};

/// softplus(x) = log(1 + eˣ), without overflow.
pub fn softplus(x: f64) -> f64 {
    if x > 0.0 {
        x + (-x).exp().ln_1p()
    } else {
        x.exp().ln_1p()
    }
}

/// Columns of a product per work unit (fixed: see [`product`]).
const PRODUCT_BLOCK: usize = 32;

/// dst ← dst + alpha · lhs · rhs, in fixed blocks of dst's columns, each
/// one sequential product: threads share the work and the result depends
/// on the block size only, never on the number of threads.
pub(crate) fn product(
    dst: MatMut<'_, f32>,
    lhs: MatRef<'_, f32>,
    rhs: MatRef<'_, f32>,
    alpha: f32,
) {
    dst.par_col_chunks_mut(PRODUCT_BLOCK)
        .zip(rhs.par_col_chunks(PRODUCT_BLOCK))
        .for_each(|(mut o, r)| matmul(o.rb_mut(), Accum::Add, lhs, r, alpha, Par::Seq));
}

/// The logistic function.
#[inline]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// A GRBM's parameters (see the module documentation).
#[derive(Debug, Clone, PartialEq)]
pub struct Grbm {
    /// D × H couplings.
    pub w: Mat<f32>,
    /// Visible means μ (D).
    pub mu: Vec<f32>,
    /// Hidden biases b (H).
    pub b: Vec<f32>,
    /// log σᵢ² per visible (D).
    pub log_var: Vec<f32>,
}

impl Grbm {
    /// A model of `visible` × `hidden` units with W = 0, μ = 0, b = 0 and
    /// every variance `var`.
    pub fn new(visible: usize, hidden: usize, var: f64) -> Result<Self> {
        if visible == 0 || hidden == 0 {
            return Err(HeeError::param(
                "grbm.units",
                visible.min(hidden) as f64,
                "needs at least one visible and one hidden unit",
            ));
        }
        if !(var > 0.0 && var.is_finite()) {
            return Err(HeeError::param("grbm.init_var", var, "must be > 0"));
        }
        Ok(Grbm {
            w: Mat::zeros(visible, hidden),
            mu: vec![0.0; visible],
            b: vec![0.0; hidden],
            log_var: vec![var.ln() as f32; visible],
        })
    }

    /// Number of visible units D.
    pub fn visible(&self) -> usize {
        self.w.nrows()
    }

    /// Number of hidden units H.
    pub fn hidden(&self) -> usize {
        self.w.ncols()
    }

    /// W drawn N(0, scale²/(D + H)), the recipe's initialisation.
    pub fn randomize_weights<R: Rng + ?Sized>(&mut self, rng: &mut R, scale: f64) {
        let sd = scale / ((self.visible() + self.hidden()) as f64).sqrt();
        for j in 0..self.hidden() {
            for i in 0..self.visible() {
                let z: f64 = StandardNormal.sample(rng);
                self.w[(i, j)] = (sd * z) as f32;
            }
        }
    }

    /// σᵢ² of every visible.
    pub fn var(&self) -> Vec<f32> {
        self.log_var.iter().map(|s| s.exp()).collect()
    }

    /// The hidden pre-activations (v/σ²)ᵀW + b of a batch (rows = samples).
    pub fn hidden_logits(&self, v: MatRef<'_, f32>) -> Result<Mat<f32>> {
        self.check_batch("v", v, self.visible())?;
        let var = self.var();
        let u = Mat::from_fn(v.nrows(), v.ncols(), |r, i| v[(r, i)] / var[i]);
        let mut out = Mat::from_fn(v.nrows(), self.hidden(), |_, j| self.b[j]);
        product(out.as_mut(), u.as_ref(), self.w.as_ref(), 1.0);
        Ok(out)
    }

    /// E[v | h] = μ + W h of a batch of hiddens (rows = samples).
    pub fn visible_mean(&self, h: MatRef<'_, f32>) -> Result<Mat<f32>> {
        self.check_batch("h", h, self.hidden())?;
        let mut out = Mat::from_fn(h.nrows(), self.visible(), |_, i| self.mu[i]);
        product(out.as_mut(), h, self.w.transpose(), 1.0);
        Ok(out)
    }

    /// E(v, h) of every row.
    pub fn energy(&self, v: MatRef<'_, f32>, h: MatRef<'_, f32>) -> Result<Vec<f64>> {
        let logits = self.hidden_logits(v)?;
        self.check_batch("h", h, self.hidden())?;
        let var = self.var();
        Ok((0..v.nrows())
            .map(|r| {
                let quad = self.quadratic(v, r, &var);
                // (v/σ²)ᵀW h + b·h = Σⱼ logitⱼ hⱼ.
                let lin: f64 = (0..self.hidden())
                    .map(|j| logits[(r, j)] as f64 * h[(r, j)] as f64)
                    .sum();
                quad - lin
            })
            .collect())
    }

    /// F(v) of every row: E with h summed out.
    pub fn free_energy(&self, v: MatRef<'_, f32>) -> Result<Vec<f64>> {
        let logits = self.hidden_logits(v)?;
        let var = self.var();
        Ok((0..v.nrows())
            .map(|r| {
                let quad = self.quadratic(v, r, &var);
                let sp: f64 = (0..self.hidden())
                    .map(|j| softplus(logits[(r, j)] as f64))
                    .sum();
                quad - sp
            })
            .collect())
    }

    /// ½ Σᵢ (vᵢ − μᵢ)²/σᵢ² of row `r`.
    fn quadratic(&self, v: MatRef<'_, f32>, r: usize, var: &[f32]) -> f64 {
        (0..self.visible())
            .map(|i| 0.5 * ((v[(r, i)] - self.mu[i]) as f64).powi(2) / var[i] as f64)
            .sum()
    }

    /// log ∫ exp(−E(v, h)) dv of one hidden configuration (`wh` = W h):
    /// the unnormalised log-marginal of h.
    pub fn log_hidden_marginal(&self, h: &[f32], wh: &[f64]) -> f64 {
        let var = self.var();
        let bh: f64 = h.iter().zip(&self.b).map(|(&x, &b)| (x * b) as f64).sum();
        let quad: f64 = (0..self.visible())
            .map(|i| {
                let (m, s2) = (self.mu[i] as f64, var[i] as f64);
                0.5 * (std::f64::consts::TAU * s2).ln() + ((m + wh[i]).powi(2) - m * m) / (2.0 * s2)
            })
            .sum();
        bh + quad
    }

    /// Every parameter is finite.
    pub fn is_finite(&self) -> bool {
        crate::elementwise::all_finite(self.w.as_ref())
            && self
                .mu
                .iter()
                .chain(&self.b)
                .chain(&self.log_var)
                .all(|x| x.is_finite())
    }

    fn check_batch(&self, field: &str, m: MatRef<'_, f32>, cols: usize) -> Result<()> {
        if m.ncols() != cols {
            return Err(HeeError::dims(
                field,
                format!("{cols} columns"),
                format!("{}", m.ncols()),
            ));
        }
        for j in 0..m.ncols() {
            for r in 0..m.nrows() {
                let x = m[(r, j)];
                if !x.is_finite() {
                    return Err(HeeError::NonFiniteInput {
                        field: field.into(),
                        row: r,
                        col: j,
                        value: x as f64,
                    });
                }
            }
        }
        Ok(())
    }
}
