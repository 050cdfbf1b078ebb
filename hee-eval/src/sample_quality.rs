//! Generation-quality metrics between two sets of feature vectors (one per
//! row): the Fréchet distance of the gaussians fitted to them, the kernel
//! inception-style distance (unbiased MMD² with a cubic polynomial kernel),
//! precision and recall of k-nearest-neighbour manifolds, and distances to
//! the nearest reference row (memorisation); and, from the classifier's
//! probabilities, how recognisable samples are ([`recognisability`]).
//!
//! Computed in the features of hee's own classifier ([`crate::classifier`]),
//! the Fréchet distance is a "Fréchet classifier distance" (FCD): not
//! comparable with FID numbers computed in Inception features.

use faer::{Mat, MatRef};
use hee_core::reference::linear_gaussian::{sample_moments, symmetric_eigen};
use hee_core::{HeeError, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

fn check_sets(a: MatRef<'_, f64>, b: MatRef<'_, f64>, min_rows: usize) -> Result<()> {
    if a.ncols() != b.ncols() {
        return Err(HeeError::dims("features", a.ncols(), b.ncols()));
    }
    for (field, m) in [("first set", a), ("second set", b)] {
        if m.nrows() < min_rows {
            return Err(HeeError::dims(
                field,
                format!(">= {min_rows} rows"),
                m.nrows(),
            ));
        }
    }
    Ok(())
}

/// The symmetric positive semi-definite square root, by eigendecomposition
/// (negative eigenvalues from rounding are set to 0).
fn sqrt_psd(m: &Mat<f64>) -> Result<Mat<f64>> {
    let sym = Mat::from_fn(m.nrows(), m.ncols(), |i, j| 0.5 * (m[(i, j)] + m[(j, i)]));
    let (u, s) = symmetric_eigen(&sym, "square root of a covariance")?;
    let d = m.nrows();
    let us = Mat::from_fn(d, d, |i, k| u[(i, k)] * s[k].max(0.0).sqrt());
    Ok(&us * u.transpose())
}

/// Fréchet distance between N(m1, c1) and N(m2, c2):
/// |m1 − m2|² + tr(c1 + c2 − 2 (c1^½ c2 c1^½)^½).
pub fn frechet_gaussians(m1: &[f64], c1: &Mat<f64>, m2: &[f64], c2: &Mat<f64>) -> Result<f64> {
    let r1 = sqrt_psd(c1)?;
    let cross = sqrt_psd(&(&r1 * c2 * &r1))?;
    let dm: f64 = m1.iter().zip(m2).map(|(a, b)| (a - b).powi(2)).sum();
    let tr = |m: &Mat<f64>| (0..m.nrows()).map(|i| m[(i, i)]).sum::<f64>();
    Ok((dm + tr(c1) + tr(c2) - 2.0 * tr(&cross)).max(0.0))
}

/// Fréchet distance between the gaussians fitted to two sets of rows.
pub fn frechet_distance(a: MatRef<'_, f64>, b: MatRef<'_, f64>) -> Result<f64> {
    check_sets(a, b, 2)?;
    let (m1, c1) = sample_moments(a);
    let (m2, c2) = sample_moments(b);
    frechet_gaussians(&m1, &c1, &m2, &c2)
}

/// A KID estimate: the mean of the unbiased MMD² over subsets, and the
/// standard error of that mean (spread over subsets / √subsets).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Kid {
    pub value: f64,
    pub se: f64,
}

/// Unbiased MMD² between `a` and `b` with k(x, y) = (xᵀy/d + 1)³.
pub fn mmd2_unbiased(a: MatRef<'_, f64>, b: MatRef<'_, f64>) -> Result<f64> {
    check_sets(a, b, 2)?;
    let d = a.ncols() as f64;
    let gram = |x: MatRef<'_, f64>, y: MatRef<'_, f64>| {
        let g = x * y.transpose();
        Mat::from_fn(g.nrows(), g.ncols(), |i, j| (g[(i, j)] / d + 1.0).powi(3))
    };
    let (kaa, kbb, kab) = (gram(a, a), gram(b, b), gram(a, b));
    let (m, n) = (a.nrows() as f64, b.nrows() as f64);
    let off = |k: &Mat<f64>| {
        let mut s = 0.0;
        for i in 0..k.nrows() {
            for j in 0..k.ncols() {
                if i != j {
                    s += k[(i, j)];
                }
            }
        }
        s
    };
    let sab: f64 = (0..kab.nrows())
        .map(|i| (0..kab.ncols()).map(|j| kab[(i, j)]).sum::<f64>())
        .sum();
    Ok(off(&kaa) / (m * (m - 1.0)) + off(&kbb) / (n * (n - 1.0)) - 2.0 * sab / (m * n))
}

