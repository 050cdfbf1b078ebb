//! The baseline's two-phase rule against the exact likelihood gradient of
//! an EBM whose energy Ẽ is quadratic (linear-gaussian layers): there the
//! joint is N(J⁻¹b, J⁻¹) with J = blockdiag(I/σ_l²) − (W blocks), so
//! log p(x₀) and its derivatives are exact.

mod common;

use common::linear_gaussian_model;
use hee_core::faer::linalg::solvers::Solve;
use hee_core::faer::{Mat, Side};
use hee_core::learning::{pcd_step, pcd_update, two_phase_gradients, LocalLearning, PcdScratch};
use hee_core::reference::linear_gaussian::Gaussian;
use hee_core::{APrime, Dynamics, HeeModel, Langevin, NeuralConfig, Observed, Potential};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// The EBM's joint over all units: precision J and mean J⁻¹b.
fn ebm_joint(m: &HeeModel<f64>) -> (Mat<f64>, Vec<f64>) {
    let n = m.total_size();
    let mut j = Mat::<f64>::zeros(n, n);
    let mut b = vec![0.0; n];
    for l in 0..m.n_layers() {
        let o = m.offset(l);
        for i in 0..m.size(l) {
            j[(o + i, o + i)] = 1.0 / m.energy(l).sigma().powi(2);
            b[o + i] = m.bias(l)[i];
        }
        if l < m.top() {
            let (w, o1) = (m.weight(l), m.offset(l + 1));
            for i in 0..m.size(l) {
                for k in 0..m.size(l + 1) {
                    j[(o + i, o1 + k)] = -w[(i, k)];
                    j[(o1 + k, o + i)] = -w[(i, k)];
                }
            }
        }
    }
    let mean = j
        .llt(Side::Lower)
        .unwrap()
        .solve(Mat::from_fn(n, 1, |i, _| b[i]));
    (j, (0..n).map(|i| mean[(i, 0)]).collect())
}

/// Exact log p(x₀) of the EBM: the x₀ block of N(J⁻¹b, J⁻¹).
fn log_p0(m: &HeeModel<f64>, x0: &[f64]) -> f64 {
    let (j, mean) = ebm_joint(m);
    let n = m.total_size();
    let cov = j
        .llt(Side::Lower)
        .unwrap()
        .solve(Mat::<f64>::identity(n, n));
    let d = m.size(0);
    let g = Gaussian::new(mean[..d].to_vec(), Mat::from_fn(d, d, |a, c| cov[(a, c)])).unwrap();
    g.log_pdf(x0)
}

/// `n` exact draws of N(mean, cov), one per row.
fn draws(mean: &[f64], cov: &Mat<f64>, n: usize, seed: u64) -> Mat<f64> {
    let l = cov.llt(Side::Lower).unwrap().L().to_owned();
    let d = mean.len();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let z = Mat::from_fn(d, n, |_, _| {
        let v: f64 = StandardNormal.sample(&mut rng);
        v
    });
    let x = &l * &z;
    Mat::from_fn(n, d, |r, i| mean[i] + x[(i, r)])
}

