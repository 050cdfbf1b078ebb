//! The per-sample random streams: ChaCha8, word for word the stream of
//! `rand_chacha::ChaCha8Rng`, generated 16 blocks at a time.
//!
//! Every sample of a batch owns one stream (see [`crate::dynamics`]), and
//! the neural step draws thousands of words per sample, so the keystream is
//! on the hot path (docs/performance.md). Here the 16 blocks of a buffer are computed in 16
//! vector lanes (one block per lane: the lane loops below vectorise to one
//! AVX-512 instruction each, or two AVX2 ones, inside [`crate::elementwise::simd`]'s
//! dispatch) and transposed into stream order.
//!
//! The stream is the same function of (key, stream number, word position)
//! as rand_chacha's: ChaCha with 8 rounds, a 64-bit block counter in words
//! 12–13 and the stream number in words 14–15. Seeds, positions and
//! checkpoints are therefore interchangeable with `ChaCha8Rng` (tested word
//! for word, across buffer boundaries and after seeking).

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Blocks generated at once.
const LANES: usize = 16;
/// Words per block.
const BLOCK_WORDS: usize = 16;
/// Words per buffer (16 blocks).
const BUF: usize = LANES * BLOCK_WORDS;
/// "expand 32-byte k".
const SIGMA: [u32; 4] = [0x6170_7865, 0x3320_646e, 0x7962_2d32, 0x6b20_6574];

/// One ChaCha8 random stream (see the module documentation).
#[derive(Clone)]
pub struct SampleStream {
    key: [u32; 8],
    stream: u64,
    /// Block counter of `buf[0]`.
    buf_block: u64,
    /// Next word of `buf` to hand out (`BUF`: the buffer is spent).
    index: usize,
    buf: [u32; BUF],
}

impl std::fmt::Debug for SampleStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SampleStream")
            .field("stream", &self.stream)
            .field("word_pos", &self.word_pos())
            .finish_non_exhaustive()
    }
}

impl PartialEq for SampleStream {
    /// Two streams are equal when they will produce the same words.
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key && self.stream == other.stream && self.word_pos() == other.word_pos()
    }
}

impl SampleStream {
    /// The stream `ChaCha8Rng::seed_from_u64(seed)` with `set_stream(stream)`.
    pub fn new(seed: u64, stream: u64) -> Self {
        Self::at(ChaCha8Rng::seed_from_u64(seed).get_seed(), stream, 0)
    }

    /// The stream of key `seed` and number `stream`, at word `word_pos`
    /// (as `ChaCha8Rng::from_seed`, `set_stream`, `set_word_pos`).
    pub fn at(seed: [u8; 32], stream: u64, word_pos: u128) -> Self {
        let mut key = [0u32; 8];
        for (k, b) in key.iter_mut().zip(seed.chunks_exact(4)) {
            *k = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        }
        // The counter is 64 bits, so positions wrap at 2^68 words like
        // rand_chacha's.
        let block = (word_pos / BLOCK_WORDS as u128) as u64;
        let mut s = SampleStream {
            key,
            stream,
            buf_block: block,
            index: BUF,
            buf: [0; BUF],
        };
        s.refill_at(block);
        s.index = (word_pos % BLOCK_WORDS as u128) as usize;
        s
    }

    /// The key (ChaCha8Rng's `get_seed`).
    pub fn seed(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (b, k) in out.chunks_exact_mut(4).zip(self.key) {
            b.copy_from_slice(&k.to_le_bytes());
        }
        out
    }

    /// The stream number.
    pub fn stream(&self) -> u64 {
        self.stream
    }

    /// Position of the next word, counted in 32-bit words from the start.
    pub fn word_pos(&self) -> u128 {
        self.buf_block as u128 * BLOCK_WORDS as u128 + self.index as u128
    }

    /// The next `out.len()` words of the stream.
    #[inline]
    pub fn fill_words(&mut self, mut out: &mut [u32]) {
        while !out.is_empty() {
            self.refill_if_spent();
            let n = out.len().min(BUF - self.index);
            out[..n].copy_from_slice(&self.buf[self.index..self.index + n]);
            self.index += n;
            out = &mut out[n..];
        }
    }

    /// The next word.
    #[inline]
    pub fn next_word(&mut self) -> u32 {
        self.refill_if_spent();
        let w = self.buf[self.index];
        self.index += 1;
        w
    }

