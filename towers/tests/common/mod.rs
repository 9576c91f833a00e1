//! What the towers integration tests share: a small split synthetic dataset.

use std::path::Path;

use twotower_data::{split, synth, Dataset, NoProgress, SplitOptions, SynthOptions};

/// A synthetic dataset of this size under `dir/ds`, split by the default (temporal) holdout.
pub fn split_synthetic(dir: &Path, users: u32, items: u32, interactions: u64, seed: u64) -> Dataset {
    let d = dir.join("ds");
    let o = SynthOptions {
        users,
        items,
        interactions,
        seed,
        ..SynthOptions::default()
    };
    synth(&d, &o, &NoProgress).unwrap();
    split(&d, &SplitOptions::default(), &NoProgress).unwrap();
    Dataset::load(&d).unwrap()
}