#[test]
fn two_phase_rule_is_the_exact_likelihood_gradient() {
    let m = linear_gaussian_model(3, &[4, 3, 2], 0.5);
    let x0 = [0.4, -0.3, 0.8, 0.1];
    let n = m.total_size();
    let d = m.size(0);
    let (j, mean) = ebm_joint(&m);
    // Free phase: the joint. Clamped phase: the latents given x₀, with
    // precision J_zz and mean J_zz⁻¹(b_z − J_z0 x₀).
    let cov = j
        .llt(Side::Lower)
        .unwrap()
        .solve(Mat::<f64>::identity(n, n));
    let jzz = Mat::from_fn(n - d, n - d, |a, c| j[(d + a, d + c)]);
    let rhs = Mat::from_fn(n - d, 1, |a, _| {
        m.bias(1 + usize::from(a >= m.size(1)))[if a >= m.size(1) { a - m.size(1) } else { a }]
            - (0..d).map(|i| j[(d + a, i)] * x0[i]).sum::<f64>()
    });
    let llt = jzz.llt(Side::Lower).unwrap();
    let mz = llt.solve(&rhs);
    let cz = llt.solve(Mat::<f64>::identity(n - d, n - d));
    let samples = 200_000;
    let free = draws(&mean, &cov, samples, 1);
    let z = draws(
        &(0..n - d).map(|a| mz[(a, 0)]).collect::<Vec<_>>(),
        &cz,
        samples,
        2,
    );
    let clamped = Mat::from_fn(samples, n, |r, i| if i < d { x0[i] } else { z[(r, i - d)] });
    let g = two_phase_gradients(&m, clamped.as_ref(), free.as_ref()).unwrap();
    // Central differences of the exact log p(x₀) in W and b: O(h²) ≈ 1e-8.
    let h = 1e-4;
    for l in 0..m.top() {
        for (i, k) in [(0, 0), (1, 1), (m.size(l) - 1, m.size(l + 1) - 1)] {
            let mut mp = m.clone();
            let mut mm = m.clone();
            mp.weight_mut(l)[(i, k)] += h;
            mm.weight_mut(l)[(i, k)] -= h;
            let fd = (log_p0(&mp, &x0) - log_p0(&mm, &x0)) / (2.0 * h);
            // Monte Carlo: each phase's average of x_l,i x_{l+1},k over
            // 200,000 exact draws; its SE from the draws themselves.
            let term = |x: &Mat<f64>| -> (f64, f64) {
                let v: Vec<f64> = (0..samples)
                    .map(|r| x[(r, m.offset(l) + i)] * x[(r, m.offset(l + 1) + k)])
                    .collect();
                let mu = v.iter().sum::<f64>() / samples as f64;
                (
                    mu,
                    v.iter().map(|a| (a - mu).powi(2)).sum::<f64>() / (samples as f64).powi(2),
                )
            };
            let (vc, vf) = (term(&clamped).1, term(&free).1);
            let se = (vc + vf).sqrt();
            let got = g.weights[l][(i, k)];
            assert!(
                (got - fd).abs() < 5.0 * se + 1e-6,
                "W[{l}][{i},{k}]: rule {got} vs exact {fd} (se {se})"
            );
        }
    }
    for l in 0..m.n_layers() {
        let mut mp = m.clone();
        let mut mm = m.clone();
        mp.bias_mut(l)[0] += h;
        mm.bias_mut(l)[0] -= h;
        let fd = (log_p0(&mp, &x0) - log_p0(&mm, &x0)) / (2.0 * h);
        let got = g.biases[l][0];
        let sd = |x: &Mat<f64>| {
            let v: Vec<f64> = (0..samples).map(|r| x[(r, m.offset(l))]).collect();
            let mu = v.iter().sum::<f64>() / samples as f64;
            v.iter().map(|a| (a - mu).powi(2)).sum::<f64>() / (samples as f64).powi(2)
        };
        let se = (sd(&clamped) + sd(&free)).sqrt();
        assert!(
            (got - fd).abs() < 5.0 * se + 1e-6,
            "b[{l}][0]: rule {got} vs exact {fd}"
        );
    }
}

#[test]
fn pcd_steps_run_on_the_unnormalised_energy_only() {
    let m64 = linear_gaussian_model(4, &[6, 4, 2], 0.5);
    let mut m = m64.cast::<f32>();
    let batch = 16;
    let data = Mat::<f32>::from_fn(batch, 6, |r, i| ((r + 2 * i) % 5) as f32 * 0.2 - 0.4);
    let mut cfg = NeuralConfig::new(0.02, 1.0);
    cfg.a_prime = APrime::Analytic;
    cfg.potential = Potential::Unnormalised;
    let clamped_k = Langevin::new(cfg).unwrap();
    let mut free_cfg = cfg;
    free_cfg.observed = Observed::Free;
    let free_k = Langevin::new(free_cfg).unwrap();
    let mut c = clamped_k
        .init(&m, Some(data.as_ref()), None, batch, 1)
        .unwrap();
    let mut f = free_k.init(&m, None, None, batch, 2).unwrap();
    let mut scratch = PcdScratch::new(&m, batch);
    let rates = LocalLearning::new(0.01);
    let mut update = |m: &mut HeeModel<f32>, k: &Langevin, steps| {
        pcd_step(
            m,
            k,
            &mut c,
            &free_k,
            &mut f,
            data.as_ref(),
            steps,
            &mut scratch,
            &rates,
        )
    };
    let w0 = m.weight(0).to_owned();
    for _ in 0..5 {
        let info = update(&mut m, &clamped_k, 3).unwrap();
        assert!(info.weight_grad_norm.is_finite() && info.free_sq_grad.is_finite());
    }
    assert_ne!(m.weight(0).to_owned(), w0, "the rule moved W");
    // HEE's potential for the chains is refused, and nothing moves.
    let mut hee_cfg = cfg;
    hee_cfg.potential = Potential::Normalised;
    let hee_k = Langevin::new(hee_cfg).unwrap();
    let w1 = m.weight(0).to_owned();
    let e = update(&mut m, &hee_k, 1).unwrap_err();
    assert!(e.to_string().contains("unnormalised"), "{e}");
    assert_eq!(m.weight(0).to_owned(), w1);
}

