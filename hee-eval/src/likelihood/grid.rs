//! Brute-force quadrature of log p(x₀) = log ∫ p(x₀ | x₁) p(x₁) dx₁ for a
//! model with one latent layer of one or two units: the reference the AIS
//! estimators are tested against on non-gaussian, nonlinear models.
//!
//! The integrand is smooth and decays like a gaussian (every base energy
//! has its quadratic term), so the trapezoid rule on a uniform grid is
//! spectrally accurate once the grid spans the prior's mass and resolves
//! the posterior; the caller checks the latter by halving the spacing.

use faer::{Mat, MatRef};
use hee_core::aprime::quadrature;
use hee_core::model::log_joint::LogJoint;
use hee_core::{HeeError, HeeModel, Real, Result};

use super::log_mean_exp;

/// log p(x₀) of every row of `x0` by a grid of `nodes` points per latent
/// unit over the prior mean ± `half_width` prior standard deviations.
pub fn log_marginal<T: Real>(
    model: &HeeModel<T>,
    lj: &LogJoint,
    x0: MatRef<'_, T>,
    nodes: usize,
    half_width: f64,
) -> Result<Vec<f64>> {
    if model.n_layers() != 2 || model.size(1) > 2 {
        return Err(HeeError::dims(
            "grid quadrature model",
            "one latent layer of 1 or 2 units",
            format!(
                "{} layers, {} top units",
                model.n_layers(),
                model.size(model.top())
            ),
        ));
    }
    if nodes < 3 {
        return Err(HeeError::dims("grid nodes", ">= 3", nodes));
    }
    let q = model.size(1);
    let n0 = model.size(0);
    // One axis per latent unit, over its prior's mean ± half_width sd.
    let axes: Vec<(f64, f64)> = (0..q)
        .map(|i| {
            let m = quadrature::moments(model.energy(1), model.bias(1)[i].f64())?;
            let s = m.variance.sqrt();
            Ok((
                m.mean - half_width * s,
                2.0 * half_width * s / (nodes - 1) as f64,
            ))
        })
        .collect::<Result<_>>()?;
    let points = nodes.pow(q as u32);
    let log_cell: f64 = axes.iter().map(|&(_, h)| h.ln()).sum();
    let mut out = Vec::with_capacity(x0.nrows());
    for r in 0..x0.nrows() {
        let x = Mat::<T>::from_fn(points, n0 + q, |p, c| {
            if c < n0 {
                x0[(r, c)]
            } else {
                let i = c - n0;
                let k = (p / nodes.pow(i as u32)) % nodes;
                T::of(axes[i].0 + k as f64 * axes[i].1)
            }
        });
        let eta = model.natural_params(x.as_ref())?;
        let terms = lj.layer_terms(model, x.as_ref(), eta.as_ref())?;
        // Trapezoid weights: halved at the ends of each axis.
        let log_f: Vec<f64> = (0..points)
            .map(|p| {
                let mut w = 0.0;
                for i in 0..q {
                    let k = (p / nodes.pow(i as u32)) % nodes;
                    if k == 0 || k == nodes - 1 {
                        w += 0.5f64.ln();
                    }
                }
                w - terms[(p, 0)] - terms[(p, 1)]
            })
            .collect();
        out.push(log_mean_exp(&log_f) + (points as f64).ln() + log_cell);
    }
    Ok(out)
}
