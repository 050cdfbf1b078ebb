//! ∂U/∂x and ∂U/∂θ agree with central finite differences of U (f64), for
//! random models of every base energy and nonlinearity.
//!
//! Tolerance: a central difference with step h has truncation error
//! h²/6·|U‴| (≈1e-10 here) and round-off/quadrature error ε_U/h with
//! ε_U ≈ 1e-11 (quadrature at 1e-12 relative, summed over ≤ 12 units), i.e.
//! ≈1e-6 for h = 1e-5. We allow 2e-5·max(1, |g|).

mod common;

use common::*;
use faer::Mat;
use hee_core::learning::EnergyReference;
use hee_core::HeeModel;
use proptest::prelude::*;

const H: f64 = 1e-5;

fn tol(g: f64) -> f64 {
    2e-5 * g.abs().max(1.0)
}

fn total_energy(m: &HeeModel<f64>, x: &Mat<f64>) -> f64 {
    m.energy_of(x.as_ref()).unwrap().iter().sum()
}

/// ∂U/∂x for a batch x (one sample per row).
fn exact_state_gradient(m: &HeeModel<f64>, x: &Mat<f64>, first_free: usize) -> Mat<f64> {
    let eta = m.natural_params(x.as_ref()).unwrap();
    let ap = m.exact_a_prime(eta.as_ref()).unwrap();
    m.state_gradient(x.as_ref(), eta.as_ref(), ap.as_ref(), first_free)
        .unwrap()
}

fn model_strategy() -> impl Strategy<Value = (u64, Vec<usize>, Vec<u8>, u8)> {
    (
        any::<u64>(),
        prop::collection::vec(1usize..4, 2..=4),
        prop::collection::vec(0u8..3, 4),
        0u8..3,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, rng_seed: proptest::test_runner::RngSeed::Fixed(20231013), ..ProptestConfig::default() })]

    #[test]
    fn state_gradient_matches_finite_differences((seed, sizes, kinds, f) in model_strategy()) {
        let m = random_model(seed, &sizes, &kinds, nonlinearity_of(f));
        let x = random_state(seed, m.total_size(), 2);
        // Every layer free, including the observation.
        let g = exact_state_gradient(&m, &x, 0);
        for i in 0..x.ncols() {
            let mut xp = x.clone();
            let mut xm = x.clone();
            for r in 0..x.nrows() {
                xp[(r, i)] += H;
                xm[(r, i)] -= H;
            }
            // Rows are independent samples, so the sum over rows of the
            // per-sample derivatives is the derivative of the total.
            let fd = (total_energy(&m, &xp) - total_energy(&m, &xm)) / (2.0 * H);
            let an: f64 = (0..x.nrows()).map(|r| g[(r, i)]).sum();
            prop_assert!((fd - an).abs() < tol(an), "unit {i}: fd {fd} vs analytic {an}");
        }
    }

    #[test]
    fn parameter_gradients_match_finite_differences((seed, sizes, kinds, f) in model_strategy()) {
        let m = random_model(seed, &sizes, &kinds, nonlinearity_of(f));
        let x = random_state(seed, m.total_size(), 3);
        let b = x.nrows() as f64;
        let eta = m.natural_params(x.as_ref()).unwrap();
        let ap = m.exact_a_prime(eta.as_ref()).unwrap();
        let grads = m.weight_grads(x.as_ref(), ap.as_ref()).unwrap();
        // Ascent direction of log p averaged over samples = −∂U/∂θ / B.
        for l in 0..m.top() {
            for i in 0..m.size(l) {
                for j in 0..m.size(l + 1) {
                    let mut mp = m.clone();
                    let mut mm = m.clone();
                    mp.weight_mut(l)[(i, j)] += H;
                    mm.weight_mut(l)[(i, j)] -= H;
                    let fd = (total_energy(&mp, &x) - total_energy(&mm, &x)) / (2.0 * H);
                    let an = -b * grads.weights[l][(i, j)];
                    prop_assert!((fd - an).abs() < tol(an), "W[{l}][{i},{j}]: fd {fd} vs {an}");
                }
            }
        }
        for l in 0..m.n_layers() {
            for i in 0..m.size(l) {
                let mut mp = m.clone();
                let mut mm = m.clone();
                mp.bias_mut(l)[i] += H;
                mm.bias_mut(l)[i] -= H;
                let fd = (total_energy(&mp, &x) - total_energy(&mm, &x)) / (2.0 * H);
                let an = -b * grads.biases[l][i];
                prop_assert!((fd - an).abs() < tol(an), "b[{l}][{i}]: fd {fd} vs {an}");
            }
            let ge = m.energy_param_grads(l, x.as_ref(), EnergyReference::Exact(eta.as_ref())).unwrap();
            let e = *m.energy(l);
            for p in 0..e.n_params() {
                let mut pp = e.params();
                let mut pm = e.params();
                pp[p] += H;
                pm[p] -= H;
                let mut mp = m.clone();
                let mut mm = m.clone();
                mp.set_energy(l, e.with_params(pp)).unwrap();
                mm.set_energy(l, e.with_params(pm)).unwrap();
                let fd = (total_energy(&mp, &x) - total_energy(&mm, &x)) / (2.0 * H);
                let an = -b * ge[p];
                prop_assert!((fd - an).abs() < tol(an), "layer {l} {}: fd {fd} vs {an}", e.param_names()[p]);
            }
        }
    }
}
