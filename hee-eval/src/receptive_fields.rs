//! Receptive-field analysis: 2-D Gabor fits of learned fields and the
//! summaries of the V1 comparison (fraction Gabor-like, orientation
//! coverage, second-layer pooling).
//!
//! A Gabor on a p×p grid (x = column, y = row, in pixels):
//!
//! ```text
//! g(x, y) = A · exp(−x′²/(2σx²) − y′²/(2σy²)) · cos(2π f x′ + φ)
//! x′ =  (x − x0) cos θ + (y − y0) sin θ
//! y′ = −(x − x0) sin θ + (y − y0) cos θ
//! ```
//!
//! θ is the direction of the carrier's wave vector, f its spatial frequency
//! (cycles per pixel), σx the envelope's width across the stripes and σy
//! along them. The fit is non-linear least squares by Levenberg–Marquardt
//! (8 parameters, finite-difference Jacobian, 8×8 normal equations), started
//! from the peak of the field's discrete Fourier transform (frequency and
//! orientation), its energy centroid (position) and four phases; the best of
//! the starts is kept. r² = 1 − SS_res/SS_tot about the field's mean.

use std::f64::consts::PI;

/// The parameters of a fitted Gabor and the quality of the fit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GaborFit {
    pub amplitude: f64,
    pub x0: f64,
    pub y0: f64,
    /// Orientation of the wave vector, in [0, π).
    pub orientation: f64,
    /// Cycles per pixel, in [0, 0.5].
    pub frequency: f64,
    /// Phase in [0, 2π).
    pub phase: f64,
    pub sigma_x: f64,
    pub sigma_y: f64,
    pub r2: f64,
}

const NP: usize = 8;

fn gabor(p: &[f64; NP], x: f64, y: f64) -> f64 {
    let [a, x0, y0, th, f, ph, sx, sy] = *p;
    let (s, c) = th.sin_cos();
    let (dx, dy) = (x - x0, y - y0);
    let xr = dx * c + dy * s;
    let yr = -dx * s + dy * c;
    a * (-(xr * xr) / (2.0 * sx * sx) - (yr * yr) / (2.0 * sy * sy)).exp()
        * (2.0 * PI * f * xr + ph).cos()
}

/// The Gabor with parameters `fit` rendered on a `side`×`side` grid
/// (row-major).
pub fn render(fit: &GaborFit, side: usize) -> Vec<f64> {
    let p = params_of(fit);
    (0..side * side)
        .map(|k| gabor(&p, (k % side) as f64, (k / side) as f64))
        .collect()
}

fn params_of(g: &GaborFit) -> [f64; NP] {
    [
        g.amplitude,
        g.x0,
        g.y0,
        g.orientation,
        g.frequency,
        g.phase,
        g.sigma_x,
        g.sigma_y,
    ]
}

fn residual_ss(p: &[f64; NP], field: &[f64], side: usize) -> f64 {
    field
        .iter()
        .enumerate()
        .map(|(k, &v)| (v - gabor(p, (k % side) as f64, (k / side) as f64)).powi(2))
        .sum()
}

/// Keeps the parameters where a Gabor is meaningful on the grid.
fn clamp(p: &mut [f64; NP], side: usize) {
    let s = side as f64;
    p[1] = p[1].clamp(-0.5, s - 0.5);
    p[2] = p[2].clamp(-0.5, s - 0.5);
    p[4] = p[4].clamp(0.0, 0.5);
    p[6] = p[6].clamp(0.5, s);
    p[7] = p[7].clamp(0.5, s);
}

/// Solves the symmetric positive definite system `a x = b` (8×8) by
/// Gaussian elimination with partial pivoting; None if singular.
fn solve(mut a: [[f64; NP]; NP], mut b: [f64; NP]) -> Option<[f64; NP]> {
    for c in 0..NP {
        let piv = (c..NP).max_by(|&i, &j| a[i][c].abs().total_cmp(&a[j][c].abs()))?;
        if a[piv][c].abs() < 1e-300 {
            return None;
        }
        a.swap(c, piv);
        b.swap(c, piv);
        for r in c + 1..NP {
            let f = a[r][c] / a[c][c];
            for k in c..NP {
                a[r][k] -= f * a[c][k];
            }
            b[r] -= f * b[c];
        }
    }
    let mut x = [0.0; NP];
    for r in (0..NP).rev() {
        let s: f64 = (r + 1..NP).map(|k| a[r][k] * x[k]).sum();
        x[r] = (b[r] - s) / a[r][r];
    }
    Some(x)
}

