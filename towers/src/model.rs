//! A trained model as a directory, and the inference API on top of it.
//!
//! Layout: `model.json` (config, feature layout, training summary, dataset fingerprint), `vocab.json`
//! (every vocabulary the model maps strings through), `catalog.safetensors` (the integer item/user
//! features and each user's training items, so the model embeds its catalogue without the dataset),
//! `weights.safetensors` (tables and dense weights of the best epoch, per ensemble member),
//! `metrics.jsonl`, the training checkpoint of a single run (`checkpoint.json`,
//! `checkpoint.safetensors`; an ensemble's members keep theirs in hidden directories while they
//! train) and `manifest.json` with checksums.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use candle_core::Tensor;

use serde::{Deserialize, Serialize};
use twotower_data::{Categorical, Dataset, Manifest, Vocabulary};

use crate::config::Config;
use crate::embedding_bag::{Bags, EmbeddingTable};
use crate::error::{Error, Result};
use crate::features::{Csr, FeatureLayout, ItemFeatures, NewItem, UserFeatures};
use crate::tensor_file::{TensorReader, TensorWriter};
use crate::tower::{DenseParam, Side, TwoTower};

/// `manifest.json` kind of a model directory.
pub const MODEL_KIND: &str = "twotower-model";
/// Current model format; older readers refuse newer models. 2 added ensembles (`model.members`;
/// member k ≥ 1's tensors are named `member{k}.…`); version-1 models read as one member.
pub const MODEL_FORMAT_VERSION: u32 = 2;

/// Items embedded per forward pass at inference (bounds memory on large catalogues).
const EMBED_CHUNK: usize = 16_384;

/// How the model was trained (in `model.json`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainingSummary {
    /// Epochs run.
    pub epochs_run: usize,
    /// Epoch whose weights were kept.
    pub best_epoch: usize,
    /// Validation Recall@`validation_k` of the kept weights.
    pub validation_recall: Option<f64>,
    /// Cut-off of the validation metric.
    pub validation_k: usize,
    /// Training interactions used (validation slice excluded).
    pub train_examples: usize,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Worker threads.
    pub threads: usize,
    /// Early stopping ended the run.
    pub stopped_early: bool,
    /// Softmax temperature of the kept weights (the learned one with `loss.learn_temperature`).
    #[serde(default)]
    pub temperature: Option<f64>,
}

/// `model.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelMeta {
    /// The configuration trained with.
    pub config: Config,
    /// Tables and tower wiring.
    pub layout: FeatureLayout,
    /// Fingerprint of the dataset artifact it was trained on.
    pub dataset_fingerprint: String,
    /// Path of that dataset when trained (informational).
    pub dataset_dir: String,
    /// Training summary.
    pub training: TrainingSummary,
}

/// A `model.json` written before a config key existed gets the behaviour it was trained with, not
/// today's default for that key (which would make `--resume` refuse it for a configuration it never
/// had, or claim a feature its weights lack).
fn backfill_config(raw: &serde_json::Value, meta: &mut ModelMeta) {
    let has = |section: &str, key: &str| {
        raw.get("config")
            .and_then(|c| c.get(section))
            .and_then(|s| s.get(key))
            .is_some()
    };
    let c = &mut meta.config;
    if !has("user", "history_attention") {
        c.user.history_attention = false;
    }
    if !has("user", "history_dropout") {
        c.user.history_dropout = 0.0;
    }
    if !has("loss", "mask_seen_items") {
        c.loss.mask_seen_items = false;
    }
    if !has("train", "refit") {
        c.train.refit = false;
    }
    if !has("model", "members") {
        c.model.members = 1;
    }
}

