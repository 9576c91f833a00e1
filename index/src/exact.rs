//! Brute-force search: the ground truth for recall checks and the right index for small catalogs.
//!
//! Single queries scan row chunks on all cores with an AVX2 dot product; batches are scored as a
//! blocked matrix product (`gemm`) of a query block against an item block that fit in L2, and each
//! score tile is folded into per-query top-k heaps with a one-compare threshold test.

use rayon::prelude::*;

use crate::error::Result;
use crate::metric::{self, normalize_queries, normalize_query, normalize_rows};
use crate::search::{Hit, RowFilter, TopK, VectorIndex};

/// Queries per gemm tile.
const QUERY_BLOCK: usize = 64;
/// Items per gemm tile: 1024 × 64 floats = 256 KiB, plus a 256 KiB score tile, fit in L2.
const ITEM_BLOCK: usize = 1024;
/// Rows per parallel task for single queries.
const SINGLE_CHUNK: usize = 16 * 1024;

/// All rows in one row-major matrix of unit vectors: owned (`Vec<f32>`, the default), or borrowed
/// (`&[f32]`) from an index version whose graph already holds them, so a loaded version keeps its
/// vectors once.
#[derive(Debug, Clone, Default)]
pub struct ExactIndex<R = Vec<f32>> {
    dim: usize,
    rows: R,
}

impl<'a> ExactIndex<&'a [f32]> {
    /// Exact search over rows held elsewhere (already unit vectors).
    pub(crate) fn borrowed(dim: usize, rows: &'a [f32]) -> Self {
        debug_assert!(dim > 0 && rows.len().is_multiple_of(dim));
        ExactIndex { dim, rows }
    }
}

impl ExactIndex {
    /// An empty index of dimension `dim`.
    pub fn new(dim: usize) -> Result<Self> {
        Self::from_rows(dim, &[], None)
    }

    /// Indexes row-major `vectors` (n × `dim`), normalising each row. `ids`, when given, only
    /// serve to name a bad row in the error.
    pub fn from_rows(dim: usize, vectors: &[f32], ids: Option<&[String]>) -> Result<Self> {
        let rows = normalize_rows(dim, vectors, ids)?;
        Ok(ExactIndex { dim, rows })
    }

    /// Wraps rows that are already unit vectors (e.g. read back from a verified index version).
    pub(crate) fn from_normalized(dim: usize, rows: Vec<f32>) -> Self {
        debug_assert!(dim > 0 && rows.len().is_multiple_of(dim));
        ExactIndex { dim, rows }
    }

    /// Appends rows (normalised) and returns the first new row number.
    pub fn push_rows(&mut self, vectors: &[f32], ids: Option<&[String]>) -> Result<u32> {
        let first = self.len() as u32;
        let new = normalize_rows(self.dim, vectors, ids)?;
        self.rows.extend_from_slice(&new);
        Ok(first)
    }
}

impl<R: AsRef<[f32]>> ExactIndex<R> {
    /// The normalised vector of `row`.
    pub fn row(&self, row: u32) -> &[f32] {
        let r = row as usize * self.dim;
        &self.rows.as_ref()[r..r + self.dim]
    }

    /// All normalised rows, row-major.
    pub fn rows(&self) -> &[f32] {
        self.rows.as_ref()
    }

