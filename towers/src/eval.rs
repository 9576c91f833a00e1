//! Offline evaluation on a split dataset's test part: every test user ranks the whole catalogue,
//! training items excluded, for the model and for the most-popular-items baseline.

use twotower_data::{Dataset, Interactions, UserHistories};

use crate::error::{Error, Result};
use crate::kernels::{select_top, top_k_exact};
use crate::metrics::{EvalReport, Popularity};
use crate::model::Model;

/// Evaluates a model on `ds`'s test part: every test user ranks the whole catalogue with their training
/// items excluded; the user vector comes from id, features and the whole training history. Coverage,
/// popularity percentiles and the long-tail share are measured against [`training_popularity`].
pub fn evaluate(model: &Model, ds: &Dataset, ks: &[usize]) -> Result<EvalReport> {
    let test = test_part(ds)?;
    if model.dataset_fingerprint() != ds.fingerprint() {
        return Err(Error::model(
            model.dir(),
            format!(
                "was trained on dataset {} but {} has fingerprint {}; evaluate on the dataset it was trained on",
                model.meta().dataset_dir,
                ds.dir.display(),
                ds.fingerprint()
            ),
        ));
    }
    let kmax = ks.iter().copied().max().unwrap_or(10);
    let (users, relevant) = test_users(test, ds.users.len());
    let all_users = model.user_embeddings()?;
    let d = model.dim();
    let mut q = Vec::with_capacity(users.len() * d);
    for &u in &users {
        q.extend_from_slice(&all_users[u as usize * d..(u as usize + 1) * d]);
    }
    let items = model.item_embeddings()?;
    let top = top_k_exact(&q, &items, d, kmax, &|e| model.user_items(users[e]))?;
    Ok(EvalReport::with_popularity(
        &top,
        &relevant,
        ks,
        &training_popularity(ds),
    ))
}

/// Every item's training popularity in `ds` (its interaction count in the training part).
pub fn training_popularity(ds: &Dataset) -> Popularity {
    Popularity::from_counts(&ds.training().item_counts(ds.items.len()))
}

/// The most-popular-items baseline on the same protocol (popularity = training interaction count).
pub fn popularity_baseline(ds: &Dataset, ks: &[usize]) -> Result<EvalReport> {
    let test = test_part(ds)?;
    let train = ds.training();
    let n_items = ds.items.len();
    let mut count = vec![0f32; n_items];
    for &i in &train.item {
        if (i as usize) < n_items {
            count[i as usize] += 1.0;
        }
    }
    let kmax = ks.iter().copied().max().unwrap_or(10);
    let hist = UserHistories::build(train, ds.users.len());
    let (users, relevant) = test_users(test, ds.users.len());
    let top: Vec<Vec<u32>> = users
        .iter()
        .map(|&u| select_top(&count, kmax, hist.history(u).1))
        .collect();
    Ok(EvalReport::with_popularity(
        &top,
        &relevant,
        ks,
        &training_popularity(ds),
    ))
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
