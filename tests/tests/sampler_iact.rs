//! hee-core's Langevin kernel and hee-eval's IACT estimator agree with an
//! exact result: on a one-latent gaussian model the Euler–Maruyama chain
//! is an AR(1) process x ← (1 − hλ)x + … with λ the posterior precision,
//! whose integrated autocorrelation time is (1 + φ)/(1 − φ), φ = 1 − hλ.

use faer::Mat;
use hee_core::reference::linear_gaussian::LinearGaussian;
use hee_core::{
    APrime, BaseEnergy, Dynamics, HeeModel, Langevin, LayerSpec, NeuralConfig, Nonlinearity,
};
use hee_eval::diagnostics::iact;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, rng_seed: proptest::test_runner::RngSeed::Fixed(20231013), ..ProptestConfig::default() })]

    /// 64 chains of 20k steps: the estimator's relative error is a few
    /// percent for τ ≤ 40 (Monte Carlo of the autocorrelation sum); allow 10%.
    #[test]
    fn langevin_iact_matches_ar1(w in 0.2f64..2.0, sigma0 in 0.5f64..1.5, h_frac in 0.05f64..0.5) {
        let specs = [
            LayerSpec { size: 1, energy: BaseEnergy::gaussian(sigma0) },
            LayerSpec { size: 1, energy: BaseEnergy::gaussian(1.0) },
        ];
        let mut m = HeeModel::<f64>::new(&specs, Nonlinearity::Identity).unwrap();
        m.set_weight(0, Mat::from_fn(1, 1, |_, _| w).as_ref()).unwrap();
        let lambda = LinearGaussian::from_model(&m).unwrap().precision()[(0, 0)];
        let mut cfg = NeuralConfig::new(h_frac / lambda, 1.0);
        cfg.a_prime = APrime::Analytic;
        let k = Langevin::new(cfg).unwrap();
        let chains = 64;
        let data = Mat::<f64>::from_fn(chains, 1, |_, _| 0.3);
        let mut run = k.init(&m, Some(data.as_ref()), None, chains, 9).unwrap();
        for _ in 0..2000 {
            k.step(&m, &mut run).unwrap();
        }
        let mut series: Vec<Vec<f64>> = (0..chains).map(|_| Vec::with_capacity(20_000)).collect();
        for _ in 0..20_000 {
            k.step(&m, &mut run).unwrap();
            let x = run.state.x();
            for (c, s) in series.iter_mut().enumerate() {
                s.push(x[(c, 1)]);
            }
        }
        let phi = 1.0 - h_frac;
        let exact = (1.0 + phi) / (1.0 - phi);
        let est = iact(&series).unwrap();
        prop_assert!((est / exact - 1.0).abs() < 0.1, "iact {est} vs exact {exact}");
    }
}
