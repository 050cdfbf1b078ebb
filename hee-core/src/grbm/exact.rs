//! Exact answers for a GRBM small enough to enumerate its hiddens
//! (H ≤ 20): with v integrated out in closed form, p(h) is known for each
//! of the 2ᴴ configurations, so log Z, the visible marginal (a mixture of
//! 2ᴴ gaussians N(μ + Wh, diag σ²)) and the model's expectations of the
//! sufficient statistics are sums. The references of the GRBM's tests.

use super::learning::{phase_statistics, GrbmGrads};
use super::Grbm;
use crate::error::{HeeError, Result};
use faer::MatRef;

/// The largest H enumerated.
pub const MAX_HIDDEN: usize = 20;

/// The visible marginal of a small GRBM: weights p(h) and component means.
#[derive(Debug, Clone)]
pub struct Enumeration {
    /// log Z.
    pub log_z: f64,
    /// p(h) of every configuration (bit j of the index is hⱼ).
    pub weights: Vec<f64>,
    /// W h of every configuration (D each).
    pub wh: Vec<Vec<f64>>,
    /// μ and σ² of the visibles.
    pub mu: Vec<f64>,
    pub var: Vec<f64>,
}

fn config(index: usize, nh: usize) -> Vec<f32> {
    (0..nh).map(|j| ((index >> j) & 1) as f32).collect()
}

impl Enumeration {
    /// Enumerates every h of `model`.
    pub fn new(model: &Grbm) -> Result<Self> {
        let nh = model.hidden();
        if nh > MAX_HIDDEN {
            return Err(HeeError::param(
                "grbm.hidden",
                nh as f64,
                "too many hidden units to enumerate (at most 20)",
            ));
        }
        let d = model.visible();
        let mut logs = Vec::with_capacity(1 << nh);
        let mut whs = Vec::with_capacity(1 << nh);
        for index in 0..1usize << nh {
            let h = config(index, nh);
            let wh: Vec<f64> = (0..d)
                .map(|i| (0..nh).map(|j| model.w[(i, j)] as f64 * h[j] as f64).sum())
                .collect();
            logs.push(model.log_hidden_marginal(&h, &wh));
            whs.push(wh);
        }
        let m = logs.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let s: f64 = logs.iter().map(|l| (l - m).exp()).sum();
        let log_z = m + s.ln();
        Ok(Enumeration {
            log_z,
            weights: logs.iter().map(|l| (l - log_z).exp()).collect(),
            wh: whs,
            mu: model.mu.iter().map(|&x| x as f64).collect(),
            var: model.var().iter().map(|&x| x as f64).collect(),
        })
    }

    /// E[vᵢ] of every visible.
    pub fn mean(&self) -> Vec<f64> {
        (0..self.mu.len())
            .map(|i| {
                self.mu[i]
                    + self
                        .weights
                        .iter()
                        .zip(&self.wh)
                        .map(|(p, wh)| p * wh[i])
                        .sum::<f64>()
            })
            .collect()
    }

    /// E[vᵢvₖ] (D × D, row-major).
    pub fn second_moments(&self) -> Vec<f64> {
        let d = self.mu.len();
        let mut out = vec![0.0; d * d];
        for (p, wh) in self.weights.iter().zip(&self.wh) {
            for i in 0..d {
                for k in 0..d {
                    let (mi, mk) = (self.mu[i] + wh[i], self.mu[k] + wh[k]);
                    let cov = if i == k { self.var[i] } else { 0.0 };
                    out[i * d + k] += p * (mi * mk + cov);
                }
            }
        }
        out
    }

    /// P(vᵢ ≤ x) under the marginal.
    pub fn cdf(&self, i: usize, x: f64) -> f64 {
        let s = self.var[i].sqrt();
        self.weights
            .iter()
            .zip(&self.wh)
            .map(|(p, wh)| p * normal_cdf((x - self.mu[i] - wh[i]) / s))
            .sum()
    }

    /// ⟨−∂E/∂θ⟩ under the model (the negative phase, exactly).
    pub fn model_statistics(&self, model: &Grbm) -> GrbmGrads {
        let (d, nh) = (model.visible(), model.hidden());
        let mut g = GrbmGrads::zeros(model);
        for (index, (p, wh)) in self.weights.iter().zip(&self.wh).enumerate() {
            let h = config(index, nh);
            for i in 0..d {
                let (m, s2) = (self.mu[i] + wh[i], self.var[i]);
                // v | h ~ N(m, s2).
                for j in 0..nh {
                    g.w[(i, j)] += p * m * h[j] as f64 / s2;
                }
                g.mu[i] += p * wh[i] / s2;
                g.log_var[i] += p * (0.5 * (s2 + wh[i] * wh[i]) / s2 - m * wh[i] / s2);
            }
            for j in 0..nh {
                g.b[j] += p * h[j] as f64;
            }
        }
        g
    }

    /// The exact gradient of the mean log-likelihood of `data` (rows).
    pub fn log_likelihood_gradient(
        &self,
        model: &Grbm,
        data: MatRef<'_, f32>,
    ) -> Result<GrbmGrads> {
        let mut g = phase_statistics(model, data)?;
        g.add_scaled(-1.0, &self.model_statistics(model));
        Ok(g)
    }

    /// Mean log p(v) of `data` (rows).
    pub fn mean_log_likelihood(&self, model: &Grbm, data: MatRef<'_, f32>) -> Result<f64> {
        let f = model.free_energy(data)?;
        Ok(-f.iter().sum::<f64>() / f.len() as f64 - self.log_z)
    }
}

/// Φ(z), the standard normal distribution function (to about 1e-7, far
/// below a KS test's resolution).
pub fn normal_cdf(z: f64) -> f64 {
    0.5 * erfc(-z / std::f64::consts::SQRT_2)
}

/// The complementary error function (Numerical Recipes' erfcc, relative
/// error below 1.2e-7 everywhere).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t
        * (-z * z - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07
                                + t * (-1.135_203_98
                                    + t * (1.488_515_87
                                        + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
            .exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}
