//! Every rejected configuration gives a typed error naming the field, and a
//! run that leaves the finite numbers stops with an error, never NaN.

use faer::Mat;
use hee_core::{
    APrime, BaseEnergy, Dynamics, HeeError, HeeModel, InterneuronConfig, Langevin, LayerSpec,
    NeuralConfig, Nonlinearity, RowStreams, Workspace,
};

fn spec(size: usize, energy: BaseEnergy) -> LayerSpec {
    LayerSpec { size, energy }
}

fn gaussian_model() -> HeeModel<f64> {
    HeeModel::new(
        &[
            spec(3, BaseEnergy::gaussian(1.0)),
            spec(2, BaseEnergy::gaussian(1.0)),
        ],
        Nonlinearity::Identity,
    )
    .unwrap()
}

fn field_of(e: &HeeError) -> String {
    match e {
        HeeError::InvalidParameter { field, .. } => field.clone(),
        HeeError::DimensionMismatch { field, .. } => field.clone(),
        HeeError::NonFiniteInput { field, .. } => field.clone(),
        other => format!("{other}"),
    }
}

fn cfg_err(cfg: NeuralConfig) -> HeeError {
    Langevin::new(cfg).unwrap_err()
}

#[test]
fn non_positive_sigma_is_rejected() {
    for sigma in [0.0, -1.0, f64::NAN] {
        let e = HeeModel::<f64>::new(
            &[
                spec(2, BaseEnergy::gaussian(sigma)),
                spec(1, BaseEnergy::gaussian(1.0)),
            ],
            Nonlinearity::Identity,
        )
        .unwrap_err();
        assert_eq!(field_of(&e), "layers[0].energy.sigma", "{e}");
    }
    let e = HeeModel::<f64>::new(
        &[
            spec(2, BaseEnergy::gaussian(1.0)),
            spec(
                1,
                BaseEnergy::SmoothLaplace {
                    sigma: 1.0,
                    lambda: 1.0,
                    delta: 0.0,
                },
            ),
        ],
        Nonlinearity::Identity,
    )
    .unwrap_err();
    assert_eq!(field_of(&e), "layers[1].energy.delta");
    let e = HeeModel::<f64>::new(
        &[
            spec(2, BaseEnergy::gaussian(1.0)),
            spec(
                1,
                BaseEnergy::StudentT {
                    sigma: 1.0,
                    weight: 1.0,
                    nu: -2.0,
                },
            ),
        ],
        Nonlinearity::Identity,
    )
    .unwrap_err();
    assert_eq!(field_of(&e), "layers[1].energy.nu");
}

#[test]
fn empty_layers_and_single_layer_are_rejected() {
    let e = HeeModel::<f64>::new(
        &[
            spec(2, BaseEnergy::gaussian(1.0)),
            spec(0, BaseEnergy::gaussian(1.0)),
        ],
        Nonlinearity::Identity,
    )
    .unwrap_err();
    assert_eq!(field_of(&e), "layers[1].size");
    let e = HeeModel::<f64>::new(
        &[spec(2, BaseEnergy::gaussian(1.0))],
        Nonlinearity::Identity,
    )
    .unwrap_err();
    assert_eq!(field_of(&e), "layers");
}

#[test]
fn non_positive_dt_and_tau_are_rejected() {
    for v in [0.0, -0.1, f64::INFINITY] {
        assert_eq!(field_of(&cfg_err(NeuralConfig::new(v, 1.0))), "dt");
        assert_eq!(field_of(&cfg_err(NeuralConfig::new(0.01, v))), "tau");
    }
}

#[test]
fn bad_interneuron_settings_are_rejected() {
    for (ratio, k, field) in [
        (0.0, 10, "tau_eps/tau"),
        (-0.5, 10, "tau_eps/tau"),
        (1.0, 10, "tau_eps/tau"),
        (2.0, 10, "tau_eps/tau"),
        (0.01, 0, "substeps"),
    ] {
        let mut c = NeuralConfig::new(0.01, 1.0);
        c.a_prime = APrime::Interneurons(InterneuronConfig {
            tau_ratio: ratio,
            substeps: k,
        });
        let e = cfg_err(c);
        assert_eq!(field_of(&e), field, "{e}");
    }
    // A sub-step too long for the layer's curvature is caught at init.
    let m = gaussian_model();
    let mut c = NeuralConfig::new(0.5, 1.0);
    c.a_prime = APrime::Interneurons(InterneuronConfig {
        tau_ratio: 0.01,
        substeps: 2,
    });
    let k = Langevin::new(c).unwrap();
    let data = Mat::<f64>::zeros(4, 3);
    let e = k
        .init(&m, Some(data.as_ref()), None, 4, &mut RowStreams::new(0, 4))
        .unwrap_err();
    assert_eq!(field_of(&e), "substeps");
}

