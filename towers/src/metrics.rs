//! Retrieval metrics behind `eval` and per-epoch validation (the exact scorer is in [`crate::kernels`]).
//!
//! Recall@K = |top-K ∩ relevant| / |relevant|; NDCG@K with binary gains, ideal DCG over
//! min(K, |relevant|) hits; HitRate@K = 1 when any relevant item is in the top K. Averaged over users.
//!
//! Beyond accuracy, measured against the items' training popularity ([`Popularity`]):
//! - coverage@K: the share of the catalogue that appears in at least one user's top K;
//! - popularity percentile: the mean mid-rank percentile (0 = least, 100 = most interacted with) of
//!   the items in the top 10, beside the same mean over the test items;
//! - long-tail share: the share of top-10 slots filled by long-tail items, those outside the head
//!   (the most popular items that together hold 80 % of the training interactions).

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

/// Share of the training interactions the head of the catalogue holds; the rest is the long tail.
pub const HEAD_SHARE: f64 = 0.8;

/// The cut-off of the popularity percentile and the long-tail share (or the whole ranking if shorter).
pub const BEYOND_K: usize = 10;

/// Every item's training popularity, as the beyond-accuracy metrics read it.
#[derive(Debug, Clone, PartialEq)]
pub struct Popularity {
    percentile: Vec<f64>,
    long_tail: Vec<bool>,
}

impl Popularity {
    /// From each item's training interaction count. Percentiles are mid-rank: 100 × (items with fewer
    /// interactions + half of those with as many) / items. The head is the shortest run of items, by
    /// count descending (ties by index), whose counts sum to at least [`HEAD_SHARE`] of the total.
    pub fn from_counts(counts: &[u32]) -> Popularity {
        let n = counts.len();
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by_key(|&i| (counts[i], i));
        let mut percentile = vec![0.0; n];
        let mut start = 0;
        while start < n {
            let c = counts[order[start]];
            let end = start + order[start..].iter().take_while(|&&i| counts[i] == c).count();
            let p = 100.0 * (start as f64 + 0.5 * (end - start) as f64) / n as f64;
            for &i in &order[start..end] {
                percentile[i] = p;
            }
            start = end;
        }
        let total: u64 = counts.iter().map(|&c| c as u64).sum();
        let mut long_tail = vec![true; n];
        let mut held = 0u64;
        let mut by_count: Vec<usize> = (0..n).collect();
        by_count.sort_by_key(|&i| (std::cmp::Reverse(counts[i]), i));
        for i in by_count {
            if total == 0 || held as f64 >= HEAD_SHARE * total as f64 {
                break;
            }
            long_tail[i] = false;
            held += counts[i] as u64;
        }
        Popularity {
            percentile,
            long_tail,
        }
    }

    /// Catalogue size.
    pub fn items(&self) -> usize {
        self.percentile.len()
    }

    /// Mid-rank popularity percentile of `item` (0 for an item outside the catalogue).
    pub fn percentile(&self, item: u32) -> f64 {
        self.percentile.get(item as usize).copied().unwrap_or(0.0)
    }

    /// Whether `item` is outside the head (an item outside the catalogue counts as long tail).
    pub fn is_long_tail(&self, item: u32) -> bool {
        self.long_tail.get(item as usize).copied().unwrap_or(true)
    }

