//! The f32 ziggurat draws standard normals: Kolmogorov–Smirnov against the
//! normal CDF, moments, and the tail mass beyond the ziggurat's base.

use hee_core::rng::ziggurat::Ziggurat;
use rand::SeedableRng;

/// Φ(x) via erfc (W. J. Cody's rational approximations are overkill here:
/// the complementary error function of Numerical Recipes, |ε| < 1.2e-7, is
/// far below the KS resolution 1/√n ≈ 3e-4).
fn phi(x: f64) -> f64 {
    let z = x.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t
        * (-z * z - 1.26551223
            + t * (1.00002368
                + t * (0.37409196
                    + t * (0.09678418
                        + t * (-0.18628806
                            + t * (0.27886807
                                + t * (-1.13520398
                                    + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))))
            .exp();
    if x >= 0.0 {
        1.0 - 0.5 * r
    } else {
        0.5 * r
    }
}

/// The checks of a sample of standard normal draws: mean, variance and
/// kurtosis (5 standard errors), the tail mass beyond the ziggurat's base
/// layer (5 binomial standard errors) and Kolmogorov–Smirnov at α = 1e-4.
fn check_standard_normal(mut xs: Vec<f64>) {
    let n = xs.len();
    let mean = xs.iter().sum::<f64>() / n as f64;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
    let kurt = xs.iter().map(|x| (x - mean).powi(4)).sum::<f64>() / n as f64 / (var * var);
    // Standard errors at n = 1e6: mean 1e-3, variance √2·1e-3, kurtosis
    // √24·1e-3; 5 of each.
    assert_eq!(n, 1_000_000);
    assert!(mean.abs() < 5e-3, "mean {mean}");
    assert!((var - 1.0).abs() < 7.1e-3, "var {var}");
    assert!((kurt - 3.0).abs() < 2.5e-2, "kurtosis {kurt}");
    // Tail beyond the base layer R = 3.6542 of the 256-layer ziggurat
    // (drawn by the separate tail algorithm): probability 2(1 − Φ(R)) = 2.58e-4.
    const R: f64 = 3.654_152_885_361_009;
    let tail = xs.iter().filter(|x| x.abs() > R).count() as f64 / n as f64;
    let p = 2.0 * (1.0 - phi(R));
    assert!(
        (tail - p).abs() < 5.0 * (p / n as f64).sqrt(),
        "tail {tail} vs {p}"
    );
    // Kolmogorov–Smirnov: critical value at α = 1e-4 is ≈ 2.15/√n.
    xs.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let mut d: f64 = 0.0;
    for (i, &x) in xs.iter().enumerate() {
        let f = phi(x);
        d = d
            .max((f - i as f64 / n as f64).abs())
            .max(((i + 1) as f64 / n as f64 - f).abs());
    }
    assert!(d < 2.15 / (n as f64).sqrt(), "KS distance {d}");
}

#[test]
fn ziggurat_is_standard_normal() {
    let z = Ziggurat::get();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(99);
    check_standard_normal((0..1_000_000).map(|_| z.sample(&mut rng) as f64).collect());
}

/// The bulk path (a branch-free pass per block of 64 words, then the
/// misses finished in order): same distribution, in buffers of uneven
/// lengths so that partial blocks are exercised; a function of the stream.
#[test]
fn bulk_ziggurat_is_standard_normal() {
    let z = Ziggurat::get();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let mut xs = Vec::with_capacity(1_000_000);
    let mut buf = vec![0f32; 1100];
    let mut len = 1;
    while xs.len() < 1_000_000 {
        let m = len.min(1_000_000 - xs.len());
        z.fill(&mut rng, &mut buf[..m]);
        xs.extend(buf[..m].iter().map(|&v| v as f64));
        len = len % 997 + 37;
    }
    check_standard_normal(xs);
    let draw = |seed| {
        let mut r = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut b = vec![0f32; 300];
        z.fill(&mut r, &mut b);
        b
    };
    assert_eq!(draw(3), draw(3));
    assert_ne!(draw(3), draw(4));
}

/// The stream path of the neural dynamics (words mapped in place in the
/// stream's buffer, misses marked in a bit mask) gives exactly the draws of
/// the generic bulk path on the same stream and leaves the stream at the
/// same position: for lengths of 1 to 300 (partial blocks, several blocks)
/// and stream offsets that put blocks across the buffer's end.
#[test]
fn stream_fill_matches_generic_fill() {
    use hee_core::rng::chacha::SampleStream;
    let z = Ziggurat::get();
    let mut extra_words = 0u128;
    for offset in [0u128, 1, 5, 63, 64, 65, 200, 255, 256, 1000] {
        let mut a = SampleStream::at([9; 32], 3, offset);
        let mut b = a.clone();
        let mut len = 1;
        let mut drawn = 0u128;
        let (mut xa, mut xb) = (vec![0f32; 300], vec![0f32; 300]);
        for _ in 0..400 {
            z.fill_stream(&mut a, &mut xa[..len]);
            z.fill(&mut b, &mut xb[..len]);
            assert_eq!(
                xa[..len].iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                xb[..len].iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                "offset {offset}, length {len}"
            );
            assert_eq!(a.word_pos(), b.word_pos());
            drawn += len as u128;
            len = len % 293 + 7;
        }
        // Words beyond one per draw: the misses' own draws were compared too.
        extra_words += a.word_pos() - offset - drawn;
    }
    assert!(extra_words > 100, "{extra_words}");
}
