//! Model and training configuration: every feature is a switch, read from TOML and overridable from the
//! command line. The defaults are the tuned recipe; [`Config::id_only`] is the TFRS basic model.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Training examples per user and item row that `train.epochs = 0` aims at over the whole run
/// (fitted on ML-100K and ml-1m-partial, where 5 and 3 epochs were best).
pub const AUTO_EPOCH_PASSES: f64 = 160.0;

/// The most ensemble members a model may have (`model.members`).
pub const MAX_MEMBERS: usize = 16;

/// The whole configuration of a model and of its training run (stored in `model.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Output space shared by both towers.
    pub model: ModelConfig,
    /// Which item features feed the item tower.
    pub item: ItemTowerConfig,
    /// Which user features feed the user tower.
    pub user: UserTowerConfig,
    /// The retrieval loss.
    pub loss: LossConfig,
    /// Optimisation schedule and bookkeeping.
    pub train: TrainConfig,
}

/// Shape of the shared embedding space.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    /// Dimension `d` of user and item vectors.
    pub dim: usize,
    /// L2-normalise tower outputs so scores are cosines (what the HNSW index expects).
    pub normalize: bool,
    /// Ensemble members: independently trained towers (same settings, different seeds) whose
    /// outputs are concatenated, each scaled by `1/sqrt(members)`, so a score is the members' mean
    /// score and vectors are `members × dim` wide. Two members are worth about +0.003 Recall@10 on
    /// ML-100K and +0.002 on ml-1m-partial (every seed pair measured) for one more training run and
    /// twice the index width; a single model twice as wide is not better.
    pub members: usize,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            dim: 128,
            normalize: true,
            members: 2,
        }
    }
}

/// Item tower inputs. Each enabled feature is an embedding table; their concatenation feeds the MLP.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ItemTowerConfig {
    /// Item-id embedding (plus an out-of-vocabulary row for items unseen in training).
    pub id: bool,
    /// Width of the id embedding.
    pub id_dim: usize,
    /// Mean of genre embeddings.
    pub genres: bool,
    /// Width of the genre embedding.
    pub genre_dim: usize,
    /// Mean of title-token embeddings.
    pub title: bool,
    /// Width of the title-token embedding.
    pub title_dim: usize,
    /// Keep only the most frequent title tokens (by number of items carrying them).
    pub title_vocab: usize,
    /// Further categorical item columns from the dataset.
    pub categorical: bool,
    /// Restrict to these columns (empty = all).
    pub categorical_columns: Vec<String>,
    /// Width of each categorical embedding.
    pub categorical_dim: usize,
    /// Hidden layer widths of the MLP (ReLU); a final linear layer maps to `model.dim`. With no hidden
    /// layer and an input already `model.dim` wide, the tower is the identity (TFRS basic model).
    pub layers: Vec<usize>,
}

impl Default for ItemTowerConfig {
    fn default() -> Self {
        ItemTowerConfig {
            id: true,
            id_dim: 128,
            genres: true,
            genre_dim: 16,
            title: false,
            title_dim: 32,
            title_vocab: 5000,
            categorical: true,
            categorical_columns: Vec::new(),
            categorical_dim: 16,
            layers: Vec::new(),
        }
    }
}