#[test]
fn analytic_a_prime_on_non_gaussian_layer_is_rejected() {
    let m = HeeModel::<f64>::new(
        &[
            spec(
                2,
                BaseEnergy::SmoothLaplace {
                    sigma: 1.0,
                    lambda: 1.0,
                    delta: 0.1,
                },
            ),
            spec(1, BaseEnergy::gaussian(1.0)),
        ],
        Nonlinearity::Identity,
    )
    .unwrap();
    let mut c = NeuralConfig::new(0.01, 1.0);
    c.a_prime = APrime::Analytic;
    let k = Langevin::new(c).unwrap();
    let data = Mat::<f64>::zeros(2, 2);
    let e = k
        .init(&m, Some(data.as_ref()), None, 2, &mut RowStreams::new(0, 2))
        .unwrap_err();
    assert!(matches!(e, HeeError::Unsupported(_)), "{e}");
}

#[test]
fn mismatched_dimensions_are_rejected() {
    let mut m = gaussian_model();
    let k = Langevin::new(NeuralConfig::new(0.01, 1.0)).unwrap();
    // Data with the wrong width.
    let data = Mat::<f64>::zeros(4, 5);
    let e = k
        .init(&m, Some(data.as_ref()), None, 4, &mut RowStreams::new(0, 4))
        .unwrap_err();
    assert_eq!(field_of(&e), "data");
    // Data with the wrong number of rows.
    let data = Mat::<f64>::zeros(3, 3);
    let e = k
        .init(&m, Some(data.as_ref()), None, 4, &mut RowStreams::new(0, 4))
        .unwrap_err();
    assert_eq!(field_of(&e), "data");
    // Streams that do not match the batch.
    let data = Mat::<f64>::zeros(4, 3);
    let e = k
        .init(&m, Some(data.as_ref()), None, 4, &mut RowStreams::new(0, 3))
        .unwrap_err();
    assert_eq!(field_of(&e), "streams");
    // Weights and biases of the wrong shape.
    let e = m
        .set_weight(0, Mat::<f64>::zeros(2, 3).as_ref())
        .unwrap_err();
    assert_eq!(field_of(&e), "W[0]");
    let e = m.set_bias(1, &[1.0, 2.0, 3.0]).unwrap_err();
    assert_eq!(field_of(&e), "b[1]");
    // A workspace for another batch size.
    let data = Mat::<f64>::zeros(4, 3);
    let mut streams = RowStreams::new(0, 4);
    let mut st = k
        .init(&m, Some(data.as_ref()), None, 4, &mut streams)
        .unwrap();
    let mut ws = Workspace::new(&m, 8, 32);
    let e = k.step(&m, &mut streams, &mut st, &mut ws).unwrap_err();
    assert_eq!(field_of(&e), "workspace");
}

#[test]
fn non_finite_data_and_parameters_are_rejected() {
    let mut m = gaussian_model();
    let k = Langevin::new(NeuralConfig::new(0.01, 1.0)).unwrap();
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let mut data = Mat::<f64>::zeros(4, 3);
        data[(2, 1)] = bad;
        let e = k
            .init(&m, Some(data.as_ref()), None, 4, &mut RowStreams::new(0, 4))
            .unwrap_err();
        match e {
            HeeError::NonFiniteInput {
                field, row, col, ..
            } => {
                assert_eq!((field.as_str(), row, col), ("data", 2, 1));
            }
            other => panic!("unexpected {other}"),
        }
    }
    let mut w = Mat::<f64>::zeros(3, 2);
    w[(1, 1)] = f64::NAN;
    assert_eq!(field_of(&m.set_weight(0, w.as_ref()).unwrap_err()), "W[0]");
    assert_eq!(
        field_of(&m.set_bias(0, &[0.0, f64::NAN, 0.0]).unwrap_err()),
        "b[0]"
    );
}

#[test]
fn divergence_stops_with_an_error_naming_the_cause() {
    let mut m = gaussian_model();
    m.set_weight(0, Mat::<f64>::from_fn(3, 2, |_, _| 3.0).as_ref())
        .unwrap();
    // h·λ_max ≫ 2: Euler–Maruyama is unstable and the state blows up.
    let mut c = NeuralConfig::new(5.0, 1.0);
    c.a_prime = APrime::Analytic;
    let k = Langevin::new(c).unwrap();
    let data = Mat::<f64>::from_fn(4, 3, |_, _| 1.0);
    let mut streams = RowStreams::new(0, 4);
    let mut st = k
        .init(&m, Some(data.as_ref()), None, 4, &mut streams)
        .unwrap();
    let mut ws = Workspace::new(&m, 4, c.chunk);
    let mut err = None;
    for _ in 0..2000 {
        if let Err(e) = k.step(&m, &mut streams, &mut st, &mut ws) {
            err = Some(e);
            break;
        }
    }
    let e = err.expect("an unstable step size must stop the run");
    match &e {
        HeeError::Diverged { step, cause, .. } => {
            assert!(*step > 0);
            assert!(cause.contains("step too large"), "{cause}");
        }
        other => panic!("unexpected {other}"),
    }
}
