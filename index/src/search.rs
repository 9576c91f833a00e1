//! What every index answers: the trait, its hits (ranked by the shared top-k accumulator of
//! `twotower_data::topk`) and row filters.

pub use twotower_data::topk::Hit;
pub(crate) use twotower_data::topk::{better, TopK};

use crate::error::Result;

/// A predicate over rows: `true` keeps the row. `Sync` because exact and batched searches call
/// it from several threads.
pub type RowFilter<'a> = &'a (dyn Fn(u32) -> bool + Sync);

/// Search over rows held in this process: the engine under the directory backend's
/// [`crate::ItemSearch`] (graph, exact index, a loaded version), and what benchmarks and tests drive.
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
    /// The candidate list size [`VectorIndex::search`] uses (exact search has none and ignores it).
    fn default_ef(&self) -> usize;
    /// The `k` best rows among those the filter keeps, for each of `queries.len() / dim` row-major
    /// queries (in parallel), with candidate list `ef` (raised to `k`).
    fn search_batch_with_ef(
        &self,
        queries: &[f32],
        k: usize,
        ef: usize,
        filter: Option<RowFilter<'_>>,
    ) -> Result<Vec<Vec<Hit>>>;
    /// One query of [`VectorIndex::search_batch_with_ef`].
    fn search_with_ef(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        filter: Option<RowFilter<'_>>,
    ) -> Result<Vec<Hit>> {
        Ok(self
            .search_batch_with_ef(query, k, ef, filter)?
            .pop()
            .unwrap_or_default())
    }
    /// The `k` best rows for one query at the default `ef`.
    fn search(&self, query: &[f32], k: usize, filter: Option<RowFilter<'_>>) -> Result<Vec<Hit>> {
        self.search_with_ef(query, k, self.default_ef(), filter)
    }
    /// The `k` best rows for each query at the default `ef`.
    fn search_batch(
        &self,
        queries: &[f32],
        k: usize,
        filter: Option<RowFilter<'_>>,
    ) -> Result<Vec<Vec<Hit>>> {
        self.search_batch_with_ef(queries, k, self.default_ef(), filter)
    }
}
