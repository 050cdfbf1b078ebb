//! Generation (spec §6). Marginal (ancestral) generation ([`ancestral`]):
//! x_L ~ p(x_L), then each x_l ~ p(x_l | x_{l+1}) top-down, one layer at a
//! time. Joint generation ([`joint`]): every layer, x₀ included, run by a
//! neural kernel from a neutral start.
//!
//! Every one-unit conditional p(x | η) ∝ exp(ηx − x²/(2σ²) − ψ(x)) is drawn
//! exactly. For gaussian layers (ψ = 0) it is N(σ²η, σ²). For the others
//! ψ ≥ 0, so exp(−ψ) ≤ 1 and rejection from the gaussian part is exact: draw
//! x ~ N(σ²η, σ²), keep it with probability exp(−ψ(x)). Its acceptance rate
//! E[exp(−ψ(x))] is high where ψ is small over the gaussian's mass and poor
//! where it is not (a heavy-tailed unit driven far from 0, or a sparse one
//! whose ψ moves the mode far from σ²η), so after [`PROPOSALS`] rejections
//! the draw is taken by inverting the CDF of p(x | η), tabulated on a fine
//! grid over where p itself has its mass ([`quadrature::mass_window`]: all
//! of it but e⁻⁴⁶ of the peak density, found inside the quadrature's own
//! bounding window). An accepted proposal is distributed as p whatever the
//! number of tries before it, and so is the fallback, so the mixture is p:
//! exact up to the table's resolution.
//! The fraction of draws that needed the fallback is reported per layer.
//!
//! Sample j draws from stream j of the run seed's [`Purpose::Chains`] key
//! ([`RowStreams`]), units in order, so a batch is a function of the seed
//! whatever the number of threads.

use faer::Mat;
use rand::Rng;
use rayon::prelude::*;

use crate::aprime::quadrature;
use crate::dynamics::{Chains, Dynamics, Observed};
use crate::energy::BaseEnergy;
use crate::error::{HeeError, Result};
use crate::model::HeeModel;
use crate::rng::{RowStreams, SampleStream};
use crate::scalar::Real;

/// Gaussian proposals tried before a draw falls back to the inverse CDF.
pub const PROPOSALS: u64 = 32;

/// Grid points of the inverse-CDF fallback over p's mass window.
const GRID: usize = 8192;

/// Grid points of the scan that locates the mass window.
const SCAN: usize = 4096;

/// What [`ancestral`] drew.
#[derive(Debug, Clone)]
pub struct AncestralSample<T> {
    /// Every layer of every sample, batch × total units (layer 0 first).
    pub x: Mat<T>,
    /// η of every layer given the layer above, batch × total units: the
    /// conditional mean of x₀ is A′₀(η₀) (`HeeModel::exact_a_prime`).
    pub eta: Mat<T>,
    /// Per layer: the fraction of draws taken by the inverse CDF after
    /// [`PROPOSALS`] rejected proposals (0 for gaussian layers).
    pub fallback: Vec<f64>,
}

/// `n` independent draws of all layers from the model's joint, top-down,
/// with the random streams of `seed`.
pub fn ancestral<T: Real>(model: &HeeModel<T>, n: usize, seed: u64) -> Result<AncestralSample<T>> {
    if n == 0 {
        return Err(HeeError::dims("samples", ">= 1", 0));
    }
    let total = model.total_size();
    let mut x = Mat::<T>::zeros(n, total);
    let mut eta = Mat::<T>::zeros(n, total);
    let mut streams = RowStreams::new(seed, n);
    let mut fallback = vec![0.0; model.n_layers()];
    for l in (0..model.n_layers()).rev() {
        let above = if l == model.top() {
            x.as_ref().subcols(0, 0)
        } else {
            x.as_ref().subcols(model.offset(l + 1), model.size(l + 1))
        };
        let eta_l = model.layer_natural_params(l, above)?;
        let layer = model.layer_energy(l);
        // One row per sample, drawn in parallel, each from its own stream.
        let rows: Vec<(Vec<T>, u64)> = streams
            .as_mut_slice()
            .par_iter_mut()
            .enumerate()
            .map(|(j, rng)| {
                let mut inverted = 0u64;
                let row = (0..model.size(l))
                    .map(|i| draw_unit(&layer.unit(i), eta_l[(j, i)].f64(), rng, &mut inverted))
                    .collect::<Result<Vec<T>>>()?;
                Ok((row, inverted))
            })
            .collect::<Result<_>>()?;
        let inverted: u64 = rows.iter().map(|r| r.1).sum();
        fallback[l] = inverted as f64 / (n * model.size(l)) as f64;
        let o = model.offset(l);
        for (j, (row, _)) in rows.iter().enumerate() {
            for (i, &v) in row.iter().enumerate() {
                x[(j, o + i)] = v;
                eta[(j, o + i)] = eta_l[(j, i)];
            }
        }
    }
    Ok(AncestralSample { x, eta, fallback })
}

