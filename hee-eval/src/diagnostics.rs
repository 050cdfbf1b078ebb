//! Sampler diagnostics.

use faer::Mat;
use hee_core::reference::linear_gaussian::Gaussian;
use hee_core::{HeeError, Result};

/// How far an estimated gaussian N(m̂, Ĉ) is from the exact N(m, Σ).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MomentErrors {
    /// ‖L⁻¹(m̂ − m)‖/√d with Σ = LLᵀ: the mean error in posterior standard
    /// deviations (root mean square over whitened coordinates).
    pub mean_rel_err: f64,
    /// ‖Ĉ − Σ‖_F / ‖Σ‖_F.
    pub cov_rel_err: f64,
    /// KL(N(m̂, Ĉ) ‖ N(m, Σ)); infinite if Ĉ is singular.
    pub kl: f64,
}

/// Errors of an estimated mean and covariance against the exact gaussian;
/// the estimate must have the exact law's dimension (a typed error
/// otherwise).
pub fn moment_errors(mean: &[f64], cov: &Mat<f64>, exact: &Gaussian) -> Result<MomentErrors> {
    let d = exact.dim();
    let shape = |field: &str, got: String| HeeError::DimensionMismatch {
        field: field.into(),
        expected: if field == "mean" {
            d.to_string()
        } else {
            format!("{d}x{d}")
        },
        got,
    };
    if mean.len() != d {
        return Err(shape("mean", mean.len().to_string()));
    }
    if cov.nrows() != d || cov.ncols() != d {
        return Err(shape("cov", format!("{}x{}", cov.nrows(), cov.ncols())));
    }
    let diff: Vec<f64> = mean.iter().zip(&exact.mean).map(|(a, b)| a - b).collect();
    let z = exact.whiten(&diff);
    let mean_rel_err = (z.iter().map(|v| v * v).sum::<f64>() / d as f64).sqrt();
    let (mut num, mut den) = (0.0, 0.0);
    for i in 0..d {
        for j in 0..d {
            num += (cov[(i, j)] - exact.cov[(i, j)]).powi(2);
            den += exact.cov[(i, j)].powi(2);
        }
    }
    let kl = match Gaussian::new(mean.to_vec(), cov.clone()) {
        Ok(est) => est.kl_to(exact)?,
        Err(_) => f64::INFINITY,
    };
    Ok(MomentErrors {
        mean_rel_err,
        cov_rel_err: (num / den).sqrt(),
        kl,
    })
}

/// Streaming mean and covariance of d-dimensional samples (f64 sums).
#[derive(Debug, Clone)]
pub struct MomentAccumulator {
    n: f64,
    s1: Vec<f64>,
    s2: Mat<f64>,
}

impl MomentAccumulator {
    /// An empty accumulator for dimension `d`.
    pub fn new(d: usize) -> Self {
        MomentAccumulator {
            n: 0.0,
            s1: vec![0.0; d],
            s2: Mat::zeros(d, d),
        }
    }
    /// Adds one sample.
    ///
    /// # Panics
    /// If `x` does not have the dimension given to [`new`](Self::new) (a
    /// programming error of the caller, like an out-of-range slice index).
    pub fn push(&mut self, x: &[f64]) {
        assert_eq!(
            x.len(),
            self.s1.len(),
            "MomentAccumulator: sample dimension"
        );
        self.n += 1.0;
        for i in 0..x.len() {
            self.s1[i] += x[i];
            for j in 0..=i {
                self.s2[(i, j)] += x[i] * x[j];
            }
        }
    }
    /// Number of samples.
    pub fn count(&self) -> f64 {
        self.n
    }
    /// Sample mean and covariance (divisor n).
    pub fn moments(&self) -> (Vec<f64>, Mat<f64>) {
        let d = self.s1.len();
        let m: Vec<f64> = self.s1.iter().map(|v| v / self.n).collect();
        let c = Mat::from_fn(d, d, |i, j| {
            let (a, b) = if j <= i { (i, j) } else { (j, i) };
            self.s2[(a, b)] / self.n - m[a] * m[b]
        });
        (m, c)
    }
}

