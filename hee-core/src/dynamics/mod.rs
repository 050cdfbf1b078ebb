//! Neural dynamics: kernels that move a batch of network states (spec §3–4).
//!
//! Every kernel follows one pattern, after BlackJAX: [`Dynamics::init`] builds
//! a plain [`SamplerState`], and [`Dynamics::step`] takes the random streams
//! and the state, advances it by one neuron step in place and returns a
//! [`StepInfo`] with diagnostics. Nothing is printed or stored here.
//!
//! One step, for every kernel:
//! 1. ∂U/∂x of the free layers from the state and the current A′ estimate;
//! 2. the kernel's own update of x (and of any auxiliary variable);
//! 3. η = η(x) for the new x, then each layer's A′ estimator is refreshed
//!    (for interneurons: K fast sub-steps).
//!
//! So after every step the state holds x, η(x) and an estimate of A′(η(x)),
//! the three quantities the learning rule reads.
//!
//! Samples are columns; each has its own ChaCha8 stream (stream index = the
//! column), and columns are processed in fixed chunks, so a run is a function
//! of the seed, bit for bit, whatever the number of rayon threads.

pub mod adaptation;
pub mod langevin;

pub use adaptation::{Adaptation, CurvatureRange};
pub use langevin::Langevin;

use faer::reborrow::{Reborrow, ReborrowMut};
use faer::{Mat, MatMut, MatRef};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::aprime::{refresh_all, APrime, LayerAPrime};
use crate::error::{positive, HeeError, Result};
use crate::model::HeeModel;
use crate::scalar::Real;

/// Whether the observation layer is clamped to data (inference) or free
/// (joint generation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Observed {
    #[default]
    Clamped,
    Free,
}

/// Settings every neural kernel shares.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NeuralConfig {
    /// Time step Δt.
    pub dt: f64,
    /// Neuron time constant τ.
    pub tau: f64,
    /// Estimator of A′(η).
    pub a_prime: APrime,
    /// Clamp the observation layer, or let it evolve.
    pub observed: Observed,
    /// Samples per parallel work unit (results depend on it, not on threads).
    pub chunk: usize,
}

impl NeuralConfig {
    /// Δt and τ with the default estimator (analytic for gaussian layers,
    /// interneurons otherwise), clamped observations, chunks of 32 samples.
    pub fn new(dt: f64, tau: f64) -> Self {
        NeuralConfig {
            dt,
            tau,
            a_prime: APrime::default(),
            observed: Observed::Clamped,
            chunk: 32,
        }
    }

    /// Checks Δt > 0, τ > 0, the interneuron settings and the chunk size.
    pub fn validate(&self) -> Result<()> {
        positive("dt", self.dt)?;
        positive("tau", self.tau)?;
        if let Some(c) = self.a_prime.interneurons() {
            c.validate()?;
        }
        if self.chunk == 0 {
            return Err(HeeError::param("chunk", 0.0, "must be >= 1"));
        }
        Ok(())
    }

    /// h = Δt/τ, the neurons' dimensionless step.
    pub fn h(&self) -> f64 {
        self.dt / self.tau
    }

    /// Interneuron sub-step Δt/(K τ_ε), or 0 without interneurons.
    pub fn h_eps(&self) -> f64 {
        match self.a_prime.interneurons() {
            Some(c) => self.h() / (c.substeps as f64 * c.tau_ratio),
            None => 0.0,
        }
    }

    /// Interneuron sub-steps K (1 when none are used).
    pub fn substeps(&self) -> usize {
        self.a_prime.interneurons().map_or(1, |c| c.substeps)
    }

    /// First layer that moves: 1 when x₀ is clamped, 0 otherwise.
    pub fn first_free(&self) -> usize {
        match self.observed {
            Observed::Clamped => 1,
            Observed::Free => 0,
        }
    }
}

/// One independent random stream per sample.
#[derive(Debug, Clone)]
pub struct RowStreams {
    rngs: Vec<ChaCha8Rng>,
}

