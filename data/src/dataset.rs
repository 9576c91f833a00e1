//! A dataset directory read back into memory with dense indices: vocabularies, feature tables and
//! interactions (plus the train/test parts after `data split`). This is what training consumes.

use std::path::{Path, PathBuf};

use crate::artifact::Manifest;
use crate::error::{Error, Result};
use crate::features::{tokenize_title, Categorical, ItemTable, MultiCategorical, UserTable};
use crate::interactions::Interactions;
use crate::schema::{
    interaction_parts, read_interactions, read_items, read_users, ItemRows, UserRows, INTERACTIONS_FILE,
    ITEMS_FILE, TEST_FILE, TRAIN_FILE, USERS_FILE,
};
use crate::serving::ServingTables;
use crate::vocab::Vocabulary;

/// Manifest kind of dataset directories.
pub const DATASET_KIND: &str = "dataset";
/// Newest dataset format this build writes and reads.
pub const DATASET_FORMAT_VERSION: u32 = 1;

/// A dataset in memory. Every table is indexed by the dense indices of `users` and `items`.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Where it was loaded from.
    pub dir: PathBuf,
    /// Its manifest (counts, checksums, import and split settings in `extra`).
    pub manifest: Manifest,
    /// Users of users.parquet (in file order), then any user only seen in interactions.
    pub users: Vocabulary,
    /// Items of items.parquet (in file order), then any item only seen in interactions.
    pub items: Vocabulary,
    /// Row `i` describes `items.id(i)`; cold items (no interactions) are included.
    pub item_table: ItemTable,
    /// Row `u` describes `users.id(u)`.
    pub user_table: UserTable,
    /// All interactions: the import's rows sorted by (user, ts, item), then each append's rows
    /// (`interactions-NNNN.parquet`), sorted the same way.
    pub interactions: Interactions,
    /// Training part, present after `data split`.
    pub train: Option<Interactions>,
    /// Held-out part, present after `data split`.
    pub test: Option<Interactions>,
}

/// The item and user tables a manifest lists (empty ones for those it does not).
fn read_side_tables(dir: &Path, manifest: &Manifest) -> Result<(ItemRows, UserRows)> {
    let listed = |name: &str| manifest.files.contains_key(name);
    let items = if listed(ITEMS_FILE) {
        read_items(&dir.join(ITEMS_FILE), "item")?
    } else {
        ItemRows::default()
    };
    let users = if listed(USERS_FILE) {
        read_users(&dir.join(USERS_FILE), "user")?
    } else {
        UserRows::default()
    };
    Ok((items, users))
}

impl Dataset {
    /// Loads a dataset directory, refusing foreign, newer or corrupt ones (checksums are verified).
    /// It also verifies every byte of the serving tables derived from this version (`serving/`),
    /// if it has any: a full load is one of the places their checksum is checked.
    pub fn load(dir: impl AsRef<Path>) -> Result<Dataset> {
        let ds = Self::load_parts(dir.as_ref(), false)?;
        let count = |k: &str| ds.manifest.counts.get(k).map(|&c| c as usize);
        if let (Some(u), Some(i)) = (count("users"), count("items")) {
            ServingTables::open(&ds.dir, &ds.fingerprint(), u, i, true)?;
        }
        Ok(ds)
    }

    /// What training and serving read: a split dataset's tables and training part only, as
    /// [`Dataset::load`] followed by [`Dataset::keep_only_training`] gives it, without reading (or
    /// checksumming) the whole log and the test part. At 10 M interactions that halves the rows
    /// decoded when `train`, `query` or `serve` open a dataset. The vocabularies are the same as
    /// [`Dataset::load`]'s: when the tables do not list every id the manifest counts (a dataset
    /// whose ids appear only in its log), the whole dataset is read instead.
    pub fn load_training(dir: impl AsRef<Path>) -> Result<Dataset> {
        let dir = dir.as_ref();
        let ds = Self::load_parts(dir, true)?;
        let full = |key: &str, n: usize| ds.manifest.counts.get(key).is_some_and(|&c| c == n as u64);
        if !ds.is_split() || (full("users", ds.users.len()) && full("items", ds.items.len())) {
            return Ok(ds);
        }
        let mut ds = Self::load_parts(dir, false)?;
        ds.keep_only_training();
        Ok(ds)
    }

