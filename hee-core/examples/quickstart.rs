//! Posterior sampling in a two-layer HEE model (the README's example).
//! Run: `cargo run --release -p hee-core --example quickstart`.

use hee_core::faer::Mat;
use hee_core::{BaseEnergy, Dynamics, HeeModel, Langevin, LayerSpec, NeuralConfig, Nonlinearity};
use rand::SeedableRng;

fn main() -> hee_core::Result<()> {
    let layers = [
        LayerSpec {
            size: 16,
            energy: BaseEnergy::gaussian(1.0),
        },
        LayerSpec {
            size: 8,
            energy: BaseEnergy::SmoothLaplace {
                sigma: 1.0,
                lambda: 0.5,
                delta: 0.1,
            },
        },
    ];
    let mut model = HeeModel::<f32>::new(&layers, Nonlinearity::Tanh)?;
    model.randomize_weights(&mut rand_chacha::ChaCha8Rng::seed_from_u64(0), 1.0);
    // Δt and τ; A′ is analytic for the gaussian layer, interneurons for the sparse one.
    let kernel = Langevin::new(NeuralConfig::new(0.01, 1.0))?;
    let batch = 64;
    let data = Mat::<f32>::from_fn(batch, 16, |_, j| (j as f32 * 0.4).sin()); // one observation per row
                                                                              // State, one random stream per sample (seed 42) and scratch, sized once.
    let mut chains = kernel.init(&model, Some(data.as_ref()), None, batch, 42)?;
    let mut last = None;
    for _ in 0..1000 {
        last = Some(kernel.step(&model, &mut chains)?); // state in place, diagnostics out
    }
    let x1 = chains.state.layer(&model, 1)?; // batch × 8 posterior samples
    let mean0: f32 = (0..batch).map(|r| x1[(r, 0)]).sum::<f32>() / batch as f32;
    println!(
        "after {} steps: mean |dU/dx|^2 = {:.3}, posterior mean of unit 0 = {mean0:.3}",
        chains.state.steps(),
        last.map_or(0.0, |i| i.mean_sq_grad)
    );
    Ok(())
}
