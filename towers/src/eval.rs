//! Offline evaluation on a split dataset's test part: every test user (or a seeded sample of them)
//! ranks the whole catalogue, training items excluded, for the model and for the most-popular-items
//! baseline.
//!
//! Why a sample: exact scoring costs test users × items × d. At 200 k test users and 1 M items
//! that is about 15 minutes on two cores, where 5,000 sampled users take about 30 seconds and
//! give each mean with a standard error of a few thousandths (printed beside it).

use rand::{seq::index::sample as draw, SeedableRng};
use rand_chacha::ChaCha8Rng;
use twotower_data::{Dataset, Interactions, UserHistories};

use crate::error::{Error, Result};
use crate::kernels::{select_top, top_k_exact};
use crate::metrics::{EvalReport, Popularity};
use crate::model::Model;

/// Which test users an evaluation ranks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EvalSample {
    /// At most this many test users, drawn uniformly without replacement (0 = every test user).
    pub max_users: usize,
    /// Seed of the draw: the same seed draws the same users.
    pub seed: u64,
}

impl EvalSample {
    /// Every test user.
    pub const ALL: EvalSample = EvalSample {
        max_users: 0,
        seed: 0,
    };
}

/// Evaluates a model on `ds`'s test part: every test user ranks the whole catalogue with their training
/// items excluded; the user vector comes from id, features and the whole training history. Coverage,
/// popularity percentiles and the long-tail share are measured against [`training_popularity`].
pub fn evaluate(model: &Model, ds: &Dataset, ks: &[usize]) -> Result<EvalReport> {
    evaluate_sample(model, ds, ks, EvalSample::ALL)
}

/// [`evaluate`] on a seeded sample of the test users (all of them when there are no more than
/// `sample.max_users`); a sampled report carries each mean's standard error.
pub fn evaluate_sample(model: &Model, ds: &Dataset, ks: &[usize], sample: EvalSample) -> Result<EvalReport> {
    test_part(ds)?;
    model.check_dataset(ds, "--data")?;
    evaluate_sample_with(model, ds, ks, sample, &model.item_embeddings()?)
}

/// [`evaluate_sample`] for a model and a dataset it was not trained on, matched by string id: the
/// way to judge yesterday's model on today's dataset (grown by `data import --append-to`) beside
/// today's. Every item of `ds` is embedded through the model's vocabularies (an item new to it from
/// its features and the OOV id row); every sampled test user from their id row (OOV when new to the
/// model) and their history in `ds`'s training part, of which the items the model knows are pooled.
/// Training items of `ds` are excluded, as in [`evaluate`].
pub fn evaluate_by_id(model: &Model, ds: &Dataset, ks: &[usize], sample: EvalSample) -> Result<EvalReport> {
    let test = test_part(ds)?;
    let train = ds.training();
    let kmax = ks.iter().copied().max().unwrap_or(10);
    let (users, relevant, population) = sampled_test_users(test, ds.users.len(), sample);
    let hist = UserHistories::build(train, ds.users.len());
    let to_model: Vec<Option<u32>> = ds
        .items
        .ids()
        .iter()
        .map(|id| model.item_vocab().get(id))
        .collect();
    let ids: Vec<&str> = users.iter().map(|&u| ds.users.id(u)).collect();
    let histories: Vec<Vec<u32>> = users
        .iter()
        .map(|&u| {
            hist.history(u)
                .1
                .iter()
                .filter_map(|&i| to_model[i as usize])
                .collect()
        })
        .collect();
    let q = model.embed_users_by_id(&ids, &histories)?;
    let items = model.embed_items(ds)?;
    let top = top_k_exact(&q, &items, model.dim(), kmax, &|e| hist.history(users[e]).1)?;
    Ok(report(ds, ks, &top, &relevant, population))
}

/// [`evaluate_sample`] with the catalogue's vectors already computed ([`Model::item_embeddings`]), for
/// a caller that uses them for more than this (`report`). The model/dataset pairing is the caller's
/// to check.
pub fn evaluate_sample_with(
    model: &Model,
    ds: &Dataset,
    ks: &[usize],
    sample: EvalSample,
    items: &[f32],
) -> Result<EvalReport> {
    let test = test_part(ds)?;
    let kmax = ks.iter().copied().max().unwrap_or(10);
    let (users, relevant, population) = sampled_test_users(test, ds.users.len(), sample);
    let q = model.embed_user_rows(&users)?;
    let d = model.dim();
    let top = top_k_exact(&q, items, d, kmax, &|e| model.user_items(users[e]))?;
    Ok(report(ds, ks, &top, &relevant, population))
}

/// The report of ranked lists `top` against the `relevant` test items of sampled users, out of
/// `population` test users, with popularity measured on `ds`'s training part.
fn report(
    ds: &Dataset,
    ks: &[usize],
    top: &[Vec<u32>],
    relevant: &[Vec<u32>],
    population: usize,
) -> EvalReport {
    let mut r = EvalReport::with_popularity(top, relevant, ks, &training_popularity(ds));
    r.set_population(population);
    r
}

/// Every item's training popularity in `ds` (its interaction count in the training part).
pub fn training_popularity(ds: &Dataset) -> Popularity {
    Popularity::from_counts(&ds.training().item_counts(ds.items.len()))
}

/// The most-popular-items baseline on the same protocol (popularity = training interaction count).
pub fn popularity_baseline(ds: &Dataset, ks: &[usize]) -> Result<EvalReport> {
    popularity_baseline_sample(ds, ks, EvalSample::ALL)
}

