//! The seams that generation, likelihoods and the baseline build on, each
//! against an independent computation: η of one layer, the energy split by
//! layer, the drift of the unnormalised energy Ẽ, arithmetic on gradients,
//! curvature with x₀ free, and a per-unit clamp mask.

mod common;

use common::{joint_hessian, linear_gaussian_model, random_model, random_state};
use hee_core::dynamics::clamp_data_at;
use hee_core::faer::linalg::solvers::Solve;
use hee_core::faer::{Mat, Side};
use hee_core::learning::{
    learning_step, train_minibatch, LearningScratch, LocalLearning, MinibatchSchedule, ParamGrads,
};
use hee_core::{
    APrime, Adaptation, CurvatureRange, Dynamics, Langevin, NeuralConfig, Nonlinearity, Observed,
    Potential,
};

#[test]
fn one_layer_eta_equals_those_rows_of_the_full_computation() {
    for (seed, f) in [
        (1, Nonlinearity::Tanh),
        (2, Nonlinearity::Softplus),
        (3, Nonlinearity::Identity),
    ] {
        let m = random_model(seed, &[5, 4, 3, 2], &[0, 1, 2, 0], f);
        let x = random_state(seed, m.total_size(), 6);
        let full = m.natural_params(x.as_ref()).unwrap();
        for l in 0..m.n_layers() {
            let above = if l == m.top() {
                x.as_ref().subcols(0, 0)
            } else {
                x.as_ref().subcols(m.offset(l + 1), m.size(l + 1))
            };
            let eta = m.layer_natural_params(l, above).unwrap();
            let want = full.as_ref().subcols(m.offset(l), m.size(l));
            assert_eq!(
                eta,
                want.to_owned(),
                "layer {l}, f {f:?}: the same products"
            );
            // One layer's exact A′ = those columns of every layer's.
            let ap = m.layer_exact_a_prime(l, eta.as_ref()).unwrap();
            let all = m.exact_a_prime(full.as_ref()).unwrap();
            let want = all.as_ref().subcols(m.offset(l), m.size(l)).to_owned();
            assert_eq!(ap, want, "A' of layer {l}");
        }
        // The wrong width of the layer above is a typed error naming it.
        let e = m
            .layer_natural_params(0, x.as_ref().subcols(0, 1))
            .unwrap_err();
        assert!(e.to_string().contains("above"), "{e}");
    }
}

#[test]
fn layer_energies_are_the_gaussian_conditionals_and_sum_to_the_joint() {
    // Linear-gaussian layers: layer l's term is −log N(x_l; σ_l²η_l, σ_l² I),
    // written here from the density, not from φ, η·x and A.
    let m = linear_gaussian_model(4, &[6, 4, 3], 0.8);
    let x = random_state(4, m.total_size(), 5);
    let eta = m.natural_params(x.as_ref()).unwrap();
    let by_layer = m.energy_by_layer(x.as_ref()).unwrap();
    let total = m.energy_of(x.as_ref()).unwrap();
    for j in 0..x.nrows() {
        let mut sum = 0.0;
        for l in 0..m.n_layers() {
            let s2 = m.energy(l).sigma().powi(2);
            let mut want = 0.0;
            for i in m.offset(l)..m.offset(l + 1) {
                let d = x[(j, i)] - s2 * eta[(j, i)];
                want += d * d / (2.0 * s2) + 0.5 * (2.0 * std::f64::consts::PI * s2).ln();
            }
            // f64 sums of a few terms of order 1–10: a few ulps each.
            assert!(
                (by_layer[(j, l)] - want).abs() < 1e-12 * (1.0 + want.abs()),
                "sample {j} layer {l}"
            );
            sum += by_layer[(j, l)];
        }
        assert!(
            (sum - total[j]).abs() < 1e-12 * (1.0 + total[j].abs()),
            "sample {j}"
        );
    }
}

#[test]
fn unnormalised_drift_is_the_gradient_of_the_unnormalised_energy() {
    let m = random_model(5, &[4, 3, 2], &[1, 2, 1], Nonlinearity::Tanh);
    let x = random_state(5, m.total_size(), 3);
    let eta = m.natural_params(x.as_ref()).unwrap();
    let g = m
        .unnormalised_gradient(x.as_ref(), eta.as_ref(), 0)
        .unwrap();
    // Central differences of Ẽ: error O(h²·E‴) ≈ 1e-10 and rounding
    // ≈ 1e-16/h ≈ 1e-11, so 1e-7 is a wide but meaningful bound.
    let h = 1e-5;
    for j in 0..x.nrows() {
        for i in 0..m.total_size() {
            let (mut xp, mut xm) = (x.clone(), x.clone());
            xp[(j, i)] += h;
            xm[(j, i)] -= h;
            let fd = (m.unnormalised_energy_of(xp.as_ref()).unwrap()[j]
                - m.unnormalised_energy_of(xm.as_ref()).unwrap()[j])
                / (2.0 * h);
            assert!(
                (g[(j, i)] - fd).abs() < 1e-7,
                "sample {j} unit {i}: {} vs {fd}",
                g[(j, i)]
            );
        }
    }
    // Ẽ differs from U by Σ A_l(η_l): its drift is not U's.
    let ap = m.exact_a_prime(eta.as_ref()).unwrap();
    let gu = m
        .state_gradient(x.as_ref(), eta.as_ref(), ap.as_ref(), 0)
        .unwrap();
    assert!((0..m.total_size()).any(|i| (gu[(0, i)] - g[(0, i)]).abs() > 1e-3));
}

