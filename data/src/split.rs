//! `data split`: per-user train/test holdout, written as train.parquet/test.parquet beside the
//! dataset's other files and recorded in its manifest. Temporal (each user's latest interactions are
//! held out, so evaluation never peeks into the future) or random with a seed.

use std::path::Path;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::artifact::StagingDir;
use crate::dataset::Dataset;
use crate::error::{Error, Result};
use crate::interactions::Interactions;
use crate::progress::Progress;
use crate::schema::{write_interactions, TEST_FILE, TRAIN_FILE};

/// Which interactions of a user are held out.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "strategy")]
pub enum SplitStrategy {
    /// The latest ones by time; equal times are ordered by item id (numeric ids numerically, others
    /// as strings), so the split is the same on every run and machine.
    Temporal,
    /// A random subset per user, reproducible from the seed.
    Random {
        /// Generator seed.
        seed: u64,
    },
    /// Every interaction at or after a time, whoever's it is (the holdout and the minimum count do
    /// not apply): the protocol of a daily job, which trains on everything before a day and is
    /// judged on that day (`--test-from last-append`).
    From {
        /// Epoch seconds; rows with `ts >= time` are test.
        time: i64,
    },
}

/// How many of a user's interactions are held out.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Holdout {
    /// This fraction of each user's interactions, rounded down (the usual protocol: `floor(f·n)`), at
    /// least 1 and at most all but 1.
    Fraction(f64),
    /// The last (or N random) interactions, at most all but 1.
    LastN(u32),
}

/// Options of `data split`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SplitOptions {
    /// Temporal or random.
    pub strategy: SplitStrategy,
    /// How much to hold out per user.
    pub holdout: Holdout,
    /// Users with fewer interactions than this stay wholly in train (values below 2 act as 2: a user
    /// with one interaction cannot be both trained on and tested).
    pub min_user_interactions: u32,
}

impl Default for SplitOptions {
    fn default() -> Self {
        SplitOptions {
            strategy: SplitStrategy::Temporal,
            holdout: Holdout::Fraction(0.2),
            min_user_interactions: 2,
        }
    }
}

/// What a split produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SplitReport {
    /// Rows in train.parquet.
    pub train: u64,
    /// Rows in test.parquet.
    pub test: u64,
    /// Users with at least one test interaction.
    pub test_users: u64,
    /// Users with interactions who stayed wholly in train (too few interactions).
    pub train_only_users: u64,
}

impl SplitOptions {
    fn validate(&self) -> Result<()> {
        match self.holdout {
            Holdout::Fraction(f) if !(f > 0.0 && f < 1.0) => Err(Error::InvalidArgument(format!(
                "--test-fraction must be between 0 and 1 (exclusive), got {f}"
            ))),
            Holdout::LastN(0) => Err(Error::InvalidArgument("--test-last must be at least 1".into())),
            _ => Ok(()),
        }
    }

    fn test_count(&self, n: usize) -> usize {
        if n < (self.min_user_interactions.max(2) as usize) {
            return 0;
        }
        let k = match self.holdout {
            // The epsilon keeps 0.2·10 at 2 despite binary rounding.
            Holdout::Fraction(f) => (f * n as f64 + 1e-9).floor() as usize,
            Holdout::LastN(k) => k as usize,
        };
        k.clamp(1, n - 1)
    }
}

