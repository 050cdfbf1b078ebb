//! Neural dynamics: kernels that move a batch of network states (spec §3–4).
//!
//! Every kernel follows one pattern, after BlackJAX: [`Dynamics::init`] builds
//! [`Chains`] — a plain [`SamplerState`], one random stream per sample and the
//! scratch buffers, all sized once from the batch and the kernel's chunk —
//! and [`Dynamics::step`] advances them by one neuron step in place and
//! returns a [`StepInfo`] with diagnostics. Nothing is printed or stored here.
//!
//! **Layout at the boundary.** Everything a caller passes in or reads out is
//! one sample per row (batch × units, as numpy and PyTorch users expect):
//! the observations `data` (batch × size(0)), the starting `latents`
//! (batch × the latent units of layers 1…L, in layer order) and every view of
//! the state ([`SamplerState::x`], [`SamplerState::layer`], …). Internally
//! the state is stored transposed (one column per sample, so each sample is
//! contiguous and η is a single matrix product); the views are free.
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

use crate::stream::SampleStream;
use faer::reborrow::{Reborrow, ReborrowMut};
use faer::{Mat, MatMut, MatRef};
use rayon::prelude::*;

use crate::aprime::{refresh_all, APrime, LayerAPrime};
use crate::energy::BaseEnergy;
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

/// One independent random stream per sample: ChaCha8 stream j of the seed
/// drives sample j (the same words as `rand_chacha::ChaCha8Rng`, see
/// [`crate::stream`]).
#[derive(Debug, Clone, PartialEq)]
pub struct RowStreams {
    rngs: Vec<SampleStream>,
}