#[test]
fn an_update_on_clamped_chains_equals_a_step_that_clamps_again() {
    // Analytic layers: clamping the same data again only repeats the
    // refresh the last resync did, so pcd_update = pcd_step bit for bit.
    let m0 = linear_gaussian_model(5, &[6, 4, 2], 0.5).cast::<f32>();
    let batch = 8;
    let data = Mat::<f32>::from_fn(batch, 6, |r, i| ((r + 3 * i) % 4) as f32 * 0.3 - 0.5);
    let mut cfg = NeuralConfig::new(0.02, 1.0);
    cfg.a_prime = APrime::Analytic;
    cfg.potential = Potential::Unnormalised;
    let ck = Langevin::new(cfg).unwrap();
    let mut free_cfg = cfg;
    free_cfg.observed = Observed::Free;
    let fk = Langevin::new(free_cfg).unwrap();
    let rates = LocalLearning::new(0.01);
    let run = |again: bool| {
        let mut m = m0.clone();
        let mut c = ck.init(&m, Some(data.as_ref()), None, batch, 1).unwrap();
        let mut f = fk.init(&m, None, None, batch, 2).unwrap();
        let mut s = PcdScratch::new(&m, batch);
        for _ in 0..4 {
            if again {
                pcd_step(
                    &mut m,
                    &ck,
                    &mut c,
                    &fk,
                    &mut f,
                    data.as_ref(),
                    2,
                    &mut s,
                    &rates,
                )
                .unwrap();
            } else {
                pcd_update(&mut m, &ck, &mut c, &fk, &mut f, 2, &mut s, &rates).unwrap();
            }
        }
        (
            m.weight(0).to_owned(),
            c.state.x().to_owned(),
            f.state.x().to_owned(),
        )
    };
    assert_eq!(run(true), run(false));
}

/// The free chains' kernel of the baseline: plain Langevin on Ẽ, x₀ free.
fn free_kernel(dt: f64) -> Langevin {
    let mut cfg = NeuralConfig::new(dt, 1.0);
    cfg.a_prime = APrime::Analytic;
    cfg.potential = Potential::Unnormalised;
    cfg.observed = Observed::Free;
    Langevin::new(cfg).unwrap()
}

#[test]
fn the_free_chains_reach_the_ebm_joint() {
    // Ẽ quadratic: the free chains must sample N(J⁻¹b, J⁻¹). Euler-Maruyama
    // with h = Δt/τ keeps the mean exact and has stationary covariance
    // (J − hJ²/2)⁻¹ (the fixed point of C = (I − hJ)C(I − hJ) + 2hI), the
    // reference for the second moments; 5 SE from the draws themselves.
    let m = linear_gaussian_model(3, &[4, 3, 2], 0.5);
    let n = m.total_size();
    let (j, mean) = ebm_joint(&m);
    let h = 0.02;
    let k = free_kernel(h);
    let batch = 4000;
    let mut c = k.init(&m, None, None, batch, 7).unwrap();
    for _ in 0..3000 {
        k.step(&m, &mut c).unwrap();
    }
    let x = c.state.x().to_owned();
    let j2 = &j * &j;
    let jd = Mat::from_fn(n, n, |a, b| j[(a, b)] - 0.5 * h * j2[(a, b)]);
    let cov = jd
        .llt(Side::Lower)
        .unwrap()
        .solve(Mat::<f64>::identity(n, n));
    let stat = |f: &dyn Fn(usize) -> f64| {
        let v: Vec<f64> = (0..batch).map(f).collect();
        let mu = v.iter().sum::<f64>() / batch as f64;
        let var = v.iter().map(|a| (a - mu).powi(2)).sum::<f64>() / (batch - 1) as f64;
        (mu, (var / batch as f64).sqrt())
    };
    let mut worst: f64 = 0.0;
    let mut worst_moved: f64 = 0.0;
    for a in 0..n {
        let (mu, se) = stat(&|r| x[(r, a)]);
        worst = worst.max((mu - mean[a]).abs() / se);
        // Power: the mean of a target moved by 0.2.
        worst_moved = worst_moved.max((mu - mean[a] - 0.2).abs() / se);
        for b in a..n {
            let (c2, se2) = stat(&|r| (x[(r, a)] - mean[a]) * (x[(r, b)] - mean[b]));
            worst = worst.max((c2 - cov[(a, b)]).abs() / se2);
        }
    }
    assert!(worst <= 5.0, "free chains {worst:.2} SE from N(J⁻¹b, J⁻¹)");
    assert!(worst_moved > 5.0, "a moved mean passed");
}

