//! Retrieval metrics and the exact blocked scorer behind `eval` and per-epoch validation.
//!
//! Recall@K = |top-K ∩ relevant| / |relevant|; NDCG@K with binary gains, ideal DCG over
//! min(K, |relevant|) hits; HitRate@K = 1 when any relevant item is in the top K. Averaged over users.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::Result;

/// Recall@k of one ranking.
pub fn recall_at_k(ranked: &[u32], relevant: &[u32], k: usize) -> f64 {
    if relevant.is_empty() {
        return 0.0;
    }
    hits(ranked, relevant, k) as f64 / relevant.len() as f64
}

/// NDCG@k of one ranking (binary relevance).
pub fn ndcg_at_k(ranked: &[u32], relevant: &[u32], k: usize) -> f64 {
    if relevant.is_empty() {
        return 0.0;
    }
    let dcg: f64 = ranked
        .iter()
        .take(k)
        .enumerate()
        .filter(|(_, it)| relevant.contains(it))
        .map(|(r, _)| 1.0 / ((r + 2) as f64).log2())
        .sum();
    let ideal: f64 = (0..relevant.len().min(k))
        .map(|r| 1.0 / ((r + 2) as f64).log2())
        .sum();
    dcg / ideal
}

/// HitRate@k of one ranking: 1 when any relevant item is in the top k.
pub fn hit_rate_at_k(ranked: &[u32], relevant: &[u32], k: usize) -> f64 {
    if hits(ranked, relevant, k) > 0 {
        1.0
    } else {
        0.0
    }
}

fn hits(ranked: &[u32], relevant: &[u32], k: usize) -> usize {
    ranked.iter().take(k).filter(|it| relevant.contains(it)).count()
}

/// Mean metrics over users at several cut-offs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    /// Users evaluated (those with at least one relevant item).
    pub users: usize,
    /// Cut-offs, ascending.
    pub ks: Vec<usize>,
    /// Mean Recall@k per cut-off.
    pub recall: Vec<f64>,
    /// Mean NDCG@k per cut-off.
    pub ndcg: Vec<f64>,
    /// Mean HitRate@k per cut-off.
    pub hit_rate: Vec<f64>,
}

impl EvalReport {
    /// Averages the metrics of `rankings[u]` against `relevant[u]` (users with nothing relevant skipped).
    pub fn from_rankings(rankings: &[Vec<u32>], relevant: &[Vec<u32>], ks: &[usize]) -> EvalReport {
        let mut ks = ks.to_vec();
        ks.sort_unstable();
        ks.dedup();
        let mut r = EvalReport {
            users: 0,
            recall: vec![0.0; ks.len()],
            ndcg: vec![0.0; ks.len()],
            hit_rate: vec![0.0; ks.len()],
            ks,
        };
        for (ranked, rel) in rankings.iter().zip(relevant) {
            if rel.is_empty() {
                continue;
            }
            r.users += 1;
            for (j, &k) in r.ks.iter().enumerate() {
                r.recall[j] += recall_at_k(ranked, rel, k);
                r.ndcg[j] += ndcg_at_k(ranked, rel, k);
                r.hit_rate[j] += hit_rate_at_k(ranked, rel, k);
            }
        }
        let n = r.users.max(1) as f64;
        for v in r
            .recall
            .iter_mut()
            .chain(r.ndcg.iter_mut())
            .chain(r.hit_rate.iter_mut())
        {
            *v /= n;
        }
        r
    }

    /// Recall at cut-off `k`, if computed.
    pub fn recall_at(&self, k: usize) -> Option<f64> {
        self.ks.iter().position(|&x| x == k).map(|j| self.recall[j])
    }
}

/// Exact top-`k` items for each query by inner product, excluding `exclude(q)` (sorted or not), ties
/// broken by lower item index. Scores are computed as a matrix product one block of queries at a time
/// (bounded memory at any catalogue size) and selection runs in parallel over queries.
pub fn top_k_exact<'a>(
    queries: &[f32],
    items: &[f32],
    dim: usize,
    k: usize,
    exclude: &(dyn Fn(usize) -> &'a [u32] + Sync),
) -> Result<Vec<Vec<u32>>> {
    let nq = queries.len().checked_div(dim).unwrap_or(0);
    let ni = items.len().checked_div(dim).unwrap_or(0);
    if nq == 0 || ni == 0 {
        return Ok(vec![Vec::new(); nq]);
    }
    // One score buffer reused for every block, written by gemm directly: allocating a fresh block
    // matrix per step through candle grew the process by ~128 MB per block at 1 M items.
    let block = (32_000_000 / ni).clamp(1, 1024);
    let threads = rayon::current_num_threads();
    let mut scores = vec![0f32; block.min(nq) * ni];
    let mut out = Vec::with_capacity(nq);
    for start in (0..nq).step_by(block) {
        let end = (start + block).min(nq);
        let m = end - start;
        let buf = &mut scores[..m * ni];
        // scores[q][i] = <query q, item i>: items (ni × dim, row-major) read as dim × ni.
        crate::train::matmul(
            m,
            ni,
            dim,
            &queries[start * dim..end * dim],
            (dim, 1),
            items,
            (1, dim),
            buf,
            threads,
        );
        let part: Vec<Vec<u32>> = buf
            .par_chunks(ni)
            .enumerate()
            .map(|(j, row)| select_top(row, k, exclude(start + j)))
            .collect();
        out.extend(part);
    }
    Ok(out)
}