/// One exact draw of p(x | η) ∝ exp(ηx − φ(x)); `inverted` counts the
/// draws that took the inverse-CDF fallback.
pub fn draw_unit<T: Real>(
    energy: &BaseEnergy,
    eta: f64,
    rng: &mut SampleStream,
    inverted: &mut u64,
) -> Result<T> {
    let s = energy.sigma();
    let mean = s * s * eta;
    for _ in 0..PROPOSALS {
        let v = mean + s * f64::std_normal(rng);
        if energy.is_gaussian() || rng.random::<f64>() < (-energy.psi(v)).exp() {
            return Ok(T::of(v));
        }
    }
    *inverted += 1;
    inverse_cdf(energy, eta, rng.random::<f64>()).map(T::of)
}

/// The u-quantile of p(x | η): the density on [`GRID`] points over where
/// p has its mass, its CDF by the trapezoid rule, inverted with the density
/// taken linear within a cell.
fn inverse_cdf(energy: &BaseEnergy, eta: f64, u: f64) -> Result<f64> {
    let (lo, hi) = quadrature::mass_window(energy, eta, SCAN);
    let dx = (hi - lo) / (GRID - 1) as f64;
    let logp: Vec<f64> = (0..GRID)
        .map(|k| {
            let x = lo + dx * k as f64;
            eta * x - energy.phi(x)
        })
        .collect();
    let top = logp.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    if !top.is_finite() {
        return Err(HeeError::Numerical {
            routine: "ancestral",
            reason: format!("the {} density at eta = {eta} is not finite", energy.name()),
        });
    }
    let p: Vec<f64> = logp.iter().map(|l| (l - top).exp()).collect();
    let mut cdf = vec![0.0; GRID];
    for k in 1..GRID {
        cdf[k] = cdf[k - 1] + 0.5 * (p[k] + p[k - 1]) * dx;
    }
    let target = u * cdf[GRID - 1];
    let k = cdf.partition_point(|&c| c < target).clamp(1, GRID - 1);
    // Within cell k−1..k the density is p0 + (p1 − p0)t/dx: solve the
    // quadratic for the mass `rest` left to cover.
    let (p0, p1, rest) = (p[k - 1], p[k], target - cdf[k - 1]);
    let slope = (p1 - p0) / dx;
    let t = if slope.abs() < 1e-12 * (p0 + p1) / dx {
        rest / p0.max(f64::MIN_POSITIVE)
    } else {
        ((p0 * p0 + 2.0 * slope * rest).max(0.0).sqrt() - p0) / slope
    };
    Ok(lo + dx * (k - 1) as f64 + t.clamp(0.0, dx))
}

/// Joint generation: `n` chains of `kernel` with x₀ released, started at
/// x = 0 (every layer), run for `steps` steps; the state's layer 0 is the
/// sample (its conditional mean is the state's A′₀). The kernel must have
/// `observed = Observed::Free`; tune adaptation for it with
/// `Adaptation::for_model`, which then includes x₀'s curvature.
pub fn joint<T: Real, D: Dynamics<T>>(
    kernel: &D,
    model: &HeeModel<T>,
    n: usize,
    steps: usize,
    seed: u64,
) -> Result<Chains<T>> {
    if kernel.config().observed != Observed::Free {
        return Err(HeeError::Unsupported(
            "joint generation releases x0: set NeuralConfig::observed = Observed::Free".into(),
        ));
    }
    let mut chains = kernel.init(model, None, None, n, seed)?;
    for _ in 0..steps {
        kernel.step(model, &mut chains)?;
    }
    Ok(chains)
}
