//! AIS estimates of a GRBM's log Z against the exact value of a model
//! small enough to enumerate (4 visibles, 10 hiddens): forward AIS (a
//! stochastic lower bound) and reverse AIS from exact samples of p(h) (a
//! stochastic upper bound) must each lie within 3 SE of it, and a target
//! moved by 6 SE must be refused by both.

use hee_core::faer::Mat;
use hee_core::grbm::exact::Enumeration;
use hee_core::grbm::Grbm;
use hee_eval::likelihood::grbm::{base_log_z, forward, reverse, GrbmAisConfig};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn model() -> Grbm {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut m = Grbm::new(4, 10, 1.0).unwrap();
    m.randomize_weights(&mut rng, 4.0);
    for i in 0..4 {
        m.mu[i] = rng.random_range(-0.5..0.5);
        m.log_var[i] = rng.random_range(-1.0f32..0.0);
    }
    for j in 0..10 {
        m.b[j] = rng.random_range(-1.0..1.0);
    }
    m
}

/// `n` exact draws of h from p(h), by inversion of the enumerated weights.
fn exact_hiddens(e: &Enumeration, nh: usize, n: usize) -> Mat<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let mut h = Mat::zeros(n, nh);
    for r in 0..n {
        let u: f64 = rng.random();
        let (mut acc, mut index) = (0.0, e.weights.len() - 1);
        for (k, p) in e.weights.iter().enumerate() {
            acc += p;
            if u < acc {
                index = k;
                break;
            }
        }
        for j in 0..nh {
            h[(r, j)] = ((index >> j) & 1) as f32;
        }
    }
    h
}

#[test]
fn ais_brackets_the_exact_log_z_from_both_sides() {
    let m = model();
    let e = Enumeration::new(&m).unwrap();
    // The base model's log Z₀ is exact: with W = 0 the enumeration agrees.
    let mut flat = m.clone();
    flat.w = Mat::zeros(4, 10);
    let e0 = Enumeration::new(&flat).unwrap();
    assert!((e0.log_z - base_log_z(&m)).abs() < 1e-9);
    let cfg = GrbmAisConfig {
        steps: 300,
        chains: 400,
        seed: 3,
    };
    let fwd = forward(&m, &cfg).unwrap();
    let rev = reverse(&m, exact_hiddens(&e, 10, 400), &cfg).unwrap();
    // Both SEs are of the order of 0.01 here, while log Z − log Z₀ is
    // several nats: the path does real work.
    assert!((e.log_z - fwd.log_z0).abs() > 1.0);
    for (what, est) in [("forward", &fwd), ("reverse", &rev)] {
        let z = (est.log_z - e.log_z) / est.se;
        assert!(
            z.abs() <= 3.0,
            "{what} AIS {:.4} ± {:.4} vs exact {:.4} ({z:.2} SE)",
            est.log_z,
            est.se,
            e.log_z
        );
        assert!(est.se > 0.0 && est.se < 0.1, "{what} SE {}", est.se);
        for shift in [-6.0, 6.0] {
            let moved = e.log_z + shift * est.se;
            assert!(((est.log_z - moved) / est.se).abs() > 3.0);
        }
    }
    // One temperature (plain importance sampling from the base, 50 chains):
    // forward falls below and reverse above, by more than their own SE, so
    // the bounds' directions are real.
    let short = GrbmAisConfig {
        steps: 1,
        chains: 50,
        ..cfg
    };
    let f3 = forward(&m, &short).unwrap();
    let r3 = reverse(&m, exact_hiddens(&e, 10, 50), &short).unwrap();
    assert!(
        f3.log_z < e.log_z - 3.0 * f3.se,
        "short forward {} vs {}",
        f3.log_z,
        e.log_z
    );
    assert!(
        r3.log_z > e.log_z + 3.0 * r3.se,
        "short reverse {} vs {}",
        r3.log_z,
        e.log_z
    );
}
