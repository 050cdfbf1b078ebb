//! Criterion benchmark of one step against its matrix-product floor: for
//! each workload of `hee reproduce throughput` (784-256-64 batch 128 and
//! 256-256-128 batch 256, f32, tanh, K = 4), one inference step, one
//! inference-and-learning step, and the same matrix products alone through
//! faer, all with the flops of those products as criterion's throughput
//! (so each line reports its flop rate; the step's efficiency is the
//! products' time over the step's). Threads: rayon's global pool
//! (`RAYON_NUM_THREADS=1` for one).
//!
//! Run: `cargo bench -p hee-bench --bench throughput`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use faer::Par;
use hee_bench::experiments::throughput::{data, flops, kernel, model, workloads, Mode, Products};
use hee_core::learning::{learning_step, LearningScratch, LocalLearning};
use hee_core::Dynamics;

fn throughput(c: &mut Criterion) {
    let mut group = c.benchmark_group("throughput");
    let threads = rayon::current_num_threads();
    let par = if threads == 1 {
        Par::Seq
    } else {
        Par::rayon(threads)
    };
    for w in workloads() {
        let shape = format!("{}/b{}/t{threads}", w.name(), w.batch);
        for mode in [Mode::Inference, Mode::Learning] {
            group.throughput(Throughput::Elements(flops(&w, mode) as u64));
            let mut m = model(&w, 1).unwrap();
            let k = kernel(&w).unwrap();
            let mut chains = k
                .init(&m, Some(data(&w).as_ref()), None, w.batch, 1)
                .unwrap();
            let mut scratch = LearningScratch::new(&m, w.batch);
            let rates = LocalLearning {
                lr_weights: 1e-6,
                lr_biases: 1e-6,
                lr_energy: 0.0,
                ..LocalLearning::default()
            };
            group.bench_function(
                BenchmarkId::new(format!("{}-step", mode.name()), &shape),
                |b| {
                    b.iter(|| match mode {
                        Mode::Inference => {
                            k.step(&m, &mut chains).unwrap();
                        }
                        Mode::Learning => {
                            learning_step(&mut m, &k, &mut chains, &mut scratch, &rates).unwrap();
                        }
                    })
                },
            );
            let mut p = Products::new(&w, mode);
            group.bench_function(
                BenchmarkId::new(format!("{}-products", mode.name()), &shape),
                |b| b.iter(|| p.run(par)),
            );
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = throughput
}
criterion_main!(benches);
