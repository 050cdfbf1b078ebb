//! The tabulated log-normalisers (issue 18) against the reference
//! quadrature: the table's stated bound TABLE_TOLERANCE holds at random
//! points of its range (where cubic Hermite error is h⁴/384·|a⁗| ≈ 1e-9),
//! outside it the table is the quadrature itself, and the fast log joint
//! equals `energy_by_layer` to the same bound per unit.

use faer::Mat;
use hee_core::aprime::quadrature;
use hee_core::aprime::table::{NormaliserTable, TABLE_TOLERANCE};
use hee_core::model::log_joint::LogJoint;
use hee_core::{BaseEnergy, HeeModel, LayerSpec, Nonlinearity};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn energies() -> Vec<BaseEnergy> {
    vec![
        BaseEnergy::SmoothLaplace {
            sigma: 1.0,
            lambda: 1.0,
            delta: 0.1,
        },
        BaseEnergy::SmoothLaplace {
            sigma: 0.5,
            lambda: 4.0,
            delta: 0.01,
        },
        BaseEnergy::StudentT {
            sigma: 3.0,
            weight: 1.0,
            nu: 2.0,
        },
        BaseEnergy::StudentT {
            sigma: 1.0,
            weight: 2.0,
            nu: 0.5,
        },
    ]
}

#[test]
fn tables_meet_their_bound_against_quadrature() {
    let mut rng = ChaCha8Rng::seed_from_u64(18);
    for e in energies() {
        let t = NormaliserTable::for_energy(&e).unwrap();
        assert!(
            t.max_error() <= TABLE_TOLERANCE,
            "{e:?}: midpoint error {}",
            t.max_error()
        );
        let (lo, hi) = t.range();
        for _ in 0..2000 {
            let eta = rng.random_range(lo..hi);
            let (a, da) = t.eval(eta).unwrap();
            let m = quadrature::moments(&e, eta).unwrap();
            assert!(
                (a - m.log_normaliser).abs() <= TABLE_TOLERANCE,
                "{e:?} a({eta})"
            );
            assert!(
                (da - m.mean).abs() <= TABLE_TOLERANCE * e.sigma(),
                "{e:?} a′({eta})"
            );
        }
        // Outside the range: the quadrature, exactly.
        let eta = hi + 1.0;
        let m = quadrature::moments(&e, eta).unwrap();
        assert_eq!(t.eval(eta).unwrap(), (m.log_normaliser, m.mean));
    }
}

/// A table whose measured error exceeds TABLE_TOLERANCE is refused at
/// construction (a spacing 32 times the default's errs by ~32⁴ times
/// more); the default spacing of the same energy is accepted.
#[test]
fn a_table_worse_than_its_bound_is_refused() {
    let e = energies()[1];
    let s = e.sigma();
    let coarse = NormaliserTable::new(&e, -8.0 / s, 8.0 / s, 1.0 / s);
    match coarse {
        Err(hee_core::HeeError::Numerical { reason, .. }) => {
            assert!(reason.contains("TABLE_TOLERANCE"), "{reason}")
        }
        other => panic!("a coarse table must be refused: {other:?}"),
    }
    assert!(NormaliserTable::new(&e, -8.0 / s, 8.0 / s, 1.0 / (32.0 * s)).is_ok());
}

#[test]
fn fast_log_joint_matches_quadrature_joint() {
    let specs = [
        LayerSpec {
            size: 6,
            energy: BaseEnergy::Gaussian { sigma: 0.3 },
        },
        LayerSpec {
            size: 4,
            energy: energies()[0],
        },
        LayerSpec {
            size: 3,
            energy: energies()[2],
        },
    ];
    let mut m = HeeModel::<f64>::new(&specs, Nonlinearity::Tanh).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    m.randomize_weights(&mut rng, 3.0);
    let x = Mat::<f64>::from_fn(20, m.total_size(), |_, _| rng.random_range(-2.0..2.0));
    let lj = LogJoint::new(&m).unwrap();
    let eta = m.natural_params(x.as_ref()).unwrap();
    let fast = lj.layer_terms(&m, x.as_ref(), eta.as_ref()).unwrap();
    let reference = m.energy_by_layer(x.as_ref()).unwrap();
    for j in 0..20 {
        for l in 0..3 {
            let bound = TABLE_TOLERANCE * m.size(l) as f64 + 1e-9;
            assert!(
                (fast[(j, l)] - reference[(j, l)]).abs() <= bound,
                "({j}, {l})"
            );
        }
    }
    let ap = lj.a_prime(&m, eta.as_ref()).unwrap();
    let exact = m.exact_a_prime(eta.as_ref()).unwrap();
    for j in 0..20 {
        for c in 0..m.total_size() {
            assert!(
                (ap[(j, c)] - exact[(j, c)]).abs() <= 3.0 * TABLE_TOLERANCE,
                "a′ ({j}, {c})"
            );
        }
    }
    // A model with other energies is refused.
    let mut other = m.clone();
    other
        .set_energy(1, BaseEnergy::Gaussian { sigma: 1.0 })
        .unwrap();
    assert!(lj.layer_terms(&other, x.as_ref(), eta.as_ref()).is_err());
}
