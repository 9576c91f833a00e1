//! Warm start (`train --init-from MODEL`): a new model that begins where an earlier one ended, on
//! a dataset whose vocabularies may have grown since (`data import --append-to`).
//!
//! Rows are matched by string id, never by dense index: a user, item, genre, title word or
//! categorical value the earlier model knew gets its row copied bit for bit, the OOV row is copied,
//! and ids that are new get the fresh initialisation a model trained from scratch with the same
//! seed would give them. Dense layers (MLPs, history attention) are copied whole. Optimiser state is
//! not carried: a model directory keeps the best epoch's weights, the only moments saved (the last
//! epoch's checkpoint) belong to the last epoch's weights, which are not always those, and an
//! ensemble keeps none; so every run starts its Adam/Adagrad state at zero, as the learning-rate
//! warm-up expects.
//!
//! A warm start trains one run per member at the earlier model's temperature (no search, no
//! refit), on every training row or only the rows from `train_from` on, plus a seeded `replay`
//! share of the older ones. Histories are built from every training row either way, so an example
//! of the window still sees the user's older items.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use twotower_data::Vocabulary;

use crate::config::Config;
use crate::embedding_bag::EmbeddingTable;
use crate::error::{Error, Result};
use crate::features::{FeatureLayout, ItemFeatures, UserFeatures};
use crate::model::Model;
use crate::tower::TwoTower;

use super::prepared::Prepared;