    /// The next `m` words (m ≤ 256) in place in the buffer, consumed, when
    /// they are all there (after a refill if the buffer is spent); `None`
    /// (nothing consumed) when they cross the buffer's end. Lets the
    /// ziggurat map words without copying them out.
    #[inline]
    pub(crate) fn take_in_place(&mut self, m: usize) -> Option<&[u32]> {
        self.refill_if_spent();
        let start = self.index;
        if BUF - start < m {
            return None;
        }
        self.index += m;
        Some(&self.buf[start..start + m])
    }

    /// Refills the buffer with the next blocks once every word is consumed
    /// (the stream's position does not move).
    #[inline(always)]
    fn refill_if_spent(&mut self) {
        if self.index == BUF {
            self.refill_at(self.buf_block.wrapping_add(LANES as u64));
        }
    }

    /// Fills the buffer with blocks `block`, `block + 1`, … and rewinds it.
    fn refill_at(&mut self, block: u64) {
        let (key, stream, buf) = (&self.key, self.stream, &mut self.buf);
        #[cfg(target_arch = "x86_64")]
        if crate::elementwise::simd::has_avx512() {
            // SAFETY: AVX-512F was detected on this CPU (`has_avx512`).
            unsafe { avx512::chacha8_blocks(key, stream, block, buf) };
            self.buf_block = block;
            self.index = 0;
            return;
        }
        crate::elementwise::simd::dispatch(
            #[inline(always)]
            || chacha8_blocks(key, stream, block, buf),
        );
        self.buf_block = block;
        self.index = 0;
    }
}

impl RngCore for SampleStream {
    #[inline]
    fn next_u32(&mut self) -> u32 {
        self.next_word()
    }

    /// Two words, the first one low (as rand_chacha).
    #[inline]
    fn next_u64(&mut self) -> u64 {
        let lo = self.next_word() as u64;
        let hi = self.next_word() as u64;
        (hi << 32) | lo
    }

    /// Whole words in little-endian order; a partial last word uses up the
    /// whole word (as rand_chacha).
    fn fill_bytes(&mut self, mut dest: &mut [u8]) {
        // Straight from the buffer, a run of whole words at a time (this is
        // the path of `rng.fill(&mut [u32])`, the ziggurat's bulk draw).
        while dest.len() >= 4 {
            self.refill_if_spent();
            let n = (dest.len() / 4).min(BUF - self.index);
            let (head, rest) = dest.split_at_mut(4 * n);
            let words = &self.buf[self.index..self.index + n];
            #[cfg(target_endian = "little")]
            {
                // SAFETY: a little-endian u32 slice viewed as its 4n bytes
                // (u8 has no alignment or validity requirement) is exactly
                // the words' little-endian bytes: one copy, not n.
                let bytes =
                    unsafe { std::slice::from_raw_parts(words.as_ptr().cast::<u8>(), 4 * n) };
                head.copy_from_slice(bytes);
            }
            #[cfg(not(target_endian = "little"))]
            for (c, w) in head.chunks_exact_mut(4).zip(words) {
                c.copy_from_slice(&w.to_le_bytes());
            }
            self.index += n;
            dest = rest;
        }
        if !dest.is_empty() {
            let w = self.next_word().to_le_bytes();
            let k = dest.len();
            dest.copy_from_slice(&w[..k]);
        }
    }
}

/// Sixteen consecutive ChaCha8 blocks from block counter `block`, in stream
/// order. Lane l of every row of `x` is block `block + l`.
#[inline(always)]
fn chacha8_blocks(key: &[u32; 8], stream: u64, block: u64, out: &mut [u32; BUF]) {
    let mut x = [[0u32; LANES]; 16];
    for (w, &s) in SIGMA.iter().enumerate() {
        x[w] = [s; LANES];
    }
    for (w, &k) in key.iter().enumerate() {
        x[4 + w] = [k; LANES];
    }
    for l in 0..LANES {
        let b = block.wrapping_add(l as u64);
        x[12][l] = b as u32;
        x[13][l] = (b >> 32) as u32;
    }
    x[14] = [stream as u32; LANES];
    x[15] = [(stream >> 32) as u32; LANES];
    let start = x;
    for _ in 0..4 {
        quarter(&mut x, 0, 4, 8, 12);
        quarter(&mut x, 1, 5, 9, 13);
        quarter(&mut x, 2, 6, 10, 14);
        quarter(&mut x, 3, 7, 11, 15);
        quarter(&mut x, 0, 5, 10, 15);
        quarter(&mut x, 1, 6, 11, 12);
        quarter(&mut x, 2, 7, 8, 13);
        quarter(&mut x, 3, 4, 9, 14);
    }
    for (row, s) in x.iter_mut().zip(&start) {
        for l in 0..LANES {
            row[l] = row[l].wrapping_add(s[l]);
        }
    }
    transpose_into(&x, out);
}

