//! Random numbers: the per-sample ChaCha8 streams ([`chacha`]), fast f32
//! normals drawn from them ([`ziggurat`]), one stream per sample of a batch
//! ([`RowStreams`]), and one key per purpose of a run ([`Purpose`]).
//!
//! A run has one seed. Every generator it uses is keyed by (seed, purpose):
//! the initial weights, the minibatch shuffles, the dequantisation noise,
//! the data set's own draws (patches, splits), the chains and the
//! evaluation chains each get a ChaCha8 key of their own, derived from the
//! seed, so no two purposes ever read the same words.

pub mod chacha;
pub mod ziggurat;

pub use chacha::SampleStream;
pub use ziggurat::{Ziggurat, BLOCK};

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// What a generator of a run is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// The initial weights.
    Weights,
    /// The order of the minibatches (stream e of its key shuffles epoch e).
    Shuffles,
    /// Uniform dequantisation noise of 8-bit data.
    Dequantisation,
    /// The data set's own draws: patch positions, held-out splits.
    Data,
    /// The chains of the run (stream j of its key drives sample j).
    Chains,
    /// Chains of evaluations beside the run (e.g. per-epoch held-out error).
    Evaluation,
    /// The free-running chains of a negative phase (the baseline's PCD).
    FreeChains,
}

/// Streams of the run seed's own key that hold the purposes' keys: far from
/// the small stream numbers, though nothing else reads that key.
const KEY_STREAMS: u64 = 0x6b65_7973_0000_0000;

impl Purpose {
    /// Every purpose.
    pub const ALL: [Purpose; 7] = [
        Purpose::Weights,
        Purpose::Shuffles,
        Purpose::Dequantisation,
        Purpose::Data,
        Purpose::Chains,
        Purpose::Evaluation,
        Purpose::FreeChains,
    ];

    /// The seed of this purpose's generators in a run seeded by `run_seed`:
    /// the first 64-bit word of stream `KEY_STREAMS + purpose` of
    /// `ChaCha8Rng::seed_from_u64(run_seed)`. Generators seeded with it
    /// (`ChaCha8Rng::seed_from_u64`, [`SampleStream::new`]) have a key of
    /// their own.
    pub fn seed(self, run_seed: u64) -> u64 {
        let mut r = ChaCha8Rng::seed_from_u64(run_seed);
        r.set_stream(KEY_STREAMS + self as u64);
        r.next_u64()
    }

    /// A generator of this purpose: stream 0 of its key.
    pub fn rng(self, run_seed: u64) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(self.seed(run_seed))
    }
}

/// One independent random stream per sample: stream j of the run seed's
/// [`Purpose::Chains`] key drives sample j (the same words as
/// `rand_chacha::ChaCha8Rng`, see [`chacha`]).
#[derive(Debug, Clone, PartialEq)]
pub struct RowStreams {
    rngs: Vec<SampleStream>,
}

impl RowStreams {
    /// `n` streams of the chains of the run seeded by `seed`: stream j of
    /// its [`Purpose::Chains`] key drives sample j.
    pub fn new(seed: u64, n: usize) -> Self {
        let key = Purpose::Chains.seed(seed);
        RowStreams {
            rngs: (0..n).map(|j| SampleStream::new(key, j as u64)).collect(),
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