/// The top `k` indices of `scores` outside `exclude`, best first.
pub fn select_top(scores: &[f32], k: usize, exclude: &[u32]) -> Vec<u32> {
    let mut cand: Vec<(f32, u32)> = scores
        .iter()
        .enumerate()
        .filter(|(_, s)| !s.is_nan())
        .map(|(i, &s)| (s, i as u32))
        .collect();
    if !exclude.is_empty() {
        let mut ex = exclude.to_vec();
        ex.sort_unstable();
        cand.retain(|(_, i)| ex.binary_search(i).is_err());
    }
    let cmp = |a: &(f32, u32), b: &(f32, u32)| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1));
    let k = k.min(cand.len());
    if k == 0 {
        return Vec::new();
    }
    if k < cand.len() {
        cand.select_nth_unstable_by(k - 1, cmp);
        cand.truncate(k);
    }
    cand.sort_unstable_by(cmp);
    // A fresh, exact-size vector: `into_iter().map().collect()` would reuse `cand`'s allocation
    // (in-place collect) and every kept top-k list would pin one catalogue-sized buffer.
    let mut top = Vec::with_capacity(k);
    top.extend(cand.iter().map(|&(_, i)| i));
    top
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_lists_do_not_pin_the_candidate_buffer() {
        let scores: Vec<f32> = (0..100_000).map(|i| (i % 977) as f32).collect();
        let top = select_top(&scores, 10, &[]);
        assert_eq!(top.len(), 10);
        assert!(
            top.capacity() < 1000,
            "capacity {} keeps the scan buffer alive",
            top.capacity()
        );
    }

    #[test]
    fn metric_hand_cases() {
        let ranked = [5, 3, 9, 1];
        let rel = [3, 1, 7];
        assert!((recall_at_k(&ranked, &rel, 2) - 1.0 / 3.0).abs() < 1e-12);
        assert!((recall_at_k(&ranked, &rel, 4) - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(hit_rate_at_k(&ranked, &rel, 1), 0.0);
        assert_eq!(hit_rate_at_k(&ranked, &rel, 2), 1.0);
        // DCG@4 = 1/log2(3) + 1/log2(5); IDCG = 1 + 1/log2(3) + 1/2.
        let want = (1.0 / 3f64.log2() + 1.0 / 5f64.log2()) / (1.0 + 1.0 / 3f64.log2() + 0.5);
        assert!((ndcg_at_k(&ranked, &rel, 4) - want).abs() < 1e-12);
        assert_eq!(ndcg_at_k(&[3, 1, 7], &rel, 3), 1.0);
    }

    #[test]
    fn exact_top_k_excludes_and_orders() {
        // 2-d: query (1, 0); items score 0.1, 0.9, 0.5, 0.9, -1.
        let items = [0.1, 0.0, 0.9, 0.0, 0.5, 0.0, 0.9, 1.0, -1.0, 0.0];
        let q = [1.0, 0.0, 0.0, 1.0];
        let ex: Vec<Vec<u32>> = vec![vec![1], vec![]];
        let top = top_k_exact(&q, &items, 2, 3, &|u| ex[u].as_slice()).unwrap();
        assert_eq!(top[0], vec![3, 2, 0], "item 1 excluded, ties by index");
        assert_eq!(top[1][0], 3);
    }

    #[test]
    fn report_averages_users() {
        let r = EvalReport::from_rankings(
            &[vec![1, 2], vec![3, 4], vec![9]],
            &[vec![1], vec![5], vec![]],
            &[1, 2],
        );
        assert_eq!(r.users, 2);
        assert_eq!(r.recall, vec![0.5, 0.5]);
        assert_eq!(r.recall_at(2), Some(0.5));
    }
}
