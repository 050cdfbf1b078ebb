//! Reference quadrature for one-unit conditionals p(x | η) ∝ exp(ηx − φ(x)).
//!
//! Adaptive Gauss–Kronrod (7/15) on a window that holds all but ~e⁻⁴⁶ of the
//! mass, with the integrand scaled by its maximum so that nothing overflows.
//! This is the *reference* A′ estimator of the spec (§2): accurate to ≲1e-10
//! in a′(η) for every base energy.

use crate::energy::{BaseEnergy, MAX_ENERGY_PARAMS};
use crate::error::{HeeError, Result};

/// Moments of the one-unit conditional at natural parameter η.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UnitMoments {
    /// a(η) = log ∫ exp(ηx − φ(x)) dx.
    pub log_normaliser: f64,
    /// a′(η) = E[x | η].
    pub mean: f64,
    /// a″(η) = Var[x | η].
    pub variance: f64,
    /// E[∂φ/∂θ(x) | η] for every base-energy parameter θ (so ∂a/∂θ = −this).
    pub dphi_dtheta_mean: [f64; MAX_ENERGY_PARAMS],
}

/// Requested relative accuracy of the quadrature.
pub const QUAD_TOL: f64 = 1e-12;

// Gauss–Kronrod 7/15 nodes and weights on [-1, 1].
const XGK: [f64; 8] = [
    0.991_455_371_120_812_6,
    0.949_107_912_342_758_5,
    0.864_864_423_359_769_1,
    0.741_531_185_599_394_4,
    0.586_087_235_467_691_1,
    0.405_845_151_377_397_2,
    0.207_784_955_007_898_5,
    0.0,
];
const WGK: [f64; 8] = [
    0.022_935_322_010_529_22,
    0.063_092_092_629_978_55,
    0.104_790_010_322_250_2,
    0.140_653_259_715_525_9,
    0.169_004_726_639_267_9,
    0.190_350_578_064_785_4,
    0.204_432_940_075_298_9,
    0.209_482_141_084_728_8,
];
const WG: [f64; 4] = [
    0.129_484_966_168_869_7,
    0.279_705_391_489_276_7,
    0.381_830_050_505_118_9,
    0.417_959_183_673_469_4,
];

const NV: usize = 3 + MAX_ENERGY_PARAMS;

/// Integrates the vector of moments on [a, b]; returns (Kronrod, |K − G|).
fn gk15(f: &impl Fn(f64, &mut [f64; NV]), a: f64, b: f64) -> ([f64; NV], [f64; NV]) {
    let c = 0.5 * (a + b);
    let h = 0.5 * (b - a);
    let mut k = [0.0; NV];
    let mut g = [0.0; NV];
    let mut v = [0.0; NV];
    for i in 0..8 {
        let nodes: &[f64] = if i == 7 { &[0.0] } else { &[-1.0, 1.0] };
        for s in nodes {
            f(c + s * h * XGK[i], &mut v);
            for j in 0..NV {
                k[j] += WGK[i] * v[j];
                // Odd Kronrod indices are the Gauss nodes.
                if i % 2 == 1 {
                    g[j] += WG[i / 2] * v[j];
                }
            }
        }
    }
    let mut err = [0.0; NV];
    for j in 0..NV {
        k[j] *= h;
        g[j] *= h;
        err[j] = (k[j] - g[j]).abs();
    }
    (k, err)
}

/// A window [lo, hi] that holds all of p(x | η)'s mass but ~e⁻⁴⁶: the
/// quadratic part alone peaks at c = σ²η, and ψ ≥ 0 only lowers the
/// integrand, so exp(ηx − φ) ≤ exp(g(c) + ψ(c) − (x−c)²/2σ²) and a window
/// of half-width R σ with R²/2 = ψ(c) + 46 loses < e⁻⁴⁶ of the mass. It
/// can be much wider than where the mass is (ψ moves the mode away from c).
pub fn bounding_window(energy: &BaseEnergy, eta: f64) -> (f64, f64) {
    let s = energy.sigma();
    let c = s * s * eta;
    let r = (2.0 * (energy.psi(c) + 46.0)).sqrt() + 1.0;
    (c - r * s, c + r * s)
}

/// Where p(x | η) has its mass: the part of [`bounding_window`] where
/// log p is within 46 of its maximum, located on a grid of `scan` points
/// (widened by one grid cell each side). p is log-concave or has one bump
/// per mode inside it; what is left out is below e⁻⁴⁶ of the peak density.
pub fn mass_window(energy: &BaseEnergy, eta: f64, scan: usize) -> (f64, f64) {
    let (lo, hi) = bounding_window(energy, eta);
    let scan = scan.max(16);
    let dx = (hi - lo) / (scan - 1) as f64;
    let g: Vec<f64> = (0..scan)
        .map(|k| {
            let x = lo + dx * k as f64;
            eta * x - energy.phi(x)
        })
        .collect();
    let top = g.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let first = g.iter().position(|&v| v > top - 46.0).unwrap_or(0);
    let last = g.iter().rposition(|&v| v > top - 46.0).unwrap_or(scan - 1);
    (
        lo + dx * first.saturating_sub(1) as f64,
        lo + dx * (last + 1).min(scan - 1) as f64,
    )
}

