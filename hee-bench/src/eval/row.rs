//! One row of `likelihood.csv` and its cells.

use hee_eval::likelihood::Estimate;

/// The columns of `likelihood.csv`; the last three go beyond issue 18's
/// list: the AIS standard error over independent runs, the BDMC lower bound
/// (forward AIS on the simulated data, so the gap is upper − lower) and the
/// mean HMC acceptance rate.
pub const HEADER: &str = "model,dataset,n_test,exact_nats,optimum_nats,ais_nats,ais_se,is_nats,bdmc_upper_nats,ess,bits_per_dim,seconds,ais_se_runs,bdmc_lower_nats,acceptance,max_table_error";

/// Log-likelihoods per image (nats); NaN, written empty, where a value
/// does not exist.
#[derive(Debug, Clone, PartialEq)]
pub struct LikelihoodRow {
    pub model: String,
    pub dataset: String,
    pub n_test: usize,
    pub exact_nats: f64,
    pub optimum_nats: f64,
    pub ais_nats: f64,
    /// Standard error of `ais_nats` over images.
    pub ais_se: f64,
    pub is_nats: f64,
    pub bdmc_upper_nats: f64,
    /// Mean effective sample size of the AIS weights per image.
    pub ess: f64,
    pub bits_per_dim: f64,
    pub seconds: f64,
    pub ais_se_runs: f64,
    pub bdmc_lower_nats: f64,
    pub acceptance: f64,
    /// The largest measured error of the normaliser tables the estimate
    /// used (0 for an all-gaussian model; each is refused above
    /// `TABLE_TOLERANCE`).
    pub max_table_error: f64,
}

impl LikelihoodRow {
    /// A row of estimates: AIS and IS on the images, the BDMC bounds.
    #[allow(clippy::too_many_arguments)]
    pub fn estimated(
        model: &str,
        dataset: &str,
        n_test: usize,
        ais: &Estimate,
        is: &Estimate,
        lower: f64,
        upper: f64,
        seconds: f64,
        d: usize,
    ) -> Self {
        LikelihoodRow {
            model: model.into(),
            dataset: dataset.into(),
            n_test,
            exact_nats: f64::NAN,
            optimum_nats: f64::NAN,
            ais_nats: ais.mean(),
            ais_se: ais.se_images(),
            is_nats: is.mean(),
            bdmc_upper_nats: upper,
            ess: ais.mean_ess(),
            bits_per_dim: ais.bits_per_dim(d),
            seconds,
            ais_se_runs: ais.se_runs(),
            bdmc_lower_nats: lower,
            acceptance: ais.acceptance,
            max_table_error: f64::NAN,
        }
    }

    /// A row of exact values only (closed forms).
    pub fn exact(
        model: &str,
        dataset: &str,
        n_test: usize,
        exact: f64,
        optimum: f64,
        bits: f64,
    ) -> Self {
        LikelihoodRow {
            model: model.into(),
            dataset: dataset.into(),
            n_test,
            exact_nats: exact,
            optimum_nats: optimum,
            ais_nats: f64::NAN,
            ais_se: f64::NAN,
            is_nats: f64::NAN,
            bdmc_upper_nats: f64::NAN,
            ess: f64::NAN,
            bits_per_dim: bits,
            seconds: 0.0,
            ais_se_runs: f64::NAN,
            bdmc_lower_nats: f64::NAN,
            acceptance: f64::NAN,
            max_table_error: f64::NAN,
        }
    }

    /// One line for the progress output (the values that exist).
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        if self.exact_nats.is_finite() {
            parts.push(format!("exact {:.2}", self.exact_nats));
        }
        if self.optimum_nats.is_finite() {
            parts.push(format!("optimum {:.2}", self.optimum_nats));
        }
        if self.ais_nats.is_finite() {
            parts.push(format!(
                "AIS {:.2} ± {:.2} (runs ± {:.3}, ESS {:.1}, acceptance {:.2}), IS {:.2}",
                self.ais_nats,
                self.ais_se,
                self.ais_se_runs,
                self.ess,
                self.acceptance,
                self.is_nats
            ));
        }
        if self.bdmc_upper_nats.is_finite() {
            parts.push(format!(
                "BDMC on simulated data [{:.2}, {:.2}]",
                self.bdmc_lower_nats, self.bdmc_upper_nats
            ));
        }
        if self.bits_per_dim.is_finite() {
            parts.push(format!("{:.4} bits/dim", self.bits_per_dim));
        }
        format!(
            "{} on {} ({} images): {}; {:.1} s",
            self.model,
            self.dataset,
            self.n_test,
            parts.join(", "),
            self.seconds
        )
    }

    /// The cells of `likelihood.csv`.
    pub fn cells(&self) -> Vec<String> {
        let f = fixed_cell;
        vec![
            self.model.clone(),
            self.dataset.clone(),
            self.n_test.to_string(),
            f(self.exact_nats, 3),
            f(self.optimum_nats, 3),
            f(self.ais_nats, 3),
            f(self.ais_se, 3),
            f(self.is_nats, 3),
            f(self.bdmc_upper_nats, 3),
            f(self.ess, 2),
            f(self.bits_per_dim, 4),
            f(self.seconds, 1),
            f(self.ais_se_runs, 4),
            f(self.bdmc_lower_nats, 3),
            f(self.acceptance, 3),
            if self.max_table_error.is_nan() {
                String::new()
            } else {
                format!("{:.2e}", self.max_table_error)
            },
        ]
    }
}

/// `v` with `p` decimals for a CSV cell; NaN (a value that does not exist)
/// as an empty cell.
pub fn fixed_cell(v: f64, p: usize) -> String {
    if v.is_nan() {
        String::new()
    } else {
        format!("{v:.p$}")
    }
}
