//! The time scales of a posterior: the extreme eigenvalues of the Hessian
//! of U over the free units, from which the adaptation rule picks τ_a and g.

use faer::{Mat, MatRef};

use crate::error::{HeeError, Result};
use crate::model::log_joint::LogJoint;
use crate::model::HeeModel;
use crate::scalar::Real;

/// Samples of a batch at which [`CurvatureRange::of_batch`] measures curvature.
pub const CURVATURE_SAMPLES: usize = 4;

/// Time scales of a posterior: extreme eigenvalues of ∇²U over the latents.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CurvatureRange {
    pub lambda_min: f64,
    pub lambda_max: f64,
}

impl CurvatureRange {
    /// The range over a batch: [`over_units`](Self::over_units) of the
    /// layers from `first_free` up, at up to [`CURVATURE_SAMPLES`] samples
    /// spread evenly over the batch, taking the smallest λ_min and the
    /// largest λ_max (on a non-gaussian model the Hessian varies with the
    /// observation). `data` is batch × size(0) and `latents` batch × latent
    /// units (zero if `None`), exactly as passed to `Dynamics::init`.
    pub fn of_batch<T: Real>(
        model: &HeeModel<T>,
        first_free: usize,
        data: MatRef<'_, T>,
        latents: Option<MatRef<'_, T>>,
    ) -> Result<Self> {
        let (n, n0) = (model.total_size(), model.size(0));
        let b = data.nrows();
        if b == 0 || data.ncols() != n0 {
            return Err(HeeError::dims(
                "data",
                format!("batch x {n0} with batch >= 1"),
                format!("{}x{}", data.nrows(), data.ncols()),
            ));
        }
        super::checks::check_latents(model, latents, b)?;
        let free: Vec<usize> = (model.offset(first_free.min(model.top()))..n).collect();
        let m64 = model.cast::<f64>();
        let lj = tables_for(&m64)?;
        let picks = b.min(CURVATURE_SAMPLES);
        let mut range: Option<CurvatureRange> = None;
        for p in 0..picks {
            let r = p * b / picks;
            let x: Vec<f64> = (0..n)
                .map(|i| match (i < n0, latents) {
                    (true, _) => data[(r, i)].f64(),
                    (false, Some(l)) => l[(r, i - n0)].f64(),
                    (false, None) => 0.0,
                })
                .collect();
            let c = over_units_with(&m64, lj.as_ref(), &x, &free)?;
            range = Some(match range {
                None => c,
                Some(a) => CurvatureRange {
                    lambda_min: a.lambda_min.min(c.lambda_min),
                    lambda_max: a.lambda_max.max(c.lambda_max),
                },
            });
        }
        range.ok_or_else(|| HeeError::dims("data", "batch >= 1", 0))
    }

    /// Extreme eigenvalues of the Hessian of U over the free latent layers at
    /// one network state `x` (one sample: all layers in order, layer 0 the
    /// observation).
    ///
    /// Hessian-vector products come from central differences of the exact
    /// gradient (A′ in closed form for gaussian layers, from a
    /// [`LogJoint`] table, accurate to 1e-7, for the others). Up to
    /// [`DENSE_LIMIT`] free units the Hessian is assembled column by column
    /// (2·d gradient evaluations) and diagonalised; above, [`LANCZOS_STEPS`]
    /// steps of Lanczos with full reorthogonalisation give its extreme
    /// eigenvalues (λ_max converges first; the smallest Ritz value is an
    /// upper bound on λ_min). Meant for setting up or retuning a run, not
    /// for the step loop. For a linear-gaussian model with few units the
    /// result is exact (the Hessian is the constant Λ). Where U is not
    /// convex at `x` (student-t layers), λ_min is floored at 1e-3·λ_max.
    pub fn at_state<T: Real>(model: &HeeModel<T>, x: &[f64]) -> Result<CurvatureRange> {
        let free: Vec<usize> = (model.offset(1)..model.total_size()).collect();
        Self::over_units(model, x, &free)
    }

