//! Runs steps of the throughput workload in a loop, for a profiler:
//! `cargo run --release -p hee-bench --example step_loop -- [inference|learning] [STEPS] [SHAPE 0|1] [CHUNK]`
//! (`perf record -g target/release/examples/step_loop learning 2000`).
//! `step_loop normals [BLOCKS]` times the step's normal draws alone
//! (`Ziggurat::fill_stream` over blocks of 64, as the interneurons take
//! them), in ns per draw.

use hee_bench::experiments::throughput::{data, kernel, model, workloads};
use hee_core::learning::{learning_step, LearningScratch, LocalLearning};
use hee_core::Dynamics;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).is_some_and(|m| m == "normals") {
        let blocks: usize = args.get(2).map_or(Ok(2_000_000), |s| s.parse())?;
        let z = hee_core::rng::ziggurat::Ziggurat::get();
        let mut stream = hee_core::rng::chacha::SampleStream::new(1, 0);
        let mut buf = [0f32; 64];
        let (mut acc, t0) = (0f32, std::time::Instant::now());
        for _ in 0..blocks {
            z.fill_stream(&mut stream, &mut buf);
            acc += buf[7];
        }
        let ns = t0.elapsed().as_secs_f64() * 1e9 / (blocks * 64) as f64;
        println!("normals: {ns:.3} ns per draw (checksum {acc})");
        return Ok(());
    }
    let learning = args.get(1).is_some_and(|m| m == "learning");
    let steps: usize = args.get(2).map_or(Ok(1000), |s| s.parse())?;
    let shape: usize = args.get(3).map_or(Ok(0), |s| s.parse())?;
    let w = workloads()
        .into_iter()
        .nth(shape)
        .ok_or("SHAPE is 0 or 1")?;
    let mut m = model(&w, 1)?;
    let mut k = kernel(&w)?;
    if let Some(c) = args.get(4) {
        k.config.chunk = c.parse()?;
    }
    let mut chains = k.init(&m, Some(data(&w).as_ref()), None, w.batch, 1)?;
    let mut scratch = LearningScratch::new(&m, w.batch);
    let rates = LocalLearning {
        lr_weights: 1e-6,
        lr_biases: 1e-6,
        lr_energy: 0.0,
        ..LocalLearning::default()
    };
    let t0 = std::time::Instant::now();
    for _ in 0..steps {
        if learning {
            learning_step(&mut m, &k, &mut chains, &mut scratch, &rates)?;
        } else {
            k.step(&m, &mut chains)?;
        }
    }
    let ms = t0.elapsed().as_secs_f64() * 1e3 / steps as f64;
    println!(
        "{} {}: {ms:.3} ms per step",
        w.name(),
        if learning { "learning" } else { "inference" }
    );
    Ok(())
}
