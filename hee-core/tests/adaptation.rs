//! Adaptation dynamics (spec §4) sample the exact posterior, their moment
//! recursion matches a sampled ensemble, the adaptation current has the
//! stationary variance μ = gτ/τ_a, and g = 0 is plain Langevin bit for bit.
//!
//! Tolerances as in `posterior.rs`: the stationary law of the discretised
//! sampler is computed exactly by the moment recursion, and a sampled
//! estimate must lie within 6 standard errors (from 16 independent groups of
//! chains) of that law. Separately the test bounds the law's distance to the
//! posterior: with the tuned rule the scheme is stable over the whole
//! curvature range, and the recursion must show a relative covariance error
//! below 10%.

mod common;

use common::*;
use faer::Mat;
use hee_core::reference::linear_gaussian::LinearGaussian;
use hee_core::reference::moments::{KernelKind, MomentRecursion};
use hee_core::{
    APrime, Adaptation, CurvatureRange, Dynamics, InterneuronConfig, Langevin, NeuralConfig,
};
use proptest::prelude::*;

const H_LMAX: f64 = 0.1;

fn tuned(lg: &LinearGaussian, a_prime: APrime) -> Adaptation {
    let (lo, hi) = precision_range(lg);
    let mut cfg: NeuralConfig = config_for(lg, H_LMAX);
    cfg.a_prime = a_prime;
    Adaptation::tuned(
        cfg,
        CurvatureRange {
            lambda_min: lo,
            lambda_max: hi,
        },
    )
    .unwrap()
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
    let kernel = tuned(&lg, a_prime);
    let (lo_c, hi_c) = precision_range(&lg);
    prop_assert!(kernel.stable_for(hi_c) && kernel.stable_for(lo_c));
    let kind = KernelKind::Adaptation {
        tau_a: kernel.tau_a,
        g: kernel.g,
    };
    let rec = MomentRecursion::new(&lg, &kernel.config, kind, &x0).unwrap();
    let (sm, sp) = rec.stationary().unwrap();
    let (m, p) = rec.latent_part(&sm, &sp);
    let stat = hee_core::reference::linear_gaussian::Gaussian::new(m, p).unwrap();
    let rel = sym_norm2(&(&stat.cov - &post.cov)) / sym_norm2(&post.cov);
    prop_assert!(rel < 0.10, "discretisation bias {rel:.3}");
    let (am, ap) = rec.aux_part(&sm, &sp);
    // Burn-in: 12 relaxation times of the slowest mode under adaptation,
    // rate ≥ 1/(2τ_a) per unit time (critical damping), and never more than
    // the plain rate would need.
    let (lo, _) = precision_range(&lg);
    let plain_relax = 1.0 / (kernel.config.h() * lo);
    let adapt_relax = 2.0 * kernel.tau_a / kernel.config.dt;
    let burn_in = (12.0 * plain_relax.min(adapt_relax.max(1.0))).ceil() as usize;
    let est = ensemble_estimate(&model, &kernel, &x0, chains, 16, burn_in, steps, seed);
    check_against_stationary(&est, &stat)?;
    // The adaptation current: E[a²] = μ in continuous time; the discretised
    // stationary value (recursion) differs by O(Δt/τ_a), bounded by 10%, and
    // the sampled value must match the discretised one.
    let mu = kernel.mu();
    for i in 0..am.len() {
        let stat_sq = ap[(i, i)] + am[i] * am[i];
        let bias = (stat_sq - mu).abs();
        prop_assert!(
            bias < 0.1 * mu,
            "a[{i}]: discretised E[a^2] {stat_sq} vs mu {mu}"
        );
        prop_assert!(
            (est.aux_sq[i] - stat_sq).abs() <= 6.0 * est.aux_sq_se[i],
            "a[{i}]: sampled E[a^2] {} vs stationary {stat_sq} (mu {mu}, se {:.2e})",
            est.aux_sq[i],
            est.aux_sq_se[i]
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10, rng_seed: proptest::test_runner::RngSeed::Fixed(20231013), ..ProptestConfig::default() })]

    #[test]
    fn adaptation_analytic_matches_exact_posterior((seed, sizes) in lg_strategy()) {
        run_case(seed, &sizes, APrime::Analytic, 512, 2000)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4, rng_seed: proptest::test_runner::RngSeed::Fixed(20231014), ..ProptestConfig::default() })]

    #[test]
    fn adaptation_interneurons_match_exact_posterior((seed, sizes) in lg_strategy()) {
        run_case(seed, &sizes, APrime::Interneurons(InterneuronConfig::default()), 512, 1500)?;
    }
}

#[test]
fn adaptation_ensemble_matches_moment_recursion() {
    for (seed, a) in [
        (0, APrime::Analytic),
        (1, APrime::Analytic),
        (2, APrime::Interneurons(InterneuronConfig::default())),
    ] {
        let (model, lg, x0) = lg_setup(seed, &[5, 4, 3]);
        let kernel = tuned(&lg, a);
        assert!(kernel.g > 0.0);
        let kind = KernelKind::Adaptation {
            tau_a: kernel.tau_a,
            g: kernel.g,
        };
        transient_matches_recursion(seed, &kernel, kind, &model, &lg, &x0, 40, 20_000);
    }
}