    fn scan(&self, q: &[f32], start: usize, end: usize, k: usize, filter: Option<RowFilter<'_>>) -> TopK {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                // SAFETY: the CPU supports the features the function is compiled for.
                return unsafe { scan_avx2(self.rows(), self.dim, q, start, end, k, filter) };
            }
        }
        scan_rows(self.rows(), self.dim, q, start, end, k, filter)
    }

    /// Scores one block of normalised queries against rows `start..end`.
    fn scan_block(
        &self,
        queries: &[f32],
        start: usize,
        end: usize,
        k: usize,
        filter: Option<RowFilter<'_>>,
    ) -> Vec<TopK> {
        let d = self.dim;
        let nq = queries.len() / d;
        let mut tops: Vec<TopK> = (0..nq).map(|_| TopK::new(k)).collect();
        let mut tile = vec![0f32; nq * ITEM_BLOCK];
        let mut s = start;
        while s < end {
            let nb = ITEM_BLOCK.min(end - s);
            let items = &self.rows()[s * d..(s + nb) * d];
            // SAFETY: dst is nq × nb (row stride nb) inside `tile`; lhs is nq × d row-major inside
            // `queries`; rhs is the d × nb transpose of the row-major nb × d `items` (row stride 1,
            // column stride d). All pointers are valid for the extents given.
            unsafe {
                gemm::gemm(
                    nq,
                    nb,
                    d,
                    tile.as_mut_ptr(),
                    1,
                    nb as isize,
                    false,
                    queries.as_ptr(),
                    1,
                    d as isize,
                    items.as_ptr(),
                    d as isize,
                    1,
                    0.0,
                    1.0,
                    false,
                    false,
                    false,
                    gemm::Parallelism::None,
                );
            }
            for (qi, top) in tops.iter_mut().enumerate() {
                let scores = &tile[qi * nb..(qi + 1) * nb];
                for (j, &sc) in scores.iter().enumerate() {
                    offer(top, (s + j) as u32, sc, filter);
                }
            }
            s += nb;
        }
        tops
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn scan_avx2(
    rows: &[f32],
    dim: usize,
    q: &[f32],
    start: usize,
    end: usize,
    k: usize,
    filter: Option<RowFilter<'_>>,
) -> TopK {
    scan_rows(rows, dim, q, start, end, k, filter)
}

#[inline(always)]
fn scan_rows(
    rows: &[f32],
    dim: usize,
    q: &[f32],
    start: usize,
    end: usize,
    k: usize,
    filter: Option<RowFilter<'_>>,
) -> TopK {
    let mut top = TopK::new(k);
    for (i, v) in rows[start * dim..end * dim].chunks_exact(dim).enumerate() {
        offer(&mut top, (start + i) as u32, metric::dot_portable(q, v), filter);
    }
    top
}

/// Pushes `row` with score `sc` into `top` when it can enter and the filter keeps it (the threshold
/// test first: most rows stop there).
#[inline(always)]
fn offer(top: &mut TopK, row: u32, sc: f32, filter: Option<RowFilter<'_>>) {
    if sc >= top.threshold() && filter.is_none_or(|f| f(row)) {
        top.push(Hit {
            row,
            score: sc.clamp(-1.0, 1.0),
        });
    }
}

/// Splits `0..n` into `parts` contiguous ranges.
fn ranges(n: usize, parts: usize) -> Vec<(usize, usize)> {
    let parts = parts.clamp(1, n.max(1));
    (0..parts).map(|p| (n * p / parts, n * (p + 1) / parts)).collect()
}

impl<R: AsRef<[f32]> + Send + Sync> VectorIndex for ExactIndex<R> {
    fn dim(&self) -> usize {
        self.dim
    }

    fn len(&self) -> usize {
        self.rows().len() / self.dim
    }

    /// Exact search has no candidate list.
    fn default_ef(&self) -> usize {
        0
    }

    fn search_with_ef(
        &self,
        query: &[f32],
        k: usize,
        _ef: usize,
        filter: Option<RowFilter<'_>>,
    ) -> Result<Vec<Hit>> {
        let q = normalize_query(self.dim, query, 0)?;
        let n = self.len();
        let parts = n.div_ceil(SINGLE_CHUNK).min(rayon::current_num_threads() * 2);
        if parts <= 1 {
            return Ok(self.scan(&q, 0, n, k, filter).into_sorted());
        }
        let top = ranges(n, parts)
            .into_par_iter()
            .map(|(s, e)| self.scan(&q, s, e, k, filter))
            .reduce(
                || TopK::new(k),
                |mut a, b| {
                    a.merge(b);
                    a
                },
            );
        Ok(top.into_sorted())
    }

    fn search_batch_with_ef(
        &self,
        queries: &[f32],
        k: usize,
        _ef: usize,
        filter: Option<RowFilter<'_>>,
    ) -> Result<Vec<Vec<Hit>>> {
        let d = self.dim;
        let qs = normalize_queries(d, queries)?;
        let nq = qs.len() / d;
        let n = self.len();
        if nq == 0 {
            return Ok(Vec::new());
        }
        let qblocks = nq.div_ceil(QUERY_BLOCK);
        // Few query blocks: also split the rows so both cores have work.
        let threads = rayon::current_num_threads();
        let item_parts = (2 * threads).div_ceil(qblocks).min(n.div_ceil(ITEM_BLOCK).max(1));
        let item_ranges = ranges(n, item_parts);
        let tasks: Vec<(usize, (usize, usize))> = (0..qblocks)
            .flat_map(|b| item_ranges.iter().map(move |&r| (b, r)))
            .collect();
        let partial: Vec<(usize, Vec<TopK>)> = tasks
            .into_par_iter()
            .map(|(b, (s, e))| {
                let q0 = b * QUERY_BLOCK;
                let q1 = (q0 + QUERY_BLOCK).min(nq);
                (b, self.scan_block(&qs[q0 * d..q1 * d], s, e, k, filter))
            })
            .collect();
        let mut out: Vec<Option<TopK>> = (0..nq).map(|_| None).collect();
        for (b, tops) in partial {
            for (i, t) in tops.into_iter().enumerate() {
                let slot = &mut out[b * QUERY_BLOCK + i];
                match slot {
                    Some(acc) => acc.merge(t),
                    None => *slot = Some(t),
                }
            }
        }
        Ok(out
            .into_iter()
            .map(|t| t.map(TopK::into_sorted).unwrap_or_default())
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use crate::search::better;
    use proptest::prelude::*;

    fn naive(rows: &[f32], dim: usize, q: &[f32], k: usize, keep: impl Fn(u32) -> bool) -> Vec<Hit> {
        let mut qn = q.to_vec();
        let _ = metric::normalize(&mut qn);
        let mut all: Vec<Hit> = rows
            .chunks_exact(dim)
            .enumerate()
            .filter(|(r, _)| keep(*r as u32))
            .map(|(r, v)| Hit {
                row: r as u32,
                score: v.iter().zip(&qn).map(|(a, b)| a * b).sum(),
            })
            .collect();
        all.sort_by(better);
        all.truncate(k);
        all
    }

    fn same(a: &[Hit], b: &[Hit]) -> bool {
        // Scores from different summation orders differ in the last bits; ranks may swap only on near-ties.
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x.score - y.score).abs() < 1e-4)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn single_and_batched_match_naive(
            dim in 1usize..40,
            n in 0usize..3000,
            nq in 1usize..80,
            k in 0usize..15,
            seed in any::<u64>(),
        ) {
            use rand::{Rng, SeedableRng};
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let vecs: Vec<f32> = (0..n * dim).map(|_| rng.gen_range(-1.0f32..1.0) + 1e-3).collect();
            let queries: Vec<f32> = (0..nq * dim).map(|_| rng.gen_range(-1.0f32..1.0) + 1e-3).collect();
            let idx = ExactIndex::from_rows(dim, &vecs, None).unwrap();
            let keep = |r: u32| r % 3 != 1;
            let batch = idx.search_batch(&queries, k, Some(&keep)).unwrap();
            prop_assert_eq!(batch.len(), nq);
            for (i, q) in queries.chunks_exact(dim).enumerate() {
                let want = naive(idx.rows(), dim, q, k, keep);
                let single = idx.search(q, k, Some(&keep)).unwrap();
                prop_assert!(same(&single, &want), "single {:?} vs {:?}", single, want);
                prop_assert!(same(&batch[i], &want), "batch {:?} vs {:?}", batch[i], want);
                prop_assert!(single.iter().all(|h| keep(h.row)));
            }
        }
    }

    #[test]
    fn bad_queries_are_errors() {
        let idx = ExactIndex::from_rows(2, &[1.0, 0.0, 0.0, 1.0], None).unwrap();
        assert!(matches!(
            idx.search(&[1.0], 1, None),
            Err(Error::Dimension { .. })
        ));
        assert!(matches!(
            idx.search(&[f32::NAN, 1.0], 1, None),
            Err(Error::BadQuery { .. })
        ));
        assert!(matches!(
            idx.search_batch(&[1.0, 0.0, 1.0], 1, None),
            Err(Error::Dimension { .. })
        ));
        // A zero query is answered (all scores 0), not rejected.
        let hits = idx.search(&[0.0, 0.0], 2, None).unwrap();
        assert_eq!(hits.len(), 2);
        assert!(hits.iter().all(|h| h.score == 0.0));
    }

    #[test]
    fn bad_rows_are_named() {
        let ids = vec!["a".to_string(), "b".to_string()];
        let err = ExactIndex::from_rows(2, &[1.0, 0.0, 0.0, 0.0], Some(&ids)).unwrap_err();
        assert!(err.to_string().contains("row 1 (item \"b\")"), "{err}");
    }
}
