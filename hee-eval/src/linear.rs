//! Linear anchors for density models: x = μ + W z + e with z ~ N(0, I_q)
//! and e ~ N(0, Ψ), fitted at maximum likelihood to a training set, with
//! exact log-likelihoods. Against these, a model that learns its noise can
//! say how much its nonlinear hierarchy adds (issue 23).
//!
//! * [`ppca`]: probabilistic PCA (Ψ = σ²I) in closed form (Tipping &
//!   Bishop 1999): W = U_q (Λ_q − σ²)^{1/2} from the top q eigenpairs of
//!   the sample covariance, σ² the mean of the d − q discarded eigenvalues.
//! * [`factor_analysis`]: one noise variance per dimension (Ψ diagonal),
//!   which has no closed form; fitted by EM (Rubin & Thayer 1982) from the
//!   PPCA solution until an iteration improves the mean training
//!   log-likelihood by less than [`FaConfig::tolerance`] nats.
//!
//! Both keep C = Ψ + WWᵀ in factored form: log-densities cost O(dq) per
//! row (Woodbury), and the training log-likelihood is exact from the
//! sample covariance S.

use faer::linalg::solvers::Solve;
use faer::{Mat, MatRef, Side};
use hee_core::reference::linear_gaussian::{symmetric_eigen, Gaussian};
use hee_core::{HeeError, Result};
use rayon::prelude::*;

/// A fitted linear-gaussian density N(μ, Ψ + WWᵀ).
#[derive(Debug, Clone)]
pub struct LinearFit {
    pub mean: Vec<f64>,
    /// W, d × q.
    pub loadings: Mat<f64>,
    /// The diagonal of Ψ, one noise variance per dimension.
    pub noise: Vec<f64>,
    /// Mean log-likelihood of the training rows (nats per row).
    pub train_log_likelihood: f64,
    /// EM iterations run (0 for the closed form).
    pub iterations: usize,
    /// Whether EM met its tolerance (true for the closed form).
    pub converged: bool,
}

/// The sample mean and covariance (divisor n) of the rows of `data`.
fn moments(data: MatRef<'_, f64>) -> Result<(Vec<f64>, Mat<f64>)> {
    let (n, d) = (data.nrows(), data.ncols());
    if n < 2 || d == 0 {
        return Err(HeeError::dims(
            "training data",
            ">= 2 rows and >= 1 column",
            format!("{n}x{d}"),
        ));
    }
    if let Some((r, c)) = (0..n)
        .flat_map(|r| (0..d).map(move |c| (r, c)))
        .find(|&(r, c)| !data[(r, c)].is_finite())
    {
        return Err(HeeError::NonFiniteInput {
            field: "training data".into(),
            row: r,
            col: c,
            value: data[(r, c)],
        });
    }
    let mean: Vec<f64> = (0..d)
        .map(|c| (0..n).map(|r| data[(r, c)]).sum::<f64>() / n as f64)
        .collect();
    let centred = Mat::from_fn(n, d, |r, c| data[(r, c)] - mean[c]);
    let s = (centred.transpose() * &centred) * (1.0 / n as f64);
    Ok((mean, s))
}

fn check_rank(q: usize, d: usize) -> Result<()> {
    if q == 0 || q >= d {
        return Err(HeeError::dims(
            "q (latent dimensions)",
            format!("1..{d}"),
            q,
        ));
    }
    Ok(())
}

/// Probabilistic PCA with q latent dimensions at its maximum likelihood.
pub fn ppca(data: MatRef<'_, f64>, q: usize) -> Result<LinearFit> {
    let (mean, s) = moments(data)?;
    let d = s.nrows();
    check_rank(q, d)?;
    let (u, lam) = symmetric_eigen(&s, "sample covariance")?;
    // Ascending: the top q are the last q.
    let noise = lam[..d - q].iter().sum::<f64>() / (d - q) as f64;
    if noise.is_nan() || noise <= 0.0 {
        return Err(HeeError::Numerical {
            routine: "ppca",
            reason: format!(
                "the discarded eigenvalues average {noise}: the data span {q} dimensions or fewer"
            ),
        });
    }
    let loadings = Mat::from_fn(d, q, |i, k| {
        let col = d - 1 - k;
        u[(i, col)] * (lam[col] - noise).max(0.0).sqrt()
    });
    let mut fit = LinearFit {
        mean,
        loadings,
        noise: vec![noise; d],
        train_log_likelihood: f64::NAN,
        iterations: 0,
        converged: true,
    };
    fit.train_log_likelihood = fit.log_likelihood_from_moments(&s)?;
    Ok(fit)
}