/// Epochs a warm start trains when `--epochs` is not given (chosen on the temporal replay
/// benchmark, docs/PERFORMANCE.md).
pub const WARM_START_EPOCHS: usize = 1;

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
        prep: &Prepared<'_>,
    ) -> Result<TwoTower> {
        let (ds, item_feats, user_feats) = (prep.ds, &prep.item_feats, &prep.user_feats);
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use twotower_data::{append, import, split, ColumnMap, Dedup, ImportFormat, ImportOptions, NoProgress};

    use super::*;
    use crate::train::{train, TrainOptions};
    use twotower_data::Dataset;

    fn config() -> Config {
        let mut c = Config::default();
        c.model.dim = 8;
        c.model.members = 1;
        c.item.id_dim = 8;
        c.user.id_dim = 8;
        c.user.history_dim = 8;
        c.item.genre_dim = 4;
        c.item.categorical_dim = 4;
        c.user.categorical_dim = 4;
        c.item.categorical = true;
        c.user.layers = vec![16];
        c.item.layers = vec![16];
        c.train.epochs = 1;
        c.train.batch_size = 64;
        c.train.threads = 1;
        c.loss.temperature_candidates.clear();
        c.train.refit = false;
        c
    }

    fn opts(items: &Path) -> ImportOptions {
        let mut o = ImportOptions::new(ImportFormat::Csv);
        o.columns = ColumnMap {
            user: "user".into(),
            item: "item".into(),
            weight: None,
            time: Some("ts".into()),
        };
        o.items = Some(items.to_path_buf());
        o.dedup = Dedup::KeepAll;
        o
    }

    /// A log where user u likes items of genre u % 5; users ≥ `u0` and items ≥ `i0` are new.
    fn write_log(path: &Path, users: std::ops::Range<u32>, items: u32, t0: i64) {
        let mut s = String::from("user,item,ts\n");
        for u in users {
            for k in 0..12u32 {
                let i = (u % 5) + 5 * ((u * 7 + k * 3) % (items / 5));
                s.push_str(&format!("u{u},i{i},{}\n", t0 + (u * 12 + k) as i64));
            }
        }
        std::fs::write(path, s).unwrap();
    }

    fn write_items(path: &Path, items: std::ops::Range<u32>, genre_offset: u32) {
        let mut s = String::from("item,title,genres,brand\n");
        for i in items {
            s.push_str(&format!(
                "i{i},Item {i},g{},b{}\n",
                i % 5 + genre_offset,
                i % 3 + genre_offset
            ));
        }
        std::fs::write(path, s).unwrap();
    }

    /// A model trained on 60 users and 50 items, and a dataset grown by an append to 80 users, 60
    /// items, a new genre and a new brand.
    fn fixture(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
        let (a, b) = (dir.join("a.csv"), dir.join("b.csv"));
        let (items0, items1) = (dir.join("items0.csv"), dir.join("items1.csv"));
        write_log(&a, 0..60, 50, 0);
        write_log(&b, 40..80, 60, 10_000);
        write_items(&items0, 0..50, 0);
        write_items(&items1, 50..60, 5);
        let old = dir.join("old");
        import(&a, &old, &opts(&items0), &NoProgress).unwrap();
        split(&old, &Default::default(), &NoProgress).unwrap();
        let model = dir.join("model");
        let ds = Dataset::load(&old).unwrap();
        train(&ds, &config(), &model, &NoProgress, &TrainOptions::default()).unwrap();
        let grown = dir.join("grown");
        import(&a, &grown, &opts(&items0), &NoProgress).unwrap();
        append(&b, &grown, &opts(&items1), &NoProgress).unwrap();
        (model, grown)
    }

    #[test]
    fn known_rows_are_copied_bit_for_bit_and_new_ones_start_fresh() {
        let tmp = tempfile::tempdir().unwrap();
        let (model, grown) = fixture(tmp.path());
        let ds = Dataset::load(&grown).unwrap();
        let c = config();
        let prep = Prepared::new(&ds, &c, None).unwrap();
        let layout = FeatureLayout::new(
            &c,
            ds.users.len(),
            ds.items.len(),
            &prep.item_feats,
            &prep.user_feats,
        );
        let w = WarmSource::load(&WarmStart {
            from: model.clone(),
            train_from: None,
            replay: 0.0,
        })
        .unwrap();
        w.check(&c).unwrap();
        let net = w.init(0, layout.clone(), &c, c.train.seed, &prep).unwrap();
        let fresh = TwoTower::new(layout, &c, c.train.seed).unwrap();
        let old = Model::load(&model).unwrap();
        let old_v = Vocabs {
            users: &old.users,
            items: &old.items,
            item_feats: &old.item_feats,
            user_feats: &old.user_feats,
        };
        let new_v = Vocabs {
            users: &ds.users,
            items: &ds.items,
            item_feats: &prep.item_feats,
            user_feats: &prep.user_feats,
        };
        let mut new_rows = std::collections::BTreeMap::new();
        for (t, f) in net.tables.iter().zip(&fresh.tables) {
            let o = old.nets[0].tables.iter().find(|o| o.name == t.name).unwrap();
            let (nv, ov) = (new_v.of(&t.name).unwrap(), old_v.of(&t.name).unwrap());
            let d = t.dim;
            let row = |w: &[f32], r: usize| w[r * d..(r + 1) * d].to_vec();
            let mut new = 0;
            for r in 0..nv.len() {
                match ov.get(nv.id(r as u32)) {
                    Some(k) => assert_eq!(row(&t.weights, r), row(&o.weights, k as usize), "{} {r}", t.name),
                    None => {
                        new += 1;
                        assert_eq!(row(&t.weights, r), row(&f.weights, r), "{} {r}: fresh", t.name);
                    }
                }
            }
            assert_eq!(
                row(&t.weights, nv.len()),
                row(&o.weights, ov.len()),
                "{}: OOV row",
                t.name
            );
            new_rows.insert(t.name.clone(), new);
        }
        assert_eq!(new_rows["user.id"], 20);
        assert_eq!(new_rows["item.id"], 10);
        assert_eq!(new_rows["item.genres"], 5, "g5..g9 are new");
        assert!(new_rows["item.cat.brand"] >= 1);
        for (p, o) in net.dense.iter().zip(&old.nets[0].dense) {
            assert_eq!(p.name, o.name);
            assert_eq!(p.value, o.value, "{}", p.name);
        }
        let rec = w.record().unwrap();
        let item = rec.tables.iter().find(|t| t.name == "item.id").unwrap();
        assert_eq!((item.copied, item.new), (51, 10));
        // Member 0 was handed over once.
        let c2 = config();
        let prep2 = Prepared::new(&ds, &c2, None).unwrap();
        let l2 = FeatureLayout::new(
            &c2,
            ds.users.len(),
            ds.items.len(),
            &prep2.item_feats,
            &prep2.user_feats,
        );
        assert!(w.init(0, l2, &c2, 1, &prep2).is_err());
    }

    #[test]
    fn a_config_that_changes_the_networks_is_refused_naming_it() {
        let tmp = tempfile::tempdir().unwrap();
        let (model, _) = fixture(tmp.path());
        let w = WarmSource::load(&WarmStart {
            from: model,
            train_from: None,
            replay: 0.0,
        })
        .unwrap();
        let mut c = config();
        c.user.history_dropout = 0.5;
        c.train.lr *= 2.0;
        c.loss.temperature = 0.3;
        w.check(&c).expect("training settings may differ");
        c.model.dim = 16;
        c.item.genres = false;
        let e = w.check(&c).unwrap_err().to_string();
        assert!(e.contains("model.dim: 8 in the model, 16 here"), "{e}");
        assert!(e.contains("item.genres: true in the model, false here"), "{e}");
        c = config();
        c.model.members = 2;
        let e = w.check(&c).unwrap_err().to_string();
        assert!(e.contains("model.members"), "{e}");
    }

    #[test]
    fn the_window_keeps_new_rows_and_a_seeded_share_of_the_old() {
        let w = |replay| WarmStart {
            from: "m".into(),
            train_from: Some(100),
            replay,
        };
        assert!(WarmStart {
            train_from: None,
            ..w(0.0)
        }
        .keeps(0, 1, 2, 7));
        assert!(w(0.0).keeps(100, 1, 2, 7) && !w(0.0).keeps(99, 1, 2, 7));
        let kept = |r: f32, seed| {
            (0..10_000u32)
                .filter(|&k| w(r).keeps(k as i64 % 100, k, k / 3, seed))
                .count()
        };
        assert_eq!(kept(1.0, 7), 10_000);
        let a = kept(0.2, 7);
        assert!((1_800..2_200).contains(&a), "{a}");
        assert_eq!(a, kept(0.2, 7), "same seed, same rows");
        assert!(w(1.5).validate().is_err());
        assert!(WarmStart {
            train_from: None,
            ..w(0.1)
        }
        .validate()
        .is_err());
    }
}
