//! Known answers of the GRBM (issue 24): a model small enough to
//! enumerate its hiddens has an exact visible marginal (a mixture of 2ᴴ
//! gaussians), an exact log Z and an exact likelihood gradient. The
//! Gibbs-Langevin chains must sample that marginal, and CD from noise with
//! long chains must reproduce that gradient. Every check is two-sided, its
//! width derived from the Monte Carlo error, and each is shown to fail on a
//! perturbed target.

use hee_core::faer::Mat;
use hee_core::grbm::exact::{normal_cdf, Enumeration};
use hee_core::grbm::learning::{apply, cd_gradient, phase_statistics, CdConfig, GrbmGrads};
use hee_core::grbm::{GibbsLangevin, Grbm, GrbmChains};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A 3 × 6 model whose marginal is clearly multi-modal: couplings of the
/// order of σ, unequal variances, nonzero μ and b.
fn small_model(seed: u64) -> Grbm {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut m = Grbm::new(3, 6, 1.0).unwrap();
    m.randomize_weights(&mut rng, 3.0);
    for i in 0..3 {
        m.mu[i] = rng.random_range(-0.5..0.5);
        m.log_var[i] = rng.random_range(-0.7f32..0.3);
    }
    for j in 0..6 {
        m.b[j] = rng.random_range(-1.0..1.0);
    }
    m
}

/// Final visibles of `n` independent chains run `steps` steps from noise.
fn run(model: &Grbm, kernel: &GibbsLangevin, n: usize, steps: usize, seed: u64) -> Mat<f32> {
    let mut c = GrbmChains::from_noise(model, n, seed);
    for _ in 0..steps {
        c.step(model, kernel).unwrap();
    }
    c.v().to_owned()
}

