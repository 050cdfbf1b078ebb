//! Every rejected configuration gives a typed error naming the field, and a
//! run that leaves the finite numbers stops with an error, never NaN.

use faer::Mat;
use hee_core::learning::{train_minibatch, LearningScratch, LocalLearning, MinibatchSchedule};
use hee_core::{
    APrime, BaseEnergy, Dynamics, HeeError, HeeModel, InterneuronConfig, Langevin, LayerSpec,
    NeuralConfig, Nonlinearity, RowStreams,
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
    let e = k.init(&m, Some(data.as_ref()), None, 4, 0).unwrap_err();
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
    let e = k.init(&m, Some(data.as_ref()), None, 2, 0).unwrap_err();
    assert!(matches!(e, HeeError::Unsupported(_)), "{e}");
}

#[test]
fn mismatched_dimensions_are_rejected() {
    let mut m = gaussian_model();
    let k = Langevin::new(NeuralConfig::new(0.01, 1.0)).unwrap();
    // Data with the wrong width.
    let data = Mat::<f64>::zeros(4, 5);
    let e = k.init(&m, Some(data.as_ref()), None, 4, 0).unwrap_err();
    assert_eq!(field_of(&e), "data");
    // Data with the wrong number of rows.
    let data = Mat::<f64>::zeros(3, 3);
    let e = k.init(&m, Some(data.as_ref()), None, 4, 0).unwrap_err();
    assert_eq!(field_of(&e), "data");
    // Latents of the wrong width (they exclude the observed layer).
    let data = Mat::<f64>::zeros(4, 3);
    let latents = Mat::<f64>::zeros(4, 5);
    let e = k
        .init(&m, Some(data.as_ref()), Some(latents.as_ref()), 4, 0)
        .unwrap_err();
    assert_eq!(field_of(&e), "latents");
    // Streams replaced by a set for another batch.
    let mut run = k.init(&m, Some(data.as_ref()), None, 4, 0).unwrap();
    run.streams = RowStreams::new(0, 3);
    assert_eq!(field_of(&k.step(&m, &mut run).unwrap_err()), "streams");
    // Weights and biases of the wrong shape.
    let e = m
        .set_weight(0, Mat::<f64>::zeros(2, 3).as_ref())
        .unwrap_err();
    assert_eq!(field_of(&e), "W[0]");
    let e = m.set_bias(1, &[1.0, 2.0, 3.0]).unwrap_err();
    assert_eq!(field_of(&e), "b[1]");
    // A workspace for another batch size.
    let mut run = k.init(&m, Some(data.as_ref()), None, 4, 0).unwrap();
    let other = k
        .init(&m, Some(Mat::<f64>::zeros(8, 3).as_ref()), None, 8, 0)
        .unwrap();
    run.workspace = other.workspace;
    assert_eq!(field_of(&k.step(&m, &mut run).unwrap_err()), "workspace");
}

/// A workspace cut for another chunk size used to be ignored silently: the
/// parallel zip stopped at the shorter input and the last samples never
/// moved. It is a typed error now.
#[test]
fn workspace_of_another_chunk_size_is_rejected() {
    let m = gaussian_model();
    let batch = 64;
    let data = Mat::<f64>::zeros(batch, 3);
    let mut c16 = NeuralConfig::new(0.01, 1.0);
    c16.chunk = 16;
    let k32 = Langevin::new(NeuralConfig::new(0.01, 1.0)).unwrap();
    let k16 = Langevin::new(c16).unwrap();
    let mut run = k32.init(&m, Some(data.as_ref()), None, batch, 0).unwrap();
    let other = k16.init(&m, Some(data.as_ref()), None, batch, 0).unwrap();
    run.workspace = other.workspace;
    let e = k32.step(&m, &mut run).unwrap_err();
    assert_eq!(field_of(&e), "workspace chunk", "{e}");
    // And the kernel with the other chunk refuses chains built for 32.
    let mut run = k32.init(&m, Some(data.as_ref()), None, batch, 0).unwrap();
    assert_eq!(
        field_of(&k16.step(&m, &mut run).unwrap_err()),
        "workspace chunk"
    );
}

