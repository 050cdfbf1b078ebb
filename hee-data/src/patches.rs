//! Natural-image patches: random p×p patches (deterministic by seed),
//! per-patch contrast normalisation, and ZCA whitening with a regulariser.
//! The whitening transform is kept so that learned receptive fields can be
//! shown in pixel space.

use faer::{Mat, Side};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::{DataError, Result};
use crate::images::GrayImage;

/// Draws `count` patches of `p × p` pixels, each from an image chosen in
/// proportion to its number of valid positions, at a uniform position; one
/// patch per row (row-major pixels). Deterministic by `seed`.
pub fn extract_patches(
    images: &[GrayImage],
    p: usize,
    count: usize,
    seed: u64,
) -> Result<Mat<f32>> {
    if p == 0 {
        return Err(DataError::Setting {
            field: "patch",
            value: "0".into(),
            reason: "must be >= 1".into(),
        });
    }
    let weights: Vec<usize> = images
        .iter()
        .map(|im| {
            if im.width >= p && im.height >= p {
                (im.width - p + 1) * (im.height - p + 1)
            } else {
                0
            }
        })
        .collect();
    let total: usize = weights.iter().sum();
    if total == 0 {
        return Err(DataError::Setting {
            field: "patch",
            value: p.to_string(),
            reason: "larger than every image".into(),
        });
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = Mat::<f32>::zeros(count, p * p);
    for n in 0..count {
        let mut k = rng.random_range(0..total);
        let mut idx = 0;
        while k >= weights[idx] {
            k -= weights[idx];
            idx += 1;
        }
        let im = &images[idx];
        let (r0, c0) = (k / (im.width - p + 1), k % (im.width - p + 1));
        for r in 0..p {
            for c in 0..p {
                out[(n, r * p + c)] = im.at(r0 + r, c0 + c);
            }
        }
    }
    Ok(out)
}

/// Subtracts each patch's mean and divides by its standard deviation plus
/// `eps` (so flat patches stay near zero instead of blowing up).
pub fn normalise_contrast(patches: &mut Mat<f32>, eps: f32) {
    let d = patches.ncols() as f32;
    for n in 0..patches.nrows() {
        let mean = (0..patches.ncols()).map(|j| patches[(n, j)]).sum::<f32>() / d;
        let var = (0..patches.ncols())
            .map(|j| (patches[(n, j)] - mean).powi(2))
            .sum::<f32>()
            / d;
        let s = var.sqrt() + eps;
        for j in 0..patches.ncols() {
            patches[(n, j)] = (patches[(n, j)] - mean) / s;
        }
    }
}

/// ZCA whitening x ↦ W(x − μ) with W = U (Λ + εI)^{-1/2} Uᵀ, fitted to data.
#[derive(Debug, Clone)]
pub struct Whitening {
    pub mean: Vec<f32>,
    /// W (d × d, symmetric).
    pub whiten: Mat<f32>,
    /// W⁻¹ = U (Λ + εI)^{1/2} Uᵀ: maps whitened vectors (or learned fields)
    /// back to pixel space.
    pub dewhiten: Mat<f32>,
    /// The regulariser ε added to every eigenvalue.
    pub epsilon: f64,
}

impl Whitening {
    /// Fits ZCA to the rows of `x` with regulariser `epsilon` (relative to
    /// the mean eigenvalue, so it does not depend on the data's scale).
    ///
    /// A degenerate covariance is a typed error, not infinities: fewer than
    /// d + 1 patches (the sample covariance of n patches has rank ≤ n − 1,
    /// so some directions would be whitened from nothing but the
    /// regulariser), a non-finite value, or no variance at all (every patch
    /// flat).
    pub fn fit(x: &Mat<f32>, epsilon: f64) -> Result<Self> {
        let (n, d) = (x.nrows(), x.ncols());
        if d == 0 || n < d + 1 {
            return Err(DataError::Setting {
                field: "patches",
                value: n.to_string(),
                reason: format!(
                    "whitening {d}-dimensional patches needs at least {} of them (more patches than dimensions)",
                    d + 1
                ),
            });
        }
        if !(epsilon.is_finite() && epsilon > 0.0) {
            return Err(DataError::Setting {
                field: "zca_epsilon",
                value: epsilon.to_string(),
                reason: "must be finite and > 0".into(),
            });
        }
        if let Some((i, j)) = (0..n)
            .flat_map(|i| (0..d).map(move |j| (i, j)))
            .find(|&(i, j)| !x[(i, j)].is_finite())
        {
            return Err(DataError::Setting {
                field: "patches",
                value: x[(i, j)].to_string(),
                reason: format!("non-finite value in patch {i}, pixel {j}"),
            });
        }
        let mean: Vec<f64> = (0..d)
            .map(|j| (0..n).map(|i| x[(i, j)] as f64).sum::<f64>() / n as f64)
            .collect();
        let c = Mat::<f64>::from_fn(n, d, |i, j| x[(i, j)] as f64 - mean[j]);
        let cov = (c.transpose() * &c) * faer::Scale(1.0 / (n as f64 - 1.0));
        let eig = cov
            .self_adjoint_eigen(Side::Lower)
            .map_err(|_| DataError::Setting {
                field: "patches",
                value: n.to_string(),
                reason: "covariance eigen-decomposition failed".into(),
            })?;
        let (u, s) = (eig.U(), eig.S().column_vector());
        let mean_eig = (0..d).map(|k| s[k].max(0.0)).sum::<f64>() / d as f64;
        // No variance (every patch flat, as after contrast normalisation of
        // uniform patches): nothing to whiten. f32 data carries round-off of
        // ~1e-7 relative to its values, so variance below that is none.
        let scale = (0..n)
            .flat_map(|i| (0..d).map(move |j| (i, j)))
            .map(|(i, j)| (x[(i, j)] as f64).powi(2))
            .sum::<f64>()
            / (n * d) as f64;
        let has_variance = mean_eig > 1e-12 * scale.max(f64::MIN_POSITIVE);
        if !has_variance {
            return Err(DataError::Setting {
                field: "patches",
                value: n.to_string(),
                reason: format!(
                    "no variance to whiten (mean eigenvalue {mean_eig:.3e}): every patch is flat"
                ),
            });
        }
        let eps = epsilon * mean_eig;
        let build = |pow: f64| {
            Mat::<f32>::from_fn(d, d, |i, j| {
                (0..d)
                    .map(|k| u[(i, k)] * (s[k].max(0.0) + eps).powf(pow) * u[(j, k)])
                    .sum::<f64>() as f32
            })
        };
        Ok(Whitening {
            mean: mean.iter().map(|&v| v as f32).collect(),
            whiten: build(-0.5),
            dewhiten: build(0.5),
            epsilon,
        })
    }

    /// Whitens the rows of `x` in place; `x` must have the fitted dimension.
    pub fn apply(&self, x: &mut Mat<f32>) -> Result<()> {
        let d = x.ncols();
        if d != self.mean.len() {
            return Err(DataError::Setting {
                field: "patch dimension",
                value: d.to_string(),
                reason: format!("the whitening was fitted to {} dimensions", self.mean.len()),
            });
        }
        let centred = Mat::<f32>::from_fn(x.nrows(), d, |i, j| x[(i, j)] - self.mean[j]);
        // W is symmetric, so rows transform as x W.
        let y = &centred * &self.whiten;
        x.copy_from(&y);
        Ok(())
    }
}
