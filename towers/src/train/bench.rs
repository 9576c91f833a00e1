//! A training step on synthetic ids for the step-time and memory benchmarks (not part of the API).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use twotower_data::{Interactions, UserHistories};

use super::step::{BlockWorkspace, Trainer};
use crate::config::Config;
use crate::embedding_bag::RowGrads;
use crate::error::{Error, Result};
use crate::features::{FeatureLayout, ItemFeatures, UserFeatures};
use crate::sparse_optim::SparseState;
use crate::tower::TwoTower;

/// A training step on synthetic ids, for the step-time and memory benchmarks: `n_users × n_items`
/// id-only tables of width `dim`, batches of `batch` random (user, item) pairs. Not part of the API.
#[doc(hidden)]
pub struct StepBench {
    config: Config,
    item_feats: ItemFeatures,
    user_feats: UserFeatures,
    fit: Interactions,
    hist: UserHistories,
    net: Option<TwoTower>,
    #[allow(clippy::type_complexity)]
    sparse: Option<(Vec<SparseState>, Vec<RowGrads>, Vec<f32>, u64, BlockWorkspace)>,
    batch: usize,
    rng: ChaCha8Rng,
}

impl StepBench {
    /// Builds the tables (this is where the memory goes).
    pub fn new(
        n_users: usize,
        n_items: usize,
        dim: usize,
        batch: usize,
        config: Option<Config>,
    ) -> Result<StepBench> {
        let mut config = config.unwrap_or_else(Config::id_only);
        config.model.dim = dim;
        config.item.id_dim = dim;
        config.user.id_dim = dim;
        config.user.history_dim = dim;
        config.train.batch_size = batch;
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut fit = Interactions::default();
        for k in 0..batch * 64 {
            fit.push(
                rng.gen_range(0..n_users as u32),
                rng.gen_range(0..n_items as u32),
                1.0,
                k as i64,
            );
        }
        let hist = UserHistories::build(&fit, n_users);
        let item_feats = ItemFeatures::default();
        let user_feats = UserFeatures::default();
        let layout = FeatureLayout::new(&config, n_users, n_items, &item_feats, &user_feats);
        let net = TwoTower::new(layout, &config, 1)?;
        Ok(StepBench {
            config,
            item_feats,
            user_feats,
            fit,
            hist,
            net: Some(net),
            sparse: None,
            batch,
            rng,
        })
    }

    /// Runs one step on a random batch; returns the loss. The optimizer state, row gradients and item
    /// frequencies persist across steps (as in a real run), so nothing table-sized is allocated here.
    pub fn step(&mut self) -> Result<f32> {
        let n = self.fit.len() as u32;
        let batch: Vec<u32> = (0..self.batch).map(|_| self.rng.gen_range(0..n)).collect();
        let net = self
            .net
            .take()
            .ok_or_else(|| Error::Invalid("bench state lost".into()))?;
        let mut t = match self.sparse.take() {
            Some((sparse, grads, freq, step, block_ws)) => Trainer {
                config: &self.config,
                net,
                sparse,
                grads,
                item_feats: &self.item_feats,
                user_feats: &self.user_feats,
                fit: &self.fit,
                hist: &self.hist,
                freq,
                step,
                total_steps: 1_000_000,
                block_ws,
                log_inv_t: [(1.0 / self.config.loss.temperature).ln(), 0.0, 0.0],
                col_head: Vec::new(),
            },
            None => Trainer::new(
                &self.config,
                net,
                &self.item_feats,
                &self.user_feats,
                &self.fit,
                &self.hist,
                1_000_000,
            ),
        };
        let loss = t.step(&batch);
        self.sparse = Some((t.sparse, t.grads, t.freq, t.step, t.block_ws));
        self.net = Some(t.net);
        loss
    }
}
