//! Random numbers: the per-sample ChaCha8 streams ([`chacha`]), fast f32
//! normals drawn from them ([`ziggurat`]), and one stream per sample of a
//! batch ([`RowStreams`]).

pub mod chacha;
pub mod ziggurat;

pub use chacha::SampleStream;
pub use ziggurat::{Ziggurat, BLOCK};

/// One independent random stream per sample: ChaCha8 stream j of the seed
/// drives sample j (the same words as `rand_chacha::ChaCha8Rng`, see
/// [`chacha`]).
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
