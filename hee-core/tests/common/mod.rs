//! Helpers shared by the hee-core integration tests.
#![allow(dead_code)]

use faer::Mat;
use hee_core::{BaseEnergy, HeeModel, LayerSpec, Nonlinearity};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A base energy of kind `kind % 3` with parameters drawn from `rng`.
pub fn energy_of_kind(kind: u8, rng: &mut ChaCha8Rng) -> BaseEnergy {
    let sigma = rng.random_range(0.6..1.8);
    match kind % 3 {
        0 => BaseEnergy::Gaussian { sigma },
        1 => BaseEnergy::SmoothLaplace {
            sigma,
            lambda: rng.random_range(0.1..2.0),
            delta: rng.random_range(0.1..1.0),
        },
        _ => BaseEnergy::StudentT {
            sigma,
            weight: rng.random_range(0.1..1.5),
            nu: rng.random_range(1.0..8.0),
        },
    }
}

pub fn nonlinearity_of(i: u8) -> Nonlinearity {
    match i % 3 {
        0 => Nonlinearity::Identity,
        1 => Nonlinearity::Tanh,
        _ => Nonlinearity::Softplus,
    }
}

/// A random model: `sizes` (observation first), energies by kind, weights
/// and biases from the seed.
pub fn random_model(seed: u64, sizes: &[usize], kinds: &[u8], f: Nonlinearity) -> HeeModel<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let specs: Vec<LayerSpec> = sizes
        .iter()
        .zip(kinds)
        .map(|(&size, &k)| LayerSpec {
            size,
            energy: energy_of_kind(k, &mut rng),
        })
        .collect();
    let mut m = HeeModel::new(&specs, f).unwrap();
    m.randomize_weights(&mut rng, 0.8);
    for l in 0..m.n_layers() {
        let b: Vec<f64> = (0..m.size(l))
            .map(|_| rng.random_range(-0.5..0.5))
            .collect();
        m.set_bias(l, &b).unwrap();
    }
    m
}

/// A linear-gaussian model with weight scale `scale`.
pub fn linear_gaussian_model(seed: u64, sizes: &[usize], scale: f64) -> HeeModel<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let specs: Vec<LayerSpec> = sizes
        .iter()
        .map(|&size| LayerSpec {
            size,
            energy: BaseEnergy::Gaussian {
                sigma: rng.random_range(0.7..1.3),
            },
        })
        .collect();
    let mut m = HeeModel::new(&specs, Nonlinearity::Identity).unwrap();
    m.randomize_weights(&mut rng, scale);
    for l in 0..m.n_layers() {
        let b: Vec<f64> = (0..m.size(l))
            .map(|_| rng.random_range(-0.5..0.5))
            .collect();
        m.set_bias(l, &b).unwrap();
    }
    m
}

/// A batch of states (batch × n units) with U(−1.5, 1.5) entries.
pub fn random_state(seed: u64, n: usize, batch: usize) -> Mat<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed);
    Mat::from_fn(batch, n, |_, _| rng.random_range(-1.5..1.5))
}

use hee_core::reference::linear_gaussian::LinearGaussian;
use hee_core::{Dynamics, NeuralConfig};

/// Group estimates of the latents' stationary mean and covariance.
pub struct EnsembleEstimate {
    pub mean: Vec<f64>,
    pub mean_se: Vec<f64>,
    pub cov: Mat<f64>,
    pub cov_se: Mat<f64>,
    /// Mean square of the kernel's auxiliary variable (the adaptation
    /// current), per latent unit, and its standard error.
    pub aux_sq: Vec<f64>,
    pub aux_sq_se: Vec<f64>,
}

