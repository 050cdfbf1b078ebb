//! How far the training chains are from their stationary law when the
//! local rule reads them (issue 17, item 5). The rule is the gradient of
//! log p(x₀) only for posterior samples (Fisher's identity), so this is
//! what makes a trained model worth generating from.
//!
//! On the trained model, for one minibatch of training examples, chains of
//! the run's kernel start from three places:
//! - `per-example`: the examples' own latents from the bank (the default);
//! - `carried`: the latents of other examples (what the chains held when
//!   they were carried from one minibatch to the next);
//! - `zero`: x = 0.
//!
//! A reference run from the per-example start is continued for
//! `burn + keep` steps, and each latent unit's mean m and variance v per
//! example are taken over the last `keep` steps. At each read-out step s
//! (0 = the start; `warmup_steps` = where the rule first reads), the
//! statistic is z² = (x − m)²/v averaged over a layer's units and the
//! examples. A draw from the stationary law gives E[z²] = 1 + 1/ESS (the
//! reference's own Monte Carlo error); `relaxed`, an independent chain read
//! after `burn` steps, shows that floor. Larger values mean the rule reads
//! chains that have not relaxed.

use hee_core::faer::Mat;
use hee_core::{Dynamics, Purpose};

use crate::train::Training;
use crate::CliError;

/// One row of `relaxation.csv`.
#[derive(Debug, Clone, PartialEq)]
pub struct RelaxationRow {
    pub dataset: String,
    pub seed: u64,
    pub start: String,
    /// Steps since the minibatch was clamped.
    pub steps: usize,
    /// z² per latent layer (1 … L).
    pub z2: Vec<f64>,
}

impl RelaxationRow {
    pub(super) fn cells(&self) -> Vec<String> {
        let mut c = vec![
            self.dataset.clone(),
            self.seed.to_string(),
            self.start.clone(),
            self.steps.to_string(),
        ];
        c.extend(self.z2.iter().map(|z| format!("{z:.4}")));
        c
    }
}

/// Per example and latent unit, the mean and variance of a run of `keep`
/// steps after `burn` (batch × latent units each).
fn reference_moments(
    t: &Training,
    start: &Mat<f32>,
    data: &Mat<f32>,
    seed: u64,
    burn: usize,
    keep: usize,
) -> Result<(Mat<f64>, Mat<f64>), CliError> {
    let (k, m) = (t.kernel(), &t.model);
    let mut c = k.init(
        m,
        Some(data.as_ref()),
        Some(start.as_ref()),
        data.nrows(),
        seed,
    )?;
    for _ in 0..burn {
        k.step(m, &mut c)?;
    }
    let (b, n) = (start.nrows(), start.ncols());
    let (mut s1, mut s2) = (Mat::<f64>::zeros(b, n), Mat::<f64>::zeros(b, n));
    for _ in 0..keep {
        k.step(m, &mut c)?;
        let x = c.state.latents(m)?;
        for j in 0..b {
            for i in 0..n {
                let v = x[(j, i)] as f64;
                s1[(j, i)] += v;
                s2[(j, i)] += v * v;
            }
        }
    }
    let kf = keep as f64;
    let mean = Mat::from_fn(b, n, |j, i| s1[(j, i)] / kf);
    let var = Mat::from_fn(b, n, |j, i| {
        (s2[(j, i)] / kf - mean[(j, i)].powi(2)).max(1e-12)
    });
    Ok((mean, var))
}

/// z² of latents `x` (batch × latent units) per latent layer.
fn z2(t: &Training, x: hee_core::faer::MatRef<'_, f32>, m: &Mat<f64>, v: &Mat<f64>) -> Vec<f64> {
    let model = &t.model;
    let o = model.offset(1);
    (1..model.n_layers())
        .map(|l| {
            let r = (model.offset(l) - o)..(model.offset(l + 1) - o);
            let mut s = 0.0;
            for j in 0..x.nrows() {
                for i in r.clone() {
                    s += (x[(j, i)] as f64 - m[(j, i)]).powi(2) / v[(j, i)];
                }
            }
            s / (x.nrows() * r.len()) as f64
        })
        .collect()
}

/// Measures the trained run `t` (which must keep per-example chains) on
/// the first minibatch of training examples.
pub fn measure(t: &Training, dataset: &str, quick: bool) -> Result<Vec<RelaxationRow>, CliError> {
    let bank = t
        .latent_bank()
        .ok_or_else(|| CliError::Usage("relaxation: the run keeps no per-example chains".into()))?;
    let cfg = &t.config;
    let b = cfg.learning.batch;
    if t.data.len() < 2 * b {
        return Err(CliError::Usage(
            "relaxation: fewer than two minibatches".into(),
        ));
    }
    let data = t.data.batch(&(0..b).collect::<Vec<_>>())?;
    let rows = |from: usize| bank.rows(&(from..from + b).collect::<Vec<_>>());
    let seed = Purpose::Evaluation.seed(cfg.seed) ^ 0x7e1a;
    let (burn, keep) = if quick { (500, 1000) } else { (1000, 3000) };
    let (mean, var) = reference_moments(t, &rows(0), &data, seed, burn, keep)?;
    let w = cfg.learning.warmup_steps;
    let reads = [
        0,
        w,
        w + cfg.learning.learning_steps * cfg.learning.steps_per_update,
        100,
    ];
    let mut out = Vec::new();
    let starts = [
        ("per-example", rows(0)),
        ("carried", rows(b)),
        ("zero", Mat::zeros(b, bank.ncols())),
    ];
    let (k, m) = (t.kernel(), &t.model);
    for (s, (name, start)) in starts.iter().enumerate() {
        let mut c = k.init(
            m,
            Some(data.as_ref()),
            Some(start.as_ref()),
            b,
            seed ^ (s as u64 + 1),
        )?;
        let mut done = 0;
        for &at in &reads {
            while done < at {
                k.step(m, &mut c)?;
                done += 1;
            }
            out.push(RelaxationRow {
                dataset: dataset.into(),
                seed: cfg.seed,
                start: name.to_string(),
                steps: at,
                z2: z2(t, c.state.latents(m)?, &mean, &var),
            });
        }
    }
    // The floor: an independent chain from the same start after `burn`.
    let mut c = k.init(
        m,
        Some(data.as_ref()),
        Some(rows(0).as_ref()),
        b,
        seed ^ 0xf1,
    )?;
    for _ in 0..burn {
        k.step(m, &mut c)?;
    }
    out.push(RelaxationRow {
        dataset: dataset.into(),
        seed: cfg.seed,
        start: "relaxed".into(),
        steps: burn,
        z2: z2(t, c.state.latents(m)?, &mean, &var),
    });
    Ok(out)
}