    /// What a recommender opens: the vocabularies and feature tables, and the training part as
    /// [`ServingTables`] (histories, seen sets, counts, popularity). When the dataset carries a
    /// current `serving/` artifact ([`write_serving`]) and its tables list every id, nothing of the
    /// interaction log is read: the manifest is read, every listed file's size is checked, the
    /// item and user tables are checksummed and decoded, and `serving.bin` is mapped (its size and
    /// header checked, its checksum not: that is verified when it is written and by
    /// [`Dataset::load`]). Otherwise
    /// the training part is read and verified as [`Dataset::load_training`] does and the tables
    /// are built from it. Either way the returned dataset holds no interactions (its training part
    /// lives in the tables) and the answers are the same. From the serving artifact, the item
    /// table's `title_tokens` is left empty: serving never tokenizes titles. Such a dataset is for
    /// answering, not for training.
    pub fn load_for_serving(dir: impl AsRef<Path>) -> Result<(Dataset, ServingTables)> {
        let dir = dir.as_ref();
        let manifest = Manifest::read(dir, DATASET_KIND, DATASET_FORMAT_VERSION)?;
        let fingerprint = manifest.fingerprint();
        let counted = |key: &str| manifest.counts.get(key).map(|&c| c as usize);
        if let (Some(n_users), Some(n_items)) = (counted("users"), counted("items")) {
            if let Some(tables) = ServingTables::open(dir, &fingerprint, n_users, n_items, false)? {
                // The tables it parses are checksummed; the interaction files, not read, by size.
                let logs: Vec<&str> = manifest
                    .files
                    .keys()
                    .map(String::as_str)
                    .filter(|f| *f != ITEMS_FILE && *f != USERS_FILE)
                    .collect();
                manifest.verify_except(dir, &logs)?;
                let ds = Self::tables_only(dir, manifest)?;
                if ds.users.len() == n_users && ds.items.len() == n_items {
                    return Ok((ds, tables));
                }
            }
        }
        let mut ds = Self::load_training(dir)?;
        let tables = ServingTables::build(ds.training(), ds.users.len(), ds.items.len());
        ds.interactions = Interactions::default();
        ds.train = None;
        ds.test = None;
        Ok((ds, tables))
    }

    /// The item and user tables and their vocabularies, no interactions.
    fn tables_only(dir: &Path, manifest: Manifest) -> Result<Dataset> {
        let (item_rows, user_rows) = read_side_tables(dir, &manifest)?;
        let items = vocab_from_rows(&dir.join(ITEMS_FILE), &item_rows.ids)?;
        let users = vocab_from_rows(&dir.join(USERS_FILE), &user_rows.ids)?;
        // Serving never tokenizes titles (the model holds its own token table): not built.
        let item_table = build_item_table(item_rows, items.len(), false);
        let user_table = build_user_table(user_rows, users.len());
        Ok(Dataset {
            dir: std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf()),
            manifest,
            users,
            items,
            item_table,
            user_table,
            interactions: Interactions::default(),
            train: None,
            test: None,
        })
    }

    /// [`Dataset::load`]; with `training_only`, a split dataset's log and test part are neither
    /// verified nor read.
    fn load_parts(dir: &Path, training_only: bool) -> Result<Dataset> {
        let manifest = Manifest::read(dir, DATASET_KIND, DATASET_FORMAT_VERSION)?;
        let split = manifest.files.contains_key(TRAIN_FILE) && manifest.files.contains_key(TEST_FILE);
        let training_only = training_only && split;
        if training_only {
            let mut read = manifest.clone();
            read.files
                .retain(|f, _| f == ITEMS_FILE || f == USERS_FILE || f == TRAIN_FILE);
            read.verify(dir)?;
        } else {
            manifest.verify(dir)?;
        }
        for required in [INTERACTIONS_FILE] {
            if !manifest.files.contains_key(required) {
                return Err(Error::FileMissing {
                    file: dir.join(required),
                });
            }
        }
        let (item_rows, user_rows) = read_side_tables(dir, &manifest)?;
        let mut items = vocab_from_rows(&dir.join(ITEMS_FILE), &item_rows.ids)?;
        let mut users = vocab_from_rows(&dir.join(USERS_FILE), &user_rows.ids)?;

        let mut interactions = Interactions::default();
        let parts = if training_only {
            Vec::new()
        } else {
            interaction_parts(manifest.files.keys())
        };
        for part in parts {
            let x = read_interactions(&dir.join(&part), &mut users, &mut items)?;
            if interactions.is_empty() {
                interactions = x;
            } else {
                interactions.extend(&x);
            }
        }
        let (train, test) = if training_only {
            (
                Some(read_interactions(&dir.join(TRAIN_FILE), &mut users, &mut items)?),
                None,
            )
        } else if split {
            (
                Some(read_interactions(&dir.join(TRAIN_FILE), &mut users, &mut items)?),
                Some(read_interactions(&dir.join(TEST_FILE), &mut users, &mut items)?),
            )
        } else {
            (None, None)
        };

        let item_table = build_item_table(item_rows, items.len(), true);
        let user_table = build_user_table(user_rows, users.len());
        Ok(Dataset {
            // Absolute, so a model that records where it was trained finds it from any directory.
            dir: std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf()),
            manifest,
            users,
            items,
            item_table,
            user_table,
            interactions,
            train,
            test,
        })
    }

    /// The interactions to train on: the train part when the dataset is split, else all of them.
    pub fn training(&self) -> &Interactions {
        self.train.as_ref().unwrap_or(&self.interactions)
    }

    /// Frees what training never reads: the whole log and the test part of a split dataset (its
    /// training part stays, as [`Dataset::training`] returns it). At 10 M interactions that is a
    /// quarter of a gigabyte a training run no longer holds beside its tables.
    pub fn keep_only_training(&mut self) {
        if self.train.is_some() {
            self.interactions = Interactions::default();
            self.test = None;
        }
    }

    /// True after `data split`.
    pub fn is_split(&self) -> bool {
        self.train.is_some()
    }

    /// Identifies the dataset's contents (including its split); models record it.
    pub fn fingerprint(&self) -> String {
        self.manifest.fingerprint()
    }
}

