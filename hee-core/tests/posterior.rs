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
//! A sampled estimate must then lie within |bias| + 6 standard errors of the
//! exact posterior, entry by entry, with standard errors from the spread
//! between independent groups of chains (Student t with 15 dof: a 6-SE
//! excursion has probability < 1e-4 per entry).

mod common;

use common::*;
use faer::Mat;
use hee_core::linear_gaussian::{Gaussian, LinearGaussian};
use hee_core::moments::{KernelKind, MomentRecursion};
use hee_core::{APrime, InterneuronConfig, Langevin, NeuralConfig};
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

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

fn check_against_exact(
    est: &EnsembleEstimate,
    post: &Gaussian,
    stat: &Gaussian,
) -> Result<(), TestCaseError> {
    let d = post.dim();
    for i in 0..d {
        let bias = (stat.mean[i] - post.mean[i]).abs();
        let err = (est.mean[i] - post.mean[i]).abs();
        prop_assert!(
            err <= bias + 6.0 * est.mean_se[i],
            "mean[{i}]: {} vs exact {} (bias {bias:.2e}, se {:.2e})",
            est.mean[i],
            post.mean[i],
            est.mean_se[i]
        );
        for j in 0..d {
            let bias = (stat.cov[(i, j)] - post.cov[(i, j)]).abs();
            let err = (est.cov[(i, j)] - post.cov[(i, j)]).abs();
            prop_assert!(
                err <= bias + 6.0 * est.cov_se[(i, j)],
                "cov[{i},{j}]: {} vs exact {} (bias {bias:.2e}, se {:.2e})",
                est.cov[(i, j)],
                post.cov[(i, j)],
                est.cov_se[(i, j)]
            );
        }
    }
    Ok(())
}

fn lg_strategy() -> impl Strategy<Value = (u64, Vec<usize>)> {
    (any::<u64>(), prop::collection::vec(2usize..=8, 3..=4))
}

fn setup(seed: u64, sizes: &[usize]) -> (hee_core::HeeModel<f32>, LinearGaussian, Vec<f64>) {
    let m64 = linear_gaussian_model(seed, sizes, 0.6);
    let lg = LinearGaussian::from_model(&m64).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 1);
    let x0: Vec<f64> = (0..sizes[0]).map(|_| rng.random_range(-1.0..1.0)).collect();
    (m64.cast::<f32>(), lg, x0)
}

fn run_case(
    seed: u64,
    sizes: &[usize],
    a_prime: APrime,
    chains: usize,
    steps: usize,
) -> Result<(), TestCaseError> {
    let (model, lg, x0) = setup(seed, sizes);
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
    check_against_exact(&est, &post, &stat)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn plain_langevin_analytic_matches_exact_posterior((seed, sizes) in lg_strategy()) {
        run_case(seed, &sizes, APrime::Analytic, 512, 2000)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 5, ..ProptestConfig::default() })]

    #[test]
    fn plain_langevin_interneurons_match_exact_posterior((seed, sizes) in lg_strategy()) {
        run_case(seed, &sizes, APrime::Interneurons(InterneuronConfig::default()), 512, 1500)?;
    }
}

/// From a start far from the posterior, the ensemble's mean and covariance
/// after t steps match the exact moment recursion. The ensemble is exactly
/// gaussian (linear dynamics, gaussian noise), so the standard errors are
/// sd(mean_i) = √(P_ii/N) and sd(cov_ij) = √((P_ii P_jj + P_ij²)/N); we allow
/// 6 of them (+1e-4 for f32 rounding of the deterministic part).
fn transient_case(seed: u64, a_prime: APrime) {
    let (model, lg, x0) = setup(seed, &[5, 4, 3]);
    let mut cfg = config_for(&lg, H_LMAX);
    cfg.a_prime = a_prime;
    let rec = MomentRecursion::new(&lg, &cfg, KernelKind::Plain, &x0).unwrap();
    let d = lg.latent_dim();
    let x_init = vec![3.0; d];
    let (mut mean, mut cov) = rec.init_moments(&x_init);
    let t = 40;
    for _ in 0..t {
        (mean, cov) = rec.step.propagate(&mean, &cov);
    }
    let (m, p) = rec.latent_part(&mean, &cov);
    let n = 20_000;
    let kernel = Langevin::new(cfg).unwrap();
    let mut xi = Mat::<f32>::zeros(n, model.total_size());
    for r in 0..n {
        for c in 0..d {
            xi[(r, model.size(0) + c)] = 3.0;
        }
    }
    let data = Mat::<f32>::from_fn(n, model.size(0), |_, j| x0[j] as f32);
    let mut streams = hee_core::RowStreams::new(seed, n);
    use hee_core::Dynamics;
    let mut state = kernel
        .init(
            &model,
            Some(data.as_ref()),
            Some(xi.as_ref()),
            n,
            &mut streams,
        )
        .unwrap();
    let mut ws = hee_core::Workspace::new(&model, n, cfg.chunk);
    for _ in 0..t {
        kernel
            .step(&model, &mut streams, &mut state, &mut ws)
            .unwrap();
    }
    let samples = Mat::<f64>::from_fn(n, d, |r, c| state.x[(model.size(0) + c, r)] as f64);
    let (sm, sc) = hee_core::linear_gaussian::sample_moments(samples.as_ref());
    let nf = n as f64;
    for i in 0..d {
        let tol = 6.0 * (p[(i, i)] / nf).sqrt() + 1e-4;
        assert!(
            (sm[i] - m[i]).abs() < tol,
            "mean[{i}] {} vs recursion {} (tol {tol:.3e})",
            sm[i],
            m[i]
        );
        for j in 0..d {
            let tol = 6.0 * ((p[(i, i)] * p[(j, j)] + p[(i, j)].powi(2)) / nf).sqrt() + 1e-4;
            assert!(
                (sc[(i, j)] - p[(i, j)]).abs() < tol,
                "cov[{i},{j}] {} vs recursion {} (tol {tol:.3e})",
                sc[(i, j)],
                p[(i, j)]
            );
        }
    }
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
