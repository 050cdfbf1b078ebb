//! Exact references for linear-gaussian HEE models (spec §8): identity f and
//! gaussian layers make U quadratic in the latents, so the posterior and the
//! marginal of x₀ are gaussian and known in closed form.

use faer::linalg::solvers::Solve;
use faer::{Mat, MatRef, Side};

use crate::error::{HeeError, Result};
use crate::model::HeeModel;
use crate::scalar::Real;

/// A multivariate normal N(mean, cov) with its Cholesky factor.
#[derive(Debug, Clone)]
pub struct Gaussian {
    pub mean: Vec<f64>,
    pub cov: Mat<f64>,
    chol: Mat<f64>,
    /// cov⁻¹, computed once (KL and densities reuse it).
    prec: Mat<f64>,
}

impl Gaussian {
    /// Builds N(mean, cov); fails if `cov` is not symmetric positive definite.
    pub fn new(mean: Vec<f64>, cov: Mat<f64>) -> Result<Self> {
        let d = mean.len();
        if cov.nrows() != d || cov.ncols() != d {
            return Err(HeeError::dims(
                "cov",
                format!("{d}x{d}"),
                format!("{}x{}", cov.nrows(), cov.ncols()),
            ));
        }
        let sym = Mat::from_fn(d, d, |i, j| 0.5 * (cov[(i, j)] + cov[(j, i)]));
        let llt = sym.llt(Side::Lower).map_err(|_| HeeError::Numerical {
            routine: "cholesky",
            reason: "covariance is not positive definite".into(),
        })?;
        let chol = llt.L().to_owned();
        let prec = llt.solve(Mat::<f64>::identity(d, d));
        Ok(Gaussian {
            mean,
            cov: sym,
            chol,
            prec,
        })
    }

    /// Dimension.
    pub fn dim(&self) -> usize {
        self.mean.len()
    }

    /// Lower Cholesky factor L with cov = L Lᵀ.
    pub fn chol(&self) -> MatRef<'_, f64> {
        self.chol.as_ref()
    }

    /// log det cov.
    pub fn log_det(&self) -> f64 {
        (0..self.dim()).map(|i| 2.0 * self.chol[(i, i)].ln()).sum()
    }

    /// Solves L z = v (forward substitution).
    pub fn whiten(&self, v: &[f64]) -> Vec<f64> {
        let d = self.dim();
        let mut z = v.to_vec();
        for i in 0..d {
            let mut s = z[i];
            for k in 0..i {
                s -= self.chol[(i, k)] * z[k];
            }
            z[i] = s / self.chol[(i, i)];
        }
        z
    }

    /// cov⁻¹.
    pub fn precision(&self) -> MatRef<'_, f64> {
        self.prec.as_ref()
    }

    /// log N(x; mean, cov).
    pub fn log_pdf(&self, x: &[f64]) -> f64 {
        let diff: Vec<f64> = x.iter().zip(&self.mean).map(|(a, b)| a - b).collect();
        let z = self.whiten(&diff);
        let q: f64 = z.iter().map(|v| v * v).sum();
        -0.5 * (q + self.log_det() + self.dim() as f64 * (2.0 * std::f64::consts::PI).ln())
    }

    /// KL(self ‖ other) between two gaussians of the same dimension.
    pub fn kl_to(&self, other: &Gaussian) -> Result<f64> {
        let d = self.dim();
        if other.dim() != d {
            return Err(HeeError::dims("kl: dimension", d, other.dim()));
        }
        let p1 = &other.prec;
        let mut tr = 0.0;
        for i in 0..d {
            for k in 0..d {
                tr += p1[(i, k)] * self.cov[(k, i)];
            }
        }
        let diff: Vec<f64> = other
            .mean
            .iter()
            .zip(&self.mean)
            .map(|(a, b)| a - b)
            .collect();
        let z = other.whiten(&diff);
        let maha: f64 = z.iter().map(|v| v * v).sum();
        Ok(0.5 * (tr + maha - d as f64 + other.log_det() - self.log_det()))
    }
}

/// A linear-gaussian HEE model in f64.
#[derive(Debug, Clone)]
pub struct LinearGaussian {
    sizes: Vec<usize>,
    /// σ² of every unit of every layer.
    sigma2: Vec<Vec<f64>>,
    w: Vec<Mat<f64>>,
    b: Vec<Vec<f64>>,
}

impl LinearGaussian {
    /// The exact counterpart of `model`; fails unless f is the identity and
    /// every layer is gaussian.
    pub fn from_model<T: Real>(model: &HeeModel<T>) -> Result<Self> {
        if !model.nonlinearity().is_identity() {
            return Err(HeeError::Unsupported(format!(
                "exact posterior needs f = identity, not {}",
                model.nonlinearity().name()
            )));
        }
        let mut sigma2 = Vec::new();
        for l in 0..model.n_layers() {
            if !model.energy(l).is_gaussian() {
                return Err(HeeError::Unsupported(format!(
                    "exact posterior needs gaussian layers; layer {l} is {}",
                    model.energy(l).name()
                )));
            }
            sigma2.push(match model.unit_sigmas(l) {
                Some(u) => u.iter().map(|s| s * s).collect(),
                None => vec![model.energy(l).sigma().powi(2); model.size(l)],
            });
        }
        Ok(LinearGaussian {
            sizes: model.layers().iter().map(|s| s.size).collect(),
            sigma2,
            w: (0..model.top())
                .map(|l| {
                    let w = model.weight(l);
                    Mat::from_fn(w.nrows(), w.ncols(), |i, j| w[(i, j)].f64())
                })
                .collect(),
            b: (0..model.n_layers())
                .map(|l| model.bias(l).iter().map(|v| v.f64()).collect())
                .collect(),
        })
    }

