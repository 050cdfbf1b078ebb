//! Criterion benchmarks of the neural dynamics.
//!
//! * `inference_step`: one step of plain Langevin and of adaptation dynamics
//!   (f32), at 784-256-64 (batch 128) and 256-128 (batch 64), with analytic
//!   and with interneuron A′;
//! * `time_to_accuracy`: wall time for an ensemble of 64 chains to reach
//!   KL ≤ 0.05 on the κ = 100 posterior of `hee reproduce speedup` (the number
//!   of steps comes from the exact moment recursion, computed outside the
//!   timing).
//!
//! Run: `cargo bench -p hee-bench --bench inference`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use faer::Mat;
use hee_bench::experiments::speedup;
use hee_core::{
    APrime, Adaptation, BaseEnergy, CurvatureRange, Dynamics, HeeModel, InterneuronConfig,
    LayerSpec, NeuralConfig, Nonlinearity,
};
use rand::SeedableRng;

fn model(sizes: &[usize]) -> HeeModel<f32> {
    let specs: Vec<LayerSpec> = sizes
        .iter()
        .map(|&size| LayerSpec {
            size,
            energy: BaseEnergy::gaussian(1.0),
        })
        .collect();
    let mut m = HeeModel::new(&specs, Nonlinearity::Identity).unwrap();
    m.randomize_weights(&mut rand_chacha::ChaCha8Rng::seed_from_u64(0), 0.5);
    m
}

fn bench_kernel<D: Dynamics<f32>>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    id: String,
    m: &HeeModel<f32>,
    k: &D,
    batch: usize,
) {
    let data = Mat::<f32>::from_fn(batch, m.size(0), |r, j| ((r + j) % 7) as f32 * 0.1);
    let mut run = k.init(m, Some(data.as_ref()), None, batch, 1).unwrap();
    group.bench_function(BenchmarkId::from_parameter(id), |b| {
        b.iter(|| k.step(m, &mut run).unwrap());
    });
}

fn inference_step(c: &mut Criterion) {
    let mut group = c.benchmark_group("inference_step");
    for (sizes, batch) in [(vec![784usize, 256, 64], 128usize), (vec![256, 128], 64)] {
        let m = model(&sizes);
        let shape = sizes
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .join("-");
        for (label, a) in [
            ("analytic", APrime::Analytic),
            (
                "interneurons",
                APrime::Interneurons(InterneuronConfig::default()),
            ),
        ] {
            let mut cfg = NeuralConfig::new(0.01, 1.0);
            cfg.a_prime = a;
            let plain = hee_core::Langevin::new(cfg).unwrap();
            bench_kernel(
                &mut group,
                format!("{shape}/b{batch}/plain/{label}"),
                &m,
                &plain,
                batch,
            );
            // τ_a and g as the tuned rule picks them for λ ∈ [1, 100].
            let adapt = Adaptation::tuned(
                cfg,
                CurvatureRange {
                    lambda_min: 1.0,
                    lambda_max: 100.0,
                },
            )
            .unwrap();
            bench_kernel(
                &mut group,
                format!("{shape}/b{batch}/adaptation/{label}"),
                &m,
                &adapt,
                batch,
            );
        }
    }
    group.finish();
}

fn time_to_accuracy(c: &mut Criterion) {
    let mut group = c.benchmark_group("time_to_accuracy");
    group.sample_size(10);
    let setup = speedup::TimeToAccuracy::new(100.0, 7).unwrap();
    let chains = 64;
    for (name, kernel, steps) in setup.cases() {
        group.bench_function(
            BenchmarkId::from_parameter(format!("kappa100/{name}/{steps}steps")),
            |b| {
                b.iter(|| setup.run(&kernel, steps, chains, 3).unwrap());
            },
        );
    }
    group.finish();
}

criterion_group!(benches, inference_step, time_to_accuracy);
criterion_main!(benches);