/// Reads `dir`'s `model.json` (no other file, no checksum: the caller verifies what it needs).
pub(crate) fn read_meta(dir: &Path) -> Result<ModelMeta> {
    let meta_path = dir.join("model.json");
    let text = std::fs::read_to_string(&meta_path).map_err(|e| Error::io(&meta_path, e))?;
    // Typed first, so a bad value is reported with its line and column.
    let mut meta: ModelMeta =
        serde_json::from_str(&text).map_err(|e| Error::model(&meta_path, format!("cannot parse: {e}")))?;
    let raw: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| Error::model(&meta_path, format!("cannot parse: {e}")))?;
    backfill_config(&raw, &mut meta);
    Ok(meta)
}

#[derive(Serialize, Deserialize)]
struct VocabFile {
    users: Vocabulary,
    items: Vocabulary,
    genres: Vocabulary,
    title_tokens: Vocabulary,
    item_categorical: Vec<(String, Vocabulary)>,
    user_categorical: Vec<(String, Vocabulary)>,
}

/// [`VocabFile`] by reference, for writing: the same JSON without cloning the vocabularies (1.2 M
/// ids at 1 M items, about 150 MB a copy, made again at every epoch's commit).
#[derive(Serialize)]
struct VocabFileOut<'a> {
    users: &'a Vocabulary,
    items: &'a Vocabulary,
    genres: &'a Vocabulary,
    title_tokens: &'a Vocabulary,
    item_categorical: Vec<(&'a str, &'a Vocabulary)>,
    user_categorical: Vec<(&'a str, &'a Vocabulary)>,
}

/// A trained two-tower model.
#[derive(Debug, Clone)]
pub struct Model {
    dir: PathBuf,
    pub(crate) meta: ModelMeta,
    fingerprint: String,
    /// The ensemble's members (at least one), all with the same layout.
    pub(crate) nets: Vec<TwoTower>,
    /// Each member's dense weights as tensors, made on first use (the nets never change after).
    tensors: OnceLock<Vec<Vec<Tensor>>>,
    pub(crate) users: Vocabulary,
    pub(crate) items: Vocabulary,
    pub(crate) item_feats: ItemFeatures,
    pub(crate) user_feats: UserFeatures,
    user_items: Csr,
}

impl Model {
    /// Opens a model directory, verifying its manifest and every checksum first, so a truncated or
    /// foreign file is an error naming it rather than garbage embeddings.
    ///
    /// A model directory is replaced by one atomic swap when a training commits; a load that
    /// raced such a swap (read part of the old version, part of the new) is retried on the new
    /// one, so a reader sees one consistent version.
    pub fn load(dir: impl AsRef<Path>) -> Result<Model> {
        Self::load_checked(dir.as_ref(), true)
    }

    /// [`Model::load`] for serving: the manifest is read and must list every model file, every
    /// listed file must be present with its recorded size (a truncated file is an error naming
    /// it), and the files parsed as structure (`model.json`, `vocab.json`,
    /// `catalog.safetensors`) are checksummed; `weights.safetensors` (plain numbers, its
    /// safetensors header still checked) and the checkpoint (not read) are not re-hashed. They
    /// were verified when the model was committed, and are again by every command that derives an
    /// artifact from it (`index build`, `eval`, a warm start): re-hashing the 2.5 GB of a 1 M-item
    /// model directory on every server start is what this avoids.
    pub fn load_for_serving(dir: impl AsRef<Path>) -> Result<Model> {
        Self::load_checked(dir.as_ref(), false)
    }

    fn load_checked(dir: &Path, checksums: bool) -> Result<Model> {
        let mut tries = 0;
        loop {
            let before = dir_identity(dir);
            let loaded = Self::load_once(dir, checksums);
            tries += 1;
            // Same directory from start to end: whatever was read is one version (or truly bad).
            // A commit can swap many times during one slow load, but each swap fails at most one
            // try; the cap only stops a directory that is swapped without end.
            if before.is_none() || dir_identity(dir) == before || tries >= 100 {
                return loaded;
            }
        }
    }