impl RowStreams {
    /// `n` streams of one seed: stream j drives sample j.
    pub fn new(seed: u64, n: usize) -> Self {
        RowStreams {
            rngs: (0..n)
                .map(|j| {
                    let mut r = ChaCha8Rng::seed_from_u64(seed);
                    r.set_stream(j as u64);
                    r
                })
                .collect(),
        }
    }
    /// Number of streams.
    pub fn len(&self) -> usize {
        self.rngs.len()
    }
    /// True when there are no streams.
    pub fn is_empty(&self) -> bool {
        self.rngs.is_empty()
    }
    /// The streams, one per sample.
    pub fn as_mut_slice(&mut self) -> &mut [ChaCha8Rng] {
        &mut self.rngs
    }
}

/// The state of a batch of networks: plain matrices, one column per sample,
/// layers stacked by rows (see [`crate::model`]).
#[derive(Debug, Clone)]
pub struct SamplerState<T> {
    /// Neuron states x of every layer (layer 0 holds the data when clamped).
    pub x: Mat<T>,
    /// Natural parameters η(x) of every layer.
    pub eta: Mat<T>,
    /// Current estimate of A′(η) for every layer.
    pub a_prime: Mat<T>,
    /// Interneuron states ε (unused rows stay zero).
    pub eps: Mat<T>,
    /// Auxiliary per-neuron variable of the kernel (the adaptation current
    /// for adaptation dynamics; zero for plain Langevin).
    pub aux: Mat<T>,
    /// Number of steps taken.
    pub step: u64,
}

impl<T: Real> SamplerState<T> {
    /// Layer l with one sample per row.
    pub fn layer<'a>(&'a self, model: &HeeModel<T>, l: usize) -> MatRef<'a, T> {
        model.layer_of(self.x.as_ref(), l).transpose()
    }
    /// Number of samples.
    pub fn batch(&self) -> usize {
        self.x.ncols()
    }
}

/// Scratch buffers of a kernel, allocated once.
#[derive(Debug, Clone)]
pub struct Workspace<T> {
    /// fx, diff, tmp and grad stacked by rows (4 × total units, one column per sample).
    buf: Mat<T>,
    /// Per-chunk partial sums for the diagnostics, summed in chunk order.
    partial: Vec<f64>,
    /// Resolved A′ estimator of every layer (reused, so steps do not allocate).
    kinds: Vec<LayerAPrime>,
    n: usize,
}

impl<T: Real> Workspace<T> {
    /// Scratch for `batch` samples of `model`.
    pub fn new(model: &HeeModel<T>, batch: usize, chunk: usize) -> Self {
        let n = model.total_size();
        Workspace {
            buf: Mat::zeros(4 * n, batch),
            partial: vec![0.0; batch.div_ceil(chunk.max(1))],
            kinds: Vec::with_capacity(model.n_layers()),
            n,
        }
    }
    /// The last gradient ∂U/∂x computed (free layers only), one sample per column.
    pub fn grad(&self) -> MatRef<'_, T> {
        self.buf.as_ref().subrows(3 * self.n, self.n)
    }
}

/// Diagnostics of one step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepInfo {
    /// Index of the step just taken (1-based).
    pub step: u64,
    /// Mean over samples of |∂U/∂x|² over the free layers, before the move.
    pub mean_sq_grad: f64,
}

/// Scratch views of one chunk.
pub struct ChunkScratch<'a, T> {
    pub fx: MatMut<'a, T>,
    pub diff: MatMut<'a, T>,
    pub tmp: MatMut<'a, T>,
    pub grad: MatMut<'a, T>,
}

/// A neural kernel: the update of x (and its auxiliary variable) given ∂U/∂x.
pub trait Dynamics<T: Real>: Sync {
    /// Name used in reports (`plain`, `adaptation`, …).
    fn name(&self) -> &'static str;

    /// The shared settings.
    fn config(&self) -> &NeuralConfig;

    /// Checks the kernel's own parameters (the shared ones are checked too).
    fn validate(&self) -> Result<()> {
        self.config().validate()
    }

    /// Moves the free rows of one chunk: `x` and `aux` in place, from `grad`
    /// = ∂U/∂x, drawing noise for sample j from `rngs[j]`.
    fn update_chunk(
        &self,
        model: &HeeModel<T>,
        x: MatMut<'_, T>,
        aux: MatMut<'_, T>,
        grad: MatRef<'_, T>,
        rngs: &mut [ChaCha8Rng],
    );