/// Levenberg–Marquardt from `p`; returns the parameters and residual sum.
fn levenberg_marquardt(mut p: [f64; NP], field: &[f64], side: usize) -> ([f64; NP], f64) {
    let n = field.len();
    let mut cost = residual_ss(&p, field, side);
    let mut lambda = 1e-2;
    let mut jac = vec![[0.0; NP]; n];
    let mut res = vec![0.0; n];
    for _ in 0..200 {
        for (k, r) in res.iter_mut().enumerate() {
            *r = field[k] - gabor(&p, (k % side) as f64, (k / side) as f64);
        }
        for i in 0..NP {
            let h = 1e-6 * p[i].abs().max(1e-2);
            let (mut pp, mut pm) = (p, p);
            pp[i] += h;
            pm[i] -= h;
            for (k, row) in jac.iter_mut().enumerate() {
                let (x, y) = ((k % side) as f64, (k / side) as f64);
                row[i] = (gabor(&pp, x, y) - gabor(&pm, x, y)) / (2.0 * h);
            }
        }
        let mut jtj = [[0.0; NP]; NP];
        let mut jtr = [0.0; NP];
        for (row, &r) in jac.iter().zip(&res) {
            for i in 0..NP {
                jtr[i] += row[i] * r;
                for j in 0..NP {
                    jtj[i][j] += row[i] * row[j];
                }
            }
        }
        let mut improved = false;
        for _ in 0..10 {
            let mut a = jtj;
            for (i, row) in a.iter_mut().enumerate() {
                row[i] += lambda * (jtj[i][i] + 1e-12);
            }
            let Some(delta) = solve(a, jtr) else {
                lambda *= 10.0;
                continue;
            };
            let mut q = p;
            for i in 0..NP {
                q[i] += delta[i];
            }
            clamp(&mut q, side);
            let c = residual_ss(&q, field, side);
            if c < cost {
                let rel = (cost - c) / cost.max(1e-300);
                p = q;
                cost = c;
                lambda = (lambda / 3.0).max(1e-9);
                improved = rel > 1e-10;
                break;
            }
            lambda *= 4.0;
        }
        if !improved {
            break;
        }
    }
    (p, cost)
}

/// Fits a Gabor to a `side`×`side` field (row-major). A field with no
/// variance gets r² = 0.
///
/// # Panics
/// If `field.len() != side * side` (a caller's bookkeeping error, like an
/// out-of-range index).
pub fn fit_gabor(field: &[f64], side: usize) -> GaborFit {
    assert_eq!(field.len(), side * side, "fit_gabor: field of side {side}");
    let n = field.len() as f64;
    let mean = field.iter().sum::<f64>() / n;
    let ss_tot: f64 = field.iter().map(|v| (v - mean).powi(2)).sum();
    let amp = field.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    // Peak of the DFT, DC excluded: frequency and orientation.
    let (mut best_k, mut best_m) = ((1i64, 0i64), -1.0);
    let half = side as i64 / 2;
    for ky in -half..=half {
        for kx in 0..=half {
            if (kx == 0 && ky <= 0) || (kx, ky) == (0, 0) {
                continue;
            }
            let (mut re, mut im) = (0.0, 0.0);
            for (k, &v) in field.iter().enumerate() {
                let (x, y) = ((k % side) as f64, (k / side) as f64);
                let a = -2.0 * PI * (kx as f64 * x + ky as f64 * y) / side as f64;
                re += v * a.cos();
                im += v * a.sin();
            }
            let m = re * re + im * im;
            if m > best_m {
                best_m = m;
                best_k = (kx, ky);
            }
        }
    }
    let f0 = ((best_k.0 * best_k.0 + best_k.1 * best_k.1) as f64).sqrt() / side as f64;
    let th0 = (best_k.1 as f64).atan2(best_k.0 as f64);
    // Energy centroid: position.
    let e: f64 = field.iter().map(|v| v * v).sum::<f64>().max(1e-300);
    let cx = field
        .iter()
        .enumerate()
        .map(|(k, v)| (k % side) as f64 * v * v)
        .sum::<f64>()
        / e;
    let cy = field
        .iter()
        .enumerate()
        .map(|(k, v)| (k / side) as f64 * v * v)
        .sum::<f64>()
        / e;
    let mut best: Option<([f64; NP], f64)> = None;
    for &sigma in &[side as f64 / 8.0, side as f64 / 4.0] {
        for q in 0..4 {
            let mut p = [
                amp,
                cx,
                cy,
                th0,
                f0.min(0.5),
                q as f64 * PI / 2.0,
                sigma,
                sigma,
            ];
            clamp(&mut p, side);
            let (p, c) = levenberg_marquardt(p, field, side);
            if best.as_ref().is_none_or(|b| c < b.1) {
                best = Some((p, c));
            }
        }
    }
    let (p, cost) = best.expect("at least one start");
    let r2 = if ss_tot > 0.0 {
        (1.0 - cost / ss_tot).max(0.0)
    } else {
        0.0
    };
    // Canonical form: A > 0, θ in [0, π), φ in [0, 2π).
    let [mut a, x0, y0, mut th, f, mut ph, sx, sy] = p;
    if a < 0.0 {
        a = -a;
        ph += PI;
    }
    th = th.rem_euclid(2.0 * PI);
    if th >= PI {
        // Rotating by π flips x′: the same Gabor with the opposite phase.
        th -= PI;
        ph = -ph;
    }
    GaborFit {
        amplitude: a,
        x0,
        y0,
        orientation: th,
        frequency: f,
        phase: ph.rem_euclid(2.0 * PI),
        sigma_x: sx,
        sigma_y: sy,
        r2,
    }
}