/// Derives the serving tables of the dataset at `dir` from its training part (read and verified)
/// and writes them into `dir/serving/`, staged and swapped in whole. `data import`, `data split` and
/// an append run this after committing a dataset, and `data serving` for a dataset written before;
/// a crash in between leaves a dataset that opens by reading its training part, as before.
pub fn write_serving(dir: &Path) -> Result<ServingTables> {
    let ds = Dataset::load_training(dir)?;
    let tables = ServingTables::build(ds.training(), ds.users.len(), ds.items.len());
    tables.write(dir, &ds.fingerprint())?;
    Ok(tables)
}

/// Refuses to write a dataset over `out` unless it is absent, an empty directory, or a dataset
/// already: a mistyped `--out` must never swap away a folder of raw data.
pub(crate) fn check_replaceable(out: &Path) -> Result<()> {
    if !out.exists() {
        return Ok(());
    }
    if out.is_dir() {
        let empty = std::fs::read_dir(out)
            .map_err(|e| Error::io(out, e))?
            .next()
            .is_none();
        if empty || Manifest::read(out, DATASET_KIND, u32::MAX).is_ok() {
            return Ok(());
        }
    }
    Err(Error::InvalidArgument(format!(
        "refusing to replace {}: it exists and is not a twotower dataset (choose another --out)",
        out.display()
    )))
}

fn vocab_from_rows(file: &Path, ids: &[String]) -> Result<Vocabulary> {
    let v = Vocabulary::from_ids(ids);
    if v.len() != ids.len() {
        let mut seen = Vocabulary::with_capacity(ids.len());
        for (r, id) in ids.iter().enumerate() {
            if seen.get(id).is_some() {
                return Err(Error::invalid(
                    file,
                    format!("row {}: duplicate id {id:?}", r + 1),
                ));
            }
            seen.insert(id);
        }
    }
    Ok(v)
}

/// Extends per-row features of the side table to every vocabulary entry (missing rows at the end).
/// Without `tokens`, `title_tokens` is left empty (no row, no vocabulary).
fn build_item_table(rows: ItemRows, n_items: usize, tokens: bool) -> ItemTable {
    let ItemRows {
        ids: _,
        mut titles,
        genres,
        categorical,
    } = rows;
    titles.resize(n_items, None);
    let mut g = MultiCategorical::from_rows("genres", &genres);
    while g.rows() < n_items {
        g.push_row(std::iter::empty::<&str>());
    }
    let title_tokens = if tokens {
        MultiCategorical::from_rows(
            "title_tokens",
            titles
                .iter()
                .map(|t| t.as_deref().map(tokenize_title).unwrap_or_default()),
        )
    } else {
        MultiCategorical::empty("title_tokens")
    };
    ItemTable {
        titles,
        genres: g,
        title_tokens,
        categorical: categorical
            .into_iter()
            .map(|(name, vals)| categorical_column(&name, &vals, n_items))
            .collect(),
    }
}

fn build_user_table(rows: UserRows, n_users: usize) -> UserTable {
    UserTable {
        categorical: rows
            .categorical
            .into_iter()
            .map(|(name, vals)| categorical_column(&name, &vals, n_users))
            .collect(),
    }
}

fn categorical_column(name: &str, vals: &[Option<String>], n: usize) -> Categorical {
    let mut c = Categorical::from_values(name, vals.iter().map(|v| v.as_deref()));
    c.values.resize(n, c.vocab.oov());
    c
}