/// KID over `subsets` random subsets of `size` rows of each set (drawn
/// without replacement within a subset, from `seed`).
pub fn kid(
    a: MatRef<'_, f64>,
    b: MatRef<'_, f64>,
    subsets: usize,
    size: usize,
    seed: u64,
) -> Result<Kid> {
    check_sets(a, b, size.max(2))?;
    if subsets < 2 {
        return Err(HeeError::dims("subsets", ">= 2", subsets));
    }
    let vals: Vec<f64> = (0..subsets)
        .into_par_iter()
        .map(|s| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            rng.set_stream(s as u64);
            let pick = |m: MatRef<'_, f64>, rng: &mut ChaCha8Rng| {
                let mut idx: Vec<usize> = (0..m.nrows()).collect();
                idx.shuffle(rng);
                Mat::from_fn(size, m.ncols(), |i, k| m[(idx[i], k)])
            };
            let (sa, sb) = (pick(a, &mut rng), pick(b, &mut rng));
            mmd2_unbiased(sa.as_ref(), sb.as_ref())
        })
        .collect::<Result<_>>()?;
    let mean = vals.iter().sum::<f64>() / subsets as f64;
    let var = vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (subsets as f64 - 1.0);
    Ok(Kid {
        value: mean,
        se: (var / subsets as f64).sqrt(),
    })
}

/// Squared euclidean distances between every row of `a` and of `b`.
fn sq_dists(a: MatRef<'_, f64>, b: MatRef<'_, f64>) -> Mat<f64> {
    let g = a * b.transpose();
    let na: Vec<f64> = (0..a.nrows())
        .map(|i| (0..a.ncols()).map(|k| a[(i, k)].powi(2)).sum())
        .collect();
    let nb: Vec<f64> = (0..b.nrows())
        .map(|i| (0..b.ncols()).map(|k| b[(i, k)].powi(2)).sum())
        .collect();
    Mat::from_fn(a.nrows(), b.nrows(), |i, j| {
        (na[i] + nb[j] - 2.0 * g[(i, j)]).max(0.0)
    })
}

/// Distance from each row of `queries` to its nearest row of `reference`.
pub fn nearest_distances(queries: MatRef<'_, f64>, reference: MatRef<'_, f64>) -> Result<Vec<f64>> {
    check_sets(queries, reference, 1)?;
    let d = sq_dists(queries, reference);
    Ok((0..d.nrows())
        .map(|i| {
            (0..d.ncols())
                .map(|j| d[(i, j)])
                .fold(f64::INFINITY, f64::min)
                .sqrt()
        })
        .collect())
}

/// Precision and recall of k-nearest-neighbour manifolds (Kynkäänniemi et
/// al. 2019).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PrecisionRecall {
    /// Fraction of generated rows inside the real rows' manifold.
    pub precision: f64,
    /// Fraction of real rows inside the generated rows' manifold.
    pub recall: f64,
}

/// The radius of each row's ball: the distance to its k-th nearest other
/// row of the same set.
fn knn_radii(x: MatRef<'_, f64>, k: usize) -> Vec<f64> {
    let d = sq_dists(x, x);
    (0..d.nrows())
        .map(|i| {
            let mut r: Vec<f64> = (0..d.ncols())
                .filter(|&j| j != i)
                .map(|j| d[(i, j)])
                .collect();
            r.sort_by(f64::total_cmp);
            r[k - 1]
        })
        .collect()
}

/// The fraction of rows of `q` inside some ball of the manifold of `x`.
fn coverage(q: MatRef<'_, f64>, x: MatRef<'_, f64>, radii: &[f64]) -> f64 {
    let d = sq_dists(q, x);
    let inside = (0..d.nrows())
        .filter(|&i| (0..d.ncols()).any(|j| d[(i, j)] <= radii[j]))
        .count();
    inside as f64 / q.nrows() as f64
}

/// Precision and recall of `generated` against `real` with k nearest
/// neighbours (k = 3 is the usual choice).
pub fn precision_recall(
    real: MatRef<'_, f64>,
    generated: MatRef<'_, f64>,
    k: usize,
) -> Result<PrecisionRecall> {
    check_sets(real, generated, k + 1)?;
    if k == 0 {
        return Err(HeeError::dims("k", ">= 1", 0));
    }
    let (rr, rg) = (knn_radii(real, k), knn_radii(generated, k));
    Ok(PrecisionRecall {
        precision: coverage(generated, real, &rr),
        recall: coverage(real, generated, &rg),
    })
}

/// How recognisable a set of samples is to a classifier: the share it
/// assigns one class with probability at least a threshold, and the
/// entropy of the histogram of its most probable classes (log₂ of the
/// number of classes when the samples cover them evenly, 0 when they are
/// all one class).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Recognisability {
    pub confident: f64,
    /// Bits.
    pub class_entropy: f64,
}

/// [`Recognisability`] of samples whose class probabilities are the rows
/// of `probabilities` (samples × classes), at `threshold` (e.g. 0.9).
pub fn recognisability(probabilities: MatRef<'_, f64>, threshold: f64) -> Result<Recognisability> {
    let (n, k) = (probabilities.nrows(), probabilities.ncols());
    if n == 0 || k == 0 {
        return Err(HeeError::dims(
            "probabilities",
            ">= 1 sample and class",
            format!("{n}x{k}"),
        ));
    }
    let mut counts = vec![0usize; k];
    let mut confident = 0usize;
    for r in 0..n {
        let (c, p) = (0..k)
            .map(|c| (c, probabilities[(r, c)]))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap_or((0, 0.0));
        counts[c] += 1;
        if p >= threshold {
            confident += 1;
        }
    }
    let class_entropy = counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let q = c as f64 / n as f64;
            -q * q.log2()
        })
        .sum();
    Ok(Recognisability {
        confident: confident as f64 / n as f64,
        class_entropy,
    })
}