    /// [`at_state`](Self::at_state) over any set of free units (indices into
    /// the stacked state, each once; the others held fixed): the latents and
    /// x₀ for joint generation, or the unseen part of x₀ and the latents for
    /// completion. The Hessian of U is then taken over exactly those units.
    pub fn over_units<T: Real>(
        model: &HeeModel<T>,
        x: &[f64],
        free: &[usize],
    ) -> Result<CurvatureRange> {
        let m64 = model.cast::<f64>();
        let lj = tables_for(&m64)?;
        over_units_with(&m64, lj.as_ref(), x, free)
    }
}

/// Free units up to which the Hessian is assembled densely.
pub const DENSE_LIMIT: usize = 128;

/// Lanczos steps above [`DENSE_LIMIT`].
pub const LANCZOS_STEPS: usize = 48;

/// Normaliser tables for the non-gaussian layers (none for an all-gaussian
/// model, whose A′ is closed form).
fn tables_for(m64: &HeeModel<f64>) -> Result<Option<LogJoint>> {
    let all_gaussian = (0..m64.n_layers()).all(|l| m64.energy(l).is_gaussian());
    if all_gaussian {
        Ok(None)
    } else {
        LogJoint::new(m64).map(Some)
    }
}

fn over_units_with(
    m64: &HeeModel<f64>,
    lj: Option<&LogJoint>,
    x: &[f64],
    free: &[usize],
) -> Result<CurvatureRange> {
    let n = m64.total_size();
    if free.is_empty() {
        return Err(HeeError::dims("free units", ">= 1", 0));
    }
    let mut seen = vec![false; n];
    for &i in free {
        if i >= n || seen[i] {
            return Err(HeeError::dims(
                "free units",
                format!("distinct indices below {n}"),
                i,
            ));
        }
        seen[i] = true;
    }
    if x.len() != n {
        return Err(HeeError::dims("x", n, x.len()));
    }
    if let Some((i, v)) = x.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(HeeError::NonFiniteInput {
            field: "x".into(),
            row: i,
            col: 0,
            value: *v,
        });
    }
    let d = free.len();
    // The drift of every layer that holds a free unit.
    let first = (0..m64.n_layers())
        .find(|&l| free.iter().any(|&i| i < m64.offset(l + 1)))
        .unwrap_or(1);
    // ∂U/∂x of states `xs` (units × samples).
    let grad = |xs: &Mat<f64>| -> Result<Mat<f64>> {
        let b = xs.ncols();
        let mut fx = Mat::zeros(n, b);
        let mut eta = Mat::zeros(n, b);
        let (mut diff, mut tmp, mut g) = (Mat::zeros(n, b), Mat::zeros(n, b), Mat::zeros(n, b));
        m64.natural_params_unchecked(xs.as_ref(), fx.as_mut(), eta.as_mut());
        let ap = match lj {
            Some(lj) => lj.a_prime(m64, eta.transpose())?.transpose().to_owned(),
            None => {
                let mut ap = Mat::zeros(n, b);
                m64.exact_a_prime_unchecked(eta.as_ref(), ap.as_mut())?;
                ap
            }
        };
        m64.state_gradient_unchecked(
            xs.as_ref(),
            eta.as_ref(),
            Some(ap.as_ref()),
            first,
            diff.as_mut(),
            tmp.as_mut(),
            g.as_mut(),
        );
        Ok(g)
    };
    let scale: Vec<f64> = free.iter().map(|&i| 1e-4 * (1.0 + x[i].abs())).collect();
    let ev = if d <= DENSE_LIMIT {
        dense_eigenvalues(&grad, x, free, &scale)?
    } else {
        lanczos_eigenvalues(&grad, x, free, &scale)?
    };
    let lambda_max = ev.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    if !(lambda_max.is_finite() && lambda_max > 0.0) {
        return Err(HeeError::Numerical {
            routine: "curvature",
            reason: format!("largest curvature {lambda_max} is not positive"),
        });
    }
    let lambda_min = ev
        .iter()
        .cloned()
        .fold(f64::INFINITY, f64::min)
        .max(1e-3 * lambda_max);
    Ok(CurvatureRange {
        lambda_min,
        lambda_max,
    })
}

type Gradient<'a> = dyn Fn(&Mat<f64>) -> Result<Mat<f64>> + 'a;

