//! Feature encoding: which embedding tables exist, where each feature sits in a tower's input, and how a
//! batch of users or items becomes bags of table rows. The integer feature tables kept here travel with
//! the model, so a saved model can embed its whole catalogue (and new items) without the dataset.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use twotower_data::{Categorical, Dataset, Vocabulary};

use crate::config::Config;
use crate::embedding_bag::{Bags, EmbeddingTable, RowGrads};
use crate::error::{Error, Result};

/// Variable-length integer lists in CSR form (row `r` = `values[offsets[r]..offsets[r+1]]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Csr {
    /// Row starts, `rows + 1` long.
    pub offsets: Vec<u32>,
    /// All rows' values, concatenated.
    pub values: Vec<u32>,
}

impl Default for Csr {
    fn default() -> Self {
        Csr {
            offsets: vec![0],
            values: Vec::new(),
        }
    }
}

impl Csr {
    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.offsets.len() - 1
    }

    /// Row `r` (empty when out of range).
    pub fn row(&self, r: usize) -> &[u32] {
        if r + 1 >= self.offsets.len() {
            return &[];
        }
        &self.values[self.offsets[r] as usize..self.offsets[r + 1] as usize]
    }

    /// Appends a row.
    pub fn push_row(&mut self, row: &[u32]) {
        self.values.extend_from_slice(row);
        self.offsets.push(self.values.len() as u32);
    }

    fn check(&self, what: &str) -> Result<()> {
        let ok = self.offsets.first() == Some(&0)
            && self.offsets.windows(2).all(|w| w[0] <= w[1])
            && *self.offsets.last().unwrap_or(&0) as usize == self.values.len();
        if ok {
            Ok(())
        } else {
            Err(Error::Invalid(format!("{what}: malformed offsets")))
        }
    }
}

/// The item features the model reads, as dense indices into its own vocabularies.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ItemFeatures {
    /// Genre values.
    pub genre_vocab: Vocabulary,
    /// Genres of each item.
    pub genres: Csr,
    /// The kept title tokens (most frequent first).
    pub token_vocab: Vocabulary,
    /// Kept title tokens of each item.
    pub tokens: Csr,
    /// Selected categorical columns, one value per item (`vocab.oov()` when missing).
    pub categorical: Vec<Categorical>,
}

/// The user features the model reads.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserFeatures {
    /// Selected categorical columns, one value per user.
    pub categorical: Vec<Categorical>,
}

impl ItemFeatures {
    /// Extracts the features `config` enables from a dataset's item table (title vocabulary capped to the
    /// `config.item.title_vocab` tokens carried by the most items, at least two).
    pub fn from_dataset(ds: &Dataset, config: &Config) -> Result<ItemFeatures> {
        let n = ds.items.len();
        let t = &ds.item_table;
        let mut genres = Csr::default();
        let genre_vocab = if config.item.genres {
            for r in 0..n {
                genres.push_row(if r < t.genres.rows() { t.genres.row(r) } else { &[] });
            }
            t.genres.vocab.clone()
        } else {
            Vocabulary::new()
        };
        let mut tokens = Csr::default();
        let mut token_vocab = Vocabulary::new();
        if config.item.title {
            let tt = &t.title_tokens;
            let mut df = vec![0u32; tt.vocab.len()];
            for r in 0..tt.rows() {
                let mut row = tt.row(r).to_vec();
                row.sort_unstable();
                row.dedup();
                for v in row {
                    if (v as usize) < df.len() {
                        df[v as usize] += 1;
                    }
                }
            }
            let mut order: Vec<u32> = (0..df.len() as u32).filter(|&v| df[v as usize] >= 2).collect();
            order.sort_by_key(|&v| (std::cmp::Reverse(df[v as usize]), v));
            order.truncate(config.item.title_vocab);
            let mut remap = vec![u32::MAX; df.len()];
            for v in order {
                remap[v as usize] = token_vocab.insert(tt.vocab.id(v));
            }
            let mut buf = Vec::new();
            for r in 0..n {
                buf.clear();
                if r < tt.rows() {
                    buf.extend(
                        tt.row(r)
                            .iter()
                            .filter_map(|&v| remap.get(v as usize).copied())
                            .filter(|&v| v != u32::MAX),
                    );
                }
                tokens.push_row(&buf);
            }
        }
        let categorical = if config.item.categorical {
            select_columns(
                &t.categorical,
                &config.item.categorical_columns,
                n,
                "item.categorical_columns",
            )?
        } else {
            Vec::new()
        };
        Ok(ItemFeatures {
            genre_vocab,
            genres,
            token_vocab,
            tokens,
            categorical,
        })
    }