/// Assigns each row of `x` to train or test; returns (train rows, test rows), each ascending.
/// `item_rank[i]` orders items on equal timestamps (pass the rank of the item's string id).
pub fn split_rows(
    x: &Interactions,
    n_users: usize,
    item_rank: &[u32],
    opts: &SplitOptions,
) -> Result<(Vec<usize>, Vec<usize>)> {
    opts.validate()?;
    if let SplitStrategy::From { time } = opts.strategy {
        return Ok((0..x.len()).partition(|&r| x.ts[r] < time));
    }
    // Group rows by user, keeping row order within a user.
    let counts = x.user_counts(n_users);
    let mut start = vec![0usize; n_users + 1];
    for u in 0..n_users {
        start[u + 1] = start[u] + counts[u] as usize;
    }
    let mut cursor = start.clone();
    let mut by_user = vec![0usize; x.len()];
    for r in 0..x.len() {
        let u = x.user[r] as usize;
        if u >= n_users {
            return Err(Error::InvalidArgument(format!(
                "row {r}: user index {u} outside 0..{n_users}"
            )));
        }
        by_user[cursor[u]] = r;
        cursor[u] += 1;
    }
    let mut is_test = vec![false; x.len()];
    let mut rng = match opts.strategy {
        SplitStrategy::Random { seed } => Some(ChaCha8Rng::seed_from_u64(seed)),
        SplitStrategy::Temporal | SplitStrategy::From { .. } => None,
    };
    for u in 0..n_users {
        let rows = &mut by_user[start[u]..start[u + 1]];
        let k = opts.test_count(rows.len());
        if k == 0 {
            continue;
        }
        match rng.as_mut() {
            None => {
                rows.sort_unstable_by_key(|&r| {
                    let it = x.item[r] as usize;
                    (x.ts[r], item_rank.get(it).copied().unwrap_or(it as u32), r)
                });
            }
            Some(rng) => rows.shuffle(rng),
        }
        for &r in &rows[rows.len() - k..] {
            is_test[r] = true;
        }
    }
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for (r, &t) in is_test.iter().enumerate() {
        if t {
            test.push(r);
        } else {
            train.push(r);
        }
    }
    Ok((train, test))
}