/// Public functions that take matrices check their shapes.
#[test]
fn wrong_shaped_matrices_are_rejected() {
    let m = gaussian_model(); // 3 + 2 units
    let x = Mat::<f64>::zeros(4, 5);
    let bad = Mat::<f64>::zeros(4, 6);
    let short = Mat::<f64>::zeros(3, 5);
    assert_eq!(field_of(&m.natural_params(bad.as_ref()).unwrap_err()), "x");
    assert_eq!(field_of(&m.exact_a_prime(bad.as_ref()).unwrap_err()), "eta");
    let e = m
        .state_gradient(x.as_ref(), short.as_ref(), x.as_ref(), 1)
        .unwrap_err();
    assert_eq!(field_of(&e), "eta");
    let e = m
        .state_gradient(x.as_ref(), x.as_ref(), bad.as_ref(), 1)
        .unwrap_err();
    assert_eq!(field_of(&e), "a_prime");
    let e = m
        .state_gradient(x.as_ref(), x.as_ref(), x.as_ref(), 2)
        .unwrap_err();
    assert_eq!(field_of(&e), "first_free");
    assert_eq!(
        field_of(&m.weight_grads(x.as_ref(), short.as_ref()).unwrap_err()),
        "a_prime"
    );
    assert_eq!(field_of(&m.energy_of(bad.as_ref()).unwrap_err()), "x");
    // Correct shapes pass and keep the layout (batch x units).
    assert_eq!(m.natural_params(x.as_ref()).unwrap().shape(), (4, 5));
}

/// An out-of-range layer index is a typed error wherever a caller gives one.
#[test]
fn out_of_range_layer_index_is_rejected() {
    let mut m = gaussian_model(); // layers 0 and 1
    assert_eq!(field_of(&m.set_bias(2, &[0.0]).unwrap_err()), "layer index");
    assert_eq!(
        field_of(&m.set_energy(5, BaseEnergy::gaussian(1.0)).unwrap_err()),
        "layer index"
    );
    assert_eq!(
        field_of(
            &m.set_weight(1, Mat::<f64>::zeros(2, 2).as_ref())
                .unwrap_err()
        ),
        "weight index"
    );
    let x = Mat::<f64>::zeros(4, 5);
    let e = m
        .energy_param_grads(
            2,
            x.as_ref(),
            hee_core::learning::EnergyReference::Exact(x.as_ref()),
        )
        .unwrap_err();
    assert_eq!(field_of(&e), "layer index");
    let k = Langevin::new(NeuralConfig::new(0.01, 1.0)).unwrap();
    let run = k
        .init(&m, Some(Mat::<f64>::zeros(4, 3).as_ref()), None, 4, 0)
        .unwrap();
    assert_eq!(
        field_of(&run.state.layer(&m, 2).unwrap_err()),
        "layer index"
    );
    assert_eq!(run.state.layer(&m, 1).unwrap().shape(), (4, 2));
}

fn laplace_model(lambda: f64, delta: f64) -> HeeModel<f64> {
    HeeModel::new(
        &[
            spec(3, BaseEnergy::gaussian(1.0)),
            spec(
                2,
                BaseEnergy::SmoothLaplace {
                    sigma: 1.0,
                    lambda,
                    delta,
                },
            ),
            spec(2, BaseEnergy::gaussian(1.0)),
        ],
        Nonlinearity::Identity,
    )
    .unwrap()
}

/// The neurons' Δt is checked at init against the stiffest energy, as the
/// interneurons' sub-step is: a sharp smooth-laplace kink (max φ″ = 1/σ² +
/// λ/δ = 1 + 1/0.01 = 101) at 3× the stable Δt is refused, naming `dt`.
#[test]
fn neuron_step_too_long_for_a_sharp_kink_is_rejected() {
    let m = laplace_model(1.0, 0.01);
    let stable = 1.0 / m.energy(1).max_curvature();
    let data = Mat::<f64>::zeros(4, 3);
    for a in [APrime::Quadrature, APrime::default()] {
        let mut c = NeuralConfig::new(3.0 * stable, 1.0);
        c.a_prime = a;
        let e = Langevin::new(c)
            .unwrap()
            .init(&m, Some(data.as_ref()), None, 4, 0)
            .unwrap_err();
        assert_eq!(field_of(&e), "dt", "{e}");
        // Just under the limit the neurons are accepted (the interneurons'
        // sub-step is then what the default estimator has to respect).
        let mut c = NeuralConfig::new(0.9 * stable, 1.0);
        c.a_prime = APrime::Quadrature;
        assert!(Langevin::new(c)
            .unwrap()
            .init(&m, Some(data.as_ref()), None, 4, 0)
            .is_ok());
    }
}