#[test]
fn a_pcd_update_with_long_chains_raises_the_exact_log_p() {
    // One rule application after 3000 steps of both phases (60 τ at
    // h = 0.02) must move log p(x₀) by its first-order gain lr·|∇|²: the
    // rule's direction is an unbiased estimate of ∇ (tested above), so the
    // realised gain lr·∇·ĝ is within lr·|∇|·|ĝ − ∇| of it. Two-sided: at
    // 2000 chains |ĝ − ∇| is a small fraction of |∇| here.
    let m0 = linear_gaussian_model(3, &[4, 3, 2], 0.5);
    let x0 = [0.4, -0.3, 0.8, 0.1];
    let batch = 2000;
    let data = Mat::<f64>::from_fn(batch, 4, |_, i| x0[i]);
    let mut cfg = NeuralConfig::new(0.02, 1.0);
    cfg.a_prime = APrime::Analytic;
    cfg.potential = Potential::Unnormalised;
    let ck = Langevin::new(cfg).unwrap();
    let fk = free_kernel(0.02);
    let mut m = m0.clone();
    let mut c = ck.init(&m, Some(data.as_ref()), None, batch, 1).unwrap();
    let mut f = fk.init(&m, None, None, batch, 2).unwrap();
    let mut s = PcdScratch::new(&m, batch);
    let lr = 1e-3;
    let mut rates = LocalLearning::new(lr);
    rates.lr_biases = lr;
    let before = log_p0(&m, &x0);
    // The exact gradient in W by central differences.
    let hh = 1e-5;
    let mut grad_sq = 0.0;
    for l in 0..m0.top() {
        for i in 0..m0.size(l) {
            for k in 0..m0.size(l + 1) {
                let (mut mp, mut mm) = (m0.clone(), m0.clone());
                mp.weight_mut(l)[(i, k)] += hh;
                mm.weight_mut(l)[(i, k)] -= hh;
                grad_sq += ((log_p0(&mp, &x0) - log_p0(&mm, &x0)) / (2.0 * hh)).powi(2);
            }
        }
        for i in 0..m0.size(l) {
            let (mut mp, mut mm) = (m0.clone(), m0.clone());
            mp.bias_mut(l)[i] += hh;
            mm.bias_mut(l)[i] -= hh;
            grad_sq += ((log_p0(&mp, &x0) - log_p0(&mm, &x0)) / (2.0 * hh)).powi(2);
        }
    }
    for i in 0..m0.size(m0.top()) {
        let (mut mp, mut mm) = (m0.clone(), m0.clone());
        mp.bias_mut(m0.top())[i] += hh;
        mm.bias_mut(m0.top())[i] -= hh;
        grad_sq += ((log_p0(&mp, &x0) - log_p0(&mm, &x0)) / (2.0 * hh)).powi(2);
    }
    pcd_step(
        &mut m,
        &ck,
        &mut c,
        &fk,
        &mut f,
        data.as_ref(),
        3000,
        &mut s,
        &rates,
    )
    .unwrap();
    let gain = log_p0(&m, &x0) - before;
    let expected = lr * grad_sq;
    assert!(gain > 0.0, "the update lowered log p(x₀) by {}", -gain);
    assert!(
        (gain - expected).abs() < 0.25 * expected,
        "gain {gain:.3e} vs first-order {expected:.3e}"
    );
}
