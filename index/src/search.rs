//! What every index answers: the trait, its hits, row filters and the top-k accumulator.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use crate::error::Result;

/// One search result: a row of the index and its cosine score (higher is closer).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    /// Row number in the index (map it to an item id through the version's id table).
    pub row: u32,
    /// Cosine similarity of the normalised query and row, in [-1, 1].
    pub score: f32,
}

/// A predicate over rows: `true` keeps the row. `Sync` because exact and batched searches call
/// it from several threads.
pub type RowFilter<'a> = &'a (dyn Fn(u32) -> bool + Sync);

/// The interface the shell, batch jobs and the server use, whichever index they hold.
///
/// Queries need not be normalised (they are scaled to unit length first, so scores are cosines),
/// but must have the index dimension and finite components: anything else is an error, not a panic.
/// Hits come best first; ties are broken by the lower row so results are deterministic.
pub trait VectorIndex: Send + Sync {
    /// Vector dimension.
    fn dim(&self) -> usize;
    /// Number of rows (including rows a filter may hide).
    fn len(&self) -> usize;
    /// `true` when the index holds no rows.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The `k` best rows for one query among those the filter keeps.
    fn search(&self, query: &[f32], k: usize, filter: Option<RowFilter<'_>>) -> Result<Vec<Hit>>;
    /// The `k` best rows for each of `queries.len() / dim` row-major queries (using all cores).
    fn search_batch(&self, queries: &[f32], k: usize, filter: Option<RowFilter<'_>>)
        -> Result<Vec<Vec<Hit>>>;
}

/// Orders hits best first: higher score, then lower row.
pub(crate) fn better(a: &Hit, b: &Hit) -> Ordering {
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
pub(crate) struct TopK {
    k: usize,
    heap: BinaryHeap<Worst>,
    threshold: f32,
}

impl TopK {
    pub(crate) fn new(k: usize) -> Self {
        TopK {
            k,
            heap: BinaryHeap::with_capacity(k + 1),
            threshold: f32::NEG_INFINITY,
        }
    }

    /// Lowest score that can still enter (a hit equal to it may still win on row order).
    #[inline(always)]
    pub(crate) fn threshold(&self) -> f32 {
        self.threshold
    }

    #[inline]
    pub(crate) fn push(&mut self, hit: Hit) {
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

    pub(crate) fn merge(&mut self, other: TopK) {
        for w in other.heap {
            self.push(w.0);
        }
    }

    pub(crate) fn into_sorted(self) -> Vec<Hit> {
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