/// The top layer's A′ is never read by inference, so no interneurons run
/// there and their stability does not constrain Δt: a stiff top layer that
/// the interneurons' sub-step could not handle is accepted.
#[test]
fn stiff_top_layer_does_not_constrain_the_step() {
    let m = HeeModel::<f64>::new(
        &[
            spec(3, BaseEnergy::gaussian(1.0)),
            spec(
                2,
                BaseEnergy::SmoothLaplace {
                    sigma: 1.0,
                    lambda: 1.0,
                    delta: 0.2,
                },
            ),
        ],
        Nonlinearity::Identity,
    )
    .unwrap();
    // Top max φ″ = 6; neurons h·6 = 0.6 < 1. The default estimator (Auto)
    // is analytic on the gaussian layer 0 and used to run interneurons on
    // the sparse top layer: sub-step 0.1/(2·0.01) = 5, 5·6 = 30 ≫ 1 —
    // refused before, accepted now.
    let mut c = NeuralConfig::new(0.1, 1.0);
    c.a_prime = APrime::Auto(InterneuronConfig {
        tau_ratio: 0.01,
        substeps: 2,
    });
    let k = Langevin::new(c).unwrap();
    let mut run = k
        .init(&m, Some(Mat::<f64>::zeros(4, 3).as_ref()), None, 4, 0)
        .unwrap();
    for _ in 0..50 {
        k.step(&m, &mut run).unwrap();
    }
    // The top layer's A′_L(b_L) is exact and the same for every sample.
    let want = hee_core::aprime::quadrature::moments(m.energy(1), 0.0)
        .unwrap()
        .mean;
    let ap = run.state.a_prime();
    for r in 0..4 {
        assert_eq!(ap[(r, 3)], want);
        assert_eq!(
            run.state.eps()[(r, 3)],
            0.0,
            "no population on the top layer"
        );
    }
}

/// Learning an energy parameter can make a layer stiffer during a run: every
/// proposed update is re-checked against the interneurons' sub-step, and one
/// that would break it stops training with an error naming `substeps`,
/// leaving the model as it was.
#[test]
fn energy_learning_that_stiffens_a_layer_is_stopped() {
    // Strong weights and data at 0 hold the posterior of layer 1 much closer
    // to 0 than its conditional p(x₁ | η₁) (which the interneurons sample),
    // so the rule Δθ ∝ −∂φ/∂θ(x) + ∂φ/∂θ(ε) raises λ and lowers σ: layer 1
    // gets stiffer until max φ″ = 1/σ² + λ/δ reaches the sub-step's limit.
    let mut m = laplace_model(0.1, 0.05);
    let mut c = NeuralConfig::new(0.02, 1.0);
    c.a_prime = APrime::Interneurons(InterneuronConfig {
        tau_ratio: 0.01,
        substeps: 2,
    });
    // hε = 0.02/(2·0.01) = 1: needs max φ″ < 1; every layer here has φ″ ≥ 1.
    assert_eq!(
        field_of(
            &Langevin::new(c)
                .unwrap()
                .init(&m, Some(Mat::<f64>::zeros(4, 3).as_ref()), None, 4, 0)
                .unwrap_err()
        ),
        "substeps"
    );
    // With K = 4, hε = 0.5: max φ″ must stay below 2, so λ/δ < 1, λ < 0.05.
    c.a_prime = APrime::Interneurons(InterneuronConfig {
        tau_ratio: 0.01,
        substeps: 4,
    });
    m.set_energy(
        1,
        BaseEnergy::SmoothLaplace {
            sigma: 1.0,
            lambda: 0.04,
            delta: 0.05,
        },
    )
    .unwrap();
    for l in [0, 2] {
        m.set_energy(l, BaseEnergy::gaussian(1.2)).unwrap();
    }
    m.set_weight(
        0,
        Mat::<f64>::from_fn(3, 2, |i, j| if (i + j) % 2 == 0 { 2.0 } else { -1.0 }).as_ref(),
    )
    .unwrap();
    let k = Langevin::new(c).unwrap();
    let batch = 8;
    let data = Mat::<f64>::zeros(batch, 3);
    let mut run = k.init(&m, Some(data.as_ref()), None, batch, 1).unwrap();
    let mut scratch = LearningScratch::new(&m, batch);
    let rates = LocalLearning {
        lr_weights: 0.0,
        lr_biases: 0.0,
        lr_energy: 0.01,
        ..LocalLearning::default()
    };
    let schedule = MinibatchSchedule {
        warmup_steps: 0,
        learning_steps: 1,
        steps_per_update: 1,
    };
    let mut failed = None;
    for _ in 0..200 {
        let before = *m.energy(1);
        match train_minibatch(
            &mut m,
            &k,
            &mut run,
            &mut scratch,
            data.as_ref(),
            &schedule,
            &rates,
        ) {
            Ok(_) => {}
            Err(e) => {
                failed = Some((e, before));
                break;
            }
        }
    }
    let (e, before) = failed.expect("learning lambda upwards must hit the sub-step limit");
    assert_eq!(field_of(&e), "substeps", "{e}");
    assert_eq!(*m.energy(1), before, "the refused update was not applied");
    let c1 = m.energy(1).max_curvature();
    assert!(c.h_eps() * c1 < 1.0, "the model stays within the limit");
}