    /// Items in the head.
    pub fn head_len(&self) -> usize {
        self.long_tail.iter().filter(|t| !**t).count()
    }
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
    /// Catalogue coverage@k per cut-off: the share of items in at least one evaluated user's top k
    /// (empty when no [`Popularity`] was given).
    #[serde(default)]
    pub coverage: Vec<f64>,
    /// The cut-off of `popularity_percentile` and `long_tail_share` ([`BEYOND_K`], or the ranking's
    /// length when shorter).
    #[serde(default)]
    pub beyond_k: usize,
    /// Mean training-popularity percentile of the recommended items (top `beyond_k` of every user).
    #[serde(default)]
    pub popularity_percentile: Option<f64>,
    /// Mean training-popularity percentile of the users' relevant (test) items.
    #[serde(default)]
    pub test_popularity_percentile: Option<f64>,
    /// Share of the top-`beyond_k` slots filled by long-tail items.
    #[serde(default)]
    pub long_tail_share: Option<f64>,
    /// When the users were a sample: how many test users there are in all (`users` of them were
    /// ranked). Absent for an evaluation of every user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampled_from: Option<usize>,
    /// With a sample: the standard error of each mean Recall@k (finite-population corrected).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recall_se: Vec<f64>,
    /// With a sample: the standard error of each mean NDCG@k.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ndcg_se: Vec<f64>,
    /// With a sample: the standard error of each mean HitRate@k.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hit_rate_se: Vec<f64>,
    /// The standard errors of recall, NDCG and hit rate (in that order, per cut-off) over these
    /// users as a sample, before the population is known ([`EvalReport::set_population`]).
    #[serde(skip)]
    sample_se: Vec<f64>,
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
            coverage: Vec::new(),
            beyond_k: 0,
            popularity_percentile: None,
            test_popularity_percentile: None,
            long_tail_share: None,
            sampled_from: None,
            recall_se: Vec::new(),
            ndcg_se: Vec::new(),
            hit_rate_se: Vec::new(),
            sample_se: Vec::new(),
        };
        // Sums of squares beside the sums, for the standard errors of a sample.
        let nk = r.ks.len();
        let mut sq = vec![0f64; 3 * nk];
        for (ranked, rel) in rankings.iter().zip(relevant) {
            if rel.is_empty() {
                continue;
            }
            r.users += 1;
            for (j, &k) in r.ks.iter().enumerate() {
                let (a, b, c) = (
                    recall_at_k(ranked, rel, k),
                    ndcg_at_k(ranked, rel, k),
                    hit_rate_at_k(ranked, rel, k),
                );
                r.recall[j] += a;
                r.ndcg[j] += b;
                r.hit_rate[j] += c;
                sq[j] += a * a;
                sq[nk + j] += b * b;
                sq[2 * nk + j] += c * c;
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
        // The standard error of each mean over these users as a sample (population correction in
        // `set_population`): sqrt(sample variance / n).
        let se = |mean: f64, sumsq: f64| {
            if r.users < 2 {
                return 0.0;
            }
            let var = (sumsq - n * mean * mean).max(0.0) / (n - 1.0);
            (var / n).sqrt()
        };
        let means: Vec<f64> = r
            .recall
            .iter()
            .chain(&r.ndcg)
            .chain(&r.hit_rate)
            .copied()
            .collect();
        r.sample_se = means.iter().zip(&sq).map(|(&m, &q)| se(m, q)).collect();
        r
    }

    /// Says how many users the evaluated ones were drawn from. Equal to `users`: every user was
    /// ranked, and the report has no standard errors. More: the report is a sample, and each
    /// standard error is scaled by the finite-population correction sqrt((N − n) / (N − 1)).
    pub fn set_population(&mut self, population: usize) {
        if population <= self.users {
            self.sampled_from = None;
            self.recall_se.clear();
            self.ndcg_se.clear();
            self.hit_rate_se.clear();
            return;
        }
        let fpc = ((population - self.users) as f64 / (population - 1).max(1) as f64).sqrt();
        let nk = self.ks.len();
        let se: Vec<f64> = self.sample_se.iter().map(|v| v * fpc).collect();
        if se.len() == 3 * nk {
            self.recall_se = se[..nk].to_vec();
            self.ndcg_se = se[nk..2 * nk].to_vec();
            self.hit_rate_se = se[2 * nk..].to_vec();
        }
        self.sampled_from = Some(population);
    }

    /// [`Self::from_rankings`] plus coverage, popularity percentiles and the long-tail share against
    /// the items' training popularity `pop`, over the same users (those with something relevant).
    pub fn with_popularity(
        rankings: &[Vec<u32>],
        relevant: &[Vec<u32>],
        ks: &[usize],
        pop: &Popularity,
    ) -> EvalReport {
        let mut r = EvalReport::from_rankings(rankings, relevant, ks);
        let users: Vec<(&Vec<u32>, &Vec<u32>)> = rankings
            .iter()
            .zip(relevant)
            .filter(|(_, rel)| !rel.is_empty())
            .collect();
        // The best rank at which each item appears in anyone's list: coverage@k counts those < k.
        let mut first = vec![usize::MAX; pop.items()];
        for (ranked, _) in &users {
            for (rank, &it) in ranked.iter().enumerate() {
                if let Some(f) = first.get_mut(it as usize) {
                    *f = (*f).min(rank);
                }
            }
        }
        let n = pop.items().max(1) as f64;
        r.coverage =
            r.ks.iter()
                .map(|&k| first.iter().filter(|&&f| f < k).count() as f64 / n)
                .collect();
        let longest = users.iter().map(|(ranked, _)| ranked.len()).max().unwrap_or(0);
        r.beyond_k = BEYOND_K.min(longest);
        let (mut slots, mut pct, mut tail) = (0usize, 0.0, 0usize);
        for (ranked, _) in &users {
            for &it in ranked.iter().take(r.beyond_k) {
                slots += 1;
                pct += pop.percentile(it);
                tail += usize::from(pop.is_long_tail(it));
            }
        }
        let (mut tests, mut test_pct) = (0usize, 0.0);
        for (_, rel) in &users {
            tests += rel.len();
            test_pct += rel.iter().map(|&it| pop.percentile(it)).sum::<f64>();
        }
        r.popularity_percentile = (slots > 0).then(|| pct / slots as f64);
        r.long_tail_share = (slots > 0).then(|| tail as f64 / slots as f64);
        r.test_popularity_percentile = (tests > 0).then(|| test_pct / tests as f64);
        r
    }

    /// Coverage at cut-off `k`, if computed.
    pub fn coverage_at(&self, k: usize) -> Option<f64> {
        let j = self.ks.iter().position(|&x| x == k)?;
        self.coverage.get(j).copied()
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
        assert_eq!(r.coverage, Vec::<f64>::new());
        assert_eq!(r.long_tail_share, None);
    }

    #[test]
    fn popularity_percentiles_and_head_by_hand() {
        // Counts 0, 1, 1, 5 (total 7): mid-rank percentiles 12.5, 50, 50, 87.5. The head holds
        // 80 % = 5.6 interactions: item 3 (5) is not enough, item 1 (6) is; items 0 and 2 are the tail.
        let pop = Popularity::from_counts(&[0, 1, 1, 5]);
        assert_eq!(pop.items(), 4);
        let pct: Vec<f64> = (0..4).map(|i| pop.percentile(i)).collect();
        assert_eq!(pct, vec![12.5, 50.0, 50.0, 87.5]);
        let tail: Vec<bool> = (0..4).map(|i| pop.is_long_tail(i)).collect();
        assert_eq!(tail, vec![true, false, true, false]);
        assert_eq!(pop.head_len(), 2);
        assert!(pop.is_long_tail(99), "outside the catalogue");
        // Nothing interacted with: no head.
        assert_eq!(Popularity::from_counts(&[0, 0]).head_len(), 0);
    }

    #[test]
    fn beyond_accuracy_by_hand() {
        // 5 items, counts 10, 5, 3, 1, 1 (total 20, 80 % = 16): items 0 and 1 hold 15 < 16, so the
        // head is items 0, 1 and 2. Percentiles: item 0 90, 1 70, 2 50, 3 and 4 20.
        let pop = Popularity::from_counts(&[10, 5, 3, 1, 1]);
        assert_eq!(pop.head_len(), 3);
        let r = EvalReport::with_popularity(
            &[vec![0, 3, 1], vec![0, 1, 2], vec![4, 4, 4]],
            &[vec![3], vec![2, 4], vec![]],
            &[1, 2, 3],
            &pop,
        );
        assert_eq!(r.users, 2, "the third user has nothing relevant and is skipped");
        // Top 1: {0}; top 2: {0, 3, 1}; top 3: {0, 1, 2, 3} of 5 items.
        assert_eq!(r.coverage, vec![0.2, 0.6, 0.8]);
        assert_eq!(r.coverage_at(2), Some(0.6));
        assert_eq!(r.beyond_k, 3);
        // Slots: 0, 3, 1, 0, 1, 2 → (90 + 20 + 70 + 90 + 70 + 50) / 6 = 65; tail: item 3 only.
        assert!((r.popularity_percentile.unwrap() - 65.0).abs() < 1e-12);
        assert!((r.long_tail_share.unwrap() - 1.0 / 6.0).abs() < 1e-12);
        // Test items 3, 2, 4 → (20 + 50 + 20) / 3 = 30.
        assert!((r.test_popularity_percentile.unwrap() - 30.0).abs() < 1e-12);
        assert_eq!(r.recall, vec![0.0, 0.5, 0.75]);
    }

    #[test]
    fn standard_errors_only_for_a_sample() {
        // Recall@1 per user: 1, 0, 1, 0 → mean 0.5, sample variance 1/3, SE sqrt(1/12).
        let rankings = vec![vec![1], vec![9], vec![3], vec![9]];
        let relevant = vec![vec![1], vec![2], vec![3], vec![4]];
        let mut r = EvalReport::from_rankings(&rankings, &relevant, &[1]);
        assert_eq!(r.recall, vec![0.5]);
        assert!(
            r.recall_se.is_empty() && r.sampled_from.is_none(),
            "not yet a sample"
        );
        r.set_population(4);
        assert!(r.recall_se.is_empty(), "every user ranked: no sampling error");
        let json = serde_json::to_string(&r).unwrap();
        assert!(!json.contains("_se") && !json.contains("sampled_from"), "{json}");
        // Drawn from 9 users: SE = sqrt(1/12) * sqrt((9 - 4) / 8).
        r.set_population(9);
        let want = (1.0f64 / 12.0).sqrt() * (5.0f64 / 8.0).sqrt();
        assert!((r.recall_se[0] - want).abs() < 1e-12, "{:?}", r.recall_se);
        assert!((r.hit_rate_se[0] - want).abs() < 1e-12);
        assert_eq!(r.sampled_from, Some(9));
        // Setting it twice does not compound the correction.
        r.set_population(9);
        assert!((r.recall_se[0] - want).abs() < 1e-12);
    }
}