    /// Features for items given by strings (new items at serving time), mapped through this model's
    /// vocabularies; unknown values become the OOV row or are dropped from bags.
    pub fn encode_new(&self, items: &[NewItem]) -> ItemFeatures {
        let mut genres = Csr::default();
        let mut tokens = Csr::default();
        let mut categorical: Vec<Categorical> = self
            .categorical
            .iter()
            .map(|c| Categorical {
                name: c.name.clone(),
                vocab: c.vocab.clone(),
                values: Vec::with_capacity(items.len()),
            })
            .collect();
        for it in items {
            let g: Vec<u32> = it.genres.iter().filter_map(|s| self.genre_vocab.get(s)).collect();
            genres.push_row(&g);
            let toks: Vec<u32> = it
                .title
                .as_deref()
                .map(twotower_data::tokenize_title)
                .unwrap_or_default()
                .iter()
                .filter_map(|s| self.token_vocab.get(s))
                .collect();
            tokens.push_row(&toks);
            for col in categorical.iter_mut() {
                let v = it
                    .categorical
                    .iter()
                    .find(|(k, _)| *k == col.name)
                    .map(|(_, v)| col.vocab.get_or_oov(v))
                    .unwrap_or(col.vocab.oov());
                col.values.push(v);
            }
        }
        ItemFeatures {
            genre_vocab: self.genre_vocab.clone(),
            genres,
            token_vocab: self.token_vocab.clone(),
            tokens,
            categorical,
        }
    }

    /// Whether any feature of `it` is one this model has a row for (a known genre, title word or
    /// categorical value). Without one, and with an id the model never saw, the item tower has
    /// nothing to go on: every such item gets the same vector.
    pub fn knows_a_feature_of(&self, it: &NewItem) -> bool {
        it.genres.iter().any(|g| self.genre_vocab.get(g).is_some())
            || it.title.as_deref().is_some_and(|t| {
                twotower_data::tokenize_title(t)
                    .iter()
                    .any(|w| self.token_vocab.get(w).is_some())
            })
            || it.categorical.iter().any(|(k, v)| {
                self.categorical
                    .iter()
                    .any(|c| c.name == *k && c.vocab.get(v).is_some())
            })
    }

    pub(crate) fn check(&self, n: usize) -> Result<()> {
        self.genres.check("item genres")?;
        self.tokens.check("item title tokens")?;
        let bad_len = (self.genres.rows() > 1 && self.genres.rows() != n)
            || (self.tokens.rows() > 1 && self.tokens.rows() != n)
            || self.categorical.iter().any(|c| c.values.len() != n);
        if bad_len {
            return Err(Error::Invalid(format!("item features do not describe {n} items")));
        }
        Ok(())
    }
}

/// An item described by strings, for embedding items the model never saw.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NewItem {
    /// The item's id (kept for the caller; the id embedding is the OOV row).
    pub id: String,
    /// Title, tokenised like the training titles.
    pub title: Option<String>,
    /// Genre names.
    pub genres: Vec<String>,
    /// Further categorical values as (column, value).
    pub categorical: Vec<(String, String)>,
}

impl UserFeatures {
    /// Extracts the enabled user columns of a dataset.
    pub fn from_dataset(ds: &Dataset, config: &Config) -> Result<UserFeatures> {
        let categorical = if config.user.categorical {
            select_columns(
                &ds.user_table.categorical,
                &config.user.categorical_columns,
                ds.users.len(),
                "user.categorical_columns",
            )?
        } else {
            Vec::new()
        };
        Ok(UserFeatures { categorical })
    }
}

