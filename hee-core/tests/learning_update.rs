//! The learning step's update of W and b (spec §5): after each step the
//! weights are exactly W + rate·ΔW and the biases b + rate·Δb, element by
//! element, for the ΔW, Δb it reports (the step forms W + rate·ΔW block by
//! block beside ΔW and swaps it in, so this checks that path against the
//! plain formula), and an update whose ΔW is not finite is refused whole.

use faer::Mat;
use hee_core::learning::{learning_step, LearningScratch, LocalLearning};
use hee_core::{
    APrime, BaseEnergy, Dynamics, HeeError, HeeModel, InterneuronConfig, Langevin, LayerSpec,
    NeuralConfig, Nonlinearity,
};
use rand::SeedableRng;

fn specs(sizes: &[usize]) -> Vec<LayerSpec> {
    sizes
        .iter()
        .map(|&size| LayerSpec {
            size,
            energy: BaseEnergy::gaussian(1.0),
        })
        .collect()
}

/// Three learning steps at 1 and 2 threads: W_after = W_before + lr·ΔW and
/// b_after = b_before + lr·Δb, bit for bit (W has 40 and 70 columns, so the
/// update runs over several blocks of ΔW's columns, the last one partial).
#[test]
fn update_is_exactly_w_plus_rate_times_grad() {
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let mut m = HeeModel::<f32>::new(&specs(&[30, 40, 70]), Nonlinearity::Tanh).unwrap();
            m.randomize_weights(&mut rand_chacha::ChaCha8Rng::seed_from_u64(5), 0.3);
            let mut c = NeuralConfig::new(0.01, 1.0);
            c.chunk = 16;
            c.a_prime = APrime::Interneurons(InterneuronConfig {
                substeps: 2,
                ..InterneuronConfig::default()
            });
            let k = Langevin::new(c).unwrap();
            let b = 48;
            let data = Mat::<f32>::from_fn(b, 30, |r, j| ((r * 5 + j * 3) % 7) as f32 * 0.2 - 0.6);
            let mut chains = k.init(&m, Some(data.as_ref()), None, b, 11).unwrap();
            let mut scratch = LearningScratch::new(&m, b);
            let rates = LocalLearning {
                lr_weights: 0.07,
                lr_biases: 0.03,
                lr_energy: 0.0,
                ..LocalLearning::default()
            };
            let (lw, lb) = (rates.lr_weights as f32, rates.lr_biases as f32);
            // The chains start at x = 0, where the rates f(x) and so ΔW are 0.
            for _ in 0..2 {
                k.step(&m, &mut chains).unwrap();
            }
            for step in 0..3 {
                let w0: Vec<Mat<f32>> = (0..2).map(|l| m.weight(l).to_owned()).collect();
                let b0: Vec<Vec<f32>> = (0..3).map(|l| m.bias(l).to_vec()).collect();
                learning_step(&mut m, &k, &mut chains, &mut scratch, &rates).unwrap();
                let g = &scratch.grads;
                for l in 0..2 {
                    let (w, dw) = (m.weight(l), g.weights[l].as_ref());
                    assert!(dw.norm_l2() > 0.0, "ΔW[{l}] is not zero");
                    for j in 0..w.ncols() {
                        for i in 0..w.nrows() {
                            let want = w0[l][(i, j)] + lw * dw[(i, j)];
                            assert_eq!(
                                w[(i, j)].to_bits(),
                                want.to_bits(),
                                "{threads} threads, step {step}, W[{l}]({i}, {j})"
                            );
                        }
                    }
                }
                for l in 0..3 {
                    for (i, (&v, &v0)) in m.bias(l).iter().zip(&b0[l]).enumerate() {
                        let want = v0 + lb * g.biases[l][i];
                        assert_eq!(v.to_bits(), want.to_bits(), "step {step}, b[{l}][{i}]");
                    }
                }
            }
        });
    }
}

/// A ΔW that overflows f32 (data at 1e30 against presynaptic rates at
/// 1e20: every product is ~1e50) is refused before anything changes: the
/// error names the gradient, and W and b are those of before the step.
#[test]
fn non_finite_weight_gradient_refuses_the_update() {
    let mut m = HeeModel::<f32>::new(&specs(&[3, 2]), Nonlinearity::Identity).unwrap();
    // W = 0, so x₁'s conditional is centred on b₁ = 1e20, where it starts.
    m.set_bias(1, &[1e20, 1e20]).unwrap();
    let mut c = NeuralConfig::new(0.01, 1.0);
    c.a_prime = APrime::Analytic;
    let k = Langevin::new(c).unwrap();
    let b = 4;
    let data = Mat::<f32>::from_fn(b, 3, |_, _| 1e30);
    let latents = Mat::<f32>::from_fn(b, 2, |_, _| 1e20);
    let mut chains = k
        .init(&m, Some(data.as_ref()), Some(latents.as_ref()), b, 2)
        .unwrap();
    let mut scratch = LearningScratch::new(&m, b);
    let (w0, b0) = (
        m.weight(0).to_owned(),
        [m.bias(0).to_vec(), m.bias(1).to_vec()],
    );
    let e = learning_step(
        &mut m,
        &k,
        &mut chains,
        &mut scratch,
        &LocalLearning::new(0.1),
    )
    .expect_err("ΔW = ⟨d₀ x₁ᵀ⟩ ~ 1e50 overflows f32");
    match e {
        HeeError::NonFiniteInput { field, .. } => assert_eq!(field, "grad W[0]"),
        other => panic!("unexpected {other}"),
    }
    assert_eq!(
        m.weight(0),
        w0.as_ref(),
        "the refused update was not applied"
    );
    assert_eq!([m.bias(0).to_vec(), m.bias(1).to_vec()], b0);
}

/// Scratch made for another model with the same number of units (and so
/// the same buffers for the batch) but other weight shapes is refused with
/// an error naming it, rather than swapping in weights of the wrong shape.
#[test]
fn scratch_of_another_model_is_refused() {
    let mut m = HeeModel::<f32>::new(&specs(&[30, 40, 70]), Nonlinearity::Tanh).unwrap();
    let other = HeeModel::<f32>::new(&specs(&[40, 30, 70]), Nonlinearity::Tanh).unwrap();
    let k = Langevin::new(NeuralConfig::new(0.01, 1.0)).unwrap();
    let b = 8;
    let data = Mat::<f32>::zeros(b, 30);
    let mut chains = k.init(&m, Some(data.as_ref()), None, b, 1).unwrap();
    let mut scratch = LearningScratch::new(&other, b);
    let w0 = m.weight(0).to_owned();
    match learning_step(
        &mut m,
        &k,
        &mut chains,
        &mut scratch,
        &LocalLearning::new(0.1),
    ) {
        Err(HeeError::DimensionMismatch { field, .. }) => assert_eq!(field, "learning scratch"),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(m.weight(0), w0.as_ref());
}