/// The ChaCha quarter round on rows a, b, c, d, every lane at once.
#[inline(always)]
fn quarter(x: &mut [[u32; LANES]; 16], a: usize, b: usize, c: usize, d: usize) {
    let (mut va, mut vb, mut vc, mut vd) = (x[a], x[b], x[c], x[d]);
    for l in 0..LANES {
        va[l] = va[l].wrapping_add(vb[l]);
        vd[l] = (vd[l] ^ va[l]).rotate_left(16);
        vc[l] = vc[l].wrapping_add(vd[l]);
        vb[l] = (vb[l] ^ vc[l]).rotate_left(12);
        va[l] = va[l].wrapping_add(vb[l]);
        vd[l] = (vd[l] ^ va[l]).rotate_left(8);
        vc[l] = vc[l].wrapping_add(vd[l]);
        vb[l] = (vb[l] ^ vc[l]).rotate_left(7);
    }
    (x[a], x[b], x[c], x[d]) = (va, vb, vc, vd);
}

/// Word w of block l goes to `out[16 l + w]`.
#[inline(always)]
fn transpose_into(x: &[[u32; LANES]; 16], out: &mut [u32; BUF]) {
    for (l, block) in out.chunks_exact_mut(BLOCK_WORDS).enumerate() {
        for (w, o) in block.iter_mut().enumerate() {
            *o = x[w][l];
        }
    }
}