/// User tower inputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UserTowerConfig {
    /// User-id embedding (plus an out-of-vocabulary row: anonymous and new users).
    pub id: bool,
    /// Width of the id embedding.
    pub id_dim: usize,
    /// Categorical user columns (MovieLens: gender, age, occupation, zip prefix).
    pub categorical: bool,
    /// Restrict to these columns (empty = all).
    pub categorical_columns: Vec<String>,
    /// Width of each categorical embedding.
    pub categorical_dim: usize,
    /// Pooled embeddings of the user's most recent items strictly before the target's time.
    pub history: bool,
    /// How many recent items to pool.
    pub history_len: usize,
    /// Weight of the k-th most recent item is `history_decay^k` (1.0 = plain mean).
    pub history_decay: f32,
    /// Width of the history item embedding.
    pub history_dim: usize,
    /// Learn the pooling weights instead of fixing them at `history_decay^k`: each history item's
    /// weight is a softmax over a learned per-position bias (starting at `k · ln history_decay`, so
    /// training starts from the recency mean) plus the item's score against a learned query vector,
    /// which lets the tower lean on the items that say most about a taste and less on those everyone
    /// watched. With `history_dropout` 0.2 it was worth +0.0015 R@10 and +0.0025 R@100 on ML-100K
    /// (mean of four seeds; neither alone was worth more than +0.0008), for about a quarter more
    /// training time.
    pub history_attention: bool,
    /// Training only: each example's history ends a random 0..`history_horizon` interactions before
    /// its target (0 = right before it). Teaches the tower to predict items further ahead than the
    /// next one, which is what serving and evaluation ask (the whole next stretch of a user's
    /// activity), in the spirit of PinnerFormer's dense all-action loss. Inference is unchanged.
    pub history_horizon: usize,
    /// Training only: pool a random subsequence of the history, each item dropped with this
    /// probability (one always stays) and the rest closing ranks, so the attention weights cannot
    /// lean on any single position or item. Applies to the fixed recency weights too, where it made
    /// no measurable difference. Inference is unchanged.
    pub history_dropout: f32,
    /// Pool the history from the item tower's id table instead of a separate table (needs `item.id`
    /// and `history_dim == item.id_dim`): items learn one vector from both sides.
    pub share_item_embeddings: bool,
    /// Hidden layer widths of the MLP; see [`ItemTowerConfig::layers`].
    pub layers: Vec<usize>,
}

impl Default for UserTowerConfig {
    fn default() -> Self {
        UserTowerConfig {
            id: true,
            id_dim: 128,
            categorical: true,
            categorical_columns: Vec::new(),
            categorical_dim: 16,
            history: true,
            history_len: 50,
            history_decay: 0.8,
            history_dim: 128,
            history_attention: true,
            history_horizon: 3,
            history_dropout: 0.2,
            share_item_embeddings: true,
            layers: Vec::new(),
        }
    }
}

/// In-batch sampled softmax settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LossConfig {
    /// Logits are `cosine / temperature` (used as is when `temperature_candidates` is empty).
    pub temperature: f32,
    /// Train once per candidate temperature and keep the model with the best validation recall
    /// (empty: train once at `temperature`). The best value differs between datasets (0.15 on
    /// ML-100K, 0.12 on ml-1m-partial here) and the validation slice picks it: in every comparison
    /// measured, the temperature with the higher validation recall also had the higher test recall.
    /// Costs one training run per candidate. A config file that sets `temperature` alone gets an
    /// empty list, and so does `--temperature`.
    pub temperature_candidates: Vec<f32>,
    /// Subtract log(sampling probability) from every logit (corrects the popularity bias of in-batch
    /// negatives; without it the model falls to popularity level on a temporal split).
    pub logq: bool,
    /// Do not treat another occurrence of the row's positive item in the batch as a negative.
    pub remove_accidental_hits: bool,
    /// Do not treat the other items a row's user interacted with in training as that row's negatives:
    /// they are positives of the same user, and evaluation and serving exclude them anyway, so
    /// pushing them down only costs the tower capacity. In a small catalogue a batch holds dozens of
    /// them per row (about 60 of 1024 columns on ML-100K).
    pub mask_seen_items: bool,
    /// Extra negatives per batch sampled uniformly from the catalogue (mixed negative sampling).
    pub extra_negatives: usize,
    /// Learn the temperature with the weights (CLIP's learned logit scale), starting from
    /// `temperature`: the best value differs between datasets (0.2 on ML-100K, 0.1 on ML-1M in the
    /// prototype), and a fixed default fits neither.
    pub learn_temperature: bool,
}

impl Default for LossConfig {
    fn default() -> Self {
        LossConfig {
            temperature: 0.15,
            temperature_candidates: vec![0.12, 0.15, 0.2],
            logq: true,
            remove_accidental_hits: true,
            mask_seen_items: false,
            extra_negatives: 0,
            learn_temperature: false,
        }
    }
}

/// Which row-wise optimizer updates the embedding tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SparseOptimizerKind {
    /// Adagrad with one accumulator per weight.
    Adagrad,
    /// Adam whose moments decay only for the rows a batch touches (TF `LazyAdam`).
    LazyAdam,
}

/// Learning-rate schedule after warm-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LrDecay {
    /// Keep the peak rate.
    Constant,
    /// Linear to `final_lr_fraction` of the peak at the last step.
    Linear,
    /// Half-cosine to `final_lr_fraction` of the peak at the last step.
    Cosine,
}