impl RowStreams {
    /// `n` streams of one seed: stream j drives sample j.
    pub fn new(seed: u64, n: usize) -> Self {
        RowStreams {
            rngs: (0..n).map(|j| SampleStream::new(seed, j as u64)).collect(),
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
    pub fn as_mut_slice(&mut self) -> &mut [SampleStream] {
        &mut self.rngs
    }
    /// The exact position of every stream (to save a run).
    pub fn snapshot(&self) -> Vec<StreamPosition> {
        self.rngs
            .iter()
            .map(|r| StreamPosition {
                seed: r.seed(),
                stream: r.stream(),
                word_pos: r.word_pos(),
            })
            .collect()
    }
    /// Streams continuing exactly where a [`snapshot`](Self::snapshot) left them.
    pub fn from_snapshot(positions: &[StreamPosition]) -> Self {
        RowStreams {
            rngs: positions
                .iter()
                .map(|p| SampleStream::at(p.seed, p.stream, p.word_pos))
                .collect(),
        }
    }
}

/// Where one ChaCha8 stream stands: its key, stream number and position
/// (in 32-bit words), enough to continue it bit for bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamPosition {
    pub seed: [u8; 32],
    pub stream: u64,
    pub word_pos: u128,
}

/// The state of a batch of networks.
///
/// Stored one column per sample with the layers stacked by rows (see
/// [`crate::model`]); every public view is one sample per row.
#[derive(Debug, Clone)]
pub struct SamplerState<T> {
    /// Neuron states x of every layer (layer 0 holds the data when clamped).
    pub(crate) x: Mat<T>,
    /// Natural parameters η(x) of every layer.
    pub(crate) eta: Mat<T>,
    /// Current estimate of A′(η) for every layer.
    pub(crate) a_prime: Mat<T>,
    /// Interneuron states ε (rows of layers without interneurons stay zero).
    pub(crate) eps: Mat<T>,
    /// Auxiliary per-neuron variable of the kernel (the adaptation current
    /// for adaptation dynamics; zero for plain Langevin).
    pub(crate) aux: Mat<T>,
    /// Number of steps taken.
    pub(crate) step: u64,
}

impl<T: Real> SamplerState<T> {
    /// A state from its parts, each batch × total units (one sample per
    /// row, as the views return them), and the step count: for resuming a
    /// saved run. Shapes and finiteness are checked.
    #[allow(clippy::too_many_arguments)]
    pub fn from_parts(
        model: &HeeModel<T>,
        x: MatRef<'_, T>,
        eta: MatRef<'_, T>,
        a_prime: MatRef<'_, T>,
        eps: MatRef<'_, T>,
        aux: MatRef<'_, T>,
        step: u64,
    ) -> Result<Self> {
        let (b, n) = (x.nrows(), model.total_size());
        let take = |field: &str, m: MatRef<'_, T>| -> Result<Mat<T>> {
            if m.nrows() != b || m.ncols() != n || b == 0 {
                return Err(HeeError::dims(
                    field,
                    format!("{b}x{n} (batch x units, batch >= 1)"),
                    format!("{}x{}", m.nrows(), m.ncols()),
                ));
            }
            crate::model::check_finite(field, m)?;
            Ok(m.transpose().to_owned())
        };
        Ok(SamplerState {
            x: take("x", x)?,
            eta: take("eta", eta)?,
            a_prime: take("a_prime", a_prime)?,
            eps: take("eps", eps)?,
            aux: take("aux", aux)?,
            step,
        })
    }
    /// Number of samples.
    pub fn batch(&self) -> usize {
        self.x.ncols()
    }
    /// Number of steps taken since `init`.
    pub fn steps(&self) -> u64 {
        self.step
    }
    /// Neuron states of every layer: batch × total units, layers side by side.
    pub fn x(&self) -> MatRef<'_, T> {
        self.x.transpose()
    }
    /// Natural parameters η(x) of every layer, batch × total units.
    pub fn eta(&self) -> MatRef<'_, T> {
        self.eta.transpose()
    }
    /// The current A′(η) estimate of every layer, batch × total units.
    pub fn a_prime(&self) -> MatRef<'_, T> {
        self.a_prime.transpose()
    }
    /// Interneuron states ε, batch × total units.
    pub fn eps(&self) -> MatRef<'_, T> {
        self.eps.transpose()
    }
    /// The kernel's auxiliary variable (adaptation current), batch × total units.
    pub fn aux(&self) -> MatRef<'_, T> {
        self.aux.transpose()
    }
    /// Mutable auxiliary variable, batch × total units (e.g. to start the
    /// adaptation current from its stationary law).
    pub fn aux_mut(&mut self) -> MatMut<'_, T> {
        self.aux.as_mut().transpose_mut()
    }
    /// Layer l, batch × size(l); an error if l is not a layer of `model` or
    /// the state is not shaped for it.
    pub fn layer<'a>(&'a self, model: &HeeModel<T>, l: usize) -> Result<MatRef<'a, T>> {
        model.check_layer(l)?;
        model.check_state("state", self.x.as_ref())?;
        Ok(model.layer_of(self.x.as_ref(), l).transpose())
    }
    /// The latent layers 1…L, batch × latent units.
    pub fn latents<'a>(&'a self, model: &HeeModel<T>) -> Result<MatRef<'a, T>> {
        model.check_state("state", self.x.as_ref())?;
        let o = model.offset(1);
        Ok(self
            .x
            .as_ref()
            .subrows(o, model.total_size() - o)
            .transpose())
    }
}

/// Scratch buffers of a kernel, allocated once by [`Dynamics::init`].
#[derive(Debug, Clone)]
pub struct Workspace<T> {
    /// fx, diff, tmp and grad stacked by rows (4 × total units, one column per sample).
    buf: Mat<T>,
    /// Per-chunk partial sums for the diagnostics, summed in chunk order.
    partial: Vec<f64>,
    /// Resolved A′ estimator of every layer (reused, so steps do not allocate).
    kinds: Vec<LayerAPrime>,
    /// The chunk size the buffers were cut for.
    chunk: usize,
    n: usize,
}

impl<T: Real> Workspace<T> {
    /// Scratch for `batch` samples of `model` in chunks of `chunk`.
    pub(crate) fn new(model: &HeeModel<T>, batch: usize, chunk: usize) -> Self {
        let n = model.total_size();
        Workspace {
            buf: Mat::zeros(4 * n, batch),
            partial: vec![0.0; batch.div_ceil(chunk.max(1))],
            kinds: Vec::with_capacity(model.n_layers()),
            chunk,
            n,
        }
    }
    /// The last gradient ∂U/∂x computed (free layers only), batch × total units.
    pub fn grad(&self) -> MatRef<'_, T> {
        self.buf.as_ref().subrows(3 * self.n, self.n).transpose()
    }
}