/// Largest |z| of the sample means and second moments against the
/// enumeration (independent chains: SE = sd/√n of each statistic), and the
/// largest KS distance over visibles.
fn marginal_errors(v: &Mat<f32>, e: &Enumeration) -> (f64, f64) {
    let (n, d) = (v.nrows(), v.ncols());
    let (mean, second) = (e.mean(), e.second_moments());
    let mut worst_z: f64 = 0.0;
    for i in 0..d {
        for k in i..=d {
            // k == d: the mean of vᵢ; otherwise E[vᵢvₖ].
            let x: Vec<f64> = (0..n)
                .map(|r| {
                    let a = v[(r, i)] as f64;
                    if k == d {
                        a
                    } else {
                        a * v[(r, k)] as f64
                    }
                })
                .collect();
            let m = x.iter().sum::<f64>() / n as f64;
            let sd = (x.iter().map(|y| (y - m).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt();
            let target = if k == d { mean[i] } else { second[i * d + k] };
            worst_z = worst_z.max((m - target).abs() / (sd / (n as f64).sqrt()));
        }
    }
    let mut worst_ks: f64 = 0.0;
    for i in 0..d {
        let mut x: Vec<f64> = (0..n).map(|r| v[(r, i)] as f64).collect();
        x.sort_by(|a, b| a.partial_cmp(b).unwrap());
        for (r, &xi) in x.iter().enumerate() {
            let f = e.cdf(i, xi);
            let gap = (f - r as f64 / n as f64)
                .abs()
                .max((f - (r + 1) as f64 / n as f64).abs());
            worst_ks = worst_ks.max(gap);
        }
    }
    (worst_z, worst_ks)
}

/// KS critical distance at level 1e-3 per visible (three visibles: a
/// family-wise 0.3%): √(−½ ln(α/2)/n).
fn ks_critical(n: usize) -> f64 {
    (-0.5 * (0.5e-3f64).ln() / n as f64).sqrt()
}

#[test]
fn gibbs_langevin_samples_the_exact_visible_marginal() {
    let model = small_model(1);
    let e = Enumeration::new(&model).unwrap();
    let n = 4000;
    // 60 Gibbs steps: with |W| ~ σ this model mixes in a few (checked below
    // by the tests passing at 5 SE; a chain stuck in its start would not).
    let kernels = [
        GibbsLangevin::default(),
        GibbsLangevin {
            langevin_steps: 0,
            ..Default::default()
        },
    ];
    for (k, kernel) in kernels.iter().enumerate() {
        let v = run(&model, kernel, n, 60, 10 + k as u64);
        let (z, ks) = marginal_errors(&v, &e);
        assert!(z <= 5.0, "kernel {kernel:?}: moment off by {z:.2} SE");
        assert!(
            ks <= ks_critical(n),
            "kernel {kernel:?}: KS distance {ks:.4}"
        );
        // The same samples against a target moved by 0.3 in μ₀ (≈ 13 SE of
        // the mean at n = 4000) must fail: the check has power.
        let mut moved = model.clone();
        moved.mu[0] += 0.3;
        let (zm, _) = marginal_errors(&v, &Enumeration::new(&moved).unwrap());
        assert!(zm > 5.0, "a moved target passed ({zm:.2} SE)");
    }
    // Unadjusted Langevin on v | h has stationary variance σ²/(1 − ε/2):
    // 4σ² at ε = 1.5. The check must see that bias.
    let biased = GibbsLangevin {
        metropolis: false,
        step: 1.5,
        ..Default::default()
    };
    let v = run(&model, &biased, n, 60, 20);
    let (z, _) = marginal_errors(&v, &e);
    assert!(
        z > 5.0,
        "the unadjusted chain's bias went unseen ({z:.2} SE)"
    );
}

#[test]
fn log_z_by_enumeration_matches_quadrature() {
    // D = 1, H = 2: Z = Σ_h ∫ exp(−E(v, h)) dv by the trapezoid rule on
    // [−40, 40] with step 1e-3 (error far below 1e-9 for a gaussian mixture).
    let mut m = Grbm::new(1, 2, 0.7).unwrap();
    m.w[(0, 0)] = 1.3;
    m.w[(0, 1)] = -0.8;
    m.mu[0] = 0.4;
    m.b = vec![-0.3, 0.9];
    let e = Enumeration::new(&m).unwrap();
    let s2 = m.var()[0] as f64;
    let mut z = 0.0;
    let step = 1e-3;
    for k in 0..=80_000 {
        let v = -40.0 + k as f64 * step;
        for h in 0..4 {
            let (h0, h1) = ((h & 1) as f64, (h >> 1) as f64);
            let wh = m.w[(0, 0)] as f64 * h0 + m.w[(0, 1)] as f64 * h1;
            let en = 0.5 * (v - m.mu[0] as f64).powi(2) / s2
                - v / s2 * wh
                - m.b[0] as f64 * h0
                - m.b[1] as f64 * h1;
            z += (-en).exp() * step;
        }
    }
    assert!((e.log_z - z.ln()).abs() < 1e-5, "{} vs {}", e.log_z, z.ln());
    // p(v) from the free energy integrates to one.
    let grid = Mat::from_fn(80_001, 1, |k, _| (-40.0 + k as f64 * step) as f32);
    let f = m.free_energy(grid.as_ref()).unwrap();
    let mass: f64 = f.iter().map(|x| (-x - e.log_z).exp() * step).sum();
    assert!((mass - 1.0).abs() < 1e-4, "p(v) integrates to {mass}");
    assert!((normal_cdf(1.0) - 0.841_344_746).abs() < 1e-6);
}

/// Data: 2000 draws from a different GRBM, so the gradient is far from 0.
fn data(n: usize) -> Mat<f32> {
    let teacher = small_model(7);
    run(&teacher, &GibbsLangevin::default(), n, 60, 3)
}

fn z_scores(runs: &[GrbmGrads], target: &GrbmGrads) -> f64 {
    let flat = |g: &GrbmGrads| -> Vec<f64> {
        let mut v: Vec<f64> = (0..g.w.ncols())
            .flat_map(|j| (0..g.w.nrows()).map(move |i| (i, j)))
            .map(|(i, j)| g.w[(i, j)])
            .collect();
        v.extend(g.mu.iter().chain(&g.b).chain(&g.log_var));
        v
    };
    let xs: Vec<Vec<f64>> = runs.iter().map(flat).collect();
    let t = flat(target);
    let r = xs.len() as f64;
    (0..t.len())
        .map(|c| {
            let m = xs.iter().map(|x| x[c]).sum::<f64>() / r;
            let sd = (xs.iter().map(|x| (x[c] - m).powi(2)).sum::<f64>() / (r - 1.0)).sqrt();
            (m - t[c]).abs() / (sd / r.sqrt())
        })
        .fold(0.0, f64::max)
}

/// Eight independent CD estimates on `x`, negative chains seeded from `seed`.
fn cd_runs(model: &Grbm, x: &Mat<f32>, cfg: &CdConfig, seed: u64) -> Vec<GrbmGrads> {
    (0..8)
        .map(|s| {
            let mut chains = GrbmChains::from_noise(model, 2000, seed + s);
            cd_gradient(model, x.as_ref(), &mut chains, cfg).unwrap().0
        })
        .collect()
}

#[test]
fn cd_from_noise_with_long_chains_gives_the_exact_gradient() {
    let model = small_model(2);
    let x = data(2000);
    let exact = Enumeration::new(&model)
        .unwrap()
        .log_likelihood_gradient(&model, x.as_ref())
        .unwrap();
    let cfg = CdConfig {
        steps: 60,
        ..Default::default()
    };
    // Eight independent estimates (negative chains of their own seeds):
    // their spread is the Monte Carlo error of the mean.
    let runs = cd_runs(&model, &x, &cfg, 100);
    // 45 components, 8 runs (t with 7 dof): 6 "SE" keeps the family-wise
    // false alarm near 1%.
    let z = z_scores(&runs, &exact);
    assert!(
        z <= 6.0,
        "CD-60 from noise is {z:.2} SE from the exact gradient"
    );
    // The gradient of a model with b₀ moved by 0.3 is a different target.
    let mut moved = model.clone();
    moved.b[0] += 0.3;
    let other = Enumeration::new(&moved)
        .unwrap()
        .log_likelihood_gradient(&moved, x.as_ref())
        .unwrap();
    assert!(z_scores(&runs, &other) > 6.0, "a moved target passed");
    // CD-1 from noise is biased: the check sees it.
    let short = CdConfig { steps: 1, ..cfg };
    let runs1 = cd_runs(&model, &x, &short, 200);
    assert!(z_scores(&runs1, &exact) > 6.0, "CD-1's bias went unseen");
}

#[test]
fn an_exact_gradient_step_raises_the_exact_likelihood_and_clips_and_floors() {
    let mut model = small_model(3);
    let x = data(500);
    let e = Enumeration::new(&model).unwrap();
    let before = e.mean_log_likelihood(&model, x.as_ref()).unwrap();
    let g = e.log_likelihood_gradient(&model, x.as_ref()).unwrap();
    let cfg = CdConfig {
        clip_norm: 0.0,
        ..Default::default()
    };
    apply(&mut model, &g, 1e-3, &cfg).unwrap();
    let after = Enumeration::new(&model)
        .unwrap()
        .mean_log_likelihood(&model, x.as_ref())
        .unwrap();
    // First order: the gain is lr·|g|² (up to O(lr²)).
    let gain = 1e-3 * g.norm().powi(2);
    assert!(
        (after - before - gain).abs() < 0.1 * gain,
        "gain {} vs first-order {gain}",
        after - before
    );
    // Clipping: the step taken has norm lr·clip.
    let mut m2 = small_model(3);
    let w0 = m2.clone();
    let clip = CdConfig {
        clip_norm: 0.5 * g.norm(),
        var_min: 1e-12,
        ..Default::default()
    };
    let (norm, clipped) = apply(&mut m2, &g, 1.0, &clip).unwrap();
    assert!(clipped && (norm - g.norm()).abs() < 1e-12);
    let stats0 = phase_statistics(&w0, x.as_ref()).unwrap();
    assert_eq!(stats0.w.nrows(), 3);
    let moved: f64 = (0..3)
        .flat_map(|i| (0..6).map(move |j| (i, j)))
        .map(|(i, j)| ((m2.w[(i, j)] - w0.w[(i, j)]) as f64).powi(2))
        .sum::<f64>()
        + (0..3)
            .map(|i| {
                ((m2.mu[i] - w0.mu[i]) as f64).powi(2)
                    + ((m2.log_var[i] - w0.log_var[i]) as f64).powi(2)
            })
            .sum::<f64>()
        + (0..6)
            .map(|j| ((m2.b[j] - w0.b[j]) as f64).powi(2))
            .sum::<f64>();
    assert!((moved.sqrt() - clip.clip_norm).abs() < 1e-4 * clip.clip_norm);
    // The floor: a large step down in log σ² stops at ln var_min.
    let mut m3 = small_model(3);
    let mut down = GrbmGrads::zeros(&m3);
    down.log_var = vec![-100.0; 3];
    let floor = CdConfig {
        clip_norm: 0.0,
        var_min: 0.01,
        ..Default::default()
    };
    apply(&mut m3, &down, 1.0, &floor).unwrap();
    assert!(m3.log_var.iter().all(|&s| (s - 0.01f32.ln()).abs() < 1e-6));
}

#[test]
fn chains_are_the_same_whatever_the_thread_count() {
    let model = small_model(4);
    let go = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| run(&model, &GibbsLangevin::default(), 100, 5, 9))
    };
    assert_eq!(go(1), go(3));
}