/// r² threshold for a field to count as Gabor-like.
pub const GABOR_R2: f64 = 0.7;

/// Fraction of fits with r² ≥ [`GABOR_R2`].
pub fn fraction_gabor(fits: &[GaborFit]) -> f64 {
    if fits.is_empty() {
        return 0.0;
    }
    fits.iter().filter(|g| g.r2 >= GABOR_R2).count() as f64 / fits.len() as f64
}

/// Orientation histogram of the Gabor-like fits in four 45° bins
/// ([0°, 45°), [45°, 90°), [90°, 135°), [135°, 180°)).
pub fn orientation_bins(fits: &[GaborFit]) -> [usize; 4] {
    let mut bins = [0; 4];
    for g in fits.iter().filter(|g| g.r2 >= GABOR_R2) {
        let b = ((g.orientation / (PI / 4.0)) as usize).min(3);
        bins[b] += 1;
    }
    bins
}

/// How a second-layer unit pools first-layer fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Pooling {
    pub unit: usize,
    /// Its strongest first-layer inputs (by |weight|), Gabor-like ones only.
    pub inputs: Vec<usize>,
    /// Orientation similarity of those inputs: the mean resultant length of
    /// 2θ (1 = all parallel, ≈ 0 = spread over all orientations).
    pub orientation_similarity: f64,
    /// Mean distance (pixels) between the inputs' centres and their mean.
    pub position_spread: f64,
}

/// For every second-layer unit k, its `top` strongest Gabor-like inputs in
/// column k of `w1` (first-layer units × second-layer units, row-major with
/// `n2` columns), and how similar their orientations and positions are.
///
/// # Panics
/// If `w1` has fewer than `fits.len() * n2` entries.
pub fn pooling(w1: &[f64], n2: usize, fits: &[GaborFit], top: usize) -> Vec<Pooling> {
    let n1 = fits.len();
    (0..n2)
        .map(|k| {
            let mut idx: Vec<usize> = (0..n1).filter(|&i| fits[i].r2 >= GABOR_R2).collect();
            idx.sort_by(|&a, &b| w1[b * n2 + k].abs().total_cmp(&w1[a * n2 + k].abs()));
            idx.truncate(top);
            let m = idx.len().max(1) as f64;
            let (c, s) = idx.iter().fold((0.0, 0.0), |(c, s), &i| {
                let t = 2.0 * fits[i].orientation;
                (c + t.cos(), s + t.sin())
            });
            let (mx, my) = idx
                .iter()
                .fold((0.0, 0.0), |(x, y), &i| (x + fits[i].x0, y + fits[i].y0));
            let (mx, my) = (mx / m, my / m);
            let spread = idx
                .iter()
                .map(|&i| ((fits[i].x0 - mx).powi(2) + (fits[i].y0 - my).powi(2)).sqrt())
                .sum::<f64>()
                / m;
            Pooling {
                unit: k,
                orientation_similarity: if idx.is_empty() {
                    0.0
                } else {
                    (c * c + s * s).sqrt() / m
                },
                position_spread: spread,
                inputs: idx,
            }
        })
        .collect()
}
