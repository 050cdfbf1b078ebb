//! A run is a function of its seed: bit-identical with 1 or 2 rayon threads,
//! and different for different seeds.

use faer::Mat;
use hee_core::{
    APrime, BaseEnergy, Dynamics, HeeModel, InterneuronConfig, Langevin, LayerSpec, NeuralConfig,
    Nonlinearity,
};
use rand::SeedableRng;

fn run(seed: u64, threads: usize) -> Vec<f32> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| {
        let specs = [
            LayerSpec {
                size: 20,
                energy: BaseEnergy::gaussian(1.0),
            },
            LayerSpec {
                size: 12,
                energy: BaseEnergy::SmoothLaplace {
                    sigma: 1.0,
                    lambda: 0.5,
                    delta: 0.3,
                },
            },
            LayerSpec {
                size: 6,
                energy: BaseEnergy::StudentT {
                    sigma: 1.0,
                    weight: 0.5,
                    nu: 3.0,
                },
            },
        ];
        let mut m = HeeModel::<f32>::new(&specs, Nonlinearity::Tanh).unwrap();
        m.randomize_weights(&mut rand_chacha::ChaCha8Rng::seed_from_u64(1), 1.0);
        let mut c = NeuralConfig::new(0.01, 1.0);
        c.a_prime = APrime::Auto(InterneuronConfig::default());
        c.chunk = 8;
        let k = Langevin::new(c).unwrap();
        let b = 70;
        let data = Mat::<f32>::from_fn(b, 20, |r, j| ((r * 7 + j) % 5) as f32 * 0.3);
        let mut run = k.init(&m, Some(data.as_ref()), None, b, seed).unwrap();
        for _ in 0..50 {
            k.step(&m, &mut run).unwrap();
        }
        let (x, ap) = (run.state.x(), run.state.a_prime());
        let mut out = Vec::new();
        for r in 0..b {
            for i in 0..m.total_size() {
                out.push(x[(r, i)]);
                out.push(ap[(r, i)]);
            }
        }
        out
    })
}

#[test]
fn bit_identical_across_thread_counts() {
    let one = run(42, 1);
    let two = run(42, 2);
    assert!(one
        .iter()
        .zip(&two)
        .all(|(a, b)| a.to_bits() == b.to_bits()));
    let other = run(43, 2);
    assert!(one.iter().zip(&other).any(|(a, b)| a != b));
}

/// Chains saved through the public views (state parts, stream positions)
/// and resumed continue bit for bit as if never stopped.
#[test]
fn resumed_chains_continue_bit_for_bit() {
    use hee_core::{RowStreams, SamplerState};
    let specs = [
        LayerSpec {
            size: 6,
            energy: BaseEnergy::gaussian(1.0),
        },
        LayerSpec {
            size: 5,
            energy: BaseEnergy::SmoothLaplace {
                sigma: 1.0,
                lambda: 0.5,
                delta: 0.3,
            },
        },
        LayerSpec {
            size: 3,
            energy: BaseEnergy::gaussian(1.0),
        },
    ];
    let mut m = HeeModel::<f32>::new(&specs, Nonlinearity::Tanh).unwrap();
    m.randomize_weights(&mut rand_chacha::ChaCha8Rng::seed_from_u64(2), 1.0);
    let k = Langevin::new(NeuralConfig::new(0.02, 1.0)).unwrap();
    let data = Mat::<f32>::from_fn(10, 6, |r, j| ((r + 2 * j) % 5) as f32 * 0.2);
    let mut whole = k.init(&m, Some(data.as_ref()), None, 10, 5).unwrap();
    let mut cut = k.init(&m, Some(data.as_ref()), None, 10, 5).unwrap();
    for _ in 0..30 {
        k.step(&m, &mut whole).unwrap();
        k.step(&m, &mut cut).unwrap();
    }
    let s = &cut.state;
    let state =
        SamplerState::from_parts(&m, s.x(), s.eta(), s.a_prime(), s.eps(), s.aux(), s.steps())
            .unwrap();
    let streams = RowStreams::from_snapshot(&cut.streams.snapshot());
    let mut resumed = k.resume(&m, state, streams).unwrap();
    for _ in 0..30 {
        k.step(&m, &mut whole).unwrap();
        k.step(&m, &mut resumed).unwrap();
    }
    let (a, b) = (whole.state.x(), resumed.state.x());
    for r in 0..10 {
        for i in 0..14 {
            assert_eq!(a[(r, i)].to_bits(), b[(r, i)].to_bits());
        }
    }
    assert_eq!(resumed.state.steps(), 60);
    // A state for another model is refused.
    let bad = Mat::<f32>::zeros(10, 13);
    assert!(SamplerState::from_parts(
        &m,
        bad.as_ref(),
        bad.as_ref(),
        bad.as_ref(),
        bad.as_ref(),
        bad.as_ref(),
        0
    )
    .is_err());
}

