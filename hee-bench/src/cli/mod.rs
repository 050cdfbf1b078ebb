//! The `hee` program: arguments, dispatch, messages and exit codes.
//!
//! Every failure prints one line on stderr, `hee: <what went wrong>`, and
//! exits with a non-zero status; there are no backtraces. Each command's
//! work lives in the library (`train`, `experiments`); this module only
//! parses, calls and reports.

mod data;
mod eval;
mod generate;
mod train;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::builder::{PossibleValue, PossibleValuesParser};
use clap::{Parser, Subcommand};

use crate::experiments::{self, RunOptions, REGISTRY};
use crate::CliError;

#[derive(Parser, Debug)]
#[command(
    name = "hee",
    version,
    about = "Hierarchical exponential-family energy-based models: experiments"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Load and validate a data set and print its summary.
    Data {
        /// mnist | fashion | fashion-full | natural | csv:PATH
        #[arg(long, value_name = "SPEC")]
        data: hee_data::DataSpec,
        /// Directory to read instead of the default location.
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Train a model on a data set with the local rule, checkpointing a run
    /// folder; or continue one with --resume.
    Train(TrainArgs),
    /// Generate from a trained run: marginal (ancestral), joint, or
    /// completions of held-out images with their top half clamped.
    Generate(GenerateArgs),
    /// Evaluate a trained run: its held-out log-likelihood by annealed
    /// importance sampling, with the BDMC bounds when asked.
    Eval(EvalArgs),
    /// Run one of the paper's experiments and write its results.
    Reproduce {
        /// Which experiment.
        #[arg(value_parser = experiment_names())]
        experiment: String,
        /// A smaller, faster run (minutes, not tens of minutes).
        #[arg(long)]
        quick: bool,
        /// Output directory [default: results/<experiment>].
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Master seed; a run is a function of it.
        #[arg(long, default_value_t = 20231012)]
        seed: u64,
        /// receptive-fields: a folder of PNG photographs to take patches from
        /// instead of the vendored ones.
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
        /// receptive-fields: train from this many consecutive seeds, starting
        /// at --seed (the first is the headline run; the others check that
        /// learning is stable).
        #[arg(long, value_name = "N", default_value_t = 1)]
        seeds: usize,
        /// generation: the inference steps per update at which HEE and the
        /// baseline are trained, comma-separated, 1 included [default: 1,5,20].
        #[arg(long, value_name = "K,...", value_delimiter = ',')]
        budgets: Option<Vec<usize>>,
    },
}

