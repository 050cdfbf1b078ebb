//! Known answers for the linear anchors (issue 23): PPCA and factor
//! analysis at their maximum likelihood.
//!
//! The maximum-likelihood checks use Wilks' theorem: on N rows drawn from a
//! model with k free parameters, the fitted mean log-likelihood exceeds
//! that of the true parameters by χ²_k/(2N), which has mean k/(2N) and
//! standard deviation √(2k)/(2N). A fit that is the maximum lands in
//! [0, (k + 5√(2k))/(2N)]; one that stops short of it falls below 0, one
//! that is not a likelihood of the data (a wrong formula) leaves the band.

use faer::Mat;
use hee_eval::linear::{factor_analysis, ppca, FaConfig, LinearFit};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// N rows of x = μ + W z + e, e ~ N(0, diag(noise)).
fn simulate(w: &Mat<f64>, mu: &[f64], noise: &[f64], n: usize, seed: u64) -> Mat<f64> {
    let (d, q) = (w.nrows(), w.ncols());
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut x = Mat::zeros(n, d);
    for r in 0..n {
        let z: Vec<f64> = (0..q).map(|_| StandardNormal.sample(&mut rng)).collect();
        for i in 0..d {
            let e: f64 = StandardNormal.sample(&mut rng);
            x[(r, i)] = mu[i] + (0..q).map(|k| w[(i, k)] * z[k]).sum::<f64>() + noise[i].sqrt() * e;
        }
    }
    x
}

fn truth(d: usize, q: usize, noise: Vec<f64>) -> LinearFit {
    LinearFit {
        mean: (0..d).map(|i| 0.1 * i as f64).collect(),
        loadings: Mat::from_fn(d, q, |i, k| ((i * 7 + k * 3) as f64).sin() * 1.5),
        noise,
        train_log_likelihood: f64::NAN,
        iterations: 0,
        converged: true,
    }
}

/// Wilks' band for k free parameters and n rows.
fn band(k: usize, n: usize) -> (f64, f64) {
    let k = k as f64;
    (0.0, (k + 5.0 * (2.0 * k).sqrt()) / (2.0 * n as f64))
}

#[test]
fn woodbury_log_densities_match_the_dense_gaussian() {
    let t = truth(9, 3, (0..9).map(|i| 0.2 + 0.05 * i as f64).collect());
    let x = simulate(&t.loadings, &t.mean, &t.noise, 50, 1);
    let fit = factor_analysis(x.as_ref(), 3, &FaConfig::default()).unwrap();
    let dense = fit.to_gaussian().unwrap();
    let fast = fit.log_likelihoods(x.as_ref()).unwrap();
    for (r, v) in fast.iter().enumerate() {
        let row: Vec<f64> = (0..9).map(|c| x[(r, c)]).collect();
        let want = dense.log_pdf(&row);
        assert!(
            (v - want).abs() < 1e-9 * want.abs().max(1.0),
            "{v} vs {want}"
        );
    }
    // The training log-likelihood from the moments is the mean of the rows'.
    let mean = fast.iter().sum::<f64>() / fast.len() as f64;
    assert!(
        (fit.train_log_likelihood - mean).abs() < 1e-9 * mean.abs(),
        "{} vs {mean}",
        fit.train_log_likelihood
    );
}

#[test]
fn ppca_is_the_maximum_likelihood() {
    let (d, q, n) = (12, 3, 20_000);
    let t = truth(d, q, vec![0.3; d]);
    let x = simulate(&t.loadings, &t.mean, &t.noise, n, 2);
    let fit = ppca(x.as_ref(), q).unwrap();
    let at_truth = t.mean_log_likelihood(x.as_ref()).unwrap();
    // μ (d), W up to rotation (dq − q(q−1)/2), σ² (1).
    let (lo, hi) = band(d + d * q - q * (q - 1) / 2 + 1, n);
    let gain = fit.train_log_likelihood - at_truth;
    assert!(
        gain >= lo && gain <= hi,
        "PPCA gain over the truth {gain}, band [{lo}, {hi}]"
    );
    // Moving σ² or the scale of W off the optimum lowers the likelihood.
    for (ds, dw) in [(1.05, 1.0), (0.95, 1.0), (1.0, 1.05), (1.0, 0.95)] {
        let mut p = fit.clone();
        p.noise.iter_mut().for_each(|v| *v *= ds);
        p.loadings = &p.loadings * faer::Scale(dw);
        let ll = p.mean_log_likelihood(x.as_ref()).unwrap();
        assert!(
            ll < fit.train_log_likelihood,
            "perturbed {ll} >= optimum {}",
            fit.train_log_likelihood
        );
    }
}