#[test]
fn kernels_descend_the_unnormalised_energy_when_told_to() {
    // The step reports mean |drift|² before it moves: with
    // Potential::Unnormalised that is |∂Ẽ/∂x|² at the start.
    let m = random_model(6, &[4, 3, 2], &[1, 0, 1], Nonlinearity::Tanh);
    let x0 = random_state(6, m.total_size(), 8);
    let mut cfg = NeuralConfig::new(0.002, 1.0);
    cfg.observed = Observed::Free;
    cfg.potential = Potential::Unnormalised;
    cfg.a_prime = APrime::Quadrature;
    let k = Langevin::new(cfg).unwrap();
    let n0 = m.size(0);
    let data = x0.as_ref().subcols(0, n0);
    let latents = x0.as_ref().subcols(n0, m.total_size() - n0);
    let mut chains = k.init(&m, Some(data), Some(latents), 8, 1).unwrap();
    let eta = m.natural_params(x0.as_ref()).unwrap();
    let g = m
        .unnormalised_gradient(x0.as_ref(), eta.as_ref(), 0)
        .unwrap();
    let want: f64 = (0..8)
        .map(|j| (0..m.total_size()).map(|i| g[(j, i)].powi(2)).sum::<f64>())
        .sum::<f64>()
        / 8.0;
    let info = k.step(&m, &mut chains).unwrap();
    assert!(
        (info.mean_sq_grad - want).abs() < 1e-12 * want,
        "{} vs {want}",
        info.mean_sq_grad
    );
    // The local rule learns U, not Ẽ: a learning step on these chains is
    // refused, and the model is left as it was.
    let mut m2 = m.clone();
    let mut scratch = LearningScratch::new(&m2, 8);
    let e = learning_step(
        &mut m2,
        &k,
        &mut chains,
        &mut scratch,
        &LocalLearning::new(0.01),
    )
    .unwrap_err();
    assert!(e.to_string().contains("potential"), "{e}");
    assert_eq!(m2.weight(0), m.weight(0));
}

#[test]
fn gradient_arithmetic_combines_phases() {
    let m = random_model(7, &[3, 2], &[0, 1], Nonlinearity::Tanh);
    let x = random_state(7, m.total_size(), 4);
    let y = random_state(8, m.total_size(), 4);
    let a = m.weight_grads(x.as_ref(), y.as_ref()).unwrap();
    let b = m.weight_grads(y.as_ref(), x.as_ref()).unwrap();
    let mut c = a.clone();
    c.add_scaled(-2.0, &b).unwrap();
    c.scale(0.5);
    for (l, w) in c.weights.iter().enumerate() {
        for i in 0..w.nrows() {
            for k in 0..w.ncols() {
                let want = 0.5 * (a.weights[l][(i, k)] - 2.0 * b.weights[l][(i, k)]);
                assert!((w[(i, k)] - want).abs() < 1e-15);
            }
        }
    }
    for (l, bias) in c.biases.iter().enumerate() {
        for (i, v) in bias.iter().enumerate() {
            assert!((v - 0.5 * (a.biases[l][i] - 2.0 * b.biases[l][i])).abs() < 1e-15);
        }
    }
    let other = random_model(7, &[3, 3], &[0, 1], Nonlinearity::Tanh);
    assert!(c.add_scaled(1.0, &ParamGrads::zeros_like(&other)).is_err());
}

fn extreme_eigenvalues(h: &Mat<f64>) -> (f64, f64) {
    let ev = h.self_adjoint_eigenvalues(Side::Lower).unwrap();
    (
        ev.iter().cloned().fold(f64::INFINITY, f64::min),
        ev.iter().cloned().fold(0.0, f64::max),
    )
}

