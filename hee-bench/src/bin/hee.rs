//! `hee`: run the experiments of the HEE reproduction.
//!
//! Every failure prints one line on stderr, `hee: <what went wrong>`, and
//! exits with a non-zero status; there are no backtraces.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use hee_bench::experiments::{
    defaults, receptive_fields, sampler_check, speedup, throughput, RunOptions,
};
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
    /// Train a model on a data set with the local rule, checkpointing a run
    /// folder; or continue one with --resume.
    Train(TrainArgs),
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
        /// receptive-fields: a folder of PNG photographs to take patches from
        /// instead of the vendored ones.
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
        /// receptive-fields: train from this many consecutive seeds, starting
        /// at --seed (the first is the headline run; the others check that
        /// learning is stable).
        #[arg(long, value_name = "N", default_value_t = 1)]
        seeds: usize,
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

#[derive(ValueEnum, Clone, Copy, Debug)]
enum Experiment {
    /// Plain Langevin (analytic and interneuron A′) against exact posteriors.
    SamplerCheck,
    /// Neural adaptation against plain Langevin on ill-conditioned posteriors.
    Speedup,
    /// The measurements behind hee-core's defaults (interneuron time
    /// constant, momentum factor of the tuned adaptation rule).
    Defaults,
    /// V1-like receptive fields from natural images: a sparse first layer
    /// against a gaussian control.
    ReceptiveFields,
    /// Step time against the same run's matrix-product floor, 1 and 2
    /// threads, inference and learning.
    Throughput,
}

impl Experiment {
    fn dir_name(self) -> &'static str {
        match self {
            Experiment::SamplerCheck => "sampler-check",
            Experiment::Speedup => "speedup",
            Experiment::Defaults => "defaults",
            Experiment::ReceptiveFields => "receptive-fields",
            Experiment::Throughput => "throughput",
        }
    }
}

fn train(args: TrainArgs) -> Result<(), CliError> {
    use hee_bench::train::{Event, Outcome, TrainConfig, Training};
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
            bar.println(format!(
                "epoch {:>3}: held-out recon error {:.4}, energy {:.4}, |dU/dx|^2 {:.4}, update {:.3e}, {:.1} s",
                row.epoch, row.recon_error, row.mean_energy, row.mean_sq_grad, row.update_norm, row.seconds
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

fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Train(args) => train(args),
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
            data_dir,
            seeds,
        } => {
            if !matches!(experiment, Experiment::ReceptiveFields)
                && (data_dir.is_some() || seeds != 1)
            {
                return Err(CliError::Usage(format!(
                    "--data-dir and --seeds apply to receptive-fields only, not {}",
                    experiment.dir_name()
                )));
            }
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
                Experiment::Throughput => {
                    let r = throughput::run(&opts, &mut progress)?;
                    throughput::write(&opts, &r)?
                }
                Experiment::ReceptiveFields => {
                    let r =
                        receptive_fields::run(&opts, data_dir.as_deref(), seeds, &mut progress)?;
                    receptive_fields::write(&opts, &r)?
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
