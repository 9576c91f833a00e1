//! Deterministic shuffled mini-batches of example indices: the same (seed, epoch) gives the same
//! batches on every machine, so training runs are reproducible.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// A permutation of `0..n` cut into batches. Iterating yields owned batches;
/// [`next_batch`](Self::next_batch) lends slices without allocating.
#[derive(Debug, Clone)]
pub struct ShuffledBatches {
    perm: Vec<u32>,
    batch_size: usize,
    pos: usize,
    drop_last: bool,
}

impl ShuffledBatches {
    /// Shuffles `0..n` with a generator seeded from (`seed`, `epoch`); the last batch may be short.
    pub fn new(n: usize, batch_size: usize, seed: u64, epoch: u64) -> ShuffledBatches {
        assert!(batch_size > 0, "batch_size must be positive");
        let mut perm: Vec<u32> = (0..n as u32).collect();
        let mut rng =
            ChaCha8Rng::seed_from_u64(seed ^ epoch.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        perm.shuffle(&mut rng);
        ShuffledBatches {
            perm,
            batch_size,
            pos: 0,
            drop_last: false,
        }
    }

    /// Skips a final batch shorter than `batch_size` (useful when every batch must be full).
    pub fn drop_last(mut self, yes: bool) -> ShuffledBatches {
        self.drop_last = yes;
        self
    }

    /// The whole permutation.
    pub fn permutation(&self) -> &[u32] {
        &self.perm
    }

    /// Number of batches one pass yields.
    pub fn num_batches(&self) -> usize {
        if self.drop_last {
            self.perm.len() / self.batch_size
        } else {
            self.perm.len().div_ceil(self.batch_size)
        }
    }

    /// The next batch as a slice, or `None` at the end.
    pub fn next_batch(&mut self) -> Option<&[u32]> {
        let rest = self.perm.len() - self.pos;
        if rest == 0 || (self.drop_last && rest < self.batch_size) {
            return None;
        }
        let end = self.pos + rest.min(self.batch_size);
        let s = &self.perm[self.pos..end];
        self.pos = end;
        Some(s)
    }
}

impl Iterator for ShuffledBatches {
    type Item = Vec<u32>;
    fn next(&mut self) -> Option<Vec<u32>> {
        self.next_batch().map(|s| s.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn covers_all_once_and_is_deterministic() {
        let a: Vec<Vec<u32>> = ShuffledBatches::new(10, 3, 7, 0).collect();
        let b: Vec<Vec<u32>> = ShuffledBatches::new(10, 3, 7, 0).collect();
        let c: Vec<Vec<u32>> = ShuffledBatches::new(10, 3, 7, 1).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.len(), 4);
        assert_eq!(a[3].len(), 1);
        let mut all: Vec<u32> = a.concat();
        all.sort();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
        let d = ShuffledBatches::new(10, 3, 7, 0).drop_last(true);
        assert_eq!(d.num_batches(), 3);
        assert_eq!(d.count(), 3);
    }
}