/// Effective sample size of a scalar quantity from several chains, as Stan
/// defines it (and ArviZ's `ess(method="mean")` without rank normalisation):
/// the combined autocorrelation ρ̂_t = 1 − (W − ⟨s²_m ρ_{t,m}⟩)/var⁺, summed
/// with Geyer's initial monotone positive-pair rule, ESS = M·N/τ̂.
///
/// All chains must have the same length N ≥ 4; returns `None` otherwise, or
/// when the chains are constant.
pub fn ess(chains: &[Vec<f64>]) -> Option<f64> {
    let m = chains.len();
    let n = chains.first()?.len();
    if m == 0 || n < 4 || chains.iter().any(|c| c.len() != n) {
        return None;
    }
    let nf = n as f64;
    let means: Vec<f64> = chains.iter().map(|c| c.iter().sum::<f64>() / nf).collect();
    // Autocovariances of every chain at every lag, divisor N (as Stan), by FFT.
    let acovs: Vec<Vec<f64>> = chains
        .iter()
        .zip(&means)
        .map(|(c, &mu)| autocovariance(c, mu))
        .collect();
    let acov = |k: usize, t: usize| -> f64 { acovs[k][t] };
    let acov0: Vec<f64> = (0..m).map(|k| acov(k, 0)).collect();
    // Within-chain variance with divisor N − 1.
    let w = acov0.iter().map(|v| v * nf / (nf - 1.0)).sum::<f64>() / m as f64;
    let grand = means.iter().sum::<f64>() / m as f64;
    let b_over_n = if m > 1 {
        means.iter().map(|v| (v - grand).powi(2)).sum::<f64>() / (m as f64 - 1.0)
    } else {
        0.0
    };
    let var_plus = w * (nf - 1.0) / nf + b_over_n;
    if var_plus.is_nan() || var_plus <= 0.0 {
        return None;
    }
    let rho = |t: usize| -> f64 {
        let mean_acov = (0..m).map(|k| acov(k, t)).sum::<f64>() / m as f64;
        1.0 - (w - mean_acov) / var_plus
    };
    // Geyer: sum pairs Γ_k = ρ_{2k} + ρ_{2k+1} while positive, monotone.
    let mut tau = -1.0;
    let mut prev_pair = f64::INFINITY;
    let mut t = 0;
    while t + 1 < n {
        let pair = rho(t) + rho(t + 1);
        if pair <= 0.0 {
            break;
        }
        let pair = pair.min(prev_pair);
        tau += 2.0 * pair;
        prev_pair = pair;
        t += 2;
    }
    // Stan bounds τ̂ below by 1/log10(MN) to avoid absurd ESS.
    let tau = tau.max(1.0 / ((m as f64) * nf).log10());
    Some(m as f64 * nf / tau)
}

/// Integrated autocorrelation time τ̂ = M·N/ESS (in steps).
pub fn iact(chains: &[Vec<f64>]) -> Option<f64> {
    let total = chains.iter().map(|c| c.len()).sum::<usize>() as f64;
    ess(chains).map(|e| total / e)
}

/// Autocovariance of `x` about `mean` at every lag 0..N−1 with divisor N,
/// by FFT (zero-padded to 2N, so the correlation is linear, not circular):
/// O(N log N) instead of O(N²).
pub fn autocovariance(x: &[f64], mean: f64) -> Vec<f64> {
    use rustfft::num_complex::Complex;
    let n = x.len();
    let len = (2 * n).next_power_of_two();
    let mut planner = rustfft::FftPlanner::<f64>::new();
    let fwd = planner.plan_fft_forward(len);
    let inv = planner.plan_fft_inverse(len);
    let mut buf: Vec<Complex<f64>> = x.iter().map(|v| Complex::new(v - mean, 0.0)).collect();
    buf.resize(len, Complex::new(0.0, 0.0));
    fwd.process(&mut buf);
    for c in buf.iter_mut() {
        *c = Complex::new(c.norm_sqr(), 0.0);
    }
    inv.process(&mut buf);
    // rustfft does not normalise: divide by len, then by N for the estimator.
    buf.iter()
        .take(n)
        .map(|c| c.re / (len as f64 * n as f64))
        .collect()
}

/// The median of `v` (the mean of the middle two for an even count; NaN
/// when empty). NaNs sort last.
pub fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        0.5 * (s[n / 2 - 1] + s[n / 2])
    }
}
