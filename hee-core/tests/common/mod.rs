//! Helpers shared by the hee-core integration tests.
#![allow(dead_code)]

use faer::Mat;
use hee_core::{BaseEnergy, HeeModel, LayerSpec, Nonlinearity};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A base energy of kind `kind % 3` with parameters drawn from `rng`.
pub fn energy_of_kind(kind: u8, rng: &mut ChaCha8Rng) -> BaseEnergy {
    let sigma = rng.random_range(0.6..1.8);
    match kind % 3 {
        0 => BaseEnergy::Gaussian { sigma },
        1 => BaseEnergy::SmoothLaplace {
            sigma,
            lambda: rng.random_range(0.1..2.0),
            delta: rng.random_range(0.1..1.0),
        },
        _ => BaseEnergy::StudentT {
            sigma,
            weight: rng.random_range(0.1..1.5),
            nu: rng.random_range(1.0..8.0),
        },
    }
}

pub fn nonlinearity_of(i: u8) -> Nonlinearity {
    match i % 3 {
        0 => Nonlinearity::Identity,
        1 => Nonlinearity::Tanh,
        _ => Nonlinearity::Softplus,
    }
}

/// A random model: `sizes` (observation first), energies by kind, weights
/// and biases from the seed.
pub fn random_model(seed: u64, sizes: &[usize], kinds: &[u8], f: Nonlinearity) -> HeeModel<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let specs: Vec<LayerSpec> = sizes
        .iter()
        .zip(kinds)
        .map(|(&size, &k)| LayerSpec {
            size,
            energy: energy_of_kind(k, &mut rng),
        })
        .collect();
    let mut m = HeeModel::new(&specs, f).unwrap();
    m.randomize_weights(&mut rng, 0.8);
    for l in 0..m.n_layers() {
        let b: Vec<f64> = (0..m.size(l)).map(|_| rng.random_range(-0.5..0.5)).collect();
        m.set_bias(l, &b).unwrap();
    }
    m
}

/// A linear-gaussian model with weight scale `scale`.
pub fn linear_gaussian_model(seed: u64, sizes: &[usize], scale: f64) -> HeeModel<f64> {
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
    let mut m = HeeModel::new(&specs, Nonlinearity::Identity).unwrap();
    m.randomize_weights(&mut rng, scale);
    for l in 0..m.n_layers() {
        let b: Vec<f64> = (0..m.size(l)).map(|_| rng.random_range(-0.5..0.5)).collect();
        m.set_bias(l, &b).unwrap();
    }
    m
}

/// A stacked state (units × batch) with N(0, 1) entries.
pub fn random_state(seed: u64, n: usize, batch: usize) -> Mat<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed);
    Mat::from_fn(n, batch, |_, _| rng.random_range(-1.5..1.5))
}
