//! Retrieval metrics behind `eval` and per-epoch validation (the exact scorer is in [`crate::kernels`]).
//!
//! Recall@K = |top-K ∩ relevant| / |relevant|; NDCG@K with binary gains, ideal DCG over
//! min(K, |relevant|) hits; HitRate@K = 1 when any relevant item is in the top K. Averaged over users.

use serde::{Deserialize, Serialize};

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

#[cfg(test)]
mod tests {
    use super::*;

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
