//! `hee eval`: parse, estimate, write, report.

use super::EvalArgs;
use crate::eval::{default_out, log_likelihood, EvalOptions};
use crate::CliError;
use hee_eval::likelihood::ais::AisConfig;

pub(super) fn run(a: EvalArgs) -> Result<(), CliError> {
    if !a.log_likelihood {
        return Err(CliError::Usage(
            "nothing to evaluate: pass --log-likelihood".into(),
        ));
    }
    let out = a.out.clone().unwrap_or_else(|| default_out(&a.model));
    hee_eval::report::prepare_dir(&out)?;
    let opts = EvalOptions {
        model_dir: a.model,
        data: a.data,
        images: a.images,
        ais: AisConfig {
            steps: a.ais_steps,
            chains: a.chains,
            runs: a.runs,
            leapfrog: a.leapfrog,
            seed: a.seed,
            ..AisConfig::default()
        },
        bdmc: a.bdmc,
        skip: a.skip,
        out,
    };
    let (row, path) = log_likelihood(&opts)?;
    println!("wrote {}", path.display());
    if row.exact_nats.is_finite() {
        println!(
            "exact log p(x₀) (a linear-gaussian model): {:.3} nats per image",
            row.exact_nats
        );
    }
    println!(
        "log p(x₀) by AIS: {:.3} nats per image ± {:.3} over {} images (± {:.4} over {} runs), ESS {:.2} of {} chains, acceptance {:.2}",
        row.ais_nats, row.ais_se, row.n_test, row.ais_se_runs, opts.ais.runs, row.ess, opts.ais.chains, row.acceptance
    );
    if row.bits_per_dim.is_finite() {
        println!(
            "bits/dim: {:.4} (8-bit data, dequantised (byte + u)/256)",
            row.bits_per_dim
        );
    }
    println!(
        "prior importance sampling: {:.3} nats per image",
        row.is_nats
    );
    println!(
        "normaliser tables: largest measured error {:.2e} (each refused above {:.0e})",
        row.max_table_error,
        hee_core::aprime::table::TABLE_TOLERANCE
    );
    if opts.bdmc > 0 {
        println!(
            "BDMC on {} images simulated from the model: [{:.3}, {:.3}], gap {:.3} nats",
            opts.bdmc,
            row.bdmc_lower_nats,
            row.bdmc_upper_nats,
            row.bdmc_upper_nats - row.bdmc_lower_nats
        );
    }
    Ok(())
}
