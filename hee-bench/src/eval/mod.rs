//! `hee eval --log-likelihood`: log p(x₀) of a trained run's held-out data
//! by annealed importance sampling, beside importance sampling from the
//! prior and, when asked, the bidirectional Monte Carlo bounds on data
//! simulated from the model (hee_eval::likelihood).
//!
//! The data are prepared as the run prepared them, with one change: 8-bit
//! images the run read as byte/255 are read dequantised, (byte + u)/256
//! with u ~ U(0, 1), so that the model's density is a density of 8-bit data
//! on [0, 1]^D and bits/dim = −log p/(D ln 2) + 8. Other data get nats only.

use std::path::{Path, PathBuf};
use std::time::Instant;

use hee_core::faer::{Mat, MatRef};
use hee_core::generate::ancestral;
use hee_core::model::log_joint::LogJoint;
use hee_core::reference::linear_gaussian::LinearGaussian;
use hee_core::{HeeModel, Real};
use hee_eval::likelihood::ais::{self, AisConfig};
use hee_eval::likelihood::prior_importance;
use hee_eval::report::{prepare_dir, write_rows};

use crate::train::{load_data, load_run};
use crate::CliError;

mod row;
pub use row::{fixed_cell, LikelihoodRow, HEADER};

/// What `hee eval --log-likelihood` does.
#[derive(Debug, Clone)]
pub struct EvalOptions {
    pub model_dir: PathBuf,
    /// A data spec instead of the run's own.
    pub data: Option<String>,
    /// Held-out images evaluated, after the first `skip` (0: all the rest).
    pub images: usize,
    /// Held-out images skipped first.
    pub skip: usize,
    pub ais: AisConfig,
    /// Images simulated from the model for the BDMC bounds (0: none).
    pub bdmc: usize,
    /// Where `log-likelihood.csv` goes.
    pub out: PathBuf,
}

/// The estimates of one model: AIS and prior IS on `x0`, and the BDMC
/// bounds on `simulated` images drawn from the model (NaN when 0); `bits`
/// false leaves bits/dim out. Returns the row and AIS's estimate of every
/// image (for comparisons on the same images).
#[allow(clippy::too_many_arguments)]
pub fn estimate<T: Real>(
    name: &str,
    dataset: &str,
    model: &HeeModel<T>,
    x0: MatRef<'_, T>,
    cfg: &AisConfig,
    simulated: usize,
    bits: bool,
) -> Result<(LikelihoodRow, Vec<f64>), CliError> {
    let t0 = Instant::now();
    let lj = LogJoint::new(model)?;
    let fwd = ais::forward(model, &lj, x0, cfg)?;
    let is = prior_importance(model, &lj, x0, cfg.chains, cfg.runs, cfg.seed)?;
    let (lower, upper) = if simulated > 0 {
        // Streams of their own: the simulated data are not the chains'.
        let joint = ancestral(model, simulated, cfg.seed ^ 0x5157_u64)?.x;
        let lo = ais::forward(model, &lj, joint.as_ref().subcols(0, model.size(0)), cfg)?;
        let hi = ais::reverse(model, &lj, joint.as_ref(), cfg)?;
        (lo.mean(), hi.mean())
    } else {
        (f64::NAN, f64::NAN)
    };
    let secs = t0.elapsed().as_secs_f64();
    let mut row = LikelihoodRow::estimated(
        name,
        dataset,
        x0.nrows(),
        &fwd,
        &is,
        lower,
        upper,
        secs,
        model.size(0),
    );
    if !bits {
        row.bits_per_dim = f64::NAN;
    }
    row.max_table_error = lj.max_table_error();
    // A linear-gaussian model has its answer in closed form.
    if let Ok(lg) = LinearGaussian::from_model(model) {
        let x = Mat::from_fn(x0.nrows(), x0.ncols(), |i, j| x0[(i, j)].f64());
        row.exact_nats = lg.mean_log_likelihood(x.as_ref())?;
    }
    Ok((row, fwd.per_image))
}

/// Runs the evaluation and writes `log-likelihood.csv` into `opts.out`;
/// returns the row and the file.
pub fn log_likelihood(opts: &EvalOptions) -> Result<(LikelihoodRow, PathBuf), CliError> {
    let (mut cfg, model) = load_run(&opts.model_dir)?;
    if let Some(spec) = &opts.data {
        cfg.data.spec = spec.clone();
    }
    let as_run = cfg.data.scaling.clone();
    let dequantised =
        matches!(as_run.as_str(), "as-loaded" | "auto" | "dequantized") && cfg.data.multiply == 1.0;
    if dequantised {
        cfg.data.scaling = "dequantized".into();
    }
    let data = match load_data(&cfg) {
        Ok(d) => d,
        // Not 8-bit data: as the run read it, nats only.
        Err(_) if dequantised && as_run != "dequantized" => {
            cfg.data.scaling = as_run;
            return evaluate(opts, &model, &load_data(&cfg)?, false);
        }
        Err(e) => return Err(e),
    };
    evaluate(opts, &model, &data, dequantised)
}

fn evaluate(
    opts: &EvalOptions,
    model: &HeeModel<f32>,
    data: &hee_data::Dataset,
    bits: bool,
) -> Result<(LikelihoodRow, PathBuf), CliError> {
    if data.dim() != model.size(0) {
        return Err(CliError::Usage(format!(
            "{}: records have {} values, the model's observation layer {}",
            data.name,
            data.dim(),
            model.size(0)
        )));
    }
    let left = data.test.nrows().saturating_sub(opts.skip);
    if left == 0 {
        return Err(CliError::Usage(format!(
            "--skip {}: {} has only {} held-out records",
            opts.skip,
            data.name,
            data.test.nrows()
        )));
    }
    let n = if opts.images == 0 {
        left
    } else {
        opts.images.min(left)
    };
    let name = opts
        .model_dir
        .file_name()
        .map_or_else(|| "model".into(), |s| s.to_string_lossy().into_owned());
    let x0 = data.test.as_ref().subrows(opts.skip, n);
    let (row, _) = estimate(&name, &data.name, model, x0, &opts.ais, opts.bdmc, bits)?;
    prepare_dir(&opts.out)?;
    let path = opts.out.join("log-likelihood.csv");
    write_rows(&path, HEADER, [&row], |r| r.cells())?;
    Ok((row, path))
}

/// The default output folder: `eval/` in the run folder.
pub fn default_out(model_dir: &Path) -> PathBuf {
    model_dir.join("eval")
}
