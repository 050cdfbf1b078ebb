//! Each purpose of a run draws from its own key: for the same run seed, no
//! two purposes' generators share a word (issue 16: the chains' stream 0
//! had reused the words that drew the initial weights, and chain e the
//! words of epoch e's shuffle).

use std::collections::HashMap;

use hee_core::{Purpose, RowStreams};
use rand::RngCore;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The first `n` 64-bit words of a generator.
fn words(r: &mut impl RngCore, n: usize) -> Vec<u64> {
    (0..n).map(|_| r.next_u64()).collect()
}

#[test]
fn no_two_purposes_share_a_word() {
    const N: usize = 2048;
    for seed in [0u64, 1, 20231012, u64::MAX] {
        // Every generator as the run uses it, labelled by purpose.
        let mut gens: Vec<(&str, Vec<u64>)> = Vec::new();
        for p in [Purpose::Weights, Purpose::Dequantisation, Purpose::Data] {
            gens.push((format!("{p:?}").leak(), words(&mut p.rng(seed), N)));
        }
        for epoch in 0..4 {
            // As `Dataset::minibatches` draws epoch e's order.
            let mut r = ChaCha8Rng::seed_from_u64(Purpose::Shuffles.seed(seed));
            r.set_stream(epoch);
            gens.push(("Shuffles", words(&mut r, N)));
        }
        let mut chains = RowStreams::new(seed, 8);
        for s in chains.as_mut_slice() {
            gens.push(("Chains", words(s, N)));
        }
        for epoch in 0..4 {
            let mut eval = RowStreams::new(Purpose::Evaluation.seed(seed) ^ epoch, 8);
            for s in eval.as_mut_slice() {
                gens.push(("Evaluation", words(s, N)));
            }
        }
        let mut free = RowStreams::new(Purpose::FreeChains.seed(seed), 8);
        for s in free.as_mut_slice() {
            gens.push(("FreeChains", words(s, N)));
        }
        // The run seed's raw stream 0, which used to draw the weights.
        gens.push(("raw", words(&mut ChaCha8Rng::seed_from_u64(seed), N)));
        let mut owner: HashMap<u64, &str> = HashMap::new();
        for (purpose, ws) in &gens {
            for w in ws {
                if let Some(other) = owner.insert(*w, purpose) {
                    // Two random 64-bit words collide among ~2·10⁵ with
                    // probability ~1e-9: any repeat is shared keystream.
                    assert_eq!(
                        other, *purpose,
                        "seed {seed}: {purpose} reads a word of {other}"
                    );
                }
            }
        }
        // And within a purpose, every generator is its own stream.
        assert_eq!(owner.len(), gens.len() * N, "seed {seed}: a repeated word");
    }
}

#[test]
fn purpose_seeds_are_distinct_and_fixed() {
    let seeds: Vec<u64> = Purpose::ALL.iter().map(|p| p.seed(7)).collect();
    for i in 0..seeds.len() {
        for j in 0..i {
            assert_ne!(seeds[i], seeds[j]);
        }
    }
    // A function of the run seed alone (documented derivation).
    let mut r = ChaCha8Rng::seed_from_u64(7);
    r.set_stream(0x6b65_7973_0000_0000 + 4);
    assert_eq!(Purpose::Chains.seed(7), r.next_u64());
}