/// Interneurons that diverge (here: a kernel whose sub-step was made far too
/// long after `init` checked it) report the interneurons' sub-step as the
/// cause, not the neurons' Δt.
#[test]
fn interneuron_divergence_names_the_sub_step() {
    let m = laplace_model(0.5, 0.2);
    let mut c = NeuralConfig::new(0.01, 1.0);
    c.a_prime = APrime::Interneurons(InterneuronConfig::default());
    let k = Langevin::new(c).unwrap();
    let data = Mat::<f64>::from_fn(4, 3, |r, j| (r + j) as f64);
    let mut run = k.init(&m, Some(data.as_ref()), None, 4, 0).unwrap();
    let mut fast = k;
    fast.config.a_prime = APrime::Interneurons(InterneuronConfig {
        tau_ratio: 1e-4,
        substeps: 1,
    });
    let mut err = None;
    for _ in 0..1000 {
        if let Err(e) = fast.step(&m, &mut run) {
            err = Some(e);
            break;
        }
    }
    match err.expect("hε·max φ″ = 100·3.5 must diverge") {
        HeeError::Diverged { layer, cause, .. } => {
            assert!(layer < m.top(), "layer {layer}");
            assert!(
                cause.contains("interneurons") && cause.contains("substeps"),
                "{cause}"
            );
        }
        other => panic!("unexpected {other}"),
    }
}

#[test]
fn non_finite_data_and_parameters_are_rejected() {
    let mut m = gaussian_model();
    let k = Langevin::new(NeuralConfig::new(0.01, 1.0)).unwrap();
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let mut data = Mat::<f64>::zeros(4, 3);
        data[(2, 1)] = bad;
        let e = k.init(&m, Some(data.as_ref()), None, 4, 0).unwrap_err();
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
    // Each energy alone allows h = 0.5 (max φ″ = 1), but the coupling
    // through W gives λ_max ≈ 1 + ‖W‖² ≈ 55: h·λ_max ≫ 2, Euler–Maruyama is
    // unstable and the state blows up.
    let mut c = NeuralConfig::new(0.5, 1.0);
    c.a_prime = APrime::Analytic;
    let k = Langevin::new(c).unwrap();
    let data = Mat::<f64>::from_fn(4, 3, |_, _| 1.0);
    let mut run = k.init(&m, Some(data.as_ref()), None, 4, 0).unwrap();
    let mut err = None;
    for _ in 0..2000 {
        if let Err(e) = k.step(&m, &mut run) {
            err = Some(e);
            break;
        }
    }
    let e = err.expect("an unstable step size must stop the run");
    match &e {
        HeeError::Diverged { step, cause, .. } => {
            assert!(*step > 0);
            assert!(
                cause.contains("neurons") && cause.contains("step too large"),
                "{cause}"
            );
        }
        other => panic!("unexpected {other}"),
    }
}
