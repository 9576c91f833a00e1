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
        let (items, users) = (ItemFeatures::default(), UserFeatures::default());
        Self::with_data(config, (n_users, n_items), (items, users), fit, 1, rng)
    }

    /// The bench over `fit` rows of `n_users × n_items` with these features, tables seeded by `seed`.
    fn with_data(
        config: Config,
        (n_users, n_items): (usize, usize),
        (item_feats, user_feats): (ItemFeatures, UserFeatures),
        fit: Interactions,
        seed: u64,
        rng: ChaCha8Rng,
    ) -> Result<StepBench> {
        let hist = UserHistories::build(&fit, n_users);
        let layout = FeatureLayout::new(&config, n_users, n_items, &item_feats, &user_feats);
        let net = TwoTower::new(layout, &config, seed)?;
        Ok(StepBench {
            batch: config.train.batch_size,
            config,
            item_feats,
            user_feats,
            fit,
            hist,
            net: Some(net),
            sparse: None,
            rng,
        })
    }

    /// The training step of `config` (one member) on a real dataset: its features, the fit rows of
    /// its validation split and their histories, as `train` builds them. What the scale benchmark
    /// (`twotower bench train`) times.
    pub fn from_dataset(ds: &twotower_data::Dataset, config: &Config) -> Result<StepBench> {
        let mut config = config.clone();
        config.model.members = 1;
        config.validate("bench config")?;
        let tc = &config.train;
        let n_users = ds.users.len();
        let split = super::validation::split_validation(
            ds.training(),
            &twotower_data::UserHistories::build(ds.training(), n_users),
            tc.validation_per_user,
            tc.validation_max_users,
            tc.seed,
        );
        let feats = (
            ItemFeatures::from_dataset(ds, &config)?,
            UserFeatures::from_dataset(ds, &config)?,
        );
        let seed = tc.seed;
        let sizes = (n_users, ds.items.len());
        Self::with_data(
            config,
            sizes,
            feats,
            split.fit,
            seed,
            ChaCha8Rng::seed_from_u64(seed),
        )
    }

    /// Multiply-adds of one step's `[B, C]` products (logits, `dL/dU`, `dL/dV`) and its towers'
    /// dense layers, times two: the floating-point work that a step's time is compared against.
    pub fn step_flops(&self) -> f64 {
        let b = self.batch as f64;
        let c = b + self.config.loss.extra_negatives as f64;
        let Some(net) = &self.net else { return 0.0 };
        let d = net.dim as f64;
        // Forward and the two backward products of every dense weight: 3 × rows × weights.
        let dense: f64 = net
            .dense
            .iter()
            .filter(|p| p.shape.len() == 2)
            .map(|p| (p.shape[0] * p.shape[1]) as f64)
            .sum();
        2.0 * (3.0 * b * c * d + 3.0 * (b + c) / 2.0 * dense)
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
