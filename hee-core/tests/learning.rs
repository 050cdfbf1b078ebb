//! The local rule learns a linear-gaussian HEE with one latent layer: it
//! raises the exact held-out log-likelihood from ≥ 0.5 nats/dim below the
//! optimum to within 0.01 nats/dim of the closed-form maximum-likelihood
//! solution (probabilistic PCA at the model's fixed noise level) fitted to
//! the same training data.

mod common;

use faer::Mat;
use hee_core::learning::{train_minibatch, LearningScratch, LocalLearning, MinibatchSchedule};
use hee_core::reference::linear_gaussian::{mean_log_pdf, ppca_fixed_noise, LinearGaussian};
use hee_core::{
    APrime, BaseEnergy, Dynamics, HeeModel, InterneuronConfig, Langevin, LayerSpec, NeuralConfig,
    Nonlinearity,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

const N0: usize = 6;
const N1: usize = 2;

fn specs() -> Vec<LayerSpec> {
    vec![
        LayerSpec {
            size: N0,
            energy: BaseEnergy::Gaussian { sigma: 1.0 },
        },
        LayerSpec {
            size: N1,
            energy: BaseEnergy::Gaussian { sigma: 1.0 },
        },
    ]
}

/// Exact ancestral samples of a linear-gaussian model: x₁ ~ N(σ₁²b₁, σ₁²),
/// x₀ ~ N(σ₀²(W x₁ + b₀), σ₀²).
fn sample_data(m: &HeeModel<f64>, n: usize, rng: &mut ChaCha8Rng) -> Mat<f64> {
    use hee_core::Real;
    let (s0, s1) = (m.energy(0).sigma(), m.energy(1).sigma());
    let mut data = Mat::zeros(n, N0);
    for r in 0..n {
        let x1: Vec<f64> = (0..N1)
            .map(|j| s1 * s1 * m.bias(1)[j] + s1 * f64::std_normal(rng))
            .collect();
        for i in 0..N0 {
            let eta: f64 = (0..N1).map(|j| m.weight(0)[(i, j)] * x1[j]).sum::<f64>() + m.bias(0)[i];
            data[(r, i)] = s0 * s0 * eta + s0 * f64::std_normal(rng);
        }
    }
    data
}

fn held_out_ll(m: &HeeModel<f32>, test: &Mat<f64>) -> f64 {
    LinearGaussian::from_model(m)
        .unwrap()
        .mean_log_likelihood(test.as_ref())
        .unwrap()
}

fn learn(a_prime: APrime, epochs: usize) -> (f64, f64, f64) {
    let mut rng = ChaCha8Rng::seed_from_u64(2023);
    let mut truth = HeeModel::<f64>::new(&specs(), Nonlinearity::Identity).unwrap();
    truth.randomize_weights(&mut rng, 1.5);
    truth
        .set_bias(0, &[0.5, -0.3, 0.2, 0.0, 0.4, -0.6])
        .unwrap();
    truth.set_bias(1, &[0.3, -0.2]).unwrap();
    let train = sample_data(&truth, 2000, &mut rng);
    let test = sample_data(&truth, 2000, &mut rng);
    let optimum = mean_log_pdf(
        &ppca_fixed_noise(train.as_ref(), N1, 1.0).unwrap(),
        test.as_ref(),
    )
    .unwrap();

    let mut model = HeeModel::<f32>::new(&specs(), Nonlinearity::Identity).unwrap();
    model.randomize_weights(&mut rng, 0.1);
    let start = held_out_ll(&model, &test);

    let batch = 100;
    let mut cfg = NeuralConfig::new(0.02, 1.0);
    cfg.a_prime = a_prime;
    let kernel = Langevin::new(cfg).unwrap();
    let first = Mat::<f32>::from_fn(batch, N0, |r, c| train[(r, c)] as f32);
    let mut run = kernel
        .init(&model, Some(first.as_ref()), None, batch, 7)
        .unwrap();
    let mut scratch = LearningScratch::new(&model, batch);
    let schedule = MinibatchSchedule {
        warmup_steps: 100,
        learning_steps: 50,
        steps_per_update: 1,
    };
    let base = LocalLearning::new(0.01);
    let n_batches = train.nrows() / batch;
    let total = (epochs * n_batches) as f64;
    let mut order: Vec<usize> = (0..train.nrows()).collect();
    for epoch in 0..epochs {
        // Seeded shuffle (Fisher–Yates) so every epoch sees new minibatches.
        use rand::Rng;
        for i in (1..order.len()).rev() {
            order.swap(i, rng.random_range(0..=i));
        }
        for b in 0..n_batches {
            let mb = Mat::<f32>::from_fn(batch, N0, |r, c| train[(order[b * batch + r], c)] as f32);
            // Cosine decay to zero: the final parameters average out the
            // sampling noise of the gradient.
            let t = (epoch * n_batches + b) as f64 / total;
            let rates = base.scaled(0.5 * (1.0 + (std::f64::consts::PI * t).cos()));
            train_minibatch(
                &mut model,
                &kernel,
                &mut run,
                &mut scratch,
                mb.as_ref(),
                &schedule,
                &rates,
            )
            .unwrap();
        }
    }
    (start, held_out_ll(&model, &test), optimum)
}

fn assert_learns(a_prime: APrime, epochs: usize) {
    let (start, end, optimum) = learn(a_prime, epochs);
    let per_dim = |v: f64| v / N0 as f64;
    eprintln!(
        "{}: held-out ll/dim start {:.4}, end {:.4}, ML optimum {:.4}",
        a_prime.name(),
        per_dim(start),
        per_dim(end),
        per_dim(optimum)
    );
    assert!(
        per_dim(optimum - start) >= 0.5,
        "start must be >= 0.5 nats/dim below the optimum"
    );
    assert!(
        end > start,
        "learning must raise the held-out log-likelihood"
    );
    assert!(
        per_dim(optimum - end) <= 0.01,
        "ended {:.4} nats/dim below the ML optimum",
        per_dim(optimum - end)
    );
}

#[test]
fn local_rule_reaches_ppca_optimum_analytic() {
    assert_learns(APrime::Analytic, 30);
}

#[test]
fn local_rule_reaches_ppca_optimum_interneurons() {
    assert_learns(APrime::Interneurons(InterneuronConfig::default()), 30);
}