    fn load_once(dir: &Path, checksums: bool) -> Result<Model> {
        let manifest = Manifest::read(dir, MODEL_KIND, MODEL_FORMAT_VERSION)?;
        // Every file the model is made of must be listed, so every byte is checked: a manifest
        // with no files would otherwise verify nothing.
        if let Some(missing) = MODEL_FILES.iter().find(|f| !manifest.files.contains_key(**f)) {
            return Err(Error::model(
                dir,
                format!(
                    "manifest.json does not list {missing}: the model is incomplete or was edited by \
                     hand (train it again)"
                ),
            ));
        }
        if checksums {
            manifest.verify(dir)?;
        } else {
            // The small files it parses are checksummed; the tables (read as plain numbers) and
            // the checkpoint (not read) are checked by size.
            manifest.verify_except(dir, &["weights.safetensors", "checkpoint.safetensors"])?;
        }
        let meta = read_meta(dir)?;
        let vpath = dir.join("vocab.json");
        let text = std::fs::read_to_string(&vpath).map_err(|e| Error::io(&vpath, e))?;
        let v: VocabFile =
            serde_json::from_str(&text).map_err(|e| Error::model(&vpath, format!("cannot parse: {e}")))?;
        let cat = TensorReader::open(&dir.join("catalog.safetensors"))?;
        let csr = |p: &str| -> Result<Csr> {
            Ok(Csr {
                offsets: cat.u32(&format!("{p}.offsets"))?,
                values: cat.u32(&format!("{p}.values"))?,
            })
        };
        let cats = |side: &str, vocabs: Vec<(String, Vocabulary)>| -> Result<Vec<Categorical>> {
            vocabs
                .into_iter()
                .map(|(name, vocab)| {
                    Ok(Categorical {
                        values: cat.u32(&format!("{side}.cat.{name}"))?,
                        name,
                        vocab,
                    })
                })
                .collect()
        };
        let item_feats = ItemFeatures {
            genre_vocab: v.genres,
            genres: csr("item.genres")?,
            token_vocab: v.title_tokens,
            tokens: csr("item.title")?,
            categorical: cats("item", v.item_categorical)?,
        };
        let user_feats = UserFeatures {
            categorical: cats("user", v.user_categorical)?,
        };
        let user_items = csr("user.items")?;
        let bad = |m: String| Error::model(dir, m);
        item_feats.check(v.items.len()).map_err(|e| bad(e.to_string()))?;
        if v.items.len() != meta.layout.n_items || v.users.len() != meta.layout.n_users {
            return Err(bad(format!(
                "vocab.json has {} users and {} items but model.json expects {} and {}",
                v.users.len(),
                v.items.len(),
                meta.layout.n_users,
                meta.layout.n_items
            )));
        }
        let nets = read_nets(dir, &meta)?;
        Ok(Model {
            dir: dir.to_path_buf(),
            fingerprint: manifest.fingerprint(),
            meta,
            nets,
            tensors: OnceLock::new(),
            users: v.users,
            items: v.items,
            item_feats,
            user_feats,
            user_items,
        })
    }

    /// How many users [`Model::user_embeddings`] embeds together: a caller that embeds rows
    /// `[c × USER_CHUNK, (c + 1) × USER_CHUNK)` in one [`Model::embed_user_rows`] call gets those
    /// rows' vectors bit for bit as the whole table has them.
    pub const USER_CHUNK: usize = EMBED_CHUNK;

    /// Identifies this model (checksum over its files); index manifests record it.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The directory it was loaded from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Vector dimension: `members × model.dim`.
    pub fn dim(&self) -> usize {
        self.nets[0].dim * self.nets.len()
    }

    fn layout(&self) -> &FeatureLayout {
        &self.nets[0].layout
    }

    /// Ensemble members (1 for a single model).
    pub fn members(&self) -> usize {
        self.nets.len()
    }