/// Settings of [`factor_analysis`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaConfig {
    /// Stop when an iteration raises the mean training log-likelihood by
    /// less than this (nats per row).
    pub tolerance: f64,
    /// Stop after this many iterations regardless (then `converged` is false).
    pub max_iterations: usize,
    /// No noise variance goes below this (a floor on σ², as a density
    /// model's σ floor; 1e-12 is none in practice).
    pub noise_floor: f64,
}

impl Default for FaConfig {
    fn default() -> Self {
        FaConfig {
            tolerance: 1e-5,
            max_iterations: 5000,
            noise_floor: 1e-12,
        }
    }
}

/// Factor analysis with q factors at its maximum likelihood, by EM from
/// the PPCA solution. Every iteration raises the likelihood (EM, with the
/// floor applied in the M-step, which is the exact M-step of the floored
/// problem since Ψ's likelihood is separable and unimodal per dimension).
pub fn factor_analysis(data: MatRef<'_, f64>, q: usize, cfg: &FaConfig) -> Result<LinearFit> {
    if !(cfg.noise_floor > 0.0 && cfg.noise_floor.is_finite()) {
        return Err(HeeError::param(
            "fa.noise_floor",
            cfg.noise_floor,
            "must be finite and > 0",
        ));
    }
    if cfg.tolerance.is_nan() || cfg.tolerance < 0.0 {
        return Err(HeeError::param(
            "fa.tolerance",
            cfg.tolerance,
            "must be >= 0",
        ));
    }
    let start = ppca(data, q)?;
    let (_, s) = moments(data)?;
    let d = s.nrows();
    let mut fit = LinearFit {
        noise: start
            .noise
            .iter()
            .map(|&v| v.max(cfg.noise_floor))
            .collect(),
        converged: false,
        ..start
    };
    let mut ll = fit.log_likelihood_from_moments(&s)?;
    for it in 1..=cfg.max_iterations {
        // E-step in terms of S: β = (I + WᵀΨ⁻¹W)⁻¹ WᵀΨ⁻¹ (q × d), so that
        // E[z | x] = β(x − μ) and the mean of E[zzᵀ] is I − βW + βSβᵀ.
        let beta = fit.posterior_map()?;
        let sb = &s * beta.transpose(); // d × q
        let mut ezz = &beta * &sb; // βSβᵀ
        let bw = &beta * &fit.loadings;
        for i in 0..q {
            for k in 0..q {
                ezz[(i, k)] += if i == k { 1.0 } else { 0.0 } - bw[(i, k)];
            }
        }
        let llt = ezz.llt(Side::Lower).map_err(|_| HeeError::Numerical {
            routine: "factor analysis",
            reason: "E[zz^T] is not positive definite".into(),
        })?;
        // W = S βᵀ E[zzᵀ]⁻¹, Ψ = diag(S − W β S).
        let w = llt.solve(sb.transpose()).transpose().to_owned();
        let noise: Vec<f64> = (0..d)
            .map(|i| {
                let explained: f64 = (0..q).map(|k| w[(i, k)] * sb[(i, k)]).sum();
                (s[(i, i)] - explained).max(cfg.noise_floor)
            })
            .collect();
        fit.loadings = w;
        fit.noise = noise;
        fit.iterations = it;
        let next = fit.log_likelihood_from_moments(&s)?;
        let gain = next - ll;
        ll = next;
        if gain.abs() < cfg.tolerance {
            fit.converged = true;
            break;
        }
    }
    fit.train_log_likelihood = ll;
    Ok(fit)
}

impl LinearFit {
    /// Dimension d.
    pub fn dim(&self) -> usize {
        self.mean.len()
    }

    /// (I + WᵀΨ⁻¹W)⁻¹ WᵀΨ⁻¹, q × d: the posterior mean map of z.
    fn posterior_map(&self) -> Result<Mat<f64>> {
        let (pw, llt) = self.inner()?;
        Ok(llt.solve(pw.transpose()).to_owned())
    }