/// Runs `chains` independent chains given x₀ (f32, the default precision),
/// discards `burn_in` steps, then averages over `steps` snapshots. The
/// chains are split into `groups` groups; each group gives its own estimate
/// of the mean and covariance, and the spread between groups gives honest
/// standard errors (time correlation included, since groups are independent).
#[allow(clippy::too_many_arguments)]
pub fn ensemble_estimate<D: Dynamics<f32>>(
    model: &HeeModel<f32>,
    dynamics: &D,
    x0: &[f64],
    chains: usize,
    groups: usize,
    burn_in: usize,
    steps: usize,
    seed: u64,
) -> EnsembleEstimate {
    let n0 = model.size(0);
    let d = model.total_size() - n0;
    let data = Mat::<f32>::from_fn(chains, n0, |_, j| x0[j] as f32);
    let mut run = dynamics
        .init(model, Some(data.as_ref()), None, chains, seed)
        .unwrap();
    for _ in 0..burn_in {
        dynamics.step(model, &mut run).unwrap();
    }
    let per = chains / groups;
    let mut s1 = vec![vec![0.0f64; d]; groups];
    let mut sa = vec![vec![0.0f64; d]; groups];
    let mut s2 = vec![Mat::<f64>::zeros(d, d); groups];
    let mut v = vec![0.0f64; d];
    for _ in 0..steps {
        dynamics.step(model, &mut run).unwrap();
        let (x, aux) = (run.state.x(), run.state.aux());
        for g in 0..groups {
            for c in g * per..(g + 1) * per {
                for (i, vi) in v.iter_mut().enumerate() {
                    *vi = x[(c, n0 + i)] as f64;
                    sa[g][i] += (aux[(c, n0 + i)] as f64).powi(2);
                }
                for i in 0..d {
                    s1[g][i] += v[i];
                    for j in 0..=i {
                        s2[g][(i, j)] += v[i] * v[j];
                    }
                }
            }
        }
    }
    let cnt = (per * steps) as f64;
    let mut means = Vec::new();
    let mut covs = Vec::new();
    for g in 0..groups {
        let m: Vec<f64> = s1[g].iter().map(|s| s / cnt).collect();
        let c = Mat::from_fn(d, d, |i, j| {
            let (a, b) = if j <= i { (i, j) } else { (j, i) };
            s2[g][(a, b)] / cnt - m[a] * m[b]
        });
        means.push(m);
        covs.push(c);
    }
    let gf = groups as f64;
    let mean: Vec<f64> = (0..d)
        .map(|i| means.iter().map(|m| m[i]).sum::<f64>() / gf)
        .collect();
    let mean_se: Vec<f64> = (0..d)
        .map(|i| {
            (means.iter().map(|m| (m[i] - mean[i]).powi(2)).sum::<f64>() / (gf - 1.0) / gf).sqrt()
        })
        .collect();
    let cov = Mat::from_fn(d, d, |i, j| {
        covs.iter().map(|c| c[(i, j)]).sum::<f64>() / gf
    });
    let cov_se = Mat::from_fn(d, d, |i, j| {
        (covs
            .iter()
            .map(|c| (c[(i, j)] - cov[(i, j)]).powi(2))
            .sum::<f64>()
            / (gf - 1.0)
            / gf)
            .sqrt()
    });
    let aq: Vec<Vec<f64>> = sa
        .iter()
        .map(|s| s.iter().map(|v| v / cnt).collect())
        .collect();
    let aux_sq: Vec<f64> = (0..d)
        .map(|i| aq.iter().map(|m| m[i]).sum::<f64>() / gf)
        .collect();
    let aux_sq_se: Vec<f64> = (0..d)
        .map(|i| {
            (aq.iter().map(|m| (m[i] - aux_sq[i]).powi(2)).sum::<f64>() / (gf - 1.0) / gf).sqrt()
        })
        .collect();
    EnsembleEstimate {
        mean,
        mean_se,
        cov,
        cov_se,
        aux_sq,
        aux_sq_se,
    }
}

/// Extreme eigenvalues of the posterior precision of a linear-gaussian model.
pub fn precision_range(lg: &LinearGaussian) -> (f64, f64) {
    let ev = lg
        .precision()
        .self_adjoint_eigenvalues(faer::Side::Lower)
        .unwrap();
    let lo = ev.iter().cloned().fold(f64::INFINITY, f64::min);
    let hi = ev.iter().cloned().fold(0.0, f64::max);
    (lo, hi)
}

/// Spectral norm of a symmetric matrix.
pub fn sym_norm2(m: &Mat<f64>) -> f64 {
    let ev = m.self_adjoint_eigenvalues(faer::Side::Lower).unwrap();
    ev.iter().map(|v| v.abs()).fold(0.0, f64::max)
}

/// A config with dt = `h_lmax`/λ_max and τ = 1.
pub fn config_for(lg: &LinearGaussian, h_lmax: f64) -> NeuralConfig {
    let (_, hi) = precision_range(lg);
    NeuralConfig::new(h_lmax / hi, 1.0)
}

use hee_core::reference::linear_gaussian::Gaussian;
use proptest::test_runner::TestCaseError;

/// Every entry of the estimate lies within 6 SE of the sampler's exact
/// stationary law `stat` (the moment recursion's fixed point: exact for the
/// discretised sampler, interneurons included). How far that law may sit
/// from the posterior is a separate, derived bound that each test checks on
/// its own.
///
/// The SE come from the spread of 16 independent groups (Student t with 15
/// dof: a 6-SE excursion has probability < 1e-4 per entry).
pub fn check_against_stationary(
    est: &EnsembleEstimate,
    stat: &Gaussian,
) -> Result<(), TestCaseError> {
    let d = stat.dim();
    for i in 0..d {
        let err = (est.mean[i] - stat.mean[i]).abs();
        proptest::prop_assert!(
            err <= 6.0 * est.mean_se[i],
            "mean[{i}]: {} vs stationary {} (se {:.2e})",
            est.mean[i],
            stat.mean[i],
            est.mean_se[i]
        );
        for j in 0..d {
            let err = (est.cov[(i, j)] - stat.cov[(i, j)]).abs();
            proptest::prop_assert!(
                err <= 6.0 * est.cov_se[(i, j)],
                "cov[{i},{j}]: {} vs stationary {} (se {:.2e})",
                est.cov[(i, j)],
                stat.cov[(i, j)],
                est.cov_se[(i, j)]
            );
        }
    }
    Ok(())
}