/// The same 16 blocks with AVX-512 intrinsics: the rotations are single
/// instructions, and the 16 × 16 transpose into stream order is 64 shuffles
/// (the portable version's transpose does not vectorise).
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{BUF, LANES, SIGMA};
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn chacha8_blocks(
        key: &[u32; 8],
        stream: u64,
        block: u64,
        out: &mut [u32; BUF],
    ) {
        let mut x = [_mm512_setzero_si512(); 16];
        for w in 0..4 {
            x[w] = _mm512_set1_epi32(SIGMA[w] as i32);
        }
        for w in 0..8 {
            x[4 + w] = _mm512_set1_epi32(key[w] as i32);
        }
        // 64-bit counters block + l: the low words, and a carry into the
        // high words where the low word wrapped.
        let base = _mm512_set1_epi32(block as u32 as i32);
        let lo = _mm512_add_epi32(
            base,
            _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
        );
        let wrapped = _mm512_cmplt_epu32_mask(lo, base);
        let hi = _mm512_set1_epi32((block >> 32) as u32 as i32);
        x[12] = lo;
        x[13] = _mm512_mask_add_epi32(hi, wrapped, hi, _mm512_set1_epi32(1));
        x[14] = _mm512_set1_epi32(stream as u32 as i32);
        x[15] = _mm512_set1_epi32((stream >> 32) as u32 as i32);
        let start = x;
        macro_rules! quarter {
            ($a:expr, $b:expr, $c:expr, $d:expr) => {
                x[$a] = _mm512_add_epi32(x[$a], x[$b]);
                x[$d] = _mm512_rol_epi32::<16>(_mm512_xor_si512(x[$d], x[$a]));
                x[$c] = _mm512_add_epi32(x[$c], x[$d]);
                x[$b] = _mm512_rol_epi32::<12>(_mm512_xor_si512(x[$b], x[$c]));
                x[$a] = _mm512_add_epi32(x[$a], x[$b]);
                x[$d] = _mm512_rol_epi32::<8>(_mm512_xor_si512(x[$d], x[$a]));
                x[$c] = _mm512_add_epi32(x[$c], x[$d]);
                x[$b] = _mm512_rol_epi32::<7>(_mm512_xor_si512(x[$b], x[$c]));
            };
        }
        for _ in 0..4 {
            quarter!(0, 4, 8, 12);
            quarter!(1, 5, 9, 13);
            quarter!(2, 6, 10, 14);
            quarter!(3, 7, 11, 15);
            quarter!(0, 5, 10, 15);
            quarter!(1, 6, 11, 12);
            quarter!(2, 7, 8, 13);
            quarter!(3, 4, 9, 14);
        }
        for w in 0..16 {
            x[w] = _mm512_add_epi32(x[w], start[w]);
        }
        // Row w holds word w of the 16 blocks. Interleave 32-bit then
        // 64-bit pairs: u[4g + m] holds, in its 128-bit lane k, words
        // 4g…4g+3 of block 4k + m.
        let mut t = [_mm512_setzero_si512(); 16];
        for i in 0..8 {
            t[2 * i] = _mm512_unpacklo_epi32(x[2 * i], x[2 * i + 1]);
            t[2 * i + 1] = _mm512_unpackhi_epi32(x[2 * i], x[2 * i + 1]);
        }
        let mut u = [_mm512_setzero_si512(); 16];
        for g in 0..4 {
            let b = 4 * g;
            u[b] = _mm512_unpacklo_epi64(t[b], t[b + 2]);
            u[b + 1] = _mm512_unpackhi_epi64(t[b], t[b + 2]);
            u[b + 2] = _mm512_unpacklo_epi64(t[b + 1], t[b + 3]);
            u[b + 3] = _mm512_unpackhi_epi64(t[b + 1], t[b + 3]);
        }
        // Then a 4 × 4 transpose of 128-bit lanes for each m.
        let o = out.as_mut_ptr() as *mut __m512i;
        debug_assert_eq!(LANES, 16);
        for m in 0..4 {
            let (a, b, c, d) = (u[m], u[4 + m], u[8 + m], u[12 + m]);
            let v0 = _mm512_shuffle_i32x4::<0x44>(a, b);
            let v1 = _mm512_shuffle_i32x4::<0xEE>(a, b);
            let v2 = _mm512_shuffle_i32x4::<0x44>(c, d);
            let v3 = _mm512_shuffle_i32x4::<0xEE>(c, d);
            // SAFETY: `out` holds 16 blocks of 64 bytes; block l is o.add(l).
            _mm512_storeu_si512(o.add(m), _mm512_shuffle_i32x4::<0x88>(v0, v2));
            _mm512_storeu_si512(o.add(4 + m), _mm512_shuffle_i32x4::<0xDD>(v0, v2));
            _mm512_storeu_si512(o.add(8 + m), _mm512_shuffle_i32x4::<0x88>(v1, v3));
            _mm512_storeu_si512(o.add(12 + m), _mm512_shuffle_i32x4::<0xDD>(v1, v3));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    fn reference(seed: u64, stream: u64) -> ChaCha8Rng {
        let mut r = ChaCha8Rng::seed_from_u64(seed);
        r.set_stream(stream);
        r
    }

    #[test]
    fn words_match_rand_chacha_across_buffers() {
        for (seed, stream) in [(0, 0), (7, 3), (20231012, 127), (u64::MAX, u64::MAX)] {
            let (mut a, mut b) = (SampleStream::new(seed, stream), reference(seed, stream));
            // Mixed draw sizes cross the 64-word and 256-word buffer edges
            // at every offset.
            for n in (1..200).chain([256, 257, 1000]) {
                let mut wa = vec![0u32; n];
                let mut wb = vec![0u32; n];
                a.fill_words(&mut wa);
                b.fill(&mut wb[..]);
                assert_eq!(wa, wb, "seed {seed} stream {stream} n {n}");
                assert_eq!(a.next_u64(), b.next_u64());
                assert_eq!(a.next_u32(), b.next_u32());
                assert_eq!(a.random::<f64>(), b.random::<f64>());
                assert_eq!(a.word_pos(), b.get_word_pos());
            }
            let mut ba = [0u8; 7];
            let mut bb = [0u8; 7];
            a.fill_bytes(&mut ba);
            b.fill_bytes(&mut bb);
            assert_eq!(ba, bb);
            assert_eq!(a.word_pos(), b.get_word_pos());
            assert_eq!(a.seed(), b.get_seed());
            assert_eq!(a.stream(), b.get_stream());
        }
    }

    #[test]
    fn seeking_matches_rand_chacha() {
        let mut b = reference(5, 9);
        for pos in [
            0u128,
            1,
            15,
            16,
            17,
            255,
            256,
            1001,
            1 << 40,
            (1u128 << 68) - 3,
        ] {
            b.set_word_pos(pos);
            let mut a = SampleStream::at(b.get_seed(), 9, pos);
            for _ in 0..600 {
                assert_eq!(a.next_u32(), b.next_u32(), "from position {pos}");
            }
            assert_eq!(a.word_pos(), b.get_word_pos());
        }
    }

    #[test]
    fn every_vector_path_gives_the_same_words() {
        let mut wa = vec![0u32; 3000];
        SampleStream::new(11, 2).fill_words(&mut wa);
        crate::elementwise::simd::force_baseline(true);
        let mut wb = vec![0u32; 3000];
        SampleStream::new(11, 2).fill_words(&mut wb);
        crate::elementwise::simd::force_baseline(false);
        assert_eq!(wa, wb);
    }
}