#[test]
fn adaptation_tuned_with_x0_free_includes_its_curvature() {
    let m = linear_gaussian_model(9, &[5, 4, 3], 1.2);
    let h = joint_hessian(&m);
    let n = m.total_size();
    let (lo, hi) = extreme_eigenvalues(&h);
    let x = vec![0.3; n];
    let all: Vec<usize> = (0..n).collect();
    let r = CurvatureRange::over_units(&m, &x, &all).unwrap();
    // Central differences of a linear gradient are exact up to rounding.
    assert!(
        (r.lambda_max - hi).abs() < 1e-6 * hi
            && (r.lambda_min - lo.max(1e-3 * hi)).abs() < 1e-6 * hi
    );
    // Latents only: the posterior's precision block, a different range.
    let o = m.offset(1);
    let lat = Mat::from_fn(n - o, n - o, |i, k| h[(o + i, o + k)]);
    let (llo, lhi) = extreme_eigenvalues(&lat);
    let rl = CurvatureRange::at_state(&m, &x).unwrap();
    assert!((rl.lambda_max - lhi).abs() < 1e-6 * lhi && (rl.lambda_min - llo).abs() < 1e-6 * lhi);
    assert!(
        (r.lambda_min - rl.lambda_min).abs() > 1e-3 * rl.lambda_min,
        "x₀ changes the range"
    );
    // for_model reads which layers move from the kernel's settings.
    let mut cfg = NeuralConfig::new(0.05 / hi, 1.0);
    cfg.a_prime = APrime::Analytic;
    cfg.observed = Observed::Free;
    let data = Mat::from_fn(1, m.size(0), |_, i| x[i]);
    let lat0 = Mat::from_fn(1, n - m.size(0), |_, i| x[m.size(0) + i]);
    let k = Adaptation::for_model(cfg, &m, data.as_ref(), Some(lat0.as_ref())).unwrap();
    let want = Adaptation::tuned_with(cfg, r, false).unwrap();
    assert_eq!((k.tau_a, k.g), (want.tau_a, want.g));
}

#[test]
fn a_clamp_mask_holds_its_units_and_samples_the_conditional_of_the_rest() {
    // Linear-gaussian joint: U is quadratic over all units, so the
    // conditional of the free units given the clamped ones is gaussian
    // with precision H_ff and mean solving ∇_f U = 0. Euler–Maruyama on a
    // linear drift has the exact stationary mean, so the chains' mean is
    // off only by Monte Carlo error.
    let m = linear_gaussian_model(10, &[4, 3, 2], 0.8);
    let n = m.total_size();
    let clamp: Vec<bool> = (0..n).map(|i| i < 2).collect();
    let seen = [0.7, -0.4];
    let h = joint_hessian(&m);
    let free: Vec<usize> = (0..n).filter(|&i| !clamp[i]).collect();
    let hff = Mat::from_fn(free.len(), free.len(), |a, b| h[(free[a], free[b])]);
    // ∇_f U at (seen, 0) from the model itself, then x_f = −H_ff⁻¹ ∇_f U.
    let x_s = Mat::from_fn(1, n, |_, i| if i < 2 { seen[i] } else { 0.0 });
    let eta = m.natural_params(x_s.as_ref()).unwrap();
    let ap = m.exact_a_prime(eta.as_ref()).unwrap();
    let g = m
        .state_gradient(x_s.as_ref(), eta.as_ref(), ap.as_ref(), 0)
        .unwrap();
    let gf = Mat::from_fn(free.len(), 1, |a, _| -g[(0, free[a])]);
    let llt = hff.llt(Side::Lower).unwrap();
    let mean = llt.solve(&gf);
    let cov = llt.solve(Mat::<f64>::identity(free.len(), free.len()));

    let (lo, hi) = extreme_eigenvalues(&hff);
    let mut cfg = NeuralConfig::new(0.1 / hi, 1.0);
    cfg.a_prime = APrime::Analytic;
    cfg.observed = Observed::Free;
    let mf = m.cast::<f32>();
    let k = Langevin::new(cfg).unwrap();
    let chains_n = 4000;
    let data = Mat::<f32>::from_fn(chains_n, m.size(0), |_, i| {
        if i < 2 {
            seen[i] as f32
        } else {
            0.0
        }
    });
    let mut chains = k.init(&mf, Some(data.as_ref()), None, chains_n, 3).unwrap();
    chains.state.clamp_units(&mf, &clamp).unwrap();
    // Ten relaxation times of the slowest free mode.
    let steps = (10.0 / (cfg.h() * lo)).ceil() as usize;
    for _ in 0..steps {
        k.step(&mf, &mut chains).unwrap();
    }
    let x = chains.state.x();
    for j in 0..chains_n {
        assert_eq!(
            (x[(j, 0)], x[(j, 1)]),
            (seen[0] as f32, seen[1] as f32),
            "clamped bit for bit"
        );
    }
    // Independent chains: standard error √(Σ_aa/N); 4.5 SE over 7 units
    // fails by chance with probability < 1e-4. The f32 state adds ~1e-6.
    for (a, &i) in free.iter().enumerate() {
        let avg = (0..chains_n).map(|j| x[(j, i)] as f64).sum::<f64>() / chains_n as f64;
        let se = (cov[(a, a)] / chains_n as f64).sqrt();
        assert!(
            (avg - mean[(a, 0)]).abs() < 4.5 * se + 1e-5,
            "unit {i}: {avg} vs {} (se {se})",
            mean[(a, 0)]
        );
    }
    // A mask of the wrong length is a typed error.
    assert!(chains.state.clamp_units(&mf, &clamp[1..]).is_err());
}

