//! The step loop allocates nothing: after the chains and scratch are built
//! (and one warm-up step has let faer size its thread-local packing
//! buffers), neither an inference step nor a learning step touches the heap.
//! Counted by a global allocator that wraps the system's.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use faer::Mat;
use hee_core::learning::{
    learning_step, DispersionLearning, LayerSet, LearningScratch, LocalLearning, Parametrisation,
};
use hee_core::{
    APrime, Adaptation, BaseEnergy, CurvatureRange, Dynamics, HeeModel, InterneuronConfig,
    Langevin, LayerSpec, NeuralConfig, Nonlinearity,
};
use rand::SeedableRng;

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn model() -> HeeModel<f32> {
    let specs = [
        LayerSpec {
            size: 196,
            energy: BaseEnergy::gaussian(1.0),
        },
        LayerSpec {
            size: 96,
            energy: BaseEnergy::SmoothLaplace {
                sigma: 1.0,
                lambda: 0.5,
                delta: 0.3,
            },
        },
        LayerSpec {
            size: 32,
            energy: BaseEnergy::gaussian(1.0),
        },
    ];
    let mut m = HeeModel::<f32>::new(&specs, Nonlinearity::Tanh).unwrap();
    m.randomize_weights(&mut rand_chacha::ChaCha8Rng::seed_from_u64(1), 0.5);
    m
}

/// Allocations made by `n` calls of `f`, after `WARM_UP` calls.
///
/// Each worker thread grows its own scratch (faer's per-thread stacks) the
/// first time it runs a chunk of a given kind; which thread runs which
/// chunk depends on scheduling, so under load two warm-up calls could leave
/// one thread a first time in the measured calls (seen: 3 of 12 runs with
/// the machine busy, before and after the restructure of issue 16).
fn allocations(n: usize, mut f: impl FnMut()) -> usize {
    for _ in 0..WARM_UP {
        f();
    }
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    for _ in 0..n {
        f();
    }
    ALLOCATIONS.load(Ordering::SeqCst) - before
}

/// Calls before counting (see [`allocations`]).
const WARM_UP: usize = 30;

// One test function: the counter is process-wide, and tests of one binary
// run concurrently.
#[test]
fn steps_do_not_allocate() {
    // The counter sees allocations (so the zeros below mean something).
    let n = allocations(3, || {
        std::hint::black_box(vec![1u8; 100]);
    });
    assert!(n >= 3, "the counter saw {n} allocations of 3");

    // Two threads, so that the parallel paths (chunks, faer's split
    // products) are the ones counted.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    pool.install(|| {
        let mut m = model();
        let b = 96;
        let data = Mat::<f32>::from_fn(b, 196, |r, j| ((r * 5 + j) % 9) as f32 * 0.1 - 0.4);
        let mut cfg = NeuralConfig::new(0.01, 1.0);
        cfg.a_prime = APrime::Auto(InterneuronConfig {
            substeps: 8,
            ..InterneuronConfig::default()
        });
        let plain = Langevin::new(cfg).unwrap();
        let adapt = Adaptation::tuned(
            cfg,
            CurvatureRange {
                lambda_min: 1.0,
                lambda_max: 20.0,
            },
        )
        .unwrap();
        let mut chains = plain.init(&m, Some(data.as_ref()), None, b, 1).unwrap();
        let n = allocations(10, || {
            plain.step(&m, &mut chains).unwrap();
        });
        assert_eq!(n, 0, "plain inference step: {n} allocations in 10 steps");

        let mut chains_a = adapt.init(&m, Some(data.as_ref()), None, b, 2).unwrap();
        let n = allocations(10, || {
            adapt.step(&m, &mut chains_a).unwrap();
        });
        assert_eq!(n, 0, "adaptation step: {n} allocations in 10 steps");

        let mut scratch = LearningScratch::new(&m, b);
        let rates = LocalLearning {
            lr_weights: 0.01,
            lr_biases: 0.01,
            lr_energy: 0.0,
            ..LocalLearning::default()
        };
        let n = allocations(10, || {
            learning_step(&mut m, &plain, &mut chains, &mut scratch, &rates).unwrap();
        });
        assert_eq!(n, 0, "learning step: {n} allocations in 10 steps");

        // Learning every σ: one per pixel (mean coordinates), one per
        // latent layer (the sparse one from its interneurons' samples).
        m.set_unit_sigmas(0, &vec![1.0; 196]).unwrap();
        let mut scratch = LearningScratch::new(&m, b);
        let rates = LocalLearning {
            lr_weights: 0.01,
            lr_biases: 0.01,
            sigma: DispersionLearning {
                rate: 1e-4,
                floor: 0.1,
                layers: LayerSet::of(&[0, 1, 2]).unwrap(),
                ..DispersionLearning::default()
            },
            parametrisation: Parametrisation::Mean,
            ..LocalLearning::default()
        };
        let n = allocations(10, || {
            learning_step(&mut m, &plain, &mut chains, &mut scratch, &rates).unwrap();
        });
        assert_eq!(
            n, 0,
            "learning step with sigma: {n} allocations in 10 steps"
        );
    });
}