/// Splits the dataset at `dir` in place (atomically: the directory is rebuilt in a staging dir with
/// the unchanged files hard-linked, then swapped in). An existing split is replaced.
pub fn split(dir: &Path, opts: &SplitOptions, progress: &dyn Progress) -> Result<SplitReport> {
    opts.validate()?;
    progress.start("loading dataset", None);
    let ds = Dataset::load(dir)?;
    progress.finish();
    progress.start("splitting", Some(ds.interactions.len() as u64));
    let mut order: Vec<u32> = (0..ds.items.len() as u32).collect();
    // Time ties break by item id in natural order: numeric ids numerically (MovieLens "9" < "10"),
    // then any other ids as strings.
    let natural = |id: &str| (id.parse::<u64>().map_or((1, 0), |n| (0, n)), id.to_string());
    order.sort_by_cached_key(|&i| natural(ds.items.id(i)));
    let mut rank = vec![0u32; ds.items.len()];
    for (k, &i) in order.iter().enumerate() {
        rank[i as usize] = k as u32;
    }
    let (train_rows, test_rows) = split_rows(&ds.interactions, ds.users.len(), &rank, opts)?;
    let train = ds.interactions.select(&train_rows);
    let test = ds.interactions.select(&test_rows);
    let test_users = {
        let c = test.user_counts(ds.users.len());
        c.iter().filter(|&&c| c > 0).count() as u64
    };
    let all_users = ds
        .interactions
        .user_counts(ds.users.len())
        .iter()
        .filter(|&&c| c > 0)
        .count() as u64;
    let report = SplitReport {
        train: train.len() as u64,
        test: test.len() as u64,
        test_users,
        train_only_users: all_users - test_users,
    };
    progress.inc(ds.interactions.len() as u64);
    progress.finish();

    progress.start("writing split", None);
    let stage = StagingDir::new(dir)?;
    let sdir = stage.path();
    let mut m = ds.manifest.clone();
    m.files.remove(TRAIN_FILE);
    m.files.remove(TEST_FILE);
    for name in m.files.keys() {
        let (from, to) = (dir.join(name), sdir.join(name));
        if std::fs::hard_link(&from, &to).is_err() {
            std::fs::copy(&from, &to).map_err(|e| Error::io(&to, e))?;
        }
    }
    write_interactions(&sdir.join(TRAIN_FILE), &ds.users, &ds.items, &train)?;
    write_interactions(&sdir.join(TEST_FILE), &ds.users, &ds.items, &test)?;
    m.add_file(sdir, TRAIN_FILE)?;
    m.add_file(sdir, TEST_FILE)?;
    m.counts.insert("train".into(), report.train);
    m.counts.insert("test".into(), report.test);
    if let serde_json::Value::Object(o) = &mut m.extra {
        o.insert(
            "split".into(),
            serde_json::json!({ "options": opts, "report": report }),
        );
    }
    m.write(sdir)?;
    stage.commit()?;
    crate::dataset::write_serving(dir)?;
    progress.finish();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn log(rows: &[(u32, u32, i64)]) -> Interactions {
        let mut x = Interactions::default();
        for &(u, i, t) in rows {
            x.push(u, i, 1.0, t);
        }
        x
    }

    #[test]
    fn temporal_takes_latest_with_item_tiebreak() {
        // user 0: ts 1,2,3,3 (items 5 and 2 tie at ts 3); user 1: one row -> train only.
        let x = log(&[(0, 5, 3), (0, 1, 1), (0, 2, 3), (0, 3, 2), (1, 0, 9)]);
        let rank: Vec<u32> = (0..6).collect();
        let o = SplitOptions {
            holdout: Holdout::LastN(1),
            ..Default::default()
        };
        let (tr, te) = split_rows(&x, 2, &rank, &o).unwrap();
        assert_eq!(te, vec![0]); // item 5 > item 2 at equal ts
        assert_eq!(tr, vec![1, 2, 3, 4]);
        let o = SplitOptions {
            holdout: Holdout::Fraction(0.5),
            ..Default::default()
        };
        let (_, te) = split_rows(&x, 2, &rank, &o).unwrap();
        assert_eq!(te, vec![0, 2]);
        let o = SplitOptions {
            min_user_interactions: 5,
            ..Default::default()
        };
        assert!(split_rows(&x, 2, &rank, &o).unwrap().1.is_empty());
        let bad = SplitOptions {
            holdout: Holdout::Fraction(1.0),
            ..Default::default()
        };
        assert!(split_rows(&x, 2, &rank, &bad).is_err());
    }

    proptest! {
        #[test]
        fn split_partitions_rows(rows in proptest::collection::vec((0u32..8, 0u32..20, 0i64..6), 0..120),
                                 frac in 0.05f64..0.95, last in 1u32..4, use_last: bool,
                                 temporal: bool, seed: u64, min_u in 0u32..5) {
            let x = log(&rows);
            let rank: Vec<u32> = (0..20).rev().collect();
            let o = SplitOptions {
                strategy: if temporal { SplitStrategy::Temporal } else { SplitStrategy::Random { seed } },
                holdout: if use_last { Holdout::LastN(last) } else { Holdout::Fraction(frac) },
                min_user_interactions: min_u,
            };
            let (tr, te) = split_rows(&x, 8, &rank, &o).unwrap();
            // Nothing lost or duplicated.
            let mut all: Vec<usize> = tr.iter().chain(te.iter()).copied().collect();
            all.sort_unstable();
            prop_assert_eq!(all, (0..x.len()).collect::<Vec<_>>());
            let counts = x.user_counts(8);
            for u in 0..8u32 {
                let n = counts[u as usize] as usize;
                let tr_u: Vec<usize> = tr.iter().copied().filter(|&r| x.user[r] == u).collect();
                let te_u: Vec<usize> = te.iter().copied().filter(|&r| x.user[r] == u).collect();
                if n >= 2 && n >= min_u as usize {
                    prop_assert!(!te_u.is_empty(), "user {} with {} rows has no test row", u, n);
                    prop_assert!(!tr_u.is_empty());
                } else {
                    prop_assert!(te_u.is_empty());
                }
                if temporal {
                    let key = |r: usize| (x.ts[r], rank[x.item[r] as usize]);
                    if let (Some(a), Some(b)) = (tr_u.iter().map(|&r| key(r)).max(), te_u.iter().map(|&r| key(r)).min()) {
                        prop_assert!(a.0 <= b.0, "test row earlier than a train row");
                        prop_assert!(a <= b);
                    }
                }
            }
            // Deterministic.
            let again = split_rows(&x, 8, &rank, &o).unwrap();
            prop_assert_eq!(again, (tr, te));
        }
    }
}
