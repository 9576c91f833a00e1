//! `index check`: how good is the graph? Recall@k against exact search for several `ef`, with
//! single-thread queries/s, and self-reachability (every live item must find itself, because
//! hnsw_rs has had insertion races that left points unreachable). Any backend's opened version is
//! measured the same way: its live rows are read back ([`ItemSearch::read_live`]) into an exact
//! index, and its own search ([`ItemSearch::search`]) is compared with that.

use std::time::Instant;

use rayon::prelude::*;
use twotower_data::progress::Progress;

use std::collections::HashMap;

use crate::backend::{FoundKey, ItemFilter, ItemSearch, SearchSpec};
use crate::error::Result;
use crate::exact::ExactIndex;
use crate::metric::normalize_queries;
use crate::search::{Hit, VectorIndex};

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
    /// Whether items that do not find themselves are damage (a warning, and `index check` fails) or
    /// a fact of a graph twotower does not build (a note that names them): see
    /// [`crate::VersionStore::builds_graph`].
    pub unreachable_is_damage: bool,
}

impl Default for CheckParams {
    fn default() -> Self {
        CheckParams {
            k: 10,
            efs: vec![10, 20, 40, 64, 100, 200],
            min_recall: 0.95,
            self_check_sample: None,
            unreachable_is_damage: true,
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
    /// What is worth saying but is not a problem of this index (unreachable items of a graph the
    /// backend builds itself).
    pub notes: Vec<String>,
}

/// What a self-reachability measurement depends on: k, ef and the sample size.
type SelfReachKey = (usize, usize, Option<usize>);

/// A version's live rows read back beside an exact index of them (its hits are mapped onto those
/// rows): read once, measured with several query sets.
pub struct CheckTarget<'a> {
    version: &'a dyn ItemSearch,
    exact: ExactIndex,
    ids: Vec<String>,
    /// Item id → row of `exact` (for backends that name hits by id).
    by_id: HashMap<String, u32>,
    /// Version row → row of `exact` (for backends that number rows), `u32::MAX` for dead rows.
    by_row: Vec<u32>,
    /// The last self-reachability measured, with its (k, ef, sample).
    self_reach: std::sync::Mutex<Option<(SelfReachKey, SelfReach)>>,
}

impl<'a> CheckTarget<'a> {
    /// Reads `version`'s live rows.
    pub fn new(version: &'a dyn ItemSearch, progress: &dyn Progress) -> Result<CheckTarget<'a>> {
        progress.start("reading the live rows", Some(version.facts().items as u64));
        let live = version.read_live(progress)?;
        progress.finish();
        let dim = version.dim();
        if live.vectors.len() != live.ids.len() * dim {
            return Err(crate::Error::Dimension {
                what: format!("the live rows of version {}", version.version()),
                expected: live.ids.len() * dim,
                got: live.vectors.len(),
            });
        }
        // The rows are the version's stored unit vectors: searched as they are, bit for bit.
        let exact = ExactIndex::from_normalized(dim, live.vectors);
        // A backend that numbers its rows gives its live rows in row order: the n-th live row is
        // row n here, and no id needs hashing. One that names items by id is mapped by id.
        let (mut by_id, mut by_row) = (HashMap::new(), Vec::new());
        match version.row_ids() {
            Some(ids) => {
                let mut next = 0u32;
                by_row.reserve(ids.len());
                for (r, id) in ids.iter().enumerate() {
                    if !version.is_live_row(r as u32) {
                        by_row.push(u32::MAX);
                        continue;
                    }
                    if live.ids.get(next as usize) != Some(id) {
                        return Err(crate::Error::InvalidParam {
                            name: "read_live",
                            problem: format!(
                                "live row {r} ({id}) of version {} was not read back in row order",
                                version.version()
                            ),
                        });
                    }
                    by_row.push(next);
                    next += 1;
                }
            }
            None => {
                by_id = live
                    .ids
                    .iter()
                    .enumerate()
                    .map(|(r, id)| (id.clone(), r as u32))
                    .collect();
            }
        }
        Ok(CheckTarget {
            version,
            exact,
            ids: live.ids,
            by_id,
            by_row,
            self_reach: std::sync::Mutex::new(None),
        })
    }

    /// Self-reachability (each sampled item searched with its own vector at `ef`), measured once per
    /// target and setting: it does not depend on the query set, and at 1 M items it is 1 M searches.
    fn self_reach(
        &self,
        k: usize,
        default_ef: usize,
        sample: Option<usize>,
        progress: &dyn Progress,
    ) -> SelfReach {
        let key = (k, default_ef, sample);
        let mut cache = self.self_reach.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, r)) = cache.as_ref() {
            if *at == key {
                return r.clone();
            }
        }
        let measured = self;
        let live: Vec<u32> = (0..measured.ids.len() as u32).collect();
        let step = match sample {
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
                        let hits = measured
                            .approx(measured.exact.row(row), k, default_ef)
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
                self_reach.unreachable.push(measured.ids[row as usize].clone());
            }
        }