    /// Number of layers (L + 1).
    pub fn n_layers(&self) -> usize {
        self.sizes.len()
    }
    /// Width of layer l.
    pub fn size(&self, l: usize) -> usize {
        self.sizes[l]
    }
    /// σ_l² of a layer whose units share σ (unit 0's otherwise; see
    /// [`unit_sigma2`](Self::unit_sigma2)).
    pub fn sigma2(&self, l: usize) -> f64 {
        self.sigma2[l][0]
    }
    /// σ² of every unit of layer l.
    pub fn unit_sigma2(&self, l: usize) -> &[f64] {
        &self.sigma2[l]
    }
    /// True when every layer's units share one σ.
    pub fn shares_sigma(&self) -> bool {
        self.sigma2.iter().all(|s| s.iter().all(|&v| v == s[0]))
    }
    /// W_l.
    pub fn weight(&self, l: usize) -> MatRef<'_, f64> {
        self.w[l].as_ref()
    }
    /// b_l.
    pub fn bias(&self, l: usize) -> &[f64] {
        &self.b[l]
    }
    /// Number of latent units (layers 1…L).
    pub fn latent_dim(&self) -> usize {
        self.sizes[1..].iter().sum()
    }
    /// Offset of latent layer k ≥ 1 in the latent vector.
    pub fn latent_offset(&self, k: usize) -> usize {
        self.sizes[1..k].iter().sum()
    }

    /// Λ = ∇²U over the latents: block tridiagonal with diagonal blocks
    /// D_k⁻¹ + W_{k−1}ᵀ D_{k−1} W_{k−1} (D_l = diag σ_l² of its units) and
    /// off-diagonal blocks −W_k.
    pub fn precision(&self) -> Mat<f64> {
        let d = self.latent_dim();
        let mut p = Mat::<f64>::zeros(d, d);
        for k in 1..self.n_layers() {
            let o = self.latent_offset(k);
            let wb = &self.w[k - 1];
            let below = &self.sigma2[k - 1];
            for i in 0..self.sizes[k] {
                p[(o + i, o + i)] += 1.0 / self.sigma2[k][i];
                for j in 0..self.sizes[k] {
                    let mut s = 0.0;
                    for r in 0..wb.nrows() {
                        s += below[r] * wb[(r, i)] * wb[(r, j)];
                    }
                    p[(o + i, o + j)] += s;
                }
            }
            if k + 1 < self.n_layers() {
                let o2 = self.latent_offset(k + 1);
                let wk = &self.w[k];
                for i in 0..self.sizes[k] {
                    for j in 0..self.sizes[k + 1] {
                        p[(o + i, o2 + j)] = -wk[(i, j)];
                        p[(o2 + j, o + i)] = -wk[(i, j)];
                    }
                }
            }
        }
        p
    }

    /// ∇U at x_latent = 0 with x₀ clamped.
    pub fn grad_at_zero(&self, x0: &[f64]) -> Vec<f64> {
        let mut g = vec![0.0; self.latent_dim()];
        for k in 1..self.n_layers() {
            let o = self.latent_offset(k);
            let wb = &self.w[k - 1];
            // Residual of the layer below at x = 0.
            let r: Vec<f64> = (0..self.sizes[k - 1])
                .map(|i| {
                    let mean = self.sigma2[k - 1][i] * self.b[k - 1][i];
                    if k == 1 {
                        x0[i] - mean
                    } else {
                        -mean
                    }
                })
                .collect();
            for j in 0..self.sizes[k] {
                let mut s = 0.0;
                for (i, ri) in r.iter().enumerate() {
                    s += wb[(i, j)] * ri;
                }
                g[o + j] = -self.b[k][j] - s;
            }
        }
        g
    }

    /// The exact posterior p(x₁ … x_L | x₀) = N(−Λ⁻¹∇U(0), Λ⁻¹).
    pub fn posterior(&self, x0: &[f64]) -> Result<Gaussian> {
        if x0.len() != self.sizes[0] {
            return Err(HeeError::dims("x0", self.sizes[0], x0.len()));
        }
        let p = self.precision();
        let llt = p.llt(Side::Lower).map_err(|_| HeeError::Numerical {
            routine: "cholesky",
            reason: "posterior precision is not positive definite".into(),
        })?;
        let d = self.latent_dim();
        let cov = llt.solve(Mat::<f64>::identity(d, d));
        let g = self.grad_at_zero(x0);
        let mean: Vec<f64> = (0..d)
            .map(|i| -(0..d).map(|j| cov[(i, j)] * g[j]).sum::<f64>())
            .collect();
        Gaussian::new(mean, cov)
    }

    /// The marginal p(x₀), by the top-down recursion
    /// mean_l = D_l(W_l mean_{l+1} + b_l), cov_l = D_l W_l cov_{l+1} W_lᵀ D_l + D_l
    /// (D_l = diag σ_l²).
    pub fn marginal(&self) -> Result<Gaussian> {
        let top = self.n_layers() - 1;
        let st = &self.sigma2[top];
        let mut mean: Vec<f64> = self.b[top].iter().zip(st).map(|(v, s)| s * v).collect();
        let mut cov = Mat::from_fn(self.sizes[top], self.sizes[top], |i, j| {
            if i == j {
                st[i]
            } else {
                0.0
            }
        });
        for l in (0..top).rev() {
            let s2 = &self.sigma2[l];
            // D_l W_l, row i scaled by σ_i².
            let dw = Mat::from_fn(self.w[l].nrows(), self.w[l].ncols(), |i, j| {
                s2[i] * self.w[l][(i, j)]
            });
            let wm = &self.w[l] * Mat::from_fn(mean.len(), 1, |i, _| mean[i]);
            mean = (0..self.sizes[l])
                .map(|i| s2[i] * (wm[(i, 0)] + self.b[l][i]))
                .collect();
            let mut next = &dw * &cov * dw.transpose();
            for i in 0..self.sizes[l] {
                next[(i, i)] += s2[i];
            }
            cov = next;
        }
        Gaussian::new(mean, cov)
    }

    /// Mean log p(x₀) over the rows of `data` (one observation per row).
    pub fn mean_log_likelihood(&self, data: MatRef<'_, f64>) -> Result<f64> {
        let m = self.marginal()?;
        mean_log_pdf(&m, data)
    }
}

