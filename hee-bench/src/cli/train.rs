//! `hee train`: a run folder from a configuration and flags, or a resumed
//! one, with a progress bar and a clean stop on Ctrl-C.

use super::TrainArgs;
use crate::CliError;

pub(super) fn train(args: TrainArgs) -> Result<(), CliError> {
    use crate::train::{Event, Outcome, TrainConfig, Training};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let mut training = match &args.resume {
        Some(dir) => Training::resume(dir, args.epochs)?,
        None => {
            let mut cfg = match &args.config {
                Some(path) => {
                    let text = std::fs::read_to_string(path).map_err(|e| {
                        CliError::Usage(format!("cannot read '{}': {e}", path.display()))
                    })?;
                    TrainConfig::from_toml(&text, &format!("'{}'", path.display()))?
                }
                None => TrainConfig::default(),
            };
            if let Some(d) = &args.data {
                cfg.data.spec = d.clone();
            }
            if let Some(d) = &args.data_dir {
                cfg.data.data_dir = d.display().to_string();
            }
            if let Some(l) = &args.layers {
                cfg.model.layers = l.clone();
            }
            if let Some(e) = args.epochs {
                cfg.epochs = e;
            }
            if let Some(s) = args.seed {
                cfg.seed = s;
            }
            for a in &args.set {
                cfg.set(a)?;
            }
            let out = args.out.clone().ok_or_else(|| {
                CliError::Usage("train: --out DIR is required (or --resume DIR)".into())
            })?;
            Training::start(cfg, &out)?
        }
    };
    // Ctrl-C: finish the current minibatch, checkpoint, exit cleanly.
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst))
            .map_err(|e| CliError::Usage(format!("cannot install the Ctrl-C handler: {e}")))?;
    }
    use std::io::IsTerminal;
    let bar = if args.quiet || !std::io::stderr().is_terminal() {
        indicatif::ProgressBar::hidden()
    } else {
        let b = indicatif::ProgressBar::new(0);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} minibatches  {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    };
    let mut last_energy = f64::NAN;
    let outcome = training.run(&stop, &mut |e| match e {
        Event::Minibatch {
            epoch,
            epochs,
            done,
            total,
            mean_sq_grad,
            samples_per_s,
        } => {
            bar.set_length(total);
            bar.set_position(done);
            bar.set_message(format!(
                "epoch {epoch}/{epochs}  energy {last_energy:.4}  |dU/dx|^2 {mean_sq_grad:.3}  {samples_per_s:.0} samples/s"
            ));
        }
        Event::Epoch(row) => {
            last_energy = row.mean_energy;
            let s0 = row.dynamics.sigma.first().copied().unwrap_or([f64::NAN; 3]);
            bar.println(format!(
                "epoch {:>3}: held-out recon error {:.4}, energy {:.4}, |dU/dx|^2 {:.4}, update {:.3e}, dt {:.2e}, sigma_0 {:.4} [{:.4}, {:.4}], {:.1} s",
                row.epoch, row.recon_error, row.mean_energy, row.mean_sq_grad, row.update_norm, row.dynamics.dt, s0[1], s0[0], s0[2], row.seconds
            ));
        }
    })?;
    bar.finish_and_clear();
    match outcome {
        Outcome::Finished => println!(
            "trained {} epochs; run folder {}",
            training.config.epochs,
            training.dir().display()
        ),
        Outcome::Interrupted => println!(
            "interrupted; checkpoint written to {} (continue with: hee train --resume {})",
            training.dir().display(),
            training.dir().display()
        ),
    }
    Ok(())
}