        *cache = Some((key, self_reach.clone()));
        self_reach
    }

    /// The version's approximate top-k of one query, on the rows of `exact` (a hit the read-back did
    /// not see, written since, cannot be scored against the truth: left out).
    fn approx(&self, q: &[f32], k: usize, ef: usize) -> Result<Vec<Hit>> {
        let found = self
            .version
            .search(q, SearchSpec::with_ef(k, ef), &ItemFilter::NONE)?;
        Ok(found
            .into_iter()
            .filter_map(|f| {
                let row = match &f.key {
                    FoundKey::Row(r) => self.by_row.get(*r as usize).copied()?,
                    FoundKey::Id(id) => self.by_id.get(id).copied()?,
                };
                (row != u32::MAX).then_some(Hit { row, score: f.score })
            })
            .collect())
    }
}

/// Measures `version` with row-major `queries` (e.g. user-tower vectors, or item vectors).
pub fn check(
    version: &dyn ItemSearch,
    queries: &[f32],
    params: &CheckParams,
    progress: &dyn Progress,
) -> Result<CheckReport> {
    CheckTarget::new(version, progress)?.check(queries, params, progress)
}

impl CheckTarget<'_> {
    /// Measures the version with row-major `queries` (see [`check`]).
    pub fn check(
        &self,
        queries: &[f32],
        params: &CheckParams,
        progress: &dyn Progress,
    ) -> Result<CheckReport> {
        let measured = self;
        let version = self.version;
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
        let truth = measured.exact.search_batch(&qs, k, None)?;
        progress.finish();
        let sample = nq.min(200);
        // A one-thread pool so the exact figure is per thread like the graph's.
        let exact_qps = match rayon::ThreadPoolBuilder::new().num_threads(1).build() {
            Ok(pool) => pool.install(|| -> Result<f64> {
                let t = Instant::now();
                for q in qs.chunks_exact(dim).take(sample) {
                    measured.exact.search(q, k, None)?;
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
                let got = measured.approx(q, k, ef)?;
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

        let self_reach = measured.self_reach(k, default_ef, params.self_check_sample, progress);

        let mut warnings = Vec::new();
        if let Some(row) = by_ef.iter().find(|r| r.ef == default_ef) {
            if row.recall < params.min_recall {
                warnings.push(format!(
                "recall@{k} is {:.3} at the default ef {default_ef}, below {:.2}: raise ef_search or rebuild with larger m/ef_construction",
                row.recall, params.min_recall
            ));
            }
        }
        let mut notes = Vec::new();
        if self_reach.in_top_k < self_reach.checked {
            let missed = self_reach.checked - self_reach.in_top_k;
            let checked = self_reach.checked;
            let ids = crate::error::list_ids(&self_reach.unreachable, 5);
            if params.unreachable_is_damage {
                warnings.push(format!(
                    "{missed} of {checked} items do not find themselves in their own top {k} (e.g. {ids}): \
                     the graph has unreachable points; rebuild"
                ));
            } else {
                notes.push(format!(
                    "{missed} of {checked} items do not find themselves in their own top {k} (e.g. {ids}): \
                     the backend builds this graph, so twotower cannot repair it"
                ));
            }
        }
        Ok(CheckReport {
            k,
            queries: nq,
            default_ef,
            exact_queries_per_sec: exact_qps,
            by_ef,
            self_reach,
            warnings,
            notes,
        })
    }
}

fn overlap(want: &[Hit], got: &[Hit]) -> usize {
    want.iter().filter(|w| got.iter().any(|g| g.row == w.row)).count()
}

fn rate(n: usize, t: Instant) -> f64 {
    n as f64 / t.elapsed().as_secs_f64().max(1e-9)
}