/// [`popularity_baseline`] on the same users as [`evaluate_sample`] with the same `sample`.
pub fn popularity_baseline_sample(ds: &Dataset, ks: &[usize], sample: EvalSample) -> Result<EvalReport> {
    let train = ds.training();
    let n_items = ds.items.len();
    let mut count = vec![0f32; n_items];
    for &i in &train.item {
        if (i as usize) < n_items {
            count[i as usize] += 1.0;
        }
    }
    evaluate_rankings(ds, ks, sample, &|q| select_top(&count, q.k, q.seen))
}

/// What a ranking function passed to [`evaluate_rankings`] is asked for one test user.
pub struct RankingQuery<'a> {
    /// The user's dense id.
    pub user: u32,
    /// Their training items, ascending: excluded from the ranking, as for a model.
    pub seen: &'a [u32],
    /// The time of their first test interaction.
    pub first_test_ts: i64,
    /// How many items to return, best first.
    pub k: usize,
}

/// Any ranking (a baseline, the generator's own distribution) judged exactly as a model is: the same
/// test users, the same sample, the same metrics, popularity measured on the same training part.
pub fn evaluate_rankings(
    ds: &Dataset,
    ks: &[usize],
    sample: EvalSample,
    rank: &(dyn Fn(RankingQuery<'_>) -> Vec<u32> + Sync),
) -> Result<EvalReport> {
    use rayon::prelude::*;
    let test = test_part(ds)?;
    let kmax = ks.iter().copied().max().unwrap_or(10);
    let hist = UserHistories::build(ds.training(), ds.users.len());
    let mut first_ts = vec![i64::MAX; ds.users.len()];
    for (&u, &t) in test.user.iter().zip(&test.ts) {
        if let Some(f) = first_ts.get_mut(u as usize) {
            *f = (*f).min(t);
        }
    }
    let (users, relevant, population) = sampled_test_users(test, ds.users.len(), sample);
    let top: Vec<Vec<u32>> = users
        .par_iter()
        .map(|&u| {
            let mut seen = hist.history(u).1.to_vec();
            seen.sort_unstable();
            seen.dedup();
            rank(RankingQuery {
                user: u,
                seen: &seen,
                first_test_ts: first_ts[u as usize],
                k: kmax,
            })
        })
        .collect();
    Ok(report(ds, ks, &top, &relevant, population))
}

fn test_part(ds: &Dataset) -> Result<&Interactions> {
    ds.test.as_ref().ok_or_else(|| Error::Dataset {
        path: ds.dir.clone(),
        message: "has no test part: run `twotower data split` first".into(),
    })
}

/// Users with test interactions, ascending, and their distinct test items.
fn test_users(test: &Interactions, n_users: usize) -> (Vec<u32>, Vec<Vec<u32>>) {
    let mut per: Vec<Vec<u32>> = vec![Vec::new(); n_users];
    for (&u, &i) in test.user.iter().zip(&test.item) {
        if (u as usize) < n_users {
            per[u as usize].push(i);
        }
    }
    let mut users = Vec::new();
    let mut rel = Vec::new();
    for (u, mut items) in per.into_iter().enumerate() {
        if !items.is_empty() {
            items.sort_unstable();
            items.dedup();
            users.push(u as u32);
            rel.push(items);
        }
    }
    (users, rel)
}

/// The test users `sample` asks for (ascending), their distinct test items, and how many test users
/// there are in all.
fn sampled_test_users(
    test: &Interactions,
    n_users: usize,
    sample: EvalSample,
) -> (Vec<u32>, Vec<Vec<u32>>, usize) {
    let (users, relevant) = test_users(test, n_users);
    let population = users.len();
    if sample.max_users == 0 || population <= sample.max_users {
        return (users, relevant, population);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(sample.seed ^ 0x6576_616c);
    let mut picked = draw(&mut rng, population, sample.max_users).into_vec();
    picked.sort_unstable();
    let u = picked.iter().map(|&i| users[i]).collect();
    let mut relevant = relevant;
    let rel = picked.iter().map(|&i| std::mem::take(&mut relevant[i])).collect();
    (u, rel, population)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(users: u32) -> Interactions {
        let mut t = Interactions::default();
        for u in 0..users {
            t.push(u, u % 7, 1.0, 0);
            t.push(u, 10 + u % 3, 1.0, 1);
        }
        t
    }

    #[test]
    fn a_sample_is_seeded_sorted_and_bounded() {
        let t = log(1000);
        let s = EvalSample {
            max_users: 50,
            seed: 3,
        };
        let (u, rel, pop) = sampled_test_users(&t, 1000, s);
        assert_eq!(pop, 1000);
        assert_eq!(u.len(), 50);
        assert!(u.windows(2).all(|w| w[0] < w[1]));
        for (&user, items) in u.iter().zip(&rel) {
            let mut want = vec![user % 7, 10 + user % 3];
            want.sort_unstable();
            assert_eq!(items, &want, "user {user} keeps their own test items");
        }
        assert_eq!(sampled_test_users(&t, 1000, s).0, u, "same seed, same users");
        assert_ne!(sampled_test_users(&t, 1000, EvalSample { seed: 4, ..s }).0, u);
        let (all, _, _) = sampled_test_users(
            &t,
            1000,
            EvalSample {
                max_users: 5000,
                seed: 3,
            },
        );
        assert_eq!(
            all,
            (0..1000).collect::<Vec<u32>>(),
            "fewer users than the bound: all of them"
        );
        assert_eq!(sampled_test_users(&t, 1000, EvalSample::ALL).0.len(), 1000);
    }
}
