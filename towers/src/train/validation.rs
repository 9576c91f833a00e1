//! The validation slice (each sampled user's latest training interactions, held out of the fit
//! rows) and the validation recall that picks epochs and temperatures.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use twotower_data::{Interactions, UserHistories};

use crate::error::Result;
use crate::features::{ItemFeatures, UserFeatures};
use crate::kernels::top_k_exact_chunked;
use crate::metrics::EvalReport;
use crate::tower::{Side, TwoTower};

/// The training data view: fit rows (validation slice removed) and the held-out validation rows.
pub(super) struct Split {
    pub(super) fit: Interactions,
    pub(super) val_users: Vec<u32>,
    /// Per validation user, the time of the first held-out interaction (the history ends before it).
    pub(super) val_ts: Vec<i64>,
    pub(super) val_items: Vec<Vec<u32>>,
}

/// Holds out each user's last `per_user` training interactions (by (ts, item)) when the user keeps at
/// least one other; samples at most `max_users` validation users deterministically. `hist` are the
/// histories of `train` (built once by the caller, who shares them).
pub(super) fn split_validation(
    train: &Interactions,
    hist: &UserHistories,
    per_user: usize,
    max_users: usize,
    seed: u64,
) -> Split {
    let n_users = hist.n_users();
    let mut held = vec![false; train.len()];
    let mut val_users = Vec::new();
    let mut val_ts = Vec::new();
    let mut val_items = Vec::new();
    if per_user > 0 {
        let mut cands: Vec<u32> = (0..n_users as u32)
            .filter(|&u| hist.history(u).1.len() > per_user)
            .collect();
        if cands.len() > max_users {
            let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x76616c);
            for i in 0..max_users {
                let j = rng.gen_range(i..cands.len());
                cands.swap(i, j);
            }
            cands.truncate(max_users);
            cands.sort_unstable();
        }
        let mut is_val = vec![false; n_users];
        for &u in &cands {
            is_val[u as usize] = true;
            let (ts, items) = hist.history(u);
            let n = items.len();
            val_users.push(u);
            val_ts.push(ts[n - per_user]);
            val_items.push(items[n - per_user..].to_vec());
        }
        // Mark the held-out rows in the original interaction order: per user, the rows whose (ts, item)
        // is among the last `per_user`.
        let mut cut: Vec<Option<(i64, u32)>> = vec![None; n_users];
        for &u in &cands {
            let (ts, items) = hist.history(u);
            let n = items.len();
            cut[u as usize] = Some((ts[n - per_user], items[n - per_user]));
        }
        for (r, h) in held.iter_mut().enumerate() {
            let u = train.user[r] as usize;
            if u < n_users && is_val[u] {
                if let Some(c) = cut[u] {
                    *h = (train.ts[r], train.item[r]) >= c;
                }
            }
        }
    }
    let keep: Vec<usize> = (0..train.len()).filter(|&r| !held[r]).collect();
    Split {
        fit: train.select(&keep),
        val_users,
        val_ts,
        val_items,
    }
}

/// Items embedded and ranked at a time by [`validate`]: one embedding pass of 16,384 items, as a
/// whole-catalogue pass makes them (the same vectors), about 8 MB of vectors at d = 128.
const VALIDATION_ITEM_CHUNK: usize = 16_384;

/// Validation Recall@k: each validation user embedded from what preceded the held-out interactions,
/// ranked against the whole catalogue, their fit items excluded.
pub(super) fn validate(
    net: &TwoTower,
    split: &Split,
    fit_hist: &UserHistories,
    item_feats: &ItemFeatures,
    user_feats: &UserFeatures,
    k: usize,
) -> Result<f64> {
    let layout = &net.layout;
    let vu = &split.val_users;
    let bags = layout.user_bags(
        user_feats,
        vu.len(),
        |e| vu[e],
        |e| Some(vu[e]),
        |e| fit_hist.before(vu[e], split.val_ts[e]),
    );
    let users = net.embed(Side::User, &bags)?;
    // The catalogue is embedded and ranked a chunk at a time: a 1 M-item catalogue's vectors are
    // never all in memory beside the training state.
    let mut embed = |s: usize, e: usize| -> Result<Vec<f32>> {
        let rows: Vec<u32> = (s as u32..e as u32).collect();
        net.embed(Side::Item, &layout.item_bags(item_feats, &rows, &rows))
    };
    let top = top_k_exact_chunked(
        &users,
        layout.n_items,
        net.dim,
        k,
        VALIDATION_ITEM_CHUNK,
        &mut embed,
        &|e| fit_hist.history(vu[e]).1,
    )?;
    let report = EvalReport::from_rankings(&top, &split.val_items, &[k]);
    Ok(report.recall[0])
}