    /// A fresh state: latents from `x_init` (or zero), observations from
    /// `data` (one sample per row; required when clamped), interneurons at
    /// rest, and A′ estimates settled by a few refreshes at the initial η.
    fn init(
        &self,
        model: &HeeModel<T>,
        data: Option<MatRef<'_, T>>,
        x_init: Option<MatRef<'_, T>>,
        batch: usize,
        streams: &mut RowStreams,
    ) -> Result<SamplerState<T>> {
        self.validate()?;
        let cfg = self.config();
        if streams.len() != batch {
            return Err(HeeError::dims("streams", batch, streams.len()));
        }
        let n = model.total_size();
        let mut x = Mat::<T>::zeros(n, batch);
        if let Some(xi) = x_init {
            if xi.nrows() != batch || xi.ncols() != n {
                return Err(HeeError::dims(
                    "x_init",
                    format!("{batch}x{n}"),
                    format!("{}x{}", xi.nrows(), xi.ncols()),
                ));
            }
            crate::model::check_finite("x_init", xi)?;
            x.copy_from(xi.transpose());
        }
        match (data, cfg.observed) {
            (Some(d), _) => set_observed(model, &mut x, d)?,
            (None, Observed::Clamped) => {
                return Err(HeeError::Unsupported(
                    "clamped inference needs data for layer 0".into(),
                ))
            }
            (None, Observed::Free) => {}
        }
        let mut state = SamplerState {
            eta: Mat::zeros(n, batch),
            a_prime: Mat::zeros(n, batch),
            eps: Mat::zeros(n, batch),
            aux: Mat::zeros(n, batch),
            x,
            step: 0,
        };
        check_interneuron_stability(model, cfg)?;
        let mut ws = Workspace::new(model, batch, cfg.chunk);
        // A few refreshes bring the interneurons to the initial η.
        for _ in 0..INIT_REFRESHES {
            refresh(self, model, streams, &mut state, &mut ws)?;
        }
        Ok(state)
    }

    /// One neuron step, in place; see the module documentation.
    fn step(
        &self,
        model: &HeeModel<T>,
        streams: &mut RowStreams,
        state: &mut SamplerState<T>,
        ws: &mut Workspace<T>,
    ) -> Result<StepInfo> {
        let cfg = self.config();
        check_batch(state, ws, streams)?;
        cfg.a_prime.resolve_into(model, &mut ws.kinds)?;
        let kinds = &ws.kinds;
        let first_free = cfg.first_free();
        let (h_eps, k) = (T::of(cfg.h_eps()), cfg.substeps());
        let n = model.total_size();
        let c = cfg.chunk;
        let chunks = (
            state.x.as_mut().par_col_chunks_mut(c),
            state.eta.as_mut().par_col_chunks_mut(c),
            state.a_prime.as_mut().par_col_chunks_mut(c),
            state.eps.as_mut().par_col_chunks_mut(c),
            state.aux.as_mut().par_col_chunks_mut(c),
            ws.buf.as_mut().par_col_chunks_mut(c),
            streams.rngs.par_chunks_mut(c),
            ws.partial.par_iter_mut(),
        );
        chunks
            .into_par_iter()
            .try_for_each(
                |(mut x, mut eta, mut ap, eps, aux, buf, rngs, partial)| -> Result<()> {
                    let s = split_scratch(buf, n);
                    let ChunkScratch {
                        mut fx,
                        diff,
                        tmp,
                        mut grad,
                    } = s;
                    model.state_gradient(
                        x.rb(),
                        eta.rb(),
                        ap.rb(),
                        first_free,
                        diff,
                        tmp,
                        grad.rb_mut(),
                    );
                    *partial = sum_sq(
                        grad.rb()
                            .subrows(model.offset(first_free), n - model.offset(first_free)),
                    );
                    self.update_chunk(model, x.rb_mut(), aux, grad.rb(), rngs);
                    check_chunk(model, x.rb(), first_free, 0)?;
                    model.natural_params(x.rb(), fx.rb_mut(), eta.rb_mut());
                    refresh_all(model, kinds, eta.rb(), eps, ap.rb_mut(), h_eps, k, rngs)
                },
            )
            .map_err(|e| stamp_step(e, state.step + 1, model, cfg))?;
        state.step += 1;
        let mean_sq_grad = ws.partial.iter().sum::<f64>() / state.batch() as f64;
        Ok(StepInfo {
            step: state.step,
            mean_sq_grad,
        })
    }
}

