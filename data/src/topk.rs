//! Exact top-k selection with deterministic ties (higher score first, then the lower row): the one
//! accumulator behind the index's exact search and the model's evaluation and validation rankings.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// One ranked row: its position (an index row, an item) and its score (higher is closer).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    /// The row: an index row (map it to an item id through the version's id table) or an item.
    pub row: u32,
    /// Its score: for the index, the cosine of the normalised query and row, in [-1, 1].
    pub score: f32,
}

/// Orders hits best first: higher score, then lower row.
pub fn better(a: &Hit, b: &Hit) -> Ordering {
    b.score.total_cmp(&a.score).then(a.row.cmp(&b.row))
}

/// Heap entry ordered so the worst hit is on top.
#[derive(Clone, Copy)]
struct Worst(Hit);

impl PartialEq for Worst {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Worst {}
impl PartialOrd for Worst {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Worst {
    fn cmp(&self, other: &Self) -> Ordering {
        // "Greater" = worse, so the max-heap keeps the worst hit at the top.
        better(&self.0, &other.0)
    }
}

/// Keeps the `k` best hits seen so far; `threshold` lets scanners skip most rows with one compare.
pub struct TopK {
    k: usize,
    heap: BinaryHeap<Worst>,
    threshold: f32,
}

impl TopK {
    /// An empty accumulator of the `k` best.
    pub fn new(k: usize) -> Self {
        TopK {
            k,
            heap: BinaryHeap::with_capacity(k + 1),
            threshold: f32::NEG_INFINITY,
        }
    }

    /// Lowest score that can still enter (a hit equal to it may still win on row order).
    #[inline(always)]
    pub fn threshold(&self) -> f32 {
        self.threshold
    }

    /// Offers one hit; it stays if it is among the `k` best so far.
    #[inline]
    pub fn push(&mut self, hit: Hit) {
        if self.k == 0 {
            return;
        }
        if self.heap.len() < self.k {
            self.heap.push(Worst(hit));
        } else if let Some(top) = self.heap.peek() {
            if better(&hit, &top.0) == Ordering::Less {
                self.heap.pop();
                self.heap.push(Worst(hit));
            } else {
                return;
            }
        }
        if self.heap.len() == self.k {
            if let Some(top) = self.heap.peek() {
                self.threshold = top.0.score;
            }
        }
    }

    /// Offers every hit of `other` (a partial scan of another part of the rows).
    pub fn merge(&mut self, other: TopK) {
        for w in other.heap {
            self.push(w.0);
        }
    }

    /// The kept hits, best first.
    pub fn into_sorted(self) -> Vec<Hit> {
        let mut v: Vec<Hit> = self.heap.into_iter().map(|w| w.0).collect();
        v.sort_by(better);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn topk_equals_full_sort(scores in proptest::collection::vec(-3i32..3, 0..200), k in 0usize..20) {
            let hits: Vec<Hit> = scores.iter().enumerate()
                .map(|(i, &s)| Hit { row: i as u32, score: s as f32 }).collect();
            let mut t = TopK::new(k);
            for h in &hits { t.push(*h); }
            let mut all = hits.clone();
            all.sort_by(better);
            all.truncate(k);
            prop_assert_eq!(t.into_sorted(), all);
        }
    }
}
