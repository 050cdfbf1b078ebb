//! Runtime dispatch of element-wise kernels to the widest vector extension
//! of the machine.
//!
//! The crate is compiled for the baseline target (SSE2 on x86-64), so its
//! loops vectorise only 4 lanes wide and table lookups (the ziggurat's) not
//! at all. `dispatch` runs a closure inside a function compiled with
//! AVX-512 or AVX2 enabled, chosen once per call by the standard library's
//! cached CPU detection; the closure's body is inlined there and vectorised
//! for that extension.
//!
//! Results do not depend on the path taken: the kernels use only IEEE
//! operations that every extension rounds identically (add, multiply,
//! divide, square root, table loads), and Rust never contracts a·b + c into
//! a fused multiply-add on its own. So a run is bit-identical whether it
//! ran with AVX-512, AVX2 or SSE2 (tested by forcing the baseline path,
//! [`force_baseline`]).

use std::sync::atomic::{AtomicBool, Ordering};

static BASELINE: AtomicBool = AtomicBool::new(false);

/// Makes every later `dispatch` take the baseline path (tests compare the
/// paths bit for bit; also a way to rule the vector paths out when
/// debugging). Process-wide.
pub fn force_baseline(on: bool) {
    BASELINE.store(on, Ordering::Relaxed);
}

/// The vector extension `dispatch` uses on this machine.
pub fn extension() -> &'static str {
    if BASELINE.load(Ordering::Relaxed) {
        return "baseline";
    }
    static DETECTED: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();
    DETECTED.get_or_init(detect)
}

/// Whether [`dispatch`] takes the AVX-512 path: for kernels written with
/// AVX-512 intrinsics, which check this (two relaxed loads) before every
/// block rather than comparing names.
#[inline]
pub(crate) fn has_avx512() -> bool {
    static DETECTED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    !BASELINE.load(Ordering::Relaxed) && *DETECTED.get_or_init(|| detect() == "avx512")
}

fn detect() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512dq")
            && std::arch::is_x86_feature_detected!("avx512vl")
        {
            return "avx512";
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            return "avx2";
        }
    }
    "baseline"
}

/// Runs `f` compiled for the widest available vector extension.
#[inline(always)]
pub(crate) fn dispatch<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        match extension() {
            // SAFETY: the features these functions enable were detected
            // on this CPU by `extension`.
            "avx512" => return unsafe { avx512(f) },
            "avx2" => return unsafe { avx2(f) },
            _ => {}
        }
    }
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,avx,sse4.2,popcnt")]
unsafe fn avx512<R>(f: impl FnOnce() -> R) -> R {
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,avx,sse4.2,popcnt")]
unsafe fn avx2<R>(f: impl FnOnce() -> R) -> R {
    f()
}