/// Rejects an interneuron sub-step hε = Δt/(K τ_ε) that is too long for
/// the stiffest interneuron layer (hε·max φ″ must stay below 1: beyond 2 the
/// Euler sub-steps diverge, and well before that their bias grows).
pub fn check_interneuron_stability<T: Real>(model: &HeeModel<T>, cfg: &NeuralConfig) -> Result<()> {
    let kinds = cfg.a_prime.resolve(model)?;
    let he = cfg.h_eps();
    for (l, k) in kinds.iter().enumerate() {
        if *k == LayerAPrime::Interneurons {
            let c = model.energy(l).max_curvature();
            if he * c >= 1.0 {
                return Err(HeeError::param(
                    "substeps",
                    cfg.substeps() as f64,
                    "interneuron sub-step dt/(K tau_eps) is too long for the curvature of a layer's energy; raise substeps or tau_eps/tau, or lower dt",
                ));
            }
        }
    }
    Ok(())
}

/// Refreshes of the A′ estimators performed by `init`.
pub const INIT_REFRESHES: usize = 5;

fn stamp_step<T: Real>(
    e: HeeError,
    step: u64,
    model: &HeeModel<T>,
    cfg: &NeuralConfig,
) -> HeeError {
    match e {
        HeeError::Diverged { layer, .. } => HeeError::Diverged {
            step,
            layer,
            cause: format!(
                "step too large for the stiffest layer (dt/tau = {:.3e}, curvature bound {:.3e}: keep dt/tau * curvature well below 2)",
                cfg.h(),
                model.stiffness_bound()
            ),
        },
        other => other,
    }
}

/// η(x) and a refresh of every A′ estimator, for the whole batch.
fn refresh<T: Real, D: Dynamics<T> + ?Sized>(
    dynamics: &D,
    model: &HeeModel<T>,
    streams: &mut RowStreams,
    state: &mut SamplerState<T>,
    ws: &mut Workspace<T>,
) -> Result<()> {
    let cfg = dynamics.config();
    let kinds = cfg.a_prime.resolve(model)?;
    let (h_eps, k) = (T::of(cfg.h_eps()), cfg.substeps());
    let n = model.total_size();
    let c = cfg.chunk;
    (
        state.x.as_ref().par_col_chunks(c),
        state.eta.as_mut().par_col_chunks_mut(c),
        state.a_prime.as_mut().par_col_chunks_mut(c),
        state.eps.as_mut().par_col_chunks_mut(c),
        ws.buf.as_mut().par_col_chunks_mut(c),
        streams.rngs.par_chunks_mut(c),
    )
        .into_par_iter()
        .try_for_each(|(x, mut eta, mut ap, eps, buf, rngs)| {
            let mut s = split_scratch(buf, n);
            model.natural_params(x, s.fx.rb_mut(), eta.rb_mut());
            refresh_all(model, &kinds, eta.rb(), eps, ap.rb_mut(), h_eps, k, rngs)
        })
}