/// Optimisation and bookkeeping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Maximum number of passes over the training interactions; 0 = from the data: about
    /// [`AUTO_EPOCH_PASSES`] training examples per user and item row over the run, 2 to 10 epochs
    /// (5 on ML-100K, 3 on ml-1m-partial, whose rows have twice the examples and overfit sooner).
    pub epochs: usize,
    /// Interactions per step (also the number of in-batch negatives).
    pub batch_size: usize,
    /// Peak AdamW rate of the dense (MLP) weights.
    pub lr: f32,
    /// Peak rate of the sparse embedding optimizer.
    pub embedding_lr: f32,
    /// The sparse optimizer.
    pub sparse_optimizer: SparseOptimizerKind,
    /// AdamW decoupled weight decay of the dense weights.
    pub weight_decay: f32,
    /// Linear warm-up steps from 0 to the peak rates.
    pub warmup_steps: usize,
    /// Schedule after warm-up.
    pub lr_decay: LrDecay,
    /// Rate at the last step, as a fraction of the peak.
    pub final_lr_fraction: f32,
    /// Seed of initialisation, shuffling and negative sampling.
    pub seed: u64,
    /// Worker threads (0 = all cores). Results are reproducible for a fixed seed and thread count.
    pub threads: usize,
    /// Hold out each user's last N training interactions for per-epoch validation (0 = none).
    pub validation_per_user: usize,
    /// Validation metric is Recall@`validation_k`.
    pub validation_k: usize,
    /// Validate on at most this many users (a deterministic sample) to keep epochs fast.
    pub validation_max_users: usize,
    /// Stop after this many epochs without validation improvement (0 = never stop early).
    pub patience: usize,
    /// Once validation has chosen the temperature and the epoch count, train the final model again
    /// with them on every training row, the validation slice included (one more run; needs
    /// `validation_per_user > 0` and a fixed temperature).
    pub refit: bool,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 0,
            batch_size: 1024,
            lr: 0.005,
            embedding_lr: 0.005,
            sparse_optimizer: SparseOptimizerKind::LazyAdam,
            weight_decay: 0.0,
            warmup_steps: 20,
            lr_decay: LrDecay::Cosine,
            final_lr_fraction: 0.1,
            seed: 42,
            threads: 0,
            validation_per_user: 1,
            validation_k: 100,
            validation_max_users: 5000,
            patience: 2,
            refit: true,
        }
    }
}

impl Config {
    /// The TFRS basic retrieval model: user id and item id embeddings of width `dim`, dot product.
    pub fn id_only() -> Config {
        let mut c = Config::default();
        c.item.genres = false;
        c.item.title = false;
        c.item.categorical = false;
        c.item.layers.clear();
        c.item.id_dim = c.model.dim;
        c.user.categorical = false;
        c.user.history = false;
        c.user.layers.clear();
        c.user.id_dim = c.model.dim;
        c.model.members = 1;
        // One run at a fixed temperature, like the TFRS tutorial (and a fast throughput baseline).
        c.loss.temperature_candidates.clear();
        c
    }

    /// Reads a TOML file; unknown keys (a misspelt feature) are errors naming the file.
    pub fn from_toml_file(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Config::from_toml_str(&text, &path.display().to_string())
    }

