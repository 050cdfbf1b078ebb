//! Cost of one inference step (plain Langevin, f32), per network size.
//! Run: `cargo bench -p hee-bench --bench inference`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use faer::Mat;
use hee_core::{
    APrime, BaseEnergy, Dynamics, HeeModel, InterneuronConfig, Langevin, LayerSpec, NeuralConfig,
    Nonlinearity, RowStreams, Workspace,
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

fn inference_step(c: &mut Criterion) {
    let mut group = c.benchmark_group("inference_step");
    for (sizes, batch) in [(vec![784usize, 256, 64], 128usize), (vec![256, 128], 64)] {
        let m = model(&sizes);
        for (label, a) in [
            ("plain-analytic", APrime::Analytic),
            (
                "plain-interneurons",
                APrime::Interneurons(InterneuronConfig::default()),
            ),
        ] {
            let mut cfg = NeuralConfig::new(0.01, 1.0);
            cfg.a_prime = a;
            let k = Langevin::new(cfg).unwrap();
            let data = Mat::<f32>::from_fn(batch, sizes[0], |r, j| ((r + j) % 7) as f32 * 0.1);
            let mut streams = RowStreams::new(1, batch);
            let mut st = k
                .init(&m, Some(data.as_ref()), None, batch, &mut streams)
                .unwrap();
            let mut ws = Workspace::new(&m, batch, cfg.chunk);
            let id = format!(
                "{}/b{batch}/{label}",
                sizes
                    .iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>()
                    .join("-")
            );
            group.bench_function(BenchmarkId::from_parameter(id), |b| {
                b.iter(|| k.step(&m, &mut streams, &mut st, &mut ws).unwrap());
            });
        }
    }
    group.finish();
}

criterion_group!(benches, inference_step);
criterion_main!(benches);
