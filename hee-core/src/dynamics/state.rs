//! What a run of a kernel carries: the state of a batch of networks, its
//! random streams and the kernel's scratch buffers ([`Chains`]), and the
//! diagnostics of one step ([`StepInfo`]).

use faer::{Mat, MatMut, MatRef};

use crate::elementwise::check_finite;
use crate::error::{HeeError, Result};
use crate::model::HeeModel;
use crate::rng::RowStreams;
use crate::scalar::Real;

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
    /// Units held at their current values (indices into the stacked state,
    /// increasing), beyond the layers `NeuralConfig::observed` clamps.
    pub(crate) clamped: Vec<usize>,
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
            check_finite(field, m)?;
            Ok(m.transpose().to_owned())
        };
        Ok(SamplerState {
            x: take("x", x)?,
            eta: take("eta", eta)?,
            a_prime: take("a_prime", a_prime)?,
            eps: take("eps", eps)?,
            aux: take("aux", aux)?,
            step,
            clamped: Vec::new(),
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

    /// Holds the units where `mask` is true at their current values, in
    /// every later step (the rest, and the latents, are sampled): with
    /// x₀ free (`Observed::Free`), `mask` over layer 0 clamps part of an
    /// observation, e.g. the top half of an image, and the chains sample
    /// p(x₀,missing, x₁ … x_L | x₀,seen). `mask` has one entry per unit of
    /// the stacked state (layers in order); an all-false mask releases
    /// every unit. The adaptation current of a clamped unit is held at 0.
    pub fn clamp_units(&mut self, model: &HeeModel<T>, mask: &[bool]) -> Result<()> {
        model.check_state("state", self.x.as_ref())?;
        if mask.len() != model.total_size() {
            return Err(HeeError::dims("mask", model.total_size(), mask.len()));
        }
        self.clamped = (0..mask.len()).filter(|&i| mask[i]).collect();
        for &i in &self.clamped {
            for j in 0..self.aux.ncols() {
                self.aux[(i, j)] = T::zero();
            }
        }
        Ok(())
    }
    /// The units held by [`clamp_units`](Self::clamp_units), in increasing order.
    pub fn clamped_units(&self) -> &[usize] {
        &self.clamped
    }
}

/// Scratch buffers of a kernel, allocated once by [`Dynamics::init`].
#[derive(Debug, Clone)]
pub struct Workspace<T> {
    /// fx, diff, tmp and grad stacked by rows (4 × total units, one column per sample).
    pub(crate) buf: Mat<T>,
    /// Per-chunk partial sums for the diagnostics, summed in chunk order.
    pub(crate) partial: Vec<f64>,
    /// Resolved A′ estimator of every layer (reused, so steps do not allocate).
    pub(crate) kinds: Vec<crate::aprime::LayerAPrime>,
    /// The chunk size the buffers were cut for.
    pub(crate) chunk: usize,
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

/// Cuts a chunk of the workspace buffer into its four scratch matrices.
pub(crate) fn split_scratch<T>(buf: MatMut<'_, T>, n: usize) -> ChunkScratch<'_, T> {
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
