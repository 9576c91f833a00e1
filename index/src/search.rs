//! What every index answers: the trait, its hits (ranked by the shared top-k accumulator of
//! `twotower_data::topk`) and row filters.

pub use twotower_data::topk::Hit;
pub(crate) use twotower_data::topk::{better, TopK};

use crate::error::Result;

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