#[derive(clap::Args, Debug)]
struct TrainArgs {
    /// A TOML configuration (see docs/training.md); flags override it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// mnist | fashion | fashion-full | natural | csv:PATH
    #[arg(long, value_name = "SPEC")]
    data: Option<String>,
    /// Directory to read the data from instead of the default location.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Layer sizes from the observation layer up, e.g. 784,256,64.
    #[arg(long, value_name = "N,N,...", value_delimiter = ',')]
    layers: Option<Vec<usize>>,
    /// Total number of epochs of the run.
    #[arg(long, value_name = "N")]
    epochs: Option<usize>,
    /// Master seed.
    #[arg(long, value_name = "S")]
    seed: Option<u64>,
    /// The run folder.
    #[arg(long, value_name = "DIR", required_unless_present = "resume")]
    out: Option<PathBuf>,
    /// Any other setting, as KEY=VALUE (e.g. dynamics.dt=0.01); repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Continue the run in DIR (up to --epochs in total, when given).
    #[arg(long, value_name = "DIR", conflicts_with_all = ["config", "data", "data_dir", "layers", "seed", "out", "set"])]
    resume: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

#[derive(clap::Args, Debug)]
struct GenerateArgs {
    /// The run folder of `hee train`.
    #[arg(long, value_name = "RUN_DIR")]
    model: PathBuf,
    /// marginal | joint | complete
    #[arg(long, value_parser = ["marginal", "joint", "complete"], default_value = "marginal")]
    mode: String,
    /// Number of samples.
    #[arg(long, default_value_t = 100)]
    n: usize,
    /// Output folder.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Neuron steps (joint and complete).
    #[arg(long, default_value_t = 1000)]
    steps: usize,
    /// Δt (joint and complete) [default: the run's, or 0.1 τ/λ_max of the
    /// joint's Hessian at the start when that is shorter].
    #[arg(long)]
    dt: Option<f64>,
    /// plain | adaptation (joint and complete).
    #[arg(long, value_parser = ["plain", "adaptation"], default_value = "adaptation")]
    dynamics: String,
    /// sample (x₀) | mean (its conditional mean A′₀(η₀)).
    #[arg(long, value_parser = ["sample", "mean"], default_value = "mean")]
    readout: String,
    /// Seed of the generation's random streams.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[derive(clap::Args, Debug)]
struct EvalArgs {
    /// The run folder of `hee train`.
    #[arg(long, value_name = "RUN_DIR")]
    model: PathBuf,
    /// The data whose held-out split is evaluated [default: the run's].
    #[arg(long, value_name = "SPEC")]
    data: Option<String>,
    /// Estimate log p(x₀) per image (nats, bits/dim for 8-bit images).
    #[arg(long)]
    log_likelihood: bool,
    /// Intermediate distributions of AIS.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    ais_steps: usize,
    /// AIS chains per image (`hee reproduce likelihood` uses 4).
    #[arg(long, value_name = "K", default_value_t = 4)]
    chains: usize,
    /// Independent runs the chains are split into (their spread is the
    /// Monte Carlo standard error, blind to AIS's bias: see --bdmc);
    /// divides --chains.
    #[arg(long, value_name = "R", default_value_t = 4)]
    runs: usize,
    /// Leapfrog steps per HMC transition.
    #[arg(long, value_name = "L", default_value_t = 5)]
    leapfrog: usize,
    /// Held-out images, from the first (0: all).
    #[arg(long, value_name = "N", default_value_t = 0)]
    images: usize,
    /// Skip this many held-out images first (e.g. 1000 for a validation
    /// set beside the first 1000, which `hee reproduce likelihood` reports).
    #[arg(long, value_name = "K", default_value_t = 0)]
    skip: usize,
    /// Also bracket log p(x₀) on N images simulated from the model
    /// (bidirectional Monte Carlo); the gap bounds AIS's error.
    #[arg(long, value_name = "N", default_value_t = 0)]
    bdmc: usize,
    /// Seed of the estimators' random streams.
    #[arg(long, default_value_t = 20231012)]
    seed: u64,
    /// Output folder [default: RUN_DIR/eval].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

/// The experiments' names, with their help lines, for clap.
fn experiment_names() -> PossibleValuesParser {
    PossibleValuesParser::new(
        REGISTRY
            .iter()
            .map(|e| PossibleValue::new(e.name()).help(e.about())),
    )
}

fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Train(args) => train::train(args),
        Command::Data { data, data_dir } => data::summary(&data, data_dir.as_deref()),
        Command::Generate(a) => generate::run(a),
        Command::Eval(a) => eval::run(a),
        Command::Reproduce {
            experiment,
            quick,
            out,
            seed,
            data_dir,
            seeds,
            budgets,
        } => {
            let e = experiments::find(&experiment)
                .ok_or_else(|| CliError::Usage(format!("no experiment '{experiment}'")))?;
            for (flag, given) in [
                ("data-dir", data_dir.is_some()),
                ("seeds", seeds != 1),
                ("budgets", budgets.is_some()),
            ] {
                if given && !e.options().contains(&flag) {
                    return Err(CliError::Usage(format!(
                        "--{flag} does not apply to {}",
                        e.name()
                    )));
                }
            }
            let out = out.unwrap_or_else(|| PathBuf::from("results").join(e.name()));
            // Fail before the work if the results cannot be written.
            hee_eval::report::prepare_dir(&out)?;
            let opts = RunOptions {
                data_dir,
                seeds,
                budgets,
                ..RunOptions::new(quick, seed, out)
            };
            let mut progress = |line: &str| eprintln!("{line}");
            for p in e.run(&opts, &mut progress)? {
                println!("wrote {}", p.display());
            }
            Ok(())
        }
    }
}

/// The program: parses the arguments, runs the command, reports.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                let _ = e.print();
                return if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                    ExitCode::from(2)
                } else {
                    ExitCode::SUCCESS
                };
            }
            // clap renders several lines; keep the first, which names the
            // offending argument and value.
            let text = e.to_string();
            let first = text
                .lines()
                .next()
                .unwrap_or("invalid arguments")
                .trim_start_matches("error: ");
            eprintln!("hee: {first} (see 'hee --help')");
            return ExitCode::from(2);
        }
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hee: {e}");
            ExitCode::FAILURE
        }
    }
}
