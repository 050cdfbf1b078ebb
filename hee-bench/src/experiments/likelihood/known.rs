//! The known answers of `hee reproduce likelihood`: random linear-gaussian
//! models on data simulated from them (`exact_nats` in closed form), and a
//! tanh model with two student-t latent units (`exact_nats` by grid
//! quadrature over the latents).

use hee_core::faer::MatRef;
use hee_core::generate::ancestral;
use hee_core::model::log_joint::LogJoint;
use hee_core::reference::linear_gaussian::LinearGaussian;
use hee_core::{BaseEnergy, HeeModel, LayerSpec, Nonlinearity, Real};
use hee_eval::likelihood::ais::AisConfig;
use hee_eval::likelihood::grid;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::LikelihoodRow;
use crate::CliError;

/// [`crate::eval::estimate`] with bits/dim, reported on `progress`.
pub(super) fn estimate<T: Real>(
    name: &str,
    dataset: &str,
    model: &HeeModel<T>,
    x0: MatRef<'_, T>,
    cfg: &AisConfig,
    simulated: usize,
    progress: &mut dyn FnMut(&str),
) -> Result<(LikelihoodRow, Vec<f64>), CliError> {
    let out = crate::eval::estimate(name, dataset, model, x0, cfg, simulated, true)?;
    progress(&format!(
        "likelihood: {name}: done in {:.1} s",
        out.0.seconds
    ));
    Ok(out)
}

fn gaussian_model(seed: u64, sizes: &[usize], sigmas: &[f64]) -> Result<HeeModel<f64>, CliError> {
    let specs: Vec<LayerSpec> = sizes
        .iter()
        .zip(sigmas)
        .map(|(&size, &sigma)| LayerSpec {
            size,
            energy: BaseEnergy::Gaussian { sigma },
        })
        .collect();
    let mut m = HeeModel::<f64>::new(&specs, Nonlinearity::Identity)?;
    m.randomize_weights(&mut ChaCha8Rng::seed_from_u64(seed), 2.0);
    Ok(m)
}

/// The known-answer models: their rows.
pub(super) fn known_answers(
    s: &super::Settings,
    progress: &mut dyn FnMut(&str),
) -> Result<(Vec<LikelihoodRow>, f64), CliError> {
    let mut rows = Vec::new();
    let mut table_error: f64 = 0.0;
    let n = if s.images >= 100 { 100 } else { 20 };
    for k in 0..3u64 {
        let m = gaussian_model(k, &[32, 8, 2], &[0.3, 1.0, 1.0])?;
        let x0 = ancestral(&m, n, 1000 + k)?
            .x
            .as_ref()
            .subcols(0, 32)
            .to_owned();
        let (mut row, _) = estimate(
            &format!("linear-gaussian-{}", k + 1),
            "simulated",
            &m,
            x0.as_ref(),
            &s.ais,
            s.simulated,
            progress,
        )?;
        row.exact_nats = LinearGaussian::from_model(&m)?.mean_log_likelihood(x0.as_ref())?;
        // Simulated data are not 8-bit images: nats only.
        row.bits_per_dim = f64::NAN;
        rows.push(row);
    }
    let specs = [
        LayerSpec {
            size: 16,
            energy: BaseEnergy::Gaussian { sigma: 0.5 },
        },
        LayerSpec {
            size: 2,
            energy: BaseEnergy::StudentT {
                sigma: 2.0,
                weight: 1.0,
                nu: 3.0,
            },
        },
    ];
    let mut m = HeeModel::<f64>::new(&specs, Nonlinearity::Tanh)?;
    m.randomize_weights(&mut ChaCha8Rng::seed_from_u64(5), 6.0);
    let x0 = ancestral(&m, n, 11)?.x.as_ref().subcols(0, 16).to_owned();
    let (mut row, _) = estimate(
        "nonlinear-2d",
        "simulated",
        &m,
        x0.as_ref(),
        &s.ais,
        s.simulated,
        progress,
    )?;
    let lj = LogJoint::new(&m)?;
    let g = grid::log_marginal(&m, &lj, x0.as_ref(), 601, 12.0)?;
    row.exact_nats = g.iter().sum::<f64>() / g.len() as f64;
    row.bits_per_dim = f64::NAN;
    table_error = table_error.max(row.max_table_error);
    rows.push(row);
    Ok((rows, table_error))
}
