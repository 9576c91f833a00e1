//! Cleaning an imported log before it is written: duplicate (user, item) pairs, a rating threshold,
//! and minimum interaction counts applied iteratively (a k-core) until nothing more changes.

use rayon::prelude::*;

use crate::interactions::Interactions;

/// What to do when the same (user, item) pair occurs more than once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dedup {
    /// Keep the latest occurrence (largest timestamp; on equal timestamps, the later record).
    #[default]
    Latest,
    /// Keep the earliest occurrence.
    Earliest,
    /// Keep every occurrence (repeat consumption, e.g. listening logs).
    KeepAll,
}

impl std::str::FromStr for Dedup {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "latest" => Ok(Dedup::Latest),
            "earliest" => Ok(Dedup::Earliest),
            "keep-all" | "none" => Ok(Dedup::KeepAll),
            _ => Err(format!(
                "unknown dedup policy {s:?} (expected latest, earliest or keep-all)"
            )),
        }
    }
}

/// How many rows each cleaning step removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct CleanStats {
    /// Repeated (user, item) pairs dropped by the dedup policy.
    pub duplicates: u64,
    /// Rows with a weight below `--min-rating`.
    pub below_min_rating: u64,
    /// Rows dropped by the minimum user/item interaction counts.
    pub min_count: u64,
    /// Rounds of the iterative min-count filter until stable.
    pub min_count_rounds: u32,
}

/// Returns the rows to keep (ascending row numbers) after dedup, the rating threshold and the
/// iterative minimum counts. Dedup runs first (a user's latest rating is their opinion), then the
/// threshold, then the counts.
pub(crate) fn clean(
    x: &Interactions,
    n_users: usize,
    n_items: usize,
    dedup: Dedup,
    min_rating: Option<f32>,
    min_user: u32,
    min_item: u32,
) -> (Vec<usize>, CleanStats) {
    let mut stats = CleanStats::default();
    let mut keep: Vec<usize> = match dedup {
        Dedup::KeepAll => (0..x.len()).collect(),
        _ => {
            // Sort rows by (user, item, ts, row) and keep the last (or first) of each pair.
            let mut order: Vec<usize> = (0..x.len()).collect();
            order.par_sort_unstable_by_key(|&r| (x.user[r], x.item[r], x.ts[r], r));
            let mut keep = Vec::with_capacity(x.len());
            let mut g = 0;
            while g < order.len() {
                let (u, i) = (x.user[order[g]], x.item[order[g]]);
                let mut e = g + 1;
                while e < order.len() && x.user[order[e]] == u && x.item[order[e]] == i {
                    e += 1;
                }
                keep.push(if dedup == Dedup::Latest {
                    order[e - 1]
                } else {
                    order[g]
                });
                g = e;
            }
            keep.par_sort_unstable();
            keep
        }
    };
    stats.duplicates = (x.len() - keep.len()) as u64;

    if let Some(m) = min_rating {
        let before = keep.len();
        keep.retain(|&r| x.weight[r] >= m);
        stats.below_min_rating = (before - keep.len()) as u64;
    }

    if min_user > 1 || min_item > 1 {
        let before = keep.len();
        loop {
            let mut uc = vec![0u32; n_users];
            let mut ic = vec![0u32; n_items];
            for &r in &keep {
                uc[x.user[r] as usize] += 1;
                ic[x.item[r] as usize] += 1;
            }
            let n = keep.len();
            keep.retain(|&r| uc[x.user[r] as usize] >= min_user && ic[x.item[r] as usize] >= min_item);
            stats.min_count_rounds += 1;
            if keep.len() == n {
                break;
            }
        }
        stats.min_count = (before - keep.len()) as u64;
    }
    (keep, stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn log(rows: &[(u32, u32, f32, i64)]) -> Interactions {
        let mut x = Interactions::default();
        for &(u, i, w, t) in rows {
            x.push(u, i, w, t);
        }
        x
    }

    #[test]
    fn dedup_policies() {
        let x = log(&[(0, 0, 5.0, 10), (0, 0, 2.0, 20), (0, 1, 3.0, 5), (0, 0, 4.0, 20)]);
        let (k, s) = clean(&x, 1, 2, Dedup::Latest, None, 0, 0);
        assert_eq!(k, vec![2, 3]); // equal ts: the later record wins
        assert_eq!(s.duplicates, 2);
        let (k, _) = clean(&x, 1, 2, Dedup::Earliest, None, 0, 0);
        assert_eq!(k, vec![0, 2]);
        let (k, _) = clean(&x, 1, 2, Dedup::KeepAll, None, 0, 0);
        assert_eq!(k.len(), 4);
        // dedup before threshold: the latest rating (4.0) counts, not the earlier 5.0
        let (k, s) = clean(&x, 1, 2, Dedup::Latest, Some(4.5), 0, 0);
        assert!(k.is_empty());
        assert_eq!(s.below_min_rating, 2);
    }

    #[test]
    fn min_counts_iterate_until_stable() {
        // user 0 has 2 items; item 1 is also rated by user 1 (1 interaction). With min 2 for both:
        // round 1 drops user 1 (1 row); then item 1 has 1 rating -> dropped; then user 0 has 1 -> gone.
        let x = log(&[
            (0, 0, 1.0, 0),
            (0, 1, 1.0, 0),
            (1, 1, 1.0, 0),
            (2, 0, 1.0, 0),
            (2, 2, 1.0, 0),
            (3, 0, 1.0, 0),
            (3, 2, 1.0, 0),
        ]);
        let (k, s) = clean(&x, 4, 3, Dedup::Latest, None, 2, 2);
        let mut uc = [0; 4];
        let mut ic = [0; 3];
        for &r in &k {
            uc[x.user[r] as usize] += 1;
            ic[x.item[r] as usize] += 1;
        }
        assert!(uc.iter().chain(ic.iter()).all(|&c| c == 0 || c >= 2));
        assert_eq!(k, vec![3, 4, 5, 6]);
        assert!(s.min_count_rounds >= 3);
    }

    proptest! {
        #[test]
        fn result_satisfies_min_counts(rows in proptest::collection::vec((0u32..6, 0u32..6, 0u8..5, 0i64..4), 0..60),
                                       mu in 0u32..4, mi in 0u32..4) {
            let x = log(&rows.iter().map(|&(u, i, w, t)| (u, i, w as f32, t)).collect::<Vec<_>>());
            let (k, _) = clean(&x, 6, 6, Dedup::Latest, Some(1.0), mu, mi);
            let mut uc = [0u32; 6];
            let mut ic = [0u32; 6];
            let mut pairs = std::collections::HashSet::new();
            for &r in &k {
                uc[x.user[r] as usize] += 1;
                ic[x.item[r] as usize] += 1;
                prop_assert!(x.weight[r] >= 1.0);
                prop_assert!(pairs.insert((x.user[r], x.item[r])));
            }
            prop_assert!(uc.iter().all(|&c| c == 0 || c >= mu));
            prop_assert!(ic.iter().all(|&c| c == 0 || c >= mi));
            prop_assert!(k.windows(2).all(|w| w[0] < w[1]));
        }
    }
}
