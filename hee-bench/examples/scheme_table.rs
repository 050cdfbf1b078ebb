//! Prints the stationary bias and steps-to-threshold of the adaptation
//! scheme on the κ = 100 speed-up problem for several s/√(hλ_min)
//! (the table in docs/adaptation.md).
//! Run: `cargo run --release -p hee-bench --example scheme_table`.
use hee_bench::experiments::linear::{conditioned_problem, far_start};
use hee_bench::experiments::speedup::{DIM, H_LMAX, KL_THRESHOLD, START_SD};
use hee_core::reference::moments::{KernelKind, MomentRecursion};
use hee_core::{APrime, NeuralConfig};
use hee_eval::diagnostics::moment_errors;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Same problem as `hee reproduce speedup` at κ = 100 (default seed + 1).
    let p = conditioned_problem(DIM, 100.0, 20231012 + 1)?;
    let start = far_start(&p, START_SD);
    let mut cfg = NeuralConfig::new(H_LMAX / p.lambda_max, 1.0);
    cfg.a_prime = APrime::Analytic;
    println!("| s / sqrt(h lambda_min) | stationary KL | steps to KL <= {KL_THRESHOLD} |");
    for c in [2.0f64, 1.4, 1.0, 0.7, 0.5, 0.35] {
        let s = c * (cfg.h() * p.lambda_min).sqrt();
        let (tau_a, g) = (s / p.lambda_min, (1.0 + s).powi(2) / (4.0 * s) - 1.0);
        let rec = MomentRecursion::new(
            &p.exact_model,
            &cfg,
            KernelKind::Adaptation { tau_a, g },
            &p.x0,
        )?;
        let bias = rec.stationary_latents()?.kl_to(&p.posterior)?;
        let (mut m, mut cv) = rec.init_moments(&start);
        let mut hit = None;
        for t in 1..100_000u64 {
            (m, cv) = rec.step.propagate(&m, &cv);
            let (lm, lc) = rec.latent_part(&m, &cv);
            if moment_errors(&lm, &lc, &p.posterior)?.kl <= KL_THRESHOLD {
                hit = Some(t);
                break;
            }
        }
        println!(
            "| {c} | {bias:.4} | {} |",
            hit.map_or("never".into(), |t| t.to_string())
        );
    }
    Ok(())
}