/// After the model's parameters changed (a learning update): recomputes
/// η(x) and the exact A′ estimates (analytic and quadrature layers) so that
/// the next step sees a state consistent with the new parameters.
/// Interneuron estimates are left as they are: the populations track η
/// continuously and catch up in the next step's sub-steps.
pub fn resync_after_update<T: Real, D: Dynamics<T> + ?Sized>(
    dynamics: &D,
    model: &HeeModel<T>,
    state: &mut SamplerState<T>,
    ws: &mut Workspace<T>,
) -> Result<()> {
    let cfg = dynamics.config();
    cfg.a_prime.resolve_into(model, &mut ws.kinds)?;
    let kinds = &ws.kinds;
    let n = model.total_size();
    let c = cfg.chunk;
    (
        state.x.as_ref().par_col_chunks(c),
        state.eta.as_mut().par_col_chunks_mut(c),
        state.a_prime.as_mut().par_col_chunks_mut(c),
        ws.buf.as_mut().par_col_chunks_mut(c),
    )
        .into_par_iter()
        .try_for_each(|(x, mut eta, mut ap, buf)| -> Result<()> {
            let mut s = split_scratch(buf, n);
            model.natural_params(x, s.fx.rb_mut(), eta.rb_mut());
            for (l, kind) in kinds.iter().enumerate() {
                let e = model.energy(l);
                let el = model.layer_of(eta.rb(), l);
                let mut al = model.layer_of_mut(ap.rb_mut(), l);
                match kind {
                    LayerAPrime::Analytic => {
                        let s2 = T::of(e.sigma() * e.sigma());
                        crate::model::zip_map(al, el, |v| s2 * v);
                    }
                    LayerAPrime::Quadrature => {
                        for j in 0..el.ncols() {
                            for i in 0..el.nrows() {
                                al[(i, j)] = T::of(
                                    crate::quadrature::unit_moments(e, el[(i, j)].f64())?.mean,
                                );
                            }
                        }
                    }
                    LayerAPrime::Interneurons => {}
                }
            }
            Ok(())
        })
}

fn split_scratch<T>(buf: MatMut<'_, T>, n: usize) -> ChunkScratch<'_, T> {
    let (fx, rest) = buf.split_at_row_mut(n);
    let (diff, rest) = rest.split_at_row_mut(n);
    let (tmp, grad) = rest.split_at_row_mut(n);
    ChunkScratch {
        fx,
        diff,
        tmp,
        grad,
    }
}

fn sum_sq<T: Real>(m: MatRef<'_, T>) -> f64 {
    let mut s = 0.0;
    for j in 0..m.ncols() {
        for i in 0..m.nrows() {
            let v = m[(i, j)].f64();
            s += v * v;
        }
    }
    s
}

fn check_chunk<T: Real>(
    model: &HeeModel<T>,
    x: MatRef<'_, T>,
    first_free: usize,
    step: u64,
) -> Result<()> {
    for l in first_free..model.n_layers() {
        let xl = model.layer_of(x, l);
        for j in 0..xl.ncols() {
            for i in 0..xl.nrows() {
                if !xl[(i, j)].is_finite() {
                    return Err(HeeError::Diverged {
                        step,
                        layer: l,
                        cause: String::new(),
                    });
                }
            }
        }
    }
    Ok(())
}

fn check_batch<T: Real>(
    state: &SamplerState<T>,
    ws: &Workspace<T>,
    streams: &RowStreams,
) -> Result<()> {
    let b = state.batch();
    if streams.len() != b {
        return Err(HeeError::dims("streams", b, streams.len()));
    }
    if ws.buf.ncols() != b || ws.buf.nrows() != 4 * state.x.nrows() {
        return Err(HeeError::dims(
            "workspace",
            format!("{}x{b}", 4 * state.x.nrows()),
            format!("{}x{}", ws.buf.nrows(), ws.buf.ncols()),
        ));
    }
    Ok(())
}

/// Copies observations (one sample per row) into layer 0 of a stacked state.
pub fn set_observed<T: Real>(
    model: &HeeModel<T>,
    x: &mut Mat<T>,
    data: MatRef<'_, T>,
) -> Result<()> {
    let b = x.ncols();
    if data.nrows() != b || data.ncols() != model.size(0) {
        return Err(HeeError::dims(
            "data",
            format!("{b}x{}", model.size(0)),
            format!("{}x{}", data.nrows(), data.ncols()),
        ));
    }
    crate::model::check_finite("data", data)?;
    model
        .layer_of_mut(x.as_mut(), 0)
        .copy_from(data.transpose());
    Ok(())
}

/// Replaces the observations of a running state (e.g. the next minibatch)
/// and refreshes η and the A′ estimates for them.
pub fn clamp_data<T: Real, D: Dynamics<T> + ?Sized>(
    dynamics: &D,
    model: &HeeModel<T>,
    streams: &mut RowStreams,
    state: &mut SamplerState<T>,
    ws: &mut Workspace<T>,
    data: MatRef<'_, T>,
) -> Result<()> {
    set_observed(model, &mut state.x, data)?;
    refresh(dynamics, model, streams, state, ws)
}