/// Inference with learning at the size of the throughput benchmark
/// (784-256-64, batch 128: large enough that faer splits the whole-batch
/// weight-gradient product over the threads): the weights, biases and state
/// after 12 learning steps, as bits.
fn learning_run(threads: usize) -> Vec<u32> {
    use hee_core::learning::{learning_step, LearningScratch, LocalLearning};
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| {
        let specs: Vec<LayerSpec> = [784, 256, 64]
            .iter()
            .map(|&size| LayerSpec {
                size,
                energy: BaseEnergy::gaussian(1.0),
            })
            .collect();
        let mut m = HeeModel::<f32>::new(&specs, Nonlinearity::Tanh).unwrap();
        m.randomize_weights(&mut rand_chacha::ChaCha8Rng::seed_from_u64(3), 0.5);
        let mut c = NeuralConfig::new(0.01, 1.0);
        c.a_prime = APrime::Interneurons(InterneuronConfig {
            substeps: 4,
            ..InterneuronConfig::default()
        });
        let k = Langevin::new(c).unwrap();
        let b = 128;
        let data = Mat::<f32>::from_fn(b, 784, |r, j| ((r * 7 + j * 3) % 11) as f32 * 0.1 - 0.5);
        let mut chains = k.init(&m, Some(data.as_ref()), None, b, 9).unwrap();
        let mut scratch = LearningScratch::new(&m, b);
        let rates = LocalLearning {
            lr_weights: 0.05,
            lr_biases: 0.05,
            lr_energy: 0.0,
            ..LocalLearning::default()
        };
        for _ in 0..12 {
            learning_step(&mut m, &k, &mut chains, &mut scratch, &rates).unwrap();
        }
        let mut out = Vec::new();
        for l in 0..2 {
            let w = m.weight(l);
            for j in 0..w.ncols() {
                for i in 0..w.nrows() {
                    out.push(w[(i, j)].to_bits());
                }
            }
        }
        for l in 0..3 {
            out.extend(m.bias(l).iter().map(|v| v.to_bits()));
        }
        let x = chains.state.x();
        for r in 0..b {
            for i in 0..m.total_size() {
                out.push(x[(r, i)].to_bits());
            }
        }
        out
    })
}

#[test]
fn learning_bit_identical_across_thread_counts() {
    assert_eq!(learning_run(1), learning_run(2));
}

/// The element-wise kernels give the same bits on the baseline path as on
/// the widest vector extension of this machine (hee_core::elementwise::simd).
#[test]
fn vector_paths_bit_identical_to_baseline() {
    let wide = (run(42, 2), learning_run(2));
    hee_core::elementwise::simd::force_baseline(true);
    assert_eq!(hee_core::elementwise::simd::extension(), "baseline");
    let base = (run(42, 2), learning_run(2));
    hee_core::elementwise::simd::force_baseline(false);
    eprintln!(
        "vector extension: {}",
        hee_core::elementwise::simd::extension()
    );
    assert!(wide
        .0
        .iter()
        .zip(&base.0)
        .all(|(a, b)| a.to_bits() == b.to_bits()));
    assert_eq!(wide.1, base.1);
}
