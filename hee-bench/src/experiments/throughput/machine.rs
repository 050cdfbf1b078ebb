//! What the figures depend on: the rates of the random numbers the step
//! draws, and the machine itself.

use super::*;

/// Rates of the random numbers the step draws (one thread): standard
/// normals in bulk (the step's stream path and the generic one, same
/// draws) and one at a time from the step's stream type, and the
/// ChaCha8 keystream itself from it and from rand_chacha (same words).
pub fn normal_rates(secs: f64) -> Vec<NormalRate> {
    let z = hee_core::rng::ziggurat::Ziggurat::get();
    let mut buf = vec![0f32; 4096];
    let mut words = vec![0u32; 4096];
    let mut sink = 0u32;
    // Calls `f` (which produces 4096 values) for about `secs`; values/s.
    let mut rate = |f: &mut dyn FnMut(&mut [f32], &mut [u32])| {
        let t0 = Instant::now();
        let mut n = 0usize;
        while t0.elapsed().as_secs_f64() < secs {
            for _ in 0..64 {
                f(&mut buf, &mut words);
                sink ^= buf[17].to_bits() ^ words[17];
                n += 4096;
            }
        }
        n as f64 / t0.elapsed().as_secs_f64()
    };
    let mut stream = SampleStream::new(1, 0);
    let mut chacha = ChaCha8Rng::seed_from_u64(1);
    let out = vec![
        NormalRate {
            method: "normals: stream fill (Ziggurat::fill_stream, the step's path), SampleStream",
            per_second: rate(&mut |b, _| z.fill_stream(&mut stream, b)),
        },
        NormalRate {
            method: "normals: generic bulk fill (Ziggurat::fill, any Rng), SampleStream",
            per_second: rate(&mut |b, _| z.fill(&mut stream, b)),
        },
        NormalRate {
            method: "normals: one at a time (Ziggurat::sample), SampleStream",
            per_second: rate(&mut |b, _| {
                for o in b.iter_mut() {
                    *o = z.sample(&mut stream);
                }
            }),
        },
        NormalRate {
            method: "ChaCha8 words: SampleStream::fill_words (16 blocks per pass)",
            per_second: rate(&mut |_, w| stream.fill_words(w)),
        },
        NormalRate {
            method: "ChaCha8 words: rand_chacha ChaCha8Rng (same stream)",
            per_second: rate(&mut |_, w| chacha.fill(w)),
        },
    ];
    std::hint::black_box(sink);
    out
}

/// A description of this machine: CPU model, vector extensions, cores.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    #[allow(unused_mut)]
    let mut simd: Vec<&str> = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        for (name, on) in [
            ("avx2", std::arch::is_x86_feature_detected!("avx2")),
            ("fma", std::arch::is_x86_feature_detected!("fma")),
            ("avx512f", std::arch::is_x86_feature_detected!("avx512f")),
        ] {
            if on {
                simd.push(name);
            }
        }
    }
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!(
        "cpu: {cpu}\nvector extensions: {}\nlogical cores: {cores}\n",
        if simd.is_empty() {
            "baseline".to_string()
        } else {
            simd.join(", ")
        }
    )
}