    /// Parses TOML text; `origin` names it in errors.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Config> {
        let mut c: Config = toml::from_str(text).map_err(|e| Error::config(origin, e.to_string()))?;
        // A file that fixes the temperature means it: no search unless it also lists candidates.
        let raw: toml::Table = toml::from_str(text).map_err(|e| Error::config(origin, e.to_string()))?;
        let loss = raw.get("loss").and_then(|l| l.as_table());
        if loss.is_some_and(|l| l.contains_key("temperature") && !l.contains_key("temperature_candidates")) {
            c.loss.temperature_candidates.clear();
        }
        c.validate(origin)?;
        Ok(c)
    }

    /// Serialises to TOML (what `twotower train --print-config` shows).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }

    /// Checks value ranges and that each tower has at least one input.
    pub fn validate(&self, origin: &str) -> Result<()> {
        let err = |m: String| Err(Error::config(origin, m));
        if self.model.dim == 0 {
            return err("model.dim must be > 0".into());
        }
        if !(1..=MAX_MEMBERS).contains(&self.model.members) {
            return err(format!("model.members must be 1 to {MAX_MEMBERS}"));
        }
        if !(self.item.id || self.item.genres || self.item.title || self.item.categorical) {
            return err("the item tower has no input: enable at least one of item.id, item.genres, item.title, item.categorical".into());
        }
        if !(self.user.id || self.user.categorical || self.user.history) {
            return err(
                "the user tower has no input: enable at least one of user.id, user.categorical, user.history"
                    .into(),
            );
        }
        for (name, v) in [
            ("item.id_dim", self.item.id_dim),
            ("item.genre_dim", self.item.genre_dim),
            ("item.title_dim", self.item.title_dim),
            ("item.categorical_dim", self.item.categorical_dim),
            ("user.id_dim", self.user.id_dim),
            ("user.categorical_dim", self.user.categorical_dim),
            ("user.history_dim", self.user.history_dim),
            ("train.batch_size", self.train.batch_size),
            ("train.validation_k", self.train.validation_k),
        ] {
            if v == 0 {
                return err(format!("{name} must be > 0"));
            }
        }
        if self.item.layers.contains(&0) || self.user.layers.contains(&0) {
            return err("layer widths must be > 0".into());
        }
        if self.user.history && self.user.history_len == 0 {
            return err("user.history_len must be > 0 when user.history is on".into());
        }
        if self.user.history && self.user.share_item_embeddings {
            if !self.item.id {
                return err("user.share_item_embeddings needs item.id = true".into());
            }
            if self.user.history_dim != self.item.id_dim {
                return err(format!(
                    "dimension mismatch: user.history_dim = {} but item.id_dim = {}; they must be equal \
                     when user.share_item_embeddings is on",
                    self.user.history_dim, self.item.id_dim
                ));
            }
        }
        if !(self.user.history_decay > 0.0 && self.user.history_decay <= 1.0) {
            return err(format!(
                "user.history_decay must be in (0, 1], got {}",
                self.user.history_decay
            ));
        }
        if !(0.0..1.0).contains(&self.user.history_dropout) {
            return err(format!(
                "user.history_dropout must be in [0, 1), got {}",
                self.user.history_dropout
            ));
        }
        if !(self.loss.temperature.is_finite() && self.loss.temperature > 0.0) {
            return err(format!(
                "loss.temperature must be > 0, got {}",
                self.loss.temperature
            ));
        }
        for (name, v) in [
            ("train.lr", self.train.lr),
            ("train.embedding_lr", self.train.embedding_lr),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return err(format!("{name} must be > 0, got {v}"));
            }
        }
        if !(0.0..=1.0).contains(&self.train.final_lr_fraction) {
            return err("train.final_lr_fraction must be in [0, 1]".into());
        }
        if let Some(t) = self
            .loss
            .temperature_candidates
            .iter()
            .find(|t| !(t.is_finite() && **t > 0.0))
        {
            return err(format!("loss.temperature_candidates must all be > 0, got {t}"));
        }
        self.check_memory(origin)?;
        Ok(())
    }

    /// Refuses sizes whose buffers cannot be allocated, before anything is: a mistyped
    /// `--history-len 4294967296` or `--layers 100000,100000` would otherwise abort the process on
    /// a failed allocation. The catalogue's size is not known here, so each estimate counts what
    /// the setting alone makes the trainer allocate: dense weights with their gradient and two Adam
    /// moments (16 bytes a parameter), and one training step's activations and their gradients for
    /// `train.batch_size` examples. (The logits of `train.batch_size` × `loss.extra_negatives` are
    /// checked with the catalogue when training starts.)
    fn check_memory(&self, origin: &str) -> Result<()> {
        let b = self.train.batch_size as u128;
        let refuse = |setting: &str, value: String, bytes: u128, what: &str| {
            Err(Error::config(
                origin,
                format!(
                    "{setting} = {value} needs about {} for {what}, over the {} GiB a setting may ask \
                     for; choose a smaller value",
                    human_bytes(bytes),
                    CONFIG_MEMORY_LIMIT >> 30
                ),
            ))
        };
        // The in-batch logits: batch × batch scores and their gradient.
        let logits = b.saturating_mul(b).saturating_mul(8);
        if logits > CONFIG_MEMORY_LIMIT {
            return refuse(
                "train.batch_size (--batch-size)",
                b.to_string(),
                logits,
                "one training step's in-batch logits and their gradient",
            );
        }
        // Per-row widths: every example's row and its gradient, a few times over (pooling, MLP input).
        for (setting, on, w) in [
            ("model.dim (--dim)", true, self.model.dim),
            ("item.id_dim", self.item.id, self.item.id_dim),
            ("item.genre_dim", self.item.genres, self.item.genre_dim),
            ("item.title_dim", self.item.title, self.item.title_dim),
            (
                "item.categorical_dim",
                self.item.categorical,
                self.item.categorical_dim,
            ),
            ("user.id_dim", self.user.id, self.user.id_dim),
            (
                "user.categorical_dim",
                self.user.categorical,
                self.user.categorical_dim,
            ),
            ("user.history_dim", self.user.history, self.user.history_dim),
        ] {
            let bytes = (b + 1).saturating_mul(w as u128).saturating_mul(32);
            if on && bytes > CONFIG_MEMORY_LIMIT {
                return refuse(
                    setting,
                    w.to_string(),
                    bytes,
                    &format!("one training step's rows of {b} examples and their gradients"),
                );
            }
        }
        // The learned attention keeps one weight per history position.
        if self.user.history && self.user.history_attention {
            let bytes = (self.user.history_len as u128).saturating_mul(16);
            if bytes > CONFIG_MEMORY_LIMIT {
                return refuse(
                    "user.history_len (--history-len)",
                    self.user.history_len.to_string(),
                    bytes,
                    "the attention's per-position weights and their optimiser state",
                );
            }
        }
        // MLP weight matrices (and their optimiser state) and a step's activations.
        let cats = |on: bool, cols: &[String], dim: usize| {
            if on {
                cols.len().max(1) as u128 * dim as u128
            } else {
                0
            }
        };
        let item_in = [
            (self.item.id, self.item.id_dim),
            (self.item.genres, self.item.genre_dim),
            (self.item.title, self.item.title_dim),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|&(_, d)| d as u128)
        .sum::<u128>()
            + cats(
                self.item.categorical,
                &self.item.categorical_columns,
                self.item.categorical_dim,
            );
        let user_in = [
            (self.user.id, self.user.id_dim),
            (self.user.history, self.user.history_dim),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|&(_, d)| d as u128)
        .sum::<u128>()
            + cats(
                self.user.categorical,
                &self.user.categorical_columns,
                self.user.categorical_dim,
            );
        for (setting, layers, input) in [
            ("item.layers (--layers)", &self.item.layers, item_in),
            ("user.layers (--layers)", &self.user.layers, user_in),
        ] {
            if layers.is_empty() {
                continue;
            }
            let mut widths: Vec<u128> = vec![input.max(1)];
            widths.extend(layers.iter().map(|&w| w as u128));
            widths.push(self.model.dim as u128);
            let params = widths.windows(2).fold(0u128, |acc, w| {
                acc.saturating_add(w[0].saturating_mul(w[1]) + w[1])
            });
            let acts = widths.iter().fold(0u128, |acc, &w| acc.saturating_add(w));
            let bytes = params
                .saturating_mul(16)
                .saturating_add(b.saturating_mul(acts).saturating_mul(12));
            if bytes > CONFIG_MEMORY_LIMIT {
                let list: Vec<String> = layers.iter().map(usize::to_string).collect();
                return refuse(
                    setting,
                    format!("[{}]", list.join(", ")),
                    bytes,
                    &format!(
                        "the MLP's weight matrices ({params} parameters with gradients and optimiser \
                         state) and one step's activations"
                    ),
                );
            }
        }
        Ok(())
    }
}

