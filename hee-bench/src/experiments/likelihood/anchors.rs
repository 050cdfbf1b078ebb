//! The linear anchors of `hee reproduce likelihood` (issue 23), fitted to
//! a data set's training split and evaluated exactly on the same
//! dequantised held-out images as the HEE models, and the comparisons of a
//! model against them (`comparison.csv`).
//!
//! A model wins against an anchor when its margin (mean log-likelihood
//! over the images, HEE's by AIS) exceeds the BDMC gap of the same model
//! (which bounds AIS's error on data like the model's) plus two standard
//! errors. Two standard errors are reported: HEE's over images (what the
//! issue asks), and the paired one of the per-image difference, which
//! also counts the anchor's image-to-image spread (the right one for "is
//! the density better on images like these").

use hee_core::faer::{Mat, MatRef};
use hee_eval::diagnostics::median;
use hee_eval::linear::{factor_analysis, ppca, FaConfig, LinearFit};

use super::LikelihoodRow;
use crate::CliError;

/// One anchor: its fit and its log-density of every evaluated image.
pub struct Anchor {
    pub name: String,
    pub fit: LinearFit,
    pub per_image: Vec<f64>,
}

/// PPCA and factor analysis at their maximum likelihood with q = 64 and
/// 256 factors, and factor analysis with q = 256 under the HEE runs' σ
/// floor (`floor`, so that its noise variances stop at floor²): the
/// like-for-like linear model of a run that learns per-pixel σ₀.
pub fn fit_anchors(
    train: &Mat<f64>,
    images: MatRef<'_, f64>,
    floor: f64,
    fa: &FaConfig,
    progress: &mut dyn FnMut(&str),
) -> Result<Vec<Anchor>, CliError> {
    let mut out = Vec::new();
    let mut push =
        |name: String, fit: LinearFit, progress: &mut dyn FnMut(&str)| -> Result<(), CliError> {
            let per_image = fit.log_likelihoods(images)?;
            progress(&format!(
                "likelihood: {name}: train {:.2}, test {:.2} nats per image ({} EM iterations{})",
                fit.train_log_likelihood,
                mean(&per_image),
                fit.iterations,
                if fit.converged { "" } else { ", not converged" }
            ));
            out.push(Anchor {
                name,
                fit,
                per_image,
            });
            Ok(())
        };
    for q in [64, 256] {
        push(format!("ppca-ml-q{q}"), ppca(train.as_ref(), q)?, progress)?;
        push(
            format!("fa-q{q}"),
            factor_analysis(train.as_ref(), q, fa)?,
            progress,
        )?;
    }
    let floored = FaConfig {
        noise_floor: floor * floor,
        ..*fa
    };
    push(
        format!("fa-floor{floor}-q256"),
        factor_analysis(train.as_ref(), 256, &floored)?,
        progress,
    )?;
    Ok(out)
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

fn se(v: &[f64]) -> f64 {
    let n = v.len() as f64;
    let m = mean(v);
    (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0) / n).sqrt()
}

/// bits/dim of `nats` per image of d-dimensional 8-bit data dequantised to
/// [0, 1]: −log p/(d ln 2) + 8.
pub fn bits(nats: f64, d: usize) -> f64 {
    -nats / (d as f64 * std::f64::consts::LN_2) + 8.0
}

/// The row of an anchor in `likelihood.csv` (exact values).
pub fn anchor_row(dataset: &str, a: &Anchor, d: usize) -> LikelihoodRow {
    let m = mean(&a.per_image);
    let mut row =
        LikelihoodRow::exact(&a.name, dataset, a.per_image.len(), m, f64::NAN, bits(m, d));
    row.max_table_error = 0.0;
    row
}

/// A model against an anchor on the same images.
#[derive(Debug, Clone)]
pub struct Comparison {
    pub dataset: String,
    pub model: String,
    pub anchor: String,
    pub model_bits: f64,
    pub anchor_bits: f64,
    /// Mean over images of (model − anchor), nats per image.
    pub margin: f64,
    /// The model's BDMC gap (upper − lower) on data simulated from it.
    pub bdmc_gap: f64,
    /// SE of the model's mean over images.
    pub se_model: f64,
    /// SE of the mean of the per-image differences.
    pub se_paired: f64,
    /// Share of images the model gives the higher density.
    pub share_better: f64,
    pub median_margin: f64,
}

impl Comparison {
    /// Whether the margin exceeds the BDMC gap plus two of HEE's SE.
    pub fn wins(&self) -> bool {
        self.margin > self.bdmc_gap + 2.0 * self.se_model
    }

    /// Whether it exceeds the gap plus two paired SE.
    pub fn wins_paired(&self) -> bool {
        self.margin > self.bdmc_gap + 2.0 * self.se_paired
    }

    /// A model (AIS per image, its row) against `anchor`.
    pub fn of(
        dataset: &str,
        row: &LikelihoodRow,
        per_image: &[f64],
        anchor: &Anchor,
        d: usize,
    ) -> Self {
        let diff: Vec<f64> = per_image
            .iter()
            .zip(&anchor.per_image)
            .map(|(a, b)| a - b)
            .collect();
        let n = diff.len();
        Comparison {
            dataset: dataset.into(),
            model: row.model.clone(),
            anchor: anchor.name.clone(),
            model_bits: row.bits_per_dim,
            anchor_bits: bits(mean(&anchor.per_image), d),
            margin: mean(&diff),
            bdmc_gap: row.bdmc_upper_nats - row.bdmc_lower_nats,
            se_model: se(per_image),
            se_paired: se(&diff),
            share_better: diff.iter().filter(|&&v| v > 0.0).count() as f64 / n as f64,
            median_margin: median(&diff),
        }
    }

    /// One line of the progress output.
    pub fn summary(&self) -> String {
        format!(
            "likelihood: {} {} against {}: {:.4} vs {:.4} bits/dim, margin {:.2} nats (BDMC gap {:.2}, SE {:.2}, paired SE {:.2}): {} / paired {}; better on {:.1}% of images, median margin {:.2}",
            self.dataset,
            self.model,
            self.anchor,
            self.model_bits,
            self.anchor_bits,
            self.margin,
            self.bdmc_gap,
            self.se_model,
            self.se_paired,
            if self.wins() { "wins" } else { "does not win" },
            if self.wins_paired() { "wins" } else { "does not win" },
            100.0 * self.share_better,
            self.median_margin
        )
    }
}

/// The header of `comparison.csv`.
pub const COMPARISON_HEADER: &str = "dataset,model,anchor,model_bits_per_dim,anchor_bits_per_dim,margin_nats,bdmc_gap_nats,se_model,se_paired,wins,wins_paired,share_better,median_margin_nats";

impl Comparison {
    /// The cells of `comparison.csv`.
    pub fn cells(&self) -> Vec<String> {
        vec![
            self.dataset.clone(),
            self.model.clone(),
            self.anchor.clone(),
            format!("{:.4}", self.model_bits),
            format!("{:.4}", self.anchor_bits),
            format!("{:.3}", self.margin),
            format!("{:.3}", self.bdmc_gap),
            format!("{:.3}", self.se_model),
            format!("{:.3}", self.se_paired),
            self.wins().to_string(),
            self.wins_paired().to_string(),
            format!("{:.4}", self.share_better),
            format!("{:.3}", self.median_margin),
        ]
    }
}
