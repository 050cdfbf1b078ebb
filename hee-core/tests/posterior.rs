//! Plain Langevin samples the exact posterior of linear-gaussian models, with
//! analytic A′ and with interneurons at default settings.
//!
//! Tolerances. The discretised dynamics have an exact stationary law (the
//! moment recursion's fixed point), which differs from the posterior by a
//! bias we bound from the step size and the interneurons' time constant:
//!
//! * Euler–Maruyama on a gaussian target keeps the mean and inflates the
//!   variance along eigenvalue λ by 1/(1 − hλ/2), so the covariance's relative
//!   spectral error is at most b_h = (hλ_max/2)/(1 − hλ_max/2);
//! * interneurons replace A′_l by ε̄_l, whose error has variance
//!   ≈ 2σ_l⁴ τ_ε/Δt and is nearly white across steps: it adds diffusion
//!   (τ_ε/τ)·σ_l⁴ W_lᵀW_l to the unit diffusion of x_{l+1}, which moves the
//!   stationary covariance by at most ‖D − I‖₂‖Σ‖₂; the lag of ε behind η is
//!   of the same order, so we allow b_ε = 2(τ_ε/τ)·max_l σ_l⁴‖W_l‖₂².
//!
//! The test checks that bound on the exact stationary law, and then that a
//! sampled estimate lies within 6 standard errors of that law, entry by
//! entry, with standard errors from the spread between independent groups
//! of chains (Student t with 15 dof: a 6-SE excursion has probability < 1e-4
//! per entry). Testing against the stationary law rather than allowing
//! |bias| + 6 SE around the posterior leaves no room for an error of twice
//! the bias on the far side.

mod common;

use common::*;
use faer::Mat;
use hee_core::reference::linear_gaussian::LinearGaussian;
use hee_core::reference::moments::{KernelKind, MomentRecursion};
use hee_core::{APrime, InterneuronConfig, Langevin, NeuralConfig};
use proptest::prelude::*;

const H_LMAX: f64 = 0.1;

fn rel_spectral(a: &Mat<f64>, b: &Mat<f64>) -> f64 {
    sym_norm2(&(a - b)) / sym_norm2(b)
}

fn euler_bias(h_lmax: f64) -> f64 {
    (h_lmax / 2.0) / (1.0 - h_lmax / 2.0)
}

fn interneuron_bias(lg: &LinearGaussian, tau_ratio: f64) -> f64 {
    let mut worst: f64 = 0.0;
    for l in 0..lg.n_layers() - 1 {
        let w = lg.weight(l).to_owned();
        let wtw = w.transpose() * &w;
        worst = worst.max(lg.sigma2(l).powi(2) * sym_norm2(&wtw));
    }
    2.0 * tau_ratio * worst
}

fn run_case(
    seed: u64,
    sizes: &[usize],
    a_prime: APrime,
    chains: usize,
    steps: usize,
) -> Result<(), TestCaseError> {
    let (model, lg, x0) = lg_setup(seed, sizes);
    let post = lg.posterior(&x0).unwrap();
    let mut cfg: NeuralConfig = config_for(&lg, H_LMAX);
    cfg.a_prime = a_prime;
    let rec = MomentRecursion::new(&lg, &cfg, KernelKind::Plain, &x0).unwrap();
    let stat = rec.stationary_latents().unwrap();
    // The stationary law's bias is within the derived bound.
    let mut bound = euler_bias(H_LMAX) + 1e-9;
    if let APrime::Interneurons(c) = a_prime {
        bound += interneuron_bias(&lg, c.tau_ratio);
    }
    let bias = rel_spectral(&stat.cov, &post.cov);
    prop_assert!(
        bias <= bound,
        "stationary covariance bias {bias:.4} exceeds bound {bound:.4}"
    );
    let mean_bias = stat.whiten(
        &stat
            .mean
            .iter()
            .zip(&post.mean)
            .map(|(a, b)| a - b)
            .collect::<Vec<_>>(),
    );
    prop_assert!(
        mean_bias.iter().all(|v| v.abs() < 1e-6),
        "mean bias {mean_bias:?}"
    );
    // Burn-in: 12 relaxation times of the slowest mode.
    let (lo, _) = precision_range(&lg);
    let burn_in = (12.0 / (cfg.h() * lo)).ceil() as usize;
    let kernel = Langevin::new(cfg).unwrap();
    let est = ensemble_estimate(&model, &kernel, &x0, chains, 16, burn_in, steps, seed);
    check_against_stationary(&est, &stat)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, rng_seed: proptest::test_runner::RngSeed::Fixed(20231013), ..ProptestConfig::default() })]

    #[test]
    fn plain_langevin_analytic_matches_exact_posterior((seed, sizes) in lg_strategy()) {
        run_case(seed, &sizes, APrime::Analytic, 512, 2000)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 5, rng_seed: proptest::test_runner::RngSeed::Fixed(20231014), ..ProptestConfig::default() })]

    #[test]
    fn plain_langevin_interneurons_match_exact_posterior((seed, sizes) in lg_strategy()) {
        run_case(seed, &sizes, APrime::Interneurons(InterneuronConfig::default()), 512, 1500)?;
    }
}

fn transient_case(seed: u64, a_prime: APrime) {
    let (model, lg, x0) = lg_setup(seed, &[5, 4, 3]);
    let mut cfg = config_for(&lg, H_LMAX);
    cfg.a_prime = a_prime;
    let kernel = Langevin::new(cfg).unwrap();
    transient_matches_recursion(
        seed,
        &kernel,
        KernelKind::Plain,
        &model,
        &lg,
        &x0,
        40,
        20_000,
    );
}

#[test]
fn ensemble_matches_moment_recursion_analytic() {
    for seed in 0..3 {
        transient_case(seed, APrime::Analytic);
    }
}

#[test]
fn ensemble_matches_moment_recursion_interneurons() {
    for seed in 0..3 {
        transient_case(seed, APrime::Interneurons(InterneuronConfig::default()));
    }
}
