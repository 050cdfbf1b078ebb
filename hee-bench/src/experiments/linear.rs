//! Random linear-gaussian HEE models with known posteriors, shared by the
//! sampler experiments.

use faer::Mat;
use hee_core::linear_gaussian::{Gaussian, LinearGaussian};
use hee_core::{BaseEnergy, HeeModel, LayerSpec, Nonlinearity, Result};
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
    let exact_model = LinearGaussian::from_model(&m)?;
    let posterior = exact_model.posterior(&x0)?;
    let (lambda_min, lambda_max) = eig_range(&exact_model.precision());
    let name = format!(
        "lg-{}",
        sizes
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .join("-")
    );
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