#[test]
fn chains_start_at_given_latents_with_a_consistent_state() {
    // Per-example persistent chains: clamp_data_at puts data and latents
    // in place, zeroes the adaptation current and recomputes η from x.
    let m = random_model(4, &[5, 4, 3], &[0, 0, 0], Nonlinearity::Tanh).cast::<f32>();
    let mut cfg = NeuralConfig::new(0.01, 1.0);
    cfg.a_prime = APrime::Analytic;
    let k = Adaptation::new(cfg, 0.5, 2.0).unwrap();
    let batch = 6;
    let x = f32s(&random_state(5, m.total_size(), batch));
    let data = x.as_ref().subcols(0, 5).to_owned();
    let mut chains = k.init(&m, Some(data.as_ref()), None, batch, 1).unwrap();
    for _ in 0..5 {
        k.step(&m, &mut chains).unwrap();
    }
    let latents = x.as_ref().subcols(5, 7).to_owned();
    clamp_data_at(&k, &m, &mut chains, data.as_ref(), latents.as_ref()).unwrap();
    assert_eq!(chains.state.x().to_owned(), x, "data and latents in place");
    let aux = chains.state.aux();
    assert!((0..batch).all(|j| (0..m.total_size()).all(|i| aux[(j, i)] == 0.0)));
    let eta = m.natural_params(x.as_ref()).unwrap();
    assert_eq!(chains.state.eta().to_owned(), eta, "η of the new state");
    // A wrong shape is a typed error, and leaves the chains usable.
    let bad = Mat::<f32>::zeros(batch, 6);
    let e = clamp_data_at(&k, &m, &mut chains, data.as_ref(), bad.as_ref()).unwrap_err();
    assert!(e.to_string().contains("latents"), "{e}");
    k.step(&m, &mut chains).unwrap();
}

#[test]
fn steps_per_update_interleaves_inference_steps_before_each_rule() {
    // learning_steps = 2, steps_per_update = 3 is, bit for bit: 1 warm-up
    // step, then twice (2 inference steps, 1 learning step).
    let m0 = random_model(6, &[5, 4, 3], &[0, 0, 0], Nonlinearity::Tanh).cast::<f32>();
    let mut cfg = NeuralConfig::new(0.01, 1.0);
    cfg.a_prime = APrime::Analytic;
    let k = Langevin::new(cfg).unwrap();
    let batch = 4;
    let data = f32s(&random_state(7, 5, batch));
    let rates = LocalLearning::new(0.05);
    let schedule = MinibatchSchedule {
        warmup_steps: 1,
        learning_steps: 2,
        steps_per_update: 3,
    };
    let (mut ma, mut mb) = (m0.clone(), m0.clone());
    let mut ca = k.init(&ma, Some(data.as_ref()), None, batch, 9).unwrap();
    let mut cb = ca.clone();
    let mut sa = LearningScratch::new(&ma, batch);
    let mut sb = LearningScratch::new(&mb, batch);
    train_minibatch(
        &mut ma,
        &k,
        &mut ca,
        &mut sa,
        data.as_ref(),
        &schedule,
        &rates,
    )
    .unwrap();
    hee_core::dynamics::clamp_data(&k, &mb, &mut cb, data.as_ref()).unwrap();
    k.step(&mb, &mut cb).unwrap();
    for _ in 0..2 {
        k.step(&mb, &mut cb).unwrap();
        k.step(&mb, &mut cb).unwrap();
        learning_step(&mut mb, &k, &mut cb, &mut sb, &rates).unwrap();
    }
    assert_eq!(ca.state.x().to_owned(), cb.state.x().to_owned());
    assert_eq!(ma.weight(0).to_owned(), mb.weight(0).to_owned());
    assert_eq!(ma.weight(1).to_owned(), mb.weight(1).to_owned());
}

fn f32s(m: &Mat<f64>) -> Mat<f32> {
    Mat::from_fn(m.nrows(), m.ncols(), |i, j| m[(i, j)] as f32)
}