fn run_200<D: Dynamics<f32>>(
    kernel: &D,
    model: &hee_core::HeeModel<f32>,
    x0: &[f64],
) -> hee_core::SamplerState<f32> {
    let n = 40;
    let data = Mat::<f32>::from_fn(n, x0.len(), |_, j| x0[j] as f32);
    let mut run = kernel.init(model, Some(data.as_ref()), None, n, 3).unwrap();
    for _ in 0..200 {
        kernel.step(model, &mut run).unwrap();
    }
    run.state
}

#[test]
fn zero_strength_is_plain_langevin_bit_for_bit() {
    let (model, _, x0) = lg_setup(7, &[6, 5, 4]);
    for a in [
        APrime::Analytic,
        APrime::Interneurons(InterneuronConfig::default()),
    ] {
        let mut cfg = NeuralConfig::new(0.02, 1.0);
        cfg.a_prime = a;
        let p_state = run_200(&Langevin::new(cfg).unwrap(), &model, &x0);
        let a_state = run_200(&Adaptation::new(cfg, 0.5, 0.0).unwrap(), &model, &x0);
        let (ax, px) = (a_state.x(), p_state.x());
        let (aa, pa) = (a_state.a_prime(), p_state.a_prime());
        for j in 0..ax.ncols() {
            for i in 0..ax.nrows() {
                assert_eq!(ax[(i, j)].to_bits(), px[(i, j)].to_bits());
                assert_eq!(aa[(i, j)].to_bits(), pa[(i, j)].to_bits());
            }
        }
    }
}

#[test]
fn invalid_adaptation_settings_are_rejected() {
    let cfg = NeuralConfig::new(0.1, 1.0);
    for (tau_a, g, field) in [
        (0.0, 1.0, "tau_a"),
        (-1.0, 1.0, "tau_a"),
        (1.0, -0.5, "g"),
        (1.0, f64::NAN, "g"),
    ] {
        match Adaptation::new(cfg, tau_a, g).unwrap_err() {
            hee_core::HeeError::InvalidParameter { field: f, .. } => assert_eq!(f, field),
            other => panic!("unexpected {other}"),
        }
    }
    // A step too long for the stiffest direction is refused by the rule.
    let e = Adaptation::tuned(
        NeuralConfig::new(0.5, 1.0),
        CurvatureRange {
            lambda_min: 0.1,
            lambda_max: 10.0,
        },
    )
    .unwrap_err();
    match e {
        hee_core::HeeError::InvalidParameter { field, .. } => assert_eq!(field, "dt"),
        other => panic!("unexpected {other}"),
    }
}

/// On a linear-gaussian model the Hessian is Λ, so the measured curvature
/// range equals Λ's extreme eigenvalues (finite differences of a quadratic
/// are exact up to round-off: we allow 1e-6 relative), and `for_model`
/// returns the same kernel as `tuned` with the exact range.
#[test]
fn curvature_range_of_linear_gaussian_model_is_exact() {
    for seed in 0..4 {
        let m64 = linear_gaussian_model(seed, &[6, 5, 4], 0.8);
        let lg = LinearGaussian::from_model(&m64).unwrap();
        let (lo, hi) = precision_range(&lg);
        let x: Vec<f64> = (0..m64.total_size())
            .map(|i| (i as f64 * 0.37).sin())
            .collect();
        let c = CurvatureRange::at_state(&m64.cast::<f32>(), &x).unwrap();
        assert!(
            (c.lambda_min / lo - 1.0).abs() < 1e-6,
            "{} vs {lo}",
            c.lambda_min
        );
        assert!(
            (c.lambda_max / hi - 1.0).abs() < 1e-6,
            "{} vs {hi}",
            c.lambda_max
        );
        let cfg = NeuralConfig::new(0.1 / hi, 1.0);
        let data = Mat::<f64>::from_fn(3, 6, |r, j| x[j] * (1.0 + r as f64));
        let a = Adaptation::for_model(cfg, &m64, data.as_ref(), None).unwrap();
        // Auto on an all-gaussian model uses no interneurons.
        let b = Adaptation::tuned_with(
            cfg,
            CurvatureRange {
                lambda_min: lo,
                lambda_max: hi,
            },
            false,
        )
        .unwrap();
        assert!((a.tau_a / b.tau_a - 1.0).abs() < 1e-5 && (a.g / b.g - 1.0).abs() < 1e-5);
    }
}

/// Above `DENSE_LIMIT` free units the range comes from Lanczos: on a
/// linear-gaussian model of 210 latent units λ_max matches Λ's to 1e-4
/// (Lanczos converges on the extremes first), and the smallest Ritz value
/// is an upper bound on λ_min (never below it), here within a factor 3.
#[test]
fn lanczos_curvature_of_a_wide_model() {
    use hee_core::dynamics::curvature::DENSE_LIMIT;
    for seed in 0..2 {
        let m64 = linear_gaussian_model(seed, &[40, 150, 60], 0.8);
        assert!(m64.total_size() - 40 > DENSE_LIMIT);
        let lg = LinearGaussian::from_model(&m64).unwrap();
        let (lo, hi) = precision_range(&lg);
        let x: Vec<f64> = (0..m64.total_size())
            .map(|i| (i as f64 * 0.37).sin())
            .collect();
        let c = CurvatureRange::at_state(&m64, &x).unwrap();
        assert!(
            (c.lambda_max / hi - 1.0).abs() < 1e-4,
            "{} vs {hi}",
            c.lambda_max
        );
        assert!(
            c.lambda_min >= lo * (1.0 - 1e-6),
            "{} below {lo}",
            c.lambda_min
        );
        assert!(c.lambda_min <= 3.0 * lo, "{} vs {lo}", c.lambda_min);
    }
}