    /// Embeds through every member and concatenates their vectors row by row, each scaled by
    /// `1/sqrt(members)`: a dot product is then the members' mean score, and unit-norm members give
    /// a unit-norm vector (what the cosine index expects).
    fn embed(&self, side: Side, bags: &[Bags]) -> Result<Vec<f32>> {
        let tensors = match self.tensors.get() {
            Some(t) => t,
            None => {
                let t = self
                    .nets
                    .iter()
                    .map(TwoTower::dense_tensors)
                    .collect::<Result<_>>()?;
                self.tensors.get_or_init(|| t)
            }
        };
        if let [net] = self.nets.as_slice() {
            return net.embed_with(side, bags, &tensors[0]);
        }
        let parts = self
            .nets
            .iter()
            .zip(tensors)
            .map(|(net, vars)| net.embed_with(side, bags, vars))
            .collect::<Result<Vec<_>>>()?;
        let d = self.nets[0].dim;
        let scale = 1.0 / (self.nets.len() as f32).sqrt();
        let rows = parts[0].len() / d;
        let mut out = Vec::with_capacity(rows * self.dim());
        for r in 0..rows {
            for p in &parts {
                out.extend(p[r * d..(r + 1) * d].iter().map(|x| x * scale));
            }
        }
        Ok(out)
    }

    /// Whether outputs are unit vectors (scores are cosines).
    pub fn normalized(&self) -> bool {
        self.nets[0].normalize
    }

    /// Item id ⇄ row of [`Model::item_embeddings`].
    pub fn item_vocab(&self) -> &Vocabulary {
        &self.items
    }

    /// User id ⇄ row of [`Model::user_embeddings`].
    pub fn user_vocab(&self) -> &Vocabulary {
        &self.users
    }

    /// Everything in `model.json`.
    pub fn meta(&self) -> &ModelMeta {
        &self.meta
    }

    /// The configuration trained with.
    pub fn config(&self) -> &Config {
        &self.meta.config
    }

    /// Fingerprint of the training dataset.
    pub fn dataset_fingerprint(&self) -> &str {
        &self.meta.dataset_fingerprint
    }

    /// Refuses a dataset the model was not trained on (by fingerprint, as `eval` does): its users
    /// and items are not the model's, so answers for them would be wrong without any error. `flag`
    /// names the command's dataset flag, for the advice. A copy of the training dataset passes.
    pub fn check_dataset(&self, ds: &Dataset, flag: &str) -> Result<()> {
        if self.dataset_fingerprint() == ds.fingerprint() {
            return Ok(());
        }
        Err(Error::model(
            self.dir(),
            format!(
                "was trained on dataset {} (fingerprint {}), but {} has fingerprint {}: its users and \
                 items are not the model's. Pass the dataset the model was trained on (or a copy of it) \
                 with {flag}, or leave {flag} out to use it; to answer from this dataset, train a model \
                 on it (twotower train --data {})",
                self.meta().dataset_dir,
                self.dataset_fingerprint(),
                ds.dir.display(),
                ds.fingerprint(),
                ds.dir.display()
            ),
        ))
    }

    /// A known user's training items, oldest first (what `recommend` excludes as already seen).
    pub fn user_items(&self, user: u32) -> &[u32] {
        self.user_items.row(user as usize)
    }

    /// Vectors of every catalogue item (`item_vocab().len() × dim`, row-major), cold items from
    /// their features.
    pub fn item_embeddings(&self) -> Result<Vec<f32>> {
        let rows: Vec<u32> = (0..self.items.len() as u32).collect();
        self.embed_item_rows(&self.item_feats, &rows, &rows)
    }

    fn embed_item_rows(&self, feats: &ItemFeatures, feat_rows: &[u32], id_rows: &[u32]) -> Result<Vec<f32>> {
        let mut out = Vec::with_capacity(feat_rows.len() * self.dim());
        for (f, i) in feat_rows.chunks(EMBED_CHUNK).zip(id_rows.chunks(EMBED_CHUNK)) {
            let bags = self.layout().item_bags(feats, f, i);
            out.extend(self.embed(Side::Item, &bags)?);
        }
        Ok(out)
    }