#[test]
fn factor_analysis_is_the_maximum_likelihood() {
    let (d, q, n) = (10, 2, 20_000);
    let t = truth(d, q, (0..d).map(|i| 0.05 + 0.1 * i as f64).collect());
    let x = simulate(&t.loadings, &t.mean, &t.noise, n, 3);
    let fit = factor_analysis(x.as_ref(), q, &FaConfig::default()).unwrap();
    assert!(
        fit.converged,
        "EM did not converge in {} iterations",
        fit.iterations
    );
    let at_truth = t.mean_log_likelihood(x.as_ref()).unwrap();
    // μ (d), W up to rotation, Ψ (d).
    let (lo, hi) = band(d + d * q - q * (q - 1) / 2 + d, n);
    let gain = fit.train_log_likelihood - at_truth;
    assert!(
        gain >= lo - FaConfig::default().tolerance && gain <= hi,
        "FA gain over the truth {gain}, band [{lo}, {hi}]"
    );
    // PPCA is FA with equal noise: FA does at least as well on these data,
    // and much better since the noise is not equal.
    let p = ppca(x.as_ref(), q).unwrap();
    assert!(
        fit.train_log_likelihood > p.train_log_likelihood + 0.05,
        "FA {} vs PPCA {}",
        fit.train_log_likelihood,
        p.train_log_likelihood
    );
    // Each noise variance within 5 standard errors of the truth: with the
    // factors known, ψ̂_i has variance 2ψ_i²/n; estimating them adds
    // O(q/n), covered by doubling it.
    for i in 0..d {
        let se = (4.0 * t.noise[i].powi(2) / n as f64).sqrt();
        assert!(
            (fit.noise[i] - t.noise[i]).abs() < 5.0 * se,
            "psi[{i}] {} vs {} (se {se})",
            fit.noise[i],
            t.noise[i]
        );
    }
}

#[test]
fn em_never_lowers_the_likelihood_and_respects_the_floor() {
    let (d, q) = (8, 2);
    let t = truth(
        d,
        q,
        (0..d).map(|i| if i < 2 { 1e-4 } else { 0.4 }).collect(),
    );
    let x = simulate(&t.loadings, &t.mean, &t.noise, 400, 4);
    let mut last = f64::NEG_INFINITY;
    for it in [1, 2, 5, 20, 100] {
        let cfg = FaConfig {
            max_iterations: it,
            tolerance: 0.0,
            ..FaConfig::default()
        };
        let f = factor_analysis(x.as_ref(), q, &cfg).unwrap();
        assert!(
            f.train_log_likelihood >= last - 1e-9,
            "iteration {it}: {} < {last}",
            f.train_log_likelihood
        );
        last = f.train_log_likelihood;
    }
    let floored = factor_analysis(
        x.as_ref(),
        q,
        &FaConfig {
            noise_floor: 0.01,
            ..FaConfig::default()
        },
    )
    .unwrap();
    assert!(floored.noise.iter().all(|&v| v >= 0.01));
    assert!(
        floored.noise[0] < 0.0101,
        "the small noise sits at the floor: {}",
        floored.noise[0]
    );
}

#[test]
fn bad_input_is_a_typed_error() {
    let x = Mat::from_fn(20, 5, |i, j| (i * j) as f64 % 3.0);
    assert!(ppca(x.as_ref(), 0).is_err());
    assert!(ppca(x.as_ref(), 5).is_err());
    assert!(factor_analysis(
        x.as_ref(),
        2,
        &FaConfig {
            noise_floor: 0.0,
            ..FaConfig::default()
        }
    )
    .is_err());
    let mut bad = x.clone();
    bad[(3, 2)] = f64::NAN;
    assert!(ppca(bad.as_ref(), 2).is_err());
    let fit = ppca(x.as_ref(), 2).unwrap();
    assert!(fit
        .log_likelihoods(Mat::<f64>::zeros(2, 4).as_ref())
        .is_err());
}
