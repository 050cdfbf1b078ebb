//! Random linear-gaussian HEE models with known posteriors, shared by the
//! sampler experiments.

use faer::Mat;
use hee_core::reference::linear_gaussian::{Gaussian, LinearGaussian};
use hee_core::{BaseEnergy, HeeModel, LayerSpec, Nonlinearity, Real, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A linear-gaussian test problem: the model, one observation and its exact posterior.
pub struct LinearProblem {
    pub name: String,
    pub model: HeeModel<f32>,
    pub exact_model: LinearGaussian,
    pub x0: Vec<f64>,
    pub posterior: Gaussian,
    /// Smallest and largest eigenvalue of the posterior precision.
    pub lambda_min: f64,
    pub lambda_max: f64,
}

impl LinearProblem {
    /// The problem of model `m` (f64, linear-gaussian) and observation `x0`:
    /// its exact posterior and curvature range.
    pub fn new(name: String, m: &HeeModel<f64>, x0: Vec<f64>) -> Result<Self> {
        let exact_model = LinearGaussian::from_model(m)?;
        let posterior = exact_model.posterior(&x0)?;
        let (lambda_min, lambda_max) = eig_range(&exact_model.precision());
        Ok(LinearProblem {
            name,
            model: m.cast(),
            exact_model,
            x0,
            posterior,
            lambda_min,
            lambda_max,
        })
    }
}

/// Draws a random linear-gaussian model with layer widths `sizes`
/// (observation first), σ_l ∈ [0.7, 1.3], weights N(0, scale²/n_{l+1}),
/// biases and one observation uniform in [−1, 1].
pub fn random_problem(sizes: &[usize], scale: f64, seed: u64) -> Result<LinearProblem> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let specs: Vec<LayerSpec> = sizes
        .iter()
        .map(|&size| LayerSpec {
            size,
            energy: BaseEnergy::Gaussian {
                sigma: rng.random_range(0.7..1.3),
            },
        })
        .collect();
    let mut m = HeeModel::<f64>::new(&specs, Nonlinearity::Identity)?;
    m.randomize_weights(&mut rng, scale);
    for l in 0..m.n_layers() {
        let b: Vec<f64> = (0..m.size(l))
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        m.set_bias(l, &b)?;
    }
    let x0: Vec<f64> = (0..sizes[0]).map(|_| rng.random_range(-1.0..1.0)).collect();
    let name = format!(
        "lg-{}",
        sizes
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .join("-")
    );
    LinearProblem::new(name, &m, x0)
}

/// Extreme eigenvalues of a symmetric matrix.
pub fn eig_range(m: &Mat<f64>) -> (f64, f64) {
    match m.self_adjoint_eigenvalues(faer::Side::Lower) {
        Ok(ev) => (
            ev.iter().cloned().fold(f64::INFINITY, f64::min),
            ev.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
        ),
        Err(_) => (f64::NAN, f64::NAN),
    }
}

/// The observation repeated for a batch of `chains` (one row per chain).
pub fn data_batch(x0: &[f64], chains: usize) -> Mat<f32> {
    Mat::from_fn(chains, x0.len(), |_, j| x0[j] as f32)
}

/// A random orthogonal d×d matrix (eigenvectors of a random symmetric matrix).
fn random_orthogonal(d: usize, rng: &mut ChaCha8Rng) -> Mat<f64> {
    let g = Mat::from_fn(d, d, |_, _| rng.random_range(-1.0..1.0));
    let s = &g + g.transpose();
    match s.self_adjoint_eigen(faer::Side::Lower) {
        Ok(e) => e.U().to_owned(),
        Err(_) => Mat::identity(d, d),
    }
}

/// A linear-gaussian model with `d` observed and `d` latent units whose
/// posterior precision Λ = I + WᵀW (σ₀ = σ₁ = 1) has eigenvalues spaced
/// log-uniformly in [1, κ]: W = U diag(√(λ_i − 1)) Vᵀ with random orthogonal
/// U and V. One observation x₀ ~ N(0, I); biases b₀ random, b₁ = 0.
pub fn conditioned_problem(d: usize, kappa: f64, seed: u64) -> Result<LinearProblem> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let specs = [
        LayerSpec {
            size: d,
            energy: BaseEnergy::gaussian(1.0),
        },
        LayerSpec {
            size: d,
            energy: BaseEnergy::gaussian(1.0),
        },
    ];
    let mut m = HeeModel::<f64>::new(&specs, Nonlinearity::Identity)?;
    let u = random_orthogonal(d, &mut rng);
    let v = random_orthogonal(d, &mut rng);
    let sv: Vec<f64> = (0..d)
        .map(|i| {
            let lam = kappa.powf(i as f64 / (d - 1).max(1) as f64);
            (lam - 1.0).max(0.0).sqrt()
        })
        .collect();
    let w = Mat::from_fn(d, d, |i, j| {
        (0..d).map(|k| u[(i, k)] * sv[k] * v[(j, k)]).sum()
    });
    m.set_weight(0, w.as_ref())?;
    let b0: Vec<f64> = (0..d).map(|_| rng.random_range(-0.5..0.5)).collect();
    m.set_bias(0, &b0)?;
    let x0: Vec<f64> = (0..d).map(|_| f64::std_normal(&mut rng)).collect();
    LinearProblem::new(format!("kappa-{kappa}"), &m, x0)
}

/// A start `dist` posterior standard deviations from the mean along every
/// principal axis of the posterior: m + dist·Σᵢ √(σᵢ²) uᵢ, with (σᵢ², uᵢ)
/// the eigenpairs of Σ. Every mode, the slowest included, starts equally
/// far, so a sampler's time to reach the posterior is set by its slowest mode.
pub fn far_start(p: &LinearProblem, dist: f64) -> Vec<f64> {
    let d = p.posterior.dim();
    let mut x = p.posterior.mean.clone();
    if let Ok(e) = p.posterior.cov.self_adjoint_eigen(faer::Side::Lower) {
        let (u, s) = (e.U(), e.S().column_vector());
        for k in 0..d {
            let sd = s[k].max(0.0).sqrt();
            for i in 0..d {
                x[i] += dist * sd * u[(i, k)];
            }
        }
    }
    x
}
