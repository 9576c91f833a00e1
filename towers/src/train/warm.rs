//! Warm start (`train --init-from MODEL`): a new model that begins where an earlier one ended, on
//! a dataset whose vocabularies may have grown since (`data import --append-to`).
//!
//! Rows are matched by string id, never by dense index: a user, item, genre, title word or
//! categorical value the earlier model knew gets its row copied bit for bit, the OOV row is copied,
//! and ids that are new get the fresh initialisation a model trained from scratch with the same
//! seed would give them. Dense layers (MLPs, history attention) are copied whole. Optimiser state is
//! not carried: a model directory keeps the best epoch's weights, and the only moments saved (the
//! last epoch's checkpoint) belong to other weights, so every run starts its Adam/Adagrad state at
//! zero, as the learning-rate warm-up expects.
//!
//! A warm start trains one run per member at the earlier model's temperature (no search, no
//! refit), on every training row or only the rows from `train_from` on, plus a seeded `replay`
//! share of the older ones. Histories are built from every training row either way, so an example
//! of the window still sees the user's older items.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use twotower_data::{Dataset, Vocabulary};

use crate::config::Config;
use crate::embedding_bag::EmbeddingTable;
use crate::error::{Error, Result};
use crate::features::{FeatureLayout, ItemFeatures, UserFeatures};
use crate::model::Model;
use crate::tower::TwoTower;

/// Epochs a warm start trains when `--epochs` is not given (chosen on the temporal replay
/// benchmark, docs/PERFORMANCE.md).
pub const WARM_START_EPOCHS: usize = 2;

/// What `--init-from` and its companions ask for.
#[derive(Debug, Clone, PartialEq)]
pub struct WarmStart {
    /// The model to start from.
    pub from: PathBuf,
    /// Train on the training rows at or after this time (epoch seconds) only; None: every row.
    pub train_from: Option<i64>,
    /// With `train_from`, also replay this share (0..=1) of the older rows, drawn with the seed.
    pub replay: f32,
}

/// What a warm start did, recorded in `plan.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WarmStartRecord {
    /// The model it started from, as given.
    pub from: String,
    /// That model's fingerprint.
    pub fingerprint: String,
    /// Training rows from this time on (epoch seconds); None: every row.
    pub train_from: Option<i64>,
    /// Share of the older rows replayed.
    pub replay: f32,
    /// Per table of the first member: rows copied from the earlier model and rows new to it.
    pub tables: Vec<TableCopy>,
}

/// One table's warm start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableCopy {
    /// Table name (`item.id`, `user.history`, …).
    pub name: String,
    /// Rows copied by string id (the OOV row included).
    pub copied: usize,
    /// Rows freshly initialised (ids the earlier model never saw).
    pub new: usize,
}

impl WarmStart {
    /// Refuses a `replay` outside 0..=1, or one without `train_from` (it would replay everything).
    pub fn validate(&self) -> Result<()> {
        if !(0.0..=1.0).contains(&self.replay) {
            return Err(Error::Invalid(format!(
                "--replay must be in [0, 1], got {}",
                self.replay
            )));
        }
        if self.replay > 0.0 && self.train_from.is_none() {
            return Err(Error::Invalid(
                "--replay needs --train-from: it replays a share of the rows before that time".into(),
            ));
        }
        Ok(())
    }

    /// Whether training row `r` of `train` is an example of this warm start (deterministic in the
    /// seed and the row's content, not its position).
    pub(super) fn keeps(&self, ts: i64, user: u32, item: u32, seed: u64) -> bool {
        match self.train_from {
            None => true,
            Some(t) if ts >= t => true,
            Some(_) if self.replay <= 0.0 => false,
            Some(_) => {
                let h = splitmix(seed ^ ((user as u64) << 32 | item as u64) ^ (ts as u64).rotate_left(17));
                ((h >> 11) as f64 / (1u64 << 53) as f64) < self.replay as f64
            }
        }
    }
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Reads the configuration a model was trained with (`model.json` only): what a warm start begins
/// from before flags override it.
pub fn model_config(dir: &Path) -> Result<Config> {
    Ok(crate::model::read_meta(dir)?.config)
}

/// The vocabularies every table is indexed by, for one side of a warm start.
struct Vocabs<'a> {
    users: &'a Vocabulary,
    items: &'a Vocabulary,
    item_feats: &'a ItemFeatures,
    user_feats: &'a UserFeatures,
}