    /// Vectors of items described by strings (new or updated items): the id part is the item's own row
    /// when the id is known, the OOV row otherwise.
    pub fn embed_new_items(&self, items: &[NewItem]) -> Result<Vec<f32>> {
        let feats = self.item_feats.encode_new(items);
        let feat_rows: Vec<u32> = (0..items.len() as u32).collect();
        let id_rows: Vec<u32> = items.iter().map(|it| self.items.get_or_oov(&it.id)).collect();
        self.embed_item_rows(&feats, &feat_rows, &id_rows)
    }

    /// Vectors of every item of `ds`'s catalogue (in `ds.items` order), encoded through this model's
    /// vocabularies: the way to embed another dataset's items (e.g. an updated catalogue).
    pub fn embed_items(&self, ds: &Dataset) -> Result<Vec<f32>> {
        self.embed_new_items(&dataset_items(ds))
    }

    /// Per item of `ds` (in `ds.items` order), whether this model can place it: its id is one the
    /// model was trained on, or it has a genre, title word or categorical value the model knows.
    /// The others would all get one and the same vector (`index add` leaves them out).
    pub fn encodable_items(&self, ds: &Dataset) -> Vec<bool> {
        dataset_items(ds)
            .iter()
            .map(|it| self.items.get(&it.id).is_some() || self.item_feats.knows_a_feature_of(it))
            .collect()
    }

    /// Vectors of every known user (`user_vocab().len() × dim`) from id, features and their whole
    /// training history.
    pub fn user_embeddings(&self) -> Result<Vec<f32>> {
        let rows: Vec<u32> = (0..self.users.len() as u32).collect();
        self.embed_user_rows(&rows)
    }

    /// Vectors of the known users `rows` (model rows, `rows.len() × dim`), as
    /// [`Model::user_embeddings`] gives them: what a sampled evaluation needs without embedding
    /// every user.
    pub fn embed_user_rows(&self, rows: &[u32]) -> Result<Vec<f32>> {
        self.embed_users(
            rows.len(),
            |e| rows[e],
            |e| Some(rows[e]),
            |e| self.user_items.row(rows[e] as usize),
        )
    }

    /// Vectors of users named by string id with the histories given (model item rows, oldest
    /// first), `ids.len() × dim`: a known id brings its id row and features, an unknown one the OOV
    /// rows. How a model is judged on a dataset it was not trained on (`eval --by-id`), whose
    /// histories are the dataset's, not the model's.
    pub fn embed_users_by_id(&self, ids: &[&str], histories: &[Vec<u32>]) -> Result<Vec<f32>> {
        for h in histories {
            self.check_items(h)?;
        }
        let known: Vec<Option<u32>> = ids.iter().map(|id| self.users.get(id)).collect();
        let oov = self.users.oov();
        self.embed_users(
            ids.len(),
            |e| known[e].unwrap_or(oov),
            |e| known[e],
            |e| &histories[e],
        )
    }