    /// Ψ⁻¹W (d × q) and the Cholesky factor of M = I + WᵀΨ⁻¹W.
    fn inner(&self) -> Result<(Mat<f64>, faer::linalg::solvers::Llt<f64>)> {
        let (d, q) = (self.dim(), self.loadings.ncols());
        let pw = Mat::from_fn(d, q, |i, k| self.loadings[(i, k)] / self.noise[i]);
        let mut m = self.loadings.transpose() * &pw;
        for k in 0..q {
            m[(k, k)] += 1.0;
        }
        let llt = m.llt(Side::Lower).map_err(|_| HeeError::Numerical {
            routine: "linear fit",
            reason: "I + W^T Psi^-1 W is not positive definite".into(),
        })?;
        Ok((pw, llt))
    }

    /// log det C = log det Ψ + log det M.
    fn log_det(&self, llt: &faer::linalg::solvers::Llt<f64>) -> f64 {
        let l = llt.L();
        let ld_m: f64 = (0..l.nrows()).map(|k| 2.0 * l[(k, k)].ln()).sum();
        self.noise.iter().map(|v| v.ln()).sum::<f64>() + ld_m
    }

    /// Mean log-likelihood of data whose sample covariance about `self.mean`
    /// is `s`: −½[d log 2π + log det C + tr(C⁻¹S)].
    fn log_likelihood_from_moments(&self, s: &Mat<f64>) -> Result<f64> {
        let d = self.dim();
        let (pw, llt) = self.inner()?;
        // tr(C⁻¹S) = tr(Ψ⁻¹S) − tr(M⁻¹ (Ψ⁻¹W)ᵀ S (Ψ⁻¹W)).
        let tr_p: f64 = (0..d).map(|i| s[(i, i)] / self.noise[i]).sum();
        let spw = s * &pw;
        let inner = pw.transpose() * &spw;
        let solved = llt.solve(&inner);
        let tr_w: f64 = (0..solved.nrows()).map(|k| solved[(k, k)]).sum();
        Ok(
            -0.5 * (d as f64 * (2.0 * std::f64::consts::PI).ln() + self.log_det(&llt) + tr_p
                - tr_w),
        )
    }

    /// log N(x; μ, C) of every row of `data` (rows × d).
    pub fn log_likelihoods(&self, data: MatRef<'_, f64>) -> Result<Vec<f64>> {
        let d = self.dim();
        if data.ncols() != d {
            return Err(HeeError::dims("data columns", d, data.ncols()));
        }
        let (pw, llt) = self.inner()?;
        let constant = -0.5 * (d as f64 * (2.0 * std::f64::consts::PI).ln() + self.log_det(&llt));
        (0..data.nrows())
            .into_par_iter()
            .map(|r| {
                let e: Vec<f64> = (0..d).map(|c| data[(r, c)] - self.mean[c]).collect();
                if let Some(c) = e.iter().position(|v| !v.is_finite()) {
                    return Err(HeeError::NonFiniteInput {
                        field: "data".into(),
                        row: r,
                        col: c,
                        value: data[(r, c)],
                    });
                }
                // eᵀC⁻¹e = eᵀΨ⁻¹e − uᵀM⁻¹u with u = (Ψ⁻¹W)ᵀe.
                let quad: f64 = e.iter().zip(&self.noise).map(|(v, p)| v * v / p).sum();
                let u = Mat::from_fn(pw.ncols(), 1, |k, _| {
                    (0..d).map(|i| pw[(i, k)] * e[i]).sum()
                });
                let mu = llt.solve(&u);
                let corr: f64 = (0..u.nrows()).map(|k| u[(k, 0)] * mu[(k, 0)]).sum();
                Ok(constant - 0.5 * (quad - corr))
            })
            .collect()
    }

    /// Mean log-likelihood of the rows of `data` (nats per row).
    pub fn mean_log_likelihood(&self, data: MatRef<'_, f64>) -> Result<f64> {
        let v = self.log_likelihoods(data)?;
        Ok(v.iter().sum::<f64>() / v.len().max(1) as f64)
    }

    /// The same density as a dense [`Gaussian`] (d × d covariance), for checks.
    pub fn to_gaussian(&self) -> Result<Gaussian> {
        let d = self.dim();
        let mut c = &self.loadings * self.loadings.transpose();
        for i in 0..d {
            c[(i, i)] += self.noise[i];
        }
        Gaussian::new(self.mean.clone(), c)
    }
}