impl Vocabs<'_> {
    /// The vocabulary of table `name` (rows are its ids, then the OOV row).
    fn of(&self, name: &str) -> Option<&Vocabulary> {
        fn cat<'v>(cats: &'v [twotower_data::Categorical], n: &str) -> Option<&'v Vocabulary> {
            cats.iter().find(|c| c.name == n).map(|c| &c.vocab)
        }
        match name {
            "user.id" => Some(self.users),
            "user.history" | "item.id" => Some(self.items),
            "item.genres" => Some(&self.item_feats.genre_vocab),
            "item.title" => Some(&self.item_feats.token_vocab),
            _ => {
                if let Some(n) = name.strip_prefix("user.cat.") {
                    cat(&self.user_feats.categorical, n)
                } else if let Some(n) = name.strip_prefix("item.cat.") {
                    cat(&self.item_feats.categorical, n)
                } else {
                    None
                }
            }
        }
    }
}

/// The earlier model, loaded once for the whole plan; each member's network is handed over once
/// and freed as soon as its rows are copied.
pub(super) struct WarmSource {
    pub(super) opts: WarmStart,
    fingerprint: String,
    config: Config,
    users: Vocabulary,
    items: Vocabulary,
    item_feats: ItemFeatures,
    user_feats: UserFeatures,
    nets: Mutex<Vec<Option<TwoTower>>>,
    record: Mutex<Option<WarmStartRecord>>,
}

impl WarmSource {
    /// Loads the model `opts.from` (every checksum verified).
    pub(super) fn load(opts: &WarmStart) -> Result<WarmSource> {
        opts.validate()?;
        let m = Model::load(&opts.from)?;
        let fingerprint = m.fingerprint().to_string();
        let Model {
            meta,
            users,
            items,
            item_feats,
            user_feats,
            nets,
            ..
        } = m;
        Ok(WarmSource {
            opts: opts.clone(),
            fingerprint,
            config: meta.config,
            users,
            items,
            item_feats,
            user_feats,
            nets: Mutex::new(nets.into_iter().map(Some).collect()),
            record: Mutex::new(None),
        })
    }

    /// Refuses a configuration whose networks cannot take the earlier model's weights, naming
    /// every setting that differs. Training-only settings (loss, schedule, history dropout and
    /// horizon) may differ.
    pub(super) fn check(&self, config: &Config) -> Result<()> {
        let mut diffs = Vec::new();
        let mut cmp = |section: &str, old: serde_json::Value, new: serde_json::Value, skip: &[&str]| {
            if let (Some(o), Some(n)) = (old.as_object(), new.as_object()) {
                for (k, ov) in o {
                    if skip.contains(&k.as_str()) {
                        continue;
                    }
                    let nv = n.get(k).cloned().unwrap_or(serde_json::Value::Null);
                    if &nv != ov {
                        diffs.push(format!("{section}.{k}: {ov} in the model, {nv} here"));
                    }
                }
            }
        };
        cmp("model", json(&self.config.model), json(&config.model), &[]);
        cmp(
            "user",
            json(&self.config.user),
            json(&config.user),
            &["history_dropout", "history_horizon"],
        );
        cmp("item", json(&self.config.item), json(&config.item), &[]);
        if diffs.is_empty() {
            return Ok(());
        }
        Err(Error::model(
            &self.opts.from,
            format!(
                "cannot warm-start from it: its networks differ from this configuration ({}). \
                 Train from scratch, or keep these settings as the model has them",
                diffs.join("; ")
            ),
        ))
    }