    /// Vectors of `n` users, user `e` from its id row, feature row and history (model rows),
    /// embedded [`EMBED_CHUNK`] at a time.
    fn embed_users<'a>(
        &'a self,
        n: usize,
        id_row: impl Fn(usize) -> u32,
        feat_row: impl Fn(usize) -> Option<u32>,
        history: impl Fn(usize) -> &'a [u32],
    ) -> Result<Vec<f32>> {
        let mut out = Vec::with_capacity(n * self.dim());
        for start in (0..n).step_by(EMBED_CHUNK) {
            let end = (start + EMBED_CHUNK).min(n);
            let bags = self.layout().user_bags(
                &self.user_feats,
                end - start,
                |e| id_row(start + e),
                |e| feat_row(start + e),
                |e| history(start + e),
            );
            out.extend(self.embed(Side::User, &bags)?);
        }
        Ok(out)
    }

    /// A user's vector: a known id brings its id embedding, features and training history; `recent`
    /// (item row, timestamp) events are appended to that history in time order. An unknown id is
    /// embedded from `recent` alone, like [`Model::embed_recent`].
    pub fn embed_user(&self, user: &str, recent: &[(u32, i64)]) -> Result<Vec<f32>> {
        let known = self.users.get(user);
        let mut rec = recent.to_vec();
        rec.sort_by_key(|&(i, t)| (t, i));
        let mut hist: Vec<u32> = known
            .map(|u| self.user_items.row(u as usize).to_vec())
            .unwrap_or_default();
        hist.extend(rec.iter().map(|&(i, _)| i));
        self.check_items(&hist)?;
        let id = known.unwrap_or(self.users.oov());
        let bags = self
            .layout()
            .user_bags(&self.user_feats, 1, |_| id, |_| known, |_| &hist);
        self.embed(Side::User, &bags)
    }

    /// The real-time path: an anonymous user given only recently consumed items (oldest first); the id
    /// and user features are the OOV rows.
    pub fn embed_recent(&self, items: &[u32]) -> Result<Vec<f32>> {
        self.check_items(items)?;
        let oov = self.users.oov();
        let bags = self
            .layout()
            .user_bags(&self.user_feats, 1, |_| oov, |_| None, |_| items);
        self.embed(Side::User, &bags)
    }

    fn check_items(&self, items: &[u32]) -> Result<()> {
        if let Some(&bad) = items.iter().find(|&&i| i as usize >= self.items.len()) {
            return Err(Error::Invalid(format!(
                "item row {bad} is outside the model's catalogue of {} items",
                self.items.len()
            )));
        }
        Ok(())
    }
}

/// A model's contents by reference: what a model directory holds besides `metrics.jsonl`, the
/// checkpoint and the manifest. Training writes one after every epoch from its own buffers, so no
/// [`Model`] (tables, features, histories) is assembled, cloned, just to be saved.
pub(crate) struct ModelFiles<'a> {
    pub(crate) meta: &'a ModelMeta,
    /// The members' networks (one for a single model).
    pub(crate) nets: &'a [TwoTower],
    pub(crate) users: &'a Vocabulary,
    pub(crate) items: &'a Vocabulary,
    pub(crate) item_feats: &'a ItemFeatures,
    pub(crate) user_feats: &'a UserFeatures,
    /// Each user's training items, oldest first.
    pub(crate) user_items: &'a Csr,
    /// Take `weights.safetensors` from this model directory (hard-linked, or copied where links
    /// fail) instead of writing `nets`' tables: training re-commits its model after every epoch, and
    /// after an epoch that did not improve, the best weights are the ones already on disk (so no
    /// copy of the best tables is kept in memory).
    pub(crate) keep_weights_from: Option<&'a Path>,
}

