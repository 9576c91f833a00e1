//! `index check`: how good is the graph? Recall@k against the exact index for several `ef`, with
//! single-thread queries/s, and self-reachability (every live item must find itself, because
//! hnsw_rs has had insertion races that left points unreachable). Any [`Checked`] index can be
//! measured: a loaded [`IndexVersion`], or a Milvus collection read back beside an exact index.

use std::time::Instant;

use rayon::prelude::*;
use twotower_data::progress::Progress;

use crate::error::Result;
use crate::metric::normalize_queries;
use crate::search::{Hit, VectorIndex};
use crate::store::IndexVersion;

/// What to measure.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckParams {
    /// Recall@k's k.
    pub k: usize,
    /// Candidate list sizes to try (the version's default `ef_search` is always added).
    pub efs: Vec<usize>,
    /// Recall below this at the default `ef` produces a warning.
    pub min_recall: f64,
    /// How many live items to test for self-reachability (`None`: all of them).
    pub self_check_sample: Option<usize>,
}

impl Default for CheckParams {
    fn default() -> Self {
        CheckParams {
            k: 10,
            efs: vec![10, 20, 40, 64, 100, 200],
            min_recall: 0.95,
            self_check_sample: None,
        }
    }
}

/// One `ef` setting's result.
#[derive(Debug, Clone, PartialEq)]
pub struct EfRow {
    /// Candidate list size.
    pub ef: usize,
    /// Mean fraction of the exact top-k found (over queries with a non-empty exact answer).
    pub recall: f64,
    /// Queries per second on one thread.
    pub queries_per_sec: f64,
}

/// Self-reachability: each item searched with its own vector.
#[derive(Debug, Clone, PartialEq)]
pub struct SelfReach {
    /// Items tested.
    pub checked: usize,
    /// Items returned at rank 1 (or tied with rank 1's score: duplicates).
    pub top1: usize,
    /// Items returned anywhere in the top k.
    pub in_top_k: usize,
    /// Ids of items not found in their own top k (at most 20 listed).
    pub unreachable: Vec<String>,
}

/// Everything `index check` prints.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckReport {
    /// Recall@k's k.
    pub k: usize,
    /// Number of queries.
    pub queries: usize,
    /// The version's default `ef_search`.
    pub default_ef: usize,
    /// Exact index queries/s on one thread (the baseline the graph must beat).
    pub exact_queries_per_sec: f64,
    /// One row per `ef`, ascending.
    pub by_ef: Vec<EfRow>,
    /// Self-reachability at the default `ef`.
    pub self_reach: SelfReach,
    /// Human-readable problems (recall below threshold, unreachable items).
    pub warnings: Vec<String>,
}

/// An index `check` can measure: approximate search by `ef` against exact search over the same live
/// rows, with each row's vector and id.
pub trait Checked: Sync {
    /// Vector dimension.
    fn dim(&self) -> usize;
    /// The `ef` searches use by default.
    fn default_ef(&self) -> usize;
    /// Rows that searches can return.
    fn live_rows(&self) -> Vec<u32>;
    /// A row's (unit) vector.
    fn row_vector(&self, row: u32) -> &[f32];
    /// A row's item id.
    fn row_id(&self, row: u32) -> &str;
    /// Exact top-k over the live rows, for each row-major unit query.
    fn exact_batch(&self, qs: &[f32], k: usize) -> Result<Vec<Vec<Hit>>>;
    /// Exact top-k of one query.
    fn exact_one(&self, q: &[f32], k: usize) -> Result<Vec<Hit>>;
    /// Approximate top-k of one query with candidate list `ef`.
    fn approx(&self, q: &[f32], k: usize, ef: usize) -> Result<Vec<Hit>>;
}

impl Checked for IndexVersion {
    fn dim(&self) -> usize {
        VectorIndex::dim(self)
    }
    fn default_ef(&self) -> usize {
        self.hnsw().params().ef_search
    }
    fn live_rows(&self) -> Vec<u32> {
        (0..VectorIndex::len(self) as u32)
            .filter(|&r| self.is_live(r))
            .collect()
    }
    fn row_vector(&self, row: u32) -> &[f32] {
        self.vector(row)
    }
    fn row_id(&self, row: u32) -> &str {
        self.id(row)
    }
    fn exact_batch(&self, qs: &[f32], k: usize) -> Result<Vec<Vec<Hit>>> {
        self.with_live_filter(None, |f| self.exact().search_batch(qs, k, f))
    }
    fn exact_one(&self, q: &[f32], k: usize) -> Result<Vec<Hit>> {
        self.search_exact(q, k, None)
    }
    fn approx(&self, q: &[f32], k: usize, ef: usize) -> Result<Vec<Hit>> {
        self.search_with_ef(q, k, ef, None)
    }
}

