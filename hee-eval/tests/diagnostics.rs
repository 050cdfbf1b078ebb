//! ESS/IACT against the exact AR(1) value, and the gaussian error measures
//! on known cases.

use faer::Mat;
use hee_core::reference::linear_gaussian::Gaussian;
use hee_eval::diagnostics::{iact, moment_errors};
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

/// AR(1) x_t = φ x_{t−1} + √(1−φ²) ξ has IACT (1+φ)/(1−φ). With 4 chains of
/// 100k draws the estimator's relative standard error is about
/// √(2·(2·τ)/N_total)… a few percent for τ = 19; we allow 10%.
#[test]
fn iact_matches_ar1() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    for phi in [0.0, 0.5, 0.9] {
        let chains: Vec<Vec<f64>> = (0..4)
            .map(|_| {
                let mut x: f64 = StandardNormal.sample(&mut rng);
                (0..100_000)
                    .map(|_| {
                        let xi: f64 = StandardNormal.sample(&mut rng);
                        x = phi * x + (1.0f64 - phi * phi).sqrt() * xi;
                        x
                    })
                    .collect()
            })
            .collect();
        let exact = (1.0 + phi) / (1.0 - phi);
        let est = iact(&chains).unwrap();
        assert!(
            (est / exact - 1.0).abs() < 0.1,
            "phi {phi}: iact {est} vs {exact}"
        );
    }
}

#[test]
fn moment_errors_on_known_cases() {
    let exact = Gaussian::new(
        vec![1.0, -1.0],
        Mat::from_fn(2, 2, |i, j| if i == j { 4.0 } else { 0.0 }),
    )
    .unwrap();
    // Exact estimate: all errors zero.
    let e = moment_errors(&exact.mean, &exact.cov, &exact).unwrap();
    assert!(e.mean_rel_err.abs() < 1e-12 && e.cov_rel_err.abs() < 1e-12 && e.kl.abs() < 1e-12);
    // Mean off by one standard deviation (2) in one coordinate: √(1/2).
    let e = moment_errors(&[3.0, -1.0], &exact.cov, &exact).unwrap();
    assert!((e.mean_rel_err - 0.5f64.sqrt()).abs() < 1e-12);
    assert!((e.kl - 0.5).abs() < 1e-12);
    // Covariance doubled: relative error 1, KL = ½(2·2 − 2 − 2 ln 2) per the formula.
    let e = moment_errors(&exact.mean, &(&exact.cov * faer::Scale(2.0)), &exact).unwrap();
    assert!((e.cov_rel_err - 1.0).abs() < 1e-12);
    assert!((e.kl - 0.5 * (4.0 - 2.0 - 2.0 * 2f64.ln())).abs() < 1e-12);
}

/// The FFT autocovariance equals the direct O(N²) sum.
#[test]
fn fft_autocovariance_matches_direct_sum() {
    use rand_distr::Distribution;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    for n in [1usize, 2, 7, 64, 1000] {
        let x: Vec<f64> = (0..n).map(|_| StandardNormal.sample(&mut rng)).collect();
        let mu = x.iter().sum::<f64>() / n as f64;
        let fft = hee_eval::diagnostics::autocovariance(&x, mu);
        for t in 0..n {
            let direct: f64 = (0..n - t)
                .map(|i| (x[i] - mu) * (x[i + t] - mu))
                .sum::<f64>()
                / n as f64;
            assert!(
                (fft[t] - direct).abs() < 1e-10 * (1.0 + direct.abs()),
                "n {n} lag {t}: {} vs {direct}",
                fft[t]
            );
        }
    }
}

/// An estimate of the wrong dimension is a typed error naming the field.
#[test]
fn moment_errors_check_dimensions() {
    let exact = Gaussian::new(vec![0.0; 3], Mat::<f64>::identity(3, 3)).unwrap();
    let field = |e: hee_core::HeeError| match e {
        hee_core::HeeError::DimensionMismatch { field, .. } => field,
        other => panic!("unexpected {other}"),
    };
    let e = moment_errors(&[0.0; 2], &Mat::identity(3, 3), &exact).unwrap_err();
    assert_eq!(field(e), "mean");
    let e = moment_errors(&[0.0; 3], &Mat::identity(2, 2), &exact).unwrap_err();
    assert_eq!(field(e), "cov");
    assert!(moment_errors(&[0.0; 3], &Mat::identity(3, 3), &exact).is_ok());
}