/// Everything a run of one kernel needs, built once by [`Dynamics::init`]:
/// the state, one random stream per sample, and the scratch buffers.
///
/// The fields are public so that a run can be saved and resumed (the state
/// and the streams are its whole content); [`Dynamics::step`] checks that
/// they still fit together and returns a typed error if they do not.
#[derive(Debug, Clone)]
pub struct Chains<T> {
    pub state: SamplerState<T>,
    pub streams: RowStreams,
    pub workspace: Workspace<T>,
}

impl<T: Real> Chains<T> {
    /// Number of samples.
    pub fn batch(&self) -> usize {
        self.state.batch()
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
pub(crate) struct ChunkScratch<'a, T> {
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
    /// = ∂U/∂x, drawing noise for sample j from `rngs[j]`. The views are
    /// internal (one column per sample); callers use [`Dynamics::step`].
    fn update_chunk(
        &self,
        model: &HeeModel<T>,
        x: MatMut<'_, T>,
        aux: MatMut<'_, T>,
        grad: MatRef<'_, T>,
        rngs: &mut [SampleStream],
    );

    /// Fresh chains for `batch` samples, random streams from `seed`.
    ///
    /// * `data`: the observations, batch × size(0); required when x₀ is
    ///   clamped, optional (the start of x₀, else zero) when it is free;
    /// * `latents`: the start of layers 1…L, batch × their total width in
    ///   layer order (zero if `None`).
    ///
    /// Interneurons start at rest and the A′ estimates are settled by a few
    /// refreshes at the initial η. Fails with a typed error on a shape
    /// mismatch, non-finite input, or a Δt too long for the stiffest energy
    /// (neurons, and interneuron sub-steps).
    fn init(
        &self,
        model: &HeeModel<T>,
        data: Option<MatRef<'_, T>>,
        latents: Option<MatRef<'_, T>>,
        batch: usize,
        seed: u64,
    ) -> Result<Chains<T>> {
        self.validate()?;
        let cfg = self.config();
        if batch == 0 {
            return Err(HeeError::dims("batch", ">= 1", 0));
        }
        check_step_sizes(model, cfg)?;
        let n = model.total_size();
        let n0 = model.size(0);
        let mut x = Mat::<T>::zeros(n, batch);
        if let Some(li) = latents {
            if li.nrows() != batch || li.ncols() != n - n0 {
                return Err(HeeError::dims(
                    "latents",
                    format!("{batch}x{}", n - n0),
                    format!("{}x{}", li.nrows(), li.ncols()),
                ));
            }
            crate::model::check_finite("latents", li)?;
            x.as_mut().subrows_mut(n0, n - n0).copy_from(li.transpose());
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
        let mut chains = Chains {
            state: SamplerState {
                eta: Mat::zeros(n, batch),
                a_prime: Mat::zeros(n, batch),
                eps: Mat::zeros(n, batch),
                aux: Mat::zeros(n, batch),
                x,
                step: 0,
            },
            streams: RowStreams::new(seed, batch),
            workspace: Workspace::new(model, batch, cfg.chunk),
        };
        fill_constant_a_prime(model, &mut chains.state)?;
        // A few refreshes bring the interneurons to the initial η.
        for _ in 0..INIT_REFRESHES {
            refresh(cfg, model, &mut chains)?;
        }
        Ok(chains)
    }

    /// Chains that continue a saved run: its state and random streams
    /// (see [`SamplerState::from_parts`], [`RowStreams::from_snapshot`]),
    /// with fresh scratch buffers. Checked like [`init`](Self::init): the
    /// kernel's settings and step sizes, and that state and streams fit the
    /// model and each other.
    fn resume(
        &self,
        model: &HeeModel<T>,
        state: SamplerState<T>,
        streams: RowStreams,
    ) -> Result<Chains<T>> {
        self.validate()?;
        let cfg = self.config();
        check_step_sizes(model, cfg)?;
        let batch = state.batch();
        let chains = Chains {
            state,
            streams,
            workspace: Workspace::new(model, batch, cfg.chunk),
        };
        check_chains(model, cfg, &chains)?;
        Ok(chains)
    }

    /// One neuron step, in place; see the module documentation.
    fn step(&self, model: &HeeModel<T>, chains: &mut Chains<T>) -> Result<StepInfo> {
        let cfg = self.config();
        check_chains(model, cfg, chains)?;
        let Chains {
            state,
            streams,
            workspace: ws,
        } = chains;
        cfg.a_prime.resolve_into(model, &mut ws.kinds)?;
        let kinds = &ws.kinds;
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
        // Both halves of the step in one pass over each chunk.
        chunks
            .into_par_iter()
            .try_for_each(
                |(mut x, eta, ap, eps, aux, buf, rngs, partial)| -> Result<()> {
                    let mut s = split_scratch(buf, n);
                    *partial = move_chunk(
                        self,
                        model,
                        x.rb_mut(),
                        eta.rb(),
                        ap.rb(),
                        aux,
                        &mut s,
                        rngs,
                    )?;
                    refresh_chunk(cfg, model, kinds, x.rb(), eta, ap, eps, s.fx, rngs)
                },
            )
            .map_err(|e| stamp_step(e, state.step + 1, model, cfg))?;
        Ok(finish_step(state, &ws.partial))
    }
}

/// First half of a step for one chunk: ∂U/∂x from (x, η, A′), then the
/// kernel's move of x (and its auxiliary variable). Returns Σ|∂U/∂x|² over
/// the chunk's free units.
#[allow(clippy::too_many_arguments)]
fn move_chunk<T: Real, D: Dynamics<T> + ?Sized>(
    dynamics: &D,
    model: &HeeModel<T>,
    mut x: MatMut<'_, T>,
    eta: MatRef<'_, T>,
    ap: MatRef<'_, T>,
    aux: MatMut<'_, T>,
    s: &mut ChunkScratch<'_, T>,
    rngs: &mut [SampleStream],
) -> Result<f64> {
    let first_free = dynamics.config().first_free();
    let n = model.total_size();
    model.state_gradient_unchecked(
        x.rb(),
        eta,
        ap,
        first_free,
        s.diff.rb_mut(),
        s.tmp.rb_mut(),
        s.grad.rb_mut(),
    );
    let o = model.offset(first_free);
    let partial = sum_sq(s.grad.rb().subrows(o, n - o));
    dynamics.update_chunk(model, x.rb_mut(), aux, s.grad.rb(), rngs);
    check_chunk(model, x.rb(), first_free)?;
    Ok(partial)
}

/// Second half of a step for one chunk: η(x) for the new x, then a refresh
/// of every layer's A′ estimator (the interneurons' K sub-steps).
#[allow(clippy::too_many_arguments)]
fn refresh_chunk<T: Real>(
    cfg: &NeuralConfig,
    model: &HeeModel<T>,
    kinds: &[LayerAPrime],
    x: MatRef<'_, T>,
    mut eta: MatMut<'_, T>,
    mut ap: MatMut<'_, T>,
    eps: MatMut<'_, T>,
    fx: MatMut<'_, T>,
    rngs: &mut [SampleStream],
) -> Result<()> {
    let (h_eps, k) = (T::of(cfg.h_eps()), cfg.substeps());
    model.natural_params_unchecked(x, fx, eta.rb_mut());
    refresh_all(model, kinds, eta.rb(), eps, ap.rb_mut(), h_eps, k, rngs)
}

/// Counts the step and returns its diagnostics from the chunks' partial sums.
fn finish_step<T: Real>(state: &mut SamplerState<T>, partial: &[f64]) -> StepInfo {
    state.step += 1;
    StepInfo {
        step: state.step,
        mean_sq_grad: partial.iter().sum::<f64>() / state.batch() as f64,
    }
}

/// A neuron step with a parameter update between its halves (the fused
/// inference-and-learning step of [`crate::learning::learning_step`]):
///
/// 1. for every chunk, from the state at the start of the step: the
///    presynaptic rates f(x_l) of every layer l ≥ 1 go to `pre` (x_l itself
///    when f is the identity), the prediction errors x_l − A′_l of every
///    layer are formed (the drift needs them anyway), and x moves by the
///    kernel under the current parameters;
/// 2. `update(model, pre, errors)` changes the model (whole batch, one
///    column per sample);
/// 3. the top layer's constant A′ follows its bias, then for every chunk
///    η(x) is computed under the new parameters and the A′ estimators are
///    refreshed.
///
/// So each weight matrix enters three products per step (the drift, the
/// update, η) and the state ends consistent with the new parameters.
pub(crate) fn split_step<T: Real, D: Dynamics<T> + ?Sized>(
    dynamics: &D,
    model: &mut HeeModel<T>,
    chains: &mut Chains<T>,
    mut pre: MatMut<'_, T>,
    update: impl FnOnce(&mut HeeModel<T>, MatRef<'_, T>, MatRef<'_, T>) -> Result<()>,
) -> Result<StepInfo> {
    let cfg = dynamics.config();
    check_chains(model, cfg, chains)?;
    let Chains {
        state,
        streams,
        workspace: ws,
    } = chains;
    cfg.a_prime.resolve_into(model, &mut ws.kinds)?;
    let n = model.total_size();
    let c = cfg.chunk;
    let m: &HeeModel<T> = model;
    (
        state.x.as_mut().par_col_chunks_mut(c),
        state.eta.as_ref().par_col_chunks(c),
        state.a_prime.as_ref().par_col_chunks(c),
        state.aux.as_mut().par_col_chunks_mut(c),
        ws.buf.as_mut().par_col_chunks_mut(c),
        streams.rngs.par_chunks_mut(c),
        ws.partial.par_iter_mut(),
        pre.rb_mut().par_col_chunks_mut(c),
    )
        .into_par_iter()
        .try_for_each(
            |(mut x, eta, ap, aux, buf, rngs, partial, mut pre)| -> Result<()> {
                if m.nonlinearity().is_identity() {
                    let o = m.offset(1);
                    let r = n - o;
                    pre.rb_mut()
                        .subrows_mut(o, r)
                        .copy_from(x.rb().subrows(o, r));
                } else {
                    m.presynaptic(x.rb(), pre);
                }
                let mut s = split_scratch(buf, n);
                // The drift forms x_l − A′_l of layers 0…top−1 in `s.diff`;
                // the rule needs the top layer's too.
                let top = m.top();
                crate::model::zip_map2(
                    m.layer_of_mut(s.diff.rb_mut(), top),
                    m.layer_of(x.rb(), top),
                    m.layer_of(ap, top),
                    |a, b| a - b,
                );
                *partial = move_chunk(dynamics, m, x.rb_mut(), eta, ap, aux, &mut s, rngs)?;
                Ok(())
            },
        )
        .map_err(|e| stamp_step(e, state.step + 1, model, cfg))?;
    update(model, pre.rb(), ws.buf.as_ref().subrows(n, n))?;
    fill_constant_a_prime(model, state)?;
    refresh_chunks(cfg, model, &ws.kinds, state, &mut ws.buf, &mut streams.rngs)
        .map_err(|e| stamp_step(e, state.step + 1, model, cfg))?;
    Ok(finish_step(state, &ws.partial))
}

/// Checks both step sizes against the stiffest energy they integrate:
/// the neurons' h = Δt/τ on every free layer, and the interneurons'
/// sub-step hε = Δt/(K τ_ε) on every layer that runs interneurons.
///
/// Euler steps on a unit of curvature c diverge once h·c ≥ 2 and are
/// strongly biased well before, so both must keep h·max φ″ < 1. (φ″ bounds
/// the neurons' stiffness from below; the coupling through W adds to it and
/// is watched at run time by the divergence check.)
pub fn check_step_sizes<T: Real>(model: &HeeModel<T>, cfg: &NeuralConfig) -> Result<()> {
    check_step_sizes_for(model, model.layers().iter().map(|s| s.energy), cfg)
}

/// [`check_step_sizes`] for `model` with its base energies replaced by
/// `energies` (used to vet an energy-parameter update before applying it).
pub fn check_step_sizes_for<T: Real>(
    model: &HeeModel<T>,
    energies: impl IntoIterator<Item = BaseEnergy>,
    cfg: &NeuralConfig,
) -> Result<()> {
    let mut kinds = Vec::with_capacity(model.n_layers());
    cfg.a_prime.resolve_into(model, &mut kinds)?;
    let (h, he) = (cfg.h(), cfg.h_eps());
    for (l, e) in energies.into_iter().enumerate().take(model.n_layers()) {
        let c = e.max_curvature();
        if l >= cfg.first_free() && h * c >= 1.0 {
            return Err(HeeError::param(
                "dt",
                cfg.dt,
                "too long for the curvature of a layer's energy (dt/tau * max phi'' must stay below 1); lower dt",
            ));
        }
        if kinds[l] == LayerAPrime::Interneurons && he * c >= 1.0 {
            return Err(HeeError::param(
                "substeps",
                cfg.substeps() as f64,
                "interneuron sub-step dt/(K tau_eps) is too long for the curvature of a layer's energy; raise substeps or tau_eps/tau, or lower dt",
            ));
        }
    }
    Ok(())
}

/// Refreshes of the A′ estimators performed by `init`.
pub const INIT_REFRESHES: usize = 5;

/// Puts the step number into a divergence error, and says what diverged:
/// the interneurons name their own cause; an empty cause means the neurons.
fn stamp_step<T: Real>(
    e: HeeError,
    step: u64,
    model: &HeeModel<T>,
    cfg: &NeuralConfig,
) -> HeeError {
    match e {
        HeeError::Diverged { layer, cause, .. } => HeeError::Diverged {
            step,
            layer,
            cause: if cause.is_empty() {
                format!(
                    "neurons: step too large for the stiffest layer (dt/tau = {:.3e}, curvature bound {:.3e}: keep dt/tau * curvature well below 2)",
                    cfg.h(),
                    model.stiffness_bound()
                )
            } else {
                cause
            },
        },
        other => other,
    }
}

/// η(x) and a refresh of every A′ estimator, for the whole batch.
fn refresh<T: Real>(cfg: &NeuralConfig, model: &HeeModel<T>, chains: &mut Chains<T>) -> Result<()> {
    let Chains {
        state,
        streams,
        workspace: ws,
    } = chains;
    cfg.a_prime.resolve_into(model, &mut ws.kinds)?;
    refresh_chunks(cfg, model, &ws.kinds, state, &mut ws.buf, &mut streams.rngs)
        .map_err(|e| stamp_step(e, state.step, model, cfg))
}

/// [`refresh_chunk`] over every chunk of the batch, in parallel (errors are
/// not stamped with a step).
fn refresh_chunks<T: Real>(
    cfg: &NeuralConfig,
    model: &HeeModel<T>,
    kinds: &[LayerAPrime],
    state: &mut SamplerState<T>,
    buf: &mut Mat<T>,
    rngs: &mut [SampleStream],
) -> Result<()> {
    let n = model.total_size();
    let c = cfg.chunk;
    (
        state.x.as_ref().par_col_chunks(c),
        state.eta.as_mut().par_col_chunks_mut(c),
        state.a_prime.as_mut().par_col_chunks_mut(c),
        state.eps.as_mut().par_col_chunks_mut(c),
        buf.as_mut().par_col_chunks_mut(c),
        rngs.par_chunks_mut(c),
    )
        .into_par_iter()
        .try_for_each(|(x, eta, ap, eps, buf, rngs)| {
            let s = split_scratch(buf, n);
            refresh_chunk(cfg, model, kinds, x, eta, ap, eps, s.fx, rngs)
        })
}

/// The top layer's A′_L(b_L): η_L = b_L is the same for every sample and no
/// neuron reads it (only learning b_L does), so it is computed exactly once
/// per unit — closed form or quadrature — and broadcast to every sample.
fn fill_constant_a_prime<T: Real>(model: &HeeModel<T>, state: &mut SamplerState<T>) -> Result<()> {
    let top = model.top();
    let e = model.energy(top);
    let mut rows = model.layer_of_mut(state.a_prime.as_mut(), top);
    for (i, &b) in model.bias(top).iter().enumerate() {
        let a = T::of(crate::quadrature::moments(e, b.f64())?.mean);
        for j in 0..rows.ncols() {
            rows[(i, j)] = a;
        }
    }
    Ok(())
}

/// After the model's parameters changed (a learning update): recomputes
/// η(x), the exact A′ estimates (analytic and quadrature layers) and the top
/// layer's A′_L(b_L), so that the next step sees a state consistent with the
/// new parameters. Interneuron estimates are left as they are: the
/// populations track η continuously and catch up in the next step's
/// sub-steps.
pub fn resync_after_update<T: Real, D: Dynamics<T> + ?Sized>(
    dynamics: &D,
    model: &HeeModel<T>,
    chains: &mut Chains<T>,
) -> Result<()> {
    let cfg = dynamics.config();
    check_chains(model, cfg, chains)?;
    let Chains {
        state,
        workspace: ws,
        ..
    } = chains;
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
            model.natural_params_unchecked(x, s.fx.rb_mut(), eta.rb_mut());
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
                    LayerAPrime::Interneurons | LayerAPrime::Constant => {}
                }
            }
            Ok(())
        })?;
    fill_constant_a_prime(model, state)
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
    // Column slices (internal buffers are column-contiguous), summed in the
    // same order as an indexed loop would.
    let mut s = 0.0;
    for j in 0..m.ncols() {
        for &v in crate::aprime::col(m, j) {
            let v = v.f64();
            s += v * v;
        }
    }
    s
}

