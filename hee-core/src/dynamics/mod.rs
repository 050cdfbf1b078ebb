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
//! Samples are columns; each has its own ChaCha8 stream (stream j of the
//! seed's chain key drives column j, see [`crate::rng::Purpose`]), and columns are processed in fixed chunks by one executor
//! ([`executor`]), so a run is a function of the seed, bit for bit, whatever
//! the number of rayon threads.
//!
//! Where things are: the shared settings in [`config`], the state and the
//! run's buffers in [`state`], the checks in [`checks`], the kernels in
//! [`langevin`] and [`adaptation`] (its tuning from the posterior's
//! curvature in [`curvature`]), and the step chosen from the current
//! parameters in [`tuning`].

pub mod adaptation;
pub mod checks;
pub mod config;
pub mod curvature;
pub mod executor;
pub mod langevin;
pub mod state;
pub mod tuning;

pub use adaptation::Adaptation;
pub use checks::{check_step_sizes, check_step_sizes_for};
pub use config::{NeuralConfig, Observed, Potential};
pub use curvature::CurvatureRange;
pub(crate) use executor::split_step;
pub use executor::{clamp_data, clamp_data_at, resync_after_update};
pub use langevin::Langevin;
pub use state::{Chains, SamplerState, StepInfo, Workspace};
pub use tuning::{retuned, Tuning};

pub use crate::rng::{RowStreams, StreamPosition};

use faer::{Mat, MatMut, MatRef};

use crate::elementwise::check_finite;
use crate::error::{HeeError, Result};
use crate::model::HeeModel;
use crate::rng::SampleStream;
use crate::scalar::Real;
use checks::check_chains;
use executor::{fill_constant_a_prime, set_observed};

/// Refreshes of the A′ estimators performed by `init`.
pub const INIT_REFRESHES: usize = 5;

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
        checks::check_latents(model, latents, batch)?;
        if let Some(li) = latents {
            check_finite("latents", li)?;
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
                clamped: Vec::new(),
            },
            streams: RowStreams::new(seed, batch),
            workspace: Workspace::new(model, batch, cfg.chunk),
        };
        fill_constant_a_prime(model, &mut chains.state)?;
        // A few refreshes bring the interneurons to the initial η.
        for _ in 0..INIT_REFRESHES {
            executor::refresh(cfg, model, &mut chains, 0)?;
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
        executor::step(self, model, chains)
    }
}