/// Picks the named columns (all when `names` is empty) and pads/clips them to `n` rows (missing = OOV).
fn select_columns(cols: &[Categorical], names: &[String], n: usize, key: &str) -> Result<Vec<Categorical>> {
    for name in names {
        if !cols.iter().any(|c| &c.name == name) {
            let have: Vec<&str> = cols.iter().map(|c| c.name.as_str()).collect();
            return Err(Error::config(
                "model config",
                format!("{key}: the dataset has no column {name:?} (it has {have:?})"),
            ));
        }
    }
    Ok(cols
        .iter()
        .filter(|c| names.is_empty() || names.contains(&c.name))
        .map(|c| {
            let mut c = c.clone();
            c.values.resize(n, c.vocab.oov());
            c
        })
        .collect())
}

/// What fills a block of a tower's input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The user-id embedding.
    UserId,
    /// User categorical column `n`.
    UserCategorical(usize),
    /// Pooled embeddings of the user's recent items.
    History,
    /// The item-id embedding.
    ItemId,
    /// Mean of the item's genre embeddings.
    Genres,
    /// Mean of the item's title-token embeddings.
    TitleTokens,
    /// Item categorical column `n`.
    ItemCategorical(usize),
}

/// One feature's slot in a tower input: columns `col..col+dim` come from table `table`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    /// The feature.
    pub source: Source,
    /// Index into [`FeatureLayout::tables`].
    pub table: usize,
    /// First input column.
    pub col: usize,
    /// Width.
    pub dim: usize,
}

/// The input of one tower: its blocks and total width.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct TowerInput {
    /// Feature blocks in column order.
    pub blocks: Vec<Block>,
    /// Sum of block widths.
    pub width: usize,
}

/// Shape of one embedding table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableSpec {
    /// Name in the weights file.
    pub name: String,
    /// Rows, including the OOV row.
    pub rows: usize,
    /// Width.
    pub dim: usize,
}

/// All embedding tables and how the two towers read them. Derived from the config and the vocabulary
/// sizes, stored in `model.json`, and checked against the weights on load.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureLayout {
    /// Tables in weight-file order.
    pub tables: Vec<TableSpec>,
    /// The user tower's input.
    pub user: TowerInput,
    /// The item tower's input.
    pub item: TowerInput,
    /// Number of users with an id row (the OOV row is `n_users`).
    pub n_users: usize,
    /// Number of items with an id row (the OOV row is `n_items`).
    pub n_items: usize,
    /// History length pooled.
    pub history_len: usize,
    /// Recency decay of the history pooling.
    pub history_decay: f32,
}

impl FeatureLayout {
    /// Lays out the tables `config` enables for the given vocabularies.
    pub fn new(
        config: &Config,
        n_users: usize,
        n_items: usize,
        items: &ItemFeatures,
        users: &UserFeatures,
    ) -> FeatureLayout {
        let mut tables = Vec::new();
        let mut add = |tower: &mut TowerInput, source: Source, name: String, rows: usize, dim: usize| {
            tables.push(TableSpec { name, rows, dim });
            tower.blocks.push(Block {
                source,
                table: tables.len() - 1,
                col: tower.width,
                dim,
            });
            tower.width += dim;
        };
        let mut user = TowerInput::default();
        let (uc, ic) = (&config.user, &config.item);
        if uc.id {
            add(
                &mut user,
                Source::UserId,
                "user.id".into(),
                n_users + 1,
                uc.id_dim,
            );
        }
        for (k, c) in users.categorical.iter().enumerate() {
            add(
                &mut user,
                Source::UserCategorical(k),
                format!("user.cat.{}", c.name),
                c.vocab.len() + 1,
                uc.categorical_dim,
            );
        }
        // With `share_item_embeddings` the history pools rows of the item-id table (one table, trained
        // by both towers); its block is wired to that table once the item side exists.
        let shared_history = uc.history && uc.share_item_embeddings && ic.id;
        if uc.history && !shared_history {
            add(
                &mut user,
                Source::History,
                "user.history".into(),
                n_items + 1,
                uc.history_dim,
            );
        }
        // Every block so far added exactly one table, so the item-id table (added next) has this index.
        let item_id_table = user.blocks.len();
        let mut item = TowerInput::default();
        if ic.id {
            add(
                &mut item,
                Source::ItemId,
                "item.id".into(),
                n_items + 1,
                ic.id_dim,
            );
        }
        if shared_history {
            user.blocks.push(Block {
                source: Source::History,
                table: item_id_table,
                col: user.width,
                dim: ic.id_dim,
            });
            user.width += ic.id_dim;
        }
        if ic.genres {
            add(
                &mut item,
                Source::Genres,
                "item.genres".into(),
                items.genre_vocab.len() + 1,
                ic.genre_dim,
            );
        }
        if ic.title {
            add(
                &mut item,
                Source::TitleTokens,
                "item.title".into(),
                items.token_vocab.len() + 1,
                ic.title_dim,
            );
        }
        for (k, c) in items.categorical.iter().enumerate() {
            add(
                &mut item,
                Source::ItemCategorical(k),
                format!("item.cat.{}", c.name),
                c.vocab.len() + 1,
                ic.categorical_dim,
            );
        }
        FeatureLayout {
            tables,
            user,
            item,
            n_users,
            n_items,
            history_len: if uc.history { uc.history_len } else { 0 },
            history_decay: uc.history_decay,
        }
    }

