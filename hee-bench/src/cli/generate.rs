//! `hee generate`: parse, generate, write, report.

use super::GenerateArgs;
use crate::generate::{generate, write, GenerateOptions, Mode, Readout};
use crate::CliError;

pub(super) fn run(a: GenerateArgs) -> Result<(), CliError> {
    // clap has checked the names.
    let mode = match a.mode.as_str() {
        "joint" => Mode::Joint,
        "complete" => Mode::Complete,
        _ => Mode::Marginal,
    };
    let readout = if a.readout == "sample" {
        Readout::Sample
    } else {
        Readout::Mean
    };
    hee_eval::report::prepare_dir(&a.out)?;
    let opts = GenerateOptions {
        model_dir: a.model,
        mode,
        n: a.n,
        steps: a.steps,
        dynamics: a.dynamics,
        dt: a.dt,
        readout,
        seed: a.seed,
        out: a.out,
    };
    let g = generate(&opts)?;
    for p in write(&opts.out, &g)? {
        println!("wrote {}", p.display());
    }
    println!(
        "generated {} samples ({}, {} readout) in {:.1} s",
        g.settings.n, g.settings.mode, g.settings.readout, g.settings.seconds
    );
    Ok(())
}
