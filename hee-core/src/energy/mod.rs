//! Base energies φ(x) = x²/(2σ²) + ψ(x) of one unit (spec §1).
//!
//! The quadratic term keeps the one-unit normaliser a(η) = log ∫ exp(ηx − φ(x)) dx
//! finite for every η; ψ shapes the conditional (sparse, heavy-tailed).

pub mod kernel;

use crate::error::{non_negative, positive, Result};

pub use kernel::UnitEnergy;

/// Maximum number of trainable parameters of one base energy.
pub const MAX_ENERGY_PARAMS: usize = 3;

/// The base energy of every unit of a layer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BaseEnergy {
    /// ψ = 0: the conditional is N(σ²η, σ²).
    Gaussian { sigma: f64 },
    /// ψ = λ(√(x²+δ²) − δ): log-concave and sparsity-inducing.
    SmoothLaplace { sigma: f64, lambda: f64, delta: f64 },
    /// ψ = w·((ν+1)/2)·log(1 + x²/ν): heavy-tailed, not log-concave.
    StudentT { sigma: f64, weight: f64, nu: f64 },
}

impl BaseEnergy {
    /// A unit-variance-scale gaussian energy.
    pub fn gaussian(sigma: f64) -> Self {
        BaseEnergy::Gaussian { sigma }
    }

    /// Checks every parameter; the error names the field.
    pub fn validate(&self, field: &str) -> Result<()> {
        positive(&format!("{field}.sigma"), self.sigma())?;
        match *self {
            BaseEnergy::Gaussian { .. } => Ok(()),
            BaseEnergy::SmoothLaplace { lambda, delta, .. } => {
                non_negative(&format!("{field}.lambda"), lambda)?;
                positive(&format!("{field}.delta"), delta)
            }
            BaseEnergy::StudentT { weight, nu, .. } => {
                non_negative(&format!("{field}.weight"), weight)?;
                positive(&format!("{field}.nu"), nu)
            }
        }
    }

    /// The scale σ of the quadratic term.
    pub fn sigma(&self) -> f64 {
        match *self {
            BaseEnergy::Gaussian { sigma }
            | BaseEnergy::SmoothLaplace { sigma, .. }
            | BaseEnergy::StudentT { sigma, .. } => sigma,
        }
    }

    /// The same energy with scale σ = `sigma` (validated by the caller).
    pub fn with_sigma(&self, sigma: f64) -> Self {
        let mut p = self.params();
        p[0] = sigma;
        self.with_params(p)
    }

    /// Short name used in reports and on the command line.
    pub fn name(&self) -> &'static str {
        match self {
            BaseEnergy::Gaussian { .. } => "gaussian",
            BaseEnergy::SmoothLaplace { .. } => "smooth-laplace",
            BaseEnergy::StudentT { .. } => "student-t",
        }
    }

    /// True when a′(η) = σ²η holds in closed form.
    pub fn is_gaussian(&self) -> bool {
        matches!(self, BaseEnergy::Gaussian { .. })
    }

    /// ψ(x), the non-quadratic part.
    pub fn psi(&self, x: f64) -> f64 {
        match *self {
            BaseEnergy::Gaussian { .. } => 0.0,
            BaseEnergy::SmoothLaplace { lambda, delta, .. } => {
                lambda * ((x * x + delta * delta).sqrt() - delta)
            }
            BaseEnergy::StudentT { weight, nu, .. } => {
                weight * 0.5 * (nu + 1.0) * (x * x / nu).ln_1p()
            }
        }
    }

    /// φ(x) = x²/(2σ²) + ψ(x).
    pub fn phi(&self, x: f64) -> f64 {
        let s = self.sigma();
        x * x / (2.0 * s * s) + self.psi(x)
    }

    /// φ′(x).
    pub fn dphi(&self, x: f64) -> f64 {
        crate::with_unit_energy!(f64, *self, |e| e.dphi(x))
    }

    /// φ″(x), used by the step-size guidance and the exact references.
    pub fn d2phi(&self, x: f64) -> f64 {
        let s = self.sigma();
        let q = 1.0 / (s * s);
        match *self {
            BaseEnergy::Gaussian { .. } => q,
            BaseEnergy::SmoothLaplace { lambda, delta, .. } => {
                let r2 = x * x + delta * delta;
                q + lambda * delta * delta / (r2 * r2.sqrt())
            }
            BaseEnergy::StudentT { weight, nu, .. } => {
                let d = nu + x * x;
                q + weight * (nu + 1.0) * (nu - x * x) / (d * d)
            }
        }
    }

    /// Upper bound of φ″ over the real line: the stiffness of the unit.
    pub fn max_curvature(&self) -> f64 {
        let s = self.sigma();
        let q = 1.0 / (s * s);
        match *self {
            BaseEnergy::Gaussian { .. } => q,
            BaseEnergy::SmoothLaplace { lambda, delta, .. } => q + lambda / delta,
            BaseEnergy::StudentT { weight, nu, .. } => q + weight * (nu + 1.0) / nu,
        }
    }

    /// Number of trainable parameters (σ first, then the ψ parameters).
    pub fn n_params(&self) -> usize {
        match self {
            BaseEnergy::Gaussian { .. } => 1,
            _ => 3,
        }
    }

    /// Parameter names, in the order of [`BaseEnergy::params`].
    pub fn param_names(&self) -> &'static [&'static str] {
        match self {
            BaseEnergy::Gaussian { .. } => &["sigma"],
            BaseEnergy::SmoothLaplace { .. } => &["sigma", "lambda", "delta"],
            BaseEnergy::StudentT { .. } => &["sigma", "weight", "nu"],
        }
    }

    /// Parameter values (unused slots are zero).
    pub fn params(&self) -> [f64; MAX_ENERGY_PARAMS] {
        match *self {
            BaseEnergy::Gaussian { sigma } => [sigma, 0.0, 0.0],
            BaseEnergy::SmoothLaplace {
                sigma,
                lambda,
                delta,
            } => [sigma, lambda, delta],
            BaseEnergy::StudentT { sigma, weight, nu } => [sigma, weight, nu],
        }
    }

    /// The same energy with new parameter values (validated by the caller).
    pub fn with_params(&self, p: [f64; MAX_ENERGY_PARAMS]) -> Self {
        match self {
            BaseEnergy::Gaussian { .. } => BaseEnergy::Gaussian { sigma: p[0] },
            BaseEnergy::SmoothLaplace { .. } => BaseEnergy::SmoothLaplace {
                sigma: p[0],
                lambda: p[1],
                delta: p[2],
            },
            BaseEnergy::StudentT { .. } => BaseEnergy::StudentT {
                sigma: p[0],
                weight: p[1],
                nu: p[2],
            },
        }
    }

    /// ∂φ/∂θ(x) for every parameter θ (unused slots are zero).
    pub fn dphi_dtheta(&self, x: f64) -> [f64; MAX_ENERGY_PARAMS] {
        let s = self.sigma();
        let ds = -x * x / (s * s * s);
        match *self {
            BaseEnergy::Gaussian { .. } => [ds, 0.0, 0.0],
            BaseEnergy::SmoothLaplace { lambda, delta, .. } => {
                let r = (x * x + delta * delta).sqrt();
                [ds, r - delta, lambda * (delta / r - 1.0)]
            }
            BaseEnergy::StudentT { weight, nu, .. } => {
                let l = (x * x / nu).ln_1p();
                let dw = 0.5 * (nu + 1.0) * l;
                let dnu = weight * (0.5 * l - 0.5 * (nu + 1.0) * x * x / (nu * (nu + x * x)));
                [ds, dw, dnu]
            }
        }
    }
}