/// The most memory one size setting may ask for (see [`Config::check_memory`]).
pub const CONFIG_MEMORY_LIMIT: u128 = 16 << 30;

/// `1.5 GiB`, `40.0 TiB`.
fn human_bytes(n: u128) -> String {
    let units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} bytes")
    } else {
        format!("{v:.1} {}", units[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_round_trips_through_toml() {
        let c = Config::default();
        let back = Config::from_toml_str(&c.to_toml(), "test").unwrap();
        assert_eq!(c, back);
    }

    #[test]
    fn unknown_feature_is_an_error_naming_origin() {
        let e = Config::from_toml_str("[item]\nidd = true\n", "my.toml").unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("my.toml") && msg.contains("idd"), "{msg}");
    }

    #[test]
    fn partial_file_keeps_defaults() {
        let c = Config::from_toml_str("[loss]\ntemperature = 0.05\n", "t").unwrap();
        assert_eq!(c.loss.temperature, 0.05);
        assert_eq!(c.model.dim, 128);
    }

    #[test]
    fn empty_tower_rejected() {
        let e = Config::from_toml_str("[user]\nid = false\ncategorical = false\nhistory = false\n", "t")
            .unwrap_err();
        assert!(e.to_string().contains("user tower has no input"));
    }

    #[test]
    fn members_out_of_range_rejected() {
        for k in [0, MAX_MEMBERS + 1] {
            let e = Config::from_toml_str(&format!("[model]\nmembers = {k}\n"), "m.toml").unwrap_err();
            assert!(
                e.to_string().contains("m.toml") && e.to_string().contains("model.members"),
                "{e}"
            );
        }
        assert_eq!(
            Config::from_toml_str("[model]\nmembers = 3\n", "t")
                .unwrap()
                .model
                .members,
            3
        );
        assert_eq!(
            Config::id_only().model.members,
            1,
            "the TFRS basic model is one model"
        );
    }

    #[test]
    fn shared_history_dimension_mismatch_names_both_keys() {
        let e = Config::from_toml_str(
            "[item]\nid_dim = 32\n[user]\nshare_item_embeddings = true\nhistory_dim = 48\n",
            "cfg.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("cfg.toml") && e.contains("history_dim = 48") && e.contains("id_dim = 32"),
            "{e}"
        );
    }

    #[test]
    fn id_only_is_identity_towers() {
        let c = Config::id_only();
        assert!(c.item.id && !c.item.genres && !c.user.history);
        assert_eq!(c.item.id_dim, c.model.dim);
    }

    #[test]
    fn a_file_that_fixes_the_temperature_gets_no_search() {
        assert_eq!(
            Config::default().loss.temperature_candidates,
            vec![0.12, 0.15, 0.2]
        );
        let c = Config::from_toml_str("[loss]\ntemperature = 0.1\n", "t").unwrap();
        assert!(c.loss.temperature_candidates.is_empty());
        let c = Config::from_toml_str(
            "[loss]\ntemperature = 0.1\ntemperature_candidates = [0.1, 0.2]\n",
            "t",
        )
        .unwrap();
        assert_eq!(c.loss.temperature_candidates, vec![0.1, 0.2]);
        // What `--print-config` writes reads back the same.
        let back = Config::from_toml_str(&Config::default().to_toml(), "t").unwrap();
        assert_eq!(back, Config::default());
        let e = Config::from_toml_str("[loss]\ntemperature_candidates = [0.1, 0.0]\n", "t").unwrap_err();
        assert!(e.to_string().contains("temperature_candidates"), "{e}");
    }

    #[test]
    fn sizes_that_cannot_be_allocated_are_refused_naming_the_setting() {
        let e = Config::from_toml_str("[user]\nhistory_len = 4294967296\n", "h.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("user.history_len") && e.contains("GiB"), "{e}");
        let e = Config::from_toml_str("[item]\nlayers = [100000, 100000]\n", "l.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("item.layers") && e.contains("GiB"), "{e}");
        let e = Config::from_toml_str("[model]\ndim = 1000000000\n", "d.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("model.dim"), "{e}");
        // Generous sizes still pass.
        Config::from_toml_str(
            "[model]\ndim = 512\n[item]\nlayers = [4096, 4096]\n[user]\nhistory_len = 100000\n",
            "ok.toml",
        )
        .unwrap();
    }

    #[test]
    fn history_horizon_reads_and_round_trips() {
        assert_eq!(Config::default().user.history_horizon, 3);
        let c = Config::from_toml_str("[user]\nhistory_horizon = 5\n", "t").unwrap();
        assert_eq!(c.user.history_horizon, 5);
        let back = Config::from_toml_str(&c.to_toml(), "t").unwrap();
        assert_eq!(back.user.history_horizon, 5);
        assert_eq!(back, c);
    }
}