fn symmetric_eigenvalues(m: &Mat<f64>, what: &str) -> Result<Vec<f64>> {
    let k = m.nrows();
    let sym = Mat::from_fn(k, k, |i, j| 0.5 * (m[(i, j)] + m[(j, i)]));
    sym.self_adjoint_eigenvalues(faer::Side::Lower)
        .map_err(|_| HeeError::Numerical {
            routine: "eigen",
            reason: what.into(),
        })
}

/// Every eigenvalue of the Hessian over `free`, assembled column by column:
/// all 2d perturbed states in one batch (columns 2k and 2k+1 move free unit
/// k by +ε_k and −ε_k).
fn dense_eigenvalues(
    grad: &Gradient<'_>,
    x: &[f64],
    free: &[usize],
    eps: &[f64],
) -> Result<Vec<f64>> {
    let (n, d) = (x.len(), free.len());
    let xs = Mat::from_fn(n, 2 * d, |i, c| {
        let k = c / 2;
        let sign = if c % 2 == 0 { 1.0 } else { -1.0 };
        x[i] + if i == free[k] { sign * eps[k] } else { 0.0 }
    });
    let g = grad(&xs)?;
    let h = Mat::from_fn(d, d, |i, k| {
        (g[(free[i], 2 * k)] - g[(free[i], 2 * k + 1)]) / (2.0 * eps[k])
    });
    symmetric_eigenvalues(&h, "Hessian of U")
}

/// The Ritz values of [`LANCZOS_STEPS`] Lanczos steps on the Hessian over
/// `free`, each product H v by a central difference of the gradient along v
/// (step ε scaled to the units'), from a fixed start (no random draws: the
/// tuning is a function of the state).
fn lanczos_eigenvalues(
    grad: &Gradient<'_>,
    x: &[f64],
    free: &[usize],
    eps: &[f64],
) -> Result<Vec<f64>> {
    let (n, d) = (x.len(), free.len());
    let steps = LANCZOS_STEPS.min(d);
    let norm = |v: &[f64]| v.iter().map(|a| a * a).sum::<f64>().sqrt();
    let e = eps.iter().cloned().fold(f64::INFINITY, f64::min);
    // Each unit's position in `free`, looked up once rather than per entry.
    let mut slot = vec![None; n];
    for (k, &f) in free.iter().enumerate() {
        slot[f] = Some(k);
    }
    let hvp = |v: &[f64]| -> Result<Vec<f64>> {
        let xs = Mat::from_fn(n, 2, |i, c| {
            let sign = if c == 0 { 1.0 } else { -1.0 };
            x[i] + slot[i].map_or(0.0, |k| sign * e * v[k])
        });
        let g = grad(&xs)?;
        Ok((0..d)
            .map(|k| (g[(free[k], 0)] - g[(free[k], 1)]) / (2.0 * e))
            .collect())
    };
    let mut q: Vec<Vec<f64>> = Vec::with_capacity(steps);
    let start: Vec<f64> = (0..d)
        .map(|k| 1.0 + 0.5 * ((k as f64) * 0.7).sin())
        .collect();
    let s = norm(&start);
    q.push(start.iter().map(|v| v / s).collect());
    let (mut alpha, mut beta) = (Vec::with_capacity(steps), Vec::with_capacity(steps));
    for j in 0..steps {
        let mut w = hvp(&q[j])?;
        let a: f64 = w.iter().zip(&q[j]).map(|(a, b)| a * b).sum();
        alpha.push(a);
        // Full reorthogonalisation against every earlier vector (twice).
        for _ in 0..2 {
            for qi in &q {
                let c: f64 = w.iter().zip(qi).map(|(a, b)| a * b).sum();
                w.iter_mut().zip(qi).for_each(|(a, b)| *a -= c * b);
            }
        }
        let b = norm(&w);
        if j + 1 == steps || b < 1e-10 * a.abs().max(1e-300) {
            break;
        }
        beta.push(b);
        q.push(w.iter().map(|v| v / b).collect());
    }
    let m = alpha.len();
    let t = Mat::from_fn(m, m, |i, k| match i.abs_diff(k) {
        0 => alpha[i],
        1 => beta[i.min(k)],
        _ => 0.0,
    });
    symmetric_eigenvalues(&t, "Lanczos tridiagonal")
}