impl ModelFiles<'_> {
    /// Vector dimension of the model these files make: `members × model.dim`.
    pub(crate) fn dim(&self) -> usize {
        self.nets[0].dim * self.nets.len()
    }

    /// Writes `model.json`, `vocab.json`, `catalog.safetensors` and `weights.safetensors` into `dir`
    /// (a staging directory; the caller adds the rest and the manifest).
    pub(crate) fn write(&self, dir: &Path) -> Result<()> {
        let json = serde_json::to_vec_pretty(self.meta).map_err(|e| Error::model(dir, e.to_string()))?;
        twotower_data::artifact::write_file_atomic(&dir.join("model.json"), &json)?;
        let vf = VocabFileOut {
            users: self.users,
            items: self.items,
            genres: &self.item_feats.genre_vocab,
            title_tokens: &self.item_feats.token_vocab,
            item_categorical: self
                .item_feats
                .categorical
                .iter()
                .map(|c| (c.name.as_str(), &c.vocab))
                .collect(),
            user_categorical: self
                .user_feats
                .categorical
                .iter()
                .map(|c| (c.name.as_str(), &c.vocab))
                .collect(),
        };
        let json = serde_json::to_vec(&vf).map_err(|e| Error::model(dir, e.to_string()))?;
        twotower_data::artifact::write_file_atomic(&dir.join("vocab.json"), &json)?;
        let mut cat = TensorWriter::default();
        for (p, c) in [
            ("item.genres", &self.item_feats.genres),
            ("item.title", &self.item_feats.tokens),
            ("user.items", self.user_items),
        ] {
            cat.u32(&format!("{p}.offsets"), &c.offsets);
            cat.u32(&format!("{p}.values"), &c.values);
        }
        for c in &self.item_feats.categorical {
            cat.u32(&format!("item.cat.{}", c.name), &c.values);
        }
        for c in &self.user_feats.categorical {
            cat.u32(&format!("user.cat.{}", c.name), &c.values);
        }
        cat.write(&dir.join("catalog.safetensors"))?;
        let weights = dir.join("weights.safetensors");
        match self.keep_weights_from {
            Some(prev) => link_or_copy(&prev.join("weights.safetensors"), &weights),
            None => write_weights(self.nets, &weights),
        }
    }
}

/// The files every model directory holds besides `metrics.jsonl` and the manifest; each must be
/// listed in the manifest with its checksum.
pub(crate) const MODEL_FILES: [&str; 4] = [
    "model.json",
    "vocab.json",
    "catalog.safetensors",
    "weights.safetensors",
];

/// Which directory `dir` names now: device, inode and change time. A commit swaps in another
/// directory, and the rename stamps its change time, so a freed inode number reused by a later
/// commit still reads as a different directory.
#[cfg(unix)]
fn dir_identity(dir: &Path) -> Option<(u64, u64, i64, i64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(dir)
        .ok()
        .map(|m| (m.dev(), m.ino(), m.ctime(), m.ctime_nsec()))
}

#[cfg(not(unix))]
fn dir_identity(_dir: &Path) -> Option<(u64, u64, i64, i64)> {
    None
}

/// `ds`'s items as strings, for encoding through a model's vocabularies.
fn dataset_items(ds: &Dataset) -> Vec<NewItem> {
    let t = &ds.item_table;
    (0..ds.items.len())
        .map(|r| NewItem {
            id: ds.items.id(r as u32).to_string(),
            title: t.titles.get(r).cloned().flatten(),
            genres: if r < t.genres.rows() {
                t.genres
                    .row(r)
                    .iter()
                    .map(|&g| t.genres.vocab.id(g).to_string())
                    .collect()
            } else {
                Vec::new()
            },
            categorical: t
                .categorical
                .iter()
                .filter_map(|c| c.get(r).map(|v| (c.name.clone(), v.to_string())))
                .collect(),
        })
        .collect()
}

/// Tensor-name prefix of ensemble member `k` (none for the first, so a one-member model reads and
/// writes the names of format 1).
fn member_prefix(k: usize) -> String {
    if k == 0 {
        String::new()
    } else {
        format!("member{k}.")
    }
}

/// Puts `from` at `to` (a new name in a staging directory): a hard link where the file system
/// allows one (files of a model are never modified in place), a synced copy otherwise.
fn link_or_copy(from: &Path, to: &Path) -> Result<()> {
    if std::fs::hard_link(from, to).is_ok() {
        return Ok(());
    }
    std::fs::copy(from, to).map_err(|e| Error::io(from, e))?;
    std::fs::File::open(to)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::io(to, e))
}