    /// Bags for a batch of items: `feat_rows` index into `feats`, `id_rows` into the id table (the OOV
    /// row `n_items` for items the model never saw).
    pub fn item_bags(&self, feats: &ItemFeatures, feat_rows: &[u32], id_rows: &[u32]) -> Vec<Bags> {
        self.item
            .blocks
            .iter()
            .map(|b| {
                let rows_cap = self.tables[b.table].rows as u32;
                let mut bags = Bags::with_capacity(feat_rows.len());
                for (&f, &id) in feat_rows.iter().zip(id_rows) {
                    let f = f as usize;
                    match &b.source {
                        Source::ItemId => bags.push_one(id.min(self.n_items as u32)),
                        Source::Genres => bags.push_mean(feats.genres.row(f)),
                        Source::TitleTokens => bags.push_mean(feats.tokens.row(f)),
                        Source::ItemCategorical(k) => {
                            let v = feats.categorical[*k].values.get(f).copied().unwrap_or(u32::MAX);
                            bags.push_one(v.min(rows_cap - 1))
                        }
                        _ => bags.push_mean(&[]),
                    }
                }
                bags
            })
            .collect()
    }

    /// Bags for a batch of `n` users: `id_row(e)` (OOV = `n_users`), `feat_row(e)` (None: unknown user,
    /// categorical values OOV) and `history(e)` (the user's items, oldest first; the last
    /// `history_len` are pooled).
    pub fn user_bags<'a>(
        &self,
        feats: &UserFeatures,
        n: usize,
        id_row: impl Fn(usize) -> u32,
        feat_row: impl Fn(usize) -> Option<u32>,
        history: impl Fn(usize) -> &'a [u32],
    ) -> Vec<Bags> {
        let hl = self.history_len;
        self.user
            .blocks
            .iter()
            .map(|b| {
                let rows_cap = self.tables[b.table].rows as u32;
                let mut bags = Bags::with_capacity(n);
                for e in 0..n {
                    match &b.source {
                        Source::UserId => bags.push_one(id_row(e).min(self.n_users as u32)),
                        Source::UserCategorical(k) => {
                            let col = &feats.categorical[*k];
                            let v = feat_row(e)
                                .and_then(|u| col.values.get(u as usize).copied())
                                .unwrap_or(col.vocab.oov());
                            bags.push_one(v.min(rows_cap - 1))
                        }
                        Source::History => {
                            let h = history(e);
                            let h = &h[h.len().saturating_sub(hl)..];
                            if h.iter().all(|&i| (i as usize) < self.n_items) {
                                bags.push_recency(h, self.history_decay)
                            } else {
                                let ok: Vec<u32> = h
                                    .iter()
                                    .copied()
                                    .filter(|&i| (i as usize) < self.n_items)
                                    .collect();
                                bags.push_recency(&ok, self.history_decay)
                            }
                        }
                        _ => bags.push_mean(&[]),
                    }
                }
                bags
            })
            .collect()
    }

    /// Gathers and pools a tower's input, `n × width` row-major.
    pub fn assemble(&self, tables: &[EmbeddingTable], tower: &TowerInput, bags: &[Bags]) -> Vec<f32> {
        let n = bags.first().map_or(0, Bags::len);
        let mut out = vec![0f32; n * tower.width];
        for (b, bag) in tower.blocks.iter().zip(bags) {
            tables[b.table].pool_into(bag, &mut out, tower.width, b.col);
        }
        out
    }

    /// Back-propagates `grad` (`n × width`, d loss / d tower input) into the per-table row gradients.
    pub fn scatter(&self, tower: &TowerInput, bags: &[Bags], grad: &[f32], row_grads: &mut [RowGrads]) {
        self.scatter_with(tower, bags, grad, row_grads, None);
    }

    /// [`Self::scatter`], with block `extra.0`'s entries also adding `extra.1[j] · extra.2` to their
    /// rows in the same pass ([`RowGrads::accumulate_with`]): the attention gradient on the history.
    pub(crate) fn scatter_with(
        &self,
        tower: &TowerInput,
        bags: &[Bags],
        grad: &[f32],
        row_grads: &mut [RowGrads],
        extra: Option<(usize, &[f32], &[f32])>,
    ) {
        for (i, (b, bag)) in tower.blocks.iter().zip(bags).enumerate() {
            let more = extra.filter(|x| x.0 == i).map(|x| (x.1, x.2));
            row_grads[b.table].accumulate_with(bag, grad, tower.width, b.col, more);
        }
    }

    /// Per-table name → index.
    pub fn table_index(&self) -> HashMap<&str, usize> {
        self.tables
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name.as_str(), i))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn empty_feats() -> (ItemFeatures, UserFeatures) {
        (ItemFeatures::default(), UserFeatures::default())
    }

    /// An item is placed by any genre, title word or categorical value the model has a row for;
    /// unknown values of each kind, or none at all, place nothing.
    #[test]
    fn knows_a_feature_only_through_the_models_vocabularies() {
        let feats = ItemFeatures {
            genre_vocab: Vocabulary::from_ids(["Drama"]),
            token_vocab: Vocabulary::from_ids(["wars"]),
            categorical: vec![Categorical {
                name: "year".into(),
                vocab: Vocabulary::from_ids(["1977"]),
                values: Vec::new(),
            }],
            ..ItemFeatures::default()
        };
        let item = |genres: &[&str], title: Option<&str>, cat: &[(&str, &str)]| NewItem {
            id: "new".into(),
            genres: genres.iter().map(|s| s.to_string()).collect(),
            title: title.map(str::to_string),
            categorical: cat.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        };
        assert!(!feats.knows_a_feature_of(&item(&[], None, &[])));
        assert!(!feats.knows_a_feature_of(&item(
            &["Horror"],
            Some("Alien"),
            &[("year", "1979"), ("decade", "1977")]
        )));
        assert!(feats.knows_a_feature_of(&item(&["Horror", "Drama"], None, &[])));
        assert!(feats.knows_a_feature_of(&item(&[], Some("Star Wars (1977)"), &[])));
        assert!(feats.knows_a_feature_of(&item(&[], None, &[("year", "1977")])));
    }

    #[test]
    fn shared_history_reads_the_item_id_table() {
        let (it, us) = empty_feats();
        let mut c = Config::default();
        c.item.genres = false;
        c.user.share_item_embeddings = false;
        let separate = FeatureLayout::new(&c, 5, 7, &it, &us);
        c.user.share_item_embeddings = true;
        let shared = FeatureLayout::new(&c, 5, 7, &it, &us);
        assert_eq!(shared.tables.len() + 1, separate.tables.len());
        let hist = shared
            .user
            .blocks
            .iter()
            .find(|b| b.source == Source::History)
            .unwrap();
        assert_eq!(shared.tables[hist.table].name, "item.id");
        assert_eq!(shared.user.width, separate.user.width);
        let item_id = shared
            .item
            .blocks
            .iter()
            .find(|b| b.source == Source::ItemId)
            .unwrap();
        assert_eq!(item_id.table, hist.table);
    }
}
