//! The dataset's side of answers: titles and genres, what each user has seen, popularity, title search.

use super::error::{RecError, Result};
use super::spaces::{DataItem, DataUser, Genre};
use serde::Serialize;
use twotower_data::{Dataset, ServingTables};

/// What a person needs to recognise an item.
#[derive(Debug, Clone, Serialize)]
pub struct ItemInfo {
    /// Item id.
    pub id: String,
    /// Title, when the catalog has one.
    pub title: Option<String>,
    /// Genre names.
    pub genres: Vec<String>,
    /// Training interactions of the item.
    pub interactions: u64,
}

/// Titles, genres, histories and popularity of one dataset. Each user's training items are held
/// once, in [`ServingTables`] (mapped from the dataset's `serving/` artifact when it has one): the
/// time-ordered history and the sorted seen set are slices of it, never copied per request.
pub struct Catalog {
    data: Dataset,
    tables: ServingTables,
}

impl Catalog {
    /// A dataset's tables with the serving tables of its training part (see
    /// [`Dataset::load_for_serving`]).
    pub fn new(data: Dataset, tables: ServingTables) -> Catalog {
        Catalog { data, tables }
    }

    /// Indexes a dataset's training interactions for answering (a dataset loaded in full).
    pub fn from_dataset(data: Dataset) -> Catalog {
        let tables = ServingTables::build(data.training(), data.users.len(), data.items.len());
        Catalog { data, tables }
    }

    /// The dataset answers are drawn from (its tables and vocabularies).
    pub fn data(&self) -> &Dataset {
        &self.data
    }

    /// Training items of a user, sorted ascending without repeats: a borrowed slice.
    pub fn seen(&self, user: DataUser) -> &[u32] {
        self.tables.seen(user.0)
    }

    /// Whether the user has training interactions.
    pub fn has_history(&self, user: DataUser) -> bool {
        !self.tables.history(user.0).1.is_empty()
    }

    /// A user's training items, oldest first.
    pub fn history_items(&self, user: DataUser) -> Vec<DataItem> {
        self.tables
            .history(user.0)
            .1
            .iter()
            .map(|&i| DataItem(i))
            .collect()
    }

    /// The string id of an item.
    pub fn item_id(&self, item: DataItem) -> &str {
        self.data.items.id(item.0)
    }

    /// What a person needs to recognise an item.
    pub fn info(&self, item: DataItem) -> ItemInfo {
        let i = item.0 as usize;
        let t = &self.data.item_table;
        let g = &t.genres;
        ItemInfo {
            id: self.data.items.id(item.0).to_string(),
            title: t.titles[i].clone(),
            genres: g.row(i).iter().map(|&v| g.vocab.id(v).to_string()).collect(),
            interactions: self.tables.count(item.0),
        }
    }

    /// Whether an item belongs to a genre (`None`: every item does).
    pub fn in_genre(&self, item: DataItem, genre: Option<Genre>) -> bool {
        let Some(Genre(g)) = genre else { return true };
        self.data.item_table.genres.row(item.0 as usize).contains(&g)
    }

    /// All genre names.
    pub fn genres(&self) -> Vec<String> {
        self.data.item_table.genres.vocab.ids().to_vec()
    }

    /// Items by descending training interactions, with their share of all interactions.
    pub fn popular(&self) -> impl Iterator<Item = (DataItem, f32)> + '_ {
        let total = self.tables.total().max(1) as f32;
        self.tables
            .popular()
            .map(move |i| (DataItem(i), self.tables.count(i) as f32 / total))
    }

    /// Items whose title contains every word (case-insensitive), most interacted first.
    pub fn find(&self, words: &str, limit: usize) -> Vec<ItemInfo> {
        let words: Vec<String> = words.split_whitespace().map(|w| w.to_lowercase()).collect();
        let mut found: Vec<u32> = (0..self.data.items.len() as u32)
            .filter(|&i| {
                let title = self.data.item_table.titles[i as usize]
                    .as_deref()
                    .unwrap_or("")
                    .to_lowercase();
                let id = self.data.items.id(i).to_lowercase();
                words.iter().all(|w| title.contains(w.as_str()) || id == *w)
            })
            .collect();
        found.sort_by_key(|&i| (std::cmp::Reverse(self.tables.count(i)), i));
        found.truncate(limit);
        found.into_iter().map(|i| self.info(DataItem(i))).collect()
    }

    /// The user's latest `n` training interactions, newest first, with their timestamps.
    pub fn history(&self, user: &str, n: usize) -> Result<Vec<(ItemInfo, i64)>> {
        let u = self
            .data
            .users
            .get(user)
            .ok_or_else(|| RecError::UnknownUser(user.to_string()))?;
        let (ts, items) = self.tables.history(u);
        let n_items = self.data.items.len() as u32;
        Ok(ts
            .iter()
            .zip(items)
            .rev()
            .filter(|&(_, &i)| i < n_items)
            .take(n)
            .map(|(&t, &i)| (self.info(DataItem(i)), t))
            .collect())
    }
}