/// Moments of p(x | η) ∝ exp(ηx − φ(x)) by adaptive quadrature.
pub fn unit_moments(energy: &BaseEnergy, eta: f64) -> Result<UnitMoments> {
    if !eta.is_finite() {
        return Err(HeeError::param("eta", eta, "must be finite"));
    }
    let s = energy.sigma();
    let c = s * s * eta;
    let (lo, hi) = bounding_window(energy, eta);
    let g = |x: f64| eta * x - energy.phi(x);
    // Scale by the largest value on a fine grid (exact max not needed).
    let mut gmax = g(c);
    let n_scan = 256;
    for i in 0..=n_scan {
        let x = lo + (hi - lo) * i as f64 / n_scan as f64;
        gmax = gmax.max(g(x));
    }
    let f = |x: f64, v: &mut [f64; NV]| {
        let e = (g(x) - gmax).exp();
        let d = energy.dphi_dtheta(x);
        v[0] = e;
        // Moments about c avoid cancellation when |c| ≫ σ.
        v[1] = (x - c) * e;
        v[2] = (x - c) * (x - c) * e;
        for j in 0..MAX_ENERGY_PARAMS {
            v[3 + j] = d[j] * e;
        }
    };
    // Start from 32 panels so narrow features (small δ) are resolved.
    let n0 = 32;
    let mut stack: Vec<(f64, f64, u32)> = (0..n0)
        .map(|i| {
            let a = lo + (hi - lo) * i as f64 / n0 as f64;
            let b = lo + (hi - lo) * (i + 1) as f64 / n0 as f64;
            (a, b, 0)
        })
        .collect();
    let mut total = [0.0; NV];
    // Absolute targets: the mass Z is at least the mass of one panel around
    // the maximum; refine until each panel's error is tiny relative to the
    // running estimate of Z (a second pass guards against a bad first guess).
    let mut z_guess = 0.0;
    for &(a, b, _) in &stack {
        z_guess += gk15(&f, a, b).0[0];
    }
    if z_guess.is_nan() || z_guess <= 0.0 {
        return Err(HeeError::Numerical {
            routine: "quadrature",
            reason: format!("zero mass for {} at eta = {eta}", energy.name()),
        });
    }
    let scale_x = s;
    while let Some((a, b, depth)) = stack.pop() {
        let (k, e) = gk15(&f, a, b);
        let frac = (b - a) / (hi - lo);
        let ok0 = e[0] <= QUAD_TOL * z_guess * frac.max(1e-6);
        let ok1 = e[1] <= QUAD_TOL * z_guess * scale_x * frac.max(1e-6);
        let ok2 = e[2] <= QUAD_TOL * z_guess * scale_x * scale_x * frac.max(1e-6);
        if (ok0 && ok1 && ok2) || depth >= 40 {
            for j in 0..NV {
                total[j] += k[j];
            }
        } else {
            let m = 0.5 * (a + b);
            stack.push((a, m, depth + 1));
            stack.push((m, b, depth + 1));
        }
    }
    let z = total[0];
    let shift = total[1] / z;
    let mean = c + shift;
    let variance = (total[2] / z - shift * shift).max(0.0);
    let mut dphi_dtheta_mean = [0.0; MAX_ENERGY_PARAMS];
    for j in 0..MAX_ENERGY_PARAMS {
        dphi_dtheta_mean[j] = total[3 + j] / z;
    }
    Ok(UnitMoments {
        log_normaliser: gmax + z.ln(),
        mean,
        variance,
        dphi_dtheta_mean,
    })
}

/// Closed-form moments of the gaussian unit (used to check the quadrature).
pub fn gaussian_moments(sigma: f64, eta: f64) -> UnitMoments {
    let s2 = sigma * sigma;
    // E[∂φ/∂σ] = E[−x²/σ³] = −(σ² + (σ²η)²)/σ³.
    let m = s2 * eta;
    UnitMoments {
        log_normaliser: 0.5 * s2 * eta * eta + 0.5 * (2.0 * std::f64::consts::PI * s2).ln(),
        mean: m,
        variance: s2,
        dphi_dtheta_mean: [-(s2 + m * m) / (s2 * sigma), 0.0, 0.0],
    }
}

/// a(η) and its moments: closed form for gaussian units, quadrature otherwise.
pub fn moments(energy: &BaseEnergy, eta: f64) -> Result<UnitMoments> {
    match *energy {
        BaseEnergy::Gaussian { sigma } => Ok(gaussian_moments(sigma, eta)),
        _ => unit_moments(energy, eta),
    }
}