    /// Member `member`'s network for `layout` (the new dataset's vocabularies): the fresh network
    /// of `seed` with every known row and every dense weight of the earlier model copied in.
    pub(super) fn init(
        &self,
        member: usize,
        layout: FeatureLayout,
        config: &Config,
        seed: u64,
        ds: &Dataset,
        item_feats: &ItemFeatures,
        user_feats: &UserFeatures,
    ) -> Result<TwoTower> {
        let old = self
            .nets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(member)
            .and_then(Option::take)
            .ok_or_else(|| {
                Error::model(
                    &self.opts.from,
                    format!(
                        "has no ensemble member {} to start member {} from",
                        member + 1,
                        member + 1
                    ),
                )
            })?;
        let fresh = TwoTower::new(layout.clone(), config, seed)?;
        let new_v = Vocabs {
            users: &ds.users,
            items: &ds.items,
            item_feats,
            user_feats,
        };
        let old_v = Vocabs {
            users: &self.users,
            items: &self.items,
            item_feats: &self.item_feats,
            user_feats: &self.user_feats,
        };
        let mut copies = Vec::new();
        let mut tables = Vec::with_capacity(fresh.tables.len());
        let TwoTower {
            tables: fresh_tables, ..
        } = fresh;
        for mut t in fresh_tables {
            let bad = |m: String| Error::model(&self.opts.from, format!("table {}: {m}", t.name));
            let o = old
                .tables
                .iter()
                .find(|o| o.name == t.name)
                .ok_or_else(|| bad("the model has no such table".into()))?;
            if o.dim != t.dim {
                return Err(bad(format!("width {} in the model, {} here", o.dim, t.dim)));
            }
            let (nv, ov) = match (new_v.of(&t.name), old_v.of(&t.name)) {
                (Some(n), Some(o)) => (n, o),
                _ => return Err(bad("no vocabulary indexes it".into())),
            };
            if nv.len() + 1 != t.rows || ov.len() + 1 != o.rows {
                return Err(bad("its rows do not match its vocabulary".into()));
            }
            copies.push(copy_rows(&mut t, o, nv, ov));
            tables.push(t);
        }
        // Fresh optimiser state (see the module docs): the moments start at zero.
        let mut dense = old.dense;
        for p in &mut dense {
            p.m = vec![0.0; p.value.len()];
            p.v = vec![0.0; p.value.len()];
        }
        let net = TwoTower::from_parts(layout, config, tables, dense)
            .map_err(|e| Error::model(&self.opts.from, format!("cannot warm-start from it: {e}")))?;
        let mut rec = self.record.lock().unwrap_or_else(|p| p.into_inner());
        if rec.is_none() {
            *rec = Some(WarmStartRecord {
                from: self.opts.from.display().to_string(),
                fingerprint: self.fingerprint.clone(),
                train_from: self.opts.train_from,
                replay: self.opts.replay,
                tables: copies,
            });
        }
        Ok(net)
    }

    /// What the first member's warm start did (None before it ran: a resumed run's record is
    /// rebuilt from its tables' vocabularies the same way).
    pub(super) fn record(&self) -> Option<WarmStartRecord> {
        self.record.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Copies into `t` every row of `old` whose id (by `nv` → `ov`) the old vocabulary has, and the
/// OOV row.
fn copy_rows(t: &mut EmbeddingTable, old: &EmbeddingTable, nv: &Vocabulary, ov: &Vocabulary) -> TableCopy {
    let d = t.dim;
    let mut copied = 0;
    let put = |to: usize, from: usize, w: &mut [f32]| {
        w[to * d..(to + 1) * d].copy_from_slice(&old.weights[from * d..(from + 1) * d]);
    };
    for r in 0..nv.len() {
        if let Some(o) = ov.get(nv.id(r as u32)) {
            put(r, o as usize, &mut t.weights);
            copied += 1;
        }
    }
    put(nv.len(), ov.len(), &mut t.weights);
    copied += 1;
    TableCopy {
        name: t.name.clone(),
        copied,
        new: t.rows - copied,
    }
}

/// A config section as JSON, for naming what differs.
fn json<T: Serialize>(x: &T) -> serde_json::Value {
    serde_json::to_value(x).unwrap_or(serde_json::Value::Null)
}