/// Measures `version` with row-major `queries` (e.g. user-tower vectors, or item vectors).
pub fn check(
    version: &dyn Checked,
    queries: &[f32],
    params: &CheckParams,
    progress: &dyn Progress,
) -> Result<CheckReport> {
    let dim = version.dim();
    let qs = normalize_queries(dim, queries)?;
    let nq = qs.len() / dim;
    let k = params.k.max(1);
    let default_ef = version.default_ef();
    let mut efs = params.efs.clone();
    efs.push(default_ef);
    efs.sort_unstable();
    efs.dedup();

    progress.start("exact answers", Some(nq as u64));
    let truth = version.exact_batch(&qs, k)?;
    progress.finish();
    let sample = nq.min(200);
    // A one-thread pool so the exact figure is per thread like the graph's.
    let exact_qps = match rayon::ThreadPoolBuilder::new().num_threads(1).build() {
        Ok(pool) => pool.install(|| -> Result<f64> {
            let t = Instant::now();
            for q in qs.chunks_exact(dim).take(sample) {
                version.exact_one(q, k)?;
            }
            Ok(rate(sample, t))
        })?,
        Err(_) => 0.0,
    };

    progress.start("recall by ef", Some(efs.len() as u64));
    let mut by_ef = Vec::new();
    for &ef in &efs {
        let t = Instant::now();
        let mut found = 0usize;
        let mut possible = 0usize;
        for (q, want) in qs.chunks_exact(dim).zip(&truth) {
            let got = version.approx(q, k, ef)?;
            found += overlap(want, &got);
            possible += want.len();
        }
        by_ef.push(EfRow {
            ef,
            recall: if possible == 0 {
                1.0
            } else {
                found as f64 / possible as f64
            },
            queries_per_sec: rate(nq, t),
        });
        progress.inc(1);
    }
    progress.finish();

    let live = version.live_rows();
    let step = match params.self_check_sample {
        Some(s) if s > 0 && s < live.len() => live.len() / s,
        _ => 1,
    };
    let picked: Vec<u32> = live.iter().copied().step_by(step.max(1)).collect();
    progress.start("self-reachability", Some(picked.len() as u64));
    let results: Vec<(u32, bool, bool)> = picked
        .par_chunks(1024)
        .flat_map_iter(|chunk| {
            let r: Vec<(u32, bool, bool)> = chunk
                .iter()
                .map(|&row| {
                    let hits = version
                        .approx(version.row_vector(row), k, default_ef)
                        .unwrap_or_default();
                    let in_k = hits.iter().any(|h| h.row == row);
                    // A duplicate vector may legitimately win rank 1: it scores 1 like the item itself.
                    let top1 = hits
                        .first()
                        .is_some_and(|h| h.row == row || h.score >= 1.0 - 1e-6);
                    (row, top1, in_k)
                })
                .collect();
            progress.inc(chunk.len() as u64);
            r
        })
        .collect();
    progress.finish();
    let mut self_reach = SelfReach {
        checked: results.len(),
        top1: 0,
        in_top_k: 0,
        unreachable: Vec::new(),
    };
    for (row, top1, in_k) in results {
        self_reach.top1 += usize::from(top1);
        self_reach.in_top_k += usize::from(in_k);
        if !in_k && self_reach.unreachable.len() < 20 {
            self_reach.unreachable.push(version.row_id(row).to_string());
        }
    }

    let mut warnings = Vec::new();
    if let Some(row) = by_ef.iter().find(|r| r.ef == default_ef) {
        if row.recall < params.min_recall {
            warnings.push(format!(
                "recall@{k} is {:.3} at the default ef {default_ef}, below {:.2}: raise ef_search or rebuild with larger m/ef_construction",
                row.recall, params.min_recall
            ));
        }
    }
    if self_reach.in_top_k < self_reach.checked {
        warnings.push(format!(
            "{} of {} items do not find themselves in their own top {k} (e.g. {}): the graph has unreachable points; rebuild",
            self_reach.checked - self_reach.in_top_k,
            self_reach.checked,
            crate::error::list_ids(&self_reach.unreachable, 5)
        ));
    }
    Ok(CheckReport {
        k,
        queries: nq,
        default_ef,
        exact_queries_per_sec: exact_qps,
        by_ef,
        self_reach,
        warnings,
    })
}

fn overlap(want: &[Hit], got: &[Hit]) -> usize {
    want.iter().filter(|w| got.iter().any(|g| g.row == w.row)).count()
}

fn rate(n: usize, t: Instant) -> f64 {
    n as f64 / t.elapsed().as_secs_f64().max(1e-9)
}