/// A neuron state left the finite numbers (the cause is filled in by
/// `stamp_step`).
fn check_chunk<T: Real>(model: &HeeModel<T>, x: MatRef<'_, T>, first_free: usize) -> Result<()> {
    for l in first_free..model.n_layers() {
        if !crate::model::all_finite(model.layer_of(x, l)) {
            return Err(HeeError::Diverged {
                step: 0,
                layer: l,
                cause: String::new(),
            });
        }
    }
    Ok(())
}

/// The parts of `chains` must fit the model, the kernel and each other:
/// otherwise the chunked parallel loop would silently skip samples.
fn check_chains<T: Real>(
    model: &HeeModel<T>,
    cfg: &NeuralConfig,
    chains: &Chains<T>,
) -> Result<()> {
    let Chains {
        state,
        streams,
        workspace: ws,
    } = chains;
    let (n, b) = (model.total_size(), state.batch());
    for (field, m) in [
        ("state.x", &state.x),
        ("state.eta", &state.eta),
        ("state.a_prime", &state.a_prime),
        ("state.eps", &state.eps),
        ("state.aux", &state.aux),
    ] {
        if m.nrows() != n || m.ncols() != b {
            return Err(HeeError::dims(
                field,
                format!("{b}x{n} (batch x units)"),
                format!("{}x{}", m.ncols(), m.nrows()),
            ));
        }
    }
    if streams.len() != b {
        return Err(HeeError::dims("streams", b, streams.len()));
    }
    if ws.chunk != cfg.chunk {
        return Err(HeeError::dims(
            "workspace chunk",
            format!("{} (the kernel's chunk)", cfg.chunk),
            ws.chunk,
        ));
    }
    if ws.buf.ncols() != b || ws.buf.nrows() != 4 * n || ws.partial.len() != b.div_ceil(cfg.chunk) {
        return Err(HeeError::dims(
            "workspace",
            format!("buffers for {b} samples of {n} units"),
            format!("{} samples of {} units", ws.buf.ncols(), ws.buf.nrows() / 4),
        ));
    }
    Ok(())
}

/// Copies observations (one sample per row) into layer 0 of a stacked state.
fn set_observed<T: Real>(model: &HeeModel<T>, x: &mut Mat<T>, data: MatRef<'_, T>) -> Result<()> {
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

/// Replaces the observations of running chains (e.g. the next minibatch,
/// batch × size(0)) and refreshes η and the A′ estimates for them.
pub fn clamp_data<T: Real, D: Dynamics<T> + ?Sized>(
    dynamics: &D,
    model: &HeeModel<T>,
    chains: &mut Chains<T>,
    data: MatRef<'_, T>,
) -> Result<()> {
    check_chains(model, dynamics.config(), chains)?;
    set_observed(model, &mut chains.state.x, data)?;
    refresh(dynamics.config(), model, chains)
}