/// Mean log-density of the rows of `data` under `g`.
pub fn mean_log_pdf(g: &Gaussian, data: MatRef<'_, f64>) -> Result<f64> {
    if data.ncols() != g.dim() {
        return Err(HeeError::dims("data columns", g.dim(), data.ncols()));
    }
    let mut s = 0.0;
    let mut row = vec![0.0; g.dim()];
    for r in 0..data.nrows() {
        for (c, v) in row.iter_mut().enumerate() {
            *v = data[(r, c)];
        }
        s += g.log_pdf(&row);
    }
    Ok(s / data.nrows() as f64)
}

/// Maximum-likelihood probabilistic PCA with a fixed isotropic noise
/// variance: mean = sample mean, covariance with the sample covariance's top
/// `q` eigenvalues kept where they exceed `noise_var` and every other
/// eigenvalue set to `noise_var` (Tipping & Bishop 1999, with σ² fixed).
pub fn ppca_fixed_noise(data: MatRef<'_, f64>, q: usize, noise_var: f64) -> Result<Gaussian> {
    let (n, d) = (data.nrows(), data.ncols());
    if n < 2 {
        return Err(HeeError::dims("data rows", ">= 2", n));
    }
    let mean: Vec<f64> = (0..d)
        .map(|c| (0..n).map(|r| data[(r, c)]).sum::<f64>() / n as f64)
        .collect();
    let centred = Mat::from_fn(n, d, |r, c| data[(r, c)] - mean[c]);
    let s = (centred.transpose() * &centred) * (1.0 / n as f64);
    let (u, mut lam) = symmetric_eigen(&s, "sample covariance")?;
    for (rank, i) in (0..d).rev().enumerate() {
        lam[i] = if rank < q {
            lam[i].max(noise_var)
        } else {
            noise_var
        };
    }
    let cov = Mat::from_fn(d, d, |i, j| {
        (0..d).map(|k| u[(i, k)] * lam[k] * u[(j, k)]).sum()
    });
    Gaussian::new(mean, cov)
}

/// Eigenvectors (columns) and eigenvalues, ascending, of a symmetric
/// matrix (its lower triangle is read); `what` names it in the error.
pub fn symmetric_eigen(m: &Mat<f64>, what: &str) -> Result<(Mat<f64>, Vec<f64>)> {
    let e = m
        .self_adjoint_eigen(Side::Lower)
        .map_err(|_| HeeError::Numerical {
            routine: "eigen",
            reason: what.into(),
        })?;
    let s = e.S().column_vector();
    Ok((e.U().to_owned(), (0..m.nrows()).map(|i| s[i]).collect()))
}

/// Mean and covariance (divisor n − 1) of the rows of `samples`.
pub fn sample_moments(samples: MatRef<'_, f64>) -> (Vec<f64>, Mat<f64>) {
    let (n, d) = (samples.nrows(), samples.ncols());
    let mean: Vec<f64> = (0..d)
        .map(|c| (0..n).map(|r| samples[(r, c)]).sum::<f64>() / n as f64)
        .collect();
    let centred = Mat::from_fn(n, d, |r, c| samples[(r, c)] - mean[c]);
    let cov = (centred.transpose() * &centred) * (1.0 / (n as f64 - 1.0).max(1.0));
    (mean, cov)
}
