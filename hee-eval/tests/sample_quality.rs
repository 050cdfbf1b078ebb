//! Known answers of the generation-quality metrics: a set against another
//! draw of its own distribution, the closed-form Fréchet distance of two
//! gaussians, monotone growth under a shift, disjoint sets.

use faer::Mat;
use hee_eval::sample_quality::{
    frechet_distance, frechet_gaussians, kid, nearest_distances, precision_recall,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// `n` rows of N(shift·1, diag(scales²)).
fn gaussian_rows(n: usize, scales: &[f64], shift: f64, seed: u64) -> Mat<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Mat::from_fn(n, scales.len(), |_, k| {
        let z: f64 = StandardNormal.sample(&mut rng);
        shift + scales[k] * z
    })
}

#[test]
fn frechet_of_gaussians_has_its_closed_form() {
    // Diagonal covariances commute: |Δm|² + Σ(√a − √b)².
    let c1 = Mat::from_fn(3, 3, |i, j| if i == j { [1.0, 4.0, 0.25][i] } else { 0.0 });
    let c2 = Mat::from_fn(3, 3, |i, j| if i == j { [9.0, 1.0, 1.0][i] } else { 0.0 });
    let want = (1.0 + 4.0 + 0.0)
        + (1.0f64 - 3.0).powi(2)
        + (2.0f64 - 1.0).powi(2)
        + (0.5f64 - 1.0).powi(2);
    let got = frechet_gaussians(&[0.0, 0.0, 0.0], &c1, &[1.0, 2.0, 0.0], &c2).unwrap();
    assert!((got - want).abs() < 1e-10, "{got} vs {want}");
    // A rotated covariance against the identity: tr(I + C − 2C^½), whatever
    // the rotation (eigenvalues 4 and 1: 2 + 5 − 2·3 = 1).
    let (c, s) = (0.6f64, 0.8f64);
    let rot = Mat::from_fn(2, 2, |i, j| [[c, -s], [s, c]][i][j]);
    let d = Mat::from_fn(2, 2, |i, j| if i == j { [4.0, 1.0][i] } else { 0.0 });
    let cr = &rot * &d * rot.transpose();
    let got = frechet_gaussians(&[0.0; 2], &Mat::identity(2, 2), &[0.0; 2], &cr).unwrap();
    assert!((got - 1.0).abs() < 1e-10, "{got}");
}

#[test]
fn a_set_against_its_own_distribution_is_near_zero() {
    let scales = [1.0, 0.5, 2.0, 1.5, 0.8, 1.2];
    let (a, b) = (
        gaussian_rows(3000, &scales, 0.0, 1),
        gaussian_rows(3000, &scales, 0.0, 2),
    );
    // The plug-in FD of two samples of one law is O(d·σ²/n): here ≈ 0.01.
    let fd = frechet_distance(a.as_ref(), b.as_ref()).unwrap();
    assert!(fd < 0.05, "{fd}");
    assert!(frechet_distance(a.as_ref(), a.as_ref()).unwrap() < 1e-9);
    // Unbiased MMD²: zero mean, so within 3 standard errors of 0.
    let k = kid(a.as_ref(), b.as_ref(), 20, 500, 3).unwrap();
    assert!(k.value.abs() < 3.0 * k.se, "{k:?}");
    let pr = precision_recall(a.as_ref(), b.as_ref(), 3).unwrap();
    assert!(pr.precision > 0.8 && pr.recall > 0.8, "{pr:?}");
}

#[test]
fn every_distance_grows_with_a_shift() {
    let scales = [1.0; 4];
    let real = gaussian_rows(1500, &scales, 0.0, 4);
    let mut last = (0.0, f64::NEG_INFINITY, 1.1, f64::NEG_INFINITY);
    for (t, shift) in [0.0, 0.5, 1.0, 2.0].iter().enumerate() {
        let g = gaussian_rows(1500, &scales, *shift, 10 + t as u64);
        let fd = frechet_distance(real.as_ref(), g.as_ref()).unwrap();
        let k = kid(real.as_ref(), g.as_ref(), 10, 500, 5).unwrap().value;
        let p = precision_recall(real.as_ref(), g.as_ref(), 3)
            .unwrap()
            .precision;
        let nn = nearest_distances(g.as_ref(), real.as_ref()).unwrap();
        let nn = nn.iter().sum::<f64>() / nn.len() as f64;
        assert!(
            fd > last.0 && k > last.1 && p < last.2 && nn > last.3,
            "shift {shift}: {fd} {k} {p} {nn}"
        );
        // FD against its closed form d·shift² = 4·shift²: the estimate's
        // |Δm̂|² has the cross term 2·shift·Σε_k, ε_k ~ N(0, 2/n), of sd
        // 2·shift·√(2d/n); 5 sd, plus 0.05 for the covariance part.
        let sd = 2.0 * shift * (2.0 * 4.0 / 1500.0f64).sqrt();
        assert!(
            (fd - 4.0 * shift * shift).abs() < 5.0 * sd + 0.05,
            "shift {shift}: {fd}"
        );
        last = (fd, k, p, nn);
    }
    // Disjoint sets: neither manifold holds the other's rows.
    let far = gaussian_rows(500, &scales, 50.0, 20);
    let pr = precision_recall(real.as_ref(), far.as_ref(), 3).unwrap();
    assert_eq!((pr.precision, pr.recall), (0.0, 0.0));
}

#[test]
fn mismatched_sets_are_typed_errors() {
    let a = gaussian_rows(10, &[1.0, 1.0], 0.0, 1);
    let b = gaussian_rows(10, &[1.0, 1.0, 1.0], 0.0, 2);
    assert!(frechet_distance(a.as_ref(), b.as_ref()).is_err());
    assert!(kid(a.as_ref(), a.as_ref(), 5, 50, 1).is_err());
    assert!(precision_recall(a.as_ref(), a.as_ref(), 0).is_err());
}

/// Recognisability on probabilities whose answer is known: one sure class
/// (share 1, entropy 0), ten classes evenly and surely (share 1, entropy
/// log₂ 10), every sample at 0.85 (share 0 at 0.9, 1 at 0.8).
#[test]
fn recognisability_known_answers() {
    use hee_eval::sample_quality::recognisability;
    let sure = |n: usize, class: &dyn Fn(usize) -> usize, p: f64| {
        faer::Mat::from_fn(
            n,
            10,
            |r, c| if c == class(r) { p } else { (1.0 - p) / 9.0 },
        )
    };
    let one = recognisability(sure(50, &|_| 3, 0.99).as_ref(), 0.9).unwrap();
    assert_eq!((one.confident, one.class_entropy), (1.0, 0.0));
    let even = recognisability(sure(100, &|r| r % 10, 0.95).as_ref(), 0.9).unwrap();
    assert_eq!(even.confident, 1.0);
    assert!((even.class_entropy - 10f64.log2()).abs() < 1e-12);
    let unsure = sure(40, &|r| r % 2, 0.85);
    assert_eq!(
        recognisability(unsure.as_ref(), 0.9).unwrap().confident,
        0.0
    );
    let r = recognisability(unsure.as_ref(), 0.8).unwrap();
    assert_eq!(r.confident, 1.0);
    assert!((r.class_entropy - 1.0).abs() < 1e-12);
    assert!(recognisability(faer::Mat::<f64>::zeros(0, 10).as_ref(), 0.9).is_err());
}
