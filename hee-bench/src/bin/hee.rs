//! `hee`: run the experiments of the HEE reproduction.
//!
//! Every failure prints one line on stderr, `hee: <what went wrong>`, and
//! exits with a non-zero status; there are no backtraces.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use hee_bench::experiments::{defaults, sampler_check, speedup, RunOptions};
use hee_bench::CliError;

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
    /// Run one of the paper's experiments and write its results.
    Reproduce {
        /// Which experiment.
        experiment: Experiment,
        /// A smaller, faster run (minutes, not tens of minutes).
        #[arg(long)]
        quick: bool,
        /// Output directory [default: results/<experiment>].
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Master seed; a run is a function of it.
        #[arg(long, default_value_t = 20231012)]
        seed: u64,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum Experiment {
    /// Plain Langevin (analytic and interneuron A′) against exact posteriors.
    SamplerCheck,
    /// Neural adaptation against plain Langevin on ill-conditioned posteriors.
    Speedup,
    /// The measurements behind hee-core's defaults (interneuron time
    /// constant, momentum factor of the tuned adaptation rule).
    Defaults,
}

impl Experiment {
    fn dir_name(self) -> &'static str {
        match self {
            Experiment::SamplerCheck => "sampler-check",
            Experiment::Speedup => "speedup",
            Experiment::Defaults => "defaults",
        }
    }
}

fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Data { data, data_dir } => {
            let t0 = std::time::Instant::now();
            let d = hee_data::load(
                &data,
                data_dir.as_deref(),
                &hee_data::LoadOptions::default(),
            )?;
            let secs = t0.elapsed().as_secs_f64();
            let (lo, hi) = d.value_range();
            println!("data set   {}", d.name);
            println!("records    {} train, {} test", d.len(), d.test.nrows());
            println!("dimension  {}", d.dim());
            match d.image_shape {
                Some((r, c)) => println!("shape      {r}x{c}"),
                None => println!("shape      (not images)"),
            }
            match d.classes {
                Some(c) => println!("classes    {c}"),
                None => println!("classes    (unlabelled)"),
            }
            println!("values     [{lo}, {hi}]");
            if let Some(w) = &d.whitening {
                println!("whitening  ZCA, epsilon {} x mean eigenvalue", w.epsilon);
            }
            println!("load time  {:.1} ms", secs * 1e3);
            Ok(())
        }
        Command::Reproduce {
            experiment,
            quick,
            out,
            seed,
        } => {
            let out = out.unwrap_or_else(|| PathBuf::from("results").join(experiment.dir_name()));
            // Fail before the work if the results cannot be written.
            hee_eval::report::prepare_dir(&out)?;
            let opts = RunOptions { quick, seed, out };
            let mut progress = |line: &str| eprintln!("{line}");
            let written = match experiment {
                Experiment::SamplerCheck => {
                    let r = sampler_check::run(&opts, &mut progress)?;
                    sampler_check::write(&opts, &r)?
                }
                Experiment::Speedup => {
                    let r = speedup::run(&opts, &mut progress)?;
                    speedup::write(&opts, &r)?
                }
                Experiment::Defaults => {
                    let r = defaults::run(&opts, &mut progress)?;
                    defaults::write(&opts, &r)?
                }
            };
            for p in written {
                println!("wrote {}", p.display());
            }
            Ok(())
        }
    }
}

fn main() -> ExitCode {
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