/// A random linear-gaussian model (weights 0.6), its exact counterpart and
/// one observation in [−1, 1].
pub fn lg_setup(seed: u64, sizes: &[usize]) -> (HeeModel<f32>, LinearGaussian, Vec<f64>) {
    let m64 = linear_gaussian_model(seed, sizes, 0.6);
    let lg = LinearGaussian::from_model(&m64).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 1);
    let x0: Vec<f64> = (0..sizes[0]).map(|_| rng.random_range(-1.0..1.0)).collect();
    (m64.cast::<f32>(), lg, x0)
}

/// After `t` steps from latents at 3.0, the ensemble of `n` chains matches
/// the moment recursion of `kind`: the ensemble is exactly gaussian, so
/// sd(mean_i) = √(P_ii/N) and sd(cov_ij) = √((P_ii P_jj + P_ij²)/N); we
/// allow 6 of them (+1e-4 for f32 rounding of the deterministic part).
#[allow(clippy::too_many_arguments)]
pub fn transient_matches_recursion<D: Dynamics<f32>>(
    seed: u64,
    kernel: &D,
    kind: hee_core::reference::moments::KernelKind,
    model: &HeeModel<f32>,
    lg: &LinearGaussian,
    x0: &[f64],
    t: usize,
    n: usize,
) {
    use hee_core::reference::moments::MomentRecursion;
    let cfg = *kernel.config();
    let rec = MomentRecursion::new(lg, &cfg, kind, x0).unwrap();
    let d = lg.latent_dim();
    let (mut mean, mut cov) = rec.init_moments(&vec![3.0; d]);
    for _ in 0..t {
        (mean, cov) = rec.step.propagate(&mean, &cov);
    }
    let (m, p) = rec.latent_part(&mean, &cov);
    let n0 = model.size(0);
    let latents = Mat::<f32>::from_fn(n, d, |_, _| 3.0);
    let data = Mat::<f32>::from_fn(n, n0, |_, j| x0[j] as f32);
    let mut run = kernel
        .init(model, Some(data.as_ref()), Some(latents.as_ref()), n, seed)
        .unwrap();
    for _ in 0..t {
        kernel.step(model, &mut run).unwrap();
    }
    let lat = run.state.latents(model).unwrap();
    let samples = Mat::<f64>::from_fn(n, d, |r, c| lat[(r, c)] as f64);
    let (sm, sc) = hee_core::reference::linear_gaussian::sample_moments(samples.as_ref());
    let nf = n as f64;
    for i in 0..d {
        let tol = 6.0 * (p[(i, i)] / nf).sqrt() + 1e-4;
        assert!(
            (sm[i] - m[i]).abs() < tol,
            "mean[{i}] {} vs recursion {} (tol {tol:.3e})",
            sm[i],
            m[i]
        );
        for j in 0..d {
            let tol = 6.0 * ((p[(i, i)] * p[(j, j)] + p[(i, j)].powi(2)) / nf).sqrt() + 1e-4;
            assert!(
                (sc[(i, j)] - p[(i, j)]).abs() < tol,
                "cov[{i},{j}] {} vs recursion {} (tol {tol:.3e})",
                sc[(i, j)],
                p[(i, j)]
            );
        }
    }
}

/// Linear-gaussian models with 2–3 latent layers of 2–8 units (the
/// observation layer also 2–8 units), and a seed for weights and data.
pub fn lg_strategy() -> impl proptest::strategy::Strategy<Value = (u64, Vec<usize>)> {
    use proptest::prelude::*;
    (any::<u64>(), prop::collection::vec(2usize..=8, 3..=4))
}

/// ∇²U of a linear-gaussian model over all units, from the equations: the
/// diagonal blocks I/σ_l² + σ_{l−1}² W_{l−1}ᵀW_{l−1} (no second term for
/// l = 0), the off-diagonal blocks −W_l between x_l and x_{l+1}.
pub fn joint_hessian(m: &HeeModel<f64>) -> Mat<f64> {
    let n = m.total_size();
    let mut h = Mat::<f64>::zeros(n, n);
    for l in 0..m.n_layers() {
        let o = m.offset(l);
        for i in 0..m.size(l) {
            h[(o + i, o + i)] += 1.0 / m.energy(l).sigma().powi(2);
        }
        if l < m.top() {
            let (w, o1) = (m.weight(l), m.offset(l + 1));
            let s2 = m.energy(l).sigma().powi(2);
            for a in 0..m.size(l + 1) {
                for b in 0..m.size(l + 1) {
                    h[(o1 + a, o1 + b)] +=
                        s2 * (0..m.size(l)).map(|i| w[(i, a)] * w[(i, b)]).sum::<f64>();
                }
                for i in 0..m.size(l) {
                    h[(o + i, o1 + a)] -= w[(i, a)];
                    h[(o1 + a, o + i)] -= w[(i, a)];
                }
            }
        }
    }
    h
}