/// The networks (one per member) in `dir`'s `weights.safetensors`, shaped by `meta`.
fn read_nets(dir: &Path, meta: &ModelMeta) -> Result<Vec<TwoTower>> {
    let w = TensorReader::open(&dir.join("weights.safetensors"))?;
    let dense_layout = TwoTower::dense_layout(&meta.layout, &meta.config);
    (0..meta.config.model.members.max(1))
        .map(|k| {
            let prefix = member_prefix(k);
            let tables = meta
                .layout
                .tables
                .iter()
                .map(|t| {
                    Ok(EmbeddingTable {
                        weights: w.f32(&format!("{prefix}table.{}", t.name), &[t.rows, t.dim])?,
                        name: t.name.clone(),
                        rows: t.rows,
                        dim: t.dim,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            let dense = dense_layout
                .iter()
                .map(|p| {
                    let value = w.f32(&format!("{prefix}dense.{}", p.name), &p.shape)?;
                    Ok(DenseParam {
                        name: p.name.clone(),
                        shape: p.shape.clone(),
                        m: Vec::new(),
                        v: Vec::new(),
                        value,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            TwoTower::from_parts(meta.layout.clone(), &meta.config, tables, dense)
                .map_err(|e| Error::model(dir, e.to_string()))
        })
        .collect()
}

/// `model.json` and the networks of the model directory `dir`, both checked against its manifest:
/// what an ensemble takes from each member's finished run. The rest of a member's directory
/// (vocabularies, catalogue) is what training derived from the dataset and still holds, so it is
/// neither read nor checked here.
pub(crate) fn read_member(dir: &Path) -> Result<(ModelMeta, Vec<TwoTower>)> {
    let mut manifest = Manifest::read(dir, MODEL_KIND, MODEL_FORMAT_VERSION)?;
    for f in ["model.json", "weights.safetensors"] {
        if !manifest.files.contains_key(f) {
            return Err(Error::model(dir, format!("manifest.json does not list {f}")));
        }
    }
    manifest
        .files
        .retain(|f, _| f == "model.json" || f == "weights.safetensors");
    manifest.verify(dir)?;
    let meta = read_meta(dir)?;
    let nets = read_nets(dir, &meta)?;
    Ok((meta, nets))
}

/// Writes the members' tables and dense weights.
pub(crate) fn write_weights(nets: &[TwoTower], path: &Path) -> Result<()> {
    let mut w = TensorWriter::default();
    for (k, net) in nets.iter().enumerate() {
        let prefix = member_prefix(k);
        for t in &net.tables {
            w.f32(&format!("{prefix}table.{}", t.name), &[t.rows, t.dim], &t.weights);
        }
        for p in &net.dense {
            w.f32(&format!("{prefix}dense.{}", p.name), &p.shape, &p.value);
        }
    }
    w.write(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::{FeatureLayout, ItemFeatures, UserFeatures};

    #[test]
    fn models_saved_before_a_key_existed_keep_their_behaviour() {
        let config = Config::default();
        let layout = FeatureLayout::new(&config, 2, 3, &ItemFeatures::default(), &UserFeatures::default());
        assert!(config.user.history_attention && config.train.refit && config.user.history_dropout > 0.0);
        assert!(config.model.members > 1);
        let meta = ModelMeta {
            config,
            layout,
            dataset_fingerprint: "f".into(),
            dataset_dir: "d".into(),
            training: TrainingSummary::default(),
        };
        let now = serde_json::to_value(&meta).unwrap();
        let mut fresh: ModelMeta = serde_json::from_value(now.clone()).unwrap();
        backfill_config(&now, &mut fresh);
        assert_eq!(fresh, meta, "a current model.json is read as written");

        let mut old = now;
        for (section, key) in [
            ("user", "history_attention"),
            ("user", "history_dropout"),
            ("loss", "mask_seen_items"),
            ("train", "refit"),
            ("model", "members"),
        ] {
            old["config"][section].as_object_mut().unwrap().remove(key);
        }
        let mut read: ModelMeta = serde_json::from_value(old.clone()).unwrap();
        backfill_config(&old, &mut read);
        let c = &read.config;
        assert!(!c.user.history_attention && !c.train.refit && !c.loss.mask_seen_items);
        assert_eq!(c.model.members, 1);
        assert_eq!(c.user.history_dropout, 0.0);
    }
}
